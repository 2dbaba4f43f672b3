//! Telling from a relayed answer that a member lost a client's session
//! ([`rejects_session`], the rule our own requests use too): such a request
//! was not processed, so the session may be re-opened elsewhere and the
//! request sent there. Only a short 400 body is read to tell.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;

use crate::upstream::answer::rejects_session;

/// Longest error body read to tell a lost session from another refusal.
const MAX_REFUSAL_BODY: usize = 16 * 1024;

/// Whether `response` says the member does not know the session (see
/// [`rejects_session`]), and the response itself (rebuilt when its body had
/// to be read to tell).
pub(super) async fn refuses_session(response: Response) -> (bool, Response) {
    let status = response.status();
    match status {
        StatusCode::NOT_FOUND => (true, response),
        StatusCode::BAD_REQUEST => {
            let (parts, body) = response.into_parts();
            match axum::body::to_bytes(body, MAX_REFUSAL_BODY).await {
                Ok(bytes) => (
                    rejects_session(status, &bytes),
                    Response::from_parts(parts, Body::from(bytes)),
                ),
                // Too long or broken off: not the short refusal we look for.
                Err(_) => (false, Response::from_parts(parts, Body::empty())),
            }
        }
        _ => (false, response),
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
