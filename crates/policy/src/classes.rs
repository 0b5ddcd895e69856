//! Equivalence classes of endpoints: endpoints that no policy can tell apart get the same
//! verdicts, so the engine evaluates one representative per class. Replicas of a workload
//! collapse into one class; so do workloads that differ only in labels no policy reads.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use fixedbitset::FixedBitSet;
use ipnet::IpNet;

use crate::cluster_policy::ClusterPeer;
use crate::model::{Cluster, Endpoint, Governance, IpBlock, IpFamily, Peer};
use crate::port::ContainerPort;
use crate::selector::Selector;

/// Which endpoints are interchangeable for every policy of a cluster.
#[derive(Clone, Debug)]
pub struct Classes {
    /// Class of each endpoint, by endpoint position in the cluster.
    class_of: Vec<usize>,
    /// Endpoint positions of each class, in cluster order; the first is the representative.
    members: Vec<Vec<usize>>,
    /// Each distinct ipBlock (and cluster policy network) to the classes whose addresses
    /// it contains, as in [`ClassKey::ip_blocks`]: so that a peer's classes cost one walk of
    /// that list, not a check of every class.
    block_classes: HashMap<IpBlock, Vec<(usize, u8)>>,
}

/// What decides an endpoint's verdicts: everything policy evaluation reads from it.
#[derive(PartialEq, Eq, Hash)]
struct ClassKey<'a> {
    namespace: Option<&'a str>,
    /// Only the labels whose keys some selector reads: no selector can tell apart pods
    /// that differ elsewhere (`pod-template-hash`, `statefulset.kubernetes.io/pod-name`).
    labels: Vec<(&'a str, &'a str)>,
    ports: &'a [ContainerPort],
    governance: Governance,
    primary_family: Option<IpFamily>,
    /// The distinct ipBlocks (and cluster policy networks) that contain the address used on
    /// IPv4, IPv6 or primary-family connections: each as its position and those three
    /// bits, by position.
    ip_blocks: Vec<(u32, u8)>,
    /// For each distinct `nodes` selector, the same three bits.
    nodes: Vec<u8>,
}

impl Classes {
    pub fn of(cluster: &Cluster) -> Self {
        let mut blocks: Vec<&IpBlock> = cluster
            .policies()
            .iter()
            .flat_map(|p| p.ingress.iter().chain(p.egress.iter()).flatten())
            .flat_map(|r| r.peers.iter())
            .filter_map(|peer| match peer {
                Peer::IpBlock(block) => Some(block),
                Peer::Pods { .. } => None,
            })
            .collect();
        let networks: Vec<IpBlock> = cluster_peers(cluster)
            .filter_map(|peer| match peer {
                ClusterPeer::Networks(networks) => Some(networks),
                _ => None,
            })
            .flatten()
            .map(|cidr| IpBlock { cidr: *cidr, except: Vec::new() })
            .collect();
        blocks.extend(networks.iter());
        blocks.sort();
        blocks.dedup();
        let blocks = BlockIndex::new(blocks);
        let mut node_selectors: Vec<&Selector> = cluster_peers(cluster)
            .filter_map(|peer| match peer {
                ClusterPeer::Nodes(selector) => Some(selector),
                _ => None,
            })
            .collect();
        node_selectors.sort();
        node_selectors.dedup();
        let keys = selected_keys(cluster);

        let mut by_block: Vec<Vec<(usize, u8)>> = vec![Vec::new(); blocks.blocks.len()];
        let mut by_key: HashMap<ClassKey<'_>, usize> = HashMap::new();
        let mut class_of = Vec::with_capacity(cluster.endpoints().len());
        let mut members: Vec<Vec<usize>> = Vec::new();
        for (i, endpoint) in cluster.endpoints().iter().enumerate() {
            let key = ClassKey {
                namespace: endpoint.namespace.as_deref(),
                labels: endpoint
                    .labels
                    .iter()
                    .filter(|(k, _)| keys.contains(k.as_str()))
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect(),
                ports: &endpoint.ports,
                governance: endpoint.governed(),
                primary_family: endpoint.primary_family(),
                ip_blocks: blocks.containing(endpoint),
                nodes: node_selectors.iter().map(|s| ip_bits(|ip| cluster.node_address(s, ip), endpoint)).collect(),
            };
            let next = members.len();
            let class = match by_key.entry(key) {
                Entry::Occupied(entry) => *entry.get(),
                Entry::Vacant(entry) => {
                    for &(block, bits) in &entry.key().ip_blocks {
                        by_block[block as usize].push((next, bits));
                    }
                    members.push(Vec::new());
                    *entry.insert(next)
                }
            };
            members[class].push(i);
            class_of.push(class);
        }
        let block_classes = blocks.blocks.into_iter().cloned().zip(by_block).collect();
        Self { class_of, members, block_classes }
    }

