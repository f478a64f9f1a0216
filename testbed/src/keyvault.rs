//! A Key Vault server that the official Azure SDKs use unchanged: secrets here, keys in
//! [`keys`] and certificates in [`certificates`] (issue #30: a key that signs and never leaves).
//!
//! What it implements of secrets is what the SDKs send (`../shared/PROTOCOL.md` §2):
//! - `PUT /secrets/{name}` → a new 32-hex version (value, contentType, tags, attributes);
//! - `GET /secrets/{name}`, `/secrets/{name}/` (latest), `/secrets/{name}/{version}`;
//! - `GET /secrets/{name}/versions` (no values; `maxresults` 1–25, `nextLink` paging);
//! - `PATCH /secrets/{name}/{version}` (attributes, tags, contentType);
//! - `GET /secrets` (names of all secrets, paged the same way).
//!
//! A certificate's secret (same name and version as the certificate) is `managed` and names its
//! key (`kid`), as Key Vault's is.
//!
//! Every request needs `api-version` and a bearer token the [`TokenIssuer`] issued for the
//! configured resource; without one the answer is the real challenge:
//! `401` + `WWW-Authenticate: Bearer authorization="…", resource="…"`. Errors use Key Vault's body,
//! `{"error":{"code","message","innererror"?}}`. Times are integer Unix seconds; `id` carries the
//! host and port the client used. Faults (see [`crate::faults`]) and a request log with timings
//! let tests count round trips and observe concurrency. Operation names, for both: `get`, `set`,
//! `list`, `update` (secrets); `create_key`, `get_key`, `sign`, `release` (keys);
//! `get_certificate`, `get_certificate_policy` (certificates).

mod certificates;
pub(crate) mod keys;

pub use certificates::{CertificateOptions, VaultCertificate};
pub use keys::KeyInfo;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::faults::{Fault, Faults};
use crate::identity::TokenIssuer;
use crate::random_hex;
use crate::serve::DropConnection;

/// Key Vault's limit on a secret value.
pub const MAX_VALUE_BYTES: usize = 25 * 1024;
const MAX_TAGS: usize = 15;

/// One immutable version of a secret.
#[derive(Clone, Debug)]
pub struct SecretVersion {
    pub version: String,
    pub value: String,
    pub content_type: Option<String>,
    pub tags: Option<BTreeMap<String, String>>,
    pub enabled: bool,
    pub nbf: Option<i64>,
    pub exp: Option<i64>,
    pub created: i64,
    pub updated: i64,
    /// Backs a certificate: the answer names its key (`kid`) and says `managed`.
    pub managed: bool,
}

#[derive(Debug, Default)]
struct Secret {
    name: String,
    versions: Vec<SecretVersion>,
}

/// One request the server answered, for tests.
#[derive(Clone, Debug)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub op: &'static str,
    pub name: Option<String>,
    pub authorized: bool,
    pub status: u16,
    pub started: Instant,
    pub finished: Instant,
}

/// The server's state: its secrets, who it trusts, its faults and its log.
#[derive(Debug)]
pub struct KeyVault {
    /// The resource named in the bearer challenge and required as the tokens' audience.
    pub resource: String,
    pub tenant_id: String,
    issuer: Arc<TokenIssuer>,
    secrets: Mutex<HashMap<String, Secret>>,
    keys: Mutex<HashMap<String, keys::StoredKey>>,
    certificates: Mutex<HashMap<String, certificates::StoredCertificate>>,
    /// Every signature `sign` made (several encodings), for the secret search.
    signatures: Mutex<Vec<String>>,
    /// A fault: `sign` answers a signature that is not the key's (one bit flipped), as a
    /// corrupted answer or a wrong key would (see [`KeyVault::set_tamper_signatures`]).
    pub(crate) tamper_signatures: std::sync::atomic::AtomicBool,
    pub faults: Faults,
    log: Mutex<Vec<LoggedRequest>>,
}

