//! Conversion of Kubernetes objects into the engine's model, with the API server's
//! defaulting and validation. Problems are reported with the field path they concern, so
//! the caller can name file, object and field.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::{Container, Namespace, Pod, PodSpec, Probe};
use k8s_openapi::api::networking::v1::{IPBlock, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use netcanary_policy::model::{Endpoint, IpBlock, KubeletProbe, NamespaceScope, Peer, Policy, ProbeHandler, Rule};
use netcanary_policy::port::{ContainerPort, PortMatch, Protocol, RulePort, port_name_problem};
use netcanary_policy::selector::{Labels, Operator, Requirement, Selector, label_key_problem, label_value_problem};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Something skipped on purpose, worth knowing (an unknown kind, a finished pod).
    Note,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// A problem with one field of one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldProblem {
    pub severity: Severity,
    /// `spec.ingress[0].ports[1].port`; empty for the object as a whole.
    pub field: String,
    pub message: String,
}

/// Collects problems while walking an object.
#[derive(Debug, Default)]
pub struct Problems {
    pub list: Vec<FieldProblem>,
}

impl Problems {
    pub fn error(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Error, field.into(), message.into());
    }

    pub fn note(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Note, field.into(), message.into());
    }

    pub fn warn(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Warning, field.into(), message.into());
    }

    fn push(&mut self, severity: Severity, field: String, message: String) {
        self.list.push(FieldProblem { severity, field, message });
    }

    pub fn has_errors(&self) -> bool {
        self.list.iter().any(|p| p.severity == Severity::Error)
    }
}

/// Converts a NetworkPolicy, applying the API's defaults. `None` if it has errors (the
/// API server would have rejected it, so no cluster can be running it).
pub fn policy(np: &NetworkPolicy, default_namespace: &str, problems: &mut Problems) -> Option<Policy> {
    let name = np.metadata.name.clone().unwrap_or_default();
    if name.is_empty() {
        problems.error("metadata.name", "is required");
    }
    let namespace = np.metadata.namespace.clone().unwrap_or_else(|| default_namespace.to_string());
    let spec = np.spec.clone().unwrap_or_default();
    let pod_selector = selector(spec.pod_selector.as_ref(), "spec.podSelector", problems);

    let ingress_rules = spec.ingress.unwrap_or_default();
    let egress_rules = spec.egress.unwrap_or_default();
    // Upstream defaulting: Ingress always; Egress only when egress rules exist.
    let types = match spec.policy_types {
        Some(types) if !types.is_empty() => types,
        _ if egress_rules.is_empty() => vec!["Ingress".to_string()],
        _ => vec!["Ingress".to_string(), "Egress".to_string()],
    };
    for (i, t) in types.iter().enumerate() {
        if t != "Ingress" && t != "Egress" {
            problems.error(
                format!("spec.policyTypes[{i}]"),
                format!("unsupported value {t:?}: use \"Ingress\" or \"Egress\""),
            );
        }
    }
    if types.len() > 2 {
        problems.error("spec.policyTypes", "may list at most 2 types");
    }
    let has = |t: &str| types.iter().any(|x| x == t);
    if !has("Ingress") && !ingress_rules.is_empty() {
        problems.warn("spec.ingress", "is ignored: spec.policyTypes does not include Ingress");
    }
    if !has("Egress") && !egress_rules.is_empty() {
        problems.warn("spec.egress", "is ignored: spec.policyTypes does not include Egress");
    }

    let ingress: Vec<Rule> = ingress_rules
        .iter()
        .enumerate()
        .map(|(i, r)| rule(r.from.as_deref(), r.ports.as_deref(), &format!("spec.ingress[{i}]"), "from", problems))
        .collect();
    let egress: Vec<Rule> = egress_rules
        .iter()
        .enumerate()
        .map(|(i, r)| rule(r.to.as_deref(), r.ports.as_deref(), &format!("spec.egress[{i}]"), "to", problems))
        .collect();

    (!problems.has_errors()).then(|| Policy {
        namespace,
        name,
        pod_selector,
        ingress: has("Ingress").then_some(ingress),
        egress: has("Egress").then_some(egress),
    })
}

