//! The explained evaluation of one connection, rule by rule. This is the reference
//! semantics: [`crate::matrix`] computes the same answers in bulk and is tested against it.

use std::net::IpAddr;

use crate::cluster_policy::{Action, ClusterPeer, ClusterPolicy, ClusterRule, ClusterRuleRef, describe_ports};
use crate::model::{Cluster, Direction, Endpoint, Governance, IpFamily, NamespaceScope, Peer, Policy, Rule};
use crate::port::{PortOutcome, PortProto};
use crate::verdict::{
    ClusterHit, Decision, DirectionVerdict, Note, RuleHit, RuleMiss, RuleRef, Tier, TierStep, Verdict,
};

/// The addresses a connection from `from` to `to` uses: the destination's primary IP and
/// the source's IP of the same family (dual-stack pods reach each other per family).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connection {
    pub source: Option<IpAddr>,
    pub destination: Option<IpAddr>,
}

impl Connection {
    pub fn between(from: &Endpoint, to: &Endpoint) -> Self {
        let destination = to.address_for(None);
        let family = destination.map(IpFamily::of).or_else(|| from.primary_family());
        Self { source: from.address_for(family), destination }
    }
}

/// Evaluates what policy says about `from` reaching `to` on `port`, with every reason.
pub fn verdict(cluster: &Cluster, from: &Endpoint, to: &Endpoint, port: PortProto) -> Verdict {
    let connection = Connection::between(from, to);
    let egress = direction(cluster, Direction::Egress, from, to, connection.destination, to, port);
    let ingress = direction(cluster, Direction::Ingress, to, from, connection.source, to, port);
    Verdict {
        from: from.id.clone(),
        to: to.id.clone(),
        port,
        allowed: egress.allowed && ingress.allowed,
        egress,
        ingress,
        self_pair: is_self_pair(from, to),
        host_network: [from, to].iter().any(|e| e.governed() == Governance::HostNetwork),
    }
}

/// A pod (or workload) reaching its own IP; an address outside the cluster is no pod.
pub fn is_self_pair(from: &Endpoint, to: &Endpoint) -> bool {
    from.id == to.id && !from.is_external()
}

/// One side: `subject` is the pod whose policies apply (the source for egress, the
/// destination for ingress), `other` the far end, reached at `other_address`. The tiers in
/// order: Admin, NetworkPolicy, Baseline, Default.
fn direction(
    cluster: &Cluster,
    direction: Direction,
    subject: &Endpoint,
    other: &Endpoint,
    other_address: Option<IpAddr>,
    destination: &Endpoint,
    port: PortProto,
) -> DirectionVerdict {
    match subject.governed() {
        Governance::External => return DirectionVerdict::by_default(direction, Some(Note::OutsideCluster)),
        Governance::HostNetwork => return DirectionVerdict::by_default(direction, Some(Note::HostNetwork)),
        Governance::Governed => {}
    }
    let context = PeerContext { cluster, other, other_address };
    let walk = |tier| walk_tier(cluster, tier, direction, subject, &context, destination, port);
    let admin = walk(Tier::Admin);
    let mut verdict = network_policy_tier(cluster, direction, subject, &context, destination, port);
    let baseline = walk(Tier::Baseline);

    // What the tiers after Admin say, as the set of possible answers (domain names can make
    // both possible) and the definite one (no domain name matches).
    let np_isolated = verdict.isolated;
    let after_admin = if np_isolated {
        Possible::only(verdict.allowed)
    } else {
        let definite = baseline.decided().is_none_or(|a| a != Action::Deny);
        baseline.alternatives.iter().fold(Possible::only(definite), |p, a| p.with(*a != Action::Deny))
    };
    let admin_action = admin.decided();
    let mut possible = match admin_action {
        Some(Action::Accept) => Possible::only(true),
        Some(Action::Deny) => Possible::only(false),
        _ => after_admin,
    };
    for alternative in &admin.alternatives {
        possible = match alternative {
            Action::Accept => possible.with(true),
            Action::Deny => possible.with(false),
            Action::Pass => possible.union(after_admin),
        };
    }

    let hit_decision = |step: &TierStep| {
        step.hit.as_ref().map(|h| Decision { tier: step.tier, rule: Some(h.rule.to_string()), action: h.action })
    };
    let mut tie = admin.step.tie.clone();
    match admin_action {
        Some(action @ (Action::Accept | Action::Deny)) => {
            verdict.allowed = action == Action::Accept;
            verdict.tier = Tier::Admin;
            verdict.decision = hit_decision(&admin.step).expect("a decided tier has a hit");
        }
        _ => {
            if !np_isolated {
                if let Some(action @ (Action::Accept | Action::Deny)) = baseline.decided() {
                    verdict.allowed = action == Action::Accept;
                    verdict.tier = Tier::Baseline;
                    verdict.decision = hit_decision(&baseline.step).expect("a decided tier has a hit");
                }
                tie = tie.or(baseline.step.tie.clone());
            }
        }
    }
    verdict.tie = tie;
    if possible.both() {
        let rules: Vec<String> = admin
            .step
            .maybe
            .iter()
            .chain(if np_isolated || admin_action.is_some_and(|a| a != Action::Pass) {
                &[][..]
            } else {
                &baseline.step.maybe[..]
            })
            .map(|h| h.rule.to_string())
            .collect();
        verdict.unknown = Some(format!(
            "{} names domains; whether {} is one of them is not known from cluster objects",
            rules.join(", "),
            other.id
        ));
    }
    verdict.steps = [admin.step, baseline.step].into_iter().filter(|s| !s.policies.is_empty()).collect();
    verdict
}

