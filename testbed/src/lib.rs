//! The stsbridge test bed: local servers that speak the real protocols of the three remote
//! systems stsbridge talks to, for tests, the README's local demo and local debugging.
//!
//! # Layout
//! - [`keyvault`]: Key Vault secrets REST over TLS, with the bearer challenge (issue #2); keys
//!   that sign and never leave, and certificates (issue #30).
//! - [`identity`]: the App Service managed-identity endpoint and the token registry Key Vault trusts.
//! - [`sts`]: the STS/IAM Query-API front that forwards to [`moto`] and adds real AWS errors.
//! - [`sso`]: IAM Identity Center's SSO OIDC and portal APIs (device sign-in, role credentials).
//! - [`arm`]: the Resource Manager calls that refresh App Service apps' Key Vault references.
//! - [`storage`]: Azurite, the Azure Storage emulator, as the app's `AzureWebJobsStorage` (only
//!   when [`Options::storage`] asks for it).
//! - [`faults`]: latency, error, throttling and dropped-connection injection for the servers
//!   ([`TestBed::set_latency`] puts one latency on all of them).
//! - [`tls`]: the throw-away CA (trusted by clients through `SSL_CERT_FILE`).
//! - [`serve`]: the accept loop (plain or TLS, able to drop connections).
//! - [`proxy`]: the loopback HTTPS proxy that lets clients reach the vault by a name inside the
//!   challenge resource's domain, so the challenge check runs at its production default.
//! - [`sigv4`]: AWS Signature Version 4, verified as AWS does (the STS front's checks).
//! - [`rolesanywhere`]: IAM Roles Anywhere's `CreateSession` over TLS, verifying the X.509
//!   signature, chain, trust anchor, profile and role trust as AWS does (issue #30), minting
//!   through the STS front.
//! - [`pki`]: test CAs (a root, intermediates) and the leaves they issue; [`x509`]: reading and
//!   checking certificates and chains.
//!
//! [`TestBed::start`] starts everything on free 127.0.0.1 ports, creates an IAM user in moto with
//! an access key, stores that key in the vault under seed 000's names, and hands back the
//! settings a handler needs ([`TestBed::env`]). Dropping the [`TestBed`] stops every server and
//! process and deletes its directory.

pub mod arm;
mod child;
pub mod faults;
pub mod identity;
pub mod keyvault;
pub mod moto;
pub mod pki;
pub mod proxy;
pub mod rolesanywhere;
pub mod serve;
pub mod sigv4;
pub mod sso;
pub mod storage;
pub mod sts;
pub mod tls;
pub mod x509;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use base64::Engine;
use rand::RngExt;

pub use faults::{Fault, Rule};
pub use keyvault::{CertificateOptions, VaultCertificate};
pub use pki::{KeySpec, TestCa, Validity};
pub use rolesanywhere::ProfileOptions;

/// Names of the source secrets, as seed 000 stores them.
pub const SOURCE_KEY_ID_SECRET: &str = "AWS-Access-Key-ID";
pub const SOURCE_SECRET_KEY_SECRET: &str = "AWS-Secret-Access-Key";

/// The IAM user the test bed creates in moto, and its access key.
#[derive(Clone)]
pub struct SourceKeys {
    pub user_name: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for SourceKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceKeys")
            .field("user_name", &self.user_name)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// How to start the test bed.
#[derive(Clone, Debug)]
pub struct Options {
    /// The resource in the Key Vault challenge (and the tokens' audience).
    pub resource: String,
    /// An extra host name the TLS certificate covers (a name under the resource's domain).
    pub vault_host: String,
    /// Where to keep the CA and generated files; a temporary directory when `None`.
    pub dir: Option<PathBuf>,
    /// Start Azurite and set `AzureWebJobsStorage` (the rotation lease's store).
    pub storage: bool,
    /// With `storage`: Azurite over HTTPS with OAuth, and the identity-based settings
    /// (`AzureWebJobsStorage__blobServiceUri`, `__credential`) instead of a connection string.
    pub storage_identity: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            resource: "https://vault.test".into(),
            vault_host: "kv.vault.test".into(),
            dir: None,
            storage: false,
            storage_identity: false,
        }
    }
}

