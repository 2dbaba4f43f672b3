//! `hangarctl`: the operator CLI of Hangar.
//!
//! # Layout
//! - `cli`: flags and subcommands (clap derive).
//! - `commands`: one module per subcommand.
//! - `output`: the status table and JSON forms.
//!
//! Exit codes: 0 success, 1 failure with one clear line per problem on
//! stderr, 2 usage error.

mod cli;
mod commands;
mod output;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{err:#}");
            ExitCode::FAILURE
        }
    }
}
