//! `netcanary run` end to end, on the bed of `tests/common/bed.rs`: the real binary against
//! a real kube-apiserver, a fake kubelet running the probe pods in network namespaces, and a
//! network each scenario programs in nftables.
//!
//! Needs root, network namespaces and the kube-apiserver fixture: see
//! `tests/common/netns.rs` and `tests/common/kube_fixture.rs` for how a test skips or fails
//! without them.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::bed::{
    Bed, CLUSTER_DNS, CLUSTER_POLICIES, NODE_IP, Ran, apply, enforcing_rules, enforcing_rules_and,
    install_cluster_policy_crds, output_within, revoke_api_group, summary, tiered_rules,
};
use common::kubelet::PodFilter;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::Api;
use netcanary_verify::{Canary, Expectation, Outcome, ProbeRecord, RunRecord};
use serde_json::json;

/// What the bed's policies say, written by hand from `APP` (tests/common/bed.rs), for every
/// cell a run may probe, keyed by source namespace, destination namespace, port, protocol
/// and kind:
/// - prod isolates its pods for ingress; only pods of namespace dev reach app=api on
///   8080/TCP, so 9000/UDP and every other source are denied;
/// - dev and kube-system have no policy, and nothing isolates egress: both admit everyone;
/// - DNS (kind `dns`) goes to kube-system's DNS pods, which nothing isolates.
const POLICY_SAYS: [Cell; 10] = [
    ("dev", "prod", 8080, "TCP", "tcp", Expectation::Allow),
    ("dev", "prod", 9000, "UDP", "udp", Expectation::Deny),
    ("prod", "prod", 8080, "TCP", "tcp", Expectation::Deny),
    ("prod", "prod", 9000, "UDP", "udp", Expectation::Deny),
    ("kube-system", "prod", 8080, "TCP", "tcp", Expectation::Deny),
    ("kube-system", "prod", 9000, "UDP", "udp", Expectation::Deny),
    ("prod", "dev", 8080, "TCP", "tcp", Expectation::Allow),
    ("dev", "dev", 8080, "TCP", "tcp", Expectation::Allow),
    ("kube-system", "dev", 8080, "TCP", "tcp", Expectation::Allow),
    // DNS over UDP and TCP, and the DNS pods' probe pod as a target on 53.
    ("*", "kube-system", 53, "*", "*", Expectation::Allow),
];

/// A cell of a hand-written table: source namespace, destination namespace, port, protocol,
/// kind (`*` matches any), and what policy says.
type Cell = (&'static str, &'static str, u16, &'static str, &'static str, Expectation);

/// The expectation of a probe's cell in the bed's own table.
fn policy_says(p: &ProbeRecord) -> Expectation {
    says(&POLICY_SAYS, p)
}

/// The hand-written expectation of a probe's cell; a cell the table lacks fails the test.
fn says(table: &[Cell], p: &ProbeRecord) -> Expectation {
    let matches = |want: &str, got: &str| want == "*" || want == got;
    table
        .iter()
        .find(|(from, to, port, protocol, kind, _)| {
            matches(from, &p.source.namespace)
                && matches(to, &p.destination.namespace)
                && *port == p.port
                && matches(protocol, &p.protocol)
                && matches(kind, &p.kind)
        })
        .map(|cell| cell.5)
        .unwrap_or_else(|| {
            panic!(
                "no hand-written expectation for {} -> {} {}/{} ({})",
                p.source, p.destination, p.port, p.protocol, p.kind
            )
        })
}

fn allowed(p: &ProbeRecord) -> bool {
    policy_says(p) == Expectation::Allow
}

/// Asserts every probe's outcome at once, listing all that differ, and that the run
/// expected of each cell what the bed's hand-written table says.
fn assert_outcomes(ran: &Ran, want: impl Fn(&ProbeRecord) -> Outcome) {
    assert_outcomes_in(&POLICY_SAYS, ran, want)
}

