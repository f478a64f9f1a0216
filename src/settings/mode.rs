//! The credential modes' settings: what each mode needs ([`Mode`]: where the IAM user's key comes
//! from, the role and its `AssumeRole` options, where web-identity mode's Entra ID token comes
//! from; Roles Anywhere's in `roles_anywhere.rs`), and their readers.

use url::Url;

use secrecy::SecretString;

use super::reader::Reader;
use crate::aws::names::{default_session_name, is_role_arn, valid_session_name};
use crate::aws::sts::AssumeRoleOptions;
use crate::azure::reference::{CertificateRef, RefForm, SecretRef};

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
    /// IAM Roles Anywhere `CreateSession`, signed by a Key Vault certificate's key: no AWS keys
    /// and no secret at all (issue #30).
    RolesAnywhere(RolesAnywhereSettings),
}

/// Roles Anywhere mode's settings.
#[derive(Clone, Debug)]
pub struct RolesAnywhereSettings {
    pub role: RoleSettings,
    /// `RoleSessionName`, sent only when set (the profile must accept it).
    pub role_session_name: Option<String>,
    pub trust_anchor_arn: String,
    pub profile_arn: String,
    /// The trust anchor's (and the profile's) region: the endpoint's and the scope's.
    pub region: String,
    /// `RolesAnywhereCertificate`: its key signs, its leaf goes in `X-Amz-X509`.
    pub certificate: CertificateRef,
    pub chain: ChainSource,
    /// `https://rolesanywhere.<region>.amazonaws.com`, or `AWS_ENDPOINT_URL_ROLESANYWHERE`.
    pub endpoint: Url,
}

/// Where the certificate's intermediates (`X-Amz-X509-Chain`) come from: Key Vault's
/// certificates API returns the leaf only (`RolesAnywhereChain`).
#[derive(Clone, Debug)]
pub enum ChainSource {
    /// The certificate's own secret (PEM), which holds the chain Key Vault was given.
    CertificateSecret,
    /// None: the leaf is issued by a CA the trust anchor holds.
    None,
    /// A secret holding the intermediates in PEM.
    Secret(SecretRef),
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
            Mode::RolesAnywhere(_) => "roles-anywhere",
        }
    }

    pub fn source(&self) -> Option<&SourceKeys> {
        match self {
            Mode::SessionToken { source } | Mode::AssumeRole { source, .. } => Some(source),
            Mode::WebIdentity { .. } | Mode::RolesAnywhere(_) => None,
        }
    }

    pub fn role(&self) -> Option<&RoleSettings> {
        match self {
            Mode::SessionToken { .. } => None,
            Mode::AssumeRole { role, .. } | Mode::WebIdentity { role, .. } => Some(role),
            Mode::RolesAnywhere(ra) => Some(&ra.role),
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

/// The credential mode with everything it needs; `None` after errors (each one recorded).
pub(super) fn read_mode(r: &mut Reader, home: &Url, suffix: &str) -> Option<Mode> {
    let mode_name = r.choice("CredentialMode")?;
    let needs_source = matches!(mode_name, "session-token" | "assume-role");
    let source = if needs_source {
        read_source(r, home, suffix)
    } else {
        None
    };
    let role = if matches!(mode_name, "assume-role" | "web-identity" | "roles-anywhere") {
        read_role(r)
    } else {
        None
    };
    let mode = match mode_name {
        "session-token" => source.map(|source| Mode::SessionToken { source }),
        "assume-role" => {
            let options = read_assume_role_options(r);
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
            let credential = read_web_identity_credential(r, home, suffix);
            match (role, audience, credential) {
                (Some(role), Some(audience), Some(credential)) => Some(Mode::WebIdentity {
                    role,
                    audience,
                    credential,
                }),
                _ => None,
            }
        }
        "roles-anywhere" => {
            super::roles_anywhere::read(r, role, home, suffix).map(Mode::RolesAnywhere)
        }
        _ => unreachable!("the table lists the choices"),
    };
    mode
}

pub(super) fn read_source(r: &mut Reader, home: &Url, suffix: &str) -> Option<SourceKeys> {
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

pub(super) fn read_role(r: &mut Reader) -> Option<RoleSettings> {
    let arn = match r.get("RoleArn") {
        None => {
            r.error(
                "RoleArn",
                "is required in assume-role, web-identity and roles-anywhere modes",
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

pub(super) fn read_assume_role_options(r: &mut Reader) -> AssumeRoleOptions {
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

pub(super) fn read_web_identity_credential(
    r: &mut Reader,
    home: &Url,
    suffix: &str,
) -> Option<WebIdentityCredential> {
    match r.choice("WebIdentityCredential")? {
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
        _ => unreachable!("the table lists the choices"),
    }
}
