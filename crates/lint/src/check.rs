//! The rules, over the engine's model. Reachability questions go to
//! [`netcanary_policy::evaluate::verdict`]; "who does this select" to the model's
//! selectors, as the engine matches them.

use std::collections::{BTreeMap, BTreeSet};

use netcanary_policy::evaluate::verdict;
use netcanary_policy::model::{Governance, NamespaceScope};
use netcanary_policy::port::PortMatch;
use netcanary_policy::{Cluster, Direction, Endpoint, EndpointKind, Labels, Peer, Policy, PortProto, Protocol, Rule};

use crate::rules::{Level, rule};
use crate::{Finding, Sources};

mod kubelet;
mod mesh;

/// The labels cluster DNS pods carry (CoreDNS keeps kube-dns's).
const DNS_LABEL: (&str, &str) = ("k8s-app", "kube-dns");
/// The labels Prometheus pods usually carry (the operator's and the community chart's).
const PROMETHEUS_LABELS: [(&str, &str); 2] = [("app.kubernetes.io/name", "prometheus"), ("app", "prometheus")];
/// Port names that say "scrape me".
const METRICS_PORT_NAMES: [&str; 3] = ["metrics", "http-metrics", "prometheus"];
/// How many names a message lists before it counts the rest.
const LISTED: usize = 3;

/// What the user tells lint beyond the manifests.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Endpoint ids of the cluster DNS pods; empty: the `k8s-app: kube-dns` pods in kube-system.
    pub dns: Vec<String>,
    /// Where Prometheus runs; its pods are those with Prometheus's usual labels there, or a
    /// pod with those labels when the input has none.
    pub monitoring_namespace: Option<String>,
    /// Rule ids switched off.
    pub disabled: BTreeSet<String>,
}

/// Every finding for the cluster, sorted by namespace, rule and object, without those
/// switched off by `--disable` or an annotation.
pub fn lint(cluster: &Cluster, sources: &Sources, options: &Options) -> Vec<Finding> {
    let mut lint = Lint { cluster, sources, findings: Vec::new() };
    lint.missing_default_deny(Direction::Ingress);
    lint.missing_default_deny(Direction::Egress);
    lint.dns_blocked(options);
    lint.policies_selecting_nothing();
    lint.peers_selecting_nothing();
    lint.ingress_from_every_namespace();
    lint.scrape_blocked(options);
    lint.unresolved_named_ports();
    lint.ip_blocks_with_pods();
    lint.host_network_selected();
    lint.kubelet_probes_blocked();
    lint.mesh_ports_blocked();
    let findings: Vec<Finding> = lint
        .findings
        .into_iter()
        .filter(|f| {
            !options.disabled.contains(f.rule)
                && !sources.disables(f.rule, &f.kind, f.namespace.as_deref().unwrap_or_default(), &f.name)
        })
        .collect();
    let mut findings = merge_replicas(cluster, findings);
    findings.sort_by(|a, b| {
        let key = |f: &Finding| (f.namespace.clone(), f.rule, f.kind.clone(), f.name.clone(), f.field.clone());
        key(a).cmp(&key(b)).then(b.severity.cmp(&a.severity)).then(a.message.cmp(&b.message))
    });
    sources.locate(&mut findings);
    findings
}

