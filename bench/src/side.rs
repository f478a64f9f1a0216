//! Round trips before the answer in the situations of issue #17's table (side work, cold start)
//! and issue #18's (consumer apps to refresh), with storage configured (Azurite: the rotation
//! lease) and 100 ms added to every Key Vault, STS/IAM, storage and Resource Manager request, as
//! issue #17 asks. Each situation starts its own test bed and `serve`; one sample is a forced
//! `HttpRotate` timed from the invocation to its answer, divided by the added latency.

use std::time::{Duration, Instant};

use testbed::{Fault, Rule, TestBed};

use crate::{env_of, median, Bench, Serve};

const SIDE_LATENCY: Duration = Duration::from_millis(100);

const CONSUMER_APPS: &str = "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg/providers/Microsoft.Web/sites";

fn set_latency(bed: &TestBed, latency: Duration) {
    bed.vault.faults.set_latency(latency);
    bed.sts.faults.set_latency(latency);
    bed.arm.faults.set_latency(latency);
    if let Some(storage) = &bed.storage {
        storage.set_latency(latency);
    }
}

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
}

async fn sample(b: &Bench, situation: Situation) -> anyhow::Result<f64> {
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
    if situation == Situation::Cold {
        set_latency(&bed, SIDE_LATENCY);
    }
    let (serve, _) = Serve::start(&b.bin, &env_of(&bed, &extra)).await?;
    match situation {
        Situation::Cold | Situation::FirstOfKey => {
            // serve's start-up warm-up runs in the background; give it the second the issue
            // allows before the first invocation.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        _ => {
            // A first rotation, then time for its side work (which records the key's age, or
            // meets the denial or the hang) to finish or time out, and for its lease's release.
            let (status, _) = serve.http_rotate(true).await?;
            anyhow::ensure!(status == 200, "the first rotation answered {status}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    set_latency(&bed, SIDE_LATENCY);
    let t = Instant::now();
    let (status, _) = serve.http_rotate(true).await?;
    let wall = t.elapsed().as_secs_f64();
    anyhow::ensure!(status == 200, "the timed rotation answered {status}");
    set_latency(&bed, Duration::ZERO);
    Ok(wall)
}

pub async fn side(b: &mut Bench) -> anyhow::Result<()> {
    let runs = if b.quick { 3 } else { 7 };
    let l = SIDE_LATENCY.as_secs_f64();
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
    ] {
        let mut walls = vec![];
        for _ in 0..runs {
            walls.push(sample(b, situation).await?);
        }
        let w = median(walls);
        b.row(
            &format!("round trips: {what} (wall / 100 ms)"),
            format!("{:.2} ({:.0} ms)", w / l, w * 1000.0),
            &format!("{how}; median of {runs}"),
        );
    }
    Ok(())
}
