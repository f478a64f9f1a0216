//! The types that hold key material, and the one format they are published in.
//!
//! Every secret is a `secrecy::SecretString` from the moment it is read or minted: its `Debug`
//! prints `[REDACTED]`, and getting at the value takes an explicit `expose_secret()`, which
//! appears only where a value is sent to AWS or Key Vault or written for a consumer. Access key
//! ids are identifiers, not secrets (AWS shows them in consoles and CloudTrail), so they are
//! plain strings and may appear in reports and tags.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// An IAM user's long-lived access key.
#[derive(Clone, Debug)]
pub struct AwsKeys {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
}

/// A temporary credential set, as STS returns it and as consumers use it.
#[derive(Clone, Debug)]
pub struct SessionCredentials {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    pub session_token: SecretString,
    pub expiration: DateTime<Utc>,
}

/// What a mint returns: the credentials and, for the role modes, the assumed role's ARN.
#[derive(Clone, Debug)]
pub struct MintedCredentials {
    pub credentials: SessionCredentials,
    pub assumed_role_arn: Option<String>,
}

/// Why a stored bundle cannot be used. Never carries the bundle's text.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BundleError {
    #[error("the bundle is not JSON")]
    NotJson,
    #[error("the bundle has Version {0}; only Version 1 is understood")]
    WrongVersion(i64),
    #[error("the bundle lacks {0}")]
    Missing(&'static str),
    #[error("the bundle's Expiration is not an RFC 3339 time")]
    BadExpiration,
    #[error(transparent)]
    Invalid(#[from] CredentialsError),
}

/// Why a credential value is refused: it is not shaped like what AWS issues. Names the field and
/// the rule, never the value.
///
/// Every credential that reaches a consumer's files or shell comes through
/// [`SessionCredentials::new`]: a bundle from the vault or a cache file, an STS answer, IAM
/// Identity Center role credentials. Its `Expiration` is bounded there too (issue #26). Anyone who can write the bundle (a Secrets Officer, a
/// compromised function identity) could otherwise put a line break into a value and add
/// sections to `~/.aws/credentials` (a `credential_process` line runs a command), or a quote
/// into `export`'s output. AWS's own values are far narrower: access key ids are letters and
/// digits, secret keys and session tokens are base64.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{field} {rule}")]
pub struct CredentialsError {
    pub field: &'static str,
    pub rule: &'static str,
}

/// `AccessKeyId`: 16–128 ASCII letters and digits (AWS's own bound; real ids are 20, `AKIA…`/`ASIA…`).
pub fn check_access_key_id(value: &str) -> Result<(), CredentialsError> {
    check(
        "AccessKeyId",
        value,
        16..=128,
        |c| c.is_ascii_alphanumeric(),
        "is not an AWS access key id (16-128 letters and digits)",
    )
}

/// The base64 alphabet AWS secret keys and session tokens are written in.
fn base64_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=')
}

fn check_secret_access_key(value: &str) -> Result<(), CredentialsError> {
    check(
        "SecretAccessKey",
        value,
        16..=256,
        base64_char,
        "is not an AWS secret access key (16-256 characters of A-Z a-z 0-9 + / =)",
    )
}

/// Session tokens have no fixed size (AWS: "make no assumptions about the maximum size"); the
/// bound is what a Key Vault secret holds.
fn check_session_token(value: &str) -> Result<(), CredentialsError> {
    check(
        "SessionToken",
        value,
        16..=20_000,
        base64_char,
        "is not an AWS session token (16-20000 characters of A-Z a-z 0-9 + / =)",
    )
}

