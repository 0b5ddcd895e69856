//! Properties over generated clusters: the bulk matrix agrees with the explained evaluation
//! on every cell, and members of a class are interchangeable.

use std::collections::BTreeSet;
use std::net::IpAddr;

use fixedbitset::FixedBitSet;
use ipnet::IpNet;
use netcanary_policy::evaluate;
use netcanary_policy::model::IpBlock;
use netcanary_policy::port::{PortMatch, RulePort};
use netcanary_policy::selector::{Operator, Requirement};
use netcanary_policy::{
    Action, Cluster, ClusterPeer, ClusterPolicy, ClusterPolicyKind, ClusterPort, ClusterRule, ContainerPort, Direction,
    Endpoint, Labels, NamespaceScope, Node, Peer, Policy, PolicyIndex, PortProto, Protocol, Rule, Selector, Subject,
    Tier,
};
use proptest::prelude::*;

const KEYS: [&str; 3] = ["app", "tier", "env"];
const VALUES: [&str; 3] = ["a", "b", "c"];
const NAMESPACES: [&str; 3] = ["n0", "n1", "n2"];
const PORT_NAMES: [&str; 2] = ["http", "dns"];
const ADDRESSES: [&str; 8] =
    ["10.0.0.1", "10.0.0.2", "10.0.1.1", "192.168.0.1", "fd00::1", "fd00::2", "fd00:1::1", "2001:db8::1"];
const CIDRS: [&str; 8] =
    ["10.0.0.0/8", "10.0.0.0/24", "10.0.0.2/32", "0.0.0.0/0", "fd00::/16", "fd00::/64", "fd00::2/128", "::/0"];

