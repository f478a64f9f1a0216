//! Bad input and upstream failures: a clear error, the right status, and nothing lost.

use testbed::{Fault, Rule, TestBed, SOURCE_KEY_ID_SECRET};

use crate::support::{assert_no_secrets, assert_one_set, set_ids, settings, App};

fn nothing_published(bed: &TestBed) -> bool {
    [
        "AwsSessionCredentials",
        "AccessKeyId",
        "SecretAccessKey",
        "SessionToken",
    ]
    .iter()
    .all(|n| bed.vault.latest(n).is_none())
}

#[tokio::test]
async fn rotation_fails_cleanly_when_sts_rejects_the_keys() {
    let bed = TestBed::start().await.unwrap();
    let app = App::spawn(settings(
        &bed,
        &[
            ("UsernameFromKeyVault", "AKIAIOSFODNN7EXAMPLE"),
            (
                "PasswordFromKeyVault",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            ),
        ],
        &[],
    ))
    .await;

    let answer = app.http_rotate("POST", &[], None).await;

    assert_eq!(answer.status, 502, "{answer:?}");
    assert_eq!(answer.body["rotated"], false);
    assert_eq!(answer.body["error"]["step"], "mint");
    assert_eq!(answer.body["error"]["code"], "InvalidClientTokenId");
    assert!(answer.body["error"]["hint"]
        .as_str()
        .unwrap()
        .contains("UsernameFromKeyVault"));
    assert_eq!(answer.body["published"], serde_json::json!([]));
    assert!(nothing_published(&bed));
    assert!(!app
        .all_text()
        .contains("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"));
    assert_no_secrets(&bed, &[&app.all_text()]);
}

#[tokio::test]
async fn credentials_that_fail_verification_are_never_published() {
    let bed = TestBed::start().await.unwrap();
    bed.sts.faults.add(Rule::on(
        "GetCallerIdentity",
        Fault::error(403, "AccessDenied", "not allowed"),
    ));
    let app = App::spawn(settings(&bed, &[], &[])).await;

    let answer = app.http_rotate("POST", &[("force", "true")], None).await;

    assert_eq!(answer.status, 502);
    assert_eq!(answer.body["error"]["step"], "verify");
    assert_eq!(answer.body["error"]["code"], "AccessDenied");
    assert!(nothing_published(&bed));
    assert_no_secrets(&bed, &[&app.all_text()]);
}

#[tokio::test]
async fn a_vault_that_forbids_reading_the_source_key_is_a_502_naming_the_setting() {
    let bed = TestBed::start().await.unwrap();
    bed.vault
        .faults
        .add(Rule::on("get", Fault::forbidden_by_rbac()).named(SOURCE_KEY_ID_SECRET));
    let app = App::spawn(settings(&bed, &[], &[])).await;

    let answer = app.http_rotate("POST", &[], None).await;

    assert_eq!(answer.status, 502, "{answer:?}");
    assert_eq!(answer.body["error"]["step"], "read-source");
    assert_eq!(answer.body["error"]["code"], "Forbidden");
    let message = answer.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("UsernameFromKeyVault") && message.contains("ForbiddenByRbac"),
        "{message}"
    );
    assert!(bed.sts.calls().is_empty());
    assert!(nothing_published(&bed));
    assert_no_secrets(&bed, &[&app.all_text()]);
}

#[tokio::test]
async fn a_missing_source_secret_is_a_502_secret_not_found() {
    let bed = TestBed::start().await.unwrap();
    let missing = format!("{}/secrets/No-Such-Secret", bed.vault_url());
    let app = App::spawn(settings(&bed, &[("PasswordFromKeyVault", &missing)], &[])).await;

    let answer = app.http_rotate("POST", &[], None).await;

    assert_eq!(answer.status, 502);
    assert_eq!(answer.body["error"]["code"], "SecretNotFound");
    assert!(answer.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("PasswordFromKeyVault"));
    assert_no_secrets(&bed, &[&app.all_text()]);
}

#[tokio::test]
async fn an_unreachable_vault_is_a_503() {
    let bed = TestBed::start().await.unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("https://127.0.0.1:{closed}");
    let (id, secret) = (
        bed.source.access_key_id.clone(),
        bed.source.secret_access_key.clone(),
    );
    let app = App::spawn(settings(
        &bed,
        &[
            ("KeyVaultUrl", &url),
            ("UsernameFromKeyVault", &id),
            ("PasswordFromKeyVault", &secret),
        ],
        &[],
    ))
    .await;
    // serve's warm-up checks the plain key with STS (GetCallerIdentity) whatever the vault does.
    app.wait_warm_up(1).await;
    bed.sts.clear_calls();

    let answer = app.http_rotate("POST", &[], None).await;

    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(answer.body["error"]["code"], "Unreachable");
    assert!(bed.sts.calls().is_empty(), "{:?}", bed.sts.calls());
    assert_no_secrets(&bed, &[&app.all_text()]);
}

