//! Real monitoring for the tests of netcanary's alerts and dashboard: Prometheus (and
//! `promtool`), the Pushgateway and Alertmanager from Debian's `prometheus`,
//! `prometheus-pushgateway` and `prometheus-alertmanager` packages.
//!
//! [`Monitoring::start_or_skip`] runs the three on free loopback ports with scratch data
//! directories: Prometheus scrapes the Pushgateway every second with `honor_labels` (as a
//! deployment must), evaluates the shipped rules every second and sends alerts to the
//! Alertmanager, which applies the shipped inhibit rules. The rules are the `spec` of the
//! shipped PrometheusRule, written out by [`write_rule_file`], and the inhibit rules the
//! shipped file, included by [`write_alertmanager_config`]: there is no second copy of them.
//!
//! Without the binaries a test prints `SKIPPED <test>: <reason>` on stderr and returns, or
//! fails when `NETCANARY_REQUIRE_MONITORING=1` (tests/run.sh sets it as root, once it has
//! installed the packages).

#![allow(dead_code)] // Each integration test uses a different part of the harness.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::scratch::ScratchDir;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::bed::free_address;
use super::read_repo_file;

/// netcanary's alerts: a PrometheusRule whose `spec` is a plain Prometheus rule file.
pub const PROMETHEUS_RULE: &str = "manifests/components/prometheus-operator/prometheusrule.yaml";
/// netcanary's Alertmanager inhibit rules, a fragment of an Alertmanager configuration.
pub const INHIBIT_RULES: &str = "manifests/alertmanager/inhibit-rules.yaml";
/// The name the rule file gets, as `tests/alerts/netcanary_test.yml` loads it.
pub const RULE_FILE: &str = "netcanary.rules.yml";
/// The Pushgateway group the tests' runs push to (`--push-job`): not the default, so that
/// the alerts, the inhibit rules and the dashboard are seen to follow the job they are given.
pub const JOB: &str = "netcanary-e2e";
/// How long a daemon may take to answer `/-/ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How often [`Monitoring::wait_until`] asks again.
const POLL: Duration = Duration::from_millis(250);
/// Lines of a daemon's log quoted when a test fails.
const LOG_TAIL: usize = 30;

/// The binaries named, found on `PATH`; `None` (after printing why) when one is missing and
/// `NETCANARY_REQUIRE_MONITORING` is not `1`, when the test fails instead.
pub fn binaries_or_skip<const N: usize>(test: &str, names: [&str; N]) -> Option<[PathBuf; N]> {
    let found = names.map(on_path);
    let missing: Vec<&str> = names.iter().zip(&found).filter(|(_, path)| path.is_none()).map(|(n, _)| *n).collect();
    if missing.is_empty() {
        return Some(found.map(|path| path.expect("found")));
    }
    let mut packages: Vec<&str> = missing.iter().map(|&b| debian_package(b)).collect();
    packages.dedup();
    let needs = format!(
        "{} on PATH (Debian packages: {}; tests/run.sh installs them as root)",
        missing.join(", "),
        packages.join(", ")
    );
    super::skip_unless_required(test, "NETCANARY_REQUIRE_MONITORING", &needs)
}

