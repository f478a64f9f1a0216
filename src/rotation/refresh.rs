//! Azure consumers' refresh (issue #18): after a run publishes (a mint, or a repair of the
//! separate secrets), the App Service / Function Apps of `RefreshAppSettingsOf` are asked to
//! re-resolve their Key Vault references, which they otherwise re-read only every 24 hours, and
//! each reference's status is read back so that a consumer whose own identity cannot read the
//! vault is named.
//!
//! Side work, never harmful: it starts after the answer, for every app at once, bounded by a
//! quarter of the rotation budget; a refusal (403, 404, 429, a timeout) is a warning naming the
//! app and ARM's code, kept for `GET HttpRotate` and shown in the next report. It is scheduled
//! per [`Fleet`] run, after every selected target has finished, so an app listed by several
//! targets is refreshed once, and sees all of their new sets.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;

use super::fleet::{Fleet, TargetOutcome};
use super::side::SideWork;
use super::RotationService;
use crate::azure::arm::{AppId, Arm};

/// The apps a run's outcomes call for, each with the targets that list it.
pub fn apps_to_refresh(
    selected: &[Arc<RotationService>],
    outcomes: &[TargetOutcome],
) -> BTreeMap<String, (AppId, Vec<Arc<RotationService>>)> {
    let mut apps: BTreeMap<String, (AppId, Vec<Arc<RotationService>>)> = BTreeMap::new();
    for (service, t) in selected.iter().zip(outcomes) {
        let published = matches!(t.outcome.as_ref(), Ok(r) if r.rotated || !r.repaired.is_empty());
        if !published {
            continue;
        }
        for app in &service.settings.refresh_apps {
            apps.entry(app.key())
                .or_insert_with(|| (app.clone(), vec![]))
                .1
                .push(service.clone());
        }
    }
    apps
}

/// Refreshes one app and reads its references' status: actions and warnings.
async fn refresh_one(
    arm: &Arm,
    app: &AppId,
    bound: std::time::Duration,
) -> (Vec<String>, Vec<String>) {
    let name = app.short();
    if let Err(e) = arm.refresh(app, bound).await {
        return (
            vec![],
            vec![format!(
                "could not refresh the Key Vault references of app {name} ({}): {e}",
                e.code()
            )],
        );
    }
    match arm.references(app, bound).await {
        Ok(refs) => {
            let resolved = refs.iter().filter(|r| r.status == "Resolved").count();
            let mut warnings = vec![];
            for r in refs.iter().filter(|r| r.status != "Resolved") {
                let why = match r.status.as_str() {
                    "AccessToKeyVaultDenied" => ": the app's own identity cannot read the vault (grant it Key Vault Secrets User on the secret)",
                    "SecretNotFound" | "SecretVersionNotFound" => ": the reference names a secret that does not exist",
                    _ => "",
                };
                warnings.push(format!(
                    "app {name}: the Key Vault reference of setting {} is {}{why}",
                    r.setting, r.status
                ));
            }
            (
                vec![format!(
                    "refreshed the Key Vault references of app {name}: {resolved} of {} resolved",
                    refs.len()
                )],
                warnings,
            )
        }
        Err(e) => (
            vec![format!("refreshed the Key Vault references of app {name}")],
            vec![format!(
                "app {name}: could not read what its Key Vault references resolved to ({}): {e}",
                e.code()
            )],
        ),
    }
}

impl Fleet {
    /// Starts the refresh of the apps a run's outcomes call for (see the module docs).
    pub(super) fn spawn_refresh(
        &self,
        selected: &[Arc<RotationService>],
        outcomes: &[TargetOutcome],
    ) {
        let apps = apps_to_refresh(selected, outcomes);
        let (Some(arm), false) = (self.arm.clone(), apps.is_empty()) else {
            return;
        };
        let bound = self.services[0].side_budget();
        let task = tokio::spawn(async move {
            let jobs = apps.into_values().map(|(app, services)| {
                let arm = arm.clone();
                async move {
                    let done = tokio::time::timeout(bound, refresh_one(&arm, &app, bound))
                        .await
                        .unwrap_or_else(|_| {
                            (
                                vec![],
                                vec![format!(
                                    "the refresh of app {} did not finish within {} s",
                                    app.short(),
                                    bound.as_secs()
                                )],
                            )
                        });
                    (done, services)
                }
            });
            let results: Vec<_> = futures::stream::iter(jobs)
                .buffer_unordered(16)
                .collect()
                .await;
            // Each target that lists an app gets its outcome.
            let mut per_target: Vec<(Arc<RotationService>, SideWork)> = vec![];
            for ((actions, warnings), services) in results {
                for service in services {
                    for a in &actions {
                        tracing::info!("consumer refresh: {a}");
                    }
                    for w in &warnings {
                        tracing::warn!("consumer refresh: {w}");
                    }
                    match per_target
                        .iter_mut()
                        .find(|(s, _)| Arc::ptr_eq(s, &service))
                    {
                        Some((_, side)) => {
                            side.actions.extend(actions.iter().cloned());
                            side.warnings.extend(warnings.iter().cloned());
                        }
                        None => per_target.push((
                            service,
                            SideWork {
                                finished_at: String::new(),
                                actions: actions.clone(),
                                warnings: warnings.clone(),
                            },
                        )),
                    }
                }
            }
            for (service, side) in per_target {
                service.record_refresh(side);
            }
        });
        let mut running = self.side.lock().expect("no panics while held");
        running.retain(|t| !t.is_finished());
        running.push(task);
    }
}
