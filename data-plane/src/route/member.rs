//! One member (an MCP server of the config) as this data plane sees it: its
//! MCP client, health, counters, and the probe loop that keeps health fresh.
//!
//! The probe loop also watches for a hung member: one with calls
//! outstanding that has sent nothing (not a byte) for its `stall_timeout`,
//! or whose call just went silent (read timeout, deadline). It probes such
//! a member at once, with 3/8 of the stall timeout as the probe's deadline: an
//! answer means busy (a long call), and nothing changes; no answer means
//! hung, and the member leaves rotation at once instead of after
//! `max_consecutive_failures` read timeouts. A silent call on its own never
//! counts against the member, so a slow tool cannot eject a healthy one.
//! A subprocess copy that fails `max_consecutive_failures` probes in a row
//! is killed and started again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use hangar_balance::{Health, Outcome, PeakEwma, Transition};
use hangar_proto::v1::MemberHealth;
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::metrics::{self, CallMetrics, MemberCalls};
use crate::observe;
mod ledger;
mod probe;

pub(crate) use self::ledger::Ledger;

use crate::route::breaker::CircuitBreaker;
use crate::route::limit::{ConcurrencyLimit, Slot};
use crate::route::outlier::Outliers;
use crate::route::rate;
pub(crate) use crate::route::vitals::Stamp;
use crate::route::vitals::Vitals;
use crate::upstream::{ToolList, Upstream, UpstreamError};

/// A member and its state on this data plane.
#[derive(Debug)]
pub struct Member {
    id: String,
    upstream: Upstream,
    probe_interval: Duration,
    health: Mutex<Health>,
    /// What others read of it lock-free (in rotation, returns, probes).
    vitals: Arc<Vitals>,
    /// When the member answered a 2026-07-28 `server/discover` as a
    /// legacy-only server does; such requests skip it for a while.
    legacy_only_at: AtomicU64,
    in_flight: AtomicU32,
    /// `max_concurrency`, if the config caps this member.
    limit: Option<ConcurrencyLimit>,
    /// Calls waiting for a slot of `limit`.
    queued: AtomicU32,
    /// Latency of answered calls since the last report, in microseconds.
    latency: Mutex<Histogram<u64>>,
    /// Latency for `least_latency`: of every answer, and per tool.
    ewma: Mutex<Ewmas>,
    calls: AtomicU64,
    errors: AtomicU64,
    last_error: Mutex<String>,
    /// `last_error` without addresses, for MCP clients (`hangar_status`).
    last_error_for_clients: Mutex<String>,
    rotation_changes: AtomicU64,
    /// When a probe last succeeded: a group's open circuit closes on
    /// members that answered one since it opened, and the stall watch
    /// counts it as a sign of life.
    last_probe_success: Mutex<Option<tokio::time::Instant>>,
    /// Silence with calls outstanding after which the member is checked
    /// for a hang; `None` turns the watch off.
    stall_timeout: Option<Duration>,
    /// Since when calls have been outstanding without a break (`None` while
    /// none are).
    busy_since: Mutex<Option<tokio::time::Instant>>,
    /// A call went silent: check the member now.
    suspect: Notify,
    /// Where calls that name this server directly (not a group) are
    /// counted; handed on to the member that replaces this one.
    direct_calls: Arc<MemberCalls>,
    /// Wakes the control-plane reporter when health flips.
    health_changed: Arc<Notify>,
    /// The tools the member listed last, kept while its list is being
    /// read again (a new session drops the upstream's): the tool labels
    /// of its calls.
    listed: ArcSwapOption<ToolList>,
    /// Wakes the routing table's relabelling when `listed` changes names.
    tools_changed: Arc<Notify>,
    /// Stops the probe loop when the member leaves the config.
    stop: CancellationToken,
    /// The rate limits of the member's server (`rate_limit:`), set with
    /// each snapshot.
    rate_limits: ArcSwapOption<rate::Target>,
}

// === impl Member ===

