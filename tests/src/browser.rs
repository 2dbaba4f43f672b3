//! A real headless Chromium, driven over WebDriver, for the status page.
//!
//! Chromium is started here with a fresh profile and remote debugging on a
//! port of its choosing (read back from the profile's `DevToolsActivePort`);
//! chromedriver, on a port of its choosing too, attaches to it
//! (`debuggerAddress`) rather than starting a browser of its own. So both
//! processes are children of the test, killed by their PIDs when the
//! [`Browser`] is dropped, whatever the test did.
//!
//! Both come from the system (`apt-get install chromium chromium-driver`).
//! Without them [`Browser::start`] returns `None` and the test skips with a
//! note, except under `CI=true`, where a missing browser must fail the run
//! rather than pass it vacuously.

use std::path::Path;
use std::process::Stdio;

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use crate::eventually::{PATIENCE, eventually};
use crate::find_on_path;

/// The flags every Chromium of the tests runs with: headless, and nothing
/// that reaches beyond loopback (no QUIC, sync, updates or background
/// fetches).
const CHROMIUM_FLAGS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// A running headless Chromium with a WebDriver session on it.
#[derive(Debug)]
pub struct Browser {
    client: Client,
    chromium: Child,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A browser with a 1280×900 window; `None` (after printing why) when
    /// Chromium or chromedriver is not installed and this is not CI.
    ///
    /// # Panics
    /// Under `CI=true` when either is missing, or when they do not start.
    pub async fn start() -> Option<Self> {
        Self::start_sized(1280, 900).await
    }

    /// As [`Browser::start`], with a window of `width`×`height` pixels.
    pub async fn start_sized(width: u32, height: u32) -> Option<Self> {
        let (Some(chromium), Some(driver)) =
            (find_on_path("chromium"), find_on_path("chromedriver"))
        else {
            let why = "chromium or chromedriver is not installed (apt-get install chromium chromium-driver)";
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{why}; CI must run the browser tests"
            );
            eprintln!("skipping: {why}");
            return None;
        };
        let profile = tempfile::tempdir().expect("temp dir");
        let chromium = Command::new(chromium)
            .args(CHROMIUM_FLAGS)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("--remote-debugging-port=0")
            .arg(format!("--window-size={width},{height}"))
            .arg("--hide-scrollbars")
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // Chromium logs D-Bus and GPU chatter on every start.
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn chromium");
        let debugging = debugging_port(profile.path()).await;
        let mut driver = Command::new(driver)
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn chromedriver");
        let stdout = driver.stdout.take().expect("chromedriver's stdout");
        let port = driver_port(stdout).await;
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({ "debuggerAddress": format!("127.0.0.1:{debugging}") }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a WebDriver session on chromium");
        Some(Self {
            client,
            chromium,
            driver,
            _profile: profile,
        })
    }

    /// Loads `url` and waits for it to load.
    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.expect("open the page");
    }

    /// The page's URL now.
    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("current URL")
            .to_string()
    }

    /// Runs `script` (a function body: `return …`) in the page.
    pub async fn eval(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|err| panic!("script {script:?} failed: {err}"))
    }

    /// Runs `script` in the page until it returns something other than
    /// `null` (within [`PATIENCE`]), and returns that; `what` names the wait
    /// when it fails.
    pub async fn wait_for(&self, what: &str, script: &str) -> Value {
        eventually(what, || async {
            // A script may fail while the page is being replaced.
            let value = self.client.execute(script, Vec::new()).await.ok()?;
            (!value.is_null()).then_some(value)
        })
        .await
    }

    /// Makes the window `width` wide and as tall as the page, so a
    /// screenshot holds all of it (the window's frame, if any, aside).
    pub async fn fit_page(&self, width: u32) {
        let pixels = |value: Value| value.as_u64().and_then(|h| u32::try_from(h).ok());
        let page = "return document.documentElement.scrollHeight;";
        let mut height = pixels(self.eval(page).await).unwrap_or(900);
        for _ in 0..3 {
            self.client
                .set_window_size(width, height.clamp(400, 8000))
                .await
                .expect("resize the window");
            let shown = pixels(self.eval("return window.innerHeight;").await).unwrap_or(height);
            let needed = pixels(self.eval(page).await).unwrap_or(height);
            if shown >= needed {
                return;
            }
            height += needed - shown;
        }
    }

    /// A PNG of the window's contents.
    pub async fn screenshot(&self) -> Vec<u8> {
        self.client.screenshot().await.expect("screenshot")
    }

    /// Ends the session, then Chromium and chromedriver, and waits for both.
    pub async fn close(mut self) {
        // chromedriver detaches from a browser it did not start: ours to stop.
        let _ = self.client.clone().close().await;
        for child in [&mut self.chromium, &mut self.driver] {
            let _ = child.kill().await;
        }
    }
}

/// The debugging port Chromium writes into its profile once it listens.
async fn debugging_port(profile: &Path) -> u16 {
    let file = profile.join("DevToolsActivePort");
    eventually("chromium to open its debugging port", || async {
        let text = tokio::fs::read_to_string(&file).await.ok()?;
        text.lines().next()?.trim().parse().ok()
    })
    .await
}

/// The port chromedriver says it started on; the rest of its output is
/// read aside, so that it never blocks on a full pipe.
async fn driver_port(stdout: impl AsyncRead + Unpin + Send + 'static) -> u16 {
    let mut lines = BufReader::new(stdout).lines();
    let port = tokio::time::timeout(PATIENCE, async {
        while let Some(line) = lines.next_line().await.ok().flatten() {
            // "ChromeDriver was started successfully on port 41413."
            if let Some(rest) = line.split("started successfully on port ").nth(1) {
                return rest.trim_end_matches('.').trim().parse::<u16>().ok();
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .expect("chromedriver says which port it listens on");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    port
}
