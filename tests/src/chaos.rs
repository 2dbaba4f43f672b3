//! Pieces of `hangar-chaos-bench`: real member processes that faults are
//! done to, the Hangar binaries as processes, closed-loop clients that log
//! every call, a `/metrics` poller, the faults, and the report.
//!
//! # Layout
//! - [`proc`]: a child process stopped by PID, and signals sent by PID.
//! - [`member`]: one `examples/python/server.py` member on a fixed port.
//! - [`hangar`]: the release control plane and data plane, and applying a config.
//! - [`wire`]: the three client wire shapes and reading JSON or SSE answers.
//! - [`classify`]: what a failed call counts as (delivered, never delivered, session).
//! - [`clients`]: closed-loop clients and the log of every call they made.
//! - [`rotation`]: polling `hangar_member_healthy` every 100 ms.
//! - [`faults`]: the five faults and when each began and ended.
//! - [`report`]: per-fault figures, the table and the JSON document.

pub mod classify;
pub mod clients;
pub mod faults;
pub mod hangar;
pub mod member;
pub mod proc;
pub mod report;
pub mod rotation;
pub mod wire;
