//! `stsbridge revoke` (issue #20): the command line over [`crate::revoke`]. Settings and targets
//! are read as `rotate` reads them; the JSON report goes to stdout, one line per principal to
//! stderr. Exit 0 only when every principal was revoked and every target re-issued; 1 otherwise
//! (and when it refused: nothing changed); 2 for a usage error.

use std::process::ExitCode;

use secrecy::SecretString;

use crate::revoke::{operator::Operator, Options};
use crate::rotation::fleet::Fleet;

/// The command's flags.
pub struct Args {
    pub target: Vec<String>,
    pub all: bool,
    pub dry_run: bool,
    pub rotate_source_key: bool,
    pub aws_profile: Option<String>,
    pub prune: bool,
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
