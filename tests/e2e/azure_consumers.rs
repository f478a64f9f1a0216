//! Azure consumers (issue #18): after a publish, the App Service / Function Apps of
//! `RefreshAppSettingsOf` are asked (through the test bed's Resource Manager) to re-resolve their
//! Key Vault references, as side work that never fails or delays a rotation.

use std::time::Duration;

use testbed::arm::{authorization_failed, too_many_requests};
use testbed::{Fault, Rule, TestBed};

use crate::support::{assert_no_secrets, run_cli, settings, App};

const SUB: &str = "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg-consumers/providers/Microsoft.Web/sites";

fn app_id(name: &str) -> String {
    format!("{SUB}/{name}")
}

/// Registers apps whose references resolve, one with a reference its identity cannot read.
fn register(bed: &TestBed, names: &[&str]) {
    for name in names {
        bed.arm.add_app(
            &app_id(name),
            &[
                ("AWS_CREDENTIALS", "AwsSessionCredentials", "Resolved"),
                (
                    "AWS_SESSION_TOKEN",
                    "SessionToken",
                    if *name == "denied-app" {
                        "AccessToKeyVaultDenied"
                    } else {
                        "Resolved"
                    },
                ),
            ],
        );
    }
}

/// Polls GET HttpRotate until its side work mentions `what`.
async fn side_work_mentioning(app: &App, what: &str) -> serde_json::Value {
    app.side_work_where(|s| s.to_string().contains(what)).await
}

