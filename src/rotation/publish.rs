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
        let results = futures::future::join_all(writes.into_iter().map(
            |(t, value, content_type)| async move {
                let r = self
                    .vaults
                    .set(
                        t,
                        NewVersion {
                            value,
                            content_type,
                            tags: set_tags,
                            expires: Some(credentials.expiration),
                        },
                    )
                    .await;
                (t.name.clone(), r)
            },
        ))
        .await;
        let mut versions = BTreeMap::new();
        let mut first_error: Option<VaultError> = None;
        let mut stale = vec![];
        for (name, r) in results {
            match r {
                Ok(v) => {
                    versions.insert(name, v);
                }
                Err(e) => {
                    stale.push(name);
                    first_error.get_or_insert(e);
                }
            }
        }
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
            let all = targets.all();
            let writes = all[1..]
                .iter()
                .zip(parts.iter())
                .filter(|(t, _)| stale.contains(&t.name))
                .map(|(t, (value, content_type))| {
                    let tags = &bundle.tags;
                    let expires = Some(credentials.expiration);
                    async move {
                        let r = self
                            .vaults
                            .set(
                                t,
                                NewVersion {
                                    value,
                                    content_type,
                                    tags,
                                    expires,
                                },
                            )
                            .await;
                        (t.name.clone(), r)
                    }
                });
            for (name, result) in futures::future::join_all(writes).await {
                match result {
                    Ok(v) => {
                        versions.insert(name.clone(), v);
                        repaired.push(name);
                    }
                    Err(e) => {
                        let mut f = Failure::from_vault(
                            Step::Publish,
                            "repairing the separate secrets",
                            &e,
                        );
                        f.published = repaired.clone();
                        f.stale = stale
                            .iter()
                            .filter(|s| !repaired.contains(s))
                            .cloned()
                            .collect();
                        return Err(f);
                    }
                }
            }
        }
        let mut report = self.report(false, reason, &credentials, versions, started, |_| {});
        report.repaired = repaired;
        Ok(report)
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
