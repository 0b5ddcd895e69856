//! netcanary's alerts as shipped (the `spec` of
//! `manifests/components/prometheus-operator/prometheusrule.yaml`): `promtool check rules`
//! accepts them, and `promtool test rules` runs `tests/alerts/netcanary_test.yml`, where
//! every alert fires when it should, with its exact labels and annotations, and stays
//! quiet when it should not. Every alert must have both kinds of case, a runbook section
//! and the annotations an on-call person reads. The shipped Alertmanager inhibit rules name
//! only alerts the rules raise, and `amtool check-config` accepts them.
//!
//! The promtool and amtool tests need them (Debian packages `prometheus` and
//! `prometheus-alertmanager`): see
//! `tests/common/monitoring.rs` for how it skips or fails without it.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::monitoring::{
    INHIBIT_RULES, PROMETHEUS_RULE, RULE_FILE, binaries_or_skip, write_alertmanager_config, write_rule_file,
};
use common::scratch::ScratchDir;
use common::{assert_ok, read_repo_file, repo_file};
use serde_norway::Value;

const TESTS: &str = "tests/alerts/netcanary_test.yml";
const RUNBOOKS: &str = "docs/runbooks.md";
const RUNBOOK_URL: &str = "https://github.com/netcanary/netcanary/blob/main/docs/runbooks.md#";

fn yaml(path: &str) -> Value {
    let text = read_repo_file(path);
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
    let rules = write_rule_file(&dir);
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
    let runbooks = read_repo_file(RUNBOOKS);
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

/// The alert names an inhibit rule's matchers (`source_matchers`, `target_matchers`) pick.
fn matched_alerts(rule: &Value, matchers: &str) -> Vec<String> {
    let matchers = rule[matchers].as_sequence().unwrap_or_else(|| panic!("{INHIBIT_RULES}: {rule:?}: no {matchers}"));
    matchers
        .iter()
        .filter_map(|m| m.as_str()?.strip_prefix("alertname=\"")?.strip_suffix('"').map(str::to_owned))
        .collect()
}

#[test]
fn inhibit_rules_name_alerts_the_rules_raise() {
    let raised: BTreeSet<String> = alerts().iter().filter_map(|a| a["alert"].as_str().map(str::to_owned)).collect();
    let inhibit_rules = yaml(INHIBIT_RULES)["inhibit_rules"].as_sequence().cloned().unwrap_or_default();
    assert!(!inhibit_rules.is_empty(), "{INHIBIT_RULES}: no inhibit_rules");
    for rule in &inhibit_rules {
        for side in ["source_matchers", "target_matchers"] {
            let names = matched_alerts(rule, side);
            assert!(!names.is_empty(), "{INHIBIT_RULES}: {rule:?}: {side} names no alert (alertname=\"...\")");
            for name in names {
                assert!(raised.contains(&name), "{INHIBIT_RULES}: {side} names {name}, which {PROMETHEUS_RULE} lacks");
            }
        }
        let equal = rule["equal"].as_sequence().map(Vec::as_slice).unwrap_or_default();
        assert!(
            equal.iter().any(|l| l.as_str() == Some("job")),
            "{INHIBIT_RULES}: {rule:?}: without `job` in `equal`, one reporter's canary would silence another's paths"
        );
    }
}

#[test]
fn amtool_accepts_the_inhibit_rules() {
    let Some([amtool]) = binaries_or_skip("amtool_accepts_the_inhibit_rules", ["amtool"]) else { return };
    let dir = ScratchDir::new("inhibit-rules");
    let config = write_alertmanager_config(&dir);
    let out = Command::new(amtool).arg("check-config").arg(&config).output().expect("run amtool");
    assert_ok(&out, &format!("amtool check-config {}", config.display()));
    let report = String::from_utf8_lossy(&out.stdout);
    let count = yaml(INHIBIT_RULES)["inhibit_rules"].as_sequence().map_or(0, Vec::len);
    assert!(
        report.contains(&format!(" - {count} inhibit rules")),
        "amtool did not read {count} inhibit rules:\n{report}"
    );
}
