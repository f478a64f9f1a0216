//! Side work: what a run does that its answer does not wait for (issue #17) — the source key's
//! bookkeeping (learning its age, deleting the previous key once its grace period is over) and
//! version hygiene. The answer waits for read → mint → verify → publish and nothing else, so a
//! slow or hanging IAM or a vault full of versions never holds it.
//!
//! The rotation lease ([`super::lease`]) is released here too: after the bookkeeping when it
//! deletes the previous key (a key rotation step: it runs under the lease), and otherwise at
//! once — learning the key's age changes no key, and a hanging IAM would hold the lease, and
//! every trigger waiting behind it, for the side work's whole budget (its tag write is guarded
//! instead: `retag_if_unchanged`). The hygiene needs no lease.
//!
//! Each job has its own timeout ([`RotationService::side_budget`], a quarter of the rotation
//! budget); its outcome is logged, kept for `GET HttpRotate` ([`RotationService::last_side_work`])
//! and shown in the next report (`previousSideWork`). At the end of a process: `serve` keeps it
//! running in the background and, on SIGTERM, waits for it within a bound; the CLI awaits it
//! ([`RotationService::settle`]) before it exits and prints it in its report (`sideWork`).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use tokio::task::JoinHandle;

use super::lease::LeaseGuard;
use super::source_key::Plan;
use super::RotationService;

/// What a run's side work did.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SideWork {
    pub finished_at: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The side work in flight and the last one's outcome.
#[derive(Default)]
pub(super) struct SideTasks {
    running: Mutex<Vec<JoinHandle<()>>>,
    last: Mutex<Option<SideWork>>,
    /// The last refresh of the Azure consumers this target lists (scheduled by the fleet).
    last_refresh: Mutex<Option<SideWork>>,
    /// When this process last swept the published secrets' versions (see [`super::hygiene`]).
    pub(super) swept_at: Mutex<Option<std::time::Instant>>,
}

/// A job's actions and warnings.
type Done = (Vec<String>, Vec<String>);

async fn timed(budget: Duration, what: &str, job: impl Future<Output = Done>) -> Done {
    match tokio::time::timeout(budget, job).await {
        Ok(done) => done,
        Err(_) => (
            vec![],
            vec![format!(
                "{what} did not finish within {} s (a quarter of RotationTimeBudgetSeconds); the next run tries again",
                budget.as_secs()
            )],
        ),
    }
}

impl RotationService {
    /// How long each side job may take.
    pub(super) fn side_budget(&self) -> Duration {
        self.settings.rotation_time_budget / 4
    }

    /// Starts a finished run's side work: the source key's bookkeeping (`plan`), and version
    /// hygiene when the run published (`published`: the versions it wrote) — with, when it
    /// published without the rotation lease (`lease` is `None`), a re-read of the four secrets
    /// that repairs any another publish left out of step ([`RotationService::reconcile`]); then
    /// releases the run's lease with its recorded outcome.
    pub(super) fn spawn_side_work(
        self: &Arc<Self>,
        published: Option<BTreeMap<String, String>>,
        plan: Option<Plan>,
        lease: Option<(LeaseGuard, HashMap<String, String>)>,
    ) {
        let reconcile = published.is_some() && lease.is_none();
        let bookkeeping_due = plan.as_ref().is_some_and(Plan::has_side_work);
        // Only deleting the previous key changes a key and needs the lease; learning the key's
        // age does not (see `retag_if_unchanged`), so the lease goes at once unless a deletion
        // is due.
        let key_step_due = plan.as_ref().is_some_and(Plan::changes_a_key_later);
        let mut lease = lease;
        if !key_step_due {
            if let Some((guard, recorded)) = lease.take() {
                self.track(tokio::spawn(guard.release(recorded)));
            }
        }
        if published.is_none() && !bookkeeping_due {
            return;
        }
        let me = self.clone();
        let task = tokio::spawn(async move {
            let now = Utc::now();
            let budget = me.side_budget();
            let (reconciled, hygiene, bookkeeping) = tokio::join!(
                timed(budget, "the re-read of the published secrets", async {
                    match reconcile {
                        true => me.reconcile().await,
                        false => Done::default(),
                    }
                }),
                timed(budget, "version hygiene", async {
                    match &published {
                        Some(p) => me.hygiene(p, now).await,
                        None => Done::default(),
                    }
                }),
                async {
                    let done = timed(budget, "the source key's bookkeeping", async {
                        match plan {
                            Some(mut plan) if bookkeeping_due => {
                                let before = plan.report.actions.len();
                                let warnings = me.finish_source_key(&mut plan, now).await;
                                (plan.report.actions.split_off(before), warnings)
                            }
                            _ => Done::default(),
                        }
                    })
                    .await;
                    if let Some((guard, recorded)) = lease {
                        guard.release(recorded).await;
                    }
                    done
                },
            );
            let outcome = SideWork {
                finished_at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
                actions: [reconciled.0, bookkeeping.0, hygiene.0].concat(),
                warnings: [reconciled.1, bookkeeping.1, hygiene.1].concat(),
            };
            let name = me.settings.name.as_deref().unwrap_or("default");
            for a in &outcome.actions {
                tracing::info!("side work ({name}): {a}");
            }
            for w in &outcome.warnings {
                tracing::warn!("side work ({name}): {w}");
            }
            *me.side.last.lock().expect("no panics while held") = Some(outcome);
        });
        self.track(task);
    }

