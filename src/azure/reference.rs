//! Parsing of the three ways a setting can point at a Key Vault secret (pure; no I/O).
//!
//! - `@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/name[/version][/])`
//! - `@Microsoft.KeyVault(VaultName=v;SecretName=name[;SecretVersion=version])`
//! - a plain secret URI, `https://v.vault.azure.net/secrets/name[/version][/]`
//!
//! App Service resolves the first two itself when it can; when it cannot (no access, or a local run
//! without Core Tools' resolution) the app sees the literal string, and stsbridge resolves it with
//! its own identity. Forms: <https://learn.microsoft.com/azure/app-service/app-service-key-vault-references>.

use std::fmt;

use url::Url;

/// The DNS suffix of vaults in Azure's public cloud (`VaultName=` references use it).
pub const PUBLIC_CLOUD_VAULT_SUFFIX: &str = "vault.azure.net";

/// A secret in a vault: its vault's origin, its name, and optionally a pinned version.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretRef {
    pub vault: Url,
    pub name: String,
    pub version: Option<String>,
}

impl SecretRef {
    pub fn new(vault: &Url, name: &str) -> Self {
        Self {
            vault: vault.clone(),
            name: name.to_string(),
            version: None,
        }
    }

    /// The vault's origin without a trailing slash, e.g. `https://v.vault.azure.net`.
    pub fn vault_origin(&self) -> String {
        origin(&self.vault)
    }

    /// Whether two references name the same secret (Key Vault names are case-insensitive).
    pub fn same_secret(&self, other: &SecretRef) -> bool {
        self.vault_origin()
            .eq_ignore_ascii_case(&other.vault_origin())
            && self.name.eq_ignore_ascii_case(&other.name)
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/secrets/{}", self.vault_origin(), self.name)?;
        if let Some(v) = &self.version {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretRef({self})")
    }
}

/// A certificate in a vault (`RolesAnywhereCertificate`): its vault's origin, its name, and
/// optionally a pinned version. Its key (`/keys/NAME`) signs; its secret (`/secrets/NAME`)
/// holds its chain.
#[derive(Clone, PartialEq, Eq)]
pub struct CertificateRef {
    pub vault: Url,
    pub name: String,
    pub version: Option<String>,
}

impl CertificateRef {
    pub fn vault_origin(&self) -> String {
        origin(&self.vault)
    }

    /// The certificate's own secret (the chain, in PEM), at `version`.
    pub fn secret(&self, version: Option<&str>) -> SecretRef {
        SecretRef {
            vault: self.vault.clone(),
            name: self.name.clone(),
            version: version.map(str::to_string),
        }
    }
}

impl fmt::Display for CertificateRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/certificates/{}", self.vault_origin(), self.name)?;
        if let Some(v) = &self.version {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for CertificateRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertificateRef({self})")
    }
}

/// Parses a certificate named by its name alone (in `home`, the app's vault) or by its URI,
/// `https://vault/certificates/name[/version][/]`.
pub fn parse_certificate(value: &str, home: &Url) -> Result<CertificateRef, String> {
    let v = value.trim();
    if !v.contains('/') {
        check_secret_name(v)?;
        return Ok(CertificateRef {
            vault: home.clone(),
            name: v.to_string(),
            version: None,
        });
    }
    let url = Url::parse(v).map_err(|e| format!("'{value}' is not a URL: {e}"))?;
    if url.scheme() != "https" {
        return Err(format!("certificate URI '{value}' must use https"));
    }
    let segments: Vec<&str> = url
        .path_segments()
        .map(|s| s.filter(|p| !p.is_empty()).collect())
        .unwrap_or_default();
    let (name, version) = match segments.as_slice() {
        ["certificates", name] => (*name, None),
        ["certificates", name, version] => (*name, Some(version.to_string())),
        _ => {
            return Err(format!(
                "'{value}' is not a certificate name or URI like https://NAME.vault.azure.net/certificates/CERT[/VERSION]"
            ))
        }
    };
    check_secret_name(name)?;
    if let Some(v) = &version {
        check_version(v)?;
    }
    Ok(CertificateRef {
        vault: Url::parse(&origin(&url)).map_err(|e| e.to_string())?,
        name: name.to_string(),
        version,
    })
}

/// How a setting named its secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefForm {
    /// `@Microsoft.KeyVault(SecretUri=…)` the platform did not resolve.
    ReferenceUri,
    /// `@Microsoft.KeyVault(VaultName=…;SecretName=…)` the platform did not resolve.
    ReferenceVaultName,
    /// A plain secret URI.
    SecretUri,
}