fn rule(
    peers: Option<&[NetworkPolicyPeer]>,
    ports: Option<&[NetworkPolicyPort]>,
    path: &str,
    peers_key: &str,
    problems: &mut Problems,
) -> Rule {
    Rule {
        peers: peers
            .unwrap_or_default()
            .iter()
            .enumerate()
            .filter_map(|(i, p)| peer(p, &format!("{path}.{peers_key}[{i}]"), problems))
            .collect(),
        ports: ports
            .unwrap_or_default()
            .iter()
            .enumerate()
            .filter_map(|(i, p)| rule_port(p, &format!("{path}.ports[{i}]"), problems))
            .collect(),
    }
}

fn peer(peer: &NetworkPolicyPeer, path: &str, problems: &mut Problems) -> Option<Peer> {
    let has_selector = peer.pod_selector.is_some() || peer.namespace_selector.is_some();
    match (&peer.ip_block, has_selector) {
        (Some(_), true) => {
            problems.error(
                path,
                "may not specify both ipBlock and podSelector/namespaceSelector: split them into two peers",
            );
            None
        }
        (Some(block), false) => ip_block(block, &format!("{path}.ipBlock"), problems).map(Peer::IpBlock),
        (None, false) => {
            problems.error(path, "must specify podSelector, namespaceSelector or ipBlock");
            None
        }
        (None, true) => Some(Peer::Pods {
            namespaces: match &peer.namespace_selector {
                None => NamespaceScope::Own,
                Some(s) => NamespaceScope::Selected(selector(Some(s), &format!("{path}.namespaceSelector"), problems)),
            },
            pods: selector(peer.pod_selector.as_ref(), &format!("{path}.podSelector"), problems),
        }),
    }
}

fn ip_block(block: &IPBlock, path: &str, problems: &mut Problems) -> Option<IpBlock> {
    let cidr = cidr(&block.cidr, &format!("{path}.cidr"), problems)?;
    let mut except = Vec::new();
    for (i, e) in block.except.as_deref().unwrap_or_default().iter().enumerate() {
        let field = format!("{path}.except[{i}]");
        let Some(net) = self::cidr(e, &field, problems) else { continue };
        // As upstream: an except must be a strict subset of the cidr.
        if !cidr.contains(&net.network()) || net.prefix_len() <= cidr.prefix_len() {
            problems.error(field, format!("{e:?} must be a strict subset of cidr {}", block.cidr));
            continue;
        }
        except.push(net);
    }
    Some(IpBlock { cidr, except })
}

/// Parses a CIDR as the API server does: host bits are accepted and masked off, with a
/// warning, because the apiserver stores such values and CNIs use the network.
fn cidr(value: &str, field: &str, problems: &mut Problems) -> Option<IpNet> {
    if value.is_empty() {
        problems.error(field, "is required");
        return None;
    }
    match value.parse::<IpNet>() {
        Ok(net) => {
            let masked = net.trunc();
            if masked != net {
                problems.warn(field, format!("{value:?} has host bits set; it means {masked}"));
            }
            Some(masked)
        }
        Err(_) => {
            let hint = if value.parse::<IpAddr>().is_ok() { " (add a prefix length, e.g. /32 or /128)" } else { "" };
            problems.error(field, format!("{value:?} is not a valid CIDR{hint}"));
            None
        }
    }
}

