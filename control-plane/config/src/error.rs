//! Located config errors.
//!
//! Loading reports every mistake in a file at once, so the error type is a
//! list ([`ConfigErrors`]) of positioned messages ([`ConfigError`]) rather
//! than a nested enum: callers print it, they do not branch on it.

use std::fmt;

/// One mistake in a config file, with where it is.
///
/// Displays as `config.yaml:14:9: mcp_servers.g.members[1].weight: must be at
/// least 1, got 0`. The `:line:column` part is left out when the line is 0
/// (position unknown, e.g. the file could not be read) and the `path: ` part
/// when the path is empty (e.g. a YAML syntax error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Name of the config source, usually the file path as given.
    pub source_name: String,
    /// 1-based line of the offending key or value; 0 when unknown.
    pub line: u32,
    /// 1-based column of the offending key or value; 0 when unknown.
    pub column: u32,
    /// Dotted field path such as `mcp_servers.my-mcp.endpoint`; empty for
    /// errors about the file as a whole.
    pub path: String,
    /// Lowercase description naming the bad value, with no final period.
    pub message: String,
}

/// Every error found in one config source, sorted by line and column.
///
/// Never empty when returned by [`crate::load`]. Displays one error per
/// line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

// === impl ConfigError ===

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source_name)?;
        if self.line != 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        f.write_str(": ")?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

// === impl ConfigErrors ===

impl ConfigErrors {
    /// Sorts by position; errors at the same position keep their order.
    pub(crate) fn sorted(mut errors: Vec<ConfigError>) -> Self {
        errors.sort_by_key(|e| (e.line, e.column));
        Self(errors)
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, err) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{err}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(err: ConfigError) -> Self {
        Self(vec![err])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(line: u32, path: &str) -> ConfigError {
        ConfigError {
            source_name: "config.yaml".into(),
            line,
            column: 9,
            path: path.into(),
            message: "must be at least 1, got 0".into(),
        }
    }

    #[test]
    fn display_omits_unknown_parts() {
        let full = err(14, "mcp_servers.g.members[1].weight");
        assert_eq!(
            full.to_string(),
            "config.yaml:14:9: mcp_servers.g.members[1].weight: must be at least 1, got 0"
        );
        assert_eq!(
            err(0, "a").to_string(),
            "config.yaml: a: must be at least 1, got 0"
        );
        assert_eq!(
            err(2, "").to_string(),
            "config.yaml:2:9: must be at least 1, got 0"
        );
    }

    #[test]
    fn errors_sort_by_position_and_print_one_per_line() {
        let errors = ConfigErrors::sorted(vec![err(3, "b"), err(1, "a")]);
        assert_eq!(
            errors.to_string(),
            "config.yaml:1:9: a: must be at least 1, got 0\nconfig.yaml:3:9: b: must be at least 1, got 0"
        );
    }
}
