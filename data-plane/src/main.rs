//! `hangar-data-plane`: parses flags, binds the listener (or takes stdio)
//! and runs the data plane until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::num::{NonZeroU16, NonZeroUsize};
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use hangar_data_plane::Limits;
use hangar_data_plane::observe::{AccessLog, Observer};
use hangar_proto::auth::Token;
use hangar_proto::client::{ClientConfig, ClientTls};
use hangar_runtime::otlp::{OtlpSettings, Traces};
use tokio_util::sync::CancellationToken;

/// The data plane allocates and frees small buffers for every proxied call
/// on every worker thread; mimalloc keeps that cheaper and its RSS lower
/// than the system allocator's per-thread arenas. It is built without
/// transparent huge pages (`no_thp`): with them its arenas were backed by
/// 2 MiB pages, which doubled RSS (28 MB idle instead of 15) for nothing.
#[cfg(not(feature = "system-allocator"))]
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
    /// Address to serve MCP over HTTP on (`/mcp`, `/groups/NAME/mcp`);
    /// loopback unless told otherwise.
    #[arg(long, conflicts_with = "stdio", default_value = "127.0.0.1:9000")]
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
    /// File with the token to present to the control plane (else `HANGAR_TOKEN`).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// PEM CA to trust for an https:// control plane instead of the system roots.
    #[arg(long)]
    ca_cert: Option<PathBuf>,
    /// PEM client certificate for mutual TLS with the control plane; needs --client-key.
    #[arg(long, requires = "client_key")]
    client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(long, requires = "client_cert")]
    client_key: Option<PathBuf>,
    /// Largest request body accepted over HTTP, in bytes.
    #[arg(long, default_value_t = Limits::default().max_request_bytes)]
    max_request_bytes: usize,
    /// Most bytes all request bodies may hold together; beyond, 503.
    #[arg(long, default_value_t = Limits::default().max_buffered_request_bytes)]
    max_buffered_request_bytes: usize,
    /// Most HTTP requests served at once; more are refused with 503.
    #[arg(long, default_value_t = Limits::default().max_concurrent_requests)]
    max_concurrent_requests: usize,
    /// Most GET event streams held at once, apart from the requests' cap.
    #[arg(long, default_value_t = Limits::default().max_event_streams)]
    max_event_streams: usize,
    /// Seconds calls in flight get to finish after SIGTERM or SIGINT.
    #[arg(long, value_name = "SECONDS", default_value_t = Limits::default().shutdown_grace.as_secs_f64(), value_parser = seconds)]
    shutdown_grace: f64,
    /// Host names (or IPs) clients reach this data plane by, comma separated,
    /// accepted besides loopback and the listen address.
    #[arg(long, value_delimiter = ',')]
    allowed_hosts: Vec<String>,
    /// Browser origins (scheme://host:port), comma separated, accepted
    /// besides those of an allowed host on the listen port.
    #[arg(long, value_delimiter = ',', value_parser = origin)]
    allowed_origins: Vec<String>,
    /// Log line format on stderr (filter: HANGAR_LOG).
    #[arg(long, value_enum, default_value_t)]
    log_format: hangar_runtime::LogFormat,
    /// Threads that serve calls; default: one per CPU. Fewer leave more of
    /// the machine to the MCP clients beside the data plane.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    worker_threads: Option<u16>,
    /// Serve MCP clients without a credential even when listening beyond
    /// loopback (on loopback they are always served).
    #[arg(long)]
    allow_anonymous_clients: bool,
    /// A rate limit of this data plane alone, on top of the config's: tool
    /// calls a second, all clients together (MCP Hangar's variable). Without
    /// it and without `rate_limit:` in the config, nothing is limited.
    #[arg(long, env = "MCP_RATE_LIMIT_RPS", value_name = "RPS", value_parser = rps)]
    rate_limit_rps: Option<f64>,
    /// Calls at once of that limit; default: one second's worth.
    #[arg(long, env = "MCP_RATE_LIMIT_BURST", value_name = "N", requires = "rate_limit_rps", value_parser = clap::value_parser!(u32).range(1..))]
    rate_limit_burst: Option<u32>,
    /// Write one line per MCP request (who, group, method, tool, member,
    /// attempts, status, duration; never arguments or results) at this log
    /// level: error, warn, info, debug or trace. Lines go to the log output
    /// under the target hangar::access, shown whatever HANGAR_LOG says.
    #[arg(long, value_name = "LEVEL")]
    access_log: Option<tracing::Level>,
    #[command(flatten)]
    otlp: hangar_runtime::otlp::OtlpArgs,
}

impl Args {
    /// The HTTP limits the flags set; the rest keep their defaults.
    fn limits(&self) -> Limits {
        Limits {
            max_request_bytes: self.max_request_bytes,
            max_buffered_request_bytes: self.max_buffered_request_bytes,
            max_concurrent_requests: self.max_concurrent_requests,
            max_event_streams: self.max_event_streams,
            shutdown_grace: std::time::Duration::from_secs_f64(self.shutdown_grace),
            allowed_hosts: self.allowed_hosts.clone(),
            allowed_origins: self.allowed_origins.clone(),
            allow_anonymous_clients: self.allow_anonymous_clients,
            ..Limits::default()
        }
    }
}

