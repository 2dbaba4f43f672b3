//! Which members of a group list which tools, from each member's cached
//! `tools/list` (`upstream::ToolList`).
//!
//! A `tools/call` goes only to members that list its tool, or whose list
//! is not known yet (the member itself then refuses a tool it lacks without
//! the call being sent). The group's own tool list is the union of its
//! members' lists; where members give one name different definitions, the
//! first member in config order that lists it wins. Members that disagree
//! are reported, so `hangarctl status` can warn.

use serde_json::Value;

use crate::route::policy::{self, Denial};
use crate::route::table::GroupRoute;
use crate::upstream::ToolList;

/// Most disagreements named in one group's report; the rest are counted.
const MAX_WARNINGS: usize = 8;
/// Most tool names in the line of a member that lacks tools.
const MAX_NAMES: usize = 8;

/// The tools of a group as its members list them.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Catalog {
    /// The union of the members' tools: each name once, defined as the
    /// first member in config order that lists it defines it.
    pub tools: Vec<Value>,
    /// Whether the members list different sets of names, so one member's
    /// `tools/list` does not show the group's tools.
    pub names_differ: bool,
    /// Each disagreement in words: a tool some members lack, or one they
    /// define differently.
    pub warnings: Vec<String>,
}

impl GroupRoute {
    /// Whether member `index` may serve a call of `tool`: it lists the tool
    /// or has not listed its tools yet. Any member serves a request that
    /// names no tool.
    pub(crate) fn may_serve(&self, index: usize, tool: Option<&str>) -> bool {
        let Some(tool) = tool else {
            return true;
        };
        self.members[index].member.upstream().lists_tool(tool) != Some(false)
            && self.admits(index, tool)
    }

    /// Whether the `tools:` policies of member `index` (its server's and
    /// the group's entry for it) let `tool` through.
    pub(crate) fn admits(&self, index: usize, tool: &str) -> bool {
        policy::check_all(self.members[index].policies.iter().map(AsRef::as_ref), tool).is_ok()
    }

    /// Why `tool` may not be called through this group: the group's own
    /// policy refuses it, or every member's does. `None` when it may.
    pub(crate) fn denial(&self, tool: &str) -> Option<Denial> {
        if let Some(Err(denied)) = self.policy.as_ref().map(|p| p.check(tool)) {
            return Some(denied);
        }
        let mut first = None;
        for member in &self.members {
            match policy::check_all(member.policies.iter().map(AsRef::as_ref), tool) {
                Ok(()) => return None,
                Err(denied) => {
                    first.get_or_insert(denied);
                }
            }
        }
        first
    }

    /// True when the group or any of its members has a `tools:` policy.
    pub(crate) fn has_policies(&self) -> bool {
        self.policy.is_some() || self.members.iter().any(|m| !m.policies.is_empty())
    }

    /// Which members a request of `tool` may go to by their tool lists:
    /// for each member, whether it lists the tool or has not listed its
    /// tools yet; `None` when the lists narrow nothing (no tool, every
    /// member may serve it, or none lists it: then the member called
    /// answers it its own way, as the one server the group stands for
    /// would).
    pub(crate) fn tool_narrowing(&self, tool: Option<&str>) -> Option<Vec<bool>> {
        let tool = tool?;
        let serves: Vec<bool> = (0..self.members.len())
            .map(|i| self.may_serve(i, Some(tool)))
            .collect();
        let some_lack = serves.iter().any(|s| !s);
        let some_serve = serves.iter().any(|s| *s);
        (some_lack && some_serve).then_some(serves)
    }

    /// True when every member has listed its tools and none lists `tool`.
    pub(crate) fn listed_nowhere(&self, tool: &str) -> bool {
        !self.members.is_empty()
            && self
                .members
                .iter()
                .all(|m| m.member.upstream().lists_tool(tool) == Some(false))
    }

    /// True when some member is known not to list `tool`, so a call of it
    /// has fewer members to go to than the group has in rotation.
    pub(crate) fn lacked_by_some(&self, tool: &str) -> bool {
        (0..self.members.len()).any(|i| !self.may_serve(i, Some(tool)))
    }

    /// The group's tools from the lists its members gave last, without
    /// those its policies hide.
    pub(crate) fn catalog(&self) -> Catalog {
        let mut catalog = self.catalog_with(Keep::Tools);
        if self.has_policies() {
            catalog.tools.retain(|tool| {
                let name = tool.get("name").and_then(Value::as_str).unwrap_or_default();
                self.denial(name).is_none()
                    && (0..self.members.len()).any(|i| {
                        self.admits(i, name)
                            && self.members[i].member.upstream().lists_tool(name) == Some(true)
                    })
            });
        }
        catalog
    }

    /// Where the members' tool lists disagree, for the health report.
    pub(crate) fn tool_warnings(&self) -> Vec<String> {
        self.catalog_with(Keep::WarningsOnly).warnings
    }

    fn catalog_with(&self, keep: Keep) -> Catalog {
        let lists: Vec<_> = self
            .members
            .iter()
            .map(|m| (m.member.id(), m.member.upstream().tools()))
            .collect();
        let known: Vec<(&str, &ToolList)> = lists
            .iter()
            .filter_map(|(id, list)| list.as_deref().map(|list| (*id, list)))
            .collect();
        catalog_of(&known, keep)
    }
}

