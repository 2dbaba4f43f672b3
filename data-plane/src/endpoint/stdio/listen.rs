//! The session's event stream, for a stdio client: an HTTP client opens a
//! GET on its session to hear what the member sends outside any request
//! (log messages, `resources/updated`, list changes, `roots/list` and other
//! requests to the client); the stdio adapter opens it on the client's
//! behalf once the session is initialized, and writes each message to
//! stdout. A stream that ends is opened again, with backoff, as long as
//! the session lives; a member that offers none (405) is not asked again.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use futures::StreamExt;
use hangar_runtime::backoff::Backoff;
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::session::{Session, stream_headers};
use super::split::Events;
use crate::endpoint::groups::{self, ClientRequest};
use crate::route::table::Routes;
use crate::server::guard::Peek;

/// Reopening a stream that ended: first delay and cap.
const REOPEN_MIN: Duration = Duration::from_millis(200);
const REOPEN_MAX: Duration = Duration::from_secs(10);

/// Follows the session's event stream until `stop`, the session's end, or
/// a member that offers none.
pub(super) async fn follow(
    routes: Arc<Routes>,
    group: String,
    session: Arc<Mutex<Session>>,
    out: mpsc::Sender<String>,
    stop: CancellationToken,
) {
    let mut backoff = Backoff::new(REOPEN_MIN, REOPEN_MAX);
    loop {
        let Some(headers) = stream_headers(&session.lock()) else {
            return;
        };
        let request = ClientRequest {
            method: Method::GET,
            headers,
            body: Bytes::new(),
            peek: Peek::default(),
            caller: crate::server::caller::stdio(),
            who: crate::route::access::Who::Local,
        };
        let response = tokio::select! {
            response = groups::route(&routes, &group, request) => response,
            () = stop.cancelled() => return,
        };
        match response.status() {
            StatusCode::OK => {
                let mut body = response.into_body().into_data_stream();
                let mut events = Events::new(true);
                loop {
                    let chunk = tokio::select! {
                        chunk = body.next() => chunk,
                        () = stop.cancelled() => return,
                    };
                    let Some(Ok(chunk)) = chunk else { break };
                    for message in events.push(&chunk) {
                        backoff.reset();
                        if out.send(message.to_string()).await.is_err() {
                            return;
                        }
                    }
                }
                tracing::debug!(group = %group, "session event stream ended; opening it again");
            }
            // No stream offered, or the session is gone for good.
            StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_FOUND => return,
            status => {
                tracing::debug!(group = %group, %status, "session event stream refused; trying again");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff.next_delay()) => {}
            () = stop.cancelled() => return,
        }
    }
}
