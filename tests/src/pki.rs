//! Certificates made at test time, written as PEM files into a temporary
//! directory: a CA, a server certificate for `127.0.0.1` and `localhost`,
//! a client certificate from the same CA, and one from an unrelated CA.
//! No key is ever committed.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A certificate and its key, as files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// PEM certificate.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// A throwaway PKI in a temporary directory.
#[derive(Debug)]
pub struct TestPki {
    dir: tempfile::TempDir,
    /// The CA that signed `server` and `client`.
    pub ca: PathBuf,
    /// Server certificate for 127.0.0.1 and localhost.
    pub server: CertFiles,
    /// Client certificate signed by `ca`.
    pub client: CertFiles,
    /// Client certificate signed by a CA nobody trusts.
    pub rogue_client: CertFiles,
}

impl TestPki {
    /// Generates everything afresh.
    pub fn generate() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = new_ca("Hangar test CA");
        let rogue_ca = new_ca("Some other CA");
        let ca_path = write(dir.path(), "ca.pem", &ca.pem());
        let server = leaf(
            dir.path(),
            "server",
            &ca,
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let client = leaf(
            dir.path(),
            "client",
            &ca,
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let rogue_client = leaf(
            dir.path(),
            "rogue-client",
            &rogue_ca,
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        Self {
            dir,
            ca: ca_path,
            server,
            client,
            rogue_client,
        }
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key")).expect("CA cert")
}

fn leaf(
    dir: &Path,
    name: &str,
    issuer: &CertifiedIssuer<'static, KeyPair>,
    usage: ExtendedKeyUsagePurpose,
) -> CertFiles {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let mut params = CertificateParams::new(names).expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().expect("leaf key");
    let cert = params.signed_by(&key, issuer).expect("leaf cert");
    CertFiles {
        cert: write(dir, &format!("{name}.pem"), &cert.pem()),
        key: write(dir, &format!("{name}-key.pem"), &key.serialize_pem()),
    }
}

fn write(dir: &Path, name: &str, pem: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem).expect("write PEM");
    path
}
