//! Reading [`Node`]s: mappings with a fixed set of keys, and typed leaves.
//!
//! Every reader reports its own mistakes into [`Ctx`] and returns `None` for
//! a value it rejected, so callers evaluate all fields before combining them
//! and one bad field never hides another.

use std::collections::HashMap;
use std::time::Duration;

use hangar_template::Template;

use crate::error::ConfigError;
use crate::locate::{Index, Path, Pos};
use crate::parse::Node;

/// Collects errors, each placed with the [`Index`].
#[derive(Debug)]
pub(super) struct Ctx<'a> {
    source_name: &'a str,
    index: &'a Index,
    pub(super) errors: Vec<ConfigError>,
}

/// The keys one kind of mapping accepts.
#[derive(Debug)]
pub(super) struct Keys {
    pub(super) known: &'static [&'static str],
    /// MCP Hangar keys Hangar does not implement yet: named as such rather
    /// than as typos.
    pub(super) unsupported: &'static [&'static str],
    /// Appended to the "not supported yet" message.
    pub(super) hint: &'static str,
}

/// Server keys of one mode, named as such when they appear elsewhere (a
/// `replicas` on a remote server is misplaced, not a typo).
const OTHER_MODES: &[(&str, &str)] = &[
    ("replicas", "subprocess"),
    ("command", "subprocess"),
    ("args", "subprocess"),
    ("env", "subprocess"),
    ("cwd", "subprocess"),
    ("endpoint", "remote"),
    ("headers", "remote"),
    ("auth", "remote"),
    ("tls", "remote"),
    ("http", "remote"),
    ("members", "group"),
    ("strategy", "group"),
    ("min_healthy", "group"),
    ("circuit_breaker", "group"),
    ("outlier_detection", "group"),
    ("session_recovery", "group"),
];

/// A mapping's entries with unique string keys, in file order.
#[derive(Debug)]
pub(super) struct Fields<'n> {
    pub(super) path: Path,
    pub(super) entries: Vec<(&'n str, &'n Node)>,
}

impl<'n> Fields<'n> {
    /// The value under `key`, if present.
    pub(super) fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }
}

// === impl Ctx ===

impl<'a> Ctx<'a> {
    pub(super) fn new(source_name: &'a str, index: &'a Index) -> Self {
        Self {
            source_name,
            index,
            errors: Vec::new(),
        }
    }

    /// Reports a bad value, placed at the value.
    pub(super) fn at_value(&mut self, path: &Path, message: impl Into<String>) {
        let pos = self.index.value(path);
        self.push(pos, path, message.into());
    }

    /// Reports a bad or missing key, placed at the key (for a sequence item,
    /// at the item).
    pub(super) fn at_key(&mut self, path: &Path, message: impl Into<String>) {
        let pos = self.index.key(path, 0);
        self.push(pos, path, message.into());
    }

    fn push(&mut self, pos: Pos, path: &Path, message: String) {
        self.errors.push(ConfigError {
            source_name: self.source_name.to_owned(),
            line: pos.line,
            column: pos.column,
            path: path.to_string(),
            message,
        });
    }

    /// Placed at the key when the value is null: an empty value has no
    /// position of its own worth showing.
    pub(super) fn wrong_type(&mut self, path: &Path, expected: &str, node: &Node) {
        let message = format!("expected {expected}, got {}", node.describe());
        match node {
            Node::Null => self.at_key(path, message),
            _ => self.at_value(path, message),
        }
    }

