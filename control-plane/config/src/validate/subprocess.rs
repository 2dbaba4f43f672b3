//! `mode: subprocess` servers: a stdio MCP server that each data plane
//! starts (in `replicas` copies) and balances across.

use indexmap::IndexMap;

use super::read::{Ctx, Fields, Keys};
use crate::locate::Path;
use crate::model::SubprocessServer;
use crate::parse::Node;

pub(super) const SUBPROCESS_KEYS: Keys = Keys {
    known: &[
        "mode",
        "command",
        "args",
        "env",
        "cwd",
        "replicas",
        "description",
        "health_check_interval_s",
        "max_consecutive_failures",
        "max_concurrency",
        "stall_timeout_s",
        "rate_limit",
        "tools",
        "idle_ttl_s",
    ],
    unsupported: &[
        "auto_start",
        "network",
        "read_only",
        "resources",
        "user",
        "volumes",
    ],
    hint: "",
};

pub(super) fn subprocess(cx: &mut Ctx<'_>, fields: &Fields<'_>) -> Option<SubprocessServer> {
    let command = cx
        .required(fields, "command")
        .and_then(|node| command(cx, &fields.path.key("command"), node));
    let args = cx.optional(fields, "args", Ctx::string_list);
    let env = cx.optional(fields, "env", env);
    let cwd = cx.optional(fields, "cwd", Ctx::string);
    let replicas = cx.optional(fields, "replicas", replicas);
    let shared = super::kinds::shared(cx, fields);
    let mut command = command?;
    command.extend(args?.unwrap_or_default());
    let shared = shared?;
    Some(SubprocessServer {
        command,
        env: env?.unwrap_or_default(),
        cwd: cwd?,
        replicas: replicas?.unwrap_or(1),
        health_check_interval: shared.health_check_interval,
        max_consecutive_failures: shared.max_consecutive_failures,
        description: shared.description,
        max_concurrency: shared.max_concurrency,
        stall_timeout: shared.stall_timeout,
        rate_limit: shared.rate_limit,
        tools: shared.tools,
    })
}

/// `command`: one string (the program) or a list (program and arguments).
fn command(cx: &mut Ctx<'_>, path: &Path, node: &Node) -> Option<Vec<String>> {
    let command = match node {
        Node::Str(program) => vec![program.clone()],
        Node::Seq(_) => cx.string_list(path, node)?,
        _ => {
            cx.wrong_type(path, "a program or a list of program and arguments", node);
            return None;
        }
    };
    if command.first().is_none_or(String::is_empty) {
        cx.at_value(path, "must name a program");
        return None;
    }
    Some(command)
}

fn env(
    cx: &mut Ctx<'_>,
    path: &Path,
    node: &Node,
) -> Option<IndexMap<String, hangar_template::Template>> {
    let entries = cx.template_map(path, node)?;
    let mut ok = Some(IndexMap::new());
    for (name, value) in entries {
        if name.is_empty() || name.contains(['=', '\0']) {
            cx.at_key(
                &path.key(&name),
                format!("'{name}' is not a valid environment variable name"),
            );
            ok = None;
        } else if let Some(ok) = &mut ok {
            ok.insert(name, value);
        }
    }
    ok
}

fn replicas(cx: &mut Ctx<'_>, path: &Path, node: &Node) -> Option<u32> {
    let n = cx.uint(path, node, 1)?;
    if n > SubprocessServer::MAX_REPLICAS {
        let max = SubprocessServer::MAX_REPLICAS;
        cx.at_value(path, format!("must be at most {max}, got {n}"));
        return None;
    }
    Some(n)
}
