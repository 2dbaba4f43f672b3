//! Step 2 of loading: [`Node`] tree to [`Config`], collecting every error.
//!
//! The walk is hand-written rather than `#[derive(Deserialize)]` with
//! `deny_unknown_fields` because serde stops at the first error, while a
//! config author wants all of them, each with its line and column.

mod access;
mod auth;
mod group;
mod jwt;
mod kinds;
mod rate_limit;
mod read;
mod remote;
mod retry;
mod subprocess;
mod tools;

use indexmap::IndexMap;

use self::kinds::{Kind, Kinds};
use self::read::{Ctx, Keys};
use crate::error::ConfigErrors;
use crate::locate::{Index, Path};
use crate::model::{Config, Server};
use crate::parse::Node;

/// MCP Hangar modes that Hangar does not implement yet.
const UNSUPPORTED_MODES: &[&str] = &["docker", "container", "podman"];

const TOP_KEYS: Keys = Keys {
    known: &["mcp_servers", "retry", "rate_limit", "auth", "access"],
    unsupported: &[],
    hint: "",
};

/// Validates a parsed file. `Err` holds every error, sorted by position.
pub(crate) fn validate(
    source_name: &str,
    index: &Index,
    root: &Node,
) -> Result<Config, ConfigErrors> {
    let mut cx = Ctx::new(source_name, index);
    let config = top(&mut cx, root);
    if cx.errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors::sorted(cx.errors))
    }
}

fn top(cx: &mut Ctx<'_>, root: &Node) -> Config {
    let path = Path::root();
    if *root == Node::Null {
        // An empty file, or one holding only comments.
        cx.at_key(&path, "missing required key 'mcp_servers'");
        return Config::default();
    }
    let Some(fields) = cx.mapping(&path, root, &TOP_KEYS) else {
        return Config::default();
    };
    let (servers, ids) = match cx.required(&fields, "mcp_servers") {
        Some(node) => {
            let ids = server_ids(node);
            (servers(cx, &path.key("mcp_servers"), node), ids)
        }
        None => (IndexMap::new(), Vec::new()),
    };
    // Ids of invalid servers count too, so one mistake is not reported twice.
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let retry = cx
        .optional(&fields, "retry", |cx, p, n| {
            retry::retry(cx, p, n, &servers, &ids)
        })
        .flatten()
        .unwrap_or_default();
    let rate_limit = cx
        .optional(&fields, "rate_limit", |cx, p, n| {
            rate_limit::rate_limit(cx, p, n, rate_limit::Place::Top)
        })
        .flatten();
    let auth = cx.optional(&fields, "auth", auth::auth).flatten();
    let access = cx
        .optional(&fields, "access", |cx, p, n| access::access(cx, p, n, &ids))
        .flatten()
        .unwrap_or_default();
    if fields.get("access").is_some() && !auth.as_ref().is_some_and(|a| a.enabled) {
        cx.at_key(
            &path.key("access"),
            "needs auth.enabled: without client authentication every caller is anonymous",
        );
    }
    Config {
        servers,
        retry,
        rate_limit,
        auth,
        access,
    }
}

/// Longest server id.
const MAX_ID_LEN: usize = 64;

/// MCP Hangar's id rule, `[A-Za-z0-9_-]{1,64}`.
fn is_valid_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Every id under `mcp_servers`, valid or not.
fn server_ids(node: &Node) -> Vec<String> {
    match node {
        Node::Map(pairs) => pairs
            .iter()
            .filter_map(|(k, _)| match k {
                Node::Str(k) => Some(k.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
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
        if !is_valid_id(id) {
            let message = format!(
                "server id '{id}' may hold only letters, digits, '_' and '-', 1 to {MAX_ID_LEN} of them (as in MCP Hangar): a group's id names it in URLs (/groups/{{id}}/mcp)"
            );
            cx.at_key(&server_path, message);
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
        Some((_, Node::Str(mode))) if mode == "subprocess" => Kind::Subprocess,
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
            let fields = cx.check_keys(fields, &remote::REMOTE_KEYS);
            remote::remote(cx, &fields).map(Server::Remote)
        }
        "subprocess" => {
            let fields = cx.check_keys(fields, &subprocess::SUBPROCESS_KEYS);
            subprocess::subprocess(cx, &fields).map(Server::Subprocess)
        }
        "group" => {
            let fields = cx.check_keys(fields, &group::GROUP_KEYS);
            group::group(cx, &fields, kinds).map(Server::Group)
        }
        // Keys of unsupported modes are not checked: `command` and friends
        // would only repeat the one real problem.
        m if UNSUPPORTED_MODES.contains(&m) => {
            let message =
                format!("mode '{m}' is not supported yet (supported: remote, subprocess, group)");
            cx.at_value(&mode_path, message);
            None
        }
        m => {
            cx.at_value(
                &mode_path,
                format!("unknown mode '{m}' (expected remote, subprocess or group)"),
            );
            None
        }
    }
}
