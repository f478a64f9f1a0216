//! `stsbridge sso`, end to end: the real binary against the test bed's IAM Identity Center fakes
//! (SSO OIDC and portal) and STS front, with the real AWS CLI (`.venv/bin/aws`, botocore)
//! reading the same `~/.aws/sso/cache`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use testbed::sso::{Auto, ACCOUNT_ID, ROLE_NAME, START_URL};
use testbed::TestBed;
use tokio::io::AsyncBufReadExt;

use crate::support::{assert_no_secrets, cli_command, run_cli_in, CliOutput, BIN};

// The cache file names the AWS CLI would use, computed with Python as botocore computes them:
// sha1(session name) or sha1(start URL) for tokens; for registrations,
// sha1(json.dumps({"tool": "botocore", "startUrl", "region", "scopes", "session_name"},
// sort_keys=True)).
const TOKEN_CORP: &str = "ee0bfd2552fbd840c02cc48b6e823320543c450f";
const TOKEN_LEGACY: &str = "8ce032189620dbc62b05d84a2cddebb151babeed";
const REGISTRATION_CORP: &str = "24743c00abf44f3114fd5449cd9b95bdda61e8af";
const REGISTRATION_LEGACY: &str = "4dafccd7d2a4154e7e42ad8821c9af6ed35b3e9c";

const SSO_ARN: &str = "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_DeveloperAccess_0123456789abcdef/developer@example.com";

/// `~/.aws/config`: an sso-session profile (with registration scopes, so refresh tokens), a
/// legacy profile, and a profile that runs `stsbridge sso credential-process`.
fn config() -> String {
    format!(
        "[profile dev]
sso_session = corp
sso_account_id = {ACCOUNT_ID}
sso_role_name = {ROLE_NAME}
region = us-east-1

[sso-session corp]
sso_start_url = {START_URL}
sso_region = us-east-1
sso_registration_scopes = sso:account:access

[profile legacy]
sso_start_url = {START_URL}
sso_region = us-east-1
sso_account_id = {ACCOUNT_ID}
sso_role_name = {ROLE_NAME}
region = us-east-1

[profile bridged]
credential_process = {BIN} sso credential-process --aws-profile dev
region = us-east-1
"
    )
}

const LEGACY_FLAGS: [&str; 8] = [
    "--start-url",
    START_URL,
    "--sso-region",
    "us-east-1",
    "--account-id",
    ACCOUNT_ID,
    "--role-name",
    ROLE_NAME,
];

/// A test bed, a private HOME holding `~/.aws`, and every output captured for the leak search.
struct World {
    bed: TestBed,
    home: tempfile::TempDir,
    env: HashMap<String, String>,
    captured: Mutex<Vec<String>>,
}

