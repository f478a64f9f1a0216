//! **Publish** a verified set — the bundle and the three separate secrets, concurrently, each with
//! the STS expiry — or, when the set is fresh, **repair** separate secrets that are out of step
//! with the bundle. A write that fails says which secrets hold the new set and which do not.

use std::collections::BTreeMap;
use std::time::Instant;

use secrecy::{ExposeSecret, SecretString};

use super::read::Current;
use super::{Failure, Kind, Report, RotationService, Step};
use crate::azure::keyvault::{NewVersion, VaultError};
use crate::azure::reference::SecretRef;
use crate::secrets::SessionCredentials;

impl RotationService {
    /// Writes the bundle and the three separate secrets concurrently.
    pub(super) async fn publish(
        &self,
        credentials: &SessionCredentials,
        set_tags: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, Failure> {
        let targets = &self.settings.targets;
        let bundle_value = credentials.to_process_json();
        let parts = separate_values(credentials);
        let mut writes: Vec<(&SecretRef, &SecretString, &str)> =
            vec![(&targets.bundle, &bundle_value, "application/json")];
        for (t, (v, ct)) in targets.all()[1..].iter().zip(parts.iter()) {
            writes.push((t, v, ct));
        }
        let (versions, stale, first_error) = self.write_all(writes, set_tags, credentials).await;
        if let Some(e) = first_error {
            let mut f = Failure::from_vault(Step::Publish, "publishing the new credentials", &e);
            f.published = versions.keys().cloned().collect();
            f.stale = stale;
            f.hint = Some(if f.stale.contains(&targets.bundle.name) {
                "the bundle still holds the previous set, which is whole and valid until it expires; the next run publishes a new one".into()
            } else {
                "the bundle holds the new set; the next run repairs the separate secrets from it"
                    .into()
            });
            return Err(f);
        }
        Ok(versions)
    }

    /// An unforced run that found the set fresh: repairs out-of-step secrets from the bundle.
    pub(super) async fn repair(
        &self,
        reason: String,
        current: Current,
        started: Instant,
    ) -> Result<Report, Failure> {
        let bundle = current.bundle.as_ref().expect("fresh implies a bundle");
        let credentials = SessionCredentials::from_process_json(bundle.value.expose_secret())
            .map_err(|e| {
                Failure::new(
                    Step::ReadCurrent,
                    Kind::Upstream,
                    "MalformedBundle",
                    format!("{}: {e}", self.settings.targets.bundle),
                )
            })?;
        let set_id = credentials.access_key_id.clone();
        let targets = &self.settings.targets;
        let stale = current.out_of_step(&set_id, targets);
        let mut versions = current.versions(targets);
        let mut repaired = vec![];
        if !stale.is_empty() {
            let parts = separate_values(&credentials);
            let writes: Vec<(&SecretRef, &SecretString, &str)> = targets.all()[1..]
                .iter()
                .zip(parts.iter())
                .filter(|(t, _)| stale.contains(&t.name))
                .map(|(t, (value, content_type))| (*t, value, *content_type))
                .collect();
            let (written, still_stale, first_error) =
                self.write_all(writes, &bundle.tags, &credentials).await;
            repaired = written.keys().cloned().collect();
            versions.extend(written);
            if let Some(e) = first_error {
                let mut f =
                    Failure::from_vault(Step::Publish, "repairing the separate secrets", &e);
                f.published = repaired;
                f.stale = still_stale;
                return Err(f);
            }
        }
        let minted_at = current.bundle_published().and_then(|b| b.minted_at());
        let mut report = self.report(false, reason, &credentials, versions, started, |r| {
            r.minted_at = minted_at;
        });
        report.repaired = repaired;
        Ok(report)
    }

    /// Writes secrets concurrently, each with the set's tags and expiry: the versions written
    /// (by name), the names not written, and the first error.
    async fn write_all(
        &self,
        writes: Vec<(&SecretRef, &SecretString, &str)>,
        tags: &BTreeMap<String, String>,
        credentials: &SessionCredentials,
    ) -> (BTreeMap<String, String>, Vec<String>, Option<VaultError>) {
        let results = futures::future::join_all(writes.into_iter().map(
            |(t, value, content_type)| async move {
                let new = NewVersion {
                    value,
                    content_type,
                    tags,
                    expires: Some(credentials.expiration),
                };
                (t.name.clone(), self.vaults.set(t, new).await)
            },
        ))
        .await;
        let mut versions = BTreeMap::new();
        let mut first_error = None;
        let mut failed = vec![];
        for (name, r) in results {
            match r {
                Ok(v) => {
                    versions.insert(name, v);
                }
                Err(e) => {
                    failed.push(name);
                    first_error.get_or_insert(e);
                }
            }
        }
        (versions, failed, first_error)
    }
}

/// The values of the three separate secrets (seed 000's), with their content types.
fn separate_values(c: &SessionCredentials) -> [(SecretString, &'static str); 3] {
    [
        (SecretString::from(c.access_key_id.clone()), "text/plain"),
        (c.secret_access_key.clone(), "text/plain"),
        (c.session_token.clone(), "text/plain"),
    ]
}
