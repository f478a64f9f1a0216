//! X.509 as the Roles Anywhere verifier reads it: a small DER reader (on `yasna`, already built
//! for rcgen) and the checks a relying party makes — each certificate's signature with its
//! issuer's public key, names, validity at a given time, CA basic constraints and key usage, path
//! length — plus the decimal serial Roles Anywhere puts in its credential scope.
//!
//! Pure: no clock (every check takes `now`), no I/O. Hand-written rather than `x509-parser`
//! because that crate would switch on features of `num-traits` the app's build does not have (a
//! rebuild of chrono and everything above it on every switch between `cargo build` and `cargo
//! test`), and because the verifier wants its own failure reasons, not a library's. Signatures are
//! checked with aws-lc-rs (`UnparsedPublicKey`), which hashes the message itself.
//!
//! What is read: version, serial, signature algorithm, issuer and subject (raw DER for
//! comparison, and their attributes as text), validity, the subject public key (RSA, or EC on
//! P-256/P-384/P-521), and the extensions basicConstraints, keyUsage and subjectAltName (DNS and
//! URI names). A critical extension it does not know makes the certificate unusable, as RFC 5280
//! §4.2 requires.

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use chrono::{DateTime, Utc};
use yasna::models::ObjectIdentifier;
use yasna::{ASN1Error, ASN1ErrorKind, ASN1Result, BERReader, Tag};

/// A certificate's public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKey {
    /// The PKCS#1 `RSAPublicKey` DER and the modulus size in bits.
    Rsa { der: Vec<u8>, bits: usize },
    /// The uncompressed SEC1 point.
    Ec { curve: Curve, point: Vec<u8> },
    /// Any other algorithm (its OID), which nothing here can verify with.
    Other(String),
}

/// The elliptic curves the reader knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    /// The JOSE name (`crv`), as Key Vault writes it.
    pub fn jose_name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        }
    }
}

/// How a certificate is signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    RsaPkcs1(Hash),
    Ecdsa(Hash),
    /// SHA-1, MD5, RSA-PSS … (refused).
    Unsupported,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

/// One parsed certificate.
#[derive(Clone, Debug)]
pub struct Certificate {
    pub der: Vec<u8>,
    tbs: Vec<u8>,
    pub signature_algorithm: SignatureAlgorithm,
    signature: Vec<u8>,
    /// Big-endian, as encoded (a leading 0x00 kept out).
    pub serial: Vec<u8>,
    issuer_raw: Vec<u8>,
    subject_raw: Vec<u8>,
    /// Attributes in order, e.g. `[("CN", "workload")]`.
    pub issuer: Vec<(String, String)>,
    pub subject: Vec<(String, String)>,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub public_key: PublicKey,
    /// `Some((is_ca, path_len))` when basicConstraints is present.
    pub basic_constraints: Option<(bool, Option<u64>)>,
    /// The keyUsage bits (bit 0 = digitalSignature is `0x8000`), when present.
    pub key_usage: Option<u16>,
    pub san_dns: Vec<String>,
    pub san_uri: Vec<String>,
    unknown_critical: Vec<String>,
}

pub const KU_DIGITAL_SIGNATURE: u16 = 0x8000;
pub const KU_KEY_CERT_SIGN: u16 = 0x0400;

