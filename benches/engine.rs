//! Policy engine at cluster scale: a synthetic cluster of 5,000 pods in 200 namespaces
//! with 1,000 policies (mixed selectors, named ports, ipBlocks) and 100 ClusterNetworkPolicies
//! (Admin and Baseline, Accept, Deny and Pass), the full pod × pod matrix on one port, and
//! the obvious alternative (evaluating each pair on its own) on a sample, in the same run.
//!
//! `cargo bench --bench engine` (options after `--`: `--pods N --namespaces N
//! --policies N --cluster-policies N --sample N`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

mod support;

use netcanary_policy::model::IpBlock;
use netcanary_policy::port::{PortMatch, RulePort};
use netcanary_policy::selector::{Operator, Requirement};
use netcanary_policy::{
    Action, Cluster, ClusterPeer, ClusterPolicy, ClusterPolicyKind, ClusterPort, ClusterRule, ContainerPort, Endpoint,
    Labels, NamespaceScope, Peer, Policy, PolicyIndex, PortProto, Protocol, Rule, Selector, Subject, Tier, evaluate,
};
use support::{Rng, option};

struct Config {
    pods: usize,
    namespaces: usize,
    policies: usize,
    cluster_policies: usize,
    sample: usize,
}

fn labels(pairs: &[(&str, String)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn requirement(key: &str, operator: Operator, values: &[String]) -> Requirement {
    Requirement { key: key.to_string(), operator, values: values.iter().cloned().collect() }
}

fn port(protocol: Protocol, port: PortMatch) -> RulePort {
    RulePort { protocol, port }
}

/// `unique_pods`: every pod gets an `instance` label that a policy reads, so no two pods
/// share a class: the worst case for the engine.
fn synthetic(config: &Config, unique_pods: bool) -> Cluster {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut cluster = Cluster::new();
    let teams = 20;
    for n in 0..config.namespaces {
        let env = ["production", "staging", "dev"][n % 3].to_string();
        cluster.set_namespace(&format!("ns-{n}"), labels(&[("team", format!("t{}", n % teams)), ("env", env)]));
    }
    cluster.set_namespace("kube-system", Labels::new());
    cluster.add_endpoint(
        Endpoint::pod("kube-system", "coredns", labels(&[("k8s-app", "kube-dns".into())]))
            .with_ips([IpAddr::V4(Ipv4Addr::new(10, 255, 0, 10))])
            .with_ports([
                ContainerPort { name: Some("dns".into()), port: 53, protocol: Protocol::Udp },
                ContainerPort { name: Some("dns-tcp".into()), port: 53, protocol: Protocol::Tcp },
            ]),
    );
    for p in 1..config.pods {
        let n = p % config.namespaces;
        let app = rng.below(12);
        let tier = ["frontend", "backend", "data"][app % 3].to_string();
        let mut pod_labels =
            labels(&[("app", format!("app-{app}")), ("tier", tier), ("version", format!("v{}", rng.below(2)))]);
        pod_labels.insert("pod-template-hash".into(), format!("{:08x}", rng.below(1 << 30)));
        if unique_pods {
            pod_labels.insert("instance".into(), format!("i{p}"));
        }
        let v4 = IpAddr::V4(Ipv4Addr::new(10, (n / 256) as u8, (n % 256) as u8, (p / config.namespaces) as u8 + 1));
        let mut ips = vec![v4];
        if p % 5 == 0 {
            ips.push(IpAddr::V6(Ipv6Addr::new(0xfd00, n as u16, 0, 0, 0, 0, 0, p as u16)));
        }
        let mut ports = vec![ContainerPort { name: Some("http".into()), port: 8080, protocol: Protocol::Tcp }];
        if app % 3 == 2 {
            ports.push(ContainerPort { name: Some("db".into()), port: 5432, protocol: Protocol::Tcp });
        }
        cluster.add_endpoint(
            Endpoint::pod(&format!("ns-{n}"), &format!("pod-{p}"), pod_labels).with_ips(ips).with_ports(ports),
        );
    }
    for i in 0..config.policies {
        let n = i % config.namespaces;
        let namespace = format!("ns-{n}");
        let app = |rng: &mut Rng| format!("app-{}", rng.below(12));
        let (pod_selector, ingress, egress) = match (i / config.namespaces) % 5 {
            // Default deny: ingress everywhere, egress too in a third of the namespaces.
            0 => (Selector::everything(), Some(vec![]), n.is_multiple_of(3).then(Vec::new)),
            1 => {
                let dns = Peer::Pods {
                    namespaces: NamespaceScope::Selected(Selector::everything()),
                    pods: Selector::from_labels([("k8s-app", "kube-dns")]),
                };
                let rule = Rule {
                    peers: vec![dns],
                    ports: vec![
                        port(Protocol::Udp, PortMatch::Range { first: 53, last: 53 }),
                        port(Protocol::Tcp, PortMatch::Range { first: 53, last: 53 }),
                    ],
                };
                // Only where egress is denied by default (elsewhere it would isolate egress).
                (Selector::everything(), None, n.is_multiple_of(3).then(|| vec![rule]))
            }
            2 => {
                let team = format!("t{}", rng.below(teams));
                let values = [app(&mut rng), app(&mut rng)];
                let from = Peer::Pods {
                    namespaces: NamespaceScope::Selected(Selector::new(vec![requirement(
                        "team",
                        Operator::In,
                        &[team],
                    )])),
                    pods: Selector::new(vec![
                        requirement("app", Operator::In, &values),
                        requirement("version", Operator::NotIn, &["v9".into()]),
                    ]),
                };
                let selected = if unique_pods {
                    Selector::new(vec![requirement(
                        "instance",
                        Operator::NotIn,
                        &[format!("i{}", rng.below(config.pods))],
                    )])
                } else {
                    Selector::from_labels([("app", app(&mut rng).as_str())])
                };
                (
                    selected,
                    Some(vec![Rule {
                        peers: vec![from],
                        ports: vec![port(Protocol::Tcp, PortMatch::Named("http".into()))],
                    }]),
                    None,
                )
            }
            3 => {
                let from = Peer::Pods {
                    namespaces: NamespaceScope::Own,
                    pods: Selector::new(vec![requirement("tier", Operator::Exists, &[])]),
                };
                let ports = vec![
                    port(Protocol::Tcp, PortMatch::Named("db".into())),
                    port(Protocol::Tcp, PortMatch::Range { first: 8000, last: 8100 }),
                ];
                (Selector::from_labels([("tier", "data")]), Some(vec![Rule { peers: vec![from], ports }]), None)
            }
            _ => {
                let internet = Peer::IpBlock(IpBlock {
                    cidr: "0.0.0.0/0".parse().unwrap(),
                    except: vec!["10.0.0.0/8".parse().unwrap(), "172.16.0.0/12".parse().unwrap()],
                });
                let neighbours = Peer::IpBlock(IpBlock {
                    cidr: format!("10.0.{}.0/24", rng.below(256)).parse().unwrap(),
                    except: vec![],
                });
                let rules = vec![
                    Rule {
                        peers: vec![internet],
                        ports: vec![port(Protocol::Tcp, PortMatch::Range { first: 443, last: 443 })],
                    },
                    Rule { peers: vec![neighbours], ports: vec![] },
                ];
                let selected =
                    Selector::new(vec![requirement("tier", Operator::In, &["frontend".into(), "backend".into()])]);
                (selected, None, n.is_multiple_of(3).then_some(rules))
            }
        };
        cluster.add_policy(Policy { namespace, name: format!("policy-{i}"), pod_selector, ingress, egress });
    }
    add_cluster_policies(config, &mut cluster, &mut rng);
    cluster
}

/// Cluster policies in both tiers: subjects by namespace labels or by pod labels, rules
/// with every action, peers by namespace, by pod and by network, with and without ports.
fn add_cluster_policies(config: &Config, cluster: &mut Cluster, rng: &mut Rng) {
    let teams = 20;
    let actions = [Action::Accept, Action::Deny, Action::Pass];
    for i in 0..config.cluster_policies {
        let tier = if i % 5 < 3 { Tier::Admin } else { Tier::Baseline };
        let subject = match i % 3 {
            0 => Subject {
                namespaces: Selector::from_labels([("team", format!("t{}", rng.below(teams)).as_str())]),
                pods: Selector::everything(),
            },
            1 => Subject {
                namespaces: Selector::from_labels([("env", ["production", "staging", "dev"][rng.below(3)])]),
                pods: Selector::from_labels([("tier", ["frontend", "backend", "data"][rng.below(3)])]),
            },
            _ => Subject::default(),
        };
        let rule = |rng: &mut Rng, egress: bool| {
            let action = if tier == Tier::Baseline { actions[rng.below(2)] } else { actions[rng.below(3)] };
            let peer = match rng.below(if egress { 4 } else { 3 }) {
                0 => ClusterPeer::Pods {
                    namespaces: Selector::from_labels([("team", format!("t{}", rng.below(teams)).as_str())]),
                    pods: Selector::everything(),
                },
                1 => ClusterPeer::Pods {
                    namespaces: Selector::everything(),
                    pods: Selector::from_labels([("app", format!("app-{}", rng.below(12)).as_str())]),
                },
                2 => ClusterPeer::Pods {
                    namespaces: Selector::from_labels([("env", "dev")]),
                    pods: Selector::new(vec![requirement("tier", Operator::In, &["frontend".into(), "data".into()])]),
                },
                _ => ClusterPeer::Networks(vec![format!("10.{}.0.0/16", rng.below(2)).parse().unwrap()]),
            };
            let ports = match rng.below(4) {
                0 => vec![],
                1 => vec![ClusterPort::Port(port(Protocol::Tcp, PortMatch::Range { first: 8080, last: 8080 }))],
                2 => vec![ClusterPort::Port(port(Protocol::Tcp, PortMatch::Range { first: 8000, last: 8100 }))],
                _ if egress => vec![ClusterPort::Port(port(Protocol::Udp, PortMatch::Range { first: 53, last: 53 }))],
                _ => vec![ClusterPort::Named("http".into())],
            };
            ClusterRule { name: None, action, peers: vec![peer], ports }
        };
        let ingress = (0..rng.below(4)).map(|_| rule(rng, false)).collect();
        let egress = (0..rng.below(4)).map(|_| rule(rng, true)).collect();
        cluster.add_cluster_policy(ClusterPolicy {
            kind: ClusterPolicyKind::ClusterNetworkPolicy,
            name: format!("cnp-{i}"),
            tier,
            priority: rng.below(100) as u32,
            subject,
            ingress,
            egress,
        });
    }
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn run(config: &Config, unique_pods: bool) {
    let port = PortProto::new(8080, Protocol::Tcp);
    let started = Instant::now();
    let cluster = synthetic(config, unique_pods);
    let built = started.elapsed();

    let started = Instant::now();
    let index = PolicyIndex::new(&cluster);
    let indexed = started.elapsed();
    let matrix = index.matrix(port);
    let computed = started.elapsed() - indexed;
    let n = cluster.endpoints().len();
    let class_of: Vec<usize> = (0..n).map(|i| index.classes().class_of(i)).collect();
    // Answer every pod pair: the full matrix, not just the class matrix.
    let mut allowed = 0u64;
    for &s in &class_of {
        for &d in &class_of {
            allowed += u64::from(matrix.allowed(s, d));
        }
    }
    let bulk = started.elapsed();
    let cells = (n * n) as f64;

    // The obvious alternative: evaluate each pair on its own, on a sample.
    let mut rng = Rng(7);
    let endpoints = cluster.endpoints();
    let started = Instant::now();
    let mut agree = 0;
    for _ in 0..config.sample {
        let (s, d) = (rng.below(n), rng.below(n));
        let v = evaluate::verdict(&cluster, &endpoints[s], &endpoints[d], port);
        agree += usize::from(v.allowed == matrix.allowed(class_of[s], class_of[d]));
    }
    let naive = started.elapsed();
    assert_eq!(agree, config.sample, "bulk and per-pair evaluation disagree");
    let bulk_rate = cells / bulk.as_secs_f64();
    let naive_rate = config.sample as f64 / naive.as_secs_f64();

    let case = if unique_pods { "worst case: every pod its own class" } else { "realistic: replicas share labels" };
    println!("\n{case}");
    println!(
        "  cluster          {n} pods, {} namespaces, {} policies, {} cluster policies (built in {})",
        config.namespaces + 1,
        cluster.policies().len(),
        cluster.cluster_policies().len(),
        secs(built)
    );
    println!("  classes          {}", index.classes().len());
    println!("  full matrix      {n} x {n} = {} verdicts on {port} in {} ({} allowed)", n * n, secs(bulk), allowed);
    println!(
        "                   (index {}, class matrix {}, every pod pair read {})",
        secs(indexed),
        secs(computed),
        secs(bulk - indexed - computed)
    );
    println!("  bulk engine      {:>14.0} verdicts/s", bulk_rate);
    println!(
        "  per-pair (naive) {:>14.0} verdicts/s  (sample of {}, {}; all agree with the matrix)",
        naive_rate,
        config.sample,
        secs(naive)
    );
    println!("  speed-up         {:>14.0} x", bulk_rate / naive_rate);
    println!("  naive full matrix would take ~{:.0} s", cells / naive_rate);
    println!("  peak memory      {:.1} MiB (whole process so far)", peak_rss_mib());
}

fn main() {
    let config = Config {
        pods: option("--pods", 5000),
        namespaces: option("--namespaces", 200),
        policies: option("--policies", 1000),
        cluster_policies: option("--cluster-policies", 100),
        sample: option("--sample", 20_000),
    };
    println!(
        "netcanary policy engine benchmark ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    run(&config, false);
    run(&config, true);
}
