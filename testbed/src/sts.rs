//! The STS (and IAM) front: a Query-API server that forwards to moto and adds what moto lacks.
//!
//! moto checks almost nothing and cannot produce most AWS error answers (`../shared/PROTOCOL.md`
//! §3). The front therefore:
//! - answers injected faults with the real AWS error XML and status
//!   (`<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`);
//! - makes every minted credential set unique (moto's GetSessionToken returns canned values),
//!   remembers it, and enforces it: a call signed with a minted key must carry its session token
//!   and be unexpired (`InvalidClientTokenId`, `ExpiredToken`), and `GetCallerIdentity` with it
//!   answers the identity it was minted for;
//! - can refuse long-lived keys it was not told about (`InvalidClientTokenId`);
//! - records every call (action, signing access key id, parameters, timing);
//! - can shorten the lifetime of the sets it mints ([`StsFront::set_lifetime`]) to 30-120 s, so
//!   a test sees clients live across an expiry without waiting out a real one (the settings
//!   refuse durations under 900 s, already inside botocore's 15-minute refresh window);
//! - follows IAM's key life cycle, which moto does not enforce: a key made by `CreateAccessKey`
//!   is refused (`InvalidClientTokenId`) for a configurable propagation delay, as AWS does for
//!   seconds after creation; deactivated and deleted keys are refused until reactivated;
//! - enforces session revocations (issue #20), which moto does not evaluate: an
//!   `AWSRevokeOlderSessions` policy put on a user or role (`PutUserPolicy`/`PutRolePolicy`,
//!   its `DateLessThan` `aws:TokenIssueTime`) makes every call signed by a session of that
//!   principal issued before the cut-off fail with `AccessDenied` — but `GetCallerIdentity`,
//!   which AWS never denies — until the policy is deleted.
//!
//! IAM calls reach moto through the same front (moto serves both on one port).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::faults::{Fault, Faults};
use crate::serve::DropConnection;
use crate::{random_alnum, request_id};

/// One call the front answered.
#[derive(Clone, Debug)]
pub struct Call {
    pub service: String,
    pub action: String,
    /// The access key id from the SigV4 `Authorization` header; `None` when unsigned.
    pub access_key_id: Option<String>,
    pub params: BTreeMap<String, String>,
    pub status: u16,
    pub started: Instant,
    pub finished: Instant,
}

/// A credential set the front handed out.
#[derive(Clone, Debug)]
pub struct Minted {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expiration: String,
    pub arn: String,
    pub account: String,
    pub user_id: String,
    /// When the front issued it (what AWS's `aws:TokenIssueTime` holds).
    pub issued: chrono::DateTime<chrono::Utc>,
}

impl Minted {
    /// A new, unique set (random key id, secret and session token) for this identity.
    fn fresh(arn: String, user_id: String, account: String, expiration: String) -> Self {
        Self {
            access_key_id: format!("ASIA{}", random_alnum(16).to_ascii_uppercase()),
            secret_access_key: random_alnum(40),
            session_token: format!("FwoGZXIvYXdzE{}", random_alnum(300)),
            expiration,
            arn,
            account,
            user_id,
            issued: chrono::Utc::now(),
        }
    }

    /// The revocable principal whose session this is: `user:NAME` for a `GetSessionToken` set
    /// (`…:user/PATH/NAME`), `role:NAME` for an assumed role (`…:assumed-role/NAME/SESSION`).
    fn principal(&self) -> Option<String> {
        let resource = self.arn.splitn(6, ':').nth(5)?;
        if let Some(path) = resource.strip_prefix("user/") {
            return path.rsplit('/').next().map(|n| format!("user:{n}"));
        }
        let role = resource.strip_prefix("assumed-role/")?.split('/').next()?;
        Some(format!("role:{role}"))
    }
}

#[derive(Debug)]
pub struct StsFront {
    moto_url: String,
    http: reqwest::Client,
    pub faults: Faults,
    calls: Mutex<Vec<Call>>,
    minted: Mutex<HashMap<String, Minted>>,
    /// When set, long-lived keys (not minted here) outside this set are refused.
    known_keys: Mutex<Option<HashSet<String>>>,
    lifecycle: Mutex<KeyLifecycle>,
    /// Revocation cut-offs by principal (`user:NAME`, `role:NAME`).
    revocations: Mutex<HashMap<String, chrono::DateTime<chrono::Utc>>>,
    lifetime: Mutex<Option<std::time::Duration>>,
}

