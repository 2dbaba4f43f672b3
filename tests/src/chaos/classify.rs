//! What one call came to, from the HTTP status and the error text only:
//! the bench sees what a user sees, not the data plane's insides.
//!
//! A failed call is, in this order of rules:
//! 1. **session**: a client that holds a session (legacy, `hangar_call`)
//!    got HTTP 404, or an error whose text mentions "session" (the data
//!    plane's "Session not found", a member's "No valid session ID").
//! 2. **never delivered**: refused before any member ran it: the data
//!    plane refused the TCP connection; HTTP 503; an error saying "No
//!    available member", "Circuit breaker open" or that a group is busy
//!    (`hangar_call`: `error_type` `NoAvailableMemberError`,
//!    `CircuitBreakerOpen`, `ConcurrencyLimitError`); or "connection
//!    failed", which is the data plane's text for a member that refused
//!    the connection, so the member never saw the call either (these are
//!    still counted apart in the causes, as "HTTP 502 ... connection failed").
//! 3. **delivered**: the member got the call and it failed: any other 502
//!    ("member 'ID' failed: transport error / read_timeout ..."), a
//!    JSON-RPC error or `isError` result in an HTTP 200 answer, and
//!    `hangar_call` results with `ToolInvocationError` or `TimeoutError`.
//! 4. **other**: no answer in the client's 60 s, a connection that broke
//!    mid-answer, and any other status (400 ...). These are not guessed
//!    into the two buckets above.
//!
//! Every failure also gets a short cause label (status, error type, the
//! message with quoted names and numbers blanked) so the report can show
//! what the failures were.

use serde_json::Value;

use crate::chaos::wire::{Answer, Kind};

/// The bucket of a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// A member got the call and it failed.
    Delivered,
    /// Refused before any member ran it.
    NeverDelivered,
    /// The client's session was not found.
    Session,
    /// Neither of the above can be told from the answer.
    Other,
}

/// What one call came to.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A result.
    Ok {
        /// The member the result names, if it names one.
        served_by: Option<String>,
    },
    /// No result.
    Failed {
        /// The bucket.
        class: Class,
        /// A short label that groups alike failures.
        cause: String,
        /// The error text, shortened.
        detail: String,
    },
}

/// Classifies the answer a client of `kind` got.
pub fn classify(kind: Kind, answer: &Answer) -> Outcome {
    let (status, message, text) = match answer {
        Answer::Transport {
            connect,
            timeout,
            detail,
            ..
        } => {
            let (class, cause) = if *connect {
                (Class::NeverDelivered, "data plane refused the connection")
            } else if *timeout {
                (Class::Other, "no answer within the client's timeout")
            } else {
                (Class::Other, "connection broke before the answer")
            };
            return failed(class, cause.to_owned(), detail);
        }
        Answer::Http {
            status,
            message,
            text,
        } => (*status, message.as_ref(), text.as_str()),
    };
    let mut error_type = None;
    let error = match message {
        Some(m) if m.get("error").is_some() => m["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        Some(m) => match result_error(kind, &m["result"]) {
            Ok(served_by) if (200..300).contains(&status) => return Outcome::Ok { served_by },
            Ok(_) => String::new(),
            Err((kind, text)) => {
                error_type = kind;
                text
            }
        },
        None => text.to_owned(),
    };
    let lower = error.to_lowercase();
    let class = if kind.has_session() && (status == 404 || lower.contains("session")) {
        Class::Session
    } else if status == 503
        || lower.contains("no available member")
        || lower.contains("circuit breaker open")
        || lower.contains("is busy")
        || lower.contains("connection failed")
        || matches!(
            error_type.as_deref(),
            Some("NoAvailableMemberError" | "CircuitBreakerOpen" | "ConcurrencyLimitError")
        )
    {
        Class::NeverDelivered
    } else if status == 502
        || (status == 200 && message.is_some())
        || matches!(
            error_type.as_deref(),
            Some("ToolInvocationError" | "TimeoutError")
        )
    {
        Class::Delivered
    } else {
        Class::Other
    };
    let cause = format!(
        "HTTP {status}{}: {}",
        error_type.map(|t| format!(" {t}")).unwrap_or_default(),
        blank(&error)
    );
    failed(class, cause, &error)
}

