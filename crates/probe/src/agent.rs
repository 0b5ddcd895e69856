//! Runs a whole plan: every probe concurrently (bounded), each with its own deadline, under a
//! global watchdog so that the agent never outlives its deadlines by more than a margin,
//! whatever the network or the system resolver does.

use std::time::Duration;

use futures::StreamExt;
use netcanary_wire::{AgentReport, ProbeResult, pace};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::observation::Observation;
use crate::plan::{PlanEntry, ProbePlan, ProbeSpec};
use crate::{dns, resolve, tcp, udp};

use netcanary_wire::pace::WATCHDOG_MARGIN;

/// Runs every probe of `plan` with at most `concurrency` in flight, after the plan's delay;
/// results are in plan order. Never fails: a probe that cannot run is reported as `error`.
pub async fn run_plan(plan: &ProbePlan, concurrency: usize) -> AgentReport {
    if !plan.delay.is_zero() {
        debug!(delay_ms = millis(plan.delay), "waiting before the first probe");
        tokio::time::sleep(plan.delay).await;
    }
    let started = Instant::now();
    let concurrency = concurrency.max(1);
    let timeout = plan.timeout;
    let watchdog = started + watchdog_budget(plan, concurrency);

    let mut finished: Vec<Option<ProbeResult>> = vec![None; plan.probes.len()];
    let mut in_flight = futures::stream::iter(plan.probes.iter().enumerate())
        .map(|(index, probe)| async move { (index, run_guarded(probe, timeout).await) })
        .buffer_unordered(concurrency);
    let watchdog_fired = tokio::time::sleep_until(watchdog);
    tokio::pin!(watchdog_fired);
    loop {
        tokio::select! {
            next = in_flight.next() => match next {
                Some((index, result)) => finished[index] = Some(result),
                None => break,
            },
            () = &mut watchdog_fired => {
                warn!(unfinished = finished.iter().filter(|r| r.is_none()).count(),
                      "watchdog fired: reporting unfinished probes as errors");
                break;
            }
        }
    }
    let results = finished
        .into_iter()
        .zip(&plan.probes)
        .map(|(result, probe)| {
            result.unwrap_or_else(|| {
                finish(
                    probe,
                    Observation::error("the watchdog stopped the agent before this probe finished"),
                    Duration::ZERO,
                )
            })
        })
        .collect();
    AgentReport { results, timeout_ms: millis(timeout), concurrency, elapsed_ms: millis(started.elapsed()) }
}

/// Runs one probe under its own hard limit: its deadlines plus the margin.
async fn run_guarded(probe: &PlanEntry, timeout: Duration) -> ProbeResult {
    let started = Instant::now();
    let limit = probe.spec.as_ref().map_or(Duration::ZERO, |spec| probe_budget(spec, timeout));
    let outcome = match tokio::time::timeout(limit + WATCHDOG_MARGIN, run_one(probe, timeout)).await {
        Ok(outcome) => outcome,
        Err(_elapsed) => Observation::error("the probe overran its deadline"),
    };
    let result = finish(probe, outcome, started.elapsed());
    debug!(probe.id = %result.id, observed = %result.observed, millis = result.millis, "probe finished");
    result
}

async fn run_one(probe: &PlanEntry, timeout: Duration) -> Observation {
    let spec = match &probe.spec {
        Ok(spec) => spec,
        Err(detail) => return Observation::error(detail.clone()),
    };
    match spec {
        ProbeSpec::Tcp(endpoint) => match resolve::endpoint(endpoint, timeout).await {
            Ok(addr) => tcp::probe(addr, timeout).await,
            Err(detail) => Observation::error(detail),
        },
        ProbeSpec::Udp(endpoint) => match resolve::endpoint(endpoint, timeout).await {
            Ok(addr) if endpoint.path.needs_service() => dns::behind_a_service(udp::probe(addr, timeout).await),
            Ok(addr) => udp::probe(addr, timeout).await,
            Err(detail) => Observation::error(detail),
        },
        ProbeSpec::Dns { name, server, transport } => dns::probe(name, *server, *transport, timeout).await,
    }
}

fn finish(probe: &PlanEntry, outcome: Observation, elapsed: Duration) -> ProbeResult {
    let spec = probe.spec.as_ref().ok();
    ProbeResult {
        id: probe.id.clone(),
        kind: spec.map(|s| s.kind().to_owned()),
        target: spec.map(ProbeSpec::target),
        observed: outcome.observed,
        millis: millis(elapsed),
        micros: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        detail: outcome.detail,
    }
}

/// The longest one probe may take (see [`pace::longest_probe`]).
fn probe_budget(spec: &ProbeSpec, timeout: Duration) -> Duration {
    let to_a_name = match spec {
        ProbeSpec::Tcp(endpoint) | ProbeSpec::Udp(endpoint) => {
            matches!(endpoint.host, crate::plan::Host::Name(_))
        }
        ProbeSpec::Dns { .. } => false,
    };
    pace::longest_probe(timeout, to_a_name)
}

/// Waves of `concurrency` probes, each wave as long as the longest probe, plus the margin.
fn watchdog_budget(plan: &ProbePlan, concurrency: usize) -> Duration {
    let longest = plan
        .probes
        .iter()
        .filter_map(|p| p.spec.as_ref().ok())
        .map(|spec| probe_budget(spec, plan.timeout))
        .max()
        .unwrap_or(Duration::ZERO);
    pace::watchdog(plan.probes.len(), concurrency, longest)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
