//! The cluster as the engine sees it: small comparable structs holding only what policy
//! evaluation needs, converted from Kubernetes objects at the edge (see [`crate::convert`]).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::cluster_policy::ClusterPolicy;
use crate::port::{ContainerPort, RulePort};
use crate::selector::{Labels, NAMESPACE_NAME_LABEL, Selector};

/// Which way traffic crosses a pod's boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an endpoint stands for: a real pod, the pods of a workload not yet running, or an
/// address outside the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EndpointKind {
    Pod,
    /// A Deployment, StatefulSet, ... standing for its pods: labels and ports of the
    /// template, no IP.
    Workload(String),
    External,
}

/// A pod, a workload's pod, or an external address: anything that can send or receive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `ns/name` for pods, `ns/kind/name` for workloads, the address for external endpoints.
    pub id: String,
    pub kind: EndpointKind,
    /// `None` only for external endpoints.
    pub namespace: Option<String>,
    pub labels: Labels,
    /// The first is the pod's primary IP (`status.podIP`).
    pub ips: Vec<IpAddr>,
    pub ports: Vec<ContainerPort>,
    /// Host-network pods share the node's network and are not governed by pod policy.
    pub host_network: bool,
    /// The workload a pod belongs to (its Deployment, StatefulSet, ...), for reports and
    /// metric labels, which must never carry pod names.
    pub workload: Option<String>,
    /// The kubelet's probes that connect to the pod over the network: they come from the
    /// node, which a policy isolating the pod may not admit. Not used by evaluation.
    pub kubelet_probes: Vec<KubeletProbe>,
    /// The few annotations that say whether a service mesh injects its proxy (see
    /// `netcanary_objects::convert::KEPT_ANNOTATIONS`); not used by evaluation.
    pub annotations: Labels,
}

/// How a kubelet probe connects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProbeHandler {
    Tcp,
    Http,
    Grpc,
}

impl ProbeHandler {
    /// The field of a probe that holds this handler: `tcpSocket`, `httpGet`, `grpc`.
    pub fn field(self) -> &'static str {
        match self {
            ProbeHandler::Tcp => "tcpSocket",
            ProbeHandler::Http => "httpGet",
            ProbeHandler::Grpc => "grpc",
        }
    }
}

/// A liveness, readiness or startup probe that the kubelet sends to the pod's IP.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KubeletProbe {
    /// `containers[0].readinessProbe`, relative to the pod spec.
    pub field: String,
    pub handler: ProbeHandler,
    /// The port, named ports resolved against the container's ports (always TCP).
    pub port: u16,
}

impl Endpoint {
    pub fn pod(namespace: &str, name: &str, labels: Labels) -> Self {
        Self {
            id: format!("{namespace}/{name}"),
            kind: EndpointKind::Pod,
            namespace: Some(namespace.to_string()),
            labels,
            ips: Vec::new(),
            ports: Vec::new(),
            host_network: false,
            workload: None,
            kubelet_probes: Vec::new(),
            annotations: Labels::new(),
        }
    }

    pub fn workload(namespace: &str, kind: &str, name: &str, labels: Labels) -> Self {
        Self {
            id: format!("{namespace}/{}/{name}", kind.to_ascii_lowercase()),
            kind: EndpointKind::Workload(kind.to_string()),
            workload: Some(name.to_string()),
            ..Self::pod(namespace, name, labels)
        }
    }

    pub fn external(ip: IpAddr) -> Self {
        Self {
            id: ip.to_string(),
            kind: EndpointKind::External,
            namespace: None,
            labels: Labels::new(),
            ips: vec![ip],
            ports: Vec::new(),
            host_network: false,
            workload: None,
            kubelet_probes: Vec::new(),
            annotations: Labels::new(),
        }
    }

    pub fn with_ips(mut self, ips: impl IntoIterator<Item = IpAddr>) -> Self {
        self.ips = ips.into_iter().collect();
        self
    }

    pub fn with_ports(mut self, ports: impl IntoIterator<Item = ContainerPort>) -> Self {
        self.ports = ports.into_iter().collect();
        self
    }

    pub fn is_external(&self) -> bool {
        self.kind == EndpointKind::External
    }

