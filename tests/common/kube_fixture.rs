//! A real Kubernetes API server for the tests that talk to one.
//!
//! [`KubeFixture`] runs `tests/kube-fixture` (embedded etcd + kube-apiserver v1.35 in one Go
//! process, on loopback only) in a scratch directory and hands out an admin kubeconfig. It is
//! the real server, so validation, PodSecurity admission and RBAC answer as in a cluster;
//! nothing else runs (no controllers, scheduler or kubelet), so namespaces get no `default`
//! ServiceAccount and pods stay `Pending`. The same binary renders kustomizations
//! ([`KubeFixture::kustomize`]), so manifests are tested as `kubectl apply -k` sends them.
//!
//! The binary is built once by `tests/kube-fixture/build.sh` (minutes when cold, cached
//! after) unless `NETCANARY_KUBE_FIXTURE` names one. When it cannot be had (no Go, no module
//! proxy) a test is skipped with a `SKIPPED` line on stderr, or fails when
//! `NETCANARY_REQUIRE_KUBE=1` (CI sets it where Go is installed). A fixture that was built but
//! does not come up is always a failure.

#![allow(dead_code)] // Each integration test uses a different part of the harness.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// How long the server may take to answer `/readyz`; about 5 s on an idle machine, much
/// more when the cores are busy with a parallel build.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How often [`KubeFixture::start`] tries when a fixture loses a port ([`PORT_TAKEN`]).
const START_ATTEMPTS: usize = 3;
/// What a fixture's log says when a port it picked was bound by someone else first.
const PORT_TAKEN: &str = "address already in use";
/// How long a clean shutdown may take before the process is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// The fixture's log, in its directory.
const LOG: &str = "fixture.log";
/// Lines of the fixture's log quoted in errors.
const LOG_TAIL: usize = 40;

/// A running API server, stopped and its directory removed on drop.
pub struct KubeFixture {
    child: Child,
    /// Closing it is how the fixture is asked to stop: the same path a crashed test runner
    /// takes, so it is exercised by every test.
    stdin: Option<ChildStdin>,
    dir: PathBuf,
    kubeconfig: PathBuf,
}

/// Why there is no fixture, or no rendering.
#[derive(Debug)]
pub enum FixtureError {
    /// The binary could not be had (no Go, build failed): a reason to skip.
    Unavailable(String),
    /// The binary is there but the server did not come up: a real failure.
    Failed(String),
    /// kustomize refused a kustomization: a real failure, in kustomize's words.
    Kustomize { dir: PathBuf, error: String },
}

impl fmt::Display for FixtureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FixtureError::Unavailable(reason) => write!(f, "kube-apiserver fixture unavailable: {reason}"),
            FixtureError::Failed(reason) => write!(f, "kube-apiserver fixture failed: {reason}"),
            FixtureError::Kustomize { dir, error } => write!(f, "kustomize {}: {error}", dir.display()),
        }
    }
}

impl std::error::Error for FixtureError {}

impl KubeFixture {
    /// Starts a fresh API server and waits until it is ready. Blocks, for minutes when the
    /// binary has to be built first.
    ///
    /// The fixture picks its ports (etcd's two, the API server's) free but unbound; another
    /// fixture starting in the same moment can pick and bind one first. The loser exits
    /// with "address already in use" and is started again, on new ports.
    pub fn start() -> Result<KubeFixture, FixtureError> {
        let binary = binary()?;
        let mut attempts = 1;
        loop {
            match Self::start_once(&binary) {
                Err(FixtureError::Failed(reason)) if reason.contains(PORT_TAKEN) && attempts < START_ATTEMPTS => {
                    eprintln!("kube-apiserver fixture lost a port to another process; starting it again:\n{reason}");
                    attempts += 1;
                }
                result => return result,
            }
        }
    }

