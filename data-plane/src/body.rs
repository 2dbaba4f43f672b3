//! Answer bodies that carry something along until they are sent.
//!
//! Both keep the size of what they wrap visible to hyper: an answer whose
//! length is known goes out with `Content-Length` in one write, not with
//! chunked framing, which keeps the client's connection reusable at once.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use futures::Stream;
use http_body::{Frame, SizeHint};

/// `inner` with `held` kept alive until the body is sent or dropped (a
/// permit, a concurrency slot, an in-flight call).
pub(crate) struct Holding<T> {
    inner: Body,
    _held: T,
}

impl<T: Send + Unpin + 'static> Holding<T> {
    /// `inner` holding `held`, as an axum body.
    pub(crate) fn body(inner: Body, held: T) -> Body {
        Body::new(Self { inner, _held: held })
    }
}

impl<T: Unpin> HttpBody for Holding<T> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A stream of data chunks of a known total length, if known (a member's
/// `Content-Length`), as a body.
pub(crate) struct Sized<S> {
    chunks: S,
    length: Option<u64>,
}

impl<S> Sized<S> {
    /// `chunks` that add up to `length` bytes when given.
    pub(crate) fn new(chunks: S, length: Option<u64>) -> Self {
        Self { chunks, length }
    }
}

impl<S, E> HttpBody for Sized<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    type Data = Bytes;
    type Error = E;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, E>>> {
        Pin::new(&mut self.chunks)
            .poll_next(cx)
            .map(|chunk| chunk.map(|chunk| chunk.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.length == Some(0)
    }

    fn size_hint(&self) -> SizeHint {
        self.length
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}
