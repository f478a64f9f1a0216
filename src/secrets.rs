//! The types that hold key material, and the one format they are published in.
//!
//! Every secret is a `secrecy::SecretString` from the moment it is read or minted: its `Debug`
//! prints `[REDACTED]`, and getting at the value takes an explicit `expose_secret()`, which
//! appears only where a value is sent to AWS or Key Vault or written for a consumer. Access key
//! ids are identifiers, not secrets (AWS shows them in consoles and CloudTrail), so they are
//! plain strings and may appear in reports and tags.

use chrono::{DateTime, SecondsFormat, Utc};
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

impl SessionCredentials {
    /// The AWS `credential_process` JSON (`Version` 1), which is also the bundle secret's value.
    pub fn to_process_json(&self) -> SecretString {
        let doc = ProcessJson {
            version: 1,
            access_key_id: Some(self.access_key_id.as_str().into()),
            secret_access_key: Some(self.secret_access_key.expose_secret().into()),
            session_token: Some(self.session_token.expose_secret().into()),
            expiration: Some(
                self.expiration
                    .to_rfc3339_opts(SecondsFormat::Secs, true)
                    .into(),
            ),
        };
        SecretString::from(serde_json::to_string(&doc).expect("plain strings serialize"))
    }

    /// Parses the `credential_process` JSON; errors never quote the input.
    pub fn from_process_json(text: &str) -> Result<Self, BundleError> {
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
        Ok(Self {
            access_key_id: field(doc.access_key_id, "AccessKeyId")?,
            secret_access_key: SecretString::from(field(doc.secret_access_key, "SecretAccessKey")?),
            session_token: SecretString::from(field(doc.session_token, "SessionToken")?),
            expiration,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SessionCredentials {
        SessionCredentials {
            access_key_id: "ASIAEXAMPLEEXAMPLE01".into(),
            secret_access_key: SecretString::from("s3cr3t-value".to_string()),
            session_token: SecretString::from("t0k3n-value".to_string()),
            expiration: DateTime::parse_from_rfc3339("2030-01-02T03:04:05Z")
                .unwrap()
                .with_timezone(&Utc),
        }
    }

    #[test]
    fn the_bundle_round_trips_as_credential_process_json() {
        let json = sample().to_process_json();
        let v: serde_json::Value = serde_json::from_str(json.expose_secret()).unwrap();
        assert_eq!(v["Version"], 1);
        assert_eq!(v["Expiration"], "2030-01-02T03:04:05Z");
        let back = SessionCredentials::from_process_json(json.expose_secret()).unwrap();
        assert_eq!(back.access_key_id, "ASIAEXAMPLEEXAMPLE01");
        assert_eq!(back.session_token.expose_secret(), "t0k3n-value");
    }

    #[test]
    fn a_bad_bundle_is_refused_without_quoting_it() {
        assert_eq!(
            SessionCredentials::from_process_json("s3cr3t").unwrap_err(),
            BundleError::NotJson
        );
        assert_eq!(
            SessionCredentials::from_process_json(r#"{"Version":2}"#).unwrap_err(),
            BundleError::WrongVersion(2)
        );
        let missing = r#"{"Version":1,"AccessKeyId":"A","SecretAccessKey":"s3cr3t","Expiration":"2030-01-01T00:00:00Z"}"#;
        let err = SessionCredentials::from_process_json(missing).unwrap_err();
        assert_eq!(err, BundleError::Missing("SessionToken"));
        assert!(!err.to_string().contains("s3cr3t"));
    }

    #[test]
    fn debug_output_redacts_every_secret() {
        let debug = format!("{:?}", sample());
        assert!(!debug.contains("s3cr3t-value") && !debug.contains("t0k3n-value"));
        assert!(debug.contains("ASIAEXAMPLEEXAMPLE01"));
    }
}