fn labels() -> impl Strategy<Value = Labels> {
    prop::collection::btree_map(prop::sample::select(&KEYS[..]), prop::sample::select(&VALUES[..]), 0..3)
        .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

fn selector() -> impl Strategy<Value = Selector> {
    let requirement = (
        prop::sample::select(&KEYS[..]),
        0..4usize,
        prop::collection::btree_set(prop::sample::select(&VALUES[..]), 1..3),
    )
        .prop_map(|(key, op, values)| {
            let operator = [Operator::In, Operator::NotIn, Operator::Exists, Operator::DoesNotExist][op];
            let values: BTreeSet<String> = match operator {
                Operator::In | Operator::NotIn => values.into_iter().map(str::to_string).collect(),
                _ => BTreeSet::new(),
            };
            Requirement { key: key.to_string(), operator, values }
        });
    prop::collection::vec(requirement, 0..3).prop_map(Selector::new)
}

fn protocol() -> impl Strategy<Value = Protocol> {
    prop::sample::select(&Protocol::ALL[..])
}

fn ip_block() -> impl Strategy<Value = IpBlock> {
    (prop::sample::select(&CIDRS[..]), prop::collection::vec(prop::sample::select(&CIDRS[..]), 0..2)).prop_map(
        |(cidr, except)| {
            let cidr: IpNet = cidr.parse().unwrap();
            let except = except
                .into_iter()
                .map(|e| e.parse::<IpNet>().unwrap())
                .filter(|e| cidr.contains(&e.network()) && e.prefix_len() > cidr.prefix_len())
                .collect();
            IpBlock { cidr, except }
        },
    )
}

fn peer() -> impl Strategy<Value = Peer> {
    prop_oneof![
        (prop::option::of(selector()), selector()).prop_map(|(ns, pods)| Peer::Pods {
            namespaces: ns.map_or(NamespaceScope::Own, NamespaceScope::Selected),
            pods
        }),
        ip_block().prop_map(Peer::IpBlock),
    ]
}

fn rule_port() -> impl Strategy<Value = RulePort> {
    let port = prop_oneof![
        Just(PortMatch::Any),
        (79u16..82, 0u16..2).prop_map(|(first, extra)| PortMatch::Range { first, last: first + extra }),
        prop::sample::select(&PORT_NAMES[..]).prop_map(|n| PortMatch::Named(n.to_string())),
    ];
    (protocol(), port).prop_map(|(protocol, port)| RulePort { protocol, port })
}

fn rules() -> impl Strategy<Value = Vec<Rule>> {
    prop::collection::vec(
        (prop::collection::vec(peer(), 0..3), prop::collection::vec(rule_port(), 0..3))
            .prop_map(|(peers, ports)| Rule { peers, ports }),
        0..3,
    )
}

fn policy() -> impl Strategy<Value = Policy> {
    (prop::sample::select(&NAMESPACES[..]), selector(), prop::option::of(rules()), prop::option::of(rules())).prop_map(
        |(ns, pod_selector, ingress, egress)| Policy {
            namespace: ns.to_string(),
            name: String::new(),
            pod_selector,
            ingress,
            egress,
        },
    )
}

fn cluster_port() -> impl Strategy<Value = ClusterPort> {
    prop_oneof![
        (protocol(), 79u16..82, 0u16..2).prop_map(|(protocol, first, extra)| ClusterPort::Port(RulePort {
            protocol,
            port: PortMatch::Range { first, last: first + extra }
        })),
        prop::sample::select(&PORT_NAMES[..]).prop_map(|n| ClusterPort::Named(n.to_string())),
    ]
}

fn cluster_peer(direction: Direction) -> BoxedStrategy<ClusterPeer> {
    let pods = (selector(), selector()).prop_map(|(namespaces, pods)| ClusterPeer::Pods { namespaces, pods });
    match direction {
        Direction::Ingress => pods.boxed(),
        Direction::Egress => prop_oneof![
            3 => pods,
            1 => selector().prop_map(ClusterPeer::Nodes),
            1 => prop::collection::vec(prop::sample::select(&CIDRS[..]), 1..3)
                .prop_map(|c| ClusterPeer::Networks(c.into_iter().map(|c| c.parse().unwrap()).collect())),
            1 => Just(ClusterPeer::DomainNames(vec!["example.com".into()])),
        ]
        .boxed(),
    }
}

fn cluster_rules(direction: Direction) -> impl Strategy<Value = Vec<ClusterRule>> {
    let action = prop::sample::select(&[Action::Accept, Action::Deny, Action::Pass][..]);
    prop::collection::vec(
        (
            action,
            prop::collection::vec(cluster_peer(direction), 1..3),
            prop::collection::vec(cluster_port(), 0..3),
            any::<bool>(),
        )
            .prop_map(|(action, peers, ports, named)| ClusterRule {
                name: named.then(|| "r".to_string()),
                action,
                peers,
                ports,
            }),
        0..3,
    )
}

fn cluster_policy() -> impl Strategy<Value = ClusterPolicy> {
    (
        0..3usize,
        any::<bool>(),
        0u32..3,
        (selector(), selector()),
        cluster_rules(Direction::Ingress),
        cluster_rules(Direction::Egress),
    )
        .prop_map(|(kind, admin, priority, (namespaces, pods), ingress, egress)| ClusterPolicy {
            kind: [
                ClusterPolicyKind::ClusterNetworkPolicy,
                ClusterPolicyKind::AdminNetworkPolicy,
                ClusterPolicyKind::BaselineAdminNetworkPolicy,
            ][kind],
            name: String::new(),
            tier: if admin { Tier::Admin } else { Tier::Baseline },
            priority,
            subject: Subject { namespaces, pods },
            ingress,
            egress,
        })
}

fn node() -> impl Strategy<Value = Node> {
    (labels(), prop::collection::vec(prop::sample::select(&ADDRESSES[..]), 0..3)).prop_map(|(labels, addresses)| Node {
        name: String::new(),
        labels,
        addresses: addresses.into_iter().map(|a| a.parse().unwrap()).collect(),
    })
}

fn endpoint() -> impl Strategy<Value = Endpoint> {
    let ports = prop::collection::vec(
        (prop::option::of(prop::sample::select(&PORT_NAMES[..])), 79u16..82, protocol())
            .prop_map(|(name, port, protocol)| ContainerPort { name: name.map(str::to_string), port, protocol }),
        0..3,
    );
    let ips = prop::collection::vec(prop::sample::select(&ADDRESSES[..]), 0..3);
    (0..10u8, prop::sample::select(&NAMESPACES[..]), labels(), ips, ports).prop_map(|(kind, ns, labels, ips, ports)| {
        let ips: Vec<IpAddr> = ips.into_iter().map(|ip| ip.parse().unwrap()).collect();
        match kind {
            0 => Endpoint::external(ips.first().copied().unwrap_or("1.1.1.1".parse().unwrap())),
            1 => Endpoint::workload(ns, "Deployment", "w", labels).with_ports(ports),
            _ => {
                let mut pod = Endpoint::pod(ns, "p", labels).with_ips(ips).with_ports(ports);
                pod.host_network = kind == 2;
                pod
            }
        }
    })
}

fn cluster() -> impl Strategy<Value = Cluster> {
    (
        prop::collection::vec(labels(), 3),
        prop::collection::vec(endpoint(), 1..10),
        prop::collection::vec(policy(), 0..6),
        prop::collection::vec(cluster_policy(), 0..5),
        prop::collection::vec(node(), 0..3),
    )
        .prop_map(|(ns_labels, endpoints, policies, cluster_policies, nodes)| {
            let mut cluster = Cluster::new();
            for (ns, labels) in NAMESPACES.iter().zip(ns_labels) {
                cluster.set_namespace(ns, labels);
            }
            for (i, mut endpoint) in endpoints.into_iter().enumerate() {
                endpoint.id = format!("{}#{i}", endpoint.id); // ids stay unique
                cluster.add_endpoint(endpoint);
            }
            for (i, mut policy) in policies.into_iter().enumerate() {
                policy.name = format!("p{i}");
                cluster.add_policy(policy);
            }
            for (i, mut policy) in cluster_policies.into_iter().enumerate() {
                policy.name = format!("c{i}");
                cluster.add_cluster_policy(policy);
            }
            for (i, mut node) in nodes.into_iter().enumerate() {
                node.name = format!("node{i}");
                cluster.add_node(node);
            }
            cluster
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn bulk_matrix_equals_explained_evaluation(cluster in cluster(), port in 79u16..82, protocol in protocol()) {
        let port = PortProto::new(port, protocol);
        let index = PolicyIndex::new(&cluster);
        let matrix = index.matrix(port);
        let endpoints = cluster.endpoints();
        let rows = matrix.by_source();
        let (mut allowed, mut unknown) = (FixedBitSet::with_capacity(matrix.size()), FixedBitSet::with_capacity(matrix.size()));
        for (f, from) in endpoints.iter().enumerate() {
            rows.row(index.classes().class_of(f), &mut allowed, &mut unknown);
            for (t, to) in endpoints.iter().enumerate() {
                let v = evaluate::verdict(&cluster, from, to, port);
                let (cf, ct) = (index.classes().class_of(f), index.classes().class_of(t));
                prop_assert_eq!(allowed.contains(ct), v.allowed && v.unknown().is_none(), "row allowed {} -> {} {}", from.id, to.id, port);
                prop_assert_eq!(unknown.contains(ct), v.unknown().is_some(), "row unknown {} -> {} {}", from.id, to.id, port);
                prop_assert_eq!(matrix.egress_allows(cf, ct), v.egress.allowed, "egress {} -> {} {}", from.id, to.id, port);
                prop_assert_eq!(matrix.ingress_allows(cf, ct), v.ingress.allowed, "ingress {} -> {} {}", from.id, to.id, port);
                prop_assert_eq!(v.allowed, v.egress.allowed && v.ingress.allowed);
                prop_assert_eq!(matrix.direction_unknown(Direction::Egress, cf, ct), v.egress.unknown.is_some(), "egress unknown {} -> {} {}", from.id, to.id, port);
                prop_assert_eq!(matrix.direction_unknown(Direction::Ingress, cf, ct), v.ingress.unknown.is_some(), "ingress unknown {} -> {} {}", from.id, to.id, port);
                prop_assert_eq!(matrix.direction_tie(Direction::Egress, cf, ct), v.egress.tie.is_some(), "egress tie {} -> {} {}", from.id, to.id, port);
                prop_assert_eq!(matrix.direction_tie(Direction::Ingress, cf, ct), v.ingress.tie.is_some(), "ingress tie {} -> {} {}", from.id, to.id, port);
                prop_assert_eq!(matrix.unknown(cf, ct), v.unknown().is_some());
            }
        }
    }

    #[test]
    fn class_members_are_interchangeable(cluster in cluster(), port in 79u16..82) {
        let port = PortProto::new(port, Protocol::Tcp);
        let index = PolicyIndex::new(&cluster);
        let endpoints = cluster.endpoints();
        for class in 0..index.classes().len() {
            let members = index.classes().members(class);
            let first = &endpoints[members[0]];
            for &m in &members[1..] {
                for other in endpoints {
                    let same = |a: &netcanary_policy::Verdict, b: &netcanary_policy::Verdict| (a.allowed, a.unknown().is_some(), a.egress.tie.is_some() || a.ingress.tie.is_some()) == (b.allowed, b.unknown().is_some(), b.egress.tie.is_some() || b.ingress.tie.is_some());
                    prop_assert!(same(&evaluate::verdict(&cluster, first, other, port), &evaluate::verdict(&cluster, &endpoints[m], other, port)));
                    prop_assert!(same(&evaluate::verdict(&cluster, other, first, port), &evaluate::verdict(&cluster, other, &endpoints[m], port)));
                }
            }
        }
    }
}
