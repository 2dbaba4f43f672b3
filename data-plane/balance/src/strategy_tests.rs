use proptest::prelude::*;

use super::*;

fn healthy(n: usize) -> Vec<Candidate> {
    vec![
        Candidate {
            eligible: true,
            weight: 1,
            priority: 1,
            in_flight: 0,
            ramp_percent: 100,
            latency_micros: 0,
        };
        n
    ]
}

fn counts(b: &Balancer, members: &[Candidate], picks: usize) -> Vec<usize> {
    let mut counts = vec![0; members.len()];
    for _ in 0..picks {
        counts[b.order(members)[0]] += 1;
    }
    counts
}

const ALL: [StrategyKind; 5] = [
    StrategyKind::RoundRobin,
    StrategyKind::Random,
    StrategyKind::LeastConnections,
    StrategyKind::WeightedRoundRobin,
    StrategyKind::Priority,
];

/// Round robin gives each of three members exactly a third of 30 calls.
#[test]
fn round_robin_is_even() {
    let b = Balancer::new(StrategyKind::RoundRobin, 0);
    assert_eq!(counts(&b, &healthy(3), 30), [10, 10, 10]);
}

/// When a member leaves, the one after it does not inherit its share.
#[test]
fn round_robin_stays_even_without_a_member() {
    let b = Balancer::new(StrategyKind::RoundRobin, 0);
    let mut members = healthy(3);
    members[0].eligible = false;
    assert_eq!(counts(&b, &members, 30), [0, 15, 15]);
}

/// Smooth WRR with weights 3/1/1 interleaves instead of bursting: whatever
/// point of its cycle a balancer starts at, it follows nginx's order.
#[test]
fn weighted_round_robin_is_smooth() {
    let cycle = [0, 1, 0, 2, 0];
    for seed in 0..20 {
        let b = Balancer::new(StrategyKind::WeightedRoundRobin, seed);
        let mut members = healthy(3);
        members[0].weight = 3;
        let picks: Vec<usize> = (0..10).map(|_| b.order(&members)[0]).collect();
        let follows = (0..5).any(|k| (0..10).all(|i| picks[i] == cycle[(k + i) % 5]));
        assert!(follows, "seed {seed}: {picks:?} is not the smooth order");
    }
}

/// Balancers start at a random point of the rotation, so processes started
/// together do not all send their first call to the same member.
#[test]
fn new_balancers_start_at_random_points() {
    for kind in [StrategyKind::RoundRobin, StrategyKind::WeightedRoundRobin] {
        let mut firsts = [0; 3];
        for seed in 0..300 {
            firsts[Balancer::new(kind, seed).order(&healthy(3))[0]] += 1;
        }
        assert!(firsts.iter().all(|&n| n > 50), "{kind}: {firsts:?}");
    }
}

/// Priority picks the lowest number while it is eligible, then the backup,
/// and goes back when the primary returns.
#[test]
fn priority_fails_over_and_back() {
    let b = Balancer::new(StrategyKind::Priority, 0);
    let mut members = healthy(2);
    members[0].priority = 2;
    members[1].priority = 1;
    assert_eq!(b.order(&members), [1, 0]);
    members[1].eligible = false;
    assert_eq!(b.order(&members), [0]);
    members[1].eligible = true;
    assert_eq!(b.order(&members)[0], 1);
}

/// Least connections avoids a busy member and rotates among idle ones.
#[test]
fn least_connections_avoids_busy_member() {
    let b = Balancer::new(StrategyKind::LeastConnections, 0);
    let mut members = healthy(3);
    members[0].in_flight = 5;
    assert_eq!(counts(&b, &members, 10), [0, 5, 5]);
}

/// Random with a fixed seed is reproducible and close to uniform.
#[test]
fn random_is_seeded_and_uniform() {
    let picks = |seed| {
        counts(
            &Balancer::new(StrategyKind::Random, seed),
            &healthy(3),
            3000,
        )
    };
    assert_eq!(picks(7), picks(7));
    for n in picks(7) {
        assert!((900..=1100).contains(&n), "{n}");
    }
}

/// No member is eligible: nothing to try, for every strategy.
#[test]
fn no_eligible_member_gives_empty_order() {
    let mut members = healthy(2);
    members.iter_mut().for_each(|m| m.eligible = false);
    for kind in ALL {
        assert!(
            Balancer::new(kind, 0).order(&members).is_empty(),
            "{kind:?}"
        );
        assert!(Balancer::new(kind, 0).order(&[]).is_empty(), "{kind:?}");
    }
}