    /// Whether pod policy applies to this endpoint at all (in either direction).
    pub fn governed(&self) -> Governance {
        if self.is_external() {
            Governance::External
        } else if self.host_network {
            Governance::HostNetwork
        } else {
            Governance::Governed
        }
    }

    /// The address this endpoint uses on a connection of the given family: its IP of that
    /// family, else its primary IP. `None` for workloads, which have no IP yet.
    pub fn address_for(&self, family: Option<IpFamily>) -> Option<IpAddr> {
        family
            .and_then(|f| self.ips.iter().copied().find(|ip| IpFamily::of(*ip) == f))
            .or_else(|| self.ips.first().copied())
    }

    /// The name reports use for what this endpoint belongs to: its workload, else its own
    /// name (a bare pod, an address).
    pub fn workload_name(&self) -> &str {
        self.workload.as_deref().unwrap_or_else(|| self.id.rsplit('/').next().unwrap_or(&self.id))
    }

    pub fn primary_family(&self) -> Option<IpFamily> {
        self.ips.first().copied().map(IpFamily::of)
    }
}

/// Whether pod policy governs an endpoint, and if not, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Governance {
    Governed,
    HostNetwork,
    External,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpFamily {
    V4,
    V6,
}

impl IpFamily {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => IpFamily::V4,
            IpAddr::V6(_) => IpFamily::V6,
        }
    }
}

/// An `ipBlock` peer: `cidr` minus every `except`, all masked to their networks.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpBlock {
    pub cidr: IpNet,
    pub except: Vec<IpNet>,
}

impl IpBlock {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.cidr.contains(&ip) && !self.except.iter().any(|e| e.contains(&ip))
    }
}

impl fmt::Display for IpBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.cidr)?;
        if !self.except.is_empty() {
            let except: Vec<String> = self.except.iter().map(ToString::to_string).collect();
            write!(f, " except {}", except.join(", "))?;
        }
        Ok(())
    }
}

/// Which namespaces a pod peer looks in.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NamespaceScope {
    /// No `namespaceSelector`: the policy's own namespace.
    Own,
    Selected(Selector),
}

/// One element of a rule's `from` or `to` list.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Peer {
    /// `podSelector` and/or `namespaceSelector` (both given means both must match).
    Pods {
        namespaces: NamespaceScope,
        pods: Selector,
    },
    IpBlock(IpBlock),
}

/// One ingress or egress rule. Empty `peers` or `ports` mean "all", as in the API.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rule {
    pub peers: Vec<Peer>,
    pub ports: Vec<RulePort>,
}

/// A NetworkPolicy after defaulting and validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub namespace: String,
    pub name: String,
    pub pod_selector: Selector,
    /// `Some` iff the policy's (defaulted) policyTypes include Ingress.
    pub ingress: Option<Vec<Rule>>,
    /// `Some` iff the policy's (defaulted) policyTypes include Egress.
    pub egress: Option<Vec<Rule>>,
}

impl Policy {
    /// `namespace/name`, the way verdicts name policies.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    pub fn rules(&self, direction: Direction) -> Option<&[Rule]> {
        match direction {
            Direction::Ingress => self.ingress.as_deref(),
            Direction::Egress => self.egress.as_deref(),
        }
    }

    /// Whether this policy isolates `endpoint` in `direction`.
    pub fn selects(&self, endpoint: &Endpoint) -> bool {
        endpoint.governed() == Governance::Governed
            && endpoint.namespace.as_deref() == Some(self.namespace.as_str())
            && self.pod_selector.matches(&endpoint.labels)
    }
}

/// A Node: `nodes` peers of cluster policies select it by labels and match its addresses
/// (`status.addresses`), which host-network pods on it share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub labels: Labels,
    pub addresses: Vec<IpAddr>,
}

