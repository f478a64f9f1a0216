//! One rotation across instances (issue #17, part 2): a blob lease per target in the Function
//! App's own storage ([`crate::azure::lease`]).
//!
//! The Functions host runs the timer on one instance at a time, but `HttpRotate` on scaled-out
//! instances and CLI runs each mint; single flight ([`super::flight`]) only joins triggers within
//! one process. So a run takes the target's lease **concurrently with its reads** (no extra
//! sequential round trip), keeps it renewed while it lasts, and releases it after the publish
//! (in the background: the answer does not wait), recording its outcome on the blob.
//!
//! A run that finds the lease held waits, bounded by half of `RotationTimeBudgetSeconds`, polling
//! the lease state; once it holds the lease it reads again and decides as usual — a forced
//! trigger then finds the holder's set fresh when it was minted or published after the trigger
//! arrived (the same rule as single flight, [`super::decide`]), and otherwise runs itself. When
//! the holder failed, the report says so; when the wait times out, the run fails with
//! `RotationLeaseHeld`. A crashed holder's lease expires by itself (`RotationLeaseSeconds`).
//!
//! IAM key rotation steps run only under the lease. Without storage: today's behaviour (a
//! warning at start-up). Storage configured but unusable: minting goes on with a warning, and a
//! *new* IAM key rotation does not start (one already started is finished).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use tokio::sync::OwnedMutexGuard;
use tokio::task::JoinHandle;

use super::{Failure, Kind, Report, RotationService, Step};
use crate::azure::lease::LeaseStore;

/// Metadata names on the lease blob (what the last holder recorded).
mod meta {
    pub const OUTCOME: &str = "outcome";
    pub const FINISHED_AT: &str = "finishedat";
    pub const CODE: &str = "code";
    /// The set a holder published: its minted-at tag, and when its publish ended (this
    /// instance's clock, to the millisecond; the vault's own times are whole seconds).
    pub const MINTED_AT: &str = "mintedat";
    pub const PUBLISHED_AT: &str = "publishedat";
}

