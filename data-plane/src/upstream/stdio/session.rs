//! The JSON-RPC multiplexer over one running stdio MCP server: many callers
//! share the process's stdin and stdout.
//!
//! One writer task owns stdin, so every message goes out as one whole line:
//! a caller that gives up mid-request cannot leave half a line on the wire.
//! One reader task owns stdout. It matches responses to pending requests by
//! our own ids (a client's ids never reach the server), answers the server's
//! own requests so it never waits on us, and hands notifications to
//! [`Session::notifications`]' subscribers.
//!
//! The session never decides the fate of the process: when a pipe breaks it
//! reports that ([`Session::io_lost`]) and the supervisor, which owns the
//! child, ends the session with the reason it knows best (usually the exit
//! status).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, ChildStdout};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::server::jsonrpc::METHOD_NOT_FOUND;
use crate::upstream::activity::Activity;
use crate::upstream::answer::into_result;
use crate::upstream::error::UpstreamError;

/// Longest stdout line taken in. Tool results can carry base64 images, so
/// this is generous; a longer line is skipped without being buffered whole.
pub(super) const MAX_LINE: usize = 64 * 1024 * 1024;

type Answer = Result<Value, UpstreamError>;

/// The MCP session with one process.
#[derive(Debug)]
pub(super) struct Session {
    /// Lines for the writer task, each a whole JSON-RPC message with its `\n`.
    /// Unbounded on purpose: the reader task also queues answers here, and a
    /// bounded queue could leave it waiting on a server that is itself
    /// blocked writing to a stdout nobody reads. Callers wait for their
    /// answer, so the queue holds at most one line per request in flight.
    outbox: mpsc::UnboundedSender<Vec<u8>>,
    pending: Mutex<Pending>,
    next_id: AtomicU64,
    /// The answer to our `initialize`, once the handshake is done.
    initialize_result: ArcSwapOption<Value>,
    notifications: broadcast::Sender<Arc<Value>>,
    /// Why a pipe broke, first cause only.
    io_lost: Mutex<Option<String>>,
    io_lost_token: CancellationToken,
    /// Cancelled by [`Session::end`]: stops the reader and writer; the
    /// writer then drops stdin, which tells the server to exit.
    closed: CancellationToken,
    /// When the process last wrote a line.
    activity: Arc<Activity>,
    /// A request fails when the process writes nothing for this long.
    read_timeout: Option<Duration>,
}

/// Requests waiting for their answer.
#[derive(Debug, Default)]
struct Pending {
    waiting: HashMap<u64, oneshot::Sender<Answer>>,
    /// Why the session ended; once set, no request is admitted.
    ended: Option<String>,
}

/// What [`read_line`] found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Line {
    /// A whole line, in the buffer without its `\n`.
    Complete,
    /// A line longer than the limit, skipped; the buffer is empty.
    TooLong,
}

// === impl Session ===

impl Session {
    /// Starts the reader and writer tasks on `tracker` over the child's pipes.
    pub(super) fn start(
        stdin: ChildStdin,
        stdout: ChildStdout,
        notifications: broadcast::Sender<Arc<Value>>,
        activity: Arc<Activity>,
        read_timeout: Option<Duration>,
        tracker: &TaskTracker,
    ) -> Arc<Self> {
        let (outbox, lines) = mpsc::unbounded_channel();
        let session = Arc::new(Self {
            outbox,
            pending: Mutex::new(Pending::default()),
            next_id: AtomicU64::new(1),
            initialize_result: ArcSwapOption::empty(),
            notifications,
            io_lost: Mutex::new(None),
            io_lost_token: CancellationToken::new(),
            closed: CancellationToken::new(),
            activity,
            read_timeout,
        });
        let span = tracing::Span::current();
        tracker.spawn(
            session
                .clone()
                .write_loop(stdin, lines)
                .instrument(span.clone()),
        );
        tracker.spawn(session.clone().read_loop(stdout).instrument(span));
        session
    }

