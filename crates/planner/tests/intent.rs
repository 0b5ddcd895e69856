//! Declared intent in the plan, on the bundled example and its intent
//! (`examples/intent.yaml`): a probe for every statement some probed pair falls under,
//! every probe marked with its statement, and statements no probe checks listed.

use std::path::PathBuf;

use netcanary_objects::{load_intent_paths, load_paths};
use netcanary_planner::{Destination, Options, Plan, Purpose, plan};
use netcanary_policy::intent::{Expect, Statement};
use netcanary_policy::{Cluster, PortProto};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
}

fn example() -> Cluster {
    let loaded = load_paths(&[repo("examples/cluster")], "default");
    assert!(!loaded.has_errors());
    loaded.cluster
}

fn intent() -> Vec<Statement> {
    let loaded = load_intent_paths(&[repo("examples/intent.yaml")]);
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    loaded.statements
}

fn options(statements: Vec<Statement>) -> Options {
    Options { dns_endpoints: vec!["kube-system/deployment/coredns".into()], intent: statements, ..Options::default() }
}

/// `from -> to port` of the probes marked with `statement`.
fn marked(plan: &Plan, statement: &str) -> Vec<String> {
    plan.probes
        .iter()
        .filter(|p| p.intent.as_ref().is_some_and(|m| m.statement == statement))
        .map(|p| {
            let to = match p.to {
                Destination::Mirror(m) => plan.mirrors[m].stands_for.clone(),
                Destination::Dns => "dns".into(),
                Destination::External(ip) => ip.to_string(),
            };
            format!("{} -> {to} {}", plan.mirrors[p.from].stands_for, p.port)
        })
        .collect()
}

#[test]
fn every_statement_of_the_example_is_checked_by_some_probe() {
    let plan = plan(&example(), &options(intent()));
    assert_eq!(plan.unverified_intent, Vec::<String>::new());

    // The ingress controller reaches production's db by policy (allow-ingress-controller),
    // and intent forbids it: the one pair, planned for intent, expecting policy's allow.
    let forbidden = marked(&plan, "production-isolation/only-backends-reach-production-db");
    assert_eq!(forbidden, ["ingress-nginx/deployment/ingress-nginx-controller -> production/statefulset/db 5432/TCP"]);
    let probe = plan
        .probes
        .iter()
        .find(|p| p.intent.as_ref().is_some_and(|m| m.statement.ends_with("only-backends-reach-production-db")))
        .unwrap();
    assert!(probe.expected_allowed, "policy allows what intent forbids");
    assert_eq!(probe.intent.as_ref().unwrap().expect, Expect::Deny);

    // dev's three workloads never reach production's db: at least one of them is probed.
    let dev = marked(&plan, "production-isolation/dev-never-reaches-production-db");
    assert!(!dev.is_empty() && dev.iter().all(|p| p.starts_with("dev/") && p.ends_with("db 5432/TCP")), "{dev:?}");
    // DNS from every namespace is probed at the real DNS pods, and falls under the DNS statement.
    let dns = marked(&plan, "dns/every-namespace-reaches-kube-dns");
    assert!(dns.iter().any(|p| p.ends_with("dns 53/UDP")) && dns.iter().any(|p| p.ends_with("dns 53/TCP")), "{dns:?}");
    assert!(
        marked(&plan, "production-isolation/api-reaches-its-db")
            .iter()
            .all(|p| p.starts_with("production/deployment/api"))
    );
}

#[test]
fn a_statement_no_probe_can_check_is_listed_with_why() {
    let text = "apiVersion: netcanary.io/v1alpha1\nkind: NetcanaryIntent\nmetadata: {name: odd}\nspec:\n  statements:\n\
                \x20   - {name: nobody, from: {namespaceSelector: {matchLabels: {env: qa}}}, to: {}, ports: [{port: 80}], expect: deny}\n\
                \x20   - {name: sctp, from: {}, to: {}, ports: [{port: 80, protocol: SCTP}], expect: deny}\n";
    let loaded = netcanary_objects::load_intent_str("odd.yaml", text);
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    let plan = plan(&example(), &options(loaded.statements));
    assert_eq!(
        plan.unverified_intent,
        [
            "intent odd/nobody is not verified: `from` selects no pod this run probes",
            "intent odd/sctp is not verified: none of its ports uses a protocol the prober tests",
        ]
    );
}

/// DNS takes 10 probes (5 namespaces, UDP and TCP) and covers the DNS statement; the
/// other 3 statements need a probe each, before any witness or sample.
#[test]
fn intent_probes_come_before_the_budget_runs_out() {
    let plan13 = plan(&example(), &Options { max_probes: 13, ..options(intent()) });
    assert_eq!(plan13.probes.len(), 13);
    assert_eq!(plan13.unverified_intent, Vec::<String>::new());
    let purposes: Vec<Purpose> = plan13.probes.iter().map(|p| p.purpose).collect();
    assert_eq!(purposes[10..], [Purpose::Intent; 3]);
    let port: PortProto = "5432/TCP".parse().unwrap();
    assert!(plan13.probes[10..].iter().all(|p| p.port == port));

    let plan12 = plan(&example(), &Options { max_probes: 12, ..options(intent()) });
    assert_eq!(
        plan12.unverified_intent,
        ["intent production-isolation/api-reaches-its-db is not verified: the probe budget (--max-probes) ran out"]
    );
}
