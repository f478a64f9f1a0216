//! AWS adapters: STS (minting and verification) and IAM (the IAM user's own access keys).
//!
//! Errors from both are mapped to [`AwsError`] here, once, from the error *metadata* only: SDK
//! errors are never formatted with `Debug`, because a response that failed to parse would print
//! its raw body, which may hold credentials.

pub mod iam;
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

/// An AWS error message with anything shaped like key material replaced by `[REDACTED]`: some
/// services quote the canonical request or string-to-sign in `SignatureDoesNotMatch` messages,
/// which holds the `x-amz-security-token` header and signatures. A run of 32 or more characters
/// of the base64 alphabet (session tokens, secret keys) or of 64 hex digits (signatures) is
/// redacted; access key ids (20 characters) and ARNs stay readable.
pub fn scrub(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let hex = run.len() >= 64 && run.chars().all(|c| c.is_ascii_hexdigit());
        if run.len() >= 32 || hex {
            out.push_str("[REDACTED]");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in message.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '%') {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

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

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn key_material_in_an_aws_message_is_redacted_and_the_rest_kept() {
        let token = "FwoGZXIvYXdzEBYaDH7example+token/with=base64charsAAAAAAAAAAAA";
        let signature = "a".repeat(64);
        let message = format!(
            "The request signature we calculated does not match the signature you provided. The Canonical String for this request should have been 'POST\n/\n\nx-amz-security-token:{token}\n' signature {signature} for AKIAIOSFODNN7EXAMPLE in arn:aws:iam::123456789012:user/minter"
        );
        let scrubbed = scrub(&message);
        assert!(
            !scrubbed.contains(token) && !scrubbed.contains(&signature),
            "{scrubbed}"
        );
        assert!(scrubbed.contains("[REDACTED]"));
        assert!(scrubbed.contains("AKIAIOSFODNN7EXAMPLE"));
        assert!(scrubbed.contains("arn:aws:iam::123456789012:user/minter"));
        assert!(scrubbed.starts_with("The request signature we calculated"));
    }
}
