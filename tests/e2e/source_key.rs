//! Rotation of the IAM user's own access key (issue #7), against moto's IAM through the test
//! bed's front (which follows keys' life: propagation delay, inactive and deleted keys refused).
//!
//! The crash tests fail one call of the protocol (the "crash"), then run again as the next timer
//! run would, and check the end state: exactly one active key, and it is the one in Key Vault.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use testbed::{Fault, Rule, TestBed, SOURCE_KEY_ID_SECRET, SOURCE_SECRET_KEY_SECRET};

use crate::support::{
    active_keys, assert_no_secrets, run_cli, settings, stored_key_id, App, CliOutput,
};

fn env(bed: &TestBed, set: &[(&str, &str)]) -> HashMap<String, String> {
    settings(bed, set, &[])
}

async fn rotate_key(env: &HashMap<String, String>) -> CliOutput {
    run_cli(env, &["rotate", "--rotate-source-key"]).await
}

async fn rotate(env: &HashMap<String, String>) -> CliOutput {
    run_cli(env, &["rotate"]).await
}

fn stored_tag(bed: &TestBed, name: &str) -> Option<String> {
    bed.vault
        .latest(SOURCE_KEY_ID_SECRET)
        .unwrap()
        .tags
        .and_then(|t| t.get(name).cloned())
}

/// The invariant after every run that did not stop on purpose: one active key, the stored one,
/// and the stored secret belongs to it (the front verifies SigV4 signatures: a call signed with
/// the stored pair is accepted, and the last mint was signed with the stored key).
async fn assert_consistent(bed: &TestBed) {
    let stored = stored_key_id(bed);
    assert_eq!(
        active_keys(bed).await,
        vec![stored.clone()],
        "exactly one active key, the stored one"
    );
    let secret = bed.vault.latest(SOURCE_SECRET_KEY_SECRET).unwrap();
    if let Some(belongs) = secret.tags.as_ref().and_then(|t| t.get("access-key-id")) {
        assert_eq!(
            belongs, &stored,
            "the stored secret belongs to the stored key id"
        );
    }
    assert!(
        bed.caller_arn(&stored, &secret.value, None)
            .await
            .is_ok_and(|arn| arn.ends_with(":user/stsbridge-minter")),
        "the stored secret signs for the stored key id"
    );
    let mints = bed.sts.calls_of("GetSessionToken");
    let last = mints
        .iter()
        .rev()
        .find(|c| c.status == 200)
        .expect("a mint");
    assert_eq!(
        last.access_key_id.as_deref(),
        Some(stored.as_str()),
        "the last mint used the stored key"
    );
}

#[tokio::test]
async fn rotate_source_key_over_http_creates_stores_verifies_mints_and_deactivates() {
    let bed = TestBed::start().await.unwrap();
    let old = bed.source.access_key_id.clone();
    let app = App::spawn(env(&bed, &[])).await;

    let answer = app
        .http_rotate("POST", &[("rotateSourceKey", "true")], None)
        .await;

    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let new = stored_key_id(&bed);
    assert_ne!(new, old);
    let report = &answer.body["sourceKey"];
    assert_eq!(report["accessKeyId"], Value::String(new.clone()));
    assert_eq!(report["previousAccessKeyId"], Value::String(old.clone()));
    let actions = report["actions"].to_string();
    for step in [
        "created",
        "stored the new key",
        "verified",
        "deactivated the previous key",
    ] {
        assert!(actions.contains(step), "{actions}");
    }
    // The consumers moved on: the set was minted with the new key.
    assert_eq!(answer.body["rotated"], Value::Bool(true));
    assert_consistent(&bed).await;
    let keys = bed.access_keys().await.unwrap();
    assert!(keys.contains(&(old.clone(), "Inactive".into())), "{keys:?}");
    assert_eq!(
        stored_tag(&bed, "key-rotation").as_deref(),
        Some("deactivated")
    );
    // The new key was stored before it was verified or used, and the secret before its id.
    let log = bed.vault.log();
    let put_secret = log
        .iter()
        .position(|r| r.op == "set" && r.name.as_deref() == Some(SOURCE_SECRET_KEY_SECRET))
        .unwrap();
    let put_id = log
        .iter()
        .position(|r| r.op == "set" && r.name.as_deref() == Some(SOURCE_KEY_ID_SECRET))
        .unwrap();
    assert!(put_secret < put_id);
    let verify = bed
        .sts
        .calls_of("GetCallerIdentity")
        .into_iter()
        .find(|c| c.access_key_id.as_deref() == Some(new.as_str()))
        .unwrap();
    let stored_at = log[put_id].finished;
    assert!(
        verify.started >= stored_at,
        "verified only after it was stored"
    );

    // Within the grace period the old key stays (inactive); once it is over, a later run deletes it.
    let again = app.http_rotate("POST", &[], None).await;
    assert_eq!(again.status, 200);
    assert_eq!(bed.access_keys().await.unwrap().len(), 2);
    drop(app);
    let out = rotate(&env(&bed, &[("SourceKeyDeleteAfterHours", "0")])).await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert!(
        out.stdout.contains("deleted the previous key"),
        "{}",
        out.stdout
    );
    assert_eq!(
        bed.access_keys().await.unwrap(),
        vec![(new.clone(), "Active".to_string())]
    );
    assert_eq!(
        stored_tag(&bed, "key-rotation").as_deref(),
        Some("complete")
    );
    // The old key no longer works anywhere.
    assert!(bed
        .sts
        .calls_of("GetSessionToken")
        .iter()
        .all(|c| c.status != 200
            || c.access_key_id.as_deref() != Some(old.as_str())
            || c.finished < verify.started));
    assert_no_secrets(&bed, &[&out.text()]);
}

