//! Step 1 of loading: YAML text to an untyped [`Node`] tree (syntax only).
//!
//! serde_norway resolves scalars (YAML 1.2 core schema: `10` is an integer,
//! `"10"` a string), aliases and the repetition limits. We deserialize into
//! our own tree rather than `serde_norway::Value` because `Value` rejects a
//! repeated mapping key as a fatal error; keeping every entry lets
//! validation report duplicates together with all other mistakes.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess};

use crate::error::ConfigError;
use crate::locate;

/// One YAML node with its scalar type resolved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    /// Wide enough for every YAML integer serde_norway produces.
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in file order, repeated keys included.
    Map(Vec<(Node, Node)>),
    /// A value with a local tag such as `!env FOO`; never valid here.
    Tagged(String, Box<Node>),
}

/// Parses `text` into a tree, or returns the one syntax error.
pub(crate) fn parse(source_name: &str, text: &str) -> Result<Node, ConfigError> {
    serde_norway::from_str(text).map_err(|err| syntax_error(source_name, text, &err))
}

fn syntax_error(source_name: &str, text: &str, err: &serde_norway::Error) -> ConfigError {
    let mut message = err.to_string();
    let (line, column) = match err.location() {
        Some(loc) => {
            // The message repeats the location we report separately.
            let suffix = format!(" at line {} column {}", loc.line(), loc.column());
            message = message.replacen(&suffix, "", 1);
            let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
            (clamp(loc.line()), clamp(loc.column()))
        }
        None => {
            let pos = locate::syntax_error_pos(text);
            (pos.line, pos.column)
        }
    };
    // libyaml's words for a tab say nothing of tabs.
    let tabbed = usize::try_from(line)
        .ok()
        .and_then(|l| text.lines().nth(l.saturating_sub(1)))
        .is_some_and(|l| {
            l.chars()
                .take_while(|c| c.is_whitespace())
                .any(|c| c == '\t')
        });
    if tabbed {
        message =
            format!("tabs are not allowed for indentation in YAML; indent with spaces ({message})");
    }
    ConfigError {
        source_name: source_name.to_owned(),
        line,
        column,
        path: String::new(),
        message: format!("invalid YAML: {message}"),
    }
}

// === impl Node ===

impl Node {
    /// How the value reads in an error message: `string 'lots'`, `a list`.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Null => "null".to_owned(),
            Self::Bool(b) => format!("boolean {b}"),
            Self::Int(n) => format!("integer {n}"),
            Self::Float(x) => format!("number {x:?}"),
            Self::Str(s) => format!("string '{s}'"),
            Self::Seq(_) => "a list".to_owned(),
            Self::Map(_) => "a mapping".to_owned(),
            Self::Tagged(tag, _) => format!("tagged value '!{tag}'"),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> de::Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Int(v.into()))
    }

    fn visit_i128<E>(self, v: i128) -> Result<Node, E> {
        Ok(Node::Int(v))
    }

    fn visit_u128<E>(self, v: u128) -> Result<Node, E> {
        // Anything above i128::MAX is out of range for every field anyway.
        Ok(Node::Int(i128::try_from(v).unwrap_or(i128::MAX)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        Node::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Node::Map(entries))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Node, A::Error> {
        let (tag, value): (String, _) = data.variant()?;
        let inner: Node = value.newtype_variant()?;
        Ok(Node::Tagged(tag, Box::new(inner)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(text: &str) -> Node {
        parse("t.yaml", text).expect("valid yaml")
    }

    #[test]
    fn resolves_scalars_like_yaml_1_2() {
        let text = "a: 10\nb: '10'\nc: 1.5\nd: true\ne: yes\nf: ~\ng: -3\n";
        let Node::Map(entries) = node(text) else {
            panic!("not a map")
        };
        let values: Vec<Node> = entries.into_iter().map(|(_, v)| v).collect();
        assert_eq!(
            values,
            [
                Node::Int(10),
                Node::Str("10".into()),
                Node::Float(1.5),
                Node::Bool(true),
                Node::Str("yes".into()),
                Node::Null,
                Node::Int(-3),
            ]
        );
    }

    #[test]
    fn keeps_repeated_keys() {
        let Node::Map(entries) = node("a: 1\na: 2\n") else {
            panic!("not a map")
        };
        assert_eq!(entries.len(), 2);
    }

    #[test]
    fn keeps_local_tags() {
        let got = node("a: !env FOO\n");
        let want = Node::Map(vec![(
            Node::Str("a".into()),
            Node::Tagged("env".into(), Box::new(Node::Str("FOO".into()))),
        )]);
        assert_eq!(got, want);
    }

    #[test]
    fn empty_text_is_null() {
        assert_eq!(node(""), Node::Null);
    }

    /// serde_norway gives no position for a second document; it is found
    /// with yaml-rust2 instead (found by the loader's property tests).
    #[test]
    fn second_document_is_located() {
        for (text, line) in [("\"\"0 ", 1), ("?a #\n,", 2), ("a: 1\n---\nb: 2\n", 2)] {
            let err = parse("t.yaml", text).expect_err("two documents");
            assert!(err.line == line && err.column >= 1, "{text:?}: {err}");
        }
    }

    #[test]
    fn a_tab_is_named() {
        let err = parse("t.yaml", "mcp_servers:\n\ta:\n    mode: remote\n").expect_err("tab");
        assert_eq!((err.line, err.column), (2, 1));
        assert!(
            err.message.starts_with(
                "invalid YAML: tabs are not allowed for indentation in YAML; indent with spaces"
            ),
            "{}",
            err.message
        );
    }

    #[test]
    fn syntax_error_has_location() {
        let err = parse("t.yaml", "a:\n  b: [1, 2\n").expect_err("unterminated flow");
        assert_eq!(err.line, 3);
        assert!(err.message.starts_with("invalid YAML: "), "{}", err.message);
        assert!(!err.message.contains(" at line 3 "), "{}", err.message);
    }
}
