//! Sample records, for the tests of the crates that render run records (reports, metrics).

use crate::Outcome;
use crate::record::{
    Canary, Expectation, Observed, ProbePath, ProbeRecord, RuleCoverage, RunRecord, Timings, WorkloadRef,
};

/// A probe from `dev/api` to `prod/db` on 5432/TCP, which policy denies unless
/// `expected_allowed`.
pub fn probe(outcome: Outcome, expected_allowed: bool, observed: Observed) -> ProbeRecord {
    expected_probe(outcome, Expectation::from_allowed(expected_allowed), observed)
}

/// The same probe with any expectation, `unknown` included.
pub fn expected_probe(outcome: Outcome, expected: Expectation, observed: Observed) -> ProbeRecord {
    ProbeRecord {
        source: WorkloadRef { namespace: "dev".into(), workload: "api".into() },
        destination: WorkloadRef { namespace: "prod".into(), workload: "db".into() },
        port: 5432,
        protocol: "TCP".into(),
        kind: "tcp".into(),
        purpose: "isolation".into(),
        path: ProbePath::Pod,
        expected,
        expected_because: "ingress isolated by prod/deny-all and no rule allows it".into(),
        observed: vec![observed],
        millis: Some(2),
        outcome,
        detail: None,
        intent: None,
    }
}

/// A run from t=100 s to t=104 s that exercised 3 of 4 rules (all 4 planned), with no
/// problems.
pub fn run(probes: Vec<ProbeRecord>, canary: Canary) -> RunRecord {
    RunRecord {
        run_id: "r".into(),
        started_at: 100.0,
        finished_at: 104.0,
        probes,
        coverage: Some(RuleCoverage { rules: 4, planned: 4, exercised: 3 }),
        canary,
        problems: Vec::new(),
        warnings: Vec::new(),
        timings: Timings::default(),
        uncovered: Vec::new(),
    }
}
