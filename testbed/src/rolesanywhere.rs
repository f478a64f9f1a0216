//! IAM Roles Anywhere's `CreateSession` (issue #30), as strict as AWS: a request signed with an
//! X.509 certificate's private key is exchanged for session credentials of a role, which the
//! [`StsFront`] then accepts (`GetCallerIdentity` answers
//! `arn:aws:sts::<account>:assumed-role/<role>/<session name>`).
//!
//! Served over TLS with the bed's CA (AWS's Python client only speaks HTTPS) at
//! `POST /sessions`, REST-JSON. The request, as both real clients send it
//! (`/work/notes/roles-anywhere.md` §1–2): the ARNs `profileArn`, `roleArn`, `trustAnchorArn` in
//! the query string (`aws_signing_helper`) or the JSON body (PyPI `iam-rolesanywhere-session`),
//! `durationSeconds` and `roleSessionName` in the body; `application/json` or
//! `application/x-amz-json-1.0`. What is checked, in this order:
//! 1. the `Authorization` header: `AWS4-X509-RSA-SHA256` or `AWS4-X509-ECDSA-SHA256`,
//!    `Credential=<serial>/<date>/<region>/rolesanywhere/aws4_request`, SigV4's date rules
//!    (`X-Amz-Date`, its day the scope's, within 15 minutes), `host`, `x-amz-date`, `x-amz-x509`
//!    (and `x-amz-x509-chain` when sent) among the signed headers;
//! 2. the leaf in `X-Amz-X509` (base64 DER) and the intermediates in `X-Amz-X509-Chain`
//!    (comma-separated); the serial in the scope (decimal) is the leaf's; the algorithm matches
//!    the leaf's key (RSA, or EC on P-256/P-384/P-521);
//! 3. the signature: the string to sign is SigV4's (the same canonical request,
//!    [`crate::sigv4::canonical_request`]) with the algorithm's line; RSA PKCS#1 v1.5 with
//!    SHA-256, or ECDSA with SHA-256 **DER-encoded** (a raw `r‖s` is refused, as AWS's own
//!    clients never send one), verified with the leaf's public key;
//! 4. the body (`ValidationException` for a missing ARN, `durationSeconds` outside 900–43200,
//!    a malformed `roleSessionName`);
//! 5. the trust anchor exists and is enabled, and the leaf chains to its CA bundle through the
//!    intermediates sent: each certificate's signature with its issuer's key, names, CA basic
//!    constraints and keyCertSign, path lengths, unknown critical extensions, and every
//!    certificate on the path valid now ([`crate::x509::verify_chain`]);
//! 6. the profile exists and is enabled, lists the role, and accepts `roleSessionName` if one is
//!    sent;
//! 7. the role exists in moto's IAM and its trust policy (read there, as AWS reads IAM's) lets
//!    `rolesanywhere.amazonaws.com` call `sts:AssumeRole`, `sts:TagSession` and
//!    `sts:SetSourceIdentity`, conditions included: `String{Equals,NotEquals,EqualsIgnoreCase,
//!    Like,NotLike}` and `Arn{Equals,Like,NotEquals,NotLike}` (`…IfExists` too) over
//!    `aws:PrincipalTag/x509Subject/<attr>`, `x509Issuer/<attr>`, `x509SAN/DNS|URI` and
//!    `aws:SourceArn` (the trust anchor); a condition operator it does not know fails closed;
//! 8. the duration is within the profile's `durationSeconds` (default 3600) and the role's
//!    `MaxSessionDuration`.
//!
//! The answer is `201` with `credentialSet[0]` (`credentials` {accessKeyId, secretAccessKey,
//! sessionToken, expiration (RFC 3339, `Z`)}, `assumedRoleUser`, `roleArn`, `sourceIdentity`
//! `CN=<subject CN>`, `packedPolicySize`) and `subjectArn`. The session is named by the leaf's
//! serial in lower-case hex (the maintainers' word; the case is unconfirmed), or by an accepted
//! `roleSessionName`. Errors are REST-JSON: the status, `x-amzn-ErrorType`, and
//! `{"message": …}`.
//!
//! Messages — AWS's own where one was seen: `Invalid signature` and `Untrusted Signing
//! Certificate` (both seen in aws/rolesanywhere-credential-helper issues), `Not authorized to set
//! roleSessionName.` (same), `Unable to assume role for <role arn>.` and its `The requested
//! DurationSeconds exceeds the MaxSessionDuration set for this role.` variant (third-party
//! reports, unverified). **Invented** (no sighting; plausible, in AWS's shape): the expired / not
//! yet valid leaf, a disabled trust anchor or profile, a role not in the profile, a duration above
//! the profile's (worded like the role one), an unknown trust anchor or profile
//! (`ResourceNotFoundException`), the serial and algorithm mismatches, a missing or malformed
//! certificate header or signed header, and the validation messages (AWS's generic
//! "1 validation error detected" form). The SigV4 date and scope refusals reuse the words the
//! STS front uses.
//!
//! Test hooks: an admin API (trust anchors from test CAs, profiles, roles in moto, enabling and
//! disabling), the bed's own root and intermediate CAs (made on first use, so that
//! [`crate::TestBed::start`] pays nothing), a call log, [`Faults`] on the operation
//! `CreateSession`, and [`RolesAnywhere::signature_values`] for the secret search.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::faults::{Fault, Faults};
use crate::pki::TestCa;
use crate::serve::DropConnection;
use crate::sigv4;
use crate::sts::StsFront;
use crate::x509::{self, Certificate, ChainError, Curve, PublicKey};

pub const ALGORITHM_RSA: &str = "AWS4-X509-RSA-SHA256";
pub const ALGORITHM_ECDSA: &str = "AWS4-X509-ECDSA-SHA256";
pub const SERVICE_PRINCIPAL: &str = "rolesanywhere.amazonaws.com";
/// The account of the bed's trust anchors and profiles: moto's, where the roles are.
pub const ACCOUNT_ID: &str = "123456789012";
const MIN_DURATION: i64 = 900;
const MAX_DURATION: i64 = 43_200;
const DEFAULT_PROFILE_DURATION: u32 = 3600;

/// A trust anchor: a CA bundle the account trusts.
#[derive(Clone, Debug)]
pub struct TrustAnchor {
    pub id: String,
    pub arn: String,
    pub name: String,
    pub enabled: bool,
    /// The bundle's CA certificates, DER.
    pub certificates: Vec<Vec<u8>>,
}

