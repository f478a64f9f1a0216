//! The STS (and IAM) front: a Query-API server that forwards to moto and adds what moto lacks.
//!
//! moto checks almost nothing and cannot produce most AWS error answers (`../shared/PROTOCOL.md`
//! §3). The front is therefore the part of the test bed that is as strict as AWS (issue #24):
//! - **every signature is checked** ([`crate::sigv4`], AWS's algorithm): a call signed with a key
//!   the front does not know is refused (`InvalidClientTokenId`), one whose signature the key's
//!   secret does not give is refused (`SignatureDoesNotMatch`), as are a scope for the wrong
//!   service and a request time more than 15 minutes off; only `AssumeRoleWithWebIdentity` may
//!   come unsigned. The front knows every secret it must: the sets it mints, the keys
//!   `CreateAccessKey` answers through it, and the keys the bed makes directly
//!   ([`StsFront::register_key`]);
//! - applies **AWS's rules for session credentials**: a set from `GetSessionToken` cannot call IAM
//!   (no MFA here) and no STS action but `AssumeRole` and `GetCallerIdentity`; `GetSessionToken`
//!   itself needs long-term keys;
//! - answers injected faults with the real AWS error XML and status
//!   (`<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`);
//! - makes every minted credential set unique and shaped like AWS's (moto's GetSessionToken
//!   returns canned values): `ASIA` + 16 base-32 characters, a 40-character base64 secret with `+`
//!   and `/`, a session token of several hundred base64 characters with `+ / =`
//!   ([`crate::aws_secret`], [`crate::aws_session_token`]); `CreateAccessKey`'s secrets too;
//! - remembers every minted set and enforces it: a call signed with a minted key must carry its
//!   session token and be unexpired (`InvalidClientTokenId`, `ExpiredToken`), and
//!   `GetCallerIdentity` with it answers the identity it was minted for;
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
//! IAM calls reach moto through the same front (moto serves both on one port). moto's own
//! authentication stays off: it is global to the process, knows neither the front's sets nor
//! the rewritten secrets, and the front is where the checks belong.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::faults::{Fault, Faults};
use crate::serve::DropConnection;
use crate::sigv4;
use crate::{aws_key_id, aws_secret, aws_session_token, request_id};

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
    pub kind: SessionKind,
}

/// What a session may do depends on how it was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionKind {
    /// From `GetSessionToken`: no IAM without MFA, no STS but AssumeRole and GetCallerIdentity.
    UserSession,
    /// An assumed role (AssumeRole, web identity, IAM Identity Center, Roles Anywhere).
    Role,
}

