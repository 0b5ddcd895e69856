//! The run's decisions, as tables: every result kind, every cause of `inconclusive`, the
//! canary's three states, pods that never started, answers that change between rounds.
//!
//! The cluster is small and written out here; each expectation is stated by hand from its
//! policies (shop/web admits only app=api on 80/TCP; netcanary's namespace denies all).

use std::collections::{BTreeSet, HashMap};

use netcanary_planner::{
    Coverage, Destination, IntentMark, Mirror, Placement, Plan, PlannedProbe, ProbePath, ProbePodCluster, Purpose,
    add_canary,
};
use netcanary_policy::intent::Expect;
use netcanary_policy::port::{PortMatch, RulePort};
use netcanary_policy::{
    Action, Cluster, ClusterPeer, ClusterPolicy, ClusterPolicyKind, ClusterRule, ContainerPort, Direction, Endpoint,
    Labels, NamespaceScope, Peer, Policy, PortProto, Protocol, Rule, RuleRef, Selector, Subject, Tier,
};
use netcanary_verify::{
    Canary, Evidence, Expectation, Judgement, Outcome, ProbeRounds, RoundResult, RuleCoverage, SnapshotFacts,
    Unreadable, WorkloadRef, judge_run,
};
use netcanary_wire::Observed::{self, *};

const WEB: PortProto = PortProto { port: 80, protocol: Protocol::Tcp };
const DNS: PortProto = PortProto { port: 53, protocol: Protocol::Udp };
/// Probes in plan order, before the canary.
const API_TO_WEB: usize = 0;
const CRON_TO_WEB: usize = 1;
const API_TO_DNS: usize = 2;
const CANARY: usize = 3;

fn web_rule() -> RuleRef {
    RuleRef { policy: "shop/web-from-api".into(), direction: Direction::Ingress, index: 0 }
}

fn isolating(namespace: &str, name: &str, selector: Selector, ingress: Vec<Rule>) -> Policy {
    Policy {
        namespace: namespace.into(),
        name: name.into(),
        pod_selector: selector,
        ingress: Some(ingress),
        egress: None,
    }
}

fn cluster(canary_denied: bool) -> Cluster {
    let mut cluster = Cluster::new();
    cluster.add_policy(isolating(
        "shop",
        "web-from-api",
        Selector::from_labels([("app", "web")]),
        vec![Rule {
            peers: vec![Peer::Pods { namespaces: NamespaceScope::Own, pods: Selector::from_labels([("app", "api")]) }],
            ports: vec![RulePort { protocol: Protocol::Tcp, port: PortMatch::Range { first: 80, last: 80 } }],
        }],
    ));
    if canary_denied {
        cluster.add_policy(isolating("netcanary", "deny-all", Selector::everything(), Vec::new()));
    }
    let dns = Endpoint::pod("kube-system", "coredns-1", Labels::from([("k8s-app".into(), "kube-dns".into())]))
        .with_ips(["10.0.9.9".parse().unwrap()])
        .with_ports([ContainerPort { name: Some("dns".into()), port: 53, protocol: Protocol::Udp }]);
    cluster.add_endpoint(dns);
    cluster
}

fn mirror(name: &str, listen: &[PortProto]) -> Mirror {
    Mirror {
        class: 0,
        namespace: "shop".into(),
        labels: Labels::from([("app".to_string(), name.to_string())]),
        dropped_labels: Vec::new(),
        stands_for: format!("shop/{name}-0"),
        workload: format!("deployment/{name}"),
        members: 2,
        listen: listen.iter().copied().collect(),
        port_names: Default::default(),
    }
}

fn probe(from: usize, to: Destination, port: PortProto, purpose: Purpose, covers: Vec<RuleRef>) -> PlannedProbe {
    PlannedProbe { from, to, port, expected_allowed: false, purpose, covers, path: ProbePath::Pod, intent: None }
}

