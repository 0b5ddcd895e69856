//! `netcanary run` against a real node's dataplane: kube-router enforcing NetworkPolicy in
//! the node of `tests/common/node.rs`. Every probed cell is held to an expectation written
//! here by hand from the scenario's policies, never to what netcanary's engine computes.
//!
//! Needs root, network namespaces, iptables, ipset, the kube-apiserver fixture and
//! kube-router: see `tests/common/node.rs` for how a test skips or fails without them.

mod common;

use std::time::Instant;

use common::bed::{Bed, Ran, summary, workload};
use common::kubelet::KubeletOptions;
use common::node;
use netcanary_verify::{Canary, Expectation, Outcome, ProbeRecord};

/// One cell of a hand-written table: source and destination as `namespace/workload`, port,
/// protocol and kind (`tcp`, `udp`, `dns`), each `*` for any; the first matching row wins.
type Cell = (&'static str, &'static str, u16, &'static str, &'static str, Expectation);

use Expectation::{Allow, Deny};

/// The hand-written expectation of a probe's cell; a cell the table lacks fails the test.
fn policy_says(table: &[Cell], p: &ProbeRecord) -> Expectation {
    let matches =
        |want: &str, got: &str| want == "*" || want == got || want.strip_suffix("/*") == got.split('/').next();
    table
        .iter()
        .find(|(from, to, port, protocol, kind, _)| {
            matches(from, &p.source.to_string())
                && matches(to, &p.destination.to_string())
                && (*port == 0 || *port == p.port)
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

/// Asserts that the run expected of every cell what the table says and that every probe
/// passed: the dataplane did what policy says. Lists every probe that differs.
fn assert_all_pass(bed: &Bed, ran: &Ran, table: &[Cell]) {
    let wrong: Vec<String> = ran
        .record
        .probes
        .iter()
        .filter(|p| p.outcome != Outcome::Pass || p.expected != policy_says(table, p))
        .map(|p| {
            format!(
                "  {} -> {} {}/{} ({}): policy says {}, the run expected {}, observed {:?}: {} ({})",
                p.source,
                p.destination,
                p.port,
                p.protocol,
                p.kind,
                policy_says(table, p),
                p.expected,
                p.observed,
                p.outcome.as_str(),
                p.detail.as_deref().unwrap_or("-")
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "probes that did not pass as the hand-written table says:\n{}\nrun:\n{}\nkube-router:\n{}\nnode rules:\n{}",
        wrong.join("\n"),
        summary(&ran.record),
        bed.kube_router_log(),
        bed.node_rules()
    );
}

/// `netcanary run` with the rounds a node needs: a probe pod is programmed by kube-router
/// only once it runs, so a first round may see it open.
async fn run(bed: &Bed) -> Ran {
    let mut command = bed.netcanary("run");
    command.args(["--round-wait", "2s", "--rounds", "3", "-o", "json", "--deadline", "45s"]);
    bed.run_with(command).await
}

/// Namespace `shop` isolates its pods for ingress and opens, by label, web → api on
/// 8080/TCP and api → db on 5432/TCP.
const SHOP: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny-ingress, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Ingress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api-from-web, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: web}}}]
      ports: [{port: 8080, protocol: TCP}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-api, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: api}}}]
      ports: [{port: 5432, protocol: TCP}]
"#;

const SHOP_SUBNETS: [(&str, u8); 3] = [("shop", 1), ("netcanary", 3), ("kube-system", 4)];

/// What SHOP says, by hand: into shop only web → api 8080/TCP and api → db 5432/TCP;
/// kube-system has no policy, so anyone reaches the DNS pods, over the Service or directly.
const SHOP_SAYS: &[Cell] = &[
    ("shop/web-0", "shop/api-0", 8080, "TCP", "tcp", Allow),
    ("shop/api-0", "shop/db-0", 5432, "TCP", "tcp", Allow),
    ("*", "shop/*", 0, "*", "*", Deny),
    ("*", "kube-system/*", 53, "*", "*", Allow),
];

