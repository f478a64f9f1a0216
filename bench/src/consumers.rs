//! The consumers' figures: how a client gets a set from the published bundle (`credential-process`
//! cold and `--cache`, one request to `serve-credentials`, the endpoint's throughput — issue #19),
//! and with `--roles-anywhere` (issue #31, "Roles Anywhere, part 2"): `credential-process` cold
//! and `--cache`, and one renewal of `serve-credentials --roles-anywhere`; round trips counted
//! from the test bed's logs ([`crate::trips`]) at 50 ms and at 100 ms.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use testbed::{KeySpec, TestBed};

use crate::trips::{set_latency, Cell, Sample, TripRow, LATENCIES};
use crate::{env_of, median, memory_kib, percentile, timed_run, Bench, KillOnDrop};

/// `serve-credentials` started: its URL and token (the two lines it prints), and the process.
struct Endpoint {
    url: String,
    token: String,
    pid: u32,
    _kill: KillOnDrop,
}

async fn serve_credentials(
    bin: &Path,
    env: &HashMap<String, String>,
    home: &Path,
    args: &[String],
) -> anyhow::Result<Endpoint> {
    let mut child = Command::new(bin)
        .arg("serve-credentials")
        .args(args)
        .env_clear()
        .env("HOME", home)
        .envs(env)
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
    anyhow::ensure!(lines.len() == 2, "serve-credentials printed {lines:?}");
    let value = |line: &str| {
        line.split_once('=')
            .map(|(_, v)| v.trim_matches('\'').to_string())
            .unwrap_or_default()
    };
    Ok(Endpoint {
        url: value(&lines[0]),
        token: value(&lines[1]),
        pid: child.id(),
        _kill: KillOnDrop(child),
    })
}

