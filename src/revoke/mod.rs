//! `stsbridge revoke` (issue #20): kill every session a leaked credential set could still use,
//! then re-issue good sets at once.
//!
//! Per principal — the role of an assume-role or web-identity target, the IAM user of a
//! session-token target — targets sharing it share one revocation, and all of them are
//! re-issued:
//!
//! ```text
//! prove each source key's user (GetCallerIdentity signed with the vault's pair; the caller-arn tag must agree)
//!   ─► operator ≠ minting identity, and no session of a role being revoked?
//!   ─► [--rotate-source-key: new key, delete every other key of the user the new key proved to be]
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
//! Nothing read from the vault is taken as an identity or a time on trust (issue #26): the
//! vault is writable by more people than IAM should be steerable by, and a revocation is what
//! an operator runs when someone may have written to it. The IAM user is learnt only from a
//! request signed with the source key's secret, and an existing cut-off or IAM's clock more
//! than [`policy::LEEWAY`] ahead is not followed.
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

/// The selected targets, resolved: their principals, and who their source keys proved to be.
#[derive(Default)]
struct Resolved {
    groups: Vec<Group>,
    /// Targets whose principal cannot be told, with why.
    unresolved: Vec<TargetReport>,
    /// Minting target → the ARN its source key proved to be (`GetCallerIdentity` signed with
    /// the pair read from the vault).
    minting: BTreeMap<String, String>,
    warnings: Vec<String>,
    /// Session-token targets whose bundle's `caller-arn` tag names another principal than the
    /// one their source key proved to be.
    disagreements: Vec<String>,
}

/// Revokes (or, with `prune`, prunes) the selected targets' principals. `Err` only when nothing
/// was changed: the operator credentials are missing or are the minting ones, the operator is a
/// session of a role being revoked, or a bundle's `caller-arn` tag disagrees with its proof.
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
    let resolved = principals(selected).await;
    if !resolved.disagreements.is_empty() {
        anyhow::bail!(
            "refusing to revoke: {}; nothing was changed. The tag is written by the rotation from the identity it verified, so a mismatch means the vault was written by someone else (check its access log) or the source key was replaced by another IAM user's since the last rotation. Revoke the sessions of the user the tag names in the IAM console if they are yours; to revoke the proven user with stsbridge, run `stsbridge rotate --force` (it re-tags the bundle with the identity it verifies) and then revoke again",
            resolved.disagreements.join("; ")
        );
    }
    let Resolved {
        groups,
        unresolved,
        minting,
        warnings,
        ..
    } = resolved;
    report.unresolved = unresolved;
    report.warnings = warnings;

    let identity = operator.identity().await?;
    refuse_minting_credentials(&identity, selected, &groups, &minting, &mut report).await?;
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

/// One target, resolved.
struct One {
    name: String,
    principal: Result<Principal, String>,
    /// The ARN its source key proved to be, or why it could not be proven (minting modes).
    proven: Option<Result<String, String>>,
    disagreement: Option<String>,
}

/// Each target's principal, grouped; targets whose principal cannot be told, with why.
///
/// A session-token target's IAM user is the one its source key proves to be: the vault's key
/// pair signs `GetCallerIdentity`. The bundle's `caller-arn` tag is only compared with it —
/// whoever can write to the vault can set a tag (and store any key id: ids are not secret), and
/// a revocation taken from it put the deny on, and deleted the keys of, the user it named.
async fn principals(selected: &[Arc<RotationService>]) -> Resolved {
    let ones = futures::future::join_all(selected.iter().map(resolve)).await;
    let mut out = Resolved::default();
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for (one, service) in ones.into_iter().zip(selected) {
        match one.proven {
            Some(Ok(arn)) => {
                out.minting.insert(one.name.clone(), arn);
            }
            Some(Err(why)) if one.principal.is_ok() => out.warnings.push(format!(
                "target {}: could not tell whether the operator is its minting user ({why})",
                one.name
            )),
            _ => {}
        }
        out.disagreements.extend(one.disagreement);
        match one.principal {
            Ok(p) => groups
                .entry(p.arn.clone())
                .or_insert_with(|| Group {
                    principal: p,
                    services: vec![],
                })
                .services
                .push(service.clone()),
            Err(e) => out.unresolved.push(TargetReport::failed(&one.name, e)),
        }
    }
    out.groups = groups.into_values().collect();
    out
}

