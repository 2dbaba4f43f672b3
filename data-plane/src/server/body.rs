//! An answer body that carries something along until it is sent.
//!
//! It keeps the size of what it wraps visible to hyper: an answer whose
//! length is known goes out with `Content-Length` in one write, not with
//! chunked framing, which keeps the client's connection reusable at once.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use http_body::{Frame, SizeHint};

/// `inner` with `held` kept alive until the body is sent or dropped (a
/// permit, a concurrency slot, an in-flight call).
pub(crate) struct Holding<T> {
    inner: Body,
    _held: T,
}

impl<T: Send + Unpin + 'static> Holding<T> {
    /// `inner` holding `held`.
    pub(crate) fn new(inner: Body, held: T) -> Self {
        Self { inner, _held: held }
    }

    /// `inner` holding `held`, as an axum body.
    pub(crate) fn body(inner: Body, held: T) -> Body {
        Body::new(Self::new(inner, held))
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
