//! The deployment package (issue #29): what `scripts/build-deploy.sh --zip` publishes is exactly
//! the allow-list (`scripts/package.py`: host.json, the two function.json files, the binary with
//! its execute bit), and once unpacked into an empty directory it runs as the Functions host runs
//! it — the program and arguments from the packaged host.json's `customHandler.description`, in
//! its working directory, with `FUNCTIONS_CUSTOMHANDLER_PORT` — and answers both functions.
//!
//! The zip is made by `scripts/package.py`, the packager `build-deploy.sh --zip` calls once its
//! glibc check passed (that check needs the glibc-2.28 build `scripts/test.sh` makes; it is run
//! on the same binary there, and by the docs test's `testbed: deploy` blocks).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use testbed::TestBed;

use crate::support::{assert_no_secrets, assert_one_set, program_command, settings, App, BIN};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `python3 -c SCRIPT ARGS…`, which must succeed; its stdout.
fn python(script: &str, args: &[&Path]) -> String {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .current_dir(repo())
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Each entry of the zip with its Unix mode.
fn entries(zip: &Path) -> BTreeMap<String, u32> {
    let listing = python(
        "import sys, zipfile\nfor i in zipfile.ZipFile(sys.argv[1]).infolist(): print(i.filename, oct(i.external_attr >> 16 & 0o777))",
        &[zip],
    );
    listing
        .lines()
        .map(|l| {
            let (name, mode) = l.rsplit_once(' ').unwrap();
            (
                name.to_string(),
                u32::from_str_radix(mode.trim_start_matches("0o"), 8).unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_package_holds_the_allow_list_and_runs_unpacked_as_the_functions_host_runs_it() {
    let bed = TestBed::start().await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let zip = work.path().join("stsbridge.zip");
    let packaged = std::process::Command::new("python3")
        .arg("scripts/package.py")
        .args(["build", "--binary", BIN, "--zip"])
        .arg(&zip)
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(packaged.status.success(), "{packaged:?}");

    // Exactly the allow-list, the binary executable (no targets.json: the repo has none).
    let listed = entries(&zip);
    assert_eq!(
        listed,
        BTreeMap::from([
            ("HttpRotate/function.json".to_string(), 0o644),
            ("TimerRotate/function.json".to_string(), 0o644),
            ("host.json".to_string(), 0o644),
            ("stsbridge".to_string(), 0o755),
        ])
    );

    // Unpacked into an empty directory as an extractor that keeps Unix modes does.
    let app_root = work.path().join("wwwroot");
    python(
        "import os, sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nfor i in z.infolist():\n    p = z.extract(i, sys.argv[2])\n    os.chmod(p, i.external_attr >> 16 & 0o777)",
        &[&zip, &app_root],
    );
    let host: Value =
        serde_json::from_str(&std::fs::read_to_string(app_root.join("host.json")).unwrap())
            .unwrap();
    let description = &host["customHandler"]["description"];
    let program = app_root.join(description["defaultExecutablePath"].as_str().unwrap());
    assert!(
        std::fs::metadata(&program).unwrap().permissions().mode() & 0o111 != 0,
        "the unpacked binary is executable"
    );
    let args: Vec<String> = description["arguments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let cwd = app_root.join(description["workingDirectory"].as_str().unwrap_or(""));

    // Run as the host runs it: that program, those arguments, that directory, the app settings
    // as environment variables, FUNCTIONS_CUSTOMHANDLER_PORT.
    let home = tempfile::tempdir().unwrap();
    let mut cmd = program_command(&program, &settings(&bed, &[], &[]), home.path());
    cmd.args(&args).current_dir(&cwd);
    let app = App::spawn_command(cmd, home).await;

    let (status, timer) = app.timer_rotate().await;
    assert_eq!(status, 200, "{timer}");
    assert!(
        timer["Logs"][0]
            .as_str()
            .unwrap_or("")
            .starts_with("rotated"),
        "{timer}"
    );
    let forced = app.http_rotate("POST", &[("force", "true")], None).await;
    assert_eq!(forced.status, 200, "{:?}", forced.body);
    assert_eq!(forced.body["rotated"], json!(true));
    assert_eq!(bed.sts.minted().len(), 2);
    assert_one_set(&bed).await;
    assert_no_secrets(&bed, &[&app.all_text()]);
}
