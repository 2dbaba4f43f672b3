//! Malformed input at both MCP endpoints of a real data plane (real HTTP/1.1
//! and HTTP/2 on loopback, a fake member behind it), in bodies and in
//! headers (`Host`, `Origin`, content negotiation): every refusal is a
//! JSON-RPC error, never a 5xx, a hang or a dropped connection, and good
//! calls keep working around it.

use std::time::Duration;

use hangar_tests::configs::{GroupConfig, RECIPE_GROUP};
use hangar_tests::fake_mcp::FakeMcp;
use hangar_tests::stack::Stack;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::Method;
use serde_json::{Value, json};

/// Longest any single answer may take; a hang fails the case.
const PATIENCE: Duration = Duration::from_secs(10);

/// One request a client should never send.
#[derive(Debug, Clone)]
struct Malformed {
    /// `/groups/{g}/mcp` when true, `/mcp` otherwise.
    group: bool,
    method: Method,
    content_type: Option<String>,
    accept: Option<String>,
    protocol_version: Option<String>,
    session: Option<String>,
    /// A `Host` header in place of the client's (HTTP/1.1 only).
    host: Option<String>,
    origin: Option<String>,
    /// Sent over HTTP/2 (prior knowledge) rather than HTTP/1.1.
    http2: bool,
    body: Vec<u8>,
}

/// The data plane under test and keep-alive clients for it.
struct Target {
    http: reqwest::Client,
    http2: reqwest::Client,
    mcp: String,
    group: String,
}

impl Target {
    fn new(stack: &Stack) -> Self {
        Self {
            http: reqwest::Client::new(),
            http2: reqwest::Client::builder()
                .http2_prior_knowledge()
                .build()
                .expect("an HTTP/2 client"),
            mcp: stack.dp.mcp_url(),
            group: stack.group_url(RECIPE_GROUP),
        }
    }

    /// Sends `bad` and checks the answer (see [`check_answer`]); returns
    /// its status.
    async fn send(&self, bad: &Malformed) -> Result<u16, String> {
        let url = if bad.group { &self.group } else { &self.mcp };
        let client = if bad.http2 { &self.http2 } else { &self.http };
        let mut request = client.request(bad.method.clone(), url);
        let host = bad.host.clone().filter(|_| !bad.http2);
        let headers = [
            ("content-type", &bad.content_type),
            ("accept", &bad.accept),
            ("mcp-protocol-version", &bad.protocol_version),
            ("mcp-session-id", &bad.session),
            ("host", &host),
            ("origin", &bad.origin),
        ];
        for (name, value) in headers {
            if let Some(value) = value {
                request = request.header(name, value);
            }
        }
        let sent = request.body(bad.body.clone()).send();
        let response = tokio::time::timeout(PATIENCE, sent)
            .await
            .map_err(|_| "no answer in time".to_owned())?
            .map_err(|e| format!("no answer: {e:?}"))?;
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = tokio::time::timeout(PATIENCE, response.bytes())
            .await
            .map_err(|_| format!("{status}: body did not end in time"))?
            .map_err(|e| format!("{status}: body broke off: {e:?}"))?;
        check_answer(status, &content_type, &body).map(|()| status.as_u16())
    }

    /// `initialize` and a `tools/call` through the group, in a new session;
    /// fails unless the call is answered correctly.
    async fn good_call(&self, n: i64) -> Result<(), String> {
        let session = open_session(self).await?;
        self.session_call(&session, n).await
    }

    /// `tools/call add` in `session`; fails unless the sum is right.
    async fn session_call(&self, session: &str, n: i64) -> Result<(), String> {
        let call = json!({"jsonrpc": "2.0", "id": n, "method": "tools/call",
            "params": {"name": "add", "arguments": {"a": n, "b": 1}}});
        let response = self.post_json(Some(session), &call).await?;
        if response.status() != 200 {
            return Err(format!("good call answered {}", response.status()));
        }
        let text = response.text().await.map_err(|e| e.to_string())?;
        let data = text
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .unwrap_or(&text);
        let answer: Value = serde_json::from_str(data).map_err(|e| format!("{e}: {text}"))?;
        if answer["result"]["structuredContent"]["sum"] != n + 1 {
            return Err(format!("wrong answer to a good call: {answer}"));
        }
        Ok(())
    }

    async fn post_json(
        &self,
        session: Option<&str>,
        body: &Value,
    ) -> Result<reqwest::Response, String> {
        let mut request = self
            .http
            .post(&self.group)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        tokio::time::timeout(PATIENCE, request.send())
            .await
            .map_err(|_| "good request: no answer in time".to_owned())?
            .map_err(|e| format!("good request failed: {e:?}"))
    }
}

