//! Source locations for config fields.
//!
//! serde keeps no spans, so a second, event-level pass over the same text
//! (yaml-rust2) records where every mapping key and value starts, keyed by the
//! field path that validation also builds. Validation then asks the [`Index`]
//! for the line and column of the node it complains about.

use std::collections::HashMap;
use std::fmt;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column; `0:0` means "unknown".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Pos {
    pub(crate) line: u32,
    pub(crate) column: u32,
}

impl Pos {
    /// The start of the text: where an error about the document as a
    /// whole (an empty file, a missing top-level key) is placed.
    pub(crate) const START: Self = Self { line: 1, column: 1 };
}

/// A field path such as `mcp_servers.my-group.members[1].weight`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Path(Vec<Seg>);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Where one occurrence of a path sits in the text.
#[derive(Clone, Copy, Debug)]
struct Span {
    /// The mapping key, or the item itself for sequence items.
    key: Pos,
    value: Pos,
}

/// Field path -> positions, in document order per path.
///
/// A path has more than one span only when a mapping repeats a key.
#[derive(Debug, Default)]
pub(crate) struct Index {
    spans: HashMap<Path, Vec<Span>>,
}

// === impl Path ===

impl Path {
    /// The document root (renders as an empty string).
    pub(crate) fn root() -> Self {
        Self::default()
    }

