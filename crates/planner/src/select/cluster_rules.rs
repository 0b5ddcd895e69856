//! Witnesses for the rules of the cluster policy tiers (ClusterNetworkPolicy,
//! AdminNetworkPolicy, BaselineAdminNetworkPolicy), counted in the same coverage as
//! NetworkPolicy rules and named the same way (`ClusterNetworkPolicy/x ingress[0]`): for an
//! Accept rule an allowed probe the rule decides, for a Deny rule a denied probe the rule
//! decides, for a Pass rule a probe whose verdict walks through it. A Deny rule proves
//! nothing with an allowed probe, nor an Accept rule with one the other side denies.

use netcanary_policy::cluster_policy::{ClusterPolicy, ClusterRule, ClusterRuleRef};
use netcanary_policy::evaluate::{self, Connection, PeerContext};
use std::rc::Rc;

use netcanary_policy::{Action, Direction, RuleRef, Verdict};

use super::{NoWitness, Planner, Refused, Side, Witness};

/// The cluster policy rules a verdict exercises: every Pass rule it walks through, and the
/// Accept or Deny rule that decided a direction (an Accept only when the whole connection
/// is allowed). None when policy's answer is not known (a rule naming domains, or equal
/// priorities that disagree): such a probe proves nothing about any rule; nor does a side
/// whose answer a domain name may change, though the other side's denial is known.
fn exercised(verdict: &Verdict) -> Vec<RuleRef> {
    let tie = verdict.egress.tie.is_some() || verdict.ingress.tie.is_some();
    if verdict.unknown().is_some() || tie {
        return Vec::new();
    }
    let mut rules = Vec::new();
    for side in [&verdict.egress, &verdict.ingress].into_iter().filter(|side| side.unknown.is_none()) {
        for step in side.consulted_steps() {
            let Some(hit) = &step.hit else { continue };
            let decided = side.decision.tier == step.tier;
            let counts = match hit.action {
                Action::Pass => true,
                Action::Deny => decided,
                Action::Accept => decided && verdict.allowed,
            };
            if counts {
                rules.push(rule_ref(&hit.rule));
            }
        }
    }
    rules
}

fn rule_ref(rule: &ClusterRuleRef) -> RuleRef {
    RuleRef { policy: rule.policy.clone(), direction: rule.direction, index: rule.index }
}

impl Planner<'_> {
    /// Counts the cluster policy rules a planned probe's verdict exercises as covered, and
    /// adds them to what the probe covers.
    pub(super) fn cover_cluster_rules(&mut self, verdict: &Verdict, covers: &mut Vec<RuleRef>) {
        let rules = exercised(verdict);
        self.coverage.covered.extend(rules.iter().cloned());
        covers.extend(rules);
    }

    /// A witness for every rule of every cluster policy, after NetworkPolicy's witnesses
    /// (one of theirs may already walk through a cluster rule), through the same
    /// [`Planner::witness`] accounting: what the budget left out is named as such.
    pub(super) fn cluster_rule_witnesses(&mut self) {
        let cluster = self.cluster;
        for policy in cluster.cluster_policies() {
            for direction in [Direction::Ingress, Direction::Egress] {
                for (index, rule) in policy.rules(direction).iter().enumerate() {
                    self.coverage.rules += 1;
                    let rule_ref = RuleRef { policy: policy.id(), direction, index };
                    if self.coverage.covered.contains(&rule_ref) {
                        continue;
                    }
                    let found = self.find_cluster_witness(policy, rule, &rule_ref);
                    self.witness(rule_ref, found);
                }
            }
        }
    }

    /// A probed pair and port whose verdict [`exercised`] counts for `rule_ref`, classes
    /// with their probe pods planned first. Pairs the rule's peers and ports cannot match,
    /// and (for Accept and Deny) pairs the matrix answers the wrong way, are skipped before
    /// the explained evaluation, which is spent at most `witness_search_limit` times. A
    /// witness the pod budget cannot pay for is passed over for one it can; with none,
    /// the rule is left out for the budget.
    fn find_cluster_witness(
        &mut self,
        policy: &ClusterPolicy,
        rule: &ClusterRule,
        rule_ref: &RuleRef,
    ) -> Result<Witness, NoWitness> {
        let (cluster, layout) = (self.cluster, Rc::clone(&self.layout));
        let (subject_side, other_side) = match rule_ref.direction {
            Direction::Ingress => (Side::Targets, Side::Sources),
            Direction::Egress => (Side::Sources, Side::Targets),
        };
        let subjects: Vec<usize> = (layout.side(subject_side).iter().copied())
            .filter(|&c| evaluate::subject_selects(cluster, policy, self.representative(c)))
            .collect();
        if subjects.is_empty() {
            let role =
                if rule_ref.direction == Direction::Ingress { "probed pod with a probed port" } else { "probed pod" };
            return Err(NoWitness::because(format!("the policy's subject is no {role}")));
        }
        let (mut subjects, subjects_without) = self.planned_first(subject_side, &subjects);
        subjects.extend(subjects_without);
        let (mut others, others_without) = self.planned_first(other_side, layout.side(other_side));
        others.extend(others_without);
        let mut tries = 0;
        // What kept an affordable witness out: the probe pods (said first) or the time.
        let mut short: Option<Refused> = None;
        'search: for &subject in &subjects {
            for &other in &others {
                let (source, destination) =
                    if rule_ref.direction == Direction::Ingress { (other, subject) } else { (subject, other) };
                let (from, to) = (self.representative(source), self.representative(destination));
                let connection = Connection::between(from, to);
                let context = match rule_ref.direction {
                    Direction::Ingress => PeerContext { cluster, other: from, other_address: connection.source },
                    Direction::Egress => PeerContext { cluster, other: to, other_address: connection.destination },
                };
                if !rule.peers.iter().any(|peer| evaluate::cluster_peer_matches(peer, &context)) {
                    continue;
                }
                for &port in &layout.ports[destination] {
                    if !rule.ports_match(port, &to.ports) {
                        continue;
                    }
                    let allowed = self.allowed(source, destination, port);
                    if (rule.action == Action::Accept && !allowed) || (rule.action == Action::Deny && allowed) {
                        continue;
                    }
                    let verdict = self.verdict(source, destination, port);
                    if exercised(&verdict).contains(rule_ref) {
                        match self.affordable(source, destination) {
                            Ok(()) => return Ok((source, destination, port, verdict)),
                            Err(refused) if short != Some(Refused::Pods) => short = Some(refused),
                            Err(_) => {}
                        }
                    }
                    tries += 1;
                    if tries >= self.options.witness_search_limit {
                        break 'search;
                    }
                }
            }
        }
        match short {
            Some(Refused::Pods) => self.budget.left_out(),
            Some(_) => self.budget.left_out_of_time(),
            None => {}
        }
        if let Some(refused) = short {
            return Err(NoWitness::budget(refused));
        }
        Err(NoWitness::because(if tries >= self.options.witness_search_limit {
            format!("every pair it matches that was tried ({tries}) is decided by an earlier rule or tier")
        } else {
            "no probed pod pair reaches it: its peers match no probed pod, or an earlier rule or tier decides every match".into()
        }))
    }
}