impl Certificate {
    /// Parses one DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, String> {
        parse_certificate(der).map_err(|e| format!("not an X.509 certificate: {e}"))
    }

    /// Every certificate in a PEM text (`CERTIFICATE` blocks, others ignored), in order.
    pub fn from_pem_bundle(text: &str) -> Result<Vec<Self>, String> {
        let blocks = pem::parse_many(text).map_err(|e| format!("not PEM: {e}"))?;
        blocks
            .iter()
            .filter(|b| b.tag() == "CERTIFICATE")
            .map(|b| Self::from_der(b.contents()))
            .collect()
    }

    /// The serial as a decimal number (what Roles Anywhere's credential scope holds).
    pub fn serial_decimal(&self) -> String {
        to_decimal(&self.serial)
    }

    /// The serial as lower-case hex without leading zeros.
    pub fn serial_hex(&self) -> String {
        let hex: String = self.serial.iter().map(|b| format!("{b:02x}")).collect();
        let trimmed = hex.trim_start_matches('0');
        if trimmed.is_empty() {
            "0".into()
        } else {
            trimmed.into()
        }
    }

    /// The subject's first common name.
    pub fn subject_cn(&self) -> Option<&str> {
        attribute(&self.subject, "CN")
    }

    pub fn issuer_cn(&self) -> Option<&str> {
        attribute(&self.issuer, "CN")
    }

    /// `CN=a,O=b` (RFC 4514 order is reversed; this is the order in the certificate).
    pub fn subject_text(&self) -> String {
        name_text(&self.subject)
    }

    pub fn issuer_text(&self) -> String {
        name_text(&self.issuer)
    }

    pub fn is_self_issued(&self) -> bool {
        self.issuer_raw == self.subject_raw
    }

    pub fn is_ca(&self) -> bool {
        matches!(self.basic_constraints, Some((true, _)))
    }

    /// Whether `now` is within notBefore..=notAfter.
    pub fn valid_at(&self, now: DateTime<Utc>) -> bool {
        self.not_before <= now && now <= self.not_after
    }

    /// Whether `issuer` signed this certificate: names match and the signature verifies with
    /// the issuer's public key.
    pub fn is_signed_by(&self, issuer: &Certificate) -> bool {
        self.issuer_raw == issuer.subject_raw
            && verify(
                &issuer.public_key,
                self.signature_algorithm,
                &self.tbs,
                &self.signature,
            )
    }

    /// Critical extensions this reader does not know (their OIDs).
    pub fn unknown_critical_extensions(&self) -> &[String] {
        &self.unknown_critical
    }
}

fn attribute<'a>(name: &'a [(String, String)], key: &str) -> Option<&'a str> {
    name.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn name_text(name: &[(String, String)]) -> String {
    name.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Verifies `signature` over `message` with `key` for a certificate signature algorithm.
fn verify(key: &PublicKey, alg: SignatureAlgorithm, message: &[u8], signature: &[u8]) -> bool {
    let algorithm: &'static dyn VerificationAlgorithm = match (key, alg) {
        (PublicKey::Rsa { .. }, SignatureAlgorithm::RsaPkcs1(h)) => match h {
            Hash::Sha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Hash::Sha384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            Hash::Sha512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        },
        (PublicKey::Ec { curve, .. }, SignatureAlgorithm::Ecdsa(h)) => match (curve, h) {
            (Curve::P256, Hash::Sha256) => &signature::ECDSA_P256_SHA256_ASN1,
            (Curve::P256, Hash::Sha384) => &signature::ECDSA_P256_SHA384_ASN1,
            (Curve::P256, Hash::Sha512) => &signature::ECDSA_P256_SHA512_ASN1,
            (Curve::P384, Hash::Sha256) => &signature::ECDSA_P384_SHA256_ASN1,
            (Curve::P384, Hash::Sha384) => &signature::ECDSA_P384_SHA384_ASN1,
            (Curve::P384, Hash::Sha512) => &signature::ECDSA_P384_SHA512_ASN1,
            (Curve::P521, Hash::Sha256) => &signature::ECDSA_P521_SHA256_ASN1,
            (Curve::P521, Hash::Sha384) => &signature::ECDSA_P521_SHA384_ASN1,
            (Curve::P521, Hash::Sha512) => &signature::ECDSA_P521_SHA512_ASN1,
        },
        _ => return false,
    };
    verify_with(algorithm, key, message, signature)
}

