//! The node bed: the bed of `tests/common/bed.rs` with a real node's NetworkPolicy
//! controller in its hub, so that what netcanary reports is checked against a dataplane
//! nobody here wrote.
//!
//! ```text
//!  test machine (its own network namespace)          the node: the bed's hub namespace
//! +--------------------------------------+          +-------------------------------------+
//! | kube-apiserver fixture 127.0.0.1:P   |<---------| 127.0.0.1:6443  (LoopbackBridge)    |
//! |                                      |          |      ^                              |
//! | fake kubelet: pods/log endpoint      |          | kube-router --run-firewall          |
//! |   https://localhost:Q (Node Hostname)|          |   (iptables-nft, ipset)             |
//! |                                      |          |                                     |
//! | netcanary run (as its ServiceAccount)|          | br0 10.66.0.1/16: InternalIP, the   |
//! +--------------------------------------+          |   pods' hostIP and default gateway  |
//!                                                   |  |-- veth -- pod 10.66.N.H (netns)  |
//!                                                   |  |-- veth -- pod ...                |
//!                                                   +-------------------------------------+
//! ```
//!
//! kube-router (`tests/kube-router`, built from the Go module proxy and cached) runs as the
//! node's firewall only, in the hub where every pod's veth meets the bridge, with
//! `bridge-nf-call-iptables=1` there so that bridged packets pass its iptables chains. It
//! reads the Node (`--hostname-override`) for its address and enforces policy for the pods
//! whose `status.hostIP` is that address: every pod of the bed. It reaches the API server
//! through [`LoopbackBridge`], since the fixture listens on the test machine's loopback only.
//! It answers what policy denies with iptables' plain `REJECT`: an ICMP port unreachable from
//! the node's address, which the agent reports as `unreachable` (see
//! `crates/probe/src/refusal.rs`).
//!
//! kube-proxy (iptables mode, the same Kubernetes version as the fixture, built beside it)
//! runs in the node too, so a Service's ClusterIP reaches its endpoints as in a cluster:
//! DNAT on the node, before kube-router's filter sees the pod's own address. The bed has
//! no EndpointSlice controller; the fake kubelet writes the cluster DNS's slice (see
//! [`FakeKubelet::add_dns`](super::kubelet::FakeKubelet::add_dns)).
//!
//! Needs root, network namespaces, iptables and ipset (skipped or failed as
//! `tests/common/netns.rs` says), the kube-apiserver fixture, and kube-router: the binary
//! `NETCANARY_KUBE_ROUTER` names, else `tests/kube-router/build.sh` builds it (skipped
//! without Go, or failed when `NETCANARY_REQUIRE_KUBE=1`, as for the fixture).

#![allow(dead_code)] // Each integration test uses a different part of the harness.

use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::bed::{Bed, CLUSTER_DNS, DNS_NAME};
use super::kube_fixture::KubeFixture;
use super::kubelet::{KubeletOptions, NODE, POD_CIDR};
use super::netns::{ChildGuard, TestNet};

/// The node's address: on the hub's bridge, the Node's InternalIP and every pod's hostIP.
pub const NODE_IP: Ipv4Addr = Ipv4Addr::new(10, 66, 0, 1);
/// The node's IPv6 address, for a bed whose pods list theirs first
/// ([`KubeletOptions::node_ip6`]).
pub const NODE_IP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x66, 0, 0, 0, 0, 0, 1);
/// Where the API server is reached from inside the node.
const API_PORT_IN_NODE: u16 = 6443;
/// How long kube-router may take to come up and program its first sync, and kube-proxy
/// the cluster DNS Service.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// What kube-router logs (at -v=1) when a sync of its rules is done.
const SYNCED: &str = "sync iptables took";

/// The node's own components, owned by the [`Bed`] they run in.
pub struct Node {
    binary: PathBuf,
    kubeconfig: PathBuf,
    kube_router: Mutex<Option<ChildGuard>>,
    kube_proxy: Mutex<Option<ChildGuard>>,
    kube_proxy_binary: PathBuf,
    /// The servers of the bed's internet.
    internet: Mutex<Vec<ChildGuard>>,
    /// Whether kube-router also enforces IPv6 (`--enable-ipv6`).
    ipv6: bool,
    /// Declared last: dropped after kube-router, whose connections it carries.
    bridge: LoopbackBridge,
}

