//! The health state machine of one member.
//!
//! A member leaves rotation after `max_consecutive_failures` failed probes or
//! calls in a row and comes back on the first successful *probe*. Only
//! outcomes that say something about the member count: the caller classifies
//! errors first (a tool result with `isError: true` is a success here).
//!
//! A successful call does not readmit an ejected member (it can only happen
//! when a caller names the server directly): readmission is paced by the
//! probe period, so a flapping member cannot oscillate faster than that.

/// What one probe or call told us about a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An active probe got an answer: resets failures and readmits.
    ProbeSuccess,
    /// A call got an answer: resets failures of a member in rotation.
    CallSuccess,
    /// The member could not be reached, failed at the transport level,
    /// answered 5xx or timed out.
    Failure,
    /// The member has calls outstanding, sent nothing for its stall
    /// timeout, and failed the probe that checked: it is hung, not busy.
    /// Ejects at once, whatever the failure count.
    Hung,
}

/// A change of rotation caused by an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The member left rotation.
    Ejected,
    /// The member came back into rotation.
    Restored,
}

/// Health of one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    healthy: bool,
    consecutive_failures: u32,
    max_consecutive_failures: u32,
}

// === impl Health ===

impl Health {
    /// A healthy member that leaves rotation after `max_consecutive_failures`
    /// failures in a row (at least 1).
    pub fn new(max_consecutive_failures: u32) -> Self {
        Self {
            healthy: true,
            consecutive_failures: 0,
            max_consecutive_failures: max_consecutive_failures.max(1),
        }
    }

    /// A member that starts out of rotation and comes in with its first
    /// successful probe (the fleet sees it failing).
    pub fn out_of_rotation(max_consecutive_failures: u32) -> Self {
        Self {
            healthy: false,
            ..Self::new(max_consecutive_failures)
        }
    }

    /// Whether the member is in rotation.
    pub fn is_healthy(&self) -> bool {
        self.healthy
    }

    /// Failures since the last success.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// Failures in a row that take the member out of rotation.
    pub fn max_consecutive_failures(&self) -> u32 {
        self.max_consecutive_failures
    }

    /// Changes the ejection threshold, keeping the current state.
    pub fn set_max_consecutive_failures(&mut self, max: u32) {
        self.max_consecutive_failures = max.max(1);
    }

    /// Records an outcome and returns the rotation change it caused, if any.
    pub fn observe(&mut self, outcome: Outcome) -> Option<Transition> {
        match outcome {
            Outcome::CallSuccess => {
                if self.healthy {
                    self.consecutive_failures = 0;
                }
                None
            }
            Outcome::ProbeSuccess => {
                self.consecutive_failures = 0;
                if self.healthy {
                    None
                } else {
                    self.healthy = true;
                    Some(Transition::Restored)
                }
            }
            Outcome::Hung => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                if self.healthy {
                    self.healthy = false;
                    Some(Transition::Ejected)
                } else {
                    None
                }
            }
            Outcome::Failure => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                if self.healthy && self.consecutive_failures >= self.max_consecutive_failures {
                    self.healthy = false;
                    Some(Transition::Ejected)
                } else {
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A member stays in rotation until the threshold is reached, then leaves.
    #[test]
    fn ejected_after_threshold_failures() {
        let mut h = Health::new(3);
        assert_eq!(h.observe(Outcome::Failure), None);
        assert_eq!(h.observe(Outcome::Failure), None);
        assert!(h.is_healthy());
        assert_eq!(h.observe(Outcome::Failure), Some(Transition::Ejected));
        assert!(!h.is_healthy());
        assert_eq!(h.observe(Outcome::Failure), None);
        assert_eq!(h.consecutive_failures(), 4);
    }

    /// A success in between resets the count, so failures must be consecutive.
    #[test]
    fn a_hung_member_leaves_at_once() {
        let mut h = Health::new(3);
        assert_eq!(h.observe(Outcome::Hung), Some(Transition::Ejected));
        assert_eq!(h.observe(Outcome::Hung), None);
        assert_eq!(h.consecutive_failures(), 2);
        assert_eq!(h.observe(Outcome::ProbeSuccess), Some(Transition::Restored));
    }

    #[test]
    fn success_resets_the_count() {
        let mut h = Health::new(2);
        h.observe(Outcome::Failure);
        h.observe(Outcome::CallSuccess);
        assert_eq!(h.observe(Outcome::Failure), None);
        assert!(h.is_healthy());
    }

    /// Only a probe readmits: a call that happened to succeed does not.
    #[test]
    fn call_success_does_not_readmit() {
        let mut h = Health::new(1);
        h.observe(Outcome::Failure);
        assert_eq!(h.observe(Outcome::CallSuccess), None);
        assert!(!h.is_healthy());
        assert_eq!(h.consecutive_failures(), 1);
        assert_eq!(h.observe(Outcome::ProbeSuccess), Some(Transition::Restored));
    }

    /// One successful probe brings an ejected member back.
    #[test]
    fn one_success_restores() {
        let mut h = Health::new(1);
        assert_eq!(h.observe(Outcome::Failure), Some(Transition::Ejected));
        assert_eq!(h.observe(Outcome::ProbeSuccess), Some(Transition::Restored));
        assert!(h.is_healthy());
        assert_eq!(h.consecutive_failures(), 0);
    }
}
