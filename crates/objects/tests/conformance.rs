//! The network-policy-api conformance suite (`tests/scenarios/network-policy-api`: its
//! `conformance/base` manifests verbatim, and one file per upstream `ConformanceTest` with
//! each `t.Run` step, the changes it makes to the objects and every connection it pokes,
//! with the expectation upstream states), replayed against the engine: every poke is
//! checked on the explained evaluation and on the bulk matrix. Steps build on each other
//! as upstream's do (a patched policy stays patched).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use netcanary_objects::{Loader, Severity};
use netcanary_policy::evaluate;
use netcanary_policy::model::Node;
use netcanary_policy::{Cluster, Endpoint, Labels, PolicyIndex, PortProto, Protocol};
use serde::Deserialize;
use serde_json::Value;

/// Upstream's default host-network port range (conformance/utils/suite/suite.go): 8 ports
/// from 34345.
const HOST_NETWORK_PORT_START: u16 = 34345;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    name: String,
    manifests: Vec<String>,
    #[allow(dead_code)]
    features: Vec<String>,
    steps: Vec<Step>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    upstream: String,
    changes: Vec<Change>,
    probes: Vec<Poke>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
enum Change {
    SwapRules { policy: String, direction: String, a: usize, b: usize },
    SetPriority { policy: String, priority: u32 },
    SetAction { policy: String, direction: String, index: usize, action: String },
    SetProtocols { policy: String, direction: String, index: usize, protocols: Value },
    InsertRule { policy: String, direction: String, index: usize, rule: Value },
    SetNamespaceLabels { namespace: String, labels: Labels },
    DeletePolicy { kind: String, namespace: Option<String>, name: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Poke {
    from: String,
    to: String,
    protocol: Protocol,
    /// A number, or `hostNetworkPorts[i]`.
    port: Value,
    allowed: bool,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios/network-policy-api")
}

/// The manifests with upstream's template filled in as its suite does by default.
fn template(text: &str) -> String {
    let mut out = text.to_string();
    for i in 0..8 {
        out =
            out.replace(&format!("{{{{ index .HostNetworkPorts {i} }}}}"), &(HOST_NETWORK_PORT_START + i).to_string());
    }
    out
}

fn documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .filter_map(|d| Option::<Value>::deserialize(d).expect("upstream manifests are YAML"))
        .collect()
}

/// `network-policy-conformance-<house>`, the way the data names namespaces.
fn namespace(house: &str) -> String {
    format!("network-policy-conformance-{house}")
}

/// The pods the base StatefulSets run (2 replicas each), addressed per namespace; the
/// host-network `centaur` pods take the addresses of two Nodes labelled
/// `kubernetes.io/os: linux`.
fn cluster_of(objects: &[Value]) -> Cluster {
    let text: String = objects.iter().map(|o| format!("---\n{}\n", serde_json::to_string(o).unwrap())).collect();
    let mut loader = Loader::new("default");
    loader.load_str("conformance", &text);
    let loaded = loader.finish();
    let errors: Vec<_> = loaded.diagnostics.iter().filter(|d| d.severity == Severity::Error).collect();
    assert!(errors.is_empty(), "upstream objects rejected: {errors:?}");
    let workloads = loaded.cluster;
    let mut cluster = Cluster::new();
    for (name, labels) in workloads.namespaces() {
        cluster.set_namespace(name, labels.clone());
    }
    let nodes: Vec<IpAddr> = ["172.18.0.2", "172.18.0.3"].iter().map(|a| a.parse().unwrap()).collect();
    for (i, address) in nodes.iter().enumerate() {
        cluster.add_node(Node {
            name: format!("node-{i}"),
            labels: Labels::from([("kubernetes.io/os".to_string(), "linux".to_string())]),
            addresses: vec![*address],
        });
    }
    for (n, workload) in workloads.endpoints().iter().enumerate() {
        let host_network = host_network(objects, workload.workload_name());
        for replica in 0..2u8 {
            let ns = workload.namespace.as_deref().unwrap();
            let mut pod =
                Endpoint::pod(ns, &format!("{}-{replica}", workload.workload_name()), workload.labels.clone())
                    .with_ports(workload.ports.clone());
            let ip = if host_network {
                nodes[usize::from(replica)]
            } else {
                format!("10.{n}.0.{}", 10 + replica).parse().unwrap()
            };
            pod = pod.with_ips([ip]);
            pod.host_network = host_network;
            cluster.add_endpoint(pod);
        }
    }
    for policy in workloads.policies() {
        cluster.add_policy(policy.clone());
    }
    for policy in workloads.cluster_policies() {
        cluster.add_cluster_policy(policy.clone());
    }
    cluster
}

fn host_network(objects: &[Value], workload: &str) -> bool {
    objects.iter().any(|o| {
        o.pointer("/metadata/name").and_then(Value::as_str) == Some(workload)
            && o.pointer("/spec/template/spec/hostNetwork").and_then(Value::as_bool) == Some(true)
    })
}

fn find<'v>(objects: &'v mut [Value], kind: &str, name: &str) -> &'v mut Value {
    objects
        .iter_mut()
        .find(|o| o["kind"] == kind && o.pointer("/metadata/name").and_then(Value::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn rules<'v>(objects: &'v mut [Value], policy: &str, direction: &str) -> &'v mut Vec<Value> {
    find(objects, "ClusterNetworkPolicy", policy)["spec"][direction].as_array_mut().expect("rules")
}