    /// The entries of a mapping at `path`. Non-string keys and repeated keys
    /// are reported and dropped (the first occurrence of a key wins).
    pub(super) fn entries<'n>(&mut self, path: &Path, node: &'n Node) -> Option<Fields<'n>> {
        let Node::Map(pairs) = node else {
            self.wrong_type(path, "a mapping", node);
            return None;
        };
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let mut entries = Vec::with_capacity(pairs.len());
        for (key, value) in pairs {
            let Node::Str(key) = key else {
                let found = key.describe();
                self.at_key(
                    &path.key(&scalar_text(key)),
                    format!("expected a string key, got {found}"),
                );
                continue;
            };
            let count = seen.entry(key).or_default();
            *count += 1;
            if *count > 1 {
                self.duplicate(&path.key(key), *count - 1, key);
                continue;
            }
            entries.push((key.as_str(), value));
        }
        let path = path.clone();
        Some(Fields { path, entries })
    }

    fn duplicate(&mut self, path: &Path, occurrence: usize, key: &str) {
        let first = self.index.key(path, 0);
        let pos = self.index.key(path, occurrence);
        let message = match first.line {
            0 => format!("duplicate key '{key}'"),
            line => format!("duplicate key '{key}' (first on line {line})"),
        };
        self.push(pos, path, message);
    }

    /// Keeps the entries named in `keys.known` and reports the others.
    pub(super) fn check_keys<'n>(&mut self, fields: Fields<'n>, keys: &Keys) -> Fields<'n> {
        let Fields { path, entries } = fields;
        let mut known = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            if keys.known.contains(&key) {
                known.push((key, value));
            } else if keys.unsupported.contains(&key) {
                let hint = keys.hint;
                self.at_key(
                    &path.key(key),
                    format!("key '{key}' is not supported yet{hint}"),
                );
            } else {
                let expected = match keys.known {
                    [one] => (*one).to_owned(),
                    many => format!("one of: {}", many.join(", ")),
                };
                let message = match OTHER_MODES.iter().find(|(k, _)| *k == key) {
                    Some((_, mode)) => format!(
                        "key '{key}' applies to mode: {mode} servers, not here (expected {expected})"
                    ),
                    None => format!("unknown key '{key}' (expected {expected})"),
                };
                self.at_key(&path.key(key), message);
            }
        }
        Fields {
            path,
            entries: known,
        }
    }

    /// [`Ctx::entries`] then [`Ctx::check_keys`].
    pub(super) fn mapping<'n>(
        &mut self,
        path: &Path,
        node: &'n Node,
        keys: &Keys,
    ) -> Option<Fields<'n>> {
        let fields = self.entries(path, node)?;
        Some(self.check_keys(fields, keys))
    }

    /// The value under a required `key`; a missing key is reported at the
    /// mapping's own key.
    pub(super) fn required<'n>(&mut self, fields: &Fields<'n>, key: &str) -> Option<&'n Node> {
        let value = fields.get(key);
        if value.is_none() {
            self.at_key(&fields.path, format!("missing required key '{key}'"));
        }
        value
    }

    /// Reads an optional `key` with `read`: `Some(None)` when absent,
    /// `None` when present but rejected.
    pub(super) fn optional<'n, T>(
        &mut self,
        fields: &Fields<'n>,
        key: &str,
        read: impl FnOnce(&mut Self, &Path, &'n Node) -> Option<T>,
    ) -> Option<Option<T>> {
        match fields.get(key) {
            None => Some(None),
            Some(node) => read(self, &fields.path.key(key), node).map(Some),
        }
    }

    pub(super) fn string(&mut self, path: &Path, node: &Node) -> Option<String> {
        match node {
            Node::Str(s) => Some(s.clone()),
            _ => {
                self.wrong_type(path, "a string", node);
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, path: &Path, node: &Node) -> Option<bool> {
        match node {
            Node::Bool(b) => Some(*b),
            _ => {
                self.wrong_type(path, "true or false", node);
                None
            }
        }
    }

    /// A string that may hold `${...}` references.
    pub(super) fn template(&mut self, path: &Path, node: &Node) -> Option<Template> {
        let text = self.scalar_string(path, node)?;
        match Template::parse(&text) {
            Ok(template) => Some(template),
            Err(err) => {
                self.at_value(path, err.to_string());
                None
            }
        }
    }

    /// A string, or a number or boolean read as the text it was written as
    /// (`PYTHONUNBUFFERED: 1` means "1").
    pub(super) fn scalar_string(&mut self, path: &Path, node: &Node) -> Option<String> {
        match node {
            Node::Str(s) => Some(s.clone()),
            Node::Int(_) | Node::Float(_) | Node::Bool(_) => Some(scalar_text(node)),
            _ => {
                self.wrong_type(path, "a string", node);
                None
            }
        }
    }

    /// A list of strings.
    pub(super) fn string_list(&mut self, path: &Path, node: &Node) -> Option<Vec<String>> {
        let Node::Seq(items) = node else {
            self.wrong_type(path, "a list of strings", node);
            return None;
        };
        let mut out = Some(Vec::with_capacity(items.len()));
        for (i, item) in items.iter().enumerate() {
            match (self.scalar_string(&path.index(i), item), &mut out) {
                (Some(item), Some(out)) => out.push(item),
                _ => out = None,
            }
        }
        out
    }

    /// A mapping of names to values that may hold references (headers,
    /// environment), in file order.
    pub(super) fn template_map(
        &mut self,
        path: &Path,
        node: &Node,
    ) -> Option<Vec<(String, Template)>> {
        let fields = self.entries(path, node)?;
        let mut out = Some(Vec::with_capacity(fields.entries.len()));
        for (name, value) in &fields.entries {
            match (self.template(&path.key(name), value), &mut out) {
                (Some(value), Some(out)) => out.push(((*name).to_owned(), value)),
                _ => out = None,
            }
        }
        out
    }

    /// An integer in `min..=u32::MAX`.
    pub(super) fn uint(&mut self, path: &Path, node: &Node, min: u32) -> Option<u32> {
        let n = self.integer(path, node)?;
        if n < i128::from(min) {
            self.at_value(path, format!("must be at least {min}, got {n}"));
            return None;
        }
        let n = u32::try_from(n).ok();
        if n.is_none() {
            self.at_value(
                path,
                format!("must be at most {}, got {}", u32::MAX, int_text(node)),
            );
        }
        n
    }

    /// Any `i32`.
    pub(super) fn int32(&mut self, path: &Path, node: &Node) -> Option<i32> {
        let n = i32::try_from(self.integer(path, node)?).ok();
        if n.is_none() {
            let (lo, hi) = (i32::MIN, i32::MAX);
            self.at_value(
                path,
                format!("must be between {lo} and {hi}, got {}", int_text(node)),
            );
        }
        n
    }

    fn integer(&mut self, path: &Path, node: &Node) -> Option<i128> {
        match node {
            Node::Int(n) => Some(*n),
            _ => {
                self.wrong_type(path, "an integer", node);
                None
            }
        }
    }

    /// A positive whole or fractional number of seconds.
    pub(super) fn seconds(&mut self, path: &Path, node: &Node) -> Option<Duration> {
        let secs = match node {
            Node::Int(n) => *n as f64,
            Node::Float(x) => *x,
            _ => {
                self.wrong_type(path, "a number of seconds", node);
                return None;
            }
        };
        let shown = match node {
            Node::Int(n) => n.to_string(),
            _ => format!("{secs:?}"),
        };
        if secs.is_nan() || secs <= 0.0 {
            self.at_value(path, format!("must be greater than 0, got {shown}"));
            return None;
        }
        let duration = Duration::try_from_secs_f64(secs).ok();
        if duration.is_none() {
            self.at_value(path, format!("is too large, got {shown}"));
        }
        duration
    }

    /// A number of seconds where 0 is allowed and means `zero_means`
    /// (said in the error for a negative value).
    pub(super) fn seconds_or_zero(
        &mut self,
        path: &Path,
        node: &Node,
        zero_means: &str,
    ) -> Option<Duration> {
        match node {
            Node::Int(0) => Some(Duration::ZERO),
            Node::Float(x) if *x == 0.0 => Some(Duration::ZERO),
            Node::Int(i) if *i < 0 => {
                self.at_value(path, format!("must be 0 ({zero_means}) or more, got {i}"));
                None
            }
            Node::Float(x) if *x < 0.0 => {
                self.at_value(path, format!("must be 0 ({zero_means}) or more, got {x}"));
                None
            }
            _ => self.seconds(path, node),
        }
    }
}

fn int_text(node: &Node) -> String {
    match node {
        Node::Int(n) => n.to_string(),
        other => other.describe(),
    }
}

/// A scalar key as written (near enough to find it in the index).
fn scalar_text(node: &Node) -> String {
    match node {
        Node::Null => "null".to_owned(),
        Node::Bool(b) => b.to_string(),
        Node::Int(n) => n.to_string(),
        Node::Float(x) => x.to_string(),
        Node::Str(s) => s.clone(),
        Node::Seq(_) | Node::Map(_) | Node::Tagged(..) => String::new(),
    }
}
