//! An analysis: which endpoints send, which receive on which ports, and the verdict
//! matrices for each port. This is what `analyze` renders and what a planner reads.

use std::collections::{BTreeSet, HashMap};

use fixedbitset::FixedBitSet;
use std::net::IpAddr;

use crate::evaluate;
use crate::matrix::{Matrix, PolicyIndex};
use crate::model::{Cluster, Endpoint};
use crate::port::{ContainerPort, PortProto};
use crate::verdict::Verdict;

/// What to analyse. Endpoints are positions in the cluster.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub sources: Vec<usize>,
    pub destinations: Vec<usize>,
    /// `None`: each destination on the ports its containers declare (an external
    /// destination on the ports it was given). `Some`: every in-cluster destination on
    /// these ports, external ones still on their own.
    pub ports: Option<Vec<PortProto>>,
}

impl Scope {
    /// Every in-cluster endpoint as source and destination, on declared ports.
    pub fn whole_cluster(cluster: &Cluster) -> Self {
        let all: Vec<usize> =
            (0..cluster.endpoints().len()).filter(|&i| !cluster.endpoints()[i].is_external()).collect();
        Self { sources: all.clone(), destinations: all, ports: None }
    }

    /// The whole cluster, plus addresses outside it: each of `external_destinations` is
    /// added to `cluster` as an endpoint that listens on the port given with it (an address
    /// named twice listens on both ports), each of `external_sources` as an endpoint that
    /// sends. `ports`, when not empty, are the ports every in-cluster destination is
    /// analysed on instead of its declared ones.
    pub fn with_external(
        cluster: &mut Cluster,
        ports: &[PortProto],
        external_destinations: &[(IpAddr, PortProto)],
        external_sources: &[IpAddr],
    ) -> Self {
        for (ip, port) in external_destinations {
            let mut endpoint = cluster.endpoint(&ip.to_string()).cloned().unwrap_or_else(|| Endpoint::external(*ip));
            endpoint.ports.push(ContainerPort { name: None, port: port.port, protocol: port.protocol });
            cluster.add_endpoint(endpoint);
        }
        for ip in external_sources {
            if cluster.endpoint(&ip.to_string()).is_none() {
                cluster.add_endpoint(Endpoint::external(*ip));
            }
        }
        let mut scope = Scope::whole_cluster(cluster);
        let position = |ip: &IpAddr| cluster.endpoints().iter().position(|e| e.is_external() && e.ips[0] == *ip);
        for source in external_sources.iter().filter_map(position) {
            if !scope.sources.contains(&source) {
                scope.sources.push(source);
            }
        }
        for destination in external_destinations.iter().filter_map(|(ip, _)| position(ip)) {
            if !scope.destinations.contains(&destination) {
                scope.destinations.push(destination);
            }
        }
        scope.ports = (!ports.is_empty()).then(|| ports.to_vec());
        scope
    }
}

impl Scope {
    /// Keeps the sources in the `from` namespaces and the destinations in the `to`
    /// namespaces ([`EXTERNAL_NAMESPACE`] names addresses outside the cluster); an empty
    /// list keeps every one.
    pub fn within_namespaces(&mut self, cluster: &Cluster, from: &[String], to: &[String]) {
        let endpoints = cluster.endpoints();
        let keep = |names: &[String], i: &usize| {
            let namespace = endpoints[*i].namespace.as_deref().unwrap_or(EXTERNAL_NAMESPACE);
            names.is_empty() || names.iter().any(|n| n == namespace)
        };
        self.sources.retain(|i| keep(from, i));
        self.destinations.retain(|i| keep(to, i));
    }
}

/// Why a name given by the user does not name one endpoint.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("no pod, workload or address {0:?} in the input (names look like ns/pod or ns/kind/workload)")]
    NotFound(String),
    #[error("{name:?} is ambiguous: {}", candidates.join(", "))]
    Ambiguous { name: String, candidates: Vec<String> },
}

