//! The planner on the bundled example cluster: coverage of every rule that can be
//! exercised, a denial for every isolated class, DNS per namespace, and the budget.

use std::collections::BTreeSet;
use std::path::PathBuf;

use netcanary_objects::load_paths;
use netcanary_planner::{Destination, NamespaceFilter, Options, Plan, ProbePath, Purpose, Timing, plan};
use netcanary_policy::{Cluster, Direction, PortProto, RuleRef, Selector};

fn example() -> Cluster {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/cluster");
    let loaded = load_paths(&[dir], "default");
    assert!(!loaded.has_errors());
    loaded.cluster
}

/// A cluster from manifests in `text`, which must load without errors.
fn load(name: &str, text: &str) -> Cluster {
    let mut loader = netcanary_objects::Loader::new("default");
    loader.load_str(name, text);
    let loaded = loader.finish();
    assert!(!loaded.has_errors(), "{name}: {:#?}", loaded.diagnostics);
    loaded.cluster
}

fn options() -> Options {
    Options { dns_endpoints: vec!["kube-system/deployment/coredns".into()], ..Options::default() }
}

fn rule(policy: &str, direction: Direction, index: usize) -> RuleRef {
    RuleRef { policy: policy.into(), direction, index }
}

fn describe(plan: &Plan, probe: usize) -> String {
    let p = &plan.probes[probe];
    let to = match p.to {
        Destination::Mirror(m) => plan.mirrors[m].stands_for.clone(),
        Destination::Dns => "dns".into(),
        Destination::External(ip) => ip.to_string(),
    };
    format!("{} -> {to} {}", plan.mirrors[p.from].stands_for, p.port)
}

#[test]
fn every_reachable_rule_gets_a_witness() {
    let cluster = example();
    let plan = plan(&cluster, &options());
    let witnessed = rule("production/allow-api-to-db", Direction::Ingress, 0);
    assert!(plan.coverage.covered.contains(&witnessed), "{:#?}", plan.coverage);
    let probe = plan.probes.iter().position(|p| p.covers.contains(&witnessed)).unwrap();
    assert!(plan.probes[probe].expected_allowed);
    assert!(describe(&plan, probe).ends_with("production/statefulset/db 5432/TCP"), "{}", describe(&plan, probe));

    // staging's api -> db rule can never be exercised: the api's egress denies it.
    let dead = rule("staging/allow-api-to-db", Direction::Ingress, 0);
    assert!(plan.coverage.uncovered[&dead].contains("no pod pair reaches it"), "{:#?}", plan.coverage.uncovered);
    // The internet rule names no pod at all.
    assert!(plan.coverage.uncovered.contains_key(&rule("production/allow-api-egress", Direction::Egress, 1)));
    assert_eq!(plan.coverage.rules, 10, "4 rules of the starter kits, 4 of production, 2 of staging");
    assert_eq!(plan.coverage.covered.len() + plan.coverage.uncovered.len(), plan.coverage.rules);
    assert!(plan.coverage.ratio() > 0.5 && plan.coverage.ratio() < 1.0);
}

/// An address outside the cluster, given to the run, is probed from every source class,
/// expected as the `ipBlock`s say, and witnesses the rule no pod pair can: production's api
/// may reach 443/TCP anywhere but the RFC 1918 ranges.
#[test]
fn addresses_outside_the_cluster_are_probed_from_every_source_and_witness_ip_blocks() {
    let cluster = example();
    let outside: PortProto = "443/TCP".parse().unwrap();
    let (public, private) = ("1.1.1.1".parse().unwrap(), "10.1.2.3".parse().unwrap());
    let plan = plan(&cluster, &Options { external: vec![(public, outside), (private, outside)], ..options() });
    let external: Vec<usize> =
        (0..plan.probes.len()).filter(|&i| plan.probes[i].purpose == Purpose::External).collect();
    let sources: std::collections::BTreeSet<usize> = plan.probes.iter().map(|p| p.from).collect();
    assert_eq!(external.len(), 2 * sources.len(), "every source class, to each address");
    let expected = |from: &str, to: &str| {
        let i = external.iter().copied().find(|&i| describe(&plan, i) == format!("{from} -> {to} 443/TCP"));
        plan.probes[i.unwrap_or_else(|| panic!("no probe {from} -> {to}"))].expected_allowed
    };
    assert!(expected("production/deployment/api", "1.1.1.1"), "allowed by the internet rule");
    assert!(!expected("production/deployment/api", "10.1.2.3"), "10.0.0.0/8 is excepted");
    assert!(expected("dev/deployment/api", "10.1.2.3"), "dev isolates no egress");
    assert!(!expected("staging/statefulset/db", "1.1.1.1"), "staging's default deny isolates the db's egress");
    let internet = rule("production/allow-api-egress", Direction::Egress, 1);
    assert!(plan.coverage.covered.contains(&internet), "{:#?}", plan.coverage.uncovered);
}

