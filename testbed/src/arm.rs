//! An Azure Resource Manager endpoint for the two App Service calls stsbridge makes (issue #18):
//! `POST {site}/config/configreferences/appsettings/refresh` and
//! `GET {site}/config/configreferences/appsettings`, `api-version=2022-03-01`, as Microsoft's
//! "Use Key Vault references as app settings" article describes them.
//!
//! Over TLS like the vault; only bearer tokens the test bed's identity endpoint issued for this
//! endpoint's audience are accepted (else 401 `InvalidAuthenticationToken`). Apps are registered
//! by tests with their references' first statuses; an unknown app is 404 `ResourceNotFound`, ARM's
//! error body `{"error":{"code","message"}}` throughout. Like App Service, a refresh re-resolves
//! every (versionless) reference against the test bed's vault: the status and the version it
//! points to follow what the vault holds then (`Resolved` with the latest version,
//! `SecretNotFound`, `OtherReasons` for a disabled latest version), and a listing shows them — but a
//! reference whose app identity may not read the vault (`AccessToKeyVaultDenied` at registration)
//! stays denied, as a missing role assignment would keep it. Faults (`refresh` / `list`, by the app's
//! name) can answer 403 `AuthorizationFailed`, 429 with `Retry-After`, hang or drop; the faults'
//! latency (`faults.set_latency`) delays every call, as on the other servers. Every call is
//! recorded, with its timings.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::json;

use crate::faults::{Fault, Faults};
use crate::identity::TokenIssuer;
use crate::keyvault::KeyVault;
use crate::serve::DropConnection;

/// One Key Vault reference of a registered app.
#[derive(Clone, Debug)]
pub struct Reference {
    pub setting: String,
    pub secret_name: String,
    pub status: String,
    /// The version it resolved to (`secretVersion`), when resolved.
    pub version: Option<String>,
    /// The app's identity may not read the vault: every resolution is `AccessToKeyVaultDenied`.
    denied: bool,
}

impl Reference {
    /// What App Service would resolve this reference to now.
    fn resolve(&mut self, vault: &KeyVault) {
        if self.denied {
            self.status = "AccessToKeyVaultDenied".into();
            self.version = None;
            return;
        }
        (self.status, self.version) = match vault.latest(&self.secret_name) {
            None => ("SecretNotFound".into(), None),
            Some(v) if !v.enabled => ("OtherReasons".into(), None),
            Some(v) => ("Resolved".into(), Some(v.version)),
        };
    }
}

#[derive(Clone, Debug, Default)]
struct App {
    id: String,
    references: Vec<Reference>,
    refreshes: u32,
}

/// One call the endpoint answered.
#[derive(Clone, Debug)]
pub struct ArmCall {
    /// `refresh` or `list`.
    pub op: &'static str,
    /// The app's resource ID as sent.
    pub app: String,
    pub authorized: bool,
    pub status: u16,
    pub started: Instant,
    pub finished: Instant,
}

#[derive(Debug)]
pub struct ArmFake {
    issuer: Arc<TokenIssuer>,
    vault: Arc<KeyVault>,
    audience: Mutex<String>,
    pub faults: Faults,
    apps: Mutex<BTreeMap<String, App>>,
    calls: Mutex<Vec<ArmCall>>,
}

impl ArmFake {
    pub fn new(issuer: Arc<TokenIssuer>, vault: Arc<KeyVault>) -> Arc<Self> {
        Arc::new(Self {
            issuer,
            vault,
            audience: Mutex::default(),
            faults: Faults::default(),
            apps: Mutex::default(),
            calls: Mutex::default(),
        })
    }

    /// The audience tokens must be for (the endpoint's own URL), known to the identity endpoint.
    pub fn set_audience(&self, audience: &str) {
        *self.audience.lock().unwrap() = audience.to_string();
        self.issuer.add_audience(audience);
    }

    /// Registers an app (`/subscriptions/…/providers/Microsoft.Web/sites/NAME[/slots/S]`) with
    /// its Key Vault references as `(setting, secret name, status)`: the status until the first
    /// refresh (`Resolved` ones point at the secret's latest version now);
    /// `AccessToKeyVaultDenied` stays so.
    pub fn add_app(&self, id: &str, references: &[(&str, &str, &str)]) {
        let references = references
            .iter()
            .map(|(setting, secret, status)| Reference {
                setting: setting.to_string(),
                secret_name: secret.to_string(),
                status: status.to_string(),
                version: (*status == "Resolved")
                    .then(|| self.vault.latest(secret).map(|v| v.version))
                    .flatten(),
                denied: *status == "AccessToKeyVaultDenied",
            })
            .collect();
        self.apps.lock().unwrap().insert(
            id.to_ascii_lowercase(),
            App {
                id: id.to_string(),
                references,
                refreshes: 0,
            },
        );
    }

    /// An app's references as a listing would show them now.
    pub fn references(&self, id: &str) -> Vec<Reference> {
        self.apps
            .lock()
            .unwrap()
            .get(&id.to_ascii_lowercase())
            .map(|a| a.references.clone())
            .unwrap_or_default()
    }

    /// How many refreshes the app has had.
    pub fn refreshes(&self, id: &str) -> u32 {
        self.apps
            .lock()
            .unwrap()
            .get(&id.to_ascii_lowercase())
            .map(|a| a.refreshes)
            .unwrap_or(0)
    }

    pub fn calls(&self) -> Vec<ArmCall> {
        self.calls.lock().unwrap().clone()
    }

