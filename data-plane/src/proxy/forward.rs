//! One client request forwarded to one member, and the member's answer
//! relayed back as it arrives.
//!
//! The body is never buffered on the way back: SSE events reach the client
//! as the member writes them. When the client goes away, axum drops the
//! relayed body, which drops the member's response and closes that
//! connection: the member sees the disconnect, which 2026-07-28 defines as
//! cancellation.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use futures::Stream;

use crate::body::{Holding, Sized};
use crate::limit::Slot;
use crate::mcp::guard::Peek;
use crate::member::{InFlightCall, Member};
use crate::metrics::CallMetrics;
use crate::upstream::UpstreamError;

/// Client headers a member needs; everything else (Host, Origin, cookies,
/// Authorization: no token passthrough) stays at the data plane.
const FORWARDED: [&str; 6] = [
    "accept",
    "content-type",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
    "last-event-id",
];

/// Member headers the client needs (the session id is rewritten apart).
const RELAYED: [HeaderName; 4] = [
    header::CONTENT_TYPE,
    header::CACHE_CONTROL,
    header::ALLOW,
    header::WWW_AUTHENTICATE,
];

/// How long a request waits for a slot of a member's `max_concurrency`;
/// the transparent endpoint has no per-call deadline of its own.
pub(crate) const QUEUE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// Session header, in either era's spelling (header names are case-insensitive).
pub(crate) const SESSION: &str = "mcp-session-id";

/// The parts of a client request that are forwarded.
#[derive(Debug)]
pub(crate) struct ClientRequest {
    pub(crate) method: Method,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    /// What routing reads from the body (empty for GET and DELETE).
    pub(crate) peek: Peek,
}

/// Sends `request` to `member`, in the member's session `member_session`
/// if given, counting it in `metrics`. The returned guard keeps the call in
/// flight.
pub(crate) async fn send(
    member: &Arc<Member>,
    metrics: &Arc<CallMetrics>,
    request: &ClientRequest,
    member_session: Option<&[u8]>,
) -> Result<(reqwest::Response, InFlightCall), UpstreamError> {
    let mut builder = member.upstream().request_builder(request.method.clone())?;
    for (name, value) in &request.headers {
        let name_str = name.as_str();
        if FORWARDED.contains(&name_str) || name_str.starts_with("mcp-param-") {
            builder = builder.header(name, value);
        }
    }
    if let Some(session) = member_session.and_then(|s| HeaderValue::from_bytes(s).ok()) {
        builder = builder.header(SESSION, session);
    }
    if request.method == Method::POST {
        builder = builder.body(request.body.clone());
    }
    // Requests (a method and an id) are calls and take a slot of the
    // member's max_concurrency; streams, notifications and responses do not.
    let call = if is_call(request) {
        member.admit(metrics, QUEUE_PATIENCE).await?
    } else {
        member.begin_call(metrics)
    };
    match builder.send().await {
        Ok(response) => {
            if response.status().is_server_error() {
                call.failed(&UpstreamError::ServerError {
                    status: response.status(),
                    body: String::new(),
                });
            }
            Ok((response, call))
        }
        Err(err) => {
            // No timeout is set on this path (streams may be long-lived).
            let err = UpstreamError::from_send(err, std::time::Duration::ZERO);
            call.failed(&err);
            Err(err)
        }
    }
}

/// Whether `request` is a call (a JSON-RPC request: a method and an id),
/// which `max_concurrency` counts; streams, notifications and responses
/// are not.
pub(crate) fn is_call(request: &ClientRequest) -> bool {
    request.method == Method::POST && request.peek.method.is_some() && !request.peek.id.is_null()
}

/// `response` with `slot` held until its body has been sent (or dropped).
pub(crate) fn hold_until_sent(response: Response, slot: Slot) -> Response {
    response.map(|body| Holding::body(body, slot))
}

/// The member's answer for the client: status, the headers it needs, the
/// session id rewritten by `session`, and the body streamed through.
pub(crate) fn relay(
    response: reqwest::Response,
    call: InFlightCall,
    session: impl FnOnce(&[u8]) -> String,
) -> Response {
    let status =
        StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut headers = HeaderMap::new();
    for name in RELAYED {
        if let Some(value) = response.headers().get(&name) {
            headers.insert(name, value.clone());
        }
    }
    if let Some(member_session) = response.headers().get(SESSION)
        && let Ok(value) = HeaderValue::from_str(&session(member_session.as_bytes()))
    {
        headers.insert(SESSION, value);
    }
    let is_sse = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if is_sse {
        // Tell any proxy in front of us not to buffer the stream either.
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    }
    let mut settled = status.is_server_error();
    // Relayed unchanged (no content decoding), so the member's length holds.
    let length = response.content_length();
    if length == Some(0) && !settled {
        // hyper never polls an empty body (a 202 to a notification).
        call.answered();
        settled = true;
    }
    let body = Tracked {
        inner: Box::pin(response.bytes_stream()),
        call,
        settled,
        unread: length,
    };
    let mut out = Response::new(Body::new(Sized::new(body, length)));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out
}

/// A member's body stream that settles the call when it ends.
struct Tracked {
    inner: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    call: InFlightCall,
    /// True once the call's outcome was recorded.
    settled: bool,
    /// Bytes of a known length still to come: hyper stops polling a body
    /// once its `Content-Length` is sent, so the end is seen by counting.
    unread: Option<u64>,
}

impl Stream for Tracked {
    type Item = reqwest::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        if let (Poll::Ready(Some(Ok(chunk))), Some(unread)) = (&polled, self.unread) {
            let unread = unread.saturating_sub(chunk.len() as u64);
            self.unread = Some(unread);
            if unread == 0 && !self.settled {
                self.settled = true;
                self.call.answered();
            }
        }
        match &polled {
            Poll::Ready(None) if !self.settled => {
                self.settled = true;
                self.call.answered();
            }
            Poll::Ready(Some(Err(_))) if !self.settled => {
                self.settled = true;
                let err = UpstreamError::Protocol("the member broke off its answer".into());
                self.call.failed(&err);
            }
            _ => {}
        }
        polled
    }
}
