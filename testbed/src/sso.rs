//! Fakes of the two AWS IAM Identity Center APIs a developer sign-in uses, which moto does not
//! implement (issue #11). Written from the AWS API references (SSO OIDC, and the portal's
//! `GetRoleCredentials`), the service models botocore ships, and RFC 8628:
//!
//! - **SSO OIDC** (`oidc.{region}.amazonaws.com`; REST-JSON, unsigned):
//!   `POST /client/register` `{clientName, clientType: "public", scopes?}` →
//!   `{clientId, clientSecret, clientIdIssuedAt, clientSecretExpiresAt}` (epoch seconds);
//!   `POST /device_authorization` `{clientId, clientSecret, startUrl}` →
//!   `{deviceCode, userCode, verificationUri, verificationUriComplete, expiresIn, interval}`;
//!   `POST /token` `{clientId, clientSecret, grantType, deviceCode | refreshToken}` →
//!   `{accessToken, tokenType: "Bearer", expiresIn, refreshToken?}`. Refresh tokens are issued
//!   only to clients registered with scopes, as the service does for `sso-session`s.
//! - **SSO portal** (`portal.sso.{region}.amazonaws.com`): `GET /federation/credentials
//!   ?role_name=&account_id=` with the access token in `x-amz-sso_bearer_token` →
//!   `{roleCredentials: {accessKeyId, secretAccessKey, sessionToken, expiration}}`, expiration
//!   in epoch **milliseconds**. The credentials are minted through the [`StsFront`], so STS (and
//!   the AWS CLI) accept them and `GetCallerIdentity` answers the SSO role's assumed-role ARN.
//!
//! Errors are what both SDKs parse: the API reference's status, the `x-amzn-errortype` header
//! naming the exception, and the body — `{"error": "authorization_pending", "error_description":
//! …}` for OIDC, `{"message": …}` for the portal. Device codes follow RFC 8628: pending until
//! approved (a token is issued once), denied, or expired; a poll sooner than the interval answers
//! `slow_down`, and every `slow_down` adds 5 s to the interval the fake then enforces.
//!
//! Test hooks: [`SsoFake::approve`] / [`SsoFake::deny`] / [`SsoFake::expire`] a user code, or
//! [`SsoFake::set_auto`] to answer by script; [`SsoFake::slow_down_next`]; role
//! [`SsoFake::assign`]ments; [`SsoFake::revoke_access_tokens`]; a call log; [`Faults`] per
//! operation; and [`SsoFake::secret_values`] for the leak search. A person (or curl) can approve a
//! code at `GET/POST /device` on the OIDC server, which is the verification URI it hands out.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::faults::{Fault, Faults};
use crate::request_id;
use crate::serve::DropConnection;
use crate::sts::StsFront;

/// The account and role the fake assigns to its user by default.
pub const ACCOUNT_ID: &str = "111122223333";
pub const ROLE_NAME: &str = "DeveloperAccess";
/// The start URL the test bed's examples use (the fake accepts any https URL).
pub const START_URL: &str = "https://testbed.awsapps.com/start";

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// RFC 8628 §3.5.
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// Lifetimes and intervals, as the real service uses them unless a test changes them.
#[derive(Clone, Debug)]
pub struct SsoConfig {
    /// Who signs in (the session name of the role credentials).
    pub user: String,
    pub client_lifetime: chrono::Duration,
    pub token_lifetime: chrono::Duration,
    pub device_lifetime: Duration,
    /// The polling interval StartDeviceAuthorization asks for, in seconds.
    pub interval: u64,
    pub role_credentials_lifetime: chrono::Duration,
}

impl Default for SsoConfig {
    fn default() -> Self {
        Self {
            user: "developer@example.com".into(),
            client_lifetime: chrono::Duration::days(90),
            token_lifetime: chrono::Duration::hours(8),
            device_lifetime: Duration::from_secs(600),
            interval: 1,
            role_credentials_lifetime: chrono::Duration::hours(1),
        }
    }
}

