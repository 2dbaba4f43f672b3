//! `hangar-data-plane`: parses flags, binds the listener (or takes stdio)
//! and runs the data plane until SIGINT or SIGTERM.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;

/// The data plane allocates and frees small buffers for every proxied call
/// on every worker thread; mimalloc keeps that cheaper and its RSS lower
/// than the system allocator's per-thread arenas.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Hangar data plane: balances MCP tool calls across groups of MCP servers.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Control-plane URLs, comma separated, tried in turn.
    #[arg(long, value_delimiter = ',', required = true, value_parser = control_plane_url)]
    control_plane: Vec<String>,
    /// Node id of this data plane, unique in the fleet.
    #[arg(long)]
    node_id: String,
    /// Address to serve MCP over HTTP on (`/mcp`).
    #[arg(long, conflicts_with = "stdio", required_unless_present = "stdio")]
    listen: Option<SocketAddr>,
    /// Serve one MCP client over stdin/stdout instead of HTTP.
    #[arg(long)]
    stdio: bool,
    /// With --stdio: be this group, transparently (its tools, balanced),
    /// instead of the server with the `hangar_call` tool.
    #[arg(long, requires = "stdio")]
    group: Option<String>,
    /// Keep the last good snapshot here and serve it at start, before the
    /// control plane answers.
    #[arg(long)]
    cache_dir: Option<std::path::PathBuf>,
    /// Log line format on stderr (filter: HANGAR_LOG).
    #[arg(long, value_enum, default_value_t)]
    log_format: hangar_runtime::LogFormat,
}

/// An http(s) URL with a host, as the gRPC client needs it.
fn control_plane_url(text: &str) -> Result<String, String> {
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(text.to_owned())
        }
        _ => Err(format!(
            "'{text}' is not an http:// or https:// URL (e.g. http://127.0.0.1:7070)"
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
            eprintln!("hangar-data-plane: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    tokio::spawn(hangar_runtime::cancel_on_signal(shutdown.clone()));
    let settings = hangar_data_plane::Settings {
        control_planes: args.control_plane,
        node_id: args.node_id,
        cache_dir: args.cache_dir,
    };
    let data_plane = hangar_data_plane::DataPlane::new(shutdown.clone());
    match args.listen {
        Some(addr) => {
            // Bind before anything else: the listener opens even while the
            // control plane is unreachable.
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            let local = listener.local_addr()?;
            data_plane.spawn_control(&settings, local.to_string())?;
            data_plane.serve_http(listener).await?;
        }
        None => {
            data_plane.spawn_control(&settings, "stdio".to_owned())?;
            match args.group {
                Some(group) => data_plane.serve_stdio_group(group).await?,
                None => data_plane.serve_stdio().await?,
            }
            shutdown.cancel();
        }
    }
    Ok(())
}
