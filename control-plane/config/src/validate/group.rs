//! `mode: group` servers and their members.

use std::collections::HashMap;

use super::kinds::{Kind, Kinds};
use super::read::{Ctx, Fields, Keys};
use crate::locate::Path;
use crate::model::{Group, Member, OutlierDetection, StrategyKind};
use crate::parse::Node;

pub(super) const GROUP_KEYS: Keys = Keys {
    known: &[
        "mode",
        "strategy",
        "min_healthy",
        "members",
        "description",
        "max_concurrency",
        "circuit_breaker",
        "session_recovery",
        "outlier_detection",
        "rate_limit",
        "tools",
    ],
    unsupported: &["auto_start"],
    hint: "",
};

/// `circuit_breaker:` of a group. `reset_timeout_s` (recipe 03 writes it)
/// is checked and has no effect: the circuit closes when members are back,
/// not on a timer.
const CIRCUIT_BREAKER_KEYS: Keys = Keys {
    known: &["failure_threshold", "reset_timeout_s"],
    unsupported: &[],
    hint: "",
};

/// `outlier_detection:` of a group (Hangar's own; MCP Hangar has none).
const OUTLIER_KEYS: Keys = Keys {
    known: &[
        "enabled",
        "consecutive_failures",
        "base_ejection_time_s",
        "max_ejection_time_s",
        "max_ejection_percent",
        "slow_start_s",
    ],
    unsupported: &[],
    hint: "",
};

/// MCP Hangar lets a member define its server inline; Hangar only takes
/// references to servers defined under `mcp_servers`.
const MEMBER_KEYS: Keys = Keys {
    known: &["id", "weight", "priority", "tools"],
    unsupported: &[
        "args",
        "auth",
        "auto_start",
        "build",
        "command",
        "description",
        "endpoint",
        "env",
        "headers",
        "health_check_interval_s",
        "http",
        "idle_ttl_s",
        "image",
        "max_consecutive_failures",
        "mode",
        "network",
        "network_mode",
        "read_only",
        "resources",
        "tls",
        "user",
        "volumes",
    ],
    hint: " in a member (define the server under mcp_servers and list its id)",
};

pub(super) fn group(cx: &mut Ctx<'_>, fields: &Fields<'_>, kinds: &Kinds<'_>) -> Option<Group> {
    let strategy = cx
        .optional(fields, "strategy", strategy)
        .map(Option::unwrap_or_default);
    let (count, members) = match cx.required(fields, "members") {
        Some(node) => members(cx, &fields.path.key("members"), node, kinds),
        None => (0, None),
    };
    let min_healthy = cx
        .optional(fields, "min_healthy", |cx, p, n| cx.uint(p, n, 1))
        .map(|v| v.unwrap_or(Group::DEFAULT_MIN_HEALTHY))
        .and_then(|min| check_min_healthy(cx, &fields.path.key("min_healthy"), min, count));
    let description = cx.optional(fields, "description", Ctx::string);
    let max_concurrency = cx.optional(fields, "max_concurrency", |cx, p, n| cx.uint(p, n, 1));
    let recovery = cx
        .optional(fields, "session_recovery", Ctx::boolean)
        .map(|v| v.unwrap_or(true));
    let circuit = cx
        .optional(fields, "circuit_breaker", circuit_breaker)
        .map(|t| t.unwrap_or(Group::DEFAULT_FAILURE_THRESHOLD));
    let outliers = cx
        .optional(fields, "outlier_detection", outlier_detection)
        .map(|o| o.unwrap_or_else(|| Some(OutlierDetection::default())));
    let rate_limit = cx.optional(fields, "rate_limit", super::rate_limit::target);
    let tools = cx.optional(fields, "tools", super::tools::policy);
    Some(Group {
        strategy: strategy?,
        min_healthy: min_healthy?,
        members: members?,
        description: description?,
        max_concurrency: max_concurrency?,
        circuit_failure_threshold: circuit?,
        session_recovery: recovery?,
        outlier_detection: outliers?,
        rate_limit: rate_limit?,
        tools: tools?,
    })
}

/// An `outlier_detection:` block; `Some(None)` when it says `enabled: false`.
fn outlier_detection(
    cx: &mut Ctx<'_>,
    path: &Path,
    node: &Node,
) -> Option<Option<OutlierDetection>> {
    let fields = cx.mapping(path, node, &OUTLIER_KEYS)?;
    let defaults = OutlierDetection::default();
    let enabled = cx
        .optional(&fields, "enabled", Ctx::boolean)
        .map(|v| v.unwrap_or(true));
    let failures = cx
        .optional(&fields, "consecutive_failures", |cx, p, n| cx.uint(p, n, 1))
        .map(|v| v.unwrap_or(defaults.consecutive_failures));
    let base = cx
        .optional(&fields, "base_ejection_time_s", Ctx::seconds)
        .map(|v| v.unwrap_or(defaults.base_ejection_time));
    let max = cx
        .optional(&fields, "max_ejection_time_s", Ctx::seconds)
        .map(|v| v.unwrap_or(defaults.max_ejection_time.max(base.unwrap_or_default())));
    let percent = cx
        .optional(&fields, "max_ejection_percent", |cx, p, n| {
            let percent = cx.uint(p, n, 1)?;
            if percent > 100 {
                cx.at_value(p, format!("must be at most 100, got {percent}"));
                return None;
            }
            Some(percent)
        })
        .map(|v| v.unwrap_or(defaults.max_ejection_percent));
    let slow_start = cx
        .optional(&fields, "slow_start_s", |cx, p, n| {
            cx.seconds_or_zero(p, n, "no slow start")
        })
        .map(|v| v.unwrap_or(defaults.slow_start));
    let (base, max) = (base?, max?);
    if max < base {
        let message = format!(
            "must be at least base_ejection_time_s ({}), got {}",
            base.as_secs_f64(),
            max.as_secs_f64()
        );
        cx.at_value(&path.key("max_ejection_time_s"), message);
        return None;
    }
    let detection = OutlierDetection {
        consecutive_failures: failures?,
        base_ejection_time: base,
        max_ejection_time: max,
        max_ejection_percent: percent?,
        slow_start: slow_start?,
    };
    Some(enabled?.then_some(detection))
}

