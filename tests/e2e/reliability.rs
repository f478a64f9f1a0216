//! Reliability under concurrency and faults (issue #8). Each test names the fault it injects;
//! RELIABILITY.md maps them to what the system does.

use std::time::Duration;

use testbed::{Fault, Rule, TestBed};

use crate::support::{assert_no_secrets, assert_one_set, run_cli, set_ids, settings, App};

#[tokio::test]
async fn two_hundred_concurrent_posts_make_exactly_one_mint() {
    let bed = TestBed::start().await.unwrap();
    let app = App::spawn(settings(&bed, &[], &[])).await;
    app.wait_warm_up(1).await;
    // The one run's mint takes 3 s, so all 200 posts arrive while it is in flight even on a
    // loaded machine. (A forced post that arrives after the run published rightly mints again:
    // with 200 ms per STS call, a CI run under load once saw the last posts arrive that late.)
    bed.sts.faults.add(Rule::on(
        "GetSessionToken",
        Fault::Delay(Duration::from_secs(3)),
    ));

    let answers = futures::future::join_all((0..200).map(|i| {
        let force: &[(&str, &str)] = if i % 2 == 0 {
            &[("force", "true")]
        } else {
            &[]
        };
        app.http_rotate("POST", force, None)
    }))
    .await;

    assert!(
        answers.iter().all(|a| a.status == 200),
        "{:?}",
        answers.iter().find(|a| a.status != 200)
    );
    let mints = bed.sts.calls_of("GetSessionToken");
    assert_eq!(mints.len(), 1, "{mints:?}");
    assert_eq!(bed.sts.minted().len(), 1);
    assert_no_secrets(&bed, &[&app.all_text()]);
}

#[tokio::test]
async fn two_instances_triggered_at_once_mint_at_most_twice_and_the_bundle_stays_whole() {
    let bed = TestBed::start().await.unwrap();
    bed.sts.faults.set_latency(Duration::from_millis(300));
    let a = App::spawn(settings(&bed, &[], &[])).await;
    let b = App::spawn(settings(&bed, &[], &[])).await;

    let (ra, rb) = tokio::join!(
        a.http_rotate("POST", &[], None),
        b.http_rotate("POST", &[], None)
    );

    assert_eq!((ra.status, rb.status), (200, 200));
    let after_posts = bed.sts.minted().len();
    assert!((1..=2).contains(&after_posts), "{after_posts} mints");
    let (ta, tb) = tokio::join!(a.timer_rotate(), b.timer_rotate());
    assert_eq!((ta.0, tb.0), (200, 200));
    // The timers found the set fresh: no third mint.
    assert_eq!(bed.sts.minted().len(), after_posts, "the timers minted");
    // And the four secrets hold one set once both instances' side work is done.
    a.wait_side_work().await;
    b.wait_side_work().await;
    assert_one_set(&bed).await;
    assert_no_secrets(&bed, &[&a.all_text(), &b.all_text()]);
}

#[tokio::test]
async fn sts_throttling_and_dropped_connections_are_retried_but_auth_errors_are_not() {
    let bed = TestBed::start().await.unwrap();
    let app = App::spawn(settings(&bed, &[], &[])).await;
    app.wait_warm_up(1).await;
    bed.sts.clear_calls();
    bed.sts.faults.add(
        Rule::on(
            "GetSessionToken",
            Fault::error(400, "Throttling", "Rate exceeded"),
        )
        .times(1),
    );
    bed.sts
        .faults
        .add(Rule::on("GetSessionToken", Fault::Drop).times(1));
    bed.sts.faults.add(
        Rule::on(
            "GetCallerIdentity",
            Fault::error(503, "ServiceUnavailable", "try later"),
        )
        .times(1),
    );

    let answer = app.http_rotate("POST", &[], None).await;

    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(bed.sts.calls_of("GetSessionToken").len(), 3);
    assert_eq!(bed.sts.calls_of("GetCallerIdentity").len(), 2);

    bed.sts.faults.add(Rule::on(
        "GetSessionToken",
        Fault::error(403, "SignatureDoesNotMatch", "bad signature"),
    ));
    bed.sts.clear_calls();
    let refused = app.http_rotate("POST", &[("force", "true")], None).await;
    assert_eq!(refused.status, 502);
    assert!(refused.body["error"]["hint"]
        .as_str()
        .unwrap()
        .contains("PasswordFromKeyVault"));
    assert_eq!(
        bed.sts.calls_of("GetSessionToken").len(),
        1,
        "auth errors are not retried"
    );
    assert_no_secrets(&bed, &[&app.all_text()]);
}

