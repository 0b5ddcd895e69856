//! The prober against real packets: network namespaces, a real target and agent (the built
//! binary), nftables rules that drop or reject, and a real DNS server (dnsmasq).
//!
//! Needs root; see `tests/common/netns.rs` for how it skips or fails without it.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::netns::{ChildGuard, TestNet};
use netcanary_wire::{AgentReport, Observed, termination_log};

const BIN: &str = env!("CARGO_BIN_EXE_netcanary");
const TIMEOUT_MS: u64 = 1000;

/// Port layout on the target: every port but CLOSED has a listener, so each outcome is the
/// network's doing.
const OPEN: u16 = 8001;
const CLOSED: u16 = 8002;
const DROPPED: u16 = 8003;
const PROHIBITED: u16 = 8004;
const HOST_UNREACHABLE: u16 = 8005;
const LOCALLY_DROPPED: u16 = 8006;
/// Rejected on the way, by the hub between the hosts, with an ICMP port unreachable from the
/// hub's address: iptables' plain `REJECT`, as kube-router turns away what policy denies.
const REJECTED_ON_THE_WAY: u16 = 8007;
/// Rejected by the target's own filter with an ICMP port unreachable from its address.
const REJECTED_BY_THE_TARGET: u16 = 8008;

/// An agent host and a target host on one bridge.
fn agent_and_target(test: &str) -> Option<(TestNet, ChildGuard)> {
    let mut net = TestNet::new(test)?;
    net.add_host("agent", "10.77.0.1/24", "fd00:77::1/64");
    net.add_host("target", "10.77.0.2/24", "fd00:77::2/64");
    let ports = "8001,8003-8008";
    let mut target = net.spawn("target", &[BIN, "target", "--tcp", ports, "--udp", ports]);
    target.wait_for_line("listening", Duration::from_secs(10));
    Some((net, target))
}