#[test]
fn every_isolated_class_gets_a_denied_probe() {
    let cluster = example();
    let plan = plan(&cluster, &options());
    for target in ["production/statefulset/db", "production/deployment/api", "staging/statefulset/db"] {
        let denied = plan.probes.iter().enumerate().find(|(i, p)| {
            !p.expected_allowed
                && p.purpose == Purpose::Isolation
                && describe(&plan, *i).contains(&format!("-> {target} "))
        });
        assert!(denied.is_some(), "no denied probe into {target}");
    }
    // Production's ingress denial is probed from a dev-like namespace first (dev and
    // staging rank alike), reusing the source pod a witness already needs.
    let into_db =
        plan.probes.iter().enumerate().find(|(i, p)| {
            p.purpose == Purpose::Isolation && describe(&plan, *i).contains("-> production/statefulset/db")
        });
    let from = describe(&plan, into_db.unwrap().0);
    assert!(from.starts_with("dev/") || from.starts_with("staging/"), "{from}");
    let source = plan.probes[into_db.unwrap().0].from;
    assert!(
        plan.probes.iter().any(|p| p.from == source && p.purpose == Purpose::AllowRule),
        "{from}: not a source pod a witness planned"
    );
}

#[test]
fn dns_is_checked_from_every_namespace_over_udp_and_tcp() {
    let plan = plan(&example(), &options());
    let dns: Vec<&netcanary_planner::PlannedProbe> = plan.probes.iter().filter(|p| p.to == Destination::Dns).collect();
    assert_eq!(dns.len(), 5 * 2);
    assert!(dns.iter().all(|p| p.expected_allowed && p.port.port == 53));
    assert!(dns.iter().any(|p| p.port == PortProto::new(53, netcanary_policy::Protocol::Tcp)));
}

#[test]
fn mirrors_copy_only_policy_relevant_labels_and_listen_on_probed_ports() {
    let plan = plan(&example(), &options());
    let db = plan.mirrors.iter().find(|m| m.stands_for == "production/statefulset/db").unwrap();
    assert_eq!(db.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(), ["app=db"]);
    assert!(db.listen.contains(&"5432/TCP".parse().unwrap()));
    let api = plan.mirrors.iter().find(|m| m.stands_for == "production/deployment/api").unwrap();
    assert!(!api.labels.contains_key("tier"), "no policy reads tier");
}

#[test]
fn the_budget_is_respected_and_reported() {
    let options = Options { max_probes: 3, ..options() };
    let plan = plan(&example(), &options);
    assert_eq!(plan.probes.len(), 3);
    assert!(plan.notes.iter().any(|n| n.contains("--max-probes")));
    assert!(plan.coverage.uncovered.values().any(|r| r.contains("--max-probes")), "{:#?}", plan.coverage);
    assert!(!plan.coverage.budget.is_empty());
}

/// The budget counts probe pods: witnesses reuse the pods planned already, and what does
/// not fit is named, rule by rule, apart from the rules no probe can cover.
#[test]
fn the_probe_pod_budget_is_respected_and_reported() {
    let everything = plan(&example(), &options());
    let coverable = everything.coverage.coverable();
    assert_eq!(coverable, everything.coverage.covered.len(), "the default budget covers every coverable rule");
    for limit in [0, 1, 3, 5] {
        let plan = plan(&example(), &Options { max_probe_pods: limit, ..options() });
        assert!(plan.probe_pods() <= limit, "{} probe pods for a budget of {limit}", plan.probe_pods());
        assert_eq!(plan.coverage.coverable(), coverable, "budget {limit}: {:#?}", plan.coverage);
        assert!(plan.coverage.covered.len() < coverable, "budget {limit} covers everything");
        for rule in &plan.coverage.budget {
            assert_eq!(plan.coverage.uncovered[rule], "the probe-pod budget (--max-probe-pods) ran out");
        }
        assert!(plan.notes.iter().any(|n| n.contains("--max-probe-pods")), "{:?}", plan.notes);
    }
    let three = plan(&example(), &Options { max_probe_pods: 3, ..options() });
    assert!(!three.coverage.covered.is_empty(), "three pods witness something");
    assert!(three.probes.len() > 3, "probes from pods planned already cost no pod: {}", three.probes.len());
}

