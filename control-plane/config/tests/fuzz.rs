//! Property tests of the loader, bounded to run in about a second: whatever
//! the text (random characters, random YAML trees, mutations of a valid
//! config, deep nesting), loading never panics, and it either returns a
//! config or errors that each say where: `file:line:column`.

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

const RECIPE_05: &str = include_str!("fixtures/recipe-05.yaml");

/// Loads `text`; fails the case unless it loads or every error is located.
fn loads_or_locates(text: &str) -> Result<(), TestCaseError> {
    let Err(errors) = hangar_config::load("fuzz.yaml", text) else {
        return Ok(());
    };
    prop_assert!(!errors.0.is_empty(), "refused without an error: {text:?}");
    for error in &errors.0 {
        prop_assert!(
            error.line >= 1 && error.column >= 1,
            "error without a location: {error} in {text:?}"
        );
        let prefix = format!("fuzz.yaml:{}:{}: ", error.line, error.column);
        prop_assert!(error.to_string().starts_with(&prefix), "{error}");
    }
    Ok(())
}

// === generators ===

/// Scalars of every YAML type, including the awkward ones.
fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("~".to_owned()),
        Just("yes".to_owned()),
        Just("true".to_owned()),
        Just("-.inf".to_owned()),
        Just(".nan".to_owned()),
        Just("99999999999999999999999999999999999999999".to_owned()),
        Just("-170141183460469231731687303715884105729".to_owned()),
        Just("1e400".to_owned()),
        Just("0x7fffffffffffffff".to_owned()),
        Just("\"http://[::1]:99999/\"".to_owned()),
        Just("!env FOO".to_owned()),
        Just("&a x".to_owned()),
        Just("*a".to_owned()),
        Just("|\n  text".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|x| format!("{x:?}")),
        "[a-z_\\-]{1,12}",
        "\\PC{0,16}".prop_map(|s| format!("{s:?}")),
        "[\u{0}-\u{10FFFF}]{0,8}".prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
    ]
}

/// Keys a config uses, and some it does not.
fn key() -> impl Strategy<Value = String> {
    const KNOWN: [&str; 16] = [
        "mcp_servers",
        "mode",
        "endpoint",
        "members",
        "id",
        "weight",
        "priority",
        "strategy",
        "min_healthy",
        "health_check_interval_s",
        "max_consecutive_failures",
        "description",
        "remote",
        "group",
        "a",
        "g",
    ];
    prop_oneof![
        4 => proptest::sample::select(&KNOWN[..]).prop_map(str::to_owned),
        1 => "[a-zA-Z0-9_\\-\u{e9}\u{4e2d}\u{1F600}]{1,10}",
        1 => scalar(),
    ]
}

/// A random YAML tree.
#[derive(Debug, Clone)]
enum Tree {
    Scalar(String),
    Seq(Vec<Tree>),
    Map(Vec<(String, Tree)>),
}

fn tree() -> impl Strategy<Value = Tree> {
    scalar()
        .prop_map(Tree::Scalar)
        .prop_recursive(6, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Tree::Seq),
                proptest::collection::vec((key(), inner), 0..6).prop_map(Tree::Map),
            ]
        })
}

/// Renders `tree` in block style, indented by `indent` (spaces, or a tab
/// now and then, which YAML forbids for indentation).
fn render(tree: &Tree, indent: usize, tabs: bool, out: &mut String) {
    let pad = if tabs && indent % 4 == 2 {
        "\t".repeat(indent / 2)
    } else {
        " ".repeat(indent)
    };
    match tree {
        Tree::Scalar(s) => {
            out.push(' ');
            out.push_str(s);
            out.push('\n');
        }
        Tree::Seq(items) if items.is_empty() => out.push_str(" []\n"),
        Tree::Map(entries) if entries.is_empty() => out.push_str(" {}\n"),
        Tree::Seq(items) => {
            out.push('\n');
            for item in items {
                out.push_str(&pad);
                out.push('-');
                render(item, indent + 2, tabs, out);
            }
        }
        Tree::Map(entries) => {
            out.push('\n');
            for (key, value) in entries {
                out.push_str(&pad);
                out.push_str(key);
                out.push(':');
                render(value, indent + 2, tabs, out);
            }
        }
    }
}

/// A random tree under `mcp_servers:`, so validation goes deep.
fn config_text() -> impl Strategy<Value = String> {
    (tree(), any::<bool>(), any::<bool>()).prop_map(|(tree, tabs, rooted)| {
        let mut text = String::new();
        if rooted {
            text.push_str("mcp_servers:");
            render(&tree, 2, tabs, &mut text);
        } else {
            render(&tree, 0, tabs, &mut text);
        }
        text
    })
}

/// The recipe with one line replaced, removed, repeated, re-indented or
/// cut short, or with a value swapped for an odd scalar.
fn mutated_recipe() -> impl Strategy<Value = String> {
    let lines = RECIPE_05.lines().count();
    (0..lines, 0..6u8, scalar(), 0..RECIPE_05.len()).prop_map(|(at, how, odd, cut)| {
        let mut lines: Vec<String> = RECIPE_05.lines().map(str::to_owned).collect();
        match how {
            0 => lines[at] = odd,
            1 => drop(lines.remove(at)),
            2 => lines.insert(at, lines[at].clone()),
            3 => lines[at] = format!("\t{}", lines[at]),
            4 => {
                if let Some((key, _)) = lines[at].split_once(':') {
                    lines[at] = format!("{key}: {odd}");
                }
            }
            _ => {
                let text = RECIPE_05.get(..cut).unwrap_or(RECIPE_05);
                return text.to_owned();
            }
        }
        lines.join("\n")
    })
}

/// Deep nesting of every kind YAML has.
fn deep() -> impl Strategy<Value = String> {
    (1usize..5_000, 0..4u8).prop_map(|(depth, kind)| match kind {
        0 => "[".repeat(depth),
        1 => format!("mcp_servers: {}{}", "{a: ".repeat(depth), "}".repeat(depth)),
        2 => (0..depth.min(400))
            .map(|d| format!("{}k{d}:\n", " ".repeat(d)))
            .collect(),
        _ => format!("mcp_servers:\n  {}x", "- ".repeat(depth)),
    })
}

// === properties ===

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any text at all.
    #[test]
    fn any_text(text in "\\PC{0,200}") {
        loads_or_locates(&text)?;
    }

    /// Text made of YAML's own punctuation, tabs and newlines.
    #[test]
    fn yaml_punctuation(text in "[a-z0-9:,\\-\\[\\]{}#&*!|>'\"%@` \t\n.~?]{0,200}") {
        loads_or_locates(&text)?;
    }

    /// Random trees of the right and wrong shapes and types.
    #[test]
    fn random_trees(text in config_text()) {
        loads_or_locates(&text)?;
    }

    /// A valid config, broken in one place.
    #[test]
    fn mutations_of_a_valid_config(text in mutated_recipe()) {
        loads_or_locates(&text)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Nesting thousands of levels deep is refused, not a stack overflow.
    #[test]
    fn deep_nesting(text in deep()) {
        loads_or_locates(&text)?;
    }
}

/// Inputs these properties found: errors without a position, for an empty
/// file and for texts serde_norway reads as several documents.
#[test]
fn found_by_fuzzing_errors_without_a_position() {
    for text in ["", "\"\"0 ", "?a #\n,", "\n|\n  text: ~\nmcp_servers: ~\n"] {
        if let Err(failure) = loads_or_locates(text) {
            panic!("{text:?}: {failure}");
        }
    }
}
