//! `--roles-anywhere` (issue #31): the rotator's roles-anywhere mode run where the consumer is —
//! a developer's machine, a VM, a container. The caller's own Azure identity (any: a developer's
//! `az` login works, since AWS trusts the certificate, not the Azure identity) asks Key Vault to
//! sign with the certificate's key (it needs only `sign` on the key and `get` on the
//! certificate), and Roles Anywhere answers with a set. No AWS secret, no rotator, nothing
//! long-lived on the machine. The minting is the rotator's own ([`crate::roles_anywhere`]); the
//! flags are validated as the app settings are, each error naming its flag.

use std::sync::Arc;

use anyhow::Context;
use url::Url;

use crate::azure::identity::AzureIdentity;
use crate::azure::keyvault::{client_options, http_client, VaultOptions, Vaults};
use crate::azure::reference::{looks_like_reference, parse_certificate, parse_reference};
use crate::roles_anywhere::RolesAnywhereMinter;
use crate::secrets::MintedCredentials;
use crate::settings::{ChainSource, RoleSettings, RolesAnywhereSettings};

/// What `--roles-anywhere` was given.
pub struct RolesAnywhereFlags<'a> {
    pub role_arn: Option<&'a str>,
    pub trust_anchor_arn: Option<&'a str>,
    pub profile_arn: Option<&'a str>,
    pub certificate: Option<&'a str>,
    /// `--vault`: where a certificate given by name is.
    pub vault: Option<&'a str>,
    pub chain: &'a str,
    pub role_session_name: Option<&'a str>,
    pub duration_secs: u64,
}

/// Checks the flags (errors name the flag at fault) into the rotator's settings.
pub fn settings(flags: &RolesAnywhereFlags<'_>) -> anyhow::Result<RolesAnywhereSettings> {
    let role_arn = flags.role_arn.context(
        "--roles-anywhere needs --role-arn: the IAM role the profile lets the certificate assume",
    )?;
    anyhow::ensure!(
        crate::aws::names::is_role_arn(role_arn),
        "--role-arn: '{role_arn}' is not an IAM role ARN like arn:aws:iam::123456789012:role/NAME"
    );
    let arn = |value: Option<&str>, flag: &str, kind: &str| -> anyhow::Result<(String, String)> {
        let v = value.with_context(|| {
            format!("--roles-anywhere needs {flag}: the Roles Anywhere {kind} ARN")
        })?;
        let region = crate::aws::names::rolesanywhere_arn_region(v, kind).with_context(|| {
            format!("{flag}: '{v}' is not a Roles Anywhere {kind} ARN like arn:aws:rolesanywhere:REGION:123456789012:{kind}/ID")
        })?;
        Ok((v.to_string(), region.to_string()))
    };
    let (trust_anchor_arn, region) =
        arn(flags.trust_anchor_arn, "--trust-anchor-arn", "trust-anchor")?;
    let (profile_arn, profile_region) = arn(flags.profile_arn, "--profile-arn", "profile")?;
    anyhow::ensure!(
        region == profile_region,
        "--profile-arn is in {profile_region} but --trust-anchor-arn is in {region}: Roles Anywhere needs both in one region"
    );
    let certificate = flags
        .certificate
        .context("--roles-anywhere needs --certificate: the Key Vault certificate whose key signs (a name in --vault's vault, or https://VAULT/certificates/NAME)")?;
    let home = match flags.vault.filter(|v| !v.is_empty()) {
        Some(v) => crate::azure::reference::parse_vault_url(v)
            .map_err(|e| anyhow::anyhow!("--vault (KeyVaultUrl): {e}"))?,
        // Only a certificate URI can do without it.
        None => Url::parse("https://vault-not-given.invalid").expect("static URL"),
    };
    let certificate =
        parse_certificate(certificate, &home).map_err(|e| anyhow::anyhow!("--certificate: {e}"))?;
    anyhow::ensure!(
        certificate.vault.host_str() != Some("vault-not-given.invalid"),
        "--certificate names a certificate by name: give --vault (KeyVaultUrl), or its URI https://VAULT/certificates/NAME"
    );
    let chain = match flags.chain {
        c if c.eq_ignore_ascii_case("certificate") => ChainSource::CertificateSecret,
        c if c.eq_ignore_ascii_case("none") => ChainSource::None,
        c if looks_like_reference(c) => ChainSource::Secret(
            parse_reference(c, Some(&certificate.vault), crate::azure::reference::PUBLIC_CLOUD_VAULT_SUFFIX)
                .map_err(|e| anyhow::anyhow!("--chain: {e}"))?
                .0,
        ),
        other => anyhow::bail!("--chain: '{other}' is not `certificate`, `none`, or a Key Vault secret URI holding the intermediates in PEM"),
    };
    if let Some(name) = flags.role_session_name {
        anyhow::ensure!(
            crate::aws::names::valid_session_name(name),
            "--role-session-name: '{name}' must be 2-64 characters of letters, digits and +=,.@-_"
        );
    }
    anyhow::ensure!(
        (900..=43_200).contains(&flags.duration_secs),
        "--duration-seconds: {} is outside what Roles Anywhere accepts (900-43200, up to the profile's DurationSeconds)",
        flags.duration_secs
    );
    let endpoint = match std::env::var("AWS_ENDPOINT_URL_ROLESANYWHERE")
        .ok()
        .filter(|v| !v.is_empty())
    {
        Some(e) => {
            if let Some(w) = crate::net::plain_http_warning("AWS_ENDPOINT_URL_ROLESANYWHERE", &e) {
                tracing::warn!("{w}");
            }
            Url::parse(&e).context("AWS_ENDPOINT_URL_ROLESANYWHERE is not a URL")?
        }
        None => Url::parse(&format!("https://rolesanywhere.{region}.amazonaws.com"))?,
    };
    Ok(RolesAnywhereSettings {
        role: RoleSettings {
            arn: role_arn.to_string(),
            session_name: flags.role_session_name.unwrap_or_default().to_string(),
        },
        role_session_name: flags.role_session_name.map(str::to_string),
        trust_anchor_arn,
        profile_arn,
        region,
        certificate,
        chain,
        endpoint,
    })
}

