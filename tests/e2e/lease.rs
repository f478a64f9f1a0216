//! One rotation across instances (issue #17, part 2): `stsbridge serve` processes whose
//! `AzureWebJobsStorage` is a real Azure Storage emulator (Azurite, started by the test bed) take
//! a blob lease per target: the connection-string form (account key → account SAS), and the
//! identity-based form (Azurite over HTTPS with `--oauth basic`, a token from the test bed's
//! managed-identity endpoint for `https://storage.azure.com`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::future::join_all;
use testbed::{Fault, Options, Rule, TestBed};

use crate::support::{assert_no_secrets, run_cli, settings, stored_key_id, App};

async fn bed_with_storage() -> TestBed {
    TestBed::start_with(Options {
        storage: true,
        ..Default::default()
    })
    .await
    .unwrap()
}

async fn bed_with_identity_storage() -> TestBed {
    TestBed::start_with(Options {
        storage: true,
        storage_identity: true,
        ..Default::default()
    })
    .await
    .unwrap()
}

/// The shortest lease the Blob service allows, so a crashed holder's lease expires soon.
fn env(bed: &TestBed) -> HashMap<String, String> {
    settings(bed, &[("RotationLeaseSeconds", "15")], &[])
}

async fn instances(bed: &TestBed, n: usize) -> Vec<App> {
    let apps = join_all((0..n).map(|_| App::spawn(env(bed)))).await;
    for app in &apps {
        app.wait_warm_up(1).await;
    }
    apps
}

/// A SAS signature never leaves the process (errors may quote a request URL: it is redacted).
fn assert_no_sas(text: &str) {
    for (i, _) in text.match_indices("sig=") {
        assert!(
            text[i..].starts_with("sig=REDACTED"),
            "a SAS signature leaked: {}",
            &text[i.saturating_sub(80)..(i + 60).min(text.len())]
        );
    }
}

fn texts(apps: &[App]) -> Vec<String> {
    apps.iter().map(App::all_text).collect()
}

/// A burst of forced triggers, two per instance, all at once: one instance takes the lease and
/// mints; the others wait and answer with its set (minted and published after they arrived).
async fn a_burst_of_forced_triggers_mints_exactly_once(bed: &TestBed, n: usize) {
    let apps = instances(bed, n).await;
    bed.sts.faults.set_latency(Duration::from_millis(300));

    let answers = join_all(
        apps.iter()
            .flat_map(|a| [a, a])
            .map(|a| a.http_rotate("POST", &[("force", "true")], None)),
    )
    .await;

    for a in &answers {
        assert_eq!(a.status, 200, "{:?}", a.body);
    }
    assert_eq!(bed.sts.minted().len(), 1, "exactly one mint");
    let set = answers[0].body["accessKeyId"].as_str().unwrap().to_string();
    assert!(answers
        .iter()
        .all(|a| a.body["accessKeyId"] == set.as_str()));
    let texts = texts(&apps);
    for text in &texts {
        assert_no_sas(text);
    }
    assert_no_secrets(bed, &texts.iter().map(String::as_str).collect::<Vec<_>>());
}

#[tokio::test]
async fn two_instances_with_a_burst_of_forced_triggers_mint_exactly_once() {
    a_burst_of_forced_triggers_mints_exactly_once(&bed_with_storage().await, 2).await;
}

#[tokio::test]
async fn identity_based_storage_takes_the_lease_with_an_entra_token() {
    let bed = bed_with_identity_storage().await;
    let check = run_cli(&env(&bed), &["check"]).await;
    assert!(
        check.stdout.contains("(identity-based)"),
        "{}",
        check.stdout
    );

    a_burst_of_forced_triggers_mints_exactly_once(&bed, 2).await;

    let storage_tokens = bed
        .issuer
        .requests()
        .into_iter()
        .filter(|r| r.resource == "https://storage.azure.com" && r.granted)
        .count();
    assert!(storage_tokens >= 2, "each instance got a storage token");
    assert_no_secrets(&bed, &[&check.text()]);
}

#[tokio::test]
async fn three_instances_with_a_burst_of_forced_triggers_mint_exactly_once() {
    a_burst_of_forced_triggers_mints_exactly_once(&bed_with_storage().await, 3).await;
}

