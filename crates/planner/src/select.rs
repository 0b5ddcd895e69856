//! Choosing probes: a full matrix is quadratic, so a run probes by coverage within a
//! budget counted in probe pods (what a run really pays for: each is a pod to schedule
//! and start), in wall time (no source pod gets more probes than a round's time allows,
//! see [`crate::wall_time`]) and, secondarily, in probes. In order: a witness for every
//! rule that should allow traffic (and for every cluster policy rule, a probe it decides),
//! a denied probe for every isolated class, DNS from every namespace, every address
//! outside the cluster the run was given, then cross-namespace samples with dev →
//! production first. Declared intent goes before all of them but DNS. Each step prefers
//! the probe pods already planned, which cost nothing more, and passes over a source pod
//! whose round is full.
//!
//! Everything per class (namespace, ranks, the classes of each namespace) is computed once
//! up front: at tens of thousands of classes, anything done per pair of classes must be a
//! lookup.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::rc::Rc;

use netcanary_policy::classes::selected_keys;
use netcanary_policy::evaluate;
use netcanary_policy::model::Governance;
use netcanary_policy::selector::NAMESPACE_NAME_LABEL;
use netcanary_policy::{
    Cluster, Direction, Endpoint, Labels, Matrix, Peer, PolicyIndex, PortProto, Protocol, RuleRef, Selector, Verdict,
};

use crate::budget::{Budget, Exceeded};
use crate::mirror::{mirrored_labels, probe_pod_labels};
use crate::plan::{Coverage, Destination, Mirror, Plan, PlannedProbe, ProbePath, Purpose};
use crate::wall_time::Timing;

mod cluster_rules;
mod intent;

/// What the planner may do.
#[derive(Clone, Debug)]
pub struct Options {
    /// At most this many probe pods (sources and targets; the canary's two are extra).
    pub max_probe_pods: usize,
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
    /// How a run spends its time: no source pod gets more probes than a round's time
    /// allows (see [`crate::wall_time`]).
    pub timing: Timing,
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
            max_probe_pods: DEFAULT_MAX_PROBE_PODS,
            max_probes: DEFAULT_MAX_PROBES,
            protocols: vec![Protocol::Tcp, Protocol::Udp],
            dns_endpoints: Vec::new(),
            not_ready_services: Vec::new(),
            witness_search_limit: 500,
            unprobed_namespaces: Vec::new(),
            probed_namespaces: NamespaceFilter::default(),
            external: Vec::new(),
            intent: Vec::new(),
            paths: vec![ProbePath::Pod],
            timing: Timing::default(),
        }
    }
}

/// The default probe-pod budget: enough for a witness of every rule that can have one in
/// the controller benchmark's 5,000-pod cluster (README, "The controller at scale").
pub const DEFAULT_MAX_PROBE_PODS: usize = 650;
/// The default probe budget: probes from pods that run anyway are cheap, so this bounds
/// the samples more than anything.
pub const DEFAULT_MAX_PROBES: usize = 2000;

/// Plans a run over `cluster`'s pods. Steps that plan more (witnesses for other kinds of
/// rules) go after `Planner::rule_witnesses`, through `Planner::witness`. Declared intent
/// outranks coverage: when statements are declared, DNS (whose probes may check some of
/// them) and a probe for every statement left come before the witnesses.
pub fn plan(cluster: &Cluster, options: &Options) -> Plan {
    let probed = as_probe_pods(cluster);
    let mut planner = Planner::new(&probed, cluster, options);
    // Declared intent is what its owners most want checked: its probes go first, after the
    // DNS probes that already check "every namespace reaches DNS" statements. Without
    // intent, DNS comes after the witnesses and isolation, reusing the pods they planned
    // rather than spending the probe-pod budget on pods of its own.
    let intent_first = !options.intent.is_empty();
    if intent_first {
        planner.dns();
        planner.intent();
    }
    planner.rule_witnesses();
    planner.cluster_rule_witnesses();
    planner.isolation();
    if !intent_first {
        planner.dns();
    }
    planner.external();
    planner.samples();
    let unresolving = if options.paths.contains(&ProbePath::Dns) { planner.denied_dns() } else { BTreeSet::new() };
    let mut plan = planner.finish();
    crate::paths::by_paths(&mut plan, &options.paths, &unresolving);
    plan.wall_time = options.timing.estimate(&plan);
    if plan.wall_time.exceeds_deadline() {
        plan.notes.push(format!(
            "at worst (every pod taking its whole start-up timeout, every probe timing out, every round) the run takes {}, past its deadline of {}: it would end inconclusive; raise --deadline, or lower --pod-start-timeout or --rounds",
            humantime::format_duration(plan.wall_time.worst_case),
            humantime::format_duration(plan.wall_time.deadline)
        ));
    }
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

/// Which side of a probe a class is on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Sources,
    Targets,
}

