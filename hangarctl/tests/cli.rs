//! `hangarctl` as an operator runs it: the real binary against a control
//! plane on loopback.

use std::process::Output;

use hangar_tests::configs;
use hangar_tests::control_plane::ControlPlane;
use hangar_tests::data_plane::DataPlane;
use hangar_tests::eventually::eventually;
use hangar_tests::fake_mcp::FakeMcp;

fn hangarctl(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_hangarctl"))
        .args(args)
        .env_remove("HANGAR_CONTROL_PLANE")
        .env_remove("HANGAR_TOKEN")
        .output()
        .expect("run hangarctl")
}

async fn hangarctl_async(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        hangarctl(&args)
    })
    .await
    .expect("hangarctl task")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `validate` works offline and lists every error with file:line:column and
/// the field path; exit code 1.
#[test]
fn validate_reports_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "mcp_servers:\n  a:\n    mode: remote\n    endpoint: \"localhost:8080\"\n  g:\n    mode: group\n    strategy: fastest\n    members:\n      - id: a\n        weight: 0\n",
    )
    .unwrap();
    let out = hangarctl(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let file = path.display();
    assert_eq!(
        text(&out.stderr),
        format!(
            "{file}:4:15: mcp_servers.a.endpoint: 'localhost:8080' is not an http or https URL (missing 'http://'?)\n\
             {file}:7:15: mcp_servers.g.strategy: unknown strategy 'fastest' (expected one of: round_robin, random, least_connections, weighted_round_robin, priority, least_latency)\n\
             {file}:10:17: mcp_servers.g.members[0].weight: must be at least 1, got 0\n"
        )
    );
}

/// A file nested 100,000 levels deep (200 KB) is refused by its depth, at
/// once, with the position where it passes the limit.
#[test]
fn validate_refuses_deep_nesting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deep.yaml");
    let deep = format!(
        "mcp_servers: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    std::fs::write(&path, deep).unwrap();
    let out = hangarctl(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "{}:1:269: config nests deeper than 64 levels of mappings and lists\n",
            path.display()
        )
    );
}

/// The recipe file as MCP Hangar documents it validates unchanged.
#[test]
fn validate_accepts_the_recipe() {
    let recipe = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/recipe-05.yaml");
    let out = hangarctl(&["validate", recipe]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).ends_with(": valid (3 servers, 1 group)\n"));
}

/// An unreachable control plane gives one clear line and exit code 1.
#[test]
fn unreachable_control_plane_is_one_line() {
    let port = hangar_tests::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let out = hangarctl(&["status", "--control-plane", &url]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("cannot reach control plane at {url}: ")),
        "{stderr}"
    );
}

/// Pointed at a data plane (plain HTTP, not gRPC), hangarctl says the
/// address is not a control plane instead of relaying a gRPC header error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_plane_address_is_not_a_control_plane() {
    let cp = ControlPlane::start().await;
    let dp = DataPlane::start(&cp.url(), "dp-1").await;
    let url = format!("http://{}", dp.addr());
    let out = hangarctl_async(vec!["--control-plane".into(), url.clone(), "status".into()]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "{url} is not a Hangar control plane: it answered plain HTTP, not gRPC"
        )),
        "{stderr}"
    );
    dp.stop().await;
    cp.stop().await;
}

/// `version` prints the client's version and the control plane's, with
/// what the control plane was built for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_shows_client_and_server() {
    let cp = ControlPlane::start().await;
    let out = hangarctl_async(vec!["--control-plane".into(), cp.url(), "version".into()]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let version = env!("CARGO_PKG_VERSION");
    // The control plane runs in this test process, built with its profile.
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let target = format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS);
    assert_eq!(
        text(&out.stdout),
        format!("client: {version}\nserver: {version} ({target}, {profile})\n")
    );
}

/// Without a control plane, `version` still prints the client's version,
/// then one clear line about the server, and exits 1.
#[test]
fn version_without_control_plane() {
    let port = hangar_tests::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let out = hangarctl(&["version", "--control-plane", &url]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        format!("client: {}\n", env!("CARGO_PKG_VERSION"))
    );
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("cannot reach control plane at {url}: ")),
        "{stderr}"
    );
}

/// A usage error exits with 2.
#[test]
fn usage_error_exits_2() {
    assert_eq!(hangarctl(&["frobnicate"]).status.code(), Some(2));
}

