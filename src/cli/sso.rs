//! `stsbridge sso login` and `stsbridge sso credential-process`: a developer's IAM Identity
//! Center sign-in (see [`crate::sso`]) into the same writers as the Key Vault bundle.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;

use super::{SsoArgs, SsoCommand};
use crate::consumers::{self, targets};
use crate::sso;
use crate::sso::prompt::Prompter;

/// The SSO settings from the profile (read as the AWS CLI reads the config file) or the flags.
pub(super) fn sso_settings(args: &SsoArgs) -> anyhow::Result<sso::config::SsoSettings> {
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
pub(super) fn home() -> anyhow::Result<PathBuf> {
    std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .map(PathBuf::from)
        .context("HOME is not set: the AWS CLI's SSO cache is under ~/.aws/sso/cache")
}

/// The files `sso login` writes, opened (read and checked) before anything else: a file
/// stsbridge cannot edit should not cost the user a browser round trip.
struct Outputs {
    profile: Option<targets::ProfileTarget>,
    launch_settings: Option<targets::LaunchSettingsTarget>,
}

fn open_outputs(command: &SsoCommand) -> anyhow::Result<Outputs> {
    let SsoCommand::Login {
        sync_profile,
        credentials_file,
        launch_settings,
        ..
    } = command
    else {
        return Ok(Outputs {
            profile: None,
            launch_settings: None,
        });
    };
    let profile = match sync_profile {
        Some(profile) => Some(targets::ProfileTarget::open(
            match credentials_file {
                Some(p) => p.clone(),
                None => targets::default_credentials_file()?,
            },
            profile,
        )?),
        None => None,
    };
    let launch_settings = launch_settings
        .as_deref()
        .map(targets::LaunchSettingsTarget::open)
        .transpose()?;
    Ok(Outputs {
        profile,
        launch_settings,
    })
}

pub async fn sso(command: SsoCommand) -> anyhow::Result<ExitCode> {
    crate::logging::init_for_cli(false);
    let (args, no_browser) = match &command {
        SsoCommand::Login {
            sso, no_browser, ..
        } => (sso, *no_browser),
        SsoCommand::CredentialProcess { sso } => (sso, true),
    };
    let settings = sso_settings(args)?;
    let cache = sso::cache::Cache::under_home(&home()?);
    let outputs = open_outputs(&command)?;
    // The SSO calls are unsigned or bearer-authenticated: no AWS credentials are involved.
    let sdk = crate::aws::sdk_config(
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
    let SsoCommand::Login { export, force, .. } = command else {
        let credentials = sso::login::credentials(&signer, &portal).await?;
        println!("{}", credentials.to_process_json().expose_secret());
        return Ok(ExitCode::SUCCESS);
    };
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
    if let Some(target) = &outputs.profile {
        ui.note(&target.write(&credentials)?);
    }
    if let Some(target) = &outputs.launch_settings {
        ui.note(&target.write(&credentials)?);
        ui.note(&targets::launch_settings_note(&target.path));
    }
    if let Some(format) = export {
        print!(
            "{}",
            consumers::export::render(&credentials, format)?.expose_secret()
        );
    }
    Ok(ExitCode::SUCCESS)
}
