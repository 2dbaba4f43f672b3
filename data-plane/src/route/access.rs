//! Who a request speaks for, and the `access:` rules of what they may
//! call.
//!
//! A rule speaks of a caller whose principal matches one of its
//! `principals` patterns or who holds one of its `roles`, and allows
//! `<server or group>/<tool>` patterns. Once any rule exists, a caller may
//! call only what a rule speaking of it allows: a tool no rule allows is
//! left out of `tools/list` and refused on call, before any member or rate
//! limit sees it. Callers without a credential are `anonymous`; the user of
//! a `--stdio` data plane spawned it, holds its config and cache, and is
//! not held to the rules.

use std::fmt;
use std::sync::Arc;

use globset::{Glob, GlobMatcher, GlobSet, GlobSetBuilder};
use hangar_proto::v1;

use crate::route::policy::Denial;

/// The name rules use for callers without a credential.
pub(crate) const ANONYMOUS: &str = "anonymous";

/// The principal an authenticated request speaks for, in its extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Principal {
    /// `service:my-app`, a token's `sub`, ...
    pub(crate) name: Arc<str>,
    /// Roles from a bearer token's roles claim (API keys have none).
    pub(crate) roles: Arc<[Arc<str>]>,
}

impl Principal {
    pub(crate) fn new(name: &str, roles: Vec<String>) -> Self {
        Self {
            name: Arc::from(name),
            roles: roles.into_iter().map(Arc::from).collect(),
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Who is calling, as the rules see it.
#[derive(Debug, Clone)]
pub(crate) enum Who {
    /// The user of a `--stdio` data plane.
    Local,
    /// A network client without a credential.
    Anonymous,
    /// An authenticated client.
    Principal(Principal),
}

impl Who {
    /// A network client, authenticated or not.
    pub(crate) fn of(principal: Option<&Principal>) -> Self {
        principal.map_or(Self::Anonymous, |p| Self::Principal(p.clone()))
    }

    /// How logs name the caller.
    pub(crate) fn name(&self) -> &str {
        match self {
            Self::Local => "stdio",
            Self::Anonymous => ANONYMOUS,
            Self::Principal(p) => &p.name,
        }
    }

    /// The authenticated principal's name, if any.
    pub(crate) fn principal(&self) -> Option<&str> {
        match self {
            Self::Principal(p) => Some(&p.name),
            _ => None,
        }
    }
}

/// The compiled `access:` rules; empty: every caller may call anything.
#[derive(Debug, Default)]
pub(crate) struct AccessRules {
    rules: Vec<Rule>,
}

#[derive(Debug)]
struct Rule {
    principals: GlobSet,
    roles: Vec<String>,
    /// `(target, tool)` matchers of each `allow` pattern.
    allow: Vec<(GlobMatcher, GlobMatcher)>,
}

impl AccessRules {
    /// Compiles the snapshot's rules. Patterns were checked by the control
    /// plane; one that does not compile here matches nothing, which denies
    /// rather than allows.
    pub(crate) fn compile(rules: &[v1::AccessRule]) -> Self {
        Self {
            rules: rules.iter().map(Rule::compile).collect(),
        }
    }

    /// Whether any rule exists (then unnamed calls are denied).
    pub(crate) fn any(&self) -> bool {
        !self.rules.is_empty()
    }

    /// Whether `who` may call some tool through `target`: a caller who may
    /// call none has no business with its endpoint at all.
    pub(crate) fn may_use(&self, who: &Who, target: &str) -> bool {
        !self.any()
            || matches!(who, Who::Local)
            || self
                .rules
                .iter()
                .filter(|rule| rule.speaks_of(who))
                .any(|rule| rule.allow.iter().any(|(t, _)| t.is_match(target)))
    }

    /// Whether `who` may call `tool` through `target` (a server or group).
    pub(crate) fn check(&self, who: &Who, target: &str, tool: &str) -> Result<(), Denial> {
        if !self.any() || matches!(who, Who::Local) {
            return Ok(());
        }
        let allowed = self
            .rules
            .iter()
            .filter(|rule| rule.speaks_of(who))
            .any(|rule| rule.allows(target, tool));
        if allowed {
            return Ok(());
        }
        Err(Denial {
            tool: tool.to_owned(),
            by: format!(
                "not allowed to {} '{}' by any access rule (for '{target}/{tool}')",
                match who {
                    Who::Principal(_) => "principal",
                    _ => "caller",
                },
                who.name()
            ),
        })
    }
}

impl Rule {
    fn compile(rule: &v1::AccessRule) -> Self {
        let mut principals = GlobSetBuilder::new();
        for pattern in &rule.principals {
            if let Ok(glob) = Glob::new(pattern) {
                principals.add(glob);
            }
        }
        Self {
            principals: principals.build().unwrap_or_else(|_| GlobSet::empty()),
            roles: rule.roles.clone(),
            allow: rule
                .allow
                .iter()
                .filter_map(|pattern| {
                    let (target, tool) = pattern.split_once('/')?;
                    Some((
                        Glob::new(target).ok()?.compile_matcher(),
                        Glob::new(tool).ok()?.compile_matcher(),
                    ))
                })
                .collect(),
        }
    }

    fn speaks_of(&self, who: &Who) -> bool {
        match who {
            Who::Local => true,
            Who::Anonymous => self.principals.is_match(ANONYMOUS),
            Who::Principal(p) => {
                self.principals.is_match(&*p.name)
                    || p.roles
                        .iter()
                        .any(|r| self.roles.iter().any(|ours| **r == **ours))
            }
        }
    }

    fn allows(&self, target: &str, tool: &str) -> bool {
        self.allow
            .iter()
            .any(|(t, name)| t.is_match(target) && name.is_match(tool))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> AccessRules {
        AccessRules::compile(&[
            v1::AccessRule {
                principals: vec!["service:*".into()],
                roles: vec![],
                allow: vec!["math/add".into()],
            },
            v1::AccessRule {
                principals: vec![],
                roles: vec!["admin".into()],
                allow: vec!["*/*".into()],
            },
            v1::AccessRule {
                principals: vec!["anonymous".into()],
                roles: vec![],
                allow: vec!["math/read_*".into()],
            },
        ])
    }

    #[test]
    fn callers_get_what_the_rules_speaking_of_them_allow_and_nothing_else() {
        let rules = rules();
        let ci = Principal::new("service:ci", vec![]);
        let admin = Principal::new("user:ann", vec!["admin".into()]);
        let bob = Principal::new("user:bob", vec!["viewer".into()]);
        assert!(
            rules
                .check(&Who::Principal(ci.clone()), "math", "add")
                .is_ok()
        );
        let denied = rules
            .check(&Who::Principal(ci.clone()), "math", "sub")
            .unwrap_err();
        assert_eq!(
            denied.to_string(),
            "Tool not available for this mcp_server: 'sub' is not allowed to principal 'service:ci' by any access rule (for 'math/sub')"
        );
        assert!(
            rules
                .check(&Who::Principal(ci.clone()), "fetch", "add")
                .is_err()
        );
        assert!(
            rules
                .check(&Who::Principal(admin.clone()), "fetch", "get")
                .is_ok()
        );
        assert!(
            rules
                .check(&Who::Principal(bob.clone()), "math", "add")
                .is_err()
        );
        assert!(rules.check(&Who::Anonymous, "math", "read_file").is_ok());
        assert!(rules.check(&Who::Anonymous, "math", "add").is_err());
        assert!(rules.check(&Who::Local, "anything", "at_all").is_ok());
        assert!(rules.may_use(&Who::Principal(ci.clone()), "math"));
        assert!(!rules.may_use(&Who::Principal(ci), "fetch"));
        assert!(!rules.may_use(&Who::Principal(bob), "math"));
    }

    #[test]
    fn without_rules_everyone_may_call_everything() {
        let none = AccessRules::default();
        assert!(none.check(&Who::Anonymous, "math", "add").is_ok());
    }
}
