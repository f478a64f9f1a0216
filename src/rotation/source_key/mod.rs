//! Rotation of the IAM user's own long-lived access key (issue #7), in session-token and
//! assume-role modes, when the key lives in Key Vault under versionless references.
//!
//! A resumable protocol; its state lives in tags on the source secrets' latest versions, so any
//! run (on any instance) can pick it up, and every step is safe to re-run:
//! 1. Keys other than the stored one: an inactive one is deleted; an active one stops the
//!    protocol (someone else may use it) unless `SourceKeyDeleteForeignKey=true`; one this
//!    protocol created but never stored (a crash between steps 2 and 3) is deleted.
//! 2. `CreateAccessKey`, signed with the current key — after tagging the stored key id
//!    `key-rotation=creating`, so an orphan from a crash is recognised.
//! 3. Store the new pair as new versions of the source secrets **before anything else**: the
//!    secret first (tagged with the key id it belongs to, `pending`, and the previous key id),
//!    then the key id. A crash between the two writes is detected (the secret belongs to another
//!    key id than the one stored) and completed. If the secret cannot be stored, the new key is
//!    deleted at once — never orphaned silently.
//! 4. Verify the new key with `GetCallerIdentity`, retrying `InvalidClientTokenId` with backoff
//!    while IAM propagates it (bounded by `SourceKeyPropagationSeconds`, default 30).
//! 5. Mint with the new key (the normal rotation: the source key id is part of the freshness
//!    fingerprint, so consumers move on at once).
//! 6. Deactivate the old key; delete it `SourceKeyDeleteAfterHours` later, on a later run —
//!    never the key that is stored as current.
//!
//! Source keys given as values (platform-resolved references, plain settings) or pinned to a
//! version cannot be written back: then the protocol says so and does nothing.
//!
//! This file holds the protocol's state and its pure decisions; the steps are in `prepare`
//! (what to do before minting), `create` (steps 1–4) and `finish` (step 6, after a publish).

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

mod create;
mod finish;
mod prepare;

use super::{Failure, Kind, Step};
use crate::aws::iam::KeyInfo;
use crate::aws::AwsError;
use crate::azure::keyvault::StoredSecret;
use crate::azure::reference::SecretRef;
use crate::secrets::AwsKeys;

/// Tags of the protocol, on the source secrets.
pub mod tags {
    pub const STATE: &str = "key-rotation";
    pub const PREVIOUS: &str = "previous-access-key-id";
    pub const BELONGS_TO: &str = "access-key-id";
    pub const KEY_CREATED: &str = "access-key-created";
    pub const CREATING_SINCE: &str = "key-creating-since";
    /// Set when the run that made the `creating` marker stopped with an error.
    pub const CREATING_ENDED: &str = "key-creating-ended";
    /// Until when `iam:ListAccessKeys` is not asked again after it was denied.
    pub const AGE_DENIED_UNTIL: &str = "key-age-denied-until";
    pub const DEACTIVATED_AT: &str = "key-deactivated-at";
}

/// Where the protocol stands, from the stored key id's tags (pure).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyState {
    Idle,
    /// A run marked the start of a rotation; `ended` when it has said it stopped.
    Creating {
        since: DateTime<Utc>,
        ended: bool,
    },
    Pending {
        previous: String,
    },
    Deactivated {
        previous: String,
        at: DateTime<Utc>,
    },
}

fn time_tag(tags: &BTreeMap<String, String>, name: &str) -> Option<DateTime<Utc>> {
    tags.get(name)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

pub fn state_of(tags: &BTreeMap<String, String>) -> KeyState {
    let previous = tags.get(tags::PREVIOUS).cloned();
    match (tags.get(tags::STATE).map(String::as_str), previous) {
        (Some("creating"), _) => time_tag(tags, tags::CREATING_SINCE)
            .map(|since| KeyState::Creating {
                since,
                ended: tags.contains_key(tags::CREATING_ENDED),
            })
            .unwrap_or(KeyState::Idle),
        (Some("pending"), Some(previous)) => KeyState::Pending { previous },
        (Some("deactivated"), Some(previous)) => KeyState::Deactivated {
            previous,
            at: time_tag(tags, tags::DEACTIVATED_AT).unwrap_or(DateTime::<Utc>::MIN_UTC),
        },
        _ => KeyState::Idle,
    }
}

/// The key id a half-stored rotation belongs to: the source secret already holds the new key's
/// secret (`pending`, previous = the stored id) while the key id secret still names the
/// previous key — a run stopped between the two writes of step 3 (pure).
pub fn half_stored<'a>(
    stored_id: &str,
    secret_tags: &'a BTreeMap<String, String>,
) -> Option<&'a str> {
    let belongs = secret_tags.get(tags::BELONGS_TO)?;
    (belongs != stored_id
        && secret_tags.get(tags::STATE).map(String::as_str) == Some("pending")
        && secret_tags.get(tags::PREVIOUS).map(String::as_str) == Some(stored_id))
    .then_some(belongs.as_str())
}

