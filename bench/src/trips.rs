//! Round trips counted, not inferred (issue #32): every test-bed server a rotation talks to —
//! Key Vault, the identity endpoint, STS/IAM, Roles Anywhere, storage (the relay in front of
//! Azurite) and Resource Manager — logs each request with when it arrived and when its answer was
//! ready, and waits the same injected latency. The round trips an answer waited for are the
//! longest chain of those requests inside [trigger sent, answer received] in which each request
//! starts after the previous one ended: requests that overlap in time are one step. Wall time
//! divided by the latency is printed next to it (the old measure: it includes local work).
//!
//! The rotation rows are here ([`rotations`]): access-key and roles-anywhere mode, with and
//! without the rotation lease, cold and warm, at 50 ms and at 100 ms. The side-work situations
//! are in [`crate::side`], the consumers' in [`crate::consumers`]; all use [`Sample`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use testbed::{KeySpec, TestBed};

use crate::{env_of, median, Bench, Serve};

/// The latencies every round-trip table is measured at.
pub const LATENCIES: [Duration; 2] = [Duration::from_millis(50), Duration::from_millis(100)];

/// One request a test-bed server answered.
#[derive(Clone, Debug)]
pub struct Span {
    pub server: &'static str,
    pub what: String,
    pub started: Instant,
    pub finished: Instant,
}

/// Every request every server of `bed` logged so far.
pub fn spans(bed: &TestBed) -> Vec<Span> {
    let mut out = vec![];
    for r in bed.vault.log() {
        let what = match (r.authorized, r.name) {
            (false, _) => "challenge".to_string(),
            (true, Some(name)) => format!("{} {name}", r.op),
            (true, None) => r.op.to_string(),
        };
        out.push(Span {
            server: "kv",
            what,
            started: r.started,
            finished: r.finished,
        });
    }
    for r in bed.issuer.requests() {
        out.push(Span {
            server: "identity",
            what: "token".into(),
            started: r.started,
            finished: r.finished,
        });
    }
    for c in bed.sts.calls() {
        out.push(Span {
            server: if c.service == "iam" { "iam" } else { "sts" },
            what: c.action,
            started: c.started,
            finished: c.finished,
        });
    }
    for c in bed.rolesanywhere.calls() {
        out.push(Span {
            server: "rolesanywhere",
            what: "CreateSession".into(),
            started: c.started,
            finished: c.finished,
        });
    }
    for c in bed.arm.calls() {
        out.push(Span {
            server: "arm",
            what: c.op.to_string(),
            started: c.started,
            finished: c.finished,
        });
    }
    if let Some(storage) = &bed.storage {
        for r in storage.requests() {
            let what = match (
                r.method.as_str(),
                r.params.get("restype").map(String::as_str),
                r.params.get("comp").map(String::as_str),
            ) {
                ("PUT", Some("container"), _) => "create container".to_string(),
                (_, _, Some("lease")) => "lease".to_string(),
                ("PUT", None, None) => "create blob".to_string(),
                (method, _, _) => method.to_string(),
            };
            out.push(Span {
                server: "storage",
                what,
                started: r.started,
                finished: r.finished,
            });
        }
    }
    out
}

/// The longest chain of requests inside `[from, to]`, each starting after the previous one
/// ended; overlapping requests cannot both be in it, so they count as one step.
pub fn longest_chain(spans: &[Span], from: Instant, to: Instant) -> Vec<Span> {
    let mut inside: Vec<&Span> = spans
        .iter()
        .filter(|s| s.started >= from && s.finished <= to)
        .collect();
    inside.sort_by_key(|s| (s.finished, s.started));
    // best[i]: the longest chain ending with inside[i]; prev[i]: the request before it.
    let mut best = vec![0usize; inside.len()];
    let mut prev: Vec<Option<usize>> = vec![None; inside.len()];
    for i in 0..inside.len() {
        best[i] = 1;
        for j in 0..i {
            if inside[j].finished <= inside[i].started && best[j] + 1 > best[i] {
                best[i] = best[j] + 1;
                prev[i] = Some(j);
            }
        }
    }
    let Some(mut at) = (0..inside.len()).max_by_key(|&i| (best[i], std::cmp::Reverse(i))) else {
        return vec![];
    };
    let mut chain = vec![inside[at].clone()];
    while let Some(p) = prev[at] {
        chain.push(inside[p].clone());
        at = p;
    }
    chain.reverse();
    chain
}

