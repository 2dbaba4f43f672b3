//! Per-fault figures from the call log and the rotation samples, printed
//! as a table and written as JSON.
//!
//! Windows, on the run's clock:
//! - **baseline**: the `baseline` seconds before the fault's start.
//! - **fault**: from start until the member answers `/healthz` again
//!   (`ready`; at least 1 s, so a quick restart still has a rate).
//! - **recovery**: from `ready` to the end of the watch after the fault.
//!
//! Calls are counted in the fault's window (start to end of watch) by when
//! they settled. A session error counts as "after in-flight" when its call
//! was sent after the fault started: each client has one call in flight at
//! a time, so this leaves out exactly the call each client had in flight
//! when the fault hit, and what remains is what a client saw after those
//! settled.
//!
//! Rotation: "out after" is seconds from start to the first scrape with
//! the member's `hangar_member_healthy` at 0; "back after" is seconds from
//! `end` to its last change from 0 to 1 in the window (negative if it came
//! back before the fault was undone, as in `slow` between its restarts);
//! "never out" and "still out" say so instead of inventing a number.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::chaos::classify::{Class, Outcome};
use crate::chaos::clients::Event;
use crate::chaos::faults::Timing;
use crate::chaos::rotation::Sample;

/// Most distinct error texts kept per fault.
const MAX_SAMPLES: usize = 8;

/// One fault's figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    /// When the fault was done and undone.
    pub timing: Timing,
    /// End of the watch after the fault.
    pub watch_until: f64,
    /// Calls that got a result.
    pub ok: u64,
    /// Failed calls by bucket.
    pub failed: BTreeMap<Class, u64>,
    /// Session errors on calls sent after the fault started.
    pub session_after_inflight: u64,
    /// Clients whose first session error of the run came in this window:
    /// sessions this fault lost (a client never initializes again, so a
    /// session lost earlier keeps failing in later windows too).
    pub sessions_lost_here: u64,
    /// Clients that saw a session error in this window, lost here or before.
    pub sessions_failing: u64,
    /// Latency of successful calls sent in the fault window (start to
    /// ready), so that calls held by a stopped member count when they
    /// settle later: 50th, 99th percentile and highest, in ms.
    pub fault_latency_ms: [f64; 3],
    /// Failed calls by cause label.
    pub causes: BTreeMap<String, u64>,
    /// Failed calls by client kind and bucket.
    pub by_kind: BTreeMap<String, BTreeMap<Class, u64>>,
    /// Some distinct error texts.
    pub samples: Vec<String>,
    /// Seconds from start to out of rotation, if it went out.
    pub out_after_s: Option<f64>,
    /// Seconds from end to back in rotation, if it went out and came back.
    pub back_after_s: Option<f64>,
    /// `never out`, `back`, `still out`, or `no samples`.
    pub rotation: String,
    /// Times the member went in or out of rotation in the window.
    pub rotation_changes: u64,
    /// Other members seen out of rotation in the window.
    pub others_out: Vec<String>,
    /// Highest `hangar_group_ejected_members` seen, if the build has it.
    pub ejected_max: Option<f64>,
    /// Successful calls per second in the baseline, fault and recovery windows.
    pub rate_baseline: f64,
    /// See `rate_baseline`.
    pub rate_fault: f64,
    /// See `rate_baseline`.
    pub rate_recovery: f64,
    /// Successful calls served by the faulted member in the fault window,
    /// per second (where the result names it).
    pub rate_fault_on_member: f64,
}

