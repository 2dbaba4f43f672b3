//! The first step of applying a snapshot: a pure check and plan, no I/O.
//!
//! [`compile`] reads a snapshot and the settings of the members in force and
//! says what the new routing table is made of: which servers keep their
//! members (with their health, connections and sessions) and which get new
//! ones, and each group's members. A snapshot the data plane cannot use is
//! refused with a [`SnapshotError`], whose text is the NACK's reason. The
//! control plane validated the config, but a data plane does not trust its
//! input blindly. The second step, `Routes::apply` (`route/table.rs`),
//! performs the plan: builds members, starts probes and processes, swaps
//! the table in and stops what left.

use std::collections::HashSet;

use hangar_balance::StrategyKind;
use hangar_proto::v1::{self, Snapshot, Strategy};

/// Most copies of one subprocess server a data plane runs (the config's own
/// bound; a snapshot asking for more is refused, not obeyed).
pub(crate) const MAX_REPLICAS: u32 = 64;

/// Why a snapshot cannot be used. Nothing changes; the text goes back to
/// the control plane in the NACK.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Two servers share an id.
    #[error("server '{0}' appears twice")]
    DuplicateServer(String),
    /// A subprocess server with nothing to run.
    #[error("server '{0}': subprocess without a command")]
    NoCommand(String),
    /// More copies than a data plane runs.
    #[error("server '{server}': {replicas} replicas, at most {MAX_REPLICAS}")]
    TooManyReplicas {
        /// The server.
        server: String,
        /// Copies asked for.
        replicas: u32,
    },
    /// The endpoint is not a URL.
    #[error("server '{server}': bad endpoint: {reason}")]
    BadEndpoint {
        /// The server.
        server: String,
        /// What the URL parser said.
        reason: String,
    },
    /// The endpoint is a URL of another scheme.
    #[error("server '{0}': endpoint must be http or https")]
    NotHttp(String),
    /// A strategy this data plane does not know (a newer control plane's).
    #[error("group '{group}': unknown strategy {value}")]
    UnknownStrategy {
        /// The group.
        group: String,
        /// The strategy's number on the wire.
        value: i32,
    },
    /// A group names a server the snapshot does not have.
    #[error("group '{group}': unknown member '{server}'")]
    UnknownMember {
        /// The group.
        group: String,
        /// The missing server.
        server: String,
    },
}

/// The settings a member is built from: a change rebuilds the member, any
/// other change to the snapshot keeps it (with its health and session).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MemberSpec(v1::Server);

impl MemberSpec {
    pub(crate) fn of(server: &v1::Server) -> Self {
        Self(v1::Server {
            // Updated in place or only meaningful for new members.
            max_consecutive_failures: 0,
            fleet_unhealthy: false,
            // Rate limits are kept apart (`route/rate.rs`): a changed limit
            // must not restart the member.
            rate_limit: None,
            // So are tool policies (`route/policy.rs`).
            tools: None,
            ..server.clone()
        })
    }
}

/// What the new routing table is made of.
#[derive(Debug)]
pub(crate) struct Plan<'s> {
    /// The snapshot's version.
    pub(crate) version: u64,
    /// Every server, in snapshot order.
    pub(crate) servers: Vec<ServerPlan<'s>>,
    /// Every group, in snapshot order.
    pub(crate) groups: Vec<GroupPlan<'s>>,
    /// The id of every group of the snapshot, also those a scoped plan
    /// leaves out (for messages).
    pub(crate) group_names: Vec<&'s str>,
}

impl Plan<'_> {
    /// The plan narrowed to `group` and the servers it is made of: a data
    /// plane that serves one group (`--stdio --group`) builds, probes and
    /// starts nothing else, such as the subprocess servers of other groups.
    pub(crate) fn scoped_to(mut self, group: &str) -> Self {
        let needed: HashSet<&str> = self
            .groups
            .iter()
            .filter(|g| g.group.id == group)
            .flat_map(|g| g.group.members.iter().map(|m| m.server_id.as_str()))
            .collect();
        self.servers
            .retain(|s| needed.contains(s.server.id.as_str()));
        self.groups.retain(|g| g.group.id == group);
        self
    }
}

/// One server of the plan.
#[derive(Debug)]
pub(crate) struct ServerPlan<'s> {
    /// The server as the snapshot has it.
    pub(crate) server: &'s v1::Server,
    /// What its members are built from.
    pub(crate) spec: MemberSpec,
    /// True when the members in force were built from the same spec and
    /// are kept; false when new members are built.
    pub(crate) keep: bool,
}

/// One group of the plan.
#[derive(Debug)]
pub(crate) struct GroupPlan<'s> {
    /// The group as the snapshot has it; its members all name servers of
    /// the plan.
    pub(crate) group: &'s v1::Group,
    /// Its strategy.
    pub(crate) strategy: StrategyKind,
}

/// Checks `snapshot` and plans the table; `in_force` are the specs of the
/// members of the table in force, by server id.
pub(crate) fn compile<'s>(
    snapshot: &'s Snapshot,
    in_force: &foldhash::HashMap<String, MemberSpec>,
) -> Result<Plan<'s>, SnapshotError> {
    let mut ids = HashSet::with_capacity(snapshot.servers.len());
    let mut servers = Vec::with_capacity(snapshot.servers.len());
    for server in &snapshot.servers {
        if !ids.insert(server.id.as_str()) {
            return Err(SnapshotError::DuplicateServer(server.id.clone()));
        }
        check_server(server)?;
        let spec = MemberSpec::of(server);
        let keep = in_force.get(&server.id) == Some(&spec);
        servers.push(ServerPlan { server, spec, keep });
    }
    let mut groups = Vec::with_capacity(snapshot.groups.len());
    for group in &snapshot.groups {
        let strategy = match group.strategy() {
            Strategy::Unspecified => {
                return Err(SnapshotError::UnknownStrategy {
                    group: group.id.clone(),
                    value: group.strategy,
                });
            }
            known => StrategyKind::from(known),
        };
        if let Some(m) = group
            .members
            .iter()
            .find(|m| !ids.contains(m.server_id.as_str()))
        {
            return Err(SnapshotError::UnknownMember {
                group: group.id.clone(),
                server: m.server_id.clone(),
            });
        }
        groups.push(GroupPlan { group, strategy });
    }
    Ok(Plan {
        version: snapshot.version,
        group_names: snapshot.groups.iter().map(|g| g.id.as_str()).collect(),
        servers,
        groups,
    })
}

fn check_server(server: &v1::Server) -> Result<(), SnapshotError> {
    if let Some(sub) = server.subprocess() {
        if sub.command.first().is_none_or(String::is_empty) {
            return Err(SnapshotError::NoCommand(server.id.clone()));
        }
        if sub.replicas > MAX_REPLICAS {
            return Err(SnapshotError::TooManyReplicas {
                server: server.id.clone(),
                replicas: sub.replicas,
            });
        }
        return Ok(());
    }
    let Some(endpoint) = server.endpoint() else {
        return Err(SnapshotError::BadEndpoint {
            server: server.id.clone(),
            reason: "neither an endpoint nor a subprocess".into(),
        });
    };
    let url = url::Url::parse(endpoint).map_err(|e| SnapshotError::BadEndpoint {
        server: server.id.clone(),
        reason: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(SnapshotError::NotHttp(server.id.clone()));
    }
    Ok(())
}

#[cfg(test)]
#[path = "compile_tests.rs"]
mod tests;