#[tokio::test]
async fn key_vault_5xx_and_dropped_connections_are_retried() {
    let bed = TestBed::start().await.unwrap();
    bed.vault.faults.add(
        Rule::on("set", Fault::error(503, "ServiceUnavailable", "busy"))
            .named("SessionToken")
            .times(1),
    );
    bed.vault.faults.add(
        Rule::on("set", Fault::Drop)
            .named("AwsSessionCredentials")
            .times(1),
    );
    bed.vault
        .faults
        .add(Rule::on("get", Fault::error(500, "InternalServerError", "oops")).times(1));
    let app = App::spawn(settings(&bed, &[], &[])).await;

    let answer = app.http_rotate("POST", &[], None).await;

    assert_eq!(answer.status, 200, "{answer:?}");
    assert_one_set(&bed).await;
    assert_eq!(
        bed.sts.minted().len(),
        1,
        "retries re-send writes, never mint again"
    );
    assert_no_secrets(&bed, &[&app.all_text()]);
}

#[tokio::test]
async fn a_rotation_that_cannot_finish_gives_up_within_its_budget() {
    let bed = TestBed::start().await.unwrap();
    bed.sts.faults.add(Rule::on(
        "GetSessionToken",
        Fault::Delay(Duration::from_secs(30)),
    ));
    let app = App::spawn(settings(&bed, &[("RotationTimeBudgetSeconds", "6")], &[])).await;

    let started = std::time::Instant::now();
    let answer = app.http_rotate("POST", &[], None).await;

    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(bed.vault.latest("AwsSessionCredentials").is_none());
    assert_no_secrets(&bed, &[&app.all_text()]);
}

#[tokio::test]
async fn a_failed_run_warns_that_the_published_set_is_about_to_expire() {
    let bed = TestBed::start().await.unwrap();
    let exp = chrono::Utc::now() + chrono::Duration::seconds(600);
    let minted_at = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
    let bundle = format!(
        r#"{{"Version":1,"AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"x","SessionToken":"y","Expiration":"{}"}}"#,
        exp.to_rfc3339()
    );
    bed.vault.seed_expiring(
        "AwsSessionCredentials",
        &bundle,
        &[("minted-at", &minted_at)],
        exp.timestamp(),
    );
    bed.sts.faults.add(Rule::on(
        "GetSessionToken",
        Fault::error(503, "ServiceUnavailable", "down"),
    ));
    let mut app = App::spawn(settings(&bed, &[("RotationTimeBudgetSeconds", "12")], &[])).await;

    let (status, _) = app.timer_rotate().await;
    let state = app.http_rotate("GET", &[], None).await;

    assert_eq!(status, 500);
    let stderr = app
        .stderr_with("warning: the published credentials expire in")
        .await;
    assert!(
        stderr.contains("warning: the published credentials expire in"),
        "{stderr}"
    );
    assert!(
        state.body["warnings"][0]
            .as_str()
            .unwrap()
            .contains("expire in"),
        "{state:?}"
    );
    assert!(app.is_running());
    assert_no_secrets(&bed, &[&app.all_text()]);
}

#[tokio::test]
async fn expired_versions_are_disabled_after_a_publish_keeping_the_newest() {
    let bed = TestBed::start().await.unwrap();
    let past = chrono::Utc::now().timestamp() - 60;
    let future = chrono::Utc::now().timestamp() + 3600;
    let mut expired = vec![];
    for name in [
        "AwsSessionCredentials",
        "AccessKeyId",
        "SecretAccessKey",
        "SessionToken",
    ] {
        expired.push((name, bed.vault.seed_expiring(name, "old", &[], past)));
        expired.push((name, bed.vault.seed_expiring(name, "old", &[], past)));
    }
    let still_valid = bed
        .vault
        .seed_expiring("SessionToken", "still-valid", &[], future);

    let out = run_cli(
        &settings(&bed, &[("KeepEnabledVersions", "1")], &[]),
        &["rotate", "--force"],
    )
    .await;

    assert_eq!(out.code, Some(0), "{out:?}");
    for (name, version) in expired {
        let v = bed
            .vault
            .versions(name)
            .into_iter()
            .find(|v| v.version == version)
            .unwrap();
        assert!(!v.enabled, "{name}/{version} should be disabled");
    }
    let valid = bed
        .vault
        .versions("SessionToken")
        .into_iter()
        .find(|v| v.version == still_valid)
        .unwrap();
    assert!(
        valid.enabled,
        "a version whose credentials are still valid stays enabled"
    );
    assert!(bed.vault.latest("SessionToken").unwrap().enabled);
    assert_no_secrets(&bed, &[&out.text()]);
}

