//! The consumer commands: read the published bundle with the user's Azure identity and hand it
//! to a program — `show`, `credential-process`, `export`, `sync-profile`, `write-launch-settings`.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::Utc;
use secrecy::ExposeSecret;

use super::{BundleArgs, MintArgs};
use crate::consumers::{self, export::Format, targets};
use crate::secrets::SessionCredentials;

pub async fn show(bundle: BundleArgs) -> anyhow::Result<ExitCode> {
    crate::logging::init_for_cli(false);
    let shown = consumers::show(&bundle.source()?, Utc::now()).await?;
    println!("{}", serde_json::to_string_pretty(&shown)?);
    Ok(ExitCode::SUCCESS)
}

/// Reads the bundle and refuses it when it is (nearly) expired.
pub async fn fresh_bundle(
    bundle: &BundleArgs,
    min_remaining: chrono::Duration,
) -> anyhow::Result<SessionCredentials> {
    let fetched = consumers::fetch(&bundle.source()?).await?;
    consumers::check_remaining(&fetched.credentials, min_remaining, Utc::now())?;
    Ok(fetched.credentials)
}

pub async fn credential_process(
    bundle: BundleArgs,
    mint: MintArgs,
    min_remaining: chrono::Duration,
    use_cache: bool,
) -> anyhow::Result<ExitCode> {
    crate::logging::init_for_cli(false);
    let role = mint.web_identity_role()?;
    let roles_anywhere = mint.roles_anywhere_source(&bundle)?;
    let key = match (&role, &roles_anywhere) {
        (Some(role), _) => role.cache_key(),
        (_, Some(ra)) => ra.cache_key(),
        _ => format!(
            "{}|{}",
            bundle.vault.as_deref().unwrap_or_default(),
            bundle.secret
        ),
    };
    let cache_path = use_cache
        .then(|| consumers::cache::path_for(&key))
        .flatten();
    if let Some(path) = &cache_path {
        if let Some(c) = consumers::cache::read(path, min_remaining, Utc::now()) {
            println!("{}", c.to_process_json().expose_secret());
            return Ok(ExitCode::SUCCESS);
        }
    }
    let credentials = match (role, roles_anywhere) {
        (Some(role), _) => {
            let identity = crate::settings::azure_identity(&std::env::vars().collect());
            let source = consumers::web_identity::WebIdentitySource::new(role, identity).await?;
            let minted = source.mint().await?.credentials;
            consumers::check_remaining(&minted, min_remaining, Utc::now())?;
            minted
        }
        (_, Some(ra)) => {
            let minted = ra.mint().await?.credentials;
            consumers::check_remaining(&minted, min_remaining, Utc::now())?;
            minted
        }
        _ => fresh_bundle(&bundle, min_remaining).await?,
    };
    if let Some(path) = &cache_path {
        if let Err(e) = consumers::cache::write(path, &credentials) {
            tracing::warn!("could not cache the credentials: {e:#}");
        }
    }
    println!("{}", credentials.to_process_json().expose_secret());
    Ok(ExitCode::SUCCESS)
}

pub async fn export(
    bundle: BundleArgs,
    format: Format,
    min_remaining: chrono::Duration,
) -> anyhow::Result<ExitCode> {
    crate::logging::init_for_cli(false);
    let credentials = fresh_bundle(&bundle, min_remaining).await?;
    print!(
        "{}",
        consumers::export::render(&credentials, format)?.expose_secret()
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn sync_profile(
    bundle: BundleArgs,
    profile: &str,
    file: Option<PathBuf>,
    min_remaining: chrono::Duration,
) -> anyhow::Result<ExitCode> {
    crate::logging::init_for_cli(false);
    let path = match file {
        Some(p) => p,
        None => targets::default_credentials_file()?,
    };
    let target = targets::ProfileTarget::open(path, profile)?;
    let credentials = fresh_bundle(&bundle, min_remaining).await?;
    println!("{}", target.write(&credentials)?);
    Ok(ExitCode::SUCCESS)
}

pub async fn write_launch_settings(
    bundle: BundleArgs,
    file: &std::path::Path,
    min_remaining: chrono::Duration,
) -> anyhow::Result<ExitCode> {
    crate::logging::init_for_cli(false);
    let target = targets::LaunchSettingsTarget::open(file)?;
    let credentials = fresh_bundle(&bundle, min_remaining).await?;
    println!("{}", target.write(&credentials)?);
    eprintln!("{}", targets::launch_settings_note(file));
    Ok(ExitCode::SUCCESS)
}
