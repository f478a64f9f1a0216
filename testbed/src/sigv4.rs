//! AWS Signature Version 4, checked as AWS checks it, for the STS/IAM front (issue #24).
//!
//! The front must refuse what AWS refuses: a request signed with a secret that does not belong to
//! its access key id fails here with `SignatureDoesNotMatch`, so a set whose secret was swapped,
//! truncated or re-encoded on its way through stsbridge can never pass a test. The algorithm is
//! AWS's documented one (AWS General Reference, "Create a signed AWS API request"; the known-answer
//! vectors in the unit tests come from AWS's Signature Version 4 test suite, kept in
//! awslabs/aws-c-auth under tests/aws-signing-test-suite):
//!
//! - canonical request = method, canonical URI (normalised, each segment URI-encoded again — the
//!   rule for every service but S3), canonical query (decoded, re-encoded with RFC 3986's
//!   unreserved set, sorted), the signed headers (lower-case names, trimmed values with runs of
//!   spaces collapsed, repeated headers joined with `,`), the signed header names, and the hex
//!   SHA-256 of the payload (`x-amz-content-sha256` when sent, and then it must match the body);
//! - string to sign = `AWS4-HMAC-SHA256`, the request time, the scope
//!   `date/region/service/aws4_request`, the hex SHA-256 of the canonical request;
//! - signature = hex HMAC-SHA256 of that with the key `HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date),
//!   region), service), "aws4_request")`.
//!
//! Header names are compared case-insensitively (the Rust SDK sends them lower-case, botocore
//! capitalised). Only the `Authorization` header form is accepted: no client of stsbridge's signs
//! STS or IAM calls in the query string, and refusing it is the stricter choice.

use axum::http::HeaderMap;
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

/// The algorithm name of a SigV4 `Authorization` header.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// How far a request's time may be from the server's (AWS: 15 minutes).
pub const MAX_SKEW: TimeDelta = TimeDelta::minutes(15);

/// A parsed `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    /// `YYYYMMDD`, the scope's date.
    pub date: String,
    pub region: String,
    pub service: String,
    /// Lower-case, in the order given (which must be sorted).
    pub signed_headers: Vec<String>,
    /// Lower-case hex.
    pub signature: String,
}

impl Authorization {
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

/// Why a request's signature was refused; [`Refusal::code`] and [`Refusal::message`] are what AWS
/// answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization` header (and no query-string signature).
    Missing,
    /// The header is not a whole SigV4 authorization (`IncompleteSignature`).
    Incomplete(String),
    /// Well-formed, but the scope names something else (`SignatureDoesNotMatch` with AWS's
    /// explanation: wrong service, terminator, date).
    Scope(String),
    /// The request's time is more than 15 minutes from the server's.
    Expired(String),
    /// The signature is not the one the secret gives.
    Mismatch,
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Missing => "MissingAuthenticationToken",
            Refusal::Incomplete(_) => "IncompleteSignature",
            Refusal::Scope(_) | Refusal::Expired(_) | Refusal::Mismatch => "SignatureDoesNotMatch",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Refusal::Missing => "Request is missing Authentication Token".into(),
            Refusal::Incomplete(m) | Refusal::Scope(m) | Refusal::Expired(m) => m.clone(),
            Refusal::Mismatch => "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".into(),
        }
    }
}

/// The request as the server received it.
pub struct Request<'a> {
    pub method: &'a str,
    /// The path as sent (still percent-encoded).
    pub path: &'a str,
    /// The raw query string (without `?`), empty when none.
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// Parses a SigV4 `Authorization` header value.
pub fn parse_authorization(value: &str) -> Result<Authorization, Refusal> {
    parse_authorization_for(value, &[ALGORITHM]).map(|(_, auth)| auth)
}

