//! Latency as an SDK client sees it: sequential calls made by the official
//! Python SDK client (`examples/python/client.py`), one session, timed by
//! the client itself.

use serde_json::Value;

/// The p50 in ms of `n` sequential `tool` calls with `arguments` to `url`,
/// made by the Python SDK client in one session (the initialize
/// handshake, as the session-era clients that make up the field do).
pub async fn sequential_p50_ms(
    url: &str,
    tool: &str,
    arguments: &Value,
    n: usize,
) -> anyhow::Result<f64> {
    let arguments = arguments.to_string();
    let n = n.to_string();
    let (status, lines, stderr) = crate::python_sdk::run_client(&[
        url, "call", tool, &arguments, "--n", &n, "--mode", "legacy",
    ])
    .await;
    anyhow::ensure!(status.success(), "client.py failed: {stderr}");
    let mut ms: Vec<f64> = lines.iter().filter_map(|l| l["ms"].as_f64()).collect();
    anyhow::ensure!(!ms.is_empty(), "client.py timed no call: {stderr}");
    ms.sort_by(f64::total_cmp);
    Ok(ms[ms.len() / 2])
}
