//! `stsbridge revoke` (issue #20): the deny policy on the principal (parsed back from moto), the
//! re-issue after the cut-off, the old set dead and the new one working (the test bed's STS
//! front enforces recorded revocations), refusal with the minting key, dry runs, one principal
//! failing, and pruning; and what the second security review (issues #26, #27) asked of it: the IAM
//! user proven by the source key's secret (never a tag's word), cut-offs no further ahead than a
//! clock can be off, the operator's own role sessions, and a function key that goes nowhere else.

use std::collections::HashMap;

use aws_sdk_sts::error::ProvideErrorMetadata;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use testbed::TestBed;

use crate::support::{assert_no_secrets, run_cli, settings};

const USER: &str = "stsbridge-minter";
const USER_ARN: &str = "arn:aws:iam::123456789012:user/stsbridge-minter";
const ROLE_NAME: &str = "stsbridge-reader";
const ROLE: &str = "arn:aws:iam::123456789012:role/stsbridge-reader";
const POLICY: &str = "AWSRevokeOlderSessions";

/// The incident responder: a second IAM user in moto with its own key, which the front accepts.
struct Operator {
    access_key_id: String,
    secret_access_key: String,
}

async fn operator(bed: &TestBed) -> Operator {
    let keys = bed.create_iam_user("incident-responder").await.unwrap();
    Operator {
        access_key_id: keys.access_key_id,
        secret_access_key: keys.secret_access_key,
    }
}

/// The app's settings plus the operator's credentials, as the standard chain reads them.
fn as_operator(env: &HashMap<String, String>, op: &Operator) -> HashMap<String, String> {
    let mut env = env.clone();
    env.insert("AWS_ACCESS_KEY_ID".into(), op.access_key_id.clone());
    env.insert("AWS_SECRET_ACCESS_KEY".into(), op.secret_access_key.clone());
    env.insert("AWS_EC2_METADATA_DISABLED".into(), "true".into());
    env
}

/// Writes a targets file; the settings pointing at it.
fn with_targets(bed: &TestBed, file: &Value) -> (HashMap<String, String>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("targets.json");
    std::fs::write(&path, file.to_string()).unwrap();
    (
        settings(
            bed,
            &[("StsbridgeTargetsFile", path.to_str().unwrap())],
            &[],
        ),
        dir,
    )
}

async fn create_role(bed: &TestBed, name: &str) {
    let trust = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}}"#;
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "CreateRole")
        .append_pair("Version", "2010-05-08")
        .append_pair("RoleName", name)
        .append_pair("AssumeRolePolicyDocument", trust)
        .finish();
    testbed::moto_iam(&bed.moto.url, &body).await.unwrap();
}

/// Puts a revocation policy straight into moto (as an earlier run, or the console, would have).
async fn put_policy(bed: &TestBed, kind: &str, name: &str, cut_off: DateTime<Utc>) {
    let doc = json!({"Version": "2012-10-17", "Statement": {"Effect": "Deny", "Action": "*", "Resource": "*",
        "Condition": {"DateLessThan": {"aws:TokenIssueTime": cut_off.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}}}});
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", &format!("Put{kind}Policy"))
        .append_pair("Version", "2010-05-08")
        .append_pair(&format!("{kind}Name"), name)
        .append_pair("PolicyName", POLICY)
        .append_pair("PolicyDocument", &doc.to_string())
        .finish();
    testbed::moto_iam(&bed.moto.url, &body).await.unwrap();
}

/// The principal's revocation policy as moto holds it (`kind` is `User` or `Role`).
async fn policy(bed: &TestBed, kind: &str, name: &str) -> Option<Value> {
    let body =
        format!("Action=Get{kind}Policy&Version=2010-05-08&{kind}Name={name}&PolicyName={POLICY}");
    let xml = testbed::moto_iam(&bed.moto.url, &body).await.ok()?;
    let raw = between(&xml, "<PolicyDocument>", "</PolicyDocument>")?;
    let unescaped = raw
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&unescaped).ok().or_else(|| {
        let decoded = percent_encoding::percent_decode_str(&unescaped).decode_utf8_lossy();
        serde_json::from_str(&decoded).ok()
    })
}

/// The names of the principal's inline policies.
async fn policy_names(bed: &TestBed, kind: &str, name: &str) -> Vec<String> {
    let body = format!("Action=List{kind}Policies&Version=2010-05-08&{kind}Name={name}");
    let xml = testbed::moto_iam(&bed.moto.url, &body).await.unwrap();
    xml.split("<member>")
        .skip(1)
        .filter_map(|m| m.split("</member>").next().map(str::to_string))
        .collect()
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = start + text[start..].find(close)?;
    Some(&text[start..end])
}

/// The document is exactly AWS's: deny everything to sessions issued before `cut_off`.
fn assert_revocation(doc: &Value, cut_off: &str) {
    assert_eq!(doc["Version"], "2012-10-17", "{doc}");
    let statement = match &doc["Statement"] {
        Value::Array(a) => a[0].clone(),
        s => s.clone(),
    };
    assert_eq!(statement["Effect"], "Deny", "{doc}");
    assert_eq!(statement["Action"], "*", "{doc}");
    assert_eq!(statement["Resource"], "*", "{doc}");
    assert_eq!(
        statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"], cut_off,
        "{doc}"
    );
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

/// The published set (id, secret, token) of a bundle.
fn published(bed: &TestBed, bundle: &str) -> (String, String, String) {
    let v: Value = serde_json::from_str(&bed.vault.latest(bundle).unwrap().value).unwrap();
    let s = |k: &str| v[k].as_str().unwrap().to_string();
    (s("AccessKeyId"), s("SecretAccessKey"), s("SessionToken"))
}

/// An STS call signed with a session: `Ok` or AWS's error code.
async fn sts_call(
    bed: &TestBed,
    set: &(String, String, String),
    action: &str,
) -> Result<(), String> {
    let credentials =
        aws_sdk_sts::config::Credentials::new(&set.0, &set.1, Some(set.2.clone()), None, "test");
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new("us-east-1"))
        .credentials_provider(credentials)
        .endpoint_url(bed.sts_url())
        .build();
    let client = aws_sdk_sts::Client::from_conf(config);
    let code = |e: &dyn ProvideErrorMetadata| e.code().unwrap_or("Unknown").to_string();
    match action {
        "AssumeRole" => client
            .assume_role()
            .role_arn(ROLE)
            .role_session_name("probe")
            .send()
            .await
            .map(|_| ())
            .map_err(|e| code(&e)),
        _ => client
            .get_caller_identity()
            .send()
            .await
            .map(|_| ())
            .map_err(|e| code(&e)),
    }
}

