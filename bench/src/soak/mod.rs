//! The soak (issues #21, #25): `stsbridge-bench --soak [--seed N] [--hours H] [--keep-logs]
//! [--self-test]`, run by `scripts/bench.sh --soak …`. A benchmark, not part of CI. It exits 1
//! when any invariant was violated (the self-test: when an injected defect went unreported).
//!
//! Three `stsbridge serve` instances share one vault and one storage account (Azurite: the
//! rotation lease, `RotationLeaseSeconds=15`). Two consumers read the published set as
//! consumers do, over HTTPS through the test bed's proxy with the Key Vault challenge:
//! `stsbridge credential-process --min-remaining 5s`, run again 250 ms after each run ends, and
//! a `serve-credentials` endpoint (`--poll-interval 10s`) asked with its token every 100 ms
//! (`readers.rs`). A monitor
//! checks every version published of the bundle and the three separate secrets against what the
//! STS front minted.
//!
//! Time is compressed by triggers: one "hour" is one `TimerRotate` to one instance
//! (`MinRotationIntervalSeconds=0`, so each one rotates), sometimes followed by a burst of forced
//! `HttpRotate`s to several instances at once (STS held 300 ms meanwhile, so all of them arrive
//! before the first mint) and, now and then, an IAM key rotation request. The STS front makes
//! every set expire 60 s after it is minted (`StsFront::set_lifetime`). The schedule
//! (`schedule.rs`) is drawn from a seeded `StdRng` before the run: short faults of one hour, and
//! outages of 20–90 s of wall time — STS or Key Vault down, longer than a set lives, so the
//! published set really expires; or storage down, which must not matter. The default run (seed
//! 21, 200 hours) holds 15 outages (7 of STS, 6 of Key Vault, 2 of storage) totalling 809 s and
//! takes about 19 minutes (it prints its own estimate first).
//!
//! Invariants; each breach is a violation, listed with its hour and the fault then declared:
//! - every version published (bundle and separate secrets) carries exactly the expiry STS gave its
//!   set, in the bundle's `Expiration` and in `exp` — compared with the STS front's record of the
//!   mint, not with the clock; every set a consumer got is one the STS front minted (id, secret,
//!   token), with that same expiry, and had not expired when it was handed out;
//! - a reader that could not get a valid set is a violation unless a declared fault explains that
//!   very failure: an expired set only from the start of an STS or Key Vault outage to the first
//!   rotation after it (plus the reader's lag), Key Vault failing the reader's own read only while
//!   a Key Vault fault is installed, refused connections only while the endpoint is down
//!   (`check.rs` has the exact rule); a missing bundle, a refused read, a malformed answer never;
//! - the latest bundle version is enabled, and holds a set good for 5 s more, outside those
//!   starved stretches; after an outage a rotation succeeds within 45 s;
//! - the separate secrets never disagree with the bundle past the end of a successful rotation
//!   that started after the disagreement was first seen;
//! - the IAM user ends with exactly one active key, the stored one;
//! - a burst of forced triggers mints at most once while storage is up, but for a trigger whose
//!   run began only after another one had answered with its new set (it rightly mints again);
//! - no secret value of the test bed's (source key, every minted secret and token, Entra tokens,
//!   vault values) in any captured output: every instance's stdout and stderr, the endpoint's
//!   stdout (its two lines) and stderr, `credential-process`'s stderr and its stdout (which must
//!   hold its own set and nothing else), the endpoint's answers, every invocation's answer.
//!
//! `--self-test` (`self_test.rs`) runs the same soak on a fixed schedule with deliberate defects
//! and passes only when each was reported.

mod check;
mod readers;
mod schedule;
mod self_test;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};
use testbed::{Fault, Options, Rule, TestBed};

use self::check::{Cause, Reader, What, Window};
use self::schedule::{Injected, Kind, Step};
use self::self_test::{Defect, Injection};
use crate::{env_of, free_port, memory_kib, percentile};

const BUNDLE: &str = "AwsSessionCredentials";
/// The separate secrets, in the bundle's field order (id, secret, token).
const SEPARATE: [&str; 3] = ["AccessKeyId", "SecretAccessKey", "SessionToken"];
const CONSUMER_APP: &str = "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg/providers/Microsoft.Web/sites/soak-consumer";
const INSTANCES: usize = 3;
/// How long the STS front's sets live in the soak.
const LIFETIME: Duration = Duration::from_secs(60);
/// How much life a set must have left to be handed out: `credential-process --min-remaining 5s`
/// and the endpoint's own floor (5 s).
const MARGIN: Duration = Duration::from_secs(5);
/// The endpoint's `--poll-interval`.
const ENDPOINT_POLL: Duration = Duration::from_secs(10);
/// Wall time of an hour without an outage, for the estimate printed first (measured: the
/// default run took 1153 s, 809 s of them outages, 30 s starting and ending).
const HOUR_WALL: Duration = Duration::from_millis(1500);

/// What to run.
pub struct Config {
    pub seed: u64,
    pub hours: u32,
    pub keep_logs: bool,
    pub self_test: bool,
}

/// An invariant breach: when, in which hour under which declared fault, and what.
#[derive(Clone, Debug)]
pub struct Violation {
    pub at: Instant,
    pub hour: u32,
    pub fault: String,
    pub what: What,
    pub text: String,
}

