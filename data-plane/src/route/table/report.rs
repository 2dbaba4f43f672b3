//! What a data plane reports up the control stream: every server's health
//! as seen here (a server with replicas summed over its copies) and every
//! group's circuit, outlier ejections and where its members' tool lists
//! disagree; and every rate limit's traffic, which fleet shares follow.

use std::sync::Arc;

use hangar_proto::v1::{self, HealthReport};

use super::Routes;
use crate::route::failover::Pool;
use crate::route::member::Member;

impl Routes {
    /// Health of every member as this data plane sees it, with latency
    /// over the calls since the previous report.
    /// One entry per server: the copies of a server with replicas are
    /// summed up as the server (healthy while any copy is).
    pub fn health_report(&self) -> HealthReport {
        let table = self.load();
        let mut members: Vec<_> = table
            .servers
            .iter()
            .map(|(id, copies)| merge_copies(id, copies))
            .collect();
        members.sort_by(|a, b| a.server_id.cmp(&b.server_id));
        let mut groups: Vec<_> = table
            .groups
            .values()
            .map(|group| {
                // Checking closes a circuit whose members are back, so the
                // report is true without waiting for a call.
                let open = group.circuit().is_err();
                let breaker = group.breaker.view();
                v1::GroupHealth {
                    group_id: group.id.clone(),
                    circuit_open: open,
                    consecutive_failures: breaker.consecutive_failures,
                    circuit_opened: breaker.opened,
                    ejected: group.ejected(),
                    tool_warnings: {
                        let mut warnings = group.tool_warnings();
                        // Tools are only known once members list them, so
                        // a mistyped name shows here rather than at apply.
                        let mut unlisted: Vec<&str> = table
                            .rate
                            .limited_tools(&group.id)
                            .filter(|tool| group.listed_nowhere(tool))
                            .collect();
                        unlisted.sort_unstable();
                        warnings.extend(unlisted.into_iter().map(|tool| {
                            format!("rate_limit.tools.{tool}: no member lists a tool '{tool}'")
                        }));
                        warnings
                    },
                }
            })
            .collect();
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        HealthReport {
            members,
            groups,
            limits: table.rate.usage_report(),
        }
    }
}

/// The report of a server from those of its copies.
fn merge_copies(id: &str, copies: &[Arc<Member>]) -> v1::MemberHealth {
    let mut reports = copies.iter().map(|m| m.report_interval());
    let Some(mut merged) = reports.next() else {
        return v1::MemberHealth {
            server_id: id.to_owned(),
            ..Default::default()
        };
    };
    if copies.len() > 1 && !merged.last_error.is_empty() {
        merged.last_error = format!("{}: {}", copies[0].id(), merged.last_error);
    }
    for (copy, report) in copies.iter().skip(1).zip(reports) {
        merged.calls += report.calls;
        merged.errors += report.errors;
        merged.in_flight += report.in_flight;
        merged.p50_ms = merged.p50_ms.max(report.p50_ms);
        merged.p99_ms = merged.p99_ms.max(report.p99_ms);
        if report.healthy && !merged.healthy {
            merged.consecutive_failures = report.consecutive_failures;
        } else if report.healthy == merged.healthy {
            merged.consecutive_failures =
                merged.consecutive_failures.min(report.consecutive_failures);
        }
        merged.healthy |= report.healthy;
        if merged.last_error.is_empty() && !report.last_error.is_empty() {
            merged.last_error = format!("{}: {}", copy.id(), report.last_error);
        }
    }
    merged.server_id = id.to_owned();
    if copies.len() > 1 {
        merged.copies = u32::try_from(copies.len()).unwrap_or(u32::MAX);
        merged.copies_in_rotation =
            u32::try_from(copies.iter().filter(|m| m.is_healthy()).count()).unwrap_or(u32::MAX);
    }
    merged
}
