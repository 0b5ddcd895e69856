//! Bulk evaluation: the full reachability matrix over endpoint classes, computed with
//! bitsets. It answers exactly what [`crate::evaluate`] answers cell by cell (a property
//! test holds them together), at a cost that grows with rules × classes / 64 instead of
//! pods² × rules.

use std::collections::HashMap;
use std::rc::Rc;

use fixedbitset::{Block, FixedBitSet};

use crate::classes::Classes;
use crate::cluster_policy::{Action, ClusterPeer, ClusterPolicy, ClusterPort};
use crate::model::{Cluster, Direction, Endpoint, Governance, IpBlock, IpFamily, NamespaceScope, Peer, Policy};
use crate::port::{ContainerPort, PortProto, RulePort};
use crate::verdict::Tier;

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

struct IndexedClusterRule<'c> {
    ports: &'c [ClusterPort],
    /// The classes a peer surely names.
    peers: PeerSet,
    /// A peer names domains: every class the ports match may be named.
    domains: bool,
    action: Action,
    direction: Direction,
}

/// The cluster policies of one tier whose subject is a class, grouped by priority (lower
/// first); each policy as its rules' positions in `cluster_rules`, in order.
type TierGroups = Vec<(u32, Vec<Vec<usize>>)>;

/// Per class and direction, the cluster tiers around NetworkPolicy.
#[derive(Default)]
struct ClassTiers {
    admin: TierGroups,
    baseline: TierGroups,
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
    cluster_rules: Vec<IndexedClusterRule<'c>>,
    /// Per class: its cluster tiers (a position in `tier_sets`); `None` when no cluster
    /// policy's subject is the class.
    tiers: Vec<Option<usize>>,
    /// The cluster tiers of ingress and egress, one per distinct set of selecting policies.
    tier_sets: Vec<[ClassTiers; 2]>,
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
        let (cluster_rules, tiers, tier_sets) = index_cluster_policies(cluster, &classes, &classes_by_namespace);
        Self { cluster, classes, rules, ingress, egress, rule_ids, cluster_rules, tiers, tier_sets }
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
        // Egress rules are checked against every destination; compute each distinct list
        // of ports' set once (namespaces repeat the same lists), and only for lists that
        // some class uses.
        let mut port_sets: HashMap<&[RulePort], FixedBitSet> = HashMap::new();
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
                    &*port_sets
                        .entry(rule.ports)
                        .or_insert_with(|| (0..n).filter(|&d| port_ok(rule, d)).collect_sized(n))
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
        let mut matrix = Matrix { port, egress, ingress, extra: Vec::new() };
        if !self.cluster_rules.is_empty() {
            self.apply_tiers(&mut matrix, port);
        }
        matrix
    }

    /// Rewrites each row through the cluster tiers: Admin before the NetworkPolicy answer
    /// computed so far, Baseline after it where no NetworkPolicy isolates.
    fn apply_tiers(&self, matrix: &mut Matrix, port: PortProto) {
        let n = self.classes.len();
        matrix.extra = vec![[None, None]; n];
        // Egress rules name destinations whatever the source: what each matches (and may
        // match by domain name) on this port, once.
        let egress_sets: Vec<Option<(FixedBitSet, Option<FixedBitSet>)>> = self
            .cluster_rules
            .iter()
            .map(|rule| {
                (rule.direction == Direction::Egress).then(|| {
                    let ports: FixedBitSet = (0..n)
                        .filter(|&c| {
                            rule.ports.is_empty()
                                || rule.ports.iter().any(|p| p.matches(port, &self.representative(c).ports))
                        })
                        .collect_sized(n);
                    let mut hits = rule.peers.primary.clone();
                    hits.intersect_with(&ports);
                    let maybe = rule.domains.then(|| {
                        let mut maybe = ports;
                        maybe.difference_with(&hits);
                        maybe
                    });
                    (hits, maybe)
                })
            })
            .collect();
        let empty = FixedBitSet::with_capacity(n);
        // Classes with the same tiers walk the same rules; for ingress the sets depend on the
        // class only through its ports and address family. Walk each distinct case once.
        type WalkKey<'k> = (usize, usize, Option<&'k [ContainerPort]>, Option<IpFamily>);
        let mut walks: HashMap<WalkKey<'_>, Rc<(Walked, Walked)>> = HashMap::new();
        for class in 0..n {
            let Some(set) = self.tiers[class] else { continue };
            for (d, direction) in [Direction::Ingress, Direction::Egress].into_iter().enumerate() {
                let class_tiers = &self.tier_sets[set][d];
                if class_tiers.admin.is_empty() && class_tiers.baseline.is_empty() {
                    continue;
                }
                let own = self.representative(class);
                let key = match direction {
                    Direction::Egress => (d, set, None, None),
                    Direction::Ingress => (d, set, Some(own.ports.as_slice()), own.primary_family()),
                };
                let rule_set = |r: usize| -> Option<(&FixedBitSet, Option<&FixedBitSet>)> {
                    let rule = &self.cluster_rules[r];
                    match direction {
                        Direction::Egress => egress_sets[r].as_ref().map(|(hits, maybe)| (hits, maybe.as_ref())),
                        Direction::Ingress => (rule.ports.is_empty()
                            || rule.ports.iter().any(|p| p.matches(port, &own.ports)))
                        .then(|| (rule.peers.for_family(own.primary_family()), None)),
                    }
                };
                let walked = Rc::clone(walks.entry(key).or_insert_with(|| {
                    Rc::new((
                        walk_groups(n, &class_tiers.admin, &self.cluster_rules, &rule_set, &empty),
                        walk_groups(n, &class_tiers.baseline, &self.cluster_rules, &rule_set, &empty),
                    ))
                }));
                let (admin, baseline) = (&walked.0, &walked.1);
                let (row, isolated) = match direction {
                    Direction::Egress => (&mut matrix.egress[class], self.egress[class].is_some()),
                    Direction::Ingress => (&mut matrix.ingress[class], self.ingress[class].is_some()),
                };
                let (unknown, tie) = combine_row(row, isolated, admin, baseline);
                if !unknown.is_clear() || !tie.is_clear() {
                    matrix.extra[class][d] = Some(Box::new(Extra { unknown, tie }));
                }
            }
        }
    }
}