#[tokio::test]
async fn the_timer_learns_the_keys_age_and_rotates_it_when_due() {
    let bed = TestBed::start().await.unwrap();
    let old = bed.source.access_key_id.clone();
    let app = App::spawn(env(&bed, &[])).await;

    let (status, _) = app.timer_rotate().await;
    assert_eq!(status, 200);
    // Learning the age is side work, after the answer.
    let mut learned = None;
    for _ in 0..200 {
        learned = stored_tag(&bed, "access-key-created");
        if learned.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let learned = learned.expect("the age is recorded");
    assert!(learned.starts_with("20"), "{learned}");
    assert!(
        bed.sts.calls_of("CreateAccessKey").is_empty(),
        "a new key is not due"
    );

    // The key is now 100 days old (by its recorded creation date).
    bed.vault.seed(
        SOURCE_KEY_ID_SECRET,
        &old,
        &[("access-key-created", "2020-01-01T00:00:00Z")],
    );
    let (status, envelope) = app.timer_rotate().await;
    assert_eq!(status, 200);
    assert_ne!(stored_key_id(&bed), old);
    assert_consistent(&bed).await;
    assert_eq!(bed.sts.calls_of("CreateAccessKey").len(), 1);
    assert_no_secrets(&bed, &[&envelope.to_string(), &app.all_text()]);
}

#[tokio::test]
async fn max_age_zero_never_rotates_and_never_calls_iam() {
    let bed = TestBed::start().await.unwrap();
    bed.vault.seed(
        SOURCE_KEY_ID_SECRET,
        &bed.source.access_key_id,
        &[("access-key-created", "2020-01-01T00:00:00Z")],
    );
    let out = rotate(&env(&bed, &[("SourceKeyMaxAgeDays", "0")])).await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert!(bed.sts.calls().iter().all(|c| c.service != "iam"));
    assert_no_secrets(&bed, &[&out.text()]);
}

#[tokio::test]
async fn an_inactive_second_key_is_deleted_and_an_active_foreign_one_stops_the_protocol() {
    let bed = TestBed::start().await.unwrap();
    let old = bed.source.access_key_id.clone();
    let (inactive, _) = bed.add_access_key(false).await.unwrap();
    let out = rotate_key(&env(&bed, &[])).await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert!(
        out.stdout
            .contains(&format!("deleted the other key {inactive}")),
        "{}",
        out.stdout
    );
    assert_consistent(&bed).await;

    let bed = TestBed::start().await.unwrap();
    let (foreign, _) = bed.add_access_key(true).await.unwrap();
    let before = bed.vault.versions(SOURCE_KEY_ID_SECRET).len();
    let out = rotate_key(&env(&bed, &[])).await;
    assert_ne!(out.code, Some(0));
    assert!(out.text().contains("ForeignAccessKey"), "{}", out.text());
    assert!(
        out.text().contains(&foreign) && out.text().contains("SourceKeyDeleteForeignKey"),
        "{}",
        out.text()
    );
    assert!(bed.sts.calls_of("CreateAccessKey").is_empty());
    assert_eq!(
        bed.vault.versions(SOURCE_KEY_ID_SECRET).len(),
        before,
        "nothing stored"
    );
    assert_eq!(bed.access_keys().await.unwrap().len(), 2, "nothing deleted");
    assert_eq!(stored_key_id(&bed), bed.source.access_key_id);

    let out = rotate_key(&env(&bed, &[("SourceKeyDeleteForeignKey", "true")])).await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert_consistent(&bed).await;
    let ids: Vec<String> = bed
        .access_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert!(!ids.contains(&foreign));
    assert_ne!(stored_key_id(&bed), old);
    assert_no_secrets(&bed, &[&out.text()]);
}

#[tokio::test]
async fn verification_waits_out_iams_propagation_delay() {
    let bed = TestBed::start().await.unwrap();
    bed.sts.set_key_propagation(Duration::from_millis(1500));
    let out = rotate_key(&env(&bed, &[])).await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    let new = stored_key_id(&bed);
    let tries: Vec<u16> = bed
        .sts
        .calls_of("GetCallerIdentity")
        .into_iter()
        .filter(|c| c.access_key_id.as_deref() == Some(new.as_str()))
        .map(|c| c.status)
        .collect();
    assert!(
        tries.len() >= 2 && tries[0] == 403 && *tries.last().unwrap() == 200,
        "{tries:?}"
    );
    assert_consistent(&bed).await;
    assert_no_secrets(&bed, &[&out.text()]);
}

#[tokio::test]
async fn a_key_that_never_propagates_is_kept_in_the_vault_and_finished_by_a_later_run() {
    let bed = TestBed::start().await.unwrap();
    let old = bed.source.access_key_id.clone();
    bed.sts.set_key_propagation(Duration::from_secs(3));
    let e = env(&bed, &[("SourceKeyPropagationSeconds", "1")]);
    let out = rotate_key(&e).await;
    assert_ne!(out.code, Some(0));
    assert!(
        out.text().contains("SourceKeyPropagationSeconds"),
        "{}",
        out.text()
    );
    let new = stored_key_id(&bed);
    assert_ne!(new, old, "the new key is stored, not lost");
    assert!(
        bed.sts.calls_of("GetSessionToken").is_empty(),
        "nothing minted with an unverified key"
    );
    assert_eq!(
        active_keys(&bed).await.len(),
        2,
        "the old key still works meanwhile"
    );

    tokio::time::sleep(Duration::from_secs(3)).await;
    let out = rotate(&e).await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert_consistent(&bed).await;
    assert_eq!(
        bed.sts.calls_of("CreateAccessKey").len(),
        1,
        "resumed, not restarted"
    );
    assert_no_secrets(&bed, &[&out.text()]);
}

#[tokio::test]
async fn a_vault_write_failing_after_create_access_key_deletes_the_new_key() {
    let bed = TestBed::start().await.unwrap();
    bed.vault.faults.add(
        Rule::on("set", Fault::forbidden_by_rbac())
            .named(SOURCE_SECRET_KEY_SECRET)
            .times(1),
    );
    let out = rotate_key(&env(&bed, &[])).await;
    assert_ne!(out.code, Some(0));
    assert!(out.text().contains("was deleted again"), "{}", out.text());
    assert_eq!(bed.access_keys().await.unwrap().len(), 1);
    assert_eq!(stored_key_id(&bed), bed.source.access_key_id);
    assert_no_secrets(&bed, &[&out.text()]);
}

/// One crash case: `inject` fails a call of the first (requested) run; the second, plain run
/// must end consistent.
async fn crash_then_resume(inject: impl FnOnce(&TestBed), first_says: &str, expect_rotated: bool) {
    let bed = TestBed::start().await.unwrap();
    let old = bed.source.access_key_id.clone();
    inject(&bed);
    let e = env(&bed, &[]);
    let first = rotate_key(&e).await;
    assert!(first.text().contains(first_says), "{}", first.text());
    bed.sts.faults.clear();
    bed.vault.faults.clear();
    let second = rotate(&e).await;
    assert_eq!(
        second.code,
        Some(0),
        "first: {}\nsecond: {}",
        first.text(),
        second.text()
    );
    assert_consistent(&bed).await;
    assert_eq!(
        stored_key_id(&bed) != old,
        expect_rotated,
        "first: {}\nsecond: {}",
        first.text(),
        second.text()
    );
    assert_no_secrets(&bed, &[&first.text(), &second.text()]);
}

#[tokio::test]
async fn crash_at_list_access_keys() {
    crash_then_resume(
        |bed| bed.sts.faults.add(Rule::on("ListAccessKeys", Fault::Drop)),
        "ListAccessKeys",
        false,
    )
    .await;
}

#[tokio::test]
async fn crash_before_create_access_key_after_the_marker() {
    crash_then_resume(
        |bed| {
            bed.sts.faults.add(Rule::on(
                "CreateAccessKey",
                Fault::error(500, "ServiceFailure", "boom"),
            ))
        },
        "CreateAccessKey",
        true,
    )
    .await;
}

#[tokio::test]
async fn crash_after_create_access_key_with_its_secret_unstored_and_undeletable() {
    // The new key exists in IAM, its secret nowhere: the next run recognises the orphan
    // (created after the `creating` marker), deletes it, and rotates.
    crash_then_resume(
        |bed| {
            bed.vault
                .faults
                .add(Rule::on("set", Fault::Drop).named(SOURCE_SECRET_KEY_SECRET));
            bed.sts.faults.add(Rule::on("DeleteAccessKey", Fault::Drop));
        },
        "could NOT be deleted",
        true,
    )
    .await;
}

#[tokio::test]
async fn crash_between_storing_the_secret_and_the_key_id() {
    crash_then_resume(
        |bed| {
            bed.vault
                .faults
                .add(Rule::on("set", Fault::Drop).named(SOURCE_KEY_ID_SECRET))
        },
        "storing the new key id",
        true,
    )
    .await;
}

#[tokio::test]
async fn crash_at_minting_with_the_new_key() {
    crash_then_resume(
        |bed| {
            bed.sts.faults.add(Rule::on(
                "GetSessionToken",
                Fault::error(503, "ServiceUnavailable", "down"),
            ))
        },
        "ServiceUnavailable",
        true,
    )
    .await;
}

#[tokio::test]
async fn crash_at_deactivating_the_old_key() {
    crash_then_resume(
        |bed| bed.sts.faults.add(Rule::on("UpdateAccessKey", Fault::Drop)),
        "could not deactivate the previous key",
        true,
    )
    .await;
}

#[tokio::test]
async fn crash_at_recording_the_deactivation() {
    crash_then_resume(
        |bed| {
            // The first tag update is the `creating` marker; the second records the deactivation.
            bed.vault.faults.add(
                Rule::on("update", Fault::Drop)
                    .named(SOURCE_KEY_ID_SECRET)
                    .after(1),
            );
        },
        "could not record the deactivation",
        true,
    )
    .await;
}

#[tokio::test]
async fn crash_at_setting_the_creating_marker() {
    crash_then_resume(
        |bed| {
            bed.vault
                .faults
                .add(Rule::on("update", Fault::Drop).named(SOURCE_KEY_ID_SECRET))
        },
        "marking the key rotation as started",
        false,
    )
    .await;
}

#[tokio::test]
async fn crash_at_deleting_the_old_key_after_the_grace_period() {
    let bed = TestBed::start().await.unwrap();
    let e = env(&bed, &[("SourceKeyDeleteAfterHours", "0")]);
    assert_eq!(rotate_key(&e).await.code, Some(0));
    bed.sts.faults.add(Rule::on("DeleteAccessKey", Fault::Drop));
    let failed = rotate(&e).await;
    assert_eq!(
        failed.code,
        Some(0),
        "a failed deletion is a warning: {}",
        failed.text()
    );
    assert!(
        failed.text().contains("could not delete the previous key"),
        "{}",
        failed.text()
    );
    bed.sts.faults.clear();
    let last = rotate(&e).await;
    assert_eq!(last.code, Some(0), "{}", last.text());
    assert_eq!(
        bed.access_keys().await.unwrap(),
        vec![(stored_key_id(&bed), "Active".to_string())]
    );
    assert_no_secrets(&bed, &[&failed.text(), &last.text()]);
}

#[tokio::test]
async fn source_keys_given_as_values_cannot_be_rotated_and_nothing_is_called() {
    let bed = TestBed::start().await.unwrap();
    let e = settings(
        &bed,
        &[
            ("UsernameFromKeyVault", bed.source.access_key_id.as_str()),
            (
                "PasswordFromKeyVault",
                bed.source.secret_access_key.as_str(),
            ),
        ],
        &[],
    );
    let out = rotate_key(&e).await;
    assert_ne!(out.code, Some(0));
    assert!(
        out.text().contains("SourceKeyNotWritable"),
        "{}",
        out.text()
    );
    assert!(
        out.text().contains("UsernameFromKeyVault"),
        "{}",
        out.text()
    );
    assert!(bed.sts.calls().iter().all(|c| c.service != "iam"));
    assert_no_secrets(&bed, &[&out.text()]);
}
