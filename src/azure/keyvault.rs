//! The Key Vault adapter: read, write, list and disable secret versions with the official SDK.
//!
//! One `SecretClient` per vault, made on first use and kept: a client remembers the vault's
//! authentication challenge, so only its first request pays the challenge round trip. Retries
//! of 408/429/5xx and connection errors (honouring `Retry-After`) are the SDK's retry policy,
//! bounded here by count and total time; every request also has a timeout, which the SDK's
//! default transport lacks. Errors become [`VaultError`], built from the status and Key Vault's
//! error code and message only.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use azure_core::error::ErrorKind;
use azure_core::http::{ClientOptions, ExponentialRetryOptions, RetryOptions, Transport};
use azure_security_keyvault_secrets::models::{
    SecretAttributes, SecretClientGetSecretOptions, SecretClientUpdateSecretPropertiesOptions,
    SetSecretParameters, UpdateSecretPropertiesParameters,
};
use azure_security_keyvault_secrets::{ResourceExt, SecretClient, SecretClientOptions};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use secrecy::{ExposeSecret, SecretString};

use crate::azure::reference::SecretRef;

/// Why Key Vault did not do what we asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VaultError {
    /// The vault answered with an error (`code` is Key Vault's, e.g. `SecretNotFound`).
    #[error("Key Vault refused to {op} {secret}: {status} {code}: {message}")]
    Refused {
        op: &'static str,
        secret: String,
        status: u16,
        code: String,
        message: String,
    },
    /// No answer (connection refused, DNS, TLS, timeout), after retries.
    #[error("Key Vault unreachable to {op} {secret}: {message}")]
    Unreachable {
        op: &'static str,
        secret: String,
        message: String,
    },
    /// Anything else (a token that could not be had, an answer that could not be read).
    #[error("could not {op} {secret}: {message}")]
    Other {
        op: &'static str,
        secret: String,
        message: String,
    },
}

impl VaultError {
    pub fn code(&self) -> &str {
        match self {
            VaultError::Refused { code, .. } => code,
            VaultError::Unreachable { .. } => "Unreachable",
            VaultError::Other { .. } => "KeyVaultError",
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, VaultError::Refused { status: 404, .. })
    }

    pub fn is_unreachable(&self) -> bool {
        matches!(self, VaultError::Unreachable { .. })
    }
}

/// A secret version as read, value included.
#[derive(Debug, Clone)]
pub struct StoredSecret {
    pub value: SecretString,
    pub version: String,
    pub tags: BTreeMap<String, String>,
    pub content_type: Option<String>,
    pub expires: Option<DateTime<Utc>>,
    /// When this version was written (the vault's clock).
    pub created: Option<DateTime<Utc>>,
}

/// A version's metadata, from a listing (no value).
#[derive(Debug, Clone)]
pub struct VersionInfo {
    pub version: String,
    pub enabled: bool,
    pub created: Option<DateTime<Utc>>,
    pub expires: Option<DateTime<Utc>>,
    pub tags: BTreeMap<String, String>,
}

/// What to write with a new version.
pub struct NewVersion<'a> {
    pub value: &'a SecretString,
    pub content_type: &'a str,
    pub tags: &'a BTreeMap<String, String>,
    pub expires: Option<DateTime<Utc>>,
}

/// How the clients behave.
#[derive(Clone, Debug)]
pub struct VaultOptions {
    pub verify_challenge_resource: bool,
    pub request_timeout: Duration,
    pub max_retries: u32,
    pub retry_budget: Duration,
}

impl Default for VaultOptions {
    fn default() -> Self {
        Self {
            verify_challenge_resource: true,
            request_timeout: Duration::from_secs(20),
            max_retries: 4,
            retry_budget: Duration::from_secs(30),
        }
    }
}

/// Clients for every vault the settings name, sharing one identity.
pub struct Vaults {
    pub(super) credential: Arc<dyn TokenCredential>,
    pub(super) options: VaultOptions,
    pub(super) http: reqwest::Client,
    clients: Mutex<HashMap<String, Arc<SecretClient>>>,
    /// The key and certificate clients of each vault (Roles Anywhere mode: [`super::keys`]).
    pub(super) key_clients: Mutex<HashMap<String, super::keys::KeyClients>>,
    pacer: WritePacer,
}

