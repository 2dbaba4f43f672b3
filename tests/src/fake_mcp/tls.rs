//! HTTPS for the fake server: a listener that completes the TLS handshake
//! before handing the connection to axum.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::listener::{TrackedStream, TrackingListener};
use crate::pki::CertFiles;

/// A client that does not finish its handshake within this is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The acceptor for `files`.
///
/// # Panics
/// If the files are not a certificate and key, which is a broken test.
pub(super) fn acceptor(files: &CertFiles) -> Acceptor {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .expect("read the test certificate")
        .collect::<Result<_, _>>()
        .expect("parse the test certificate");
    let key = PrivateKeyDer::from_pem_file(&files.key).expect("read the test key");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("default protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("a valid certificate and key");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Acceptor(TlsAcceptor::from(Arc::new(config)))
}

/// A TLS acceptor that can sit in a `Debug` struct.
#[derive(Clone)]
pub(super) struct Acceptor(TlsAcceptor);

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Acceptor")
    }
}

/// [`TrackingListener`] with TLS on top.
#[derive(Debug)]
pub(super) struct TlsListener {
    inner: TrackingListener,
    acceptor: Acceptor,
}

impl TlsListener {
    pub(super) fn new(inner: TrackingListener, acceptor: Acceptor) -> Self {
        Self { inner, acceptor }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TrackedStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
            // One handshake at a time is plenty for tests; a client that
            // refuses our certificate just fails here.
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.0.accept(stream)).await {
                Ok(Ok(tls)) => return (tls, addr),
                Ok(Err(error)) => {
                    tracing::debug!(client.addr = %addr, %error, "TLS handshake failed")
                }
                Err(_) => tracing::debug!(client.addr = %addr, "TLS handshake timed out"),
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        axum::serve::Listener::local_addr(&self.inner)
    }
}
