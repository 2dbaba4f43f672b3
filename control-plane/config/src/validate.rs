//! Step 2 of loading: [`Node`] tree to [`Config`], collecting every error.
//!
//! The walk is hand-written rather than `#[derive(Deserialize)]` with
//! `deny_unknown_fields` because serde stops at the first error, while a
//! config author wants all of them, each with its line and column.

mod group;
mod read;

use std::collections::HashMap;

use indexmap::IndexMap;
use url::Url;

use self::read::{Ctx, Fields, Keys};
use crate::error::ConfigErrors;
use crate::locate::{Index, Path};
use crate::model::{Config, RemoteServer, Server};
use crate::parse::Node;

/// MCP Hangar server keys that Hangar does not implement yet.
const SERVER_UNSUPPORTED: &[&str] = &[
    "args",
    "auth",
    "auto_start",
    "build",
    "command",
    "env",
    "headers",
    "http",
    "idle_ttl_s",
    "image",
    "network",
    "network_mode",
    "read_only",
    "resources",
    "tls",
    "tools",
    "user",
    "volumes",
];

/// MCP Hangar modes that Hangar does not implement yet.
const UNSUPPORTED_MODES: &[&str] = &["subprocess", "docker", "container", "podman"];

const TOP_KEYS: Keys = Keys {
    known: &["mcp_servers"],
    unsupported: &[],
    hint: "",
};

const REMOTE_KEYS: Keys = Keys {
    known: &[
        "mode",
        "endpoint",
        "health_check_interval_s",
        "max_consecutive_failures",
        "description",
    ],
    unsupported: SERVER_UNSUPPORTED,
    hint: "",
};

/// What a server id names, for checking group members before (or without)
/// fully validating the server itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Remote,
    Group,
    /// Missing or bad mode: the server reports that itself.
    Other,
}

type Kinds<'n> = HashMap<&'n str, Kind>;

/// Validates a parsed file. `Err` holds every error, sorted by position.
pub(crate) fn validate(
    source_name: &str,
    index: &Index,
    root: &Node,
) -> Result<Config, ConfigErrors> {
    let mut cx = Ctx::new(source_name, index);
    let config = Config {
        servers: top(&mut cx, root),
    };
    if cx.errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors::sorted(cx.errors))
    }
}

fn top(cx: &mut Ctx<'_>, root: &Node) -> IndexMap<String, Server> {
    let path = Path::root();
    if *root == Node::Null {
        // An empty file, or one holding only comments.
        cx.at_key(&path, "missing required key 'mcp_servers'");
        return IndexMap::new();
    }
    let Some(fields) = cx.mapping(&path, root, &TOP_KEYS) else {
        return IndexMap::new();
    };
    match cx.required(&fields, "mcp_servers") {
        Some(node) => servers(cx, &path.key("mcp_servers"), node),
        None => IndexMap::new(),
    }
}

/// Validates `mcp_servers`, keeping the valid servers in file order.
fn servers(cx: &mut Ctx<'_>, path: &Path, node: &Node) -> IndexMap<String, Server> {
    let mut out = IndexMap::new();
    let Some(fields) = cx.entries(path, node) else {
        return out;
    };
    // Members may name servers defined further down, so learn every id's
    // kind before validating any group.
    let kinds: Kinds<'_> = fields
        .entries
        .iter()
        .map(|(id, n)| (*id, peek_kind(n)))
        .collect();
    for (id, node) in &fields.entries {
        let server_path = path.key(id);
        if id.is_empty() {
            cx.at_key(&server_path, "server id must not be empty");
            continue;
        }
        if let Some(server) = server(cx, &server_path, node, &kinds) {
            out.insert((*id).to_owned(), server);
        }
    }
    out
}

/// The kind a server declares with `mode`, without reporting anything.
fn peek_kind(node: &Node) -> Kind {
    let Node::Map(pairs) = node else {
        return Kind::Other;
    };
    let mode = pairs
        .iter()
        .find(|(k, _)| matches!(k, Node::Str(k) if k == "mode"));
    match mode {
        Some((_, Node::Str(mode))) if mode == "remote" => Kind::Remote,
        Some((_, Node::Str(mode))) if mode == "group" => Kind::Group,
        _ => Kind::Other,
    }
}