/// [`assert_outcomes`] against `table`.
fn assert_outcomes_in(table: &[Cell], ran: &Ran, want: impl Fn(&ProbeRecord) -> Outcome) {
    let policy_says = |p: &ProbeRecord| says(table, p);
    let wrong: Vec<String> = ran
        .record
        .probes
        .iter()
        .filter(|p| p.outcome != want(p) || p.expected != policy_says(p))
        .map(|p| {
            format!(
                "  {} -> {} {}/{}: want {} (policy says {}), got {} (expected {})",
                p.source,
                p.destination,
                p.port,
                p.protocol,
                want(p).as_str(),
                policy_says(p),
                p.outcome.as_str(),
                p.expected,
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "wrong outcomes:\n{}\nrun:\n{}\nstderr:\n{}",
        wrong.join("\n"),
        summary(&ran.record),
        ran.stderr
    );
}

/// Asserts the plan holds the probes the scenarios reason about.
fn assert_plan(record: &RunRecord) {
    let has = |what: &str, test: &dyn Fn(&ProbeRecord) -> bool| {
        assert!(record.probes.iter().any(test), "no probe {what} in the plan:\n{}", summary(record));
    };
    for namespace in ["prod", "dev"] {
        has(&format!("for DNS from {namespace}"), &|p| p.kind == "dns" && p.source.namespace == namespace);
    }
    has("dev -> prod 8080/TCP, allowed", &|p| {
        p.source.namespace == "dev" && p.destination.namespace == "prod" && p.port == 8080 && allowed(p)
    });
    has("into prod, denied", &|p| p.destination.namespace == "prod" && !allowed(p));
}

fn is_to_prod(probe: &ProbeRecord) -> bool {
    probe.kind != "dns" && probe.destination.namespace == "prod"
}

#[tokio::test]
async fn enforcing_network_passes_every_probe() {
    let Some(bed) = Bed::new("enforcing_network_passes_every_probe", None).await else { return };
    bed.kubelet.net().nft_hub(&enforcing_rules(&bed.kubelet));
    let ran = bed.run().await;
    assert_plan(&ran.record);
    assert_outcomes(&ran, |_| Outcome::Pass);
    assert_eq!(ran.record.canary, Canary::Enforced, "{}", ran.stderr);
    assert!(ran.record.problems.is_empty(), "{:?}", ran.record.problems);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let status = bed.run_status(&ran.record.run_id).await;
    assert_eq!(status["result"], "Passed", "{status}");
    assert_eq!(status["canary"]["state"], "enforced", "{status}");
    assert!(bed.events(&ran.record.run_id).await.is_empty(), "a passing run emits no Warning events");
}

#[tokio::test]
async fn network_enforcing_nothing_is_caught() {
    let Some(bed) = Bed::new("network_enforcing_nothing_is_caught", None).await else { return };
    // A probe pod left by a run that crashed (it has no NetcanaryRun): the run sweeps it.
    let leftover: Pod = serde_json::from_value(json!({
        "metadata": {
            "name": "netcanary-crashed-t0",
            "namespace": "dev",
            "labels": {"app.kubernetes.io/managed-by": "netcanary", "netcanary.io/run-id": "crashed"}
        },
        "spec": {"containers": [{"name": "netcanary", "image": "netcanary:test", "args": ["target", "--tcp", "7"]}]}
    }))
    .expect("a valid Pod");
    let dev: Api<Pod> = Api::namespaced(bed.client.clone(), "dev");
    dev.create(&Default::default(), &leftover).await.expect("create the leftover pod");
    let ran = bed.run().await;
    assert!(
        dev.get_opt("netcanary-crashed-t0")
            .await
            .expect("read the leftover pod")
            .is_none_or(|p| p.metadata.deletion_timestamp.is_some()),
        "the run did not sweep the pod a crashed run left"
    );
    assert_plan(&ran.record);
    assert_outcomes(&ran, |p| if allowed(p) { Outcome::Pass } else { Outcome::UnexpectedAllow });
    assert_eq!(ran.record.canary, Canary::NotEnforced);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let denied = ran.record.probes.iter().filter(|p| !allowed(p)).count();
    let status = bed.run_status(&ran.record.run_id).await;
    assert_eq!(status["result"], "Mismatch", "{status}");
    assert_eq!(status["unexpectedAllow"], denied, "{status}");
    assert_eq!(status["canary"]["state"], "notEnforced", "{status}");
    let mismatches = status["mismatches"].as_array().expect("mismatches in the status");
    assert_eq!(mismatches.len(), denied, "{status}");
    assert!(mismatches.iter().all(|m| m["kind"] == "unexpected_allow" && m["expected"] == "deny"), "{status}");
    let events = bed.events(&ran.record.run_id).await;
    assert_eq!(events.len(), denied, "one Warning event per mismatch: {events:?}");
    assert!(
        events.iter().all(|e| e.type_.as_deref() == Some("Warning") && e.reason.as_deref() == Some("UnexpectedAllow"))
    );
}

#[tokio::test]
async fn dropped_dns_is_an_unexpected_deny() {
    let Some(bed) = Bed::new("dropped_dns_is_an_unexpected_deny", None).await else { return };
    let dns_drop = format!(
        "table inet netcanary_dns {{
  chain forward {{
    type filter hook forward priority -10; policy accept;
    ip daddr {CLUSTER_DNS} meta l4proto {{ tcp, udp }} th dport 53 drop
  }}
}}
"
    );
    {
        let net = bed.kubelet.net();
        net.nft_hub(&enforcing_rules(&bed.kubelet));
        // A table of its own, before the enforcing one: it drops even what that one accepts.
        net.nft_hub(&dns_drop);
    }
    let ran = bed.run().await;
    assert!(ran.record.probes.iter().any(|p| p.kind == "dns"), "no DNS probe:\n{}", summary(&ran.record));
    assert_outcomes(&ran, |p| if p.kind == "dns" { Outcome::UnexpectedDeny } else { Outcome::Pass });
    assert_eq!(ran.record.canary, Canary::Enforced);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let status = bed.run_status(&ran.record.run_id).await;
    assert_eq!(status["result"], "Mismatch", "{status}");
}

