//! `stsbridge revoke` (issue #20): the command line over [`crate::revoke`]. Settings and targets
//! are read as `rotate` reads them; the JSON report goes to stdout, one line per principal to
//! stderr. Exit 0 only when every principal was revoked and every target re-issued; 1 otherwise
//! (and when it refused: nothing changed); 2 for a usage error.

use std::process::ExitCode;

use secrecy::SecretString;

use crate::revoke::{operator::Operator, Options};
use crate::rotation::fleet::Fleet;

/// The command's flags.
#[derive(clap::Args)]
pub struct Args {
    /// With a targets file: revoke these targets' principals (comma-separated, or repeated).
    #[arg(long, value_delimiter = ',', conflicts_with = "all")]
    pub target: Vec<String>,
    /// With a targets file: every target's principal.
    #[arg(long)]
    pub all: bool,
    /// Print the policy documents it would put; change nothing anywhere.
    #[arg(long)]
    pub dry_run: bool,
    /// The IAM user's long-lived key leaked too: new key first, delete every key the vault
    /// does not hold, then revoke and re-issue.
    #[arg(long)]
    pub rotate_source_key: bool,
    /// The operator's AWS profile (e.g. one signed in with `stsbridge sso login`).
    #[arg(long, value_name = "NAME")]
    pub aws_profile: Option<String>,
    /// Delete revocation policies no live session can be older than (36 h for users, 12 h
    /// for roles); refuse younger ones.
    #[arg(long)]
    pub prune: bool,
    /// Web-identity targets: the function app's HttpRotate URL, called with force=true and
    /// the key in STSBRIDGE_FUNCTION_KEY.
    #[arg(long, value_name = "URL")]
    pub function_url: Option<String>,
}

pub async fn revoke(args: Args) -> anyhow::Result<ExitCode> {
    crate::logging::init_for_cli(true);
    let config = super::rotate::load_targets()?;
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let fleet = Fleet::new(config).await?;
    let selection = (!args.target.is_empty()).then(|| args.target.join(","));
    let selected = if fleet.implicit {
        if selection
            .as_deref()
            .is_some_and(|t| !t.eq_ignore_ascii_case("default"))
        {
            return usage("--target needs a targets file (StsbridgeTargetsFile or targets.json); without one the only target is the app settings");
        }
        fleet.services.clone()
    } else {
        match (selection.as_deref(), args.all) {
            (None, false) => {
                let known: Vec<String> = fleet.services.iter().map(|s| Fleet::name_of(s)).collect();
                return usage(&format!(
                    "with a targets file, say which targets to revoke: --target NAME,… or --all (the targets are {})",
                    known.join(", ")
                ));
            }
            (Some(_), true) => return usage("--target and --all exclude each other"),
            (names, _) => match fleet.select(names) {
                Ok(s) => s,
                Err(e) => return usage(&e),
            },
        }
    };
    if args.prune && args.rotate_source_key {
        return usage("--prune deletes old revocations; it does not go with --rotate-source-key");
    }
    if let Some(url) = &args.function_url {
        // Before anything is changed: the function key must not go to a URL it should not.
        if let Err(e) = crate::revoke::function_url(url) {
            return usage(&e);
        }
    }
    let settings = &selected[0].settings;
    let operator = Operator::new(
        args.aws_profile.as_deref(),
        &settings.region,
        settings.iam_endpoint.as_deref(),
        settings.sts_endpoint.as_deref(),
    )
    .await;
    let options = Options {
        dry_run: args.dry_run,
        rotate_source_key: args.rotate_source_key,
        prune: args.prune,
        function_url: args.function_url,
        function_key: std::env::var("STSBRIDGE_FUNCTION_KEY")
            .ok()
            .filter(|k| !k.is_empty())
            .map(SecretString::from),
    };
    let report = crate::revoke::run(&fleet, &selected, &operator, &options).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    for line in report.lines() {
        eprintln!("stsbridge: {line}");
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn usage(message: &str) -> anyhow::Result<ExitCode> {
    eprintln!("stsbridge revoke: {message}");
    Ok(ExitCode::from(2))
}