    /// This path extended by a mapping key.
    pub(crate) fn key(&self, key: &str) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_owned()));
        Self(segs)
    }

    /// This path extended by a sequence index.
    pub(crate) fn index(&self, index: usize) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        Self(segs)
    }

    fn parent(&self) -> Option<Self> {
        let (_, init) = self.0.split_last()?;
        Some(Self(init.to_vec()))
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(key) if i == 0 => f.write_str(key)?,
                Seg::Key(key) => write!(f, ".{key}")?,
                Seg::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

// === impl Index ===

impl Index {
    /// Indexes `text`. A scan error stops the walk but keeps what was indexed
    /// so far: the syntax itself is reported by the serde pass, and a path
    /// with no indexed ancestor is placed at the start of the text.
    pub(crate) fn build(text: &str) -> Self {
        let mut builder = Builder::default();
        let _partial = Parser::new_from_str(text).load(&mut builder, false);
        Self {
            spans: builder.spans,
        }
    }

    /// Position of the `occurrence`-th key at `path` (0 = first), falling
    /// back to the closest indexed ancestor.
    pub(crate) fn key(&self, path: &Path, occurrence: usize) -> Pos {
        let exact = self.spans.get(path).and_then(|s| s.get(occurrence));
        match exact {
            Some(span) => span.key,
            None => self.nearest(path, |span| span.key),
        }
    }

    /// Position of the first value at `path`, falling back to the closest
    /// indexed ancestor.
    pub(crate) fn value(&self, path: &Path) -> Pos {
        self.nearest(path, |span| span.value)
    }

    fn nearest(&self, path: &Path, pick: fn(&Span) -> Pos) -> Pos {
        let mut path = Some(path.clone());
        while let Some(p) = path {
            if let Some(span) = self.spans.get(&p).and_then(|s| s.first()) {
                return pick(span);
            }
            path = p.parent();
        }
        Pos::START
    }
}

/// Where the syntax error in `text` is, for the errors serde_norway reports
/// without a position (a second document, some scanner errors): yaml-rust2's
/// scan error, else the start of the second document, else the start.
pub(crate) fn syntax_error_pos(text: &str) -> Pos {
    let mut parser = Parser::new_from_str(text);
    let mut documents = 0;
    // Ends: every event consumes input, and the stream ends at the text's end.
    loop {
        match parser.next_token() {
            Err(err) => return to_pos(*err.marker()),
            Ok((Event::StreamEnd, _)) => return Pos::START,
            Ok((Event::DocumentStart, mark)) => {
                documents += 1;
                if documents == 2 {
                    return to_pos(mark);
                }
            }
            Ok(_) => {}
        }
    }
}

// === impl Builder ===

/// Open collections, innermost last.
#[derive(Debug)]
enum Frame {
    /// `pending` holds the key (and its position) while its value is
    /// awaited. `unplaced` until the first key is seen: see [`Builder::place`].
    Map {
        path: Path,
        pending: Option<(String, Pos)>,
        unplaced: bool,
    },
    Seq {
        path: Path,
        next: usize,
    },
    /// Inside a complex (collection) mapping key: nothing here has a path.
    Opaque,
}

#[derive(Debug, Default)]
struct Builder {
    stack: Vec<Frame>,
    spans: HashMap<Path, Vec<Span>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Leaf,
    Map,
    Seq,
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let pos = to_pos(mark);
        match event {
            Event::Scalar(text, ..) => self.node(Some(text), pos, Kind::Leaf),
            Event::Alias(_) => self.node(None, pos, Kind::Leaf),
            Event::MappingStart(..) => self.node(None, pos, Kind::Map),
            Event::SequenceStart(..) => self.node(None, pos, Kind::Seq),
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

impl Builder {
    /// Handles the start of any node: a key, a value or a sequence item.
    fn node(&mut self, scalar: Option<String>, pos: Pos, kind: Kind) {
        let (path, key_pos) = match self.stack.last_mut() {
            None => (Some(Path::root()), pos),
            Some(Frame::Opaque) => (None, pos),
            Some(Frame::Seq { path, next }) => {
                let item = path.index(*next);
                *next += 1;
                (Some(item), pos)
            }
            Some(Frame::Map {
                path,
                pending,
                unplaced,
            }) => match pending.take() {
                Some((key, key_pos)) => (Some(path.key(&key)), key_pos),
                None => {
                    // This node is a key. Collection keys get an empty name;
                    // validation rejects them at the mapping's position.
                    *pending = Some((scalar.unwrap_or_default(), pos));
                    if std::mem::take(unplaced) {
                        let path = path.clone();
                        self.place(&path, pos);
                    }
                    if kind != Kind::Leaf {
                        self.stack.push(Frame::Opaque);
                    }
                    return;
                }
            },
        };
        if let Some(path) = &path {
            let span = Span {
                key: key_pos,
                value: pos,
            };
            self.spans.entry(path.clone()).or_default().push(span);
        }
        let frame = match (kind, path) {
            (Kind::Leaf, _) => return,
            (_, None) => Frame::Opaque,
            (Kind::Map, Some(path)) => Frame::Map {
                path,
                pending: None,
                unplaced: true,
            },
            (Kind::Seq, Some(path)) => Frame::Seq { path, next: 0 },
        };
        self.stack.push(frame);
    }

    /// yaml-rust2 marks a block mapping's start at the `:` after its first
    /// key, so a mapping is placed at its first key instead. The key of a
    /// mapping that is a sequence item (or the root) moves with it.
    fn place(&mut self, path: &Path, first_key: Pos) {
        if let Some(span) = self.spans.get_mut(path).and_then(|s| s.last_mut()) {
            if span.key == span.value {
                span.key = first_key;
            }
            span.value = first_key;
        }
    }
}

/// yaml-rust2 lines are 1-based but columns 0-based.
pub(crate) fn to_pos(mark: Marker) -> Pos {
    let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    Pos {
        line: clamp(mark.line()).max(1),
        column: clamp(mark.col()).saturating_add(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(index: &Index, path: &Path) -> (u32, u32) {
        let pos = index.value(path);
        (pos.line, pos.column)
    }

    #[test]
    fn records_keys_values_and_items() {
        let text = "a:\n  b: 1\n  c:\n    - x: \"q\"\n    - y\n";
        let index = Index::build(text);
        let root = Path::root();
        let b = root.key("a").key("b");
        assert_eq!(b.to_string(), "a.b");
        assert_eq!(at(&index, &b), (2, 6));
        let key = index.key(&b, 0);
        assert_eq!((key.line, key.column), (2, 3));
        let x = root.key("a").key("c").index(0).key("x");
        assert_eq!(x.to_string(), "a.c[0].x");
        assert_eq!(at(&index, &x), (4, 10));
        assert_eq!(at(&index, &root.key("a").key("c").index(1)), (5, 7));
    }

    #[test]
    fn unknown_paths_fall_back_to_ancestors() {
        let index = Index::build("a:\n  b: 1\n");
        let missing = Path::root().key("a").key("b").key("zzz");
        assert_eq!(at(&index, &missing), (2, 6));
        assert_eq!(Index::build("").value(&missing), Pos::START);
    }

    #[test]
    fn repeated_keys_keep_every_occurrence() {
        let index = Index::build("a: 1\nb: 2\na: 3\n");
        let a = Path::root().key("a");
        let second = index.key(&a, 1);
        assert_eq!((second.line, second.column), (3, 1));
    }
}