/// Everything running; see the module docs.
pub struct TestBed {
    pub options: Options,
    pub issuer: Arc<identity::TokenIssuer>,
    pub vault: Arc<keyvault::KeyVault>,
    pub sts: Arc<sts::StsFront>,
    pub sso: Arc<sso::SsoFake>,
    pub arm: Arc<arm::ArmFake>,
    /// IAM Roles Anywhere (`AWS_ENDPOINT_URL_ROLESANYWHERE`).
    pub rolesanywhere: Arc<rolesanywhere::RolesAnywhere>,
    pub source: SourceKeys,
    pub ca_file: PathBuf,
    pub moto: moto::Moto,
    /// The loopback HTTPS proxy that tunnels the vault's name (and nothing else) to the vault.
    pub proxy: proxy::Proxy,
    /// Azurite, when [`Options::storage`] asked for it.
    pub storage: Option<storage::Azurite>,
    kv_server: serve::Server,
    identity_server: serve::Server,
    login_server: serve::Server,
    sts_server: serve::Server,
    sso_oidc_server: serve::Server,
    sso_portal_server: serve::Server,
    arm_server: serve::Server,
    rolesanywhere_server: serve::Server,
    _tempdir: Option<tempfile::TempDir>,
}

impl TestBed {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> anyhow::Result<Self> {
        // Key Vault's TLS and the proxy's client both use aws-lc; say so once per process.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let (tempdir, dir) = match &options.dir {
            Some(d) => (None, d.clone()),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("stsbridge-testbed")
                    .tempdir()?;
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        let tls = tls::Tls::generate(&dir, std::slice::from_ref(&options.vault_host))?;
        let issuer = identity::TokenIssuer::new(identity::IdentityConfig::default());
        let vault = keyvault::KeyVault::new(&options.resource, issuer.clone());
        let access = match options.storage_identity {
            true => {
                // Tokens for storage exist in the tenant (Azurite checks their audience).
                issuer.add_audience("https://storage.azure.com");
                storage::Access::Identity {
                    cert: tls.leaf_file.clone(),
                    key: tls.leaf_key_file.clone(),
                }
            }
            false => storage::Access::SharedKey,
        };
        let (moto, storage) = tokio::join!(moto::Moto::start(), async {
            match options.storage {
                true => storage::Azurite::start(access).await.map(Some),
                false => Ok(None),
            }
        });
        let (moto, storage) = (moto?, storage?);
        let sts = sts::StsFront::new(&moto.url);

        let kv_server = serve::Server::bind_and_spawn(
            keyvault::router(vault.clone()),
            Some(tls.server_config.clone()),
        )
        .await?;
        let proxy = proxy::Proxy::start().await?;
        proxy.route(&format!("{}:443", options.vault_host), kv_server.addr);
        let identity_server =
            serve::Server::bind_and_spawn(identity::router(issuer.clone()), None).await?;
        let login_server = serve::Server::bind_and_spawn(
            identity::login_router(issuer.clone()),
            Some(tls.server_config.clone()),
        )
        .await?;
        let sts_server = serve::Server::bind_and_spawn(sts::router(sts.clone()), None).await?;
        let sso = sso::SsoFake::new(sts.clone());
        let sso_oidc_server =
            serve::Server::bind_and_spawn(sso::oidc_router(sso.clone()), None).await?;
        sso.set_verification_base(&format!("http://127.0.0.1:{}", sso_oidc_server.addr.port()));
        let sso_portal_server =
            serve::Server::bind_and_spawn(sso::portal_router(sso.clone()), None).await?;

        let arm = arm::ArmFake::new(issuer.clone(), vault.clone());
        let arm_server = serve::Server::bind_and_spawn(
            arm::router(arm.clone()),
            Some(tls.server_config.clone()),
        )
        .await?;
        arm.set_audience(&format!("https://127.0.0.1:{}", arm_server.addr.port()));
        // Its CAs are made on first use: binding the port is all it costs here.
        let rolesanywhere = rolesanywhere::RolesAnywhere::new(sts.clone(), &moto.url, "us-east-1");
        let rolesanywhere_server = serve::Server::bind_and_spawn(
            rolesanywhere::router(rolesanywhere.clone()),
            Some(tls.server_config.clone()),
        )
        .await?;

