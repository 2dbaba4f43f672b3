//! `mode: remote` servers: the endpoint, and what every request to it
//! carries (headers, credentials, TLS trust, timeouts).

use std::time::Duration;

use hangar_template::Template;
use indexmap::IndexMap;
use url::Url;

use super::read::{Ctx, Fields, Keys};
use crate::locate::Path;
use crate::model::{BasicAuth, RemoteServer, TlsSettings};
use crate::parse::Node;

pub(super) const REMOTE_KEYS: Keys = Keys {
    known: &[
        "mode",
        "endpoint",
        "description",
        "health_check_interval_s",
        "max_consecutive_failures",
        "headers",
        "auth",
        "tls",
        "http",
        "max_concurrency",
        "stall_timeout_s",
        "rate_limit",
        "tools",
        "idle_ttl_s",
    ],
    unsupported: &[
        "auto_start",
        "build",
        "image",
        "network",
        "network_mode",
        "read_only",
        "resources",
        "user",
        "volumes",
    ],
    hint: "",
};

const HTTP_KEYS: Keys = Keys {
    known: &[
        "connect_timeout",
        "read_timeout",
        "headers",
        "max_retries",
        "retry_backoff_factor",
    ],
    unsupported: &[],
    hint: "",
};

const TLS_KEYS: Keys = Keys {
    known: &["verify_ssl", "ca_cert_path"],
    unsupported: &[],
    hint: "",
};

const AUTH_KEYS: Keys = Keys {
    known: &[
        "type",
        "api_key",
        "api_key_header",
        "bearer_token",
        "username",
        "password",
    ],
    unsupported: &[],
    hint: "",
};

/// Headers the data plane sets itself: the MCP transport's own, and HTTP's.
const RESERVED_HEADERS: &[&str] = &[
    "accept",
    "connection",
    "content-length",
    "content-type",
    "host",
    "mcp-method",
    "mcp-name",
    "mcp-protocol-version",
    "mcp-session-id",
    "transfer-encoding",
];

/// `api_key_header` when the file leaves it out (MCP Hangar's).
const DEFAULT_API_KEY_HEADER: &str = "X-API-Key";

pub(super) fn remote(cx: &mut Ctx<'_>, fields: &Fields<'_>) -> Option<RemoteServer> {
    let endpoint = cx
        .required(fields, "endpoint")
        .and_then(|node| endpoint(cx, &fields.path.key("endpoint"), node));
    let shared = super::kinds::shared(cx, fields);
    let mut headers = Headers::default();
    let top_headers = cx.optional(fields, "headers", |cx, p, n| headers.add_map(cx, p, n));
    let http = cx.optional(fields, "http", |cx, p, n| http(cx, p, n, &mut headers));
    let basic_auth = cx.optional(fields, "auth", |cx, p, n| auth(cx, p, n, &mut headers));
    let tls = cx.optional(fields, "tls", tls);
    let (connect_timeout, read_timeout) = http?.unwrap_or((None, None));
    let tls = tls?.unwrap_or(TlsSettings {
        verify: true,
        ca_cert_path: None,
    });
    let endpoint = endpoint?;
    if (tls.ca_cert_path.is_some() || !tls.verify) && endpoint.scheme() != "https" {
        cx.at_key(
            &fields.path.key("tls"),
            format!("tls applies to https endpoints only, and '{endpoint}' is http"),
        );
        return None;
    }
    top_headers?;
    let shared = shared?;
    Some(RemoteServer {
        endpoint,
        health_check_interval: shared.health_check_interval,
        max_consecutive_failures: shared.max_consecutive_failures,
        description: shared.description,
        headers: headers.ok?,
        basic_auth: basic_auth?.flatten(),
        tls,
        connect_timeout: connect_timeout.unwrap_or(RemoteServer::DEFAULT_CONNECT_TIMEOUT),
        read_timeout: read_timeout.unwrap_or(RemoteServer::DEFAULT_READ_TIMEOUT),
        max_concurrency: shared.max_concurrency,
        stall_timeout: shared.stall_timeout,
        rate_limit: shared.rate_limit,
        tools: shared.tools,
    })
}

/// Headers gathered from `headers`, `http.headers` and `auth`; `ok` turns
/// `None` at the first bad one so the server is dropped.
struct Headers {
    ok: Option<IndexMap<String, Template>>,
}

impl Default for Headers {
    fn default() -> Self {
        Self {
            ok: Some(IndexMap::new()),
        }
    }
}

impl Headers {
    fn add_map(&mut self, cx: &mut Ctx<'_>, path: &Path, node: &Node) -> Option<()> {
        let Some(fields) = cx.entries(path, node) else {
            self.ok = None;
            return None;
        };
        let mut all_ok = Some(());
        for (name, value) in &fields.entries {
            let header_path = path.key(name);
            let added = cx
                .template(&header_path, value)
                .and_then(|value| self.add(cx, &header_path, (*name).to_owned(), value));
            if added.is_none() {
                self.ok = None;
                all_ok = None;
            }
        }
        all_ok
    }

