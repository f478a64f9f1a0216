//! The `stsbridge` binary: parses the command line and runs it ([`stsbridge::cli`] holds every
//! command). Exit codes are documented there.

use std::process::ExitCode;

use clap::Parser;
use stsbridge::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(path) = cli.command.local_settings() {
        // Before the runtime starts: setting the environment is only sound single-threaded.
        if let Err(e) = stsbridge::settings::export_local_settings(path) {
            eprintln!("stsbridge: {e:#}");
            return ExitCode::from(1);
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(stsbridge::cli::run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("stsbridge: {e:#}");
            ExitCode::from(1)
        }
    }
}
