//! What the benchmarks count round trips from (issue #32): every server a rotation talks to waits
//! the injected latency and logs each request with when it arrived and when its answer was
//! ready — the identity endpoint, Resource Manager and storage's relay included — and a deep
//! history, seeded in bulk, lists page by page.

use std::time::{Duration, Instant};

use testbed::keyvault::SecretVersion;
use testbed::TestBed;

const LATENCY: Duration = Duration::from_millis(60);

fn https_client(bed: &TestBed) -> reqwest::Client {
    let ca =
        reqwest::Certificate::from_pem(std::fs::read(&bed.ca_file).unwrap().as_slice()).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_identity_endpoint_and_resource_manager_wait_the_latency_and_log_their_timings() {
    let bed = TestBed::start().await.unwrap();
    bed.issuer.faults.set_latency(LATENCY);
    bed.arm.faults.set_latency(LATENCY);

    let t = Instant::now();
    let token = reqwest::Client::new()
        .get(format!(
            "{}?api-version=2019-08-01&resource=https://vault.test",
            bed.identity_endpoint()
        ))
        .header("x-identity-header", bed.identity_header())
        .send()
        .await
        .unwrap();
    let token_wall = t.elapsed();
    let t = Instant::now();
    let arm = https_client(&bed)
        .get(format!(
            "{}/subscriptions/s/resourceGroups/g/providers/Microsoft.Web/sites/a/config/configreferences/appsettings?api-version=2022-03-01",
            bed.arm_url()
        ))
        .send()
        .await
        .unwrap();
    let arm_wall = t.elapsed();

    assert_eq!(token.status(), 200);
    assert_eq!(arm.status(), 401, "no token: refused, after the latency");
    assert!(
        token_wall >= LATENCY && arm_wall >= LATENCY,
        "{token_wall:?} {arm_wall:?}"
    );
    let request = &bed.issuer.requests()[0];
    assert!(request.granted);
    assert!(request.finished - request.started >= LATENCY);
    let call = &bed.arm.calls()[0];
    assert!(call.finished - call.started >= LATENCY);
}

#[tokio::test]
async fn storage_s_relay_logs_when_each_request_arrived_and_its_answer_went_back() {
    let bed = TestBed::start_with(testbed::Options {
        storage: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let storage = bed.storage.as_ref().unwrap();
    storage.set_latency(LATENCY);
    let http = reqwest::Client::new();

    let t = Instant::now();
    for _ in 0..2 {
        // Unsigned: Azurite refuses it, which is an answer all the same.
        http.get(format!("{}?comp=list", storage.blob_endpoint()))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    let wall = t.elapsed();

    let requests: Vec<_> = storage
        .requests()
        .into_iter()
        .filter(|r| r.started >= t)
        .collect();
    assert_eq!(requests.len(), 2, "{requests:?}");
    for r in &requests {
        assert_eq!(r.params.get("comp").map(String::as_str), Some("list"));
        assert!(r.finished - r.started >= LATENCY, "{r:?}");
    }
    // One after the other on one connection: the second arrived after the first's answer.
    assert!(requests[1].started >= requests[0].finished);
    assert!(requests[1].finished - requests[0].started <= wall);
}

#[tokio::test]
async fn a_deep_history_seeded_in_bulk_lists_every_version_25_at_a_time() {
    let bed = TestBed::start().await.unwrap();
    let versions: Vec<SecretVersion> = (0..1010)
        .map(|i| SecretVersion {
            version: testbed::random_hex(16),
            value: format!("v{i}"),
            content_type: None,
            tags: None,
            enabled: i % 2 == 0,
            nbf: None,
            exp: Some(1_000_000 + i),
            created: 1_000_000 + i,
            updated: 1_000_000 + i,
            managed: false,
        })
        .collect();
    let ids: Vec<String> = versions.iter().map(|v| v.version.clone()).collect();
    bed.vault.seed_versions("Deep", versions);
    let (token, _) = bed.issuer.issue("https://vault.test");
    let http = https_client(&bed);

    let mut next = Some(format!(
        "{}/secrets/Deep/versions?api-version=7.5",
        bed.vault_url_loopback()
    ));
    let (mut listed, mut pages) = (vec![], 0);
    while let Some(url) = next.take() {
        let page: serde_json::Value = http
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        pages += 1;
        for item in page["value"].as_array().unwrap() {
            assert!(item.get("value").is_none(), "a listing carries no values");
            let id = item["id"].as_str().unwrap();
            listed.push(id.rsplit('/').next().unwrap().to_string());
        }
        next = page["nextLink"].as_str().map(str::to_string);
    }

    assert_eq!(pages, 41);
    assert_eq!(listed, ids, "every version once, in the seeded order");
    assert_eq!(bed.vault.latest("Deep").unwrap().value, "v1009");
}
