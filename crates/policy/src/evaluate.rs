//! The explained evaluation of one connection, rule by rule. This is the reference
//! semantics: [`crate::matrix`] computes the same answers in bulk and is tested against it.

use std::net::IpAddr;

use crate::model::{Cluster, Direction, Endpoint, Governance, IpFamily, NamespaceScope, Peer, Policy, Rule};
use crate::port::{PortOutcome, PortProto};
use crate::verdict::{DirectionVerdict, Note, RuleHit, RuleMiss, RuleRef, Tier, Verdict};

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
/// destination for ingress), `other` the far end, reached at `other_address`.
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
    };
    let context = PeerContext { cluster, other, other_address };
    let mut ip_block_missed_for_want_of_ip = false;
    for policy in selecting {
        for (index, rule) in policy.rules(direction).unwrap_or_default().iter().enumerate() {
            let rule_ref = RuleRef { policy: policy.id(), direction, index };
            match rule_outcome(policy, rule, &context, destination, port) {
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

struct PeerContext<'a> {
    cluster: &'a Cluster,
    other: &'a Endpoint,
    other_address: Option<IpAddr>,
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