/// apply → status shows the group as the recipe does, with the data plane
/// and the version it acked; a bad apply prints the same errors as validate
/// and changes nothing; `-o json` gives the same facts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_then_status() {
    let servers = [
        FakeMcp::new("a").start().await,
        FakeMcp::new("b").start().await,
        FakeMcp::new("c").start().await,
    ];
    let cp = ControlPlane::start().await;
    let _dp = DataPlane::start(&cp.url(), "dp-1").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    let endpoints: Vec<String> = servers
        .iter()
        .map(|s| format!("http://{}", s.addr()))
        .collect();
    std::fs::write(&file, configs::recipe(&endpoints, 0.2, 2)).unwrap();
    let file = file.to_str().unwrap().to_owned();

    // --control-plane after the subcommand works too.
    let out = hangarctl_async(vec![
        "apply".into(),
        file.clone(),
        "--control-plane".into(),
        cp.url(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("applied {file} as version 1\n"));

    let table = eventually("status to show the group ready", || {
        let url = cp.url();
        async move {
            let out = hangarctl_async(vec!["--control-plane".into(), url, "status".into()]).await;
            let stdout = text(&out.stdout);
            stdout
                .contains("my-mcp-group   group   ready")
                .then_some(stdout)
        }
    })
    .await;
    assert!(table.starts_with("config version 1\n\nNAME "), "{table}");
    assert!(
        table.contains("strategy=round_robin  members=3/3 healthy"),
        "{table}"
    );
    assert!(
        table.contains(&format!(
            "my-mcp         remote  ready  endpoint={}/mcp",
            endpoints[0]
        )),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("dp-1 ") && l.contains(" v1 ")),
        "{table}"
    );

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "mcp_servers:\n  g:\n    mode: group\n    members: []\n",
    )
    .unwrap();
    let bad = bad.to_str().unwrap().to_owned();
    let applied = hangarctl_async(vec![
        "--control-plane".into(),
        cp.url(),
        "apply".into(),
        bad.clone(),
    ])
    .await;
    let validated = hangarctl_async(vec!["validate".into(), bad.clone()]).await;
    assert_eq!(applied.status.code(), Some(1));
    assert_eq!(text(&applied.stderr), text(&validated.stderr));
    assert_eq!(
        text(&applied.stderr),
        format!("{bad}:4:14: mcp_servers.g.members: must not be empty\n")
    );

    let out = hangarctl_async(vec![
        "--control-plane".into(),
        cp.url(),
        "status".into(),
        "-o".into(),
        "json".into(),
    ])
    .await;
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("status -o json is JSON");
    assert_eq!(json["version"], 1);
    assert_eq!(json["groups"][0]["name"], "my-mcp-group");
    assert_eq!(json["groups"][0]["healthy_members"], 3);
    assert_eq!(json["data_planes"][0]["node_id"], "dp-1");
}

/// `apply` of a config with no servers over one with some exits 1 saying
/// why and changes nothing; `apply --allow-empty` applies it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emptying_the_fleet_needs_allow_empty() {
    let cp = ControlPlane::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, yaml: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, yaml).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let good = file(
        "config.yaml",
        &configs::recipe(&["http://127.0.0.1:1".into()], 10.0, 3),
    );
    let empty = file("empty.yaml", "mcp_servers: {}\n");
    let run = |args: &[&str]| {
        let mut all = vec!["--control-plane".to_owned(), cp.url()];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        hangarctl_async(all)
    };
    let out = run(&["apply", &good]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let out = run(&["apply", &empty]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "apply failed: the config has no servers: applying it would remove every server (2 in force) from every data plane; pass --allow-empty to do that\n"
    );
    let out = run(&["status", "-o", "json"]).await;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["version"], 1);
    assert_eq!(json["servers"][0]["name"], "my-mcp");
    assert_eq!(json["groups"][0]["name"], "my-mcp-group");

    let out = run(&["apply", "--allow-empty", &empty]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("applied {empty} as version 2\n"));
    let out = run(&["status", "-o", "json"]).await;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["version"], 2);
    assert_eq!(json["servers"], serde_json::json!([]));
}

