//! The failover loop over a pool of scripted members: a real, seeded
//! strategy from `hangar-balance` orders them, and each member answers,
//! cannot be reached, or fails after the request reached it.

use std::cell::RefCell;

use hangar_balance::{Balancer, Candidate, StrategyKind};

use super::*;
use crate::route::retry::{FailureClass, RetryPolicy};

/// How a scripted member takes a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    /// Answers.
    Answers,
    /// The request never reaches it (connection refused).
    Unreached,
    /// The request reaches it and it fails (5xx, timeout, broken stream).
    Fails,
    /// Out of rotation: the strategy never orders it.
    Out,
}
use Script::*;

#[derive(Debug, PartialEq, Eq)]
struct ScriptError {
    index: usize,
    delivered: bool,
}

impl AttemptError for ScriptError {
    fn never_delivered(&self) -> bool {
        !self.delivered
    }
    fn failure_class(&self) -> Option<FailureClass> {
        Some(FailureClass::ServerError)
    }
    fn describe(&self) -> String {
        format!("member {} failed", self.index)
    }
}

struct TestPool {
    members: Vec<Script>,
    min_healthy: u32,
    balancer: Balancer,
    failovers: RefCell<Vec<usize>>,
    /// The group's circuit is open.
    circuit_open: bool,
}

impl TestPool {
    fn new(strategy: StrategyKind, members: &[Script], min_healthy: u32) -> Self {
        Self {
            members: members.to_vec(),
            min_healthy,
            balancer: Balancer::new(strategy, 7),
            failovers: RefCell::new(Vec::new()),
            circuit_open: false,
        }
    }
}

impl Pool for TestPool {
    fn id(&self) -> &str {
        "g"
    }
    fn size(&self) -> usize {
        self.members.len()
    }
    fn member_id(&self, _index: usize) -> &str {
        "m"
    }
    fn min_healthy(&self) -> u32 {
        self.min_healthy
    }
    fn order(&self) -> Vec<usize> {
        let view: Vec<Candidate> = self
            .members
            .iter()
            .enumerate()
            .map(|(i, script)| Candidate {
                eligible: *script != Out,
                weight: 1,
                // In member order, so `priority` tries them in a known order
                // (ties would start at a random member).
                priority: i32::try_from(i).unwrap_or(i32::MAX),
                in_flight: 0,
                ramp_percent: 100,
                latency_micros: 0,
            })
            .collect();
        self.balancer.order(&view)
    }
    fn record_failover(&self, index: usize) {
        self.failovers.borrow_mut().push(index);
        self.balancer.record_pick(index);
    }
    fn circuit(&self) -> Result<(), CircuitOpen> {
        if self.circuit_open {
            return Err(CircuitOpen {
                group: "g".into(),
                threshold: 10,
                min_healthy: self.min_healthy,
            });
        }
        Ok(())
    }
}

/// What one request through the loop came to.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    ServedBy(usize),
    NoAvailable {
        healthy: usize,
    },
    CircuitOpen,
    /// Failed on this member; `delivered` says whether it got the request.
    FailedOn {
        index: usize,
        delivered: bool,
    },
}

/// Runs one request; returns how it ended and the members tried, in order.
async fn request(pool: &TestPool, order: Vec<usize>) -> (Ended, Vec<usize>) {
    request_with(pool, order, None).await
}

/// [`request`] under `retry`.
async fn request_with(
    pool: &TestPool,
    order: Vec<usize>,
    retry: Option<Retry<'_>>,
) -> (Ended, Vec<usize>) {
    let tried = RefCell::new(Vec::new());
    let result = run(pool, order, retry, |index| {
        tried.borrow_mut().push(index);
        let script = pool.members[index];
        async move {
            match script {
                Answers => Ok(index),
                Unreached => Err(ScriptError {
                    index,
                    delivered: false,
                }),
                Fails | Out => Err(ScriptError {
                    index,
                    delivered: true,
                }),
            }
        }
    })
    .await;
    let ended = match result {
        Ok((answer, index)) => {
            assert_eq!(
                answer, index,
                "the answer comes from the member that served"
            );
            Ended::ServedBy(index)
        }
        Err(Failover::CircuitOpen(_)) => Ended::CircuitOpen,
        Err(Failover::NoAvailableMember(refusal)) => {
            assert_eq!(refusal.total, pool.members.len());
            Ended::NoAvailable {
                healthy: refusal.healthy,
            }
        }
        Err(Failover::Member { index, error }) => {
            assert_eq!(
                error.index, index,
                "the error names the member that gave it"
            );
            Ended::FailedOn {
                index,
                delivered: error.delivered,
            }
        }
    };
    (ended, tried.into_inner())
}

