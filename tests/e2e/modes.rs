//! The credential modes: assume-role, and web-identity with an Entra ID token (no AWS keys).

use testbed::identity::claims_of;
use testbed::{Fault, Rule, TestBed};

use crate::support::{
    assert_challenge_checked, assert_no_secrets, consumer_caller_arn, run_cli, set_ids, settings, App,
};

const ROLE: &str = "arn:aws:iam::123456789012:role/stsbridge-reader";
const AUDIENCE: &str = "api://stsbridge-aws";

fn web_identity(
    bed: &TestBed,
    extra: &[(&str, &str)],
) -> std::collections::HashMap<String, String> {
    let mut set = vec![
        ("CredentialMode", "web-identity"),
        ("RoleArn", ROLE),
        ("WebIdentityAudience", AUDIENCE),
        ("SessionDurationSeconds", "3600"),
    ];
    set.extend_from_slice(extra);
    // No AWS key of any kind: not in settings, not in the environment.
    settings(bed, &set, &["UsernameFromKeyVault", "PasswordFromKeyVault"])
}

#[tokio::test]
async fn assume_role_mode_assumes_the_role_with_the_source_key() {
    let bed = TestBed::start().await.unwrap();
    let env = settings(
        &bed,
        &[
            ("CredentialMode", "assume-role"),
            ("RoleArn", ROLE),
            ("RoleSessionName", "stsbridge-test"),
            ("ExternalId", "ext-1234"),
            ("SessionTags", "team=platform,env=test"),
            ("SessionDurationSeconds", "3600"),
        ],
        &[],
    );
    let app = App::spawn(env.clone()).await;

    let answer = app.http_rotate("POST", &[], None).await;

    assert_eq!(answer.status, 200, "{answer:?}\n{}", app.output());
    let call = &bed.sts.calls_of("AssumeRole")[0];
    assert_eq!(
        call.access_key_id.as_deref(),
        Some(bed.source.access_key_id.as_str())
    );
    assert_eq!(call.params["RoleArn"], ROLE);
    assert_eq!(call.params["RoleSessionName"], "stsbridge-test");
    assert_eq!(call.params["ExternalId"], "ext-1234");
    assert_eq!(call.params["DurationSeconds"], "3600");
    assert_eq!(call.params["Tags.member.1.Key"], "team");
    let assumed = answer.body["assumedRoleArn"].as_str().unwrap();
    assert!(
        assumed.contains("assumed-role/stsbridge-reader/stsbridge-test"),
        "{assumed}"
    );
    assert_eq!(answer.body["callerArn"], assumed);
    let tags = bed
        .vault
        .latest("AwsSessionCredentials")
        .unwrap()
        .tags
        .unwrap();
    assert_eq!(tags["mode"], "assume-role");
    assert_eq!(tags["role-arn"], ROLE);
    let (status, _) = app.timer_rotate().await;
    assert_eq!(status, 200);
    // A consumer's read works with what was published, the challenge check on throughout.
    assert_eq!(consumer_caller_arn(&bed, &env).await, assumed);
    assert_challenge_checked(&bed, &env);
    assert_no_secrets(&bed, &[&app.all_text()]);
}

#[tokio::test]
async fn web_identity_mode_mints_with_an_entra_token_and_no_aws_keys() {
    let bed = TestBed::start().await.unwrap();
    let env = web_identity(&bed, &[]);
    let app = App::spawn(env.clone()).await;

    let answer = app.http_rotate("POST", &[("force", "true")], None).await;

    assert_eq!(answer.status, 200, "{answer:?}\n{}", app.output());
    let call = &bed.sts.calls_of("AssumeRoleWithWebIdentity")[0];
    assert_eq!(call.access_key_id, None, "sent unsigned");
    assert_eq!(call.params["RoleArn"], ROLE);
    let claims = claims_of(&call.params["WebIdentityToken"]).unwrap();
    assert_eq!(claims["aud"], AUDIENCE);
    assert_eq!(claims["oid"], bed.issuer.config.object_id);
    assert!(bed
        .issuer
        .requests()
        .iter()
        .any(|r| r.resource == AUDIENCE && r.granted));
    assert!(
        bed.vault.log().iter().all(|r| !r.path.contains("AWS-")),
        "no AWS key was read"
    );
    assert_eq!(answer.body["mode"], "web-identity");
    let id = answer.body["accessKeyId"].as_str().unwrap().to_string();
    assert_eq!(set_ids(&bed), vec![Some(id); 4]);
    let (status, envelope) = app.timer_rotate().await;
    assert_eq!(status, 200, "{envelope}");
    let arn = consumer_caller_arn(&bed, &env).await;
    assert!(arn.contains(":assumed-role/stsbridge-reader/"), "{arn}");
    assert_challenge_checked(&bed, &env);
    assert_no_secrets(&bed, &[&app.all_text()]);
}

