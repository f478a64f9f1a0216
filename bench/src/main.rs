//! stsbridge benchmarks against the local test bed (`scripts/bench.sh`; results in BENCHMARKS.md,
//! which this program writes, whole, from one run).
//!
//! Measures a release `stsbridge` binary as the Functions host runs it: `serve` on a port, driven
//! by invocations over HTTP, with the test bed's servers (Key Vault over TLS with its bearer
//! challenge, the identity endpoint, STS/IAM over moto, Roles Anywhere, storage, Resource
//! Manager). Round trips are counted from the servers' request logs ([`trips`]); each figure says
//! how it was measured. The benchmarks assert nothing: they print the rows as they go, then the
//! report. The soak checks invariants and exits 1 on a violation.
//!
//! Usage: stsbridge-bench [--quick] [--only NAME[,NAME]] [--markdown PATH]   (names: ready, memory,
//! trips, side, concurrency, targets, paced, endpoint, ra)
//!        stsbridge-bench --soak [--seed N] [--hours H] [--keep-logs] [--self-test]   (the soak
//!        under random faults, `soak`; exits 1 when an invariant was violated)
//!
//! `scripts/bench.sh` passes what it measured before this program ran (the commit, the builds'
//! times, the binary's size) in `BENCH_*` variables ([`report`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};
use testbed::TestBed;

mod consumers;
mod memory;
mod report;
mod side;
mod soak;
mod trips;

const LATENCY: Duration = Duration::from_millis(50);

/// One row of a figures table.
pub struct Row {
    pub section: &'static str,
    pub what: String,
    pub value: String,
    pub target: String,
    pub how: String,
}

pub struct Bench {
    bin: PathBuf,
    quick: bool,
    rows: Vec<Row>,
    trips: Vec<trips::TripRow>,
    /// Paragraphs written from the measurements, printed under a section's table.
    notes: Vec<(&'static str, String)>,
}

impl Bench {
    fn note(&mut self, section: &'static str, text: String) {
        println!("  note: {text}");
        self.notes.push((section, text));
    }