        let source = create_iam_user(&moto.url, "stsbridge-minter")
            .await
            .context("creating the IAM user in moto")?;
        sts.register_key(&source.access_key_id, &source.secret_access_key);
        vault.seed(SOURCE_KEY_ID_SECRET, &source.access_key_id, &[]);
        vault.seed(SOURCE_SECRET_KEY_SECRET, &source.secret_access_key, &[]);

        Ok(Self {
            options,
            issuer,
            vault,
            sts,
            sso,
            arm,
            rolesanywhere,
            source,
            ca_file: tls.ca_file,
            moto,
            proxy,
            storage,
            kv_server,
            identity_server,
            login_server,
            sts_server,
            sso_oidc_server,
            sso_portal_server,
            arm_server,
            rolesanywhere_server,
            _tempdir: tempdir,
        })
    }

    /// The vault as the app reaches it: a host name inside the challenge resource's domain on
    /// the default port, like a real vault (`https://kv.vault.test`), through [`TestBed::proxy`]
    /// (the settings of [`TestBed::env`] say so), which tunnels `kv.vault.test:443` to the
    /// vault's loopback port. So the challenge check runs at its production default, and clients
    /// whose check compares the whole authority (the Python SDK's) pass it too.
    pub fn vault_url(&self) -> String {
        format!("https://{}", self.options.vault_host)
    }

    /// The vault under its loopback address (`https://127.0.0.1:PORT`), where the challenge
    /// check cannot pass: only with `KeyVaultVerifyChallengeResource=false`.
    pub fn vault_url_loopback(&self) -> String {
        format!("https://127.0.0.1:{}", self.kv_server.addr.port())
    }

    /// The proxy settings every client of [`TestBed::vault_url`] needs (`HTTPS_PROXY`,
    /// `NO_PROXY`): the vault's name is tunnelled, loopback addresses go direct.
    pub fn proxy_env(&self) -> Vec<(String, String)> {
        vec![
            ("HTTPS_PROXY".into(), self.proxy.url()),
            ("NO_PROXY".into(), "127.0.0.1,localhost,::1".into()),
        ]
    }

    pub fn vault_addr(&self) -> std::net::SocketAddr {
        self.kv_server.addr
    }

    /// `IDENTITY_ENDPOINT`.
    pub fn identity_endpoint(&self) -> String {
        format!(
            "http://127.0.0.1:{}/msi/token",
            self.identity_server.addr.port()
        )
    }

    /// `IDENTITY_HEADER`.
    pub fn identity_header(&self) -> String {
        self.issuer.config.header_secret.clone()
    }

    /// `AZURE_AUTHORITY_HOST`: the Entra ID token endpoint for client-secret apps (TLS).
    pub fn authority_host(&self) -> String {
        format!("https://127.0.0.1:{}", self.login_server.addr.port())
    }

