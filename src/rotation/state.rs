//! The state of the published set, without minting: `GET HttpRotate`.

use std::collections::BTreeMap;

use chrono::{SecondsFormat, Utc};
use serde::Serialize;

use super::{Failure, RotationService};
use crate::tags;

/// The current state of the published set, for `GET HttpRotate` and `stsbridge show`.
#[derive(Clone, Debug, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub published: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minted_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    pub versions: BTreeMap<String, String>,
    /// Whether the three separate secrets hold the bundle's set.
    pub consistent: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// What the last side work of this instance did (see [`super::side`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub side_work: Option<super::SideWork>,
}

impl RotationService {
    /// The state of the published set, without minting.
    pub async fn state(&self) -> Result<State, Failure> {
        let current = self.read_current().await?;
        let now = Utc::now();
        let mut state = State {
            side_work: self.last_side_work(),
            ..State::default()
        };
        let t = &self.settings.targets;
        state.versions = current.versions(t);
        let Some(bundle) = current.bundle_published() else {
            state
                .warnings
                .push("no credentials are published yet".into());
            return Ok(state);
        };
        state.published = true;
        state.access_key_id = bundle.set_id().map(str::to_string);
        state.mode = bundle.tags.get(tags::MODE).cloned();
        state.role_arn = bundle.tags.get(tags::ROLE_ARN).cloned();
        state.minted_at = bundle
            .minted_at()
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true));
        if let Some(exp) = bundle.expires {
            let remaining = exp.signed_duration_since(now).num_seconds();
            state.expiration = Some(exp.to_rfc3339_opts(SecondsFormat::Secs, true));
            state.remaining_seconds = Some(remaining);
            if remaining <= 0 {
                state
                    .warnings
                    .push("the published credentials have expired".into());
            } else if remaining < self.settings.expiry_warning.as_secs() as i64 {
                state
                    .warnings
                    .push(format!("the published credentials expire in {remaining} s"));
            }
        }
        let set_id = bundle.set_id().unwrap_or_default();
        let stale = current.out_of_step(set_id, t);
        state.consistent = stale.is_empty();
        if !stale.is_empty() {
            state
                .warnings
                .push(format!("out of step with the bundle: {}", stale.join(", ")));
        }
        Ok(state)
    }
}
