use testbed::TestBed;

use crate::support::{assert_no_secrets, set_ids, settings, App};

#[tokio::test]
async fn a_timer_invocation_rotates_and_reports_in_its_logs() {
    let bed = TestBed::start().await.unwrap();
    let app = App::spawn(settings(&bed, &[], &[])).await;

    let (status, envelope) = app.timer_rotate().await;

    assert_eq!(status, 200, "{envelope}\n{}", app.output());
    assert_eq!(envelope["Outputs"], serde_json::json!({}));
    assert_eq!(envelope["ReturnValue"], serde_json::Value::Null);
    let logs: Vec<String> = envelope["Logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    let minted = &bed.sts.minted()[0];
    assert!(logs[0].starts_with("rotated (session-token)"), "{logs:?}");
    assert!(logs.iter().any(|l| l.contains(&minted.access_key_id)));
    assert_eq!(set_ids(&bed), vec![Some(minted.access_key_id.clone()); 4]);
    assert_no_secrets(&bed, &[&app.all_text()]);
}

#[tokio::test]
async fn a_timer_run_after_a_manual_one_finds_the_set_fresh() {
    let bed = TestBed::start().await.unwrap();
    let app = App::spawn(settings(&bed, &[], &[])).await;
    app.http_rotate("POST", &[], None).await;

    let (status, envelope) = app.timer_rotate().await;

    assert_eq!(status, 200);
    assert!(envelope["Logs"][0]
        .as_str()
        .unwrap()
        .starts_with("not rotated"));
    assert_eq!(bed.sts.minted().len(), 1);
    assert_no_secrets(&bed, &[&app.all_text()]);
}

#[tokio::test]
async fn a_failed_timer_run_answers_500_and_writes_the_report_to_stderr() {
    let bed = TestBed::start().await.unwrap();
    bed.sts.faults.add(testbed::Rule::on(
        "GetSessionToken",
        testbed::Fault::error(
            403,
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        ),
    ));
    let app = App::spawn(settings(&bed, &[], &[])).await;

    let (status, _) = app.timer_rotate().await;

    assert_eq!(status, 500);
    let stderr = app
        .stderr_with("rotation failed at mint: InvalidClientTokenId")
        .await;
    assert!(
        stderr.contains("rotation failed at mint: InvalidClientTokenId"),
        "{stderr}"
    );
    assert!(bed.vault.latest("AwsSessionCredentials").is_none());
    assert_no_secrets(&bed, &[&app.all_text()]);
}
