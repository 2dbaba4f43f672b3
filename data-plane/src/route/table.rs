//! The routing table: members and groups of the snapshot in force.
//!
//! Calls read the table lock-free through an `ArcSwap`; the control-plane
//! task is the only writer. A new snapshot is compiled into a new table that
//! reuses the `Member` of every server whose endpoint and probe period did
//! not change, so health, counters, warm connections and MCP sessions survive
//! config updates; members that left the config stop probing.

// Looked up on every call, by names from the config and the members:
// a fast seeded hash, not SipHash.
use foldhash::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hangar_balance::{Balancer, Candidate, GroupState, StrategyKind};
use hangar_proto::v1::Snapshot;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

mod build;
mod labels;
mod report;

use crate::metrics::MemberCalls;
use crate::route::access::AccessRules;
use crate::route::api_keys::ApiKeyBook;
use crate::route::breaker::{CircuitBreaker, CircuitOpen};
use crate::route::compile::{MemberSpec, SnapshotError, compile};
use crate::route::failover::Pool;
use crate::route::jwt::JwtBook;
use crate::route::limit::{ConcurrencyLimit, LimitError, Slot};
use crate::route::member::{Ledger, Member};
use crate::route::outlier::{LazyNow, Outliers};
use crate::route::policy::ToolPolicy;
use crate::route::rate::RateLimits;
use crate::route::rate::build::{EnvLimit, ShareBook};
use crate::route::retry::RetryPolicy;
use crate::route::session_keys::SessionKeys;
use crate::route::sessions::MovedSessions;
use crate::upstream::clients::ClientPool;
use crate::upstream::stdio::Start;

/// A member's place in one group.
#[derive(Debug)]
pub struct GroupMember {
    /// The shared member.
    pub member: Arc<Member>,
    /// Relative share for weighted strategies.
    pub weight: u32,
    /// Lower is preferred by the priority strategy.
    pub priority: i32,
    /// False when the control plane took the member out of rotation.
    pub eligible: bool,
    /// Where calls through this group to this member are counted, by
    /// tool; kept across snapshots while the member stays in the group.
    pub metrics: Arc<MemberCalls>,
    /// The `tools:` policies of the member's server and of the group's
    /// entry for it.
    pub(crate) policies: Vec<Arc<ToolPolicy>>,
}

/// A group and its balancing state.
#[derive(Debug)]
pub struct GroupRoute {
    /// Group id.
    pub id: String,
    /// Below this many members in rotation the group refuses calls.
    pub min_healthy: u32,
    /// Members in config order.
    pub members: Vec<GroupMember>,
    /// `max_concurrency` of the group on this data plane, if capped.
    pub limit: Option<ConcurrencyLimit>,
    /// The group's circuit breaker (`circuit_breaker.failure_threshold`).
    pub breaker: Arc<CircuitBreaker>,
    /// Whether a session whose member is gone is re-opened on another one
    /// (`session_recovery`, on by default).
    pub session_recovery: bool,
    /// When a delivered call may go to the next member (`retry:`).
    pub(crate) retry: Option<RetryPolicy>,
    /// Passive outlier ejection (`outlier_detection:`), unless turned off.
    pub(crate) outliers: Option<Arc<Outliers>>,
    balancer: Balancer,
    /// The group's own `tools:` policy.
    pub(crate) policy: Option<Arc<ToolPolicy>>,
}

impl GroupRoute {
    /// The group's strategy.
    pub fn strategy(&self) -> StrategyKind {
        self.balancer.kind()
    }

    /// Members that are in rotation now.
    pub fn healthy_count(&self) -> usize {
        let mut now = LazyNow::default();
        (0..self.members.len())
            .filter(|&i| self.in_rotation(i, &mut now))
            .count()
    }

    /// The group's state on this data plane: ready, partial, unavailable
    /// (below `min_healthy`) or circuit open.
    pub fn state(&self) -> GroupState {
        GroupState::of(self.healthy_count(), self.members.len(), self.min_healthy)
            .with_circuit(self.breaker.view().open)
    }

    /// Whether member `index` takes calls through this group now: the
    /// fleet has not ejected it, its probes pass and outlier detection has
    /// not ejected it from the group.
    pub(crate) fn in_rotation(&self, index: usize, now: &mut LazyNow) -> bool {
        self.standing(index, now).is_some()
    }

    /// Member `index`'s share in percent if it is in rotation, else `None`.
    fn standing(&self, index: usize, now: &mut LazyNow) -> Option<u8> {
        let m = &self.members[index];
        if !m.eligible || !m.member.is_healthy() {
            return None;
        }
        match self.outliers.as_ref().map(|o| o.standing(index, now)) {
            Some(standing) if standing.ejected => None,
            Some(standing) => Some(standing.ramp_percent),
            None => Some(100),
        }
    }

