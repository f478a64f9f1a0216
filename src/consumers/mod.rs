//! Consumers of the published bundle: what turns fresh credentials in Key Vault into credentials
//! a program can use, without glue code (seeds 002, 003, 004).
//!
//! Every consumer reads the bundle secret (`AwsSessionCredentials`, the one read that is always a
//! whole set) with the user's Azure identity, then formats it ([`export`]) or writes it into a
//! file ([`profile`], [`launch_settings`]) through [`files::write_private`]. Pure formatting and
//! editing are kept apart from I/O so they are unit-tested on text; [`targets`] holds the file
//! I/O, shared with `stsbridge sso login`, whose credentials come from IAM Identity Center.
//! [`endpoint`] keeps long-running programs fresh (the container credentials protocol) from any
//! [`source`]: the bundle, an SSO sign-in, [`web_identity`] federation without a vault, or
//! [`roles_anywhere`]: a Key Vault certificate's key signing IAM Roles Anywhere requests.

pub mod cache;
pub mod endpoint;
pub mod export;
pub mod files;
#[cfg(test)]
pub(crate) mod hostile;
pub mod launch_settings;
pub mod profile;
pub mod roles_anywhere;
pub mod source;
pub mod targets;
pub mod web_identity;

use std::collections::BTreeMap;

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use secrecy::ExposeSecret;
use serde::Serialize;
use url::Url;

use crate::azure::identity::AzureIdentity;
use crate::azure::keyvault::{client_options, http_client, VaultError, VaultOptions, Vaults};
use crate::azure::reference::SecretRef;
use crate::secrets::SessionCredentials;
use crate::tags;

/// Where the bundle is, and who reads it.
#[derive(Clone, Debug)]
pub struct BundleSource {
    pub secret: SecretRef,
    pub verify_challenge_resource: bool,
    pub identity: AzureIdentity,
}

impl BundleSource {
    pub fn new(
        vault: &str,
        secret: &str,
        verify_challenge_resource: bool,
        identity: AzureIdentity,
    ) -> anyhow::Result<Self> {
        let vault: Url = crate::azure::reference::parse_vault_url(vault)
            .map_err(|e| anyhow::anyhow!("--vault (KeyVaultUrl): {e}"))?;
        crate::azure::reference::check_secret_name(secret)
            .map_err(|e| anyhow::anyhow!("--secret: {e}"))?;
        if !verify_challenge_resource && !crate::net::is_loopback(&vault) {
            anyhow::bail!(
                "--verify-challenge-resource false (KeyVaultVerifyChallengeResource) is honoured only for a vault on this machine (127.0.0.0/8, ::1, localhost), and {} is not: remove it",
                crate::azure::reference::origin(&vault)
            );
        }
        Ok(Self {
            secret: SecretRef::new(&vault, secret),
            verify_challenge_resource,
            identity,
        })
    }

    fn vaults(&self) -> anyhow::Result<Vaults> {
        let options = VaultOptions {
            verify_challenge_resource: self.verify_challenge_resource,
            ..Default::default()
        };
        let http = http_client(options.request_timeout);
        let credential =
            crate::azure::identity::credential(&self.identity, client_options(&http, &options))?;
        Ok(Vaults::new(credential, options, http))
    }
}

/// The bundle as read: the credentials, and its metadata.
pub struct Fetched {
    pub credentials: SessionCredentials,
    pub version: String,
    pub tags: BTreeMap<String, String>,
}

fn explain(e: &VaultError, source: &BundleSource) -> anyhow::Error {
    let who = source.identity.describe();
    match e {
        VaultError::Refused { status: 404, .. } => anyhow::anyhow!(
            "no credentials are published at {} ({}): run a rotation first (HttpRotate?force=true or `stsbridge rotate`)",
            source.secret,
            e.code()
        ),
        VaultError::Refused { status: 403, .. } | VaultError::Refused { status: 401, .. } => anyhow::anyhow!(
            "Key Vault refused to let {who} read {} ({}): grant it get on this secret (Key Vault Secrets User)",
            source.secret,
            e.code()
        ),
        other => anyhow::anyhow!("{other} (as {who})"),
    }
}

/// Reads and parses the bundle.
pub async fn fetch(source: &BundleSource) -> anyhow::Result<Fetched> {
    let vaults = source.vaults()?;
    let stored = vaults
        .get(&source.secret)
        .await
        .map_err(|e| explain(&e, source))?;
    let credentials = SessionCredentials::from_process_json(stored.value.expose_secret())
        .with_context(|| format!("{} is not a credentials bundle", source.secret))?;
    Ok(Fetched {
        credentials,
        version: stored.version,
        tags: stored.tags,
    })
}

