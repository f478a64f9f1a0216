//! The pure decisions of a rotation: is the published set fresh, and which secrets are out of step.
//!
//! Nothing here does I/O or reads the clock: callers pass `now`. The vault is the shared state
//! between instances of the Function App, so the freshness rule reads only what is stored there
//! (the bundle's tags and expiry) and the current settings.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::tags;

/// What an unforced trigger should do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Rotate(String),
    Fresh(String),
}

/// The bundle's metadata, as read from the vault.
#[derive(Clone, Debug, Default)]
pub struct Published {
    pub tags: BTreeMap<String, String>,
    pub expires: Option<DateTime<Utc>>,
    /// When this version of the bundle was written.
    pub published_at: Option<DateTime<Utc>>,
}

impl Published {
    pub fn minted_at(&self) -> Option<DateTime<Utc>> {
        self.tags
            .get(tags::MINTED_AT)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    }

    /// The revocation mark on the bundle (`stsbridge revoke`): sets minted before it are dead.
    pub fn revoked_before(&self) -> Option<DateTime<Utc>> {
        revoked_before_of(&self.tags)
    }

    /// The id of the set: the minted access key id.
    pub fn set_id(&self) -> Option<&str> {
        self.tags.get(tags::ACCESS_KEY_ID).map(String::as_str)
    }
}

/// The `revoked-before` mark in a secret's tags, as written (see [`believable_cut_off`]).
pub fn revoked_before_of(tags: &BTreeMap<String, String>) -> Option<DateTime<Utc>> {
    tags.get(tags::REVOKED_BEFORE)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// How far ahead of now a revocation's cut-off is believed. `stsbridge revoke` takes it from
/// AWS's clock a second ahead; one further ahead than clocks drift apart was written by someone
/// else, and honouring it would refuse to publish every set minted before it — an outage until
/// that date once the current set expires, with STS called on every trigger (issue #26).
pub const CUT_OFF_LEEWAY: chrono::Duration = chrono::Duration::minutes(5);

/// A cut-off found at `found_in`, unless it lies more than [`CUT_OFF_LEEWAY`] ahead of `now`:
/// then `None` and the warning that says where it was found and what it said.
pub fn believable_cut_off(
    cut_off: Option<DateTime<Utc>>,
    found_in: &str,
    now: DateTime<Utc>,
) -> (Option<DateTime<Utc>>, Option<String>) {
    match cut_off {
        Some(c) if c - now > CUT_OFF_LEEWAY => (
            None,
            Some(format!(
                "{found_in} is {}, more than {} s ahead of this machine's clock: ignored (a revocation's cut-off is AWS's clock a second ahead; this one was not written by `stsbridge revoke`, or the clocks are far apart)",
                c.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                CUT_OFF_LEEWAY.num_seconds()
            )),
        ),
        c => (c, None),
    }
}

/// The freshness rule: an unforced trigger finds the set fresh when the bundle was minted less
/// than `min_interval` ago, will not expire within `min_interval`, and was minted under the
/// same settings (`wanted`: mode, role, source key id, duration). A trigger forced at
/// `forced_since` finds it fresh only when it was minted at or after that moment, under the same
/// settings — by another instance that held the lease meanwhile — or published at or after it
/// (nobody could hold that set when the trigger was sent: the rule of single flight,
/// `flight::satisfies_force`, across instances), and otherwise mints.
///
/// Above both: a set minted before a revocation's cut-off (the bundle's own `revoked-before`
/// mark, or `revoked_before` of the request) is dead — AWS denies its sessions — so it is never
/// fresh, forced or not (issue #20).
pub fn decide(
    forced_since: Option<DateTime<Utc>>,
    revoked_before: Option<DateTime<Utc>>,
    bundle: Option<&Published>,
    wanted: &BTreeMap<String, String>,
    min_interval: Duration,
    now: DateTime<Utc>,
) -> Decision {
    if let Some(bundle) = bundle {
        let (mark, _) = believable_cut_off(bundle.revoked_before(), "", now);
        let cut_off = mark.max(revoked_before);
        if let Some(cut_off) = cut_off {
            if bundle.minted_at().is_none_or(|m| m < cut_off) {
                return Decision::Rotate(format!(
                    "the published set was minted before the revocation at {} (its sessions are denied)",
                    cut_off.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ));
            }
        }
    }
    if let Some(since) = forced_since {
        let minted_after = bundle.and_then(|b| {
            b.minted_at()
                .filter(|m| *m >= since || b.published_at.is_some_and(|p| p >= since))
                .map(|m| (b, m))
        });
        return match minted_after {
            Some((b, minted)) if same_settings(b, wanted).is_none() && minted <= now => {
                Decision::Fresh(format!(
                    "forced, and a set was minted at {} under the same settings and published after the trigger arrived",
                    minted.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                ))
            }
            _ => Decision::Rotate("forced".into()),
        };
    }
    let Some(bundle) = bundle else {
        return Decision::Rotate("no credentials are published yet".into());
    };
    let Some(minted_at) = bundle.minted_at() else {
        return Decision::Rotate("the published set has no minted-at tag".into());
    };
    let min = chrono::Duration::from_std(min_interval).unwrap_or(chrono::Duration::MAX);
    if let Some(expires) = bundle.expires {
        if expires <= now + min {
            return Decision::Rotate(format!(
                "the published set expires at {}",
                expires.to_rfc3339()
            ));
        }
    }
    let age = now.signed_duration_since(minted_at);
    // A `minted-at` in the future (a clock far ahead, or a tag written by hand) would otherwise
    // keep the set "fresh" until that time comes, whatever its expiry.
    if age < chrono::Duration::zero() {
        return Decision::Rotate(format!(
            "the published set's minted-at ({}) is in the future",
            minted_at.to_rfc3339()
        ));
    }
    if age >= min {
        return Decision::Rotate(format!(
            "the published set was minted {} s ago",
            age.num_seconds()
        ));
    }
    if let Some(key) = same_settings(bundle, wanted) {
        return Decision::Rotate(format!("the settings changed since the last mint ({key})"));
    }
    Decision::Fresh(format!(
        "the published set was minted {} s ago, within MinRotationIntervalSeconds ({} s)",
        age.num_seconds(),
        min_interval.as_secs()
    ))
}

/// The first setting (tag) in which the bundle differs from `wanted`; `None` when it has them all.
fn same_settings<'a>(bundle: &Published, wanted: &'a BTreeMap<String, String>) -> Option<&'a str> {
    wanted
        .iter()
        .find(|(key, value)| bundle.tags.get(*key) != Some(*value))
        .map(|(key, _)| key.as_str())
}

