//! Every app setting, read and validated once, in one place.
//!
//! App settings arrive as environment variables (the Functions host passes them to the handler),
//! or from a `local.settings.json`'s `Values` for `stsbridge rotate --settings`. [`Settings::from_map`]
//! turns that raw map into a validated [`Settings`] or into [`SettingsErrors`], which lists
//! *every* problem at once, each naming its setting. Nothing else in the crate reads the
//! environment for configuration.
//!
//! - [`table`]: every setting declared once (scope, parser, default, doc); the docs
//!   (`docs/settings.md`) and `targets.schema.json` are checked against it.
//! - [`reader`]: raw strings → typed values, with the table's bounds and defaults.
//! - `mode`: the credential modes' settings (Roles Anywhere's in `roles_anywhere`); `published`:
//!   the four secrets a rotation publishes; `local`: `--settings local.settings.json`.

mod local;
mod mode;
mod published;
pub(crate) mod reader;
mod roles_anywhere;
pub mod storage;
pub mod table;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use crate::azure::arm::AppId;
use crate::azure::identity::AzureIdentity;
use crate::azure::reference::{parse_vault_url, PUBLIC_CLOUD_VAULT_SUFFIX};
pub use local::export_local_settings;
pub use mode::{
    ChainSource, Mode, RoleSettings, RolesAnywhereSettings, SourceKeys, SourceValue,
    WebIdentityCredential,
};
pub use published::Targets;
use published::{check_target_collisions, read_published};
use reader::Reader;

/// One invalid setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingsError {
    pub setting: String,
    pub message: String,
}

/// Every invalid setting found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingsErrors(pub Vec<SettingsError>);

impl fmt::Display for SettingsErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|e| format!("{}: {}", e.setting, e.message))
            .collect();
        write!(f, "invalid settings: {}", parts.join("; "))
    }
}

impl std::error::Error for SettingsErrors {}

/// Chooses the app's Azure identity from environment-style settings, in the order of Azure's
/// `DefaultAzureCredential`: a service principal's secret, workload identity, managed identity,
/// then the developer's login.
pub fn azure_identity(map: &HashMap<String, String>) -> AzureIdentity {
    let get = |k: &str| map.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    if let (Some(t), Some(c), Some(s)) = (
        get("AZURE_TENANT_ID"),
        get("AZURE_CLIENT_ID"),
        get("AZURE_CLIENT_SECRET"),
    ) {
        return AzureIdentity::ClientSecret {
            tenant_id: t.to_string(),
            client_id: c.to_string(),
            secret: SecretString::from(s.to_string()),
        };
    }
    if get("AZURE_FEDERATED_TOKEN_FILE").is_some() {
        return AzureIdentity::WorkloadIdentity;
    }
    if get("IDENTITY_ENDPOINT").is_some() {
        return AzureIdentity::ManagedIdentity {
            client_id: get("AZURE_CLIENT_ID").map(str::to_string),
        };
    }
    AzureIdentity::Developer
}

/// The validated settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The target's name from the targets file; `None` for the one implicit target.
    pub name: Option<String>,
    /// Set when another target owns (and rotates) the same IAM user's key.
    pub source_key_rotated_by: Option<String>,
    pub key_vault_url: Url,
    pub verify_challenge_resource: bool,
    pub identity: AzureIdentity,
    pub mode: Mode,
    pub targets: Targets,
    pub region: String,
    pub sts_endpoint: Option<String>,
    pub iam_endpoint: Option<String>,
    pub session_duration_secs: u64,
    pub min_rotation_interval: Duration,
    pub expiry_warning: Duration,
    pub rotation_time_budget: Duration,
    pub keep_enabled_versions: usize,
    pub max_invocation_bytes: usize,
    /// Rotate the IAM user's key when it is this old (0: never).
    pub source_key_max_age_days: u64,
    pub source_key_delete_foreign: bool,
    pub source_key_delete_after_hours: u64,
    pub source_key_propagation: Duration,
    /// Apps whose Key Vault references are re-resolved after a publish (`RefreshAppSettingsOf`).
    pub refresh_apps: Vec<AppId>,
    /// `AzureResourceManagerEndpoint`.
    pub arm_endpoint: Url,
    /// The longest time between two timer runs (`TimerSchedule`; hourly when it is not set
    /// here, as the templates set it), and whether it was given.
    pub timer_interval: Duration,
    pub timer_schedule_given: bool,
    /// Where the rotation lease lives (`AzureWebJobsStorage`); `None`: no lease, a warning.
    pub lease_store: Option<storage::StorageSettings>,
    /// `RotationLeaseSeconds`.
    pub lease_duration: Duration,
    /// Things that are allowed but worth saying (printed at start-up and by `check`).
    pub warnings: Vec<String>,
}

