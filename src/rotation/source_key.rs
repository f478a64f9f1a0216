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

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::{Failure, Kind, RotationService, Step};
use crate::aws::iam::KeyInfo;
use crate::aws::AwsError;
use crate::azure::keyvault::{NewVersion, StoredSecret};
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
}

/// The source secrets as read, with their versions and tags.
#[derive(Clone, Debug)]
pub struct SourceRead {
    pub keys: AwsKeys,
    pub id: Option<StoredSecret>,
    pub secret: Option<StoredSecret>,
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

fn now_tag(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn failure(code: &str, message: String) -> Failure {
    Failure::new(Step::SourceKey, Kind::Upstream, code, message)
}

fn aws_failure(e: &AwsError) -> Failure {
    Failure::from_aws(Step::SourceKey, e)
}

impl RotationService {
    /// Steps before minting: resume an interrupted rotation, or start one when due or asked.
    pub(super) async fn prepare_source_key(
        &self,
        read: SourceRead,
        requested: bool,
        now: DateTime<Utc>,
    ) -> Result<Plan, Failure> {
        let s = &self.settings;
        let mut plan = Plan {
            keys: read.keys.clone(),
            after: After::Nothing,
            report: SourceKeyReport::default(),
            refs: None,
            versions: None,
        };
        // A key shared by several targets is rotated by its first target only; the others never
        // act on it (issue #15 M3), they only follow a rotation the owner has half-stored.
        if let Some(owner) = &self.settings.source_key_rotated_by {
            if requested {
                plan.report.actions.push(format!(
                    "not rotated here: target {owner} rotates this IAM user's key"
                ));
            }
            if let Some(secret) = &read.secret {
                if let Some(belongs) = half_stored(&plan.keys.access_key_id, &secret.tags) {
                    plan.keys.access_key_id = belongs.to_string();
                }
            }
            return Ok(plan);
        }
        let Some(refs) = self.settings.mode.source().and_then(|s| s.writable()) else {
            if requested {
                let message = match self.settings.mode.source().map(|s| s.settings) {
                    Some((a, b)) => format!("rotating the IAM user's key needs {a} and {b} as versionless secret URIs or Key Vault references (the app writes the new key there); given as values or pinned to a version, they cannot follow a rotation"),
                    None => "this CredentialMode uses no AWS access key: there is none to rotate".to_string(),
                };
                return Err(Failure::new(
                    Step::SourceKey,
                    Kind::BadRequest,
                    "SourceKeyNotWritable",
                    message,
                ));
            }
            return Ok(plan);
        };
        let (Some(id_stored), Some(secret_stored)) = (read.id, read.secret) else {
            return Ok(plan);
        };
        plan.refs = Some(refs.clone());
        let mut tags = id_stored.tags.clone();
        let mut id_version = id_stored.version.clone();

        // A crash between the two writes of step 3: the secret belongs to the new key, the
        // key id secret still names the previous one. Complete the write.
        if let Some(belongs) = secret_stored.tags.get(tags::BELONGS_TO) {
            if *belongs != plan.keys.access_key_id {
                let resumable =
                    half_stored(&plan.keys.access_key_id, &secret_stored.tags).is_some();
                if !resumable {
                    return Err(failure(
                        "SourceKeysOutOfStep",
                        format!(
                            "{} holds {} but {} belongs to {belongs}: fix the source secrets by hand",
                            refs.0, plan.keys.access_key_id, refs.1
                        ),
                    ));
                }
                let value = secrecy::SecretString::from(belongs.clone());
                id_version = self
                    .vaults
                    .set(
                        &refs.0,
                        NewVersion {
                            value: &value,
                            content_type: "text/plain",
                            tags: &secret_stored.tags,
                            expires: None,
                        },
                    )
                    .await
                    .map_err(|e| {
                        Failure::from_vault(
                            Step::SourceKey,
                            "completing the interrupted key rotation",
                            &e,
                        )
                    })?;
                plan.keys.access_key_id = belongs.clone();
                tags = secret_stored.tags.clone();
                plan.report
                    .actions
                    .push("completed an interrupted key rotation: stored the new key id".into());
            }
        }
        plan.versions = Some((id_version, secret_stored.version.clone(), tags.clone()));

        match state_of(&tags) {
            KeyState::Pending { previous } => {
                self.verify_new_key(&plan.keys).await?;
                plan.report.actions.push("verified the new key".into());
                plan.report.previous_access_key_id = Some(previous.clone());
                plan.report.access_key_id = Some(plan.keys.access_key_id.clone());
                plan.after = After::Deactivate { previous };
                Ok(plan)
            }
            KeyState::Deactivated { previous, at } if !requested => {
                plan.after = After::DeleteWhenDue { previous, at };
                Ok(plan)
            }
            // IAM allows two keys, so a new one would need the previous key deleted before its
            // grace period is over, when it can no longer be reactivated (issue #15 L8).
            KeyState::Deactivated { previous, at }
                if now.signed_duration_since(at)
                    < chrono::Duration::hours(s.source_key_delete_after_hours as i64) =>
            {
                let until = at + chrono::Duration::hours(s.source_key_delete_after_hours as i64);
                Err(Failure::new(
                    Step::SourceKey,
                    Kind::Conflict,
                    "PreviousKeyInGracePeriod",
                    format!(
                        "the previous key {previous} was deactivated at {} and is kept until {} (SourceKeyDeleteAfterHours) so it can be reactivated; IAM allows two keys, so a new one cannot be created before then: rotate again after that, or lower SourceKeyDeleteAfterHours",
                        now_tag(at),
                        now_tag(until)
                    ),
                ))
            }
            KeyState::Creating {
                since,
                ended: false,
            } if now <= since + self.marker_lifetime() => {
                // Another run (another instance, the CLI, the timer) is creating a key right now:
                // its marker is younger than any run can live. Acting on it would delete the key
                // that run is about to store (issue #15 M3).
                let message = format!(
                    "another run started rotating the IAM user's key at {} and may still be at work (for up to RotationTimeBudgetSeconds + {} s)",
                    now_tag(since),
                    MARKER_MARGIN.num_seconds()
                );
                if requested {
                    return Err(Failure::new(
                        Step::SourceKey,
                        Kind::Conflict,
                        "KeyRotationInProgress",
                        format!("{message}: try again once it has finished"),
                    ));
                }
                plan.report
                    .actions
                    .push(format!("left alone: {message}; minted with the stored key"));
                plan.refs = None;
                Ok(plan)
            }
            state => {
                let max_age = s.source_key_max_age_days;
                let created = time_tag(&tags, tags::KEY_CREATED);
                // A rotation that was started is finished, whatever the key's age.
                let due = requested
                    || matches!(state, KeyState::Creating { .. })
                    || (max_age > 0
                        && created.is_some_and(|c| {
                            now.signed_duration_since(c) >= chrono::Duration::days(max_age as i64)
                        }));
                if !due {
                    if max_age > 0 && created.is_none() {
                        plan.after = After::LearnAge;
                    }
                    return Ok(plan);
                }
                let orphan_window = match state {
                    KeyState::Creating { since, .. } => {
                        Some((since, since + self.marker_lifetime()))
                    }
                    _ => None,
                };
                self.create_and_store(&mut plan, orphan_window, now).await?;
                self.verify_new_key(&plan.keys).await?;
                plan.report.actions.push("verified the new key".into());
                Ok(plan)
            }
        }
    }

    /// How long a `creating` marker may belong to a run still at work.
    fn marker_lifetime(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.settings.rotation_time_budget)
            .unwrap_or(chrono::Duration::MAX)
            + MARKER_MARGIN
    }

    /// Steps 1–3.
    async fn create_and_store(
        &self,
        plan: &mut Plan,
        orphan_window: Option<(DateTime<Utc>, DateTime<Utc>)>,
        now: DateTime<Utc>,
    ) -> Result<(), Failure> {
        let (id_ref, secret_ref) = plan.refs.clone().expect("writable");
        let (id_version, _, tags) = plan.versions.clone().expect("read");
        let current = plan.keys.clone();

        let listed = self
            .iam
            .list_keys(&current)
            .await
            .map_err(|e| aws_failure(&e))?;
        let doomed = keys_to_delete(&listed, &current.access_key_id, orphan_window, self.settings.source_key_delete_foreign)
            .map_err(|foreign| {
                failure(
                    "ForeignAccessKey",
                    format!("the IAM user has another active key, {foreign}, that is not the one in Key Vault: someone else may be using it. Delete it, or set SourceKeyDeleteForeignKey=true"),
                )
            })?;
        for id in doomed {
            self.iam
                .delete(&current, &id)
                .await
                .map_err(|e| aws_failure(&e))?;
            plan.report
                .actions
                .push(format!("deleted the other key {id}"));
        }

        let mut marker = tags.clone();
        marker.insert(tags::STATE.into(), "creating".into());
        marker.insert(tags::CREATING_SINCE.into(), now_tag(now));
        self.vaults
            .update_tags(&id_ref, &id_version, &marker)
            .await
            .map_err(|e| {
                Failure::from_vault(Step::SourceKey, "marking the key rotation as started", &e)
            })?;

        // A run that stops with an error says so on its marker, so the next run resumes at once;
        // only a run that dies outright leaves a marker that looks live until it is too old.
        let result = self
            .create_and_store_marked(plan, &current, (&id_ref, &secret_ref), now)
            .await;
        if result.is_err() {
            let mut ended = marker;
            ended.insert(tags::CREATING_ENDED.into(), now_tag(Utc::now()));
            if let Err(e) = self.vaults.update_tags(&id_ref, &id_version, &ended).await {
                tracing::warn!("could not record that the key rotation stopped (the next run waits for the marker to age): {e}");
            }
        }
        result
    }

    /// Steps 2 (after the marker) and 3: create the key and store it.
    async fn create_and_store_marked(
        &self,
        plan: &mut Plan,
        current: &AwsKeys,
        (id_ref, secret_ref): (&SecretRef, &SecretRef),
        now: DateTime<Utc>,
    ) -> Result<(), Failure> {
        let new = self
            .iam
            .create_key(current)
            .await
            .map_err(|e| aws_failure(&e))?;
        plan.report
            .actions
            .push(format!("created {}", new.access_key_id));

        let mut pending = BTreeMap::new();
        pending.insert(tags::STATE.to_string(), "pending".to_string());
        pending.insert(tags::PREVIOUS.to_string(), current.access_key_id.clone());
        pending.insert(tags::BELONGS_TO.to_string(), new.access_key_id.clone());
        pending.insert(tags::KEY_CREATED.to_string(), now_tag(now));
        let stored_secret = self
            .vaults
            .set(
                secret_ref,
                NewVersion {
                    value: &new.secret_access_key,
                    content_type: "text/plain",
                    tags: &pending,
                    expires: None,
                },
            )
            .await;
        let secret_version = match stored_secret {
            Ok(v) => v,
            Err(e) => {
                self.settle_lost_secret_write(secret_ref, current, &new, plan, e)
                    .await?
            }
        };
        let id_value = secrecy::SecretString::from(new.access_key_id.clone());
        let id_version = self
            .vaults
            .set(id_ref, NewVersion { value: &id_value, content_type: "text/plain", tags: &pending, expires: None })
            .await
            .map_err(|e| {
                Failure::from_vault(
                    Step::SourceKey,
                    "storing the new key id (its secret is stored; the next run completes the rotation)",
                    &e,
                )
            })?;
        plan.report
            .actions
            .push("stored the new key in Key Vault".into());
        plan.report.access_key_id = Some(new.access_key_id.clone());
        plan.report.previous_access_key_id = Some(current.access_key_id.clone());
        plan.versions = Some((id_version, secret_version, pending));
        plan.after = After::Deactivate {
            previous: current.access_key_id.clone(),
        };
        plan.keys = new;
        Ok(())
    }

    /// Storing the new key's secret failed. The failure may be ambiguous — a PUT that committed
    /// and whose answer was lost (the SDK retries, then gives up) — so the vault is asked
    /// before anything is deleted (issue #15 M2): if it holds the new secret, the rotation goes
    /// on with that version; if it does not, the key is deleted at once (its secret exists
    /// nowhere else); if it cannot be asked, the key is kept and the next run finds out (the
    /// `creating` marker makes it either finish the rotation or delete the key as an orphan).
    async fn settle_lost_secret_write(
        &self,
        secret_ref: &SecretRef,
        current: &AwsKeys,
        new: &AwsKeys,
        plan: &mut Plan,
        error: crate::azure::keyvault::VaultError,
    ) -> Result<String, Failure> {
        use secrecy::ExposeSecret;
        let fail = |what: String| {
            Failure::from_vault(
                Step::SourceKey,
                &format!("storing the new key's secret; {what}"),
                &error,
            )
        };
        match self.vaults.get(secret_ref).await {
            Ok(latest)
                if latest.tags.get(tags::BELONGS_TO) == Some(&new.access_key_id)
                    && latest.value.expose_secret() == new.secret_access_key.expose_secret() =>
            {
                plan.report.actions.push(
                    "the answer to storing the new key's secret was lost; the vault holds it"
                        .into(),
                );
                Ok(latest.version)
            }
            Ok(_) => {
                let cleanup = match self.iam.delete(current, &new.access_key_id).await {
                    Ok(()) => format!("the new key {} was deleted again", new.access_key_id),
                    Err(d) => format!(
                        "the new key {} could NOT be deleted ({d}); the next run deletes it (it is recorded by the key-rotation=creating tag), or delete it by hand",
                        new.access_key_id
                    ),
                };
                Err(fail(cleanup))
            }
            Err(read) => Err(fail(format!(
                "the vault could not be asked whether it holds it ({read}), so the new key {} is kept: the next run stores it or deletes it",
                new.access_key_id
            ))),
        }
    }

    /// Step 4: `GetCallerIdentity` with the new key, waiting out IAM's propagation delay.
    async fn verify_new_key(&self, keys: &AwsKeys) -> Result<(), Failure> {
        let deadline = std::time::Instant::now() + self.settings.source_key_propagation;
        let mut delay = std::time::Duration::from_millis(250);
        loop {
            match self.sts.source_identity(keys).await {
                Ok(_) => return Ok(()),
                Err(AwsError::Refused { ref code, .. })
                    if (code == "InvalidClientTokenId" || code == "SignatureDoesNotMatch")
                        && std::time::Instant::now() + delay < deadline =>
                {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(std::time::Duration::from_secs(5));
                }
                Err(e) => {
                    return Err(aws_failure(&e).with_hint(format!(
                        "the new key {} still does not work after SourceKeyPropagationSeconds ({} s); it is stored in Key Vault and the next run tries again",
                        keys.access_key_id,
                        self.settings.source_key_propagation.as_secs()
                    )))
                }
            }
        }
    }

    /// Step 6 and bookkeeping, after the credentials are published. Failures here do not undo
    /// a good publish: they become warnings, and the next run retries.
    pub(super) async fn finish_source_key(
        &self,
        plan: &mut Plan,
        now: DateTime<Utc>,
    ) -> Vec<String> {
        let mut warnings = vec![];
        let (Some((id_ref, secret_ref)), Some((id_version, secret_version, tags))) =
            (plan.refs.clone(), plan.versions.clone())
        else {
            return warnings;
        };
        let keys = plan.keys.clone();
        let retag = |mut t: BTreeMap<String, String>| {
            let (id_ref, secret_ref, id_version, secret_version) = (
                id_ref.clone(),
                secret_ref.clone(),
                id_version.clone(),
                secret_version.clone(),
            );
            t.remove(tags::CREATING_SINCE);
            t.remove(tags::CREATING_ENDED);
            async move {
                let (a, b) = tokio::join!(
                    self.vaults.update_tags(&id_ref, &id_version, &t),
                    self.vaults.update_tags(&secret_ref, &secret_version, &t),
                );
                a.and(b)
            }
        };
        match plan.after.clone() {
            After::Nothing => {}
            After::LearnAge => match self.iam.list_keys(&keys).await {
                Ok(list) => {
                    if let Some(created) = list
                        .iter()
                        .find(|k| k.access_key_id == keys.access_key_id)
                        .and_then(|k| k.created)
                    {
                        let mut t = tags.clone();
                        t.insert(tags::KEY_CREATED.into(), now_tag(created));
                        if let Err(e) = self.vaults.update_tags(&id_ref, &id_version, &t).await {
                            warnings.push(format!("could not record the source key's age: {e}"));
                        }
                    }
                }
                Err(e) => warnings.push(format!(
                    "could not read the source key's age (iam:ListAccessKeys): {e}"
                )),
            },
            After::Deactivate { previous } => {
                if previous != keys.access_key_id {
                    if let Err(e) = self.iam.deactivate(&keys, &previous).await {
                        if !matches!(&e, AwsError::Refused { code, .. } if code == "NoSuchEntity") {
                            warnings.push(format!("could not deactivate the previous key {previous} (the next run retries): {e}"));
                            return warnings;
                        }
                    }
                    plan.report
                        .actions
                        .push(format!("deactivated the previous key {previous}"));
                }
                let mut t = tags.clone();
                t.insert(tags::STATE.into(), "deactivated".into());
                t.insert(tags::DEACTIVATED_AT.into(), now_tag(now));
                if let Err(e) = retag(t).await {
                    warnings.push(format!(
                        "could not record the deactivation (the next run retries): {e}"
                    ));
                }
            }
            After::DeleteWhenDue { previous, at } => {
                let grace =
                    chrono::Duration::hours(self.settings.source_key_delete_after_hours as i64);
                if now.signed_duration_since(at) < grace || previous == keys.access_key_id {
                    return warnings;
                }
                if let Err(e) = self.iam.delete(&keys, &previous).await {
                    warnings.push(format!(
                        "could not delete the previous key {previous} (the next run retries): {e}"
                    ));
                    return warnings;
                }
                plan.report
                    .actions
                    .push(format!("deleted the previous key {previous}"));
                plan.report.previous_access_key_id = Some(previous);
                let mut t = tags.clone();
                t.insert(tags::STATE.into(), "complete".into());
                if let Err(e) = retag(t).await {
                    warnings.push(format!("could not record the deletion: {e}"));
                }
            }
        }
        warnings
    }
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