/// Found by the soak (issue #25): A's forced trigger decides to mint; B's and C's arrive while
/// it mints (after A's minted-at, before its publish) and wait for the lease. The first of them
/// learns from A's lease record when A published, to the millisecond, and answers with A's set;
/// the second must learn it from the first, not from the version's `created`, which Key Vault
/// keeps in whole seconds (earlier than its trigger when both fall in the same second).
#[tokio::test]
async fn the_third_forced_trigger_of_a_burst_learns_when_the_set_was_published_from_the_second() {
    let bed = bed_with_storage().await;
    let apps = instances(&bed, 3).await;
    bed.sts.faults.set_latency(Duration::from_millis(300));
    let minted_before = bed.sts.minted().len();
    // A's trigger just after a second begins, so its publish (~0.7 s later: two STS calls at
    // 300 ms) falls in the same second as B's and C's arrival 100 ms later.
    let into_second = chrono::Utc::now().timestamp_subsec_millis();
    tokio::time::sleep(Duration::from_millis(u64::from(
        1050 - into_second.min(1000),
    )))
    .await;
    let a = apps[0].http_rotate("POST", &[("force", "true")], None);
    let later = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let sent = Instant::now();
        let answers = tokio::join!(
            apps[1].http_rotate("POST", &[("force", "true")], None),
            apps[2].http_rotate("POST", &[("force", "true")], None)
        );
        (sent, answers)
    };
    let (a, (sent, (b, c))) = tokio::join!(
        async {
            let answer = a.await;
            (answer, Instant::now())
        },
        later
    );
    let (a, a_answered) = a;
    assert!(sent < a_answered, "B and C were sent while A was minting");
    for answer in [&a, &b, &c] {
        assert_eq!(answer.status, 200, "{:?}", answer.body);
    }
    assert_eq!(
        bed.sts.minted().len() - minted_before,
        1,
        "one mint for the burst: A's (B {:?}, C {:?})",
        b.body["reason"],
        c.body["reason"]
    );
    for answer in [&b, &c] {
        assert_eq!(answer.body["accessKeyId"], a.body["accessKeyId"]);
    }
    let texts = texts(&apps);
    assert_no_secrets(&bed, &texts.iter().map(String::as_str).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_holder_killed_mid_rotation_is_followed_by_a_rotation_once_its_lease_expires() {
    let bed = bed_with_storage().await;
    let mut apps = instances(&bed, 2).await;
    bed.sts.faults.set_latency(Duration::from_secs(5));

    // The first instance takes the lease and is killed while STS keeps it waiting.
    let trigger = apps[0].http_rotate("POST", &[("force", "true")], None);
    tokio::select! {
        a = trigger => panic!("answered before the kill: {a:?}"),
        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
    }
    apps[0].kill();
    bed.sts.faults.set_latency(Duration::ZERO);

    let started = Instant::now();
    let answer = apps[1]
        .http_rotate("POST", &[("force", "true")], None)
        .await;

    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["rotated"], true, "{:?}", answer.body);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(5),
        "it waited for the dead holder's lease to expire: {waited:?}"
    );
    assert!(
        answer.body["warnings"]
            .to_string()
            .contains("let it expire without releasing it"),
        "{:?}",
        answer.body
    );
    let bundle = bed.vault.latest("AwsSessionCredentials").unwrap();
    assert_eq!(
        bundle.tags.unwrap()["access-key-id"],
        answer.body["accessKeyId"].as_str().unwrap()
    );
    let texts = texts(&apps);
    assert_no_secrets(&bed, &texts.iter().map(String::as_str).collect::<Vec<_>>());
}

