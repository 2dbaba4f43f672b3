//! Safe by default: a data plane that listens beyond loopback serves no
//! MCP request from an anonymous client unless it was started with
//! `--allow-anonymous-clients`; on loopback, beside its clients, it does.
//! A refused request gets 401 with a JSON-RPC error that says why and
//! what to do. `/metrics` and `--stdio` are not MCP requests over the
//! network, so they are not gated.

use std::net::SocketAddr;

use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::Response;

use crate::server::jsonrpc::{INVALID_REQUEST, jsonrpc_error};
use crate::server::overload::peek_id;

/// Whether anonymous MCP requests are served, and why not.
#[derive(Debug, Clone)]
pub(crate) struct AnonymousClients {
    /// `None` when they are served; else the reason a refusal gives.
    refusal: Option<String>,
}

impl AnonymousClients {
    /// The rule for a data plane listening on `addr`; `allowed` is
    /// `--allow-anonymous-clients`. Says what it decided in one log line
    /// when it matters (beyond loopback).
    pub(crate) fn for_listener(addr: SocketAddr, allowed: bool) -> Self {
        let beyond_loopback = !addr.ip().is_loopback();
        if beyond_loopback && allowed {
            tracing::warn!(listen.addr = %addr, "serving MCP to anonymous clients beyond loopback (--allow-anonymous-clients): anyone who can reach this address may call every tool");
        } else if beyond_loopback {
            tracing::warn!(listen.addr = %addr, "listening beyond loopback without client authentication: MCP requests are refused with 401; start with --allow-anonymous-clients to serve anyone who can reach this address");
        }
        Self {
            refusal: (beyond_loopback && !allowed).then(|| {
                format!(
                    "Unauthorized: this data plane listens beyond loopback ({addr}) and serves no anonymous clients; start it with --allow-anonymous-clients to serve anyone who can reach it"
                )
            }),
        }
    }

    /// Whether a request to `path` is refused: the MCP endpoints only.
    pub(crate) fn refuses(&self, path: &str) -> bool {
        self.refusal.is_some() && is_mcp(path)
    }

    /// The 401 for `request`, with its id when a short body shows it.
    pub(crate) async fn refuse(&self, request: Request<Body>) -> Response {
        let challenge = HeaderValue::from_static(r#"Bearer realm="hangar""#);
        unauthorized(
            request,
            self.refusal.as_deref().unwrap_or("Unauthorized"),
            challenge,
        )
        .await
    }
}

/// Whether `path` is one of the MCP endpoints.
pub(crate) fn is_mcp(path: &str) -> bool {
    path == "/mcp" || path.starts_with("/groups/")
}

/// 401 for `request` saying `reason`, with its id when a short body shows
/// it, and the `WWW-Authenticate` `challenge`.
pub(crate) async fn unauthorized(
    request: Request<Body>,
    reason: &str,
    challenge: HeaderValue,
) -> Response {
    let id = peek_id(request).await;
    let mut response = jsonrpc_error(StatusCode::UNAUTHORIZED, id, INVALID_REQUEST, reason);
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, challenge);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_mcp_paths_beyond_loopback_without_the_flag_are_refused() {
        let open = AnonymousClients::for_listener("127.0.0.1:9000".parse().unwrap(), false);
        assert!(!open.refuses("/mcp"));
        let v6 = AnonymousClients::for_listener("[::1]:9000".parse().unwrap(), false);
        assert!(!v6.refuses("/groups/g/mcp"));
        let closed = AnonymousClients::for_listener("0.0.0.0:9000".parse().unwrap(), false);
        assert!(closed.refuses("/mcp"));
        assert!(closed.refuses("/groups/g/mcp"));
        assert!(!closed.refuses("/metrics"));
        let allowed = AnonymousClients::for_listener("10.0.0.5:9000".parse().unwrap(), true);
        assert!(!allowed.refuses("/mcp"));
    }

    #[tokio::test]
    async fn a_refusal_is_a_401_json_rpc_error_with_the_id_and_the_way_out() {
        let closed = AnonymousClients::for_listener("0.0.0.0:9000".parse().unwrap(), false);
        let body = r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#;
        let request = Request::post("/mcp").body(Body::from(body)).unwrap();
        let response = closed.refuse(request).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            r#"Bearer realm="hangar""#
        );
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let error: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(error["id"], 7);
        assert_eq!(
            error["error"]["message"],
            "Unauthorized: this data plane listens beyond loopback (0.0.0.0:9000) and serves no anonymous clients; start it with --allow-anonymous-clients to serve anyone who can reach it"
        );
    }
}