/// What a [`Catalog`] is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// A `tools/list` answer: the definitions too.
    Tools,
    /// A report: the warnings only, without copying definitions.
    WarningsOnly,
}

/// [`Catalog`] of the members that have listed their tools, in config order.
fn catalog_of(members: &[(&str, &ToolList)], keep: Keep) -> Catalog {
    let mut catalog = Catalog::default();
    // Each tool of the union: its name and the member that defines it.
    let mut union: Vec<(&str, &str)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut warnings = Vec::new();
    for (first, list) in members {
        for tool in list.definitions() {
            let Some(name) = tool.get("name").and_then(Value::as_str) else {
                continue;
            };
            if !seen.insert(name) {
                continue;
            }
            union.push((name, first));
            if keep == Keep::Tools {
                catalog.tools.push(tool.clone());
            }
            let differing: Vec<&str> = members
                .iter()
                .filter(|(_, other)| other.get(name).is_some_and(|d| d != tool))
                .map(|(id, _)| *id)
                .collect();
            if !differing.is_empty() {
                warnings.push(format!(
                    "tool '{name}' is defined differently by {first} and {}",
                    differing.join(", ")
                ));
            }
        }
    }
    // One line per member that lacks tools: a member of another kind lacks
    // many, and one line each would bury the rest.
    let mut lacking_lines = Vec::new();
    for (id, list) in members {
        let lacking: Vec<&str> = union
            .iter()
            .filter(|(name, _)| !list.lists(name))
            .map(|(name, _)| *name)
            .collect();
        if lacking.is_empty() {
            continue;
        }
        catalog.names_differ = true;
        let mut named = lacking[..lacking.len().min(MAX_NAMES)].join(", ");
        if lacking.len() > MAX_NAMES {
            named.push_str(", …");
        }
        lacking_lines.push(format!(
            "{id} does not list {} of the group's {} tools: {named}",
            lacking.len(),
            union.len()
        ));
    }
    lacking_lines.append(&mut warnings);
    let mut warnings = lacking_lines;
    if warnings.len() > MAX_WARNINGS {
        let more = warnings.len() - MAX_WARNINGS;
        warnings.truncate(MAX_WARNINGS);
        warnings.push(format!("and {more} more"));
    }
    catalog.warnings = warnings;
    catalog
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn list(tools: &[Value]) -> ToolList {
        ToolList::new(tools.to_vec())
    }

    fn names(catalog: &Catalog) -> Vec<&str> {
        catalog
            .tools
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn members_that_agree_give_their_list_and_no_warning() {
        let tools = [json!({"name": "echo"}), json!({"name": "add"})];
        let (a, b) = (list(&tools), list(&tools));
        let catalog = catalog_of(&[("a", &a), ("b", &b)], Keep::Tools);
        assert_eq!(names(&catalog), ["echo", "add"]);
        assert!(!catalog.names_differ);
        assert!(catalog.warnings.is_empty());
    }

    #[test]
    fn the_union_names_each_tool_a_member_lacks() {
        let a = list(&[json!({"name": "echo"}), json!({"name": "add"})]);
        let b = list(&[json!({"name": "echo"}), json!({"name": "search"})]);
        let catalog = catalog_of(&[("a", &a), ("b", &b)], Keep::Tools);
        assert_eq!(names(&catalog), ["echo", "add", "search"]);
        assert!(catalog.names_differ);
        assert_eq!(
            catalog.warnings,
            [
                "a does not list 1 of the group's 3 tools: search",
                "b does not list 1 of the group's 3 tools: add"
            ]
        );
    }

    #[test]
    fn the_first_member_in_config_order_defines_a_tool_they_define_differently() {
        let a = list(&[json!({"name": "echo", "description": "v2"})]);
        let b = list(&[json!({"name": "echo", "description": "v1"})]);
        let c = list(&[json!({"name": "echo", "description": "v2"})]);
        let catalog = catalog_of(&[("a", &a), ("b", &b), ("c", &c)], Keep::Tools);
        assert_eq!(
            catalog.tools,
            [json!({"name": "echo", "description": "v2"})]
        );
        assert!(
            !catalog.names_differ,
            "the same names: one member's list is enough"
        );
        assert_eq!(
            catalog.warnings,
            ["tool 'echo' is defined differently by a and b"]
        );
    }

    #[test]
    fn a_member_that_lacks_many_tools_gets_one_line_and_the_list_is_cut() {
        let many: Vec<Value> = (0..20).map(|i| json!({"name": format!("t{i}")})).collect();
        let (a, b) = (list(&many), list(&[]));
        let catalog = catalog_of(&[("a", &a), ("b", &b)], Keep::Tools);
        assert_eq!(
            catalog.warnings,
            ["b does not list 20 of the group's 20 tools: t0, t1, t2, t3, t4, t5, t6, t7, …"]
        );
        let differing: Vec<Value> = (0..20)
            .map(|i| json!({"name": format!("t{i}"), "description": "other"}))
            .collect();
        let c = list(&differing);
        let catalog = catalog_of(&[("a", &a), ("c", &c)], Keep::WarningsOnly);
        assert!(catalog.tools.is_empty(), "a report copies no definitions");
        assert_eq!(catalog.warnings.len(), MAX_WARNINGS + 1);
        assert_eq!(catalog.warnings.last().unwrap(), "and 12 more");
    }
}
