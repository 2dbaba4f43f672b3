//! The control plane's status page: its guard (the admin token, by header
//! or the cookie `/?token=` sets), its headers, its data as JSON and as a
//! live stream, and the page itself in a real headless Chromium following
//! a group from `ready` to `partial` without a reload.

use hangar_control_plane::auth::Access;
use hangar_proto::auth::Token;
use hangar_proto::client::{ClientConfig, ClientTls};
use hangar_proto::v1::{Server, Snapshot, server::Transport};
use hangar_tests::browser::Browser;
use hangar_tests::configs::{GroupConfig, RECIPE_GROUP};
use hangar_tests::control_plane::ControlPlane;
use hangar_tests::data_plane::DataPlane;
use hangar_tests::eventually::eventually;
use hangar_tests::fake_mcp::{FakeMcp, FakeMcpHandle};
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use serde_json::Value;

const ADMIN: &str = "admin-0123456789abcdef";
const DATAPLANE: &str = "dataplane-0123456789abcdef";
/// A node id a data plane may well send: the page must show it as text.
const HTML_NODE: &str = "<img src=x id=injected>dp-2";

fn token(text: &str) -> Option<Token> {
    Some(Token::new(text, "test").unwrap())
}

fn client(token_text: &str) -> ClientConfig {
    ClientConfig {
        token: token(token_text),
        tls: ClientTls::default(),
    }
}

/// A control plane that wants the admin and data-plane tokens.
async fn guarded_control_plane(state: &std::path::Path) -> ControlPlane {
    let settings = hangar_control_plane::Settings {
        access: Access {
            admin_token: token(ADMIN),
            dataplane_token: token(DATAPLANE),
        },
        ..hangar_control_plane::Settings::new(state)
    };
    ControlPlane::start_with(settings)
        .await
        .with_admin_client(client(ADMIN))
}

async fn data_plane(cp: &ControlPlane, node_id: &str) -> DataPlane {
    DataPlane::start_with(hangar_data_plane::Settings {
        client: client(DATAPLANE),
        ..hangar_data_plane::Settings::new(cp.url(), node_id)
    })
    .await
}

async fn members(n: usize) -> (Vec<FakeMcpHandle>, String) {
    let mut servers = Vec::new();
    for i in 0..n {
        servers.push(FakeMcp::new(format!("m{i}")).start().await);
    }
    let endpoints: Vec<String> = servers.iter().map(FakeMcpHandle::url).collect();
    (servers, GroupConfig::recipe(&endpoints).yaml())
}

fn header(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// What every answer of the page carries.
fn assert_guarded_headers(headers: &HeaderMap, what: &str) {
    assert_eq!(header(headers, header::CACHE_CONTROL), "no-store", "{what}");
    assert_eq!(
        header(headers, header::X_CONTENT_TYPE_OPTIONS),
        "nosniff",
        "{what}"
    );
    let csp = header(headers, header::CONTENT_SECURITY_POLICY);
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{what}: {csp}"
    );
}

