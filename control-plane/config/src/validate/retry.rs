//! MCP Hangar's top-level `retry:` block: `default_policy` and
//! `per_mcp_server` policies (`max_attempts`, `backoff`, `initial_delay`,
//! `max_delay`, `retry_on`, `jitter`, `jitter_factor`).

use std::time::Duration;

use indexmap::IndexMap;

use super::read::{Ctx, Keys};
use crate::locate::Path;
use crate::model::{Backoff, RetryPolicy, RetrySettings, Server};
use crate::parse::Node;

const RETRY_KEYS: Keys = Keys {
    known: &["default_policy", "per_mcp_server"],
    unsupported: &[],
    hint: "",
};

const POLICY_KEYS: Keys = Keys {
    known: &[
        "max_attempts",
        "backoff",
        "initial_delay",
        "max_delay",
        "retry_on",
        "jitter",
        "jitter_factor",
    ],
    unsupported: &[],
    hint: "",
};

/// Most tries of one call a policy may ask for.
const MAX_ATTEMPTS: u32 = 10;

/// The `retry:` block; `servers` are the valid servers, which
/// `per_mcp_server` keys must name.
pub(super) fn retry(
    cx: &mut Ctx<'_>,
    path: &Path,
    node: &Node,
    servers: &IndexMap<String, Server>,
    server_ids: &[&str],
) -> Option<RetrySettings> {
    let fields = cx.mapping(path, node, &RETRY_KEYS)?;
    let default_policy = cx.optional(&fields, "default_policy", policy);
    let per_server = cx.optional(&fields, "per_mcp_server", |cx, path, node| {
        let entries = cx.entries(path, node)?;
        let mut out = Some(IndexMap::new());
        for (id, node) in &entries.entries {
            let policy_path = path.key(id);
            if !servers.contains_key(*id) && !server_ids.contains(id) {
                cx.at_key(&policy_path, format!("no server or group named '{id}'"));
                out = None;
                continue;
            }
            match (policy(cx, &policy_path, node), &mut out) {
                (Some(policy), Some(out)) => {
                    out.insert((*id).to_owned(), policy);
                }
                _ => out = None,
            }
        }
        out
    });
    Some(RetrySettings {
        default_policy: default_policy?,
        per_server: per_server?.unwrap_or_default(),
    })
}

fn policy(cx: &mut Ctx<'_>, path: &Path, node: &Node) -> Option<RetryPolicy> {
    let fields = cx.mapping(path, node, &POLICY_KEYS)?;
    let attempts = cx.optional(&fields, "max_attempts", |cx, p, n| {
        let attempts = cx.uint(p, n, 1)?;
        if attempts > MAX_ATTEMPTS {
            cx.at_value(p, format!("must be at most {MAX_ATTEMPTS}, got {attempts}"));
            return None;
        }
        Some(attempts)
    });
    let backoff = cx.optional(&fields, "backoff", |cx, p, n| {
        match cx.string(p, n)?.as_str() {
            "exponential" => Some(Backoff::Exponential),
            "linear" => Some(Backoff::Linear),
            "constant" | "fixed" => Some(Backoff::Constant),
            other => {
                cx.at_value(
                    p,
                    format!("unknown backoff '{other}' (expected exponential, linear or constant)"),
                );
                None
            }
        }
    });
    let initial = cx.optional(&fields, "initial_delay", Ctx::seconds);
    let max = cx.optional(&fields, "max_delay", Ctx::seconds);
    let retry_on = cx.optional(&fields, "retry_on", Ctx::string_list);
    let jitter = cx.optional(&fields, "jitter", Ctx::boolean);
    let factor = cx.optional(&fields, "jitter_factor", |cx, p, n| {
        let factor = match n {
            Node::Int(i) => *i as f64,
            Node::Float(x) => *x,
            _ => {
                cx.wrong_type(p, "a number between 0 and 1", n);
                return None;
            }
        };
        if !(0.0..=1.0).contains(&factor) {
            cx.at_value(p, format!("must be between 0 and 1, got {factor}"));
            return None;
        }
        Some(factor)
    });
    let initial_delay = initial?.unwrap_or(Duration::from_secs(1));
    let max_delay = max?.unwrap_or(Duration::from_secs(30));
    if max_delay < initial_delay {
        cx.at_value(
            &path.key("max_delay"),
            "must be at least initial_delay".to_owned(),
        );
        return None;
    }
    let jitter_factor = match jitter? {
        Some(false) => 0.0,
        _ => factor?.unwrap_or(0.1),
    };
    Some(RetryPolicy {
        max_attempts: attempts?.unwrap_or(3),
        backoff: backoff?.unwrap_or(Backoff::Exponential),
        initial_delay,
        max_delay,
        retry_on: retry_on?.unwrap_or_default(),
        jitter_factor,
    })
}
