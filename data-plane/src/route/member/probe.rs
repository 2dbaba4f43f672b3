//! The member's probe loop: regular probes every probe period, and the
//! stall watch that checks a silent member with calls outstanding at once
//! (see the parent module's docs for busy versus hung).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hangar_balance::{Outcome, Transition};

use super::Member;
use crate::upstream::{ToolList, UpstreamError};

/// Bounds of a probe's deadline: at most the probe period, never below the floor.
const PROBE_TIMEOUT_FLOOR: Duration = Duration::from_secs(1);
const PROBE_TIMEOUT_CAP: Duration = Duration::from_secs(10);
/// Shortest period of the stall watch.
const STALL_TICK_FLOOR: Duration = Duration::from_millis(50);

/// The deadline of a probe that checks a silent member: long enough for a
/// busy member to answer a ping, short enough that a hung one is out within
/// one and a half stall timeouts (the watch ticks every eighth of it), 3 s
/// with the default 2 s.
fn check_deadline(stall: Duration) -> Duration {
    stall * 3 / 8
}

/// Why the probe loop probes now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// The probe period came round.
    Regular,
    /// Calls are outstanding and the member has been silent for its stall
    /// timeout, or one of its calls just went silent.
    Stall,
}

impl Member {
    /// Starts the probe loop; it stops with [`Member::stop`].
    pub fn spawn_probe(self: &Arc<Self>) {
        let member = self.clone();
        let span = tracing::info_span!(parent: None, "probe", member.id = %self.id);
        let task = async move {
            let probed = member.clone();
            member
                .run_probes(move |timeout| {
                    let probed = probed.clone();
                    async move {
                        probed.upstream.probe(timeout).await?;
                        // Groups route calls only to members that list the
                        // tool; a member that answers but cannot list its
                        // tools is still up.
                        if let Err(err) = probed.upstream.keep_tools_listed(timeout).await {
                            tracing::debug!(error = %err, "could not list the member's tools");
                        }
                        probed.note_listed_tools();
                        Ok(())
                    }
                })
                .await;
        };
        tokio::spawn(tracing::Instrument::instrument(task, span));
    }

    /// Runs `probe` (given its deadline) every probe period, the first at
    /// once, and whenever the member may be hung (see the module docs);
    /// feeds the outcome to health, until the member is stopped.
    pub(crate) async fn run_probes<F, Fut>(&self, mut probe: F)
    where
        F: FnMut(Duration) -> Fut,
        Fut: Future<Output = Result<(), UpstreamError>>,
    {
        let regular_timeout = self
            .probe_interval
            .clamp(PROBE_TIMEOUT_FLOOR, PROBE_TIMEOUT_CAP);
        let mut ticks = tokio::time::interval(self.probe_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stall_period = self
            .stall_timeout
            .map_or(Duration::MAX, |s| (s / 8).max(STALL_TICK_FLOOR));
        let mut stall_ticks = tokio::time::interval(stall_period);
        stall_ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let check = tokio::select! {
                _ = ticks.tick() => Check::Regular,
                // A member out of rotation is left to the regular probes.
                _ = stall_ticks.tick(), if self.stall_timeout.is_some() => {
                    if !self.is_healthy() || !self.is_stalled() {
                        continue;
                    }
                    Check::Stall
                }
                () = self.suspect.notified() => {
                    if !self.is_healthy() {
                        continue;
                    }
                    Check::Stall
                }
                () = self.stop.cancelled() => return,
            };
            // A busy member still answers a ping at once; waiting long for
            // it would only keep a hung one in rotation. That holds for a
            // regular probe of a member with calls outstanding too: the
            // loop checks for hangs only between probes, so a long regular
            // probe would hold the stall watch off.
            let busy = self.in_flight.load(Ordering::Relaxed) > 0;
            let timeout = match (check, self.stall_timeout) {
                (Check::Stall, Some(stall)) => check_deadline(stall).min(regular_timeout),
                (Check::Regular, Some(stall)) if busy => check_deadline(stall).min(regular_timeout),
                _ => regular_timeout,
            };
            let result = tokio::select! {
                r = probe(timeout) => r,
                () = self.stop.cancelled() => return,
            };
            self.probed(check, result);
        }
    }

