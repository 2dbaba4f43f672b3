//! The `tool` labels of a table's calls (`metrics::MemberCalls`): the
//! members of a group count calls by the tools some member of the group
//! lists, and calls that name a server by the tools its copies list; any
//! other tool counts as `other`. Set when a table is built, and again on
//! the table in force whenever a member's probe finds its tool names
//! changed.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{Routes, RoutingTable};
use crate::metrics::{MAX_TOOL_LABELS, NO_TOOL, OTHER_TOOL};
use crate::route::member::Member;
use crate::upstream::ToolList;

impl RoutingTable {
    /// Gives the calls of every group member, and of every server named
    /// directly, the tool labels its members list now. Call with the
    /// routes' relabel lock held.
    pub(super) fn label_tools(&self) {
        for group in self.groups.values() {
            let lists = listed_by(group.members.iter().map(|m| &m.member));
            let tools = labels_of(&lists);
            for member in &group.members {
                member.metrics.label_tools(&tools);
            }
        }
        // A server's copies share its labels; a server with one member
        // has its own list.
        for copies in self.servers.values() {
            let lists = listed_by(copies.iter());
            let tools = labels_of(&lists);
            for copy in copies {
                copy.direct_metrics().label_tools(&tools);
            }
        }
    }
}

/// The tool lists `members` gave last.
fn listed_by<'a>(members: impl Iterator<Item = &'a Arc<Member>>) -> Vec<Arc<ToolList>> {
    members.filter_map(|m| m.listed_tools()).collect()
}

/// The distinct names of `lists`, in order, without the names of the
/// labels of their own, at most [`MAX_TOOL_LABELS`].
fn labels_of(lists: &[Arc<ToolList>]) -> Vec<&str> {
    let names: BTreeSet<&str> = lists.iter().flat_map(|list| list.names()).collect();
    names
        .into_iter()
        .filter(|name| *name != OTHER_TOOL && *name != NO_TOOL)
        .take(MAX_TOOL_LABELS)
        .collect()
}

impl Routes {
    /// Starts the task that relabels the table in force whenever a
    /// member's tool names change, once, on the first snapshot (members
    /// exist only from then on); it ends at shutdown. Outside a runtime
    /// (a table built in a plain test) labels change only with snapshots.
    pub(super) fn watch_tool_lists(&self) {
        self.watching_tools.call_once(|| {
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                return;
            };
            let table = self.table.clone();
            let relabel = self.relabel.clone();
            let changed = self.tools_changed.clone();
            let shutdown = self.shutdown.clone();
            runtime.spawn(async move {
                loop {
                    tokio::select! {
                        () = changed.notified() => {}
                        () = shutdown.cancelled() => return,
                    }
                    let _turn = relabel.lock();
                    table.load().label_tools();
                }
            });
        });
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn list(names: &[&str]) -> Arc<ToolList> {
        Arc::new(ToolList::new(
            names.iter().map(|n| json!({ "name": n })).collect(),
        ))
    }

    /// The union of the lists, each name once and sorted; the reserved
    /// label names are left to `other`.
    #[test]
    fn labels_are_the_union_without_reserved_names() {
        let lists = [list(&["b", "a", "other"]), list(&["c", "a", ""])];
        assert_eq!(labels_of(&lists), ["a", "b", "c"]);
    }

    /// A member listing more tools than the bound gives labels to the
    /// first of them by name only.
    #[test]
    fn labels_are_bounded() {
        let names: Vec<String> = (0..MAX_TOOL_LABELS + 10)
            .map(|i| format!("t{i:05}"))
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let lists = [list(&names)];
        let labels = labels_of(&lists);
        assert_eq!(labels.len(), MAX_TOOL_LABELS);
        assert_eq!(labels[0], "t00000");
    }
}
