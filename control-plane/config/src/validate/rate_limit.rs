//! `rate_limit:` blocks, MCP Hangar's top-level shape (`rps`, `burst`,
//! `per_caller: {rps, burst}`) and Hangar's own keys: `scope`, `methods`,
//! and, on a group or server, `tools: {name: {rps, burst, ...}}`.

use indexmap::IndexMap;

use super::read::{Ctx, Fields, Keys};
use crate::locate::Path;
use crate::model::{RateLimit, RateScope, RateSize};
use crate::parse::Node;

/// Where a `rate_limit` block sits, which decides the keys it may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    /// The top level: every tool call.
    Top,
    /// A group or a server.
    Target,
    /// One tool under a group's or server's `tools`.
    Tool,
}

const TOP_KEYS: Keys = Keys {
    known: &["rps", "burst", "per_caller", "scope", "methods"],
    unsupported: &[],
    hint: "",
};

const TARGET_KEYS: Keys = Keys {
    known: &["rps", "burst", "per_caller", "scope", "methods", "tools"],
    unsupported: &[],
    hint: "",
};

/// A tool's limit takes its scope from the group or server it sits under.
const TOOL_KEYS: Keys = Keys {
    known: &["rps", "burst", "per_caller"],
    unsupported: &[],
    hint: "",
};

const SIZE_KEYS: Keys = Keys {
    known: &["rps", "burst"],
    unsupported: &[],
    hint: "",
};

/// Requests a limit may count besides `tools/call`.
const METHODS: &[&str] = &[
    "tools/call",
    "tools/list",
    "resources/read",
    "resources/list",
    "resources/templates/list",
    "resources/subscribe",
    "prompts/get",
    "prompts/list",
    "completion/complete",
    "initialize",
    "ping",
    "*",
];

/// Longest tool name (MCP's own limit).
const MAX_TOOL_NAME: usize = 128;

/// The `rate_limit` of a group or server.
pub(super) fn target(cx: &mut Ctx<'_>, path: &Path, node: &Node) -> Option<RateLimit> {
    rate_limit(cx, path, node, Place::Target)
}

/// A `rate_limit` block at `path`.
pub(super) fn rate_limit(
    cx: &mut Ctx<'_>,
    path: &Path,
    node: &Node,
    place: Place,
) -> Option<RateLimit> {
    let keys = match place {
        Place::Top => &TOP_KEYS,
        Place::Target => &TARGET_KEYS,
        Place::Tool => &TOOL_KEYS,
    };
    let fields = match (place, node) {
        // `tools` at the top is a likely mistake worth naming.
        (Place::Top, Node::Map(_)) => {
            let fields = cx.entries(path, node)?;
            if fields.get("tools").is_some() {
                cx.at_key(
                    &path.key("tools"),
                    "per-tool limits sit under a group's or server's rate_limit (mcp_servers.<id>.rate_limit.tools)",
                );
            }
            cx.check_keys(without(fields, "tools"), keys)
        }
        _ => cx.mapping(path, node, keys)?,
    };
    let all = size(cx, &fields);
    let per_caller = cx.optional(&fields, "per_caller", |cx, p, n| {
        let fields = cx.mapping(p, n, &SIZE_KEYS)?;
        match size(cx, &fields)? {
            Some(size) => Some(size),
            None => {
                cx.at_key(p, "needs rps, the calls each caller may make a second");
                None
            }
        }
    });
    let scope = cx.optional(&fields, "scope", |cx, p, n| {
        match cx.string(p, n)?.as_str() {
            "fleet" => Some(RateScope::Fleet),
            "data_plane" => Some(RateScope::DataPlane),
            other => {
                cx.at_value(
                    p,
                    format!("unknown scope '{other}' (expected fleet or data_plane)"),
                );
                None
            }
        }
    });
    let methods = cx.optional(&fields, "methods", methods);
    let tools = cx.optional(&fields, "tools", tools);
    let (all, per_caller, scope) = (all?, per_caller?, scope?.unwrap_or_default());
    let mut tools = tools?.unwrap_or_default();
    for tool in tools.values_mut() {
        tool.scope = scope;
    }
    if all.is_none() && per_caller.is_none() && tools.is_empty() {
        let what = if place == Place::Target {
            "rps (and burst), per_caller or tools"
        } else {
            "rps (and burst) or per_caller"
        };
        cx.at_key(path, format!("limits nothing: give {what}"));
        return None;
    }
    let mut met = true;
    if let (Some(all), Some(each)) = (all, per_caller) {
        met &= within(
            cx,
            &path.key("per_caller"),
            each,
            all,
            "the limit all callers share",
        );
    }
    if let Some(all) = all {
        for (name, tool) in &tools {
            let tool_path = path.key("tools").key(name);
            if let Some(size) = tool.all {
                met &= within(
                    cx,
                    &tool_path,
                    size,
                    all,
                    "the limit of its group or server",
                );
            }
        }
    }
    met.then_some(RateLimit {
        all,
        per_caller,
        scope,
        methods: methods?.unwrap_or_default(),
        tools,
    })
}

