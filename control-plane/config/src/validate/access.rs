//! The top-level `access:` list: which principals may call what.
//!
//! ```yaml
//! access:
//!   - principals: ["service:ci", "user:*"]   # patterns of principal names
//!     roles: [admin]                          # or any of these roles
//!     allow: ["math/*", "fetch/fetch"]        # <server or group>/<tool> patterns
//! ```
//!
//! A rule speaks of a caller whose principal matches one of `principals`
//! or who holds one of `roles`; the caller may call what any rule speaking
//! of it allows, and nothing else once a rule exists. It needs client
//! authentication (`auth.enabled`): without it every caller is anonymous.

use super::read::{Ctx, Keys};
use super::tools::all_compile;
use crate::locate::Path;
use crate::model::AccessRule;
use crate::parse::Node;

const RULE_KEYS: Keys = Keys {
    known: &["principals", "roles", "allow"],
    unsupported: &[],
    hint: "",
};

/// The `access:` list; `ids` are the servers and groups of the file.
pub(super) fn access(
    cx: &mut Ctx<'_>,
    path: &Path,
    node: &Node,
    ids: &[&str],
) -> Option<Vec<AccessRule>> {
    let Node::Seq(items) = node else {
        cx.wrong_type(path, "a list of rules {principals, roles, allow}", node);
        return None;
    };
    let mut rules = Some(Vec::with_capacity(items.len()));
    for (i, item) in items.iter().enumerate() {
        match (rule(cx, &path.index(i), item, ids), &mut rules) {
            (Some(rule), Some(rules)) => rules.push(rule),
            _ => rules = None,
        }
    }
    rules
}

fn rule(cx: &mut Ctx<'_>, path: &Path, node: &Node, ids: &[&str]) -> Option<AccessRule> {
    let fields = cx.mapping(path, node, &RULE_KEYS)?;
    let principals = cx.optional(&fields, "principals", |cx, p, n| {
        let list = cx.string_list(p, n)?;
        all_compile(cx, p, &list).then_some(list)
    });
    let roles = cx.optional(&fields, "roles", Ctx::string_list);
    let allow = cx
        .required(&fields, "allow")
        .and_then(|n| allow(cx, &path.key("allow"), n, ids));
    let (principals, roles) = (principals?, roles?);
    let (principals, roles) = (principals.unwrap_or_default(), roles.unwrap_or_default());
    if principals.is_empty() && roles.is_empty() {
        cx.at_key(
            path,
            "speaks of no caller: give principals (patterns of names) or roles",
        );
        return None;
    }
    Some(AccessRule {
        principals,
        roles,
        allow: allow?,
    })
}

fn allow(cx: &mut Ctx<'_>, path: &Path, node: &Node, ids: &[&str]) -> Option<Vec<String>> {
    let list = cx.string_list(path, node)?;
    if list.is_empty() {
        cx.at_value(
            path,
            "allows nothing: give <server or group>/<tool> patterns",
        );
        return None;
    }
    let mut ok = all_compile(cx, path, &list);
    for (i, pattern) in list.iter().enumerate() {
        let Some((target, tool)) = pattern.split_once('/') else {
            cx.at_value(
                &path.index(i),
                format!(
                    "'{pattern}' names no tool: write <server or group>/<tool>, e.g. '{pattern}/*'"
                ),
            );
            ok = false;
            continue;
        };
        let problem = if target.is_empty() || tool.is_empty() || tool.contains('/') {
            Some(format!(
                "'{pattern}' is not <server or group>/<tool>: one '/', a name on each side"
            ))
        } else if !is_glob(target) && !ids.contains(&target) {
            Some(format!(
                "'{pattern}' names no server or group '{target}' (known: {})",
                ids.join(", ")
            ))
        } else {
            None
        };
        if let Some(message) = problem {
            cx.at_value(&path.index(i), message);
            ok = false;
        }
    }
    ok.then_some(list)
}

fn is_glob(text: &str) -> bool {
    text.contains(['*', '?', '[', '{'])
}
