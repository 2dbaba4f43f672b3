//! `tools:` access policies: which tools may be called through a server,
//! a group, or a group's entry for a member (MCP Hangar's scopes).
//!
//! A tool passes a policy when it matches a pattern of `allow_list` (if the
//! policy has one) and none of `deny_list`. Through a group, a tool is
//! available when the group's policy lets it pass and at least one member
//! (its server's policy and its entry's) does; calls go only to those
//! members. A denied call is refused before any member sees it, and denied
//! tools are left out of the group's `tools/list`.

use std::fmt;

use globset::{Glob, GlobSet, GlobSetBuilder};
use hangar_proto::v1;

/// One compiled policy, and where it comes from, for refusals.
#[derive(Debug)]
pub(crate) struct ToolPolicy {
    /// Where it sits, in words: `group 'g'`, `server 's'`, `group 'g''s
    /// member 's'`.
    on: String,
    allow: Option<Patterns>,
    deny: Patterns,
}

#[derive(Debug)]
struct Patterns {
    set: GlobSet,
    text: Vec<String>,
}

impl Patterns {
    /// The first pattern that matches `tool`.
    fn matching(&self, tool: &str) -> Option<&str> {
        self.set
            .matches(tool)
            .first()
            .map(|&i| self.text[i].as_str())
    }
}

/// Why a tool may not be called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Denial {
    /// The tool.
    pub(crate) tool: String,
    /// The policy that refused it, in words.
    pub(crate) by: String,
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tool not available for this mcp_server: '{}' is {}",
            self.tool, self.by
        )
    }
}

impl ToolPolicy {
    /// Compiles `policy`, which sits `on` (in words). Patterns were checked
    /// by the control plane; one that does not compile here matches
    /// nothing, which for `allow_list` denies rather than allows.
    pub(crate) fn of(on: String, policy: &v1::ToolPolicy) -> Self {
        Self {
            on,
            allow: policy.allow_given.then(|| patterns(&policy.allow)),
            deny: patterns(&policy.deny),
        }
    }

    /// Whether `tool` passes this policy.
    pub(crate) fn check(&self, tool: &str) -> Result<(), Denial> {
        if let Some(pattern) = self.deny.matching(tool) {
            return Err(Denial {
                tool: tool.to_owned(),
                by: format!("denied by tools.deny_list of {} ('{pattern}')", self.on),
            });
        }
        if let Some(allow) = &self.allow
            && allow.matching(tool).is_none()
        {
            return Err(Denial {
                tool: tool.to_owned(),
                by: format!("not in tools.allow_list of {}", self.on),
            });
        }
        Ok(())
    }
}

fn patterns(text: &[String]) -> Patterns {
    let mut set = GlobSetBuilder::new();
    let mut kept = Vec::with_capacity(text.len());
    for pattern in text {
        if let Ok(glob) = Glob::new(pattern) {
            set.add(glob);
            kept.push(pattern.clone());
        }
    }
    Patterns {
        set: set.build().unwrap_or_else(|_| GlobSet::empty()),
        text: kept,
    }
}

/// Checks `tool` against every policy of `policies`, the first refusal
/// winning.
pub(crate) fn check_all<'a>(
    policies: impl IntoIterator<Item = &'a ToolPolicy>,
    tool: &str,
) -> Result<(), Denial> {
    policies.into_iter().try_for_each(|p| p.check(tool))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: Option<&[&str]>, deny: &[&str]) -> ToolPolicy {
        let strings = |s: &[&str]| s.iter().map(|s| (*s).to_owned()).collect();
        ToolPolicy::of(
            "group 'g'".to_owned(),
            &v1::ToolPolicy {
                allow: allow.map(strings).unwrap_or_default(),
                allow_given: allow.is_some(),
                deny: strings(deny),
            },
        )
    }

    #[test]
    fn deny_wins_over_allow_and_allow_lists_what_passes() {
        let p = policy(Some(&["read_*", "list?"]), &["*_secret"]);
        assert_eq!(p.check("read_file"), Ok(()));
        assert_eq!(p.check("lists"), Ok(()));
        assert_eq!(
            p.check("read_secret").unwrap_err().to_string(),
            "Tool not available for this mcp_server: 'read_secret' is denied by tools.deny_list of group 'g' ('*_secret')"
        );
        assert_eq!(
            p.check("write_file").unwrap_err().by,
            "not in tools.allow_list of group 'g'"
        );
    }

    #[test]
    fn without_an_allow_list_everything_not_denied_passes() {
        let p = policy(None, &["delete_*", "drop"]);
        assert!(p.check("echo").is_ok());
        assert!(p.check("a/b/delete").is_ok());
        assert!(p.check("delete_all").is_err());
        assert!(p.check("drop").is_err());
        // An empty allow list, given, allows nothing.
        assert!(policy(Some(&[]), &[]).check("echo").is_err());
    }
}