async fn resolve(service: &Arc<RotationService>) -> One {
    let name = Fleet::name_of(service);
    let proof = async {
        match service.source_identity().await {
            Ok(Some(id)) => Some(Ok(id.caller.arn)),
            Ok(None) => None,
            Err(f) => Some(Err(format!("{}: {}", f.code, f.message))),
        }
    };
    match &service.settings.mode {
        // No AWS key of the app's: the role is the principal, proven by nothing to compare.
        Mode::WebIdentity { role, .. } => One {
            name,
            principal: Principal::parse(&role.arn),
            proven: None,
            disagreement: None,
        },
        Mode::RolesAnywhere(ra) => One {
            name,
            principal: Principal::parse(&ra.role.arn),
            proven: None,
            disagreement: None,
        },
        Mode::AssumeRole { role, .. } => One {
            name,
            principal: Principal::parse(&role.arn),
            proven: proof.await,
            disagreement: None,
        },
        Mode::SessionToken { .. } => {
            let (published, proven) = tokio::join!(service.published(), proof);
            let (principal, disagreement) = session_token_user(&name, published, proven.clone());
            One {
                name,
                principal,
                proven,
                disagreement,
            }
        }
    }
}

/// A session-token target's IAM user: the one its source key proved to be, compared with the
/// bundle's `caller-arn` tag (`Some(disagreement)` when they differ).
fn session_token_user(
    name: &str,
    published: Result<Option<crate::rotation::Published>, crate::rotation::Failure>,
    proven: Option<Result<String, String>>,
) -> (Result<Principal, String>, Option<String>) {
    const UNPROVEN: &str = "The bundle's caller-arn tag is not taken on trust (whoever can write to the vault can set it): put the IAM user's working key back in the vault and run again, or revoke the user's sessions in the IAM console";
    let published = match published {
        Err(f) => return (Err(f.to_string()), None),
        Ok(None) => {
            let why =
                "nothing is published, so no session of its IAM user was handed out by stsbridge";
            return (Err(why.into()), None);
        }
        Ok(Some(p)) => p,
    };
    let arn = match proven {
        None => return (Err("the target has no source key".into()), None),
        Some(Err(why)) => {
            let why = format!("its IAM user cannot be proven: GetCallerIdentity signed with the source key read from the vault failed ({why}). {UNPROVEN}");
            return (Err(why), None);
        }
        Some(Ok(arn)) => arn,
    };
    let user = match Principal::parse(&arn) {
        Ok(user) if user.kind == Kind::User => user,
        _ => {
            let why = format!("the source key read from the vault acts as {arn:?}, not as an IAM user: a session-token target's key must be an IAM user's");
            return (Err(why), None);
        }
    };
    // The tag holds the ARN cut to Key Vault's 256 characters.
    let disagreement = published
        .tags
        .get(tags::CALLER_ARN)
        .filter(|tag| **tag != tags::value(&user.arn))
        .map(|tag| {
            format!(
                "target {name}: the published bundle's caller-arn tag names {tag:?}, but the source key in the vault proves to be {} (GetCallerIdentity signed with it)",
                user.arn
            )
        });
    (Ok(user), disagreement)
}

