//! The state of a group, from how many of its members are in rotation. One
//! rule for both planes: the data plane's `hangar_status` (its own view)
//! and the control plane's `hangarctl status` (the fleet's view).

/// How a group stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// Every member is in rotation (on every data plane that reports it).
    Ready,
    /// Every member is in rotation somewhere, but some data plane has one
    /// out of rotation: that data plane's calls avoid it.
    Degraded,
    /// Some members are out, but at least `min_healthy` (and at least one)
    /// are in: calls are served.
    Partial,
    /// Fewer than `min_healthy` members, or none, are in: calls are refused.
    Unavailable,
    /// The group's circuit breaker is open: calls are refused until
    /// `min_healthy` members are back.
    CircuitOpen,
}

impl GroupState {
    /// The state of a group of `total` members with `healthy` in rotation.
    pub fn of(healthy: usize, total: usize, min_healthy: u32) -> Self {
        if healthy == 0 || healthy < min_healthy as usize {
            Self::Unavailable
        } else if healthy >= total {
            Self::Ready
        } else {
            Self::Partial
        }
    }

    /// A ready group is [`GroupState::Degraded`] while some data plane has
    /// one of its members out of rotation.
    pub fn with_local_outages(self, any: bool) -> Self {
        match self {
            Self::Ready if any => Self::Degraded,
            other => other,
        }
    }

    /// [`GroupState::of`], or [`GroupState::CircuitOpen`] while the
    /// circuit is open: that refuses calls whatever the members' health.
    pub fn with_circuit(self, circuit_open: bool) -> Self {
        if circuit_open {
            Self::CircuitOpen
        } else {
            self
        }
    }

    /// The name shown by status (`ready`, `degraded`, `partial`,
    /// `unavailable`, `circuit_open`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Degraded => "degraded",
            Self::Partial => "partial",
            Self::Unavailable => "unavailable",
            Self::CircuitOpen => "circuit_open",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_follows_members_in_rotation_and_min_healthy() {
        use GroupState::*;
        let cases = [
            ((3, 3, 1), Ready),
            ((2, 3, 1), Partial),
            ((2, 3, 2), Partial),
            ((1, 3, 2), Unavailable),
            ((0, 3, 1), Unavailable),
            // A group that serves nothing is never ready.
            ((0, 0, 1), Unavailable),
            ((0, 2, 0), Unavailable),
        ];
        for ((healthy, total, min), state) in cases {
            assert_eq!(
                GroupState::of(healthy, total, min),
                state,
                "{healthy}/{total} min {min}"
            );
        }
    }
}
