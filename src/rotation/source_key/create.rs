//! Steps 1–4: clear the other key slot, mark the start, create the key, store it (secret first),
//! and verify it while IAM propagates it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{aws_failure, failure, keys_to_delete, now_tag, tags, After, Plan, MARKER_MARGIN};
use crate::aws::AwsError;
use crate::azure::keyvault::NewVersion;
use crate::azure::reference::SecretRef;
use crate::rotation::{Failure, RotationService, Step};
use crate::secrets::AwsKeys;

impl RotationService {
    /// How long a `creating` marker may belong to a run still at work.
    pub(super) fn marker_lifetime(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.settings.rotation_time_budget)
            .unwrap_or(chrono::Duration::MAX)
            + MARKER_MARGIN
    }

    /// Steps 1–3.
    pub(super) async fn create_and_store(
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
    /// Returns who the key proved to be.
    pub(super) async fn verify_new_key(
        &self,
        keys: &AwsKeys,
    ) -> Result<crate::aws::sts::CallerIdentity, Failure> {
        let deadline = std::time::Instant::now() + self.settings.source_key_propagation;
        let mut delay = std::time::Duration::from_millis(250);
        loop {
            match self.sts.source_identity(keys).await {
                Ok(identity) => return Ok(identity),
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
}