#[test]
fn targets_behind_not_ready_services_are_not_mirrored() {
    let options = Options {
        not_ready_services: vec![("production".into(), Selector::from_labels([("app", "db")]))],
        ..options()
    };
    let plan = plan(&example(), &options);
    assert!(plan.mirrors.iter().all(|m| m.stands_for != "production/statefulset/db" || m.listen.is_empty()));
    assert!(plan.notes.iter().any(|n| n.contains("production/statefulset/db is not mirrored as a target")));
}

#[test]
fn unprobed_namespaces_get_no_probe_pods_and_their_rules_are_not_counted() {
    let everything = plan(&example(), &options());
    let options = Options { unprobed_namespaces: vec!["production".into()], ..options() };
    let plan = plan(&example(), &options);
    let in_production: Vec<&str> =
        plan.mirrors.iter().filter(|m| m.namespace == "production").map(|m| m.stands_for.as_str()).collect();
    assert!(in_production.is_empty(), "probe pods in an unprobed namespace: {in_production:?}");
    assert!(everything.mirrors.iter().any(|m| m.namespace == "production"), "the control plan probes production");
    let all_rules = || everything.coverage.covered.iter().chain(everything.coverage.uncovered.keys());
    let production_rules = all_rules().filter(|r| r.policy.starts_with("production/")).count();
    assert!(production_rules > 0);
    assert_eq!(plan.coverage.rules, everything.coverage.rules - production_rules, "{:#?}", plan.coverage);
    assert!(
        plan.coverage
            .covered
            .iter()
            .chain(plan.coverage.uncovered.keys())
            .all(|r| !r.policy.starts_with("production/"))
    );
    assert!(plan.notes.iter().any(|n| n.contains("pods in namespace production are not probed")), "{:?}", plan.notes);
}

#[test]
fn a_run_can_probe_only_some_namespaces_by_name_or_label() {
    let everything = plan(&example(), &options());
    let probed_namespaces =
        |plan: &Plan| -> BTreeSet<String> { plan.mirrors.iter().map(|m| m.namespace.clone()).collect() };
    assert!(probed_namespaces(&everything).len() > 2, "the control plan probes several namespaces");
    let by_name =
        NamespaceFilter { names: Some(BTreeSet::from(["production".to_string(), "dev".to_string()])), selector: None };
    let by_label = NamespaceFilter { names: None, selector: Some(Selector::from_labels([("env", "production")])) };
    let by_both = NamespaceFilter {
        names: Some(BTreeSet::from(["staging".to_string(), "dev".to_string()])),
        selector: Some(Selector::from_labels([("env", "staging")])),
    };
    for (filter, want, left_out) in [
        (by_name, &["dev", "production"][..], "staging"),
        (by_label, &["production"][..], "staging"),
        (by_both, &["staging"][..], "production"),
    ] {
        let plan = plan(&example(), &Options { probed_namespaces: filter.clone(), ..options() });
        let want: BTreeSet<String> = want.iter().map(|n| n.to_string()).collect();
        assert_eq!(probed_namespaces(&plan), want, "{filter:?}");
        let counted = plan.coverage.covered.iter().chain(plan.coverage.uncovered.keys());
        assert!(
            counted.clone().all(|r| want.iter().any(|n| r.policy.starts_with(&format!("{n}/")))),
            "{filter:?}: rules of namespaces it does not probe are not counted: {:#?}",
            plan.coverage
        );
        assert!(counted.count() > 0, "{filter:?}: the probed namespaces' rules are counted");
        assert!(
            plan.notes.iter().any(|n| n.contains(left_out) && n.contains("outside the namespaces this run probes")),
            "{filter:?}: {:?}",
            plan.notes
        );
    }
}

