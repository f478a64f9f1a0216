//! Version hygiene, side work after a successful publish: every superseded version still holds
//! credentials until they expire, and an hourly rotation adds ~96 versions a day. Versions whose
//! credentials have expired are disabled, except the newest `KeepEnabledVersions` (for consumers
//! pinned to a version). Idempotent; a sweep cut short by the side work's budget is finished by
//! the next sweep.
//!
//! Key Vault cannot filter a listing: finding those versions means listing every version, one
//! request per 25, and the history only grows (~8,760 versions per secret after a year of hourly
//! rotation). So a process sweeps on its first publish and then at most once per
//! [`SWEEP_INTERVAL`], and streams the listing ([`Sweep`]) rather than holding it. An expired
//! version left enabled meanwhile holds only credentials AWS no longer accepts. (Measured on
//! 2026-12-06: with a sweep after every publish, a process's RSS grew from 21 to 39 MiB over 1,000
//! rotations, the allocator keeping the ever longer listings' pages. BENCHMARKS.md now measures
//! the sweep of a 10,000-version history: its requests, time and RSS.)

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::RotationService;
use crate::azure::keyvault::VersionInfo;

/// How often a process lists every version of the published secrets.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(24 * 3600);

impl RotationService {
    /// One sweep over the four published secrets (side work, see [`super::side`]) when one is
    /// due: what it disabled, and what it could not do. A sweep that could not list a secret
    /// leaves the next publish to sweep again.
    pub(super) async fn hygiene(
        &self,
        published: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> (Vec<String>, Vec<String>) {
        {
            let mut swept = self.side.swept_at.lock().expect("no panics while held");
            if swept.is_some_and(|at| at.elapsed() < SWEEP_INTERVAL) {
                return (vec![], vec![]);
            }
            *swept = Some(Instant::now());
        }
        let keep = self.settings.keep_enabled_versions;
        let jobs = self.settings.targets.all().map(|t| async move {
            let (mut done, mut failed) = (vec![], vec![]);
            let current = published.get(&t.name).cloned().unwrap_or_default();
            let mut sweep = Sweep::new(&current, keep, now);
            if let Err(e) = self.vaults.each_version(t, |v| sweep.feed(v)).await {
                return (done, vec![format!("version hygiene: {e}")]);
            }
            for v in sweep.finish() {
                match self.vaults.disable(t, &v).await {
                    Ok(()) => done.push(format!(
                        "version hygiene: disabled expired version {v} of {}",
                        t.name
                    )),
                    Err(e) => failed.push(format!("version hygiene: {e}")),
                }
            }
            (done, failed)
        });
        let mut out = (vec![], vec![]);
        for (done, failed) in futures::future::join_all(jobs).await {
            out.0.extend(done);
            out.1.extend(failed);
        }
        if !out.1.is_empty() {
            *self.side.swept_at.lock().expect("no panics while held") = None;
        }
        out
    }
}

/// A version's place in the order "the version just published, then newest first, then the
/// listing's order".
type Rank = (bool, Reverse<Option<DateTime<Utc>>>, usize);

/// The sweep's selection, fed one version at a time (pure): the enabled versions whose
/// credentials have expired, beyond the newest `keep`. `current` (the version just published)
/// counts as the newest: Key Vault's timestamps have one-second resolution, so creation times
/// alone cannot order versions written together. Holds only the newest `keep` and the versions
/// to disable, never the listing.
pub struct Sweep<'a> {
    current: &'a str,
    keep: usize,
    now: DateTime<Utc>,
    /// The newest `keep` so far, in order, each with whether it would be disabled.
    newest: Vec<(Rank, String, bool)>,
    to_disable: Vec<(Rank, String)>,
    fed: usize,
}

impl<'a> Sweep<'a> {
    pub fn new(current: &'a str, keep: usize, now: DateTime<Utc>) -> Self {
        Self {
            current,
            keep,
            now,
            newest: Vec::with_capacity(keep + 1),
            to_disable: vec![],
            fed: 0,
        }
    }

