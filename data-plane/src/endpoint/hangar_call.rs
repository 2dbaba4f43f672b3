//! `hangar_call`: MCP Hangar's batch tool, with the same input and output.
//!
//! Input: `{"calls":[{"mcp_server","tool","arguments","timeout"?}],
//! "max_concurrency"?, "timeout"?, "fail_fast"?, "max_attempts"?}`.
//! Output: `{"batch_id","success","total","succeeded","failed","elapsed_ms",
//! "results":[{"index","call_id","success","result","error","error_type",
//! "elapsed_ms","served_by"}]}`. A result with `isError: true` is reported as
//! a failed call (`ToolInvocationError`, as MCP Hangar does) but it is an
//! answer: it never counts against the member.

use hangar_rate::CallerKey;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::observe::{self, CallScope, Scope};
use crate::route::access::Who;
use crate::route::dispatch;
use crate::route::retry::Retried;
use crate::route::table::RoutingTable;

/// Most calls one batch may hold.
const MAX_CALLS: usize = 100;
/// Bounds and default of `max_concurrency`.
const CONCURRENCY_RANGE: (usize, usize) = (1, 50);
const DEFAULT_CONCURRENCY: usize = 10;
/// Bounds and default of the batch `timeout`, in seconds.
const TIMEOUT_RANGE_S: (f64, f64) = (1.0, 300.0);
const DEFAULT_TIMEOUT_S: f64 = 60.0;

/// The tool's input.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchRequest {
    calls: Vec<CallRequest>,
    #[serde(default)]
    max_concurrency: Option<u32>,
    #[serde(default)]
    timeout: Option<f64>,
    #[serde(default)]
    fail_fast: bool,
    /// Accepted for compatibility; calls that reached a member are never
    /// retried, and unreached ones always fail over, so it changes nothing.
    #[serde(default)]
    #[allow(dead_code)]
    max_attempts: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallRequest {
    mcp_server: String,
    tool: String,
    arguments: Map<String, Value>,
    #[serde(default)]
    timeout: Option<f64>,
}

/// The tool's output.
#[derive(Debug, Serialize)]
pub(crate) struct BatchResponse {
    batch_id: String,
    success: bool,
    total: usize,
    succeeded: usize,
    failed: usize,
    elapsed_ms: f64,
    results: Vec<CallResponse>,
}

#[derive(Debug, Serialize)]
struct CallResponse {
    index: usize,
    call_id: String,
    success: bool,
    result: Option<Value>,
    error: Option<String>,
    error_type: Option<&'static str>,
    elapsed_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    served_by: Option<String>,
    /// When the target has a retry policy, as MCP Hangar reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_metadata: Option<RetryMetadata>,
}

/// The tries of one call under a retry policy.
#[derive(Debug, Serialize)]
struct RetryMetadata {
    attempts: usize,
    retries: Vec<Retried>,
    total_time_ms: f64,
}

/// A batch refused before any call was made, shaped like MCP Hangar's.
#[derive(Debug, Serialize)]
pub(crate) struct ValidationFailure {
    success: bool,
    error: &'static str,
    validation_errors: Vec<FieldError>,
}

#[derive(Debug, Serialize)]
struct FieldError {
    index: Option<usize>,
    field: String,
    message: String,
}

impl ValidationFailure {
    fn new(errors: Vec<FieldError>) -> Self {
        Self {
            success: false,
            error: "Validation failed",
            validation_errors: errors,
        }
    }

    /// A failure for input that does not match the schema, naming the
    /// call (`index`) and field where it went wrong.
    fn schema(error: serde_path_to_error::Error<serde_json::Error>) -> Self {
        use serde_path_to_error::Segment;
        let segments: Vec<&Segment> = error.path().iter().collect();
        let index = match segments.as_slice() {
            [Segment::Map { key }, Segment::Seq { index }, ..] if key == "calls" => Some(*index),
            _ => None,
        };
        let message = error.inner().to_string();
        // serde names a missing field in its message, not in the path.
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next());
        let field = match (segments.last(), missing) {
            (_, Some(missing)) => missing.to_owned(),
            (Some(Segment::Map { key }), None) => key.clone(),
            _ => "arguments".to_owned(),
        };
        Self::new(vec![FieldError {
            index,
            field,
            message,
        }])
    }
}

impl BatchRequest {
    /// The batch in a `hangar_call`'s arguments, or what is wrong with them.
    pub(crate) fn parse(arguments: Value) -> Result<Self, ValidationFailure> {
        serde_path_to_error::deserialize(arguments).map_err(ValidationFailure::schema)
    }

