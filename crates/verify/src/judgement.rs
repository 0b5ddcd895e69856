//! A whole run judged: every planned probe against what policy says for the probe pods
//! that really ran, the enforcement canary, and the rules the run really exercised.
//!
//! A probe is inconclusive — never a pass, never a page — when it could not be sent, when
//! there is nothing to expect (a probe pod never started, or policy's answer is not known
//! from cluster objects: a cluster policy rule naming domains, cluster policies of equal
//! priority with different actions), when a policy of its namespaces (or a cluster-scoped
//! one) could not be read, or when it disagrees with policy and the cluster has policy kinds
//! netcanary does not evaluate (they may be what decided it).

use std::collections::BTreeSet;

use netcanary_planner::{Destination, Plan, ProbePodCluster, Purpose};
use netcanary_policy::intent::Expect;
use netcanary_policy::{Action, DirectionVerdict, RuleRef, Tier, Verdict};
use netcanary_wire::{Observed, Reachability};

use crate::record::{Canary, Expectation, IntentRef, ProbeRecord, RuleCoverage, WorkloadRef};
use crate::rounds::{Outcome, judge_with_intent};

/// An object the snapshot could not read (and skipped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreadable {
    /// `Kind ns/name`.
    pub object: String,
    pub namespace: String,
    pub reason: String,
}

/// What the snapshot could not model: it limits what a disagreement proves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotFacts {
    pub unreadable: Vec<Unreadable>,
    /// Kinds in the cluster that decide reachability and that netcanary does not evaluate,
    /// as people name them (`2 CiliumNetworkPolicy`).
    pub unevaluated: Vec<String>,
}

/// One round's answer for a probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoundResult {
    pub observed: Observed,
    pub millis: Option<u64>,
    /// The prober's detail, or why no answer came back.
    pub detail: Option<String>,
}

/// Everything observed of one planned probe.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeRounds {
    /// One per round the probe was sent in, oldest first.
    pub rounds: Vec<RoundResult>,
    /// Why the probe could not be sent at all (its target never started, no DNS Service).
    pub unsent: Option<String>,
}

impl ProbeRounds {
    fn latest(&self) -> Option<&RoundResult> {
        self.rounds.last()
    }

    /// Whether the probe ran and got an answer in its last round.
    fn answered(&self) -> bool {
        self.unsent.is_none() && self.latest().is_some_and(|r| r.observed.reachability() != Reachability::Inconclusive)
    }
}

/// What a run hands the comparator.
#[derive(Clone, Copy, Debug)]
pub struct Evidence<'a> {
    /// The plan as run, the canary included.
    pub plan: &'a Plan,
    /// The canary probe's index in the plan.
    pub canary: usize,
    /// The namespace whose default-deny policy the canary tests.
    pub canary_namespace: &'a str,
    /// How reports name the destination of DNS probes.
    pub dns_service: &'a WorkloadRef,
    pub facts: &'a SnapshotFacts,
    /// The snapshot with the probe pods as they came up: what expectations are computed on.
    pub probe_pods: &'a ProbePodCluster,
    /// One per planned probe, in plan order.
    pub observations: &'a [ProbeRounds],
}

/// The comparator's answer for a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    /// Every probe but the canary, in plan order.
    pub probes: Vec<ProbeRecord>,
    pub canary: Canary,
    /// `None` when the run ended before it planned.
    pub coverage: Option<RuleCoverage>,
    /// What limits the run's verdicts: objects not read, kinds not evaluated.
    pub problems: Vec<String>,
}

impl Judgement {
    /// The judgement of a run that ended before it judged its probes: nothing exercised,
    /// and nothing known at all of what it did not get to (no snapshot, no plan).
    pub fn nothing_judged(facts: Option<&SnapshotFacts>, planned: Option<RuleCoverage>) -> Self {
        Judgement {
            probes: Vec::new(),
            canary: Canary::Unknown("the run ended before the canary".into()),
            coverage: planned.map(|planned| RuleCoverage { exercised: 0, ..planned }),
            problems: facts.map(facts_problems).unwrap_or_default(),
        }
    }
}

