//! The command line: what each `stsbridge` command does, one module per command group.
//! `main.rs` only parses the arguments and calls [`run`].
//!
//! - [`serve`]: the custom handler the Functions host starts;
//! - [`rotate`]: `rotate` and `check`;
//! - [`revoke`]: `revoke` (incident response: deny every older session, re-issue);
//! - [`consumers`]: `show`, `credential-process`, `export`, `sync-profile`, `write-launch-settings`;
//! - [`sso`]: `sso login` and `sso credential-process`;
//! - [`fresh`]: `serve-credentials` and `exec`, which keep long-running programs fresh.
//!
//! Exit codes: 0 success; 1 failure (the error chain is printed on stderr); 2 usage error;
//! 143 `serve` stopped by SIGTERM (never 0 from `serve`: the Functions host would not restart a
//! handler that exits 0, and every later invocation would fail). `serve-credentials` exits 0 on
//! SIGTERM/SIGINT; `exec` exits with its command's code (128+N when a signal N ended it; 127
//! when the command is not found, 126 when it cannot be run).

pub mod consumers;
pub mod fresh;
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
        #[command(flatten)]
        args: revoke::Args,
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
        #[command(flatten)]
        mint: MintArgs,
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
    /// Serve the credentials to long-running programs over the AWS container credentials
    /// protocol; prints the two `export` lines that point the SDKs at it, then serves until
    /// SIGTERM/SIGINT.
    ServeCredentials {
        #[command(flatten)]
        source: SourceArgs,
        /// Where to listen: loopback (port 0 picks a free one) or 169.254.170.2 / .23 for a sidecar.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
        /// Read the authorization token from this file (no trailing newline) instead of
        /// generating one; the second line then names AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE.
        #[arg(long, value_name = "PATH")]
        token_file: Option<PathBuf>,
        /// Renew a minted set (--aws-profile, --web-identity, --roles-anywhere) this long before it expires, at
        /// most at half its lifetime; wider than botocore's 15 minutes. The bundle is polled.
        #[arg(long, default_value = "20m", value_parser = parse_margin)]
        min_remaining: chrono::Duration,
        /// How often to look for a newer published bundle (a rotation or a revocation).
        #[arg(long, default_value = "30s", value_parser = parse_margin)]
        poll_interval: chrono::Duration,
    },
    /// Run a command with the credentials: in its environment, or with --ecs-server from a
    /// private credentials endpoint that keeps it fresh however long it runs.
    Exec {
        #[command(flatten)]
        source: SourceArgs,
        /// Serve the credentials to the command over the container credentials protocol
        /// instead of putting them in its environment.
        #[arg(long)]
        ecs_server: bool,
        /// Without --ecs-server: refuse credentials that expire sooner than this.
        #[arg(long, default_value = "5m", value_parser = parse_margin)]
        min_remaining: chrono::Duration,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<std::ffi::OsString>,
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
    pub vault: Option<String>,
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

/// Credentials minted where the consumer is, without the vault's bundle: `--web-identity` (the
/// consumer's own Entra ID token → `AssumeRoleWithWebIdentity`) or `--roles-anywhere` (a Key
/// Vault certificate's key signs IAM Roles Anywhere's `CreateSession`).
#[derive(clap::Args, Clone)]
pub struct MintArgs {
    /// Get the credentials with this machine's Azure identity (managed identity, workload
    /// identity or a service principal) from STS directly, without Key Vault.
    #[arg(long, requires_all = ["role_arn", "audience"], conflicts_with = "roles_anywhere")]
    pub web_identity: bool,
    /// Get the credentials from IAM Roles Anywhere, the request signed by a Key Vault
    /// certificate's key (it never leaves the vault) with your Azure identity.
    #[arg(long, requires_all = ["role_arn", "trust_anchor_arn", "profile_arn", "certificate"])]
    pub roles_anywhere: bool,
    /// With --web-identity or --roles-anywhere: the IAM role to assume.
    #[arg(long, value_name = "ARN")]
    pub role_arn: Option<String>,
    /// With --web-identity: the Entra ID application the token is for (Application ID URI or client id).
    #[arg(long, value_name = "URI", requires = "web_identity")]
    pub audience: Option<String>,
    /// With --roles-anywhere: the trust anchor's ARN.
    #[arg(long, value_name = "ARN", requires = "roles_anywhere")]
    pub trust_anchor_arn: Option<String>,
    /// With --roles-anywhere: the profile's ARN.
    #[arg(long, value_name = "ARN", requires = "roles_anywhere")]
    pub profile_arn: Option<String>,
    /// With --roles-anywhere: the Key Vault certificate whose key signs: a name in --vault's
    /// vault, or https://VAULT/certificates/NAME[/VERSION].
    #[arg(long, value_name = "NAME|URI", requires = "roles_anywhere")]
    pub certificate: Option<String>,
    /// With --roles-anywhere: the intermediates: `certificate` (the certificate's own secret),
    /// `none`, or a Key Vault secret URI holding them in PEM.
    #[arg(long, value_name = "SOURCE", default_value = "certificate")]
    pub chain: String,
    /// With --web-identity or --roles-anywhere: the role session name (web identity: default the
    /// host name; Roles Anywhere: sent only when given, the profile must accept it).
    #[arg(long, value_name = "NAME")]
    pub role_session_name: Option<String>,
    /// With --web-identity or --roles-anywhere: the credentials' lifetime (900-43200, up to the
    /// role's — and the profile's — maximum).
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    pub duration_seconds: u64,
}

impl MintArgs {
    /// The validated role, when --web-identity is given.
    pub fn web_identity_role(
        &self,
    ) -> anyhow::Result<Option<crate::consumers::web_identity::WebIdentityRole>> {
        self.check_shared()?;
        if !self.web_identity {
            return Ok(None);
        }
        crate::consumers::web_identity::WebIdentityRole::new(
            self.role_arn.as_deref(),
            self.audience.as_deref(),
            self.role_session_name.as_deref(),
            self.duration_seconds,
        )
        .map(Some)
    }

    /// The Roles Anywhere source, when --roles-anywhere is given (`vault` is where a
    /// certificate given by name is).
    pub fn roles_anywhere_source(
        &self,
        bundle: &BundleArgs,
    ) -> anyhow::Result<Option<crate::consumers::roles_anywhere::RolesAnywhereSource>> {
        self.check_shared()?;
        if !self.roles_anywhere {
            return Ok(None);
        }
        let settings = crate::consumers::roles_anywhere::settings(
            &crate::consumers::roles_anywhere::RolesAnywhereFlags {
                role_arn: self.role_arn.as_deref(),
                trust_anchor_arn: self.trust_anchor_arn.as_deref(),
                profile_arn: self.profile_arn.as_deref(),
                certificate: self.certificate.as_deref(),
                vault: bundle.vault.as_deref(),
                chain: &self.chain,
                role_session_name: self.role_session_name.as_deref(),
                duration_secs: self.duration_seconds,
            },
        )?;
        crate::consumers::roles_anywhere::RolesAnywhereSource::new(
            settings,
            self.duration_seconds,
            crate::settings::azure_identity(&std::env::vars().collect()),
            bundle.verify_challenge_resource,
        )
        .map(Some)
    }

    /// The flags both sources share are for one of them.
    fn check_shared(&self) -> anyhow::Result<()> {
        let any = self.web_identity || self.roles_anywhere;
        for (given, flag) in [
            (self.role_arn.is_some(), "--role-arn"),
            (self.role_session_name.is_some(), "--role-session-name"),
        ] {
            anyhow::ensure!(
                !given || any,
                "{flag} is for --web-identity or --roles-anywhere, and neither is given"
            );
        }
        Ok(())
    }
}

/// Where `serve-credentials` and `exec` get credentials: the published bundle (the default),
/// an IAM Identity Center sign-in (--aws-profile), --web-identity, or --roles-anywhere.
#[derive(clap::Args, Clone)]
pub struct SourceArgs {
    #[command(flatten)]
    pub bundle: BundleArgs,
    /// Use the IAM Identity Center sign-in of this AWS config profile (`stsbridge sso login`)
    /// instead of the vault.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["web_identity", "roles_anywhere"])]
    pub aws_profile: Option<String>,
    #[command(flatten)]
    pub mint: MintArgs,
}

impl BundleArgs {
    pub fn source(&self) -> anyhow::Result<BundleSource> {
        let vault = self.vault.as_deref().filter(|v| !v.is_empty()).ok_or_else(|| {
            anyhow::anyhow!("--vault (KeyVaultUrl) is required: the vault holding the bundle (or, for serve-credentials and exec, --aws-profile, --web-identity or --roles-anywhere)")
        })?;
        BundleSource::new(
            vault,
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
        Command::Revoke { args, .. } => revoke::revoke(args).await,
        Command::Show { bundle } => consumers::show(bundle).await,
        Command::CredentialProcess {
            bundle,
            min_remaining,
            cache,
            mint,
        } => consumers::credential_process(bundle, mint, min_remaining, cache).await,
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
        Command::ServeCredentials {
            source,
            listen,
            token_file,
            min_remaining,
            poll_interval,
        } => {
            fresh::serve_credentials(source, listen, token_file, min_remaining, poll_interval).await
        }
        Command::Exec {
            source,
            ecs_server,
            min_remaining,
            command,
        } => fresh::exec(source, ecs_server, min_remaining, command).await,
        Command::Sso { command } => sso::sso(command).await,
    }
}
