//! A test bed of real network namespaces, where packets are really dropped or rejected.
//!
//! Each [`TestNet`] makes a hub namespace holding a bridge, and one namespace per host,
//! joined to the bridge by a veth pair (`eth0` inside the host) with an IPv4 and an IPv6
//! address. Names carry a per-process, per-net prefix (`nct<pid>x<n>-`), so tests run in
//! parallel; addresses are private to the namespaces and never routed anywhere else.
//! Dropping the `TestNet` kills every process left in its namespaces and deletes them, also
//! when a test panics; a later run sweeps what a killed one left behind.
//!
//! Needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN) and `iproute2`; `nftables` for [`TestNet::nft`].
//! Without them a test is skipped with a `SKIPPED` line on stderr, or fails when
//! `NETCANARY_REQUIRE_NETNS=1` (CI sets it).

#![allow(dead_code)] // Each integration test uses a different part of the harness.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

const PREFIX: &str = "nct";

/// A set of network namespaces joined by a bridge.
pub struct TestNet {
    prefix: String,
    hub: String,
    hosts: Vec<TestHost>,
    /// Numbers the hub ends of the veth pairs; never reused, as hosts can be removed.
    next_port: usize,
    dir: PathBuf,
}

/// One namespace on the bridge.
#[derive(Debug, Clone)]
pub struct TestHost {
    pub name: String,
    pub netns: String,
    /// Without the prefix length, ready to put in a plan.
    pub v4: String,
    pub v6: String,
}

impl TestNet {
    /// A fresh, empty net for `test`, or `None` (after printing why) when this machine cannot
    /// make namespaces and `NETCANARY_REQUIRE_NETNS` is not `1`.
    pub fn new(test: &str) -> Option<TestNet> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        static SWEEP: Once = Once::new();
        if let Err(reason) = check_privileges() {
            return skip(test, &reason);
        }
        SWEEP.call_once(sweep_stale);
        let prefix = format!("{PREFIX}{}x{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let hub = format!("{prefix}-hub");
        if let Err(reason) = run_cmd(&["ip", "netns", "add", &hub]) {
            return skip(test, &format!("`ip netns add` failed: {reason}"));
        }
        let dir = std::env::temp_dir().join(&prefix);
        let net = TestNet { prefix, hub, hosts: Vec::new(), next_port: 0, dir };
        std::fs::create_dir_all(&net.dir).expect("create scratch dir");
        net.must(&["ip", "-n", &net.hub, "link", "set", "lo", "up"]);
        net.must(&["ip", "-n", &net.hub, "link", "add", "br0", "type", "bridge"]);
        net.must(&["ip", "-n", &net.hub, "link", "set", "br0", "up"]);
        Some(net)
    }

