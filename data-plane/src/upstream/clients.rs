//! HTTP clients for remote members, one pair per distinct transport setting
//! (TLS trust, connect and read timeouts), shared by every member that has
//! the same settings so their connection pools are shared too.
//!
//! Each pair has a client for calls, with the read timeout, and one for
//! long-lived streams (a legacy `GET` SSE stream may be silent for minutes),
//! without it. Requests the transparent endpoint passes through to a
//! plain-HTTP member take a bare hyper client instead (see
//! [`PlainClient`]).

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use hangar_proto::v1;
use parking_lot::Mutex;

/// The connect timeout when the snapshot leaves it at 0.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What decides which client a member uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Transport {
    /// Accept any certificate (`verify_ssl: false`).
    pub skip_verify: bool,
    /// PEM bundle trusted instead of the system roots.
    pub ca_cert_path: Option<String>,
    /// TCP and TLS connect deadline.
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of an answer, if any.
    pub read_timeout: Option<Duration>,
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
            read_timeout: Some(server.read_timeout_ms)
                .filter(|&ms| ms > 0)
                .map(Duration::from_millis),
        }
    }
}

/// The clients of one [`Transport`].
#[derive(Debug, Clone)]
pub struct Clients {
    /// For requests that expect one answer (calls, probes, POSTs).
    pub calls: reqwest::Client,
    /// For streams that may idle (GET).
    pub streams: reqwest::Client,
    /// For requests passed through to `http://` members.
    pub plain: PlainClient,
}

/// hyper's pooling client over plain TCP, for the transparent endpoint's
/// requests to `http://` members: it takes a prebuilt `Uri` and the
/// client's body as it is, where reqwest would parse the URL again and box
/// every request, a large share of the proxy's CPU per call. TLS members
/// go through reqwest.
pub type PlainClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<bytes::Bytes>,
>;

/// How long an idle pooled connection is kept, as reqwest does.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

fn plain_client(connect_timeout: Duration) -> PlainClient {
    use hyper_util::rt::{TokioExecutor, TokioTimer};

    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(connect_timeout));
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .build(connector)
}

/// Builds clients and keeps them for reuse.
#[derive(Debug, Default)]
pub struct ClientPool {
    built: Mutex<HashMap<Transport, Clients>>,
    /// For members that never send over HTTP (unusable settings, subprocess
    /// copies); built on first need, since building loads the root store.
    fallback: OnceLock<Clients>,
}

impl ClientPool {
    /// Clients with the default settings.
    pub fn fallback(&self) -> Clients {
        self.fallback
            .get_or_init(|| {
                let default = reqwest::Client::builder()
                    .no_proxy()
                    .tcp_nodelay(true)
                    .connect_timeout(DEFAULT_CONNECT_TIMEOUT)
                    .build()
                    .expect("the default HTTP client config is static and valid");
                Clients {
                    calls: default.clone(),
                    streams: default,
                    plain: plain_client(DEFAULT_CONNECT_TIMEOUT),
                }
            })
            .clone()
    }

    /// The clients for `transport`, built on first use. A CA file that
    /// cannot be read is an error for the members that name it only.
    pub fn get(&self, transport: &Transport) -> Result<Clients, String> {
        if let Some(clients) = self.built.lock().get(transport) {
            return Ok(clients.clone());
        }
        let clients = Clients {
            calls: build(transport, transport.read_timeout)?,
            streams: build(transport, None)?,
            plain: plain_client(transport.connect_timeout),
        };
        self.built.lock().insert(transport.clone(), clients.clone());
        Ok(clients)
    }
}

fn build(transport: &Transport, read_timeout: Option<Duration>) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .connect_timeout(transport.connect_timeout);
    if let Some(timeout) = read_timeout {
        builder = builder.read_timeout(timeout);
    }
    if let Some(path) = &transport.ca_cert_path {
        let pem =
            std::fs::read(path).map_err(|e| format!("cannot read ca_cert_path {path}: {e}"))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("ca_cert_path {path} is not a PEM bundle: {e}"))?;
        if certs.is_empty() {
            return Err(format!("ca_cert_path {path} holds no certificate"));
        }
        builder = builder.tls_certs_only(certs);
    }
    if transport.skip_verify {
        builder = builder.tls_danger_accept_invalid_certs(true);
    }
    builder
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
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
