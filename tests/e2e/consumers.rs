//! The consumers, end to end with the test bed and the real AWS CLI (`.venv/bin/aws`).

use std::collections::HashMap;

use testbed::{Fault, Rule, TestBed};

use crate::support::{assert_challenge_checked, assert_no_secrets, run_cli, settings, BIN};

const MINTER_ARN: &str = "arn:aws:iam::123456789012:user/stsbridge-minter";

/// A test bed with one published set, and a private HOME for the AWS CLI.
struct World {
    bed: TestBed,
    home: tempfile::TempDir,
    env: HashMap<String, String>,
}

impl World {
    async fn new() -> World {
        let bed = TestBed::start().await.unwrap();
        let env = settings(&bed, &[], &[]);
        let out = run_cli(&env, &["rotate"]).await;
        assert_eq!(out.code, Some(0), "{out:?}");
        let home = tempfile::tempdir().unwrap();
        World { bed, home, env }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.home.path().join(name)
    }

    fn minted_key(&self) -> String {
        self.bed.sts.minted()[0].access_key_id.clone()
    }

    /// Runs a shell command with the AWS CLI on PATH, the bed's settings, and a private HOME.
    async fn sh(&self, script: &str) -> (i32, String, String) {
        let venv_bin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin");
        let bin_dir = std::path::Path::new(BIN).parent().unwrap();
        let out = tokio::process::Command::new("bash")
            .arg("-c")
            .arg(script)
            .env_clear()
            .envs(&self.env)
            .env(
                "PATH",
                format!("{}:{}:/usr/bin:/bin", venv_bin.display(), bin_dir.display()),
            )
            .env("HOME", self.home.path())
            .env("AWS_CONFIG_FILE", self.path("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", self.path("credentials"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("STS", self.bed.sts_url())
            .output()
            .await
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn caller_key_ids(&self) -> Vec<Option<String>> {
        self.bed
            .sts
            .calls_of("GetCallerIdentity")
            .into_iter()
            .map(|c| c.access_key_id)
            .collect()
    }
}

#[tokio::test]
async fn the_aws_cli_uses_stsbridge_as_its_credential_process() {
    let w = World::new().await;
    std::fs::write(
        w.path("config"),
        format!("[profile bridged]\ncredential_process = {BIN} credential-process\nregion = us-east-1\n"),
    )
    .unwrap();
    w.bed.sts.clear_calls();

    let (code, stdout, stderr) = w
        .sh("aws sts get-caller-identity --profile bridged --endpoint-url \"$STS\" --output json")
        .await;

    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let identity: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(identity["Arn"], MINTER_ARN);
    assert_eq!(w.caller_key_ids(), vec![Some(w.minted_key())]);
    assert_no_secrets(&w.bed, &[&stderr]);
}

#[tokio::test]
async fn eval_export_then_the_aws_cli_works() {
    let w = World::new().await;
    w.bed.sts.clear_calls();

    let (code, stdout, stderr) = w
        .sh("eval \"$(stsbridge export)\" && echo \"expires $AWS_CREDENTIAL_EXPIRATION\" && aws sts get-caller-identity --endpoint-url \"$STS\" --output json")
        .await;

    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.starts_with("expires 20"));
    assert_eq!(w.caller_key_ids(), vec![Some(w.minted_key())]);
    // Session-token mode's rotation and this read, with the challenge check on.
    assert_challenge_checked(&w.bed, &w.env);
    let (code, ps, _) = w.sh("stsbridge export --format powershell").await;
    assert_eq!(code, 0);
    assert!(ps.contains("$env:AWS_SESSION_TOKEN = '"));
    assert_no_secrets(&w.bed, &[&stdout, &stderr]);
}

#[tokio::test]
async fn sync_profile_updates_only_its_profile_and_the_aws_cli_uses_it() {
    let w = World::new().await;
    let before = "# team credentials\n[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = keep-this\n\n[app]\nregion = us-east-1\n";
    std::fs::write(w.path("credentials"), before).unwrap();
    w.bed.sts.clear_calls();

    let (code, first, err) = w.sh("stsbridge sync-profile --profile app").await;
    let (_, second, _) = w.sh("stsbridge sync-profile --profile app").await;
    let (cli, stdout, stderr) = w
        .sh("aws sts get-caller-identity --profile app --endpoint-url \"$STS\"")
        .await;

    assert_eq!(code, 0, "{first}\n{err}");
    assert!(first.starts_with("updated: profile [app]"), "{first}");
    assert!(second.starts_with("unchanged"), "{second}");
    assert_eq!(cli, 0, "{stdout}\n{stderr}");
    assert_eq!(w.caller_key_ids(), vec![Some(w.minted_key())]);
    let after = std::fs::read_to_string(w.path("credentials")).unwrap();
    assert!(after.starts_with("# team credentials\n[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = keep-this\n\n[app]\nregion = us-east-1\naws_access_key_id = "));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(w.path("credentials"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert_no_secrets(&w.bed, &[&first, &second, &err]);
}

#[tokio::test]
async fn write_launch_settings_fills_every_profile_and_keeps_the_rest() {
    let w = World::new().await;
    std::fs::create_dir_all(w.path("Properties")).unwrap();
    let file = w.path("Properties/launchSettings.json");
    std::fs::write(&file, r#"{"profiles":{"Api":{"commandName":"Project","environmentVariables":{"ASPNETCORE_ENVIRONMENT":"Development"}},"Worker":{"commandName":"Project"}}}"#).unwrap();

    let (code, stdout, stderr) = w
        .sh(&format!(
            "cd {} && stsbridge write-launch-settings",
            w.home.path().display()
        ))
        .await;

    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("updated 2 profile(s)"));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let minted = &w.bed.sts.minted()[0];
    for p in ["Api", "Worker"] {
        let vars = &doc["profiles"][p]["environmentVariables"];
        assert_eq!(vars["AWS_ACCESS_KEY_ID"], minted.access_key_id);
        assert_eq!(vars["AWS_SECRET_ACCESS_KEY"], minted.secret_access_key);
        assert_eq!(vars["AWS_SESSION_TOKEN"], minted.session_token);
    }
    assert_eq!(
        doc["profiles"]["Api"]["environmentVariables"]["ASPNETCORE_ENVIRONMENT"],
        "Development"
    );
    assert!(stderr.contains("keep it out of version control"));
    assert_no_secrets(&w.bed, &[&stderr]);
}

#[tokio::test]
async fn credentials_close_to_expiry_are_refused() {
    let w = World::new().await;
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(120)).to_rfc3339();
    w.bed.vault.seed(
        "AwsSessionCredentials",
        &format!(r#"{{"Version":1,"AccessKeyId":"ASIAEXAMPLEEXAMPLE01","SecretAccessKey":"wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY00","SessionToken":"FwoGZXIvYXdzEXAMPLETOKEN","Expiration":"{soon}"}}"#),
        &[],
    );

    let (refused, _, err) = w.sh("stsbridge credential-process").await;
    let (accepted, out, _) = w
        .sh("stsbridge credential-process --min-remaining 60s")
        .await;

    assert_eq!(refused, 1);
    assert!(err.contains("less than --min-remaining (300 s)"), "{err}");
    assert_eq!(accepted, 0);
    assert!(out.contains("ASIAEXAMPLE"));
    assert_no_secrets(&w.bed, &[&err]);
}

#[tokio::test]
async fn the_cache_saves_the_vault_read_and_is_private() {
    let w = World::new().await;
    w.bed.vault.clear_log();

    let (first, a, err_a) = w.sh("stsbridge credential-process --cache").await;
    let reads_after_first = w
        .bed
        .vault
        .log()
        .iter()
        .filter(|r| r.op == "get" && r.authorized)
        .count();
    let (second, b, err_b) = w.sh("stsbridge credential-process --cache").await;
    let reads_after_second = w
        .bed
        .vault
        .log()
        .iter()
        .filter(|r| r.op == "get" && r.authorized)
        .count();

    assert_eq!((first, second), (0, 0));
    assert_eq!(a, b);
    assert_eq!(reads_after_first, 1);
    assert_eq!(
        reads_after_second, 1,
        "the second call was served from the cache"
    );
    let dir = w.path(".cache/stsbridge");
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_no_secrets(&w.bed, &[&err_a, &err_b]);
}

#[tokio::test]
async fn show_tells_what_is_stored_and_never_a_secret() {
    let w = World::new().await;

    let (code, stdout, stderr) = w.sh("stsbridge show").await;

    assert_eq!(code, 0, "{stderr}");
    let shown: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(shown["accessKeyId"], w.minted_key());
    assert_eq!(shown["mode"], "session-token");
    assert_eq!(shown["sourceAccessKeyId"], w.bed.source.access_key_id);
    assert!(shown["remainingSeconds"].as_i64().unwrap() > 7000);
    assert_eq!(shown["versions"].as_array().unwrap().len(), 1);
    assert_no_secrets(&w.bed, &[&stdout, &stderr]);
}

#[tokio::test]
async fn bad_bundles_and_refusing_vaults_are_one_clear_line_and_change_nothing() {
    let w = World::new().await;
    let before = "[app]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n";
    std::fs::write(w.path("credentials"), before).unwrap();

    let (code, _, missing) = w
        .sh("stsbridge credential-process --secret No-Such-Bundle")
        .await;
    assert_eq!(code, 1);
    assert!(
        missing.contains("no credentials are published") && missing.contains("SecretNotFound"),
        "{missing}"
    );

    w.bed.vault.faults.add(
        Rule::on("get", Fault::forbidden_by_rbac())
            .named("AwsSessionCredentials")
            .times(1),
    );
    let (code, _, forbidden) = w.sh("stsbridge sync-profile --profile app").await;
    assert_eq!(code, 1);
    assert!(
        forbidden.contains("refused") && forbidden.contains("Forbidden"),
        "{forbidden}"
    );

    w.bed
        .vault
        .seed("AwsSessionCredentials", "not json at all", &[]);
    let (code, _, malformed) = w.sh("stsbridge sync-profile --profile app").await;
    assert_eq!(code, 1);
    assert!(
        malformed.contains("not a credentials bundle"),
        "{malformed}"
    );
    assert!(!malformed.contains("not json at all"));

    w.bed
        .vault
        .seed("AwsSessionCredentials", r#"{"Version":2}"#, &[]);
    let (code, _, version) = w.sh("stsbridge export").await;
    assert_eq!(code, 1);
    assert!(version.contains("Version 2"), "{version}");

    assert_eq!(
        std::fs::read_to_string(w.path("credentials")).unwrap(),
        before
    );
    for e in [&missing, &forbidden, &malformed, &version] {
        assert_eq!(e.trim().lines().count(), 1, "one line: {e}");
    }
    assert_no_secrets(&w.bed, &[&missing, &forbidden, &malformed, &version]);
}

#[tokio::test]
async fn a_credentials_file_stsbridge_cannot_read_is_left_byte_for_byte() {
    let w = World::new().await;
    let before = "[app]\nthis line is not ini\n";
    std::fs::write(w.path("credentials"), before).unwrap();
    std::fs::create_dir_all(w.path("Properties")).unwrap();
    std::fs::write(w.path("Properties/launchSettings.json"), "{ not json").unwrap();

    let (code, _, err) = w.sh("stsbridge sync-profile --profile app").await;
    let (code2, _, err2) = w
        .sh(&format!(
            "cd {} && stsbridge write-launch-settings",
            w.home.path().display()
        ))
        .await;

    assert_eq!((code, code2), (1, 1));
    assert!(err.contains("line 2"), "{err}");
    assert!(err2.contains("not JSON"), "{err2}");
    assert_eq!(
        std::fs::read_to_string(w.path("credentials")).unwrap(),
        before
    );
    assert_eq!(
        std::fs::read_to_string(w.path("Properties/launchSettings.json")).unwrap(),
        "{ not json"
    );
    assert_no_secrets(&w.bed, &[&err, &err2]);
}
