//! References in config values: `${NAME}`, `${NAME:-default}` and
//! `${file:PATH}`.
//!
//! The control plane only checks that a value parses; the data plane
//! resolves it against its own environment and files when it builds the
//! member. So an API key named as `${API_KEY}` never passes through the
//! control plane, its store, `hangarctl status` or any log: errors name the
//! variable or file, never a value.
//!
//! - `${NAME}`: the environment variable `NAME`; an error when unset.
//! - `${NAME:-default}`: `default` when `NAME` is unset or empty (as in a
//!   shell); `${NAME:-}` allows an empty value explicitly.
//! - `${file:PATH}`: the content of the file, without its trailing newline.
//! - `$$` is a literal `$`; a `$` not followed by `{` or `$` is literal too.

use std::fmt;
use std::path::{Path, PathBuf};

/// A parsed value with references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Env {
        name: String,
        default: Option<String>,
    },
    File(PathBuf),
}

/// Why a value does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at character {offset})")]
pub struct ParseError {
    /// Character offset of the problem in the value.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

/// Why a reference could not be resolved. Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// `${NAME}` without a default and `NAME` unset.
    #[error("environment variable {0} is not set")]
    Unset(String),
    /// `${file:PATH}` could not be read.
    #[error("cannot read {}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
}

/// Why a value could not be turned into text: it does not parse, or a
/// reference cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The value is not a valid template.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// A reference could not be resolved.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
}

/// Parses `text` and resolves it against `lookup` in one step, for values
/// that are used once (as the data plane does when it builds a member).
pub fn resolve(text: &str, lookup: &impl Lookup) -> Result<String, Error> {
    Ok(Template::parse(text)?.resolve(lookup)?)
}

/// Where references are looked up; [`System`] in production, maps in tests.
pub trait Lookup {
    /// The environment variable `name`, if set (and valid UTF-8).
    fn var(&self, name: &str) -> Option<String>;
    /// The content of `path`.
    fn read(&self, path: &Path) -> std::io::Result<String>;
}

/// The process environment and file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct System;

impl Lookup for System {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn read(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }
}

// === impl Template ===

impl Template {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        let mut offset = 0;
        while let Some((i, c)) = chars.next() {
            offset += 1;
            if c != '$' {
                literal.push(c);
                continue;
            }
            match chars.peek() {
                Some((_, '$')) => {
                    chars.next();
                    offset += 1;
                    literal.push('$');
                }
                Some((_, '{')) => {
                    let start = offset - 1;
                    let rest = &text[i + 2..];
                    let Some(end) = rest.find('}') else {
                        return Err(ParseError {
                            offset: start,
                            message: "unclosed '${' (missing '}')".to_owned(),
                        });
                    };
                    let body = &rest[..end];
                    let part = reference(body).map_err(|message| ParseError {
                        offset: start,
                        message,
                    })?;
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(part);
                    // Skip '{', the body and '}'.
                    let skip = 2 + body.chars().count();
                    for _ in 0..skip {
                        chars.next();
                    }
                    offset += skip;
                }
                _ => literal.push('$'),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Self { parts })
    }

    /// Whether the value has no references (it is what it says).
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// The value with every reference replaced.
    pub fn resolve(&self, lookup: &impl Lookup) -> Result<String, ResolveError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Env { name, default } => match (lookup.var(name), default) {
                    (Some(value), Some(default)) if value.is_empty() => out.push_str(default),
                    (Some(value), _) => out.push_str(&value),
                    (None, Some(default)) => out.push_str(default),
                    (None, None) => return Err(ResolveError::Unset(name.clone())),
                },
                Part::File(path) => {
                    let content = lookup.read(path).map_err(|err| ResolveError::File {
                        path: path.clone(),
                        reason: err.to_string(),
                    })?;
                    out.push_str(strip_newline(&content));
                }
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Template {
    /// The value as written (references unresolved), for round trips.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Literal(text) => f.write_str(&text.replace('$', "$$"))?,
                Part::Env {
                    name,
                    default: None,
                } => write!(f, "${{{name}}}")?,
                Part::Env {
                    name,
                    default: Some(default),
                } => write!(f, "${{{name}:-{default}}}")?,
                Part::File(path) => write!(f, "${{file:{}}}", path.display())?,
            }
        }
        Ok(())
    }
}