/// The vault settings every other section builds on.
pub(super) struct Vault {
    url: Option<Url>,
    /// `url`, or a placeholder when it is missing or invalid (its error is recorded), so that the
    /// other sections still report their own problems.
    pub(super) home: Url,
    pub(super) suffix: String,
    verify_challenge_resource: bool,
}

fn read_vault(r: &mut Reader) -> Vault {
    let suffix = r
        .text("KeyVaultDnsSuffix")
        .unwrap_or(PUBLIC_CLOUD_VAULT_SUFFIX)
        .trim_start_matches('.')
        .to_string();
    let url = match r.get("KeyVaultUrl") {
        None => {
            r.error("KeyVaultUrl", "is required: the vault that receives the fresh credentials, like https://NAME.vault.azure.net");
            None
        }
        Some(raw) => match parse_vault_url(raw) {
            Ok(u) => Some(u),
            Err(e) => {
                r.error("KeyVaultUrl", e);
                None
            }
        },
    };
    let home = url
        .clone()
        .unwrap_or_else(|| Url::parse("https://invalid.vault.azure.net").expect("static URL"));
    let verify_challenge_resource = r.boolean("KeyVaultVerifyChallengeResource");
    if !verify_challenge_resource {
        r.warnings.push("KeyVaultVerifyChallengeResource is false: the authentication challenge of vaults on this machine is not checked against their domain; use this only with a local emulator".into());
    }
    Vault {
        url,
        home,
        suffix,
        verify_challenge_resource,
    }
}

fn read_region(r: &mut Reader) -> String {
    let region = r
        .get("AwsRegion")
        .or_else(|| r.get("AWS_REGION"))
        .or_else(|| r.text("AwsRegion"))
        .unwrap_or_default()
        .to_string();
    if !region
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        || region.len() < 3
    {
        r.error(
            "AwsRegion",
            format!("'{region}' is not an AWS region like us-east-1"),
        );
    }
    region
}

/// `SessionDurationSeconds` within the bounds AWS accepts in the mode (the table's default,
/// lowered to the mode's maximum, when it is not given).
fn read_duration(r: &mut Reader, mode: Option<&Mode>) -> u64 {
    let (min, max) = mode.map(Mode::duration_bounds).unwrap_or((900, 129_600));
    let default = r.default_number("SessionDurationSeconds");
    let Some(raw) = r.get("SessionDurationSeconds") else {
        return default.min(max);
    };
    let Ok(n) = raw.parse::<u64>() else {
        r.error(
            "SessionDurationSeconds",
            format!("'{raw}' is not a whole number"),
        );
        return default;
    };
    if !(min..=max).contains(&n) {
        let mode = mode.map(Mode::name).unwrap_or("this");
        r.error(
            "SessionDurationSeconds",
            format!("{n} is outside {min}-{max}, the range AWS accepts in {mode} mode"),
        );
    }
    n
}

/// `RefreshAppSettingsOf` and `AzureResourceManagerEndpoint`.
fn read_consumers(r: &mut Reader) -> (Vec<AppId>, Url) {
    let mut apps: Vec<AppId> = vec![];
    for raw in r
        .get("RefreshAppSettingsOf")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        match AppId::parse(raw) {
            Ok(id) if apps.iter().any(|a| a.key() == id.key()) => {}
            Ok(id) => apps.push(id),
            Err(e) => r.error("RefreshAppSettingsOf", e),
        }
    }
    let raw = r
        .text("AzureResourceManagerEndpoint")
        .expect("the table has a default");
    let endpoint = match Url::parse(raw) {
        Ok(u) if u.scheme() == "https" && u.host().is_some() => u,
        _ => {
            r.error(
                "AzureResourceManagerEndpoint",
                format!("'{raw}' is not an https URL like https://management.azure.com"),
            );
            Url::parse(crate::azure::arm::PUBLIC_CLOUD_ENDPOINT).expect("static URL")
        }
    };
    (apps, endpoint)
}

