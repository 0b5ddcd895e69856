//! The upstream Kubernetes network-policy e2e scenarios (`tests/scenarios/upstream`, one
//! file per upstream `It()` block), replayed against the engine: both the explained
//! evaluation and the bulk matrix must give upstream's expected truth table for every
//! ordered pod pair. Self pairs are computed but, as upstream, not judged against its
//! tables; they are checked to be flagged implementation-defined instead.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use k8s_openapi::api::networking::v1::NetworkPolicy;
use netcanary_objects::convert::{self, Problems};
use netcanary_policy::evaluate;
use netcanary_policy::{Cluster, ContainerPort, DirectionVerdict, Endpoint, Labels, PolicyIndex, PortProto, Protocol};
use serde::Deserialize;

const NAMESPACES: [&str; 3] = ["x", "y", "z"];
const PODS: [&str; 3] = ["a", "b", "c"];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Scenario {
    name: String,
    upstream: String,
    #[serde(default)]
    upstream_context: Option<String>,
    #[serde(default)]
    ip_family: Option<String>,
    steps: Vec<Step>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Step {
    #[serde(default)]
    namespace_labels: BTreeMap<String, Labels>,
    #[serde(default)]
    pod_labels: BTreeMap<String, Labels>,
    #[serde(default)]
    policies: Vec<serde_json::Value>,
    #[serde(default)]
    delete_policies: Vec<String>,
    #[serde(default)]
    probes: Vec<Probe>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Probe {
    port: u16,
    protocol: Protocol,
    reachability: Reachability,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reachability {
    default: bool,
    #[serde(default)]
    expect: Vec<Expectation>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
enum Expectation {
    Pair { from: String, to: String, allowed: bool },
    AllIngress { pod: String, allowed: bool },
    AllEgress { pod: String, allowed: bool },
    Peer { from: PeerPattern, to: PeerPattern, allowed: bool },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PeerPattern {
    namespace: Option<String>,
    pod: Option<String>,
}

impl PeerPattern {
    fn matches(&self, pod: &str) -> bool {
        let (ns, name) = pod.split_once('/').expect("pod ids are ns/name");
        self.namespace.as_deref().is_none_or(|n| n == ns) && self.pod.as_deref().is_none_or(|p| p == name)
    }
}

fn pod_ids() -> Vec<String> {
    NAMESPACES.iter().flat_map(|ns| PODS.iter().map(move |p| format!("{ns}/{p}"))).collect()
}

/// Upstream's model: pods a, b, c in namespaces x, y, z, each serving 80 and 81 over TCP,
/// UDP and SCTP on ports named `serve-<port>-<protocol>`.
fn base_cluster(ipv6: bool) -> Cluster {
    let mut cluster = Cluster::new();
    for (i, ns) in NAMESPACES.iter().enumerate() {
        cluster.set_namespace(ns, Labels::from([("ns".to_string(), ns.to_string())]));
        for (j, pod) in PODS.iter().enumerate() {
            let ip: IpAddr =
                if ipv6 { format!("fd00::{i}:{}", 10 + j) } else { format!("10.0.{i}.{}", 10 + j) }.parse().unwrap();
            let ports = [80, 81].into_iter().flat_map(|port| {
                Protocol::ALL.into_iter().map(move |protocol| ContainerPort {
                    name: Some(format!("serve-{port}-{}", protocol.as_str().to_ascii_lowercase())),
                    port,
                    protocol,
                })
            });
            let labels = Labels::from([("pod".to_string(), pod.to_string())]);
            cluster.add_endpoint(Endpoint::pod(ns, pod, labels).with_ips([ip]).with_ports(ports));
        }
    }
    cluster
}

fn expected_table(reachability: &Reachability, pods: &[String]) -> BTreeMap<(String, String), bool> {
    let mut table: BTreeMap<(String, String), bool> =
        pods.iter().flat_map(|f| pods.iter().map(move |t| ((f.clone(), t.clone()), reachability.default))).collect();
    for op in &reachability.expect {
        for ((from, to), cell) in table.iter_mut() {
            let hit = match op {
                Expectation::Pair { from: f, to: t, .. } => f == from && t == to,
                Expectation::AllIngress { pod, .. } => pod == to,
                Expectation::AllEgress { pod, .. } => pod == from,
                Expectation::Peer { from: f, to: t, .. } => f.matches(from) && t.matches(to),
            };
            if hit {
                *cell = match op {
                    Expectation::Pair { allowed, .. }
                    | Expectation::AllIngress { allowed, .. }
                    | Expectation::AllEgress { allowed, .. }
                    | Expectation::Peer { allowed, .. } => *allowed,
                };
            }
        }
    }
    table
}

/// Upstream's truth-table layout: sources down, destinations across, `.` allowed, `X` denied.
fn render(pods: &[String], cell: impl Fn(&str, &str) -> bool) -> String {
    let mut out = format!("{:>5}", "");
    for to in pods {
        out.push_str(&format!(" {to}"));
    }
    out.push('\n');
    for from in pods {
        out.push_str(&format!("{from:>5}"));
        for to in pods {
            let mark = if from == to {
                "~"
            } else if cell(from, to) {
                "."
            } else {
                "X"
            };
            out.push_str(&format!("   {mark}"));
        }
        out.push('\n');
    }
    out
}

fn apply_step(cluster: &mut Cluster, step: &Step, file: &str) {
    for (ns, labels) in &step.namespace_labels {
        cluster.set_namespace(ns, labels.clone());
    }
    for (pod, labels) in &step.pod_labels {
        cluster.endpoint_mut(pod).unwrap_or_else(|| panic!("{file}: unknown pod {pod}")).labels = labels.clone();
    }
    for value in &step.policies {
        let np: NetworkPolicy = serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{file}: {e}"));
        let mut problems = Problems::default();
        let policy = convert::policy(&np, "default", &mut problems);
        assert!(!problems.has_errors(), "{file}: policy rejected: {:?}", problems.list);
        cluster.add_policy(policy.expect("no errors means a policy"));
    }
    for id in &step.delete_policies {
        let (ns, name) = id.split_once('/').expect("ns/name");
        assert!(cluster.remove_policy(ns, name), "{file}: no policy {id} to delete");
    }
}

/// Which rules allowed a direction and why the others did not, for a failure message.
fn evidence(direction: &DirectionVerdict) -> Vec<String> {
    let hits = direction.allowed_by.iter().map(|h| format!("{}: {}", h.rule, h.says));
    hits.chain(direction.misses.iter().map(|m| format!("{}: {}", m.rule, m.reason))).collect()
}

/// Checks one probe of one step; returns the failures in words.
fn check_probe(cluster: &Cluster, probe: &Probe, pods: &[String]) -> Vec<String> {
    let port = PortProto::new(probe.port, probe.protocol);
    let expected = expected_table(&probe.reachability, pods);
    let index = PolicyIndex::new(cluster);
    let matrix = index.matrix(port);
    let position = |id: &str| cluster.endpoints().iter().position(|e| e.id == id).unwrap();
    let explained = |from: &str, to: &str| {
        evaluate::verdict(cluster, &cluster.endpoints()[position(from)], &cluster.endpoints()[position(to)], port)
    };
    let bulk = |from: &str, to: &str| {
        let classes = index.classes();
        matrix.allowed(classes.class_of(position(from)), classes.class_of(position(to)))
    };
    let mut failures = Vec::new();
    for ((from, to), want) in &expected {
        let verdict = explained(from, to);
        if verdict.allowed != bulk(from, to) {
            failures
                .push(format!("{from} -> {to} {port}: explained path says {}, bulk matrix disagrees", verdict.allowed));
        }
        if from == to {
            if !verdict.self_pair {
                failures.push(format!("{from} -> {to}: a self pair must be flagged implementation-defined"));
            }
            continue;
        }
        if verdict.allowed != *want {
            failures.push(format!(
                "{from} -> {to} {port}: upstream expects {}, engine says {} (egress: {:?}; ingress: {:?})",
                if *want { "allowed" } else { "denied" },
                if verdict.allowed { "allowed" } else { "denied" },
                evidence(&verdict.egress),
                evidence(&verdict.ingress),
            ));
        }
    }
    if !failures.is_empty() {
        failures
            .push(format!("expected ({port}):\n{}", render(pods, |f, t| expected[&(f.to_string(), t.to_string())])));
        failures.push(format!("engine ({port}):\n{}", render(pods, |f, t| explained(f, t).allowed)));
    }
    failures
}

fn scenario_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios/upstream");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn upstream_scenarios_match_upstream_truth_tables() {
    let files = scenario_files();
    assert!(files.len() >= 30, "expected the upstream scenarios, found {}", files.len());
    let pods = pod_ids();
    let mut failed = Vec::new();
    let mut probes = 0;
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(file).unwrap();
        // Through JSON's data model: YAML libraries spell enum variants as tags.
        let value: serde_json::Value = serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let scenario: Scenario = serde_json::from_value(value).unwrap_or_else(|e| panic!("{name}: {e}"));
        let ipv6 = match scenario.ip_family.as_deref() {
            None | Some("IPv4") => false,
            Some("IPv6") => true,
            Some(other) => panic!("{name}: unknown ipFamily {other}"),
        };
        let mut cluster = base_cluster(ipv6);
        for (s, step) in scenario.steps.iter().enumerate() {
            apply_step(&mut cluster, step, &name);
            for probe in &step.probes {
                probes += 1;
                let failures = check_probe(&cluster, probe, &pods);
                if !failures.is_empty() {
                    let context = scenario.upstream_context.as_deref().unwrap_or("");
                    failed.push(format!(
                        "{name} ({}: {context} {:?}) step {s}:\n  {}",
                        scenario.name,
                        scenario.upstream,
                        failures.join("\n  ")
                    ));
                }
            }
        }
    }
    assert!(failed.is_empty(), "{} scenario checks failed:\n\n{}", failed.len(), failed.join("\n\n"));
    eprintln!("{} upstream scenarios, {probes} probed truth tables: all match", files.len());
}
