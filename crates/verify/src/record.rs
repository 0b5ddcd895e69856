//! What a run found: every probe with its expectation, its rounds and its judgement, the
//! enforcement canary and coverage. Reports, metrics and the run's Kubernetes record are
//! all rendered from this one value.

use std::collections::BTreeMap;

pub use netcanary_wire::{Observed, ProbePath};
use serde::{Deserialize, Serialize};

use crate::Outcome;
use crate::judgement::Judgement;

/// A workload as reports and metric labels name it: never a pod name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WorkloadRef {
    pub namespace: String,
    pub workload: String,
}

impl std::fmt::Display for WorkloadRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // An address outside the cluster has no namespace.
        if self.namespace.is_empty() {
            return f.write_str(&self.workload);
        }
        write!(f, "{}/{}", self.namespace, self.workload)
    }
}

/// What policy says of a probe: allow, deny, or unknown when there was nothing to compute
/// it for (a probe pod that never started). Unknown is never counted as either.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expectation {
    Allow,
    Deny,
    Unknown,
}

impl Expectation {
    /// The metric label and JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Expectation::Allow => "allow",
            Expectation::Deny => "deny",
            Expectation::Unknown => "unknown",
        }
    }

    pub fn from_allowed(allowed: bool) -> Self {
        if allowed { Expectation::Allow } else { Expectation::Deny }
    }
}

impl std::fmt::Display for Expectation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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
    /// How the probe reached its destination: `pod` (its address), `service` (a Service's
    /// ClusterIP) or `dns` (a Service's name). A record written before paths existed is `pod`.
    #[serde(default)]
    pub path: ProbePath,
    pub expected: Expectation,
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
    /// The statement of declared intent the probe falls under, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<IntentRef>,
}

/// A statement of declared intent, as records name it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentRef {
    /// `prod-isolation/dev-never-reaches-db`.
    pub statement: String,
    /// `allow` or `deny`.
    pub expect: Expectation,
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

/// How many policy rules the run's probes exercise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleCoverage {
    /// Every rule of every policy.
    pub rules: usize,
    /// Rules some planned probe would exercise.
    pub planned: usize,
    /// Rules some probe exercised: it ran and got an answer (any answer but `error`).
    pub exercised: usize,
}

impl RuleCoverage {
    /// The fraction of rules exercised by probes that ran and answered; 1 when there are
    /// no rules.
    pub fn exercised_ratio(&self) -> f64 {
        ratio(self.exercised, self.rules)
    }

    /// The fraction of rules the plan meant to exercise; 1 when there are no rules.
    pub fn planned_ratio(&self) -> f64 {
        ratio(self.planned, self.rules)
    }
}

/// A rule no planned probe exercises, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UncoveredRule {
    /// `namespace/policy ingress[0]`.
    pub rule: String,
    pub why: String,
    /// Whether a larger budget would cover it (it has a witness the budget could not pay
    /// for); otherwise no probe can.
    pub budget: bool,
}

impl UncoveredRule {
    /// Every rule the plan leaves unexercised.
    pub fn of(plan: &netcanary_planner::Plan) -> Vec<Self> {
        let coverage = &plan.coverage;
        (coverage.uncovered.iter())
            .map(|(rule, why)| UncoveredRule {
                rule: rule.to_string(),
                why: why.clone(),
                budget: coverage.budget.contains(rule),
            })
            .collect()
    }
}

/// `75% exercised, 100% planned`: what the cluster record and reports show.
impl std::fmt::Display for RuleCoverage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.0}% exercised, {:.0}% planned", self.exercised_ratio() * 100.0, self.planned_ratio() * 100.0)
    }
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 { 1.0 } else { part as f64 / whole as f64 }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    pub run_id: String,
    /// Unix time in seconds.
    pub started_at: f64,
    pub finished_at: f64,
    pub probes: Vec<ProbeRecord>,
    /// Policy rules exercised by probes that ran and answered, beside those planned;
    /// `None` when the run ended before it planned.
    pub coverage: Option<RuleCoverage>,
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
    /// The rules the plan left unexercised, each with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uncovered: Vec<UncoveredRule>,
}

impl RunRecord {
    /// A run's record from its judgement. `problems` are what went wrong outside the
    /// judgement (pods that never ran, an API error, a deadline), added to its own.
    pub fn new(
        run_id: String,
        (started_at, finished_at): (f64, f64),
        judgement: Judgement,
        problems: Vec<String>,
        timings: Timings,
    ) -> Self {
        let Judgement { probes, canary, coverage, problems: judged } = judgement;
        RunRecord {
            run_id,
            started_at,
            finished_at,
            probes,
            coverage,
            canary,
            problems: judged.into_iter().chain(problems).collect(),
            warnings: Vec::new(),
            timings,
            uncovered: Vec::new(),
        }
    }

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
            coverage: None,
            canary,
            problems: problems.iter().map(|p| p.to_string()).collect(),
            warnings: Vec::new(),
            timings: Timings { pods_seconds: 1.5, round_wait_seconds: 0.5, ..Timings::default() },
            uncovered: Vec::new(),
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
        assert_eq!(counts.len(), 6);
    }
}
