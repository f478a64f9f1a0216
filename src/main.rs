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

use chrono::Utc;
use secrecy::ExposeSecret;
use stsbridge::consumers::{self, export::Format, targets, BundleSource};
use stsbridge::functions::{self, AppState};
use stsbridge::rotation::fleet::{summarize, Fleet};
use stsbridge::rotation::{Request, RotationService};
use stsbridge::secrets::SessionCredentials;
use stsbridge::settings::{export_local_settings, Settings, SourceValue};
use stsbridge::sso;
use stsbridge::sso::prompt::Prompter;
use stsbridge::targets::{self as targets_file, TargetsConfig};

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
        /// Rotate the IAM user's own access key now (then mint with the new one).
        #[arg(long)]
        rotate_source_key: bool,
        /// With a targets file: rotate only these targets (comma-separated, or repeated).
        #[arg(long, value_delimiter = ',')]
        target: Vec<String>,
    },
    /// Validate the settings and say what a rotation would do, without minting.
    Check {
        #[arg(long)]
        settings: Option<PathBuf>,
    },
    /// Show what is stored: key id, expiry, remaining lifetime, versions, mode, role (never a secret).
    Show {
        #[command(flatten)]
        bundle: BundleArgs,
    },
    /// Print the AWS credential_process JSON (for `credential_process = stsbridge credential-process …`).
    CredentialProcess {
        #[command(flatten)]
        bundle: BundleArgs,
        /// Refuse credentials that expire sooner than this (300, 300s, 5m, 1h).
        #[arg(long, default_value = "5m", value_parser = parse_margin)]
        min_remaining: chrono::Duration,
        /// Keep the credentials in a private file under the user's cache directory until they
        /// are within --min-remaining of expiry.
        #[arg(long)]
        cache: bool,
    },
    /// Print the credentials as variables: `eval "$(stsbridge export)"`.
    Export {
        #[command(flatten)]
        bundle: BundleArgs,
        #[arg(long, value_enum, default_value = "env")]
        format: Format,
        #[arg(long, default_value = "5m", value_parser = parse_margin)]
        min_remaining: chrono::Duration,
    },
    /// Keep a profile in the AWS shared credentials file in sync with the vault.
    SyncProfile {
        #[command(flatten)]
        bundle: BundleArgs,
        /// The profile to update.
        #[arg(long)]
        profile: String,
        /// Default: $AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials.
        #[arg(long)]
        credentials_file: Option<PathBuf>,
        #[arg(long, default_value = "5m", value_parser = parse_margin)]
        min_remaining: chrono::Duration,
    },
    /// Write the credentials into every profile of a .NET launchSettings.json.
    WriteLaunchSettings {
        #[command(flatten)]
        bundle: BundleArgs,
        #[arg(long, default_value = "Properties/launchSettings.json")]
        file: PathBuf,
        #[arg(long, default_value = "5m", value_parser = parse_margin)]
        min_remaining: chrono::Duration,
    },
    /// Sign in through AWS IAM Identity Center (SSO) and write the role's credentials.
    Sso {
        #[command(subcommand)]
        command: SsoCommand,
    },
}

/// `stsbridge sso …`: a developer's sign-in through AWS IAM Identity Center.
#[derive(Subcommand)]
enum SsoCommand {
    /// Sign in (the cached sign-in while valid, a refresh, or else the device flow in a browser),
    /// get the role's credentials, and write them where asked.
    Login {
        #[command(flatten)]
        sso: SsoArgs,
        /// Print the credentials as variables on stdout: `eval "$(stsbridge sso login --export)"`.
        #[arg(long, value_enum, value_name = "FORMAT", num_args = 0..=1, require_equals = true, default_missing_value = "env")]
        export: Option<Format>,
        /// Write them into this profile of the AWS shared credentials file.
        #[arg(long, value_name = "PROFILE")]
        sync_profile: Option<String>,
        /// The credentials file for --sync-profile. Default: $AWS_SHARED_CREDENTIALS_FILE, else
        /// ~/.aws/credentials.
        #[arg(long, requires = "sync_profile")]
        credentials_file: Option<PathBuf>,
        /// Write them into every profile of this .NET launchSettings.json.
        #[arg(long, value_name = "PATH")]
        launch_settings: Option<PathBuf>,
        /// Sign in again even if the cached sign-in is still valid.
        #[arg(long)]
        force: bool,
        /// Only print the sign-in URL and code; never open a browser.
        #[arg(long)]
        no_browser: bool,
    },
    /// Print credential_process JSON from the existing sign-in; never prompts (run `sso login`).
    CredentialProcess {
        #[command(flatten)]
        sso: SsoArgs,
    },
}