    pub fn feed(&mut self, v: VersionInfo) {
        let rank = (v.version != self.current, Reverse(v.created), self.fed);
        self.fed += 1;
        let expired = v.enabled && v.expires.is_some_and(|e| e <= self.now);
        let at = self.newest.partition_point(|(r, _, _)| *r < rank);
        self.newest.insert(at, (rank, v.version, expired));
        if self.newest.len() > self.keep {
            if let Some((rank, version, true)) = self.newest.pop() {
                self.to_disable.push((rank, version));
            }
        }
    }

    /// The versions to disable, newest first.
    pub fn finish(mut self) -> Vec<String> {
        self.to_disable.sort_by_key(|(rank, _)| *rank);
        self.to_disable.into_iter().map(|(_, v)| v).collect()
    }
}

/// The enabled versions whose credentials have expired, beyond the newest `keep` (pure): a
/// [`Sweep`] over a whole list.
pub fn versions_to_disable(
    versions: &[VersionInfo],
    current: &str,
    keep: usize,
    now: DateTime<Utc>,
) -> Vec<String> {
    let mut sweep = Sweep::new(current, keep, now);
    for v in versions {
        sweep.feed(v.clone());
    }
    sweep.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn v(id: &str, created_h: u32, expires_h: Option<u32>, enabled: bool) -> VersionInfo {
        let at = |h| Utc.with_ymd_and_hms(2030, 1, 1, h, 0, 0).unwrap();
        VersionInfo {
            version: id.into(),
            enabled,
            created: Some(at(created_h)),
            expires: expires_h.map(at),
            tags: Default::default(),
        }
    }

    #[test]
    fn only_expired_enabled_versions_beyond_the_newest_are_disabled() {
        let now = Utc.with_ymd_and_hms(2030, 1, 1, 10, 0, 0).unwrap();
        let versions = [
            v("newest", 9, Some(11), true),
            v("second", 8, Some(9), true), // expired, but among the newest two
            v("third", 7, Some(8), true),  // expired: disabled
            v("fourth", 6, Some(12), true), // still valid: kept
            v("fifth", 5, Some(6), false), // already disabled
            v("sixth", 4, None, true),     // never expires (not ours): kept
        ];
        assert_eq!(
            versions_to_disable(&versions, "newest", 2, now),
            vec!["third"]
        );
        assert_eq!(
            versions_to_disable(&versions, "newest", 1, now),
            vec!["second", "third"]
        );
    }

    #[test]
    fn the_version_just_published_is_kept_whatever_its_timestamp() {
        let now = Utc.with_ymd_and_hms(2030, 1, 1, 10, 0, 0).unwrap();
        // Written in the same second as two expired ones.
        let versions = [
            v("old1", 9, Some(9), true),
            v("current", 9, Some(11), true),
            v("old2", 9, Some(9), true),
        ];
        assert_eq!(
            versions_to_disable(&versions, "current", 1, now),
            vec!["old1", "old2"]
        );
    }

    proptest::proptest! {
        /// The streaming sweep picks exactly what sorting the whole list would: the enabled,
        /// expired versions beyond the newest `keep`, the current version first.
        #[test]
        fn the_sweep_picks_what_sorting_the_whole_list_picks(
            raw in proptest::collection::vec((0u32..6, proptest::option::of(0u32..12), proptest::bool::ANY), 0..30),
            keep in 1usize..5,
            current in 0usize..30,
        ) {
            let now = Utc.with_ymd_and_hms(2030, 1, 1, 6, 0, 0).unwrap();
            let versions: Vec<VersionInfo> = raw
                .iter()
                .enumerate()
                .map(|(i, (c, e, en))| v(&format!("v{i}"), *c, *e, *en))
                .collect();
            let current = format!("v{current}");
            let mut sorted: Vec<&VersionInfo> = versions.iter().collect();
            sorted.sort_by_key(|v| (v.version != current, std::cmp::Reverse(v.created)));
            let expected: Vec<String> = sorted
                .into_iter()
                .skip(keep)
                .filter(|v| v.enabled && v.expires.is_some_and(|e| e <= now))
                .map(|v| v.version.clone())
                .collect();
            proptest::prop_assert_eq!(versions_to_disable(&versions, &current, keep, now), expected);
        }
    }
}
