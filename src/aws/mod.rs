//! AWS adapters: STS (minting and verification), IAM (the IAM user's own access keys) and IAM
//! Roles Anywhere (`CreateSession` signed with a Key Vault key).
//!
//! Errors from both are mapped to [`AwsError`] here, once, from the error *metadata* only: SDK
//! errors are never formatted with `Debug`, because a response that failed to parse would print
//! its raw body, which may hold credentials.

pub mod iam;
pub mod names;
pub mod roles_anywhere;
pub mod sts;
pub mod web_identity;

use std::time::Duration;

use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::config::Region;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};

/// The configuration every AWS client starts from. Credentials are handed in per call and never
/// come from the SDK's default chain (`no_credentials`), so a stray `AWS_ACCESS_KEY_ID` in the
/// app's environment can never be used by mistake. `attempt_timeout` bounds each try; `budget`
/// bounds a call with all its retries. Retries are the SDK's standard mode (exponential backoff
/// with jitter) for throttling, 5xx and connection errors; authentication errors are never
/// retried.
pub async fn sdk_config(
    region: &str,
    attempt_timeout: Duration,
    budget: Duration,
) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
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
        .await
}

/// Why AWS (STS or IAM) did not give us what we asked for.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// AWS answered with an error (`code` is AWS's, e.g. `InvalidClientTokenId`).
    #[error("AWS refused {action}: {code}: {message}")]
    Refused {
        action: &'static str,
        code: String,
        message: String,
        status: u16,
    },
    /// No answer: connection refused, DNS, or timeout.
    #[error("AWS unreachable for {action}: {message}")]
    Unreachable {
        action: &'static str,
        message: String,
    },
    /// An answer we could not use.
    #[error("unexpected answer from AWS to {action}: {message}")]
    Unexpected {
        action: &'static str,
        message: String,
    },
}

impl AwsError {
    pub fn code(&self) -> &str {
        match self {
            AwsError::Refused { code, .. } => code,
            AwsError::Unreachable { .. } => "Unreachable",
            AwsError::Unexpected { .. } => "UnexpectedResponse",
        }
    }

    /// Throttling and server-side failures; auth errors are not transient.
    pub fn is_transient(&self) -> bool {
        match self {
            AwsError::Refused { code, status, .. } => {
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
            AwsError::Unreachable { .. } => true,
            AwsError::Unexpected { .. } => false,
        }
    }
}

use crate::redact::scrub;

/// Maps an SDK error from its metadata only (see the module docs for why).
pub(crate) fn map_error<E>(action: &'static str, error: SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match &error {
        SdkError::ServiceError(service) => {
            let err = service.err();
            AwsError::Refused {
                action,
                code: err.code().unwrap_or("Unknown").to_string(),
                message: scrub(err.message().unwrap_or("no message")),
                status: service.raw().status().as_u16(),
            }
        }
        SdkError::TimeoutError(_) => AwsError::Unreachable {
            action,
            message: "timed out".into(),
        },
        SdkError::DispatchFailure(failure) => AwsError::Unreachable {
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
        SdkError::ResponseError(_) => AwsError::Unexpected {
            action,
            message: "the answer could not be read".into(),
        },
        _ => AwsError::Unexpected {
            action,
            message: "the request could not be built".into(),
        },
    }
}
