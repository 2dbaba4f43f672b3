//! Requests to a remote member: those the transparent endpoint passes
//! through as they are (the client's method, the headers it may forward and
//! its body bytes), and this data plane's own MCP requests, all sent to the
//! member's endpoint with the member's configured headers added.
//!
//! `http://` members get a bare hyper client and a `Uri` parsed once (see
//! [`PlainClient`]); `https://` members go through reqwest, which holds
//! their TLS settings.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use serde_json::Value;

use super::clients::PlainClient;
use super::{Session, Upstream, UpstreamError};

/// A member's answer body, from whichever client carried the request.
pub type PassedBody = Either<Incoming, reqwest::Body>;

/// How a plain-HTTP member is reached.
#[derive(Debug)]
pub(super) struct PlainRoute {
    client: PlainClient,
    /// The member's endpoint.
    uri: Uri,
}

impl PlainRoute {
    /// The route to `endpoint` if it is an `http://` URL.
    pub(super) fn of(endpoint: &str, client: PlainClient) -> Option<Self> {
        let uri: Uri = endpoint.parse().ok()?;
        (uri.scheme() == Some(&http::uri::Scheme::HTTP)).then_some(Self { client, uri })
    }
}

// === impl Upstream ===

impl Upstream {
    /// Sends `request` to the member's endpoint (its own URI is ignored)
    /// with the member's configured headers added. For anything but a GET
    /// stream the member's `read_timeout` bounds the wait for the answer's
    /// head; [`Upstream::pass_quiet_limit`] says how long the caller may let
    /// the body stay silent.
    pub async fn pass(
        &self,
        mut request: Request<Bytes>,
    ) -> Result<Response<PassedBody>, UpstreamError> {
        self.check_usable()?;
        if self.stdio.is_some() {
            return Err(UpstreamError::Protocol(
                "a subprocess member is not reachable over HTTP".into(),
            ));
        }
        for (name, value) in &self.headers {
            request.headers_mut().append(name, value.clone());
        }
        if let Some(plain) = &self.plain {
            let patience = self.pass_quiet_limit(request.method());
            *request.uri_mut() = plain.uri.clone();
            let sent = plain.client.request(request.map(Full::new));
            let answer = match patience {
                Some(limit) => tokio::time::timeout(limit, sent)
                    .await
                    .map_err(|_| UpstreamError::Quiet(limit))?,
                None => sent.await,
            };
            let response = answer.map_err(UpstreamError::from_plain_send)?;
            return Ok(response.map(Either::Left));
        }
        let Some(url) = &self.url else {
            // The routing table admits only valid URLs; the endpoint is for
            // the log, not for the client.
            tracing::warn!(endpoint = %self.endpoint, "member endpoint is not a URL");
            return Err(UpstreamError::Protocol(
                "the member's endpoint is not a valid URL".into(),
            ));
        };
        let (parts, body) = request.into_parts();
        // reqwest applies the read timeout itself, on the calls client.
        let client = if parts.method == Method::GET {
            &self.streams
        } else {
            &self.http
        };
        let response = client
            .request(parts.method, url.clone())
            .headers(parts.headers)
            .body(body)
            .send()
            .await
            .map_err(|err| UpstreamError::from_send(err, Duration::ZERO))?;
        Ok(Response::from(response).map(Either::Right))
    }

    /// The longest silence allowed in the middle of an answer that
    /// [`Upstream::pass`] returned for `method`, where the caller must
    /// enforce it: on the plain route, for anything but a GET stream.
    pub fn pass_quiet_limit(&self, method: &Method) -> Option<Duration> {
        let plain = self.plain.is_some() && method != Method::GET;
        self.read_timeout.filter(|_| plain)
    }
}

/// A member's answer, read whole.
#[derive(Debug)]
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) body: Bytes,
}

impl Upstream {
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
        let exchange = async {
            let quiet = self.pass_quiet_limit(&Method::POST);
            let (parts, body) = self.pass(request).await?.into_parts();
            let body = read_whole(body, quiet).await?;
            Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(deadline, exchange)
            .await
            .map_err(|_| UpstreamError::Timeout(deadline))?
    }
}

/// All of `body`, failing if the member stays silent for longer than
/// `quiet` between two pieces of it.
async fn read_whole(mut body: PassedBody, quiet: Option<Duration>) -> Result<Bytes, UpstreamError> {
    let mut whole = BytesMut::new();
    loop {
        let frame = match quiet {
            Some(limit) => tokio::time::timeout(limit, body.frame())
                .await
                .map_err(|_| UpstreamError::Quiet(limit))?,
            None => body.frame().await,
        };
        match frame {
            None => return Ok(whole.freeze()),
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    whole.extend_from_slice(data);
                }
            }
            Some(Err(err)) => return Err(UpstreamError::from_body(err)),
        }
    }
}