fn rule_port(port: &NetworkPolicyPort, path: &str, problems: &mut Problems) -> Option<RulePort> {
    let protocol = protocol(port.protocol.as_deref(), &format!("{path}.protocol"), problems)?;
    let matcher = match (&port.port, port.end_port) {
        (None, None) => PortMatch::Any,
        (None, Some(_)) => {
            problems.error(format!("{path}.endPort"), "may not be specified when port is not specified");
            return None;
        }
        (Some(IntOrString::String(name)), end) => {
            if end.is_some() {
                problems.error(format!("{path}.endPort"), "may not be specified when port is a named port");
                return None;
            }
            if let Some(problem) = port_name_problem(name) {
                problems.error(format!("{path}.port"), format!("named port {name:?} {problem}"));
                return None;
            }
            PortMatch::Named(name.clone())
        }
        (Some(IntOrString::Int(first)), end) => {
            let first = port_number(*first, &format!("{path}.port"), problems)?;
            let last = match end {
                None => first,
                Some(end) => {
                    let last = port_number(end, &format!("{path}.endPort"), problems)?;
                    if last < first {
                        problems.error(
                            format!("{path}.endPort"),
                            format!("{last} must be greater than or equal to port {first}"),
                        );
                        return None;
                    }
                    last
                }
            };
            PortMatch::Range { first, last }
        }
    };
    Some(RulePort { protocol, port: matcher })
}

fn port_number(value: i32, field: &str, problems: &mut Problems) -> Option<u16> {
    match u16::try_from(value) {
        Ok(p) if p != 0 => Some(p),
        _ => {
            problems.error(field, format!("{value} must be a port number from 1 to 65535"));
            None
        }
    }
}

fn protocol(value: Option<&str>, field: &str, problems: &mut Problems) -> Option<Protocol> {
    match value {
        None => Some(Protocol::Tcp),
        Some(v) => Protocol::parse(v).or_else(|| {
            problems.error(field, format!("unsupported protocol {v:?}: use \"TCP\", \"UDP\" or \"SCTP\""));
            None
        }),
    }
}

/// A label selector; `None` (absent) means everything, as for podSelector and peers.
/// Invalid requirements are reported and dropped.
pub fn selector(selector: Option<&LabelSelector>, path: &str, problems: &mut Problems) -> Selector {
    let Some(selector) = selector else { return Selector::everything() };
    let mut requirements = Vec::new();
    for (key, value) in selector.match_labels.iter().flatten() {
        let field = format!("{path}.matchLabels[{key:?}]");
        if let Some(p) = label_key_problem(key) {
            problems.error(&field, format!("key {key:?}: {p}"));
        } else if let Some(p) = label_value_problem(value) {
            problems.error(&field, format!("value {value:?}: {p}"));
        } else {
            requirements.push(Requirement {
                key: key.clone(),
                operator: Operator::In,
                values: BTreeSet::from([value.clone()]),
            });
        }
    }
    for (i, expr) in selector.match_expressions.iter().flatten().enumerate() {
        let field = format!("{path}.matchExpressions[{i}]");
        let values: BTreeSet<String> = expr.values.iter().flatten().cloned().collect();
        let Some(operator) = Operator::parse(&expr.operator) else {
            problems.error(
                format!("{field}.operator"),
                format!("unknown operator {:?}: use In, NotIn, Exists or DoesNotExist", expr.operator),
            );
            continue;
        };
        if let Some(p) = label_key_problem(&expr.key) {
            problems.error(format!("{field}.key"), format!("{:?}: {p}", expr.key));
            continue;
        }
        let needs_values = matches!(operator, Operator::In | Operator::NotIn);
        if needs_values && values.is_empty() {
            problems.error(format!("{field}.values"), format!("must be non-empty for operator {}", expr.operator));
            continue;
        }
        if !needs_values && !values.is_empty() {
            problems.error(format!("{field}.values"), format!("must be empty for operator {}", expr.operator));
            continue;
        }
        if let Some((v, p)) = values.iter().find_map(|v| label_value_problem(v).map(|p| (v, p))) {
            problems.error(format!("{field}.values"), format!("{v:?}: {p}"));
            continue;
        }
        requirements.push(Requirement { key: expr.key.clone(), operator, values });
    }
    Selector::new(requirements)
}