fn apply(objects: &mut Vec<Value>, change: &Change, base: &Cluster) {
    match change {
        Change::SwapRules { policy, direction, a, b } => rules(objects, policy, direction).swap(*a, *b),
        Change::SetPriority { policy, priority } => {
            find(objects, "ClusterNetworkPolicy", policy)["spec"]["priority"] = Value::from(*priority)
        }
        Change::SetAction { policy, direction, index, action } => {
            rules(objects, policy, direction)[*index]["action"] = Value::from(action.as_str())
        }
        Change::SetProtocols { policy, direction, index, protocols } => {
            rules(objects, policy, direction)[*index]["protocols"] = protocols.clone()
        }
        Change::InsertRule { policy, direction, index, rule } => {
            // `ip(house/pod)` is that pod's IP with a host mask, as upstream builds it.
            let text = serde_json::to_string(rule).unwrap();
            let mut filled = text.clone();
            while let Some(start) = filled.find("ip(") {
                let end = start + filled[start..].find(')').unwrap();
                let (house, pod) = filled[start + 3..end].split_once('/').unwrap();
                let ip = base.endpoint(&format!("{}/{pod}", namespace(house))).unwrap().ips[0];
                let mask = if ip.is_ipv4() { 32 } else { 128 };
                filled.replace_range(start..=end, &format!("{ip}/{mask}"));
            }
            rules(objects, policy, direction).insert(*index, serde_json::from_str(&filled).unwrap());
        }
        Change::SetNamespaceLabels { namespace: house, labels } => {
            find(objects, "Namespace", &namespace(house))["metadata"]["labels"] = serde_json::to_value(labels).unwrap()
        }
        Change::DeletePolicy { kind, namespace, name } => {
            let before = objects.len();
            objects.retain(|o| {
                !(o["kind"] == kind.as_str()
                    && o.pointer("/metadata/name").and_then(Value::as_str) == Some(name)
                    && o.pointer("/metadata/namespace").and_then(Value::as_str) == namespace.as_deref())
            });
            assert_eq!(objects.len() + 1, before, "deleted {kind} {name}");
        }
    }
}

fn port_of(poke: &Poke) -> u16 {
    match &poke.port {
        Value::Number(n) => n.as_u64().unwrap() as u16,
        Value::String(s) => {
            let i: u16 = s.trim_start_matches("hostNetworkPorts[").trim_end_matches(']').parse().unwrap();
            HOST_NETWORK_PORT_START + i
        }
        other => panic!("port {other}"),
    }
}

/// Replays one scenario; returns the failures in words.
fn replay(path: &Path) -> (usize, Vec<String>) {
    let value: Value = serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let scenario: Scenario = serde_json::from_value(value).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut objects = documents(&template(&std::fs::read_to_string(root().join("base/manifests.yaml")).unwrap()));
    for manifest in &scenario.manifests {
        objects.extend(documents(&template(&std::fs::read_to_string(root().join("base").join(manifest)).unwrap())));
    }
    let mut failures = Vec::new();
    let mut pokes = 0;
    for step in &scenario.steps {
        let before = cluster_of(&objects);
        for change in &step.changes {
            apply(&mut objects, change, &before);
        }
        let cluster = cluster_of(&objects);
        for poke in &step.probes {
            pokes += 1;
            let port = PortProto::new(port_of(poke), poke.protocol);
            let position = |house_pod: &str| {
                let (house, pod) = house_pod.split_once('/').unwrap();
                let id = format!("{}/{pod}", namespace(house));
                cluster.endpoints().iter().position(|e| e.id == id).unwrap_or_else(|| panic!("no pod {id}"))
            };
            let (f, t) = (position(&poke.from), position(&poke.to));
            let verdict = evaluate::verdict(&cluster, &cluster.endpoints()[f], &cluster.endpoints()[t], port);
            let index = PolicyIndex::new(&cluster);
            let matrix = index.matrix(port);
            let (cf, ct) = (index.classes().class_of(f), index.classes().class_of(t));
            let bulk = matrix.allowed(cf, ct);
            if verdict.allowed != poke.allowed
                || bulk != poke.allowed
                || verdict.unknown().is_some()
                || matrix.unknown(cf, ct)
            {
                failures.push(format!(
                    "{} step {:?}: {} -> {} on {port}: upstream expects {}, explained {} ({} / {}), bulk {}",
                    scenario.name,
                    step.upstream,
                    poke.from,
                    poke.to,
                    if poke.allowed { "allowed" } else { "denied" },
                    verdict.allowed,
                    verdict.egress.decision.rule.as_deref().unwrap_or(verdict.egress.tier.as_str()),
                    verdict.ingress.decision.rule.as_deref().unwrap_or(verdict.ingress.tier.as_str()),
                    bulk,
                ));
            }
        }
    }
    (pokes, failures)
}

#[test]
fn network_policy_api_conformance_suite() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("tests"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 24, "one file per upstream ConformanceTest");
    let mut pokes = 0;
    let mut failures = Vec::new();
    for file in &files {
        let (n, f) = replay(file);
        pokes += n;
        failures.extend(f);
    }
    assert_eq!(pokes, 301, "every poke upstream makes");
    assert!(failures.is_empty(), "{} of {pokes} pokes disagree:\n{}", failures.len(), failures.join("\n"));
}