/// A profile: which roles sessions may be for, and for how long.
#[derive(Clone, Debug)]
pub struct Profile {
    pub id: String,
    pub arn: String,
    pub name: String,
    pub role_arns: Vec<String>,
    pub duration_seconds: u32,
    pub enabled: bool,
    pub accept_role_session_name: bool,
}

/// How to make a profile.
#[derive(Clone, Debug)]
pub struct ProfileOptions {
    /// The profile's `durationSeconds` (AWS's default: 3600).
    pub duration_seconds: u32,
    pub enabled: bool,
    pub accept_role_session_name: bool,
}

impl Default for ProfileOptions {
    fn default() -> Self {
        Self {
            duration_seconds: DEFAULT_PROFILE_DURATION,
            enabled: true,
            accept_role_session_name: false,
        }
    }
}

/// One `CreateSession` the endpoint answered.
#[derive(Clone, Debug)]
pub struct CreateSessionCall {
    pub status: u16,
    /// The exception (`x-amzn-ErrorType`) of a refusal.
    pub error: Option<String>,
    pub message: Option<String>,
    /// `AWS4-X509-RSA-SHA256` / `AWS4-X509-ECDSA-SHA256`, as sent.
    pub algorithm: Option<String>,
    /// The serial from the credential scope (decimal).
    pub serial: Option<String>,
    pub content_type: Option<String>,
    /// Whether the ARNs came in the query string (`aws_signing_helper`) or the body.
    pub arns_in_query: bool,
    pub role_arn: Option<String>,
    pub duration_seconds: Option<i64>,
    pub session_name: Option<String>,
    /// The access key id of the minted set (to find it in [`StsFront::minted`]).
    pub access_key_id: Option<String>,
    pub started: Instant,
    pub finished: Instant,
}

/// A refusal in AWS's shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaError {
    pub status: u16,
    pub exception: &'static str,
    pub message: String,
}

fn denied(message: impl Into<String>) -> RaError {
    RaError {
        status: 403,
        exception: "AccessDeniedException",
        message: message.into(),
    }
}

fn invalid(message: impl Into<String>) -> RaError {
    RaError {
        status: 400,
        exception: "ValidationException",
        message: message.into(),
    }
}

fn not_found(message: impl Into<String>) -> RaError {
    RaError {
        status: 404,
        exception: "ResourceNotFoundException",
        message: message.into(),
    }
}

/// AWS's words where they are known (see the module docs).
pub const INVALID_SIGNATURE: &str = "Invalid signature";
pub const UNTRUSTED_CERTIFICATE: &str = "Untrusted Signing Certificate";
pub const ROLE_SESSION_NAME_REFUSED: &str = "Not authorized to set roleSessionName.";

/// REST-JSON error: status, `x-amzn-ErrorType`, `{"message"}`.
pub fn error_response(status: u16, exception: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        [
            ("content-type", "application/json".to_string()),
            ("x-amzn-errortype", exception.to_string()),
            ("x-amzn-requestid", crate::request_id()),
        ],
        json!({ "message": message }).to_string(),
    )
        .into_response()
}

/// The service's state; see the module docs.
pub struct RolesAnywhere {
    pub region: String,
    pub account: String,
    moto_url: String,
    sts: Arc<StsFront>,
    /// For moto's IAM; made on first use (a reqwest client costs ~10 ms to build, most of
    /// what this service would add to `TestBed::start`).
    http: OnceLock<reqwest::Client>,
    anchors: Mutex<HashMap<String, TrustAnchor>>,
    profiles: Mutex<HashMap<String, Profile>>,
    root: OnceLock<Arc<TestCa>>,
    intermediate: OnceLock<Arc<TestCa>>,
    pub faults: Faults,
    calls: Mutex<Vec<CreateSessionCall>>,
    signatures: Mutex<Vec<String>>,
}

impl std::fmt::Debug for RolesAnywhere {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RolesAnywhere")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl RolesAnywhere {
    pub fn new(sts: Arc<StsFront>, moto_url: &str, region: &str) -> Arc<Self> {
        Arc::new(Self {
            region: region.into(),
            account: ACCOUNT_ID.into(),
            moto_url: moto_url.trim_end_matches('/').into(),
            sts,
            http: OnceLock::new(),
            anchors: Mutex::default(),
            profiles: Mutex::default(),
            root: OnceLock::new(),
            intermediate: OnceLock::new(),
            faults: Faults::default(),
            calls: Mutex::default(),
            signatures: Mutex::default(),
        })
    }

    /// The bed's Roles Anywhere root CA (ECDSA P-256), made on first use.
    pub fn root_ca(&self) -> Arc<TestCa> {
        self.root
            .get_or_init(|| {
                Arc::new(
                    TestCa::root("stsbridge test bed Roles Anywhere root CA")
                        .expect("a P-256 root CA"),
                )
            })
            .clone()
    }

    /// An intermediate CA under [`RolesAnywhere::root_ca`], made on first use: its leaves need
    /// `X-Amz-X509-Chain` to chain to an anchor holding only the root.
    pub fn intermediate_ca(&self) -> Arc<TestCa> {
        self.intermediate
            .get_or_init(|| {
                Arc::new(
                    self.root_ca()
                        .intermediate("stsbridge test bed Roles Anywhere issuing CA")
                        .expect("an intermediate CA"),
                )
            })
            .clone()
    }

    fn arn(&self, kind: &str, id: &str) -> String {
        format!(
            "arn:aws:rolesanywhere:{}:{}:{kind}/{id}",
            self.region, self.account
        )
    }

    /// A trust anchor (`CERTIFICATE_BUNDLE`) holding these CAs' certificates, enabled.
    pub fn create_trust_anchor(&self, name: &str, cas: &[&TestCa]) -> TrustAnchor {
        self.create_trust_anchor_der(name, cas.iter().map(|c| c.der.clone()).collect())
    }

    /// A trust anchor from a PEM bundle (`X509CertificateData`, as CloudFormation takes it).
    pub fn create_trust_anchor_pem(&self, name: &str, pem: &str) -> anyhow::Result<TrustAnchor> {
        let certs = Certificate::from_pem_bundle(pem).map_err(|e| anyhow::anyhow!(e))?;
        anyhow::ensure!(!certs.is_empty(), "no certificate in the bundle");
        Ok(self.create_trust_anchor_der(name, certs.into_iter().map(|c| c.der).collect()))
    }

    fn create_trust_anchor_der(&self, name: &str, certificates: Vec<Vec<u8>>) -> TrustAnchor {
        let id = crate::request_id();
        let anchor = TrustAnchor {
            arn: self.arn("trust-anchor", &id),
            id,
            name: name.into(),
            enabled: true,
            certificates,
        };
        self.anchors
            .lock()
            .unwrap()
            .insert(anchor.arn.clone(), anchor.clone());
        anchor
    }