/// A round's probing may outlast the pods' start-up timeout: the run waits for as long as
/// the plan's probes may take. A dropped probe takes its 4 s timeout, against a start-up
/// timeout of 2 s; each probe pod keeps one probe in flight, four at most a round.
#[tokio::test]
async fn probing_longer_than_pod_start_up_is_waited_for() {
    let Some(bed) = Bed::new("probing_longer_than_pod_start_up_is_waited_for", None).await else { return };
    bed.kubelet.net().nft_hub(&enforcing_rules(&bed.kubelet));
    let mut command = bed.command_with_deadline(Duration::from_secs(90));
    command.args(["--pod-start-timeout", "2s", "--timeout", "4s"]);
    command.args(["--probe-concurrency", "1", "--max-round-time", "16s"]);
    let ran = bed.run_with(command).await;
    // Everything into prod but dev's 8080/TCP is dropped: such a probe takes its timeout.
    let dropped = ran.record.probes.iter().filter(|p| is_to_prod(p) && !allowed(p)).count();
    assert!(dropped > 0, "no dropped probe, which this test needs:\n{}", summary(&ran.record));
    assert_outcomes(&ran, |_| Outcome::Pass);
    assert!(ran.record.problems.is_empty(), "{:?}", ran.record.problems);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let waited = ran.record.timings.pods_seconds;
    assert!(waited >= 4.0, "a dropped probe takes 4 s, yet the pods took {waited:.1} s");
    let mut sent: BTreeMap<String, usize> = BTreeMap::new();
    for probe in &ran.record.probes {
        *sent.entry(probe.source.to_string()).or_default() += 1;
    }
    assert!(sent.values().all(|&n| n <= 4), "more than four probes from one pod: {sent:?}");
}