/// Figures of one fault from everything logged.
pub fn row(
    timing: &Timing,
    watch_until: f64,
    baseline: f64,
    events: &[Event],
    samples: &[Sample],
) -> Row {
    let fault_end = timing.ready.max(timing.start + 1.0);
    let rate = |from: f64, to: f64, member: Option<&str>| {
        let ok = events
            .iter()
            .filter(|e| e.done >= from && e.done < to)
            .filter(|e| match (&e.outcome, member) {
                (Outcome::Ok { .. }, None) => true,
                (Outcome::Ok { served_by }, Some(m)) => served_by.as_deref() == Some(m),
                _ => false,
            })
            .count();
        ok as f64 / (to - from).max(1e-9)
    };
    let mut row = Row {
        timing: timing.clone(),
        watch_until,
        ok: 0,
        failed: BTreeMap::new(),
        session_after_inflight: 0,
        sessions_lost_here: 0,
        sessions_failing: 0,
        fault_latency_ms: latency(events, timing.start, fault_end),
        causes: BTreeMap::new(),
        by_kind: BTreeMap::new(),
        samples: Vec::new(),
        out_after_s: None,
        back_after_s: None,
        rotation: String::new(),
        rotation_changes: 0,
        others_out: Vec::new(),
        ejected_max: None,
        rate_baseline: rate(timing.start - baseline, timing.start, None),
        rate_fault: rate(timing.start, fault_end, None),
        rate_recovery: rate(fault_end, watch_until, None),
        rate_fault_on_member: timing
            .member
            .as_deref()
            .map_or(0.0, |m| rate(timing.start, fault_end, Some(m))),
    };
    for event in events
        .iter()
        .filter(|e| e.done >= timing.start && e.done < watch_until)
    {
        let Outcome::Failed {
            class,
            cause,
            detail,
        } = &event.outcome
        else {
            row.ok += 1;
            continue;
        };
        *row.failed.entry(*class).or_default() += 1;
        *row.causes.entry(cause.clone()).or_default() += 1;
        let kind = serde_json::to_value(event.kind).unwrap_or_default();
        *row.by_kind
            .entry(kind.as_str().unwrap_or("?").to_owned())
            .or_default()
            .entry(*class)
            .or_default() += 1;
        if *class == Class::Session && event.sent > timing.start {
            row.session_after_inflight += 1;
        }
        let sample = format!("{:?} {:?}: {detail}", event.kind, class);
        if row.samples.len() < MAX_SAMPLES && !row.samples.contains(&sample) {
            row.samples.push(sample);
        }
    }
    sessions(&mut row, events);
    rotation(&mut row, samples);
    row
}

fn is_session_error(e: &Event) -> bool {
    matches!(
        e.outcome,
        Outcome::Failed {
            class: Class::Session,
            ..
        }
    )
}

fn sessions(row: &mut Row, events: &[Event]) {
    let in_window = |e: &Event| e.done >= row.timing.start && e.done < row.watch_until;
    let mut failing: Vec<usize> = events
        .iter()
        .filter(|e| in_window(e) && is_session_error(e))
        .map(|e| e.client)
        .collect();
    failing.sort_unstable();
    failing.dedup();
    row.sessions_failing = failing.len() as u64;
    row.sessions_lost_here = failing
        .iter()
        .filter(|&&client| {
            events
                .iter()
                .find(|e| e.client == client && is_session_error(e))
                .is_some_and(in_window)
        })
        .count() as u64;
}

/// p50, p99 and max of successful calls sent in `[from, to)`, in ms.
fn latency(events: &[Event], from: f64, to: f64) -> [f64; 3] {
    let mut ms: Vec<f64> = events
        .iter()
        .filter(|e| e.sent >= from && e.sent < to && matches!(e.outcome, Outcome::Ok { .. }))
        .map(|e| (e.done - e.sent) * 1000.0)
        .collect();
    if ms.is_empty() {
        return [0.0; 3];
    }
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    [at(0.5), at(0.99), at(1.0)]
}

