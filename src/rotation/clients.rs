//! What every target's [`RotationService`](super::RotationService) shares: one Azure identity,
//! one HTTP connection pool, one Key Vault client and write pacer per vault, and one AWS
//! configuration per region and time budget.

use std::collections::BTreeMap;
use std::sync::Arc;

use azure_core::credentials::TokenCredential;

use crate::azure::keyvault::{VaultOptions, Vaults};
use crate::settings::Settings;

/// What every target's service shares.
pub struct Clients {
    pub(super) credential: Arc<dyn TokenCredential>,
    pub(super) client_options: azure_core::http::ClientOptions,
    pub(super) vaults: Arc<Vaults>,
    /// The HTTP client every Azure call shares (Resource Manager's too).
    pub(super) http: reqwest::Client,
    aws: tokio::sync::Mutex<BTreeMap<(String, u64), aws_config::SdkConfig>>,
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
        Ok(Self {
            credential,
            client_options,
            vaults: Arc::new(vaults),
            http,
            aws: tokio::sync::Mutex::default(),
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