#[tokio::test]
async fn probe_pod_that_never_starts_is_inconclusive() {
    // Every target in prod stays Pending: the probes into prod cannot run.
    let never_start: PodFilter = Arc::new(|pod: &Pod| {
        let first_arg =
            pod.spec.as_ref().and_then(|s| s.containers.first()).and_then(|c| c.args.as_ref()?.first().cloned());
        pod.namespace().as_deref() == Some("prod") && first_arg.as_deref() == Some("target")
    });
    let Some(bed) = Bed::new("probe_pod_that_never_starts_is_inconclusive", Some(never_start)).await else { return };
    bed.kubelet.net().nft_hub(&enforcing_rules(&bed.kubelet));
    let ran = bed.run().await;
    assert!(ran.record.probes.iter().any(is_to_prod), "no probe into prod:\n{}", summary(&ran.record));
    assert_outcomes(&ran, |p| if is_to_prod(p) { Outcome::Inconclusive } else { Outcome::Pass });
    assert_eq!(ran.record.canary, Canary::Enforced);
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    let targets = bed.kubelet.never_started();
    assert!(!targets.is_empty(), "no pod was held back");
    for target in &targets {
        assert!(
            ran.record.problems.iter().any(|p| p.contains(target.as_str())),
            "pod {target} never started, yet the run's problems do not say so: {:?}",
            ran.record.problems
        );
    }
    let status = bed.run_status(&ran.record.run_id).await;
    assert_eq!(status["result"], "Inconclusive", "{status}");
    assert!(status["problems"].as_array().is_some_and(|p| !p.is_empty()), "{status}");
}

#[tokio::test]
async fn interrupted_run_still_cleans_up() {
    signalled_run_still_cleans_up("interrupted_run_still_cleans_up", "-INT").await;
}

/// SIGTERM is what a run in a Job gets when the Job is deleted or passes its deadline.
#[tokio::test]
async fn terminated_run_still_cleans_up() {
    signalled_run_still_cleans_up("terminated_run_still_cleans_up", "-TERM").await;
}

async fn signalled_run_still_cleans_up(test: &str, signal: &str) {
    let Some(bed) = Bed::new(test, None).await else { return };
    let started = Instant::now();
    let child = bed.command().stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start netcanary");
    // Signalled once its first pods run: they must go all the same.
    bed.wait_for_probe_pod(Duration::from_secs(30)).await;
    let pid = child.id().to_string();
    assert!(Command::new("kill").args([signal, &pid]).status().expect("run kill").success());
    let ran = Ran::new(child.wait_with_output().expect("wait for netcanary"), started.elapsed());
    assert!(ran.record.problems.iter().any(|p| p.contains("interrupted")), "{:?}", ran.record.problems);
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    bed.assert_cleaned_up(&ran).await;
    let status = bed.run_status(&ran.record.run_id).await;
    assert_eq!(status["result"], "Inconclusive", "{status}");
}

