//! Hangar's config file: load, validate and compile MCP Hangar's
//! `config.yaml` (the `mcp_servers:` section) into the snapshot the control
//! plane serves.
//!
//! ```
//! let text = "mcp_servers:\n  a:\n    mode: remote\n    endpoint: http://localhost:8080\n";
//! let config = hangar_config::load("config.yaml", text).expect("valid config");
//! let snapshot = config.to_snapshot(1);
//! assert_eq!(snapshot.servers[0].endpoint(), Some("http://localhost:8080/mcp"));
//! ```
//!
//! Loading never stops at the first mistake: [`ConfigErrors`] lists every
//! error in the file, each with its line, column and field path, e.g.
//! `config.yaml:14:9: mcp_servers.g.members[1].weight: must be at least 1, got 0`.
//! `hangarctl validate` and the control plane share [`load`], so both report
//! the same errors.
//!
//! A text over 1 MiB, or nesting mappings and lists deeper than 64 levels,
//! is refused before it is parsed in earnest, with one error.
//!
//! # Layout
//! - `limits`: the size and depth refused up front, since libyaml's cost
//!   grows with the square of the nesting.
//! - `parse`: YAML text to an untyped tree (serde_norway); syntax errors.
//! - `locate`: a second, event-level pass (yaml-rust2) mapping every field
//!   path to its line and column, since serde keeps no spans.
//! - `validate`: the tree to the [`Config`] model, collecting every error;
//!   `validate/read.rs` reads typed leaves, `validate/group.rs` groups.
//! - `model`: [`Config`], [`Server`], [`RemoteServer`], [`Group`],
//!   [`Member`], [`StrategyKind`].
//! - `proto`: [`Config::to_snapshot`], the compiled [`hangar_proto::v1::Snapshot`].
//! - `error`: [`ConfigError`], [`ConfigErrors`].

mod error;
mod limits;
mod locate;
mod model;
mod parse;
mod proto;
mod validate;

use std::io::{self, Read};
use std::path::Path;

pub use crate::error::{ConfigError, ConfigErrors};
pub use crate::model::{
    AccessRule, Backoff, BasicAuth, ClientAuth, Config, Group, JwksSource, JwtAuth, Member,
    OAuthMetadata, OutlierDetection, RateLimit, RateScope, RateSize, RemoteServer, RetryPolicy,
    RetrySettings, Server, StrategyKind, SubprocessServer, TlsSettings, ToolPolicy,
};
pub use hangar_template::Template;

/// Loads a config from `text`. `source_name` (usually the file path) only
/// prefixes error messages.
///
/// # Errors
/// Every syntax, type and semantic error in the text, sorted by position.
/// A YAML syntax error is reported alone, as nothing after it can be read;
/// so is a text over 1 MiB or nested deeper than 64 levels.
pub fn load(source_name: &str, text: &str) -> Result<Config, ConfigErrors> {
    limits::check(source_name, text)?;
    let root = parse::parse(source_name, text)?;
    let index = locate::Index::build(text);
    validate::validate(source_name, &index, &root)
}

/// Reads and loads the config file at `path`; errors are prefixed with the
/// path as given.
///
/// # Errors
/// As [`load`], or a single error (line 0, empty path) when the file cannot
/// be read, e.g. `config.yaml: cannot read config.yaml: No such file or
/// directory (os error 2)`. A file over 1 MiB is refused having read just
/// past the limit, so that `/dev/zero` is refused too.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    let source_name = path.display().to_string();
    match read_at_most(path, limits::MAX_BYTES) {
        Ok(Some(text)) => load(&source_name, &text),
        Ok(None) => Err(limits::too_large(&source_name).into()),
        Err(err) => Err(ConfigError {
            message: format!("cannot read {source_name}: {err}"),
            source_name,
            line: 0,
            column: 0,
            path: String::new(),
        }
        .into()),
    }
}

/// The file's text, or `None` when it holds more than `limit` bytes.
fn read_at_most(path: &Path, limit: usize) -> io::Result<Option<String>> {
    let mut bytes = Vec::new();
    let over = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    std::fs::File::open(path)?
        .take(over)
        .read_to_end(&mut bytes)?;
    if bytes.len() > limit {
        return Ok(None);
    }
    String::from_utf8(bytes).map(Some).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })
}