/// api → web (allowed by the rule), cron → web (denied), api → DNS (allowed: nothing
/// isolates kube-system or api's egress), then the canary.
fn plan() -> Plan {
    let mut plan = Plan {
        mirrors: vec![mirror("api", &[]), mirror("cron", &[]), mirror("web", &[WEB])],
        probes: vec![
            probe(0, Destination::Mirror(2), WEB, Purpose::AllowRule, vec![web_rule()]),
            probe(1, Destination::Mirror(2), WEB, Purpose::Isolation, Vec::new()),
            probe(0, Destination::Dns, DNS, Purpose::Dns, Vec::new()),
        ],
        coverage: Coverage { rules: 2, covered: BTreeSet::from([web_rule()]), ..Coverage::default() },
        ..Plan::default()
    };
    assert_eq!(add_canary(&mut plan, "netcanary"), CANARY);
    plan
}

/// Every pod up, every target with an IP.
fn everyone_placed() -> Placement {
    let ip = |n: u8| format!("10.0.0.{n}").parse().unwrap();
    Placement {
        sources: HashMap::from([(0, ip(1)), (1, ip(2)), (3, ip(4))]),
        targets: HashMap::from([(2, Some(ip(3))), (4, Some(ip(5)))]),
    }
}

fn answered(rounds: &[Observed]) -> ProbeRounds {
    ProbeRounds {
        rounds: rounds
            .iter()
            .map(|&observed| RoundResult { observed, millis: Some(3), detail: Some(format!("saw {observed}")) })
            .collect(),
        unsent: None,
    }
}

struct Scenario {
    canary_denied: bool,
    /// Cluster policies added to [`cluster`].
    cluster_policies: Vec<ClusterPolicy>,
    placement: Placement,
    facts: SnapshotFacts,
    observations: Vec<ProbeRounds>,
    /// Statements of intent the probes fall under, by probe.
    intent: Vec<(usize, IntentMark)>,
    unverified_intent: Vec<String>,
}

impl Scenario {
    /// The network does what policy says, in one round.
    fn agreeing() -> Self {
        Scenario {
            canary_denied: true,
            cluster_policies: Vec::new(),
            placement: everyone_placed(),
            facts: SnapshotFacts::default(),
            observations: vec![
                answered(&[Connected]),
                answered(&[Timeout]),
                answered(&[Connected]),
                answered(&[Timeout]),
            ],
            intent: Vec::new(),
            unverified_intent: Vec::new(),
        }
    }

    fn intent(mut self, p: usize, expect: Expect) -> Self {
        self.intent.push((p, IntentMark { statement: format!("isolation/s{p}"), expect }));
        self
    }

    fn observe(mut self, p: usize, rounds: ProbeRounds) -> Self {
        self.observations[p] = rounds;
        self
    }

    fn judge(&self) -> Judgement {
        let mut plan = plan();
        for (p, mark) in &self.intent {
            plan.probes[*p].intent = Some(mark.clone());
        }
        plan.unverified_intent = self.unverified_intent.clone();
        let mut cluster = cluster(self.canary_denied);
        self.cluster_policies.iter().cloned().for_each(|p| cluster.add_cluster_policy(p));
        let pods = ProbePodCluster::new(&cluster, &plan, "r1", &self.placement, &["kube-system/coredns-1".into()]);
        let dns = WorkloadRef { namespace: "kube-system".into(), workload: "kube-dns".into() };
        judge_run(&Evidence {
            plan: &plan,
            canary: CANARY,
            canary_namespace: "netcanary",
            dns_service: &dns,
            facts: &self.facts,
            probe_pods: &pods,
            observations: &self.observations,
        })
    }
}

fn outcomes(judgement: &Judgement) -> Vec<Outcome> {
    judgement.probes.iter().map(|p| p.outcome).collect()
}

#[test]
fn a_network_that_does_what_policy_says_passes_everywhere() {
    let judgement = Scenario::agreeing().judge();
    assert_eq!(outcomes(&judgement), [Outcome::Pass; 3]);
    let expected: Vec<Expectation> = judgement.probes.iter().map(|p| p.expected).collect();
    assert_eq!(expected, [Expectation::Allow, Expectation::Deny, Expectation::Allow]);
    assert_eq!(judgement.canary, Canary::Enforced);
    assert!(judgement.problems.is_empty(), "{:?}", judgement.problems);
    assert_eq!(judgement.probes[API_TO_WEB].expected_because, "allowed by shop/web-from-api ingress[0]");
    assert_eq!(
        judgement.probes[CRON_TO_WEB].expected_because,
        "ingress isolated by shop/web-from-api and no rule allows it"
    );
    assert_eq!(judgement.probes[API_TO_DNS].destination.to_string(), "kube-system/kube-dns");
    assert_eq!(judgement.probes[API_TO_DNS].kind, "dns");
    assert_eq!(judgement.probes[CRON_TO_WEB].purpose, "isolation");
    let coverage = judgement.coverage.expect("planned");
    assert_eq!((coverage.rules, coverage.planned, coverage.exercised), (2, 1, 1));
}