/// Which answers are possible for a direction: one, or both when a rule naming domains
/// could decide either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Possible {
    allow: bool,
    deny: bool,
}

impl Possible {
    fn only(allowed: bool) -> Self {
        Self { allow: allowed, deny: !allowed }
    }

    fn with(self, allowed: bool) -> Self {
        self.union(Self::only(allowed))
    }

    fn union(self, other: Self) -> Self {
        Self { allow: self.allow || other.allow, deny: self.deny || other.deny }
    }

    fn both(self) -> bool {
        self.allow && self.deny
    }
}

/// One cluster tier walked for a direction.
struct TierWalk {
    step: TierStep,
    /// The actions of rules that may match by domain name before the tier decided.
    alternatives: Vec<Action>,
}

impl TierWalk {
    fn decided(&self) -> Option<Action> {
        self.step.hit.as_ref().map(|h| h.action)
    }
}

/// Whether a cluster policy's subject is `endpoint` (host-network pods never are).
pub fn subject_selects(cluster: &Cluster, policy: &ClusterPolicy, endpoint: &Endpoint) -> bool {
    endpoint.governed() == Governance::Governed
        && endpoint.namespace.as_deref().and_then(|ns| cluster.namespace_labels(ns)).is_some_and(|labels| {
            policy.subject.namespaces.matches(labels) && policy.subject.pods.matches(&endpoint.labels)
        })
}

/// The cluster policies of `tier` whose subject is `subject`, in the order consulted.
pub fn tier_policies<'c>(cluster: &'c Cluster, tier: Tier, subject: &Endpoint) -> Vec<&'c ClusterPolicy> {
    let mut policies: Vec<&ClusterPolicy> =
        cluster.cluster_policies().iter().filter(|p| p.tier == tier && subject_selects(cluster, p, subject)).collect();
    policies.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
    policies
}

/// How one cluster rule relates to a connection.
enum ClusterMatch {
    Matches,
    /// Only a domain name could name the far end.
    Maybe,
    Misses(String),
}

fn cluster_rule_match(
    policy_rule: &ClusterRule,
    context: &PeerContext<'_>,
    destination: &Endpoint,
    port: PortProto,
) -> ClusterMatch {
    if !policy_rule.ports_match(port, &destination.ports) {
        return ClusterMatch::Misses(format!("port {port} is not in [{}]", describe_ports(&policy_rule.ports)));
    }
    if policy_rule.peers.iter().any(|peer| cluster_peer_matches(peer, context)) {
        return ClusterMatch::Matches;
    }
    if policy_rule.has_domain_names() {
        return ClusterMatch::Maybe;
    }
    let listed: Vec<String> = policy_rule.peers.iter().map(describe_cluster_peer).collect();
    ClusterMatch::Misses(format!("{} is not {}", context.other.id, listed.join(" or ")))
}

