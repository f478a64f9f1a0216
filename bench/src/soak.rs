//! The soak (issue #21): `stsbridge-bench --soak [--seed N] [--hours H]`. Not part of CI.
//!
//! Three `stsbridge serve` instances share one vault and one storage account (Azurite: the
//! rotation lease); a `serve-credentials` consumer is queried every 100 ms with its token, and a
//! plain bundle reader reads the vault's bundle (and the three separate secrets) every 100 ms,
//! in-process. Every process runs on a real clock, so time is compressed by the number of
//! triggers, not the clock: one "hour" is one `TimerRotate` invocation to one instance
//! (`MinRotationIntervalSeconds=0`, so each one rotates), sometimes followed by a burst of forced
//! `HttpRotate`s to several instances at once (STS held 300 ms meanwhile, so all of them arrive
//! before the first mint). The STS front's lifetime override makes every set
//! expire 60 s after it is minted, so "no reader ever got an expired set" can actually fail.
//!
//! Faults are drawn from a seeded `StdRng` (the same seed, the same schedule; the processes'
//! timing still varies) and are active for one hour each: Key Vault 5xx / 429 / dropped
//! connections / latency, STS throttling and refusals, IAM slow or denied (`ListAccessKeys`),
//! storage down or slow (the test bed's relay), ARM refusing or hanging (`RefreshAppSettingsOf`
//! names a registered app), SIGKILL of an instance mid-rotation (then a restart), and, now and
//! then, an IAM key rotation requested (`?rotateSourceKey=true`).
//!
//! Invariants, checked as the run goes and at its end; each breach is listed with its hour and
//! the fault active then:
//! - no reader got a set that was expired, malformed, or not one the STS front minted;
//! - the three separate secrets never disagreed with the bundle past the end of a successful
//!   rotation that started after the disagreement was first seen ("longer than one rotation");
//! - the IAM user ends with exactly one active key, the stored one;
//! - a burst of forced triggers mints at most once while storage is up;
//! - no secret value of the test bed's (source key, minted secrets and session tokens, vault
//!   values) in any instance's or the consumer's stdout/stderr, or in any invocation's answer.

use std::collections::{BTreeMap, HashMap};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use serde_json::{json, Value};
use testbed::{Fault, Options, Rule, TestBed};

use crate::{env_of, free_port, memory_kib, percentile};

const BUNDLE: &str = "AwsSessionCredentials";
/// The separate secrets, in the bundle's field order (id, secret, token).
const SEPARATE: [&str; 3] = ["AccessKeyId", "SecretAccessKey", "SessionToken"];
const CONSUMER_APP: &str = "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg/providers/Microsoft.Web/sites/soak-consumer";
const INSTANCES: usize = 3;
const LIFETIME: Duration = Duration::from_secs(60);
/// The chance that an hour has a fault.
const FAULT_CHANCE: f64 = 0.4;
/// The chance that an hour has a burst of forced triggers after its timer trigger.
const BURST_CHANCE: f64 = 0.3;
/// The chance that an hour asks an instance to rotate the IAM key.
const KEY_ROTATION_CHANCE: f64 = 0.03;

/// The faults one hour may have (at most one per hour, besides a key rotation request).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Vault5xx,
    Vault429,
    VaultDropped,
    VaultLatency,
    StsThrottled,
    StsRefused,
    IamSlow,
    IamDenied,
    StorageDown,
    StorageSlow,
    ArmRefusing,
    ArmHanging,
    Kill,
    KeyRotation,
}

