//! Configs that must load, and what they load to.

use std::path::Path;
use std::time::Duration;

use hangar_config::{
    Config, Group, Member, OutlierDetection, RateScope, RateSize, RemoteServer, Server,
    StrategyKind, TlsSettings,
};
use hangar_proto::v1;

const RECIPE_05: &str = include_str!("fixtures/recipe-05.yaml");

fn recipe_05() -> Config {
    hangar_config::load("recipe-05.yaml", RECIPE_05).expect("recipe 05 is valid")
}

fn remote(endpoint: &str) -> Server {
    Server::Remote(RemoteServer {
        endpoint: endpoint.parse().expect("test URL"),
        health_check_interval: Duration::from_secs(10),
        max_consecutive_failures: 3,
        description: None,
        headers: Default::default(),
        basic_auth: None,
        tls: TlsSettings {
            verify: true,
            ca_cert_path: None,
        },
        connect_timeout: Duration::from_secs(10),
        read_timeout: Duration::from_secs(30),
        max_concurrency: None,
        stall_timeout: Duration::from_secs(2),
        rate_limit: None,
        tools: None,
    })
}

fn member(id: &str) -> Member {
    Member {
        id: id.into(),
        weight: 1,
        priority: 1,
        tools: None,
    }
}

/// MCP Hangar's load-balancing recipe loads unchanged: bare endpoints get
/// `/mcp`, file order is kept, unset member fields take their defaults.
#[test]
fn recipe_05_loads_unchanged() {
    let config = recipe_05();
    let ids: Vec<&str> = config.servers.keys().map(String::as_str).collect();
    assert_eq!(ids, ["my-mcp", "my-mcp-backup", "my-mcp-3", "my-mcp-group"]);
    assert_eq!(
        config.servers["my-mcp"],
        remote("http://localhost:8080/mcp")
    );
    assert_eq!(
        config.servers["my-mcp-backup"],
        remote("http://localhost:8081/mcp")
    );
    assert_eq!(
        config.servers["my-mcp-3"],
        remote("http://localhost:8082/mcp")
    );
    let group = Server::Group(Group {
        strategy: StrategyKind::RoundRobin,
        min_healthy: 1,
        members: vec![
            member("my-mcp"),
            member("my-mcp-backup"),
            member("my-mcp-3"),
        ],
        description: None,
        max_concurrency: None,
        circuit_failure_threshold: 10,
        session_recovery: true,
        outlier_detection: Some(OutlierDetection::default()),
        rate_limit: None,
        tools: None,
    });
    assert_eq!(config.servers["my-mcp-group"], group);
}

/// `load_file` reads from disk and behaves as `load`.
#[test]
fn recipe_05_loads_from_file() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/recipe-05.yaml");
    let config = hangar_config::load_file(&path).expect("recipe 05 is valid");
    assert_eq!(config, recipe_05());
}

/// `remotes()` and `groups()` split the servers and keep file order.
#[test]
fn remotes_and_groups_iterate_in_file_order() {
    let config = recipe_05();
    let remotes: Vec<&str> = config.remotes().map(|(id, _)| id).collect();
    assert_eq!(remotes, ["my-mcp", "my-mcp-backup", "my-mcp-3"]);
    let groups: Vec<(&str, usize)> = config
        .groups()
        .map(|(id, g)| (id, g.members.len()))
        .collect();
    assert_eq!(groups, [("my-mcp-group", 3)]);
}

/// The snapshot carries exactly what data planes need, in file order.
#[test]
fn recipe_05_compiles_to_snapshot() {
    let snapshot = recipe_05().to_snapshot(7);
    let server = |id: &str, port: u16| v1::Server {
        id: id.into(),
        transport: Some(v1::server::Transport::Endpoint(format!(
            "http://localhost:{port}/mcp"
        ))),
        probe_interval_ms: 10_000,
        max_consecutive_failures: 3,
        fleet_unhealthy: false,
        tls: Some(v1::Tls::default()),
        connect_timeout_ms: 10_000,
        read_timeout_ms: 30_000,
        stall_timeout_ms: 2_000,
        rate_limit: None,
        tools: None,
        ..Default::default()
    };
    let member = |id: &str| v1::Member {
        server_id: id.into(),
        weight: 1,
        priority: 1,
        eligible: true,
        tools: None,
    };
    let want = v1::Snapshot {
        version: 7,
        servers: vec![
            server("my-mcp", 8080),
            server("my-mcp-backup", 8081),
            server("my-mcp-3", 8082),
        ],
        groups: vec![v1::Group {
            id: "my-mcp-group".into(),
            strategy: v1::Strategy::RoundRobin.into(),
            min_healthy: 1,
            members: vec![
                member("my-mcp"),
                member("my-mcp-backup"),
                member("my-mcp-3"),
            ],
            max_concurrency: 0,
            circuit_failure_threshold: 10,
            session_recovery: true,
            retry: None,
            outlier_detection: Some(v1::OutlierDetection {
                consecutive_failures: 5,
                base_ejection_time_ms: 30_000,
                max_ejection_time_ms: 300_000,
                max_ejection_percent: 50,
                slow_start_ms: 10_000,
            }),
            rate_limit: None,
            tools: None,
        }],
        rate_limit: None,
        client_auth: None,
        access: vec![],
    };
    assert_eq!(snapshot, want);
}

