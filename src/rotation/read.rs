//! **Read**: the IAM user's key (a plain setting, or Key Vault with its version and tags), the
//! four published secrets, and the Entra ID token of web-identity mode — each a few reads that
//! the orchestration runs concurrently.

use secrecy::{ExposeSecret, SecretString};

use super::{decide, source_key, Failure, Kind, Published, RotationService, Step};
use crate::azure::keyvault::{StoredSecret, VaultError, VaultOptions};
use crate::azure::reference::SecretRef;
use crate::secrets::AwsKeys;
use crate::settings::{Mode, Settings, SourceValue, Targets, WebIdentityCredential};
use crate::tags;

/// The published secrets as read.
pub(super) struct Current {
    pub(super) bundle: Option<StoredSecret>,
    pub(super) access_key_id: Option<StoredSecret>,
    pub(super) secret_access_key: Option<StoredSecret>,
    pub(super) session_token: Option<StoredSecret>,
}

impl Current {
    pub(super) fn bundle_published(&self) -> Option<Published> {
        self.bundle.as_ref().map(|b| Published {
            tags: b.tags.clone(),
            expires: b.expires,
            published_at: b.created,
        })
    }

    /// The separate secrets that do not hold the bundle's set `set_id` (compared by their
    /// `access-key-id` tag).
    pub(super) fn out_of_step(&self, set_id: &str, targets: &Targets) -> Vec<String> {
        decide::out_of_step(
            set_id,
            [
                (targets.access_key_id.name.as_str(), &self.access_key_id),
                (
                    targets.secret_access_key.name.as_str(),
                    &self.secret_access_key,
                ),
                (targets.session_token.name.as_str(), &self.session_token),
            ]
            .map(|(n, s)| {
                (
                    n,
                    s.as_ref()
                        .and_then(|s| s.tags.get(tags::ACCESS_KEY_ID))
                        .map(String::as_str),
                )
            }),
        )
    }

    /// The version of each secret that exists, by name.
    pub(super) fn versions(&self, targets: &Targets) -> std::collections::BTreeMap<String, String> {
        [
            (&targets.bundle, &self.bundle),
            (&targets.access_key_id, &self.access_key_id),
            (&targets.secret_access_key, &self.secret_access_key),
            (&targets.session_token, &self.session_token),
        ]
        .into_iter()
        .filter_map(|(t, s)| s.as_ref().map(|s| (t.name.clone(), s.version.clone())))
        .collect()
    }
}

impl RotationService {
    /// Reads the IAM user's key (both halves concurrently when they are in a vault).
    pub(super) async fn read_source(&self) -> Result<Option<source_key::SourceRead>, Failure> {
        let Some(source) = self.settings.mode.source() else {
            return Ok(None);
        };
        let (id, secret) = tokio::join!(
            self.resolve_stored(&source.access_key_id, source.settings.0),
            self.resolve_stored(&source.secret_access_key, source.settings.1),
        );
        let (id_value, id) = id?;
        let (secret_value, secret) = secret?;
        Ok(Some(source_key::SourceRead {
            keys: AwsKeys {
                access_key_id: id_value.expose_secret().trim().to_string(),
                secret_access_key: secret_value,
            },
            id,
            secret,
        }))
    }

    pub(super) async fn resolve(
        &self,
        value: &SourceValue,
        setting: &str,
    ) -> Result<SecretString, Failure> {
        self.resolve_stored(value, setting).await.map(|(v, _)| v)
    }

