//! Requests to a remote member: those the transparent endpoint passes
//! through as they are (the client's method, the headers it may forward and
//! its body bytes), and this data plane's own MCP requests, all sent to the
//! member's endpoint with the member's configured headers and the current
//! trace context added, over the one client stack of `clients`.
//!
//! A member that goes quiet for its `read_timeout`, before the answer's
//! head or in the middle of its body, fails the request with
//! [`UpstreamError::Quiet`] ([`Quiet`]); a GET stream, which may idle for
//! long, has no such limit.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use serde_json::Value;

use super::activity::Activity;
use super::answer::find_response_in_sse;
use super::clients::MemberBody;
use super::error::{BoxError, UpstreamError};
use super::http::{HttpUpstream, Session};

/// A member's answer body.
pub type PassedBody = Quiet<MemberBody>;

// === impl HttpUpstream ===

impl HttpUpstream {
    /// Sends `request` to the member's endpoint (its own URI is ignored)
    /// with the member's configured headers added. For anything but a GET
    /// stream (which may idle for long) the member's `read_timeout` bounds
    /// the wait for the answer's head and every silence within its body.
    pub(super) async fn pass(
        &self,
        mut request: Request<Bytes>,
    ) -> Result<Response<PassedBody>, UpstreamError> {
        for (name, value) in &self.headers {
            request.headers_mut().append(name, value.clone());
        }
        // The request's trace goes on in the member (W3C trace context).
        crate::observe::propagate(request.headers_mut());
        let patience = self
            .read_timeout
            .filter(|_| request.method() != Method::GET);
        *request.uri_mut() = self.uri.clone();
        let sent = self.client.request(request);
        let response = match patience {
            Some(limit) => tokio::time::timeout(limit, sent)
                .await
                .map_err(|_| UpstreamError::Quiet(limit))??,
            None => sent.await?,
        };
        self.activity.touch();
        let activity = self.activity.clone();
        Ok(response.map(|body| Quiet::new(body, patience, activity)))
    }
}

/// A member's answer: read whole, or for an event stream up to the
/// response to our request.
#[derive(Debug)]
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    /// The body, or its start up to the response event.
    pub(super) body: Bytes,
    /// The response to request `id`, when an event stream carried it.
    pub(super) response: Option<Value>,
}

impl HttpUpstream {
    /// POSTs our own JSON-RPC `message` (of `method`, naming `name`) to the
    /// member in `session` and reads the whole answer, all within `deadline`.
    pub(super) async fn post(
        &self,
        session: &Session,
        method: &str,
        name: Option<&str>,
        message: &Value,
        deadline: Duration,
    ) -> Result<Answer, UpstreamError> {
        let body = serde_json::to_vec(message)
            .map_err(|e| UpstreamError::Protocol(format!("cannot encode the request: {e}")))?;
        let mut request = Request::new(Bytes::from(body));
        *request.method_mut() = Method::POST;
        let headers = request.headers_mut();
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert("mcp-protocol-version", session.protocol_version.clone());
        if let Some(id) = &session.id {
            headers.insert("mcp-session-id", id.clone());
        }
        if session.modern {
            if let Ok(method) = HeaderValue::from_str(method) {
                headers.insert("mcp-method", method);
            }
            if let Some(name) = name.and_then(|n| HeaderValue::from_str(n).ok()) {
                headers.insert("mcp-name", name);
            }
        }
        let id = message.get("id").and_then(Value::as_u64);
        let started = tokio::time::Instant::now();
        let exchange = async {
            let (parts, mut body) = self.pass(request).await?.into_parts();
            let streamed = parts.status.is_success()
                && parts
                    .headers
                    .get(CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("text/event-stream"));
            let (read, response) = match id.filter(|_| streamed) {
                Some(id) => read_until_response(&mut body, id).await?,
                None => {
                    let whole = (&mut body).collect().await;
                    (whole.map_err(UpstreamError::from_body)?.to_bytes(), None)
                }
            };
            Ok((parts, read, response, body))
        };
        let (parts, read, response, rest) = tokio::time::timeout(deadline, exchange)
            .await
            .map_err(|_| UpstreamError::Timeout(deadline))??;
        if response.is_some() && !rest.is_end_stream() {
            // The member may end its stream a while after the response (the
            // Python SDK takes about a millisecond); the caller need not
            // wait, but the connection goes back to the pool only once the
            // body is read, so the rest is read aside, within the deadline.
            let left = deadline.saturating_sub(started.elapsed());
            tokio::spawn(async move {
                let _ = tokio::time::timeout(left, rest.collect()).await;
            });
        }
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body: read,
            response,
        })
    }
}

/// An event stream read up to the response to request `id` (the whole
/// stream when none comes): what was read, and the response.
async fn read_until_response(
    body: &mut PassedBody,
    id: u64,
) -> Result<(Bytes, Option<Value>), UpstreamError> {
    let mut read = Vec::new();
    // Events before this offset were looked at already.
    let mut scanned = 0;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(UpstreamError::from_body)?.into_data() else {
            continue;
        };
        read.extend_from_slice(&data);
        let Some(end) = complete_events_end(&read) else {
            continue;
        };
        if end > scanned {
            let events = String::from_utf8_lossy(&read[scanned..end]);
            scanned = end;
            if let Ok(response) = find_response_in_sse(&events, id) {
                return Ok((read.into(), Some(response)));
            }
        }
    }
    Ok((read.into(), None))
}

/// Where the last complete event of an event stream's start ends (after
/// its blank line), if one is complete.
fn complete_events_end(read: &[u8]) -> Option<usize> {
    let lf = read.windows(2).rposition(|w| w == b"\n\n").map(|i| i + 2);
    let crlf = read
        .windows(4)
        .rposition(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    lf.max(crlf)
}

/// `inner`, failed with [`UpstreamError::Quiet`] when it sends nothing for
/// `limit`; every frame counts as the member's activity.
#[derive(Debug)]
pub struct Quiet<B> {
    inner: B,
    limit: Option<Duration>,
    activity: Arc<Activity>,
    /// Armed at the first wait only: most answers arrive whole with their head.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<B> Quiet<B> {
    fn new(inner: B, limit: Option<Duration>, activity: Arc<Activity>) -> Self {
        Self {
            inner,
            limit,
            activity,
            timer: None,
        }
    }
}

impl<B> Body for Quiet<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.activity.touch();
                if let (Some(limit), Some(timer)) = (this.limit, &mut this.timer) {
                    timer.as_mut().reset(tokio::time::Instant::now() + limit);
                }
                Poll::Ready(frame.map(|frame| frame.map_err(Into::into)))
            }
            Poll::Pending => {
                let Some(limit) = this.limit else {
                    return Poll::Pending;
                };
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                Poll::Ready(Some(Err(UpstreamError::Quiet(limit).into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::complete_events_end;

    /// Only events closed by their blank line count, in either line ending.
    #[test]
    fn finds_the_end_of_the_last_complete_event() {
        assert_eq!(complete_events_end(b"data: {}"), None);
        assert_eq!(complete_events_end(b"data: {}\n"), None);
        assert_eq!(complete_events_end(b"data: 1\n\ndata: 2"), Some(9));
        assert_eq!(complete_events_end(b"data: 1\n\ndata: 2\n\n"), Some(18));
        assert_eq!(complete_events_end(b"data: 1\r\n\r\n"), Some(11));
    }
}
