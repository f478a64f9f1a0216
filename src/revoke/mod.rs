//! `stsbridge revoke` (issue #20): kill every session a leaked credential set could still use,
//! then re-issue good sets at once.
//!
//! Per principal — the role of an assume-role or web-identity target, the IAM user of a
//! session-token target (from its bundle's `caller-arn` tag) — targets sharing it share one
//! revocation, and all of them are re-issued:
//!
//! ```text
//! operator ≠ minting identity? ─► [--rotate-source-key: new key, delete every key the vault lacks]
//!   ─► GetRolePolicy/GetUserPolicy (AWS's Date header = the cut-off's clock; an existing cut-off)
//!   ─► tag every target's bundle revoked-before=CUT-OFF ─► Put…Policy AWSRevokeOlderSessions
//!   ─► wait until local and AWS clocks pass the cut-off ─► forced re-issue with the mark
//! ```
//!
//! The mark goes on the bundle before the deny is put: from then on no rotation anywhere
//! publishes a set minted before the cut-off (see [`crate::rotation::decide`] and the re-read
//! before a publish), so a rotation in flight on another instance cannot overwrite the new set
//! with a dead one. The re-issue is the normal rotation ([`Fleet::rotate`]); the blob lease
//! (issue #17), when it lands, wraps that same path. Web-identity targets cannot be minted by
//! the operator (they mint as the app's managed identity): with `--function-url` the function's
//! `HttpRotate?force=true` is called, otherwise the report says what to run.
//!
//! [`policy`] holds the pure parts, [`operator`] the operator's IAM client, [`report`] the
//! JSON. The runbook is docs/revoke.md.

pub mod operator;
pub mod policy;
pub mod report;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::rotation::fleet::Fleet;
use crate::rotation::{Request, RotationService};
use crate::settings::Mode;
use crate::tags;
use operator::Operator;
use policy::{Kind, Principal, POLICY_NAME};
use report::{PrincipalReport, Report, TargetReport};

/// What the command asks for.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub dry_run: bool,
    pub rotate_source_key: bool,
    pub prune: bool,
    /// The function app's `HttpRotate` URL, for web-identity targets.
    pub function_url: Option<String>,
    /// Its function key (`STSBRIDGE_FUNCTION_KEY`).
    pub function_key: Option<SecretString>,
}

/// The targets of one principal.
struct Group {
    principal: Principal,
    services: Vec<Arc<RotationService>>,
}

/// Revokes (or, with `prune`, prunes) the selected targets' principals. `Err` only when nothing
/// was changed: the operator credentials are missing or are the minting ones.
pub async fn run(
    fleet: &Fleet,
    selected: &[Arc<RotationService>],
    operator: &Operator,
    options: &Options,
) -> anyhow::Result<Report> {
    let mut report = Report {
        dry_run: options.dry_run,
        prune: options.prune,
        ..Default::default()
    };
    let (groups, unresolved) = principals(selected).await;
    report.unresolved = unresolved;

    let identity = operator.identity().await?;
    refuse_minting_credentials(operator, &identity, selected, &groups, &mut report).await?;
    report.operator = Some(identity.arn.clone());

    // The long-lived key itself leaked: replaced first, once for every principal (targets of
    // different principals can share one IAM user's key), before any cut-off is taken.
    let key_step = if options.rotate_source_key && !options.prune && !options.dry_run {
        Some(rotate_source_keys(fleet, operator, &groups).await)
    } else {
        None
    };
    let key_step = &key_step;
    let runs = groups.iter().map(|g| async move {
        if options.prune {
            prune(operator, g, options.dry_run).await.judged_by_errors()
        } else if options.dry_run {
            revoke(fleet, operator, g, options, None)
                .await
                .judged_by_errors()
        } else {
            revoke(fleet, operator, g, options, key_step.as_ref()).await
        }
    });
    report.principals = futures::future::join_all(runs).await;
    fleet.settle().await;
    for p in &mut report.principals {
        for t in &mut p.targets {
            if let Some(s) = selected.iter().find(|s| Fleet::name_of(s) == t.target) {
                if t.access_key_id.is_some() {
                    t.side_work = s.last_side_work();
                }
            }
        }
    }
    report.summarize();
    Ok(report)
}