/// Judges every probe of a run.
pub fn judge_run(evidence: &Evidence) -> Judgement {
    let Evidence { plan, canary, facts, observations, .. } = *evidence;
    let unreadable: BTreeSet<&str> = facts.unreadable.iter().map(|u| u.namespace.as_str()).collect();
    let mut probes = Vec::new();
    let mut canary_state = Canary::Unknown("the plan has no canary probe".into());
    let mut exercised: BTreeSet<&RuleRef> = BTreeSet::new();
    for (p, planned) in plan.probes.iter().enumerate() {
        let observed = &observations[p];
        let verdict = evidence.probe_pods.verdict(plan, p);
        let record = probe_record(evidence, p, verdict.as_ref(), &unreadable);
        if p == canary {
            canary_state = judge_canary(&record, evidence.canary_namespace);
        } else {
            if observed.answered() {
                exercised.extend(&planned.covers);
            }
            probes.push(record);
        }
    }
    crate::paths::say_where_only_a_service_disagrees(&mut probes);
    let coverage = RuleCoverage { exercised: exercised.len(), ..RuleCoverage::planned(plan) };
    let problems = facts_problems(facts).into_iter().chain(plan.unverified_intent.iter().cloned()).collect();
    Judgement { probes, canary: canary_state, coverage: Some(coverage), problems }
}

impl RuleCoverage {
    /// What `plan` means to exercise, before anything ran.
    pub fn planned(plan: &Plan) -> Self {
        RuleCoverage { rules: plan.coverage.rules, planned: plan.coverage.covered.len(), exercised: 0 }
    }
}

/// The problems the snapshot's facts put on every run.
fn facts_problems(facts: &SnapshotFacts) -> Vec<String> {
    let unevaluated = (!facts.unevaluated.is_empty()).then(|| {
        format!(
            "the cluster has policies netcanary does not evaluate ({}); a disagreement they could explain is reported as inconclusive",
            facts.unevaluated.join(", ")
        )
    });
    let unreadable =
        facts.unreadable.iter().map(|u| format!("{} cannot be read and was skipped: {}", u.object, u.reason));
    unevaluated.into_iter().chain(unreadable).collect()
}

fn probe_record(evidence: &Evidence, p: usize, verdict: Option<&Verdict>, unreadable: &BTreeSet<&str>) -> ProbeRecord {
    let plan = evidence.plan;
    let probe = &plan.probes[p];
    let observed = &evidence.observations[p];
    let source = &plan.mirrors[probe.from];
    let source = WorkloadRef { namespace: source.namespace.clone(), workload: source.workload.clone() };
    let destination = match probe.to {
        Destination::Dns => evidence.dns_service.clone(),
        Destination::Mirror(m) => {
            WorkloadRef { namespace: plan.mirrors[m].namespace.clone(), workload: plan.mirrors[m].workload.clone() }
        }
        // Outside the cluster: no namespace, the address names it.
        Destination::External(ip) => WorkloadRef { namespace: String::new(), workload: ip.to_string() },
    };
    // A cluster-scoped object (its namespace empty) can decide any pair.
    let cluster_wide_unreadable = unreadable.contains("");
    let touches_unreadable =
        unreadable.contains(source.namespace.as_str()) || unreadable.contains(destination.namespace.as_str());
    let unknown = verdict.and_then(not_known);
    let observations: Vec<Observed> = observed.rounds.iter().map(|r| r.observed).collect();
    let intent_allows = probe.intent.as_ref().map(|mark| mark.expect == Expect::Allow);
    let (outcome, detail) = match (verdict, &observed.unsent) {
        (_, Some(reason)) => (Outcome::Inconclusive, Some(reason.clone())),
        (None, None) => (Outcome::Inconclusive, Some("no expectation: the pods involved never started".to_string())),
        (Some(_), None) if cluster_wide_unreadable => {
            (Outcome::Inconclusive, Some("a cluster-scoped policy or Node could not be read".to_string()))
        }
        (Some(_), None) if touches_unreadable => {
            (Outcome::Inconclusive, Some("a policy in this namespace pair could not be read".to_string()))
        }
        (Some(v), None) => {
            match judge_with_intent(unknown.is_none().then_some(v.allowed), intent_allows, &observations) {
                // The network did what intent forbids: no policy kind explains that away.
                Outcome::IntentViolation => (
                    Outcome::IntentViolation,
                    probe.intent.as_ref().map(|mark| {
                        let did = if mark.expect == Expect::Allow { "refused it" } else { "let it through" };
                        format!("intent {} says {}, and the network {did}", mark.statement, mark.expect)
                    }),
                ),
                // Policy's answer is not known, and intent (if any) was not contradicted.
                Outcome::Inconclusive if unknown.is_some() => (Outcome::Inconclusive, unknown.clone()),
                outcome if outcome.is_mismatch() && !evidence.facts.unevaluated.is_empty() => (
                    Outcome::Inconclusive,
                    Some(format!("{} may decide this pair; not evaluated", evidence.facts.unevaluated.join(", "))),
                ),
                outcome => (outcome, observed.latest().and_then(|r| r.detail.clone())),
            }
        }
    };
    ProbeRecord {
        source,
        destination,
        port: probe.port.port,
        protocol: probe.port.protocol.to_string(),
        kind: if probe.to == Destination::Dns {
            "dns".into()
        } else {
            probe.port.protocol.as_str().to_ascii_lowercase()
        },
        purpose: if p == evidence.canary { "canary".into() } else { purpose(probe.purpose).into() },
        path: probe.path,
        expected: match verdict {
            Some(v) if unknown.is_none() => Expectation::from_allowed(v.allowed),
            _ => Expectation::Unknown,
        },
        expected_because: verdict.map(because).unwrap_or_default(),
        observed: observations,
        millis: observed.latest().and_then(|r| r.millis),
        outcome,
        detail,
        intent: probe.intent.as_ref().map(|mark| IntentRef {
            statement: mark.statement.clone(),
            expect: Expectation::from_allowed(mark.expect == Expect::Allow),
        }),
    }
}