/// Finds an endpoint (its position in `cluster`) by id (`ns/pod`, `ns/kind/workload`), by
/// `ns/name` when one endpoint of the namespace ends in that name, or by IP address. An
/// address no endpoint has is added to `cluster` as an endpoint outside it.
pub fn resolve(cluster: &mut Cluster, name: &str) -> Result<usize, ResolveError> {
    let endpoints = cluster.endpoints();
    if let Some(i) = endpoints.iter().position(|e| e.id == name) {
        return Ok(i);
    }
    if let Ok(ip) = name.parse::<IpAddr>() {
        if let Some(i) = endpoints.iter().position(|e| e.ips.contains(&ip)) {
            return Ok(i);
        }
        cluster.add_endpoint(Endpoint::external(ip));
        return Ok(cluster.endpoints().len() - 1);
    }
    let candidates: Vec<usize> = match name.split_once('/') {
        Some((ns, short)) => (0..endpoints.len())
            .filter(|&i| {
                endpoints[i].namespace.as_deref() == Some(ns) && endpoints[i].id.rsplit('/').next() == Some(short)
            })
            .collect(),
        None => Vec::new(),
    };
    match candidates.as_slice() {
        [one] => Ok(*one),
        [] => Err(ResolveError::NotFound(name.to_string())),
        many => Err(ResolveError::Ambiguous {
            name: name.to_string(),
            candidates: many.iter().map(|&i| endpoints[i].id.clone()).collect(),
        }),
    }
}

/// The verdicts for one destination port.
#[derive(Debug)]
pub struct Block {
    pub port: PortProto,
    /// The destinations (endpoint positions) this port is analysed for.
    pub destinations: Vec<usize>,
    pub matrix: Matrix,
}

/// Allowed, denied (and unknown) counts of endpoint pairs for one port and namespace pair.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Counts {
    pub allowed: u64,
    pub denied: u64,
    /// Pairs whose answer a rule naming domains could decide either way: neither allowed
    /// nor denied.
    pub unknown: u64,
}

/// The name summaries use for the namespace of endpoints outside the cluster.
pub const EXTERNAL_NAMESPACE: &str = "(external)";

pub struct Analysis<'c> {
    pub index: PolicyIndex<'c>,
    pub sources: Vec<usize>,
    pub blocks: Vec<Block>,
}

impl<'c> Analysis<'c> {
    pub fn new(cluster: &'c Cluster, scope: &Scope) -> Self {
        let index = PolicyIndex::new(cluster);
        let endpoints = cluster.endpoints();
        let declares = |i: usize, port: PortProto| {
            endpoints[i].ports.iter().any(|p| p.port == port.port && p.protocol == port.protocol)
        };
        let declared: BTreeSet<PortProto> = scope
            .destinations
            .iter()
            .flat_map(|&i| endpoints[i].ports.iter().map(|p| PortProto::new(p.port, p.protocol)))
            .collect();
        let ports: BTreeSet<PortProto> = match &scope.ports {
            None => declared,
            Some(given) => {
                let external = scope.destinations.iter().filter(|&&i| endpoints[i].is_external());
                let external_ports =
                    external.flat_map(|&i| endpoints[i].ports.iter().map(|p| PortProto::new(p.port, p.protocol)));
                given.iter().copied().chain(external_ports).collect()
            }
        };
        let blocks = ports
            .into_iter()
            .map(|port| {
                let destinations = scope
                    .destinations
                    .iter()
                    .copied()
                    .filter(|&i| match (&scope.ports, endpoints[i].is_external()) {
                        (Some(given), false) => given.contains(&port),
                        _ => declares(i, port),
                    })
                    .collect();
                Block { port, destinations, matrix: index.matrix(port) }
            })
            .filter(|b: &Block| !b.destinations.is_empty())
            .collect();
        Self { index, sources: scope.sources.clone(), blocks }
    }

