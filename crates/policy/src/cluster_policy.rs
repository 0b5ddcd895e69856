//! The cluster-scoped policy tiers around NetworkPolicy: ClusterNetworkPolicy
//! (policy.networking.k8s.io/v1alpha2) and its predecessors AdminNetworkPolicy and
//! BaselineAdminNetworkPolicy (v1alpha1), all mapped onto one model. A policy sits in the
//! Admin tier (before NetworkPolicy) or the Baseline tier (after it); within a tier, lower
//! `priority` first, then rules in the order written; the first rule that matches decides
//! with its action.

use std::fmt;

use ipnet::IpNet;

use crate::model::Direction;
use crate::port::{ContainerPort, PortMatch, PortProto, RulePort};
use crate::selector::Selector;
use crate::verdict::Tier;

/// The API a cluster policy came from: its id and the explanations name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClusterPolicyKind {
    ClusterNetworkPolicy,
    AdminNetworkPolicy,
    BaselineAdminNetworkPolicy,
}

impl ClusterPolicyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterPolicyKind::ClusterNetworkPolicy => "ClusterNetworkPolicy",
            ClusterPolicyKind::AdminNetworkPolicy => "AdminNetworkPolicy",
            ClusterPolicyKind::BaselineAdminNetworkPolicy => "BaselineAdminNetworkPolicy",
        }
    }

    /// v1alpha1 (AdminNetworkPolicy, BaselineAdminNetworkPolicy) rather than v1alpha2.
    pub fn is_v1alpha1(self) -> bool {
        self != ClusterPolicyKind::ClusterNetworkPolicy
    }
}

/// What a matching rule does. v1alpha1's `Allow` is `Accept`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Allowed for this direction; no later rule of any tier is consulted.
    Accept,
    /// Denied; no later rule of any tier is consulted.
    Deny,
    /// The rest of this tier is skipped: the next tier decides.
    Pass,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Accept => "Accept",
            Action::Deny => "Deny",
            Action::Pass => "Pass",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rule's peer. Pod peers never match host-network pods; `Nodes` and `Networks` match
/// the far end's address (pods' addresses included), `DomainNames` what a name resolves
/// to, which no cluster object says.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClusterPeer {
    /// `namespaces` (then `pods` is everything) or `pods` (namespace AND pod selector).
    Pods {
        namespaces: Selector,
        pods: Selector,
    },
    /// The addresses in `status.addresses` of the selected Nodes.
    Nodes(Selector),
    Networks(Vec<IpNet>),
    DomainNames(Vec<String>),
}

/// One entry of a rule's `protocols` (v1alpha2) or `ports` (v1alpha1).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClusterPort {
    /// A protocol with a port number or an inclusive range.
    Port(RulePort),
    /// `destinationNamedPort` / `namedPort`: the destination's containerPort of that name,
    /// whatever its protocol.
    Named(String),
}

impl ClusterPort {
    pub fn matches(&self, target: PortProto, dest_ports: &[ContainerPort]) -> bool {
        match self {
            ClusterPort::Port(port) => port.matches(target, dest_ports),
            ClusterPort::Named(name) => dest_ports.iter().any(|p| {
                p.name.as_deref() == Some(name.as_str()) && p.port == target.port && p.protocol == target.protocol
            }),
        }
    }
}

impl fmt::Display for ClusterPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterPort::Port(port) => port.fmt(f),
            ClusterPort::Named(name) => write!(f, "port named {name}"),
        }
    }
}

/// One ingress or egress rule. Empty `ports` match every port and protocol.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClusterRule {
    pub name: Option<String>,
    pub action: Action,
    pub peers: Vec<ClusterPeer>,
    pub ports: Vec<ClusterPort>,
}

impl ClusterRule {
    pub fn ports_match(&self, target: PortProto, dest_ports: &[ContainerPort]) -> bool {
        self.ports.is_empty() || self.ports.iter().any(|p| p.matches(target, dest_ports))
    }

    /// Whether a peer names domains: then whether the rule matches is not known from
    /// cluster objects for a far end no other peer of the rule matches.
    pub fn has_domain_names(&self) -> bool {
        self.peers.iter().any(|p| matches!(p, ClusterPeer::DomainNames(_)))
    }
}

/// Which pods a cluster policy applies to (never host-network pods).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Subject {
    pub namespaces: Selector,
    pub pods: Selector,
}

/// A ClusterNetworkPolicy, AdminNetworkPolicy or BaselineAdminNetworkPolicy after
/// validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterPolicy {
    pub kind: ClusterPolicyKind,
    pub name: String,
    /// [`Tier::Admin`] or [`Tier::Baseline`].
    pub tier: Tier,
    /// 0 to 1000, lower first. A BaselineAdminNetworkPolicy has none; it counts as 0.
    pub priority: u32,
    pub subject: Subject,
    pub ingress: Vec<ClusterRule>,
    pub egress: Vec<ClusterRule>,
}

impl ClusterPolicy {
    /// `ClusterNetworkPolicy/name`: kinds are capitalised, namespaces never are, so no
    /// cluster policy id reads like a NetworkPolicy's `namespace/name`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.kind.as_str(), self.name)
    }

    pub fn rules(&self, direction: Direction) -> &[ClusterRule] {
        match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }

    /// The order policies of one tier are consulted in: priority, then (for policies of
    /// equal priority, whose order is the implementation's) kind and name.
    pub fn order_key(&self) -> (u32, ClusterPolicyKind, &str) {
        (self.priority, self.kind, &self.name)
    }
}

/// A cluster policy's rule, named by the rule's `name` when it has one, else its position.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterRuleRef {
    pub policy: String,
    pub direction: Direction,
    pub index: usize,
    pub name: Option<String>,
}

impl fmt::Display for ClusterRuleRef {
    /// `ClusterNetworkPolicy/dns egress "allow-dns"`, else `... egress[2]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{} {} {name:?}", self.policy, self.direction),
            None => write!(f, "{} {}[{}]", self.policy, self.direction, self.index),
        }
    }
}

/// A port list in words, for explanations.
pub fn describe_ports(ports: &[ClusterPort]) -> String {
    if ports.is_empty() {
        "any port".to_string()
    } else {
        ports.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    }
}

impl RulePort {
    /// A port number or range of one protocol, as cluster policies write it.
    pub fn range(protocol: crate::port::Protocol, first: u16, last: u16) -> Self {
        RulePort { protocol, port: PortMatch::Range { first, last } }
    }
}
