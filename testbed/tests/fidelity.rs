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

// --- Key Vault keys and certificates, and IAM Roles Anywhere (issue #30) ---

mod keys_and_roles_anywhere {
    use std::sync::Arc;

    use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
    use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
    use azure_core::http::{ClientOptions, Transport};
    use azure_security_keyvault_certificates::{CertificateClient, CertificateClientOptions};
    use azure_security_keyvault_keys::models::{
        CreateKeyParameters, CurveName, KeyAttributes, KeyClientGetKeyOptions,
        KeyClientSignOptions, KeyOperation, KeyType, ReleaseParameters, SignParameters,
        SignatureAlgorithm,
    };
    use azure_security_keyvault_keys::{KeyClient, KeyClientOptions, ResourceExt, ResourceId};
    use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
    use sha2::{Digest, Sha256};
    use testbed::x509::{self, Certificate, PublicKey};
    use testbed::{KeySpec, TestBed, Validity};

    /// A token credential backed by the bed's issuer: the vault clients' tokens without the
    /// managed-identity environment variables (which parallel tests would race on).
    #[derive(Debug)]
    struct BedCredential(Arc<testbed::identity::TokenIssuer>);

    #[async_trait::async_trait]
    impl TokenCredential for BedCredential {
        async fn get_token(
            &self,
            scopes: &[&str],
            _: Option<TokenRequestOptions<'_>>,
        ) -> azure_core::Result<AccessToken> {
            let audience = scopes
                .first()
                .map_or("", |s| s.trim_end_matches("/.default"));
            let (token, exp) = self.0.issue(audience);
            Ok(AccessToken::new(
                token,
                time::OffsetDateTime::from_unix_timestamp(exp).unwrap(),
            ))
        }
    }

