//! Declared intent: statements of what must, or must never, reach what ("namespaces
//! labelled env=dev never reach app=db in env=prod on 5432/TCP"), and the static check of
//! those statements against what policy allows.
//!
//! Intent is written by people who know what the cluster is for, independently of the
//! policies that are meant to implement it; a policy that allows what intent forbids is a
//! finding even when the network faithfully enforces that policy.

use std::collections::HashMap;
use std::fmt;

use crate::cluster_policy::Action;
use crate::evaluate::{self, is_self_pair};
use crate::matrix::{Matrix, PolicyIndex};
use crate::model::Direction;
use crate::model::{Cluster, Endpoint};
use crate::port::PortProto;
use crate::selector::Selector;
use crate::verdict::{DirectionVerdict, Tier, Verdict};

/// What a statement says must happen to its connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Expect {
    Allow,
    Deny,
}

impl Expect {
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Allow => "allow",
            Expect::Deny => "deny",
        }
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One side of a statement: the pods matching `pods` in the namespaces matching
/// `namespaces`. A statement is cluster-wide, so unlike a NetworkPolicy peer there is no
/// "own namespace": an absent selector selects everything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodSet {
    pub namespaces: Selector,
    pub pods: Selector,
}

impl PodSet {
    /// Whether `endpoint`, a pod or workload of `cluster`, is in the set. Addresses outside
    /// the cluster never are.
    pub fn contains(&self, cluster: &Cluster, endpoint: &Endpoint) -> bool {
        let Some(namespace) = endpoint.namespace.as_deref() else { return false };
        cluster.namespace_labels(namespace).is_some_and(|labels| self.namespaces.matches(labels))
            && self.pods.matches(&endpoint.labels)
    }
}

impl fmt::Display for PodSet {
    /// `pods app=db in namespaces env=prod`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.pods.is_everything(), self.namespaces.is_everything()) {
            (true, true) => f.write_str("every pod"),
            (true, false) => write!(f, "every pod in namespaces {}", self.namespaces),
            (false, true) => write!(f, "pods {} in every namespace", self.pods),
            (false, false) => write!(f, "pods {} in namespaces {}", self.pods, self.namespaces),
        }
    }
}

/// One statement of a `NetcanaryIntent`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    /// The name of the `NetcanaryIntent` that holds it.
    pub intent: String,
    /// Its position in `spec.statements`.
    pub index: usize,
    /// Its own name, if it has one.
    pub name: Option<String>,
    pub from: PodSet,
    pub to: PodSet,
    /// Never empty: a statement is about connections on ports.
    pub ports: Vec<PortProto>,
    pub expect: Expect,
}

impl Statement {
    /// `prod-isolation/dev-never-reaches-db`, or `prod-isolation[0]` for an unnamed one.
    pub fn id(&self) -> String {
        match &self.name {
            Some(name) => format!("{}/{name}", self.intent),
            None => format!("{}[{}]", self.intent, self.index),
        }
    }

    /// The statement in words: `from every pod in namespaces env=dev to pods app=db ...`.
    pub fn describe(&self) -> String {
        let ports: Vec<String> = self.ports.iter().map(ToString::to_string).collect();
        format!("{}: from {} to {} on {}", self.expect, self.from, self.to, ports.join(", "))
    }

    /// The endpoints (positions in `cluster`) each side selects.
    pub fn sides(&self, cluster: &Cluster) -> (Vec<usize>, Vec<usize>) {
        let select = |set: &PodSet| -> Vec<usize> {
            let endpoints = cluster.endpoints();
            (0..endpoints.len()).filter(|&i| set.contains(cluster, &endpoints[i])).collect()
        };
        (select(&self.from), select(&self.to))
    }
}

/// A policy rule (or the default) that makes policy's answer what it is, for one direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Responsible {
    pub direction: Direction,
    pub tier: Tier,
    /// `prod/allow-all ingress[0]`, `ClusterNetworkPolicy/x ingress "deny-dev"`; `None` when
    /// no rule decided (not isolated, or isolated with no rule that allows).
    pub rule: Option<String>,
    /// What the rule says, or why no rule decided.
    pub says: String,
}

/// One connection where policy and intent disagree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub from: String,
    pub to: String,
    pub port: PortProto,
    /// Policy's answer: the opposite of what the statement expects.
    pub policy_allows: bool,
    pub responsible: Vec<Responsible>,
}

