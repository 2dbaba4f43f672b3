//! Building a routing table from a plan: members kept from the table in
//! force or built (which starts their probes and processes), the groups
//! over them with their caps, breakers, outlier detection and tool
//! policies, and the routes over a server's copies.

// Looked up on every call, by names from the config and the members:
// a fast seeded hash, not SipHash.
use foldhash::{HashMap, HashMapExt};
use std::sync::Arc;
use std::time::Duration;

use hangar_balance::{Balancer, StrategyKind};
use hangar_proto::v1;
use tokio_util::sync::CancellationToken;

use super::{GroupMember, GroupRoute, Origin, Routes, RoutingTable};
use crate::metrics::MemberCalls;
use crate::route::access::AccessRules;
use crate::route::breaker::CircuitBreaker;
use crate::route::compile::{GroupPlan, Plan, ServerPlan};
use crate::route::limit::ConcurrencyLimit;
use crate::route::member::Member;
use crate::route::outlier::{OutlierPolicy, Outliers};
use crate::route::policy::ToolPolicy;
use crate::route::rate::RateLimits;
use crate::route::retry::RetryPolicy;
use crate::upstream::Upstream;
use crate::upstream::stdio::Start;

impl Routes {
    /// The table of `plan`: members kept from `old` or built (which starts
    /// their probes and processes), and the groups over them.
    pub(super) fn build(&self, plan: Plan<'_>, old: &RoutingTable, origin: Origin) -> RoutingTable {
        let mut members = HashMap::with_capacity(plan.servers.len());
        let mut servers = HashMap::with_capacity(plan.servers.len());
        let mut specs = HashMap::with_capacity(plan.servers.len());
        let mut server_policies = HashMap::new();
        for ServerPlan { server, spec, keep } in plan.servers {
            if let Some(tools) = &server.tools {
                let on = format!("server '{}'", server.id);
                server_policies.insert(server.id.clone(), Arc::new(ToolPolicy::of(on, tools)));
            }
            let copies = match old.servers.get(&server.id).filter(|_| keep) {
                Some(copies) => {
                    for member in copies {
                        member.set_max_consecutive_failures(server.max_consecutive_failures);
                    }
                    copies.clone()
                }
                None => self.new_members(server, old),
            };
            for member in &copies {
                members.insert(member.id().to_owned(), member.clone());
            }
            servers.insert(server.id.clone(), copies);
            specs.insert(server.id.clone(), spec);
        }
        let groups = plan
            .groups
            .into_iter()
            .map(|GroupPlan { group, strategy }| {
                // A server with replicas stands in a group as all its copies.
                let members: Vec<GroupMember> = group
                    .members
                    .iter()
                    .flat_map(|m| {
                        // The member's server's policy, then the group's
                        // entry for it.
                        let entry = m.tools.as_ref().map(|tools| {
                            let on = format!("group '{}''s member '{}'", group.id, m.server_id);
                            Arc::new(ToolPolicy::of(on, tools))
                        });
                        let policies: Vec<Arc<ToolPolicy>> = server_policies
                            .get(&m.server_id)
                            .cloned()
                            .into_iter()
                            .chain(entry)
                            .collect();
                        servers[&m.server_id].iter().map(move |member| GroupMember {
                            member: member.clone(),
                            weight: m.weight,
                            priority: m.priority,
                            eligible: m.eligible,
                            // Built here, per snapshot, so calls never look
                            // labels up; a member that stays keeps its counts.
                            metrics: old.group_calls(&group.id, member.id()),
                            policies: policies.clone(),
                        })
                    })
                    .collect();
                let outliers = OutlierPolicy::of(group.outlier_detection.as_ref()).map(|policy| {
                    let shared: Vec<_> =
                        members.iter().map(|m| m.member.vitals().clone()).collect();
                    let old = old
                        .groups
                        .get(&group.id)
                        .and_then(|g| g.outliers.as_deref());
                    let changed = self.health_changed.clone();
                    Arc::new(Outliers::new(&group.id, policy, &shared, old, changed))
                });
                let route = GroupRoute {
                    id: group.id.clone(),
                    min_healthy: group.min_healthy,
                    members,
                    limit: (group.max_concurrency > 0)
                        .then(|| ConcurrencyLimit::new(group.max_concurrency)),
                    // Kept across snapshots while the threshold stays, so
                    // an apply does not close an open circuit.
                    breaker: old
                        .groups
                        .get(&group.id)
                        .map(|g| &g.breaker)
                        .filter(|b| b.threshold() == group.circuit_failure_threshold)
                        .cloned()
                        .unwrap_or_else(|| {
                            Arc::new(CircuitBreaker::new(
                                &group.id,
                                group.circuit_failure_threshold,
                                self.health_changed.clone(),
                            ))
                        }),
                    session_recovery: group.session_recovery,
                    retry: RetryPolicy::of(group.retry.as_ref()),
                    outliers,
                    balancer: Balancer::new(strategy, rand::random()),
                    policy: group.tools.as_ref().map(|tools| {
                        Arc::new(ToolPolicy::of(format!("group '{}'", group.id), tools))
                    }),
                };
                (group.id.clone(), route)
            })
            .collect();
        let replicas = servers
            .iter()
            .filter(|(_, copies)| copies.len() > 1)
            .map(|(id, copies)| {
                let policy = server_policies.get(id).cloned();
                (id.clone(), self.replica_route(id, copies, policy))
            })
            .collect();
        let mut group_names: Vec<String> = plan.group_names.iter().map(|&g| g.to_owned()).collect();
        group_names.sort_unstable();
        RoutingTable {
            version: plan.version,
            origin,
            members,
            groups,
            group_names,
            replicas,
            servers,
            specs,
            rate: RateLimits::default(),
            server_policies,
            client_auth: None,
            access: AccessRules::default(),
        }
    }

