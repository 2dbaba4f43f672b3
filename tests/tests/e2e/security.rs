//! Who may talk to the control plane: bearer tokens per API, TLS with a
//! private CA, client certificates for data planes, and HTTP/1.1 beside
//! gRPC under TLS.

use hangar_control_plane::auth::{Access, ServerTls};
use hangar_proto::auth::Token;
use hangar_proto::client::{ClientConfig, ClientError, ClientTls};
use hangar_proto::v1::admin_service_client::AdminServiceClient;
use hangar_proto::v1::data_plane_service_client::DataPlaneServiceClient;
use hangar_proto::v1::{DataPlaneMessage, StatusRequest};
use hangar_tests::configs::{GroupConfig, RECIPE_GROUP};
use hangar_tests::control_plane::ControlPlane;
use hangar_tests::data_plane::{DataPlane, served_counts};
use hangar_tests::fake_mcp::{FakeMcp, FakeMcpHandle};
use hangar_tests::pki::{CertFiles, TestPki};
use serde_json::json;

const ADMIN: &str = "admin-0123456789abcdef";
const DATAPLANE: &str = "dataplane-0123456789abcdef";

fn token(text: &str) -> Option<Token> {
    Some(Token::new(text, "test").unwrap())
}

fn with_token(text: Option<&str>) -> ClientConfig {
    ClientConfig {
        token: text.and_then(token),
        tls: ClientTls::default(),
    }
}

/// Client credentials that trust the test CA, with `identity` as the
/// client certificate and `with` as the bearer token, if given.
fn trusting(pki: &TestPki, identity: Option<&CertFiles>, with: Option<&str>) -> ClientConfig {
    ClientConfig {
        token: with.and_then(token),
        tls: ClientTls::from_files(
            Some(&pki.ca),
            identity.map(|c| c.cert.as_path()),
            identity.map(|c| c.key.as_path()),
        )
        .unwrap(),
    }
}

/// The data plane serves a batch of `calls` across the group, then
/// everything stops.
async fn serves_then_stop(
    dp: DataPlane,
    cp: ControlPlane,
    backends: Vec<FakeMcpHandle>,
    calls: usize,
) {
    let out = dp
        .client()
        .await
        .batch(RECIPE_GROUP, "add", json!({"a": 1, "b": 2}), calls)
        .await;
    assert_eq!(served_counts(&out).values().sum::<usize>(), calls);
    dp.stop().await;
    cp.stop().await;
    for backend in backends {
        backend.shutdown().await;
    }
}

async fn start_backends() -> (Vec<FakeMcpHandle>, String) {
    let mut backends = Vec::new();
    for name in ["a", "b", "c"] {
        backends.push(FakeMcp::new(name).start().await);
    }
    let endpoints: Vec<String> = backends.iter().map(FakeMcpHandle::url).collect();
    (backends, GroupConfig::recipe(&endpoints).yaml())
}

/// The status call of the admin API with `client` credentials.
async fn status_as(url: &str, client: &ClientConfig) -> Result<(), tonic::Status> {
    let channel = hangar_proto::client::connect(url, client)
        .await
        .expect("connect");
    AdminServiceClient::new(channel)
        .status(StatusRequest {})
        .await
        .map(drop)
}

/// Opens the data-plane stream with `client` credentials, as a data plane does.
async fn open_stream(url: &str, client: &ClientConfig) -> Result<(), String> {
    let channel = hangar_proto::client::connect(url, client)
        .await
        .map_err(|e| e.to_string())?;
    let hello = tokio_stream::iter(Vec::<DataPlaneMessage>::new());
    DataPlaneServiceClient::new(channel)
        .stream(hello)
        .await
        .map(drop)
        .map_err(|status| {
            let cause = std::error::Error::source(&status).map(|s| format!(" ({s:?})"));
            format!(
                "{:?}: {}{}",
                status.code(),
                status.message(),
                cause.unwrap_or_default()
            )
        })
}

/// Each API takes its own token: none or a wrong one is `Unauthenticated`,
/// a data plane's token cannot read or apply config, and data planes with
/// the right token follow the config and serve calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_api_takes_only_its_own_token() {
    let (backends, yaml) = start_backends().await;
    let state = tempfile::tempdir().unwrap();
    let settings = hangar_control_plane::Settings {
        access: Access {
            admin_token: token(ADMIN),
            dataplane_token: token(DATAPLANE),
        },
        ..hangar_control_plane::Settings::new(state.path())
    };
    let cp = ControlPlane::start_with(settings)
        .await
        .with_admin_client(with_token(Some(ADMIN)));
    let url = cp.url();

    let missing = status_as(&url, &with_token(None)).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::Unauthenticated);
    assert_eq!(
        missing.message(),
        "the admin API needs a token: pass --token-file or set HANGAR_TOKEN"
    );
    let wrong = status_as(&url, &with_token(Some("guess")))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), tonic::Code::Unauthenticated);
    let data_plane_token = status_as(&url, &with_token(Some(DATAPLANE)))
        .await
        .unwrap_err();
    assert_eq!(data_plane_token.code(), tonic::Code::PermissionDenied);
    assert_eq!(
        cp.status().await.version,
        0,
        "nothing may have been applied"
    );

    for presented in [None, Some(ADMIN), Some("guess")] {
        let refused = open_stream(&url, &with_token(presented)).await.unwrap_err();
        assert!(
            refused.starts_with("Unauthenticated: "),
            "{presented:?}: {refused}"
        );
    }

    let dp = DataPlane::start_with(hangar_data_plane::Settings {
        client: with_token(Some(DATAPLANE)),
        ..hangar_data_plane::Settings::new(&url, "dp-1")
    })
    .await;
    cp.apply_and_wait(&yaml, 1).await;
    serves_then_stop(dp, cp, backends, 9).await;
}

