//! Bearer tokens (`auth.jwt`) and `access:` rules as clients meet them:
//! the official Python and TypeScript SDK clients carrying a token or an
//! API key see only the tools their rules allow, a denied call never
//! reaches a member, each bad token gets a 401 with its reason and a
//! challenge that points at the protected resource metadata, and keys come
//! from a JWKS URL that is fetched again the moment a token names a new
//! key.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hangar_proto::v1::CreateApiKeyRequest;
use hangar_tests::configs::{GroupConfig, RECIPE_GROUP};
use hangar_tests::eventually::eventually;
use hangar_tests::fake_mcp::{FakeMcp, FakeMcpHandle};
use hangar_tests::jwt::Issuer;
use hangar_tests::raw::Raw;
use hangar_tests::stack::Stack;
use hangar_tests::{python_sdk, ts_sdk};
use parking_lot::Mutex;
use serde_json::{Value, json};

const ISSUER: &str = "https://idp.example.com/";
const AUDIENCE: &str = "https://mcp.example.com";

async fn members() -> (Vec<FakeMcpHandle>, Vec<String>) {
    let mut servers = Vec::new();
    for name in ["a", "b"] {
        // Each member takes only its own credential: a client's token
        // passed through would be refused, and counted.
        servers.push(
            FakeMcp::new(name)
                .require_bearer("member-secret")
                .start()
                .await,
        );
    }
    let urls = servers.iter().map(FakeMcpHandle::url).collect();
    (servers, urls)
}

/// Recipe 05 whose members need `member-secret`, under `auth` with `jwt`
/// (`jwks` is the YAML of `jwks:` or `jwks_url:`) and two access rules:
/// readers may call `echo` and `whoami`, services anything of the group.
fn config(urls: &[String], jwks: &str) -> String {
    let group = GroupConfig::recipe(urls).yaml().replace(
        "    max_consecutive_failures:",
        "    auth: {type: bearer, bearer_token: member-secret}\n    max_consecutive_failures:",
    );
    format!(
        "{group}auth:\n  enabled: true\n  api_key: {{enabled: true}}\n  jwt:\n    issuer: \"{ISSUER}\"\n    audience: \"{AUDIENCE}\"\n    {jwks}\n  oauth: {{scopes_supported: [mcp]}}\naccess:\n  - roles: [reader]\n    allow: [\"{RECIPE_GROUP}/echo\", \"{RECIPE_GROUP}/whoami\"]\n  - principals: [\"service:*\"]\n    allow: [\"{RECIPE_GROUP}/*\"]\n"
    )
}

fn reader_token(idp: &Issuer, kid: &str) -> String {
    idp.token(
        kid,
        "user:ann",
        &format!("{AUDIENCE}/groups/{RECIPE_GROUP}/mcp"),
        json!({"roles": ["reader"]}),
    )
}

/// POSTs `initialize` to `url` with `headers`; the response.
async fn initialize(url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"}}})
            .to_string(),
        );
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// The status, `WWW-Authenticate` and error message of a refused request.
async fn refusal(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], 1, "{body}");
    (
        status,
        challenge,
        body["error"]["message"].as_str().unwrap().to_owned(),
    )
}

