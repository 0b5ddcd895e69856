//! Equivalence classes of endpoints: endpoints that no policy can tell apart get the same
//! verdicts, so the engine evaluates one representative per class. Replicas of a workload
//! collapse into one class; so do workloads that differ only in labels no policy reads.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

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
    /// For each distinct ipBlock (and cluster policy network), then each distinct `nodes`
    /// selector, whether it contains the address used on IPv4, IPv6 and primary-family
    /// connections, as three bits.
    ip_blocks: Vec<u8>,
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
        let mut node_selectors: Vec<&Selector> = cluster_peers(cluster)
            .filter_map(|peer| match peer {
                ClusterPeer::Nodes(selector) => Some(selector),
                _ => None,
            })
            .collect();
        node_selectors.sort();
        node_selectors.dedup();
        let keys = selected_keys(cluster);

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
                ip_blocks: blocks
                    .iter()
                    .map(|b| ip_bits(|ip| b.contains(ip), endpoint))
                    .chain(node_selectors.iter().map(|s| ip_bits(|ip| cluster.node_address(s, ip), endpoint)))
                    .collect(),
            };
            let class = *by_key.entry(key).or_insert_with(|| {
                members.push(Vec::new());
                members.len() - 1
            });
            members[class].push(i);
            class_of.push(class);
        }
        Self { class_of, members }
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

fn ip_bits(contains: impl Fn(IpAddr) -> bool, endpoint: &Endpoint) -> u8 {
    let hit = |ip: Option<IpAddr>| ip.is_some_and(&contains);
    u8::from(hit(endpoint.address_for(Some(IpFamily::V4))))
        | (u8::from(hit(endpoint.address_for(Some(IpFamily::V6)))) << 1)
        | (u8::from(hit(endpoint.address_for(None))) << 2)
}
