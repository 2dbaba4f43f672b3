//! Human and JSON forms of command output.

use std::fmt::Write;

use hangar_proto::v1::{StatusResponse, ValidationErrors};
use serde_json::{Value, json};

/// One line per error, as `hangarctl validate` prints them.
pub(crate) fn validation_errors(errors: &ValidationErrors) -> String {
    let lines: Vec<String> = errors
        .errors
        .iter()
        .map(|e| {
            let mut line = e.source_name.clone();
            if e.line > 0 {
                let _ = write!(line, ":{}:{}", e.line, e.column);
            }
            line.push_str(": ");
            if !e.path.is_empty() {
                let _ = write!(line, "{}: ", e.path);
            }
            line.push_str(&e.message);
            line
        })
        .collect();
    lines.join("\n")
}

/// The `NAME MODE STATE DETAILS` table plus the data planes.
pub(crate) fn status_table(status: &StatusResponse) -> String {
    let mut rows = vec![[
        "NAME".to_owned(),
        "MODE".into(),
        "STATE".into(),
        "DETAILS".into(),
    ]];
    for s in &status.servers {
        let mut details = format!("endpoint={}", s.endpoint);
        if s.consecutive_failures > 0 {
            let _ = write!(details, "  failures={}", s.consecutive_failures);
        }
        if s.reported_by > 1 {
            let _ = write!(details, "  healthy_on={}/{}", s.healthy_on, s.reported_by);
        }
        rows.push([s.id.clone(), "remote".into(), s.state.clone(), details]);
    }
    for g in &status.groups {
        let details = format!(
            "strategy={}  members={}/{} healthy",
            g.strategy, g.healthy_members, g.total_members
        );
        rows.push([g.id.clone(), "group".into(), g.state.clone(), details]);
    }
    let mut out = format!("config version {}\n\n", status.version);
    out.push_str(&columns(&rows));
    out.push('\n');
    if status.data_planes.is_empty() {
        out.push_str("no data planes connected\n");
        return out;
    }
    let mut planes = vec![[
        "DATA PLANE".to_owned(),
        "LISTEN".into(),
        "ACKED".into(),
        "LAST REPORT".into(),
    ]];
    for p in &status.data_planes {
        let mut acked = format!("v{}", p.acked_version);
        if !p.last_nack.is_empty() {
            let _ = write!(acked, " (nack: {})", p.last_nack);
        }
        let age = format!("{:.1}s ago", p.last_report_age_ms as f64 / 1000.0);
        planes.push([p.node_id.clone(), p.listen_addr.clone(), acked, age]);
    }
    out.push_str(&columns(&planes));
    out
}

/// Left-aligned columns, two spaces apart; the last column is not padded.
fn columns<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == N {
                out.push_str(cell);
            } else {
                let _ = write!(out, "{cell:<width$}  ", width = widths[i]);
            }
        }
        out.push('\n');
    }
    out
}

/// The machine-readable status.
pub(crate) fn status_json(status: &StatusResponse) -> Value {
    json!({
        "version": status.version,
        "servers": status.servers.iter().map(|s| json!({
            "name": s.id, "mode": "remote", "state": s.state, "endpoint": s.endpoint,
            "healthy_on": s.healthy_on, "reported_by": s.reported_by,
            "consecutive_failures": s.consecutive_failures, "last_error": s.last_error,
            "calls": s.calls, "errors": s.errors,
        })).collect::<Vec<_>>(),
        "groups": status.groups.iter().map(|g| json!({
            "name": g.id, "mode": "group", "state": g.state, "strategy": g.strategy,
            "healthy_members": g.healthy_members, "total_members": g.total_members,
            "min_healthy": g.min_healthy,
        })).collect::<Vec<_>>(),
        "data_planes": status.data_planes.iter().map(|p| json!({
            "node_id": p.node_id, "address": p.address, "listen_addr": p.listen_addr,
            "acked_version": p.acked_version, "last_nack": p.last_nack,
            "last_report_age_ms": p.last_report_age_ms, "connected_for_ms": p.connected_for_ms,
        })).collect::<Vec<_>>(),
    })
}