/// Which of the separate secrets do not hold the bundle's set (compared by the set-id tag).
pub fn out_of_step<'a>(
    bundle_set_id: &str,
    others: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Vec<String> {
    others
        .into_iter()
        .filter(|(_, id)| *id != Some(bundle_set_id))
        .map(|(name, _)| name.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn wanted() -> BTreeMap<String, String> {
        BTreeMap::from([
            (tags::MODE.to_string(), "session-token".to_string()),
            (tags::DURATION.to_string(), "7200".to_string()),
        ])
    }

    fn published(minted: &str, expires: &str) -> Published {
        let mut t = wanted();
        t.insert(tags::MINTED_AT.into(), minted.into());
        Published {
            tags: t,
            expires: Some(at(expires)),
            published_at: None,
        }
    }

    const FIVE_MIN: Duration = Duration::from_secs(300);

    #[test]
    fn a_set_minted_a_minute_ago_under_the_same_settings_is_fresh() {
        let p = published("2030-01-01T00:00:00Z", "2030-01-01T02:00:00Z");
        let d = decide(
            None,
            None,
            Some(&p),
            &wanted(),
            FIVE_MIN,
            at("2030-01-01T00:01:00Z"),
        );
        assert!(matches!(d, Decision::Fresh(_)), "{d:?}");
    }

    #[test]
    fn force_always_rotates() {
        let p = published("2030-01-01T00:00:00Z", "2030-01-01T02:00:00Z");
        let d = decide(
            Some(at("2030-01-01T00:00:30Z")),
            None,
            Some(&p),
            &wanted(),
            FIVE_MIN,
            at("2030-01-01T00:01:00Z"),
        );
        assert_eq!(d, Decision::Rotate("forced".into()));
    }

    #[test]
    fn an_old_or_missing_or_expiring_set_rotates() {
        let now = at("2030-01-01T00:10:00Z");
        let old = published("2030-01-01T00:00:00Z", "2030-01-01T02:00:00Z");
        assert!(matches!(
            decide(None, None, Some(&old), &wanted(), FIVE_MIN, now),
            Decision::Rotate(_)
        ));
        assert!(matches!(
            decide(None, None, None, &wanted(), FIVE_MIN, now),
            Decision::Rotate(_)
        ));
        let expiring = published("2030-01-01T00:09:00Z", "2030-01-01T00:12:00Z");
        assert!(matches!(
            decide(None, None, Some(&expiring), &wanted(), FIVE_MIN, now),
            Decision::Rotate(_)
        ));
    }

    #[test]
    fn a_set_minted_under_other_settings_rotates() {
        let p = published("2030-01-01T00:00:00Z", "2030-01-01T02:00:00Z");
        let mut other = wanted();
        other.insert(tags::DURATION.into(), "3600".into());
        let d = decide(
            None,
            None,
            Some(&p),
            &other,
            FIVE_MIN,
            at("2030-01-01T00:01:00Z"),
        );
        assert!(matches!(d, Decision::Rotate(r) if r.contains(tags::DURATION)));
    }

    #[test]
    fn a_zero_interval_never_finds_a_set_fresh() {
        let p = published("2030-01-01T00:00:00Z", "2030-01-01T02:00:00Z");
        let d = decide(
            None,
            None,
            Some(&p),
            &wanted(),
            Duration::ZERO,
            at("2030-01-01T00:00:00Z"),
        );
        assert!(matches!(d, Decision::Rotate(_)));
    }

    /// A forced trigger takes a set another instance minted after it arrived, and no older one.
    #[test]
    fn a_forced_trigger_accepts_only_a_set_minted_after_it_arrived() {
        let p = published("2030-01-01T00:00:10Z", "2030-01-01T02:00:00Z");
        let now = at("2030-01-01T00:00:20Z");
        let after = decide(
            Some(at("2030-01-01T00:00:05Z")),
            None,
            Some(&p),
            &wanted(),
            FIVE_MIN,
            now,
        );
        assert!(matches!(after, Decision::Fresh(_)), "{after:?}");
        let before = decide(
            Some(at("2030-01-01T00:00:11Z")),
            None,
            Some(&p),
            &wanted(),
            FIVE_MIN,
            now,
        );
        assert_eq!(before, Decision::Rotate("forced".into()));
        let mut other = wanted();
        other.insert(tags::DURATION.into(), "3600".into());
        let changed = decide(
            Some(at("2030-01-01T00:00:05Z")),
            None,
            Some(&p),
            &other,
            FIVE_MIN,
            now,
        );
        assert_eq!(changed, Decision::Rotate("forced".into()));
    }

    /// Issue #17: a set another instance minted just before the trigger arrived but published
    /// after it answers the trigger, as within one process.
    #[test]
    fn a_forced_trigger_accepts_a_set_published_after_it_arrived() {
        let mut p = published("2030-01-01T00:00:10Z", "2030-01-01T02:00:00Z");
        let since = at("2030-01-01T00:00:11Z");
        let now = at("2030-01-01T00:00:20Z");
        p.published_at = Some(at("2030-01-01T00:00:12Z"));
        let d = decide(Some(since), None, Some(&p), &wanted(), FIVE_MIN, now);
        assert!(matches!(d, Decision::Fresh(_)), "{d:?}");
        p.published_at = Some(at("2030-01-01T00:00:10.500Z"));
        let d = decide(Some(since), None, Some(&p), &wanted(), FIVE_MIN, now);
        assert_eq!(d, Decision::Rotate("forced".into()));
    }

    /// Issue #15 L7.
    #[test]
    fn a_set_minted_in_the_future_is_not_fresh() {
        let p = published("2030-01-01T00:10:00Z", "2030-01-01T02:00:00Z");
        let d = decide(
            None,
            None,
            Some(&p),
            &wanted(),
            FIVE_MIN,
            at("2030-01-01T00:00:00Z"),
        );
        assert!(matches!(d, Decision::Rotate(r) if r.contains("future")));
    }

    /// Issue #20: a set minted before a revocation is dead, whether the mark is on the bundle or
    /// comes with the request, and a forced trigger is satisfied only after the cut-off.
    #[test]
    fn a_set_minted_before_a_revocation_is_never_fresh() {
        let now = at("2030-01-01T00:01:00Z");
        let mut marked = published("2030-01-01T00:00:00Z", "2030-01-01T02:00:00Z");
        marked
            .tags
            .insert(tags::REVOKED_BEFORE.into(), "2030-01-01T00:00:30Z".into());
        let d = decide(None, None, Some(&marked), &wanted(), FIVE_MIN, now);
        assert!(
            matches!(&d, Decision::Rotate(r) if r.contains("revocation at 2030-01-01T00:00:30Z")),
            "{d:?}"
        );

        let plain = published("2030-01-01T00:00:00Z", "2030-01-01T02:00:00Z");
        let cut_off = Some(at("2030-01-01T00:00:30Z"));
        let d = decide(None, cut_off, Some(&plain), &wanted(), FIVE_MIN, now);
        assert!(
            matches!(&d, Decision::Rotate(r) if r.contains("revocation")),
            "{d:?}"
        );
        let forced = decide(
            Some(at("2029-12-31T23:59:00Z")),
            cut_off,
            Some(&plain),
            &wanted(),
            FIVE_MIN,
            now,
        );
        assert!(
            matches!(&forced, Decision::Rotate(r) if r.contains("revocation")),
            "{forced:?}"
        );

        // A set minted after the cut-off is judged as usual, and the older mark it carries
        // forward does not make it stale.
        let mut after = published("2030-01-01T00:00:40Z", "2030-01-01T02:00:00Z");
        after
            .tags
            .insert(tags::REVOKED_BEFORE.into(), "2030-01-01T00:00:30Z".into());
        let d = decide(None, cut_off, Some(&after), &wanted(), FIVE_MIN, now);
        assert!(matches!(d, Decision::Fresh(_)), "{d:?}");
    }

    /// Issue #26: a `revoked-before` mark a year ahead (a vault writer's, or a clock gone
    /// wrong) would make every set "minted before the revocation" until then; beyond 5 minutes
    /// ahead it is ignored, with a warning naming where it was found and its value.
    #[test]
    fn a_revocation_mark_far_in_the_future_is_ignored_with_a_warning() {
        let now = at("2030-01-01T00:01:00Z");
        let mut marked = published("2030-01-01T00:00:00Z", "2030-01-01T02:00:00Z");
        marked
            .tags
            .insert(tags::REVOKED_BEFORE.into(), "2031-01-01T00:00:00Z".into());
        let d = decide(None, None, Some(&marked), &wanted(), FIVE_MIN, now);
        assert!(matches!(d, Decision::Fresh(_)), "{d:?}");

        let (mark, warning) = believable_cut_off(
            marked.revoked_before(),
            "the published bundle's revoked-before tag",
            now,
        );
        assert_eq!(mark, None);
        let warning = warning.unwrap();
        assert!(
            warning.contains("the published bundle's revoked-before tag is 2031-01-01T00:00:00Z"),
            "{warning}"
        );
        assert!(warning.contains("ignored"), "{warning}");

        // Within the leeway it is honoured: a revocation whose clock runs a little ahead.
        let near = Some(at("2030-01-01T00:06:00Z"));
        assert_eq!(believable_cut_off(near, "x", now), (near, None));
        marked
            .tags
            .insert(tags::REVOKED_BEFORE.into(), "2030-01-01T00:06:00Z".into());
        let d = decide(None, None, Some(&marked), &wanted(), FIVE_MIN, now);
        assert!(
            matches!(&d, Decision::Rotate(r) if r.contains("revocation")),
            "{d:?}"
        );
    }

    #[test]
    fn secrets_whose_set_id_differs_are_out_of_step() {
        let stale = out_of_step(
            "ASIA1",
            [("A", Some("ASIA1")), ("B", Some("ASIA0")), ("C", None)],
        );
        assert_eq!(stale, vec!["B", "C"]);
    }
}
