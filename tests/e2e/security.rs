//! The findings of the security reviews (issues #15 and #26), each proved against the real binary
//! and the test bed: crafted bundles, lost answers, live markers, forced triggers, bad local
//! settings, the parsers of the programs consumers feed (bash, botocore, python-dotenv), and sets
//! claiming a life no AWS session has. `revoke`'s own findings of #26 are in `revoke.rs`.

use std::collections::HashMap;
use std::time::Duration;

use chrono::TimeZone;
use secrecy::{ExposeSecret, SecretString};
use stsbridge::consumers::export::{render, Format};
use stsbridge::consumers::profile::{update_profile, Edit};
use stsbridge::secrets::SessionCredentials;
use testbed::{Fault, Rule, TestBed, SOURCE_SECRET_KEY_SECRET};

use crate::support::{
    active_keys, assert_no_secrets, assert_no_values, run_cli, settings, stored_key_id, App,
};

const INJECTION: &str = "\n[bridged]\ncredential_process = sh -c 'touch /tmp/stsbridge-pwned'\n";

fn bundle_json(id: &str, secret: &str, token: &str) -> String {
    serde_json::json!({"Version": 1, "AccessKeyId": id, "SecretAccessKey": secret,
        "SessionToken": token, "Expiration": (chrono::Utc::now() + chrono::Duration::hours(1))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)})
    .to_string()
}

/// M1: whoever can write the bundle cannot write into a consumer's files or shell. Every
/// consumer refuses it with one line naming the field, changes nothing, and prints no part of it.
#[tokio::test]
async fn a_crafted_bundle_is_refused_by_every_consumer_and_changes_no_file() {
    let bed = TestBed::start().await.unwrap();
    let env = settings(&bed, &[], &[]);
    let good_secret = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY00";
    for (secret, token, field) in [
        (
            format!("{good_secret}{INJECTION}"),
            "FwoGZXIvYXdzEXAMPLETOKEN".to_string(),
            "SecretAccessKey",
        ),
        (
            good_secret.to_string(),
            "FwoGZXIvYXdzEXAMPLE\u{2019}; Start-Process calc; \u{2018}".to_string(),
            "SessionToken",
        ),
    ] {
        bed.vault.seed(
            "AwsSessionCredentials",
            &bundle_json("ASIAEXAMPLEEXAMPLE01", &secret, &token),
            &[],
        );
        let home = tempfile::tempdir().unwrap();
        let credentials = home.path().join("credentials");
        let before = "[app]\naws_access_key_id = OLD\n";
        std::fs::write(&credentials, before).unwrap();
        let launch = home.path().join("launchSettings.json");
        let launch_before = r#"{"profiles":{"Api":{"commandName":"Project"}}}"#;
        std::fs::write(&launch, launch_before).unwrap();
        let runs = [
            vec![
                "sync-profile",
                "--profile",
                "app",
                "--credentials-file",
                credentials.to_str().unwrap(),
            ],
            vec!["write-launch-settings", "--file", launch.to_str().unwrap()],
            vec!["export", "--format", "powershell"],
            vec!["export"],
            vec!["credential-process"],
        ];
        for args in runs {
            let out = run_cli(&env, &args).await;
            assert_eq!(out.code, Some(1), "{args:?}: {out:?}");
            assert_eq!(out.stdout, "", "{args:?}");
            assert!(out.stderr.contains(field), "{args:?}: {}", out.stderr);
            for part in ["bridged", "credential_process", "calc", "touch"] {
                assert!(
                    !out.text().contains(part),
                    "{args:?} printed {part}: {out:?}"
                );
            }
            assert_eq!(out.stderr.trim().lines().count(), 1, "{out:?}");
            assert_no_secrets(&bed, &[&out.stdout, &out.stderr]);
        }
        assert_eq!(std::fs::read_to_string(&credentials).unwrap(), before);
        assert_eq!(std::fs::read_to_string(&launch).unwrap(), launch_before);
    }
    assert!(!std::path::Path::new("/tmp/stsbridge-pwned").exists());
}