async fn shop(test: &str) -> Option<Bed> {
    let bed = node::bed(test, KubeletOptions::new(&SHOP_SUBNETS), SHOP).await?;
    bed.kubelet.add_workload(&workload("shop", "web-0", "web", &[(8080, "TCP")])).await;
    bed.kubelet.add_workload(&workload("shop", "api-0", "api", &[(8080, "TCP")])).await;
    bed.kubelet.add_workload(&workload("shop", "db-0", "db", &[(5432, "TCP")])).await;
    Some(bed)
}

#[tokio::test]
async fn label_policy_in_one_namespace_is_enforced_and_verified() {
    let Some(bed) = shop("label_policy_in_one_namespace_is_enforced_and_verified").await else { return };
    let started = Instant::now();
    bed.start_kube_router();
    eprintln!("kube-router synced {:?} after its start", started.elapsed());
    let ran = run(&bed).await;
    assert_all_pass(&bed, &ran, SHOP_SAYS);
    for (from, to, port) in [("shop/web-0", "shop/api-0", 8080), ("shop/api-0", "shop/db-0", 5432)] {
        assert!(
            ran.record.probes.iter().any(|p| p.source.to_string() == from
                && p.destination.to_string() == to
                && p.port == port
                && p.expected == Allow),
            "no probe {from} -> {to} {port} in the plan:\n{}",
            summary(&ran.record)
        );
    }
    assert!(ran.record.probes.iter().any(|p| p.expected == Deny && p.destination.namespace == "shop"));
    assert_eq!(ran.record.canary, Canary::Enforced, "{}", summary(&ran.record));
    assert_eq!(ran.code, 0, "{}", ran.stderr);
}

/// A server with many ports, each opened to everyone by a rule of its own: netcanary plans a
/// witness for every rule, all from one probe pod, whose results then take more room than
/// the pod's termination message keeps when containers were injected into it.
fn wide_app(ports: std::ops::Range<u16>) -> String {
    let rules: String = ports.map(|port| format!("    - ports: [{{port: {port}, protocol: TCP}}]\n")).collect();
    format!(
        "apiVersion: v1
kind: Namespace
metadata: {{name: wide}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: server-ports, namespace: wide}}
spec:
  podSelector: {{matchLabels: {{app: server}}}}
  policyTypes: [Ingress]
  ingress:
{rules}"
    )
}

const WIDE_PORTS: std::ops::Range<u16> = 20000..20400;

/// Every port of the server is open to every pod, by a rule of its own.
const WIDE_SAYS: &[Cell] =
    &[("*", "wide/server-0", 0, "TCP", "tcp", Allow), ("*", "kube-system/*", 53, "*", "*", Allow)];

/// A pod's termination message keeps 12 KiB / N bytes, N counting its containers: a mesh's
/// init container and proxy, a secrets agent's init container and sidecar and a debug
/// container make six, 2 KiB each, and the 400 results of the wide plan (about 3 KiB with
/// their latencies) no longer fit. netcanary reads them from the pod's log instead, which
/// the API server fetches from the kubelet.
#[tokio::test]
async fn results_cut_from_the_termination_message_are_read_from_the_log() {
    let test = "results_cut_from_the_termination_message_are_read_from_the_log";
    let mut options = KubeletOptions::new(&[("wide", 1), ("netcanary", 3), ("kube-system", 4)]);
    options.termination_message_budget = 12 * 1024 / 6;
    let Some(bed) = node::bed(test, options, &wide_app(WIDE_PORTS)).await else { return };
    let ports: Vec<(u16, &str)> = WIDE_PORTS.map(|port| (port, "TCP")).collect();
    bed.kubelet.add_workload(&workload("wide", "server-0", "server", &ports)).await;
    bed.start_kube_router();
    let ran = run(&bed).await;
    assert_all_pass(&bed, &ran, WIDE_SAYS);
    let witnesses = ran.record.probes.iter().filter(|p| p.destination.to_string() == "wide/server-0").count();
    assert_eq!(witnesses, WIDE_PORTS.len(), "one witness per rule:\n{}", summary(&ran.record));
    assert!(
        ran.stderr.contains("reading the results from the pod's log")
            && ran.stderr.contains("unreadable termination message"),
        "no result was read from a pod's log:\n{}",
        ran.stderr
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
}
