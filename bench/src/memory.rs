//! Memory (issue #32 item 3): RSS through a process's life — at readiness, after the warm-up,
//! after one and after 1000 rotations — what holds it (`/proc/PID/smaps`: the binary's pages,
//! malloc's arenas, thread stacks, other anonymous memory), the same run with
//! `MALLOC_ARENA_MAX=1`, and a deep history: 10,000 versions of each published secret seeded
//! into the test bed's vault, the sweep a process makes on its first publish (its requests,
//! time and RSS), then 1000 rotations more.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use testbed::keyvault::SecretVersion;
use testbed::TestBed;

use crate::report::thousands;
use crate::trips::{quiet, set_latency};
use crate::{env_of, Bench, Serve};

/// The published secrets (seed 000's default names).
const PUBLISHED: [&str; 4] = [
    "AwsSessionCredentials",
    "AccessKeyId",
    "SecretAccessKey",
    "SessionToken",
];
/// Versions of each published secret in the deep history.
const HISTORY: usize = 10_000;
/// Of those, the newest this many are enabled (and expired): a day of hourly rotations since
/// the last sweep; the older ones were disabled by earlier sweeps.
const ENABLED_SINCE_LAST_SWEEP: usize = 24;

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Fields of `/proc/PID/status`, in KiB (or a count).
pub fn status(pid: u32) -> HashMap<String, u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.to_string(), v.split_whitespace().next()?.parse().ok()?))
        })
        .collect()
}

/// `VmRSS` as RssAnon + RssFile, in MiB: "20.5 (anon 14.1, file 6.4)".
fn rss_text(s: &HashMap<String, u64>) -> String {
    format!(
        "{:.1} (anon {:.1} + file {:.1})",
        mib(s["VmRSS"]),
        mib(s["RssAnon"]),
        mib(s["RssFile"] + s.get("RssShmem").copied().unwrap_or(0))
    )
}

/// Where a process's resident memory is, from `/proc/PID/smaps` (KiB).
#[derive(Debug, Default)]
pub struct Breakdown {
    /// The executable's own pages (code, read-only data, its data segment).
    pub binary: u64,
    /// Of those, its code (the executable mapping): resident, and its size.
    pub code: u64,
    pub code_size: u64,
    /// Shared libraries and other files.
    pub libraries: u64,
    /// The main arena (`[heap]`, grown by brk).
    pub heap: u64,
    /// malloc's other arenas: 64 MiB-aligned anonymous regions of 64 MiB reserved.
    pub arenas: u64,
    pub arena_count: usize,
    /// Threads' stacks (an anonymous region behind a guard page) and `[stack]`.
    pub stacks: u64,
    pub stack_count: usize,
    /// Everything else anonymous: large allocations malloc maps on their own, `.bss`.
    pub other_anon: u64,
    pub threads: u64,
}

struct Mapping {
    start: u64,
    end: u64,
    perms: String,
    path: String,
    rss: u64,
}

const ARENA: u64 = 64 * 1024 * 1024;

pub fn breakdown(pid: u32) -> Breakdown {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let mut maps: Vec<Mapping> = vec![];
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let first = parts.next().unwrap_or_default();
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) {
                let perms = parts.next().unwrap_or_default().to_string();
                let path = parts.nth(3).unwrap_or_default().to_string();
                maps.push(Mapping {
                    start,
                    end,
                    perms,
                    path,
                    rss: 0,
                });
                continue;
            }
        }
        if let (Some("Rss:"), Some(kb)) = (Some(first), parts.next()) {
            if let (Some(m), Ok(kb)) = (maps.last_mut(), kb.parse::<u64>()) {
                m.rss = kb;
            }
        }
    }
    let mut out = Breakdown {
        threads: status(pid).get("Threads").copied().unwrap_or(0),
        ..Breakdown::default()
    };
    for (i, m) in maps.iter().enumerate() {
        let size = m.end - m.start;
        let next_reserved = maps
            .get(i + 1)
            .filter(|n| n.start == m.end && n.perms.starts_with("---") && n.path.is_empty())
            .map(|n| n.end - n.start)
            .unwrap_or(0);
        let guarded = i > 0 && {
            let p = &maps[i - 1];
            p.end == m.start && p.perms.starts_with("---") && p.end - p.start <= 64 * 1024
        };
        if m.path == exe || (!exe.is_empty() && m.path.starts_with(&exe)) {
            out.binary += m.rss;
            if m.perms.contains('x') {
                out.code += m.rss;
                out.code_size += size / 1024;
            }
        } else if m.path == "[heap]" {
            out.heap += m.rss;
        } else if m.path == "[stack]" {
            out.stacks += m.rss;
            out.stack_count += 1;
        } else if m.path.starts_with('/') || m.path.starts_with('[') {
            out.libraries += m.rss;
        } else if m.perms.starts_with("rw")
            && m.start.is_multiple_of(ARENA)
            && (size + next_reserved == ARENA || size == ARENA)
        {
            out.arenas += m.rss;
            out.arena_count += 1;
        } else if m.perms.starts_with("rw") && guarded {
            out.stacks += m.rss;
            out.stack_count += 1;
        } else {
            out.other_anon += m.rss;
        }
    }
    out
}