/// Verifies with an explicit aws-lc-rs algorithm and this key's bytes.
pub fn verify_with(
    algorithm: &'static dyn VerificationAlgorithm,
    key: &PublicKey,
    message: &[u8],
    signature: &[u8],
) -> bool {
    let bytes = match key {
        PublicKey::Rsa { der, .. } => der.as_slice(),
        PublicKey::Ec { point, .. } => point.as_slice(),
        PublicKey::Other(_) => return false,
    };
    UnparsedPublicKey::new(algorithm, bytes)
        .verify(message, signature)
        .is_ok()
}

/// Why a certificate path could not be built or used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainError {
    /// No path from the leaf to a trust anchor (by names, signatures and CA constraints).
    Untrusted(String),
    /// A path exists, but this certificate (its subject) is outside its validity at `now`.
    OutsideValidity { subject: String, expired: bool },
}

/// The longest path accepted: the leaf, up to this many intermediates, and the anchor.
pub const MAX_INTERMEDIATES: usize = 5;

/// Builds a path from `leaf` through `intermediates` (in any order; extra, unused and duplicate
/// entries, the leaf itself or an anchor among them, are ignored) to one of `anchors`, checking
/// signatures, names, the CA flag and keyCertSign of every issuer, path lengths and unknown
/// critical extensions; then every certificate on the path at `now`. Returns the path, leaf
/// first, anchor last.
pub fn verify_chain<'a>(
    leaf: &'a Certificate,
    intermediates: &'a [Certificate],
    anchors: &'a [Certificate],
    now: DateTime<Utc>,
) -> Result<Vec<&'a Certificate>, ChainError> {
    if let Some(oid) = leaf.unknown_critical.first() {
        return Err(ChainError::Untrusted(format!(
            "the leaf has an unknown critical extension {oid}"
        )));
    }
    if leaf
        .key_usage
        .is_some_and(|ku| ku & KU_DIGITAL_SIGNATURE == 0)
    {
        return Err(ChainError::Untrusted(
            "the leaf's key usage does not include digitalSignature".into(),
        ));
    }
    let mut path = vec![leaf];
    if !extend(&mut path, intermediates, anchors) {
        return Err(ChainError::Untrusted(format!(
            "no path from '{}' (issuer '{}') to a trust anchor",
            leaf.subject_text(),
            leaf.issuer_text()
        )));
    }
    for cert in &path {
        if !cert.valid_at(now) {
            return Err(ChainError::OutsideValidity {
                subject: cert.subject_text(),
                expired: now > cert.not_after,
            });
        }
    }
    Ok(path)
}

/// Whether `issuer` may issue the next certificate down a path that already has
/// `intermediates_below` intermediate CAs under it.
fn can_issue(issuer: &Certificate, intermediates_below: usize) -> bool {
    let Some((true, path_len)) = issuer.basic_constraints else {
        return false;
    };
    if issuer
        .key_usage
        .is_some_and(|ku| ku & KU_KEY_CERT_SIGN == 0)
    {
        return false;
    }
    if !issuer.unknown_critical.is_empty() {
        return false;
    }
    path_len.is_none_or(|n| intermediates_below as u64 <= n)
}

/// Depth-first: extends `path` (leaf first) to an anchor.
fn extend<'a>(
    path: &mut Vec<&'a Certificate>,
    intermediates: &'a [Certificate],
    anchors: &'a [Certificate],
) -> bool {
    let last = *path.last().expect("the path starts with the leaf");
    let below = path.len() - 1;
    for anchor in anchors {
        if last.is_signed_by(anchor) && can_issue(anchor, below) {
            path.push(anchor);
            return true;
        }
    }
    if below >= MAX_INTERMEDIATES {
        return false;
    }
    for candidate in intermediates {
        if path.iter().any(|c| c.der == candidate.der) {
            continue;
        }
        if last.is_signed_by(candidate) && can_issue(candidate, below) {
            path.push(candidate);
            if extend(path, intermediates, anchors) {
                return true;
            }
            path.pop();
        }
    }
    false
}