/// Pods whose policies read labels a probe pod cannot carry: a StatefulSet's pod name
/// (controller-owned, never copied) and `app.kubernetes.io/managed-by` (netcanary sets its
/// own). Expectations are about the probe pods, so no probe claims to witness those rules.
const UNCOPYABLE: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: db-0, namespace: shop, labels: {app: db, statefulset.kubernetes.io/pod-name: db-0}}
spec: {containers: [{name: db, image: db, ports: [{containerPort: 5432}]}]}
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web, app.kubernetes.io/managed-by: Helm}}
spec: {containers: [{name: web, image: web, ports: [{containerPort: 80}]}]}
status: {podIP: 10.0.0.2}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-0-from-web, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: 5432}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: only-pod-db-0, namespace: shop}
spec:
  podSelector: {matchLabels: {statefulset.kubernetes.io/pod-name: db-0}}
  ingress: [{from: [{podSelector: {}}], ports: [{port: 5432}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-helm-releases, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{from: [{podSelector: {matchLabels: {app.kubernetes.io/managed-by: Helm}}}], ports: [{port: 80}]}]
"#;

#[test]
fn expectations_are_about_the_labels_probe_pods_really_carry() {
    let plan = plan(&load("uncopyable.yaml", UNCOPYABLE), &Options::default());
    // db's probe pod cannot carry the pod-name label, so only-pod-db-0 selects no probe pod;
    // web's carries managed-by=netcanary, so from-helm-releases admits no probe pod.
    for dead in
        [rule("shop/only-pod-db-0", Direction::Ingress, 0), rule("shop/from-helm-releases", Direction::Ingress, 0)]
    {
        assert!(!plan.coverage.covered.contains(&dead), "{dead:?} claimed covered: {:#?}", plan.coverage);
        assert!(plan.coverage.uncovered.contains_key(&dead), "{dead:?} not reported: {:#?}", plan.coverage);
    }
    assert!(plan.coverage.covered.contains(&rule("shop/db-0-from-web", Direction::Ingress, 0)), "{:#?}", plan.coverage);
    // What the report says about the labels left out, and the probe pods' own labels.
    let db = plan.mirrors.iter().find(|m| m.stands_for == "shop/db-0").expect("a probe pod for db");
    assert_eq!(db.dropped_labels, ["statefulset.kubernetes.io/pod-name"]);
    assert!(plan.mirrors.iter().all(
        |m| !m.labels.contains_key("netcanary.io/run-id") && !m.labels.contains_key("app.kubernetes.io/managed-by")
    ));
}

/// The cluster DNS pods are probed twice over: DNS probes go to the real pods, and a probe
/// pod stands for them as a source and a target like for any other pod. Here policies select
/// them by `pod-template-hash`, a controller label their probe pod cannot carry.
const DNS_BY_CONTROLLER_LABEL: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: coredns-0, namespace: kube-system, labels: {k8s-app: kube-dns, pod-template-hash: abc}}
spec: {containers: [{name: coredns, image: coredns, ports: [{containerPort: 53, protocol: UDP}, {containerPort: 53, protocol: TCP}]}]}
status: {podIP: 10.0.0.10}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {containers: [{name: web, image: web, ports: [{containerPort: 80}]}]}
status: {podIP: 10.0.0.2}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: dns-egress-locked, namespace: kube-system}
spec:
  podSelector: {matchLabels: {pod-template-hash: abc}}
  policyTypes: [Egress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: dns-from-shop-over-udp, namespace: kube-system}
spec:
  podSelector: {matchLabels: {pod-template-hash: abc}}
  policyTypes: [Ingress]
  ingress: [{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: shop}}}], ports: [{port: 53, protocol: UDP}]}]
"#;

#[test]
fn dns_is_expected_of_the_real_dns_pods_and_their_probe_pod_of_its_own_labels() {
    let options = Options { dns_endpoints: vec!["kube-system/coredns-0".into()], ..Options::default() };
    let plan = plan(&load("dns.yaml", DNS_BY_CONTROLLER_LABEL), &options);
    let described: Vec<(String, bool)> =
        (0..plan.probes.len()).map(|p| (describe(&plan, p), plan.probes[p].expected_allowed)).collect();

    // DNS probes reach the real pods, which the hash policies select: UDP from shop only.
    let expected = |probe: &str| described.iter().find(|(d, _)| d == probe).map(|(_, allowed)| *allowed);
    assert_eq!(expected("shop/web -> dns 53/UDP"), Some(true), "{described:#?}");
    assert_eq!(expected("shop/web -> dns 53/TCP"), Some(false), "{described:#?}");
    assert!(
        plan.coverage.covered.contains(&rule("kube-system/dns-from-shop-over-udp", Direction::Ingress, 0)),
        "{:#?}",
        plan.coverage
    );

    // The probe pod standing for coredns carries no pod-template-hash: no policy isolates
    // its egress, so it is expected to reach web; its DNS queries meet the real pods'
    // ingress, which admits shop only.
    assert_eq!(expected("kube-system/coredns-0 -> shop/web 80/TCP"), Some(true), "{described:#?}");
    assert_eq!(expected("kube-system/coredns-0 -> dns 53/UDP"), Some(false), "{described:#?}");
}

