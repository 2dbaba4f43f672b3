//! Rate limits of Hangar: token buckets on the data plane's call path and
//! the division of a fleet-wide budget among data planes on the control
//! plane. No I/O; every function takes the time it runs at, so tests drive
//! the clock exactly (tokio's paused time).
//!
//! # Layout
//! - [`bucket`]: [`Bucket`], one token bucket, and [`Rate`], its size.
//! - [`limiter`]: [`Limiter`], one configured limit on a data plane: a
//!   bucket all callers share and one per caller, kept in a bounded LRU.
//! - [`shares`]: [`divide`], a fleet budget split by demand.
//! - [`refusal`]: [`Refusal`], why a call was refused and when to retry.
//! - [`ids`]: the ids limits go by everywhere.

pub mod bucket;
pub mod ids;
pub mod limiter;
pub mod refusal;
pub mod shares;

pub use bucket::{Bucket, Rate};
pub use limiter::{CallerKey, Limiter, Usage, admit};
pub use refusal::{Refusal, Which};
pub use shares::{Demand, divide};