    /// Whether a header of this name (in any case) is set already.
    fn has(&self, name: &str) -> bool {
        self.ok
            .as_ref()
            .is_some_and(|ok| ok.keys().any(|k| k.eq_ignore_ascii_case(name)))
    }

    /// Adds one header; `path` is where it was written.
    fn add(&mut self, cx: &mut Ctx<'_>, path: &Path, name: String, value: Template) -> Option<()> {
        let problem = if !is_token(&name) {
            Some(format!("'{name}' is not a valid header name"))
        } else if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            Some(format!("header '{name}' is set by Hangar itself"))
        } else if value
            .to_string()
            .chars()
            .any(|c| matches!(c, '\r' | '\n' | '\0'))
        {
            Some(format!("the value of header '{name}' has a line break"))
        } else if self.has(&name) {
            Some(format!(
                "header '{name}' is set twice (headers, http.headers and auth combine)"
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            cx.at_key(path, problem);
            self.ok = None;
            return None;
        }
        if let Some(ok) = &mut self.ok {
            ok.insert(name, value);
        }
        Some(())
    }
}

/// HTTP token characters (RFC 9110 `tchar`).
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

type Timeouts = (Option<Duration>, Option<Duration>);

fn http(cx: &mut Ctx<'_>, path: &Path, node: &Node, headers: &mut Headers) -> Option<Timeouts> {
    let fields = cx.mapping(path, node, &HTTP_KEYS)?;
    let connect = cx.optional(&fields, "connect_timeout", Ctx::seconds);
    let read = cx.optional(&fields, "read_timeout", Ctx::seconds);
    let extra = cx.optional(&fields, "headers", |cx, p, n| headers.add_map(cx, p, n));
    // Accepted so MCP Hangar files load: a call that never reached a member
    // already fails over, and a delivered call is never sent twice.
    let retries = cx.optional(&fields, "max_retries", |cx, p, n| cx.uint(p, n, 0));
    let backoff = cx.optional(&fields, "retry_backoff_factor", |cx, p, n| match n {
        Node::Int(_) | Node::Float(_) => Some(()),
        _ => {
            cx.wrong_type(p, "a number", n);
            None
        }
    });
    extra?;
    retries?;
    backoff?;
    Some((connect?, read?))
}

fn tls(cx: &mut Ctx<'_>, path: &Path, node: &Node) -> Option<TlsSettings> {
    let fields = cx.mapping(path, node, &TLS_KEYS)?;
    let verify = cx.optional(&fields, "verify_ssl", Ctx::boolean);
    let ca = cx.optional(&fields, "ca_cert_path", |cx, p, n| {
        let text = cx.string(p, n)?;
        if text.is_empty() {
            cx.at_value(p, "must not be empty");
            return None;
        }
        Some(text)
    });
    Some(TlsSettings {
        verify: verify?.unwrap_or(true),
        ca_cert_path: ca?,
    })
}

/// `auth`: bearer and API keys become headers; basic is kept apart because
/// it can only be encoded once its references are resolved.
fn auth(
    cx: &mut Ctx<'_>,
    path: &Path,
    node: &Node,
    headers: &mut Headers,
) -> Option<Option<BasicAuth>> {
    let fields = cx.mapping(path, node, &AUTH_KEYS)?;
    let kind_node = cx.required(&fields, "type")?;
    let kind = cx.string(&path.key("type"), kind_node)?;
    let secret = |cx: &mut Ctx<'_>, key: &str| {
        cx.required(&fields, key)
            .and_then(|n| cx.template(&path.key(key), n))
    };
    match kind.as_str() {
        "none" => Some(None),
        "bearer" => {
            let token = secret(cx, "bearer_token")?;
            let value = Template::parse(&format!("Bearer {token}")).ok()?;
            headers.add(
                cx,
                &path.key("bearer_token"),
                "Authorization".to_owned(),
                value,
            )?;
            Some(None)
        }
        "api_key" => {
            let key = secret(cx, "api_key")?;
            let name = cx
                .optional(&fields, "api_key_header", Ctx::string)?
                .unwrap_or_else(|| DEFAULT_API_KEY_HEADER.to_owned());
            headers.add(cx, &path.key("api_key"), name, key)?;
            Some(None)
        }
        "basic" => {
            let username = secret(cx, "username");
            let password = secret(cx, "password");
            if headers.has("Authorization") {
                let problem =
                    "header 'Authorization' is set twice (headers, http.headers and auth combine)";
                cx.at_key(&path.key("type"), problem);
                return None;
            }
            Some(Some(BasicAuth {
                username: username?,
                password: password?,
            }))
        }
        other => {
            cx.at_value(
                &path.key("type"),
                format!(
                    "unknown auth type '{other}' (expected one of: bearer, api_key, basic, none)"
                ),
            );
            None
        }
    }
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
