use std::time::Duration;

use testbed::TestBed;

use crate::support::{run_cli, settings, App};

#[tokio::test]
async fn serve_without_a_port_exits_non_zero_naming_the_variable() {
    // no secret search: its environment holds no secret at all.
    let out = run_cli(&Default::default(), &["serve"]).await;
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("FUNCTIONS_CUSTOMHANDLER_PORT"),
        "{out:?}"
    );
    let out = run_cli(
        &[(
            "FUNCTIONS_CUSTOMHANDLER_PORT".to_string(),
            "http".to_string(),
        )]
        .into(),
        &["serve"],
    )
    .await;
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .contains("FUNCTIONS_CUSTOMHANDLER_PORT is not a port number"),
        "{out:?}"
    );
}

#[tokio::test]
async fn sigterm_finishes_the_rotation_in_flight_then_exits_non_zero() {
    let bed = TestBed::start().await.unwrap();
    bed.sts.faults.set_latency(Duration::from_millis(700));
    let mut app = App::spawn(settings(&bed, &[], &[])).await;

    let (answer, ()) = tokio::join!(app.http_rotate("POST", &[], None), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.signal_term();
    });

    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["rotated"], true);
    assert_eq!(app.wait_exit().await, Some(143));
    assert_eq!(
        crate::support::assert_one_set(&bed).await,
        answer.body["accessKeyId"].as_str().unwrap(),
        "the run in flight published its whole set before the exit"
    );
    assert_eq!(bed.sts.minted().len(), 1);
    crate::support::assert_no_secrets(&bed, &[&app.all_text()]);
}

#[tokio::test]
async fn check_validates_and_describes_without_minting() {
    let bed = TestBed::start().await.unwrap();
    let out = run_cli(&settings(&bed, &[], &[]), &["check"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("mode:      session-token"));
    assert!(out.stdout.contains("UsernameFromKeyVault: secret URI"));
    assert!(bed.sts.calls().is_empty());

    let bad = run_cli(
        &settings(&bed, &[("CredentialMode", "magic")], &[]),
        &["check"],
    )
    .await;
    assert_eq!(bad.code, Some(1));
    assert!(bad.stderr.contains("CredentialMode"), "{bad:?}");
    crate::support::assert_no_secrets(&bed, &[&out.text(), &bad.text()]);
}