/// The canary is enforced when its denied probe was blocked, and not enforced when it got
/// through; anything else says nothing about enforcement.
fn judge_canary(record: &ProbeRecord, namespace: &str) -> Canary {
    match (record.expected, record.outcome) {
        (Expectation::Allow, _) => Canary::Unknown(format!(
            "no policy in namespace {namespace} denies the canary: apply netcanary's default-deny policy there"
        )),
        (Expectation::Deny, Outcome::Pass) => Canary::Enforced,
        (Expectation::Deny, Outcome::UnexpectedAllow | Outcome::Converging) => Canary::NotEnforced,
        _ => Canary::Unknown(record.detail.clone().unwrap_or_else(|| "the canary probe could not run".into())),
    }
}

fn purpose(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Dns => "dns",
        Purpose::AllowRule => "allow-rule",
        Purpose::Isolation => "isolation",
        Purpose::Sample => "sample",
        Purpose::External => "external",
        Purpose::Intent => "intent",
    }
}

/// Why policy's answer for a probe is not known from cluster objects: a cluster policy rule
/// naming domains could decide it, or cluster policies of equal priority disagree (which
/// applies is the implementation's choice).
fn not_known(verdict: &Verdict) -> Option<String> {
    verdict.not_known().map(|reason| format!("policy's answer is not known: {reason}"))
}

/// The expectation in words, for reports and events: the cluster policy rules that passed,
/// and for each direction that decided, the tier, rule and action (or the NetworkPolicy
/// rules that allow, or the isolation that denies).
fn because(verdict: &Verdict) -> String {
    let sides = [&verdict.egress, &verdict.ingress];
    let passed = sides.into_iter().flat_map(|side| {
        side.consulted_steps().filter_map(move |step| {
            let hit = step.hit.as_ref().filter(|hit| hit.action == Action::Pass)?;
            Some(format!("{} passed on by {} tier {} (Pass)", side.direction, step.tier.as_str(), hit.rule))
        })
    });
    let decided = if verdict.allowed {
        let tiered: Vec<String> = sides.into_iter().filter_map(cluster_decision).collect();
        let rules: Vec<String> = sides
            .into_iter()
            .filter(|side| cluster_decision(side).is_none())
            .flat_map(|side| &side.allowed_by)
            .map(|h| h.rule.to_string())
            .collect();
        let by_rules = (!rules.is_empty()).then(|| format!("allowed by {}", rules.join(", ")));
        let said: Vec<String> = tiered.into_iter().chain(by_rules).collect();
        if said.is_empty() { "no policy isolates either side".into() } else { said.join("; ") }
    } else {
        // A side whose denial is known explains it better than one a domain name may change.
        let known = sides.into_iter().find(|side| !side.allowed && side.unknown.is_none());
        match known.or(verdict.denied_by()) {
            Some(side) => cluster_decision(side).unwrap_or_else(|| {
                format!("{} isolated by {} and no rule allows it", side.direction, side.policies.join(", "))
            }),
            None => "denied".into(),
        }
    };
    passed.chain(std::iter::once(decided)).collect::<Vec<_>>().join("; ")
}

/// `ingress denied by Admin tier ClusterNetworkPolicy/x ingress "deny-all" (Deny)`, when a
/// cluster policy tier decided the direction.
fn cluster_decision(side: &DirectionVerdict) -> Option<String> {
    let decision = &side.decision;
    if !matches!(decision.tier, Tier::Admin | Tier::Baseline) {
        return None;
    }
    let done = if side.allowed { "accepted" } else { "denied" };
    let rule = decision.rule.as_deref().unwrap_or_default();
    Some(format!("{} {done} by {} tier {rule} ({})", side.direction, decision.tier.as_str(), decision.action))
}