/// Every optional key falls back to MCP Hangar's default.
#[test]
fn defaults_apply_when_keys_are_left_out() {
    let text = "mcp_servers:\n  a:\n    mode: remote\n    endpoint: https://h/x\n  g:\n    mode: group\n    members:\n      - id: a\n";
    let config = hangar_config::load("config.yaml", text).expect("valid");
    let Server::Remote(a) = &config.servers["a"] else {
        panic!("a is remote")
    };
    assert_eq!(a.endpoint.as_str(), "https://h/x");
    assert_eq!(
        a.health_check_interval,
        RemoteServer::DEFAULT_HEALTH_CHECK_INTERVAL
    );
    assert_eq!(
        a.max_consecutive_failures,
        RemoteServer::DEFAULT_MAX_CONSECUTIVE_FAILURES
    );
    let Server::Group(g) = &config.servers["g"] else {
        panic!("g is a group")
    };
    assert_eq!(g.strategy, StrategyKind::RoundRobin);
    assert_eq!(g.min_healthy, Group::DEFAULT_MIN_HEALTHY);
    assert_eq!(g.members, [member("a")]);
}

/// Fractional intervals, descriptions, queries, priorities and every
/// strategy name are accepted.
#[test]
fn optional_keys_are_read() {
    let text = r#"mcp_servers:
  a:
    mode: remote
    endpoint: "http://h:9000?tenant=x"
    health_check_interval_s: 0.25
    max_consecutive_failures: 5
    description: primary
  g:
    mode: group
    strategy: priority
    min_healthy: 1
    description: pool
    members:
      - {id: a, weight: 3, priority: -2}
"#;
    let config = hangar_config::load("config.yaml", text).expect("valid");
    let want_a = Server::Remote(RemoteServer {
        endpoint: "http://h:9000/mcp?tenant=x".parse().expect("test URL"),
        health_check_interval: Duration::from_millis(250),
        max_consecutive_failures: 5,
        description: Some("primary".into()),
        headers: Default::default(),
        basic_auth: None,
        tls: TlsSettings {
            verify: true,
            ca_cert_path: None,
        },
        connect_timeout: Duration::from_secs(10),
        read_timeout: Duration::from_secs(30),
        max_concurrency: None,
        stall_timeout: Duration::from_secs(2),
        rate_limit: None,
        tools: None,
    });
    assert_eq!(config.servers["a"], want_a);
    let want_g = Server::Group(Group {
        strategy: StrategyKind::Priority,
        min_healthy: 1,
        members: vec![Member {
            id: "a".into(),
            weight: 3,
            priority: -2,
            tools: None,
        }],
        description: Some("pool".into()),
        max_concurrency: None,
        circuit_failure_threshold: 10,
        session_recovery: true,
        outlier_detection: Some(OutlierDetection::default()),
        rate_limit: None,
        tools: None,
    });
    assert_eq!(config.servers["g"], want_g);
    assert_eq!(config.to_snapshot(1).servers[0].probe_interval_ms, 250);
}

/// Every strategy name in `StrategyKind::ALL` is accepted in a file.
#[test]
fn every_strategy_name_loads() {
    for &strategy in StrategyKind::ALL {
        let text = format!(
            "mcp_servers:\n  a:\n    mode: remote\n    endpoint: http://h\n  g:\n    mode: group\n    strategy: {strategy}\n    members: [{{id: a}}]\n"
        );
        let config = hangar_config::load("config.yaml", &text).expect("valid");
        let (_, group) = config.groups().next().expect("one group");
        assert_eq!(group.strategy, strategy);
    }
}

