//! Admission: caps on requests in progress, and the count of calls in
//! flight that shutdown waits for.
//!
//! A request holds a permit from when it arrives until its answer has been
//! sent (or the client went away), streamed answers included. Without a
//! permit it is refused at once with 503 and `Retry-After`, never queued: a
//! queue would only add latency to calls that the client can better retry
//! against another data plane. GET requests (the event streams that wait
//! for server messages, one per SDK client session, idle for hours) have
//! their own, larger cap, so idle streams never use up the calls' permits;
//! every other request counts as a call in flight.

use std::sync::Arc;
use std::time::Duration;

use axum::body::HttpBody;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TaskTrackerToken;

use crate::server::jsonrpc::{SERVER_ERROR, jsonrpc_error};

/// Seconds a refused client is asked to wait before trying again.
pub(crate) const RETRY_AFTER_S: &str = "1";
/// The body of a refused request is read only this far, and only this
/// long, to answer with its id; a longer or slower one gets `id: null`.
const ID_PEEK_BYTES: usize = 16 * 1024;
const ID_PEEK_PATIENCE: Duration = Duration::from_secs(1);

/// What an admitted request holds until its answer has been sent.
pub(crate) type Admitted = (OwnedSemaphorePermit, Option<TaskTrackerToken>);

/// The permits and the calls in flight of one HTTP front.
#[derive(Debug, Clone)]
pub struct Admission {
    /// Requests other than GET.
    calls_cap: Cap,
    /// GET event streams.
    streams_cap: Cap,
    calls: TaskTracker,
}

/// One cap: its permits and its size.
#[derive(Debug, Clone)]
struct Cap {
    permits: Arc<Semaphore>,
    max: usize,
}

impl Cap {
    fn new(max: usize) -> Self {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            permits: Arc::new(Semaphore::new(max)),
            max,
        }
    }
}

// === impl Admission ===

impl Admission {
    /// At most `max_calls` requests other than GET and `max_streams` GET
    /// event streams at once (each at least one).
    pub fn new(max_calls: usize, max_streams: usize) -> Self {
        Self {
            calls_cap: Cap::new(max_calls),
            streams_cap: Cap::new(max_streams),
            calls: TaskTracker::new(),
        }
    }

    fn cap_of(&self, method: &Method) -> &Cap {
        if method == Method::GET {
            &self.streams_cap
        } else {
            &self.calls_cap
        }
    }

    /// Calls (requests other than GET) whose answer is not fully sent yet.
    pub fn calls_in_flight(&self) -> usize {
        self.calls.len()
    }

    /// Completes once no call is in flight; calls that start later still
    /// count, and are waited for too.
    pub async fn calls_finished(&self) {
        self.calls.close();
        self.calls.wait().await;
    }

    /// A permit for a request with `method` if one is free: the request
    /// holds it (and, unless it is a GET stream, counts as a call in
    /// flight) until its answer is sent.
    pub fn try_admit(&self, method: &Method) -> Option<Admitted> {
        let permit = self
            .cap_of(method)
            .permits
            .clone()
            .try_acquire_owned()
            .ok()?;
        let call = (method != Method::GET).then(|| self.calls.token());
        Some((permit, call))
    }

    /// The answer to a request that found no free permit: 503 with
    /// `Retry-After` and a JSON-RPC error carrying the request's id when a
    /// short body shows it.
    pub async fn refuse(&self, request: Request) -> Response {
        let streams = request.method() == Method::GET;
        let max = self.cap_of(request.method()).max;
        tracing::debug!(limit = max, streams, "overloaded, refusing a request");
        let id = peek_id(request).await;
        let message = if streams {
            format!(
                "overloaded: this data plane holds its limit of {max} event streams, retry later"
            )
        } else {
            format!(
                "overloaded: this data plane is serving its limit of {max} requests, retry later"
            )
        };
        let mut response =
            jsonrpc_error(StatusCode::SERVICE_UNAVAILABLE, id, SERVER_ERROR, &message);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_S));
        response
    }
}

/// The `id` of a small JSON-RPC body, `null` if there is none to see cheaply.
pub(crate) async fn peek_id(request: Request) -> Value {
    let small = request
        .body()
        .size_hint()
        .upper()
        .is_some_and(|n| n <= ID_PEEK_BYTES as u64);
    if !small {
        return Value::Null;
    }
    let read = axum::body::to_bytes(request.into_body(), ID_PEEK_BYTES);
    match tokio::time::timeout(ID_PEEK_PATIENCE, read).await {
        Ok(Ok(bytes)) => serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|mut message| message.get_mut("id").map(Value::take))
            .unwrap_or(Value::Null),
        _ => Value::Null,
    }
}
