//! Rate limits as clients meet them: `hangar_call` results that say
//! `RateLimitExceeded`, 429 with `Retry-After` on `/groups`, a noisy caller
//! that cannot starve a quiet one, a limited member passed over, and a
//! fleet budget divided between two data planes by their demand.

use std::time::Duration;

use hangar_tests::configs::{GroupConfig, RECIPE_GROUP};
use hangar_tests::control_plane::ControlPlane;
use hangar_tests::data_plane::{DataPlane, served_counts};
use hangar_tests::eventually::eventually;
use hangar_tests::fake_mcp::{FakeMcp, FakeMcpHandle};
use hangar_tests::raw::{Raw, modern_call};
use hangar_tests::stack::Stack;
use serde_json::{Value, json};

async fn members(n: usize) -> (Vec<FakeMcpHandle>, Vec<String>) {
    let mut servers = Vec::new();
    for name in ["a", "b", "c"].into_iter().take(n) {
        servers.push(FakeMcp::new(name).stateless().start().await);
    }
    let urls = servers.iter().map(FakeMcpHandle::url).collect();
    (servers, urls)
}

/// The recipe's group over `urls` with `extra` appended to the group.
fn group_with(urls: &[String], extra: &str) -> String {
    format!("{}{extra}", GroupConfig::recipe(urls).yaml())
}

/// The seconds of "Retry after Xs." in a refusal.
fn retry_after(message: &str) -> Duration {
    let seconds = message
        .rsplit("Retry after ")
        .next()
        .and_then(|rest| rest.strip_suffix("s."))
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no retry delay in {message:?}"));
    Duration::from_secs_f64(seconds)
}

/// Each call of a batch counts once: a burst of 3 admits 3 of 5 calls, the
/// others say which limit refused them and when to retry, in MCP Hangar's
/// words; after that wait a call is admitted again. The members saw only
/// the admitted calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_beyond_the_burst_gets_rate_limit_exceeded_for_the_rest() {
    let (servers, urls) = members(3).await;
    let yaml = format!(
        "rate_limit:\n  rps: 1\n  burst: 3\n{}",
        GroupConfig::recipe(&urls).yaml()
    );
    let stack = Stack::start(&yaml).await;
    let client = stack.client().await;
    let out = client
        .batch(RECIPE_GROUP, "add", json!({"a": 1, "b": 2}), 5)
        .await;
    assert_eq!(
        (out["succeeded"].as_u64(), out["failed"].as_u64()),
        (Some(3), Some(2)),
        "{out}"
    );
    let refused: Vec<&Value> = out["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["success"] == false)
        .collect();
    for r in &refused {
        assert_eq!(r["error_type"], "RateLimitExceeded", "{r}");
        let error = r["error"].as_str().unwrap();
        assert!(
            error.starts_with(
                "RateLimitExceeded: the rate limit all callers share for every tool call is used up (3 at once, refilled at 1 per second across the fleet; this data plane's share is 3 at once, 1 per second). Retry after "
            ),
            "{error}"
        );
        assert!(r["served_by"].is_null(), "no member saw it: {r}");
    }
    let seen: u64 = servers.iter().map(FakeMcpHandle::calls).sum();
    assert_eq!(seen, 3);
    tokio::time::sleep(retry_after(refused[0]["error"].as_str().unwrap())).await;
    let again = client
        .batch(RECIPE_GROUP, "add", json!({"a": 1, "b": 2}), 1)
        .await;
    assert_eq!(again["succeeded"], 1, "{again}");
    stack.stop().await;
}

