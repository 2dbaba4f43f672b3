//! The ids of limits, shared by the data plane (reports, metrics), the
//! control plane (shares, status) and `hangarctl`: one spelling in one
//! place.

/// The top-level `rate_limit:` of a config.
pub const TOP: &str = "all";
/// `MCP_RATE_LIMIT_RPS` of one data plane.
pub const ENV: &str = "env";

/// What a limit sits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On {
    /// A group (`mode: group`).
    Group,
    /// A server (`mode: remote` or `subprocess`).
    Server,
}

impl On {
    fn as_str(self) -> &'static str {
        match self {
            Self::Group => "group",
            Self::Server => "server",
        }
    }
}

/// The id of the limit of `target` (`group/G`), or of its tool `tool`
/// (`group/G/tool/T`).
pub fn of(on: On, target: &str, tool: Option<&str>) -> String {
    match tool {
        Some(tool) => format!("{}/{target}/tool/{tool}", on.as_str()),
        None => format!("{}/{target}", on.as_str()),
    }
}

/// The limit `id` in words, as refusals and status name it.
pub fn label(id: &str) -> String {
    match id {
        TOP => "every tool call".to_owned(),
        ENV => "this data plane (MCP_RATE_LIMIT_RPS)".to_owned(),
        _ => {
            let mut parts = id.splitn(4, '/');
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some(kind), Some(target), Some("tool"), Some(tool)) => {
                    format!("tool '{tool}' of {kind} '{target}'")
                }
                (Some(kind), Some(target), None, None) => format!("{kind} '{target}'"),
                _ => id.to_owned(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_back_as_words() {
        assert_eq!(label(&of(On::Group, "g", None)), "group 'g'");
        assert_eq!(
            label(&of(On::Server, "s", Some("x/y"))),
            "tool 'x/y' of server 's'"
        );
        assert_eq!(label(TOP), "every tool call");
    }
}
