//! Who may call the control plane, and over what.
//!
//! The admin API (apply, status) takes the admin token; the data-plane
//! stream takes the data-plane token and, with mutual TLS, a client
//! certificate signed by the client CA. The two tokens are separate roles: a
//! data plane's token cannot apply config. An API without a token is open,
//! which the control plane only allows on a loopback address.
//!
//! TLS is rustls, set up here and accepted by `listener`, so that one port
//! offers HTTP/2 (gRPC) and HTTP/1.1 (`/metrics`, the status page) alike.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use hangar_proto::auth::{Token, presented_token};
use hangar_proto::client::{ClientError, read_pem};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// What the listener offers in ALPN, preferred first: gRPC clients ask
/// for `h2`; Prometheus and curl may ask for `http/1.1` only.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The tokens of the two APIs; `None` leaves that API open.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Token for apply and status (`--admin-token-file`).
    pub admin_token: Option<Token>,
    /// Token for the data-plane stream (`--dataplane-token-file`).
    pub dataplane_token: Option<Token>,
}

/// The control plane's TLS identity and, for mutual TLS, the CA that signs
/// data-plane client certificates.
#[derive(Debug, Clone)]
pub struct ServerTls {
    config: Arc<rustls::ServerConfig>,
    client_certs: bool,
}

/// Why the TLS files cannot be served with.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or is not PEM.
    #[error(transparent)]
    File(#[from] ClientError),
    /// A file is PEM but not what it should hold, or the key does not fit
    /// the certificate.
    #[error("{what} {path}: {problem}")]
    Invalid {
        /// Which file (`TLS certificate`, `TLS key`, `client CA`).
        what: &'static str,
        /// Its path.
        path: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// Why the control plane refuses to serve as configured.
#[derive(Debug, thiserror::Error)]
pub enum ExposureError {
    /// A non-loopback address without a credential on each API.
    #[error(
        "refusing to listen on {addr} with {what}: anyone who can reach it could {risk}; \
         set --admin-token-file and --dataplane-token-file (or --client-ca for data planes), \
         or listen on 127.0.0.1"
    )]
    Unprotected {
        /// The listen address.
        addr: SocketAddr,
        /// Which API is open.
        what: &'static str,
        /// What an attacker could do with it.
        risk: &'static str,
    },
}

impl ServerTls {
    /// TLS from PEM files: the server certificate (chain) and key, and
    /// optionally a client CA that data planes must present certificates
    /// from. Everything is checked here, so a bad file stops the start.
    pub fn from_files(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<Self, TlsError> {
        let invalid = |what, path: &Path, problem: String| TlsError::Invalid {
            what,
            path: path.display().to_string(),
            problem,
        };
        let certificates = |what, path: &Path| -> Result<Vec<CertificateDer<'static>>, TlsError> {
            let pem = read_pem(what, path)?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|err| invalid(what, path, err.to_string()))?;
            if certs.is_empty() {
                return Err(invalid(what, path, "holds no certificate".to_owned()));
            }
            Ok(certs)
        };
        let chain = certificates("TLS certificate", cert)?;
        let private_key = PrivateKeyDer::from_pem_slice(&read_pem("TLS key", key)?)
            .map_err(|err| invalid("TLS key", key, err.to_string()))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|err| invalid("TLS certificate", cert, err.to_string()))?;
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for ca in certificates("client CA", path)? {
                    roots
                        .add(ca)
                        .map_err(|err| invalid("client CA", path, err.to_string()))?;
                }
                // Optional at the TLS layer so `hangarctl` and browsers
                // connect without one; the data-plane stream then insists
                // on one (see [`DataPlaneGate`]).
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .allow_unauthenticated()
                        .build()
                        .map_err(|err| invalid("client CA", path, err.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(chain, private_key)
            .map_err(|err| invalid("TLS key", key, err.to_string()))?;
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(Self {
            config: Arc::new(config),
            client_certs: client_ca.is_some(),
        })
    }

    /// Whether data planes must present a client certificate.
    pub fn requires_client_certs(&self) -> bool {
        self.client_certs
    }

    /// The rustls config the listener accepts connections with.
    pub(crate) fn rustls_config(&self) -> Arc<rustls::ServerConfig> {
        self.config.clone()
    }
}

/// Checks that serving on `addr` does not leave an API open to the network.
pub fn check_exposure(
    addr: SocketAddr,
    access: &Access,
    tls: Option<&ServerTls>,
) -> Result<(), ExposureError> {
    if addr.ip().is_loopback() {
        return Ok(());
    }
    let unprotected = |what, risk| Err(ExposureError::Unprotected { addr, what, risk });
    if access.admin_token.is_none() {
        return unprotected("no admin token", "apply any config");
    }
    let client_certs = tls.is_some_and(ServerTls::requires_client_certs);
    if access.dataplane_token.is_none() && !client_certs {
        return unprotected("no data-plane token", "read every config snapshot");
    }
    Ok(())
}

/// Interceptor of the admin API.
#[derive(Debug, Clone)]
pub(crate) struct AdminGate {
    access: Arc<Access>,
}

impl AdminGate {
    pub(crate) fn new(access: Arc<Access>) -> Self {
        Self { access }
    }
}