const KINDS: [Kind; 13] = [
    Kind::Vault5xx,
    Kind::Vault429,
    Kind::VaultDropped,
    Kind::VaultLatency,
    Kind::StsThrottled,
    Kind::StsRefused,
    Kind::IamSlow,
    Kind::IamDenied,
    Kind::StorageDown,
    Kind::StorageSlow,
    Kind::ArmRefusing,
    Kind::ArmHanging,
    Kind::Kill,
];

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Vault5xx => "Key Vault 503 (1-3 requests)",
            Kind::Vault429 => "Key Vault 429 (1-2 requests)",
            Kind::VaultDropped => "Key Vault dropped connection",
            Kind::VaultLatency => "Key Vault latency 200-800 ms",
            Kind::StsThrottled => "STS throttling (1-3 GetSessionToken)",
            Kind::StsRefused => "STS refusal (AccessDenied)",
            Kind::IamSlow => "IAM slow (ListAccessKeys 2-5 s)",
            Kind::IamDenied => "IAM denied (ListAccessKeys)",
            Kind::StorageDown => "storage down (relay closes)",
            Kind::StorageSlow => "storage latency 200-800 ms",
            Kind::ArmRefusing => "ARM refusing (AuthorizationFailed)",
            Kind::ArmHanging => "ARM hanging (never answers)",
            Kind::Kill => "SIGKILL mid-rotation + restart",
            Kind::KeyRotation => "IAM key rotation requested",
        }
    }
}

/// What the run shares with its readers.
struct Shared {
    started: Instant,
    stop: AtomicBool,
    hour: AtomicU32,
    fault: Mutex<&'static str>,
    violations: Mutex<Vec<String>>,
    /// (start, end) of every invocation that answered a successful rotation.
    rotated: Mutex<Vec<(Instant, Instant)>>,
}

