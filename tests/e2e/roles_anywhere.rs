//! Roles Anywhere (issues #30, #31): the rotator and the consumers get AWS credentials from IAM
//! Roles Anywhere with a certificate whose non-exportable key never leaves the (test bed's) Key
//! Vault — the vault signs each `CreateSession`, and the test bed's Roles Anywhere endpoint checks
//! it as AWS does (chain to the trust anchor, validity, serial, signature, profile, role trust)
//! before its STS front mints a set, which stsbridge then verifies like any other.

use std::collections::HashMap;

use testbed::rolesanywhere::ec2_trust_policy;
use testbed::{KeySpec, ProfileOptions, TestBed, TestCa, Validity};

use crate::endpoint::{client, Served};
use crate::support::{
    assert_challenge_checked, assert_no_secrets, assert_one_set, consumer_caller_arn, run_cli,
    settings, App, BIN,
};

/// The app settings of roles-anywhere mode: no AWS key of any kind.
fn ra_env(
    bed: &TestBed,
    role: &str,
    anchor: &str,
    profile: &str,
    certificate: &str,
) -> HashMap<String, String> {
    settings(
        bed,
        &[
            ("CredentialMode", "roles-anywhere"),
            ("RoleArn", role),
            ("RolesAnywhereTrustAnchorArn", anchor),
            ("RolesAnywhereProfileArn", profile),
            ("RolesAnywhereCertificate", certificate),
            // The profile's limit (Roles Anywhere's default, 3600 s).
            ("SessionDurationSeconds", "3600"),
        ],
        &["UsernameFromKeyVault", "PasswordFromKeyVault"],
    )
}

/// Nothing that could export a key was asked of the vault, and it signed.
fn assert_signed_in_the_vault(bed: &TestBed) {
    let log = bed.vault.log();
    assert!(
        log.iter().any(|r| r.op == "sign" && r.status == 200),
        "the vault signed"
    );
    assert!(
        log.iter().all(|r| r.op != "release"),
        "no key export was asked for"
    );
}

#[tokio::test]
async fn roles_anywhere_mode_publishes_a_verified_set_signed_by_a_key_that_never_leaves_the_vault()
{
    let bed = TestBed::start().await.unwrap();
    let ra = bed
        .setup_roles_anywhere("workload", KeySpec::EcP256)
        .await
        .unwrap();
    assert!(!ra.certificate.exportable);
    let env = ra_env(
        &bed,
        &ra.role_arn,
        &ra.trust_anchor_arn,
        &ra.profile_arn,
        "workload",
    );
    let app = App::spawn(env.clone()).await;

    let answer = app.http_rotate("POST", &[("force", "true")], None).await;

    assert_eq!(answer.status, 200, "{:?}\n{}", answer.body, app.output());
    assert_eq!(answer.body["mode"], "roles-anywhere");
    let caller = answer.body["callerArn"].as_str().unwrap().to_string();
    assert!(
        caller.contains(&format!(":assumed-role/{}/", ra.role_name)),
        "{caller}"
    );
    let calls = bed.rolesanywhere.calls();
    let session = calls.iter().find(|c| c.status == 201).expect("a session");
    assert_eq!(session.algorithm.as_deref(), Some("AWS4-X509-ECDSA-SHA256"));
    assert_eq!(
        session.serial.as_deref(),
        Some(ra.certificate.serial_decimal.as_str())
    );
    assert_eq!(session.duration_seconds, Some(3600));
    assert_one_set(&bed).await;
    assert_signed_in_the_vault(&bed);

    // The timer finds it fresh; a consumer's read of the bundle works, the challenge check on.
    let (status, envelope) = app.timer_rotate().await;
    assert_eq!(status, 200, "{envelope}");
    assert_eq!(consumer_caller_arn(&bed, &env).await, caller);
    assert_challenge_checked(&bed, &env);
    // Key material, signatures, minted secrets: none in any output.
    assert_no_secrets(&bed, &[&app.all_text()]);
}

