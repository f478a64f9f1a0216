//! The Functions custom-handler envelope: what the host POSTs and what it expects back.
//!
//! Facts from `../shared/PROTOCOL.md` §1 (host v4, forwarding off):
//! - request: a JSON object with `Data` (one entry per input binding) and `Metadata`; unknown keys
//!   are ignored because the host adds fields over time;
//! - HTTP trigger data (`Data.req`): `Method`, `Query` (string → string), `Headers` (every value
//!   an *array* of strings), `Body` (a string; absent on GET or when empty);
//! - response: always 2xx `application/json` `{"Outputs":{…},"Logs":[…],"ReturnValue":null}`; the
//!   HTTP output `res` carries `statusCode`, string-valued `headers`, and `body` as a *string*.
//!
//! Sample timer invocation:
//! ```json
//! {"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":false}},
//!  "Metadata":{"sys":{"MethodName":"TimerRotate","UtcNow":"2026-01-01T00:00:00.0000001Z","RandGuid":"…"}}}
//! ```
//! Sample HTTP invocation:
//! ```json
//! {"Data":{"req":{"Url":"https://app.azurewebsites.net/api/HttpRotate?force=true","Method":"POST",
//!  "Query":{"force":"true","code":"…"},"Headers":{"Content-Type":["application/json"]},
//!  "Params":{},"Identities":[]}},"Metadata":{}}
//! ```

use std::collections::HashMap;

use serde_json::{json, Map, Value};

/// A parsed invocation: its `Data` object (bindings by name).
#[derive(Debug)]
pub struct Invocation {
    pub data: Map<String, Value>,
}

/// Why a body is not an invocation (answered with a plain HTTP 400: only non-host clients send these).
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed(pub String);

impl Invocation {
    pub fn parse(body: &[u8]) -> Result<Self, Malformed> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| Malformed(format!("the body is not JSON: {e}")))?;
        let Value::Object(mut top) = value else {
            return Err(Malformed("the body is not a JSON object".into()));
        };
        match top.remove("Data") {
            Some(Value::Object(data)) => Ok(Self { data }),
            Some(_) => Err(Malformed("Data is not an object".into())),
            None => Err(Malformed("the body has no Data object".into())),
        }
    }
}

/// The HTTP trigger's request, as far as we use it.
#[derive(Debug, Default)]
pub struct HttpRequest {
    pub method: String,
    /// Query parameters, names lower-cased.
    pub query: HashMap<String, String>,
    /// Headers, names lower-cased.
    pub headers: HashMap<String, Vec<String>>,
    pub body: Option<String>,
}

impl HttpRequest {
    /// Reads `Data.<binding>`; a missing or non-object binding is an error for the caller (400).
    pub fn from_data(data: &Map<String, Value>, binding: &str) -> Result<Self, String> {
        let Some(Value::Object(req)) = data.get(binding) else {
            return Err(format!("the invocation has no Data.{binding} object"));
        };
        let field = |name: &str| {
            req.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        };
        let method = match field("Method") {
            Some(Value::String(m)) => m.to_ascii_uppercase(),
            _ => return Err(format!("Data.{binding}.Method is missing")),
        };
        let mut query = HashMap::new();
        if let Some(Value::Object(q)) = field("Query") {
            for (k, v) in q {
                query.insert(k.to_ascii_lowercase(), as_text(v));
            }
        }
        let mut headers = HashMap::new();
        if let Some(Value::Object(h)) = field("Headers") {
            for (k, v) in h {
                let values = match v {
                    Value::Array(items) => items.iter().map(as_text).collect(),
                    other => vec![as_text(other)],
                };
                headers.insert(k.to_ascii_lowercase(), values);
            }
        }
        let body = match field("Body") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(v) => Some(as_text(v)),
        };
        Ok(Self {
            method,
            query,
            headers,
            body,
        })
    }
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The answer for the HTTP function: `res` with a JSON string body.
pub fn http_output(status: u16, body: &Value, logs: Vec<String>) -> Value {
    json!({
        "Outputs": {
            "res": {
                "statusCode": status,
                "headers": {"Content-Type": "application/json"},
                "body": body.to_string(),
            }
        },
        "Logs": logs,
        "ReturnValue": null,
    })
}

/// The answer for a function without outputs (the timer).
pub fn empty_output(logs: Vec<String>) -> Value {
    json!({"Outputs": {}, "Logs": logs, "ReturnValue": null})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timer_invocation_with_a_null_schedule_status_and_unknown_keys_parses() {
        let body = br#"{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":false,"New":1}},"Metadata":{"sys":{"UtcNow":"2026-01-01T00:00:00"}},"Extra":true}"#;
        let inv = Invocation::parse(body).unwrap();
        assert!(inv.data.contains_key("timer"));
    }

    #[test]
    fn malformed_bodies_are_named() {
        assert!(Invocation::parse(b"nope")
            .unwrap_err()
            .0
            .contains("not JSON"));
        assert!(Invocation::parse(b"[1]")
            .unwrap_err()
            .0
            .contains("not a JSON object"));
        assert!(Invocation::parse(b"{}").unwrap_err().0.contains("no Data"));
        assert!(Invocation::parse(br#"{"Data":3}"#)
            .unwrap_err()
            .0
            .contains("not an object"));
    }

    #[test]
    fn an_http_request_reads_array_headers_and_a_missing_body() {
        let inv = Invocation::parse(br#"{"Data":{"req":{"Method":"get","Query":{"Force":"true"},"Headers":{"Content-Type":["application/json"]}}}}"#).unwrap();
        let req = HttpRequest::from_data(&inv.data, "req").unwrap();
        assert_eq!(req.method, "GET");
        assert_eq!(req.query.get("force").map(String::as_str), Some("true"));
        assert_eq!(req.headers["content-type"], vec!["application/json"]);
        assert_eq!(req.body, None);
    }

    #[test]
    fn the_http_output_carries_the_body_as_a_string() {
        let out = http_output(200, &json!({"rotated": true}), vec![]);
        assert_eq!(out["Outputs"]["res"]["body"], r#"{"rotated":true}"#);
        assert_eq!(out["ReturnValue"], Value::Null);
    }
}