    /// The vault by name through the bed's proxy, the challenge check on (as the app runs).
    fn client_options(bed: &TestBed) -> ClientOptions {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&bed.ca_file).unwrap()).unwrap();
        let http = reqwest::Client::builder()
            .tls_certs_only([ca])
            .proxy(reqwest::Proxy::https(bed.proxy.url()).unwrap())
            .build()
            .unwrap();
        ClientOptions {
            transport: Some(Transport::new(Arc::new(http))),
            ..Default::default()
        }
    }

    fn credential(bed: &TestBed) -> Arc<BedCredential> {
        Arc::new(BedCredential(bed.issuer.clone()))
    }

    fn key_client(bed: &TestBed) -> KeyClient {
        let options = KeyClientOptions {
            client_options: client_options(bed),
            verify_challenge_resource: Some(true),
            ..Default::default()
        };
        KeyClient::new(&bed.vault_url(), credential(bed), Some(options)).unwrap()
    }

    fn certificate_client(bed: &TestBed) -> CertificateClient {
        let options = CertificateClientOptions {
            client_options: client_options(bed),
            verify_challenge_resource: Some(true),
            ..Default::default()
        };
        CertificateClient::new(&bed.vault_url(), credential(bed), Some(options)).unwrap()
    }

    fn secret_client(bed: &TestBed) -> SecretClient {
        let options = SecretClientOptions {
            client_options: client_options(bed),
            verify_challenge_resource: Some(true),
            ..Default::default()
        };
        SecretClient::new(&bed.vault_url(), credential(bed), Some(options)).unwrap()
    }

    /// Status, error code and message of a Key Vault error answer.
    fn kv_error(e: &azure_core::Error) -> (u16, String, String) {
        match e.kind() {
            azure_core::error::ErrorKind::HttpResponse {
                status,
                error_code,
                raw_response,
            } => (
                u16::from(*status),
                error_code.clone().unwrap_or_default(),
                raw_response
                    .as_ref()
                    .map(|r| String::from_utf8_lossy(r.body().as_ref()).into_owned())
                    .unwrap_or_default(),
            ),
            other => panic!("not an HTTP error: {other:?}"),
        }
    }

    async fn sign(
        client: &KeyClient,
        name: &str,
        version: Option<&str>,
        algorithm: SignatureAlgorithm,
        digest: &[u8],
    ) -> azure_core::Result<(String, Vec<u8>)> {
        let params = SignParameters {
            algorithm: Some(algorithm),
            value: Some(digest.to_vec()),
        };
        let options = KeyClientSignOptions {
            key_version: version.map(str::to_string),
            ..Default::default()
        };
        let result = client
            .sign(name, params.try_into()?, Some(options))
            .await?
            .into_model()?;
        Ok((
            result.kid.unwrap_or_default(),
            result.result.unwrap_or_default(),
        ))
    }

    const MESSAGE: &[u8] = b"AWS4-X509-ECDSA-SHA256\n20261206T083900Z\n20261206/us-east-1/rolesanywhere/aws4_request\n00";

    #[tokio::test]
    async fn the_azure_sdk_for_rust_makes_a_non_exportable_key_that_signs_in_the_vault() {
        let bed = TestBed::start().await.unwrap();
        let client = key_client(&bed);
        let digest = Sha256::digest(MESSAGE);

        // P-256, non-exportable: only the public part comes back.
        let attributes = KeyAttributes {
            exportable: Some(false),
            ..Default::default()
        };
        let params = CreateKeyParameters {
            kty: Some(KeyType::Ec),
            curve: Some(CurveName::P256),
            key_ops: Some(vec![KeyOperation::Sign, KeyOperation::Verify]),
            key_attributes: Some(attributes),
            ..Default::default()
        };
        let created = client
            .create_key("ec-key", params.try_into().unwrap(), None)
            .await
            .unwrap()
            .into_model()
            .unwrap();
        let version = created.resource_id().unwrap().version.unwrap();
        assert_eq!(created.attributes.as_ref().unwrap().exportable, Some(false));
        let jwk = created.key.unwrap();
        assert!(jwk.d.is_none());
        let fetched = client
            .get_key("ec-key", None)
            .await
            .unwrap()
            .into_model()
            .unwrap()
            .key
            .unwrap();
        assert_eq!(fetched.crv, Some(CurveName::P256));
        let point = [vec![4u8], fetched.x.unwrap(), fetched.y.unwrap()].concat();
        assert_eq!(point.len(), 65);

        // ES256 without a version (`/keys/ec-key//sign`): raw r||s, verified independently.
        let (kid, sig) = sign(&client, "ec-key", None, SignatureAlgorithm::Es256, &digest)
            .await
            .unwrap();
        assert!(kid.ends_with(&format!("/keys/ec-key/{version}")), "{kid}");
        assert_eq!(sig.len(), 64);
        UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &point)
            .verify(MESSAGE, &sig)
            .expect("raw r||s over the digest");
        let der = x509::ecdsa_fixed_to_der(&sig).unwrap();
        UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &point)
            .verify(MESSAGE, &der)
            .expect("the DER form AWS takes");
        assert!(bed
            .vault
            .log()
            .iter()
            .any(|r| r.op == "sign" && r.path == "/keys/ec-key//sign" && r.status == 200));

        // RSA 2048, RS256 with an explicit version: deterministic PKCS#1 v1.5.
        let params = CreateKeyParameters {
            kty: Some(KeyType::Rsa),
            key_size: Some(2048),
            ..Default::default()
        };
        let rsa = client
            .create_key("rsa-key", params.try_into().unwrap(), None)
            .await
            .unwrap()
            .into_model()
            .unwrap();
        let rsa_version = rsa.resource_id().unwrap().version.unwrap();
        let jwk = rsa.key.unwrap();
        let (n, e) = (jwk.n.unwrap(), jwk.e.unwrap());
        assert_eq!((n.len(), e.as_slice()), (256, &[1u8, 0, 1][..]));
        let (_, first) = sign(
            &client,
            "rsa-key",
            Some(&rsa_version),
            SignatureAlgorithm::Rs256,
            &digest,
        )
        .await
        .unwrap();
        let (_, second) = sign(&client, "rsa-key", None, SignatureAlgorithm::Rs256, &digest)
            .await
            .unwrap();
        assert!(first == second, "PKCS#1 v1.5 is deterministic");
        RsaPublicKeyComponents { n: &n, e: &e }
            .verify(&signature::RSA_PKCS1_2048_8192_SHA256, MESSAGE, &first)
            .expect("RS256 over the digest");

        // What Key Vault refuses.
        let e = sign(&client, "rsa-key", None, SignatureAlgorithm::Es256, &digest)
            .await
            .unwrap_err();
        assert_eq!(kv_error(&e).0, 400, "{e:?}");
        let e = sign(
            &client,
            "ec-key",
            None,
            SignatureAlgorithm::Es256,
            &digest[..20],
        )
        .await
        .unwrap_err();
        assert_eq!(kv_error(&e).0, 400, "{e:?}");
        let release = ReleaseParameters {
            target_attestation_token: Some("an-attestation-token".into()),
            ..Default::default()
        };
        let e = client
            .release("ec-key", release.try_into().unwrap(), None)
            .await
            .unwrap_err();
        let (status, code, body) = kv_error(&e);
        assert_eq!((status, code.as_str()), (400, "BadParameter"));
        assert!(body.contains("not exportable"), "{body}");
        let exportable = CreateKeyParameters {
            kty: Some(KeyType::RsaHsm),
            key_attributes: Some(KeyAttributes {
                exportable: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        };
        let e = client
            .create_key("exportable", exportable.try_into().unwrap(), None)
            .await
            .unwrap_err();
        assert!(kv_error(&e).2.contains("AKV.SKR.1004"), "{e:?}");
        bed.vault
            .set_key_attributes("ec-key", None, Some(false), None, None);
        let e = sign(&client, "ec-key", None, SignatureAlgorithm::Es256, &digest)
            .await
            .unwrap_err();
        assert_eq!(kv_error(&e).0, 403, "a disabled key does not sign");
        let e = client.get_key("no-such-key", None).await.unwrap_err();
        assert_eq!(kv_error(&e).1, "KeyNotFound");

        // Every signature made is in the secret search, in the forms a client could print.
        let secrets = bed.secret_values();
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert!(secrets.contains(&hex(&sig)) && secrets.contains(&hex(&der)));
        assert!(secrets.contains(&hex(&first)));
        assert!(
            bed.vault.log().iter().any(|r| r.status == 401),
            "met the challenge"
        );
    }

    #[tokio::test]
    async fn the_azure_sdk_for_rust_reads_a_vault_certificate_its_key_and_its_chain() {
        let bed = TestBed::start().await.unwrap();
        let issuing = bed.rolesanywhere.intermediate_ca();
        let made = bed
            .vault
            .create_certificate(
                "ra-cert",
                &issuing,
                KeySpec::Rsa2048,
                false,
                Validity::days(30),
            )
            .unwrap();

        let cert = certificate_client(&bed)
            .get_certificate("ra-cert", None)
            .await
            .unwrap()
            .into_model()
            .unwrap();
        let leaf_der = cert.cer.clone().unwrap();
        assert_eq!(leaf_der, made.der, "cer is the leaf only");
        let leaf = Certificate::from_der(&leaf_der).unwrap();
        assert_eq!(leaf.subject_cn(), Some("ra-cert"));
        assert_eq!(leaf.serial_decimal(), made.serial_decimal);
        assert_eq!(
            cert.x509_thumbprint.clone().unwrap(),
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &leaf_der)
                .as_ref()
        );
        let policy = cert.policy.clone().unwrap();
        assert_eq!(policy.key_properties.unwrap().exportable, Some(false));
        let attributes = cert.attributes.clone().unwrap();
        assert_eq!(
            attributes.expires.unwrap().unix_timestamp(),
            made.not_after.timestamp()
        );
        let kid: ResourceId = cert.kid.clone().unwrap().parse().unwrap();
        assert_eq!(kid.name, "ra-cert");
        assert_eq!(kid.version.as_deref(), Some(made.version.as_str()));

        // The certificate's key signs; the leaf's public key verifies.
        let keys = key_client(&bed);
        let key = keys
            .get_key(
                &kid.name,
                Some(KeyClientGetKeyOptions {
                    key_version: kid.version.clone(),
                    ..Default::default()
                }),
            )
            .await
            .unwrap()
            .into_model()
            .unwrap();
        assert_eq!(key.managed, Some(true));
        let digest = Sha256::digest(MESSAGE);
        let (_, sig) = sign(
            &keys,
            &kid.name,
            kid.version.as_deref(),
            SignatureAlgorithm::Rs256,
            &digest,
        )
        .await
        .unwrap();
        assert!(x509::verify_with(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            &leaf.public_key,
            MESSAGE,
            &sig
        ));
        assert!(matches!(leaf.public_key, PublicKey::Rsa { bits: 2048, .. }));

        // The secret holds the chain, leaf first, and no private key.
        let secrets = secret_client(&bed);
        let secret = secrets
            .get_secret("ra-cert", None)
            .await
            .unwrap()
            .into_model()
            .unwrap();
        assert_eq!(
            secret.content_type.as_deref(),
            Some("application/x-pem-file")
        );
        assert_eq!(secret.managed, Some(true));
        assert_eq!(secret.kid, cert.kid);
        let value = secret.value.unwrap();
        assert!(!value.contains("PRIVATE KEY"));
        let chain = Certificate::from_pem_bundle(&value).unwrap();
        assert_eq!(chain.len(), 3);
        assert_eq!(chain[0].der, leaf_der);
        assert_eq!(chain[1].der, issuing.der);
        assert!(
            x509::verify_chain(&chain[0], &chain[1..2], &chain[2..], chrono::Utc::now()).is_ok()
        );

        // Renewal: a new version with a new key pair; the old version stays readable.
        let renewed = bed
            .vault
            .create_certificate(
                "ra-cert",
                &issuing,
                KeySpec::Rsa2048,
                false,
                Validity::days(30),
            )
            .unwrap();
        assert_ne!(renewed.version, made.version);
        let latest = certificate_client(&bed)
            .get_certificate("ra-cert", None)
            .await
            .unwrap()
            .into_model()
            .unwrap();
        let latest_leaf = Certificate::from_der(&latest.cer.unwrap()).unwrap();
        assert_ne!(latest_leaf.public_key, leaf.public_key);
        assert_eq!(
            bed.vault
                .key("ra-cert", Some(&made.version))
                .unwrap()
                .public_key,
            match &leaf.public_key {
                PublicKey::Rsa { der, .. } => der.clone(),
                _ => unreachable!(),
            }
        );

        // An exportable certificate's secret carries the private key first (as Key Vault's).
        bed.vault
            .create_certificate(
                "exportable",
                &issuing,
                KeySpec::EcP256,
                true,
                Validity::days(30),
            )
            .unwrap();
        let value = secrets
            .get_secret("exportable", None)
            .await
            .unwrap()
            .into_model()
            .unwrap()
            .value
            .unwrap();
        assert!(value.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(
            bed.secret_values().contains(&value),
            "searched for in output"
        );
        let e = certificate_client(&bed)
            .get_certificate("no-such-cert", None)
            .await
            .unwrap_err();
        assert_eq!(kv_error(&e).1, "CertificateNotFound");
    }

    /// What stsbridge's roles-anywhere mode does, done here with the vault's `sign`: the bed's
    /// endpoint accepts it and the STS front accepts the credentials; the raw ECDSA form and a
    /// request without the intermediate are refused as AWS would.
    #[tokio::test]
    async fn a_create_session_signed_in_the_vault_gets_credentials_the_sts_front_accepts() {
        let bed = TestBed::start().await.unwrap();
        let setup = bed
            .setup_roles_anywhere("rotator", KeySpec::EcP256)
            .await
            .unwrap();
        let keys = key_client(&bed);
        let secret = secret_client(&bed)
            .get_secret("rotator", None)
            .await
            .unwrap()
            .into_model()
            .unwrap()
            .value
            .unwrap();
        let chain = Certificate::from_pem_bundle(&secret).unwrap();
        let (leaf, intermediates) = (&chain[0], &chain[1..chain.len() - 1]);

        let call = |raw: bool, with_chain: bool| {
            let keys = &keys;
            let setup = &setup;
            let bed = &bed;
            async move {
                let url = bed.rolesanywhere_url();
                let host = url.trim_start_matches("https://").to_string();
                let body = serde_json::json!({
                    "durationSeconds": 900,
                    "profileArn": setup.profile_arn,
                    "roleArn": setup.role_arn,
                    "trustAnchorArn": setup.trust_anchor_arn,
                })
                .to_string();
                let b64 = |d: &[u8]| {
                    use base64::Engine;
                    base64::engine::general_purpose::STANDARD.encode(d)
                };
                let now = chrono::Utc::now();
                let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
                let mut headers = axum::http::HeaderMap::new();
                let mut set = |k: &'static str, v: String| {
                    headers.insert(k, v.parse().unwrap());
                };
                set("content-type", "application/json".into());
                set("host", host);
                set("x-amz-date", amz_date.clone());
                set("x-amz-x509", b64(&leaf.der));
                if with_chain {
                    let list: Vec<String> = intermediates.iter().map(|c| b64(&c.der)).collect();
                    set("x-amz-x509-chain", list.join(","));
                }
                let mut signed: Vec<String> =
                    headers.keys().map(|k| k.as_str().to_string()).collect();
                signed.sort();
                let request = testbed::sigv4::Request {
                    method: "POST",
                    path: "/sessions",
                    query: "",
                    headers: &headers,
                    body: body.as_bytes(),
                };
                let canonical = testbed::sigv4::canonical_request(&request, &signed).unwrap();
                let scope = format!("{}/us-east-1/rolesanywhere/aws4_request", &amz_date[..8]);
                let to_sign = testbed::sigv4::string_to_sign_for(
                    testbed::rolesanywhere::ALGORITHM_ECDSA,
                    &amz_date,
                    &scope,
                    &canonical,
                );
                let (_, sig) = sign(
                    keys,
                    "rotator",
                    None,
                    SignatureAlgorithm::Es256,
                    &Sha256::digest(to_sign.as_bytes()),
                )
                .await
                .unwrap();
                let sig = if raw {
                    sig
                } else {
                    x509::ecdsa_fixed_to_der(&sig).unwrap()
                };
                let hex: String = sig.iter().map(|b| format!("{b:02x}")).collect();
                let authorization = format!(
                    "{} Credential={}/{scope}, SignedHeaders={}, Signature={hex}",
                    testbed::rolesanywhere::ALGORITHM_ECDSA,
                    leaf.serial_decimal(),
                    signed.join(";")
                );
                headers.insert("authorization", authorization.parse().unwrap());
                headers.remove("host");
                let ca =
                    reqwest::Certificate::from_pem(&std::fs::read(&bed.ca_file).unwrap()).unwrap();
                let client = reqwest::Client::builder()
                    .tls_certs_only([ca])
                    .build()
                    .unwrap();
                let response = client
                    .post(format!("{url}/sessions"))
                    .headers(headers)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                let error = response
                    .headers()
                    .get("x-amzn-errortype")
                    .map(|v| v.to_str().unwrap().to_string());
                let json: serde_json::Value = response.json().await.unwrap();
                (status, error, json)
            }
        };

        let (status, _, answer) = call(false, true).await;
        assert_eq!(status, 201, "{}", answer["message"]);
        let set = &answer["credentialSet"][0];
        let creds = &set["credentials"];
        let arn = bed
            .caller_arn(
                creds["accessKeyId"].as_str().unwrap(),
                creds["secretAccessKey"].as_str().unwrap(),
                creds["sessionToken"].as_str(),
            )
            .await
            .unwrap();
        let session = setup.certificate.serial_hex.clone();
        assert_eq!(
            arn,
            format!("arn:aws:sts::123456789012:assumed-role/rotator/{session}")
        );
        assert_eq!(set["assumedRoleUser"]["arn"], arn);
        assert_eq!(set["roleArn"], setup.role_arn);
        assert_eq!(set["sourceIdentity"], "CN=rotator");
        assert!(creds["expiration"].as_str().unwrap().ends_with('Z'));

        let (status, error, answer) = call(true, true).await;
        assert_eq!(
            (status, error.as_deref()),
            (403, Some("AccessDeniedException"))
        );
        assert_eq!(
            answer["message"], "Invalid signature",
            "raw r||s is not DER"
        );
        let (status, _, answer) = call(false, false).await;
        assert_eq!(status, 403);
        assert_eq!(answer["message"], "Untrusted Signing Certificate");

        let calls = bed.rolesanywhere.calls();
        assert_eq!(calls.len(), 3);
        assert_eq!(
            calls[0].access_key_id.as_deref(),
            creds["accessKeyId"].as_str()
        );
        let secrets = bed.secret_values();
        assert!(secrets
            .iter()
            .any(|s| s == creds["secretAccessKey"].as_str().unwrap()));
        assert!(secrets
            .iter()
            .any(|s| s == creds["sessionToken"].as_str().unwrap()));
    }
}