    /// Keeps a background task for [`RotationService::settle`].
    fn track(&self, task: JoinHandle<()>) {
        let mut running = self.side.running.lock().expect("no panics while held");
        running.retain(|t| !t.is_finished());
        running.push(task);
    }

    /// Waits for the side work started so far (the CLI, before it exits; `serve`, on SIGTERM,
    /// within its own bound).
    pub async fn settle(&self) {
        loop {
            let tasks: Vec<JoinHandle<()>> =
                std::mem::take(&mut *self.side.running.lock().expect("no panics while held"));
            if tasks.is_empty() {
                return;
            }
            for task in tasks {
                let _ = task.await;
            }
        }
    }

    /// The outcome of the last side work that finished, with the last consumer refresh.
    pub fn last_side_work(&self) -> Option<SideWork> {
        let own = self.side.last.lock().expect("no panics while held").clone();
        let refresh = self
            .side
            .last_refresh
            .lock()
            .expect("no panics while held")
            .clone();
        match (own, refresh) {
            (Some(mut own), Some(r)) => {
                own.actions.extend(r.actions);
                own.warnings.extend(r.warnings);
                own.finished_at = own.finished_at.max(r.finished_at);
                Some(own)
            }
            (own, refresh) => own.or(refresh),
        }
    }

    /// Keeps the outcome of a consumer refresh for this target (see [`super::refresh`]).
    pub(super) fn record_refresh(&self, mut outcome: SideWork) {
        outcome.finished_at = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        *self.side.last_refresh.lock().expect("no panics while held") = Some(outcome);
    }
}

impl RotationService {
    /// Start-up warm-up (issue #17): what a first rotation in a new process would otherwise pay
    /// for sequentially — the identity token, the vault's authentication challenge and TLS
    /// connection (a read of the published set), the Entra token of web-identity mode, Roles
    /// Anywhere mode's certificate (kept: [`super::roles_anywhere`]), the
    /// connection to the lease store (a read of the lease's state), and the TLS connection to STS (`GetCallerIdentity` with the IAM user's key, which also says at
    /// start-up whether STS takes it). `serve` runs it in the background once it is ready, so
    /// it never delays readiness; it changes nothing, and its failures are only logged (the
    /// first rotation reports them properly).
    pub async fn warm_up(&self) {
        let name = self.settings.name.as_deref().unwrap_or("default");
        let (source, current, token, lease, certificate) = tokio::join!(
            self.read_source(),
            self.read_current(),
            self.web_identity_token(),
            self.warm_lease(),
            self.roles_anywhere_certificate(),
        );
        let mut problems = vec![];
        if let Err(f) = &certificate {
            problems.push(f.message.clone());
        }
        if let Err(e) = lease {
            problems.push(e);
        }
        if let Err(f) = &current {
            problems.push(f.message.clone());
        }
        if let Err(f) = &token {
            problems.push(f.message.clone());
        }
        match &source {
            Err(f) => problems.push(f.message.clone()),
            Ok(Some(read)) => {
                if let Err(e) = self.sts.source_identity(&read.keys).await {
                    problems.push(e.to_string());
                }
            }
            Ok(None) => {}
        }
        if problems.is_empty() {
            tracing::info!("warm-up ({name}): the vault, the identity and STS answered");
        }
        for p in problems {
            tracing::warn!("warm-up ({name}): {p}");
        }
    }
}