    fn start_once(binary: &Path) -> Result<KubeFixture, FixtureError> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "netcanary-kube-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| FixtureError::Failed(format!("creating {}: {e}", dir.display())))?;
        let (child, stdin, ready) = launch(binary, &dir, None)?;
        // Builds the value first so that Drop cleans up on every error path below.
        let mut fixture = KubeFixture { child, stdin: Some(stdin), dir, kubeconfig: PathBuf::new() };
        fixture.kubeconfig = fixture.wait_ready(ready)?;
        Ok(fixture)
    }

    /// Kills the server at once (etcd with it), as a crashed or unreachable control plane:
    /// open connections are reset and new ones refused.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Freezes the server (SIGSTOP) until the guard drops: connections are accepted by the
    /// kernel and never answered, as behind a network partition or from an overloaded
    /// control plane.
    pub fn freeze(&self) -> Frozen<'_> {
        signal(&self.child, "-STOP");
        Frozen(self)
    }

    /// Starts the server again on the same directory and port, killing it first if it still
    /// runs: the objects in etcd, the keys and the kubeconfig carry over, so clients made
    /// before keep working once it is ready.
    pub fn restart(&mut self) -> Result<(), FixtureError> {
        self.kill();
        let text = std::fs::read_to_string(&self.kubeconfig)
            .map_err(|e| FixtureError::Failed(format!("reading {}: {e}", self.kubeconfig.display())))?;
        let port = text
            .lines()
            .find_map(|line| line.trim().strip_prefix("server: https://127.0.0.1:"))
            .and_then(|port| port.trim().parse::<u16>().ok())
            .ok_or_else(|| FixtureError::Failed(format!("no server port in {}", self.kubeconfig.display())))?;
        let (child, stdin, ready) = launch(&binary()?, &self.dir, Some(port))?;
        self.child = child;
        self.stdin = Some(stdin);
        self.wait_ready(ready).map(drop)
    }

    /// Waits for the `READY` line `launch` passes on: the kubeconfig's path.
    fn wait_ready(&mut self, ready: Receiver<PathBuf>) -> Result<PathBuf, FixtureError> {
        let log_path = self.dir.join(LOG);
        let started = Instant::now();
        match ready.recv_timeout(READY_TIMEOUT) {
            Ok(kubeconfig) => Ok(kubeconfig),
            Err(RecvTimeoutError::Timeout) => Err(FixtureError::Failed(format!(
                "not ready after {} s; last lines of {}:\n{}",
                started.elapsed().as_secs(),
                log_path.display(),
                log_tail(&log_path)
            ))),
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.wait().map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                Err(FixtureError::Failed(format!(
                    "exited ({status}) before it was ready; last lines of {}:\n{}",
                    log_path.display(),
                    log_tail(&log_path)
                )))
            }
        }
    }

    /// [`start`](Self::start) for a test: `None` (after printing why) when the fixture cannot
    /// be had and `NETCANARY_REQUIRE_KUBE` is not `1`; panics when it was had but failed.
    pub fn start_or_skip(test: &str) -> Option<KubeFixture> {
        KubeFixture::start().map_or_else(|err| skip_or_panic(test, err), Some)
    }

    /// What `kubectl kustomize DIR` prints (the same kustomize library, as `kube-fixture
    /// kustomize DIR`), so tests render kustomizations with neither kubectl nor kustomize
    /// installed. Needs only the binary, not a running server.
    pub fn kustomize(dir: &Path) -> Result<String, FixtureError> {
        let out = Command::new(binary()?)
            .arg("kustomize")
            .arg(dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| FixtureError::Failed(format!("running kube-fixture kustomize: {e}")))?;
        if !out.status.success() {
            let error = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(FixtureError::Kustomize { dir: dir.to_path_buf(), error });
        }
        String::from_utf8(out.stdout).map_err(|e| FixtureError::Failed(format!("kustomize printed no UTF-8: {e}")))
    }

    /// An admin kubeconfig (group `system:masters`) with the CA embedded.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The scratch directory: etcd data, keys, certificates and `fixture.log`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A client configuration for the admin, to adjust (e.g. impersonate) before use.
    pub async fn config(&self) -> kube::Config {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("read the fixture's kubeconfig");
        kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("load the fixture's kubeconfig")
    }

    /// A client acting as the admin.
    pub async fn client(&self) -> kube::Client {
        kube::Client::try_from(self.config().await).expect("build a client for the fixture")
    }

    /// A client with the admin's credentials acting as `user` (impersonation), so RBAC judges
    /// its requests as `user`'s.
    pub async fn client_as(&self, user: &str) -> kube::Client {
        let mut config = self.config().await;
        config.auth_info.impersonate = Some(user.to_string());
        kube::Client::try_from(config).expect("build an impersonating client for the fixture")
    }

    /// A copy of the admin kubeconfig that acts as `user` (`as:` in kubeconfig terms), for a
    /// process such as `netcanary`; in [`dir`](Self::dir).
    pub fn kubeconfig_as(&self, user: &str) -> PathBuf {
        let text = std::fs::read_to_string(&self.kubeconfig).expect("read the fixture's kubeconfig");
        let mut config: serde_norway::Value = serde_norway::from_str(&text).expect("a YAML kubeconfig");
        let users = config["users"].as_sequence_mut().expect("users in the kubeconfig");
        for entry in users {
            entry["user"]["as"] = user.into();
        }
        let file: String = user.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
        let path = self.dir.join(format!("kubeconfig-as-{file}"));
        std::fs::write(&path, serde_norway::to_string(&config).expect("YAML")).expect("write the kubeconfig");
        path
    }
}