/// The origin of a URL, `scheme://host[:port]`, without a trailing slash.
pub fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// Whether a setting's value is meant as a pointer to a secret rather than a value.
pub fn looks_like_reference(value: &str) -> bool {
    let v = value.trim();
    v.starts_with("@Microsoft.KeyVault(") || (v.starts_with("https://") && v.contains("/secrets/"))
}

/// Checks a secret name against Key Vault's rules: 1–127 letters, digits and dashes.
pub fn check_secret_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 127 {
        return Err(format!(
            "secret name '{name}' must be 1-127 characters long"
        ));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(format!(
            "secret name '{name}' may contain only letters, digits and dashes"
        ));
    }
    Ok(())
}

fn check_version(version: &str) -> Result<(), String> {
    if version.len() == 32 && version.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(format!(
            "secret version '{version}' is not a Key Vault version (32 hexadecimal characters)"
        ))
    }
}

/// Parses a vault URL (`KeyVaultUrl`): https, a host, no path beyond `/`.
pub fn parse_vault_url(value: &str) -> Result<Url, String> {
    let url = Url::parse(value.trim()).map_err(|e| format!("'{value}' is not a URL: {e}"))?;
    if url.scheme() != "https" {
        return Err(format!(
            "'{value}' must use https (Key Vault refuses bearer tokens over plain http)"
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("'{value}' has no host"));
    }
    if !(url.path() == "/" || url.path().is_empty()) || url.query().is_some() {
        return Err(format!(
            "'{value}' must be the vault's address only, like https://NAME.vault.azure.net"
        ));
    }
    Url::parse(&origin(&url)).map_err(|e| e.to_string())
}

/// Parses a secret URI, `https://vault/secrets/name[/version][/]`.
pub fn parse_secret_uri(value: &str) -> Result<SecretRef, String> {
    let url = Url::parse(value.trim()).map_err(|e| format!("'{value}' is not a URL: {e}"))?;
    if url.scheme() != "https" {
        return Err(format!("secret URI '{value}' must use https"));
    }
    let segments: Vec<&str> = url
        .path_segments()
        .map(|s| s.filter(|p| !p.is_empty()).collect())
        .unwrap_or_default();
    let (name, version) = match segments.as_slice() {
        ["secrets", name] => (*name, None),
        ["secrets", name, version] => (*name, Some(version.to_string())),
        _ => {
            return Err(format!(
                "'{value}' is not a secret URI like https://NAME.vault.azure.net/secrets/SECRET[/VERSION]"
            ))
        }
    };
    check_secret_name(name)?;
    if let Some(v) = &version {
        check_version(v)?;
    }
    Ok(SecretRef {
        vault: Url::parse(&origin(&url)).map_err(|e| e.to_string())?,
        name: name.to_string(),
        version,
    })
}

/// Parses an `@Microsoft.KeyVault(...)` reference or a secret URI.
///
/// `VaultName=` names a vault in the app's cloud: `https://{VaultName}.{vault_suffix}`, except
/// that a name equal to the first label of `home_vault`'s host means `home_vault` itself (so a
/// vault reached under another address, such as a local emulator, still matches).
pub fn parse_reference(
    value: &str,
    home_vault: Option<&Url>,
    vault_suffix: &str,
) -> Result<(SecretRef, RefForm), String> {
    let v = value.trim();
    let Some(inner) = v.strip_prefix("@Microsoft.KeyVault(") else {
        return parse_secret_uri(v).map(|r| (r, RefForm::SecretUri));
    };
    let Some(inner) = inner.strip_suffix(')') else {
        return Err("Key Vault reference is missing its closing ')'".into());
    };
    let mut secret_uri = None;
    let (mut vault_name, mut secret_name, mut secret_version) = (None, None, None);
    for part in inner.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, val)) = part.split_once('=') else {
            return Err(format!(
                "Key Vault reference part '{part}' is not Key=Value"
            ));
        };
        let val = val.trim().to_string();
        match key.trim().to_ascii_lowercase().as_str() {
            "secreturi" => secret_uri = Some(val),
            "vaultname" => vault_name = Some(val),
            "secretname" => secret_name = Some(val),
            "secretversion" => secret_version = Some(val),
            other => return Err(format!("Key Vault reference has an unknown part '{other}'")),
        }
    }
    if let Some(uri) = secret_uri {
        if vault_name.is_some() || secret_name.is_some() {
            return Err("Key Vault reference mixes SecretUri with VaultName/SecretName".into());
        }
        return parse_secret_uri(&uri).map(|r| (r, RefForm::ReferenceUri));
    }
    let (Some(vault_name), Some(secret_name)) = (vault_name, secret_name) else {
        return Err("Key Vault reference needs SecretUri=…, or VaultName=…;SecretName=…".into());
    };
    if vault_name.is_empty()
        || !vault_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(format!("'{vault_name}' is not a vault name"));
    }
    check_secret_name(&secret_name)?;
    let version = match secret_version.filter(|v| !v.is_empty()) {
        Some(v) => {
            check_version(&v)?;
            Some(v)
        }
        None => None,
    };
    let home = home_vault.filter(|h| {
        h.host_str()
            .and_then(|host| host.split('.').next())
            .is_some_and(|label| label.eq_ignore_ascii_case(&vault_name))
    });
    let vault = match home {
        Some(h) => h.clone(),
        None => Url::parse(&format!("https://{vault_name}.{vault_suffix}"))
            .map_err(|e| format!("vault name '{vault_name}': {e}"))?,
    };
    Ok((
        SecretRef {
            vault,
            name: secret_name,
            version,
        },
        RefForm::ReferenceVaultName,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VER: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_secret_uri_with_and_without_version_parses() {
        let r = parse_secret_uri("https://v.vault.azure.net/secrets/AWS-Key").unwrap();
        assert_eq!(r.vault_origin(), "https://v.vault.azure.net");
        assert_eq!(r.name, "AWS-Key");
        assert_eq!(r.version, None);
        let r =
            parse_secret_uri(&format!("https://v.vault.azure.net/secrets/AWS-Key/{VER}/")).unwrap();
        assert_eq!(r.version.as_deref(), Some(VER));
        let r = parse_secret_uri("https://127.0.0.1:8443/secrets/x/").unwrap();
        assert_eq!(r.vault_origin(), "https://127.0.0.1:8443");
    }

    #[test]
    fn a_secret_uri_that_is_not_one_is_refused_with_a_reason() {
        assert!(parse_secret_uri("http://v.vault.azure.net/secrets/x")
            .unwrap_err()
            .contains("https"));
        assert!(parse_secret_uri("https://v.vault.azure.net/keys/x").is_err());
        assert!(parse_secret_uri("https://v.vault.azure.net/secrets/bad_name").is_err());
        assert!(parse_secret_uri("https://v.vault.azure.net/secrets/x/notaversion").is_err());
    }

    #[test]
    fn both_reference_syntaxes_parse() {
        let (r, form) = parse_reference(
            &format!("@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/k/{VER})"),
            None,
            PUBLIC_CLOUD_VAULT_SUFFIX,
        )
        .unwrap();
        assert_eq!((r.name.as_str(), form), ("k", RefForm::ReferenceUri));
        let (r, form) = parse_reference(
            "@Microsoft.KeyVault(VaultName=myvault; SecretName=k)",
            None,
            PUBLIC_CLOUD_VAULT_SUFFIX,
        )
        .unwrap();
        assert_eq!(form, RefForm::ReferenceVaultName);
        assert_eq!(r.vault_origin(), "https://myvault.vault.azure.net");
        assert_eq!(r.version, None);
    }

    #[test]
    fn a_vault_name_matching_the_home_vault_means_the_home_vault() {
        let home = Url::parse("https://localhost:9443").unwrap();
        let (r, _) = parse_reference(
            &format!("@Microsoft.KeyVault(VaultName=localhost;SecretName=k;SecretVersion={VER})"),
            Some(&home),
            PUBLIC_CLOUD_VAULT_SUFFIX,
        )
        .unwrap();
        assert_eq!(r.vault_origin(), "https://localhost:9443");
        assert_eq!(r.version.as_deref(), Some(VER));
    }

    #[test]
    fn malformed_references_are_refused() {
        for bad in [
            "@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/k",
            "@Microsoft.KeyVault(VaultName=v)",
            "@Microsoft.KeyVault(Nonsense)",
            "@Microsoft.KeyVault(VaultName=v;SecretName=k;Other=1)",
        ] {
            assert!(
                parse_reference(bad, None, PUBLIC_CLOUD_VAULT_SUFFIX).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn vault_urls_must_be_https_origins() {
        assert_eq!(
            parse_vault_url("https://v.vault.azure.net/")
                .unwrap()
                .as_str(),
            "https://v.vault.azure.net/"
        );
        assert!(parse_vault_url("http://v.vault.azure.net").is_err());
        assert!(parse_vault_url("https://v.vault.azure.net/secrets/x").is_err());
        assert!(parse_vault_url("not a url").is_err());
    }
}
