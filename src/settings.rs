//! Every app setting, read and validated once, in one place.
//!
//! App settings arrive as environment variables (the Functions host passes them to the handler),
//! or from a `local.settings.json`'s `Values` for `stsbridge rotate --settings`. [`Settings::from_map`]
//! turns that raw map into a validated [`Settings`] or into [`SettingsErrors`], which lists
//! *every* problem at once, each naming its setting. Nothing else in the crate reads the
//! environment for configuration. The table of settings is in the README.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use crate::aws::sts::AssumeRoleOptions;
use crate::azure::identity::AzureIdentity;
use crate::azure::reference::{
    check_secret_name, looks_like_reference, parse_reference, parse_vault_url, RefForm, SecretRef,
    PUBLIC_CLOUD_VAULT_SUFFIX,
};

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

/// A source value: given directly, or a pointer to a Key Vault secret the app reads itself.
#[derive(Clone, Debug)]
pub enum SourceValue {
    /// The value itself (a platform-resolved reference, or a plain local setting).
    Plain(SecretString),
    /// A secret to read with the app's Azure identity.
    KeyVault(SecretRef, RefForm),
}

impl SourceValue {
    pub fn describe(&self) -> String {
        match self {
            SourceValue::Plain(_) => "value given in the setting".into(),
            SourceValue::KeyVault(r, RefForm::SecretUri) => format!("secret URI {r}"),
            SourceValue::KeyVault(r, _) => format!("unresolved Key Vault reference to {r}"),
        }
    }
}

/// Where the IAM user's long-lived key comes from.
#[derive(Clone, Debug)]
pub struct SourceKeys {
    pub access_key_id: SourceValue,
    pub secret_access_key: SourceValue,
    /// The settings they were read from (`UsernameFromKeyVault`/`PasswordFromKeyVault` or the `Plain…` pair).
    pub settings: (&'static str, &'static str),
}

impl SourceKeys {
    /// The versionless secrets both halves live in, when a rotated key can be written back there.
    pub fn writable(&self) -> Option<(SecretRef, SecretRef)> {
        match (&self.access_key_id, &self.secret_access_key) {
            (SourceValue::KeyVault(id, _), SourceValue::KeyVault(secret, _))
                if id.version.is_none() && secret.version.is_none() =>
            {
                Some((id.clone(), secret.clone()))
            }
            _ => None,
        }
    }
}

/// Where the minted credentials are published.
#[derive(Clone, Debug)]
pub struct Targets {
    pub bundle: SecretRef,
    pub access_key_id: SecretRef,
    pub secret_access_key: SecretRef,
    pub session_token: SecretRef,
}

impl Targets {
    /// All four, bundle first.
    pub fn all(&self) -> [&SecretRef; 4] {
        [
            &self.bundle,
            &self.access_key_id,
            &self.secret_access_key,
            &self.session_token,
        ]
    }
}

/// Where the Entra ID token for `AssumeRoleWithWebIdentity` comes from.
#[derive(Clone, Debug)]
pub enum WebIdentityCredential {
    ManagedIdentity,
    ClientSecret {
        tenant_id: String,
        client_id: String,
        secret: SourceValue,
    },
    WorkloadIdentity,
    Developer,
}

impl WebIdentityCredential {
    pub fn name(&self) -> &'static str {
        match self {
            WebIdentityCredential::ManagedIdentity => "managed-identity",
            WebIdentityCredential::ClientSecret { .. } => "client-secret",
            WebIdentityCredential::WorkloadIdentity => "workload-identity",
            WebIdentityCredential::Developer => "developer",
        }
    }
}

/// How credentials are minted.
#[derive(Clone, Debug)]
pub enum Mode {
    /// `GetSessionToken` with the IAM user's key (seed 000).
    SessionToken { source: SourceKeys },
    /// `AssumeRole` signed with the IAM user's key.
    AssumeRole {
        source: SourceKeys,
        role: RoleSettings,
        options: AssumeRoleOptions,
    },
    /// `AssumeRoleWithWebIdentity` with an Entra ID token: no AWS keys at all.
    WebIdentity {
        role: RoleSettings,
        audience: String,
        credential: WebIdentityCredential,
    },
}

