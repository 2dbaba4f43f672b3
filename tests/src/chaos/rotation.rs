//! Who is in rotation, over time: `/metrics` of the data plane scraped
//! every 100 ms for `hangar_member_healthy{member}` (1 in rotation, 0 out)
//! and, where the build has it, `hangar_group_ejected_members{group}`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::task::JoinHandle;

use crate::chaos::clients::Log;
use crate::chaos::hangar::GROUP;
use crate::metrics::Scrape;

/// Scrape period.
const PERIOD: Duration = Duration::from_millis(100);

/// One scrape.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Seconds since the run's start.
    pub at: f64,
    /// `hangar_member_healthy` by member; empty if the scrape failed.
    pub healthy: BTreeMap<String, f64>,
    /// `hangar_group_ejected_members` of the group, if the build has it.
    pub ejected: Option<f64>,
}

/// The poller and what it saw.
#[derive(Debug)]
pub struct Rotation {
    samples: Arc<Mutex<Vec<Sample>>>,
    task: JoinHandle<()>,
}

impl Rotation {
    /// Starts scraping `dp_url/metrics`, timed on `log`'s clock.
    pub fn start(dp_url: &str, log: &Arc<Log>) -> Self {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(poll(
            format!("{dp_url}/metrics"),
            Arc::clone(log),
            Arc::clone(&samples),
        ));
        Self { samples, task }
    }

    /// The samples so far.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples.lock().clone()
    }

    /// The latest sample that has member figures.
    pub fn latest(&self) -> Option<Sample> {
        self.samples
            .lock()
            .iter()
            .rev()
            .find(|s| !s.healthy.is_empty())
            .cloned()
    }

    /// Stops polling.
    pub fn stop(&self) {
        self.task.abort();
    }
}

async fn poll(url: String, log: Arc<Log>, samples: Arc<Mutex<Vec<Sample>>>) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(1))
        .build()
        .expect("http client");
    let mut ticks = tokio::time::interval(PERIOD);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let at = log.now();
        let scrape = match http.get(&url).send().await {
            Ok(r) => r.text().await.ok().and_then(|t| Scrape::parse(&t).ok()),
            Err(_) => None,
        };
        let sample = match scrape {
            Some(scrape) => Sample {
                at,
                healthy: scrape
                    .samples("hangar_member_healthy")
                    .filter_map(|s| Some((s.labels.get("member")?.clone(), s.value)))
                    .collect(),
                ejected: scrape.value("hangar_group_ejected_members", &[("group", GROUP)]),
            },
            None => Sample {
                at,
                healthy: BTreeMap::new(),
                ejected: None,
            },
        };
        samples.lock().push(sample);
    }
}
