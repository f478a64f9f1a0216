//! Key Vault keys (issue #30): what the official SDKs send for a key that signs and never
//! leaves the vault (`2025-07-01`, `../../../shared/PROTOCOL.md`; the research in
//! `/work/notes/roles-anywhere.md` §4):
//! - `POST /keys/{name}/create` `{kty, key_size?, crv?, public_exponent?, key_ops?, attributes?
//!   {enabled, nbf, exp, exportable}, release_policy?, tags?}` → a new 32-hex version;
//! - `GET /keys/{name}`, `/keys/{name}/` (latest, the SDKs' form), `/keys/{name}/{version}` → the
//!   key bundle with the **public** JWK only (`n`, `e` / `crv`, `x`, `y`, base64url), `kid` with
//!   the host the client used;
//! - `POST /keys/{name}/{version}/sign` and `/keys/{name}//sign` (the SDKs' "latest") `{alg,
//!   value}` → `{kid, value}`: the vault signs the *digest* it is given (Key Vault never hashes):
//!   RS256/384/512 and PS256/384/512 (RSA), ES256 (P-256), ES384 (P-384), ES512 (P-521), an
//!   ECDSA signature as raw `r‖s` (RFC 7518) like Key Vault's;
//! - `POST /keys/{name}/{version}/release` (secure key release) → always refused: a
//!   non-exportable key cannot leave, and an exportable one needs an attestation token the bed
//!   cannot check.
//!
//! The private key is generated here (aws-lc-rs) and no accessor returns it. Keys backing a
//! certificate ([`super::KeyVault::create_certificate`]) are `managed` and carry the
//! certificate's validity as `nbf`/`exp`.
//!
//! Answers Key Vault gives, and where their words come from:
//! - `KeyNotFound` (404, real wording from recordings);
//! - `AKV.SKR.1004: Exportable keys must have release policy.` and `AKV.SKR.1005: Non-exportable
//!   keys must not have release policy` (400 `BadParameter`, real, from SDK recordings and
//!   azure-cli issues); `AKV.SKR.1006` for an exportable non-HSM key (the code is seen in the
//!   wild, the wording here is ours);
//! - invented (no source found; plausible, in Key Vault's shape): refusals of `release`, of a
//!   digest of the wrong length, of an algorithm the key cannot do, of `sign` outside
//!   `key_ops`, disabled or outside `nbf`/`exp` (403 `Forbidden`; Key Vault documents that
//!   expired and not-yet-valid keys refuse to sign), and of P-256K (not emulated).

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _};
use axum::body::Bytes;
use axum::response::Response;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{bad_parameter, json_ok, kv_error, parse_tags, Attributes, KeyVault};
use crate::random_hex;
use crate::x509::{ecdsa_fixed_to_der, Curve};

/// A private key that lives in the vault.
pub(crate) enum Material {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair, Curve),
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Material::Rsa(k) => write!(
                f,
                "Rsa({} bits, private part held)",
                k.public_modulus_len() * 8
            ),
            Material::Ec(_, c) => write!(f, "Ec({}, private part held)", c.jose_name()),
        }
    }
}

/// What kind of key to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa(usize),
    Ec(Curve),
}

