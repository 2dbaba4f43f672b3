//! Balancing strategies and the member health state machine of Hangar's data
//! plane. Pure and synchronous: no I/O, no clocks, seedable randomness, so
//! every decision can be tested exactly.
//!
//! # Layout
//! - [`strategy`]: [`Balancer`] orders a group's members for one call.
//! - [`health`]: [`Health`] turns call and probe outcomes into rotation changes.
//! - [`latency`]: [`PeakEwma`], a member's latency for `least_latency`.
//! - [`group`]: [`GroupState`], a group's state from its members in rotation.

pub mod group;
pub mod health;
pub mod latency;
pub mod strategy;

pub use group::GroupState;
pub use health::{Health, Outcome, Transition};
pub use latency::PeakEwma;
pub use strategy::{Balancer, Candidate, StrategyKind};