/// `rps` and `burst` of `fields`; `Some(None)` when neither is there.
fn size(cx: &mut Ctx<'_>, fields: &Fields<'_>) -> Option<Option<RateSize>> {
    let rps = cx.optional(fields, "rps", |cx, p, n| {
        let rps = match n {
            Node::Int(i) => *i as f64,
            Node::Float(x) => *x,
            _ => {
                cx.wrong_type(p, "a number of calls a second", n);
                return None;
            }
        };
        if !rps.is_finite() || rps <= 0.0 {
            cx.at_value(p, format!("must be more than 0, got {rps}"));
            return None;
        }
        Some(rps)
    });
    let burst = cx.optional(fields, "burst", |cx, p, n| cx.uint(p, n, 1));
    match (rps?, burst?) {
        (Some(rps), burst) => Some(Some(RateSize {
            rps,
            // One second's worth by default, and at least one call.
            burst: burst.unwrap_or_else(|| rps.ceil().clamp(1.0, f64::from(u32::MAX)) as u32),
        })),
        (None, Some(_)) => {
            cx.at_key(
                &fields.path.key("burst"),
                "needs rps: a burst without a refill rate would admit it once and never again",
            );
            None
        }
        (None, None) => Some(None),
    }
}

/// Reports an inner limit larger than the one it sits under, which could
/// never be reached.
fn within(cx: &mut Ctx<'_>, path: &Path, inner: RateSize, outer: RateSize, what: &str) -> bool {
    let mut ok = true;
    if inner.rps > outer.rps {
        let message = format!(
            "{} calls a second can never be reached under {what} ({} a second)",
            inner.rps, outer.rps
        );
        cx.at_value(&path.key("rps"), message);
        ok = false;
    }
    if inner.burst > outer.burst {
        let message = format!(
            "a burst of {} can never be reached under {what} (burst {})",
            inner.burst, outer.burst
        );
        cx.at_value(&path.key("burst"), message);
        ok = false;
    }
    ok
}

fn methods(cx: &mut Ctx<'_>, path: &Path, node: &Node) -> Option<Vec<String>> {
    let list = cx.string_list(path, node)?;
    let mut ok = true;
    for (i, method) in list.iter().enumerate() {
        if !METHODS.contains(&method.as_str()) {
            let message = format!(
                "unknown method '{method}' (expected one of: {})",
                METHODS.join(", ")
            );
            cx.at_value(&path.index(i), message);
            ok = false;
        }
    }
    ok.then_some(list)
}

fn tools(cx: &mut Ctx<'_>, path: &Path, node: &Node) -> Option<IndexMap<String, RateLimit>> {
    let entries = cx.entries(path, node)?;
    let mut out = Some(IndexMap::new());
    for (name, node) in &entries.entries {
        let tool_path = path.key(name);
        if name.is_empty()
            || name.len() > MAX_TOOL_NAME
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-./".contains(&b))
        {
            let message = format!(
                "'{name}' is not a tool name (1 to {MAX_TOOL_NAME} letters, digits, '_', '-', '.' or '/')"
            );
            cx.at_key(&tool_path, message);
            out = None;
            continue;
        }
        match (rate_limit(cx, &tool_path, node, Place::Tool), &mut out) {
            (Some(limit), Some(out)) => {
                out.insert((*name).to_owned(), limit);
            }
            _ => out = None,
        }
    }
    out
}

fn without<'n>(fields: Fields<'n>, key: &str) -> Fields<'n> {
    Fields {
        path: fields.path,
        entries: fields
            .entries
            .into_iter()
            .filter(|(k, _)| *k != key)
            .collect(),
    }
}
