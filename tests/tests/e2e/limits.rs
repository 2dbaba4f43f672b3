//! The data plane's HTTP limits as a client meets them: a cap on requests
//! in progress answered with 503 (never a queue), deadlines on request
//! heads, bodies and idle connections, and bounds on head and body size.

use std::time::Duration;

use hangar_data_plane::Limits;
use hangar_tests::configs::{GroupConfig, RECIPE_GROUP};
use hangar_tests::eventually::eventually;
use hangar_tests::fake_mcp::FakeMcp;
use hangar_tests::raw::modern_call;
use hangar_tests::stack::Stack;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest a raw exchange may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(10);

/// Writes `request` on a fresh connection and reads until the server closes
/// it; fails the test if that takes longer than [`PATIENCE`].
async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
        .await
        .expect("the data plane closes the connection")
        .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

async fn stack_with(limits: Limits) -> (Stack, hangar_tests::fake_mcp::FakeMcpHandle) {
    let a = FakeMcp::new("a").stateless().start().await;
    let stack = Stack::start_with_limits(&GroupConfig::recipe(&[a.url()]).yaml(), limits).await;
    (stack, a)
}

/// Beyond `max_concurrent_requests`, a request is refused at once with 503,
/// `Retry-After` and a JSON-RPC error carrying its id, while the calls in
/// progress carry on; once they are gone, calls are served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_cap_get_503_at_once() {
    let limits = Limits {
        max_concurrent_requests: 2,
        ..Limits::default()
    };
    let (stack, a) = stack_with(limits).await;
    let url = stack.group_url(RECIPE_GROUP);
    let http = reqwest::Client::new();
    let slow: Vec<_> = (0..2)
        .map(|i| {
            let call = modern_call(&http, &url, i, "sleep", json!({"ms": 60_000}));
            tokio::spawn(call.send())
        })
        .collect();
    eventually("both slow calls at the member", || async {
        (a.in_flight() == 2).then_some(())
    })
    .await;

    let started = tokio::time::Instant::now();
    let refused = modern_call(&http, &url, 42, "add", json!({"a": 1, "b": 2}))
        .send()
        .await
        .expect("an answer, not a dropped connection");
    assert!(started.elapsed() < Duration::from_secs(5), "not queued");
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let error: Value = refused.json().await.expect("a JSON-RPC body");
    assert_eq!(error["jsonrpc"], "2.0");
    assert_eq!(error["id"], 42, "{error}");
    assert_eq!(error["error"]["code"], -32000);

    for call in &slow {
        call.abort();
    }
    let answer: Value = eventually("a call served again", || async {
        let response = modern_call(&http, &url, 7, "add", json!({"a": 1, "b": 2}))
            .send()
            .await
            .ok()?;
        if response.status() != 200 {
            return None;
        }
        response.json().await.ok()
    })
    .await;
    assert_eq!(answer["result"]["structuredContent"]["sum"], 3);
    stack.stop().await;
}

/// An idle keep-alive connection is closed after the head timeout, and so
/// is one that never finishes its request head (slowloris).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_head_connections_are_closed() {
    let limits = Limits {
        request_head_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let (stack, _a) = stack_with(limits).await;
    let addr = stack.dp.addr();
    let keep_alive = format!(
        "DELETE /groups/{RECIPE_GROUP}/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
    );
    let answer = exchange(addr, keep_alive.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let partial = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    let answer = exchange(addr, partial).await;
    assert!(!answer.contains(" 200 "), "{answer}");
    stack.stop().await;
}

/// A body that stops arriving gets 408 with a JSON-RPC error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_body_gets_408() {
    let limits = Limits {
        request_body_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let (stack, _a) = stack_with(limits).await;
    for path in ["/mcp".to_owned(), format!("/groups/{RECIPE_GROUP}/mcp")] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{{\"jsonrpc\""
        );
        let answer = exchange(stack.dp.addr(), head.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(answer.contains("\"code\":-32600"), "{path}: {answer}");
    }
    stack.stop().await;
}

/// Heads over the size or count limit get 431; bodies over the size limit,
/// sent or (on a plain POST) only declared, get 413 with a JSON-RPC error,
/// on both endpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_and_bodies_are_refused() {
    let limits = Limits {
        max_request_bytes: 1024,
        ..Limits::default()
    };
    let (stack, _a) = stack_with(limits.clone()).await;
    let addr = stack.dp.addr();
    let long = "x".repeat(limits.max_header_bytes + 1);
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: {long}\r\nConnection: close\r\n\r\n"
    );
    let answer = exchange(addr, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    let many: String = (0..=limits.max_headers)
        .map(|i| format!("X-H{i}: v\r\n"))
        .collect();
    let request =
        format!("POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n{many}Connection: close\r\n\r\n");
    let answer = exchange(addr, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    let http = reqwest::Client::new();
    let big =
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "y".repeat(2048)}});
    for url in [stack.dp.mcp_url(), stack.group_url(RECIPE_GROUP)] {
        let response = http
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(big.to_string())
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.status(), 413, "{url}");
        let error: Value = response.json().await.expect("a JSON-RPC body");
        assert_eq!(error["error"]["code"], -32600, "{url}");
    }
    // A plain POST whose declared length is over the limit is refused
    // before its body comes (the body deadline, 30 s, is longer than the
    // test's patience), and its connection then closes.
    for path in ["/mcp".to_owned(), format!("/groups/{RECIPE_GROUP}/mcp")] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n"
        );
        let answer = exchange(addr, head.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{path}: {answer}");
        assert!(answer.contains("connection: close"), "{path}: {answer}");
        assert!(answer.contains("\"code\":-32600"), "{path}: {answer}");
    }
    stack.stop().await;
}

/// A name given with `--allowed-hosts` is accepted as `Host` (in any case)
/// on both endpoints; any other name is still refused (DNS rebinding).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_hosts_extend_the_names_clients_may_use() {
    let limits = Limits {
        allowed_hosts: vec!["mcp.internal.example".to_owned()],
        ..Limits::default()
    };
    let (stack, _a) = stack_with(limits).await;
    let http = reqwest::Client::new();
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}});
    let port = stack.dp.addr().port();
    for url in [stack.group_url(RECIPE_GROUP), stack.dp.mcp_url()] {
        let status_with = |host: String| {
            http.post(&url)
                .header("host", host)
                .header("accept", "application/json, text/event-stream")
                .json(&initialize)
                .send()
        };
        let named = status_with(format!("MCP.Internal.Example:{port}"))
            .await
            .unwrap();
        assert_eq!(named.status(), 200, "{url}");
        let other = status_with(format!("evil.example:{port}")).await.unwrap();
        assert_eq!(other.status(), 403, "{url}");
    }
    stack.stop().await;
}
