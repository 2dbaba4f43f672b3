//! Reading a request body whole, within three bounds: its own size
//! (`--max-request-bytes`), a deadline, and the budget of bytes that every
//! body being read or served may hold together
//! (`--max-buffered-request-bytes`). The size limit alone lets many
//! clients each hold a body just under it (1,024 requests of 4 MiB are
//! 4 GiB); the budget makes "bodies are bounded" true of the process.
//!
//! A body takes its bytes from the budget frame by frame as they arrive,
//! and gives them back when the request is done with them ([`Charged`]);
//! a body that finds the budget spent is refused at once with 503, like a
//! request over the cap on requests in progress. The first
//! [`UNCHARGED_BYTES`] of every body are free: ordinary calls are far
//! smaller, so clients holding large bodies can never lock them out, and
//! the cap on requests in progress bounds those bytes already.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Bytes, HttpBody};
use axum::http::StatusCode;
use axum::response::Response;
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::server::jsonrpc::{INVALID_REQUEST, SERVER_ERROR, jsonrpc_error};
use crate::server::overload::RETRY_AFTER_S;
use crate::upstream::error::BoxError;

/// The bytes of each body not taken from the budget.
pub(crate) const UNCHARGED_BYTES: usize = 64 * 1024;

/// The bytes all request bodies may hold at once.
#[derive(Debug, Clone)]
pub(crate) struct BodyBudget {
    permits: Arc<Semaphore>,
    max: usize,
}

impl BodyBudget {
    /// A budget of `max` bytes (at least one body's worth is sensible; the
    /// caller chooses).
    pub(crate) fn new(max: usize) -> Self {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            permits: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// Bytes not taken by any body now.
    #[cfg(test)]
    fn available(&self) -> usize {
        self.permits.available_permits()
    }
}

/// The share of the budget a body holds; given back when dropped.
#[derive(Debug, Default)]
pub(crate) struct Charged(Option<OwnedSemaphorePermit>);

impl Charged {
    /// Takes `bytes` more from `budget`, or nothing if it has not as many.
    fn take(&mut self, budget: &BodyBudget, bytes: usize) -> bool {
        if bytes == 0 {
            return true;
        }
        let Ok(bytes) = u32::try_from(bytes) else {
            return false;
        };
        match budget.permits.clone().try_acquire_many_owned(bytes) {
            Ok(permit) => {
                match &mut self.0 {
                    Some(held) => held.merge(permit),
                    None => self.0 = Some(permit),
                }
                true
            }
            Err(_) => false,
        }
    }
}

/// How a body is read.
#[derive(Debug, Clone)]
pub(crate) struct BodyLimits {
    /// Largest body, in bytes.
    pub max_bytes: usize,
    /// How long the whole body may take to arrive.
    pub timeout: Duration,
    /// What all bodies may hold together.
    pub budget: BodyBudget,
}

/// Why a body could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Over `max_bytes`.
    TooLarge(usize),
    /// The budget of all bodies is spent.
    OverBudget(usize),
    /// Not all there within the deadline.
    Slow(Duration),
    /// The client broke it off.
    Broken,
}

impl BodyError {
    /// The answer: a JSON-RPC error (without an id: the body was not read)
    /// with the status that says what to do.
    pub(crate) fn into_response(self) -> Response {
        let (status, code, message) = match self {
            Self::TooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                INVALID_REQUEST,
                format!("request body is larger than {limit} bytes"),
            ),
            Self::OverBudget(budget) => (
                StatusCode::SERVICE_UNAVAILABLE,
                SERVER_ERROR,
                format!(
                    "overloaded: request bodies in memory reached this data plane's limit of {budget} bytes, retry later"
                ),
            ),
            Self::Slow(timeout) => (
                StatusCode::REQUEST_TIMEOUT,
                INVALID_REQUEST,
                format!(
                    "request body not received within {}",
                    hangar_runtime::Rounded(timeout)
                ),
            ),
            Self::Broken => (
                StatusCode::BAD_REQUEST,
                INVALID_REQUEST,
                "unreadable request body".to_owned(),
            ),
        };
        let mut response = jsonrpc_error(status, Value::Null, code, &message);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static(RETRY_AFTER_S),
            );
        }
        response
    }
}

