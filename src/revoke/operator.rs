//! The operator's AWS side of a revocation: an IAM client (and STS, for `GetCallerIdentity`)
//! built from the *operator's* credentials — the standard chain: environment, `--aws-profile`
//! (an `sso_session` profile reads the AWS CLI's SSO cache, which `stsbridge sso login`
//! shares), container or instance roles — never from the minting key, which must never hold
//! `iam:Put*Policy` (a user that edits its own policies can grant itself anything).
//!
//! The cut-off is AWS's clock: the `Date` header of the `GetRolePolicy`/`GetUserPolicy` answer,
//! read by an SDK interceptor ([`DateReader`]) together with the local time it arrived.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_iam::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_iam::config::{ConfigBag, Intercept, ProvideCredentials, Region, RuntimeComponents};
use chrono::{DateTime, Utc};

use super::policy::{Kind, Principal, POLICY_NAME};
use crate::aws::{map_error, AwsError};

/// Who the operator is.
#[derive(Clone, Debug)]
pub struct Identity {
    pub arn: String,
    /// The access key id of the operator's credentials (an identifier, not a secret).
    pub access_key_id: String,
}

/// An existing revocation policy as read, with AWS's clock at the answer.
#[derive(Clone, Debug, Default)]
pub struct PolicyRead {
    /// The stored document (possibly URL-encoded); `None` when the principal has none.
    pub document: Option<String>,
    /// AWS's `Date` header and the local time the answer arrived.
    pub clock: Option<Clock>,
}

pub struct Operator {
    iam: aws_sdk_iam::Client,
    sts: aws_sdk_sts::Client,
    config: aws_config::SdkConfig,
}

impl Operator {
    /// The operator's clients. Makes no network call (credentials resolve on first use).
    pub async fn new(
        profile: Option<&str>,
        region: &str,
        iam_endpoint: Option<&str>,
        sts_endpoint: Option<&str>,
    ) -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(20))
                    .operation_timeout(Duration::from_secs(60))
                    .build(),
            );
        if let Some(p) = profile {
            loader = loader.profile_name(p);
        }
        let config = loader.load().await;
        let mut iam = aws_sdk_iam::config::Builder::from(&config);
        if let Some(e) = iam_endpoint {
            iam = iam.endpoint_url(e);
        }
        let mut sts = aws_sdk_sts::config::Builder::from(&config);
        if let Some(e) = sts_endpoint {
            sts = sts.endpoint_url(e);
        }
        Self {
            iam: aws_sdk_iam::Client::from_conf(iam.build()),
            sts: aws_sdk_sts::Client::from_conf(sts.build()),
            config,
        }
    }

    /// The operator's access key id and ARN; an error says how to give operator credentials.
    pub async fn identity(&self) -> anyhow::Result<Identity> {
        let how = "give the operator's AWS credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or --aws-profile, e.g. a profile signed in with `stsbridge sso login` or `aws sso login`)";
        let provider = self
            .config
            .credentials_provider()
            .ok_or_else(|| anyhow::anyhow!("no AWS credentials for the operator: {how}"))?;
        let credentials = provider.provide_credentials().await.map_err(|e| {
            anyhow::anyhow!(
                "no AWS credentials for the operator ({}): {how}",
                error_chain(&e)
            )
        })?;
        let out = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| map_error("GetCallerIdentity", e))?;
        Ok(Identity {
            arn: out.arn().unwrap_or_default().to_string(),
            access_key_id: credentials.access_key_id().to_string(),
        })
    }

    /// The principal's `AWSRevokeOlderSessions` policy, if any, and AWS's clock.
    pub async fn get_policy(&self, p: &Principal) -> Result<PolicyRead, AwsError> {
        let date = DateReader::default();
        let result = match p.kind {
            Kind::Role => self
                .iam
                .get_role_policy()
                .role_name(&p.name)
                .policy_name(POLICY_NAME)
                .customize()
                .interceptor(date.clone())
                .send()
                .await
                .map(|o| Some(o.policy_document().to_string()))
                .map_err(|e| map_error("GetRolePolicy", e)),
            Kind::User => self
                .iam
                .get_user_policy()
                .user_name(&p.name)
                .policy_name(POLICY_NAME)
                .customize()
                .interceptor(date.clone())
                .send()
                .await
                .map(|o| Some(o.policy_document().to_string()))
                .map_err(|e| map_error("GetUserPolicy", e)),
        };
        let document = match result {
            Ok(d) => d,
            Err(e) if e.code() == "NoSuchEntity" => None,
            Err(e) => return Err(e),
        };
        Ok(PolicyRead {
            document,
            clock: date.take(),
        })
    }

    /// Attaches or replaces the principal's `AWSRevokeOlderSessions` policy.
    pub async fn put_policy(&self, p: &Principal, document: &str) -> Result<(), AwsError> {
        match p.kind {
            Kind::Role => self
                .iam
                .put_role_policy()
                .role_name(&p.name)
                .policy_name(POLICY_NAME)
                .policy_document(document)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| map_error("PutRolePolicy", e)),
            Kind::User => self
                .iam
                .put_user_policy()
                .user_name(&p.name)
                .policy_name(POLICY_NAME)
                .policy_document(document)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| map_error("PutUserPolicy", e)),
        }
    }

    /// Deletes the principal's `AWSRevokeOlderSessions` policy.
    pub async fn delete_policy(&self, p: &Principal) -> Result<(), AwsError> {
        match p.kind {
            Kind::Role => self
                .iam
                .delete_role_policy()
                .role_name(&p.name)
                .policy_name(POLICY_NAME)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| map_error("DeleteRolePolicy", e)),
            Kind::User => self
                .iam
                .delete_user_policy()
                .user_name(&p.name)
                .policy_name(POLICY_NAME)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| map_error("DeleteUserPolicy", e)),
        }
    }

    /// A user's access key ids.
    pub async fn list_keys(&self, user: &str) -> Result<Vec<String>, AwsError> {
        let out = self
            .iam
            .list_access_keys()
            .user_name(user)
            .send()
            .await
            .map_err(|e| map_error("ListAccessKeys", e))?;
        Ok(out
            .access_key_metadata()
            .iter()
            .filter_map(|k| k.access_key_id().map(str::to_string))
            .collect())
    }

    /// Deletes one of a user's keys.
    pub async fn delete_key(&self, user: &str, access_key_id: &str) -> Result<(), AwsError> {
        self.iam
            .delete_access_key()
            .user_name(user)
            .access_key_id(access_key_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| map_error("DeleteAccessKey", e))
    }
}

/// AWS's `Date` header and the local time the answer arrived.
type Clock = (String, DateTime<Utc>);

/// Records the `Date` header of the answer (and the local time it arrived): AWS's clock.
#[derive(Clone, Debug, Default)]
struct DateReader(Arc<Mutex<Option<Clock>>>);

impl DateReader {
    fn take(&self) -> Option<Clock> {
        self.0.lock().expect("no panics while held").take()
    }
}

impl Intercept for DateReader {
    fn name(&self) -> &'static str {
        "stsbridge-aws-date"
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let arrived = Utc::now();
        if let Some(date) = context.response().headers().get("date") {
            *self.0.lock().expect("no panics while held") = Some((date.to_string(), arrived));
        }
        Ok(())
    }
}

/// An error's message and its sources (credential provider errors name the profile or variable
/// at fault, never a secret).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
