//! `/groups/{group}/mcp`: a group that any MCP client can use as one server.

use std::collections::BTreeMap;

use hangar_tests::configs::{GroupConfig, RECIPE_GROUP};
use hangar_tests::eventually::eventually;
use hangar_tests::fake_mcp::{FakeMcp, FakeMcpHandle};
use hangar_tests::python_sdk::{self, Mode, PyBackend};
use hangar_tests::raw::Raw;
use hangar_tests::stack::Stack;
use serde_json::{Value, json};

async fn fakes(n: usize) -> Vec<FakeMcpHandle> {
    let mut servers = Vec::new();
    for name in ["a", "b", "c"].into_iter().take(n) {
        servers.push(FakeMcp::new(name).start().await);
    }
    servers
}

fn group_url(stack: &Stack) -> String {
    stack
        .dp
        .mcp_url()
        .replace("/mcp", &format!("/groups/{RECIPE_GROUP}/mcp"))
}

/// Sessions stick: every call of one session goes to the member that took
/// its `initialize`, and round robin spreads new sessions over the members.
/// When that member dies the session moves to a healthy member (session
/// recovery), and a new `initialize` lands on a healthy member too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_stick_to_their_member_and_move_when_it_dies() {
    let mut servers = fakes(3).await;
    let endpoints: Vec<String> = servers.iter().map(FakeMcpHandle::url).collect();
    let config = GroupConfig {
        max_consecutive_failures: 1,
        ..GroupConfig::recipe(&endpoints)
    };
    let stack = Stack::start(&config.yaml()).await;
    let raw = Raw {
        http: reqwest::Client::new(),
        url: group_url(&stack),
    };

    let mut owners = BTreeMap::new();
    for _ in 0..3 {
        let session = raw.initialize().await;
        let first = raw.whoami(&session).await.unwrap();
        for _ in 0..5 {
            assert_eq!(
                raw.whoami(&session).await.unwrap(),
                first,
                "a session sticks to its member"
            );
        }
        owners.insert(first, session);
    }
    assert_eq!(
        owners.keys().collect::<Vec<_>>(),
        ["a", "b", "c"],
        "sessions are spread"
    );

    servers[0].stop().await;
    let session_on_a = &owners["a"];
    let moved_to = eventually("a's session to move to a healthy member", || async {
        raw.whoami(session_on_a).await.ok().filter(|m| m != "a")
    })
    .await;
    for _ in 0..3 {
        assert_eq!(
            raw.whoami(session_on_a).await.unwrap(),
            moved_to,
            "the moved session sticks to its new member"
        );
    }
    let fresh = raw.initialize().await;
    assert_ne!(raw.whoami(&fresh).await.unwrap(), "a");
    // The session id is the client's only state: another data plane of the
    // fleet routes it to the same member.
    let dp2 = hangar_tests::data_plane::DataPlane::start(&stack.cp.url(), "dp-2").await;
    stack.cp.apply_and_wait(&config.yaml(), 2).await;
    let raw2 = Raw {
        http: reqwest::Client::new(),
        url: dp2
            .mcp_url()
            .replace("/mcp", &format!("/groups/{RECIPE_GROUP}/mcp")),
    };
    assert_eq!(raw2.whoami(&owners["b"]).await.unwrap(), "b");
    dp2.stop().await;
    stack.stop().await;
}

/// Wire rules at the edge: unknown group → 404 naming it; a foreign browser
/// Origin → 403; 2026-07-28 header/body mismatch → 400 -32020; bad JSON →
/// parse error; the stateless protocol has no GET stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_rules() {
    let servers = fakes(1).await;
    let stack = Stack::start(&GroupConfig::recipe(&[servers[0].url()]).yaml()).await;
    let http = reqwest::Client::new();
    let base = stack.dp.mcp_url().replace("/mcp", "");
    let post = |url: String, headers: Vec<(&'static str, &'static str)>, body: &'static str| {
        let mut request = http
            .post(url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json");
        for (k, v) in headers {
            request = request.header(k, v);
        }
        request.body(body).send()
    };
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let response = post(format!("{base}/groups/nope/mcp"), vec![], ping)
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let error: Value = response.json().await.unwrap();
    assert_eq!(
        error["error"]["message"],
        format!("unknown group 'nope' (groups: {RECIPE_GROUP})")
    );
    assert_eq!(error["id"], 1, "the refusal carries the request's id");

    let group = format!("{base}/groups/{RECIPE_GROUP}/mcp");
    let response = post(
        group.clone(),
        vec![("origin", "http://evil.example.com")],
        ping,
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 403);

    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let modern = |name: &'static str| {
        vec![
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", name),
        ]
    };
    let response = post(group.clone(), modern("echo"), call).await.unwrap();
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], -32020);
    let response = post(group.clone(), modern("add"), call).await.unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["result"]["structuredContent"]["sum"], 3);

    let response = post(group.clone(), vec![], "{nope").await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"]["code"],
        -32700
    );
    let response = http
        .get(&group)
        .header("mcp-protocol-version", "2026-07-28")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    stack.stop().await;
}