/// Texts captured in-process for the secret search: (name, text, the values it is meant to hold).
#[derive(Default)]
struct Captured {
    texts: Vec<(String, String, Vec<String>)>,
    seen: HashSet<String>,
}

/// What the run shares with its readers and monitor.
pub struct Shared {
    started: Instant,
    stop: AtomicBool,
    hour: AtomicU32,
    /// The declared fault of the hour ("none" when none, or when the self-test hides it).
    fault: Mutex<String>,
    violations: Mutex<Vec<Violation>>,
    /// (start, end) of every invocation that answered a successful rotation.
    rotated: Mutex<Vec<(Instant, Instant)>>,
    failures: Mutex<Vec<check::Failure>>,
    /// The endpoint's URL and token (they change when it is restarted).
    endpoint: Mutex<(String, String)>,
    captured: Mutex<Captured>,
}

impl Shared {
    fn now(&self) -> (u32, String) {
        (
            self.hour.load(Ordering::SeqCst),
            self.fault.lock().unwrap().clone(),
        )
    }

    fn violate(&self, what: What, text: String) {
        let (hour, fault) = self.now();
        self.violate_during(hour, &fault, what, text);
    }

    /// A violation seen now, of something that began in `hour` (a reader's read, say).
    fn violate_during(&self, hour: u32, fault: &str, what: What, text: String) {
        self.record(Violation {
            at: Instant::now(),
            hour,
            fault: fault.to_string(),
            what,
            text,
        });
    }

    fn record(&self, v: Violation) {
        let mut all = self.violations.lock().unwrap();
        // The first few of each kind as they come; all of them in the report.
        if all.iter().filter(|o| o.what == v.what).count() < 5 {
            eprintln!("soak: VIOLATION {}", line(self.started, &v));
        }
        all.push(v);
    }

    /// Whether a successful rotation started after `since` and ended before `now - slack`.
    fn rotated_since(&self, since: Instant, slack: Duration) -> bool {
        let now = Instant::now();
        self.rotated
            .lock()
            .unwrap()
            .iter()
            .any(|(s, e)| *s > since && *e + slack < now)
    }

    fn rotation_succeeded(&self, started: Instant) {
        self.rotated.lock().unwrap().push((started, Instant::now()));
    }

    /// Keeps a text for the secret search (each distinct text once).
    fn capture(&self, name: &str, text: String, own: Vec<String>) {
        if text.is_empty() {
            return;
        }
        let mut captured = self.captured.lock().unwrap();
        if captured.seen.insert(text.clone()) {
            captured.texts.push((name.to_string(), text, own));
        }
    }
}

fn line(started: Instant, v: &Violation) -> String {
    format!(
        "t={:.1}s hour {} [{}]: {}: {}",
        v.at.saturating_duration_since(started).as_secs_f64(),
        v.hour,
        v.fault,
        v.what.label(),
        v.text
    )
}

/// One `stsbridge serve`, its stdout and stderr appended to a log file of its slot.
struct Instance {
    child: Child,
    port: u16,
    http: reqwest::Client,
    _home: tempfile::TempDir,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Instance {
    async fn spawn(bin: &Path, env: &HashMap<String, String>, log: &Path) -> anyhow::Result<Self> {
        let home = tempfile::tempdir()?;
        let port = free_port();
        let out = OpenOptions::new().create(true).append(true).open(log)?;
        let child = Command::new(bin)
            .arg("serve")
            .env_clear()
            .env("HOME", home.path())
            .envs(env)
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(90))
            .build()?;
        let started = Instant::now();
        loop {
            if let Ok(r) = http.get(format!("http://127.0.0.1:{port}/")).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(30),
                "serve never answered"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self {
            child,
            port,
            http,
            _home: home,
        })
    }

    fn handle(&self) -> Handle {
        Handle {
            port: self.port,
            http: self.http.clone(),
        }
    }

    /// SIGKILL, as a host's crash or scale-in would.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn rss_kib(&self) -> u64 {
        memory_kib(self.child.id()).1
    }
}

/// What it takes to invoke an instance (cheap to clone into a task).
#[derive(Clone)]
struct Handle {
    port: u16,
    http: reqwest::Client,
}

impl Handle {
    /// Posts an invocation; the answer's text (kept for the secret search) and status.
    async fn invoke(&self, function: &str, invocation: Value) -> anyhow::Result<(u16, String)> {
        let r = self
            .http
            .post(format!("http://127.0.0.1:{}/{function}", self.port))
            .header(
                "X-Azure-Functions-InvocationId",
                "00000000-0000-0000-0000-0000000000b1",
            )
            .json(&invocation)
            .send()
            .await?;
        let status = r.status().as_u16();
        Ok((status, r.text().await?))
    }

    async fn timer(&self) -> anyhow::Result<(u16, String)> {
        let invocation = json!({
            "Data": {"timer": {"Schedule": {"AdjustForDST": true}, "ScheduleStatus": null, "IsPastDue": false}},
            "Metadata": {"sys": {"MethodName": "TimerRotate", "UtcNow": "2026-11-23T17:00:00.0123456Z", "RandGuid": "5f0b"}},
        });
        self.invoke("TimerRotate", invocation).await
    }

