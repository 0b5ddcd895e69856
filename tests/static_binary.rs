//! The binary the container image ships needs nothing but itself. Built by
//! `scripts/build-static.sh`, the command the Dockerfile runs, it has no ELF interpreter and
//! no needed shared library; and in a root that holds only it and the files one check hands
//! it, run as the image's user (distroless `nonroot`) in a mount namespace of its own, it
//! does every verb's work: `analyze` gives the dynamic build's verdicts, `target` and `agent`
//! probe real sockets in a fresh network namespace and resolve names through the /etc/hosts
//! and /etc/resolv.conf a kubelet mounts into a pod, `run --dry-run` reads a real API server
//! over TLS and plans what the dynamic build plans, and `serve` syncs its watches.
//!
//! The binary is built from a copy of the image's build context (what `.dockerignore` lets
//! in), as the Dockerfile's build stage does. The first build takes minutes; later ones
//! reuse `target/static`. All but the ELF check
//! need root, and `run` and `serve` the kube-apiserver fixture as well: see
//! `tests/common/netns.rs` and `tests/common/kube_fixture.rs` for how a test skips or fails
//! without them.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::bed::{BIN, Bed, free_address, output_within};
use common::netns::{TestNet, privileged_or_skip};
use common::scratch::ScratchDir;
use common::{assert_ok, read_repo_file, repo_file};
use netcanary_wire::{AgentReport, Observed, termination_log};
use object::Endianness;
use object::elf::{DT_NEEDED, FileHeader64};
use object::read::elf::{FileHeader, ProgramHeader};
use serde_json::{Value, json};

/// The image's user and group: distroless `nonroot`.
const NONROOT: u32 = 65532;
/// How long one command in the root may take before it counts as hung.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// The port `target` listens on in the probe test; the next one stays closed.
const OPEN: u16 = 8001;
const CLOSED: u16 = 8002;

/// The static binary, built once per test process (and only checked for freshness when
/// `target/static` already holds it) as the image's build stage builds it: by
/// `scripts/build-static.sh` in a copy of the build context, so that a file the build needs
/// and `.dockerignore` leaves out fails here and not only in `docker build`.
fn static_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let context = build_context(&repo_file("target/docker-context"));
        let script = context.join("scripts/build-static.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg(repo_file("target/static"))
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert_ok(&out, &script.display().to_string());
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let path = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
        assert!(path.is_file(), "{} printed {path:?}, which is no file; stderr:\n{stderr}", script.display());
        path
    })
}

/// Copies to `dest` (emptied first) what `docker build` sends as the build context: the files
/// of the repository that `.dockerignore` lets in. Modification times are kept, so cargo rebuilds
/// only what changed. The rules understood are the ones the file uses, an allowlist: `*`,
/// then `!path` for each file or folder let in; anything else fails the test, to be taught
/// here.
fn build_context(dest: &Path) -> PathBuf {
    let rules = read_repo_file(".dockerignore");
    let mut patterns = rules.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'));
    assert_eq!(patterns.next(), Some("*"), ".dockerignore: the first rule must be `*` (an allowlist follows)");
    let allowed: Vec<&str> = patterns
        .map(|pattern| {
            let path = pattern.strip_prefix('!').map(|p| p.trim_end_matches('/'));
            match path {
                Some(path) if !path.is_empty() && !path.contains(['*', '?', '[', '\\']) && !path.starts_with('/') => {
                    path
                }
                _ => panic!(".dockerignore: {pattern:?}: this test knows only `!path` exceptions after `*`"),
            }
        })
        .collect();
    if dest.exists() {
        fs::remove_dir_all(dest).unwrap_or_else(|e| panic!("empty {}: {e}", dest.display()));
    }
    for path in allowed {
        let from = repo_file(path);
        assert!(from.exists(), ".dockerignore lets in {}, which does not exist", from.display());
        copy_tree(&from, &dest.join(path));
    }
    dest.to_path_buf()
}

/// Copies a file, or a folder recursively, with its modification times (so that cargo sees
/// an unchanged source as unchanged).
fn copy_tree(from: &Path, to: &Path) {
    let metadata = fs::metadata(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()));
    if metadata.is_dir() {
        fs::create_dir_all(to).unwrap_or_else(|e| panic!("create {}: {e}", to.display()));
        for entry in fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display())) {
            let name = entry.expect("a directory entry").file_name();
            copy_tree(&from.join(&name), &to.join(&name));
        }
        return;
    }
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
    }
    fs::copy(from, to).unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
    let modified = metadata.modified().expect("a modification time");
    let file = fs::File::options().write(true).open(to).expect("open the copy");
    file.set_modified(modified).unwrap_or_else(|e| panic!("set the time of {}: {e}", to.display()));
}