/// A node bed for `test` with `app` (namespaces, policies) applied and a kubelet with
/// `options` (the node's address is set here); kube-router is not started yet. `None` when
/// the test is skipped.
pub async fn bed(test: &str, mut options: KubeletOptions, app: &str) -> Option<Bed> {
    let binary = kube_router_or_skip(test)?;
    let net = TestNet::new(test)?;
    let kube = KubeFixture::start_or_skip(test)?;
    let kube_proxy = super::kube_fixture::kube_proxy_binary().unwrap_or_else(|e| panic!("{e}"));
    net.add_hub_address(&format!("{NODE_IP}/16"));
    if let Some(ip6) = options.node_ip6 {
        net.add_hub_address(&format!("{ip6}/64"));
    }
    let sysctls = [
        "net.ipv4.ip_forward=1",
        "net.bridge.bridge-nf-call-iptables=1",
        "net.bridge.bridge-nf-call-ip6tables=1",
        // Every reject answers: ICMP errors are rate-limited per peer by default.
        "net.ipv4.icmp_ratelimit=0",
        // What the node routes goes back out of the bridge it came in by (to the bed's
        // internet, below): no redirect, so it keeps passing the node's routing.
        "net.ipv4.conf.all.send_redirects=0",
        "net.ipv4.conf.default.send_redirects=0",
        "net.ipv6.icmp.ratelimit=0",
    ];
    for sysctl in sysctls {
        let out = net.exec_hub(&["sysctl", "-q", "-w", sysctl]);
        assert!(out.status.success(), "{sysctl} in the node: {}", String::from_utf8_lossy(&out.stderr));
    }
    let bridge = LoopbackBridge::start(net.hub_netns(), API_PORT_IN_NODE, api_server_address(kube.kubeconfig_path()));
    let kubeconfig = node_kubeconfig(&kube);
    let node = Node {
        binary,
        kubeconfig,
        kube_router: Mutex::new(None),
        kube_proxy: Mutex::new(None),
        kube_proxy_binary: kube_proxy,
        internet: Mutex::new(Vec::new()),
        ipv6: options.node_ip6.is_some(),
        bridge,
    };
    options.node_ip = Some(NODE_IP);
    let bed = Bed::start(net, kube, app, options, Some(node)).await;
    // Once the Node is registered: kube-proxy reads its addresses.
    let node = bed.node();
    let child = start_kube_proxy(&bed.kubelet.net(), &node.kube_proxy_binary, &node.kubeconfig);
    *node.kube_proxy.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
    bed.kubelet.add_dns(CLUSTER_DNS, &[(DNS_NAME, "10.96.0.1")]).await;
    bed.wait_for_service_rules(&CLUSTER_DNS.to_string());
    Some(bed)
}

/// The bed's internet: `203.0.113.0/24` (TEST-NET-3), on the node's bridge but in a subnet
/// of its own with the node (`203.0.113.1`) as its gateway, so pods reach it only through
/// the node's routing, as they reach the world through a real node. Nothing in it leaves
/// the bed's namespaces.
pub const INTERNET_GATEWAY: &str = "203.0.113.1/24";

impl Bed {
    /// A host of the bed's internet at `ip` (in `203.0.113.0/24`) running `netcanary target`
    /// on `tcp_ports`; killed with the bed.
    pub fn add_internet_host(&self, name: &str, ip: &str, tcp_ports: &str) {
        let mut net = self.kubelet.net();
        if !String::from_utf8_lossy(&net.exec_hub(&["ip", "-4", "addr", "show", "dev", "br0"]).stdout)
            .contains("203.0.113.1/")
        {
            net.add_hub_address(INTERNET_GATEWAY);
        }
        let [_, _, _, host] = ip.parse::<Ipv4Addr>().expect("an IPv4 address").octets();
        net.add_host(name, &format!("{ip}/24"), &format!("fd00:203::{host}/64"));
        let out = net.exec(name, &["ip", "route", "add", "default", "via", "203.0.113.1"]);
        assert!(out.status.success(), "route {name} through the node: {}", String::from_utf8_lossy(&out.stderr));
        let mut target = net.spawn(name, &[super::bed::BIN, "target", "--tcp", tcp_ports]);
        target.wait_for_line("listening", Duration::from_secs(10));
        self.node().internet.lock().unwrap_or_else(|e| e.into_inner()).push(target);
    }