    pub fn cluster(&self) -> &'c Cluster {
        self.index.cluster()
    }

    /// Whether a source or destination uses the host network, which makes every verdict
    /// it is part of implementation-defined.
    pub fn has_host_network(&self) -> bool {
        let endpoints = self.cluster().endpoints();
        let shown = self.sources.iter().chain(self.blocks.iter().flat_map(|b| b.destinations.iter()));
        shown.map(|&i| &endpoints[i]).any(|e| e.host_network && !e.is_external())
    }

    /// Whether `source` may reach `destination` (endpoint positions) on `block`'s port.
    pub fn allowed(&self, block: &Block, source: usize, destination: usize) -> bool {
        let classes = self.index.classes();
        block.matrix.allowed(classes.class_of(source), classes.class_of(destination))
    }

    /// The explained verdict for one pair.
    pub fn verdict(&self, source: usize, destination: usize, port: PortProto) -> Verdict {
        let endpoints = self.cluster().endpoints();
        evaluate::verdict(self.cluster(), &endpoints[source], &endpoints[destination], port)
    }

    /// Counts per port and (source namespace, destination namespace), computed per class
    /// pair and weighted by class sizes, so that it costs classes², not pods²; and only
    /// the allowed and unknown pairs are kept, so that it holds what policy lets through,
    /// not namespaces².
    pub fn summary(&self) -> Summary {
        let endpoints = self.cluster().endpoints();
        let classes = self.index.classes();
        let n = classes.len();
        let namespace =
            |c: usize| endpoints[classes.representative(c)].namespace.as_deref().unwrap_or(EXTERNAL_NAMESPACE);
        let mut names: Vec<&str> = (0..n).map(namespace).collect();
        names.sort_unstable();
        names.dedup();
        let position: HashMap<&str, u32> = names.iter().enumerate().map(|(i, name)| (*name, i as u32)).collect();
        let namespace_of: Vec<u32> = (0..n).map(|c| position[namespace(c)]).collect();
        let weigh = |members: &[usize]| {
            let mut per_class = vec![0u64; n];
            for &i in members {
                per_class[classes.class_of(i)] += 1;
            }
            let mut per_namespace = vec![0u64; names.len()];
            for (c, w) in per_class.iter().enumerate() {
                per_namespace[namespace_of[c] as usize] += w;
            }
            (per_class, per_namespace)
        };
        let (source_weights, sources) = weigh(&self.sources);
        let mut source_classes: Vec<usize> = (0..n).filter(|&c| source_weights[c] > 0).collect();
        source_classes.sort_by_key(|&c| namespace_of[c]);
        let ports = self
            .blocks
            .iter()
            .map(|block| {
                let (destination_weights, destinations) = weigh(&block.destinations);
                let present: FixedBitSet = (0..n).filter(|&c| destination_weights[c] > 0).collect();
                let rows = block.matrix.by_source();
                let (mut allowed, mut unknown) = (FixedBitSet::with_capacity(n), FixedBitSet::with_capacity(n));
                // Per destination namespace, for the source namespace at hand: allowed and
                // unknown pairs, and which namespaces have any.
                let mut row = vec![(0u64, 0u64); names.len()];
                let mut touched: Vec<u32> = Vec::new();
                let mut reached = Vec::new();
                for group in source_classes.chunk_by(|&a, &b| namespace_of[a] == namespace_of[b]) {
                    for &source in group {
                        rows.row(source, &mut allowed, &mut unknown);
                        allowed.intersect_with(&present);
                        unknown.intersect_with(&present);
                        let w = source_weights[source];
                        for (set, unknown) in [(&allowed, false), (&unknown, true)] {
                            for d in set.ones() {
                                let to = namespace_of[d];
                                let cell = &mut row[to as usize];
                                if *cell == (0, 0) {
                                    touched.push(to);
                                }
                                let count = if unknown { &mut cell.1 } else { &mut cell.0 };
                                *count += w * destination_weights[d];
                            }
                        }
                    }
                    touched.sort_unstable();
                    let from = namespace_of[group[0]];
                    for to in touched.drain(..) {
                        let (allowed, unknown) = std::mem::take(&mut row[to as usize]);
                        reached.push(Reached { from, to, allowed, unknown });
                    }
                }
                PortSummary { port: block.port, sources: sources.clone(), destinations, reached }
            })
            .collect();
        Summary { namespaces: names.into_iter().map(str::to_string).collect(), ports }
    }
}

