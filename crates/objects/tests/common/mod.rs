//! Builders shared by the engine's tests: clusters from YAML, and a verdict lookup that
//! insists the explained path and the bulk matrix agree.

#![allow(dead_code)] // each test binary uses its own subset

use netcanary_objects::{Loaded, Loader};
use netcanary_policy::evaluate;
use netcanary_policy::{Cluster, PolicyIndex, PortProto, Verdict};

pub fn load(yaml: &str) -> Loaded {
    let mut loader = Loader::new("default");
    loader.load_str("test.yaml", yaml);
    loader.finish()
}

/// Loads YAML that must be free of errors.
pub fn cluster(yaml: &str) -> Cluster {
    let loaded = load(yaml);
    assert!(!loaded.has_errors(), "unexpected errors: {:#?}", loaded.diagnostics);
    loaded.cluster
}

/// The explained verdict, after checking that the bulk matrix gives the same answer.
pub fn verdict(cluster: &Cluster, from: &str, to: &str, port: &str) -> Verdict {
    let port: PortProto = port.parse().unwrap();
    let position =
        |id: &str| cluster.endpoints().iter().position(|e| e.id == id).unwrap_or_else(|| panic!("no endpoint {id}"));
    let (f, t) = (position(from), position(to));
    let explained = evaluate::verdict(cluster, &cluster.endpoints()[f], &cluster.endpoints()[t], port);
    let index = PolicyIndex::new(cluster);
    let matrix = index.matrix(port);
    let (cf, ct) = (index.classes().class_of(f), index.classes().class_of(t));
    assert_eq!(
        matrix.egress_allows(cf, ct),
        explained.egress.allowed,
        "egress {from} -> {to} {port}: bulk vs explained"
    );
    assert_eq!(
        matrix.ingress_allows(cf, ct),
        explained.ingress.allowed,
        "ingress {from} -> {to} {port}: bulk vs explained"
    );
    explained
}

pub fn allowed(cluster: &Cluster, from: &str, to: &str, port: &str) -> bool {
    verdict(cluster, from, to, port).allowed
}

/// A pod manifest: `pod("prod", "api", "app: api", "10.0.0.1", "- {containerPort: 80, name: http}")`.
pub fn pod(ns: &str, name: &str, labels: &str, ip: &str, ports: &str) -> String {
    let ip_line = if ip.is_empty() { String::new() } else { format!("status: {{podIP: \"{ip}\"}}\n") };
    let ports = if ports.is_empty() { "[]".to_string() } else { format!("\n{}", indent(ports, 8)) };
    format!(
        "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels: {{{labels}}}\nspec:\n  containers:\n    - name: main\n      image: x\n      ports: {ports}\n{ip_line}"
    )
}

fn indent(text: &str, by: usize) -> String {
    text.lines().map(|l| format!("{}{l}", " ".repeat(by))).collect::<Vec<_>>().join("\n")
}
