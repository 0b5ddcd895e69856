//! Socket tests on loopback: no root, no namespaces. The target runs in-process on port 0.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use netcanary_probe::agent::run_plan;
use netcanary_probe::plan::ProbePlan;
use netcanary_probe::target::{self, ServeStats};
use netcanary_probe::{Observed, header, tcp, udp};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const TIMEOUT: Duration = Duration::from_millis(500);
const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// An in-process target on one ephemeral TCP and UDP port; stops when dropped.
struct InProcessTarget {
    tcp: SocketAddr,
    udp: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Arc<ServeStats>>,
}

impl InProcessTarget {
    fn start(ip: IpAddr) -> Self {
        let listeners = target::bind(Some(ip), &[0], &[0]).expect("bind target");
        let (tcp, udp) = (listeners.tcp_addrs()[0], listeners.udp_addrs()[0]);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(target::serve(listeners, async {
            let _ = stopped.await;
        }));
        InProcessTarget { tcp, udp, stop: Some(stop), task }
    }

    async fn stop(mut self) -> Arc<ServeStats> {
        let _ = self.stop.take().unwrap().send(());
        (&mut self.task).await.expect("target task")
    }
}

/// A port on `ip` where nothing listens (bound, then released).
async fn closed_tcp_port(ip: IpAddr) -> SocketAddr {
    TcpListener::bind((ip, 0)).await.unwrap().local_addr().unwrap()
}

async fn closed_udp_port(ip: IpAddr) -> SocketAddr {
    UdpSocket::bind((ip, 0)).await.unwrap().local_addr().unwrap()
}

#[tokio::test]
async fn tcp_connected_and_refused_on_v4_and_v6() {
    for ip in [V4, V6] {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let open = listener.local_addr().unwrap();
        let outcome = tcp::probe(open, TIMEOUT).await;
        assert_eq!(outcome.observed, Observed::Connected, "{open}: {outcome:?}");

        let closed = closed_tcp_port(ip).await;
        let outcome = tcp::probe(closed, TIMEOUT).await;
        assert_eq!(outcome.observed, Observed::Refused, "{closed}: {outcome:?}");
        assert!(outcome.detail.unwrap().contains("refused"));
    }
}

#[tokio::test]
async fn udp_echo_from_in_process_target_and_refused_on_closed_port() {
    for ip in [V4, V6] {
        let target = InProcessTarget::start(ip);
        let outcome = udp::probe(target.udp, TIMEOUT).await;
        assert_eq!(outcome.observed, Observed::Connected, "{}: {outcome:?}", target.udp);
        let outcome = tcp::probe(target.tcp, TIMEOUT).await;
        assert_eq!(outcome.observed, Observed::Connected, "{}: {outcome:?}", target.tcp);

        let closed = closed_udp_port(ip).await;
        let outcome = udp::probe(closed, TIMEOUT).await;
        assert_eq!(outcome.observed, Observed::Refused, "{closed}: {outcome:?}");

        let stats = target.stop().await;
        assert_eq!(stats.tcp_accepted.load(Ordering::Relaxed), 1);
        assert!(stats.udp_echoed.load(Ordering::Relaxed) >= 1);
    }
}