#[test]
fn every_result_kind() {
    let cases: [(usize, &[Observed], Outcome); 8] = [
        (CRON_TO_WEB, &[Connected, Connected, Refused], Outcome::UnexpectedAllow),
        (API_TO_WEB, &[Timeout, Timeout, Unreachable], Outcome::UnexpectedDeny),
        (API_TO_WEB, &[Timeout, Connected], Outcome::Pass),
        (CRON_TO_WEB, &[Connected, Timeout], Outcome::Pass),
        (API_TO_WEB, &[Connected, Timeout], Outcome::Converging),
        (CRON_TO_WEB, &[Timeout, Connected], Outcome::Converging),
        (API_TO_DNS, &[Connected, Error], Outcome::Inconclusive),
        (API_TO_WEB, &[], Outcome::Inconclusive),
    ];
    for (p, rounds, want) in cases {
        let judgement = Scenario::agreeing().observe(p, answered(rounds)).judge();
        let record = &judgement.probes[p];
        assert_eq!(record.outcome, want, "probe {p} after {rounds:?}");
        assert_eq!(record.observed, rounds, "every round is recorded");
        if !rounds.is_empty() {
            let last = rounds[rounds.len() - 1];
            assert_eq!(record.detail.as_deref(), Some(format!("saw {last}").as_str()), "the last round's detail");
        }
    }
}

#[test]
fn each_cause_of_inconclusive_says_why() {
    let unsent = ProbeRounds { rounds: Vec::new(), unsent: Some("the target pod never started".into()) };
    let target_never_started =
        Placement { targets: HashMap::from([(4, Some("10.0.0.5".parse().unwrap()))]), ..everyone_placed() };
    let unreadable = SnapshotFacts {
        unreadable: vec![Unreadable {
            object: "NetworkPolicy shop/broken".into(),
            namespace: "shop".into(),
            reason: "spec.ingress[0].ports[0].port: 70000 must be a port number".into(),
        }],
        ..SnapshotFacts::default()
    };
    let cilium = SnapshotFacts { unevaluated: vec!["1 CiliumNetworkPolicy".into()], ..SnapshotFacts::default() };

    let scenarios = [
        ("unsent", Scenario::agreeing().observe(API_TO_WEB, unsent.clone()), "the target pod never started"),
        (
            "no target pod",
            Scenario { placement: target_never_started, ..Scenario::agreeing() }.observe(API_TO_WEB, unsent),
            "the target pod never started",
        ),
        (
            "unreadable policy",
            Scenario { facts: unreadable, ..Scenario::agreeing() },
            "a policy in this namespace pair could not be read",
        ),
        (
            "unevaluated kind on a mismatch",
            Scenario { facts: cilium.clone(), ..Scenario::agreeing() }.observe(API_TO_WEB, answered(&[Timeout])),
            "1 CiliumNetworkPolicy may decide this pair; not evaluated",
        ),
        ("probe error", Scenario::agreeing().observe(API_TO_WEB, answered(&[Error])), "saw error"),
    ];
    for (name, scenario, why) in scenarios {
        let judgement = scenario.judge();
        let record = &judgement.probes[API_TO_WEB];
        assert_eq!(record.outcome, Outcome::Inconclusive, "{name}");
        assert_eq!(record.detail.as_deref(), Some(why), "{name}");
    }

    // Kinds netcanary does not evaluate only matter where the network disagrees.
    let agreeing = Scenario { facts: cilium, ..Scenario::agreeing() }.judge();
    assert_eq!(outcomes(&agreeing), [Outcome::Pass; 3]);
    assert_eq!(agreeing.problems.len(), 1);
    assert!(agreeing.problems[0].contains("(1 CiliumNetworkPolicy)"), "{:?}", agreeing.problems);
}