#[derive(Clone, Debug)]
pub struct RoleSettings {
    pub arn: String,
    pub session_name: String,
}

impl Mode {
    pub fn name(&self) -> &'static str {
        match self {
            Mode::SessionToken { .. } => "session-token",
            Mode::AssumeRole { .. } => "assume-role",
            Mode::WebIdentity { .. } => "web-identity",
        }
    }

    pub fn source(&self) -> Option<&SourceKeys> {
        match self {
            Mode::SessionToken { source } | Mode::AssumeRole { source, .. } => Some(source),
            Mode::WebIdentity { .. } => None,
        }
    }

    pub fn role(&self) -> Option<&RoleSettings> {
        match self {
            Mode::SessionToken { .. } => None,
            Mode::AssumeRole { role, .. } | Mode::WebIdentity { role, .. } => Some(role),
        }
    }

    /// The session durations AWS accepts in this mode (validated before any call).
    pub fn duration_bounds(&self) -> (u64, u64) {
        match self {
            Mode::SessionToken { .. } => (900, 129_600),
            _ => (900, 43_200),
        }
    }
}

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
    /// Things that are allowed but worth saying (printed at start-up and by `check`).
    pub warnings: Vec<String>,
}

/// Reads settings from a raw map, collecting errors.
struct Reader<'a> {
    map: &'a HashMap<String, String>,
    errors: Vec<SettingsError>,
    warnings: Vec<String>,
}

impl<'a> Reader<'a> {
    /// The trimmed value, `None` when absent or blank.
    fn get(&self, name: &str) -> Option<&'a str> {
        self.map
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    fn error(&mut self, setting: &str, message: impl Into<String>) {
        self.errors.push(SettingsError {
            setting: setting.to_string(),
            message: message.into(),
        });
    }

    fn number(&mut self, name: &str, default: u64, min: u64, max: u64) -> u64 {
        let Some(raw) = self.get(name) else {
            return default;
        };
        match raw.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => n,
            Ok(n) => {
                self.error(name, format!("{n} is outside {min}-{max}"));
                default
            }
            Err(_) => {
                self.error(name, format!("'{raw}' is not a whole number"));
                default
            }
        }
    }

    fn boolean(&mut self, name: &str, default: bool) -> bool {
        match self.get(name).map(str::to_ascii_lowercase).as_deref() {
            None => default,
            Some("true" | "1" | "yes") => true,
            Some("false" | "0" | "no") => false,
            Some(other) => {
                self.error(name, format!("'{other}' is not true or false"));
                default
            }
        }
    }

    /// An AWS endpoint override (`setting`, else `AWS_ENDPOINT_URL`), checked to be a URL;
    /// plain http to another machine is allowed but warned about.
    fn endpoint(&mut self, setting: &str) -> Option<String> {
        let (name, value) = match self.get(setting) {
            Some(v) => (setting, v),
            None => ("AWS_ENDPOINT_URL", self.get("AWS_ENDPOINT_URL")?),
        };
        if Url::parse(value).is_err() {
            self.error(name, format!("'{value}' is not a URL"));
        } else if let Some(w) = crate::net::plain_http_warning(name, value) {
            self.warnings.push(w);
        }
        Some(value.to_string())
    }

    /// A value that may be given directly or point at a Key Vault secret.
    fn source_value(
        &mut self,
        name: &str,
        home: Option<&Url>,
        suffix: &str,
    ) -> Option<SourceValue> {
        let raw = self.get(name)?;
        if !looks_like_reference(raw) {
            return Some(SourceValue::Plain(SecretString::from(raw.to_string())));
        }
        match parse_reference(raw, home, suffix) {
            Ok((r, form)) => {
                if form != RefForm::SecretUri {
                    self.warnings.push(format!(
                        "{name}: the platform did not resolve this Key Vault reference; stsbridge reads {r} itself with its Azure identity"
                    ));
                }
                Some(SourceValue::KeyVault(r, form))
            }
            Err(e) => {
                self.error(name, e);
                None
            }
        }
    }

    /// A target secret: a bare secret name (in `KeyVaultUrl`'s vault), a URI or reference (its vault
    /// and name are used), or the default name.
    fn target(&mut self, name: &str, default: &str, home: &Url, suffix: &str) -> SecretRef {
        let Some(raw) = self.get(name) else {
            return SecretRef::new(home, default);
        };
        // A bare secret name means that secret in KeyVaultUrl's vault.
        if (1..=127).contains(&raw.len())
            && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return SecretRef::new(home, raw);
        }
        match parse_reference(raw, Some(home), suffix) {
            Ok((mut r, _)) => {
                if r.version.take().is_some() {
                    self.warnings.push(format!(
                        "{name}: the version in the setting is ignored; every rotation writes a new version"
                    ));
                }
                r
            }
            Err(e) => {
                self.error(name, e);
                SecretRef::new(home, default)
            }
        }
    }
}