    /// `AWS_ENDPOINT_URL_STS` (and `AWS_ENDPOINT_URL_IAM`).
    pub fn sts_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.sts_server.addr.port())
    }

    /// `AzureResourceManagerEndpoint`: the Resource Manager fake (TLS).
    pub fn arm_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.arm_server.addr.port())
    }

    /// `AWS_ENDPOINT_URL_SSO_OIDC`: the SSO OIDC fake (device sign-in).
    pub fn sso_oidc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.sso_oidc_server.addr.port())
    }

    /// `AWS_ENDPOINT_URL_SSO`: the SSO portal fake (`GetRoleCredentials`).
    pub fn sso_portal_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.sso_portal_server.addr.port())
    }

    /// `AWS_ENDPOINT_URL_ROLESANYWHERE`: IAM Roles Anywhere (TLS, the bed's CA).
    pub fn rolesanywhere_url(&self) -> String {
        format!(
            "https://127.0.0.1:{}",
            self.rolesanywhere_server.addr.port()
        )
    }

    /// The same as `host:port`, the form PyPI `iam-rolesanywhere-session` takes (`endpoint=`).
    pub fn rolesanywhere_endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.rolesanywhere_server.addr.port())
    }

    /// What `stsbridge sso` (and the AWS CLI's SSO support) needs to use the fakes: the two
    /// endpoint overrides every AWS SDK reads.
    pub fn sso_env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT_URL_SSO_OIDC".into(), self.sso_oidc_url()),
            ("AWS_ENDPOINT_URL_SSO".into(), self.sso_portal_url()),
        ]
    }

    /// The settings a handler needs to rotate against this test bed with the source keys read
    /// from the vault by secret URI (the app resolves them itself). The vault is reached by name
    /// through the bed's proxy with the challenge check at its default, on.
    pub fn env(&self) -> Vec<(String, String)> {
        let vault = self.vault_url();
        [
            ("KeyVaultUrl", vault.clone()),
            (
                "UsernameFromKeyVault",
                format!("{vault}/secrets/{SOURCE_KEY_ID_SECRET}"),
            ),
            (
                "PasswordFromKeyVault",
                format!("{vault}/secrets/{SOURCE_SECRET_KEY_SECRET}"),
            ),
            ("AwsRegion", "us-east-1".into()),
            ("AWS_ENDPOINT_URL_STS", self.sts_url()),
            ("AWS_ENDPOINT_URL_IAM", self.sts_url()),
            ("IDENTITY_ENDPOINT", self.identity_endpoint()),
            ("IDENTITY_HEADER", self.identity_header()),
            ("SSL_CERT_FILE", self.ca_file.display().to_string()),
            ("AzureResourceManagerEndpoint", self.arm_url()),
            ("AWS_ENDPOINT_URL_ROLESANYWHERE", self.rolesanywhere_url()),
        ]
        .into_iter()
        .chain(self.storage.iter().flat_map(storage::Azurite::app_settings))
        .map(|(k, v)| (k.to_string(), v))
        .chain(self.proxy_env())
        .collect()
    }

    /// Every secret value the test bed knows of: source secret, minted secrets and session
    /// tokens (SSO and Roles Anywhere credentials included), Entra tokens, SSO client secrets,
    /// device codes, access and refresh tokens, every value stored in the vault but access key ids
    /// and public certificate chains, every signature the vault made (in the encodings a client
    /// could print) and every signature Roles Anywhere received. A test searches captured output
    /// for these.
    pub fn secret_values(&self) -> Vec<String> {
        let mut out = vec![self.source.secret_access_key.clone()];
        if self.storage.is_some() {
            out.push(storage::ACCOUNT_KEY.to_string());
        }
        for m in self.sts.minted() {
            out.push(m.secret_access_key);
            out.push(m.session_token);
        }
        out.extend(self.issuer.issued_tokens());
        out.extend(self.sso.secret_values());
        out.extend(self.vault.signature_values());
        out.extend(self.rolesanywhere.signature_values());
        out.extend(
            self.vault
                .all_values()
                .into_iter()
                .filter(|v| !looks_like_access_key_id(v)),
        );
        out.sort();
        out.dedup();
        out
    }

    /// The same latency on every request to every server a client talks to: Key Vault, the
    /// identity endpoints, STS/IAM, Roles Anywhere, Resource Manager, IAM Identity Center and
    /// storage (when started). Each server also logs its requests with when they arrived and
    /// when their answers were ready, from which the benchmarks count round trips.
    pub fn set_latency(&self, latency: std::time::Duration) {
        self.vault.faults.set_latency(latency);
        self.issuer.faults.set_latency(latency);
        self.sts.faults.set_latency(latency);
        self.rolesanywhere.faults.set_latency(latency);
        self.arm.faults.set_latency(latency);
        self.sso.faults.set_latency(latency);
        if let Some(storage) = &self.storage {
            storage.set_latency(latency);
        }
    }

    /// The directory holding the CA file.
    pub fn dir(&self) -> &Path {
        self.ca_file.parent().expect("ca file has a parent")
    }
}