    pub fn clear_calls(&self) {
        self.calls.lock().unwrap().clear();
    }
}

pub fn router(arm: Arc<ArmFake>) -> Router {
    Router::new().fallback(handle).with_state(arm)
}

fn arm_error(status: u16, code: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [("content-type", "application/json; charset=utf-8")],
        json!({"error": {"code": code, "message": message}}).to_string(),
    )
        .into_response()
}

/// The app's name: the segment after `sites`.
fn app_name(id: &str) -> String {
    let parts: Vec<&str> = id.split('/').collect();
    parts
        .iter()
        .position(|p| p.eq_ignore_ascii_case("sites"))
        .and_then(|i| parts.get(i + 1))
        .unwrap_or(&"")
        .to_string()
}

async fn handle(
    State(arm): State<Arc<ArmFake>>,
    method: Method,
    uri: Uri,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let started = Instant::now();
    let latency = arm.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let path = uri.path().to_string();
    let (op, app) =
        if let Some(app) = path.strip_suffix("/config/configreferences/appsettings/refresh") {
            ("refresh", app.to_string())
        } else if let Some(app) = path.strip_suffix("/config/configreferences/appsettings") {
            ("list", app.to_string())
        } else {
            ("unknown", path.clone())
        };
    let audience = arm.audience.lock().unwrap().clone();
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| arm.issuer.validate(t, &audience).is_ok());
    let response = if !authorized {
        let mut r = arm_error(
            401,
            "InvalidAuthenticationToken",
            "The access token is invalid.",
        );
        r.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static(
                "Bearer authorization_uri=\"https://login.windows.net/\", error=\"invalid_token\"",
            ),
        );
        r
    } else {
        answer(&arm, &method, op, &app, &query).await
    };
    arm.calls.lock().unwrap().push(ArmCall {
        op,
        app,
        authorized,
        status: response.status().as_u16(),
        started,
        finished: Instant::now(),
    });
    response
}

async fn answer(
    arm: &ArmFake,
    method: &Method,
    op: &'static str,
    app: &str,
    query: &BTreeMap<String, String>,
) -> Response {
    match query.get("api-version").map(String::as_str) {
        None => {
            return arm_error(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        }
        Some("2022-03-01") => {}
        Some(other) => {
            return arm_error(
                400,
                "NoRegisteredProviderFound",
                &format!("No registered resource provider found for API version '{other}'."),
            )
        }
    }
    let expected = match op {
        "refresh" => Method::POST,
        "list" => Method::GET,
        _ => return arm_error(404, "NotFound", "The requested operation is not supported."),
    };
    if *method != expected {
        return arm_error(
            405,
            "MethodNotAllowed",
            "The requested method is not allowed.",
        );
    }
    match arm.faults.check(op, Some(&app_name(app))) {
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        Some(Fault::Drop) | Some(Fault::CommitThenDrop) => {
            let mut r = StatusCode::INTERNAL_SERVER_ERROR.into_response();
            r.extensions_mut().insert(DropConnection);
            return r;
        }
        Some(Fault::Error {
            status,
            code,
            message,
            retry_after,
            ..
        }) => {
            let mut r = arm_error(status, &code, &message);
            if let Some(secs) = retry_after {
                r.headers_mut()
                    .insert("retry-after", HeaderValue::from(secs));
            }
            return r;
        }
        None => {}
    }
    let mut apps = arm.apps.lock().unwrap();
    let Some(found) = apps.get_mut(&app.to_ascii_lowercase()) else {
        return arm_error(
            404,
            "ResourceNotFound",
            &format!(
                "The Resource 'Microsoft.Web/sites/{}' was not found. For more details please go to https://aka.ms/ARMResourceNotFound",
                app_name(app)
            ),
        );
    };
    if op == "refresh" {
        found.refreshes += 1;
        for r in &mut found.references {
            r.resolve(&arm.vault);
        }
        return (StatusCode::OK, [("content-type", "application/json")], "{}").into_response();
    }
    let value: Vec<serde_json::Value> = found
        .references
        .iter()
        .map(|r| {
            json!({
                "id": format!("{}/config/configreferences/appsettings/{}", found.id, r.setting),
                "name": r.setting,
                "type": "Microsoft.Web/sites/config/configreferences",
                "properties": {
                    "reference": format!("@Microsoft.KeyVault(VaultName=kv;SecretName={})", r.secret_name),
                    "status": r.status,
                    "vaultName": "kv",
                    "secretName": r.secret_name,
                    "secretVersion": r.version,
                    "activeVersion": r.version,
                    "identityType": "SystemAssigned",
                    "source": "KeyVault",
                }
            })
        })
        .collect();
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        json!({ "value": value }).to_string(),
    )
        .into_response()
}

/// ARM's answer to an identity without the role it needs.
pub fn authorization_failed(app: &str) -> Fault {
    Fault::error(
        403,
        "AuthorizationFailed",
        &format!("The client 'stsbridge' with object id '11111111-1111-4111-8111-111111111111' does not have authorization to perform action 'Microsoft.Web/sites/config/configreferences/appsettings/refresh/action' over scope '/providers/Microsoft.Web/sites/{app}' or the scope is invalid. If access was recently granted, please refresh your credentials."),
    )
}

/// ARM's throttling answer.
pub fn too_many_requests(retry_after_secs: u64) -> Fault {
    Fault::Error {
        status: 429,
        code: "TooManyRequests".into(),
        message: "The request is being throttled.".into(),
        inner_code: None,
        retry_after: Some(retry_after_secs),
    }
}