    /// Adds a host with addresses in CIDR form, e.g. `10.77.0.2/24` and `fd00:77::2/64`.
    pub fn add_host(&mut self, name: &str, v4: &str, v6: &str) -> TestHost {
        let netns = format!("{}-{name}", self.prefix);
        let hub_end = format!("v{}", self.next_port);
        self.next_port += 1;
        self.must(&["ip", "netns", "add", &netns]);
        let host = TestHost {
            name: name.to_owned(),
            netns: netns.clone(),
            v4: strip_prefix_len(v4),
            v6: strip_prefix_len(v6),
        };
        self.hosts.push(host.clone());
        let (hub, ns) = (self.hub.as_str(), netns.as_str());
        self.must(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        self.must(&["ip", "-n", hub, "link", "add", &hub_end, "type", "veth", "peer", "name", "eth0", "netns", ns]);
        self.must(&["ip", "-n", hub, "link", "set", &hub_end, "master", "br0", "up"]);
        self.must(&["ip", "-n", ns, "addr", "add", v4, "dev", "eth0"]);
        // No duplicate address detection: the address is usable at once.
        self.must(&["ip", "-n", ns, "addr", "add", v6, "dev", "eth0", "nodad"]);
        self.must(&["ip", "-n", ns, "link", "set", "eth0", "up"]);
        // Rejects answer every probe: ICMP errors are rate-limited per peer by default.
        self.must(&[
            "ip",
            "netns",
            "exec",
            ns,
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.icmp_ratelimit=0",
            "net.ipv6.icmp.ratelimit=0",
        ]);
        host
    }

    /// Kills what runs in `name` and deletes its namespace (its veth pair goes with it).
    pub fn remove_host(&mut self, name: &str) {
        if let Some(index) = self.hosts.iter().position(|h| h.name == name) {
            remove_netns(&self.hosts.remove(index).netns);
        }
    }

    pub fn host(&self, name: &str) -> &TestHost {
        self.hosts.iter().find(|h| h.name == name).unwrap_or_else(|| panic!("no host {name:?} in this net"))
    }

    /// A scratch directory removed with the net.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `cmd` inside `host` and returns its output, whatever its status.
    pub fn exec(&self, host: &str, cmd: &[&str]) -> Output {
        self.exec_with_stdin(host, cmd, b"")
    }

    pub fn exec_with_stdin(&self, host: &str, cmd: &[&str], stdin: &[u8]) -> Output {
        exec_in(&self.host(host).netns, cmd, stdin)
    }

    /// dnsmasq on `host`, in the foreground, on port 53 of the comma-separated
    /// `listen_addresses` only, answering from `answers` (`--address=/name/ip`, `--local=...`)
    /// and nothing upstream: no traffic ever leaves the test network.
    pub fn spawn_dnsmasq(&self, host: &str, listen_addresses: &str, answers: &[String]) -> ChildGuard {
        let pid_file = self.dir.join(format!("{host}-dnsmasq.pid"));
        let mut args = vec![
            "dnsmasq".to_string(),
            "--no-daemon".into(),
            "--no-resolv".into(),
            "--no-hosts".into(),
            "--log-facility=-".into(),
            "--user=root".into(),
            format!("--listen-address={listen_addresses}"),
            "--bind-interfaces".into(),
            "--port=53".into(),
            format!("--pid-file={}", pid_file.display()),
        ];
        args.extend(answers.iter().cloned());
        self.spawn(host, &args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Starts `cmd` inside `host`; stdout is readable through the guard, stderr goes to a
    /// file in [`TestNet::dir`]. The process is killed when the guard or the net drops.
    pub fn spawn(&self, host: &str, cmd: &[&str]) -> ChildGuard {
        self.spawn_in(&self.host(host).netns, host, cmd)
    }

    /// [`spawn`](Self::spawn) in the hub: where a node's own daemons run.
    pub fn spawn_in_hub(&self, cmd: &[&str]) -> ChildGuard {
        self.spawn_in(&self.hub, "hub", cmd)
    }

    fn spawn_in(&self, netns: &str, name: &str, cmd: &[&str]) -> ChildGuard {
        static SPAWNED: AtomicUsize = AtomicUsize::new(0);
        let label = format!(
            "{name}-{}-{}",
            Path::new(cmd[0]).file_name().unwrap_or_default().to_string_lossy(),
            SPAWNED.fetch_add(1, Ordering::Relaxed)
        );
        let stderr_path = self.dir.join(format!("{label}.stderr"));
        let stderr = File::create(&stderr_path).expect("stderr file");
        let mut child = Command::new("ip")
            .args(["netns", "exec", netns])
            .args(cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {cmd:?} in {name}: {err}"));
        let stdout = child.stdout.take().expect("stdout");
        let (lines_tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        ChildGuard { label, child, lines, stderr_path }
    }

    /// Loads an nftables ruleset (the `nft -f` syntax) into `host`'s namespace.
    pub fn nft(&self, host: &str, ruleset: &str) {
        nft_in(&self.host(host).netns, ruleset);
    }

    /// Loads an nftables ruleset into the hub, whose bridge forwards every packet between
    /// hosts: where a test plays a CNI that enforces policy. Bridged packets pass the hub's
    /// `inet` forward hook with connection tracking (br_netfilter, switched on here), as in a
    /// node running kube-proxy, so a rule can allow replies with `ct state established`.
    pub fn nft_hub(&self, ruleset: &str) {
        let sysctl =
            ["sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=1", "net.bridge.bridge-nf-call-ip6tables=1"];
        let out = exec_in(&self.hub, &sysctl, b"");
        assert!(out.status.success(), "br_netfilter in the hub: {}", String::from_utf8_lossy(&out.stderr));
        nft_in(&self.hub, ruleset);
    }

    /// Gives the hub's bridge an address (CIDR form), as a node has on the bridge of its
    /// pods: the source of the ICMP errors a filter in the hub sends.
    pub fn add_hub_address(&self, cidr: &str) {
        let nodad: &[&str] = if cidr.contains(':') { &["nodad"] } else { &[] };
        let mut cmd = vec!["ip", "-n", &self.hub, "addr", "add", cidr, "dev", "br0"];
        cmd.extend_from_slice(nodad);
        self.must(&cmd);
    }

    /// Runs `cmd` in the hub and returns its output, whatever its status.
    pub fn exec_hub(&self, cmd: &[&str]) -> Output {
        exec_in(&self.hub, cmd, b"")
    }

    /// [`exec_hub`](Self::exec_hub) with `stdin`.
    pub fn exec_hub_with_stdin(&self, cmd: &[&str], stdin: &[u8]) -> Output {
        exec_in(&self.hub, cmd, stdin)
    }

    /// The name of the hub's network namespace (as `ip netns` knows it).
    pub fn hub_netns(&self) -> &str {
        &self.hub
    }

    /// Removes every nftables rule from the hub.
    pub fn nft_flush_hub(&self) {
        nft_in(&self.hub, "flush ruleset\n");
    }

    /// Removes every nftables rule from `host`.
    pub fn nft_flush(&self, host: &str) {
        self.nft(host, "flush ruleset\n");
    }

    fn must(&self, cmd: &[&str]) {
        if let Err(reason) = run_cmd(cmd) {
            panic!("test bed setup failed: {cmd:?}: {reason}");
        }
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        for netns in self.hosts.iter().map(|h| h.netns.clone()).chain([self.hub.clone()]) {
            remove_netns(&netns);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A process started in a namespace; killed on drop.
pub struct ChildGuard {
    label: String,
    child: Child,
    lines: Receiver<String>,
    stderr_path: PathBuf,
}

impl ChildGuard {
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a stdout line starting with `prefix` and returns it.
    pub fn wait_for_line(&mut self, prefix: &str, timeout: Duration) -> String {
        self.try_wait_for_line(prefix, timeout).unwrap_or_else(|reason| panic!("{reason}"))
    }

    /// [`wait_for_line`](Self::wait_for_line) for callers that must not panic (the fake
    /// kubelet's thread): the error says why no such line came.
    pub fn try_wait_for_line(&mut self, prefix: &str, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return Ok(line),
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "{}: no line starting with {prefix:?} within {timeout:?}; stderr:\n{}",
                        self.label,
                        self.stderr()
                    ));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!(
                        "{}: exited before printing {prefix:?} ({:?}); stderr:\n{}",
                        self.label,
                        self.child.try_wait(),
                        self.stderr()
                    ));
                }
            }
        }
    }

    /// The exit status, if the process has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The stdout lines not read yet, up to the end of the output (or `timeout`, for a
    /// process that keeps it open).
    pub fn remaining_stdout(&mut self, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut lines = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            lines.push(line);
        }
        lines
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let _ = run_cmd(&["kill", "-TERM", &self.child.id().to_string()]);
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// For a test that needs root but no namespaces of its own (`unshare` and `chroot` in the
/// test's network): whether it may run, decided and reported as [`TestNet::new`] does.
pub fn privileged_or_skip(test: &str) -> bool {
    match check_privileges() {
        Ok(()) => true,
        Err(reason) => skip(test, &reason).is_some(),
    }
}

fn skip(test: &str, reason: &str) -> Option<TestNet> {
    super::skip_unless_required(test, "NETCANARY_REQUIRE_NETNS", &format!("root and network namespaces ({reason})"))
}

fn check_privileges() -> Result<(), String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .unwrap_or("?");
    if euid != "0" {
        return Err(format!("running as uid {euid}, not root"));
    }
    run_cmd(&["ip", "-V"]).map(drop).map_err(|e| format!("iproute2 missing: {e}"))
}

fn run_cmd(cmd: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("cannot run {}: {err}", cmd[0]))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("{} ({})", String::from_utf8_lossy(&out.stderr).trim(), out.status))
    }
}

