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
        let targets = &self.settings.targets;
        let mut versions = current.versions(targets);
        let done = self.repair_from(&current).await?;
        versions.extend(done.written);
        if let Some(e) = done.error {
            let mut f = Failure::from_vault(Step::Publish, "repairing the separate secrets", &e);
            f.published = done.repaired;
            f.stale = done.still_stale;
            return Err(f);
        }
        let minted_at = current.bundle_published().and_then(|b| b.minted_at());
        let mut report = self.report(false, reason, &done.credentials, versions, started, |r| {
            r.minted_at = minted_at;
        });
        report.repaired = done.repaired;
        Ok(report)
    }

    /// After a publish made without the rotation lease (storage unreachable, or none
    /// configured), another instance may have published at the same moment, and the writes of
    /// the two publishes interleaved: the bundle is always one whole set, but the three separate
    /// secrets may then hold parts of both. Side work (issue #25): re-read all four and repair the
    /// separate ones from the latest bundle, whoever published it. The last of such publishers to
    /// finish its writes reads the final state, so the secrets agree again within the run.
    pub(super) async fn reconcile(&self) -> (Vec<String>, Vec<String>) {
        let current = match self.read_current().await {
            Ok(c) if c.bundle.is_some() => c,
            Ok(_) => return Default::default(),
            Err(f) => {
                return (
                    vec![],
                    vec![format!(
                        "could not re-read the published secrets after a publish without the rotation lease ({}); the next run repairs any that disagree with the bundle",
                        f.message
                    )],
                )
            }
        };
        match self.repair_from(&current).await {
            Ok(done) if done.repaired.is_empty() && done.error.is_none() => Default::default(),
            Ok(done) => {
                let mut actions = vec![];
                if !done.repaired.is_empty() {
                    actions.push(format!(
                        "repaired {} from the latest bundle (set {}): another publish without the rotation lease had interleaved with this one",
                        done.repaired.join(", "),
                        done.credentials.access_key_id
                    ));
                }
                let warnings = done
                    .error
                    .map(|e| {
                        vec![format!(
                            "could not repair {} after a publish without the rotation lease ({e}); the next run repairs them",
                            done.still_stale.join(", ")
                        )]
                    })
                    .unwrap_or_default();
                (actions, warnings)
            }
            Err(f) => (vec![], vec![f.message]),
        }
    }

    /// Writes the separate secrets that do not hold the bundle's set, from the bundle, with the
    /// bundle's tags and its expiry exactly.
    async fn repair_from(&self, current: &Current) -> Result<Repair, Failure> {
        let bundle = current.bundle.as_ref().expect("a repair needs a bundle");
        let credentials = SessionCredentials::from_process_json(bundle.value.expose_secret())
            .map_err(|e| {
                Failure::new(
                    Step::ReadCurrent,
                    Kind::Upstream,
                    "MalformedBundle",
                    format!("{}: {e}", self.settings.targets.bundle),
                )
            })?;
        let targets = &self.settings.targets;
        let stale = current.out_of_step(&credentials.access_key_id, targets);
        if stale.is_empty() {
            return Ok(Repair {
                credentials,
                repaired: vec![],
                written: BTreeMap::new(),
                still_stale: vec![],
                error: None,
            });
        }
        let parts = separate_values(&credentials);
        let writes: Vec<(&SecretRef, &SecretString, &str)> = targets.all()[1..]
            .iter()
            .zip(parts.iter())
            .filter(|(t, _)| stale.contains(&t.name))
            .map(|(t, (value, content_type))| (*t, value, *content_type))
            .collect();
        let (written, still_stale, error) =
            self.write_all(writes, &bundle.tags, &credentials).await;
        Ok(Repair {
            repaired: written.keys().cloned().collect(),
            written,
            still_stale,
            error,
            credentials,
        })
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

/// What [`RotationService::repair_from`] did.
struct Repair {
    /// The bundle's set (the repair's source).
    credentials: SessionCredentials,
    /// The secrets written, and their new versions.
    repaired: Vec<String>,
    written: BTreeMap<String, String>,
    /// The secrets that still do not hold the set, and why.
    still_stale: Vec<String>,
    error: Option<VaultError>,
}
