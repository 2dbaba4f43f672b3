//! Human and JSON forms of command output.

use std::fmt::Write;

use hangar_proto::v1::{ApiKeyInfo, StatusResponse, ValidationErrors};
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
        let mut details = match s.mode.as_str() {
            "subprocess" => format!("command=\"{}\"  replicas={}", s.command, s.replicas),
            _ => format!("endpoint={}", s.endpoint),
        };
        if !s.header_names.is_empty() {
            let _ = write!(details, "  headers={}", s.header_names.join(","));
        }
        if s.consecutive_failures > 0 {
            let _ = write!(details, "  failures={}", s.consecutive_failures);
        }
        if s.reported_by > 1 {
            let _ = write!(details, "  healthy_on={}/{}", s.healthy_on, s.reported_by);
        }
        if !s.failing_on.is_empty() && (s.reported_by > 1 || s.healthy_on > 0) {
            let _ = write!(details, "  failing_on={}", s.failing_on.join(","));
        }
        if s.fleet_ejected {
            details.push_str("  out of rotation fleet-wide");
        }
        if s.healthy_on < s.reported_by && !s.last_error.is_empty() {
            // Enough of the cause to act on; `-o json` has all of it.
            let cause = shortened(&s.last_error, 160);
            let _ = write!(details, "  last_error=\"{cause}\"");
        }
        if s.p99_ms > 0.0 {
            let _ = write!(details, "  p50={:.1}ms p99={:.1}ms", s.p50_ms, s.p99_ms);
        }
        rows.push([s.id.clone(), mode(&s.mode), s.state.clone(), details]);
    }
    for g in &status.groups {
        let mut details = format!(
            "strategy={}  members={}/{} healthy",
            g.strategy, g.healthy_members, g.total_members
        );
        if !g.degraded_on.is_empty() {
            let _ = write!(details, "  member out on {}", g.degraded_on.join(","));
        }
        if !g.ejected.is_empty() {
            let _ = write!(details, "  ejected {}", g.ejected.join(","));
        }
        if !g.circuit_open_on.is_empty() {
            let _ = write!(details, "  circuit open on {}", g.circuit_open_on.join(","));
        }
        rows.push([g.id.clone(), "group".into(), g.state.clone(), details]);
    }
    let mut out = format!("config version {}\n\n", status.version);
    out.push_str(&columns(&rows));
    out.push('\n');
    let warnings: Vec<String> = status
        .groups
        .iter()
        .flat_map(|g| {
            g.tool_warnings
                .iter()
                .map(move |w| format!("warning: group {}: {w}\n", g.id))
        })
        .collect();
    if !warnings.is_empty() {
        out.push_str(&warnings.concat());
        out.push('\n');
    }
    if !status.limits.is_empty() {
        out.push_str(&limits_table(status));
        out.push('\n');
    }
    out.push_str(&dataplanes_table(status));
    out
}

/// The rate limits: size, what the fleet admits and refuses now, and each
/// data plane's share (or, for `scope: data_plane`, its own traffic).
fn limits_table(status: &StatusResponse) -> String {
    let mut rows = vec![[
        "RATE LIMIT".to_owned(),
        "SCOPE".into(),
        "SIZE".into(),
        "ADMITTED".into(),
        "REFUSED".into(),
        "DATA PLANES".into(),
    ]];
    for l in &status.limits {
        let mut size = Vec::new();
        if l.rps > 0.0 {
            size.push(format!("{}/s burst {}", number(l.rps), l.burst));
        }
        if l.per_caller_rps > 0.0 {
            size.push(format!(
                "{}/s burst {} each caller",
                number(l.per_caller_rps),
                l.per_caller_burst
            ));
        }
        let planes: Vec<String> = l
            .data_planes
            .iter()
            .map(|p| {
                let part = if l.scope == "fleet" && p.share_rps > 0.0 {
                    format!("share {}/s", number(p.share_rps))
                } else {
                    format!("admits {}/s", number(p.admitted_rps))
                };
                format!("{} {part}, asked {}/s", p.node_id, number(p.offered_rps))
            })
            .collect();
        rows.push([
            hangar_rate::ids::label(&l.limit),
            l.scope.clone(),
            if size.is_empty() {
                "-".into()
            } else {
                size.join(", ")
            },
            format!("{}/s", number(l.admitted_rps)),
            format!("{}/s", number(l.refused_rps)),
            if planes.is_empty() {
                "-".into()
            } else {
                planes.join("; ")
            },
        ]);
    }
    columns(&rows)
}

