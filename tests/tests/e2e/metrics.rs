//! `/metrics` of the data plane and the control plane, scraped over real
//! HTTP as Prometheus would, after real traffic.

use hangar_proto::v1::{Server, Snapshot, server::Transport};
use hangar_tests::configs::{GroupConfig, RECIPE_GROUP, RECIPE_MEMBERS};
use hangar_tests::control_plane::ControlPlane;
use hangar_tests::data_plane::{DataPlane, McpClient};
use hangar_tests::eventually::eventually;
use hangar_tests::fake_mcp::{FakeMcp, FakeMcpHandle};
use hangar_tests::metrics::{Sample, Scrape};
use hangar_tests::raw::Raw;
use hangar_tests::stack::Stack;
use serde_json::json;

async fn three_backends() -> Vec<FakeMcpHandle> {
    let mut servers = Vec::new();
    for name in ["a", "b", "c"] {
        servers.push(FakeMcp::new(name).start().await);
    }
    servers
}

fn config(servers: &[FakeMcpHandle]) -> GroupConfig {
    let endpoints: Vec<String> = servers.iter().map(FakeMcpHandle::url).collect();
    GroupConfig {
        // Health changes here come from calls alone, not from probes.
        health_check_interval_s: 30.0,
        ..GroupConfig::recipe(&endpoints)
    }
}

/// After N calls through a group, the data plane's metrics count N calls
/// with outcome `ok`, split per member exactly as the members served them,
/// with one latency observation each; a call that names a server counts
/// under an empty group. Health, config version and source match. (Summed
/// over `tool`: calls before a member's first `tools/list` count as
/// `other`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_plane_counts_calls_per_member() {
    let servers = three_backends().await;
    let stack = Stack::start(&config(&servers).yaml()).await;
    let client = stack.client().await;
    let served = client
        .sequence(RECIPE_GROUP, "add", json!({"a": 1, "b": 2}), 30)
        .await;
    let direct = client
        .batch("my-mcp", "add", json!({"a": 1, "b": 2}), 2)
        .await;
    assert_eq!(direct["succeeded"], 2, "{direct}");

    let scrape = Scrape::fetch(&stack.dp.metrics_url()).await;
    let group = ("group", RECIPE_GROUP);
    assert_eq!(scrape.sum("hangar_calls_total", &[group]), 30.0);
    for member in RECIPE_MEMBERS {
        let by_member = served.iter().filter(|m| *m == member).count() as f64;
        assert!(by_member > 0.0, "round robin reaches {member}");
        let ok = [group, ("member", member), ("outcome", "ok")];
        assert_eq!(scrape.sum("hangar_calls_total", &ok), by_member);
        for outcome in ["rejected", "unreachable", "timeout", "error", "cancelled"] {
            let labels = [group, ("member", member), ("outcome", outcome)];
            let shown = scrape.has("hangar_calls_total", &labels);
            assert!(shown, "every outcome of a used series shows: {outcome}");
            assert_eq!(scrape.sum("hangar_calls_total", &labels), 0.0);
        }
        let latency = [group, ("member", member)];
        let count = scrape.sum("hangar_call_duration_seconds_count", &latency);
        assert_eq!(count, by_member);
        let le_inf = [group, ("member", member), ("le", "+Inf")];
        let inf = scrape.sum("hangar_call_duration_seconds_bucket", &le_inf);
        assert_eq!(inf, by_member);
        assert_eq!(
            scrape.value("hangar_member_healthy", &[("member", member)]),
            Some(1.0)
        );
        let in_flight = scrape.value("hangar_calls_in_flight", &[("member", member)]);
        assert_eq!(in_flight, Some(0.0));
    }
    let direct_ok = [("group", ""), ("member", "my-mcp"), ("outcome", "ok")];
    assert_eq!(scrape.sum("hangar_calls_total", &direct_ok), 2.0);
    let version = stack.cp.status().await.version as f64;
    assert_eq!(scrape.value("hangar_config_version", &[]), Some(version));
    let source = |s| scrape.value("hangar_config_source", &[("source", s)]);
    assert_eq!(source("control_plane"), Some(1.0));
    assert_eq!(source("cache"), Some(0.0));
    let healthy_members = scrape.value("hangar_group_healthy_members", &[group]);
    assert_eq!(healthy_members, Some(3.0));
    let state = |s| scrape.value("hangar_group_state", &[group, ("state", s)]);
    assert_eq!([state("ready"), state("partial")], [Some(1.0), Some(0.0)]);
    stack.stop().await;
}