    /// Where a call through this group to member `index` is written.
    pub fn ledger(&self, index: usize) -> Ledger<'_> {
        Ledger {
            metrics: &self.members[index].metrics,
            breaker: Some(&self.breaker),
            outliers: self.outliers.as_ref().map(|o| (o, index)),
            tool: None,
            asking: None,
        }
    }

    /// [`GroupRoute::ledger`] for a call of `tool`, whose latency
    /// `least_latency` keeps apart.
    pub fn ledger_for<'a>(&'a self, index: usize, tool: Option<&'a str>) -> Ledger<'a> {
        Ledger {
            tool: tool.filter(|_| self.strategy() == StrategyKind::LeastLatency),
            ..self.ledger(index)
        }
    }

    /// The members in rotation that may serve a request of `tool` (or
    /// none), in the order to try them: [`Pool::order`] without members
    /// whose tool list lacks the tool, with each member's latency for that
    /// tool for `least_latency`.
    pub(crate) fn order_for(&self, tool: Option<&str>) -> Vec<usize> {
        self.balancer.order(&self.candidates(tool))
    }

    /// The members as the strategy sees them for one request of `tool`,
    /// to look at its order before deciding whether it takes a turn.
    pub(crate) fn choice(&self, tool: Option<&str>) -> Choice<'_> {
        Choice {
            balancer: &self.balancer,
            candidates: self.candidates(tool),
        }
    }

    /// What the strategy may know of each member for a request of `tool`.
    fn candidates(&self, tool: Option<&str>) -> Vec<Candidate> {
        let latency_aware = self.strategy() == StrategyKind::LeastLatency;
        let narrowed = self.tool_narrowing(tool);
        let mut now = LazyNow::default();
        self.members
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let standing = self.standing(i, &mut now);
                Candidate {
                    eligible: standing.is_some()
                        && narrowed.as_ref().is_none_or(|serves| serves[i]),
                    weight: m.weight,
                    priority: m.priority,
                    in_flight: m.member.in_flight(),
                    ramp_percent: standing.unwrap_or(100),
                    latency_micros: if latency_aware {
                        m.member.latency_micros(tool)
                    } else {
                        0
                    },
                }
            })
            .collect()
    }

    /// Members ejected by outlier detection now.
    pub fn ejected(&self) -> Vec<String> {
        self.outliers
            .as_ref()
            .map_or_else(Vec::new, |o| o.ejected())
    }

    /// Takes a slot of the group's `max_concurrency`, waiting at most
    /// `patience`; `None` when the group has no cap. The call holds the slot
    /// until it is dropped.
    pub async fn admit(&self, patience: Duration) -> Result<Option<Slot>, LimitError> {
        match &self.limit {
            Some(limit) => limit.acquire(patience).await.map(Some),
            None => Ok(None),
        }
    }
}

impl Pool for GroupRoute {
    fn id(&self) -> &str {
        &self.id
    }

    fn size(&self) -> usize {
        self.members.len()
    }

    fn member_id(&self, index: usize) -> &str {
        self.members[index].member.id()
    }

    fn min_healthy(&self) -> u32 {
        self.min_healthy
    }

    fn order(&self) -> Vec<usize> {
        self.order_for(None)
    }

    /// Rotation continues after the member that really served, so it does
    /// not get a double share.
    fn record_failover(&self, index: usize) {
        self.balancer.record_pick(index);
    }

    fn circuit(&self) -> Result<(), CircuitOpen> {
        self.breaker.check(self.min_healthy, |since| {
            self.members
                .iter()
                .filter(|m| m.eligible && m.member.back_since(since))
                .count()
        })
    }
}

/// Where the snapshot in force came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Origin {
    /// No snapshot yet.
    #[default]
    None,
    /// Received from the control plane.
    ControlPlane,
    /// Read from `--cache-dir` at start.
    Cache,
}

impl Origin {
    /// The name shown by `hangar_status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ControlPlane => "control_plane",
            Self::Cache => "cache",
        }
    }
}

