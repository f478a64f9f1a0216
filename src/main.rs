//! The `stsbridge` binary: bootstrap only. Every command is a thin call into the library.
//!
//! Exit codes: 0 success; 1 failure (the error chain is printed on stderr); 2 usage error;
//! 143 `serve` stopped by SIGTERM (never 0 from `serve`: the Functions host would not restart a
//! handler that exits 0, and every later invocation would fail).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use stsbridge::functions::{self, AppState};
use stsbridge::rotation::{Request, RotationService};
use stsbridge::settings::{export_local_settings, Settings, SourceValue};

#[derive(Parser)]
#[command(
    name = "stsbridge",
    version,
    about = "Fresh AWS STS credentials in Azure Key Vault"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run as the Azure Functions custom handler (the host starts this).
    Serve,
    /// Rotate once, as the functions do, and print the JSON report.
    Rotate {
        /// Read settings from this local.settings.json's Values (over the environment).
        #[arg(long)]
        settings: Option<PathBuf>,
        /// Mint even if the published set is fresh.
        #[arg(long)]
        force: bool,
    },
    /// Validate the settings and say what a rotation would do, without minting.
    Check {
        #[arg(long)]
        settings: Option<PathBuf>,
    },
    /// Show the published set's state (key id, expiry, versions; never a secret).
    Show {
        #[arg(long)]
        settings: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let local_settings = match &cli.command {
        Command::Rotate { settings, .. }
        | Command::Check { settings }
        | Command::Show { settings } => settings.clone(),
        Command::Serve => None,
    };
    if let Some(path) = local_settings {
        // Before the runtime starts: setting the environment is only sound single-threaded.
        if let Err(e) = export_local_settings(&path) {
            eprintln!("stsbridge: {e:#}");
            return ExitCode::from(1);
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve => serve().await,
            Command::Rotate { force, .. } => rotate(force).await,
            Command::Check { .. } => check().await,
            Command::Show { .. } => show().await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("stsbridge: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn serve() -> anyhow::Result<ExitCode> {
    stsbridge::logging::init_for_host();
    let port: u16 = std::env::var("FUNCTIONS_CUSTOMHANDLER_PORT")
        .context("FUNCTIONS_CUSTOMHANDLER_PORT is not set: `serve` is started by the Functions host, which sets it (use `stsbridge rotate` to run a rotation by hand)")?
        .trim()
        .parse()
        .context("FUNCTIONS_CUSTOMHANDLER_PORT is not a port number")?;
    // Bind first: the host polls GET / every 25 ms and anything else can wait.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{port} (FUNCTIONS_CUSTOMHANDLER_PORT)"))?;
    let settings = Settings::from_env();
    let (service, max_bytes) = match settings {
        Ok(settings) => {
            for w in &settings.warnings {
                tracing::warn!("{w}");
            }
            let max = settings.max_invocation_bytes;
            (Ok(Arc::new(RotationService::new(settings).await?)), max)
        }
        Err(errors) => {
            for e in &errors.0 {
                tracing::error!("invalid setting {}: {}", e.setting, e.message);
            }
            tracing::error!("every invocation will answer with these errors until the settings are fixed and the app restarts");
            (Err(errors), functions::DEFAULT_MAX_INVOCATION_BYTES)
        }
    };
    let state = Arc::new(AppState {
        service,
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
    tracing::info!("stopping: no new invocations; finishing the one in flight");
    let _ = stop_tx.send(());
    // Bounded: a rotation has its own time budget; this covers a stuck connection.
    let _ = tokio::time::timeout(Duration::from_secs(30), server).await;
    Ok(ExitCode::from(143))
}

fn load() -> anyhow::Result<Settings> {
    Settings::from_env().map_err(|e| {
        let lines: Vec<String> =
            e.0.iter()
                .map(|e| format!("  {}: {}", e.setting, e.message))
                .collect();
        anyhow::anyhow!("invalid settings:\n{}", lines.join("\n"))
    })
}

async fn rotate(force: bool) -> anyhow::Result<ExitCode> {
    stsbridge::logging::init_for_cli(true);
    let settings = load()?;
    for w in &settings.warnings {
        tracing::warn!("{w}");
    }
    let service = Arc::new(RotationService::new(settings).await?);
    let outcome = service.rotate(Request { force }).await;
    match outcome.as_ref() {
        Ok(report) => {
            println!("{}", serde_json::to_string_pretty(report)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(failure) => {
            println!("{}", serde_json::to_string_pretty(&failure.body())?);
            eprintln!("stsbridge: {failure}");
            Ok(ExitCode::from(1))
        }
    }
}

async fn check() -> anyhow::Result<ExitCode> {
    stsbridge::logging::init_for_cli(false);
    let s = load()?;
    println!("settings are valid");
    println!("mode:      {}", s.mode.name());
    if let Some(source) = s.mode.source() {
        for (setting, value) in [
            (source.settings.0, &source.access_key_id),
            (source.settings.1, &source.secret_access_key),
        ] {
            let describe = match value {
                SourceValue::Plain(_) => "a value in the setting".to_string(),
                other => other.describe(),
            };
            println!("source:    {setting}: {describe}");
        }
    }
    if let Some(role) = s.mode.role() {
        println!(
            "role:      {} (session name {})",
            role.arn, role.session_name
        );
    }
    println!("identity:  {}", s.identity.describe());
    println!(
        "sts:       region {}{}",
        s.region,
        s.sts_endpoint
            .as_deref()
            .map(|e| format!(", endpoint {e}"))
            .unwrap_or_default()
    );
    for t in s.targets.all() {
        println!("publishes: {t}");
    }
    println!(
        "duration:  {} s; a set younger than {} s is fresh",
        s.session_duration_secs,
        s.min_rotation_interval.as_secs()
    );
    for w in &s.warnings {
        println!("warning:   {w}");
    }
    if matches!(s.mode, stsbridge::settings::Mode::WebIdentity { .. }) {
        // The one network call `check` makes: the token's claims are what the AWS side must
        // trust, and users need them to write the trust policy. The token itself is not shown.
        let service = RotationService::new(s).await?;
        match service.web_identity_claims().await {
            Ok(Some(claims)) => {
                println!("token:     an Entra ID token was issued; AWS will see these claims:");
                for (k, v) in claims.as_object().into_iter().flatten() {
                    println!(
                        "           {k} = {}",
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    );
                }
                println!("           the IAM OIDC provider's URL must equal iss; the role's trust policy should match aud and sub");
            }
            Ok(None) => {}
            Err(f) => {
                eprintln!("stsbridge: {f}");
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn show() -> anyhow::Result<ExitCode> {
    stsbridge::logging::init_for_cli(false);
    let settings = load()?;
    let service = RotationService::new(settings).await?;
    match service.state().await {
        Ok(state) => {
            println!("{}", serde_json::to_string_pretty(&state)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(f) => {
            eprintln!("stsbridge: {f}");
            Ok(ExitCode::from(1))
        }
    }
}