    /// The batch in the JSON text of a `hangar_call`'s arguments. Read
    /// straight from the text; what is wrong with it is told as
    /// [`BatchRequest::parse`] tells it (text errors also name a line and
    /// column, which mean nothing to the caller).
    pub(crate) fn parse_text(arguments: &str) -> Result<Self, ValidationFailure> {
        serde_json::from_str(arguments).or_else(|_| match serde_json::from_str(arguments) {
            Ok(value) => Self::parse(value),
            Err(error) => Err(ValidationFailure::new(vec![FieldError {
                index: None,
                field: "arguments".to_owned(),
                message: error.to_string(),
            }])),
        })
    }
}

/// What a `hangar_call` answers: the batch's results, or why it was
/// refused before any call was made (a tool error, `isError: true`).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum Outcome {
    Ran(BatchResponse),
    Refused(ValidationFailure),
}

impl Outcome {
    /// Whether the answer is a tool error.
    pub(crate) fn is_error(&self) -> bool {
        matches!(self, Outcome::Refused(_))
    }

    /// Tells the request's record how the batch ended.
    pub(crate) fn tell(&self, scope: &Scope) {
        match self {
            Outcome::Ran(batch) => scope.batch_ended(batch.total, batch.failed, None),
            Outcome::Refused(_) => scope.batch_ended(0, 0, Some("invalid hangar_call arguments")),
        }
    }
}

