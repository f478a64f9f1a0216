//! Test certificate authorities for IAM Roles Anywhere (issue #30): a root, optional
//! intermediates, and the leaves they issue — for a key held inside the Key Vault emulator
//! ([`crate::keyvault::KeyVault::create_certificate`], the private key never leaves it) or for a
//! throw-away key handed to an independent client as files ([`TestCa::issue`]).
//!
//! Made with rcgen (on aws-lc-rs, which can generate RSA keys). Every certificate is signed with
//! SHA-256 (ECDSA P-256 or RSA PKCS#1 v1.5): PyPI `iam-rolesanywhere-session` names its signing
//! algorithm after the *certificate's* hash (`AWS4-X509-RSA-SHA384` for a SHA-384 certificate),
//! which AWS does not accept. Serial numbers are 16 random bytes, positive, as CAs issue them
//! (RFC 5280 §4.1.2.2).

use chrono::{DateTime, Duration, Utc};
use rand::RngExt;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData, RsaKeySize, SerialNumber,
};

/// The kinds of key a test asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySpec {
    Rsa2048,
    Rsa3072,
    Rsa4096,
    EcP256,
    /// Accepted by Key Vault and AWS; stsbridge refuses it (only P-256 is signed for).
    EcP384,
}

impl KeySpec {
    pub fn is_rsa(self) -> bool {
        matches!(self, KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096)
    }

    pub fn rsa_bits(self) -> Option<usize> {
        match self {
            KeySpec::Rsa2048 => Some(2048),
            KeySpec::Rsa3072 => Some(3072),
            KeySpec::Rsa4096 => Some(4096),
            _ => None,
        }
    }

    /// The rcgen algorithm describing a public key of this kind in a certificate (its
    /// `SubjectPublicKeyInfo`); for a CA, also how it signs.
    pub(crate) fn rcgen_algorithm(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            KeySpec::EcP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeySpec::EcP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            _ => &rcgen::PKCS_RSA_SHA256,
        }
    }

    fn generate(self) -> anyhow::Result<KeyPair> {
        let alg = self.rcgen_algorithm();
        let size = match self {
            KeySpec::Rsa2048 => RsaKeySize::_2048,
            KeySpec::Rsa3072 => RsaKeySize::_3072,
            KeySpec::Rsa4096 => RsaKeySize::_4096,
            _ => return Ok(KeyPair::generate_for(alg)?),
        };
        Ok(KeyPair::generate_rsa_for(alg, size)?)
    }
}

/// When a certificate is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
}

impl Validity {
    /// From an hour ago (clock skew) for `days` days.
    pub fn days(days: i64) -> Self {
        let now = Utc::now();
        Self {
            not_before: now - Duration::hours(1),
            not_after: now + Duration::days(days),
        }
    }

    /// Expired yesterday (valid for the 30 days before).
    pub fn expired() -> Self {
        let now = Utc::now();
        Self {
            not_before: now - Duration::days(31),
            not_after: now - Duration::days(1),
        }
    }

    /// Valid from tomorrow.
    pub fn not_yet_valid() -> Self {
        let now = Utc::now();
        Self {
            not_before: now + Duration::days(1),
            not_after: now + Duration::days(30),
        }
    }
}

fn to_time(t: DateTime<Utc>) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp()).expect("a representable time")
}

/// A random positive serial of 16 bytes (no leading zero byte, high bit clear).
pub fn random_serial() -> Vec<u8> {
    let mut rng = rand::rng();
    let mut serial: Vec<u8> = (0..16).map(|_| rng.random()).collect();
    serial[0] = (serial[0] & 0x7f) | 0x10;
    serial
}

/// A certificate authority of the test bed's: its certificate, its key (which stays here) and
/// its issuers' certificates.
pub struct TestCa {
    pub common_name: String,
    /// This CA's certificate (DER).
    pub der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
    /// This CA's issuers, nearest first, the root last (empty for a root).
    parents: Vec<Vec<u8>>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa")
            .field("common_name", &self.common_name)
            .field("depth", &self.parents.len())
            .finish_non_exhaustive()
    }
}

/// A certificate issued with a throw-away key (for a client that reads files).
pub struct IssuedCertificate {
    pub der: Vec<u8>,
    pub cert_pem: String,
    /// The private key as PKCS#8 PEM. Secret: keep it out of test output.
    pub key_pem: String,
    pub serial_decimal: String,
}

impl std::fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCertificate")
            .field("serial_decimal", &self.serial_decimal)
            .field("key_pem", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

fn ca_params(
    cn: &str,
    validity: Validity,
    path_len: Option<u8>,
) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, cn);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "stsbridge test bed");
    params.is_ca = IsCa::Ca(match path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(SerialNumber::from(random_serial()));
    params.not_before = to_time(validity.not_before);
    params.not_after = to_time(validity.not_after);
    Ok(params)
}

