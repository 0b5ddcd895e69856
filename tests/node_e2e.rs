//! `netcanary run` against a real node's dataplane: kube-router enforcing NetworkPolicy in
//! the node of `tests/common/node.rs`. Every probed cell is held to an expectation written
//! here by hand from the scenario's policies, never to what netcanary's engine computes.
//!
//! Needs root, network namespaces, iptables, ipset, the kube-apiserver fixture and
//! kube-router: see `tests/common/node.rs` for how a test skips or fails without them.

mod common;

use std::time::{Duration, Instant};

use common::bed::{Bed, Ran, output_within, summary, workload};
use common::kubelet::KubeletOptions;
use common::node;
use k8s_openapi::api::core::v1::Pod;
use netcanary_verify::{Canary, Expectation, Outcome, ProbeRecord};
use serde_json::json;

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
    assert_cells(bed, ran, table, |_| &[Outcome::Pass]);
}

/// Asserts that the run expected of every cell what the table says and that each probe's
/// outcome is one `want` gives for that expectation. Lists every probe that differs.
fn assert_cells(bed: &Bed, ran: &Ran, table: &[Cell], want: impl Fn(Expectation) -> &'static [Outcome]) {
    let wrong: Vec<String> = ran
        .record
        .probes
        .iter()
        .filter(|p| p.expected != policy_says(table, p) || !want(policy_says(table, p)).contains(&p.outcome))
        .map(|p| {
            format!(
                "  {} -> {} {}/{} ({}): policy says {}, the run expected {}, observed {:?}: {}, wanted {} ({})",
                p.source,
                p.destination,
                p.port,
                p.protocol,
                p.kind,
                policy_says(table, p),
                p.expected,
                p.observed,
                p.outcome.as_str(),
                want(policy_says(table, p)).iter().map(|o| o.as_str()).collect::<Vec<_>>().join(" or "),
                p.detail.as_deref().unwrap_or("-")
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "probes whose outcome is not what the hand-written table makes it:\n{}\nrun:\n{}\nkube-router:\n{}\nnode rules:\n{}",
        wrong.join("\n"),
        summary(&ran.record),
        bed.kube_router_log(),
        bed.node_rules()
    );
}

/// Asserts the plan holds a probe of each `(from, to, port, protocol)`, so that a table row
/// a scenario is about was really exercised.
fn assert_probed(ran: &Ran, cells: &[(&str, &str, u16, &str)]) {
    for (from, to, port, protocol) in cells {
        assert!(
            ran.record.probes.iter().any(|p| p.source.to_string() == *from
                && p.destination.to_string() == *to
                && p.port == *port
                && p.protocol == *protocol),
            "no probe {from} -> {to} {port}/{protocol} in the plan:\n{}",
            summary(&ran.record)
        );
    }
}

/// A workload pod with named ports: `(port, protocol, name)`.
fn pod(namespace: &str, name: &str, app: &str, ports: &[(u16, &str, &str)]) -> Pod {
    let ports: Vec<serde_json::Value> = ports
        .iter()
        .map(|(port, protocol, name)| match *name {
            "" => json!({"containerPort": port, "protocol": protocol}),
            _ => json!({"containerPort": port, "protocol": protocol, "name": name}),
        })
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": app}},
        "spec": {"containers": [{"name": app, "image": format!("example/{app}"), "ports": ports}]}
    }))
    .expect("a valid Pod")
}

/// `netcanary run` with the rounds a node needs: a probe pod is programmed by kube-router
/// only once it runs, so a first round may see it open or closed where policy says
/// otherwise; a retry round's pods wait the round wait first.
fn run_command(bed: &Bed) -> std::process::Command {
    run_command_with_rounds(bed, 3)
}

fn run_command_with_rounds(bed: &Bed, rounds: u32) -> std::process::Command {
    let mut command = bed.netcanary("run");
    command.args(["--round-wait", "2s", "--rounds", &rounds.to_string(), "-o", "json", "--deadline", "45s"]);
    command
}