    /// A profile for these roles.
    pub fn create_profile(
        &self,
        name: &str,
        role_arns: &[&str],
        options: ProfileOptions,
    ) -> Profile {
        let id = crate::request_id();
        let profile = Profile {
            arn: self.arn("profile", &id),
            id,
            name: name.into(),
            role_arns: role_arns.iter().map(|r| r.to_string()).collect(),
            duration_seconds: options.duration_seconds,
            enabled: options.enabled,
            accept_role_session_name: options.accept_role_session_name,
        };
        self.profiles
            .lock()
            .unwrap()
            .insert(profile.arn.clone(), profile.clone());
        profile
    }

    /// Enables or disables a trust anchor (`EnableTrustAnchor`/`DisableTrustAnchor`); false
    /// when there is none with that ARN.
    pub fn set_trust_anchor_enabled(&self, arn: &str, enabled: bool) -> bool {
        self.anchors
            .lock()
            .unwrap()
            .get_mut(arn)
            .map(|a| a.enabled = enabled)
            .is_some()
    }

    /// Enables or disables a profile (`EnableProfile`/`DisableProfile`).
    pub fn set_profile_enabled(&self, arn: &str, enabled: bool) -> bool {
        self.profiles
            .lock()
            .unwrap()
            .get_mut(arn)
            .map(|p| p.enabled = enabled)
            .is_some()
    }

    /// Changes a profile's `durationSeconds` (`UpdateProfile`).
    pub fn set_profile_duration(&self, arn: &str, duration_seconds: u32) -> bool {
        self.profiles
            .lock()
            .unwrap()
            .get_mut(arn)
            .map(|p| p.duration_seconds = duration_seconds)
            .is_some()
    }

    pub fn trust_anchor(&self, arn: &str) -> Option<TrustAnchor> {
        self.anchors.lock().unwrap().get(arn).cloned()
    }

    pub fn profile(&self, arn: &str) -> Option<Profile> {
        self.profiles.lock().unwrap().get(arn).cloned()
    }

    /// Creates an IAM role in moto with this trust policy (directly, not through the STS
    /// front: no call of the app's); returns its ARN. `max_session_duration`: seconds (IAM's
    /// default 3600 when `None`).
    pub async fn create_role(
        &self,
        name: &str,
        trust_policy: &str,
        max_session_duration: Option<u32>,
    ) -> anyhow::Result<String> {
        let mut body = format!(
            "Action=CreateRole&Version=2010-05-08&RoleName={}&AssumeRolePolicyDocument={}",
            form(name),
            form(trust_policy)
        );
        if let Some(max) = max_session_duration {
            body.push_str(&format!("&MaxSessionDuration={max}"));
        }
        let text = crate::moto_iam(&self.moto_url, &body).await?;
        tag(&text, "Arn")
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("CreateRole answered no ARN: {text}"))
    }

    /// Every `CreateSession` answered so far.
    pub fn calls(&self) -> Vec<CreateSessionCall> {
        self.calls.lock().unwrap().clone()
    }

    pub fn clear_calls(&self) {
        self.calls.lock().unwrap().clear();
    }

    /// Every signature received (lower-case hex), for the secret search.
    pub fn signature_values(&self) -> Vec<String> {
        self.signatures.lock().unwrap().clone()
    }

    /// The role's ARN, id, trust policy and `MaxSessionDuration`, from moto; `None` when IAM has
    /// no such role.
    async fn role(&self, role_arn: &str) -> Result<Option<Role>, String> {
        let Some(name) = role_arn
            .split_once(":role/")
            .map(|(_, path)| path.rsplit('/').next().unwrap_or(path).to_string())
        else {
            return Ok(None);
        };
        let auth = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=00";
        let r = self
            .http
            .get_or_init(reqwest::Client::new)
            .post(format!("{}/", self.moto_url))
            .header("authorization", auth)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "Action=GetRole&Version=2010-05-08&RoleName={}",
                form(&name)
            ))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = r.status();
        let text = r.text().await.map_err(|e| e.to_string())?;
        if text.contains("<Code>NoSuchEntity</Code>") {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(format!("GetRole {status}: {text}"));
        }
        let document = tag(&text, "AssumeRolePolicyDocument")
            .map(|d| {
                percent_encoding::percent_decode_str(d)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .unwrap_or_default();
        let arn = tag(&text, "Arn").unwrap_or_default().to_string();
        if arn != role_arn {
            return Ok(None);
        }
        Ok(Some(Role {
            arn,
            name,
            id: tag(&text, "RoleId").unwrap_or_default().to_string(),
            trust_policy: serde_json::from_str(&document).unwrap_or(Value::Null),
            max_session_duration: tag(&text, "MaxSessionDuration")
                .and_then(|m| m.parse().ok())
                .unwrap_or(3600),
        }))
    }
}

struct Role {
    arn: String,
    name: String,
    id: String,
    trust_policy: Value,
    max_session_duration: i64,
}

fn form(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn tag<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(&xml[start..end])
}

/// A trust policy that lets Roles Anywhere assume the role (AWS's documented statement),
/// with `conditions` (a policy `Condition` object) when given.
pub fn roles_anywhere_trust_policy(conditions: Option<Value>) -> String {
    let mut statement = json!({
        "Effect": "Allow",
        "Principal": {"Service": SERVICE_PRINCIPAL},
        "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
    });
    if let Some(c) = conditions {
        statement["Condition"] = c;
    }
    json!({"Version": "2012-10-17", "Statement": [statement]}).to_string()
}

/// A trust policy that does not admit Roles Anywhere (EC2 may assume the role).
pub fn ec2_trust_policy() -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }],
    })
    .to_string()
}

pub fn router(ra: Arc<RolesAnywhere>) -> Router {
    Router::new().fallback(handle).with_state(ra)
}

/// What authentication established.
#[derive(Debug)]
pub struct Authenticated {
    pub algorithm: String,
    pub serial: String,
    pub leaf: Certificate,
    /// What `X-Amz-X509-Chain` carried, in order.
    pub chain: Vec<Certificate>,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn decode_certificate(b64: &str, what: &str) -> Result<Certificate, RaError> {
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| denied(format!("Invalid {what}: not base64")))?;
    Certificate::from_der(&der).map_err(|e| denied(format!("Invalid {what}: {e}")))
}