/// What the front knows of IAM keys' state (see the module docs).
#[derive(Debug, Default)]
struct KeyLifecycle {
    propagation: std::time::Duration,
    usable_after: HashMap<String, Instant>,
    revoked: HashSet<String>,
}

impl StsFront {
    pub fn new(moto_url: &str) -> Arc<Self> {
        Arc::new(Self {
            moto_url: moto_url.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            faults: Faults::default(),
            calls: Mutex::default(),
            minted: Mutex::default(),
            known_keys: Mutex::default(),
            lifecycle: Mutex::default(),
            revocations: Mutex::default(),
            lifetime: Mutex::default(),
        })
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// The calls of one action.
    pub fn calls_of(&self, action: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.action == action)
            .collect()
    }

    pub fn clear_calls(&self) {
        self.calls.lock().unwrap().clear();
    }

    /// Every credential set minted so far.
    pub fn minted(&self) -> Vec<Minted> {
        self.minted.lock().unwrap().values().cloned().collect()
    }

    /// Refuse every long-lived key but these (in addition to keys minted here).
    pub fn only_accept_keys(&self, keys: &[&str]) {
        *self.known_keys.lock().unwrap() = Some(keys.iter().map(|k| k.to_string()).collect());
    }

    /// Accept (or stop accepting) one more long-lived key.
    pub fn set_key_known(&self, key: &str, known: bool) {
        if let Some(set) = self.known_keys.lock().unwrap().as_mut() {
            if known {
                set.insert(key.to_string());
            } else {
                set.remove(key);
            }
        }
    }
}

impl StsFront {
    /// Mints a set outside any STS call — as IAM Identity Center's portal does for a role — that
    /// the front then accepts like its own: `GetCallerIdentity` with it answers `arn`.
    pub fn issue(&self, arn: &str, user_id: &str, account: &str, expiration: &str) -> Minted {
        let minted = Minted::fresh(
            arn.to_string(),
            user_id.to_string(),
            account.to_string(),
            expiration.to_string(),
        );
        self.minted
            .lock()
            .unwrap()
            .insert(minted.access_key_id.clone(), minted.clone());
        minted
    }

    /// Every set minted from now on expires this long after it is minted, whatever
    /// `DurationSeconds` asked for (`None`: as asked). 30-120 s: long enough for a client's
    /// call, short enough for a test to cross an expiry.
    pub fn set_lifetime(&self, lifetime: Option<std::time::Duration>) {
        if let Some(l) = lifetime {
            assert!(
                (30..=120).contains(&l.as_secs()),
                "a lifetime override is 30-120 s"
            );
        }
        *self.lifetime.lock().unwrap() = lifetime;
    }

    /// How long a key made by `CreateAccessKey` is refused before it works (default: at once).
    pub fn set_key_propagation(&self, delay: std::time::Duration) {
        self.lifecycle.lock().unwrap().propagation = delay;
    }

    fn key_refused(&self, key: &str) -> bool {
        let lc = self.lifecycle.lock().unwrap();
        lc.revoked.contains(key)
            || lc
                .usable_after
                .get(key)
                .is_some_and(|t| Instant::now() < *t)
    }

    /// The revocation cut-offs recorded, by principal (`user:NAME`, `role:NAME`).
    pub fn revocations(&self) -> HashMap<String, chrono::DateTime<chrono::Utc>> {
        self.revocations.lock().unwrap().clone()
    }

    /// Whether AWS would deny this session: its principal has a cut-off after its issue time.
    fn revoked(&self, minted: &Minted) -> bool {
        let Some(principal) = minted.principal() else {
            return false;
        };
        self.revocations
            .lock()
            .unwrap()
            .get(&principal)
            .is_some_and(|cut_off| minted.issued < *cut_off)
    }