/// Big-endian unsigned bytes as a decimal string.
pub fn to_decimal(bytes: &[u8]) -> String {
    let mut digits: Vec<u8> = Vec::new(); // little-endian base 10
    for &byte in bytes {
        // digits = digits * 256 + byte
        let mut carry = byte as u32;
        for d in digits.iter_mut() {
            let v = *d as u32 * 256 + carry;
            *d = (v % 10) as u8;
            carry = v / 10;
        }
        while carry > 0 {
            digits.push((carry % 10) as u8);
            carry /= 10;
        }
    }
    if digits.is_empty() {
        return "0".into();
    }
    digits.iter().rev().map(|d| (b'0' + d) as char).collect()
}

/// A raw `r‖s` ECDSA signature (Key Vault's, JOSE's) as the DER `SEQUENCE { INTEGER r, INTEGER
/// s }` X.509 and AWS use; `None` for an odd length.
pub fn ecdsa_fixed_to_der(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return None;
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    // yasna drops leading zeros and adds the 0x00 a positive INTEGER with its high bit set needs.
    Some(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_bigint_bytes(r, true);
            w.next().write_bigint_bytes(s, true);
        })
    }))
}

// --- the DER reader ---

const OID_RSA: &[u64] = &[1, 2, 840, 113549, 1, 1, 1];
const OID_EC: &[u64] = &[1, 2, 840, 10045, 2, 1];
const OID_P256: &[u64] = &[1, 2, 840, 10045, 3, 1, 7];
const OID_P384: &[u64] = &[1, 3, 132, 0, 34];
const OID_P521: &[u64] = &[1, 3, 132, 0, 35];
const OID_BASIC_CONSTRAINTS: &[u64] = &[2, 5, 29, 19];
const OID_KEY_USAGE: &[u64] = &[2, 5, 29, 15];
const OID_SAN: &[u64] = &[2, 5, 29, 17];
/// Extensions a relying party may ignore when critical because nothing here depends on them:
/// extKeyUsage, subject/authority key identifiers, certificate policies.
const KNOWN_EXTENSIONS: &[&[u64]] = &[
    &[2, 5, 29, 37],
    &[2, 5, 29, 14],
    &[2, 5, 29, 35],
    &[2, 5, 29, 32],
];

fn invalid() -> ASN1Error {
    ASN1Error::new(ASN1ErrorKind::Invalid)
}