/// `/groups`: a `tools/call` beyond the group's limit gets 429 with
/// `Retry-After` and a JSON-RPC error with the request's id and the wait;
/// `tools/list` is not limited unless the config says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_group_endpoint_answers_429_with_retry_after() {
    // Stateful members, which serve both eras: the modern calls and the
    // legacy session below.
    let mut servers = Vec::new();
    for name in ["a", "b"] {
        servers.push(FakeMcp::new(name).start().await);
    }
    let urls: Vec<String> = servers.iter().map(FakeMcpHandle::url).collect();
    let limit = "    rate_limit: {rps: 0.5, burst: 2, tools: {nosuch: {rps: 0.5, burst: 1}}}\n";
    let stack = Stack::start(&group_with(&urls, limit)).await;
    let url = stack.group_url(RECIPE_GROUP);
    let http = reqwest::Client::new();
    for id in 1..=2 {
        let ok = modern_call(&http, &url, id, "add", json!({"a": 1, "b": 2}))
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
    }
    let refused = modern_call(&http, &url, 42, "add", json!({"a": 1, "b": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "2");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["id"], 42, "{body}");
    assert_eq!(body["error"]["data"]["type"], "RateLimitExceeded");
    assert_eq!(body["error"]["data"]["limit"], "group 'my-mcp-group'");
    let wait = body["error"]["data"]["retryAfterMs"].as_u64().unwrap();
    assert!((1_000..=2_000).contains(&wait), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("RateLimitExceeded: the rate limit all callers share for group 'my-mcp-group' is used up (2 at once, refilled at 0.5 per second"),
        "{body}"
    );
    let raw = Raw {
        http: http.clone(),
        url: url.clone(),
    };
    let session = raw.initialize().await;
    for id in 0..5 {
        let list = json!({"jsonrpc": "2.0", "id": 100 + id, "method": "tools/list"});
        assert_eq!(raw.post(Some(&session), list).await.status(), 200);
    }
    // A limit on a tool no member lists cannot be checked at apply (tools
    // are known once members list them): status warns.
    eventually("status warns of the unlisted tool", || async {
        let status = stack.cp.status().await;
        status.groups[0]
            .tool_warnings
            .iter()
            .any(|w| w == "rate_limit.tools.nosuch: no member lists a tool 'nosuch'")
            .then_some(())
    })
    .await;
    stack.stop().await;
}

/// `per_caller`: one session that uses up its own budget is refused while
/// another session of the same group is still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_noisy_session_does_not_starve_a_quiet_one() {
    let mut servers = Vec::new();
    for name in ["a", "b"] {
        servers.push(FakeMcp::new(name).start().await);
    }
    let urls: Vec<String> = servers.iter().map(FakeMcpHandle::url).collect();
    let limit = "    rate_limit: {rps: 100, burst: 100, per_caller: {rps: 0.1, burst: 2}}\n";
    let stack = Stack::start(&group_with(&urls, limit)).await;
    let raw = Raw {
        http: reqwest::Client::new(),
        url: stack.group_url(RECIPE_GROUP),
    };
    let call = |id: u64| json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 1, "b": 2}}});
    let (noisy, quiet) = (raw.initialize().await, raw.initialize().await);
    let mut statuses = Vec::new();
    for id in 0..6 {
        statuses.push(raw.post(Some(&noisy), call(id)).await.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429, 429, 429, 429]);
    let refused = raw.post(Some(&noisy), call(9)).await;
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("RateLimitExceeded: the rate limit each caller has for group 'my-mcp-group' is used up (2 at once, refilled at 0.1 per second)"),
        "{body}"
    );
    for id in 0..2 {
        assert_eq!(raw.post(Some(&quiet), call(id)).await.status(), 200);
    }
    stack.stop().await;
}

/// A server's own limit protects it whatever group a call comes through:
/// once it is used up the group's calls go to the other member, never
/// failing, since a refused call was never delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limited_member_is_passed_over_like_a_busy_one() {
    let (servers, urls) = members(2).await;
    let yaml = GroupConfig::recipe(&urls).yaml().replacen(
        "  my-mcp:\n    mode: remote\n",
        "  my-mcp:\n    mode: remote\n    rate_limit: {rps: 0.1, burst: 2, scope: data_plane}\n",
        1,
    );
    let stack = Stack::start(&yaml).await;
    let out = stack
        .client()
        .await
        .batch(RECIPE_GROUP, "add", json!({"a": 1, "b": 2}), 10)
        .await;
    let counts = served_counts(&out);
    assert_eq!(counts.get("my-mcp"), Some(&2), "{counts:?}");
    assert_eq!(counts.get("my-mcp-backup"), Some(&8), "{counts:?}");
    assert_eq!(servers[0].calls(), 2);
    stack.stop().await;
}

