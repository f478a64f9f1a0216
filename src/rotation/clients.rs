//! What every target's [`RotationService`](super::RotationService) shares: one Azure identity,
//! one HTTP connection pool, one Key Vault client and write pacer per vault, and one AWS
//! configuration per region and time budget.

use std::collections::BTreeMap;
use std::sync::Arc;

use azure_core::credentials::TokenCredential;

use crate::azure::keyvault::{VaultOptions, Vaults};
use crate::settings::Settings;

/// The lease store: the app's identity (or the user-assigned one `AzureWebJobsStorage__clientId`
/// names) for the identity-based form; no retries, since a run bounds each lease call and goes on
/// without the lease when storage does not answer.
fn lease_store(
    settings: &Settings,
    storage: &crate::settings::storage::StorageSettings,
    credential: &Arc<dyn TokenCredential>,
    http: &reqwest::Client,
) -> anyhow::Result<crate::azure::lease::LeaseStore> {
    use crate::azure::lease::LeaseAuth;
    use crate::settings::storage::StorageAuth;
    let options = azure_core::http::ClientOptions {
        transport: Some(azure_core::http::Transport::new(Arc::new(http.clone()))),
        retry: azure_core::http::RetryOptions::none(),
        ..Default::default()
    };
    let credential = match &storage.auth {
        StorageAuth::Identity {
            client_id: Some(id),
        } => crate::azure::identity::credential(
            &crate::azure::identity::AzureIdentity::ManagedIdentity {
                client_id: Some(id.clone()),
            },
            options.clone(),
        )?,
        _ => credential.clone(),
    };
    let auth = match &storage.auth {
        StorageAuth::Identity { .. } => LeaseAuth::Token(credential),
        StorageAuth::Sas(sas) => LeaseAuth::Sas(sas.clone()),
        StorageAuth::AccountKey { account, key } => LeaseAuth::AccountKey {
            account: account.clone(),
            key: key.clone(),
        },
    };
    Ok(crate::azure::lease::LeaseStore::new(
        storage.blob_endpoint.clone(),
        auth,
        storage.describe(),
        options,
        settings.lease_duration,
    ))
}

/// What every target's service shares.
pub struct Clients {
    pub(super) credential: Arc<dyn TokenCredential>,
    pub(super) client_options: azure_core::http::ClientOptions,
    pub(super) vaults: Arc<Vaults>,
    /// The HTTP client every Azure call shares (Resource Manager's too).
    pub(super) http: reqwest::Client,
    aws: tokio::sync::Mutex<BTreeMap<(String, u64), aws_config::SdkConfig>>,
    /// The rotation lease's store, when `AzureWebJobsStorage` names one.
    pub(super) lease: Option<Arc<crate::azure::lease::LeaseStore>>,
}

impl Clients {
    /// From the app-wide settings (any target's: identity and challenge checks are app-wide);
    /// `writes_per_10s` paces writes per vault (0: no pacing).
    pub fn new(settings: &Settings, writes_per_10s: u32) -> anyhow::Result<Self> {
        let vault_options = VaultOptions {
            verify_challenge_resource: settings.verify_challenge_resource,
            retry_budget: settings.rotation_time_budget / 4,
            ..Default::default()
        };
        let http = crate::azure::keyvault::http_client(vault_options.request_timeout);
        let client_options = crate::azure::keyvault::client_options(&http, &vault_options);
        let credential =
            crate::azure::identity::credential(&settings.identity, client_options.clone())?;
        let vaults = Vaults::new(credential.clone(), vault_options, http.clone())
            .with_write_pacing(writes_per_10s);
        let lease = match &settings.lease_store {
            Some(storage) => Some(Arc::new(lease_store(
                settings,
                storage,
                &credential,
                &http,
            )?)),
            None => None,
        };
        Ok(Self {
            credential,
            client_options,
            vaults: Arc::new(vaults),
            http,
            aws: tokio::sync::Mutex::default(),
            lease,
        })
    }

    /// The Resource Manager client for the consumers' refresh, on the app's own identity.
    pub(super) fn arm(&self, settings: &Settings) -> crate::azure::arm::Arm {
        crate::azure::arm::Arm::new(
            settings.arm_endpoint.clone(),
            self.credential.clone(),
            self.http.clone(),
        )
    }

    /// The AWS configuration for a target's region and time budget, made once.
    pub(super) async fn aws(&self, settings: &Settings) -> aws_config::SdkConfig {
        let budget = settings.rotation_time_budget / 3;
        let key = (settings.region.clone(), budget.as_millis() as u64);
        let mut cache = self.aws.lock().await;
        if let Some(c) = cache.get(&key) {
            return c.clone();
        }
        let config =
            crate::aws::sdk_config(&settings.region, std::time::Duration::from_secs(20), budget)
                .await;
        cache.insert(key, config.clone());
        config
    }
}
