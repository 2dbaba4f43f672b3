//! What every Hangar process shares: how it logs and learns to stop, and
//! the small helpers with one home here: [`error_chain`] and [`Rounded`]
//! for messages, [`backoff::Backoff`] for retry loops, [`durable::replace_file`]
//! for state that must survive a crash, [`raise_open_files_limit`] at start,
//! [`unix_ms`] for times that travel between machines.
//!
//! Logs always go to stderr, because a data plane started with `--stdio`
//! speaks MCP on stdout. The filter comes from `HANGAR_LOG`, then
//! `RUST_LOG`, else [`DEFAULT_LOG_FILTER`]; `--log-format` ([`LogFormat`])
//! picks human text or one JSON object per line. [`metrics`] serves a
//! Prometheus registry at `/metrics`; [`otlp`] sends OpenTelemetry traces.

pub mod backoff;
pub mod durable;
mod errors;
mod fds;
pub mod metrics;
pub mod otlp;

pub use errors::{Rounded, error_chain};
pub use fds::raise_open_files_limit;

use tokio_util::sync::CancellationToken;

/// Milliseconds since the Unix epoch (0 for a clock set before it): for
/// times that are stored or sent to another process, where an `Instant`
/// means nothing.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Lifecycle events of Hangar; the MCP SDK's per-session chatter only from warn up.
pub const DEFAULT_LOG_FILTER: &str = "info,rmcp=warn";

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines, coloured on a terminal.
    #[default]
    Text,
    /// One JSON object per line, event fields at the top level, for log
    /// collectors.
    Json,
}

/// Installs the global subscriber: stderr, in `format`, filtered by
/// `HANGAR_LOG`, then `RUST_LOG`, else [`DEFAULT_LOG_FILTER`], with
/// `directives` (`target=level`) added: what a flag asked for explicitly
/// (an access log) shows whatever the filter says of the rest.
pub fn init_tracing(format: LogFormat, directives: &[String]) {
    let mut filter = std::env::var("HANGAR_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| DEFAULT_LOG_FILTER.to_owned());
    for directive in directives {
        filter.push(',');
        filter.push_str(directive);
    }
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // A line that cannot be written (stderr a closed pipe) is dropped:
        // reporting it to stderr too would panic the task that logged it,
        // the signal task among them, and SIGTERM would stop nothing.
        .log_internal_errors(false)
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter));
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        // Flattened so that collectors find `message` and the event's
        // fields (`config.version`, `member.id`, ...) without nesting.
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Cancels `token` on SIGINT or SIGTERM; spawn it beside the server.
pub async fn cancel_on_signal(token: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(err) => {
                // Only outside a runtime or out of signal slots; Ctrl-C
                // still stops the process, so keep serving.
                tracing::warn!(error = %err, "cannot install a SIGTERM handler");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
    token.cancel();
}