impl World {
    async fn new() -> World {
        let bed = TestBed::start().await.unwrap();
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join(".aws")).unwrap();
        std::fs::write(home.path().join(".aws/config"), config()).unwrap();
        let mut env: HashMap<String, String> = bed.sso_env().into_iter().collect();
        env.insert("AWS_EC2_METADATA_DISABLED".into(), "true".into());
        World {
            bed,
            home,
            env,
            captured: Mutex::default(),
        }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.home.path().join(relative)
    }

    fn cache_file(&self, key: &str) -> PathBuf {
        self.path(&format!(".aws/sso/cache/{key}.json"))
    }

    fn cached(&self, key: &str) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.cache_file(key)).unwrap()).unwrap()
    }

    /// Moves the cached token's expiry (as if time had passed).
    fn set_token_expiry(&self, key: &str, from_now: chrono::Duration) {
        let mut token = self.cached(key);
        token["expiresAt"] = (chrono::Utc::now() + from_now)
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
            .into();
        std::fs::write(self.cache_file(key), token.to_string()).unwrap();
    }

    fn keep(&self, out: &CliOutput) {
        let mut c = self.captured.lock().unwrap();
        c.push(out.stdout.clone());
        c.push(out.stderr.clone());
    }

    async fn stsbridge(&self, args: &[&str]) -> CliOutput {
        let out = run_cli_in(&self.env, self.home.path(), args).await;
        self.keep(&out);
        out
    }

    /// Runs `stsbridge sso login …`, approving its code through the fake's hook as soon as the
    /// code is shown — the person at the browser. Returns the output and the code shown.
    async fn login_approving(&self, args: &[&str]) -> (CliOutput, String) {
        let mut cmd = tokio::process::Command::from(cli_command(&self.env, self.home.path()));
        cmd.args(["sso", "login"]).args(args).kill_on_drop(true);
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let stdout = tokio::spawn(async move {
            let mut text = String::new();
            let mut r = tokio::io::BufReader::new(stdout);
            tokio::io::AsyncReadExt::read_to_string(&mut r, &mut text)
                .await
                .unwrap();
            text
        });
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let (mut stderr, mut code) = (String::new(), String::new());
        while let Some(line) = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("stsbridge kept printing")
            .unwrap()
        {
            if let Some(shown) = line.split("enter the code ").nth(1) {
                code = shown.trim().to_string();
                assert_eq!(self.bed.sso.pending_user_codes(), vec![code.clone()]);
                assert!(self.bed.sso.approve(&code));
            }
            stderr.push_str(&line);
            stderr.push('\n');
        }
        let status = child.wait().await.unwrap();
        let out = CliOutput {
            code: status.code(),
            stdout: stdout.await.unwrap(),
            stderr,
        };
        self.keep(&out);
        (out, code)
    }

    /// A shell with the AWS CLI on PATH, this HOME, and `$STS` the test bed's STS front.
    async fn aws(&self, script: &str) -> (i32, String, String) {
        let venv_bin = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin");
        let out = tokio::process::Command::new("bash")
            .arg("-c")
            .arg(script)
            .env_clear()
            .envs(&self.env)
            .env("PATH", format!("{}:/usr/bin:/bin", venv_bin.display()))
            .env("HOME", self.home.path())
            .env("STS", self.bed.sts_url())
            .output()
            .await
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        self.captured.lock().unwrap().push(stderr.clone());
        (out.status.code().unwrap_or(-1), stdout, stderr)
    }

    fn operations(&self) -> Vec<String> {
        self.bed
            .sso
            .calls()
            .into_iter()
            .map(|c| match c.error {
                Some(e) => format!("{}:{e}", c.operation),
                None => c.operation,
            })
            .collect()
    }

    /// The operations, with CreateToken's "still pending" answers left out.
    fn operations_without_pending(&self) -> Vec<String> {
        self.operations()
            .into_iter()
            .filter(|o| o != "CreateToken:AuthorizationPendingException")
            .collect()
    }

    /// No secret of the test bed (SSO client secrets, device codes, access and refresh tokens,
    /// role credentials) in anything captured but `--export`'s stdout, which holds the role
    /// credentials by design — and even that holds no SSO secret.
    fn assert_no_secrets(&self, export_stdout: &[&str]) {
        let captured = self.captured.lock().unwrap();
        let texts: Vec<&str> = captured
            .iter()
            .map(String::as_str)
            .filter(|t| !export_stdout.contains(t))
            .collect();
        assert_no_secrets(&self.bed, &texts);
        for out in export_stdout {
            for secret in self.bed.sso.secret_values() {
                assert!(!out.contains(&secret), "an SSO secret in --export's output");
            }
        }
    }
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn is_cache_time(v: &Value) -> bool {
    let t = v.as_str().unwrap_or_default();
    chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%SZ").is_ok()
}