#[tokio::test]
async fn rotate_and_check_work_with_an_rsa_key_and_check_describes_the_certificate() {
    let bed = TestBed::start().await.unwrap();
    let ra = bed
        .setup_roles_anywhere("builder", KeySpec::Rsa2048)
        .await
        .unwrap();
    let env = ra_env(
        &bed,
        &ra.role_arn,
        &ra.trust_anchor_arn,
        &ra.profile_arn,
        "builder",
    );

    let check = run_cli(&env, &["check"]).await;
    let minted_by_check = bed.sts.minted().len();
    let rotate = run_cli(&env, &["rotate"]).await;

    assert_eq!(check.code, Some(0), "{check:?}");
    for expected in [
        "mode:      roles-anywhere",
        &format!("serial  {}", ra.certificate.serial_decimal),
        "subject ",
        "issuer  ",
        "days left",
        "signs with RS256 (AWS4-X509-RSA-SHA256)",
        "chain   intermediates from the certificate's own secret (PEM): 1 sent",
        "Key Vault Crypto User",
    ] {
        assert!(
            check.stdout.contains(expected),
            "{expected}:\n{}",
            check.stdout
        );
    }
    assert_eq!(minted_by_check, 0, "check mints nothing");
    assert_eq!(rotate.code, Some(0), "{rotate:?}");
    assert_eq!(rotate.json()["rotated"], true);
    let session = bed
        .rolesanywhere
        .calls()
        .into_iter()
        .find(|c| c.status == 201)
        .unwrap();
    assert_eq!(session.algorithm.as_deref(), Some("AWS4-X509-RSA-SHA256"));
    assert_one_set(&bed).await;
    assert_signed_in_the_vault(&bed);
    assert_no_secrets(&bed, &[&check.text(), &rotate.text()]);
}

/// AWS's refusals, each reached through the real signing path: the test bed refuses as AWS
/// would, stsbridge names AWS's error and says what to fix, and publishes nothing.
#[tokio::test]
async fn what_roles_anywhere_refuses_is_reported_by_name_with_a_hint_and_nothing_is_published() {
    let bed = TestBed::start().await.unwrap();
    let ra = bed
        .setup_roles_anywhere("workload", KeySpec::EcP256)
        .await
        .unwrap();
    let refused = |env: HashMap<String, String>| async move { run_cli(&env, &["rotate"]).await };
    let mut texts = vec![];
    let mut expect = |out: crate::support::CliOutput, message: &str, hint: &str| {
        assert_eq!(out.code, Some(1), "{out:?}");
        let error = &out.json()["error"];
        assert_eq!(error["code"], "AccessDeniedException", "{error}");
        assert!(
            error["message"].as_str().unwrap().contains(message),
            "{error}"
        );
        assert!(error["hint"].as_str().unwrap().contains(hint), "{error}");
        texts.push(out.text());
    };

    // A signature that is not the certificate's key's.
    bed.vault.set_tamper_signatures(true);
    let out = refused(ra_env(
        &bed,
        &ra.role_arn,
        &ra.trust_anchor_arn,
        &ra.profile_arn,
        "workload",
    ))
    .await;
    expect(out, "Invalid signature", "could not verify the signature");
    bed.vault.set_tamper_signatures(false);

    // A certificate from a CA the trust anchor does not hold.
    let stranger_ca = TestCa::root("Some Other CA").unwrap();
    bed.vault
        .create_certificate(
            "stranger",
            &stranger_ca,
            KeySpec::EcP256,
            false,
            Validity::days(30),
        )
        .unwrap();
    let out = refused(ra_env(
        &bed,
        &ra.role_arn,
        &ra.trust_anchor_arn,
        &ra.profile_arn,
        "stranger",
    ))
    .await;
    expect(
        out,
        "Untrusted Signing Certificate",
        "does not chain to a CA of the trust anchor",
    );

    // An expired certificate (its key's own expiry lifted, so that the vault signs and AWS judges).
    bed.vault
        .create_certificate(
            "expired",
            &bed.rolesanywhere.intermediate_ca(),
            KeySpec::EcP256,
            false,
            Validity::expired(),
        )
        .unwrap();
    bed.vault
        .set_key_attributes("expired", None, None, None, Some(None));
    let out = refused(ra_env(
        &bed,
        &ra.role_arn,
        &ra.trust_anchor_arn,
        &ra.profile_arn,
        "expired",
    ))
    .await;
    expect(out, "", "outside its validity");

    // A role whose trust policy does not admit Roles Anywhere.
    let ec2_only = bed
        .rolesanywhere
        .create_role("ec2-only", &ec2_trust_policy(), None)
        .await
        .unwrap();
    let profile =
        bed.rolesanywhere
            .create_profile("ec2-only", &[&ec2_only], ProfileOptions::default());
    let out = refused(ra_env(
        &bed,
        &ec2_only,
        &ra.trust_anchor_arn,
        &profile.arn,
        "workload",
    ))
    .await;
    expect(
        out,
        "Unable to assume role",
        "trust policy must allow rolesanywhere.amazonaws.com",
    );

    assert!(
        bed.vault.latest("AwsSessionCredentials").is_none(),
        "nothing published"
    );
    assert!(bed.sts.minted().is_empty());
    assert_signed_in_the_vault(&bed);
    assert_no_secrets(&bed, &texts.iter().map(String::as_str).collect::<Vec<_>>());
}

