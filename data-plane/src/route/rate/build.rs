//! Building the limits of a snapshot, keeping those that did not change,
//! and the fleet shares the control plane sends.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use hangar_proto::v1;
use hangar_rate::{Limiter, Rate, ids};
use tokio::time::Instant;

use super::limits::{Limit, Methods, RateLimits, Spec, Target, Window};

/// The fleet shares last heard from the control plane. They outlive
/// snapshots and the control plane itself (static stability).
#[derive(Debug, Default)]
pub(crate) struct ShareBook {
    /// Data planes the budgets were divided among.
    data_planes: u32,
    shares: HashMap<String, Rate>,
}

impl ShareBook {
    /// Takes in the shares of one message, replacing all earlier ones.
    pub(crate) fn record(&mut self, message: &v1::RateShares) {
        self.data_planes = message.data_planes;
        self.shares = message
            .shares
            .iter()
            .map(|s| (s.limit.clone(), Rate::new(s.rps, s.burst)))
            .collect();
    }

    /// This data plane's share of the limit `id` of size `budget`: the last
    /// one heard, else an even split among the data planes last heard of
    /// (the whole budget before any), until the control plane divides it.
    fn share_of(&self, id: &str, budget: Rate) -> Rate {
        if let Some(share) = self.shares.get(id) {
            return Rate::new(share.rps.min(budget.rps), share.burst.min(budget.burst));
        }
        let planes = f64::from(self.data_planes.max(1));
        Rate::new(budget.rps / planes, (budget.burst / planes).max(1.0))
    }
}

/// The limit of the environment (`MCP_RATE_LIMIT_RPS`, `_BURST`): this data
/// plane's alone, for every tool call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct EnvLimit(pub(crate) Rate);

impl RateLimits {
    /// The limits of `snapshot` (and of the environment), keeping from
    /// `old` every limit whose config is the same, with its buckets.
    pub(crate) fn build(
        snapshot: &v1::Snapshot,
        old: &RateLimits,
        env: Option<EnvLimit>,
        book: &ShareBook,
    ) -> Self {
        let now = Instant::now();
        let mut kept: HashMap<&str, &Arc<Limit>> = old.iter().map(|l| (l.id.as_str(), l)).collect();
        let mut make = |id: String, label: String, limit: &v1::RateLimit| {
            let spec = spec_of(limit);
            if let Some(old) = kept.remove(id.as_str()).filter(|old| old.spec == spec) {
                return old.clone();
            }
            Arc::new(new_limit(id, label, spec, book, now))
        };
        let mut every_call = Vec::new();
        if let Some(EnvLimit(rate)) = env {
            let env = v1::RateLimit {
                all: Some(v1::RateSize {
                    rps: rate.rps,
                    burst: rate.burst as u32,
                }),
                per_data_plane: true,
                ..Default::default()
            };
            every_call.push(make(ids::ENV.to_owned(), ids::label(ids::ENV), &env));
        }
        if let Some(top) = &snapshot.rate_limit {
            let label = if top.methods.is_empty() {
                "every tool call"
            } else {
                "every request"
            };
            every_call.push(make(ids::TOP.to_owned(), label.to_owned(), top));
        }
        let mut target = |on: ids::On, target: &str, limit: &v1::RateLimit| {
            let mut limit_of = |tool: Option<&str>, limit| {
                let id = ids::of(on, target, tool);
                let label = ids::label(&id);
                make(id, label, limit)
            };
            let own =
                (limit.all.is_some() || limit.per_caller.is_some()).then(|| limit_of(None, limit));
            let tools = limit
                .tools
                .iter()
                .map(|(tool, limit)| (tool.clone(), limit_of(Some(tool), limit)))
                .collect();
            Target { own, tools }
        };
        let groups = snapshot
            .groups
            .iter()
            .filter_map(|g| {
                Some((
                    g.id.clone(),
                    target(ids::On::Group, &g.id, g.rate_limit.as_ref()?),
                ))
            })
            .collect();
        let servers = snapshot
            .servers
            .iter()
            .filter_map(|s| {
                let limits = target(ids::On::Server, &s.id, s.rate_limit.as_ref()?);
                Some((s.id.clone(), Arc::new(limits)))
            })
            .collect();
        Self {
            every_call,
            groups,
            servers,
        }
    }

    /// Runs every fleet-wide limit on its share in `book`.
    pub(crate) fn apply_shares(&self, book: &ShareBook) {
        let now = Instant::now();
        for limit in self.iter() {
            if let (true, Some(budget)) = (limit.spec.fleet, limit.spec.all) {
                limit
                    .limiter
                    .set_share(book.share_of(&limit.id, budget), now);
            }
        }
    }
}

fn spec_of(limit: &v1::RateLimit) -> Spec {
    let rate = |s: &v1::RateSize| Rate::new(s.rps, f64::from(s.burst));
    Spec {
        all: limit.all.as_ref().map(rate),
        per_caller: limit.per_caller.as_ref().map(rate),
        fleet: !limit.per_data_plane,
        methods: Methods::of(&limit.methods),
    }
}

fn new_limit(id: String, label: String, spec: Spec, book: &ShareBook, now: Instant) -> Limit {
    let share = match (spec.fleet, spec.all) {
        (true, Some(budget)) => Some(book.share_of(&id, budget)),
        _ => None,
    };
    let limiter = Limiter::new(label, spec.all, spec.per_caller, spec.fleet, share, now);
    Limit {
        id,
        limiter,
        spec,
        refusing: AtomicBool::new(false),
        window: parking_lot::Mutex::new(Window::new(now)),
    }
}