#[tokio::test]
async fn a_first_login_signs_in_with_the_device_code_and_writes_every_output() {
    let w = World::new().await;
    std::fs::write(
        w.path(".aws/credentials"),
        "# mine\n[default]\nregion = eu-west-1\n",
    )
    .unwrap();
    std::fs::create_dir_all(w.path("Api/Properties")).unwrap();
    let launch = w.path("Api/Properties/launchSettings.json");
    std::fs::write(&launch, r#"{"profiles":{"Api":{"commandName":"Project"}}}"#).unwrap();

    let (out, code) = w
        .login_approving(&[
            "--aws-profile",
            "dev",
            "--export",
            "--sync-profile",
            "app",
            "--launch-settings",
            launch.to_str().unwrap(),
        ])
        .await;

    assert_eq!(out.code, Some(0), "{out:?}");
    // Shown: where to go and the code; the browser is not opened (no DISPLAY in a test).
    let oidc = w.bed.sso_oidc_url();
    assert!(
        out.stderr.contains(&format!(
            "To sign in, open {oidc}/device and enter the code {code}"
        )),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("browser window was opened"));
    assert_eq!(
        w.operations_without_pending(),
        vec![
            "RegisterClient",
            "StartDeviceAuthorization",
            "CreateToken",
            "GetRoleCredentials"
        ]
    );
    let polls = w.bed.sso.calls_of("CreateToken");
    assert!(
        polls.len() >= 2,
        "pending at least once before the approval"
    );
    for pair in polls.windows(2) {
        assert!(
            pair[1].at.duration_since(pair[0].at) >= Duration::from_secs(1),
            "polled faster than the 1 s interval"
        );
    }
    let minted = &w.bed.sts.minted()[0];
    // --export: only the variables on stdout.
    assert_eq!(
        out.stdout,
        format!(
            "export AWS_ACCESS_KEY_ID='{}'\nexport AWS_SECRET_ACCESS_KEY='{}'\nexport AWS_SESSION_TOKEN='{}'\nexport AWS_CREDENTIAL_EXPIRATION='{}'\n",
            minted.access_key_id, minted.secret_access_key, minted.session_token, minted.expiration
        )
    );
    // --sync-profile: the profile appended, the rest kept.
    let credentials = std::fs::read_to_string(w.path(".aws/credentials")).unwrap();
    assert_eq!(
        credentials,
        format!(
            "# mine\n[default]\nregion = eu-west-1\n\n[app]\naws_access_key_id = {}\naws_secret_access_key = {}\naws_session_token = {}\n",
            minted.access_key_id, minted.secret_access_key, minted.session_token
        )
    );
    assert_eq!(mode(&w.path(".aws/credentials")), 0o600);
    // --launch-settings: every profile.
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&launch).unwrap()).unwrap();
    let vars = &doc["profiles"]["Api"]["environmentVariables"];
    assert_eq!(vars["AWS_ACCESS_KEY_ID"], minted.access_key_id);
    assert_eq!(vars["AWS_SESSION_TOKEN"], minted.session_token);
    assert!(out.stderr.contains("keep it out of version control"));
    // The cache, as the AWS CLI writes it.
    let token = w.cached(TOKEN_CORP);
    let fields: Vec<&str> = token
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        vec![
            "startUrl",
            "region",
            "accessToken",
            "expiresAt",
            "clientId",
            "clientSecret",
            "registrationExpiresAt",
            "refreshToken"
        ]
    );
    assert_eq!(token["startUrl"], START_URL);
    assert_eq!(token["region"], "us-east-1");
    assert!(is_cache_time(&token["expiresAt"]) && is_cache_time(&token["registrationExpiresAt"]));
    let registration = w.cached(REGISTRATION_CORP);
    assert_eq!(registration["clientId"], token["clientId"]);
    assert_eq!(registration["clientSecret"], token["clientSecret"]);
    assert_eq!(
        registration["scopes"],
        serde_json::json!(["sso:account:access"])
    );
    assert!(is_cache_time(&registration["expiresAt"]));
    assert_eq!(
        w.bed.sso.calls_of("GetRoleCredentials")[0]
            .access_token
            .as_deref(),
        token["accessToken"].as_str()
    );
    assert_eq!(mode(&w.cache_file(TOKEN_CORP)), 0o600);
    assert_eq!(mode(&w.cache_file(REGISTRATION_CORP)), 0o600);
    assert_eq!(mode(&w.path(".aws/sso/cache")), 0o700);
    w.assert_no_secrets(&[&out.stdout]);
}

