//! IAM Roles Anywhere `CreateSession` (issue #30), signed with a private key that never leaves
//! Key Vault: this module builds the request and its string to sign (pure), takes the signature
//! the vault's `sign` operation made over the string to sign's SHA-256 digest, and reads the
//! answer. No AWS crate signs with a remote key, and the process is small: SigV4's canonical
//! request with an X.509 algorithm line (AWS's "IAM Roles Anywhere authentication signing
//! process"; the official helper aws/rolesanywhere-credential-helper, `signer.go`):
//!
//! - `POST /sessions` on `rolesanywhere.<region>.amazonaws.com`, the ARNs and `durationSeconds`
//!   (and `roleSessionName` when set) in a JSON body;
//! - signed headers `content-type`, `host`, `x-amz-date`, `x-amz-x509` (the leaf certificate,
//!   base64 DER) and `x-amz-x509-chain` (the intermediates, base64 DER, comma-separated);
//! - string to sign `AWS4-X509-RSA-SHA256` or `AWS4-X509-ECDSA-SHA256`, the date, the scope
//!   `YYYYMMDD/<region>/rolesanywhere/aws4_request`, the hex SHA-256 of the canonical request;
//! - the signature over SHA-256(string to sign): RSASSA-PKCS1-v1_5 (Key Vault's RS256) or ECDSA
//!   P-256 (ES256), which Key Vault returns as raw `r‖s` and AWS wants DER ([`ecdsa_der`]);
//! - `Authorization: <algorithm> Credential=<certificate serial, decimal>/<scope>,
//!   SignedHeaders=…, Signature=<hex>`.
//!
//! The answer is `201` with `credentialSet[0].credentials`; errors carry `x-amzn-ErrorType` and
//! `{"message": …}` (`AccessDeniedException` "Untrusted Signing Certificate", "Invalid
//! signature", …).

use chrono::{DateTime, NaiveDateTime, Utc};
use secrecy::SecretString;
use sha2::{Digest, Sha256};

use super::AwsError;
pub use crate::certificate::KeyAlgorithm;
use crate::secrets::{MintedCredentials, SessionCredentials};

/// The service name in the scope and the endpoint.
pub const SERVICE: &str = "rolesanywhere";

/// What one `CreateSession` asks for.
#[derive(Clone, Debug)]
pub struct SessionRequest<'a> {
    /// `https://rolesanywhere.<region>.amazonaws.com` (or an override, e.g.
    /// `AWS_ENDPOINT_URL_ROLESANYWHERE`), without a path.
    pub endpoint: &'a url::Url,
    pub region: &'a str,
    pub trust_anchor_arn: &'a str,
    pub profile_arn: &'a str,
    pub role_arn: &'a str,
    pub duration_secs: u64,
    pub role_session_name: Option<&'a str>,
    /// The leaf certificate, DER.
    pub certificate: &'a [u8],
    /// The intermediates, DER, leaf-side first.
    pub chain: &'a [Vec<u8>],
    /// The leaf certificate's serial number, decimal.
    pub serial: &'a str,
    pub algorithm: KeyAlgorithm,
}

/// A request ready to be signed: everything but the `Authorization` header.
#[derive(Clone, Debug)]
pub struct Unsigned {
    pub url: url::Url,
    /// Lower-case names, sorted, as signed.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub string_to_sign: String,
    algorithm: KeyAlgorithm,
    credential: String,
    signed_headers: String,
}

impl Unsigned {
    /// What Key Vault signs: SHA-256 of the string to sign.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.string_to_sign.as_bytes()).into()
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The `Authorization` header for `signature` (DER for ECDSA: see [`ecdsa_der`]).
    pub fn authorization(&self, signature: &[u8]) -> String {
        format!(
            "{} Credential={}, SignedHeaders={}, Signature={}",
            self.algorithm.aws_name(),
            self.credential,
            self.signed_headers,
            hex(signature)
        )
    }
}