/// Version hygiene lists every version, so a serving process sweeps on its first publish and
/// then at most once a day; a sweep that could not list leaves the next publish to sweep.
#[tokio::test]
async fn a_serving_process_sweeps_versions_once_a_day_and_again_after_a_failed_listing() {
    let bed = TestBed::start().await.unwrap();
    let past = chrono::Utc::now().timestamp() - 60;
    let seed = || bed.vault.seed_expiring("SessionToken", "old", &[], past);
    let enabled = |version: &str| {
        bed.vault
            .versions("SessionToken")
            .into_iter()
            .find(|v| v.version == version)
            .unwrap()
            .enabled
    };
    let (first, second) = (seed(), seed());
    bed.vault.faults.add(
        Rule::on("list", Fault::forbidden_by_rbac())
            .named("SessionToken")
            .times(1),
    );
    let app = App::spawn(settings(&bed, &[("KeepEnabledVersions", "1")], &[])).await;
    app.wait_warm_up(1).await;

    // The first publish's sweep cannot list SessionToken: it says so and disables nothing there.
    let side = publish_and_wait_side_work(&app, None).await;
    assert!(
        side["warnings"].to_string().contains("version hygiene"),
        "{side}"
    );
    assert!(enabled(&first) && enabled(&second));

    // The next publish sweeps again and disables both.
    let side = publish_and_wait_side_work(&app, Some(&side)).await;
    assert!(!enabled(&first) && !enabled(&second), "{side}");

    // Once a sweep has succeeded, the next is a day away: a new expired version stays enabled.
    let third = seed();
    publish_and_wait_side_work(&app, Some(&side)).await;
    assert!(enabled(&third));
    assert_no_secrets(&bed, &[&app.all_text()]);
}

/// A forced HttpRotate, then GET HttpRotate until it shows side work that finished after
/// `previous` (which has one-second resolution: a second apart).
async fn publish_and_wait_side_work(
    app: &App,
    previous: Option<&serde_json::Value>,
) -> serde_json::Value {
    if previous.is_some() {
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let answer = app.http_rotate("POST", &[("force", "true")], None).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let before = previous.map(|p| p["finishedAt"].clone());
    app.side_work_where(|s| !s.is_null() && Some(&s["finishedAt"]) != before.as_ref())
        .await
}

/// `exp` exact (issue #25): a publish and a repair carry the expiry STS gave onto all four
/// secrets and the bundle — never rounded up, never recomputed from a truncated string. (moto's
/// expiries have microseconds, so a truncation shows.)
#[tokio::test]
async fn every_published_and_repaired_secret_carries_the_sts_expiry_exactly() {
    let bed = TestBed::start().await.unwrap();
    let app = App::spawn(settings(&bed, &[], &[])).await;

    let first = app.http_rotate("POST", &[("force", "true")], None).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let id = assert_one_set(&bed).await;

    // A separate secret out of step: the next unforced run repairs it from the bundle.
    bed.vault
        .seed("SessionToken", &testbed::aws_session_token(), &[]);
    let repaired = app.http_rotate("POST", &[], None).await;
    assert_eq!(
        repaired.body["repaired"],
        serde_json::json!(["SessionToken"]),
        "{:?}",
        repaired.body
    );
    assert_eq!(assert_one_set(&bed).await, id);
    assert_eq!(bed.sts.minted().len(), 1, "a repair mints nothing");
    assert_no_secrets(&bed, &[&app.all_text()]);
}

/// Disagreement closed within the run (issue #25): without the rotation lease, a publish whose
/// bundle write lands after another instance's whole publish leaves the separate secrets holding
/// the other set. The late publisher's side work re-reads the four secrets and repairs them from
/// the latest bundle, so they hold one set again before its run is over.
#[tokio::test]
async fn a_publish_without_the_lease_repairs_what_an_interleaved_publish_left_out_of_step() {
    let bed = TestBed::start().await.unwrap();
    let a = App::spawn(settings(&bed, &[], &[])).await;
    let b = App::spawn(settings(&bed, &[], &[])).await;
    a.wait_warm_up(1).await;
    b.wait_warm_up(1).await;
    // A's bundle write (the first) takes 2 s; its three separate writes land at once.
    bed.vault.faults.add(
        Rule::on("set", Fault::Delay(Duration::from_secs(2)))
            .named("AwsSessionCredentials")
            .times(1),
    );

    let a_run = a.http_rotate("POST", &[("force", "true")], None);
    let b_run = async {
        // B publishes its whole set after A's separate secrets and before A's bundle.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while set_ids(&bed)[1..].iter().any(Option::is_none) {
            assert!(std::time::Instant::now() < deadline, "A never published");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        b.http_rotate("POST", &[("force", "true")], None).await
    };
    let (ra, rb) = tokio::join!(a_run, b_run);

    assert_eq!((ra.status, rb.status), (200, 200), "{ra:?}\n{rb:?}");
    let a_set = ra.body["accessKeyId"].as_str().unwrap().to_string();
    assert_ne!(rb.body["accessKeyId"].as_str().unwrap(), a_set);
    let side = a
        .side_work_where(|s| s.to_string().contains("repaired"))
        .await
        .to_string();
    assert!(
        side.contains("repaired AccessKeyId, SecretAccessKey, SessionToken from the latest bundle"),
        "{side}"
    );
    assert_eq!(assert_one_set(&bed).await, a_set, "the bundle's set, whole");
    assert_no_secrets(&bed, &[&a.all_text(), &b.all_text()]);
}