fn calls(servers: &[FakeMcpHandle]) -> u64 {
    servers.iter().map(FakeMcpHandle::calls).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_clients_with_a_token_or_a_key_see_and_call_only_what_their_rules_allow() {
    let idp = Issuer::new(ISSUER);
    let (servers, urls) = members().await;
    let jwks = format!("jwks: {}", idp.jwks());
    let stack = Stack::start(&config(&urls, &jwks)).await;
    let group = stack.group_url(RECIPE_GROUP);
    let token = reader_token(&idp, "ed");
    let bearer = format!("Bearer {token}");
    eventually("the members list their tools", || async {
        let answer =
            python_sdk::run_auth_client(&[&group, "Authorization", &bearer, "echo", "add"]).await;
        let report = answer.1.first().cloned()?;
        (report["tools"] == json!(["echo", "whoami"])).then_some(())
    })
    .await;

    // The Python SDK with a reader's token: echo is served, add is hidden
    // and refused, and never reached a member.
    let before = calls(&servers);
    let (status, lines, stderr) =
        python_sdk::run_auth_client(&[&group, "Authorization", &bearer, "echo", "add"]).await;
    assert!(status.success(), "{stderr}");
    let report = &lines[0];
    assert_eq!(report["tools"], json!(["echo", "whoami"]), "{report}");
    assert_eq!(report["allowed"]["ok"], true, "{report}");
    assert_eq!(report["denied"]["ok"], false, "{report}");
    let error = report["denied"]["error"].as_str().unwrap();
    assert!(
        error.contains("'add' is not allowed to principal 'user:ann' by any access rule"),
        "{error}"
    );
    assert_eq!(calls(&servers), before + 1, "only echo reached a member");

    // The TypeScript SDK with a token signed by the RSA key: the same.
    let rsa = format!("Bearer {}", reader_token(&idp, "rsa"));
    let (_, lines, stderr) = ts_sdk::run(
        "auth_client.mjs",
        &[&group, "Authorization", &rsa, "whoami", "add"],
    )
    .await;
    let report = lines.first().unwrap_or_else(|| panic!("{stderr}"));
    assert_eq!(report["tools"], json!(["echo", "whoami"]), "{report}");
    assert_eq!(report["allowed"]["ok"], true, "{report}");
    assert_eq!(report["denied"]["ok"], false, "{report}");

    // An API key of a service principal: every tool of the group.
    let mut admin = stack.cp.admin().await;
    let key = admin
        .create_api_key(CreateApiKeyRequest {
            principal: "service:ci".into(),
            expires_in_ms: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .key;
    let report = eventually("the key reaches the data plane", || async {
        let (_, lines, _) = ts_sdk::run(
            "auth_client.mjs",
            &[&group, "X-API-Key", &key, "echo", "add"],
        )
        .await;
        lines
            .first()
            .filter(|r| r.get("connect_error").is_none())
            .cloned()
    })
    .await;
    assert_eq!(
        report["tools"],
        json!(["add", "echo", "fail", "sleep", "whoami"]),
        "{report}"
    );
    // `add` reached a member this time: its answer is the tool's own error
    // about the arguments (isError), not a refusal.
    assert_eq!(report["denied"]["ok"], false, "{report}");
    assert!(
        report["denied"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("a and b must be numbers")),
        "{report}"
    );

    // hangar_call holds the token's principal to the same rules.
    let raw = Raw {
        http: reqwest::Client::builder()
            .default_headers(
                [(http::header::AUTHORIZATION, bearer.parse().unwrap())]
                    .into_iter()
                    .collect(),
            )
            .build()
            .unwrap(),
        url: format!("http://{}/mcp", stack.dp.addr()),
    };
    let session = raw.initialize().await;
    let _ = raw
        .post(
            Some(&session),
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        )
        .await;
    let answer = raw
        .post(
            Some(&session),
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
                "name": "hangar_call", "arguments": {"calls": [
                    {"mcp_server": RECIPE_GROUP, "tool": "echo", "arguments": {"text": "hi"}},
                    {"mcp_server": RECIPE_GROUP, "tool": "add", "arguments": {"a": 1, "b": 2}},
                    {"mcp_server": "my-mcp", "tool": "echo", "arguments": {"text": "hi"}}]}}}),
        )
        .await;
    let status = answer.status();
    let text = answer.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    // An SSE stream whose priming event has no data; the answer has id 2.
    let message: Value = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(|m| m["id"] == 2)
        .unwrap_or_else(|| panic!("no answer in {text}"));
    let batch: Value = message["result"]["structuredContent"].clone();
    let results = batch["results"]
        .as_array()
        .unwrap_or_else(|| panic!("{message}"));
    assert_eq!(results[0]["success"], true, "{batch}");
    assert_eq!(results[1]["error_type"], "ToolAccessDeniedError", "{batch}");
    assert_eq!(
        results[2]["error_type"], "ToolAccessDeniedError",
        "a member named directly is its own target: {batch}"
    );

    for server in &servers {
        assert_eq!(
            server.unauthorized(),
            0,
            "a client's credential reached {}",
            server.name()
        );
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_token_is_refused_with_its_reason_and_a_challenge_then_a_good_one_passes() {
    let idp = Issuer::new(ISSUER);
    let stranger = Issuer::new(ISSUER);
    let (_servers, urls) = members().await;
    let stack = Stack::start(&config(&urls, &format!("jwks: {}", idp.jwks()))).await;
    let group = stack.group_url(RECIPE_GROUP);
    let aud = format!("{AUDIENCE}/groups/{RECIPE_GROUP}/mcp");
    let now = hangar_tests::jwt::now_s();
    let metadata = format!(
        "resource_metadata=\"http://{}/.well-known/oauth-protected-resource/groups/{RECIPE_GROUP}/mcp\"",
        stack.dp.addr()
    );
    let cases = [
        (
            idp.token("ec", "a", &aud, json!({"exp": now - 120})),
            "Unauthorized: the token expired",
        ),
        (
            idp.token("ec", "a", "https://other.example.com/mcp", json!({})),
            "Unauthorized: the token is not for this resource (aud)",
        ),
        (
            idp.token("ec", "a", &aud, json!({"iss": "https://evil.example.com/"})),
            "Unauthorized: the token is from another issuer",
        ),
        (
            stranger.token("rsa", "a", &aud, json!({})),
            "Unauthorized: the token's signature does not verify",
        ),
        (
            hangar_tests::jwt::unsigned(
                &json!({"iss": ISSUER, "sub": "a", "aud": aud, "exp": now + 60}),
            ),
            "Unauthorized: unsigned tokens (alg: none) are not accepted",
        ),
        (
            "e30.e30.e30".to_owned(),
            "Unauthorized: the bearer token is not a well-formed JWT",
        ),
        (
            format!("{}.{}.x", "a".repeat(5000), "b".repeat(5000)),
            "Unauthorized: the bearer token is longer than 8192 bytes",
        ),
    ];
    eventually("the config is in force", || async {
        (initialize(&group, &[]).await.status() == 401).then_some(())
    })
    .await;
    for (token, reason) in &cases {
        let bearer = format!("Bearer {token}");
        let (status, challenge, message) =
            refusal(initialize(&group, &[("authorization", &bearer)]).await).await;
        assert_eq!((status, message.as_str()), (401, *reason));
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        assert!(challenge.contains(&metadata), "{challenge}");
    }
    // No credential: the challenge points at the metadata, without an error.
    let (status, challenge, _) = refusal(initialize(&group, &[]).await).await;
    assert_eq!(status, 401);
    assert!(
        challenge.contains(&metadata) && !challenge.contains("invalid_token"),
        "{challenge}"
    );
    let good = format!("Bearer {}", reader_token(&idp, "ec"));
    assert_eq!(
        initialize(&group, &[("authorization", &good)])
            .await
            .status(),
        200
    );

    // The metadata an OAuth client follows from the challenge.
    let url = format!(
        "http://{}/.well-known/oauth-protected-resource/groups/{RECIPE_GROUP}/mcp",
        stack.dp.addr()
    );
    let document: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    assert_eq!(
        document["resource"],
        format!("http://{}/groups/{RECIPE_GROUP}/mcp", stack.dp.addr())
    );
    assert_eq!(document["authorization_servers"], json!([ISSUER]));
    assert_eq!(document["scopes_supported"], json!(["mcp"]));
    assert_eq!(document["bearer_methods_supported"], json!(["header"]));
    let unknown = format!(
        "http://{}/.well-known/oauth-protected-resource/groups/nope/mcp",
        stack.dp.addr()
    );
    assert_eq!(reqwest::get(&unknown).await.unwrap().status(), 404);
    stack.stop().await;
}

/// An identity provider's JWKS endpoint on loopback, counting its fetches.
struct JwksServer {
    url: String,
    jwks: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
}

async fn jwks_server(jwks: String) -> JwksServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let jwks = Arc::new(Mutex::new(jwks));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (served, counted) = (jwks.clone(), fetches.clone());
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let (served, counted) = (served.clone(), counted.clone());
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                served.lock().clone()
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    JwksServer { url, jwks, fetches }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_from_a_jwks_url_are_fetched_and_a_rotated_key_is_taken_on_its_first_token() {
    let mut idp = Issuer::new(ISSUER);
    let jwks = jwks_server(idp.jwks()).await;
    let (_servers, urls) = members().await;
    let stack = Stack::start(&config(&urls, &format!("jwks_url: \"{}\"", jwks.url))).await;
    let group = stack.group_url(RECIPE_GROUP);
    let first = format!("Bearer {}", reader_token(&idp, "rsa"));
    eventually("the data plane fetched the keys", || async {
        (initialize(&group, &[("authorization", &first)])
            .await
            .status()
            == 200)
            .then_some(())
    })
    .await;

    // The provider rotates: a token signed with the new key is taken on its
    // first request, which made the data plane fetch again.
    let kid = idp.rotate(jsonwebtoken::Algorithm::ES256);
    *jwks.jwks.lock() = idp.jwks();
    let fetched = jwks.fetches.load(Ordering::SeqCst);
    let rotated = format!("Bearer {}", reader_token(&idp, &kid));
    assert_eq!(
        initialize(&group, &[("authorization", &rotated)])
            .await
            .status(),
        200
    );
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), fetched + 1);

    // A key the provider never published: refused, and it does not make
    // the data plane fetch again at once (no fetch storm from bad tokens).
    let mut stranger = Issuer::new(ISSUER);
    let unknown = stranger.rotate(jsonwebtoken::Algorithm::EdDSA);
    let forged = format!("Bearer {}", reader_token(&stranger, &unknown));
    let (status, _, message) =
        refusal(initialize(&group, &[("authorization", &forged)]).await).await;
    assert_eq!(
        (status, message.as_str()),
        (
            401,
            "Unauthorized: the token was signed with a key not in the key set"
        )
    );
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), fetched + 1);
    stack.stop().await;
}
