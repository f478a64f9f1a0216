//! `stsbridge serve-credentials` and `stsbridge exec` (issue #19): credentials that stay fresh
//! inside long-running programs, through the container credentials protocol every AWS SDK and
//! the AWS CLI speak ([`crate::consumers::endpoint`]).
//!
//! `serve-credentials` prints exactly two lines on stdout once it is ready (the `export` lines
//! a wrapper evaluates) and nothing else; its notes go to stderr. `exec` prints nothing of its
//! own but errors; its command's output is the command's.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use chrono::{SecondsFormat, Utc};
use secrecy::{ExposeSecret, SecretString};

use super::{SourceArgs, SsoArgs};
use crate::consumers::endpoint::{self, Endpoint};
use crate::consumers::export::sh_quote;
use crate::consumers::source::{Source, SsoSource};
use crate::consumers::web_identity::WebIdentitySource;

/// Set in `exec`'s child: a nested `exec` would hide the outer one's credentials (and, with
/// `--ecs-server`, start a second endpoint for nothing), so it is refused.
pub const EXEC_MARKER: &str = "STSBRIDGE_EXEC";

/// What `--ecs-server` removes from the child's environment: both SDKs prefer each of these to
/// the full URI (environment keys, profiles, web identity, the ECS relative URI), and a token
/// file wins over the token. Web identity (issue #27, F7): every SDK tries it before the
/// container provider, so on an EKS pod (IRSA sets all three) the command would otherwise run
/// as the pod's role.
pub const SHADOWING: [&str; 12] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
];

/// The defaults `exec --ecs-server` serves with (those of `serve-credentials`).
const ECS_MARGIN: chrono::Duration = chrono::Duration::minutes(20);
const ECS_POLL: Duration = Duration::from_secs(30);

/// The credential source the flags select.
async fn source(args: &SourceArgs) -> anyhow::Result<Source> {
    if let Some(profile) = &args.aws_profile {
        let sso_args = SsoArgs {
            aws_profile: Some(profile.clone()),
            start_url: None,
            sso_region: None,
            account_id: None,
            role_name: None,
        };
        let settings = super::sso::sso_settings(&sso_args)?;
        settings.role()?;
        let sdk = crate::aws::sdk_config(
            &settings.region,
            Duration::from_secs(10),
            Duration::from_secs(30),
        )
        .await;
        return Ok(Source::Sso(Box::new(SsoSource {
            cache: crate::sso::cache::Cache::under_home(&super::sso::home()?),
            oidc: crate::sso::client::Oidc::new(&sdk),
            portal: crate::sso::client::Portal::new(&sdk),
            settings,
        })));
    }
    let identity = crate::settings::azure_identity(&std::env::vars().collect());
    if let Some(role) = args.mint.web_identity_role()? {
        return Ok(Source::WebIdentity(Box::new(
            WebIdentitySource::new(role, identity).await?,
        )));
    }
    if let Some(ra) = args.mint.roles_anywhere_source(&args.bundle)? {
        return Ok(Source::RolesAnywhere(Box::new(ra)));
    }
    Ok(Source::Bundle(args.bundle.source()?))
}

fn to_std(d: chrono::Duration, flag: &str) -> anyhow::Result<Duration> {
    let d = d
        .to_std()
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("{flag} must be positive"))?;
    Ok(d)
}

/// Completes on the first SIGTERM or SIGINT. Registered before anything is announced, so a
/// signal right after the `export` lines still ends the process cleanly.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

pub async fn serve_credentials(
    args: SourceArgs,
    listen: SocketAddr,
    token_file: Option<PathBuf>,
    min_remaining: chrono::Duration,
    poll_interval: chrono::Duration,
) -> anyhow::Result<ExitCode> {
    crate::logging::init_for_cli(true);
    endpoint::check_listen(&listen)?;
    let poll = to_std(poll_interval, "--poll-interval")?;
    to_std(min_remaining, "--min-remaining")?;
    let (token, token_line) = match &token_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--token-file: reading {}", path.display()))?;
            endpoint::check_token(&text)
                .with_context(|| format!("--token-file {}", path.display()))?;
            {
                use std::os::unix::fs::MetadataExt;
                let meta = std::fs::metadata(path)
                    .with_context(|| format!("--token-file: reading {}", path.display()))?;
                // SAFETY: geteuid(2) cannot fail and touches no memory.
                let me = unsafe { libc::geteuid() };
                for warning in endpoint::token_file_warnings(
                    &path.display().to_string(),
                    meta.mode(),
                    meta.uid(),
                    me,
                ) {
                    tracing::warn!("{warning}");
                }
            }
            let absolute = std::path::absolute(path)
                .with_context(|| format!("--token-file: {}", path.display()))?;
            let line = format!(
                "export AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE={}",
                sh_quote(&absolute.to_string_lossy())
            );
            (SecretString::from(text), SecretString::from(line))
        }
        None => {
            let token = endpoint::generate_token()?;
            let line = format!(
                "export AWS_CONTAINER_AUTHORIZATION_TOKEN={}",
                sh_quote(token.expose_secret())
            );
            (token, SecretString::from(line))
        }
    };
    let source = source(&args).await?;
    let endpoint = Endpoint::start(source, token, min_remaining, poll).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("--listen {listen}: cannot listen there"))?;
    let addr = listener.local_addr()?;
    let shutdown = shutdown_signal()?;
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "export AWS_CONTAINER_CREDENTIALS_FULL_URI={}",
            sh_quote(&endpoint::url(addr))
        )?;
        writeln!(out, "{}", token_line.expose_secret())?;
        out.flush()?;
    }
    if let Some((key, expiration)) = endpoint.current() {
        eprintln!(
            "serve-credentials: serving {} ({key}, expires {}) at {} until SIGTERM or SIGINT",
            endpoint.describe(),
            expiration.to_rfc3339_opts(SecondsFormat::Secs, true),
            endpoint::url(addr)
        );
    }
    endpoint::serve(listener, endpoint, shutdown)
        .await
        .context("serving credentials")?;
    Ok(ExitCode::SUCCESS)
}