/// The SSO settings: a profile of the AWS config file, or flags (the flags' account and role win
/// over the profile's).
#[derive(clap::Args, Clone)]
struct SsoArgs {
    /// A profile of the AWS config file ($AWS_CONFIG_FILE, else ~/.aws/config) with
    /// sso_session (or sso_start_url and sso_region), sso_account_id and sso_role_name.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["start_url", "sso_region"])]
    aws_profile: Option<String>,
    /// The AWS access portal URL, e.g. https://my-org.awsapps.com/start (without --aws-profile).
    #[arg(long, value_name = "URL")]
    start_url: Option<String>,
    /// The IAM Identity Center region (without --aws-profile).
    #[arg(long, value_name = "REGION")]
    sso_region: Option<String>,
    /// The AWS account of the role.
    #[arg(long, value_name = "ID")]
    account_id: Option<String>,
    /// The role (permission set) name.
    #[arg(long, value_name = "NAME")]
    role_name: Option<String>,
}

/// Where the bundle is: the consumers' common options.
#[derive(clap::Args, Clone)]
struct BundleArgs {
    /// The vault holding the bundle.
    #[arg(long, env = "KeyVaultUrl")]
    vault: String,
    /// The bundle secret's name.
    #[arg(
        long,
        env = "CredentialsBundleSecretName",
        default_value = "AwsSessionCredentials"
    )]
    secret: String,
    /// Check the vault's authentication challenge against its domain (turn off only for a local emulator).
    #[arg(long, env = "KeyVaultVerifyChallengeResource", default_value = "true", action = clap::ArgAction::Set)]
    verify_challenge_resource: bool,
}

impl BundleArgs {
    fn source(&self) -> anyhow::Result<BundleSource> {
        BundleSource::new(
            &self.vault,
            &self.secret,
            self.verify_challenge_resource,
            stsbridge::settings::azure_identity(&std::env::vars().collect()),
        )
    }
}