#[tokio::test]
async fn web_identity_with_an_app_registration_secret_from_key_vault() {
    let bed = TestBed::start().await.unwrap();
    bed.vault.seed(
        "Entra-App-Secret",
        &bed.issuer.config.app_client_secret,
        &[],
    );
    let secret_uri = format!("{}/secrets/Entra-App-Secret", bed.vault_url());
    let authority = bed.authority_host();
    let tenant = bed.issuer.config.tenant_id.clone();
    let client = bed.issuer.config.app_client_id.clone();
    let env = web_identity(
        &bed,
        &[
            ("WebIdentityCredential", "client-secret"),
            ("WebIdentityTenantId", &tenant),
            ("WebIdentityClientId", &client),
            ("WebIdentityClientSecret", &secret_uri),
            ("AZURE_AUTHORITY_HOST", &authority),
        ],
    );

    let out = run_cli(&env, &["rotate"]).await;

    assert_eq!(out.code, Some(0), "{out:?}");
    let call = &bed.sts.calls_of("AssumeRoleWithWebIdentity")[0];
    let claims = claims_of(&call.params["WebIdentityToken"]).unwrap();
    assert_eq!(claims["appid"], client.as_str());
    assert_eq!(claims["aud"], AUDIENCE);
    assert_no_secrets(&bed, &[&out.text()]);
}

#[tokio::test]
async fn a_wrong_app_secret_fails_at_the_token_step_and_names_it() {
    let bed = TestBed::start().await.unwrap();
    let authority = bed.authority_host();
    let tenant = bed.issuer.config.tenant_id.clone();
    let client = bed.issuer.config.app_client_id.clone();
    let env = web_identity(
        &bed,
        &[
            ("WebIdentityCredential", "client-secret"),
            ("WebIdentityTenantId", &tenant),
            ("WebIdentityClientId", &client),
            ("WebIdentityClientSecret", "not-the-secret"),
            ("AZURE_AUTHORITY_HOST", &authority),
        ],
    );

    let out = run_cli(&env, &["rotate"]).await;

    assert_eq!(out.code, Some(1));
    let body = out.json();
    assert_eq!(body["error"]["step"], "token");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("AADSTS7000215"),
        "{body}"
    );
    assert!(bed.sts.calls().is_empty());
    assert!(!out.text().contains("not-the-secret"));
}

#[tokio::test]
async fn an_audience_entra_does_not_know_fails_at_the_token_step_with_a_hint() {
    let bed = TestBed::start().await.unwrap();
    let app = App::spawn(web_identity(
        &bed,
        &[("WebIdentityAudience", "api://no-such-app")],
    ))
    .await;

    let answer = app.http_rotate("POST", &[], None).await;

    assert_eq!(answer.status, 502, "{answer:?}");
    assert_eq!(answer.body["error"]["step"], "token");
    assert!(answer.body["error"]["hint"]
        .as_str()
        .unwrap()
        .contains("WebIdentityAudience"));
    assert!(bed.sts.calls().is_empty());
}

