//! Proof of fidelity: the official Azure SDKs, unchanged, against the test bed.
//!
//! - Python (`azure-keyvault-secrets` + `azure-identity` from the project's `.venv`) with the
//!   challenge-resource check **on** (its default): the vault is reached as `kv.vault.test`,
//!   inside the challenge resource's domain, through the bed's proxy (`HTTPS_PROXY`, as a client
//!   behind a corporate proxy would);
//! - Rust (`azure_security_keyvault_secrets` 1.x) with the check **on** too, through the same
//!   proxy.

use std::collections::HashMap;
use std::sync::Arc;

use azure_core::http::{ClientOptions, Transport};
use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions};
use azure_security_keyvault_secrets::models::{
    SecretAttributes, SecretClientGetSecretOptions, SetSecretParameters,
};
use azure_security_keyvault_secrets::{ResourceExt, SecretClient, SecretClientOptions};
use futures::TryStreamExt;
use testbed::TestBed;

#[tokio::test]
async fn the_azure_sdk_for_python_works_against_the_test_bed_unchanged() {
    let bed = TestBed::start().await.unwrap();
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python_sdk_fidelity.py");
    let ca = bed.ca_file.display().to_string();

    let out = tokio::process::Command::new(python)
        .arg(script)
        .env("VAULT_URL", bed.vault_url())
        .envs(bed.proxy_env())
        .env("IDENTITY_ENDPOINT", bed.identity_endpoint())
        .env("IDENTITY_HEADER", bed.identity_header())
        .env("REQUESTS_CA_BUNDLE", &ca)
        .env("SSL_CERT_FILE", &ca)
        .env_remove("MSI_ENDPOINT")
        .output()
        .await
        .expect("run the Python SDK script (scripts/setup.sh installs .venv)");

    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let requests = bed.issuer.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.granted && r.resource == "https://vault.test"),
        "{requests:?}"
    );
    assert!(
        bed.vault.log().iter().any(|r| r.status == 401),
        "the client met the bearer challenge"
    );
}

fn rust_client(bed: &TestBed) -> SecretClient {
    let ca =
        reqwest::Certificate::from_pem(std::fs::read(&bed.ca_file).unwrap().as_slice()).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([ca])
        .proxy(reqwest::Proxy::https(bed.proxy.url()).unwrap())
        .build()
        .unwrap();
    let transport = Some(Transport::new(Arc::new(http.clone())));
    // The managed identity credential reads IDENTITY_ENDPOINT/IDENTITY_HEADER from the
    // environment; this test process sets them before any credential is made.
    // SAFETY: only this test (one per process that touches these variables) sets them.
    unsafe {
        std::env::set_var("IDENTITY_ENDPOINT", bed.identity_endpoint());
        std::env::set_var("IDENTITY_HEADER", bed.identity_header());
    }
    let credential = ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
        client_options: ClientOptions {
            transport: transport.clone(),
            ..Default::default()
        },
        ..Default::default()
    }))
    .unwrap();
    SecretClient::new(
        &bed.vault_url(),
        credential,
        Some(SecretClientOptions {
            client_options: ClientOptions {
                transport,
                ..Default::default()
            },
            verify_challenge_resource: Some(true),
            ..Default::default()
        }),
    )
    .unwrap()
}

