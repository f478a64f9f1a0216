use secrecy::ExposeSecret;
use stsbridge::secrets::SessionCredentials;
use testbed::TestBed;

use crate::support::{assert_no_secrets, set_ids, settings, App};

#[tokio::test]
async fn a_forced_post_publishes_a_verified_set_to_all_four_secrets() {
    let bed = TestBed::start().await.unwrap();
    let app = App::spawn(settings(&bed, &[], &[])).await;
    app.wait_warm_up(1).await;
    bed.sts.clear_calls();

    let answer = app.http_rotate("POST", &[("force", "true")], None).await;

    assert_eq!(answer.handler_status, 200);
    assert_eq!(answer.status, 200, "{answer:?}\n{}", app.output());
    assert_eq!(answer.body["rotated"], true);
    let key_id = answer.body["accessKeyId"].as_str().unwrap().to_string();
    let minted = bed.sts.minted();
    assert_eq!(minted.len(), 1);
    assert_eq!(minted[0].access_key_id, key_id);
    // Verified with the new credentials before anything was written.
    let verify = bed.sts.calls_of("GetCallerIdentity");
    assert_eq!(verify.len(), 1);
    assert_eq!(verify[0].access_key_id.as_deref(), Some(key_id.as_str()));
    // Minted with the source key, for the default duration.
    let mint = &bed.sts.calls_of("GetSessionToken")[0];
    assert_eq!(
        mint.access_key_id.as_deref(),
        Some(bed.source.access_key_id.as_str())
    );
    assert_eq!(
        mint.params.get("DurationSeconds").map(String::as_str),
        Some("7200")
    );
    // The four secrets hold one set, expire with it, and say how it was made.
    assert_eq!(set_ids(&bed), vec![Some(key_id.clone()); 4]);
    let bundle = bed.vault.latest("AwsSessionCredentials").unwrap();
    assert_eq!(bundle.content_type.as_deref(), Some("application/json"));
    let parsed = SessionCredentials::from_process_json(&bundle.value).unwrap();
    assert_eq!(parsed.access_key_id, key_id);
    assert_eq!(
        parsed.secret_access_key.expose_secret(),
        minted[0].secret_access_key
    );
    assert_eq!(
        parsed.session_token.expose_secret(),
        minted[0].session_token
    );
    assert_eq!(bundle.exp, Some(parsed.expiration.timestamp()));
    assert_eq!(
        bed.vault.latest("SessionToken").unwrap().value,
        minted[0].session_token
    );
    assert_eq!(
        bed.vault.latest("SecretAccessKey").unwrap().value,
        minted[0].secret_access_key
    );
    assert_eq!(bed.vault.latest("AccessKeyId").unwrap().value, key_id);
    let tags = bundle.tags.unwrap();
    assert_eq!(tags["mode"], "session-token");
    assert_eq!(tags["source-access-key-id"], bed.source.access_key_id);
    assert!(tags.contains_key("minted-at"));
    let versions = answer.body["versions"].as_object().unwrap();
    assert_eq!(versions.len(), 4);
    assert_eq!(versions["AwsSessionCredentials"], bundle.version);
    assert!(answer.body["durationMs"].is_u64());
    assert_no_secrets(&bed, &[&app.all_text()]);
}

#[tokio::test]
async fn an_unforced_post_finds_a_fresh_set_and_does_not_call_sts() {
    let bed = TestBed::start().await.unwrap();
    let app = App::spawn(settings(&bed, &[], &[])).await;
    // serve's warm-up calls GetCallerIdentity in the background: let it land before counting.
    app.wait_warm_up(1).await;
    let first = app.http_rotate("POST", &[], None).await;
    assert_eq!(first.body["rotated"], true, "{first:?}");
    // ... and the first run's side work (learning the source key's age: ListAccessKeys).
    app.wait_side_work().await;
    bed.sts.clear_calls();

    let second = app.http_rotate("POST", &[], None).await;

    assert_eq!(second.status, 200);
    assert_eq!(second.body["rotated"], false);
    assert!(second.body["reason"]
        .as_str()
        .unwrap()
        .contains("MinRotationIntervalSeconds"));
    assert_eq!(second.body["accessKeyId"], first.body["accessKeyId"]);
    assert!(bed.sts.calls().is_empty(), "{:?}", bed.sts.calls());
    assert_no_secrets(&bed, &[&app.all_text()]);
}

#[tokio::test]
async fn force_in_a_json_body_mints_even_when_fresh() {
    let bed = TestBed::start().await.unwrap();
    let app = App::spawn(settings(&bed, &[], &[])).await;
    let first = app.http_rotate("POST", &[], None).await;

    let second = app
        .http_rotate("POST", &[], Some(r#"{"force": true}"#))
        .await;

    assert_eq!(second.body["rotated"], true, "{second:?}");
    assert_ne!(second.body["accessKeyId"], first.body["accessKeyId"]);
    assert_eq!(bed.sts.minted().len(), 2);
    assert_no_secrets(&bed, &[&app.all_text()]);
}

#[tokio::test]
async fn get_reports_the_state_and_never_mints() {
    let bed = TestBed::start().await.unwrap();
    let app = App::spawn(settings(&bed, &[], &[])).await;
    let empty = app.http_rotate("GET", &[("force", "true")], None).await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.body["published"], false);
    let rotated = app.http_rotate("POST", &[], None).await;

    let state = app.http_rotate("GET", &[], None).await;

    assert_eq!(state.status, 200);
    assert_eq!(state.body["published"], true);
    assert_eq!(state.body["accessKeyId"], rotated.body["accessKeyId"]);
    assert_eq!(state.body["consistent"], true);
    assert_eq!(state.body["mode"], "session-token");
    assert!(state.body["remainingSeconds"].as_i64().unwrap() > 7000);
    assert_eq!(state.body["versions"].as_object().unwrap().len(), 4);
    assert_eq!(bed.sts.minted().len(), 1);
    assert_no_secrets(&bed, &[&app.all_text()]);
}

#[tokio::test]
async fn an_unknown_force_value_is_a_400_inside_the_envelope() {
    let bed = TestBed::start().await.unwrap();
    let app = App::spawn(settings(&bed, &[], &[])).await;
    // serve's warm-up calls GetCallerIdentity in the background: count only what follows.
    app.wait_warm_up(1).await;
    bed.sts.clear_calls();

    let answer = app.http_rotate("POST", &[("force", "perhaps")], None).await;

    assert_eq!(answer.handler_status, 200);
    assert_eq!(answer.envelope["ReturnValue"], serde_json::Value::Null);
    assert_eq!(answer.status, 400);
    assert_eq!(answer.body["error"]["step"], "request");
    assert!(answer.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("perhaps"));
    assert!(bed.sts.calls().is_empty());
    assert_no_secrets(&bed, &[&app.all_text()]);
}