    /// Follows a successful IAM call that changes a key's life or a revocation.
    fn follow_iam(&self, action: &str, params: &BTreeMap<String, String>, answer: &str) {
        let revocation = params.get("PolicyName").map(String::as_str) == Some(REVOKE_POLICY);
        let principal = params
            .get("UserName")
            .map(|u| format!("user:{u}"))
            .or_else(|| params.get("RoleName").map(|r| format!("role:{r}")));
        match (action, revocation, principal) {
            ("PutUserPolicy" | "PutRolePolicy", true, Some(p)) => {
                let cut_off = params
                    .get("PolicyDocument")
                    .and_then(|d| revocation_cut_off(d));
                let mut revocations = self.revocations.lock().unwrap();
                match cut_off {
                    Some(c) => revocations.insert(p, c),
                    None => revocations.remove(&p),
                };
                return;
            }
            ("DeleteUserPolicy" | "DeleteRolePolicy", true, Some(p)) => {
                self.revocations.lock().unwrap().remove(&p);
                return;
            }
            _ => {}
        }
        let mut lc = self.lifecycle.lock().unwrap();
        match action {
            "CreateAccessKey" => {
                if let Some(id) = tag(answer, "AccessKeyId") {
                    let at = Instant::now() + lc.propagation;
                    lc.usable_after.insert(id.to_string(), at);
                    drop(lc);
                    self.set_key_known(id, true);
                }
            }
            "UpdateAccessKey" => {
                if let Some(id) = params.get("AccessKeyId") {
                    if params.get("Status").map(String::as_str) == Some("Inactive") {
                        lc.revoked.insert(id.clone());
                    } else {
                        lc.revoked.remove(id);
                    }
                }
            }
            "DeleteAccessKey" => {
                if let Some(id) = params.get("AccessKeyId") {
                    lc.revoked.insert(id.clone());
                }
            }
            _ => {}
        }
    }
}

fn is_sts_action(action: &str) -> bool {
    matches!(
        action,
        "GetSessionToken"
            | "AssumeRole"
            | "AssumeRoleWithWebIdentity"
            | "GetCallerIdentity"
            | "GetAccessKeyInfo"
            | "DecodeAuthorizationMessage"
            | "GetFederationToken"
    )
}

/// The policy name AWS's "Revoke active sessions" uses.
const REVOKE_POLICY: &str = "AWSRevokeOlderSessions";

/// The `DateLessThan` `aws:TokenIssueTime` of a deny statement in a policy document.
fn revocation_cut_off(document: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let doc: serde_json::Value = serde_json::from_str(document).ok()?;
    let statements = match &doc["Statement"] {
        serde_json::Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    statements
        .iter()
        .filter(|s| s["Effect"] == "Deny")
        .filter_map(|s| s["Condition"]["DateLessThan"]["aws:TokenIssueTime"].as_str())
        .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
        .max()
}

pub fn router(front: Arc<StsFront>) -> Router {
    Router::new().fallback(handle).with_state(front)
}

/// AWS's error answer.
pub fn error_xml(status: u16, code: &str, message: &str) -> Response {
    let kind = if status >= 500 { "Receiver" } else { "Sender" };
    let body = format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <Error>\n    <Type>{kind}</Type>\n    <Code>{code}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{}</RequestId>\n</ErrorResponse>\n",
        xml_escape(message),
        request_id()
    );
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, [("content-type", "text/xml")], body).into_response()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The access key id and the service from a SigV4 `Authorization` header.
fn signer(headers: &HeaderMap) -> (Option<String>, Option<String>) {
    let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return (None, None);
    };
    let Some(cred) = auth.split("Credential=").nth(1) else {
        return (None, None);
    };
    let scope: Vec<&str> = cred
        .split([',', ' '])
        .next()
        .unwrap_or("")
        .split('/')
        .collect();
    (
        scope.first().map(|s| s.to_string()),
        scope.get(3).map(|s| s.to_string()),
    )
}

fn tag<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(&xml[start..end])
}

fn replace_tag(xml: &str, name: &str, value: &str) -> String {
    match tag(xml, name) {
        Some(old) => xml.replacen(
            &format!("<{name}>{old}</{name}>"),
            &format!("<{name}>{value}</{name}>"),
            1,
        ),
        None => xml.to_string(),
    }
}

