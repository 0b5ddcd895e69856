//! Bulk evaluation: the full reachability matrix over endpoint classes, computed with
//! bitsets. It answers exactly what [`crate::evaluate`] answers cell by cell (a property
//! test holds them together), at a cost that grows with rules × classes / 64 instead of
//! pods² × rules.

use std::collections::HashMap;

use fixedbitset::FixedBitSet;

use crate::classes::Classes;
use crate::model::{Cluster, Direction, Endpoint, Governance, IpFamily, NamespaceScope, Peer, Policy};
use crate::port::{PortProto, RulePort};

/// The classes a peer (or a rule's list of peers) names. The far end's address depends on
/// the connection's family, so ipBlocks get one set per family.
#[derive(Clone, Debug)]
struct PeerSet {
    primary: FixedBitSet,
    /// `None` when no ipBlock is involved: then every family gives `primary`.
    by_family: Option<[FixedBitSet; 2]>,
}

impl PeerSet {
    fn for_family(&self, family: Option<IpFamily>) -> &FixedBitSet {
        match (&self.by_family, family) {
            (Some([v4, _]), Some(IpFamily::V4)) => v4,
            (Some([_, v6]), Some(IpFamily::V6)) => v6,
            _ => &self.primary,
        }
    }

    fn union_with(&mut self, other: &PeerSet) {
        if let (None, Some(_)) = (&self.by_family, &other.by_family) {
            self.by_family = Some([self.primary.clone(), self.primary.clone()]);
        }
        if let Some(mine) = &mut self.by_family {
            for (i, family) in [IpFamily::V4, IpFamily::V6].into_iter().enumerate() {
                mine[i].union_with(other.for_family(Some(family)));
            }
        }
        self.primary.union_with(&other.primary);
    }
}

struct IndexedRule<'c> {
    ports: &'c [RulePort],
    /// `None`: the rule has no peers, so it names everything.
    peers: Option<PeerSet>,
}

/// Policies indexed by what they select and what their rules name, per class.
pub struct PolicyIndex<'c> {
    cluster: &'c Cluster,
    classes: Classes,
    rules: Vec<IndexedRule<'c>>,
    /// Per class: the rules that govern its ingress, `None` if it is not isolated.
    ingress: Vec<Option<Vec<usize>>>,
    egress: Vec<Option<Vec<usize>>>,
    /// (policy position, direction, rule position) to the rule's index in `rules`.
    rule_ids: HashMap<(usize, Direction, usize), usize>,
}

impl<'c> PolicyIndex<'c> {
    pub fn new(cluster: &'c Cluster) -> Self {
        let classes = Classes::of(cluster);
        let n = classes.len();
        let endpoints = cluster.endpoints();
        let representative = |c: usize| &endpoints[classes.representative(c)];
        let mut classes_by_namespace: HashMap<&str, Vec<usize>> = HashMap::new();
        for class in 0..n {
            if let Some(ns) = representative(class).namespace.as_deref() {
                classes_by_namespace.entry(ns).or_default().push(class);
            }
        }
        let mut builder =
            PeerSetBuilder { cluster, classes: &classes, by_namespace: &classes_by_namespace, cache: HashMap::new() };
        let mut rules = Vec::new();
        let mut rule_ids = HashMap::new();
        let mut ingress: Vec<Option<Vec<usize>>> = vec![None; n];
        let mut egress: Vec<Option<Vec<usize>>> = vec![None; n];
        for (position, policy) in cluster.policies().iter().enumerate() {
            let selected: Vec<usize> = classes_by_namespace
                .get(policy.namespace.as_str())
                .into_iter()
                .flatten()
                .copied()
                .filter(|&c| policy.selects(representative(c)))
                .collect();
            for (direction, per_class) in [(Direction::Ingress, &mut ingress), (Direction::Egress, &mut egress)] {
                let Some(policy_rules) = policy.rules(direction) else { continue };
                let first = rules.len();
                for (index, rule) in policy_rules.iter().enumerate() {
                    rule_ids.insert((position, direction, index), rules.len());
                    let peers = (!rule.peers.is_empty()).then(|| builder.union(policy, &rule.peers));
                    rules.push(IndexedRule { ports: &rule.ports, peers });
                }
                for &class in &selected {
                    per_class[class].get_or_insert_with(Vec::new).extend(first..rules.len());
                }
            }
        }
        Self { cluster, classes, rules, ingress, egress, rule_ids }
    }

    /// The classes a rule's peers can match (for any address family), or `None` when the
    /// rule has no peers and so matches every class. `policy` is the policy's position in
    /// the cluster.
    pub fn rule_peers(&self, policy: usize, direction: Direction, index: usize) -> Option<Vec<usize>> {
        let rule = &self.rules[*self.rule_ids.get(&(policy, direction, index))?];
        let peers = rule.peers.as_ref()?;
        let mut any = peers.primary.clone();
        if let Some(families) = &peers.by_family {
            families.iter().for_each(|f| any.union_with(f));
        }
        Some(any.ones().collect())
    }

    pub fn classes(&self) -> &Classes {
        &self.classes
    }

