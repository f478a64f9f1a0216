//! The table of settings: every app setting and environment variable stsbridge reads, declared
//! once with its scope, how it is parsed, its default and a line of documentation.
//!
//! The rest of the crate reads settings only through [`super::reader::Reader`], which takes the
//! parser and the default from here and refuses (in debug builds and tests) a name that is not
//! declared, so this table is complete by construction. Tests check that `docs/settings.md`
//! documents exactly these names (with the same defaults) and that `targets.schema.json`
//! describes exactly the per-target ones with the same bounds and choices. The docs are checked
//! rather than generated: they explain each setting in context, and a check names what is
//! missing or different, which is all a generator would buy.

/// Where a setting can be set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// An app setting that a targets file may also set per target (`Defaults` or a target).
    Target,
    /// An app setting for the whole app (identity, limits, the targets file itself).
    App,
    /// A variable the platform, the SDKs or the AWS CLI define; stsbridge reads it as they do.
    Standard,
}

/// How a value is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Free text, checked by the code that reads it (URLs, ARNs, references, names).
    Text,
    /// `true`/`false` (also `1`/`0`, `yes`/`no`).
    Bool,
    /// A whole number within these bounds.
    Number { min: u64, max: u64 },
    /// One of these (case-insensitive).
    Choice(&'static [&'static str]),
}

/// One declared setting.
#[derive(Clone, Copy, Debug)]
pub struct Def {
    pub name: &'static str,
    pub scope: Scope,
    pub kind: Kind,
    pub default: Option<&'static str>,
    pub doc: &'static str,
}

const fn def(
    name: &'static str,
    scope: Scope,
    kind: Kind,
    default: Option<&'static str>,
    doc: &'static str,
) -> Def {
    Def {
        name,
        scope,
        kind,
        default,
        doc,
    }
}

use Kind::{Bool, Choice, Number, Text};
use Scope::{App, Standard, Target};

pub const CREDENTIAL_MODES: &[&str] = &[
    "session-token",
    "assume-role",
    "web-identity",
    "roles-anywhere",
];
pub const WEB_IDENTITY_CREDENTIALS: &[&str] = &[
    "managed-identity",
    "client-secret",
    "workload-identity",
    "developer",
];

