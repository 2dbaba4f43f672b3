//! `hangar-config-bench`: how long the config loader takes on hostile
//! configs, beside the recipe it loads every day, in one run. A config
//! nested 100,000 levels deep (200 KB) used to take most of a minute to
//! refuse and held the control plane's admin API meanwhile; it is refused
//! by depth before parsing in earnest.
//!
//! usage: `hangar-config-bench [ROUNDS]` (default 20; the median is shown)

use std::time::Duration;

use tokio::time::Instant;

/// Nesting of the deep configs, and so their size in brackets.
const DEPTH: usize = 100_000;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time(text: &str, rounds: usize) -> (Duration, String) {
    let mut verdict = String::new();
    let samples = (0..rounds)
        .map(|_| {
            let started = Instant::now();
            let loaded = hangar_config::load("config.yaml", text);
            let took = started.elapsed();
            verdict = match loaded {
                Ok(config) => format!("valid ({} servers)", config.servers.len()),
                Err(errors) => errors
                    .to_string()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .take(90)
                    .collect(),
            };
            took
        })
        .collect();
    (median(samples), verdict)
}

fn main() {
    let rounds = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(20usize)
        .max(1);
    let recipe = hangar_tests::configs::recipe(
        &[
            "http://127.0.0.1:8081".to_owned(),
            "http://127.0.0.1:8082".to_owned(),
            "http://127.0.0.1:8083".to_owned(),
        ],
        10.0,
        3,
    );
    let cases = [
        ("recipe 05 (3 servers, 1 group)", recipe.clone()),
        (
            "flow lists, 100k deep",
            format!("mcp_servers: {}{}", "[".repeat(DEPTH), "]".repeat(DEPTH)),
        ),
        (
            "flow maps, 100k deep",
            format!(
                "mcp_servers: {}1{}",
                "{a: ".repeat(DEPTH),
                "}".repeat(DEPTH)
            ),
        ),
        (
            "block lists, 10k deep",
            format!("mcp_servers:\n{}1\n", "- ".repeat(10_000)),
        ),
        (
            "2 MiB of comments",
            format!("{recipe}{}", "# padding\n".repeat(200_000)),
        ),
    ];
    let (baseline, _) = time(&cases[0].1, rounds);
    println!(
        "{:<34} {:>9} {:>9} {:>8}  verdict",
        "config", "bytes", "median", "× recipe"
    );
    for (name, text) in &cases {
        let (took, verdict) = time(text, rounds);
        println!(
            "{name:<34} {:>9} {:>7.3}ms {:>8.1}  {verdict}",
            text.len(),
            took.as_secs_f64() * 1000.0,
            took.as_secs_f64() / baseline.as_secs_f64().max(1e-9),
        );
    }
}
