//! The same path against backends on the official MCP Python SDK, in the
//! three wire modes it offers, addressed as the recipe writes endpoints
//! (no path, meaning `/mcp`).

use hangar_tests::configs::{self, RECIPE_GROUP};
use hangar_tests::control_plane::ControlPlane;
use hangar_tests::data_plane::{DataPlane, served_counts};
use hangar_tests::eventually::eventually;
use hangar_tests::python_sdk::{self, Mode, PyBackend};
use serde_json::json;

/// Stateful (SSE), stateless and JSON-response Python backends in one group:
/// round robin reaches each equally, results pass through untouched, and a
/// killed backend leaves rotation and comes back after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_backends_in_every_mode() {
    let mut backends = [
        PyBackend::start("a", Mode::Stateful).await,
        PyBackend::start("b", Mode::Stateless).await,
        PyBackend::start("c", Mode::JsonResponse).await,
    ];
    let endpoints: Vec<String> = backends.iter().map(PyBackend::base_url).collect();
    let cp = ControlPlane::start().await;
    let dp = DataPlane::start(&cp.url(), "dp-py").await;
    cp.apply(&configs::recipe(&endpoints, 0.2, 2))
        .await
        .expect("apply");
    eventually("the group to be ready", || async {
        let status = cp.status().await;
        (status.groups.first()?.state == "ready").then_some(())
    })
    .await;

    let client = dp.client().await;
    let out = client
        .batch(RECIPE_GROUP, "add", json!({"a": 1, "b": 2}), 30)
        .await;
    let counts = served_counts(&out);
    assert_eq!(
        counts.values().copied().collect::<Vec<_>>(),
        [10, 10, 10],
        "{counts:?}"
    );
    // Each member's own answer comes back: the example server names itself in served_by.
    for result in out["results"].as_array().unwrap() {
        let structured = &result["result"]["structuredContent"];
        assert_eq!(structured["sum"], 3);
        let member = result["served_by"].as_str().unwrap();
        let backend = ["a", "b", "c"][configs::RECIPE_MEMBERS
            .iter()
            .position(|m| *m == member)
            .unwrap()];
        assert_eq!(structured["served_by"], backend, "{result}");
    }

    backends[0].stop().await;
    let out = client
        .batch(RECIPE_GROUP, "echo", json!({"text": "x"}), 12)
        .await;
    assert_eq!(
        out["succeeded"], 12,
        "a dead member must cost no call: {out}"
    );
    eventually("my-mcp to be dead", || async {
        let status = cp.status().await;
        (status.groups.first()?.state == "partial").then_some(())
    })
    .await;

    backends[0].restart().await;
    eventually("the group to be ready again", || async {
        let status = cp.status().await;
        (status.groups.first()?.state == "ready").then_some(())
    })
    .await;
    // It ramps up from a tenth of its share (slow start).
    eventually("the restarted member to take calls again", || async {
        let out = client
            .batch(RECIPE_GROUP, "add", json!({"a": 1, "b": 1}), 9)
            .await;
        served_counts(&out).contains_key("my-mcp").then_some(())
    })
    .await;
    dp.stop().await;
    cp.stop().await;
}

/// The official Python SDK client in its default `auto` mode probes each
/// new connection with `server/discover`, then falls back to `initialize`
/// against legacy-only members (`server-everything`, TypeScript SDK 1.x).
/// The probe takes no rotation turn, so sessions still spread over the
/// group; the members' 400 to it counts as `rejected`, not `ok`; and once
/// the data plane has seen both members refuse it, it answers the probe
/// itself as a legacy-only server would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_auto_mode_spreads_sessions_over_legacy_members() {
    use hangar_tests::everything::Everything;
    use hangar_tests::metrics::Scrape;
    use hangar_tests::stack::Stack;

    let servers = [Everything::start().await, Everything::start().await];
    let yaml = format!(
        "mcp_servers:\n  e0:\n    mode: remote\n    endpoint: \"{}\"\n  e1:\n    mode: remote\n    endpoint: \"{}\"\n  g:\n    mode: group\n    members: [{{id: e0}}, {{id: e1}}]\n",
        servers[0].url(),
        servers[1].url()
    );
    let stack = Stack::start(&yaml).await;
    let group = stack.group_url("g");
    let lines = python_sdk::fresh_calls(&group, "auto", "echo", r#"{"message":"hi"}"#, 10).await;
    assert_eq!(lines.len(), 10);
    let scrape = Scrape::fetch(&stack.dp.metrics_url()).await;
    let count = |member: &str, outcome: &str| {
        let labels = [("group", "g"), ("member", member), ("outcome", outcome)];
        scrape.sum("hangar_calls_total", &labels)
    };
    // Every request of a session goes to its member: before the probe
    // took no turn, all ten sessions landed on one member.
    let (e0, e1) = (count("e0", "ok"), count("e1", "ok"));
    let share = e0 / (e0 + e1);
    assert!(
        (0.3..=0.7).contains(&share),
        "requests on e0: {e0}, on e1: {e1}"
    );
    // Each member refused the probe once; later probes were answered here.
    let rejected = count("e0", "rejected") + count("e1", "rejected");
    assert!(
        (1.0..=2.0).contains(&rejected),
        "probes rejected: {rejected}"
    );
    stack.stop().await;
}

/// Clients that open a fresh connection per call spread their calls over a
/// group of two in every mode, whatever else they send per call: a
/// 2026-07-28 client lists the tools before its call, as the Python SDK
/// client does, and a legacy client whose session is on the stateless
/// member sends the rest of it without a session id. Only a request with a
/// choice of members takes a turn of the rotation, or every call would
/// follow the same stride onto one member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_clients_spread_over_two_members_in_every_mode() {
    use hangar_tests::configs::GroupConfig;
    use hangar_tests::stack::Stack;

    let backends = [
        PyBackend::start("a", Mode::Stateful).await,
        PyBackend::start("b", Mode::Stateless).await,
    ];
    let endpoints: Vec<String> = backends.iter().map(PyBackend::base_url).collect();
    let stack = Stack::start(&GroupConfig::recipe(&endpoints).yaml()).await;
    eventually("the group to be ready", || async {
        let status = stack.cp.status().await;
        (status.groups.first()?.state == "ready").then_some(())
    })
    .await;
    let group = stack.group_url(RECIPE_GROUP);
    for mode in ["legacy", "2026-07-28", "auto"] {
        let lines = python_sdk::fresh_calls(&group, mode, "add", r#"{"a":1,"b":2}"#, 6).await;
        assert_eq!(
            python_sdk::served_by(&lines),
            ["a", "a", "a", "b", "b", "b"],
            "{mode}: calls served by"
        );
    }
    stack.stop().await;
}
