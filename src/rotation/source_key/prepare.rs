//! Before minting: resume an interrupted rotation of the IAM user's key, start one when it is due
//! or asked for, or leave the key alone (another target owns it, another run is at work on it).

use chrono::{DateTime, SubsecRound, Utc};

use super::{
    failure, half_stored, now_tag, state_of, tags, time_tag, After, Gate, KeyState, Plan,
    SourceKeyReport, SourceRead, MARKER_MARGIN,
};
use crate::azure::keyvault::{NewVersion, StoredSecret};
use crate::azure::reference::SecretRef;
use crate::rotation::{Failure, Kind, RotationService, Step};

impl RotationService {
    /// Steps before minting: resume an interrupted rotation, or start one when due or asked.
    pub(in crate::rotation) async fn prepare_source_key(
        &self,
        read: SourceRead,
        requested: bool,
        gate: Gate,
        now: DateTime<Utc>,
    ) -> Result<Plan, Failure> {
        let mut plan = Plan {
            keys: read.keys.clone(),
            after: After::Nothing,
            report: SourceKeyReport::default(),
            refs: None,
            versions: None,
        };
        if let Some(owner) = &self.settings.source_key_rotated_by {
            follow_owner(&mut plan, &read, owner, requested);
            return Ok(plan);
        }
        let Some(refs) = self.settings.mode.source().and_then(|s| s.writable()) else {
            return if requested {
                Err(self.not_writable())
            } else {
                Ok(plan)
            };
        };
        let (Some(id_stored), Some(secret_stored)) = (read.id, read.secret) else {
            return Ok(plan);
        };
        plan.refs = Some(refs.clone());
        let (id_version, tags) = self
            .complete_half_stored(&mut plan, &refs, id_stored, &secret_stored)
            .await?;
        plan.versions = Some((id_version, secret_stored.version.clone(), tags.clone()));
        self.next_step(plan, state_of(&tags), &tags, requested, gate, now)
            .await
    }

    /// Why a requested rotation cannot be done with these settings.
    fn not_writable(&self) -> Failure {
        let message = match self.settings.mode.source().map(|s| s.settings) {
            Some((a, b)) => format!("rotating the IAM user's key needs {a} and {b} as versionless secret URIs or Key Vault references (the app writes the new key there); given as values or pinned to a version, they cannot follow a rotation"),
            None => "this CredentialMode uses no AWS access key: there is none to rotate".to_string(),
        };
        Failure::new(
            Step::SourceKey,
            Kind::BadRequest,
            "SourceKeyNotWritable",
            message,
        )
    }

    /// A crash between the two writes of step 3 left the secret belonging to the new key while
    /// the key id secret still names the previous one: complete the write. Returns the key id
    /// secret's version and the tags the protocol's state is read from.
    async fn complete_half_stored(
        &self,
        plan: &mut Plan,
        refs: &(SecretRef, SecretRef),
        id_stored: StoredSecret,
        secret_stored: &StoredSecret,
    ) -> Result<(String, std::collections::BTreeMap<String, String>), Failure> {
        let Some(belongs) = secret_stored.tags.get(tags::BELONGS_TO) else {
            return Ok((id_stored.version, id_stored.tags));
        };
        if *belongs == plan.keys.access_key_id {
            return Ok((id_stored.version, id_stored.tags));
        }
        if half_stored(&plan.keys.access_key_id, &secret_stored.tags).is_none() {
            return Err(failure(
                "SourceKeysOutOfStep",
                format!(
                    "{} holds {} but {} belongs to {belongs}: fix the source secrets by hand",
                    refs.0, plan.keys.access_key_id, refs.1
                ),
            ));
        }
        let value = secrecy::SecretString::from(belongs.clone());
        let id_version = self
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
        plan.report
            .actions
            .push("completed an interrupted key rotation: stored the new key id".into());
        Ok((id_version, secret_stored.tags.clone()))
    }

    /// What this run does, from where the protocol stands.
    async fn next_step(
        &self,
        mut plan: Plan,
        state: KeyState,
        tags: &std::collections::BTreeMap<String, String>,
        requested: bool,
        gate: Gate,
        now: DateTime<Utc>,
    ) -> Result<Plan, Failure> {
        match state {
            KeyState::Pending { previous } => {
                plan.report.verified_arn = Some(self.verify_new_key(&plan.keys).await?.arn);
                plan.report.actions.push("verified the new key".into());
                plan.report.previous_access_key_id = Some(previous.clone());
                plan.report.access_key_id = Some(plan.keys.access_key_id.clone());
                plan.after = After::Deactivate { previous };
                Ok(plan)
            }
            KeyState::Deactivated { previous, at } => {
                if self.after_deactivation(&mut plan, &previous, at, requested, &gate, now)? {
                    return Ok(plan);
                }
                let state = KeyState::Deactivated { previous, at };
                self.rotate_when_due(plan, state, tags, requested, gate, now)
                    .await
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
                self.rotate_when_due(plan, state, tags, requested, gate, now)
                    .await
            }
        }
    }