impl TestBed {
    /// The IAM user's access keys as moto holds them: `(id, status)`, e.g. `("AKIA…", "Active")`.
    pub async fn access_keys(&self) -> anyhow::Result<Vec<(String, String)>> {
        let text = moto_iam(
            &self.moto.url,
            &format!(
                "Action=ListAccessKeys&Version=2010-05-08&UserName={}",
                self.source.user_name
            ),
        )
        .await?;
        let mut out = vec![];
        for member in text.split("<member>").skip(1) {
            let field = |tag: &str| {
                let open = format!("<{tag}>");
                member.find(&open).and_then(|i| {
                    let rest = &member[i + open.len()..];
                    rest.find('<').map(|j| rest[..j].to_string())
                })
            };
            if let (Some(id), Some(status)) = (field("AccessKeyId"), field("Status")) {
                out.push((id, status));
            }
        }
        Ok(out)
    }

    /// Creates another IAM user with one access key in moto (not through the front, so it is no
    /// call of the app's), and teaches the front the key (an operator's, say).
    pub async fn create_iam_user(&self, user_name: &str) -> anyhow::Result<SourceKeys> {
        let keys = create_iam_user(&self.moto.url, user_name).await?;
        self.sts
            .register_key(&keys.access_key_id, &keys.secret_access_key);
        Ok(keys)
    }

    /// Adds a second access key to the IAM user directly in moto (not through the front, so it
    /// is not a call of the app's), known to the front; `active` false makes it inactive.
    /// Returns its id and secret.
    pub async fn add_access_key(&self, active: bool) -> anyhow::Result<(String, String)> {
        let user = &self.source.user_name;
        let text = moto_iam(
            &self.moto.url,
            &format!("Action=CreateAccessKey&Version=2010-05-08&UserName={user}"),
        )
        .await?;
        let get = |tag: &str| -> anyhow::Result<String> {
            let open = format!("<{tag}>");
            let start = text.find(&open).context("no key in the answer")? + open.len();
            let end = start + text[start..].find('<').context("truncated answer")?;
            Ok(text[start..end].to_string())
        };
        // moto never checks a secret: the front knows one shaped like AWS's.
        let (id, secret) = (get("AccessKeyId")?, aws_secret());
        self.sts.register_key(&id, &secret);
        if !active {
            self.sts.set_key_active(&id, false);
            moto_iam(
                &self.moto.url,
                &format!("Action=UpdateAccessKey&Version=2010-05-08&UserName={user}&AccessKeyId={id}&Status=Inactive"),
            )
            .await?;
        }
        Ok((id, secret))
    }
}

impl TestBed {
    /// `GetCallerIdentity` through the STS front, signed (SigV4) with this set as any SDK would
    /// sign it: the caller's ARN, or the front's error code. A set whose secret does not belong to
    /// its key id gets `SignatureDoesNotMatch` — which is how a test proves a published or
    /// consumed set is whole.
    pub async fn caller_arn(
        &self,
        access_key_id: &str,
        secret_access_key: &str,
        session_token: Option<&str>,
    ) -> Result<String, String> {
        use axum::http::{HeaderMap, HeaderValue};
        let body = "Action=GetCallerIdentity&Version=2011-06-15";
        let url = self.sts_url();
        let mut headers = HeaderMap::new();
        let host = url.trim_start_matches("http://");
        headers.insert(
            "host",
            HeaderValue::from_str(host).map_err(|e| e.to_string())?,
        );
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let now = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        headers.insert(
            "x-amz-date",
            HeaderValue::from_str(&now).map_err(|e| e.to_string())?,
        );
        if let Some(t) = session_token {
            headers.insert(
                "x-amz-security-token",
                HeaderValue::from_str(t).map_err(|e| e.to_string())?,
            );
        }
        let auth = sigv4::authorization_for(
            &sigv4::Request {
                method: "POST",
                path: "/",
                query: "",
                headers: &headers,
                body: body.as_bytes(),
            },
            access_key_id,
            secret_access_key,
            "us-east-1",
            "sts",
        );
        headers.insert(
            "authorization",
            HeaderValue::from_str(&auth).map_err(|e| e.to_string())?,
        );
        headers.remove("host");
        let response = reqwest::Client::new()
            .post(format!("{url}/"))
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let text = response.text().await.map_err(|e| e.to_string())?;
        let tag = |name: &str| {
            let open = format!("<{name}>");
            let start = text.find(&open)? + open.len();
            Some(text[start..start + text[start..].find('<')?].to_string())
        };
        tag("Arn").ok_or_else(|| tag("Code").unwrap_or(text.clone()))
    }
}

