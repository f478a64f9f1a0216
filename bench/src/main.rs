//! stsbridge benchmarks against the local test bed (`scripts/bench.sh`; results in BENCHMARKS.md).
//!
//! Measures a release `stsbridge` binary as the Functions host runs it: `serve` on a port, driven
//! by invocations over HTTP, with the test bed's Key Vault (TLS, bearer challenge) and STS front
//! (over moto). Each figure says how it was measured; timings are medians over repeated runs.
//! The benchmarks assert nothing: they print a table. The soak checks invariants and exits 1 on a
//! violation.
//!
//! Usage: stsbridge-bench [--quick] [--only NAME[,NAME]]   (names: ready, memory, trips, side,
//! concurrency, targets, paced, endpoint)
//!        stsbridge-bench --soak [--seed N] [--hours H] [--keep-logs] [--self-test]   (the soak
//!        under random faults, `soak`; exits 1 when an invariant was violated)

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};
use testbed::TestBed;

mod side;
mod soak;

const LATENCY: Duration = Duration::from_millis(50);

struct Bench {
    bin: PathBuf,
    quick: bool,
    rows: Vec<(String, String, String)>,
}

impl Bench {
    fn row(&mut self, what: &str, value: String, how: &str) {
        println!("  {what:<52} {value:>16}   {how}");
        self.rows.push((what.into(), value, how.into()));
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
        let mut query = json!({"code": "bench"});
        if force {
            query["force"] = json!("true");
        }
        let invocation = json!({"Data": {"req": {"Url": "https://app/api/HttpRotate", "Method": "POST", "Query": query,
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
        "ready: spawn to first answered GET / (ms)",
        format!(
            "{:.1} (min {:.1})",
            median(times.clone()),
            times.iter().cloned().fold(f64::MAX, f64::min)
        ),
        "median of 20 spawns of `serve`, polled every 0.5 ms",
    );
    Ok(())
}

async fn memory(b: &mut Bench) -> anyhow::Result<()> {
    let bed = TestBed::start().await?;
    let (serve, _) = Serve::start(&b.bin, &env_of(&bed, &[])).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (idle, _) = memory_kib(serve.pid());
    let (status, _) = serve.http_rotate(true).await?;
    anyhow::ensure!(status == 200, "rotation failed: {status}");
    let (one, _) = memory_kib(serve.pid());
    let n = if b.quick { 200 } else { 1000 };
    let mut after_100 = 0;
    for i in 0..n {
        let (status, body) = serve.http_rotate(true).await?;
        anyhow::ensure!(status == 200, "rotation {i} failed: {body}");
        if i == 99 {
            after_100 = memory_kib(serve.pid()).1;
        }
    }
    let (peak, current) = memory_kib(serve.pid());
    b.row(
        "memory: peak RSS idle (MiB)",
        format!("{:.1}", idle as f64 / 1024.0),
        "VmHWM after start-up",
    );
    b.row(
        "memory: peak RSS after 1 rotation (MiB)",
        format!("{:.1}", one as f64 / 1024.0),
        "VmHWM after one forced HttpRotate",
    );
    b.row(
        &format!("memory: peak / current RSS after {n} rotations (MiB)"),
        format!(
            "{:.1} / {:.1}",
            peak as f64 / 1024.0,
            current as f64 / 1024.0
        ),
        &format!(
            "sequential forced rotations; current RSS after 100 was {:.1} MiB",
            after_100 as f64 / 1024.0
        ),
    );
    Ok(())
}

async fn trips(b: &mut Bench) -> anyhow::Result<()> {
    let runs = if b.quick { 3 } else { 7 };
    trips_on(b, runs, false).await?;
    trips_on(b, runs, true).await
}

/// Cold and warm forced rotations of fresh `serve` processes, with 50 ms per request. With
/// `storage` (Azurite, the rotation lease) the same latency is on storage too; the lease is taken
/// concurrently with the reads and released after the answer, so the second rotation comes
/// 0.5 s after the first (rotations are minutes apart; a trigger right after an answer waits
/// for that run's release, a round trip or two).
async fn trips_on(b: &mut Bench, runs: usize, storage: bool) -> anyhow::Result<()> {
    let (mut cold, mut warm) = (vec![], vec![]);
    let bed = TestBed::start_with(testbed::Options {
        storage,
        ..Default::default()
    })
    .await?;
    let set_latency = |latency: Duration| {
        bed.vault.faults.set_latency(latency);
        bed.sts.faults.set_latency(latency);
        if let Some(storage) = &bed.storage {
            storage.set_latency(latency);
        }
    };
    let pause = || async {
        if storage {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    for _ in 0..runs {
        let (serve, _) = Serve::start(&b.bin, &env_of(&bed, &[])).await?;
        set_latency(LATENCY);
        let t = Instant::now();
        let (status, _) = serve.http_rotate(true).await?;
        cold.push(t.elapsed().as_secs_f64());
        anyhow::ensure!(status == 200);
        pause().await;
        let t = Instant::now();
        let (status, _) = serve.http_rotate(true).await?;
        warm.push(t.elapsed().as_secs_f64());
        anyhow::ensure!(status == 200);
        // Let it release the lease before it is killed: a killed holder's lease would hold the
        // next process's first rotation until it expires (RotationLeaseSeconds).
        pause().await;
        set_latency(Duration::ZERO);
    }
    let l = LATENCY.as_secs_f64();
    let (c, w) = (median(cold), median(warm));
    let (lease, cold_how, warm_how) = if storage {
        (
            ", lease",
            "as above, AzureWebJobsStorage set (Azurite, 50 ms too)",
            "as above, 0.5 s after the first",
        )
    } else {
        (
            "",
            "first rotation of a new process (token, challenge)",
            "second rotation, verification included",
        )
    };
    b.row(
        &format!("round trips: cold forced rotation{lease} (wall / 50 ms)"),
        format!("{:.2} ({:.0} ms)", c / l, c * 1000.0),
        &format!("{cold_how}; median of {runs}"),
    );
    b.row(
        &format!("round trips: warm forced rotation{lease} (wall / 50 ms)"),
        format!("{:.2} ({:.0} ms)", w / l, w * 1000.0),
        &format!("{warm_how}; median of {runs}"),
    );
    Ok(())
}

async fn concurrency(b: &mut Bench) -> anyhow::Result<()> {
    let bed = TestBed::start().await?;
    let (serve, _) = Serve::start(&b.bin, &env_of(&bed, &[])).await?;
    bed.vault.faults.set_latency(LATENCY);
    bed.sts.faults.set_latency(LATENCY);
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
        "concurrency: 1000 concurrent HttpRotate, mints",
        bed.sts.minted().len().to_string(),
        "GetSessionToken answered by the STS front",
    );
    b.row(
        "concurrency: latency p50 / p99 (ms)",
        format!(
            "{:.0} / {:.0}",
            percentile(latencies.clone(), 0.5),
            percentile(latencies, 0.99)
        ),
        &format!(
            "50 ms per Key Vault/STS request; all 1000 done in {} ms",
            wall.as_millis()
        ),
    );
    b.row(
        "concurrency: errors",
        errors.to_string(),
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
    bed.vault.faults.set_latency(LATENCY);
    bed.sts.faults.set_latency(LATENCY);
    let unpaced = [("KeyVaultWritesPer10Seconds", "0")];
    let (one, _, _, _) = rotate_targets(b, &bed, 1, &unpaced).await?;
    let n = 100;
    let (hundred, peak, _, out) = rotate_targets(b, &bed, n, &unpaced).await?;
    let failed = out["summary"]["failed"].as_u64().unwrap_or(u64::MAX);
    let bound = one.as_secs_f64() * (n as f64 / 8.0).ceil();
    b.row(
        "targets: 1 target, `rotate` wall (s)",
        format!("{:.2}", one.as_secs_f64()),
        "process start to exit, 50 ms per request, unpaced",
    );
    b.row(
        "targets: 100 targets, `rotate` wall (s)",
        format!("{:.2}", hundred.as_secs_f64()),
        &format!("MaxConcurrentTargets 8; bound ceil(100/8) x one = {bound:.2} s; failed {failed}; peak RSS {:.1} MiB", peak as f64 / 1024.0),
    );
    Ok(())
}

async fn paced(b: &mut Bench) -> anyhow::Result<()> {
    let bed = TestBed::start().await?;
    bed.vault.faults.set_latency(LATENCY);
    bed.sts.faults.set_latency(LATENCY);
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
        &format!("paced: {n} targets, one vault, 300 writes/10 s, wall (s)"),
        format!("{:.1}", wall.as_secs_f64()),
        &format!(
            "{} writes; pacing floor writes/rate = {floor:.1} s ({:+.1} %); failed {failed}",
            writes.len(),
            (wall.as_secs_f64() / floor - 1.0) * 100.0
        ),
    );
    b.row(
        "paced: most Key Vault writes in any 10 s window",
        max_window.to_string(),
        "sliding window over the vault's request log (limit 300)",
    );
    b.row(
        "paced: RSS at 25 / 50 / 75 / 100 % of the run (MiB)",
        format!("{:.1} / {:.1} / {:.1} / {:.1}", at(1), at(2), at(3), at(4)),
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

/// `serve-credentials` (issue #19): requests per second and p99 from one cached set, and the
/// three ways a client gets a set — `credential-process` cold, `credential-process --cache`, one
/// request to the endpoint — side by side in one run.
async fn endpoint(b: &mut Bench) -> anyhow::Result<()> {
    let bed = TestBed::start().await?;
    let env = env_of(&bed, &[]);
    let home = tempfile::tempdir()?;
    timed_run(&b.bin, &env, home.path(), &["rotate"])?;
    bed.vault.faults.set_latency(LATENCY);
    let runs = if b.quick { 5 } else { 15 };

    let cold: Vec<f64> = (0..runs)
        .map(|_| timed_run(&b.bin, &env, home.path(), &["credential-process"]))
        .collect::<anyhow::Result<_>>()?;
    timed_run(
        &b.bin,
        &env,
        home.path(),
        &["credential-process", "--cache"],
    )?;
    let cached: Vec<f64> = (0..runs)
        .map(|_| {
            timed_run(
                &b.bin,
                &env,
                home.path(),
                &["credential-process", "--cache"],
            )
        })
        .collect::<anyhow::Result<_>>()?;

    let mut child = Command::new(&b.bin)
        .arg("serve-credentials")
        .env_clear()
        .env("HOME", home.path())
        .envs(&env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let lines = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .take(2)
            .collect::<Result<Vec<_>, _>>()
    })
    .await??;
    let value = |line: &str| {
        line.split_once('=')
            .map(|(_, v)| v.trim_matches('\'').to_string())
            .unwrap_or_default()
    };
    let (url, token) = (value(&lines[0]), value(&lines[1]));
    let pid = child.id();
    let _kill = KillOnDrop(child);

    // One request as an SDK makes it when it refreshes: a new connection each time.
    let mut single = vec![];
    for _ in 0..runs {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()?;
        let t = Instant::now();
        let r = http
            .get(&url)
            .header("authorization", &token)
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "endpoint answered {}", r.status());
        r.bytes().await?;
        single.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    b.row(
        "endpoint: credential-process cold / --cache / one request (ms)",
        format!(
            "{:.0} / {:.1} / {:.2}",
            median(cold),
            median(cached),
            median(single)
        ),
        &format!("median of {runs}; process start to exit (50 ms per Key Vault request) vs a GET over a new connection"),
    );

    // Throughput from one cached set: 32 clients with keep-alive connections, on the same 2
    // cores as the endpoint (the load generator's own cost is in the figure).
    bed.vault.clear_log();
    let seconds = if b.quick { 2 } else { 10 };
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let end = Instant::now() + Duration::from_secs(seconds);
    let workers = (0..32).map(|_| {
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        tokio::spawn(async move {
            let mut latencies = vec![];
            let mut errors = 0u64;
            while Instant::now() < end {
                let t = Instant::now();
                match http.get(&url).header("authorization", &token).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        })
    });
    let mut latencies = vec![];
    let mut errors = 0;
    for w in futures::future::join_all(workers).await {
        let (l, e) = w?;
        latencies.extend(l);
        errors += e;
    }
    let reads = bed
        .vault
        .log()
        .iter()
        .filter(|r| r.op == "get" && r.status == 200)
        .count();
    let (_, rss) = memory_kib(pid);
    b.row(
        "endpoint: serve-credentials requests/s, p50 / p99 (ms)",
        format!(
            "{:.0}, {:.2} / {:.2}",
            latencies.len() as f64 / seconds as f64,
            percentile(latencies.clone(), 0.5),
            percentile(latencies, 0.99)
        ),
        &format!("32 keep-alive clients for {seconds} s on the same 2 cores; errors {errors}; Key Vault reads meanwhile {reads}; RSS after {:.1} MiB", rss as f64 / 1024.0),
    );
    Ok(())
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
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.split(',').map(str::to_string).collect());
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
    let mut b = Bench {
        bin,
        quick,
        rows: vec![],
    };
    println!("  {:<52} {:>16}   how", "figure", "value");
    let wanted = |name: &str| only.as_ref().is_none_or(|o| o.iter().any(|n| n == name));
    if wanted("ready") {
        ready(&mut b).await?;
    }
    if wanted("memory") {
        memory(&mut b).await?;
    }
    if wanted("trips") {
        trips(&mut b).await?;
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
        endpoint(&mut b).await?;
    }
    println!();
    println!("| figure | value | how measured |");
    println!("|---|---|---|");
    for (what, value, how) in &b.rows {
        println!("| {what} | {value} | {how} |");
    }
    Ok(ExitCode::SUCCESS)
}