/// `get dataplanes` lists the fleet with state and acked version, and
/// `status --watch` prints a new status when the config changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_dataplanes_and_watch() {
    use tokio::io::AsyncBufReadExt;

    let server = FakeMcp::new("a").start().await;
    let cp = ControlPlane::start().await;
    let _dp = DataPlane::start(&cp.url(), "dp-1").await;
    let yaml = configs::recipe(&[server.url()], 0.2, 2);
    cp.apply_and_wait(&yaml, 1).await;

    let out = hangarctl_async(vec![
        "--control-plane".into(),
        cp.url(),
        "get".into(),
        "dataplanes".into(),
    ])
    .await;
    let table = text(&out.stdout);
    assert!(
        table.starts_with("DATA PLANE  STATE      LISTEN"),
        "{table}"
    );
    assert!(
        table.lines().nth(1).is_some_and(
            |l| l.starts_with("dp-1        connected  127.0.0.1:") && l.contains(" v1 ")
        ),
        "{table}"
    );
    let out = hangarctl_async(vec![
        "--control-plane".into(),
        cp.url(),
        "get".into(),
        "dataplanes".into(),
        "-o".into(),
        "json".into(),
    ])
    .await;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["data_planes"][0]["state"], "connected");
    assert_eq!(json["data_planes"][0]["acked_version"], 1);

    let mut watch = tokio::process::Command::new(env!("CARGO_BIN_EXE_hangarctl"))
        .args([
            "--control-plane",
            &cp.url(),
            "status",
            "--watch",
            "-o",
            "json",
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn hangarctl status --watch");
    let mut lines = tokio::io::BufReader::new(watch.stdout.take().unwrap()).lines();
    let first: serde_json::Value =
        serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(first["version"], 1);
    let random = configs::GroupConfig {
        strategy: "random".into(),
        ..configs::GroupConfig::recipe(&[server.url()])
    };
    cp.apply(&random.yaml()).await.unwrap();
    let mut seen_v2 = false;
    for _ in 0..20 {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("watch keeps printing");
        let status: serde_json::Value = serde_json::from_str(&line).unwrap();
        if status["version"] == 2 {
            assert_eq!(status["groups"][0]["strategy"], "random");
            seen_v2 = true;
            break;
        }
    }
    assert!(seen_v2, "the watch shows the new version");
    watch.kill().await.unwrap();
}

/// With an admin token on the control plane, hangarctl needs it (from a
/// file or `HANGAR_TOKEN`) and says so when it is missing; `validate`
/// stays offline and reads no credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_token_comes_from_a_file_or_the_environment() {
    let state = tempfile::tempdir().unwrap();
    let token = "admin-0123456789abcdef";
    let settings = hangar_control_plane::Settings {
        access: hangar_control_plane::auth::Access {
            admin_token: Some(hangar_proto::auth::Token::new(token, "test").unwrap()),
            dataplane_token: None,
        },
        ..hangar_control_plane::Settings::new(state.path())
    };
    let cp = ControlPlane::start_with(settings).await;
    let url = cp.url();
    let token_file = state.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();

    let run = |env_token: Option<&str>, args: Vec<String>| {
        let env_token = env_token.map(str::to_owned);
        tokio::task::spawn_blocking(move || {
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_hangarctl"));
            command.args(&args).env_remove("HANGAR_CONTROL_PLANE");
            match env_token {
                Some(t) => command.env("HANGAR_TOKEN", t),
                None => command.env_remove("HANGAR_TOKEN"),
            };
            command.output().expect("run hangarctl")
        })
    };
    let status_args = vec![
        "status".to_owned(),
        "--control-plane".to_owned(),
        url.clone(),
    ];

    let out = run(None, status_args.clone()).await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "status failed: the admin API needs a token: pass --token-file or set HANGAR_TOKEN\n"
    );
    let out = run(Some("guess"), status_args.clone()).await.unwrap();
    assert_eq!(
        text(&out.stderr),
        "status failed: wrong token for the admin API\n"
    );

    let out = run(Some(token), status_args.clone()).await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut with_file = status_args.clone();
    with_file.extend(["--token-file".to_owned(), token_file.display().to_string()]);
    let out = run(None, with_file).await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let recipe = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/recipe-05.yaml");
    let out = run(
        Some("not a token"),
        vec!["validate".to_owned(), recipe.to_owned()],
    )
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    cp.stop().await;
}

/// `create apikey` prints the key once on stdout (and how to use it on
/// stderr), `get apikeys` lists ids and principals without keys, and
/// `delete apikey` revokes; a bad principal or lifetime is one line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_created_listed_and_deleted() {
    let cp = ControlPlane::start().await;
    let run = |args: &[&str]| {
        let mut all = vec!["--control-plane".to_owned(), cp.url()];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        hangarctl_async(all)
    };
    let out = run(&[
        "create",
        "apikey",
        "--principal",
        "service:my-app",
        "--expires",
        "30d",
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let key = text(&out.stdout).trim().to_owned();
    assert!(key.starts_with("hgk_") && !key.contains(' '), "{key}");
    assert!(
        text(&out.stderr).contains("for service:my-app, expires "),
        "{}",
        text(&out.stderr)
    );

    let out = run(&["get", "apikeys", "-o", "json"]).await;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let listed = &json["api_keys"][0];
    assert_eq!(listed["principal"], "service:my-app");
    assert!(
        !text(&out.stdout).contains(&key[4..]),
        "the key is never listed"
    );
    let id = listed["id"].as_str().unwrap().to_owned();
    let table = text(&run(&["get", "apikeys"]).await.stdout);
    assert!(table.starts_with("ID") && table.contains(&id), "{table}");

    let out = run(&["delete", "apikey", &id]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&run(&["get", "apikeys"]).await.stdout),
        "no API keys\n"
    );
    let out = run(&["delete", "apikey", &id]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(&format!("no API key with id '{id}'")),
        "{}",
        text(&out.stderr)
    );

    let out = run(&["create", "apikey", "--principal", "two words"]).await;
    assert_eq!(out.status.code(), Some(1));
    let out = run(&["create", "apikey", "--principal", "p", "--expires", "soon"]).await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "a bad lifetime is a usage error"
    );
    cp.stop().await;
}