/// Mints sets with the certificate's key, as the caller's Azure identity.
pub struct RolesAnywhereSource {
    minter: RolesAnywhereMinter,
    pub duration_secs: u64,
}

impl RolesAnywhereSource {
    pub fn new(
        settings: RolesAnywhereSettings,
        duration_secs: u64,
        identity: AzureIdentity,
        verify_challenge_resource: bool,
    ) -> anyhow::Result<Self> {
        let options = VaultOptions {
            verify_challenge_resource,
            ..Default::default()
        };
        let http = http_client(options.request_timeout);
        let credential =
            crate::azure::identity::credential(&identity, client_options(&http, &options))?;
        let vaults = Arc::new(Vaults::new(credential, options, http.clone()));
        Ok(Self {
            minter: RolesAnywhereMinter::new(vaults, http, settings),
            duration_secs,
        })
    }

    pub fn settings(&self) -> &RolesAnywhereSettings {
        &self.minter.settings
    }

    /// The key of `credential-process --cache`'s file: one per role, profile and certificate.
    pub fn cache_key(&self) -> String {
        let s = self.settings();
        format!(
            "roles-anywhere|{}|{}|{}",
            s.role.arn, s.profile_arn, s.certificate
        )
    }

    /// A Key Vault signature, then `CreateSession`.
    pub async fn mint(&self) -> anyhow::Result<MintedCredentials> {
        self.minter
            .mint(self.duration_secs)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = "arn:aws:iam::123456789012:role/reader";
    const ANCHOR: &str = "arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/ta1";
    const PROFILE: &str = "arn:aws:rolesanywhere:eu-west-1:123456789012:profile/p1";

    fn flags() -> RolesAnywhereFlags<'static> {
        RolesAnywhereFlags {
            role_arn: Some(ROLE),
            trust_anchor_arn: Some(ANCHOR),
            profile_arn: Some(PROFILE),
            certificate: Some("workload-cert"),
            vault: Some("https://kv.vault.azure.net"),
            chain: "certificate",
            role_session_name: None,
            duration_secs: 3600,
        }
    }

    #[test]
    fn each_missing_or_bad_flag_is_named() {
        let e = |f: RolesAnywhereFlags<'static>| settings(&f).unwrap_err().to_string();
        assert!(e(RolesAnywhereFlags {
            role_arn: None,
            ..flags()
        })
        .contains("--role-arn"));
        assert!(e(RolesAnywhereFlags {
            trust_anchor_arn: Some(PROFILE),
            ..flags()
        })
        .contains("--trust-anchor-arn"));
        assert!(e(RolesAnywhereFlags {
            profile_arn: Some("arn:aws:rolesanywhere:us-east-1:123456789012:profile/p1"),
            ..flags()
        })
        .contains("one region"));
        assert!(e(RolesAnywhereFlags {
            certificate: None,
            ..flags()
        })
        .contains("--certificate"));
        assert!(e(RolesAnywhereFlags {
            vault: None,
            ..flags()
        })
        .contains("--vault"));
        assert!(e(RolesAnywhereFlags {
            chain: "pkcs12",
            ..flags()
        })
        .contains("--chain"));
        assert!(e(RolesAnywhereFlags {
            duration_secs: 60,
            ..flags()
        })
        .contains("--duration-seconds"));
        let ok = settings(&flags()).unwrap();
        assert_eq!(ok.region, "eu-west-1");
        assert_eq!(
            ok.certificate.to_string(),
            "https://kv.vault.azure.net/certificates/workload-cert"
        );
        let by_uri = settings(&RolesAnywhereFlags {
            certificate: Some("https://other.vault.azure.net/certificates/c"),
            vault: None,
            ..flags()
        })
        .unwrap();
        assert_eq!(
            by_uri.certificate.vault_origin(),
            "https://other.vault.azure.net"
        );
    }
}