/// `serve-credentials` (issue #19): requests per second and p99 from one cached set, and the
/// three ways a client gets a set — `credential-process` cold (its round trips counted),
/// `credential-process --cache`, one request to the endpoint — side by side in one run.
pub async fn endpoint(b: &mut Bench) -> anyhow::Result<()> {
    let runs = if b.quick { 5 } else { 15 };
    let mut cold_cells = vec![];
    for latency in LATENCIES {
        let bed = TestBed::start().await?;
        let env = env_of(&bed, &[]);
        let home = tempfile::tempdir()?;
        timed_run(&b.bin, &env, home.path(), &["rotate"])?;
        set_latency(&bed, latency);
        let mut samples = vec![];
        for _ in 0..runs {
            let t = Instant::now();
            timed_run(&b.bin, &env, home.path(), &["credential-process"])?;
            samples.push(Sample::of(&bed, t, Instant::now()));
        }
        cold_cells.push(Cell { latency, samples });
    }
    b.trip_row(TripRow {
        table: "consumers",
        situation: "`credential-process`, cold (the published bundle)".into(),
        floor: "3: Key Vault's challenge, the identity token, the read".into(),
        how: format!("process start to exit, a new process each time; median of {runs}"),
        cells: cold_cells,
    });

    let bed = TestBed::start().await?;
    let env = env_of(&bed, &[]);
    let home = tempfile::tempdir()?;
    timed_run(&b.bin, &env, home.path(), &["rotate"])?;
    let latency = LATENCIES[0];
    set_latency(&bed, latency);
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

    let endpoint = serve_credentials(&b.bin, &env, home.path(), &[]).await?;
    // One request as an SDK makes it when it refreshes: a new connection each time.
    let mut single = vec![];
    for _ in 0..runs {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()?;
        let t = Instant::now();
        let r = http
            .get(&endpoint.url)
            .header("authorization", &endpoint.token)
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "endpoint answered {}", r.status());
        r.bytes().await?;
        single.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    b.row(
        "consumers",
        "endpoint: credential-process cold / --cache / one request (ms)",
        format!(
            "{:.0} / {:.1} / {:.2}",
            median(cold),
            median(cached),
            median(single)
        ),
        "",
        &format!("median of {runs} each: process start to exit with 50 ms per request (token, challenge, read) / process start to exit from the cache file / a GET over a new connection to a running serve-credentials"),
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
        let (http, url, token) = (http.clone(), endpoint.url.clone(), endpoint.token.clone());
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
    let (_, rss) = memory_kib(endpoint.pid);
    b.row(
        "consumers",
        "endpoint: serve-credentials requests/s, p50 / p99 (ms)",
        format!(
            "{:.0}, {:.2} / {:.2}",
            latencies.len() as f64 / seconds as f64,
            percentile(latencies.clone(), 0.5),
            percentile(latencies, 0.99)
        ),
        "",
        &format!("32 keep-alive clients for {seconds} s from one cached set, the load generator on the same cores; errors {errors}; Key Vault reads meanwhile {reads} (it polls every 30 s); RSS after {:.1} MiB", rss as f64 / 1024.0),
    );
    Ok(())
}

/// `--roles-anywhere` flags for the set-up certificate (a name in the bed's vault).
fn ra_flags(ra: &testbed::RolesAnywhereSetup) -> Vec<String> {
    [
        "--roles-anywhere",
        "--role-arn",
        &ra.role_arn,
        "--trust-anchor-arn",
        &ra.trust_anchor_arn,
        "--profile-arn",
        &ra.profile_arn,
        "--certificate",
        &ra.certificate.name,
    ]
    .map(String::from)
    .to_vec()
}

/// A consumer's machine: its own Azure identity, the vault, the endpoints; no AWS key.
fn consumer_env(bed: &TestBed) -> HashMap<String, String> {
    let mut env = env_of(bed, &[]);
    env.remove("UsernameFromKeyVault");
    env.remove("PasswordFromKeyVault");
    env
}

/// The access key id `serve-credentials` serves now.
async fn served_key(http: &reqwest::Client, e: &Endpoint) -> Option<String> {
    let r = http
        .get(&e.url)
        .header("authorization", &e.token)
        .send()
        .await
        .ok()?;
    let body: serde_json::Value = r.json().await.ok()?;
    body["AccessKeyId"].as_str().map(str::to_string)
}

/// `credential-process --roles-anywhere` cold and `--cache`, and `serve-credentials
/// --roles-anywhere` renewing its set; one test bed per latency.
pub async fn roles_anywhere(b: &mut Bench) -> anyhow::Result<()> {
    let runs = if b.quick { 3 } else { 7 };
    let renewals = if b.quick { 1 } else { 3 };
    let (mut cold_cells, mut cached_cells, mut renew_cells) = (vec![], vec![], vec![]);
    for latency in LATENCIES {
        let bed = TestBed::start().await?;
        let ra = bed.setup_roles_anywhere("bench", KeySpec::EcP256).await?;
        let env = consumer_env(&bed);
        let flags = ra_flags(&ra);
        set_latency(&bed, latency);

        let mut cold = vec![];
        for _ in 0..runs {
            // A new HOME each time: nothing cached.
            let home = tempfile::tempdir()?;
            let mut args = vec!["credential-process".to_string()];
            args.extend(flags.iter().cloned());
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let t = Instant::now();
            timed_run(&b.bin, &env, home.path(), &args)?;
            cold.push(Sample::of(&bed, t, Instant::now()));
        }
        cold_cells.push(Cell {
            latency,
            samples: cold,
        });

        let home = tempfile::tempdir()?;
        let mut args = vec!["credential-process".to_string(), "--cache".to_string()];
        args.extend(flags.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        timed_run(&b.bin, &env, home.path(), &args)?;
        let mut cached = vec![];
        for _ in 0..runs {
            let t = Instant::now();
            timed_run(&b.bin, &env, home.path(), &args)?;
            cached.push(Sample::of(&bed, t, Instant::now()));
        }
        cached_cells.push(Cell {
            latency,
            samples: cached,
        });

        // Sets that live 30 s: the endpoint renews each at half its life, 15 s after it came.
        bed.sts.set_lifetime(Some(Duration::from_secs(30)));
        let home = tempfile::tempdir()?;
        let endpoint = serve_credentials(&b.bin, &env, home.path(), &flags).await?;
        let http = reqwest::Client::new();
        let mut key = None;
        for _ in 0..200 {
            key = served_key(&http, &endpoint).await;
            if key.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut key = key.context("serve-credentials --roles-anywhere served nothing")?;
        let mut renewed = vec![];
        for _ in 0..renewals {
            let watch_from = Instant::now();
            let deadline = watch_from + Duration::from_secs(40);
            // Polled every 2 ms: when the endpoint first serves the renewed set.
            let seen = loop {
                anyhow::ensure!(Instant::now() < deadline, "no renewal within 40 s");
                if let Some(k) = served_key(&http, &endpoint).await {
                    if k != key {
                        key = k;
                        break Instant::now();
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            };
            // The renewal's first request: the first one to arrive after the last one before it
            // (our own polls go to the endpoint, not to the bed).
            let first = crate::trips::spans(&bed)
                .iter()
                .filter(|s| s.started >= watch_from && s.finished <= seen)
                .map(|s| s.started)
                .min()
                .context("the renewal made no request")?;
            renewed.push(Sample::of(&bed, first, seen));
        }
        renew_cells.push(Cell {
            latency,
            samples: renewed,
        });
        drop(endpoint);
        set_latency(&bed, Duration::ZERO);
    }
    b.trip_row(TripRow {
        table: "consumers",
        situation: "`credential-process --roles-anywhere`, cold".into(),
        floor: "6: challenge, token, certificate, its chain (the certificate's secret), sign, CreateSession".into(),
        how: format!("process start to exit, a new HOME each time (no cache), the certificate EC P-256; median of {runs}"),
        cells: cold_cells,
    });
    b.trip_row(TripRow {
        table: "consumers",
        situation: "`credential-process --cache --roles-anywhere`, from the cache".into(),
        floor: "0".into(),
        how: format!("process start to exit, the cache file written by a first run (the set, never a signature or a key); median of {runs}"),
        cells: cached_cells,
    });
    b.trip_row(TripRow {
        table: "consumers",
        situation: "`serve-credentials --roles-anywhere`: one renewal".into(),
        floor: "2: sign, CreateSession (the token and the certificate kept)".into(),
        how: format!("sets made to live 30 s (the bed's lifetime override), renewed at half their life; from the renewal's first request reaching the bed to the endpoint serving the new set (polled every 2 ms); median of {renewals}"),
        cells: renew_cells,
    });
    Ok(())
}