/// Table of one request each on a fresh priority pool, whose order is the
/// config order: what is tried, what the client gets, what is recorded.
#[tokio::test]
async fn each_request_tries_members_until_one_is_reached() {
    struct Case {
        members: &'static [Script],
        min_healthy: u32,
        ended: Ended,
        tried: &'static [usize],
        failovers: &'static [usize],
    }
    let cases = [
        Case {
            members: &[Answers, Answers, Answers],
            min_healthy: 1,
            ended: Ended::ServedBy(0),
            tried: &[0],
            failovers: &[],
        },
        // Never delivered: the next member takes it, and the strategy hears.
        Case {
            members: &[Unreached, Unreached, Answers],
            min_healthy: 1,
            ended: Ended::ServedBy(2),
            tried: &[0, 1, 2],
            failovers: &[2],
        },
        // Delivered and failed: never resent.
        Case {
            members: &[Fails, Answers, Answers],
            min_healthy: 1,
            ended: Ended::FailedOn {
                index: 0,
                delivered: true,
            },
            tried: &[0],
            failovers: &[],
        },
        Case {
            members: &[Unreached, Fails, Answers],
            min_healthy: 1,
            ended: Ended::FailedOn {
                index: 1,
                delivered: true,
            },
            tried: &[0, 1],
            failovers: &[],
        },
        // Nobody reachable: the last member's error.
        Case {
            members: &[Unreached, Unreached],
            min_healthy: 1,
            ended: Ended::FailedOn {
                index: 1,
                delivered: false,
            },
            tried: &[0, 1],
            failovers: &[],
        },
        // Out of rotation members are not tried.
        Case {
            members: &[Out, Answers],
            min_healthy: 1,
            ended: Ended::ServedBy(1),
            tried: &[1],
            failovers: &[],
        },
        // Below min_healthy nothing is tried.
        Case {
            members: &[Out, Answers, Answers],
            min_healthy: 3,
            ended: Ended::NoAvailable { healthy: 2 },
            tried: &[],
            failovers: &[],
        },
        Case {
            members: &[Out, Out],
            min_healthy: 0,
            ended: Ended::NoAvailable { healthy: 0 },
            tried: &[],
            failovers: &[],
        },
        Case {
            members: &[],
            min_healthy: 1,
            ended: Ended::NoAvailable { healthy: 0 },
            tried: &[],
            failovers: &[],
        },
    ];
    for (n, case) in cases.iter().enumerate() {
        let pool = TestPool::new(StrategyKind::Priority, case.members, case.min_healthy);
        let (ended, tried) = request(&pool, pool.order()).await;
        assert_eq!(ended, case.ended, "case {n}: {:?}", case.members);
        assert_eq!(tried, case.tried, "case {n}: tried");
        assert_eq!(
            *pool.failovers.borrow(),
            case.failovers,
            "case {n}: failovers"
        );
    }
}

/// The caller narrows the order to the members that can serve a request;
/// `min_healthy` counts only those.
#[tokio::test]
async fn min_healthy_counts_the_members_that_can_serve_this_request() {
    let pool = TestPool::new(StrategyKind::RoundRobin, &[Answers, Answers, Answers], 2);
    let only_last: Vec<usize> = pool.order().into_iter().filter(|&i| i == 2).collect();
    let (ended, tried) = request(&pool, only_last).await;
    assert_eq!(ended, Ended::NoAvailable { healthy: 1 });
    assert!(tried.is_empty());
}

