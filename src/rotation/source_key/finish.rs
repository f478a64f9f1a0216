//! Step 6 and bookkeeping, after the credentials are published: deactivate the previous key,
//! delete it once its grace period is over, record the stored key's age. Failures here never
//! undo a good publish: they become warnings, and the next run retries.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{now_tag, tags, After, Plan, AGE_DENIAL_BACKOFF};
use crate::aws::AwsError;
use crate::rotation::RotationService;

impl RotationService {
    /// Learning the key's age runs after the run's lease is released (it changes no key, and a
    /// hanging IAM would otherwise hold the lease, and every trigger behind it, for the side
    /// work's whole budget). Its tag write therefore goes only onto the version this run read,
    /// and only while that version is still the latest with the tags read at the start: another
    /// run that took the lease meanwhile (a key rotation writing its `creating` marker) must not
    /// lose a tag to this stale read-modify-write. The re-read narrows the window to one round
    /// trip; a skipped write is retried by a later run.
    async fn retag_if_unchanged(
        &self,
        secret: &crate::azure::reference::SecretRef,
        version: &str,
        read: &BTreeMap<String, String>,
        new: &BTreeMap<String, String>,
    ) -> Result<bool, crate::azure::keyvault::VaultError> {
        let latest = self.vaults.get(secret).await?;
        if latest.version != version || &latest.tags != read {
            return Ok(false);
        }
        self.vaults.update_tags(secret, version, new).await?;
        Ok(true)
    }

    /// Step 6 and bookkeeping, after the credentials are published. Failures here do not undo
    /// a good publish: they become warnings, and the next run retries.
    pub(in crate::rotation) async fn finish_source_key(
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
                        match self.retag_if_unchanged(&id_ref, &id_version, &tags, &t).await {
                            Ok(true) => plan.report.actions.push(format!(
                                "recorded the source key's creation date ({})",
                                now_tag(created)
                            )),
                            Ok(false) => plan.report.actions.push(
                                "left the source key's age unrecorded: its secret changed meanwhile (a later run records it)".into(),
                            ),
                            Err(e) => {
                                warnings.push(format!("could not record the source key's age: {e}"))
                            }
                        }
                    }
                }
                Err(AwsError::Refused { code, .. }) if code == "AccessDenied" => {
                    let until = now + AGE_DENIAL_BACKOFF;
                    let mut t = tags.clone();
                    t.insert(tags::AGE_DENIED_UNTIL.into(), now_tag(until));
                    let remembered = match self
                        .retag_if_unchanged(&id_ref, &id_version, &tags, &t)
                        .await
                    {
                        Ok(true) => format!("not asked again before {}", now_tag(until)),
                        Ok(false) => {
                            "its secret changed meanwhile, so the denial is not recorded yet".into()
                        }
                        Err(e) => format!("and the denial could not be recorded ({e})"),
                    };
                    warnings.push(format!(
                        "iam:ListAccessKeys is denied, so the source key's age is unknown and the timer cannot rotate it when it is SourceKeyMaxAgeDays old; allow iam:ListAccessKeys on the user itself, or set SourceKeyMaxAgeDays=0 to stop asking ({remembered})"
                    ));
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