/// Defaults for settings with fixed names.
pub const DEFAULT_BUNDLE_SECRET: &str = "AwsSessionCredentials";
pub const DEFAULT_REGION: &str = "us-east-1";
pub const DEFAULT_SESSION_DURATION_SECS: u64 = 7200;

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, SettingsErrors> {
        Self::from_map(&std::env::vars().collect())
    }

    /// Validates a raw settings map; returns every problem at once.
    pub fn from_map(map: &HashMap<String, String>) -> Result<Self, SettingsErrors> {
        let mut r = Reader {
            map,
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        let suffix = r
            .get("KeyVaultDnsSuffix")
            .unwrap_or(PUBLIC_CLOUD_VAULT_SUFFIX)
            .trim_start_matches('.')
            .to_string();
        let key_vault_url = match r.get("KeyVaultUrl") {
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
        let home = key_vault_url
            .clone()
            .unwrap_or_else(|| Url::parse("https://invalid.vault.azure.net").expect("static URL"));
        let verify_challenge_resource = r.boolean("KeyVaultVerifyChallengeResource", true);
        if !verify_challenge_resource {
            r.warnings.push("KeyVaultVerifyChallengeResource is false: the authentication challenge of vaults on this machine is not checked against their domain; use this only with a local emulator".into());
        }

        let mode_name = r
            .get("CredentialMode")
            .unwrap_or("session-token")
            .to_ascii_lowercase();
        let needs_source = matches!(mode_name.as_str(), "session-token" | "assume-role");
        let source = if needs_source {
            read_source(&mut r, &home, &suffix)
        } else {
            None
        };
        let role = if matches!(mode_name.as_str(), "assume-role" | "web-identity") {
            read_role(&mut r)
        } else {
            None
        };
        let mode = match mode_name.as_str() {
            "session-token" => source.map(|source| Mode::SessionToken { source }),
            "assume-role" => {
                let options = read_assume_role_options(&mut r);
                match (source, role) {
                    (Some(source), Some(role)) => Some(Mode::AssumeRole {
                        source,
                        role,
                        options,
                    }),
                    _ => None,
                }
            }
            "web-identity" => {
                let audience = match r.get("WebIdentityAudience") {
                    Some(a) => Some(a.to_string()),
                    None => {
                        r.error("WebIdentityAudience", "is required in web-identity mode: the Application ID URI (or client id) the Entra ID token is issued for");
                        None
                    }
                };
                let credential = read_web_identity_credential(&mut r, &home, &suffix);
                match (role, audience, credential) {
                    (Some(role), Some(audience), Some(credential)) => Some(Mode::WebIdentity {
                        role,
                        audience,
                        credential,
                    }),
                    _ => None,
                }
            }
            other => {
                r.error(
                    "CredentialMode",
                    format!("'{other}' is not one of session-token, assume-role, web-identity"),
                );
                None
            }
        };

        let bundle_name = r
            .get("CredentialsBundleSecretName")
            .unwrap_or(DEFAULT_BUNDLE_SECRET);
        if let Err(e) = check_secret_name(bundle_name) {
            r.error("CredentialsBundleSecretName", e);
        }
        let targets = Targets {
            bundle: SecretRef::new(&home, bundle_name),
            access_key_id: r.target("AccessKeyIdFromKeyVault", "AccessKeyId", &home, &suffix),
            secret_access_key: r.target(
                "SecretAccessKeyFromKeyVault",
                "SecretAccessKey",
                &home,
                &suffix,
            ),
            session_token: r.target("SessionTokenFromKeyVault", "SessionToken", &home, &suffix),
        };
        check_target_collisions(&mut r, &targets, mode.as_ref().and_then(Mode::source));

        let region = r
            .get("AwsRegion")
            .or_else(|| r.get("AWS_REGION"))
            .unwrap_or(DEFAULT_REGION)
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
        let sts_endpoint = r.endpoint("AWS_ENDPOINT_URL_STS");
        let iam_endpoint = r.endpoint("AWS_ENDPOINT_URL_IAM");

        let (min, max) = mode
            .as_ref()
            .map(Mode::duration_bounds)
            .unwrap_or((900, 129_600));
        let session_duration_secs = match r.get("SessionDurationSeconds") {
            None => DEFAULT_SESSION_DURATION_SECS.min(max),
            Some(_) => {
                let n = r.number(
                    "SessionDurationSeconds",
                    DEFAULT_SESSION_DURATION_SECS,
                    0,
                    u64::MAX,
                );
                if !(min..=max).contains(&n) {
                    let mode = mode.as_ref().map(Mode::name).unwrap_or(mode_name.as_str());
                    r.error(
                        "SessionDurationSeconds",
                        format!("{n} is outside {min}-{max}, the range AWS accepts in {mode} mode"),
                    );
                }
                n
            }
        };
        let min_rotation_interval =
            Duration::from_secs(r.number("MinRotationIntervalSeconds", 300, 0, 86_400));
        let expiry_warning =
            Duration::from_secs(r.number("ExpiryWarningSeconds", 1800, 0, 129_600));
        let rotation_time_budget =
            Duration::from_secs(r.number("RotationTimeBudgetSeconds", 120, 5, 3600));
        let keep_enabled_versions = r.number("KeepEnabledVersions", 2, 1, 100) as usize;
        let max_invocation_bytes =
            r.number("MaxInvocationBytes", 1024 * 1024, 1024, 64 * 1024 * 1024) as usize;
        let source_key_max_age_days = r.number("SourceKeyMaxAgeDays", 90, 0, 3650);
        let source_key_delete_foreign = r.boolean("SourceKeyDeleteForeignKey", false);
        let source_key_delete_after_hours = r.number("SourceKeyDeleteAfterHours", 24, 0, 24 * 365);
        let source_key_propagation =
            Duration::from_secs(r.number("SourceKeyPropagationSeconds", 30, 0, 600));

        let identity = azure_identity(map);
        if matches!(identity, AzureIdentity::ManagedIdentity { .. })
            && r.get("IDENTITY_HEADER").is_none()
        {
            r.error(
                "IDENTITY_HEADER",
                "is required with IDENTITY_ENDPOINT (managed identity)",
            );
        }

        if let Some(source) = mode.as_ref().and_then(Mode::source) {
            if source.writable().is_none() && source_key_max_age_days > 0 {
                r.warnings.push(format!(
                    "SourceKeyMaxAgeDays is {source_key_max_age_days}, but {} and {} are given as values or pinned versions: stsbridge cannot write a new key back, so the IAM user's key is not rotated. Give them as versionless secret URIs (or Key Vault references) to have it rotated, or set SourceKeyMaxAgeDays=0 to silence this",
                    source.settings.0, source.settings.1
                ));
            }
        }

        if !verify_challenge_resource {
            // Honoured only where the check cannot pass (a vault on this machine has no name in
            // the challenge resource's domain); elsewhere it would let any server that answers
            // for the vault's address collect a Key Vault token (issue #15 L2).
            let mut vaults: Vec<&Url> = targets.all().iter().map(|t| &t.vault).collect();
            vaults.extend(key_vault_url.iter());
            if let Some(source) = mode.as_ref().and_then(Mode::source) {
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
            }) = &mode
            {
                vaults.push(&r.vault);
            }
            if let Some(remote) = vaults.iter().find(|v| !crate::net::is_loopback(v)) {
                let remote = crate::azure::reference::origin(remote);
                r.error(
                    "KeyVaultVerifyChallengeResource",
                    format!("false is honoured only for a vault on this machine (127.0.0.0/8, ::1, localhost), and {remote} is not: remove the setting"),
                );
            }
        }

        if !r.errors.is_empty() {
            return Err(SettingsErrors(r.errors));
        }
        Ok(Settings {
            name: None,
            source_key_rotated_by: None,
            key_vault_url: key_vault_url.expect("checked above"),
            verify_challenge_resource,
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
            warnings: r.warnings,
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

fn read_source(r: &mut Reader, home: &Url, suffix: &str) -> Option<SourceKeys> {
    let kv = (r.get("UsernameFromKeyVault"), r.get("PasswordFromKeyVault"));
    let plain = (r.get("PlainUsername"), r.get("PlainPassword"));
    let (id_name, secret_name) = match (kv, plain) {
        ((Some(_), _) | (_, Some(_)), _) => ("UsernameFromKeyVault", "PasswordFromKeyVault"),
        (_, (Some(_), _) | (_, Some(_))) => {
            r.warnings.push("PlainUsername/PlainPassword are set: the IAM user's key is a plain setting; use this only for local debugging".into());
            ("PlainUsername", "PlainPassword")
        }
        _ => {
            r.error(
                "UsernameFromKeyVault",
                "is required (with PasswordFromKeyVault): the IAM user's access key id, as a Key Vault reference, a secret URI or a value; or set PlainUsername/PlainPassword for local debugging",
            );
            return None;
        }
    };
    let mut missing = false;
    for name in [id_name, secret_name] {
        if r.get(name).is_none() {
            let other = if name == id_name {
                secret_name
            } else {
                id_name
            };
            r.error(name, format!("is required when {other} is set"));
            missing = true;
        }
    }
    if missing {
        return None;
    }
    let access_key_id = r.source_value(id_name, Some(home), suffix);
    let secret_access_key = r.source_value(secret_name, Some(home), suffix);
    if let Some(SourceValue::Plain(id)) = &access_key_id {
        use secrecy::ExposeSecret;
        let id = id.expose_secret();
        if !(16..=128).contains(&id.len()) || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            r.error(
                id_name,
                "is not an AWS access key id (16-128 letters and digits, like AKIA…)",
            );
        }
    }
    Some(SourceKeys {
        access_key_id: access_key_id?,
        secret_access_key: secret_access_key?,
        settings: (id_name, secret_name),
    })
}

fn read_role(r: &mut Reader) -> Option<RoleSettings> {
    let arn = match r.get("RoleArn") {
        None => {
            r.error(
                "RoleArn",
                "is required in assume-role and web-identity modes",
            );
            None
        }
        Some(arn) if !is_role_arn(arn) => {
            r.error(
                "RoleArn",
                format!("'{arn}' is not an IAM role ARN like arn:aws:iam::123456789012:role/NAME"),
            );
            None
        }
        Some(arn) => Some(arn.to_string()),
    };
    let session_name = match r.get("RoleSessionName") {
        Some(name) => {
            if !valid_session_name(name) {
                r.error(
                    "RoleSessionName",
                    format!("'{name}' must be 2-64 characters of letters, digits and +=,.@-_"),
                );
            }
            name.to_string()
        }
        None => default_session_name(r.get("WEBSITE_SITE_NAME").or(r.get("HOSTNAME"))),
    };
    Some(RoleSettings {
        arn: arn?,
        session_name,
    })
}

fn is_role_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [arn_lit, partition, service, region, account, resource] = parts.as_slice() else {
        return false;
    };
    *arn_lit == "arn"
        && partition.starts_with("aws")
        && *service == "iam"
        && region.is_empty()
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && resource.strip_prefix("role/").is_some_and(|name| {
            !name.is_empty()
                && name.len() <= 512
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@-_/".contains(c))
        })
}

fn valid_session_name(name: &str) -> bool {
    (2..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(c))
}

/// A session name from the Function App's name (or the host name), sanitised to STS's rules.
pub fn default_session_name(site: Option<&str>) -> String {
    let base = site.unwrap_or("stsbridge");
    let mut name: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if name.len() < 2 {
        name = "stsbridge".into();
    }
    name
}

fn read_assume_role_options(r: &mut Reader) -> AssumeRoleOptions {
    let mut o = AssumeRoleOptions::default();
    if let Some(id) = r.get("ExternalId") {
        if !(2..=1224).contains(&id.len())
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@:/-_".contains(c))
        {
            r.error(
                "ExternalId",
                "must be 2-1224 characters of letters, digits and +=,.@:/-_",
            );
        }
        o.external_id = Some(id.to_string());
    }
    if let Some(policy) = r.get("SessionPolicy") {
        match serde_json::from_str::<serde_json::Value>(policy) {
            Ok(v) if v.is_object() => {
                let packed = v.to_string();
                if packed.len() > 2048 {
                    r.error(
                        "SessionPolicy",
                        format!(
                            "is {} characters once packed; AWS accepts at most 2048",
                            packed.len()
                        ),
                    );
                }
                o.session_policy = Some(packed);
            }
            _ => r.error("SessionPolicy", "is not a JSON policy document (an object)"),
        }
    }
    if let Some(arns) = r.get("SessionPolicyArns") {
        o.policy_arns = arns
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect();
        if o.policy_arns.len() > 10 {
            r.error(
                "SessionPolicyArns",
                "AWS accepts at most 10 managed policy ARNs",
            );
        }
        for arn in &o.policy_arns {
            if !(arn.starts_with("arn:aws") && arn.contains(":iam::") && arn.contains(":policy/")) {
                r.error(
                    "SessionPolicyArns",
                    format!("'{arn}' is not an IAM policy ARN"),
                );
            }
        }
    }
    if let Some(tags) = r.get("SessionTags") {
        for pair in tags.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() && k.len() <= 128 && v.len() <= 256 => {
                    o.tags.push((k.trim().to_string(), v.trim().to_string()))
                }
                _ => r.error(
                    "SessionTags",
                    format!("'{pair}' is not key=value (key 1-128, value up to 256 characters)"),
                ),
            }
        }
        if o.tags.len() > 50 {
            r.error("SessionTags", "AWS accepts at most 50 session tags");
        }
    }
    if let Some(si) = r.get("SourceIdentity") {
        if !valid_session_name(si) {
            r.error(
                "SourceIdentity",
                "must be 2-64 characters of letters, digits and +=,.@-_",
            );
        }
        o.source_identity = Some(si.to_string());
    }
    o
}