/// How pending device codes are answered without a test calling a hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auto {
    /// Stay pending until [`SsoFake::approve`] (or a person at `/device`).
    Wait,
    /// The first `after_polls` polls of a code see it pending, the next one approved.
    Approve { after_polls: u32 },
    /// … denied (`access_denied`).
    Deny { after_polls: u32 },
    /// … expired (`expired_token`).
    Expire { after_polls: u32 },
}

/// One request either fake answered.
#[derive(Clone, Debug)]
pub struct SsoCall {
    /// `RegisterClient`, `StartDeviceAuthorization`, `CreateToken`, `GetRoleCredentials`.
    pub operation: String,
    pub status: u16,
    /// The exception named in `x-amzn-errortype`, for errors.
    pub error: Option<String>,
    pub client_id: Option<String>,
    /// CreateToken's `grantType`.
    pub grant_type: Option<String>,
    /// GetRoleCredentials' bearer token (to prove which sign-in a client used).
    pub access_token: Option<String>,
    pub at: Instant,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DeviceState {
    Pending,
    Approved,
    Denied,
    Issued,
}

struct Client {
    secret: String,
    expires_at: DateTime<Utc>,
    scopes: Vec<String>,
}

struct Device {
    client_id: String,
    user_code: String,
    state: DeviceState,
    expires_at: Instant,
    interval: Duration,
    last_poll: Option<Instant>,
    polls: u32,
}

struct AccessToken {
    expires_at: DateTime<Utc>,
    revoked: bool,
}

#[derive(Default)]
struct Store {
    clients: HashMap<String, Client>,
    devices: HashMap<String, Device>,
    access_tokens: HashMap<String, AccessToken>,
    /// refresh token → client id
    refresh_tokens: HashMap<String, String>,
    /// Every secret ever issued (revoked ones included), for the leak search.
    issued: Vec<String>,
    assignments: HashSet<(String, String)>,
    calls: Vec<SsoCall>,
    slow_downs: u32,
    auto: Option<Auto>,
}

/// Both fakes' shared state (see the module docs).
pub struct SsoFake {
    state: Mutex<Store>,
    config: Mutex<SsoConfig>,
    sts: Arc<StsFront>,
    pub faults: Faults,
    /// The OIDC server's base URL, for the verification URI it hands out.
    verification_base: Mutex<String>,
}

impl std::fmt::Debug for SsoFake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoFake").finish_non_exhaustive()
    }
}

impl SsoFake {
    pub fn new(sts: Arc<StsFront>) -> Arc<Self> {
        let fake = Self {
            state: Mutex::default(),
            config: Mutex::default(),
            sts,
            faults: Faults::default(),
            verification_base: Mutex::new("https://device.sso.us-east-1.amazonaws.com".into()),
        };
        fake.assign(ACCOUNT_ID, ROLE_NAME);
        Arc::new(fake)
    }

    pub(crate) fn set_verification_base(&self, base: &str) {
        *self.verification_base.lock().unwrap() = base.trim_end_matches('/').to_string();
    }

    pub fn config(&self) -> SsoConfig {
        self.config.lock().unwrap().clone()
    }

    pub fn set_config(&self, config: SsoConfig) {
        *self.config.lock().unwrap() = config;
    }

    /// Lets the user get credentials for `role` in `account`.
    pub fn assign(&self, account: &str, role: &str) {
        self.state
            .lock()
            .unwrap()
            .assignments
            .insert((account.to_string(), role.to_string()));
    }

    /// Answers pending device codes by script from now on.
    pub fn set_auto(&self, auto: Auto) {
        self.state.lock().unwrap().auto = Some(auto);
    }

    /// The next `n` device-code polls answer `slow_down`.
    pub fn slow_down_next(&self, n: u32) {
        self.state.lock().unwrap().slow_downs = n;
    }

    /// The user codes still waiting for approval.
    pub fn pending_user_codes(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .devices
            .values()
            .filter(|d| d.state == DeviceState::Pending && Instant::now() < d.expires_at)
            .map(|d| d.user_code.clone())
            .collect()
    }