impl KeyVault {
    pub fn new(resource: &str, issuer: Arc<TokenIssuer>) -> Arc<Self> {
        Arc::new(Self {
            resource: resource.trim_end_matches('/').to_string(),
            tenant_id: issuer.config.tenant_id.clone(),
            issuer,
            secrets: Mutex::default(),
            keys: Mutex::default(),
            certificates: Mutex::default(),
            signatures: Mutex::default(),
            tamper_signatures: std::sync::atomic::AtomicBool::new(false),
            faults: Faults::default(),
            log: Mutex::default(),
        })
    }

    /// Turns the tampered-signature fault on or off: `sign` answers a signature with one bit
    /// flipped (a corrupted answer, or a key that is not the certificate's), which AWS refuses.
    pub fn set_tamper_signatures(&self, on: bool) {
        self.tamper_signatures
            .store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// Stores a new version directly (seeding), as a `PUT` would; returns the version id.
    pub fn seed(&self, name: &str, value: &str, tags: &[(&str, &str)]) -> String {
        let tags = (!tags.is_empty()).then(|| {
            tags.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        });
        self.put_version(name, value.to_string(), None, tags, true, None, None)
            .version
    }

    /// Appends many versions at once, oldest first, under one lock (a deep history for the
    /// benchmarks: 10,000 versions a secret in milliseconds); each as given (version id, times,
    /// `enabled`), as a history of `PUT`s and `PATCH`es would have left them.
    pub fn seed_versions(&self, name: &str, versions: impl IntoIterator<Item = SecretVersion>) {
        let mut secrets = self.secrets.lock().unwrap();
        let secret = secrets
            .entry(name.to_ascii_lowercase())
            .or_insert_with(|| Secret {
                name: name.to_string(),
                versions: Vec::new(),
            });
        secret.versions.extend(versions);
    }

    /// Stores a new version with an expiry (Unix seconds), as a `PUT` with `attributes.exp` would.
    pub fn seed_expiring(
        &self,
        name: &str,
        value: &str,
        tags: &[(&str, &str)],
        exp: i64,
    ) -> String {
        let tags = (!tags.is_empty()).then(|| {
            tags.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        });
        self.put_version(name, value.to_string(), None, tags, true, None, Some(exp))
            .version
    }

    /// The latest version of a secret, if any.
    pub fn latest(&self, name: &str) -> Option<SecretVersion> {
        let secrets = self.secrets.lock().unwrap();
        secrets
            .get(&name.to_ascii_lowercase())
            .and_then(|s| s.versions.last().cloned())
    }

    /// Every version of a secret, oldest first.
    pub fn versions(&self, name: &str) -> Vec<SecretVersion> {
        let secrets = self.secrets.lock().unwrap();
        secrets
            .get(&name.to_ascii_lowercase())
            .map(|s| s.versions.clone())
            .unwrap_or_default()
    }

    /// Every secret value ever stored (for secret-leak searches) but the certificate chains of
    /// certificates with a non-exportable key (public certificates, no secret); an exportable
    /// certificate's secret (it holds the private key) is included.
    pub fn all_values(&self) -> Vec<String> {
        let secrets = self.secrets.lock().unwrap();
        secrets
            .values()
            .flat_map(|s| s.versions.iter())
            .filter(|v| !v.managed || v.value.contains("PRIVATE KEY"))
            .map(|v| v.value.clone())
            .collect()
    }

    /// The request log so far.
    pub fn log(&self) -> Vec<LoggedRequest> {
        self.log.lock().unwrap().clone()
    }

    pub fn clear_log(&self) {
        self.log.lock().unwrap().clear();
    }

    /// The largest number of requests that were in flight at once, from the log.
    pub fn max_concurrency(&self, op: Option<&str>) -> usize {
        let log = self.log();
        let mut events: Vec<(Instant, i32)> = log
            .iter()
            .filter(|r| op.is_none_or(|o| r.op == o))
            .flat_map(|r| [(r.started, 1), (r.finished, -1)])
            .collect();
        events.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        let (mut now, mut max) = (0i32, 0i32);
        for (_, d) in events {
            now += d;
            max = max.max(now);
        }
        max as usize
    }

    #[allow(clippy::too_many_arguments)]
    fn put_version(
        &self,
        name: &str,
        value: String,
        content_type: Option<String>,
        tags: Option<BTreeMap<String, String>>,
        enabled: bool,
        nbf: Option<i64>,
        exp: Option<i64>,
    ) -> SecretVersion {
        let now = chrono::Utc::now().timestamp();
        let version = SecretVersion {
            version: random_hex(16),
            value,
            content_type,
            tags,
            enabled,
            nbf,
            exp,
            created: now,
            updated: now,
            managed: false,
        };
        self.push_secret_version(name, version.clone());
        version
    }

    /// Appends a version as it is (a certificate's secret keeps the certificate's version).
    fn push_secret_version(&self, name: &str, version: SecretVersion) {
        let mut secrets = self.secrets.lock().unwrap();
        let secret = secrets
            .entry(name.to_ascii_lowercase())
            .or_insert_with(|| Secret {
                name: name.to_string(),
                versions: Vec::new(),
            });
        secret.versions.push(version);
    }

    fn set_secret_enabled(&self, name: &str, version: &str, enabled: bool) {
        let mut secrets = self.secrets.lock().unwrap();
        if let Some(v) = secrets
            .get_mut(&name.to_ascii_lowercase())
            .and_then(|s| s.versions.iter_mut().find(|v| v.version == version))
        {
            v.enabled = enabled;
        }
    }
}

/// The Key Vault router; serve it over TLS.
pub fn router(vault: Arc<KeyVault>) -> Router {
    Router::new().fallback(handle).with_state(vault)
}

/// A Key Vault error answer.
fn kv_error(status: u16, code: &str, message: &str, inner: Option<&str>) -> Response {
    let mut error = json!({"code": code, "message": message});
    if let Some(inner) = inner {
        error["innererror"] = json!({"code": inner});
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [("content-type", "application/json; charset=utf-8")],
        json!({ "error": error }).to_string(),
    )
        .into_response()
}

fn not_found(name: &str, version: Option<&str>) -> Response {
    let what = match version {
        Some(v) => format!("(name/id) {name}/{v}"),
        None => format!("(name/id) {name}"),
    };
    kv_error(
        404,
        "SecretNotFound",
        &format!("A secret with {what} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"),
        None,
    )
}

fn bad_parameter(message: &str) -> Response {
    kv_error(400, "BadParameter", message, None)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 127
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// What the path asks for.
enum Route {
    Set(String),
    Get(String, Option<String>),
    Versions(String),
    Update(String, Option<String>),
    List,
    CreateKey(String),
    GetKey(String, Option<String>),
    Sign(String, Option<String>),
    Release(String, Option<String>),
    GetCertificate(String, Option<String>),
    GetCertificatePolicy(String),
    Unknown,
}

fn route(method: &Method, path: &str) -> Route {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let version = |v: &str| (!v.is_empty()).then(|| v.to_string());
    match (method, parts.as_slice()) {
        (&Method::GET, ["secrets"] | ["secrets", ""]) => Route::List,
        (&Method::PUT, ["secrets", name]) => Route::Set(name.to_string()),
        (&Method::GET, ["secrets", name]) => Route::Get(name.to_string(), None),
        (&Method::GET, ["secrets", name, "versions"]) => Route::Versions(name.to_string()),
        (&Method::GET, ["secrets", name, v]) => Route::Get(name.to_string(), version(v)),
        (&Method::PATCH, ["secrets", name]) => Route::Update(name.to_string(), None),
        (&Method::PATCH, ["secrets", name, v]) => Route::Update(name.to_string(), version(v)),
        (&Method::POST, ["keys", name, "create"]) => Route::CreateKey(name.to_string()),
        (&Method::GET, ["keys", name]) => Route::GetKey(name.to_string(), None),
        (&Method::GET, ["keys", name, v]) => Route::GetKey(name.to_string(), version(v)),
        // `/keys/{name}//sign` (no version: the latest) is what the SDKs send.
        (&Method::POST, ["keys", name, v, "sign"]) => Route::Sign(name.to_string(), version(v)),
        (&Method::POST, ["keys", name, v, "release"]) => {
            Route::Release(name.to_string(), version(v))
        }
        (&Method::GET, ["certificates", name]) => Route::GetCertificate(name.to_string(), None),
        (&Method::GET, ["certificates", name, "policy"]) => {
            Route::GetCertificatePolicy(name.to_string())
        }
        (&Method::GET, ["certificates", name, v]) => {
            Route::GetCertificate(name.to_string(), version(v))
        }
        _ => Route::Unknown,
    }
}

fn op_and_name(route: &Route) -> (&'static str, Option<&str>) {
    match route {
        Route::Set(n) => ("set", Some(n)),
        Route::Get(n, _) => ("get", Some(n)),
        Route::Versions(n) => ("list", Some(n)),
        Route::Update(n, _) => ("update", Some(n)),
        Route::List => ("list", None),
        Route::CreateKey(n) => ("create_key", Some(n)),
        Route::GetKey(n, _) => ("get_key", Some(n)),
        Route::Sign(n, _) => ("sign", Some(n)),
        Route::Release(n, _) => ("release", Some(n)),
        Route::GetCertificate(n, _) => ("get_certificate", Some(n)),
        Route::GetCertificatePolicy(n) => ("get_certificate_policy", Some(n)),
        Route::Unknown => ("unknown", None),
    }
}

async fn handle(
    State(vault): State<Arc<KeyVault>>,
    method: Method,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let route = route(&method, uri.path());
    let (op, name) = op_and_name(&route);
    let name = name.map(str::to_string);
    let latency = vault.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|token| vault.issuer.validate(token, &vault.resource));
    let response = match authorized {
        Some(Ok(())) => {
            answer(
                &vault,
                route,
                op,
                name.as_deref(),
                &query,
                &headers,
                &body,
                &uri,
            )
            .await
        }
        Some(Err(why)) => challenge(&vault, why),
        None => challenge(
            &vault,
            "AKV10000: Request is missing a Bearer or PoP token.",
        ),
    };
    vault.log.lock().unwrap().push(LoggedRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        op,
        name,
        authorized: matches!(authorized, Some(Ok(()))),
        status: response.status().as_u16(),
        started,
        finished: Instant::now(),
    });
    response
}