/// Refuses credentials that expire within `min_remaining` (some SDKs would use expired ones).
pub fn check_remaining(
    c: &SessionCredentials,
    min_remaining: chrono::Duration,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let left = c.expiration.signed_duration_since(now);
    if left < min_remaining {
        let when = c.expiration.to_rfc3339_opts(SecondsFormat::Secs, true);
        if left.num_seconds() <= 0 {
            anyhow::bail!("the published credentials expired at {when}: the rotation is not running (check TimerRotate's failures)");
        }
        anyhow::bail!(
            "the published credentials expire at {when}, in {} s, less than --min-remaining ({} s): rotate them (HttpRotate?force=true)",
            left.num_seconds(),
            min_remaining.num_seconds()
        );
    }
    Ok(())
}

/// What `stsbridge show` prints: never a secret.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Shown {
    pub secret: String,
    pub version: String,
    pub access_key_id: String,
    pub expiration: String,
    pub remaining_seconds: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minted_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_access_key_id: Option<String>,
    pub versions: Vec<ShownVersion>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShownVersion {
    pub version: String,
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// The bundle's metadata and its most recent versions.
pub async fn show(source: &BundleSource, now: DateTime<Utc>) -> anyhow::Result<Shown> {
    let fetched = fetch(source).await?;
    let versions = source
        .vaults()?
        .versions(&source.secret)
        .await
        .map_err(|e| explain(&e, source))?;
    let fmt = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let c = &fetched.credentials;
    Ok(Shown {
        secret: source.secret.to_string(),
        version: fetched.version,
        access_key_id: c.access_key_id.clone(),
        expiration: fmt(c.expiration),
        remaining_seconds: c.expiration.signed_duration_since(now).num_seconds(),
        minted_at: fetched.tags.get(tags::MINTED_AT).cloned(),
        mode: fetched.tags.get(tags::MODE).cloned(),
        role_arn: fetched.tags.get(tags::ROLE_ARN).cloned(),
        source_access_key_id: fetched.tags.get(tags::SOURCE_KEY_ID).cloned(),
        versions: versions
            .into_iter()
            .take(10)
            .map(|v| ShownVersion {
                version: v.version,
                enabled: v.enabled,
                created: v.created.map(fmt),
                expires: v.expires.map(fmt),
            })
            .collect(),
    })
}

/// Parses `300`, `300s`, `5m`, `1h` into a duration.
pub fn parse_duration(text: &str) -> Result<chrono::Duration, String> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&t[..i], t[i..].trim()),
        None => (t, "s"),
    };
    let n: i64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration like 300, 300s, 5m or 1h"))?;
    match unit {
        "s" | "sec" => Ok(chrono::Duration::seconds(n)),
        "m" | "min" => Ok(chrono::Duration::minutes(n)),
        "h" => Ok(chrono::Duration::hours(n)),
        _ => Err(format!(
            "'{text}' is not a duration like 300, 300s, 5m or 1h"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use secrecy::SecretString;

    fn creds(exp: DateTime<Utc>) -> SessionCredentials {
        SessionCredentials {
            access_key_id: "ASIA".into(),
            secret_access_key: SecretString::from("s".to_string()),
            session_token: SecretString::from("t".to_string()),
            expiration: exp,
        }
    }

    #[test]
    fn credentials_inside_the_margin_are_refused() {
        let now = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        let five = chrono::Duration::minutes(5);
        assert!(check_remaining(&creds(now + chrono::Duration::minutes(10)), five, now).is_ok());
        let soon =
            check_remaining(&creds(now + chrono::Duration::minutes(2)), five, now).unwrap_err();
        assert!(soon.to_string().contains("in 120 s"));
        let gone =
            check_remaining(&creds(now - chrono::Duration::minutes(1)), five, now).unwrap_err();
        assert!(gone.to_string().contains("expired"));
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(
            parse_duration("300").unwrap(),
            chrono::Duration::seconds(300)
        );
        assert_eq!(parse_duration("5m").unwrap(), chrono::Duration::minutes(5));
        assert_eq!(parse_duration("1h").unwrap(), chrono::Duration::hours(1));
        assert!(parse_duration("soon").is_err());
    }
}