fn server(cx: &mut Ctx<'_>, path: &Path, node: &Node, kinds: &Kinds<'_>) -> Option<Server> {
    let fields = cx.entries(path, node)?;
    let mode_node = cx.required(&fields, "mode")?;
    let mode_path = path.key("mode");
    let mode = cx.string(&mode_path, mode_node)?;
    match mode.as_str() {
        "remote" => {
            let fields = cx.check_keys(fields, &REMOTE_KEYS);
            remote(cx, &fields).map(Server::Remote)
        }
        "group" => {
            let fields = cx.check_keys(fields, &group::GROUP_KEYS);
            group::group(cx, &fields, kinds).map(Server::Group)
        }
        // Keys of unsupported modes are not checked: `command` and friends
        // would only repeat the one real problem.
        m if UNSUPPORTED_MODES.contains(&m) => {
            let message = format!("mode '{m}' is not supported yet (supported: remote, group)");
            cx.at_value(&mode_path, message);
            None
        }
        m => {
            cx.at_value(
                &mode_path,
                format!("unknown mode '{m}' (expected remote or group)"),
            );
            None
        }
    }
}

fn remote(cx: &mut Ctx<'_>, fields: &Fields<'_>) -> Option<RemoteServer> {
    let endpoint = cx
        .required(fields, "endpoint")
        .and_then(|node| endpoint(cx, &fields.path.key("endpoint"), node));
    let interval = cx
        .optional(fields, "health_check_interval_s", Ctx::seconds)
        .map(|v| v.unwrap_or(RemoteServer::DEFAULT_HEALTH_CHECK_INTERVAL));
    let failures = cx
        .optional(fields, "max_consecutive_failures", |cx, p, n| {
            cx.uint(p, n, 1)
        })
        .map(|v| v.unwrap_or(RemoteServer::DEFAULT_MAX_CONSECUTIVE_FAILURES));
    let description = cx.optional(fields, "description", Ctx::string);
    Some(RemoteServer {
        endpoint: endpoint?,
        health_check_interval: interval?,
        max_consecutive_failures: failures?,
        description: description?,
    })
}

fn endpoint(cx: &mut Ctx<'_>, path: &Path, node: &Node) -> Option<Url> {
    let text = cx.string(path, node)?;
    match parse_endpoint(&text) {
        Ok(url) => Some(url),
        Err(message) => {
            cx.at_value(path, message);
            None
        }
    }
}

/// An absolute http(s) URL with a host. No path (or just `/`) means the
/// Streamable HTTP default `/mcp`; query strings are kept.
fn parse_endpoint(text: &str) -> Result<Url, String> {
    let mut url = Url::parse(text).map_err(|e| format!("invalid URL '{text}': {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        // `localhost:8080` parses as scheme `localhost`; say what is missing.
        let hint = if text.contains("://") {
            ""
        } else {
            " (missing 'http://'?)"
        };
        return Err(format!("'{text}' is not an http or https URL{hint}"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("'{text}' has no host"));
    }
    if url.path() == "/" {
        url.set_path("/mcp");
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::parse_endpoint;

    fn ok(text: &str) -> String {
        parse_endpoint(text).map(String::from).unwrap_or_else(|e| e)
    }

    #[test]
    fn endpoint_without_path_gets_mcp() {
        assert_eq!(ok("http://localhost:8080"), "http://localhost:8080/mcp");
        assert_eq!(ok("http://localhost:8080/"), "http://localhost:8080/mcp");
        assert_eq!(ok("https://h/?a=1"), "https://h/mcp?a=1");
        assert_eq!(ok("https://h/custom/path"), "https://h/custom/path");
    }

    #[test]
    fn endpoint_must_be_http_with_host() {
        assert_eq!(
            ok("localhost:8080"),
            "'localhost:8080' is not an http or https URL (missing 'http://'?)"
        );
        assert_eq!(ok("ftp://x"), "'ftp://x' is not an http or https URL");
        assert_eq!(ok("http://"), "invalid URL 'http://': empty host");
        assert_eq!(
            ok("/mcp"),
            "invalid URL '/mcp': relative URL without a base"
        );
    }
}
