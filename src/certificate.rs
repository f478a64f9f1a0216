//! X.509 certificates as Roles Anywhere mode reads them (issue #30; pure, no I/O): what a leaf
//! says (serial, subject, issuer, validity, key) and how its key signs ([`KeyAlgorithm`], named
//! as both AWS and Key Vault name it), and the certificates of a PEM bundle. Parsing is
//! `x509-parser`'s (rusticata's, the parser rustls' and webpki's neighbours use); nothing here
//! verifies a chain — AWS does, against the trust anchor.

use chrono::{DateTime, Utc};
use x509_parser::prelude::{FromDer, X509Certificate};

/// How the certificate's key signs: the algorithm line AWS reads, and Key Vault's name for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// RSA (2048 bits or more), PKCS#1 v1.5 with SHA-256: Key Vault `RS256`.
    Rsa,
    /// ECDSA on P-256 with SHA-256: Key Vault `ES256`.
    EcdsaP256,
}

impl KeyAlgorithm {
    pub fn aws_name(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa => "AWS4-X509-RSA-SHA256",
            KeyAlgorithm::EcdsaP256 => "AWS4-X509-ECDSA-SHA256",
        }
    }

    pub fn key_vault_name(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa => "RS256",
            KeyAlgorithm::EcdsaP256 => "ES256",
        }
    }
}

/// What `check` and the signer need from a leaf certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateInfo {
    /// Decimal, as Roles Anywhere puts it in the credential scope.
    pub serial: String,
    pub subject: String,
    pub issuer: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// How its key signs, when Roles Anywhere accepts it (RSA, ECDSA P-256); else what it is.
    pub key: Result<KeyAlgorithm, String>,
}

/// Why a certificate could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not an X.509 certificate: {0}")]
pub struct NotACertificate(String);

const RSA: &str = "1.2.840.113549.1.1.1";
const EC: &str = "1.2.840.10045.2.1";
const P256: &str = "1.2.840.10045.3.1.7";

impl CertificateInfo {
    pub fn from_der(der: &[u8]) -> Result<Self, NotACertificate> {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|e| NotACertificate(e.to_string()))?;
        if !rest.is_empty() {
            return Err(NotACertificate(format!(
                "{} bytes after the certificate",
                rest.len()
            )));
        }
        let time = |t: x509_parser::time::ASN1Time| {
            DateTime::from_timestamp(t.timestamp(), 0).unwrap_or_default()
        };
        let spki = cert.public_key();
        let algorithm = spki.algorithm.algorithm.to_id_string();
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .map(|o| o.to_id_string());
        let key = match (algorithm.as_str(), curve.as_deref()) {
            (RSA, _) => Ok(KeyAlgorithm::Rsa),
            (EC, Some(P256)) => Ok(KeyAlgorithm::EcdsaP256),
            (EC, Some(other)) => Err(format!(
                "an EC key on curve {} (Roles Anywhere with Key Vault signs with RSA or P-256 keys)",
                curve_name(other)
            )),
            (other, _) => Err(format!(
                "a key of algorithm {other} (Roles Anywhere with Key Vault signs with RSA or P-256 keys)"
            )),
        };
        Ok(Self {
            serial: cert.tbs_certificate.serial.to_string(),
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            not_before: time(cert.validity().not_before),
            not_after: time(cert.validity().not_after),
            key,
        })
    }

    /// Whole days until it expires (negative once it has).
    pub fn days_left(&self, now: DateTime<Utc>) -> i64 {
        self.not_after.signed_duration_since(now).num_days()
    }
}

fn curve_name(oid: &str) -> &str {
    match oid {
        "1.3.132.0.34" => "P-384",
        "1.3.132.0.35" => "P-521",
        "1.3.132.0.10" => "secp256k1",
        other => other,
    }
}

/// The DER of every `CERTIFICATE` block of a PEM text, in order. Other blocks (a private key
/// when the certificate was exportable) are skipped unread.
pub fn pem_certificates(text: &str) -> Result<Vec<Vec<u8>>, NotACertificate> {
    use base64::Engine;
    let mut out = vec![];
    let mut block: Option<String> = None;
    for line in text.lines().map(str::trim) {
        match (&mut block, line) {
            (None, "-----BEGIN CERTIFICATE-----") => block = Some(String::new()),
            (Some(b64), "-----END CERTIFICATE-----") => {
                let der = base64::engine::general_purpose::STANDARD
                    .decode(b64.as_bytes())
                    .map_err(|e| NotACertificate(format!("a PEM block is not base64: {e}")))?;
                out.push(der);
                block = None;
            }
            (Some(b64), l) => b64.push_str(l),
            (None, _) => {}
        }
    }
    if block.is_some() {
        return Err(NotACertificate("a PEM block has no END line".into()));
    }
    Ok(out)
}