/// Parses an `Authorization` header of the SigV4 form with one of `algorithms` (IAM Roles
/// Anywhere's `AWS4-X509-RSA-SHA256` and `AWS4-X509-ECDSA-SHA256` share the form, with the
/// certificate's serial where SigV4 has the access key id): the algorithm and the fields.
pub fn parse_authorization_for(
    value: &str,
    algorithms: &[&str],
) -> Result<(String, Authorization), Refusal> {
    let incomplete = |what: &str| {
        Refusal::Incomplete(format!(
            "Authorization header requires '{what}' parameter. Authorization={value}"
        ))
    };
    let algorithm = value.split_whitespace().next().unwrap_or("");
    if !algorithms.contains(&algorithm) {
        return Err(Refusal::Incomplete(format!(
            "Unsupported AWS 'algorithm': '{algorithm}'."
        )));
    }
    let rest = &value[algorithm.len()..];
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed_headers = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let credential = credential.ok_or_else(|| incomplete("Credential"))?;
    let signed_headers = signed_headers.ok_or_else(|| incomplete("SignedHeaders"))?;
    let signature = signature.ok_or_else(|| incomplete("Signature"))?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [key, date, region, service, terminator] = scope.as_slice() else {
        return Err(Refusal::Incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
        )));
    };
    if *terminator != "aws4_request" {
        return Err(Refusal::Scope(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."
        )));
    }
    if key.is_empty() || region.is_empty() || service.is_empty() {
        return Err(incomplete("Credential"));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refusal::Scope(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{date}'"
        )));
    }
    let signed_headers: Vec<String> = signed_headers.split(';').map(str::to_string).collect();
    if signed_headers.iter().any(|h| h.is_empty()) {
        return Err(incomplete("SignedHeaders"));
    }
    Ok((
        algorithm.to_string(),
        Authorization {
            access_key_id: key.to_string(),
            date: date.to_string(),
            region: region.to_string(),
            service: service.to_string(),
            signed_headers,
            signature: signature.to_ascii_lowercase(),
        },
    ))
}

/// Checks `request`'s signature, made with `secret` at a time within [`MAX_SKEW`] of `now`.
pub fn verify(
    request: &Request<'_>,
    auth: &Authorization,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    let amz_date = check_time(request, auth, now)?;
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(Refusal::Scope(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".into(),
        ));
    }
    let canonical = canonical_request(request, &auth.signed_headers)?;
    let to_sign = string_to_sign(&amz_date, &auth.scope(), &canonical);
    let expected = signature(secret, &auth.date, &auth.region, &auth.service, &to_sign);
    // Constant time is not a concern for a test bed, but it costs nothing to be right.
    let same = expected.len() == auth.signature.len()
        && expected
            .bytes()
            .zip(auth.signature.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(Refusal::Mismatch)
    }
}

/// SigV4's rules for the request time: an `X-Amz-Date` in ISO 8601 basic format, whose day is
/// the scope's, within [`MAX_SKEW`] of `now`. Returns the `X-Amz-Date` value.
pub fn check_time(
    request: &Request<'_>,
    auth: &Authorization,
    now: DateTime<Utc>,
) -> Result<String, Refusal> {
    let amz_date = header_value(request.headers, "x-amz-date").ok_or_else(|| {
        Refusal::Incomplete(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                .into(),
        )
    })?;
    let sent = NaiveDateTime::parse_from_str(&amz_date, "%Y%m%dT%H%M%SZ")
        .map(|t| t.and_utc())
        .map_err(|_| {
            Refusal::Incomplete(format!(
                "Date must be in ISO-8601 'basic format'. Got '{amz_date}'. See http://en.wikipedia.org/wiki/ISO_8601"
            ))
        })?;
    if amz_date[..8] != auth.date {
        return Err(Refusal::Scope(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{amz_date}'.",
            auth.date,
            &amz_date[..8]
        )));
    }
    let basic = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
    if sent < now - MAX_SKEW {
        return Err(Refusal::Expired(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - 15 min.)",
            basic(now - MAX_SKEW),
            basic(now)
        )));
    }
    if sent > now + MAX_SKEW {
        return Err(Refusal::Expired(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + 15 min.)",
            basic(now + MAX_SKEW),
            basic(now)
        )));
    }
    Ok(amz_date)
}

/// The canonical request for `request` with these signed headers.
pub fn canonical_request(request: &Request<'_>, signed: &[String]) -> Result<String, Refusal> {
    let mut headers = String::new();
    for name in signed {
        let values: Vec<String> = request
            .headers
            .get_all(name.as_str())
            .iter()
            .map(|v| collapse_spaces(&String::from_utf8_lossy(v.as_bytes())))
            .collect();
        if values.is_empty() {
            // AWS computes the signature without it, which cannot match what the client signed.
            return Err(Refusal::Mismatch);
        }
        headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let body_hash = hex(&Sha256::digest(request.body));
    let payload = match header_value(request.headers, "x-amz-content-sha256") {
        Some(claimed) if claimed.len() == 64 && claimed.bytes().all(|b| b.is_ascii_hexdigit()) => {
            if !claimed.eq_ignore_ascii_case(&body_hash) {
                return Err(Refusal::Mismatch);
            }
            claimed.to_ascii_lowercase()
        }
        Some(other) => other,
        None => body_hash,
    };
    Ok(format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method,
        canonical_uri(request.path),
        canonical_query(request.query),
        headers,
        signed.join(";"),
        payload
    ))
}

pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    string_to_sign_for(ALGORITHM, amz_date, scope, canonical_request)
}

/// The string to sign with another algorithm line (Roles Anywhere's `AWS4-X509-…`).
pub fn string_to_sign_for(
    algorithm: &str,
    amz_date: &str,
    scope: &str,
    canonical_request: &str,
) -> String {
    format!(
        "{algorithm}\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    )
}

/// The hex signature of `string_to_sign` with the key derived from `secret`.
pub fn signature(
    secret: &str,
    date: &str,
    region: &str,
    service: &str,
    string_to_sign: &str,
) -> String {
    let key = [date, region, service, "aws4_request"]
        .iter()
        .fold(format!("AWS4{secret}").into_bytes(), |key, part| {
            hmac(&key, part.as_bytes())
        });
    hex(&hmac(&key, string_to_sign.as_bytes()))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn header_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
}

/// Trims and turns every run of spaces into one (AWS's rule for canonical header values).
fn collapse_spaces(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// RFC 3986 encoding of everything but the unreserved characters, upper-case hex.
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The path normalised (`.`, `..` and empty segments removed, a trailing slash kept) and encoded
/// once more, as every service but S3 does.
fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = vec![];
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = format!("/{}", segments.join("/"));
    if path.ends_with('/') && out != "/" {
        out.push('/');
    }
    uri_encode(&out, true)
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k), false),
                uri_encode(&percent_decode(v), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Signs a request the way every SDK does (what the test bed's own direct calls and the unit
/// tests use): returns the `Authorization` value for these headers, which must include `host` and
/// `x-amz-date`.
pub fn authorization_for(
    request: &Request<'_>,
    access_key_id: &str,
    secret: &str,
    region: &str,
    service: &str,
) -> String {
    let mut signed: Vec<String> = request
        .headers
        .keys()
        .map(|k| k.as_str().to_ascii_lowercase())
        .filter(|k| k != "authorization")
        .collect();
    signed.sort();
    signed.dedup();
    let amz_date = header_value(request.headers, "x-amz-date").unwrap_or_default();
    let date = amz_date.get(..8).unwrap_or_default();
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let canonical = canonical_request(request, &signed).unwrap_or_default();
    let to_sign = string_to_sign(&amz_date, &scope, &canonical);
    format!(
        "{ALGORITHM} Credential={access_key_id}/{scope}, SignedHeaders={}, Signature={}",
        signed.join(";"),
        signature(secret, date, region, service, &to_sign)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    /// AWS's documentation example (IAM ListUsers, "Examples of how to derive a signing key" /
    /// "Create a signed AWS API request"), and the credentials of AWS's test suite.
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn list_users_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "content-type",
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        h.insert("host", HeaderValue::from_static("iam.amazonaws.com"));
        h.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
        h
    }

    fn at(basic: &str) -> DateTime<Utc> {
        NaiveDateTime::parse_from_str(basic, "%Y%m%dT%H%M%SZ")
            .unwrap()
            .and_utc()
    }

    #[test]
    fn aws_s_documented_example_gives_aws_s_signature() {
        let headers = list_users_headers();
        let request = Request {
            method: "GET",
            path: "/",
            query: "Action=ListUsers&Version=2010-05-08",
            headers: &headers,
            body: b"",
        };
        let signed: Vec<String> = ["content-type", "host", "x-amz-date"]
            .map(String::from)
            .to_vec();
        let canonical = canonical_request(&request, &signed).unwrap();
        assert_eq!(
            canonical,
            "GET\n/\nAction=ListUsers&Version=2010-05-08\ncontent-type:application/x-www-form-urlencoded; charset=utf-8\nhost:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let to_sign = string_to_sign(
            "20150830T123600Z",
            "20150830/us-east-1/iam/aws4_request",
            &canonical,
        );
        assert!(
            to_sign.ends_with("f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59")
        );
        assert_eq!(
            signature(SECRET, "20150830", "us-east-1", "iam", &to_sign),
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
        let auth = parse_authorization("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7").unwrap();
        assert_eq!(
            verify(&request, &auth, SECRET, at("20150830T124000Z")),
            Ok(())
        );
    }

    /// Vectors of AWS's Signature Version 4 test suite (awslabs/aws-c-auth,
    /// tests/aws-signing-test-suite/v4; service `service`, 2015-08-30T12:36:00Z).
    fn suite(
        method: &str,
        query: &str,
        extra: &[(&str, &str)],
        body: &[u8],
        signed: &str,
    ) -> (String, String) {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("example.amazonaws.com"));
        h.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
        for (k, v) in extra {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let r = Request {
            method,
            path: "/",
            query,
            headers: &h,
            body,
        };
        let signed: Vec<String> = signed.split(';').map(String::from).collect();
        let canonical = canonical_request(&r, &signed).unwrap();
        let to_sign = string_to_sign(
            "20150830T123600Z",
            "20150830/us-east-1/service/aws4_request",
            &canonical,
        );
        let sig = signature(SECRET, "20150830", "us-east-1", "service", &to_sign);
        (to_sign.lines().last().unwrap().to_string(), sig)
    }

    #[test]
    fn the_aws_test_suite_vectors_give_their_signatures() {
        assert_eq!(
            suite("GET", "", &[], b"", "host;x-amz-date"),
            (
                "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63".into(),
                "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31".into()
            ),
            "get-vanilla"
        );
        assert_eq!(
            suite("POST", "", &[], b"", "host;x-amz-date").1,
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
            "post-vanilla"
        );
        assert_eq!(
            suite(
                "GET",
                "Param2=value2&Param1=value1",
                &[],
                b"",
                "host;x-amz-date"
            )
            .1,
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
            "get-vanilla-query-order-key-case"
        );
        assert_eq!(
            suite(
                "GET",
                "",
                &[(
                    "x-amz-security-token",
                    "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"
                )],
                b"",
                "host;x-amz-date;x-amz-security-token"
            )
            .1,
            "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8",
            "get-vanilla-with-session-token"
        );
        assert_eq!(
            suite(
                "POST",
                "",
                &[
                    ("content-length", "13"),
                    ("content-type", "application/x-www-form-urlencoded"),
                    (
                        "x-amz-content-sha256",
                        "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"
                    )
                ],
                b"Param1=value1",
                "content-length;content-type;host;x-amz-content-sha256;x-amz-date"
            )
            .1,
            "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
            "post-x-www-form-urlencoded"
        );
        assert_eq!(
            suite(
                "GET",
                "",
                &[
                    ("my-header1", "value2"),
                    ("my-header1", "value2"),
                    ("my-header1", "value1")
                ],
                b"",
                "host;my-header1;x-amz-date"
            )
            .1,
            "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
            "get-header-key-duplicate"
        );
    }

    #[test]
    fn a_claimed_payload_hash_must_be_the_body_s() {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("example.amazonaws.com"));
        h.insert(
            "x-amz-content-sha256",
            HeaderValue::from_static(
                "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
            ),
        );
        let r = Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &h,
            body: b"Param1=value2",
        };
        assert_eq!(
            canonical_request(&r, &["host".into()]),
            Err(Refusal::Mismatch)
        );
    }

    /// A request botocore 1.44.18 signed (STS GetCallerIdentity with a session token, captured
    /// before it was sent): the front accepts what the AWS CLI and boto3 send.
    #[test]
    fn a_request_botocore_signed_is_accepted() {
        let mut h = HeaderMap::new();
        h.insert(
            "Content-Type",
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        h.insert("Host", HeaderValue::from_static("127.0.0.1:4566"));
        h.insert("X-Amz-Date", HeaderValue::from_static("20150830T123600Z"));
        h.insert(
            "X-Amz-Security-Token",
            HeaderValue::from_static("FwoGZXIvYXdzEXAMPLETOKEN+/="),
        );
        h.insert("User-Agent", HeaderValue::from_static("Boto3/1.44.18"));
        let body = b"Action=GetCallerIdentity&Version=2011-06-15";
        let r = Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &h,
            body,
        };
        let auth = parse_authorization("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=c6682f492906cd84ba61485b1f9d331612b29d068f9862a84e5ed8375b1a49f4").unwrap();
        assert_eq!(verify(&r, &auth, SECRET, at("20150830T123700Z")), Ok(()));
    }

    fn signed_post(secret: &str) -> (HeaderMap, Vec<u8>) {
        let body = b"Action=GetCallerIdentity&Version=2011-06-15".to_vec();
        let mut h = HeaderMap::new();
        h.insert(
            "Content-Type",
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        h.insert("Host", HeaderValue::from_static("127.0.0.1:4566"));
        h.insert("X-Amz-Date", HeaderValue::from_static("20261206T090000Z"));
        let auth = {
            let r = Request {
                method: "POST",
                path: "/",
                query: "",
                headers: &h,
                body: &body,
            };
            authorization_for(&r, "AKIAEXAMPLEEXAMPLE01", secret, "us-east-1", "sts")
        };
        h.insert("authorization", HeaderValue::from_str(&auth).unwrap());
        (h, body)
    }

    fn check(headers: &HeaderMap, body: &[u8], secret: &str, now: &str) -> Result<(), Refusal> {
        let auth = parse_authorization(headers["authorization"].to_str().unwrap())?;
        let r = Request {
            method: "POST",
            path: "/",
            query: "",
            headers,
            body,
        };
        verify(&r, &auth, secret, at(now))
    }

    #[test]
    fn the_right_secret_is_accepted_and_any_other_refused() {
        let (h, body) = signed_post(SECRET);
        assert_eq!(check(&h, &body, SECRET, "20261206T090100Z"), Ok(()));
        let reversed: String = SECRET.chars().rev().collect();
        assert_eq!(
            check(&h, &body, &reversed, "20261206T090100Z"),
            Err(Refusal::Mismatch)
        );
        assert_eq!(
            check(&h, &body, &SECRET[..39], "20261206T090100Z"),
            Err(Refusal::Mismatch)
        );
    }

    #[test]
    fn a_changed_body_or_header_breaks_the_signature() {
        let (h, _) = signed_post(SECRET);
        assert_eq!(
            check(
                &h,
                b"Action=GetSessionToken&Version=2011-06-15",
                SECRET,
                "20261206T090100Z"
            ),
            Err(Refusal::Mismatch)
        );
        let mut other_host = h.clone();
        other_host.insert("host", HeaderValue::from_static("127.0.0.1:4567"));
        assert_eq!(
            check(
                &other_host,
                b"Action=GetCallerIdentity&Version=2011-06-15",
                SECRET,
                "20261206T090100Z"
            ),
            Err(Refusal::Mismatch)
        );
    }

    #[test]
    fn a_request_more_than_fifteen_minutes_off_is_expired() {
        let (h, body) = signed_post(SECRET);
        let late = check(&h, &body, SECRET, "20261206T091501Z").unwrap_err();
        assert_eq!(late.code(), "SignatureDoesNotMatch");
        assert!(late.message().starts_with("Signature expired: 20261206T090000Z is now earlier than 20261206T090001Z (20261206T091501Z - 15 min.)"), "{}", late.message());
        let early = check(&h, &body, SECRET, "20261206T084459Z").unwrap_err();
        assert!(
            early.message().starts_with("Signature not yet current"),
            "{early:?}"
        );
        assert_eq!(check(&h, &body, SECRET, "20261206T091500Z"), Ok(()));
    }

    #[test]
    fn malformed_authorizations_are_incomplete_signatures() {
        for bad in [
            "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AKID/20261206/us-east-1/sts/aws4_request, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AKID/20261206/us-east-1/aws4_request, SignedHeaders=host, Signature=00",
            "Basic dXNlcjpwYXNz",
            "AWS4-HMAC-SHA512 Credential=AKID/20261206/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=00",
        ] {
            let r = parse_authorization(bad).unwrap_err();
            assert_eq!(r.code(), "IncompleteSignature", "{bad}: {r:?}");
        }
        let wrong_terminator = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AKID/20261206/us-east-1/sts/aws5_request, SignedHeaders=host, Signature=00",
        )
        .unwrap_err();
        assert_eq!(wrong_terminator.code(), "SignatureDoesNotMatch");
    }

    #[test]
    fn canonical_queries_are_decoded_reencoded_and_sorted() {
        assert_eq!(
            canonical_query("b=2&a=%7e&a=1&c=x%20y+z&d"),
            "a=1&a=~&b=2&c=x%20y%2Bz&d="
        );
        assert_eq!(canonical_uri("/a/./b/../c//d/"), "/a/c/d/");
        assert_eq!(canonical_uri("/a%20b"), "/a%2520b");
    }
}
