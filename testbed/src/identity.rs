//! The App Service managed-identity endpoint, and the registry of the tokens it issued.
//!
//! Protocol (what `azure_identity`'s `ManagedIdentityCredential` speaks when `IDENTITY_ENDPOINT`
//! and `IDENTITY_HEADER` are set, see `../shared/PROTOCOL.md` §2):
//! `GET {endpoint}?api-version=2019-08-01&resource=R[&client_id=…]` with header
//! `X-IDENTITY-HEADER`, answered with
//! `{"access_token","expires_on":"<unix seconds as a string>","resource","token_type":"Bearer"}`.
//!
//! Tokens are JWT-shaped (`header.claims.signature`, base64url) and carry `aud` (the requested
//! resource), `iss` (a v1 Entra issuer), `sub`/`oid` (the identity's object id), `tid`, `appid`,
//! `iat`, `nbf`, `exp`: the claims AWS checks in `AssumeRoleWithWebIdentity`. The signature is
//! random; the Key Vault server accepts a token only if this registry issued it for its resource.
//!
//! Every token request is logged with its timings ([`TokenIssuer::requests`]) and waits the
//! latency set with `faults.set_latency`, like the other servers' requests: the benchmarks count
//! round trips over every server a rotation talks to, this one included.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Query, State};

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use serde_json::json;

use crate::faults::Faults;
use crate::random_hex;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Who the identity is, as the tokens describe it.
#[derive(Clone, Debug)]
pub struct IdentityConfig {
    pub tenant_id: String,
    pub object_id: String,
    pub client_id: String,
    /// The value the caller must send in `X-IDENTITY-HEADER` (`IDENTITY_HEADER`).
    pub header_secret: String,
    pub token_lifetime_secs: i64,
    /// Resources (audiences) that exist in the tenant; a token for any other is refused, as
    /// Entra ID refuses one for an application that does not exist (AADSTS500011).
    pub known_audiences: Vec<String>,
    /// An app registration that can get tokens with a client secret (seed 001's snippet).
    pub app_client_id: String,
    pub app_client_secret: String,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            tenant_id: "00000000-0000-4000-8000-00000000a2a2".into(),
            object_id: "11111111-1111-4111-8111-111111111111".into(),
            client_id: "22222222-2222-4222-8222-222222222222".into(),
            header_secret: random_hex(16),
            token_lifetime_secs: 3600,
            known_audiences: vec!["https://vault.test".into(), "api://stsbridge-aws".into()],
            app_client_id: "33333333-3333-4333-8333-333333333333".into(),
            app_client_secret: format!("cs~{}", random_hex(16)),
        }
    }
}

/// A token this registry issued.
#[derive(Clone, Debug)]
pub struct IssuedToken {
    pub audience: String,
    pub expires_at: i64,
}

/// One call to the identity endpoint (or the client-secret token endpoint), for tests; with its
/// timings, as the other servers' logs have them, so round trips can be counted.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    pub resource: String,
    pub client_id: Option<String>,
    pub granted: bool,
    /// When the request arrived (before the injected latency).
    pub started: Instant,
    /// When its answer was ready.
    pub finished: Instant,
}

/// Issues and remembers tokens; shared by the identity endpoint and the Key Vault server.
#[derive(Debug)]
pub struct TokenIssuer {
    pub config: IdentityConfig,
    issued: Mutex<HashMap<String, IssuedToken>>,
    requests: Mutex<Vec<TokenRequest>>,
    /// Audiences added once their servers have bound a port (e.g. the ARM endpoint's URL).
    extra_audiences: Mutex<Vec<String>>,
    /// Latency added to every token request, on both token endpoints (only the latency is used:
    /// `faults.set_latency`, as on the other servers; the benchmarks put it on every server).
    pub faults: Faults,
}

