//! An in-process data plane on 127.0.0.1:0, and an MCP client for it built
//! on the official Rust SDK (rmcp), so the data plane is driven by a client
//! we did not write.

use std::net::SocketAddr;

use hangar_data_plane::observe::Observer;

use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running data plane.
#[derive(Debug)]
pub struct DataPlane {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl DataPlane {
    /// Starts a data plane that follows the control plane at `cp_url`.
    pub async fn start(cp_url: &str, node_id: &str) -> Self {
        Self::start_with(hangar_data_plane::Settings::new(cp_url, node_id)).await
    }

    /// Starts a data plane with the given settings.
    pub async fn start_with(settings: hangar_data_plane::Settings) -> Self {
        Self::start_with_limits(settings, hangar_data_plane::Limits::default()).await
    }

    /// Starts a data plane with the given settings and HTTP limits.
    pub async fn start_with_limits(
        settings: hangar_data_plane::Settings,
        limits: hangar_data_plane::Limits,
    ) -> Self {
        Self::start_observed(settings, limits, Observer::default()).await
    }

    /// Starts a data plane that tells its requests to `observer` (traces,
    /// the access log).
    pub async fn start_observed(
        settings: hangar_data_plane::Settings,
        limits: hangar_data_plane::Limits,
        observer: Observer,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let shutdown = CancellationToken::new();
        let data_plane =
            hangar_data_plane::DataPlane::new(shutdown.clone()).with_observer(observer);
        data_plane
            .spawn_control(&settings, addr.to_string())
            .expect("snapshot cache");
        let task = tokio::spawn(async move {
            data_plane
                .serve_http(listener, &limits)
                .await
                .expect("data plane serves");
        });
        Self {
            addr,
            shutdown,
            task,
        }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The MCP endpoint (`http://127.0.0.1:PORT/mcp`).
    pub fn mcp_url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// The Prometheus endpoint (`http://127.0.0.1:PORT/metrics`).
    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.addr)
    }

    /// An MCP client session with this data plane.
    pub async fn client(&self) -> McpClient {
        McpClient::connect(&self.mcp_url()).await
    }

    /// Stops the data plane and waits for it.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.expect("data plane task");
    }
}

/// An rmcp client session.
#[derive(Debug)]
pub struct McpClient {
    service: RunningService<RoleClient, ClientConfig>,
}

impl McpClient {
    /// Connects and initializes.
    pub async fn connect(url: &str) -> Self {
        let transport = StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(url.to_owned()),
        );
        let service = ClientConfig::default()
            .serve(transport)
            .await
            .expect("mcp client connects");
        Self { service }
    }

    /// Names of the tools the server lists.
    pub async fn tool_names(&self) -> Vec<String> {
        let tools = self.service.list_all_tools().await.expect("tools/list");
        tools.into_iter().map(|t| t.name.into_owned()).collect()
    }

    /// Calls one of the data plane's tools and returns its structured output.
    pub async fn call(&self, tool: &str, arguments: Value) -> Value {
        let Value::Object(arguments) = arguments else {
            panic!("tool arguments must be an object");
        };
        let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        let result = self.service.call_tool(params).await.expect("tools/call");
        result
            .structured_content
            .expect("the data plane's tools return structured content")
    }

    /// Calls `hangar_call` with `arguments` and returns its structured output.
    pub async fn hangar_call(&self, arguments: Value) -> Value {
        self.call("hangar_call", arguments).await
    }

    /// Calls `tool` on `target` `n` times in one batch, one call at a time,
    /// and returns the members that served them, in order.
    pub async fn sequence(
        &self,
        target: &str,
        tool: &str,
        arguments: Value,
        n: usize,
    ) -> Vec<String> {
        let mut served = Vec::with_capacity(n);
        // A batch holds at most 100 calls.
        for start in (0..n).step_by(100) {
            let calls = repeated_calls(target, tool, &arguments, (n - start).min(100));
            let out = self
                .hangar_call(serde_json::json!({ "calls": calls, "max_concurrency": 1 }))
                .await;
            served_counts(&out); // panics on a failed call
            let results = out["results"].as_array().expect("results");
            served.extend(
                results
                    .iter()
                    .map(|r| r["served_by"].as_str().expect("served_by").to_owned()),
            );
        }
        served
    }

    /// Calls `tool` on `target` `n` times in one `hangar_call` batch.
    pub async fn batch(&self, target: &str, tool: &str, arguments: Value, n: usize) -> Value {
        let calls = repeated_calls(target, tool, &arguments, n);
        self.hangar_call(serde_json::json!({ "calls": calls }))
            .await
    }
}

/// `n` identical entries of a `hangar_call` batch.
fn repeated_calls(target: &str, tool: &str, arguments: &Value, n: usize) -> Vec<Value> {
    let call = serde_json::json!({"mcp_server": target, "tool": tool, "arguments": arguments});
    vec![call; n]
}

/// How many results of a `hangar_call` output each member served, counting
/// only successful calls; panics if any call failed.
pub fn served_counts(output: &Value) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for result in output["results"].as_array().expect("results array") {
        assert_eq!(result["success"], true, "call failed: {result}");
        let member = result["served_by"].as_str().expect("served_by").to_owned();
        *counts.entry(member).or_default() += 1;
    }
    counts
}