fn read_web_identity_credential(
    r: &mut Reader,
    home: &Url,
    suffix: &str,
) -> Option<WebIdentityCredential> {
    match r
        .get("WebIdentityCredential")
        .unwrap_or("managed-identity")
        .to_ascii_lowercase()
        .as_str()
    {
        "managed-identity" => {
            if r.get("IDENTITY_ENDPOINT").is_none() {
                r.error("WebIdentityCredential", "managed-identity needs the app's managed identity, but IDENTITY_ENDPOINT is not set (outside Azure, use developer or client-secret)");
                return None;
            }
            Some(WebIdentityCredential::ManagedIdentity)
        }
        "workload-identity" => Some(WebIdentityCredential::WorkloadIdentity),
        "developer" => Some(WebIdentityCredential::Developer),
        "client-secret" => {
            let tenant = r.get("WebIdentityTenantId");
            let client = r.get("WebIdentityClientId");
            if tenant.is_none() {
                r.error(
                    "WebIdentityTenantId",
                    "is required with WebIdentityCredential=client-secret",
                );
            }
            if client.is_none() {
                r.error(
                    "WebIdentityClientId",
                    "is required with WebIdentityCredential=client-secret",
                );
            }
            let secret = r.source_value("WebIdentityClientSecret", Some(home), suffix);
            if r.get("WebIdentityClientSecret").is_none() {
                r.error("WebIdentityClientSecret", "is required with WebIdentityCredential=client-secret (normally a Key Vault reference)");
            }
            Some(WebIdentityCredential::ClientSecret {
                tenant_id: tenant?.to_string(),
                client_id: client?.to_string(),
                secret: secret?,
            })
        }
        other => {
            r.error("WebIdentityCredential", format!("'{other}' is not one of managed-identity, client-secret, workload-identity, developer"));
            None
        }
    }
}