/// Runs the agent in `host` on `plan` (JSON), checks the termination log agrees with stdout,
/// and returns the report and the wall time.
fn run_agent(net: &TestNet, host: &str, plan: &str) -> (AgentReport, Duration) {
    let log = net.dir().join(format!("termination-log-{}", plan.len()));
    let log_arg = log.to_str().unwrap();
    let started = Instant::now();
    let out = net.exec_with_stdin(host, &[BIN, "agent", "--plan", "-", "--termination-log", log_arg], plan.as_bytes());
    let wall = started.elapsed();
    assert!(out.status.success(), "agent failed: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    let report: AgentReport = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|err| panic!("agent stdout is not a report ({err}): {}", String::from_utf8_lossy(&out.stdout)));
    let compact = termination_log::decode(&std::fs::read_to_string(&log).unwrap()).unwrap();
    assert_eq!(compact.total, report.results.len());
    for (short, full) in compact.results.iter().zip(&report.results) {
        assert_eq!((&short.id, short.observed), (&full.id, full.observed));
    }
    (report, wall)
}

fn probe(id: &str, kind: &str, host: &str, port: u16) -> String {
    format!(r#"{{"id": "{id}", "kind": "{kind}", "host": "{host}", "port": {port}}}"#)
}

fn plan(probes: &[String]) -> String {
    format!(r#"{{"timeout_ms": {TIMEOUT_MS}, "probes": [{}]}}"#, probes.join(",\n"))
}

/// Compares every cell and reports all mismatches at once, with each probe's detail.
fn assert_outcomes(report: &AgentReport, expected: &BTreeMap<String, Observed>) {
    let mut wrong = Vec::new();
    for result in &report.results {
        let Some(want) = expected.get(&result.id) else {
            continue;
        };
        if result.observed != *want {
            wrong.push(format!(
                "  {}: expected {want}, observed {} after {} ms ({})",
                result.id,
                result.observed,
                result.millis,
                result.detail.as_deref().unwrap_or("-")
            ));
        }
    }
    assert_eq!(report.results.len(), expected.len(), "one result per probe");
    assert!(wrong.is_empty(), "wrong outcomes:\n{}", wrong.join("\n"));
}

const TARGET_RULES: &str = "
table inet netcanary_test {
  chain input {
    type filter hook input priority 0; policy accept;
    meta l4proto { tcp, udp } th dport 8003 drop
    meta l4proto { tcp, udp } th dport 8004 reject with icmpx type admin-prohibited
    meta l4proto { tcp, udp } th dport 8005 reject with icmpx type host-unreachable
    meta l4proto { tcp, udp } th dport 8008 reject with icmpx type port-unreachable
  }
}
";

const HUB_RULES: &str = "
table inet netcanary_test {
  chain forward {
    type filter hook forward priority 0; policy accept;
    meta l4proto { tcp, udp } th dport 8007 reject with icmpx type port-unreachable
  }
}
";

const AGENT_RULES: &str = "
table inet netcanary_test {
  chain output {
    type filter hook output priority 0; policy accept;
    meta l4proto { tcp, udp } th dport 8006 drop
  }
}
";

#[test]
fn every_tcp_and_udp_outcome_over_ipv4_and_ipv6() {
    let Some((net, _target)) = agent_and_target("every_tcp_and_udp_outcome_over_ipv4_and_ipv6") else {
        return;
    };
    net.nft("target", TARGET_RULES);
    net.nft("agent", AGENT_RULES);
    net.add_hub_address("10.77.0.254/24");
    net.add_hub_address("fd00:77::fe/64");
    net.nft_hub(HUB_RULES);

    let cells = [
        (OPEN, Observed::Connected, Observed::Connected),
        (CLOSED, Observed::Refused, Observed::Refused),
        (DROPPED, Observed::Timeout, Observed::Timeout),
        (PROHIBITED, Observed::Unreachable, Observed::Unreachable),
        (HOST_UNREACHABLE, Observed::Unreachable, Observed::Unreachable),
        // A local output drop fails a UDP send with EPERM at once; TCP's connect(2) swallows
        // the error of its first SYN and retransmits, so the probe sees silence. Both blocked.
        (LOCALLY_DROPPED, Observed::Timeout, Observed::Unreachable),
        // Both come back as ECONNREFUSED. The hub's reject is blocked on both transports;
        // the target's own is blocked for TCP (a TCP stack sends a reset, so an ICMP port
        // unreachable is a filter's) and, for UDP, what a closed port answers.
        (REJECTED_ON_THE_WAY, Observed::Unreachable, Observed::Unreachable),
        (REJECTED_BY_THE_TARGET, Observed::Unreachable, Observed::Refused),
    ];
    let mut probes = Vec::new();
    let mut expected = BTreeMap::new();
    for (family, host) in [("v4", &net.host("target").v4), ("v6", &net.host("target").v6)] {
        for (port, tcp, udp) in cells {
            for (kind, want) in [("tcp", tcp), ("udp", udp)] {
                let id = format!("{family}-{kind}-{port}");
                probes.push(probe(&id, kind, host, port));
                expected.insert(id, want);
            }
        }
    }
    // The probe itself broke: a bad target is an error, never "blocked".
    probes.push(probe("bad-address", "tcp", "10.77.0.300", 80));
    expected.insert("bad-address".into(), Observed::Error);
    probes.push(probe("unresolvable", "udp", "no-such-host.invalid", 80));
    expected.insert("unresolvable".into(), Observed::Error);
    probes.push(probe("port-zero", "tcp", "10.77.0.2", 0));
    expected.insert("port-zero".into(), Observed::Error);

    let (report, wall) = run_agent(&net, "agent", &plan(&probes));
    assert_outcomes(&report, &expected);

    let by_id = |id: &str| report.results.iter().find(|r| r.id == id).unwrap();
    for family in ["v4", "v6"] {
        let dropped = by_id(&format!("{family}-udp-{DROPPED}"));
        assert!((TIMEOUT_MS..TIMEOUT_MS + 200).contains(&dropped.millis), "a timeout lasts the timeout: {dropped:?}");
        let rejected = by_id(&format!("{family}-tcp-{PROHIBITED}"));
        assert!(rejected.millis < 200, "an ICMP reject is fast: {rejected:?}");
        let eperm = by_id(&format!("{family}-udp-{LOCALLY_DROPPED}"));
        assert!(eperm.detail.as_deref().unwrap_or("").contains("Operation not permitted"), "{eperm:?}");
        // The sender is named for UDP; for TCP only by kernels that queue the ICMP error
        // of a handshake (Linux 6.3 and later).
        let hub = if family == "v4" { "10.77.0.254" } else { "fd00:77::fe" };
        let rejected = by_id(&format!("{family}-udp-{REJECTED_ON_THE_WAY}"));
        assert!(rejected.detail.as_deref().unwrap_or("").contains(&format!("from {hub}, not from")), "{rejected:?}");
        let rejected = by_id(&format!("{family}-tcp-{REJECTED_ON_THE_WAY}"));
        assert!(rejected.detail.as_deref().unwrap_or("").contains("ICMP port unreachable"), "{rejected:?}");
    }
    assert!(wall < Duration::from_millis(TIMEOUT_MS * 3 / 2), "the agent took {wall:?}, more than 1.5 x the timeout");
}

#[test]
fn target_ignores_strangers_and_stops_cleanly_on_sigterm() {
    let Some((net, mut target)) = agent_and_target("target_ignores_strangers_and_stops_cleanly_on_sigterm") else {
        return;
    };
    let v4 = net.host("target").v4.clone();
    // A datagram without netcanary's header gets no reply, so nc sees nothing.
    let out = net.exec_with_stdin("agent", &["nc", "-u", "-w", "1", &v4, &OPEN.to_string()], b"hello\n");
    assert!(out.stdout.is_empty(), "the target answered a stranger: {:?}", out.stdout);
    // The same tool gets an echo with the header.
    let probe_datagram = format!("netcanary/1 {:032x}", 42);
    let out = net.exec_with_stdin("agent", &["nc", "-u", "-w", "1", &v4, &OPEN.to_string()], probe_datagram.as_bytes());
    assert_eq!(String::from_utf8_lossy(&out.stdout), probe_datagram);

    let status = target.terminate(Duration::from_secs(5)).expect("target exits on SIGTERM");
    assert!(status.success(), "target exit status {status}: {}", target.stderr());
}

const DNS_NAME: &str = "example.test";
const DNS_ANSWER: &str = "10.77.0.99";

fn dns_probe(id: &str, name: &str, server: &str, transport: &str) -> String {
    format!(r#"{{"id": "{id}", "kind": "dns", "name": "{name}", "server": "{server}", "transport": "{transport}"}}"#)
}

#[test]
fn dns_answers_nxdomain_drops_and_udp_only_blocking() {
    let Some(mut net) = TestNet::new("dns_answers_nxdomain_drops_and_udp_only_blocking") else {
        return;
    };
    net.add_host("agent", "10.77.0.1/24", "fd00:77::1/64");
    let dns = net.add_host("dns", "10.77.0.3/24", "fd00:77::3/64");
    let mut dnsmasq = net.spawn_dnsmasq(
        "dns",
        &format!("{},{}", dns.v4, dns.v6),
        &[format!("--address=/{DNS_NAME}/{DNS_ANSWER}"), "--local=/missing.test/".into()],
    );
    wait_for_dns(&net, &dns.v4, &mut dnsmasq);

    let servers = [("v4", format!("{}:53", dns.v4)), ("v6", format!("[{}]:53", dns.v6))];
    let mut probes = Vec::new();
    for (family, server) in &servers {
        for transport in ["udp", "tcp"] {
            probes.push(dns_probe(&format!("{family}-{transport}-answer"), DNS_NAME, server, transport));
            probes.push(dns_probe(&format!("{family}-{transport}-nxdomain"), "gone.missing.test", server, transport));
        }
    }
    let plan = plan(&probes);
    let ids: Vec<String> = servers
        .iter()
        .flat_map(|(family, _)| {
            ["udp", "tcp"]
                .into_iter()
                .flat_map(move |t| [format!("{family}-{t}-answer"), format!("{family}-{t}-nxdomain")])
        })
        .collect();
    let expect_all = |udp: Observed, tcp: Observed| -> BTreeMap<String, Observed> {
        ids.iter().map(|id| (id.clone(), if id.contains("-udp-") { udp } else { tcp })).collect()
    };

    // Open: an answer and NXDOMAIN both prove the server was reached.
    let (report, _) = run_agent(&net, "agent", &plan);
    assert_outcomes(&report, &expect_all(Observed::Connected, Observed::Connected));
    let detail = |id: &str| {
        let result = report.results.iter().find(|r| r.id == id).unwrap();
        result.detail.clone().unwrap_or_default()
    };
    assert!(detail("v4-udp-answer").contains("1 answer"), "{}", detail("v4-udp-answer"));
    assert!(detail("v6-tcp-nxdomain").contains("Non-Existent Domain"), "{}", detail("v6-tcp-nxdomain"));

    // UDP dropped, TCP allowed: the starter kit's DNS rule allows both, so both are probed.
    net.nft("dns", "table inet t {\n chain input {\n type filter hook input priority 0;\n udp dport 53 drop\n }\n}\n");
    let (report, _) = run_agent(&net, "agent", &plan);
    assert_outcomes(&report, &expect_all(Observed::Timeout, Observed::Connected));

    // Everything dropped: silence is a timeout on both transports.
    net.nft_flush("dns");
    net.nft("dns", "table inet t {\n chain input {\n type filter hook input priority 0;\n meta l4proto { tcp, udp } th dport 53 drop\n }\n}\n");
    let (report, wall) = run_agent(&net, "agent", &plan);
    assert_outcomes(&report, &expect_all(Observed::Timeout, Observed::Timeout));
    assert!(wall < Duration::from_millis(TIMEOUT_MS * 3 / 2), "took {wall:?}");
}

/// dnsmasq forks nothing with --no-daemon but needs a moment to bind; poll it with the agent.
fn wait_for_dns(net: &TestNet, server: &str, dnsmasq: &mut ChildGuard) {
    let plan = plan(&[dns_probe("ready", DNS_NAME, &format!("{server}:53"), "tcp")]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let (report, _) = run_agent(net, "agent", &plan);
        if report.results[0].observed == Observed::Connected {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("dnsmasq did not come up; stderr:\n{}", dnsmasq.stderr());
}