/// Findings about pods that differ only in which replica of a workload they name, as a live
/// cluster's pods do, become one: a Deployment of 50 replicas has one problem, not 50.
/// The first such pod stands for the others, which its message lists. Findings that differ
/// in anything else (a replica with other labels or another address) stay apart.
fn merge_replicas(cluster: &Cluster, findings: Vec<Finding>) -> Vec<Finding> {
    // Each finding kept, with the workload of its pod and the other pods it stands for.
    let mut merged: Vec<(Finding, &str, Vec<&str>)> = Vec::new();
    let mut at: BTreeMap<_, usize> = BTreeMap::new();
    for finding in findings {
        let pod = (finding.kind == "Pod")
            .then(|| {
                cluster.endpoint(&format!("{}/{}", finding.namespace.as_deref().unwrap_or_default(), finding.name))
            })
            .flatten()
            .filter(|pod| pod.workload.is_some());
        let Some(pod) = pod else {
            merged.push((finding, "", Vec::new()));
            continue;
        };
        // The finding with the pod's name taken out: what its replicas' findings share.
        let anonymous = |text: &str| text.replace(&pod.id, "\0");
        let key = (
            finding.rule,
            finding.severity,
            finding.namespace.clone(),
            pod.workload_name(),
            finding.field.clone(),
            anonymous(&finding.message),
            anonymous(&finding.fix),
        );
        match at.get(&key) {
            Some(&first) => merged[first].2.push(pod.id.as_str()),
            None => {
                at.insert(key, merged.len());
                merged.push((finding, pod.workload_name(), Vec::new()));
            }
        }
    }
    (merged.into_iter())
        .map(|(mut finding, workload, alike)| {
            if !alike.is_empty() {
                let more = format!(" (as do {} more pods of {workload}: {})", alike.len(), listing(&alike));
                finding.message.push_str(&more);
            }
            finding
        })
        .collect()
}

struct Lint<'a> {
    cluster: &'a Cluster,
    sources: &'a Sources,
    findings: Vec<Finding>,
}

/// The kind and name of the object an endpoint stands for: `Pod api-0`, `Deployment api`.
fn object_of(endpoint: &Endpoint) -> (String, String) {
    match &endpoint.kind {
        EndpointKind::Workload(kind) => (kind.clone(), endpoint.workload_name().to_string()),
        _ => ("Pod".to_string(), endpoint.id.rsplit('/').next().unwrap_or_default().to_string()),
    }
}

/// The field of a pod's (or a workload template's) spec.
fn pod_field(endpoint: &Endpoint, field: &str) -> String {
    match &endpoint.kind {
        EndpointKind::Workload(kind) if kind == "CronJob" => format!("spec.jobTemplate.spec.template.spec.{field}"),
        EndpointKind::Workload(_) => format!("spec.template.spec.{field}"),
        _ => format!("spec.{field}"),
    }
}

/// `a, b, c and 2 more`.
fn listing<S: AsRef<str>>(names: &[S]) -> String {
    let shown: Vec<&str> = names.iter().take(LISTED).map(AsRef::as_ref).collect();
    match names.len().saturating_sub(LISTED) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

/// A rule of a NetworkPolicy, with where it sits in the manifest.
struct RuleAt<'c> {
    policy: &'c Policy,
    direction: Direction,
    rule: &'c Rule,
    /// `spec.ingress[2]`.
    path: String,
    /// `from` or `to`: the key of the rule's peers.
    peers_key: &'static str,
}

/// Every rule of every NetworkPolicy, ingress then egress within a policy.
fn policy_rules(cluster: &Cluster) -> impl Iterator<Item = RuleAt<'_>> {
    cluster.policies().iter().flat_map(|policy| {
        [Direction::Ingress, Direction::Egress].into_iter().flat_map(move |direction| {
            let (rules_key, peers_key) = match direction {
                Direction::Ingress => ("ingress", "from"),
                Direction::Egress => ("egress", "to"),
            };
            let rules = policy.rules(direction).unwrap_or_default().iter().enumerate();
            rules.map(move |(r, rule)| RuleAt {
                policy,
                direction,
                rule,
                path: format!("spec.{rules_key}[{r}]"),
                peers_key,
            })
        })
    })
}

fn is_isolated(cluster: &Cluster, endpoint: &Endpoint, direction: Direction) -> bool {
    cluster.policies().iter().any(|p| p.rules(direction).is_some() && p.selects(endpoint))
}

/// The NetworkPolicies that isolate a pod for one direction, and all their rules of it.
struct Isolation<'c> {
    /// `namespace/name`, in the cluster's order.
    policies: Vec<String>,
    rules: Vec<&'c netcanary_policy::Rule>,
}