/// How long a denied `iam:ListAccessKeys` (the source key's age) is remembered before it is asked
/// again: a day, so that granting the permission takes effect the same day, while a user without
/// IAM rights (seed 000's) costs one denied call and one warning a day instead of one an hour.
pub const AGE_DENIAL_BACKOFF: chrono::Duration = chrono::Duration::hours(24);

/// How long after its `creating` marker a run may still be at work: the rotation budget
/// (a run is cancelled when it is spent) plus this margin for clock skew between instances.
pub const MARKER_MARGIN: chrono::Duration = chrono::Duration::seconds(60);

/// Which other keys to delete before creating one; `Err` names an active key someone else may
/// be using (pure).
///
/// `orphan_window` is when a crashed run could have created its key: from a minute before its
/// `creating` marker (IAM's and Key Vault's clocks differ) to the end of its budget. A key
/// created in it is that run's orphan, whose secret is lost, and is deleted; an active key
/// created outside it is someone else's (an operator's break-glass key) and is deleted only with
/// `SourceKeyDeleteForeignKey` (issue #15 L8).
pub fn keys_to_delete(
    keys: &[KeyInfo],
    current: &str,
    orphan_window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    delete_foreign: bool,
) -> Result<Vec<String>, String> {
    let mut out = vec![];
    for k in keys.iter().filter(|k| k.access_key_id != current) {
        let ours = matches!((orphan_window, k.created), (Some((from, to)), Some(created)) if created + chrono::Duration::seconds(60) >= from && created <= to);
        if ours || !k.active || delete_foreign {
            out.push(k.access_key_id.clone());
        } else {
            return Err(k.access_key_id.clone());
        }
    }
    Ok(out)
}

/// What a run did to the source key, for the report.
#[derive(Clone, Debug, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SourceKeyReport {
    pub actions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_access_key_id: Option<String>,
    /// Who the new key proved to be when this run verified it (`GetCallerIdentity` signed with
    /// it): the IAM user `stsbridge revoke --rotate-source-key` cleans up (issue #26).
    #[serde(skip)]
    pub verified_arn: Option<String>,
}

/// The source secrets as read, with their versions and tags.
#[derive(Clone, Debug)]
pub struct SourceRead {
    pub keys: AwsKeys,
    pub id: Option<StoredSecret>,
    pub secret: Option<StoredSecret>,
}

/// What the rotation lease allows this run (issue #17).
#[derive(Clone, Debug)]
pub struct Gate {
    /// `Err(why)` when the lease store could not be used: no new key rotation starts.
    pub may_start: Result<(), String>,
    /// When the run started, if it waited for another run's lease: a key rotation that run
    /// completed after this one started answers a request to rotate. (The protocol's tags are
    /// whole seconds, so without a wait a rotation finished just before could pass for one
    /// finished after.)
    pub waited_since: Option<DateTime<Utc>>,
}

/// What is left to do after the credentials are published.
#[derive(Clone, Debug)]
pub enum After {
    Nothing,
    /// Step 6: deactivate the previous key.
    Deactivate {
        previous: String,
    },
    /// Step 6, later: delete the previous key once the grace period is over.
    DeleteWhenDue {
        previous: String,
        at: DateTime<Utc>,
    },
    /// Record the stored key's creation date (once), so its age is known without IAM calls.
    LearnAge,
}

/// The protocol's working state through one run.
pub struct Plan {
    pub keys: AwsKeys,
    pub after: After,
    pub report: SourceKeyReport,
    refs: Option<(SecretRef, SecretRef)>,
    /// The latest versions of the two source secrets and their tags.
    versions: Option<(String, String, BTreeMap<String, String>)>,
}

