//! Wire behaviour of `FakeMcp`, checked with a plain HTTP client against the
//! captures of the Python SDK backend (`shared/mcp-protocol.md` §1.10), plus
//! the stop/restart lifecycle the balancer tests rely on.

use std::time::Duration;

use hangar_tests::fake_mcp::{FakeMcp, FakeMcpHandle};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

const ACCEPT_BOTH: &str = "application/json, text/event-stream";
const MODERN: &str = "2026-07-28";

fn rpc(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

fn tool(id: u64, name: &str, arguments: Value) -> Value {
    let params = json!({"name": name, "arguments": arguments});
    rpc(id, "tools/call", params)
}

fn add(id: u64) -> Value {
    tool(id, "add", json!({"a": 1, "b": 2}))
}

/// POSTs `body` as JSON with `headers`, adding `Accept: ACCEPT_BOTH` unless
/// given. A new client per request means a new connection, so a stopped
/// server is seen as such rather than through a stale pooled connection.
async fn send(server: &FakeMcpHandle, headers: &[(&str, &str)], body: String) -> Response {
    let request = reqwest::Client::new().post(server.url());
    let mut request = request.header("content-type", "application/json");
    if !headers.iter().any(|(name, _)| *name == "accept") {
        request = request.header("accept", ACCEPT_BOTH);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(body).send().await.expect("send")
}

/// POSTs a legacy message, in `session` if given.
async fn post(server: &FakeMcpHandle, body: &Value, session: Option<&str>) -> Response {
    let headers: &[_] = match session {
        Some(id) => &[("mcp-session-id", id)],
        None => &[],
    };
    send(server, headers, body.to_string()).await
}

/// POSTs a 2026-07-28 request with `_meta` and consistent mirror headers.
async fn post_modern(server: &FakeMcpHandle, method: &str, mut params: Value) -> Response {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let mut headers = vec![("mcp-protocol-version", MODERN), ("mcp-method", method)];
    if let Some(name) = params["name"].as_str() {
        headers.push(("mcp-name", name));
    }
    send(server, &headers, rpc(7, method, params.clone()).to_string()).await
}

/// The JSON-RPC message of a reply, whether framed as JSON or as one SSE event.
async fn message(response: Response) -> Value {
    let sse = response.headers()["content-type"] == "text/event-stream";
    let text = response.text().await.expect("body");
    let json = if sse {
        assert!(
            text.starts_with("event: message\ndata: ") && text.ends_with("\n\n"),
            "{text:?}"
        );
        text.lines()
            .find_map(|l| l.strip_prefix("data: "))
            .expect("an SSE data line")
    } else {
        &text
    };
    serde_json::from_str(json).expect("JSON-RPC message")
}

fn session_of(response: &Response) -> Option<String> {
    let id = response.headers().get("mcp-session-id")?;
    Some(id.to_str().expect("ascii").to_owned())
}

async fn delete(server: &FakeMcpHandle, session: Option<&str>) -> StatusCode {
    let mut request = reqwest::Client::new().delete(server.url());
    if let Some(id) = session {
        request = request.header("mcp-session-id", id);
    }
    request.send().await.expect("send").status()
}

/// Polls `check` every millisecond for up to 5 s (a bounded wait, not a fixed sleep).
async fn eventually(mut check: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..5_000 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    false
}

/// A stateful server mints a session at `initialize`, answers over SSE, serves
/// tools within the session and rejects requests without (400) or with an
/// unknown or deleted (404) session, like the Python SDK.
#[tokio::test]
async fn stateful_session_is_minted_and_required() {
    let server = FakeMcp::new("a").start().await;
    let init = rpc(
        1,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}}),
    );
    let response = post(&server, &init, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let session = session_of(&response).expect("session id minted at initialize");
    let result = &message(response).await["result"];
    assert_eq!(result["protocolVersion"], "2025-06-18");
    assert_eq!(result["serverInfo"]["name"], "fake-mcp-a");
    assert_eq!(result["capabilities"], json!({"tools": {}}));
    assert_eq!(server.sessions(), 1);

    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let response = post(&server, &initialized, Some(&session)).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.text().await.expect("body"), "");

    let response = post(&server, &add(2), Some(&session)).await;
    assert_eq!(session_of(&response).as_deref(), Some(&*session));
    let reply = message(response).await;
    assert_eq!(reply["id"], 2);
    let expected = json!({"sum": 3, "served_by": "a"});
    assert_eq!(reply["result"]["structuredContent"], expected);
    assert_eq!(reply["result"]["isError"], false);
    let text = reply["result"]["content"][0]["text"]
        .as_str()
        .expect("text block");
    assert_eq!(
        serde_json::from_str::<Value>(text).expect("JSON text"),
        expected
    );
    assert_eq!(server.calls(), 1);

    let response = post(&server, &rpc(3, "ping", json!({})), None).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error = message(response).await;
    let missing = json!({"code": -32600, "message": "Bad Request: Missing session ID"});
    assert_eq!((&error["id"], &error["error"]), (&Value::Null, &missing));
    let unknown = post(&server, &rpc(4, "ping", json!({})), Some("nope")).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    assert_eq!(delete(&server, Some(&session)).await, StatusCode::OK);
    assert_eq!(server.sessions(), 0);
    let ended = post(&server, &rpc(5, "ping", json!({})), Some(&session)).await;
    assert_eq!(ended.status(), StatusCode::NOT_FOUND);
}