/// Requests through `/groups/{group}/mcp` count under the group and the
/// member of the session: `initialize`, the `initialized` notification and
/// every call of the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_plane_counts_transparent_requests() {
    let servers = three_backends().await;
    let stack = Stack::start(&config(&servers).yaml()).await;
    let raw = Raw {
        http: reqwest::Client::new(),
        url: stack
            .dp
            .mcp_url()
            .replace("/mcp", &format!("/groups/{RECIPE_GROUP}/mcp")),
    };
    let session = raw.initialize().await;
    let mut served_by = String::new();
    for _ in 0..5 {
        served_by = raw.whoami(&session).await.expect("whoami");
    }
    // The backends are named a, b, c after the recipe's members, in order.
    let index = servers
        .iter()
        .position(|s| s.name() == served_by)
        .expect("a backend served the session");
    let member = RECIPE_MEMBERS[index];
    let ok = [
        ("group", RECIPE_GROUP),
        ("member", member),
        ("outcome", "ok"),
    ];
    let scrape = eventually("the session's last answer to settle", || async {
        let scrape = Scrape::fetch(&stack.dp.metrics_url()).await;
        (scrape.sum("hangar_calls_total", &ok) == 7.0).then_some(scrape)
    })
    .await;
    // The handshake and the notification call no tool.
    let handshake = [ok[0], ok[1], ("tool", ""), ok[2]];
    assert_eq!(scrape.value("hangar_calls_total", &handshake), Some(2.0));
    let total = scrape.sum("hangar_calls_total", &[("group", RECIPE_GROUP)]);
    assert_eq!(total, 7.0, "only the session's member was called");
    stack.stop().await;
}

/// A killed member shows health 0 once it left rotation, its refused
/// connections are counted as `unreachable` (exactly the ejection
/// threshold, since later calls skip it), and no call was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_plane_shows_a_killed_member() {
    let mut servers = three_backends().await;
    let config = config(&servers);
    let stack = Stack::start(&config.yaml()).await;
    let client = stack.client().await;
    servers[2].stop().await;
    // One call at a time, so no call tries the dead member after it left
    // rotation; `sequence` fails the test if any call failed.
    client
        .sequence(RECIPE_GROUP, "add", json!({"a": 1, "b": 2}), 30)
        .await;

    let scrape = Scrape::fetch(&stack.dp.metrics_url()).await;
    let dead = ("member", "my-mcp-3");
    assert_eq!(scrape.value("hangar_member_healthy", &[dead]), Some(0.0));
    let failures = f64::from(config.max_consecutive_failures);
    let unreachable = [("group", RECIPE_GROUP), dead, ("outcome", "unreachable")];
    assert_eq!(scrape.sum("hangar_calls_total", &unreachable), failures);
    let changes = scrape.value("hangar_member_rotation_changes_total", &[dead]);
    assert_eq!(changes, Some(1.0));
    let ok = scrape.sum(
        "hangar_calls_total",
        &[("group", RECIPE_GROUP), ("outcome", "ok")],
    );
    assert_eq!(ok, 30.0);
    let group = [("group", RECIPE_GROUP)];
    assert_eq!(
        scrape.value("hangar_group_healthy_members", &group),
        Some(2.0)
    );
    let partial = [group[0], ("state", "partial")];
    assert_eq!(scrape.value("hangar_group_state", &partial), Some(1.0));
    stack.stop().await;
}

/// Makes calls of `tool` on `target` (a group, or `""`'s server `server`)
/// until they count under the tool's own label: the members' tool lists
/// reach the labels after their first probe; calls before count as `other`.
async fn until_labelled(stack: &Stack, client: &McpClient, target: &str, group: &str, tool: &str) {
    eventually("calls to count under their tool", || async {
        client
            .sequence(target, tool, json!({"a": 1, "b": 2}), 1)
            .await;
        let scrape = Scrape::fetch(&stack.dp.metrics_url()).await;
        let labels = [("group", group), ("tool", tool)];
        (scrape.sum("hangar_calls_total", &labels) > 0.0).then_some(())
    })
    .await;
}

