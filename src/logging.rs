//! Logging set-up.
//!
//! Under the Functions host, stdout lines are logged as Information and stderr lines as Error
//! (`../shared/PROTOCOL.md` §1), so `serve` sends warnings and errors to stderr and the rest to
//! stdout. CLI commands log to stderr only: their stdout is data (JSON, `export` lines).
//!
//! Whatever `RUST_LOG` says, the SDK internals that can print request details at debug level
//! (SigV4's canonical request includes the session token header; HTTP wire logs) are capped at
//! `warn`, so no filter setting can make a secret reach a log.

use tracing_subscriber::fmt::writer::MakeWriterExt;
use tracing_subscriber::EnvFilter;

/// Targets that are never logged below `warn`.
const CAPPED: &[&str] = &[
    "aws_sigv4",
    "aws_smithy_runtime",
    "aws_smithy_http_client",
    "aws_smithy_runtime_api",
    "aws_config",
    "hyper",
    "hyper_util",
    "reqwest",
    "h2",
    "rustls",
    "azure_core",
    "typespec_client_core",
    "azure_identity",
    "azure_security_keyvault_secrets",
];

fn filter(default: &str) -> EnvFilter {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    for target in CAPPED {
        filter = filter.add_directive(format!("{target}=warn").parse().expect("static directive"));
    }
    filter
}

/// For `serve`: info and below to stdout, warnings and errors to stderr.
pub fn init_for_host() {
    let writer = std::io::stderr
        .with_max_level(tracing::Level::WARN)
        .or_else(std::io::stdout);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter("stsbridge=info,warn"))
        .with_writer(writer)
        .with_ansi(false)
        .with_target(false)
        .try_init();
}

/// For CLI commands: everything to stderr.
pub fn init_for_cli(verbose: bool) {
    let default = if verbose {
        "stsbridge=info,warn"
    } else {
        "stsbridge=warn,warn"
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter(default))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .try_init();
}