impl Breakdown {
    pub fn text(&self) -> String {
        format!(
            "binary {:.1}, libraries {:.1}, main heap {:.1}, {} other arenas {:.1}, {} stacks {:.1}, other anonymous {:.1}",
            mib(self.binary),
            mib(self.libraries),
            mib(self.heap),
            self.arena_count,
            mib(self.arenas),
            self.stack_count,
            mib(self.stacks),
            mib(self.other_anon),
        )
    }
}

/// A `serve` process through its first 1000 rotations: RSS at readiness, after the warm-up,
/// after one rotation, after 100 and after `n`; the breakdown at the end.
struct Life {
    ready: HashMap<String, u64>,
    warm: HashMap<String, u64>,
    one: HashMap<String, u64>,
    hundred: HashMap<String, u64>,
    end: HashMap<String, u64>,
    breakdown: Breakdown,
    breakdown_warm: Breakdown,
}

async fn life(b: &Bench, extra: &[(&str, &str)], n: usize) -> anyhow::Result<Life> {
    let bed = TestBed::start().await?;
    let (serve, _) = Serve::start(&b.bin, &env_of(&bed, extra)).await?;
    let ready = status(serve.pid());
    // The warm-up's requests (token, challenge, reads, GetCallerIdentity) ended.
    quiet(&bed, Duration::from_millis(300)).await;
    let warm = status(serve.pid());
    let breakdown_warm = breakdown(serve.pid());
    let (code, body) = serve.http_rotate(true).await?;
    anyhow::ensure!(code == 200, "rotation failed: {body}");
    quiet(&bed, Duration::from_millis(300)).await;
    let one = status(serve.pid());
    let mut hundred = HashMap::new();
    for i in 1..n {
        let (code, body) = serve.http_rotate(true).await?;
        anyhow::ensure!(code == 200, "rotation {i} failed: {body}");
        if i == 99 {
            hundred = status(serve.pid());
        }
    }
    quiet(&bed, Duration::from_millis(300)).await;
    // For a closer look: `BENCH_SMAPS_DIR=DIR` keeps each process's smaps at the end.
    if let Some(dir) = std::env::var_os("BENCH_SMAPS_DIR") {
        let to = std::path::Path::new(&dir).join(format!("smaps-{}", serve.pid()));
        std::fs::copy(format!("/proc/{}/smaps", serve.pid()), to)?;
    }
    Ok(Life {
        ready,
        warm,
        one,
        hundred,
        end: status(serve.pid()),
        breakdown: breakdown(serve.pid()),
        breakdown_warm,
    })
}

