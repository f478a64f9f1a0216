//! Key Vault certificates (issue #30), as far as a client that signs with a certificate's key
//! uses them:
//! - `GET /certificates/{name}`, `/certificates/{name}/` (latest, the SDKs' form),
//!   `/certificates/{name}/{version}` → `{id, kid, sid, x5t, cer, attributes, policy}`: `cer` is
//!   the **leaf only** (standard base64 DER), `x5t` its SHA-1 thumbprint (base64url), `kid` and
//!   `sid` the key and secret of the same name and version;
//! - `GET /certificates/{name}/policy` → the policy (`key_props.exportable`, `kty`, `key_size`,
//!   `crv`; `secret_props.contentType`; `x509_props`; `issuer`).
//!
//! A certificate is made in process ([`KeyVault::create_certificate`]), as Key Vault makes one
//! for a CA it does not integrate with (create → CSR → merge): the key pair is generated inside
//! the vault, the test CA signs the leaf for its public key, and the vault stores, under one
//! name and one version, the certificate, the key (`managed`, `sign`/`verify`, the
//! certificate's `nbf`/`exp`) and the secret (`managed`, its `kid`, `application/x-pem-file`).
//! The secret holds the certificate chain leaf first up to the root; with an exportable key
//! (the policy's `key_props.exportable`) the PKCS#8 private key comes first, as Key Vault puts
//! it; without, the secret is still readable and holds only the certificates ("If the policy
//! indicates that the key is non-exportable, then the private key isn't a part of the value
//! when it's retrieved as a secret", about-certificates; Ratify and notation-azure-kv read the
//! chain this way). A new [`KeyVault::create_certificate`] under the same name is a renewal: a
//! new version with a new key pair. PKCS#12 secrets and `POST /certificates/{name}/create` are
//! not emulated.

use std::sync::Arc;

use axum::response::Response;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::keys::{KeyKind, KeyVersion, Material};
use super::{json_ok, kv_error, KeyVault, SecretVersion};
use crate::pki::{pem_of, ExternalPublicKey, KeySpec, TestCa, Validity};
use crate::random_hex;

/// One version of a certificate.
#[derive(Clone, Debug)]
pub(crate) struct CertificateVersion {
    pub version: String,
    /// The leaf, DER.
    pub der: Vec<u8>,
    pub key: KeySpec,
    pub exportable: bool,
    pub subject: String,
    pub enabled: bool,
    pub nbf: i64,
    pub exp: i64,
    pub created: i64,
    pub updated: i64,
}

#[derive(Debug, Default)]
pub(crate) struct StoredCertificate {
    pub name: String,
    pub versions: Vec<CertificateVersion>,
}

/// How to make a certificate in the vault.
#[derive(Clone, Debug)]
pub struct CertificateOptions {
    /// The subject's CN (the certificate's name when `None`).
    pub common_name: Option<String>,
    pub key: KeySpec,
    /// The policy's `key_props.exportable`: whether the secret carries the private key.
    pub exportable: bool,
    pub validity: Validity,
}

impl Default for CertificateOptions {
    fn default() -> Self {
        Self {
            common_name: None,
            key: KeySpec::EcP256,
            exportable: false,
            validity: Validity::days(365),
        }
    }
}

/// What a test can know of a vault certificate: all public.
#[derive(Clone, Debug)]
pub struct VaultCertificate {
    pub name: String,
    /// The version shared by the certificate, its key and its secret.
    pub version: String,
    /// The leaf, DER.
    pub der: Vec<u8>,
    /// The chain as the secret holds it (leaf first, root last), PEM.
    pub chain_pem: String,
    pub serial_decimal: String,
    /// Lower-case hex without leading zeros (what Roles Anywhere names its sessions).
    pub serial_hex: String,
    pub common_name: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub key: KeySpec,
    pub exportable: bool,
}