mod python_keys_and_roles_anywhere {
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};

    use testbed::rolesanywhere::{ec2_trust_policy, roles_anywhere_trust_policy};
    use testbed::{KeySpec, ProfileOptions, TestBed, TestCa, Validity};

    fn python() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python")
    }

    fn script(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests")
            .join(name)
    }

    /// Fails when any secret the bed knows (or one of `extra`) appears in `output`.
    fn assert_no_secrets(bed: &TestBed, output: &str, extra: &[String]) {
        for secret in bed.secret_values().iter().chain(extra) {
            assert!(
                !output.contains(secret.as_str()),
                "a secret value ({} characters) is in the output",
                secret.len()
            );
        }
    }

    #[tokio::test]
    async fn the_azure_sdk_for_python_s_keys_client_signs_in_the_vault_with_the_check_on() {
        let bed = TestBed::start().await.unwrap();
        bed.vault
            .create_certificate(
                "py-cert",
                &bed.rolesanywhere.intermediate_ca(),
                KeySpec::EcP256,
                false,
                Validity::days(30),
            )
            .unwrap();
        let ca = bed.ca_file.display().to_string();
        let out = tokio::process::Command::new(python())
            .arg(script("python_keys_fidelity.py"))
            .env("VAULT_URL", bed.vault_url())
            .env("CERT_NAME", "py-cert")
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
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.trim_end().ends_with("ok"),
            "{stdout}\n{stderr}"
        );
        let ops: Vec<&str> = bed.vault.log().iter().map(|r| r.op).collect::<Vec<_>>();
        for op in ["create_key", "get_key", "sign", "release"] {
            assert!(ops.contains(&op), "{op} not called: {ops:?}");
        }
        assert!(
            bed.vault.log().iter().any(|r| r.status == 401),
            "met the challenge"
        );
        assert_no_secrets(&bed, &format!("{stdout}{stderr}"), &[]);
    }

    /// One case for the Python client (see python_rolesanywhere_fidelity.py).
    struct Case {
        name: &'static str,
        key: PathBuf,
        certificate: PathBuf,
        chain: Option<PathBuf>,
        profile: String,
        role: String,
        duration: u32,
        tamper: bool,
    }

    fn write_leaf(
        dir: &Path,
        name: &str,
        ca: &TestCa,
        key: KeySpec,
        validity: Validity,
    ) -> (PathBuf, PathBuf, String) {
        let issued = ca.issue(name, key, validity).unwrap();
        let (cert, key_file) = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}-key.pem")),
        );
        std::fs::write(&cert, &issued.cert_pem).unwrap();
        std::fs::write(&key_file, &issued.key_pem).unwrap();
        (cert, key_file, issued.key_pem)
    }

    #[tokio::test]
    async fn aws_s_python_roles_anywhere_client_is_accepted_and_refused_as_aws_would() {
        let bed = TestBed::start().await.unwrap();
        let ra = &bed.rolesanywhere;
        let dir = bed.dir().join("rolesanywhere");
        std::fs::create_dir_all(&dir).unwrap();
        let (root, issuing) = (ra.root_ca(), ra.intermediate_ca());
        let anchor = ra.create_trust_anchor("anchor", &[&root]);

        let trusted = bed.create_roles_anywhere_role("workload").await.unwrap();
        let condition =
            serde_json::json!({"StringLike": {"aws:PrincipalTag/x509Subject/CN": "py-*"}});
        let conditional = ra
            .create_role(
                "conditional",
                &roles_anywhere_trust_policy(Some(condition)),
                None,
            )
            .await
            .unwrap();
        let untrusting = ra
            .create_role("ec2-only", &ec2_trust_policy(), None)
            .await
            .unwrap();
        let roles = [trusted.as_str(), conditional.as_str(), untrusting.as_str()];
        let profile = ra.create_profile("profile", &roles, ProfileOptions::default());
        let short = ra.create_profile(
            "short",
            &roles,
            ProfileOptions {
                duration_seconds: 900,
                ..Default::default()
            },
        );
        let disabled = ra.create_profile("disabled", &roles, ProfileOptions::default());
        ra.set_profile_enabled(&disabled.arn, false);

        let chain = dir.join("chain.pem");
        std::fs::write(&chain, issuing.pem()).unwrap();
        let mut private_keys = vec![];
        let mut leaf = |name, ca: &TestCa, key, validity| {
            let (c, k, pem) = write_leaf(&dir, name, ca, key, validity);
            private_keys.push(pem);
            (c, k)
        };
        let (ec_cert, ec_key) = leaf("py-ec", &issuing, KeySpec::EcP256, Validity::days(1));
        let (rsa_cert, rsa_key) = leaf("py-rsa", &root, KeySpec::Rsa2048, Validity::days(1));
        let stranger = TestCa::root("stsbridge test bed Roles Anywhere root CA").unwrap();
        let (other_cert, other_key) = leaf("other", &stranger, KeySpec::EcP256, Validity::days(1));
        let (old_cert, old_key) = leaf("expired", &root, KeySpec::EcP256, Validity::expired());
        let (cn_cert, cn_key) = leaf("not-py", &root, KeySpec::EcP256, Validity::days(1));

        let case = |name,
                    (certificate, key): (&PathBuf, &PathBuf),
                    chain: Option<&PathBuf>,
                    profile: &str,
                    role: &str,
                    duration| Case {
            name,
            key: key.clone(),
            certificate: certificate.clone(),
            chain: chain.cloned(),
            profile: profile.to_string(),
            role: role.to_string(),
            duration,
            tamper: false,
        };
        let ec = (&ec_cert, &ec_key);
        let mut cases = vec![
            case(
                "ec-through-intermediate",
                ec,
                Some(&chain),
                &profile.arn,
                &trusted,
                900,
            ),
            case(
                "rsa-from-root",
                (&rsa_cert, &rsa_key),
                None,
                &profile.arn,
                &trusted,
                3600,
            ),
            case(
                "cn-condition-met",
                ec,
                Some(&chain),
                &profile.arn,
                &conditional,
                900,
            ),
            case(
                "tampered-signature",
                ec,
                Some(&chain),
                &profile.arn,
                &trusted,
                900,
            ),
            case(
                "intermediate-missing",
                ec,
                None,
                &profile.arn,
                &trusted,
                900,
            ),
            case(
                "other-ca",
                (&other_cert, &other_key),
                None,
                &profile.arn,
                &trusted,
                900,
            ),
            case(
                "expired",
                (&old_cert, &old_key),
                None,
                &profile.arn,
                &trusted,
                900,
            ),
            case(
                "role-does-not-trust-roles-anywhere",
                ec,
                Some(&chain),
                &profile.arn,
                &untrusting,
                900,
            ),
            case(
                "cn-condition-not-met",
                (&cn_cert, &cn_key),
                None,
                &profile.arn,
                &conditional,
                900,
            ),
            case(
                "profile-disabled",
                ec,
                Some(&chain),
                &disabled.arn,
                &trusted,
                900,
            ),
            case(
                "duration-above-profile",
                ec,
                Some(&chain),
                &short.arn,
                &trusted,
                3600,
            ),
        ];
        cases[3].tamper = true;
        let json: Vec<serde_json::Value> = cases
            .iter()
            .map(|c| {
                serde_json::json!({
                    "name": c.name,
                    "certificate": c.certificate,
                    "private_key": c.key,
                    "chain": c.chain,
                    "profile": c.profile,
                    "role": c.role,
                    "anchor": anchor.arn,
                    "duration": c.duration,
                    "tamper": c.tamper,
                })
            })
            .collect();

        let out = tokio::process::Command::new(python())
            .arg(script("python_rolesanywhere_fidelity.py"))
            .env_clear()
            .env("ENDPOINT", bed.rolesanywhere_endpoint())
            .env("CA_FILE", &bed.ca_file)
            .env("STS_URL", bed.sts_url())
            .env("REGION", "us-east-1")
            .env("CASES", serde_json::Value::from(json).to_string())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("HOME", bed.dir())
            .output()
            .await
            .expect("run the Roles Anywhere script (scripts/setup.sh installs .venv)");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.trim_end().ends_with("ok"),
            "{stdout}\n{stderr}"
        );
        let results: HashMap<String, serde_json::Value> = stdout
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (v["name"].as_str().unwrap().to_string(), v)
            })
            .collect();
        let arn = |role: &str, leaf: &PathBuf| {
            let pem = std::fs::read_to_string(leaf).unwrap();
            let cert = &testbed::x509::Certificate::from_pem_bundle(&pem).unwrap()[0];
            format!(
                "arn:aws:sts::123456789012:assumed-role/{role}/{}",
                cert.serial_hex()
            )
        };
        assert_eq!(
            results["ec-through-intermediate"]["arn"],
            arn("workload", &ec_cert)
        );
        assert_eq!(results["rsa-from-root"]["arn"], arn("workload", &rsa_cert));
        assert_eq!(
            results["cn-condition-met"]["arn"],
            arn("conditional", &ec_cert),
            "{}",
            results["cn-condition-met"]
        );
        let refused = |name: &str, status: u16, message: &str| {
            let r = &results[name];
            assert_eq!(
                (r["status"].as_u64(), r["message"].as_str()),
                (Some(status as u64), Some(message)),
                "{name}: {r}"
            );
        };
        refused("tampered-signature", 403, "Invalid signature");
        refused("intermediate-missing", 403, "Untrusted Signing Certificate");
        refused("other-ca", 403, "Untrusted Signing Certificate");
        refused("expired", 403, "Signing certificate is expired");
        let unable = |role: &str| format!("Unable to assume role for {role}.");
        refused(
            "role-does-not-trust-roles-anywhere",
            403,
            &unable(&untrusting),
        );
        refused("cn-condition-not-met", 403, &unable(&conditional));
        refused(
            "profile-disabled",
            403,
            &format!("Profile {} is disabled.", disabled.arn),
        );
        refused(
            "duration-above-profile",
            403,
            &format!("Unable to assume role for {trusted}. The requested DurationSeconds exceeds the DurationSeconds set for this profile."),
        );

        // What the client sent: AWS's JSON content type, the ARNs in the body.
        let calls = bed.rolesanywhere.calls();
        assert_eq!(calls.len(), cases.len());
        assert!(calls.iter().all(|c| c.content_type.as_deref()
            == Some("application/x-amz-json-1.0")
            && !c.arns_in_query));
        // The minted sets are the STS front's: GetCallerIdentity through the bed's signer too.
        let minted = bed.sts.minted();
        let first = calls.iter().find_map(|c| c.access_key_id.clone()).unwrap();
        let set = minted.iter().find(|m| m.access_key_id == first).unwrap();
        let caller = bed
            .caller_arn(
                &set.access_key_id,
                &set.secret_access_key,
                Some(&set.session_token),
            )
            .await
            .unwrap();
        assert_eq!(caller, arn("workload", &ec_cert));
        assert_no_secrets(&bed, &format!("{stdout}{stderr}"), &private_keys);
    }
}
