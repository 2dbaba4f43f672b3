//! The front door under connections that hold resources for nothing:
//! sockets that never send a byte, idle HTTP/2 connections, and idle event
//! streams beside calls.

use std::time::Duration;

use hangar_data_plane::Limits;
use hangar_tests::everything::Everything;
use hangar_tests::raw::Raw;
use hangar_tests::stack::Stack;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest the test waits for the data plane to close a connection; far
/// above the head timeout set, so it only bounds a hang.
const PATIENCE: Duration = Duration::from_secs(20);

/// The HTTP/2 connection preface and an empty SETTINGS frame.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// Sends `first` (maybe nothing) and then nothing more; completes when the
/// data plane closes the connection.
async fn closed_by_the_server(addr: std::net::SocketAddr, first: &[u8]) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(first).await.expect("write");
    let mut sink = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut sink))
        .await
        .expect("the data plane closes the idle connection")
        .expect("read");
}

fn one_server(url: &str) -> String {
    format!(
        "mcp_servers:\n  e:\n    mode: remote\n    endpoint: \"{url}\"\n  g:\n    mode: group\n    members: [{{id: e}}]\n"
    )
}

/// The head timeout counts from accept: a socket that never sends a byte
/// (hyper has not even seen its HTTP version) is closed, and so is an
/// HTTP/2 connection that sent its preface and no request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_idle_http2_connections_are_closed() {
    let everything = Everything::start().await;
    let limits = Limits {
        request_head_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let stack = Stack::start_with_limits(&one_server(&everything.url()), limits).await;
    let addr = stack.dp.addr();
    closed_by_the_server(addr, b"").await;
    closed_by_the_server(addr, H2_PREFACE).await;
    stack.stop().await;
}

/// Event streams have their own cap: sessions holding more idle GET streams
/// than the calls' cap leave every call its permit, and a stream beyond the
/// streams' cap is refused with 503 and a JSON-RPC error naming streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_event_streams_do_not_lock_calls_out() {
    let everything = Everything::start().await;
    let limits = Limits {
        max_concurrent_requests: 2,
        max_event_streams: 4,
        ..Limits::default()
    };
    let stack = Stack::start_with_limits(&one_server(&everything.url()), limits).await;
    let raw = Raw {
        http: reqwest::Client::new(),
        url: stack.group_url("g"),
    };
    let mut streams = Vec::new();
    for _ in 0..4 {
        let session = raw.initialize().await;
        let stream = raw.event_stream(&session).await;
        assert_eq!(stream.status(), 200, "stream {}", streams.len());
        streams.push(stream);
    }
    let session = raw.initialize().await;
    assert!(raw.get_sum(&session).await, "calls keep their permits");

    let refused = raw.event_stream(&session).await;
    assert_eq!(refused.status(), 503);
    let error: Value = refused.json().await.expect("a JSON-RPC error");
    let message = error["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("4 event streams"), "{error}");
    drop(streams);
    stack.stop().await;
}

/// Writes one raw HTTP/1.1 request and returns the whole answer.
async fn answer_of(addr: std::net::SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
        .await
        .expect("an answer")
        .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

/// Host is parsed as RFC 9110/9112 say, over HTTP/1.1 and HTTP/2 alike:
/// two Hosts, none, or a malformed one is 400; a target or `:authority`
/// naming another host is 403, whatever the Host header says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_are_checked_strictly_on_http1_and_http2() {
    let everything = Everything::start().await;
    let stack = Stack::start(&one_server(&everything.url())).await;
    let addr = stack.dp.addr();
    let port = addr.port();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let request = |target: &str, hosts: &[String]| {
        let hosts: String = hosts.iter().map(|h| format!("Host: {h}\r\n")).collect();
        format!(
            "POST {target} HTTP/1.1\r\n{hosts}Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let own = format!("127.0.0.1:{port}");
    let table = [
        (
            "/mcp",
            vec![format!("127.0.0.1:{port}@evil.example")],
            "400",
        ),
        ("/mcp", vec!["[::1]evil.example".to_owned()], "400"),
        ("/mcp", vec!["localhost:evil".to_owned()], "400"),
        ("/mcp", vec![own.clone(), own.clone()], "400"),
        ("/mcp", vec![], "400"),
        ("http://evil.example/mcp", vec![own.clone()], "403"),
        ("/groups/g/mcp", vec!["evil.example".to_owned()], "403"),
    ];
    for (target, hosts, status) in table {
        let answer = answer_of(addr, &request(target, &hosts)).await;
        let line = answer.lines().next().unwrap_or_default();
        assert!(
            answer.contains(r#""id":1"#),
            "the refusal carries the id: {answer}"
        );
        assert!(
            line.contains(&format!(" {status} ")),
            "{target} Host {hosts:?}: {line}"
        );
    }

    let h2 = |host: &str| {
        reqwest::Client::builder()
            .http2_prior_knowledge()
            .resolve(host, addr)
            .build()
            .unwrap()
    };
    for (host, refused) in [("evil.example", true), ("localhost", false)] {
        let answer = h2(host)
            .post(format!("http://{host}:{port}/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body)
            .send()
            .await
            .expect("an HTTP/2 answer");
        assert_eq!(answer.version(), reqwest::Version::HTTP_2);
        assert_eq!(
            answer.status() == 403,
            refused,
            "HTTP/2 :authority {host}: {}",
            answer.status()
        );
    }
    stack.stop().await;
}

/// With the default caps, 1,100 SDK-style sessions each holding its idle
/// event stream (more than the 1,024 requests' cap) leave calls served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eleven_hundred_idle_event_streams_leave_calls_served() {
    const STREAMS: usize = 1100;
    // Each stream holds three descriptors here (client, data plane, and its
    // connection to the member).
    let limit = hangar_runtime::raise_open_files_limit().unwrap_or(0);
    assert!(
        limit >= 4 * STREAMS as u64,
        "this test needs an open files limit of {} (hard limit {limit})",
        4 * STREAMS
    );
    let everything = Everything::start().await;
    let stack = Stack::start(&one_server(&everything.url())).await;
    let raw = Raw {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap(),
        url: stack.group_url("g"),
    };
    let mut streams = Vec::with_capacity(STREAMS);
    for chunk in 0..STREAMS / 50 {
        let opened = futures::future::join_all((0..50).map(|_| async {
            let session = raw.initialize().await;
            raw.event_stream(&session).await
        }))
        .await;
        for stream in opened {
            assert_eq!(stream.status(), 200, "stream in chunk {chunk}");
            streams.push(stream);
        }
    }
    let session = raw.initialize().await;
    assert!(
        raw.get_sum(&session).await,
        "a call beside {STREAMS} idle streams"
    );
    drop(streams);
    stack.stop().await;
}
