//! Azurite (npm `azurite`, pinned to 3.35.0: the last release that runs on Node 20), Microsoft's
//! Azure Storage emulator, as the app's `AzureWebJobsStorage` — where the rotation lease lives.
//!
//! Installed into the workspace's `.azurite/` by `scripts/setup.sh`; only the Blob service is
//! started (`azurite-blob`), on a loopback port it picks itself ([`crate::child`]), with
//! `--inMemoryPersistence`, `--disableTelemetry` (it would otherwise send usage data out) and
//! `--skipApiVersionCheck` (the Rust SDK sends a newer API version than 3.35.0 knows). It costs
//! about 0.8 s and 110 MB, so only tests that need storage start it ([`crate::Options::storage`]).
//! Killed when the [`Azurite`] value is dropped, or [`Azurite::stop`]ped to make storage
//! unreachable; on Linux it also dies with the test process.
//!
//! Clients reach it through a small TCP relay of ours, which adds [`Azurite::set_latency`] to
//! every chunk a client sends (one per request for the lease's small requests), as the other
//! servers' `faults` do: the benchmarks measure round trips with the same latency on storage.
//! [`Azurite::set_down`] makes the relay refuse storage (connections closed unanswered) and
//! [`Azurite::set_down`]`(false)` brings it back with its blobs: the soak's "storage down".
//! [`Azurite::set_hang`] makes it accept connections and never answer (a storage front that
//! stalls: only a client's own timeout ends the wait). Over plain http the relay also notes
//! every request's method, path and query parameters, never a SAS signature
//! ([`Azurite::requests`]): what a client's SAS grants is visible in its parameters; and when
//! each arrived and its answer was passed back, so the benchmarks count storage's round trips
//! with the other servers'.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use anyhow::bail;

use crate::child::{spawn_announcing, Stream};

/// The development account Azurite serves (public, documented by Microsoft).
pub const ACCOUNT: &str = "devstoreaccount1";
pub const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A request a client sent to storage (plain http only), as the relay saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageRequest {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query parameters, except `sig` (a SAS signature is never kept).
    pub params: std::collections::BTreeMap<String, String>,
    /// Whether the query carried a `sig` (a SAS).
    pub signed: bool,
    /// When its first bytes reached the relay (before the injected latency).
    pub started: Instant,
    /// When the relay passed on the last bytes of the answer so far (the answer's end, once the
    /// connection's next request has arrived or the connection is closed); `started` until then.
    pub finished: Instant,
}

impl StorageRequest {
    /// A request head at the start of a chunk (`GET /path?query HTTP/1.1`), if it is one.
    fn parse(chunk: &[u8], started: Instant) -> Option<StorageRequest> {
        let line = chunk.split(|&b| b == b'\r').next()?;
        let line = std::str::from_utf8(line).ok()?;
        let mut parts = line.split(' ');
        let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
        if !version.starts_with("HTTP/") || !method.bytes().all(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let url = url::Url::parse(&format!("http://relay{target}")).ok()?;
        let mut params = std::collections::BTreeMap::new();
        let mut signed = false;
        for (k, v) in url.query_pairs() {
            if k == "sig" {
                signed = true;
            } else {
                params.insert(k.into_owned(), v.into_owned());
            }
        }
        Some(StorageRequest {
            method: method.to_string(),
            path: url.path().to_string(),
            params,
            signed,
            started,
            finished: started,
        })
    }
}

/// How clients authenticate to Azurite.
#[derive(Clone, Debug)]
pub enum Access {
    /// Plain http; the account key (and SASes derived from it).
    SharedKey,
    /// HTTPS with this certificate and key (PEM files), and Azurite's basic OAuth check
    /// (`--oauth basic`: an Entra-shaped token's issuer, audience and times, not its signature)
    /// besides the key: the identity-based `AzureWebJobsStorage__blobServiceUri` form.
    Identity { cert: PathBuf, key: PathBuf },
}

pub struct Azurite {
    child: Option<Child>,
    https: bool,
    /// The port clients use (the relay's).
    pub port: u16,
    latency: Arc<Mutex<Duration>>,
    down: Arc<AtomicBool>,
    hang: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<StorageRequest>>>,
    relay: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

/// Where `azurite-blob` is: `$STSBRIDGE_AZURITE_BLOB`, else the workspace's `.azurite/`.
pub fn azurite_blob_path() -> PathBuf {
    if let Some(p) = std::env::var_os("STSBRIDGE_AZURITE_BLOB") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(".azurite")
        .join("node_modules")
        .join(".bin")
        .join("azurite-blob")
}

impl Azurite {
    /// Starts Azurite's Blob service and waits until it answers.
    pub async fn start(access: Access) -> anyhow::Result<Self> {
        let program = azurite_blob_path();
        if !program.exists() {
            bail!(
                "{} not found: run scripts/setup.sh (or set STSBRIDGE_AZURITE_BLOB)",
                program.display()
            );
        }
        let mut last_error = None;
        for _ in 0..3 {
            let dir = tempfile::Builder::new()
                .prefix("stsbridge-azurite")
                .tempdir()?;
            let mut command = Command::new(&program);
            // Port 0: Azurite binds a free port itself and says which (see `crate::child`).
            command
                .args(["--blobHost", "127.0.0.1", "--blobPort", "0"])
                .args(["--skipApiVersionCheck", "--inMemoryPersistence", "--silent"])
                // Azurite sends usage telemetry unless told not to: the tests stay on loopback.
                .arg("--disableTelemetry");
            if let Access::Identity { cert, key } = &access {
                command
                    .args(["--oauth", "basic", "--cert"])
                    .arg(cert)
                    .arg("--key")
                    .arg(key);
            }
            // Nothing is persisted in memory mode, but Azurite may still write a debug log or
            // lock file in its working directory: keep that in a directory of our own.
            command.current_dir(dir.path());
            let (child, port) = match spawn_announcing(
                command,
                Stream::Stdout,
                "listens on",
                "azurite-blob",
                Duration::from_secs(30),
            )
            .await
            {
                Ok(started) => started,
                Err(e) => {
                    last_error = Some(e);
                    continue;
                }
            };
            let mut azurite = Azurite {
                child: Some(child),
                https: matches!(access, Access::Identity { .. }),
                port,
                latency: Arc::default(),
                down: Arc::default(),
                hang: Arc::default(),
                requests: Arc::default(),
                relay: None,
                _dir: dir,
            };
            match azurite.wait_ready().await {
                Ok(()) => {
                    azurite.start_relay(port).await?;
                    return Ok(azurite);
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("azurite did not start")))
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        // Only "does it answer": the certificate is checked by the clients under test.
        let client = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .build()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!("azurite-blob exited early with {status}");
            }
            // Any HTTP answer (an authentication error) means it is up.
            if client.get(self.blob_endpoint()).send().await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("azurite-blob did not answer within 30 s")
    }