async fn run(bed: &Bed) -> Ran {
    bed.run_with(run_command(bed)).await
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

/// kube-router enforces a label-level policy inside one namespace, and netcanary says so;
/// then kube-router is stopped and its rules removed, and the next run raises the alarm:
/// every door policy closes is open, and the canary connects.
#[tokio::test]
async fn label_policy_in_one_namespace_then_no_enforcement_at_all() {
    let Some(bed) = shop("label_policy_in_one_namespace_then_no_enforcement_at_all").await else { return };
    let started = Instant::now();
    bed.start_kube_router();
    eprintln!("kube-router synced {:?} after its start", started.elapsed());
    let ran = run(&bed).await;
    assert_all_pass(&bed, &ran, SHOP_SAYS);
    assert_probed(&ran, &[("shop/web-0", "shop/api-0", 8080, "TCP"), ("shop/api-0", "shop/db-0", 5432, "TCP")]);
    assert!(ran.record.probes.iter().any(|p| p.expected == Deny && p.destination.namespace == "shop"));
    assert_eq!(ran.record.canary, Canary::Enforced, "{}", summary(&ran.record));
    assert_eq!(ran.code, 0, "{}", ran.stderr);

    bed.stop_kube_router();
    let ran = run(&bed).await;
    assert_cells(
        &bed,
        &ran,
        SHOP_SAYS,
        |says| if says == Deny { &[Outcome::UnexpectedAllow] } else { &[Outcome::Pass] },
    );
    assert_eq!(ran.record.canary, Canary::NotEnforced, "{}", summary(&ran.record));
    assert_eq!(ran.code, 1, "{}", ran.stderr);
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

/// Named ports (TCP and UDP) and an `endPort` range, into `srv` in namespace `ports`:
/// `client` reaches the port named `http` (8080/TCP), the port named `sink` (6000/UDP) and
/// 7000–7002/TCP; kube-system reaches 6000/UDP and 7000–7002/TCP, so the first port it is
/// denied is 7003, just past the range, which is where netcanary's isolation probe goes.
const PORTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: ports}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny-ingress, namespace: ports}
spec:
  podSelector: {}
  policyTypes: [Ingress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: srv-from-client, namespace: ports}
spec:
  podSelector: {matchLabels: {app: srv}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: client}}}]
      ports: [{port: http}]
    - from: [{podSelector: {matchLabels: {app: client}}}]
      ports: [{port: sink, protocol: UDP}]
    - from: [{podSelector: {matchLabels: {app: client}}}]
      ports: [{port: 7000, endPort: 7002, protocol: TCP}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: srv-from-kube-system, namespace: ports}
spec:
  podSelector: {matchLabels: {app: srv}}
  ingress:
    - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}}]
      ports: [{port: 6000, protocol: UDP}, {port: 7000, endPort: 7002, protocol: TCP}]
"#;

/// What PORTS says, by hand, for every port of `srv` (8080 `http`, 9090 `metrics`, 7002,
/// 7003, 6000/UDP `sink`) and `client` (8080): the named and ranged ports above, nothing
/// else into the namespace; kube-system has no policy.
const PORTS_SAYS: &[Cell] = &[
    ("ports/client-0", "ports/srv-0", 8080, "TCP", "tcp", Allow),
    ("ports/client-0", "ports/srv-0", 6000, "UDP", "udp", Allow),
    ("ports/client-0", "ports/srv-0", 7002, "TCP", "tcp", Allow),
    ("kube-system/coredns-0", "ports/srv-0", 6000, "UDP", "udp", Allow),
    ("kube-system/coredns-0", "ports/srv-0", 7002, "TCP", "tcp", Allow),
    ("*", "ports/*", 0, "*", "*", Deny),
    ("*", "kube-system/*", 53, "*", "*", Allow),
];

#[tokio::test]
async fn named_ports_and_port_ranges_are_enforced_and_verified() {
    let test = "named_ports_and_port_ranges_are_enforced_and_verified";
    let options = KubeletOptions::new(&[("ports", 1), ("netcanary", 3), ("kube-system", 4)]);
    let Some(bed) = node::bed(test, options, PORTS).await else { return };
    let srv =
        [(8080, "TCP", "http"), (9090, "TCP", "metrics"), (7002, "TCP", ""), (7003, "TCP", ""), (6000, "UDP", "sink")];
    bed.kubelet.add_workload(&pod("ports", "srv-0", "srv", &srv)).await;
    bed.kubelet.add_workload(&pod("ports", "client-0", "client", &[(8080, "TCP", "http")])).await;
    bed.start_kube_router();
    let ran = run(&bed).await;
    assert_all_pass(&bed, &ran, PORTS_SAYS);
    assert_probed(
        &ran,
        &[
            ("ports/client-0", "ports/srv-0", 8080, "TCP"),
            ("ports/client-0", "ports/srv-0", 6000, "UDP"),
            ("ports/client-0", "ports/srv-0", 7002, "TCP"),
            ("kube-system/coredns-0", "ports/srv-0", 7003, "TCP"),
        ],
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
}

/// `client` in namespace `egress-ip` may send only to 10.66.0.0/16 except 10.66.6.0/24:
/// the pods of namespace `reachable` (10.66.5.0/24) and the DNS pods (10.66.4.0/24, reached
/// through the DNS Service: kube-proxy translates it before kube-router looks), not those
/// of namespace `blocked` (10.66.6.0/24).
const IP_BLOCK: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: egress-ip}
---
apiVersion: v1
kind: Namespace
metadata: {name: reachable}
---
apiVersion: v1
kind: Namespace
metadata: {name: blocked}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: client-egress, namespace: egress-ip}
spec:
  podSelector: {matchLabels: {app: client}}
  policyTypes: [Egress]
  egress:
    - to: [{ipBlock: {cidr: 10.66.0.0/16, except: [10.66.6.0/24]}}]