/// Every setting, in the order the docs present them (one line each: read it as a table).
#[rustfmt::skip]
pub const SETTINGS: &[Def] = &[
    // The vaults.
    def("KeyVaultUrl", Target, Text, None, "the vault that receives the fresh credentials"),
    def("KeyVaultDnsSuffix", Target, Text, Some("vault.azure.net"), "the suffix `VaultName=` references resolve to"),
    def("KeyVaultVerifyChallengeResource", App, Bool, Some("true"), "check the vault's challenge against its domain; `false` only for vaults on this machine"),
    // The source of the IAM user's key.
    def("UsernameFromKeyVault", Target, Text, None, "the IAM user's access key id: a value, reference or secret URI"),
    def("PasswordFromKeyVault", Target, Text, None, "the IAM user's secret access key: a value, reference or secret URI"),
    def("PlainUsername", Target, Text, None, "local debugging: the access key id as plain text"),
    def("PlainPassword", Target, Text, None, "local debugging: the secret access key as plain text"),
    // What is published.
    def("AccessKeyIdFromKeyVault", Target, Text, Some("AccessKeyId"), "the published access key id's secret"),
    def("SecretAccessKeyFromKeyVault", Target, Text, Some("SecretAccessKey"), "the published secret access key's secret"),
    def("SessionTokenFromKeyVault", Target, Text, Some("SessionToken"), "the published session token's secret"),
    def("CredentialsBundleSecretName", Target, Text, Some("AwsSessionCredentials"), "the bundle: the whole set as credential_process JSON"),
    // STS.
    def("AwsRegion", Target, Text, Some("us-east-1"), "the STS regional endpoint"),
    def("SessionDurationSeconds", Target, Number { min: 900, max: 129_600, }, Some("7200"), "the credentials' lifetime (the mode narrows the bounds)"),
    def("MinRotationIntervalSeconds", Target, Number { min: 0, max: 86_400, }, Some("300"), "a set younger than this is fresh for an unforced trigger"),
    def("RotationTimeBudgetSeconds", Target, Number { min: 5, max: 3600 }, Some("120"), "a rotation gives up after this long"),
    def("ExpiryWarningSeconds", Target, Number { min: 0, max: 129_600, }, Some("1800"), "warn when the published set has less left than this"),
    def("KeepEnabledVersions", Target, Number { min: 1, max: 100 }, Some("2"), "expired versions beyond the newest this many are disabled"),
    def("MaxInvocationBytes", App, Number { min: 1024, max: 64 * 1024 * 1024, }, Some("1048576"), "larger invocation bodies are refused with 413"),
    // Credential modes.
    def("CredentialMode", Target, Choice(CREDENTIAL_MODES), Some("session-token"), "how credentials are minted"),
    def("RoleArn", Target, Text, None, "the role of the role modes"),
    def("RoleSessionName", Target, Text, None, "the role session's name (default: the app's name)"),
    def("ExternalId", Target, Text, None, "AssumeRole's external id"),
    def("SessionPolicy", Target, Text, None, "AssumeRole's inline session policy (JSON)"),
    def("SessionPolicyArns", Target, Text, None, "AssumeRole's managed session policies"),
    def("SessionTags", Target, Text, None, "AssumeRole's session tags, k=v,…"),
    def("SourceIdentity", Target, Text, None, "AssumeRole's source identity"),
    def("WebIdentityAudience", Target, Text, None, "the Entra ID application the token is for"),
    def("WebIdentityCredential", Target, Choice(WEB_IDENTITY_CREDENTIALS), Some("managed-identity"), "where the Entra ID token comes from"),
    def("WebIdentityTenantId", Target, Text, None, "client-secret: the app registration's tenant"),
    def("WebIdentityClientId", Target, Text, None, "client-secret: the app registration's client id"),
    def("WebIdentityClientSecret", Target, Text, None, "client-secret: its secret (normally a Key Vault reference)"),
    def("RolesAnywhereTrustAnchorArn", Target, Text, None, "roles-anywhere: the trust anchor (its region is the endpoint's)"),
    def("RolesAnywhereProfileArn", Target, Text, None, "roles-anywhere: the profile"),
    def("RolesAnywhereCertificate", Target, Text, None, "roles-anywhere: the Key Vault certificate whose key signs (a name, or its URI)"),
    def("RolesAnywhereChain", Target, Text, Some("certificate"), "roles-anywhere: the intermediates: `certificate` (its secret's PEM), `none`, or a secret holding them"),
    // Rotating the IAM user's key.
    def("SourceKeyMaxAgeDays", Target, Number { min: 0, max: 3650 }, Some("90"), "the timer rotates the IAM user's key when it is this old; 0 never"),
    def("SourceKeyDeleteAfterHours", Target, Number { min: 0, max: 24 * 365, }, Some("24"), "how long the previous key stays, inactive"),
    def("SourceKeyDeleteForeignKey", Target, Bool, Some("false"), "delete another active key instead of stopping"),
    def("SourceKeyPropagationSeconds", Target, Number { min: 0, max: 600 }, Some("30"), "how long a new key may be refused while IAM propagates it"),
    // Many targets.
    def("StsbridgeTargetsFile", App, Text, None, "the targets file (default targets.json at the app root when present)"),
    def("MaxConcurrentTargets", App, Number { min: 1, max: 256 }, Some("8"), "how many targets rotate at once"),
    def("KeyVaultWritesPer10Seconds", App, Number { min: 0, max: 4000 }, Some("300"), "writes per vault per 10 s; 0 unpaced"),
    // Azure consumers of the published secrets.
    def("RefreshAppSettingsOf", Target, Text, None, "App Service / Function App resource IDs whose Key Vault references are re-resolved after a publish"),
    def("AzureResourceManagerEndpoint", App, Text, Some("https://management.azure.com"), "the Resource Manager endpoint (the token is for <endpoint>/.default)"),
    // One rotation across instances (issue #17): a blob lease per target in the app's storage.
    def("RotationLeaseSeconds", App, Number { min: 15, max: 60 }, Some("20"), "the rotation lease's duration; renewed while a run lasts, it expires by itself when a holder dies"),
    def("RotationLeaseStorageHost", App, Text, None, "a host other than Azure Storage's that identity-based storage may send its token to (from the environment only, never a --settings file)"),
    // Read by the Functions host.
    def("TimerSchedule", App, Text, None, "TimerRotate's six-field NCRONTAB schedule"),
    // Standard variables.
    def("AWS_ENDPOINT_URL_STS", Standard, Text, None, "the STS endpoint"),
    def("AWS_ENDPOINT_URL_IAM", Standard, Text, None, "the IAM endpoint"),
    def("AWS_ENDPOINT_URL_ROLESANYWHERE", Standard, Text, None, "the IAM Roles Anywhere endpoint"),
    def("AWS_ENDPOINT_URL", Standard, Text, None, "every AWS endpoint without its own variable"),
    def("AWS_ENDPOINT_URL_SSO", Standard, Text, None, "the IAM Identity Center portal endpoint"),
    def("AWS_ENDPOINT_URL_SSO_OIDC", Standard, Text, None, "the IAM Identity Center OIDC endpoint"),
    def("AWS_REGION", Standard, Text, None, "the region, when AwsRegion is not set"),
    def("AWS_DEFAULT_REGION", Standard, Text, None, "the region for --web-identity, when AWS_REGION is not set"),
    def("STSBRIDGE_EXEC", Standard, Text, None, "set by `stsbridge exec` in its command's environment; an exec inside it is refused"),
    def("AWS_CONFIG_FILE", Standard, Text, None, "the AWS config file (sso)"),
    def("AWS_SHARED_CREDENTIALS_FILE", Standard, Text, None, "the AWS credentials file (sync-profile)"),
    def("IDENTITY_ENDPOINT", Standard, Text, None, "the App Service managed identity endpoint"),
    def("IDENTITY_HEADER", Standard, Text, None, "its header secret"),
    def("AZURE_CLIENT_ID", Standard, Text, None, "a user-assigned identity, or a service principal"),
    def("AZURE_TENANT_ID", Standard, Text, None, "a service principal's tenant"),
    def("AZURE_CLIENT_SECRET", Standard, Text, None, "a service principal's secret"),
    def("AZURE_FEDERATED_TOKEN_FILE", Standard, Text, None, "workload identity"),
    def("SSL_CERT_FILE", Standard, Text, None, "replaces the trust roots"),
    def("RUST_LOG", Standard, Text, None, "the log level of stsbridge's own messages"),
    def("WEBSITE_SITE_NAME", Standard, Text, None, "the Function App's name (the default role session name)"),
    def("HOSTNAME", Standard, Text, None, "the host name (the default role session name outside Azure)"),
    def("AzureWebJobsStorage", Standard, Text, None, "the app's storage: a connection string (the rotation lease's store)"),
    def("AzureWebJobsStorage__accountName", Standard, Text, None, "identity-based storage: the account name"),
    def("AzureWebJobsStorage__blobServiceUri", Standard, Text, None, "identity-based storage: the Blob service endpoint"),
    def("AzureWebJobsStorage__credential", Standard, Text, None, "identity-based storage: `managedidentity`"),
    def("AzureWebJobsStorage__clientId", Standard, Text, None, "identity-based storage: a user-assigned identity's client id"),
    def("AzureWebJobsScriptRoot", Standard, Text, None, "the app root (where targets.json is looked for)"),
    def("FUNCTIONS_CUSTOMHANDLER_PORT", Standard, Text, None, "the port `serve` binds"),
    def("XDG_CACHE_HOME", Standard, Text, None, "where credential-process --cache keeps its file"),
    def("STSBRIDGE_FUNCTION_KEY", Standard, Text, None, "revoke --function-url: the function key HttpRotate is called with"),
];