impl TokenIssuer {
    pub fn new(config: IdentityConfig) -> Arc<Self> {
        Arc::new(Self {
            config,
            issued: Mutex::default(),
            requests: Mutex::default(),
            extra_audiences: Mutex::default(),
            faults: Faults::default(),
        })
    }

    /// The issuer URL in the tokens (Entra ID v1 form).
    pub fn issuer(&self) -> String {
        format!("https://sts.windows.net/{}/", self.config.tenant_id)
    }

    /// Whether an application with this audience exists in the tenant.
    pub fn knows(&self, audience: &str) -> bool {
        let a = audience.trim_end_matches('/');
        self.config
            .known_audiences
            .iter()
            .chain(self.extra_audiences.lock().unwrap().iter())
            .any(|k| k.trim_end_matches('/') == a)
    }

    /// Makes one more audience known (a server whose URL is known only once it is bound).
    pub fn add_audience(&self, audience: &str) {
        self.extra_audiences
            .lock()
            .unwrap()
            .push(audience.to_string());
    }

    /// Mints a token for `audience` as the managed identity; returns it with its expiry.
    pub fn issue(&self, audience: &str) -> (String, i64) {
        let (object_id, client_id) = (self.config.object_id.clone(), self.config.client_id.clone());
        self.issue_as(audience, &object_id, &client_id)
    }

    /// Mints a token for `audience` as the given principal.
    pub fn issue_as(&self, audience: &str, object_id: &str, client_id: &str) -> (String, i64) {
        let now = chrono::Utc::now().timestamp();
        let exp = now + self.config.token_lifetime_secs;
        let header = json!({"typ": "JWT", "alg": "RS256", "kid": "testbed"});
        let claims = json!({
            "aud": audience,
            "iss": self.issuer(),
            "sub": object_id,
            "oid": object_id,
            "tid": self.config.tenant_id,
            "appid": client_id,
            "idtyp": "app",
            "iat": now,
            "nbf": now,
            "exp": exp,
            "jti": random_hex(16),
        });
        let signature: Vec<u8> = (0..64).map(|_| rand::random::<u8>()).collect();
        let token = format!(
            "{}.{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string()),
            B64.encode(signature)
        );
        self.issued.lock().unwrap().insert(
            token.clone(),
            IssuedToken {
                audience: audience.to_string(),
                expires_at: exp,
            },
        );
        (token, exp)
    }

    /// Whether `token` was issued here for `audience` and is unexpired; `Err` says why not.
    pub fn validate(&self, token: &str, audience: &str) -> Result<(), &'static str> {
        let issued = self.issued.lock().unwrap();
        let Some(t) = issued.get(token) else {
            return Err("AKV10032: Invalid issuer. The token was not issued by the identity this vault trusts.");
        };
        if t.audience.trim_end_matches('/') != audience.trim_end_matches('/') {
            return Err("AKV10022: Invalid audience.");
        }
        if t.expires_at <= chrono::Utc::now().timestamp() {
            return Err("AKV10013: The access token has expired.");
        }
        Ok(())
    }

    /// The token requests seen so far.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// A request's arrival: its time, after the injected latency has passed.
    async fn arrive(&self) -> Instant {
        let started = Instant::now();
        let latency = self.faults.latency();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        started
    }

    /// Every token issued so far (for secret-leak searches).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.issued.lock().unwrap().keys().cloned().collect()
    }
}

/// Decodes the claims of a JWT-shaped token, without checking anything.
pub fn claims_of(token: &str) -> Option<serde_json::Value> {
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&B64.decode(payload).ok()?).ok()
}

/// The identity endpoint's router; mount it at `/msi/token`.
pub fn router(issuer: Arc<TokenIssuer>) -> Router {
    Router::new()
        .route("/msi/token", get(token))
        .with_state(issuer)
}

