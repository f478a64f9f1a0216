//! Version hygiene, after a successful publish and off the critical path: every superseded
//! version still holds credentials until they expire, and an hourly rotation adds ~96 versions a
//! day. Versions whose credentials have expired are disabled, except the newest
//! `KeepEnabledVersions` (for consumers pinned to a version). Idempotent; a pass that is cut
//! short is finished by the next one.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::RotationService;

impl RotationService {
    /// Version hygiene, after a successful publish and off the critical path: every superseded
    /// version still holds credentials until they expire, and an hourly rotation adds ~96
    /// versions a day. Versions whose credentials have expired are disabled, except the newest
    /// `KeepEnabledVersions` (for consumers pinned to a version). Idempotent; a run that is cut
    /// short is finished by the next one.
    pub(super) fn spawn_hygiene(self: &Arc<Self>, published: BTreeMap<String, String>) {
        let me = self.clone();
        let task = tokio::spawn(async move {
            let now = Utc::now();
            let keep = me.settings.keep_enabled_versions;
            let jobs = me.settings.targets.all().map(|t| {
                let me = me.clone();
                let t = t.clone();
                let current = published.get(&t.name).cloned().unwrap_or_default();
                async move {
                    let versions = match me.vaults.versions(&t).await {
                        Ok(v) => v,
                        Err(e) => {
                            tracing::warn!("version hygiene: {e}");
                            return;
                        }
                    };
                    for v in versions_to_disable(&versions, &current, keep, now) {
                        match me.vaults.disable(&t, &v).await {
                            Ok(()) => tracing::info!(
                                "version hygiene: disabled expired version {v} of {}",
                                t.name
                            ),
                            Err(e) => tracing::warn!("version hygiene: {e}"),
                        }
                    }
                }
            });
            futures::future::join_all(jobs).await;
        });
        if let Some(previous) = self
            .hygiene
            .lock()
            .expect("no panics while held")
            .replace(task)
        {
            // A newer pass covers everything the older one would have done.
            previous.abort();
        }
    }

    /// Waits for background work (version hygiene) to finish; the CLI calls it before exiting.
    pub async fn settle(&self) {
        let task = self.hygiene.lock().expect("no panics while held").take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// The enabled versions whose credentials have expired, beyond the newest `keep` (pure).
/// `current` (the version just published) counts as the newest: Key Vault's timestamps have
/// one-second resolution, so creation times alone cannot order versions written together.
pub fn versions_to_disable(
    versions: &[crate::azure::keyvault::VersionInfo],
    current: &str,
    keep: usize,
    now: DateTime<Utc>,
) -> Vec<String> {
    let mut sorted: Vec<&crate::azure::keyvault::VersionInfo> = versions.iter().collect();
    sorted.sort_by_key(|v| (v.version != current, std::cmp::Reverse(v.created)));
    sorted
        .into_iter()
        .skip(keep)
        .filter(|v| v.enabled && v.expires.is_some_and(|e| e <= now))
        .map(|v| v.version.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure::keyvault::VersionInfo;
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
}