/// The cluster policy tiers around prod's default-deny, with hand-written consequences:
/// - Admin `ops-out` denies ops → prod on every port;
/// - Admin `db-from-api` accepts dev's app=api → prod's app=db on 5432/TCP, which prod's
///   NetworkPolicy alone would deny;
/// - Admin `prod-to-dev` passes prod → dev on to the NetworkPolicy tier (nothing isolates
///   dev), then Baseline `dev-floor` denies it;
/// - `ops-out`'s second rule names a namespace that does not exist, `dev-floor`'s egress
///   rule names domains only, and Baseline `prod-floor`'s Pass from ops is never consulted
///   (the Admin Deny decides first): no probe can exercise any of them.
const TIERS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: prod, labels: {env: prod}}
---
apiVersion: v1
kind: Namespace
metadata: {name: dev, labels: {env: dev}}
---
apiVersion: v1
kind: Namespace
metadata: {name: ops, labels: {env: ops}}
---
apiVersion: v1
kind: Pod
metadata: {name: db-0, namespace: prod, labels: {app: db, tier: data}}
spec: {containers: [{name: db, image: db, ports: [{containerPort: 5432}]}]}
status: {podIP: 10.0.1.1}
---
apiVersion: v1
kind: Pod
metadata: {name: api-0, namespace: dev, labels: {app: api}}
spec: {containers: [{name: api, image: api, ports: [{containerPort: 8080}]}]}
status: {podIP: 10.0.2.1}
---
apiVersion: v1
kind: Pod
metadata: {name: tool-0, namespace: ops, labels: {app: tool}}
spec: {containers: [{name: tool, image: tool, ports: [{containerPort: 9090}]}]}
status: {podIP: 10.0.3.1}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: prod}
spec: {podSelector: {}, policyTypes: [Ingress]}
---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: ops-out}
spec:
  tier: Admin
  priority: 10
  subject: {namespaces: {matchLabels: {env: prod}}}
  ingress:
    - {name: deny-ops, action: Deny, from: [{namespaces: {matchLabels: {env: ops}}}]}
    - {name: deny-ghosts, action: Deny, from: [{namespaces: {matchLabels: {env: nowhere}}}]}
---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: db-from-api}
spec:
  tier: Admin
  priority: 20
  subject: {pods: {namespaceSelector: {matchLabels: {env: prod}}, podSelector: {matchLabels: {app: db}}}}
  ingress:
    - action: Accept
      from: [{pods: {namespaceSelector: {matchLabels: {env: dev}}, podSelector: {matchLabels: {app: api}}}}]
      protocols: [{tcp: {destinationPort: {number: 5432}}}]
---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: prod-to-dev}
spec:
  tier: Admin
  priority: 30
  subject: {namespaces: {matchLabels: {env: dev}}}
  ingress: [{action: Pass, from: [{namespaces: {matchLabels: {env: prod}}}]}]
---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: dev-floor}
spec:
  tier: Baseline
  priority: 0
  subject: {namespaces: {matchLabels: {env: dev}}}
  ingress: [{action: Deny, from: [{namespaces: {matchLabels: {env: prod}}}]}]
  egress: [{action: Accept, to: [{domainNames: [example.com]}]}]
---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: prod-floor}
spec:
  tier: Baseline
  priority: 5
  subject: {namespaces: {matchLabels: {env: prod}}}
  ingress: [{action: Pass, from: [{namespaces: {matchLabels: {env: ops}}}]}]
"#;

