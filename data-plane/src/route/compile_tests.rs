//! Compiling snapshots without I/O: which members are kept across a new
//! snapshot, and which snapshots are refused and why.

use super::*;
use foldhash::HashMap;

fn remote(id: &str, endpoint: &str) -> v1::Server {
    v1::Server {
        id: id.to_owned(),
        transport: Some(v1::server::Transport::Endpoint(endpoint.to_owned())),
        probe_interval_ms: 10_000,
        max_consecutive_failures: 3,
        ..v1::Server::default()
    }
}

fn subprocess(id: &str, command: &[&str], replicas: u32) -> v1::Server {
    v1::Server {
        id: id.to_owned(),
        transport: Some(v1::server::Transport::Subprocess(v1::Subprocess {
            command: command.iter().map(|s| (*s).to_owned()).collect(),
            replicas,
            ..v1::Subprocess::default()
        })),
        ..v1::Server::default()
    }
}

fn group(id: &str, strategy: Strategy, members: &[&str]) -> v1::Group {
    v1::Group {
        id: id.to_owned(),
        strategy: strategy.into(),
        min_healthy: 1,
        members: members
            .iter()
            .map(|m| v1::Member {
                server_id: (*m).to_owned(),
                weight: 1,
                priority: 1,
                eligible: true,
                tools: None,
            })
            .collect(),
        max_concurrency: 0,
        circuit_failure_threshold: 10,
        session_recovery: true,
        retry: None,
        outlier_detection: None,
        rate_limit: None,
        tools: None,
    }
}

fn snapshot(servers: Vec<v1::Server>, groups: Vec<v1::Group>) -> Snapshot {
    Snapshot {
        version: 2,
        servers,
        groups,
        rate_limit: None,
        client_auth: None,
        access: vec![],
    }
}

fn specs(snapshot: &Snapshot) -> HashMap<String, MemberSpec> {
    snapshot
        .servers
        .iter()
        .map(|s| (s.id.clone(), MemberSpec::of(s)))
        .collect()
}

fn kept<'p>(plan: &'p Plan<'_>) -> Vec<(&'p str, bool)> {
    plan.servers
        .iter()
        .map(|s| (s.server.id.as_str(), s.keep))
        .collect()
}

/// Members keep their health and sessions unless what they are built from
/// changed; the failure threshold and the fleet's verdict change in place.
#[test]
fn members_are_kept_unless_their_settings_changed() {
    let before = snapshot(
        vec![
            remote("a", "http://127.0.0.1:1/mcp"),
            remote("b", "http://127.0.0.1:2/mcp"),
            remote("c", "http://127.0.0.1:3/mcp"),
        ],
        vec![],
    );
    let in_force = specs(&before);
    let mut after = before.clone();
    after.servers[0].max_consecutive_failures = 9;
    after.servers[0].fleet_unhealthy = true;
    after.servers[1].transport = Some(v1::server::Transport::Endpoint(
        "http://127.0.0.1:20/mcp".into(),
    ));
    after.servers.push(remote("d", "http://127.0.0.1:4/mcp"));
    let plan = compile(&after, &in_force).expect("usable");
    assert_eq!(
        kept(&plan),
        [("a", true), ("b", false), ("c", true), ("d", false)]
    );
    assert_eq!(plan.version, 2);
    // Nothing is kept on a first snapshot.
    let plan = compile(&before, &HashMap::default()).expect("usable");
    assert!(plan.servers.iter().all(|s| !s.keep));
}

#[test]
fn groups_get_their_strategy_and_members() {
    let snap = snapshot(
        vec![
            remote("a", "https://mcp.example/mcp"),
            subprocess("s", &["server"], 2),
        ],
        vec![group("g", Strategy::Priority, &["a", "s"])],
    );
    let plan = compile(&snap, &HashMap::default()).expect("usable");
    assert_eq!(plan.groups.len(), 1);
    assert_eq!(plan.groups[0].strategy, StrategyKind::Priority);
    assert_eq!(plan.groups[0].group.members.len(), 2);
}

/// Every refusal names what is wrong; the text is the NACK's reason.
#[test]
fn unusable_snapshots_are_refused_with_the_reason() {
    let ok = || remote("a", "http://127.0.0.1:1/mcp");
    let cases = [
        (
            snapshot(vec![ok(), ok()], vec![]),
            "server 'a' appears twice",
        ),
        (
            snapshot(vec![subprocess("s", &[], 1)], vec![]),
            "server 's': subprocess without a command",
        ),
        (
            snapshot(vec![subprocess("s", &[""], 1)], vec![]),
            "server 's': subprocess without a command",
        ),
        (
            snapshot(vec![subprocess("s", &["x"], 65)], vec![]),
            "server 's': 65 replicas, at most 64",
        ),
        (
            snapshot(vec![remote("a", "not a url")], vec![]),
            "server 'a': bad endpoint: relative URL without a base",
        ),
        (
            snapshot(vec![remote("a", "ftp://127.0.0.1/mcp")], vec![]),
            "server 'a': endpoint must be http or https",
        ),
        (
            snapshot(vec![ok()], vec![group("g", Strategy::Unspecified, &["a"])]),
            "group 'g': unknown strategy 0",
        ),
        (
            snapshot(
                vec![ok()],
                vec![group("g", Strategy::RoundRobin, &["a", "x"])],
            ),
            "group 'g': unknown member 'x'",
        ),
    ];
    for (snap, reason) in cases {
        let err = compile(&snap, &HashMap::default()).expect_err(reason);
        assert_eq!(err.to_string(), reason);
    }
    // A strategy number from a newer control plane is refused too.
    let mut newer = snapshot(vec![ok()], vec![group("g", Strategy::RoundRobin, &["a"])]);
    newer.groups[0].strategy = 42;
    let err = compile(&newer, &HashMap::default()).unwrap_err();
    assert_eq!(
        err,
        SnapshotError::UnknownStrategy {
            group: "g".into(),
            value: 42
        }
    );
}