/// Paces writes to each vault so that no 10-second window holds more than the allowed number
/// (`KeyVaultWritesPer10Seconds`): Key Vault throttles per vault, and many targets sharing one
/// vault would otherwise hit 429 in bursts. A generic cell rate algorithm per vault: a burst of
/// up to [`WRITE_BURST`] writes goes at once (so one target's four concurrent writes never wait),
/// and beyond it writes are spaced so that burst plus spacing stays within the limit in any
/// window. Each write reserves its slot and sleeps until it.
///
/// Hand-written rather than a rate-limiting crate: the algorithm is [`gcra_slot`] below, a pure
/// function with its window bound checked by a unit test.
#[derive(Debug, Default)]
pub struct WritePacer {
    /// `(interval between writes, burst tolerance)`; `None`: unpaced.
    rate: Option<(Duration, Duration)>,
    tat: Mutex<HashMap<String, tokio::time::Instant>>,
}

/// Writes that may go at once before pacing starts (capped at a tenth of the limit).
pub const WRITE_BURST: u32 = 16;

/// The slot of the next write given the vault's theoretical arrival time `tat`: returns the
/// slot and the new `tat` (virtual-scheduling GCRA).
pub fn gcra_slot<T>(now: T, tat: Option<T>, interval: Duration, tolerance: Duration) -> (T, T)
where
    T: Copy + Ord + std::ops::Add<Duration, Output = T> + std::ops::Sub<Duration, Output = T>,
{
    let tat = tat.unwrap_or(now).max(now);
    let earliest = tat - tolerance;
    let slot = if earliest > now { earliest } else { now };
    (slot, tat + interval)
}

impl WritePacer {
    /// `per_10s` writes per vault per 10 s; 0 turns pacing off.
    pub fn new(per_10s: u32) -> Self {
        let rate = (per_10s > 0).then(|| {
            let burst = WRITE_BURST.min(per_10s / 10).max(1);
            // The burst is taken out of the window's budget; the rest is spread evenly, rounded
            // up so that the bound holds exactly.
            let interval =
                Duration::from_secs(10) / (per_10s - burst + 1) + Duration::from_nanos(1);
            (interval, interval * (burst - 1))
        });
        Self {
            rate,
            tat: Mutex::default(),
        }
    }