/// What the check found for one statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementCheck {
    pub statement: Statement,
    /// How many endpoints each side selects: a statement with an empty side checks nothing,
    /// which is reported, never passed silently.
    pub sources: usize,
    pub destinations: usize,
    /// Connections checked (source, destination, port), self pairs left out.
    pub pairs: u64,
    /// Connections policy's answer to is not known from cluster objects (domain names).
    pub unknown: u64,
    pub violations: Vec<Violation>,
}

impl StatementCheck {
    /// Whether the statement selects no connection at all.
    pub fn matches_nothing(&self) -> bool {
        self.pairs == 0 && self.unknown == 0
    }
}

/// Checks every statement against what policy allows: every connection a statement
/// selects (a pod reaching its own IP left out: CNIs differ there) whose policy answer is
/// not what the statement expects is a violation, explained by the engine's verdict.
pub fn check(cluster: &Cluster, statements: &[Statement]) -> Vec<StatementCheck> {
    let index = PolicyIndex::new(cluster);
    let classes = index.classes();
    let endpoints = cluster.endpoints();
    let mut matrices: HashMap<PortProto, Matrix> = HashMap::new();
    let mut out = Vec::new();
    for statement in statements {
        let (sources, destinations) = statement.sides(cluster);
        let mut check = StatementCheck {
            statement: statement.clone(),
            sources: sources.len(),
            destinations: destinations.len(),
            pairs: 0,
            unknown: 0,
            violations: Vec::new(),
        };
        for &port in &statement.ports {
            let matrix = matrices.entry(port).or_insert_with(|| index.matrix(port));
            for &s in &sources {
                for &d in &destinations {
                    if is_self_pair(&endpoints[s], &endpoints[d]) {
                        continue;
                    }
                    let (sc, dc) = (classes.class_of(s), classes.class_of(d));
                    if matrix.unknown(sc, dc) {
                        check.unknown += 1;
                        continue;
                    }
                    check.pairs += 1;
                    let allowed = matrix.allowed(sc, dc);
                    if allowed != (statement.expect == Expect::Allow) {
                        let verdict = evaluate::verdict(cluster, &endpoints[s], &endpoints[d], port);
                        check.violations.push(violation(&verdict, &endpoints[s], &endpoints[d]));
                    }
                }
            }
        }
        out.push(check);
    }
    out
}

/// The violation a verdict makes, with the rules behind its answer: every direction's
/// reason when policy allows (both had to), the denying direction's when it denies.
pub fn violation(verdict: &Verdict, from: &Endpoint, to: &Endpoint) -> Violation {
    let sides: Vec<&DirectionVerdict> = match verdict.denied_by() {
        Some(denied) => vec![denied],
        None => vec![&verdict.egress, &verdict.ingress],
    };
    let responsible = sides.into_iter().flat_map(|d| responsible(d, from, to)).collect();
    Violation {
        from: verdict.from.clone(),
        to: verdict.to.clone(),
        port: verdict.port,
        policy_allows: verdict.allowed,
        responsible,
    }
}

/// Why one direction's answer is what it is.
fn responsible(d: &DirectionVerdict, from: &Endpoint, to: &Endpoint) -> Vec<Responsible> {
    let entry = |rule: Option<String>, says: String| Responsible { direction: d.direction, tier: d.tier, rule, says };
    let own = match d.direction {
        Direction::Egress => &from.id,
        Direction::Ingress => &to.id,
    };
    match d.tier {
        Tier::Admin | Tier::Baseline => {
            let hit = d.steps.iter().filter_map(|s| s.hit.as_ref()).find(|h| h.action != Action::Pass);
            let says = hit.map_or_else(|| d.decision.action.to_string(), |h| format!("{}: {}", h.action, h.says));
            vec![entry(d.decision.rule.clone(), says)]
        }
        Tier::NetworkPolicy if d.allowed => {
            d.allowed_by.iter().map(|hit| entry(Some(hit.rule.to_string()), hit.says.clone())).collect()
        }
        Tier::NetworkPolicy => {
            let says = format!(
                "{own} is isolated for {} by {} and no rule of them allows this",
                d.direction,
                d.policies.join(", ")
            );
            vec![entry(None, says)]
        }
        Tier::Default => {
            let notes = d.describe_notes(from, to);
            let says = if notes.is_empty() {
                format!("no policy isolates {own} for {}: allowed by default", d.direction)
            } else {
                notes.join("; ")
            };
            vec![entry(None, says)]
        }
    }
}