/// The `failure_threshold` of a `circuit_breaker:` block.
fn circuit_breaker(cx: &mut Ctx<'_>, path: &Path, node: &Node) -> Option<u32> {
    let fields = cx.mapping(path, node, &CIRCUIT_BREAKER_KEYS)?;
    let threshold = cx
        .optional(&fields, "failure_threshold", |cx, p, n| cx.uint(p, n, 1))
        .map(|t| t.unwrap_or(Group::DEFAULT_FAILURE_THRESHOLD));
    let reset_timeout = cx.optional(&fields, "reset_timeout_s", Ctx::seconds);
    reset_timeout?;
    threshold
}

fn strategy(cx: &mut Ctx<'_>, path: &Path, node: &Node) -> Option<StrategyKind> {
    let name = cx.string(path, node)?;
    let strategy = StrategyKind::from_name(&name);
    if strategy.is_none() {
        let names: Vec<&str> = StrategyKind::ALL.iter().map(|s| s.as_str()).collect();
        let names = names.join(", ");
        cx.at_value(
            path,
            format!("unknown strategy '{name}' (expected one of: {names})"),
        );
    }
    strategy
}

/// `count` is the length of the members list (0 when it is missing or not a
/// list, which is reported elsewhere).
fn check_min_healthy(cx: &mut Ctx<'_>, path: &Path, min: u32, count: usize) -> Option<u32> {
    if count > 0 && usize::try_from(min).is_ok_and(|min| min > count) {
        let message = format!("must be at most the number of members ({count}), got {min}");
        cx.at_value(path, message);
        return None;
    }
    Some(min)
}

/// Returns the length of the list and, if every member is valid, the
/// members.
fn members(
    cx: &mut Ctx<'_>,
    path: &Path,
    node: &Node,
    kinds: &Kinds<'_>,
) -> (usize, Option<Vec<Member>>) {
    let Node::Seq(items) = node else {
        cx.wrong_type(path, "a list", node);
        return (0, None);
    };
    if items.is_empty() {
        cx.at_value(path, "must not be empty");
        return (0, None);
    }
    let mut seen = HashMap::new();
    let mut out = Some(Vec::with_capacity(items.len()));
    for (i, item) in items.iter().enumerate() {
        let member = member(cx, path, i, item, kinds, &mut seen);
        match (member, &mut out) {
            (Some(member), Some(out)) => out.push(member),
            _ => out = None,
        }
    }
    (items.len(), out)
}

/// Validates `members[index]`. `seen` maps member ids already listed in
/// this group to their index.
fn member(
    cx: &mut Ctx<'_>,
    members_path: &Path,
    index: usize,
    node: &Node,
    kinds: &Kinds<'_>,
    seen: &mut HashMap<String, usize>,
) -> Option<Member> {
    let path = &members_path.index(index);
    let fields = cx.mapping(path, node, &MEMBER_KEYS)?;
    let id = cx.required(&fields, "id").and_then(|node| {
        let id_path = path.key("id");
        let id = cx.string(&id_path, node)?;
        member_id(cx, &id_path, id, index, kinds, seen)
    });
    let weight = cx
        .optional(&fields, "weight", |cx, p, n| cx.uint(p, n, 1))
        .map(|v| v.unwrap_or(Member::DEFAULT_WEIGHT));
    let priority = cx
        .optional(&fields, "priority", Ctx::int32)
        .map(|v| v.unwrap_or(Member::DEFAULT_PRIORITY));
    let tools = cx.optional(&fields, "tools", super::tools::policy);
    Some(Member {
        id: id?,
        weight: weight?,
        priority: priority?,
        tools: tools?,
    })
}

/// Checks that `id` names a remote or subprocess server and is not listed twice.
fn member_id(
    cx: &mut Ctx<'_>,
    id_path: &Path,
    id: String,
    index: usize,
    kinds: &Kinds<'_>,
    seen: &mut HashMap<String, usize>,
) -> Option<String> {
    if let Some(first) = seen.get(&id) {
        cx.at_value(
            id_path,
            format!("duplicate member '{id}' (also members[{first}])"),
        );
        return None;
    }
    seen.insert(id.clone(), index);
    match kinds.get(id.as_str()) {
        // A server with a bad mode reports that itself; naming it here is
        // not a second mistake.
        Some(Kind::Remote | Kind::Subprocess | Kind::Other) => Some(id),
        Some(Kind::Group) => {
            cx.at_value(
                id_path,
                format!("'{id}' is a group; groups cannot contain groups"),
            );
            None
        }
        None => {
            cx.at_value(id_path, format!("no server named '{id}'"));
            None
        }
    }
}