#[tokio::test]
async fn target_ignores_datagrams_without_the_probe_header() {
    let target = InProcessTarget::start(V4);
    let client = UdpSocket::bind((V4, 0)).await.unwrap();
    client.connect(target.udp).await.unwrap();
    let mut probe = header::encode(header::Nonce::random()).to_vec();
    probe.push(b'!');
    for stranger in [b"hello".as_slice(), b"netcanary/1 ", &probe] {
        client.send(stranger).await.unwrap();
    }
    let mut buf = [0u8; 128];
    let reply = tokio::time::timeout(Duration::from_millis(300), client.recv(&mut buf)).await;
    assert!(reply.is_err(), "the target answered a stranger: {reply:?}");

    // The same socket gets an answer once it speaks netcanary.
    let datagram = header::encode(header::Nonce::random());
    client.send(&datagram).await.unwrap();
    let len = tokio::time::timeout(TIMEOUT, client.recv(&mut buf)).await.expect("echo in time").unwrap();
    assert_eq!(&buf[..len], datagram.as_slice());

    let stats = target.stop().await;
    assert_eq!(stats.udp_ignored.load(Ordering::Relaxed), 3);
    assert_eq!(stats.udp_echoed.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn dual_stack_target_answers_v4_and_v6() {
    let target = InProcessTarget::start(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    for ip in [V4, V6] {
        let tcp_addr = SocketAddr::new(ip, target.tcp.port());
        let udp_addr = SocketAddr::new(ip, target.udp.port());
        assert_eq!(tcp::probe(tcp_addr, TIMEOUT).await.observed, Observed::Connected);
        assert_eq!(udp::probe(udp_addr, TIMEOUT).await.observed, Observed::Connected);
    }
    target.stop().await;
}

/// With paused time the whole UDP retry schedule runs instantly, and the reported wait is
/// exactly the timeout: deadlines use tokio's clock, never the wall clock.
#[tokio::test(start_paused = true)]
async fn udp_silence_is_a_timeout_after_retries() {
    let silent = UdpSocket::bind((V4, 0)).await.unwrap();
    let addr = silent.local_addr().unwrap();
    let started = tokio::time::Instant::now();
    let wall = std::time::Instant::now();
    let outcome = udp::probe(addr, Duration::from_secs(30)).await;
    assert_eq!(outcome.observed, Observed::Timeout, "{outcome:?}");
    assert_eq!(started.elapsed(), Duration::from_secs(30));
    assert!(wall.elapsed() < Duration::from_secs(5), "paused time did not advance");
    // 30 s with retries at 100, 200, 400 ... capped at 15 s: several sends, all unanswered.
    let mut buf = [0u8; 64];
    let mut received = 0;
    while let Ok((len, _)) = silent.try_recv_from(&mut buf) {
        assert!(header::is_probe(&buf[..len]));
        received += 1;
    }
    assert!(received >= 5, "only {received} attempts");
}

#[tokio::test]
async fn a_plan_with_bad_probes_still_runs_the_good_ones() {
    let target = InProcessTarget::start(V4);
    let closed = closed_tcp_port(V4).await;
    let plan = format!(
        r#"{{"timeout_ms": 500, "probes": [
          {{"id": "tcp", "kind": "tcp", "host": "127.0.0.1", "port": {tcp}}},
          {{"id": "udp", "kind": "udp", "host": "localhost", "port": {udp}}},
          {{"id": "closed", "kind": "tcp", "host": "::1", "port": {closed}}},
          {{"id": "bad", "kind": "tcp", "host": "300.1.1.1", "port": 80}},
          {{"id": "gone", "kind": "tcp", "host": "no-such-host.invalid", "port": 80}},
          {{"id": "dup", "kind": "udp", "host": "127.0.0.1", "port": 1}},
          {{"id": "dup", "kind": "udp", "host": "127.0.0.1", "port": 2}}
        ]}}"#,
        tcp = target.tcp.port(),
        udp = target.udp.port(),
        closed = closed.port(),
    );
    let plan = ProbePlan::parse(&plan, "inline").unwrap();
    let report = run_plan(&plan, 2).await;
    let got: Vec<(&str, Observed)> = report.results.iter().map(|r| (r.id.as_str(), r.observed)).collect();
    assert_eq!(
        got,
        [
            ("tcp", Observed::Connected),
            ("udp", Observed::Connected),
            ("closed", Observed::Refused),
            ("bad", Observed::Error),
            ("gone", Observed::Error),
            ("dup", Observed::Error),
            ("dup", Observed::Error),
        ]
    );
    let detail = |i: usize| report.results[i].detail.clone().unwrap_or_default();
    assert!(detail(3).contains("bad address \"300.1.1.1\""), "{}", detail(3));
    assert!(detail(4).contains("cannot resolve host"), "{}", detail(4));
    assert!(detail(5).contains("duplicate id"), "{}", detail(5));
    assert_eq!(report.concurrency, 2);
    target.stop().await;
}