#[test]
fn cluster_policy_rules_get_witnesses_counted_in_coverage() {
    let cluster = load("tiers.yaml", TIERS);
    let plan = plan(&cluster, &Options::default());
    let cnp = |name: &str, direction, index| rule(&format!("ClusterNetworkPolicy/{name}"), direction, index);
    let witness = |rule: &RuleRef| {
        let i = plan.probes.iter().position(|p| p.covers.contains(rule));
        let i = i.unwrap_or_else(|| panic!("no probe covers {rule}: {:#?}", plan.coverage));
        (describe(&plan, i), plan.probes[i].expected_allowed, plan.probes[i].purpose)
    };
    // Deny: a denied probe the rule decides, from ops into prod.
    let (probe, allowed, purpose) = witness(&cnp("ops-out", Direction::Ingress, 0));
    assert!(probe.starts_with("ops/tool-0 -> prod/db-0 "), "{probe}");
    assert_eq!((allowed, purpose), (false, Purpose::Isolation));
    // Accept: the allowed probe on the rule's port.
    assert_eq!(
        witness(&cnp("db-from-api", Direction::Ingress, 0)),
        ("dev/api-0 -> prod/db-0 5432/TCP".to_string(), true, Purpose::AllowRule)
    );
    // Pass, then the Baseline Deny: one denied probe prod → dev walks through both.
    let pass = witness(&cnp("prod-to-dev", Direction::Ingress, 0));
    assert_eq!(pass, ("prod/db-0 -> dev/api-0 8080/TCP".to_string(), false, Purpose::Isolation));
    assert_eq!(witness(&cnp("dev-floor", Direction::Ingress, 0)), pass);

    let uncovered = &plan.coverage.uncovered;
    assert!(
        uncovered[&cnp("ops-out", Direction::Ingress, 1)].contains("no probed pod pair reaches it"),
        "{uncovered:#?}"
    );
    assert!(
        uncovered[&cnp("dev-floor", Direction::Egress, 0)].contains("no probed pod pair reaches it"),
        "{uncovered:#?}"
    );
    let never_consulted = &uncovered[&cnp("prod-floor", Direction::Ingress, 0)];
    assert!(never_consulted.contains("an earlier rule or tier decides every match"), "{never_consulted}");
    // 0 NetworkPolicy rules (default-deny has none) + 7 cluster policy rules.
    assert_eq!(plan.coverage.rules, 7);
    assert_eq!(plan.coverage.covered.len(), 4, "{:#?}", plan.coverage);
    assert_eq!(uncovered.len(), 3);
    // The probe pods carry what the subjects and peers select: app=db, app=api.
    let labels = |stands_for: &str| plan.mirrors.iter().find(|m| m.stands_for == stands_for).map(|m| m.labels.clone());
    assert_eq!(labels("prod/db-0").and_then(|l| l.get("app").cloned()).as_deref(), Some("db"));
    assert_eq!(labels("dev/api-0").and_then(|l| l.get("app").cloned()).as_deref(), Some("api"));
    assert!(labels("prod/db-0").is_some_and(|l| !l.contains_key("tier")), "no selector reads tier");
}

/// a's egress may go to a domain before it denies b: whether it is denied is not known,
/// though b's own isolation denies a → b anyway. That probe proves b isolated, not the
/// Deny rule: the rule stays uncovered.
#[test]
fn a_cluster_rule_a_domain_name_may_override_is_not_exercised() {
    let cluster = load(
        "domains.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata: {name: x, namespace: a, labels: {app: x}}
spec: {containers: [{name: x, image: x, ports: [{containerPort: 80}]}]}
status: {podIP: 10.0.1.1}
---
apiVersion: v1
kind: Pod
metadata: {name: y, namespace: b, labels: {app: y}}
spec: {containers: [{name: y, image: y, ports: [{containerPort: 80}]}]}
status: {podIP: 10.0.2.1}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-in, namespace: b}
spec: {podSelector: {}, policyTypes: [Ingress]}
---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: a-out}
spec:
  tier: Admin
  priority: 1
  subject: {namespaces: {matchLabels: {kubernetes.io/metadata.name: a}}}
  egress:
    - {action: Accept, to: [{domainNames: [example.com]}]}
    - {action: Deny, to: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: b}}}]}
"#,
    );
    let plan = plan(&cluster, &Options::default());
    assert!(
        (0..plan.probes.len()).any(|i| describe(&plan, i) == "a/x -> b/y 80/TCP"),
        "the denied probe into b is planned: {:#?}",
        plan.probes
    );
    let deny = rule("ClusterNetworkPolicy/a-out", Direction::Egress, 1);
    assert!(!plan.coverage.covered.contains(&deny), "{:#?}", plan.coverage);
    assert!(plan.coverage.uncovered.contains_key(&deny), "{:#?}", plan.coverage.uncovered);
}

