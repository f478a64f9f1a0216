//! Test support: the test bed plus a real `stsbridge` process, talked to over real sockets.
//!
//! [`App::spawn`] starts `stsbridge serve` as the Functions host would (environment cleared,
//! app settings as variables), with `FUNCTIONS_CUSTOMHANDLER_PORT=0` so that it picks a free port
//! and logs it, waits for `GET /` on that port, and captures its stdout and stderr. Every process is killed when its value is dropped.
//! [`assert_no_secrets`] is the secret-leak search every test ends with.

use std::collections::HashMap;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testbed::TestBed;

pub const BIN: &str = env!("CARGO_BIN_EXE_stsbridge");

/// The environment a handler gets: the test bed's settings, overridden by `set`, minus `unset`.
pub fn settings(bed: &TestBed, set: &[(&str, &str)], unset: &[&str]) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = bed.env().into_iter().collect();
    for (k, v) in set {
        env.insert(k.to_string(), v.to_string());
    }
    for k in unset {
        env.remove(*k);
    }
    env
}

/// `stsbridge` with only `env`, `PATH` and `HOME`, stdin closed, stdout and stderr piped.
pub fn cli_command(env: &HashMap<String, String>, home: &std::path::Path) -> Command {
    base_command(env, home)
}

fn base_command(env: &HashMap<String, String>, home: &std::path::Path) -> Command {
    program_command(BIN, env, home)
}

/// `program` with only `env`, `PATH` and `HOME`, stdin closed, stdout and stderr piped.
pub fn program_command(
    program: impl AsRef<std::ffi::OsStr>,
    env: &HashMap<String, String>,
    home: &std::path::Path,
) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Collects a pipe into a shared buffer on a thread.
pub fn capture(mut pipe: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let out = Arc::new(Mutex::new(String::new()));
    let sink = out.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    out
}

