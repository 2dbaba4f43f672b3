//! The faults, done one at a time to one member (or to the control
//! plane), and when each began, ended and was repaired.
//!
//! - `kill`: SIGKILL of a member; started again on its port after `kill_down`.
//! - `stop`: SIGSTOP of a member for `stop_for`, then SIGCONT.
//! - `restart`: SIGTERM, wait for the exit, start again at once.
//! - `slow`: a graceful restart into `--latency-ms` for `slow_for`, then a
//!   graceful restart back to normal. The two restarts are part of the
//!   fault, so leaving rotation here may be the restart, not the latency.
//! - `cp`: SIGKILL of the control plane; started again after `cp_down`
//!   with the same state dir. No member is touched.
//!
//! `start` is when the fault was done, `end` when it was undone (the
//! restart was issued, SIGCONT sent), `ready` when the member answered
//! `/healthz` again (or the control plane listened).

use std::time::Duration;

use anyhow::bail;

use crate::chaos::clients::Log;
use crate::chaos::hangar::Hangar;
use crate::chaos::member::Member;

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// SIGKILL a member, restart it later.
    Kill,
    /// SIGSTOP a member, SIGCONT later.
    Stop,
    /// Graceful restart of a member.
    Restart,
    /// A member slow for a while.
    Slow,
    /// SIGKILL the control plane, restart it later.
    Cp,
}

impl Fault {
    /// Parses a `--faults` name.
    pub fn parse(name: &str) -> anyhow::Result<Self> {
        Ok(match name {
            "kill" => Self::Kill,
            "stop" => Self::Stop,
            "restart" => Self::Restart,
            "slow" => Self::Slow,
            "cp" => Self::Cp,
            other => bail!("unknown fault {other} (kill, stop, restart, slow, cp)"),
        })
    }

    /// The name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Self::Kill => "kill",
            Self::Stop => "stop",
            Self::Restart => "restart",
            Self::Slow => "slow",
            Self::Cp => "cp",
        }
    }
}

/// How long each fault lasts.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Durations {
    /// `kill`: time the member stays dead.
    pub kill_down: Duration,
    /// `stop`: time the member stays stopped.
    pub stop_for: Duration,
    /// `slow`: time the member runs slow.
    pub slow_for: Duration,
    /// `slow`: the latency added to every call.
    pub slow_latency_ms: u64,
    /// `cp`: time the control plane stays dead.
    pub cp_down: Duration,
}

/// When a fault happened, on the run's clock (seconds).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Timing {
    /// The fault.
    pub fault: Fault,
    /// The member it was done to, if any.
    pub member: Option<String>,
    /// Done.
    pub start: f64,
    /// Undone.
    pub end: f64,
    /// Serving again.
    pub ready: f64,
}

/// Does `fault` to `member` (or the control plane) and undoes it.
pub async fn inject(
    fault: Fault,
    member: &mut Member,
    hangar: &mut Hangar,
    durations: &Durations,
    log: &Log,
) -> anyhow::Result<Timing> {
    let start = log.now();
    let end;
    match fault {
        Fault::Kill => {
            member.kill().await?;
            tokio::time::sleep(durations.kill_down).await;
            end = log.now();
            member.spawn(0)?;
            member.wait_ready().await?;
        }
        Fault::Stop => {
            member.proc()?.signal("STOP")?;
            tokio::time::sleep(durations.stop_for).await;
            end = log.now();
            member.proc()?.signal("CONT")?;
            member.wait_ready().await?;
        }
        Fault::Restart => {
            member.terminate().await?;
            end = log.now();
            member.spawn(0)?;
            member.wait_ready().await?;
        }
        Fault::Slow => {
            member.terminate().await?;
            member.spawn(durations.slow_latency_ms)?;
            member.wait_ready().await?;
            tokio::time::sleep(durations.slow_for).await;
            end = log.now();
            member.terminate().await?;
            member.spawn(0)?;
            member.wait_ready().await?;
        }
        Fault::Cp => {
            hangar.kill_control_plane().await?;
            tokio::time::sleep(durations.cp_down).await;
            end = log.now();
            hangar.restart_control_plane().await?;
        }
    }
    Ok(Timing {
        fault,
        member: (fault != Fault::Cp).then(|| member.id.clone()),
        start,
        end,
        ready: log.now(),
    })
}
