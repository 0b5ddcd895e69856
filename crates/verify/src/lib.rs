//! The comparator: what the network did, against what policy says.
//!
//! Pure code: the orchestrator hands it the plan, what the snapshot could not model, the
//! probe pods as they came up and every round's observations, and it returns the run's
//! judgement. Every decision a run makes about its results is here, tested with tables.
//!
//! # Layout
//! - [`rounds`]: one probe's judgement from its rounds, and when to try it again.
//! - [`judgement`]: a whole run judged: every probe, the enforcement canary, coverage.
//! - [`paths`]: a disagreement seen only through a Service, told apart from one the pod
//!   path sees too.
//! - [`record`]: the run record that reports, metrics and the cluster record render.

pub mod judgement;
pub mod paths;
pub mod record;
pub mod rounds;
#[cfg(any(test, feature = "test-support"))]
pub mod sample;

pub use judgement::{Evidence, Judgement, ProbeRounds, RoundResult, SnapshotFacts, Unreadable, judge_run};
pub use record::{
    Canary, Expectation, IntentRef, ProbePath, ProbeRecord, RuleCoverage, RunRecord, Timings, UncoveredRule,
    WorkloadRef,
};
pub use rounds::{Outcome, judge_rounds, judge_with_intent, needs_retry};