impl Member {
    /// A member in rotation, or out of it until its first successful probe
    /// when `in_rotation` is false; call [`Member::spawn_probe`] to start
    /// probing. Calls that name the server directly count in `direct_calls`.
    #[expect(
        clippy::too_many_arguments,
        reason = "one per part of a member; a builder would only move them"
    )]
    pub fn new(
        id: String,
        upstream: Upstream,
        probe_interval: Duration,
        max_consecutive_failures: u32,
        in_rotation: bool,
        direct_calls: Arc<MemberCalls>,
        health_changed: Arc<Notify>,
        stop: CancellationToken,
    ) -> Self {
        let health = if in_rotation {
            Health::new(max_consecutive_failures)
        } else {
            Health::out_of_rotation(max_consecutive_failures)
        };
        Self {
            vitals: Arc::new(Vitals::new(id.clone(), in_rotation)),
            id,
            upstream,
            probe_interval,
            health: Mutex::new(health),
            latency: Mutex::new(new_histogram()),
            ewma: Mutex::new(Ewmas::default()),
            in_flight: AtomicU32::new(0),
            limit: None,
            queued: AtomicU32::new(0),
            calls: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            last_error: Mutex::new(String::new()),
            last_error_for_clients: Mutex::new(String::new()),
            rotation_changes: AtomicU64::new(0),
            legacy_only_at: AtomicU64::new(Stamp::NEVER.0),
            last_probe_success: Mutex::new(None),
            stall_timeout: None,
            busy_since: Mutex::new(None),
            suspect: Notify::new(),
            direct_calls,
            health_changed,
            listed: ArcSwapOption::empty(),
            tools_changed: Arc::new(Notify::new()),
            stop,
            rate_limits: ArcSwapOption::empty(),
        }
    }

    /// Watches the member for hangs (`stall_timeout`); 0 turns it off.
    pub fn with_stall_timeout(mut self, stall: Duration) -> Self {
        self.stall_timeout = Some(stall).filter(|s| !s.is_zero());
        self
    }

    /// Tells `changed` whenever the names of the tools the member lists
    /// change (see [`Member::listed_tools`]).
    pub fn with_tools_changed(mut self, changed: Arc<Notify>) -> Self {
        self.tools_changed = changed;
        self
    }

    /// Caps the calls in flight to this member at `max` (`max_concurrency`).
    pub fn with_max_concurrency(mut self, max: u32) -> Self {
        self.limit = Some(ConcurrencyLimit::new(max));
        self
    }

    /// The member's server id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The member's MCP client.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// Active probe period.
    pub fn probe_interval(&self) -> Duration {
        self.probe_interval
    }

    /// Whether the member is in rotation.
    pub fn is_healthy(&self) -> bool {
        self.vitals.is_healthy()
    }

    /// Calls in flight to this member, counting those waiting for a slot
    /// of its `max_concurrency`: a member with a queue is not idle.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed) + self.queued.load(Ordering::Relaxed)
    }

    /// Failed probes or calls in a row.
    pub fn consecutive_failures(&self) -> u32 {
        self.health.lock().consecutive_failures()
    }

    /// Where calls that name this server directly are counted.
    pub fn direct_metrics(&self) -> &Arc<MemberCalls> {
        &self.direct_calls
    }

    /// Changes the ejection threshold of a member kept across snapshots.
    pub fn set_max_consecutive_failures(&self, max: u32) {
        self.health.lock().set_max_consecutive_failures(max);
    }

    /// Stops the probe loop.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// What others read of the member lock-free.
    pub(crate) fn vitals(&self) -> &Arc<Vitals> {
        &self.vitals
    }

    /// `at` as a [`Stamp`] of this member.
    pub(crate) fn stamp(&self, at: tokio::time::Instant) -> Stamp {
        self.vitals.stamp(at)
    }

    /// Its latency for a call of `tool` (or any request without one), in
    /// microseconds; 0 while unknown.
    pub(crate) fn latency_micros(&self, tool: Option<&str>) -> u64 {
        let now = Duration::from_nanos(self.stamp(tokio::time::Instant::now()).0);
        let ewma = self.ewma.lock();
        let average = match tool {
            // A tool it has not run yet is unknown here, whatever its
            // other tools take; past the map's bound, the overall average.
            Some(tool) if ewma.by_tool.len() < MAX_TOOL_LATENCIES => ewma.by_tool.get(tool),
            Some(tool) => ewma.by_tool.get(tool).or(ewma.any.as_ref()),
            None => ewma.any.as_ref(),
        };
        average.map_or(0, |e| e.micros_at(now))
    }

    /// Folds an answer's latency into the averages `least_latency` reads.
    fn observe_latency(&self, tool: Option<&str>, latency: Duration) {
        let now = Duration::from_nanos(self.stamp(tokio::time::Instant::now()).0);
        let mut ewma = self.ewma.lock();
        match &mut ewma.any {
            Some(any) => any.observe(latency, now),
            None => ewma.any = Some(PeakEwma::new(latency, now)),
        }
        let Some(tool) = tool else {
            return;
        };
        if let Some(per_tool) = ewma.by_tool.get_mut(tool) {
            per_tool.observe(latency, now);
        } else if ewma.by_tool.len() < MAX_TOOL_LATENCIES {
            ewma.by_tool
                .insert(tool.into(), PeakEwma::new(latency, now));
        }
    }

    /// Notes that the member answered a 2026-07-28 `server/discover` as a
    /// legacy-only server does (400 without a modern error code).
    pub(crate) fn mark_legacy_only(&self) {
        let now = self.stamp(tokio::time::Instant::now());
        if !self.is_legacy_only() {
            tracing::info!(member.id = %self.id, "member speaks only the legacy protocol: 2026-07-28 requests go elsewhere");
        }
        self.legacy_only_at.store(now.0, Ordering::Relaxed);
    }

    /// Whether the member answered a 2026-07-28 request as a legacy-only
    /// server within [`LEGACY_RECHECK`] and has not restarted since (a new
    /// version may speak it).
    pub(crate) fn is_legacy_only(&self) -> bool {
        let at = Stamp(self.legacy_only_at.load(Ordering::Relaxed));
        at.is_set() && self.stamp(tokio::time::Instant::now()).since(at) < LEGACY_RECHECK
    }

    /// Whether the member is in rotation and answered a probe at `since`
    /// or later.
    pub fn back_since(&self, since: tokio::time::Instant) -> bool {
        self.is_healthy() && self.last_probe_success.lock().is_some_and(|at| at >= since)
    }

    /// Calls a tool on this member, counting it in `ledger` and feeding health.
    pub async fn call_tool(
        self: &Arc<Self>,
        ledger: Ledger<'_>,
        tool: &str,
        arguments: &serde_json::Value,
        timeout: Duration,
    ) -> Result<serde_json::Value, UpstreamError> {
        let started = tokio::time::Instant::now();
        let call = self.admit(ledger, timeout).await?;
        // Time spent waiting for a slot comes out of the call's deadline.
        let timeout = timeout.saturating_sub(started.elapsed());
        let sent = self.upstream.call_tool(tool, arguments, timeout);
        let result = observe::within(call.trace_context(), sent).await;
        match &result {
            Ok(_) => call.answered(),
            Err(err) => call.failed(err),
        }
        result
    }

    /// Counts a call that starts now; it stays in flight until the returned
    /// guard is dropped (for a streamed answer: when the stream ends). Its
    /// outcome is written in `ledger`, that of the group it came through.
    /// Not subject to `max_concurrency`: for streams that are not calls.
    pub fn begin_call(self: &Arc<Self>, ledger: Ledger<'_>) -> InFlightCall {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if self.in_flight.fetch_add(1, Ordering::Relaxed) == 0 {
            *self.busy_since.lock() = Some(tokio::time::Instant::now());
        }
        InFlightCall {
            member: self.clone(),
            metrics: ledger.metrics.of(ledger.called_tool()),
            breaker: ledger.breaker.cloned(),
            outliers: ledger.outliers.map(|(o, i)| (o.clone(), i)),
            tool: ledger.tool.map(Box::from),
            started: tokio::time::Instant::now(),
            attempt: observe::Attempt::begin(&self.id),
            _slot: None,
            settled: AtomicBool::new(false),
        }
    }

    /// [`Member::begin_call`] once a slot of the member's `max_concurrency`
    /// is free, waiting at most `patience`. A refusal sends nothing and says
    /// nothing about the member's health.
    pub async fn admit(
        self: &Arc<Self>,
        ledger: Ledger<'_>,
        patience: Duration,
    ) -> Result<InFlightCall, UpstreamError> {
        if let (Some(asking), Some(limits)) = (&ledger.asking, &*self.rate_limits.load()) {
            limits.admit(asking).map_err(UpstreamError::RateLimited)?;
        }
        let Some(limit) = &self.limit else {
            return Ok(self.begin_call(ledger));
        };
        self.queued.fetch_add(1, Ordering::Relaxed);
        let slot = limit.acquire(patience).await;
        self.queued.fetch_sub(1, Ordering::Relaxed);
        let slot = slot.map_err(UpstreamError::Saturated)?;
        let mut call = self.begin_call(ledger);
        call._slot = Some(slot);
        Ok(call)
    }

    /// Sets the rate limits of the member's server.
    pub(crate) fn set_rate_limits(&self, limits: Option<Arc<rate::Target>>) {
        self.rate_limits.store(limits);
    }

    /// How often the member entered or left rotation.
    pub fn rotation_changes(&self) -> u64 {
        self.rotation_changes.load(Ordering::Relaxed)
    }

    /// Feeds `outcome` to health; returns the rotation change it caused.
    fn observe(&self, outcome: Outcome, error: Option<&UpstreamError>) -> Option<Transition> {
        if let Some(err) = error {
            *self.last_error.lock() = err.to_string();
            *self.last_error_for_clients.lock() = err.for_client().to_string();
        }
        let mut health = self.health.lock();
        let transition = health.observe(outcome);
        self.vitals.set_healthy(health.is_healthy());
        let failures = health.consecutive_failures();
        drop(health);
        match transition {
            Some(Transition::Ejected) => {
                tracing::warn!(member.id = %self.id, failures, reason = %self.last_error.lock(), "member left rotation");
            }
            Some(Transition::Restored) => {
                self.last_error.lock().clear();
                self.legacy_only_at.store(Stamp::NEVER.0, Ordering::Relaxed);
                self.last_error_for_clients.lock().clear();
                tracing::info!(member.id = %self.id, reason = "probe succeeded", "member back in rotation");
            }
            None => return None,
        }
        self.rotation_changes.fetch_add(1, Ordering::Relaxed);
        self.health_changed.notify_one();
        transition
    }

    /// Why the member last failed, as MCP clients may see it: without its
    /// address (empty while it is healthy).
    pub fn last_error_for_clients(&self) -> String {
        self.last_error_for_clients.lock().clone()
    }

    /// This member's health and counters (latency left at 0).
    pub fn report(&self) -> MemberHealth {
        let health = self.health.lock();
        MemberHealth {
            server_id: self.id.clone(),
            healthy: health.is_healthy(),
            consecutive_failures: health.consecutive_failures(),
            calls: self.calls.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            in_flight: self.in_flight(),
            p50_ms: 0.0,
            p99_ms: 0.0,
            last_error: self.last_error.lock().clone(),
            // Filled in for servers with replicas, which report as a whole.
            copies: 0,
            copies_in_rotation: 0,
        }
    }

    /// [`Member::report`] with the p50/p99 latency of the calls since the
    /// last such report, and a fresh latency window for the next one.
    pub fn report_interval(&self) -> MemberHealth {
        let mut report = self.report();
        let mut latency = self.latency.lock();
        if !latency.is_empty() {
            report.p50_ms = latency.value_at_quantile(0.5) as f64 / 1000.0;
            report.p99_ms = latency.value_at_quantile(0.99) as f64 / 1000.0;
        }
        latency.reset();
        report
    }
}