    /// A source value: as given, or read from Key Vault (then with its version and tags).
    pub(super) async fn resolve_stored(
        &self,
        value: &SourceValue,
        setting: &str,
    ) -> Result<(SecretString, Option<StoredSecret>), Failure> {
        let r = match value {
            SourceValue::Plain(v) => return Ok((v.clone(), None)),
            SourceValue::KeyVault(r, _) => r,
        };
        let stored = self.vaults.get(r).await.map_err(|e| {
            let f = Failure::from_vault(Step::ReadSource, &format!("reading {setting} ({r})"), &e);
            match &e {
                VaultError::Refused { status: 403, .. } => f.with_hint(
                    "grant the app's identity get on this secret (Key Vault Secrets User, or Secrets Officer for key rotation)",
                ),
                VaultError::Refused { status: 404, .. } => {
                    f.with_hint(format!("create the secret, or point {setting} at the right one"))
                }
                _ => f,
            }
        })?;
        if stored.value.expose_secret().trim().is_empty() {
            return Err(Failure::new(
                Step::ReadSource,
                Kind::Upstream,
                "EmptySecret",
                format!("{setting} ({r}) is empty"),
            ));
        }
        Ok((stored.value.clone(), Some(stored)))
    }

    /// Reads the four published secrets concurrently (missing ones are `None`).
    pub(super) async fn read_current(&self) -> Result<Current, Failure> {
        let t = &self.settings.targets;
        let (bundle, id, secret, token) = tokio::join!(
            self.vaults.get_optional(&t.bundle),
            self.vaults.get_optional(&t.access_key_id),
            self.vaults.get_optional(&t.secret_access_key),
            self.vaults.get_optional(&t.session_token),
        );
        let read = |r: Result<Option<StoredSecret>, VaultError>, what: &SecretRef| {
            r.map_err(|e| {
                Failure::from_vault(
                    Step::ReadCurrent,
                    &format!("reading the published {what}"),
                    &e,
                )
            })
        };
        Ok(Current {
            bundle: read(bundle, &t.bundle)?,
            access_key_id: read(id, &t.access_key_id)?,
            secret_access_key: read(secret, &t.secret_access_key)?,
            session_token: read(token, &t.session_token)?,
        })
    }

    /// The claims of the Entra ID token web-identity mode would send (never the token): what
    /// an IAM OIDC provider and a role's trust policy must match.
    pub async fn web_identity_claims(&self) -> Result<Option<serde_json::Value>, Failure> {
        let Some(token) = self.web_identity_token().await? else {
            return Ok(None);
        };
        Ok(Some(crate::aws::web_identity::claims(&token)))
    }

    /// The Entra ID token for web-identity mode.
    pub(super) async fn web_identity_token(&self) -> Result<Option<SecretString>, Failure> {
        let Mode::WebIdentity {
            audience,
            credential: kind,
            ..
        } = &self.settings.mode
        else {
            return Ok(None);
        };
        let scope = crate::aws::web_identity::scope(audience);
        let credential = match kind {
            WebIdentityCredential::ClientSecret {
                tenant_id,
                client_id,
                secret,
            } => {
                let secret = self.resolve(secret, "WebIdentityClientSecret").await?;
                let http = crate::azure::keyvault::http_client(std::time::Duration::from_secs(20));
                crate::azure::identity::client_secret_credential(
                    tenant_id,
                    client_id,
                    &secret,
                    crate::azure::keyvault::client_options(&http, &VaultOptions::default()),
                )
                .map_err(|e| {
                    Failure::new(
                        Step::Token,
                        Kind::Settings,
                        "CredentialError",
                        format!("{e:#}"),
                    )
                })?
            }
            _ => self
                .web_identity
                .clone()
                .expect("built for web-identity mode"),
        };
        let token = credential.get_token(&[scope.as_str()], None).await.map_err(|e| {
            let kind = match e.kind() {
                azure_core::error::ErrorKind::Connection | azure_core::error::ErrorKind::Io => Kind::Unreachable,
                _ => Kind::Upstream,
            };
            Failure::new(
                Step::Token,
                kind,
                "EntraTokenRefused",
                format!("getting an Entra ID token for {scope} ({}): {e}", kind_name(&self.settings)),
            )
            .with_hint("check WebIdentityAudience: the Entra ID application (Application ID URI or client id) must exist and the identity must be allowed to get tokens for it")
        })?;
        Ok(Some(SecretString::from(token.token.secret().to_string())))
    }
}

fn kind_name(settings: &Settings) -> &'static str {
    match &settings.mode {
        Mode::WebIdentity { credential, .. } => credential.name(),
        _ => "",
    }
}