/// Over TLS with a private CA and client certificates required of data
/// planes: hangarctl needs only the CA and its token, a data plane needs a
/// certificate from the client CA, and a client that does not trust the CA
/// is told why it cannot connect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificates_for_data_planes() {
    let pki = TestPki::generate();
    let (backends, yaml) = start_backends().await;
    let tls = ServerTls::from_files(&pki.server.cert, &pki.server.key, Some(&pki.ca)).unwrap();
    let settings = hangar_control_plane::Settings {
        tls: Some(tls),
        ..hangar_control_plane::Settings::new(pki.dir().join("state"))
    };
    let cp = ControlPlane::start_with(settings)
        .await
        .with_admin_client(trusting(&pki, None, None));
    let url = cp.url();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    assert_eq!(
        cp.status().await.version,
        0,
        "admin over TLS without a client cert"
    );

    let untrusting = hangar_proto::client::connect(&url, &ClientConfig::default())
        .await
        .unwrap_err();
    assert!(matches!(untrusting, ClientError::Connect { .. }));
    assert!(
        untrusting.to_string().contains("certificate"),
        "the error must say the certificate is not trusted: {untrusting}"
    );

    let without_cert = open_stream(&url, &trusting(&pki, None, None))
        .await
        .unwrap_err();
    assert!(
        without_cert.starts_with("Unauthenticated: data planes must present a client certificate"),
        "{without_cert}"
    );
    let rogue = open_stream(&url, &trusting(&pki, Some(&pki.rogue_client), None)).await;
    // Refused in the TLS layer; whether the client sees the server's alert
    // or only the closed connection depends on timing.
    rogue.expect_err("a certificate from another CA must be refused");

    let dp = DataPlane::start_with(hangar_data_plane::Settings {
        client: trusting(&pki, Some(&pki.client), None),
        ..hangar_data_plane::Settings::new(&url, "dp-1")
    })
    .await;
    cp.apply_and_wait(&yaml, 1).await;
    serves_then_stop(dp, cp, backends, 6).await;
}

/// Under TLS the one port serves gRPC over HTTP/2 (with client
/// certificates for data planes) and `/metrics` and the status page over
/// HTTP/1.1 as well: a scraper that offers only `http/1.1` in ALPN is
/// served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_the_status_page_over_http1_under_tls() {
    let pki = TestPki::generate();
    let (backends, yaml) = start_backends().await;
    let tls = ServerTls::from_files(&pki.server.cert, &pki.server.key, Some(&pki.ca)).unwrap();
    let settings = hangar_control_plane::Settings {
        tls: Some(tls),
        access: Access {
            admin_token: token(ADMIN),
            dataplane_token: None,
        },
        ..hangar_control_plane::Settings::new(pki.dir().join("state"))
    };
    let cp = ControlPlane::start_with(settings)
        .await
        .with_admin_client(trusting(&pki, None, Some(ADMIN)));
    let dp = DataPlane::start_with(hangar_data_plane::Settings {
        client: trusting(&pki, Some(&pki.client), None),
        ..hangar_data_plane::Settings::new(cp.url(), "dp-1")
    })
    .await;
    let version = cp.apply_and_wait(&yaml, 1).await;

    let ca = reqwest::Certificate::from_pem(&std::fs::read(&pki.ca).unwrap()).unwrap();
    let http1 = reqwest::Client::builder()
        .tls_certs_only([ca.clone()])
        .http1_only()
        .build()
        .unwrap();
    let url = cp.metrics_url();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let metrics = http1
        .get(&url)
        .send()
        .await
        .expect("/metrics over HTTP/1.1");
    assert_eq!(metrics.version(), reqwest::Version::HTTP_11);
    assert_eq!(metrics.status(), reqwest::StatusCode::OK);
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains(&format!("hangar_config_version {version}")),
        "{text}"
    );

    let status = http1
        .get(cp.page_url("/status.json"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), reqwest::StatusCode::OK);
    let status: serde_json::Value = status.json().await.unwrap();
    assert_eq!(status["data_planes"][0]["node_id"], "dp-1");

    // A client that offers h2 gets it, on the same port.
    let http2 = reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .unwrap();
    let metrics = http2.get(&url).send().await.unwrap();
    assert_eq!(metrics.version(), reqwest::Version::HTTP_2);

    // gRPC still checks the data plane's certificate.
    let without_cert = open_stream(&cp.url(), &trusting(&pki, None, None))
        .await
        .unwrap_err();
    assert!(
        without_cert.starts_with("Unauthenticated: data planes must present a client certificate"),
        "{without_cert}"
    );
    serves_then_stop(dp, cp, backends, 3).await;
}

/// TLS options on a plaintext URL are a mistake worth stopping for.
#[test]
fn tls_options_need_an_https_url() {
    let pki = TestPki::generate();
    let client = ClientConfig {
        token: None,
        tls: ClientTls::from_files(Some(&pki.ca), None, None).unwrap(),
    };
    let err = hangar_proto::client::endpoint("http://127.0.0.1:7070", &client).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid control-plane URL 'http://127.0.0.1:7070': a CA or client certificate needs an https:// URL"
    );
    let not_pem = ClientTls::from_files(Some(&pki.dir().join("missing.pem")), None, None);
    assert!(
        not_pem
            .unwrap_err()
            .to_string()
            .starts_with("CA certificate ")
    );
}
