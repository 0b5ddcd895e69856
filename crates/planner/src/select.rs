//! Choosing probes: a full matrix is quadratic, so a run probes by coverage within a
//! budget. In order: DNS from every namespace, a witness for every rule that should allow
//! traffic, a denied probe for every isolated class, then cross-namespace samples with
//! dev → production first.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

use netcanary_policy::classes::selected_keys;
use netcanary_policy::evaluate;
use netcanary_policy::model::Governance;
use netcanary_policy::selector::NAMESPACE_NAME_LABEL;
use netcanary_policy::{
    Cluster, Direction, Endpoint, Labels, Matrix, PolicyIndex, PortProto, Protocol, RuleRef, Selector, Verdict,
};

use crate::mirror::{mirrored_labels, probe_pod_labels};
use crate::plan::{Coverage, Destination, Mirror, Plan, PlannedProbe, ProbePath, Purpose};

mod cluster_rules;
mod intent;

/// What the planner may do.
#[derive(Clone, Debug)]
pub struct Options {
    /// At most this many probes (DNS included).
    pub max_probes: usize,
    /// Protocols the prober can test (SCTP needs kernel support the prober does not assume).
    pub protocols: Vec<Protocol>,
    /// Ids of the cluster DNS pods (behind the DNS Service), if DNS is to be checked.
    pub dns_endpoints: Vec<String>,
    /// Selectors of Services that publish not-ready addresses, by namespace: a target
    /// matching one would receive real traffic although it is never Ready.
    pub not_ready_services: Vec<(String, Selector)>,
    /// Explained evaluations spent looking for one rule's witness.
    pub witness_search_limit: usize,
    /// Namespaces whose pods get no probe pods, and whose policies' rules are not counted
    /// in coverage: netcanary's own, where its canary policy isolates every probe pod, so a
    /// probe pod there could stand for none of the pods it mirrors.
    pub unprobed_namespaces: Vec<String>,
    /// The only namespaces whose pods get probe pods (besides `unprobed_namespaces`): all by
    /// default. Where netcanary may create pods in some namespaces only (RBAC granted per
    /// namespace), the rest are left out like `unprobed_namespaces`.
    pub probed_namespaces: NamespaceFilter,
    /// Addresses outside the cluster, each on one port, that every source class probes
    /// (`--to`): what policy says of them is read from `ipBlock`s, and their own servers
    /// answer.
    pub external: Vec<(IpAddr, PortProto)>,
    /// Statements of declared intent: each gets a probe when some probed pair falls under
    /// it, and every probe is marked with the statement it falls under.
    pub intent: Vec<netcanary_policy::intent::Statement>,
    /// The paths each probe to a target pod takes (see [`crate::paths`]).
    pub paths: Vec<ProbePath>,
}

/// Which namespaces a run probes: by name, by labels, or both (a namespace must pass each
/// that is set).
#[derive(Clone, Debug, Default)]
pub struct NamespaceFilter {
    pub names: Option<BTreeSet<String>>,
    pub selector: Option<Selector>,
}

impl NamespaceFilter {
    /// Whether the namespace `name`, with `labels`, is probed.
    pub fn admits(&self, name: &str, labels: &Labels) -> bool {
        self.names.as_ref().is_none_or(|names| names.contains(name))
            && self.selector.as_ref().is_none_or(|selector| selector.matches(labels))
    }

    pub fn is_everything(&self) -> bool {
        self.names.is_none() && self.selector.is_none()
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_probes: 500,
            protocols: vec![Protocol::Tcp, Protocol::Udp],
            dns_endpoints: Vec::new(),
            not_ready_services: Vec::new(),
            witness_search_limit: 500,
            unprobed_namespaces: Vec::new(),
            probed_namespaces: NamespaceFilter::default(),
            external: Vec::new(),
            intent: Vec::new(),
            paths: vec![ProbePath::Pod],
        }
    }
}

