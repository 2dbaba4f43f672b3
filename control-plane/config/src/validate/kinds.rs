//! What the server validators share: the kind of server each id names
//! (so groups can check their members first) and the keys every member
//! server has.

use std::collections::HashMap;

use super::read::{self, Ctx};
use crate::model::RemoteServer;

/// What a server id names, for checking group members before (or without)
/// fully validating the server itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Remote,
    Subprocess,
    Group,
    /// Missing or bad mode: the server reports that itself.
    Other,
}

pub(super) type Kinds<'n> = HashMap<&'n str, Kind>;

/// What remote and subprocess servers both have.
pub(super) struct Shared {
    pub(super) health_check_interval: std::time::Duration,
    pub(super) max_consecutive_failures: u32,
    pub(super) description: Option<String>,
    pub(super) max_concurrency: Option<u32>,
    pub(super) stall_timeout: std::time::Duration,
    pub(super) rate_limit: Option<crate::model::RateLimit>,
    pub(super) tools: Option<crate::model::ToolPolicy>,
}

/// Reads the keys every member server has. `idle_ttl_s` is checked and
/// dropped: accepted so MCP Hangar files load, while Hangar keeps members
/// warm (see the README).
pub(super) fn shared(cx: &mut Ctx<'_>, fields: &read::Fields<'_>) -> Option<Shared> {
    let interval = cx
        .optional(fields, "health_check_interval_s", Ctx::seconds)
        .map(|v| v.unwrap_or(RemoteServer::DEFAULT_HEALTH_CHECK_INTERVAL));
    let failures = cx
        .optional(fields, "max_consecutive_failures", |cx, p, n| {
            cx.uint(p, n, 1)
        })
        .map(|v| v.unwrap_or(RemoteServer::DEFAULT_MAX_CONSECUTIVE_FAILURES));
    let description = cx.optional(fields, "description", Ctx::string);
    let max_concurrency = cx.optional(fields, "max_concurrency", |cx, p, n| cx.uint(p, n, 1));
    let idle_ttl = cx.optional(fields, "idle_ttl_s", Ctx::seconds);
    // 0 turns the hang watch off.
    let stall = cx
        .optional(fields, "stall_timeout_s", |cx, p, n| {
            cx.seconds_or_zero(p, n, "no hang watch")
        })
        .map(|v| v.unwrap_or(RemoteServer::DEFAULT_STALL_TIMEOUT));
    let rate_limit = cx.optional(fields, "rate_limit", super::rate_limit::target);
    let tools = cx.optional(fields, "tools", super::tools::policy);
    idle_ttl?;
    Some(Shared {
        health_check_interval: interval?,
        max_consecutive_failures: failures?,
        description: description?,
        max_concurrency: max_concurrency?,
        stall_timeout: stall?,
        rate_limit: rate_limit?,
        tools: tools?,
    })
}
