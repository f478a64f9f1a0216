//! The report: BENCHMARKS.md, whole, from one run — the header (commit, date, machine, load),
//! every table, and the notes on how to read them. What `scripts/bench.sh` measured before this
//! program ran comes in `BENCH_*` variables: `BENCH_COMMIT` (the commit built), `BENCH_DIRTY`
//! (files changed since it, if any), `BENCH_BINARY_BYTES`, `BENCH_RUSTC`, `BENCH_PROFILE` (the
//! release profile's settings, from Cargo.toml), and the build rows
//! `BENCH_BUILD_COLD`, `BENCH_BUILD_WARM`, `BENCH_BUILD_RUN` (each `value|how measured`).
//!
//! The machine's load is measured here ([`Watch`]): the load average before and after, and over
//! the run how busy the cores were — this run's processes (the benchmark, the test bed's servers,
//! every `stsbridge` it started) against everything else, sampled from `/proc` every second.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::trips::{TripRow, LATENCIES};
use crate::Bench;

/// Clock ticks per second of `/proc`'s CPU times (`getconf CLK_TCK`; 100 on Linux x86-64).
const TICKS: f64 = 100.0;

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `(busy, total)` ticks of all cores, from `/proc/stat`.
fn cpu_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// `(ppid, comm, own ticks, waited-for children's ticks)` of a process.
fn proc_stat(pid: &str) -> Option<(u32, String, u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let comm = s[open + 1..close].to_string();
    let f: Vec<&str> = s[close + 2..].split(' ').collect();
    let n = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    Some((n(1) as u32, comm, n(11) + n(12), n(13) + n(14)))
}

/// Every process: pid → (ppid, comm, ticks).
fn processes() -> HashMap<u32, (u32, String, u64)> {
    let mut out = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Ok(pid) = name.parse::<u32>() {
                if let Some((ppid, comm, ticks, _)) = proc_stat(&name) {
                    out.insert(pid, (ppid, comm, ticks));
                }
            }
        }
    }
    out
}

/// The machine's load over a run.
pub struct Watch {
    started: Instant,
    date: chrono::DateTime<chrono::Utc>,
    load_before: String,
    cpu_before: (u64, u64),
    own_before: u64,
    others: Arc<Mutex<BTreeMap<String, u64>>>,
    stop: Arc<AtomicBool>,
    sampler: Option<std::thread::JoinHandle<()>>,
}

/// What [`Watch::finish`] found.
pub struct Load {
    pub date: chrono::DateTime<chrono::Utc>,
    pub seconds: f64,
    pub load_before: String,
    pub load_after: String,
    pub cores: usize,
    /// Shares of all cores' time over the run, in %.
    pub busy: f64,
    pub own: f64,
    /// The other processes that used the most CPU, in CPU-seconds.
    pub others: Vec<(String, f64)>,
}

impl Watch {
    pub fn start() -> Watch {
        let me = std::process::id();
        let own_before = proc_stat("self").map(|(_, _, a, b)| a + b).unwrap_or(0);
        let others: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (others, stop) = (others.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut last = processes();
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_secs(1));
                    let now = processes();
                    let ours = |pid: u32| {
                        let mut at = pid;
                        for _ in 0..32 {
                            if at == me {
                                return true;
                            }
                            match now.get(&at) {
                                Some((ppid, _, _)) if *ppid != 0 => at = *ppid,
                                _ => return false,
                            }
                        }
                        false
                    };
                    let mut others = others.lock().unwrap();
                    for (pid, (_, comm, ticks)) in &now {
                        if ours(*pid) {
                            continue;
                        }
                        let before = match last.get(pid) {
                            // (A kernel worker renames itself after its work item.)
                            Some((_, _, t)) if t <= ticks => *t,
                            // Started since the last sample (or a reused pid).
                            _ => 0,
                        };
                        let name = match comm.split_once('/') {
                            Some((kernel, _)) if kernel.starts_with("kworker") => "kworker",
                            _ => comm.as_str(),
                        };
                        *others.entry(name.to_string()).or_default() +=
                            ticks.saturating_sub(before);
                    }
                    last = now;
                }
            })
        };
        Watch {
            started: Instant::now(),
            date: chrono::Utc::now(),
            load_before: loadavg(),
            cpu_before: cpu_ticks(),
            own_before,
            others,
            stop,
            sampler: Some(sampler),
        }
    }

    pub fn finish(mut self) -> Load {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(s) = self.sampler.take() {
            let _ = s.join();
        }
        let (busy, total) = cpu_ticks();
        let own = proc_stat("self").map(|(_, _, a, b)| a + b).unwrap_or(0);
        let total = (total - self.cpu_before.1).max(1) as f64;
        let mut others: Vec<(String, f64)> = self
            .others
            .lock()
            .unwrap()
            .iter()
            .map(|(c, t)| (c.clone(), *t as f64 / TICKS))
            .filter(|(_, s)| *s >= 1.0)
            .collect();
        others.sort_by(|a, b| b.1.total_cmp(&a.1));
        others.truncate(8);
        Load {
            date: self.date,
            seconds: self.started.elapsed().as_secs_f64(),
            load_before: self.load_before,
            load_after: loadavg(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            busy: (busy - self.cpu_before.0) as f64 / total * 100.0,
            own: own.saturating_sub(self.own_before) as f64 / total * 100.0,
            others,
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map(|kib| kib / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{} cores ({cpu}), {mem:.0} GiB, Linux {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        kernel.trim()
    )
}

fn table(out: &mut String, rows: &[&crate::Row]) {
    out.push_str("| figure | value | target | how measured |\n|---|---|---|---|\n");
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            r.what, r.value, r.target, r.how
        ));
    }
}