/// How `endpoint` is isolated for `direction`; `None` when no policy isolates it.
fn isolation<'c>(cluster: &'c Cluster, endpoint: &Endpoint, direction: Direction) -> Option<Isolation<'c>> {
    let mut isolation = Isolation { policies: Vec::new(), rules: Vec::new() };
    for policy in cluster.policies().iter().filter(|p| p.selects(endpoint)) {
        let Some(rules) = policy.rules(direction) else { continue };
        isolation.policies.push(policy.id());
        isolation.rules.extend(rules);
    }
    (!isolation.policies.is_empty()).then_some(isolation)
}

/// Whether a peer of `policy` names `endpoint`, as the engine matches peers.
fn peer_selects(cluster: &Cluster, policy: &Policy, peer: &Peer, endpoint: &Endpoint) -> bool {
    match peer {
        Peer::IpBlock(block) => endpoint.ips.iter().any(|ip| block.contains(*ip)),
        Peer::Pods { namespaces, pods } => {
            endpoint.governed() == Governance::Governed
                && endpoint.namespace.as_deref().is_some_and(|ns| namespace_selected(cluster, policy, namespaces, ns))
                && pods.matches(&endpoint.labels)
        }
    }
}

fn namespace_selected(cluster: &Cluster, policy: &Policy, scope: &NamespaceScope, namespace: &str) -> bool {
    match scope {
        NamespaceScope::Own => namespace == policy.namespace,
        NamespaceScope::Selected(selector) => cluster.namespace_labels(namespace).is_some_and(|l| selector.matches(l)),
    }
}

fn has_labels(labels: &Labels, (key, value): (&str, &str)) -> bool {
    labels.get(key).is_some_and(|v| v == value)
}

impl<'a> Lint<'a> {
    fn pods(&self) -> impl Iterator<Item = &'a Endpoint> + use<'a> {
        let cluster: &'a Cluster = self.cluster;
        cluster.endpoints().iter().filter(|e| e.governed() == Governance::Governed)
    }

    /// Whether the input has any pod or workload: rules about selecting nothing need them.
    fn knows_pods(&self) -> bool {
        self.cluster.endpoints().iter().any(|e| !e.is_external())
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        id: &'static str,
        severity: Level,
        namespace: Option<&str>,
        (kind, name): (String, String),
        field: Option<String>,
        message: String,
        fix: String,
    ) {
        let file = self.sources.file_of(&kind, namespace.unwrap_or(&name), &name).map(str::to_string);
        self.findings.push(Finding {
            rule: id,
            severity,
            namespace: namespace.map(str::to_string),
            kind,
            name,
            field,
            file,
            line: None,
            message,
            fix,
        });
    }

    fn push_policy(&mut self, id: &'static str, policy: &Policy, field: String, message: String, fix: String) {
        let object = ("NetworkPolicy".to_string(), policy.name.clone());
        self.push(id, rule(id).level, Some(&policy.namespace), object, Some(field), message, fix);
    }

    /// NC001, NC002.
    fn missing_default_deny(&mut self, direction: Direction) {
        let id = match direction {
            Direction::Ingress => "NC001",
            Direction::Egress => "NC002",
        };
        let namespaces: Vec<String> = self.cluster.namespaces().map(|(n, _)| n.to_string()).collect();
        for namespace in namespaces {
            let pods: Vec<&Endpoint> = self.pods().filter(|e| e.namespace.as_deref() == Some(&namespace)).collect();
            let open: Vec<&Endpoint> =
                pods.iter().copied().filter(|e| !is_isolated(self.cluster, e, direction)).collect();
            let Some(first) = open.first() else { continue };
            let names: Vec<&str> = open.iter().map(|e| e.id.as_str()).collect();
            let message = format!(
                "{} of {} pods and workloads are not isolated for {direction}: {}",
                open.len(),
                pods.len(),
                listing(&names)
            );
            let fix = format!(
                "add a NetworkPolicy with podSelector: {{}} and policyTypes: [{}] to namespace {namespace}",
                if direction == Direction::Ingress { "Ingress" } else { "Egress" }
            );
            let first_file = {
                let (kind, name) = object_of(first);
                self.sources.file_of(&kind, &namespace, &name).map(str::to_string)
            };
            let object = ("Namespace".to_string(), namespace.clone());
            self.push(id, rule(id).level, Some(&namespace), object, None, message, fix);
            let finding = self.findings.last_mut().expect("just pushed");
            if finding.file.is_none() {
                finding.file = first_file;
            }
        }
    }

