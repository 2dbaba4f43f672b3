//! The data plane's own HTTP/1.1 server loop for client connections, run
//! in the connection's task: it serves the plain shape of an MCP call (see
//! `head`) and hands the connection to hyper, with what it has read, at
//! the first request of any other shape.
//!
//! Why not hyper for everything: hyper's server holds an 8 KiB write
//! buffer from accept, an 8 KiB read buffer, and another 8 KiB reserved by
//! its keep-alive read while a call is in flight. This loop takes its read buffer only once
//! the socket is readable and gives it up while the call runs, builds each
//! answer's head in a buffer of its own size, and watches for a client
//! that leaves by peeking at the socket. Odd requests stay hyper's, so
//! their answers (400, 431, `100 Continue`, HTTP/1.0, HTTP/2, upgrades)
//! do not change.
//!
//! A connection is served the same way either way: one request at a time
//! (pipelined requests wait in the buffer), the answer's head sent before
//! its body when the body is not ready, the connection closed after an
//! answer whose request body was not read to its end (after a lingering
//! read, `inbound/linger.rs`, so the client gets the answer), and on graceful
//! shutdown an idle connection closed at once and a busy one after its
//! answer, which then says `connection: close`.

mod answer;
mod body;
mod head;
mod linger;
mod prefixed;
#[cfg(test)]
mod tests;
mod watch;

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use bytes::{Buf, Bytes, BytesMut};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

pub(crate) use self::body::ConnBody;
use self::body::Shared;
use self::head::{Parsed, Plain};
use self::prefixed::Prefixed;
use self::watch::PeerWatch;
use crate::upstream::error::BoxError;

/// What serves the requests of a connection, whichever server reads them.
pub(crate) trait Service: Clone + Send + Sync + 'static {
    /// The body of its answers.
    type ResBody: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static;

    /// The answer to `request`.
    fn call<B>(&self, request: Request<B>) -> impl Future<Output = Response<Self::ResBody>> + Send
    where
        B: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + Unpin + 'static;
}

/// Limits on a request head.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadLimits {
    /// Most header fields.
    pub max_headers: usize,
    /// Most bytes of request line and fields.
    pub max_bytes: usize,
}

/// The first read of a request head takes this much; a head that fills
/// it doubles it, up to [`HeadLimits::max_bytes`].
const FIRST_READ: usize = 4 * 1024;

/// Body bytes that came with the head are copied out of the read buffer
/// up to this size, so that the buffer can be given up while the call runs.
const COPIED_BODY: usize = 16 * 1024;

/// Serves `stream` with `service` until the client closes it, an answer
/// ends it, or `shutdown` (see the [module docs](self)); requests of
/// another shape are served by `hyper` on the same connection.
pub(crate) async fn serve<S: Service>(
    stream: TcpStream,
    service: S,
    hyper: Arc<auto::Builder<TokioExecutor>>,
    limits: HeadLimits,
    shutdown: CancellationToken,
) -> Result<(), BoxError> {
    let shared = Shared::new(stream);
    let mut watch = PeerWatch::new(shared.clone());
    let mut buf = BytesMut::new();
    loop {
        let Plain {
            request,
            content_length,
            head_len,
        } = match read_head(&shared, &mut buf, limits, &shutdown).await? {
            Head::Closed => return Ok(()),
            Head::Other => {
                drop(watch);
                return hand_off(shared, buf.freeze(), service, &hyper, &shutdown).await;
            }
            Head::Plain(plain) => plain,
        };
        buf.advance(head_len);
        let with_head = usize::try_from(content_length).map_or(buf.len(), |n| n.min(buf.len()));
        let first = if with_head <= COPIED_BODY {
            let first = Bytes::copy_from_slice(&buf[..with_head]);
            buf.advance(with_head);
            first
        } else {
            buf.split_to(with_head).freeze()
        };
        if buf.is_empty() {
            // Nothing pipelined: no buffer while the call runs.
            buf = BytesMut::new();
        }
        let body = ConnBody::new(shared.clone(), first, content_length - with_head as u64);
        let mut request = request.map(|()| body);
        request.extensions_mut().insert(Lingers);
        watch.reset();
        let answered = {
            let mut call = pin!(service.call(request));
            poll_fn(|cx| match call.as_mut().poll(cx) {
                Poll::Ready(response) => Poll::Ready(Some(response)),
                Poll::Pending => watch.poll_gone(cx).map(|()| None),
            })
            .await
        };
        // The client left: its call was dropped.
        let Some(response) = answered else {
            return Ok(());
        };
        // A body left unread cannot be skipped to the next request: the
        // connection ends after this answer, which says so.
        let body_left = !shared.body_read();
        let closing = shutdown.is_cancelled() || body_left;
        let sent = answer::write(&shared.stream, response, closing, &mut watch).await?;
        match sent {
            answer::Sent::PeerGone => return Ok(()),
            _ if body_left => {
                linger::linger(&shared.stream).await;
                return Ok(());
            }
            answer::Sent::Close => return Ok(()),
            answer::Sent::KeepAlive => {}
        }
    }
}

/// Marks a request served here: its connection lingers after an answer
/// that leaves the body unread (`inbound/linger.rs`), so the body may be
/// refused before it is read (`request_body::read`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lingers;

/// What the next request head turned out to be.
#[expect(
    clippy::large_enum_variant,
    reason = "made once per request and taken apart at once; a box would cost every call an allocation"
)]
enum Head {
    /// The client closed the connection, or shutdown came while it was idle.
    Closed,
    Plain(Plain),
    /// A request for hyper.
    Other,
}

/// Reads until `buf` starts with a whole head.
async fn read_head(
    shared: &Shared,
    buf: &mut BytesMut,
    limits: HeadLimits,
    shutdown: &CancellationToken,
) -> io::Result<Head> {
    loop {
        if !buf.is_empty() {
            match head::parse(buf, limits.max_headers) {
                // Too large: hyper says so.
                Parsed::Partial if buf.len() >= limits.max_bytes => return Ok(Head::Other),
                Parsed::Partial => {}
                Parsed::Other => return Ok(Head::Other),
                Parsed::Plain(plain) => return Ok(Head::Plain(plain)),
            }
        }
        if buf.is_empty() {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return Ok(Head::Closed),
                ready = shared.stream.readable() => ready?,
            }
        } else {
            shared.stream.readable().await?;
        }
        if buf.len() == buf.capacity() {
            buf.reserve(buf.capacity().max(FIRST_READ));
        }
        let room = buf.capacity() - buf.len();
        match shared.stream.try_read_buf(buf) {
            Ok(0) => return Ok(Head::Closed),
            Ok(read) if read < room => crate::readiness::drained(&shared.stream),
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) => return Err(err),
        }
    }
}

/// Serves the rest of the connection with hyper, `read` first.
async fn hand_off<S: Service>(
    shared: Arc<Shared>,
    read: Bytes,
    service: S,
    hyper: &auto::Builder<TokioExecutor>,
    shutdown: &CancellationToken,
) -> Result<(), BoxError> {
    // Only a body kept past its answer still holds the connection.
    let Ok(shared) = Arc::try_unwrap(shared) else {
        return Ok(());
    };
    let io = TokioIo::new(Prefixed::new(read, shared.stream));
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let service = service.clone();
        async move { Ok::<_, Infallible>(service.call(request).await) }
    });
    let mut connection = pin!(hyper.serve_connection_with_upgrades(io, service));
    tokio::select! {
        served = connection.as_mut() => served,
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    }
}
