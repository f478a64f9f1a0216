//! The rotation lease's store: one blob per target in the Function App's own storage account
//! (container [`CONTAINER`], never the host's `azure-webjobs-hosts`), leased for 15–60 s with
//! the Blob service's "Lease Blob" operation, through the official `azure_storage_blob` crate.
//!
//! Authentication: an Entra ID token for the identity-based form (the crate's own bearer
//! policy), or a SAS — the one given in the connection string, or, from an account key, a
//! service SAS on the lease container alone (read and write, renewed before it expires;
//! [`super::sas`]). Acquiring on a missing blob (404) creates the container (with the account
//! key, a ten-minute account SAS that can create containers and reach no blob, signed only
//! then) and an empty block blob, then acquires again. When a holder
//! finishes it records its outcome in the blob's metadata, then releases; a waiter reads that
//! with the lease state (`Get Blob Properties`). Errors never carry the request URL (it holds
//! the SAS).
//!
//! Called by [`crate::rotation::lease`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use azure_core::error::ErrorKind;
use azure_core::http::{ClientOptions, Etag, RequestContent, Url};
use azure_storage_blob::models::{
    BlobClientAcquireLeaseOptions, BlobClientAcquireLeaseResultHeaders,
    BlobClientGetPropertiesResultHeaders, BlobClientReleaseLeaseOptions,
    BlobClientSetMetadataOptions, BlockBlobClientUploadOptions, LeaseState,
};
use azure_storage_blob::{BlobClient, BlobContainerClient, BlobContainerClientOptions};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use super::sas::{AccountSas, ServiceSas};

/// The container of the lease blobs: ours, apart from the host's.
pub const CONTAINER: &str = "stsbridge-leases";

/// Why a lease operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// No answer: connection refused, DNS, TLS, timeout.
    #[error("the lease store ({endpoint}) could not be reached: {message}")]
    Unreachable { endpoint: String, message: String },
    /// The service answered with an error.
    #[error("the lease store ({endpoint}) refused {op}: HTTP {status} {code}")]
    Refused {
        endpoint: String,
        op: &'static str,
        status: u16,
        code: String,
    },
}

/// A blob's lease as another instance sees it.
#[derive(Clone, Debug, Default)]
pub struct Holder {
    /// Leased right now.
    pub leased: bool,
    /// The last lease ran out without being released (its holder crashed, was killed, or could
    /// not reach storage to release it).
    pub expired: bool,
    /// What the last holder recorded when it finished (see [`LeaseStore::release`]).
    pub metadata: HashMap<String, String>,
}

/// How the lease store authenticates (plain values: the settings' form is mapped by the caller).
pub enum LeaseAuth {
    /// An Entra ID token for `https://storage.azure.com`.
    Token(Arc<dyn TokenCredential>),
    /// A SAS given as is.
    Sas(SecretString),
    /// An account key: short-lived SAS are derived from it.
    AccountKey { account: String, key: SecretString },
}

enum Auth {
    Token(Arc<dyn TokenCredential>),
    Sas(SecretString),
    AccountKey {
        account: String,
        key: SecretString,
        /// The derived SAS and when to derive the next.
        cached: Mutex<Option<(SecretString, DateTime<Utc>)>>,
    },
}

/// The lease store; cheap to share (`Arc`).
pub struct LeaseStore {
    endpoint: Url,
    auth: Auth,
    client_options: ClientOptions,
    /// `RotationLeaseSeconds`.
    pub duration: Duration,
    describe: String,
}

impl std::fmt::Debug for LeaseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseStore")
            .field("store", &self.describe)
            .finish_non_exhaustive()
    }
}