/// The port in serve's `listening on 127.0.0.1:<port>` line.
fn listening_port(stdout: &str) -> Option<u16> {
    let marker = "listening on 127.0.0.1:";
    let rest = &stdout[stdout.find(marker)? + marker.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    // Only a whole line: the capture thread may have read half of it.
    (rest.len() > digits.len())
        .then(|| digits.parse().ok())
        .flatten()
}

/// A running `stsbridge serve`.
pub struct App {
    child: Child,
    pub port: u16,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    http: reqwest::Client,
    /// Every response body this app returned (for the leak search).
    pub responses: Mutex<Vec<String>>,
    _home: tempfile::TempDir,
}

impl App {
    pub async fn spawn(env: HashMap<String, String>) -> App {
        let home = tempfile::tempdir().unwrap();
        let mut cmd = base_command(&env, home.path());
        cmd.arg("serve");
        App::spawn_command(cmd, home).await
    }

    /// Starts a custom handler as `cmd` says (the program, its arguments and working directory
    /// as the Functions host would run them), with `FUNCTIONS_CUSTOMHANDLER_PORT=0`, and waits
    /// for it to answer `GET /`.
    pub async fn spawn_command(mut cmd: Command, home: tempfile::TempDir) -> App {
        // Port 0: serve binds a free port itself and logs which. (A port picked here and passed
        // on could be taken by another test's server before serve binds it.)
        cmd.env("FUNCTIONS_CUSTOMHANDLER_PORT", "0");
        let mut child = cmd.spawn().expect("spawn stsbridge serve");
        let stdout = capture(child.stdout.take().unwrap());
        let stderr = capture(child.stderr.take().unwrap());
        let mut app = App {
            child,
            port: 0,
            stdout,
            stderr,
            http: reqwest::Client::new(),
            responses: Mutex::default(),
            _home: home,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if app.port == 0 {
                app.port = listening_port(&app.stdout.lock().unwrap()).unwrap_or(0);
            }
            if app.port != 0 && app.http.get(app.url("/")).send().await.is_ok() {
                return app;
            }
            assert!(
                Instant::now() < deadline && app.is_running(),
                "stsbridge serve did not answer GET /: {}",
                app.output()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Polls GET HttpRotate (up to 20 s) until the side work it shows satisfies `done`, and
    /// returns that side work.
    pub async fn side_work_where(
        &self,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let side = self.http_rotate("GET", &[], None).await.body["sideWork"].clone();
            if done(&side) {
                return side;
            }
            assert!(
                Instant::now() < deadline,
                "no such side work: {side}\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until the first run's side work has finished, so that a test counting calls after
    /// that run sees only its own.
    pub async fn wait_side_work(&self) {
        self.side_work_where(|s| !s.is_null()).await;
    }

    /// Waits (up to 20 s) until the start-up warm-up of every target has finished (its log
    /// line), so that a test counting calls sees only its own.
    pub async fn wait_warm_up(&self, targets: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.output().matches("warm-up (").count() < targets {
            assert!(
                Instant::now() < deadline,
                "no warm-up line: {}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Everything the process printed so far.
    pub fn output(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            self.stdout.lock().unwrap(),
            self.stderr.lock().unwrap()
        )
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The captured stderr once it contains `needle` (up to 10 s). A line the handler writes
    /// while answering can reach the capturing thread after the answer reaches the test.
    pub async fn stderr_with(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let stderr = self.stderr();
            if stderr.contains(needle) || Instant::now() >= deadline {
                return stderr;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// POSTs a raw body to a function route; returns the handler's status and body.
    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, String) {
        let response = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .header(
                "X-Azure-Functions-InvocationId",
                "00000000-0000-0000-0000-000000000001",
            )
            .header("X-Azure-Functions-HostVersion", "4.1040.300.0")
            .body(body)
            .send()
            .await
            .expect("the handler answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        self.responses.lock().unwrap().push(text.clone());
        (status, text)
    }

    /// Invokes HttpRotate as the host does; returns (handler status, envelope, res.statusCode, res body).
    pub async fn http_rotate(
        &self,
        method: &str,
        query: &[(&str, &str)],
        body: Option<&str>,
    ) -> HttpAnswer {
        let mut q = serde_json::Map::new();
        for (k, v) in query {
            q.insert(k.to_string(), json!(v));
        }
        q.insert("code".into(), json!("function-key-the-host-checked"));
        let mut req = json!({
            "Url": format!("https://app.azurewebsites.net/api/HttpRotate"),
            "Method": method,
            "Query": q,
            "Headers": {"Content-Type": ["application/json"], "User-Agent": ["test"]},
            "Params": {},
            "Identities": [],
        });
        if let Some(b) = body {
            req["Body"] = json!(b);
        }
        let invocation = json!({"Data": {"req": req}, "Metadata": {"Query": "{}", "sys": {"MethodName": "HttpRotate"}}});
        let (status, text) = self.post_raw("/HttpRotate", invocation.to_string()).await;
        HttpAnswer::parse(status, &text)
    }

    /// Invokes TimerRotate as the host does (offset-less dates, null ScheduleStatus).
    pub async fn timer_rotate(&self) -> (u16, Value) {
        let invocation = json!({
            "Data": {"timer": {"Schedule": {"AdjustForDST": true}, "ScheduleStatus": null, "IsPastDue": false}},
            "Metadata": {"sys": {"MethodName": "TimerRotate", "UtcNow": "2026-11-23T17:00:00.0123456Z", "RandGuid": "5f0b"}},
        });
        let (status, text) = self.post_raw("/TimerRotate", invocation.to_string()).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Sends SIGTERM (as the host does when it stops).
    pub fn signal_term(&self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
    }

    /// Kills the process outright (SIGKILL): a crash, with no chance to clean up.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits (up to 40 s) for the process to exit; its exit code.
    pub async fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(40);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// All text this app produced: output and responses.
    pub fn all_text(&self) -> String {
        format!(
            "{}\n{}",
            self.output(),
            self.responses.lock().unwrap().join("\n")
        )
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HttpRotate answer, unpacked.
#[derive(Debug)]
pub struct HttpAnswer {
    pub handler_status: u16,
    pub envelope: Value,
    pub status: u16,
    pub body: Value,
}

impl HttpAnswer {
    fn parse(handler_status: u16, text: &str) -> Self {
        let envelope: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let res = &envelope["Outputs"]["res"];
        let status = res["statusCode"].as_u64().unwrap_or(0) as u16;
        let body = res["body"]
            .as_str()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        Self {
            handler_status,
            envelope,
            status,
            body,
        }
    }
}

/// Runs a CLI command to completion with the given settings (asynchronously: the test bed
/// serves from this same runtime).
pub async fn run_cli(env: &HashMap<String, String>, args: &[&str]) -> CliOutput {
    let home = tempfile::tempdir().unwrap();
    run_cli_in(env, home.path(), args).await
}

/// [`run_cli`] with a HOME that outlives the run (where `~/.aws` and caches persist).
pub async fn run_cli_in(
    env: &HashMap<String, String>,
    home: &std::path::Path,
    args: &[&str],
) -> CliOutput {
    let mut cmd = cli_command(env, home);
    cmd.args(args);
    let output = tokio::process::Command::from(cmd)
        .output()
        .await
        .expect("run stsbridge");
    CliOutput {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[derive(Debug)]
pub struct CliOutput {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    pub fn text(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// The secret-leak search: none of the test bed's secret values appears in any captured text.
pub fn assert_no_secrets(bed: &TestBed, texts: &[&str]) {
    let secrets = bed.secret_values();
    assert!(!secrets.is_empty());
    for text in texts {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a secret value leaked into captured output:\n{text}"
            );
        }
    }
}

/// The production default ran: the app reached the vault by its name inside the challenge
/// resource's domain, through the test bed's proxy, met the bearer challenge and kept the
/// challenge check on (no `KeyVaultVerifyChallengeResource` anywhere in its settings).
pub fn assert_challenge_checked(bed: &TestBed, env: &HashMap<String, String>) {
    assert!(!env.contains_key("KeyVaultVerifyChallengeResource"));
    assert_eq!(env["KeyVaultUrl"], "https://kv.vault.test");
    let tunnels = bed.proxy.tunnels();
    assert!(
        !tunnels.is_empty() && tunnels.iter().all(|t| t.allowed),
        "{tunnels:?}"
    );
    assert!(
        bed.vault.log().iter().any(|r| r.status == 401),
        "the bearer challenge was met"
    );
}

/// A consumer's read of the published set, proven whole: `stsbridge credential-process` with
/// `env`, whose credentials must sign a `GetCallerIdentity` the STS front verifies. Returns the
/// caller's ARN.
pub async fn consumer_caller_arn(bed: &TestBed, env: &HashMap<String, String>) -> String {
    let out = run_cli(env, &["credential-process"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let set = out.json();
    let field = |k: &str| set[k].as_str().unwrap().to_string();
    bed.caller_arn(
        &field("AccessKeyId"),
        &field("SecretAccessKey"),
        Some(&field("SessionToken")),
    )
    .await
    .unwrap_or_else(|code| panic!("the consumer's set was refused: {code}"))
}

/// The four published secrets hold one set, exactly as STS gave it, and it works: the separate
/// secrets' values are the bundle's, every set-id tag names it, every secret's `exp` is the STS
/// expiry (whole seconds, never later), the bundle's `Expiration` is the STS expiry itself, and a
/// `GetCallerIdentity` signed with the set is accepted. Returns the set's access key id. Nothing
/// secret is printed on failure.
pub async fn assert_one_set(bed: &TestBed) -> String {
    let bundle = bed
        .vault
        .latest("AwsSessionCredentials")
        .expect("a published bundle");
    let set: Value = serde_json::from_str(&bundle.value).expect("the bundle is JSON");
    let field = |k: &str| set[k].as_str().unwrap_or_default().to_string();
    let id = field("AccessKeyId");
    let minted = bed
        .sts
        .minted()
        .into_iter()
        .find(|m| m.access_key_id == id)
        .unwrap_or_else(|| panic!("{id} was not minted by STS"));
    let sts_expiry = chrono::DateTime::parse_from_rfc3339(&minted.expiration).unwrap();
    let bundle_expiry = chrono::DateTime::parse_from_rfc3339(&field("Expiration")).unwrap();
    assert_eq!(
        bundle_expiry, sts_expiry,
        "the bundle's Expiration is the expiry STS gave"
    );
    for (name, key) in [
        ("AccessKeyId", "AccessKeyId"),
        ("SecretAccessKey", "SecretAccessKey"),
        ("SessionToken", "SessionToken"),
    ] {
        let v = bed
            .vault
            .latest(name)
            .unwrap_or_else(|| panic!("no {name}"));
        assert!(v.value == field(key), "{name} holds another set's value");
        let tag = v
            .tags
            .as_ref()
            .and_then(|t| t.get("access-key-id"))
            .cloned();
        assert_eq!(tag.as_deref(), Some(id.as_str()), "{name}'s set tag");
    }
    for name in [
        "AwsSessionCredentials",
        "AccessKeyId",
        "SecretAccessKey",
        "SessionToken",
    ] {
        let exp = bed.vault.latest(name).unwrap().exp;
        assert_eq!(
            exp,
            Some(sts_expiry.timestamp()),
            "{name}'s exp is the STS expiry ({sts_expiry})"
        );
    }
    if let Err(code) = bed
        .caller_arn(&id, &field("SecretAccessKey"), Some(&field("SessionToken")))
        .await
    {
        panic!("the published set does not work: {code}");
    }
    id
}

/// The secret-leak search of a test without a test bed: none of the test's own secret `values`
/// appears in any captured text.
pub fn assert_no_values(values: &[&str], texts: &[&str]) {
    for text in texts {
        for value in values {
            assert!(
                !text.contains(value),
                "a secret value leaked into captured output:\n{text}"
            );
        }
    }
}

/// The bundle's set id and the set id tags of the three separate secrets.
pub fn set_ids(bed: &TestBed) -> Vec<Option<String>> {
    [
        "AwsSessionCredentials",
        "AccessKeyId",
        "SecretAccessKey",
        "SessionToken",
    ]
    .iter()
    .map(|n| {
        bed.vault
            .latest(n)
            .and_then(|v| v.tags.and_then(|t| t.get("access-key-id").cloned()))
    })
    .collect()
}

/// The IAM user's key id stored in the vault (the source key id secret's latest value).
pub fn stored_key_id(bed: &TestBed) -> String {
    bed.vault
        .latest(testbed::SOURCE_KEY_ID_SECRET)
        .unwrap()
        .value
}

/// The IAM user's active access keys, as moto holds them.
pub async fn active_keys(bed: &TestBed) -> Vec<String> {
    bed.access_keys()
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, status)| status == "Active")
        .map(|(id, _)| id)
        .collect()
}