fn challenge(vault: &KeyVault, message: &str) -> Response {
    let mut response = kv_error(401, "Unauthorized", message, None);
    let header = format!(
        "Bearer authorization=\"https://login.microsoftonline.com/{}\", resource=\"{}\"",
        vault.tenant_id, vault.resource
    );
    response.headers_mut().insert(
        "www-authenticate",
        HeaderValue::from_str(&header).expect("challenge header is ASCII"),
    );
    response
}

#[allow(clippy::too_many_arguments)]
async fn answer(
    vault: &KeyVault,
    route: Route,
    op: &str,
    name: Option<&str>,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &Bytes,
    uri: &Uri,
) -> Response {
    if query.get("api-version").is_none_or(|v| v.is_empty()) {
        return bad_parameter("The 'api-version' query parameter is missing.");
    }
    let mut drop_answer = false;
    match vault.faults.check(op, name) {
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        Some(Fault::Drop) => {
            let mut r = StatusCode::INTERNAL_SERVER_ERROR.into_response();
            r.extensions_mut().insert(DropConnection);
            return r;
        }
        Some(Fault::CommitThenDrop) => drop_answer = true,
        Some(Fault::Error {
            status,
            code,
            message,
            inner_code,
            retry_after,
        }) => {
            let mut r = kv_error(status, &code, &message, inner_code.as_deref());
            if let Some(secs) = retry_after {
                r.headers_mut()
                    .insert("retry-after", HeaderValue::from(secs));
            }
            return r;
        }
        None => {}
    }
    if let Some(name) = name {
        if !valid_name(name) {
            return bad_parameter(&format!(
                "The request URI contains an invalid name: {name}. Names are 1-127 characters of letters, digits and dashes."
            ));
        }
    }
    let base = format!(
        "https://{}",
        headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .or(uri.authority().map(|a| a.as_str()))
            .unwrap_or("localhost")
    );
    let api_version = query.get("api-version").cloned().unwrap_or_default();
    let mut response = match route {
        Route::Set(name) => set(vault, &name, body, &base),
        Route::Get(name, version) => get(vault, &name, version.as_deref(), &base),
        Route::Versions(name) => list(vault, Some(&name), query, &base, &api_version),
        Route::List => list(vault, None, query, &base, &api_version),
        Route::Update(name, version) => update(vault, &name, version.as_deref(), body, &base),
        Route::CreateKey(name) => keys::create(vault, &name, body, &base).await,
        Route::GetKey(name, version) => keys::get(vault, &name, version.as_deref(), &base),
        Route::Sign(name, version) => keys::sign(vault, &name, version.as_deref(), body, &base),
        Route::Release(name, version) => keys::release(vault, &name, version.as_deref()),
        Route::GetCertificate(name, version) => {
            certificates::get(vault, &name, version.as_deref(), &base)
        }
        Route::GetCertificatePolicy(name) => certificates::get_policy(vault, &name, &base),
        Route::Unknown => kv_error(
            404,
            "NotFound",
            "The requested operation is not supported by this vault.",
            None,
        ),
    };
    if drop_answer {
        response.extensions_mut().insert(DropConnection);
    }
    response
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SetBody {
    value: Option<Value>,
    content_type: Option<String>,
    tags: Option<Map<String, Value>>,
    attributes: Option<Attributes>,
}

#[derive(Deserialize, Default)]
pub(crate) struct Attributes {
    enabled: Option<bool>,
    nbf: Option<i64>,
    exp: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateBody {
    content_type: Option<String>,
    tags: Option<Map<String, Value>>,
    attributes: Option<Attributes>,
}

fn parse_tags(
    tags: Option<Map<String, Value>>,
) -> Result<Option<BTreeMap<String, String>>, String> {
    let Some(tags) = tags else { return Ok(None) };
    if tags.len() > MAX_TAGS {
        return Err(format!(
            "Too many tags: {}. A secret can have at most {MAX_TAGS} tags.",
            tags.len()
        ));
    }
    let mut out = BTreeMap::new();
    for (k, v) in tags {
        let Value::String(v) = v else {
            return Err(format!("Tag '{k}' must have a string value."));
        };
        if k.len() > 512 || v.len() > 256 {
            return Err(format!(
                "Tag '{k}' is too long: names are at most 512 characters, values at most 256."
            ));
        }
        out.insert(k, v);
    }
    Ok(Some(out))
}

fn set(vault: &KeyVault, name: &str, body: &Bytes, base: &str) -> Response {
    let parsed: SetBody = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(e) => return bad_parameter(&format!("The request body is not valid JSON: {e}")),
    };
    let value = match parsed.value {
        Some(Value::String(v)) => v,
        Some(_) => return bad_parameter("The parameter 'value' must be a string."),
        None => return bad_parameter("The parameter 'value' is required."),
    };
    if value.len() > MAX_VALUE_BYTES {
        return bad_parameter(&format!(
            "The secret value exceeds the maximum allowed size of {MAX_VALUE_BYTES} bytes."
        ));
    }
    let tags = match parse_tags(parsed.tags) {
        Ok(t) => t,
        Err(m) => return bad_parameter(&m),
    };
    let attributes = parsed.attributes.unwrap_or_default();
    let version = vault.put_version(
        name,
        value,
        parsed.content_type,
        tags,
        attributes.enabled.unwrap_or(true),
        attributes.nbf,
        attributes.exp,
    );
    let display = vault.latest_name(name);
    json_ok(bundle(&display, &version, base, true))
}

impl KeyVault {
    fn latest_name(&self, name: &str) -> String {
        self.secrets
            .lock()
            .unwrap()
            .get(&name.to_ascii_lowercase())
            .map(|s| s.name.clone())
            .unwrap_or_else(|| name.to_string())
    }

    fn find(&self, name: &str, version: Option<&str>) -> Option<(String, SecretVersion)> {
        let secrets = self.secrets.lock().unwrap();
        let secret = secrets.get(&name.to_ascii_lowercase())?;
        let found = match version {
            None => secret.versions.last(),
            Some(v) => secret
                .versions
                .iter()
                .find(|x| x.version.eq_ignore_ascii_case(v)),
        }?;
        Some((secret.name.clone(), found.clone()))
    }
}

fn get(vault: &KeyVault, name: &str, version: Option<&str>, base: &str) -> Response {
    let Some((display, found)) = vault.find(name, version) else {
        return not_found(name, version);
    };
    if !found.enabled {
        return kv_error(
            403,
            "Forbidden",
            "Operation get is not allowed on a disabled secret.",
            Some("SecretDisabled"),
        );
    }
    json_ok(bundle(&display, &found, base, true))
}

fn update(
    vault: &KeyVault,
    name: &str,
    version: Option<&str>,
    body: &Bytes,
    base: &str,
) -> Response {
    let parsed: UpdateBody = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(e) => return bad_parameter(&format!("The request body is not valid JSON: {e}")),
    };
    let tags = match parse_tags(parsed.tags) {
        Ok(t) => t,
        Err(m) => return bad_parameter(&m),
    };
    let mut secrets = vault.secrets.lock().unwrap();
    let Some(secret) = secrets.get_mut(&name.to_ascii_lowercase()) else {
        return not_found(name, version);
    };
    let display = secret.name.clone();
    let found = match version {
        None => secret.versions.last_mut(),
        Some(v) => secret
            .versions
            .iter_mut()
            .find(|x| x.version.eq_ignore_ascii_case(v)),
    };
    let Some(found) = found else {
        return not_found(name, version);
    };
    if let Some(a) = parsed.attributes {
        if let Some(e) = a.enabled {
            found.enabled = e;
        }
        if a.nbf.is_some() {
            found.nbf = a.nbf;
        }
        if a.exp.is_some() {
            found.exp = a.exp;
        }
    }
    if parsed.content_type.is_some() {
        found.content_type = parsed.content_type;
    }
    if tags.is_some() {
        found.tags = tags;
    }
    found.updated = chrono::Utc::now().timestamp();
    let snapshot = found.clone();
    drop(secrets);
    json_ok(bundle(&display, &snapshot, base, false))
}