    fn row(&mut self, section: &'static str, what: &str, value: String, target: &str, how: &str) {
        println!("  {what:<60} {value:>16}   {how}");
        self.rows.push(Row {
            section,
            what: what.into(),
            value,
            target: target.into(),
            how: how.into(),
        });
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `VmHWM` (peak) and `VmRSS` (current) of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

struct Serve {
    child: Child,
    port: u16,
    http: reqwest::Client,
    _home: tempfile::TempDir,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    /// Spawns `serve` and returns it with the time to its first answered `GET /` (polled every
    /// 0.5 ms over fresh connections).
    async fn start(
        bin: &PathBuf,
        env: &HashMap<String, String>,
    ) -> anyhow::Result<(Serve, Duration)> {
        let home = tempfile::tempdir()?;
        let port = free_port();
        let started = Instant::now();
        let child = Command::new(bin)
            .arg("serve")
            .env_clear()
            .env("HOME", home.path())
            .envs(env)
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()?;
        let ready = loop {
            if let Ok(r) = http.get(format!("http://127.0.0.1:{port}/")).send().await {
                if r.status().is_success() {
                    break started.elapsed();
                }
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(20),
                "serve never answered"
            );
            tokio::time::sleep(Duration::from_micros(500)).await;
        };
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(2000)
            .build()?;
        Ok((
            Serve {
                child,
                port,
                http,
                _home: home,
            },
            ready,
        ))
    }

    async fn http_rotate(&self, force: bool) -> anyhow::Result<(u16, Value)> {
        self.invoke("POST", force).await
    }

    /// `GET HttpRotate`: the published set's state and the last side work's outcome.
    async fn state(&self) -> anyhow::Result<Value> {
        let (status, body) = self.invoke("GET", false).await?;
        anyhow::ensure!(status == 200, "GET HttpRotate answered {status}: {body}");
        Ok(body)
    }

    async fn invoke(&self, method: &str, force: bool) -> anyhow::Result<(u16, Value)> {
        let mut query = json!({"code": "bench"});
        if force {
            query["force"] = json!("true");
        }
        let invocation = json!({"Data": {"req": {"Url": "https://app/api/HttpRotate", "Method": method, "Query": query,
            "Headers": {}, "Params": {}, "Identities": []}}, "Metadata": {}});
        let r = self
            .http
            .post(format!("http://127.0.0.1:{}/HttpRotate", self.port))
            .json(&invocation)
            .send()
            .await?;
        let envelope: Value = r.json().await?;
        let res = &envelope["Outputs"]["res"];
        let body = res["body"]
            .as_str()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        Ok((res["statusCode"].as_u64().unwrap_or(0) as u16, body))
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

fn env_of(bed: &TestBed, extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = bed.env().into_iter().collect();
    env.insert("RUST_LOG".into(), "warn".into());
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    env
}

async fn ready(b: &mut Bench) -> anyhow::Result<()> {
    let bed = TestBed::start().await?;
    let env = env_of(&bed, &[]);
    let mut times = vec![];
    for _ in 0..20 {
        let (_serve, t) = Serve::start(&b.bin, &env).await?;
        times.push(t.as_secs_f64() * 1000.0);
    }
    b.row(
        "scale",
        "ready: spawn to first answered GET / (ms)",
        format!(
            "{:.1} (min {:.1})",
            median(times.clone()),
            times.iter().cloned().fold(f64::MAX, f64::min)
        ),
        "< 10",
        "median of 20 spawns of `serve`, polled every 0.5 ms",
    );
    Ok(())
}

async fn concurrency(b: &mut Bench) -> anyhow::Result<()> {
    let bed = TestBed::start().await?;
    let (serve, _) = Serve::start(&b.bin, &env_of(&bed, &[])).await?;
    trips::set_latency(&bed, LATENCY);
    let n = 1000;
    let started = Instant::now();
    let results = futures::future::join_all((0..n).map(|_| {
        let serve = &serve;
        async move {
            let t = Instant::now();
            let r = serve.http_rotate(false).await;
            (t.elapsed().as_secs_f64() * 1000.0, r)
        }
    }))
    .await;
    let wall = started.elapsed();
    let errors = results
        .iter()
        .filter(|(_, r)| !matches!(r, Ok((200, _))))
        .count();
    let latencies: Vec<f64> = results.iter().map(|(t, _)| *t).collect();
    b.row(
        "scale",
        "concurrency: 1000 concurrent HttpRotate, mints",
        bed.sts.minted().len().to_string(),
        "1",
        "GetSessionToken answered by the STS front (single flight: all join one rotation)",
    );
    b.row(
        "scale",
        "concurrency: latency p50 / p99 (ms)",
        format!(
            "{:.0} / {:.0}",
            percentile(latencies.clone(), 0.5),
            percentile(latencies, 0.99)
        ),
        "",
        &format!(
            "50 ms per request on every server; all 1000 done in {} ms",
            wall.as_millis()
        ),
    );
    b.row(
        "scale",
        "concurrency: errors",
        errors.to_string(),
        "0",
        "answers other than 200",
    );
    Ok(())
}

/// Runs `stsbridge rotate` over a targets file; wall time, peak RSS, RSS samples.
async fn rotate_targets(
    b: &Bench,
    bed: &TestBed,
    n: usize,
    extra: &[(&str, &str)],
) -> anyhow::Result<(Duration, u64, Vec<u64>, Value)> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("targets.json");
    let targets: Vec<Value> = (0..n)
        .map(|i| json!({"Name": format!("t{i:04}")}))
        .collect();
    std::fs::write(&path, json!({"Targets": targets}).to_string())?;
    let mut env = env_of(bed, extra);
    env.insert("StsbridgeTargetsFile".into(), path.display().to_string());
    env.insert("SourceKeyMaxAgeDays".into(), "0".into());
    let home = tempfile::tempdir()?;
    let started = Instant::now();
    let mut child = tokio::process::Command::new(&b.bin)
        .arg("rotate")
        .env_clear()
        .env("HOME", home.path())
        .envs(&env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = child.id().context("pid")?;
    let mut stdout = child.stdout.take().context("stdout")?;
    let reader = tokio::spawn(async move {
        let mut s = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut s)
            .await
            .map(|_| s)
    });
    let mut samples = vec![];
    let mut peak = 0;
    loop {
        if let Some(status) = child.try_wait()? {
            anyhow::ensure!(
                status.success() || status.code() == Some(1),
                "rotate crashed: {status}"
            );
            break;
        }
        let (hwm, rss) = memory_kib(pid);
        peak = peak.max(hwm);
        if rss > 0 {
            samples.push(rss);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let wall = started.elapsed();
    let out: Value = serde_json::from_str(&reader.await??).unwrap_or(Value::Null);
    Ok((wall, peak, samples, out))
}

async fn targets(b: &mut Bench) -> anyhow::Result<()> {
    let bed = TestBed::start().await?;
    trips::set_latency(&bed, LATENCY);
    let unpaced = [("KeyVaultWritesPer10Seconds", "0")];
    let (one, _, _, _) = rotate_targets(b, &bed, 1, &unpaced).await?;
    let n = 100;
    let (hundred, peak, _, out) = rotate_targets(b, &bed, n, &unpaced).await?;
    let failed = out["summary"]["failed"].as_u64().unwrap_or(u64::MAX);
    let bound = one.as_secs_f64() * (n as f64 / 8.0).ceil();
    b.row(
        "scale",
        "targets: 1 target, `rotate` wall (s)",
        format!("{:.2}", one.as_secs_f64()),
        "",
        "process start to exit, 50 ms per request, unpaced",
    );
    b.row(
        "scale",
        "targets: 100 targets, `rotate` wall (s)",
        format!("{:.2}", hundred.as_secs_f64()),
        "≤ ceil(100/8) × one target",
        &format!("MaxConcurrentTargets 8; bound ceil(100/8) x one = {bound:.2} s; failed {failed}; peak RSS {:.1} MiB", peak as f64 / 1024.0),
    );
    Ok(())
}

async fn paced(b: &mut Bench) -> anyhow::Result<()> {
    let bed = TestBed::start().await?;
    trips::set_latency(&bed, LATENCY);
    let n = if b.quick { 200 } else { 1000 };
    bed.vault.clear_log();
    let (wall, peak, samples, out) =
        rotate_targets(b, &bed, n, &[("KeyVaultWritesPer10Seconds", "300")]).await?;
    let failed = out["summary"]["failed"].as_u64().unwrap_or(u64::MAX);
    let mut writes: Vec<Instant> = bed
        .vault
        .log()
        .into_iter()
        .filter(|r| (r.op == "set" || r.op == "update") && r.status < 300)
        .map(|r| r.started)
        .collect();
    writes.sort();
    let mut max_window = 0;
    let mut lo = 0;
    for hi in 0..writes.len() {
        while writes[hi].duration_since(writes[lo]) >= Duration::from_secs(10) {
            lo += 1;
        }
        max_window = max_window.max(hi - lo + 1);
    }
    let floor = writes.len() as f64 / 30.0;
    let at = |q: usize| {
        samples
            .get((samples.len().saturating_sub(1)) * q / 4)
            .copied()
            .unwrap_or(0) as f64
            / 1024.0
    };
    b.row(
        "scale",
        &format!("paced: {n} targets, one vault, 300 writes/10 s, wall (s)"),
        format!("{:.1}", wall.as_secs_f64()),
        "within 15 % of the floor",
        &format!(
            "{} writes; pacing floor writes/rate = {floor:.1} s ({:+.1} %); failed {failed}",
            writes.len(),
            (wall.as_secs_f64() / floor - 1.0) * 100.0
        ),
    );
    b.row(
        "scale",
        "paced: most Key Vault writes in any 10 s window",
        max_window.to_string(),
        "≤ 300",
        "sliding window over the vault's request log (limit 300)",
    );
    b.row(
        "scale",
        "paced: RSS at 25 / 50 / 75 / 100 % of the run (MiB)",
        format!("{:.1} / {:.1} / {:.1} / {:.1}", at(1), at(2), at(3), at(4)),
        "flat",
        &format!(
            "VmRSS sampled every 250 ms; peak {:.1}",
            peak as f64 / 1024.0
        ),
    );
    Ok(())
}

/// One CLI run to its end: wall time and whether it succeeded.
fn timed_run(
    bin: &PathBuf,
    env: &HashMap<String, String>,
    home: &std::path::Path,
    args: &[&str],
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let out = Command::new(bin)
        .args(args)
        .env_clear()
        .env("HOME", home)
        .envs(env)
        .stdin(Stdio::null())
        .output()?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    anyhow::ensure!(
        out.status.success(),
        "stsbridge {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(ms)
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let value_of = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let only: Option<Vec<String>> =
        value_of("--only").map(|s| s.split(',').map(str::to_string).collect());
    let markdown = value_of("--markdown").map(PathBuf::from);
    let bin = std::env::var_os("STSBRIDGE_BIN")
        .map(PathBuf::from)
        .context("STSBRIDGE_BIN (the release stsbridge binary) is not set: run scripts/bench.sh")?;
    if args.iter().any(|a| a == "--soak") {
        let flag = |name: &str| -> anyhow::Result<Option<u64>> {
            match args.iter().position(|a| a == name) {
                None => Ok(None),
                Some(i) => args
                    .get(i + 1)
                    .and_then(|v| v.parse().ok())
                    .map(Some)
                    .with_context(|| format!("{name} takes a number")),
            }
        };
        let seed = flag("--seed")?.unwrap_or(21);
        let hours = flag("--hours")?.unwrap_or(200);
        let hours = u32::try_from(hours).context("--hours is too large")?;
        let config = soak::Config {
            seed,
            hours,
            keep_logs: args.iter().any(|a| a == "--keep-logs"),
            self_test: args.iter().any(|a| a == "--self-test"),
        };
        return Ok(match soak::run(&bin, &config).await? {
            true => ExitCode::SUCCESS,
            false => ExitCode::FAILURE,
        });
    }
    let names = [
        "ready",
        "memory",
        "trips",
        "side",
        "concurrency",
        "targets",
        "paced",
        "endpoint",
        "ra",
    ];
    if let Some(o) = &only {
        if let Some(bad) = o.iter().find(|n| !names.contains(&n.as_str())) {
            anyhow::bail!(
                "--only: no benchmark named {bad} (names: {})",
                names.join(", ")
            );
        }
    }
    let mut b = Bench {
        bin,
        quick,
        rows: vec![],
        trips: vec![],
        notes: vec![],
    };
    let watch = report::Watch::start();
    let wanted = |name: &str| only.as_ref().is_none_or(|o| o.iter().any(|n| n == name));
    if wanted("ready") {
        ready(&mut b).await?;
    }
    if wanted("memory") {
        memory::memory(&mut b).await?;
    }
    if wanted("trips") {
        trips::rotations(&mut b).await?;
    }
    if wanted("side") {
        side::side(&mut b).await?;
    }
    if wanted("concurrency") {
        concurrency(&mut b).await?;
    }
    if wanted("targets") {
        targets(&mut b).await?;
    }
    if wanted("paced") {
        paced(&mut b).await?;
    }
    if wanted("endpoint") {
        consumers::endpoint(&mut b).await?;
    }
    if wanted("ra") {
        consumers::roles_anywhere(&mut b).await?;
    }
    let load = watch.finish();
    let text = report::markdown(&b, &load, &args);
    match markdown {
        Some(path) => {
            std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
            println!("\nreport: {}", path.display());
        }
        None => println!("\n{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
