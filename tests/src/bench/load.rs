//! Closed-loop MCP load: N workers, each on its own keep-alive connection,
//! each sending one `tools/call` after the other for a fixed duration.
//!
//! A worker starts with `initialize` (+ `notifications/initialized`) and
//! uses the session id if the endpoint hands one out, so the same client
//! drives sessionful and stateless endpoints alike. Latency is recorded per
//! call in an HDR histogram (microseconds).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::Barrier;
use tokio::time::Instant;

/// Protocol version the load speaks (sessions where the server has them).
const VERSION: &str = "2025-11-25";

/// One endpoint to load and the call to make there.
#[derive(Debug, Clone)]
pub struct Target {
    /// Name in the report.
    pub name: String,
    /// MCP endpoint URL.
    pub url: String,
    /// The `tools/call` params: `{"name", "arguments"}`.
    pub call: Value,
    /// A credential header sent with every request, if any: `("x-api-key",
    /// key)` or `("authorization", "Bearer …")`.
    pub credential: Option<(&'static str, String)>,
    /// More endpoints that take the same call: workers are spread over
    /// `url` and these in turn (a client balancing by itself).
    pub more_urls: Vec<String>,
    /// With `more_urls`: every worker sends each call to the next endpoint
    /// in turn (a client balancing each call round robin), not all of its
    /// calls to one.
    pub each_call_to_the_next: bool,
}

impl Target {
    /// A target that calls `tool` with `arguments` directly.
    pub fn tool(name: &str, url: &str, tool: &str, arguments: Value) -> Self {
        Self {
            name: name.to_owned(),
            url: url.to_owned(),
            call: json!({"name": tool, "arguments": arguments}),
            credential: None,
            more_urls: Vec::new(),
            each_call_to_the_next: false,
        }
    }

    /// The same call, its workers spread over `url` and `more`.
    pub fn spread_over(mut self, more: &[String]) -> Self {
        self.more_urls = more.to_vec();
        self
    }

    /// The same call, each worker's calls going to `url` and `more` in turn.
    pub fn rotating_over(mut self, more: &[String]) -> Self {
        self.more_urls = more.to_vec();
        self.each_call_to_the_next = true;
        self
    }

    /// The endpoint of worker `n`.
    fn url_of(&self, n: usize) -> &str {
        match n % (1 + self.more_urls.len()) {
            0 => &self.url,
            i => &self.more_urls[i - 1],
        }
    }

    /// A target that calls `tool` through `hangar_call` on `server`.
    pub fn hangar_call(name: &str, url: &str, server: &str, tool: &str, arguments: Value) -> Self {
        let calls =
            json!({"calls": [{"mcp_server": server, "tool": tool, "arguments": arguments}]});
        Self {
            name: name.to_owned(),
            url: url.to_owned(),
            call: json!({"name": "hangar_call", "arguments": calls}),
            credential: None,
            more_urls: Vec::new(),
            each_call_to_the_next: false,
        }
    }
}

/// What one load run measured.
#[derive(Debug)]
pub struct LoadResult {
    /// Calls answered with a JSON-RPC result.
    pub ok: u64,
    /// Calls that failed (transport, HTTP status, JSON-RPC error).
    pub errors: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Latency of answered calls, in microseconds.
    pub latency: Histogram<u64>,
}

impl LoadResult {
    /// Nothing measured yet, to add runs to.
    pub fn empty() -> Self {
        Self {
            ok: 0,
            errors: 0,
            elapsed: Duration::ZERO,
            latency: histogram(),
        }
    }

    /// Adds `other`, a run of the same load, to this one.
    pub fn add(&mut self, other: &LoadResult) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        self.latency.add(&other.latency).expect("same bounds");
    }

    /// Answered calls per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// A latency quantile in milliseconds.
    pub fn ms(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }
}

/// Runs `concurrency` workers against `target` for `duration` (each makes
/// at least one call), timed from when all have opened their sessions.
pub async fn run(target: &Target, concurrency: usize, duration: Duration) -> LoadResult {
    Prepared::new(target, concurrency).await.run(duration).await
}

/// Workers that have opened their sessions and wait for [`Prepared::run`]:
/// the handshakes are not the load, and a run in many short turns would
/// count them many times.
#[derive(Debug)]
pub struct Prepared {
    /// Each worker's calls, its `elapsed` left zero.
    workers: Vec<tokio::task::JoinHandle<LoadResult>>,
    go: Arc<Barrier>,
    duration: tokio::sync::watch::Sender<Duration>,
}