#[tokio::test]
async fn a_second_login_reuses_the_cached_sign_in_without_a_device_authorization() {
    let w = World::new().await;
    w.bed.sso.set_auto(Auto::Approve { after_polls: 0 });
    let first = w.stsbridge(&["sso", "login", "--aws-profile", "dev"]).await;
    assert_eq!(first.code, Some(0), "{first:?}");
    w.bed.sso.clear_calls();

    let second = w.stsbridge(&["sso", "login", "--aws-profile", "dev"]).await;

    assert_eq!(second.code, Some(0), "{second:?}");
    assert_eq!(w.operations(), vec!["GetRoleCredentials"]);
    assert!(
        second
            .stderr
            .contains("using the cached sign-in to sso-session 'corp'"),
        "{}",
        second.stderr
    );
    assert!(!second.stderr.contains("enter the code"));
    assert_eq!(
        w.bed.sts.minted().len(),
        2,
        "fresh role credentials each time"
    );
    w.assert_no_secrets(&[]);
}

#[tokio::test]
async fn a_sign_in_near_expiry_is_refreshed_with_the_refresh_token_grant() {
    let w = World::new().await;
    w.bed.sso.set_auto(Auto::Approve { after_polls: 0 });
    assert_eq!(
        w.stsbridge(&["sso", "login", "--aws-profile", "dev"])
            .await
            .code,
        Some(0)
    );
    let before = w.cached(TOKEN_CORP);
    w.set_token_expiry(TOKEN_CORP, chrono::Duration::minutes(5));
    w.bed.sso.clear_calls();

    let out = w.stsbridge(&["sso", "login", "--aws-profile", "dev"]).await;

    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(w.operations(), vec!["CreateToken", "GetRoleCredentials"]);
    assert_eq!(
        w.bed.sso.calls_of("CreateToken")[0].grant_type.as_deref(),
        Some("refresh_token")
    );
    assert!(
        out.stderr.contains("refreshed the sign-in"),
        "{}",
        out.stderr
    );
    let after = w.cached(TOKEN_CORP);
    assert_ne!(after["accessToken"], before["accessToken"]);
    assert_ne!(after["refreshToken"], before["refreshToken"], "rotated");
    assert_eq!(after["clientId"], before["clientId"]);
    assert_eq!(
        after["registrationExpiresAt"],
        before["registrationExpiresAt"]
    );
    w.assert_no_secrets(&[]);
}

#[tokio::test]
async fn an_expired_legacy_sign_in_signs_in_again_with_the_cached_client_registration() {
    let w = World::new().await;
    w.bed.sso.set_auto(Auto::Approve { after_polls: 0 });
    let mut args = vec!["sso", "login"];
    args.extend(LEGACY_FLAGS);
    assert_eq!(w.stsbridge(&args).await.code, Some(0));
    let first = w.cached(TOKEN_LEGACY);
    assert!(
        first.get("refreshToken").is_none(),
        "no scopes, no refresh token"
    );
    assert!(w.cache_file(REGISTRATION_LEGACY).exists());
    w.set_token_expiry(TOKEN_LEGACY, chrono::Duration::minutes(-1));
    w.bed.sso.clear_calls();

    let out = w.stsbridge(&args).await;

    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        w.operations(),
        vec![
            "StartDeviceAuthorization",
            "CreateToken",
            "GetRoleCredentials"
        ],
        "no RegisterClient: the cached registration is reused"
    );
    assert_eq!(
        w.bed.sso.calls_of("StartDeviceAuthorization")[0]
            .client_id
            .as_deref(),
        first["clientId"].as_str()
    );
    w.assert_no_secrets(&[]);
}