fn list(
    vault: &KeyVault,
    name: Option<&str>,
    query: &HashMap<String, String>,
    base: &str,
    api_version: &str,
) -> Response {
    let max: usize = match query.get("maxresults").map(|m| m.parse::<usize>()) {
        None => 25,
        Some(Ok(m)) if (1..=25).contains(&m) => m,
        Some(_) => {
            return bad_parameter("The value of 'maxresults' must be an integer between 1 and 25.")
        }
    };
    let skip: usize = query
        .get("$skiptoken")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // Only the page is rendered: a deep history (the benchmarks seed 10,000 versions a secret)
    // would otherwise cost the whole listing on every page.
    let (page, total): (Vec<Value>, usize) = {
        let secrets = vault.secrets.lock().unwrap();
        match name {
            Some(name) => {
                let Some(secret) = secrets.get(&name.to_ascii_lowercase()) else {
                    return not_found(name, None);
                };
                let page = secret
                    .versions
                    .iter()
                    .skip(skip)
                    .take(max)
                    .map(|v| bundle(&secret.name, v, base, false))
                    .collect();
                (page, secret.versions.len())
            }
            None => {
                let mut all: Vec<&Secret> = secrets
                    .values()
                    .filter(|s| !s.versions.is_empty())
                    .collect();
                all.sort_by(|a, b| a.name.cmp(&b.name));
                let page = all
                    .iter()
                    .skip(skip)
                    .take(max)
                    .filter_map(|s| {
                        let v = s.versions.last()?;
                        let mut b = bundle(&s.name, v, base, false);
                        b["id"] = json!(format!("{base}/secrets/{}", s.name));
                        Some(b)
                    })
                    .collect();
                (page, all.len())
            }
        }
    };
    let next = (skip + max < total).then(|| {
        let path = match name {
            Some(n) => format!("/secrets/{n}/versions"),
            None => "/secrets".to_string(),
        };
        format!(
            "{base}{path}?api-version={api_version}&$skiptoken={}&maxresults={max}",
            skip + max
        )
    });
    json_ok(json!({"value": page, "nextLink": next}))
}

