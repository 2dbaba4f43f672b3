//! The `tool` label: listed tools, other names, requests without a tool,
//! relabelling that keeps counts, and series shown only once used.

use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::registry::Registry;

use super::*;

/// One member's calls through group `g`, encoded as `/metrics` would.
#[derive(Debug)]
struct One(Arc<MemberCalls>);

impl Collector for One {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        encode_calls(&mut encoder, &[("g", "m", &self.0)])
    }
}

fn scrape(calls: &Arc<MemberCalls>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(One(calls.clone())));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    text
}

fn count(text: &str, tool: &str, outcome: &str) -> Option<u64> {
    let series = format!(
        "hangar_calls_total{{group=\"g\",member=\"m\",tool=\"{tool}\",outcome=\"{outcome}\"}} "
    );
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .map(|v| v.parse().unwrap())
}

/// A listed tool counts under its name, any other under `other`, a
/// request without a tool under the empty tool; each has its histogram.
#[test]
fn calls_count_under_their_tool_or_other() {
    let calls = Arc::new(MemberCalls::default());
    calls.label_tools(&["add", "echo"]);
    calls.of(Some("add")).record(CallOutcome::Ok);
    calls.of(Some("add")).record(CallOutcome::Timeout);
    calls.of(Some("nope")).record(CallOutcome::Rejected);
    calls.of(Some("also-nope")).record(CallOutcome::Rejected);
    calls.of(None).record(CallOutcome::Ok);
    calls
        .of(Some("add"))
        .observe_latency(Duration::from_millis(3));
    let text = scrape(&calls);
    assert_eq!(count(&text, "add", "ok"), Some(1));
    assert_eq!(count(&text, "add", "timeout"), Some(1));
    assert_eq!(count(&text, "add", "error"), Some(0), "every outcome shows");
    assert_eq!(count(&text, "other", "rejected"), Some(2));
    assert_eq!(count(&text, "", "ok"), Some(1));
    assert_eq!(count(&text, "echo", "ok"), None, "never called: no series");
    assert!(!text.contains("nope"), "{text}");
    let add_count = "hangar_call_duration_seconds_count{group=\"g\",member=\"m\",tool=\"add\"} 1";
    assert!(text.contains(add_count), "{text}");
}

/// Relabelling keeps the counts of tools that stay, drops the series of
/// tools no longer listed (their calls count as other from then on), and
/// a tool listed anew starts its own.
#[test]
fn relabelling_keeps_counts_of_tools_that_stay() {
    let calls = Arc::new(MemberCalls::default());
    calls.label_tools(&["add", "gone"]);
    calls.of(Some("add")).record(CallOutcome::Ok);
    calls.of(Some("gone")).record(CallOutcome::Ok);
    calls.of(Some("new")).record(CallOutcome::Ok);
    calls.label_tools(&["add", "new"]);
    calls.of(Some("add")).record(CallOutcome::Ok);
    calls.of(Some("gone")).record(CallOutcome::Ok);
    calls.of(Some("new")).record(CallOutcome::Ok);
    let text = scrape(&calls);
    assert_eq!(count(&text, "add", "ok"), Some(2));
    assert_eq!(count(&text, "gone", "ok"), None, "{text}");
    assert_eq!(count(&text, "new", "ok"), Some(1));
    assert_eq!(count(&text, "other", "ok"), Some(2));
}

/// A member listing tools named like the labels of their own gets no
/// second series of that name: those calls count as other.
#[test]
fn reserved_names_count_as_other() {
    let calls = Arc::new(MemberCalls::default());
    calls.label_tools(&["other", ""]);
    calls.of(Some("other")).record(CallOutcome::Ok);
    calls.of(Some("")).record(CallOutcome::Ok);
    let text = scrape(&calls);
    assert_eq!(count(&text, "other", "ok"), Some(2));
    assert_eq!(count(&text, "", "ok"), None, "{text}");
}

/// Before any call the families are announced but hold no series.
#[test]
fn unused_handles_show_no_series() {
    let calls = Arc::new(MemberCalls::default());
    calls.label_tools(&["add"]);
    let text = scrape(&calls);
    assert!(text.contains("# TYPE hangar_calls counter"), "{text}");
    assert!(!text.contains("hangar_calls_total{"), "{text}");
    assert!(
        !text.contains("hangar_call_duration_seconds_count{"),
        "{text}"
    );
}
