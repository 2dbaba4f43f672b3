//! The data plane's HTTP front: serves an already bound listener (each
//! connection by `server::inbound`, with hyper for what it leaves) within
//! [`Limits`] (header size and count, a deadline for every request
//! head and body, a cap on requests in progress) and drains on shutdown.
//!
//! Shutdown has two steps, as in linkerd: when `shutdown` is cancelled the
//! listener is closed, so new connections are refused, and every connection
//! is asked to finish: an idle one closes at once, a busy one after its
//! current answer. Calls in flight get [`Limits::shutdown_grace`] to finish;
//! then `halt` is cancelled, which ends whatever is left (event streams that
//! never end by themselves, calls past the grace period) and stops the
//! data plane's background work.
//!
//! There is no deadline on answers: a tool call or an event stream may run
//! as long as it needs.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::server::connections::{Connections, Registered};
use crate::server::front::Front;
use crate::server::inbound::{self, HeadLimits};
pub use crate::server::overload::Admission;

/// Bounds on what one client can make the data plane hold, and how long
/// shutdown waits. Every default is documented on its field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body, in bytes; a larger one gets 413. Default 4 MiB:
    /// tool arguments are JSON, and a batch of 100 calls fits many times
    /// over. (`--max-request-bytes`)
    pub max_request_bytes: usize,
    /// Most bytes all request bodies being read or served may hold
    /// together; a body that finds them taken gets 503 at once. Default 64
    /// MiB: thousands of ordinary calls, sixteen bodies at the size limit.
    /// (`--max-buffered-request-bytes`)
    pub max_buffered_request_bytes: usize,
    /// Largest request head (request line and headers), in bytes; a larger
    /// one gets 431. Default 64 KiB, about Envoy's 60 KiB: room for long
    /// bearer tokens, far below what could pressure memory. At least 8 KiB.
    pub max_header_bytes: usize,
    /// Most headers in one request; more get 431. Default 100, hyper's.
    pub max_headers: usize,
    /// How long a connection may take to send a complete request head,
    /// counted from accept or from the end of its previous answer, so it is
    /// also the idle timeout of HTTP/1 and HTTP/2 connections (see
    /// `server::connections`). Default 30 s (the
    /// clients' pools keep idle connections longer, and retry a request a
    /// closed idle connection never took).
    pub request_head_timeout: Duration,
    /// How long a request body may take to arrive once its head is in; a
    /// slower one gets 408. Default 30 s, at least 140 KB/s for the largest
    /// body.
    pub request_body_timeout: Duration,
    /// Most requests served at once (event streams apart); beyond it a
    /// request gets 503 with `Retry-After` at once instead of waiting in a
    /// queue. Default 1024, Envoy's default for a cluster's requests in
    /// flight: far above what one group of clients beside a data plane
    /// sends, and with [`Limits::max_request_bytes`] it bounds the memory
    /// held by request bodies. (`--max-concurrent-requests`)
    pub max_concurrent_requests: usize,
    /// Most GET event streams held at once, apart from
    /// [`Limits::max_concurrent_requests`]: SDK clients hold one per session
    /// and leave it idle, and idle streams must not lock calls out. Beyond
    /// it a stream gets 503 at once. Default 8192. (`--max-event-streams`)
    pub max_event_streams: usize,
    /// How long calls in flight may take to finish after shutdown began.
    /// Default 30 s, linkerd's. (`--shutdown-grace`)
    pub shutdown_grace: Duration,
    /// Names clients reach this data plane by, accepted as `Host` and
    /// `Origin` besides loopback and the listen address (DNS-rebinding
    /// protection refuses the rest). Needed when listening on all
    /// interfaces or behind a name. (`--allowed-hosts`)
    pub allowed_hosts: Vec<String>,
    /// Browser origins (`scheme://host:port`) accepted besides those of an
    /// allowed host on the listen port, e.g. a web app's dev server.
    /// (`--allowed-origins`)
    pub allowed_origins: Vec<String>,
    /// Serve MCP requests of anonymous clients even when listening beyond
    /// loopback (`--allow-anonymous-clients`); on loopback they are always
    /// served.
    pub allow_anonymous_clients: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_bytes: 4 * 1024 * 1024,
            max_buffered_request_bytes: 64 * 1024 * 1024,
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            request_head_timeout: Duration::from_secs(30),
            request_body_timeout: Duration::from_secs(30),
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            allow_anonymous_clients: false,
            max_concurrent_requests: 1024,
            max_event_streams: 8192,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// hyper's smallest read buffer; a smaller header limit would make it panic.
const MIN_HEADER_BYTES: usize = 8 * 1024;
/// HTTP/2 pings find peers that vanished without closing their connection.
const H2_KEEP_ALIVE: Duration = Duration::from_secs(20);
/// How long accepting pauses after shedding idle connections, for their
/// sockets to close.
const SHED_PAUSE: Duration = Duration::from_millis(5);
/// After the grace period, how long connections get to notice `halt`.
const HALT_PATIENCE: Duration = Duration::from_secs(1);