/// YAML anchors and aliases resolve like any other value.
#[test]
fn aliases_resolve() {
    let text =
        "mcp_servers:\n  a: &remote\n    mode: remote\n    endpoint: http://h\n  b: *remote\n";
    let config = hangar_config::load("config.yaml", text).expect("valid");
    assert_eq!(config.servers["a"], config.servers["b"]);
}

/// An empty `mcp_servers` mapping is a valid config with nothing in it.
#[test]
fn empty_server_map_is_valid() {
    let config = hangar_config::load("config.yaml", "mcp_servers: {}\n").expect("valid");
    assert!(config.servers.is_empty());
    assert_eq!(
        config.to_snapshot(1),
        v1::Snapshot {
            version: 1,
            ..Default::default()
        }
    );
}

/// MCP Hangar's documented remote-server options load unchanged: bearer
/// auth, a private CA, timeouts and extra headers (retries are accepted and
/// have no effect), and the references travel unresolved.
#[test]
fn remote_server_options_load_with_references_unresolved() {
    let text = r#"
mcp_servers:
  production-math:
    mode: remote
    endpoint: https://mcp-math.production.example.com/mcp
    description: "Production math service with bearer auth"
    auth:
      type: bearer
      bearer_token: ${MATH_SERVICE_TOKEN}
    tls:
      verify_ssl: true
      ca_cert_path: /etc/ssl/certs/company-ca.pem
    http:
      connect_timeout: 5.0
      read_timeout: 30.0
      max_retries: 3
      retry_backoff_factor: 0.5
      headers:
        X-Service-Name: mcp-hangar
        X-Key: ${file:/run/secrets/key}
    idle_ttl_s: 600
    max_concurrency: 4
  basic:
    mode: remote
    endpoint: https://internal.example.com/mcp
    auth: {type: basic, username: "${U}", password: "${P}"}
"#;
    let config = hangar_config::load("config.yaml", text).expect("valid");
    let Server::Remote(math) = &config.servers["production-math"] else {
        panic!("remote")
    };
    let headers: Vec<(String, String)> = math
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    assert_eq!(
        headers,
        [
            ("X-Service-Name".into(), "mcp-hangar".into()),
            ("X-Key".into(), "${file:/run/secrets/key}".into()),
            (
                "Authorization".into(),
                "Bearer ${MATH_SERVICE_TOKEN}".into()
            ),
        ]
    );
    assert_eq!(math.connect_timeout, Duration::from_secs(5));
    assert_eq!(math.max_concurrency, Some(4));
    let snapshot = config.to_snapshot(1);
    let server = &snapshot.servers[0];
    assert_eq!(server.connect_timeout_ms, 5_000);
    assert_eq!(server.read_timeout_ms, 30_000);
    assert_eq!(
        server.tls,
        Some(v1::Tls {
            skip_verify: false,
            ca_cert_path: "/etc/ssl/certs/company-ca.pem".into()
        })
    );
    assert_eq!(server.headers[2].value, "Bearer ${MATH_SERVICE_TOKEN}");
    let basic = snapshot.servers[1].basic_auth.as_ref().expect("basic auth");
    assert_eq!(
        (basic.username.as_str(), basic.password.as_str()),
        ("${U}", "${P}")
    );
}

/// MCP Hangar's subprocess recipe loads; `args` follow `command`.
#[test]
fn subprocess_servers_load_and_can_be_group_members() {
    let text = r#"
mcp_servers:
  math:
    mode: subprocess
    command: [python, -m, math_server]
    args: ["--transport", stdio]
    idle_ttl_s: 300
    health_check_interval_s: 60
    max_consecutive_failures: 3
    replicas: 3
    env:
      PYTHONUNBUFFERED: "1"
      API_KEY: ${MATH_KEY}
  tool:
    mode: subprocess
    command: my-mcp-server
  pool:
    mode: group
    max_concurrency: 10
    members: [{id: math}, {id: tool}]
"#;
    let config = hangar_config::load("config.yaml", text).expect("valid");
    let Server::Subprocess(math) = &config.servers["math"] else {
        panic!("subprocess")
    };
    assert_eq!(
        math.command,
        ["python", "-m", "math_server", "--transport", "stdio"]
    );
    assert_eq!(math.replicas, 3);
    let snapshot = config.to_snapshot(1);
    let sub = snapshot.servers[0].subprocess().expect("subprocess");
    assert_eq!(sub.replicas, 3);
    assert_eq!(sub.env[1].value, "${MATH_KEY}");
    assert_eq!(snapshot.servers[0].endpoint(), None);
    let tool = snapshot.servers[1].subprocess().expect("subprocess");
    assert_eq!((tool.command.len(), tool.replicas), (1, 1));
    assert_eq!(snapshot.groups[0].max_concurrency, 10);
}