impl Shared {
    fn violate(&self, what: String) {
        let line = format!(
            "t={:.1}s hour {} [{}]: {what}",
            self.started.elapsed().as_secs_f64(),
            self.hour.load(Ordering::SeqCst),
            self.fault.lock().unwrap()
        );
        eprintln!("soak: VIOLATION {line}");
        self.violations.lock().unwrap().push(line);
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

/// A set a reader got, checked against what the STS front minted; `None` when it is good.
fn check_set(
    id: Option<&str>,
    secret: Option<&str>,
    token: Option<&str>,
    expiration: Option<&str>,
    minted: &HashMap<String, testbed::sts::Minted>,
) -> Option<String> {
    let (Some(id), Some(secret), Some(token), Some(expiration)) = (id, secret, token, expiration)
    else {
        return Some("malformed: a field is missing".into());
    };
    let Some(m) = minted.get(id) else {
        return Some(format!("{id} was not minted by the STS front"));
    };
    if m.secret_access_key != secret || m.session_token != token {
        return Some(format!("{id}: secret or token differ from what STS minted"));
    }
    let Ok(expires) = chrono::DateTime::parse_from_rfc3339(expiration) else {
        return Some(format!("{id}: malformed Expiration {expiration:?}"));
    };
    let left = expires.with_timezone(&chrono::Utc) - chrono::Utc::now();
    if left < chrono::Duration::zero() {
        return Some(format!(
            "{id}: expired {:.1} s before it was read",
            -left.num_milliseconds() as f64 / 1000.0
        ));
    }
    None
}

fn minted_by_id(bed_sts: &testbed::sts::StsFront) -> HashMap<String, testbed::sts::Minted> {
    bed_sts
        .minted()
        .into_iter()
        .map(|m| (m.access_key_id.clone(), m))
        .collect()
}

#[derive(Default)]
struct ReaderStats {
    reads: u64,
    good: u64,
    other: BTreeMap<String, u64>,
    longest_disagreement: Duration,
    /// The hour (and its fault) in which the longest disagreement began.
    longest_disagreement_began: String,
}

/// The plain bundle reader: the vault's bundle and separate secrets every 100 ms.
async fn bundle_reader(
    vault: Arc<testbed::keyvault::KeyVault>,
    sts: Arc<testbed::sts::StsFront>,
    shared: Arc<Shared>,
) -> ReaderStats {
    let mut stats = ReaderStats::default();
    let mut disagreeing: Option<(Instant, bool, String)> = None;
    while !shared.stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        stats.reads += 1;
        let Some(bundle) = vault.latest(BUNDLE) else {
            *stats.other.entry("no bundle".into()).or_default() += 1;
            continue;
        };
        let minted = minted_by_id(&sts);
        let Ok(v) = serde_json::from_str::<Value>(&bundle.value) else {
            shared.violate("bundle reader: the bundle is not JSON".into());
            continue;
        };
        let fields = ["AccessKeyId", "SecretAccessKey", "SessionToken"].map(|f| v[f].as_str());
        if v["Version"] != 1 {
            shared.violate("bundle reader: the bundle's Version is not 1".into());
        }
        match check_set(
            fields[0],
            fields[1],
            fields[2],
            v["Expiration"].as_str(),
            &minted,
        ) {
            Some(problem) => shared.violate(format!("bundle reader: {problem}")),
            None => stats.good += 1,
        }
        let agree = SEPARATE
            .iter()
            .zip(fields)
            .all(|(name, field)| vault.latest(name).map(|s| s.value).as_deref() == field);
        match (agree, &mut disagreeing) {
            (true, d) => {
                if let Some((since, _, began)) = d.take() {
                    stats.note_disagreement(since, began);
                }
            }
            (false, None) => {
                let began = format!(
                    "hour {} [{}]",
                    shared.hour.load(Ordering::SeqCst),
                    shared.fault.lock().unwrap()
                );
                disagreeing = Some((Instant::now(), false, began));
            }
            (false, Some((since, reported, _))) => {
                if !*reported && shared.rotated_since(*since, Duration::from_millis(300)) {
                    *reported = true;
                    shared.violate(format!(
                        "the separate secrets disagree with the bundle for {:.1} s, past a whole successful rotation",
                        since.elapsed().as_secs_f64()
                    ));
                }
            }
        }
    }
    if let Some((since, _, began)) = disagreeing {
        stats.note_disagreement(since, format!("{began}, still open at the end"));
    }
    stats
}

impl ReaderStats {
    fn note_disagreement(&mut self, since: Instant, began: String) {
        if since.elapsed() > self.longest_disagreement {
            self.longest_disagreement = since.elapsed();
            self.longest_disagreement_began = began;
        }
    }
}

/// The `serve-credentials` client: a GET with the token every 100 ms.
async fn endpoint_reader(
    url: String,
    token: String,
    sts: Arc<testbed::sts::StsFront>,
    shared: Arc<Shared>,
) -> ReaderStats {
    let mut stats = ReaderStats::default();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("a client");
    while !shared.stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        stats.reads += 1;
        let answer = match http.get(&url).header("authorization", &token).send().await {
            Ok(r) => r,
            Err(_) => {
                *stats.other.entry("connection error".into()).or_default() += 1;
                continue;
            }
        };
        let status = answer.status().as_u16();
        let body = answer.bytes().await.unwrap_or_default();
        if status != 200 {
            *stats.other.entry(format!("{status}")).or_default() += 1;
            continue;
        }
        let Ok(v) = serde_json::from_slice::<Value>(&body) else {
            shared.violate("serve-credentials: a 200 whose body is not JSON".into());
            continue;
        };
        let minted = minted_by_id(&sts);
        match check_set(
            v["AccessKeyId"].as_str(),
            v["SecretAccessKey"].as_str(),
            v["Token"].as_str(),
            v["Expiration"].as_str(),
            &minted,
        ) {
            Some(problem) => shared.violate(format!("serve-credentials: {problem}")),
            None => stats.good += 1,
        }
    }
    stats
}

