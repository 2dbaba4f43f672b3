//! Rate limits on this data plane's call path (`rate_limit:` at the top, on
//! groups, servers and their tools, and `MCP_RATE_LIMIT_RPS`).
//!
//! Where each limit is checked:
//! - the top-level and environment limits, and a group's own and per-tool
//!   limits: when a request enters (`RateLimits::admit_group`,
//!   `RateLimits::admit_direct`), before the group's `max_concurrency`;
//! - a server's limits: when a call is about to go to one of its members
//!   (`Member::admit`), so a limited member is passed over like a busy one
//!   (never delivered) and the group tries the next.
//!
//! A limit that is the fleet's runs on this data plane's share, which the
//! control plane sends (`RateShares`) and the data plane keeps while the
//! control plane is gone. Limits whose config did not change are kept
//! across snapshots, buckets and counts included.
//!
//! # Layout
//! - `limits`: [`Asking`], [`Limit`], [`Target`], [`RateLimits`] and admission.
//! - [`build`]: a snapshot's limits, kept across snapshots; the fleet shares.
//! - `usage`: each limit's traffic for the health report.

pub(crate) mod build;
mod limits;
mod usage;

pub(crate) use self::limits::{Asking, Limit, RateLimits, Target};

#[cfg(test)]
#[path = "rate_tests.rs"]
mod tests;