/// Debian's package of a binary: promtool comes with prometheus, amtool with the
/// Alertmanager.
fn debian_package(binary: &str) -> &str {
    match binary {
        "promtool" => "prometheus",
        "amtool" => "prometheus-alertmanager",
        other => other,
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| {
        use std::os::unix::fs::PermissionsExt;
        candidate.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// Writes the shipped PrometheusRule's `spec` to `dir`/[`RULE_FILE`] and returns its path.
pub fn write_rule_file(dir: &ScratchDir) -> PathBuf {
    let rule: serde_norway::Value =
        serde_norway::from_str(&read_repo_file(PROMETHEUS_RULE)).expect("the PrometheusRule is YAML");
    assert_eq!(rule["kind"].as_str(), Some("PrometheusRule"), "{PROMETHEUS_RULE} is not a PrometheusRule");
    let spec = rule.get("spec").unwrap_or_else(|| panic!("{PROMETHEUS_RULE} has no spec"));
    dir.write(RULE_FILE, serde_norway::to_string(spec).expect("YAML"))
}

/// Writes an Alertmanager configuration to `dir`/alertmanager.yml and returns its path: a
/// route to a receiver that sends nothing, and the shipped [`INHIBIT_RULES`] as they are.
pub fn write_alertmanager_config(dir: &ScratchDir) -> PathBuf {
    let inhibit_rules = read_repo_file(INHIBIT_RULES);
    dir.write("alertmanager.yml", format!("route: {{receiver: none}}\nreceivers: [{{name: none}}]\n{inhibit_rules}"))
}

/// A daemon on a loopback port, its output in a log file; killed on drop.
struct Daemon {
    name: &'static str,
    child: Child,
    log: PathBuf,
    address: SocketAddr,
}

impl Daemon {
    /// Starts `binary` with `args` (`{address}` in them replaced by its listen address) and
    /// waits until it answers `/-/ready`.
    fn start(name: &'static str, binary: &Path, args: &[String], dir: &Path, agent: &ureq::Agent) -> Daemon {
        let address = free_address();
        let log = dir.join(format!("{name}.log"));
        let output = File::create(&log).expect("create a daemon log");
        let child = Command::new(binary)
            .args(args.iter().map(|a| a.replace("{address}", &address.to_string())))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("clone the log file"))
            .stderr(output)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let mut daemon = Daemon { name, child, log, address };
        let deadline = Instant::now() + READY_TIMEOUT;
        while get(agent, &daemon.url("/-/ready")).is_err() {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!("{name} exited ({status}) before it was ready; its log:\n{}", daemon.log_tail());
            }
            assert!(
                Instant::now() < deadline,
                "{name} not ready within {READY_TIMEOUT:?}; its log:\n{}",
                daemon.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        daemon
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("(cannot read: {e})"));
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL)..].join("\n")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET url`: the body of a 2xx answer, else why not (with the body, where Prometheus
/// says what is wrong with a query).
fn get(agent: &ureq::Agent, url: &str) -> Result<String, String> {
    get_with(agent, url, &[])
}

/// [`get`] with query parameters (percent-encoded by ureq).
fn get_with(agent: &ureq::Agent, url: &str, query: &[(&str, &str)]) -> Result<String, String> {
    let request = agent.get(url).query_pairs(query.iter().copied());
    let mut response = request.call().map_err(|e| format!("GET {url} {query:?}: {e}"))?;
    let status = response.status();
    let body = response.body_mut().read_to_string().map_err(|e| format!("GET {url}: {e}"))?;
    if status.is_success() { Ok(body) } else { Err(format!("GET {url} {query:?}: {status}: {body}")) }
}

/// The three daemons; see the module documentation. When a test panics, their state is
/// printed as this drops. Fields drop in order: Prometheus first.
pub struct Monitoring {
    prometheus: Daemon,
    alertmanager: Daemon,
    pushgateway: Daemon,
    agent: ureq::Agent,
    dir: ScratchDir,
}

impl Monitoring {
    pub fn start_or_skip(test: &str) -> Option<Monitoring> {
        let [prometheus, pushgateway, alertmanager] =
            binaries_or_skip(test, ["prometheus", "prometheus-pushgateway", "prometheus-alertmanager"])?;
        let dir = ScratchDir::new("monitoring");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(5)))
            .http_status_as_error(false)
            .build()
            .into();
        let path = |name: &str| dir.path().join(name).display().to_string();
        let start = |name, binary: &Path, args: &[String]| Daemon::start(name, binary, args, dir.path(), &agent);
        let pushgateway = start(
            "pushgateway",
            &pushgateway,
            &[
                "--web.listen-address={address}".into(),
                // Debian's build persists to /var/lib/prometheus/pushgateway.data unless told
                // otherwise: every test's gateway would load the groups an earlier one left.
                "--persistence.file=".into(),
            ],
        );
        let alertmanager_config = write_alertmanager_config(&dir);
        let alertmanager = start(
            "alertmanager",
            &alertmanager,
            &[
                format!("--config.file={}", alertmanager_config.display()),
                format!("--storage.path={}", path("alertmanager")),
                "--web.listen-address={address}".into(),
                // No cluster: it would listen on a fixed port.
                "--cluster.listen-address=".into(),
            ],
        );
        let rules = write_rule_file(&dir);
        let config = format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [{rules}]
alerting:
  alertmanagers: [{{static_configs: [{{targets: ['{alertmanager}']}}]}}]
scrape_configs:
  - job_name: pushgateway
    honor_labels: true
    static_configs: [{{targets: ['{pushgateway}']}}]
",
            rules = rules.display(),
            alertmanager = alertmanager.address,
            pushgateway = pushgateway.address,
        );
        dir.write("prometheus.yml", config);
        let prometheus = start(
            "prometheus",
            &prometheus,
            &[
                format!("--config.file={}", path("prometheus.yml")),
                format!("--storage.tsdb.path={}", path("prometheus")),
                "--web.listen-address={address}".into(),
            ],
        );
        Some(Monitoring { prometheus, alertmanager, pushgateway, agent, dir })
    }

    /// What `netcanary run --pushgateway` is given.
    pub fn pushgateway_url(&self) -> String {
        self.pushgateway.url("")
    }

    /// `GET path` of Prometheus as JSON, checked for `"status": "success"`: its `data`.
    fn prometheus_api(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, String> {
        let body = get_with(&self.agent, &self.prometheus.url(path), query)?;
        let answer: Value = serde_json::from_str(&body).map_err(|e| format!("{path}: {e}: {body}"))?;
        if answer["status"] != "success" {
            return Err(format!("{path}: {answer}"));
        }
        Ok(answer["data"].clone())
    }

    /// An instant query's result (a vector or a scalar) as Prometheus answers it.
    pub fn query(&self, expr: &str) -> Result<Value, String> {
        let data = self.prometheus_api("/api/v1/query", &[("query", expr)])?;
        Ok(data["result"].clone())
    }

    /// The values of `label` on the series `selector` picks (what a Grafana `label_values`
    /// variable lists).
    pub fn label_values(&self, label: &str, selector: &str) -> Result<Vec<String>, String> {
        let data = self.prometheus_api(&format!("/api/v1/label/{label}/values"), &[("match[]", selector)])?;
        Ok(data.as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect())
    }

    /// Prometheus' alerts that fire (not those pending).
    pub fn firing(&self) -> Vec<Value> {
        let data = self.prometheus_api("/api/v1/alerts", &[]).unwrap_or_else(|e| panic!("{e}"));
        let alerts = data["alerts"].as_array().cloned().unwrap_or_default();
        alerts.into_iter().filter(|a| a["state"] == "firing").collect()
    }

    /// The alerts the Alertmanager holds as not resolved (`/api/v2/alerts`).
    pub fn alertmanager_alerts(&self) -> Vec<Value> {
        let body = get(&self.agent, &self.alertmanager.url("/api/v2/alerts")).unwrap_or_else(|e| panic!("{e}"));
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("Alertmanager's alerts: {e}: {body}"))
    }

    /// Polls `done` until it returns a value, for at most `timeout`, else panics.
    pub fn wait_until<T>(&self, what: &str, timeout: Duration, mut done: impl FnMut(&Self) -> Option<T>) -> T {
        let started = Instant::now();
        loop {
            if let Some(value) = done(self) {
                eprintln!("{what}: after {:?}", started.elapsed());
                return value;
            }
            assert!(started.elapsed() < timeout, "{what}: not within {timeout:?}");
            std::thread::sleep(POLL);
        }
    }

    /// What the daemons say, for failure messages: Prometheus' targets and alerts, the
    /// Alertmanager's alerts, the Pushgateway's netcanary metrics and every log's tail.
    fn state(&self) -> String {
        let show = |what: &str, answer: Result<String, String>| {
            format!("--- {what}:\n{}\n", answer.unwrap_or_else(|error| format!("(no answer: {error})")))
        };
        let pushed = get(&self.agent, &self.pushgateway.url("/metrics"))
            .map(|text| text.lines().filter(|l| l.starts_with("netcanary_")).collect::<Vec<_>>().join("\n"));
        let mut state = show("Prometheus targets", get(&self.agent, &self.prometheus.url("/api/v1/targets")));
        state += &show("Prometheus alerts", get(&self.agent, &self.prometheus.url("/api/v1/alerts")));
        state += &show("Alertmanager alerts", get(&self.agent, &self.alertmanager.url("/api/v2/alerts")));
        state += &show("Pushgateway netcanary metrics", pushed);
        for daemon in [&self.prometheus, &self.alertmanager, &self.pushgateway] {
            state += &show(&format!("{} log ({})", daemon.name, daemon.log.display()), Ok(daemon.log_tail()));
        }
        state
    }
}

impl Drop for Monitoring {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("state of the monitoring daemons:\n{}", self.state());
        }
    }
}