/// A member ramping up after coming back gets about its share of the
/// calls it would get at full weight, and the others take the rest.
#[test]
fn a_ramping_member_gets_its_share() {
    for kind in [
        StrategyKind::RoundRobin,
        StrategyKind::Random,
        StrategyKind::LeastConnections,
    ] {
        let mut members = healthy(3);
        members[2].ramp_percent = 20;
        let got = counts(&Balancer::new(kind, 7), &members, 3000);
        // At full weight each gets 1000; at 20 % the third gets about 200.
        assert!((120..=300).contains(&got[2]), "{kind}: {got:?}");
        assert!(got[0] > 1200 && got[1] > 1200, "{kind}: {got:?}");
    }
}

/// Weighted round robin scales a ramping member's weight exactly.
#[test]
fn weighted_ramp_scales_the_weight() {
    let mut members = healthy(2);
    members[0].weight = 2;
    members[1].weight = 2;
    members[1].ramp_percent = 50;
    let b = Balancer::new(StrategyKind::WeightedRoundRobin, 0);
    assert_eq!(counts(&b, &members, 300), [200, 100]);
}

/// Slow start hands calls only to peers: a primary coming back takes all
/// the calls at once, not a tenth with the backup taking the rest.
#[test]
fn priority_fails_back_at_once() {
    let mut members = healthy(2);
    members[1].priority = 2;
    members[0].ramp_percent = 10;
    let got = counts(&Balancer::new(StrategyKind::Priority, 0), &members, 50);
    assert_eq!(got, [50, 0]);
}

/// A ramping member that is the only one left still takes every call.
#[test]
fn a_ramping_member_alone_takes_every_call() {
    let mut members = healthy(2);
    members[0].eligible = false;
    members[1].ramp_percent = 10;
    let got = counts(&Balancer::new(StrategyKind::RoundRobin, 0), &members, 50);
    assert_eq!(got, [0, 50]);
}

fn candidate() -> impl Strategy<Value = Candidate> {
    (any::<bool>(), 1u32..10, 0i32..3, 0u32..4).prop_map(
        |(eligible, weight, priority, in_flight)| Candidate {
            eligible,
            weight,
            priority,
            in_flight,
            ramp_percent: 100,
            latency_micros: 0,
        },
    )
}

fn kind() -> impl Strategy<Value = StrategyKind> {
    proptest::sample::select(ALL.to_vec())
}

proptest! {
    /// Every order lists each eligible member exactly once and nothing else,
    /// however eligibility changes between calls.
    #[test]
    fn order_is_exactly_the_eligible_members(
        kind in kind(),
        seed in any::<u64>(),
        rounds in proptest::collection::vec(proptest::collection::vec(candidate(), 4), 1..20),
    ) {
        let b = Balancer::new(kind, seed);
        for members in rounds {
            let mut order = b.order(&members);
            order.sort_unstable();
            let eligible: Vec<usize> = (0..members.len()).filter(|&i| members[i].eligible).collect();
            prop_assert_eq!(order, eligible);
        }
    }

    /// Round robin never picks the same member twice in a row while another
    /// member is eligible.
    #[test]
    fn round_robin_never_repeats(
        rounds in proptest::collection::vec(proptest::collection::vec(any::<bool>(), 4), 2..40),
    ) {
        let b = Balancer::new(StrategyKind::RoundRobin, 0);
        let mut previous = None;
        for eligible in rounds {
            let members: Vec<Candidate> = eligible
                .iter()
                .map(|&e| Candidate { eligible: e, weight: 1, priority: 1, in_flight: 0, ramp_percent: 100, latency_micros: 0 })
                .collect();
            let order = b.order(&members);
            if let (Some(prev), Some(&pick)) = (previous, order.first())
                && order.len() > 1
            {
                prop_assert_ne!(prev, pick);
            }
            previous = order.first().copied().or(previous);
        }
    }

    /// Over every full cycle (sum of weights picks) each member gets exactly
    /// its weight, from any starting state.
    #[test]
    fn weighted_shares_are_exact_per_cycle(
        weights in proptest::collection::vec(1u32..8, 1..6),
        warmup in 0usize..20,
        cycles in 1usize..4,
    ) {
        let members: Vec<Candidate> = weights
            .iter()
            .map(|&w| Candidate { eligible: true, weight: w, priority: 1, in_flight: 0, ramp_percent: 100, latency_micros: 0 })
            .collect();
        let b = Balancer::new(StrategyKind::WeightedRoundRobin, 0);
        counts(&b, &members, warmup);
        let total: u32 = weights.iter().sum();
        for _ in 0..cycles {
            let got = counts(&b, &members, total as usize);
            let want: Vec<usize> = weights.iter().map(|&w| w as usize).collect();
            prop_assert_eq!(got, want);
        }
    }

    /// Priority never skips an eligible member with a lower number.
    #[test]
    fn priority_never_skips_a_lower_number(members in proptest::collection::vec(candidate(), 1..6)) {
        let b = Balancer::new(StrategyKind::Priority, 0);
        if let Some(&pick) = b.order(&members).first() {
            let best = members.iter().filter(|m| m.eligible).map(|m| m.priority).min();
            prop_assert_eq!(Some(members[pick].priority), best);
        }
    }

    /// Least connections always picks a member with the fewest in flight.
    #[test]
    fn least_connections_picks_a_least_loaded(members in proptest::collection::vec(candidate(), 1..6)) {
        let b = Balancer::new(StrategyKind::LeastConnections, 0);
        if let Some(&pick) = b.order(&members).first() {
            let least = members.iter().filter(|m| m.eligible).map(|m| m.in_flight).min();
            prop_assert_eq!(Some(members[pick].in_flight), least);
        }
    }
}

