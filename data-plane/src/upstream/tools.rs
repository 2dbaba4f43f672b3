//! The tool names a member lists, so a call to a tool it does not have is
//! refused without being sent: fetched once, and again when a call names a
//! tool not in the list (tools can be added at run time). Kept with each
//! name: whether the member marks the tool `readOnlyHint` or
//! `idempotentHint`, the only tools a delivered call may be retried for.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use serde_json::{Value, json};

use super::error::UpstreamError;

/// Most `tools/list` pages read from one member.
const MAX_TOOL_PAGES: usize = 100;

/// A member that answers MCP requests and keeps the names of its tools:
/// calls a tool only when the member lists it.
pub(super) trait ToolServer: Sync {
    /// One JSON-RPC request in the member's session; its `result`.
    fn mcp_request<'a>(
        &'a self,
        method: &'a str,
        params: Value,
        timeout: Duration,
    ) -> impl Future<Output = Result<Value, UpstreamError>> + Send + 'a;

    /// The member's tools, as last listed.
    fn tool_names(&self) -> &ToolNames;

    /// Calls a tool; the result is the member's whole `CallToolResult`.
    /// A tool the member does not list is refused without sending the call.
    fn call_tool<'a>(
        &'a self,
        name: &'a str,
        arguments: &'a Value,
        timeout: Duration,
    ) -> impl Future<Output = Result<Value, UpstreamError>> + Send + 'a
    where
        Self: Sized,
    {
        async move {
            self.tool_names().check(name, self, timeout).await?;
            let params = json!({ "name": name, "arguments": arguments });
            self.mcp_request("tools/call", params, timeout).await
        }
    }
}

/// A member's tool names, as last listed, each with whether it is safe to
/// send twice.
#[derive(Debug, Default)]
pub(super) struct ToolNames(ArcSwapOption<HashMap<String, bool>>);

impl ToolNames {
    /// Confirms the member lists `name`, listing its tools again once when
    /// the cached list does not have it.
    pub(super) async fn check(
        &self,
        name: &str,
        member: &impl ToolServer,
        timeout: Duration,
    ) -> Result<(), UpstreamError> {
        if self.0.load().as_ref().is_some_and(|t| t.contains_key(name)) {
            return Ok(());
        }
        let tools = Arc::new(list_all(member, timeout).await?);
        let listed = tools.contains_key(name);
        self.0.store(Some(tools));
        if listed {
            Ok(())
        } else {
            Err(UpstreamError::ToolNotFound(name.to_owned()))
        }
    }

    /// Whether the member marks `name` read-only or idempotent, as it last
    /// listed it; false for a tool not listed.
    pub(super) fn retry_safe(&self, name: &str) -> bool {
        self.0
            .load()
            .as_ref()
            .and_then(|tools| tools.get(name).copied())
            .unwrap_or(false)
    }

    /// Drops the list: the member may have other tools now (a new session
    /// may be a restarted member).
    pub(super) fn forget(&self) {
        self.0.store(None);
    }
}

/// Every tool name and whether it is safe to send twice, following
/// `nextCursor` for at most `MAX_TOOL_PAGES` pages.
async fn list_all(
    member: &impl ToolServer,
    timeout: Duration,
) -> Result<HashMap<String, bool>, UpstreamError> {
    let mut names = HashMap::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_TOOL_PAGES {
        let params = match &cursor {
            Some(cursor) => json!({ "cursor": cursor }),
            None => json!({}),
        };
        let page = member.mcp_request("tools/list", params, timeout).await?;
        let tools = page.get("tools").and_then(Value::as_array).ok_or_else(|| {
            UpstreamError::Protocol("tools/list result without a tools array".into())
        })?;
        names.extend(tools.iter().filter_map(|tool| {
            let name = tool.get("name").and_then(Value::as_str)?;
            let hint = |key: &str| tool["annotations"][key].as_bool() == Some(true);
            Some((
                name.to_owned(),
                hint("readOnlyHint") || hint("idempotentHint"),
            ))
        }));
        cursor = page
            .get("nextCursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    Ok(names)
}
