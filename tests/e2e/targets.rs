//! Many targets in one app (issue #10): a targets file with targets of different modes, one of
//! them failing; selection; per-target freshness; validation of the whole file; write pacing.

use std::collections::HashMap;

use serde_json::{json, Value};
use testbed::TestBed;

use crate::support::{assert_no_secrets, run_cli, settings, App};

const ROLE: &str = "arn:aws:iam::123456789012:role/stsbridge-reader";
const AUDIENCE: &str = "api://stsbridge-aws";

/// Writes the targets file and returns the app settings pointing at it.
fn with_targets(
    bed: &TestBed,
    file: &Value,
    extra: &[(&str, &str)],
) -> (HashMap<String, String>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("targets.json");
    std::fs::write(&path, serde_json::to_string_pretty(file).unwrap()).unwrap();
    let mut set = vec![("StsbridgeTargetsFile", path.to_str().unwrap())];
    set.extend_from_slice(extra);
    (settings(bed, &set, &[]), dir)
}

/// Three targets of different modes; `broken` reads its IAM user's key from a secret that does
/// not exist.
fn three(bed: &TestBed) -> Value {
    let vault = bed.vault_url();
    json!({
        "Defaults": {"SessionDurationSeconds": 3600},
        "Targets": [
            {"Name": "minter"},
            {"Name": "role", "CredentialMode": "assume-role", "RoleArn": ROLE, "SessionTags": {"team": "platform"}},
            {"Name": "federated", "CredentialMode": "web-identity", "RoleArn": ROLE, "WebIdentityAudience": AUDIENCE,
             "UsernameFromKeyVault": null, "PasswordFromKeyVault": null},
            {"Name": "broken", "UsernameFromKeyVault": format!("{vault}/secrets/no-such-secret")},
        ]
    })
}