impl From<crate::pki::KeySpec> for KeyKind {
    fn from(spec: crate::pki::KeySpec) -> Self {
        use crate::pki::KeySpec::*;
        match spec {
            Rsa2048 => KeyKind::Rsa(2048),
            Rsa3072 => KeyKind::Rsa(3072),
            Rsa4096 => KeyKind::Rsa(4096),
            EcP256 => KeyKind::Ec(Curve::P256),
            EcP384 => KeyKind::Ec(Curve::P384),
        }
    }
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Material {
    pub(crate) fn generate(kind: KeyKind) -> Result<Self, String> {
        let failed = |_| "key generation failed".to_string();
        Ok(match kind {
            KeyKind::Rsa(bits) => {
                let size = match bits {
                    2048 => KeySize::Rsa2048,
                    3072 => KeySize::Rsa3072,
                    4096 => KeySize::Rsa4096,
                    _ => return Err(format!("unsupported RSA key size {bits}")),
                };
                Material::Rsa(RsaKeyPair::generate(size).map_err(failed)?)
            }
            KeyKind::Ec(curve) => {
                let alg = match curve {
                    Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
                    Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
                };
                Material::Ec(EcdsaKeyPair::generate(alg).map_err(failed)?, curve)
            }
        })
    }

    /// The public key as a certificate carries it: PKCS#1 `RSAPublicKey` DER, or the
    /// uncompressed EC point.
    pub(crate) fn public_der(&self) -> Vec<u8> {
        match self {
            Material::Rsa(k) => k.public_key().as_ref().to_vec(),
            Material::Ec(k, _) => k.public_key().as_ref().to_vec(),
        }
    }

    /// The public JWK members (`n`, `e` or `crv`, `x`, `y`), base64url without padding.
    fn public_jwk(&self) -> Map<String, Value> {
        let mut out = Map::new();
        match self {
            Material::Rsa(k) => {
                let (n, e) = yasna::parse_der(k.public_key().as_ref(), |r| {
                    r.read_sequence(|s| {
                        let (n, _) = s.next().read_bigint_bytes()?;
                        let (e, _) = s.next().read_bigint_bytes()?;
                        Ok((n, e))
                    })
                })
                .expect("aws-lc writes PKCS#1");
                let strip = |v: Vec<u8>| -> Vec<u8> {
                    let first = v.iter().position(|b| *b != 0).unwrap_or(v.len() - 1);
                    v[first..].to_vec()
                };
                out.insert("n".into(), json!(b64url(&strip(n))));
                out.insert("e".into(), json!(b64url(&strip(e))));
            }
            Material::Ec(k, curve) => {
                let point = k.public_key().as_ref();
                let half = (point.len() - 1) / 2;
                out.insert("crv".into(), json!(curve.jose_name()));
                out.insert("x".into(), json!(b64url(&point[1..1 + half])));
                out.insert("y".into(), json!(b64url(&point[1 + half..])));
            }
        }
        out
    }

    /// PKCS#8 DER of the private key: only for the secret of a certificate whose policy makes
    /// the key exportable (as Key Vault puts it there).
    pub(crate) fn pkcs8_for_exportable_certificate(&self) -> Vec<u8> {
        match self {
            Material::Rsa(k) => k.as_der().map(|d| d.as_ref().to_vec()).expect("RSA PKCS#8"),
            Material::Ec(k, _) => k
                .to_pkcs8v1()
                .map(|d| d.as_ref().to_vec())
                .expect("EC PKCS#8"),
        }
    }

    /// A key from PKCS#8 (the known-answer tests' fixed key).
    #[cfg(test)]
    pub(crate) fn rsa_from_pkcs8(der: &[u8]) -> Self {
        Material::Rsa(RsaKeyPair::from_pkcs8(der).expect("an RSA PKCS#8 key"))
    }

    /// Signs a digest with a JOSE algorithm, as Key Vault does.
    pub(crate) fn sign(&self, alg: &str, digest_bytes: &[u8]) -> Result<Vec<u8>, SignRefusal> {
        let (hash, expected) = match alg {
            "RS256" | "PS256" | "ES256" => (&digest::SHA256, 32),
            "RS384" | "PS384" | "ES384" => (&digest::SHA384, 48),
            "RS512" | "PS512" | "ES512" => (&digest::SHA512, 64),
            _ => return Err(SignRefusal::Algorithm),
        };
        let compatible = match (self, alg) {
            (Material::Rsa(_), a) => a.starts_with("RS") || a.starts_with("PS"),
            (Material::Ec(_, Curve::P256), "ES256") => true,
            (Material::Ec(_, Curve::P384), "ES384") => true,
            (Material::Ec(_, Curve::P521), "ES512") => true,
            _ => false,
        };
        if !compatible {
            return Err(SignRefusal::Algorithm);
        }
        if digest_bytes.len() != expected {
            return Err(SignRefusal::DigestLength(expected));
        }
        let d = digest::Digest::import_less_safe(digest_bytes, hash)
            .map_err(|_| SignRefusal::DigestLength(expected))?;
        match self {
            Material::Rsa(k) => {
                let padding: &'static dyn signature::RsaEncoding = match alg {
                    "RS256" => &signature::RSA_PKCS1_SHA256,
                    "RS384" => &signature::RSA_PKCS1_SHA384,
                    "RS512" => &signature::RSA_PKCS1_SHA512,
                    "PS256" => &signature::RSA_PSS_SHA256,
                    "PS384" => &signature::RSA_PSS_SHA384,
                    _ => &signature::RSA_PSS_SHA512,
                };
                let mut out = vec![0u8; k.public_modulus_len()];
                k.sign_digest(padding, &d, &mut out)
                    .map_err(|_| SignRefusal::Algorithm)?;
                Ok(out)
            }
            Material::Ec(k, _) => k
                .sign_digest(&d)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| SignRefusal::Algorithm),
        }
    }
}

