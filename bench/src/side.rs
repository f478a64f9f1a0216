//! Round trips before the answer in the situations of issue #17's table (side work, cold start)
//! and issue #18's (consumer apps to refresh), with storage configured (Azurite: the rotation
//! lease) and the same latency on every server ([`crate::trips::set_latency`]), at 50 ms and at
//! 100 ms. Each sample starts its own test bed and `serve`; one sample is a forced `HttpRotate`
//! from the invocation to its answer, its round trips counted from the servers' logs.

use std::time::{Duration, Instant};

use testbed::{Fault, Rule, TestBed, SOURCE_KEY_ID_SECRET, SOURCE_SECRET_KEY_SECRET};

use crate::trips::{prime_lease, quiet, set_latency, Cell, Sample, TripRow, LATENCIES};
use crate::{env_of, Bench, Serve};

const CONSUMER_APPS: &str = "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg/providers/Microsoft.Web/sites";

/// How a situation is set up before the timed rotation.
#[derive(Clone, Copy, PartialEq)]
enum Situation {
    /// The source key's age is already recorded (an earlier rotation's side work did it).
    Steady,
    /// A warm process's first rotation of a key whose age is not recorded yet.
    FirstOfKey,
    /// IAM refuses `iam:ListAccessKeys` (seed 000's user has no IAM rights): every rotation.
    IamDenied,
    /// IAM takes the connection and never answers.
    IamHangs,
    /// The first invocation of a new process, one second after it started.
    Cold,
    /// Three App Service apps in `RefreshAppSettingsOf`.
    ThreeConsumerApps,
    /// A target's first rotation ever: the storage account has no lease container or blob yet.
    FirstLease,
}

async fn sample(b: &Bench, situation: Situation, latency: Duration) -> anyhow::Result<Sample> {
    let bed = TestBed::start_with(testbed::Options {
        storage: true,
        ..Default::default()
    })
    .await?;
    let mut extra: Vec<(&str, String)> = vec![];
    match situation {
        Situation::IamDenied => bed.sts.faults.add(Rule::on(
            "ListAccessKeys",
            Fault::error(
                403,
                "AccessDenied",
                "not authorized to perform iam:ListAccessKeys",
            ),
        )),
        Situation::IamHangs => bed.sts.faults.add(Rule::on(
            "ListAccessKeys",
            Fault::Delay(Duration::from_secs(3600)),
        )),
        Situation::ThreeConsumerApps => {
            let ids: Vec<String> = ["a", "b", "c"]
                .iter()
                .map(|n| format!("{CONSUMER_APPS}/consumer-{n}"))
                .collect();
            for id in &ids {
                bed.arm.add_app(
                    id,
                    &[("AWS_CREDENTIALS", "AwsSessionCredentials", "Resolved")],
                );
            }
            extra.push(("RefreshAppSettingsOf", ids.join(",")));
        }
        _ => {}
    }
    let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let env = env_of(&bed, &extra);
    if matches!(situation, Situation::Cold | Situation::FirstOfKey) {
        // Earlier processes rotated (the lease's container and blob exist) ...
        prime_lease(b, &bed, &env).await?;
        // ... but this key is new: its two secrets again, without the recorded age.
        bed.vault
            .seed(SOURCE_KEY_ID_SECRET, &bed.source.access_key_id, &[]);
        bed.vault
            .seed(SOURCE_SECRET_KEY_SECRET, &bed.source.secret_access_key, &[]);
    }
    if matches!(situation, Situation::Cold | Situation::FirstLease) {
        set_latency(&bed, latency);
    }
    let (serve, _) = Serve::start(&b.bin, &env).await?;
    match situation {
        Situation::Cold | Situation::FirstOfKey | Situation::FirstLease => {
            // serve's start-up warm-up runs in the background; give it the second the issue
            // allows before the first invocation.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        _ => {
            // A first rotation, then time for its side work (which records the key's age, or
            // meets the denial or the hang) to finish or time out, and for its lease's release.
            let (status, _) = serve.http_rotate(true).await?;
            anyhow::ensure!(status == 200, "the first rotation answered {status}");
            quiet(&bed, Duration::from_millis(300)).await;
        }
    }
    set_latency(&bed, latency);
    let t = Instant::now();
    let (status, _) = serve.http_rotate(true).await?;
    let done = Instant::now();
    anyhow::ensure!(status == 200, "the timed rotation answered {status}");
    let sample = Sample::of(&bed, t, done);
    set_latency(&bed, Duration::ZERO);
    Ok(sample)
}

pub async fn side(b: &mut Bench) -> anyhow::Result<()> {
    let runs = if b.quick { 3 } else { 7 };
    for (situation, what, how) in [
        (
            Situation::Steady,
            "side work: steady state, key age recorded",
            "warm forced rotation after one whose side work finished",
        ),
        (
            Situation::FirstOfKey,
            "side work: first rotation of a key, IAM answering",
            "warm process (1 s after start), key age not yet recorded",
        ),
        (
            Situation::IamDenied,
            "side work: IAM refusing iam:ListAccessKeys",
            "second rotation, ListAccessKeys answered 403 AccessDenied",
        ),
        (
            Situation::IamHangs,
            "side work: IAM accepting but never answering",
            "second rotation, ListAccessKeys never answered",
        ),
        (
            Situation::Cold,
            "cold start: first invocation 1 s after start",
            "latency on from the spawn; the warm-up ran in the background",
        ),
        (
            Situation::ThreeConsumerApps,
            "consumers: 3 apps in RefreshAppSettingsOf",
            "warm forced rotation; ARM refreshes after the answer",
        ),
        (
            Situation::FirstLease,
            "first rotation ever of a target: the lease's container and blob created",
            "a new test bed's storage account (once per account and target), 1 s after start, latency on from the spawn",
        ),
    ] {
        let floor = match situation {
            Situation::FirstLease => "6: the container, the blob, then the lease (once), mint, verify, publish",
            _ => "4",
        };
        let mut cells = vec![];
        for latency in LATENCIES {
            let mut samples = vec![];
            for _ in 0..runs {
                samples.push(sample(b, situation, latency).await?);
            }
            cells.push(Cell { latency, samples });
        }
        b.trip_row(TripRow {
            table: "side",
            situation: what.to_string(),
            floor: floor.into(),
            how: format!("{how}; access-key mode, storage (the lease) configured; a fresh test bed and process per sample; median of {runs}"),
            cells,
        });
    }
    Ok(())
}
