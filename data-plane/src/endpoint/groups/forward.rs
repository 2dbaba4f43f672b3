//! One client request forwarded to one member, and the member's answer
//! relayed back as it arrives.
//!
//! The body is never buffered on the way back: SSE events reach the client
//! as the member writes them. When the client goes away, hyper drops the
//! relayed body, which drops the member's response and closes that
//! connection: the member sees the disconnect, which 2026-07-28 defines as
//! cancellation.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::response::Response;
use http_body::{Frame, SizeHint};

use crate::observe;
use crate::route::limit::Slot;
use crate::route::member::{InFlightCall, Ledger, Member};
use crate::route::rate::Asking;
use crate::server::body::Holding;
use crate::server::guard::Peek;
use crate::server::jsonrpc::SERVER_ERROR;
use crate::upstream::error::BoxError;
use crate::upstream::{PassedBody, UpstreamError};
use hangar_rate::CallerKey;

use crate::route::access::Who;

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
    /// Who sends it, for per-caller rate limits.
    pub(crate) caller: CallerKey,
    /// Who it speaks for: access rules hold it to theirs, and its session
    /// is bound to its principal.
    pub(crate) who: Who,
}

impl ClientRequest {
    /// What the request asks of the rate limits; `None` for what no limit
    /// counts (responses, streams).
    pub(crate) fn asking(&self) -> Option<Asking<'_>> {
        let method = self.peek.method.as_deref()?;
        Some(Asking {
            caller: self.caller,
            method,
            tool: (method == "tools/call")
                .then_some(self.peek.name.as_deref())
                .flatten(),
        })
    }
}

/// Sends `request` to `member`, in the member's session `member_session`
/// if given, writing its outcome in `ledger`. The returned guard keeps the call in
/// flight.
pub(crate) async fn send(
    member: &Arc<Member>,
    ledger: Ledger<'_>,
    request: &ClientRequest,
    member_session: Option<&[u8]>,
) -> Result<(http::Response<PassedBody>, InFlightCall), UpstreamError> {
    let mut headers = HeaderMap::with_capacity(FORWARDED.len() + 2);
    for (name, value) in &request.headers {
        let name_str = name.as_str();
        if FORWARDED.contains(&name_str) || name_str.starts_with("mcp-param-") {
            headers.append(name, value.clone());
        }
    }
    // A member without sessions has an empty one: no header.
    if let Some(session) = member_session
        .filter(|s| !s.is_empty())
        .and_then(|s| HeaderValue::from_bytes(s).ok())
    {
        headers.insert(SESSION, session);
    }
    let body = if request.method == Method::POST {
        request.body.clone()
    } else {
        Bytes::new()
    };
    let mut outgoing = http::Request::new(body);
    *outgoing.method_mut() = request.method.clone();
    *outgoing.headers_mut() = headers;
    // Requests (a method and an id) are calls and take a slot of the
    // member's max_concurrency; streams, notifications and responses do not.
    let call = if is_call(request) {
        member.admit(ledger, QUEUE_PATIENCE).await?
    } else {
        member.begin_call(ledger)
    };
    match observe::within(call.trace_context(), member.upstream().pass(outgoing)).await {
        Ok(response) => {
            // Settled here, by status: the body is the client's.
            let status = response.status();
            if status.is_server_error() {
                call.failed(&UpstreamError::ServerError {
                    status,
                    body: String::new(),
                });
            } else if status.is_client_error() {
                call.failed(&UpstreamError::Rejected {
                    status,
                    body: String::new(),
                });
            }
            Ok((response, call))
        }
        Err(err) => {
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
///
/// `request_id` is the id of the client's request (null for a GET stream,
/// a notification or a response): if an SSE answer to a request breaks off
/// before the member sent its response, the client gets a JSON-RPC error
/// event for that id naming `member_id`, instead of a stream that just
/// stops.
pub(crate) fn relay(
    response: http::Response<PassedBody>,
    call: InFlightCall,
    session: impl FnOnce(&[u8]) -> String,
    request_id: &serde_json::Value,
    member_id: &str,
) -> Response {
    let (parts, body) = response.into_parts();
    let mut headers = HeaderMap::with_capacity(RELAYED.len() + 2);
    for name in RELAYED {
        if let Some(value) = parts.headers.get(&name) {
            headers.insert(name, value.clone());
        }
    }
    if let Some(member_session) = parts.headers.get(SESSION)
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
    let mut settled = parts.status.is_server_error() || parts.status.is_client_error();
    // Relayed unchanged (no content decoding), so the member's length holds.
    let length = body.size_hint().exact();
    if length == Some(0) && !settled {
        // hyper never polls an empty body (a 202 to a notification).
        call.answered();
        settled = true;
    }
    let broken_answer = (is_sse && !request_id.is_null()).then(|| BrokenAnswer {
        request_id: request_id.clone(),
        member_id: member_id.to_owned(),
    });
    let body = Tracked {
        inner: body,
        call,
        settled,
        unread: length,
        broken_answer,
        ended: false,
    };
    let mut out = Response::new(Body::new(body));
    *out.status_mut() = parts.status;
    *out.headers_mut() = headers;
    out
}

/// A member's answer body that settles the call when it ends.
struct Tracked {
    inner: PassedBody,
    call: InFlightCall,
    /// True once the call's outcome was recorded.
    settled: bool,
    /// Bytes of a known length still to come: hyper stops polling a body
    /// once its `Content-Length` is sent, so the end is seen by counting.
    unread: Option<u64>,
    /// For an SSE answer to a request: what to tell the client if the
    /// member breaks off.
    broken_answer: Option<BrokenAnswer>,
    /// True once the error event for a broken answer was sent.
    ended: bool,
}

/// The request an SSE answer is for, and the member giving it.
struct BrokenAnswer {
    request_id: serde_json::Value,
    member_id: String,
}

impl BrokenAnswer {
    /// The last event of a stream the member broke off: a JSON-RPC error
    /// for the pending request, naming the member.
    fn event(&self, failure: &UpstreamError) -> Bytes {
        let message = format!(
            "member '{}' broke off its answer: {}",
            self.member_id,
            failure.for_client()
        );
        let error = serde_json::json!({
            "jsonrpc": "2.0",
            "id": self.request_id,
            "error": {"code": SERVER_ERROR, "message": message},
        });
        Bytes::from(format!("event: message\ndata: {error}\n\n"))
    }
}

impl Tracked {
    fn settle(&mut self, outcome: Result<(), &UpstreamError>) {
        if !self.settled {
            self.settled = true;
            match outcome {
                Ok(()) => self.call.answered(),
                Err(err) => self.call.failed(err),
            }
        }
    }
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(unread)) = (frame.data_ref(), this.unread) {
                    let unread = unread.saturating_sub(data.len() as u64);
                    this.unread = Some(unread);
                    if unread == 0 {
                        this.settle(Ok(()));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => {
                let failure = match err.downcast_ref::<UpstreamError>() {
                    // The member went quiet for its read_timeout.
                    Some(UpstreamError::Quiet(limit)) => UpstreamError::Quiet(*limit),
                    _ => UpstreamError::Transport(err),
                };
                this.settle(Err(&failure));
                match &this.broken_answer {
                    Some(broken) => {
                        this.ended = true;
                        Poll::Ready(Some(Ok(Frame::data(broken.event(&failure)))))
                    }
                    None => Poll::Ready(Some(Err(failure.into()))),
                }
            }
            Poll::Ready(None) => {
                this.settle(Ok(()));
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.unread == Some(0) || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
