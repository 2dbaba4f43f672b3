//! Fleet-wide rate limits divided among the data planes (`RateShares`).
//!
//! Whenever a data plane reports (at most every 250 ms) and at least every
//! [`SHARE_INTERVAL`], at once when a config is applied, and when a data
//! plane connects or leaves (at once, or 250 ms after the last division if
//! that was more recent), the control plane divides each fleet-wide
//! limit of the config in force among the data planes that count
//! (connected and heard from within the expiry; with etcd, those of every
//! replica, so each replica computes the same division) in proportion to
//! the demand each reported (`hangar_rate::divide`). A data plane silent
//! past the expiry stops counting, and its share goes to the others. Each
//! stream sends its data plane its part whenever that changes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hangar_config::{Config, RateScope};
use hangar_proto::v1::{RateShare, RateShares};
use hangar_rate::{Demand, Rate, divide};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::fleet::{DataPlane, Fleet, PlaneState};
use crate::replicas::{Peers, every_plane};
use crate::state::ConfigState;

/// Shares are divided at least this often, and whenever a data plane
/// reports (every 2 s each)...
pub(crate) const SHARE_INTERVAL: Duration = Duration::from_secs(2);
/// ...but not more often than this, however many data planes report.
const MIN_INTERVAL: Duration = Duration::from_millis(250);

/// Each data plane's shares of the config in force.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ShareTable {
    version: u64,
    data_planes: u32,
    by_node: BTreeMap<String, Vec<RateShare>>,
}

impl ShareTable {
    /// The message for data plane `node`; `None` when the config has no
    /// fleet-wide limit.
    pub(crate) fn message_for(&self, node: &str) -> Option<RateShares> {
        if self.by_node.is_empty() {
            return None;
        }
        // A node not counted yet (it just connected) gets an even split;
        // the next division counts it.
        let shares = self.by_node.get(node).cloned().unwrap_or_default();
        Some(RateShares {
            version: self.version,
            shares,
            data_planes: self.data_planes,
        })
    }
}

/// Divides the fleet-wide limits of `config` (version `version`) among the
/// data planes of `planes` that count at `now`.
pub(crate) fn divide_fleet(
    config: &Config,
    version: u64,
    planes: &[DataPlane],
    now: Instant,
    expiry: Duration,
) -> ShareTable {
    let counting: Vec<&DataPlane> = planes
        .iter()
        .filter(|p| p.state(now, expiry) == PlaneState::Connected)
        .collect();
    let mut by_node: BTreeMap<String, Vec<RateShare>> = BTreeMap::new();
    for (id, limit) in config.rate_limits() {
        let Some(all) = limit.all.filter(|_| limit.scope == RateScope::Fleet) else {
            continue;
        };
        let budget = Rate::new(all.rps, f64::from(all.burst));
        let demands: Vec<Demand<&str>> = counting
            .iter()
            .map(|p| Demand {
                plane: p.node_id.as_str(),
                rps: p
                    .limits
                    .as_ref()
                    .and_then(|limits| limits.get(&id))
                    .map(|usage| usage.offered_rps),
            })
            .collect();
        for (node, share) in divide(budget, &demands) {
            by_node.entry(node.to_owned()).or_default().push(RateShare {
                limit: id.clone(),
                rps: share.rps,
                burst: share.burst,
            });
        }
    }
    ShareTable {
        version,
        data_planes: u32::try_from(counting.len()).unwrap_or(u32::MAX),
        by_node,
    }
}

/// Whether `config` has a limit for the whole fleet to divide.
fn has_fleet_limits(config: &Config) -> bool {
    config
        .rate_limits()
        .iter()
        .any(|(_, limit)| limit.all.is_some() && limit.scope == RateScope::Fleet)
}

/// Keeps `shares` divided until `shutdown`.
pub(crate) async fn run(
    state: Arc<ConfigState>,
    fleet: Arc<Fleet>,
    peers: Option<Peers>,
    shares: watch::Sender<Arc<ShareTable>>,
    shutdown: CancellationToken,
) {
    let mut snapshots = state.subscribe();
    let mut changes = fleet.changes();
    let mut reports = fleet.reports();
    let mut ticks = tokio::time::interval(SHARE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let current = state.current();
        let divided_at = Instant::now();
        // Without a fleet-wide limit there is nothing to divide: no need
        // to copy the fleet, and no table that changes with every join,
        // which would wake every stream for nothing.
        let table = if has_fleet_limits(&current.config) {
            let planes = every_plane(&fleet, peers.as_ref()).await;
            divide_fleet(
                &current.config,
                current.version,
                &planes,
                divided_at,
                fleet.expiry(),
            )
        } else {
            ShareTable {
                version: current.version,
                ..ShareTable::default()
            }
        };
        shares.send_if_modified(|old| {
            if **old == table {
                return false;
            }
            *old = Arc::new(table);
            true
        });
        tokio::select! {
            _ = ticks.tick() => {}
            changed = snapshots.changed() => if changed.is_err() { return },
            // Joins, departures, health flips: at once, unless the last
            // division was a moment ago, so thousands of data planes
            // joining together cost a few divisions, not one each.
            changed = changes.changed() => {
                if changed.is_err() { return }
                tokio::time::sleep_until(divided_at + MIN_INTERVAL).await;
            }
            // The demand a share follows.
            changed = reports.changed() => {
                if changed.is_err() { return }
                tokio::time::sleep(MIN_INTERVAL).await;
            }
            () = shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
#[path = "shares_tests.rs"]
mod tests;