/// Each target's principal, grouped; targets whose principal cannot be told, with why.
async fn principals(selected: &[Arc<RotationService>]) -> (Vec<Group>, Vec<TargetReport>) {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    let mut unresolved = vec![];
    for service in selected {
        let name = Fleet::name_of(service);
        let arn = match &service.settings.mode {
            Mode::AssumeRole { role, .. } | Mode::WebIdentity { role, .. } => Ok(role.arn.clone()),
            Mode::RolesAnywhere(ra) => Ok(ra.role.arn.clone()),
            Mode::SessionToken { .. } => match service.published().await {
                Ok(Some(p)) => p.tags.get(tags::CALLER_ARN).cloned().ok_or_else(|| {
                    "the published bundle has no caller-arn tag, so the IAM user is unknown: run `stsbridge rotate --force` first (it tags the set), or revoke the user in the IAM console".to_string()
                }),
                Ok(None) => Err("nothing is published, so the IAM user is unknown (and no session of it was handed out by stsbridge)".into()),
                Err(f) => Err(f.to_string()),
            },
        };
        match arn.and_then(|a| Principal::parse(&a)) {
            Ok(p) => groups
                .entry(p.arn.clone())
                .or_insert_with(|| Group {
                    principal: p,
                    services: vec![],
                })
                .services
                .push(service.clone()),
            Err(e) => unresolved.push(TargetReport::failed(&name, e)),
        }
    }
    (groups.into_values().collect(), unresolved)
}

/// Refuses (nothing changed) when the operator's credentials are the minting ones: the minting
/// identity must never hold `iam:Put*Policy`.
async fn refuse_minting_credentials(
    iam: &Operator,
    operator: &operator::Identity,
    selected: &[Arc<RotationService>],
    groups: &[Group],
    report: &mut Report,
) -> anyhow::Result<()> {
    const WHY: &str = "the revocation must be made with the operator's own AWS credentials (a person's or an incident role's, with iam:Put/Get/DeleteRolePolicy and the User equivalents), never the minting key: a user that can edit its own policies can grant itself anything, and its key may be the one that leaked. Give them with AWS_PROFILE, --aws-profile (e.g. after `stsbridge sso login`) or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY";
    let operator_user = Principal::parse(&operator.arn)
        .ok()
        .filter(|p| p.kind == Kind::User);
    for service in selected {
        match service.source_key_id().await {
            Ok(Some(id)) if id == operator.access_key_id => anyhow::bail!(
                "refusing to revoke: the operator's AWS access key ({id}) is target {}'s minting key; nothing was changed. {WHY}",
                Fleet::name_of(service)
            ),
            // Another key of the minting user is the minting identity all the same. A
            // session-token target's user is compared below; an assume-role target's is the
            // owner of its key (best effort: the operator may lack iam:GetAccessKeyLastUsed).
            Ok(Some(id)) if matches!(service.settings.mode, Mode::AssumeRole { .. }) => {
                if let Some(me) = &operator_user {
                    match iam.owner_of_key(&id).await {
                        Ok(owner) if owner == me.name => anyhow::bail!(
                            "refusing to revoke: the operator's AWS credentials act as {}, the IAM user that mints target {}; nothing was changed. {WHY}",
                            me.arn,
                            Fleet::name_of(service)
                        ),
                        Ok(_) => {}
                        Err(e) => report.warnings.push(format!(
                            "target {}: could not tell whether the operator is its minting user ({})",
                            Fleet::name_of(service),
                            e.code()
                        )),
                    }
                }
            }
            Ok(_) => {}
            Err(f) => report.warnings.push(format!(
                "target {}: could not read its source key id to compare with the operator's ({})",
                Fleet::name_of(service),
                f.code
            )),
        }
    }
    if let Some(g) = groups
        .iter()
        .find(|g| g.principal.kind == Kind::User && g.principal.arn == operator.arn)
    {
        anyhow::bail!(
            "refusing to revoke: the operator's AWS credentials act as {}, the IAM user being revoked; nothing was changed. {WHY}",
            g.principal.arn
        );
    }
    Ok(())
}