/// Whether a cluster policy's peer names the far end (domain names never do for sure).
pub fn cluster_peer_matches(peer: &ClusterPeer, context: &PeerContext<'_>) -> bool {
    let other = context.other;
    match peer {
        ClusterPeer::Pods { namespaces, pods } => {
            other.governed() == Governance::Governed
                && other
                    .namespace
                    .as_deref()
                    .and_then(|ns| context.cluster.namespace_labels(ns))
                    .is_some_and(|labels| namespaces.matches(labels))
                && pods.matches(&other.labels)
        }
        ClusterPeer::Nodes(selector) => {
            context.other_address.is_some_and(|ip| context.cluster.node_address(selector, ip))
        }
        ClusterPeer::Networks(networks) => {
            context.other_address.is_some_and(|ip| networks.iter().any(|n| n.contains(&ip)))
        }
        ClusterPeer::DomainNames(_) => false,
    }
}

fn walk_tier(
    cluster: &Cluster,
    tier: Tier,
    direction: Direction,
    subject: &Endpoint,
    context: &PeerContext<'_>,
    destination: &Endpoint,
    port: PortProto,
) -> TierWalk {
    let policies = tier_policies(cluster, tier, subject);
    let mut step = TierStep {
        tier,
        policies: policies.iter().map(|p| p.id()).collect(),
        misses: Vec::new(),
        hit: None,
        maybe: Vec::new(),
        tie: None,
    };
    let mut alternatives = Vec::new();
    let mut rest = &policies[..];
    while let Some(first) = rest.first() {
        let group_len = rest.iter().take_while(|p| p.priority == first.priority).count();
        let (group, later) = rest.split_at(group_len);
        rest = later;
        let mut hits: Vec<ClusterHit> = Vec::new();
        for policy in group {
            for (index, rule) in policy.rules(direction).iter().enumerate() {
                let rule_ref = ClusterRuleRef { policy: policy.id(), direction, index, name: rule.name.clone() };
                let hit = |rule_ref| ClusterHit {
                    rule: rule_ref,
                    action: rule.action,
                    says: describe_cluster_rule(rule, direction),
                };
                match cluster_rule_match(rule, context, destination, port) {
                    ClusterMatch::Matches => {
                        hits.push(hit(rule_ref));
                        break;
                    }
                    ClusterMatch::Maybe => {
                        alternatives.push(rule.action);
                        step.maybe.push(hit(rule_ref));
                    }
                    ClusterMatch::Misses(reason) => step.misses.push((rule_ref, reason)),
                }
            }
        }
        if let Some(first_hit) = hits.first() {
            if hits.iter().any(|h| h.action != first_hit.action) {
                let listed: Vec<String> = hits.iter().map(|h| format!("{} ({})", h.rule, h.action)).collect();
                step.tie = Some(format!(
                    "{} have priority {} and match with different actions; which applies is the implementation's choice",
                    listed.join(" and "),
                    first.priority
                ));
            }
            step.hit = hits.into_iter().next();
            break;
        }
    }
    TierWalk { step, alternatives }
}

/// A cluster peer in words.
pub fn describe_cluster_peer(peer: &ClusterPeer) -> String {
    match peer {
        ClusterPeer::Pods { namespaces, pods } => {
            let pods = if pods.is_everything() { "any pod".to_string() } else { format!("pods {pods}") };
            if namespaces.is_everything() {
                format!("{pods} in any namespace")
            } else {
                format!("{pods} in namespaces {namespaces}")
            }
        }
        ClusterPeer::Nodes(selector) if selector.is_everything() => "any node".to_string(),
        ClusterPeer::Nodes(selector) => format!("nodes {selector}"),
        ClusterPeer::Networks(networks) => {
            format!("in networks {}", networks.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))
        }
        ClusterPeer::DomainNames(names) => format!("domains {}", names.join(", ")),
    }
}