    fn with_user_code(&self, user_code: &str, f: impl FnOnce(&mut Device)) -> bool {
        let mut state = self.state.lock().unwrap();
        match state
            .devices
            .values_mut()
            .find(|d| d.user_code == user_code && d.state == DeviceState::Pending)
        {
            Some(d) => {
                f(d);
                true
            }
            None => false,
        }
    }

    /// The user approves the sign-in with this code in the browser; false if no such pending code.
    pub fn approve(&self, user_code: &str) -> bool {
        self.with_user_code(user_code, |d| d.state = DeviceState::Approved)
    }

    /// The user refuses it.
    pub fn deny(&self, user_code: &str) -> bool {
        self.with_user_code(user_code, |d| d.state = DeviceState::Denied)
    }

    /// The code runs out of time now.
    pub fn expire(&self, user_code: &str) -> bool {
        self.with_user_code(user_code, |d| d.expires_at = Instant::now())
    }

    /// Signs the user out everywhere: every access token issued so far is refused.
    pub fn revoke_access_tokens(&self) {
        for t in self.state.lock().unwrap().access_tokens.values_mut() {
            t.revoked = true;
        }
    }

    pub fn calls(&self) -> Vec<SsoCall> {
        self.state.lock().unwrap().calls.clone()
    }

    /// The calls of one operation.
    pub fn calls_of(&self, operation: &str) -> Vec<SsoCall> {
        self.calls()
            .into_iter()
            .filter(|c| c.operation == operation)
            .collect()
    }

    pub fn clear_calls(&self) {
        self.state.lock().unwrap().calls.clear();
    }

    /// Every client secret, device code, access token and refresh token issued.
    pub fn secret_values(&self) -> Vec<String> {
        self.state.lock().unwrap().issued.clone()
    }

    fn record(&self, call: SsoCall) {
        self.state.lock().unwrap().calls.push(call);
    }
}

/// An OIDC error: status, `x-amzn-errortype`, and `{"error", "error_description"}`.
fn oidc_error(status: u16, exception: &str, error: &str, description: &str) -> Response {
    let body = json!({"error": error, "error_description": description});
    error_response(status, exception, body)
}

/// A portal error: status, `x-amzn-errortype`, and `{"message"}`.
fn portal_error(status: u16, exception: &str, message: &str) -> Response {
    error_response(status, exception, json!({ "message": message }))
}

fn error_response(status: u16, exception: &str, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        [
            ("content-type", "application/json"),
            ("x-amzn-errortype", exception),
            ("x-amzn-requestid", &request_id()),
        ],
        body.to_string(),
    )
        .into_response()
}

fn ok_json(body: Value) -> Response {
    (
        StatusCode::OK,
        [
            ("content-type", "application/json"),
            ("x-amzn-requestid", &request_id()),
        ],
        body.to_string(),
    )
        .into_response()
}

fn invalid_request(description: &str) -> Response {
    oidc_error(
        400,
        "InvalidRequestException",
        "invalid_request",
        description,
    )
}

/// An OIDC error decided by a helper, turned into its answer by the handler.
struct Refusal {
    status: u16,
    exception: &'static str,
    error: &'static str,
    description: &'static str,
}

impl Refusal {
    fn invalid_request(description: &'static str) -> Self {
        Self {
            status: 400,
            exception: "InvalidRequestException",
            error: "invalid_request",
            description,
        }
    }

    fn response(&self) -> Response {
        oidc_error(self.status, self.exception, self.error, self.description)
    }
}

/// An injected fault, answered in the service's own error shape.
fn fault_response(fault: Fault, portal: bool) -> Option<Response> {
    match fault {
        Fault::Delay(_) => None,
        // Nothing here commits anything a test looks at afterwards: both just drop.
        Fault::Drop | Fault::CommitThenDrop => {
            let mut r = StatusCode::INTERNAL_SERVER_ERROR.into_response();
            r.extensions_mut().insert(DropConnection);
            Some(r)
        }
        Fault::Error {
            status,
            code,
            message,
            ..
        } => Some(if portal {
            portal_error(status, &code, &message)
        } else {
            oidc_error(status, &code, "server_error", &message)
        }),
    }
}

