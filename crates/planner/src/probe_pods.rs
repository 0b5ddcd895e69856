//! The run's probe pods as the engine sees them, once they exist: the snapshot with every
//! probe pod added with the labels it really carries, its IP and its ports. Expectations are
//! computed for these pods, not for the workloads they stand in for, because policy applies
//! to the packets the probe pods send — their labels and addresses are what the network
//! judges.
//!
//! Also the enforcement canary, which every run adds to its plan.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use netcanary_policy::{Cluster, ContainerPort, Endpoint, Labels, PortProto, Protocol, Verdict, evaluate};

use crate::mirror::with_netcanary_labels;
use crate::plan::{Destination, Mirror, Plan, PlannedProbe, ProbePath, Purpose};

/// Which side of probes a probe pod is on; a class can have a pod on each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Source,
    Target,
}

/// Where the run's probe pods came up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    /// The IP of each source mirror's first pod that ran (by mirror index).
    pub sources: HashMap<usize, IpAddr>,
    /// Each target pod created (by mirror index), with its IP once it has one.
    pub targets: HashMap<usize, Option<IpAddr>>,
}

/// The snapshot's cluster with the run's probe pods in it.
#[derive(Clone, Debug)]
pub struct ProbePodCluster {
    pub cluster: Cluster,
    /// The endpoint that DNS probes are judged against: the first cluster DNS pod.
    dns_endpoint: Option<String>,
    targets: BTreeSet<usize>,
}

impl ProbePodCluster {
    /// Adds a source pod for every mirror that sends probes (with its IP when one of its
    /// pods ran) and a target pod for every target created.
    pub fn new(snapshot: &Cluster, plan: &Plan, run_id: &str, placement: &Placement, dns_endpoints: &[String]) -> Self {
        let mut cluster = snapshot.clone();
        let sources: BTreeSet<usize> = plan.probes.iter().map(|p| p.from).collect();
        for &m in &sources {
            let ip = placement.sources.get(&m).copied();
            cluster.add_endpoint(endpoint(run_id, &plan.mirrors[m], ip, Role::Source));
        }
        for (&m, &ip) in &placement.targets {
            cluster.add_endpoint(endpoint(run_id, &plan.mirrors[m], ip, Role::Target));
        }
        Self {
            cluster,
            dns_endpoint: dns_endpoints.first().cloned(),
            targets: placement.targets.keys().copied().collect(),
        }
    }

    /// What policy says for probe `p` between the probe pods themselves; `None` when a
    /// side does not exist (its target was never created, or there is no DNS pod).
    pub fn verdict(&self, plan: &Plan, p: usize) -> Option<Verdict> {
        let probe = &plan.probes[p];
        let source = self.cluster.endpoint(&endpoint_id(&plan.mirrors[probe.from], Role::Source))?;
        let destination = match probe.to {
            Destination::Dns => self.cluster.endpoint(self.dns_endpoint.as_deref()?)?,
            Destination::Mirror(m) if self.targets.contains(&m) => {
                self.cluster.endpoint(&endpoint_id(&plan.mirrors[m], Role::Target))?
            }
            Destination::Mirror(_) => return None,
            Destination::External(ip) => {
                return Some(evaluate::verdict(&self.cluster, source, &Endpoint::external(ip), probe.port));
            }
        };
        Some(evaluate::verdict(&self.cluster, source, destination, probe.port))
    }
}

/// The id of a probe pod in the probe-pod cluster.
pub fn endpoint_id(mirror: &Mirror, role: Role) -> String {
    let role = match role {
        Role::Source => "source",
        Role::Target => "target",
    };
    format!("{}/netcanary-{role}-{}", mirror.namespace, mirror.stands_for.replace('/', "-"))
}