impl KeyVault {
    /// Makes (or renews: a new version with a new key pair) certificate `name`: the key is
    /// generated in the vault and never leaves it (no accessor returns it; only the secret of
    /// an *exportable* certificate holds it, as Key Vault's does), `ca` issues the leaf (CN =
    /// `name`, digitalSignature, clientAuth, a random positive serial), and the certificate,
    /// its key and its secret are stored as Key Vault stores them.
    pub fn create_certificate(
        &self,
        name: &str,
        ca: &TestCa,
        key: KeySpec,
        exportable: bool,
        validity: Validity,
    ) -> anyhow::Result<VaultCertificate> {
        self.create_certificate_with(
            name,
            ca,
            CertificateOptions {
                common_name: None,
                key,
                exportable,
                validity,
            },
        )
    }

    /// [`KeyVault::create_certificate`] with every option.
    pub fn create_certificate_with(
        &self,
        name: &str,
        ca: &TestCa,
        options: CertificateOptions,
    ) -> anyhow::Result<VaultCertificate> {
        anyhow::ensure!(super::valid_name(name), "invalid certificate name {name:?}");
        let common_name = options.common_name.clone().unwrap_or_else(|| name.into());
        let material =
            Material::generate(KeyKind::from(options.key)).map_err(|e| anyhow::anyhow!("{e}"))?;
        let public = ExternalPublicKey {
            der: material.public_der(),
            spec: options.key,
        };
        let (der, serial) = ca.issue_for(&common_name, &public, options.validity)?;
        let chain: Vec<Vec<u8>> = std::iter::once(der.clone()).chain(ca.chain_der()).collect();
        let chain_pem: String = chain.iter().map(|d| pem_of(d)).collect();
        let mut secret_value = String::new();
        if options.exportable {
            secret_value.push_str(
                &pem::encode(&pem::Pem::new(
                    "PRIVATE KEY",
                    material.pkcs8_for_exportable_certificate(),
                ))
                .replace("\r\n", "\n"),
            );
        }
        secret_value.push_str(&chain_pem);

        let version = random_hex(16);
        let now = Utc::now().timestamp();
        let (nbf, exp) = (
            options.validity.not_before.timestamp(),
            options.validity.not_after.timestamp(),
        );
        let kty = if options.key.is_rsa() { "RSA" } else { "EC" };
        self.store_key(
            name,
            KeyVersion {
                version: version.clone(),
                material: Arc::new(material),
                kty: kty.into(),
                key_ops: vec!["sign".into(), "verify".into()],
                enabled: true,
                nbf: Some(nbf),
                exp: Some(exp),
                // Secure key release's flag, not the certificate policy's: a certificate's key
                // never leaves through `release`.
                exportable: false,
                release_policy: None,
                tags: None,
                created: now,
                updated: now,
                managed: true,
            },
        );
        self.push_secret_version(
            name,
            SecretVersion {
                version: version.clone(),
                value: secret_value,
                content_type: Some("application/x-pem-file".into()),
                tags: None,
                enabled: true,
                nbf: Some(nbf),
                exp: Some(exp),
                created: now,
                updated: now,
                managed: true,
            },
        );
        let subject = format!("CN={common_name}, O=stsbridge test bed");
        {
            let mut certs = self.certificates.lock().unwrap();
            let entry =
                certs
                    .entry(name.to_ascii_lowercase())
                    .or_insert_with(|| StoredCertificate {
                        name: name.to_string(),
                        versions: vec![],
                    });
            entry.versions.push(CertificateVersion {
                version: version.clone(),
                der: der.clone(),
                key: options.key,
                exportable: options.exportable,
                subject,
                enabled: true,
                nbf,
                exp,
                created: now,
                updated: now,
            });
        }
        Ok(VaultCertificate {
            name: name.into(),
            version,
            der,
            chain_pem,
            serial_decimal: crate::x509::to_decimal(&serial),
            serial_hex: crate::x509::Certificate::from_der(&chain[0])
                .map(|c| c.serial_hex())
                .map_err(|e| anyhow::anyhow!(e))?,
            common_name,
            not_before: options.validity.not_before,
            not_after: options.validity.not_after,
            key: options.key,
            exportable: options.exportable,
        })
    }

