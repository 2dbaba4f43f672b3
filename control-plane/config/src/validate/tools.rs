//! `tools:` access policies (MCP Hangar's): on a server, a group or a
//! group member, `allow_list` and `deny_list` of tool-name patterns (`*`
//! any run of characters, `?` one, `[abc]` a set). MCP Hangar's other forms
//! are named as not supported yet.

use super::read::{Ctx, Keys};
use crate::locate::Path;
use crate::model::ToolPolicy;
use crate::parse::Node;

const POLICY_KEYS: Keys = Keys {
    known: &["allow_list", "deny_list"],
    unsupported: &["approval_list"],
    hint: " (calls held for approval)",
};

/// Longest pattern.
const MAX_PATTERN: usize = 256;

/// A `tools:` block.
pub(super) fn policy(cx: &mut Ctx<'_>, path: &Path, node: &Node) -> Option<ToolPolicy> {
    if let Node::Seq(_) = node {
        cx.at_value(
            path,
            "a list of tool definitions is not supported yet: give an access policy, {allow_list: [...], deny_list: [...]}",
        );
        return None;
    }
    let fields = cx.mapping(path, node, &POLICY_KEYS)?;
    let allow = cx.optional(&fields, "allow_list", patterns);
    let deny = cx.optional(&fields, "deny_list", patterns);
    let (allow, deny) = (allow?, deny?);
    if allow.is_none() && deny.is_none() {
        cx.at_key(path, "limits nothing: give allow_list or deny_list");
        return None;
    }
    Some(ToolPolicy {
        allow_given: allow.is_some(),
        allow: allow.unwrap_or_default(),
        deny: deny.unwrap_or_default(),
    })
}

fn patterns(cx: &mut Ctx<'_>, path: &Path, node: &Node) -> Option<Vec<String>> {
    let list = cx.string_list(path, node)?;
    all_compile(cx, path, &list).then_some(list)
}

/// Whether every pattern of `list` (at `path`) is one; reports each that
/// is not.
pub(super) fn all_compile(cx: &mut Ctx<'_>, path: &Path, list: &[String]) -> bool {
    let mut ok = true;
    for (i, pattern) in list.iter().enumerate() {
        let problem = if pattern.is_empty() || pattern.len() > MAX_PATTERN {
            Some(format!("a pattern has 1 to {MAX_PATTERN} characters"))
        } else {
            globset::Glob::new(pattern)
                .err()
                .map(|e| format!("'{pattern}' is not a pattern: {}", e.kind()))
        };
        if let Some(message) = problem {
            cx.at_value(&path.index(i), message);
            ok = false;
        }
    }
    ok
}