/// Members and groups of one snapshot.
#[derive(Debug, Default)]
pub struct RoutingTable {
    /// Version of the snapshot this table was built from (0 = none yet).
    pub version: u64,
    /// Where that snapshot came from.
    pub origin: Origin,
    /// Every member, by id: a server's id, or `id#N` for copy N of a
    /// subprocess server with replicas.
    pub members: HashMap<String, Arc<Member>>,
    /// Every group, by id (only the one served, for a data plane scoped
    /// to one group).
    pub groups: HashMap<String, GroupRoute>,
    /// The id of every group of the snapshot, sorted, for messages.
    pub group_names: Vec<String>,
    /// Subprocess servers with more than one replica, balanced round robin
    /// over their copies when named directly.
    pub replicas: HashMap<String, GroupRoute>,
    /// The members of each server id (one, or its copies).
    servers: HashMap<String, Vec<Arc<Member>>>,
    /// What each member was built from, to keep it across snapshots that
    /// leave it unchanged.
    specs: HashMap<String, MemberSpec>,
    /// The rate limits of the snapshot and of the environment.
    pub(crate) rate: RateLimits,
    /// The `tools:` policy of each server that has one.
    pub(crate) server_policies: HashMap<String, Arc<ToolPolicy>>,
    /// The config's `auth:`, when it has one.
    pub(crate) client_auth: Option<hangar_proto::v1::ClientAuth>,
    /// The config's `access:` rules.
    pub(crate) access: AccessRules,
}

/// The routing table in force, and what building a new one needs.
#[derive(Debug)]
pub struct Routes {
    /// Shared with the task that relabels it when tool lists change.
    table: Arc<ArcSwap<RoutingTable>>,
    /// HTTP clients per TLS and timeout setting, shared by members.
    clients: ClientPool,
    health_changed: Arc<Notify>,
    /// Notified when a member's tool names change (`labels`).
    tools_changed: Arc<Notify>,
    /// Held while the tool labels of a table are set, so an apply and
    /// the relabelling of the table in force take turns.
    relabel: Arc<parking_lot::Mutex<()>>,
    /// Set once the relabelling task runs.
    watching_tools: std::sync::Once,
    /// Version of the table in force, for callers waiting for the first one.
    version: watch::Sender<u64>,
    shutdown: CancellationToken,
    /// The supervisors of subprocess members' processes.
    processes: TaskTracker,
    /// Client sessions moved to another member; they outlive snapshots.
    moved_sessions: MovedSessions,
    /// The one group this data plane serves (`--stdio --group`), if any:
    /// nothing else of a snapshot is built.
    scope: std::sync::OnceLock<String>,
    /// When subprocess members start; at once unless set otherwise.
    process_start: std::sync::OnceLock<Start>,
    /// Why the control plane has not answered lately, for clients of a
    /// data plane that has no config yet.
    control_trouble: parking_lot::Mutex<Option<String>>,
    /// `MCP_RATE_LIMIT_RPS`/`_BURST`: a limit of this data plane alone.
    env_limit: std::sync::OnceLock<EnvLimit>,
    /// The fleet shares of rate limits last sent by the control plane.
    shares: parking_lot::Mutex<ShareBook>,
    /// The keys that seal session ids of the group endpoint.
    session_keys: SessionKeys,
    /// The API keys of MCP clients.
    api_keys: ApiKeyBook,
    /// The settings and signing keys of bearer tokens.
    jwt: Arc<JwtBook>,
}

// === impl Routes ===

impl Routes {
    /// An empty table; member probes stop when `shutdown` is cancelled.
    pub fn new(shutdown: CancellationToken) -> Self {
        Self {
            table: Arc::new(ArcSwap::from_pointee(RoutingTable::default())),
            clients: ClientPool::default(),
            health_changed: Arc::new(Notify::new()),
            tools_changed: Arc::new(Notify::new()),
            relabel: Arc::default(),
            watching_tools: std::sync::Once::new(),
            version: watch::Sender::new(0),
            moved_sessions: MovedSessions::default(),
            control_trouble: parking_lot::Mutex::new(None),
            scope: std::sync::OnceLock::new(),
            process_start: std::sync::OnceLock::new(),
            env_limit: std::sync::OnceLock::new(),
            shares: parking_lot::Mutex::default(),
            session_keys: SessionKeys::default(),
            api_keys: ApiKeyBook::default(),
            jwt: Arc::default(),
            shutdown,
            processes: TaskTracker::new(),
        }
    }

    /// The table in force.
    pub fn load(&self) -> Arc<RoutingTable> {
        self.table.load_full()
    }

    /// The table in force once a snapshot has been applied, waiting at most
    /// `patience` for the first one. A client that starts together with its
    /// data plane (e.g. over stdio) must not see an empty config meanwhile.
    pub async fn load_when_configured(&self, patience: Duration) -> Arc<RoutingTable> {
        let mut version = self.version.subscribe();
        // A timeout only means the caller gets the (empty) table in force.
        let _ = tokio::time::timeout(patience, version.wait_for(|v| *v != 0)).await;
        self.load()
    }

    /// The keys that seal the group endpoint's session ids.
    pub(crate) fn session_keys(&self) -> &SessionKeys {
        &self.session_keys
    }