#[tokio::test]
async fn two_instances_asked_to_rotate_the_iam_key_at_once_make_exactly_one_new_key() {
    let bed = bed_with_storage().await;
    let apps = instances(&bed, 2).await;
    let original = stored_key_id(&bed);
    bed.sts.faults.set_latency(Duration::from_millis(200));

    let answers = join_all(
        apps.iter()
            .map(|a| a.http_rotate("POST", &[("rotateSourceKey", "true")], None)),
    )
    .await;

    for a in &answers {
        assert_eq!(a.status, 200, "{:?}", a.body);
    }
    assert_eq!(bed.sts.calls_of("CreateAccessKey").len(), 1, "one new key");
    let stored = stored_key_id(&bed);
    assert_ne!(stored, original);
    assert_eq!(crate::support::active_keys(&bed).await, vec![stored]);
    assert_eq!(bed.sts.minted().len(), 1, "one mint, with the new key");
    let texts = texts(&apps);
    assert_no_secrets(&bed, &texts.iter().map(String::as_str).collect::<Vec<_>>());
}

#[tokio::test]
async fn with_storage_down_rotation_goes_on_and_a_new_key_rotation_is_refused() {
    let mut bed = bed_with_storage().await;
    let apps = instances(&bed, 1).await;
    bed.storage.as_mut().unwrap().stop();

    let minted = apps[0]
        .http_rotate("POST", &[("force", "true")], None)
        .await;
    let key = apps[0]
        .http_rotate("POST", &[("rotateSourceKey", "true")], None)
        .await;

    assert_eq!(minted.status, 200, "{:?}", minted.body);
    assert_eq!(minted.body["rotated"], true);
    assert!(
        minted.body["warnings"]
            .to_string()
            .contains("rotation lease could not be used"),
        "{:?}",
        minted.body
    );
    assert_eq!(key.status, 503, "{:?}", key.body);
    assert_eq!(key.body["error"]["code"], "RotationLeaseUnavailable");
    assert!(key.body["error"]["message"]
        .to_string()
        .contains("AzureWebJobsStorage"));
    assert!(bed.sts.calls_of("CreateAccessKey").is_empty());
    eprintln!(
        "{}\n{}",
        minted.body["warnings"], key.body["error"]["message"]
    );
    let texts = texts(&apps);
    for text in &texts {
        assert_no_sas(text);
    }
    assert_no_secrets(&bed, &texts.iter().map(String::as_str).collect::<Vec<_>>());
}

/// A storage front that accepts connections and never answers (the test bed's `hang` fault): the
/// lease's wait is bounded, the rotation answers within its budget, and the lease store is
/// reported unreachable.
#[tokio::test]
async fn with_storage_hanging_a_rotation_answers_within_its_budget_and_says_the_lease_store_is_unreachable(
) {
    let bed = bed_with_storage().await;
    let app = App::spawn(settings(
        &bed,
        &[
            ("RotationLeaseSeconds", "15"),
            ("RotationTimeBudgetSeconds", "20"),
        ],
        &[],
    ))
    .await;
    app.wait_warm_up(1).await;
    bed.storage.as_ref().unwrap().set_hang(true);

    let started = Instant::now();
    let minted = app.http_rotate("POST", &[("force", "true")], None).await;
    let took = started.elapsed();

    assert_eq!(minted.status, 200, "{:?}", minted.body);
    assert_eq!(minted.body["rotated"], true);
    let warnings = minted.body["warnings"].to_string();
    assert!(
        warnings.contains("rotation lease could not be used")
            && warnings.contains("no answer within 5 s from the lease store"),
        "{warnings}"
    );
    // The lease's call is bounded by a quarter of the budget: 5 s, then read, mint, verify,
    // publish on the test bed take well under a second.
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(20),
        "{took:?}"
    );
    assert_eq!(bed.sts.calls_of("GetSessionToken").len(), 1);
    let text = app.all_text();
    assert_no_sas(&text);
    assert_no_secrets(&bed, &[&text]);
}

#[tokio::test]
async fn check_names_the_lease_store_and_its_form_but_never_the_key() {
    let bed = bed_with_storage().await;
    let with = run_cli(&env(&bed), &["check"]).await;
    let without = run_cli(&settings(&bed, &[], &["AzureWebJobsStorage"]), &["check"]).await;

    assert_eq!(with.code, Some(0), "{}", with.text());
    let port = bed.storage.as_ref().unwrap().port;
    assert!(
        with.stdout.contains(&format!(
            "lease:     account devstoreaccount1, endpoint http://127.0.0.1:{port}/devstoreaccount1 (connection string, account key)"
        )),
        "{}",
        with.stdout
    );
    assert!(
        without.stdout.contains("lease:     none"),
        "{}",
        without.stdout
    );
    assert_no_secrets(&bed, &[&with.text(), &without.text()]);
}

