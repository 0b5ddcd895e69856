//! What a run will do: the probe pods to start and the connections they try.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use netcanary_policy::intent::Expect;
use netcanary_policy::{Labels, PortProto, RuleRef};
pub use netcanary_wire::ProbePath;

use crate::wall_time::WallTime;

/// A probe pod standing in for one class of workload pods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirror {
    /// The engine's class this pod mirrors.
    pub class: usize,
    pub namespace: String,
    /// The policy-relevant labels it copies (netcanary's own labels are added on creation).
    pub labels: Labels,
    /// Policy-relevant labels it could not copy because controllers own them.
    pub dropped_labels: Vec<String>,
    /// The workload pod it stands for (the class's representative).
    pub stands_for: String,
    /// The workload that pod belongs to: what reports and metric labels name.
    pub workload: String,
    /// How many workload pods share the class.
    pub members: usize,
    /// Ports it answers on as a target; empty for a pure source.
    pub listen: BTreeSet<PortProto>,
    /// The names the workload pod gives its ports: a target pod declares its ports with
    /// them, since a rule's named port matches a pod only through the pod's own port names,
    /// in the network as in the engine.
    pub port_names: BTreeMap<PortProto, String>,
}

#[cfg(test)]
impl Mirror {
    /// A mirror standing for the pod `stands_for` (`namespace/name`), listening on
    /// 8080/TCP as a target.
    pub(crate) fn example(stands_for: &str, target: bool) -> Self {
        let (namespace, name) = stands_for.split_once('/').expect("namespace/name");
        let port = PortProto::new(8080, netcanary_policy::Protocol::Tcp);
        Mirror {
            class: 0,
            namespace: namespace.into(),
            labels: Labels::new(),
            dropped_labels: Vec::new(),
            stands_for: stands_for.into(),
            workload: name.into(),
            members: 1,
            listen: if target { BTreeSet::from([port]) } else { BTreeSet::new() },
            port_names: BTreeMap::new(),
        }
    }
}

/// Why a probe is in the plan; the report groups by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Purpose {
    /// The namespace's pods must resolve names through cluster DNS.
    Dns,
    /// Exercises a rule that should allow traffic.
    AllowRule,
    /// Checks that an isolated pod really refuses what policy denies.
    Isolation,
    /// A sampled cross-namespace pair.
    Sample,
    /// An address outside the cluster the run was asked to probe (`--to`).
    External,
    /// A statement of declared intent that no other probe checks.
    Intent,
}

/// Where a probe goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    Mirror(usize),
    /// The cluster DNS service.
    Dns,
    /// An address outside the cluster, which answers for itself (no target pod).
    External(IpAddr),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedProbe {
    /// Index into [`Plan::mirrors`].
    pub from: usize,
    pub to: Destination,
    pub port: PortProto,
    /// What policy says for the workloads mirrored (the orchestrator recomputes it for the
    /// probe pods themselves once they have IPs).
    pub expected_allowed: bool,
    pub purpose: Purpose,
    /// The rules that allow it (both directions), for coverage.
    pub covers: Vec<RuleRef>,
    /// How it reaches a target pod: its address, or a Service netcanary makes for it (by
    /// ClusterIP or by name). Policy is the backend pod's on every path.
    pub path: ProbePath,
    /// The statement of declared intent the connection falls under, if any: the network
    /// must do what it says whatever policy says.
    pub intent: Option<IntentMark>,
}

/// A statement of declared intent a probe falls under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntentMark {
    /// The statement's id (`prod-isolation/dev-never-reaches-db`).
    pub statement: String,
    pub expect: Expect,
}

/// How much of the policy the plan exercises.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Every rule of every policy.
    pub rules: usize,
    pub covered: BTreeSet<RuleRef>,
    /// Rules no planned probe exercises, with the reason.
    pub uncovered: BTreeMap<RuleRef, String>,
    /// The uncovered rules that have a witness the budget could not pay for; the others
    /// cannot be covered at all.
    pub budget: BTreeSet<RuleRef>,
}

impl Coverage {
    /// The fraction of rules exercised; 1 when there are no rules to exercise.
    pub fn ratio(&self) -> f64 {
        if self.rules == 0 { 1.0 } else { self.covered.len() as f64 / self.rules as f64 }
    }

    /// The rules some probe could exercise: the covered ones and those left out for the
    /// budget.
    pub fn coverable(&self) -> usize {
        self.covered.len() + self.budget.len()
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub mirrors: Vec<Mirror>,
    pub probes: Vec<PlannedProbe>,
    pub coverage: Coverage,
    /// Things the report must say: classes not mirrored and why, budget exhausted.
    pub notes: Vec<String>,
    /// Statements of declared intent no probe of the plan checks, with the reason: the run
    /// cannot say they hold.
    pub unverified_intent: Vec<String>,
    /// How long its probing takes at worst, and the whole run.
    pub wall_time: WallTime,
}

impl Plan {
    /// The probe pods a run starts for it: a source pod for every mirror that sends a
    /// probe, a target pod for every mirror that receives one.
    pub fn probe_pods(&self) -> usize {
        let sources: BTreeSet<usize> = self.probes.iter().map(|p| p.from).collect();
        sources.len() + self.mirrors.iter().filter(|m| !m.listen.is_empty()).count()
    }
}
