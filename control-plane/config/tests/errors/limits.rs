//! Texts refused before they are parsed in earnest: too large, or nested
//! too deep. Each was slow to refuse before (the deep ones in the square of
//! their depth); each is one located error now.

fn refusal(text: &str) -> String {
    match hangar_config::load("config.yaml", text) {
        Ok(config) => panic!("expected a refusal, loaded {config:?}"),
        Err(errors) => errors.to_string(),
    }
}

const TOO_DEEP: &str = "config nests deeper than 64 levels of mappings and lists";

/// 100,000 levels of `[` (200 KB) is the shape that took a minute.
#[test]
fn deep_flow_lists() {
    let text = format!(
        "mcp_servers: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_eq!(refusal(&text), format!("config.yaml:1:269: {TOO_DEEP}"));
}

#[test]
fn deep_flow_mappings() {
    let text = format!(
        "mcp_servers: {}x{}\n",
        "{a: ".repeat(50_000),
        "}".repeat(50_000)
    );
    assert_eq!(refusal(&text), format!("config.yaml:1:266: {TOO_DEEP}"));
}

/// `- - - x`: block lists nested on one line.
#[test]
fn deep_block_lists() {
    let text = format!("mcp_servers:\n  {}x\n", "- ".repeat(100_000));
    assert_eq!(refusal(&text), format!("config.yaml:2:129: {TOO_DEEP}"));
}

/// One key per line, each indented one more: level 65 starts on line 65.
#[test]
fn deep_block_mappings() {
    let text: String = (0..100)
        .map(|level| format!("{}k{level}:\n", " ".repeat(level)))
        .collect();
    assert_eq!(refusal(&text), format!("config.yaml:65:65: {TOO_DEEP}"));
}

/// Level 64 is read, and validated; level 65 is not.
#[test]
fn the_limit_is_sixty_four_levels() {
    let nested = |levels: usize| {
        let lists = levels - 3;
        format!(
            "mcp_servers:\n  a:\n    mode: remote\n    endpoint: http://h\n    description: {}{}\n",
            "[".repeat(lists),
            "]".repeat(lists)
        )
    };
    assert_eq!(
        refusal(&nested(64)),
        "config.yaml:5:18: mcp_servers.a.description: expected a string, got a list"
    );
    assert_eq!(
        refusal(&nested(65)),
        format!("config.yaml:5:79: {TOO_DEEP}")
    );
}

/// libyaml reads flow content indented less than its block, which the YAML
/// spec (and yaml-rust2) refuses: the depth behind such a line is not known
/// before parsing, so the spec's syntax error is reported.
#[test]
fn deep_flow_behind_a_syntax_error() {
    let text = format!(
        "mcp_servers:\n  a: [\n{}{}\n  ]\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_eq!(
        refusal(&text),
        "config.yaml:3:1: invalid YAML: invalid indentation"
    );
}

/// 1 MiB is read; a byte more is not.
#[test]
fn over_one_mebibyte() {
    let head = "mcp_servers: {}\n#";
    let at_limit = format!("{head}{}", "x".repeat((1 << 20) - head.len()));
    hangar_config::load("config.yaml", &at_limit).expect("1 MiB loads");
    assert_eq!(
        refusal(&format!("{at_limit}x")),
        "config.yaml:1:1: config is larger than 1 MiB (1048576 bytes)"
    );
}

/// A file is read only to just past the limit: an endless one is refused.
#[cfg(target_os = "linux")]
#[test]
fn endless_file() {
    let got = hangar_config::load_file(std::path::Path::new("/dev/zero"))
        .expect_err("endless")
        .to_string();
    assert_eq!(
        got,
        "/dev/zero:1:1: config is larger than 1 MiB (1048576 bytes)"
    );
}