pub async fn memory(b: &mut Bench) -> anyhow::Result<()> {
    let n = if b.quick { 200 } else { 1000 };
    let l = life(b, &[], n).await?;
    b.row(
        "memory",
        "RSS at readiness / after the warm-up (MiB)",
        format!("{} / {}", rss_text(&l.ready), rss_text(&l.warm)),
        "",
        "VmRSS when GET / first answers, and once the warm-up's requests (token, challenge, reads, GetCallerIdentity) have ended: the clients the warm-up keeps",
    );
    b.row(
        "memory",
        "peak RSS after 1 rotation (MiB)",
        format!("{:.1}", mib(l.one["VmHWM"])),
        "",
        "VmHWM after one forced HttpRotate and its side work",
    );
    b.row(
        "memory",
        &format!("peak / current RSS after {n} rotations (MiB)"),
        format!("{:.1} / {}", mib(l.end["VmHWM"]), rss_text(&l.end)),
        "≤ 16",
        &format!(
            "sequential forced rotations, no added latency; current RSS after 100 was {:.1} MiB",
            mib(l.hundred.get("VmRSS").copied().unwrap_or(0))
        ),
    );
    b.row(
        "memory",
        &format!("where RSS is, after the warm-up / after {n} rotations (MiB)"),
        format!(
            "{} / {}",
            l.breakdown_warm.text(),
            l.breakdown.text()
        ),
        "",
        &format!(
            "/proc/PID/smaps: Rss by mapping (arenas: 64 MiB-aligned anonymous regions; stacks: behind a guard page); {} threads",
            l.breakdown.threads
        ),
    );
    let one_arena = life(b, &[("MALLOC_ARENA_MAX", "1")], n).await?;
    let (e, w, r) = (&l.breakdown, &l.warm, &l.ready);
    let anon = |m: &HashMap<String, u64>| m["RssAnon"];
    let file = |m: &HashMap<String, u64>| m["RssFile"] + m.get("RssShmem").copied().unwrap_or(0);
    b.note(
        "memory",
        format!(
            "**What holds RSS** (measured above): after {n} rotations, {:.1} MiB resident is {:.1} MiB of file-backed pages — the binary's own {:.1} MiB (its code {:.1} MiB of a {:.1} MiB code segment, the kernel mapping code in around each page first run; clean pages, shared and reclaimable) and shared libraries {:.1} MiB — and {:.1} MiB anonymous: the main heap {:.1}, {} other malloc arenas {:.1}, {} thread stacks {:.1}, the binary's relocated data among its pages. The warm-up adds {:+.1} MiB anonymous (the clients it keeps: tokens, TLS sessions, pooled connections) and {:+.1} MiB of code run for the first time; {n} rotations add {:+.1} MiB anonymous and {:+.1} MiB of code. With one malloc arena RSS after {n} rotations differs by {:+.1} MiB. The release profile is built for size (`opt-level = \"s\"`) because code is most of RSS.",
            mib(l.end["VmRSS"]),
            mib(file(&l.end)),
            mib(e.binary),
            mib(e.code),
            mib(e.code_size),
            mib(e.libraries),
            mib(anon(&l.end)),
            mib(e.heap),
            e.arena_count,
            mib(e.arenas),
            e.stack_count,
            mib(e.stacks),
            mib(anon(w)) - mib(anon(r)),
            mib(file(w)) - mib(file(r)),
            mib(anon(&l.end)) - mib(anon(w)),
            mib(file(&l.end)) - mib(file(w)),
            mib(one_arena.end["VmRSS"]) - mib(l.end["VmRSS"]),
        ),
    );
    b.row(
        "memory",
        &format!("with MALLOC_ARENA_MAX=1: after the warm-up / peak and current after {n} rotations (MiB)"),
        format!(
            "{:.1} / {:.1} and {:.1}",
            mib(one_arena.warm["VmRSS"]),
            mib(one_arena.end["VmHWM"]),
            mib(one_arena.end["VmRSS"])
        ),
        "",
        &format!(
            "the same run with glibc's malloc held to one arena (set in serve's environment); after: {}",
            one_arena.breakdown.text()
        ),
    );
    deep_history(b, n).await
}

/// The tags and content type each published secret's versions carry, from one real publish.
async fn published_shape(b: &Bench) -> anyhow::Result<HashMap<String, SecretVersion>> {
    let bed = TestBed::start().await?;
    let (serve, _) = Serve::start(&b.bin, &env_of(&bed, &[])).await?;
    let (code, body) = serve.http_rotate(true).await?;
    anyhow::ensure!(code == 200, "rotation failed: {body}");
    PUBLISHED
        .iter()
        .map(|name| {
            let v = bed
                .vault
                .latest(name)
                .ok_or_else(|| anyhow::anyhow!("{name} was not published"))?;
            Ok((name.to_string(), v))
        })
        .collect()
}

/// 10,000 versions a secret, an hour apart, each expired an hour after it was made; all but the
/// newest [`ENABLED_SINCE_LAST_SWEEP`] already disabled. Values are placeholders: a listing
/// carries no values, and nothing reads these versions.
fn seed_history(bed: &TestBed, shapes: &HashMap<String, SecretVersion>) {
    let now = chrono::Utc::now().timestamp();
    for name in PUBLISHED {
        let shape = &shapes[name];
        let versions = (0..HISTORY).map(|i| {
            let created = now - ((HISTORY - i) as i64) * 3600;
            SecretVersion {
                version: testbed::random_hex(16),
                value: format!("expired set {i}"),
                content_type: shape.content_type.clone(),
                tags: shape.tags.clone(),
                enabled: i >= HISTORY - ENABLED_SINCE_LAST_SWEEP,
                nbf: None,
                exp: Some(created + 3600),
                created,
                updated: created,
                managed: false,
            }
        });
        bed.vault.seed_versions(name, versions);
    }
}

/// What one sweep over a deep history cost.
struct Sweep {
    lists: usize,
    updates: usize,
    time: Duration,
    before: HashMap<String, u64>,
    after: HashMap<String, u64>,
    actions: usize,
    warnings: Vec<String>,
}