    /// NC003: every pod isolated for egress must reach some DNS pod, on 53/UDP and 53/TCP.
    fn dns_blocked(&mut self, options: &Options) {
        let dns: Vec<&Endpoint> = if options.dns.is_empty() {
            self.pods()
                .filter(|e| e.namespace.as_deref() == Some("kube-system") && has_labels(&e.labels, DNS_LABEL))
                .collect()
        } else {
            options.dns.iter().filter_map(|id| self.cluster.endpoint(id)).collect()
        };
        if dns.is_empty() {
            return;
        }
        let dns_names: Vec<&str> = dns.iter().map(|e| e.id.as_str()).collect();
        let sources: Vec<&Endpoint> = self
            .pods()
            .filter(|e| !dns.iter().any(|d| d.id == e.id) && is_isolated(self.cluster, e, Direction::Egress))
            .collect();
        for source in sources {
            for (protocol, level) in [(Protocol::Udp, Level::Error), (Protocol::Tcp, Level::Warning)] {
                let port = PortProto::new(53, protocol);
                let verdicts: Vec<_> = dns.iter().map(|d| verdict(self.cluster, source, d, port)).collect();
                if verdicts.iter().any(|v| v.allowed) {
                    continue;
                }
                let denied = verdicts[0].denied_by().expect("a denied verdict names its direction");
                let by = if denied.policies.is_empty() { "nothing".to_string() } else { denied.policies.join(", ") };
                let message = format!(
                    "{} cannot reach cluster DNS ({}) on {port}: {} denied, isolated by {by}",
                    source.id,
                    listing(&dns_names),
                    denied.direction
                );
                let fix = format!(
                    "allow egress to the DNS pods on 53/UDP and 53/TCP in namespace {} (see manifests/policies/default-deny/allow-dns.yaml)",
                    source.namespace.as_deref().unwrap_or_default()
                );
                self.push("NC003", level, source.namespace.as_deref(), object_of(source), None, message, fix);
            }
        }
    }

    /// NC004.
    fn policies_selecting_nothing(&mut self) {
        if !self.knows_pods() {
            return;
        }
        for policy in self.cluster.policies() {
            let in_namespace = |e: &&Endpoint| e.namespace.as_deref() == Some(policy.namespace.as_str());
            let selected = self
                .cluster
                .endpoints()
                .iter()
                .filter(in_namespace)
                .any(|e| policy.selects(e) || (e.host_network && policy.pod_selector.matches(&e.labels)));
            if !selected {
                let message = format!(
                    "podSelector {} matches no pod or workload in namespace {}: the policy has no effect",
                    policy.pod_selector, policy.namespace
                );
                let fix = "match the labels of the pods to protect, or delete the policy".to_string();
                self.push_policy("NC004", policy, "spec.podSelector".into(), message, fix);
            }
        }
    }

    /// NC005.
    fn peers_selecting_nothing(&mut self) {
        let check_namespaces = self.sources.has_namespaces();
        let check_pods = self.knows_pods();
        let mut found = Vec::new();
        for RuleAt { policy, rule, path, peers_key, .. } in policy_rules(self.cluster) {
            for (p, peer) in rule.peers.iter().enumerate() {
                let Peer::Pods { namespaces, pods } = peer else { continue };
                let path = format!("{path}.{peers_key}[{p}]");
                let selected: Vec<&str> = self
                    .cluster
                    .namespaces()
                    .map(|(n, _)| n)
                    .filter(|n| namespace_selected(self.cluster, policy, namespaces, n))
                    .collect();
                if let NamespaceScope::Selected(selector) = namespaces
                    && check_namespaces
                    && selected.is_empty()
                {
                    let message =
                        format!("namespaceSelector {selector} matches no namespace: this peer allows nothing");
                    let fix = "match a namespace's labels (every namespace has kubernetes.io/metadata.name: <name>)";
                    found.push((policy, format!("{path}.namespaceSelector"), message, fix.to_string()));
                } else if check_pods
                    && !pods.is_everything()
                    && !selected.is_empty()
                    && !self.pods().any(|e| peer_selects(self.cluster, policy, peer, e))
                {
                    let message = format!(
                        "podSelector {pods} matches no pod or workload in namespace(s) {}: this peer allows nothing",
                        listing(&selected)
                    );
                    let fix = "match the labels of the pods meant, or name their namespace with a namespaceSelector";
                    found.push((policy, format!("{path}.podSelector"), message, fix.to_string()));
                }
            }
        }
        for (policy, field, message, fix) in found {
            self.push_policy("NC005", policy, field, message, fix);
        }
    }