async fn refused(code: &str, status: u16, message: &str) -> crate::support::HttpAnswer {
    let bed = TestBed::start().await.unwrap();
    bed.sts.faults.add(Rule::on(
        "AssumeRoleWithWebIdentity",
        Fault::error(status, code, message),
    ));
    let app = App::spawn(web_identity(&bed, &[])).await;
    let answer = app.http_rotate("POST", &[], None).await;
    assert_eq!(answer.status, 502, "{answer:?}");
    assert_eq!(answer.body["error"]["code"], code);
    assert_eq!(answer.body["error"]["step"], "mint");
    assert!(bed.vault.latest("AwsSessionCredentials").is_none());
    assert_no_secrets(&bed, &[&app.all_text()]);
    answer
}

#[tokio::test]
async fn an_audience_the_oidc_provider_does_not_accept_points_at_the_provider() {
    let answer = refused("InvalidIdentityToken", 400, "Incorrect token audience").await;
    assert!(answer.body["error"]["hint"]
        .as_str()
        .unwrap()
        .contains("OIDC provider"));
}

#[tokio::test]
async fn a_trust_policy_that_rejects_the_claims_points_at_the_trust_policy() {
    let answer = refused(
        "AccessDenied",
        403,
        "Not authorized to perform sts:AssumeRoleWithWebIdentity",
    )
    .await;
    assert!(answer.body["error"]["hint"]
        .as_str()
        .unwrap()
        .contains("trust policy"));
    let answer = refused("IDPRejectedClaim", 403, "Claims rejected").await;
    assert!(answer.body["error"]["hint"]
        .as_str()
        .unwrap()
        .contains("aud and sub"));
}

#[tokio::test]
async fn a_duration_above_the_roles_maximum_names_both_settings() {
    let bed = TestBed::start().await.unwrap();
    bed.sts.faults.add(Rule::on(
        "AssumeRole",
        Fault::error(
            400,
            "ValidationError",
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        ),
    ));
    let env = settings(
        &bed,
        &[("CredentialMode", "assume-role"), ("RoleArn", ROLE)],
        &[],
    );

    let out = run_cli(&env, &["rotate"]).await;

    assert_eq!(out.code, Some(1));
    let hint = out.json()["error"]["hint"].as_str().unwrap().to_string();
    assert!(
        hint.contains("SessionDurationSeconds (7200)") && hint.contains("MaxSessionDuration"),
        "{hint}"
    );
}

#[tokio::test]
async fn an_unknown_role_is_an_access_denied_with_a_hint_about_the_trust_policy() {
    let bed = TestBed::start().await.unwrap();
    bed.sts.faults.add(Rule::on(
        "AssumeRole",
        Fault::error(403, "AccessDenied", "User is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:role/nope"),
    ));
    let env = settings(
        &bed,
        &[
            ("CredentialMode", "assume-role"),
            ("RoleArn", "arn:aws:iam::123456789012:role/nope"),
        ],
        &[],
    );

    let out = run_cli(&env, &["rotate"]).await;

    assert_eq!(out.code, Some(1));
    assert!(out.json()["error"]["hint"]
        .as_str()
        .unwrap()
        .contains("RoleArn"));
}

#[tokio::test]
async fn check_shows_the_claims_aws_will_see_but_never_the_token() {
    let bed = TestBed::start().await.unwrap();

    let out = run_cli(&web_identity(&bed, &[]), &["check"]).await;

    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains(&format!(
        "iss = https://sts.windows.net/{}/",
        bed.issuer.config.tenant_id
    )));
    assert!(out.stdout.contains(&format!("aud = {AUDIENCE}")));
    assert!(out
        .stdout
        .contains(&format!("sub = {}", bed.issuer.config.object_id)));
    assert!(bed.sts.calls().is_empty());
    assert_no_secrets(&bed, &[&out.text()]);
}

#[tokio::test]
async fn web_identity_through_a_managed_identity_needs_one() {
    let bed = TestBed::start().await.unwrap();
    let mut env = web_identity(&bed, &[]);
    env.remove("IDENTITY_ENDPOINT");

    let out = run_cli(&env, &["check"]).await;

    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("WebIdentityCredential"), "{out:?}");
}
