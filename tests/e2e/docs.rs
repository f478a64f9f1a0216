//! The documentation's commands, run: every shell block marked `<!-- testbed: runs -->` in
//! README.md and docs/*.md runs with bash against a test bed, as a reader would paste it (the
//! stsbridge binary and the AWS CLI on PATH, the test bed's settings in the environment, and
//! `https://YOUR-VAULT.vault.azure.net` meaning the test bed's vault). The blocks of
//! docs/deploy.md marked `<!-- testbed: deploy -->` — the steps of the deployment guide that need
//! no cloud account (the package, and a check with the packaged binary) — run in a copy of the
//! repository's packaging files, with `STSBRIDGE_BINARY` the binary under test.

use std::path::{Path, PathBuf};

use testbed::TestBed;

use crate::support::{assert_no_secrets, settings, BIN};

const MARK: &str = "<!-- testbed: runs -->";
const DEPLOY_MARK: &str = "<!-- testbed: deploy -->";
const PLACEHOLDER: &str = "https://YOUR-VAULT.vault.azure.net";

/// The blocks of one markdown file marked `mark`: (line of the mark, the block's text).
fn marked_blocks(path: &Path, mark: &str) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = vec![];
    for (i, line) in lines.iter().enumerate() {
        if line.trim() != mark {
            continue;
        }
        assert_eq!(
            lines.get(i + 1).map(|l| l.trim()),
            Some("```sh"),
            "{}:{}: the mark must be right above a ```sh block",
            path.display(),
            i + 1
        );
        let body: Vec<&str> = lines[i + 2..]
            .iter()
            .take_while(|l| l.trim() != "```")
            .copied()
            .collect();
        out.push((i + 1, body.join("\n")));
    }
    out
}

fn docs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    // The test bed's own page first: it publishes the set the consumer blocks read.
    files.sort_by_key(|p| !p.ends_with("docs/testbed.md"));
    files.push(root.join("README.md"));
    files
}

#[tokio::test]
async fn every_marked_shell_block_in_the_docs_runs_against_the_test_bed() {
    let bed = TestBed::start().await.unwrap();
    // The Roles Anywhere blocks' certificate, trust anchor, profile and role (docs/consumers.md
    // names them as a reader's stack outputs would: $ROLE_ARN, $TRUST_ANCHOR_ARN, $PROFILE_ARN).
    let ra = bed
        .setup_roles_anywhere("workload-cert", testbed::KeySpec::EcP256)
        .await
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let venv_bin = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin");
    let bin_dir = Path::new(BIN).parent().unwrap();
    let env = settings(&bed, &[], &[]);
    let mut ran = vec![];
    let mut outputs = vec![];
    for file in docs() {
        for (line, block) in marked_blocks(&file, MARK) {
            let script = block.replace(PLACEHOLDER, &bed.vault_url());
            let out = tokio::process::Command::new("bash")
                .args(["-euo", "pipefail", "-c", &script])
                .env_clear()
                .envs(&env)
                .env(
                    "PATH",
                    format!("{}:{}:/usr/bin:/bin", bin_dir.display(), venv_bin.display()),
                )
                .env("HOME", home.path())
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .env("ROLE_ARN", &ra.role_arn)
                .env("TRUST_ANCHOR_ARN", &ra.trust_anchor_arn)
                .env("PROFILE_ARN", &ra.profile_arn)
                .output()
                .await
                .unwrap();
            let (stdout, stderr) = (
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
            assert!(
                out.status.success(),
                "{}:{line}: the block failed\n{script}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
                file.display()
            );
            ran.push(format!("{}:{line}", file.display()));
            // The stdout of `credential-process` and `export` is meant to hold the published
            // set — that set only: its secret and token are taken out before the search, and any
            // other secret (the IAM user's key, a token, an older set) still fails it.
            let prints_credentials = ["stsbridge credential-process", "stsbridge export"]
                .iter()
                .any(|c| script.contains(c));
            outputs.push(match prints_credentials {
                true => without_published_set(&bed, stdout),
                false => stdout,
            });
            outputs.push(stderr);
        }
    }
    assert!(ran.len() >= 4, "only {ran:?} are marked");
    let texts: Vec<&str> = outputs.iter().map(String::as_str).collect();
    assert_no_secrets(&bed, &texts);
}

/// `text` with the published set's secret and session token taken out.
fn without_published_set(bed: &TestBed, text: String) -> String {
    let Some(bundle) = bed.vault.latest("AwsSessionCredentials") else {
        return text;
    };
    let set: serde_json::Value = serde_json::from_str(&bundle.value).unwrap();
    ["SecretAccessKey", "SessionToken"]
        .iter()
        .filter_map(|k| set[k].as_str())
        .fold(text, |t, v| t.replace(v, "[the published set]"))
}

/// Copies what the packaging scripts need (`scripts/`, `host.json`, the function folders) into
/// `to`, so that a block writing `stsbridge.zip` and `.deploy/` never touches the repository's.
fn copy_packaging_files(to: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["scripts", "TimerRotate", "HttpRotate"] {
        let status = std::process::Command::new("cp")
            .args(["-R"])
            .arg(root.join(dir))
            .arg(to)
            .status()
            .unwrap();
        assert!(status.success());
    }
    std::fs::copy(root.join("host.json"), to.join("host.json")).unwrap();
}

#[tokio::test]
async fn the_deployment_guide_s_blocks_that_need_no_cloud_account_run() {
    let bed = TestBed::start().await.unwrap();
    // These blocks package the binary under test, which must meet the Functions workers' glibc
    // floor: the suite's own build (scripts/test.sh, scripts/zig-cargo.sh) does; a plain
    // `cargo test` on a newer distribution does not, and then they cannot run here.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let floor = std::process::Command::new(root.join("scripts/build-deploy.sh"))
        .args(["--check", "--binary", BIN])
        .output()
        .unwrap();
    if !floor.status.success() {
        eprintln!(
            "SKIPPED: {BIN} does not meet the glibc floor (a native build); scripts/test.sh runs these blocks: {}",
            String::from_utf8_lossy(&floor.stderr)
        );
        return;
    }
    let copy = tempfile::tempdir().unwrap();
    copy_packaging_files(copy.path());
    let home = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(BIN).parent().unwrap();
    let mut ran = vec![];
    let mut outputs = vec![];
    for (line, block) in marked_blocks(&root.join("docs/deploy.md"), DEPLOY_MARK) {
        let out = tokio::process::Command::new("bash")
            .args(["-euo", "pipefail", "-c", &block])
            .current_dir(copy.path())
            .env_clear()
            .envs(settings(&bed, &[], &[]))
            .env("STSBRIDGE_BINARY", BIN)
            .env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display()))
            .env("HOME", home.path())
            .output()
            .await
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert!(
            out.status.success(),
            "docs/deploy.md:{line}: the block failed\n{block}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
        );
        ran.push(line);
        outputs.extend([stdout, stderr]);
    }
    assert!(
        !ran.is_empty(),
        "no block of docs/deploy.md is marked {DEPLOY_MARK}"
    );
    assert!(
        copy.path().join("stsbridge.zip").is_file()
            && copy.path().join(".deploy/stsbridge").is_file(),
        "the blocks built the package"
    );
    let texts: Vec<&str> = outputs.iter().map(String::as_str).collect();
    assert_no_secrets(&bed, &texts);
}