fn check(
    field: &'static str,
    value: &str,
    len: std::ops::RangeInclusive<usize>,
    allowed: impl Fn(char) -> bool,
    rule: &'static str,
) -> Result<(), CredentialsError> {
    if len.contains(&value.len()) && value.chars().all(allowed) {
        Ok(())
    } else {
        Err(CredentialsError { field, rule })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ProcessJson<'a> {
    version: i64,
    #[serde(borrow)]
    access_key_id: Option<std::borrow::Cow<'a, str>>,
    secret_access_key: Option<std::borrow::Cow<'a, str>>,
    session_token: Option<std::borrow::Cow<'a, str>>,
    expiration: Option<std::borrow::Cow<'a, str>>,
}

/// The longest any AWS session lives: `GetSessionToken`'s 36 h (roles: 12 h).
pub const LONGEST_SESSION: TimeDelta = TimeDelta::hours(36);

/// How far an `Expiration` may lie beyond [`LONGEST_SESSION`] from now: clock drift between the
/// issuer and this machine.
pub const EXPIRATION_LEEWAY: TimeDelta = TimeDelta::minutes(5);

/// An `Expiration` no AWS session can have (issue #26): a bundle claiming to live until 9999
/// would be served, cached by `credential-process --cache` and kept after the vault is repaired.
fn check_expiration(expiration: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), CredentialsError> {
    if expiration - now > LONGEST_SESSION + EXPIRATION_LEEWAY {
        Err(CredentialsError {
            field: "Expiration",
            rule: "is more than 36 h 5 min ahead of now (no AWS session lives longer than 36 h)",
        })
    } else {
        Ok(())
    }
}

impl SessionCredentials {
    /// A credential set whose values are shaped like AWS's (see [`CredentialsError`]) and whose
    /// `Expiration` is no further ahead than an AWS session lives: the one way outside values
    /// become credentials. Reads the clock; [`SessionCredentials::new_at`] takes it.
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: SecretString,
        session_token: SecretString,
        expiration: DateTime<Utc>,
    ) -> Result<Self, CredentialsError> {
        Self::new_at(
            access_key_id,
            secret_access_key,
            session_token,
            expiration,
            Utc::now(),
        )
    }

    /// [`SessionCredentials::new`] at `now`.
    pub fn new_at(
        access_key_id: impl Into<String>,
        secret_access_key: SecretString,
        session_token: SecretString,
        expiration: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Self, CredentialsError> {
        let access_key_id = access_key_id.into();
        check_access_key_id(&access_key_id)?;
        check_secret_access_key(secret_access_key.expose_secret())?;
        check_session_token(session_token.expose_secret())?;
        check_expiration(expiration, now)?;
        Ok(Self {
            access_key_id,
            secret_access_key,
            session_token,
            expiration,
        })
    }

    /// The AWS `credential_process` JSON (`Version` 1), which is also the bundle secret's value.
    /// `Expiration` is the expiry exactly as STS gave it — with its fraction of a second when it
    /// has one (AWS's have none; emulators' may) — so that a repair from the bundle carries the
    /// very same expiry (issue #25); every RFC 3339 reader takes the fraction.
    pub fn to_process_json(&self) -> SecretString {
        let doc = ProcessJson {
            version: 1,
            access_key_id: Some(self.access_key_id.as_str().into()),
            secret_access_key: Some(self.secret_access_key.expose_secret().into()),
            session_token: Some(self.session_token.expose_secret().into()),
            expiration: Some(
                self.expiration
                    .to_rfc3339_opts(SecondsFormat::AutoSi, true)
                    .into(),
            ),
        };
        SecretString::from(serde_json::to_string(&doc).expect("plain strings serialize"))
    }

    /// Parses the `credential_process` JSON; errors never quote the input.
    pub fn from_process_json(text: &str) -> Result<Self, BundleError> {
        Self::from_process_json_at(text, Utc::now())
    }

    /// [`SessionCredentials::from_process_json`] at `now`.
    pub fn from_process_json_at(text: &str, now: DateTime<Utc>) -> Result<Self, BundleError> {
        let doc: ProcessJson = serde_json::from_str(text).map_err(|_| BundleError::NotJson)?;
        if doc.version != 1 {
            return Err(BundleError::WrongVersion(doc.version));
        }
        let field = |v: Option<std::borrow::Cow<str>>, name| {
            v.filter(|s| !s.is_empty())
                .map(|s| s.into_owned())
                .ok_or(BundleError::Missing(name))
        };
        let expiration = field(doc.expiration, "Expiration")?;
        let expiration = DateTime::parse_from_rfc3339(&expiration)
            .map_err(|_| BundleError::BadExpiration)?
            .with_timezone(&Utc);
        Ok(Self::new_at(
            field(doc.access_key_id, "AccessKeyId")?,
            SecretString::from(field(doc.secret_access_key, "SecretAccessKey")?),
            SecretString::from(field(doc.session_token, "SessionToken")?),
            expiration,
            now,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECRET: &str = "s3cr3tValueOfFortyCharactersExample/+0=";
    const TOKEN: &str = "FwoGZXIvYXdzEt0k3nValueExample+/=";

    fn sample() -> SessionCredentials {
        SessionCredentials {
            access_key_id: "ASIAEXAMPLEEXAMPLE01".into(),
            secret_access_key: SecretString::from(SECRET.to_string()),
            session_token: SecretString::from(TOKEN.to_string()),
            expiration: DateTime::parse_from_rfc3339("2030-01-02T03:04:05Z")
                .unwrap()
                .with_timezone(&Utc),
        }
    }

    /// The parse at 2030-01-01T12:00:00Z, within a day of the samples' expiry.
    fn parse(text: &str) -> Result<SessionCredentials, BundleError> {
        SessionCredentials::from_process_json_at(text, at("2030-01-01T12:00:00Z"))
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn bundle(id: &str, secret: &str, token: &str) -> String {
        serde_json::json!({"Version": 1, "AccessKeyId": id, "SecretAccessKey": secret,
            "SessionToken": token, "Expiration": "2030-01-01T00:00:00Z"})
        .to_string()
    }

    #[test]
    fn the_bundle_round_trips_as_credential_process_json() {
        let json = sample().to_process_json();
        let v: serde_json::Value = serde_json::from_str(json.expose_secret()).unwrap();
        assert_eq!(v["Version"], 1);
        assert_eq!(v["Expiration"], "2030-01-02T03:04:05Z");
        let back = parse(json.expose_secret()).unwrap();
        assert_eq!(back.access_key_id, "ASIAEXAMPLEEXAMPLE01");
        assert_eq!(back.session_token.expose_secret(), TOKEN);
    }

    #[test]
    fn a_bad_bundle_is_refused_without_quoting_it() {
        assert_eq!(parse("s3cr3t").unwrap_err(), BundleError::NotJson);
        assert_eq!(
            parse(r#"{"Version":2}"#).unwrap_err(),
            BundleError::WrongVersion(2)
        );
        let missing = r#"{"Version":1,"AccessKeyId":"A","SecretAccessKey":"s3cr3t","Expiration":"2030-01-01T00:00:00Z"}"#;
        let err = parse(missing).unwrap_err();
        assert_eq!(err, BundleError::Missing("SessionToken"));
        assert!(!err.to_string().contains("s3cr3t"));
    }

    /// Issue #15 M1: a value with a line break would add sections to `~/.aws/credentials`.
    #[test]
    fn a_bundle_whose_values_could_break_out_of_a_file_is_refused_naming_the_field() {
        let injected = format!("{SECRET}\n[bridged]\ncredential_process = sh -c id");
        for (text, field) in [
            (
                bundle("ASIAEXAMPLEEXAMPLE01", &injected, TOKEN),
                "SecretAccessKey",
            ),
            (
                bundle("ASIAEXAMPLE\nEXAMPLE01", SECRET, TOKEN),
                "AccessKeyId",
            ),
            (
                bundle(
                    "ASIAEXAMPLEEXAMPLE01",
                    SECRET,
                    &format!("{TOKEN}\u{2019}; calc"),
                ),
                "SessionToken",
            ),
            (bundle("ASIA'EXAMPLEEXAMPLE", SECRET, TOKEN), "AccessKeyId"),
            (
                bundle("ASIAEXAMPLEEXAMPLE01", "short", TOKEN),
                "SecretAccessKey",
            ),
        ] {
            let err = parse(&text).unwrap_err();
            let BundleError::Invalid(e) = &err else {
                panic!("{err:?}")
            };
            assert_eq!(e.field, field);
            assert!(!err.to_string().contains("bridged") && !err.to_string().contains("calc"));
        }
    }

    /// Issue #26: a bundle (or cache file, or answer) claiming a life no AWS session has is
    /// refused, naming the field; up to 36 h and 5 min ahead is accepted.
    #[test]
    fn an_expiration_further_ahead_than_any_session_lives_is_refused() {
        let with = |expiration: &str| {
            serde_json::json!({"Version": 1, "AccessKeyId": "ASIAEXAMPLEEXAMPLE01",
                "SecretAccessKey": SECRET, "SessionToken": TOKEN, "Expiration": expiration})
            .to_string()
        };
        let now = at("2030-01-01T00:00:00Z");
        for far in ["9999-12-31T23:59:59Z", "2030-01-02T12:05:01Z"] {
            let err = SessionCredentials::from_process_json_at(&with(far), now).unwrap_err();
            let BundleError::Invalid(e) = &err else {
                panic!("{err:?}")
            };
            assert_eq!(e.field, "Expiration", "{far}");
            assert!(err.to_string().contains("36 h"), "{err}");
        }
        for near in [
            "2030-01-02T12:05:00Z",
            "2030-01-01T01:00:00Z",
            "2029-12-31T00:00:00Z",
        ] {
            assert!(
                SessionCredentials::from_process_json_at(&with(near), now).is_ok(),
                "{near}"
            );
        }
        let direct = SessionCredentials::new_at(
            "ASIAEXAMPLEEXAMPLE01",
            SecretString::from(SECRET.to_string()),
            SecretString::from(TOKEN.to_string()),
            at("2030-01-03T00:00:00Z"),
            now,
        );
        assert_eq!(direct.unwrap_err().field, "Expiration");
    }

    #[test]
    fn debug_output_redacts_every_secret() {
        let debug = format!("{:?}", sample());
        assert!(!debug.contains(SECRET) && !debug.contains(TOKEN));
        assert!(debug.contains("ASIAEXAMPLEEXAMPLE01"));
    }

    proptest! {
        /// Whatever a bundle holds, an accepted value has no character a file or shell format
        /// could give a meaning to: no control character, quote, space, bracket, `$` or `;`.
        #[test]
        fn accepted_values_hold_only_their_alphabet(
            id in "\\PC{0,40}|[A-Z0-9]{16,24}",
            secret in "\\PC{0,60}|[A-Za-z0-9+/=]{16,60}",
            token in "\\PC{0,80}|[A-Za-z0-9+/=]{16,80}",
        ) {
            let text = bundle(&id, &secret, &token);
            if let Ok(c) = parse(&text) {
                for v in [c.access_key_id.as_str(), c.secret_access_key.expose_secret(), c.session_token.expose_secret()] {
                    prop_assert!(v.chars().all(|ch| ch.is_ascii_alphanumeric() || "+/=".contains(ch)), "{v:?}");
                }
            }
        }
    }
}
