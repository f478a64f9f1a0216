//! `AzureWebJobsStorage`, read as the Functions host reads it, for the rotation lease (issue #17):
//! the Function App's own storage account holds one blob lease per target.
//!
//! Two forms, as the host (WebJobs `AzureComponentFactory`) accepts them:
//! - a connection string in `AzureWebJobsStorage`: `AccountName=…;AccountKey=…` (with
//!   `DefaultEndpointsProtocol`, `EndpointSuffix` or an explicit `BlobEndpoint`),
//!   `BlobEndpoint=…;SharedAccessSignature=…`, or `UseDevelopmentStorage=true` (Azurite on
//!   127.0.0.1:10000 with its well-known account);
//! - identity-based: `AzureWebJobsStorage__blobServiceUri` or `AzureWebJobsStorage__accountName`,
//!   with `AzureWebJobsStorage__credential=managedidentity` and `AzureWebJobsStorage__clientId`
//!   for a user-assigned identity. This is what `infra/azure/main.bicep` deploys.
//!
//! When `AzureWebJobsStorage` holds a value, the host uses it as the connection string and
//! ignores the `__` children; so does this parser. Parsing is pure; the adapter is
//! [`crate::azure::lease`].
//!
//! Where the credentials may go (issue #27, F3): a SAS only over https, or plain http to this
//! machine (an emulator); the identity form's Entra ID token — good on every storage account the
//! identity reaches — only to an Azure Storage blob endpoint ([`AZURE_BLOB_SUFFIXES`]) or this
//! machine, or to a host `RotationLeaseStorageHost` names (with a warning). That setting is the
//! "setting that names the host explicitly": `AzureWebJobsStorage__blobServiceUri` names a host
//! too, but it is exactly what a hostile settings file would set, so it cannot vouch for itself;
//! and `--settings` files may not set `RotationLeaseStorageHost` ([`super::local`]).

use secrecy::SecretString;
use url::Url;

/// Azurite's well-known development account (public, documented by Microsoft).
pub const DEV_ACCOUNT: &str = "devstoreaccount1";
const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// The blob endpoints of Azure Storage's clouds: public (and its private endpoints,
/// `<account>.privatelink.blob.core.windows.net`), US Government, China (21Vianet), and the
/// public cloud's Azure DNS zone endpoints (`<account>.z00.blob.storage.azure.net`, preview,
/// retiring in 2027). Azure Germany (`blob.core.cloudapi.de`) closed in 2021. Anything else
/// (Azure Stack Hub, a custom domain) needs `RotationLeaseStorageHost`.
pub const AZURE_BLOB_SUFFIXES: [&str; 4] = [
    ".blob.core.windows.net",
    ".blob.core.usgovcloudapi.net",
    ".blob.core.chinacloudapi.cn",
    ".blob.storage.azure.net",
];

/// The setting that trusts a host outside [`AZURE_BLOB_SUFFIXES`] with the identity form's token.
pub const TRUST_SETTING: &str = "RotationLeaseStorageHost";

/// How the lease store authenticates.
#[derive(Clone)]
pub enum StorageAuth {
    /// An account key (connection string, or development storage): the app derives a
    /// short-lived account SAS from it.
    AccountKey { account: String, key: SecretString },
    /// A SAS given in the connection string, used as is.
    Sas(SecretString),
    /// An Entra ID token for `https://storage.azure.com`, from the app's managed identity (a
    /// user-assigned one with `AzureWebJobsStorage__clientId`) or its other identity.
    Identity { client_id: Option<String> },
}

/// The storage account the rotation lease lives in.
#[derive(Clone)]
pub struct StorageSettings {
    /// The Blob service endpoint, ending in `/` (a path is kept: Azurite's is
    /// `http://127.0.0.1:10000/devstoreaccount1/`).
    pub blob_endpoint: Url,
    pub auth: StorageAuth,
    /// Which form it was given in, for `check` and the docs (never the key).
    pub form: &'static str,
    /// A start-up warning about where the credentials go (a host trusted by
    /// `RotationLeaseStorageHost`).
    pub warning: Option<String>,
}

impl std::fmt::Debug for StorageSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageSettings")
            .field("blob_endpoint", &self.blob_endpoint.as_str())
            .field("form", &self.form)
            .finish_non_exhaustive()
    }
}

impl StorageSettings {
    /// One line for `check` and the start-up log: the endpoint and the form, never the key.
    pub fn describe(&self) -> String {
        let account = match &self.auth {
            StorageAuth::AccountKey { account, .. } => format!("account {account}, "),
            _ => String::new(),
        };
        format!(
            "{account}endpoint {} ({})",
            self.blob_endpoint.as_str().trim_end_matches('/'),
            self.form
        )
    }
}