/// Refuses (nothing changed) when the operator's credentials are the minting ones — the minting
/// identity must never hold `iam:Put*Policy` — or a session of a role being revoked (the deny
/// would end the operator's own session halfway through).
async fn refuse_minting_credentials(
    operator: &operator::Identity,
    selected: &[Arc<RotationService>],
    groups: &[Group],
    minting: &BTreeMap<String, String>,
    report: &mut Report,
) -> anyhow::Result<()> {
    const WHY: &str = "the revocation must be made with the operator's own AWS credentials (a person's or an incident role's, with iam:Put/Get/DeleteRolePolicy and the User equivalents), never the minting key: a user that can edit its own policies can grant itself anything, and its key may be the one that leaked. Give them with AWS_PROFILE, --aws-profile (e.g. after `stsbridge sso login`) or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY";
    for service in selected {
        let name = Fleet::name_of(service);
        match service.source_key_id().await {
            Ok(Some(id)) if id == operator.access_key_id => anyhow::bail!(
                "refusing to revoke: the operator's AWS access key ({id}) is target {name}'s minting key; nothing was changed. {WHY}"
            ),
            Ok(_) => {}
            Err(f) => report.warnings.push(format!(
                "target {name}: could not read its source key id to compare with the operator's ({})",
                f.code
            )),
        }
        // Another key of the minting user is the minting identity all the same: the user its
        // source key proved to be.
        if minting.get(&name).is_some_and(|arn| *arn == operator.arn) {
            anyhow::bail!(
                "refusing to revoke: the operator's AWS credentials act as {}, the IAM user that mints target {name}; nothing was changed. {WHY}",
                operator.arn
            );
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
    if let Some((partition, account, role)) = policy::assumed_role_of(&operator.arn) {
        if let Some(g) = groups.iter().find(|g| {
            g.principal.kind == Kind::Role
                && g.principal.name == role
                && g.principal.account == account
                && g.principal.partition == partition
        }) {
            anyhow::bail!(
                "refusing to revoke: the operator's AWS credentials are a session of role {}, which is being revoked: its deny would end the operator's own session halfway through; nothing was changed. Use credentials of another principal (a person's, or an incident role that is not revoked here)",
                g.principal.arn
            );
        }
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
    let found = read.document.as_deref().and_then(policy::cut_off_of);
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
    // IAM's clock far ahead of this one (or an endpoint that says so): a cut-off from it would
    // deny the very sessions this run mints, and waiting for it would take as long (issue #26).
    if let Err(e) = policy::believable_skew(skew) {
        out.error = Some(e);
        return out;
    }
    // An existing cut-off is kept when newer, as the console does — unless it lies further
    // ahead than a clock can be off: such a policy denies every session until then, the
    // re-issued ones included, and waiting for it would stall the revocation (issue #26).
    let previous = match found {
        Some(p) if p - cut_off > policy::LEEWAY => {
            out.warnings.push(format!(
                "the {POLICY_NAME} policy already on {} has the cut-off {}, more than {} s ahead of AWS's clock: ignored, and replaced by this revocation's cut-off (a cut-off in the future denies every session until then, the re-issued ones included)",
                group.principal.arn,
                policy::format_cut_off(p),
                policy::LEEWAY.num_seconds()
            ));
            None
        }
        p => p,
    };
    let cut_off = cut_off.max(previous.unwrap_or(cut_off));
    out.previous_cut_off = found.map(policy::format_cut_off);
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
/// rotated by the first of them, see [`crate::targets`]) — then every other key of the IAM user
/// the new key proved to be is deleted (the rotation deactivated the old one; a key the leak
/// created goes too).
///
/// The user, and the key kept, come from the new key's own verification (`GetCallerIdentity`
/// signed with it), never from the vault's word: a key id read back from the vault, or IAM's
/// owner of it, would let whoever wrote it point the deletion at another user (issue #26).
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
    // Owner target → (the ARN its new key proved to be, the new key's id).
    let mut proven: BTreeMap<String, (String, String)> = BTreeMap::new();
    for t in fleet.rotate(&owners, request).await {
        let report = match t.outcome.as_ref() {
            Ok(r) => r,
            Err(f) => {
                return Err(format!(
                    "target {}: rotating the source key failed ({}: {})",
                    t.name, f.code, f.message
                ))
            }
        };
        actions.push(format!("target {}: rotated the source key", t.name));
        if let Some(k) = &report.source_key {
            if let (Some(arn), Some(id)) = (&k.verified_arn, &k.access_key_id) {
                proven.insert(t.name.clone(), (arn.clone(), id.clone()));
            }
        }
    }
    // IAM user ARN → (its name, the keys to keep).
    let mut held: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for (principal, service) in &minters {
        let name = Fleet::name_of(service);
        let owner = service
            .settings
            .source_key_rotated_by
            .clone()
            .unwrap_or_else(|| name.clone());
        let (arn, id) = match proven.get(&owner) {
            Some(p) => p.clone(),
            // No new key verified by this run (another run rotated it while this one waited,
            // or its owner target is not selected): the pair in the vault proves itself.
            None => match service.source_identity().await {
                Ok(Some(id)) => (id.caller.arn, id.access_key_id),
                Ok(None) => continue,
                Err(f) => {
                    return Err(format!(
                    "target {name}: proving whose the source key is ({}: {}); no key was deleted",
                    f.code, f.message
                ))
                }
            },
        };
        let user = Principal::parse(&arn)
            .ok()
            .filter(|u| u.kind == Kind::User)
            .ok_or_else(|| {
                format!("target {name}: the source key acts as {arn:?}, not as an IAM user; no key was deleted")
            })?;
        if principal.kind == Kind::User && principal.arn != user.arn {
            return Err(format!(
                "target {name}: the new source key proves to be {}, not {}, the user being revoked; no key was deleted",
                user.arn, principal.arn
            ));
        }
        held.entry(user.arn.clone())
            .or_insert_with(|| (user.name.clone(), vec![]))
            .1
            .push(id);
    }
    for (user, keep) in held.into_values() {
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
                "deleted access key {key} of {user} (not the key the vault holds)"
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
    let mut url = function_url(url)?;
    url.query_pairs_mut().append_pair("force", "true");
    // The key goes to the URL given and nowhere else: a redirect is answered, never followed
    // (reqwest would carry `x-functions-key` to any host, issue #27 F4).
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("building the HTTP client: {e}"))?;
    let response = client
        .post(url.clone())
        .header("x-functions-key", key.expose_secret())
        .timeout(Duration::from_secs(230))
        .send()
        .await
        .map_err(|e| format!("calling HttpRotate at {}: {}", url.path(), e.without_url()))?;
    let status = response.status();
    if status.is_redirection() {
        let target = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| url.join(l).ok())
            .map(|l| match (l.host_str(), l.port_or_known_default()) {
                (Some(h), Some(p)) => format!("{h}:{p}"),
                (Some(h), None) => h.to_string(),
                _ => "an unreadable location".into(),
            })
            .unwrap_or_else(|| "no location".into());
        return Err(format!(
            "HttpRotate answered {status}, a redirect to {target}: not followed (the function key is sent only to --function-url itself); give the function's own HttpRotate URL"
        ));
    }
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!("HttpRotate answered {status}: {body}"))
    }
}