/// Values every format must carry or refuse; the writers get them directly here, past the
/// parse-time check, to prove each writer is safe on its own.
fn hostile_values() -> Vec<String> {
    let mut values: Vec<String> = [
        "it's",
        "a\"b",
        "$(id)",
        "`id`",
        "${HOME}",
        "a\\b",
        "x;y",
        "#not-a-comment",
        "; no",
        "[section]",
        "k = v",
        "a b",
        " lead",
        "trail ",
        "\u{2018}\u{2019}\u{201A}\u{201B}",
        "'\u{2019}'",
        "\n[bridged]\ncredential_process = id",
        "\r\n",
        "\r",
        "tab\there",
        "\u{85}nel",
        "\u{2028}ls",
        "\u{feff}bom",
        "emoji \u{1F511}",
        "=",
        "==",
        "'''",
        "\\'",
        "\\\\\"",
        "",
        "   ",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let pieces = [
        "'", "\"", "$", "\\", "\n", "[", "]", "=", "\u{2019}", "a", "+/=",
    ];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..60 {
        let mut v = String::new();
        for _ in 0..(x % 9) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.push_str(pieces[(x % pieces.len() as u64) as usize]);
        }
        x = x.wrapping_add(0x2545_F491_4F6C_DD1D);
        values.push(v);
    }
    values
}

fn creds(secret: &str) -> SessionCredentials {
    SessionCredentials {
        access_key_id: "ASIAEXAMPLEEXAMPLE01".into(),
        secret_access_key: SecretString::from(secret.to_string()),
        session_token: SecretString::from(format!("FwoG{secret}")),
        expiration: chrono::Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap(),
    }
}

fn venv_python() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python")
}