/// Runs `cmd` in the namespace `netns` and returns its output, whatever its status.
fn exec_in(netns: &str, cmd: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new("ip")
        .args(["netns", "exec", netns])
        .args(cmd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run {cmd:?} in {netns}: {err}"));
    child.stdin.take().expect("stdin").write_all(stdin).expect("write stdin");
    child.wait_with_output().expect("wait for command")
}

fn nft_in(netns: &str, ruleset: &str) {
    let out = exec_in(netns, &["nft", "-f", "-"], ruleset.as_bytes());
    assert!(
        out.status.success(),
        "nft in {netns} failed: {}\nruleset:\n{ruleset}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Kills what still runs in `netns`, then deletes it.
fn remove_netns(netns: &str) {
    if let Ok(pids) = run_cmd(&["ip", "netns", "pids", netns]) {
        for pid in pids.split_whitespace() {
            let _ = run_cmd(&["kill", "-KILL", pid]);
        }
    }
    let _ = run_cmd(&["ip", "netns", "del", netns]);
}

/// Deletes namespaces left by test processes that no longer exist (e.g. killed by a timeout).
fn sweep_stale() {
    let Ok(list) = run_cmd(&["ip", "netns", "list"]) else {
        return;
    };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(pid) =
            name.strip_prefix(PREFIX).and_then(|rest| rest.split('x').next()).and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            remove_netns(name);
        }
    }
}

fn strip_prefix_len(cidr: &str) -> String {
    cidr.split('/').next().unwrap_or(cidr).to_owned()
}