/// `--roles-anywhere` flags for the set-up certificate (a name in the bed's vault).
fn consumer_flags(ra: &testbed::RolesAnywhereSetup) -> Vec<String> {
    [
        "--roles-anywhere",
        "--role-arn",
        &ra.role_arn,
        "--trust-anchor-arn",
        &ra.trust_anchor_arn,
        "--profile-arn",
        &ra.profile_arn,
        "--certificate",
        &ra.certificate.name,
    ]
    .map(String::from)
    .to_vec()
}

/// The settings a consumer's machine has: its own Azure identity, the vault, the endpoints; no
/// AWS key, no published bundle needed.
fn consumer_env(bed: &TestBed) -> Vec<(String, String)> {
    settings(bed, &[], &["UsernameFromKeyVault", "PasswordFromKeyVault"])
        .into_iter()
        .collect()
}

#[tokio::test]
async fn the_aws_cli_and_boto3_get_credentials_through_credential_process_roles_anywhere() {
    let bed = TestBed::start().await.unwrap();
    let ra = bed
        .setup_roles_anywhere("laptop", KeySpec::EcP256)
        .await
        .unwrap();
    let command = format!(
        "{BIN} credential-process --cache {}",
        consumer_flags(&ra).join(" ")
    );
    let script = format!(
        "printf '[profile ra]\\ncredential_process = {command}\\n' > \"$AWS_CONFIG_FILE\"\n\
         aws sts get-caller-identity --profile ra --output json\n\
         python -c \"import boto3; print(boto3.Session(profile_name='ra').client('sts').get_caller_identity()['Arn'])\"\n\
         aws sts get-caller-identity --profile ra --query Arn --output text"
    );

    let (code, stdout, stderr) = client(&bed, &consumer_env(&bed), &script).await;

    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let assumed = format!(":assumed-role/{}/", ra.role_name);
    assert_eq!(stdout.matches(&assumed).count(), 3, "{stdout}");
    // The third call came from the cache: one session for the three.
    let sessions = bed
        .rolesanywhere
        .calls()
        .iter()
        .filter(|c| c.status == 201)
        .count();
    assert!(sessions <= 2, "{sessions} sessions");
    assert_signed_in_the_vault(&bed);
    assert_no_secrets(&bed, &[&stdout, &stderr]);
}

#[tokio::test]
async fn the_aws_cli_and_boto3_get_credentials_through_serve_credentials_roles_anywhere() {
    let bed = TestBed::start().await.unwrap();
    let ra = bed
        .setup_roles_anywhere("sidecar", KeySpec::Rsa2048)
        .await
        .unwrap();
    let env: HashMap<String, String> = consumer_env(&bed).into_iter().collect();
    let flags = consumer_flags(&ra);
    let served = Served::start(&env, &flags.iter().map(String::as_str).collect::<Vec<_>>())
        .await
        .unwrap();

    let (code, stdout, stderr) = client(
        &bed,
        &served.client_env(),
        "aws sts get-caller-identity --query Arn --output text\n\
         python -c \"import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])\"",
    )
    .await;

    assert_eq!(code, 0, "{stdout}\n{stderr}\n{}", served.stderr());
    assert_eq!(
        stdout
            .matches(&format!(":assumed-role/{}/", ra.role_name))
            .count(),
        2,
        "{stdout}"
    );
    // One session serves both: the endpoint keeps the set until it must renew it.
    let sessions = bed
        .rolesanywhere
        .calls()
        .iter()
        .filter(|c| c.status == 201)
        .count();
    assert_eq!(sessions, 1);
    assert!(
        served.stderr().contains("through Roles Anywhere"),
        "{}",
        served.stderr()
    );
    assert_signed_in_the_vault(&bed);
    assert_no_secrets(&bed, &[&stdout, &stderr, &served.stderr()]);
}
