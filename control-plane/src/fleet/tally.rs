//! The health that the counting data planes report, per server, as running
//! counts: a report then costs as much as its own members, not a pass over
//! every data plane of the fleet, which with thousands of data planes each
//! reporting every few seconds would take the control plane's CPU.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use hangar_proto::v1::MemberHealth;

/// Per server: how many counting data planes report it, and how many of
/// them see it failing.
#[derive(Debug, Default)]
pub(crate) struct HealthTally {
    servers: HashMap<String, Counts>,
    /// Whether a count changed since [`HealthTally::take_changed`].
    changed: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    reporting: usize,
    failing: usize,
}

impl HealthTally {
    /// Counts one data plane's report.
    pub(crate) fn add(&mut self, health: &BTreeMap<String, MemberHealth>) {
        for (id, member) in health {
            let counts = match self.servers.get_mut(id) {
                Some(counts) => counts,
                None => self.servers.entry(id.clone()).or_default(),
            };
            counts.reporting += 1;
            counts.failing += usize::from(!member.healthy);
            self.changed = true;
        }
    }

    /// Stops counting one data plane's report, as given to [`HealthTally::add`].
    pub(crate) fn remove(&mut self, health: &BTreeMap<String, MemberHealth>) {
        for (id, member) in health {
            let Some(counts) = self.servers.get_mut(id) else {
                continue;
            };
            counts.reporting = counts.reporting.saturating_sub(1);
            counts.failing = counts.failing.saturating_sub(usize::from(!member.healthy));
            if counts.reporting == 0 {
                self.servers.remove(id);
            }
            self.changed = true;
        }
    }

    /// Whether a count changed since the last call.
    pub(crate) fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// Servers that at least `min_failing` data planes, and more than
    /// `quorum` of those that report them, see failing.
    pub(crate) fn ejected(&self, quorum: f64, min_failing: usize) -> BTreeSet<String> {
        self.servers
            .iter()
            .filter(|(_, c)| {
                c.failing >= min_failing && c.failing as f64 > quorum * c.reporting as f64
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Servers that every data plane reporting them sees failing.
    pub(crate) fn unhealthy_everywhere(&self) -> HashSet<String> {
        self.servers
            .iter()
            .filter(|(_, c)| c.failing == c.reporting)
            .map(|(id, _)| id.clone())
            .collect()
    }
}

/// Same servers, each as healthy or not in both: all the tally counts.
pub(crate) fn same_rotation(
    a: &BTreeMap<String, MemberHealth>,
    b: &BTreeMap<String, MemberHealth>,
) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ka, va), (kb, vb))| ka == kb && va.healthy == vb.healthy)
}
