//! The TLS side of the one listener: handshakes done here, not by tonic,
//! so that ALPN offers `http/1.1` beside `h2`.
//!
//! tonic's own TLS offers `h2` alone, and a scraper that speaks HTTP/1.1
//! (Prometheus) then fails the handshake on `/metrics`. Here each
//! connection's handshake runs in its own task within a deadline, and the
//! finished streams go to tonic, which serves HTTP/2 or HTTP/1.1 on each
//! as the client speaks. A `tokio_rustls` server stream is tonic's
//! `Connected` with `TlsConnectInfo`, so `peer_certs()` and
//! `remote_addr()` keep working for the services' interceptors.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes under way at once; a connection beyond them is closed at
/// once, so a flood of silent connections costs a bounded number of tasks.
const MAX_HANDSHAKES: usize = 1024;

/// Finished connections waiting for the server to take them.
const READY_QUEUE: usize = 64;

/// The connections of `listener`, each after its TLS handshake with
/// `config`, until `shutdown` is cancelled or the server stops taking them.
/// Accept errors are passed on, as tonic gets them from a plain listener.
pub(crate) fn tls_incoming(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    shutdown: CancellationToken,
) -> ReceiverStream<io::Result<TlsStream<TcpStream>>> {
    let (ready, incoming) = mpsc::channel(READY_QUEUE);
    tokio::spawn(accept(listener, TlsAcceptor::from(config), ready, shutdown));
    ReceiverStream::new(incoming)
}

async fn accept(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<io::Result<TlsStream<TcpStream>>>,
    shutdown: CancellationToken,
) {
    let mut handshakes = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) if handshakes.len() < MAX_HANDSHAKES => {
                    let acceptor = acceptor.clone();
                    handshakes.spawn(async move {
                        let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
                        match handshake.await {
                            Ok(Ok(tls)) => Some(tls),
                            Ok(Err(err)) => {
                                tracing::debug!(peer = %peer, error = %err, "TLS handshake failed");
                                None
                            }
                            Err(_) => {
                                tracing::debug!(peer = %peer, "TLS handshake timed out");
                                None
                            }
                        }
                    });
                }
                Ok((_, peer)) => {
                    tracing::warn!(peer = %peer, limit = MAX_HANDSHAKES, "too many TLS handshakes under way; closed a new connection");
                }
                Err(err) => {
                    if ready.send(Err(err)).await.is_err() {
                        return;
                    }
                }
            },
            Some(done) = handshakes.join_next() => {
                if let Ok(Some(tls)) = done
                    && ready.send(Ok(tls)).await.is_err()
                {
                    return;
                }
            }
            () = ready.closed() => return,
            () = shutdown.cancelled() => return,
        }
    }
}