    /// NC006.
    fn ingress_from_every_namespace(&mut self) {
        let check_pods = self.knows_pods();
        let mut found = Vec::new();
        for policy in self.cluster.policies() {
            if check_pods && !self.pods().any(|e| policy.selects(e)) {
                continue; // NC004's
            }
            for (r, rule) in policy.ingress.as_deref().unwrap_or_default().iter().enumerate() {
                let field = if rule.peers.is_empty() {
                    Some(format!("spec.ingress[{r}]"))
                } else {
                    rule.peers
                        .iter()
                        .position(|peer| {
                            matches!(peer, Peer::Pods { namespaces: NamespaceScope::Selected(s), pods }
                                if s.is_everything() && pods.is_everything())
                        })
                        .map(|p| format!("spec.ingress[{r}].from[{p}]"))
                };
                let Some(field) = field else { continue };
                let others: Vec<&str> =
                    self.cluster.namespaces().map(|(n, _)| n).filter(|n| *n != policy.namespace).collect();
                let opened = match (rule.peers.is_empty(), others.is_empty()) {
                    (true, _) => "every namespace and every address outside the cluster".to_string(),
                    (false, true) => "every namespace".to_string(),
                    (false, false) => format!("every namespace ({})", listing(&others)),
                };
                let ports = if rule.ports.is_empty() {
                    "any port".to_string()
                } else {
                    rule.ports.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                };
                let message = format!(
                    "admits {opened} on {ports} into pods {} of namespace {}, which are otherwise isolated",
                    policy.pod_selector, policy.namespace
                );
                let fix =
                    "name the namespaces that need access with a namespaceSelector (and their pods with a podSelector)";
                found.push((policy, field, message, fix.to_string()));
            }
        }
        for (policy, field, message, fix) in found {
            self.push_policy("NC006", policy, field, message, fix);
        }
    }

    /// NC007.
    fn scrape_blocked(&mut self, options: &Options) {
        let labelled = |e: &&Endpoint| PROMETHEUS_LABELS.iter().any(|pair| has_labels(&e.labels, *pair));
        let mut scrapers: Vec<Endpoint> = self
            .pods()
            .filter(labelled)
            .filter(|e| options.monitoring_namespace.as_ref().is_none_or(|ns| e.namespace.as_ref() == Some(ns)))
            .cloned()
            .collect();
        if scrapers.is_empty()
            && let Some(namespace) = &options.monitoring_namespace
        {
            let labels = PROMETHEUS_LABELS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            scrapers.push(Endpoint::pod(namespace, "prometheus", labels));
        }
        if scrapers.is_empty() {
            return;
        }
        let scraper_names: Vec<&str> = scrapers.iter().map(|e| e.id.as_str()).collect();
        let mut found = Vec::new();
        for target in self.pods().filter(|e| is_isolated(self.cluster, e, Direction::Ingress)) {
            for port in &target.ports {
                let Some(name) = port.name.as_deref().filter(|n| METRICS_PORT_NAMES.contains(n)) else { continue };
                let port_proto = PortProto::new(port.port, port.protocol);
                if scrapers.iter().any(|s| s.id != target.id && verdict(self.cluster, s, target, port_proto).allowed) {
                    continue;
                }
                let message = format!(
                    "port {name} ({port_proto}) of {} cannot be scraped by {}: ingress is isolated and no rule admits them",
                    target.id,
                    listing(&scraper_names)
                );
                let fix = format!(
                    "allow ingress from the Prometheus pods on port {name} (see manifests/policies/gotchas/allow-prometheus-scrape.yaml)"
                );
                found.push((target, pod_field(target, &format!("containers[].ports[name={name}]")), message, fix));
            }
        }
        for (target, field, message, fix) in found {
            self.push(
                "NC007",
                Level::Warning,
                target.namespace.as_deref(),
                object_of(target),
                Some(field),
                message,
                fix,
            );
        }
    }