    fn node(&self) -> &Node {
        self.node.as_ref().expect("a node bed (tests/common/node.rs)")
    }

    /// Waits until kube-proxy has programmed the Service with `cluster_ip`.
    fn wait_for_service_rules(&self, cluster_ip: &str) {
        let started = Instant::now();
        loop {
            let nat = self.kubelet.net().exec_hub(&["iptables-save", "-t", "nat"]);
            let rules = String::from_utf8_lossy(&nat.stdout);
            if rules.lines().any(|l| l.contains(&format!("-d {cluster_ip}/32")) && l.contains("KUBE-SVC-")) {
                return;
            }
            assert!(
                started.elapsed() < READY_TIMEOUT,
                "kube-proxy did not program {cluster_ip} within {READY_TIMEOUT:?}:\n{rules}\nits log:\n{}",
                self.kube_proxy_log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts kube-router in the node and waits until it has programmed the cluster as it
    /// is now (its first full sync).
    pub fn start_kube_router(&self) {
        let node = self.node();
        let mut running = node.kube_router.lock().unwrap_or_else(|e| e.into_inner());
        assert!(running.is_none(), "kube-router runs already");
        let kubeconfig = format!("--kubeconfig={}", node.kubeconfig.display());
        let hostname = format!("--hostname-override={NODE}");
        let binary = node.binary.to_str().expect("a UTF-8 path");
        let ipv6 = format!("--enable-ipv6={}", node.ipv6);
        let args = [
            binary,
            &ipv6,
            "--run-firewall=true",
            "--run-router=false",
            "--run-service-proxy=false",
            &hostname,
            &kubeconfig,
            "--service-cluster-ip-range=10.96.0.0/16",
            // No listeners of its own: nothing here reads them.
            "--health-port=0",
            "--metrics-port=0",
            "-v=1",
        ];
        let mut child = self.kubelet.net().spawn_in_hub(&args);
        let started = Instant::now();
        while !child.stderr().contains(SYNCED) {
            if let Some(status) = child.try_wait() {
                panic!("kube-router exited ({status}) before its first sync:\n{}", child.stderr());
            }
            assert!(
                started.elapsed() < READY_TIMEOUT,
                "kube-router did not sync within {READY_TIMEOUT:?}:\n{}",
                child.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        *running = Some(child);
    }

    /// Stops kube-router and removes everything it programmed: the node enforces nothing any
    /// more. By hand: v2.1.0's `--cleanup-config` removes nothing of the firewall (it cleans
    /// up with a controller it never gave its iptables handlers) and then crashes in the
    /// service proxy's cleanup, which needs IPVS. The jumps into its chains go first, in one
    /// `iptables-restore --noflush` transaction, so the node stops enforcing at once.
    pub fn stop_kube_router(&self) {
        let node = self.node();
        let mut running = node.kube_router.lock().unwrap_or_else(|e| e.into_inner());
        let mut child = running.take().expect("kube-router runs");
        let status = child.terminate(Duration::from_secs(10));
        assert!(status.is_some(), "kube-router did not stop on SIGTERM:\n{}", child.stderr());
        let net = self.kubelet.net();
        let saved = net.exec_hub(&["iptables-save", "-t", "filter"]);
        let rules = String::from_utf8_lossy(&saved.stdout);
        let out = net.exec_hub_with_stdin(&["iptables-restore", "--noflush"], removal(&rules).as_bytes());
        assert!(out.status.success(), "remove kube-router's rules: {}", String::from_utf8_lossy(&out.stderr));
        let sets = net.exec_hub(&["ipset", "list", "-n"]);
        for set in String::from_utf8_lossy(&sets.stdout).lines().filter(|s| is_kube_router(s)) {
            let out = net.exec_hub(&["ipset", "destroy", set]);
            assert!(out.status.success(), "ipset destroy {set}: {}", String::from_utf8_lossy(&out.stderr));
        }
        let left: Vec<String> = String::from_utf8_lossy(&net.exec_hub(&["iptables-save"]).stdout)
            .lines()
            .filter(|l| is_kube_router(l))
            .map(str::to_string)
            .collect();
        assert!(left.is_empty(), "kube-router's rules outlived their removal: {left:#?}");
    }

    /// What kube-proxy logged so far.
    pub fn kube_proxy_log(&self) -> String {
        let running = self.node().kube_proxy.lock().unwrap_or_else(|e| e.into_inner());
        running.as_ref().map_or_else(|| "(not running)".into(), ChildGuard::stderr)
    }

    /// What kube-router logged so far (shown when a scenario fails).
    pub fn kube_router_log(&self) -> String {
        let running = self.node().kube_router.lock().unwrap_or_else(|e| e.into_inner());
        running.as_ref().map_or_else(|| "(not running)".into(), ChildGuard::stderr)
    }

    /// The node's iptables rules, as kube-router programmed them (shown when a scenario fails).
    pub fn node_rules(&self) -> String {
        String::from_utf8_lossy(&self.kubelet.net().exec_hub(&["iptables-save"]).stdout).into_owned()
    }
}

/// The names kube-router gives its chains and ipsets.
const KUBE_ROUTER_NAMES: [&str; 5] = ["KUBE-ROUTER-", "KUBE-POD-FW-", "KUBE-NWPLCY-", "KUBE-SRC-", "KUBE-DST-"];

fn is_kube_router(line: &str) -> bool {
    KUBE_ROUTER_NAMES.iter().any(|name| line.contains(name))
}

/// An `iptables-restore --noflush` script that removes kube-router's chains from the filter
/// table `saved` (as `iptables-save` prints it): the jumps from the built-in chains, then
/// every rule of its chains, then the chains.
fn removal(saved: &str) -> String {
    let chains: Vec<&str> = saved
        .lines()
        .filter_map(|l| l.strip_prefix(':'))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|chain| is_kube_router(chain))
        .collect();
    let mut script = String::from("*filter\n");
    for rule in saved.lines().filter(|l| l.starts_with("-A ") && is_kube_router(l)) {
        let chain = rule.split_whitespace().nth(1).unwrap_or_default();
        if !chains.contains(&chain) {
            script.push_str(&format!("-D{}\n", &rule[2..]));
        }
    }
    for chain in &chains {
        script.push_str(&format!("-F {chain}\n"));
    }
    for chain in &chains {
        script.push_str(&format!("-X {chain}\n"));
    }
    script.push_str("COMMIT\n");
    script
}

/// kube-proxy in the node, in iptables mode, for the pods' CIDR; leaves conntrack's
/// settings alone (they are the machine's, beyond the node's namespace).
fn start_kube_proxy(net: &TestNet, binary: &Path, kubeconfig: &Path) -> ChildGuard {
    let kubeconfig = format!("--kubeconfig={}", kubeconfig.display());
    let hostname = format!("--hostname-override={NODE}");
    let cluster_cidr = format!("--cluster-cidr={POD_CIDR}");
    let args = [
        binary.to_str().expect("a UTF-8 path"),
        &kubeconfig,
        &hostname,
        "--proxy-mode=iptables",
        &cluster_cidr,
        "--conntrack-max-per-core=0",
        "--conntrack-tcp-timeout-established=0",
        "--conntrack-tcp-timeout-close-wait=0",
        "--metrics-bind-address=127.0.0.1:10249",
        "--healthz-bind-address=127.0.0.1:10256",
        "-v=1",
    ];
    net.spawn_in_hub(&args)
}

/// The server address of the fixture's admin kubeconfig.
fn api_server_address(kubeconfig: &Path) -> SocketAddr {
    let text = std::fs::read_to_string(kubeconfig).expect("read the fixture's kubeconfig");
    text.lines()
        .find_map(|line| line.trim().strip_prefix("server: https://"))
        .and_then(|address| address.trim().parse().ok())
        .unwrap_or_else(|| panic!("no server address in {}", kubeconfig.display()))
}

/// The admin kubeconfig, with the server as the node reaches it.
fn node_kubeconfig(kube: &KubeFixture) -> PathBuf {
    let text = std::fs::read_to_string(kube.kubeconfig_path()).expect("read the fixture's kubeconfig");
    let mut config: serde_norway::Value = serde_norway::from_str(&text).expect("a YAML kubeconfig");
    for cluster in config["clusters"].as_sequence_mut().expect("clusters in the kubeconfig") {
        cluster["cluster"]["server"] = format!("https://127.0.0.1:{API_PORT_IN_NODE}").into();
    }
    let path = kube.dir().join("kubeconfig-node");
    std::fs::write(&path, serde_norway::to_string(&config).expect("YAML")).expect("write the node's kubeconfig");
    path
}

/// A port of a network namespace's loopback joined to an address of the test machine's
/// loopback: how a daemon in the node reaches the API server, which listens on 127.0.0.1
/// only. Nothing is opened to anything but that namespace.
pub struct LoopbackBridge {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl LoopbackBridge {
    pub fn start(netns: &str, port: u16, target: SocketAddr) -> LoopbackBridge {
        let listener = listen_in(netns, port).unwrap_or_else(|e| panic!("listen on port {port} in {netns}: {e}"));
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("loopback-bridge".into())
            .spawn(move || {
                while !thread_stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((inbound, _)) => {
                            std::thread::spawn(move || {
                                if let Err(error) = join(inbound, target) {
                                    eprintln!("loopback bridge to {target}: {error}");
                                }
                            });
                        }
                        Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        Err(error) => eprintln!("loopback bridge to {target}: accept: {error}"),
                    }
                }
            })
            .expect("start the loopback bridge's thread");
        LoopbackBridge { stop, thread: Some(thread) }
    }
}

impl Drop for LoopbackBridge {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A listener on 127.0.0.1:`port` of the network namespace `netns`. A socket belongs to
/// the namespace it was made in, so a thread of its own enters the namespace, binds, and
/// ends: the rest of the process never leaves its own.
fn listen_in(netns: &str, port: u16) -> io::Result<TcpListener> {
    let path = PathBuf::from("/run/netns").join(netns);
    std::thread::spawn(move || {
        let namespace = File::open(&path)?;
        rustix::thread::move_into_link_name_space(namespace.as_fd(), Some(rustix::thread::LinkNameSpaceType::Network))
            .map_err(io::Error::from)?;
        TcpListener::bind((Ipv4Addr::LOCALHOST, port))
    })
    .join()
    .unwrap_or_else(|_| Err(io::Error::other("the thread entering the namespace panicked")))
}

/// Carries one connection to `target` and back until either side closes.
fn join(inbound: TcpStream, target: SocketAddr) -> io::Result<()> {
    inbound.set_nonblocking(false)?;
    let outbound = TcpStream::connect(target)?;
    let (mut in_read, mut out_write) = (inbound.try_clone()?, outbound.try_clone()?);
    let upstream = std::thread::spawn(move || {
        let _ = io::copy(&mut in_read, &mut out_write);
        let _ = out_write.shutdown(std::net::Shutdown::Write);
    });
    let (mut out_read, mut in_write) = (outbound, inbound);
    let _ = io::copy(&mut out_read, &mut in_write);
    let _ = in_write.shutdown(std::net::Shutdown::Write);
    let _ = upstream.join();
    Ok(())
}

/// The kube-router binary, or `None` after a `SKIPPED` line (see the module documentation).
fn kube_router_or_skip(test: &str) -> Option<PathBuf> {
    for tool in ["iptables", "ipset"] {
        let found = Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
        if !found.is_ok_and(|s| s.success()) {
            return super::skip_unless_required(test, "NETCANARY_REQUIRE_NETNS", &format!("{tool} (Debian's {tool})"));
        }
    }
    match kube_router_binary() {
        Ok(path) => Some(path),
        Err(reason) => super::skip_unless_required(test, "NETCANARY_REQUIRE_KUBE", &format!("kube-router ({reason})")),
    }
}

/// `NETCANARY_KUBE_ROUTER`, or built (once per test process) by its build.sh.
fn kube_router_binary() -> Result<PathBuf, String> {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    if let Some(path) = std::env::var_os("NETCANARY_KUBE_ROUTER") {
        let path = PathBuf::from(path);
        // Named on purpose, so a wrong path is a mistake to report, not a reason to skip.
        assert!(path.is_file(), "NETCANARY_KUBE_ROUTER={} is not a file", path.display());
        return Ok(path);
    }
    BINARY.get_or_init(|| super::kube_fixture::build_with("tests/kube-router/build.sh")).clone()
}
