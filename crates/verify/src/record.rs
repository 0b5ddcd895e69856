//! What a run found: every probe with its expectation, its rounds and its judgement, the
//! enforcement canary and coverage. Reports, metrics and the run's Kubernetes record are
//! all rendered from this one value.

use std::collections::BTreeMap;

pub use netcanary_probe::observed::Observed;
use serde::{Deserialize, Serialize};

use crate::Outcome;

/// A workload as reports and metric labels name it: never a pod name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WorkloadRef {
    pub namespace: String,
    pub workload: String,
}

impl std::fmt::Display for WorkloadRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.workload)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeRecord {
    pub source: WorkloadRef,
    pub destination: WorkloadRef,
    pub port: u16,
    /// `TCP` or `UDP`.
    pub protocol: String,
    /// `tcp`, `udp` or `dns`.
    pub kind: String,
    /// Why the plan holds this probe (`dns`, `allow-rule`, `isolation`, `sample`, `canary`).
    pub purpose: String,
    pub expected_allowed: bool,
    /// What policy says, in words: the rule that allows it or the isolation that denies it.
    pub expected_because: String,
    /// One observation per round, oldest first.
    pub observed: Vec<Observed>,
    /// Latency of the last round, when known.
    pub millis: Option<u64>,
    pub outcome: Outcome,
    /// Why a probe is inconclusive, or the prober's detail for the last round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The enforcement canary: a probe between two netcanary pods that netcanary's own
/// default-deny policy forbids.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state", content = "reason")]
pub enum Canary {
    /// Blocked, as policy says: the network enforces policy.
    Enforced,
    /// It connected: the network enforces no policy at all.
    NotEnforced,
    /// It could not be judged, and why.
    Unknown(String),
}

/// Where a run's time went. Waiting for pods (their start-up and the probes' own
/// deadlines) and between rounds is the cluster's and the network's time; the rest is the
/// controller's own overhead.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timings {
    pub snapshot_seconds: f64,
    pub plan_seconds: f64,
    /// Waiting for target pods to start and for source pods to start, probe and finish.
    pub pods_seconds: f64,
    /// Waiting between rounds for policy still being programmed.
    pub round_wait_seconds: f64,
    /// Creating the run's pods (API requests, admission).
    #[serde(default)]
    pub create_seconds: f64,
    /// Deleting the run's pods.
    #[serde(default)]
    pub cleanup_seconds: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    pub run_id: String,
    /// Unix time in seconds.
    pub started_at: f64,
    pub finished_at: f64,
    pub probes: Vec<ProbeRecord>,
    /// Fraction of policy rules exercised by an allowed probe.
    pub coverage: f64,
    pub canary: Canary,
    /// Problems that make the run incomplete: unreadable policies, pods that never started,
    /// a deadline hit. Any problem means the run did not verify all it planned.
    pub problems: Vec<String>,
    /// What the run noticed that does not make it unverified (unlike a problem): the fence
    /// that keeps netcanary to its own pods is missing, say.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(default)]
    pub timings: Timings,
}

impl RunRecord {
    pub fn counts(&self) -> BTreeMap<Outcome, usize> {
        let mut counts: BTreeMap<Outcome, usize> = Outcome::ALL.iter().map(|o| (*o, 0)).collect();
        for probe in &self.probes {
            *counts.entry(probe.outcome).or_default() += 1;
        }
        counts
    }

    pub fn mismatches(&self) -> impl Iterator<Item = &ProbeRecord> {
        self.probes.iter().filter(|p| p.outcome.is_mismatch())
    }

    /// Whether the run verified everything it planned: nothing inconclusive, no problem.
    pub fn verified(&self) -> bool {
        self.problems.is_empty() && self.probes.iter().all(|p| p.outcome != Outcome::Inconclusive)
    }

    /// The CLI's exit status: 1 when the network disagrees with policy (a mismatch, or a
    /// canary that connected), else 2 when something could not be verified, else 0.
    pub fn exit_code(&self) -> u8 {
        if self.canary == Canary::NotEnforced || self.mismatches().next().is_some() {
            1
        } else if !self.verified() {
            2
        } else {
            0
        }
    }

    pub fn duration_seconds(&self) -> f64 {
        (self.finished_at - self.started_at).max(0.0)
    }

    /// The run's time minus what it spent waiting on pods and between rounds: what the
    /// controller itself adds (API calls, snapshot, plan, judgement, record, cleanup).
    pub fn controller_overhead_seconds(&self) -> f64 {
        (self.duration_seconds() - self.timings.pods_seconds - self.timings.round_wait_seconds).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(outcome: Outcome) -> ProbeRecord {
        crate::sample::probe(outcome, true, Observed::Connected)
    }

    fn record(outcomes: &[Outcome], canary: Canary, problems: &[&str]) -> RunRecord {
        RunRecord {
            run_id: "r".into(),
            started_at: 10.0,
            finished_at: 12.5,
            probes: outcomes.iter().map(|o| probe(*o)).collect(),
            coverage: 1.0,
            canary,
            problems: problems.iter().map(|p| p.to_string()).collect(),
            warnings: Vec::new(),
            timings: Timings { pods_seconds: 1.5, round_wait_seconds: 0.5, ..Timings::default() },
        }
    }

    #[test]
    fn exit_codes() {
        assert_eq!(record(&[Outcome::Pass, Outcome::Converging], Canary::Enforced, &[]).exit_code(), 0);
        assert_eq!(record(&[Outcome::Pass, Outcome::UnexpectedAllow], Canary::Enforced, &[]).exit_code(), 1);
        assert_eq!(record(&[Outcome::Inconclusive, Outcome::UnexpectedDeny], Canary::Enforced, &[]).exit_code(), 1);
        assert_eq!(record(&[Outcome::Pass], Canary::NotEnforced, &[]).exit_code(), 1);
        assert_eq!(record(&[Outcome::Pass, Outcome::Inconclusive], Canary::Enforced, &[]).exit_code(), 2);
        assert_eq!(record(&[Outcome::Pass], Canary::Enforced, &["pod never started"]).exit_code(), 2);
        assert_eq!(record(&[], Canary::Enforced, &[]).duration_seconds(), 2.5);
        assert_eq!(record(&[], Canary::Enforced, &[]).controller_overhead_seconds(), 0.5);
    }

    #[test]
    fn counts_every_outcome() {
        let counts = record(&[Outcome::Pass, Outcome::Pass, Outcome::UnexpectedDeny], Canary::Enforced, &[]).counts();
        assert_eq!(counts[&Outcome::Pass], 2);
        assert_eq!(counts[&Outcome::UnexpectedDeny], 1);
        assert_eq!(counts[&Outcome::Inconclusive], 0);
        assert_eq!(counts.len(), 5);
    }
}
