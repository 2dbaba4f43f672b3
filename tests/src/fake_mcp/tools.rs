//! The example server's tools (`add`, `echo`, `sleep`, `fail`, `whoami`) with the same
//! results as `examples/python/server.py`: every success names the serving instance in
//! `structuredContent` and repeats it as pretty JSON in a text block, and tool
//! failures (including unknown tools) are `isError: true` results, not
//! JSON-RPC errors.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Number, Value, json};
use tokio_util::sync::CancellationToken;

use super::protocol::{Arguments, to_json};
use super::state::Shared;

/// Calls tool `name` and returns the rendered `CallToolResult` object.
///
/// `stop` is the server's shutdown token: a `sleep` in progress ends when the
/// server stops, so stopping never waits for long calls.
pub(super) async fn call(
    shared: &Shared,
    stop: &CancellationToken,
    name: &str,
    args: Arguments,
) -> Vec<u8> {
    let calls = shared.calls.fetch_add(1, Ordering::Relaxed) + 1;
    if name == "whoami" {
        // Like the example server, `whoami` is not counted as in flight.
        let in_flight = shared.in_flight.load(Ordering::Relaxed);
        return success(&Whoami {
            served_by: &shared.name,
            port: shared.addr.port(),
            calls,
            in_flight,
        });
    }
    let (_guard, in_flight_at_start) = InFlight::enter(&shared.in_flight);
    let latency = Duration::from_nanos(shared.latency_nanos.load(Ordering::Relaxed));
    if !latency.is_zero() && !pause(stop, latency).await {
        return stopped();
    }
    let served_by = &*shared.name;
    match name {
        "add" => match (number(&args.a), number(&args.b)) {
            (Some(a), Some(b)) => match sum(a, b) {
                Some(sum) => success(&Add { sum, served_by }),
                None => invalid("add", "the sum is not a finite number"),
            },
            _ => invalid("add", "a and b must be numbers"),
        },
        "echo" => match &args.text {
            Some(Value::String(text)) => success(&Echo { text, served_by }),
            _ => invalid("echo", "text must be a string"),
        },
        "sleep" => match args.ms.as_ref().and_then(millis) {
            Some(ms) => {
                if !pause(stop, Duration::from_millis(ms)).await {
                    return stopped();
                }
                success(&Slept {
                    slept_ms: ms,
                    served_by,
                    in_flight_at_start,
                })
            }
            None => invalid("sleep", "ms must be an integer"),
        },
        "fail" => {
            let message = match &args.message {
                Some(Value::String(m)) => m.as_str(),
                _ => "intentional failure",
            };
            tool_error(&format!(
                "Error executing tool fail: {message} (served_by={served_by})"
            ))
        }
        _ => tool_error(&format!("Unknown tool: {name}")),
    }
}

/// The `tools/list` result, rendered once per server.
pub(super) fn list() -> Vec<u8> {
    let number = json!({"anyOf": [{"type": "integer"}, {"type": "number"}]});
    let output = json!({"type": "object", "additionalProperties": true});
    let tool = |name: &str, description: &str, properties: Value, required: &[&str]| {
        json!({
            "name": name,
            "description": description,
            "inputSchema": {"type": "object", "properties": properties, "required": required},
            "outputSchema": output,
        })
    };
    let mut add = tool(
        "add",
        "Add two numbers; the result names the serving instance.",
        json!({"a": number, "b": number}),
        &["a", "b"],
    );
    // Pure: safe to send twice, as a retry policy needs to know.
    add["annotations"] = json!({"readOnlyHint": true, "idempotentHint": true});
    let tools = [
        add,
        tool(
            "echo",
            "Echo the text back; the result names the serving instance.",
            json!({"text": {"type": "string"}}),
            &["text"],
        ),
        tool(
            "sleep",
            "Sleep asynchronously for `ms` milliseconds.",
            json!({"ms": {"type": "integer"}}),
            &["ms"],
        ),
        tool(
            "fail",
            "Always fails with a tool error (isError=true).",
            json!({"message": {"type": "string", "default": "intentional failure"}}),
            &[],
        ),
        tool(
            "whoami",
            "Identity and counters of this instance.",
            json!({}),
            &[],
        ),
    ];
    to_json(&json!({ "tools": tools }))
}