/// The same latency on every server of the bed (the identity endpoint's included).
pub fn set_latency(bed: &TestBed, latency: Duration) {
    bed.set_latency(latency);
}

/// Waits until no server has answered anything for `period` (at most 20 s): the side work of
/// the last run has ended (or hangs, unlogged, as a never-answered request does).
pub async fn quiet(bed: &TestBed, period: Duration) {
    let end = Instant::now() + Duration::from_secs(20);
    let mut seen = spans(bed).len();
    let mut since = Instant::now();
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = spans(bed).len();
        if now != seen {
            (seen, since) = (now, Instant::now());
        } else if since.elapsed() >= period {
            return;
        }
    }
}

/// One timed exchange: its wall time and the chain of requests counted in it.
#[derive(Clone, Debug)]
pub struct Sample {
    pub wall: Duration,
    pub chain: Vec<Span>,
    /// Every request inside the window.
    pub requests: usize,
}

impl Sample {
    pub fn of(bed: &TestBed, from: Instant, to: Instant) -> Sample {
        let all = spans(bed);
        Sample {
            wall: to - from,
            requests: all
                .iter()
                .filter(|s| s.started >= from && s.finished <= to)
                .count(),
            chain: longest_chain(&all, from, to),
        }
    }

    /// `kv get ▸ sts GetSessionToken ▸ …`
    pub fn steps(&self) -> String {
        self.chain
            .iter()
            .map(|s| format!("{} {}", s.server, s.what))
            .collect::<Vec<_>>()
            .join(" ▸ ")
    }
}

/// The samples of one situation at one latency.
#[derive(Clone, Debug)]
pub struct Cell {
    pub latency: Duration,
    pub samples: Vec<Sample>,
}

impl Cell {
    pub fn counted(&self) -> (usize, usize, usize) {
        let mut n: Vec<usize> = self.samples.iter().map(|s| s.chain.len()).collect();
        n.sort();
        (n[n.len() / 2], n[0], n[n.len() - 1])
    }

    pub fn wall(&self) -> Duration {
        Duration::from_secs_f64(median(
            self.samples.iter().map(|s| s.wall.as_secs_f64()).collect(),
        ))
    }

    /// The counted round trips: the median, with the range when the samples differ.
    pub fn counted_text(&self) -> String {
        match self.counted() {
            (m, lo, hi) if lo == hi => m.to_string(),
            (m, lo, hi) => format!("{m} ({lo}–{hi})"),
        }
    }

    /// Wall time over the latency, and the wall time.
    pub fn wall_text(&self) -> String {
        let w = self.wall();
        format!(
            "{:.2} ({:.0} ms)",
            w.as_secs_f64() / self.latency.as_secs_f64(),
            w.as_secs_f64() * 1000.0
        )
    }

    /// The chain of the sample whose count is the median (for the steps listed under a table).
    pub fn typical(&self) -> &Sample {
        let (m, _, _) = self.counted();
        self.samples
            .iter()
            .find(|s| s.chain.len() == m)
            .expect("the median is a sample's")
    }
}

/// A row of a round-trip table: one situation at every latency.
#[derive(Clone, Debug)]
pub struct TripRow {
    pub table: &'static str,
    pub situation: String,
    pub floor: String,
    pub how: String,
    pub cells: Vec<Cell>,
}

impl Bench {
    pub fn trip_row(&mut self, row: TripRow) {
        for c in &row.cells {
            println!(
                "  {:<60} {:>4} ms  counted {:<9} wall/latency {:<16} {} requests: {}",
                row.situation,
                c.latency.as_millis(),
                c.counted_text(),
                c.wall_text(),
                c.typical().requests,
                c.typical().steps()
            );
        }
        self.trips.push(row);
    }
}