pub(crate) enum SignRefusal {
    Algorithm,
    DigestLength(usize),
}

/// One immutable version of a key.
#[derive(Clone, Debug)]
pub(crate) struct KeyVersion {
    pub version: String,
    pub material: Arc<Material>,
    /// As created: `RSA`, `RSA-HSM`, `EC`, `EC-HSM`.
    pub kty: String,
    pub key_ops: Vec<String>,
    pub enabled: bool,
    pub nbf: Option<i64>,
    pub exp: Option<i64>,
    pub exportable: bool,
    pub release_policy: Option<Value>,
    pub tags: Option<BTreeMap<String, String>>,
    pub created: i64,
    pub updated: i64,
    /// Backs a certificate.
    pub managed: bool,
}

#[derive(Debug, Default)]
pub(crate) struct StoredKey {
    pub name: String,
    pub versions: Vec<KeyVersion>,
}

/// What a test can read of a key: never its private part.
#[derive(Clone, Debug)]
pub struct KeyInfo {
    pub name: String,
    pub version: String,
    pub kty: String,
    /// PKCS#1 `RSAPublicKey` DER, or the uncompressed EC point.
    pub public_key: Vec<u8>,
    pub exportable: bool,
    pub enabled: bool,
    pub managed: bool,
}

fn key_not_found(name: &str, version: Option<&str>) -> Response {
    let what = match version {
        Some(v) => format!("(name/id) {name}/{v}"),
        None => format!("(name/id) {name}"),
    };
    kv_error(
        404,
        "KeyNotFound",
        &format!("A key with {what} was not found in this key vault. If you recently deleted this key you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"),
        None,
    )
}

impl KeyVault {
    pub(crate) fn store_key(&self, name: &str, version: KeyVersion) {
        let mut keys = self.keys.lock().unwrap();
        let entry = keys
            .entry(name.to_ascii_lowercase())
            .or_insert_with(|| StoredKey {
                name: name.to_string(),
                versions: vec![],
            });
        entry.versions.push(version);
    }

    fn find_key(&self, name: &str, version: Option<&str>) -> Option<(String, KeyVersion)> {
        let keys = self.keys.lock().unwrap();
        let key = keys.get(&name.to_ascii_lowercase())?;
        let found = match version {
            None => key.versions.last(),
            Some(v) => key
                .versions
                .iter()
                .find(|x| x.version.eq_ignore_ascii_case(v)),
        }?;
        Some((key.name.clone(), found.clone()))
    }