impl Prepared {
    /// Starts `concurrency` workers against `target` and waits until each
    /// has opened its sessions (or failed to).
    pub async fn new(target: &Target, concurrency: usize) -> Self {
        let (ready, go) = (
            Arc::new(Barrier::new(concurrency + 1)),
            Arc::new(Barrier::new(concurrency + 1)),
        );
        let (duration, duration_rx) = tokio::sync::watch::channel(Duration::ZERO);
        let workers = (0..concurrency)
            .map(|n| {
                let url = target.url_of(n).to_owned();
                let start = Start {
                    ready: ready.clone(),
                    go: go.clone(),
                    duration: duration_rx.clone(),
                };
                tokio::spawn(worker(target.clone(), url, start))
            })
            .collect();
        ready.wait().await;
        Self {
            workers,
            go,
            duration,
        }
    }

    /// Lets the workers call for `duration` and adds up what they measured.
    pub async fn run(self, duration: Duration) -> LoadResult {
        self.duration.send_replace(duration);
        self.go.wait().await;
        let started = Instant::now();
        let mut total = LoadResult::empty();
        for worker in self.workers {
            total.add(&worker.await.expect("worker"));
        }
        total.elapsed = started.elapsed();
        total
    }
}

/// How a worker learns when to start and for how long to call.
struct Start {
    /// Waited on once its sessions are open.
    ready: Arc<Barrier>,
    /// Waited on before the first call.
    go: Arc<Barrier>,
    /// Set before `go` opens.
    duration: tokio::sync::watch::Receiver<Duration>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("static bounds")
}

/// One worker on its own connection, calling once `start` says so.
async fn worker(target: Target, url: String, start: Start) -> LoadResult {
    // One connection per worker, kept alive, like one busy client.
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some((name, value)) = &target.credential
        && let Ok(value) = value.parse()
    {
        headers.insert(*name, value);
    }
    let http = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(1)
        .default_headers(headers)
        .build()
        .expect("client");
    let mut measured = LoadResult::empty();
    // One session per endpoint the worker calls, in the order it calls them.
    let urls: Vec<String> = if target.each_call_to_the_next {
        let all = std::iter::once(&target.url).chain(&target.more_urls);
        let from = all.clone().position(|u| *u == url).unwrap_or(0);
        all.cycle()
            .skip(from)
            .take(1 + target.more_urls.len())
            .cloned()
            .collect()
    } else {
        vec![url]
    };
    let mut sessions = Vec::with_capacity(urls.len());
    for url in &urls {
        match initialize(&http, url).await {
            Ok(session) => sessions.push(session),
            Err(_) => break,
        }
    }
    // A worker whose handshake failed still counts in, or none would start.
    start.ready.wait().await;
    start.go.wait().await;
    if sessions.len() < urls.len() {
        measured.errors = 1;
        return measured;
    }
    let deadline = Instant::now() + *start.duration.borrow();
    let body = Bytes::from(
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": target.call})
            .to_string(),
    );
    // At least one call, however short the run.
    for turn in (0..urls.len()).cycle() {
        let started = Instant::now();
        let (url, session) = (&urls[turn], &sessions[turn]);
        match post(&http, url, session.as_deref(), body.clone()).await {
            Ok(answer) if answer.windows(9).any(|w| w == b"\"result\":") => {
                measured.ok += 1;
                let micros = started.elapsed().as_micros() as u64;
                measured.latency.saturating_record(micros);
            }
            _ => measured.errors += 1,
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    measured
}

async fn initialize(http: &reqwest::Client, url: &str) -> Result<Option<String>, reqwest::Error> {
    let body = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "hangar-bench", "version": "1"}}});
    let response = request(http, url, None, Bytes::from(body.to_string()))
        .send()
        .await?;
    let session = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    response.bytes().await?;
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    post(http, url, session.as_deref(), Bytes::from(note.to_string())).await?;
    Ok(session)
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    session: Option<&str>,
    body: Bytes,
) -> Result<Bytes, reqwest::Error> {
    request(http, url, session, body)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await
}

fn request(
    http: &reqwest::Client,
    url: &str,
    session: Option<&str>,
    body: Bytes,
) -> reqwest::RequestBuilder {
    let mut request = http
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", VERSION)
        .body(body);
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    request
}