    /// A key rotation that deactivated the previous key: what this run does about it. `Ok(true)`
    /// when that settles the run's step; `Ok(false)` when a requested rotation may go ahead.
    fn after_deactivation(
        &self,
        plan: &mut Plan,
        previous: &str,
        at: DateTime<Utc>,
        requested: bool,
        gate: &Gate,
        now: DateTime<Utc>,
    ) -> Result<bool, Failure> {
        let grace = chrono::Duration::hours(self.settings.source_key_delete_after_hours as i64);
        // Another instance rotated the key while this trigger waited for the lease: that
        // rotation answers this request too (as a set minted after a forced trigger arrived).
        let rotated_while_waiting = gate
            .waited_since
            .is_some_and(|since| at >= since.trunc_subsecs(0));
        if requested && rotated_while_waiting {
            plan.report.actions.push(format!(
                "another run rotated the IAM user's key at {}, after this request arrived; not rotated again",
                now_tag(at)
            ));
        }
        if !requested || rotated_while_waiting {
            plan.after = After::DeleteWhenDue {
                previous: previous.to_string(),
                at,
            };
            return Ok(true);
        }
        // IAM allows two keys, so a new one would need the previous key deleted before its
        // grace period is over, when it can no longer be reactivated (issue #15 L8).
        if now.signed_duration_since(at) < grace {
            return Err(Failure::new(
                Step::SourceKey,
                Kind::Conflict,
                "PreviousKeyInGracePeriod",
                format!(
                    "the previous key {previous} was deactivated at {} and is kept until {} (SourceKeyDeleteAfterHours) so it can be reactivated; IAM allows two keys, so a new one cannot be created before then: rotate again after that, or lower SourceKeyDeleteAfterHours",
                    now_tag(at),
                    now_tag(at + grace)
                ),
            ));
        }
        Ok(false)
    }

    /// Rotates the key when it is due (requested, a started rotation to finish, or older than
    /// `SourceKeyMaxAgeDays`) and the rotation lease allows a new one; else plans the side work.
    async fn rotate_when_due(
        &self,
        mut plan: Plan,
        state: KeyState,
        tags: &std::collections::BTreeMap<String, String>,
        requested: bool,
        gate: Gate,
        now: DateTime<Utc>,
    ) -> Result<Plan, Failure> {
        let max_age = self.settings.source_key_max_age_days;
        let created = time_tag(tags, tags::KEY_CREATED);
        // A rotation that was started is finished, whatever the key's age.
        let resuming = matches!(state, KeyState::Creating { .. });
        let due = requested
            || resuming
            || (max_age > 0
                && created.is_some_and(|c| {
                    now.signed_duration_since(c) >= chrono::Duration::days(max_age as i64)
                }));
        if !due {
            // A denial is remembered on the secret, where every instance sees it.
            let denied = time_tag(tags, tags::AGE_DENIED_UNTIL).is_some_and(|t| now < t);
            if max_age > 0 && created.is_none() && !denied {
                plan.after = After::LearnAge;
            }
            return Ok(plan);
        }
        // A new rotation starts only under the rotation lease (issue #17); one already started
        // (`Creating`) is finished.
        if let (Err(why), false) = (&gate.may_start, resuming) {
            let message = format!("a new rotation of the IAM user's key starts only under the rotation lease, and it could not be used ({why})");
            if requested {
                return Err(Failure::new(
                    Step::SourceKey,
                    Kind::Unreachable,
                    "RotationLeaseUnavailable",
                    format!("{message}: nothing was minted; make the storage account (AzureWebJobsStorage) reachable and try again"),
                ));
            }
            plan.report.actions.push(format!(
                "not started: {message}; minted with the stored key"
            ));
            return Ok(plan);
        }
        let orphan_window = match state {
            KeyState::Creating { since, .. } => Some((since, since + self.marker_lifetime())),
            _ => None,
        };
        self.create_and_store(&mut plan, orphan_window, now).await?;
        plan.report.verified_arn = Some(self.verify_new_key(&plan.keys).await?.arn);
        plan.report.actions.push("verified the new key".into());
        Ok(plan)
    }
}

/// A key shared by several targets is rotated by its first target only; the others never act on
/// it (issue #15 M3). They only follow a rotation the owner has half-stored, so they mint with
/// the key the secret belongs to.
fn follow_owner(plan: &mut Plan, read: &SourceRead, owner: &str, requested: bool) {
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
}