/// Plans a run over `cluster`'s pods.
pub fn plan(cluster: &Cluster, options: &Options) -> Plan {
    let probed = as_probe_pods(cluster);
    let mut planner = Planner::new(&probed, cluster, options);
    planner.dns();
    planner.external();
    planner.intent();
    planner.rule_witnesses();
    planner.cluster_rule_witnesses();
    planner.isolation();
    planner.samples();
    let mut plan = planner.finish();
    crate::paths::by_paths(&mut plan, &options.paths);
    plan
}

/// `cluster` with every pod that may be mirrored carrying the labels its probe pod will
/// carry: expectations, witnesses and coverage are then about the probes a run really
/// makes. They differ from the workload's where a selector reads a label a probe pod cannot
/// copy (a controller's, such as `statefulset.kubernetes.io/pod-name`) or that netcanary
/// sets itself (`app.kubernetes.io/managed-by`, `netcanary.io/run-id`). The cluster DNS
/// pods are no exception: a probe pod stands for them too. DNS itself is probed at the real
/// pods, so [`Planner::dns`] expects it of their real labels.
fn as_probe_pods(cluster: &Cluster) -> Cluster {
    let keys = selected_keys(cluster);
    let mut probed = cluster.clone();
    for endpoint in cluster.endpoints() {
        if endpoint.governed() != Governance::Governed {
            continue;
        }
        let labels = probe_pod_labels(&endpoint.labels, &keys, PLANNED_RUN_ID);
        if let Some(pod) = probed.endpoint_mut(&endpoint.id) {
            pod.labels = labels;
        }
    }
    probed
}

/// The run id the plan's probe pods are given before a run names them.
const PLANNED_RUN_ID: &str = "planned";

struct Planner<'c> {
    /// The cluster as the probe pods will make it: what expectations are computed on.
    cluster: &'c Cluster,
    /// The cluster as it is: what probe pods copy their labels from.
    workloads: &'c Cluster,
    options: &'c Options,
    index: PolicyIndex<'c>,
    keys: HashSet<&'c str>,
    matrices: HashMap<PortProto, Matrix>,
    /// Classes that can send (governed pods) and receive (governed pods with probed ports
    /// and no not-ready Service), in a deterministic order.
    sources: Vec<usize>,
    targets: Vec<usize>,
    /// Per class, the declared ports the prober can test (read in the inner loops).
    ports: Vec<Vec<PortProto>>,
    mirrors: Vec<Mirror>,
    mirror_of: HashMap<usize, usize>,
    probes: Vec<PlannedProbe>,
    planned: HashSet<(usize, usize, PortProto)>,
    planned_external: HashSet<(usize, IpAddr, PortProto)>,
    coverage: Coverage,
    notes: Vec<String>,
    budget_exhausted: bool,
}

impl<'c> Planner<'c> {
    fn new(cluster: &'c Cluster, workloads: &'c Cluster, options: &'c Options) -> Self {
        let index = PolicyIndex::new(cluster);
        let mut planner = Self {
            cluster,
            workloads,
            options,
            keys: selected_keys(cluster),
            matrices: HashMap::new(),
            sources: Vec::new(),
            targets: Vec::new(),
            ports: Vec::new(),
            mirrors: Vec::new(),
            mirror_of: HashMap::new(),
            probes: Vec::new(),
            planned: HashSet::new(),
            planned_external: HashSet::new(),
            coverage: Coverage::default(),
            notes: Vec::new(),
            budget_exhausted: false,
            index,
        };
        planner.ports = (0..planner.index.classes().len()).map(|class| planner.probed_ports(class)).collect();
        for namespace in &options.unprobed_namespaces {
            if cluster.endpoints().iter().any(|e| e.namespace.as_deref() == Some(namespace.as_str())) {
                planner.notes.push(format!(
                    "pods in namespace {namespace} are not probed, and its policies' rules not counted: netcanary's canary policy isolates every probe pod there"
                ));
            }
        }
        let namespaces: BTreeSet<&str> = (cluster.endpoints().iter().filter_map(|e| e.namespace.as_deref()))
            .chain(cluster.policies().iter().map(|p| p.namespace.as_str()))
            .collect();
        let left_out: Vec<&str> = namespaces
            .into_iter()
            .filter(|ns| !options.unprobed_namespaces.iter().any(|u| u == ns) && planner.unprobed(Some(ns)))
            .collect();
        if !left_out.is_empty() {
            planner.notes.push(format!(
                "pods in namespaces {} are not probed, and their policies' rules not counted: outside the namespaces this run probes",
                left_out.join(", ")
            ));
        }
        let mut classes: Vec<usize> = (0..planner.index.classes().len()).collect();
        classes.sort_by(|a, b| planner.representative(*a).id.cmp(&planner.representative(*b).id));
        for class in classes {
            let endpoint = planner.representative(class);
            if endpoint.governed() != Governance::Governed || planner.unprobed(endpoint.namespace.as_deref()) {
                continue;
            }
            planner.sources.push(class);
            if planner.ports(class).is_empty() {
                continue;
            }
            match planner.not_ready_service(endpoint) {
                None => planner.targets.push(class),
                Some(service) => planner.notes.push(format!(
                    "{} is not mirrored as a target: Service selector {service} publishes not-ready addresses, so a probe pod would receive real traffic",
                    endpoint.id
                )),
            }
        }
        planner
    }