fn check_target_collisions(r: &mut Reader, targets: &Targets, source: Option<&SourceKeys>) {
    let names = [
        ("CredentialsBundleSecretName", &targets.bundle),
        ("AccessKeyIdFromKeyVault", &targets.access_key_id),
        ("SecretAccessKeyFromKeyVault", &targets.secret_access_key),
        ("SessionTokenFromKeyVault", &targets.session_token),
    ];
    for (i, (a_name, a)) in names.iter().enumerate() {
        for (b_name, b) in names.iter().skip(i + 1) {
            if a.same_secret(b) {
                r.error(b_name, format!("names the same secret as {a_name} ({b})"));
            }
        }
        if let Some(source) = source {
            for (s_name, s) in [
                (source.settings.0, &source.access_key_id),
                (source.settings.1, &source.secret_access_key),
            ] {
                if let SourceValue::KeyVault(s, _) = s {
                    if s.same_secret(a) {
                        r.error(a_name, format!("names the same secret as {s_name} ({a}): publishing would overwrite the IAM user's key"));
                    }
                }
            }
        }
    }
}

/// Reads a `local.settings.json` and puts its `Values` into this process's environment, as
/// Core Tools does for `func start`. Exporting (rather than merging into a map) matters because
/// libraries read some settings from the environment themselves (`SSL_CERT_FILE`, `AWS_*`).
/// Call it before any thread starts.
pub fn export_local_settings(path: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let Some(values) = doc.get("Values").and_then(|v| v.as_object()) else {
        anyhow::bail!("{} has no \"Values\" object", path.display());
    };
    let mut pairs = Vec::with_capacity(values.len());
    for (k, v) in values {
        let v = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => continue,
            other => other.to_string(),
        };
        // `set_var` panics on these, with the value in the message; the value may be a secret.
        if k.is_empty() || k.contains(['=', '\0']) {
            anyhow::bail!(
                "{}: Values has a setting named {k:?}, which cannot be an environment variable (empty, or holding '=' or NUL)",
                path.display()
            );
        }
        if v.contains('\0') {
            anyhow::bail!(
                "{}: the value of {k} holds a NUL character, which an environment variable cannot hold",
                path.display()
            );
        }
        pairs.push((k, v));
    }
    // Only once every entry is valid: a file that is refused changes nothing.
    for (k, v) in pairs {
        std::env::set_var(k, v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