/// How long a member that answered a 2026-07-28 request as legacy-only is
/// kept from such requests before one is tried again.
pub(crate) const LEGACY_RECHECK: Duration = Duration::from_secs(300);

/// Tools whose latency a member keeps apart; calls of others count only
/// in the member's overall average, so a client naming tools at random
/// cannot grow the map.
const MAX_TOOL_LATENCIES: usize = 64;

/// A member's latency averages for `least_latency`.
#[derive(Debug, Default)]
struct Ewmas {
    /// Over every answer.
    any: Option<PeakEwma>,
    /// Per tool: a server's tools may differ by orders of magnitude.
    by_tool: std::collections::HashMap<Box<str>, PeakEwma>,
}

/// A latency histogram from 1 µs to 1 hour with 2 significant digits (1 %
/// resolution is plenty for p50/p99 and keeps the per-report reset cheap).
fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("static bounds are valid")
}

/// A call in flight on one member; see [`Member::begin_call`].
#[derive(Debug)]
pub struct InFlightCall {
    member: Arc<Member>,
    metrics: Arc<CallMetrics>,
    breaker: Option<Arc<CircuitBreaker>>,
    /// The group's outlier detection and the member's index in it.
    outliers: Option<(Arc<Outliers>, usize)>,
    /// The tool, when its latency is kept apart (`least_latency`).
    tool: Option<Box<str>>,
    started: tokio::time::Instant,
    /// The call as an attempt of the request being followed, if it is.
    attempt: Option<observe::Attempt>,
    /// The `max_concurrency` slot, freed with the call.
    _slot: Option<Slot>,
    /// Set once the outcome is counted, so a call counts once; a call
    /// dropped unsettled counts as cancelled.
    settled: AtomicBool,
}