    /// `initialize` and `notifications/initialized`; keeps the answer.
    pub(super) async fn initialize(&self, timeout: Duration) -> Result<Arc<Value>, UpstreamError> {
        let params = json!({
            "protocolVersion": crate::upstream::http::LEGACY_VERSION,
            "capabilities": {},
            "clientInfo": { "name": "hangar-data-plane", "version": env!("CARGO_PKG_VERSION") },
        });
        let result = self.request("initialize", params, timeout).await?;
        if result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .is_none()
        {
            return Err(UpstreamError::Protocol(
                "initialize result without protocolVersion".into(),
            ));
        }
        let result = Arc::new(result);
        self.initialize_result.store(Some(result.clone()));
        self.notify("notifications/initialized", None);
        Ok(result)
    }

    /// The server's answer to `initialize`, once the handshake is done.
    pub(super) fn initialize_result(&self) -> Option<Arc<Value>> {
        self.initialize_result.load_full()
    }

    /// One request; its `result`, or why there is none.
    pub(super) async fn request(
        &self,
        method: &str,
        mut params: Value,
        timeout: Duration,
    ) -> Answer {
        crate::observe::propagate_in_meta(&mut params);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let message = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let line = encode(&message)
            .map_err(|e| UpstreamError::Protocol(format!("cannot encode the request: {e}")))?;
        let (answer_tx, answer_rx) = oneshot::channel();
        {
            let mut pending = self.pending.lock();
            if let Some(reason) = &pending.ended {
                return Err(UpstreamError::Unavailable(reason.clone()));
            }
            // Registered before the line is queued, so the answer cannot
            // arrive before anyone waits for it.
            pending.waiting.insert(id, answer_tx);
        }
        let mut in_flight = InFlight {
            session: self,
            id,
            cancel_reason: "the request was abandoned",
        };
        if self.outbox.send(line).is_err() {
            // The writer is gone, so the line was never written.
            return Err(UpstreamError::Unavailable(self.end_reason()));
        }
        let sent = tokio::time::Instant::now();
        let deadline = sent + timeout;
        tokio::pin!(answer_rx);
        loop {
            // Silence counts from the later of the request and the
            // process's last line: progress or other answers are signs of life.
            let quiet_until = self
                .read_timeout
                .map(|quiet| self.activity.last().max(sent) + quiet);
            let wake = quiet_until.map_or(deadline, |quiet| quiet.min(deadline));
            match tokio::time::timeout_at(wake, &mut answer_rx).await {
                Ok(Ok(answer)) => return answer,
                // The sender went away without an answer: the session ended.
                Ok(Err(_)) => return Err(UpstreamError::Exited(self.end_reason())),
                Err(_) if tokio::time::Instant::now() >= deadline => {
                    in_flight.cancel_reason = "timed out";
                    return Err(UpstreamError::Timeout(timeout));
                }
                Err(_) => {
                    let still_quiet = self
                        .read_timeout
                        .filter(|&quiet| self.activity.last().max(sent) + quiet <= wake);
                    if let Some(quiet) = still_quiet {
                        in_flight.cancel_reason = "the process went quiet";
                        return Err(UpstreamError::Quiet(quiet));
                    }
                }
            }
        }
    }

    /// Sends a notification (no answer expected); dropped if the session ended.
    pub(super) fn notify(&self, method: &str, params: Option<Value>) {
        let message = match params {
            Some(params) => json!({ "jsonrpc": "2.0", "method": method, "params": params }),
            None => json!({ "jsonrpc": "2.0", "method": method }),
        };
        if let Ok(line) = encode(&message) {
            let _ = self.outbox.send(line);
        }
    }

    /// Ends the session: fails every pending request with
    /// [`UpstreamError::Exited`], refuses new ones with
    /// [`UpstreamError::Unavailable`], and closes stdin. The first reason wins.
    pub(super) fn end(&self, reason: &str) {
        let waiting = {
            let mut pending = self.pending.lock();
            if pending.ended.is_some() {
                return;
            }
            pending.ended = Some(reason.to_owned());
            std::mem::take(&mut pending.waiting)
        };
        for (_, answer) in waiting {
            let _ = answer.send(Err(UpstreamError::Exited(reason.to_owned())));
        }
        self.closed.cancel();
    }

