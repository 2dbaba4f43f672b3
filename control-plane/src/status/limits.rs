//! The rate limits of the config in force, with their traffic summed over
//! the data planes that count and each data plane's part.

use std::collections::BTreeMap;

use hangar_config::{Config, RateScope};
use hangar_proto::v1::{LimitShareStatus, LimitStatus, LimitUsage};
use hangar_rate::ids;

use crate::fleet::DataPlane;

/// One row per limit of `config` (in its order), then `env` if a data
/// plane runs one.
pub(super) fn rollup(config: &Config, counting: &[&DataPlane]) -> Vec<LimitStatus> {
    let usage = |id: &str| -> Vec<(&str, &LimitUsage)> {
        counting
            .iter()
            .filter_map(|p| Some((p.node_id.as_str(), p.limits.as_ref()?.get(id)?)))
            .collect()
    };
    let mut rows: Vec<LimitStatus> = config
        .rate_limits()
        .into_iter()
        .map(|(id, limit)| {
            let size =
                |s: Option<hangar_config::RateSize>| s.map_or((0.0, 0), |s| (s.rps, s.burst));
            let ((rps, burst), (per_caller_rps, per_caller_burst)) =
                (size(limit.all), size(limit.per_caller));
            // Per-caller buckets are each data plane's own: a limit of
            // nothing else is not the fleet's, whatever its scope says.
            let scope = match (limit.scope, limit.all) {
                (RateScope::Fleet, Some(_)) => "fleet",
                _ => "data_plane",
            };
            row(
                LimitStatus {
                    limit: id.clone(),
                    rps,
                    burst,
                    per_caller_rps,
                    per_caller_burst,
                    scope: scope.to_owned(),
                    ..LimitStatus::default()
                },
                &usage(&id),
            )
        })
        .collect();
    let env = usage(ids::ENV);
    if !env.is_empty() {
        let base = LimitStatus {
            limit: ids::ENV.to_owned(),
            scope: "data_plane".to_owned(),
            ..LimitStatus::default()
        };
        rows.push(row(base, &env));
    }
    rows
}

fn row(mut status: LimitStatus, usage: &[(&str, &LimitUsage)]) -> LimitStatus {
    let by_node: BTreeMap<&str, &LimitUsage> = usage.iter().copied().collect();
    for (node, u) in by_node {
        status.admitted_rps += u.admitted_rps;
        status.refused_rps += u.refused_rps;
        status.data_planes.push(LimitShareStatus {
            node_id: node.to_owned(),
            share_rps: u.local_rps,
            offered_rps: u.offered_rps,
            admitted_rps: u.admitted_rps,
            refused_rps: u.refused_rps,
        });
    }
    status
}