fn read_identity(r: &mut Reader, map: &HashMap<String, String>) -> AzureIdentity {
    let identity = azure_identity(map);
    if matches!(identity, AzureIdentity::ManagedIdentity { .. })
        && r.get("IDENTITY_HEADER").is_none()
    {
        r.error(
            "IDENTITY_HEADER",
            "is required with IDENTITY_ENDPOINT (managed identity)",
        );
    }
    identity
}

/// `KeyVaultVerifyChallengeResource=false` is honoured only where the check cannot pass (a vault
/// on this machine has no name in the challenge resource's domain); elsewhere it would let any
/// server that answers for the vault's address collect a Key Vault token (issue #15 L2).
fn check_challenge_switch(r: &mut Reader, vault: &Vault, targets: &Targets, mode: Option<&Mode>) {
    if vault.verify_challenge_resource {
        return;
    }
    let mut vaults: Vec<&Url> = targets.all().iter().map(|t| &t.vault).collect();
    vaults.extend(vault.url.iter());
    if let Some(source) = mode.and_then(Mode::source) {
        for v in [&source.access_key_id, &source.secret_access_key] {
            if let SourceValue::KeyVault(r, _) = v {
                vaults.push(&r.vault);
            }
        }
    }
    if let Some(Mode::WebIdentity {
        credential:
            WebIdentityCredential::ClientSecret {
                secret: SourceValue::KeyVault(r, _),
                ..
            },
        ..
    }) = mode
    {
        vaults.push(&r.vault);
    }
    if let Some(Mode::RolesAnywhere(ra)) = mode {
        vaults.push(&ra.certificate.vault);
        if let ChainSource::Secret(r) = &ra.chain {
            vaults.push(&r.vault);
        }
    }
    if let Some(remote) = vaults.iter().find(|v| !crate::net::is_loopback(v)) {
        let remote = crate::azure::reference::origin(remote);
        r.error(
            "KeyVaultVerifyChallengeResource",
            format!("false is honoured only for a vault on this machine (127.0.0.0/8, ::1, localhost), and {remote} is not: remove the setting"),
        );
    }
}

/// The rotation lease's store: `AzureWebJobsStorage` in the forms the Functions host reads.
fn read_storage(r: &mut Reader) -> Option<storage::StorageSettings> {
    let raw = storage::Raw {
        connection_string: r.get("AzureWebJobsStorage"),
        account_name: r.get("AzureWebJobsStorage__accountName"),
        blob_service_uri: r.get("AzureWebJobsStorage__blobServiceUri"),
        credential: r.get("AzureWebJobsStorage__credential"),
        client_id: r.get("AzureWebJobsStorage__clientId"),
        trusted_host: r.get("RotationLeaseStorageHost"),
    };
    match storage::parse(raw) {
        Ok(Some(s)) => {
            r.warnings.extend(s.warning.clone());
            Some(s)
        }
        Ok(None) => {
            r.warnings.push("AzureWebJobsStorage is not set: rotations are not coordinated across instances (no rotation lease), so scaled-out instances or a CLI run may each mint; in Azure the Functions host sets it".into());
            None
        }
        Err((setting, message)) => {
            r.error(setting, message);
            None
        }
    }
}

