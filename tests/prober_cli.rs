//! `netcanary agent` and `netcanary target` as a user runs them, on loopback (no root).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use netcanary_wire::{AgentReport, Observed, plan_env, termination_log};

#[path = "common/scratch.rs"]
mod scratch;

use scratch::ScratchDir;

const BIN: &str = env!("CARGO_BIN_EXE_netcanary");

fn agent(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .arg("agent")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn an_unparseable_plan_exits_2_naming_the_file_and_line() {
    let dir = ScratchDir::new("bad-plan");
    let path = dir.path().join("plan.json");
    std::fs::write(&path, "{\"probes\": [\n  {\"id\": \"1\"},\n  oops\n]}").unwrap();
    let out = agent(&["--plan", path.to_str().unwrap(), "--no-termination-log"], "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    assert!(stderr.contains("line 3"), "{stderr}");
    assert!(out.stdout.is_empty());

    let out = agent(&["--plan", "/nonexistent/plan.json"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read plan /nonexistent/plan.json"));
}

#[test]
fn a_plan_from_stdin_prints_results_and_writes_the_termination_log() {
    let dir = ScratchDir::new("stdin-plan");
    let log = dir.path().join("termination-log");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let plan = format!(
        r#"{{"timeout_ms": 500, "probes": [
          {{"id": "1", "kind": "tcp", "host": "127.0.0.1", "port": {port}}},
          {{"id": "2", "kind": "tcp", "host": "127.0.0.1", "port": 70000}},
          {{"id": "3", "kind": "ftp", "host": "127.0.0.1", "port": 21}}
        ]}}"#
    );
    let out = agent(&["--plan", "-", "--termination-log", log.to_str().unwrap()], &plan);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Invalid probes are named on stderr too.
    assert!(stderr.contains("port 70000 is out of range"), "{stderr}");
    assert!(stderr.contains("unknown probe kind \\\"ftp\\\""), "{stderr}");

    let report: AgentReport = serde_json::from_slice(&out.stdout).unwrap();
    let observed: Vec<Observed> = report.results.iter().map(|r| r.observed).collect();
    assert_eq!(observed, [Observed::Connected, Observed::Error, Observed::Error]);

    let compact = termination_log::decode(&std::fs::read_to_string(&log).unwrap()).unwrap();
    assert_eq!(compact.total, 3);
    assert!(!compact.truncated);
    assert_eq!(compact.results[0].observed, Observed::Connected);
    assert_eq!(compact.results[1].id, "2");
}

#[test]
fn the_termination_log_stays_under_4096_bytes_and_says_when_truncated() {
    let dir = ScratchDir::new("truncated");
    let log = dir.path().join("termination-log");
    // Non-numeric ids and errors: nothing compresses, so the log must be cut and marked.
    let probes: Vec<String> =
        (0..1000).map(|i| format!(r#"{{"id": "probe-{i}", "kind": "tcp", "host": "127.0.0.1", "port": 0}}"#)).collect();
    let plan = format!(r#"{{"probes": [{}]}}"#, probes.join(","));
    let out = agent(&["--plan", "-", "--termination-log", log.to_str().unwrap()], &plan);
    assert!(out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.len() <= termination_log::MAX_BYTES, "{} bytes", text.len());
    let compact = termination_log::decode(&text).unwrap();
    assert!(compact.truncated);
    assert_eq!(compact.total, 1000);
    assert!(!compact.results.is_empty() && compact.results.len() < 1000);
}

#[test]
fn the_target_answers_on_loopback_and_exits_0_on_sigterm() {
    let mut target = Command::new(BIN)
        .args(["target", "--listen", "127.0.0.1", "--tcp", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Port 0 is refused: a target's ports must be known to the plan.
    let status = target.wait().unwrap();
    assert_eq!(status.code(), Some(2));

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut target = Command::new(BIN)
        .args(["target", "--listen", "127.0.0.1", "--tcp", &port.to_string(), "--udp", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(target.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), format!("listening tcp=127.0.0.1:{port} udp=127.0.0.1:{port}"));
    std::net::TcpStream::connect(("127.0.0.1", port)).expect("target accepts");

    let kill = Command::new("kill").args(["-TERM", &target.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = target.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "target ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "exit status {status}");
}

#[test]
fn a_plan_from_the_environment_runs_as_in_a_probe_pod() {
    let dir = ScratchDir::new("env-plan");
    let log = dir.path().join("termination-log");
    // Nothing listens on port 1 of loopback: a refused probe, without any network.
    let plan = r#"{"timeout_ms": 500, "probes": [{"id": "1", "kind": "tcp", "host": "127.0.0.1", "port": 1}]}"#;
    let out = Command::new(BIN)
        .arg("agent")
        .env("NETCANARY_PLAN_JSON", plan)
        .env("NETCANARY_TERMINATION_LOG", &log)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: AgentReport = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report.results[0].observed, Observed::Refused);
    let compact = termination_log::decode(&std::fs::read_to_string(&log).unwrap()).unwrap();
    assert_eq!(compact.results[0].observed, Observed::Refused);
    let neither = Command::new(BIN).arg("agent").env_remove("NETCANARY_PLAN").output().unwrap();
    assert_eq!(neither.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&neither.stderr).contains("--plan"));
}

#[test]
fn a_plan_of_5000_probes_starts_from_the_environment_in_parts() {
    // Nothing listens on port 1 of loopback: every probe is refused, without any network.
    let probes: Vec<String> =
        (1..=5000).map(|i| format!(r#"{{"id":"{i}","kind":"tcp","host":"127.0.0.1","port":1}}"#)).collect();
    let plan = format!(r#"{{"timeout_ms":2000,"probes":[{}]}}"#, probes.join(","));
    assert!(plan.len() > 128 * 1024, "the plan must be over the kernel's limit: {} bytes", plan.len());

    // As one variable, the kernel refuses to start the agent at all.
    let whole = Command::new(BIN).arg("agent").env("NETCANARY_PLAN_JSON", &plan).arg("--no-termination-log").output();
    assert_eq!(whole.map_err(|e| e.raw_os_error()).unwrap_err(), Some(7), "E2BIG expected");

    let vars = plan_env::split(&plan).unwrap();
    assert!(vars.len() > 2, "{} variables", vars.len());
    let out = Command::new(BIN).arg("agent").arg("--no-termination-log").envs(vars).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: AgentReport = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report.results.len(), 5000);
    assert_eq!(report.results[4999].id, "5000");
    let not_refused: Vec<_> = report.results.iter().filter(|r| r.observed != Observed::Refused).collect();
    assert!(not_refused.is_empty(), "{:?}", &not_refused[..not_refused.len().min(3)]);

    // A lost part is named, never run as a shorter plan.
    let mut vars = plan_env::split(&plan).unwrap();
    vars.retain(|(name, _)| name != "NETCANARY_PLAN_JSON_1");
    let out = Command::new(BIN).arg("agent").arg("--no-termination-log").envs(vars).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NETCANARY_PLAN_JSON_1 is not set"));
}