    /// The classes whose address used on IPv4, IPv6 and primary-family connections `block`
    /// contains, as three bitsets of `self.len()` classes. `block` must be one of the
    /// cluster's ipBlocks or cluster policy networks.
    pub(crate) fn in_block(&self, block: &IpBlock) -> [FixedBitSet; 3] {
        let mut sets: [FixedBitSet; 3] = std::array::from_fn(|_| FixedBitSet::with_capacity(self.len()));
        for &(class, bits) in self.block_classes.get(block).into_iter().flatten() {
            for (bit, set) in sets.iter_mut().enumerate() {
                set.set(class, bits & (1 << bit) != 0);
            }
        }
        sets
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn class_of(&self, endpoint: usize) -> usize {
        self.class_of[endpoint]
    }

    pub fn members(&self, class: usize) -> &[usize] {
        &self.members[class]
    }

    /// The endpoint position that stands for a class.
    pub fn representative(&self, class: usize) -> usize {
        self.members[class][0]
    }
}

/// Every label key that a pod selector (of a policy or of a peer) reads: the labels that
/// matter to policy, and so the only ones a probe pod needs to copy.
pub fn selected_keys(cluster: &Cluster) -> HashSet<&str> {
    let mut keys = HashSet::new();
    for policy in cluster.policies() {
        let peer_selectors =
            policy.ingress.iter().chain(policy.egress.iter()).flatten().flat_map(|r| r.peers.iter()).filter_map(
                |peer| match peer {
                    Peer::Pods { pods, .. } => Some(pods),
                    Peer::IpBlock(_) => None,
                },
            );
        for selector in std::iter::once(&policy.pod_selector).chain(peer_selectors) {
            keys.extend(selector.requirements().iter().map(|r| r.key.as_str()));
        }
    }
    for policy in cluster.cluster_policies() {
        keys.extend(policy.subject.pods.requirements().iter().map(|r| r.key.as_str()));
    }
    for peer in cluster_peers(cluster) {
        if let ClusterPeer::Pods { pods, .. } = peer {
            keys.extend(pods.requirements().iter().map(|r| r.key.as_str()));
        }
    }
    keys
}

/// Every peer of every cluster policy rule.
fn cluster_peers(cluster: &Cluster) -> impl Iterator<Item = &ClusterPeer> {
    cluster.cluster_policies().iter().flat_map(|p| p.ingress.iter().chain(p.egress.iter())).flat_map(|r| r.peers.iter())
}

/// The addresses an endpoint is reached at on IPv4, IPv6 and primary-family connections,
/// in the order of the three bits of [`ClassKey::ip_blocks`].
fn addresses(endpoint: &Endpoint) -> [Option<IpAddr>; 3] {
    [endpoint.address_for(Some(IpFamily::V4)), endpoint.address_for(Some(IpFamily::V6)), endpoint.address_for(None)]
}

/// Distinct ipBlocks indexed by their CIDR, so that finding those that contain an address
/// costs one lookup per distinct prefix length instead of a check per block: a cluster with
/// a policy per namespace has thousands of blocks.
struct BlockIndex<'a> {
    blocks: Vec<&'a IpBlock>,
    by_cidr: HashMap<IpNet, Vec<u32>>,
    /// The prefix lengths in use, per family (IPv4, IPv6).
    prefix_lengths: [Vec<u8>; 2],
}

impl<'a> BlockIndex<'a> {
    fn new(blocks: Vec<&'a IpBlock>) -> Self {
        let mut by_cidr: HashMap<IpNet, Vec<u32>> = HashMap::new();
        let mut prefix_lengths: [Vec<u8>; 2] = Default::default();
        for (i, block) in blocks.iter().enumerate() {
            by_cidr.entry(block.cidr.trunc()).or_default().push(i as u32);
            prefix_lengths[usize::from(block.cidr.network().is_ipv6())].push(block.cidr.prefix_len());
        }
        for lengths in &mut prefix_lengths {
            lengths.sort_unstable();
            lengths.dedup();
        }
        Self { blocks, by_cidr, prefix_lengths }
    }

    /// The blocks that contain an endpoint's addresses, as in [`ClassKey::ip_blocks`].
    fn containing(&self, endpoint: &Endpoint) -> Vec<(u32, u8)> {
        let mut hits: Vec<(u32, u8)> = Vec::new();
        for (bit, ip) in addresses(endpoint).into_iter().enumerate() {
            let Some(ip) = ip else { continue };
            for &length in &self.prefix_lengths[usize::from(ip.is_ipv6())] {
                let Ok(cidr) = IpNet::new(ip, length) else { continue };
                for &b in self.by_cidr.get(&cidr.trunc()).into_iter().flatten() {
                    if self.blocks[b as usize].contains(ip) {
                        hits.push((b, 1 << bit));
                    }
                }
            }
        }
        hits.sort_unstable();
        hits.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same {
                earlier.1 |= later.1;
            }
            same
        });
        hits
    }
}

fn ip_bits(contains: impl Fn(IpAddr) -> bool, endpoint: &Endpoint) -> u8 {
    addresses(endpoint)
        .into_iter()
        .enumerate()
        .fold(0, |bits, (bit, ip)| bits | (u8::from(ip.is_some_and(&contains)) << bit))
}