/// Pair counts per port and namespace pair (see [`Analysis::summary`]).
#[derive(Clone, Debug)]
pub struct Summary {
    /// The namespaces of sources and destinations, sorted ([`EXTERNAL_NAMESPACE`] for
    /// addresses outside the cluster); namespace positions below are in this list.
    pub namespaces: Vec<String>,
    pub ports: Vec<PortSummary>,
}

/// The pair counts of one port.
#[derive(Clone, Debug)]
pub struct PortSummary {
    pub port: PortProto,
    /// Sources per namespace.
    pub sources: Vec<u64>,
    /// Destinations on this port per namespace.
    pub destinations: Vec<u64>,
    /// The namespace pairs with an allowed or unknown pair, by source then destination
    /// namespace; every other pair is denied.
    reached: Vec<Reached>,
}

#[derive(Clone, Debug)]
struct Reached {
    from: u32,
    to: u32,
    allowed: u64,
    unknown: u64,
}

impl PortSummary {
    /// The counts of a namespace pair whose allowed and unknown counts are known.
    fn counts(&self, from: usize, to: usize, allowed: u64, unknown: u64) -> Counts {
        let pairs = self.sources[from] * self.destinations[to];
        Counts { allowed, denied: pairs - allowed - unknown, unknown }
    }

    /// Every namespace pair with a source and a destination, as (source namespace,
    /// destination namespace, counts), by source then destination namespace.
    pub fn pairs(&self) -> impl Iterator<Item = (usize, usize, Counts)> + '_ {
        let mut reached = self.reached.iter().peekable();
        present(&self.sources).flat_map(|from| present(&self.destinations).map(move |to| (from, to))).map(
            move |(from, to)| {
                let hit = reached.next_if(|r| (r.from as usize, r.to as usize) == (from, to));
                let (allowed, unknown) = hit.map_or((0, 0), |r| (r.allowed, r.unknown));
                (from, to, self.counts(from, to, allowed, unknown))
            },
        )
    }

    /// The namespace pairs with an allowed or unknown pair (every other pair is denied),
    /// by source then destination namespace.
    pub fn reached(&self) -> impl Iterator<Item = (usize, usize, Counts)> + '_ {
        self.reached.iter().map(|r| {
            let (from, to) = (r.from as usize, r.to as usize);
            (from, to, self.counts(from, to, r.allowed, r.unknown))
        })
    }

    /// The counts over every pair of the port.
    pub fn total(&self) -> Counts {
        let pairs = self.sources.iter().sum::<u64>() * self.destinations.iter().sum::<u64>();
        let (allowed, unknown) = self.reached.iter().fold((0, 0), |(a, u), r| (a + r.allowed, u + r.unknown));
        Counts { allowed, denied: pairs - allowed - unknown, unknown }
    }
}