/// MCP Hangar's circuit-breaker recipe loads as it is; its group carries the
/// threshold to data planes. `reset_timeout_s` is accepted and has no
/// effect. A group without the block gets MCP Hangar's default, 10.
#[test]
fn recipe_03_loads_with_its_circuit_breaker() {
    let text = include_str!("fixtures/recipe-03.yaml");
    let config = hangar_config::load("recipe-03.yaml", text).expect("recipe 03 is valid");
    let Server::Group(group) = &config.servers["my-mcp-group"] else {
        panic!("my-mcp-group is a group");
    };
    assert_eq!(group.circuit_failure_threshold, 3);
    let snapshot = config.to_snapshot(1);
    assert_eq!(snapshot.groups[0].circuit_failure_threshold, 3);

    let plain = recipe_05().to_snapshot(1);
    assert_eq!(plain.groups[0].circuit_failure_threshold, 10);
}

/// MCP Hangar's `retry:` keys load; a group gets its `per_mcp_server`
/// policy, else the default one, in the snapshot.
#[test]
fn retry_policies_load_and_reach_the_groups() {
    let text = "mcp_servers:\n  a: {mode: remote, endpoint: http://a}\n  g: {mode: group, members: [{id: a}]}\n  h: {mode: group, members: [{id: a}]}\nretry:\n  default_policy:\n    max_attempts: 3\n    backoff: exponential\n    initial_delay: 0.5\n    max_delay: 10\n    retry_on: [TimeoutError, ConnectionError]\n    jitter: true\n    jitter_factor: 0.2\n  per_mcp_server:\n    h:\n      max_attempts: 2\n      backoff: constant\n      jitter: false\n";
    let config = hangar_config::load("config.yaml", text).expect("valid");
    let snapshot = config.to_snapshot(1);
    let g = snapshot.groups[0].retry.as_ref().expect("default policy");
    assert_eq!(
        (
            g.max_attempts,
            g.backoff.as_str(),
            g.initial_delay_ms,
            g.max_delay_ms
        ),
        (3, "exponential", 500, 10_000)
    );
    assert_eq!(g.retry_on, ["TimeoutError", "ConnectionError"]);
    assert!((g.jitter_factor - 0.2).abs() < 1e-9);
    let h = snapshot.groups[1].retry.as_ref().expect("its own policy");
    assert_eq!(
        (h.max_attempts, h.backoff.as_str(), h.jitter_factor),
        (2, "constant", 0.0)
    );
    let plain = recipe_05().to_snapshot(1);
    assert_eq!(plain.groups[0].retry, None);
}

/// A group gets outlier detection by default; `enabled: false` turns it
/// off, and a block sets what it names, the rest keeping their defaults.
#[test]
fn outlier_detection_defaults_and_opt_out() {
    let text = "mcp_servers:\n  a: {mode: remote, endpoint: http://a}\n  g: {mode: group, members: [{id: a}]}\n  off: {mode: group, members: [{id: a}], outlier_detection: {enabled: false}}\n  set: {mode: group, members: [{id: a}], outlier_detection: {consecutive_failures: 2, base_ejection_time_s: 0.5}}\n";
    let snapshot = hangar_config::load("config.yaml", text)
        .expect("valid")
        .to_snapshot(1);
    let by_id = |id: &str| snapshot.groups.iter().find(|g| g.id == id).unwrap();
    let default = by_id("g")
        .outlier_detection
        .as_ref()
        .expect("on by default");
    assert_eq!(
        (default.consecutive_failures, default.base_ejection_time_ms),
        (5, 30_000)
    );
    assert_eq!(by_id("off").outlier_detection, None);
    let set = by_id("set").outlier_detection.as_ref().unwrap();
    assert_eq!(
        (
            set.consecutive_failures,
            set.base_ejection_time_ms,
            set.max_ejection_time_ms,
            set.slow_start_ms
        ),
        (2, 500, 300_000, 10_000)
    );
}