/// Rewrites a row (the NetworkPolicy answer so far) through the tiers, word by word:
/// Admin decides where a rule matched; after it (or where it passed) NetworkPolicy where it
/// isolates, else Baseline, else allowed. Returns the far ends whose answer is unknown
/// (rules naming domains could decide either way) and those that are a tie.
fn combine_row(row: &mut FixedBitSet, isolated: bool, admin: &Walked, baseline: &Walked) -> (FixedBitSet, FixedBitSet) {
    let n = row.len();
    let mut unknown = FixedBitSet::with_capacity(n);
    let mut tie = FixedBitSet::with_capacity(n);
    let words = row.as_slice().len();
    let word = |set: &FixedBitSet, w: usize| set.as_slice()[w];
    for w in 0..words {
        let np = row.as_slice()[w];
        let (definite_after, can_allow_after, can_deny_after, tie_after) = if isolated {
            (np, np, !np, 0)
        } else {
            let denied = word(&baseline.decided[1], w);
            let definite = !denied;
            let can_allow = definite | word(&baseline.alternative[0], w) | word(&baseline.alternative[2], w);
            (definite, can_allow, denied | word(&baseline.alternative[1], w), word(&baseline.tie, w))
        };
        let (accept, deny) = (word(&admin.decided[0], w), word(&admin.decided[1], w));
        let onward = !(accept | deny);
        let via = onward | word(&admin.alternative[2], w);
        let can_allow = accept | word(&admin.alternative[0], w) | (via & can_allow_after);
        let can_deny = deny | word(&admin.alternative[1], w) | (via & can_deny_after);
        // Bits past the last class stay clear.
        let valid = if (w + 1) * BLOCK_BITS <= n { !0 } else { (1 << (n % BLOCK_BITS)) - 1 };
        row.as_mut_slice()[w] = (accept | (onward & definite_after)) & valid;
        unknown.as_mut_slice()[w] = can_allow & can_deny & valid;
        tie.as_mut_slice()[w] = (word(&admin.tie, w) | (onward & tie_after)) & valid;
    }
    (unknown, tie)
}