/// A source key the app cannot write back is not rotated: say so unless rotation is off.
fn warn_unwritable_source(r: &mut Reader, mode: Option<&Mode>, max_age_days: u64) {
    let Some(source) = mode.and_then(Mode::source) else {
        return;
    };
    if source.writable().is_none() && max_age_days > 0 {
        r.warnings.push(format!(
            "SourceKeyMaxAgeDays is {max_age_days}, but {} and {} are given as values or pinned versions: stsbridge cannot write a new key back, so the IAM user's key is not rotated. Give them as versionless secret URIs (or Key Vault references) to have it rotated, or set SourceKeyMaxAgeDays=0 to silence this",
            source.settings.0, source.settings.1
        ));
    }
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, SettingsErrors> {
        Self::from_map(&std::env::vars().collect())
    }

    /// Validates a raw settings map; returns every problem at once.
    pub fn from_map(map: &HashMap<String, String>) -> Result<Self, SettingsErrors> {
        let mut r = Reader::new(map);
        let vault = read_vault(&mut r);
        let mode = mode::read_mode(&mut r, &vault.home, &vault.suffix);
        let targets = read_published(&mut r, &vault);
        check_target_collisions(&mut r, &targets, mode.as_ref().and_then(Mode::source));
        let region = read_region(&mut r);
        let sts_endpoint = r.endpoint("AWS_ENDPOINT_URL_STS");
        let iam_endpoint = r.endpoint("AWS_ENDPOINT_URL_IAM");
        let session_duration_secs = read_duration(&mut r, mode.as_ref());
        let seconds = |r: &mut Reader, name| Duration::from_secs(r.number(name));
        let min_rotation_interval = seconds(&mut r, "MinRotationIntervalSeconds");
        let expiry_warning = seconds(&mut r, "ExpiryWarningSeconds");
        let rotation_time_budget = seconds(&mut r, "RotationTimeBudgetSeconds");
        let keep_enabled_versions = r.number("KeepEnabledVersions") as usize;
        let max_invocation_bytes = r.number("MaxInvocationBytes") as usize;
        let source_key_max_age_days = r.number("SourceKeyMaxAgeDays");
        let source_key_delete_foreign = r.boolean("SourceKeyDeleteForeignKey");
        let source_key_delete_after_hours = r.number("SourceKeyDeleteAfterHours");
        let source_key_propagation = seconds(&mut r, "SourceKeyPropagationSeconds");
        let (refresh_apps, arm_endpoint) = read_consumers(&mut r);
        let (timer_interval, timer_schedule_given) = match r.get("TimerSchedule") {
            None => (Duration::from_secs(3600), false),
            Some(raw) => match crate::schedule::longest_gap(raw) {
                Ok(gap) => (gap, true),
                Err(e) => {
                    r.error("TimerSchedule", e);
                    (Duration::from_secs(3600), true)
                }
            },
        };
        let identity = read_identity(&mut r, map);
        let lease_store = read_storage(&mut r);
        let lease_duration = seconds(&mut r, "RotationLeaseSeconds");
        warn_unwritable_source(&mut r, mode.as_ref(), source_key_max_age_days);
        check_challenge_switch(&mut r, &vault, &targets, mode.as_ref());

        let warnings = r.finish()?;
        Ok(Settings {
            name: None,
            source_key_rotated_by: None,
            key_vault_url: vault.url.expect("checked above"),
            verify_challenge_resource: vault.verify_challenge_resource,
            identity,
            mode: mode.expect("checked above"),
            targets,
            region,
            sts_endpoint,
            iam_endpoint,
            session_duration_secs,
            min_rotation_interval,
            expiry_warning,
            rotation_time_budget,
            keep_enabled_versions,
            max_invocation_bytes,
            source_key_max_age_days,
            source_key_delete_foreign,
            source_key_delete_after_hours,
            source_key_propagation,
            refresh_apps,
            arm_endpoint,
            timer_interval,
            timer_schedule_given,
            lease_store,
            lease_duration,
            warnings,
        })
    }

    /// The settings that decide what a published set is, written as tags and compared by the
    /// freshness rule: a set minted under other settings is not fresh.
    pub fn fingerprint(&self, source_access_key_id: Option<&str>) -> BTreeMap<String, String> {
        let mut tags = BTreeMap::new();
        tags.insert(crate::tags::MODE.into(), self.mode.name().into());
        tags.insert(
            crate::tags::DURATION.into(),
            self.session_duration_secs.to_string(),
        );
        if let Some(role) = self.mode.role() {
            tags.insert(crate::tags::ROLE_ARN.into(), crate::tags::value(&role.arn));
        }
        if let Some(k) = source_access_key_id {
            tags.insert(crate::tags::SOURCE_KEY_ID.into(), k.to_string());
        }
        tags
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::names::{default_session_name, is_role_arn};

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("KeyVaultUrl", "https://v.vault.azure.net"),
            (
                "UsernameFromKeyVault",
                "https://v.vault.azure.net/secrets/AWS-Access-Key-ID",
            ),
            (
                "PasswordFromKeyVault",
                "@Microsoft.KeyVault(VaultName=v;SecretName=AWS-Secret-Access-Key)",
            ),
        ]
    }

    fn errors_of(pairs: &[(&str, &str)]) -> Vec<String> {
        match Settings::from_map(&map(pairs)) {
            Ok(_) => vec![],
            Err(e) => e.0.into_iter().map(|e| e.setting).collect(),
        }
    }

    #[test]
    fn the_minimal_settings_give_seed_000_defaults() {
        let s = Settings::from_map(&map(&base())).unwrap();
        assert_eq!(s.mode.name(), "session-token");
        assert_eq!(s.targets.bundle.name, "AwsSessionCredentials");
        assert_eq!(s.targets.session_token.name, "SessionToken");
        assert_eq!(s.session_duration_secs, 7200);
        assert_eq!(s.region, "us-east-1");
        assert_eq!(s.min_rotation_interval, Duration::from_secs(300));
        assert!(s
            .warnings
            .iter()
            .any(|w| w.contains("PasswordFromKeyVault")));
    }

    #[test]
    fn every_problem_is_reported_at_once_naming_its_setting() {
        let errs = errors_of(&[
            ("SessionDurationSeconds", "60"),
            ("AwsRegion", "Mars Base"),
            ("KeyVaultVerifyChallengeResource", "maybe"),
        ]);
        for setting in [
            "KeyVaultUrl",
            "UsernameFromKeyVault",
            "SessionDurationSeconds",
            "AwsRegion",
            "KeyVaultVerifyChallengeResource",
        ] {
            assert!(
                errs.iter().any(|e| e == setting),
                "{setting} missing from {errs:?}"
            );
        }
    }

    #[test]
    fn plain_settings_are_used_when_the_key_vault_pair_is_absent() {
        let s = Settings::from_map(&map(&[
            ("KeyVaultUrl", "https://v.vault.azure.net"),
            ("PlainUsername", "AKIAIOSFODNN7EXAMPLE"),
            ("PlainPassword", "not-a-real-secret"),
        ]))
        .unwrap();
        assert_eq!(s.mode.source().unwrap().settings.0, "PlainUsername");
    }

    #[test]
    fn half_a_pair_names_the_missing_half() {
        let mut pairs = base();
        pairs.remove(2);
        assert_eq!(errors_of(&pairs), vec!["PasswordFromKeyVault"]);
    }

    #[test]
    fn the_duration_is_checked_against_the_mode() {
        let mut pairs = base();
        pairs.push(("SessionDurationSeconds", "129600"));
        assert!(errors_of(&pairs).is_empty());
        pairs.push(("CredentialMode", "assume-role"));
        pairs.push(("RoleArn", "arn:aws:iam::123456789012:role/reader"));
        assert_eq!(errors_of(&pairs), vec!["SessionDurationSeconds"]);
    }

    #[test]
    fn a_target_that_would_overwrite_the_source_key_is_refused() {
        let mut pairs = base();
        pairs.push((
            "SecretAccessKeyFromKeyVault",
            "https://v.vault.azure.net/secrets/AWS-Secret-Access-Key",
        ));
        assert_eq!(errors_of(&pairs), vec!["SecretAccessKeyFromKeyVault"]);
    }

    #[test]
    fn role_arns_and_session_names_are_validated() {
        assert!(is_role_arn("arn:aws:iam::123456789012:role/path/reader"));
        assert!(!is_role_arn("arn:aws:iam::123456789012:user/bob"));
        assert!(!is_role_arn("arn:aws:iam::12345:role/x"));
        assert_eq!(default_session_name(Some("my func app!")), "my-func-app-");
        assert_eq!(default_session_name(Some("x")), "stsbridge");
        assert_eq!(default_session_name(Some(&"a".repeat(80))).len(), 64);
    }

    #[test]
    fn debug_output_never_shows_a_plain_secret() {
        let s = Settings::from_map(&map(&[
            ("KeyVaultUrl", "https://v.vault.azure.net"),
            ("PlainUsername", "AKIAIOSFODNN7EXAMPLE"),
            ("PlainPassword", "very-secret-value-123"),
        ]))
        .unwrap();
        assert!(!format!("{s:?}").contains("very-secret-value-123"));
    }
}