#[tokio::test]
async fn a_denied_sign_in_fails_clearly_and_caches_no_token() {
    let w = World::new().await;
    w.bed.sso.set_auto(Auto::Deny { after_polls: 1 });

    let out = w
        .stsbridge(&["sso", "login", "--aws-profile", "dev", "--export"])
        .await;

    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.is_empty());
    let last = out.stderr.trim().lines().last().unwrap();
    assert!(
        last.contains("was denied in the browser (AccessDeniedException)")
            && last.contains("run `stsbridge sso login --aws-profile dev` again"),
        "{last}"
    );
    assert!(!w.cache_file(TOKEN_CORP).exists());
    assert!(w.bed.sso.calls_of("GetRoleCredentials").is_empty());
    w.assert_no_secrets(&[]);
}

#[tokio::test]
async fn a_code_that_expires_before_approval_fails_clearly() {
    let w = World::new().await;
    w.bed.sso.set_auto(Auto::Expire { after_polls: 1 });

    let out = w.stsbridge(&["sso", "login", "--aws-profile", "dev"]).await;

    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("expired before it was approved (ExpiredTokenException"),
        "{}",
        out.stderr
    );
    assert_eq!(
        w.operations().last().map(String::as_str),
        Some("CreateToken:ExpiredTokenException")
    );
    assert!(!w.cache_file(TOKEN_CORP).exists());
    w.assert_no_secrets(&[]);
}

#[tokio::test]
async fn slow_down_adds_five_seconds_to_the_polling_interval() {
    let w = World::new().await;
    w.bed.sso.slow_down_next(1);
    w.bed.sso.set_auto(Auto::Approve { after_polls: 1 });

    let out = w.stsbridge(&["sso", "login", "--aws-profile", "dev"]).await;

    assert_eq!(out.code, Some(0), "{out:?}");
    let polls = w.bed.sso.calls_of("CreateToken");
    assert_eq!(
        polls.iter().map(|c| c.error.clone()).collect::<Vec<_>>(),
        vec![Some("SlowDownException".to_string()), None]
    );
    let gap = polls[1].at.duration_since(polls[0].at);
    assert!(
        gap >= Duration::from_secs(6),
        "waited {gap:?} after slow_down"
    );
    assert!(
        out.stderr
            .contains("asked to poll more slowly; now every 6 s"),
        "{}",
        out.stderr
    );
    w.assert_no_secrets(&[]);
}

#[tokio::test]
async fn credential_process_never_starts_a_sign_in_and_says_how_to_log_in() {
    let w = World::new().await;

    let out = w
        .stsbridge(&["sso", "credential-process", "--aws-profile", "dev"])
        .await;

    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.contains("not signed in to sso-session 'corp'")
            && out
                .stderr
                .contains("run `stsbridge sso login --aws-profile dev` first"),
        "{}",
        out.stderr
    );
    assert!(w.operations().is_empty(), "no call at all");
    assert_eq!(out.stderr.trim().lines().count(), 1);
    assert_no_secrets(&w.bed, &[&out.text()]);
}

#[tokio::test]
async fn credential_process_serves_the_aws_cli_from_the_sign_in() {
    let w = World::new().await;
    w.bed.sso.set_auto(Auto::Approve { after_polls: 0 });
    assert_eq!(
        w.stsbridge(&["sso", "login", "--aws-profile", "dev"])
            .await
            .code,
        Some(0)
    );
    w.bed.sso.clear_calls();

    let direct = w
        .stsbridge(&["sso", "credential-process", "--aws-profile", "dev"])
        .await;
    let (code, stdout, stderr) = w
        .aws("aws sts get-caller-identity --profile bridged --endpoint-url \"$STS\" --output json")
        .await;

    assert_eq!(direct.code, Some(0), "{direct:?}");
    let json: Value = serde_json::from_str(&direct.stdout).unwrap();
    assert_eq!(json["Version"], 1);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let identity: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(identity["Arn"], SSO_ARN);
    assert_eq!(
        w.operations(),
        vec!["GetRoleCredentials", "GetRoleCredentials"],
        "no sign-in, only the cached token"
    );
    w.assert_no_secrets(&[&direct.stdout]);
}