/// A root file system holding only the static binary, as `/netcanary`, and what a check puts
/// there; removed on drop.
struct EmptyRoot(ScratchDir);

impl EmptyRoot {
    fn new(check: &str) -> EmptyRoot {
        let root = EmptyRoot(ScratchDir::new(&format!("root-{check}")));
        // The image's user has to reach `/` to run anything, whatever the umask.
        fs::set_permissions(root.0.path(), fs::Permissions::from_mode(0o755)).expect("open the root to everyone");
        let binary = static_binary();
        fs::copy(binary, root.path("/netcanary"))
            .unwrap_or_else(|e| panic!("copy {} into {}: {e}", binary.display(), root.0.path().display()));
        root
    }

    /// Where `inside`, an absolute path in the root, lives on the host.
    fn path(&self, inside: &str) -> PathBuf {
        self.0.path().join(inside.trim_start_matches('/'))
    }

    /// Writes `contents` to `inside`, making its folders.
    fn put(&self, inside: &str, contents: &[u8]) -> PathBuf {
        let path = self.path(inside);
        fs::create_dir_all(path.parent().expect("a path below the root")).expect("make folders in the root");
        fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Copies the folder `from` to `inside`, with everything below it.
    fn copy_dir(&self, from: &Path, inside: &str) {
        copy_tree(from, &self.path(inside));
    }

    /// The command line that runs `/netcanary ARGS` chrooted into the root as the image's user,
    /// with a mount namespace of its own as a container has. Killing the command kills
    /// netcanary with it (`--kill-child`).
    fn argv(&self, args: &[&str]) -> Vec<String> {
        let user = format!("--userspec={NONROOT}:{NONROOT}");
        let root = self.0.path().to_string_lossy();
        ["unshare", "--mount", "--fork", "--kill-child", "chroot", &user, &root, "/netcanary"]
            .iter()
            .chain(args)
            .map(|arg| arg.to_string())
            .collect()
    }

    /// Runs `/netcanary ARGS` in the root, in the test's own network namespace.
    fn run(&self, args: &[&str]) -> Output {
        let argv = self.argv(args);
        let child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {argv:?}: {e}"));
        output_within(child, COMMAND_TIMEOUT, &argv.join(" ")).0
    }
}

fn refs(argv: &[String]) -> Vec<&str> {
    argv.iter().map(String::as_str).collect()
}

/// Parses what `what` printed on stdout as JSON.
fn json(out: &Output, what: &str) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what} printed no JSON ({e}); stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// What a loader would have to find for the ELF file at `path`: its interpreter (PT_INTERP,
/// the dynamic loader) and the shared libraries it needs (DT_NEEDED).
fn loader_needs(path: &Path) -> (Vec<String>, Vec<String>) {
    let data = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let data = data.as_slice();
    let header = FileHeader64::<Endianness>::parse(data)
        .unwrap_or_else(|e| panic!("{} is not a 64-bit ELF file: {e}", path.display()));
    let endian = header.endian().expect("a known byte order");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let segments = header.program_headers(endian, data).expect("read the program headers");
    let interpreters = segments
        .iter()
        .filter_map(|segment| segment.interpreter(endian, data).expect("read PT_INTERP"))
        .map(text)
        .collect();
    let dynamic = header
        .sections(endian, data)
        .and_then(|sections| sections.dynamic_table(endian, data))
        .expect("read the dynamic section");
    let needed = dynamic
        .iter()
        .filter(|entry| entry.tag == DT_NEEDED)
        .map(|entry| text(dynamic.string(entry).expect("a DT_NEEDED name")))
        .collect();
    (interpreters, needed)
}

#[test]
fn has_no_interpreter_and_needs_no_shared_library() {
    let binary = static_binary();
    let (interpreters, needed) = loader_needs(binary);
    assert!(
        interpreters.is_empty() && needed.is_empty(),
        "{} is not static: it asks for the dynamic loader {interpreters:?} (PT_INTERP) and the shared \
         libraries {needed:?} (DT_NEEDED); does scripts/build-static.sh still link with +crt-static?",
        binary.display()
    );
    // The same reading finds both in the dynamic build, so the check above can fail.
    let (interpreters, needed) = loader_needs(Path::new(BIN));
    assert!(
        !interpreters.is_empty() && needed.iter().any(|lib| lib.starts_with("libc.so")),
        "the dynamic build {BIN} shows no loader ({interpreters:?}) or no libc ({needed:?}): the ELF reading is broken"
    );
}