impl Interceptor for AdminGate {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(expected) = &self.access.admin_token else {
            return Ok(request);
        };
        match presented_token(request.metadata()) {
            Some(token) if expected.matches(token) => Ok(request),
            Some(token)
                if self
                    .access
                    .dataplane_token
                    .as_ref()
                    .is_some_and(|dp| dp.matches(token)) =>
            {
                Err(Status::permission_denied(
                    "a data-plane token cannot call the admin API; use the admin token",
                ))
            }
            Some(_) => Err(Status::unauthenticated("wrong token for the admin API")),
            None => Err(Status::unauthenticated(
                "the admin API needs a token: pass --token-file or set HANGAR_TOKEN",
            )),
        }
    }
}

/// Interceptor of the data-plane stream.
#[derive(Debug, Clone)]
pub(crate) struct DataPlaneGate {
    access: Arc<Access>,
    requires_client_cert: bool,
}

impl DataPlaneGate {
    pub(crate) fn new(access: Arc<Access>, tls: Option<&ServerTls>) -> Self {
        Self {
            access,
            requires_client_cert: tls.is_some_and(ServerTls::requires_client_certs),
        }
    }
}

impl Interceptor for DataPlaneGate {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        // The TLS layer already verified any certificate against the client
        // CA; here only its presence is left to check.
        if self.requires_client_cert && request.peer_certs().is_none_or(|certs| certs.is_empty()) {
            return Err(Status::unauthenticated(
                "data planes must present a client certificate signed by the control plane's \
                 client CA (--client-cert and --client-key)",
            ));
        }
        let Some(expected) = &self.access.dataplane_token else {
            return Ok(request);
        };
        match presented_token(request.metadata()) {
            Some(token) if expected.matches(token) => Ok(request),
            Some(_) => Err(Status::unauthenticated(
                "wrong token for the data-plane API",
            )),
            None => Err(Status::unauthenticated(
                "the data-plane API needs a token: pass --token-file or set HANGAR_TOKEN",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(text: &str) -> Option<Token> {
        Some(Token::new(text, "test").unwrap())
    }

    fn with_token(text: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(text) = text {
            let value = format!("Bearer {text}").parse().unwrap();
            request.metadata_mut().insert("authorization", value);
        }
        request
    }

    fn access() -> Arc<Access> {
        Arc::new(Access {
            admin_token: token("admin-secret"),
            dataplane_token: token("dp-secret"),
        })
    }

    #[test]
    fn the_admin_api_takes_only_the_admin_token() {
        let mut gate = AdminGate::new(access());
        assert!(gate.call(with_token(Some("admin-secret"))).is_ok());
        let missing = gate.call(with_token(None)).unwrap_err();
        assert_eq!(missing.code(), tonic::Code::Unauthenticated);
        assert!(missing.message().contains("--token-file"), "{missing:?}");
        let wrong = gate.call(with_token(Some("guess"))).unwrap_err();
        assert_eq!(wrong.code(), tonic::Code::Unauthenticated);
        let dataplane = gate.call(with_token(Some("dp-secret"))).unwrap_err();
        assert_eq!(dataplane.code(), tonic::Code::PermissionDenied);
    }

    #[test]
    fn the_stream_takes_only_the_data_plane_token() {
        let mut gate = DataPlaneGate::new(access(), None);
        assert!(gate.call(with_token(Some("dp-secret"))).is_ok());
        for presented in [None, Some("admin-secret"), Some("dp-secret2")] {
            let err = gate.call(with_token(presented)).unwrap_err();
            assert_eq!(err.code(), tonic::Code::Unauthenticated, "{presented:?}");
        }
    }

    #[test]
    fn without_tokens_both_apis_are_open() {
        let open = Arc::new(Access::default());
        assert!(AdminGate::new(open.clone()).call(with_token(None)).is_ok());
        assert!(
            DataPlaneGate::new(open, None)
                .call(with_token(Some("x")))
                .is_ok()
        );
    }

    #[test]
    fn tls_files_are_checked_when_read() {
        let pki = hangar_tests::pki::TestPki::generate();
        let mutual = ServerTls::from_files(&pki.server.cert, &pki.server.key, Some(&pki.ca));
        assert!(mutual.unwrap().requires_client_certs());
        let swapped = ServerTls::from_files(&pki.server.key, &pki.server.cert, None).unwrap_err();
        assert!(
            swapped.to_string().ends_with(": holds no certificate"),
            "{swapped}"
        );
        let not_its_key =
            ServerTls::from_files(&pki.server.cert, &pki.client.key, None).unwrap_err();
        assert!(
            not_its_key.to_string().starts_with("TLS key "),
            "{not_its_key}"
        );
        let missing = pki.dir().join("missing.pem");
        let err = ServerTls::from_files(&pki.server.cert, &pki.server.key, Some(&missing));
        assert!(err.unwrap_err().to_string().starts_with("client CA "));
    }

    #[test]
    fn only_loopback_may_serve_an_open_api() {
        let loopback: SocketAddr = "127.0.0.1:7070".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:7070".parse().unwrap();
        assert!(check_exposure(loopback, &Access::default(), None).is_ok());
        let err = check_exposure(any, &Access::default(), None).unwrap_err();
        assert!(err.to_string().contains("no admin token"), "{err}");
        let admin_only = Access {
            admin_token: token("a"),
            dataplane_token: None,
        };
        let err = check_exposure(any, &admin_only, None).unwrap_err();
        assert!(err.to_string().contains("no data-plane token"), "{err}");
        assert!(check_exposure(any, &access(), None).is_ok());
    }
}
