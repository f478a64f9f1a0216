//! Which Azure identity the app uses, turned into an `azure_identity` credential.
//!
//! The Azure SDK for Rust 1.x has no `DefaultAzureCredential` (`../shared/PROTOCOL.md` §2), so
//! the choice is made by `settings::azure_identity`: a service principal secret, workload
//! identity, a managed identity when `IDENTITY_ENDPOINT` is set (never otherwise: without it the
//! credential would fall back to IMDS and retry for ~72 s), else the developer's `az`/`azd` login.

use std::sync::Arc;

use anyhow::Context;
use azure_core::credentials::TokenCredential;
use azure_core::http::ClientOptions;
use azure_identity::{
    ClientAssertionCredentialOptions, ClientSecretCredential, ClientSecretCredentialOptions,
    DeveloperToolsCredential, ManagedIdentityCredential, ManagedIdentityCredentialOptions,
    UserAssignedId, WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};
use secrecy::{ExposeSecret, SecretString};

/// Which Azure identity the app uses (for Key Vault, and for Entra ID tokens); the settings
/// choose it.
#[derive(Clone, Debug)]
pub enum AzureIdentity {
    /// `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and `AZURE_CLIENT_SECRET` are all set.
    ClientSecret {
        tenant_id: String,
        client_id: String,
        secret: SecretString,
    },
    /// `AZURE_FEDERATED_TOKEN_FILE` is set (AKS workload identity).
    WorkloadIdentity,
    /// `IDENTITY_ENDPOINT` is set: App Service / Functions managed identity;
    /// `AZURE_CLIENT_ID` selects a user-assigned one.
    ManagedIdentity { client_id: Option<String> },
    /// Otherwise: the developer's `az` / `azd` login.
    Developer,
}

impl AzureIdentity {
    pub fn describe(&self) -> String {
        match self {
            AzureIdentity::ClientSecret { client_id, .. } => {
                format!("service principal {client_id} (AZURE_CLIENT_SECRET)")
            }
            AzureIdentity::ManagedIdentity { client_id: None } => {
                "managed identity (system-assigned)".into()
            }
            AzureIdentity::ManagedIdentity {
                client_id: Some(id),
            } => {
                format!("managed identity (user-assigned, client id {id})")
            }
            AzureIdentity::WorkloadIdentity => "workload identity".into(),
            AzureIdentity::Developer => "developer login (az / azd)".into(),
        }
    }
}

/// The credential for the app's own identity.
pub fn credential(
    identity: &AzureIdentity,
    client_options: ClientOptions,
) -> anyhow::Result<Arc<dyn TokenCredential>> {
    Ok(match identity {
        AzureIdentity::ManagedIdentity { client_id } => {
            ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
                client_options,
            }))
            .context("creating the managed identity credential")?
        }
        AzureIdentity::WorkloadIdentity => {
            WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
                credential_options: ClientAssertionCredentialOptions { client_options },
                ..Default::default()
            }))
            .context("creating the workload identity credential")?
        }
        AzureIdentity::ClientSecret {
            tenant_id,
            client_id,
            secret,
        } => client_secret_credential(tenant_id, client_id, secret, client_options)?,
        AzureIdentity::Developer => DeveloperToolsCredential::new(None)
            .context("creating the developer tools credential (az / azd login)")?,
    })
}

/// A credential for an app registration with a client secret (seed 001's snippet).
pub fn client_secret_credential(
    tenant_id: &str,
    client_id: &str,
    secret: &SecretString,
    client_options: ClientOptions,
) -> anyhow::Result<Arc<dyn TokenCredential>> {
    let credential = ClientSecretCredential::new(
        tenant_id,
        client_id.to_string(),
        secret.expose_secret().to_string().into(),
        Some(ClientSecretCredentialOptions { client_options }),
    )
    .context("creating the client secret credential")?;
    Ok(credential)
}