/// Builds the request and its string to sign at `now`.
pub fn prepare(request: &SessionRequest<'_>, now: DateTime<Utc>) -> Unsigned {
    let b64 = |der: &[u8]| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(der)
    };
    let mut body = serde_json::json!({
        "durationSeconds": request.duration_secs,
        "profileArn": request.profile_arn,
        "roleArn": request.role_arn,
        "trustAnchorArn": request.trust_anchor_arn,
    });
    if let Some(name) = request.role_session_name {
        body["roleSessionName"] = name.into();
    }
    let body = body.to_string().into_bytes();
    let mut url = request.endpoint.clone();
    url.set_path("/sessions");
    url.set_query(None);
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
    let mut headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("host".to_string(), host),
        ("x-amz-date".to_string(), amz_date.clone()),
        ("x-amz-x509".to_string(), b64(request.certificate)),
    ];
    if !request.chain.is_empty() {
        let chain: Vec<String> = request.chain.iter().map(|c| b64(c)).collect();
        headers.push(("x-amz-x509-chain".to_string(), chain.join(",")));
    }
    headers.sort();
    let signed_headers = headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let canonical = format!(
        "POST\n/sessions\n\n{canonical_headers}\n{signed_headers}\n{}",
        hex(&Sha256::digest(&body))
    );
    let scope = format!(
        "{}/{}/{SERVICE}/aws4_request",
        &amz_date[..8],
        request.region
    );
    let string_to_sign = format!(
        "{}\n{amz_date}\n{scope}\n{}",
        request.algorithm.aws_name(),
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    Unsigned {
        url,
        headers,
        body,
        string_to_sign,
        algorithm: request.algorithm,
        credential: format!("{}/{scope}", request.serial),
        signed_headers,
    }
}

/// Why a raw ECDSA signature could not be encoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the ECDSA signature is {0} bytes, not the 64 of a P-256 r‖s")]
pub struct RawSignatureLength(pub usize);

/// An ECDSA P-256 signature as Key Vault returns it (raw `r‖s`, 32 bytes each, RFC 7518) in the
/// DER form AWS verifies (`SEQUENCE { INTEGER r, INTEGER s }`).
pub fn ecdsa_der(raw: &[u8]) -> Result<Vec<u8>, RawSignatureLength> {
    if raw.len() != 64 {
        return Err(RawSignatureLength(raw.len()));
    }
    let integer = |bytes: &[u8]| {
        // Minimal big-endian two's complement: no leading zero bytes, then one if the top bit
        // is set (the integer is positive).
        let first = bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len() - 1);
        let mut value = bytes[first..].to_vec();
        if value[0] & 0x80 != 0 {
            value.insert(0, 0);
        }
        let mut out = vec![0x02, value.len() as u8];
        out.extend(value);
        out
    };
    let (r, s) = (integer(&raw[..32]), integer(&raw[32..]));
    let mut out = vec![0x30, (r.len() + s.len()) as u8];
    out.extend(r);
    out.extend(s);
    Ok(out)
}

/// Sends a signed `CreateSession`: a 5xx, a 429 or no answer is tried again (three attempts in
/// all, 200 ms and 400 ms apart — the same signed request: its date stays valid for minutes);
/// AWS's refusals are not.
pub async fn create_session(
    http: &reqwest::Client,
    unsigned: &Unsigned,
    authorization: &str,
) -> Result<MintedCredentials, AwsError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut request = http
            .post(unsigned.url.clone())
            .header("authorization", authorization)
            .body(unsigned.body.clone());
        for (name, value) in &unsigned.headers {
            // reqwest sets Host from the URL: the same value as signed.
            if name != "host" {
                request = request.header(name.as_str(), value.as_str());
            }
        }
        let retry = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let error_type = response
                    .headers()
                    .get("x-amzn-errortype")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let body = response.text().await.unwrap_or_default();
                if (status >= 500 || status == 429) && attempt < 3 {
                    true
                } else {
                    return parse_session(status, error_type.as_deref(), &body);
                }
            }
            Err(e) if attempt < 3 => {
                tracing::debug!("CreateSession: no answer ({e}), trying again");
                true
            }
            Err(e) => {
                return Err(AwsError::Unreachable {
                    action: "CreateSession",
                    message: crate::redact::scrub(&e.without_url().to_string()),
                })
            }
        };
        if retry {
            tokio::time::sleep(std::time::Duration::from_millis(200 << (attempt - 1))).await;
        }
    }
}

