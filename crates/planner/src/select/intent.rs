//! Declared intent in a run: a probe for every statement that some probed pair falls
//! under, and every probe marked with the statement it falls under, so that the judge can
//! hold the network to intent as well as to policy. A statement no probe checks is listed
//! with the reason: a run never passes what it did not test.

use std::collections::HashSet;

use netcanary_policy::PortProto;
use netcanary_policy::intent::{Expect, PodSet, Statement};

use super::{Planner, Refused};
use crate::plan::{Destination, IntentMark, PlannedProbe, Purpose};

/// The classes with a member on each side of a statement, among those the run probes.
struct Sides {
    sources: HashSet<usize>,
    destinations: HashSet<usize>,
}

impl Planner<'_> {
    /// Intent is written against the workloads' own labels, so members are matched in
    /// the cluster as it is, not as probe pods relabel it; a class falls under a side
    /// when any of its members does (policy cannot tell its members apart).
    fn sides(&self, statement: &Statement) -> Sides {
        let classes = self.index.classes();
        let endpoints = self.workloads.endpoints();
        let has_member = |class: usize, set: &PodSet| {
            classes.members(class).iter().any(|&i| set.contains(self.workloads, &endpoints[i]))
        };
        let destinations = (self.layout.sources.iter())
            .copied()
            .filter(|&c| self.not_ready_service(self.representative(c)).is_none() && has_member(c, &statement.to))
            .collect();
        Sides {
            sources: self.layout.sources.iter().copied().filter(|&c| has_member(c, &statement.from)).collect(),
            destinations,
        }
    }

    /// The ports of a statement the prober can test.
    fn testable(&self, statement: &Statement) -> Vec<PortProto> {
        statement.ports.iter().copied().filter(|p| self.options.protocols.contains(&p.protocol)).collect()
    }

    /// Plans a probe for each statement no probe planned so far falls under: a pair whose
    /// policy answer contradicts the statement when there is one (the cell intent most
    /// needs the network's answer for), else the first pair.
    pub(super) fn intent(&mut self) {
        let options = self.options;
        for statement in &options.intent {
            let sides = self.sides(statement);
            if self.probes.iter().any(|probe| self.falls_under(probe, statement, &sides)) {
                continue;
            }
            let mut sources: Vec<usize> = sides.sources.iter().copied().collect();
            let mut destinations: Vec<usize> = sides.destinations.iter().copied().collect();
            sources.sort_unstable();
            destinations.sort_unstable();
            let mut first = None;
            let mut contradicting = None;
            let mut tries = 0;
            'search: for &source in &sources {
                for &destination in &destinations {
                    for port in self.testable(statement) {
                        let allowed = self.allowed(source, destination, port);
                        first.get_or_insert((source, destination, port));
                        if allowed != (statement.expect == Expect::Allow) {
                            contradicting = Some((source, destination, port));
                            break 'search;
                        }
                        tries += 1;
                        if tries >= options.witness_search_limit {
                            break 'search;
                        }
                    }
                }
            }
            if let Some((source, destination, port)) = contradicting.or(first) {
                let verdict = self.verdict(source, destination, port);
                // Refused by a budget, the statement is listed as unverified by `mark_intent`.
                let _ = self.add(source, Some(destination), port, &verdict, Purpose::Intent);
            }
        }
    }

    /// Whether `probe` checks `statement`: its port is one of the statement's and its two
    /// ends fall under the statement's sides.
    fn falls_under(&self, probe: &PlannedProbe, statement: &Statement, sides: &Sides) -> bool {
        if !statement.ports.contains(&probe.port) || !sides.sources.contains(&self.mirrors[probe.from].class) {
            return false;
        }
        match probe.to {
            Destination::Mirror(m) => sides.destinations.contains(&self.mirrors[m].class),
            Destination::Dns => self.dns_pods().any(|dns| statement.to.contains(self.workloads, dns)),
            Destination::External(_) => false,
        }
    }

    /// Marks every probe with the statement it falls under (a `deny` statement first: it
    /// says what must never happen), and returns the statements no probe checks, with why.
    pub(super) fn mark_intent(&mut self) -> Vec<String> {
        let options = self.options;
        let sides: Vec<Sides> = options.intent.iter().map(|s| self.sides(s)).collect();
        let mut checked = vec![false; options.intent.len()];
        let mut marks = Vec::with_capacity(self.probes.len());
        for probe in &self.probes {
            let under: Vec<usize> =
                (0..options.intent.len()).filter(|&i| self.falls_under(probe, &options.intent[i], &sides[i])).collect();
            under.iter().for_each(|&i| checked[i] = true);
            let chosen =
                under.iter().copied().find(|&i| options.intent[i].expect == Expect::Deny).or(under.first().copied());
            marks.push(
                chosen.map(|i| IntentMark { statement: options.intent[i].id(), expect: options.intent[i].expect }),
            );
        }
        for (probe, mark) in self.probes.iter_mut().zip(marks) {
            probe.intent = mark;
        }
        let mut unverified = Vec::new();
        for (i, statement) in options.intent.iter().enumerate() {
            if checked[i] {
                continue;
            }
            let why = if sides[i].sources.is_empty() {
                "`from` selects no pod this run probes"
            } else if sides[i].destinations.is_empty() {
                "`to` selects no pod this run probes"
            } else if self.testable(statement).is_empty() {
                "none of its ports uses a protocol the prober tests"
            } else if self.budget.exhausted() && !self.probe_budget_exhausted {
                Refused::Pods.reason()
            } else if self.budget.out_of_time().0 > 0 && !self.probe_budget_exhausted {
                Refused::Time.reason()
            } else {
                Refused::Probes.reason()
            };
            unverified.push(format!("intent {} is not verified: {why}", statement.id()));
        }
        unverified
    }
}