impl Side {
    fn other(self) -> Side {
        match self {
            Side::Sources => Side::Targets,
            Side::Targets => Side::Sources,
        }
    }
}

/// A witness: a pair of classes and a port that a rule allows, and the connection's verdict.
type Witness = (usize, usize, PortProto, Verdict);

/// A rule, as its policy's position, its direction and its position in the policy.
type RuleAt = (usize, Direction, usize);

/// Why a rule has no witness.
struct NoWitness {
    reason: String,
    /// It has one the budget could not pay for.
    budget: bool,
}

impl NoWitness {
    fn because(reason: impl Into<String>) -> Self {
        Self { reason: reason.into(), budget: false }
    }

    fn budget(refused: Refused) -> Self {
        Self { reason: refused.reason().into(), budget: true }
    }
}

/// How far a witness search got.
#[derive(Default)]
struct WitnessSearch {
    /// Pairs the rule allows that the far side denied.
    tries: usize,
    /// Whether the rule allowed any pair on its side.
    allowed_by_rule: bool,
    /// Whether a witness was passed over because its source pod had no time left.
    out_of_time: bool,
}

/// Why a probe was not added.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Refused {
    /// The same probe is already planned.
    Planned,
    Probes,
    Pods,
    /// The source pods that could send it have no time left in a round.
    Time,
}

impl Refused {
    fn reason(self) -> &'static str {
        match self {
            Refused::Pods => "the probe-pod budget (--max-probe-pods) ran out",
            Refused::Probes | Refused::Planned => "the probe budget (--max-probes) ran out",
            Refused::Time => {
                "the wall-time budget (--max-round-time) ran out: the source pods that could send it have no time left in a round"
            }
        }
    }
}

/// What the planner reads about every class, computed once: who can send and receive,
/// in which order, in which namespace, with which rank.
#[derive(Default)]
struct Layout {
    /// Classes that can send (governed pods) and receive (governed pods with probed ports
    /// and no not-ready Service), in a deterministic order.
    sources: Vec<usize>,
    targets: Vec<usize>,
    /// Per class: its position in `sources` and in `targets` (`usize::MAX` when not one).
    source_at: Vec<usize>,
    target_at: Vec<usize>,
    /// Per class: its namespace (a position in `namespaces`), and its rank as a source
    /// (dev-like first) and as a destination (production-like first).
    namespace: Vec<usize>,
    dev: Vec<u8>,
    production: Vec<u8>,
    namespaces: Vec<Namespace>,
    /// Per policy: its namespace.
    policy_namespace: Vec<usize>,
    /// The sources of dev rank 0, then 2; the targets of production rank 0, then 2; each
    /// in `sources` (`targets`) order.
    sources_by_rank: [Vec<usize>; 2],
    targets_by_rank: [Vec<usize>; 2],
    /// Per class, the declared ports the prober can test.
    ports: Vec<Vec<PortProto>>,
}

/// A namespace's source and target classes (in `sources` and `targets` order) and the
/// positions of its policies.
#[derive(Default)]
struct Namespace {
    sources: Vec<usize>,
    targets: Vec<usize>,
    policies: Vec<usize>,
}

impl Layout {
    fn side(&self, side: Side) -> &[usize] {
        match side {
            Side::Sources => &self.sources,
            Side::Targets => &self.targets,
        }
    }

    fn position(&self, side: Side, class: usize) -> usize {
        match side {
            Side::Sources => self.source_at[class],
            Side::Targets => self.target_at[class],
        }
    }

    fn in_namespace(&self, side: Side, namespace: usize) -> &[usize] {
        match side {
            Side::Sources => &self.namespaces[namespace].sources,
            Side::Targets => &self.namespaces[namespace].targets,
        }
    }

    /// 0 for dev-like sources and production-like destinations, 1 for the rest.
    fn rank_group(&self, side: Side, class: usize) -> usize {
        usize::from(
            match side {
                Side::Sources => self.dev[class],
                Side::Targets => self.production[class],
            } != 0,
        )
    }

