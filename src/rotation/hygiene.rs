//! Version hygiene, side work after a successful publish: every superseded version still holds
//! credentials until they expire, and an hourly rotation adds ~96 versions a day. Versions whose
//! credentials have expired are disabled, except the newest `KeepEnabledVersions` (for consumers
//! pinned to a version). Idempotent; a pass that is cut short is finished by the next one.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::RotationService;

impl RotationService {
    /// One pass over the four published secrets (side work, see [`super::side`]): what it
    /// disabled, and what it could not do.
    pub(super) async fn hygiene(
        &self,
        published: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> (Vec<String>, Vec<String>) {
        let keep = self.settings.keep_enabled_versions;
        let jobs = self.settings.targets.all().map(|t| async move {
            let (mut done, mut failed) = (vec![], vec![]);
            let current = published.get(&t.name).cloned().unwrap_or_default();
            let versions = match self.vaults.versions(t).await {
                Ok(v) => v,
                Err(e) => return (done, vec![format!("version hygiene: {e}")]),
            };
            for v in versions_to_disable(&versions, &current, keep, now) {
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
        out
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