    /// A key's public part and attributes (latest version when `version` is `None`).
    pub fn key(&self, name: &str, version: Option<&str>) -> Option<KeyInfo> {
        let (name, v) = self.find_key(name, version)?;
        Some(KeyInfo {
            name,
            version: v.version.clone(),
            kty: v.kty.clone(),
            public_key: v.material.public_der(),
            exportable: v.exportable,
            enabled: v.enabled,
            managed: v.managed,
        })
    }

    /// Changes a key version's attributes as `PATCH /keys/{name}/{version}` would (`None`
    /// version: the latest): enabled, and `nbf`/`exp` (Unix seconds; `Some(None)` clears one).
    /// E.g. lift an expired certificate's key `exp` so that it still signs and the request
    /// reaches Roles Anywhere's own validity check. Returns whether the key exists.
    pub fn set_key_attributes(
        &self,
        name: &str,
        version: Option<&str>,
        enabled: Option<bool>,
        nbf: Option<Option<i64>>,
        exp: Option<Option<i64>>,
    ) -> bool {
        let mut keys = self.keys.lock().unwrap();
        let Some(key) = keys.get_mut(&name.to_ascii_lowercase()) else {
            return false;
        };
        let found = match version {
            None => key.versions.last_mut(),
            Some(v) => key
                .versions
                .iter_mut()
                .find(|x| x.version.eq_ignore_ascii_case(v)),
        };
        let Some(found) = found else { return false };
        if let Some(e) = enabled {
            found.enabled = e;
        }
        if let Some(n) = nbf {
            found.nbf = n;
        }
        if let Some(e) = exp {
            found.exp = e;
        }
        found.updated = chrono::Utc::now().timestamp();
        true
    }

    /// Every signature the vault has made, in the forms a client could print it (lower-case
    /// hex, base64url, base64, and for ECDSA the DER a client makes of it, in hex), for the
    /// secret search.
    pub fn signature_values(&self) -> Vec<String> {
        self.signatures.lock().unwrap().clone()
    }

    fn record_signature(&self, sig: &[u8], ecdsa: bool) {
        let mut forms = vec![
            hex(sig),
            b64url(sig),
            base64::engine::general_purpose::STANDARD.encode(sig),
        ];
        if ecdsa {
            if let Some(der) = ecdsa_fixed_to_der(sig) {
                forms.push(hex(&der));
            }
        }
        self.signatures.lock().unwrap().extend(forms);
    }
}

pub(crate) fn key_bundle(name: &str, v: &KeyVersion, base: &str) -> Value {
    let mut key = Map::new();
    key.insert(
        "kid".into(),
        json!(format!("{base}/keys/{name}/{}", v.version)),
    );
    key.insert("kty".into(), json!(v.kty));
    key.insert("key_ops".into(), json!(v.key_ops));
    key.extend(v.material.public_jwk());
    let mut attributes = json!({
        "enabled": v.enabled,
        "created": v.created,
        "updated": v.updated,
        "recoveryLevel": "Recoverable+Purgeable",
        "recoverableDays": 90,
        "exportable": v.exportable,
    });
    if let Some(nbf) = v.nbf {
        attributes["nbf"] = json!(nbf);
    }
    if let Some(exp) = v.exp {
        attributes["exp"] = json!(exp);
    }
    let mut out = json!({"key": key, "attributes": attributes});
    if v.managed {
        out["managed"] = json!(true);
    }
    if let Some(tags) = &v.tags {
        out["tags"] = json!(tags);
    }
    if let Some(policy) = &v.release_policy {
        out["release_policy"] = policy.clone();
    }
    out
}

#[derive(Deserialize)]
struct CreateBody {
    kty: Option<String>,
    key_size: Option<u32>,
    crv: Option<String>,
    public_exponent: Option<u64>,
    key_ops: Option<Vec<String>>,
    attributes: Option<KeyAttributesBody>,
    release_policy: Option<Value>,
    tags: Option<Map<String, Value>>,
}