/// Reads a `CreateSession` answer: the set (checked like every outside value) and the role
/// session it acts as.
pub fn parse_session(
    status: u16,
    error_type: Option<&str>,
    body: &str,
) -> Result<MintedCredentials, AwsError> {
    let action = "CreateSession";
    if !(200..300).contains(&status) {
        let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        let message = json["message"]
            .as_str()
            .or(json["Message"].as_str())
            .unwrap_or("")
            .to_string();
        let code = error_type
            .map(|t| t.split(':').next().unwrap_or(t).to_string())
            .or_else(|| json["__type"].as_str().map(str::to_string))
            .unwrap_or_else(|| format!("HTTP{status}"));
        return Err(AwsError::Refused {
            action,
            code,
            message: crate::redact::scrub(&message),
            status,
        });
    }
    let unexpected = |message: &str| AwsError::Unexpected {
        action,
        message: message.to_string(),
    };
    let json: serde_json::Value =
        serde_json::from_str(body).map_err(|_| unexpected("the answer is not JSON"))?;
    let set = &json["credentialSet"][0];
    let c = &set["credentials"];
    let field = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    let expiration = parse_expiration(&field("expiration"))
        .ok_or_else(|| unexpected("the credentials' expiration is not a time"))?;
    let credentials = SessionCredentials::new(
        field("accessKeyId"),
        SecretString::from(field("secretAccessKey")),
        SecretString::from(field("sessionToken")),
        expiration,
    )
    .map_err(|e| {
        unexpected(&format!(
            "the credentials in the answer are not shaped like AWS's: {e}"
        ))
    })?;
    let assumed_role_arn = set["assumedRoleUser"]["arn"].as_str().map(str::to_string);
    Ok(MintedCredentials {
        credentials,
        assumed_role_arn,
    })
}

