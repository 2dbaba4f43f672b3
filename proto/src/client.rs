//! How data planes and `hangarctl` reach the control plane: an `http://` or
//! `https://` URL, TLS with the system roots or a private CA, an optional
//! client certificate for mutual TLS, and the bearer token on every call.

use std::path::Path;
use std::time::Duration;

use hangar_runtime::error_chain;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::auth::{BearerToken, Token};

/// A channel to the control plane that carries the bearer token.
pub type ControlPlaneChannel = InterceptedService<Channel, BearerToken>;

/// How long to wait for a TCP (and TLS) connection to the control plane.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Credentials and trust for calls to the control plane.
#[derive(Debug, Clone, Default)]
pub struct ClientConfig {
    /// Sent as `authorization: Bearer` on every call.
    pub token: Option<Token>,
    /// Trust and identity for `https://` URLs.
    pub tls: ClientTls,
}

/// TLS settings for `https://` control-plane URLs. Without a CA the system
/// roots are trusted.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    ca: Option<Certificate>,
    identity: Option<Identity>,
}

/// Why the control plane could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A certificate or key file could not be read or is not PEM.
    #[error("{what} {path}: {problem}")]
    File {
        /// Which file (`CA certificate`, `client key`, …).
        what: &'static str,
        /// Its path.
        path: String,
        /// What went wrong.
        problem: String,
    },
    /// The URL is not usable.
    #[error("invalid control-plane URL '{url}': {problem}")]
    Url {
        /// The URL.
        url: String,
        /// What is wrong with it.
        problem: String,
    },
    /// Connecting (TCP or the TLS handshake) failed.
    #[error("cannot reach control plane at {url}: {cause}")]
    Connect {
        /// The URL.
        url: String,
        /// The innermost useful cause.
        cause: String,
    },
}

impl ClientTls {
    /// TLS from PEM files: a CA to trust instead of the system roots, and a
    /// client certificate with its key for mutual TLS. Both are optional,
    /// but a certificate needs its key.
    pub fn from_files(
        ca_cert: Option<&Path>,
        client_cert: Option<&Path>,
        client_key: Option<&Path>,
    ) -> Result<Self, ClientError> {
        let ca = ca_cert
            .map(|path| read_pem("CA certificate", path).map(Certificate::from_pem))
            .transpose()?;
        let identity = match (client_cert, client_key) {
            (Some(cert), Some(key)) => Some(Identity::from_pem(
                read_pem("client certificate", cert)?,
                read_pem("client key", key)?,
            )),
            (None, None) => None,
            (Some(path), None) | (None, Some(path)) => {
                return Err(ClientError::File {
                    what: "client certificate",
                    path: path.display().to_string(),
                    problem: "a client certificate and its key go together".to_owned(),
                });
            }
        };
        Ok(Self { ca, identity })
    }

    fn is_configured(&self) -> bool {
        self.ca.is_some() || self.identity.is_some()
    }
}

/// Reads a PEM file; its content is checked for a PEM header so a wrong
/// file is named here rather than failing as an opaque handshake error.
pub fn read_pem(what: &'static str, path: &Path) -> Result<Vec<u8>, ClientError> {
    let file_error = |problem: String| ClientError::File {
        what,
        path: path.display().to_string(),
        problem,
    };
    let bytes = std::fs::read(path).map_err(|err| file_error(err.to_string()))?;
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(file_error("not a PEM file".to_owned()));
    }
    Ok(bytes)
}

/// The endpoint for `url`, with TLS when it is `https://`.
pub fn endpoint(url: &str, config: &ClientConfig) -> Result<Endpoint, ClientError> {
    let bad_url = |problem: String| ClientError::Url {
        url: url.to_owned(),
        problem,
    };
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|err| bad_url(err.to_string()))?
        .connect_timeout(CONNECT_TIMEOUT);
    let https = url.starts_with("https://");
    if !https {
        if config.tls.is_configured() {
            return Err(bad_url(
                "a CA or client certificate needs an https:// URL".to_owned(),
            ));
        }
        return Ok(endpoint);
    }
    let mut tls = ClientTlsConfig::new();
    tls = match &config.tls.ca {
        Some(ca) => tls.ca_certificate(ca.clone()),
        None => tls.with_enabled_roots(),
    };
    if let Some(identity) = &config.tls.identity {
        tls = tls.identity(identity.clone());
    }
    endpoint
        .tls_config(tls)
        .map_err(|err| bad_url(error_chain(&err)))
}

/// Connects to the control plane at `url`.
pub async fn connect(url: &str, config: &ClientConfig) -> Result<ControlPlaneChannel, ClientError> {
    let channel = endpoint(url, config)?
        .connect()
        .await
        .map_err(|err| ClientError::Connect {
            url: url.to_owned(),
            cause: error_chain(&err),
        })?;
    Ok(InterceptedService::new(
        channel,
        BearerToken::new(config.token.as_ref()),
    ))
}