#[tokio::test]
async fn a_revoked_session_token_set_is_dead_and_a_new_one_minted_after_the_cut_off_works() {
    let bed = TestBed::start().await.unwrap();
    let op = operator(&bed).await;
    let env = settings(&bed, &[], &[]);
    let first = run_cli(&env, &["rotate"]).await;
    assert_eq!(first.code, Some(0), "{first:?}");
    let old = published(&bed, "AwsSessionCredentials");
    assert_eq!(sts_call(&bed, &old, "AssumeRole").await, Ok(()));

    let out = run_cli(&as_operator(&env, &op), &["revoke"]).await;

    assert_eq!(out.code, Some(0), "{out:?}");
    let report = out.json();
    assert_eq!(report["ok"], true, "{report}");
    let p = &report["principals"][0];
    assert_eq!(p["principal"], USER_ARN);
    assert_eq!(p["kind"], "user");
    assert_eq!(p["policyName"], POLICY);
    let cut_off_text = p["cutOff"].as_str().unwrap();
    let cut_off = at(cut_off_text);
    assert_eq!(
        cut_off_text.len(),
        "2030-01-01T00:00:00Z".len(),
        "{cut_off_text}"
    );
    // The policy, as IAM holds it.
    let doc = policy(&bed, "User", USER).await.expect("the user policy");
    assert_revocation(&doc, cut_off_text);
    // The new set: published, minted after the cut-off, and marked.
    let new = published(&bed, "AwsSessionCredentials");
    assert_ne!(new.0, old.0);
    assert_eq!(p["targets"][0]["accessKeyId"], new.0.as_str());
    assert!(p["targets"][0]["expiration"].is_string(), "{report}");
    let minted = bed
        .sts
        .minted()
        .into_iter()
        .find(|m| m.access_key_id == new.0)
        .unwrap();
    assert!(minted.issued >= cut_off, "{} < {cut_off}", minted.issued);
    let tags = bed
        .vault
        .latest("AwsSessionCredentials")
        .unwrap()
        .tags
        .unwrap();
    assert_eq!(tags["revoked-before"], cut_off_text);
    assert!(at(&tags["minted-at"]) >= cut_off);
    // AWS's answer to each set: the old one is denied all but GetCallerIdentity.
    assert_eq!(
        sts_call(&bed, &old, "AssumeRole").await,
        Err("AccessDenied".into())
    );
    assert_eq!(sts_call(&bed, &old, "GetCallerIdentity").await, Ok(()));
    assert_eq!(sts_call(&bed, &new, "AssumeRole").await, Ok(()));
    // The operator signed the IAM calls; the minting key signed none of them.
    for action in ["GetUserPolicy", "PutUserPolicy"] {
        let calls = bed.sts.calls_of(action);
        assert!(!calls.is_empty(), "{action}");
        assert!(calls
            .iter()
            .all(|c| c.access_key_id.as_deref() == Some(op.access_key_id.as_str())));
    }
    assert!(!out.text().contains(&op.secret_access_key));
    assert_no_secrets(&bed, &[&first.text(), &out.text()]);
}