/// The settings of roles-anywhere mode against `bed` (as tests/e2e/roles_anywhere.rs's
/// `ra_env`): the certificate `name` made by [`TestBed::setup_roles_anywhere`], no source key.
pub fn ra_env(bed: &TestBed, ra: &testbed::RolesAnywhereSetup) -> HashMap<String, String> {
    let mut env = env_of(
        bed,
        &[
            ("CredentialMode", "roles-anywhere"),
            ("RoleArn", &ra.role_arn),
            ("RolesAnywhereTrustAnchorArn", &ra.trust_anchor_arn),
            ("RolesAnywhereProfileArn", &ra.profile_arn),
            ("RolesAnywhereCertificate", &ra.certificate.name),
            ("SessionDurationSeconds", "3600"),
        ],
    );
    env.remove("UsernameFromKeyVault");
    env.remove("PasswordFromKeyVault");
    env
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    AccessKey,
    RolesAnywhere,
}

/// Cold and warm forced rotations of fresh `serve` processes, one test bed per mode, storage
/// and latency. Cold: the latency is on from the spawn, and the invocation comes the moment
/// `GET /` answers (the warm-up still in flight). Warm: the second rotation, once the first
/// one's side work (and lease release) has ended.
pub async fn rotations(b: &mut Bench) -> anyhow::Result<()> {
    let runs = if b.quick { 3 } else { 7 };
    for mode in [Mode::AccessKey, Mode::RolesAnywhere] {
        for storage in [false, true] {
            let (mut cold, mut warm, mut after) = (vec![], vec![], vec![]);
            for latency in LATENCIES {
                let [c, w, a] = rotation_cells(b, mode, storage, latency, runs).await?;
                cold.push(c);
                warm.push(w);
                after.push(a);
            }
            let (name, floor_warm, floor_cold, how_warm) = match mode {
                Mode::AccessKey => (
                    "access-key mode",
                    "4: read, mint, verify, publish",
                    "6: + Key Vault's challenge and the identity token",
                    "the source key's two secrets and the published set read concurrently",
                ),
                Mode::RolesAnywhere => (
                    "roles-anywhere mode",
                    "5: read, sign (Key Vault), CreateSession, verify, publish",
                    "7: + Key Vault's challenge and the identity token (the certificate read with the published set)",
                    "the certificate cached (read once, then hourly), never a signature",
                ),
            };
            let lease = match storage {
                true => ", with the rotation lease",
                false => "",
            };
            let storage_how = match storage {
                true => "; AzureWebJobsStorage set (Azurite through the relay, the same latency)",
                false => "; no storage (no lease)",
            };
            b.trip_row(TripRow {
                table: "rotation",
                situation: format!("{name}{lease}: warm forced rotation"),
                floor: floor_warm.into(),
                how: format!("second rotation of a process, after the first one's side work{storage_how}; {how_warm}; median of {runs}"),
                cells: warm,
            });
            b.trip_row(TripRow {
                table: "rotation",
                situation: format!("{name}{lease}: first forced rotation, 1 s after start"),
                floor: floor_warm.into(),
                how: format!("a new process, latency on from the spawn, invoked once its warm-up has had a second{storage_how}; median of {runs}"),
                cells: after,
            });
            b.trip_row(TripRow {
                table: "rotation",
                situation: format!("{name}{lease}: cold forced rotation"),
                floor: floor_cold.into(),
                how: format!("first rotation of a new process, invoked the moment GET / answers (the warm-up in flight), latency on from the spawn{storage_how}; median of {runs}"),
                cells: cold,
            });
        }
    }
    Ok(())
}

