//! `hangar-control-plane`: parses flags, binds the listener and runs the
//! control plane until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;

/// Hangar control plane: stores the config and streams it to data planes.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address for the gRPC API (hangarctl and data planes).
    #[arg(long, default_value = "127.0.0.1:7070")]
    listen: SocketAddr,
    /// Directory of the embedded config store; created if missing.
    #[arg(long, default_value = "./hangar-state")]
    state_dir: PathBuf,
    /// Seconds a data plane may stay silent before its health reports stop
    /// counting; a disconnected one is forgotten after that long.
    #[arg(long, default_value_t = 30.0, value_parser = positive_seconds)]
    dataplane_expiry: f64,
    /// Log line format on stderr (filter: HANGAR_LOG).
    #[arg(long, value_enum, default_value_t)]
    log_format: hangar_runtime::LogFormat,
}

fn positive_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 86_400.0 => Ok(s),
        _ => Err(format!(
            "'{text}' is not a number of seconds between 0 and 86400"
        )),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    hangar_runtime::init_tracing(args.log_format);
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hangar-control-plane: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let shutdown = CancellationToken::new();
    tokio::spawn(hangar_runtime::cancel_on_signal(shutdown.clone()));
    let settings = hangar_control_plane::Settings {
        state_dir: args.state_dir,
        dataplane_expiry: std::time::Duration::from_secs_f64(args.dataplane_expiry),
    };
    hangar_control_plane::run(listener, settings, shutdown).await?;
    Ok(())
}