/// The containerPorts of a pod spec: regular containers plus restartable init containers
/// (sidecars), which serve traffic too.
pub fn container_ports(spec: &PodSpec, path: &str, problems: &mut Problems) -> Vec<ContainerPort> {
    let mut ports = Vec::new();
    for (container_path, container) in serving_containers(spec) {
        ports.extend(ports_of(container, &format!("{path}.{container_path}"), problems));
    }
    ports.sort();
    ports.dedup();
    ports
}

fn ports_of(container: &Container, path: &str, problems: &mut Problems) -> Vec<ContainerPort> {
    let mut out = Vec::new();
    for (i, p) in container.ports.iter().flatten().enumerate() {
        let field = format!("{path}.ports[{i}]");
        let Some(protocol) = protocol(p.protocol.as_deref(), &format!("{field}.protocol"), problems) else { continue };
        let Some(port) = port_number(p.container_port, &format!("{field}.containerPort"), problems) else { continue };
        if let Some(name) = &p.name
            && let Some(problem) = port_name_problem(name)
        {
            problems.error(format!("{field}.name"), format!("{name:?} {problem}"));
            continue;
        }
        out.push(ContainerPort { name: p.name.clone(), port, protocol });
    }
    out
}

/// The containers of a pod spec that serve: regular containers and restartable init
/// containers (sidecars), with their field paths relative to the spec.
fn serving_containers(spec: &PodSpec) -> impl Iterator<Item = (String, &Container)> {
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .enumerate()
        .filter(|(_, c)| c.restart_policy.as_deref() == Some("Always"))
        .map(|(i, c)| (format!("initContainers[{i}]"), c));
    spec.containers.iter().enumerate().map(|(i, c)| (format!("containers[{i}]"), c)).chain(sidecars)
}

/// The liveness, readiness and startup probes the kubelet sends to the pod's own IP over
/// TCP, HTTP or gRPC, from the node. Probes with another `host`, exec probes and named
/// ports no port of the container has are left out: they do not reach the pod from the
/// node, or cannot work at all.
pub fn kubelet_probes(spec: &PodSpec) -> Vec<KubeletProbe> {
    let mut out = Vec::new();
    for (path, container) in serving_containers(spec) {
        let probes = [
            ("livenessProbe", &container.liveness_probe),
            ("readinessProbe", &container.readiness_probe),
            ("startupProbe", &container.startup_probe),
        ];
        for (key, probe) in probes {
            let Some(probe) = probe else { continue };
            if let Some((handler, port)) = probe_target(probe, container) {
                out.push(KubeletProbe { field: format!("{path}.{key}"), handler, port });
            }
        }
    }
    out
}

fn probe_target(probe: &Probe, container: &Container) -> Option<(ProbeHandler, u16)> {
    let named = |name: &str| {
        container.ports.iter().flatten().find(|p| p.name.as_deref() == Some(name)).map(|p| p.container_port)
    };
    let number = |port: &IntOrString| match port {
        IntOrString::Int(n) => Some(*n),
        IntOrString::String(name) => named(name),
    };
    let on_pod = |host: &Option<String>| host.as_deref().is_none_or(str::is_empty);
    let (handler, port) = if let Some(http) = probe.http_get.as_ref().filter(|h| on_pod(&h.host)) {
        (ProbeHandler::Http, number(&http.port)?)
    } else if let Some(tcp) = probe.tcp_socket.as_ref().filter(|t| on_pod(&t.host)) {
        (ProbeHandler::Tcp, number(&tcp.port)?)
    } else {
        (ProbeHandler::Grpc, probe.grpc.as_ref()?.port)
    };
    Some((handler, u16::try_from(port).ok().filter(|&p| p != 0)?))
}

/// The annotations the model keeps: the ones that say whether Istio or Linkerd injects its
/// proxy into a pod (on the pod, or on its namespace for Linkerd). All others are dropped:
/// some are large (`kubectl.kubernetes.io/last-applied-configuration`).
pub const KEPT_ANNOTATIONS: [&str; 2] = ["sidecar.istio.io/inject", "linkerd.io/inject"];

