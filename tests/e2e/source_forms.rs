//! Every way the IAM user's key can be given; each must mint with exactly that key.

use testbed::{TestBed, SOURCE_KEY_ID_SECRET, SOURCE_SECRET_KEY_SECRET};

use crate::support::{assert_no_secrets, run_cli, settings, CliOutput};

async fn rotate_with(bed: &TestBed, set: &[(&str, &str)], unset: &[&str]) -> CliOutput {
    let out = run_cli(&settings(bed, set, unset), &["rotate", "--force"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.json()["rotated"], true);
    let mint = &bed.sts.calls_of("GetSessionToken")[0];
    assert_eq!(
        mint.access_key_id.as_deref(),
        Some(bed.source.access_key_id.as_str())
    );
    assert_no_secrets(bed, &[&out.text()]);
    out
}

#[tokio::test]
async fn platform_resolved_values_are_used_as_they_are() {
    let bed = TestBed::start().await.unwrap();
    let (id, secret) = (
        bed.source.access_key_id.clone(),
        bed.source.secret_access_key.clone(),
    );
    let out = rotate_with(
        &bed,
        &[
            ("UsernameFromKeyVault", &id),
            ("PasswordFromKeyVault", &secret),
        ],
        &[],
    )
    .await;
    assert!(!out.stderr.contains("did not resolve"));
    let source_reads = bed
        .vault
        .log()
        .iter()
        .filter(|r| r.name.as_deref() == Some(SOURCE_KEY_ID_SECRET))
        .count();
    assert_eq!(source_reads, 0);
}

#[tokio::test]
async fn unresolved_secret_uri_references_are_read_by_the_app_with_a_warning() {
    let bed = TestBed::start().await.unwrap();
    let v = bed.vault_url();
    let id = format!("@Microsoft.KeyVault(SecretUri={v}/secrets/{SOURCE_KEY_ID_SECRET}/)");
    let secret = format!("@Microsoft.KeyVault(SecretUri={v}/secrets/{SOURCE_SECRET_KEY_SECRET})");
    let out = rotate_with(
        &bed,
        &[
            ("UsernameFromKeyVault", &id),
            ("PasswordFromKeyVault", &secret),
        ],
        &[],
    )
    .await;
    assert!(
        out.stderr
            .contains("UsernameFromKeyVault: the platform did not resolve"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn unresolved_vault_name_references_are_read_by_the_app() {
    let bed = TestBed::start().await.unwrap();
    // `VaultName=kv` names the vault KeyVaultUrl points at (https://kv.vault.test:PORT).
    let version = bed.vault.versions(SOURCE_SECRET_KEY_SECRET)[0]
        .version
        .clone();
    let id = format!("@Microsoft.KeyVault(VaultName=kv;SecretName={SOURCE_KEY_ID_SECRET})");
    let secret = format!("@Microsoft.KeyVault(VaultName=kv;SecretName={SOURCE_SECRET_KEY_SECRET};SecretVersion={version})");
    rotate_with(
        &bed,
        &[("UsernameFromKeyVault", &id), ("PasswordFromKeyVault", &secret)],
        &[],
    )
    .await;
    assert!(bed.vault.latest("AwsSessionCredentials").is_some());
}

#[tokio::test]
async fn secret_uris_with_a_version_read_that_version() {
    let bed = TestBed::start().await.unwrap();
    let old = bed.vault.versions(SOURCE_KEY_ID_SECRET)[0].version.clone();
    // A newer version holds a key AWS does not know: the pinned one must be read.
    bed.vault
        .seed(SOURCE_KEY_ID_SECRET, "AKIAIOSFODNN7EXAMPLE", &[]);
    let id = format!("{}/secrets/{SOURCE_KEY_ID_SECRET}/{old}", bed.vault_url());
    rotate_with(&bed, &[("UsernameFromKeyVault", &id)], &[]).await;
}

#[tokio::test]
async fn plain_local_settings_work_without_the_key_vault_pair() {
    let bed = TestBed::start().await.unwrap();
    let (id, secret) = (
        bed.source.access_key_id.clone(),
        bed.source.secret_access_key.clone(),
    );
    let out = rotate_with(
        &bed,
        &[("PlainUsername", &id), ("PlainPassword", &secret)],
        &["UsernameFromKeyVault", "PasswordFromKeyVault"],
    )
    .await;
    assert!(out.stderr.contains("local debugging"));
}

#[tokio::test]
async fn rotate_reads_a_local_settings_file() {
    let bed = TestBed::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.settings.json");
    let values: serde_json::Map<String, serde_json::Value> = bed
        .env()
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    std::fs::write(
        &path,
        serde_json::json!({"IsEncrypted": false, "Values": values}).to_string(),
    )
    .unwrap();

    let out = run_cli(
        &Default::default(),
        &["rotate", "--settings", path.to_str().unwrap()],
    )
    .await;

    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.json()["rotated"], true);
    assert_no_secrets(&bed, &[&out.text()]);
}
