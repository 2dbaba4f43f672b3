//! MCP Hangar's `auth:` with API keys the control plane issues: requests
//! without a key, with an unknown, revoked or misplaced one get 401 with a
//! reason; a key in `X-API-Key` or `Authorization: Bearer` is served;
//! `allow_anonymous` serves requests without a key.

use hangar_proto::v1::{CreateApiKeyRequest, DeleteApiKeyRequest, ListApiKeysRequest};
use hangar_tests::configs::{GroupConfig, RECIPE_GROUP};
use hangar_tests::eventually::eventually;
use hangar_tests::fake_mcp::{FakeMcp, FakeMcpHandle};
use hangar_tests::stack::Stack;
use serde_json::{Value, json};

async fn stack(auth: &str) -> (Stack, Vec<FakeMcpHandle>) {
    let mut servers = Vec::new();
    for name in ["a", "b"] {
        servers.push(FakeMcp::new(name).start().await);
    }
    let urls: Vec<String> = servers.iter().map(FakeMcpHandle::url).collect();
    let yaml = format!("{auth}{}", GroupConfig::recipe(&urls).yaml());
    (Stack::start(&yaml).await, servers)
}

fn initialize() -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
    .to_string()
}

/// POSTs `initialize` to `url` with `header`; the status and the body.
async fn post(url: &str, header: Option<(&str, &str)>) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(initialize());
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

fn message(body: &str) -> String {
    let error: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(error["id"], 1, "{body}");
    error["error"]["message"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_let_clients_in_and_revocation_shuts_them_out() {
    let (stack, servers) =
        stack("auth: {enabled: true, api_key: {enabled: true, header_name: X-API-Key}}\n").await;
    let mut admin = stack.cp.admin().await;
    let made = admin
        .create_api_key(CreateApiKeyRequest {
            principal: "service:my-app".into(),
            expires_in_ms: 0,
        })
        .await
        .expect("create a key")
        .into_inner();
    let key = made.key.clone();
    assert!(key.starts_with("hgk_"));
    let groups = stack.group_url(RECIPE_GROUP);
    let mcp = format!("http://{}/mcp", stack.dp.addr());

    // Served once the key reached the data plane, in either header.
    eventually("the key reaches the data plane", || async {
        (post(&groups, Some(("x-api-key", &key))).await.0 == 200).then_some(())
    })
    .await;
    let bearer = format!("Bearer {key}");
    assert_eq!(post(&groups, Some(("authorization", &bearer))).await.0, 200);
    assert_eq!(post(&mcp, Some(("x-api-key", &key))).await.0, 200);

    // Refused, each with its reason, and no member saw them.
    let before: u64 = servers.iter().map(|s| s.sessions() as u64).sum();
    let (status, body) = post(&groups, None).await;
    assert_eq!(status, 401);
    assert_eq!(
        message(&body),
        "Unauthorized: this data plane takes MCP requests only with an API key in the X-API-Key header (or Authorization: Bearer)"
    );
    let (status, body) = post(&mcp, Some(("x-api-key", "hgk_not-a-key"))).await;
    assert_eq!(
        (status, message(&body).as_str()),
        (401, "Unauthorized: unknown or revoked API key")
    );
    let (status, _) = post(&groups, Some(("x-token", &key))).await;
    assert_eq!(status, 401, "a key in the wrong header is no key");
    let after: u64 = servers.iter().map(|s| s.sessions() as u64).sum();
    assert_eq!(before, after);

    let listed = admin
        .list_api_keys(ListApiKeysRequest {})
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].principal, "service:my-app");
    let id = made.info.unwrap().id;
    admin
        .delete_api_key(DeleteApiKeyRequest { id: id.clone() })
        .await
        .expect("delete the key");
    eventually("the revoked key is refused", || async {
        let (status, body) = post(&groups, Some(("x-api-key", &key))).await;
        (status == 401 && message(&body) == "Unauthorized: unknown or revoked API key")
            .then_some(())
    })
    .await;
    let gone = admin
        .delete_api_key(DeleteApiKeyRequest { id })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), tonic::Code::NotFound);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_anonymous_serves_clients_without_a_key_but_not_with_a_bad_one() {
    let (stack, _servers) = stack("auth: {enabled: true, allow_anonymous: true}\n").await;
    let groups = stack.group_url(RECIPE_GROUP);
    assert_eq!(post(&groups, None).await.0, 200);
    let (status, body) = post(&groups, Some(("x-api-key", "hgk_unknown"))).await;
    assert_eq!(
        (status, message(&body).as_str()),
        (401, "Unauthorized: unknown or revoked API key")
    );
    stack.stop().await;
}

/// A session is bound to the principal that opened it: another principal's
/// requests with its id get 404, never the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_bound_to_its_principal() {
    let (stack, _servers) = stack("auth: {enabled: true}\n").await;
    let admin = stack.cp.admin().await;
    let key = |principal: &str| {
        let request = CreateApiKeyRequest {
            principal: principal.into(),
            expires_in_ms: 0,
        };
        let mut admin = admin.clone();
        async move {
            admin
                .create_api_key(request)
                .await
                .unwrap()
                .into_inner()
                .key
        }
    };
    let (alice, bob) = (key("user:alice").await, key("user:bob").await);
    let groups = stack.group_url(RECIPE_GROUP);
    let http = reqwest::Client::new();
    let send = |key: String, session: Option<String>, body: String| {
        let mut request = http
            .post(&groups)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("x-api-key", key)
            .body(body);
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        request.send()
    };
    eventually("bob's key reaches the data plane", || async {
        let response = send(bob.clone(), None, initialize()).await.unwrap();
        (response.status() == 200).then_some(())
    })
    .await;
    let opened = send(alice.clone(), None, initialize()).await.unwrap();
    assert_eq!(opened.status(), 200);
    let session = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).to_string();
    let own = send(alice.clone(), Some(session.clone()), list.clone())
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    let stolen = send(bob.clone(), Some(session), list).await.unwrap();
    assert_eq!(stolen.status(), 404);
    stack.stop().await;
}

/// A data plane with `--cache-dir` restarted while the control plane is
/// down still lets keyed clients in: the key hashes are cached beside the
/// snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_clients_are_served_by_a_data_plane_restarted_without_its_control_plane() {
    let (stack, servers) = stack("auth: {enabled: true}\n").await;
    let key = stack
        .cp
        .admin()
        .await
        .create_api_key(CreateApiKeyRequest {
            principal: "service:a".into(),
            expires_in_ms: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .key;
    let cache = tempfile::tempdir().unwrap();
    let cp_url = stack.cp.url();
    let settings = || hangar_data_plane::Settings {
        cache_dir: Some(cache.path().to_path_buf()),
        ..hangar_data_plane::Settings::new(cp_url.clone(), "dp-cached")
    };
    let cached = hangar_tests::data_plane::DataPlane::start_with(settings()).await;
    let url = |dp: &hangar_tests::data_plane::DataPlane| {
        format!("http://{}/groups/{RECIPE_GROUP}/mcp", dp.addr())
    };
    eventually("the key reaches the caching data plane", || async {
        (post(&url(&cached), Some(("x-api-key", &key))).await.0 == 200).then_some(())
    })
    .await;
    cached.stop().await;
    stack.stop().await;
    let again = hangar_tests::data_plane::DataPlane::start_with(settings()).await;
    eventually(
        "the restarted data plane serves the cached config",
        || async { (post(&url(&again), Some(("x-api-key", &key))).await.0 == 200).then_some(()) },
    )
    .await;
    assert_eq!(post(&url(&again), None).await.0, 401);
    again.stop().await;
    drop(servers);
}
