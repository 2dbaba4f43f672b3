//! The HTTP/1.1 client of `http://` members: a request written in one
//! system call and its answer read by the task that sent it, over a
//! connection taken from this thread's pool of idle ones.
//!
//! hyper's pooling client runs every connection as a task of its own and
//! hands requests, answers and each body frame across channels to it: two
//! more wake-ups per call, an 11 KB channel block and an 8 KB write buffer
//! per connection, and a read buffer held while the member thinks. Here a
//! call's connection is part of the call: nothing is allocated while the
//! member thinks (the read buffer is taken once the socket is readable),
//! and an answer that arrives whole costs one read. `https://` members stay
//! on hyper's client (`clients`), which speaks HTTP/2 where the member
//! offers it.
//!
//! Idle connections wait in a pool per thread and member address
//! (`pool`); one that the member closed while it idled is seen and
//! dropped when it is taken, and one that fails the write of a request
//! never delivered it, so the request goes on a fresh connection once.

mod body;
mod pool;
#[cfg(test)]
mod tests;
mod wire;

use std::io;
use std::time::Duration;

use bytes::Bytes;
use http::uri::Authority;
use http::{Request, Response};
use tokio::net::TcpStream;

pub use self::body::Body;
pub use self::pool::sweep;
use self::wire::Conn;

/// Why a request over this client failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No connection could be made: nothing was sent.
    #[error("cannot connect to {authority}")]
    Connect {
        /// The member's address.
        authority: Authority,
        /// Why (refused, unreachable, timed out).
        #[source]
        source: io::Error,
    },
    /// The request's URI has no host to connect to.
    #[error("the request's URI has no host")]
    NoHost,
    /// The connection failed after the request was (or may have been) sent.
    #[error("connection error")]
    Io(#[from] io::Error),
    /// The member closed the connection before its answer was complete.
    #[error("the member closed the connection before its answer was complete")]
    Closed,
    /// The member's answer is not HTTP/1.1 as RFC 9112 frames it.
    #[error("invalid HTTP answer: {0}")]
    Invalid(&'static str),
}

impl Error {
    /// True when no connection was made, so the request never left.
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Connect { .. } | Self::NoHost)
    }
}

/// Sends `request` to the host of its URI and reads the answer's head; the
/// body is read as the returned [`Body`] is polled. `connect_timeout`
/// bounds a new connection's TCP handshake.
pub async fn send(
    request: Request<Bytes>,
    connect_timeout: Duration,
) -> Result<Response<Body>, Error> {
    let authority = request.uri().authority().cloned().ok_or(Error::NoHost)?;
    let wire = wire::encode(&request, &authority);
    let head_only = request.method() == http::Method::HEAD;
    drop(request);
    let mut conn = loop {
        let Some(mut idle) = pool::take(&authority) else {
            let mut fresh = connect(&authority, connect_timeout).await?;
            match fresh.write(&wire).await {
                Ok(()) => break fresh,
                // Reset before it took a byte: as good as refused.
                Err(failed) if failed.written == 0 => {
                    return Err(Error::Connect {
                        authority,
                        source: failed.error,
                    });
                }
                Err(failed) => return Err(failed.error.into()),
            }
        };
        match idle.write(&wire).await {
            Ok(()) => break idle,
            // The member closed this connection while it idled, and the
            // kernel said so at once: not a byte of the request went out.
            Err(failed) if failed.written == 0 => continue,
            Err(failed) => return Err(failed.error.into()),
        }
    };
    let head = conn.read_head().await?;
    body::answer(conn, head, head_only, authority)
}

async fn connect(authority: &Authority, timeout: Duration) -> Result<Conn, Error> {
    // An IPv6 literal comes bracketed in a URI, never to the resolver.
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let address = (host, authority.port_u16().unwrap_or(80));
    let failed = |source| Error::Connect {
        authority: authority.clone(),
        source,
    };
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
        Ok(stream) => stream.map_err(failed)?,
        Err(_) => {
            let why = format!(
                "connect timed out after {}",
                hangar_runtime::Rounded(timeout)
            );
            return Err(failed(io::Error::new(io::ErrorKind::TimedOut, why)));
        }
    };
    // Requests and answers are small and written whole: never wait to
    // coalesce them.
    stream.set_nodelay(true).map_err(failed)?;
    Ok(Conn::new(stream))
}