const BLOCK_BITS: usize = fixedbitset::Block::BITS as usize;

/// A cluster tier walked for one class and direction over every far-end class: what its
/// first matching rules decide (Accept, Deny, Pass), what rules naming domains might
/// decide instead, and where policies of equal priority disagree.
struct Walked {
    decided: [FixedBitSet; 3],
    alternative: [FixedBitSet; 3],
    tie: FixedBitSet,
}

fn action_index(action: Action) -> usize {
    match action {
        Action::Accept => 0,
        Action::Deny => 1,
        Action::Pass => 2,
    }
}

fn walk_groups<'a>(
    n: usize,
    groups: &TierGroups,
    rules: &[IndexedClusterRule<'_>],
    rule_set: &dyn Fn(usize) -> Option<(&'a FixedBitSet, Option<&'a FixedBitSet>)>,
    empty: &FixedBitSet,
) -> Walked {
    let blank = || FixedBitSet::with_capacity(n);
    let mut walked =
        Walked { decided: [blank(), blank(), blank()], alternative: [blank(), blank(), blank()], tie: blank() };
    let mut undecided = blank();
    undecided.insert_range(..);
    let words = undecided.as_slice().len();
    let mut local = blank();
    let mut taken = blank();
    let mut any_action = [blank(), blank(), blank()];
    for (_, group) in groups {
        if undecided.is_clear() {
            break;
        }
        taken.clear();
        any_action.iter_mut().for_each(FixedBitSet::clear);
        for policy in group {
            local.as_mut_slice().copy_from_slice(undecided.as_slice());
            for &r in policy {
                let Some((hits, maybe)) = rule_set(r) else { continue };
                let a = action_index(rules[r].action);
                let maybe = maybe.unwrap_or(empty);
                let (local_w, taken_w) = (local.as_mut_slice(), taken.as_mut_slice());
                let (any_w, decided_w, alternative_w) = (
                    any_action[a].as_mut_slice(),
                    walked.decided[a].as_mut_slice(),
                    walked.alternative[a].as_mut_slice(),
                );
                let (hits_w, maybe_w) = (hits.as_slice(), maybe.as_slice());
                for w in 0..words {
                    let hit = hits_w[w] & local_w[w];
                    alternative_w[w] |= maybe_w[w] & local_w[w];
                    any_w[w] |= hit;
                    decided_w[w] |= hit & !taken_w[w];
                    taken_w[w] |= hit;
                    local_w[w] &= !hit;
                }
            }
        }
        for w in 0..words {
            let [accept, deny, pass] = [0, 1, 2].map(|a| any_action[a].as_slice()[w]);
            walked.tie.as_mut_slice()[w] |= (accept & deny) | (accept & pass) | (deny & pass);
        }
        undecided.difference_with(&taken);
    }
    walked
}