#[tokio::test]
async fn api_server_lost_mid_run_ends_the_run_and_the_next_run_sweeps() {
    /// The lost run's deadline: it must end by then whatever the API server does.
    const DEADLINE: Duration = Duration::from_secs(20);
    let Some(mut bed) = Bed::new("api_server_lost_mid_run_ends_the_run_and_the_next_run_sweeps", None).await else {
        return;
    };
    bed.kubelet.net().nft_hub(&enforcing_rules(&bed.kubelet));
    let started = Instant::now();
    let child = bed
        .command_with_deadline(DEADLINE)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start netcanary");
    bed.wait_for_probe_pod(Duration::from_secs(30)).await;
    bed.kube.kill();
    let lost_at = started.elapsed();
    let (out, elapsed) = output_within(child, DEADLINE + Duration::from_secs(40), "a run that lost its API server");
    let ran = Ran::new(out, started.elapsed());
    eprintln!("API server killed {lost_at:?} into the run; the run exited {elapsed:?} later");
    assert!(!ran.stderr.contains("panicked"), "{}", ran.stderr);
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.elapsed < DEADLINE + Duration::from_secs(10),
        "the run took {:?} with a deadline of {DEADLINE:?}",
        ran.elapsed
    );
    assert!(
        ran.record.problems.iter().any(|p| p.starts_with("kubernetes API: ")),
        "no problem names the API: {:?}",
        ran.record.problems
    );
    assert!(ran.stderr.contains("kubernetes API: "), "the log does not name the API:\n{}", ran.stderr);

    // The API server comes back with everything the lost run created, its pods included.
    bed.kube.restart().unwrap_or_else(|e| panic!("{e}"));
    let lost = format!("netcanary.io/run-id={}", ran.record.run_id);
    assert!(!bed.pod_names(&lost).await.is_empty(), "the lost run's pods did not survive the restart");
    // Its NetcanaryRun never finished, so only its deadline tells the next run it is over.
    let record = bed.run_records().await.into_iter().find(|r| r.name_any() == ran.record.run_id);
    let record = record.expect("the lost run's NetcanaryRun");
    assert!(record.data.pointer("/status/finishedAt").is_none(), "{:?}", record.data);
    let deadline_at: k8s_openapi::jiff::Timestamp = record.data["spec"]["deadlineAt"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no spec.deadlineAt in {:?}", record.data));
    let wait = deadline_at.duration_since(k8s_openapi::jiff::Timestamp::now());
    tokio::time::sleep(Duration::try_from(wait).unwrap_or_default() + Duration::from_millis(100)).await;
    let next = bed.run().await;
    assert_eq!(next.code, 0, "{}", next.stderr);
    bed.assert_no_pods(&lost, &format!("the pods of the lost run were not swept by the next:\n{}", next.stderr)).await;
}

#[tokio::test]
async fn api_server_that_stops_answering_does_not_hold_the_run() {
    const DEADLINE: Duration = Duration::from_secs(10);
    /// What may follow the deadline: cleanup, then the PolicyReports and the record's status,
    /// 15 s each at most.
    const WRAP_UP: Duration = Duration::from_secs(30);
    let Some(bed) = Bed::new("api_server_that_stops_answering_does_not_hold_the_run", None).await else { return };
    bed.kubelet.net().nft_hub(&enforcing_rules(&bed.kubelet));
    let started = Instant::now();
    let child = bed.command_with_deadline(DEADLINE).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    bed.wait_for_probe_pod(Duration::from_secs(30)).await;
    let frozen = bed.kube.freeze();
    let (out, _) = output_within(child, DEADLINE + WRAP_UP + Duration::from_secs(10), "a run whose API server froze");
    drop(frozen);
    let ran = Ran::new(out, started.elapsed());
    assert!(!ran.stderr.contains("panicked"), "{}", ran.stderr);
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(ran.elapsed < DEADLINE + WRAP_UP + Duration::from_secs(5), "the run took {:?}", ran.elapsed);
    let deadline = format!("the run did not finish within its deadline of {} s", DEADLINE.as_secs());
    assert!(ran.record.problems.contains(&deadline), "{:?}", ran.record.problems);
    assert!(
        ran.record.problems.iter().any(|p| p.starts_with("cleanup: kubernetes API: ")),
        "{:?}",
        ran.record.problems
    );
}

/// What the bed's NetworkPolicies and `CLUSTER_POLICIES` (tests/common/bed.rs) say, by
/// hand, for every cell a run may probe. The cells that differ from [`POLICY_SAYS`] are
/// marked.
const TIERS_SAY: [Cell; 10] = [
    ("dev", "prod", 8080, "TCP", "tcp", Expectation::Allow),
    ("dev", "prod", 9000, "UDP", "udp", Expectation::Deny),
    ("prod", "prod", 8080, "TCP", "tcp", Expectation::Deny),
    ("prod", "prod", 9000, "UDP", "udp", Expectation::Deny),
    // Admin Accept, before prod's isolation.
    ("kube-system", "prod", 8080, "TCP", "tcp", Expectation::Allow),
    ("kube-system", "prod", 9000, "UDP", "udp", Expectation::Deny),
    // Admin Pass, nothing isolates dev, then Baseline Deny.
    ("prod", "dev", 8080, "TCP", "tcp", Expectation::Deny),
    ("dev", "dev", 8080, "TCP", "tcp", Expectation::Allow),
    // Admin Deny.
    ("kube-system", "dev", 8080, "TCP", "tcp", Expectation::Deny),
    ("*", "kube-system", 53, "*", "*", Expectation::Allow),
];