async fn handle(
    State(front): State<Arc<StsFront>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let mut params: BTreeMap<String, String> =
        url::form_urlencoded::parse(&body).into_owned().collect();
    if let Some(q) = uri.query() {
        params.extend(url::form_urlencoded::parse(q.as_bytes()).into_owned());
    }
    let action = params.get("Action").cloned().unwrap_or_default();
    let (access_key_id, scope_service) = signer(&headers);
    let service = scope_service.unwrap_or_else(|| "sts".into());
    let latency = front.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = answer(
        &front,
        &action,
        &params,
        access_key_id.as_deref(),
        &headers,
        &body,
        &uri,
    )
    .await;
    front.calls.lock().unwrap().push(Call {
        service,
        action,
        access_key_id,
        params,
        status: response.status().as_u16(),
        started,
        finished: Instant::now(),
    });
    response
}

async fn answer(
    front: &StsFront,
    action: &str,
    params: &BTreeMap<String, String>,
    access_key_id: Option<&str>,
    headers: &HeaderMap,
    body: &Bytes,
    uri: &Uri,
) -> Response {
    match front.faults.check(action, None) {
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        Some(Fault::Drop) => {
            let mut r = StatusCode::INTERNAL_SERVER_ERROR.into_response();
            r.extensions_mut().insert(DropConnection);
            return r;
        }
        Some(Fault::Error {
            status,
            code,
            message,
            ..
        }) => return error_xml(status, &code, &message),
        Some(Fault::CommitThenDrop) => {
            let mut r = call(front, action, params, access_key_id, headers, body, uri).await;
            r.extensions_mut().insert(DropConnection);
            return r;
        }
        None => {}
    }
    call(front, action, params, access_key_id, headers, body, uri).await
}

/// The call itself, past fault injection.
async fn call(
    front: &StsFront,
    action: &str,
    params: &BTreeMap<String, String>,
    access_key_id: Option<&str>,
    headers: &HeaderMap,
    body: &Bytes,
    uri: &Uri,
) -> Response {
    if action.is_empty() {
        return error_xml(400, "MissingAction", "Missing Action");
    }
    let minted = access_key_id.and_then(|k| front.minted.lock().unwrap().get(k).cloned());
    if let Some(m) = &minted {
        let token = headers
            .get("x-amz-security-token")
            .and_then(|v| v.to_str().ok());
        if token != Some(m.session_token.as_str()) {
            return error_xml(
                403,
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
            );
        }
        let expired = chrono::DateTime::parse_from_rfc3339(&m.expiration)
            .map(|e| e < chrono::Utc::now())
            .unwrap_or(false);
        if expired {
            return error_xml(
                400,
                "ExpiredToken",
                "The security token included in the request is expired",
            );
        }
        if action == "GetCallerIdentity" {
            return caller_identity(&m.arn, &m.user_id, &m.account);
        }
        if front.revoked(m) {
            return error_xml(
                403,
                "AccessDenied",
                &format!(
                    "User: {} is not authorized to perform: {}:{action} with an explicit deny in an identity-based policy",
                    m.arn,
                    if is_sts_action(action) { "sts" } else { "iam" }
                ),
            );
        }
    } else if let Some(key) = access_key_id {
        let known = front.known_keys.lock().unwrap();
        if known.as_ref().is_some_and(|set| !set.contains(key)) || front.key_refused(key) {
            return error_xml(
                403,
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
            );
        }
    }
    let forwarded = match forward(front, headers, body.clone(), uri).await {
        Ok(r) => r,
        Err(e) => return error_xml(503, "ServiceUnavailable", &format!("moto unreachable: {e}")),
    };
    let (status, text) = forwarded;
    if status == 200 {
        front.follow_iam(action, params, &text);
    }
    if status != 200
        || !matches!(
            action,
            "GetSessionToken" | "AssumeRole" | "AssumeRoleWithWebIdentity"
        )
    {
        return (
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
            [("content-type", "text/xml")],
            text,
        )
            .into_response();
    }
    // A fresh credential set: make it unique and remember who it belongs to.
    let (arn, user_id, account) = if action == "GetSessionToken" {
        let who = identity_of_signer(front, headers, uri).await;
        who.unwrap_or_else(|| {
            (
                "arn:aws:iam::123456789012:user/moto".into(),
                "AIDAEXAMPLE".into(),
                "123456789012".into(),
            )
        })
    } else {
        let arn = tag(&text, "Arn").unwrap_or_default().to_string();
        let user_id = tag(&text, "AssumedRoleId").unwrap_or_default().to_string();
        let account = arn.split(':').nth(4).unwrap_or("123456789012").to_string();
        (arn, user_id, account)
    };
    let lifetime = *front.lifetime.lock().unwrap();
    let expiration = match lifetime {
        Some(l) => (chrono::Utc::now() + l).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        None => tag(&text, "Expiration").unwrap_or_default().to_string(),
    };
    let minted = Minted::fresh(arn, user_id, account, expiration);
    let mut text = replace_tag(&text, "Expiration", &minted.expiration);
    text = replace_tag(&text, "AccessKeyId", &minted.access_key_id);
    text = replace_tag(&text, "SecretAccessKey", &minted.secret_access_key);
    text = replace_tag(&text, "SessionToken", &minted.session_token);
    front
        .minted
        .lock()
        .unwrap()
        .insert(minted.access_key_id.clone(), minted);
    (StatusCode::OK, [("content-type", "text/xml")], text).into_response()
}