/// A finite number of calls a second, more than 0.
fn rps(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!(
            "'{text}' is not a number of calls a second above 0"
        )),
    }
}

/// A finite, non-negative number of seconds, at most a day.
fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if (0.0..=86_400.0).contains(&s) => Ok(s),
        _ => Err(format!(
            "'{text}' is not a number of seconds from 0 to 86400"
        )),
    }
}

/// A browser origin: `http(s)://host[:port]`, nothing more.
fn origin(text: &str) -> Result<String, String> {
    match url::Url::parse(text) {
        Ok(url)
            if matches!(url.scheme(), "http" | "https")
                && url.host().is_some()
                && url.path() == "/"
                && !text.ends_with('/')
                && url.username().is_empty()
                && url.query().is_none() =>
        {
            Ok(text.to_owned())
        }
        _ => Err(format!(
            "'{text}' is not an origin (scheme://host:port, e.g. http://localhost:6274)"
        )),
    }
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

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let access_log = args.access_log.map(AccessLog::at);
    let directives: Vec<String> = access_log.iter().map(AccessLog::directive).collect();
    hangar_runtime::init_tracing(args.log_format, &directives);
    let open_files = hangar_runtime::raise_open_files_limit();
    tracing::debug!(?open_files, "open files limit");
    // Over HTTP, calls are served on threads of their own
    // (`DataPlane::serve_http_on_threads`) and this runtime keeps the
    // background work; over stdio it serves the one client as well.
    let mut runtime = if args.stdio {
        let mut runtime = tokio::runtime::Builder::new_multi_thread();
        if let Some(threads) = args.worker_threads {
            runtime.worker_threads(usize::from(threads));
        }
        runtime
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    runtime.enable_all();
    let served = runtime
        .build()
        .context("cannot start the runtime")
        .and_then(|runtime| runtime.block_on(run(args, access_log)));
    match served {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hangar-data-plane: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args, access_log: Option<AccessLog>) -> anyhow::Result<()> {
    let traces = match OtlpSettings::resolve(&args.otlp, "hangar-data-plane")? {
        Some(settings) => {
            let traces = Traces::start(&settings)?;
            tracing::info!(otlp.endpoint = settings.endpoint.as_deref().unwrap_or("(from OTEL_EXPORTER_OTLP_*)"), otlp.protocol = %settings.protocol, "sending traces over OTLP");
            Some(traces)
        }
        None => None,
    };
    let tracer = traces.as_ref().map(|t| t.tracer("hangar-data-plane"));
    let served = serve(args, Observer::new(tracer, access_log)).await;
    if let Some(traces) = traces {
        traces.shutdown().await;
    }
    served
}

async fn serve(args: Args, observer: Observer) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    tokio::spawn(hangar_runtime::cancel_on_signal(shutdown.clone()));
    let client = ClientConfig {
        token: Token::from_file_or_env(args.token_file.as_deref())?,
        tls: ClientTls::from_files(
            args.ca_cert.as_deref(),
            args.client_cert.as_deref(),
            args.client_key.as_deref(),
        )?,
    };
    for url in &args.control_plane {
        // Catches an https-only option on an http:// URL before serving.
        hangar_proto::client::endpoint(url, &client)?;
    }
    let limits = args.limits();
    let settings = hangar_data_plane::Settings {
        control_planes: args.control_plane,
        node_id: args.node_id,
        cache_dir: args.cache_dir,
        client,
    };
    let data_plane = hangar_data_plane::DataPlane::new(shutdown.clone()).with_observer(observer);
    if let Some(rps) = args.rate_limit_rps {
        let burst = args
            .rate_limit_burst
            .unwrap_or_else(|| rps.ceil().clamp(1.0, f64::from(u32::MAX)) as u32);
        tracing::info!(
            rps,
            burst,
            "rate limit of this data plane from MCP_RATE_LIMIT_RPS"
        );
        data_plane.limit_every_call(rps, burst);
    }
    // `--listen` has a default, so it is only absent in effect with --stdio.
    match args.listen.filter(|_| !args.stdio) {
        Some(addr) => {
            // Bind before anything else: the listener opens even while the
            // control plane is unreachable.
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            let local = listener.local_addr()?;
            data_plane.spawn_control(&settings, local.to_string())?;
            let threads = match args.worker_threads {
                Some(threads) => NonZeroUsize::from(NonZeroU16::try_from(threads)?),
                None => std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
            };
            tracing::debug!(threads, "serving threads");
            data_plane
                .serve_http_on_threads(listener.into_std()?, threads, &limits)
                .await?;
        }
        None => {
            match &args.group {
                Some(group) => data_plane.scope_to_group(group.clone()),
                // `hangar_call` over stdio may never call most servers.
                None => data_plane.start_processes_on_first_use(),
            }
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