#[tokio::test]
async fn the_azure_sdk_for_rust_works_with_the_challenge_check_on() {
    let bed = TestBed::start().await.unwrap();
    let client = rust_client(&bed);
    let expires = time::OffsetDateTime::from_unix_timestamp(
        time::OffsetDateTime::now_utc().unix_timestamp() + 7200,
    )
    .unwrap();

    let set = |value: &str| SetSecretParameters {
        value: Some(value.into()),
        content_type: Some("text/plain".into()),
        tags: Some(HashMap::from([("k".to_string(), "v".to_string())])),
        secret_attributes: Some(SecretAttributes {
            expires: Some(expires),
            ..Default::default()
        }),
    };
    let first = client
        .set_secret("rust-secret", set("one").try_into().unwrap(), None)
        .await
        .unwrap()
        .into_model()
        .unwrap();
    let first_version = first.resource_id().unwrap().version.unwrap();
    assert_eq!(first_version.len(), 32);
    assert!(first.id.as_deref().unwrap().starts_with(&bed.vault_url()));
    client
        .set_secret("rust-secret", set("two").try_into().unwrap(), None)
        .await
        .unwrap();

    let latest = client
        .get_secret("rust-secret", None)
        .await
        .unwrap()
        .into_model()
        .unwrap();
    assert_eq!(latest.value.as_deref(), Some("two"));
    assert_eq!(latest.attributes.unwrap().expires, Some(expires));
    let options = SecretClientGetSecretOptions {
        secret_version: Some(first_version.clone()),
        ..Default::default()
    };
    let pinned = client
        .get_secret("rust-secret", Some(options))
        .await
        .unwrap()
        .into_model()
        .unwrap();
    assert_eq!(pinned.value.as_deref(), Some("one"));
    assert_eq!(pinned.tags.unwrap()["k"], "v");

    for i in 0..30 {
        client
            .set_secret(
                "rust-secret",
                set(&format!("v{i}")).try_into().unwrap(),
                None,
            )
            .await
            .unwrap();
    }
    let versions: Vec<_> = client
        .list_secret_properties_versions("rust-secret", None)
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(versions.len(), 32, "paged past the 25-item page");

    let missing = client.get_secret("no-such-secret", None).await.unwrap_err();
    assert_eq!(missing.http_status().map(u16::from), Some(404));
    assert!(
        bed.vault.log().iter().any(|r| r.status == 401),
        "the client met the bearer challenge"
    );

    a_vault_outside_the_challenge_domain_is_refused(&bed).await;
}

/// With the check on, a vault reached outside the challenge resource's domain is refused.
async fn a_vault_outside_the_challenge_domain_is_refused(bed: &TestBed) {
    let ca =
        reqwest::Certificate::from_pem(std::fs::read(&bed.ca_file).unwrap().as_slice()).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .unwrap();
    let transport = Some(Transport::new(Arc::new(http)));
    let credential = ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
        client_options: ClientOptions {
            transport: transport.clone(),
            ..Default::default()
        },
        ..Default::default()
    }))
    .unwrap();
    let client = SecretClient::new(
        &bed.vault_url_loopback(),
        credential,
        Some(SecretClientOptions {
            client_options: ClientOptions {
                transport,
                ..Default::default()
            },
            ..Default::default()
        }),
    )
    .unwrap();

    let error = client.get_secret("anything", None).await.unwrap_err();

    let mut chain = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(s) = source {
        chain.push_str(&format!(": {s}"));
        source = s.source();
    }
    assert!(chain.contains("domain"), "{chain}");
}

/// botocore (the AWS CLI's SDK, from `.venv`) reads the IAM Identity Center fakes' answers and
/// errors as it reads the real services': the modelled exceptions, statuses and fields.
#[tokio::test]
async fn botocore_reads_the_identity_center_fakes_like_the_real_services() {
    let bed = TestBed::start().await.unwrap();
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python_sso_fidelity.py");

    let out = tokio::process::Command::new(python)
        .arg(script)
        .env_clear()
        .envs(bed.sso_env())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("HOME", bed.dir())
        .output()
        .await
        .expect("run the botocore script (scripts/setup.sh installs .venv)");

    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let operations: HashMap<String, usize> =
        bed.sso.calls().iter().fold(HashMap::new(), |mut m, c| {
            *m.entry(c.operation.clone()).or_default() += 1;
            m
        });
    assert_eq!(operations["RegisterClient"], 1);
    assert_eq!(operations["GetRoleCredentials"], 3);
}

