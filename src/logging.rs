//! Logging set-up.
//!
//! Under the Functions host, stdout lines are logged as Information and stderr lines as Error
//! (`../shared/PROTOCOL.md` §1), so `serve` sends warnings and errors to stderr and the rest to
//! stdout. CLI commands log to stderr only: their stdout is data (JSON, `export` lines).
//!
//! **The cap.** Only stsbridge's own events are logged below `warn`. Third-party crates (the AWS
//! and Azure SDKs, hyper, reqwest, rustls…) can print request details at debug and trace level —
//! SigV4's canonical request holds the session token header, smithy's orchestrator prints
//! headers such as `x-amz-sso_bearer_token` — so they are capped at `warn`. The cap is a second
//! filter on the output layer, applied after `RUST_LOG`'s, so no directive can lift it: neither a
//! more specific target (`aws_smithy_runtime::client::orchestrator=trace`) nor a span filter
//! (`[try_attempt]=trace`), which an `EnvFilter` directive would let win (issue #15 L1).

use tracing::{Level, Metadata};
use tracing_subscriber::filter::{filter_fn, EnvFilter, FilterExt};
use tracing_subscriber::fmt::writer::MakeWriterExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Whether the cap lets this event or span through: any level for stsbridge's own targets,
/// `warn` and `error` for everyone else.
pub fn within_cap(metadata: &Metadata<'_>) -> bool {
    let target = metadata.target();
    let ours = target == "stsbridge" || target.starts_with("stsbridge::");
    ours || *metadata.level() <= Level::WARN
}

fn env_filter(default: &str) -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default))
}

fn init<W>(default: &str, writer: W)
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false)
        .with_target(false)
        .with_filter(env_filter(default).and(filter_fn(within_cap)));
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// For `serve`: info and below to stdout, warnings and errors to stderr.
pub fn init_for_host() {
    let writer = std::io::stderr
        .with_max_level(Level::WARN)
        .or_else(std::io::stdout);
    init("stsbridge=info,warn", writer);
}

/// For CLI commands: everything to stderr.
pub fn init_for_cli(verbose: bool) {
    let default = if verbose {
        "stsbridge=info,warn"
    } else {
        "stsbridge=warn,warn"
    };
    init(default, std::io::stderr);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_own_targets_log_below_warn() {
        use tracing::callsite::Identifier;
        use tracing::field::FieldSet;
        use tracing::metadata::Kind;
        struct Site;
        impl tracing::Callsite for Site {
            fn set_interest(&self, _: tracing::subscriber::Interest) {}
            fn metadata(&self) -> &Metadata<'_> {
                unimplemented!()
            }
        }
        static SITE: Site = Site;
        let meta = |target: &'static str, level: Level| {
            Metadata::new(
                "event",
                target,
                level,
                None,
                None,
                None,
                FieldSet::new(&[], Identifier(&SITE)),
                Kind::EVENT,
            )
        };
        assert!(within_cap(&meta("stsbridge", Level::TRACE)));
        assert!(within_cap(&meta("stsbridge::HttpRotate", Level::DEBUG)));
        assert!(!within_cap(&meta(
            "aws_smithy_runtime::client::orchestrator",
            Level::TRACE
        )));
        assert!(!within_cap(&meta("stsbridgefake", Level::DEBUG)));
        assert!(within_cap(&meta("aws_sigv4", Level::WARN)));
        assert!(within_cap(&meta("hyper", Level::ERROR)));
    }
}