    /// Resolves when stdout reached its end or a pipe broke; the reason.
    pub(super) async fn io_lost(&self) -> String {
        self.io_lost_token.cancelled().await;
        self.io_lost
            .lock()
            .clone()
            .unwrap_or_else(|| "the process's pipes closed".into())
    }

    fn lose_io(&self, reason: String) {
        self.io_lost.lock().get_or_insert(reason);
        self.io_lost_token.cancel();
    }

    fn end_reason(&self) -> String {
        self.pending
            .lock()
            .ended
            .clone()
            .unwrap_or_else(|| "the session closed".into())
    }

    /// Writes queued lines to stdin until the session ends; dropping stdin
    /// on the way out closes it.
    async fn write_loop(
        self: Arc<Self>,
        mut stdin: ChildStdin,
        mut lines: mpsc::UnboundedReceiver<Vec<u8>>,
    ) {
        loop {
            let line = tokio::select! {
                biased;
                () = self.closed.cancelled() => break,
                line = lines.recv() => line,
            };
            let Some(line) = line else { break };
            // Also raced with `closed`: a server that stopped reading stdin
            // must not keep this task (and its stdin) alive.
            let written = tokio::select! {
                () = self.closed.cancelled() => break,
                written = stdin.write_all(&line) => written,
            };
            if let Err(e) = written {
                self.lose_io(format!("writing to its stdin failed: {e}"));
                break;
            }
        }
    }

    /// Reads stdout line by line until it ends or the session ends.
    async fn read_loop(self: Arc<Self>, stdout: ChildStdout) {
        let mut reader = BufReader::with_capacity(64 * 1024, stdout);
        let mut line = Vec::new();
        loop {
            let read = tokio::select! {
                () = self.closed.cancelled() => return,
                read = read_line(&mut reader, &mut line, MAX_LINE) => read,
            };
            if matches!(read, Ok(Some(_))) {
                self.activity.touch();
            }
            match read {
                Ok(Some(Line::Complete)) => self.dispatch_line(&line),
                Ok(Some(Line::TooLong)) => {
                    tracing::debug!(limit = MAX_LINE, "skipped a stdout line over the limit");
                }
                Ok(None) => {
                    self.lose_io("it closed its stdout".into());
                    return;
                }
                Err(e) => {
                    self.lose_io(format!("reading its stdout failed: {e}"));
                    return;
                }
            }
        }
    }

    fn dispatch_line(&self, line: &[u8]) {
        if line.trim_ascii().is_empty() {
            return;
        }
        match serde_json::from_slice::<Value>(line) {
            // Batches were allowed in 2025-03-26; take each message.
            Ok(Value::Array(messages)) => messages.into_iter().for_each(|m| self.dispatch(m)),
            Ok(message) => self.dispatch(message),
            // Some servers print banners or logs on stdout; skip them.
            Err(e) => tracing::debug!(
                line = %String::from_utf8_lossy(&line[..line.len().min(200)]),
                error = %e,
                "skipped a stdout line that is not JSON",
            ),
        }
    }

    fn dispatch(&self, message: Value) {
        let Value::Object(message) = message else {
            tracing::debug!("skipped a stdout message that is not a JSON object");
            return;
        };
        let id = message.get("id").filter(|id| !id.is_null());
        let method = message.get("method").and_then(Value::as_str);
        match (method, id) {
            (Some(method), Some(id)) => self.answer_server_request(method, id.clone()),
            (Some(_), None) => {
                // No subscriber is normal: nothing relays them yet.
                let _ = self.notifications.send(Arc::new(Value::Object(message)));
            }
            (None, Some(id)) => {
                let Some(waiting) = id
                    .as_u64()
                    .and_then(|id| self.pending.lock().waiting.remove(&id))
                else {
                    tracing::debug!(%id, "skipped an answer to no pending request (timed out or cancelled)");
                    return;
                };
                let _ = waiting.send(into_result(Value::Object(message)));
            }
            (None, None) => tracing::debug!("skipped a message with neither method nor id"),
        }
    }