impl Minted {
    /// A new, unique set (random key id, secret and session token, shaped like AWS's) for this
    /// identity.
    fn fresh(
        arn: String,
        user_id: String,
        account: String,
        expiration: String,
        kind: SessionKind,
    ) -> Self {
        Self {
            access_key_id: aws_key_id("ASIA"),
            secret_access_key: aws_secret(),
            session_token: aws_session_token(),
            expiration,
            arn,
            account,
            user_id,
            issued: chrono::Utc::now(),
            kind,
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
    /// The action of every request as it arrived (before latency, faults or an answer): a call
    /// still hanging shows here and not in `calls`.
    arrivals: Mutex<Vec<String>>,
    minted: Mutex<HashMap<String, Minted>>,
    /// The long-lived keys the front knows: access key id → secret. Any other is refused.
    keys: Mutex<HashMap<String, String>>,
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
            arrivals: Mutex::default(),
            minted: Mutex::default(),
            keys: Mutex::default(),
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
        self.arrivals.lock().unwrap().clear();
    }

    /// How many requests of `action` have arrived, answered or not (a hanging call counts here
    /// at once; [`StsFront::calls`] records a call only when it is answered).
    pub fn arrived(&self, action: &str) -> usize {
        self.arrivals
            .lock()
            .unwrap()
            .iter()
            .filter(|a| *a == action)
            .count()
    }

    /// Every credential set minted so far.
    pub fn minted(&self) -> Vec<Minted> {
        self.minted.lock().unwrap().values().cloned().collect()
    }

    /// Teaches the front a long-lived key made outside it (directly in moto), so that calls
    /// signed with it are verified and accepted. Keys `CreateAccessKey` made through the front
    /// are learnt from its answer.
    pub fn register_key(&self, access_key_id: &str, secret_access_key: &str) {
        self.keys
            .lock()
            .unwrap()
            .insert(access_key_id.to_string(), secret_access_key.to_string());
    }

    /// The secret of a key the front knows, minted or long-lived.
    fn secret_of(&self, access_key_id: &str) -> Option<String> {
        if let Some(m) = self.minted.lock().unwrap().get(access_key_id) {
            return Some(m.secret_access_key.clone());
        }
        self.keys.lock().unwrap().get(access_key_id).cloned()
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
            SessionKind::Role,
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

    /// The expiration (RFC 3339, seconds, `Z`) of a set minted now for `requested`, or for the
    /// lifetime override when one is set (for mints outside STS calls: Roles Anywhere).
    pub fn expiration_for(&self, requested: std::time::Duration) -> String {
        let lifetime = self.lifetime.lock().unwrap().unwrap_or(requested);
        (chrono::Utc::now() + lifetime).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    /// How long a key made by `CreateAccessKey` is refused before it works (default: at once).
    pub fn set_key_propagation(&self, delay: std::time::Duration) {
        self.lifecycle.lock().unwrap().propagation = delay;
    }

    /// Marks a long-lived key inactive (refused) or active again, as `UpdateAccessKey` through
    /// the front would (for keys changed directly in moto).
    pub fn set_key_active(&self, key: &str, active: bool) {
        let mut lc = self.lifecycle.lock().unwrap();
        if active {
            lc.revoked.remove(key);
        } else {
            lc.revoked.insert(key.to_string());
        }
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
                if let (Some(id), Some(secret)) =
                    (tag(answer, "AccessKeyId"), tag(answer, "SecretAccessKey"))
                {
                    let at = Instant::now() + lc.propagation;
                    lc.usable_after.insert(id.to_string(), at);
                    drop(lc);
                    self.register_key(id, secret);
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

/// AWS's error answer, as STS words it.
pub fn error_xml(status: u16, code: &str, message: &str) -> Response {
    error_xml_of("sts", status, code, message)
}

/// AWS's error answer from `service` (`sts` or `iam`: the same shape, each with its namespace).
fn error_xml_of(service: &str, status: u16, code: &str, message: &str) -> Response {
    let kind = if status >= 500 { "Receiver" } else { "Sender" };
    let namespace = match service {
        "iam" => "https://iam.amazonaws.com/doc/2010-05-08/",
        _ => "https://sts.amazonaws.com/doc/2011-06-15/",
    };
    let body = format!(
        "<ErrorResponse xmlns=\"{namespace}\">\n  <Error>\n    <Type>{kind}</Type>\n    <Code>{code}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{}</RequestId>\n</ErrorResponse>\n",
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
    method: Method,
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
    front.arrivals.lock().unwrap().push(action.clone());
    let (access_key_id, scope_service) = signer(&headers);
    let service = scope_service.unwrap_or_else(|| "sts".into());
    let latency = front.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let request = Incoming {
        method: &method,
        uri: &uri,
        headers: &headers,
        body: &body,
    };
    let response = answer(&front, &action, &params, &request).await;
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

/// The request as received, for the signature check and for forwarding.
struct Incoming<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    body: &'a Bytes,
}

async fn answer(
    front: &StsFront,
    action: &str,
    params: &BTreeMap<String, String>,
    request: &Incoming<'_>,
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
            let mut r = call(front, action, params, request).await;
            r.extensions_mut().insert(DropConnection);
            return r;
        }
        None => {}
    }
    call(front, action, params, request).await
}

/// Who signed a request, once its signature checked out.
enum Signer {
    /// An action AWS serves unsigned (`AssumeRoleWithWebIdentity`), sent unsigned.
    Anonymous,
    /// A long-lived key (an IAM user's).
    Key,
    /// A set the front minted.
    Session(Minted),
}

/// Actions AWS accepts without a signature.
fn unsigned_allowed(action: &str) -> bool {
    matches!(action, "AssumeRoleWithWebIdentity" | "AssumeRoleWithSAML")
}

/// The service an action belongs to (`sts` or `iam`; the front serves both on one port).
fn service_of(action: &str) -> &'static str {
    if is_sts_action(action) {
        "sts"
    } else {
        "iam"
    }
}

/// AWS's answer to an access key id it does not know (with its period; AWS's answer to a session
/// token it does not accept has none: [`token_refused`]).
fn unknown_key(service: &str) -> Response {
    error_xml_of(
        service,
        403,
        "InvalidClientTokenId",
        "The security token included in the request is invalid.",
    )
}

/// AWS's answer to a session token it does not accept — a wrong one, or, from IAM, one from
/// `GetSessionToken` without MFA (every real sighting: `InvalidClientTokenId`, no period).
fn token_refused(service: &str) -> Response {
    error_xml_of(
        service,
        403,
        "InvalidClientTokenId",
        "The security token included in the request is invalid",
    )
}

/// AWS's authentication, in AWS's order: the header's form, the request time, the scope, the key
/// (and its session token), the signature, then the session's expiry.
// The refusal is the answer itself, built once per refused request: boxing it buys nothing.
#[allow(clippy::result_large_err)]
fn authenticate(
    front: &StsFront,
    action: &str,
    request: &Incoming<'_>,
) -> Result<Signer, Response> {
    let service = service_of(action);
    let refused = |r: sigv4::Refusal| {
        let status = match r {
            sigv4::Refusal::Incomplete(_) => 400,
            _ => 403,
        };
        error_xml_of(service, status, r.code(), &r.message())
    };
    let Some(value) = request
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
    else {
        if unsigned_allowed(action) {
            return Ok(Signer::Anonymous);
        }
        return Err(refused(sigv4::Refusal::Missing));
    };
    let auth = sigv4::parse_authorization(value).map_err(refused)?;
    if auth.service != service {
        return Err(refused(sigv4::Refusal::Scope(format!(
            "Credential should be scoped to correct service: '{service}'. "
        ))));
    }
    let minted = front
        .minted
        .lock()
        .unwrap()
        .get(&auth.access_key_id)
        .cloned();
    let Some(secret) = front.secret_of(&auth.access_key_id) else {
        return Err(unknown_key(service));
    };
    match &minted {
        Some(m) => {
            let token = request
                .headers
                .get("x-amz-security-token")
                .and_then(|v| v.to_str().ok());
            if token != Some(m.session_token.as_str()) {
                return Err(token_refused(service));
            }
        }
        None if front.key_refused(&auth.access_key_id) => return Err(unknown_key(service)),
        None => {}
    }
    let signed = sigv4::Request {
        method: request.method.as_str(),
        path: request.uri.path(),
        query: request.uri.query().unwrap_or(""),
        headers: request.headers,
        body: request.body,
    };
    sigv4::verify(&signed, &auth, &secret, chrono::Utc::now()).map_err(refused)?;
    let Some(m) = minted else {
        return Ok(Signer::Key);
    };
    let expired = chrono::DateTime::parse_from_rfc3339(&m.expiration)
        .map(|e| e < chrono::Utc::now())
        .unwrap_or(false);
    if expired {
        return Err(error_xml_of(
            service,
            403,
            "ExpiredToken",
            "The security token included in the request is expired",
        ));
    }
    Ok(Signer::Session(m))
}

/// What AWS refuses a session outright, whatever its policies say (STS API reference,
/// GetSessionToken; "Comparing the AWS STS API operations"): `GetSessionToken` (and
/// `GetFederationToken`) need long-term keys; a `GetSessionToken` set calls IAM only with MFA
/// (never here) and STS only for `AssumeRole` and `GetCallerIdentity`.
///
/// The wording is what AWS answers, not what its documentation suggests: IAM refuses such a set
/// as an invalid token (`InvalidClientTokenId`, seen in every public report — aws-vault#15,
/// #328, cloudyr/aws.iam#15, aws-cli#8918), not `AccessDenied`; STS answers `AccessDenied`
/// "Cannot call <Action> with session credentials" (aws-sdk-js#3670, granted#151).
fn session_refusal(m: &Minted, action: &str) -> Option<Response> {
    let cannot_call = || {
        error_xml(
            403,
            "AccessDenied",
            &format!("Cannot call {action} with session credentials"),
        )
    };
    if matches!(action, "GetSessionToken" | "GetFederationToken") {
        return Some(cannot_call());
    }
    if m.kind != SessionKind::UserSession {
        return None;
    }
    if !is_sts_action(action) {
        return Some(token_refused("iam"));
    }
    if !matches!(action, "AssumeRole" | "GetCallerIdentity") {
        return Some(cannot_call());
    }
    None
}

/// The call itself, past fault injection.
async fn call(
    front: &StsFront,
    action: &str,
    params: &BTreeMap<String, String>,
    request: &Incoming<'_>,
) -> Response {
    if action.is_empty() {
        return error_xml(400, "MissingAction", "Missing Action");
    }
    let signer = match authenticate(front, action, request) {
        Ok(s) => s,
        Err(refusal) => return refusal,
    };
    if let Signer::Session(m) = &signer {
        if let Some(refusal) = session_refusal(m, action) {
            return refusal;
        }
        if action == "GetCallerIdentity" {
            return caller_identity(&m.arn, &m.user_id, &m.account);
        }
        if front.revoked(m) {
            return error_xml_of(
                service_of(action),
                403,
                "AccessDenied",
                &format!(
                    "User: {} is not authorized to perform: {}:{action} with an explicit deny in an identity-based policy",
                    m.arn,
                    if is_sts_action(action) { "sts" } else { "iam" }
                ),
            );
        }
    }
    let forwarded = match forward(front, request.headers, request.body.clone(), request.uri).await {
        Ok(r) => r,
        Err(e) => return error_xml(503, "ServiceUnavailable", &format!("moto unreachable: {e}")),
    };
    let (status, mut text) = forwarded;
    if status == 200 && action == "CreateAccessKey" {
        // moto's secrets are random letters, digits, `+` and `/`, not always with both: give
        // the key one shaped like AWS's (moto never checks it).
        text = replace_tag(&text, "SecretAccessKey", &aws_secret());
    }
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
    let (arn, user_id, account, kind) = if action == "GetSessionToken" {
        let who = identity_of_signer(front, request.headers, request.uri).await;
        let (arn, user_id, account) = who.unwrap_or_else(|| {
            (
                "arn:aws:iam::123456789012:user/moto".into(),
                "AIDAEXAMPLE".into(),
                "123456789012".into(),
            )
        });
        (arn, user_id, account, SessionKind::UserSession)
    } else {
        let arn = tag(&text, "Arn").unwrap_or_default().to_string();
        let user_id = tag(&text, "AssumedRoleId").unwrap_or_default().to_string();
        let account = arn.split(':').nth(4).unwrap_or("123456789012").to_string();
        (arn, user_id, account, SessionKind::Role)
    };
    let lifetime = *front.lifetime.lock().unwrap();
    let expiration = match lifetime {
        Some(l) => (chrono::Utc::now() + l).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        None => tag(&text, "Expiration").unwrap_or_default().to_string(),
    };
    let minted = Minted::fresh(arn, user_id, account, expiration, kind);
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
            SessionKind::UserSession,
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