/// Everything the engine needs to know about a cluster.
#[derive(Clone, Debug, Default)]
pub struct Cluster {
    /// Namespace name to labels, always including `kubernetes.io/metadata.name`.
    namespaces: BTreeMap<String, Labels>,
    /// Namespace name to the annotations kept of it (as [`Endpoint::annotations`]).
    namespace_annotations: BTreeMap<String, Labels>,
    endpoints: Vec<Endpoint>,
    /// Endpoint id to its position in `endpoints`.
    endpoint_index: BTreeMap<String, usize>,
    policies: Vec<Policy>,
    cluster_policies: Vec<ClusterPolicy>,
    nodes: Vec<Node>,
}

impl Cluster {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the annotations kept of a namespace (mesh injection); not used by evaluation.
    pub fn set_namespace_annotations(&mut self, name: &str, annotations: Labels) {
        self.namespace_annotations.insert(name.to_string(), annotations);
    }

    /// One annotation kept of a namespace, if it has it.
    pub fn namespace_annotation(&self, namespace: &str, key: &str) -> Option<&str> {
        self.namespace_annotations.get(namespace)?.get(key).map(String::as_str)
    }

    /// Adds or replaces a namespace. The name label is set whatever `labels` say, as the
    /// API server does.
    pub fn set_namespace(&mut self, name: &str, mut labels: Labels) {
        labels.insert(NAMESPACE_NAME_LABEL.to_string(), name.to_string());
        self.namespaces.insert(name.to_string(), labels);
    }

    /// Adds an endpoint, replacing one with the same id, and creating its namespace (with
    /// only the name label) if unknown.
    pub fn add_endpoint(&mut self, endpoint: Endpoint) {
        if let Some(ns) = &endpoint.namespace
            && !self.namespaces.contains_key(ns)
        {
            self.set_namespace(&ns.clone(), Labels::new());
        }
        match self.endpoint_index.get(&endpoint.id) {
            Some(&i) => self.endpoints[i] = endpoint,
            None => {
                self.endpoint_index.insert(endpoint.id.clone(), self.endpoints.len());
                self.endpoints.push(endpoint);
            }
        }
    }

    /// Adds a policy, replacing one of the same namespace and name.
    pub fn add_policy(&mut self, policy: Policy) {
        if !self.namespaces.contains_key(&policy.namespace) {
            self.set_namespace(&policy.namespace.clone(), Labels::new());
        }
        match self.policies.iter_mut().find(|p| p.namespace == policy.namespace && p.name == policy.name) {
            Some(existing) => *existing = policy,
            None => self.policies.push(policy),
        }
    }

    /// Removes a policy; returns whether it existed.
    pub fn remove_policy(&mut self, namespace: &str, name: &str) -> bool {
        let before = self.policies.len();
        self.policies.retain(|p| !(p.namespace == namespace && p.name == name));
        before != self.policies.len()
    }

    /// Adds a cluster policy, replacing one of the same kind and name.
    pub fn add_cluster_policy(&mut self, policy: ClusterPolicy) {
        match self.cluster_policies.iter_mut().find(|p| p.kind == policy.kind && p.name == policy.name) {
            Some(existing) => *existing = policy,
            None => self.cluster_policies.push(policy),
        }
    }

    /// Adds a Node, replacing one of the same name.
    pub fn add_node(&mut self, node: Node) {
        match self.nodes.iter_mut().find(|n| n.name == node.name) {
            Some(existing) => *existing = node,
            None => self.nodes.push(node),
        }
    }

    pub fn cluster_policies(&self) -> &[ClusterPolicy] {
        &self.cluster_policies
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Whether `ip` is an address of a Node that `selector` selects.
    pub fn node_address(&self, selector: &crate::selector::Selector, ip: IpAddr) -> bool {
        self.nodes.iter().any(|n| n.addresses.contains(&ip) && selector.matches(&n.labels))
    }

    pub fn endpoint_mut(&mut self, id: &str) -> Option<&mut Endpoint> {
        self.endpoint_index.get(id).map(|&i| &mut self.endpoints[i])
    }

    pub fn namespace_labels(&self, name: &str) -> Option<&Labels> {
        self.namespaces.get(name)
    }

    pub fn namespaces(&self) -> impl Iterator<Item = (&str, &Labels)> {
        self.namespaces.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    pub fn endpoint(&self, id: &str) -> Option<&Endpoint> {
        self.endpoint_index.get(id).map(|&i| &self.endpoints[i])
    }
}
