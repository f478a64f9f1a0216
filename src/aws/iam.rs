//! The IAM adapter: the IAM user's own access keys, for source-key rotation (issue #7).
//!
//! Every call is signed with the user's *long-lived* key: session credentials cannot call IAM
//! without MFA (`../shared/PROTOCOL.md` §3). Calls name no user, so IAM acts on the caller's own
//! keys, which is all the minter user's policy allows. IAM allows at most two keys per user.

use aws_sdk_iam::config::Credentials;
use aws_sdk_iam::types::StatusType;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use super::{map_error, AwsError};
use crate::secrets::AwsKeys;

/// One of the user's access keys (no secret: IAM returns it only at creation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub access_key_id: String,
    pub active: bool,
    pub created: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug)]
pub struct Iam {
    base: aws_sdk_iam::config::Builder,
}

impl Iam {
    pub fn new(sdk_config: &aws_config::SdkConfig, endpoint: Option<&str>) -> Self {
        let mut base = aws_sdk_iam::config::Builder::from(sdk_config);
        if let Some(endpoint) = endpoint {
            base = base.endpoint_url(endpoint);
        }
        Self { base }
    }

    fn signed_by(&self, keys: &AwsKeys) -> aws_sdk_iam::Client {
        let config = self
            .base
            .clone()
            .credentials_provider(Credentials::new(
                keys.access_key_id.clone(),
                keys.secret_access_key.expose_secret().to_string(),
                None,
                None,
                "stsbridge-source",
            ))
            .build();
        aws_sdk_iam::Client::from_conf(config)
    }

    /// The caller's access keys.
    pub async fn list_keys(&self, keys: &AwsKeys) -> Result<Vec<KeyInfo>, AwsError> {
        let out = self
            .signed_by(keys)
            .list_access_keys()
            .send()
            .await
            .map_err(|e| map_error("ListAccessKeys", e))?;
        Ok(out
            .access_key_metadata()
            .iter()
            .map(|k| KeyInfo {
                access_key_id: k.access_key_id().unwrap_or_default().to_string(),
                active: k.status() == Some(&StatusType::Active),
                created: k
                    .create_date()
                    .and_then(|d| DateTime::from_timestamp(d.secs(), d.subsec_nanos())),
            })
            .collect())
    }

    /// Creates a new key for the caller; its secret exists only in the returned value.
    pub async fn create_key(&self, keys: &AwsKeys) -> Result<AwsKeys, AwsError> {
        let out = self
            .signed_by(keys)
            .create_access_key()
            .send()
            .await
            .map_err(|e| map_error("CreateAccessKey", e))?;
        let Some(k) = out.access_key() else {
            return Err(AwsError::Unexpected {
                action: "CreateAccessKey",
                message: "the answer holds no key".into(),
            });
        };
        Ok(AwsKeys {
            access_key_id: k.access_key_id().to_string(),
            secret_access_key: SecretString::from(k.secret_access_key().to_string()),
        })
    }

    /// Deactivates one of the caller's keys.
    pub async fn deactivate(&self, keys: &AwsKeys, access_key_id: &str) -> Result<(), AwsError> {
        self.signed_by(keys)
            .update_access_key()
            .access_key_id(access_key_id)
            .status(StatusType::Inactive)
            .send()
            .await
            .map_err(|e| map_error("UpdateAccessKey", e))?;
        Ok(())
    }

    /// Deletes one of the caller's keys; a key that is already gone counts as deleted.
    pub async fn delete(&self, keys: &AwsKeys, access_key_id: &str) -> Result<(), AwsError> {
        match self
            .signed_by(keys)
            .delete_access_key()
            .access_key_id(access_key_id)
            .send()
            .await
            .map_err(|e| map_error("DeleteAccessKey", e))
        {
            Err(AwsError::Refused { code, .. }) if code == "NoSuchEntity" => Ok(()),
            other => other.map(|_| ()),
        }
    }
}