fn with_latency(latencies: &[u64]) -> Vec<Candidate> {
    let mut members = healthy(latencies.len());
    for (m, &l) in members.iter_mut().zip(latencies) {
        m.latency_micros = l;
    }
    members
}

/// A member ten times slower than the others gets under a tenth of the
/// calls (none at all while nothing is in flight: two random choices
/// always include a faster one).
#[test]
fn least_latency_avoids_a_slow_member() {
    let b = Balancer::new(StrategyKind::LeastLatency, 3);
    let got = counts(&b, &with_latency(&[2_000, 2_000, 20_000]), 3000);
    assert!(got[2] < 300, "{got:?}");
    assert!(got[0] > 1200 && got[1] > 1200, "{got:?}");
}

/// Calls in flight count: a fast member with a queue loses to a slower
/// idle one (latency times calls in flight plus one).
#[test]
fn least_latency_weighs_calls_in_flight() {
    let b = Balancer::new(StrategyKind::LeastLatency, 0);
    let mut members = with_latency(&[1_000, 2_000]);
    members[0].in_flight = 9;
    assert_eq!(counts(&b, &members, 100), [0, 100]);
}

/// A member without samples costs the mean of the others: it beats the
/// slower, loses to the faster, and is never starved.
#[test]
fn a_new_member_gets_a_neutral_score() {
    let b = Balancer::new(StrategyKind::LeastLatency, 0);
    let got = counts(&b, &with_latency(&[1_000, 3_000, 0]), 3000);
    assert!(got[0] > got[2] && got[2] > got[1], "{got:?}");
    assert!(got[2] > 500, "{got:?}");
}

/// The failover order after the pick is by cost, cheapest first.
#[test]
fn least_latency_fails_over_to_the_next_cheapest() {
    let b = Balancer::new(StrategyKind::LeastLatency, 0);
    for _ in 0..20 {
        let order = b.order(&with_latency(&[5_000, 1_000, 3_000, 9_000]));
        let rest: Vec<usize> = order[1..].to_vec();
        let mut sorted = rest.clone();
        sorted.sort_by_key(|&i| [5_000, 1_000, 3_000, 9_000][i]);
        assert_eq!(rest, sorted, "{order:?}");
    }
}

/// A peek takes no turn: a client's era probe and the `initialize` after
/// it land on the same member, and sessions still spread evenly (the
/// Python SDK's `auto` mode sends both).
#[test]
fn a_peek_takes_no_turn() {
    for kind in [StrategyKind::RoundRobin, StrategyKind::WeightedRoundRobin] {
        for seed in 0..10 {
            let b = Balancer::new(kind, seed);
            let members = healthy(2);
            let mut sessions = [0; 2];
            for _ in 0..10 {
                let probed = b.peek(&members)[0];
                let picked = b.order(&members)[0];
                assert_eq!(probed, picked, "{kind} seed {seed}");
                sessions[picked] += 1;
            }
            assert_eq!(sessions, [5, 5], "{kind} seed {seed}");
        }
    }
}