#[derive(Deserialize, Default)]
struct KeyAttributesBody {
    #[serde(flatten)]
    common: Attributes,
    exportable: Option<bool>,
}

const RSA_OPS: &[&str] = &[
    "encrypt",
    "decrypt",
    "sign",
    "verify",
    "wrapKey",
    "unwrapKey",
];
const EC_OPS: &[&str] = &["sign", "verify"];

pub(super) async fn create(vault: &KeyVault, name: &str, body: &Bytes, base: &str) -> Response {
    let parsed: CreateBody = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(e) => return bad_parameter(&format!("The request body is not valid JSON: {e}")),
    };
    let Some(kty) = parsed.kty else {
        return bad_parameter("The parameter 'kty' is required.");
    };
    let (kind, hsm) = match kty.as_str() {
        "RSA" | "RSA-HSM" => {
            let bits = parsed.key_size.unwrap_or(2048);
            if ![2048, 3072, 4096].contains(&bits) {
                return bad_parameter(&format!(
                    "Invalid key size {bits}: RSA keys are 2048, 3072 or 4096 bits."
                ));
            }
            if parsed.public_exponent.is_some_and(|e| e != 65537) {
                return bad_parameter(
                    "Only the public exponent 65537 is supported by the test bed.",
                );
            }
            (KeyKind::Rsa(bits as usize), kty == "RSA-HSM")
        }
        "EC" | "EC-HSM" => {
            let curve = match parsed.crv.as_deref().unwrap_or("P-256") {
                "P-256" => Curve::P256,
                "P-384" => Curve::P384,
                "P-521" => Curve::P521,
                "P-256K" => {
                    return bad_parameter("The curve P-256K is not supported by the test bed.")
                }
                other => return bad_parameter(&format!("Invalid curve name '{other}'.")),
            };
            (KeyKind::Ec(curve), kty == "EC-HSM")
        }
        "oct" | "oct-HSM" => {
            return bad_parameter("Symmetric keys are only supported by Managed HSM.")
        }
        other => return bad_parameter(&format!("Invalid key type '{other}'.")),
    };
    let allowed = match kind {
        KeyKind::Rsa(_) => RSA_OPS,
        KeyKind::Ec(_) => EC_OPS,
    };
    let key_ops = parsed
        .key_ops
        .unwrap_or_else(|| allowed.iter().map(|s| s.to_string()).collect());
    if let Some(bad) = key_ops.iter().find(|op| !allowed.contains(&op.as_str())) {
        return bad_parameter(&format!(
            "Invalid key operation '{bad}' for key type {kty}."
        ));
    }
    let attributes = parsed.attributes.unwrap_or_default();
    let exportable = attributes.exportable.unwrap_or(false);
    match (exportable, &parsed.release_policy) {
        (true, None) => {
            return bad_parameter("AKV.SKR.1004: Exportable keys must have release policy.")
        }
        (false, Some(_)) => {
            return bad_parameter("AKV.SKR.1005: Non-exportable keys must not have release policy.")
        }
        (true, Some(_)) if !hsm => {
            return bad_parameter(
                "AKV.SKR.1006: Exportable keys must be HSM-protected (RSA-HSM or EC-HSM).",
            )
        }
        _ => {}
    }
    let tags = match parse_tags(parsed.tags) {
        Ok(t) => t,
        Err(m) => return bad_parameter(&m),
    };
    // RSA generation takes a while (seconds for 4096 bits in a debug build): not on a runtime
    // worker.
    let material = match tokio::task::spawn_blocking(move || Material::generate(kind)).await {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => return kv_error(500, "InternalError", &e, None),
        Err(e) => return kv_error(500, "InternalError", &e.to_string(), None),
    };
    let now = chrono::Utc::now().timestamp();
    let version = KeyVersion {
        version: random_hex(16),
        material: Arc::new(material),
        kty,
        key_ops,
        enabled: attributes.common.enabled.unwrap_or(true),
        nbf: attributes.common.nbf,
        exp: attributes.common.exp,
        exportable,
        release_policy: parsed.release_policy,
        tags,
        created: now,
        updated: now,
        managed: false,
    };
    vault.store_key(name, version.clone());
    let display = vault
        .find_key(name, None)
        .map(|(n, _)| n)
        .unwrap_or_else(|| name.to_string());
    json_ok(key_bundle(&display, &version, base))
}