/// The raw settings this reads (the names the host reads).
#[derive(Default, Clone, Copy)]
pub struct Raw<'a> {
    pub connection_string: Option<&'a str>,
    pub account_name: Option<&'a str>,
    pub blob_service_uri: Option<&'a str>,
    pub credential: Option<&'a str>,
    pub client_id: Option<&'a str>,
    /// `RotationLeaseStorageHost`: a host the identity form may send its token to besides
    /// Azure Storage's own.
    pub trusted_host: Option<&'a str>,
}

/// The storage settings; `Ok(None)` when none is given. `Err` is `(setting, message)`.
pub fn parse(raw: Raw) -> Result<Option<StorageSettings>, (&'static str, String)> {
    if let Some(cs) = raw.connection_string {
        return parse_connection_string(cs)
            .map(Some)
            .map_err(|m| ("AzureWebJobsStorage", m));
    }
    let endpoint = match (raw.blob_service_uri, raw.account_name) {
        (Some(uri), _) => {
            endpoint_url(uri).map_err(|m| ("AzureWebJobsStorage__blobServiceUri", m))?
        }
        (None, Some(name)) => {
            check_account_name(name).map_err(|m| ("AzureWebJobsStorage__accountName", m))?;
            endpoint_url(&format!("https://{name}.blob.core.windows.net"))
                .map_err(|m| ("AzureWebJobsStorage__accountName", m))?
        }
        (None, None) => {
            if raw.credential.is_some() || raw.client_id.is_some() {
                return Err(("AzureWebJobsStorage__accountName", "is needed (or AzureWebJobsStorage__blobServiceUri) when AzureWebJobsStorage__credential or __clientId is set".into()));
            }
            return Ok(None);
        }
    };
    if let Some(c) = raw.credential {
        if !c.eq_ignore_ascii_case("managedidentity") {
            return Err((
                "AzureWebJobsStorage__credential",
                format!("'{c}' is not supported: the Functions host knows only managedidentity"),
            ));
        }
    }
    if endpoint.scheme() != "https" {
        return Err((
            "AzureWebJobsStorage__blobServiceUri",
            "must be https: an Entra ID token is never sent in plain http".into(),
        ));
    }
    let warning = check_token_host(&endpoint, raw.trusted_host)?;
    Ok(Some(StorageSettings {
        blob_endpoint: endpoint,
        auth: StorageAuth::Identity {
            client_id: raw.client_id.map(str::to_string),
        },
        form: if raw.client_id.is_some() {
            "identity-based, user-assigned managed identity"
        } else {
            "identity-based"
        },
        warning,
    }))
}

fn is_azure_blob_host(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    AZURE_BLOB_SUFFIXES
        .iter()
        .any(|s| host.len() > s.len() && host.ends_with(s))
}

/// Where the identity form may send its token: Azure Storage's blob endpoints and this
/// machine; another host only when `RotationLeaseStorageHost` names it (then a warning).
fn check_token_host(
    endpoint: &Url,
    trusted: Option<&str>,
) -> Result<Option<String>, (&'static str, String)> {
    let host = endpoint.host_str().unwrap_or_default();
    let trusted = trusted.map(str::trim).filter(|t| !t.is_empty());
    if is_azure_blob_host(host) || crate::net::is_loopback(endpoint) {
        return Ok(None);
    }
    match trusted {
        Some(t) if t.eq_ignore_ascii_case(host) => Ok(Some(format!(
            "AzureWebJobsStorage__blobServiceUri: the lease store's Entra ID token (good on every storage account the identity reaches) is sent to {host}, which is not an Azure Storage blob endpoint; RotationLeaseStorageHost trusts it"
        ))),
        Some(t) => Err((
            "RotationLeaseStorageHost",
            format!("names '{t}', but the host of AzureWebJobsStorage__blobServiceUri is {host}"),
        )),
        None => Err((
            "AzureWebJobsStorage__blobServiceUri",
            format!(
                "{host} is not an Azure Storage blob endpoint (*{}) nor this machine: the lease store's Entra ID token is good on every storage account the identity reaches, so it is not sent there. If you trust {host} (Azure Stack Hub, a custom domain), set RotationLeaseStorageHost={host} in the environment",
                AZURE_BLOB_SUFFIXES.join(", *")
            ),
        )),
    }
}