#[tokio::test]
async fn errors_are_one_clear_line_and_a_bad_file_fails_before_any_call() {
    let w = World::new().await;
    w.bed.sso.set_auto(Auto::Approve { after_polls: 0 });
    std::fs::write(w.path(".aws/credentials"), "[app]\nnot ini\n").unwrap();

    let bad_file = w
        .stsbridge(&[
            "sso",
            "login",
            "--aws-profile",
            "dev",
            "--sync-profile",
            "app",
        ])
        .await;
    let calls_after_bad_file = w.operations().len();
    let no_role = w
        .stsbridge(&[
            "sso",
            "login",
            "--aws-profile",
            "dev",
            "--role-name",
            "AdministratorAccess",
        ])
        .await;
    let no_profile = w
        .stsbridge(&["sso", "login", "--aws-profile", "nope"])
        .await;

    assert_eq!(bad_file.code, Some(1));
    assert!(bad_file.stderr.contains("line 2"), "{}", bad_file.stderr);
    assert_eq!(
        calls_after_bad_file, 0,
        "the file was checked before the sign-in"
    );
    assert_eq!(
        std::fs::read_to_string(w.path(".aws/credentials")).unwrap(),
        "[app]\nnot ini\n"
    );
    assert_eq!(no_role.code, Some(1));
    let last = no_role.stderr.trim().lines().last().unwrap();
    assert!(
        last.contains("no role 'AdministratorAccess' in account 111122223333 (ForbiddenException)"),
        "{last}"
    );
    assert_eq!(no_profile.code, Some(1));
    assert!(
        no_profile
            .stderr
            .contains("profile 'nope' is not in the AWS config file"),
        "{}",
        no_profile.stderr
    );
    for out in [&bad_file, &no_profile] {
        assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    }
    w.assert_no_secrets(&[]);
}

#[tokio::test]
async fn a_revoked_sign_in_is_replaced_by_a_new_device_authorization() {
    let w = World::new().await;
    w.bed.sso.set_auto(Auto::Approve { after_polls: 0 });
    assert_eq!(
        w.stsbridge(&["sso", "login", "--aws-profile", "dev"])
            .await
            .code,
        Some(0)
    );
    w.bed.sso.revoke_access_tokens();
    w.bed.sso.clear_calls();

    let refused = w
        .stsbridge(&["sso", "credential-process", "--aws-profile", "dev"])
        .await;
    let login = w.stsbridge(&["sso", "login", "--aws-profile", "dev"]).await;

    assert_eq!(refused.code, Some(1));
    assert!(
        refused.stderr.contains(
            "no longer accepts the sign-in to sso-session 'corp' (https://testbed.awsapps.com/start) (UnauthorizedException)"
        ),
        "{}",
        refused.stderr
    );
    assert_eq!(login.code, Some(0), "{login:?}");
    assert_eq!(
        w.operations_without_pending(),
        vec![
            "GetRoleCredentials:UnauthorizedException",
            "GetRoleCredentials:UnauthorizedException",
            "StartDeviceAuthorization",
            "CreateToken",
            "GetRoleCredentials"
        ]
    );
    w.assert_no_secrets(&[]);
}

