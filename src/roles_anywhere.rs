//! IAM Roles Anywhere with a private key that never leaves Key Vault (issue #30), shared by the
//! rotation's roles-anywhere mode and the consumers' `--roles-anywhere`: the certificate — read
//! from Key Vault once and kept (it changes only when Key Vault renews it: read again every hour,
//! and at once after AWS refused it) — then a `CreateSession` signed by the certificate's key in
//! Key Vault. Every request is signed anew: a signature is never kept.
//!
//! The request and its signing process are [`crate::aws::roles_anywhere`] (pure); the vault's
//! certificate and `sign` are [`crate::azure::keys`]; the leaf's serial, names and validity are
//! [`crate::certificate`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::aws::roles_anywhere::{self, KeyAlgorithm, SessionRequest};
use crate::aws::AwsError;
use crate::azure::keys::VaultCertificate;
use crate::azure::keyvault::{VaultError, Vaults};
use crate::certificate::{pem_certificates, CertificateInfo};
use crate::secrets::MintedCredentials;
use crate::settings::{ChainSource, RolesAnywhereSettings};

/// How long a read certificate is used before it is read again (Key Vault renews a certificate
/// days before it expires; an hour's delay in noticing costs nothing).
const CERTIFICATE_TTL: Duration = Duration::from_secs(3600);

/// The certificate as the signer needs it.
#[derive(Debug)]
pub struct SigningCertificate {
    pub vault: VaultCertificate,
    pub info: CertificateInfo,
    pub algorithm: KeyAlgorithm,
    /// The intermediates, DER, leaf-side first (`X-Amz-X509-Chain`).
    pub chain: Vec<Vec<u8>>,
    read_at: Instant,
}

/// Where a mint failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Reading the certificate or its chain.
    Certificate,
    /// Key Vault's `sign`.
    Sign,
    /// `CreateSession`.
    Session,
}

/// Why a mint failed: what the caller reports, with a hint at what to fix.
#[derive(Clone, Debug)]
pub struct MintError {
    pub stage: Stage,
    /// The setting (or flag) is wrong rather than a service (e.g. a P-384 key, a PKCS#12 chain).
    pub settings: bool,
    /// No answer from a service.
    pub unreachable: bool,
    pub code: String,
    pub message: String,
    pub hint: Option<String>,
}

impl std::fmt::Display for MintError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "; {h}")?;
        }
        Ok(())
    }
}

impl MintError {
    fn settings(message: String) -> Self {
        Self {
            stage: Stage::Certificate,
            settings: true,
            unreachable: false,
            code: "InvalidCertificate".into(),
            message,
            hint: None,
        }
    }

    fn vault(stage: Stage, context: &str, e: &VaultError, hint: &str) -> Self {
        Self {
            stage,
            settings: false,
            unreachable: e.is_unreachable(),
            code: e.code().to_string(),
            message: format!("{context}: {e}"),
            hint: Some(hint.to_string()),
        }
    }
}

/// Mints with one certificate; keeps it between mints.
pub struct RolesAnywhereMinter {
    vaults: Arc<Vaults>,
    http: reqwest::Client,
    pub settings: RolesAnywhereSettings,
    held: Mutex<Option<Arc<SigningCertificate>>>,
}

impl RolesAnywhereMinter {
    pub fn new(
        vaults: Arc<Vaults>,
        http: reqwest::Client,
        settings: RolesAnywhereSettings,
    ) -> Self {
        Self {
            vaults,
            http,
            settings,
            held: Mutex::default(),
        }
    }

    /// The certificate, read when there is none or the one held is an hour old.
    pub async fn certificate(&self) -> Result<Arc<SigningCertificate>, MintError> {
        if let Some(held) = self.held.lock().expect("no panics while held").clone() {
            if held.read_at.elapsed() < CERTIFICATE_TTL {
                return Ok(held);
            }
        }
        let read = Arc::new(self.read_certificate().await?);
        *self.held.lock().expect("no panics while held") = Some(read.clone());
        Ok(read)
    }

    /// Forgets the certificate, so the next mint reads it again (after AWS refused it: it may
    /// have been renewed, or its chain changed).
    fn forget_certificate(&self) {
        *self.held.lock().expect("no panics while held") = None;
    }

    async fn read_certificate(&self) -> Result<SigningCertificate, MintError> {
        let ra = &self.settings;
        let vault = self.vaults.certificate(&ra.certificate).await.map_err(|e| {
            MintError::vault(Stage::Certificate, "reading the certificate (RolesAnywhereCertificate)", &e,
                "the identity needs the Key Vault Certificate User role on the certificate (and Key Vault Crypto User on its key, to sign)")
        })?;
        let info = CertificateInfo::from_der(&vault.der).map_err(|e| {
            MintError::settings(format!("RolesAnywhereCertificate: {}: {e}", ra.certificate))
        })?;
        let algorithm = info.key.clone().map_err(|what| {
            MintError::settings(format!(
                "RolesAnywhereCertificate: {} holds {what}",
                ra.certificate
            ))
        })?;
        let pem = match &ra.chain {
            ChainSource::None => None,
            ChainSource::CertificateSecret => Some(ra.certificate.secret(Some(&vault.version))),
            ChainSource::Secret(secret) => Some(secret.clone()),
        };
        let chain = match pem {
            None => vec![],
            Some(secret) => {
                let stored = self.vaults.get(&secret).await.map_err(|e| {
                    MintError::vault(Stage::Certificate, "reading the certificate's chain (RolesAnywhereChain)", &e,
                        "the identity needs the Key Vault Certificate User role on the certificate (its secret holds the chain), or set RolesAnywhereChain")
                })?;
                if stored.content_type.as_deref() == Some("application/x-pkcs12") {
                    return Err(MintError::settings(format!(
                        "RolesAnywhereChain: {secret} is PKCS#12; create the certificate with content type application/x-pem-file, or name a secret holding the intermediates in PEM, or `none`"
                    )));
                }
                use secrecy::ExposeSecret;
                let all = pem_certificates(stored.value.expose_secret()).map_err(|e| {
                    MintError::settings(format!("RolesAnywhereChain: {secret}: {e}"))
                })?;
                // The intermediates only: not the leaf itself, and not a self-signed root (the
                // trust anchor holds that).
                all.into_iter()
                    .filter(|der| *der != vault.der)
                    .filter(|der| {
                        CertificateInfo::from_der(der).is_ok_and(|c| c.subject != c.issuer)
                    })
                    .collect()
            }
        };
        Ok(SigningCertificate {
            vault,
            info,
            algorithm,
            chain,
            read_at: Instant::now(),
        })
    }