#[test]
fn a_source_pod_that_never_started_leaves_its_probes_without_expectation() {
    let mut placement = everyone_placed();
    placement.sources.remove(&1);
    let never_ran = ProbeRounds {
        rounds: vec![RoundResult {
            observed: Error,
            millis: None,
            detail: Some("the probe pod never ran: ImagePullBackOff".into()),
        }],
        unsent: None,
    };
    let judgement = Scenario { placement, ..Scenario::agreeing() }.observe(CRON_TO_WEB, never_ran).judge();
    let record = &judgement.probes[CRON_TO_WEB];
    assert_eq!(record.outcome, Outcome::Inconclusive);
    assert_eq!(record.detail.as_deref(), Some("the probe pod never ran: ImagePullBackOff"));
    // Labels alone still decide this one: cron is not admitted whatever its address.
    assert_eq!(record.expected, Expectation::Deny);
}

#[test]
fn a_probe_with_nothing_to_expect_is_unknown_not_denied() {
    let no_dns = {
        let plan = plan();
        let cluster = cluster(true);
        let pods = ProbePodCluster::new(&cluster, &plan, "r1", &everyone_placed(), &[]);
        let dns = WorkloadRef { namespace: "kube-system".into(), workload: "kube-dns".into() };
        let scenario = Scenario::agreeing();
        judge_run(&Evidence {
            plan: &plan,
            canary: CANARY,
            canary_namespace: "netcanary",
            dns_service: &dns,
            facts: &scenario.facts,
            probe_pods: &pods,
            observations: &scenario.observations,
        })
    };
    let record = &no_dns.probes[API_TO_DNS];
    assert_eq!(record.expected, Expectation::Unknown);
    assert_eq!(record.expected_because, "");
    assert_eq!(record.outcome, Outcome::Inconclusive);
    assert_eq!(record.detail.as_deref(), Some("no expectation: the pods involved never started"));
}

#[test]
fn the_canary_enforced_not_enforced_or_unknown() {
    let cases = [
        (Scenario::agreeing(), Canary::Enforced),
        (Scenario::agreeing().observe(CANARY, answered(&[Connected, Connected, Connected])), Canary::NotEnforced),
        (Scenario::agreeing().observe(CANARY, answered(&[Timeout, Refused])), Canary::NotEnforced),
        (Scenario::agreeing().observe(CANARY, answered(&[Error])), Canary::Unknown("saw error".into())),
        (
            Scenario { canary_denied: false, ..Scenario::agreeing() },
            Canary::Unknown(
                "no policy in namespace netcanary denies the canary: apply netcanary's default-deny policy there"
                    .into(),
            ),
        ),
        (
            Scenario {
                placement: Placement {
                    targets: HashMap::from([(2, Some("10.0.0.3".parse().unwrap()))]),
                    ..everyone_placed()
                },
                ..Scenario::agreeing()
            }
            .observe(CANARY, ProbeRounds { rounds: Vec::new(), unsent: Some("the target pod never started".into()) }),
            Canary::Unknown("the target pod never started".into()),
        ),
    ];
    for (scenario, want) in cases {
        let judgement = scenario.judge();
        assert_eq!(judgement.canary, want);
        assert_eq!(judgement.probes.len(), 3, "the canary is not one of the probes");
    }
}

#[test]
fn coverage_counts_rules_exercised_by_probes_that_answered() {
    let never_answered = Scenario::agreeing().observe(API_TO_WEB, answered(&[Error])).judge().coverage.unwrap();
    assert_eq!((never_answered.planned, never_answered.exercised), (1, 0));
    assert_eq!(never_answered.exercised_ratio(), 0.0);
    assert_eq!(never_answered.planned_ratio(), 0.5);

    // A mismatch still exercised the rule: traffic went and an answer came back.
    let mismatch = Scenario::agreeing().observe(API_TO_WEB, answered(&[Timeout])).judge();
    assert_eq!(mismatch.coverage.unwrap().exercised, 1);

    // A run whose probe pods never ran exercised nothing; one that never planned knows nothing.
    let plan = plan();
    let unjudged = Judgement::nothing_judged(Some(&SnapshotFacts::default()), Some(RuleCoverage::planned(&plan)));
    assert_eq!(unjudged.coverage.map(|c| (c.planned, c.exercised)), Some((1, 0)));
    assert_eq!(Judgement::nothing_judged(None, None).coverage, None);
}

