//! Federation without a vault (issue #19, part 3): seed 001's pattern run where the consumer is.
//! An Entra ID token for the machine's own Azure identity → `AssumeRoleWithWebIdentity` → a
//! credential set; no Key Vault, no rotator, nothing long-lived.
//!
//! The identity is chosen as everywhere else (`settings::azure_identity`): a managed identity,
//! workload identity, or a service principal. A developer's `az` login is refused: its token's
//! `sub` is the user (and the Azure CLI's app needs consent for a custom audience), so the trust
//! policy the docs give (`sub` = the identity's object id) would not match it.
//! The same validation (`RoleArn`'s shape, session names) and the same hints as the rotator's
//! web-identity mode ([`crate::aws::web_identity`]).

use std::sync::Arc;

use anyhow::Context;
use azure_core::credentials::TokenCredential;
use secrecy::SecretString;

use crate::aws::sts::Sts;
use crate::azure::identity::AzureIdentity;
use crate::azure::keyvault::{client_options, http_client, VaultOptions};
use crate::secrets::MintedCredentials;

/// What `--web-identity` needs, validated.
#[derive(Clone, Debug)]
pub struct WebIdentityRole {
    pub role_arn: String,
    pub audience: String,
    pub session_name: String,
    pub duration_secs: u64,
}

impl WebIdentityRole {
    /// Checks the flags; errors name the flag at fault.
    pub fn new(
        role_arn: Option<&str>,
        audience: Option<&str>,
        session_name: Option<&str>,
        duration_secs: u64,
    ) -> anyhow::Result<Self> {
        let role_arn = role_arn.context("--web-identity needs --role-arn: the IAM role whose trust policy accepts the identity's Entra ID tokens")?;
        anyhow::ensure!(
            crate::aws::names::is_role_arn(role_arn),
            "--role-arn: '{role_arn}' is not an IAM role ARN like arn:aws:iam::123456789012:role/NAME"
        );
        let audience = audience.map(str::trim).filter(|a| !a.is_empty()).context(
            "--web-identity needs --audience: the Application ID URI (or client id) the Entra ID token is issued for",
        )?;
        let session_name = match session_name {
            Some(name) => {
                anyhow::ensure!(
                    crate::aws::names::valid_session_name(name),
                    "--role-session-name: '{name}' must be 2-64 characters of letters, digits and +=,.@-_"
                );
                name.to_string()
            }
            None => {
                crate::aws::names::default_session_name(std::env::var("HOSTNAME").ok().as_deref())
            }
        };
        anyhow::ensure!(
            (900..=43_200).contains(&duration_secs),
            "--duration-seconds: {duration_secs} is outside what STS accepts for a role (900-43200)"
        );
        Ok(Self {
            role_arn: role_arn.to_string(),
            audience: audience.to_string(),
            session_name,
            duration_secs,
        })
    }

    /// The key of `credential-process --cache`'s file: one file per role and audience.
    pub fn cache_key(&self) -> String {
        format!("web-identity|{}|{}", self.role_arn, self.audience)
    }
}

/// Mints credentials for the role with the machine's Azure identity.
pub struct WebIdentitySource {
    pub role: WebIdentityRole,
    identity: AzureIdentity,
    credential: Arc<dyn TokenCredential>,
    sts: Sts,
}

impl WebIdentitySource {
    pub async fn new(role: WebIdentityRole, identity: AzureIdentity) -> anyhow::Result<Self> {
        if matches!(identity, AzureIdentity::Developer) {
            anyhow::bail!(
                "--web-identity needs the machine's own Azure identity: a managed identity (IDENTITY_ENDPOINT), workload identity (AZURE_FEDERATED_TOKEN_FILE) or a service principal (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET); none is set, and a developer's az login is not used because its token's sub is the user, which the role's trust policy does not name"
            );
        }
        let http = http_client(std::time::Duration::from_secs(20));
        let credential = crate::azure::identity::credential(
            &identity,
            client_options(&http, &VaultOptions::default()),
        )?;
        let region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
            .unwrap_or_else(|| "us-east-1".into());
        let endpoint = std::env::var("AWS_ENDPOINT_URL_STS")
            .ok()
            .filter(|v| !v.is_empty());
        if let Some(w) = endpoint
            .as_deref()
            .and_then(|e| crate::net::plain_http_warning("AWS_ENDPOINT_URL_STS", e))
        {
            tracing::warn!("{w}");
        }
        let sdk = crate::aws::sdk_config(
            &region,
            std::time::Duration::from_secs(10),
            std::time::Duration::from_secs(30),
        )
        .await;
        Ok(Self {
            role,
            identity,
            credential,
            sts: Sts::new(&sdk, endpoint.as_deref()),
        })
    }

    /// An Entra ID token, then `AssumeRoleWithWebIdentity`.
    pub async fn mint(&self) -> anyhow::Result<MintedCredentials> {
        let scope = crate::aws::web_identity::scope(&self.role.audience);
        let token = self
            .credential
            .get_token(&[scope.as_str()], None)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "getting an Entra ID token for {scope} as {}: {e}; check --audience: the Entra ID application (Application ID URI or client id) must exist and the identity must be allowed to get tokens for it",
                    self.identity.describe()
                )
            })?;
        let token = SecretString::from(token.token.secret().to_string());
        self.sts
            .assume_role_with_web_identity(
                &self.role.role_arn,
                &self.role.session_name,
                &token,
                self.role.duration_secs,
            )
            .await
            .map_err(|e| {
                let claims = crate::aws::web_identity::claims(&token);
                let seen = format!(
                    "the token has iss {}, aud {}, sub {}",
                    claims["iss"], claims["aud"], claims["sub"]
                );
                match crate::aws::web_identity::hint(&e, "--audience", &seen) {
                    Some(h) => anyhow::anyhow!("{e}: {h}"),
                    None => anyhow::anyhow!("{e}"),
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = "arn:aws:iam::123456789012:role/reader";

    #[test]
    fn each_missing_or_bad_flag_is_named() {
        let e = |r: Option<&str>, a: Option<&str>, s: Option<&str>, d| {
            WebIdentityRole::new(r, a, s, d).unwrap_err().to_string()
        };
        assert!(e(None, Some("api://x"), None, 3600).contains("--role-arn"));
        assert!(
            e(Some("arn:aws:iam::1:user/x"), Some("api://x"), None, 3600).contains("--role-arn")
        );
        assert!(e(Some(ROLE), None, None, 3600).contains("--audience"));
        assert!(e(Some(ROLE), Some("api://x"), Some("a b"), 3600).contains("--role-session-name"));
        assert!(e(Some(ROLE), Some("api://x"), None, 60).contains("--duration-seconds"));
        let ok = WebIdentityRole::new(Some(ROLE), Some("api://x"), None, 3600).unwrap();
        assert_eq!(ok.cache_key(), format!("web-identity|{ROLE}|api://x"));
    }
}
