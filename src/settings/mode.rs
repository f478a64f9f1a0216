//! The credential modes' settings: where the IAM user's key comes from, the role and its
//! `AssumeRole` options, and where web-identity mode's Entra ID token comes from.

use url::Url;

use super::reader::Reader;
use super::{Mode, RoleSettings, SourceKeys, SourceValue, WebIdentityCredential};
use crate::aws::names::{default_session_name, is_role_arn, valid_session_name};
use crate::aws::sts::AssumeRoleOptions;

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