/// A ClusterNetworkPolicy of `tier` and `priority` whose subject is shop's app=web pods,
/// with these ingress rules.
fn web_cluster_policy(name: &str, tier: Tier, priority: u32, ingress: Vec<ClusterRule>) -> ClusterPolicy {
    ClusterPolicy {
        kind: ClusterPolicyKind::ClusterNetworkPolicy,
        name: name.into(),
        tier,
        priority,
        subject: Subject {
            namespaces: Selector::from_labels([("kubernetes.io/metadata.name", "shop")]),
            pods: Selector::from_labels([("app", "web")]),
        },
        ingress,
        egress: Vec::new(),
    }
}

/// A rule for pods labelled `app` in any namespace, on any port.
fn from_app(name: &str, action: Action, app: &str) -> ClusterRule {
    ClusterRule {
        name: Some(name.into()),
        action,
        peers: vec![ClusterPeer::Pods {
            namespaces: Selector::everything(),
            pods: Selector::from_labels([("app", app)]),
        }],
        ports: Vec::new(),
    }
}

/// What, the cluster policies, the probe, what the network does, then what the run must
/// expect, judge and say.
type TierCase = (&'static str, Vec<ClusterPolicy>, usize, Observed, Expectation, Outcome, &'static str);

#[test]
fn cluster_policy_tiers_decide_expectations_and_say_which_rule() {
    let admin = |name, priority, rules| web_cluster_policy(name, Tier::Admin, priority, rules);
    let baseline = |name, rules| web_cluster_policy(name, Tier::Baseline, 0, rules);
    let cases: Vec<TierCase> = vec![
        (
            "an Admin Deny overrides the NetworkPolicy that allows",
            vec![admin("no-api", 10, vec![from_app("deny-api", Action::Deny, "api")])],
            API_TO_WEB,
            Timeout,
            Expectation::Deny,
            Outcome::Pass,
            r#"ingress denied by Admin tier ClusterNetworkPolicy/no-api ingress "deny-api" (Deny)"#,
        ),
        (
            "a network that ignores the Admin Deny fails",
            vec![admin("no-api", 10, vec![from_app("deny-api", Action::Deny, "api")])],
            API_TO_WEB,
            Connected,
            Expectation::Deny,
            Outcome::UnexpectedAllow,
            r#"ingress denied by Admin tier ClusterNetworkPolicy/no-api ingress "deny-api" (Deny)"#,
        ),
        (
            "an Admin Accept admits what the NetworkPolicy isolates",
            vec![admin("cron-ok", 10, vec![from_app("accept-cron", Action::Accept, "cron")])],
            CRON_TO_WEB,
            Connected,
            Expectation::Allow,
            Outcome::Pass,
            r#"ingress accepted by Admin tier ClusterNetworkPolicy/cron-ok ingress "accept-cron" (Accept)"#,
        ),
        (
            "a Pass hands over to the NetworkPolicy, which isolates; Baseline is not consulted",
            vec![
                admin("hand-over", 10, vec![from_app("pass-cron", Action::Pass, "cron")]),
                baseline("default", vec![from_app("pass-cron", Action::Pass, "cron")]),
                baseline("later", vec![from_app("accept-cron", Action::Accept, "cron")]),
            ],
            CRON_TO_WEB,
            Timeout,
            Expectation::Deny,
            Outcome::Pass,
            "ingress passed on by Admin tier ClusterNetworkPolicy/hand-over ingress \"pass-cron\" (Pass); \
             ingress isolated by shop/web-from-api and no rule allows it",
        ),
        (
            "a Baseline Deny decides where no NetworkPolicy isolates",
            vec![web_cluster_policy("default", Tier::Baseline, 0, Vec::new()), {
                let mut dns = baseline("dns-closed", vec![from_app("deny-api", Action::Deny, "api")]);
                dns.subject.namespaces = Selector::from_labels([("kubernetes.io/metadata.name", "kube-system")]);
                dns.subject.pods = Selector::everything();
                dns
            }],
            API_TO_DNS,
            Timeout,
            Expectation::Deny,
            Outcome::Pass,
            r#"ingress denied by Baseline tier ClusterNetworkPolicy/dns-closed ingress "deny-api" (Deny)"#,
        ),
    ];
    for (what, policies, p, observed, expected, outcome, because) in cases {
        let judgement =
            Scenario { cluster_policies: policies, ..Scenario::agreeing() }.observe(p, answered(&[observed])).judge();
        let record = &judgement.probes[p];
        assert_eq!((record.expected, record.outcome), (expected, outcome), "{what}: {record:?}");
        assert_eq!(record.expected_because, because, "{what}");
        assert!(judgement.problems.is_empty(), "{what}: {:?}", judgement.problems);
    }
}