/// A listener that notes when its first connection arrived.
#[tokio::test]
async fn the_first_probe_waits_for_the_plans_delay() {
    let listener = TcpListener::bind((V4, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let started = tokio::time::Instant::now();
    let accepted = tokio::spawn(async move {
        let _ = listener.accept().await;
        started.elapsed()
    });
    let plan = format!(
        r#"{{"delay_ms": 300, "probes": [{{"id": "1", "kind": "tcp", "host": "127.0.0.1", "port": {port}}}]}}"#
    );
    let report = run_plan(&ProbePlan::parse(&plan, "inline").unwrap(), 1).await;
    assert_eq!(report.results[0].observed, Observed::Connected);
    let waited = accepted.await.unwrap();
    assert!(waited >= Duration::from_millis(300), "the probe was sent {waited:?} after the start");
    assert!(report.elapsed_ms < 300, "elapsed counts the probes, not the delay: {}", report.elapsed_ms);
}

#[tokio::test]
async fn two_thousand_loopback_probes_finish_in_about_one_timeout() {
    let target = InProcessTarget::start(V4);
    let probes: Vec<String> = (1..=2000)
        .map(|i| {
            let (kind, port) = if i % 2 == 0 { ("tcp", target.tcp.port()) } else { ("udp", target.udp.port()) };
            format!(r#"{{"id": "{i}", "kind": "{kind}", "host": "127.0.0.1", "port": {port}}}"#)
        })
        .collect();
    let plan = format!(r#"{{"timeout_ms": 1000, "probes": [{}]}}"#, probes.join(","));
    let plan = ProbePlan::parse(&plan, "inline").unwrap();
    let limit = netcanary_probe::fd_limit::raise();
    let concurrency = netcanary_probe::fd_limit::cap_concurrency(4096, limit);
    let report = run_plan(&plan, concurrency).await;
    let connected = report.results.iter().filter(|r| r.observed == Observed::Connected).count();
    assert_eq!(connected, 2000, "{:?}", report.results.iter().find(|r| r.observed != Observed::Connected));
    assert!(report.elapsed_ms < 3000, "took {} ms", report.elapsed_ms);
    target.stop().await;
}

/// A DNS server on loopback that answers one name with 127.0.0.1 and every other with
/// NXDOMAIN, for the `dns` path.
async fn one_name_dns_server(known: &'static str) -> SocketAddr {
    use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
    use hickory_resolver::proto::rr::{RData, Record, rdata::A};
    let socket = UdpSocket::bind((V4, 0)).await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        while let Ok((len, from)) = socket.recv_from(&mut buf).await {
            let Ok(mut message) = Message::from_vec(&buf[..len]) else { continue };
            message.metadata.message_type = MessageType::Response;
            let name = message.queries[0].name().clone();
            if name.to_ascii().trim_end_matches('.') == known {
                message.add_answer(Record::from_rdata(name, 5, RData::A(A(Ipv4Addr::LOCALHOST))));
            } else {
                message.metadata.response_code = ResponseCode::NXDomain;
            }
            let _ = socket.send_to(&message.to_vec().unwrap(), from).await;
        }
    });
    addr
}

#[tokio::test]
async fn the_dns_path_resolves_through_the_named_server_then_connects() {
    let server = one_name_dns_server("web.shop.svc.cluster.local").await;
    let listener = TcpListener::bind((V4, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let plan = ProbePlan::parse(
        &format!(
            r#"{{"timeout_ms": 500, "probes": [
              {{"id": "1", "kind": "tcp", "host": "web.shop.svc.cluster.local", "port": {port}, "path": "dns", "resolver": "{server}"}},
              {{"id": "2", "kind": "tcp", "host": "api.shop.svc.cluster.local", "port": {port}, "path": "dns", "resolver": "{server}"}}
            ]}}"#
        ),
        "test",
    )
    .unwrap();
    let report = run_plan(&plan, 4).await;
    assert_eq!(report.results[0].observed, Observed::Connected, "{:?}", report.results[0]);
    // A name that does not resolve is the probe's own failure, never "blocked".
    assert_eq!(report.results[1].observed, Observed::Error, "{:?}", report.results[1]);
    let detail = report.results[1].detail.as_deref().unwrap();
    assert!(detail.contains("api.shop.svc.cluster.local") && detail.contains("no IPv4 address"), "{detail}");
}

/// Through a Service's address, connection tracking makes a filter's ICMP reject come from
/// that address, like a closed port's: a UDP refusal by the service path is blocked.
#[tokio::test]
async fn a_udp_refusal_through_a_service_address_is_blocked() {
    let closed = closed_udp_port(V4).await;
    let port = closed.port();
    let plan = ProbePlan::parse(
        &format!(
            r#"{{"timeout_ms": 500, "probes": [
              {{"id": "pod", "kind": "udp", "host": "127.0.0.1", "port": {port}}},
              {{"id": "service", "kind": "udp", "host": "127.0.0.1", "port": {port}, "path": "service"}}
            ]}}"#
        ),
        "test",
    )
    .unwrap();
    let report = run_plan(&plan, 2).await;
    assert_eq!(report.results[0].observed, Observed::Refused, "{:?}", report.results[0]);
    assert_eq!(report.results[1].observed, Observed::Unreachable, "{:?}", report.results[1]);
    assert!(report.results[1].detail.as_deref().unwrap().contains("behind a Service's address"));
}