impl TestCa {
    /// A self-signed root with an ECDSA P-256 key, valid for ten years.
    pub fn root(common_name: &str) -> anyhow::Result<Self> {
        Self::root_with(common_name, KeySpec::EcP256, Validity::days(3650))
    }

    /// A self-signed root with this key and validity (RSA roots sign with SHA-256, P-256 roots
    /// with ECDSA SHA-256; a P-384 root signs with SHA-384, which PySess turns into an
    /// algorithm AWS refuses).
    pub fn root_with(common_name: &str, key: KeySpec, validity: Validity) -> anyhow::Result<Self> {
        let key = key.generate()?;
        let params = ca_params(common_name, validity, None)?;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            common_name: common_name.into(),
            der: cert.der().to_vec(),
            issuer: Issuer::new(params, key),
            parents: vec![],
        })
    }

    /// An intermediate CA this CA issues (P-256, five years).
    pub fn intermediate(&self, common_name: &str) -> anyhow::Result<Self> {
        self.intermediate_with(common_name, KeySpec::EcP256, Validity::days(1825), None)
    }

    /// An intermediate with this key, validity and basicConstraints pathLenConstraint.
    pub fn intermediate_with(
        &self,
        common_name: &str,
        key: KeySpec,
        validity: Validity,
        path_len: Option<u8>,
    ) -> anyhow::Result<Self> {
        let key = key.generate()?;
        let params = ca_params(common_name, validity, path_len)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let mut parents = vec![self.der.clone()];
        parents.extend(self.parents.iter().cloned());
        Ok(Self {
            common_name: common_name.into(),
            der: cert.der().to_vec(),
            issuer: Issuer::new(params, key),
            parents,
        })
    }

    /// This CA's certificate as PEM (what a trust anchor's certificate bundle holds).
    pub fn pem(&self) -> String {
        pem_of(&self.der)
    }

    /// This CA and its issuers up to the root, nearest first.
    pub fn chain_der(&self) -> Vec<Vec<u8>> {
        std::iter::once(self.der.clone())
            .chain(self.parents.iter().cloned())
            .collect()
    }

    /// [`TestCa::chain_der`] as PEM.
    pub fn chain_pem(&self) -> String {
        self.chain_der().iter().map(|d| pem_of(d)).collect()
    }

    /// The root at the top of this CA's chain (itself for a root).
    pub fn root_der(&self) -> Vec<u8> {
        self.parents
            .last()
            .cloned()
            .unwrap_or_else(|| self.der.clone())
    }

    /// The intermediates between a leaf of this CA and its root: this CA and its issuers but the
    /// root (empty for a root) — what `X-Amz-X509-Chain` carries.
    pub fn intermediates_der(&self) -> Vec<Vec<u8>> {
        let mut chain = self.chain_der();
        chain.pop();
        chain
    }

    /// A leaf for a new throw-away key: `CN=common_name`, digitalSignature, clientAuth.
    pub fn issue(
        &self,
        common_name: &str,
        key: KeySpec,
        validity: Validity,
    ) -> anyhow::Result<IssuedCertificate> {
        let key_pair = key.generate()?;
        let (der, serial) = self.issue_for(common_name, &key_pair, validity)?;
        Ok(IssuedCertificate {
            cert_pem: pem_of(&der),
            der,
            key_pem: key_pair.serialize_pem(),
            serial_decimal: crate::x509::to_decimal(&serial),
        })
    }

    /// A leaf for `public_key` (a key held elsewhere): the DER and the serial.
    pub(crate) fn issue_for(
        &self,
        common_name: &str,
        public_key: &impl PublicKeyData,
        validity: Validity,
    ) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "stsbridge test bed");
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        let serial = random_serial();
        params.serial_number = Some(SerialNumber::from(serial.clone()));
        params.not_before = to_time(validity.not_before);
        params.not_after = to_time(validity.not_after);
        let cert = params.signed_by(public_key, &self.issuer)?;
        Ok((cert.der().to_vec(), serial))
    }
}

/// One DER certificate as a PEM block.
pub fn pem_of(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec())).replace("\r\n", "\n")
}

/// A public key held elsewhere (the vault's), described to rcgen for a certificate.
pub(crate) struct ExternalPublicKey {
    /// PKCS#1 `RSAPublicKey` DER, or the uncompressed EC point.
    pub der: Vec<u8>,
    pub spec: KeySpec,
}

impl PublicKeyData for ExternalPublicKey {
    fn der_bytes(&self) -> &[u8] {
        &self.der
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.spec.rcgen_algorithm()
    }
}
