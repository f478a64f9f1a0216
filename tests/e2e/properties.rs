//! Bad input never panics: property tests over the three parsers that take outside input
//! (the invocation envelope, Key Vault references, the settings). `cargo test` runs a bounded
//! number of cases (proptest's default, 256 per property).

use std::collections::HashMap;

use proptest::prelude::*;
use serde_json::Value;
use stsbridge::azure::reference::{parse_reference, PUBLIC_CLOUD_VAULT_SUFFIX};
use stsbridge::functions::envelope::{HttpRequest, Invocation};
use stsbridge::settings::Settings;

/// Arbitrary JSON, a few levels deep.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::hash_map(
                prop_oneof![
                    Just("Data".to_string()),
                    Just("req".to_string()),
                    Just("Method".to_string()),
                    Just("Query".to_string()),
                    Just("Headers".to_string()),
                    Just("Body".to_string()),
                    ".{0,8}"
                ],
                inner,
                0..8
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const SETTINGS: &[&str] = &[
    "KeyVaultUrl",
    "UsernameFromKeyVault",
    "PasswordFromKeyVault",
    "PlainUsername",
    "PlainPassword",
    "CredentialMode",
    "RoleArn",
    "RoleSessionName",
    "ExternalId",
    "SessionPolicy",
    "SessionPolicyArns",
    "SessionTags",
    "SourceIdentity",
    "WebIdentityAudience",
    "WebIdentityCredential",
    "WebIdentityTenantId",
    "WebIdentityClientId",
    "WebIdentityClientSecret",
    "AccessKeyIdFromKeyVault",
    "SecretAccessKeyFromKeyVault",
    "SessionTokenFromKeyVault",
    "CredentialsBundleSecretName",
    "AwsRegion",
    "SessionDurationSeconds",
    "MinRotationIntervalSeconds",
    "KeyVaultVerifyChallengeResource",
    "ExpiryWarningSeconds",
    "RotationTimeBudgetSeconds",
    "KeepEnabledVersions",
    "MaxInvocationBytes",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "AWS_ENDPOINT_URL_STS",
];

/// Values that look like what users type, and garbage.
fn setting_value() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        "https://[a-z0-9.:-]{0,20}/secrets/[A-Za-z0-9_-]{0,10}(/[0-9a-f]{0,32})?",
        "@Microsoft.KeyVault\\([A-Za-z=;:/._-]{0,60}\\)?",
        "[0-9]{0,8}",
        "arn:aws:iam::[0-9]{0,12}:role/[a-z]{0,5}",
    ]
}

proptest! {
    #[test]
    fn the_invocation_parser_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(inv) = Invocation::parse(&bytes) {
            let _ = HttpRequest::from_data(&inv.data, "req");
        }
    }

    #[test]
    fn the_invocation_parser_never_panics_on_json(value in json()) {
        let text = value.to_string();
        if let Ok(inv) = Invocation::parse(text.as_bytes()) {
            let _ = HttpRequest::from_data(&inv.data, "req");
        }
        let wrapped = serde_json::json!({"Data": {"req": value}}).to_string();
        let inv = Invocation::parse(wrapped.as_bytes()).unwrap();
        let _ = HttpRequest::from_data(&inv.data, "req");
    }

    #[test]
    fn the_reference_parser_never_panics(text in prop_oneof![".{0,120}", "@Microsoft\\.KeyVault\\(.{0,80}\\)", "https://.{0,80}"]) {
        let home = url::Url::parse("https://home.vault.azure.net").unwrap();
        let _ = parse_reference(&text, Some(&home), PUBLIC_CLOUD_VAULT_SUFFIX);
    }

    #[test]
    fn a_valid_secret_uri_parses_back_to_its_parts(name in "[A-Za-z0-9-]{1,40}", version in proptest::option::of("[0-9a-f]{32}")) {
        let uri = match &version {
            Some(v) => format!("https://v.vault.azure.net/secrets/{name}/{v}"),
            None => format!("https://v.vault.azure.net/secrets/{name}"),
        };
        let (r, _) = parse_reference(&uri, None, PUBLIC_CLOUD_VAULT_SUFFIX).unwrap();
        prop_assert_eq!(r.name, name);
        prop_assert_eq!(r.version, version);
    }

    #[test]
    fn the_settings_parser_never_panics(pairs in prop::collection::vec((prop::sample::select(SETTINGS), setting_value()), 0..20)) {
        let map: HashMap<String, String> = pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        if let Err(errors) = Settings::from_map(&map) {
            for e in errors.0 {
                prop_assert!(SETTINGS.contains(&e.setting.as_str()), "error names an unknown setting {}", e.setting);
            }
        }
    }
}
