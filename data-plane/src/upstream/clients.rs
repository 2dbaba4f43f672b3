//! The HTTP client stack of remote members, one [`HttpClient`] per distinct
//! transport setting (TLS trust, connect timeout), shared by every member
//! with the same settings so their connection pools are shared too:
//! `http://` members are reached over this data plane's own HTTP/1.1
//! client (`h1`), `https://` members over hyper's pooling client on
//! hyper-rustls, which speaks HTTP/2 where the member offers it.
//!
//! Each thread keeps its own pools of connections: a call's connection to
//! its member is then driven by the thread serving the call, the way
//! `server::threads` keeps the rest of the call on one thread.
//!
//! Every request to a member, passed through from a client or our own
//! (calls, probes, handshakes), goes through [`HttpClient::request`] and so
//! through one error and timeout path (`pass`): the member's `read_timeout`
//! is enforced there, not by the client, because a legacy `GET` SSE stream
//! on the same connection pool may rightly idle for minutes.

use std::cell::RefCell;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hangar_proto::v1;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use parking_lot::Mutex;
use rustls::ClientConfig;

use super::error::{BoxError, UpstreamError};
use super::{h1, tls};

/// The connect timeout when the snapshot leaves it at 0.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle pooled connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// hyper's pooling client, for plain and TLS members: it takes a prebuilt
/// `Uri` and a request's body bytes as they are, with no per-request
/// parsing or boxing.
type PoolingClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The client of one transport setting, with a pool of connections per
/// thread (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct HttpClient {
    /// Tells this client's pools apart in each thread's [`POOLS`].
    id: u64,
    connector: HttpsConnector<HttpConnector>,
    connect_timeout: Duration,
}

thread_local! {
    /// This thread's pooling client of each [`HttpClient`], by id.
    static POOLS: RefCell<HashMap<u64, PoolingClient>> = RefCell::default();
}

impl HttpClient {
    fn new(connector: HttpsConnector<HttpConnector>, connect_timeout: Duration) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            connector,
            connect_timeout,
        }
    }

    /// Sends `request` (whose URI is the member's endpoint) over a
    /// connection of this thread's pool; a failure says whether the
    /// request may have reached the member.
    pub async fn request(
        &self,
        request: Request<Bytes>,
    ) -> Result<Response<MemberBody>, UpstreamError> {
        if request.uri().scheme() == Some(&http::uri::Scheme::HTTP) {
            let response = h1::send(request, self.connect_timeout).await;
            return Ok(response
                .map_err(UpstreamError::from_h1)?
                .map(MemberBody::Plain));
        }
        let sent = POOLS.with_borrow_mut(|pools| {
            pools
                .entry(self.id)
                .or_insert_with(|| pooling(self.connector.clone()))
                .request(request.map(Full::new))
        });
        let response = sent.await.map_err(UpstreamError::from_send)?;
        Ok(response.map(MemberBody::Tls))
    }
}

/// An answer's body, from whichever client carried the request.
#[derive(Debug)]
pub enum MemberBody {
    /// From an `http://` member.
    Plain(h1::Body),
    /// From an `https://` member.
    Tls(Incoming),
}

impl Body for MemberBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Self::Plain(body) => Pin::new(body).poll_frame(cx).map_err(BoxError::from),
            Self::Tls(body) => Pin::new(body).poll_frame(cx).map_err(BoxError::from),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Plain(body) => body.is_end_stream(),
            Self::Tls(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Plain(body) => body.size_hint(),
            Self::Tls(body) => body.size_hint(),
        }
    }
}

fn pooling(connector: HttpsConnector<HttpConnector>) -> PoolingClient {
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .build(connector)
}

/// What decides which client a member uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Transport {
    /// Accept any certificate (`verify_ssl: false`).
    pub skip_verify: bool,
    /// PEM bundle trusted instead of the system roots.
    pub ca_cert_path: Option<String>,
    /// TCP connect deadline.
    pub connect_timeout: Duration,
}

impl Transport {
    /// The settings of a snapshot server.
    pub fn of(server: &v1::Server) -> Self {
        let tls = server.tls.clone().unwrap_or_default();
        Self {
            skip_verify: tls.skip_verify,
            ca_cert_path: Some(tls.ca_cert_path).filter(|p| !p.is_empty()),
            connect_timeout: match server.connect_timeout_ms {
                0 => DEFAULT_CONNECT_TIMEOUT,
                ms => Duration::from_millis(ms),
            },
        }
    }
}

/// The member's `read_timeout`, if it has one.
pub fn read_timeout(server: &v1::Server) -> Option<Duration> {
    Some(server.read_timeout_ms)
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis)
}

/// Builds clients and keeps them for reuse.
#[derive(Debug, Default)]
pub struct ClientPool {
    built: Mutex<HashMap<Transport, HttpClient>>,
}

impl ClientPool {
    /// The client for `transport`, built on first use. A CA file that
    /// cannot be read is an error for the members that name it only.
    pub fn get(&self, transport: &Transport) -> Result<HttpClient, String> {
        if let Some(client) = self.built.lock().get(transport) {
            return Ok(client.clone());
        }
        let client = build(transport)?;
        self.built.lock().insert(transport.clone(), client.clone());
        Ok(client)
    }
}

fn build(transport: &Transport) -> Result<HttpClient, String> {
    let mut tcp = HttpConnector::new();
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(Some(transport.connect_timeout));
    // The connector checks the scheme itself: https needs TLS.
    tcp.enforce_http(false);
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(tls_config(transport)?)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(tcp);
    Ok(HttpClient::new(connector, transport.connect_timeout))
}

/// Whom a TLS member must prove to be: anyone (`verify_ssl: false`), a
/// certificate of the configured CA bundle, or of the system's roots.
fn tls_config(transport: &Transport) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    let config = if transport.skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(tls::AcceptAnyCertificate::new(provider)))
            .with_no_client_auth()
    } else if let Some(path) = &transport.ca_cert_path {
        builder
            .with_root_certificates(tls::roots_from_pem_file(path)?)
            .with_no_client_auth()
    } else {
        use rustls_platform_verifier::BuilderVerifierExt;
        builder
            .with_platform_verifier()
            .map_err(|e| format!("cannot load the system's trusted roots: {e}"))?
            .with_no_client_auth()
    };
    Ok(config)
}

/// Resolves the configured headers (and basic auth) of a remote server on
/// this data plane; the error names the missing variable or file, never a
/// value.
pub fn resolve_headers(server: &v1::Server) -> Result<http::HeaderMap, String> {
    use base64::Engine;

    let resolve = |what: &str, text: &str| {
        hangar_template::resolve(text, &hangar_template::System).map_err(|e| format!("{what}: {e}"))
    };
    let mut headers = http::HeaderMap::new();
    let mut insert = |name: &str, value: String| -> Result<(), String> {
        let header = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("'{name}' is not a valid header name"))?;
        let mut value = http::HeaderValue::from_str(&value).map_err(|_| {
            format!("the value of header '{name}' has characters a header cannot carry")
        })?;
        value.set_sensitive(true);
        headers.insert(header, value);
        Ok(())
    };
    for header in &server.headers {
        let value = resolve(&format!("header {}", header.name), &header.value)?;
        insert(&header.name, value)?;
    }
    if let Some(basic) = &server.basic_auth {
        let username = resolve("auth username", &basic.username)?;
        let password = resolve("auth password", &basic.password)?;
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        insert("authorization", format!("Basic {encoded}"))?;
    }
    Ok(headers)
}