/// A `tools/call` of `name` in `session`, its answer read to the end.
async fn call_in_session(raw: &Raw, session: &str, name: &str) {
    let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": name, "arguments": {}}});
    let answer = raw.post(Some(session), call).await;
    assert_eq!(answer.status(), 200, "{name}");
    let _ = answer.text().await;
}

/// The `hangar_calls` and latency series of one scrape.
fn call_series(scrape: &Scrape) -> usize {
    let calls = scrape.samples("hangar_calls_total").count();
    calls
        + scrape
            .samples("hangar_call_duration_seconds_bucket")
            .count()
}

/// Calls of a tool the members list count under its name, with their
/// latency, through the group and naming a server; tools no member lists
/// count as `other`, and a flood of distinct such names through the
/// group endpoint adds no series at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_plane_counts_calls_per_tool() {
    let servers = three_backends().await;
    let stack = Stack::start(&config(&servers).yaml()).await;
    let client = stack.client().await;
    until_labelled(&stack, &client, RECIPE_GROUP, RECIPE_GROUP, "add").await;
    until_labelled(&stack, &client, "my-mcp", "", "add").await;
    let url = stack.dp.metrics_url();
    let before = Scrape::fetch(&url).await;
    client
        .sequence(RECIPE_GROUP, "add", json!({"a": 1, "b": 2}), 12)
        .await;
    client
        .batch("my-mcp", "add", json!({"a": 1, "b": 2}), 3)
        .await;
    let unknown = client.batch("my-mcp", "no-such-tool", json!({}), 2).await;
    assert_eq!(unknown["failed"], 2, "{unknown}");
    let after = Scrape::fetch(&url).await;
    let grown =
        |name: &str, labels: &[(&str, &str)]| after.sum(name, labels) - before.sum(name, labels);
    let group = ("group", RECIPE_GROUP);
    let add = ("tool", "add");
    let ok = ("outcome", "ok");
    assert_eq!(grown("hangar_calls_total", &[group, add, ok]), 12.0);
    let latency = "hangar_call_duration_seconds_count";
    assert_eq!(grown(latency, &[group, add]), 12.0);
    assert_eq!(
        grown("hangar_calls_total", &[group, ("tool", "other")]),
        0.0
    );
    let direct = [("group", ""), ("member", "my-mcp")];
    assert_eq!(
        grown("hangar_calls_total", &[direct[0], direct[1], add, ok]),
        3.0
    );
    let direct_other = [
        direct[0],
        direct[1],
        ("tool", "other"),
        ("outcome", "rejected"),
    ];
    assert_eq!(grown("hangar_calls_total", &direct_other), 2.0);

    // In a session: every name no member lists goes to the session's
    // member, which answers it with a tool error, and counts as other.
    let raw = Raw {
        http: reqwest::Client::new(),
        url: stack.group_url(RECIPE_GROUP),
    };
    let session = raw.initialize().await;
    let other_in_group = [group, ("tool", "other")];
    let others = after.sum("hangar_calls_total", &other_in_group);
    call_in_session(&raw, &session, "no-such-tool-0").await;
    let first = eventually("the first unknown tool to count", || async {
        let scrape = Scrape::fetch(&url).await;
        (scrape.sum("hangar_calls_total", &other_in_group) == others + 1.0).then_some(scrape)
    })
    .await;
    for i in 1..=40 {
        call_in_session(&raw, &session, &format!("no-such-tool-{i}")).await;
    }
    let flooded = eventually("the flood to count", || async {
        let scrape = Scrape::fetch(&url).await;
        (scrape.sum("hangar_calls_total", &other_in_group) == others + 41.0).then_some(scrape)
    })
    .await;
    assert_eq!(
        call_series(&flooded),
        call_series(&first),
        "no series added"
    );
    let tools: std::collections::BTreeSet<&str> = flooded
        .samples("hangar_calls_total")
        .map(|s| s.labels["tool"].as_str())
        .collect();
    for tool in &tools {
        assert!(
            ["", "other", "add", "whoami", "echo", "sleep", "fail"].contains(tool),
            "tool label {tool:?}: {tools:?}"
        );
    }
    stack.stop().await;
}

/// A config of `servers` (id and backend) and `groups` (id and member ids).
fn yaml_of(servers: &[(&str, &FakeMcpHandle)], groups: &[(&str, &[&str])]) -> String {
    let mut yaml = String::from("mcp_servers:\n");
    for (id, server) in servers {
        yaml += &format!(
            "  {id}:\n    mode: remote\n    endpoint: \"{}\"\n    health_check_interval_s: 30\n",
            server.url()
        );
    }
    for (id, members) in groups {
        yaml += &format!("  {id}:\n    mode: group\n    members:\n");
        for member in *members {
            yaml += &format!("      - id: {member}\n");
        }
    }
    yaml
}