#[tokio::test]
async fn apps_are_refreshed_after_a_mint_and_a_repair_but_not_after_a_fresh_run() {
    let bed = TestBed::start().await.unwrap();
    register(&bed, &["app-a", "denied-app"]);
    let list = format!("{},{}", app_id("app-a"), app_id("denied-app"));
    let env = settings(&bed, &[("RefreshAppSettingsOf", &list)], &[]);
    let app = App::spawn(env.clone()).await;

    // A mint.
    let minted = app.http_rotate("POST", &[], None).await;
    assert_eq!(minted.body["rotated"], true);
    let side = side_work_mentioning(&app, "denied-app").await;
    assert_eq!(bed.arm.refreshes(&app_id("app-a")), 1);
    assert_eq!(bed.arm.refreshes(&app_id("denied-app")), 1);
    let text = side.to_string();
    assert!(
        text.contains("refreshed the Key Vault references of app app-a: 2 of 2 resolved"),
        "{text}"
    );
    assert!(
        text.contains("app denied-app: the Key Vault reference of setting AWS_SESSION_TOKEN is AccessToKeyVaultDenied"),
        "{text}"
    );

    // A fresh (no-op) run refreshes nothing: `stsbridge rotate` exits only once its side work
    // and consumer refreshes are done, so what it did not refresh by then, it never will.
    let fresh = run_cli(&env, &["rotate"]).await;
    assert_eq!(fresh.code, Some(0), "{fresh:?}");
    assert_eq!(fresh.json()["rotated"], false, "{}", fresh.stdout);
    assert_eq!(bed.arm.refreshes(&app_id("app-a")), 1);

    // A repair does: a separate secret out of step with the bundle.
    bed.vault
        .seed("SessionToken", "FwoGZXIvYXdzEOLDTOKENVALUE", &[]);
    let repaired = app.http_rotate("POST", &[], None).await;
    assert_eq!(
        repaired.body["repaired"],
        serde_json::json!(["SessionToken"]),
        "{:?}",
        repaired.body
    );
    for _ in 0..200 {
        if bed.arm.refreshes(&app_id("app-a")) == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(bed.arm.refreshes(&app_id("app-a")), 2);
    // Every call carried a token for ARM's audience.
    assert!(bed.arm.calls().iter().all(|c| c.authorized));
    assert_no_secrets(&bed, &[&app.all_text(), &fresh.text()]);
}

/// The Resource Manager fake moves as App Service does: a refresh re-resolves each reference
/// against the vault, so after every publish the app's bundle reference points at the version just
/// published, and a reference to a secret that is gone is reported as such.
#[tokio::test]
async fn a_refresh_moves_each_reference_to_the_version_just_published() {
    let bed = TestBed::start().await.unwrap();
    bed.arm.add_app(
        &app_id("app-a"),
        &[
            ("AWS_CREDENTIALS", "AwsSessionCredentials", "Resolved"),
            ("LEGACY", "Retired-Secret", "Resolved"),
        ],
    );
    let app = App::spawn(settings(
        &bed,
        &[("RefreshAppSettingsOf", &app_id("app-a"))],
        &[],
    ))
    .await;
    let version_of = |setting: &str| {
        bed.arm
            .references(&app_id("app-a"))
            .into_iter()
            .find(|r| r.setting == setting)
            .map(|r| (r.status, r.version))
            .unwrap()
    };
    assert_eq!(version_of("AWS_CREDENTIALS"), ("Resolved".into(), None));

    for round in 1..=2 {
        let answer = app.http_rotate("POST", &[("force", "true")], None).await;
        assert_eq!(answer.body["rotated"], true, "{:?}", answer.body);
        // This round's refresh and listing done (side work, after the answer).
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while bed.arm.calls().iter().filter(|c| c.op == "list").count() < round as usize {
            assert!(std::time::Instant::now() < deadline, "no listing");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let side = app
            .side_work_where(|s| s.to_string().contains("refreshed the Key Vault references"))
            .await
            .to_string();
        assert_eq!(bed.arm.refreshes(&app_id("app-a")), round);
        let published = bed.vault.latest("AwsSessionCredentials").unwrap().version;
        assert_eq!(
            version_of("AWS_CREDENTIALS"),
            ("Resolved".into(), Some(published)),
            "round {round}"
        );
        assert_eq!(version_of("LEGACY"), ("SecretNotFound".into(), None));
        assert!(
            side.contains("refreshed the Key Vault references of app app-a: 1 of 2 resolved")
                && side.contains(
                    "the Key Vault reference of setting LEGACY is SecretNotFound: the reference names a secret that does not exist"
                ),
            "{side}"
        );
    }
    assert_no_secrets(&bed, &[&app.all_text()]);
}

#[tokio::test]
async fn an_app_that_refuses_never_stops_the_others_or_the_rotation() {
    let bed = TestBed::start().await.unwrap();
    register(&bed, &["app-a", "app-b"]);
    bed.arm
        .faults
        .add(Rule::on("refresh", authorization_failed("app-b")).named("app-b"));
    bed.arm.faults.add(
        Rule::on("refresh", too_many_requests(1))
            .named("app-a")
            .times(1),
    );
    let list = format!(
        "{},{},{}",
        app_id("app-a"),
        app_id("app-b"),
        app_id("missing-app")
    );
    let app = App::spawn(settings(&bed, &[("RefreshAppSettingsOf", &list)], &[])).await;

    let answer = app.http_rotate("POST", &[("force", "true")], None).await;

    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let side = side_work_mentioning(&app, "missing-app").await.to_string();
    assert!(side.contains("app app-b (AuthorizationFailed)"), "{side}");
    assert!(
        side.contains("app missing-app (ResourceNotFound)"),
        "{side}"
    );
    // The 429 was retried after its Retry-After, and app-a refreshed.
    let side = side_work_mentioning(&app, "app-a").await.to_string();
    assert!(
        side.contains("refreshed the Key Vault references of app app-a"),
        "{side}"
    );
    assert_eq!(bed.arm.refreshes(&app_id("app-a")), 1);
    assert_no_secrets(&bed, &[&app.all_text()]);
}

#[tokio::test]
async fn a_hanging_resource_manager_does_not_hold_the_answer() {
    let bed = TestBed::start().await.unwrap();
    register(&bed, &["app-a"]);
    bed.arm
        .faults
        .add(Rule::on("refresh", Fault::Delay(Duration::from_secs(3600))));
    let app = App::spawn(settings(
        &bed,
        &[
            ("RefreshAppSettingsOf", &app_id("app-a")),
            ("RotationTimeBudgetSeconds", "8"),
        ],
        &[],
    ))
    .await;

    let answer = app.http_rotate("POST", &[("force", "true")], None).await;

    assert_eq!(answer.status, 200);
    assert!(
        bed.arm.calls().is_empty(),
        "answered while the refresh still hung"
    );
    let side = side_work_mentioning(&app, "did not finish")
        .await
        .to_string();
    assert!(side.contains("app-a"), "{side}");
    assert_no_secrets(&bed, &[&app.all_text()]);
}

#[tokio::test]
async fn an_app_listed_by_several_targets_is_refreshed_once_per_run() {
    let bed = TestBed::start().await.unwrap();
    register(&bed, &["shared-app"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.json");
    std::fs::write(
        &file,
        format!(
            r#"{{"Defaults": {{"RefreshAppSettingsOf": ["{}"]}}, "Targets": [{{"Name": "one"}}, {{"Name": "two"}}]}}"#,
            app_id("shared-app")
        ),
    )
    .unwrap();
    let env = settings(
        &bed,
        &[("StsbridgeTargetsFile", file.to_str().unwrap())],
        &[],
    );

    let out = run_cli(&env, &["rotate", "--force"]).await;

    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(bed.arm.refreshes(&app_id("shared-app")), 1);
    let body = out.json();
    for t in body["targets"].as_array().unwrap() {
        assert!(t["sideWork"].to_string().contains("shared-app"), "{t}");
    }
    assert_no_secrets(&bed, &[&out.text()]);
}

#[tokio::test]
async fn check_names_what_is_refreshed_and_how_stale_each_consumer_can_get() {
    let bed = TestBed::start().await.unwrap();
    let without = run_cli(
        &settings(&bed, &[("TimerSchedule", "0 0 * * * *")], &[]),
        &["check"],
    )
    .await;
    assert_eq!(without.code, Some(0), "{without:?}");
    assert!(
        without
            .stdout
            .contains("App Service / Functions Key Vault references"),
        "{}",
        without.stdout
    );
    assert!(without.stdout.contains("up to 25 h"), "{}", without.stdout);
    assert!(
        without.stdout.contains("set RefreshAppSettingsOf"),
        "{}",
        without.stdout
    );

    let with = run_cli(
        &settings(&bed, &[("RefreshAppSettingsOf", &app_id("app-a"))], &[]),
        &["check"],
    )
    .await;
    assert_eq!(with.code, Some(0), "{with:?}");
    assert!(
        with.stdout
            .contains("refreshes: the Key Vault references of app app-a"),
        "{}",
        with.stdout
    );
    assert!(
        !with.stdout.contains("set RefreshAppSettingsOf"),
        "{}",
        with.stdout
    );
    assert!(bed.arm.calls().is_empty(), "check refreshes nothing");

    let bad = run_cli(
        &settings(
            &bed,
            &[
                ("RefreshAppSettingsOf", "consumer-app"),
                ("TimerSchedule", "hourly"),
            ],
            &[],
        ),
        &["check"],
    )
    .await;
    assert_eq!(bad.code, Some(1));
    assert!(
        bad.stderr.contains("RefreshAppSettingsOf") && bad.stderr.contains("TimerSchedule"),
        "{bad:?}"
    );
    assert_no_secrets(&bed, &[&with.text(), &without.text(), &bad.text()]);
}