/// The body's string field `name`.
fn field(body: &Value, name: &str) -> Option<String> {
    body.get(name).and_then(Value::as_str).map(str::to_string)
}

/// RFC 8628 §6.1: eight characters of a consonant alphabet, easy to read and type.
fn user_code() -> String {
    use rand::RngExt;
    const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
    let mut rng = rand::rng();
    let mut code: String = (0..8)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    code.insert(4, '-');
    code
}

/// An opaque token shaped like the service's (`aoa…`/`aor…` access and refresh tokens, device
/// codes): `len` characters of base64 after `prefix`, always with `+` and `/` (and `=` padding
/// when `len` is not a multiple of 4), the characters a careless cache writer mangles.
fn opaque(prefix: &str, len: usize) -> String {
    use base64::Engine;
    use rand::RngExt;
    let mut rng = rand::rng();
    let bytes: Vec<u8> = (0..len * 3 / 4).map(|_| rng.random()).collect();
    let mut body = base64::engine::general_purpose::STANDARD.encode(bytes);
    crate::with_chars(&mut body, b"+/");
    format!("{prefix}{body}")
}

/// A client secret shaped like the service's: a JWT (base64url header, payload and signature).
fn jwt_secret() -> String {
    use base64::Engine;
    use rand::RngExt;
    let mut rng = rand::rng();
    let mut part = |n: usize| {
        let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    };
    format!(
        "eyJraWQiOiJrZXktMTU2NDAyODA5OSIsImFsZyI6IkhTMzg0In0.{}.{}",
        part(160),
        part(48)
    )
}

pub fn oidc_router(fake: Arc<SsoFake>) -> Router {
    Router::new()
        .route("/client/register", post(register_client))
        .route("/device_authorization", post(start_device_authorization))
        .route("/token", post(create_token))
        .route("/device", get(device_page).post(device_decision))
        .with_state(fake)
}

pub fn portal_router(fake: Arc<SsoFake>) -> Router {
    Router::new()
        .route("/federation/credentials", get(get_role_credentials))
        .with_state(fake)
}

fn parse_body(body: &Bytes) -> Result<Value, Refusal> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| Refusal::invalid_request("The request body is not a JSON object"))
}

/// Common to every operation: latency, injected faults, the call log.
async fn answer(
    fake: &SsoFake,
    operation: &str,
    portal: bool,
    mut call: SsoCall,
    handle: impl FnOnce() -> Response,
) -> Response {
    let latency = fake.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = match fake.faults.check(operation, None) {
        Some(Fault::Delay(d)) => {
            tokio::time::sleep(d).await;
            handle()
        }
        Some(fault) => fault_response(fault, portal).expect("not a delay"),
        None => handle(),
    };
    call.status = response.status().as_u16();
    call.error = response
        .headers()
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    fake.record(call);
    response
}

fn new_call(operation: &str) -> SsoCall {
    SsoCall {
        operation: operation.into(),
        status: 0,
        error: None,
        client_id: None,
        grant_type: None,
        access_token: None,
        at: Instant::now(),
    }
}

async fn register_client(State(fake): State<Arc<SsoFake>>, body: Bytes) -> Response {
    let body = parse_body(&body);
    let call = new_call("RegisterClient");
    answer(&fake, "RegisterClient", false, call, || {
        let body = match body {
            Ok(b) => b,
            Err(r) => return r.response(),
        };
        let (Some(_name), Some(kind)) = (field(&body, "clientName"), field(&body, "clientType"))
        else {
            return invalid_request("clientName and clientType are required");
        };
        if kind != "public" {
            return oidc_error(
                400,
                "InvalidClientMetadataException",
                "invalid_client_metadata",
                "Invalid client type",
            );
        }
        let scopes: Vec<String> = body
            .get("scopes")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if scopes.iter().any(|s| !s.starts_with("sso:")) {
            return oidc_error(
                400,
                "InvalidScopeException",
                "invalid_scope",
                "Invalid scope",
            );
        }
        let now = Utc::now();
        let expires_at = now + fake.config().client_lifetime;
        // Client ids are base64url (they appear in the CLI's cache file names' inputs).
        let id = {
            use base64::Engine;
            use rand::RngExt;
            let bytes: [u8; 16] = rand::rng().random();
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        };
        let secret = jwt_secret();
        let mut state = fake.state.lock().unwrap();
        state.issued.push(secret.clone());
        state.clients.insert(
            id.clone(),
            Client {
                secret: secret.clone(),
                expires_at,
                scopes,
            },
        );
        ok_json(json!({
            "clientId": id,
            "clientSecret": secret,
            "clientIdIssuedAt": now.timestamp(),
            "clientSecretExpiresAt": expires_at.timestamp(),
        }))
    })
    .await
}