#[tokio::test]
async fn a_trigger_that_waited_for_a_failed_holder_says_so_and_rotates_itself() {
    let bed = bed_with_storage().await;
    let apps = instances(&bed, 2).await;
    bed.sts.faults.set_latency(Duration::from_millis(700));
    bed.sts.faults.add(
        Rule::on(
            "GetSessionToken",
            Fault::error(
                403,
                "InvalidClientTokenId",
                "The security token is invalid.",
            ),
        )
        .times(1),
    );

    let (holder, waiter) = tokio::join!(
        apps[0].http_rotate("POST", &[("force", "true")], None),
        async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            apps[1]
                .http_rotate("POST", &[("force", "true")], None)
                .await
        }
    );

    assert_eq!(holder.status, 502, "{:?}", holder.body);
    assert_eq!(waiter.status, 200, "{:?}", waiter.body);
    assert_eq!(waiter.body["rotated"], true);
    let warnings = waiter.body["warnings"].to_string();
    assert!(
        warnings.contains("its run failed") && warnings.contains("InvalidClientTokenId"),
        "{warnings}"
    );
    assert_eq!(bed.sts.minted().len(), 1);
    let texts = texts(&apps);
    assert_no_secrets(&bed, &texts.iter().map(String::as_str).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_trigger_that_waits_too_long_for_the_lease_says_so_and_mints_nothing() {
    let bed = bed_with_storage().await;
    let holder_app = App::spawn(env(&bed)).await;
    let waiter_app = App::spawn(settings(
        &bed,
        &[
            ("RotationLeaseSeconds", "15"),
            ("RotationTimeBudgetSeconds", "5"),
        ],
        &[],
    ))
    .await;
    holder_app.wait_warm_up(1).await;
    waiter_app.wait_warm_up(1).await;
    bed.sts.faults.set_latency(Duration::from_secs(4));

    let (holder, waiter) = tokio::join!(
        holder_app.http_rotate("POST", &[("force", "true")], None),
        async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            waiter_app
                .http_rotate("POST", &[("force", "true")], None)
                .await
        }
    );

    assert_eq!(holder.status, 200, "{:?}", holder.body);
    assert_eq!(waiter.status, 409, "{:?}", waiter.body);
    assert_eq!(waiter.body["error"]["code"], "RotationLeaseHeld");
    assert!(waiter.body["error"]["message"]
        .to_string()
        .contains("nothing was minted here"));
    assert_eq!(bed.sts.minted().len(), 1, "only the holder minted");
    let texts = [holder_app.all_text(), waiter_app.all_text()];
    assert_no_secrets(&bed, &texts.iter().map(String::as_str).collect::<Vec<_>>());
}

