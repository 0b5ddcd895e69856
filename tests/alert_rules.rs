//! netcanary's alerts as shipped (the `spec` of
//! `manifests/components/prometheus-operator/prometheusrule.yaml`): `promtool check rules`
//! accepts them, and `promtool test rules` runs `tests/alerts/netcanary_test.yml`, where
//! every alert fires when it should, with its exact labels and annotations, and stays
//! quiet when it should not. Every alert must have both kinds of case, a runbook section
//! and the annotations an on-call person reads.
//!
//! The promtool test needs `promtool` (Debian package `prometheus`): see
//! `tests/common/monitoring.rs` for how it skips or fails without it.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::assert_ok;
use common::monitoring::{PROMETHEUS_RULE, RULE_FILE, binaries_or_skip, repo_file, write_rule_file};
use common::scratch::ScratchDir;
use serde_norway::Value;

const TESTS: &str = "tests/alerts/netcanary_test.yml";
const RUNBOOKS: &str = "docs/runbooks.md";
const RUNBOOK_URL: &str = "https://github.com/netcanary/netcanary/blob/main/docs/runbooks.md#";

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(repo_file(path)).unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every alerting rule of the shipped PrometheusRule.
fn alerts() -> Vec<Value> {
    let rule = yaml(PROMETHEUS_RULE);
    let groups = rule["spec"]["groups"].as_sequence().expect("spec.groups").clone();
    groups
        .iter()
        .flat_map(|g| g["rules"].as_sequence().cloned().unwrap_or_default())
        .filter(|r| r.get("alert").is_some())
        .collect()
}

fn promtool(promtool: &Path, args: &[&Path], dir: &Path) {
    let out = Command::new(promtool).args(args).current_dir(dir).output().expect("run promtool");
    assert_ok(&out, &format!("promtool {args:?}"));
}

#[test]
fn promtool_checks_and_unit_tests_the_shipped_rules() {
    let Some([promtool_path]) = binaries_or_skip("promtool_checks_and_unit_tests_the_shipped_rules", ["promtool"])
    else {
        return;
    };
    let dir = ScratchDir::new("alert-rules");
    let rules = write_rule_file(dir.path());
    let tests = dir.path().join("netcanary_test.yml");
    std::fs::copy(repo_file(TESTS), &tests).expect("copy the rule tests");
    promtool(&promtool_path, &[Path::new("check"), Path::new("rules"), &rules], dir.path());
    promtool(&promtool_path, &[Path::new("test"), Path::new("rules"), &tests], dir.path());
}

#[test]
fn every_alert_is_explained_and_tested_both_ways() {
    let tests = yaml(TESTS);
    assert_eq!(tests["rule_files"][0].as_str(), Some(RULE_FILE), "{TESTS} must load the rules as {RULE_FILE}");
    let cases: Vec<&Value> = tests["tests"]
        .as_sequence()
        .expect("tests")
        .iter()
        .flat_map(|t| t["alert_rule_test"].as_sequence())
        .flatten()
        .collect();
    let firing: BTreeSet<&str> = cases
        .iter()
        .filter(|c| c["exp_alerts"].as_sequence().is_some_and(|a| !a.is_empty()))
        .filter_map(|c| c["alertname"].as_str())
        .collect();
    let quiet: BTreeSet<&str> = cases
        .iter()
        .filter(|c| c["exp_alerts"].as_sequence().is_none_or(|a| a.is_empty()))
        .filter_map(|c| c["alertname"].as_str())
        .collect();
    let runbooks = std::fs::read_to_string(repo_file(RUNBOOKS)).unwrap_or_else(|e| panic!("read {RUNBOOKS}: {e}"));
    let alerts = alerts();
    assert!(!alerts.is_empty(), "no alert in {PROMETHEUS_RULE}");
    for alert in &alerts {
        let name = alert["alert"].as_str().expect("an alert name");
        assert!(firing.contains(name), "{name}: no case in {TESTS} where it fires");
        assert!(quiet.contains(name), "{name}: no case in {TESTS} where it stays quiet");
        let severity = alert["labels"]["severity"].as_str();
        assert!(matches!(severity, Some("critical" | "warning")), "{name}: severity {severity:?}");
        for annotation in ["summary", "description"] {
            assert!(
                alert["annotations"][annotation].as_str().is_some_and(|t| !t.is_empty()),
                "{name}: no {annotation}"
            );
        }
        let anchor = name.to_lowercase();
        assert_eq!(
            alert["annotations"]["runbook_url"].as_str(),
            Some(format!("{RUNBOOK_URL}{anchor}").as_str()),
            "{name}: runbook_url"
        );
        assert!(runbooks.lines().any(|l| l == format!("## {name}")), "{RUNBOOKS} has no section `## {name}`");
    }
}
