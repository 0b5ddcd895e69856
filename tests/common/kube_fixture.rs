//! A real Kubernetes API server for the tests that talk to one.
//!
//! [`KubeFixture`] runs `tests/kube-fixture` (embedded etcd + kube-apiserver v1.35 in one Go
//! process, on loopback only) in a scratch directory and hands out an admin kubeconfig. It is
//! the real server, so validation, PodSecurity admission and RBAC answer as in a cluster;
//! nothing else runs (no controllers, scheduler or kubelet), so namespaces get no `default`
//! ServiceAccount and pods stay `Pending`.
//!
//! The binary is built once by `tests/kube-fixture/build.sh` (minutes when cold, cached
//! after) unless `NETCANARY_KUBE_FIXTURE` names one. When it cannot be had (no Go, no module
//! proxy) a test is skipped with a `SKIPPED` line on stderr, or fails when
//! `NETCANARY_REQUIRE_KUBE=1` (CI sets it where Go is installed). A fixture that was built but
//! does not come up is always a failure.

#![allow(dead_code)] // Each integration test uses a different part of the harness.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// How long the server may take to answer `/readyz`; about 5 s on an idle machine, much
/// more when the cores are busy with a parallel build.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a clean shutdown may take before the process is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
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

/// Why there is no fixture.
#[derive(Debug)]
pub enum FixtureError {
    /// The binary could not be had (no Go, build failed): a reason to skip.
    Unavailable(String),
    /// The binary is there but the server did not come up: a real failure.
    Failed(String),
}

impl fmt::Display for FixtureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FixtureError::Unavailable(reason) => write!(f, "kube-apiserver fixture unavailable: {reason}"),
            FixtureError::Failed(reason) => write!(f, "kube-apiserver fixture failed: {reason}"),
        }
    }
}

impl std::error::Error for FixtureError {}

impl KubeFixture {
    /// Starts a fresh API server and waits until it is ready. Blocks, for minutes when the
    /// binary has to be built first.
    pub fn start() -> Result<KubeFixture, FixtureError> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let binary = binary()?;
        let dir = std::env::temp_dir().join(format!(
            "netcanary-kube-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| FixtureError::Failed(format!("creating {}: {e}", dir.display())))?;
        // A file, not a pipe: nobody has to keep draining the server's chatty log.
        let log_path = dir.join("fixture.log");
        let log = File::create(&log_path)
            .map_err(|e| FixtureError::Failed(format!("creating {}: {e}", log_path.display())))?;
        let mut child = Command::new(&binary)
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| FixtureError::Failed(format!("starting {}: {e}", binary.display())))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        // Builds the value first so that Drop cleans up on every error path below.
        let mut fixture = KubeFixture { child, stdin, dir, kubeconfig: PathBuf::new() };

        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(path) = line.strip_prefix("READY ") {
                    let _ = tx.send(PathBuf::from(path));
                }
            }
        });
        let started = Instant::now();
        match rx.recv_timeout(READY_TIMEOUT) {
            Ok(kubeconfig) => {
                fixture.kubeconfig = kubeconfig;
                Ok(fixture)
            }
            Err(RecvTimeoutError::Timeout) => Err(FixtureError::Failed(format!(
                "not ready after {} s; last lines of {}:\n{}",
                started.elapsed().as_secs(),
                log_path.display(),
                log_tail(&log_path)
            ))),
            Err(RecvTimeoutError::Disconnected) => {
                let status = fixture.child.wait().map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
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
        match KubeFixture::start() {
            Ok(fixture) => Some(fixture),
            Err(FixtureError::Unavailable(reason)) => {
                if std::env::var("NETCANARY_REQUIRE_KUBE").as_deref() == Ok("1") {
                    panic!("{test}: needs the kube-apiserver fixture ({reason}), and NETCANARY_REQUIRE_KUBE=1");
                }
                // One write to the stderr handle: eprintln! would be captured by the test harness.
                let line = format!("SKIPPED {test}: needs the kube-apiserver fixture ({reason})\n");
                let _ = std::io::stderr().write_all(line.as_bytes());
                None
            }
            Err(err) => panic!("{test}: {err}"),
        }
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
            let log = self.dir.join("fixture.log");
            eprintln!("last lines of the kube-apiserver fixture's log ({}):\n{}", log.display(), log_tail(&log));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
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
    BINARY.get_or_init(build).clone().map_err(FixtureError::Unavailable)
}

fn build() -> Result<PathBuf, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kube-fixture/build.sh");
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