    fn by_rank(&self, side: Side, group: usize) -> &[usize] {
        match side {
            Side::Sources => &self.sources_by_rank[group],
            Side::Targets => &self.targets_by_rank[group],
        }
    }
}

struct Planner<'c> {
    /// The cluster as the probe pods will make it: what expectations are computed on.
    cluster: &'c Cluster,
    /// The cluster as it is: what probe pods copy their labels from.
    workloads: &'c Cluster,
    options: &'c Options,
    index: PolicyIndex<'c>,
    keys: HashSet<&'c str>,
    matrices: HashMap<PortProto, Matrix>,
    /// Shared so that loops over it can plan probes meanwhile.
    layout: Rc<Layout>,
    mirrors: Vec<Mirror>,
    mirror_of: HashMap<usize, usize>,
    probes: Vec<PlannedProbe>,
    planned: HashSet<(usize, usize, PortProto)>,
    planned_external: HashSet<(usize, IpAddr, PortProto)>,
    coverage: Coverage,
    notes: Vec<String>,
    budget: Budget,
    probe_budget_exhausted: bool,
    /// What the pod budget left out, for the note that says so.
    isolation_left_out: usize,
    dns_left_out: usize,
}

impl<'c> Planner<'c> {
    fn new(cluster: &'c Cluster, workloads: &'c Cluster, options: &'c Options) -> Self {
        let index = PolicyIndex::new(cluster);
        let n = index.classes().len();
        let mut planner = Self {
            cluster,
            workloads,
            options,
            keys: selected_keys(cluster),
            matrices: HashMap::new(),
            layout: Rc::default(),
            mirrors: Vec::new(),
            mirror_of: HashMap::new(),
            probes: Vec::new(),
            planned: HashSet::new(),
            planned_external: HashSet::new(),
            coverage: Coverage::default(),
            notes: Vec::new(),
            budget: Budget::new(
                options.max_probe_pods,
                n,
                options.timing.probes_per_source(options.timing.longest_probe(&options.paths)),
                options.paths.iter().collect::<BTreeSet<_>>().len(),
            ),
            probe_budget_exhausted: false,
            isolation_left_out: 0,
            dns_left_out: 0,
            index,
        };
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
        planner.layout = Rc::new(planner.lay_out());
        planner
    }

    /// Computes the [`Layout`].
    fn lay_out(&mut self) -> Layout {
        let cluster = self.cluster;
        let n = self.index.classes().len();
        let mut layout = Layout {
            source_at: vec![usize::MAX; n],
            target_at: vec![usize::MAX; n],
            ports: (0..n).map(|class| self.probed_ports(class)).collect(),
            ..Layout::default()
        };
        let mut ids: HashMap<Option<&'c str>, usize> = HashMap::new();
        let mut ranks: Vec<(u8, u8)> = Vec::new();
        let mut intern = |namespace: Option<&'c str>, namespaces: &mut Vec<Namespace>| {
            *ids.entry(namespace).or_insert_with(|| {
                let owned = namespace.map(str::to_string);
                ranks.push((dev_rank(cluster, &owned), production_rank(cluster, &owned)));
                namespaces.push(Namespace::default());
                namespaces.len() - 1
            })
        };
        for class in 0..n {
            let ns = intern(self.representative(class).namespace.as_deref(), &mut layout.namespaces);
            layout.namespace.push(ns);
        }
        for (position, policy) in cluster.policies().iter().enumerate() {
            let ns = intern(Some(policy.namespace.as_str()), &mut layout.namespaces);
            layout.namespaces[ns].policies.push(position);
            layout.policy_namespace.push(ns);
        }
        for &ns in &layout.namespace {
            layout.dev.push(ranks[ns].0);
            layout.production.push(ranks[ns].1);
        }
        let mut classes: Vec<usize> = (0..n).collect();
        classes.sort_by(|a, b| self.representative(*a).id.cmp(&self.representative(*b).id));
        for class in classes {
            let endpoint = self.representative(class);
            if endpoint.governed() != Governance::Governed || self.unprobed(endpoint.namespace.as_deref()) {
                continue;
            }
            let ns = layout.namespace[class];
            layout.source_at[class] = layout.sources.len();
            layout.sources.push(class);
            layout.namespaces[ns].sources.push(class);
            let group = layout.rank_group(Side::Sources, class);
            layout.sources_by_rank[group].push(class);
            if layout.ports[class].is_empty() {
                continue;
            }
            match self.not_ready_service(endpoint) {
                None => {
                    layout.target_at[class] = layout.targets.len();
                    layout.targets.push(class);
                    layout.namespaces[ns].targets.push(class);
                    let group = layout.rank_group(Side::Targets, class);
                    layout.targets_by_rank[group].push(class);
                }
                Some(service) => self.notes.push(format!(
                    "{} is not mirrored as a target: Service selector {service} publishes not-ready addresses, so a probe pod would receive real traffic",
                    endpoint.id
                )),
            }
        }
        layout
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

