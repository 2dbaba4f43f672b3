//! `hangar-control-plane`: parses flags, binds the listener and runs the
//! control plane until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use hangar_control_plane::StoreLocation;
use hangar_control_plane::auth::{self, Access, ServerTls};
use hangar_control_plane::etcd::EtcdSettings;
use hangar_proto::auth::Token;
use hangar_runtime::otlp::{OtlpSettings, Traces};
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
    /// Keep the config in etcd instead, shared by every replica on the same
    /// --etcd-prefix: etcd://HOST:PORT[,HOST:PORT...].
    #[arg(long, conflicts_with = "state_dir", value_name = "URL")]
    store: Option<String>,
    /// Key prefix in etcd of this deployment's replicas.
    #[arg(long, default_value = EtcdSettings::DEFAULT_PREFIX, requires = "store")]
    etcd_prefix: String,
    /// Seconds a data plane may stay silent before its health reports stop
    /// counting; a disconnected one is forgotten after that long.
    #[arg(long, default_value_t = 30.0, value_parser = positive_seconds)]
    dataplane_expiry: f64,
    /// A member leaves rotation on every data plane when more than this
    /// share of the connected data planes that report it (and at least two)
    /// see it failing; one data plane alone never ejects it for the others.
    /// 1 turns fleet-wide ejection off.
    #[arg(long, default_value_t = 0.5, value_parser = share)]
    fleet_quorum: f64,
    /// File with the token `hangarctl` must present (apply, status).
    /// Without it and --dataplane-token-file, only a loopback --listen is allowed.
    #[arg(long)]
    admin_token_file: Option<PathBuf>,
    /// File with the token data planes must present on their stream.
    #[arg(long)]
    dataplane_token_file: Option<PathBuf>,
    /// PEM certificate (chain) to serve TLS with; needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// PEM CA whose client certificates data planes must present (mutual TLS).
    #[arg(long, requires = "tls_cert")]
    client_ca: Option<PathBuf>,
    /// Log line format on stderr (filter: HANGAR_LOG).
    #[arg(long, value_enum, default_value_t)]
    log_format: hangar_runtime::LogFormat,
    #[command(flatten)]
    otlp: hangar_runtime::otlp::OtlpArgs,
}

fn share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(q) if (0.0..=1.0).contains(&q) => Ok(q),
        _ => Err(format!("'{text}' is not a share between 0 and 1")),
    }
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
    hangar_runtime::init_tracing(args.log_format, &[]);
    let open_files = hangar_runtime::raise_open_files_limit();
    tracing::debug!(?open_files, "open files limit");
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hangar-control-plane: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Connections the kernel may hold for the control plane before it accepts
/// them. A restarted control plane has the whole fleet reconnecting within
/// a second or two; with the usual 1,024 the kernel drops the rest, and
/// each dropped data plane waits a second for its SYN to be sent again.
/// The kernel caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 16_384;

/// Binds `addr` as `TcpListener::bind` does (address reuse, so a restarted
/// control plane gets its port back at once), with a deeper backlog.
fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

async fn run(args: Args) -> anyhow::Result<()> {
    let store = match &args.store {
        Some(url) => StoreLocation::Etcd(
            EtcdSettings::parse(url, &args.etcd_prefix).map_err(anyhow::Error::msg)?,
        ),
        None => StoreLocation::Dir(args.state_dir),
    };
    let access = Access {
        admin_token: args
            .admin_token_file
            .as_deref()
            .map(Token::from_file)
            .transpose()?,
        dataplane_token: args
            .dataplane_token_file
            .as_deref()
            .map(Token::from_file)
            .transpose()?,
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            Some(ServerTls::from_files(cert, key, args.client_ca.as_deref())?)
        }
        _ => None,
    };
    // Before binding: an open API is never reachable, not even for a moment.
    auth::check_exposure(args.listen, &access, tls.as_ref())?;
    let listener =
        listen(args.listen).with_context(|| format!("cannot listen on {}", args.listen))?;
    let shutdown = CancellationToken::new();
    tokio::spawn(hangar_runtime::cancel_on_signal(shutdown.clone()));
    let traces = match OtlpSettings::resolve(&args.otlp, "hangar-control-plane")? {
        Some(settings) => {
            let traces = Traces::start(&settings)?;
            tracing::info!(otlp.endpoint = settings.endpoint.as_deref().unwrap_or("(from OTEL_EXPORTER_OTLP_*)"), otlp.protocol = %settings.protocol, "sending traces over OTLP");
            Some(traces)
        }
        None => None,
    };
    let settings = hangar_control_plane::Settings {
        store,
        dataplane_expiry: std::time::Duration::from_secs_f64(args.dataplane_expiry),
        fleet_quorum: args.fleet_quorum,
        access,
        tls,
        session_key_rotation: hangar_control_plane::Settings::DEFAULT_SESSION_KEY_ROTATION,
        tracer: traces.as_ref().map(|t| t.tracer("hangar-control-plane")),
    };
    let served = hangar_control_plane::run(listener, settings, shutdown).await;
    if let Some(traces) = traces {
        traces.shutdown().await;
    }
    served?;
    Ok(())
}