impl InFlightCall {
    /// The context to send the call's request in, so that the member's
    /// `traceparent` names this attempt; `None` when it is not traced.
    pub(crate) fn trace_context(&self) -> Option<opentelemetry::Context> {
        self.attempt.as_ref().and_then(observe::Attempt::context)
    }

    /// The member answered (a tool error or JSON-RPC error is an answer).
    pub fn answered(&self) {
        if self.settle(metrics::CallOutcome::Ok) {
            self.member.observe(Outcome::CallSuccess, None);
            if let Some(breaker) = &self.breaker {
                breaker.record_success();
            }
            if let Some((outliers, index)) = &self.outliers {
                outliers.record_answer(*index);
            }
        }
    }

    /// The call failed; only failures that say the member is unwell
    /// (transport, 5xx, timeout) count against it. A call that went silent
    /// (read timeout, deadline) on a member watched for hangs asks for a
    /// stall check instead: the probe tells busy from hung.
    pub fn failed(&self, err: &UpstreamError) {
        if !self.settle_as(metrics::CallOutcome::of(err), Some(err)) {
            return;
        }
        // A call that failed slowly says the member is slow: least_latency
        // counts the time it took, as it does an answer's.
        if err.counts_against_member() && !err.may_try_another_member() {
            let elapsed = self.started.elapsed();
            self.member.observe_latency(self.tool.as_deref(), elapsed);
        }
        if err.is_silence() && self.member.stall_timeout.is_some() {
            self.member.errors.fetch_add(1, Ordering::Relaxed);
            self.member.suspect.notify_one();
            return;
        }
        let breaker = self.breaker.as_deref();
        if err.counts_against_member() {
            self.member.errors.fetch_add(1, Ordering::Relaxed);
            self.member.observe(Outcome::Failure, Some(err));
            breaker.inspect(|b| b.record_failure());
            // A call that never reached the member says it is down, which
            // the probes handle; only delivered calls make an outlier.
            if let Some((outliers, index)) = &self.outliers
                && !err.may_try_another_member()
            {
                outliers.record_failure(*index);
            }
        } else {
            self.member.observe(Outcome::CallSuccess, None);
            breaker.inspect(|b| b.record_success());
        }
    }