    /// NC008.
    fn unresolved_named_ports(&mut self) {
        if !self.knows_pods() {
            return;
        }
        let mut found = Vec::new();
        for RuleAt { policy, direction, rule, path, .. } in policy_rules(self.cluster) {
            let destinations: Vec<&Endpoint> = match direction {
                Direction::Ingress => self.pods().filter(|e| policy.selects(e)).collect(),
                Direction::Egress => self
                    .cluster
                    .endpoints()
                    .iter()
                    .filter(|e| !e.is_external())
                    .filter(|e| {
                        rule.peers.is_empty() || rule.peers.iter().any(|p| peer_selects(self.cluster, policy, p, e))
                    })
                    .collect(),
            };
            if destinations.is_empty() {
                continue;
            }
            for (p, port) in rule.ports.iter().enumerate() {
                let PortMatch::Named(name) = &port.port else { continue };
                let declared = destinations
                    .iter()
                    .any(|e| e.ports.iter().any(|c| c.name.as_deref() == Some(name) && c.protocol == port.protocol));
                if declared {
                    continue;
                }
                let names: Vec<&str> = destinations.iter().map(|e| e.id.as_str()).collect();
                let message = format!(
                    "no destination of this rule ({}) declares a {} port named {name:?}: the entry matches nothing",
                    listing(&names),
                    port.protocol
                );
                let fix = "use the name of a containerPort the destination pods declare, with its protocol, or the port number";
                found.push((policy, format!("{path}.ports[{p}].port"), message, fix.to_string()));
            }
        }
        for (policy, field, message, fix) in found {
            self.push_policy("NC008", policy, field, message, fix);
        }
    }

    /// NC009.
    fn ip_blocks_with_pods(&mut self) {
        let mut found = Vec::new();
        for RuleAt { policy, rule, path, peers_key, .. } in policy_rules(self.cluster) {
            for (p, peer) in rule.peers.iter().enumerate() {
                let Peer::IpBlock(block) = peer else { continue };
                let inside: Vec<&str> =
                    self.pods().filter(|e| e.ips.iter().any(|ip| block.contains(*ip))).map(|e| e.id.as_str()).collect();
                if inside.is_empty() {
                    continue;
                }
                let message = format!(
                    "ipBlock {block} contains the IPs of {} pod(s) ({}): whether it matches pod traffic is implementation-defined",
                    inside.len(),
                    listing(&inside)
                );
                let fix = "select pods with podSelector/namespaceSelector, and exclude the pod network from the ipBlock with except";
                found.push((policy, format!("{path}.{peers_key}[{p}].ipBlock"), message, fix.to_string()));
            }
        }
        for (policy, field, message, fix) in found {
            self.push_policy("NC009", policy, field, message, fix);
        }
    }

    /// NC012.
    fn host_network_selected(&mut self) {
        let mut found = Vec::new();
        for policy in self.cluster.policies() {
            let host: Vec<&str> = self
                .cluster
                .endpoints()
                .iter()
                .filter(|e| {
                    e.host_network
                        && e.namespace.as_deref() == Some(policy.namespace.as_str())
                        && policy.pod_selector.matches(&e.labels)
                })
                .map(|e| e.id.as_str())
                .collect();
            if host.is_empty() {
                continue;
            }
            let message = format!(
                "selects host-network pod(s) {}: pod policy does not govern them, so this policy does not protect them",
                listing(&host)
            );
            let fix = "protect host-network pods with host firewalling or a CNI host policy; narrow podSelector to pod-network pods";
            found.push((policy, message, fix.to_string()));
        }
        for (policy, message, fix) in found {
            self.push_policy("NC012", policy, "spec.podSelector".into(), message, fix);
        }
    }
}
