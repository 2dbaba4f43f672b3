//! Members as they are in the wild: HTTPS with a private CA, credentials
//! in headers, and concurrency caps.

use hangar_tests::configs;
use hangar_tests::eventually::eventually;
use hangar_tests::fake_mcp::FakeMcp;
use hangar_tests::pki::TestPki;
use hangar_tests::raw::Raw;
use hangar_tests::stack::Stack;
use serde_json::json;

const TOKEN: &str = "s3cret-member-token-0123456789";

/// A member behind HTTPS with a CA of its own and a bearer-token check:
/// the right token (read from a file on the data plane) gets answers; a
/// wrong one is a `ToolInvocationError` naming the member, which leaves
/// rotation. Status shows header names, never the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_member_with_a_private_ca_and_a_bearer_token() {
    let pki = TestPki::generate();
    let secure = FakeMcp::new("secure")
        .tls(&pki.server)
        .require_bearer(TOKEN)
        .start()
        .await;
    let token_file = pki.dir().join("token");
    let wrong_file = pki.dir().join("wrong-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    std::fs::write(&wrong_file, "not-the-token\n").unwrap();
    let server = |id: &str, token: &std::path::Path| {
        format!(
            "  {id}:\n    mode: remote\n    endpoint: \"{}\"\n    health_check_interval_s: 0.1\n    max_consecutive_failures: 1\n    auth:\n      type: bearer\n      bearer_token: \"${{file:{}}}\"\n    tls:\n      ca_cert_path: \"{}\"\n",
            secure.url(),
            token.display(),
            pki.ca.display()
        )
    };
    let untrusting = format!(
        "  untrusting:\n    mode: remote\n    endpoint: \"{}\"\n    health_check_interval_s: 0.1\n    max_consecutive_failures: 1\n",
        secure.url()
    );
    let yaml = format!(
        "mcp_servers:\n{}{}{untrusting}",
        server("good", &token_file),
        server("wrong", &wrong_file)
    );
    let stack = Stack::start(&yaml).await;
    let client = stack.client().await;
    let call =
        |target: &str| json!({"mcp_server": target, "tool": "add", "arguments": {"a": 2, "b": 3}});
    let out = client
        .hangar_call(json!({"calls": [call("good"), call("wrong"), call("untrusting")]}))
        .await;
    let results = out["results"].as_array().unwrap();
    assert_eq!(
        results[0]["result"]["structuredContent"]["served_by"], "secure",
        "{out}"
    );
    assert_eq!(results[1]["error_type"], "ToolInvocationError", "{out}");
    let wrong_error = results[1]["error"].as_str().unwrap();
    assert!(wrong_error.contains("member 'wrong'"), "{wrong_error}");
    assert!(wrong_error.contains("401"), "{wrong_error}");
    assert_eq!(results[2]["error_type"], "ToolInvocationError", "{out}");
    assert!(secure.unauthorized() > 0);

    let status = eventually("the wrong-token member to leave rotation", || async {
        let status = stack.cp.status().await;
        let state = |id: &str| {
            status
                .servers
                .iter()
                .find(|s| s.id == id)
                .map(|s| s.state.clone())
        };
        (state("good").as_deref() == Some("ready")
            && state("wrong").as_deref() == Some("dead")
            && state("untrusting").as_deref() == Some("dead"))
        .then_some(status)
    })
    .await;
    let good = status.servers.iter().find(|s| s.id == "good").unwrap();
    assert_eq!(good.header_names, ["Authorization"]);
    let untrusting = status
        .servers
        .iter()
        .find(|s| s.id == "untrusting")
        .unwrap();
    assert!(
        untrusting.last_error.contains("certificate"),
        "a member whose CA is not trusted says so: {}",
        untrusting.last_error
    );
    let everything = format!("{status:?} {out}");
    assert!(
        !everything.contains(TOKEN),
        "the token leaked: {everything}"
    );
    stack.stop().await;
}