/// Steps 1–3 of the module docs: who signed, and that they did. Pure (takes `now`).
pub fn authenticate(
    request: &sigv4::Request<'_>,
    region: &str,
    now: DateTime<Utc>,
) -> Result<Authenticated, RaError> {
    let Some(value) = header(request.headers, "authorization") else {
        return Err(denied("Missing Authentication Token"));
    };
    let (algorithm, auth) =
        sigv4::parse_authorization_for(value, &[ALGORITHM_RSA, ALGORITHM_ECDSA])
            .map_err(|r| denied(r.message()))?;
    if auth.service != "rolesanywhere" {
        return Err(denied(
            "Credential should be scoped to correct service: 'rolesanywhere'.",
        ));
    }
    if auth.region != region {
        return Err(denied(format!(
            "Credential should be scoped to a valid region, not '{}'.",
            auth.region
        )));
    }
    let amz_date = sigv4::check_time(request, &auth, now).map_err(|r| denied(r.message()))?;
    let mut required = vec!["host", "x-amz-date", "x-amz-x509"];
    if request.headers.contains_key("x-amz-x509-chain") {
        required.push("x-amz-x509-chain");
    }
    if let Some(missing) = required
        .iter()
        .find(|h| !auth.signed_headers.iter().any(|s| s == *h))
    {
        return Err(denied(format!(
            "'{missing}' must be a 'SignedHeader' in the Authorization."
        )));
    }
    let Some(leaf) = header(request.headers, "x-amz-x509") else {
        return Err(denied("Missing X-Amz-X509 header"));
    };
    let leaf = decode_certificate(leaf, "X-Amz-X509 certificate")?;
    let chain = match header(request.headers, "x-amz-x509-chain") {
        None => vec![],
        Some(list) => list
            .split(',')
            .filter(|c| !c.trim().is_empty())
            .map(|c| decode_certificate(c, "X-Amz-X509-Chain certificate"))
            .collect::<Result<_, _>>()?,
    };
    if auth.access_key_id != leaf.serial_decimal() {
        return Err(denied(
            "The serial number in the credential scope does not match the signing certificate's.",
        ));
    }
    let verification: &'static dyn aws_lc_rs::signature::VerificationAlgorithm =
        match (algorithm.as_str(), &leaf.public_key) {
            (ALGORITHM_RSA, PublicKey::Rsa { .. }) => {
                &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256
            }
            (ALGORITHM_ECDSA, PublicKey::Ec { curve, .. }) => match curve {
                Curve::P256 => &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1,
                Curve::P384 => &aws_lc_rs::signature::ECDSA_P384_SHA256_ASN1,
                Curve::P521 => &aws_lc_rs::signature::ECDSA_P521_SHA256_ASN1,
            },
            _ => {
                return Err(denied(format!(
            "The signing algorithm {algorithm} does not match the signing certificate's key type."
        )))
            }
        };
    let canonical = sigv4::canonical_request(request, &auth.signed_headers)
        .map_err(|_| denied(INVALID_SIGNATURE))?;
    let to_sign = sigv4::string_to_sign_for(&algorithm, &amz_date, &auth.scope(), &canonical);
    let signature = decode_hex(&auth.signature).ok_or_else(|| denied(INVALID_SIGNATURE))?;
    if !x509::verify_with(
        verification,
        &leaf.public_key,
        to_sign.as_bytes(),
        &signature,
    ) {
        return Err(denied(INVALID_SIGNATURE));
    }
    Ok(Authenticated {
        algorithm,
        serial: auth.access_key_id,
        leaf,
        chain,
    })
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.is_empty() || !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// Step 5: the leaf chains to the anchor's bundle and every certificate on the path is valid now.
pub fn check_chain(
    auth: &Authenticated,
    anchor_certificates: &[Vec<u8>],
    now: DateTime<Utc>,
) -> Result<(), RaError> {
    let anchors: Vec<Certificate> = anchor_certificates
        .iter()
        .filter_map(|d| Certificate::from_der(d).ok())
        .collect();
    match x509::verify_chain(&auth.leaf, &auth.chain, &anchors, now) {
        Ok(_) => Ok(()),
        Err(ChainError::Untrusted(why)) => {
            tracing::debug!("Roles Anywhere: untrusted certificate: {why}");
            Err(denied(UNTRUSTED_CERTIFICATE))
        }
        Err(ChainError::OutsideValidity { subject, expired }) => {
            if subject != auth.leaf.subject_text() {
                tracing::debug!("Roles Anywhere: {subject} is outside its validity");
                return Err(denied(UNTRUSTED_CERTIFICATE));
            }
            Err(denied(if expired {
                "Signing certificate is expired"
            } else {
                "Signing certificate is not yet valid"
            }))
        }
    }
}

/// The principal tags and other context keys of a session for this certificate and anchor.
pub fn condition_context(leaf: &Certificate, trust_anchor_arn: &str) -> BTreeMap<String, String> {
    let mut ctx = BTreeMap::new();
    for (prefix, name) in [("x509Subject", &leaf.subject), ("x509Issuer", &leaf.issuer)] {
        for (k, v) in name.iter() {
            // Condition keys compare case-insensitively: kept lower-case.
            ctx.entry(format!("aws:principaltag/{prefix}/{k}").to_ascii_lowercase())
                .or_insert_with(|| v.clone());
        }
    }
    if let Some(dns) = leaf.san_dns.first() {
        ctx.insert("aws:principaltag/x509san/dns".into(), dns.clone());
    }
    if let Some(uri) = leaf.san_uri.first() {
        ctx.insert("aws:principaltag/x509san/uri".into(), uri.clone());
    }
    ctx.insert("aws:sourcearn".into(), trust_anchor_arn.into());
    ctx
}

fn as_list(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

/// IAM's `*`/`?` wildcards, case-sensitive (case-insensitive when `fold`).
fn wildcard(pattern: &str, value: &str, fold: bool) -> bool {
    let (p, v): (Vec<char>, Vec<char>) = if fold {
        (
            pattern.to_lowercase().chars().collect(),
            value.to_lowercase().chars().collect(),
        )
    } else {
        (pattern.chars().collect(), value.chars().collect())
    };
    let (mut pi, mut vi, mut star, mut mark) = (0, 0, None, 0);
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = vi;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            vi = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// One condition operator over one key: whether it holds.
fn condition_holds(
    operator: &str,
    key: &str,
    values: &[&str],
    ctx: &BTreeMap<String, String>,
) -> bool {
    let (operator, if_exists) = match operator.strip_suffix("IfExists") {
        Some(op) => (op, true),
        None => (operator, false),
    };
    let Some(actual) = ctx.get(&key.to_ascii_lowercase()) else {
        // A missing key satisfies IfExists and the negated operators only.
        return if_exists || operator.contains("Not");
    };
    let any = |f: &dyn Fn(&str) -> bool| values.iter().any(|v| f(v));
    match operator {
        "StringEquals" | "ArnEquals" => any(&|v| v == actual),
        "StringNotEquals" | "ArnNotEquals" => !any(&|v| v == actual),
        "StringEqualsIgnoreCase" => any(&|v| v.eq_ignore_ascii_case(actual)),
        "StringNotEqualsIgnoreCase" => !any(&|v| v.eq_ignore_ascii_case(actual)),
        "StringLike" | "ArnLike" => any(&|v| wildcard(v, actual, false)),
        "StringNotLike" | "ArnNotLike" => !any(&|v| wildcard(v, actual, false)),
        // Fails closed: an operator the bed does not evaluate never grants.
        _ => false,
    }
}

fn statement_applies(statement: &Value, action: &str, ctx: &BTreeMap<String, String>) -> bool {
    let principal_ok = match &statement["Principal"] {
        Value::String(s) => s == "*",
        Value::Object(p) => p
            .get("Service")
            .is_some_and(|s| as_list(s).contains(&SERVICE_PRINCIPAL)),
        _ => false,
    };
    let action_ok = as_list(&statement["Action"])
        .iter()
        .any(|a| wildcard(a, action, true));
    if !principal_ok || !action_ok {
        return false;
    }
    match &statement["Condition"] {
        Value::Null => true,
        Value::Object(conditions) => conditions.iter().all(|(operator, keys)| {
            keys.as_object().is_some_and(|keys| {
                keys.iter()
                    .all(|(key, values)| condition_holds(operator, key, &as_list(values), ctx))
            })
        }),
        _ => false,
    }
}

/// Whether a role's trust policy lets Roles Anywhere make a session with this context: each of
/// `sts:AssumeRole`, `sts:TagSession` and `sts:SetSourceIdentity` allowed by a statement whose
/// principal is the service and whose conditions hold, and denied by none.
pub fn trust_policy_admits(policy: &Value, ctx: &BTreeMap<String, String>) -> bool {
    let statements: Vec<&Value> = match &policy["Statement"] {
        Value::Array(a) => a.iter().collect(),
        s @ Value::Object(_) => vec![s],
        _ => return false,
    };
    ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]
        .iter()
        .all(|action| {
            let matching = |effect: &str| {
                statements
                    .iter()
                    .filter(|s| s["Effect"] == effect)
                    .any(|s| statement_applies(s, action, ctx))
            };
            matching("Allow") && !matching("Deny")
        })
}

async fn handle(
    State(ra): State<Arc<RolesAnywhere>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let latency = ra.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut call = CreateSessionCall {
        status: 0,
        error: None,
        message: None,
        algorithm: None,
        serial: None,
        content_type: header(&headers, "content-type").map(str::to_string),
        arns_in_query: uri.query().is_some_and(|q| q.contains("Arn=")),
        role_arn: None,
        duration_seconds: None,
        session_name: None,
        access_key_id: None,
        started,
        finished: started,
    };
    let response = match (method == Method::POST, uri.path()) {
        (true, "/sessions") => match ra.faults.check("CreateSession", None) {
            Some(Fault::Delay(d)) => {
                tokio::time::sleep(d).await;
                create_session(&ra, &uri, &headers, &body, &mut call).await
            }
            Some(Fault::Drop) => {
                let mut r = StatusCode::INTERNAL_SERVER_ERROR.into_response();
                r.extensions_mut().insert(DropConnection);
                r
            }
            Some(Fault::CommitThenDrop) => {
                let mut r = create_session(&ra, &uri, &headers, &body, &mut call).await;
                r.extensions_mut().insert(DropConnection);
                r
            }
            Some(Fault::Error {
                status,
                code,
                message,
                ..
            }) => {
                call.error = Some(code.clone());
                call.message = Some(message.clone());
                error_response(status, &code, &message)
            }
            None => create_session(&ra, &uri, &headers, &body, &mut call).await,
        },
        _ => error_response(404, "UnknownOperationException", "Unknown operation"),
    };
    call.status = response.status().as_u16();
    call.finished = Instant::now();
    ra.calls.lock().unwrap().push(call);
    response
}

async fn create_session(
    ra: &RolesAnywhere,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
    call: &mut CreateSessionCall,
) -> Response {
    if let Some((algorithm, serial, signature)) = header(headers, "authorization").map(|a| {
        let field = |name: &str| {
            a.split(name)
                .nth(1)
                .map(|r| r.split([',', '/', ' ']).next().unwrap_or("").to_string())
        };
        (
            a.split_whitespace().next().map(str::to_string),
            field("Credential="),
            field("Signature="),
        )
    }) {
        call.algorithm = algorithm;
        call.serial = serial;
        if let Some(s) = signature.filter(|s| !s.is_empty()) {
            ra.signatures.lock().unwrap().push(s.to_ascii_lowercase());
        }
    }
    match session(ra, uri, headers, body, call).await {
        Ok(answer) => (
            StatusCode::CREATED,
            [("content-type", "application/json")],
            answer.to_string(),
        )
            .into_response(),
        Err(e) => {
            call.error = Some(e.exception.to_string());
            call.message = Some(e.message.clone());
            error_response(e.status, e.exception, &e.message)
        }
    }
}

/// `1 validation error detected: …`, AWS's generic validation wording.
fn validation(value: &str, member: &str, constraint: &str) -> RaError {
    invalid(format!(
        "1 validation error detected: Value {value} at '{member}' failed to satisfy constraint: {constraint}"
    ))
}

async fn session(
    ra: &RolesAnywhere,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
    call: &mut CreateSessionCall,
) -> Result<Value, RaError> {
    let now = Utc::now();
    let request = sigv4::Request {
        method: "POST",
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers,
        body,
    };
    let auth = authenticate(&request, &ra.region, now)?;

    // The body (and the query string, aws_signing_helper's place for the ARNs).
    let parsed: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body).map_err(|_| invalid("The request body is not valid JSON."))?
    };
    if !parsed.is_object() {
        return Err(invalid("The request body must be a JSON object."));
    }
    let query: HashMap<String, String> = url::form_urlencoded::parse(request.query.as_bytes())
        .into_owned()
        .collect();
    let arn = |member: &str| -> Result<String, RaError> {
        let from_body = parsed[member].as_str().map(str::to_string);
        let from_query = query.get(member).cloned();
        match (from_body, from_query) {
            (Some(b), Some(q)) if b != q => Err(invalid(format!(
                "'{member}' is given twice with different values."
            ))),
            (Some(v), _) | (None, Some(v)) => Ok(v),
            (None, None) => Err(validation("null", member, "Member must not be null")),
        }
    };
    let (profile_arn, role_arn, anchor_arn) =
        (arn("profileArn")?, arn("roleArn")?, arn("trustAnchorArn")?);
    call.role_arn = Some(role_arn.clone());
    let arn_ok = |v: &str, service: &str, resource: &str| {
        let parts: Vec<&str> = v.splitn(6, ':').collect();
        parts.len() == 6
            && parts[0] == "arn"
            && parts[1].starts_with("aws")
            && parts[2] == service
            && parts[5].starts_with(resource)
    };
    for (member, value, service, resource) in [
        ("profileArn", &profile_arn, "rolesanywhere", "profile/"),
        (
            "trustAnchorArn",
            &anchor_arn,
            "rolesanywhere",
            "trust-anchor/",
        ),
        ("roleArn", &role_arn, "iam", "role/"),
    ] {
        if !arn_ok(value, service, resource) {
            return Err(validation(
                &format!("'{value}'"),
                member,
                "Member must satisfy regular expression pattern: ^arn:aws(-[^:]+)?:…",
            ));
        }
    }
    let duration = match &parsed["durationSeconds"] {
        Value::Null => None,
        v => Some(v.as_i64().ok_or_else(|| {
            validation(
                &format!("'{v}'"),
                "durationSeconds",
                "Member must be an integer",
            )
        })?),
    };
    if let Some(d) = duration {
        if d < MIN_DURATION {
            return Err(validation(
                &format!("'{d}'"),
                "durationSeconds",
                "Member must have value greater than or equal to 900",
            ));
        }
        if d > MAX_DURATION {
            return Err(validation(
                &format!("'{d}'"),
                "durationSeconds",
                "Member must have value less than or equal to 43200",
            ));
        }
    }
    let role_session_name = match &parsed["roleSessionName"] {
        Value::Null => None,
        Value::String(s)
            if (2..=64).contains(&s.len())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)) =>
        {
            Some(s.clone())
        }
        v => {
            return Err(validation(
                &format!("'{v}'"),
                "roleSessionName",
                "Member must satisfy regular expression pattern: [\\w+=,.@-]{2,64}",
            ))
        }
    };

    // The trust anchor, and the certificate path to it.
    let anchor = ra
        .trust_anchor(&anchor_arn)
        .ok_or_else(|| not_found(format!("Trust anchor {anchor_arn} was not found.")))?;
    if !anchor.enabled {
        return Err(denied(format!("Trust anchor {anchor_arn} is disabled.")));
    }
    check_chain(&auth, &anchor.certificates, now)?;

    // The profile and the role.
    let profile = ra
        .profile(&profile_arn)
        .ok_or_else(|| not_found(format!("Profile {profile_arn} was not found.")))?;
    if !profile.enabled {
        return Err(denied(format!("Profile {profile_arn} is disabled.")));
    }
    if !profile.role_arns.contains(&role_arn) {
        return Err(denied(format!(
            "Role {role_arn} is not in the roleArns of profile {profile_arn}."
        )));
    }
    if role_session_name.is_some() && !profile.accept_role_session_name {
        return Err(denied(ROLE_SESSION_NAME_REFUSED));
    }
    let unable = || denied(format!("Unable to assume role for {role_arn}."));
    let role = ra
        .role(&role_arn)
        .await
        .map_err(|e| RaError {
            status: 500,
            exception: "InternalServerException",
            message: format!("IAM unreachable: {e}"),
        })?
        .ok_or_else(unable)?;
    let ctx = condition_context(&auth.leaf, &anchor.arn);
    if !trust_policy_admits(&role.trust_policy, &ctx) {
        return Err(unable());
    }
    let duration = duration.unwrap_or(profile.duration_seconds as i64);
    call.duration_seconds = Some(duration);
    if duration > profile.duration_seconds as i64 {
        return Err(denied(format!(
            "Unable to assume role for {role_arn}. The requested DurationSeconds exceeds the DurationSeconds set for this profile."
        )));
    }
    if duration > role.max_session_duration {
        return Err(denied(format!(
            "Unable to assume role for {role_arn}. The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
        )));
    }

    // The session.
    let session_name = role_session_name.unwrap_or_else(|| auth.leaf.serial_hex());
    call.session_name = Some(session_name.clone());
    let account = role.arn.split(':').nth(4).unwrap_or(ACCOUNT_ID).to_string();
    let assumed_arn = format!(
        "arn:aws:sts::{account}:assumed-role/{}/{session_name}",
        role.name
    );
    let assumed_id = format!("{}:{session_name}", role.id);
    let expiration = ra
        .sts
        .expiration_for(std::time::Duration::from_secs(duration as u64));
    let minted = ra
        .sts
        .issue(&assumed_arn, &assumed_id, &account, &expiration);
    call.access_key_id = Some(minted.access_key_id.clone());
    let source_identity = auth
        .leaf
        .subject_cn()
        .map(|cn| format!("CN={cn}"))
        .unwrap_or_default();
    let tags = ctx
        .keys()
        .filter(|k| k.starts_with("aws:principaltag/"))
        .count();
    let subject_hash = Sha256::digest(auth.leaf.subject_text().as_bytes());
    let h: String = subject_hash.iter().map(|b| format!("{b:02x}")).collect();
    let subject_id = format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    );
    Ok(json!({
        "credentialSet": [{
            "assumedRoleUser": {"arn": assumed_arn, "assumedRoleId": assumed_id},
            "credentials": {
                "accessKeyId": minted.access_key_id,
                "expiration": minted.expiration,
                "secretAccessKey": minted.secret_access_key,
                "sessionToken": minted.session_token,
            },
            // AWS reports how full the packed session policy and tags are, in percent.
            "packedPolicySize": (tags * 3).min(100),
            "roleArn": role.arn,
            "sourceIdentity": source_identity,
        }],
        "subjectArn": format!("arn:aws:rolesanywhere:{}:{account}:subject/{subject_id}", ra.region),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    /// A CreateSession request signed by AWS's own Python client (PyPI
    /// `iam-rolesanywhere-session` 3.0.0) at a fixed time with a fixed RSA key
    /// (`testdata/rolesanywhere/make_kat.py` made it).
    struct Kat {
        json: Value,
        headers: HeaderMap,
        body: Vec<u8>,
        now: DateTime<Utc>,
    }

    fn kat() -> Kat {
        let json: Value =
            serde_json::from_str(include_str!("../testdata/rolesanywhere/kat.json")).unwrap();
        let mut headers = HeaderMap::new();
        let mut set = |k: &'static str, v: &str| {
            headers.insert(k, HeaderValue::from_str(v).unwrap());
        };
        set("host", "127.0.0.1:8443");
        set("content-type", json["content_type"].as_str().unwrap());
        set("x-amz-date", "20261206T083900Z");
        set("x-amz-x509", json["x509"].as_str().unwrap());
        set("x-amz-x509-chain", json["chain"].as_str().unwrap());
        set("authorization", json["authorization"].as_str().unwrap());
        set("user-agent", "not signed");
        let body = json["body"].as_str().unwrap().as_bytes().to_vec();
        let now = DateTime::parse_from_rfc3339("2026-12-06T08:41:00Z")
            .unwrap()
            .with_timezone(&Utc);
        Kat {
            json,
            headers,
            body,
            now,
        }
    }

    fn request<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> sigv4::Request<'a> {
        sigv4::Request {
            method: "POST",
            path: "/sessions",
            query: "",
            headers,
            body,
        }
    }

    fn root() -> Vec<u8> {
        pem::parse(include_str!("../testdata/rolesanywhere/root.pem"))
            .unwrap()
            .into_contents()
    }

    #[test]
    fn the_canonical_request_and_string_to_sign_are_those_of_aws_s_python_client() {
        let k = kat();
        let r = request(&k.headers, &k.body);
        let (algorithm, auth) = sigv4::parse_authorization_for(
            k.headers["authorization"].to_str().unwrap(),
            &[ALGORITHM_RSA, ALGORITHM_ECDSA],
        )
        .unwrap();
        let canonical = sigv4::canonical_request(&r, &auth.signed_headers).unwrap();
        assert_eq!(canonical, k.json["canonical"].as_str().unwrap());
        let sts =
            sigv4::string_to_sign_for(&algorithm, "20261206T083900Z", &auth.scope(), &canonical);
        assert_eq!(sts, k.json["sts"].as_str().unwrap());
        assert_eq!(auth.access_key_id, "5373003642731685151011");
    }

    #[test]
    fn the_vault_s_rs256_of_the_digest_is_the_python_client_s_signature_byte_for_byte() {
        // RSA PKCS#1 v1.5 is deterministic: Key Vault's `sign` (RS256 over SHA-256 of the string
        // to sign) must give exactly what a client signing the string itself gives.
        let k = kat();
        let key = pem::parse(include_str!(
            "../testdata/rolesanywhere/leaf-key.test-only.pem"
        ))
        .unwrap();
        let material = crate::keyvault::keys::Material::rsa_from_pkcs8(key.contents());
        let digest = Sha256::digest(k.json["sts"].as_str().unwrap().as_bytes());
        let Ok(signature) = material.sign("RS256", &digest) else {
            panic!("RS256 refused");
        };
        let hex: String = signature.iter().map(|b| format!("{b:02x}")).collect();
        assert!(
            hex == k.json["signature"].as_str().unwrap(),
            "signatures differ"
        );
    }

    #[test]
    fn a_request_signed_by_aws_s_python_client_is_authenticated_and_chains_to_its_root() {
        let k = kat();
        let auth = authenticate(&request(&k.headers, &k.body), "us-east-1", k.now).unwrap();
        assert_eq!(auth.algorithm, ALGORITHM_RSA);
        assert_eq!(auth.leaf.subject_cn(), Some("kat-workload"));
        assert_eq!(auth.leaf.serial_hex(), "123456789abcdef0123");
        assert_eq!(auth.chain.len(), 1);
        check_chain(&auth, &[root()], k.now).unwrap();
    }

    fn refusal(headers: &HeaderMap, body: &[u8], now: DateTime<Utc>) -> String {
        authenticate(&request(headers, body), "us-east-1", now)
            .unwrap_err()
            .message
    }

    fn with_authorization(k: &Kat, edit: impl Fn(&str) -> String) -> HeaderMap {
        let mut h = k.headers.clone();
        let value = edit(h["authorization"].to_str().unwrap());
        h.insert("authorization", HeaderValue::from_str(&value).unwrap());
        h
    }

    #[test]
    fn a_tampered_signature_or_body_is_an_invalid_signature() {
        let k = kat();
        let h = with_authorization(&k, |a| {
            let at = a.len() - 1;
            let last = if a.ends_with('0') { "1" } else { "0" };
            format!("{}{last}", &a[..at])
        });
        assert_eq!(refusal(&h, &k.body, k.now), INVALID_SIGNATURE);
        let body = String::from_utf8(k.body.clone())
            .unwrap()
            .replace("900", "901");
        assert_eq!(
            refusal(&k.headers, body.as_bytes(), k.now),
            INVALID_SIGNATURE
        );
    }

    #[test]
    fn the_scope_s_serial_algorithm_date_and_signed_headers_are_checked() {
        let k = kat();
        let h = with_authorization(&k, |a| {
            a.replace("Credential=5373003642731685151011", "Credential=21")
        });
        assert!(refusal(&h, &k.body, k.now).contains("serial number"));
        let h = with_authorization(&k, |a| a.replace(ALGORITHM_RSA, ALGORITHM_ECDSA));
        assert!(refusal(&h, &k.body, k.now).contains("does not match"));
        let h = with_authorization(&k, |a| a.replace(ALGORITHM_RSA, "AWS4-X509-RSA-SHA384"));
        assert!(refusal(&h, &k.body, k.now).contains("Unsupported"));
        let late = k.now + chrono::Duration::minutes(20);
        assert!(refusal(&k.headers, &k.body, late).starts_with("Signature expired"));
        let h = with_authorization(&k, |a| a.replace("/us-east-1/", "/eu-west-1/"));
        assert!(refusal(&h, &k.body, k.now).contains("region"));
        let h = with_authorization(&k, |a| a.replace(";x-amz-x509-chain", ""));
        assert!(refusal(&h, &k.body, k.now).contains("x-amz-x509-chain"));
        let mut h = k.headers.clone();
        h.remove("authorization");
        assert_eq!(refusal(&h, &k.body, k.now), "Missing Authentication Token");
    }

    #[test]
    fn a_certificate_outside_the_anchor_or_its_validity_is_refused() {
        let k = kat();
        let auth = authenticate(&request(&k.headers, &k.body), "us-east-1", k.now).unwrap();
        let other = TestCa::root("another root").unwrap();
        assert_eq!(
            check_chain(&auth, std::slice::from_ref(&other.der), k.now)
                .unwrap_err()
                .message,
            UNTRUSTED_CERTIFICATE
        );
        let later = DateTime::parse_from_rfc3339("2036-06-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            check_chain(&auth, &[root()], later).unwrap_err().message,
            "Signing certificate is expired"
        );
    }

    /// An ECDSA request signed here: DER accepted, the same signature as raw `r‖s` refused.
    #[test]
    fn an_ecdsa_signature_must_be_der_not_raw() {
        use rcgen::SigningKey;
        let ca = TestCa::root("ec root").unwrap();
        let leaf = ca
            .issue(
                "ec-workload",
                crate::pki::KeySpec::EcP256,
                crate::pki::Validity::days(1),
            )
            .unwrap();
        let key = rcgen::KeyPair::from_pem(&leaf.key_pem).unwrap();
        let now = Utc::now();
        let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("127.0.0.1:1"));
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert("x-amz-date", HeaderValue::from_str(&amz_date).unwrap());
        let b64 = base64::engine::general_purpose::STANDARD.encode(&leaf.der);
        headers.insert("x-amz-x509", HeaderValue::from_str(&b64).unwrap());
        let body = b"{}";
        let signed: Vec<String> = ["content-type", "host", "x-amz-date", "x-amz-x509"]
            .map(String::from)
            .to_vec();
        let scope = format!("{}/us-east-1/rolesanywhere/aws4_request", &amz_date[..8]);
        let canonical = sigv4::canonical_request(&request(&headers, body), &signed).unwrap();
        let sts = sigv4::string_to_sign_for(ALGORITHM_ECDSA, &amz_date, &scope, &canonical);
        let der = key.sign(sts.as_bytes()).unwrap();
        let raw = yasna::parse_der(&der, |r| {
            r.read_sequence(|s| {
                let (r, _) = s.next().read_bigint_bytes()?;
                let (s2, _) = s.next().read_bigint_bytes()?;
                Ok((r, s2))
            })
        })
        .unwrap();
        let pad = |v: Vec<u8>| {
            let v: Vec<u8> = v.into_iter().skip_while(|b| *b == 0).collect();
            [vec![0u8; 32 - v.len()], v].concat()
        };
        let raw = [pad(raw.0), pad(raw.1)].concat();
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let with = |sig: &[u8]| {
            let mut h = headers.clone();
            let value = format!(
                "{ALGORITHM_ECDSA} Credential={}/{scope}, SignedHeaders={}, Signature={}",
                leaf.serial_decimal,
                signed.join(";"),
                hex(sig)
            );
            h.insert("authorization", HeaderValue::from_str(&value).unwrap());
            h
        };
        let ok = authenticate(&request(&with(&der), body), "us-east-1", now).unwrap();
        check_chain(&ok, std::slice::from_ref(&ca.der), now).unwrap();
        assert_eq!(refusal(&with(&raw), body, now), INVALID_SIGNATURE);
    }

    /// The context of a session for a leaf with this CN, issued by a test CA.
    fn ctx(cn: &str) -> BTreeMap<String, String> {
        let ca = TestCa::root("issuer").unwrap();
        let leaf = ca
            .issue(
                cn,
                crate::pki::KeySpec::EcP256,
                crate::pki::Validity::days(1),
            )
            .unwrap();
        let leaf = Certificate::from_der(&leaf.der).unwrap();
        condition_context(
            &leaf,
            "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/a",
        )
    }

    fn policy(conditions: Option<Value>) -> Value {
        serde_json::from_str(&roles_anywhere_trust_policy(conditions)).unwrap()
    }

    #[test]
    fn the_documented_trust_policy_admits_roles_anywhere() {
        assert!(trust_policy_admits(&policy(None), &ctx("workload")));
    }

    #[test]
    fn a_trust_policy_for_another_service_does_not() {
        let p: Value = serde_json::from_str(&ec2_trust_policy()).unwrap();
        assert!(!trust_policy_admits(&p, &ctx("workload")));
    }

    #[test]
    fn every_one_of_the_three_actions_is_needed() {
        let mut p = policy(None);
        p["Statement"][0]["Action"] = json!(["sts:AssumeRole", "sts:TagSession"]);
        assert!(!trust_policy_admits(&p, &ctx("workload")));
        p["Statement"][0]["Action"] = json!("sts:*");
        assert!(trust_policy_admits(&p, &ctx("workload")));
    }

    #[test]
    fn conditions_on_the_subject_cn_are_evaluated() {
        let equals = policy(Some(
            json!({"StringEquals": {"aws:PrincipalTag/x509Subject/CN": "workload"}}),
        ));
        assert!(trust_policy_admits(&equals, &ctx("workload")));
        assert!(!trust_policy_admits(&equals, &ctx("other")));
        let like = policy(Some(
            json!({"StringLike": {"aws:PrincipalTag/x509Subject/CN": ["stsbridge-*"]}}),
        ));
        assert!(trust_policy_admits(&like, &ctx("stsbridge-rotator")));
        assert!(!trust_policy_admits(&like, &ctx("rotator")));
        let arn = policy(Some(json!({"ArnEquals": {"aws:SourceArn":
            "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/b"}})));
        assert!(!trust_policy_admits(&arn, &ctx("workload")));
        let unknown = policy(Some(
            json!({"NumericEquals": {"aws:PrincipalTag/x509Subject/CN": "1"}}),
        ));
        assert!(!trust_policy_admits(&unknown, &ctx("1")), "fails closed");
    }

    #[test]
    fn an_explicit_deny_wins() {
        let mut p = policy(None);
        p["Statement"].as_array_mut().unwrap().push(json!({
            "Effect": "Deny",
            "Principal": {"Service": SERVICE_PRINCIPAL},
            "Action": "sts:TagSession",
            "Condition": {"StringEquals": {"aws:PrincipalTag/x509Subject/CN": "blocked"}},
        }));
        assert!(trust_policy_admits(&p, &ctx("workload")));
        assert!(!trust_policy_admits(&p, &ctx("blocked")));
    }

    #[test]
    fn wildcards_follow_iam() {
        assert!(wildcard("a*c", "abbbc", false));
        assert!(wildcard("a?c", "abc", false));
        assert!(!wildcard("a?c", "ac", false));
        assert!(wildcard("*", "", false));
        assert!(!wildcard("ABC", "abc", false));
        assert!(wildcard("STS:*", "sts:AssumeRole", true));
    }
}
