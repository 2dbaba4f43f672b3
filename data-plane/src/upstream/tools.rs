//! The tools a member lists, so a call to a tool it does not have is
//! refused without being sent and a group routes each call only to members
//! that list its tool: fetched by the probe loop once the member answers
//! (and again every [`RELIST_AFTER`]), when a call names a tool not in the
//! list (tools can be added at run time), and after every new session (a
//! restarted member may have other tools). Kept whole, for a group's
//! `tools/list`; from each definition comes whether the member marks the
//! tool `readOnlyHint` or `idempotentHint`, the only tools a delivered call
//! may be retried for.

// Looked up on every call, by names from the config and the members:
// a fast seeded hash, not SipHash.
use foldhash::{HashMap, HashMapExt};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use arc_swap::ArcSwapOption;
use serde_json::{Value, json};

use super::error::UpstreamError;
use crate::server::jsonrpc::METHOD_NOT_FOUND;

/// Most `tools/list` pages read from one member.
const MAX_TOOL_PAGES: usize = 100;
/// How old a list may grow before the probe loop lists the tools again:
/// a member may drop or change tools without a new session.
pub(super) const RELIST_AFTER: Duration = Duration::from_secs(60);

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

/// The tools a member listed, in its order.
#[derive(Debug)]
pub struct ToolList {
    /// Each tool's definition as the member gave it.
    tools: Vec<Value>,
    /// Index into `tools` by name.
    by_name: HashMap<String, usize>,
    /// When the list was read.
    listed_at: Instant,
}

impl ToolList {
    /// A list from tool definitions; later duplicates of a name are dropped.
    pub fn new(definitions: Vec<Value>) -> Self {
        let mut tools = Vec::with_capacity(definitions.len());
        let mut by_name = HashMap::with_capacity(definitions.len());
        for tool in definitions {
            let Some(name) = tool.get("name").and_then(Value::as_str) else {
                continue;
            };
            if !by_name.contains_key(name) {
                by_name.insert(name.to_owned(), tools.len());
                tools.push(tool);
            }
        }
        Self {
            tools,
            by_name,
            listed_at: Instant::now(),
        }
    }

    /// Whether the member lists `name`.
    pub fn lists(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// The definition of `name`, if listed.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.by_name.get(name).map(|&i| &self.tools[i])
    }

    /// Every definition, in the member's order.
    pub fn definitions(&self) -> &[Value] {
        &self.tools
    }

    /// The name of every tool, in the member's order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tools
            .iter()
            .filter_map(|tool| tool.get("name").and_then(Value::as_str))
    }

    /// Whether `other` lists the same names (in any order): a list read
    /// again is a new list, but most often of the same tools.
    pub fn same_names(&self, other: &ToolList) -> bool {
        self.by_name.len() == other.by_name.len()
            && self.by_name.keys().all(|name| other.lists(name))
    }

    /// Whether the member marks `name` read-only or idempotent.
    fn retry_safe(&self, name: &str) -> bool {
        self.get(name).is_some_and(|tool| {
            let hint = |key: &str| tool["annotations"][key].as_bool() == Some(true);
            hint("readOnlyHint") || hint("idempotentHint")
        })
    }
}

/// A member's tools, as last listed.
#[derive(Debug, Default)]
pub(super) struct ToolNames(ArcSwapOption<ToolList>);

impl ToolNames {
    /// Confirms the member lists `name`, listing its tools again once when
    /// the cached list does not have it.
    pub(super) async fn check(
        &self,
        name: &str,
        member: &impl ToolServer,
        timeout: Duration,
    ) -> Result<(), UpstreamError> {
        if self.0.load().as_ref().is_some_and(|t| t.lists(name)) {
            return Ok(());
        }
        if self.relist(member, timeout).await?.lists(name) {
            Ok(())
        } else {
            Err(UpstreamError::ToolNotFound(name.to_owned()))
        }
    }

    /// Lists the tools again when there is no list or it is older than
    /// [`RELIST_AFTER`]. A member without tools support (`-32601`) has none.
    pub(super) async fn keep_listed(
        &self,
        member: &impl ToolServer,
        timeout: Duration,
    ) -> Result<(), UpstreamError> {
        let fresh = self
            .0
            .load()
            .as_ref()
            .is_some_and(|t| t.listed_at.elapsed() < RELIST_AFTER);
        if fresh {
            return Ok(());
        }
        match self.relist(member, timeout).await {
            Err(UpstreamError::JsonRpc { code, .. }) if code == METHOD_NOT_FOUND => {
                self.0.store(Some(Arc::new(ToolList::new(Vec::new()))));
                Ok(())
            }
            other => other.map(drop),
        }
    }

    /// Reads the whole list from the member and keeps it.
    async fn relist(
        &self,
        member: &impl ToolServer,
        timeout: Duration,
    ) -> Result<Arc<ToolList>, UpstreamError> {
        let tools = Arc::new(ToolList::new(list_all(member, timeout).await?));
        self.0.store(Some(tools.clone()));
        Ok(tools)
    }

    /// Whether the list as last read has `name`; `None` without a list.
    pub(super) fn lists(&self, name: &str) -> Option<bool> {
        self.0.load().as_ref().map(|t| t.lists(name))
    }

    /// The list as last read, if any.
    pub(super) fn current(&self) -> Option<Arc<ToolList>> {
        self.0.load_full()
    }

    /// Whether the member marks `name` read-only or idempotent, as it last
    /// listed it; false for a tool not listed.
    pub(super) fn retry_safe(&self, name: &str) -> bool {
        self.0.load().as_ref().is_some_and(|t| t.retry_safe(name))
    }

    /// Drops the list: the member may have other tools now (a new session
    /// may be a restarted member).
    pub(super) fn forget(&self) {
        self.0.store(None);
    }
}

/// Every tool definition, following `nextCursor` for at most
/// `MAX_TOOL_PAGES` pages.
async fn list_all(
    member: &impl ToolServer,
    timeout: Duration,
) -> Result<Vec<Value>, UpstreamError> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_TOOL_PAGES {
        let params = match &cursor {
            Some(cursor) => json!({ "cursor": cursor }),
            None => json!({}),
        };
        let mut page = member.mcp_request("tools/list", params, timeout).await?;
        let Some(Value::Array(tools)) = page.get_mut("tools").map(Value::take) else {
            return Err(UpstreamError::Protocol(
                "tools/list result without a tools array".into(),
            ));
        };
        all.extend(tools);
        cursor = page
            .get("nextCursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    Ok(all)
}
