//! Who may call the control plane, and over what.
//!
//! The admin API (apply, status) takes the admin token; the data-plane
//! stream takes the data-plane token and, with mutual TLS, a client
//! certificate signed by the client CA. The two tokens are separate roles: a
//! data plane's token cannot apply config. An API without a token is open,
//! which the control plane only allows on a loopback address.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hangar_proto::auth::{Token, presented_token};
use hangar_proto::client::{ClientError, read_pem};
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use tonic::{Request, Status};

/// How long a client may take to finish the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
    identity: Identity,
    client_ca: Option<Certificate>,
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
    /// TLS from PEM files: the server certificate and key, and optionally a
    /// client CA that data planes must present certificates from.
    pub fn from_files(
        cert: &Path,
        key: &Path,
        client_ca: Option<&Path>,
    ) -> Result<Self, ClientError> {
        Ok(Self {
            identity: Identity::from_pem(
                read_pem("TLS certificate", cert)?,
                read_pem("TLS key", key)?,
            ),
            client_ca: client_ca
                .map(|path| read_pem("client CA", path).map(Certificate::from_pem))
                .transpose()?,
        })
    }

    /// Whether data planes must present a client certificate.
    pub fn requires_client_certs(&self) -> bool {
        self.client_ca.is_some()
    }

    /// The tonic server config. Client certificates are optional at the TLS
    /// layer so `hangarctl` can connect with its token alone; the
    /// data-plane stream then insists on one (see [`DataPlaneGate`]).
    pub(crate) fn server_config(&self) -> ServerTlsConfig {
        let config = ServerTlsConfig::new()
            .identity(self.identity.clone())
            .timeout(TLS_HANDSHAKE_TIMEOUT);
        match &self.client_ca {
            Some(ca) => config.client_ca_root(ca.clone()).client_auth_optional(true),
            None => config,
        }
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