/// Every sample whose `label` is `value`.
fn labelled<'a>(scrape: &'a Scrape, label: &str, value: &str) -> Vec<&'a Sample> {
    scrape
        .all()
        .iter()
        .filter(|s| s.labels.get(label).map(String::as_str) == Some(value))
        .collect()
}

/// The call samples (counts and latency) of `member` in `group`.
fn samples_of<'a>(scrape: &'a Scrape, group: &str, member: &str) -> Vec<&'a Sample> {
    let mut samples: Vec<&Sample> = labelled(scrape, "group", group)
        .into_iter()
        .filter(|s| s.name.starts_with("hangar_call"))
        .filter(|s| s.labels.get("member").map(String::as_str) == Some(member))
        .collect();
    samples.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
    samples
}

/// An apply that removes a member takes every series of it off
/// `/metrics` (through its groups, named directly, its health), and one
/// that removes a group takes the group's; the members that stay keep
/// every count and go on counting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_members_and_groups_leave_metrics() {
    let servers = three_backends().await;
    let [a, b, c] = [&servers[0], &servers[1], &servers[2]];
    let all = [("a", a), ("b", b), ("c", c)];
    let yaml = yaml_of(&all, &[("main", &["a", "b", "c"]), ("side", &["a"])]);
    let stack = Stack::start(&yaml).await;
    let client = stack.client().await;
    let add = json!({"a": 1, "b": 2});
    client.sequence("main", "add", add.clone(), 9).await;
    client.sequence("side", "add", add.clone(), 2).await;
    client.sequence("c", "add", add.clone(), 2).await;
    let url = stack.dp.metrics_url();
    let first = Scrape::fetch(&url).await;
    assert_eq!(first.sum("hangar_calls_total", &[("member", "c")]), 5.0);
    assert!(first.has("hangar_calls_total", &[("group", "side")]));
    let kept_a = samples_of(&first, "main", "a");
    let kept_b = samples_of(&first, "main", "b");
    assert!(!kept_a.is_empty() && !kept_b.is_empty());

    let without_c = yaml_of(&all[..2], &[("main", &["a", "b"]), ("side", &["a"])]);
    stack.cp.apply_and_wait(&without_c, 1).await;
    let second = Scrape::fetch(&url).await;
    let of_c = labelled(&second, "member", "c");
    assert!(of_c.is_empty(), "series of a removed member: {of_c:?}");
    assert_eq!(samples_of(&second, "main", "a"), kept_a);
    assert_eq!(samples_of(&second, "main", "b"), kept_b);
    assert!(second.has("hangar_calls_total", &[("group", "side")]));

    let without_side = yaml_of(&all[..2], &[("main", &["a", "b"])]);
    stack.cp.apply_and_wait(&without_side, 1).await;
    let third = Scrape::fetch(&url).await;
    let of_side = labelled(&third, "group", "side");
    assert!(of_side.is_empty(), "series of a removed group: {of_side:?}");
    assert_eq!(samples_of(&third, "main", "a"), kept_a);
    assert_eq!(samples_of(&third, "main", "b"), kept_b);

    client.sequence("main", "add", add, 2).await;
    let last = Scrape::fetch(&url).await;
    let main = [("group", "main")];
    let of_c_in_main = [("group", "main"), ("member", "c")];
    let before =
        first.sum("hangar_calls_total", &main) - first.sum("hangar_calls_total", &of_c_in_main);
    assert_eq!(
        last.sum("hangar_calls_total", &main),
        before + 2.0,
        "the members that stayed go on counting"
    );
    stack.stop().await;
}

/// `/metrics` answers a scraper that names the data plane by any host
/// (the MCP endpoints refuse such a `Host`), and is not an MCP endpoint:
/// a JSON-RPC POST gets 405, not a JSON-RPC answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_plane_metrics_are_for_scrapers_only() {
    let servers = three_backends().await;
    let stack = Stack::start(&config(&servers).yaml()).await;
    let http = reqwest::Client::new();
    let foreign_host = |url: String| http.get(url).header("host", "dp-1.example:9000");
    let mcp = foreign_host(stack.dp.mcp_url()).send().await.unwrap();
    assert_eq!(mcp.status(), 403, "the MCP endpoint refuses a foreign Host");
    let scrape = foreign_host(stack.dp.metrics_url()).send().await.unwrap();
    assert_eq!(scrape.status(), 200);

    let post = http
        .post(stack.dp.metrics_url())
        .header("content-type", "application/json")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    stack.stop().await;
}