/// Checks the batch's shape before any call is made. Unknown servers are
/// reported per call (`ServerNotFoundError`), so the other calls still run.
pub(crate) fn validate(batch: &BatchRequest) -> Result<(), ValidationFailure> {
    let mut errors = Vec::new();
    if batch.calls.len() > MAX_CALLS {
        errors.push(FieldError {
            index: None,
            field: "calls".into(),
            message: format!(
                "at most {MAX_CALLS} calls per batch, got {}",
                batch.calls.len()
            ),
        });
    }
    for (index, call) in batch.calls.iter().enumerate() {
        if call.timeout.is_some_and(|t| !(t > 0.0 && t.is_finite())) {
            errors.push(FieldError {
                index: Some(index),
                field: "timeout".into(),
                message: "timeout must be a positive number of seconds".into(),
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ValidationFailure::new(errors))
    }
}

/// Runs every call of a validated batch for `caller`, at most
/// `max_concurrency` at once, within the batch timeout. Each call counts
/// once against the rate limits.
pub(crate) async fn run(
    batch: BatchRequest,
    table: Arc<RoutingTable>,
    (caller, who): (CallerKey, &Who),
) -> BatchResponse {
    let started = Instant::now();
    let concurrency = batch
        .max_concurrency
        .map_or(DEFAULT_CONCURRENCY, |c| c as usize)
        .clamp(CONCURRENCY_RANGE.0, CONCURRENCY_RANGE.1);
    let batch_timeout = batch
        .timeout
        .filter(|t| t.is_finite())
        .unwrap_or(DEFAULT_TIMEOUT_S)
        .clamp(TIMEOUT_RANGE_S.0, TIMEOUT_RANGE_S.1);
    let deadline = started + Duration::from_secs_f64(batch_timeout);
    let stop = AtomicBool::new(false);
    let fail_fast = batch.fail_fast;
    let (stop, table) = (&stop, &table);
    let mut results: Vec<CallResponse> = futures::stream::iter(batch.calls.into_iter().enumerate())
        .map(|(index, call)| async move {
            if stop.load(Ordering::Relaxed) {
                return skipped(index);
            }
            let response = run_one(index, call, table, deadline, (caller, who)).await;
            if fail_fast && !response.success {
                stop.store(true, Ordering::Relaxed);
            }
            response
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    results.sort_by_key(|r| r.index);
    let succeeded = results.iter().filter(|r| r.success).count();
    BatchResponse {
        batch_id: uuid::Uuid::new_v4().to_string(),
        success: succeeded == results.len(),
        total: results.len(),
        succeeded,
        failed: results.len() - succeeded,
        elapsed_ms: millis(started.elapsed()),
        results,
    }
}

async fn run_one(
    index: usize,
    call: CallRequest,
    table: &RoutingTable,
    deadline: Instant,
    asker: (CallerKey, &Who),
) -> CallResponse {
    let started = Instant::now();
    let remaining = deadline.saturating_duration_since(started);
    // Validated positive and finite; capped before conversion, which
    // panics on overflow.
    let timeout = call.timeout.map_or(remaining, |t| {
        Duration::from_secs_f64(t.min(TIMEOUT_RANGE_S.1)).min(remaining)
    });
    let arguments = Value::Object(call.arguments);
    let is_group = || table.groups.contains_key(&call.mcp_server);
    let observed = CallScope::begin(index, &call.mcp_server, &call.tool, is_group);
    let dispatched = dispatch::call(
        table,
        &call.mcp_server,
        &call.tool,
        &arguments,
        timeout,
        asker,
    );
    let (outcome, retries) =
        observe::within(observed.as_ref().map(CallScope::context), dispatched).await;
    let mut response = CallResponse {
        index,
        call_id: uuid::Uuid::new_v4().to_string(),
        success: false,
        result: None,
        error: None,
        error_type: None,
        elapsed_ms: 0.0,
        served_by: None,
        retry_metadata: None,
    };
    match outcome {
        Ok(served) => {
            if served.result.get("isError").and_then(Value::as_bool) == Some(true) {
                let text = first_text(&served.result);
                response.error_type = Some(tool_error_type(text));
                response.error = Some(format!("tool_error: {text}"));
            } else {
                response.success = true;
            }
            response.result = Some(served.result);
            response.served_by = Some(served.served_by);
        }
        Err(err) => {
            tracing::debug!(call.index = index, error = %hangar_runtime::error_chain(&err), "call failed");
            response.error_type = Some(err.error_type());
            response.error = Some(err.to_string());
            if let dispatch::CallError::Upstream { member, .. } = err {
                response.served_by = Some(member);
            }
        }
    }
    response.elapsed_ms = millis(started.elapsed());
    if let Some(observed) = observed {
        match (&response.error_type, &response.error) {
            (None, _) => observed.end("ok", None),
            (Some(kind), Some(error)) if response.result.is_some() => {
                observed.end("tool_error", Some((kind, error)));
            }
            (Some(kind), error) => {
                observed.end("failed", Some((kind, error.as_deref().unwrap_or(kind))))
            }
        }
    }
    response.retry_metadata = retries.map(|retries| RetryMetadata {
        attempts: retries.len() + 1,
        retries,
        total_time_ms: response.elapsed_ms,
    });
    response
}

fn skipped(index: usize) -> CallResponse {
    CallResponse {
        index,
        call_id: uuid::Uuid::new_v4().to_string(),
        success: false,
        result: None,
        error: Some("skipped: an earlier call failed and fail_fast is set".into()),
        error_type: Some("FailFastSkipped"),
        elapsed_ms: 0.0,
        served_by: None,
        retry_metadata: None,
    }
}

/// The `error_type` of an `isError` result: SDK servers report arguments
/// that fail the tool's input schema as such a result carrying JSON-RPC's
/// invalid-params code (TypeScript: "MCP error -32602: Input validation
/// error: ..."), which is the caller's mistake, not the tool's.
fn tool_error_type(text: &str) -> &'static str {
    if text.contains("-32602") || text.contains("Input validation error") {
        "InvalidArgumentsError"
    } else {
        "ToolInvocationError"
    }
}

/// The first text block of a `CallToolResult`, for error messages.
fn first_text(result: &Value) -> &str {
    result
        .get("content")
        .and_then(Value::as_array)
        .and_then(|blocks| {
            blocks
                .iter()
                .find_map(|b| b.get("text").and_then(Value::as_str))
        })
        .unwrap_or("the tool reported an error")
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0
}

/// JSON Schema of the tool's input, as listed by `tools/list`.
pub(crate) fn input_schema() -> Map<String, Value> {
    let schema = serde_json::json!({
        "type": "object",
        "properties": {
            "calls": {
                "type": "array",
                "maxItems": MAX_CALLS,
                "description": "Tool calls to make; each names a server or a group",
                "items": {
                    "type": "object",
                    "properties": {
                        "mcp_server": {"type": "string", "description": "Server or group id from the config"},
                        "tool": {"type": "string"},
                        "arguments": {"type": "object"},
                        "timeout": {"type": "number", "description": "Seconds for this call"}
                    },
                    "required": ["mcp_server", "tool", "arguments"],
                    "additionalProperties": false
                }
            },
            "max_concurrency": {"type": "integer", "minimum": 1, "maximum": 50, "default": DEFAULT_CONCURRENCY},
            "timeout": {"type": "number", "minimum": 1, "maximum": 300, "default": DEFAULT_TIMEOUT_S},
            "fail_fast": {"type": "boolean", "default": false},
            "max_attempts": {"type": ["integer", "null"]}
        },
        "required": ["calls"],
        "additionalProperties": false
    });
    match schema {
        Value::Object(map) => map,
        _ => unreachable!("the schema literal is an object"),
    }
}
