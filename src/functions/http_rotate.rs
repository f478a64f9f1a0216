//! `POST|GET /HttpRotate`: manual "rotate now" (`HttpRotate/function.json`, function-key auth).
//!
//! - `POST` rotates unless the published set is fresh; `?force=true` (or a JSON body
//!   `{"force":true}`) mints anyway. The query is the reliable form: the host drops chunked
//!   request bodies.
//! - `GET` only reports the current state and never mints, so a browser visit is harmless.
//! - With a targets file, `?target=a,b` selects targets (default: all); the body then has one
//!   entry per target and a summary, and the status is 502 when any target failed.
//!
//! Every outcome is an envelope with `res.statusCode`: 200, or 400 (bad parameters), 500
//! (invalid settings), 502 (an upstream refused or failed, including a partial publish), 503
//! (an upstream unreachable or timed out). The handler's own HTTP status is 200 throughout.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::envelope::{http_output, HttpRequest, Invocation};
use super::{plain_error, read_body, AppState};
use crate::rotation::fleet::{summarize, Fleet};
use crate::rotation::{Failure, Request, RotationService};

pub async fn handle(State(state): State<Arc<AppState>>, body: Body) -> Response {
    let bytes = match read_body(body, state.max_invocation_bytes).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let invocation = match Invocation::parse(&bytes) {
        Ok(i) => i,
        Err(e) => return plain_error(StatusCode::BAD_REQUEST, &e.0),
    };
    let answer = match HttpRequest::from_data(&invocation.data, "req") {
        Ok(req) => respond(&state, &req).await,
        Err(e) => fail(&Failure::bad_request(e)),
    };
    Json(answer).into_response()
}

async fn respond(state: &AppState, req: &HttpRequest) -> serde_json::Value {
    let fleet = match &state.fleet {
        Ok(f) => f.clone(),
        Err(errors) => return fail(&Failure::settings(errors)),
    };
    let selection = req.query.get("target").map(String::as_str);
    if let Some(service) = fleet.single() {
        if selection
            .is_some_and(|t| !t.trim().is_empty() && !t.trim().eq_ignore_ascii_case("default"))
        {
            return fail(&Failure::bad_request(
                "there is no targets file: the one target is the app settings (target=default, or no target)",
            ));
        }
        return respond_single(&fleet, service, req).await;
    }
    let selected = match fleet.select(selection) {
        Ok(s) => s,
        Err(message) => return fail(&Failure::bad_request(message)),
    };
    match req.method.as_str() {
        "GET" => {
            let states = fleet.state(&selected).await;
            let all_ok = states.iter().all(|(_, s)| s.is_ok());
            let entries: Vec<serde_json::Value> = states
                .into_iter()
                .map(|(name, s)| {
                    let mut v = match s {
                        Ok(s) => serde_json::to_value(&s).unwrap_or_default(),
                        Err(f) => f.body(),
                    };
                    v["target"] = serde_json::Value::String(name);
                    v
                })
                .collect();
            http_output(
                if all_ok { 200 } else { 502 },
                &serde_json::json!({"targets": entries}),
                vec![],
            )
        }
        "POST" => {
            let request = match parse_request(req) {
                Ok(r) => r,
                Err(message) => return fail(&Failure::bad_request(message)),
            };
            let outcomes = fleet.rotate(&selected, request).await;
            let (ok, body, lines) = summarize(&outcomes);
            for line in &lines {
                if ok {
                    tracing::info!(target: "stsbridge::HttpRotate", "{line}");
                } else {
                    tracing::warn!(target: "stsbridge::HttpRotate", "{line}");
                }
            }
            http_output(if ok { 200 } else { 502 }, &body, lines)
        }
        other => fail(&Failure::bad_request(format!(
            "method {other} is not supported: POST rotates, GET reports"
        ))),
    }
}

async fn respond_single(
    fleet: &Fleet,
    service: &Arc<RotationService>,
    req: &HttpRequest,
) -> serde_json::Value {
    match req.method.as_str() {
        "GET" => match service.state().await {
            Ok(s) => {
                let body = serde_json::to_value(&s).unwrap_or_default();
                http_output(200, &body, s.warnings.clone())
            }
            Err(f) => fail(&f),
        },
        "POST" => {
            let request = match parse_request(req) {
                Ok(r) => r,
                Err(message) => return fail(&Failure::bad_request(message)),
            };
            let outcome = fleet.rotate_one(service, request).await;
            match outcome.as_ref() {
                Ok(report) => {
                    let logs = report.log_lines();
                    for line in &logs {
                        tracing::info!(target: "stsbridge::HttpRotate", "{line}");
                    }
                    let body = serde_json::to_value(report).unwrap_or_default();
                    http_output(200, &body, logs)
                }
                Err(f) => fail(f),
            }
        }
        other => fail(&Failure::bad_request(format!(
            "method {other} is not supported: POST rotates, GET reports"
        ))),
    }
}

/// `force` and `rotateSourceKey` from the query (`true`/`false`/`1`/`0`/`yes`/`no`, or present
/// without a value), or from a JSON body `{"force": bool, "rotateSourceKey": bool}`. Rotating the
/// source key also mints.
pub fn parse_request(req: &HttpRequest) -> Result<Request, String> {
    let body: Option<serde_json::Value> = match req.body.as_deref().filter(|b| !b.trim().is_empty())
    {
        None => None,
        Some(text) => Some(serde_json::from_str(text).map_err(|_| {
            "the request body must be JSON like {\"force\": true}, or empty".to_string()
        })?),
    };
    let flag = |name: &str| -> Result<bool, String> {
        if let Some(raw) = req.query.get(&name.to_ascii_lowercase()) {
            return parse_flag(name, raw);
        }
        match body.as_ref().and_then(|b| b.get(name)) {
            None | Some(serde_json::Value::Null) => Ok(false),
            Some(serde_json::Value::Bool(b)) => Ok(*b),
            Some(serde_json::Value::String(s)) => parse_flag(name, s),
            Some(other) => Err(format!("{name} must be true or false, not {other}")),
        }
    };
    let rotate_source_key = flag("rotateSourceKey")?;
    Ok(Request {
        force: flag("force")? || rotate_source_key,
        rotate_source_key,
        ..Request::default()
    })
}

fn parse_flag(name: &str, raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "" | "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        other => Err(format!("{name} must be true or false, not '{other}'")),
    }
}

fn fail(f: &Failure) -> serde_json::Value {
    let level_error = f.http_status() >= 500;
    for line in f.log_lines() {
        if level_error {
            tracing::error!(target: "stsbridge::HttpRotate", "{line}");
        } else {
            tracing::warn!(target: "stsbridge::HttpRotate", "{line}");
        }
    }
    http_output(f.http_status(), &f.body(), f.log_lines())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(query: &[(&str, &str)], body: Option<&str>) -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            query: query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn force_comes_from_the_query_or_a_json_body() {
        assert!(
            parse_request(&req(&[("force", "true")], None))
                .unwrap()
                .force
        );
        assert!(!parse_request(&req(&[("force", "0")], None)).unwrap().force);
        assert!(
            parse_request(&req(&[], Some(r#"{"force":true}"#)))
                .unwrap()
                .force
        );
        assert!(!parse_request(&req(&[], None)).unwrap().force);
    }

    #[test]
    fn an_unknown_force_value_is_a_bad_request() {
        assert!(parse_request(&req(&[("force", "perhaps")], None))
            .unwrap_err()
            .contains("perhaps"));
        assert!(parse_request(&req(&[], Some("not json"))).is_err());
        assert!(parse_request(&req(&[], Some(r#"{"force":3}"#))).is_err());
    }
}