/// A member's JSON answer keeps its `Content-Length` through the proxy
/// instead of being re-framed as chunked, so the client reads it in one go
/// and can reuse its connection at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_answers_keep_their_length() {
    let server = FakeMcp::new("a")
        .stateless()
        .json_response(true)
        .start()
        .await;
    let stack = Stack::start(&GroupConfig::recipe(&[server.url()]).yaml()).await;
    let response = reqwest::Client::new()
        .post(group_url(&stack))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-11-25")
        .body(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("transfer-encoding").is_none());
    let length = response.content_length().expect("a Content-Length");
    let body = response.bytes().await.unwrap();
    assert_eq!(length, body.len() as u64);
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["result"]["structuredContent"]["sum"], 3);
    stack.stop().await;
}

/// The official Python SDK client in all three modes calls tools through
/// the group endpoint of Python SDK backends; fresh sessions spread over the
/// members; progress notifications arrive through the proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_client_in_every_mode() {
    let backends = [
        PyBackend::start("a", Mode::Stateful).await,
        PyBackend::start("b", Mode::Stateless).await,
        PyBackend::start("c", Mode::Stateful).await,
    ];
    let endpoints: Vec<String> = backends.iter().map(PyBackend::base_url).collect();
    let config = GroupConfig {
        health_check_interval_s: 1.0,
        ..GroupConfig::recipe(&endpoints)
    };
    let stack = Stack::start(&config.yaml()).await;
    let url = group_url(&stack);
    for mode in ["legacy", "auto", "2026-07-28"] {
        let lines = python_sdk::fresh_calls(&url, mode, "add", r#"{"a":1,"b":2}"#, 6).await;
        assert!(
            lines.iter().all(|l| l["structured"]["sum"] == 3),
            "{mode}: {lines:?}"
        );
        assert_eq!(
            python_sdk::served_by(&lines),
            ["a", "a", "b", "b", "c", "c"],
            "{mode}: one call per session or request, round robin"
        );
    }
    let (status, lines, stderr) = python_sdk::run_client(&[
        "--mode",
        "legacy",
        &url,
        "call",
        "sleep",
        r#"{"ms":350}"#,
        "--progress",
    ])
    .await;
    assert!(status.success(), "{stderr}");
    let progress = lines[0]["progress"].as_array().expect("progress recorded");
    assert!(progress.len() >= 3, "progress passes through: {lines:?}");
    stack.stop().await;
}

/// SSE answers are relayed event by event: the first progress notification
/// reaches the client while the tool is still running, not bundled with the
/// result at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_is_streamed_not_buffered() {
    let backend = PyBackend::start("a", Mode::Stateful).await;
    let stack = Stack::start(&GroupConfig::recipe(&[backend.base_url()]).yaml()).await;
    let raw = Raw {
        http: reqwest::Client::new(),
        url: group_url(&stack),
    };
    let session = raw.initialize().await;
    let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "sleep", "arguments": {"ms": 600}, "_meta": {"progressToken": "p1"}}});
    let mut response = raw.post(Some(&session), call).await;
    assert_eq!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .split(';')
            .next(),
        Some("text/event-stream")
    );
    let mut seen = String::new();
    while !seen.contains("notifications/progress") {
        let chunk = response
            .chunk()
            .await
            .unwrap()
            .expect("stream open until the result");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        !seen.contains("slept_ms"),
        "the result must not have arrived with the first progress: {seen}"
    );
    while let Some(chunk) = response.chunk().await.unwrap() {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("\"slept_ms\":600"), "{seen}");
    stack.stop().await;
}

/// The official TypeScript SDK clients, v1 and v2 in each of its eras, call
/// a tool through the group endpoint; legacy clients get a session id that
/// the proxy minted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_clients() {
    let servers = fakes(2).await;
    let endpoints: Vec<String> = servers.iter().map(FakeMcpHandle::url).collect();
    let stack = Stack::start(&GroupConfig::recipe(&endpoints).yaml()).await;
    let url = group_url(&stack);
    let args = r#"{"a":1,"b":2}"#;
    let (status, lines, stderr) =
        hangar_tests::ts_sdk::run("ts_client_v1.mjs", &[&url, "add", args]).await;
    assert!(status.success(), "v1: {stderr}");
    assert_eq!(
        lines.last().unwrap()["structuredContent"]["sum"],
        3,
        "v1: {lines:?}"
    );
    for era in ["legacy", "auto", "2026-07-28"] {
        let (status, lines, stderr) =
            hangar_tests::ts_sdk::run("ts_client_v2.mjs", &[&url, "add", args, era]).await;
        assert!(status.success(), "v2 {era}: {stderr}");
        assert_eq!(
            lines.last().unwrap()["structuredContent"]["sum"],
            3,
            "v2 {era}: {lines:?}"
        );
        let session = lines[0]["sessionId"].as_str();
        if era == "legacy" {
            assert!(session.is_some_and(|s| s.starts_with("hgr3.")), "{lines:?}");
        } else {
            assert_eq!(session, None, "2026-07-28 has no sessions: {lines:?}");
        }
    }
    stack.stop().await;
}