    /// The members for `server`, probing: one for a remote server, one per
    /// replica for a subprocess server (each running its own process).
    fn new_members(&self, server: &v1::Server, old: &RoutingTable) -> Vec<Arc<Member>> {
        let Some(sub) = server.subprocess() else {
            let upstream = Upstream::remote(server, &self.clients);
            let stop = self.shutdown.child_token();
            let id = server.id.clone();
            return vec![self.new_member(server, id, upstream, stop, old)];
        };
        let replicas = sub.replicas.max(1);
        (1..=replicas)
            .map(|n| {
                let id = if replicas == 1 {
                    server.id.clone()
                } else {
                    format!("{}#{n}", server.id)
                };
                // The member's stop token also stops its process.
                let stop = self.shutdown.child_token();
                let start = self.process_start.get().copied().unwrap_or(Start::Now);
                let upstream =
                    Upstream::subprocess(server, &id, start, stop.clone(), &self.processes);
                self.new_member(server, id, upstream, stop, old)
            })
            .collect()
    }

    /// A member `id` of `server`; the calls that named the member it
    /// replaces (of the same id in `old`) go on counting in its handles.
    fn new_member(
        &self,
        server: &v1::Server,
        id: String,
        upstream: Upstream,
        stop: CancellationToken,
        old: &RoutingTable,
    ) -> Arc<Member> {
        let interval = Duration::from_millis(server.probe_interval_ms.max(1));
        let in_rotation = !server.fleet_unhealthy && upstream.ready_at_start();
        let direct_calls = old
            .members
            .get(&id)
            .map(|replaced| replaced.direct_metrics().clone())
            .unwrap_or_default();
        let mut member = Member::new(
            id,
            upstream,
            interval,
            server.max_consecutive_failures,
            in_rotation,
            direct_calls,
            self.health_changed.clone(),
            stop,
        );
        member = member
            .with_stall_timeout(Duration::from_millis(server.stall_timeout_ms))
            .with_tools_changed(self.tools_changed.clone());
        if server.max_concurrency > 0 {
            member = member.with_max_concurrency(server.max_concurrency);
        }
        let member = Arc::new(member);
        member.spawn_probe();
        member
    }

    /// The route that balances a server's copies when it is named directly.
    fn replica_route(
        &self,
        id: &str,
        copies: &[Arc<Member>],
        policy: Option<Arc<ToolPolicy>>,
    ) -> GroupRoute {
        GroupRoute {
            id: id.to_owned(),
            min_healthy: 1,
            members: copies
                .iter()
                .map(|member| GroupMember {
                    member: member.clone(),
                    weight: 1,
                    priority: 1,
                    eligible: true,
                    // The copy's own: calls of the server named directly.
                    metrics: member.direct_metrics().clone(),
                    policies: policy.iter().cloned().collect(),
                })
                .collect(),
            limit: None,
            // The copies of one server named directly: no group, no circuit.
            breaker: Arc::new(CircuitBreaker::new(id, 0, self.health_changed.clone())),
            session_recovery: false,
            retry: None,
            outliers: None,
            balancer: Balancer::new(StrategyKind::RoundRobin, rand::random()),
            // The server's own policy is each copy's.
            policy: None,
        }
    }
}

impl RoutingTable {
    /// Where calls through `group` to `member` were counted in this table,
    /// or new handles if it had no such member.
    fn group_calls(&self, group: &str, member: &str) -> Arc<MemberCalls> {
        self.groups
            .get(group)
            .and_then(|g| g.members.iter().find(|m| m.member.id() == member))
            .map_or_else(Arc::default, |m| m.metrics.clone())
    }
}