fn oid_text(oid: &ObjectIdentifier) -> String {
    oid.components()
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// The elements of a SEQUENCE, each as its raw DER.
fn elements(reader: BERReader<'_, '_>) -> ASN1Result<Vec<Vec<u8>>> {
    reader.read_sequence(|seq| {
        let mut out = vec![];
        while let Some(e) = seq.read_optional(|r| r.read_der())? {
            out.push(e);
        }
        Ok(out)
    })
}

fn parse_certificate(der: &[u8]) -> ASN1Result<Certificate> {
    let (tbs, sig_alg, signature) = yasna::parse_der(der, |r| {
        r.read_sequence(|seq| {
            let tbs = seq.next().read_der()?;
            let alg = seq.next().read_der()?;
            let (sig, bits) = seq.next().read_bitvec_bytes()?;
            if bits % 8 != 0 {
                return Err(invalid());
            }
            Ok((tbs, alg, sig))
        })
    })?;
    let outer_alg = signature_algorithm(&sig_alg)?;
    let parts = yasna::parse_der(&tbs, elements)?;
    let mut parts = parts.into_iter().peekable();
    if parts.peek().is_some_and(|p| p.first() == Some(&0xa0)) {
        parts.next(); // version
    }
    let mut next = || parts.next().ok_or_else(invalid);
    let (mut serial, positive) = yasna::parse_der(&next()?, |r| r.read_bigint_bytes())?;
    if !positive {
        return Err(invalid());
    }
    while serial.len() > 1 && serial[0] == 0 {
        serial.remove(0);
    }
    let inner_alg = signature_algorithm(&next()?)?;
    if inner_alg != outer_alg {
        return Err(invalid());
    }
    let issuer_raw = next()?;
    let validity = next()?;
    let subject_raw = next()?;
    let spki = next()?;
    let mut cert = Certificate {
        der: der.to_vec(),
        tbs: tbs.clone(),
        signature_algorithm: outer_alg,
        signature,
        serial,
        issuer: parse_name(&issuer_raw)?,
        subject: parse_name(&subject_raw)?,
        issuer_raw,
        subject_raw,
        not_before: DateTime::<Utc>::MIN_UTC,
        not_after: DateTime::<Utc>::MIN_UTC,
        public_key: parse_spki(&spki)?,
        basic_constraints: None,
        key_usage: None,
        san_dns: vec![],
        san_uri: vec![],
        unknown_critical: vec![],
    };
    let (not_before, not_after) = yasna::parse_der(&validity, |r| {
        r.read_sequence(|seq| Ok((read_time(seq.next())?, read_time(seq.next())?)))
    })?;
    cert.not_before = not_before;
    cert.not_after = not_after;
    for part in parts {
        if part.first() == Some(&0xa3) {
            parse_extensions(&part, &mut cert)?;
        }
    }
    Ok(cert)
}

fn read_time(r: BERReader<'_, '_>) -> ASN1Result<DateTime<Utc>> {
    let tag = r.lookahead_tag()?;
    let t = if tag == yasna::tags::TAG_UTCTIME {
        *r.read_utctime()?.datetime()
    } else {
        *r.read_generalized_time()?.datetime()
    };
    DateTime::from_timestamp(t.unix_timestamp(), 0).ok_or_else(invalid)
}

fn signature_algorithm(der: &[u8]) -> ASN1Result<SignatureAlgorithm> {
    let oid = yasna::parse_der(der, |r| {
        r.read_sequence(|seq| {
            let oid = seq.next().read_oid()?;
            // NULL parameters (RSA) or none (ECDSA).
            while seq.read_optional(|r| r.read_der())?.is_some() {}
            Ok(oid)
        })
    })?;
    Ok(match oid.components().as_slice() {
        [1, 2, 840, 113549, 1, 1, 11] => SignatureAlgorithm::RsaPkcs1(Hash::Sha256),
        [1, 2, 840, 113549, 1, 1, 12] => SignatureAlgorithm::RsaPkcs1(Hash::Sha384),
        [1, 2, 840, 113549, 1, 1, 13] => SignatureAlgorithm::RsaPkcs1(Hash::Sha512),
        [1, 2, 840, 10045, 4, 3, 2] => SignatureAlgorithm::Ecdsa(Hash::Sha256),
        [1, 2, 840, 10045, 4, 3, 3] => SignatureAlgorithm::Ecdsa(Hash::Sha384),
        [1, 2, 840, 10045, 4, 3, 4] => SignatureAlgorithm::Ecdsa(Hash::Sha512),
        _ => SignatureAlgorithm::Unsupported,
    })
}

fn parse_spki(der: &[u8]) -> ASN1Result<PublicKey> {
    yasna::parse_der(der, |r| {
        r.read_sequence(|seq| {
            let (alg, param) = seq.next().read_sequence(|alg| {
                let oid = alg.next().read_oid()?;
                let param = alg.read_optional(|r| r.read_oid())?;
                // RSA's NULL
                while alg.read_optional(|r| r.read_der())?.is_some() {}
                Ok((oid, param))
            })?;
            let (key, bits) = seq.next().read_bitvec_bytes()?;
            if bits % 8 != 0 {
                return Err(invalid());
            }
            Ok(match alg.components().as_slice() {
                a if a == OID_RSA => {
                    let modulus = yasna::parse_der(&key, |r| {
                        r.read_sequence(|s| {
                            let (n, _) = s.next().read_bigint_bytes()?;
                            s.next().read_bigint_bytes()?;
                            Ok(n)
                        })
                    })?;
                    let significant = modulus.iter().skip_while(|b| **b == 0).count();
                    let bits = significant * 8
                        - modulus
                            .iter()
                            .find(|b| **b != 0)
                            .map_or(0, |b| b.leading_zeros() as usize);
                    PublicKey::Rsa { der: key, bits }
                }
                a if a == OID_EC => {
                    let curve = match param.as_ref().map(|p| p.components().as_slice()) {
                        Some(p) if p == OID_P256 => Curve::P256,
                        Some(p) if p == OID_P384 => Curve::P384,
                        Some(p) if p == OID_P521 => Curve::P521,
                        other => {
                            return Ok(PublicKey::Other(format!(
                                "EC {}",
                                other.map_or("?".into(), |p| p
                                    .iter()
                                    .map(u64::to_string)
                                    .collect::<Vec<_>>()
                                    .join("."))
                            )))
                        }
                    };
                    PublicKey::Ec { curve, point: key }
                }
                _ => PublicKey::Other(oid_text(&alg)),
            })
        })
    })
}

fn attribute_name(oid: &ObjectIdentifier) -> String {
    match oid.components().as_slice() {
        [2, 5, 4, 3] => "CN".into(),
        [2, 5, 4, 5] => "SERIALNUMBER".into(),
        [2, 5, 4, 6] => "C".into(),
        [2, 5, 4, 7] => "L".into(),
        [2, 5, 4, 8] => "ST".into(),
        [2, 5, 4, 10] => "O".into(),
        [2, 5, 4, 11] => "OU".into(),
        [0, 9, 2342, 19200300, 100, 1, 25] => "DC".into(),
        [0, 9, 2342, 19200300, 100, 1, 1] => "UID".into(),
        [1, 2, 840, 113549, 1, 9, 1] => "emailAddress".into(),
        _ => oid_text(oid),
    }
}

fn parse_name(der: &[u8]) -> ASN1Result<Vec<(String, String)>> {
    let mut out = vec![];
    yasna::parse_der(der, |r| {
        r.read_sequence_of(|rdn| {
            rdn.read_set_of(|atv| {
                atv.read_sequence(|seq| {
                    let oid = seq.next().read_oid()?;
                    let value = seq.next().read_tagged_der()?;
                    let text = match value.tag().tag_number {
                        // BMPString: UTF-16BE.
                        30 => {
                            let units: Vec<u16> = value
                                .value()
                                .chunks(2)
                                .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                                .collect();
                            String::from_utf16_lossy(&units)
                        }
                        _ => String::from_utf8_lossy(value.value()).into_owned(),
                    };
                    out.push((attribute_name(&oid), text));
                    Ok(())
                })
            })
        })
    })?;
    Ok(out)
}

fn parse_extensions(der: &[u8], cert: &mut Certificate) -> ASN1Result<()> {
    let extensions = yasna::parse_der(der, |r| r.read_tagged(Tag::context(3), elements))?;
    for ext in extensions {
        let (oid, critical, value) = yasna::parse_der(&ext, |r| {
            r.read_sequence(|seq| {
                let oid = seq.next().read_oid()?;
                let critical = seq.read_optional(|r| r.read_bool())?.unwrap_or(false);
                let value = seq.next().read_bytes()?;
                Ok((oid, critical, value))
            })
        })?;
        match oid.components().as_slice() {
            o if o == OID_BASIC_CONSTRAINTS => {
                cert.basic_constraints = Some(yasna::parse_der(&value, |r| {
                    r.read_sequence(|seq| {
                        let ca = seq.read_optional(|r| r.read_bool())?.unwrap_or(false);
                        let len = seq.read_optional(|r| r.read_u64())?;
                        Ok((ca, len))
                    })
                })?);
            }
            o if o == OID_KEY_USAGE => {
                let (bits, _) = yasna::parse_der(&value, |r| r.read_bitvec_bytes())?;
                let hi = *bits.first().unwrap_or(&0) as u16;
                let lo = *bits.get(1).unwrap_or(&0) as u16;
                cert.key_usage = Some(hi << 8 | lo);
            }
            o if o == OID_SAN => {
                let names =
                    yasna::parse_der(&value, |r| r.collect_sequence_of(|r| r.read_tagged_der()))?;
                for name in names {
                    let text = String::from_utf8_lossy(name.value()).into_owned();
                    match name.tag().tag_number {
                        2 => cert.san_dns.push(text),
                        6 => cert.san_uri.push(text),
                        _ => {}
                    }
                }
            }
            o if KNOWN_EXTENSIONS.contains(&o) => {}
            _ if critical => cert.unknown_critical.push(oid_text(&oid)),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_convert_to_decimal_as_roles_anywhere_writes_them() {
        // The research's worked example (PySess): 0x0123456789ABCDEF0123.
        assert_eq!(
            to_decimal(&[0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23]),
            "5373003642731685151011"
        );
        // The GoHelper wire dump: Credential=21/… for serial 0x15.
        assert_eq!(to_decimal(&[0x15]), "21");
        assert_eq!(to_decimal(&[0x00]), "0");
        assert_eq!(to_decimal(&[0xff, 0xff, 0xff, 0xff]), u32::MAX.to_string());
    }

    use crate::pki::{KeySpec, TestCa, Validity};

    fn cert(der: &[u8]) -> Certificate {
        Certificate::from_der(der).unwrap()
    }

    #[test]
    fn a_leaf_chains_through_the_intermediates_sent_to_the_anchor() {
        let root = TestCa::root("root").unwrap();
        let issuing = root.intermediate("issuing").unwrap();
        let leaf = cert(
            &issuing
                .issue("workload", KeySpec::EcP256, Validity::days(1))
                .unwrap()
                .der,
        );
        let anchors = [cert(&root.der)];
        let now = Utc::now();

        let chain = [cert(&issuing.der)];
        let path = verify_chain(&leaf, &chain, &anchors, now).unwrap();
        assert_eq!(path.len(), 3);
        // Order and extras do not matter: the leaf itself and the root may be sent along.
        let sent = [cert(&root.der), leaf.clone(), cert(&issuing.der)];
        assert!(verify_chain(&leaf, &sent, &anchors, now).is_ok());
        // An anchor holding the intermediate needs no chain.
        assert!(verify_chain(&leaf, &[], &[cert(&issuing.der)], now).is_ok());
        // Without the intermediate there is no path.
        assert!(matches!(
            verify_chain(&leaf, &[], &anchors, now),
            Err(ChainError::Untrusted(_))
        ));
    }

    #[test]
    fn another_ca_s_leaf_or_a_forged_signature_does_not_chain() {
        let root = TestCa::root("root").unwrap();
        let other = TestCa::root("root").unwrap(); // same name, other key
        let leaf = cert(
            &other
                .issue("workload", KeySpec::Rsa2048, Validity::days(1))
                .unwrap()
                .der,
        );
        assert!(matches!(
            verify_chain(&leaf, &[], &[cert(&root.der)], Utc::now()),
            Err(ChainError::Untrusted(_))
        ));
        let mut der = root
            .issue("workload", KeySpec::EcP256, Validity::days(1))
            .unwrap()
            .der;
        let last = der.len() - 1;
        der[last] ^= 0x01;
        let forged = cert(&der);
        assert!(matches!(
            verify_chain(&forged, &[], &[cert(&root.der)], Utc::now()),
            Err(ChainError::Untrusted(_))
        ));
    }

    #[test]
    fn every_certificate_on_the_path_must_be_valid_now() {
        let root = TestCa::root("root").unwrap();
        let expired = cert(
            &root
                .issue("old", KeySpec::EcP256, Validity::expired())
                .unwrap()
                .der,
        );
        assert_eq!(
            verify_chain(&expired, &[], &[cert(&root.der)], Utc::now()).unwrap_err(),
            ChainError::OutsideValidity {
                subject: expired.subject_text(),
                expired: true
            }
        );
        let early = cert(
            &root
                .issue("early", KeySpec::EcP256, Validity::not_yet_valid())
                .unwrap()
                .der,
        );
        assert!(matches!(
            verify_chain(&early, &[], &[cert(&root.der)], Utc::now()),
            Err(ChainError::OutsideValidity { expired: false, .. })
        ));
        let stale = root
            .intermediate_with("stale issuing", KeySpec::EcP256, Validity::expired(), None)
            .unwrap();
        let leaf = cert(
            &stale
                .issue("workload", KeySpec::EcP256, Validity::days(1))
                .unwrap()
                .der,
        );
        assert!(matches!(
            verify_chain(&leaf, &[cert(&stale.der)], &[cert(&root.der)], Utc::now()),
            Err(ChainError::OutsideValidity { subject, .. }) if subject.contains("stale issuing")
        ));
    }

    #[test]
    fn a_path_length_constraint_is_enforced() {
        let root = TestCa::root("root").unwrap();
        let first = root
            .intermediate_with("first", KeySpec::EcP256, Validity::days(10), Some(0))
            .unwrap();
        let second = first.intermediate("second").unwrap();
        let leaf = cert(
            &second
                .issue("workload", KeySpec::EcP256, Validity::days(1))
                .unwrap()
                .der,
        );
        let chain = [cert(&second.der), cert(&first.der)];
        assert!(matches!(
            verify_chain(&leaf, &chain, &[cert(&root.der)], Utc::now()),
            Err(ChainError::Untrusted(_))
        ));
        let direct = cert(
            &first
                .issue("workload", KeySpec::EcP256, Validity::days(1))
                .unwrap()
                .der,
        );
        assert!(verify_chain(&direct, &[cert(&first.der)], &[cert(&root.der)], Utc::now()).is_ok());
    }

    #[test]
    fn a_leaf_reads_back_as_issued() {
        let root = TestCa::root("root").unwrap();
        let issued = root
            .issue("workload-1", KeySpec::Rsa2048, Validity::days(2))
            .unwrap();
        let leaf = cert(&issued.der);
        assert_eq!(leaf.subject_cn(), Some("workload-1"));
        assert_eq!(leaf.issuer_cn(), Some("root"));
        assert_eq!(leaf.serial_decimal(), issued.serial_decimal);
        assert_eq!(
            leaf.serial.len(),
            16,
            "16 random bytes, positive, no padding"
        );
        assert!(matches!(leaf.public_key, PublicKey::Rsa { bits: 2048, .. }));
        assert_eq!(leaf.basic_constraints, Some((false, None)));
        assert!(leaf.key_usage.unwrap() & KU_DIGITAL_SIGNATURE != 0);
        assert!(cert(&root.der).is_ca());
    }

    #[test]
    fn a_raw_ecdsa_signature_becomes_der_with_minimal_integers() {
        let mut raw = vec![0u8; 64];
        raw[0] = 0x80; // r's high bit set: a 0x00 is prepended
        raw[31] = 1;
        raw[63] = 0x7f; // s = 0x7f: one byte
        let der = ecdsa_fixed_to_der(&raw).unwrap();
        assert_eq!(der[0], 0x30);
        assert_eq!(&der[2..5], &[0x02, 33, 0x00]);
        assert_eq!(&der[der.len() - 3..], &[0x02, 1, 0x7f]);
        assert_eq!(ecdsa_fixed_to_der(&[1, 2, 3]), None);
    }
}
