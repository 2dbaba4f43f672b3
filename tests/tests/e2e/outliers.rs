//! Passive outlier ejection as a user meets it: a member that answers its
//! probes but fails its tool calls leaves the group after
//! `consecutive_failures` of them, stays out while its probes keep
//! passing, shows in status and metrics, and comes back at once when it is
//! restarted.

use hangar_tests::eventually::eventually;
use hangar_tests::fake_mcp::FakeMcp;
use hangar_tests::metrics::Scrape;
use hangar_tests::stack::Stack;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_failing_its_calls_is_ejected_until_restarted() {
    let mut bad = FakeMcp::new("bad").fail_calls().start().await;
    let good = FakeMcp::new("good").start().await;
    let other = FakeMcp::new("other").start().await;
    // A high max_consecutive_failures keeps the member's own health out of
    // the way: outlier detection is what takes it out.
    let server = |id: &str, url: String| {
        format!(
            "  {id}:\n    mode: remote\n    endpoint: \"{url}\"\n    health_check_interval_s: 0.2\n    max_consecutive_failures: 100\n"
        )
    };
    let yaml = format!(
        "mcp_servers:\n{}{}{}  g:\n    mode: group\n    circuit_breaker: {{failure_threshold: 100}}\n    outlier_detection:\n      consecutive_failures: 2\n      base_ejection_time_s: 300\n      slow_start_s: 0\n    members: [{{id: bad}}, {{id: good}}, {{id: other}}]\n",
        server("bad", bad.url()),
        server("good", good.url()),
        server("other", other.url()),
    );
    let stack = Stack::start(&yaml).await;
    let client = stack.client().await;
    let add = json!({"mcp_server": "g", "tool": "add", "arguments": {"a": 1, "b": 2}});
    let call = || async {
        let out = client.hangar_call(json!({"calls": [add.clone()]})).await;
        out["results"][0].clone()
    };

    // Round robin sends `bad` every third call until it has failed two.
    eventually("bad to fail two calls", || async {
        call().await;
        (bad.calls() >= 2).then_some(())
    })
    .await;
    let failed = bad.calls();
    for _ in 0..12 {
        let result = call().await;
        assert_eq!(result["success"], true, "{result}");
    }
    assert_eq!(bad.calls(), failed, "an ejected member gets no calls");

    eventually("status to name the ejected member", || async {
        let status = stack.cp.status().await;
        let group = status.groups.iter().find(|g| g.id == "g")?;
        (group.ejected == ["bad@dp-1"] && group.state == "degraded").then_some(())
    })
    .await;
    let scrape = Scrape::fetch(&stack.dp.metrics_url()).await;
    let gauge = scrape.value("hangar_group_ejected_members", &[("group", "g")]);
    assert_eq!(gauge, Some(1.0));
    let ejections = scrape.value("hangar_group_outlier_ejections_total", &[("group", "g")]);
    assert_eq!(ejections, Some(1.0));
    // Its probes pass all along: they do not end the ejection.
    let healthy = scrape.value("hangar_member_healthy", &[("member", "bad")]);
    assert_eq!(healthy, Some(1.0));

    // Down (a probe fails) and up again: a new process, back at once, not
    // after its 300 s.
    bad.stop().await;
    eventually("a failed probe of the stopped member", || async {
        let scrape = Scrape::fetch(&stack.dp.metrics_url()).await;
        let failures = scrape.value("hangar_member_consecutive_failures", &[("member", "bad")])?;
        (failures > 2.0).then_some(())
    })
    .await;
    bad.restart().await.unwrap();
    eventually("the restarted member to get calls again", || async {
        call().await;
        (bad.calls() > failed).then_some(())
    })
    .await;
}
