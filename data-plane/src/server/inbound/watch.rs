//! Whether the client is still there while its call runs: a client that
//! closes its connection ends the call, as it does under hyper, so a
//! cancelled call frees its slot and its member at once. The watch peeks
//! at the socket and holds no buffer; it starts once the request body is
//! read (before that the body's own reads see the close), and stops for
//! good once the client has sent more (a pipelined request, read after
//! the answer).

use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::ReadBuf;

use super::body::Shared;

/// See the [module docs](self).
#[derive(Debug)]
pub(super) struct PeerWatch {
    shared: Arc<Shared>,
    /// The client sent more: nothing more to learn until it is read.
    stopped: bool,
}

impl PeerWatch {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            stopped: false,
        }
    }

    /// Watches for the next request.
    pub(super) fn reset(&mut self) {
        self.stopped = false;
    }

    /// Ready once the client has closed its connection (or it failed).
    ///
    /// Polled after the call in the same wake-up: while the body is unread
    /// it registers nothing, and the call's read of the body's last bytes
    /// is what lets the next poll start watching.
    pub(super) fn poll_gone(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.stopped || !self.shared.body_read() {
            return Poll::Pending;
        }
        let mut byte = [0u8; 1];
        let mut peeked = ReadBuf::new(&mut byte);
        match self.shared.stream.poll_peek(cx, &mut peeked) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(0) | Err(_)) => Poll::Ready(()),
            Poll::Ready(Ok(_)) => {
                self.stopped = true;
                Poll::Pending
            }
        }
    }
}
