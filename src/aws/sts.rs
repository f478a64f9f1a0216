//! The STS adapter: mint temporary credentials three ways, and verify them.
//!
//! Built on `aws-sdk-sts`; the endpoint comes from `AWS_ENDPOINT_URL_STS` (settings or
//! environment), the region from `AwsRegion`. Credentials are handed in per call and never come
//! from the SDK's default chain (`no_credentials`), so a stray `AWS_ACCESS_KEY_ID` in the app's
//! environment can never be used by mistake. `AssumeRoleWithWebIdentity` is sent unsigned.
//!
//! Errors are mapped to [`AwsError`] here, once, from the error *metadata* only: SDK errors are
//! never formatted with `Debug`, because a response that failed to parse would print its raw body,
//! which may hold credentials.

use std::time::SystemTime;

use aws_sdk_sts::config::Credentials;
use aws_sdk_sts::types::{PolicyDescriptorType, Tag};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use super::{map_error, AwsError};
use crate::secrets::{AwsKeys, MintedCredentials, SessionCredentials};

/// Parameters of `AssumeRole` beyond the role.
#[derive(Clone, Debug, Default)]
pub struct AssumeRoleOptions {
    pub external_id: Option<String>,
    pub session_policy: Option<String>,
    pub policy_arns: Vec<String>,
    pub tags: Vec<(String, String)>,
    pub source_identity: Option<String>,
}

/// Who a set of credentials belongs to.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CallerIdentity {
    pub arn: String,
    pub account: String,
    pub user_id: String,
}

/// A thin STS client factory: one base configuration, credentials per call.
#[derive(Clone, Debug)]
pub struct Sts {
    base: aws_sdk_sts::config::Builder,
}

impl Sts {
    pub fn new(sdk_config: &aws_config::SdkConfig, endpoint: Option<&str>) -> Self {
        let mut base = aws_sdk_sts::config::Builder::from(sdk_config);
        if let Some(endpoint) = endpoint {
            base = base.endpoint_url(endpoint);
        }
        Self { base }
    }

    fn client(&self, credentials: Option<Credentials>) -> aws_sdk_sts::Client {
        let mut config = self.base.clone();
        if let Some(c) = credentials {
            config = config.credentials_provider(c);
        }
        aws_sdk_sts::Client::from_conf(config.build())
    }

    fn signed_by(&self, keys: &AwsKeys) -> aws_sdk_sts::Client {
        self.client(Some(Credentials::new(
            keys.access_key_id.clone(),
            keys.secret_access_key.expose_secret().to_string(),
            None,
            None,
            "stsbridge-source",
        )))
    }

    /// `GetSessionToken` signed with the IAM user's key.
    pub async fn get_session_token(
        &self,
        keys: &AwsKeys,
        duration_secs: u64,
    ) -> Result<MintedCredentials, AwsError> {
        const ACTION: &str = "GetSessionToken";
        let out = self
            .signed_by(keys)
            .get_session_token()
            .duration_seconds(duration_secs as i32)
            .send()
            .await
            .map_err(|e| map_error(ACTION, e))?;
        minted(ACTION, out.credentials(), None)
    }

    /// `AssumeRole` signed with the IAM user's key.
    pub async fn assume_role(
        &self,
        keys: &AwsKeys,
        role_arn: &str,
        session_name: &str,
        options: &AssumeRoleOptions,
        duration_secs: u64,
    ) -> Result<MintedCredentials, AwsError> {
        const ACTION: &str = "AssumeRole";
        let mut request = self
            .signed_by(keys)
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(session_name)
            .duration_seconds(duration_secs as i32)
            .set_external_id(options.external_id.clone())
            .set_policy(options.session_policy.clone())
            .set_source_identity(options.source_identity.clone());
        for arn in &options.policy_arns {
            request = request.policy_arns(PolicyDescriptorType::builder().arn(arn).build());
        }
        for (k, v) in &options.tags {
            let tag = Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| AwsError::Unexpected {
                    action: ACTION,
                    message: e.to_string(),
                })?;
            request = request.tags(tag);
        }
        let out = request.send().await.map_err(|e| map_error(ACTION, e))?;
        let role = out.assumed_role_user().map(|u| u.arn().to_string());
        minted(ACTION, out.credentials(), role)
    }

    /// `AssumeRoleWithWebIdentity`, unsigned, with an Entra ID token.
    pub async fn assume_role_with_web_identity(
        &self,
        role_arn: &str,
        session_name: &str,
        token: &SecretString,
        duration_secs: u64,
    ) -> Result<MintedCredentials, AwsError> {
        const ACTION: &str = "AssumeRoleWithWebIdentity";
        let out = self
            .client(None)
            .assume_role_with_web_identity()
            .role_arn(role_arn)
            .role_session_name(session_name)
            .web_identity_token(token.expose_secret())
            .duration_seconds(duration_secs as i32)
            .send()
            .await
            .map_err(|e| map_error(ACTION, e))?;
        let role = out.assumed_role_user().map(|u| u.arn().to_string());
        minted(ACTION, out.credentials(), role)
    }

    /// `GetCallerIdentity` signed with freshly minted credentials: proof they work.
    pub async fn caller_identity(
        &self,
        creds: &SessionCredentials,
    ) -> Result<CallerIdentity, AwsError> {
        const ACTION: &str = "GetCallerIdentity";
        let expiry: SystemTime = creds.expiration.into();
        let client = self.client(Some(Credentials::new(
            creds.access_key_id.clone(),
            creds.secret_access_key.expose_secret().to_string(),
            Some(creds.session_token.expose_secret().to_string()),
            Some(expiry),
            "stsbridge-minted",
        )));
        self.identity(ACTION, client).await
    }

    /// `GetCallerIdentity` signed with the IAM user's key.
    pub async fn source_identity(&self, keys: &AwsKeys) -> Result<CallerIdentity, AwsError> {
        self.identity("GetCallerIdentity", self.signed_by(keys))
            .await
    }

    async fn identity(
        &self,
        action: &'static str,
        client: aws_sdk_sts::Client,
    ) -> Result<CallerIdentity, AwsError> {
        let out = client
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| map_error(action, e))?;
        Ok(CallerIdentity {
            arn: out.arn().unwrap_or_default().to_string(),
            account: out.account().unwrap_or_default().to_string(),
            user_id: out.user_id().unwrap_or_default().to_string(),
        })
    }
}

fn minted(
    action: &'static str,
    credentials: Option<&aws_sdk_sts::types::Credentials>,
    assumed_role_arn: Option<String>,
) -> Result<MintedCredentials, AwsError> {
    let Some(c) = credentials else {
        return Err(AwsError::Unexpected {
            action,
            message: "the answer holds no credentials".into(),
        });
    };
    let exp = c.expiration();
    let expiration =
        DateTime::<Utc>::from_timestamp(exp.secs(), exp.subsec_nanos()).ok_or_else(|| {
            AwsError::Unexpected {
                action,
                message: "the credentials' expiration is out of range".into(),
            }
        })?;
    // Checked like a bundle: an answer from an endpoint override is outside input too.
    let credentials = SessionCredentials::new(
        c.access_key_id(),
        SecretString::from(c.secret_access_key().to_string()),
        SecretString::from(c.session_token().to_string()),
        expiration,
    )
    .map_err(|e| AwsError::Unexpected {
        action,
        message: format!("the credentials in the answer are not shaped like AWS's: {e}"),
    })?;
    Ok(MintedCredentials {
        credentials,
        assumed_role_arn,
    })
}
