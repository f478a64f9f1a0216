//! Every target of the app (issue #10): one [`RotationService`] per target on shared clients,
//! rotated concurrently within `MaxConcurrentTargets`. Freshness and single flight stay per
//! target (each service has its own); one target failing never stops the others.

use std::sync::Arc;

use futures::StreamExt;
use serde_json::{json, Value};

use super::{Clients, Failure, Outcome, Request, RotationService, State};
use crate::targets::TargetsConfig;

pub struct Fleet {
    /// No targets file: answers keep the single-target shape.
    pub implicit: bool,
    pub services: Vec<Arc<RotationService>>,
    pub max_concurrent: usize,
    pub warnings: Vec<String>,
    /// Resource Manager, when some target lists apps to refresh.
    pub(super) arm: Option<Arc<crate::azure::arm::Arm>>,
    /// Consumer refreshes in flight.
    pub(super) side: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// One target's outcome.
pub struct TargetOutcome {
    pub name: String,
    pub outcome: Outcome,
}

impl Fleet {
    /// Builds every target's service. Makes no network call.
    pub async fn new(config: TargetsConfig) -> anyhow::Result<Self> {
        let first = config
            .targets
            .first()
            .ok_or_else(|| anyhow::anyhow!("no targets"))?;
        let clients = Clients::new(first, config.writes_per_10s)?;
        let mut services = Vec::with_capacity(config.targets.len());
        for settings in config.targets {
            services.push(Arc::new(
                RotationService::with_clients(settings, &clients).await?,
            ));
        }
        let arm = services
            .iter()
            .any(|s| !s.settings.refresh_apps.is_empty())
            .then(|| Arc::new(clients.arm(&services[0].settings)));
        Ok(Self {
            implicit: config.implicit,
            services,
            max_concurrent: config.max_concurrent,
            warnings: config.warnings,
            arm,
            side: std::sync::Mutex::default(),
        })
    }

    /// The one service of an implicit single target.
    pub fn single(&self) -> Option<&Arc<RotationService>> {
        self.implicit.then(|| &self.services[0])
    }

    pub fn name_of(service: &RotationService) -> String {
        service
            .settings
            .name
            .clone()
            .unwrap_or_else(|| "default".into())
    }

    /// The targets a selection names (comma-separated, case-insensitive); all when `None`.
    /// `Err` names the unknown ones and lists the known.
    pub fn select(&self, names: Option<&str>) -> Result<Vec<Arc<RotationService>>, String> {
        let Some(names) = names.map(str::trim).filter(|n| !n.is_empty()) else {
            return Ok(self.services.clone());
        };
        let mut out: Vec<Arc<RotationService>> = vec![];
        let mut unknown = vec![];
        for want in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match self
                .services
                .iter()
                .find(|s| Self::name_of(s).eq_ignore_ascii_case(want))
            {
                Some(s) if !out.iter().any(|o| Arc::ptr_eq(o, s)) => out.push(s.clone()),
                Some(_) => {}
                None => unknown.push(want.to_string()),
            }
        }
        if !unknown.is_empty() {
            let known: Vec<String> = self.services.iter().map(|s| Self::name_of(s)).collect();
            return Err(format!(
                "no target named {}; the targets are {}",
                unknown.join(", "),
                known.join(", ")
            ));
        }
        Ok(out)
    }

    /// Rotates the selected targets, at most `MaxConcurrentTargets` at once; outcomes in the
    /// selection's order. Then (side work) refreshes the Azure consumers they call for.
    pub async fn rotate(
        &self,
        selected: &[Arc<RotationService>],
        request: Request,
    ) -> Vec<TargetOutcome> {
        let outcomes = self.rotate_only(selected, request).await;
        self.spawn_refresh(selected, &outcomes);
        outcomes
    }

    /// One target's rotation, with the same side work as [`Fleet::rotate`].
    pub async fn rotate_one(&self, service: &Arc<RotationService>, request: Request) -> Outcome {
        let mut outcomes = self.rotate(std::slice::from_ref(service), request).await;
        outcomes.remove(0).outcome
    }

    async fn rotate_only(
        &self,
        selected: &[Arc<RotationService>],
        request: Request,
    ) -> Vec<TargetOutcome> {
        futures::stream::iter(selected.iter().cloned())
            .map(|service| async move {
                let outcome = service.rotate(request).await;
                TargetOutcome {
                    name: Self::name_of(&service),
                    outcome,
                }
            })
            .buffered(self.max_concurrent)
            .collect()
            .await
    }

    /// Every selected target's state, concurrently within the same bound.
    pub async fn state(
        &self,
        selected: &[Arc<RotationService>],
    ) -> Vec<(String, Result<State, Failure>)> {
        futures::stream::iter(selected.iter().cloned())
            .map(|service| async move { (Self::name_of(&service), service.state().await) })
            .buffered(self.max_concurrent)
            .collect()
            .await
    }

    /// Warms every target's clients (see [`RotationService::warm_up`]), within the concurrency
    /// bound.
    pub async fn warm_up(&self) {
        futures::stream::iter(self.services.iter().cloned())
            .map(|s| async move { s.warm_up().await })
            .buffer_unordered(self.max_concurrent)
            .collect::<Vec<()>>()
            .await;
    }

    /// Waits for background work: every target's side work (bookkeeping, version hygiene) and
    /// the consumer refreshes.
    pub async fn settle(&self) {
        loop {
            let tasks: Vec<_> =
                std::mem::take(&mut *self.side.lock().expect("no panics while held"));
            if tasks.is_empty() {
                break;
            }
            for t in tasks {
                let _ = t.await;
            }
        }
        for s in &self.services {
            s.settle().await;
        }
    }
}

/// The multi-target answer: one entry per target and a summary; `ok` is false when any failed.
pub fn summarize(outcomes: &[TargetOutcome]) -> (bool, Value, Vec<String>) {
    let mut entries = vec![];
    let mut lines = vec![];
    let (mut rotated, mut fresh, mut failed) = (0, 0, 0);
    for t in outcomes {
        let mut entry = match t.outcome.as_ref() {
            Ok(report) => {
                if report.rotated {
                    rotated += 1;
                } else {
                    fresh += 1;
                }
                let first = report.log_lines().into_iter().next().unwrap_or_default();
                let warn = if report.warnings.is_empty() {
                    String::new()
                } else {
                    format!(" ({} warnings)", report.warnings.len())
                };
                lines.push(format!("{}: {first}{warn}", t.name));
                serde_json::to_value(report).unwrap_or_default()
            }
            Err(f) => {
                failed += 1;
                let first = f.log_lines().into_iter().next().unwrap_or_default();
                lines.push(format!("{}: {first}", t.name));
                f.body()
            }
        };
        if let Value::Object(map) = &mut entry {
            map.insert("target".into(), Value::String(t.name.clone()));
            map.insert("ok".into(), Value::Bool(t.outcome.is_ok()));
        }
        entries.push(entry);
    }
    let summary =
        json!({"targets": outcomes.len(), "rotated": rotated, "fresh": fresh, "failed": failed});
    lines.push(format!(
        "{} targets: {rotated} rotated, {fresh} fresh, {failed} failed",
        outcomes.len()
    ));
    (
        failed == 0,
        json!({"targets": entries, "summary": summary}),
        lines,
    )
}