fn failed(class: Class, cause: String, detail: &str) -> Outcome {
    Outcome::Failed {
        class,
        cause,
        detail: detail.chars().take(240).collect(),
    }
}

/// For a `tools/call` result: `Ok(served_by)` if it is a success, else
/// the error type (for `hangar_call`) and text.
fn result_error(kind: Kind, result: &Value) -> Result<Option<String>, (Option<String>, String)> {
    let served = |v: &Value| v["served_by"].as_str().map(str::to_owned);
    if kind == Kind::HangarCall {
        let structured = match result.get("structuredContent") {
            Some(s) => s.clone(),
            None => result["content"][0]["text"]
                .as_str()
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or_default(),
        };
        let first = &structured["results"][0];
        return if first["success"].as_bool() == Some(true) {
            Ok(served(first))
        } else {
            Err((
                first["error_type"].as_str().map(str::to_owned),
                first["error"]
                    .as_str()
                    .unwrap_or("no results[0]")
                    .to_owned(),
            ))
        };
    }
    if result["isError"].as_bool() == Some(true) {
        let text = result["content"][0]["text"].as_str().unwrap_or("isError");
        return Err((Some("isError".into()), text.to_owned()));
    }
    Ok(served(&result["structuredContent"]))
}

/// The message with quoted parts and numbers blanked and cut short, so
/// alike failures on different members share one label.
fn blank(message: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    for c in message.chars() {
        match c {
            '\'' | '"' => {
                quoted = !quoted;
                if quoted {
                    out.push_str("'…'");
                }
            }
            _ if quoted => {}
            '0'..='9' => {
                if !out.ends_with('#') {
                    out.push('#');
                }
            }
            _ => out.push(c),
        }
    }
    out.chars().take(90).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn http(status: u16, message: Value) -> Answer {
        Answer::Http {
            status,
            message: Some(message),
            text: String::new(),
        }
    }

    fn class(kind: Kind, answer: &Answer) -> Option<Class> {
        match classify(kind, answer) {
            Outcome::Ok { .. } => None,
            Outcome::Failed { class, .. } => Some(class),
        }
    }

    #[test]
    fn buckets() {
        let error = |m: &str| json!({"error": {"code": -32000, "message": m}});
        let refused = error("member 'a' failed: connection failed: connection refused");
        assert_eq!(
            class(Kind::Modern, &http(502, refused)),
            Some(Class::NeverDelivered)
        );
        let broke = error("member 'a' failed: transport error: reset");
        assert_eq!(
            class(Kind::Modern, &http(502, broke)),
            Some(Class::Delivered)
        );
        assert_eq!(
            class(Kind::Legacy, &http(404, error("Session not found"))),
            Some(Class::Session)
        );
        assert_eq!(
            class(
                Kind::Modern,
                &http(503, error("No available member in group"))
            ),
            Some(Class::NeverDelivered)
        );
        let ok = json!({"result": {"structuredContent": {"served_by": "a"}}});
        assert!(class(Kind::Legacy, &http(200, ok)).is_none());
        let batch = |t: &str| {
            json!({"result": {"structuredContent": {"results": [
                {"success": false, "error": "x", "error_type": t}]}}})
        };
        assert_eq!(
            class(Kind::HangarCall, &http(200, batch("ToolInvocationError"))),
            Some(Class::Delivered)
        );
        assert_eq!(
            class(
                Kind::HangarCall,
                &http(200, batch("NoAvailableMemberError"))
            ),
            Some(Class::NeverDelivered)
        );
        assert_eq!(blank("member 'a' took 1500 ms"), "member '…' took # ms");
    }
}
