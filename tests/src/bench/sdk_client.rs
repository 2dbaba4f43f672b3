//! Latency as an SDK client sees it: sequential calls made by the official
//! Python SDK client (`examples/python/client.py`), one session, timed by
//! the client itself.
//!
//! This client's own timings drift by a millisecond between one run and
//! the next (it is Python, on the cores the servers share), more than a
//! proxy adds. So every endpoint is timed in rounds, the endpoints taking
//! turns within each round in a rotating order, and an endpoint's added
//! latency is the median over rounds of its p50 less the direct p50 of the
//! same round.

use serde_json::Value;

/// An endpoint to time and the call to make there.
#[derive(Debug)]
pub struct Endpoint {
    /// MCP endpoint URL.
    pub url: String,
    /// The tool to call.
    pub tool: String,
    /// Its arguments.
    pub arguments: Value,
}

/// The p50 in ms of `calls` sequential calls to each endpoint, per round:
/// `result[endpoint][round]`. Round `r` starts with endpoint `r`.
pub async fn p50s_in_rounds(
    endpoints: &[Endpoint],
    rounds: usize,
    calls: usize,
) -> anyhow::Result<Vec<Vec<f64>>> {
    let mut p50s = vec![Vec::with_capacity(rounds); endpoints.len()];
    for index in super::rotating_turns(rounds, endpoints.len()) {
        let endpoint = &endpoints[index];
        let p50 =
            sequential_p50_ms(&endpoint.url, &endpoint.tool, &endpoint.arguments, calls).await?;
        p50s[index].push(p50);
    }
    Ok(p50s)
}

/// The median over rounds of `p50s[round] - base[round]`.
pub fn median_added(p50s: &[f64], base: &[f64]) -> f64 {
    median(p50s.iter().zip(base).map(|(a, b)| a - b).collect())
}

/// The median of `values` (the upper one of an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The p50 in ms of `n` sequential `tool` calls with `arguments` to `url`,
/// made by the Python SDK client in one session (the initialize
/// handshake, as the session-era clients that make up the field do).
async fn sequential_p50_ms(
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
    let ms: Vec<f64> = lines.iter().filter_map(|l| l["ms"].as_f64()).collect();
    anyhow::ensure!(!ms.is_empty(), "client.py timed no call: {stderr}");
    Ok(median(ms))
}