fn bundle(name: &str, v: &SecretVersion, base: &str, with_value: bool) -> Value {
    let mut attributes = json!({
        "enabled": v.enabled,
        "created": v.created,
        "updated": v.updated,
        "recoveryLevel": "Recoverable+Purgeable",
        "recoverableDays": 90,
    });
    if let Some(nbf) = v.nbf {
        attributes["nbf"] = json!(nbf);
    }
    if let Some(exp) = v.exp {
        attributes["exp"] = json!(exp);
    }
    let mut out = json!({
        "id": format!("{base}/secrets/{name}/{}", v.version),
        "attributes": attributes,
    });
    if with_value {
        out["value"] = json!(v.value);
    }
    if let Some(ct) = &v.content_type {
        out["contentType"] = json!(ct);
    }
    if let Some(tags) = &v.tags {
        out["tags"] = json!(tags);
    }
    if v.managed {
        out["kid"] = json!(format!("{base}/keys/{name}/{}", v.version));
        out["managed"] = json!(true);
    }
    out
}

fn json_ok(value: Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json; charset=utf-8")],
        value.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_key_vault_rules() {
        assert!(valid_name("AwsSessionCredentials"));
        assert!(valid_name("AWS-Access-Key-ID"));
        assert!(!valid_name(""));
        assert!(!valid_name("has_underscore"));
        assert!(!valid_name(&"a".repeat(128)));
    }

    #[test]
    fn the_sdks_versionless_key_paths_mean_the_latest_version() {
        assert!(matches!(
            route(&Method::POST, "/keys/k//sign"),
            Route::Sign(n, None) if n == "k"
        ));
        assert!(matches!(
            route(&Method::POST, "/keys/k/abc/sign"),
            Route::Sign(_, Some(v)) if v == "abc"
        ));
        assert!(matches!(
            route(&Method::GET, "/keys/k/"),
            Route::GetKey(_, None)
        ));
        assert!(matches!(
            route(&Method::GET, "/certificates/c/"),
            Route::GetCertificate(_, None)
        ));
        assert!(matches!(
            route(&Method::GET, "/certificates/c/policy"),
            Route::GetCertificatePolicy(_)
        ));
    }

    #[test]
    fn the_versions_path_is_not_mistaken_for_a_version() {
        assert!(matches!(
            route(&Method::GET, "/secrets/x/versions"),
            Route::Versions(_)
        ));
        assert!(matches!(
            route(&Method::GET, "/secrets/x/"),
            Route::Get(_, None)
        ));
        assert!(matches!(
            route(&Method::GET, "/secrets/x/abc"),
            Route::Get(_, Some(_))
        ));
    }
}
