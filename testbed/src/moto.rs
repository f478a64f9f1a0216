//! moto (PyPI `moto[server]`), the third-party AWS emulator behind the STS front.
//!
//! Installed into the workspace's `.venv` by `scripts/setup.sh`; started here on a free loopback
//! port and killed when the [`Moto`] value is dropped (also when a test panics). On Linux the child
//! also gets `PR_SET_PDEATHSIG`, so a test process that is killed outright takes moto with it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

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
            let port = free_port()?;
            let mut command = Command::new(&program);
            command
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            die_with_parent(&mut command);
            let child = command
                .spawn()
                .with_context(|| format!("starting {}", program.display()))?;
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

pub(crate) fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[cfg(target_os = "linux")]
pub(crate) fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches only the child's own state.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn die_with_parent(_command: &mut Command) {}