/// A SAS (or a key's SAS) crosses the network only in https: plain http only to this machine.
fn check_transport(settings: StorageSettings) -> Result<StorageSettings, String> {
    let url = &settings.blob_endpoint;
    if url.scheme() == "https" || crate::net::is_loopback(url) {
        return Ok(settings);
    }
    Err(format!(
        "sends the lease store's shared access signature in plain http to {}: use https (plain http only for an emulator on this machine: 127.0.0.0/8, ::1, localhost)",
        url.host_str().unwrap_or("?")
    ))
}

fn check_account_name(name: &str) -> Result<(), String> {
    if (3..=24).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    {
        Ok(())
    } else {
        Err(format!(
            "'{name}' is not a storage account name (3-24 lowercase letters and digits)"
        ))
    }
}

/// An endpoint URL, normalised to end in `/` so blob paths join under it.
fn endpoint_url(raw: &str) -> Result<Url, String> {
    let mut url = Url::parse(raw.trim()).map_err(|e| format!("'{raw}' is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("'{raw}' is not an http(s) URL"));
    }
    if url.query().is_some() {
        return Err(format!(
            "'{}' carries a query: give a SAS as SharedAccessSignature=",
            crate::azure::reference::origin(&url)
        ));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// A storage connection string (pure), refused when it would send its SAS in plain http off
/// this machine. Keys are case-insensitive; a value may contain `=`.
pub fn parse_connection_string(cs: &str) -> Result<StorageSettings, String> {
    connection_string_fields(cs).and_then(check_transport)
}

fn connection_string_fields(cs: &str) -> Result<StorageSettings, String> {
    let mut fields = std::collections::HashMap::new();
    for part in cs.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = part.split_once('=') else {
            return Err(format!(
                "is not a storage connection string: a part has no '=' (expected Key=Value;…){}",
                // The part could be a key: name only its length.
                format_args!(" ({} characters)", part.len())
            ));
        };
        fields.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let get = |k: &str| fields.get(k).map(String::as_str).filter(|v| !v.is_empty());
    if get("usedevelopmentstorage").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        let base = get("developmentstorageproxyuri").unwrap_or("http://127.0.0.1");
        let mut url = endpoint_url(base)?;
        url.set_port(Some(10000))
            .map_err(|_| format!("'{base}' cannot take a port"))?;
        url.set_path(&format!("/{DEV_ACCOUNT}/"));
        return Ok(StorageSettings {
            blob_endpoint: url,
            auth: StorageAuth::AccountKey {
                account: DEV_ACCOUNT.into(),
                key: SecretString::from(DEV_KEY.to_string()),
            },
            form: "connection string, development storage",
            warning: None,
        });
    }
    let account = get("accountname");
    let explicit = get("blobendpoint").map(endpoint_url).transpose()?;
    if let Some(sas) = get("sharedaccesssignature") {
        let endpoint = match (explicit, account) {
            (Some(e), _) => e,
            (None, Some(a)) => default_endpoint(a, &get)?,
            (None, None) => {
                return Err(
                    "has a SharedAccessSignature but neither BlobEndpoint nor AccountName".into(),
                )
            }
        };
        return Ok(StorageSettings {
            blob_endpoint: endpoint,
            auth: StorageAuth::Sas(SecretString::from(sas.trim_start_matches('?').to_string())),
            form: "connection string, shared access signature",
            warning: None,
        });
    }
    let Some(account) = account else {
        return Err("has no AccountName (nor UseDevelopmentStorage=true)".into());
    };
    let Some(key) = get("accountkey") else {
        return Err(format!(
            "has AccountName={account} but no AccountKey nor SharedAccessSignature: for an identity-based connection, set AzureWebJobsStorage__accountName instead"
        ));
    };
    use base64::Engine;
    if base64::engine::general_purpose::STANDARD
        .decode(key)
        .is_err()
    {
        return Err("its AccountKey is not base64".into());
    }
    let endpoint = match explicit {
        Some(e) => e,
        None => default_endpoint(account, &get)?,
    };
    Ok(StorageSettings {
        blob_endpoint: endpoint,
        auth: StorageAuth::AccountKey {
            account: account.to_string(),
            key: SecretString::from(key.to_string()),
        },
        form: "connection string, account key",
        warning: None,
    })
}

fn default_endpoint<'a>(
    account: &str,
    get: &impl Fn(&str) -> Option<&'a str>,
) -> Result<Url, String> {
    check_account_name(account)?;
    let protocol = get("defaultendpointsprotocol").unwrap_or("https");
    let suffix = get("endpointsuffix").unwrap_or("core.windows.net");
    endpoint_url(&format!("{protocol}://{account}.blob.{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn cs(s: &str) -> StorageSettings {
        parse_connection_string(s).unwrap()
    }

    #[test]
    fn development_storage_is_azurite_with_its_well_known_account() {
        let s = cs("UseDevelopmentStorage=true");
        assert_eq!(
            s.blob_endpoint.as_str(),
            "http://127.0.0.1:10000/devstoreaccount1/"
        );
        assert!(
            matches!(&s.auth, StorageAuth::AccountKey { account, key } if account == DEV_ACCOUNT && key.expose_secret() == DEV_KEY)
        );
    }

    #[test]
    fn an_account_key_string_gets_the_public_cloud_endpoint_or_its_own() {
        let s = cs("DefaultEndpointsProtocol=https;AccountName=stapp01;AccountKey=a2V5PT0=;EndpointSuffix=core.windows.net");
        assert_eq!(
            s.blob_endpoint.as_str(),
            "https://stapp01.blob.core.windows.net/"
        );
        assert!(
            matches!(&s.auth, StorageAuth::AccountKey { key, .. } if key.expose_secret() == "a2V5PT0=")
        );
        let s = cs("accountname=stapp01;ACCOUNTKEY=a2V5PT0=;endpointsuffix=core.chinacloudapi.cn");
        assert_eq!(
            s.blob_endpoint.as_str(),
            "https://stapp01.blob.core.chinacloudapi.cn/"
        );
        let s = cs("AccountName=devstoreaccount1;AccountKey=a2V5PT0=;BlobEndpoint=http://127.0.0.1:41234/devstoreaccount1");
        assert_eq!(
            s.blob_endpoint.as_str(),
            "http://127.0.0.1:41234/devstoreaccount1/"
        );
    }

    #[test]
    fn a_sas_connection_string_keeps_its_signature() {
        let s = cs("BlobEndpoint=https://stapp01.blob.core.windows.net/;SharedAccessSignature=?sv=2022-11-02&sig=abc%3D");
        assert!(
            matches!(&s.auth, StorageAuth::Sas(sas) if sas.expose_secret() == "sv=2022-11-02&sig=abc%3D")
        );
    }

    #[test]
    fn a_broken_connection_string_says_what_is_missing_without_the_key() {
        let e = parse_connection_string("AccountName=stapp01").unwrap_err();
        assert!(e.contains("AccountKey"), "{e}");
        let e = parse_connection_string("AccountKey=c2VjcmV0LWtleQ==").unwrap_err();
        assert!(e.contains("AccountName") && !e.contains("c2VjcmV0"), "{e}");
        let e = parse_connection_string("c2VjcmV0LWtleQ").unwrap_err();
        assert!(!e.contains("c2VjcmV0"), "{e}");
        assert!(parse_connection_string("AccountName=stapp01;AccountKey=not base64!").is_err());
    }

    #[test]
    fn the_identity_form_reads_the_account_name_or_the_blob_uri() {
        let s = parse(Raw {
            account_name: Some("stapp01"),
            ..Default::default()
        })
        .unwrap()
        .unwrap();
        assert_eq!(
            s.blob_endpoint.as_str(),
            "https://stapp01.blob.core.windows.net/"
        );
        assert!(matches!(&s.auth, StorageAuth::Identity { client_id: None }));
        let s = parse(Raw {
            blob_service_uri: Some("https://127.0.0.1:9999/devstoreaccount1"),
            account_name: Some("ignored"),
            credential: Some("managedidentity"),
            client_id: Some("00000000-0000-0000-0000-000000000001"),
            ..Default::default()
        })
        .unwrap()
        .unwrap();
        assert_eq!(
            s.blob_endpoint.as_str(),
            "https://127.0.0.1:9999/devstoreaccount1/"
        );
        assert!(matches!(
            &s.auth,
            StorageAuth::Identity { client_id: Some(_) }
        ));
        assert!(s.describe().contains("user-assigned"));
    }

    #[test]
    fn the_connection_string_wins_over_the_identity_form_as_in_the_host() {
        let s = parse(Raw {
            connection_string: Some("UseDevelopmentStorage=true"),
            account_name: Some("stapp01"),
            ..Default::default()
        })
        .unwrap()
        .unwrap();
        assert!(s.form.contains("development storage"));
    }

    #[test]
    fn bad_identity_settings_name_their_setting() {
        let e = parse(Raw {
            account_name: Some("Not_An_Account"),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.0, "AzureWebJobsStorage__accountName");
        let e = parse(Raw {
            account_name: Some("stapp01"),
            credential: Some("clientsecret"),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.0, "AzureWebJobsStorage__credential");
        let e = parse(Raw {
            blob_service_uri: Some("http://stapp01.blob.core.windows.net"),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.0, "AzureWebJobsStorage__blobServiceUri");
        assert!(parse(Raw::default()).unwrap().is_none());
    }

    #[test]
    fn describe_never_shows_the_key() {
        let s = cs("AccountName=stapp01;AccountKey=c2VjcmV0LWtleQ==");
        assert!(!s.describe().contains("c2VjcmV0"));
        assert!(!format!("{s:?}").contains("c2VjcmV0"));
        assert!(s.describe().contains("account stapp01"));
    }

    /// Issue #27, F3: a SAS never crosses the network in plain http; loopback (an emulator) may.
    #[test]
    fn plain_http_off_this_machine_is_refused_naming_the_setting() {
        for refused in [
            "DefaultEndpointsProtocol=http;AccountName=stapp01;AccountKey=a2V5PT0=",
            "AccountName=stapp01;AccountKey=a2V5PT0=;BlobEndpoint=http://10.0.0.5:10000/stapp01",
            "BlobEndpoint=http://stapp01.blob.core.windows.net/;SharedAccessSignature=sv=2022-11-02&sig=abc",
            "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://10.0.0.5",
        ] {
            let e = parse(Raw {
                connection_string: Some(refused),
                ..Default::default()
            })
            .unwrap_err();
            assert_eq!(e.0, "AzureWebJobsStorage", "{refused}");
            assert!(e.1.contains("plain http") && !e.1.contains("a2V5PT0=") && !e.1.contains("sig=abc"), "{}", e.1);
        }
        for allowed in [
            "UseDevelopmentStorage=true",
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5PT0=;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1",
            "AccountName=stapp01;AccountKey=a2V5PT0=;BlobEndpoint=http://localhost:10000/stapp01",
            "DefaultEndpointsProtocol=https;AccountName=stapp01;AccountKey=a2V5PT0=",
        ] {
            assert!(parse_connection_string(allowed).is_ok(), "{allowed}");
        }
    }

    fn identity(
        uri: &str,
        trusted: Option<&str>,
    ) -> Result<StorageSettings, (&'static str, String)> {
        parse(Raw {
            blob_service_uri: Some(uri),
            credential: Some("managedidentity"),
            trusted_host: trusted,
            ..Default::default()
        })
        .map(Option::unwrap)
    }

    /// Issue #27, F3: the identity form's token goes to Azure Storage's blob endpoints (every
    /// cloud) and this machine; another host only when `RotationLeaseStorageHost` names it.
    #[test]
    fn the_identity_token_goes_only_to_azure_storage_this_machine_or_a_host_named_to_trust() {
        for ok in [
            "https://stapp01.blob.core.windows.net",
            "https://stapp01.privatelink.blob.core.windows.net/",
            "https://stapp01.blob.core.usgovcloudapi.net",
            "https://stapp01.blob.core.chinacloudapi.cn",
            "https://stapp01.z17.blob.storage.azure.net",
            "https://STAPP01.BLOB.CORE.WINDOWS.NET",
            "https://127.0.0.1:10000/devstoreaccount1",
            "https://localhost:10000/devstoreaccount1",
        ] {
            let s = identity(ok, None).unwrap_or_else(|e| panic!("{ok}: {e:?}"));
            assert!(s.warning.is_none(), "{ok}");
        }
        for refused in [
            "https://collector.example.com",
            "https://blob.core.windows.net",
            "https://stapp01.blob.core.windows.net.example.com",
            "https://stapp01.blob.core.cloudapi.de",
            "https://evil-blob.core.windows.net.attacker.io",
        ] {
            let e = identity(refused, None).unwrap_err();
            assert_eq!(e.0, "AzureWebJobsStorage__blobServiceUri", "{refused}");
            assert!(e.1.contains("RotationLeaseStorageHost="), "{}", e.1);
        }
        let trusted = identity(
            "https://stapp01.blob.local.azurestack.external",
            Some("stapp01.blob.local.azurestack.external"),
        )
        .unwrap();
        let warning = trusted.warning.unwrap();
        assert!(
            warning.contains("stapp01.blob.local.azurestack.external")
                && warning.contains("RotationLeaseStorageHost"),
            "{warning}"
        );
        let e = identity("https://collector.example.com", Some("other.example.com")).unwrap_err();
        assert_eq!(e.0, "RotationLeaseStorageHost");
    }
}