"#;

/// What IP_BLOCK says, by hand: client's egress is open to every pod but blocked's; nothing
/// else is isolated.
const IP_BLOCK_SAYS: &[Cell] = &[
    ("egress-ip/client-0", "blocked/*", 0, "*", "*", Deny),
    ("egress-ip/client-0", "*", 0, "*", "*", Allow),
    ("*", "*", 0, "*", "*", Allow),
];

#[tokio::test]
async fn ip_block_with_except_is_enforced_and_verified() {
    let test = "ip_block_with_except_is_enforced_and_verified";
    let subnets = [("egress-ip", 1), ("netcanary", 3), ("kube-system", 4), ("reachable", 5), ("blocked", 6)];
    let Some(bed) = node::bed(test, KubeletOptions::new(&subnets), IP_BLOCK).await else { return };
    bed.kubelet.add_workload(&workload("egress-ip", "client-0", "client", &[(8080, "TCP")])).await;
    bed.kubelet.add_workload(&workload("reachable", "web-0", "web", &[(8080, "TCP")])).await;
    bed.kubelet.add_workload(&workload("blocked", "web-0", "web", &[(8080, "TCP")])).await;
    bed.start_kube_router();
    let ran = run(&bed).await;
    assert_all_pass(&bed, &ran, IP_BLOCK_SAYS);
    assert_probed(&ran, &[("egress-ip/client-0", "blocked/web-0", 8080, "TCP")]);
    assert!(
        ran.record.probes.iter().any(|p| p.source.to_string() == "egress-ip/client-0"
            && p.expected == Allow
            && p.destination.namespace != "egress-ip"),
        "no allowed probe out of egress-ip:\n{}",
        summary(&ran.record)
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
}

/// Egress default-deny in three namespaces: `no-dns` allows nothing, `dns-both` allows the
/// cluster DNS pods on 53 over UDP and TCP, `dns-udp` over UDP only.
const EGRESS_DNS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: no-dns}
---
apiVersion: v1
kind: Namespace
metadata: {name: dns-both}
---
apiVersion: v1
kind: Namespace
metadata: {name: dns-udp}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny-egress, namespace: no-dns}
spec:
  podSelector: {}
  policyTypes: [Egress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny-egress, namespace: dns-both}
spec:
  podSelector: {}
  policyTypes: [Egress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-dns, namespace: dns-both}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
    - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}, podSelector: {matchLabels: {k8s-app: kube-dns}}}]
      ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny-egress, namespace: dns-udp}
spec:
  podSelector: {}
  policyTypes: [Egress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-dns-udp, namespace: dns-udp}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
    - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}, podSelector: {matchLabels: {k8s-app: kube-dns}}}]
      ports: [{port: 53, protocol: UDP}]
"#;

/// What EGRESS_DNS says, by hand: out of the three namespaces only DNS as allowed above;
/// into them, and out of kube-system, everything.
const EGRESS_DNS_SAYS: &[Cell] = &[
    ("dns-both/*", "kube-system/*", 53, "*", "*", Allow),
    ("dns-udp/*", "kube-system/*", 53, "UDP", "*", Allow),
    ("no-dns/*", "*", 0, "*", "*", Deny),
    ("dns-both/*", "*", 0, "*", "*", Deny),
    ("dns-udp/*", "*", 0, "*", "*", Deny),
    ("kube-system/*", "*", 0, "*", "*", Allow),
];