/// Serves `front` on `listener` until `shutdown`, then drains as the
/// [module docs](self) say and returns once every connection is closed.
/// `connections` are those of every thread serving the same socket.
pub(crate) async fn serve(
    listener: TcpListener,
    front: Front,
    connections: Arc<Connections>,
    limits: &Limits,
    shutdown: &CancellationToken,
    halt: &CancellationToken,
) {
    let hyper = Arc::new(builder(limits));
    let head = HeadLimits {
        max_headers: limits.max_headers,
        max_bytes: limits.max_header_bytes.max(MIN_HEADER_BYTES),
    };
    let tracker = TaskTracker::new();
    loop {
        let stream = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    accept_failed(err, &connections).await;
                    continue;
                }
            },
        };
        if connections.fds_back() {
            tracing::info!(
                connections = connections.len(),
                "accepting connections again"
            );
        }
        let registered = connections.register();
        let serving = Serving {
            hyper: &hyper,
            head,
            tracker: &tracker,
            idle_timeout: limits.request_head_timeout,
            shutdown,
            halt,
        };
        serving.spawn(stream, &front, registered);
    }
    drop(listener);
    let admission = front.admission();
    tracing::info!(
        connections = tracker.len(),
        calls = admission.calls_in_flight(),
        "no longer accepting connections, draining"
    );
    drain(tracker, limits.shutdown_grace, admission, halt).await;
}

/// hyper's connection builder with `limits` applied.
fn builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let header_bytes = limits.max_header_bytes.max(MIN_HEADER_BYTES);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.request_head_timeout)
        .max_headers(limits.max_headers)
        // The head must fit in the read buffer, so this bounds its size.
        .max_buf_size(header_bytes);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(H2_KEEP_ALIVE)
        .keep_alive_timeout(H2_KEEP_ALIVE);
    builder
}

/// What every connection is served with.
struct Serving<'a> {
    /// For requests the inbound loop leaves to hyper.
    hyper: &'a Arc<auto::Builder<TokioExecutor>>,
    head: HeadLimits,
    /// Every connection's task, to wait for when draining.
    tracker: &'a TaskTracker,
    /// How long a connection may go without a request in progress.
    idle_timeout: Duration,
    shutdown: &'a CancellationToken,
    halt: &'a CancellationToken,
}

impl Serving<'_> {
    /// Spawns the task serving one connection: it ends when the client
    /// closes, after a graceful shutdown, when the connection has been idle
    /// too long or is shed, or at once on `halt`.
    fn spawn(&self, stream: TcpStream, front: &Front, registered: Registered) {
        let peer = stream.peer_addr().ok();
        // Answers go out in several writes (SSE events); without NODELAY,
        // Nagle's algorithm meets the client's delayed ACK and adds ~40 ms.
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(error = %err, "cannot set TCP_NODELAY");
        }
        let service = front.for_connection(registered.conn().clone(), peer.map(|p| p.ip()));
        let (hyper, head, shutdown) = (self.hyper.clone(), self.head, self.shutdown.clone());
        let halt = self.halt.clone();
        let idle_timeout = self.idle_timeout;
        let span = tracing::debug_span!("accept", client.addr = ?peer);
        self.tracker.spawn(
            async move {
                // Made here, not captured: a future captured by this block
                // and then moved into `select!` would take its size twice
                // in the task (10 KB of every connection).
                tokio::select! {
                    served = inbound::serve(stream, service, hyper, head, shutdown) => {
                        if let Err(err) = served {
                            tracing::debug!(error = %err, "connection ended with an error");
                        }
                    }
                    () = registered.conn().closed(idle_timeout) => {}
                    () = halt.cancelled() => {}
                }
                drop(registered);
            }
            .instrument(span),
        );
    }
}

/// An accept error is about one connection (the client gave up) or about
/// the process. Out of file descriptors, idle connections are closed to make
/// room (those that never carried a request first), said once per episode
/// ([`Connections::out_of_fds`]); with none idle, or for other errors, the
/// loop pauses rather than spin.
async fn accept_failed(err: io::Error, connections: &Connections) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        err.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    // EMFILE (this process) or ENFILE (the system).
    if matches!(err.raw_os_error(), Some(24 | 23)) {
        let shed = connections.shed_idle();
        if connections.out_of_fds() {
            tracing::warn!(
                error = %err,
                connections = connections.len(),
                "out of file descriptors: closing idle connections to accept new ones"
            );
        }
        if shed > 0 {
            // Let the shed connections' tasks close their sockets.
            tokio::task::yield_now().await;
            tokio::time::sleep(SHED_PAUSE).await;
            return;
        }
    } else {
        tracing::warn!(error = %err, "cannot accept connections");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Lets calls in flight finish within `grace`, then halts the rest and
/// waits (briefly) for their connections to close.
async fn drain(
    tracker: TaskTracker,
    grace: Duration,
    admission: &Admission,
    halt: &CancellationToken,
) {
    // Every connection saw `shutdown` already: idle ones are closing, busy
    // ones close after their answer.
    tracker.close();
    let closed = tracker.wait();
    tokio::pin!(closed);
    let done = tokio::select! {
        () = &mut closed => true,
        () = admission.calls_finished() => false,
        () = tokio::time::sleep(grace) => {
            tracing::warn!(grace = ?grace, calls = admission.calls_in_flight(), "grace period over, ending calls still in flight");
            false
        }
    };
    halt.cancel();
    if !done && tokio::time::timeout(HALT_PATIENCE, closed).await.is_err() {
        tracing::debug!("connections still closing after halt");
    }
    tracing::info!("drained");
}
