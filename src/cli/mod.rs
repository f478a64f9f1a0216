//! The command line: what each `stsbridge` command does, one module per command group.
//! `main.rs` only parses the arguments and calls [`run`].
//!
//! - [`serve`]: the custom handler the Functions host starts;
//! - [`rotate`]: `rotate` and `check`;
//! - [`revoke`]: `revoke` (incident response: deny every older session, re-issue);
//! - [`consumers`]: `show`, `credential-process`, `export`, `sync-profile`, `write-launch-settings`;
//! - [`sso`]: `sso login` and `sso credential-process`.
//!
//! Exit codes: 0 success; 1 failure (the error chain is printed on stderr); 2 usage error;
//! 143 `serve` stopped by SIGTERM (never 0 from `serve`: the Functions host would not restart a
//! handler that exits 0, and every later invocation would fail).

pub mod consumers;
pub mod revoke;
pub mod rotate;
pub mod serve;
pub mod sso;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::consumers::{export::Format, BundleSource};

#[derive(Parser)]
#[command(
    name = "stsbridge",
    version,
    about = "Fresh AWS STS credentials in Azure Key Vault"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
    /// Revoke every session the published sets could still use (AWS's AWSRevokeOlderSessions
    /// deny policy, with the operator's AWS credentials) and re-issue at once; JSON report.
    Revoke {
        /// Read settings from this local.settings.json's Values (over the environment).
        #[arg(long)]
        settings: Option<PathBuf>,
        /// With a targets file: revoke these targets' principals (comma-separated, or repeated).
        #[arg(long, value_delimiter = ',', conflicts_with = "all")]
        target: Vec<String>,
        /// With a targets file: every target's principal.
        #[arg(long)]
        all: bool,
        /// Print the policy documents it would put; change nothing anywhere.
        #[arg(long)]
        dry_run: bool,
        /// The IAM user's long-lived key leaked too: new key first, delete every key the vault
        /// does not hold, then revoke and re-issue.
        #[arg(long)]
        rotate_source_key: bool,
        /// The operator's AWS profile (e.g. one signed in with `stsbridge sso login`).
        #[arg(long, value_name = "NAME")]
        aws_profile: Option<String>,
        /// Delete revocation policies no live session can be older than (36 h for users, 12 h
        /// for roles); refuse younger ones.
        #[arg(long)]
        prune: bool,
        /// Web-identity targets: the function app's HttpRotate URL, called with force=true and
        /// the key in STSBRIDGE_FUNCTION_KEY.
        #[arg(long, value_name = "URL")]
        function_url: Option<String>,
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
pub enum SsoCommand {
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
pub struct SsoArgs {
    /// A profile of the AWS config file ($AWS_CONFIG_FILE, else ~/.aws/config) with
    /// sso_session (or sso_start_url and sso_region), sso_account_id and sso_role_name.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["start_url", "sso_region"])]
    pub aws_profile: Option<String>,
    /// The AWS access portal URL, e.g. https://my-org.awsapps.com/start (without --aws-profile).
    #[arg(long, value_name = "URL")]
    pub start_url: Option<String>,
    /// The IAM Identity Center region (without --aws-profile).
    #[arg(long, value_name = "REGION")]
    pub sso_region: Option<String>,
    /// The AWS account of the role.
    #[arg(long, value_name = "ID")]
    pub account_id: Option<String>,
    /// The role (permission set) name.
    #[arg(long, value_name = "NAME")]
    pub role_name: Option<String>,
}

/// Where the bundle is: the consumers' common options.
#[derive(clap::Args, Clone)]
pub struct BundleArgs {
    /// The vault holding the bundle.
    #[arg(long, env = "KeyVaultUrl")]
    pub vault: String,
    /// The bundle secret's name.
    #[arg(
        long,
        env = "CredentialsBundleSecretName",
        default_value = "AwsSessionCredentials"
    )]
    pub secret: String,
    /// Check the vault's authentication challenge against its domain (turn off only for a local emulator).
    #[arg(long, env = "KeyVaultVerifyChallengeResource", default_value = "true", action = clap::ArgAction::Set)]
    pub verify_challenge_resource: bool,
}

impl BundleArgs {
    pub fn source(&self) -> anyhow::Result<BundleSource> {
        BundleSource::new(
            &self.vault,
            &self.secret,
            self.verify_challenge_resource,
            crate::settings::azure_identity(&std::env::vars().collect()),
        )
    }
}

pub fn parse_margin(text: &str) -> Result<chrono::Duration, String> {
    crate::consumers::parse_duration(text)
}

impl Command {
    /// The `local.settings.json` a command reads its settings from (`--settings`), if any. It is
    /// put into the environment before the runtime starts: setting the environment is only sound
    /// single-threaded.
    pub fn local_settings(&self) -> Option<&std::path::Path> {
        match self {
            Command::Rotate { settings, .. }
            | Command::Revoke { settings, .. }
            | Command::Check { settings } => settings.as_deref(),
            _ => None,
        }
    }
}

/// Runs a command.
pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve => serve::serve().await,
        Command::Rotate {
            force,
            rotate_source_key,
            target,
            ..
        } => rotate::rotate(force, rotate_source_key, &target).await,
        Command::Check { .. } => rotate::check().await,
        Command::Revoke {
            target,
            all,
            dry_run,
            rotate_source_key,
            aws_profile,
            prune,
            function_url,
            ..
        } => {
            revoke::revoke(revoke::Args {
                target,
                all,
                dry_run,
                rotate_source_key,
                aws_profile,
                prune,
                function_url,
            })
            .await
        }
        Command::Show { bundle } => consumers::show(bundle).await,
        Command::CredentialProcess {
            bundle,
            min_remaining,
            cache,
        } => consumers::credential_process(bundle, min_remaining, cache).await,
        Command::Export {
            bundle,
            format,
            min_remaining,
        } => consumers::export(bundle, format, min_remaining).await,
        Command::SyncProfile {
            bundle,
            profile,
            credentials_file,
            min_remaining,
        } => consumers::sync_profile(bundle, &profile, credentials_file, min_remaining).await,
        Command::WriteLaunchSettings {
            bundle,
            file,
            min_remaining,
        } => consumers::write_launch_settings(bundle, &file, min_remaining).await,
        Command::Sso { command } => sso::sso(command).await,
    }
}