/// Indexes every cluster policy: its rules' peer sets, and per class the policies whose
/// subject it is, grouped by tier and priority.
fn index_cluster_policies<'c>(
    cluster: &'c Cluster,
    classes: &Classes,
    by_namespace: &HashMap<&str, Vec<usize>>,
) -> (Vec<IndexedClusterRule<'c>>, Vec<Option<usize>>, Vec<[ClassTiers; 2]>) {
    let n = classes.len();
    let endpoint = |c: usize| &cluster.endpoints()[classes.representative(c)];
    let mut policies: Vec<&ClusterPolicy> = cluster.cluster_policies().iter().collect();
    policies.sort_by(|a, b| (a.tier, a.order_key()).cmp(&(b.tier, b.order_key())));
    let mut cache: HashMap<&ClusterPeer, PeerSet> = HashMap::new();
    let mut rules = Vec::new();
    // Per policy (in order): its rules per direction; per class: the policies selecting it.
    let mut policy_rules: Vec<[Vec<usize>; 2]> = Vec::with_capacity(policies.len());
    let mut selecting: Vec<Vec<u32>> = vec![Vec::new(); n];
    for (p, policy) in policies.iter().enumerate() {
        for &c in cluster
            .namespaces()
            .filter(|(_, labels)| policy.subject.namespaces.matches(labels))
            .flat_map(|(ns, _)| by_namespace.get(ns).into_iter().flatten())
        {
            if endpoint(c).governed() == Governance::Governed && policy.subject.pods.matches(&endpoint(c).labels) {
                selecting[c].push(p as u32);
            }
        }
        let mut per_direction: [Vec<usize>; 2] = Default::default();
        for (d, direction) in [Direction::Ingress, Direction::Egress].into_iter().enumerate() {
            for rule in policy.rules(direction) {
                let mut peers = PeerSet { primary: FixedBitSet::with_capacity(n), by_family: None };
                for peer in &rule.peers {
                    let set =
                        cache.entry(peer).or_insert_with(|| cluster_peer_set(cluster, classes, by_namespace, peer));
                    peers.union_with(set);
                }
                per_direction[d].push(rules.len());
                rules.push(IndexedClusterRule {
                    ports: &rule.ports,
                    peers,
                    domains: rule.has_domain_names(),
                    action: rule.action,
                    direction,
                });
            }
        }
        policy_rules.push(per_direction);
    }
    // Classes selected by the same policies share their tiers.
    let mut interned: HashMap<Vec<u32>, usize> = HashMap::new();
    let mut tier_sets: Vec<[ClassTiers; 2]> = Vec::new();
    let mut tiers_of = Vec::with_capacity(n);
    for list in selecting {
        if list.is_empty() {
            tiers_of.push(None);
            continue;
        }
        let next = tier_sets.len();
        let id = *interned.entry(list).or_insert_with_key(|list| {
            let mut set: [ClassTiers; 2] = Default::default();
            for &p in list {
                let policy = policies[p as usize];
                for (d, class_tiers) in set.iter_mut().enumerate() {
                    let own = &policy_rules[p as usize][d];
                    if own.is_empty() {
                        continue;
                    }
                    let groups =
                        if policy.tier == Tier::Admin { &mut class_tiers.admin } else { &mut class_tiers.baseline };
                    match groups.last_mut() {
                        Some((priority, group)) if *priority == policy.priority => group.push(own.clone()),
                        _ => groups.push((policy.priority, vec![own.clone()])),
                    }
                }
            }
            tier_sets.push(set);
            next
        });
        tiers_of.push(Some(id));
    }
    (rules, tiers_of, tier_sets)
}