    /// Waits for this vault's next write slot.
    pub async fn wait(&self, vault: &str) {
        let Some((interval, tolerance)) = self.rate else {
            return;
        };
        let slot = {
            let mut tat = self.tat.lock().expect("no panics while held");
            let now = tokio::time::Instant::now();
            let (slot, next) = gcra_slot(now, tat.get(vault).copied(), interval, tolerance);
            tat.insert(vault.to_string(), next);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

impl std::fmt::Debug for Vaults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vaults")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Client options shared by Key Vault and identity clients: a transport with timeouts and a
/// bounded retry policy.
pub fn client_options(http: &reqwest::Client, options: &VaultOptions) -> ClientOptions {
    ClientOptions {
        transport: Some(Transport::new(Arc::new(http.clone()))),
        retry: RetryOptions::exponential(ExponentialRetryOptions {
            initial_delay: azure_core::time::Duration::milliseconds(200),
            max_retries: options.max_retries,
            max_total_elapsed: azure_core::time::Duration::try_from(options.retry_budget)
                .unwrap_or(azure_core::time::Duration::seconds(30)),
            max_delay: azure_core::time::Duration::seconds(10),
        }),
        ..Default::default()
    }
}

/// The HTTP client every Azure call goes through.
pub fn http_client(request_timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(request_timeout)
        .build()
        .expect("a reqwest client with rustls always builds")
}

impl Vaults {
    pub fn new(
        credential: Arc<dyn TokenCredential>,
        options: VaultOptions,
        http: reqwest::Client,
    ) -> Self {
        Self {
            credential,
            options,
            http,
            clients: Mutex::default(),
            key_clients: Mutex::default(),
            pacer: WritePacer::default(),
        }
    }

    /// Paces writes to each vault (see [`WritePacer`]).
    pub fn with_write_pacing(mut self, per_10s: u32) -> Self {
        self.pacer = WritePacer::new(per_10s);
        self
    }

    fn client(&self, secret: &SecretRef) -> Result<Arc<SecretClient>, VaultError> {
        let origin = secret.vault_origin();
        let mut clients = self.clients.lock().expect("no panics while held");
        if let Some(c) = clients.get(&origin) {
            return Ok(c.clone());
        }
        let options = SecretClientOptions {
            client_options: client_options(&self.http, &self.options),
            // The check is turned off only for a vault on this machine, whatever the options
            // say (issue #15 L2; settings refuse the combination before it gets here).
            verify_challenge_resource: Some(
                self.options.verify_challenge_resource || !crate::net::is_loopback(&secret.vault),
            ),
            ..Default::default()
        };
        let client = SecretClient::new(&origin, self.credential.clone(), Some(options))
            .map_err(|e| map_error("reach", secret, e))?;
        let client = Arc::new(client);
        clients.insert(origin, client.clone());
        Ok(client)
    }

    /// Reads a secret (its pinned version, or the latest).
    pub async fn get(&self, secret: &SecretRef) -> Result<StoredSecret, VaultError> {
        let client = self.client(secret)?;
        let model = sent_again_after_token_race(|| {
            let options = SecretClientGetSecretOptions {
                secret_version: secret.version.clone(),
                ..Default::default()
            };
            client.get_secret(&secret.name, Some(options))
        })
        .await
        .map_err(|e| map_error("read", secret, e))?
        .into_model()
        .map_err(|e| map_error("read", secret, e))?;
        let version = model
            .resource_id()
            .ok()
            .and_then(|r| r.version)
            .unwrap_or_default();
        let attributes = model.attributes.unwrap_or_default();
        Ok(StoredSecret {
            value: SecretString::from(model.value.unwrap_or_default()),
            version,
            tags: model.tags.unwrap_or_default().into_iter().collect(),
            content_type: model.content_type,
            expires: attributes.expires.and_then(to_chrono),
            created: attributes.created.and_then(to_chrono),
        })
    }

    /// Reads a secret, mapping "not found" to `None`.
    pub async fn get_optional(
        &self,
        secret: &SecretRef,
    ) -> Result<Option<StoredSecret>, VaultError> {
        match self.get(secret).await {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes a new version; returns its version id.
    pub async fn set(&self, secret: &SecretRef, new: NewVersion<'_>) -> Result<String, VaultError> {
        let client = self.client(secret)?;
        self.pacer.wait(&secret.vault_origin()).await;
        let parameters = SetSecretParameters {
            value: Some(new.value.expose_secret().to_string()),
            content_type: Some(new.content_type.to_string()),
            tags: Some(new.tags.clone().into_iter().collect()),
            secret_attributes: Some(SecretAttributes {
                enabled: Some(true),
                expires: new.expires.and_then(to_offset),
                ..Default::default()
            }),
        };
        let model = sent_again_after_token_race(|| async {
            client
                .set_secret(&secret.name, parameters.clone().try_into()?, None)
                .await
        })
        .await
        .map_err(|e| map_error("write", secret, e))?
        .into_model()
        .map_err(|e| map_error("write", secret, e))?;
        Ok(model
            .resource_id()
            .ok()
            .and_then(|r| r.version)
            .unwrap_or_default())
    }

    /// Lists every version's metadata (no values), newest first.
    pub async fn versions(&self, secret: &SecretRef) -> Result<Vec<VersionInfo>, VaultError> {
        let mut out = Vec::new();
        self.each_version(secret, |v| out.push(v)).await?;
        out.sort_by_key(|v| std::cmp::Reverse(v.created));
        Ok(out)
    }

    /// Visits every version's metadata (no values) in the vault's order, page by page, without
    /// holding the whole list: a secret rotated hourly has thousands of versions after a year.
    pub async fn each_version(
        &self,
        secret: &SecretRef,
        mut visit: impl FnMut(VersionInfo),
    ) -> Result<(), VaultError> {
        let client = self.client(secret)?;
        let mut pager = client
            .list_secret_properties_versions(&secret.name, None)
            .map_err(|e| map_error("list versions of", secret, e))?;
        while let Some(item) = pager
            .try_next()
            .await
            .map_err(|e| map_error("list versions of", secret, e))?
        {
            let version = item
                .resource_id()
                .ok()
                .and_then(|r| r.version)
                .unwrap_or_default();
            let attributes = item.attributes.unwrap_or_default();
            visit(VersionInfo {
                version,
                enabled: attributes.enabled.unwrap_or(true),
                created: attributes.created.and_then(to_chrono),
                expires: attributes.expires.and_then(to_chrono),
                tags: item.tags.unwrap_or_default().into_iter().collect(),
            });
        }
        Ok(())
    }

    /// Replaces the tags of one version (no new version is created).
    pub async fn update_tags(
        &self,
        secret: &SecretRef,
        version: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), VaultError> {
        let parameters = UpdateSecretPropertiesParameters {
            tags: Some(tags.clone().into_iter().collect()),
            ..Default::default()
        };
        self.update(secret, version, "tag", parameters).await
    }

    /// Disables one version (its value stays, but nobody can read it).
    pub async fn disable(&self, secret: &SecretRef, version: &str) -> Result<(), VaultError> {
        let parameters = UpdateSecretPropertiesParameters {
            secret_attributes: Some(SecretAttributes {
                enabled: Some(false),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.update(secret, version, "disable", parameters).await
    }

    /// Updates one version's properties (a paced write).
    async fn update(
        &self,
        secret: &SecretRef,
        version: &str,
        op: &'static str,
        parameters: UpdateSecretPropertiesParameters,
    ) -> Result<(), VaultError> {
        let client = self.client(secret)?;
        self.pacer.wait(&secret.vault_origin()).await;
        sent_again_after_token_race(|| async {
            let options = SecretClientUpdateSecretPropertiesOptions {
                secret_version: Some(version.to_string()),
                ..Default::default()
            };
            client
                .update_secret_properties(
                    &secret.name,
                    parameters.clone().try_into()?,
                    Some(options),
                )
                .await
        })
        .await
        .map_err(|e| map_error(op, secret, e))?;
        Ok(())
    }
}

fn to_chrono(t: time::OffsetDateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.unix_timestamp(), 0)
}

fn to_offset(t: DateTime<Utc>) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp()).ok()
}

/// What azure_core 1.1's bearer-token policy says when it lost a race with itself: every 401
/// (a new client's first requests all meet the vault's challenge) clears the client's cached
/// token, and a request that had just fetched one can find it gone when it reads it back. That
/// request was not sent again after its challenge, so sending it once more is safe — a write
/// included. Seen in the suite as a rare `KeyVaultError` of one of two targets sharing a vault.
const TOKEN_RACE: &str = "The request failed due to an error while fetching the access token.";

fn is_token_race(error: &azure_core::Error) -> bool {
    if !matches!(error.kind(), ErrorKind::Credential) {
        return false;
    }
    let mut next: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = next {
        if e.to_string() == TOKEN_RACE {
            return true;
        }
        next = e.source();
    }
    false
}

/// Sends a request (made anew by `send` each time) again, up to twice, when it failed only
/// because of [`TOKEN_RACE`].
pub(super) async fn sent_again_after_token_race<T, F, Fut>(mut send: F) -> azure_core::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = azure_core::Result<T>>,
{
    let mut again = 2;
    loop {
        match send().await {
            Err(e) if again > 0 && is_token_race(&e) => {
                again -= 1;
                tracing::debug!(
                    "Key Vault: the SDK lost its token to a concurrent challenge; sending again"
                );
            }
            other => return other,
        }
    }
}

/// Maps an SDK error from its kind, status and Key Vault's code/message (never a body).
fn map_error(op: &'static str, secret: &SecretRef, error: azure_core::Error) -> VaultError {
    map_error_of(op, secret.to_string(), error)
}

/// [`map_error`] for any object of the vault (a secret, a certificate, a key), named by `what`.
pub(super) fn map_error_of(op: &'static str, what: String, error: azure_core::Error) -> VaultError {
    let secret = what;
    match error.kind() {
        ErrorKind::HttpResponse {
            status,
            error_code,
            raw_response,
        } => {
            // The SDK's own parse of the error body borrows its strings, so a message with an
            // escape in it (Key Vault's RBAC denial has `\r\n`) leaves only the status as the
            // code. Read the body ourselves.
            let body = raw_response
                .as_ref()
                .and_then(|r| serde_json::from_slice::<serde_json::Value>(r.body()).ok())
                .unwrap_or_default();
            let body_code = body["error"]["code"].as_str().map(str::to_string);
            let body_message = body["error"]["message"]
                .as_str()
                .map(|m| m.replace("\r\n", " ").replace('\n', " "));
            let inner = body["error"]["innererror"]["code"].as_str();
            let mut message = body_message.unwrap_or_else(|| error.to_string());
            if let Some(inner) = inner {
                message = format!("{message} ({inner})");
            }
            VaultError::Refused {
                op,
                secret,
                status: u16::from(*status),
                code: body_code
                    .or_else(|| error_code.clone())
                    .unwrap_or_else(|| status.to_string()),
                message,
            }
        }
        ErrorKind::Connection | ErrorKind::Io => VaultError::Unreachable {
            op,
            secret,
            message: chain(&error),
        },
        _ => VaultError::Other {
            op,
            secret,
            message: chain(&error),
        },
    }
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod pacer_tests {
    use super::*;
    use std::time::Instant;

    /// 4000 writes asked for at once: in no 10-second window do more than the limit start, and
    /// the whole takes about writes / rate.
    #[test]
    fn no_ten_second_window_holds_more_than_the_limit() {
        for per_10s in [1u32, 7, 40, 300, 4000] {
            let pacer = WritePacer::new(per_10s);
            let (interval, tolerance) = pacer.rate.unwrap();
            let start = Instant::now();
            let mut tat = None;
            let mut slots = vec![];
            for i in 0..4000u32 {
                // Requests arrive in bunches, as concurrent targets make them.
                let now = start + Duration::from_millis(u64::from(i / 50) * 7);
                let (slot, next) = gcra_slot(now, tat, interval, tolerance);
                tat = Some(next);
                slots.push(slot);
            }
            slots.sort();
            let mut lo = 0;
            let mut most = 0;
            for hi in 0..slots.len() {
                while slots[hi].duration_since(slots[lo]) >= Duration::from_secs(10) {
                    lo += 1;
                }
                most = most.max(hi - lo + 1);
            }
            assert!(
                most <= per_10s as usize,
                "{per_10s}: {most} writes in one window"
            );
            if per_10s == 300 {
                let took = slots.last().unwrap().duration_since(start).as_secs_f64();
                assert!(took < 4000.0 / 30.0 * 1.15, "{took} s");
            }
        }
    }

    #[test]
    fn a_single_targets_writes_go_at_once() {
        let (interval, tolerance) = WritePacer::new(300).rate.unwrap();
        let now = Instant::now();
        let mut tat = None;
        for _ in 0..4 {
            let (slot, next) = gcra_slot(now, tat, interval, tolerance);
            assert_eq!(slot, now);
            tat = Some(next);
        }
    }
}

#[cfg(test)]
mod token_race_tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// The error as azure_core 1.1 builds it: the bearer-token policy's, wrapped by the retry
    /// policy's context.
    fn race() -> azure_core::Error {
        azure_core::Error::with_message(ErrorKind::Credential, TOKEN_RACE)
            .with_context("non-transport error occurred which will not be retried")
    }

    #[tokio::test]
    async fn a_request_that_lost_its_token_to_the_race_is_sent_again_at_most_twice() {
        let sent = AtomicU32::new(0);
        let ok = sent_again_after_token_race(|| async {
            match sent.fetch_add(1, Ordering::SeqCst) {
                0 => Err(race()),
                n => Ok(n),
            }
        })
        .await;
        assert_eq!(ok.unwrap(), 1);

        sent.store(0, Ordering::SeqCst);
        let failed: azure_core::Result<()> = sent_again_after_token_race(|| async {
            sent.fetch_add(1, Ordering::SeqCst);
            Err(race())
        })
        .await;
        assert!(is_token_race(&failed.unwrap_err()));
        assert_eq!(sent.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_credential_that_failed_is_not_sent_again() {
        for error in [
            azure_core::Error::with_message(
                ErrorKind::Credential,
                "ManagedIdentityCredential authentication failed",
            ),
            azure_core::Error::with_message(ErrorKind::Other, TOKEN_RACE),
        ] {
            let sent = AtomicU32::new(0);
            let kind = error.kind().clone();
            let mut error = Some(error);
            let out: azure_core::Result<()> = sent_again_after_token_race(|| {
                sent.fetch_add(1, Ordering::SeqCst);
                let e = error.take().expect("sent once");
                async move { Err(e) }
            })
            .await;
            assert_eq!(out.unwrap_err().kind(), &kind);
            assert_eq!(sent.load(Ordering::SeqCst), 1);
        }
    }
}