/// A Roles Anywhere configuration ready for a client ([`TestBed::setup_roles_anywhere`]).
#[derive(Clone, Debug)]
pub struct RolesAnywhereSetup {
    pub trust_anchor_arn: String,
    pub profile_arn: String,
    pub role_arn: String,
    pub role_name: String,
    /// The vault certificate whose (non-exportable) key signs; issued by the bed's
    /// intermediate CA, so the chain in its secret is needed (`X-Amz-X509-Chain`).
    pub certificate: VaultCertificate,
}

impl TestBed {
    /// Creates an IAM role in moto that trusts Roles Anywhere (AWS's documented trust policy,
    /// no conditions); returns its ARN. For another trust policy (conditions, or one that does
    /// not admit Roles Anywhere: [`rolesanywhere::ec2_trust_policy`]) use
    /// [`rolesanywhere::RolesAnywhere::create_role`].
    pub async fn create_roles_anywhere_role(&self, name: &str) -> anyhow::Result<String> {
        self.rolesanywhere
            .create_role(
                name,
                &rolesanywhere::roles_anywhere_trust_policy(None),
                None,
            )
            .await
    }

    /// Everything a Roles Anywhere client needs, named `name` throughout: a role in moto that
    /// trusts Roles Anywhere, a trust anchor holding the bed's Roles Anywhere root CA, a profile
    /// for the role (3600 s, enabled), and vault certificate `name` with a non-exportable `key`
    /// issued by the bed's intermediate CA (valid for a year).
    pub async fn setup_roles_anywhere(
        &self,
        name: &str,
        key: KeySpec,
    ) -> anyhow::Result<RolesAnywhereSetup> {
        let role_arn = self.create_roles_anywhere_role(name).await?;
        let ra = &self.rolesanywhere;
        let root = ra.root_ca();
        let anchor = ra.create_trust_anchor(name, &[&root]);
        let profile = ra.create_profile(name, &[&role_arn], ProfileOptions::default());
        let certificate = self.vault.create_certificate(
            name,
            &ra.intermediate_ca(),
            key,
            false,
            Validity::days(365),
        )?;
        Ok(RolesAnywhereSetup {
            trust_anchor_arn: anchor.arn,
            profile_arn: profile.arn,
            role_arn,
            role_name: name.to_string(),
            certificate,
        })
    }
}

/// An IAM Query-API call straight to moto (not through the front, so it is no call of the
/// app's), e.g. `Action=GetUserPolicy&Version=2010-05-08&UserName=…&PolicyName=…`: its XML.
pub async fn moto_iam(moto_url: &str, body: &str) -> anyhow::Result<String> {
    let auth = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=00";
    let r = reqwest::Client::new()
        .post(format!("{moto_url}/"))
        .header("authorization", auth)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string())
        .send()
        .await?;
    let status = r.status();
    let text = r.text().await?;
    anyhow::ensure!(status.is_success(), "{body}: {text}");
    Ok(text)
}