/// `max_concurrency: 2` on a slow member: never more than 2 calls in
/// flight on it; the others wait their turn within their deadline, and
/// those whose deadline passes first fail as `ConcurrencyLimitError`
/// without counting against the member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrency_caps_calls_in_flight_on_a_member() {
    let slow = FakeMcp::new("slow").start().await;
    let yaml = format!(
        "mcp_servers:\n  slow:\n    mode: remote\n    endpoint: \"{}\"\n    health_check_interval_s: 0.1\n    max_concurrency: 2\n",
        slow.url()
    );
    let stack = Stack::start(&yaml).await;
    let client = stack.client().await;
    let sleep = json!({"mcp_server": "slow", "tool": "sleep", "arguments": {"ms": 200}});
    let out = client
        .hangar_call(json!({"calls": vec![sleep.clone(); 8], "max_concurrency": 8, "timeout": 30}))
        .await;
    let results = out["results"].as_array().unwrap();
    let starts: Vec<u64> = results
        .iter()
        .map(|r| {
            r["result"]["structuredContent"]["in_flight_at_start"]
                .as_u64()
                .unwrap_or_else(|| panic!("every call waits its turn and succeeds: {r}"))
        })
        .collect();
    assert_eq!(
        starts.iter().max(),
        Some(&1),
        "two calls ran side by side, never three: {starts:?}"
    );

    // Two long calls hold both slots; two calls that cannot wait that
    // long get no slot.
    let long =
        json!({"mcp_server": "slow", "tool": "sleep", "arguments": {"ms": 1000}, "timeout": 30});
    let holder = stack.client().await;
    let holding = tokio::spawn(async move {
        holder
            .hangar_call(json!({"calls": [long.clone(), long], "max_concurrency": 2}))
            .await
    });
    eventually("both slots to be taken", || async {
        (slow.in_flight() == 2).then_some(())
    })
    .await;
    let short =
        json!({"mcp_server": "slow", "tool": "add", "arguments": {"a": 1, "b": 1}, "timeout": 0.3});
    let out = client
        .hangar_call(json!({"calls": [short.clone(), short], "max_concurrency": 2}))
        .await;
    let types: Vec<&str> = out["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["error_type"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(
        types,
        ["ConcurrencyLimitError", "ConcurrencyLimitError"],
        "{out}"
    );
    let held = holding.await.unwrap();
    assert_eq!(held["succeeded"], 2, "{held}");
    // Being busy is not being unwell.
    let status = stack.cp.status().await;
    assert_eq!(status.servers[0].errors, 0, "{status:?}");
    assert_eq!(status.servers[0].state, "ready");
    stack.stop().await;
}

/// `http.read_timeout` ends a call whose member goes quiet before the call's
/// own deadline, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_timeout_ends_a_call_when_the_member_goes_quiet() {
    let slow = FakeMcp::new("slow").start().await;
    let yaml = format!(
        "mcp_servers:\n  slow:\n    mode: remote\n    endpoint: \"{}\"\n    health_check_interval_s: 0.1\n    http: {{read_timeout: 0.3}}\n",
        slow.url()
    );
    let stack = Stack::start(&yaml).await;
    let client = stack.client().await;
    let call =
        json!({"mcp_server": "slow", "tool": "sleep", "arguments": {"ms": 5000}, "timeout": 60});
    let out = client.hangar_call(json!({"calls": [call]})).await;
    let result = &out["results"][0];
    assert_eq!(result["error_type"], "TimeoutError", "{out}");
    let error = result["error"].as_str().unwrap();
    assert!(error.contains("read_timeout"), "{error}");
    let fast = json!({"mcp_server": "slow", "tool": "add", "arguments": {"a": 1, "b": 1}});
    let out = client.hangar_call(json!({"calls": [fast]})).await;
    assert_eq!(out["succeeded"], 1, "a quick answer is not affected: {out}");
    stack.stop().await;
}