/// The declaration of `name`, if there is one.
pub fn find(name: &str) -> Option<&'static Def> {
    SETTINGS.iter().find(|d| d.name == name)
}

/// The settings a targets file may set per target.
pub fn per_target() -> impl Iterator<Item = &'static Def> {
    SETTINGS.iter().filter(|d| d.scope == Scope::Target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn repo(path: &str) -> String {
        std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn names_are_unique_and_defaults_parse_as_their_kind() {
        let mut seen = BTreeSet::new();
        for d in SETTINGS {
            assert!(seen.insert(d.name), "{} twice", d.name);
            let Some(default) = d.default else { continue };
            match d.kind {
                Kind::Bool => assert!(["true", "false"].contains(&default), "{}", d.name),
                Kind::Number { min, max } => {
                    let n: u64 = default.parse().unwrap();
                    assert!((min..=max).contains(&n), "{}", d.name);
                }
                Kind::Choice(choices) => assert!(choices.contains(&default), "{}", d.name),
                Kind::Text => {}
            }
        }
    }

    /// The names in the first cell of every table row of a markdown text, with the row.
    fn documented(markdown: &str) -> Vec<(String, String)> {
        let mut out = vec![];
        for line in markdown.lines().filter(|l| l.starts_with('|')) {
            let first = line.split('|').nth(1).unwrap_or_default();
            for part in first.split(',') {
                let name = part.trim().trim_matches('`');
                if part.trim().starts_with('`')
                    && !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    out.push((name.to_string(), line.to_string()));
                }
            }
        }
        out
    }

    #[test]
    fn docs_settings_md_documents_exactly_the_table_with_its_defaults() {
        let rows = documented(&repo("docs/settings.md"));
        let documented: BTreeSet<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
        let declared: BTreeSet<&str> = SETTINGS.iter().map(|d| d.name).collect();
        let missing: Vec<_> = declared.difference(&documented).collect();
        let unknown: Vec<_> = documented.difference(&declared).collect();
        assert!(
            missing.is_empty() && unknown.is_empty(),
            "docs/settings.md lacks {missing:?} and documents settings the code does not read: {unknown:?}"
        );
        for d in SETTINGS {
            let Some(default) = d.default else { continue };
            let row = &rows.iter().find(|(n, _)| n == d.name).unwrap().1;
            assert!(
                row.contains(&format!("default `{default}`")),
                "docs/settings.md: the row of {} should say default `{default}`: {row}",
                d.name
            );
        }
    }

    #[test]
    fn the_schema_describes_exactly_the_per_target_settings_with_their_bounds() {
        let schema: serde_json::Value = serde_json::from_str(&repo("targets.schema.json")).unwrap();
        let properties = schema["$defs"]["target"]["properties"].as_object().unwrap();
        let listed: BTreeSet<&str> = properties
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "Name")
            .collect();
        let declared: BTreeSet<&str> = per_target().map(|d| d.name).collect();
        assert_eq!(listed, declared);
        for d in per_target() {
            let p = &properties[d.name];
            match d.kind {
                Kind::Number { min, max } => {
                    assert_eq!(p["minimum"], min, "{}: minimum", d.name);
                    assert_eq!(p["maximum"], max, "{}: maximum", d.name);
                }
                Kind::Choice(choices) => {
                    assert_eq!(p["enum"], serde_json::json!(choices), "{}", d.name)
                }
                Kind::Bool => assert!(p["type"].to_string().contains("boolean"), "{}", d.name),
                Kind::Text => {}
            }
            if let Some(default) = d.default {
                let given = p["default"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| p["default"].to_string());
                assert_eq!(given, default, "{}: default", d.name);
            }
        }
    }
}
