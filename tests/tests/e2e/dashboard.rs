//! The Grafana dashboard in `examples/grafana/` asks only for what the
//! servers expose: every metric its expressions name (panels and template
//! variables) is a sample of a running control plane's or data plane's
//! `/metrics`, under the name Prometheus stores (`_total`, `_bucket`, …),
//! and every label it selects on, groups by or reads values of is a label
//! of that metric. So a rename in the code fails here, not on a wall of
//! empty panels.

use std::collections::BTreeSet;

use hangar_tests::configs::{GroupConfig, RECIPE_GROUP};
use hangar_tests::fake_mcp::FakeMcp;
use hangar_tests::metrics::Scrape;
use hangar_tests::stack::Stack;
use serde_json::{Value, json};

/// Labels Prometheus adds when it scrapes; no server writes them.
const SCRAPE_LABELS: [&str; 2] = ["instance", "job"];

fn dashboard() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/grafana/hangar-dashboard.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every PromQL text of `value`: panel targets' `expr` and template
/// variables' `definition`.
fn expressions(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields {
                match (key.as_str(), field) {
                    ("expr" | "definition", Value::String(text)) => found.push(text.clone()),
                    _ => expressions(field, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| expressions(item, found)),
        _ => {}
    }
}

/// One metric as an expression names it, with the labels it selects on.
#[derive(Debug)]
struct Selector {
    metric: String,
    labels: Vec<String>,
}

/// The identifiers of `text` with where each ends.
fn identifiers(text: &str) -> Vec<(String, usize)> {
    let is_part = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut found = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        match (start, is_part(c)) {
            (None, true) => start = Some(i),
            (Some(s), false) => {
                found.push((text[s..i].to_owned(), i));
                start = None;
            }
            _ => {}
        }
    }
    found
}

/// The metrics `expr` names (identifiers that start with `hangar_`; no
/// PromQL keyword or function does) and the label names of each one's
/// `{…}` matchers.
fn selectors(expr: &str) -> Vec<Selector> {
    let quoted = strip_strings(expr);
    identifiers(&quoted)
        .into_iter()
        .filter(|(name, _)| name.starts_with("hangar_"))
        .map(|(metric, end)| {
            let mut labels = Vec::new();
            if let Some(body) = quoted[end..].strip_prefix('{') {
                let body = &body[..body.find('}').expect("a closed matcher")];
                for matcher in body.split(',').filter(|m| !m.trim().is_empty()) {
                    let name = matcher.split(['=', '!']).next().unwrap_or_default();
                    labels.push(name.trim().to_owned());
                }
            }
            Selector { metric, labels }
        })
        .collect()
}

/// `expr` with the text of every string literal blanked, so label values
/// (`"$group"`, `"ok|cancelled"`) are not read as names.
fn strip_strings(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len());
    let mut in_string = false;
    for c in expr.chars() {
        if c == '"' {
            in_string = !in_string;
            out.push(c);
        } else {
            out.push(if in_string { ' ' } else { c });
        }
    }
    out
}

/// The labels `expr` groups by (`by (…)`, `without (…)`, `on (…)`) or
/// reads values of (`label_values(…, label)`).
fn grouping_labels(expr: &str) -> Vec<String> {
    let text = strip_strings(expr);
    let mut labels = Vec::new();
    let keywords = ["by", "without", "on", "ignoring"];
    for (word, end) in identifiers(&text) {
        if !keywords.contains(&word.as_str()) {
            continue;
        }
        if let Some(list) = text[end..].trim_start().strip_prefix('(') {
            let list = &list[..list.find(')').expect("a closed label list")];
            labels.extend(list.split(',').map(|l| l.trim().to_owned()));
        }
    }
    if let Some(args) = text.trim().strip_prefix("label_values(") {
        let args = args
            .strip_suffix(')')
            .expect("label_values(…) ends the query");
        let label = args.rsplit(',').next().unwrap_or_default();
        labels.push(label.trim().to_owned());
    }
    labels.retain(|l| !l.is_empty());
    labels
}

/// Every panel and variable of the dashboard names metrics a running
/// control plane and data plane expose, after a call through a group
/// under a rate limit (so every family the dashboard reads has series).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_dashboard_uses_only_exposed_metrics() {
    let backend = FakeMcp::new("a").start().await;
    let group = GroupConfig::recipe(&[backend.url()]);
    let yaml = format!("rate_limit:\n  rps: 100\n  burst: 100\n{}", group.yaml());
    let stack = Stack::start(&yaml).await;
    let client = stack.client().await;
    client
        .sequence(RECIPE_GROUP, "add", json!({"a": 1, "b": 2}), 3)
        .await;
    let scrapes = [
        Scrape::fetch(&stack.cp.metrics_url()).await,
        Scrape::fetch(&stack.dp.metrics_url()).await,
    ];
    let labels_of = |metric: &str| -> Option<BTreeSet<String>> {
        let samples: Vec<_> = scrapes.iter().flat_map(|s| s.samples(metric)).collect();
        (!samples.is_empty()).then(|| {
            samples
                .iter()
                .flat_map(|s| s.labels.keys().cloned())
                .collect()
        })
    };

    let mut exprs = Vec::new();
    expressions(&dashboard(), &mut exprs);
    assert!(exprs.len() > 20, "the dashboard's expressions: {exprs:?}");
    let mut problems = Vec::new();
    for expr in &exprs {
        let selectors = selectors(expr);
        if selectors.is_empty() {
            problems.push(format!("names no Hangar metric: {expr}"));
        }
        let mut known = BTreeSet::new();
        for Selector { metric, labels } in &selectors {
            let Some(has) = labels_of(metric) else {
                problems.push(format!("{metric} is not exposed: {expr}"));
                continue;
            };
            for label in labels
                .iter()
                .filter(|l| !SCRAPE_LABELS.contains(&l.as_str()))
            {
                if !has.contains(label) {
                    problems.push(format!("{metric} has no label {label}: {expr}"));
                }
            }
            known.extend(has);
        }
        for label in grouping_labels(expr) {
            if !known.contains(&label) && !SCRAPE_LABELS.contains(&label.as_str()) {
                problems.push(format!("no metric here has label {label}: {expr}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    stack.stop().await;
}

/// The reader of expressions finds metrics, their matchers' labels and
/// the labels grouped by, and skips label values and functions.
#[test]
fn expressions_are_read_as_the_test_needs() {
    let expr = r#"sum by (tool) (rate(hangar_calls_total{instance=~"$node", outcome!~"ok|hangar_x"}[5m])) / on(instance) hangar_data_planes"#;
    let found = selectors(expr);
    let names: Vec<&str> = found.iter().map(|s| s.metric.as_str()).collect();
    assert_eq!(names, ["hangar_calls_total", "hangar_data_planes"]);
    assert_eq!(found[0].labels, ["instance", "outcome"]);
    assert!(found[1].labels.is_empty());
    assert_eq!(grouping_labels(expr), ["tool", "instance"]);
    let variable = r#"label_values(hangar_member_healthy{instance=~"$node"}, member)"#;
    assert_eq!(grouping_labels(variable), ["member"]);
}