/// What the run that held the lease while this one waited left behind.
#[derive(Default)]
pub(super) struct HolderInfo {
    /// Its failure, for the report.
    pub(super) notes: Vec<String>,
    /// The set it published: `(minted at, published at)`.
    pub(super) published: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// How often a waiter looks at the lease.
const POLL: Duration = Duration::from_millis(200);

/// Where this run stands with the lease.
pub(super) enum Coordination {
    /// No store configured: not coordinated (the start-up warning said so).
    NotConfigured,
    /// This run holds the lease.
    Held(LeaseGuard),
    /// Another instance holds it.
    Busy,
    /// The store is configured but could not be used: why.
    Unavailable(String),
}

impl Coordination {
    /// Whether a new rotation of the IAM user's key may start in this run.
    pub(super) fn may_start_key_rotation(&self) -> Result<(), String> {
        match self {
            Coordination::Unavailable(why) => Err(why.clone()),
            _ => Ok(()),
        }
    }
}

/// A held lease: renewed in the background until released; dropping it (a run cancelled by its
/// budget) stops the renewal and releases it in the background.
pub(super) struct LeaseGuard {
    store: Arc<LeaseStore>,
    blob: String,
    lease_id: String,
    renew: JoinHandle<()>,
    released: bool,
    /// This process's turn with the lease, held until the release is sent (see
    /// [`RotationService::take_lease`]).
    _turn: OwnedMutexGuard<()>,
}

impl LeaseGuard {
    fn new(
        store: Arc<LeaseStore>,
        blob: String,
        lease_id: String,
        turn: OwnedMutexGuard<()>,
    ) -> Self {
        let every = store.duration / 3;
        let (s, b, id) = (store.clone(), blob.clone(), lease_id.clone());
        let renew = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = s.renew(&b, &id).await {
                    tracing::warn!("the rotation lease on {b} could not be renewed: {e}");
                }
            }
        });
        Self {
            store,
            blob,
            lease_id,
            renew,
            released: false,
            _turn: turn,
        }
    }

    /// Records the run's outcome (see [`record`]) on the blob and releases the lease.
    pub(super) async fn release(mut self, recorded: HashMap<String, String>) {
        self.released = true;
        self.renew.abort();
        if let Err(e) = self
            .store
            .release(&self.blob, &self.lease_id, &recorded)
            .await
        {
            tracing::warn!(
                "the rotation lease on {} could not be released (it expires by itself within {} s): {e}",
                self.blob,
                self.store.duration.as_secs()
            );
        }
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        self.renew.abort();
        if self.released {
            return;
        }
        let (store, blob, id) = (self.store.clone(), self.blob.clone(), self.lease_id.clone());
        let cancelled = Failure::new(
            Step::Lease,
            Kind::Unreachable,
            "Abandoned",
            "the run holding the lease was cancelled",
        );
        let recorded = record(Err(&cancelled));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = store.release(&blob, &id, &recorded).await;
            });
        }
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_time(m: &HashMap<String, String>, name: &str) -> Option<DateTime<Utc>> {
    m.get(name)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// What a holder leaves on the blob for the next one.
pub(super) fn record(outcome: Result<&Report, &Failure>) -> HashMap<String, String> {
    let mut m = HashMap::new();
    m.insert(meta::FINISHED_AT.into(), time(Utc::now()));
    match outcome {
        Ok(report) => {
            m.insert(meta::OUTCOME.into(), "ok".into());
            if let (Some(minted), Some(published)) = (report.minted_at, report.published_at) {
                m.insert(meta::MINTED_AT.into(), time(minted));
                m.insert(meta::PUBLISHED_AT.into(), time(published));
            }
        }
        Err(f) => {
            m.insert(meta::OUTCOME.into(), "failed".into());
            m.insert(meta::CODE.into(), code_of(&f.code));
        }
    }
    m
}

/// A code is an identifier: kept to what metadata values allow when written, and read back the
/// same way, since whoever can write to the storage account can write the metadata (it reaches
/// the run's warnings and logs: issue #26).
fn code_of(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .take(64)
        .collect()
}

/// The blob of a target: its bundle secret's vault and name, so that every instance and every
/// CLI run publishing the same set share one lease, whatever they call the target.
pub fn blob_name(settings: &crate::settings::Settings) -> String {
    let bundle = &settings.targets.bundle;
    let host = bundle.vault.host_str().unwrap_or("vault");
    let host = match bundle.vault.port() {
        Some(p) => format!("{host}_{p}"),
        None => host.to_string(),
    };
    format!("{host}/{}", bundle.name)
}

impl RotationService {
    /// Tries to take this target's lease (runs concurrently with the reads), bounded so a
    /// storage account that does not answer never holds a rotation.
    ///
    /// The previous run of this process releases its lease in the background after answering;
    /// a run that starts meanwhile (a forced trigger right after an answer) waits for that
    /// release — a round trip or two — rather than finding its own process's lease held and
    /// polling. The turn is held until the release is sent.
    pub(super) async fn take_lease(&self) -> Coordination {
        let Some(store) = &self.lease else {
            return Coordination::NotConfigured;
        };
        let bound = self.lease_call_bound();
        let blob = blob_name(&self.settings);
        let turn = self.lease_turn.clone().lock_owned().await;
        match tokio::time::timeout(bound, store.acquire(&blob)).await {
            Ok(Ok(Some(id))) => Coordination::Held(LeaseGuard::new(store.clone(), blob, id, turn)),
            Ok(Ok(None)) => Coordination::Busy,
            Ok(Err(e)) => Coordination::Unavailable(e.to_string()),
            Err(_) => Coordination::Unavailable(format!(
                "no answer within {} s from the lease store: {}",
                bound.as_secs(),
                store.describe()
            )),
        }
    }

    /// The warm-up's read of the lease (a missing blob is no problem: the first run makes it).
    pub(super) async fn warm_lease(&self) -> Result<(), String> {
        let Some(store) = &self.lease else {
            return Ok(());
        };
        match store.holder(&blob_name(&self.settings)).await {
            Ok(_) | Err(crate::azure::lease::LeaseError::Refused { status: 404, .. }) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    fn lease_call_bound(&self) -> Duration {
        (self.settings.rotation_time_budget / 4).min(Duration::from_secs(10))
    }

    /// Waits until this run holds the lease another instance holds, bounded by half the
    /// rotation budget from `started`. Returns the lease and what the holder left behind;
    /// `Err` when the wait timed out.
    pub(super) async fn wait_for_lease(
        &self,
        started: Instant,
        arrived: DateTime<Utc>,
    ) -> Result<(Coordination, HolderInfo), Failure> {
        let store = self.lease.clone().expect("busy implies a store");
        let blob = blob_name(&self.settings);
        let bound = self.settings.rotation_time_budget / 2;
        let deadline = started + bound;
        loop {
            if Instant::now() >= deadline {
                return Err(Failure::new(
                    Step::Lease,
                    Kind::Conflict,
                    "RotationLeaseHeld",
                    format!(
                        "another instance held this target's rotation lease ({blob} in {}) for more than {} s (half of RotationTimeBudgetSeconds) and this run did not take it; nothing was minted here: try again",
                        store.describe(),
                        bound.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(POLL).await;
            let holder =
                match tokio::time::timeout(self.lease_call_bound(), store.holder(&blob)).await {
                    Ok(Ok(h)) => h,
                    Ok(Err(e)) => {
                        return Ok((
                            Coordination::Unavailable(e.to_string()),
                            HolderInfo::default(),
                        ))
                    }
                    Err(_) => continue,
                };
            if holder.leased {
                continue;
            }
            let turn = self.lease_turn.clone().lock_owned().await;
            match tokio::time::timeout(self.lease_call_bound(), store.acquire(&blob)).await {
                Ok(Ok(Some(id))) => {
                    let mut notes = holder_notes(&holder.metadata, arrived, started);
                    if holder.expired {
                        notes.push(format!(
                            "another instance held the rotation lease while this trigger waited ({} ms) and let it expire without releasing it (it crashed, was killed, or could not reach storage to release it); this run went on by itself",
                            started.elapsed().as_millis()
                        ));
                    }
                    let info = HolderInfo {
                        notes,
                        published: parse_time(&holder.metadata, meta::MINTED_AT)
                            .zip(parse_time(&holder.metadata, meta::PUBLISHED_AT)),
                    };
                    return Ok((
                        Coordination::Held(LeaseGuard::new(store.clone(), blob, id, turn)),
                        info,
                    ));
                }
                Ok(Ok(None)) | Err(_) => continue,
                Ok(Err(e)) => {
                    return Ok((
                        Coordination::Unavailable(e.to_string()),
                        HolderInfo::default(),
                    ))
                }
            }
        }
    }
}

/// What the run that held the lease while this one waited left behind, when it failed.
fn holder_notes(
    metadata: &HashMap<String, String>,
    arrived: DateTime<Utc>,
    started: Instant,
) -> Vec<String> {
    let waited = started.elapsed().as_millis();
    let finished = parse_time(metadata, meta::FINISHED_AT);
    let outcome = metadata.get(meta::OUTCOME).map(String::as_str);
    match (outcome, finished) {
        (Some("failed"), Some(at)) if at >= arrived => vec![format!(
            "another instance held the rotation lease while this trigger waited ({waited} ms) and its run failed at {} ({}); this run went on by itself",
            at.to_rfc3339_opts(SecondsFormat::Secs, true),
            metadata
                .get(meta::CODE)
                .map(|c| code_of(c))
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| "no code".into())
        )],
        _ => vec![],
    }
}

/// The warning of a run that could not use the lease store.
pub(super) fn unavailable_warning(why: &str) -> String {
    format!("the rotation lease could not be used ({why}): this run was not coordinated with other instances, and a new rotation of the IAM user's key does not start until it can be")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_holder_that_failed_after_the_trigger_arrived_is_reported() {
        let arrived = at("2030-01-01T00:00:00Z");
        let m: HashMap<String, String> = [
            (meta::OUTCOME, "failed"),
            (meta::FINISHED_AT, "2030-01-01T00:00:05.000Z"),
            (meta::CODE, "InvalidClientTokenId"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let notes = holder_notes(&m, arrived, Instant::now());
        assert!(notes[0].contains("InvalidClientTokenId"), "{notes:?}");
        // Metadata anyone with the storage account can write: no control character gets through.
        let mut forged = m.clone();
        forged.insert(
            meta::CODE.into(),
            "Throttling\u{1b}]8;;http://x\u{7}\nok".into(),
        );
        let notes = holder_notes(&forged, arrived, Instant::now());
        assert!(notes[0].contains("(Throttling8httpxok)"), "{notes:?}");
        assert!(!notes[0].chars().any(char::is_control), "{notes:?}");
        let earlier = holder_notes(&m, at("2030-01-01T00:01:00Z"), Instant::now());
        assert!(earlier.is_empty());
        let mut ok = m.clone();
        ok.insert(meta::OUTCOME.into(), "ok".into());
        assert!(holder_notes(&ok, arrived, Instant::now()).is_empty());
    }

    #[test]
    fn a_failed_outcome_records_only_its_code() {
        let f = Failure::new(
            Step::Mint,
            Kind::Upstream,
            "Access Denied!",
            "a long message",
        );
        let m = record(Err(&f));
        assert_eq!(m[meta::OUTCOME], "failed");
        assert_eq!(m[meta::CODE], "AccessDenied");
        assert!(!m.values().any(|v| v.contains("message")));
    }
}
