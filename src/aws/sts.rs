//! The STS adapter: mint temporary credentials three ways, and verify them.
//!
//! Built on `aws-sdk-sts`; the endpoint comes from `AWS_ENDPOINT_URL_STS` (settings or
//! environment), the region from `AwsRegion`. Credentials are handed in per call and never come
//! from the SDK's default chain (`no_credentials`), so a stray `AWS_ACCESS_KEY_ID` in the app's
//! environment can never be used by mistake. `AssumeRoleWithWebIdentity` is sent unsigned.
//!
//! Errors are mapped to [`StsError`] here, once, from the error *metadata* only: SDK errors are
//! never formatted with `Debug`, because a response that failed to parse would print its raw body,
//! which may hold credentials.

use std::time::{Duration, SystemTime};

use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::config::{Credentials, Region};
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sts::types::{PolicyDescriptorType, Tag};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use crate::secrets::{AwsKeys, MintedCredentials, SessionCredentials};
use crate::settings::AssumeRoleOptions;

/// Why STS did not give us what we asked for.
#[derive(Debug, thiserror::Error)]
pub enum StsError {
    /// STS answered with an error (`code` is AWS's, e.g. `InvalidClientTokenId`).
    #[error("STS refused {action}: {code}: {message}")]
    Refused {
        action: &'static str,
        code: String,
        message: String,
        status: u16,
    },
    /// No answer: connection refused, DNS, or timeout.
    #[error("STS unreachable for {action}: {message}")]
    Unreachable {
        action: &'static str,
        message: String,
    },
    /// An answer we could not use.
    #[error("unexpected answer from STS to {action}: {message}")]
    Unexpected {
        action: &'static str,
        message: String,
    },
}

impl StsError {
    pub fn code(&self) -> &str {
        match self {
            StsError::Refused { code, .. } => code,
            StsError::Unreachable { .. } => "Unreachable",
            StsError::Unexpected { .. } => "UnexpectedResponse",
        }
    }

    /// Throttling and server-side failures; auth errors are not transient.
    pub fn is_transient(&self) -> bool {
        match self {
            StsError::Refused { code, status, .. } => {
                *status >= 500
                    || matches!(
                        code.as_str(),
                        "Throttling"
                            | "ThrottlingException"
                            | "RequestLimitExceeded"
                            | "ServiceUnavailable"
                            | "InternalFailure"
                    )
            }
            StsError::Unreachable { .. } => true,
            StsError::Unexpected { .. } => false,
        }
    }
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
    /// `attempt_timeout` bounds each try; `budget` bounds a call with all its retries. Retries
    /// are the SDK's standard mode (exponential backoff with jitter) for throttling, 5xx and
    /// connection errors; authentication errors are never retried.
    pub async fn new(
        region: &str,
        endpoint: Option<&str>,
        attempt_timeout: Duration,
        budget: Duration,
    ) -> Self {
        let sdk_config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .no_credentials()
            .retry_config(
                aws_config::retry::RetryConfig::standard()
                    .with_max_attempts(4)
                    .with_initial_backoff(Duration::from_millis(500)),
            )
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(attempt_timeout)
                    .operation_timeout(budget)
                    .build(),
            )
            .load()
            .await;
        let mut base = aws_sdk_sts::config::Builder::from(&sdk_config);
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
    ) -> Result<MintedCredentials, StsError> {
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
    ) -> Result<MintedCredentials, StsError> {
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
                .map_err(|e| StsError::Unexpected {
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
    ) -> Result<MintedCredentials, StsError> {
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
    ) -> Result<CallerIdentity, StsError> {
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
    pub async fn source_identity(&self, keys: &AwsKeys) -> Result<CallerIdentity, StsError> {
        self.identity("GetCallerIdentity", self.signed_by(keys))
            .await
    }

    async fn identity(
        &self,
        action: &'static str,
        client: aws_sdk_sts::Client,
    ) -> Result<CallerIdentity, StsError> {
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
) -> Result<MintedCredentials, StsError> {
    let Some(c) = credentials else {
        return Err(StsError::Unexpected {
            action,
            message: "the answer holds no credentials".into(),
        });
    };
    let exp = c.expiration();
    let expiration =
        DateTime::<Utc>::from_timestamp(exp.secs(), exp.subsec_nanos()).ok_or_else(|| {
            StsError::Unexpected {
                action,
                message: "the credentials' expiration is out of range".into(),
            }
        })?;
    Ok(MintedCredentials {
        credentials: SessionCredentials {
            access_key_id: c.access_key_id().to_string(),
            secret_access_key: SecretString::from(c.secret_access_key().to_string()),
            session_token: SecretString::from(c.session_token().to_string()),
            expiration,
        },
        assumed_role_arn,
    })
}

/// Maps an SDK error from its metadata only (see the module docs for why).
pub(crate) fn map_error<E>(action: &'static str, error: SdkError<E, HttpResponse>) -> StsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match &error {
        SdkError::ServiceError(service) => {
            let err = service.err();
            StsError::Refused {
                action,
                code: err.code().unwrap_or("Unknown").to_string(),
                message: err.message().unwrap_or("no message").to_string(),
                status: service.raw().status().as_u16(),
            }
        }
        SdkError::TimeoutError(_) => StsError::Unreachable {
            action,
            message: "timed out".into(),
        },
        SdkError::DispatchFailure(failure) => StsError::Unreachable {
            action,
            message: if failure.is_timeout() {
                "timed out".into()
            } else {
                // The connector error chain names the endpoint and the OS error; no payload.
                let mut chain = String::from("could not send the request");
                let mut source = std::error::Error::source(&error);
                while let Some(s) = source {
                    chain.push_str(": ");
                    chain.push_str(&s.to_string());
                    source = s.source();
                }
                chain
            },
        },
        SdkError::ResponseError(_) => StsError::Unexpected {
            action,
            message: "the answer could not be read".into(),
        },
        _ => StsError::Unexpected {
            action,
            message: "the request could not be built".into(),
        },
    }
}
