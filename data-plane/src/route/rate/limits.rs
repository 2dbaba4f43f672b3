//! The limits of a snapshot as the call path sees them: who asks what
//! ([`Asking`]), each configured limit ([`Limit`]), those of a group or
//! server ([`Target`]) and all of them ([`RateLimits`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hangar_rate::{CallerKey, Limiter, Rate, Refusal};
use tokio::time::Instant;

/// What a request asks of the rate limits: who calls, which method, and
/// the tool of a `tools/call`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Asking<'a> {
    /// The caller's key (its session, else its address).
    pub(crate) caller: CallerKey,
    /// The JSON-RPC method.
    pub(crate) method: &'a str,
    /// The tool called, for `tools/call`.
    pub(crate) tool: Option<&'a str>,
}

impl<'a> Asking<'a> {
    /// A `tools/call` of `tool` by `caller`.
    pub(crate) fn tool_call(caller: CallerKey, tool: &'a str) -> Self {
        Self {
            caller,
            method: "tools/call",
            tool: Some(tool),
        }
    }
}

/// Which requests a limit counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Methods {
    /// `tools/call` alone (the default).
    ToolCalls,
    /// The methods listed.
    Listed(Vec<String>),
    /// Every request.
    All,
}

impl Methods {
    pub(super) fn of(listed: &[String]) -> Self {
        if listed.is_empty() {
            Self::ToolCalls
        } else if listed.iter().any(|m| m == "*") {
            Self::All
        } else {
            Self::Listed(listed.to_vec())
        }
    }

    fn covers(&self, method: &str) -> bool {
        match self {
            Self::ToolCalls => method == "tools/call",
            Self::Listed(methods) => methods.iter().any(|m| m == method),
            Self::All => true,
        }
    }
}

/// One limit as configured, to tell whether a new snapshot changed it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Spec {
    pub(super) all: Option<Rate>,
    pub(super) per_caller: Option<Rate>,
    pub(super) fleet: bool,
    pub(super) methods: Methods,
}

/// One configured limit on this data plane.
#[derive(Debug)]
pub(crate) struct Limit {
    /// Its id in reports and shares: `all`, `env`, `group/G`,
    /// `group/G/tool/T`, `server/S`, `server/S/tool/T`.
    pub(crate) id: String,
    pub(crate) limiter: Limiter,
    pub(super) spec: Spec,
    /// True from a refusal until a report window of a second or more ends
    /// with none; for the "started/stopped refusing" log lines.
    pub(super) refusing: AtomicBool,
    pub(super) window: parking_lot::Mutex<Window>,
}

impl Limit {
    fn admits(&self, asking: &Asking<'_>) -> bool {
        self.spec.methods.covers(asking.method)
    }

    /// Logs the first refusal of an episode.
    fn refused(&self, refusal: &Refusal) {
        if !self.refusing.swap(true, Ordering::Relaxed) {
            tracing::warn!(limit = %self.id, "rate limit started refusing calls: {refusal}");
        }
    }

    /// "fleet" or "data_plane", for metrics: per-caller buckets are each
    /// data plane's own.
    pub(crate) fn scope(&self) -> &'static str {
        if self.spec.fleet && self.spec.all.is_some() {
            "fleet"
        } else {
            "data_plane"
        }
    }
}

/// The limits of a group or a server: its own, and those of its tools.
#[derive(Debug, Default)]
pub(crate) struct Target {
    pub(super) own: Option<Arc<Limit>>,
    pub(super) tools: HashMap<String, Arc<Limit>>,
}

