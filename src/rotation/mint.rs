//! **Mint** temporary credentials with STS, as the mode says, and **verify** them with
//! `GetCallerIdentity` signed by the new credentials: nothing is published that did not work.

use secrecy::SecretString;

use super::{Failure, Kind, RotationService, Step};
use crate::aws::sts::CallerIdentity;
use crate::aws::AwsError;
use crate::secrets::{AwsKeys, MintedCredentials};
use crate::settings::{Mode, SourceKeys};

impl RotationService {
    pub(super) async fn mint(
        &self,
        keys: Option<&AwsKeys>,
        token: Option<&SecretString>,
    ) -> Result<MintedCredentials, Failure> {
        let s = &self.settings;
        let d = s.session_duration_secs;
        let result = match (&s.mode, keys, token) {
            (Mode::SessionToken { .. }, Some(keys), _) => self.sts.get_session_token(keys, d).await,
            (Mode::AssumeRole { role, options, .. }, Some(keys), _) => {
                self.sts
                    .assume_role(keys, &role.arn, &role.session_name, options, d)
                    .await
            }
            (Mode::WebIdentity { role, .. }, _, Some(token)) => {
                self.sts
                    .assume_role_with_web_identity(&role.arn, &role.session_name, token, d)
                    .await
            }
            // Signed by the certificate's key in Key Vault; its own errors and hints.
            (Mode::RolesAnywhere(_), _, _) => return self.mint_roles_anywhere(d).await,
            _ => unreachable!("read_source and web_identity_token follow the mode"),
        };
        result.map_err(|e| {
            let f = Failure::from_aws(Step::Mint, &e);
            match mint_hint(&s.mode, d, &e) {
                Some(h) => f.with_hint(h),
                None => f,
            }
        })
    }

    /// The new credentials work, and act as the role they were minted for.
    pub(super) async fn verify(
        &self,
        minted: &MintedCredentials,
    ) -> Result<CallerIdentity, Failure> {
        let caller = self
            .sts
            .caller_identity(&minted.credentials)
            .await
            .map_err(|e| {
                Failure::from_aws(Step::Verify, &e)
                    .with_hint("the new credentials did not work; nothing was published")
            })?;
        if let Some(role) = &minted.assumed_role_arn {
            if !role.is_empty() && caller.arn != *role {
                return Err(Failure::new(
                    Step::Verify,
                    Kind::Upstream,
                    "IdentityMismatch",
                    format!(
                        "the new credentials act as {} instead of {role}; nothing was published",
                        caller.arn
                    ),
                ));
            }
        }
        Ok(caller)
    }
}

/// Which side to fix, for the errors users actually meet.
fn mint_hint(mode: &Mode, duration: u64, e: &AwsError) -> Option<String> {
    let AwsError::Refused { code, message, .. } = e else {
        return None;
    };
    let source_settings = |s: &SourceKeys| s.settings;
    Some(match (code.as_str(), mode) {
        ("InvalidClientTokenId", _) => {
            let (id, _) = mode.source().map(source_settings).unwrap_or(("UsernameFromKeyVault", ""));
            format!("AWS does not know this access key id, or it is inactive: check {id} and the IAM user's keys")
        }
        ("SignatureDoesNotMatch", _) => {
            let (_, secret) = mode.source().map(source_settings).unwrap_or(("", "PasswordFromKeyVault"));
            format!("the secret access key does not belong to the access key id: check {secret}")
        }
        ("ValidationError", _) if message.contains("MaxSessionDuration") || message.contains("DurationSeconds") => format!(
            "SessionDurationSeconds ({duration}) is more than the role allows: lower it, or raise the role's MaxSessionDuration (the templates in infra/aws set 14400)"
        ),
        ("InvalidIdentityToken", _) | ("IDPRejectedClaim", _) | ("AccessDenied", Mode::WebIdentity { .. }) => {
            return crate::aws::web_identity::hint(e, "WebIdentityAudience", "shown by `stsbridge check`")
        }
        ("AccessDenied", Mode::AssumeRole { .. }) => "the role's trust policy must allow the IAM user, and the user needs sts:AssumeRole on the role (check RoleArn too)".into(),
        ("ExpiredToken" | "ExpiredTokenException", _) => "the token or key has expired".into(),
        _ => return None,
    })
}