/// The AWS CLI (v1, botocore's SSO credential provider) and stsbridge share one sign-in, both
/// ways: the CLI uses stsbridge's cached token, and stsbridge uses a token the CLI refreshed.
#[tokio::test]
async fn the_aws_cli_uses_the_same_cache_entry_without_a_sign_in_of_its_own() {
    let w = World::new().await;
    w.bed.sso.set_auto(Auto::Approve { after_polls: 0 });
    let mut legacy = vec!["sso", "login"];
    legacy.extend(LEGACY_FLAGS);
    assert_eq!(
        w.stsbridge(&["sso", "login", "--aws-profile", "dev"])
            .await
            .code,
        Some(0)
    );
    assert_eq!(w.stsbridge(&legacy).await.code, Some(0));
    let token = w.cached(TOKEN_CORP);
    let legacy_token = w.cached(TOKEN_LEGACY);
    w.bed.sso.clear_calls();
    w.bed.sts.clear_calls();

    let (code, stdout, stderr) = w
        .aws("aws sts get-caller-identity --profile dev --endpoint-url \"$STS\" --output json && aws sts get-caller-identity --profile legacy --endpoint-url \"$STS\" --output json")
        .await;

    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(stdout.matches(SSO_ARN).count(), 2, "{stdout}");
    let used: Vec<Option<String>> = w
        .bed
        .sso
        .calls()
        .into_iter()
        .map(|c| c.access_token)
        .collect();
    assert_eq!(
        used,
        vec![
            token["accessToken"].as_str().map(str::to_string),
            legacy_token["accessToken"].as_str().map(str::to_string)
        ],
        "only GetRoleCredentials, with stsbridge's cached tokens"
    );
    assert_eq!(w.bed.sts.calls_of("GetCallerIdentity").len(), 2);

    // The other way: the AWS CLI refreshes a token near expiry and writes the cache; stsbridge
    // then uses the CLI's token without any call to SSO OIDC.
    w.set_token_expiry(TOKEN_CORP, chrono::Duration::minutes(5));
    w.bed.sso.clear_calls();
    let (code, _, stderr) = w
        .aws("aws sts get-caller-identity --profile dev --endpoint-url \"$STS\" --output json")
        .await;
    assert_eq!(code, 0, "{stderr}");
    let refreshed = w.cached(TOKEN_CORP);
    assert_ne!(
        refreshed["accessToken"], token["accessToken"],
        "the CLI refreshed it"
    );
    assert_eq!(
        w.bed.sso.calls_of("CreateToken")[0].grant_type.as_deref(),
        Some("refresh_token")
    );
    w.bed.sso.clear_calls();
    let out = w
        .stsbridge(&["sso", "credential-process", "--aws-profile", "dev"])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(w.operations(), vec!["GetRoleCredentials"]);
    assert_eq!(
        w.bed.sso.calls()[0].access_token.as_deref(),
        refreshed["accessToken"].as_str()
    );
    w.assert_no_secrets(&[&out.stdout]);
}

/// Issue #15 L1: no `RUST_LOG` directive lifts the cap on the SDKs' logs — neither a more
/// specific target nor a span filter — so the SSO access token (`x-amz-sso_bearer_token`, which
/// smithy does not redact) never reaches stderr.
#[tokio::test]
async fn no_rust_log_directive_makes_the_sdk_print_the_sso_token() {
    let w = World::new().await;
    w.bed.sso.set_auto(Auto::Approve { after_polls: 0 });
    assert_eq!(
        w.stsbridge(&["sso", "login", "--aws-profile", "dev"])
            .await
            .code,
        Some(0)
    );
    let mut stdouts = vec![];
    for directive in [
        "aws_smithy_runtime::client::orchestrator=trace",
        "[try_attempt]=trace",
        "trace",
        "aws_sigv4=trace,aws_smithy_runtime=trace,hyper=trace,reqwest=trace",
    ] {
        let mut env = w.env.clone();
        env.insert("RUST_LOG".into(), directive.into());
        let out = run_cli_in(
            &env,
            w.home.path(),
            &["sso", "credential-process", "--aws-profile", "dev"],
        )
        .await;
        assert_eq!(out.code, Some(0), "{directive}: {out:?}");
        w.keep(&out);
        stdouts.push(out.stdout);
    }
    let stdouts: Vec<&str> = stdouts.iter().map(String::as_str).collect();
    w.assert_no_secrets(&stdouts);
}
