//! Strategies that order a group's members for one call.
//!
//! [`Balancer::order`] returns the indices of the eligible members in the
//! order they should be tried: the first is the strategy's pick, the rest are
//! the failover order for a call that could not reach the first. Ineligible
//! (unhealthy or disabled) members are never returned.
//!
//! Rotation is kept as "the member picked last", not as a counter modulo the
//! eligible count: a counter shifts when a member leaves, which can pick the
//! same member twice in a row and give the member after a dead one a double
//! share. Starting after the last pick has neither problem.

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The five strategies of the config. This is the one strategy type of
/// Hangar: the config parses into it, the proto's `Strategy` maps to and
/// from it (in `hangar-proto`), and [`StrategyKind::as_str`] is its one name
/// everywhere (config, status, metric labels).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum StrategyKind {
    /// `round_robin`: fair rotation over eligible members. MCP Hangar's default.
    #[default]
    RoundRobin,
    /// `random`: uniform over eligible members.
    Random,
    /// `least_connections`: fewest in-flight calls, ties rotated.
    LeastConnections,
    /// `weighted_round_robin`: smooth weighted round robin (nginx).
    WeightedRoundRobin,
    /// `priority`: lowest priority number among eligible members, ties rotated.
    Priority,
    /// `least_latency`: the power of two choices over each member's peak
    /// EWMA latency times its calls in flight plus one (Linkerd's
    /// balancer). Hangar's own; MCP Hangar has no latency-aware strategy.
    LeastLatency,
}

impl StrategyKind {
    /// Every strategy, in the order the docs list them.
    pub const ALL: &'static [StrategyKind] = &[
        Self::RoundRobin,
        Self::Random,
        Self::LeastConnections,
        Self::WeightedRoundRobin,
        Self::Priority,
        Self::LeastLatency,
    ];

    /// The strategy named `name` (exact snake_case match), if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| s.as_str() == name)
    }

    /// The config name (`round_robin`, ...), used everywhere the strategy is named.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RoundRobin => "round_robin",
            Self::Random => "random",
            Self::LeastConnections => "least_connections",
            Self::WeightedRoundRobin => "weighted_round_robin",
            Self::Priority => "priority",
            Self::LeastLatency => "least_latency",
        }
    }
}

impl std::fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
    /// Its share in percent (1 to 100): below 100 while it ramps up after
    /// coming back into rotation (slow start).
    pub ramp_percent: u8,
    /// Its latency for this call, in microseconds (a [`PeakEwma`](crate::PeakEwma));
    /// 0 while unknown. Only `least_latency` reads it.
    pub latency_micros: u64,
}

/// Per-group balancing state.
#[derive(Debug)]
pub struct Balancer {
    kind: StrategyKind,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Index of the member picked last; rotation continues after it.
    last: Option<usize>,
    rng: StdRng,
    /// Smooth WRR current weights, by member index.
    current_weights: Vec<i64>,
}

// === impl Balancer ===

impl Balancer {
    /// A balancer for `kind`; `seed` makes `random` reproducible.
    pub fn new(kind: StrategyKind, seed: u64) -> Self {
        Self {
            kind,
            state: Mutex::new(State {
                last: None,
                rng: StdRng::seed_from_u64(seed),
                current_weights: Vec::new(),
            }),
        }
    }

    /// The strategy this balancer runs.
    pub fn kind(&self) -> StrategyKind {
        self.kind
    }

    /// Eligible members in the order to try them for one call.
    pub fn order(&self, members: &[Candidate]) -> Vec<usize> {
        let mut state = self.state.lock();
        self.order_locked(&mut state, members)
    }

    /// The order the next call would get, without taking its turn: for a
    /// request that is not a call, such as a client's era probe
    /// (`server/discover`), so the `initialize` that follows it lands on
    /// the same member and sessions still spread evenly.
    pub fn peek(&self, members: &[Candidate]) -> Vec<usize> {
        let mut state = self.state.lock();
        let n = members.len();
        if self.kind == StrategyKind::WeightedRoundRobin {
            let State {
                current_weights,
                rng,
                ..
            } = &mut *state;
            warm_up(current_weights, members, rng);
        }
        let (last, weights) = (state.last, state.current_weights.clone());
        let order = self.order_locked(&mut state, members);
        // A balancer that never picked keeps the start point it drew, so
        // the next call starts at the member this one saw first.
        state.last = last.or_else(|| order.first().map(|&pick| (pick + n - 1) % n));
        state.current_weights = weights;
        order
    }

    fn order_locked(&self, state: &mut State, members: &[Candidate]) -> Vec<usize> {
        let n = members.len();
        // A new balancer (a new process, or a new snapshot) starts at a
        // random point of the rotation, so processes started together, such
        // as one per IDE window or one per pipeline step, do not all send
        // their first call to the first member.
        let after_last = match state.last {
            Some(last) => (last + 1) % n.max(1),
            None => state.rng.random_range(0..n.max(1)),
        };
        let start = match self.kind {
            StrategyKind::Random => {
                let eligible = members.iter().filter(|m| m.eligible).count();
                if eligible == 0 {
                    return Vec::new();
                }
                let nth = state.rng.random_range(0..eligible);
                eligible_indices(members).nth(nth).unwrap_or(0)
            }
            StrategyKind::WeightedRoundRobin => {
                let State {
                    current_weights,
                    rng,
                    ..
                } = state;
                match smooth_weighted_pick(current_weights, members, rng) {
                    Some(pick) => pick,
                    None => return Vec::new(),
                }
            }
            StrategyKind::LeastLatency => {
                let order = least_latency(members, &mut state.rng);
                state.last = order.first().copied();
                return order;
            }
            _ => after_last,
        };
        let mut order: Vec<usize> = (0..n)
            .map(|k| (start + k) % n)
            .filter(|&i| members[i].eligible)
            .collect();
        match self.kind {
            // Stable sorts keep the rotation among equals, so ties are fair.
            StrategyKind::LeastConnections => order.sort_by_key(|&i| members[i].in_flight),
            StrategyKind::Priority => order.sort_by_key(|&i| members[i].priority),
            _ => {}
        }
        // Rotation goes on after the strategy's pick, even if slow start
        // gives its call to another member.
        if let Some(&pick) = order.first() {
            state.last = Some(pick);
        }
        // Weighted round robin scales the weight instead.
        if self.kind != StrategyKind::WeightedRoundRobin {
            slow_start(self.kind, &mut order, members, &mut state.rng);
        }
        order
    }