#[test]
fn cluster_policy_answers_not_known_from_cluster_objects_are_inconclusive() {
    let domains = ClusterRule {
        name: None,
        action: Action::Accept,
        peers: vec![ClusterPeer::DomainNames(vec!["example.com".into()])],
        ports: Vec::new(),
    };
    let api_egress = ClusterPolicy {
        kind: ClusterPolicyKind::AdminNetworkPolicy,
        name: "api-out".into(),
        tier: Tier::Admin,
        priority: 5,
        subject: Subject { namespaces: Selector::everything(), pods: Selector::from_labels([("app", "api")]) },
        ingress: Vec::new(),
        egress: vec![domains, from_app("deny-rest", Action::Deny, "web")],
    };
    let tie = vec![
        web_cluster_policy("a", Tier::Admin, 7, vec![from_app("deny-cron", Action::Deny, "cron")]),
        web_cluster_policy("b", Tier::Admin, 7, vec![from_app("accept-cron", Action::Accept, "cron")]),
    ];
    let cases = [
        ("a rule naming domains", vec![api_egress], API_TO_WEB, "names domains"),
        ("equal priorities with different actions", tie, CRON_TO_WEB, "the implementation's choice"),
    ];
    for (what, policies, p, why) in cases {
        for observed in [Connected, Timeout] {
            let judgement = Scenario { cluster_policies: policies.clone(), ..Scenario::agreeing() }
                .observe(p, answered(&[observed]))
                .judge();
            let record = &judgement.probes[p];
            assert_eq!((record.expected, record.outcome), (Expectation::Unknown, Outcome::Inconclusive), "{what}");
            let detail = record.detail.as_deref().unwrap_or_default();
            assert!(detail.starts_with("policy's answer is not known: ") && detail.contains(why), "{what}: {detail}");
        }
    }
}

#[test]
fn a_cluster_scoped_object_not_read_leaves_every_probe_inconclusive() {
    let facts = SnapshotFacts {
        unreadable: vec![Unreadable {
            object: "every ClusterNetworkPolicy".into(),
            namespace: String::new(),
            reason: "the API server refused to list them: forbidden".into(),
        }],
        ..SnapshotFacts::default()
    };
    let judgement = Scenario { facts, ..Scenario::agreeing() }.judge();
    assert_eq!(outcomes(&judgement), [Outcome::Inconclusive; 3]);
    assert!(
        judgement
            .probes
            .iter()
            .all(|p| p.detail.as_deref() == Some("a cluster-scoped policy or Node could not be read")),
        "{:?}",
        judgement.probes
    );
    assert_eq!(
        judgement.problems,
        ["every ClusterNetworkPolicy cannot be read and was skipped: the API server refused to list them: forbidden"]
    );
}