async fn sweep(b: &Bench, latency: Duration) -> anyhow::Result<(Sweep, Serve, TestBed)> {
    let shapes = published_shape(b).await?;
    let bed = TestBed::start().await?;
    seed_history(&bed, &shapes);
    let (serve, _) = Serve::start(&b.bin, &env_of(&bed, &[])).await?;
    quiet(&bed, Duration::from_millis(300)).await;
    let before = status(serve.pid());
    bed.vault.clear_log();
    set_latency(&bed, latency);
    let t = Instant::now();
    let (code, body) = serve.http_rotate(true).await?;
    anyhow::ensure!(code == 200, "rotation failed: {body}");
    // The side work ends within its budget (a quarter of RotationTimeBudgetSeconds).
    let side = loop {
        let state = serve.state().await?;
        if !state["sideWork"].is_null() {
            break state["sideWork"].clone();
        }
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(120),
            "the sweep never ended"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    set_latency(&bed, Duration::ZERO);
    let after = status(serve.pid());
    let log = bed.vault.log();
    let sweep: Vec<_> = log
        .iter()
        .filter(|r| r.op == "list" || r.op == "update")
        .collect();
    let first = sweep.iter().map(|r| r.started).min().unwrap_or(t);
    let last = sweep.iter().map(|r| r.finished).max().unwrap_or(t);
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let result = Sweep {
        lists: sweep.iter().filter(|r| r.op == "list").count(),
        updates: sweep.iter().filter(|r| r.op == "update").count(),
        time: last.saturating_duration_since(first),
        before,
        after,
        actions: strings(&side["actions"])
            .iter()
            .filter(|a| a.contains("version hygiene"))
            .count(),
        warnings: strings(&side["warnings"]),
    };
    Ok((result, serve, bed))
}

async fn deep_history(b: &mut Bench, n: usize) -> anyhow::Result<()> {
    let (fast, serve, bed) = sweep(b, Duration::ZERO).await?;
    let pages = HISTORY.div_ceil(25);
    b.row(
        "memory",
        &format!(
            "deep history: the sweep of {} versions × 4 secrets, requests",
            thousands(HISTORY as u64)
        ),
        format!("{} lists + {} updates", fast.lists, fast.updates),
        "",
        &format!(
            "{} versions a secret seeded into the bed's vault (hourly, each expired; the newest {ENABLED_SINCE_LAST_SWEEP} enabled, older ones disabled by earlier sweeps), then a new process's first forced rotation: its sweep lists {pages} pages of 25 a secret and disables the expired versions beyond KeepEnabledVersions (2); {} disabled, warnings: {}",
            thousands(HISTORY as u64),
            fast.actions,
            if fast.warnings.is_empty() { "none".to_string() } else { fast.warnings.join("; ") }
        ),
    );
    b.row(
        "memory",
        "deep history: the sweep's time (s), no added latency",
        format!("{:.2}", fast.time.as_secs_f64()),
        "",
        "first listing request to last disabling answer, from the vault's log (four secrets swept concurrently, each one's pages in sequence)",
    );
    b.row(
        "memory",
        "deep history: RSS before / after the sweep, peak (MiB)",
        format!(
            "{:.1} / {:.1}, peak {:.1}",
            mib(fast.before["VmRSS"]),
            mib(fast.after["VmRSS"]),
            mib(fast.after["VmHWM"])
        ),
        "",
        "VmRSS after the warm-up, VmRSS and VmHWM once the side work is reported done",
    );
    for i in 1..n {
        let (code, body) = serve.http_rotate(true).await?;
        anyhow::ensure!(code == 200, "rotation {i} failed: {body}");
    }
    quiet(&bed, Duration::from_millis(300)).await;
    let end = status(serve.pid());
    b.row(
        "memory",
        &format!("deep history: peak / current RSS after {n} rotations (MiB)"),
        format!("{:.1} / {}", mib(end["VmHWM"]), rss_text(&end)),
        "≤ 16",
        &format!(
            "the same process, {} rotations more (no second sweep: one a day); {}",
            n - 1,
            breakdown(serve.pid()).text()
        ),
    );
    drop(serve);
    drop(bed);
    for ms in [50, 100] {
        let (slow, serve, bed) = sweep(b, Duration::from_millis(ms)).await?;
        drop((serve, bed));
        b.row(
            "memory",
            &format!("deep history: the sweep's time (s) at {ms} ms per request"),
            format!("{:.1}", slow.time.as_secs_f64()),
            "< 30 (the side work's budget)",
            &format!(
                "the same history and sweep, {ms} ms on every request: {} lists + {} updates, {} disabled; warnings: {}; peak RSS {:.1} MiB",
                slow.lists,
                slow.updates,
                slow.actions,
                if slow.warnings.is_empty() { "none".to_string() } else { slow.warnings.join("; ") },
                mib(slow.after["VmHWM"])
            ),
        );
    }
    Ok(())
}