    /// `CreateSession` for `duration_secs`, signed by the certificate's key in Key Vault.
    pub async fn mint(&self, duration_secs: u64) -> Result<MintedCredentials, MintError> {
        let ra = &self.settings;
        let certificate = self.certificate().await?;
        // No check of the certificate's validity here: AWS (and the vault, for its key) is the
        // judge, on its own clock; a refusal's hint says when the certificate is out of date.
        let now = Utc::now();
        let outside_validity =
            now < certificate.info.not_before || certificate.info.not_after < now;
        let unsigned = roles_anywhere::prepare(
            &SessionRequest {
                endpoint: &ra.endpoint,
                region: &ra.region,
                trust_anchor_arn: &ra.trust_anchor_arn,
                profile_arn: &ra.profile_arn,
                role_arn: &ra.role.arn,
                duration_secs,
                role_session_name: ra.role_session_name.as_deref(),
                certificate: &certificate.vault.der,
                chain: &certificate.chain,
                serial: &certificate.info.serial,
                algorithm: certificate.algorithm,
            },
            now,
        );
        let raw = self
            .vaults
            .sign_digest(
                &ra.certificate,
                &certificate.vault,
                certificate.algorithm,
                &unsigned.digest(),
            )
            .await
            .map_err(|e| {
                let hint = match outside_validity {
                    true => "the certificate (and so its key) is outside its validity: renew it in Key Vault",
                    false => "the identity needs the Key Vault Crypto User role on the certificate's key (sign)",
                };
                MintError::vault(Stage::Sign, "signing the Roles Anywhere request with the certificate's key", &e, hint)
            })?;
        let signature = match certificate.algorithm {
            KeyAlgorithm::Rsa => raw,
            KeyAlgorithm::EcdsaP256 => roles_anywhere::ecdsa_der(&raw).map_err(|e| MintError {
                stage: Stage::Sign,
                settings: false,
                unreachable: false,
                code: "UnexpectedSignature".into(),
                message: e.to_string(),
                hint: None,
            })?,
        };
        roles_anywhere::create_session(&self.http, &unsigned, &unsigned.authorization(&signature))
            .await
            .map_err(|e| {
                if matches!(&e, AwsError::Refused { .. }) {
                    self.forget_certificate();
                }
                MintError {
                    stage: Stage::Session,
                    settings: false,
                    unreachable: matches!(e, AwsError::Unreachable { .. }),
                    code: e.code().to_string(),
                    message: e.to_string(),
                    hint: hint(&e, ra, duration_secs, outside_validity),
                }
            })
    }
}

/// Which side to fix, for Roles Anywhere's refusals.
fn hint(
    e: &AwsError,
    ra: &RolesAnywhereSettings,
    duration: u64,
    outside_validity: bool,
) -> Option<String> {
    let AwsError::Refused { message, .. } = e else {
        return None;
    };
    let m = message.to_ascii_lowercase();
    Some(
        if outside_validity
            || m.contains("expired")
            || m.contains("not yet valid")
            || m.contains("validity")
        {
            format!("the certificate {} is outside its validity: renew it in Key Vault (a certificate policy can renew it automatically)", ra.certificate)
        } else if m.contains("untrusted") {
            "the certificate does not chain to a CA of the trust anchor: check RolesAnywhereCertificate, its intermediates (RolesAnywhereChain) and the trust anchor's certificate bundle".into()
        } else if m.contains("signature") {
            "AWS could not verify the signature with the certificate's public key: the certificate's key in Key Vault must be the one that signed (RolesAnywhereCertificate)".into()
        } else if m.contains("expired") || m.contains("not yet valid") || m.contains("validity") {
            format!(
                "the certificate {} is outside its validity: renew it in Key Vault",
                ra.certificate
            )
        } else if m.contains("rolesessionname") {
            "the profile does not accept RoleSessionName: unset it, or set AcceptRoleSessionName on the profile".into()
        } else if m.contains("duration") {
            format!("SessionDurationSeconds ({duration}) is more than the profile (its DurationSeconds) or the role (MaxSessionDuration) allows: lower it or raise theirs")
        } else if m.contains("disabled") {
            "the trust anchor or the profile is disabled (RolesAnywhereTrustAnchorArn, RolesAnywhereProfileArn)".into()
        } else if m.contains("assume role")
            || m.contains("trust policy")
            || m.contains("not authorized")
        {
            "the role's trust policy must allow rolesanywhere.amazonaws.com to sts:AssumeRole, sts:TagSession and sts:SetSourceIdentity (its conditions on the certificate must hold), and the role must be in the profile's roles (RoleArn, RolesAnywhereProfileArn)".into()
        } else {
            return None;
        },
    )
}