impl Plan {
    /// Whether what is left completes the rotation this run carried out or resumed.
    pub fn completes_a_rotation(&self) -> bool {
        matches!(self.after, After::Deactivate { .. })
    }

    /// Whether what is left is bookkeeping, for the side work.
    pub fn has_side_work(&self) -> bool {
        matches!(self.after, After::LearnAge | After::DeleteWhenDue { .. })
    }

    /// Whether the side work changes a key (deleting the previous one), which runs only under
    /// the run's lease.
    pub fn changes_a_key_later(&self) -> bool {
        matches!(self.after, After::DeleteWhenDue { .. })
    }
}

fn now_tag(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn failure(code: &str, message: String) -> Failure {
    Failure::new(Step::SourceKey, Kind::Upstream, code, message)
}

fn aws_failure(e: &AwsError) -> Failure {
    Failure::from_aws(Step::SourceKey, e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn key(id: &str, active: bool, created_min: u32) -> KeyInfo {
        KeyInfo {
            access_key_id: id.into(),
            active,
            created: Some(Utc.with_ymd_and_hms(2030, 1, 1, 0, created_min, 0).unwrap()),
        }
    }

    #[test]
    fn an_inactive_other_key_is_deleted_and_an_active_one_stops_the_protocol() {
        let keys = [key("CUR", true, 0), key("OLD", false, 1)];
        assert_eq!(
            keys_to_delete(&keys, "CUR", None, false),
            Ok(vec!["OLD".to_string()])
        );
        let keys = [key("CUR", true, 0), key("FOREIGN", true, 1)];
        assert_eq!(
            keys_to_delete(&keys, "CUR", None, false),
            Err("FOREIGN".to_string())
        );
        assert_eq!(
            keys_to_delete(&keys, "CUR", None, true),
            Ok(vec!["FOREIGN".to_string()])
        );
    }

    #[test]
    fn a_key_created_after_an_unfinished_start_is_our_orphan() {
        let since = Utc.with_ymd_and_hms(2030, 1, 1, 0, 5, 0).unwrap();
        let window = Some((since, since + chrono::Duration::minutes(3)));
        let keys = [key("CUR", true, 0), key("ORPHAN", true, 5)];
        assert_eq!(
            keys_to_delete(&keys, "CUR", window, false),
            Ok(vec!["ORPHAN".to_string()])
        );
        let older = [key("CUR", true, 0), key("FOREIGN", true, 1)];
        assert!(keys_to_delete(&older, "CUR", window, false).is_err());
    }

    /// Issue #15 L8: an operator's key made after a crashed run's budget is not its orphan.
    #[test]
    fn an_active_key_created_after_the_markers_window_is_foreign() {
        let since = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        let window = Some((since, since + chrono::Duration::minutes(3)));
        let keys = [key("CUR", true, 0), key("BREAKGLASS", true, 30)];
        assert_eq!(
            keys_to_delete(&keys, "CUR", window, false),
            Err("BREAKGLASS".to_string())
        );
        assert_eq!(
            keys_to_delete(&keys, "CUR", window, true),
            Ok(vec!["BREAKGLASS".to_string()])
        );
    }

    #[test]
    fn a_half_stored_rotation_is_recognised_from_the_secrets_tags() {
        let tags: BTreeMap<String, String> = [
            (tags::STATE, "pending"),
            (tags::PREVIOUS, "OLD"),
            (tags::BELONGS_TO, "NEW"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(half_stored("OLD", &tags), Some("NEW"));
        assert_eq!(half_stored("NEW", &tags), None);
        assert_eq!(half_stored("OTHER", &tags), None);
    }

    #[test]
    fn the_state_is_read_from_the_tags() {
        let mut t = BTreeMap::new();
        assert_eq!(state_of(&t), KeyState::Idle);
        t.insert(tags::STATE.to_string(), "pending".to_string());
        t.insert(tags::PREVIOUS.to_string(), "OLD".to_string());
        assert_eq!(
            state_of(&t),
            KeyState::Pending {
                previous: "OLD".into()
            }
        );
        t.insert(tags::STATE.to_string(), "complete".to_string());
        assert_eq!(state_of(&t), KeyState::Idle);
    }
}