#[test]
fn prints_its_version_in_an_empty_root() {
    if !privileged_or_skip("prints_its_version_in_an_empty_root") {
        return;
    }
    let root = EmptyRoot::new("version");
    let out = root.run(&["--version"]);
    assert_ok(&out, "netcanary --version in the empty root");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("netcanary {}", env!("CARGO_PKG_VERSION")),
        "--version in the empty root; stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn analyze_in_an_empty_root_gives_the_dynamic_builds_verdicts() {
    if !privileged_or_skip("analyze_in_an_empty_root_gives_the_dynamic_builds_verdicts") {
        return;
    }
    let root = EmptyRoot::new("analyze");
    let example = repo_file("examples/cluster");
    root.copy_dir(&example, "/example");

    let inside = root.run(&["analyze", "-f", "/example", "-o", "json"]);
    assert_ok(&inside, "analyze in the empty root");
    let outside = Command::new(BIN)
        .args(["analyze", "-o", "json", "-f"])
        .arg(&example)
        .stdin(Stdio::null())
        .output()
        .expect("run the dynamic build");
    assert_ok(&outside, "analyze with the dynamic build");

    let inside = json(&inside, "analyze in the empty root")["verdicts"].take();
    let outside = json(&outside, "analyze with the dynamic build")["verdicts"].take();
    let (inside, outside) = (inside.as_array().expect("verdicts"), outside.as_array().expect("verdicts"));
    assert!(!outside.is_empty(), "the dynamic build gives no verdicts for {}", example.display());
    let first_difference = inside.iter().zip(outside).find(|(a, b)| a != b);
    assert!(
        inside.len() == outside.len() && first_difference.is_none(),
        "the static build in the empty root gives {} verdicts, the dynamic build {}; first difference \
         (static, dynamic): {first_difference:#?}",
        inside.len(),
        outside.len()
    );
}