fn entries(body: &Value) -> Vec<(String, bool)> {
    body["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["target"].as_str().unwrap().to_string(),
                e["ok"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_target_is_rotated_one_failing_never_stops_the_others() {
    let bed = TestBed::start().await.unwrap();
    let (env, _dir) = with_targets(&bed, &three(&bed), &[]);
    let app = App::spawn(env).await;

    let answer = app.http_rotate("POST", &[], None).await;

    assert_eq!(
        answer.status, 502,
        "any failure is a 502: {:?}",
        answer.body
    );
    assert_eq!(
        entries(&answer.body),
        vec![
            ("minter".to_string(), true),
            ("role".to_string(), true),
            ("federated".to_string(), true),
            ("broken".to_string(), false)
        ]
    );
    assert_eq!(
        answer.body["summary"],
        json!({"targets": 4, "rotated": 3, "fresh": 0, "failed": 1})
    );
    let broken = &answer.body["targets"][3];
    assert_eq!(broken["error"]["code"], "SecretNotFound");
    // One log line per target and a summary.
    let logs: Vec<String> = serde_json::from_value(answer.envelope["Logs"].clone()).unwrap();
    assert_eq!(logs.len(), 5, "{logs:?}");
    assert!(logs[3].starts_with("broken: rotation failed"), "{logs:?}");
    assert!(
        logs[4].contains("4 targets: 3 rotated, 0 fresh, 1 failed"),
        "{logs:?}"
    );
    // Each target publishes under its own name, tagged with it, in its own mode.
    for (name, mode) in [
        ("minter", "session-token"),
        ("role", "assume-role"),
        ("federated", "web-identity"),
    ] {
        let bundle = bed
            .vault
            .latest(&format!("{name}-AwsSessionCredentials"))
            .unwrap();
        let tags = bundle.tags.unwrap();
        assert_eq!(tags["target"], name);
        assert_eq!(tags["mode"], mode);
        for part in ["AccessKeyId", "SecretAccessKey", "SessionToken"] {
            assert!(
                bed.vault.latest(&format!("{name}-{part}")).is_some(),
                "{name}-{part}"
            );
        }
    }
    assert!(
        bed.vault.latest("AwsSessionCredentials").is_none(),
        "the flat names are not used"
    );
    assert_eq!(bed.sts.calls_of("GetSessionToken").len(), 1);
    assert_eq!(bed.sts.calls_of("AssumeRole").len(), 1);
    assert_eq!(bed.sts.calls_of("AssumeRoleWithWebIdentity").len(), 1);

    // Freshness is per target: a second trigger mints nothing for the three good ones.
    let again = app.http_rotate("POST", &[], None).await;
    assert_eq!(
        again.body["summary"],
        json!({"targets": 4, "rotated": 0, "fresh": 3, "failed": 1})
    );
    // The timer fails the execution when any target failed, but still rotates the others.
    let (status, envelope) = app.timer_rotate().await;
    assert_eq!(status, 500);
    assert!(
        envelope["Logs"].to_string().contains("broken"),
        "{envelope}"
    );

    assert_no_secrets(&bed, &[&app.all_text(), &answer.body.to_string()]);
}

#[tokio::test]
async fn a_selection_rotates_just_those_and_get_lists_every_targets_state() {
    let bed = TestBed::start().await.unwrap();
    let (env, _dir) = with_targets(&bed, &three(&bed), &[]);
    let app = App::spawn(env.clone()).await;

    let answer = app
        .http_rotate(
            "POST",
            &[("target", "minter,ROLE"), ("force", "true")],
            None,
        )
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(
        entries(&answer.body),
        vec![("minter".to_string(), true), ("role".to_string(), true)]
    );
    assert!(bed
        .vault
        .latest("federated-AwsSessionCredentials")
        .is_none());

    let unknown = app
        .http_rotate("POST", &[("target", "minter,nope")], None)
        .await;
    assert_eq!(unknown.status, 400);
    let message = unknown.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("nope") && message.contains("federated"),
        "{message}"
    );

    let state = app.http_rotate("GET", &[], None).await;
    let states = state.body["targets"].as_array().unwrap();
    assert_eq!(states.len(), 4);
    assert_eq!(states[0]["target"], "minter");
    assert_eq!(states[0]["published"], true);
    assert_eq!(states[2]["published"], false);

    let cli = run_cli(&env, &["rotate", "--target", "federated"]).await;
    assert_eq!(cli.code, Some(0), "{}", cli.text());
    assert_eq!(entries(&cli.json()), vec![("federated".to_string(), true)]);
    let failing = run_cli(&env, &["rotate", "--target", "broken,minter"]).await;
    assert_eq!(failing.code, Some(1), "{}", failing.text());
    assert_no_secrets(&bed, &[&app.all_text(), &cli.text(), &failing.text()]);
}

#[tokio::test]
async fn check_reports_every_problem_with_the_targets_name_and_field() {
    let bed = TestBed::start().await.unwrap();
    let file = json!({
        "Defaults": {"CredentialsBundleSecretName": "shared", "IDENTITY_HEADER": "x"},
        "Targets": [
            {"Name": "a", "CredentialMode": "assume-role", "RoleArn": "not-an-arn"},
            {"Name": "b", "SessionDurationSeconds": 10, "Colour": "blue"},
            {"Name": "c", "AccessKeyIdFromKeyVault": "x"},
            {"Name": "d", "AccessKeyIdFromKeyVault": "x"},
            {"Name": "A"},
        ]
    });
    let (env, _dir) = with_targets(&bed, &file, &[]);
    let out = run_cli(&env, &["check"]).await;
    assert_ne!(out.code, Some(0));
    let text = out.text();
    for want in [
        "Defaults.CredentialsBundleSecretName",
        "Defaults.IDENTITY_HEADER",
        "Targets[a].RoleArn",
        "Targets[b].SessionDurationSeconds",
        "Targets[b].Colour",
        "Targets[d]",
        "target c publishes to as well",
        "Targets[A].Name",
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }

    // A valid file: check describes every target.
    let (env, _dir) = with_targets(&bed, &three(&bed), &[]);
    let out = run_cli(&env, &["check"]).await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    for name in ["minter", "role", "federated", "broken"] {
        assert!(
            out.stdout.contains(&format!("target:    {name}")),
            "{}",
            out.stdout
        );
    }
    assert!(
        out.stdout.contains("minter-AwsSessionCredentials"),
        "{}",
        out.stdout
    );

    // A missing file named by the setting is an error naming the setting.
    let missing = settings(
        &bed,
        &[("StsbridgeTargetsFile", "/nonexistent/targets.json")],
        &[],
    );
    let out = run_cli(&missing, &["check"]).await;
    assert_ne!(out.code, Some(0));
    assert!(
        out.text().contains("StsbridgeTargetsFile"),
        "{}",
        out.text()
    );
    assert_no_secrets(&bed, &[&out.text()]);
}

#[tokio::test]
async fn writes_to_a_shared_vault_are_paced() {
    let bed = TestBed::start().await.unwrap();
    let file = json!({"Targets": [{"Name": "a"}, {"Name": "b"}, {"Name": "c"}]});
    // 20 writes per 10 s: a burst of 2, then one every ~0.53 s.
    let (env, _dir) = with_targets(&bed, &file, &[("KeyVaultWritesPer10Seconds", "20")]);
    bed.vault.clear_log();
    let out = run_cli(&env, &["rotate"]).await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    let mut writes: Vec<_> = bed
        .vault
        .log()
        .into_iter()
        .filter(|r| r.op == "set" || r.op == "update")
        .map(|r| r.started)
        .collect();
    writes.sort();
    assert!(writes.len() >= 12, "{}", writes.len());
    // Unpaced, all of them would start within a few milliseconds of each other.
    for (i, t) in writes.iter().enumerate() {
        let within_a_second = writes[i..]
            .iter()
            .filter(|u| u.duration_since(*t).as_millis() < 1000)
            .count();
        assert!(
            within_a_second <= 4,
            "{within_a_second} writes within one second"
        );
    }
    assert_no_secrets(&bed, &[&out.text()]);
}

#[tokio::test]
async fn without_a_targets_file_the_flat_settings_are_the_one_target() {
    let bed = TestBed::start().await.unwrap();
    let app = App::spawn(settings(&bed, &[], &[])).await;
    let answer = app
        .http_rotate("POST", &[("target", "default")], None)
        .await;
    assert_eq!(answer.status, 200);
    assert!(
        answer.body.get("targets").is_none(),
        "the single-target shape is kept"
    );
    let other = app.http_rotate("POST", &[("target", "prod")], None).await;
    assert_eq!(other.status, 400);
    assert_no_secrets(&bed, &[&app.all_text()]);
}