/// A cluster rule in words: `to pods app=db in any namespace, on 5432/TCP`.
pub fn describe_cluster_rule(rule: &ClusterRule, direction: Direction) -> String {
    let way = match direction {
        Direction::Ingress => "from",
        Direction::Egress => "to",
    };
    let peers: Vec<String> =
        rule.peers.iter().map(|p| describe_cluster_peer(p).trim_start_matches("in ").to_string()).collect();
    format!("{way} {}, on {}", peers.join(" or "), describe_ports(&rule.ports))
}

/// The NetworkPolicy tier: isolated (then only its rules allow), or not (default allow).
fn network_policy_tier(
    cluster: &Cluster,
    direction: Direction,
    subject: &Endpoint,
    context: &PeerContext<'_>,
    destination: &Endpoint,
    port: PortProto,
) -> DirectionVerdict {
    let other_address = context.other_address;
    let selecting: Vec<&Policy> =
        cluster.policies().iter().filter(|p| p.rules(direction).is_some() && p.selects(subject)).collect();
    if selecting.is_empty() {
        return DirectionVerdict::by_default(direction, None);
    }
    let mut verdict = DirectionVerdict {
        direction,
        allowed: false,
        isolated: true,
        tier: Tier::NetworkPolicy,
        policies: selecting.iter().map(|p| p.id()).collect(),
        allowed_by: Vec::new(),
        misses: Vec::new(),
        notes: Vec::new(),
        decision: Decision { tier: Tier::NetworkPolicy, rule: None, action: Action::Deny },
        steps: Vec::new(),
        unknown: None,
        tie: None,
    };
    let mut ip_block_missed_for_want_of_ip = false;
    for policy in selecting {
        for (index, rule) in policy.rules(direction).unwrap_or_default().iter().enumerate() {
            let rule_ref = RuleRef { policy: policy.id(), direction, index };
            match rule_outcome(policy, rule, context, destination, port) {
                Ok(()) => {
                    verdict.allowed_by.push(RuleHit { rule: rule_ref, says: describe_rule(policy, rule, direction) })
                }
                Err(miss) => {
                    ip_block_missed_for_want_of_ip |= miss.peers_only
                        && other_address.is_none()
                        && rule.peers.iter().any(|p| matches!(p, Peer::IpBlock(_)));
                    verdict.misses.push(RuleMiss { rule: rule_ref, reason: miss.reason });
                }
            }
        }
    }
    verdict.policies.sort();
    verdict.allowed = !verdict.allowed_by.is_empty();
    if let Some(first) = verdict.allowed_by.first() {
        verdict.decision =
            Decision { tier: Tier::NetworkPolicy, rule: Some(first.rule.to_string()), action: Action::Accept };
    }
    if verdict.allowed_by.is_empty() && verdict.misses.is_empty() {
        verdict.notes.push(Note::NoRules);
    }
    if ip_block_missed_for_want_of_ip && !verdict.allowed {
        verdict.notes.push(Note::FarEndHasNoIp);
    }
    verdict
}

/// Why a rule did not allow a connection.
struct Miss {
    reason: String,
    /// The ports matched; only the peers did not.
    peers_only: bool,
}

/// Whether one rule of `policy` allows `from` reaching `to` on `port`, on its own side of
/// the connection (the policy must select the side the rule's direction governs). Cheaper
/// than a whole [`verdict`] when only one rule is of interest (the planner's witnesses).
pub fn rule_allows(
    cluster: &Cluster,
    policy: &Policy,
    direction: Direction,
    index: usize,
    from: &Endpoint,
    to: &Endpoint,
    port: PortProto,
) -> bool {
    let (subject, other) = match direction {
        Direction::Ingress => (to, from),
        Direction::Egress => (from, to),
    };
    let Some(rule) = policy.rules(direction).and_then(|rules| rules.get(index)) else { return false };
    if !policy.selects(subject) {
        return false;
    }
    let connection = Connection::between(from, to);
    let other_address = match direction {
        Direction::Ingress => connection.source,
        Direction::Egress => connection.destination,
    };
    let context = PeerContext { cluster, other, other_address };
    rule_outcome(policy, rule, &context, to, port).is_ok()
}