/// A probe pod as the engine sees it: the labels it really carries, its IP, its ports.
fn endpoint(run_id: &str, mirror: &Mirror, ip: Option<IpAddr>, role: Role) -> Endpoint {
    let labels = with_netcanary_labels(mirror.labels.clone(), run_id);
    let ports = mirror.listen.iter().map(|p| ContainerPort {
        name: mirror.port_names.get(p).cloned(),
        port: p.port,
        protocol: p.protocol,
    });
    let id = endpoint_id(mirror, role);
    let name = id.split_once('/').map_or(id.as_str(), |(_, name)| name);
    let mut endpoint = Endpoint::pod(&mirror.namespace, name, labels).with_ips(ip).with_ports(ports);
    endpoint.workload = Some(mirror.workload.clone());
    endpoint
}

/// What reports and metrics name the canary's pods.
pub const CANARY_WORKLOAD: &str = "canary";
/// The port the canary's target listens on.
pub const CANARY_PORT: PortProto = PortProto { port: 8080, protocol: Protocol::Tcp };

/// Adds the enforcement canary to the plan: a source and a target in netcanary's own
/// namespace (where netcanary's default-deny policy isolates every pod), with no copied
/// labels, and a probe between them that policy denies. Returns the canary probe's index.
pub fn add_canary(plan: &mut Plan, namespace: &str) -> usize {
    let mirror = |listen: BTreeSet<PortProto>| Mirror {
        class: usize::MAX,
        namespace: namespace.to_string(),
        labels: Labels::new(),
        dropped_labels: Vec::new(),
        stands_for: CANARY_WORKLOAD.into(),
        workload: CANARY_WORKLOAD.into(),
        members: 0,
        listen,
        port_names: BTreeMap::new(),
    };
    plan.mirrors.push(mirror(BTreeSet::new()));
    plan.mirrors.push(mirror(BTreeSet::from([CANARY_PORT])));
    let (from, to) = (plan.mirrors.len() - 2, plan.mirrors.len() - 1);
    plan.probes.push(PlannedProbe {
        from,
        to: Destination::Mirror(to),
        port: CANARY_PORT,
        expected_allowed: false,
        purpose: Purpose::Isolation,
        covers: Vec::new(),
        intent: None,
        path: ProbePath::Pod,
    });
    plan.probes.len() - 1
}

#[cfg(test)]
mod tests {
    use netcanary_policy::port::{PortMatch, RulePort};
    use netcanary_policy::{NamespaceScope, Peer, Policy, Rule, Selector};

    use super::*;

    const WEB: PortProto = PortProto { port: 80, protocol: Protocol::Tcp };

    fn app(value: &str) -> Labels {
        Labels::from([("app".to_string(), value.to_string())])
    }

    fn mirror(namespace: &str, name: &str, listen: &[PortProto]) -> Mirror {
        Mirror {
            class: 0,
            namespace: namespace.into(),
            labels: app(name),
            dropped_labels: Vec::new(),
            stands_for: format!("{namespace}/{name}-0"),
            workload: format!("deployment/{name}"),
            members: 1,
            listen: listen.iter().copied().collect(),
            port_names: BTreeMap::new(),
        }
    }

    /// shop/web admits only pods labelled app=api on 80/TCP; api and cron probe it.
    fn plan_and_cluster() -> (Plan, Cluster) {
        plan_and_cluster_on(PortMatch::Range { first: 80, last: 80 })
    }

    /// The same, with web's rule on `port` (TCP).
    fn plan_and_cluster_on(port: PortMatch) -> (Plan, Cluster) {
        let mut cluster = Cluster::new();
        cluster.add_policy(Policy {
            namespace: "shop".into(),
            name: "web-from-api".into(),
            pod_selector: Selector::from_labels([("app", "web")]),
            ingress: Some(vec![Rule {
                peers: vec![Peer::Pods {
                    namespaces: NamespaceScope::Own,
                    pods: Selector::from_labels([("app", "api")]),
                }],
                ports: vec![RulePort { protocol: Protocol::Tcp, port }],
            }]),
            egress: None,
        });
        let plan = Plan {
            mirrors: vec![mirror("shop", "api", &[]), mirror("shop", "cron", &[]), mirror("shop", "web", &[WEB])],
            probes: [0, 1]
                .into_iter()
                .map(|from| PlannedProbe {
                    from,
                    to: Destination::Mirror(2),
                    port: WEB,
                    expected_allowed: from == 0,
                    purpose: Purpose::AllowRule,
                    covers: Vec::new(),
                    intent: None,
                    path: ProbePath::Pod,
                })
                .collect(),
            ..Plan::default()
        };
        (plan, cluster)
    }