/// Installs one hour's fault (not `Kill`, which the loop does itself).
fn install(bed: &TestBed, kind: Kind, rng: &mut StdRng) {
    let ms = |rng: &mut StdRng| Duration::from_millis(rng.random_range(200..=800));
    match kind {
        Kind::Vault5xx => bed.vault.faults.add(
            Rule::any(Fault::error(
                503,
                "ServiceUnavailable",
                "The service is unavailable.",
            ))
            .times(rng.random_range(1..=3)),
        ),
        Kind::Vault429 => bed
            .vault
            .faults
            .add(Rule::any(Fault::throttled(1)).times(rng.random_range(1..=2))),
        Kind::VaultDropped => {
            let fault = if rng.random_bool(0.5) {
                Fault::Drop
            } else {
                Fault::CommitThenDrop
            };
            let op = ["get", "set"][rng.random_range(0..2)];
            bed.vault.faults.add(Rule::on(op, fault).times(1));
        }
        Kind::VaultLatency => bed.vault.faults.set_latency(ms(rng)),
        Kind::StsThrottled => bed.sts.faults.add(
            Rule::on(
                "GetSessionToken",
                Fault::error(400, "Throttling", "Rate exceeded"),
            )
            .times(rng.random_range(1..=3)),
        ),
        Kind::StsRefused => bed.sts.faults.add(
            Rule::on(
                "GetSessionToken",
                Fault::error(
                    403,
                    "AccessDenied",
                    "User is not authorized to perform: sts:GetSessionToken",
                ),
            )
            .times(1),
        ),
        Kind::IamSlow => bed.sts.faults.add(Rule::on(
            "ListAccessKeys",
            Fault::Delay(Duration::from_millis(rng.random_range(2000..=5000))),
        )),
        Kind::IamDenied => bed.sts.faults.add(Rule::on(
            "ListAccessKeys",
            Fault::error(
                403,
                "AccessDenied",
                "not authorized to perform iam:ListAccessKeys",
            ),
        )),
        Kind::StorageDown => bed.storage.as_ref().expect("storage").set_down(true),
        Kind::StorageSlow => bed.storage.as_ref().expect("storage").set_latency(ms(rng)),
        Kind::ArmRefusing => bed
            .arm
            .faults
            .add(Rule::any(testbed::arm::authorization_failed(
                "soak-consumer",
            ))),
        Kind::ArmHanging => bed
            .arm
            .faults
            .add(Rule::any(Fault::Delay(Duration::from_secs(600)))),
        Kind::Kill | Kind::KeyRotation => {}
    }
}

fn clear_faults(bed: &TestBed) {
    bed.vault.faults.clear();
    bed.vault.faults.set_latency(Duration::ZERO);
    bed.sts.faults.clear();
    bed.sts.faults.set_latency(Duration::ZERO);
    bed.arm.faults.clear();
    let storage = bed.storage.as_ref().expect("storage");
    storage.set_down(false);
    storage.set_latency(Duration::ZERO);
}

/// `serve-credentials`, its two export lines read; stderr appended to `log`.
async fn start_consumer(
    bin: &Path,
    env: &HashMap<String, String>,
    home: &Path,
    log: &Path,
) -> anyhow::Result<(Child, String, String)> {
    let err = OpenOptions::new().create(true).append(true).open(log)?;
    let mut child = Command::new(bin)
        .arg("serve-credentials")
        .env_clear()
        .env("HOME", home)
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err)
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let lines = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut reader = std::io::BufReader::new(stdout);
        let mut lines = vec![];
        for _ in 0..2 {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            lines.push(line.trim_end().to_string());
        }
        // Keep reading (nothing more is expected) so the pipe never fills or breaks.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        Ok::<_, std::io::Error>(lines)
    })
    .await??;
    let value = |line: &str| {
        line.split_once('=')
            .map(|(_, v)| v.trim_matches('\'').to_string())
            .unwrap_or_default()
    };
    anyhow::ensure!(
        lines[0].contains("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
        "serve-credentials did not start: {:?}",
        lines[0]
    );
    let (url, token) = (value(&lines[0]), value(&lines[1]));
    Ok((child, url, token))
}