/// One principal's revocation and re-issue.
async fn revoke(
    fleet: &Fleet,
    operator: &Operator,
    group: &Group,
    options: &Options,
    key_step: Option<&KeyStep>,
) -> PrincipalReport {
    let mut out = PrincipalReport::new(&group.principal, &group.services);
    let mints = group
        .services
        .iter()
        .any(|s| s.settings.mode.source().is_some());
    if options.rotate_source_key && mints {
        if options.dry_run {
            out.actions.push(
                "would rotate the source key and delete every key the vault does not hold".into(),
            );
        }
        if let Some(step) = key_step {
            out.actions.extend(step.actions.iter().cloned());
            if let Some(e) = &step.error {
                out.error = Some(e.clone());
                return out;
            }
        }
    }

    // The cut-off, on AWS's clock.
    let read = match operator.get_policy(&group.principal).await {
        Ok(r) => r,
        Err(e) => {
            out.error = Some(with_iam_hint(&e));
            return out;
        }
    };
    let previous = read.document.as_deref().and_then(policy::cut_off_of);
    let (cut_off, skew) = match &read.clock {
        Some((date, arrived)) => match policy::cut_off_from_date(date) {
            Ok(c) => (c, c - TimeDelta::seconds(1) - policy::truncate(*arrived)),
            Err(e) => {
                out.warnings.push(format!("{e}; the local clock is used"));
                local_cut_off()
            }
        },
        None => {
            out.warnings
                .push("IAM's answer had no Date header; the local clock is used".into());
            local_cut_off()
        }
    };
    let cut_off = cut_off.max(previous.unwrap_or(cut_off));
    out.previous_cut_off = previous.map(policy::format_cut_off);
    out.cut_off = Some(policy::format_cut_off(cut_off));
    let document = policy::document(cut_off);
    out.policy = Some(document.clone());
    if options.dry_run {
        out.actions.push(format!(
            "would put {POLICY_NAME} on {} and re-issue {} target(s)",
            group.principal.arn,
            group.services.len()
        ));
        return out;
    }

    // Mark before the deny: from here no set minted before the cut-off is published anywhere.
    for service in &group.services {
        match service.mark_revoked_before(cut_off).await {
            Ok(true) => out.actions.push(format!(
                "marked target {}'s bundle revoked-before {}",
                Fleet::name_of(service),
                policy::format_cut_off(cut_off)
            )),
            Ok(false) => {}
            Err(f) => out.warnings.push(format!(
                "target {}: the bundle could not be marked ({}: {}); a rotation elsewhere could still publish a set minted before the cut-off until the next run",
                Fleet::name_of(service),
                f.code,
                f.message
            )),
        }
    }
    if let Err(e) = operator
        .put_policy(&group.principal, &document.to_string())
        .await
    {
        out.error = Some(format!(
            "{} (nothing was revoked: the published sets still work)",
            with_iam_hint(&e)
        ));
        return out;
    }
    out.revoked = true;
    out.actions.push(format!(
        "put {POLICY_NAME} on {}: sessions issued before {} are denied",
        group.principal.arn,
        policy::format_cut_off(cut_off)
    ));

    wait_past(cut_off, skew).await;
    reissue(fleet, group, cut_off, options, &mut out).await;
    out
}

/// An IAM refusal, with what the operator lacks when it is a permission.
fn with_iam_hint(e: &crate::aws::AwsError) -> String {
    match e.code() {
        "AccessDenied" | "AccessDeniedException" => format!(
            "{e}: the operator needs iam:Get/Put/DeleteRolePolicy and the User equivalents on this principal (docs/revoke.md)"
        ),
        _ => e.to_string(),
    }
}

/// No Date header: the local clock, to the next whole second.
fn local_cut_off() -> (DateTime<Utc>, TimeDelta) {
    (
        policy::truncate(Utc::now()) + TimeDelta::seconds(1),
        TimeDelta::zero(),
    )
}