/// Learning the source key's age changes no key, so it runs after the lease is released: an
/// IAM that never answers holds neither the answer nor the next trigger (with the lease held
/// by that side work, a trigger right after the answer waited for its whole budget).
#[tokio::test]
async fn a_hanging_iam_holds_neither_the_answer_nor_the_next_trigger() {
    let bed = bed_with_storage().await;
    bed.sts.faults.add(Rule::on(
        "ListAccessKeys",
        Fault::Delay(Duration::from_secs(3600)),
    ));
    let app = App::spawn(settings(
        &bed,
        &[
            ("RotationLeaseSeconds", "15"),
            ("RotationTimeBudgetSeconds", "40"),
        ],
        &[],
    ))
    .await;
    app.wait_warm_up(1).await;

    let first = app.http_rotate("POST", &[("force", "true")], None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let second = app.http_rotate("POST", &[("force", "true")], None).await;
    let waited = started.elapsed();

    assert_eq!(
        (first.status, second.status),
        (200, 200),
        "{:?}",
        second.body
    );
    assert_eq!(second.body["rotated"], true);
    // The side work's budget is 10 s (a quarter of 40): the second trigger must not wait for it.
    assert!(
        waited < Duration::from_secs(5),
        "the second trigger waited {waited:?}: {}",
        app.output()
    );
    assert_no_secrets(&bed, &[&app.all_text()]);
}

/// Issue #28: an unforced trigger that finds the lease held by another instance, and whose own
/// reads show a fresh set, answers at once with that set instead of waiting for the holder.
#[tokio::test]
async fn an_unforced_trigger_that_reads_a_fresh_set_does_not_wait_for_a_busy_lease() {
    let bed = bed_with_storage().await;
    let apps = instances(&bed, 2).await;
    let first = apps[0]
        .http_rotate("POST", &[("force", "true")], None)
        .await;
    assert_eq!(first.body["rotated"], true, "{:?}", first.body);
    // The holder's next mint takes 6 s: the lease is busy all that time.
    bed.sts.faults.add(Rule::on(
        "GetSessionToken",
        Fault::Delay(Duration::from_secs(6)),
    ));

    let holder = apps[0].http_rotate("POST", &[("force", "true")], None);
    let waiter = async {
        // Once the holder has taken the lease (its GetSessionToken has arrived).
        let deadline = Instant::now() + Duration::from_secs(10);
        while bed.sts.arrived("GetSessionToken") < 2 {
            assert!(Instant::now() < deadline, "the holder never minted");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let asked = Instant::now();
        let answer = apps[1].http_rotate("POST", &[], None).await;
        (answer, asked.elapsed())
    };
    let (held, (fresh, took)) = tokio::join!(holder, waiter);

    assert_eq!(held.body["rotated"], true, "{:?}", held.body);
    assert_eq!(fresh.status, 200, "{:?}", fresh.body);
    assert_eq!(fresh.body["rotated"], false);
    assert!(
        fresh.body["reason"]
            .as_str()
            .unwrap()
            .contains("another instance holds the rotation lease"),
        "{:?}",
        fresh.body
    );
    assert_eq!(fresh.body["accessKeyId"], first.body["accessKeyId"]);
    assert!(
        took < Duration::from_secs(3),
        "waited {took:?} for the holder"
    );
    let texts = texts(&apps);
    assert_no_secrets(&bed, &texts.iter().map(String::as_str).collect::<Vec<_>>());
}

/// Issue #27, F3: with an account key, every request the lease store signs carries a service
/// SAS on the lease container (`sr=c`, read and write), and the one that creates the container
/// an account SAS that reaches containers only (`srt=c`, write). Before, every request carried
/// one account SAS with read, write and create on every container and blob (`srt=co`, `sp=rwc`).
/// Azurite checks each signature; a SAS signed the lease's way opens no other container.
#[tokio::test]
async fn the_lease_store_signs_only_for_its_own_container() {
    let bed = bed_with_storage().await;
    let app = App::spawn(env(&bed)).await;
    app.wait_warm_up(1).await;
    let storage = bed.storage.as_ref().unwrap();

    let answer = app.http_rotate("POST", &[("force", "true")], None).await;
    // The lease is released after the answer, in the background.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let signed: Vec<_> = storage
        .requests()
        .into_iter()
        .filter(|r| r.signed)
        .collect();
    let lease_sas = stsbridge::azure::sas::ServiceSas::for_lease(
        testbed::storage::ACCOUNT,
        "stsbridge-leases",
        "https,http",
        chrono::Utc::now(),
    )
    .query(&secrecy::SecretString::from(
        testbed::storage::ACCOUNT_KEY.to_string(),
    ))
    .unwrap();
    let http = reqwest::Client::new();
    let put = |path: &str| {
        http.put(format!(
            "{}/{path}?{}",
            storage.blob_endpoint(),
            secrecy::ExposeSecret::expose_secret(&lease_sas)
        ))
        .header("x-ms-blob-type", "BlockBlob")
        .header("x-ms-version", "2022-11-02")
        // Azurite answers 400 to a PUT without a length, and reqwest sends none for no body.
        .header("content-length", "0")
        .send()
    };
    let inside = put("stsbridge-leases/probe")
        .await
        .unwrap()
        .status()
        .as_u16();
    let elsewhere = put("azure-webjobs-hosts/probe")
        .await
        .unwrap()
        .status()
        .as_u16();
    let other_container = http
        .put(format!(
            "{}/another?restype=container&{}",
            storage.blob_endpoint(),
            secrecy::ExposeSecret::expose_secret(&lease_sas)
        ))
        .header("x-ms-version", "2022-11-02")
        .header("content-length", "0")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();

    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let creates: Vec<_> = signed
        .iter()
        .filter(|r| r.params.get("restype").map(String::as_str) == Some("container"))
        .collect();
    assert_eq!(
        creates.len(),
        1,
        "the container was created once: {signed:#?}"
    );
    for create in &creates {
        assert_eq!(create.method, "PUT");
        assert_eq!(create.path, "/devstoreaccount1/stsbridge-leases");
        let p = |k: &str| create.params.get(k).map(String::as_str);
        assert_eq!(
            (p("ss"), p("srt"), p("sp")),
            (Some("b"), Some("c"), Some("w")),
            "{create:?}"
        );
    }
    let blob_requests: Vec<_> = signed
        .iter()
        .filter(|r| !r.params.contains_key("restype"))
        .collect();
    assert!(
        blob_requests.len() >= 3,
        "acquire, create the blob, release: {signed:#?}"
    );
    for r in blob_requests {
        assert!(
            r.path.starts_with("/devstoreaccount1/stsbridge-leases/"),
            "{r:?}"
        );
        let p = |k: &str| r.params.get(k).map(String::as_str);
        assert_eq!(
            (p("sr"), p("sp")),
            (Some("c"), Some("rw")),
            "a service SAS: {r:?}"
        );
        assert!(
            p("srt").is_none() && p("ss").is_none(),
            "not an account SAS: {r:?}"
        );
    }
    assert_eq!(inside, 201, "the lease's SAS writes in its container");
    assert_eq!(elsewhere, 403, "and nowhere else");
    assert_eq!(other_container, 403, "nor creates containers");
    let text = app.all_text();
    assert_no_sas(&text);
    assert_no_secrets(&bed, &[&text]);
}

/// Issue #27, F3: a settings file that points identity-based storage at a host that is not
/// Azure Storage's is refused before any token is asked for (before, `rotate --settings` under
/// the operator's identity fetched a storage token and sent it there), and the file cannot
/// trust that host itself (`RotationLeaseStorageHost`).
#[tokio::test]
async fn a_settings_file_cannot_send_the_storage_token_to_another_host() {
    let bed = TestBed::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let hostile = dir.path().join("hostile.settings.json");
    let trusting = dir.path().join("trusting.settings.json");
    let values = |trust: bool| {
        let mut v = serde_json::json!({
            "AzureWebJobsStorage__blobServiceUri": "https://collector.example.com/",
            "AzureWebJobsStorage__credential": "managedidentity",
        });
        if trust {
            v["RotationLeaseStorageHost"] = "collector.example.com".into();
        }
        serde_json::json!({ "IsEncrypted": false, "Values": v }).to_string()
    };
    std::fs::write(&hostile, values(false)).unwrap();
    std::fs::write(&trusting, values(true)).unwrap();

    let refused = run_cli(
        &env(&bed),
        &["rotate", "--settings", hostile.to_str().unwrap()],
    )
    .await;
    let untrusted = run_cli(
        &env(&bed),
        &["rotate", "--settings", trusting.to_str().unwrap()],
    )
    .await;

    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("AzureWebJobsStorage__blobServiceUri")
            && refused.stderr.contains("collector.example.com"),
        "{}",
        refused.stderr
    );
    assert_eq!(untrusted.code, Some(1), "{untrusted:?}");
    assert!(
        untrusted.stderr.contains("RotationLeaseStorageHost"),
        "{}",
        untrusted.stderr
    );
    let storage_tokens = bed
        .issuer
        .requests()
        .into_iter()
        .filter(|r| r.resource == "https://storage.azure.com")
        .count();
    assert_eq!(storage_tokens, 0, "no storage token was asked for");
    assert!(bed.sts.minted().is_empty());
    assert_no_secrets(&bed, &[&refused.text(), &untrusted.text()]);
}