impl Target {
    fn applying<'s>(&'s self, asking: &Asking<'_>, out: &mut Vec<&'s Arc<Limit>>) {
        if let Some(own) = self.own.as_ref().filter(|l| l.admits(asking)) {
            out.push(own);
        }
        if asking.method == "tools/call"
            && let Some(tool) = asking.tool.and_then(|t| self.tools.get(t))
        {
            out.push(tool);
        }
    }

    /// Admits a request through this target's limits.
    pub(crate) fn admit(&self, asking: &Asking<'_>) -> Result<(), Refusal> {
        if self.own.is_none() && self.tools.is_empty() {
            return Ok(());
        }
        let mut chain = Vec::with_capacity(2);
        self.applying(asking, &mut chain);
        admit_all(&chain, asking.caller)
    }

    fn limits(&self) -> impl Iterator<Item = &Arc<Limit>> {
        self.own.iter().chain(self.tools.values())
    }
}

/// Every rate limit of the snapshot in force.
#[derive(Debug, Default)]
pub(crate) struct RateLimits {
    /// The environment's and the top-level limit: every request they
    /// cover, whatever it names.
    pub(super) every_call: Vec<Arc<Limit>>,
    pub(super) groups: HashMap<String, Target>,
    pub(super) servers: HashMap<String, Arc<Target>>,
}

impl RateLimits {
    /// True when nothing is limited.
    pub(crate) fn is_empty(&self) -> bool {
        self.every_call.is_empty() && self.groups.is_empty() && self.servers.is_empty()
    }

    /// Admits a request to group `group` through the limits that apply
    /// where it enters: the top-level ones and the group's.
    pub(crate) fn admit_group(&self, group: &str, asking: &Asking<'_>) -> Result<(), Refusal> {
        if self.is_empty() {
            return Ok(());
        }
        let mut chain: Vec<&Arc<Limit>> = Vec::with_capacity(4);
        chain.extend(self.every_call.iter().filter(|l| l.admits(asking)));
        if let Some(target) = self.groups.get(group) {
            target.applying(asking, &mut chain);
        }
        admit_all(&chain, asking.caller)
    }

    /// Admits a request that names a server directly through the top-level
    /// limits; the server's own are checked at its member.
    pub(crate) fn admit_direct(&self, asking: &Asking<'_>) -> Result<(), Refusal> {
        if self.every_call.is_empty() {
            return Ok(());
        }
        let chain: Vec<&Arc<Limit>> = self
            .every_call
            .iter()
            .filter(|l| l.admits(asking))
            .collect();
        admit_all(&chain, asking.caller)
    }

    /// The limits of server `id`, which its members check.
    pub(crate) fn server(&self, id: &str) -> Option<Arc<Target>> {
        self.servers.get(id).cloned()
    }

    /// The tools of group `group` that have limits of their own.
    pub(crate) fn limited_tools(&self, group: &str) -> impl Iterator<Item = &str> {
        self.groups
            .get(group)
            .into_iter()
            .flat_map(|t| t.tools.keys().map(String::as_str))
    }

    /// Every limit, top-level first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<Limit>> {
        self.every_call
            .iter()
            .chain(self.groups.values().flat_map(Target::limits))
            .chain(self.servers.values().flat_map(|t| t.limits()))
    }
}

fn admit_all(chain: &[&Arc<Limit>], caller: CallerKey) -> Result<(), Refusal> {
    if chain.is_empty() {
        return Ok(());
    }
    let limiters = chain.iter().map(|l| &l.limiter);
    hangar_rate::admit(limiters, caller, Instant::now()).inspect_err(|refusal| {
        if let Some(limit) = chain.iter().find(|l| l.limiter.label() == refusal.limit) {
            limit.refused(refusal);
        }
    })
}

/// The counts of one limit at its last measurement, and the rates then
/// (measured in `usage.rs`).
#[derive(Debug)]
pub(super) struct Window {
    pub(super) at: Instant,
    pub(super) counts: hangar_rate::Usage,
    pub(super) rates: [f64; 3],
}

impl Window {
    pub(super) fn new(now: Instant) -> Self {
        Self {
            at: now,
            counts: hangar_rate::Usage::default(),
            rates: [0.0; 3],
        }
    }
}
