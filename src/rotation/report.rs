//! What a rotation tells its caller: a [`Report`] on success, a [`Failure`] otherwise.
//!
//! Both serialize to the JSON the HTTP function returns and the CLI prints. Neither ever holds
//! a secret: only access key ids, times, versions, ARNs, codes and messages built from them.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::aws::AwsError;
use crate::azure::keyvault::VaultError;
use crate::settings::SettingsErrors;

/// A successful run: minted and published, found fresh, or repaired.
#[derive(Clone, Debug, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub rotated: bool,
    pub reason: String,
    pub mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining_seconds: Option<i64>,
    pub versions: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assumed_role_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller_arn: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub repaired: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_key: Option<super::source_key::SourceKeyReport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub duration_ms: u64,
    /// What the previous run's side work did (see [`super::side`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_side_work: Option<super::SideWork>,
    /// This run's side work, once it finished: set by the CLI, which waits for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub side_work: Option<super::SideWork>,
    /// When the set in the answer was minted (by this run, or — found fresh — by an earlier one):
    /// a forced trigger accepts the result of a run it joined only if this is after it arrived.
    #[serde(skip)]
    pub minted_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When the set in the answer was published: by this run when it minted; found fresh, as
    /// precisely as this run learnt it (from the lease's previous holder to the millisecond, else
    /// the version's `created`, whole seconds). A set published after a forced trigger arrived
    /// was held by nobody when it was asked for, so it answers that trigger too.
    #[serde(skip)]
    pub published_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Report {
    /// One line per fact, for the invocation's `Logs` and for humans.
    pub fn log_lines(&self) -> Vec<String> {
        let mut lines = vec![if self.rotated {
            format!(
                "rotated ({}): {} published, expires {}",
                self.mode,
                self.access_key_id.as_deref().unwrap_or("?"),
                self.expiration.as_deref().unwrap_or("?")
            )
        } else {
            format!("not rotated: {}", self.reason)
        }];
        if !self.repaired.is_empty() {
            lines.push(format!("repaired: {}", self.repaired.join(", ")));
        }
        if let Some(k) = &self.source_key {
            lines.extend(k.actions.iter().map(|a| format!("source key: {a}")));
        }
        lines.extend(self.warnings.iter().map(|w| format!("warning: {w}")));
        if let Some(side) = &self.side_work {
            lines.extend(side.actions.iter().map(|a| format!("side work: {a}")));
            lines.extend(
                side.warnings
                    .iter()
                    .map(|w| format!("side work warning: {w}")),
            );
        }
        lines.push(format!("took {} ms", self.duration_ms));
        lines
    }
}

/// Where a failed run stopped.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    Request,
    Settings,
    ReadSource,
    ReadCurrent,
    Token,
    SourceKey,
    /// Waiting for the rotation lease another instance holds.
    Lease,
    Mint,
    Verify,
    Publish,
}

/// Whose fault, which decides the HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Bad request parameters (400).
    BadRequest,
    /// The request cannot be done now, because of another run or a grace period (409).
    Conflict,
    /// Invalid settings (500).
    Settings,
    /// An upstream refused or failed, including a partial publish (502).
    Upstream,
    /// An upstream unreachable or timed out (503).
    Unreachable,
}

/// A failed run, with what it left behind.
#[derive(Clone, Debug)]
pub struct Failure {
    pub step: Step,
    pub kind: Kind,
    pub code: String,
    pub message: String,
    pub hint: Option<String>,
    /// Secrets that hold the new set.
    pub published: Vec<String>,
    /// Secrets that still hold an older set.
    pub stale: Vec<String>,
    /// E.g. that the published set is about to expire while this run could not replace it.
    pub warnings: Vec<String>,
}

impl Failure {
    pub fn new(
        step: Step,
        kind: Kind,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            step,
            kind,
            code: code.into(),
            message: message.into(),
            hint: None,
            published: vec![],
            stale: vec![],
            warnings: vec![],
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(Step::Request, Kind::BadRequest, "BadRequest", message)
    }

    pub fn settings(errors: &SettingsErrors) -> Self {
        Self::new(
            Step::Settings,
            Kind::Settings,
            "InvalidSettings",
            errors.to_string(),
        )
    }

    pub fn from_vault(step: Step, context: &str, e: &VaultError) -> Self {
        let kind = if e.is_unreachable() {
            Kind::Unreachable
        } else {
            Kind::Upstream
        };
        Self::new(step, kind, e.code(), format!("{context}: {e}"))
    }

    pub fn from_aws(step: Step, e: &AwsError) -> Self {
        let kind = match e {
            AwsError::Unreachable { .. } => Kind::Unreachable,
            _ => Kind::Upstream,
        };
        Self::new(step, kind, e.code(), e.to_string())
    }

    pub fn http_status(&self) -> u16 {
        match self.kind {
            Kind::BadRequest => 400,
            Kind::Conflict => 409,
            Kind::Settings => 500,
            Kind::Upstream => 502,
            Kind::Unreachable => 503,
        }
    }

    /// The one failure body shape.
    pub fn body(&self) -> serde_json::Value {
        let mut error = serde_json::json!({
            "step": self.step,
            "code": self.code,
            "message": self.message,
        });
        if let Some(h) = &self.hint {
            error["hint"] = serde_json::Value::String(h.clone());
        }
        let mut body = serde_json::json!({
            "rotated": false,
            "error": error,
            "published": self.published,
            "stale": self.stale,
        });
        if !self.warnings.is_empty() {
            body["warnings"] = serde_json::json!(self.warnings);
        }
        body
    }

    pub fn log_lines(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "rotation failed at {}: {}: {}",
            serde_json::to_value(self.step)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            self.code,
            self.message
        )];
        if let Some(h) = &self.hint {
            lines.push(format!("hint: {h}"));
        }
        lines.extend(self.warnings.iter().map(|w| format!("warning: {w}")));
        if !self.published.is_empty() || !self.stale.is_empty() {
            lines.push(format!(
                "published: [{}]; stale: [{}]",
                self.published.join(", "),
                self.stale.join(", ")
            ));
        }
        lines
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.log_lines().join("\n"))
    }
}

impl std::error::Error for Failure {}