fn cluster_peer_set(
    cluster: &Cluster,
    classes: &Classes,
    by_namespace: &HashMap<&str, Vec<usize>>,
    peer: &ClusterPeer,
) -> PeerSet {
    let n = classes.len();
    let endpoint = |c: usize| &cluster.endpoints()[classes.representative(c)];
    let by_address = |hit: &dyn Fn(std::net::IpAddr) -> bool| {
        let set = |family: Option<IpFamily>| {
            (0..n).filter(|&c| endpoint(c).address_for(family).is_some_and(hit)).collect_sized(n)
        };
        PeerSet { primary: set(None), by_family: Some([set(Some(IpFamily::V4)), set(Some(IpFamily::V6))]) }
    };
    match peer {
        ClusterPeer::Pods { namespaces, pods } => {
            let primary = cluster
                .namespaces()
                .filter(|(_, labels)| namespaces.matches(labels))
                .flat_map(|(ns, _)| by_namespace.get(ns).into_iter().flatten().copied())
                .filter(|&c| endpoint(c).governed() == Governance::Governed && pods.matches(&endpoint(c).labels))
                .collect_sized(n);
            PeerSet { primary, by_family: None }
        }
        ClusterPeer::Nodes(selector) => by_address(&|ip| cluster.node_address(selector, ip)),
        ClusterPeer::Networks(networks) => {
            let mut set = PeerSet { primary: FixedBitSet::with_capacity(n), by_family: None };
            for cidr in networks {
                let [v4, v6, primary] = classes.in_block(&IpBlock { cidr: *cidr, except: Vec::new() });
                set.union_with(&PeerSet { primary, by_family: Some([v4, v6]) });
            }
            set.by_family.get_or_insert_with(|| [set.primary.clone(), set.primary.clone()]);
            set
        }
        ClusterPeer::DomainNames(_) => PeerSet { primary: FixedBitSet::with_capacity(n), by_family: None },
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
    /// Per class, for ingress and egress: the far-end classes whose answer is not known
    /// (domain names) or the implementation's choice (equal priorities). Empty when no
    /// cluster policy exists.
    extra: Vec<[Option<Box<Extra>>; 2]>,
}

#[derive(Clone, Debug)]
struct Extra {
    unknown: FixedBitSet,
    tie: FixedBitSet,
}

impl Matrix {
    /// Both directions allow, when no domain name matches (see [`Matrix::unknown`]).
    pub fn allowed(&self, source: usize, destination: usize) -> bool {
        self.egress_allows(source, destination) && self.ingress_allows(source, destination)
    }

    fn extra(&self, class: usize, direction: Direction) -> Option<&Extra> {
        let d = usize::from(direction == Direction::Egress);
        self.extra.get(class).and_then(|e| e[d].as_deref())
    }

    /// Whether a direction's answer is not known from cluster objects (a rule naming domains
    /// could decide either way).
    pub fn direction_unknown(&self, direction: Direction, source: usize, destination: usize) -> bool {
        match direction {
            Direction::Egress => self.extra(source, direction).is_some_and(|e| e.unknown.contains(destination)),
            Direction::Ingress => self.extra(destination, direction).is_some_and(|e| e.unknown.contains(source)),
        }
    }

    /// Whether a direction's answer is the implementation's choice (cluster policies of equal
    /// priority disagree).
    pub fn direction_tie(&self, direction: Direction, source: usize, destination: usize) -> bool {
        match direction {
            Direction::Egress => self.extra(source, direction).is_some_and(|e| e.tie.contains(destination)),
            Direction::Ingress => self.extra(destination, direction).is_some_and(|e| e.tie.contains(source)),
        }
    }

    /// The cell's answer is not known: some direction is unknown and no known direction
    /// denies (as [`crate::Verdict::unknown`]).
    pub fn unknown(&self, source: usize, destination: usize) -> bool {
        let egress_unknown = self.direction_unknown(Direction::Egress, source, destination);
        let ingress_unknown = self.direction_unknown(Direction::Ingress, source, destination);
        let known_deny = (!egress_unknown && !self.egress_allows(source, destination))
            || (!ingress_unknown && !self.ingress_allows(source, destination));
        (egress_unknown || ingress_unknown) && !known_deny
    }

    /// Cluster policies of equal priority make this cell the implementation's choice.
    pub fn tie(&self, source: usize, destination: usize) -> bool {
        self.direction_tie(Direction::Egress, source, destination)
            || self.direction_tie(Direction::Ingress, source, destination)
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

/// The matrix read by source class: per source, the destination classes whose cell is
/// allowed and those whose cell is unknown, a whole row of words at a time. Ingress is kept
/// per destination, so reading it by source needs it transposed: once, 64 × 64 bits at a
/// time, which costs classes² / 64 word operations instead of a lookup per cell.
pub struct SourceRows<'m> {
    matrix: &'m Matrix,
    words: usize,
    /// Row `s` (of `words` words): the destinations whose ingress allows `s`.
    ingress: Vec<Block>,
    /// Row `s`: the destinations whose ingress answer for `s` is unknown; `None` when no
    /// ingress answer is.
    ingress_unknown: Option<Vec<Block>>,
}

impl Matrix {
    pub fn by_source(&self) -> SourceRows<'_> {
        let n = self.size();
        let ingress_unknown = self
            .extra
            .iter()
            .any(|e| e[0].is_some())
            .then(|| transpose(n, |d| self.extra(d, Direction::Ingress).map(|e| e.unknown.as_slice())));
        SourceRows {
            matrix: self,
            words: n.div_ceil(BLOCK_BITS),
            ingress: transpose(n, |d| Some(self.ingress[d].as_slice())),
            ingress_unknown,
        }
    }
}

impl SourceRows<'_> {
    /// The destination classes of `source` whose cell is allowed (both directions allow
    /// and the answer is known, as [`Matrix::allowed`] where not [`Matrix::unknown`]) into
    /// `allowed`, and those whose cell is unknown into `unknown`; both hold
    /// [`Matrix::size`] bits.
    pub fn row(&self, source: usize, allowed: &mut FixedBitSet, unknown: &mut FixedBitSet) {
        let range = source * self.words..(source + 1) * self.words;
        let egress = self.matrix.egress[source].as_slice();
        let egress_unknown = self.matrix.extra(source, Direction::Egress).map(|e| e.unknown.as_slice());
        let ingress = &self.ingress[range.clone()];
        let ingress_unknown = self.ingress_unknown.as_ref().map(|t| &t[range]);
        let (allowed, unknown) = (allowed.as_mut_slice(), unknown.as_mut_slice());
        for w in 0..self.words {
            let (e, i) = (egress[w], ingress[w]);
            let eu = egress_unknown.map_or(0, |u| u[w]);
            let iu = ingress_unknown.map_or(0, |u| u[w]);
            let known_deny = (!eu & !e) | (!iu & !i);
            unknown[w] = (eu | iu) & !known_deny;
            allowed[w] = e & i & !unknown[w];
        }
    }
}