/// `json_response(true)` answers requests as one `application/json` object and
/// then needs only `application/json` in `Accept`.
#[tokio::test]
async fn json_response_answers_application_json() {
    let server = FakeMcp::new("c")
        .stateless()
        .json_response(true)
        .start()
        .await;
    let accept = [("accept", "application/json")];
    let response = send(&server, &accept, rpc(1, "ping", json!({})).to_string()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(
        message(response).await,
        json!({"jsonrpc": "2.0", "id": 1, "result": {}})
    );
}

/// A stateless server mints no session, serves a bare `tools/call` without
/// `initialize`, answers an unknown requested version with 2025-11-25, and
/// has no sessions to DELETE (405).
#[tokio::test]
async fn stateless_serves_without_initialize() {
    let server = FakeMcp::new("b").stateless().start().await;
    let response = post(&server, &add(1), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        message(response).await["result"]["structuredContent"]["served_by"],
        "b"
    );

    let init = rpc(2, "initialize", json!({"protocolVersion": "1999-01-01"}));
    let response = post(&server, &init, None).await;
    assert_eq!(session_of(&response), None);
    assert_eq!(
        message(response).await["result"]["protocolVersion"],
        "2025-11-25"
    );
    assert_eq!(server.sessions(), 0);
    assert_eq!(delete(&server, None).await, StatusCode::METHOD_NOT_ALLOWED);
}

/// Modern requests need no session even on a stateful server: `server/discover`
/// and `tools/call` answer JSON with `resultType` and `serverInfo` in `_meta`,
/// and the removed `ping` is 404/-32601.
#[tokio::test]
async fn modern_requests_need_no_session() {
    let server = FakeMcp::new("a").start().await;
    let response = post_modern(&server, "server/discover", json!({})).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(session_of(&response), None);
    let result = &message(response).await["result"];
    assert_eq!(result["supportedVersions"], json!([MODERN]));
    assert_eq!(result["resultType"], "complete");
    assert_eq!(
        (&result["ttlMs"], &result["cacheScope"]),
        (&json!(0), &json!("private"))
    );
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "fake-mcp-a"
    );

    let call = json!({"name": "add", "arguments": {"a": 1, "b": 2}});
    let result = &message(post_modern(&server, "tools/call", call).await).await["result"];
    assert_eq!(
        result["structuredContent"],
        json!({"sum": 3, "served_by": "a"})
    );
    assert_eq!(result["resultType"], "complete");
    assert!(result["_meta"]["io.modelcontextprotocol/serverInfo"].is_object());

    let list = &message(post_modern(&server, "tools/list", json!({})).await).await["result"];
    let names: Vec<_> = list["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|t| &t["name"])
        .collect();
    assert_eq!(names, ["add", "echo", "sleep", "fail", "whoami"]);

    let response = post_modern(&server, "ping", json!({})).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(message(response).await["error"]["code"], -32601);
    assert_eq!(server.sessions(), 0);
}

/// Modern header/body disagreements are 400 with the spec's codes: -32020 for
/// a mismatched `Mcp-Name`, -32022 (with the supported list) for an unknown version.
#[tokio::test]
async fn modern_headers_must_match_body() {
    let server = FakeMcp::new("a").start().await;
    let call = async |version: &str, name: &str| {
        let meta = json!({"io.modelcontextprotocol/protocolVersion": version});
        let params = json!({"name": "add", "arguments": {"a": 1, "b": 2}, "_meta": meta});
        let headers = [
            ("mcp-protocol-version", version),
            ("mcp-method", "tools/call"),
            ("mcp-name", name),
        ];
        send(&server, &headers, rpc(1, "tools/call", params).to_string()).await
    };
    let response = call(MODERN, "echo").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(message(response).await["error"]["code"], -32020);
    let response = call("2099-01-01", "add").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error = &message(response).await["error"];
    assert_eq!(error["code"], -32022);
    assert_eq!(
        error["data"],
        json!({"supported": [MODERN], "requested": "2099-01-01"})
    );
    assert_eq!(call(MODERN, "add").await.status(), StatusCode::OK);
}

/// Transport-level errors match the Python SDK: 406 for a narrow `Accept`,
/// -32700 for bad JSON, -32602 for a batch.
#[tokio::test]
async fn bad_requests_are_rejected_like_the_python_sdk() {
    let server = FakeMcp::new("a").stateless().start().await;
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let narrow = send(&server, &[("accept", "application/json")], ping.to_owned()).await;
    assert_eq!(narrow.status(), StatusCode::NOT_ACCEPTABLE);
    for (body, code) in [
        ("{not json".to_owned(), -32700),
        (format!("[{ping}]"), -32602),
    ] {
        let response = send(&server, &[], body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(message(response).await["error"]["code"], code);
    }
}

/// Failing and unknown tools are `isError` results, not JSON-RPC errors;
/// `echo` and `whoami` report the serving instance and its counters.
#[tokio::test]
async fn tool_errors_are_results() {
    let server = FakeMcp::new("a")
        .stateless()
        .json_response(true)
        .start()
        .await;
    let call = async |body: Value| message(post(&server, &body, None).await).await["result"].take();
    let result = call(tool(1, "fail", json!({}))).await;
    assert_eq!(result["isError"], true);
    let text = "Error executing tool fail: intentional failure (served_by=a)";
    assert_eq!(result["content"][0]["text"], text);
    let result = call(tool(2, "nosuchtool", json!({}))).await;
    assert_eq!(result["isError"], true);
    assert_eq!(result["content"][0]["text"], "Unknown tool: nosuchtool");
    let result = call(tool(3, "echo", json!({"text": "hi"}))).await;
    assert_eq!(
        result["structuredContent"],
        json!({"text": "hi", "served_by": "a"})
    );
    let who = call(tool(4, "whoami", json!({}))).await["structuredContent"].take();
    assert_eq!(
        (&who["served_by"], &who["calls"], &who["in_flight"]),
        (&json!("a"), &json!(4), &json!(0))
    );
    assert_eq!(server.calls(), 4);
}

/// After `stop` the port refuses connections; `restart` serves again on the
/// same port with no sessions, so an old session id is unknown (404).
#[tokio::test]
async fn stop_refuses_connections_and_restart_reuses_port() {
    let mut server = FakeMcp::new("a").start().await;
    let addr = server.addr();
    let init = rpc(1, "initialize", json!({"protocolVersion": "2025-11-25"}));
    let session = session_of(&post(&server, &init, None).await).expect("session");

    server.stop().await;
    assert!(!server.is_running());
    let refused = tokio::net::TcpStream::connect(addr)
        .await
        .expect_err("connect after stop");
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    assert_eq!(server.sessions(), 0);

    server.restart().await.expect("restart on the same port");
    assert_eq!(server.addr(), addr);
    assert_eq!(
        post(&server, &add(2), Some(&session)).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(post(&server, &init, None).await.status(), StatusCode::OK);

    server.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// Stopping does not wait for long calls: an in-flight `sleep` loses its
/// connection at once, as if the server process died.
#[tokio::test]
async fn stop_cuts_in_flight_calls() {
    let mut server = FakeMcp::new("a").stateless().start().await;
    let request = reqwest::Client::new()
        .post(server.url())
        .header("accept", ACCEPT_BOTH)
        .header("content-type", "application/json")
        .body(tool(1, "sleep", json!({"ms": 60_000})).to_string())
        .send();
    let call = tokio::spawn(request);
    assert!(
        eventually(async || server.in_flight() == 1).await,
        "the call never arrived"
    );

    let stop = tokio::time::timeout(Duration::from_secs(5), server.stop());
    stop.await.expect("stop is prompt");
    let outcome = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .expect("call ends");
    assert!(
        outcome.expect("join").is_err(),
        "the in-flight call must fail"
    );
    assert_eq!(server.in_flight(), 0);
}

/// Dropping the handle stops the server too.
#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let server = FakeMcp::new("a").stateless().start().await;
    let addr = server.addr();
    assert_eq!(post(&server, &add(1), None).await.status(), StatusCode::OK);
    drop(server);
    // The listener closes once the serve task observes the cancellation.
    let closed = eventually(async || tokio::net::TcpStream::connect(addr).await.is_err()).await;
    assert!(closed, "port still open after drop");
}