    /// Answers a request from the server at once, so it never waits on a
    /// client that is not there: `ping` is served, everything else (roots,
    /// sampling, elicitation) needs the end client, which stdio members do
    /// not reach through Hangar.
    fn answer_server_request(&self, method: &str, id: Value) {
        let answer = if method == "ping" {
            json!({ "jsonrpc": "2.0", "id": id, "result": {} })
        } else {
            tracing::debug!(method, "refused a request from the server");
            json!({
                "jsonrpc": "2.0",
                "id": id,
                "error": {
                    "code": METHOD_NOT_FOUND,
                    "message": "not supported through Hangar",
                    "data": { "method": method },
                },
            })
        };
        if let Ok(line) = encode(&answer) {
            let _ = self.outbox.send(line);
        }
    }
}

/// A request registered in [`Pending`]. Dropping it unregisters the request;
/// if it was still unanswered (timed out, or the caller gave up) the server
/// gets `notifications/cancelled` so it can stop the work.
struct InFlight<'a> {
    session: &'a Session,
    id: u64,
    cancel_reason: &'static str,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let unanswered = self
            .session
            .pending
            .lock()
            .waiting
            .remove(&self.id)
            .is_some();
        if unanswered {
            self.session.notify(
                "notifications/cancelled",
                Some(json!({ "requestId": self.id, "reason": self.cancel_reason })),
            );
        }
    }
}

/// One JSON-RPC message as a stdio line. Compact JSON escapes every newline
/// inside strings, so the only `\n` is the terminator.
fn encode(message: &Value) -> Result<Vec<u8>, serde_json::Error> {
    let mut line = serde_json::to_vec(message)?;
    line.push(b'\n');
    Ok(line)
}

/// Reads the next line into `buf` (without its `\n`); `None` at the end of
/// the stream. A line longer than `max` is consumed but not kept, so a
/// process cannot make us buffer without bound.
pub(super) async fn read_line<R>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<Line>>
where
    R: AsyncBufRead + Unpin,
{
    buf.clear();
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            // End of stream; a last line without `\n` still counts.
            return Ok(match (too_long, buf.is_empty()) {
                (true, _) => Some(Line::TooLong),
                (false, true) => None,
                (false, false) => Some(Line::Complete),
            });
        }
        let newline = available.iter().position(|&b| b == b'\n');
        let chunk = &available[..newline.unwrap_or(available.len())];
        if !too_long {
            if buf.len() + chunk.len() > max {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        let used = newline.map_or(available.len(), |at| at + 1);
        reader.consume(used);
        if newline.is_some() {
            return Ok(Some(if too_long {
                Line::TooLong
            } else {
                Line::Complete
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], max: usize) -> Vec<Result<String, ()>> {
        let mut reader = BufReader::with_capacity(4, input);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while let Some(line) = read_line(&mut reader, &mut buf, max).await.expect("read") {
            out.push(match line {
                Line::Complete => Ok(String::from_utf8_lossy(&buf).into_owned()),
                Line::TooLong => Err(()),
            });
        }
        out
    }

    /// Lines split across buffer refills are joined, an overlong one is
    /// skipped without losing the next, and a last line needs no `\n`.
    #[tokio::test]
    async fn reads_bounded_lines() {
        let got = lines(b"one\n0123456789abc\n\ntwo\nlast", 10).await;
        let want: Vec<Result<String, ()>> = vec![
            Ok("one".into()),
            Err(()),
            Ok(String::new()),
            Ok("two".into()),
            Ok("last".into()),
        ];
        assert_eq!(got, want);
        assert_eq!(lines(b"", 10).await, vec![]);
        assert_eq!(lines(b"0123456789abc", 10).await, vec![Err(())]);
    }
}