    /// Whether `class` has a probe pod on `side` already.
    fn has_pod(&self, side: Side, class: usize) -> bool {
        match side {
            Side::Sources => self.budget.has_source(class),
            Side::Targets => self.budget.has_target(class),
        }
    }

    /// `classes` split into those with a probe pod on `side` already and the others, each
    /// in their order: searches try the pods a plan has first.
    fn planned_first(&self, side: Side, classes: &[usize]) -> (Vec<usize>, Vec<usize>) {
        classes.iter().partition(|&&c| self.has_pod(side, c))
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

    /// Whether the budgets have the pods and the source pod's time for a probe from `source`
    /// to the target pod of `destination`; nothing is taken.
    fn affordable(&self, source: usize, destination: usize) -> Result<(), Refused> {
        if self.budget.cost(source, Some(destination)) > self.budget.left() {
            Err(Refused::Pods)
        } else if !self.budget.has_time(source, true) {
            Err(Refused::Time)
        } else {
            Ok(())
        }
    }

    /// Adds a probe if the budgets allow: `to` is a class, or `None` for DNS.
    fn add(
        &mut self,
        source: usize,
        to: Option<usize>,
        port: PortProto,
        verdict: &Verdict,
        purpose: Purpose,
    ) -> Result<(), Refused> {
        let key = (source, to.unwrap_or(usize::MAX), port);
        if self.planned.contains(&key) {
            return Err(Refused::Planned);
        }
        if self.probes.len() >= self.options.max_probes {
            self.probe_budget_exhausted = true;
            return Err(Refused::Probes);
        }
        match self.budget.take(source, to) {
            Ok(()) => {}
            Err(Exceeded::Pods) => return Err(Refused::Pods),
            Err(Exceeded::Time) => return Err(Refused::Time),
        }
        self.planned.insert(key);
        let mut covers: Vec<RuleRef> =
            verdict.egress.allowed_by.iter().chain(&verdict.ingress.allowed_by).map(|hit| hit.rule.clone()).collect();
        self.cover_cluster_rules(verdict, &mut covers);
        let destination = match to {
            Some(class) => {
                let m = self.mirror(class);
                self.mirrors[m].listen.insert(port);
                Destination::Mirror(m)
            }
            None => Destination::Dns,
        };
        self.push(source, destination, port, verdict.allowed, purpose, covers);
        Ok(())
    }

    /// Appends a probe whose pods were paid for, counting the rules it covers.
    fn push(
        &mut self,
        source: usize,
        to: Destination,
        port: PortProto,
        expected_allowed: bool,
        purpose: Purpose,
        covers: Vec<RuleRef>,
    ) {
        if expected_allowed {
            self.coverage.covered.extend(covers.iter().cloned());
        }
        let from = self.mirror(source);
        self.probes.push(PlannedProbe {
            from,
            to,
            port,
            expected_allowed,
            purpose,
            covers,
            intent: None,
            path: ProbePath::Pod,
        });
    }

    /// A witness for every rule: an allowed connection that this rule allows.
    fn rule_witnesses(&mut self) {
        let cluster = self.cluster;
        for (position, policy) in cluster.policies().iter().enumerate() {
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
                    let found = self.find_witness((position, direction, index));
                    self.witness(rule, found);
                }
            }
        }
    }

    /// Plans the witness found for `rule`, or records why there is none. A witness policy
    /// denies (of a cluster policy's Deny rule) is an isolation probe.
    fn witness(&mut self, rule: RuleRef, found: Result<Witness, NoWitness>) {
        let missing = match found {
            Ok((source, destination, port, verdict)) => {
                let purpose = if verdict.allowed { Purpose::AllowRule } else { Purpose::Isolation };
                match self.add(source, Some(destination), port, &verdict, purpose) {
                    // Planned already: that probe witnesses it.
                    Ok(()) | Err(Refused::Planned) => None,
                    Err(refused) => Some(NoWitness::budget(refused)),
                }
            }
            Err(missing) => Some(missing),
        };
        if let Some(missing) = missing {
            if missing.budget {
                self.coverage.budget.insert(rule.clone());
            }
            self.coverage.uncovered.insert(rule, missing.reason);
        }
    }

    /// The first pair of classes and port that the rule allows on its side and the far
    /// side's policy lets through, among pairs the pod budget can pay for: first between
    /// probe pods already planned, then any, those with probe pods first.
    fn find_witness(&mut self, rule: RuleAt) -> Result<Witness, NoWitness> {
        let (position, direction, index) = rule;
        let layout = Rc::clone(&self.layout);
        let policy = &self.cluster.policies()[position];
        let peers = &policy.rules(direction).unwrap_or_default()[index].peers;
        let (subject_side, other_side) = match direction {
            Direction::Ingress => (Side::Targets, Side::Sources),
            Direction::Egress => (Side::Sources, Side::Targets),
        };
        let subjects: Vec<usize> = (layout.in_namespace(subject_side, layout.policy_namespace[position]).iter())
            .copied()
            .filter(|&c| policy.selects(self.representative(c)))
            .collect();
        if subjects.is_empty() {
            let role = if direction == Direction::Ingress { "pod with a probed port" } else { "pod" };
            return Err(NoWitness::because(format!("the policy selects no {role}")));
        }
        // Only the classes the rule's peers can match are candidates for the far end.
        let others: Vec<usize> = match self.index.rule_peers(position, direction, index) {
            None => layout.side(other_side).to_vec(),
            Some(classes) => {
                let mut others: Vec<usize> =
                    classes.into_iter().filter(|&c| layout.position(other_side, c) != usize::MAX).collect();
                others.sort_by_key(|&c| layout.position(other_side, c));
                others
            }
        };
        if others.is_empty() {
            let only_blocks = peers.iter().all(|peer| matches!(peer, Peer::IpBlock(_)));
            return Err(NoWitness::because(if only_blocks {
                "no pod pair reaches it: its only peers are ipBlocks that hold no probed pod's address (--to an address in them can witness it)"
            } else {
                "no pod pair reaches it: its peers match no probed pod"
            }));
        }
        let (subjects_with_pods, subjects_without) = self.planned_first(subject_side, &subjects);
        let (others_with_pods, others_without) = self.planned_first(other_side, &others);
        let all_subjects: Vec<usize> = subjects_with_pods.iter().chain(&subjects_without).copied().collect();
        let all_others: Vec<usize> = others_with_pods.iter().chain(&others_without).copied().collect();
        let mut search = WitnessSearch::default();
        for (subjects, others) in [(&subjects_with_pods, &others_with_pods), (&all_subjects, &all_others)] {
            if let Some(found) = self.search_pairs(rule, subjects, others, &mut search)? {
                return Ok(found);
            }
        }
        if search.out_of_time {
            self.budget.left_out_of_time();
            return Err(NoWitness::budget(Refused::Time));
        }
        Err(NoWitness::because(if search.allowed_by_rule {
            "no pod pair reaches it: the far side's policy denies every pair it allows"
        } else {
            "no pod pair reaches it: no selected pod and peer meet on a port it names that the prober tests (a named port no pod declares, a protocol left out)"
        }))
    }

    /// The search of [`Planner::find_witness`] over some subjects and far ends; `Ok(None)`
    /// when none of their pairs is a witness.
    fn search_pairs(
        &mut self,
        rule: RuleAt,
        subjects: &[usize],
        others: &[usize],
        search: &mut WitnessSearch,
    ) -> Result<Option<Witness>, NoWitness> {
        let (position, direction, index) = rule;
        let (cluster, layout) = (self.cluster, Rc::clone(&self.layout));
        let policy = &cluster.policies()[position];
        for &subject in subjects {
            for &other in others {
                let (source, destination) =
                    if direction == Direction::Ingress { (other, subject) } else { (subject, other) };
                let (from, to) = (self.representative(source), self.representative(destination));
                for &port in &layout.ports[destination] {
                    // The rule must allow it on its side, and the whole connection be allowed.
                    if !evaluate::rule_allows(cluster, policy, direction, index, from, to, port) {
                        continue;
                    }
                    search.allowed_by_rule = true;
                    if self.allowed(source, destination, port) {
                        match self.affordable(source, destination) {
                            Ok(()) => {
                                return Ok(Some((source, destination, port, self.verdict(source, destination, port))));
                            }
                            Err(Refused::Time) => search.out_of_time = true,
                            Err(refused) => {
                                self.budget.left_out();
                                return Err(NoWitness::budget(refused));
                            }
                        }
                    }
                    search.tries += 1;
                    if search.tries >= self.options.witness_search_limit {
                        return Err(NoWitness::because(format!(
                            "every pair it allows that was tried ({}) is denied by the other side's policy",
                            search.tries
                        )));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Every isolated class gets a probe that policy denies, from another namespace when
    /// possible, so a network that enforces nothing cannot pass.
    fn isolation(&mut self) {
        let layout = Rc::clone(&self.layout);
        for &destination in &layout.targets {
            if self.isolated(destination, Direction::Ingress) {
                let mut open = None;
                let found = self.first_ranked(destination, Side::Sources, |this, source| {
                    this.denied(source, destination, &mut open)
                });
                self.isolation_settled(found, open);
            }
        }
        for &source in &layout.sources {
            if self.isolated(source, Direction::Egress) {
                let mut open = None;
                let found = self.first_ranked(source, Side::Targets, |this, destination| {
                    this.denied(source, destination, &mut open)
                });
                self.isolation_settled(found, open);
            }
        }
    }

    /// Whether some policy of its namespace selects `class` for `direction`.
    fn isolated(&self, class: usize, direction: Direction) -> bool {
        let endpoint = self.representative(class);
        let policies = self.cluster.policies();
        (self.layout.namespaces[self.layout.namespace[class]].policies.iter())
            .any(|&p| policies[p].rules(direction).is_some() && policies[p].selects(endpoint))
    }

    /// Plans a probe from `source` to `destination` that policy denies and knows it denies,
    /// if there is one on a port of the destination; whether there is. The first denial
    /// whose answer a domain name or a tie of cluster policies leaves open is kept in
    /// `open` instead: that probe can only be inconclusive.
    fn denied(&mut self, source: usize, destination: usize, open: &mut Option<Witness>) -> bool {
        let layout = Rc::clone(&self.layout);
        for &port in &layout.ports[destination] {
            if !self.allowed(source, destination, port) {
                let verdict = self.verdict(source, destination, port);
                if verdict.not_known().is_some() {
                    open.get_or_insert((source, destination, port, verdict));
                    continue;
                }
                // The candidates offered fit the pod budget; refused by the probe budget or
                // planned already, the class is done either way. A source pod with no time
                // left is passed over for the next candidate.
                return self.add(source, Some(destination), port, &verdict, Purpose::Isolation) != Err(Refused::Time);
            }
        }
        false
    }

    /// After an isolated class's search: without a denial policy knows, the first open one
    /// found is planned (it fitted the pod budget when offered, and nothing was taken
    /// since); without either, the class is left out.
    fn isolation_settled(&mut self, found: bool, open: Option<Witness>) {
        if found {
            return;
        }
        match open {
            Some((source, destination, port, verdict)) => {
                let _ = self.add(source, Some(destination), port, &verdict, Purpose::Isolation);
            }
            None => self.isolation_left_out += 1,
        }
    }

    /// Offers `take` the candidates on `side` for a pair with `anchor` until it takes one:
    /// other namespaces first, then the anchor's own; within each, dev-like sources (or
    /// production-like destinations) first; among equals, classes with their probe pod
    /// planned before those that would need one, while the pod budget lasts. Returns
    /// whether one was taken.
    fn first_ranked(&mut self, anchor: usize, side: Side, mut take: impl FnMut(&mut Self, usize) -> bool) -> bool {
        let layout = Rc::clone(&self.layout);
        let anchor_cost = usize::from(!self.has_pod(side.other(), anchor));
        if anchor_cost > self.budget.left() {
            self.budget.left_out();
            return false;
        }
        let anchor_ns = layout.namespace[anchor];
        for same_namespace in [false, true] {
            for group in 0..2 {
                let wanted = |c: usize| {
                    (layout.namespace[c] == anchor_ns) == same_namespace && layout.rank_group(side, c) == group
                };
                let mut with_pods: Vec<usize> = match side {
                    Side::Sources => self.budget.sources(),
                    Side::Targets => self.budget.targets(),
                }
                .iter()
                .copied()
                .filter(|&c| wanted(c))
                .collect();
                with_pods.sort_by_key(|&c| layout.position(side, c));
                for c in with_pods {
                    if take(self, c) {
                        return true;
                    }
                }
                let candidates = match same_namespace {
                    true => layout.in_namespace(side, anchor_ns),
                    false => layout.by_rank(side, group),
                };
                for &c in candidates {
                    // Later groups may still have candidates with pods.
                    if anchor_cost + 1 > self.budget.left() {
                        self.budget.left_out();
                        break;
                    }
                    if !self.has_pod(side, c) && wanted(c) && take(self, c) {
                        return true;
                    }
                }
            }
        }
        false
    }

    /// The cluster DNS pods, as the workloads have them (the DNS Service's endpoints).
    fn dns_pods(&self) -> impl Iterator<Item = &'c Endpoint> {
        let workloads = self.workloads;
        self.options.dns_endpoints.iter().filter_map(move |id| workloads.endpoint(id))
    }

    /// One source per namespace checks DNS over UDP and TCP, at the real DNS pods: what
    /// policy says of them is read from their own labels, not their probe pod's. The
    /// source is a class with a probe pod already where the namespace has one.
    fn dns(&mut self) {
        let Some(dns) = self.dns_pods().next() else { return };
        let layout = Rc::clone(&self.layout);
        let mut namespaces_done = HashSet::new();
        for &first in &layout.sources {
            let namespace = layout.namespace[first];
            if !namespaces_done.insert(namespace) {
                continue;
            }
            let in_namespace = layout.in_namespace(Side::Sources, namespace);
            // A source pod planned already with time left, else any class with time left.
            let with_time = |c: &usize| self.budget.has_time(*c, false);
            let source = (in_namespace.iter().copied())
                .filter(with_time)
                .find(|&c| self.budget.has_source(c))
                .or_else(|| in_namespace.iter().copied().find(with_time))
                .unwrap_or(first);
            let mut left_out = false;
            for protocol in [Protocol::Udp, Protocol::Tcp] {
                if self.options.protocols.contains(&protocol) {
                    let port = PortProto::new(53, protocol);
                    let verdict = evaluate::verdict(self.cluster, self.representative(source), dns, port);
                    let added = self.add(source, None, port, &verdict, Purpose::Dns);
                    left_out |= matches!(added, Err(Refused::Pods | Refused::Time));
                }
            }
            self.dns_left_out += usize::from(left_out);
        }
    }

    /// Every source class to every address outside the cluster the run was given: an
    /// `ipBlock` rule to such an address has no pod pair to witness it. Classes with a
    /// source pod already first, then the others while the pod budget lasts.
    fn external(&mut self) {
        let layout = Rc::clone(&self.layout);
        let (mut sources, without): (Vec<usize>, Vec<usize>) =
            layout.sources.iter().partition(|&&c| self.budget.has_source(c));
        sources.extend(without);
        for (ip, port) in self.options.external.clone() {
            if !self.options.protocols.contains(&port.protocol) {
                continue;
            }
            let outside = Endpoint::external(ip);
            for &source in &sources {
                if self.probes.len() >= self.options.max_probes {
                    self.probe_budget_exhausted = true;
                    return;
                }
                if self.planned_external.contains(&(source, ip, port)) || self.budget.take(source, None).is_err() {
                    continue;
                }
                self.planned_external.insert((source, ip, port));
                let verdict = evaluate::verdict(self.cluster, self.representative(source), &outside, port);
                let mut covers: Vec<RuleRef> = verdict.egress.allowed_by.iter().map(|hit| hit.rule.clone()).collect();
                self.cover_cluster_rules(&verdict, &mut covers);
                self.push(source, Destination::External(ip), port, verdict.allowed, Purpose::External, covers);
            }
        }
    }

    /// The mirrors that send probes and whose policy denies them every cluster DNS pod on
    /// 53/UDP, where names resolve: none when the cluster DNS is not known.
    fn denied_dns(&self) -> BTreeSet<usize> {
        let dns: Vec<&Endpoint> = self.dns_pods().collect();
        let port = PortProto::new(53, Protocol::Udp);
        let sources: BTreeSet<usize> = self.probes.iter().map(|p| p.from).collect();
        (sources.into_iter())
            .filter(|&m| {
                let source = self.representative(self.mirrors[m].class);
                !dns.is_empty() && dns.iter().all(|pod| !evaluate::verdict(self.cluster, source, pod, port).allowed)
            })
            .collect()
    }

    /// Cross-namespace pairs until a budget runs out, dev → production first: first
    /// between probe pods already planned, then any the pod budget can pay for. Pairs are
    /// generated lazily in rank order: there are classes² of them, the budget is small.
    fn samples(&mut self) {
        let layout = Rc::clone(&self.layout);
        for between_planned in [true, false] {
            for rank in [0u8, 2, 4] {
                let sources: Vec<usize> = match between_planned {
                    true => {
                        let mut sources = self.budget.sources().to_vec();
                        sources.sort_by_key(|&c| layout.source_at[c]);
                        sources
                    }
                    false => layout.sources.clone(),
                };
                for source in sources {
                    let Some(wanted) = rank.checked_sub(layout.dev[source]).filter(|r| *r <= 2) else { continue };
                    let group = usize::from(wanted != 0);
                    let source_cost = usize::from(!self.budget.has_source(source));
                    if source_cost > self.budget.left() || !self.budget.has_time(source, true) {
                        continue;
                    }
                    // Targets that need a pod of their own only when the budget has one.
                    let targets: Vec<usize> = if between_planned || source_cost + 1 > self.budget.left() {
                        let mut targets: Vec<usize> = (self.budget.targets().iter().copied())
                            .filter(|&t| layout.rank_group(Side::Targets, t) == group)
                            .collect();
                        targets.sort_by_key(|&c| layout.target_at[c]);
                        targets
                    } else {
                        layout.targets_by_rank[group].clone()
                    };
                    for destination in targets {
                        if self.probes.len() >= self.options.max_probes {
                            self.probe_budget_exhausted = true;
                            return;
                        }
                        if layout.namespace[source] == layout.namespace[destination]
                            || self.budget.cost(source, Some(destination)) > self.budget.left()
                        {
                            continue;
                        }
                        if !self.budget.has_time(source, true) {
                            break;
                        }
                        if let Some(&port) = layout.ports[destination].first()
                            && !self.planned.contains(&(source, destination, port))
                        {
                            let verdict = self.verdict(source, destination, port);
                            let _ = self.add(source, Some(destination), port, &verdict, Purpose::Sample);
                        }
                    }
                }
            }
        }
    }

    fn finish(mut self) -> Plan {
        let unverified_intent = self.mark_intent();
        // Rules witnessed by later steps (addresses outside the cluster) are covered.
        let covered = self.coverage.covered.clone();
        self.coverage.uncovered.retain(|rule, _| !covered.contains(rule));
        self.coverage.budget.retain(|rule| !covered.contains(rule));
        if self.probe_budget_exhausted {
            self.notes.push(format!(
                "the probe budget of {} was reached; raise --max-probes to test more",
                self.options.max_probes
            ));
        }
        let (out_of_time, per_source) = self.budget.out_of_time();
        if out_of_time > 0 {
            let timing = &self.options.timing;
            let longest = timing.longest_probe(&self.options.paths);
            self.notes.push(format!(
                "the wall-time budget left out {out_of_time} probes: a source pod sends at most {per_source} probes a round, {} waves of {} in flight, each up to {} (--max-round-time {}); raise --max-round-time or --probe-concurrency to test more",
                per_source.div_ceil(timing.concurrency.max(1)),
                timing.concurrency,
                humantime::format_duration(longest),
                timing.max_round_time.map_or("unset: one wave".into(), |t| humantime::format_duration(t).to_string()),
            ));
        }
        if self.budget.exhausted() {
            let mut left_out = Vec::new();
            if !self.coverage.budget.is_empty() {
                left_out.push(format!("witnesses for {} rules", self.coverage.budget.len()));
            }
            if self.isolation_left_out > 0 {
                left_out.push(format!("denied probes into or out of {} isolated classes", self.isolation_left_out));
            }
            if self.dns_left_out > 0 {
                left_out.push(format!("DNS from {} namespaces", self.dns_left_out));
            }
            left_out.push("samples".into());
            self.notes.push(format!(
                "the probe-pod budget of {} was reached; it left out {}; raise --max-probe-pods to test more",
                self.options.max_probe_pods,
                left_out.join(", ")
            ));
        }
        Plan {
            mirrors: self.mirrors,
            probes: self.probes,
            coverage: self.coverage,
            notes: self.notes,
            unverified_intent,
            wall_time: Default::default(),
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