/// botocore against the STS/IAM front: the right secret accepted, any other refused with AWS's
/// code and message, session credentials held to AWS's rules (`python_sts_fidelity.py`).
#[tokio::test]
async fn botocore_s_signatures_are_checked_by_the_sts_front_as_aws_checks_them() {
    let bed = TestBed::start().await.unwrap();
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python_sts_fidelity.py");
    let out = tokio::process::Command::new(python)
        .arg(script)
        .env_clear()
        .env("STS_URL", bed.sts_url())
        .env("KEY_ID", &bed.source.access_key_id)
        .env("SECRET", &bed.source.secret_access_key)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("HOME", bed.dir())
        .output()
        .await
        .expect("run the botocore script (scripts/setup.sh installs .venv)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let refused: Vec<String> = bed
        .sts
        .calls()
        .iter()
        .filter(|c| c.status == 403)
        .map(|c| c.action.clone())
        .collect();
    assert_eq!(refused.len(), 8, "{refused:?}");
}

fn sts_client(bed: &TestBed, key: &str, secret: &str, token: Option<&str>) -> aws_sdk_sts::Client {
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new("us-east-1"))
        .endpoint_url(bed.sts_url())
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            key,
            secret,
            token.map(str::to_string),
            None,
            "fidelity",
        ))
        .build();
    aws_sdk_sts::Client::from_conf(config)
}

fn iam_client(bed: &TestBed, key: &str, secret: &str, token: Option<&str>) -> aws_sdk_iam::Client {
    let config = aws_sdk_iam::Config::builder()
        .behavior_version(aws_sdk_iam::config::BehaviorVersion::latest())
        .region(aws_sdk_iam::config::Region::new("us-east-1"))
        .endpoint_url(bed.sts_url())
        .credentials_provider(aws_sdk_iam::config::Credentials::new(
            key,
            secret,
            token.map(str::to_string),
            None,
            "fidelity",
        ))
        .build();
    aws_sdk_iam::Client::from_conf(config)
}

fn code<E: aws_sdk_sts::error::ProvideErrorMetadata>(e: &E) -> String {
    e.code().unwrap_or("").to_string()
}

/// The AWS SDK for Rust (what stsbridge signs with) against the STS/IAM front: the same checks.
#[tokio::test]
async fn the_aws_sdk_for_rust_s_signatures_are_checked_by_the_sts_front_as_aws_checks_them() {
    let bed = TestBed::start().await.unwrap();
    let (id, secret) = (&bed.source.access_key_id, &bed.source.secret_access_key);
    let wrong: String = secret.chars().rev().collect();

    let who = sts_client(&bed, id, secret, None)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert!(who.arn().unwrap().ends_with(":user/stsbridge-minter"));
    iam_client(&bed, id, secret, None)
        .list_access_keys()
        .send()
        .await
        .unwrap();
    let e = sts_client(&bed, id, &wrong, None)
        .get_caller_identity()
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "SignatureDoesNotMatch", "{e:?}");
    let e = iam_client(&bed, id, &wrong, None)
        .list_access_keys()
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "SignatureDoesNotMatch", "{e:?}");
    let e = sts_client(&bed, &testbed::aws_key_id("AKIA"), secret, None)
        .get_caller_identity()
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidClientTokenId", "{e:?}");

    let set = sts_client(&bed, id, secret, None)
        .get_session_token()
        .duration_seconds(900)
        .send()
        .await
        .unwrap()
        .credentials
        .unwrap();
    let (sid, ssecret, stoken) = (
        set.access_key_id(),
        set.secret_access_key(),
        set.session_token(),
    );
    let session = sts_client(&bed, sid, ssecret, Some(stoken));
    assert_eq!(
        session.get_caller_identity().send().await.unwrap().arn(),
        who.arn()
    );
    let e = session.get_session_token().send().await.unwrap_err();
    assert_eq!(code(&e), "AccessDenied", "{e:?}");
    let e = iam_client(&bed, sid, ssecret, Some(stoken))
        .list_access_keys()
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidClientTokenId", "{e:?}");
    let e = sts_client(
        &bed,
        sid,
        &ssecret.chars().rev().collect::<String>(),
        Some(stoken),
    )
    .get_caller_identity()
    .send()
    .await
    .unwrap_err();
    assert_eq!(code(&e), "SignatureDoesNotMatch", "{e:?}");
}
