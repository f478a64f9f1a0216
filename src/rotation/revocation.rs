//! What `stsbridge revoke` (issue #20, [`crate::revoke`]) needs of a target's published state:
//! the bundle's metadata, the IAM user's key id (to refuse operator credentials that are the
//! minting ones), who the source key *proves* to be (`GetCallerIdentity` signed with the pair
//! read from the vault: the IAM user to revoke, never a tag's word for it — issue #26), and the
//! `revoked-before` mark, written on the latest bundle version before the deny policy is put,
//! which every later rotation honours ([`super::decide`], and the re-read before a publish in
//! [`super`]).

use chrono::{DateTime, SecondsFormat, Utc};

use super::{Failure, Published, RotationService, Step};
use crate::aws::sts::CallerIdentity;
use crate::tags;

/// Who the source key read from the vault is, proven by a request it signed.
#[derive(Clone, Debug)]
pub struct SourceIdentity {
    /// The access key id read from the vault (an identifier, not a secret).
    pub access_key_id: String,
    pub caller: CallerIdentity,
}

impl RotationService {
    /// The published bundle's metadata (tags and expiry), `None` when nothing is published.
    pub async fn published(&self) -> Result<Option<Published>, Failure> {
        let current = self
            .vaults
            .get_optional(&self.settings.targets.bundle)
            .await
            .map_err(|e| {
                Failure::from_vault(Step::ReadCurrent, "reading the published bundle", &e)
            })?;
        Ok(current.map(|b| Published {
            tags: b.tags,
            expires: b.expires,
            published_at: b.created,
        }))
    }

    /// The IAM user's access key id as the settings give it (read from the vault when stored
    /// there); `None` in web-identity mode.
    pub async fn source_key_id(&self) -> Result<Option<String>, Failure> {
        Ok(self.read_source().await?.map(|s| s.keys.access_key_id))
    }

    /// `GetCallerIdentity` signed with the source key pair read from the vault: who the key
    /// belongs to, proven by its secret (a key id alone proves nothing — ids are not secret, and a
    /// writer to the vault could store anyone's). `None` in web-identity mode.
    pub async fn source_identity(&self) -> Result<Option<SourceIdentity>, Failure> {
        let Some(read) = self.read_source().await? else {
            return Ok(None);
        };
        let caller = self.sts.source_identity(&read.keys).await.map_err(|e| {
            Failure::from_aws(Step::Verify, &e).with_hint(
                "GetCallerIdentity signed with the source key read from the vault failed: the key is unknown to AWS, inactive, or its secret does not belong to it",
            )
        })?;
        Ok(Some(SourceIdentity {
            access_key_id: read.keys.access_key_id,
            caller,
        }))
    }

    /// Tags the latest bundle version with `revoked-before=cut_off` (a newer mark already there
    /// is kept). A property update: no new version, the value untouched. `false` when nothing is
    /// published (nothing to mark; the request's own cut-off guards the re-issue).
    pub async fn mark_revoked_before(&self, cut_off: DateTime<Utc>) -> Result<bool, Failure> {
        let secret = &self.settings.targets.bundle;
        let fail = |e| Failure::from_vault(Step::Publish, "marking the bundle as revoked", &e);
        let Some(bundle) = self.vaults.get_optional(secret).await.map_err(fail)? else {
            return Ok(false);
        };
        // A mark far in the future is no revocation's: it is replaced, not kept (issue #26).
        let (existing, _) = super::decide::believable_cut_off(
            super::decide::revoked_before_of(&bundle.tags),
            "",
            Utc::now(),
        );
        if existing.is_some_and(|e| e >= cut_off) {
            return Ok(true);
        }
        let mut tags = bundle.tags.clone();
        tags.insert(
            tags::REVOKED_BEFORE.into(),
            cut_off.to_rfc3339_opts(SecondsFormat::Secs, true),
        );
        self.vaults
            .update_tags(secret, &bundle.version, &tags)
            .await
            .map_err(fail)?;
        Ok(true)
    }
}