#[tokio::test]
async fn all_puts_one_policy_per_principal_and_a_second_run_updates_it_in_place() {
    let bed = TestBed::start().await.unwrap();
    let op = operator(&bed).await;
    create_role(&bed, ROLE_NAME).await;
    let (env, _dir) = with_targets(
        &bed,
        &json!({"Defaults": {"SessionDurationSeconds": 3600}, "Targets": [
            {"Name": "minter"},
            {"Name": "role-a", "CredentialMode": "assume-role", "RoleArn": ROLE},
            {"Name": "role-b", "CredentialMode": "assume-role", "RoleArn": ROLE, "RoleSessionName": "role-b"},
        ]}),
    );
    let first = run_cli(&env, &["rotate"]).await;
    assert_eq!(first.code, Some(0), "{first:?}");
    let old_role_set = published(&bed, "role-a-AwsSessionCredentials");

    let once = run_cli(&as_operator(&env, &op), &["revoke", "--all"]).await;

    assert_eq!(once.code, Some(0), "{once:?}");
    let report = once.json();
    let principals = report["principals"].as_array().unwrap();
    assert_eq!(principals.len(), 2, "{report}");
    let role = principals.iter().find(|p| p["principal"] == ROLE).unwrap();
    assert_eq!(role["kind"], "role");
    let targets: Vec<&str> = role["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, vec!["role-a", "role-b"]);
    assert!(role["targets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["ok"] == true));
    let first_cut_off = role["cutOff"].as_str().unwrap().to_string();
    assert_revocation(
        &policy(&bed, "Role", ROLE_NAME).await.unwrap(),
        &first_cut_off,
    );
    assert_eq!(policy_names(&bed, "Role", ROLE_NAME).await, vec![POLICY]);
    assert_eq!(policy_names(&bed, "User", USER).await, vec![POLICY]);
    assert_eq!(
        sts_call(&bed, &old_role_set, "AssumeRole").await,
        Err("AccessDenied".into())
    );
    let new_role_set = published(&bed, "role-a-AwsSessionCredentials");
    assert_eq!(sts_call(&bed, &new_role_set, "AssumeRole").await, Ok(()));

    let again = run_cli(&as_operator(&env, &op), &["revoke", "--all"]).await;

    assert_eq!(again.code, Some(0), "{again:?}");
    let report = again.json();
    let role = report["principals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["principal"] == ROLE)
        .unwrap()
        .clone();
    let second_cut_off = role["cutOff"].as_str().unwrap();
    assert!(at(second_cut_off) > at(&first_cut_off));
    assert_eq!(role["previousCutOff"], first_cut_off.as_str());
    assert_revocation(
        &policy(&bed, "Role", ROLE_NAME).await.unwrap(),
        second_cut_off,
    );
    assert_eq!(policy_names(&bed, "Role", ROLE_NAME).await, vec![POLICY]);
    assert_eq!(policy_names(&bed, "User", USER).await, vec![POLICY]);
    assert_eq!(
        sts_call(&bed, &new_role_set, "AssumeRole").await,
        Err("AccessDenied".into()),
        "the second revocation killed the first re-issue"
    );
    assert_eq!(
        sts_call(
            &bed,
            &published(&bed, "role-a-AwsSessionCredentials"),
            "AssumeRole"
        )
        .await,
        Ok(())
    );
    assert_no_secrets(&bed, &[&first.text(), &once.text(), &again.text()]);
}

#[tokio::test]
async fn revoke_refuses_when_the_only_aws_credentials_are_the_minting_key() {
    let bed = TestBed::start().await.unwrap();
    let env = settings(&bed, &[], &[]);
    let first = run_cli(&env, &["rotate"]).await;
    assert_eq!(first.code, Some(0), "{first:?}");
    let before = published(&bed, "AwsSessionCredentials");
    let minting = Operator {
        access_key_id: bed.source.access_key_id.clone(),
        secret_access_key: bed.source.secret_access_key.clone(),
    };
    bed.sts.clear_calls();

    let out = run_cli(&as_operator(&env, &minting), &["revoke"]).await;

    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("refusing to revoke"), "{}", out.stderr);
    assert!(out.stderr.contains("minting key"), "{}", out.stderr);
    assert!(out.stderr.contains("nothing was changed"), "{}", out.stderr);
    assert!(policy(&bed, "User", USER).await.is_none());
    assert!(bed.sts.calls_of("PutUserPolicy").is_empty());
    assert!(bed.sts.calls_of("GetSessionToken").is_empty());
    assert_eq!(published(&bed, "AwsSessionCredentials").0, before.0);
    assert_no_secrets(&bed, &[&out.text()]);
}

#[tokio::test]
async fn a_dry_run_prints_the_policy_and_writes_nothing_anywhere() {
    let bed = TestBed::start().await.unwrap();
    let op = operator(&bed).await;
    let env = settings(&bed, &[], &[]);
    let first = run_cli(&env, &["rotate"]).await;
    assert_eq!(first.code, Some(0), "{first:?}");
    let versions = bed.vault.versions("AwsSessionCredentials").len();
    let tags = bed.vault.latest("AwsSessionCredentials").unwrap().tags;
    bed.sts.clear_calls();
    bed.vault.clear_log();

    let out = run_cli(&as_operator(&env, &op), &["revoke", "--dry-run"]).await;

    assert_eq!(out.code, Some(0), "{out:?}");
    let report = out.json();
    assert_eq!(report["dryRun"], true);
    let p = &report["principals"][0];
    assert_eq!(p["revoked"], false);
    assert_revocation(&p["policy"], p["cutOff"].as_str().unwrap());
    let writes: Vec<_> = bed
        .sts
        .calls()
        .into_iter()
        .filter(|c| !c.action.starts_with("Get") && !c.action.starts_with("List"))
        .map(|c| c.action)
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    assert!(bed.sts.calls_of("GetSessionToken").is_empty());
    assert!(
        bed.vault.log().iter().all(|r| r.op == "get"),
        "{:?}",
        bed.vault.log()
    );
    assert_eq!(bed.vault.versions("AwsSessionCredentials").len(), versions);
    assert_eq!(
        bed.vault.latest("AwsSessionCredentials").unwrap().tags,
        tags
    );
    assert!(policy(&bed, "User", USER).await.is_none());
    assert_no_secrets(&bed, &[&out.text()]);
}

#[tokio::test]
async fn one_failing_principal_does_not_stop_the_others() {
    let bed = TestBed::start().await.unwrap();
    let op = operator(&bed).await;
    // No such role in IAM: its policy cannot be put.
    let (env, _dir) = with_targets(
        &bed,
        &json!({"Targets": [
            {"Name": "minter"},
            {"Name": "ghost", "CredentialMode": "assume-role", "RoleArn": "arn:aws:iam::123456789012:role/no-such-role"},
        ]}),
    );
    let first = run_cli(&env, &["rotate"]).await;
    assert_eq!(first.code, Some(0), "{first:?}");
    let env = as_operator(&env, &op);
    let unselected = run_cli(&env, &["revoke"]).await;
    assert_eq!(unselected.code, Some(2), "{unselected:?}");
    assert!(unselected.stderr.contains("--all"), "{}", unselected.stderr);

    let out = run_cli(&env, &["revoke", "--all"]).await;

    assert_eq!(out.code, Some(1), "{out:?}");
    let report = out.json();
    let by_arn = |arn: &str| {
        report["principals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["principal"] == arn)
            .unwrap()
            .clone()
    };
    let user = by_arn(USER_ARN);
    assert_eq!(user["revoked"], true, "{report}");
    assert_eq!(user["targets"][0]["ok"], true, "{report}");
    let ghost = by_arn("arn:aws:iam::123456789012:role/no-such-role");
    assert_eq!(ghost["revoked"], false);
    assert!(
        ghost["error"].as_str().unwrap().contains("NoSuchEntity"),
        "{report}"
    );
    assert_eq!(report["summary"]["failed"], 1);
    assert!(policy(&bed, "User", USER).await.is_some());
    assert_no_secrets(&bed, &[&first.text(), &out.text()]);
}

#[tokio::test]
async fn prune_deletes_only_revocations_no_live_session_can_predate() {
    let bed = TestBed::start().await.unwrap();
    let op = operator(&bed).await;
    create_role(&bed, ROLE_NAME).await;
    let (env, _dir) = with_targets(
        &bed,
        &json!({"Targets": [
            {"Name": "minter"},
            {"Name": "role", "CredentialMode": "assume-role", "RoleArn": ROLE},
        ]}),
    );
    let first = run_cli(&env, &["rotate"]).await;
    assert_eq!(first.code, Some(0), "{first:?}");
    let now = Utc::now();
    // A user's session tokens live up to 36 h, a role's sessions up to 12 h.
    put_policy(&bed, "User", USER, now - chrono::TimeDelta::hours(37)).await;
    put_policy(&bed, "Role", ROLE_NAME, now - chrono::TimeDelta::hours(11)).await;
    bed.sts.clear_calls();

    let out = run_cli(&as_operator(&env, &op), &["revoke", "--all", "--prune"]).await;

    assert_eq!(out.code, Some(1), "{out:?}");
    let report = out.json();
    let by_arn = |arn: &str| {
        report["principals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["principal"] == arn)
            .unwrap()
            .clone()
    };
    assert_eq!(by_arn(USER_ARN)["pruned"], true, "{report}");
    let role = by_arn(ROLE);
    assert!(
        role["error"]
            .as_str()
            .unwrap()
            .contains("refusing to prune"),
        "{report}"
    );
    assert!(policy(&bed, "User", USER).await.is_none());
    assert!(policy(&bed, "Role", ROLE_NAME).await.is_some());
    // No re-issue of either target: neither the user's (GetSessionToken) nor the role's
    // (AssumeRole), nor any other mint.
    for action in ["GetSessionToken", "AssumeRole", "AssumeRoleWithWebIdentity"] {
        assert!(
            bed.sts.calls_of(action).is_empty(),
            "no re-issue, yet {action} was called"
        );
    }
    assert_no_secrets(&bed, &[&first.text(), &out.text()]);
}

/// A rotation that read the bundle before a revocation marked it, and minted before the cut-off,
/// must not publish its (dead) set over the revocation's: the mark is read again before a
/// publish (issue #20).
#[tokio::test]
async fn a_rotation_in_flight_when_the_bundle_is_marked_does_not_publish_its_dead_set() {
    let bed = TestBed::start().await.unwrap();
    let env = settings(&bed, &[], &[]);
    let first = run_cli(&env, &["rotate"]).await;
    assert_eq!(first.code, Some(0), "{first:?}");
    bed.sts.faults.add(testbed::Rule::on(
        "GetSessionToken",
        testbed::Fault::Delay(std::time::Duration::from_secs(2)),
    ));
    let in_flight = {
        let env = env.clone();
        tokio::spawn(async move { run_cli(&env, &["rotate", "--force"]).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    // What `revoke` does before it puts the deny: mark the latest bundle.
    let bundle = bed.vault.latest("AwsSessionCredentials").unwrap();
    let mut tags: Vec<(String, String)> = bundle.tags.clone().unwrap().into_iter().collect();
    let cut_off = (Utc::now() + chrono::TimeDelta::seconds(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    tags.push(("revoked-before".into(), cut_off.clone()));
    let tags: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let marked = bed
        .vault
        .seed("AwsSessionCredentials", &bundle.value, &tags);

    let out = in_flight.await.unwrap();

    assert_eq!(out.code, Some(1), "{out:?}");
    let body = out.json();
    assert_eq!(body["error"]["code"], "RevokedMeanwhile", "{body}");
    assert_eq!(
        bed.vault.latest("AwsSessionCredentials").unwrap().version,
        marked
    );
    // The next run mints after the cut-off and carries the mark forward.
    let next = run_cli(&env, &["rotate"]).await;
    assert_eq!(next.code, Some(0), "{next:?}");
    assert!(
        next.json()["reason"]
            .as_str()
            .unwrap()
            .contains("revocation"),
        "{}",
        next.stdout
    );
    let tags = bed
        .vault
        .latest("AwsSessionCredentials")
        .unwrap()
        .tags
        .unwrap();
    assert_eq!(tags["revoked-before"], cut_off);
    assert_no_secrets(&bed, &[&first.text(), &out.text(), &next.text()]);
}

/// The long-lived key leaked too: a new key, every key the vault does not hold deleted (the old
/// one, and one the leak could have created), then the revocation and the re-issue.
#[tokio::test]
async fn rotate_source_key_replaces_the_key_and_deletes_every_key_the_vault_does_not_hold() {
    let bed = TestBed::start().await.unwrap();
    let op = operator(&bed).await;
    let env = settings(&bed, &[], &[]);
    let first = run_cli(&env, &["rotate"]).await;
    assert_eq!(first.code, Some(0), "{first:?}");
    let old_key = bed.source.access_key_id.clone();

    let out = run_cli(&as_operator(&env, &op), &["revoke", "--rotate-source-key"]).await;

    assert_eq!(out.code, Some(0), "{out:?}");
    let held = crate::support::stored_key_id(&bed);
    assert_ne!(held, old_key);
    let keys: Vec<String> = bed
        .access_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(keys, vec![held.clone()], "only the vault's key is left");
    let report = out.json();
    let actions = report["principals"][0]["actions"].to_string();
    assert!(
        actions.contains(&format!("deleted access key {old_key}")),
        "{actions}"
    );
    let p = &report["principals"][0];
    let new = published(&bed, "AwsSessionCredentials");
    assert_eq!(p["targets"][0]["accessKeyId"], new.0.as_str());
    assert_eq!(sts_call(&bed, &new, "AssumeRole").await, Ok(()));
    assert_no_secrets(&bed, &[&first.text(), &out.text()]);
}

/// The operator cannot mint as the function's managed identity: without --function-url the
/// role is still revoked, and the report says exactly what to run.
#[tokio::test]
async fn a_web_identity_role_is_revoked_and_the_report_says_how_to_re_issue() {
    let bed = TestBed::start().await.unwrap();
    let op = operator(&bed).await;
    create_role(&bed, ROLE_NAME).await;
    let env = settings(
        &bed,
        &[
            ("CredentialMode", "web-identity"),
            ("RoleArn", ROLE),
            ("WebIdentityAudience", "api://stsbridge-aws"),
        ],
        &["UsernameFromKeyVault", "PasswordFromKeyVault"],
    );

    let out = run_cli(&as_operator(&env, &op), &["revoke"]).await;

    assert_eq!(out.code, Some(1), "{out:?}");
    let report = out.json();
    let p = &report["principals"][0];
    assert_eq!(p["principal"], ROLE);
    assert_eq!(p["revoked"], true, "{report}");
    assert_revocation(
        &policy(&bed, "Role", ROLE_NAME).await.unwrap(),
        p["cutOff"].as_str().unwrap(),
    );
    let next = p["targets"][0]["nextStep"].as_str().unwrap();
    assert!(next.contains("HttpRotate?force=true"), "{next}");
    assert!(next.contains("--function-url"), "{next}");
    assert!(bed.sts.calls_of("AssumeRoleWithWebIdentity").is_empty());
    assert_no_secrets(&bed, &[&out.text()]);
}

/// With --function-url, a web-identity target is re-issued by the function itself
/// (`HttpRotate?force=true` with the function key), after the cut-off.
#[tokio::test]
async fn a_web_identity_target_is_re_issued_through_the_function_url() {
    let bed = TestBed::start().await.unwrap();
    let op = operator(&bed).await;
    create_role(&bed, ROLE_NAME).await;
    let env = settings(
        &bed,
        &[
            ("CredentialMode", "web-identity"),
            ("RoleArn", ROLE),
            ("WebIdentityAudience", "api://stsbridge-aws"),
        ],
        &["UsernameFromKeyVault", "PasswordFromKeyVault"],
    );
    let app = std::sync::Arc::new(crate::support::App::spawn(env.clone()).await);
    // The platform's front door: checks the function key, then invokes the handler as the host does.
    let front =
        {
            let app = app.clone();
            axum::Router::new().route(
            "/api/HttpRotate",
            axum::routing::post(
                move |headers: axum::http::HeaderMap,
                      query: axum::extract::Query<HashMap<String, String>>| {
                    let app = app.clone();
                    async move {
                        if headers.get("x-functions-key").and_then(|v| v.to_str().ok())
                            != Some("function-key-for-the-test")
                        {
                            return (axum::http::StatusCode::UNAUTHORIZED, String::new());
                        }
                        let q: Vec<(&str, &str)> =
                            query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                        let answer = app.http_rotate("POST", &q, None).await;
                        let status = axum::http::StatusCode::from_u16(answer.status).unwrap();
                        (status, answer.body.to_string())
                    }
                },
            ),
        )
        };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/HttpRotate", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, front).await });
    let first = app.http_rotate("POST", &[], None).await;
    assert_eq!(first.status, 200, "{first:?}");
    let old = published(&bed, "AwsSessionCredentials");
    let mut env = as_operator(&env, &op);
    env.insert(
        "STSBRIDGE_FUNCTION_KEY".into(),
        "function-key-for-the-test".into(),
    );

    let out = run_cli(&env, &["revoke", "--function-url", &url]).await;

    server.abort();
    assert_eq!(out.code, Some(0), "{out:?}");
    let report = out.json();
    let p = &report["principals"][0];
    let cut_off = at(p["cutOff"].as_str().unwrap());
    let new = published(&bed, "AwsSessionCredentials");
    assert_ne!(new.0, old.0);
    assert_eq!(p["targets"][0]["accessKeyId"], new.0.as_str(), "{report}");
    let minted = bed
        .sts
        .minted()
        .into_iter()
        .find(|m| m.access_key_id == new.0)
        .unwrap();
    assert!(minted.issued >= cut_off);
    assert_eq!(
        sts_call(&bed, &old, "AssumeRole").await,
        Err("AccessDenied".into())
    );
    assert_eq!(sts_call(&bed, &new, "AssumeRole").await, Ok(()));
    assert!(!out.text().contains("function-key-for-the-test"));
    assert_no_secrets(&bed, &[&out.text(), &app.all_text()]);
}

/// Another key of the minting user is the minting identity all the same (assume-role: the user
/// is the owner of the target's source key).
#[tokio::test]
async fn revoke_refuses_another_key_of_the_minting_user() {
    let bed = TestBed::start().await.unwrap();
    create_role(&bed, ROLE_NAME).await;
    let (id, secret) = bed.add_access_key(true).await.unwrap();
    let env = settings(
        &bed,
        &[("CredentialMode", "assume-role"), ("RoleArn", ROLE)],
        &[],
    );
    let minting_user = Operator {
        access_key_id: id,
        secret_access_key: secret.clone(),
    };

    let out = run_cli(&as_operator(&env, &minting_user), &["revoke"]).await;

    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("refusing to revoke"), "{}", out.stderr);
    assert!(out.stderr.contains(USER_ARN), "{}", out.stderr);
    assert!(policy(&bed, "Role", ROLE_NAME).await.is_none());
    assert!(!out.text().contains(&secret));
    assert_no_secrets(&bed, &[&out.text()]);
}

/// Targets of two principals sharing one IAM user's key: the key is replaced once (by its owner
/// target), before either cut-off, and both principals are revoked and re-issued with it.
#[tokio::test]
async fn rotate_source_key_with_all_replaces_a_shared_key_once_for_every_principal() {
    let bed = TestBed::start().await.unwrap();
    let op = operator(&bed).await;
    create_role(&bed, ROLE_NAME).await;
    let (env, _dir) = with_targets(
        &bed,
        &json!({"Targets": [
            {"Name": "minter"},
            {"Name": "role", "CredentialMode": "assume-role", "RoleArn": ROLE},
        ]}),
    );
    let first = run_cli(&env, &["rotate"]).await;
    assert_eq!(first.code, Some(0), "{first:?}");

    let out = run_cli(
        &as_operator(&env, &op),
        &["revoke", "--all", "--rotate-source-key"],
    )
    .await;

    assert_eq!(out.code, Some(0), "{out:?}");
    let held = crate::support::stored_key_id(&bed);
    let keys: Vec<String> = bed
        .access_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(keys, vec![held.clone()]);
    assert_eq!(bed.sts.calls_of("CreateAccessKey").len(), 1);
    let report = out.json();
    assert_eq!(report["principals"].as_array().unwrap().len(), 2);
    for bundle in ["minter-AwsSessionCredentials", "role-AwsSessionCredentials"] {
        let tags = bed.vault.latest(bundle).unwrap().tags.unwrap();
        assert_eq!(tags["source-access-key-id"], held, "{bundle}");
        assert!(tags.contains_key("revoked-before"), "{bundle}");
    }
    assert_eq!(
        sts_call(
            &bed,
            &published(&bed, "role-AwsSessionCredentials"),
            "AssumeRole"
        )
        .await,
        Ok(())
    );
    assert_no_secrets(&bed, &[&first.text(), &out.text()]);
}

/// An IAM user's access keys as moto holds them: `(id, status)`.
async fn keys_of(bed: &TestBed, user: &str) -> Vec<(String, String)> {
    let xml = testbed::moto_iam(
        &bed.moto.url,
        &format!("Action=ListAccessKeys&Version=2010-05-08&UserName={user}"),
    )
    .await
    .unwrap();
    xml.split("<member>")
        .skip(1)
        .filter_map(|m| {
            Some((
                between(m, "<AccessKeyId>", "</AccessKeyId>")?.to_string(),
                between(m, "<Status>", "</Status>")?.to_string(),
            ))
        })
        .collect()
}

/// What a writer to the vault does: a new version of `secret` with the same value and `tag` set.
fn retag(bed: &TestBed, secret: &str, tag: &str, value: &str) {
    let latest = bed.vault.latest(secret).unwrap();
    let mut tags = latest.tags.clone().unwrap_or_default();
    tags.insert(tag.to_string(), value.to_string());
    let tags: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    bed.vault.seed(secret, &latest.value, &tags);
}

/// `run_cli` that fails the test, and kills the process, if it does not finish in time.
async fn run_cli_within(
    env: &HashMap<String, String>,
    args: &[&str],
    seconds: u64,
) -> crate::support::CliOutput {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::from(crate::support::cli_command(env, home.path()));
    cmd.args(args).kill_on_drop(true);
    let output = tokio::time::timeout(std::time::Duration::from_secs(seconds), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("stsbridge {args:?} did not finish within {seconds} s"))
        .expect("run stsbridge");
    crate::support::CliOutput {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

const CI_DEPLOYER_ARN: &str = "arn:aws:iam::123456789012:user/ci-deployer";

/// Issue #26 F1, the reproduced attack: a writer to the vault sets the bundle's `caller-arn` to
/// another IAM user. `revoke --rotate-source-key` used to put the deny on that user and delete
/// its keys. Now the IAM user is what the source key proves (GetCallerIdentity signed with the
/// vault's pair); the tag disagrees, so nothing is changed, anywhere, and the refusal names both.
#[tokio::test]
async fn a_caller_arn_tag_naming_another_user_is_refused_and_that_user_keeps_its_keys_and_policies()
{
    let bed = TestBed::start().await.unwrap();
    let op = operator(&bed).await;
    let other = bed.create_iam_user("ci-deployer").await.unwrap();
    let env = settings(&bed, &[], &[]);
    let first = run_cli(&env, &["rotate"]).await;
    assert_eq!(first.code, Some(0), "{first:?}");
    retag(&bed, "AwsSessionCredentials", "caller-arn", CI_DEPLOYER_ARN);
    let (other_keys, minter_keys) = (
        keys_of(&bed, "ci-deployer").await,
        keys_of(&bed, USER).await,
    );
    let published_before = published(&bed, "AwsSessionCredentials");
    bed.sts.clear_calls();

    let out = run_cli(&as_operator(&env, &op), &["revoke", "--rotate-source-key"]).await;

    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("refusing to revoke"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("caller-arn tag names {CI_DEPLOYER_ARN:?}")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!("proves to be {USER_ARN}")),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("nothing was changed"), "{}", out.stderr);
    // ci-deployer, as IAM holds it: the same keys, active, and no policy.
    assert_eq!(keys_of(&bed, "ci-deployer").await, other_keys);
    assert!(other_keys.iter().all(|(_, s)| s == "Active"));
    assert!(policy_names(&bed, "User", "ci-deployer").await.is_empty());
    // Nor was anything changed for the minting user, or in the vault.
    assert_eq!(keys_of(&bed, USER).await, minter_keys);
    assert!(policy_names(&bed, "User", USER).await.is_empty());
    for action in [
        "CreateAccessKey",
        "DeleteAccessKey",
        "UpdateAccessKey",
        "PutUserPolicy",
        "GetSessionToken",
    ] {
        assert!(bed.sts.calls_of(action).is_empty(), "{action}");
    }
    assert_eq!(published(&bed, "AwsSessionCredentials"), published_before);
    assert!(!out.text().contains(&other.secret_access_key));
    assert_no_secrets(&bed, &[&first.text(), &out.text()]);
}

/// Issue #26 F1: a key id proves nothing (ids are not secret): a vault writer who stores
/// ci-deployer's key id next to a secret that is not its own, and tags the bundle to match, is
/// refused by AWS's signature check, so ci-deployer is never revoked.
#[tokio::test]
async fn a_stored_key_id_without_its_secret_proves_nothing_and_no_other_user_is_touched() {
    let bed = TestBed::start().await.unwrap();
    let op = operator(&bed).await;
    let other = bed.create_iam_user("ci-deployer").await.unwrap();
    let env = settings(&bed, &[], &[]);
    let first = run_cli(&env, &["rotate"]).await;
    assert_eq!(first.code, Some(0), "{first:?}");
    bed.vault
        .seed(testbed::SOURCE_KEY_ID_SECRET, &other.access_key_id, &[]);
    retag(&bed, "AwsSessionCredentials", "caller-arn", CI_DEPLOYER_ARN);
    let other_keys = keys_of(&bed, "ci-deployer").await;
    bed.sts.clear_calls();

    let out = run_cli(&as_operator(&env, &op), &["revoke"]).await;

    assert_eq!(out.code, Some(1), "{out:?}");
    let report = out.json();
    assert!(
        report["principals"].as_array().unwrap().is_empty(),
        "{report}"
    );
    let why = report["unresolved"][0]["error"]["message"]
        .as_str()
        .unwrap();
    assert!(why.contains("cannot be proven"), "{why}");
    assert!(why.contains("SignatureDoesNotMatch"), "{why}");
    assert_eq!(keys_of(&bed, "ci-deployer").await, other_keys);
    assert!(policy_names(&bed, "User", "ci-deployer").await.is_empty());
    assert!(bed.sts.calls_of("PutUserPolicy").is_empty());
    assert!(!out.text().contains(&other.secret_access_key));
    assert_no_secrets(&bed, &[&first.text(), &out.text()]);
}

/// AssumeRole signed with a long-lived key: the session's (id, secret, token).
async fn assume(bed: &TestBed, op: &Operator, role: &str) -> (String, String, String) {
    let credentials = aws_sdk_sts::config::Credentials::new(
        &op.access_key_id,
        &op.secret_access_key,
        None,
        None,
        "test",
    );
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new("us-east-1"))
        .credentials_provider(credentials)
        .endpoint_url(bed.sts_url())
        .build();
    let out = aws_sdk_sts::Client::from_conf(config)
        .assume_role()
        .role_arn(role)
        .role_session_name("incident")
        .send()
        .await
        .unwrap();
    let c = out.credentials().unwrap();
    (
        c.access_key_id().to_string(),
        c.secret_access_key().to_string(),
        c.session_token().to_string(),
    )
}

/// Issue #26 F8: an operator acting as a session of a role being revoked would cut off its own
/// session halfway through: refused, naming the role, as for the user being revoked.
#[tokio::test]
async fn an_operator_acting_as_a_session_of_a_role_being_revoked_is_refused_naming_the_role() {
    let bed = TestBed::start().await.unwrap();
    let responder = operator(&bed).await;
    create_role(&bed, ROLE_NAME).await;
    let env = settings(
        &bed,
        &[("CredentialMode", "assume-role"), ("RoleArn", ROLE)],
        &[],
    );
    let first = run_cli(&env, &["rotate"]).await;
    assert_eq!(first.code, Some(0), "{first:?}");
    let (id, secret, token) = assume(&bed, &responder, ROLE).await;
    let mut env = as_operator(
        &env,
        &Operator {
            access_key_id: id,
            secret_access_key: secret,
        },
    );
    env.insert("AWS_SESSION_TOKEN".into(), token);
    bed.sts.clear_calls();

    let out = run_cli(&env, &["revoke"]).await;

    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("refusing to revoke"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("a session of role {ROLE}")),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("nothing was changed"), "{}", out.stderr);
    assert!(policy(&bed, "Role", ROLE_NAME).await.is_none());
    assert!(bed.sts.calls_of("PutRolePolicy").is_empty());
    assert!(bed.sts.calls_of("AssumeRole").is_empty(), "no re-issue");
    assert_no_secrets(&bed, &[&first.text(), &out.text()]);
}

/// Issue #26 F2: an existing `AWSRevokeOlderSessions` whose cut-off is a year ahead (it denies
/// every session until then, new ones included) used to be adopted, and `revoke` slept until
/// it. Beyond 5 minutes ahead it is ignored, with a warning naming the policy and its value,
/// and replaced by AWS's "now".
#[tokio::test]
async fn an_existing_cut_off_a_year_ahead_is_ignored_with_a_warning_and_replaced() {
    let bed = TestBed::start().await.unwrap();
    let op = operator(&bed).await;
    let env = settings(&bed, &[], &[]);
    let first = run_cli(&env, &["rotate"]).await;
    assert_eq!(first.code, Some(0), "{first:?}");
    let year = Utc::now() + chrono::TimeDelta::days(365);
    let year_text = year.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    put_policy(&bed, "User", USER, year).await;

    let out = run_cli_within(&as_operator(&env, &op), &["revoke"], 60).await;

    assert_eq!(out.code, Some(0), "{out:?}");
    let report = out.json();
    let p = &report["principals"][0];
    let warnings = p["warnings"].to_string();
    assert!(
        warnings.contains(&format!(
            "policy already on {USER_ARN} has the cut-off {year_text}"
        )),
        "{warnings}"
    );
    assert!(warnings.contains("ignored"), "{warnings}");
    assert_eq!(p["previousCutOff"], year_text.as_str());
    let cut_off = p["cutOff"].as_str().unwrap();
    assert!(
        (at(cut_off) - Utc::now()).num_seconds().abs() < 60,
        "{cut_off}"
    );
    assert_revocation(&policy(&bed, "User", USER).await.unwrap(), cut_off);
    let new = published(&bed, "AwsSessionCredentials");
    assert_eq!(sts_call(&bed, &new, "AssumeRole").await, Ok(()));
    assert_no_secrets(&bed, &[&first.text(), &out.text()]);
}

/// Issue #26 F2: a `revoked-before` tag a year ahead made every forced or due run mint and then
/// refuse to publish (409 `RevokedMeanwhile`) until that date. Now it is ignored with a warning
/// naming the tag and its value, the new set is published, and the tag is not carried forward.
#[tokio::test]
async fn a_forced_run_publishes_despite_a_revoked_before_a_year_ahead_with_a_warning() {
    let bed = TestBed::start().await.unwrap();
    let env = settings(&bed, &[], &[]);
    let first = run_cli(&env, &["rotate"]).await;
    assert_eq!(first.code, Some(0), "{first:?}");
    let before = published(&bed, "AwsSessionCredentials");
    let year = (Utc::now() + chrono::TimeDelta::days(365))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    retag(&bed, "AwsSessionCredentials", "revoked-before", &year);

    let out = run_cli(&env, &["rotate", "--force"]).await;

    assert_eq!(out.code, Some(0), "{out:?}");
    let report = out.json();
    assert_eq!(report["rotated"], true, "{report}");
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains(&format!(
            "the published bundle's revoked-before tag is {year}"
        )),
        "{warnings}"
    );
    assert!(warnings.contains("ignored"), "{warnings}");
    let after = published(&bed, "AwsSessionCredentials");
    assert_ne!(after.0, before.0);
    assert_eq!(report["accessKeyId"], after.0.as_str());
    let tags = bed
        .vault
        .latest("AwsSessionCredentials")
        .unwrap()
        .tags
        .unwrap();
    assert!(!tags.contains_key("revoked-before"), "{tags:?}");
    assert_no_secrets(&bed, &[&first.text(), &out.text()]);
}

/// A web-identity target's settings, with the operator's credentials and a function key.
async fn web_identity_env(bed: &TestBed, key: &str) -> HashMap<String, String> {
    let op = operator(bed).await;
    create_role(bed, ROLE_NAME).await;
    let env = settings(
        bed,
        &[
            ("CredentialMode", "web-identity"),
            ("RoleArn", ROLE),
            ("WebIdentityAudience", "api://stsbridge-aws"),
        ],
        &["UsernameFromKeyVault", "PasswordFromKeyVault"],
    );
    let mut env = as_operator(&env, &op);
    env.insert("STSBRIDGE_FUNCTION_KEY".into(), key.into());
    env
}

/// Issue #27 F4: reqwest followed redirects, carrying `x-functions-key` to whatever host the
/// answer named. Now a redirect is an error naming where it pointed, and never followed: the
/// second server (another origin: another port) never sees a request, let alone the key.
#[tokio::test]
async fn the_function_key_is_never_sent_where_a_redirect_points() {
    const KEY: &str = "function-key-that-must-stay-home";
    let bed = TestBed::start().await.unwrap();
    let env = web_identity_env(&bed, KEY).await;
    let seen: std::sync::Arc<std::sync::Mutex<Vec<Option<String>>>> = Default::default();
    let elsewhere = {
        let seen = seen.clone();
        axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(
                    headers
                        .get("x-functions-key")
                        .and_then(|v| v.to_str().ok())
                        .map(String::from),
                );
                (
                    axum::http::StatusCode::OK,
                    r#"{"rotated":true,"accessKeyId":"ASIAEXAMPLEEXAMPLE01"}"#,
                )
            }
        })
    };
    let b = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let b_addr = b.local_addr().unwrap();
    let b_server = tokio::spawn(async move { axum::serve(b, elsewhere).await });
    let location = format!("http://{b_addr}/api/HttpRotate?force=true");
    let redirecting = axum::Router::new().fallback(move || {
        let location = location.clone();
        async move {
            (
                axum::http::StatusCode::TEMPORARY_REDIRECT,
                [(axum::http::header::LOCATION, location)],
            )
        }
    });
    let a = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/HttpRotate", a.local_addr().unwrap());
    let a_server = tokio::spawn(async move { axum::serve(a, redirecting).await });

    let out = run_cli(&env, &["revoke", "--function-url", &url]).await;

    a_server.abort();
    b_server.abort();
    assert_eq!(
        *seen.lock().unwrap(),
        Vec::<Option<String>>::new(),
        "the redirect was followed"
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    let report = out.json();
    let target = &report["principals"][0]["targets"][0];
    assert_eq!(target["ok"], false, "{report}");
    let message = target["error"]["message"].as_str().unwrap();
    assert!(message.contains("redirect"), "{message}");
    assert!(message.contains(&b_addr.to_string()), "{message}");
    assert!(message.contains("not followed"), "{message}");
    assert!(!out.text().contains(KEY));
    assert_no_secrets(&bed, &[&out.text()]);
}

/// Issue #27 F4: `--function-url` in plain http to another machine would send the function key
/// in the clear: refused as a usage error before any request, so nothing is revoked either.
#[tokio::test]
async fn a_plain_http_function_url_off_this_machine_is_refused_before_any_request() {
    const KEY: &str = "function-key-that-must-stay-home";
    let bed = TestBed::start().await.unwrap();
    let env = web_identity_env(&bed, KEY).await;
    bed.sts.clear_calls();

    let out = run_cli(
        &env,
        &[
            "revoke",
            "--function-url",
            "http://example.invalid/api/HttpRotate",
        ],
    )
    .await;

    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("--function-url"), "{}", out.stderr);
    assert!(out.stderr.contains("https"), "{}", out.stderr);
    assert!(out.stderr.contains("example.invalid"), "{}", out.stderr);
    assert!(bed.sts.calls().is_empty(), "{:?}", bed.sts.calls());
    assert!(policy(&bed, "Role", ROLE_NAME).await.is_none());
    assert!(!out.text().contains(KEY));
    assert_no_secrets(&bed, &[&out.text()]);
}