/// The control plane's metrics, on its gRPC listener, count every apply by
/// result, show the data plane connected and on the version in force, the
/// one snapshot push it acked, a NACK, and the data plane leaving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_counts_applies_and_pushes() {
    let servers = three_backends().await;
    let yaml = config(&servers).yaml();
    let Stack { cp, dp } = Stack::start(&yaml).await;
    assert!(!cp.apply(&yaml).await.expect("same config").changed);
    let invalid = "mcp_servers:\n  g:\n    mode: group\n    members: []\n";
    assert!(cp.apply(invalid).await.is_err());

    let scrape = Scrape::fetch(&cp.metrics_url()).await;
    let applies = |r| scrape.value("hangar_config_applies_total", &[("result", r)]);
    assert_eq!(
        [applies("applied"), applies("unchanged"), applies("invalid")],
        [Some(1.0); 3]
    );
    assert_eq!(applies("failed"), Some(0.0));
    let planes = |s| scrape.value("hangar_data_planes", &[("state", s)]);
    assert_eq!(planes("connected"), Some(1.0));
    assert_eq!(planes("disconnected"), Some(0.0));
    assert_eq!(scrape.value("hangar_data_planes_behind", &[]), Some(0.0));
    assert_eq!(scrape.value("hangar_config_version", &[]), Some(1.0));
    assert_eq!(scrape.value("hangar_snapshots_sent_total", &[]), Some(1.0));
    let pushes = scrape.value("hangar_snapshot_push_duration_seconds_count", &[]);
    assert_eq!(pushes, Some(1.0), "the data plane's ACK was timed");
    assert_eq!(scrape.value("hangar_snapshot_nacks_total", &[]), Some(0.0));

    let mut bad = Snapshot {
        version: 2,
        ..Default::default()
    };
    bad.servers.push(Server {
        id: "x".into(),
        transport: Some(Transport::Endpoint("ftp://nowhere".into())),
        probe_interval_ms: 1000,
        max_consecutive_failures: 1,
        ..Default::default()
    });
    cp.inject_snapshot(bad);
    eventually("the NACK to be counted", || async {
        let scrape = Scrape::fetch(&cp.metrics_url()).await;
        (scrape.value("hangar_snapshot_nacks_total", &[]) == Some(1.0)).then_some(())
    })
    .await;

    dp.stop().await;
    eventually("the data plane to show disconnected", || async {
        let scrape = Scrape::fetch(&cp.metrics_url()).await;
        let planes = |s| scrape.value("hangar_data_planes", &[("state", s)]);
        (planes("disconnected") == Some(1.0) && planes("connected") == Some(0.0)).then_some(())
    })
    .await;
    cp.stop().await;
}

/// The control plane keeps no series per data plane: a data plane that
/// left and expired is gone from `hangar_data_planes` (counted from the
/// fleet at each scrape), leaving every state at 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_forgets_expired_data_planes() {
    let state = tempfile::tempdir().expect("temp dir");
    let mut settings = hangar_control_plane::Settings::new(state.path());
    settings.dataplane_expiry = std::time::Duration::from_millis(300);
    let cp = ControlPlane::start_with(settings).await;
    let dp = DataPlane::start(&cp.url(), "dp-1").await;
    let planes = |state: &'static str| {
        let url = cp.metrics_url();
        async move {
            let scrape = Scrape::fetch(&url).await;
            scrape.value("hangar_data_planes", &[("state", state)])
        }
    };
    eventually("the data plane to be known", || async {
        let known = planes("connected").await.unwrap_or(0.0) + planes("stale").await.unwrap_or(0.0);
        (known == 1.0).then_some(())
    })
    .await;
    dp.stop().await;
    eventually("the data plane to be forgotten", || async {
        let mut all = 0.0;
        for state in ["connected", "stale", "disconnected"] {
            all += planes(state).await.expect("every state shows");
        }
        (all == 0.0).then_some(())
    })
    .await;
    cp.stop().await;
}
