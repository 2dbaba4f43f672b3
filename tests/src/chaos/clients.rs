//! Closed-loop clients: each sends one `tools/call` after the other, as
//! fast as answers come, for the whole run, and logs every call with when
//! it was sent, when it settled and what it came to.
//!
//! After a failed call a client pauses briefly (`error_pause`, 50 ms by
//! default) before the next one: an instant refusal would otherwise spin
//! a client at thousands of calls per second, starving the others on a
//! small machine and making failure counts a measure of CPU speed rather
//! than of how long calls failed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::chaos::classify::{Outcome, classify};
use crate::chaos::wire::{Kind, WireClient};

/// One call, as its client saw it.
#[derive(Debug, Clone)]
pub struct Event {
    /// Which kind of client made it.
    pub kind: Kind,
    /// The client's number within all clients.
    pub client: usize,
    /// Seconds since the run's start when it was sent.
    pub sent: f64,
    /// Seconds since the run's start when it settled.
    pub done: f64,
    /// What it came to.
    pub outcome: Outcome,
}

/// The clock of a run and every call made in it.
#[derive(Debug)]
pub struct Log {
    start: Instant,
    events: Mutex<Vec<Event>>,
}

impl Log {
    /// A log whose clock starts now.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            events: Mutex::new(Vec::new()),
        })
    }

    /// Seconds since the run's start.
    pub fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// The calls logged so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().clone()
    }
}

/// The running clients.
#[derive(Debug)]
pub struct Clients {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Clients {
    /// Connects `per_kind` clients of each kind to the data plane at
    /// `dp_url` (waiting until each can initialize) and starts their loops.
    pub async fn start(
        dp_url: &str,
        per_kind: usize,
        tool: &str,
        arguments: &Value,
        error_pause: Duration,
        log: &Arc<Log>,
    ) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for kind in Kind::ALL {
            for _ in 0..per_kind {
                let client = connect(kind, dp_url, tool, arguments).await?;
                let number = tasks.len();
                tasks.push(tokio::spawn(run(
                    client,
                    number,
                    error_pause,
                    Arc::clone(log),
                    Arc::clone(&stop),
                )));
            }
        }
        Ok(Self { stop, tasks })
    }

    /// Stops every loop; a call still in flight is dropped unlogged.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.abort();
        }
    }
}

/// Connects one client, trying again (backing off to 200 ms) for up to
/// 30 s while the data plane is not serving yet.
async fn connect(
    kind: Kind,
    dp_url: &str,
    tool: &str,
    arguments: &Value,
) -> anyhow::Result<WireClient> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut pause = Duration::from_millis(10);
    loop {
        match WireClient::connect(kind, dp_url, tool, arguments.clone()).await {
            Ok(client) => return Ok(client),
            Err(e) if Instant::now() >= deadline => {
                return Err(e.context(format!("a {kind:?} client could not connect")));
            }
            Err(_) => {}
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

async fn run(
    mut client: WireClient,
    number: usize,
    error_pause: Duration,
    log: Arc<Log>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        let sent = log.now();
        let answer = client.call().await;
        let outcome = classify(client.kind, &answer);
        let failed = matches!(outcome, Outcome::Failed { .. });
        log.events.lock().push(Event {
            kind: client.kind,
            client: number,
            sent,
            done: log.now(),
            outcome,
        });
        if failed {
            tokio::time::sleep(error_pause).await;
        }
    }
}