/// The transpose of an `n` × `n` bit matrix given by rows (`None`: a row of zeros), as
/// `n` rows of `n.div_ceil(64)` words.
fn transpose<'a>(n: usize, row: impl Fn(usize) -> Option<&'a [Block]>) -> Vec<Block> {
    const { assert!(BLOCK_BITS == 64, "the transpose works on 64-bit words") };
    let words = n.div_ceil(BLOCK_BITS);
    let mut out = vec![0; n * words];
    let mut square = [0u64; 64];
    for block_row in 0..words {
        let rows = block_row * 64..n.min(block_row * 64 + 64);
        let sources: Vec<Option<&[Block]>> = rows.clone().map(&row).collect();
        for block_column in 0..words {
            square.fill(0);
            for (k, source) in sources.iter().enumerate() {
                square[k] = source.map_or(0, |r| r[block_column] as u64);
            }
            transpose_square(&mut square);
            for (k, word) in square.iter().enumerate().take(n.saturating_sub(block_column * 64).min(64)) {
                out[(block_column * 64 + k) * words + block_row] = *word as Block;
            }
        }
    }
    out
}

/// Transposes a 64 × 64 bit square in place (bit `k` of word `j` goes to bit `j` of word
/// `k`) by swapping ever smaller sub-squares.
fn transpose_square(a: &mut [u64; 64]) {
    let mut width = 32;
    let mut mask: u64 = 0x0000_0000_FFFF_FFFF;
    while width != 0 {
        let mut k = 0;
        while k < 64 {
            let swap = ((a[k] >> width) ^ a[k + width]) & mask;
            a[k] ^= swap << width;
            a[k + width] ^= swap;
            k = (k + width + 1) & !width;
        }
        width >>= 1;
        mask ^= mask << width;
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
                    let [v4, v6, primary] = classes.in_block(block);
                    PeerSet { primary, by_family: Some([v4, v6]) }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_moves_every_bit_across_the_diagonal() {
        // Sizes below, at and past one 64-bit word, so partial words are covered.
        for n in [1, 63, 64, 65, 150] {
            let rows: Vec<FixedBitSet> =
                (0..n).map(|r| (0..n).filter(|c| (r * 7 + c * 13 + r * c) % 5 == 0).collect_sized(n)).collect();
            let words = n.div_ceil(BLOCK_BITS);
            let t = transpose(n, |r| Some(rows[r].as_slice()));
            assert_eq!(t.len(), n * words);
            for r in 0..n {
                for c in 0..n {
                    let bit = t[c * words + r / BLOCK_BITS] >> (r % BLOCK_BITS) & 1 == 1;
                    assert_eq!(bit, rows[r].contains(c), "n {n}: ({r}, {c})");
                }
            }
            let empty = transpose(n, |_| None);
            assert!(empty.iter().all(|&w| w == 0), "n {n}: rows of zeros");
        }
    }
}