/// A rate as people read it: one decimal, none for whole numbers.
fn number(x: f64) -> String {
    if (x - x.round()).abs() < 0.05 {
        format!("{}", x.round())
    } else {
        format!("{x:.1}")
    }
}

/// The data planes: state, versions and staleness.
pub(crate) fn dataplanes_table(status: &StatusResponse) -> String {
    if status.data_planes.is_empty() {
        return "no data planes\n".to_owned();
    }
    let mut rows = vec![[
        "DATA PLANE".to_owned(),
        "STATE".into(),
        "LISTEN".into(),
        "ACKED".into(),
        "LAST REPORT".into(),
        "NACK".into(),
    ]];
    for p in &status.data_planes {
        let acked = if p.acked_version == status.version {
            format!("v{}", p.acked_version)
        } else {
            format!("v{} (config is v{})", p.acked_version, status.version)
        };
        let age = format!("{:.1}s ago", p.last_report_age_ms as f64 / 1000.0);
        let nack = if p.last_nack.is_empty() {
            "-".to_owned()
        } else {
            p.last_nack.clone()
        };
        rows.push([
            p.node_id.clone(),
            p.state.clone(),
            p.listen_addr.clone(),
            acked,
            age,
            nack,
        ]);
    }
    columns(&rows)
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

/// The server's mode; control planes older than `mode` only had remote servers.
fn mode(mode: &str) -> String {
    if mode.is_empty() { "remote" } else { mode }.to_owned()
}

/// The machine-readable status.
pub(crate) fn status_json(status: &StatusResponse) -> Value {
    json!({
        "version": status.version,
        "servers": status.servers.iter().map(|s| {
            let mut server = json!({
                "name": s.id, "mode": mode(&s.mode), "state": s.state,
                "healthy_on": s.healthy_on, "reported_by": s.reported_by,
                "consecutive_failures": s.consecutive_failures, "last_error": s.last_error,
                "calls": s.calls, "errors": s.errors, "p50_ms": s.p50_ms, "p99_ms": s.p99_ms,
                "failing_on": s.failing_on, "fleet_ejected": s.fleet_ejected,
            });
            if s.mode == "subprocess" {
                server["command"] = json!(s.command);
                server["replicas"] = json!(s.replicas);
            } else {
                server["endpoint"] = json!(s.endpoint);
                server["header_names"] = json!(s.header_names);
            }
            server
        }).collect::<Vec<_>>(),
        "groups": status.groups.iter().map(|g| json!({
            "name": g.id, "mode": "group", "state": g.state, "strategy": g.strategy,
            "healthy_members": g.healthy_members, "total_members": g.total_members,
            "min_healthy": g.min_healthy, "circuit_open_on": g.circuit_open_on,
            "degraded_on": g.degraded_on, "ejected": g.ejected,
            "tool_warnings": g.tool_warnings,
        })).collect::<Vec<_>>(),
        "rate_limits": status.limits.iter().map(|l| json!({
            "limit": l.limit, "name": hangar_rate::ids::label(&l.limit), "scope": l.scope,
            "rps": l.rps, "burst": l.burst,
            "per_caller_rps": l.per_caller_rps, "per_caller_burst": l.per_caller_burst,
            "admitted_rps": l.admitted_rps, "refused_rps": l.refused_rps,
            "data_planes": l.data_planes.iter().map(|p| json!({
                "node_id": p.node_id, "share_rps": p.share_rps, "offered_rps": p.offered_rps,
                "admitted_rps": p.admitted_rps, "refused_rps": p.refused_rps,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "data_planes": dataplanes_json(status)["data_planes"],
    })
}

/// The machine-readable data plane list.
pub(crate) fn dataplanes_json(status: &StatusResponse) -> Value {
    json!({
        "config_version": status.version,
        "data_planes": status.data_planes.iter().map(|p| json!({
            "node_id": p.node_id, "state": p.state, "address": p.address,
            "listen_addr": p.listen_addr, "labels": p.labels, "build_version": p.build_version,
            "held_version": p.held_version, "acked_version": p.acked_version,
            "last_nack": p.last_nack, "last_report_age_ms": p.last_report_age_ms,
            "connected_for_ms": p.connected_for_ms,
        })).collect::<Vec<_>>(),
    })
}

/// The API keys: id, principal, when made and until when.
pub(crate) fn api_keys_table(keys: &[ApiKeyInfo]) -> String {
    if keys.is_empty() {
        return "no API keys\n".to_owned();
    }
    let mut rows = vec![[
        "ID".to_owned(),
        "PRINCIPAL".into(),
        "CREATED".into(),
        "EXPIRES".into(),
    ]];
    for k in keys {
        let expires = match k.expires_unix_ms {
            0 => "never".to_owned(),
            ms => unix_time(ms),
        };
        rows.push([
            k.id.clone(),
            k.principal.clone(),
            unix_time(k.created_unix_ms),
            expires,
        ]);
    }
    columns(&rows)
}

/// The machine-readable key list.
pub(crate) fn api_keys_json(keys: &[ApiKeyInfo]) -> Value {
    json!({
        "api_keys": keys.iter().map(|k| json!({
            "id": k.id, "principal": k.principal,
            "created_unix_ms": k.created_unix_ms, "expires_unix_ms": k.expires_unix_ms,
        })).collect::<Vec<_>>(),
    })
}

/// Milliseconds since the Unix epoch as an HTTP date (UTC).
pub(crate) fn unix_time(ms: u64) -> String {
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
}

/// `text` cut to at most `max` characters at a word's end, with `…` when
/// cut; the full text is in `-o json`.
fn shortened(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max).collect();
    let at_word = cut.rfind(' ').filter(|&i| i > max / 2).unwrap_or(cut.len());
    format!("{}…", &cut[..at_word])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_errors_are_cut_at_a_word() {
        assert_eq!(shortened("short one", 160), "short one");
        let long = "member rejected the request with HTTP 400 Bad Request: Bad Request: No valid session ID provided";
        assert_eq!(
            shortened(long, 40),
            "member rejected the request with HTTP…"
        );
    }

    #[test]
    fn rate_limits_show_their_size_traffic_and_shares() {
        use hangar_proto::v1::{LimitShareStatus, LimitStatus};
        let share = |node: &str, share_rps, offered_rps| LimitShareStatus {
            node_id: node.into(),
            share_rps,
            offered_rps,
            ..LimitShareStatus::default()
        };
        let status = StatusResponse {
            limits: vec![
                LimitStatus {
                    limit: "all".into(),
                    rps: 100.0,
                    burst: 200,
                    per_caller_rps: 5.0,
                    per_caller_burst: 10,
                    scope: "fleet".into(),
                    admitted_rps: 99.64,
                    refused_rps: 12.0,
                    data_planes: vec![share("dp-1", 80.25, 90.0), share("dp-2", 19.75, 22.0)],
                },
                LimitStatus {
                    limit: "group/search/tool/deep".into(),
                    per_caller_rps: 0.5,
                    per_caller_burst: 1,
                    scope: "data_plane".into(),
                    ..LimitStatus::default()
                },
            ],
            ..StatusResponse::default()
        };
        let table = limits_table(&status);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[1],
            "every tool call                fleet       100/s burst 200, 5/s burst 10 each caller  99.6/s    12/s     dp-1 share 80.2/s, asked 90/s; dp-2 share 19.8/s, asked 22/s"
        );
        assert_eq!(
            lines[2],
            "tool 'deep' of group 'search'  data_plane  0.5/s burst 1 each caller                  0/s       0/s      -"
        );
        assert!(status_table(&status).contains("RATE LIMIT"));
    }
}