    pub fn cluster(&self) -> &'c Cluster {
        self.cluster
    }

    fn representative(&self, class: usize) -> &'c Endpoint {
        &self.cluster.endpoints()[self.classes.representative(class)]
    }

    /// Every class-to-class answer for one destination port.
    pub fn matrix(&self, port: PortProto) -> Matrix {
        let n = self.classes.len();
        let all = || {
            let mut set = FixedBitSet::with_capacity(n);
            set.insert_range(..);
            set
        };
        let port_ok = |rule: &IndexedRule<'_>, class: usize| {
            rule.ports.is_empty() || rule.ports.iter().any(|p| p.matches(port, &self.representative(class).ports))
        };
        // Egress rules are checked against every destination; compute each rule's port
        // set once, and only for rules that some class uses.
        let mut port_sets: Vec<Option<FixedBitSet>> = vec![None; self.rules.len()];
        let mut egress = Vec::with_capacity(n);
        for source in 0..n {
            let Some(rule_ids) = &self.egress[source] else {
                egress.push(all());
                continue;
            };
            let mut row = FixedBitSet::with_capacity(n);
            for &r in rule_ids {
                let rule = &self.rules[r];
                let ports = (!rule.ports.is_empty()).then(|| {
                    &*port_sets[r].get_or_insert_with(|| (0..n).filter(|&d| port_ok(rule, d)).collect_sized(n))
                });
                match (&rule.peers, ports) {
                    (None, None) => row.insert_range(..),
                    (None, Some(ports)) => row.union_with(ports),
                    (Some(peers), None) => row.union_with(&peers.primary),
                    (Some(peers), Some(ports)) => {
                        let mut both = peers.primary.clone();
                        both.intersect_with(ports);
                        row.union_with(&both);
                    }
                }
            }
            egress.push(row);
        }
        let mut ingress = Vec::with_capacity(n);
        for destination in 0..n {
            let Some(rule_ids) = &self.ingress[destination] else {
                ingress.push(all());
                continue;
            };
            let family = self.representative(destination).primary_family();
            let mut row = FixedBitSet::with_capacity(n);
            for &r in rule_ids {
                let rule = &self.rules[r];
                if !port_ok(rule, destination) {
                    continue;
                }
                match &rule.peers {
                    None => row.insert_range(..),
                    Some(peers) => row.union_with(peers.for_family(family)),
                }
            }
            ingress.push(row);
        }
        Matrix { port, egress, ingress }
    }
}

/// The reachability of every class pair for one port.
#[derive(Clone, Debug)]
pub struct Matrix {
    pub port: PortProto,
    /// `egress[s]`: the destination classes the egress of class `s` allows.
    egress: Vec<FixedBitSet>,
    /// `ingress[d]`: the source classes the ingress of class `d` allows.
    ingress: Vec<FixedBitSet>,
}

impl Matrix {
    pub fn allowed(&self, source: usize, destination: usize) -> bool {
        self.egress_allows(source, destination) && self.ingress_allows(source, destination)
    }

    pub fn egress_allows(&self, source: usize, destination: usize) -> bool {
        self.egress[source].contains(destination)
    }

    pub fn ingress_allows(&self, source: usize, destination: usize) -> bool {
        self.ingress[destination].contains(source)
    }

    /// The number of classes on each side.
    pub fn size(&self) -> usize {
        self.egress.len()
    }
}

trait CollectSized {
    fn collect_sized(self, n: usize) -> FixedBitSet;
}

impl<I: Iterator<Item = usize>> CollectSized for I {
    fn collect_sized(self, n: usize) -> FixedBitSet {
        let mut set = FixedBitSet::with_capacity(n);
        set.extend(self);
        set
    }
}

struct PeerSetBuilder<'a> {
    cluster: &'a Cluster,
    classes: &'a Classes,
    by_namespace: &'a HashMap<&'a str, Vec<usize>>,
    /// Identical peers recur across policies (the DNS rule in every namespace): match once.
    cache: HashMap<(&'a Peer, Option<&'a str>), PeerSet>,
}

impl<'a> PeerSetBuilder<'a> {
    fn union(&mut self, policy: &'a Policy, peers: &'a [Peer]) -> PeerSet {
        let n = self.classes.len();
        let mut set = PeerSet { primary: FixedBitSet::with_capacity(n), by_family: None };
        for peer in peers {
            set.union_with(self.peer(policy, peer));
        }
        set
    }

    fn peer(&mut self, policy: &'a Policy, peer: &'a Peer) -> &PeerSet {
        let own_namespace =
            matches!(peer, Peer::Pods { namespaces: NamespaceScope::Own, .. }).then_some(policy.namespace.as_str());
        let (cluster, classes, by_namespace) = (self.cluster, self.classes, self.by_namespace);
        self.cache.entry((peer, own_namespace)).or_insert_with(|| {
            let n = classes.len();
            let endpoint = |c: usize| &cluster.endpoints()[classes.representative(c)];
            match peer {
                Peer::IpBlock(block) => {
                    let hits = |family: Option<IpFamily>| {
                        (0..n)
                            .filter(|&c| endpoint(c).address_for(family).is_some_and(|ip| block.contains(ip)))
                            .collect_sized(n)
                    };
                    PeerSet {
                        primary: hits(None),
                        by_family: Some([hits(Some(IpFamily::V4)), hits(Some(IpFamily::V6))]),
                    }
                }
                Peer::Pods { namespaces, pods } => {
                    let candidates: Vec<usize> = match namespaces {
                        NamespaceScope::Own => by_namespace.get(policy.namespace.as_str()).cloned().unwrap_or_default(),
                        NamespaceScope::Selected(selector) => cluster
                            .namespaces()
                            .filter(|(_, labels)| selector.matches(labels))
                            .flat_map(|(ns, _)| by_namespace.get(ns).into_iter().flatten().copied())
                            .collect(),
                    };
                    let primary = candidates
                        .into_iter()
                        .filter(|&c| {
                            endpoint(c).governed() == Governance::Governed && pods.matches(&endpoint(c).labels)
                        })
                        .collect_sized(n);
                    PeerSet { primary, by_family: None }
                }
            }
        })
    }
}
