//! What `stsbridge revoke` prints: per principal, the policy and cut-off, each target's new set
//! (key id and expiry, never a secret) and consumer refreshes, and what failed.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use super::policy::{Kind, Principal, POLICY_NAME};
use crate::rotation::fleet::Fleet;
use crate::rotation::{RotationService, SideWork};

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// True when every principal was revoked and every target re-issued (or, with `--prune`,
    /// every policy pruned or absent).
    pub ok: bool,
    pub dry_run: bool,
    pub prune: bool,
    /// Who made the IAM calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    pub principals: Vec<PrincipalReport>,
    /// Targets whose principal could not be told.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unresolved: Vec<TargetReport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub summary: Value,
}

impl Report {
    pub fn summarize(&mut self) {
        let failed = self.principals.iter().filter(|p| !p.ok()).count();
        self.ok = failed == 0 && self.unresolved.is_empty();
        self.summary = serde_json::json!({
            "principals": self.principals.len(),
            "failed": failed,
            "unresolvedTargets": self.unresolved.len(),
        });
    }

    /// One line per principal, for stderr.
    pub fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .principals
            .iter()
            .map(|p| {
                let state = if p.ok() { "ok" } else { "FAILED" };
                let error = p
                    .error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default();
                format!(
                    "{} {}: {state}{}{error}",
                    p.kind_name(),
                    p.principal,
                    p.cut_off
                        .as_deref()
                        .map(|c| format!(" (cut-off {c})"))
                        .unwrap_or_default()
                )
            })
            .collect();
        for t in &self.unresolved {
            lines.push(format!(
                "target {}: FAILED: {}",
                t.target,
                t.error
                    .as_ref()
                    .and_then(|e| e["message"].as_str())
                    .unwrap_or("?")
            ));
        }
        lines
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrincipalReport {
    pub principal: String,
    pub kind: Kind,
    pub policy_name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cut_off: Option<String>,
    /// The cut-off of the policy found in place (the newer one is kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_cut_off: Option<String>,
    /// The document put (or, with `--dry-run`, that would be).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<Value>,
    /// Whether the deny policy is in place.
    pub revoked: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pruned: bool,
    pub targets: Vec<TargetReport>,
    pub actions: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip)]
    dry_run_or_prune: bool,
}

impl PrincipalReport {
    pub fn new(principal: &Principal, services: &[Arc<RotationService>]) -> Self {
        Self {
            principal: principal.arn.clone(),
            kind: principal.kind,
            policy_name: POLICY_NAME,
            cut_off: None,
            previous_cut_off: None,
            policy: None,
            revoked: false,
            pruned: false,
            targets: services
                .iter()
                .map(|s| TargetReport::new(&Fleet::name_of(s)))
                .collect(),
            actions: vec![],
            warnings: vec![],
            error: None,
            dry_run_or_prune: false,
        }
    }

    fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::Role => "role",
            Kind::User => "user",
        }
    }

    /// Revoked and every target re-issued; for a dry run or a prune, no error.
    pub fn ok(&self) -> bool {
        if self.error.is_some() {
            return false;
        }
        self.dry_run_or_prune || (self.revoked && self.targets.iter().all(|t| t.ok))
    }

    /// Marks a report whose success is "no error" (a dry run, a prune).
    pub fn judged_by_errors(mut self) -> Self {
        self.dry_run_or_prune = true;
        self
    }

    pub fn target_mut(&mut self, name: &str) -> &mut TargetReport {
        let i = match self.targets.iter().position(|t| t.target == name) {
            Some(i) => i,
            None => {
                self.targets.push(TargetReport::new(name));
                self.targets.len() - 1
            }
        };
        &mut self.targets[i]
    }
}

/// One target's re-issue.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetReport {
    pub target: String,
    /// Whether a set minted after the cut-off was published.
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minted_at: Option<String>,
    /// The consumer refreshes and bookkeeping after the publish.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub side_work: Option<SideWork>,
    /// Web-identity: what `HttpRotate` answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_answer: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    /// What the operator must still do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_step: Option<String>,
}

impl TargetReport {
    pub fn new(name: &str) -> Self {
        Self {
            target: name.to_string(),
            ..Default::default()
        }
    }

    pub fn failed(name: &str, message: String) -> Self {
        Self {
            target: name.to_string(),
            error: Some(serde_json::json!({ "message": message })),
            ..Default::default()
        }
    }
}
