//! A TCP listener for `axum::serve` that can cut every open connection.
//!
//! axum's graceful shutdown waits for in-flight requests, but a test that stops
//! a member wants it gone at once, as if the process died. Each accepted socket
//! is therefore registered through a duplicate handle; [`Connections::close_all`]
//! shuts those sockets down, which wakes hyper with EOF/EPIPE on its own handle
//! so the connection task ends. The duplicate costs one `dup` per connection and
//! nothing per read or write.

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// The open connections of one server run.
#[derive(Debug, Default)]
pub(super) struct Connections {
    inner: Mutex<Registry>,
}

#[derive(Debug, Default)]
struct Registry {
    /// Set by `close_all`: a connection accepted afterwards is cut at once.
    closed: bool,
    next_id: u64,
    /// Duplicate handles of the open sockets, removed when the connection drops
    /// (holding one longer would keep the socket from sending its FIN).
    open: HashMap<u64, std::net::TcpStream>,
}

impl Connections {
    /// Shuts down every open connection and any accepted later.
    pub(super) fn close_all(&self) {
        let mut registry = self.inner.lock();
        registry.closed = true;
        for socket in registry.open.values() {
            // Already closed by the peer is fine.
            let _ = socket.shutdown(Shutdown::Both);
        }
    }

    fn track(self: &Arc<Self>, stream: TcpStream) -> io::Result<TrackedStream> {
        stream.set_nodelay(true)?;
        let std = stream.into_std()?;
        let dup = std.try_clone()?;
        let stream = TcpStream::from_std(std)?;
        let mut registry = self.inner.lock();
        if registry.closed {
            let _ = dup.shutdown(Shutdown::Both);
        }
        let id = registry.next_id;
        registry.next_id += 1;
        registry.open.insert(id, dup);
        drop(registry);
        Ok(TrackedStream {
            io: stream,
            _guard: Registered {
                id,
                connections: Arc::clone(self),
            },
        })
    }
}

// === impl TrackingListener ===

/// A bound listener whose accepted connections are registered in [`Connections`].
#[derive(Debug)]
pub(super) struct TrackingListener {
    listener: TcpListener,
    connections: Arc<Connections>,
}

impl TrackingListener {
    pub(super) fn new(listener: TcpListener, connections: Arc<Connections>) -> Self {
        Self {
            listener,
            connections,
        }
    }
}

impl axum::serve::Listener for TrackingListener {
    type Io = TrackedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            // axum's impl retries accept errors with a short backoff.
            let (stream, addr) = axum::serve::Listener::accept(&mut self.listener).await;
            match self.connections.track(stream) {
                Ok(io) => return (io, addr),
                Err(error) => tracing::debug!(client.addr = %addr, %error, "dropping connection"),
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

// === impl TrackedStream ===

/// An accepted connection; unregisters itself when hyper drops it.
#[derive(Debug)]
pub(super) struct TrackedStream {
    // Field order matters: the socket closes before the duplicate handle does.
    io: TcpStream,
    _guard: Registered,
}

#[derive(Debug)]
struct Registered {
    id: u64,
    connections: Arc<Connections>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.connections.inner.lock().open.remove(&self.id);
    }
}

impl AsyncRead for TrackedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for TrackedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
