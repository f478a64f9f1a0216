//! Single flight within one process: a trigger that arrives while a run is in flight joins it.
//!
//! The run is a spawned task driving a shared future, so a caller that goes away (the host
//! timing out an HTTP request) never cancels a publish half-way, and every joiner gets the same
//! [`Outcome`]. Who may join is decided in [`RotationService::rotate`].

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures::future::{BoxFuture, FutureExt, Shared};

use super::{Failure, Kind, Outcome, Request, RotationService, Step};

/// The run in flight, for triggers that arrive while it lasts.
pub(super) struct InFlight {
    request: Request,
    /// The arrival of the latest forced trigger of this run (set by one that joins too); the run
    /// reads it when it decides.
    forced_since: Arc<Mutex<Option<DateTime<Utc>>>>,
    run: Shared<BoxFuture<'static, Outcome>>,
}

/// Whether a forced trigger that arrived at `arrived` can take this outcome as its own: a set
/// minted after it arrived (by this run, or by another instance), a set this run minted and
/// published only after it arrived (nobody could hold that set when the trigger was sent: it
/// is as new to the caller as one minted for it — without this, every forced trigger that came
/// during a run's STS call would mint again), or a failure (running again at once would most
/// likely fail alike). A request with a revocation's cut-off takes only a set minted after it,
/// however late it was published: one minted before is denied by AWS (issue #20).
fn satisfies_force(outcome: &Outcome, request: &Request, arrived: DateTime<Utc>) -> bool {
    match outcome.as_ref() {
        Ok(report) => {
            let after_cut_off = request
                .revoked_before
                .is_none_or(|c| report.minted_at.is_some_and(|m| m >= c));
            after_cut_off
                && (report.minted_at.is_some_and(|m| m >= arrived)
                    || report.published_at.is_some_and(|p| p >= arrived))
        }
        Err(_) => true,
    }
}

impl RotationService {
    /// Runs a rotation, or joins the one in flight.
    ///
    /// A trigger joins whatever run is in flight and gets its result, with two exceptions. One
    /// that asks for more (rotating the source key) waits for it to end and then runs. A forced
    /// one upgrades the run to forced if it has not decided yet, and accepts its result only if
    /// its set was minted after the trigger arrived (or it failed); otherwise — the run found an
    /// older set fresh, or had minted already — it runs again, so `force` always means a set
    /// minted after it was asked for (issue #15 L3).
    pub async fn rotate(self: &Arc<Self>, request: Request) -> Outcome {
        let arrived = Utc::now();
        loop {
            let (joined, run) = {
                let mut inflight = self.inflight.lock().expect("no panics while held");
                match inflight.as_ref() {
                    Some(running) => {
                        if request.force {
                            let mut since =
                                running.forced_since.lock().expect("no panics while held");
                            *since = Some(since.map_or(arrived, |s| s.max(arrived)));
                        }
                        (running.request.covers(&request), running.run.clone())
                    }
                    None => {
                        let me = self.clone();
                        let forced_since = Arc::new(Mutex::new(request.force.then_some(arrived)));
                        let run_force = forced_since.clone();
                        let run = async move {
                            let budget = me.settings.rotation_time_budget;
                            let outcome = match tokio::time::timeout(budget, me.run(request, &run_force)).await {
                                Ok(result) => result,
                                Err(_) => Err(Failure::new(
                                    Step::Publish,
                                    Kind::Unreachable,
                                    "Timeout",
                                    format!(
                                        "the rotation did not finish within RotationTimeBudgetSeconds ({} s)",
                                        budget.as_secs()
                                    ),
                                )),
                            };
                            *me.inflight.lock().expect("no panics while held") = None;
                            Arc::new(outcome)
                        }
                        .boxed()
                        .shared();
                        *inflight = Some(InFlight {
                            request,
                            forced_since,
                            run: run.clone(),
                        });
                        // Driven by its own task, so it completes even if every caller goes away.
                        tokio::spawn(run.clone());
                        (true, run)
                    }
                }
            };
            let outcome = run.await;
            let demanding = request.force || request.revoked_before.is_some();
            if joined && (!demanding || satisfies_force(&outcome, &request, arrived)) {
                return outcome;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rotation::Report;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// Issue #20: a set published after a revoking request arrived, but minted before its
    /// cut-off, is dead: it never answers that request.
    #[test]
    fn a_request_with_a_cut_off_is_satisfied_only_by_a_set_minted_after_it() {
        let arrived = at("2030-01-01T00:00:10Z");
        let outcome = |minted: &str| -> Outcome {
            Arc::new(Ok(Report {
                minted_at: Some(at(minted)),
                published_at: Some(at("2030-01-01T00:00:12Z")),
                ..Default::default()
            }))
        };
        let forced = Request {
            force: true,
            ..Default::default()
        };
        let revoking = Request {
            revoked_before: Some(at("2030-01-01T00:00:09Z")),
            ..forced
        };
        let early = outcome("2030-01-01T00:00:08Z");
        assert!(satisfies_force(&early, &forced, arrived));
        assert!(!satisfies_force(&early, &revoking, arrived));
        assert!(satisfies_force(
            &outcome("2030-01-01T00:00:09Z"),
            &revoking,
            arrived
        ));
        assert!(!revoking.covers(&Request {
            revoked_before: Some(at("2030-01-01T00:00:11Z")),
            ..forced
        }));
        assert!(revoking.covers(&forced));
    }
}
