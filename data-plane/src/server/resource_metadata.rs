//! OAuth 2.0 Protected Resource Metadata (RFC 9728), as the MCP
//! authorization spec asks of a resource server: with `auth.jwt`, each MCP
//! endpoint has a document at `/.well-known/oauth-protected-resource`
//! followed by its path (`/mcp`, `/groups/{g}/mcp`; the bare URL speaks of
//! the origin), naming the authorization servers that issue its tokens, and
//! every 401 points at it in `WWW-Authenticate: Bearer resource_metadata=`.
//!
//! The resource's URL is the one the client used (its `Host`, and `https`
//! when `X-Forwarded-Proto` says so), which is what an OAuth client
//! compares the document's `resource` with.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use hangar_proto::v1;
use serde_json::json;

use crate::route::table::RoutingTable;

/// Where the documents live.
pub(crate) const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// Whether `path` asks for a metadata document.
pub(crate) fn is_metadata(path: &str) -> bool {
    path.strip_prefix(WELL_KNOWN)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The metadata document at `path`, or 404 when there is none (no
/// `auth.jwt`, or not an MCP endpoint of this data plane).
pub(crate) fn serve(table: &RoutingTable, headers: &HeaderMap, path: &str) -> Response {
    let resource_path = path.strip_prefix(WELL_KNOWN).unwrap_or_default();
    let known = resource_path.is_empty()
        || resource_path == "/mcp"
        || resource_path
            .strip_prefix("/groups/")
            .and_then(|rest| rest.strip_suffix("/mcp"))
            .is_some_and(|group| table.groups.contains_key(group));
    let auth = table.client_auth.as_ref().filter(|auth| auth.enabled);
    let (Some(_), Some(oauth), true) = (auth, auth.and_then(|auth| auth.oauth.as_ref()), known)
    else {
        return plain(
            StatusCode::NOT_FOUND,
            "no protected resource metadata here\n",
        );
    };
    let mut document = json!({
        "resource": format!("{}{resource_path}", origin(headers)),
        "authorization_servers": oauth.authorization_servers,
        "bearer_methods_supported": ["header"],
        "resource_name": "Hangar",
    });
    if !oauth.scopes_supported.is_empty() {
        document["scopes_supported"] = json!(oauth.scopes_supported);
    }
    let mut response = Response::new(Body::from(document.to_string()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=300"),
    );
    response
}

/// The `WWW-Authenticate` challenge of a 401 to `path`: RFC 6750's Bearer
/// with the metadata's URL when `auth` takes tokens, and the reason when a
/// token was presented and failed.
pub(crate) fn challenge(
    auth: Option<&v1::ClientAuth>,
    headers: &HeaderMap,
    path: &str,
    invalid_token: Option<&str>,
) -> HeaderValue {
    let mut value = String::from("Bearer realm=\"hangar\"");
    if auth.is_some_and(|auth| auth.oauth.is_some()) {
        value.push_str(&format!(
            ", resource_metadata=\"{}{WELL_KNOWN}{path}\"",
            origin(headers)
        ));
    }
    if let Some(reason) = invalid_token {
        value.push_str(&format!(
            ", error=\"invalid_token\", error_description=\"{}\"",
            quoted(reason)
        ));
    }
    HeaderValue::from_str(&value)
        .unwrap_or_else(|_| HeaderValue::from_static("Bearer realm=\"hangar\""))
}

/// `scheme://host` of the URL the client used.
fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic() && b != b'"'))
        .unwrap_or("localhost");
    let https = headers
        .get("x-forwarded-proto")
        .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"));
    format!("{}://{host}", if https { "https" } else { "http" })
}

/// `text` as the inside of a quoted-string: printable ASCII, no quote or
/// backslash.
fn quoted(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            c if c.is_ascii_graphic() || c == ' ' => c,
            _ => '?',
        })
        .collect()
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> v1::ClientAuth {
        v1::ClientAuth {
            enabled: true,
            jwt: Some(v1::JwtAuth {
                issuer: "https://idp".into(),
                algorithms: vec!["RS256".into()],
                ..Default::default()
            }),
            oauth: Some(v1::OAuthMetadata {
                authorization_servers: vec!["https://idp".into()],
                scopes_supported: vec![],
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_challenge_points_at_the_metadata_of_the_path_and_says_why_a_token_failed() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("mcp.example.com"));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        let value = challenge(
            Some(&auth()),
            &headers,
            "/groups/math/mcp",
            Some("Unauthorized: the token expired \"now\""),
        );
        assert_eq!(
            value.to_str().unwrap(),
            "Bearer realm=\"hangar\", resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/groups/math/mcp\", error=\"invalid_token\", error_description=\"Unauthorized: the token expired 'now'\""
        );
        assert_eq!(
            challenge(None, &headers, "/mcp", None),
            "Bearer realm=\"hangar\""
        );
    }

    #[test]
    fn the_document_names_the_resource_the_client_used() {
        let mut table = RoutingTable::default();
        table.client_auth = Some(auth());
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:9000"));
        let ok = serve(
            &table,
            &headers,
            "/.well-known/oauth-protected-resource/mcp",
        );
        assert_eq!(ok.status(), StatusCode::OK);
        let missing = serve(
            &table,
            &headers,
            "/.well-known/oauth-protected-resource/groups/nope/mcp",
        );
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert!(is_metadata("/.well-known/oauth-protected-resource"));
        assert!(!is_metadata("/.well-known/oauth-protected-resourcex"));
    }
}
