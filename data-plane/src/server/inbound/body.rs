//! A request body read from the client's connection as the handler polls
//! it: first what came with the head, then at most `Content-Length` more
//! bytes straight from the socket, so nothing of a pipelined next request
//! is ever taken. The guard reads it within its limits (size, deadline,
//! budget) as it reads any body.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use bytes::{BufMut, Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use tokio::net::TcpStream;

/// The largest read a body makes at once.
const MAX_READ: u64 = 64 * 1024;

/// A client connection, shared by its inbound loop and the body of the
/// request in progress.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) stream: TcpStream,
    /// Body bytes of the request in progress still on the socket.
    unread: AtomicU64,
}

impl Shared {
    pub(super) fn new(stream: TcpStream) -> Arc<Self> {
        Arc::new(Self {
            stream,
            unread: AtomicU64::new(0),
        })
    }

    /// Whether the body of the request in progress was read to its end.
    pub(super) fn body_read(&self) -> bool {
        self.unread.load(Ordering::Acquire) == 0
    }
}

/// The body of one request; see the [module docs](self). What is still
/// on the socket is counted in [`Shared`] alone, where the inbound loop
/// reads it too.
#[derive(Debug)]
pub(crate) struct ConnBody {
    shared: Arc<Shared>,
    /// What arrived with the head, until it is handed on.
    first: Option<Bytes>,
}

impl ConnBody {
    /// A body of `first` then `unread` more bytes from `shared`'s socket.
    pub(super) fn new(shared: Arc<Shared>, first: Bytes, unread: u64) -> Self {
        shared.unread.store(unread, Ordering::Release);
        Self {
            shared,
            first: (!first.is_empty()).then_some(first),
        }
    }

    fn unread(&self) -> u64 {
        self.shared.unread.load(Ordering::Acquire)
    }

    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Bytes>> {
        let stream = &self.shared.stream;
        loop {
            ready!(stream.poll_read_ready(cx))?;
            let unread = self.unread();
            // Exactly what the body still lacks, never more.
            let want = usize::try_from(unread.min(MAX_READ)).unwrap_or(usize::MAX);
            let mut chunk = BytesMut::with_capacity(want);
            match stream.try_read_buf(&mut (&mut chunk).limit(want)) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into())),
                Ok(n) => {
                    self.shared
                        .unread
                        .store(unread - n as u64, Ordering::Release);
                    return Poll::Ready(Ok(chunk.freeze()));
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    }
}

impl http_body::Body for ConnBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        if self.unread() == 0 {
            return Poll::Ready(None);
        }
        let read = ready!(self.poll_read(cx));
        Poll::Ready(Some(read.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.unread() == 0
    }

    fn size_hint(&self) -> SizeHint {
        let first = self.first.as_ref().map_or(0, Bytes::len) as u64;
        SizeHint::with_exact(first + self.unread())
    }
}