/// Sleeps until both the local clock and AWS's (the local one plus `skew`) are past `cut_off`,
/// so the new set is never caught by its own cut-off.
async fn wait_past(cut_off: DateTime<Utc>, skew: TimeDelta) {
    let now = Utc::now();
    let behind = (cut_off - now).max(cut_off - (now + skew));
    if behind > TimeDelta::zero() {
        let wait = behind + TimeDelta::milliseconds(50);
        tokio::time::sleep(wait.to_std().unwrap_or(Duration::from_secs(1))).await;
    }
}

/// What `--rotate-source-key` did for every principal: its actions, and the error that stops
/// the revocation of every principal with a minting target.
#[derive(Default)]
struct KeyStep {
    actions: Vec<String>,
    error: Option<String>,
}

/// A forced rotation with a new key — by each key's owner target (a key shared by targets is
/// rotated by the first of them, see [`crate::targets`]) — then every key of each user that the
/// vault does not hold is deleted (the rotation deactivated the old one; a key the leak created
/// goes too).
async fn rotate_source_keys(fleet: &Fleet, operator: &Operator, groups: &[Group]) -> KeyStep {
    let mut step = KeyStep::default();
    if let Err(e) = rotate_and_clean(fleet, operator, groups, &mut step.actions).await {
        step.error = Some(format!("{e}; nothing was revoked"));
    }
    step
}

async fn rotate_and_clean(
    fleet: &Fleet,
    operator: &Operator,
    groups: &[Group],
    actions: &mut Vec<String>,
) -> Result<(), String> {
    let minters: Vec<(&Principal, Arc<RotationService>)> = groups
        .iter()
        .flat_map(|g| g.services.iter().map(move |s| (&g.principal, s.clone())))
        .filter(|(_, s)| s.settings.mode.source().is_some())
        .collect();
    let owners: Vec<Arc<RotationService>> = minters
        .iter()
        .filter(|(_, s)| s.settings.source_key_rotated_by.is_none())
        .map(|(_, s)| s.clone())
        .collect();
    let request = Request {
        force: true,
        rotate_source_key: true,
        revoked_before: None,
    };
    for t in fleet.rotate(&owners, request).await {
        if let Err(f) = t.outcome.as_ref() {
            return Err(format!(
                "target {}: rotating the source key failed ({}: {})",
                t.name, f.code, f.message
            ));
        }
        actions.push(format!("target {}: rotated the source key", t.name));
    }
    let mut held: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (principal, service) in &minters {
        let id = service
            .source_key_id()
            .await
            .map_err(|f| format!("reading the new source key id: {}", f.message))?
            .unwrap_or_default();
        let user = match principal.kind {
            Kind::User => principal.name.clone(),
            Kind::Role => operator
                .owner_of_key(&id)
                .await
                .map_err(|e| format!("finding the IAM user of key {id}: {e}"))?,
        };
        held.entry(user).or_default().push(id);
    }
    for (user, keep) in held {
        let keys = operator
            .list_keys(&user)
            .await
            .map_err(|e| format!("listing the keys of {user}: {e}"))?;
        for key in keys.iter().filter(|k| !keep.contains(k)) {
            operator
                .delete_key(&user, key)
                .await
                .map_err(|e| format!("deleting key {key} of {user}: {e}"))?;
            actions.push(format!(
                "deleted access key {key} of {user} (not held by the vault)"
            ));
        }
    }
    Ok(())
}

