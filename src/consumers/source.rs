//! Where `serve-credentials` and `exec` get a credential set: the published bundle (Key Vault),
//! the developer's IAM Identity Center sign-in (`--aws-profile`), federation without a vault
//! (`--web-identity`), or IAM Roles Anywhere with a Key Vault certificate's key
//! (`--roles-anywhere`). Each answers the same [`Fresh`]; the endpoint ([`super::endpoint`]) only
//! asks how often to come back ([`Source::polls`]).
//!
//! An enum and not a trait: the four are all there is, and the endpoint holds exactly one.

use chrono::{DateTime, Utc};

use super::web_identity::WebIdentitySource;
use super::BundleSource;
use crate::secrets::SessionCredentials;
use crate::sso;

/// A credential set as one source handed it out.
pub struct Fresh {
    pub credentials: SessionCredentials,
    /// The bundle's Key Vault version (to log a change); `None` for minted sets.
    pub version: Option<String>,
    /// The AWS account, when the source knows it (the container protocol's optional `AccountId`).
    pub account_id: Option<String>,
}

/// IAM Identity Center: the cached sign-in (refreshed silently while it can be), never a prompt.
pub struct SsoSource {
    pub settings: sso::config::SsoSettings,
    pub cache: sso::cache::Cache,
    pub oidc: sso::client::Oidc,
    pub portal: sso::client::Portal,
}

pub enum Source {
    Bundle(BundleSource),
    Sso(Box<SsoSource>),
    WebIdentity(Box<WebIdentitySource>),
    /// `--roles-anywhere`: a Key Vault certificate's key signs Roles Anywhere's `CreateSession`.
    RolesAnywhere(Box<super::roles_anywhere::RolesAnywhereSource>),
}

/// The account of an ARN (`arn:aws:iam::123456789012:role/x` → `123456789012`).
fn account_of(arn: &str) -> Option<String> {
    arn.split(':')
        .nth(4)
        .filter(|a| a.len() == 12 && a.chars().all(|c| c.is_ascii_digit()))
        .map(str::to_string)
}

impl Source {
    /// Reads (bundle) or mints (SSO, web identity) a set. Errors say what to do, never a secret.
    pub async fn fetch(&self) -> anyhow::Result<Fresh> {
        match self {
            Source::Bundle(b) => {
                let fetched = super::fetch(b).await?;
                Ok(Fresh {
                    account_id: fetched
                        .tags
                        .get(crate::tags::ROLE_ARN)
                        .and_then(|a| account_of(a)),
                    credentials: fetched.credentials,
                    version: Some(fetched.version),
                })
            }
            Source::Sso(s) => {
                let ui = sso::prompt::Terminal { browser: None };
                let signer = sso::login::Signer {
                    settings: &s.settings,
                    cache: &s.cache,
                    oidc: &s.oidc,
                    clock: &sso::poll::SystemClock,
                    ui: &ui,
                };
                let credentials = sso::login::credentials(&signer, &s.portal).await?;
                Ok(Fresh {
                    credentials,
                    version: None,
                    account_id: s.settings.account_id.clone(),
                })
            }
            Source::WebIdentity(w) => {
                let minted = w.mint().await?;
                Ok(Fresh {
                    account_id: minted.assumed_role_arn.as_deref().and_then(account_of),
                    credentials: minted.credentials,
                    version: None,
                })
            }
            Source::RolesAnywhere(r) => {
                let minted = r.mint().await?;
                Ok(Fresh {
                    account_id: minted
                        .assumed_role_arn
                        .as_deref()
                        .and_then(account_of)
                        .or_else(|| account_of(&r.settings().role.arn)),
                    credentials: minted.credentials,
                    version: None,
                })
            }
        }
    }

    /// Whether a newer set can appear at any time (a rotation or a revocation publishes one), so
    /// the source is polled; minted sets are only renewed before they expire.
    pub fn polls(&self) -> bool {
        matches!(self, Source::Bundle(_))
    }

    /// For the notes on stderr.
    pub fn describe(&self) -> String {
        match self {
            Source::Bundle(b) => format!("the bundle {}", b.secret),
            Source::Sso(s) => match s.settings.role() {
                Ok((account, role)) => {
                    format!("IAM Identity Center role {role} in account {account}")
                }
                Err(_) => "IAM Identity Center".into(),
            },
            Source::WebIdentity(w) => format!(
                "role {} through web identity (audience {})",
                w.role.role_arn, w.role.audience
            ),
            Source::RolesAnywhere(r) => format!(
                "role {} through Roles Anywhere (certificate {})",
                r.settings().role.arn,
                r.settings().certificate
            ),
        }
    }

    /// What to do once the cached set has expired and no fresh one came (the 503's advice).
    pub fn when_expired(&self, expiration: DateTime<Utc>) -> String {
        let when = expiration.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        match self {
            Source::Bundle(_) => format!("the published credentials expired at {when}: the rotation is not running (check TimerRotate's failures)"),
            Source::Sso(s) => format!("the IAM Identity Center credentials expired at {when} and the sign-in can no longer be refreshed: run `{}`", s.settings.login_hint()),
            Source::WebIdentity(_) | Source::RolesAnywhere(_) => format!("the credentials expired at {when} and no new ones could be minted"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_is_read_from_an_arn_only_when_it_is_one() {
        assert_eq!(
            account_of("arn:aws:iam::123456789012:role/x").as_deref(),
            Some("123456789012")
        );
        assert_eq!(account_of("arn:aws:iam::12:role/x"), None);
        assert_eq!(account_of("nonsense"), None);
    }
}