    /// Records that member `index` took a call in place of the pick (the
    /// pick could not be reached), so rotation continues after it.
    pub fn record_pick(&self, index: usize) {
        self.state.lock().last = Some(index);
    }
}

/// A pick that is ramping up keeps the call with the chance of its share;
/// otherwise one of its peers (members the strategy ranks the same) takes
/// it, chosen at random so no one peer gets all the ramping one's calls.
/// The ramping member goes to the end of the order, still there for
/// failover.
fn slow_start(kind: StrategyKind, order: &mut Vec<usize>, members: &[Candidate], rng: &mut StdRng) {
    let Some(&pick) = order.first() else {
        return;
    };
    let share = members[pick].ramp_percent.clamp(1, 100);
    if share == 100 || order.len() < 2 || rng.random_range(0..100) < share {
        return;
    }
    // The order is sorted by rank, so the peers are a run from 1. Only a
    // peer takes its calls: slow start never sends a primary's calls to a
    // backup, nor a least loaded member's to a busier one.
    let rank = |i: usize| match kind {
        StrategyKind::LeastConnections => i64::from(members[i].in_flight),
        StrategyKind::Priority => i64::from(members[i].priority),
        _ => 0,
    };
    let peers = order[1..]
        .iter()
        .take_while(|&&i| rank(i) == rank(pick))
        .count();
    if peers == 0 {
        return;
    }
    let taker = rng.random_range(1..=peers);
    order.swap(0, taker);
    let deferred = order.remove(taker);
    order.push(deferred);
}

/// `least_latency`: of two eligible members drawn at random, the one whose
/// next call should end soonest (latency times calls in flight plus one,
/// over its slow-start share); then the rest by that cost, for failover.
/// A member without samples costs the mean of those with some, so a new
/// member is neither shunned nor flooded. Two random choices rather than
/// the best of all: every data plane balancing on stale numbers would
/// otherwise herd onto the same member.
fn least_latency(members: &[Candidate], rng: &mut StdRng) -> Vec<usize> {
    let mut order: Vec<usize> = eligible_indices(members).collect();
    if order.len() < 2 {
        return order;
    }
    let known: Vec<u64> = order
        .iter()
        .map(|&i| members[i].latency_micros)
        .filter(|&l| l > 0)
        .collect();
    let neutral = match known.len() {
        0 => 1,
        n => known.iter().sum::<u64>() / n as u64,
    };
    let cost = |i: usize| {
        let m = &members[i];
        let latency = u128::from(if m.latency_micros == 0 {
            neutral
        } else {
            m.latency_micros
        });
        latency * u128::from(m.in_flight + 1) * 100 / u128::from(m.ramp_percent.clamp(1, 100))
    };
    let first = rng.random_range(0..order.len());
    let mut second = rng.random_range(0..order.len() - 1);
    if second >= first {
        second += 1;
    }
    let (a, b) = (order[first], order[second]);
    let pick = if cost(b) < cost(a) { b } else { a };
    order.retain(|&i| i != pick);
    order.sort_by_key(|&i| cost(i));
    order.insert(0, pick);
    order
}

fn eligible_indices(members: &[Candidate]) -> impl Iterator<Item = usize> + '_ {
    (0..members.len()).filter(|&i| members[i].eligible)
}

/// nginx's smooth weighted round robin: every eligible member gains its
/// weight, the largest wins and pays back the total. Over any run of
/// `total` picks each member is chosen exactly `weight` times, interleaved.
fn smooth_weighted_pick(
    current: &mut Vec<i64>,
    members: &[Candidate],
    rng: &mut StdRng,
) -> Option<usize> {
    warm_up(current, members, rng);
    smooth_weighted_step(current, members)
}

/// Sets up the smooth order's weights for `members` if they are new, at a
/// random point of it, as round robin starts at a random member.
fn warm_up(current: &mut Vec<i64>, members: &[Candidate], rng: &mut StdRng) {
    if current.len() != members.len() {
        *current = vec![0; members.len()];
        let total: u64 = members.iter().map(|m| u64::from(m.weight.max(1))).sum();
        for _ in 0..rng.random_range(0..total.max(1)) {
            smooth_weighted_step(current, members);
        }
    }
}

/// One step of the smooth order: every eligible member gains its weight,
/// the largest wins and pays back the total.
fn smooth_weighted_step(current: &mut [i64], members: &[Candidate]) -> Option<usize> {
    let mut total = 0i64;
    let mut best: Option<usize> = None;
    for i in eligible_indices(members) {
        // In hundredths, so a ramping member's share is exact.
        let ramp = i64::from(members[i].ramp_percent.clamp(1, 100));
        let weight = i64::from(members[i].weight.max(1)) * ramp;
        current[i] += weight;
        total += weight;
        if best.is_none_or(|b| current[i] > current[b]) {
            best = Some(i);
        }
    }
    let best = best?;
    current[best] -= total;
    Some(best)
}

#[cfg(test)]
#[path = "strategy_tests.rs"]
mod tests;