/// Without the admin token the page and its data are refused; with it (as
/// a bearer token, or the cookie `/?token=` sets) they answer, with the
/// fleet's values as data: an HTML-ish node id and NACK reason stay
/// strings in the JSON and the page has no inline script to run them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_data_take_the_admin_token() {
    let (_servers, yaml) = members(2).await;
    let state = tempfile::tempdir().unwrap();
    let cp = guarded_control_plane(state.path()).await;
    let dp = data_plane(&cp, HTML_NODE).await;
    cp.apply_and_wait(&yaml, 1).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: &str, auth: Option<(&str, String)>| {
        let mut request = http.get(cp.page_url(path));
        if let Some((name, value)) = auth {
            request = request.header(name, value);
        }
        request.send()
    };
    let bearer = |token: &str| Some(("authorization", format!("Bearer {token}")));

    for path in ["/status.json", "/status/events"] {
        for (auth, expected) in [
            (None, StatusCode::UNAUTHORIZED),
            (bearer("guess"), StatusCode::UNAUTHORIZED),
            (bearer(DATAPLANE), StatusCode::FORBIDDEN),
        ] {
            let what = format!("{path} with {auth:?}");
            let refused = get(path, auth).await.unwrap();
            assert_eq!(refused.status(), expected, "{what}");
            assert_guarded_headers(refused.headers(), &what);
            assert!(!refused.text().await.unwrap().contains("my-mcp"), "{what}");
        }
    }
    let login = get("/", None).await.unwrap();
    assert_eq!(login.status(), StatusCode::UNAUTHORIZED);
    assert_guarded_headers(login.headers(), "/ without a token");
    assert!(
        login.text().await.unwrap().contains(r#"name="token""#),
        "a form asks for the token"
    );

    let answer = get("/status.json", bearer(ADMIN)).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_guarded_headers(answer.headers(), "/status.json");
    assert_eq!(
        header(answer.headers(), header::CONTENT_TYPE),
        "application/json"
    );
    let status: Value = answer.json().await.unwrap();
    assert_eq!(status["data_planes"][0]["node_id"], HTML_NODE);
    assert_eq!(status["groups"][0]["name"], RECIPE_GROUP);

    // The cookie: `/?token=` answers with it and sends the browser to `/`.
    let signed_in = get(&format!("/?token={ADMIN}"), None).await.unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(signed_in.headers(), header::LOCATION), "/");
    let set_cookie = header(signed_in.headers(), header::SET_COOKIE).to_owned();
    assert!(
        set_cookie.contains("; HttpOnly") && set_cookie.contains("; SameSite=Strict"),
        "{set_cookie}"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let wrong = get("/?token=guess", None).await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get(header::SET_COOKIE).is_none());

    let page = get("/", Some(("cookie", cookie.clone()))).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_guarded_headers(page.headers(), "/");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<script src="/status/app.js""#), "{html}");
    assert_eq!(
        html.matches("<script").count(),
        1,
        "no inline script: {html}"
    );
    let script = get("/status/app.js", None).await.unwrap();
    assert_eq!(
        header(script.headers(), header::CONTENT_TYPE),
        "text/javascript; charset=utf-8"
    );
    assert!(!script.text().await.unwrap().contains("innerHTML"));

    // The live stream starts with the whole status.
    let mut events = get("/status/events", Some(("cookie", cookie.clone())))
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    assert_eq!(
        header(events.headers(), header::CONTENT_TYPE),
        "text/event-stream"
    );
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk = events.chunk().await.unwrap().expect("an event");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.starts_with("event: status\n"), "{text}");
    let data = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    let first: Value = serde_json::from_str(data).unwrap();
    assert_eq!(first["version"], status["version"]);
    drop(events);

    // A NACK's reason is the data plane's words, whatever they hold.
    cp.inject_snapshot(Snapshot {
        version: 2,
        servers: vec![Server {
            id: "<script>alert(1)</script>".into(),
            transport: Some(Transport::Endpoint("ftp://nowhere".into())),
            probe_interval_ms: 1000,
            max_consecutive_failures: 1,
            ..Default::default()
        }],
        ..Default::default()
    });
    let nack = eventually("the NACK on the status page", || async {
        let status: Value = get("/status.json", Some(("cookie", cookie.clone())))
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let nack = status["nacks"].get(0)?.clone();
        Some(nack)
    })
    .await;
    assert_eq!(nack["node_id"], HTML_NODE);
    assert_eq!(nack["version"], 2);
    assert!(
        nack["reason"]
            .as_str()
            .unwrap()
            .contains("'<script>alert(1)</script>'"),
        "{nack}"
    );

    dp.stop().await;
    cp.stop().await;
}

/// A script that returns `state` once the page shows the group in it, else `null`.
fn group_shows(state: &str) -> String {
    format!(
        "const s = document.querySelector('[data-group=\"{RECIPE_GROUP}\"] .state'); \
         return s && s.textContent === '{state}' ? s.textContent : null;"
    )
}

/// The page in a real browser: opened with `?token=`, it loses the token
/// from its address, shows the group `ready`, then, when a member stops,
/// `partial`, without a reload; a node id made of HTML shows as text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_follows_a_group_live_in_a_browser() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let (mut servers, yaml) = members(2).await;
    let state = tempfile::tempdir().unwrap();
    let cp = guarded_control_plane(state.path()).await;
    let dp = data_plane(&cp, "dp-1").await;
    let odd = data_plane(&cp, HTML_NODE).await;
    cp.apply_and_wait(&yaml, 2).await;

    browser
        .open(&cp.page_url(&format!("/?token={ADMIN}")))
        .await;
    assert_eq!(
        browser.url().await,
        cp.page_url("/"),
        "the token leaves the address bar"
    );
    browser
        .wait_for("the page to show the group ready", &group_shows("ready"))
        .await;
    let shown = browser
        .eval(
            "window.notReloaded = true; return { \
             planes: [...document.querySelectorAll('[data-plane] td.name')].map(td => td.textContent), \
             injected: document.querySelectorAll('#injected, main img').length };",
        )
        .await;
    assert_eq!(shown["injected"], 0, "{shown}");
    assert!(
        shown["planes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == HTML_NODE),
        "{shown}"
    );

    servers[1].stop().await;
    browser
        .wait_for(
            "the page to show the group partial",
            &group_shows("partial"),
        )
        .await;
    assert_eq!(
        browser.eval("return window.notReloaded === true;").await,
        true
    );
    let member = browser
        .eval(
            "const row = document.querySelector('[data-member=\"my-mcp-backup\"]'); \
             return [...row.querySelectorAll('[data-seen]')].map(c => c.getAttribute('data-seen'));",
        )
        .await;
    assert_eq!(member, serde_json::json!(["failing", "failing"]));

    browser.close().await;
    odd.stop().await;
    dp.stop().await;
    cp.stop().await;
}