    /// Counts the call's outcome and the latency of an answer; false (and
    /// nothing counted) when the call was settled already.
    fn settle(&self, outcome: metrics::CallOutcome) -> bool {
        self.settle_as(outcome, None)
    }

    /// [`InFlightCall::settle`] of a call that failed with `err`.
    fn settle_as(&self, outcome: metrics::CallOutcome, err: Option<&UpstreamError>) -> bool {
        if self.settled.swap(true, Ordering::Relaxed) {
            return false;
        }
        if let Some(attempt) = &self.attempt {
            let why = err.map(|err| err.for_client().to_string());
            attempt.settle(outcome.as_str(), why.as_deref());
        }
        self.metrics.record(outcome);
        if outcome.is_answer() {
            let elapsed = self.started.elapsed();
            self.metrics.observe_latency(elapsed);
            let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
            // Saturates instead of failing for values beyond the histogram's range.
            self.member.latency.lock().saturating_record(micros);
            self.member.observe_latency(self.tool.as_deref(), elapsed);
        }
        true
    }
}

impl Drop for InFlightCall {
    fn drop(&mut self) {
        self.settle(metrics::CallOutcome::Cancelled);
        if self.member.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            *self.member.busy_since.lock() = None;
        }
    }
}

#[cfg(test)]
#[path = "member_tests.rs"]
mod tests;