/// Reads `body` whole within `limits`; the bytes and their share of the
/// budget, which the caller holds for as long as it holds the bytes.
///
/// With `refuse_declared`, a body whose declared length is over the limit
/// is refused before any of it is read, instead of at the deadline (for a
/// client that never sends it) or at the limit. Only a connection that
/// lingers after such an answer may do this (`inbound::Lingers`): closed
/// at once under a client still writing its body, it would be reset, and
/// the reset would discard the answer.
pub(crate) async fn read<B>(
    body: B,
    limits: &BodyLimits,
    refuse_declared: bool,
) -> Result<(Bytes, Charged), BodyError>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    if refuse_declared && body.size_hint().lower() > limits.max_bytes as u64 {
        return Err(BodyError::TooLarge(limits.max_bytes));
    }
    match tokio::time::timeout(limits.timeout, read_frames(body, limits)).await {
        Ok(read) => read,
        Err(_) => Err(BodyError::Slow(limits.timeout)),
    }
}

async fn read_frames<B>(body: B, limits: &BodyLimits) -> Result<(Bytes, Charged), BodyError>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let mut body = std::pin::pin!(body);
    let mut charged = Charged::default();
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|_| BodyError::Broken)?.into_data() else {
            continue; // trailers
        };
        let before = total;
        total = total.saturating_add(data.len());
        if total > limits.max_bytes {
            return Err(BodyError::TooLarge(limits.max_bytes));
        }
        let chargeable =
            total.saturating_sub(UNCHARGED_BYTES) - before.saturating_sub(UNCHARGED_BYTES);
        if !charged.take(&limits.budget, chargeable) {
            tracing::debug!(
                budget = limits.budget.max,
                "request bodies in memory at the budget, refusing a body"
            );
            return Err(BodyError::OverBudget(limits.budget.max));
        }
        chunks.push(data);
    }
    let bytes = match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop().unwrap_or_default(),
        _ => Bytes::from(chunks.concat()),
    };
    Ok((bytes, charged))
}

#[cfg(test)]
mod tests {
    use http_body_util::Full;

    use super::*;

    fn limits(max_bytes: usize, budget: usize) -> BodyLimits {
        BodyLimits {
            max_bytes,
            timeout: Duration::from_secs(5),
            budget: BodyBudget::new(budget),
        }
    }

    #[tokio::test]
    async fn bodies_hold_their_bytes_of_the_budget_until_dropped() {
        let limits = limits(UNCHARGED_BYTES + 100, 150);
        let body = || Full::new(Bytes::from(vec![b'x'; UNCHARGED_BYTES + 100]));
        let (first, held) = read(body(), &limits, false)
            .await
            .expect("within the budget");
        assert_eq!(first.len(), UNCHARGED_BYTES + 100);
        assert_eq!(limits.budget.available(), 50);
        assert_eq!(
            read(body(), &limits, false).await.err(),
            Some(BodyError::OverBudget(150)),
            "a second body does not fit"
        );
        assert_eq!(
            limits.budget.available(),
            50,
            "a refused body holds nothing"
        );
        drop(held);
        assert_eq!(limits.budget.available(), 150);
        assert!(read(body(), &limits, false).await.is_ok());
    }

    #[tokio::test]
    async fn small_bodies_pass_when_the_budget_is_spent() {
        let limits = limits(UNCHARGED_BYTES + 100, 100);
        let large = Full::new(Bytes::from(vec![b'x'; UNCHARGED_BYTES + 100]));
        let (_large, _held) = read(large, &limits, false).await.expect("fits the budget");
        assert_eq!(limits.budget.available(), 0);
        let small = Full::new(Bytes::from(vec![b'x'; 1000]));
        assert!(
            read(small, &limits, false).await.is_ok(),
            "never locked out"
        );
    }

    /// A body that declares its length and never sends a byte of it.
    struct Declared(u64);

    impl HttpBody for Declared {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            std::task::Poll::Pending
        }

        fn size_hint(&self) -> http_body::SizeHint {
            http_body::SizeHint::with_exact(self.0)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_length_declared_over_the_limit_is_refused_unread_where_allowed() {
        let limits = limits(10, 1000);
        assert_eq!(
            read(Declared(11), &limits, true).await.err(),
            Some(BodyError::TooLarge(10)),
            "not a timeout after waiting for the body"
        );
        let slow = Some(BodyError::Slow(Duration::from_secs(5)));
        assert_eq!(
            read(Declared(10), &limits, true).await.err(),
            slow,
            "a length within the limit is waited for"
        );
        assert_eq!(
            read(Declared(11), &limits, false).await.err(),
            slow,
            "without lingering, the body is read up to the limit"
        );
    }

    #[tokio::test]
    async fn a_body_over_the_size_limit_is_refused() {
        let limits = limits(10, 1000);
        let body = Full::new(Bytes::from(vec![b'x'; 11]));
        assert_eq!(
            read(body, &limits, false).await.err(),
            Some(BodyError::TooLarge(10))
        );
    }
}
