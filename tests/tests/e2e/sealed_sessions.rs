//! Session ids of `/groups/{g}/mcp` are sealed with the fleet's key: a
//! client cannot read them or choose its member with a made-up or altered
//! id (404, and it starts over), while every data plane of the fleet
//! routes a real one, across a rotation of the key.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hangar_tests::configs::{GroupConfig, RECIPE_GROUP};
use hangar_tests::control_plane::ControlPlane;
use hangar_tests::data_plane::DataPlane;
use hangar_tests::eventually::eventually;
use hangar_tests::fake_mcp::{FakeMcp, FakeMcpHandle};
use hangar_tests::raw::Raw;
use serde_json::json;

async fn members() -> (Vec<FakeMcpHandle>, Vec<String>) {
    let mut servers = Vec::new();
    for name in ["a", "b"] {
        servers.push(FakeMcp::new(name).start().await);
    }
    let urls = servers.iter().map(FakeMcpHandle::url).collect();
    (servers, urls)
}

fn whoami(id: u64) -> serde_json::Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}})
}

/// The key id a sealed session id was made with (`hgr3.<key id>.…`).
fn key_id(session: &str) -> &str {
    session.split('.').nth(1).expect("hgr3.<key id>.<sealed>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_and_altered_session_ids_never_reach_a_member() {
    let (servers, urls) = members().await;
    let cp = ControlPlane::start().await;
    let dp = DataPlane::start(&cp.url(), "dp-1").await;
    cp.apply_and_wait(&GroupConfig::recipe(&urls).yaml(), 1)
        .await;
    let raw = Raw {
        http: reqwest::Client::new(),
        url: format!("http://{}/groups/{RECIPE_GROUP}/mcp", dp.addr()),
    };
    let session = raw.initialize().await;
    assert!(session.starts_with("hgr3."), "{session}");
    for id in ["my-mcp", "my-mcp-backup"] {
        assert!(
            !session.contains(&URL_SAFE_NO_PAD.encode(id)),
            "readable member id in {session}"
        );
    }
    assert_eq!(raw.post(Some(&session), whoami(1)).await.status(), 200);

    let before: Vec<u64> = servers.iter().map(FakeMcpHandle::calls).collect();
    // The unsealed form that used to name a member, and a sealed id with
    // one character changed.
    let chosen = format!(
        "hgr2.{}.{}.",
        URL_SAFE_NO_PAD.encode("my-mcp-backup"),
        URL_SAFE_NO_PAD.encode("any")
    );
    let mut altered = session.clone().into_bytes();
    let at = altered.len() - 3;
    altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    for forged in [
        chosen.as_str(),
        altered.as_str(),
        "hgr3.1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let refused = raw.post(Some(forged), whoami(2)).await;
        assert_eq!(refused.status(), 404, "{forged}");
        let body: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(body["id"], 2, "{body}");
    }
    let after: Vec<u64> = servers.iter().map(FakeMcpHandle::calls).collect();
    assert_eq!(before, after, "no member saw a request with a forged id");
    dp.stop().await;
    cp.stop().await;
}

/// With a key that rotates every 3 s: new sessions are sealed with the
/// new key, a session sealed with the one before still routes on another
/// data plane, and once that key is gone too the session is not found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_keeps_sessions_for_one_more_rotation() {
    let (_servers, urls) = members().await;
    let state = tempfile::tempdir().unwrap();
    let cp = ControlPlane::start_with(hangar_control_plane::Settings {
        session_key_rotation: Duration::from_secs(3),
        ..hangar_control_plane::Settings::new(state.path())
    })
    .await;
    let one = DataPlane::start(&cp.url(), "dp-1").await;
    let two = DataPlane::start(&cp.url(), "dp-2").await;
    cp.apply_and_wait(&GroupConfig::recipe(&urls).yaml(), 2)
        .await;
    let on = |dp: &DataPlane| Raw {
        http: reqwest::Client::new(),
        url: format!("http://{}/groups/{RECIPE_GROUP}/mcp", dp.addr()),
    };
    let (raw1, raw2) = (on(&one), on(&two));
    let old = raw1.initialize().await;
    let newer = eventually("a session sealed with the next key", || async {
        let session = raw1.initialize().await;
        (key_id(&session) != key_id(&old)).then_some(session)
    })
    .await;
    assert_eq!(
        key_id(&newer).parse::<u32>().unwrap(),
        key_id(&old).parse::<u32>().unwrap() + 1
    );
    let status = raw2.post(Some(&old), whoami(1)).await.status();
    assert_eq!(
        status, 200,
        "the key before still opens it on another data plane"
    );
    eventually(
        "the session of a key two rotations old is not found",
        || async { (raw2.post(Some(&old), whoami(2)).await.status() == 404).then_some(()) },
    )
    .await;
    one.stop().await;
    two.stop().await;
    cp.stop().await;
}