/// The [`KEPT_ANNOTATIONS`] among `annotations`.
pub fn kept_annotations(annotations: Option<&std::collections::BTreeMap<String, String>>) -> Labels {
    annotations
        .into_iter()
        .flatten()
        .filter(|(key, _)| KEPT_ANNOTATIONS.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

/// Labels with invalid keys or values reported (they cannot exist on a real object).
pub fn labels(labels: Option<&Labels>, path: &str, problems: &mut Problems) -> Labels {
    let mut out = Labels::new();
    for (k, v) in labels.into_iter().flatten() {
        if let Some(p) = label_key_problem(k) {
            problems.error(format!("{path}[{k:?}]"), format!("key: {p}"));
        } else if let Some(p) = label_value_problem(v) {
            problems.error(format!("{path}[{k:?}]"), format!("value {v:?}: {p}"));
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// A namespace's name and labels; `None` without a name.
pub fn namespace(ns: &Namespace, problems: &mut Problems) -> Option<(String, Labels)> {
    let name = ns.metadata.name.clone().unwrap_or_default();
    if name.is_empty() {
        problems.error("metadata.name", "is required");
        return None;
    }
    Some((name, labels(ns.metadata.labels.as_ref(), "metadata.labels", problems)))
}

/// A running (or pending) pod as an endpoint. `None` for pods that policy no longer
/// applies to (Succeeded, Failed: their IPs may already belong to others) and for pods with
/// errors.
pub fn pod(pod: &Pod, default_namespace: &str, problems: &mut Problems) -> Option<Endpoint> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let namespace = pod.metadata.namespace.clone().unwrap_or_else(|| default_namespace.to_string());
    let status = pod.status.clone().unwrap_or_default();
    if let Some(phase @ ("Succeeded" | "Failed")) = status.phase.as_deref() {
        problems.note("status.phase", format!("skipped: the pod is {phase}, so no policy applies to it"));
        return None;
    }
    let spec = pod.spec.clone().unwrap_or_default();
    let labels = labels(pod.metadata.labels.as_ref(), "metadata.labels", problems);
    let ports = container_ports(&spec, "spec", problems);
    let mut ip_fields: Vec<(String, String)> = status
        .pod_ips
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, ip)| (format!("status.podIPs[{i}].ip"), ip.ip.clone()))
        .collect();
    if ip_fields.is_empty() {
        ip_fields.extend(status.pod_ip.map(|ip| ("status.podIP".to_string(), ip)));
    }
    let mut ips = Vec::new();
    for (field, text) in ip_fields {
        match text.parse::<IpAddr>() {
            Ok(ip) => ips.push(ip),
            Err(_) => problems.error(field, format!("{text:?} is not an IP address")),
        }
    }
    if problems.has_errors() {
        return None;
    }
    let mut endpoint = Endpoint::pod(&namespace, &name, labels).with_ips(ips).with_ports(ports);
    endpoint.host_network = spec.host_network.unwrap_or(false);
    endpoint.workload = owning_workload(pod);
    endpoint.kubelet_probes = kubelet_probes(&spec);
    endpoint.annotations = kept_annotations(pod.metadata.annotations.as_ref());
    Some(endpoint)
}

/// The workload that owns a pod, by its controller ownerReference: a ReplicaSet's name
/// without its pod-template-hash is its Deployment's.
fn owning_workload(pod: &Pod) -> Option<String> {
    let owner = pod.metadata.owner_references.as_ref()?.iter().find(|o| o.controller == Some(true))?;
    let hash = pod.metadata.labels.as_ref().and_then(|l| l.get("pod-template-hash"));
    match (owner.kind.as_str(), hash) {
        ("ReplicaSet", Some(hash)) => {
            Some(owner.name.strip_suffix(&format!("-{hash}")).unwrap_or(&owner.name).to_string())
        }
        _ => Some(owner.name.clone()),
    }
}