impl LeaseStore {
    /// The Blob service at `endpoint` (ending in `/`), authenticated by `auth`; `describe` is
    /// the line logs and `check` show (never a key). Makes no network call.
    pub fn new(
        endpoint: Url,
        auth: LeaseAuth,
        describe: String,
        client_options: ClientOptions,
        duration: Duration,
    ) -> Self {
        let auth = match auth {
            LeaseAuth::Token(credential) => Auth::Token(credential),
            LeaseAuth::Sas(sas) => Auth::Sas(sas),
            LeaseAuth::AccountKey { account, key } => Auth::AccountKey {
                account,
                key,
                cached: Mutex::default(),
            },
        };
        Self {
            endpoint,
            auth,
            client_options,
            duration,
            describe,
        }
    }

    /// Where the leases live, for logs and `check` (never the key).
    pub fn describe(&self) -> &str {
        &self.describe
    }

    fn origin(&self) -> String {
        crate::azure::reference::origin(&self.endpoint)
    }

    /// `spr`: https only, unless the endpoint is plain http (which the settings allow only on
    /// this machine: an emulator).
    fn protocol(&self) -> &'static str {
        if self.endpoint.scheme() == "https" {
            "https"
        } else {
            "https,http"
        }
    }

    /// The SAS query for the lease blobs, when the form uses one.
    fn sas(&self) -> Result<Option<SecretString>, LeaseError> {
        match &self.auth {
            Auth::Token(_) => Ok(None),
            Auth::Sas(s) => Ok(Some(s.clone())),
            Auth::AccountKey {
                account,
                key,
                cached,
            } => {
                let now = Utc::now();
                let mut cached = cached.lock().expect("no panics while held");
                if let Some((sas, renew_at)) = cached.as_ref() {
                    if now < *renew_at {
                        return Ok(Some(sas.clone()));
                    }
                }
                let sas = ServiceSas::for_lease(account, CONTAINER, self.protocol(), now)
                    .query(key)
                    .map_err(|message| LeaseError::Unreachable {
                        endpoint: self.origin(),
                        message,
                    })?;
                // Valid for an hour; a new one well before that.
                *cached = Some((sas.clone(), now + chrono::Duration::minutes(30)));
                Ok(Some(sas))
            }
        }
    }

    fn container(&self) -> Result<BlobContainerClient, LeaseError> {
        self.container_with(self.sas()?)
    }

    /// The container's client for Create Container: the lease's service SAS cannot create its
    /// own container, so the account key signs an account SAS for that alone.
    fn container_for_create(&self) -> Result<BlobContainerClient, LeaseError> {
        match &self.auth {
            Auth::AccountKey { account, key, .. } => {
                let sas = AccountSas::for_creating_containers(account, self.protocol(), Utc::now())
                    .query(key)
                    .map_err(|message| LeaseError::Unreachable {
                        endpoint: self.origin(),
                        message,
                    })?;
                self.container_with(Some(sas))
            }
            _ => self.container(),
        }
    }

    fn container_with(&self, sas: Option<SecretString>) -> Result<BlobContainerClient, LeaseError> {
        let mut url = self
            .endpoint
            .join(&format!("{CONTAINER}/"))
            .expect("a static path joins");
        // The crate takes the URL as is: no trailing slash on a container.
        let path = url.path().trim_end_matches('/').to_string();
        url.set_path(&path);
        if let Some(sas) = sas {
            url.set_query(Some(sas.expose_secret()));
        }
        let credential = match &self.auth {
            Auth::Token(c) => Some(c.clone()),
            _ => None,
        };
        BlobContainerClient::new(
            url,
            credential,
            Some(BlobContainerClientOptions {
                client_options: self.client_options.clone(),
                ..Default::default()
            }),
        )
        .map_err(|e| self.error("create a client", e))
    }

    fn blob(&self, name: &str) -> Result<BlobClient, LeaseError> {
        Ok(self.container()?.blob_client(name))
    }

    /// Maps an SDK error without its URL (which may carry the SAS).
    fn error(&self, op: &'static str, e: azure_core::Error) -> LeaseError {
        match e.kind() {
            ErrorKind::HttpResponse {
                status, error_code, ..
            } => LeaseError::Refused {
                endpoint: self.origin(),
                op,
                status: u16::from(*status),
                code: error_code.clone().unwrap_or_default(),
            },
            kind => LeaseError::Unreachable {
                endpoint: self.origin(),
                message: format!("{op}: {}", redact(&format!("{kind:?}: {e}"))),
            },
        }
    }

    /// Tries to take the lease on blob `name`: `Some(lease id)`, or `None` when another holds
    /// it. Creates the container and the blob when they are missing.
    pub async fn acquire(&self, name: &str) -> Result<Option<String>, LeaseError> {
        let blob = self.blob(name)?;
        let proposed = uuid::Uuid::new_v4().to_string();
        for attempt in 0..3 {
            let options = BlobClientAcquireLeaseOptions {
                // Our own id, so a retried acquire that had in fact succeeded succeeds again.
                proposed_lease_id: Some(proposed.clone()),
                ..Default::default()
            };
            match blob
                .acquire_lease(self.duration.as_secs() as i32, Some(options))
                .await
            {
                Ok(r) => {
                    let id = r
                        .lease_id()
                        .ok()
                        .flatten()
                        .unwrap_or_else(|| proposed.clone());
                    return Ok(Some(id));
                }
                Err(e) => match self.error("acquiring the lease", e) {
                    LeaseError::Refused { status: 409, .. } => return Ok(None),
                    LeaseError::Refused {
                        status: 404, code, ..
                    } if attempt < 2 => self.create(&blob, &code).await?,
                    other => return Err(other),
                },
            }
        }
        unreachable!("the third attempt returns")
    }

    /// Creates what a 404 said is missing: the container (`ContainerNotFound`), then an empty
    /// blob (only when none exists: another instance may have made and leased it meanwhile).
    async fn create(&self, blob: &BlobClient, code: &str) -> Result<(), LeaseError> {
        if code == "ContainerNotFound" {
            match self.container_for_create()?.create(None).await {
                Ok(_) => {}
                Err(e) => match self.error("creating the lease container", e) {
                    LeaseError::Refused { status: 409, .. } => {}
                    other => return Err(other),
                },
            }
        }
        let options = BlockBlobClientUploadOptions {
            if_none_match: Some(Etag::from("*")),
            ..Default::default()
        };
        match blob
            .block_blob_client()
            .upload(RequestContent::from(Vec::<u8>::new()), Some(options))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match self.error("creating the lease blob", e) {
                LeaseError::Refused {
                    status: 409 | 412, ..
                } => Ok(()),
                other => Err(other),
            },
        }
    }

    /// Renews a lease this process holds.
    pub async fn renew(&self, name: &str, lease_id: &str) -> Result<(), LeaseError> {
        self.blob(name)?
            .renew_lease(lease_id.to_string(), None)
            .await
            .map(|_| ())
            .map_err(|e| self.error("renewing the lease", e))
    }

    /// Records the holder's outcome in the blob's metadata, then releases the lease.
    pub async fn release(
        &self,
        name: &str,
        lease_id: &str,
        outcome: &HashMap<String, String>,
    ) -> Result<(), LeaseError> {
        let blob = self.blob(name)?;
        let options = BlobClientSetMetadataOptions {
            lease_id: Some(lease_id.to_string()),
            ..Default::default()
        };
        let recorded = blob
            .set_metadata(outcome, Some(options))
            .await
            .map_err(|e| self.error("recording the outcome", e));
        let released = blob
            .release_lease(
                lease_id.to_string(),
                Some(BlobClientReleaseLeaseOptions::default()),
            )
            .await
            .map(|_| ())
            .map_err(|e| self.error("releasing the lease", e));
        recorded.and(released)
    }

    /// The lease's state and the last holder's outcome.
    pub async fn holder(&self, name: &str) -> Result<Holder, LeaseError> {
        let r = self
            .blob(name)?
            .get_properties(None)
            .await
            .map_err(|e| self.error("reading the lease", e))?;
        Ok(Holder {
            leased: matches!(r.lease_state().ok().flatten(), Some(LeaseState::Leased)),
            expired: matches!(r.lease_state().ok().flatten(), Some(LeaseState::Expired)),
            metadata: r.metadata().unwrap_or_default(),
        })
    }
}