    fn unprobed(&self, namespace: Option<&str>) -> bool {
        namespace.is_some_and(|ns| {
            self.options.unprobed_namespaces.iter().any(|u| u == ns)
                || !self.options.probed_namespaces.is_everything() && !self.probed_namespace(ns)
        })
    }

    /// Whether `--namespaces` and `--namespace-selector` let `namespace` be probed; a
    /// namespace without an object carries only its name label.
    fn probed_namespace(&self, namespace: &str) -> bool {
        let named = Labels::from([(NAMESPACE_NAME_LABEL.to_string(), namespace.to_string())]);
        let labels = self.workloads.namespace_labels(namespace).unwrap_or(&named);
        self.options.probed_namespaces.admits(namespace, labels)
    }

    fn representative(&self, class: usize) -> &'c Endpoint {
        &self.cluster.endpoints()[self.index.classes().representative(class)]
    }

    /// The declared ports of a class that the prober can test.
    fn ports(&self, class: usize) -> Vec<PortProto> {
        self.ports[class].clone()
    }

    fn probed_ports(&self, class: usize) -> Vec<PortProto> {
        let ports: BTreeSet<PortProto> = self
            .representative(class)
            .ports
            .iter()
            .filter(|p| self.options.protocols.contains(&p.protocol))
            .map(|p| PortProto::new(p.port, p.protocol))
            .collect();
        ports.into_iter().collect()
    }

    fn not_ready_service(&self, endpoint: &Endpoint) -> Option<&'c Selector> {
        self.options
            .not_ready_services
            .iter()
            .find(|(ns, selector)| {
                Some(ns.as_str()) == endpoint.namespace.as_deref() && selector.matches(&endpoint.labels)
            })
            .map(|(_, selector)| selector)
    }

    fn allowed(&mut self, source: usize, destination: usize, port: PortProto) -> bool {
        let index = &self.index;
        self.matrices.entry(port).or_insert_with(|| index.matrix(port)).allowed(source, destination)
    }

    fn verdict(&self, source: usize, destination: usize, port: PortProto) -> Verdict {
        evaluate::verdict(self.cluster, self.representative(source), self.representative(destination), port)
    }

    fn mirror(&mut self, class: usize) -> usize {
        if let Some(&m) = self.mirror_of.get(&class) {
            return m;
        }
        let endpoint = self.representative(class);
        let workload = self.workloads.endpoint(&endpoint.id).unwrap_or(endpoint);
        let (labels, dropped_labels) = mirrored_labels(&workload.labels, &self.keys);
        self.mirrors.push(Mirror {
            class,
            namespace: endpoint.namespace.clone().unwrap_or_default(),
            labels,
            dropped_labels,
            stands_for: endpoint.id.clone(),
            workload: endpoint.workload_name().to_string(),
            members: self.index.classes().members(class).len(),
            listen: BTreeSet::new(),
            port_names: workload
                .ports
                .iter()
                .filter_map(|p| Some((PortProto::new(p.port, p.protocol), p.name.clone()?)))
                .collect(),
        });
        self.mirror_of.insert(class, self.mirrors.len() - 1);
        self.mirrors.len() - 1
    }

    /// Adds a probe if the budget allows; returns whether it was added.
    fn add(&mut self, source: usize, to: Option<usize>, port: PortProto, verdict: &Verdict, purpose: Purpose) -> bool {
        if self.probes.len() >= self.options.max_probes {
            self.budget_exhausted = true;
            return false;
        }
        let key = (source, to.unwrap_or(usize::MAX), port);
        if !self.planned.insert(key) {
            return false;
        }
        let mut covers: Vec<RuleRef> =
            verdict.egress.allowed_by.iter().chain(&verdict.ingress.allowed_by).map(|hit| hit.rule.clone()).collect();
        if verdict.allowed {
            self.coverage.covered.extend(covers.iter().cloned());
        }
        self.cover_cluster_rules(verdict, &mut covers);
        let from = self.mirror(source);
        let destination = match to {
            Some(class) => {
                let m = self.mirror(class);
                self.mirrors[m].listen.insert(port);
                Destination::Mirror(m)
            }
            None => Destination::Dns,
        };
        self.probes.push(PlannedProbe {
            from,
            to: destination,
            port,
            expected_allowed: verdict.allowed,
            purpose,
            covers,
            intent: None,
            path: ProbePath::Pod,
        });
        true
    }

    /// One source per namespace checks DNS over UDP and TCP, at the real DNS pods: what
    /// policy says of them is read from their own labels, not their probe pod's.
    fn dns(&mut self) {
        let Some(dns) = self.options.dns_endpoints.iter().find_map(|id| self.workloads.endpoint(id)) else { return };
        let mut namespaces_done = HashSet::new();
        for source in self.sources.clone() {
            let namespace = self.representative(source).namespace.clone();
            if !namespaces_done.insert(namespace) {
                continue;
            }
            for protocol in [Protocol::Udp, Protocol::Tcp] {
                if self.options.protocols.contains(&protocol) {
                    let port = PortProto::new(53, protocol);
                    let verdict = evaluate::verdict(self.cluster, self.representative(source), dns, port);
                    self.add(source, None, port, &verdict, Purpose::Dns);
                }
            }
        }
    }

    /// Every source class to every address outside the cluster the run was given, before
    /// the witnesses: an `ipBlock` rule to such an address has no pod pair to witness it.
    fn external(&mut self) {
        for (ip, port) in self.options.external.clone() {
            if !self.options.protocols.contains(&port.protocol) {
                continue;
            }
            let outside = Endpoint::external(ip);
            for source in self.sources.clone() {
                if self.probes.len() >= self.options.max_probes {
                    self.budget_exhausted = true;
                    return;
                }
                if !self.planned_external.insert((source, ip, port)) {
                    continue;
                }
                let verdict = evaluate::verdict(self.cluster, self.representative(source), &outside, port);
                let mut covers: Vec<RuleRef> = verdict.egress.allowed_by.iter().map(|hit| hit.rule.clone()).collect();
                if verdict.allowed {
                    self.coverage.covered.extend(covers.iter().cloned());
                }
                self.cover_cluster_rules(&verdict, &mut covers);
                let from = self.mirror(source);
                self.probes.push(PlannedProbe {
                    from,
                    to: Destination::External(ip),
                    port,
                    expected_allowed: verdict.allowed,
                    purpose: Purpose::External,
                    covers,
                    intent: None,
                    path: ProbePath::Pod,
                });
            }
        }
    }

    /// A witness for every rule: an allowed connection that this rule allows.
    fn rule_witnesses(&mut self) {
        let cluster = self.cluster;
        for policy in cluster.policies() {
            if self.unprobed(Some(&policy.namespace)) {
                continue;
            }
            for direction in [Direction::Ingress, Direction::Egress] {
                for index in 0..policy.rules(direction).map_or(0, <[_]>::len) {
                    self.coverage.rules += 1;
                    let rule = RuleRef { policy: policy.id(), direction, index };
                    if self.coverage.covered.contains(&rule) {
                        continue;
                    }
                    match self.find_witness(&rule) {
                        Ok((source, destination, port, verdict)) => {
                            if !self.add(source, Some(destination), port, &verdict, Purpose::AllowRule) {
                                self.coverage.uncovered.insert(rule, "the probe budget (--max-probes) ran out".into());
                            }
                        }
                        Err(reason) => {
                            self.coverage.uncovered.insert(rule, reason);
                        }
                    }
                }
            }
        }
        let covered = self.coverage.covered.clone();
        self.coverage.uncovered.retain(|rule, _| !covered.contains(rule));
    }

    fn find_witness(&mut self, rule: &RuleRef) -> Result<(usize, usize, PortProto, Verdict), String> {
        let cluster = self.cluster;
        let position = cluster.policies().iter().position(|p| p.id() == rule.policy).ok_or("policy vanished")?;
        let policy = &cluster.policies()[position];
        let selected = |class: usize, this: &Self| policy.selects(this.representative(class));
        // Only the classes the rule's peers can match are candidates for the far end.
        let peers: Option<HashSet<usize>> =
            self.index.rule_peers(position, rule.direction, rule.index).map(|classes| classes.into_iter().collect());
        let candidate = |class: &usize| peers.as_ref().is_none_or(|p| p.contains(class));
        let (subjects, others): (Vec<usize>, Vec<usize>) = match rule.direction {
            Direction::Ingress => (
                self.targets.iter().copied().filter(|&c| selected(c, self)).collect(),
                self.sources.iter().copied().filter(candidate).collect(),
            ),
            Direction::Egress => (
                self.sources.iter().copied().filter(|&c| selected(c, self)).collect(),
                self.targets.iter().copied().filter(candidate).collect(),
            ),
        };
        if subjects.is_empty() {
            let role = if rule.direction == Direction::Ingress { "pod with a probed port" } else { "pod" };
            return Err(format!("the policy selects no {role}"));
        }
        let mut tries = 0;
        for &subject in &subjects {
            for &other in &others {
                let (source, destination) =
                    if rule.direction == Direction::Ingress { (other, subject) } else { (subject, other) };
                let (from, to) = (self.representative(source), self.representative(destination));
                for port in self.ports(destination) {
                    // The rule must allow it on its side, and the whole connection be allowed.
                    if !evaluate::rule_allows(cluster, policy, rule.direction, rule.index, from, to, port) {
                        continue;
                    }
                    if self.allowed(source, destination, port) {
                        return Ok((source, destination, port, self.verdict(source, destination, port)));
                    }
                    tries += 1;
                    if tries >= self.options.witness_search_limit {
                        return Err(format!(
                            "every pair it allows that was tried ({tries}) is denied by the other side's policy"
                        ));
                    }
                }
            }
        }
        Err("no pod pair reaches it: its peers match no pod, or the far side's policy denies every match".into())
    }

    /// Every isolated class gets a probe that policy denies, from another namespace when
    /// possible, so a network that enforces nothing cannot pass.
    fn isolation(&mut self) {
        let isolated = |this: &Self, class: usize, direction: Direction| {
            let endpoint = this.representative(class);
            this.cluster.policies().iter().any(|p| p.rules(direction).is_some() && p.selects(endpoint))
        };
        for destination in self.targets.clone() {
            if isolated(self, destination, Direction::Ingress) {
                let sources = self.ranked(&self.sources.clone(), destination, false);
                self.first_denied(&sources, &[destination]);
            }
        }
        for source in self.sources.clone() {
            if isolated(self, source, Direction::Egress) {
                let targets = self.ranked(&self.targets.clone(), source, true);
                self.first_denied(&[source], &targets);
            }
        }
    }

    /// Plans the first denied pair of `sources` × `destinations` whose denial policy knows;
    /// only when there is none, the first denied one whose answer a domain name or a tie of
    /// cluster policies leaves open (that probe can only be inconclusive).
    fn first_denied(&mut self, sources: &[usize], destinations: &[usize]) {
        let mut open = None;
        for &source in sources {
            for &destination in destinations {
                for port in self.ports(destination) {
                    if !self.allowed(source, destination, port) {
                        let verdict = self.verdict(source, destination, port);
                        if verdict.not_known().is_none() {
                            self.add(source, Some(destination), port, &verdict, Purpose::Isolation);
                            return;
                        }
                        open.get_or_insert((source, destination, port, verdict));
                    }
                }
            }
        }
        if let Some((source, destination, port, verdict)) = open {
            self.add(source, Some(destination), port, &verdict, Purpose::Isolation);
        }
    }

    /// `candidates` ordered for a pair with `anchor`: other namespaces first; among them,
    /// dev-like sources before production-like destinations.
    fn ranked(&self, candidates: &[usize], anchor: usize, candidates_are_destinations: bool) -> Vec<usize> {
        let anchor_ns = self.representative(anchor).namespace.clone();
        let mut ranked = candidates.to_vec();
        ranked.sort_by_key(|&c| {
            let ns = self.representative(c).namespace.clone();
            let rank = if candidates_are_destinations {
                production_rank(self.cluster, &ns)
            } else {
                dev_rank(self.cluster, &ns)
            };
            (ns == anchor_ns, rank)
        });
        ranked
    }

    /// Cross-namespace pairs until the budget runs out, dev → production first. Pairs are
    /// generated lazily in rank order: there are classes² of them, the budget is small.
    fn samples(&mut self) {
        let dev: Vec<u8> =
            self.sources.iter().map(|&c| dev_rank(self.cluster, &self.representative(c).namespace)).collect();
        let production: Vec<u8> =
            self.targets.iter().map(|&c| production_rank(self.cluster, &self.representative(c).namespace)).collect();
        for rank in 0..=4 {
            for (i, source) in self.sources.clone().into_iter().enumerate() {
                for (j, destination) in self.targets.clone().into_iter().enumerate() {
                    if self.probes.len() >= self.options.max_probes {
                        return;
                    }
                    if dev[i] + production[j] != rank
                        || self.representative(source).namespace == self.representative(destination).namespace
                    {
                        continue;
                    }
                    if let Some(port) = self.ports(destination).first().copied() {
                        let verdict = self.verdict(source, destination, port);
                        self.add(source, Some(destination), port, &verdict, Purpose::Sample);
                    }
                }
            }
        }
    }

    fn finish(mut self) -> Plan {
        let unverified_intent = self.mark_intent();
        if self.budget_exhausted {
            self.notes.push(format!(
                "the probe budget of {} was reached; raise --max-probes to test more",
                self.options.max_probes
            ));
        }
        Plan {
            mirrors: self.mirrors,
            probes: self.probes,
            coverage: self.coverage,
            notes: self.notes,
            unverified_intent,
        }
    }
}

/// 0 for namespaces that look like development (by name or labels), 2 otherwise.
fn dev_rank(cluster: &Cluster, namespace: &Option<String>) -> u8 {
    if looks_like(cluster, namespace, &["dev", "test", "sandbox", "staging"]) { 0 } else { 2 }
}

/// 0 for namespaces that look like production, 2 otherwise.
fn production_rank(cluster: &Cluster, namespace: &Option<String>) -> u8 {
    if looks_like(cluster, namespace, &["prod"]) { 0 } else { 2 }
}

fn looks_like(cluster: &Cluster, namespace: &Option<String>, words: &[&str]) -> bool {
    let Some(ns) = namespace else { return false };
    let labels = cluster.namespace_labels(ns).into_iter().flat_map(|l| l.values());
    std::iter::once(ns).chain(labels).any(|text| words.iter().any(|w| text.contains(w)))
}