/// b's pods admit a on 80/TCP only; a's egress may go to a domain before it is denied
/// everywhere, so whether a reaches b on 80/TCP is not known; on 9000/UDP b's ingress
/// denies it whatever the domain rule says. The isolation probe into b is the one whose denial policy knows.
#[test]
fn an_isolated_class_is_proved_by_a_denial_policy_knows() {
    let cluster = load(
        "known-denial.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata: {name: x, namespace: a, labels: {app: x}}
spec: {containers: [{name: x, image: x, ports: [{containerPort: 80}]}]}
status: {podIP: 10.0.1.1}
---
apiVersion: v1
kind: Pod
metadata: {name: y, namespace: b, labels: {app: y}}
spec: {containers: [{name: y, image: y, ports: [{containerPort: 80}, {containerPort: 9000, protocol: UDP}]}]}
status: {podIP: 10.0.2.1}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-a, namespace: b}
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress:
    - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: a}}}]
      ports: [{port: 80}]
---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: a-out}
spec:
  tier: Admin
  priority: 1
  subject: {namespaces: {matchLabels: {kubernetes.io/metadata.name: a}}}
  egress:
    - {action: Accept, to: [{domainNames: [example.com]}]}
    - {action: Deny, to: [{namespaces: {}}]}
"#,
    );
    let plan = plan(&cluster, &Options::default());
    let isolation: Vec<String> = (0..plan.probes.len())
        .filter(|&i| plan.probes[i].purpose == Purpose::Isolation)
        .map(|i| describe(&plan, i))
        .collect();
    assert!(isolation.contains(&"a/x -> b/y 9000/UDP".to_string()), "{isolation:?}");
    assert!(!isolation.contains(&"a/x -> b/y 80/TCP".to_string()), "{isolation:?}");
}

/// web admits api on 8080 only, and also listens on 9090; x, elsewhere, is not isolated.
const SPENT_BUDGET: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: x, namespace: other, labels: {app: x}}
spec: {containers: [{name: x, image: x, ports: [{containerPort: 8080}]}]}
status: {podIP: 10.0.1.1}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: shop, labels: {app: api}}
spec: {containers: [{name: api, image: api}]}
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {containers: [{name: web, image: web, ports: [{containerPort: 8080}, {containerPort: 9090}]}]}
status: {podIP: 10.0.0.2}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-from-api, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{from: [{podSelector: {matchLabels: {app: api}}}], ports: [{port: 8080}]}]
"#;

/// With the budget spent on a witness, an isolated class still gets its denied probe from
/// a pod planned already, in its own namespace when no pod elsewhere has one.
#[test]
fn isolation_uses_the_pods_planned_when_the_budget_is_spent() {
    let plan = plan(&load("spent.yaml", SPENT_BUDGET), &Options { max_probe_pods: 2, ..Options::default() });
    let describe_all: Vec<String> = (0..plan.probes.len()).map(|i| describe(&plan, i)).collect();
    assert_eq!(plan.probe_pods(), 2, "{describe_all:?}");
    let isolation: Vec<&String> = (plan.probes.iter().zip(&describe_all))
        .filter(|(p, _)| p.purpose == Purpose::Isolation)
        .map(|(_, d)| d)
        .collect();
    assert_eq!(isolation, ["shop/api -> shop/web 9090/TCP"], "{describe_all:?}");
    assert!(plan.notes.iter().any(|n| n.contains("--max-probe-pods")), "{:?}", plan.notes);
}

/// The most probes one source pod sends.
fn busiest_source(plan: &Plan) -> usize {
    let mut sent = std::collections::BTreeMap::new();
    for probe in &plan.probes {
        *sent.entry(probe.from).or_insert(0) += 1;
    }
    sent.into_values().max().unwrap_or(0)
}