/// `verify_ssl: false` (development only) accepts a certificate no root
/// vouches for, where the same member with default TLS stays out of rotation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_ssl_false_accepts_an_untrusted_certificate() {
    let pki = TestPki::generate();
    let secure = FakeMcp::new("secure").tls(&pki.server).start().await;
    let yaml = format!(
        "mcp_servers:\n  lax:\n    mode: remote\n    endpoint: \"{url}\"\n    tls:\n      verify_ssl: false\n  strict:\n    mode: remote\n    endpoint: \"{url}\"\n",
        url = secure.url()
    );
    let stack = Stack::start(&yaml).await;
    let client = stack.client().await;
    let call =
        |target: &str| json!({"mcp_server": target, "tool": "add", "arguments": {"a": 2, "b": 3}});
    let out = client
        .hangar_call(json!({"calls": [call("lax"), call("strict")]}))
        .await;
    let results = out["results"].as_array().unwrap();
    assert_eq!(
        results[0]["result"]["structuredContent"]["served_by"], "secure",
        "{out}"
    );
    assert_eq!(results[1]["error_type"], "ToolInvocationError", "{out}");
    let strict = results[1]["error"].as_str().unwrap();
    assert!(strict.contains("member 'strict'"), "{strict}");
}

/// The group endpoint reaches an HTTPS member with a private CA as well as
/// a plain-HTTP one, each with its configured credentials added to what the
/// client sent: both serve, and neither refuses a request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_endpoint_reaches_https_and_plain_members_with_their_credentials() {
    let pki = TestPki::generate();
    let secure = FakeMcp::new("secure")
        .tls(&pki.server)
        .require_bearer(TOKEN)
        .stateless()
        .json_response(true)
        .start()
        .await;
    let plain = FakeMcp::new("plain")
        .require_bearer(TOKEN)
        .stateless()
        .json_response(true)
        .start()
        .await;
    let yaml = format!(
        "mcp_servers:\n  secure:\n    mode: remote\n    endpoint: \"{}\"\n    auth:\n      type: bearer\n      bearer_token: \"{TOKEN}\"\n    tls:\n      ca_cert_path: \"{}\"\n  plain:\n    mode: remote\n    endpoint: \"{}\"\n    headers:\n      Authorization: \"Bearer {TOKEN}\"\n  pair:\n    mode: group\n    strategy: round_robin\n    members:\n      - id: secure\n      - id: plain\n",
        secure.url(),
        pki.ca.display(),
        plain.url()
    );
    let stack = Stack::start(&yaml).await;
    let raw = Raw {
        http: reqwest::Client::new(),
        url: stack.dp.mcp_url().replace("/mcp", "/groups/pair/mcp"),
    };
    let mut served = Vec::new();
    for id in 1..=4 {
        let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "whoami", "arguments": {}}});
        let response = raw.post(None, call).await;
        assert_eq!(response.status(), 200);
        let answer: serde_json::Value = response.json().await.unwrap();
        served.push(answer["result"]["structuredContent"]["served_by"].clone());
    }
    served.sort_by_key(ToString::to_string);
    assert_eq!(served, ["plain", "plain", "secure", "secure"]);
    assert_eq!(secure.unauthorized() + plain.unauthorized(), 0);
    stack.stop().await;
}

/// A member that keeps an answer's event stream open after the response
/// (servers that end their streams late, or send more on them) serves
/// `hangar_call` at the response event, not when the stream ends, and is
/// healthy: its probes are answered the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_event_answers_however_long_its_stream_stays_open() {
    let a = FakeMcp::new("a").hold_streams_open().start().await;
    let stack = Stack::start(&configs::recipe(&[a.url()], 0.1, 3)).await;
    let client = stack.dp.client().await;
    for text in ["one", "two"] {
        let out = client
            .hangar_call(
                json!({"calls": [{"mcp_server": "my-mcp-group", "tool": "echo",
                "arguments": {"text": text}, "timeout": 5}]}),
            )
            .await;
        assert_eq!(out["results"][0]["success"], true, "{out}");
        assert_eq!(
            out["results"][0]["result"]["structuredContent"]["text"],
            text
        );
    }
    assert_eq!(stack.cp.status().await.servers[0].state, "ready");
}
