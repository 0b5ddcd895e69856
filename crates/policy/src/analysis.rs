//! An analysis: which endpoints send, which receive on which ports, and the verdict
//! matrices for each port. This is what `analyze` renders and what a planner reads.

use std::collections::{BTreeMap, BTreeSet};

use crate::evaluate;
use crate::matrix::{Matrix, PolicyIndex};
use crate::model::Cluster;
use crate::port::PortProto;
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
}

/// The verdicts for one destination port.
#[derive(Debug)]
pub struct Block {
    pub port: PortProto,
    /// The destinations (endpoint positions) this port is analysed for.
    pub destinations: Vec<usize>,
    pub matrix: Matrix,
}

/// Allowed and denied counts of endpoint pairs for one port and namespace pair.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub allowed: u64,
    pub denied: u64,
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
    /// pair and weighted by class sizes, so that it costs classes², not pods².
    pub fn summary(&self) -> BTreeMap<(PortProto, String, String), Counts> {
        let endpoints = self.cluster().endpoints();
        let classes = self.index.classes();
        let mut names: Vec<String> = Vec::new();
        let mut name_index: BTreeMap<String, usize> = BTreeMap::new();
        let mut namespace_of = |i: usize| {
            let name = endpoints[i].namespace.clone().unwrap_or_else(|| EXTERNAL_NAMESPACE.to_string());
            *name_index.entry(name.clone()).or_insert_with(|| {
                names.push(name);
                names.len() - 1
            })
        };
        // (class, namespace index, number of endpoints) for the sources and each block.
        let mut weigh = |members: &[usize]| {
            let mut weights: BTreeMap<(usize, usize), u64> = BTreeMap::new();
            for &i in members {
                *weights.entry((classes.class_of(i), namespace_of(i))).or_default() += 1;
            }
            weights.into_iter().map(|((c, ns), w)| (c, ns, w)).collect::<Vec<_>>()
        };
        let sources = weigh(&self.sources);
        let destinations: Vec<_> = self.blocks.iter().map(|b| weigh(&b.destinations)).collect();
        let width = names.len();
        let mut out = BTreeMap::new();
        for (block, destinations) in self.blocks.iter().zip(destinations) {
            let mut grid = vec![Counts::default(); width * width];
            for &(sc, sns, sw) in &sources {
                for &(dc, dns, dw) in &destinations {
                    let counts = &mut grid[sns * width + dns];
                    if block.matrix.allowed(sc, dc) {
                        counts.allowed += sw * dw;
                    } else {
                        counts.denied += sw * dw;
                    }
                }
            }
            for (cell, counts) in grid.into_iter().enumerate() {
                if counts != Counts::default() {
                    out.insert((block.port, names[cell / width].clone(), names[cell % width].clone()), counts);
                }
            }
        }
        out
    }
}
