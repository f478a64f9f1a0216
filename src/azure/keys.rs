//! Roles Anywhere mode's side of Key Vault (issue #30): a certificate (its leaf, and which key
//! version is its own), its chain, and the key's `sign` operation, with the official SDK's key and
//! certificate clients (`azure_security_keyvault_keys`/`_certificates` 1.0, the secrets crate's
//! family). The private key never leaves the vault: stsbridge reads the certificate (Key Vault
//! Certificate User) and asks the key to sign a digest (Key Vault Crypto User), and calls nothing
//! that could export it. Each vault's clients are made once, with the same transport, retries,
//! timeouts and challenge check as its secret client ([`Vaults`]).

use std::sync::Arc;

use azure_security_keyvault_certificates::models::CertificateClientGetCertificateOptions;
use azure_security_keyvault_certificates::{CertificateClient, CertificateClientOptions};
use azure_security_keyvault_keys::models::{
    KeyClientSignOptions, SignParameters, SignatureAlgorithm,
};
use azure_security_keyvault_keys::{KeyClient, KeyClientOptions, ResourceId};

use super::keyvault::{
    client_options, map_error_of, sent_again_after_token_race, VaultError, Vaults,
};
use super::reference::CertificateRef;
use crate::certificate::KeyAlgorithm;

/// One vault's key and certificate clients.
#[derive(Clone)]
pub(crate) struct KeyClients {
    keys: Arc<KeyClient>,
    certificates: Arc<CertificateClient>,
}

/// A certificate as Key Vault holds it: the leaf (DER) and the key version that is its own.
#[derive(Clone, Debug)]
pub struct VaultCertificate {
    /// The certificate's version (its key and secret share it).
    pub version: String,
    pub der: Vec<u8>,
    /// The key that signs for it: its name and version (from the certificate's `kid`).
    pub key_name: String,
    pub key_version: String,
}

impl Vaults {
    fn key_clients(&self, vault: &url::Url, what: &str) -> Result<KeyClients, VaultError> {
        let origin = super::reference::origin(vault);
        let mut clients = self.key_clients.lock().expect("no panics while held");
        if let Some(c) = clients.get(&origin) {
            return Ok(c.clone());
        }
        // As for secrets: the challenge check is off only for a vault on this machine.
        let verify = self.options.verify_challenge_resource || !crate::net::is_loopback(vault);
        let keys = KeyClient::new(
            &origin,
            self.credential.clone(),
            Some(KeyClientOptions {
                client_options: client_options(&self.http, &self.options),
                verify_challenge_resource: Some(verify),
                ..Default::default()
            }),
        )
        .map_err(|e| map_error_of("reach", what.to_string(), e))?;
        let certificates = CertificateClient::new(
            &origin,
            self.credential.clone(),
            Some(CertificateClientOptions {
                client_options: client_options(&self.http, &self.options),
                verify_challenge_resource: Some(verify),
                ..Default::default()
            }),
        )
        .map_err(|e| map_error_of("reach", what.to_string(), e))?;
        let made = KeyClients {
            keys: Arc::new(keys),
            certificates: Arc::new(certificates),
        };
        clients.insert(origin, made.clone());
        Ok(made)
    }

    /// Reads a certificate (its pinned version, or the latest): the leaf and its key.
    pub async fn certificate(
        &self,
        certificate: &CertificateRef,
    ) -> Result<VaultCertificate, VaultError> {
        let what = certificate.to_string();
        let clients = self.key_clients(&certificate.vault, &what)?;
        let model = sent_again_after_token_race(|| {
            let options = CertificateClientGetCertificateOptions {
                certificate_version: certificate.version.clone(),
                ..Default::default()
            };
            clients
                .certificates
                .get_certificate(&certificate.name, Some(options))
        })
        .await
        .map_err(|e| map_error_of("read", what.clone(), e))?
        .into_model()
        .map_err(|e| map_error_of("read", what.clone(), e))?;
        let other = |message: &str| VaultError::Other {
            op: "read",
            secret: what.clone(),
            message: message.to_string(),
        };
        let der = model.cer.filter(|c| !c.is_empty()).ok_or_else(|| {
            other("the certificate has no X.509 content yet (is it still pending issuance?)")
        })?;
        let kid: ResourceId = model
            .kid
            .as_deref()
            .unwrap_or_default()
            .parse()
            .map_err(|_| other("the certificate names no key (kid)"))?;
        let key_version = kid
            .version
            .ok_or_else(|| other("the certificate's kid has no version"))?;
        Ok(VaultCertificate {
            version: key_version.clone(),
            der,
            key_name: kid.name,
            key_version,
        })
    }

    /// Signs a SHA-256 digest with the certificate's key: the signature as Key Vault returns it
    /// (RS256: PKCS#1 v1.5; ES256: raw `r‖s`).
    pub async fn sign_digest(
        &self,
        certificate: &CertificateRef,
        key: &VaultCertificate,
        algorithm: KeyAlgorithm,
        digest: &[u8; 32],
    ) -> Result<Vec<u8>, VaultError> {
        let what = format!(
            "{}/keys/{}/{}",
            certificate.vault_origin(),
            key.key_name,
            key.key_version
        );
        let clients = self.key_clients(&certificate.vault, &what)?;
        let parameters = SignParameters {
            algorithm: Some(match algorithm {
                KeyAlgorithm::Rsa => SignatureAlgorithm::Rs256,
                KeyAlgorithm::EcdsaP256 => SignatureAlgorithm::Es256,
            }),
            value: Some(digest.to_vec()),
        };
        let result = sent_again_after_token_race(|| async {
            let options = KeyClientSignOptions {
                key_version: Some(key.key_version.clone()),
                ..Default::default()
            };
            clients
                .keys
                .sign(&key.key_name, parameters.clone().try_into()?, Some(options))
                .await
        })
        .await
        .map_err(|e| map_error_of("sign with", what.clone(), e))?
        .into_model()
        .map_err(|e| map_error_of("sign with", what.clone(), e))?;
        result
            .result
            .filter(|s| !s.is_empty())
            .ok_or(VaultError::Other {
                op: "sign with",
                secret: what,
                message: "Key Vault returned no signature".into(),
            })
    }
}