/// One budget for the fleet: two data planes share 20 calls a second, each
/// starting with half; when only one of them is busy, its share grows to
/// nearly all of it, the two shares in force adding up to the budget. The
/// control plane's status shows the division.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_budget_follows_demand_between_data_planes() {
    let (_servers, urls) = members(2).await;
    let cp = ControlPlane::start().await;
    let dp1 = DataPlane::start(&cp.url(), "dp-1").await;
    let dp2 = DataPlane::start(&cp.url(), "dp-2").await;
    let yaml = format!(
        "rate_limit: {{rps: 20, burst: 20}}\n{}",
        GroupConfig::recipe(&urls).yaml()
    );
    cp.apply_and_wait(&yaml, 2).await;
    let shares = |status: &hangar_proto::v1::StatusResponse| -> Vec<(String, f64)> {
        status
            .limits
            .iter()
            .find(|l| l.limit == "all")
            .map(|l| {
                l.data_planes
                    .iter()
                    .map(|p| (p.node_id.clone(), p.share_rps))
                    .collect()
            })
            .unwrap_or_default()
    };
    let even = eventually("both data planes report a share", || async {
        let s = shares(&cp.status().await);
        (s.len() == 2 && s.iter().all(|(_, r)| (r - 10.0).abs() < 0.01)).then_some(s)
    })
    .await;
    assert_eq!(even[0].0, "dp-1");

    // Only dp-1 is called, well beyond the budget.
    let client = dp1.client().await;
    let load = tokio::spawn(async move {
        loop {
            let _ = client
                .batch(RECIPE_GROUP, "add", json!({"a": 1, "b": 2}), 20)
                .await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    // Each data plane reports the share it runs on, on its own time: the
    // status can show one new share beside the other's old one for a
    // moment, until both are in force and add up to the budget again.
    let moved = eventually("dp-1's share grows with its demand", || async {
        let s = shares(&cp.status().await);
        let sum: f64 = s.iter().map(|(_, r)| r).sum();
        (s.len() == 2 && s[0].1 > 15.0 && (sum - 20.0).abs() < 0.01).then_some(s)
    })
    .await;
    load.abort();
    assert!(
        moved[1].1 >= 0.5,
        "the quiet data plane keeps its floor: {moved:?}"
    );
    let status = cp.status().await;
    let all = status.limits.iter().find(|l| l.limit == "all").unwrap();
    assert_eq!(
        (all.rps, all.burst, all.scope.as_str()),
        (20.0, 20, "fleet")
    );
    dp1.stop().await;
    dp2.stop().await;
    cp.stop().await;
}

/// `per_caller` for `hangar_call` on `/mcp`: each MCP session is a caller
/// of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_mcp_session_of_hangar_call_has_its_own_budget() {
    let (_servers, urls) = members(2).await;
    let yaml = format!(
        "rate_limit: {{per_caller: {{rps: 0.1, burst: 2}}}}\n{}",
        GroupConfig::recipe(&urls).yaml()
    );
    let stack = Stack::start(&yaml).await;
    let (noisy, quiet) = (stack.client().await, stack.client().await);
    let out = noisy
        .batch(RECIPE_GROUP, "add", json!({"a": 1, "b": 2}), 4)
        .await;
    assert_eq!(out["succeeded"], 2, "{out}");
    let refused = out["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["success"] == false)
        .unwrap();
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .starts_with("RateLimitExceeded: the rate limit each caller has for every tool call is used up (2 at once, refilled at 0.1 per second)"),
        "{refused}"
    );
    let out = quiet
        .batch(RECIPE_GROUP, "add", json!({"a": 1, "b": 2}), 2)
        .await;
    assert_eq!(out["succeeded"], 2, "{out}");
    stack.stop().await;
}