/// M1, with readers nobody here wrote: bash evaluates the `export` lines, botocore
/// (`raw_config_parse`, what the AWS CLI uses) reads the credentials file, python-dotenv reads
/// the dotenv lines. Each gets exactly the values, or the writer refused them.
#[tokio::test]
async fn bash_botocore_and_python_dotenv_read_back_exactly_what_was_written() {
    // no secret search: its outputs are the hostile values it wrote on purpose, read back.
    let dir = tempfile::tempdir().unwrap();
    let values = hostile_values();
    let mut expected_env = vec![];
    let mut expected_ini = vec![];
    let mut expected_dotenv = vec![];
    for (i, v) in values.iter().enumerate() {
        let c = creds(v);
        // bash cannot hold NUL in a variable; the shell format is about quoting, not NUL.
        let env_text = render(&c, Format::Env).unwrap();
        std::fs::write(dir.path().join(format!("{i}.sh")), env_text.expose_secret()).unwrap();
        expected_env.push(vec![
            c.access_key_id.clone(),
            c.secret_access_key.expose_secret().to_string(),
            c.session_token.expose_secret().to_string(),
        ]);
        match update_profile("[default]\nregion = eu-west-1\n", "app", &c) {
            Ok(Edit::Updated(text)) => {
                std::fs::write(dir.path().join(format!("{i}.ini")), text).unwrap();
                expected_ini.push(Some(v.clone()));
            }
            Ok(Edit::Unchanged) => unreachable!(),
            Err(_) => expected_ini.push(None),
        }
        match render(&c, Format::Dotenv) {
            Ok(text) => {
                std::fs::write(dir.path().join(format!("{i}.env")), text.expose_secret()).unwrap();
                expected_dotenv.push(Some(v.clone()));
            }
            Err(_) => expected_dotenv.push(None),
        }
    }
    // bash: every file in a subshell, the three values NUL-separated.
    let script = format!(
        "for i in $(seq 0 {}); do ( eval \"$(cat {}/$i.sh)\"; printf '%s\\0%s\\0%s\\0' \"$AWS_ACCESS_KEY_ID\" \"$AWS_SECRET_ACCESS_KEY\" \"$AWS_SESSION_TOKEN\" ); done",
        values.len() - 1,
        dir.path().display()
    );
    let out = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .split('\0')
        .map(str::to_string)
        .collect();
    for (i, want) in expected_env.iter().enumerate() {
        assert_eq!(
            &got[i * 3..i * 3 + 3],
            want.as_slice(),
            "bash, value {i}: {:?}",
            values[i]
        );
    }
    // botocore and python-dotenv, one Python run over every file.
    let python = r#"
import json, os, sys
from botocore.configloader import raw_config_parse
from dotenv import dotenv_values
d, n = sys.argv[1], int(sys.argv[2])
out = []
for i in range(n):
    ini = os.path.join(d, f"{i}.ini")
    env = os.path.join(d, f"{i}.env")
    out.append({
        "ini": raw_config_parse(ini) if os.path.exists(ini) else None,
        "env": dotenv_values(env) if os.path.exists(env) else None,
    })
print(json.dumps(out))
"#;
    let out = tokio::process::Command::new(venv_python())
        .args([
            "-c",
            python,
            dir.path().to_str().unwrap(),
            &values.len().to_string(),
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut refused = 0;
    for (i, p) in parsed.iter().enumerate() {
        match &expected_ini[i] {
            Some(v) => {
                let sections = p["ini"].as_object().unwrap();
                let names: Vec<&String> = sections.keys().collect();
                assert_eq!(
                    names,
                    ["default", "app"],
                    "botocore, value {i}: {:?}",
                    values[i]
                );
                assert_eq!(p["ini"]["app"]["aws_secret_access_key"], v.as_str());
                assert_eq!(
                    p["ini"]["app"]["aws_session_token"],
                    format!("FwoG{v}").as_str()
                );
                assert_eq!(
                    p["ini"]["default"],
                    serde_json::json!({"region": "eu-west-1"})
                );
            }
            None => refused += 1,
        }
        match &expected_dotenv[i] {
            Some(v) => {
                assert_eq!(
                    p["env"]["AWS_SECRET_ACCESS_KEY"],
                    v.as_str(),
                    "dotenv, value {i}"
                );
                assert_eq!(p["env"].as_object().unwrap().len(), 4);
            }
            None => assert!(p["env"].is_null()),
        }
    }
    assert!(
        refused > 0,
        "the hostile values include line breaks the writer must refuse"
    );
}

/// One active key, the stored one, and the stored secret belongs to it.
async fn assert_one_key_the_stored_one(bed: &TestBed) {
    let stored = stored_key_id(bed);
    assert_eq!(active_keys(bed).await, vec![stored.clone()]);
    let secret = bed.vault.latest(SOURCE_SECRET_KEY_SECRET).unwrap();
    let belongs = secret.tags.and_then(|t| t.get("access-key-id").cloned());
    assert!(belongs.is_none() || belongs.as_deref() == Some(stored.as_str()));
}

/// M2: a PUT that committed but whose answer never came back (every retry too) is not a
/// failure to store: the vault is asked, and the key it holds is kept and used.
#[tokio::test]
async fn a_stored_secret_whose_answer_was_lost_keeps_its_key() {
    let bed = TestBed::start().await.unwrap();
    let env = settings(&bed, &[], &[]);
    let old = bed.source.access_key_id.clone();
    bed.vault.faults.add(
        Rule::on("set", Fault::CommitThenDrop)
            .named(SOURCE_SECRET_KEY_SECRET)
            .times(20),
    );

    let out = run_cli(&env, &["rotate", "--rotate-source-key"]).await;

    assert_eq!(out.code, Some(0), "{out:?}");
    let new = stored_key_id(&bed);
    assert_ne!(new, old);
    assert!(out.stdout.contains("the vault holds it"), "{}", out.stdout);
    assert_one_key_the_stored_one(&bed).await;
    assert!(bed.sts.calls_of("DeleteAccessKey").is_empty());
    // And the next run works with it.
    let next = run_cli(&env, &["rotate", "--force"]).await;
    assert_eq!(next.code, Some(0), "{next:?}");
    assert_no_secrets(&bed, &[&out.text(), &next.text()]);
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..400 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

/// M3, across processes: a run that finds another's fresh `creating` marker leaves the key
/// alone (and a requested rotation is refused with 409), instead of deleting the key the other
/// run is about to store.
#[tokio::test]
async fn a_live_key_rotation_on_another_instance_is_left_alone() {
    let bed = TestBed::start().await.unwrap();
    let env = settings(&bed, &[("MinRotationIntervalSeconds", "0")], &[]);
    let app = App::spawn(env.clone()).await;
    // Hold the first run between CreateAccessKey and storing the new key's secret.
    bed.vault.faults.add(
        Rule::on("set", Fault::Delay(Duration::from_secs(6)))
            .named(SOURCE_SECRET_KEY_SECRET)
            .times(1),
    );
    let app = std::sync::Arc::new(app);
    let first = {
        let app = app.clone();
        tokio::spawn(async move {
            app.http_rotate("POST", &[("rotateSourceKey", "true")], None)
                .await
        })
    };
    wait_for("CreateAccessKey", || {
        !bed.sts.calls_of("CreateAccessKey").is_empty()
    })
    .await;

    let plain = run_cli(&env, &["rotate"]).await;
    let requested = run_cli(&env, &["rotate", "--rotate-source-key"]).await;
    let first = first.await.unwrap();

    assert_eq!(plain.code, Some(0), "{plain:?}");
    assert!(plain.stdout.contains("left alone"), "{}", plain.stdout);
    assert_eq!(requested.code, Some(1), "{requested:?}");
    assert!(
        requested.stdout.contains("KeyRotationInProgress"),
        "{}",
        requested.stdout
    );
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(bed.sts.calls_of("CreateAccessKey").len(), 1);
    assert!(bed.sts.calls_of("DeleteAccessKey").is_empty());
    assert_one_key_the_stored_one(&bed).await;
    assert_ne!(stored_key_id(&bed), bed.source.access_key_id);
    assert_no_secrets(&bed, &[&plain.text(), &requested.text(), &app.all_text()]);
}

/// M3, within one app: a target that shares the IAM user's key with its owner never acts on the
/// key, even while the owner's rotation is half-way.
#[tokio::test]
async fn a_target_sharing_the_key_never_touches_the_owners_rotation() {
    let bed = TestBed::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.json");
    std::fs::write(
        &file,
        r#"{"Targets": [{"Name": "owner"}, {"Name": "sharer"}]}"#,
    )
    .unwrap();
    let env = settings(
        &bed,
        &[("StsbridgeTargetsFile", file.to_str().unwrap())],
        &[],
    );
    let app = std::sync::Arc::new(App::spawn(env.clone()).await);
    bed.vault.faults.add(
        Rule::on("set", Fault::Delay(Duration::from_secs(6)))
            .named(SOURCE_SECRET_KEY_SECRET)
            .times(1),
    );
    let first = {
        let app = app.clone();
        tokio::spawn(async move {
            app.http_rotate(
                "POST",
                &[("rotateSourceKey", "true"), ("target", "owner")],
                None,
            )
            .await
        })
    };
    wait_for("CreateAccessKey", || {
        !bed.sts.calls_of("CreateAccessKey").is_empty()
    })
    .await;

    let sharer = app.http_rotate("POST", &[("target", "sharer")], None).await;
    let first = first.await.unwrap();

    assert_eq!(sharer.status, 200, "{:?}", sharer.body);
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(bed.sts.calls_of("CreateAccessKey").len(), 1);
    assert!(bed.sts.calls_of("DeleteAccessKey").is_empty());
    assert_one_key_the_stored_one(&bed).await;
    assert_no_secrets(&bed, &[&app.all_text()]);
}

/// L3: a forced trigger that arrives while an unforced run is in flight gets a set minted after
/// it asked, never that run's "fresh".
#[tokio::test]
async fn a_forced_trigger_joining_an_unforced_run_still_gets_a_new_set() {
    let bed = TestBed::start().await.unwrap();
    let app = std::sync::Arc::new(App::spawn(settings(&bed, &[], &[])).await);
    let first = app.http_rotate("POST", &[], None).await;
    assert_eq!(first.body["rotated"], true);
    // The next unforced run reads slowly, so a forced trigger arrives while it is in flight.
    bed.vault.faults.add(
        Rule::on("get", Fault::Delay(Duration::from_millis(1500)))
            .named("AwsSessionCredentials")
            .times(1),
    );
    let unforced = {
        let app = app.clone();
        tokio::spawn(async move { app.http_rotate("POST", &[], None).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    let forced = app.http_rotate("POST", &[("force", "true")], None).await;
    let unforced = unforced.await.unwrap();

    assert_eq!(forced.status, 200, "{:?}", forced.body);
    assert_eq!(forced.body["rotated"], true, "{:?}", forced.body);
    assert_ne!(forced.body["accessKeyId"], first.body["accessKeyId"]);
    assert_eq!(unforced.status, 200);
    assert_eq!(bed.sts.calls_of("GetSessionToken").len(), 2);
    assert_no_secrets(&bed, &[&app.all_text()]);
}

/// L4: a `local.settings.json` whose names or values cannot be environment variables is one
/// clear error, with no panic and no value in it.
#[tokio::test]
async fn local_settings_that_cannot_be_variables_are_refused_without_their_values() {
    let dir = tempfile::tempdir().unwrap();
    for (values, says) in [
        (r#"{"": "hunter2-secret-value"}"#, "\"\""),
        (r#"{"A=B": "hunter2-secret-value"}"#, "A=B"),
        (
            r#"{"PlainPassword": "hunter2\u0000secret-value"}"#,
            "PlainPassword",
        ),
    ] {
        let path = dir.path().join("local.settings.json");
        std::fs::write(
            &path,
            format!(r#"{{"IsEncrypted": false, "Values": {values}}}"#),
        )
        .unwrap();
        for command in ["rotate", "check"] {
            let out = run_cli(
                &HashMap::new(),
                &[command, "--settings", path.to_str().unwrap()],
            )
            .await;
            assert_eq!(out.code, Some(1), "{out:?}");
            assert!(out.stderr.contains(says), "{out:?}");
            assert!(!out.text().contains("panicked"), "{out:?}");
            assert_no_values(&["hunter2"], &[&out.text()]);
        }
    }
}

/// L2: the challenge check can be turned off only for a vault on this machine.
#[tokio::test]
async fn the_challenge_check_cannot_be_turned_off_for_a_remote_vault() {
    let env: HashMap<String, String> = [
        ("KeyVaultUrl", "https://kv-prod.vault.azure.net"),
        ("KeyVaultVerifyChallengeResource", "false"),
        ("PlainUsername", "AKIAIOSFODNN7EXAMPLE"),
        ("PlainPassword", "not-a-real-secret-just-a-test-value"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let check = run_cli(&env, &["check"]).await;
    assert_eq!(check.code, Some(1), "{check:?}");
    assert!(
        check.stderr.contains("KeyVaultVerifyChallengeResource"),
        "{check:?}"
    );
    assert!(check.stderr.contains("https://kv-prod.vault.azure.net"));
    let show = run_cli(&env, &["show"]).await;
    assert_eq!(show.code, Some(1), "{show:?}");
    assert!(
        show.stderr.contains("only for a vault on this machine"),
        "{show:?}"
    );
    assert_no_values(
        &["not-a-real-secret-just-a-test-value"],
        &[&check.text(), &show.text()],
    );
}

/// L8: a requested rotation while the previous key is in its grace period is refused (409),
/// and the previous key stays, inactive, so it can still be reactivated.
#[tokio::test]
async fn a_requested_rotation_keeps_the_previous_key_through_its_grace_period() {
    let bed = TestBed::start().await.unwrap();
    let env = settings(&bed, &[], &[]);
    let old = bed.source.access_key_id.clone();
    let first = run_cli(&env, &["rotate", "--rotate-source-key"]).await;
    assert_eq!(first.code, Some(0), "{first:?}");

    let second = run_cli(&env, &["rotate", "--rotate-source-key"]).await;

    assert_eq!(second.code, Some(1), "{second:?}");
    assert!(
        second.stdout.contains("PreviousKeyInGracePeriod"),
        "{}",
        second.stdout
    );
    let keys = bed.access_keys().await.unwrap();
    assert!(keys.contains(&(old, "Inactive".into())), "{keys:?}");
    assert_eq!(keys.len(), 2);
    // With no grace period, the same request deletes it and rotates.
    let env = settings(&bed, &[("SourceKeyDeleteAfterHours", "0")], &[]);
    let third = run_cli(&env, &["rotate", "--rotate-source-key"]).await;
    assert_eq!(third.code, Some(0), "{third:?}");
    assert_one_key_the_stored_one(&bed).await;
    assert_no_secrets(&bed, &[&first.text(), &second.text(), &third.text()]);
}

/// Hardening: an AWS error message that quotes the request (as `SignatureDoesNotMatch` can)
/// reaches the report with its key material redacted.
#[tokio::test]
async fn token_shaped_text_in_an_aws_error_message_is_redacted() {
    let bed = TestBed::start().await.unwrap();
    let env = settings(&bed, &[], &[]);
    let quoted = "IQoJb3JpZ2luX2VjEHQaCXVzLWVhc3QtMSJHMEUCIQD3example4tokenQuotedByAWS";
    bed.sts.faults.add(Rule::on(
        "GetSessionToken",
        Fault::error(
            403,
            "SignatureDoesNotMatch",
            &format!("The Canonical String for this request should have been 'POST\n/\n\nx-amz-security-token:{quoted}\n'"),
        ),
    ));
    let out = run_cli(&env, &["rotate"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.contains("SignatureDoesNotMatch"));
    assert!(out.stdout.contains("[REDACTED]"), "{}", out.stdout);
    assert!(!out.text().contains(quoted), "{out:?}");
    assert_no_secrets(&bed, &[&out.text()]);
}

/// A whole, well-shaped set (the test bed's example values) expiring at `expiration`.
fn bundle_expiring(id: &str, expiration: &str) -> String {
    serde_json::json!({"Version": 1, "AccessKeyId": id,
        "SecretAccessKey": "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY00",
        "SessionToken": "FwoGZXIvYXdzEXAMPLETOKEN", "Expiration": expiration})
    .to_string()
}

/// Issue #26 F2: a bundle claiming to live until 9999 was accepted (and so cached, and kept after
/// the vault was repaired). No AWS session lives longer than 36 h: every consumer refuses it,
/// naming the field, and prints nothing on stdout.
#[tokio::test]
async fn credential_process_refuses_a_bundle_that_claims_to_live_until_9999() {
    let bed = TestBed::start().await.unwrap();
    let env = settings(&bed, &[], &[]);
    bed.vault.seed(
        "AwsSessionCredentials",
        &bundle_expiring("ASIAEXAMPLEEXAMPLE01", "9999-12-31T23:59:59Z"),
        &[],
    );

    for args in [
        vec!["credential-process"],
        vec!["credential-process", "--cache"],
        vec!["export"],
    ] {
        let out = run_cli(&env, &args).await;

        assert_eq!(out.code, Some(1), "{args:?}: {out:?}");
        assert_eq!(out.stdout, "", "{args:?}");
        assert!(
            out.stderr.contains("Expiration"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(out.stderr.contains("36 h"), "{args:?}: {}", out.stderr);
        assert_no_secrets(&bed, &[&out.text()]);
    }
}

/// Issue #26 F2: `credential-process --cache` kept a set whose expiry lies past any session's
/// life for as long as it claimed; such a cache file is now not believed, and the vault is read.
#[tokio::test]
async fn a_cache_file_that_claims_to_live_until_9999_is_not_served() {
    let bed = TestBed::start().await.unwrap();
    let env = settings(&bed, &[], &[]);
    let first = run_cli(&env, &["rotate"]).await;
    assert_eq!(first.code, Some(0), "{first:?}");
    let home = tempfile::tempdir().unwrap();
    let cached =
        crate::support::run_cli_in(&env, home.path(), &["credential-process", "--cache"]).await;
    assert_eq!(cached.code, Some(0), "{cached:?}");
    let dir = home.path().join(".cache/stsbridge");
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    // What a bundle from a vault written to before its repair left behind.
    std::fs::write(
        &file,
        bundle_expiring("ASIAFORGEDEXAMPLE001", "9999-12-31T23:59:59Z"),
    )
    .unwrap();

    let out =
        crate::support::run_cli_in(&env, home.path(), &["credential-process", "--cache"]).await;

    assert_eq!(out.code, Some(0), "{out:?}");
    let served: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let vault: serde_json::Value =
        serde_json::from_str(&bed.vault.latest("AwsSessionCredentials").unwrap().value).unwrap();
    assert_eq!(served["AccessKeyId"], vault["AccessKeyId"]);
    assert_ne!(served["Expiration"], "9999-12-31T23:59:59Z");
    assert_no_secrets(&bed, &[&first.stderr, &cached.stderr, &out.stderr]);
}