/// Re-issues every target of the principal: a forced rotation with the cut-off, or for
/// web-identity the function's `HttpRotate?force=true`.
async fn reissue(
    fleet: &Fleet,
    group: &Group,
    cut_off: DateTime<Utc>,
    options: &Options,
    out: &mut PrincipalReport,
) {
    let (federated, minters): (Vec<_>, Vec<_>) = group.services.iter().cloned().partition(|s| {
        matches!(
            s.settings.mode,
            Mode::WebIdentity { .. } | Mode::RolesAnywhere(_)
        )
    });
    let request = Request {
        force: true,
        rotate_source_key: false,
        revoked_before: Some(cut_off),
    };
    if !minters.is_empty() {
        for t in fleet.rotate(&minters, request).await {
            let entry = out.target_mut(&t.name);
            match t.outcome.as_ref() {
                Ok(r) => {
                    entry.ok = true;
                    entry.access_key_id = r.access_key_id.clone();
                    entry.expiration = r.expiration.clone();
                    entry.minted_at = r
                        .minted_at
                        .map(|m| m.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
                }
                Err(f) => entry.error = Some(f.body()),
            }
        }
    }
    for service in federated {
        let name = Fleet::name_of(&service);
        let answer = call_function(options).await;
        let entry = out.target_mut(&name);
        match answer {
            Ok(body) => {
                entry.ok = true;
                entry.access_key_id = body["accessKeyId"].as_str().map(String::from);
                entry.expiration = body["expiration"].as_str().map(String::from);
                entry.function_answer = Some(body);
            }
            Err(e) => {
                entry.error = Some(serde_json::json!({"message": e}));
                entry.next_step = Some(match &options.function_url {
                    Some(_) => "call the function again: curl -fsS -X POST -H \"x-functions-key: $STSBRIDGE_FUNCTION_KEY\" \"<HttpRotate URL>?force=true\"".into(),
                    None => "web-identity sets are minted by the function app's own identity: run `curl -fsS -X POST -H \"x-functions-key: $STSBRIDGE_FUNCTION_KEY\" \"https://<app>.azurewebsites.net/api/HttpRotate?force=true\"`, or run revoke again with --function-url and STSBRIDGE_FUNCTION_KEY".into(),
                });
            }
        }
    }
}

/// `POST <HttpRotate URL>?force=true` with the function key: the function's answer.
async fn call_function(options: &Options) -> Result<Value, String> {
    let Some(url) = &options.function_url else {
        return Err("not re-issued: --function-url was not given".into());
    };
    let Some(key) = &options.function_key else {
        return Err(
            "not re-issued: --function-url needs the function key in STSBRIDGE_FUNCTION_KEY".into(),
        );
    };
    let mut url = url::Url::parse(url).map_err(|e| format!("--function-url: {e}"))?;
    url.query_pairs_mut().append_pair("force", "true");
    let response = reqwest::Client::new()
        .post(url.clone())
        .header("x-functions-key", key.expose_secret())
        .timeout(Duration::from_secs(230))
        .send()
        .await
        .map_err(|e| format!("calling HttpRotate at {}: {}", url.path(), e.without_url()))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!("HttpRotate answered {status}: {body}"))
    }
}

/// `--prune`: deletes the principal's revocation when no session it could deny still exists.
async fn prune(operator: &Operator, group: &Group, dry_run: bool) -> PrincipalReport {
    let mut out = PrincipalReport::new(&group.principal, &group.services);
    let read = match operator.get_policy(&group.principal).await {
        Ok(r) => r,
        Err(e) => {
            out.error = Some(format!("{e}"));
            return out;
        }
    };
    let Some(document) = &read.document else {
        out.actions.push(format!("no {POLICY_NAME} policy"));
        out.pruned = true;
        return out;
    };
    let now = read
        .clock
        .as_ref()
        .and_then(|(d, _)| DateTime::parse_from_rfc2822(d).ok())
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_else(Utc::now);
    let Some(cut_off) = policy::cut_off_of(document) else {
        out.error = Some(format!(
            "{POLICY_NAME} holds no aws:TokenIssueTime cut-off; left alone (edit it in the IAM console)"
        ));
        return out;
    };
    out.cut_off = Some(policy::format_cut_off(cut_off));
    match policy::prunable(group.principal.kind, cut_off, now) {
        Err(after) => {
            out.error = Some(format!(
                "refusing to prune: sessions issued before {} can live until {} ({} h for a {})",
                policy::format_cut_off(cut_off),
                policy::format_cut_off(after),
                group.principal.kind.longest_session().num_hours(),
                match group.principal.kind {
                    Kind::Role => "role",
                    Kind::User => "user's session tokens",
                }
            ));
        }
        Ok(()) if dry_run => out.actions.push(format!("would delete {POLICY_NAME}")),
        Ok(()) => match operator.delete_policy(&group.principal).await {
            Ok(()) => {
                out.pruned = true;
                out.actions.push(format!("deleted {POLICY_NAME}"));
            }
            Err(e) => out.error = Some(format!("{e}")),
        },
    }
    out
}