#[tokio::test]
async fn egress_default_deny_with_and_without_the_dns_rule() {
    let test = "egress_default_deny_with_and_without_the_dns_rule";
    let subnets = [("no-dns", 1), ("dns-both", 2), ("netcanary", 3), ("kube-system", 4), ("dns-udp", 5)];
    let Some(bed) = node::bed(test, KubeletOptions::new(&subnets), EGRESS_DNS).await else { return };
    for namespace in ["no-dns", "dns-both", "dns-udp"] {
        bed.kubelet.add_workload(&workload(namespace, "app-0", "app", &[(8080, "TCP")])).await;
    }
    bed.start_kube_router();
    // A Service's own name, which the cluster DNS answers from the Services.
    let mut command = run_command(&bed);
    command.args(["--dns-name", "kube-dns.kube-system.svc.cluster.local"]);
    let ran = bed.run_with(command).await;
    assert_all_pass(&bed, &ran, EGRESS_DNS_SAYS);
    // The answers themselves (a run's record keeps no detail of a probe that passed): asked
    // from a host on the node's bridge, through the DNS Service.
    bed.kubelet.net().add_host("resolver", "10.66.251.1/16", "fd00:66::251:1/64");
    let route = ["ip", "route", "add", "default", "via", "10.66.0.1"];
    assert!(bed.kubelet.net().exec("resolver", &route).status.success());
    let resolve = |name: &str| {
        let plan = json!({"probes": [{"id": "1", "kind": "dns", "name": name, "server": "10.96.0.10:53"}]}).to_string();
        let out = bed
            .kubelet
            .net()
            .exec("resolver", &[common::bed::BIN, "agent", "--plan-json", &plan, "--no-termination-log"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let found = resolve("kube-dns.kube-system.svc.cluster.local");
    assert!(found.contains("No Error with 1 answer"), "{found}");
    let missing = resolve("no-such-service.kube-system.svc.cluster.local");
    assert!(missing.contains("with 0 answer"), "{missing}");
    for namespace in ["no-dns", "dns-both", "dns-udp"] {
        for protocol in ["UDP", "TCP"] {
            let dns = format!("{namespace}/app-0");
            assert_probed(&ran, &[(dns.as_str(), "kube-system/kube-dns", 53, protocol)]);
        }
    }
    assert_eq!(ran.code, 0, "{}", ran.stderr);
}

/// Every cell of SHOP through each path: by the pod's IP, by the ClusterIP of the Service the
/// run makes for the target (kube-proxy translates it, then kube-router judges the pod), and
/// by that Service's name (the cluster DNS answers it). Policy is the backend pod's, so the
/// hand-written table holds for every path alike; the doors SHOP opens and closes are each
/// seen through all three.
#[tokio::test]
async fn every_path_to_a_backend_meets_the_backends_policy() {
    let Some(bed) = shop("every_path_to_a_backend_meets_the_backends_policy").await else { return };
    // A UDP backend no rule admits: through a Service, kube-router's ICMP reject comes back
    // from the ClusterIP, as a closed port's would.
    bed.kubelet.add_workload(&workload("shop", "statsd-0", "statsd", &[(8125, "UDP")])).await;
    bed.start_kube_router();
    let mut command = run_command(&bed);
    command.args(["--paths", "pod,service,dns"]);
    let ran = bed.run_with(command).await;
    assert_all_pass(&bed, &ran, SHOP_SAYS);
    let by_path = |from: &str, to: &str, port: u16, path: &str, expected: Expectation| {
        let found = ran.record.probes.iter().any(|p| {
            p.source.to_string() == from
                && p.destination.to_string() == to
                && p.port == port
                && p.path.as_str() == path
                && p.expected == expected
                && p.outcome == Outcome::Pass
        });
        assert!(found, "no passing {from} -> {to} {port} by {path} expecting {expected}:\n{}", summary(&ran.record));
    };
    for path in ["pod", "service", "dns"] {
        by_path("shop/web-0", "shop/api-0", 8080, path, Allow);
        by_path("shop/api-0", "shop/db-0", 5432, path, Allow);
    }
    for path in ["pod", "service", "dns"] {
        let udp =
            ran.record.probes.iter().find(|p| {
                p.destination.to_string() == "shop/statsd-0" && p.protocol == "UDP" && p.path.as_str() == path
            });
        assert!(udp.is_some(), "no UDP probe to shop/statsd-0 by {path}:\n{}", summary(&ran.record));
    }
    // Each closed door into shop is closed through the Service too.
    for path in ["service", "dns"] {
        let denied = ran.record.probes.iter().filter(|p| {
            p.path.as_str() == path
                && p.destination.namespace == "shop"
                && p.expected == Deny
                && p.outcome == Outcome::Pass
        });
        assert!(denied.count() > 0, "no denied probe into shop by {path}:\n{}", summary(&ran.record));
    }
    assert_eq!(ran.code, 0, "{}", ran.stderr);
}

/// The run starts before kube-router does, so its first probes meet a node that enforces
/// nothing yet: netcanary must end with every probe passing or converging after its rounds,
/// never with a mismatch, and the canary judged on what the network ends up doing.
#[tokio::test]
async fn probe_pods_running_before_the_node_enforces_are_never_a_mismatch() {
    let test = "probe_pods_running_before_the_node_enforces_are_never_a_mismatch";
    let Some(bed) = shop(test).await else { return };
    let started = Instant::now();
    // Rounds enough for a kube-router that starts slowly on a loaded machine: the last is
    // at least 8 s into the run.
    let mut command = run_command_with_rounds(&bed, 5);
    let child = command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn();
    let child = child.expect("start netcanary");
    bed.wait_for_probe_pod(Duration::from_secs(30)).await;
    bed.start_kube_router();
    eprintln!("kube-router synced {:?} into the run", started.elapsed());
    let (out, _) = output_within(child, Duration::from_secs(60), "a run that started before kube-router");
    let ran = Ran::new(out, started.elapsed());
    bed.assert_cleaned_up(&ran).await;
    // Converging is an honest answer too, for a probe whose rounds saw the node change and
    // whose last round still disagreed; a mismatch is not.
    assert_cells(&bed, &ran, SHOP_SAYS, |_| &[Outcome::Pass, Outcome::Converging]);
    assert_eq!(ran.record.canary, Canary::Enforced, "{}", summary(&ran.record));
    assert_eq!(ran.code, 0, "{}", ran.stderr);
}

/// How long the node takes to enforce: a policy applied to a running pod, and a new pod
/// under a policy already there (the figures README gives). The probes come from a host on
/// the node's bridge that is no pod, so policy denies it whenever it is enforced.
#[tokio::test]
async fn time_to_enforce() {
    const LIMIT: Duration = Duration::from_secs(10);
    let app = "apiVersion: v1\nkind: Namespace\nmetadata: {name: tte}\n";
    let options = KubeletOptions::new(&[("tte", 1), ("netcanary", 3), ("kube-system", 4)]);
    let Some(bed) = node::bed("time_to_enforce", options, app).await else { return };
    bed.start_kube_router();
    bed.kubelet.net().add_host("prober", "10.66.250.1/16", "fd00:66::250:1/64");
    let pods: kube::Api<Pod> = kube::Api::namespaced(bed.client.clone(), "tte");

    let first = running_target(&pods, "server-0").await;
    wait_until(&bed, first, true, LIMIT);
    let applied = Instant::now();
    common::bed::apply(&bed.client, DENY_INGRESS).await;
    wait_until(&bed, first, false, LIMIT);
    let policy_to_enforced = applied.elapsed();

    let created = Instant::now();
    let (second, running_after) = {
        let ip = running_target(&pods, "server-1").await;
        (ip, created.elapsed())
    };
    let enforced_after_running = wait_until(&bed, second, false, LIMIT);
    eprintln!(
        "time to enforce: policy applied -> enforced {policy_to_enforced:?}; new pod: created -> Running {running_after:?}, Running -> enforced {enforced_after_running:?}"
    );
}

const DENY_INGRESS: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-ingress, namespace: tte}
spec:
  podSelector: {}
  policyTypes: [Ingress]
"#;

/// A pod the fake kubelet runs (it runs pods labelled as netcanary's): `netcanary target`
/// on 8080/TCP. Returns its IP once it runs.
async fn running_target(pods: &kube::Api<Pod>, name: &str) -> std::net::IpAddr {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "server", "app.kubernetes.io/managed-by": "netcanary", "netcanary.io/run-id": "tte"}},
        "spec": {"containers": [{"name": "netcanary", "image": "netcanary:test", "args": ["target", "--tcp", "8080"]}]}
    }))
    .expect("a valid Pod");
    pods.create(&Default::default(), &pod).await.expect("create the pod");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = pods.get(name).await.expect("read the pod").status.unwrap_or_default();
        if let (Some("Running"), Some(ip)) = (status.phase.as_deref(), status.pod_ip.as_deref()) {
            return ip.parse().expect("an IP");
        }
        assert!(Instant::now() < deadline, "pod {name} did not run");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Probes `ip`:8080 from the prober until it connects (`open`) or is blocked, and returns