/// A bed with the network-policy-api CRDs and `CLUSTER_POLICIES`, its network enforcing
/// them (the Admin Deny only if `admin_deny`); the run's record.
async fn run_with_tiers(test: &str, admin_deny: bool) -> Option<Ran> {
    let bed = Bed::new(test, None).await?;
    install_cluster_policy_crds(&bed.client).await;
    apply(&bed.client, CLUSTER_POLICIES).await;
    bed.kubelet.net().nft_hub(&tiered_rules(&bed.kubelet, admin_deny));
    Some(bed.run().await)
}

fn is_kube_system_to_dev(p: &ProbeRecord) -> bool {
    p.kind != "dns" && p.source.namespace == "kube-system" && p.destination.namespace == "dev"
}

/// A run judges through the tiers, all three kinds read: every cell as the table says, the
/// explanations naming tier, policy, rule and action, and every cluster policy rule
/// planned and exercised.
#[tokio::test]
async fn cluster_policy_tiers_are_judged_and_pass_where_enforced() {
    let Some(ran) = run_with_tiers("cluster_policy_tiers_are_judged_and_pass_where_enforced", true).await else {
        return;
    };
    assert_outcomes_in(&TIERS_SAY, &ran, |_| Outcome::Pass);
    let because = |from: &str, to: &str, port: u16| {
        let probe =
            ran.record.probes.iter().find(|p| {
                p.kind != "dns" && p.source.namespace == from && p.destination.namespace == to && p.port == port
            });
        probe
            .unwrap_or_else(|| panic!("no probe {from} -> {to} {port}:\n{}", summary(&ran.record)))
            .expected_because
            .clone()
    };
    assert_eq!(
        because("kube-system", "dev", 8080),
        r#"ingress denied by Admin tier ClusterNetworkPolicy/dev-guard ingress "deny-kube-system" (Deny)"#
    );
    assert_eq!(
        because("kube-system", "prod", 8080),
        r#"ingress accepted by Admin tier AdminNetworkPolicy/api-from-kube-system ingress "accept-kube-system" (Accept)"#
    );
    assert_eq!(
        because("prod", "dev", 8080),
        "ingress passed on by Admin tier ClusterNetworkPolicy/dev-guard ingress \"pass-prod\" (Pass); \
         ingress denied by Baseline tier BaselineAdminNetworkPolicy/default ingress \"deny-prod\" (Deny)"
    );
    // api-from-dev's rule, and the four rules of the cluster policies.
    let coverage = ran.record.coverage.expect("coverage");
    assert_eq!((coverage.rules, coverage.planned, coverage.exercised), (5, 5, 5), "{}", summary(&ran.record));
    assert_eq!(ran.record.canary, Canary::Enforced);
    assert!(ran.record.problems.is_empty(), "{:?}", ran.record.problems);
    // Both generations: the warning analyze gives, which leaves the run verified.
    assert!(
        ran.record.warnings.iter().any(|w| w.starts_with(
            "both policy.networking.k8s.io/v1alpha1 and v1alpha2 policies are present (AdminNetworkPolicy \
             api-from-kube-system and ClusterNetworkPolicy dev-guard)"
        )),
        "{:?}",
        ran.record.warnings
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
}

/// A network that ignores the Admin Deny fails on exactly the cells it decides.
#[tokio::test]
async fn an_admin_deny_not_enforced_fails_on_exactly_its_cells() {
    let Some(ran) = run_with_tiers("an_admin_deny_not_enforced_fails_on_exactly_its_cells", false).await else {
        return;
    };
    assert!(
        ran.record.probes.iter().any(is_kube_system_to_dev),
        "no probe kube-system -> dev:\n{}",
        summary(&ran.record)
    );
    assert_outcomes_in(&TIERS_SAY, &ran, |p| {
        if is_kube_system_to_dev(p) { Outcome::UnexpectedAllow } else { Outcome::Pass }
    });
    assert_eq!(ran.record.canary, Canary::Enforced);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
}

/// A cluster whose RBAC keeps netcanary from listing the cluster policy kinds: any of those
/// policies could decide any pair, so every probe is inconclusive and the record says why.
#[tokio::test]
async fn cluster_policies_netcanary_may_not_list_leave_every_probe_inconclusive() {
    let Some(bed) = Bed::new("cluster_policies_netcanary_may_not_list_leave_every_probe_inconclusive", None).await
    else {
        return;
    };
    install_cluster_policy_crds(&bed.client).await;
    assert!(revoke_api_group(&bed.client, "policy.networking.k8s.io").await > 0);
    bed.kubelet.net().nft_hub(&enforcing_rules(&bed.kubelet));
    let ran = bed.run().await;
    assert!(!ran.record.probes.is_empty(), "{}", summary(&ran.record));
    assert!(
        ran.record.probes.iter().all(|p| p.outcome == Outcome::Inconclusive
            && p.detail.as_deref() == Some("a cluster-scoped policy or Node could not be read")),
        "{}",
        summary(&ran.record)
    );
    for kind in ["ClusterNetworkPolicy", "AdminNetworkPolicy", "BaselineAdminNetworkPolicy"] {
        let refused = format!("every {kind} cannot be read and was skipped: the API server refused to list them: ");
        assert!(ran.record.problems.iter().any(|p| p.starts_with(&refused)), "{kind}: {:?}", ran.record.problems);
    }
    assert_eq!(ran.code, 2, "{}", ran.stderr);
}

/// What the bed's policies and `NO_NODES_FROM_DEV` (tests/common/bed.rs) say, by hand: dev's pods do not reach the
/// node; every other source does (nothing isolates their egress); the rest as POLICY_SAYS.
fn node_says() -> Vec<Cell> {
    let node =
        [("dev", "", 10250, "TCP", "tcp", Expectation::Deny), ("*", "", 10250, "TCP", "tcp", Expectation::Allow)];
    node.into_iter().chain(POLICY_SAYS).collect()
}

/// A run with a worker Node ([`Bed::add_worker_node`]), every source probing it (`--to`), on
/// a network that enforces the bed's NetworkPolicies and, when `node_deny` is set, dev →
/// node's Deny.
async fn run_with_a_node(test: &str, node_deny: bool) -> Option<Ran> {
    let bed = Bed::new(test, None).await?;
    let _kubelet_port = bed.add_worker_node().await;
    let dev = bed.kubelet.subnet("dev");
    let deny = if node_deny { format!("ip saddr {dev} ip daddr {NODE_IP} drop") } else { String::new() };
    bed.kubelet.net().nft_hub(&enforcing_rules_and(&bed.kubelet, &deny));
    let mut command = bed.command();
    command.args(["--to", &format!("{NODE_IP}:10250/TCP")]);
    Some(bed.run_with(command).await)
}

fn is_to_the_node(p: &ProbeRecord) -> bool {
    p.destination.workload == NODE_IP
}

/// Every source probes the node; dev's probe is denied by the `nodes` peer, and passes
/// where the network drops it.
#[tokio::test]
async fn a_nodes_peer_is_judged_by_the_nodes_addresses() {
    let Some(ran) = run_with_a_node("a_nodes_peer_is_judged_by_the_nodes_addresses", true).await else { return };
    let sources: BTreeSet<&str> =
        ran.record.probes.iter().filter(|p| is_to_the_node(p)).map(|p| p.source.namespace.as_str()).collect();
    assert_eq!(sources, BTreeSet::from(["dev", "kube-system", "prod"]), "{}", summary(&ran.record));
    let from_dev = ran.record.probes.iter().find(|p| is_to_the_node(p) && p.source.namespace == "dev").expect("dev");
    assert!(from_dev.expected_because.contains("dev-no-nodes"), "{}", from_dev.expected_because);
    assert_outcomes_in(&node_says(), &ran, |_| Outcome::Pass);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
}

/// A network that lets dev reach the node fails on exactly that cell.
#[tokio::test]
async fn a_nodes_peer_not_enforced_fails_on_exactly_its_cell() {
    let Some(ran) = run_with_a_node("a_nodes_peer_not_enforced_fails_on_exactly_its_cell", false).await else {
        return;
    };
    let dev_to_node = |p: &ProbeRecord| is_to_the_node(p) && p.source.namespace == "dev";
    assert!(ran.record.probes.iter().any(dev_to_node), "{}", summary(&ran.record));
    assert_outcomes_in(&node_says(), &ran, |p| if dev_to_node(p) { Outcome::UnexpectedAllow } else { Outcome::Pass });
    assert_eq!(ran.code, 1, "{}", ran.stderr);
}

/// dev's egress is decided by a rule naming domains, then a Deny: whether a name resolves to
/// the far end no cluster object says.
const DOMAIN_POLICY: &str = r#"
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: dev-egress}
spec:
  tier: Admin
  priority: 10
  subject: {namespaces: {matchLabels: {kubernetes.io/metadata.name: dev}}}
  egress:
    - {name: to-example, action: Accept, to: [{domainNames: [example.com]}]}
    - {name: deny-rest, action: Deny, to: [{namespaces: {}}]}
