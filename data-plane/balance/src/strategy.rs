//! Strategies that order a group's members for one call.
//!
//! [`Balancer::order`] returns the indices of the eligible members in the
//! order they should be tried: the first is the strategy's pick, the rest are
//! the failover order for a call that could not reach the first. Ineligible
//! (unhealthy or disabled) members are never returned.

use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The five strategies of the config, by their config names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StrategyKind {
    /// `round_robin`: fair rotation over eligible members.
    RoundRobin,
    /// `random`: uniform over eligible members.
    Random,
    /// `least_connections`: fewest in-flight calls, ties rotated.
    LeastConnections,
    /// `weighted_round_robin`: smooth weighted round robin (nginx).
    WeightedRoundRobin,
    /// `priority`: lowest priority number among eligible members, ties rotated.
    Priority,
}

/// What a strategy may know about one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Healthy and enabled: may receive calls.
    pub eligible: bool,
    /// Relative share for `weighted_round_robin` (at least 1).
    pub weight: u32,
    /// Lower is preferred by `priority`.
    pub priority: i32,
    /// Calls in flight to this member from this data plane.
    pub in_flight: u32,
}

/// Per-group balancing state.
#[derive(Debug)]
pub struct Balancer {
    kind: StrategyKind,
    /// Rotation counter shared by every strategy that breaks ties by rotation.
    next: AtomicUsize,
    rng: Mutex<StdRng>,
    /// Smooth WRR current weights, by member index.
    current_weights: Mutex<Vec<i64>>,
}

// === impl Balancer ===

impl Balancer {
    /// A balancer for `kind`; `seed` makes `random` reproducible.
    pub fn new(kind: StrategyKind, seed: u64) -> Self {
        Self {
            kind,
            next: AtomicUsize::new(0),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            current_weights: Mutex::new(Vec::new()),
        }
    }

    /// The strategy this balancer runs.
    pub fn kind(&self) -> StrategyKind {
        self.kind
    }

    /// Eligible members in the order to try them for one call.
    pub fn order(&self, members: &[Candidate]) -> Vec<usize> {
        let eligible: Vec<usize> = (0..members.len())
            .filter(|&i| members[i].eligible)
            .collect();
        if eligible.is_empty() {
            return eligible;
        }
        let start = match self.kind {
            StrategyKind::Random => self.rng.lock().random_range(0..eligible.len()),
            StrategyKind::WeightedRoundRobin => {
                let pick = self.smooth_weighted_pick(members, &eligible);
                eligible.iter().position(|&i| i == pick).unwrap_or(0)
            }
            _ => self.next.fetch_add(1, Ordering::Relaxed) % eligible.len(),
        };
        let mut order = eligible;
        order.rotate_left(start);
        match self.kind {
            // Stable sorts keep the rotation among equals, so ties are fair.
            StrategyKind::LeastConnections => order.sort_by_key(|&i| members[i].in_flight),
            StrategyKind::Priority => order.sort_by_key(|&i| members[i].priority),
            _ => {}
        }
        order
    }

    /// nginx's smooth weighted round robin: every eligible member gains its
    /// weight, the largest wins and pays back the total. Over any run of
    /// `total` picks each member is chosen exactly `weight` times, interleaved.
    fn smooth_weighted_pick(&self, members: &[Candidate], eligible: &[usize]) -> usize {
        let mut current = self.current_weights.lock();
        if current.len() != members.len() {
            *current = vec![0; members.len()];
        }
        let mut total = 0i64;
        let mut best = eligible[0];
        for &i in eligible {
            let weight = i64::from(members[i].weight.max(1));
            current[i] += weight;
            total += weight;
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy(n: usize) -> Vec<Candidate> {
        vec![
            Candidate {
                eligible: true,
                weight: 1,
                priority: 1,
                in_flight: 0
            };
            n
        ]
    }

    /// Round robin gives each of three members exactly a third of 30 calls.
    #[test]
    fn round_robin_is_even() {
        let b = Balancer::new(StrategyKind::RoundRobin, 0);
        let members = healthy(3);
        let mut counts = [0; 3];
        for _ in 0..30 {
            counts[b.order(&members)[0]] += 1;
        }
        assert_eq!(counts, [10, 10, 10]);
    }

    /// An ineligible member is never offered, not even as a failover.
    #[test]
    fn ineligible_member_is_skipped() {
        let b = Balancer::new(StrategyKind::RoundRobin, 0);
        let mut members = healthy(3);
        members[1].eligible = false;
        for _ in 0..10 {
            let order = b.order(&members);
            assert_eq!(order.len(), 2);
            assert!(!order.contains(&1));
        }
    }

    /// The failover order lists every other eligible member once.
    #[test]
    fn order_lists_all_eligible_members() {
        let b = Balancer::new(StrategyKind::RoundRobin, 0);
        let mut order = b.order(&healthy(4));
        order.sort();
        assert_eq!(order, [0, 1, 2, 3]);
    }

    /// Smooth WRR with weights 3/1/1 interleaves instead of bursting.
    #[test]
    fn weighted_round_robin_is_smooth() {
        let b = Balancer::new(StrategyKind::WeightedRoundRobin, 0);
        let mut members = healthy(3);
        members[0].weight = 3;
        let picks: Vec<usize> = (0..10).map(|_| b.order(&members)[0]).collect();
        assert_eq!(picks, [0, 1, 0, 2, 0, 0, 1, 0, 2, 0]);
    }

    /// Priority picks the lowest number while it is eligible, then the backup.
    #[test]
    fn priority_prefers_lowest_number() {
        let b = Balancer::new(StrategyKind::Priority, 0);
        let mut members = healthy(2);
        members[0].priority = 2;
        members[1].priority = 1;
        assert_eq!(b.order(&members)[0], 1);
        members[1].eligible = false;
        assert_eq!(b.order(&members), [0]);
    }

    /// Least connections avoids a member with calls in flight.
    #[test]
    fn least_connections_avoids_busy_member() {
        let b = Balancer::new(StrategyKind::LeastConnections, 0);
        let mut members = healthy(2);
        members[0].in_flight = 5;
        for _ in 0..4 {
            assert_eq!(b.order(&members)[0], 1);
        }
    }
}
