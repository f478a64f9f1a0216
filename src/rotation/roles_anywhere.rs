//! Roles Anywhere mode's **mint** (issue #30) in the rotation: the shared minter
//! ([`crate::roles_anywhere`]), its failures as the rotation reports them.

use std::sync::Arc;

use super::{Failure, Kind, RotationService, Step};
use crate::roles_anywhere::{MintError, SigningCertificate, Stage};
use crate::secrets::MintedCredentials;

impl From<MintError> for Failure {
    fn from(e: MintError) -> Self {
        let step = match e.stage {
            Stage::Certificate => Step::ReadSource,
            Stage::Sign | Stage::Session => Step::Mint,
        };
        let kind = if e.settings {
            Kind::Settings
        } else if e.unreachable {
            Kind::Unreachable
        } else {
            Kind::Upstream
        };
        let f = Failure::new(step, kind, e.code, e.message);
        match e.hint {
            Some(h) => f.with_hint(h),
            None => f,
        }
    }
}

impl RotationService {
    /// Roles Anywhere mode's certificate (read once, then kept; for `check` and the reads of a
    /// run); `None` in the other modes.
    pub async fn roles_anywhere_certificate(
        &self,
    ) -> Result<Option<Arc<SigningCertificate>>, Failure> {
        match &self.roles_anywhere {
            Some(minter) => Ok(Some(minter.certificate().await?)),
            None => Ok(None),
        }
    }

    /// `CreateSession`, signed by the certificate's key in Key Vault.
    pub(super) async fn mint_roles_anywhere(
        &self,
        duration_secs: u64,
    ) -> Result<MintedCredentials, Failure> {
        let minter = self
            .roles_anywhere
            .as_ref()
            .expect("built for roles-anywhere mode");
        Ok(minter.mint(duration_secs).await?)
    }
}