    /// A forced (or key-rotating) HttpRotate: the answer's text and whether it was a 200.
    async fn http_rotate(&self, query: &[(&str, &str)]) -> anyhow::Result<(bool, String)> {
        let mut q = serde_json::Map::new();
        for (k, v) in query {
            q.insert(k.to_string(), json!(v));
        }
        q.insert("code".into(), json!("soak"));
        let invocation = json!({"Data": {"req": {"Url": "https://app/api/HttpRotate", "Method": "POST", "Query": q,
            "Headers": {}, "Params": {}, "Identities": []}}, "Metadata": {"sys": {"MethodName": "HttpRotate"}}});
        let (status, text) = self.invoke("HttpRotate", invocation).await?;
        let envelope: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let ok = status == 200 && envelope["Outputs"]["res"]["statusCode"].as_u64() == Some(200);
        Ok((ok, text))
    }
}

/// `serve-credentials`, started as the docs show (`> endpoint.env &`, then wait for its two
/// lines): stdout appended to `serve-credentials.stdout`, stderr to `serve-credentials.stderr`,
/// both searched at the end.
struct Consumer {
    child: Child,
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Consumer {
    /// The endpoint and its URL and token.
    async fn start(
        bin: &Path,
        env: &HashMap<String, String>,
        home: &Path,
        logs: &Path,
    ) -> anyhow::Result<(Self, String, String)> {
        let stdout = logs.join("serve-credentials.stdout");
        let before = std::fs::metadata(&stdout).map(|m| m.len()).unwrap_or(0) as usize;
        let out = OpenOptions::new().create(true).append(true).open(&stdout)?;
        let err = OpenOptions::new()
            .create(true)
            .append(true)
            .open(logs.join("serve-credentials.stderr"))?;
        let child = Command::new(bin)
            .args([
                "serve-credentials",
                "--poll-interval",
                &format!("{}s", ENDPOINT_POLL.as_secs()),
            ])
            .env_clear()
            .env("HOME", home)
            .envs(env)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()?;
        let mut consumer = Self { child };
        let started = Instant::now();
        let lines = loop {
            let text = std::fs::read(&stdout)?;
            let new = String::from_utf8_lossy(&text[before.min(text.len())..]).into_owned();
            if new.matches('\n').count() >= 2 {
                break new;
            }
            if let Some(status) = consumer.child.try_wait()? {
                anyhow::bail!("serve-credentials exited ({status}) before its two lines");
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(30),
                "serve-credentials printed no two lines in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let value = |line: &str| {
            line.split_once('=')
                .map(|(_, v)| v.trim_matches('\'').to_string())
                .unwrap_or_default()
        };
        let lines: Vec<&str> = lines.lines().collect();
        anyhow::ensure!(
            lines[0].contains("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
            "serve-credentials did not start as documented"
        );
        let (url, token) = (value(lines[0]), value(lines[1]));
        Ok((consumer, url, token))
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sets a bundle version enabled or disabled over Key Vault's REST API, through the bed's proxy
/// (as an operator or a broken sweep would).
async fn set_enabled(bed: &TestBed, version: &str, enabled: bool) -> anyhow::Result<()> {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&bed.ca_file)?)?;
    let http = reqwest::Client::builder()
        .tls_certs_only([ca])
        .proxy(reqwest::Proxy::https(bed.proxy.url())?)
        .build()?;
    let (token, _) = bed.issuer.issue(&bed.vault.resource);
    let r = http
        .patch(format!(
            "{}/secrets/{BUNDLE}/{version}?api-version=7.5",
            bed.vault_url()
        ))
        .bearer_auth(token)
        .json(&json!({"attributes": {"enabled": enabled}}))
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "PATCH answered {}", r.status());
    Ok(())
}

fn append(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut f = OpenOptions::new().create(true).append(true).open(path)?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// What restarting the endpoint and injecting a self-test defect need of the run.
struct Harness<'a> {
    bed: &'a TestBed,
    bin: &'a Path,
    env: &'a HashMap<String, String>,
    logs: &'a Path,
    consumer_home: &'a Path,
    shared: &'a Shared,
}

impl Harness<'_> {
    /// Starts the endpoint again and points the endpoint reader at it.
    async fn restart_consumer(&self, consumer: &mut Consumer) -> anyhow::Result<()> {
        consumer.kill();
        let (fresh, url, token) =
            Consumer::start(self.bin, self.env, self.consumer_home, self.logs).await?;
        *consumer = fresh;
        *self.shared.endpoint.lock().unwrap() = (url, token);
        Ok(())
    }

    /// Injects a defect (self-test), holding it while the readers read.
    async fn inject(&self, defect: Defect, consumer: &mut Consumer) -> anyhow::Result<()> {
        let latest = || self.bed.vault.latest(BUNDLE).context("a published bundle");
        let minted = || self.bed.sts.minted().pop().context("a minted set");
        match defect {
            Defect::WrongExpiry => {
                let latest = latest()?;
                let mut v: Value = serde_json::from_str(&latest.value)?;
                let expiration = v["Expiration"].as_str().context("Expiration")?;
                let later = chrono::DateTime::parse_from_rfc3339(expiration)?
                    .with_timezone(&chrono::Utc)
                    + chrono::Duration::hours(1);
                v["Expiration"] = json!(later.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
                let tags: Vec<(String, String)> = latest
                    .tags
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                let tags: Vec<(&str, &str)> =
                    tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                self.bed
                    .vault
                    .seed_expiring(BUNDLE, &v.to_string(), &tags, later.timestamp());
                tokio::time::sleep(self_test::HOLD).await;
            }
            Defect::DisabledLatest => {
                let version = latest()?.version;
                set_enabled(self.bed, &version, false).await?;
                tokio::time::sleep(self_test::HOLD).await;
                set_enabled(self.bed, &version, true).await?;
            }
            Defect::VaultRefusesConsumer => {
                self.bed
                    .vault
                    .faults
                    .add(Rule::on("get", Fault::forbidden_by_rbac()).named(BUNDLE));
                tokio::time::sleep(self_test::HOLD).await;
                self.bed.vault.faults.clear();
            }
            Defect::EndpointDown => {
                consumer.kill();
                tokio::time::sleep(Duration::from_secs(2)).await;
                self.restart_consumer(consumer).await?;
            }
            Defect::SecretInLog => append(
                &self.logs.join("serve-1.log"),
                &format!(
                    "soak self-test: a log line holding a session token {}\n",
                    minted()?.session_token
                ),
            )?,
            Defect::SecretInConsumerStdout => append(
                &self.logs.join("serve-credentials.stdout"),
                &format!("{}\n", minted()?.secret_access_key),
            )?,
        }
        Ok(())
    }
}

/// Runs the soak (or its self-test); whether it passed.
pub async fn run(bin: &Path, config: &Config) -> anyhow::Result<bool> {
    let wall = Instant::now();
    let (steps, lifetime) = match config.self_test {
        true => (self_test::schedule(), self_test::LIFETIME),
        false => (schedule::schedule(config.seed, config.hours), LIFETIME),
    };
    let (outage_kinds, outage_total) = schedule::outages(&steps);
    let pauses: Duration = steps.iter().map(|s| s.pause).sum();
    let estimate = HOUR_WALL * steps.len() as u32 + outage_total + pauses + Duration::from_secs(30);
    println!(
        "soak{}: {} hours, sets live {} s; {} outages ({}) totalling {} s; expect about {:.0} min of wall time",
        if config.self_test { " --self-test" } else { "" },
        steps.len(),
        lifetime.as_secs(),
        outage_kinds.iter().map(|(_, n)| n).sum::<u32>(),
        outage_kinds
            .iter()
            .map(|(k, n)| format!("{}: {n}", short_label(*k)))
            .collect::<Vec<_>>()
            .join(", "),
        outage_total.as_secs(),
        estimate.as_secs_f64() / 60.0
    );

    let bed = TestBed::start_with(Options {
        storage: true,
        ..Default::default()
    })
    .await?;
    bed.sts.set_lifetime(Some(lifetime));
    bed.arm
        .add_app(CONSUMER_APP, &[("AWS_CREDENTIALS", BUNDLE, "Resolved")]);
    let mut env = env_of(
        &bed,
        &[
            ("MinRotationIntervalSeconds", "0"),
            ("RotationLeaseSeconds", "15"),
            ("RotationTimeBudgetSeconds", "30"),
            ("RefreshAppSettingsOf", CONSUMER_APP),
        ],
    );
    env.insert("RUST_LOG".into(), "info".into());
    let logs = tempfile::tempdir()?;
    let log_of = |i: usize| logs.path().join(format!("serve-{i}.log"));

    let mut instances = vec![];
    for i in 0..INSTANCES {
        instances.push(Instance::spawn(bin, &env, &log_of(i)).await?);
    }
    let responses: Arc<Mutex<Vec<String>>> = Arc::default();
    let (ok, text) = instances[0]
        .handle()
        .http_rotate(&[("force", "true")])
        .await?;
    anyhow::ensure!(ok, "the first rotation failed: {text}");
    responses.lock().unwrap().push(text);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start_rss: Vec<u64> = instances.iter().map(Instance::rss_kib).collect();

    let consumer_home = tempfile::tempdir()?;
    let (mut consumer, url, token) =
        Consumer::start(bin, &env, consumer_home.path(), logs.path()).await?;
    let shared = Arc::new(Shared {
        started: Instant::now(),
        stop: AtomicBool::new(false),
        hour: AtomicU32::new(0),
        fault: Mutex::new("none".into()),
        violations: Mutex::default(),
        rotated: Mutex::default(),
        failures: Mutex::default(),
        endpoint: Mutex::new((url, token)),
        captured: Mutex::default(),
    });
    let reader_home = tempfile::tempdir()?;
    let monitor_task = tokio::spawn(readers::monitor(
        bed.vault.clone(),
        bed.sts.clone(),
        shared.clone(),
    ));
    let process_task = tokio::spawn(readers::credential_process(
        bin.to_path_buf(),
        env.clone(),
        reader_home.path().to_path_buf(),
        bed.sts.clone(),
        shared.clone(),
    ));
    let endpoint_task = tokio::spawn(readers::endpoint(bed.sts.clone(), shared.clone()));
    let harness = Harness {
        bed: &bed,
        bin,
        env: &env,
        logs: logs.path(),
        consumer_home: consumer_home.path(),
        shared: &shared,
    };

    let mut faults: BTreeMap<Kind, u32> = BTreeMap::new();
    let mut windows: Vec<Window> = vec![];
    let mut injections: Vec<Injection> = vec![];
    let (mut timer_ok, mut timer_failed, mut bursts, mut restarts) = (0u32, 0u32, 0u32, 0u32);
    let mut rotation_ms = vec![];
    // What is not a violation but worth reading: failed timer triggers, bursts minting more than once.
    let mut notes: Vec<String> = vec![];
    let mut restarted = [0u32; INSTANCES];
    // (ms, hour, the hour's fault, the hour before's): the slowest are listed, to tell which
    // fault made them slow.
    let mut slowest: Vec<(f64, u32, String, String)> = vec![];
    let mut previous = "none".to_string();
    let mut burst_mints: BTreeMap<usize, u32> = BTreeMap::new();
    for step in &steps {
        let Step {
            hour,
            fault,
            declared,
            target,
            ..
        } = step;
        let hour = *hour;
        shared.hour.store(hour, Ordering::SeqCst);
        let label = fault.as_ref().map_or("none".to_string(), Injected::label);
        *shared.fault.lock().unwrap() = match declared {
            true => label.clone(),
            false => "none".into(),
        };
        let fault_start = Instant::now();
        let mut fault_end = None;
        match fault {
            Some(Injected::Kill { victim, after }) => {
                // A rotation held up at STS, its instance killed while it holds the lease.
                bed.sts.faults.set_latency(Duration::from_millis(1500));
                let handle = instances[*victim].handle();
                let trigger =
                    tokio::spawn(async move { handle.http_rotate(&[("force", "true")]).await });
                tokio::time::sleep(*after).await;
                instances[*victim].kill();
                instances[*victim] = Instance::spawn(bin, &env, &log_of(*victim)).await?;
                let _ = trigger.await;
                bed.sts.faults.set_latency(Duration::ZERO);
                restarts += 1;
                restarted[*victim] += 1;
            }
            Some(Injected::EndpointKill { down }) => {
                consumer.kill();
                tokio::time::sleep(*down).await;
                harness.restart_consumer(&mut consumer).await?;
                fault_end = Some(Instant::now());
            }
            Some(f) => schedule::install(&bed, f),
            None => {}
        }
        if let Some(f) = fault {
            *faults.entry(f.kind()).or_default() += 1;
        }

        // The hour's timer trigger; an outage's is repeated while the outage lasts.
        let until = fault_start
            + fault
                .as_ref()
                .and_then(Injected::outage)
                .unwrap_or_default();
        let mut next = Instant::now();
        loop {
            let started = Instant::now();
            match instances[*target].handle().timer().await {
                Ok((200, text)) => {
                    timer_ok += 1;
                    let ms = started.elapsed().as_secs_f64() * 1000.0;
                    rotation_ms.push(ms);
                    slowest.push((ms, hour, label.clone(), previous.clone()));
                    shared.rotation_succeeded(started);
                    responses.lock().unwrap().push(text);
                }
                Ok((status, text)) => {
                    timer_failed += 1;
                    if fault.as_ref().and_then(Injected::outage).is_none() {
                        notes.push(format!(
                            "hour {hour} [{label}]: a timer trigger answered {status}"
                        ));
                    }
                    responses.lock().unwrap().push(text);
                }
                Err(e) => {
                    timer_failed += 1;
                    notes.push(format!(
                        "hour {hour} [{label}]: a timer trigger got no answer: {e}"
                    ));
                }
            }
            next += schedule::OUTAGE_TRIGGER_EVERY;
            let now = Instant::now();
            if now >= until {
                break;
            }
            tokio::time::sleep(next.min(until) - now).await;
            if Instant::now() >= until {
                break;
            }
        }

        if let Some(defect) = step.defect {
            let start = Instant::now();
            harness.inject(defect, &mut consumer).await?;
            injections.push(Injection {
                hour,
                name: defect.label().into(),
                expected: defect.expected(),
                file: defect.file(),
                start,
                end: Instant::now(),
            });
        }

        if let Some(order) = &step.burst {
            bursts += 1;
            // A forced trigger wants a set minted after it arrived: one that arrives after
            // another's mint rightly mints again. STS held 300 ms (unless the hour's fault set
            // a latency) lets all arrive before the first mint, as in tests/e2e/lease.rs.
            let held = bed.sts.faults.latency().is_zero();
            if held {
                bed.sts.faults.set_latency(Duration::from_millis(300));
            }
            let before = bed.sts.minted().len();
            let started = Instant::now();
            let answers = futures::future::join_all(order.iter().map(|&i| {
                let handle = instances[i].handle();
                async move {
                    let sent = started.elapsed();
                    let answer = handle.http_rotate(&[("force", "true")]).await;
                    (i, sent, started.elapsed(), answer)
                }
            }))
            .await;
            let mints = bed.sts.minted().len() - before;
            if held {
                bed.sts.faults.set_latency(Duration::ZERO);
            }
            *burst_mints.entry(mints).or_default() += 1;
            let mut any_ok = false;
            let mut triggers = vec![];
            for (instance, sent, answered, answer) in answers {
                let (ok, text) = answer.unwrap_or_default();
                let report = rotation_report(&text);
                triggers.push(check::BurstTrigger {
                    instance,
                    sent,
                    answered,
                    run: report.as_ref().map(|r| r.1),
                    rotated: ok && report.is_some_and(|r| r.0),
                });
                any_ok |= ok;
                responses.lock().unwrap().push(text);
            }
            if any_ok {
                shared.rotation_succeeded(started);
            }
            let details = triggers
                .iter()
                .map(check::BurstTrigger::describe)
                .collect::<Vec<_>>()
                .join("; ");
            if mints > 1 {
                notes.push(format!(
                    "hour {hour} [{label}]: a burst of {} forced triggers minted {mints} times ({details})",
                    order.len()
                ));
            }
            let unexplained = check::unexplained_mints(mints, &triggers);
            if unexplained > 1 && !fault.as_ref().is_some_and(|f| f.kind().storage_down()) {
                shared.violate(
                    What::BurstMintedTwice,
                    format!(
                        "a burst of {} forced triggers minted {mints} times with storage up, {unexplained} of them by triggers whose runs began before the first set was answered ({details})",
                        order.len()
                    ),
                );
            }
        }

        if let Some(i) = step.key_rotation {
            *faults.entry(Kind::KeyRotation).or_default() += 1;
            let started = Instant::now();
            if let Ok((ok, text)) = instances[i]
                .handle()
                .http_rotate(&[("rotateSourceKey", "true")])
                .await
            {
                if ok {
                    shared.rotation_succeeded(started);
                }
                responses.lock().unwrap().push(text);
            }
        }
        schedule::clear(&bed);
        if let Some(f) = fault {
            let end = fault_end.unwrap_or_else(Instant::now);
            match declared {
                true => windows.push(Window {
                    kind: f.kind(),
                    hour,
                    label: label.clone(),
                    start: fault_start,
                    end,
                }),
                false => injections.push(Injection {
                    hour,
                    name: format!("an undeclared {label}"),
                    expected: What::ReaderFailed,
                    file: None,
                    start: fault_start,
                    end,
                }),
            }
        }
        previous = label;
        // A pause (self-test) is time passing: the timer keeps firing, every 2 s.
        let until = Instant::now() + step.pause;
        while Instant::now() + Duration::from_secs(2) <= until {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let started = Instant::now();
            match instances[*target].handle().timer().await {
                Ok((200, text)) => {
                    timer_ok += 1;
                    shared.rotation_succeeded(started);
                    responses.lock().unwrap().push(text);
                }
                Ok((_, text)) => {
                    timer_failed += 1;
                    responses.lock().unwrap().push(text);
                }
                Err(_) => timer_failed += 1,
            }
        }
        if hour % 25 == 0 {
            eprintln!(
                "soak: hour {hour}/{}, {:.0} s, {} minted, {} violations",
                steps.len(),
                wall.elapsed().as_secs_f64(),
                bed.sts.minted().len(),
                shared.violations.lock().unwrap().len()
            );
        }
    }

    // The end: no faults; one more rotation (a dead holder's lease may take up to 15 s to go),
    // time for its side work and for the endpoint's next poll, then the readers stop and the
    // end state is checked.
    *shared.fault.lock().unwrap() = "none (end)".into();
    let mut settled = false;
    for _ in 0..5 {
        let started = Instant::now();
        if let Ok((true, text)) = instances[0]
            .handle()
            .http_rotate(&[("force", "true")])
            .await
        {
            shared.rotation_succeeded(started);
            responses.lock().unwrap().push(text);
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    if !settled {
        shared.violate(
            What::NoRecovery,
            "no rotation succeeded after the faults stopped".into(),
        );
    }
    tokio::time::sleep(ENDPOINT_POLL + Duration::from_secs(2)).await;
    shared.stop.store(true, Ordering::SeqCst);
    let monitor = monitor_task.await?;
    let process_stats = process_task.await?;
    let endpoint_stats = endpoint_task.await?;
    let end_rss: Vec<u64> = instances.iter().map(Instance::rss_kib).collect();

    let stored = bed
        .vault
        .latest(testbed::SOURCE_KEY_ID_SECRET)
        .context("the stored key id")?
        .value;
    let active: Vec<String> = bed
        .access_keys()
        .await?
        .into_iter()
        .filter(|(_, status)| status == "Active")
        .map(|(id, _)| id)
        .collect();
    if active != [stored.clone()] {
        shared.violate(
            What::IamKeys,
            format!("the IAM user ends with active keys {active:?}, the stored one is {stored}"),
        );
    }

    // Reader failures, judged now that every fault's recovery is known.
    let rotations = shared.rotated.lock().unwrap().clone();
    let starved = check::starved(&windows, &rotations);
    for s in starved.iter().filter(|s| !s.in_time) {
        shared.record(Violation {
            at: s.fault_end,
            hour: s.hour,
            fault: s.label.clone(),
            what: What::NoRecovery,
            text: format!(
                "no rotation succeeded within {} s of the outage's end",
                check::RECOVERY_CAP.as_secs()
            ),
        });
    }
    let failures = shared.failures.lock().unwrap().clone();
    let mut excused: BTreeMap<(Reader, Cause), u64> = BTreeMap::new();
    let mut unexcused = vec![];
    for f in failures {
        match check::excuse(&f, &windows, &starved, ENDPOINT_POLL) {
            Some(_) => *excused.entry((f.reader, f.cause)).or_default() += 1,
            None => unexcused.push(f),
        }
    }
    for (f, last, n) in check::coalesce(unexcused, Duration::from_secs(5)) {
        shared.record(Violation {
            at: f.start,
            hour: f.hour,
            fault: f.fault.clone(),
            what: What::ReaderFailed,
            text: format!(
                "{}: {n} read(s) failed ({}) over {:.1} s, no declared fault explains it: {}",
                f.reader.label(),
                f.cause.label(),
                (last - f.start).as_secs_f64(),
                f.detail
            ),
        });
    }
    let mut unavailable_excused = (0u32, 0u32, Duration::ZERO);
    for u in &monitor.unavailable {
        let length = u.end - u.start;
        match check::unavailable_excused(u.start, u.end, &starved) {
            Some(_) => {
                unavailable_excused.0 += 1;
                unavailable_excused.1 += u32::from(u.expired);
                unavailable_excused.2 = unavailable_excused.2.max(length);
            }
            None => shared.record(Violation {
                at: u.start,
                hour: u.hour,
                fault: u.fault.clone(),
                what: What::NoValidSetPublished,
                text: format!(
                    "for {:.1} s the latest bundle was disabled or its set within {} s of expiry{}",
                    length.as_secs_f64(),
                    MARGIN.as_secs(),
                    if u.expired { " (it expired)" } else { "" }
                ),
            }),
        }
    }

    // The secret search over everything captured.
    drop(consumer);
    drop(instances);
    let mut texts: Vec<(String, String, Vec<String>)> = vec![];
    for entry in std::fs::read_dir(logs.path())? {
        let path: PathBuf = entry?.path();
        texts.push((
            path.file_name().unwrap().to_string_lossy().into_owned(),
            String::from_utf8_lossy(&std::fs::read(&path)?).into_owned(),
            vec![],
        ));
    }
    texts.append(&mut std::mem::take(
        &mut shared.captured.lock().unwrap().texts,
    ));
    for r in responses.lock().unwrap().iter() {
        texts.push(("invocation answers".into(), r.clone(), vec![]));
    }
    let secrets = bed.secret_values();
    let captured: usize = texts.iter().map(|(_, t, _)| t.len()).sum();
    let mut leaks: BTreeMap<String, usize> = BTreeMap::new();
    for (name, text, own) in &texts {
        // A text meant to hold a set holds it (and the bundle that holds it): every other
        // secret is a leak.
        let leaked = secrets
            .iter()
            .filter(|s| !own.iter().any(|o| s.contains(o.as_str())))
            .filter(|s| text.contains(s.as_str()))
            .count();
        if leaked > 0 {
            *leaks.entry(name.clone()).or_default() += leaked;
        }
    }
    for (name, n) in leaks {
        shared.violate(
            What::SecretInOutput,
            format!("{n} secret value(s) in {name}"),
        );
    }

    let minted = bed.sts.minted().len();
    // How close the readers came to an expired set: the longest stretch without a rotation.
    let mut ends: Vec<Instant> = rotations.iter().map(|w| w.1).collect();
    ends.sort();
    let longest_gap = ends
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    let mut violations = shared.violations.lock().unwrap().clone();
    violations.sort_by_key(|v| v.at);
    // Nothing printed may hold a secret (a reader's message, say), whatever the search found.
    for v in &mut violations {
        for s in &secrets {
            if v.text.contains(s.as_str()) {
                v.text = v.text.replace(s.as_str(), "[REDACTED]");
            }
        }
    }

    let mut rows: Vec<(String, String)> = vec![
        (
            "seed, hours simulated (timer triggers)".into(),
            match config.self_test {
                true => format!("self-test, {}", steps.len()),
                false => format!("{}, {}", config.seed, steps.len()),
            },
        ),
        (
            "timer triggers answered 200 / not (an outage's repeated every 10 s)".into(),
            format!("{timer_ok} / {timer_failed}"),
        ),
        (
            "forced bursts (2-3 instances), mints per burst".into(),
            format!(
                "{bursts}, {}",
                burst_mints
                    .iter()
                    .map(|(m, n)| format!("{m} mint(s): {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        (
            "rotations (sets minted by the STS front)".into(),
            minted.to_string(),
        ),
        (
            "instances killed mid-rotation and restarted".into(),
            restarts.to_string(),
        ),
    ];
    for kind in schedule::SHORT
        .iter()
        .chain(&schedule::OUTAGES)
        .chain([&Kind::KeyRotation])
    {
        rows.push((
            format!("faults: {}", kind.label()),
            faults.get(kind).copied().unwrap_or(0).to_string(),
        ));
    }
    rows.push((
        "outages, total length".into(),
        format!("{} s", outage_total.as_secs()),
    ));
    let versions = monitor
        .versions_checked
        .iter()
        .map(|(name, n)| format!("{name}: {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let excused_of = |reader: Reader| {
        let parts: Vec<String> = excused
            .iter()
            .filter(|((r, _), _)| *r == reader)
            .map(|((_, c), n)| format!("{}: {n}", c.label()))
            .collect();
        format!("[{}]", parts.join(", "))
    };
    let failed = |s: &readers::ReaderStats| s.failed.values().sum::<u64>();
    rows.extend([
        (
            "published versions checked against STS's expiry".into(),
            versions,
        ),
        (
            "stretches with no valid set published, all in outages: count, of them expired, longest".into(),
            format!(
                "{}, {}, {:.1} s",
                unavailable_excused.0,
                unavailable_excused.1,
                unavailable_excused.2.as_secs_f64()
            ),
        ),
        (
            "credential-process: runs, good sets, failures excused by a declared fault".into(),
            format!(
                "{}, {}, {} {}",
                process_stats.reads,
                process_stats.good,
                failed(&process_stats),
                excused_of(Reader::CredentialProcess)
            ),
        ),
        (
            "serve-credentials: requests, good sets, failures excused by a declared fault".into(),
            format!(
                "{}, {}, {} {}",
                endpoint_stats.reads,
                endpoint_stats.good,
                failed(&endpoint_stats),
                excused_of(Reader::Endpoint)
            ),
        ),
        (
            "longest separate-secrets disagreement with the bundle".into(),
            format!(
                "{:.1} s (began in {})",
                monitor.longest_disagreement.as_secs_f64(),
                if monitor.longest_disagreement_began.is_empty() {
                    "-"
                } else {
                    &monitor.longest_disagreement_began
                }
            ),
        ),
        (
            "secret search: values x captured bytes".into(),
            format!("{} x {} in {} texts", secrets.len(), captured, texts.len()),
        ),
        (
            "longest stretch without a successful rotation".into(),
            format!(
                "{:.1} s (sets live {} s)",
                longest_gap.as_secs_f64(),
                lifetime.as_secs()
            ),
        ),
        ("invariant violations".into(), violations.len().to_string()),
    ]);
    if !rotation_ms.is_empty() {
        rows.push((
            "rotation time p50 / p99 (timer triggers answered 200)".into(),
            format!(
                "{:.0} / {:.0} ms",
                percentile(rotation_ms.clone(), 0.5),
                percentile(rotation_ms, 0.99)
            ),
        ));
    }
    for (i, (s, e)) in start_rss.iter().zip(&end_rss).enumerate() {
        rows.push((
            format!(
                "RSS of instance {i}, start / end (restarted {} times)",
                restarted[i]
            ),
            format!("{:.1} / {:.1} MiB", *s as f64 / 1024.0, *e as f64 / 1024.0),
        ));
    }
    rows.push((
        "wall time".into(),
        format!("{:.0} s", wall.elapsed().as_secs_f64()),
    ));
    println!();
    println!(
        "| soak (STS lifetime {} s, {INSTANCES} instances) | value |",
        lifetime.as_secs()
    );
    println!("|---|---|");
    for (what, value) in &rows {
        println!("| {what} | {value} |");
    }
    slowest.sort_by(|a, b| b.0.total_cmp(&a.0));
    println!();
    println!("slowest timer triggers answered 200:");
    for (ms, hour, fault, before) in slowest.iter().take(8) {
        println!("- {ms:.0} ms, hour {hour} [{fault}] (the hour before: [{before}])");
    }
    if config.keep_logs {
        println!();
        println!("logs kept in {}", logs.keep().display());
    }
    if !notes.is_empty() {
        println!();
        println!("notes (not violations):");
        for n in &notes {
            println!("- {n}");
        }
    }
    if !violations.is_empty() {
        println!();
        println!("invariant violations:");
        let mut kinds: BTreeMap<What, Vec<&Violation>> = BTreeMap::new();
        for v in &violations {
            kinds.entry(v.what).or_default().push(v);
        }
        for (what, vs) in kinds {
            println!("- {} ({}):", what.label(), vs.len());
            for v in vs.iter().take(10) {
                println!("  - {}", line(shared.started, v));
            }
            if vs.len() > 10 {
                println!("  - … and {} more", vs.len() - 10);
            }
        }
    }

    if !config.self_test {
        println!();
        match violations.len() {
            0 => println!("soak: passed (0 violations)"),
            n => println!("soak: FAILED ({n} violations)"),
        }
        return Ok(violations.is_empty());
    }
    let (reported, stray) = self_test::verdict(&injections, &violations);
    println!();
    println!("| self-test: injected | expected violation | reported |");
    println!("|---|---|---|");
    for (i, vs) in &reported {
        println!(
            "| {} | {} | {} |",
            i.name,
            i.expected.label(),
            match vs.first() {
                Some(v) => format!(
                    "yes, {} time(s); first: {}",
                    vs.len(),
                    line(shared.started, v)
                ),
                None => "**NO**".into(),
            }
        );
    }
    let passed = reported.iter().all(|(_, vs)| !vs.is_empty()) && stray.is_empty();
    if !stray.is_empty() {
        println!();
        println!("violations no injected defect explains (the declared outage's included):");
        for v in &stray {
            println!("- {}", line(shared.started, v));
        }
    }
    println!();
    println!(
        "soak --self-test: {}",
        match passed {
            true => "passed: every injected defect was reported, and nothing else",
            false => "FAILED",
        }
    );
    Ok(passed)
}

/// What a forced `HttpRotate`'s answer says of its run: whether it minted, and how long it took.
fn rotation_report(answer: &str) -> Option<(bool, Duration)> {
    let envelope: Value = serde_json::from_str(answer).ok()?;
    let body: Value = serde_json::from_str(envelope["Outputs"]["res"]["body"].as_str()?).ok()?;
    Some((
        body["rotated"].as_bool()?,
        Duration::from_millis(body["durationMs"].as_u64()?),
    ))
}

fn short_label(kind: Kind) -> &'static str {
    match kind {
        Kind::StsOutage => "STS",
        Kind::VaultOutage => "Key Vault",
        Kind::StorageOutage => "storage",
        _ => kind.label(),
    }
}