/// The positions of the namespaces with endpoints.
fn present(weights: &[u64]) -> impl Iterator<Item = usize> + '_ {
    weights.iter().enumerate().filter(|(_, w)| **w > 0).map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::Protocol;
    use crate::selector::Labels;

    fn port(text: &str) -> PortProto {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// Namespace `prod` with pods `api-1` (10.0.0.1), `api-2` and the Deployment `api`.
    fn cluster() -> Cluster {
        let mut cluster = Cluster::new();
        cluster.add_endpoint(Endpoint::pod("prod", "api-1", Labels::new()).with_ips([ip("10.0.0.1")]));
        cluster.add_endpoint(Endpoint::pod("prod", "api-2", Labels::new()));
        cluster.add_endpoint(Endpoint::workload("prod", "Deployment", "api", Labels::new()));
        cluster
    }

    fn ids(cluster: &Cluster, positions: &[usize]) -> Vec<String> {
        positions.iter().map(|&i| cluster.endpoints()[i].id.clone()).collect()
    }

    #[test]
    fn the_whole_cluster_without_external_addresses() {
        let mut c = cluster();
        let scope = Scope::with_external(&mut c, &[], &[], &[]);
        assert_eq!(ids(&c, &scope.sources), ["prod/api-1", "prod/api-2", "prod/deployment/api"]);
        assert_eq!(scope.destinations, scope.sources);
        assert_eq!(scope.ports, None);
    }

    #[test]
    fn external_destinations_listen_on_their_ports_and_are_destinations_once() {
        let mut c = cluster();
        let to = [(ip("1.1.1.1"), port("443/TCP")), (ip("2001:db8::1"), port("53/UDP")), (ip("1.1.1.1"), port("80"))];
        let scope = Scope::with_external(&mut c, &[port("8080")], &to, &[]);
        assert_eq!(
            ids(&c, &scope.destinations),
            ["prod/api-1", "prod/api-2", "prod/deployment/api", "1.1.1.1", "2001:db8::1"]
        );
        assert_eq!(ids(&c, &scope.sources), ["prod/api-1", "prod/api-2", "prod/deployment/api"], "not sources");
        let listens: Vec<PortProto> =
            c.endpoint("1.1.1.1").unwrap().ports.iter().map(|p| PortProto::new(p.port, p.protocol)).collect();
        assert_eq!(listens, [port("443/TCP"), port("80/TCP")]);
        assert_eq!(c.endpoint("2001:db8::1").unwrap().ports[0].protocol, Protocol::Udp);
        assert_eq!(scope.ports, Some(vec![port("8080")]));
    }

    #[test]
    fn external_sources_send_only() {
        let mut c = cluster();
        let from = [ip("203.0.113.7"), ip("203.0.113.7")];
        let scope = Scope::with_external(&mut c, &[], &[], &from);
        assert_eq!(ids(&c, &scope.sources), ["prod/api-1", "prod/api-2", "prod/deployment/api", "203.0.113.7"]);
        assert_eq!(ids(&c, &scope.destinations), ["prod/api-1", "prod/api-2", "prod/deployment/api"]);
    }

    #[test]
    fn an_address_both_sends_and_receives() {
        let mut c = cluster();
        let scope = Scope::with_external(&mut c, &[], &[(ip("1.1.1.1"), port("443"))], &[ip("1.1.1.1")]);
        assert_eq!(c.endpoints().len(), 4, "one endpoint for the address");
        assert_eq!(ids(&c, &scope.sources).last().unwrap(), "1.1.1.1");
        assert_eq!(ids(&c, &scope.destinations).last().unwrap(), "1.1.1.1");
    }

    #[test]
    fn resolves_ids_short_names_and_addresses() {
        let mut c = cluster();
        let mut name_of = |name: &str| resolve(&mut c, name).map(|i| c.endpoints()[i].id.clone());
        assert_eq!(name_of("prod/api-2").unwrap(), "prod/api-2");
        assert_eq!(name_of("prod/deployment/api").unwrap(), "prod/deployment/api");
        assert_eq!(name_of("prod/api").unwrap(), "prod/deployment/api", "ns/name of a workload");
        assert_eq!(name_of("10.0.0.1").unwrap(), "prod/api-1", "a pod's address");
        assert_eq!(name_of("1.1.1.1").unwrap(), "1.1.1.1", "an address outside the cluster");
        assert!(c.endpoint("1.1.1.1").unwrap().is_external());
    }

    #[test]
    fn names_that_resolve_to_nothing_or_to_several() {
        let mut c = cluster();
        c.add_endpoint(Endpoint::workload("prod", "StatefulSet", "api", Labels::new()));
        let missing = resolve(&mut c, "prod/web").unwrap_err();
        assert_eq!(
            missing.to_string(),
            "no pod, workload or address \"prod/web\" in the input (names look like ns/pod or ns/kind/workload)"
        );
        assert_eq!(resolve(&mut c, "web").unwrap_err(), ResolveError::NotFound("web".into()));
        let ambiguous = resolve(&mut c, "prod/api").unwrap_err();
        assert_eq!(ambiguous.to_string(), "\"prod/api\" is ambiguous: prod/deployment/api, prod/statefulset/api");
    }
}