/// An answer to a malformed request is fine when it is not a server error,
/// and an error comes with a body: a JSON-RPC error object if it is JSON.
fn check_answer(
    status: reqwest::StatusCode,
    content_type: &str,
    body: &[u8],
) -> Result<(), String> {
    let text = String::from_utf8_lossy(body);
    if status.is_server_error() {
        return Err(format!("{status}: {text}"));
    }
    if !status.is_client_error() {
        return Ok(());
    }
    if body.is_empty() {
        return Err(format!("{status} without a body"));
    }
    if !content_type.starts_with("application/json") {
        return Err(format!(
            "{status} with {content_type:?}, not JSON-RPC: {text}"
        ));
    }
    let error: Value =
        serde_json::from_slice(body).map_err(|e| format!("{status}: {e}: {text}"))?;
    let well_formed = error["jsonrpc"] == "2.0"
        && error.get("id").is_some()
        && error["error"]["code"].is_i64()
        && error["error"]["message"].is_string();
    if !well_formed {
        return Err(format!("{status}: not a JSON-RPC error: {text}"));
    }
    Ok(())
}

async fn stack() -> (Stack, hangar_tests::fake_mcp::FakeMcpHandle) {
    let a = FakeMcp::new("a").start().await;
    let stack = Stack::start(&GroupConfig::recipe(&[a.url()]).yaml()).await;
    (stack, a)
}

// === generators ===

/// JSON values of every type, including the awkward ones.
fn odd_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("1e999999".to_owned()),
        Just("-0".to_owned()),
        Just("123456789012345678901234567890123456789".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just("\"2.0\"".to_owned()),
        Just("\"tools/call\"".to_owned()),
        Just("\"initialize\"".to_owned()),
        Just("\"\\ud800\"".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|x| format!("{x:?}")),
        "\\PC{0,12}".prop_map(|s| Value::String(s).to_string()),
    ]
}

/// A JSON-RPC-looking object whose members have random types.
fn odd_message() -> impl Strategy<Value = Vec<u8>> {
    let field = |name: &'static str| {
        proptest::option::of(odd_value()).prop_map(move |v| v.map(|v| format!("\"{name}\":{v}")))
    };
    (
        field("jsonrpc"),
        field("id"),
        field("method"),
        field("params"),
        field("result"),
    )
        .prop_map(|(a, b, c, d, e)| {
            let fields: Vec<String> = [a, b, c, d, e].into_iter().flatten().collect();
            format!("{{{}}}", fields.join(",")).into_bytes()
        })
}

/// Bodies: random bytes, deep nesting, batches, odd messages, invalid UTF-8.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        "\\PC{0,64}".prop_map(String::into_bytes),
        (1usize..100_000).prop_map(|n| "[".repeat(n).into_bytes()),
        (1usize..20_000).prop_map(|n| "{\"a\":".repeat(n).into_bytes()),
        (1usize..120).prop_map(|n| {
            let nested = format!("{}1{}", "[".repeat(n), "]".repeat(n));
            format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"add","arguments":{{"a":{nested},"b":1}}}}}}"#).into_bytes()
        }),
        odd_message(),
        proptest::collection::vec(odd_message(), 0..4).prop_map(|items| {
            let items: Vec<String> = items.into_iter().map(|i| String::from_utf8_lossy(&i).into_owned()).collect();
            format!("[{}]", items.join(",")).into_bytes()
        }),
        odd_message().prop_map(|mut m| {
            m.splice(1..1, *b"\"x\":\"\xff\xfe\",");
            m
        }),
    ]
}

fn header_value(common: &'static [&'static str]) -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        3 => proptest::sample::select(common).prop_map(|v| Some(v.to_owned())),
        1 => Just(None),
        1 => "[ -~]{0,40}".prop_map(Some),
    ]
}

fn malformed() -> impl Strategy<Value = Malformed> {
    let method = prop_oneof![
        6 => Just(Method::POST),
        1 => Just(Method::GET),
        1 => Just(Method::DELETE),
        1 => Just(Method::PUT),
    ];
    (
        any::<bool>(),
        method,
        header_value(&[
            "application/json",
            "text/plain",
            "application/json; charset=utf-8",
        ]),
        header_value(&[
            "application/json, text/event-stream",
            "text/event-stream",
            "*/*",
        ]),
        header_value(&["2025-11-25", "2024-11-05", "2026-07-28", "1999-01-01"]),
        proptest::option::weighted(0.2, "[!-~]{1,64}"),
        (
            proptest::option::weighted(0.3, host()),
            proptest::option::weighted(0.3, origin()),
            any::<bool>(),
        ),
        body(),
    )
        .prop_map(
            |(
                group,
                method,
                content_type,
                accept,
                protocol_version,
                session,
                (host, origin, http2),
                body,
            )| Malformed {
                group,
                method,
                content_type,
                accept,
                protocol_version,
                session,
                host,
                origin,
                http2,
                body,
            },
        )
}

/// `Host` values: the loopback names in odd shapes, and lookalikes.
fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(
            &[
                "127.0.0.1:9@evil.example",
                "[::1]evil.example",
                "localhost:evil",
                "localhost:",
                "[::1",
                "127.0.0.1.evil.example",
                "LOCALHOST",
                "[::1]:1",
            ][..]
        )
        .prop_map(str::to_owned),
        "[ -~]{0,40}",
    ]
}

