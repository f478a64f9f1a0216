//! Where the minted credentials are published: the bundle and seed 000's three secrets, each
//! named by its setting, none of them the IAM user's key.

use super::reader::Reader;
use super::{SourceKeys, SourceValue, Vault};
use crate::azure::reference::{check_secret_name, SecretRef};

/// Where the minted credentials are published.
#[derive(Clone, Debug)]
pub struct Targets {
    pub bundle: SecretRef,
    pub access_key_id: SecretRef,
    pub secret_access_key: SecretRef,
    pub session_token: SecretRef,
}

impl Targets {
    /// All four, bundle first.
    pub fn all(&self) -> [&SecretRef; 4] {
        [
            &self.bundle,
            &self.access_key_id,
            &self.secret_access_key,
            &self.session_token,
        ]
    }
}

/// The four published secrets.
pub(super) fn read_published(r: &mut Reader, vault: &Vault) -> Targets {
    let bundle_name = r
        .text("CredentialsBundleSecretName")
        .expect("the table has a default");
    if let Err(e) = check_secret_name(bundle_name) {
        r.error("CredentialsBundleSecretName", e);
    }
    Targets {
        bundle: SecretRef::new(&vault.home, bundle_name),
        access_key_id: r.published("AccessKeyIdFromKeyVault", &vault.home, &vault.suffix),
        secret_access_key: r.published("SecretAccessKeyFromKeyVault", &vault.home, &vault.suffix),
        session_token: r.published("SessionTokenFromKeyVault", &vault.home, &vault.suffix),
    }
}

pub(super) fn check_target_collisions(
    r: &mut Reader,
    targets: &Targets,
    source: Option<&SourceKeys>,
) {
    let names = [
        ("CredentialsBundleSecretName", &targets.bundle),
        ("AccessKeyIdFromKeyVault", &targets.access_key_id),
        ("SecretAccessKeyFromKeyVault", &targets.secret_access_key),
        ("SessionTokenFromKeyVault", &targets.session_token),
    ];
    for (i, (a_name, a)) in names.iter().enumerate() {
        for (b_name, b) in names.iter().skip(i + 1) {
            if a.same_secret(b) {
                r.error(b_name, format!("names the same secret as {a_name} ({b})"));
            }
        }
        if let Some(source) = source {
            for (s_name, s) in [
                (source.settings.0, &source.access_key_id),
                (source.settings.1, &source.secret_access_key),
            ] {
                if let SourceValue::KeyVault(s, _) = s {
                    if s.same_secret(a) {
                        r.error(a_name, format!("names the same secret as {s_name} ({a}): publishing would overwrite the IAM user's key"));
                    }
                }
            }
        }
    }
}