pub async fn exec(
    args: SourceArgs,
    ecs_server: bool,
    min_remaining: chrono::Duration,
    command: Vec<OsString>,
) -> anyhow::Result<ExitCode> {
    crate::logging::init_for_cli(false);
    if std::env::var_os(EXEC_MARKER).is_some() {
        anyhow::bail!("this is already inside `stsbridge exec` ({EXEC_MARKER} is set): run the command directly, the credentials are already here");
    }
    let (program, rest) = command.split_first().context("no command after --")?;
    let source = source(&args).await?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(rest).env(EXEC_MARKER, "1");
    let mut server = None;
    if ecs_server {
        let token = endpoint::generate_token()?;
        let endpoint = Endpoint::start(source, token.clone(), ECS_MARGIN, ECS_POLL).await?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("listening on 127.0.0.1")?;
        for name in SHADOWING {
            cmd.env_remove(name);
        }
        cmd.env(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            endpoint::url(listener.local_addr()?),
        )
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN", token.expose_secret());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(endpoint::serve(listener, endpoint, async move {
            let _ = stopped.await;
        }));
        server = Some((stop, task));
    } else {
        let fresh = source.fetch().await?;
        crate::consumers::check_remaining(&fresh.credentials, min_remaining, Utc::now())?;
        for (name, value) in crate::consumers::export::variables(&fresh.credentials) {
            cmd.env(name, value.expose_secret());
        }
        // A stale alias some older tools still read.
        cmd.env_remove("AWS_SECURITY_TOKEN");
    }
    let code = run_child(cmd, program).await;
    if let Some((stop, task)) = server {
        let _ = stop.send(());
        let _ = task.await;
    }
    code
}

/// Whether `pid`'s process group is the foreground group of this process's controlling
/// terminal (`tty`, `/dev/tty` opened at start; `None` without one). A Ctrl-C there reaches the
/// child from the terminal itself, to its whole group; forwarding it too would deliver it twice,
/// which tools like Terraform take as "stop at once, without cleaning up" (issue #27, F7).
fn in_terminal_foreground(tty: Option<&std::fs::File>, pid: i32) -> bool {
    use std::os::fd::AsRawFd;
    let Some(tty) = tty else {
        return false;
    };
    // SAFETY: tcgetpgrp(3) on a descriptor we own, getpgid(2) on our own unreaped child.
    let (foreground, group) = unsafe { (libc::tcgetpgrp(tty.as_raw_fd()), libc::getpgid(pid)) };
    foreground > 0 && foreground == group
}

/// Runs the child to its end, forwarding SIGTERM, and SIGINT unless the child is in the
/// terminal's foreground process group (a Ctrl-C already reached it); its exit code,
/// shell-style. A SIGINT sent to stsbridge alone (`kill -INT`) while the child is in the
/// foreground is therefore not forwarded: the two cannot be told apart, and Ctrl-C is the case
/// that matters.
async fn run_child(
    mut cmd: tokio::process::Command,
    program: &OsString,
) -> anyhow::Result<ExitCode> {
    use std::os::unix::process::ExitStatusExt;
    use tokio::signal::unix::{signal, SignalKind};
    // Registered before the spawn: from here on these signals are forwarded, not fatal to us.
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let name = program.to_string_lossy();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("stsbridge exec: {name}: command not found");
            return Ok(ExitCode::from(127));
        }
        Err(e) => {
            eprintln!("stsbridge exec: {name}: cannot run it: {e}");
            return Ok(ExitCode::from(126));
        }
    };
    let pid = child.id().context("the child has no pid")? as i32;
    // The controlling terminal, if any (close-on-exec: the child never holds this descriptor).
    let tty = std::fs::File::open("/dev/tty").ok();
    let forward = |sig: i32| {
        // SAFETY: kill(2) on our own child, which we have not reaped yet.
        unsafe {
            libc::kill(pid, sig);
        }
    };
    let status = loop {
        tokio::select! {
            status = child.wait() => break status.context("waiting for the command")?,
            _ = term.recv() => forward(libc::SIGTERM),
            _ = int.recv() => {
                if !in_terminal_foreground(tty.as_ref(), pid) {
                    forward(libc::SIGINT);
                }
            }
        }
    };
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(code as u8),
        (None, Some(sig)) => ExitCode::from((128 + sig) as u8),
        _ => ExitCode::FAILURE,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variable_the_sdks_prefer_to_the_full_uri_is_removed() {
        for name in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_SECURITY_TOKEN",
            "AWS_PROFILE",
            "AWS_DEFAULT_PROFILE",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_ROLE_ARN",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_ROLE_SESSION_NAME",
        ] {
            assert!(SHADOWING.contains(&name), "{name}");
        }
    }
}