/// Wall time is budgeted too: no source pod sends more probes than fit in a round
/// (`--max-round-time`, one wave of `--probe-concurrency` by default), a witness moves to
/// another source pod before it is given up, and what is given up is named.
#[test]
fn no_source_pod_sends_more_probes_than_a_round_has_time_for() {
    let everything = plan(&example(), &options());
    assert!(busiest_source(&everything) > 2, "the example needs a busy source pod to test this");
    let second = std::time::Duration::from_secs(1);
    for concurrency in [1, 2] {
        let timing = Timing { concurrency, ..Timing::default() };
        let plan = plan(&example(), &Options { timing, ..options() });
        assert!(busiest_source(&plan) <= concurrency, "{} probes from one pod", busiest_source(&plan));
        assert_eq!((plan.wall_time.waves, plan.wall_time.round_probing), (1, 2 * second));
        assert_eq!(plan.coverage.coverable(), everything.coverage.coverable(), "{:#?}", plan.coverage);
        assert!(plan.notes.iter().any(|n| n.contains("--max-round-time")), "{:?}", plan.notes);
        for rule in &plan.coverage.budget {
            assert!(plan.coverage.uncovered[rule].contains("--max-round-time"), "{rule}: {:#?}", plan.coverage);
        }
    }
    // Three waves of one probe fit in 7 s of 2 s probes.
    let timing = Timing { concurrency: 1, max_round_time: Some(7 * second), ..Timing::default() };
    let three = plan(&example(), &Options { timing, ..options() });
    assert_eq!(busiest_source(&three), 3);
    assert_eq!((three.wall_time.waves, three.wall_time.round_probing), (3, 6 * second));
    // By three paths a probe to a target pod is three probes, the dns one up to twice the
    // timeout: four probes a source pod hold one to a target pod and a DNS probe at most.
    let timing = Timing { concurrency: 4, ..Timing::default() };
    let paths = vec![ProbePath::Pod, ProbePath::Service, ProbePath::Dns];
    let by_paths = plan(&example(), &Options { timing, paths, ..options() });
    assert!(busiest_source(&by_paths) <= 4, "{} probes from one pod", busiest_source(&by_paths));
    assert_eq!((by_paths.wall_time.longest_probe, by_paths.wall_time.round_probing), (4 * second, 4 * second));
    // The default budget leaves nothing out for time: one wave holds 4,096 probes.
    assert!(!everything.notes.iter().any(|n| n.contains("--max-round-time")), "{:?}", everything.notes);
}

/// The plan says when its deadline could cut the run short: every pod taking its whole
/// start-up timeout, every probe timing out, every round.
#[test]
fn a_deadline_shorter_than_the_worst_case_is_noted() {
    let fits = plan(&example(), &options());
    // Targets start (2m), then three rounds of sources starting (2m), the wait before the
    // two retries (5s) and a wave of probes (2s): 8m 16s, within the default 10m.
    assert_eq!(fits.wall_time.worst_case, std::time::Duration::from_secs(120 + 3 * (120 + 2) + 2 * 5));
    assert!(!fits.notes.iter().any(|n| n.contains("--deadline")), "{:?}", fits.notes);
    let timing = Timing { deadline: std::time::Duration::from_secs(300), ..Timing::default() };
    let short = plan(&example(), &Options { timing, ..options() });
    let note = short.notes.iter().find(|n| n.contains("--deadline")).expect("a note on the deadline");
    assert!(note.contains("8m 16s") && note.contains("5m"), "{note}");
}

/// Namespace `locked` denies its pods every egress, DNS included; `open` has no policy.
const DNS_DENIED: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: coredns-0, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec: {containers: [{name: coredns, image: coredns, ports: [{containerPort: 53, protocol: UDP}, {containerPort: 53, protocol: TCP}]}]}
status: {podIP: 10.0.0.10}
---
apiVersion: v1
kind: Pod
metadata: {name: app-0, namespace: locked, labels: {app: a}}
spec: {containers: [{name: a, image: a, ports: [{containerPort: 8080}]}]}
status: {podIP: 10.0.1.1}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: open, labels: {app: web}}
spec: {containers: [{name: web, image: web, ports: [{containerPort: 8080}]}]}
status: {podIP: 10.0.2.1}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: no-egress, namespace: locked}
spec: {podSelector: {}, policyTypes: [Egress]}
"#;

/// By name a probe first resolves through the cluster DNS: from a pod policy denies DNS it
/// could only be inconclusive, so it is not sent, and the plan says so.
#[test]
fn the_dns_path_is_not_sent_from_pods_policy_denies_dns() {
    let options = Options {
        dns_endpoints: vec!["kube-system/coredns-0".into()],
        paths: vec![ProbePath::Pod, ProbePath::Dns],
        ..Options::default()
    };
    let plan = plan(&load("dns-denied.yaml", DNS_DENIED), &options);
    let by = |source: &str, path: ProbePath| {
        plan.probes.iter().any(|p| {
            plan.mirrors[p.from].stands_for == source && matches!(p.to, Destination::Mirror(_)) && p.path == path
        })
    };
    assert!(by("locked/app-0", ProbePath::Pod), "locked/app-0 sends no probe to a pod:\n{:#?}", plan.probes);
    assert!(!by("locked/app-0", ProbePath::Dns), "a dns probe from a pod denied DNS");
    assert!(by("open/web-0", ProbePath::Dns), "open/web-0 resolves names: {:#?}", plan.probes);
    let note = plan.notes.iter().find(|n| n.contains("dns path")).expect("a note on the dns path");
    assert!(note.contains("(locked/app-0)"), "{note}");
}