    /// Puts the relay in front of Azurite (on `upstream`); clients use its port from now on.
    async fn start_relay(&mut self, upstream: u16) -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        self.port = listener.local_addr()?.port();
        let latency = self.latency.clone();
        let down = self.down.clone();
        let hang = self.hang.clone();
        let requests = self.requests.clone();
        self.relay = Some(tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if down.load(Ordering::SeqCst) {
                    // Closed unanswered, as an unreachable storage account's front would.
                    drop(client);
                    continue;
                }
                if hang.load(Ordering::SeqCst) {
                    // Accepted, read, never answered: a front that hangs.
                    tokio::spawn(swallow(client));
                    continue;
                }
                let latency = latency.clone();
                let down = down.clone();
                let hang = hang.clone();
                let requests = requests.clone();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    // The log index of this connection's latest request: the answer's chunks
                    // move its `finished` (HTTP/1.1 answers one request at a time).
                    let latest: Mutex<Option<usize>> = Mutex::default();
                    let up = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = cr.read(&mut buf).await?;
                            if n == 0 {
                                return sw.shutdown().await;
                            }
                            let arrived = Instant::now();
                            let delay = *latency.lock().unwrap();
                            if !delay.is_zero() {
                                tokio::time::sleep(delay).await;
                            }
                            // A pooled connection dies with storage, at its next request.
                            if down.load(Ordering::SeqCst) {
                                return Ok(());
                            }
                            // ... or goes silent with it: requests read, never forwarded.
                            if hang.load(Ordering::SeqCst) {
                                continue;
                            }
                            // The lease's requests are small: one chunk starts with one head.
                            if let Some(r) = StorageRequest::parse(&buf[..n], arrived) {
                                let mut requests = requests.lock().unwrap();
                                *latest.lock().unwrap() = Some(requests.len());
                                requests.push(r);
                            }
                            sw.write_all(&buf[..n]).await?;
                        }
                    };
                    let back = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = sr.read(&mut buf).await?;
                            if n == 0 {
                                return std::io::Result::Ok(());
                            }
                            cw.write_all(&buf[..n]).await?;
                            if let Some(i) = *latest.lock().unwrap() {
                                if let Some(r) = requests.lock().unwrap().get_mut(i) {
                                    r.finished = Instant::now();
                                }
                            }
                        }
                    };
                    // Either side closing closes both, so a client holding a pooled connection
                    // sees Azurite go away at once, as it would without the relay.
                    tokio::select! {
                        _ = up => {}
                        _ = back => {}
                    }
                });
            }
        }));
        Ok(())
    }

    /// Every request clients sent so far (plain http only; see [`StorageRequest`]).
    pub fn requests(&self) -> Vec<StorageRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// Latency added to every request to storage.
    pub fn set_latency(&self, latency: Duration) {
        *self.latency.lock().unwrap() = latency;
    }

    /// Storage unreachable (`true`: every connection, new or pooled, is closed at its next
    /// request) or back (`false`); unlike [`Azurite::stop`], the blobs (leases) survive.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Storage hanging (`true`: every connection, new or pooled, is accepted and its requests
    /// read but never answered, as a storage front that stalls) or answering again (`false`;
    /// connections that hung stay silent, as a client's timed-out ones would).
    pub fn set_hang(&self, hang: bool) {
        self.hang.store(hang, Ordering::SeqCst);
    }

    /// The Blob service endpoint of the development account.
    pub fn blob_endpoint(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}/{ACCOUNT}", self.port)
    }

    /// The app settings that point the app at this storage: the connection string, or (over
    /// HTTPS with OAuth) the identity-based form, which uses the app's managed identity.
    pub fn app_settings(&self) -> Vec<(&'static str, String)> {
        if self.https {
            vec![
                ("AzureWebJobsStorage__blobServiceUri", self.blob_endpoint()),
                ("AzureWebJobsStorage__credential", "managedidentity".into()),
            ]
        } else {
            vec![("AzureWebJobsStorage", self.connection_string())]
        }
    }

    /// `AzureWebJobsStorage` as a connection string with the account key.
    pub fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};BlobEndpoint={};",
            self.blob_endpoint()
        )
    }

    /// Stops the emulator and the relay: storage becomes unreachable (connections refused).
    pub fn stop(&mut self) {
        if let Some(relay) = self.relay.take() {
            relay.abort();
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads a connection to its end and never answers.
async fn swallow(mut client: tokio::net::TcpStream) {
    let mut buf = vec![0u8; 16 * 1024];
    while matches!(client.read(&mut buf).await, Ok(n) if n > 0) {}
}