    /// Whether calls are outstanding and the member has sent nothing for
    /// its stall timeout (since the calls began, or a check found it busy).
    fn is_stalled(&self) -> bool {
        let (Some(stall), Some(activity)) = (self.stall_timeout, self.upstream.activity()) else {
            return false;
        };
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            return false;
        }
        // Set when calls began; a race between the last call ending and a
        // new one starting may have cleared it: calls are outstanding now.
        let busy_since = *self
            .busy_since
            .lock()
            .get_or_insert_with(tokio::time::Instant::now);
        // A probe that answered since counts as a sign of life: busy, not hung.
        let mut quiet_since = busy_since.max(activity.last());
        if let Some(answered) = *self.last_probe_success.lock() {
            quiet_since = quiet_since.max(answered);
        }
        quiet_since.elapsed() >= stall
    }

    /// Feeds one probe's outcome to health.
    fn probed(&self, check: Check, result: Result<(), UpstreamError>) {
        let now = tokio::time::Instant::now();
        match (result, check) {
            (Ok(()), check) => {
                // Also restarts the stall watch's clock: the next check
                // waits a full stall timeout.
                let answered_before = self.last_probe_success.lock().replace(now).is_some();
                if check == Check::Stall {
                    tracing::debug!("silent member answered its probe: busy, not hung");
                }
                let transition = self.observe(Outcome::ProbeSuccess, None);
                // Slow start is for a member that served and comes back, not
                // for one entering rotation for the first time.
                if transition == Some(Transition::Restored) && answered_before {
                    let at = self.stamp(now);
                    self.vitals.note_restored(at);
                }
            }
            // A failed regular probe of a member silent with calls
            // outstanding is as hung as a stall check would have found it.
            (Err(err), check) if check == Check::Stall || self.is_stalled() => {
                self.vitals.note_probe_failure();
                let hung = UpstreamError::Hung {
                    stall: self.stall_timeout.unwrap_or_default(),
                    probe: Box::new(err),
                };
                self.observe(Outcome::Hung, Some(&hung));
                self.restart_if_failing();
            }
            (Err(err), _) => {
                self.vitals.note_probe_failure();
                tracing::debug!(error = %err, "probe failed");
                self.observe(Outcome::Failure, Some(&err));
                self.restart_if_failing();
            }
        }
    }

    /// Takes in the tools the member lists now (also those a call listed
    /// since the last probe) and tells the routing table when their names
    /// changed, so the `tool` labels of its calls follow. A member whose
    /// list is gone (a new session, being listed again) keeps the last one:
    /// its series are not dropped and made again.
    pub(crate) fn note_listed_tools(&self) {
        let Some(now) = self.upstream.tools() else {
            return;
        };
        let before = self.listed.swap(Some(now.clone()));
        if before.is_none_or(|before| !before.same_names(&now)) {
            self.tools_changed.notify_one();
        }
    }

    /// The tools the member listed last (see [`Member::note_listed_tools`]);
    /// `None` before it has listed any.
    pub(crate) fn listed_tools(&self) -> Option<Arc<ToolList>> {
        self.listed.load_full()
    }

    /// Kills and restarts a subprocess copy that failed its probes
    /// `max_consecutive_failures` times in a row: a process that answers
    /// nothing will not come back by itself.
    fn restart_if_failing(&self) {
        let Some(stdio) = self.upstream.stdio() else {
            return;
        };
        let health = self.health.lock();
        let (failures, max) = (
            health.consecutive_failures(),
            health.max_consecutive_failures(),
        );
        drop(health);
        if failures >= max {
            stdio.restart(format!("it failed {failures} probes in a row"));
        }
    }
}
