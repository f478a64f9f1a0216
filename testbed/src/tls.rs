//! A throw-away certificate authority and a leaf certificate for the local Key Vault.
//!
//! Generated at start with `rcgen`; the CA is written to a PEM file so clients trust it through
//! `SSL_CERT_FILE` (the Azure SDK's default transport reads it), exactly as a corporate TLS proxy
//! would be trusted. Nothing here is ever persisted beyond the test bed's own directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

/// A CA, the leaf it signed, and the server-side TLS configuration built from them.
pub struct Tls {
    pub ca_pem: String,
    pub ca_file: PathBuf,
    /// The leaf certificate and its key as PEM files (`dir/leaf.pem`, `dir/leaf-key.pem`), for
    /// servers that read them from files (Azurite's `--cert`/`--key`).
    pub leaf_file: PathBuf,
    pub leaf_key_file: PathBuf,
    pub server_config: Arc<rustls::ServerConfig>,
}

impl Tls {
    /// Creates a CA and a leaf valid for `localhost`, `127.0.0.1` and every name in `extra_names`,
    /// and writes the CA to `dir/ca.pem`.
    pub fn generate(dir: &Path, extra_names: &[String]) -> anyhow::Result<Self> {
        let ca_key = KeyPair::generate().context("generating the CA key")?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "stsbridge test bed CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = rcgen::Issuer::new(ca_params, ca_key);

        let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        names.extend(extra_names.iter().cloned());
        let leaf_key = KeyPair::generate().context("generating the leaf key")?;
        let mut leaf_params = CertificateParams::new(names)?;
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "stsbridge test bed");
        let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer)?;

        let ca_pem = ca_cert.pem();
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, &ca_pem)
            .with_context(|| format!("writing {}", ca_file.display()))?;

        let leaf_file = dir.join("leaf.pem");
        std::fs::write(&leaf_file, leaf_cert.pem())
            .with_context(|| format!("writing {}", leaf_file.display()))?;
        let leaf_key_file = dir.join("leaf-key.pem");
        std::fs::write(&leaf_key_file, leaf_key.serialize_pem())
            .with_context(|| format!("writing {}", leaf_key_file.display()))?;

        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let key_der = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der())
            .map_err(|e| anyhow::anyhow!("leaf key: {e}"))?;
        let mut server_config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![leaf_cert.der().clone()], key_der)?;
        server_config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            ca_pem,
            ca_file,
            leaf_file,
            leaf_key_file,
            server_config: Arc::new(server_config),
        })
    }
}
