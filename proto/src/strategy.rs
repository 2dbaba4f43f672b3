//! The one mapping between the balancer's [`StrategyKind`] and the proto's
//! [`v1::Strategy`]: the control plane encodes with it, data planes decode.

use hangar_balance::StrategyKind;

use crate::v1;

impl From<StrategyKind> for v1::Strategy {
    fn from(strategy: StrategyKind) -> Self {
        match strategy {
            StrategyKind::RoundRobin => Self::RoundRobin,
            StrategyKind::Random => Self::Random,
            StrategyKind::LeastConnections => Self::LeastConnections,
            StrategyKind::WeightedRoundRobin => Self::WeightedRoundRobin,
            StrategyKind::Priority => Self::Priority,
            StrategyKind::LeastLatency => Self::LeastLatency,
        }
    }
}

/// A snapshot that names no strategy (`STRATEGY_UNSPECIFIED`, as an older
/// control plane may send) gets the config's default, round robin.
impl From<v1::Strategy> for StrategyKind {
    fn from(strategy: v1::Strategy) -> Self {
        match strategy {
            v1::Strategy::Random => Self::Random,
            v1::Strategy::LeastConnections => Self::LeastConnections,
            v1::Strategy::WeightedRoundRobin => Self::WeightedRoundRobin,
            v1::Strategy::Priority => Self::Priority,
            v1::Strategy::LeastLatency => Self::LeastLatency,
            v1::Strategy::RoundRobin | v1::Strategy::Unspecified => Self::RoundRobin,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_map_to_proto_and_back() {
        let names: Vec<&str> = StrategyKind::ALL
            .iter()
            .map(|&s| v1::Strategy::from(s).as_str_name())
            .collect();
        assert_eq!(
            names,
            [
                "STRATEGY_ROUND_ROBIN",
                "STRATEGY_RANDOM",
                "STRATEGY_LEAST_CONNECTIONS",
                "STRATEGY_WEIGHTED_ROUND_ROBIN",
                "STRATEGY_PRIORITY",
                "STRATEGY_LEAST_LATENCY",
            ]
        );
    }

    #[test]
    fn every_strategy_survives_the_wire() {
        for &kind in StrategyKind::ALL {
            assert_eq!(StrategyKind::from(v1::Strategy::from(kind)), kind);
        }
        assert_eq!(
            StrategyKind::from(v1::Strategy::Unspecified),
            StrategyKind::RoundRobin
        );
    }
}