/// 2026-07-28: closing the response is the cancel. A client that gives up
/// on a long call through the proxy cancels it on the member too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_disconnect_cancels_the_member_call() {
    let backend = PyBackend::start("a", Mode::Stateful).await;
    let stack = Stack::start(&GroupConfig::recipe(&[backend.base_url()]).yaml()).await;
    let modern = |url: String, tool: &'static str, arguments: Value| {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": tool, "arguments": arguments, "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {}}}});
        reqwest::Client::new()
            .post(url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", tool)
            .body(body.to_string())
            .send()
    };
    let in_flight = || async {
        let response = modern(backend.url(), "whoami", json!({})).await.unwrap();
        let answer: Value = response.json().await.unwrap();
        answer["result"]["structuredContent"]["in_flight"]
            .as_u64()
            .unwrap()
    };
    let call = tokio::spawn(modern(group_url(&stack), "sleep", json!({"ms": 60_000})));
    eventually("the call to reach the member", || async {
        (in_flight().await == 1).then_some(())
    })
    .await;
    call.abort();
    // Patience (20 s) is far below the sleep (60 s): only a cancel passes.
    eventually("the member to drop the call", || async {
        (in_flight().await == 0).then_some(())
    })
    .await;
    stack.stop().await;
}

/// DELETE ends the session on its member; the session is then unknown there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_ends_the_session_on_its_member() {
    let servers = fakes(2).await;
    let endpoints: Vec<String> = servers.iter().map(FakeMcpHandle::url).collect();
    let stack = Stack::start(&GroupConfig::recipe(&endpoints).yaml()).await;
    let raw = Raw {
        http: reqwest::Client::new(),
        url: group_url(&stack),
    };
    let session = raw.initialize().await;
    let owner = raw.whoami(&session).await.unwrap();
    let owner_server = servers.iter().find(|s| s.name() == owner).unwrap();
    // The data plane's own probe session is there too.
    let before = owner_server.sessions();
    assert_eq!(raw.delete(&session).await.status(), 200);
    assert_eq!(owner_server.sessions(), before - 1);
    assert_eq!(raw.whoami(&session).await, Err(404));
    stack.stop().await;
}

/// A member's `http.read_timeout` holds on the group endpoint too: a member
/// that sends nothing for that long, before its answer's head or in the
/// middle of an event stream, is cut off instead of holding the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_timeout_cuts_a_quiet_member() {
    let json_member = FakeMcp::new("a")
        .stateless()
        .json_response(true)
        .start()
        .await;
    let sse_member = PyBackend::start("b", Mode::Stateful).await;
    let with_read_timeout = |endpoint: String| {
        GroupConfig::recipe(&[endpoint]).yaml().replace(
            "    health_check_interval_s:",
            "    http: {read_timeout: 0.4}\n    health_check_interval_s:",
        )
    };
    let sleep = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
        "params": {"name": "sleep", "arguments": {"ms": 4000}}});

    // Silent before the head: the client gets the error at once.
    let stack = Stack::start(&with_read_timeout(json_member.url())).await;
    let raw = Raw {
        http: reqwest::Client::new(),
        url: group_url(&stack),
    };
    let response = raw.post(None, sleep.clone()).await;
    assert_eq!(response.status(), 502);
    let answer: Value = response.json().await.unwrap();
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("read_timeout"), "{answer}");
    let add = json!({"jsonrpc": "2.0", "id": 6, "method": "tools/call",
        "params": {"name": "add", "arguments": {"a": 1, "b": 2}}});
    let response = raw.post(None, add).await;
    assert_eq!(response.status(), 200, "a quick answer is not affected");
    stack.stop().await;

    // Silent in the middle of an event stream: the stream is cut before
    // the result could arrive.
    let stack = Stack::start(&with_read_timeout(sse_member.base_url())).await;
    let raw = Raw {
        http: reqwest::Client::new(),
        url: group_url(&stack),
    };
    let session = raw.initialize().await;
    let mut response = raw.post(Some(&session), sleep).await;
    assert_eq!(response.status(), 200);
    let mut seen = String::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(!seen.contains("slept_ms"), "the stream was not cut: {seen}");
    stack.stop().await;
}