#[tokio::test]
async fn a_partial_publish_names_what_is_stale_and_the_next_run_repairs_it() {
    let bed = TestBed::start().await.unwrap();
    bed.vault.faults.add(
        Rule::on("set", Fault::forbidden_by_rbac())
            .named("SessionToken")
            .times(1),
    );
    let app = App::spawn(settings(&bed, &[], &[])).await;

    let failed = app.http_rotate("POST", &[], None).await;

    assert_eq!(failed.status, 502, "{failed:?}");
    assert_eq!(failed.body["error"]["step"], "publish");
    assert_eq!(failed.body["stale"], serde_json::json!(["SessionToken"]));
    let mut published: Vec<String> =
        serde_json::from_value(failed.body["published"].clone()).unwrap();
    published.sort();
    assert_eq!(
        published,
        vec!["AccessKeyId", "AwsSessionCredentials", "SecretAccessKey"]
    );
    let ids = set_ids(&bed);
    assert_eq!(ids[3], None);

    let repaired = app.http_rotate("POST", &[], None).await;

    assert_eq!(repaired.status, 200, "{repaired:?}");
    assert_eq!(repaired.body["rotated"], false);
    assert_eq!(
        repaired.body["repaired"],
        serde_json::json!(["SessionToken"])
    );
    assert_eq!(set_ids(&bed), vec![ids[0].clone(); 4]);
    assert_eq!(bed.sts.minted().len(), 1);
    assert_no_secrets(&bed, &[&app.all_text()]);
}

#[tokio::test]
async fn throttled_writes_are_retried_after_the_time_key_vault_asks() {
    let bed = TestBed::start().await.unwrap();
    bed.vault
        .faults
        .add(Rule::on("set", Fault::throttled(1)).times(2));
    let app = App::spawn(settings(&bed, &[], &[])).await;

    let answer = app.http_rotate("POST", &[], None).await;

    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.body["durationMs"].as_u64().unwrap() >= 1000);
    assert_one_set(&bed).await;
    assert_eq!(bed.sts.minted().len(), 1, "retried writes, one mint");
    assert_no_secrets(&bed, &[&app.all_text()]);
}

#[tokio::test]
async fn invalid_settings_keep_the_server_up_and_every_invocation_names_them() {
    let bed = TestBed::start().await.unwrap();
    let mut app = App::spawn(settings(
        &bed,
        &[("SessionDurationSeconds", "5")],
        &["KeyVaultUrl"],
    ))
    .await;

    let answer = app.http_rotate("POST", &[], None).await;
    let (timer_status, _) = app.timer_rotate().await;

    assert_eq!(answer.status, 500);
    assert_eq!(answer.body["error"]["step"], "settings");
    let message = answer.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("KeyVaultUrl") && message.contains("SessionDurationSeconds"),
        "{message}"
    );
    assert_eq!(timer_status, 500);
    assert!(app
        .stderr_with("invalid setting KeyVaultUrl")
        .await
        .contains("invalid setting KeyVaultUrl"));
    assert!(app.is_running());
    assert!(bed.sts.calls().is_empty());
    assert_no_secrets(&bed, &[&app.all_text()]);
}

#[tokio::test]
async fn malformed_invocations_get_a_plain_400_and_the_process_lives_on() {
    let bed = TestBed::start().await.unwrap();
    let mut app = App::spawn(settings(&bed, &[("MaxInvocationBytes", "2048")], &[])).await;
    // serve's warm-up calls GetCallerIdentity in the background: count only what follows.
    app.wait_warm_up(1).await;
    bed.sts.clear_calls();

    for body in ["not json", "[1,2]", r#"{"Data": 3}"#, r#"{"Metadata": {}}"#] {
        let (status, text) = app.post_raw("/HttpRotate", body).await;
        assert_eq!(status, 400, "{body}: {text}");
        assert!(serde_json::from_str::<serde_json::Value>(&text).unwrap()["error"].is_string());
        let (status, _) = app.post_raw("/TimerRotate", body).await;
        assert_eq!(status, 400);
    }
    let (status, _) = app.post_raw("/HttpRotate", "x".repeat(4096)).await;
    assert_eq!(status, 413);
    let (status, text) = app
        .post_raw("/HttpRotate", r#"{"Data": {"other": {}}}"#)
        .await;
    assert_eq!(status, 200);
    let envelope: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        envelope["Outputs"]["res"]["statusCode"], 400,
        "an HttpRotate invocation without Data.req is the caller's 400: {text}"
    );
    assert!(app.is_running());
    assert!(bed.sts.calls().is_empty());
    assert_no_secrets(&bed, &[&app.all_text()]);
}

#[tokio::test]
async fn a_chunked_invocation_body_is_read_whole() {
    let bed = TestBed::start().await.unwrap();
    let app = App::spawn(settings(&bed, &[], &[])).await;
    let invocation = r#"{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":{"Last":"0001-01-01T00:00:00","Next":"2026-11-23T18:00:00+00:00","LastUpdated":"0001-01-01T00:00:00"},"IsPastDue":true}},"Metadata":{}}"#;
    let chunks: Vec<Result<String, std::io::Error>> = invocation
        .as_bytes()
        .chunks(16)
        .map(|c| Ok(String::from_utf8(c.to_vec()).unwrap()))
        .collect();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));

    let (status, text) = app.post_raw("/TimerRotate", body).await;

    assert_eq!(status, 200, "{text}");
    assert!(text.contains("past due"));
    assert_no_secrets(&bed, &[&app.all_text()]);
}