/// Round robin over a member that cannot be reached: its turns go to the
/// others, and no member gets a double share because of the failover.
#[tokio::test]
async fn round_robin_spreads_the_turns_of_an_unreached_member_evenly() {
    let pool = TestPool::new(StrategyKind::RoundRobin, &[Answers, Unreached, Answers], 1);
    let mut served = [0u32; 3];
    for _ in 0..300 {
        match request(&pool, pool.order()).await.0 {
            Ended::ServedBy(index) => served[index] += 1,
            other => panic!("every request is served: {other:?}"),
        }
    }
    assert_eq!(served[1], 0);
    assert!(
        served[0].abs_diff(served[2]) <= 1,
        "even spread over the reachable members: {served:?}"
    );
}

/// With random and least-connections order every request is still served
/// while one member is reachable, whatever the seed's order.
#[tokio::test]
async fn any_strategy_finds_the_one_reachable_member() {
    for strategy in [
        StrategyKind::Random,
        StrategyKind::LeastConnections,
        StrategyKind::WeightedRoundRobin,
        StrategyKind::RoundRobin,
        StrategyKind::Priority,
    ] {
        let pool = TestPool::new(strategy, &[Unreached, Unreached, Answers, Unreached], 1);
        for _ in 0..50 {
            let (ended, tried) = request(&pool, pool.order()).await;
            assert_eq!(ended, Ended::ServedBy(2), "{strategy:?}");
            assert_eq!(
                tried.last(),
                Some(&2),
                "{strategy:?}: stops at the member that answered"
            );
        }
    }
}

/// An open circuit refuses the request before any member is tried, even
/// with every member in rotation.
#[tokio::test]
async fn an_open_circuit_refuses_without_trying_a_member() {
    let mut pool = TestPool::new(StrategyKind::RoundRobin, &[Answers, Answers], 1);
    pool.circuit_open = true;
    let (ended, tried) = request(&pool, pool.order()).await;
    assert_eq!(ended, Ended::CircuitOpen);
    assert!(tried.is_empty(), "{tried:?}");
}

fn policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy::of(Some(&hangar_proto::v1::RetryPolicy {
        max_attempts,
        backoff: "constant".into(),
        initial_delay_ms: 100,
        max_delay_ms: 100,
        retry_on: Vec::new(),
        jitter_factor: 0.0,
    }))
    .unwrap()
}

/// A call that reached a member and failed goes to the next member only
/// when the group has a retry policy and that member marks the tool safe
/// to repeat; each retry is logged with its wait, and `max_attempts`
/// counts the attempts that reached a member.
#[tokio::test(start_paused = true)]
async fn delivered_calls_are_retried_only_under_a_policy_for_safe_tools() {
    let pool = TestPool::new(StrategyKind::Priority, &[Fails, Fails, Answers], 1);
    let order = vec![0, 1, 2];
    let (ended, _) = request(&pool, order.clone()).await;
    assert_eq!(
        ended,
        Ended::FailedOn {
            index: 0,
            delivered: true
        },
        "no policy: never resent"
    );

    let three = policy(3);
    let unsafe_tool = |_: usize| false;
    let mut log = Vec::new();
    let retry = Retry {
        policy: &three,
        safe: &unsafe_tool,
        log: &mut log,
    };
    let (ended, tried) = request_with(&pool, order.clone(), Some(retry)).await;
    assert_eq!(tried, [0], "a tool not marked safe is not resent");
    assert!(matches!(ended, Ended::FailedOn { index: 0, .. }));
    assert!(log.is_empty());

    let safe_tool = |_: usize| true;
    let retry = Retry {
        policy: &three,
        safe: &safe_tool,
        log: &mut log,
    };
    let started = tokio::time::Instant::now();
    let (ended, tried) = request_with(&pool, order.clone(), Some(retry)).await;
    assert_eq!((ended, tried), (Ended::ServedBy(2), vec![0, 1, 2]));
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].member, "m");
    assert_eq!(started.elapsed(), std::time::Duration::from_millis(200));

    let two = policy(2);
    let mut log = Vec::new();
    let retry = Retry {
        policy: &two,
        safe: &safe_tool,
        log: &mut log,
    };
    let (ended, tried) = request_with(&pool, order, Some(retry)).await;
    assert_eq!(tried, [0, 1], "max_attempts 2");
    assert!(matches!(ended, Ended::FailedOn { index: 1, .. }));
}