fn rotation(row: &mut Row, samples: &[Sample]) {
    let window: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.at >= row.timing.start && s.at < row.watch_until && !s.healthy.is_empty())
        .collect();
    row.ejected_max = window
        .iter()
        .filter_map(|s| s.ejected)
        .fold(None, |max, v| Some(max.map_or(v, |m: f64| m.max(v))));
    let target = row.timing.member.clone();
    let mut others: Vec<String> = window
        .iter()
        .flat_map(|s| s.healthy.iter())
        .filter(|(m, v)| **v < 0.5 && Some(*m) != target.as_ref())
        .map(|(m, _)| m.clone())
        .collect();
    others.sort();
    others.dedup();
    row.others_out = others;
    let Some(member) = target else {
        row.rotation = "-".into();
        return;
    };
    let states: Vec<(f64, bool)> = window
        .iter()
        .filter_map(|s| Some((s.at, *s.healthy.get(&member)? > 0.5)))
        .collect();
    if states.is_empty() {
        row.rotation = "no samples".into();
        return;
    }
    row.rotation_changes = states.windows(2).filter(|w| w[0].1 != w[1].1).count() as u64;
    let Some(out_at) = states.iter().find(|(_, up)| !up).map(|(at, _)| *at) else {
        row.rotation = "never out".into();
        return;
    };
    row.out_after_s = Some(out_at - row.timing.start);
    if !states.last().is_some_and(|(_, up)| *up) {
        row.rotation = "still out".into();
        return;
    }
    let back_at = states
        .windows(2)
        .filter(|w| !w[0].1 && w[1].1)
        .map(|w| w[1].0)
        .next_back()
        .unwrap_or(out_at);
    row.back_after_s = Some(back_at - row.timing.end);
    row.rotation = "back".into();
}

/// The table, one line per fault.
pub fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<8} {:<7} {:>6} {:>6} {:>6} {:>13} {:>9} {:>6} {:>13} {:>7} {:>8} {:>24} {:>7}\n",
        "fault",
        "member",
        "ok",
        "deliv",
        "never",
        "session(aft)",
        "lost/fail",
        "other",
        "p99/max ms",
        "out s",
        "back s",
        "calls/s base>fault>rec",
        "ejected"
    );
    for r in rows {
        let n = |c: Class| r.failed.get(&c).copied().unwrap_or(0);
        let secs = |v: Option<f64>, missing: &str| {
            v.map_or_else(|| missing.to_owned(), |s| format!("{s:.1}"))
        };
        let missing_back = if r.rotation == "back" {
            "-"
        } else {
            &r.rotation
        };
        out.push_str(&format!(
            "{:<8} {:<7} {:>6} {:>6} {:>6} {:>13} {:>9} {:>6} {:>13} {:>7} {:>8} {:>24} {:>7}\n",
            r.timing.fault.name(),
            r.timing.member.as_deref().unwrap_or("-"),
            r.ok,
            n(Class::Delivered),
            n(Class::NeverDelivered),
            format!("{} ({})", n(Class::Session), r.session_after_inflight),
            format!("{}/{}", r.sessions_lost_here, r.sessions_failing),
            n(Class::Other),
            format!("{:.0}/{:.0}", r.fault_latency_ms[1], r.fault_latency_ms[2]),
            secs(r.out_after_s, "-"),
            secs(r.back_after_s, missing_back),
            format!(
                "{:.0}>{:.0}>{:.0} ({:.2}x)",
                r.rate_baseline,
                r.rate_fault,
                r.rate_recovery,
                r.rate_fault / r.rate_baseline.max(1e-9)
            ),
            r.ejected_max.map_or("-".to_owned(), |v| format!("{v:.0}")),
        ));
    }
    out
}

/// Every fault's causes, for reading under the table.
pub fn causes(rows: &[Row]) -> String {
    let mut out = String::new();
    for r in rows {
        for (cause, count) in &r.causes {
            out.push_str(&format!(
                "  {:<8} {count:>6}  {cause}\n",
                r.timing.fault.name()
            ));
        }
        if !r.others_out.is_empty() {
            out.push_str(&format!(
                "  {:<8} other members out of rotation: {}\n",
                r.timing.fault.name(),
                r.others_out.join(", ")
            ));
        }
    }
    out
}

/// The JSON document.
pub fn document(note: &str, settings: Value, rows: &[Row]) -> Value {
    json!({"binaries": note, "settings": settings, "faults": rows})
}