fn parse_margin(text: &str) -> Result<chrono::Duration, String> {
    stsbridge::consumers::parse_duration(text)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let local_settings = match &cli.command {
        Command::Rotate { settings, .. } | Command::Check { settings } => settings.clone(),
        _ => None,
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
            Command::Rotate {
                force,
                rotate_source_key,
                target,
                ..
            } => rotate(force, rotate_source_key, &target).await,
            Command::Check { .. } => check().await,
            Command::Show { bundle } => show(bundle).await,
            Command::CredentialProcess {
                bundle,
                min_remaining,
                cache,
            } => credential_process(bundle, min_remaining, cache).await,
            Command::Export {
                bundle,
                format,
                min_remaining,
            } => export(bundle, format, min_remaining).await,
            Command::SyncProfile {
                bundle,
                profile,
                credentials_file,
                min_remaining,
            } => sync_profile(bundle, &profile, credentials_file, min_remaining).await,
            Command::WriteLaunchSettings {
                bundle,
                file,
                min_remaining,
            } => write_launch_settings(bundle, &file, min_remaining).await,
            Command::Sso { command } => sso(command).await,
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
    let (fleet, max_bytes) = match targets_file::load(&std::env::vars().collect()) {
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
    let state = Arc::new(AppState {
        fleet,
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

fn invalid(e: stsbridge::settings::SettingsErrors) -> anyhow::Error {
    let lines: Vec<String> =
        e.0.iter()
            .map(|e| format!("  {}: {}", e.setting, e.message))
            .collect();
    anyhow::anyhow!("invalid settings:\n{}", lines.join("\n"))
}

fn load_targets() -> anyhow::Result<TargetsConfig> {
    targets_file::load(&std::env::vars().collect()).map_err(invalid)
}

async fn rotate(
    force: bool,
    rotate_source_key: bool,
    target: &[String],
) -> anyhow::Result<ExitCode> {
    stsbridge::logging::init_for_cli(true);
    let config = load_targets()?;
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let request = Request {
        force: force || rotate_source_key,
        rotate_source_key,
    };
    let fleet = Fleet::new(config).await?;
    let selection = (!target.is_empty()).then(|| target.join(","));
    if let Some(service) = fleet.single() {
        if selection
            .as_deref()
            .is_some_and(|t| !t.eq_ignore_ascii_case("default"))
        {
            anyhow::bail!("--target needs a targets file (StsbridgeTargetsFile or targets.json); without one the only target is the app settings");
        }
        let outcome = service.rotate(request).await;
        service.settle().await;
        return match outcome.as_ref() {
            Ok(report) => {
                println!("{}", serde_json::to_string_pretty(report)?);
                Ok(ExitCode::SUCCESS)
            }
            Err(failure) => {
                println!("{}", serde_json::to_string_pretty(&failure.body())?);
                eprintln!("stsbridge: {failure}");
                Ok(ExitCode::from(1))
            }
        };
    }
    let selected = fleet
        .select(selection.as_deref())
        .map_err(anyhow::Error::msg)?;
    let outcomes = fleet.rotate(&selected, request).await;
    fleet.settle().await;
    let (ok, body, lines) = summarize(&outcomes);
    println!("{}", serde_json::to_string_pretty(&body)?);
    for line in lines {
        eprintln!("stsbridge: {line}");
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn check() -> anyhow::Result<ExitCode> {
    stsbridge::logging::init_for_cli(false);
    let config = load_targets()?;
    println!("settings are valid");
    if let Some(file) = &config.file {
        println!(
            "targets:   {} from {} (at most {} at once; Key Vault writes paced to {} per 10 s per vault)",
            config.targets.len(),
            file.display(),
            config.max_concurrent,
            config.writes_per_10s
        );
    }
    let implicit = config.implicit;
    for s in config.targets {
        if !implicit {
            println!();
            println!("target:    {}", s.name.as_deref().unwrap_or("?"));
        }
        let code = check_target(s).await?;
        if code != ExitCode::SUCCESS {
            return Ok(code);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn check_target(s: Settings) -> anyhow::Result<ExitCode> {
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

async fn show(bundle: BundleArgs) -> anyhow::Result<ExitCode> {
    stsbridge::logging::init_for_cli(false);
    let shown = consumers::show(&bundle.source()?, Utc::now()).await?;
    println!("{}", serde_json::to_string_pretty(&shown)?);
    Ok(ExitCode::SUCCESS)
}

/// Reads the bundle and refuses it when it is (nearly) expired.
async fn fresh_bundle(
    bundle: &BundleArgs,
    min_remaining: chrono::Duration,
) -> anyhow::Result<SessionCredentials> {
    let fetched = consumers::fetch(&bundle.source()?).await?;
    consumers::check_remaining(&fetched.credentials, min_remaining, Utc::now())?;
    Ok(fetched.credentials)
}

async fn credential_process(
    bundle: BundleArgs,
    min_remaining: chrono::Duration,
    use_cache: bool,
) -> anyhow::Result<ExitCode> {
    stsbridge::logging::init_for_cli(false);
    let cache_path = use_cache
        .then(|| consumers::cache::path_for(&format!("{}|{}", bundle.vault, bundle.secret)))
        .flatten();
    if let Some(path) = &cache_path {
        if let Some(c) = consumers::cache::read(path, min_remaining, Utc::now()) {
            println!("{}", c.to_process_json().expose_secret());
            return Ok(ExitCode::SUCCESS);
        }
    }
    let credentials = fresh_bundle(&bundle, min_remaining).await?;
    if let Some(path) = &cache_path {
        if let Err(e) = consumers::cache::write(path, &credentials) {
            tracing::warn!("could not cache the credentials: {e:#}");
        }
    }
    println!("{}", credentials.to_process_json().expose_secret());
    Ok(ExitCode::SUCCESS)
}

async fn export(
    bundle: BundleArgs,
    format: Format,
    min_remaining: chrono::Duration,
) -> anyhow::Result<ExitCode> {
    stsbridge::logging::init_for_cli(false);
    let credentials = fresh_bundle(&bundle, min_remaining).await?;
    print!(
        "{}",
        consumers::export::render(&credentials, format)?.expose_secret()
    );
    Ok(ExitCode::SUCCESS)
}

async fn sync_profile(
    bundle: BundleArgs,
    profile: &str,
    file: Option<PathBuf>,
    min_remaining: chrono::Duration,
) -> anyhow::Result<ExitCode> {
    stsbridge::logging::init_for_cli(false);
    let path = match file {
        Some(p) => p,
        None => targets::default_credentials_file()?,
    };
    let target = targets::ProfileTarget::open(path, profile)?;
    let credentials = fresh_bundle(&bundle, min_remaining).await?;
    println!("{}", target.write(&credentials)?);
    Ok(ExitCode::SUCCESS)
}

async fn write_launch_settings(
    bundle: BundleArgs,
    file: &std::path::Path,
    min_remaining: chrono::Duration,
) -> anyhow::Result<ExitCode> {
    stsbridge::logging::init_for_cli(false);
    let target = targets::LaunchSettingsTarget::open(file)?;
    let credentials = fresh_bundle(&bundle, min_remaining).await?;
    println!("{}", target.write(&credentials)?);
    eprintln!("{}", targets::launch_settings_note(file));
    Ok(ExitCode::SUCCESS)
}

/// The SSO settings from the profile (read as the AWS CLI reads the config file) or the flags.
fn sso_settings(args: &SsoArgs) -> anyhow::Result<sso::config::SsoSettings> {
    let flags = sso::config::Flags {
        start_url: args.start_url.clone(),
        region: args.sso_region.clone(),
        account_id: args.account_id.clone(),
        role_name: args.role_name.clone(),
    };
    let Some(profile) = &args.aws_profile else {
        return Ok(sso::config::resolve(
            &sso::config::AwsConfig::default(),
            None,
            &flags,
        )?);
    };
    let path = match std::env::var_os("AWS_CONFIG_FILE") {
        Some(p) => PathBuf::from(p),
        None => home()?.join(".aws").join("config"),
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the AWS config file {}", path.display()))?;
    let config = sso::config::AwsConfig::parse(&text)
        .with_context(|| format!("{} cannot be read as the AWS CLI reads it", path.display()))?;
    sso::config::resolve(&config, Some(profile), &flags)
        .with_context(|| format!("in {}", path.display()))
}

/// The home directory, as the AWS CLI finds `~`.
fn home() -> anyhow::Result<PathBuf> {
    std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .map(PathBuf::from)
        .context("HOME is not set: the AWS CLI's SSO cache is under ~/.aws/sso/cache")
}

async fn sso(command: SsoCommand) -> anyhow::Result<ExitCode> {
    stsbridge::logging::init_for_cli(false);
    let (args, no_browser) = match &command {
        SsoCommand::Login {
            sso, no_browser, ..
        } => (sso, *no_browser),
        SsoCommand::CredentialProcess { sso } => (sso, true),
    };
    let settings = sso_settings(args)?;
    let cache = sso::cache::Cache::under_home(&home()?);
    // The files are checked before anything else: a file stsbridge cannot edit should not cost
    // the user a browser round trip.
    let (profile_target, launch_target) = match &command {
        SsoCommand::Login {
            sync_profile,
            credentials_file,
            launch_settings,
            ..
        } => (
            match sync_profile {
                Some(profile) => Some(targets::ProfileTarget::open(
                    match credentials_file {
                        Some(p) => p.clone(),
                        None => targets::default_credentials_file()?,
                    },
                    profile,
                )?),
                None => None,
            },
            launch_settings
                .as_deref()
                .map(targets::LaunchSettingsTarget::open)
                .transpose()?,
        ),
        SsoCommand::CredentialProcess { .. } => (None, None),
    };
    // The SSO calls are unsigned or bearer-authenticated: no AWS credentials are involved.
    let sdk = stsbridge::aws::sdk_config(
        &settings.region,
        Duration::from_secs(20),
        Duration::from_secs(60),
    )
    .await;
    let (oidc, portal) = (sso::client::Oidc::new(&sdk), sso::client::Portal::new(&sdk));
    let browser = if no_browser {
        None
    } else {
        sso::prompt::Browser::detect(|k| std::env::var(k).ok())
    };
    let ui = sso::prompt::Terminal { browser };
    let signer = sso::login::Signer {
        settings: &settings,
        cache: &cache,
        oidc: &oidc,
        clock: &sso::poll::SystemClock,
        ui: &ui,
    };
    match command {
        SsoCommand::CredentialProcess { .. } => {
            let credentials = sso::login::credentials(&signer, &portal).await?;
            println!("{}", credentials.to_process_json().expose_secret());
        }
        SsoCommand::Login { export, force, .. } => {
            let (account, role) = settings.role()?;
            let (_, credentials) = sso::login::login(&signer, &portal, force).await?;
            ui.note(&format!(
                "role {role} in account {account}: credentials {} valid until {}",
                credentials.access_key_id,
                credentials
                    .expiration
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ));
            // Progress goes to stderr, so stdout holds only the --export lines.
            if let Some(target) = &profile_target {
                ui.note(&target.write(&credentials)?);
            }
            if let Some(target) = &launch_target {
                ui.note(&target.write(&credentials)?);
                ui.note(&targets::launch_settings_note(&target.path));
            }
            if let Some(format) = export {
                print!(
                    "{}",
                    consumers::export::render(&credentials, format)?.expose_secret()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
