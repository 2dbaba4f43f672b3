//! Telling from a relayed answer that a member lost a client's session
//! ([`rejects_session`], the rule our own requests use too): such a request
//! was not processed, so the session may be re-opened elsewhere and the
//! request sent there; and that a member speaks only the legacy protocol
//! ([`is_legacy_refusal`]), so 2026-07-28 requests skip it. Only a short
//! 400 body is read to tell.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;

use crate::upstream::answer::{is_legacy_refusal, rejects_session};

/// Longest error body read to tell a lost session from another refusal.
const MAX_REFUSAL_BODY: usize = 16 * 1024;

/// Whether `response` says the member does not know the session (see
/// [`rejects_session`]), and the response itself (rebuilt when its body had
/// to be read to tell).
pub(super) async fn refuses_session(response: Response) -> (bool, Response) {
    match response.status() {
        StatusCode::NOT_FOUND => (true, response),
        StatusCode::BAD_REQUEST => read_refusal(response, rejects_session).await,
        _ => (false, response),
    }
}

/// Whether `response`, to a 2026-07-28 request, says the member speaks only
/// the legacy protocol (see [`is_legacy_refusal`]), and the response itself.
pub(super) async fn refuses_modern(response: Response) -> (bool, Response) {
    match response.status() {
        StatusCode::BAD_REQUEST => read_refusal(response, is_legacy_refusal).await,
        _ => (false, response),
    }
}

/// Whether `response`, to a 2026-07-28 request other than the era probe,
/// is a legacy-only member's refusal: 400 asking for a session ("Missing
/// session ID", "Server not initialized"), which says the request was not
/// processed. Other 400s may refuse what the request carries.
pub(super) async fn wants_legacy_session(response: Response) -> (bool, Response) {
    match response.status() {
        StatusCode::BAD_REQUEST => read_refusal(response, asks_for_a_session).await,
        _ => (false, response),
    }
}

fn asks_for_a_session(status: StatusCode, body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body).to_ascii_lowercase();
    status == StatusCode::BAD_REQUEST
        && (text.contains("session") || text.contains("not initialized"))
}

/// Reads a short refusal's body to judge it with `rule`; rebuilds the
/// response for the client.
async fn read_refusal(response: Response, rule: fn(StatusCode, &[u8]) -> bool) -> (bool, Response) {
    let (parts, body) = response.into_parts();
    match axum::body::to_bytes(body, MAX_REFUSAL_BODY).await {
        Ok(bytes) => (
            rule(parts.status, &bytes),
            Response::from_parts(parts, Body::from(bytes)),
        ),
        // Too long or broken off: not the short refusal we look for.
        Err(_) => (false, Response::from_parts(parts, Body::empty())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn check(status: StatusCode, body: &'static str) -> (bool, String) {
        let response = Response::builder()
            .status(status)
            .body(Body::from(body))
            .unwrap();
        let (lost, response) = refuses_session(response).await;
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (lost, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn lost_sessions_are_404_or_a_400_naming_the_session() {
        let ts = r#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: No valid session ID provided"},"id":null}"#;
        assert_eq!(check(StatusCode::BAD_REQUEST, ts).await, (true, ts.into()));
        assert!(check(StatusCode::NOT_FOUND, "").await.0);
        let other = r#"{"error":{"message":"Parse error"}}"#;
        assert_eq!(
            check(StatusCode::BAD_REQUEST, other).await,
            (false, other.into()),
            "the body is kept for the client"
        );
        assert!(!check(StatusCode::OK, "session").await.0);
    }
}