/// The part named by the text between `${` and `}`.
fn reference(body: &str) -> Result<Part, String> {
    if let Some(path) = body.strip_prefix("file:") {
        if path.is_empty() {
            return Err("'${file:}' needs a path".to_owned());
        }
        return Ok(Part::File(PathBuf::from(path)));
    }
    let (name, default) = match body.split_once(":-") {
        Some((name, default)) => (name, Some(default.to_owned())),
        None => (body, None),
    };
    if !is_var_name(name) {
        return Err(format!(
            "'${{{body}}}' is not a reference: expected ${{NAME}}, ${{NAME:-default}} or ${{file:PATH}} \
             (write $$ for a literal $)"
        ));
    }
    Ok(Part::Env {
        name: name.to_owned(),
        default,
    })
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Secret files usually end with one newline that is not part of the secret.
fn strip_newline(content: &str) -> &str {
    content
        .strip_suffix("\r\n")
        .or_else(|| content.strip_suffix('\n'))
        .unwrap_or(content)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    struct Fake {
        vars: HashMap<&'static str, &'static str>,
        files: HashMap<&'static str, &'static str>,
    }

    impl Lookup for Fake {
        fn var(&self, name: &str) -> Option<String> {
            self.vars.get(name).map(|v| (*v).to_owned())
        }

        fn read(&self, path: &Path) -> std::io::Result<String> {
            self.files
                .get(path.to_str().unwrap())
                .map(|v| (*v).to_owned())
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
        }
    }

    fn fake() -> Fake {
        Fake {
            vars: HashMap::from([("API_KEY", "k-123"), ("EMPTY", "")]),
            files: HashMap::from([("/run/secrets/token", "t-456\n")]),
        }
    }

    fn resolve(text: &str) -> Result<String, ResolveError> {
        Template::parse(text).unwrap().resolve(&fake())
    }

    #[test]
    fn references_resolve_against_the_environment_and_files() {
        assert_eq!(resolve("Bearer ${API_KEY}").unwrap(), "Bearer k-123");
        assert_eq!(resolve("${file:/run/secrets/token}").unwrap(), "t-456");
        assert_eq!(resolve("${MISSING:-fallback}").unwrap(), "fallback");
        assert_eq!(resolve("${EMPTY:-fallback}").unwrap(), "fallback");
        assert_eq!(resolve("${MISSING:-}").unwrap(), "");
        assert_eq!(resolve("a$b $$ $${API_KEY}").unwrap(), "a$b $ ${API_KEY}");
        assert!(Template::parse("plain").unwrap().is_literal());
        assert!(!Template::parse("${API_KEY}").unwrap().is_literal());
    }

    #[test]
    fn failures_name_the_reference_never_a_value() {
        assert_eq!(
            resolve("${MISSING}").unwrap_err().to_string(),
            "environment variable MISSING is not set"
        );
        let err = resolve("${file:/nope}").unwrap_err().to_string();
        assert!(err.starts_with("cannot read /nope: "), "{err}");
    }

    #[test]
    fn malformed_references_are_refused_with_their_position() {
        let err = Template::parse("x ${API_KEY").unwrap_err();
        assert_eq!(
            (err.offset, err.message.as_str()),
            (2, "unclosed '${' (missing '}')")
        );
        let err = Template::parse("${1X}").unwrap_err();
        assert!(err.message.contains("is not a reference"), "{err}");
        assert!(Template::parse("${file:}").is_err());
        assert!(Template::parse("${}").is_err());
    }

    proptest! {
        /// Parsing never panics, and whatever parses prints back to a text
        /// that parses to the same template.
        #[test]
        fn parse_round_trips(text in "\\PC{0,40}") {
            if let Ok(template) = Template::parse(&text) {
                let again = Template::parse(&template.to_string()).unwrap();
                prop_assert_eq!(again, template);
            }
        }
    }
}