/// The far end of a connection as one side's rules see it.
pub struct PeerContext<'a> {
    pub cluster: &'a Cluster,
    pub other: &'a Endpoint,
    pub other_address: Option<IpAddr>,
}

/// `Ok` if the rule allows the connection, else the reason it does not.
fn rule_outcome(
    policy: &Policy,
    rule: &Rule,
    context: &PeerContext<'_>,
    destination: &Endpoint,
    port: PortProto,
) -> Result<(), Miss> {
    if !rule.ports.is_empty() {
        let outcomes: Vec<PortOutcome> = rule.ports.iter().map(|p| p.outcome(port, &destination.ports)).collect();
        if !outcomes.contains(&PortOutcome::Matches) {
            let listed: Vec<String> = rule.ports.iter().map(ToString::to_string).collect();
            let mut reason = format!("port {port} is not in [{}]", listed.join(", "));
            if outcomes.contains(&PortOutcome::NamedUnresolved) {
                reason.push_str(&format!(" ({} declares no such named port)", destination.id));
            }
            return Err(Miss { reason, peers_only: false });
        }
    }
    if rule.peers.is_empty() {
        return Ok(());
    }
    if rule.peers.iter().any(|peer| peer_matches(policy, peer, context)) {
        Ok(())
    } else {
        let listed: Vec<String> = rule.peers.iter().map(|p| describe_peer(policy, p)).collect();
        Err(Miss { reason: format!("{} is not {}", context.other.id, listed.join(" or ")), peers_only: true })
    }
}

/// Whether `peer` (from `policy`) names the far end of the connection.
fn peer_matches(policy: &Policy, peer: &Peer, context: &PeerContext<'_>) -> bool {
    let other = context.other;
    match peer {
        Peer::IpBlock(block) => context.other_address.is_some_and(|ip| block.contains(ip)),
        Peer::Pods { namespaces, pods } => {
            if other.governed() != Governance::Governed {
                return false;
            }
            let Some(ns) = other.namespace.as_deref() else { return false };
            let namespace_ok = match namespaces {
                NamespaceScope::Own => ns == policy.namespace,
                NamespaceScope::Selected(selector) => {
                    context.cluster.namespace_labels(ns).is_some_and(|labels| selector.matches(labels))
                }
            };
            namespace_ok && pods.matches(&other.labels)
        }
    }
}

/// A peer in words: `pods app=api in namespace production`, `10.0.0.0/8 except 10.1.0.0/16`.
pub fn describe_peer(policy: &Policy, peer: &Peer) -> String {
    match peer {
        Peer::IpBlock(block) => format!("in ipBlock {block}"),
        Peer::Pods { namespaces, pods } => {
            let pods = if pods.is_everything() { "any pod".to_string() } else { format!("pods {pods}") };
            match namespaces {
                NamespaceScope::Own => format!("{pods} in namespace {}", policy.namespace),
                NamespaceScope::Selected(s) if s.is_everything() => format!("{pods} in any namespace"),
                NamespaceScope::Selected(s) => format!("{pods} in namespaces {s}"),
            }
        }
    }
}

/// A rule in words: `from pods app=api in namespace prod, on 5432/TCP`.
pub fn describe_rule(policy: &Policy, rule: &Rule, direction: Direction) -> String {
    let way = match direction {
        Direction::Ingress => "from",
        Direction::Egress => "to",
    };
    let peers = if rule.peers.is_empty() {
        "anywhere".to_string()
    } else {
        rule.peers
            .iter()
            .map(|p| describe_peer(policy, p).trim_start_matches("in ").to_string())
            .collect::<Vec<_>>()
            .join(" or ")
    };
    let ports = if rule.ports.is_empty() {
        "any port".to_string()
    } else {
        rule.ports.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    };
    format!("{way} {peers}, on {ports}")
}