#[test]
fn target_and_agent_in_an_empty_root_probe_and_resolve_names() {
    let Some(mut net) = TestNet::new("target_and_agent_in_an_empty_root_probe_and_resolve_names") else {
        return;
    };
    net.add_host("pod", "10.78.0.1/24", "fd00:78::1/64");
    let root = EmptyRoot::new("probe");
    // What a kubelet mounts into a pod: names, the cluster DNS, the agent's results file.
    root.put("/etc/hosts", b"127.0.0.1 from-hosts.test\n");
    root.put("/etc/resolv.conf", b"nameserver 127.0.0.1\n");
    let log = root.put("/dev/termination-log", b"");
    std::os::unix::fs::chown(&log, Some(NONROOT), Some(NONROOT)).expect("hand the termination log to nonroot");

    let dnsmasq = net.spawn_dnsmasq("pod", "127.0.0.1", &["--address=/from-dns.test/127.0.0.1".into()]);
    let ports = OPEN.to_string();
    let mut target = net.spawn("pod", &refs(&root.argv(&["target", "--tcp", &ports, "--udp", &ports])));
    target.wait_for_line("listening", COMMAND_TIMEOUT);

    let dns = |id: &str| json!({"id": id, "kind": "dns", "name": "from-dns.test", "server": "127.0.0.1:53"});
    let deadline = Instant::now() + Duration::from_secs(10);
    while agent(&net, &root, &[dns("ready")]).results[0].observed != Observed::Connected {
        assert!(
            Instant::now() < deadline,
            "dnsmasq does not answer on 127.0.0.1:53; its stderr:\n{}",
            dnsmasq.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let socket =
        |id: &str, kind: &str, host: &str, port: u16| json!({"id": id, "kind": kind, "host": host, "port": port});
    let cells = [
        (socket("tcp-open", "tcp", "127.0.0.1", OPEN), Observed::Connected),
        (socket("udp-open", "udp", "127.0.0.1", OPEN), Observed::Connected),
        (socket("tcp-closed", "tcp", "::1", CLOSED), Observed::Refused),
        (socket("udp-closed", "udp", "::1", CLOSED), Observed::Refused),
        // glibc's `files` and `dns` modules, linked in: no shared library is loaded for them.
        (socket("name-from-etc-hosts", "tcp", "from-hosts.test", OPEN), Observed::Connected),
        (socket("name-from-resolv-conf", "tcp", "from-dns.test", OPEN), Observed::Connected),
        (dns("dns"), Observed::Connected),
    ];
    let probes: Vec<Value> = cells.iter().map(|(probe, _)| probe.clone()).collect();
    let report = agent(&net, &root, &probes);
    let expected: BTreeMap<&str, Observed> =
        cells.iter().map(|(probe, want)| (probe["id"].as_str().expect("an id"), *want)).collect();
    let observed: BTreeMap<&str, Observed> = report.results.iter().map(|r| (r.id.as_str(), r.observed)).collect();
    assert_eq!(
        observed,
        expected,
        "probes from the empty root; the report:\n{}\ntarget's stderr:\n{}",
        serde_json::to_string_pretty(&report).expect("JSON"),
        target.stderr()
    );
    let compact = fs::read_to_string(&log).expect("read the termination log");
    let decoded = termination_log::decode(&compact)
        .unwrap_or_else(|e| panic!("the agent's termination log does not decode ({e}):\n{compact}"));
    assert_eq!(decoded.total, cells.len(), "results in the termination log:\n{compact}");
}

/// Runs the agent in the root inside `net`'s host `pod` on a plan of `probes`.
fn agent(net: &TestNet, root: &EmptyRoot, probes: &[Value]) -> AgentReport {
    let plan = json!({"timeout_ms": 1000, "probes": probes}).to_string();
    let out = net.exec_with_stdin("pod", &refs(&root.argv(&["agent", "--plan", "-"])), plan.as_bytes());
    assert_ok(&out, "the agent in the empty root");
    let report: AgentReport = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "the agent printed no report ({e}); stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(report.results.len(), probes.len(), "one result per probe: {report:?}");
    report
}

#[tokio::test]
async fn run_dry_run_in_an_empty_root_reads_the_cluster_over_tls() {
    let Some(bed) = Bed::new("run_dry_run_in_an_empty_root_reads_the_cluster_over_tls", None).await else {
        return;
    };
    let root = EmptyRoot::new("dry-run");
    // The fixture's kubeconfig embeds the CA and the client certificate and key: the file is
    // all the client needs.
    let kubeconfig = fs::read(&bed.kubeconfig).expect("read the bed's kubeconfig");
    root.put("/kubeconfig", &kubeconfig);
    let args = |kubeconfig: &str| ["run", "--dry-run", "-o", "json", "--kubeconfig", kubeconfig].map(String::from);

    let inside = root.run(&refs(&args("/kubeconfig")));
    assert_ok(&inside, "run --dry-run in the empty root");
    let outside = Command::new(BIN)
        .args(args(&bed.kubeconfig.to_string_lossy()))
        .stdin(Stdio::null())
        .output()
        .expect("run the dynamic build");
    assert_ok(&outside, "run --dry-run with the dynamic build");

    let (inside, outside) = (json(&inside, "run --dry-run in the empty root"), json(&outside, "the dynamic build"));
    let probes = outside["probes"].as_array().map_or(0, Vec::len);
    assert!(probes > 0, "the dynamic build plans no probes on the bed:\n{outside:#}");
    assert!(
        inside == outside,
        "the plans differ; in the empty root:\n{inside:#}\nwith the dynamic build:\n{outside:#}"
    );
}

#[tokio::test]
async fn serve_in_an_empty_root_syncs_its_watches() {
    let Some(bed) = Bed::new("serve_in_an_empty_root_syncs_its_watches", None).await else {
        return;
    };
    let root = EmptyRoot::new("serve");
    root.put("/kubeconfig", &fs::read(&bed.kubeconfig).expect("read the bed's kubeconfig"));
    let address = free_address().to_string();
    let argv = root.argv(&["serve", "--kubeconfig", "/kubeconfig", "--listen", &address, "--every", "1h"]);
    // A file, not a pipe: nobody has to keep draining serve's log.
    let log = bed.kube.dir().join("static-serve.log");
    let serve = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).expect("create serve's log"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {argv:?}: {e}"));
    let mut serve = Killed(serve);

    // /readyz answers 200 once the watches on pods, namespaces, policies and services synced.
    let url = format!("http://{address}/readyz");
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    loop {
        let curl = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", &url])
            .output()
            .expect("run curl");
        if curl.stdout == b"200" {
            break;
        }
        let log = || fs::read_to_string(&log).unwrap_or_default();
        if let Ok(Some(status)) = serve.0.try_wait() {
            panic!("serve in the empty root exited ({status}) before it was ready; its log:\n{}", log());
        }
        assert!(
            Instant::now() < deadline,
            "serve in the empty root: {url} answers {:?}, not 200, after {COMMAND_TIMEOUT:?}; its log:\n{}",
            String::from_utf8_lossy(&curl.stdout),
            log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A process killed when the test ends, also when it fails.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