"#;

/// Where a rule naming domains could decide, the expectation is `unknown` and the probe
/// inconclusive, whatever the network does: every probe from dev that the far side admits.
/// Where the far side denies anyway (prod's ingress on 9000/UDP), the answer is known, and
/// everything else is judged as usual.
#[tokio::test]
async fn cluster_policy_answers_not_known_from_cluster_objects_are_inconclusive() {
    let Some(bed) = Bed::new("cluster_policy_answers_not_known_from_cluster_objects_are_inconclusive", None).await
    else {
        return;
    };
    install_cluster_policy_crds(&bed.client).await;
    apply(&bed.client, DOMAIN_POLICY).await;
    bed.kubelet.net().nft_hub(&enforcing_rules(&bed.kubelet));
    let ran = bed.run().await;
    let from_dev = |p: &ProbeRecord| p.source.namespace == "dev";
    assert!(ran.record.probes.iter().any(from_dev), "no probe from dev:\n{}", summary(&ran.record));
    let wrong: Vec<String> = ran
        .record
        .probes
        .iter()
        .filter(|p| {
            if from_dev(p) && policy_says(p) == Expectation::Allow {
                let detail = p.detail.as_deref().unwrap_or_default();
                (p.expected, p.outcome) != (Expectation::Unknown, Outcome::Inconclusive)
                    || !detail.contains(r#"ClusterNetworkPolicy/dev-egress egress "to-example" names domains"#)
            } else {
                (p.expected, p.outcome) != (policy_says(p), Outcome::Pass)
            }
        })
        .map(|p| format!("  {} -> {} {}/{}: {:?}", p.source, p.destination, p.port, p.protocol, p))
        .collect();
    assert!(wrong.is_empty(), "wrong:\n{}\nrun:\n{}", wrong.join("\n"), summary(&ran.record));
    let known_deny = ran.record.probes.iter().find(|p| from_dev(p) && p.port == 9000);
    assert_eq!(
        known_deny.map(|p| p.expected_because.as_str()),
        Some("ingress isolated by prod/api-from-dev, prod/default-deny-ingress and no rule allows it"),
        "{}",
        summary(&ran.record)
    );
    assert_eq!(ran.code, 2, "{}", ran.stderr);
}