/// RFC 3339, or the same without an offset (UTC).
fn parse_expiration(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|t| t.and_utc())
        })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(endpoint: &'a url::Url, chain: &'a [Vec<u8>]) -> SessionRequest<'a> {
        SessionRequest {
            endpoint,
            region: "eu-west-1",
            trust_anchor_arn: "arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/ta",
            profile_arn: "arn:aws:rolesanywhere:eu-west-1:123456789012:profile/p",
            role_arn: "arn:aws:iam::123456789012:role/reader",
            duration_secs: 3600,
            role_session_name: None,
            certificate: b"leaf",
            chain,
            serial: "5373003642731685151011",
            algorithm: KeyAlgorithm::EcdsaP256,
        }
    }

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-06T08:39:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    /// The canonical request and string to sign, written out by hand from AWS's process.
    #[test]
    fn the_string_to_sign_follows_the_roles_anywhere_signing_process() {
        let endpoint = url::Url::parse("https://127.0.0.1:8443").unwrap();
        let chain = vec![b"ca1".to_vec(), b"ca2".to_vec()];
        let unsigned = prepare(&request(&endpoint, &chain), at());

        let body = r#"{"durationSeconds":3600,"profileArn":"arn:aws:rolesanywhere:eu-west-1:123456789012:profile/p","roleArn":"arn:aws:iam::123456789012:role/reader","trustAnchorArn":"arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/ta"}"#;
        assert_eq!(String::from_utf8(unsigned.body.clone()).unwrap(), body);
        let canonical = format!(
            "POST\n/sessions\n\ncontent-type:application/json\nhost:127.0.0.1:8443\nx-amz-date:20261206T083900Z\nx-amz-x509:bGVhZg==\nx-amz-x509-chain:Y2Ex,Y2Ey\n\ncontent-type;host;x-amz-date;x-amz-x509;x-amz-x509-chain\n{}",
            hex(&Sha256::digest(body.as_bytes()))
        );
        assert_eq!(
            unsigned.string_to_sign,
            format!(
                "AWS4-X509-ECDSA-SHA256\n20261206T083900Z\n20261206/eu-west-1/rolesanywhere/aws4_request\n{}",
                hex(&Sha256::digest(canonical.as_bytes()))
            )
        );
        assert_eq!(unsigned.url.as_str(), "https://127.0.0.1:8443/sessions");
        assert_eq!(
            unsigned.authorization(&[0xab, 0x01]),
            "AWS4-X509-ECDSA-SHA256 Credential=5373003642731685151011/20261206/eu-west-1/rolesanywhere/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-x509;x-amz-x509-chain, Signature=ab01"
        );
    }

    #[test]
    fn without_intermediates_the_chain_header_is_neither_sent_nor_signed() {
        let endpoint = url::Url::parse("https://rolesanywhere.eu-west-1.amazonaws.com").unwrap();
        let mut r = request(&endpoint, &[]);
        r.algorithm = KeyAlgorithm::Rsa;
        r.role_session_name = Some("build-42");
        let unsigned = prepare(&r, at());
        assert!(unsigned
            .headers
            .iter()
            .all(|(k, _)| k != "x-amz-x509-chain"));
        assert!(unsigned.headers.contains(&(
            "host".into(),
            "rolesanywhere.eu-west-1.amazonaws.com".into()
        )));
        assert!(unsigned
            .string_to_sign
            .starts_with("AWS4-X509-RSA-SHA256\n"));
        assert!(String::from_utf8_lossy(&unsigned.body).contains(r#""roleSessionName":"build-42""#));
        assert!(unsigned
            .authorization(&[1])
            .contains("SignedHeaders=content-type;host;x-amz-date;x-amz-x509,"));
    }

    #[test]
    fn a_raw_ecdsa_signature_becomes_minimal_der() {
        let mut raw = [0u8; 64];
        raw[31] = 0x01; // r = 1
        raw[32] = 0x80; // s has its top bit set: a zero byte goes in front
        let der = ecdsa_der(&raw).unwrap();
        let mut want = vec![0x30, 3 + 35, 0x02, 0x01, 0x01, 0x02, 33, 0x00];
        want.extend_from_slice(&raw[32..]);
        assert_eq!(der, want);
        assert_eq!(ecdsa_der(&[0; 63]), Err(RawSignatureLength(63)));
    }

    #[test]
    fn an_answer_is_read_and_an_error_keeps_aws_s_code_and_message() {
        let ok = r#"{"credentialSet":[{"assumedRoleUser":{"arn":"arn:aws:sts::123456789012:assumed-role/reader/0a1b","assumedRoleId":"AROA:0a1b"},
            "credentials":{"accessKeyId":"ASIAEXAMPLEEXAMPLE01","expiration":"2026-12-06T09:39:00Z","secretAccessKey":"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY","sessionToken":"IQoJb3JpZ2luX2VjEXAMPLE+/="},
            "packedPolicySize":0,"roleArn":"arn:aws:iam::123456789012:role/reader","sourceIdentity":"CN=build"}],
            "subjectArn":"arn:aws:rolesanywhere:eu-west-1:123456789012:subject/x"}"#;
        let minted = parse_session(201, None, ok).unwrap();
        assert_eq!(minted.credentials.access_key_id, "ASIAEXAMPLEEXAMPLE01");
        assert_eq!(
            minted.assumed_role_arn.as_deref(),
            Some("arn:aws:sts::123456789012:assumed-role/reader/0a1b")
        );
        let refused = parse_session(
            403,
            Some("AccessDeniedException:http://internal.amazon.com/coral/"),
            r#"{"message":"Untrusted Signing Certificate"}"#,
        )
        .unwrap_err();
        match refused {
            AwsError::Refused { code, message, .. } => {
                assert_eq!(code, "AccessDeniedException");
                assert_eq!(message, "Untrusted Signing Certificate");
            }
            other => panic!("{other:?}"),
        }
    }
}