/// MCP Hangar's recipe 06 loads as it is: its top-level `rate_limit` is a
/// fleet-wide budget with a per-caller one inside it.
#[test]
fn recipe_06_loads_with_its_rate_limit() {
    let text = include_str!("fixtures/recipe-06.yaml");
    let config = hangar_config::load("recipe-06.yaml", text).expect("recipe 06 is valid");
    let limit = config.rate_limit.as_ref().expect("a top-level limit");
    assert_eq!(
        limit.all,
        Some(RateSize {
            rps: 10.0,
            burst: 20
        })
    );
    assert_eq!(limit.per_caller, Some(RateSize { rps: 2.0, burst: 5 }));
    assert_eq!(limit.scope, RateScope::Fleet);
    let snapshot = config.to_snapshot(1);
    let limit = snapshot.rate_limit.expect("in the snapshot");
    assert_eq!(
        (limit.all.unwrap().rps, limit.per_caller.unwrap().burst),
        (10.0, 5)
    );
    assert!(!limit.per_data_plane);
    assert_eq!(recipe_05().to_snapshot(1).rate_limit, None);
}

/// Limits on a group, a server and single tools reach the snapshot; a
/// burst left out is one second's worth.
#[test]
fn group_server_and_tool_limits_load() {
    let text = "mcp_servers:\n  a:\n    mode: remote\n    endpoint: http://a\n    rate_limit: {rps: 2.5, scope: data_plane}\n  g:\n    mode: group\n    members: [{id: a}]\n    rate_limit:\n      rps: 100\n      burst: 50\n      methods: [tools/call, tools/list]\n      tools:\n        search: {rps: 5, burst: 10, per_caller: {rps: 1}}\n";
    let config = hangar_config::load("config.yaml", text).expect("valid");
    let Server::Remote(a) = &config.servers["a"] else {
        panic!("a is remote");
    };
    let a = a.rate_limit.as_ref().unwrap();
    assert_eq!(a.all, Some(RateSize { rps: 2.5, burst: 3 }));
    assert_eq!(a.scope, RateScope::DataPlane);
    let snapshot = config.to_snapshot(1);
    let g = snapshot.groups[0].rate_limit.as_ref().unwrap();
    assert_eq!(g.methods, ["tools/call", "tools/list"]);
    let search = &g.tools["search"];
    assert_eq!(
        search.all.as_ref().map(|s| (s.rps, s.burst)),
        Some((5.0, 10))
    );
    assert_eq!(search.per_caller.as_ref().map(|s| s.burst), Some(1));
    assert!(
        snapshot.servers[0]
            .rate_limit
            .as_ref()
            .unwrap()
            .per_data_plane
    );
}

/// MCP Hangar's `auth:` with Hangar's `jwt`, `oauth` and `access:`: the
/// defaults a user gets, as the snapshot carries them.
#[test]
fn client_auth_and_access_rules_reach_the_snapshot_with_their_defaults() {
    let text = "\
mcp_servers:
  math: {mode: remote, endpoint: http://127.0.0.1:9/mcp}
auth:
  enabled: true
  api_key: {enabled: true}
  jwt:
    issuer: https://idp.example.com/
    audience: https://mcp.example.com
    jwks_url: https://idp.example.com/jwks.json
access:
  - principals: [\"service:*\"]
    roles: [admin]
    allow: [\"math/*\"]
";
    let snapshot = hangar_config::load("config.yaml", text)
        .unwrap()
        .to_snapshot(1);
    let auth = snapshot.client_auth.unwrap();
    assert_eq!(auth.api_key_header, "X-API-Key");
    let jwt = auth.jwt.unwrap();
    assert_eq!(jwt.audiences, ["https://mcp.example.com"]);
    assert_eq!(jwt.jwks_url, "https://idp.example.com/jwks.json");
    assert_eq!(
        (jwt.principal_claim.as_str(), jwt.roles_claim.as_str()),
        ("sub", "roles")
    );
    assert_eq!(jwt.algorithms, ["RS256", "ES256", "EdDSA"]);
    assert_eq!(jwt.leeway_s, 30);
    let oauth = auth.oauth.unwrap();
    assert_eq!(oauth.authorization_servers, ["https://idp.example.com/"]);
    assert_eq!(
        snapshot.access,
        [v1::AccessRule {
            principals: vec!["service:*".into()],
            roles: vec!["admin".into()],
            allow: vec!["math/*".into()],
        }]
    );
}