    /// Enables or disables a certificate version (`None`: the latest), as `PATCH
    /// /certificates/{name}/{version}` would; the key and secret of that version follow, as in
    /// Key Vault. Returns whether it exists.
    pub fn set_certificate_enabled(
        &self,
        name: &str,
        version: Option<&str>,
        enabled: bool,
    ) -> bool {
        let version = {
            let mut certs = self.certificates.lock().unwrap();
            let Some(cert) = certs.get_mut(&name.to_ascii_lowercase()) else {
                return false;
            };
            let found = match version {
                None => cert.versions.last_mut(),
                Some(v) => cert
                    .versions
                    .iter_mut()
                    .find(|x| x.version.eq_ignore_ascii_case(v)),
            };
            let Some(found) = found else { return false };
            found.enabled = enabled;
            found.updated = Utc::now().timestamp();
            found.version.clone()
        };
        self.set_key_attributes(name, Some(&version), Some(enabled), None, None);
        self.set_secret_enabled(name, &version, enabled);
        true
    }

    fn find_certificate(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Option<(String, CertificateVersion)> {
        let certs = self.certificates.lock().unwrap();
        let cert = certs.get(&name.to_ascii_lowercase())?;
        let found = match version {
            None => cert.versions.last(),
            Some(v) => cert
                .versions
                .iter()
                .find(|x| x.version.eq_ignore_ascii_case(v)),
        }?;
        Some((cert.name.clone(), found.clone()))
    }
}

fn certificate_not_found(name: &str, version: Option<&str>) -> Response {
    let what = match version {
        Some(v) => format!("(name/id) {name}/{v}"),
        None => format!("(name/id) {name}"),
    };
    kv_error(
        404,
        "CertificateNotFound",
        &format!("A certificate with {what} was not found in this key vault. If you recently deleted this certificate you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"),
        None,
    )
}

fn policy(name: &str, c: &CertificateVersion, base: &str) -> Value {
    let mut key_props = json!({
        "exportable": c.exportable,
        "kty": if c.key.is_rsa() { "RSA" } else { "EC" },
        "reuse_key": false,
    });
    match c.key.rsa_bits() {
        Some(bits) => key_props["key_size"] = json!(bits),
        None => {
            let (crv, size) = match c.key {
                KeySpec::EcP384 => ("P-384", 384),
                _ => ("P-256", 256),
            };
            key_props["crv"] = json!(crv);
            key_props["key_size"] = json!(size);
        }
    }
    let months = ((c.exp - c.nbf) / (30 * 86_400)).max(1);
    json!({
        "id": format!("{base}/certificates/{name}/policy"),
        "key_props": key_props,
        "secret_props": {"contentType": "application/x-pem-file"},
        "x509_props": {
            "subject": c.subject,
            "ekus": ["1.3.6.1.5.5.7.3.2"],
            "key_usage": ["digitalSignature"],
            "validity_months": months,
        },
        "lifetime_actions": [{"trigger": {"lifetime_percentage": 80}, "action": {"action_type": "EmailContacts"}}],
        "issuer": {"name": "Unknown"},
        "attributes": {"enabled": true, "created": c.created, "updated": c.updated},
    })
}

fn bundle(name: &str, c: &CertificateVersion, base: &str) -> Value {
    let thumbprint =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &c.der);
    json!({
        "id": format!("{base}/certificates/{name}/{}", c.version),
        "kid": format!("{base}/keys/{name}/{}", c.version),
        "sid": format!("{base}/secrets/{name}/{}", c.version),
        "x5t": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(thumbprint.as_ref()),
        "cer": base64::engine::general_purpose::STANDARD.encode(&c.der),
        "attributes": {
            "enabled": c.enabled,
            "nbf": c.nbf,
            "exp": c.exp,
            "created": c.created,
            "updated": c.updated,
            "recoveryLevel": "Recoverable+Purgeable",
            "recoverableDays": 90,
        },
        "policy": policy(name, c, base),
    })
}

pub(super) fn get(vault: &KeyVault, name: &str, version: Option<&str>, base: &str) -> Response {
    match vault.find_certificate(name, version) {
        Some((display, c)) => json_ok(bundle(&display, &c, base)),
        None => certificate_not_found(name, version),
    }
}

pub(super) fn get_policy(vault: &KeyVault, name: &str, base: &str) -> Response {
    match vault.find_certificate(name, None) {
        Some((display, c)) => json_ok(policy(&display, &c, base)),
        None => certificate_not_found(name, None),
    }
}
