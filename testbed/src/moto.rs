//! moto (PyPI `moto[server]`), the third-party AWS emulator behind the STS front.
//!
//! Installed into the workspace's `.venv` by `scripts/setup.sh`; started here on a loopback port
//! it picks itself ([`crate::child`]) and killed when the [`Moto`] value is dropped (also when a
//! test panics, and with the test process on Linux).

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::child::{spawn_announcing, Stream};

pub struct Moto {
    child: Child,
    pub url: String,
}

/// Where `moto_server` is: `$STSBRIDGE_MOTO_SERVER`, else the workspace's `.venv`.
pub fn moto_server_path() -> PathBuf {
    if let Some(p) = std::env::var_os("STSBRIDGE_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(".venv")
        .join("bin")
        .join("moto_server")
}

impl Moto {
    /// Starts moto and waits until it answers (about half a second to two seconds).
    pub async fn start() -> anyhow::Result<Self> {
        let program = moto_server_path();
        if !program.exists() {
            bail!(
                "{} not found: run scripts/setup.sh (or set STSBRIDGE_MOTO_SERVER)",
                program.display()
            );
        }
        let mut last_error = None;
        for _ in 0..3 {
            // Port 0: moto binds a free port itself and says which (see `crate::child`).
            let mut command = Command::new(&program);
            command.args(["-H", "127.0.0.1", "-p", "0"]);
            let (child, port) = match spawn_announcing(
                command,
                Stream::Stderr,
                "Running on",
                "moto_server",
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
            let mut moto = Moto {
                child,
                url: format!("http://127.0.0.1:{port}"),
            };
            match moto.wait_ready().await {
                Ok(()) => {
                    moto.warm_sts().await?;
                    return Ok(moto);
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("moto did not start")))
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("moto_server exited early with {status}");
            }
            if client
                .get(format!("{}/moto-api/", self.url))
                .send()
                .await
                .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("moto_server did not answer within 30 s")
    }

    /// moto loads a service's backend on its first call to it, and has been seen answering an
    /// early call with an empty 500 when the first calls arrive together (a CI run: 200 forced
    /// posts and serve's warm-up at once, and one `GetSessionToken` retried). Make STS's first
    /// call here, alone, until it answers 200, so a test's calls meet a loaded backend.
    async fn warm_sts(&self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let auth = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=00";
        let mut last = String::new();
        for _ in 0..10 {
            let answer = client
                .post(format!("{}/", self.url))
                .header("authorization", auth)
                .header("content-type", "application/x-www-form-urlencoded")
                .body("Action=GetCallerIdentity&Version=2011-06-15")
                .send()
                .await;
            match answer {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => last = format!("{}", r.status()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!("moto's STS did not answer GetCallerIdentity: {last}")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
