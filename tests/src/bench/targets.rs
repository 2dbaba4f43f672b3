//! The figures `hangar-bench` is held to, computed from the rows of one
//! run and printed beside their targets.

use serde_json::Value;

/// One figure of a run against its target.
#[derive(Debug, Clone)]
pub struct Figure {
    /// What is measured.
    pub name: String,
    /// The measured value, as printed.
    pub measured: String,
    /// The target, as printed.
    pub target: &'static str,
    /// Whether the measured value meets the target.
    pub met: bool,
}

/// Looks rows up by path and concurrency.
#[derive(Debug)]
pub struct Rows<'a>(pub &'a [Value]);

impl Rows<'_> {
    /// The value of `key` in the row of `path` at `concurrency`.
    pub fn get(&self, path: &str, concurrency: usize, key: &str) -> Option<f64> {
        self.0
            .iter()
            .find(|r| r["path"] == path && r["concurrency"] == concurrency)
            .and_then(|r| r[key].as_f64())
    }
}

/// A figure that compares `value` to `limit` (`at_most`: lower is better).
pub fn figure(
    name: impl Into<String>,
    value: Option<f64>,
    (limit, at_most): (f64, bool),
    unit: &str,
    target: &'static str,
) -> Option<Figure> {
    let value = value?;
    Some(Figure {
        name: name.into(),
        measured: format!("{value:.2}{unit}"),
        target,
        met: if at_most {
            value <= limit
        } else {
            value >= limit
        },
    })
}

/// The ratio of two measured values, when both are there.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? / b?)
}

/// The figures a run of in-process fake backends is held to.
pub fn fake_backend_figures(rows: &[Value], kib_per_call: Option<f64>) -> Vec<Figure> {
    let rows = Rows(rows);
    let cpu = |path: &str, c: usize| rows.get(path, c, "proxy_cpu_us_per_call");
    let rate = |path: &str, c: usize| rows.get(path, c, "calls_per_s");
    let (groups, call, nginx) = ("hangar /groups", "hangar hangar_call", "nginx");
    let mut figures = vec![
        figure(
            "/groups CPU per call vs nginx's, c=64",
            ratio(cpu(groups, 64), cpu(nginx, 64)),
            (1.0, true),
            "x",
            "<= 1.00x",
        ),
        figure(
            "/groups CPU per call vs nginx's, c=1",
            ratio(cpu(groups, 1), cpu(nginx, 1)),
            (1.5, true),
            "x",
            "<= 1.50x",
        ),
        figure(
            "/groups calls/s vs nginx's, c=64",
            ratio(rate(groups, 64), rate(nginx, 64)),
            (1.0, false),
            "x",
            ">= 1.00x (every run of three)",
        ),
    ];
    for c in [1, 64] {
        figures.push(figure(
            format!("hangar_call CPU per call vs /groups', c={c}"),
            ratio(cpu(call, c), cpu(groups, c)),
            (1.5, true),
            "x",
            "<= 1.50x",
        ));
    }
    figures.push(figure(
        "memory per call in flight (1,000 in flight)",
        kib_per_call,
        (20.0, true),
        " KB",
        "<= 20 KB",
    ));
    figures.into_iter().flatten().collect()
}

/// The figures a run over the Python SDK example servers is held to;
/// `sdk_added_ms` is the hangar_call p50 added over direct as the SDK
/// client sees it, to the group and to one server.
pub fn python_backend_figures(rows: &[Value], sdk_added_ms: (f64, f64)) -> Vec<Figure> {
    let rows = Rows(rows);
    // What `path` adds to the p50 of `base` at concurrency 1.
    let added = |path: &str, base: &str| {
        rows.get(path, 1, "p50_ms")
            .zip(rows.get(base, 1, "p50_ms"))
            .map(|(a, b)| a - b)
    };
    let (group, server) = ("hangar hangar_call", "hangar hangar_call_server");
    // hangar_call's calls/s over those of `base` at concurrency 16.
    let calls_vs = |base: &str| {
        ratio(
            rows.get(group, 16, "calls_per_s"),
            rows.get(base, 16, "calls_per_s"),
        )
    };
    let target = "<= +0.30 ms";
    [
        figure(
            "hangar_call added p50, keep-alive client, sequential, group",
            added(group, "direct"),
            (0.3, true),
            " ms",
            target,
        ),
        // Rotating over the members costs by itself (each call finds a
        // member that sat idle): the same rotation made by the client.
        figure(
            "  over a client rotating over the members itself",
            added(group, "direct_rotating"),
            (0.3, true),
            " ms",
            "<= +0.30 ms (reference)",
        ),
        figure(
            "hangar_call added p50, keep-alive client, sequential, one server",
            added(server, "direct"),
            (0.3, true),
            " ms",
            target,
        ),
        figure(
            "hangar_call added p50, Python SDK client, sequential, group",
            Some(sdk_added_ms.0),
            (0.3, true),
            " ms",
            target,
        ),
        figure(
            "hangar_call added p50, Python SDK client, sequential, one server",
            Some(sdk_added_ms.1),
            (0.3, true),
            " ms",
            target,
        ),
        figure(
            "hangar_call calls/s vs straight at the members, c=16",
            calls_vs("direct"),
            (0.9, false),
            "x",
            ">= 0.90x",
        ),
        // The same balancing done by the client itself, each call to the
        // next member: what the members give a round-robin load at all.
        figure(
            "  vs a client rotating over the members itself",
            calls_vs("direct_rotating"),
            (1.0, false),
            "x",
            ">= 1.00x (reference)",
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Prints `figures` as a table.
pub fn print(figures: &[Figure]) {
    println!("targets");
    for f in figures {
        println!(
            "  {:<66} {:>10}  target {:<30} {}",
            f.name,
            f.measured,
            f.target,
            if f.met { "met" } else { "NOT MET" }
        );
    }
}