/// Cuts every `sig=` value out of a text (an SDK message may quote the request URL).
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("sig=") {
        out.push_str(&rest[..i + 4]);
        out.push_str("REDACTED");
        let tail = &rest[i + 4..];
        let end = tail
            .find(|c: char| c == '&' || c.is_whitespace() || c == '"' || c == '\'')
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_cut_out_of_messages() {
        assert_eq!(
            redact("PUT http://h/c/b?sv=1&sig=abc%2F%3D&comp=lease failed"),
            "PUT http://h/c/b?sv=1&sig=REDACTED&comp=lease failed"
        );
        assert_eq!(redact("sig=x"), "sig=REDACTED");
        assert_eq!(redact("nothing"), "nothing");
    }

    /// What `rotation::clients` makes of the settings.
    fn store_for(settings: &crate::settings::storage::StorageSettings) -> LeaseStore {
        use crate::settings::storage::StorageAuth;
        let auth = match &settings.auth {
            StorageAuth::Identity { .. } => {
                LeaseAuth::Token(azure_identity::DeveloperToolsCredential::new(None).unwrap())
            }
            StorageAuth::Sas(sas) => LeaseAuth::Sas(sas.clone()),
            StorageAuth::AccountKey { account, key } => LeaseAuth::AccountKey {
                account: account.clone(),
                key: key.clone(),
            },
        };
        LeaseStore::new(
            settings.blob_endpoint.clone(),
            auth,
            settings.describe(),
            ClientOptions::default(),
            Duration::from_secs(20),
        )
    }

    /// The identity form's requests: the crate's bearer policy for
    /// `https://storage.azure.com/.default` and no SAS in the URL.
    #[test]
    fn the_identity_form_sends_no_sas_and_needs_https() {
        let settings = crate::settings::storage::parse(crate::settings::storage::Raw {
            account_name: Some("stapp01"),
            ..Default::default()
        })
        .unwrap()
        .unwrap();
        let store = store_for(&settings);
        let blob = store
            .blob("kv.vault.azure.net-AwsSessionCredentials")
            .unwrap();
        assert_eq!(
            blob.url().as_str(),
            "https://stapp01.blob.core.windows.net/stsbridge-leases/kv.vault.azure.net-AwsSessionCredentials"
        );
        assert!(store.sas().unwrap().is_none());
    }

    /// The account-key form signs a service SAS on the lease container (read, write) for the
    /// lease blobs, and an account SAS that reaches containers only for creating it (issue #27,
    /// F3: before, one account SAS with read, write and create on every container and blob).
    #[test]
    fn an_account_key_signs_a_sas_for_the_lease_container_only() {
        let settings = crate::settings::storage::parse_connection_string(
            "DefaultEndpointsProtocol=https;AccountName=stapp01;AccountKey=a2V5PT0=",
        )
        .unwrap();
        let store = store_for(&settings);
        let params = |url: &Url| -> HashMap<String, String> {
            url.query_pairs()
                .filter(|(k, _)| k != "sig")
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        };
        let blob = store.blob("b").unwrap();
        let lease = params(blob.url());
        assert_eq!(lease.get("sr").map(String::as_str), Some("c"), "{lease:?}");
        assert_eq!(lease.get("sp").map(String::as_str), Some("rw"), "{lease:?}");
        assert_eq!(lease.get("spr").map(String::as_str), Some("https"));
        assert!(
            !lease.contains_key("srt") && !lease.contains_key("ss"),
            "{lease:?}"
        );
        assert_eq!(blob.url().path(), "/stsbridge-leases/b");
        let create = params(store.container_for_create().unwrap().url());
        assert_eq!(
            create.get("srt").map(String::as_str),
            Some("c"),
            "{create:?}"
        );
        assert_eq!(
            create.get("sp").map(String::as_str),
            Some("w"),
            "{create:?}"
        );
        assert_eq!(create.get("ss").map(String::as_str), Some("b"));
    }
}