// === impl InFlight ===

/// Counts a tool call as in flight until dropped (also when the call is cancelled).
struct InFlight<'a>(&'a AtomicU64);

impl<'a> InFlight<'a> {
    /// Enters and returns the guard plus the number of calls in flight before this one.
    fn enter(counter: &'a AtomicU64) -> (Self, u64) {
        let before = counter.fetch_add(1, Ordering::Relaxed);
        (Self(counter), before)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

// === outputs ===

#[derive(Serialize)]
struct Add<'a> {
    sum: Number,
    served_by: &'a str,
}

#[derive(Serialize)]
struct Echo<'a> {
    text: &'a str,
    served_by: &'a str,
}

#[derive(Serialize)]
struct Slept<'a> {
    slept_ms: u64,
    served_by: &'a str,
    in_flight_at_start: u64,
}

#[derive(Serialize)]
struct Whoami<'a> {
    served_by: &'a str,
    port: u16,
    calls: u64,
    in_flight: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CallToolResult<'a, S> {
    content: [TextContent<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    structured_content: Option<&'a S>,
    is_error: bool,
}

#[derive(Serialize)]
struct TextContent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

/// A successful result: `structuredContent` plus its pretty JSON as text (what
/// the Python SDK does for a dict return value).
fn success<S: Serialize>(output: &S) -> Vec<u8> {
    // Invariant: the outputs are plain structs with string keys.
    let text = serde_json::to_string_pretty(output).expect("tool outputs serialize");
    to_json(&CallToolResult {
        content: [TextContent {
            kind: "text",
            text: &text,
        }],
        structured_content: Some(output),
        is_error: false,
    })
}

fn tool_error(text: &str) -> Vec<u8> {
    to_json(&CallToolResult::<()> {
        content: [TextContent { kind: "text", text }],
        structured_content: None,
        is_error: true,
    })
}

fn invalid(tool: &str, why: &str) -> Vec<u8> {
    tool_error(&format!(
        "Error executing tool {tool}: invalid arguments: {why}"
    ))
}

fn stopped() -> Vec<u8> {
    tool_error("server stopped while the call was in flight")
}

/// Sleeps for `duration` unless the server stops first; returns whether it slept.
async fn pause(stop: &CancellationToken, duration: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(duration) => true,
        () = stop.cancelled() => false,
    }
}

fn number(value: &Option<Value>) -> Option<&Number> {
    match value {
        Some(Value::Number(n)) => Some(n),
        _ => None,
    }
}

/// `a + b`, exact for integers (like Python's `int`), else as a float.
fn sum(a: &Number, b: &Number) -> Option<Number> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64())
        && let Some(s) = x.checked_add(y)
    {
        return Some(s.into());
    }
    Number::from_f64(a.as_f64()? + b.as_f64()?)
}

/// Milliseconds for `sleep`: an integer, negative meaning zero (the example server clamps too).
fn millis(value: &Value) -> Option<u64> {
    let n = value.as_number()?;
    n.as_u64().or_else(|| n.as_i64().map(|_| 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_keeps_integers_exact_and_falls_back_to_floats() {
        assert_eq!(sum(&1.into(), &2.into()), Some(3.into()));
        assert_eq!(
            sum(&i64::MAX.into(), &1.into()).and_then(|n| n.as_f64()),
            Some(i64::MAX as f64 + 1.0)
        );
        let half = Number::from_f64(1.5).expect("finite");
        assert_eq!(sum(&half, &2.into()), Number::from_f64(3.5));
    }

    #[test]
    fn millis_clamps_negative_and_rejects_fractions() {
        assert_eq!(millis(&json!(5)), Some(5));
        assert_eq!(millis(&json!(-5)), Some(0));
        assert_eq!(millis(&json!(1.5)), None);
        assert_eq!(millis(&json!("5")), None);
    }
}
