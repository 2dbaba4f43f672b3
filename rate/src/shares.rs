//! A fleet's budget divided among its data planes by their demand.
//!
//! Every data plane gets a small floor, so a quiet one can still serve its
//! first calls at once; the rest goes in proportion to demand. The shares
//! always add up to the budget, so a fleet that wants more than the budget
//! admits what the config says, whatever the mix; one that wants less
//! refuses nothing, since every share is then above its demand.

use crate::bucket::Rate;

/// The part of a budget split evenly among all data planes, whatever they
/// ask for.
pub const FLOOR: f64 = 0.05;

/// The least burst a share gets (unless the budget's is smaller): a bucket
/// of one token loses what refills between two calls beyond that token,
/// so a data plane with a small share would admit less than it.
pub const MIN_BURST: f64 = 2.0;

/// What one data plane asks of a limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Demand<K> {
    /// Which data plane.
    pub plane: K,
    /// Calls a second it offered the limit recently (admitted or refused);
    /// `None` for a data plane that has not reported yet, which counts as
    /// the mean of the others.
    pub rps: Option<f64>,
}

/// Divides `budget` among `demands`: one share per data plane, in the same
/// order, their `rps` adding up to the budget's. Each burst is the budget's
/// burst in the same proportion, at least [`MIN_BURST`] (or the budget's
/// burst, if smaller).
pub fn divide<K: Clone>(budget: Rate, demands: &[Demand<K>]) -> Vec<(K, Rate)> {
    let n = demands.len();
    if n == 0 {
        return Vec::new();
    }
    let known: Vec<f64> = demands
        .iter()
        .filter_map(|d| d.rps)
        .filter(|r| r.is_finite())
        .map(|r| r.max(0.0))
        .collect();
    let mean = if known.is_empty() {
        1.0
    } else {
        known.iter().sum::<f64>() / known.len() as f64
    };
    let asks: Vec<f64> = demands
        .iter()
        .map(|d| match d.rps {
            Some(r) if r.is_finite() => r.max(0.0),
            _ => mean,
        })
        .collect();
    let floor = budget.rps * FLOOR / n as f64;
    let by_demand = proportional(budget.rps - floor * n as f64, &asks);
    demands
        .iter()
        .zip(by_demand)
        .map(|(d, extra)| {
            let rps = floor + extra;
            let burst = (budget.burst * rps / budget.rps)
                .max(MIN_BURST)
                .min(budget.burst);
            (d.plane.clone(), Rate::new(rps, burst))
        })
        .collect()
}

/// Splits `total` in proportion to `asks`, evenly when nobody asks.
fn proportional(total: f64, asks: &[f64]) -> Vec<f64> {
    let wanted: f64 = asks.iter().sum();
    asks.iter()
        .map(|ask| {
            if wanted > 0.0 {
                total * ask / wanted
            } else {
                total / asks.len() as f64
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn demands(rps: &[Option<f64>]) -> Vec<Demand<usize>> {
        rps.iter()
            .enumerate()
            .map(|(plane, &rps)| Demand { plane, rps })
            .collect()
    }

    fn rps(shares: &[(usize, Rate)]) -> Vec<f64> {
        shares
            .iter()
            .map(|(_, r)| (r.rps * 100.0).round() / 100.0)
            .collect()
    }

    #[test]
    fn shares_follow_demand_when_the_fleet_wants_more_than_the_budget() {
        let budget = Rate::new(100.0, 50.0);
        let shares = divide(budget, &demands(&[Some(160.0), Some(30.0), Some(10.0)]));
        // 5 % evenly, 95 % by demand (80/15/5 %).
        assert_eq!(rps(&shares), vec![77.67, 15.92, 6.42]);
        assert!((shares[0].1.burst - 38.83).abs() < 0.01);
    }

    #[test]
    fn a_fleet_wanting_less_than_the_budget_gets_more_than_it_wants_everywhere() {
        let budget = Rate::new(100.0, 100.0);
        let shares = divide(budget, &demands(&[Some(60.0), Some(2.0)]));
        assert_eq!(rps(&shares), vec![94.44, 5.56]);
    }

    #[test]
    fn a_plane_not_heard_from_yet_counts_as_the_mean() {
        let budget = Rate::new(90.0, 90.0);
        let shares = divide(budget, &demands(&[Some(100.0), Some(50.0), None]));
        assert_eq!(rps(&shares), vec![39.5, 20.5, 30.0]);
        let shares = divide(budget, &demands(&[None, None, None]));
        assert_eq!(rps(&shares), vec![30.0, 30.0, 30.0]);
    }

    #[test]
    fn a_fleet_asking_nothing_splits_evenly() {
        let shares = divide(Rate::new(10.0, 10.0), &demands(&[Some(0.0), Some(0.0)]));
        assert_eq!(rps(&shares), vec![5.0, 5.0]);
    }

    #[test]
    fn bursts_are_at_least_two_and_never_above_the_budgets() {
        let shares = divide(Rate::new(10.0, 20.0), &demands(&[Some(1000.0), Some(0.0)]));
        assert!(
            shares.iter().all(|(_, r)| r.burst >= MIN_BURST),
            "{shares:?}"
        );
        let shares = divide(Rate::new(10.0, 1.0), &demands(&[Some(1.0), Some(1.0)]));
        assert!(shares.iter().all(|(_, r)| r.burst == 1.0), "{shares:?}");
    }

    proptest! {
        #[test]
        fn shares_always_sum_to_the_budget(
            budget in 0.1f64..10_000.0,
            asks in proptest::collection::vec(proptest::option::of(0.0f64..10_000.0), 1..40),
        ) {
            let shares = divide(Rate::new(budget, budget), &demands(&asks));
            prop_assert_eq!(shares.len(), asks.len());
            let sum: f64 = shares.iter().map(|(_, r)| r.rps).sum();
            prop_assert!((sum - budget).abs() < budget * 1e-9, "{} != {}", sum, budget);
            prop_assert!(shares.iter().all(|(_, r)| r.rps >= budget * FLOOR / asks.len() as f64 - 1e-9));
        }

        #[test]
        fn more_demand_never_means_a_smaller_share(
            asks in proptest::collection::vec(0.0f64..1000.0, 2..10),
        ) {
            let known: Vec<Option<f64>> = asks.iter().copied().map(Some).collect();
            let shares = divide(Rate::new(100.0, 100.0), &demands(&known));
            for (a, sa) in asks.iter().zip(&shares) {
                for (b, sb) in asks.iter().zip(&shares) {
                    if a > b {
                        prop_assert!(sa.1.rps >= sb.1.rps - 1e-9);
                    }
                }
            }
        }
    }
}