    /// The API keys of MCP clients.
    pub(crate) fn api_keys(&self) -> &ApiKeyBook {
        &self.api_keys
    }

    /// The settings and signing keys of bearer tokens.
    pub(crate) fn jwt(&self) -> &Arc<JwtBook> {
        &self.jwt
    }

    /// Client sessions of the transparent endpoint that this data plane
    /// moved to another member.
    pub fn moved_sessions(&self) -> &MovedSessions {
        &self.moved_sessions
    }

    /// Serves only `group` from now on: later snapshots build its members
    /// and nothing else. Call before the first snapshot is applied.
    pub(crate) fn scope_to_group(&self, group: String) {
        let _ = self.scope.set(group);
    }

    /// Starts each subprocess member when a call first needs it rather than
    /// when the snapshot is applied. Call before the first snapshot.
    pub(crate) fn start_processes_on_first_use(&self) {
        let _ = self.process_start.set(Start::OnFirstUse);
    }

    /// Limits every tool call through this data plane to `rate`, whatever
    /// the config says (`MCP_RATE_LIMIT_RPS`). Call before the first
    /// snapshot.
    pub(crate) fn limit_every_call(&self, rate: hangar_rate::Rate) {
        let _ = self.env_limit.set(EnvLimit(rate));
    }

    /// Runs the fleet-wide rate limits on the shares the control plane
    /// sent; they are kept for snapshots to come.
    pub(crate) fn apply_shares(&self, shares: &hangar_proto::v1::RateShares) {
        let mut book = self.shares.lock();
        book.record(shares);
        self.load().rate.apply_shares(&book);
    }

    /// Records why the control plane could not be followed just now.
    pub(crate) fn note_control_trouble(&self, trouble: String) {
        *self.control_trouble.lock() = Some(trouble);
    }

    /// Why no config has arrived: the control plane's last trouble, if any.
    pub(crate) fn why_no_config(&self) -> String {
        match &*self.control_trouble.lock() {
            Some(trouble) => format!("no config has arrived yet: {trouble}"),
            None => "no config has arrived yet from the control plane".to_owned(),
        }
    }

    /// Notified whenever a member enters or leaves rotation.
    pub fn health_changed(&self) -> Arc<Notify> {
        self.health_changed.clone()
    }

    /// Replaces the table with one built from `snapshot`: compiles it
    /// (`route/compile.rs`), then performs the plan. A snapshot that cannot
    /// be used changes nothing and says why (for a NACK).
    pub fn apply(&self, snapshot: &Snapshot, origin: Origin) -> Result<(), SnapshotError> {
        let old = self.load();
        let mut plan = compile(snapshot, &old.specs)?;
        if let Some(group) = self.scope.get() {
            plan = plan.scoped_to(group);
        }
        let mut table = self.build(plan, &old, origin);
        table.client_auth = snapshot.client_auth.clone();
        table.access = AccessRules::compile(&snapshot.access);
        self.jwt.configure(
            snapshot
                .client_auth
                .as_ref()
                .filter(|auth| auth.enabled)
                .and_then(|auth| auth.jwt.as_ref()),
        );
        table.rate = RateLimits::build(
            snapshot,
            &old.rate,
            self.env_limit.get().copied(),
            &self.shares.lock(),
        );
        for (id, copies) in &table.servers {
            for member in copies {
                member.set_rate_limits(table.rate.server(id));
            }
        }
        let version = table.version;
        let relabelling = self.relabel.lock();
        // Before the swap, so the first call of a kept member counts
        // under the new group's labels.
        table.label_tools();
        let old = self.table.swap(Arc::new(table));
        drop(relabelling);
        self.watch_tool_lists();
        self.version.send_replace(version);
        let new = self.load();
        for (id, member) in &old.members {
            if !new.members.get(id).is_some_and(|m| Arc::ptr_eq(m, member)) {
                member.stop();
            }
        }
        Ok(())
    }

    /// Resolves once every subprocess member's process has been stopped;
    /// call after cancelling the shutdown token.
    pub async fn processes_stopped(&self) {
        self.processes.close();
        self.processes.wait().await;
    }
}

/// One request's view of a group's members ([`GroupRoute::choice`]).
#[derive(Debug)]
pub(crate) struct Choice<'a> {
    balancer: &'a Balancer,
    candidates: Vec<Candidate>,
}

impl Choice<'_> {
    /// The order the request would get, without taking its turn (see
    /// `Balancer::peek`).
    pub(crate) fn peek(&self) -> Vec<usize> {
        self.balancer.peek(&self.candidates)
    }

    /// The order the request gets, taking its turn.
    pub(crate) fn take_turn(&self) -> Vec<usize> {
        self.balancer.order(&self.candidates)
    }
}
