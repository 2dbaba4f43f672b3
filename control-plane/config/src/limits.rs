//! Step 0 of loading: refuse, before parsing in earnest, a text too big or
//! nested too deep to be a config.
//!
//! Nesting is what costs. libyaml (under serde_norway) re-checks every open
//! flow collection for each token it reads, and serde_norway reads a whole
//! document into events before its own recursion limit (128 levels) can
//! refuse it, so `n` levels of `[` cost O(n²): 200 KB of them took most of
//! a minute before "recursion limit exceeded". Hence the order here:
//!
//! 1. the size, at most [`MAX_BYTES`];
//! 2. the depth, with yaml-rust2's event parser (already the locating pass's
//!    parser), which stops at the first level past [`MAX_DEPTH`] having read
//!    only that far. Its own flow limit (255 levels) also counts as too deep:
//!    it meets that one while looking ahead, before the events of the deep
//!    levels come out.
//!
//! When yaml-rust2 gives up on the syntax first, it vouches for nothing
//! after that point, and libyaml reads some texts further than it does (flow
//! content indented less than its block, for one). libyaml may then see the
//! text only when its `[` and `{` characters, each opening at most one
//! level, are few enough to bound the nesting by themselves; otherwise the
//! text is refused with yaml-rust2's syntax error.

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::ScanError;

use crate::error::ConfigError;
use crate::locate::{self, Pos};

/// The largest config text loaded, in bytes: 1 MiB, hundreds of times a
/// large fleet's config.
pub(crate) const MAX_BYTES: usize = 1 << 20;

/// The deepest nesting of mappings and lists loaded (the document's own
/// mapping is level 1), far more than a config needs:
/// `mcp_servers.<id>.http.headers` is level 5.
pub(crate) const MAX_DEPTH: usize = 64;

/// What yaml-rust2 says when its flow level counter would pass 255.
const YAML_RUST2_FLOW_LIMIT: &str = "recursion limit exceeded";

/// Refuses `text` if it is too large or nests too deep; otherwise the
/// parsers may read it, each in linear time.
pub(crate) fn check(source_name: &str, text: &str) -> Result<(), ConfigError> {
    if text.len() > MAX_BYTES {
        return Err(too_large(source_name));
    }
    let mut parser = Parser::new_from_str(text);
    let mut depth = 0usize;
    // Ends: every event consumes input, and the stream ends at the text's end.
    loop {
        match parser.next_token() {
            Ok((Event::StreamEnd, _)) => return Ok(()),
            Ok((Event::MappingStart(..) | Event::SequenceStart(..), mut mark)) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    // yaml-rust2 marks a block mapping at the `:` after its
                    // first key: place it at that key instead.
                    if let Ok((_, next)) = parser.peek()
                        && next.index() < mark.index()
                    {
                        mark = *next;
                    }
                    return Err(too_deep(source_name, locate::to_pos(mark)));
                }
            }
            Ok((Event::MappingEnd | Event::SequenceEnd, _)) => {
                depth = depth.saturating_sub(1);
            }
            Ok(_) => {}
            Err(err) if err.info() == YAML_RUST2_FLOW_LIMIT => {
                return Err(too_deep(source_name, locate::to_pos(*err.marker())));
            }
            Err(err) => return after_syntax_error(source_name, text, &err),
        }
    }
}

/// The refusal of a text over [`MAX_BYTES`], placed at its start like every
/// error about the document as a whole.
pub(crate) fn too_large(source_name: &str) -> ConfigError {
    document_error(
        source_name,
        Pos::START,
        format!(
            "config is larger than {} MiB ({MAX_BYTES} bytes)",
            MAX_BYTES >> 20
        ),
    )
}

fn too_deep(source_name: &str, at: Pos) -> ConfigError {
    document_error(
        source_name,
        at,
        format!("config nests deeper than {MAX_DEPTH} levels of mappings and lists"),
    )
}

/// yaml-rust2 stopped at a syntax error before the nesting was known: see
/// the module docs. Below the bound, libyaml reports the error in its own
/// words, as it does for every syntax error.
fn after_syntax_error(source_name: &str, text: &str, err: &ScanError) -> Result<(), ConfigError> {
    let openers = text.bytes().filter(|b| matches!(b, b'[' | b'{')).count();
    if openers <= MAX_DEPTH {
        return Ok(());
    }
    Err(document_error(
        source_name,
        locate::to_pos(*err.marker()),
        format!("invalid YAML: {}", err.info()),
    ))
}

fn document_error(source_name: &str, at: Pos, message: String) -> ConfigError {
    ConfigError {
        source_name: source_name.to_owned(),
        line: at.line,
        column: at.column,
        path: String::new(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(text: &str) -> Option<String> {
        check("t.yaml", text).err().map(|e| e.to_string())
    }

    /// The document's mapping is level 1; level 64 passes, 65 does not.
    #[test]
    fn depth_is_counted_from_the_document() {
        let nested = |levels: usize| {
            // Levels 1 (`a:`) and 2 (`b:`), then flow lists.
            let lists = levels - 2;
            format!("a:\n  b: {}{}\n", "[".repeat(lists), "]".repeat(lists))
        };
        assert_eq!(refusal(&nested(MAX_DEPTH)), None);
        assert_eq!(
            refusal(&nested(MAX_DEPTH + 1)),
            Some("t.yaml:2:68: config nests deeper than 64 levels of mappings and lists".into())
        );
    }

    #[test]
    fn size_is_counted_in_bytes() {
        let at_limit = format!("a: 1\n#{}", "é".repeat((MAX_BYTES - 6) / 2));
        assert_eq!(at_limit.len(), MAX_BYTES);
        assert_eq!(refusal(&at_limit), None);
        assert_eq!(
            refusal(&format!("{at_limit}\n")),
            Some("t.yaml:1:1: config is larger than 1 MiB (1048576 bytes)".into())
        );
    }

    /// A syntax error with few brackets is left to the serde pass, which
    /// words every other syntax error.
    #[test]
    fn a_syntax_error_with_few_brackets_passes() {
        assert_eq!(refusal("a:\n  b: [1, 2\n"), None);
        assert_eq!(refusal("a:\n  b: [\nx]\n"), None);
    }
}