/// The Entra ID token endpoint for client-secret apps (`AZURE_AUTHORITY_HOST`; serve over TLS):
/// `POST /{tenant}/oauth2/v2.0/token` with the client-credentials grant.
pub fn login_router(issuer: Arc<TokenIssuer>) -> Router {
    Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/token",
            axum::routing::post(login_token),
        )
        .with_state(issuer)
}

fn aad_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description, "error_codes": []})),
    )
        .into_response()
}

async fn login_token(
    State(issuer): State<Arc<TokenIssuer>>,
    axum::extract::Path(tenant): axum::extract::Path<String>,
    axum::extract::Form(form): axum::extract::Form<HashMap<String, String>>,
) -> Response {
    let started = issuer.arrive().await;
    let scope = form.get("scope").cloned().unwrap_or_default();
    let audience = scope.trim_end_matches("/.default").to_string();
    let record = |granted| {
        issuer.requests.lock().unwrap().push(TokenRequest {
            resource: audience.clone(),
            client_id: form.get("client_id").cloned(),
            granted,
            started,
            finished: Instant::now(),
        })
    };
    if tenant != issuer.config.tenant_id {
        record(false);
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("AADSTS90002: Tenant '{tenant}' not found."),
        );
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        record(false);
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "AADSTS70003: The app requested an unsupported grant type.",
        );
    }
    if form.get("client_id") != Some(&issuer.config.app_client_id)
        || form.get("client_secret") != Some(&issuer.config.app_client_secret)
    {
        record(false);
        return aad_error(StatusCode::UNAUTHORIZED, "invalid_client", "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.");
    }
    if !issuer.knows(&audience) {
        record(false);
        return aad_error(StatusCode::BAD_REQUEST, "invalid_resource", &format!("AADSTS500011: The resource principal named {audience} was not found in the tenant named {tenant}."));
    }
    record(true);
    let app = issuer.config.app_client_id.clone();
    let (access_token, exp) = issuer.issue_as(&audience, &format!("{app}-sp"), &app);
    Json(json!({
        "token_type": "Bearer",
        "expires_in": exp - chrono::Utc::now().timestamp(),
        "ext_expires_in": exp - chrono::Utc::now().timestamp(),
        "access_token": access_token,
    }))
    .into_response()
}

async fn token(
    State(issuer): State<Arc<TokenIssuer>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let started = issuer.arrive().await;
    let resource = query.get("resource").cloned().unwrap_or_default();
    let client_id = query.get("client_id").cloned();
    let record = |granted| {
        issuer.requests.lock().unwrap().push(TokenRequest {
            resource: resource.clone(),
            client_id: client_id.clone(),
            granted,
            started,
            finished: Instant::now(),
        })
    };
    let secret = headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok());
    if secret != Some(issuer.config.header_secret.as_str()) {
        record(false);
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"statusCode": 401, "message": "X-IDENTITY-HEADER is missing or wrong"})),
        )
            .into_response();
    }
    if query.get("api-version").map(String::as_str) != Some("2019-08-01") {
        record(false);
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"statusCode": 400, "message": "api-version must be 2019-08-01"})),
        )
            .into_response();
    }
    if !resource.is_empty() && !issuer.knows(&resource) {
        record(false);
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"statusCode": 400, "message": format!("AADSTS500011: The resource principal named {resource} was not found in the tenant.")})),
        )
            .into_response();
    }
    if resource.is_empty() {
        record(false);
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"statusCode": 400, "message": "resource is required"})),
        )
            .into_response();
    }
    if let Some(id) = &client_id {
        if id != &issuer.config.client_id {
            record(false);
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"statusCode": 400, "message": format!("No user-assigned identity with client id {id}")})),
            )
                .into_response();
        }
    }
    record(true);
    let (access_token, expires_on) = issuer.issue(&resource);
    Json(json!({
        "access_token": access_token,
        "expires_on": expires_on.to_string(),
        "resource": resource,
        "token_type": "Bearer",
        "client_id": issuer.config.client_id,
    }))
    .into_response()
}