fn trip_table(out: &mut String, rows: &[&TripRow]) {
    out.push_str("| situation | floor | ");
    for l in LATENCIES {
        let ms = l.as_millis();
        out.push_str(&format!("counted at {ms} ms | wall / {ms} ms (wall) | "));
    }
    out.push_str("how measured |\n|---|---|");
    for _ in LATENCIES {
        out.push_str("---|---|");
    }
    out.push_str("---|\n");
    for r in rows {
        out.push_str(&format!("| {} | {} | ", r.situation, r.floor));
        for l in LATENCIES {
            match r.cells.iter().find(|c| c.latency == l) {
                Some(c) => {
                    out.push_str(&format!("**{}** | {} | ", c.counted_text(), c.wall_text()))
                }
                None => out.push_str("— | — | "),
            }
        }
        out.push_str(&format!("{} |\n", r.how));
    }
}

/// The leading number of a floor ("4: read, …" → 4).
fn floor_of(row: &TripRow) -> Option<usize> {
    row.floor
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
}

pub fn markdown(b: &Bench, load: &Load, args: &[String]) -> String {
    let mut out = String::new();
    let short = match env("BENCH_COMMIT") {
        Some(c) => format!("commit {}", &c[..c.len().min(12)]),
        None => "an unknown commit (not run by scripts/bench.sh)".into(),
    };
    out.push_str("# Benchmarks\n\n");
    out.push_str("Generated by `scripts/bench.sh` from one run (`bench/`, against the local test bed): every\nfigure below comes from that run; nothing here is written by hand, and nothing is asserted.\nRe-run it to update the file (`scripts/bench.sh --write`). The soak under random faults\n(`scripts/bench.sh --soak`, `--soak --self-test`) checks invariants and exits 1 on a violation;\nits figures are in RELIABILITY.md.\n\n");
    let dirty = match env("BENCH_DIRTY") {
        Some(files) => format!(" **plus uncommitted changes** to {files}"),
        None => String::new(),
    };
    out.push_str(&format!(
        "- **Measured:** the release build of {short}{dirty} ({}; {}), {} UTC, `scripts/bench.sh{}{}`, {:.0} min in all.\n",
        env("BENCH_PROFILE").unwrap_or_else(|| "profile unknown".into()),
        env("BENCH_RUSTC").unwrap_or_else(|| "rustc unknown".into()),
        load.date.format("%Y-%m-%d %H:%M"),
        if args.is_empty() { "" } else { " " },
        args.iter()
            .filter(|a| !a.starts_with("--markdown") && !a.ends_with(".md"))
            .cloned()
            .collect::<Vec<_>>()
            .join(" "),
        load.seconds / 60.0,
    ));
    out.push_str(&format!("- **Machine:** {}.\n", machine()));
    let others = match load.others.is_empty() {
        true => "none measurable".to_string(),
        false => load
            .others
            .iter()
            .map(|(c, s)| format!("{c} {s:.0} s"))
            .collect::<Vec<_>>()
            .join(", "),
    };
    out.push_str(&format!(
        "- **Load:** load average (1, 5, 15 min) {} before the benchmarks, {} after. Over the benchmarks' {:.0} s the {} cores were {:.0} % busy: this run's own processes (the benchmark, the test bed's servers, every `stsbridge` it started) {:.0} %, other work {:.0} % (CPU time of the busiest other processes: {others}).{}\n",
        load.load_before,
        load.load_after,
        load.seconds,
        load.cores,
        load.busy,
        load.own,
        (load.busy - load.own).max(0.0),
        match env("BENCH_BUILD_LOAD") {
            Some(l) => format!(" During the builds: {l}."),
            None => String::new(),
        }
    ));
    if b.quick {
        out.push_str("- **`--quick`:** fewer samples and 200 rotations instead of 1000: a development run, not the published figures.\n");
    }
    out.push('\n');

    // Round trips.
    out.push_str("## Round trips\n\n");
    out.push_str("Counted, not inferred: every test-bed server a rotation talks to — Key Vault, the identity\nendpoint, STS/IAM, Roles Anywhere, storage (a relay in front of Azurite) and Resource Manager —\nlogs each request with when it arrived and when its answer was ready, and every one of them waits\nthe same injected latency (50 ms, then 100 ms). The **counted** round trips of an exchange are the\nlongest chain of requests inside [trigger sent, answer received] in which each starts after the\nprevious one ended: requests that overlap are one step. The median over the samples is shown, with\nthe range when samples differ. Wall time over the latency is beside it (the old measure: it adds\nlocal work — TLS, JSON, moto behind the STS front — to the round trips). The floor is what the\nprotocol needs.\n\n");
    let tables = [
        (
            "rotation",
            "### Rotation: cold and warm, with and without the rotation lease\n\n",
        ),
        (
            "side",
            "### Side work, cold start and consumer apps (issues #17, #18)\n\n",
        ),
        ("consumers", "### Consumers\n\n"),
    ];
    for (name, title) in tables {
        let rows: Vec<&TripRow> = b.trips.iter().filter(|r| r.table == name).collect();
        out.push_str(title);
        if rows.is_empty() {
            out.push_str("Not measured in this run (`--only`).\n\n");
            continue;
        }
        trip_table(&mut out, &rows);
        out.push('\n');
    }
    let four: Vec<&TripRow> = b.trips.iter().filter(|r| floor_of(r) == Some(4)).collect();
    if !four.is_empty() {
        let cells: Vec<(&TripRow, &crate::trips::Cell)> = four
            .iter()
            .flat_map(|r| r.cells.iter().map(move |c| (*r, c)))
            .collect();
        let over: Vec<String> = cells
            .iter()
            .filter(|(_, c)| c.counted().0 > 4)
            .map(|(r, c)| {
                format!(
                    "\"{}\" at {} ms ({})",
                    r.situation,
                    c.latency.as_millis(),
                    c.counted_text()
                )
            })
            .collect();
        let max_sample = cells.iter().map(|(_, c)| c.counted().2).max().unwrap_or(0);
        let ratio = |c: &crate::trips::Cell| c.wall().as_secs_f64() / c.latency.as_secs_f64();
        let (lo, hi) = cells.iter().fold((f64::MAX, 0.0f64), |(lo, hi), (_, c)| {
            (lo.min(ratio(c)), hi.max(ratio(c)))
        });
        out.push_str(&format!(
            "**Target: ≤ 4.3 counted round trips in every situation whose floor is 4** (read, mint, verify,\npublish; {} rows × 2 latencies). {} The most in any single sample: {max_sample}. Wall time over the\nlatency in those rows: {lo:.2}–{hi:.2}.\n\n",
            four.len(),
            match over.is_empty() {
                true => "Met: none counts more than 4 (median).".to_string(),
                false => format!("Missed by: {}.", over.join("; ")),
            },
        ));
    }
    if !b.trips.is_empty() {
        out.push_str("<details><summary>The chain counted in each row (a sample with the median count, at 100 ms)</summary>\n\n");
        for r in &b.trips {
            if let Some(c) = r.cells.iter().find(|c| c.latency == LATENCIES[1]) {
                let s = c.typical();
                out.push_str(&format!(
                    "- {}: {} of {} requests in the window: {}\n",
                    r.situation,
                    s.chain.len(),
                    s.requests,
                    if s.chain.is_empty() {
                        "none".to_string()
                    } else {
                        s.steps()
                    }
                ));
            }
        }
        out.push_str("\n</details>\n\n");
    }

    let sections = [
        ("memory", "## Memory\n\n"),
        ("scale", "## Start-up and scale\n\n"),
        ("consumers", "## The credentials endpoint\n\n"),
    ];
    for (section, title) in sections {
        let rows: Vec<&crate::Row> = b.rows.iter().filter(|r| r.section == section).collect();
        if rows.is_empty() {
            continue;
        }
        out.push_str(title);
        table(&mut out, &rows);
        out.push('\n');
        for (_, note) in b.notes.iter().filter(|(s, _)| *s == section) {
            out.push_str(note);
            out.push_str("\n\n");
        }
        if section == "memory" {
            out.push_str(MEMORY_NOTES);
        }
    }

    out.push_str("## Build and binary\n\n");
    out.push_str("| figure | value | how measured |\n|---|---|---|\n");
    for (var, what) in [
        ("BENCH_BUILD_COLD", "release build from an empty cache"),
        (
            "BENCH_BUILD_WARM",
            "release build after a change to the crate",
        ),
        (
            "BENCH_BUILD_RUN",
            "this run's build (before the benchmarks)",
        ),
    ] {
        let (value, how) = match env(var) {
            Some(v) => match v.split_once('|') {
                Some((a, b)) => (a.to_string(), b.to_string()),
                None => (v, String::new()),
            },
            None => (
                "not measured".into(),
                "this run did not build it (scripts/bench.sh --no-cold-build, --quick, or not run by the script)".into(),
            ),
        };
        out.push_str(&format!("| {what} | {value} | {how} |\n"));
    }
    match env("BENCH_BINARY_BYTES").and_then(|v| v.parse::<u64>().ok()) {
        Some(bytes) => out.push_str(&format!(
            "| binary size (release, stripped) | {:.1} MB ({} bytes) | `stat -c %s` of the binary measured |\n",
            bytes as f64 / 1e6,
            thousands(bytes)
        )),
        None => out.push_str("| binary size | not measured | not run by scripts/bench.sh |\n"),
    }
    out.push_str("\nThe deployment build (`scripts/build-deploy.sh --check`, zig, glibc 2.28) is not built here: CI\nmeasures it.\n\n");
    out.push_str(READING);
    out
}

pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

const MEMORY_NOTES: &str = "How to read the memory rows: `VmRSS` is split into anonymous memory (the heap, stacks) and\nfile-backed pages (the binary's own code and data as far as they were touched, and the shared\nlibraries); the breakdown comes from `/proc/PID/smaps`. glibc's malloc gives threads other than\nthe main one their own arenas (64 MiB reserved each, resident as far as used), so a multi-threaded\nruntime holds some freed memory in several places; `MALLOC_ARENA_MAX=1` shows how much. The deep\nhistory is seeded straight into the test bed's vault (10,000 versions of each of the four\npublished secrets); the sweep streams the listing (docs/settings.md, `KeepEnabledVersions`), so\nits memory does not grow with the history, and its time does: one listing request per 25\nversions, each secret's pages in sequence.\n\n";

const READING: &str = "## Reading the figures\n\n- **Floors.** A warm rotation in access-key mode is four sequential stages: read (the source\n  key's two secrets and the published set, concurrently), `GetSessionToken`, `GetCallerIdentity`\n  with the new credentials, and the four writes concurrently. Roles-anywhere mode has five: read\n  (the published set; the certificate is cached — read once, then hourly — never a signature),\n  Key Vault's `sign`, `CreateSession`, the verification, the writes. A cold process adds the\n  identity token and Key Vault's challenge (one unauthenticated request per vault), and in\n  roles-anywhere mode the certificate and its chain. Each Azure SDK client (secrets, certificates,\n  keys) meets Key Vault's challenge on its own first request: the chains below show every\n  `kv challenge` a cold process paid. A cold sample's chain may pass through the warm-up's\n  requests (in flight at the trigger): it counts what ran in sequence inside the window.\n- **The rotation lease** (docs/lease.md) is acquired concurrently with the reads and released\n  after the answer: it should add no counted round trip, which the rows with and without it show.\n- **Side work** (the source key's bookkeeping, version hygiene, consumer refreshes) runs after the\n  answer, so it is outside the counted window; a warm sample is taken once the previous run's side\n  work has ended.\n- **Concurrency**: every invocation joins the one rotation in flight (single flight), so one mint.\n- **Many targets** share the clients (identity token, Key Vault challenge, connections): only the\n  first target pays the cold start. Pacing holds Key Vault writes to the configured rate.\n- **The credentials endpoint** answers from memory; `credential-process` pays a process start,\n  and cold also the token, the challenge and the read.\n";