/// A frozen server; thawed (SIGCONT) on drop, also when a test panics, so the bed can be
/// torn down.
pub struct Frozen<'a>(&'a KubeFixture);

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        signal(&self.0.child, "-CONT");
    }
}

impl Drop for KubeFixture {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + STOP_TIMEOUT;
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if matches!(self.child.try_wait(), Ok(None)) {
            eprintln!("kube-fixture did not stop within {} s; killing it", STOP_TIMEOUT.as_secs());
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            let log = self.dir.join(LOG);
            eprintln!("last lines of the kube-apiserver fixture's log ({}):\n{}", log.display(), log_tail(&log));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts the fixture on `dir` (on `port`, or a free one) with its log appended to
/// [`LOG`] there; the receiver gets the kubeconfig's path once the server is ready.
fn launch(
    binary: &Path,
    dir: &Path,
    port: Option<u16>,
) -> Result<(Child, ChildStdin, Receiver<PathBuf>), FixtureError> {
    // A file, not a pipe: nobody has to keep draining the server's chatty log.
    let log_path = dir.join(LOG);
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| FixtureError::Failed(format!("opening {}: {e}", log_path.display())))?;
    let mut command = Command::new(binary);
    command.arg("--dir").arg(dir);
    if let Some(port) = port {
        command.arg(format!("--port={port}"));
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|e| FixtureError::Failed(format!("starting {}: {e}", binary.display())))?;
    let stdin = child.stdin.take().expect("stdin is piped");
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(path) = line.strip_prefix("READY ") {
                let _ = tx.send(PathBuf::from(path));
            }
        }
    });
    Ok((child, stdin, rx))
}

/// How a test meets a fixture error: `None` after a `SKIPPED` line when the fixture cannot
/// be had and `NETCANARY_REQUIRE_KUBE` is not `1`; a panic otherwise.
pub fn skip_or_panic<T>(test: &str, err: FixtureError) -> Option<T> {
    let FixtureError::Unavailable(reason) = err else { panic!("{test}: {err}") };
    super::skip_unless_required(test, "NETCANARY_REQUIRE_KUBE", &format!("the kube-apiserver fixture ({reason})"))
}

fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill").args([signal, &child.id().to_string()]).status().expect("run kill");
    assert!(status.success(), "kill {signal} the fixture: {status}");
}

/// kube-proxy, which build.sh builds beside the fixture from the same Kubernetes version.
pub fn kube_proxy_binary() -> Result<PathBuf, FixtureError> {
    let path = binary()?.with_file_name("kube-proxy");
    if path.is_file() {
        Ok(path)
    } else {
        Err(FixtureError::Failed(format!("no kube-proxy beside the fixture: {} is missing", path.display())))
    }
}

/// The fixture binary: `NETCANARY_KUBE_FIXTURE`, or built (once per test process) by
/// build.sh, which also serves it from its cache.
fn binary() -> Result<PathBuf, FixtureError> {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    if let Some(path) = std::env::var_os("NETCANARY_KUBE_FIXTURE") {
        let path = PathBuf::from(path);
        // Named on purpose, so a wrong path is a mistake to report, not a reason to skip.
        return if path.is_file() {
            Ok(path)
        } else {
            Err(FixtureError::Failed(format!("NETCANARY_KUBE_FIXTURE={} is not a file", path.display())))
        };
    }
    BINARY.get_or_init(|| build_with("tests/kube-fixture/build.sh")).clone().map_err(FixtureError::Unavailable)
}

/// Runs a Go component's build script (`path` from the repository's root), which builds
/// or serves from its cache, and returns the binary's path (its last line of stdout).
pub fn build_with(path: &str) -> Result<PathBuf, String> {
    let script = super::repo_file(path);
    let out = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {}: {e}", script.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let tail: Vec<&str> = stderr.lines().rev().take(LOG_TAIL).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!("{} failed ({}):\n{}", script.display(), out.status, tail.join("\n")));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let path = stdout.lines().last().map(str::trim).unwrap_or_default();
    if path.is_empty() {
        return Err(format!("{} printed no binary path", script.display()));
    }
    Ok(PathBuf::from(path))
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| format!("(cannot read: {e})"));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL)..].join("\n")
}