pub(super) fn get(vault: &KeyVault, name: &str, version: Option<&str>, base: &str) -> Response {
    match vault.find_key(name, version) {
        Some((display, v)) => json_ok(key_bundle(&display, &v, base)),
        None => key_not_found(name, version),
    }
}

#[derive(Deserialize)]
struct SignBody {
    alg: Option<String>,
    value: Option<String>,
}

/// Decodes base64url with or without padding (what the SDKs send); `None` for anything else.
fn from_b64url(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()
}

pub(super) fn sign(
    vault: &KeyVault,
    name: &str,
    version: Option<&str>,
    body: &Bytes,
    base: &str,
) -> Response {
    let parsed: SignBody = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(e) => return bad_parameter(&format!("The request body is not valid JSON: {e}")),
    };
    let Some(alg) = parsed.alg else {
        return bad_parameter("The parameter 'alg' is required.");
    };
    let Some(digest) = parsed.value.as_deref().and_then(from_b64url) else {
        return bad_parameter("The parameter 'value' must be a base64url-encoded digest.");
    };
    let Some((display, v)) = vault.find_key(name, version) else {
        return key_not_found(name, version);
    };
    let forbidden = |message: &str, inner: &str| kv_error(403, "Forbidden", message, Some(inner));
    if !v.enabled {
        return forbidden(
            "Operation sign is not allowed on a disabled key.",
            "KeyDisabled",
        );
    }
    let now = chrono::Utc::now().timestamp();
    if v.nbf.is_some_and(|nbf| now < nbf) {
        return forbidden(
            "Operation sign is not allowed on a key that is not yet valid (nbf).",
            "KeyNotYetValid",
        );
    }
    if v.exp.is_some_and(|exp| now >= exp) {
        return forbidden(
            "Operation sign is not allowed on an expired key (exp).",
            "KeyExpired",
        );
    }
    if !v.key_ops.iter().any(|op| op == "sign") {
        return forbidden(
            "Operation sign is not permitted on this key.",
            "KeyOperationForbidden",
        );
    }
    let mut signature = match v.material.sign(&alg, &digest) {
        Ok(s) => s,
        Err(SignRefusal::Algorithm) => {
            return bad_parameter(&format!(
                "The algorithm '{alg}' is not valid for this key ({}).",
                v.kty
            ))
        }
        Err(SignRefusal::DigestLength(n)) => {
            return bad_parameter(&format!(
            "Invalid digest for algorithm '{alg}': a {n}-byte digest is expected, got {} bytes.",
            digest.len()
        ))
        }
    };
    if vault
        .tamper_signatures
        .load(std::sync::atomic::Ordering::SeqCst)
    {
        signature[0] ^= 0x01;
    }
    vault.record_signature(&signature, matches!(*v.material, Material::Ec(..)));
    json_ok(json!({
        "kid": format!("{base}/keys/{display}/{}", v.version),
        "value": b64url(&signature),
    }))
}

pub(super) fn release(vault: &KeyVault, name: &str, version: Option<&str>) -> Response {
    let Some((_, v)) = vault.find_key(name, version) else {
        return key_not_found(name, version);
    };
    if !v.exportable {
        return bad_parameter("Key release is not allowed: the key is not exportable.");
    }
    bad_parameter(
        "The target attestation token could not be validated: the test bed trusts no attestation service.",
    )
}