/// The registered client these credentials name, or the service's `invalid_client`.
fn check_client(state: &Store, body: &Value) -> Result<String, Refusal> {
    let (Some(id), Some(secret)) = (field(body, "clientId"), field(body, "clientSecret")) else {
        return Err(Refusal::invalid_request(
            "clientId and clientSecret are required",
        ));
    };
    match state.clients.get(&id) {
        Some(c) if c.secret == secret && c.expires_at > Utc::now() => Ok(id),
        _ => Err(Refusal {
            status: 401,
            exception: "InvalidClientException",
            error: "invalid_client",
            description: "Invalid client",
        }),
    }
}

async fn start_device_authorization(State(fake): State<Arc<SsoFake>>, body: Bytes) -> Response {
    let body = parse_body(&body);
    let mut call = new_call("StartDeviceAuthorization");
    if let Ok(b) = &body {
        call.client_id = field(b, "clientId");
    }
    answer(&fake, "StartDeviceAuthorization", false, call, || {
        let body = match body {
            Ok(b) => b,
            Err(r) => return r.response(),
        };
        let config = fake.config();
        let base = fake.verification_base.lock().unwrap().clone();
        let mut state = fake.state.lock().unwrap();
        let client_id = match check_client(&state, &body) {
            Ok(id) => id,
            Err(r) => return r.response(),
        };
        let Some(start_url) = field(&body, "startUrl") else {
            return invalid_request("startUrl is required");
        };
        if !start_url.starts_with("https://") {
            return invalid_request("Invalid start URL");
        }
        let device_code = opaque("", 120);
        let code = user_code();
        state.issued.push(device_code.clone());
        state.devices.insert(
            device_code.clone(),
            Device {
                client_id,
                user_code: code.clone(),
                state: DeviceState::Pending,
                expires_at: Instant::now() + config.device_lifetime,
                interval: Duration::from_secs(config.interval),
                last_poll: None,
                polls: 0,
            },
        );
        ok_json(json!({
            "deviceCode": device_code,
            "userCode": code,
            "verificationUri": format!("{base}/device"),
            "verificationUriComplete": format!("{base}/device?user_code={code}"),
            "expiresIn": config.device_lifetime.as_secs(),
            "interval": config.interval,
        }))
    })
    .await
}

async fn create_token(State(fake): State<Arc<SsoFake>>, body: Bytes) -> Response {
    let body = parse_body(&body);
    let mut call = new_call("CreateToken");
    if let Ok(b) = &body {
        call.client_id = field(b, "clientId");
        call.grant_type = field(b, "grantType");
    }
    answer(&fake, "CreateToken", false, call, || {
        let body = match body {
            Ok(b) => b,
            Err(r) => return r.response(),
        };
        let config = fake.config();
        let mut state = fake.state.lock().unwrap();
        let client_id = match check_client(&state, &body) {
            Ok(id) => id,
            Err(r) => return r.response(),
        };
        match field(&body, "grantType").as_deref() {
            Some(DEVICE_GRANT) => device_grant(&mut state, &config, &client_id, &body),
            Some("refresh_token") => refresh_grant(&mut state, &config, &client_id, &body),
            Some(_) => oidc_error(
                400,
                "UnsupportedGrantTypeException",
                "unsupported_grant_type",
                "Unsupported grant type",
            ),
            None => invalid_request("grantType is required"),
        }
    })
    .await
}