/// Access key ids are identifiers, not secrets (AWS prints them in consoles and logs).
fn looks_like_access_key_id(v: &str) -> bool {
    (v.starts_with("AKIA") || v.starts_with("ASIA"))
        && v.len() == 20
        && v.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Creates an IAM user with one access key in moto (moto does not check signatures until told
/// to; the front does, once told the key).
async fn create_iam_user(moto_url: &str, user_name: &str) -> anyhow::Result<SourceKeys> {
    let client = reqwest::Client::new();
    let auth = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=00";
    let call = |body: String| {
        client
            .post(format!("{moto_url}/"))
            .header("authorization", auth)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    // moto has been seen answering its very first IAM call with an empty 500 (a clean-clone CI
    // run): retry a few times; a retry after a create that did land finds the user there.
    let mut attempt = 0;
    loop {
        attempt += 1;
        let r = call(format!(
            "Action=CreateUser&Version=2010-05-08&UserName={user_name}"
        ))
        .await?;
        let status = r.status();
        let text = r.text().await?;
        if status.is_success() || (attempt > 1 && text.contains("EntityAlreadyExists")) {
            break;
        }
        anyhow::ensure!(attempt < 5, "CreateUser ({status}): {text}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let r = call(format!(
        "Action=CreateAccessKey&Version=2010-05-08&UserName={user_name}"
    ))
    .await?;
    let text = r.text().await?;
    let get = |tag: &str| -> anyhow::Result<String> {
        let open = format!("<{tag}>");
        let start = text
            .find(&open)
            .context("no access key in CreateAccessKey")?
            + open.len();
        let end = start
            + text[start..]
                .find('<')
                .context("truncated CreateAccessKey")?;
        Ok(text[start..end].to_string())
    };
    Ok(SourceKeys {
        user_name: user_name.to_string(),
        access_key_id: get("AccessKeyId")?,
        // moto never checks a secret: one shaped like AWS's, which the caller registers with
        // the front ([`sts::StsFront::register_key`]).
        secret_access_key: aws_secret(),
    })
}

/// A random request id shaped like AWS's (`8-4-4-4-12` hex).
pub fn request_id() -> String {
    let h = random_hex(16);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

/// An access key id shaped like AWS's: `AKIA` (long-lived) or `ASIA` (session) and 16 characters
/// of the base-32 alphabet AWS uses (`A-Z`, `2-7`).
pub fn aws_key_id(prefix: &str) -> String {
    const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::rng();
    let tail: String = (0..16)
        .map(|_| BASE32[rng.random_range(0..BASE32.len())] as char)
        .collect();
    format!("{prefix}{tail}")
}

/// A secret access key shaped like AWS's: 40 characters of the base64 alphabet, always with a
/// `+` and a `/` (the characters a careless writer or shell mangles).
pub fn aws_secret() -> String {
    let mut rng = rand::rng();
    let bytes: Vec<u8> = (0..30).map(|_| rng.random()).collect();
    let mut secret = base64::engine::general_purpose::STANDARD.encode(bytes);
    with_chars(&mut secret, b"+/");
    secret
}

/// A session token shaped like AWS's: several hundred characters of base64 (AWS's start with
/// `IQoJb3JpZ2luX2Vj`), with `+`, `/` and `=` padding.
pub fn aws_session_token() -> String {
    let mut rng = rand::rng();
    // 3k+2 bytes: one `=` of padding; 290-440 bytes give 404-604 characters (AWS's run from a
    // few hundred to over a thousand).
    let n = 3 * rng.random_range(96..146) + 2;
    let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
    let mut token = format!(
        "IQoJb3JpZ2luX2Vj{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    );
    let body = token.len() - 1;
    let mut head = token[..body].to_string();
    with_chars(&mut head, b"+/");
    token.replace_range(..body, &head);
    token
}

/// Puts each of `chars` at a random position of `s` (past its first 16 characters) unless `s`
/// already holds it.
pub(crate) fn with_chars(s: &mut String, chars: &[u8]) {
    let mut rng = rand::rng();
    let mut bytes = std::mem::take(s).into_bytes();
    for c in chars {
        while !bytes.contains(c) {
            let at = rng.random_range(16.min(bytes.len() - 1)..bytes.len());
            // Never overwrite a character placed for an earlier entry.
            if !chars.contains(&bytes[at]) {
                bytes[at] = *c;
            }
        }
    }
    *s = String::from_utf8(bytes).expect("base64 is ASCII");
}

/// `n` random ASCII letters and digits.
pub fn random_alnum(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| rng.sample(rand::distr::Alphanumeric) as char)
        .collect()
}