/// api → web is allowed by policy, cron → web denied; intent says otherwise of each.
#[test]
fn the_network_doing_what_intent_forbids_is_an_intent_violation_whatever_policy_says() {
    let judgement = Scenario::agreeing().intent(API_TO_WEB, Expect::Deny).intent(CRON_TO_WEB, Expect::Allow).judge();
    assert_eq!(outcomes(&judgement), [Outcome::IntentViolation, Outcome::IntentViolation, Outcome::Pass]);
    let record = &judgement.probes[API_TO_WEB];
    assert_eq!(record.expected, Expectation::Allow, "policy's expectation is kept beside it");
    assert_eq!(record.detail.as_deref(), Some("intent isolation/s0 says deny, and the network let it through"));
    let intent = record.intent.as_ref().expect("the statement is recorded");
    assert_eq!((intent.statement.as_str(), intent.expect), ("isolation/s0", Expectation::Deny));
    assert_eq!(
        judgement.probes[CRON_TO_WEB].detail.as_deref(),
        Some("intent isolation/s1 says allow, and the network refused it")
    );

    // The network agreeing with intent where it disagrees with policy: policy's mismatch.
    let blocked =
        Scenario::agreeing().intent(API_TO_WEB, Expect::Deny).observe(API_TO_WEB, answered(&[Timeout])).judge();
    assert_eq!(blocked.probes[API_TO_WEB].outcome, Outcome::UnexpectedDeny);

    // Kinds netcanary does not evaluate cannot explain the network doing what intent forbids.
    let cilium = SnapshotFacts { unreadable: Vec::new(), unevaluated: vec!["1 CiliumNetworkPolicy".into()] };
    let with_cilium = Scenario { facts: cilium, ..Scenario::agreeing() }.intent(API_TO_WEB, Expect::Deny).judge();
    assert_eq!(with_cilium.probes[API_TO_WEB].outcome, Outcome::IntentViolation);

    // A probe error stays inconclusive.
    let error = Scenario::agreeing().intent(API_TO_WEB, Expect::Deny).observe(API_TO_WEB, answered(&[Error])).judge();
    assert_eq!(error.probes[API_TO_WEB].outcome, Outcome::Inconclusive);
}

#[test]
fn a_statement_no_probe_checks_is_a_problem_not_a_pass() {
    let why = "intent isolation/nobody is not verified: `from` selects no pod this run probes".to_string();
    let judgement = Scenario { unverified_intent: vec![why.clone()], ..Scenario::agreeing() }.judge();
    assert_eq!(outcomes(&judgement), [Outcome::Pass; 3]);
    assert_eq!(judgement.problems, [why]);
}

/// Each cell sent by the pod path and through its Service: the backend pod's verdict is the
/// expectation of both, and a door open only through the Service says so.
#[test]
fn every_path_expects_the_backends_verdict_and_a_mismatch_only_through_a_service_says_so() {
    let mut plan = plan();
    let canary = plan.probes.pop().expect("the canary");
    netcanary_planner::paths::by_paths(&mut plan, &[ProbePath::Service, ProbePath::Pod], &Default::default());
    plan.probes.push(canary);
    let pods = ProbePodCluster::new(&cluster(true), &plan, "r1", &everyone_placed(), &["kube-system/coredns-1".into()]);
    let dns = WorkloadRef { namespace: "kube-system".into(), workload: "kube-dns".into() };
    // api → web by pod and service, cron → web by pod and service (open through the
    // Service only), api → DNS, the canary.
    let observations =
        [Connected, Connected, Timeout, Connected, Connected, Timeout].map(|observed| answered(&[observed]));
    let judgement = judge_run(&Evidence {
        plan: &plan,
        canary: 5,
        canary_namespace: "netcanary",
        dns_service: &dns,
        facts: &SnapshotFacts::default(),
        probe_pods: &pods,
        observations: &observations,
    });
    let rows: Vec<(ProbePath, Expectation, Outcome)> =
        judgement.probes.iter().map(|p| (p.path, p.expected, p.outcome)).collect();
    assert_eq!(
        rows,
        [
            (ProbePath::Pod, Expectation::Allow, Outcome::Pass),
            (ProbePath::Service, Expectation::Allow, Outcome::Pass),
            (ProbePath::Pod, Expectation::Deny, Outcome::Pass),
            (ProbePath::Service, Expectation::Deny, Outcome::UnexpectedAllow),
            (ProbePath::Service, Expectation::Allow, Outcome::Pass),
        ]
    );
    let detail = judgement.probes[3].detail.as_deref().unwrap_or_default();
    assert!(detail.starts_with("only through the Service (by the Service's ClusterIP)"), "{detail}");
    assert!(detail.ends_with("saw connected"), "the prober's detail is kept: {detail}");
    assert_eq!(judgement.probes[1].detail.as_deref(), Some("saw connected"), "a pass says nothing of paths");
    assert_eq!(judgement.canary, Canary::Enforced);
}