/// Issues an access token (and a refresh token for scoped clients) to `client_id`.
fn issue_token(state: &mut Store, config: &SsoConfig, client_id: &str) -> Response {
    let access = opaque("aoa", 400);
    state.issued.push(access.clone());
    state.access_tokens.insert(
        access.clone(),
        AccessToken {
            expires_at: Utc::now() + config.token_lifetime,
            revoked: false,
        },
    );
    let mut out = json!({
        "accessToken": access,
        "tokenType": "Bearer",
        "expiresIn": config.token_lifetime.num_seconds(),
    });
    if state
        .clients
        .get(client_id)
        .is_some_and(|c| !c.scopes.is_empty())
    {
        let refresh = opaque("aor", 400);
        state.issued.push(refresh.clone());
        state
            .refresh_tokens
            .insert(refresh.clone(), client_id.to_string());
        out["refreshToken"] = refresh.into();
    }
    ok_json(out)
}

/// What a device-code poll comes to.
enum Poll {
    Error(&'static str, &'static str, &'static str),
    SlowDown { forced: bool },
    Issue,
}

fn poll_device(device: &mut Device, forced_slow_down: bool, auto: Option<Auto>) -> Poll {
    const EXPIRED: Poll = Poll::Error(
        "ExpiredTokenException",
        "expired_token",
        "Device code has expired",
    );
    let now = Instant::now();
    if now >= device.expires_at {
        return EXPIRED;
    }
    device.polls += 1;
    let too_fast = device
        .last_poll
        .is_some_and(|last| now.duration_since(last) < device.interval);
    device.last_poll = Some(now);
    if too_fast || forced_slow_down {
        device.interval += SLOW_DOWN_STEP;
        return Poll::SlowDown {
            forced: forced_slow_down,
        };
    }
    if device.state == DeviceState::Pending {
        match auto {
            Some(Auto::Approve { after_polls }) if device.polls > after_polls => {
                device.state = DeviceState::Approved
            }
            Some(Auto::Deny { after_polls }) if device.polls > after_polls => {
                device.state = DeviceState::Denied
            }
            Some(Auto::Expire { after_polls }) if device.polls > after_polls => {
                device.expires_at = now;
                return EXPIRED;
            }
            _ => {}
        }
    }
    match device.state {
        DeviceState::Pending => Poll::Error(
            "AuthorizationPendingException",
            "authorization_pending",
            "Authorization is still pending",
        ),
        DeviceState::Denied => Poll::Error(
            "AccessDeniedException",
            "access_denied",
            "The user denied the authorization request",
        ),
        DeviceState::Approved => {
            device.state = DeviceState::Issued;
            Poll::Issue
        }
        DeviceState::Issued => Poll::Error(
            "InvalidGrantException",
            "invalid_grant",
            "Invalid device code provided",
        ),
    }
}

fn device_grant(state: &mut Store, config: &SsoConfig, client_id: &str, body: &Value) -> Response {
    let Some(code) = field(body, "deviceCode") else {
        return invalid_request("deviceCode is required");
    };
    let (forced, auto) = (state.slow_downs > 0, state.auto);
    let outcome = match state.devices.get_mut(&code) {
        Some(device) if device.client_id == client_id => poll_device(device, forced, auto),
        _ => Poll::Error(
            "InvalidGrantException",
            "invalid_grant",
            "Invalid device code provided",
        ),
    };
    match outcome {
        Poll::Error(exception, error, description) => {
            oidc_error(400, exception, error, description)
        }
        Poll::SlowDown { forced } => {
            if forced {
                state.slow_downs -= 1;
            }
            oidc_error(
                400,
                "SlowDownException",
                "slow_down",
                "Client is polling too quickly",
            )
        }
        Poll::Issue => issue_token(state, config, client_id),
    }
}

fn refresh_grant(state: &mut Store, config: &SsoConfig, client_id: &str, body: &Value) -> Response {
    let Some(refresh) = field(body, "refreshToken") else {
        return invalid_request("refreshToken is required");
    };
    if state.refresh_tokens.get(&refresh).map(String::as_str) != Some(client_id) {
        return oidc_error(
            400,
            "InvalidGrantException",
            "invalid_grant",
            "Invalid refresh token provided",
        );
    }
    // Refresh tokens rotate: the one just used is spent.
    state.refresh_tokens.remove(&refresh);
    issue_token(state, config, client_id)
}

#[derive(Deserialize)]
struct RoleQuery {
    role_name: Option<String>,
    account_id: Option<String>,
}

async fn get_role_credentials(
    State(fake): State<Arc<SsoFake>>,
    headers: HeaderMap,
    Query(query): Query<RoleQuery>,
) -> Response {
    let token = headers
        .get("x-amz-sso_bearer_token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut call = new_call("GetRoleCredentials");
    call.access_token = token.clone();
    answer(&fake, "GetRoleCredentials", true, call, || {
        let config = fake.config();
        let state = fake.state.lock().unwrap();
        let valid = token
            .as_ref()
            .and_then(|t| state.access_tokens.get(t))
            .is_some_and(|t| !t.revoked && t.expires_at > Utc::now());
        if !valid {
            return portal_error(
                401,
                "UnauthorizedException",
                "Session token not found or invalid",
            );
        }
        let (Some(role), Some(account)) = (query.role_name, query.account_id) else {
            return portal_error(
                400,
                "InvalidRequestException",
                "role_name and account_id are required",
            );
        };
        if !state.assignments.contains(&(account.clone(), role.clone())) {
            return portal_error(403, "ForbiddenException", "No access");
        }
        drop(state);
        let expires = Utc::now() + config.role_credentials_lifetime;
        let arn = format!(
            "arn:aws:sts::{account}:assumed-role/AWSReservedSSO_{role}_0123456789abcdef/{}",
            config.user
        );
        let minted = fake.sts.issue(
            &arn,
            &format!("AROAEXAMPLESSOROLE:{}", config.user),
            &account,
            &expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
        ok_json(json!({
            "roleCredentials": {
                "accessKeyId": minted.access_key_id,
                "secretAccessKey": minted.secret_access_key,
                "sessionToken": minted.session_token,
                "expiration": expires.timestamp_millis(),
            }
        }))
    })
    .await
}

#[derive(Deserialize)]
struct DeviceForm {
    user_code: Option<String>,
    action: Option<String>,
}

/// The verification page: what a person sees after following the URL the CLI prints.
async fn device_page(Query(q): Query<DeviceForm>) -> Html<String> {
    let code = q.user_code.unwrap_or_default();
    let code = html_escape(&code);
    Html(format!(
        "<!doctype html><title>Test bed sign-in</title><h1>Authorize request</h1>\
         <p>A sign-in to the stsbridge test bed's IAM Identity Center was requested.</p>\
         <form method=post><label>Code <input name=user_code value=\"{code}\"></label> \
         <button name=action value=approve>Allow</button> \
         <button name=action value=deny>Deny</button></form>"
    ))
}

async fn device_decision(
    State(fake): State<Arc<SsoFake>>,
    Form(form): Form<DeviceForm>,
) -> Response {
    let code = form
        .user_code
        .unwrap_or_default()
        .trim()
        .to_ascii_uppercase();
    let done = match form.action.as_deref() {
        Some("deny") => fake.deny(&code),
        _ => fake.approve(&code),
    };
    if done {
        (
            StatusCode::OK,
            "Request handled: return to your terminal.\n",
        )
            .into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            "No pending sign-in has that code (it may have expired).\n",
        )
            .into_response()
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_two_groups_of_four_consonants() {
        let code = user_code();
        assert_eq!(code.len(), 9);
        assert_eq!(&code[4..5], "-");
        assert!(code
            .chars()
            .filter(|c| *c != '-')
            .all(|c| "BCDFGHJKLMNPQRSTVWXZ".contains(c)));
    }
}