/// Takes the README's picture of the page: two data planes, two groups
/// (one `partial` with a member down), a rate limit under load and a NACK.
/// Run with `HANGAR_SCREENSHOT=docs/status-page.png cargo test -p
/// hangar-tests --test e2e status_page_screenshot -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "makes docs/status-page.png when HANGAR_SCREENSHOT names the file"]
async fn status_page_screenshot() {
    let Ok(path) = std::env::var("HANGAR_SCREENSHOT") else {
        eprintln!("skipping: set HANGAR_SCREENSHOT to the PNG to write");
        return;
    };
    let Some(browser) = Browser::start_sized(1280, 900).await else {
        return;
    };
    let mut servers = Vec::new();
    let mut yaml = String::from("rate_limit: {rps: 200, burst: 400}\nmcp_servers:\n");
    for name in ["search-1", "search-2", "search-3", "docs-a", "docs-b"] {
        let server = FakeMcp::new(name).start().await;
        yaml.push_str(&format!(
            "  {name}:\n    mode: remote\n    endpoint: \"{}\"\n    health_check_interval_s: 0.2\n    max_consecutive_failures: 1\n",
            server.url()
        ));
        servers.push(server);
    }
    yaml.push_str(
        "  search:\n    mode: group\n    strategy: least_latency\n    rate_limit: {rps: 40, burst: 40}\n    members: [{id: search-1}, {id: search-2}, {id: search-3}]\n  docs:\n    mode: group\n    strategy: weighted_round_robin\n    members: [{id: docs-a, weight: 3}, {id: docs-b}]\n",
    );
    let cp = ControlPlane::start().await;
    let planes = [
        DataPlane::start(&cp.url(), "dp-eu-1").await,
        DataPlane::start(&cp.url(), "dp-us-1").await,
    ];
    cp.apply_and_wait(&yaml, 2).await;
    let mut clients = Vec::new();
    for dp in &planes {
        clients.push(dp.client().await);
    }
    servers[2].stop().await;
    browser.open(&cp.page_url("/")).await;
    let search_partial = "const s = document.querySelector('[data-group=\"search\"] .state'); \
                          return s && s.textContent === 'partial' ? true : null;";
    browser
        .wait_for("the search group partial", search_partial)
        .await;
    // After the fleet took search-3 out everywhere, which sends the
    // snapshot in force again.
    cp.inject_snapshot(Snapshot {
        version: 2,
        servers: vec![Server {
            id: "legacy-ftp".into(),
            transport: Some(Transport::Endpoint("ftp://files.internal".into())),
            probe_interval_ms: 1000,
            max_consecutive_failures: 1,
            ..Default::default()
        }],
        ..Default::default()
    });
    browser
        .wait_for(
            "both NACKs",
            "return document.querySelectorAll('[data-nack]').length >= 2 ? true : null;",
        )
        .await;
    // Traffic for the rates: a report interval's worth of calls, some
    // beyond the search group's limit.
    eventually("refusals to show on the page", || async {
        for client in &clients {
            client.batch("search", "add", serde_json::json!({"a": 1, "b": 2}), 60).await;
            client.batch("docs", "echo", serde_json::json!({"text": "hi"}), 20).await;
        }
        let shown = browser
            .eval("const r = document.querySelector('[data-limit=\"group/search\"] td.refused'); return r !== null;")
            .await;
        (shown == true).then_some(())
    })
    .await;
    browser.fit_page(1280).await;
    std::fs::write(&path, browser.screenshot().await).expect("write the screenshot");
    browser.close().await;
    drop(clients);
    for dp in planes {
        dp.stop().await;
    }
    cp.stop().await;
}