/// `Origin` values: the data plane's own, lookalikes, opaque ones.
fn origin() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(
            &[
                "null",
                "http://localhost",
                "http://127.0.0.1:1@evil.example",
                "http://[::1]evil.example",
                "file://",
                "http://evil.example",
            ][..]
        )
        .prop_map(str::to_owned),
        "[ -~]{0,40}",
    ]
}

// === tests ===

/// 256 generated malformed requests against both endpoints: each answer is
/// well formed, and a good `initialize` + `tools/call` through the group
/// succeeds right after each one.
#[test]
fn generated_malformed_requests_get_errors_and_leave_the_data_plane_serving() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (stack, backend) = runtime.block_on(stack());
    let target = Target::new(&stack);
    let config = Config {
        failure_persistence: None,
        ..Config::with_cases(256)
    };
    let started = tokio::time::Instant::now();
    let statuses = parking_lot::Mutex::new(std::collections::BTreeMap::<u16, usize>::new());
    let outcome = TestRunner::new(config).run(&malformed(), |bad| {
        runtime.block_on(async {
            let status = target.send(&bad).await.map_err(TestCaseError::fail)?;
            *statuses.lock().entry(status).or_default() += 1;
            target.good_call(41).await.map_err(TestCaseError::fail)
        })
    });
    println!(
        "256 generated cases in {:?}, answers by status: {:?}",
        started.elapsed(),
        statuses.lock()
    );
    runtime.block_on(stack.stop());
    drop(backend);
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

/// Fixed malformed requests, one of each kind the generator makes.
fn corpus() -> Vec<Malformed> {
    let post = |group: bool, content_type: Option<&str>, body: &[u8]| Malformed {
        group,
        method: Method::POST,
        content_type: content_type.map(str::to_owned),
        accept: Some("application/json, text/event-stream".into()),
        protocol_version: None,
        session: None,
        host: None,
        origin: None,
        http2: false,
        body: body.to_vec(),
    };
    let json = Some("application/json");
    let deep = "[".repeat(100_000);
    let mut corpus = Vec::new();
    for group in [false, true] {
        corpus.extend([
            post(group, json, b"{bad json"),
            post(group, json, deep.as_bytes()),
            post(group, json, b"[]"),
            post(
                group,
                json,
                br#"[{"jsonrpc":"2.0","id":1,"method":"ping"},7]"#,
            ),
            post(group, json, br#"{"jsonrpc":2,"id":1,"method":"ping"}"#),
            post(
                group,
                json,
                br#"{"jsonrpc":"2.0","id":{"x":[1]},"method":7}"#,
            ),
            post(
                group,
                json,
                br#"{"jsonrpc":"2.0","id":1e999,"method":"tools/call","params":"x"}"#,
            ),
            post(
                group,
                json,
                b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}",
            ),
            post(
                group,
                Some("text/plain"),
                br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
            ),
            post(group, None, b""),
        ]);
    }
    corpus
}

/// 10,000 malformed requests interleaved with 1,000 good calls through the
/// group, from 16 concurrent keep-alive clients: every malformed request
/// gets a well-formed error and every good call its right answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_malformed_requests_do_not_disturb_good_calls() {
    const WORKERS: usize = 16;
    const MALFORMED: usize = 10_000;
    const GOOD_EVERY: usize = 10;
    let (stack, _backend) = stack().await;
    let target = std::sync::Arc::new(Target::new(&stack));
    let corpus = std::sync::Arc::new(corpus());
    let started = tokio::time::Instant::now();
    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let (target, corpus) = (target.clone(), corpus.clone());
            tokio::spawn(async move {
                let mut good = 0;
                let mut session = None;
                for i in (worker..MALFORMED).step_by(WORKERS) {
                    let bad = &corpus[i % corpus.len()];
                    target
                        .send(bad)
                        .await
                        .map_err(|e| format!("{bad:?}: {e}"))?;
                    if i % GOOD_EVERY == 0 {
                        let n = i64::try_from(i).unwrap();
                        if session.is_none() {
                            session = Some(open_session(&target).await?);
                        }
                        let session = session.as_deref().expect("opened above");
                        target.session_call(session, n).await?;
                        good += 1;
                    }
                }
                Ok::<usize, String>(good)
            })
        })
        .collect();
    let mut good = 0;
    for worker in workers {
        good += worker
            .await
            .expect("worker")
            .unwrap_or_else(|e| panic!("{e}"));
    }
    println!(
        "{MALFORMED} malformed requests and {good} good calls in {:?}",
        started.elapsed()
    );
    assert_eq!(good, MALFORMED / GOOD_EVERY);
    stack.stop().await;
}

/// A session of the group for repeated good calls.
async fn open_session(target: &Target) -> Result<String, String> {
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "good", "version": "1"}}});
    let response = target.post_json(None, &init).await?;
    let session = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .ok_or("initialize without a session")?
        .to_owned();
    let _ = response.bytes().await;
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let response = target.post_json(Some(&session), &note).await?;
    if response.status() != 202 {
        return Err(format!("initialized answered {}", response.status()));
    }
    Ok(session)
}