    #[test]
    fn judges_the_probe_pods_by_the_labels_they_carry() {
        let (plan, cluster) = plan_and_cluster();
        let placement = Placement {
            sources: HashMap::from([(0, "10.0.0.1".parse().unwrap())]),
            targets: HashMap::from([(2, Some("10.0.0.3".parse().unwrap()))]),
        };
        let pods = ProbePodCluster::new(&cluster, &plan, "r1", &placement, &[]);
        let allowed = pods.verdict(&plan, 0).expect("both probe pods exist");
        assert!(allowed.allowed, "api's probe pod carries app=api: {allowed:?}");
        let denied = pods.verdict(&plan, 1).expect("a source whose pod never ran still has labels");
        assert!(!denied.allowed, "cron is not admitted: {denied:?}");
        let target = pods.cluster.endpoint("shop/netcanary-target-shop-web-0").expect("target added");
        assert_eq!(target.labels.get("netcanary.io/run-id").map(String::as_str), Some("r1"));
        assert_eq!(target.ips, vec!["10.0.0.3".parse::<IpAddr>().unwrap()]);
        assert!(pods.cluster.endpoint("shop/netcanary-source-shop-cron-0").unwrap().ips.is_empty());
    }

    /// A rule's named port matches the target pod through the names it declares: with the
    /// workload's name for the port, api is admitted; without it, the rule matches nothing.
    #[test]
    fn named_ports_match_the_names_the_target_pod_declares() {
        let (mut plan, cluster) = plan_and_cluster_on(PortMatch::Named("http".into()));
        let placement = Placement {
            sources: HashMap::from([(0, "10.0.0.1".parse().unwrap())]),
            targets: HashMap::from([(2, Some("10.0.0.3".parse().unwrap()))]),
        };
        for (names, admitted) in [(BTreeMap::from([(WEB, "http".to_string())]), true), (BTreeMap::new(), false)] {
            plan.mirrors[2].port_names = names.clone();
            let pods = ProbePodCluster::new(&cluster, &plan, "r1", &placement, &[]);
            let verdict = pods.verdict(&plan, 0).expect("both probe pods exist");
            assert_eq!(verdict.allowed, admitted, "port names {names:?}: {verdict:?}");
        }
    }

    #[test]
    fn no_verdict_without_a_target_or_a_dns_pod() {
        let (mut plan, cluster) = plan_and_cluster();
        plan.probes.push(PlannedProbe {
            from: 0,
            to: Destination::Dns,
            port: PortProto { port: 53, protocol: Protocol::Udp },
            expected_allowed: true,
            purpose: Purpose::Dns,
            covers: Vec::new(),
            intent: None,
            path: ProbePath::Service,
        });
        let pods = ProbePodCluster::new(&cluster, &plan, "r1", &Placement::default(), &[]);
        assert_eq!(pods.verdict(&plan, 0), None, "the target was never created");
        assert_eq!(pods.verdict(&plan, 2), None, "no DNS pod to judge against");
    }

    #[test]
    fn the_canary_is_a_denied_probe_between_two_unlabelled_pods() {
        let (mut plan, _) = plan_and_cluster();
        let canary = add_canary(&mut plan, "netcanary");
        let probe = &plan.probes[canary];
        assert_eq!(canary, 2);
        assert!(!probe.expected_allowed);
        let Destination::Mirror(to) = probe.to else { panic!("the canary probes a target pod") };
        for m in [probe.from, to] {
            assert_eq!(plan.mirrors[m].namespace, "netcanary");
            assert!(plan.mirrors[m].labels.is_empty());
        }
        assert_eq!(plan.mirrors[to].listen, BTreeSet::from([CANARY_PORT]));
    }
}