/// how long that took; fails past `limit`.
fn wait_until(bed: &Bed, ip: std::net::IpAddr, open: bool, limit: Duration) -> Duration {
    let plan = json!({"timeout_ms": 300, "probes": [{"id": "1", "kind": "tcp", "host": ip.to_string(), "port": 8080}]});
    let plan = plan.to_string();
    let started = Instant::now();
    loop {
        let out = bed
            .kubelet
            .net()
            .exec("prober", &[common::bed::BIN, "agent", "--plan-json", &plan, "--no-termination-log"]);
        let connected = String::from_utf8_lossy(&out.stdout).contains("\"connected\"");
        if connected == open {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{ip}:8080 not {} within {limit:?}", if open { "open" } else { "blocked" });
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The label-level scenario with pods whose primary address is IPv6 (their IPv4 address
/// second), so netcanary probes between pods over IPv6, and kube-router runs with
/// `--enable-ipv6`. kube-router v2.1.0 programs no IPv6 rule here: it creates its IPv6 sets
/// as `inet6:KUBE-SRC-…` and writes ip6tables rules that match `KUBE-SRC-…`, so every
/// `ip6tables-restore` fails ("Set … doesn't exist") and IPv6 between pods is not filtered
/// at all. netcanary must say so: every cell policy denies is an `unexpected_allow`, the
/// canary connects. (Should a later kube-router program IPv6, this test fails and is to
/// expect every probe to pass.)
#[tokio::test]
async fn ipv6_pods_under_a_node_that_programs_no_ipv6_rule_raise_the_alarm() {
    let test = "ipv6_pods_under_a_node_that_programs_no_ipv6_rule_raise_the_alarm";
    let mut options = KubeletOptions::new(&SHOP_SUBNETS);
    options.node_ip6 = Some(node::NODE_IP6);
    let Some(bed) = node::bed(test, options, SHOP).await else { return };
    bed.kubelet.add_workload(&workload("shop", "web-0", "web", &[(8080, "TCP")])).await;
    bed.kubelet.add_workload(&workload("shop", "api-0", "api", &[(8080, "TCP")])).await;
    bed.kubelet.add_workload(&workload("shop", "db-0", "db", &[(5432, "TCP")])).await;
    bed.start_kube_router();
    let ran = run(&bed).await;
    let log = bed.kube_router_log();
    assert!(
        log.contains("Failed to run iptables-restore: failed to call ip6tables-restore")
            && log.contains("doesn't exist"),
        "kube-router programmed IPv6 after all; this scenario is to expect every probe to pass:\n{log}"
    );
    // Over IPv6 the node filters nothing; DNS, over the IPv4 Service, is as policy says.
    assert_cells(
        &bed,
        &ran,
        SHOP_SAYS,
        |says| if says == Deny { &[Outcome::UnexpectedAllow] } else { &[Outcome::Pass] },
    );
    assert!(ran.record.probes.iter().any(|p| p.outcome == Outcome::UnexpectedAllow), "{}", summary(&ran.record));
    assert_eq!(ran.record.canary, Canary::NotEnforced, "{}", summary(&ran.record));
    assert_eq!(ran.code, 1, "{}", ran.stderr);
}

/// `client` in namespace `egress-out` may send only to 443/TCP in 203.0.113.0/24 except
/// 203.0.113.128/25: of the bed's internet (see `tests/common/node.rs`), it reaches
/// 203.0.113.10 and not 203.0.113.200; no other pod is isolated.
const INTERNET: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: egress-out}
---
apiVersion: v1
kind: Namespace
metadata: {name: other}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: client-to-the-internet, namespace: egress-out}
spec:
  podSelector: {matchLabels: {app: client}}
  policyTypes: [Egress]
  egress:
    - to: [{ipBlock: {cidr: 203.0.113.0/24, except: [203.0.113.128/25]}}]
      ports: [{port: 443, protocol: TCP}]
"#;

/// What INTERNET says, by hand: client reaches 203.0.113.10:443 and nothing else (not the
/// excepted 203.0.113.200, not DNS, no pod); every other pod reaches everything.
const INTERNET_SAYS: &[Cell] = &[
    ("egress-out/client-0", "203.0.113.10", 443, "TCP", "tcp", Allow),
    ("egress-out/client-0", "*", 0, "*", "*", Deny),
    ("*", "*", 0, "*", "*", Allow),
];

#[tokio::test]
async fn ip_block_with_except_to_addresses_outside_the_cluster() {
    let test = "ip_block_with_except_to_addresses_outside_the_cluster";
    let subnets = [("egress-out", 1), ("other", 2), ("netcanary", 3), ("kube-system", 4)];
    let Some(bed) = node::bed(test, KubeletOptions::new(&subnets), INTERNET).await else { return };
    bed.kubelet.add_workload(&workload("egress-out", "client-0", "client", &[(8080, "TCP")])).await;
    bed.kubelet.add_workload(&workload("other", "web-0", "web", &[(8080, "TCP")])).await;
    bed.add_internet_host("allowed", "203.0.113.10", "443");
    bed.add_internet_host("excepted", "203.0.113.200", "443");
    bed.start_kube_router();
    let mut command = run_command(&bed);
    command.args(["--to", "203.0.113.10:443/TCP", "--to", "203.0.113.200:443/TCP"]);
    let ran = bed.run_with(command).await;
    assert_all_pass(&bed, &ran, INTERNET_SAYS);
    assert_probed(
        &ran,
        &[
            ("egress-out/client-0", "203.0.113.10", 443, "TCP"),
            ("egress-out/client-0", "203.0.113.200", 443, "TCP"),
            ("other/web-0", "203.0.113.200", 443, "TCP"),
        ],
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
}

/// Conformance: random policy sets, restricted to what kube-router implements (pod and
/// namespace selectors with matchLabels and matchExpressions, numeric and named ports over
/// TCP and UDP, endPort ranges, ipBlocks with except over the pods' subnets, Ingress and
/// Egress), each verified by a run that must find no mismatch. Here the expectations are
/// netcanary's engine's, not a table: the question is whether kube-router and the engine
/// agree. `NETCANARY_CONFORMANCE_SETS` (default 3) and `NETCANARY_CONFORMANCE_SEED`
/// (default fixed, so that a failure replays) choose the sets; a failure prints the set.
#[tokio::test]
async fn conformance_random_policy_sets_find_no_mismatch() {
    let sets: u64 = std::env::var("NETCANARY_CONFORMANCE_SETS").ok().and_then(|n| n.parse().ok()).unwrap_or(3);
    let seed: u64 = std::env::var("NETCANARY_CONFORMANCE_SEED").ok().and_then(|n| n.parse().ok()).unwrap_or(20_261_129);
    let app = "apiVersion: v1\nkind: Namespace\nmetadata: {name: alpha, labels: {env: prod}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: beta, labels: {env: dev}}\n";
    let subnets = [("alpha", 1), ("beta", 2), ("netcanary", 3), ("kube-system", 4)];
    let test = "conformance_random_policy_sets_find_no_mismatch";
    let Some(bed) = node::bed(test, KubeletOptions::new(&subnets), app).await else { return };
    let web = [(80, "TCP", "http"), (81, "TCP", ""), (5353, "UDP", "mdns")];
    let api = [(80, "TCP", "http"), (8080, "TCP", "admin"), (8443, "TCP", "")];
    bed.kubelet.add_workload(&pod("alpha", "web-0", "web", &web)).await;
    bed.kubelet.add_workload(&pod("alpha", "api-0", "api", &api)).await;
    bed.kubelet.add_workload(&pod("beta", "web-0", "web", &web)).await;
    bed.kubelet.add_workload(&pod("beta", "db-0", "db", &[(5432, "TCP", "postgres"), (5353, "UDP", "")])).await;
    bed.start_kube_router();
    let policies: kube::Api<kube::api::DynamicObject> = kube::Api::all_with(
        bed.client.clone(),
        &kube::api::ApiResource::erase::<k8s_openapi::api::networking::v1::NetworkPolicy>(&()),
    );
    for set in 0..sets {
        let mut rng = fastrand::Rng::with_seed(seed.wrapping_add(set));
        let yaml = random_policies(&mut rng);
        for namespace in ["alpha", "beta"] {
            let api: kube::Api<k8s_openapi::api::networking::v1::NetworkPolicy> =
                kube::Api::namespaced(bed.client.clone(), namespace);
            api.delete_collection(&Default::default(), &Default::default()).await.expect("delete the last set");
        }
        common::bed::apply(&bed.client, &yaml).await;
        let listed = policies.list(&Default::default()).await.expect("list policies");
        let ran = run(&bed).await;
        let mismatches: Vec<String> = ran
            .record
            .probes
            .iter()
            .filter(|p| p.outcome.is_mismatch() || p.outcome == Outcome::Inconclusive)
            .map(|p| {
                format!(
                    "  {} -> {} {}/{}: {} {:?} ({})",
                    p.source,
                    p.destination,
                    p.port,
                    p.protocol,
                    p.outcome.as_str(),
                    p.observed,
                    p.expected_because
                )
            })
            .collect();
        assert!(
            mismatches.is_empty() && ran.record.canary == Canary::Enforced,
            "set {set} (seed {seed}, {} policies) disagrees:\n{}\npolicies:\n{yaml}\nrun:\n{}\nnode rules:\n{}",
            listed.items.len(),
            mismatches.join("\n"),
            summary(&ran.record),
            bed.node_rules()
        );
        eprintln!(
            "conformance set {set} (seed {}): {} probes, all as the engine says",
            seed.wrapping_add(set),
            ran.record.probes.len()
        );
    }
}

/// One to four policies in namespaces alpha and beta, from the features kube-router
/// implements.
fn random_policies(rng: &mut fastrand::Rng) -> String {
    let pick = |rng: &mut fastrand::Rng, from: &[&str]| from[rng.usize(..from.len())].to_string();
    let selector = |rng: &mut fastrand::Rng| match rng.u8(..4) {
        0 => "{}".to_string(),
        1 => format!("{{matchLabels: {{app: {}}}}}", pick(rng, &["web", "api", "db"])),
        2 => format!(
            "{{matchExpressions: [{{key: app, operator: In, values: [{}, {}]}}]}}",
            pick(rng, &["web", "api"]),
            pick(rng, &["db", "api"])
        ),
        _ => format!(
            "{{matchExpressions: [{{key: app, operator: NotIn, values: [{}]}}]}}",
            pick(rng, &["web", "api", "db"])
        ),
    };
    let peer = |rng: &mut fastrand::Rng| match rng.u8(..4) {
        0 => format!("{{podSelector: {}}}", selector(rng)),
        1 => format!("{{namespaceSelector: {{matchLabels: {{env: {}}}}}}}", pick(rng, &["prod", "dev"])),
        2 => format!(
            "{{namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: {}}}}}, podSelector: {}}}",
            pick(rng, &["alpha", "beta", "kube-system"]),
            selector(rng)
        ),
        _ => {
            let subnet = rng.u8(1..=2);
            if rng.bool() {
                format!("{{ipBlock: {{cidr: 10.66.{subnet}.0/24}}}}")
            } else {
                format!("{{ipBlock: {{cidr: 10.66.0.0/16, except: [10.66.{subnet}.0/24]}}}}")
            }
        }
    };
    let port = |rng: &mut fastrand::Rng| match rng.u8(..6) {
        0 => "{port: 80, protocol: TCP}".to_string(),
        1 => "{port: http}".to_string(),
        2 => "{port: 8000, endPort: 8500, protocol: TCP}".to_string(),
        3 => "{port: 5353, protocol: UDP}".to_string(),
        4 => "{port: postgres}".to_string(),
        _ => "{port: 81, protocol: TCP}".to_string(),
    };
    let rules = |rng: &mut fastrand::Rng, key: &str| {
        let mut out = String::new();
        for _ in 0..rng.usize(0..=2) {
            let peers: Vec<String> = (0..rng.usize(0..=2)).map(|_| peer(rng)).collect();
            let ports: Vec<String> = (0..rng.usize(0..=2)).map(|_| port(rng)).collect();
            out.push_str(&format!("    - {key}: [{}]\n      ports: [{}]\n", peers.join(", "), ports.join(", ")));
        }
        out
    };
    let mut yaml = String::new();
    for index in 0..rng.usize(1..=4) {
        let namespace = pick(rng, &["alpha", "beta"]);
        let (ingress, egress) = match rng.u8(..3) {
            0 => (true, false),
            1 => (false, true),
            _ => (true, true),
        };
        let types: Vec<&str> = [(ingress, "Ingress"), (egress, "Egress")].iter().filter(|t| t.0).map(|t| t.1).collect();
        yaml.push_str(&format!(
            "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: random-{index}, namespace: {namespace}}}\nspec:\n  podSelector: {}\n  policyTypes: [{}]\n",
            selector(rng),
            types.join(", ")
        ));
        if ingress {
            yaml.push_str(&format!("  ingress:\n{}", rules(rng, "from")));
        }
        if egress {
            yaml.push_str(&format!("  egress:\n{}", rules(rng, "to")));
        }
    }
    yaml
}
