//! `stsbridge serve`: the custom handler. Binds `127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT` first
//! (the host polls `GET /` every 25 ms), then builds every target's service; invalid settings do
//! not stop it (see [`crate::functions`]). Once it serves, it warms the clients in the
//! background. On SIGTERM or Ctrl-C it stops accepting, finishes the rotation in flight and the
//! side work within a bound, and exits 143.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::functions::{self, AppState};
use crate::rotation::fleet::Fleet;

/// How long `serve` waits, after SIGTERM, for the rotation in flight and its side work.
const STOP_BOUND: Duration = Duration::from_secs(30);

pub async fn serve() -> anyhow::Result<ExitCode> {
    crate::logging::init_for_host();
    let port: u16 = std::env::var("FUNCTIONS_CUSTOMHANDLER_PORT")
        .context("FUNCTIONS_CUSTOMHANDLER_PORT is not set: `serve` is started by the Functions host, which sets it (use `stsbridge rotate` to run a rotation by hand)")?
        .trim()
        .parse()
        .context("FUNCTIONS_CUSTOMHANDLER_PORT is not a port number")?;
    // Bind first: the host polls GET / every 25 ms and anything else can wait.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{port} (FUNCTIONS_CUSTOMHANDLER_PORT)"))?;
    // Port 0 (never from the host) picks a free port; this line says which.
    tracing::info!("listening on 127.0.0.1:{}", listener.local_addr()?.port());
    let (fleet, max_bytes) = match crate::targets::load(&std::env::vars().collect()) {
        Ok(config) => {
            for w in &config.warnings {
                tracing::warn!("{w}");
            }
            let max = config.targets[0].max_invocation_bytes;
            (Ok(Arc::new(Fleet::new(config).await?)), max)
        }
        Err(errors) => {
            for e in &errors.0 {
                tracing::error!("invalid setting {}: {}", e.setting, e.message);
            }
            tracing::error!("every invocation will answer with these errors until the settings are fixed and the app restarts");
            (Err(errors), functions::DEFAULT_MAX_INVOCATION_BYTES)
        }
    };
    if let Ok(fleet) = &fleet {
        let fleet = fleet.clone();
        tokio::spawn(async move { fleet.warm_up().await });
    }
    let state = Arc::new(AppState {
        fleet: fleet.clone(),
        max_invocation_bytes: max_bytes,
    });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(functions::serve(listener, state, async {
        let _ = stop_rx.await;
    }));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
    tracing::info!("stopping: no new invocations; finishing the one in flight and its side work");
    let _ = stop_tx.send(());
    // Bounded: a rotation has its own time budget, and each side job a quarter of it; this
    // covers a stuck connection. The host kills the process soon after SIGTERM anyway.
    let _ = tokio::time::timeout(STOP_BOUND, async {
        let _ = server.await;
        if let Ok(fleet) = &fleet {
            fleet.settle().await;
        }
    })
    .await;
    Ok(ExitCode::from(143))
}