/// `[cold, warm, after the warm-up]` samples of one mode, storage and latency.
async fn rotation_cells(
    b: &Bench,
    mode: Mode,
    storage: bool,
    latency: Duration,
    runs: usize,
) -> anyhow::Result<[Cell; 3]> {
    let bed = TestBed::start_with(testbed::Options {
        storage,
        ..Default::default()
    })
    .await?;
    let env = match mode {
        Mode::AccessKey => env_of(&bed, &[]),
        Mode::RolesAnywhere => {
            let ra = bed.setup_roles_anywhere("bench", KeySpec::EcP256).await?;
            ra_env(&bed, &ra)
        }
    };
    let settle = 2 * latency + Duration::from_millis(200);
    if storage {
        prime_lease(b, &bed, &env).await?;
    }
    let (mut cold, mut warm, mut after) = (vec![], vec![], vec![]);
    for _ in 0..runs {
        set_latency(&bed, latency);
        let (serve, _) = Serve::start(&b.bin, &env).await?;
        cold.push(rotate_once(&bed, &serve, "cold").await?);
        quiet(&bed, settle).await;
        warm.push(rotate_once(&bed, &serve, "warm").await?);
        // Let it release the lease before it is killed: a killed holder's lease would hold the
        // next process's first rotation until it expires (RotationLeaseSeconds).
        quiet(&bed, settle).await;
        drop(serve);

        let (serve, _) = Serve::start(&b.bin, &env).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        after.push(rotate_once(&bed, &serve, "first").await?);
        quiet(&bed, settle).await;
        drop(serve);
        set_latency(&bed, Duration::ZERO);
    }
    let cell = |samples| Cell { latency, samples };
    Ok([cell(cold), cell(warm), cell(after)])
}

/// One rotation by a process of its own, so that the lease's container and blob exist, as
/// they do after a target's first rotation ever (which creates them: a situation of its own,
/// [`crate::side`]); it ends once the lease is released.
pub async fn prime_lease(
    b: &Bench,
    bed: &TestBed,
    env: &HashMap<String, String>,
) -> anyhow::Result<()> {
    let (serve, _) = Serve::start(&b.bin, env).await?;
    rotate_once(bed, &serve, "priming").await?;
    quiet(bed, Duration::from_millis(300)).await;
    Ok(())
}

/// One forced rotation, timed and counted.
pub async fn rotate_once(bed: &TestBed, serve: &Serve, what: &str) -> anyhow::Result<Sample> {
    let t = Instant::now();
    let (status, body) = serve.http_rotate(true).await?;
    let done = Instant::now();
    anyhow::ensure!(status == 200, "{what} rotation answered {status}: {body}");
    Ok(Sample::of(bed, t, done))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(at: Instant, from_ms: u64, to_ms: u64) -> Span {
        Span {
            server: "kv",
            what: format!("{from_ms}-{to_ms}"),
            started: at + Duration::from_millis(from_ms),
            finished: at + Duration::from_millis(to_ms),
        }
    }

    #[test]
    fn overlapping_requests_are_one_step_and_sequential_ones_chain() {
        let t = Instant::now();
        // Three concurrent reads, a mint, a verify, four concurrent writes.
        let spans = [
            span(t, 1, 50),
            span(t, 2, 52),
            span(t, 2, 51),
            span(t, 53, 100),
            span(t, 101, 150),
            span(t, 151, 200),
            span(t, 152, 201),
            span(t, 151, 199),
            span(t, 153, 203),
        ];
        let chain = longest_chain(&spans, t, t + Duration::from_millis(210));
        assert_eq!(chain.len(), 4);
        assert!(chain.windows(2).all(|w| w[0].finished <= w[1].started));
    }

    #[test]
    fn requests_outside_the_window_are_not_counted() {
        let t = Instant::now();
        let spans = [
            span(t, 0, 10),
            span(t, 20, 30),
            span(t, 40, 50),
            span(t, 60, 70),
        ];
        // The first starts before the trigger, the last ends after the answer.
        let chain = longest_chain(
            &spans,
            t + Duration::from_millis(5),
            t + Duration::from_millis(65),
        );
        assert_eq!(chain.len(), 2);
        assert!(longest_chain(&[], t, t).is_empty());
    }

    #[test]
    fn a_long_request_beside_a_chain_does_not_shorten_it() {
        let t = Instant::now();
        let spans = [
            span(t, 0, 100),
            span(t, 0, 10),
            span(t, 11, 20),
            span(t, 21, 30),
        ];
        assert_eq!(
            longest_chain(&spans, t, t + Duration::from_millis(100)).len(),
            3
        );
    }
}