pub async fn soak(bin: &Path, seed: u64, hours: u32, keep_logs: bool) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(seed);
    let wall = Instant::now();
    let bed = TestBed::start_with(Options {
        storage: true,
        ..Default::default()
    })
    .await?;
    bed.sts.set_lifetime(Some(LIFETIME));
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
    let consumer_log = logs.path().join("serve-credentials.log");
    let (consumer, url, token) =
        start_consumer(bin, &env, consumer_home.path(), &consumer_log).await?;
    let consumer_guard = crate::KillOnDrop(consumer);

    let shared = Arc::new(Shared {
        started: Instant::now(),
        stop: AtomicBool::new(false),
        hour: AtomicU32::new(0),
        fault: Mutex::new("none"),
        violations: Mutex::default(),
        rotated: Mutex::default(),
    });
    let bundle_task = tokio::spawn(bundle_reader(
        bed.vault.clone(),
        bed.sts.clone(),
        shared.clone(),
    ));
    let endpoint_task = tokio::spawn(endpoint_reader(url, token, bed.sts.clone(), shared.clone()));

    let mut faults: BTreeMap<Kind, u32> = BTreeMap::new();
    let (mut timer_ok, mut timer_failed, mut bursts, mut restarts) = (0u32, 0u32, 0u32, 0u32);
    let mut rotation_ms = vec![];
    let label = |kind: Option<Kind>| kind.map_or("none", Kind::label);
    // What is not a violation but worth reading: failed timer triggers, bursts minting more than once.
    let mut notes: Vec<String> = vec![];
    let mut restarted = [0u32; INSTANCES];
    // (ms, hour, the hour's fault): the slowest are listed, to tell which fault made them slow.
    let mut slowest: Vec<(f64, u32, &str, &str)> = vec![];
    let mut previous: Option<Kind> = None;
    let mut burst_mints: BTreeMap<usize, u32> = BTreeMap::new();
    for hour in 1..=hours {
        shared.hour.store(hour, Ordering::SeqCst);
        let kind = rng
            .random_bool(FAULT_CHANCE)
            .then(|| KINDS[rng.random_range(0..KINDS.len())]);
        *shared.fault.lock().unwrap() = kind.map_or("none", Kind::label);
        if let Some(kind) = kind {
            *faults.entry(kind).or_default() += 1;
            install(&bed, kind, &mut rng);
        }

        if kind == Some(Kind::Kill) {
            // A rotation held up at STS, its instance killed while it holds the lease. Never
            // instance 0: it lives the whole run, so its RSS at the start and the end measures
            // growth (the others' end figures are of restarted processes).
            let victim = rng.random_range(1..INSTANCES);
            bed.sts.faults.set_latency(Duration::from_millis(1500));
            let handle = instances[victim].handle();
            let trigger =
                tokio::spawn(async move { handle.http_rotate(&[("force", "true")]).await });
            tokio::time::sleep(Duration::from_millis(rng.random_range(200..=1200))).await;
            instances[victim].kill();
            instances[victim] = Instance::spawn(bin, &env, &log_of(victim)).await?;
            let _ = trigger.await;
            bed.sts.faults.set_latency(Duration::ZERO);
            restarts += 1;
            restarted[victim] += 1;
        }

        let target = rng.random_range(0..INSTANCES);
        let started = Instant::now();
        match instances[target].handle().timer().await {
            Ok((200, text)) => {
                timer_ok += 1;
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                rotation_ms.push(ms);
                slowest.push((ms, hour, label(kind), label(previous)));
                shared
                    .rotated
                    .lock()
                    .unwrap()
                    .push((started, Instant::now()));
                responses.lock().unwrap().push(text);
            }
            Ok((status, text)) => {
                timer_failed += 1;
                notes.push(format!(
                    "hour {hour} [{}]: a timer trigger answered {status}",
                    label(kind)
                ));
                responses.lock().unwrap().push(text);
            }
            Err(e) => {
                timer_failed += 1;
                notes.push(format!(
                    "hour {hour} [{}]: a timer trigger got no answer: {e}",
                    label(kind)
                ));
            }
        }

        if rng.random_bool(BURST_CHANCE) {
            bursts += 1;
            let mut order: Vec<usize> = (0..INSTANCES).collect();
            order.shuffle(&mut rng);
            order.truncate(rng.random_range(2..=INSTANCES));
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
                async move { handle.http_rotate(&[("force", "true")]).await }
            }))
            .await;
            let mints = bed.sts.minted().len() - before;
            if held {
                bed.sts.faults.set_latency(Duration::ZERO);
            }
            *burst_mints.entry(mints).or_default() += 1;
            let mut any_ok = false;
            for (ok, text) in answers.into_iter().flatten() {
                any_ok |= ok;
                responses.lock().unwrap().push(text);
            }
            if any_ok {
                shared
                    .rotated
                    .lock()
                    .unwrap()
                    .push((started, Instant::now()));
            }
            if mints > 1 {
                notes.push(format!(
                    "hour {hour} [{}]: a burst of {} forced triggers minted {mints} times",
                    label(kind),
                    order.len()
                ));
            }
            if mints > 1 && kind != Some(Kind::StorageDown) {
                shared.violate(format!(
                    "a burst of {} forced triggers minted {mints} times with storage up",
                    order.len()
                ));
            }
        }

        if rng.random_bool(KEY_ROTATION_CHANCE) {
            *faults.entry(Kind::KeyRotation).or_default() += 1;
            let i = rng.random_range(0..INSTANCES);
            let started = Instant::now();
            if let Ok((ok, text)) = instances[i]
                .handle()
                .http_rotate(&[("rotateSourceKey", "true")])
                .await
            {
                if ok {
                    shared
                        .rotated
                        .lock()
                        .unwrap()
                        .push((started, Instant::now()));
                }
                responses.lock().unwrap().push(text);
            }
        }
        clear_faults(&bed);
        previous = kind;
        if hour % 25 == 0 {
            eprintln!(
                "soak: hour {hour}/{hours}, {:.0} s, {} minted, {} violations",
                wall.elapsed().as_secs_f64(),
                bed.sts.minted().len(),
                shared.violations.lock().unwrap().len()
            );
        }
    }

    // The end: no faults; one more rotation (a dead holder's lease may take up to 15 s to go),
    // time for its side work, then the readers stop and the end state is checked.
    *shared.fault.lock().unwrap() = "none (end)";
    let mut settled = false;
    for _ in 0..5 {
        if let Ok((true, text)) = instances[0]
            .handle()
            .http_rotate(&[("force", "true")])
            .await
        {
            responses.lock().unwrap().push(text);
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    if !settled {
        shared.violate("no rotation succeeded after the faults stopped".into());
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    shared.stop.store(true, Ordering::SeqCst);
    let bundle_stats = bundle_task.await?;
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
        shared.violate(format!(
            "the IAM user ends with active keys {active:?}, the stored one is {stored}"
        ));
    }

    drop(consumer_guard);
    drop(instances);
    let mut texts: Vec<(String, String)> = vec![];
    for entry in std::fs::read_dir(logs.path())? {
        let path: PathBuf = entry?.path();
        texts.push((
            path.file_name().unwrap().to_string_lossy().into_owned(),
            String::from_utf8_lossy(&std::fs::read(&path)?).into_owned(),
        ));
    }
    for (i, r) in responses.lock().unwrap().iter().enumerate() {
        texts.push((format!("invocation answer {i}"), r.clone()));
    }
    let secrets = bed.secret_values();
    let captured: usize = texts.iter().map(|(_, t)| t.len()).sum();
    for (name, text) in &texts {
        let leaked = secrets.iter().filter(|s| text.contains(s.as_str())).count();
        if leaked > 0 {
            shared.violate(format!("{leaked} secret value(s) in {name}"));
        }
    }

    let minted = bed.sts.minted().len();
    // How close the readers came to an expired set: the longest stretch without a rotation.
    let mut ends: Vec<Instant> = shared.rotated.lock().unwrap().iter().map(|w| w.1).collect();
    ends.sort();
    let longest_gap = ends
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    let violations = shared.violations.lock().unwrap().clone();
    let mut rows: Vec<(String, String)> = vec![
        ("seed".into(), seed.to_string()),
        ("hours simulated (timer triggers)".into(), hours.to_string()),
        (
            "timer triggers answered 200 / not".into(),
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
    for kind in KINDS.iter().chain([&Kind::KeyRotation]) {
        rows.push((
            format!("faults: {}", kind.label()),
            faults.get(kind).copied().unwrap_or(0).to_string(),
        ));
    }
    let other = |s: &ReaderStats| {
        s.other
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    rows.extend([
        (
            "bundle reader: reads, good sets, other".into(),
            format!(
                "{}, {}, [{}]",
                bundle_stats.reads,
                bundle_stats.good,
                other(&bundle_stats)
            ),
        ),
        (
            "bundle reader: longest separate-secrets disagreement".into(),
            format!(
                "{:.1} s (began in {})",
                bundle_stats.longest_disagreement.as_secs_f64(),
                bundle_stats.longest_disagreement_began
            ),
        ),
        (
            "serve-credentials: requests, good sets, other answers".into(),
            format!(
                "{}, {}, [{}]",
                endpoint_stats.reads,
                endpoint_stats.good,
                other(&endpoint_stats)
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
                LIFETIME.as_secs()
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
        LIFETIME.as_secs()
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
    if keep_logs {
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
        for v in &violations {
            println!("- {v}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minted(id: &str, expiration: &str) -> HashMap<String, testbed::sts::Minted> {
        let m = testbed::sts::Minted {
            access_key_id: id.into(),
            secret_access_key: "secret".into(),
            session_token: "token".into(),
            expiration: expiration.into(),
            arn: "arn:aws:iam::123456789012:user/u".into(),
            account: "123456789012".into(),
            user_id: "AIDA".into(),
            issued: chrono::Utc::now(),
            kind: testbed::sts::SessionKind::UserSession,
        };
        HashMap::from([(id.to_string(), m)])
    }

    #[test]
    fn a_set_the_sts_front_minted_and_not_expired_passes() {
        let later = (chrono::Utc::now() + chrono::Duration::seconds(60)).to_rfc3339();
        let known = minted("ASIA1", &later);
        let check = |id, secret, token| {
            check_set(Some(id), Some(secret), Some(token), Some(&later), &known)
        };
        assert_eq!(check("ASIA1", "secret", "token"), None);
        assert!(check("ASIA2", "secret", "token")
            .unwrap()
            .contains("not minted"));
        assert!(check("ASIA1", "other", "token").unwrap().contains("differ"));
    }

    #[test]
    fn an_expired_or_malformed_set_is_a_violation() {
        let earlier = (chrono::Utc::now() - chrono::Duration::seconds(1)).to_rfc3339();
        let known = minted("ASIA1", &earlier);
        let expired = check_set(
            Some("ASIA1"),
            Some("secret"),
            Some("token"),
            Some(&earlier),
            &known,
        );
        assert!(expired.unwrap().contains("expired"));
        let missing = check_set(Some("ASIA1"), None, Some("token"), Some(&earlier), &known);
        assert!(missing.unwrap().contains("malformed"));
        let garbled = check_set(
            Some("ASIA1"),
            Some("secret"),
            Some("token"),
            Some("soon"),
            &known,
        );
        assert!(garbled.unwrap().contains("malformed Expiration"));
    }
}