/// `--function-url`, checked before anything is changed: https, or plain http to this machine
/// only (a test or a local `func start`), since the function key travels with the request.
pub fn function_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| format!("--function-url: {e}"))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if crate::net::is_loopback(&url) => Ok(url),
        scheme => Err(format!(
            "--function-url must be https (plain http only to this machine: 127.0.0.1, localhost, [::1]), not {scheme} to {}: the function key travels with the request",
            url.host_str().unwrap_or("no host")
        )),
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
    let now = policy::prune_clock(read.clock.as_ref().map(|(d, _)| d.as_str()), Utc::now());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rotation::Published;

    fn tagged(caller_arn: &str) -> Published {
        Published {
            tags: [(tags::CALLER_ARN.to_string(), caller_arn.to_string())].into(),
            ..Default::default()
        }
    }

    /// Issue #26 F1: the user is the proven one; the tag is only compared with it (as written:
    /// cut to Key Vault's 256 characters), and a tag naming another user is a disagreement.
    #[test]
    fn a_session_token_target_s_user_is_the_proven_one_and_the_tag_must_agree() {
        let me = "arn:aws:iam::123456789012:user/stsbridge-minter";
        let (user, disagreement) =
            session_token_user("t", Ok(Some(tagged(me))), Some(Ok(me.into())));
        assert_eq!(user.unwrap().name, "stsbridge-minter");
        assert_eq!(disagreement, None);

        let long = format!(
            "arn:aws:iam::123456789012:user/{}/stsbridge-minter",
            "p".repeat(300)
        );
        let (user, disagreement) = session_token_user(
            "t",
            Ok(Some(tagged(&tags::value(&long)))),
            Some(Ok(long.clone())),
        );
        assert_eq!(user.unwrap().arn, long);
        assert_eq!(disagreement, None);

        let other = "arn:aws:iam::123456789012:user/ci-deployer\u{1b}[2K";
        let (user, disagreement) =
            session_token_user("t", Ok(Some(tagged(other))), Some(Ok(me.into())));
        assert_eq!(user.unwrap().arn, me);
        let d = disagreement.unwrap();
        assert!(
            d.contains(r#""arn:aws:iam::123456789012:user/ci-deployer\u{1b}[2K""#),
            "{d}"
        );
        assert!(!d.chars().any(char::is_control), "{d}");

        let (user, _) = session_token_user(
            "t",
            Ok(Some(tagged(me))),
            Some(Err("SignatureDoesNotMatch: …".into())),
        );
        assert!(user.unwrap_err().contains("cannot be proven"));
        let (user, _) = session_token_user(
            "t",
            Ok(Some(tagged(me))),
            Some(Ok("arn:aws:sts::123456789012:assumed-role/r/s".into())),
        );
        assert!(user.unwrap_err().contains("not as an IAM user"));
    }
}
