//! Side work (issue #17): the answer waits for read → mint → verify → publish only; the source
//! key's bookkeeping and version hygiene come after it, bounded, and say what they did. And the
//! start-up warm-up: the first invocation of a new process pays no token fetch or challenge.

use std::time::Duration;

use testbed::{Fault, Rule, TestBed, SOURCE_KEY_ID_SECRET};

use crate::support::{assert_no_secrets, run_cli, settings, App};

fn stored_tag(bed: &TestBed, name: &str) -> Option<String> {
    bed.vault
        .latest(SOURCE_KEY_ID_SECRET)
        .and_then(|v| v.tags)
        .and_then(|t| t.get(name).cloned())
}

/// An IAM endpoint that takes connections but never answers (the 40-second stall that was
/// measured) holds the side work, never the answer.
#[tokio::test]
async fn an_iam_that_never_answers_does_not_hold_the_answer() {
    let bed = TestBed::start().await.unwrap();
    bed.sts.faults.add(Rule::on(
        "ListAccessKeys",
        Fault::Delay(Duration::from_secs(3600)),
    ));
    let app = App::spawn(settings(&bed, &[("RotationTimeBudgetSeconds", "8")], &[])).await;

    let answer = app.http_rotate("POST", &[("force", "true")], None).await;

    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["rotated"], true);
    // The side work's ListAccessKeys reaches IAM and hangs there, unanswered, while the answer
    // is already in.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while bed.sts.arrived("ListAccessKeys") == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the side work never called ListAccessKeys"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        bed.sts.calls_of("ListAccessKeys").is_empty(),
        "ListAccessKeys is still hanging"
    );
    // Its own timeout (a quarter of the budget) ends it, and GET says so.
    let side = app.side_work_where(|s| !s.is_null()).await;
    assert!(
        side["warnings"]
            .to_string()
            .contains("did not finish within 2 s"),
        "{side}"
    );
    assert_no_secrets(&bed, &[&app.all_text()]);
}

/// Seed 000's user has no IAM rights: the denial is remembered on the source secret (every
/// instance sees it), warned about once, and not asked again within the back-off.
#[tokio::test]
async fn a_denied_list_access_keys_is_remembered_and_warned_about_once() {
    let bed = TestBed::start().await.unwrap();
    bed.sts.faults.add(Rule::on(
        "ListAccessKeys",
        Fault::error(
            403,
            "AccessDenied",
            "User is not authorized to perform: iam:ListAccessKeys",
        ),
    ));
    let env = settings(&bed, &[], &[]);

    let first = run_cli(&env, &["rotate", "--force"]).await;
    let second = run_cli(&env, &["rotate", "--force"]).await;

    assert_eq!(first.code, Some(0), "{first:?}");
    let side = first.json()["sideWork"].to_string();
    assert!(side.contains("iam:ListAccessKeys is denied"), "{side}");
    assert!(side.contains("SourceKeyMaxAgeDays=0"), "{side}");
    let until = stored_tag(&bed, "key-age-denied-until").expect("the denial is recorded");
    assert!(until.starts_with("20"), "{until}");
    assert_eq!(second.code, Some(0), "{second:?}");
    assert!(
        second.json()["sideWork"]["warnings"].is_null(),
        "warned once: {}",
        second.stdout
    );
    assert_eq!(
        bed.sts.calls_of("ListAccessKeys").len(),
        1,
        "asked once, not again within the back-off"
    );
    assert_no_secrets(&bed, &[&first.text(), &second.text()]);
}

/// The CLI waits for its side work and prints it; `serve` shows it in the next report.
#[tokio::test]
async fn side_work_is_printed_by_the_cli_and_shown_in_the_next_report() {
    let bed = TestBed::start().await.unwrap();
    let env = settings(&bed, &[], &[]);

    let cli = run_cli(&env, &["rotate"]).await;

    assert_eq!(cli.code, Some(0), "{cli:?}");
    assert!(
        cli.json()["sideWork"]["actions"]
            .to_string()
            .contains("recorded the source key's creation date"),
        "{}",
        cli.stdout
    );
    let app = App::spawn(env).await;
    let first = app.http_rotate("POST", &[("force", "true")], None).await;
    assert_eq!(first.status, 200);
    // Version hygiene of the first run (nothing expired, nothing to do) has finished by the time
    // the next run reports it.
    let mut next = serde_json::Value::Null;
    for _ in 0..50 {
        next = app
            .http_rotate("POST", &[("force", "true")], None)
            .await
            .body;
        if !next["previousSideWork"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(next["previousSideWork"]["finishedAt"].is_string(), "{next}");
    assert_no_secrets(&bed, &[&cli.text(), &app.all_text()]);
}

/// Warmed at start-up, the first invocation fetches no token and meets no challenge.
#[tokio::test]
async fn the_first_invocation_after_start_pays_no_token_or_challenge() {
    let bed = TestBed::start().await.unwrap();
    let app = App::spawn(settings(&bed, &[], &[])).await;
    app.wait_warm_up(1).await;
    let tokens_before = bed.issuer.requests().len();
    bed.vault.clear_log();

    let answer = app.http_rotate("POST", &[("force", "true")], None).await;

    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(
        bed.issuer.requests().len(),
        tokens_before,
        "no token fetched"
    );
    let log = bed.vault.log();
    assert!(!log.is_empty());
    assert!(
        log.iter().all(|r| r.authorized),
        "no request met the challenge: {log:?}"
    );
    assert_no_secrets(&bed, &[&app.all_text()]);
}
