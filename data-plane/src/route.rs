//! Where a call goes: the routing table of the snapshot in force, the
//! members with their health and probes, the group caps, and the one
//! failover loop every balanced request goes through.
//!
//! # Layout
//! - [`compile`]: a snapshot checked and planned, without I/O (typed [`compile::SnapshotError`]s).
//! - [`table`]: the routing table: a plan performed and swapped in atomically; health reports.
//! - [`member`]: one member: its upstream, health, probe loop and calls in flight.
//! - [`failover`]: circuit, min_healthy, strategy order, skip unreached members, record.
//! - [`api_keys`]: the API keys of MCP clients, as hashes, and their principals.
//! - [`jwt`]: bearer tokens of `auth.jwt`: their keys (fetched and kept fresh) and their check.
//! - [`access`]: who a request speaks for, and the `access:` rules of what they may call.
//! - [`breaker`]: a group's circuit breaker (recipe 03).
//! - [`retry`]: a group's retry policy for delivered calls.
//! - [`limit`]: `max_concurrency` caps with a bounded queue.
//! - [`rate`]: rate limits (`rate_limit:`), their fleet shares and usage.
//! - [`dispatch`]: one `hangar_call` call to a server or a group.
//! - [`sessions`]: client sessions this data plane moved to another member.
//! - [`session_keys`]: the keys that seal session ids (the fleet's, else this process's).
//! - [`tools`]: which members list which tools; a group's tool list.
//! - [`policy`]: `tools:` access policies (allow and deny lists of patterns).

pub(crate) mod access;
pub(crate) mod api_keys;
pub(crate) mod breaker;
pub(crate) mod compile;
pub(crate) mod dispatch;
pub(crate) mod failover;
pub(crate) mod jwt;
pub(crate) mod limit;
pub(crate) mod member;
pub(crate) mod outlier;
pub(crate) mod policy;
pub(crate) mod rate;
pub(crate) mod retry;
pub(crate) mod session_keys;
pub(crate) mod sessions;
pub(crate) mod table;
pub(crate) mod tools;
pub(crate) mod vitals;