fn caller_identity(arn: &str, user_id: &str, account: &str) -> Response {
    let body = format!(
        "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <GetCallerIdentityResult>\n    <Arn>{arn}</Arn>\n    <UserId>{user_id}</UserId>\n    <Account>{account}</Account>\n  </GetCallerIdentityResult>\n  <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</GetCallerIdentityResponse>\n",
        request_id()
    );
    (StatusCode::OK, [("content-type", "text/xml")], body).into_response()
}

async fn forward(
    front: &StsFront,
    headers: &HeaderMap,
    body: Bytes,
    uri: &Uri,
) -> reqwest::Result<(u16, String)> {
    let url = format!(
        "{}{}",
        front.moto_url,
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let mut request = front.http.post(url).body(body);
    for name in [
        "authorization",
        "content-type",
        "x-amz-date",
        "x-amz-security-token",
        "user-agent",
    ] {
        if let Some(v) = headers.get(name) {
            request = request.header(name, v);
        }
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

/// Who moto thinks signed this request (for GetSessionToken: the session acts as that user).
async fn identity_of_signer(
    front: &StsFront,
    headers: &HeaderMap,
    uri: &Uri,
) -> Option<(String, String, String)> {
    let body = Bytes::from_static(b"Action=GetCallerIdentity&Version=2011-06-15");
    let (status, text) = forward(front, headers, body, uri).await.ok()?;
    if status != 200 {
        return None;
    }
    Some((
        tag(&text, "Arn")?.to_string(),
        tag(&text, "UserId")?.to_string(),
        tag(&text, "Account")?.to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signer_is_read_from_the_sigv4_scope() {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=00"
                .parse()
                .unwrap(),
        );
        assert_eq!(signer(&h), (Some("AKIDEXAMPLE".into()), Some("sts".into())));
        assert_eq!(signer(&HeaderMap::new()), (None, None));
    }

    #[test]
    fn a_session_s_principal_is_its_user_or_its_role() {
        let mut m = Minted::fresh(
            "arn:aws:iam::123456789012:user/path/minter".into(),
            "AIDA".into(),
            "123456789012".into(),
            String::new(),
        );
        assert_eq!(m.principal().as_deref(), Some("user:minter"));
        m.arn = "arn:aws:sts::123456789012:assumed-role/reader/session-1".into();
        assert_eq!(m.principal().as_deref(), Some("role:reader"));
        m.arn = "arn:aws:sts::123456789012:federated-user/x".into();
        assert_eq!(m.principal(), None);
    }

    #[test]
    fn a_revocation_s_cut_off_is_read_from_the_deny_statement() {
        let doc = r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2030-01-01T00:00:00Z"}}}}"#;
        assert_eq!(
            revocation_cut_off(doc).map(|c| c.to_rfc3339()),
            Some("2030-01-01T00:00:00+00:00".into())
        );
        assert_eq!(revocation_cut_off("{}"), None);
    }

    #[test]
    fn a_tag_is_replaced_once() {
        let xml = "<a><AccessKeyId>X</AccessKeyId></a>";
        assert_eq!(
            replace_tag(xml, "AccessKeyId", "Y"),
            "<a><AccessKeyId>Y</AccessKeyId></a>"
        );
    }
}
