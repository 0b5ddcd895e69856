//! The output formats: JSON's keys, and SARIF 2.1.0 checked by hand against the required
//! properties of the specification's schema (sarif-schema-2.1.0.json cannot be fetched in
//! the build, so its `required` lists and enums are restated here).

use netcanary_lint::render::{json, policy_report_results, sarif, text};
use netcanary_lint::{Finding, Level, RULES};
use serde_json::Value;

fn findings() -> Vec<Finding> {
    let finding = |rule, severity, file: Option<&str>, line| Finding {
        rule,
        severity,
        namespace: Some("dev".into()),
        kind: "NetworkPolicy".into(),
        name: "p".into(),
        field: Some("spec.podSelector".into()),
        file: file.map(str::to_string),
        line,
        message: "matches nothing".into(),
        fix: "fix the labels".into(),
    };
    vec![
        finding("NC004", Level::Warning, Some("dir with space/p.yaml"), Some(7)),
        finding("NC002", Level::Info, None, None),
        finding("NC003", Level::Error, Some("p.yaml"), None),
    ]
}

#[test]
fn json_has_every_key() {
    let doc = json(&findings());
    let first = &doc["findings"][0];
    for key in ["rule", "severity", "namespace", "kind", "name", "field", "file", "line", "message", "fix"] {
        assert!(first.get(key).is_some(), "missing {key}: {first}");
    }
    assert_eq!(first["severity"], "warning");
    assert_eq!(doc["findings"][1]["file"], Value::Null);
    assert_eq!(first["line"], 7);
    assert_eq!(doc["findings"][1]["line"], Value::Null);
}

fn required(value: &Value, what: &str, keys: &[&str]) {
    for key in keys {
        assert!(value.get(key).is_some(), "SARIF {what} lacks required {key}: {value}");
    }
}

fn message(value: &Value, what: &str) {
    // message: anyOf [required text, required id]
    assert!(value.get("text").is_some_and(Value::is_string) || value.get("id").is_some(), "SARIF {what}: {value}");
}

/// The schema's required properties and enums for what netcanary writes.
pub fn check_sarif(log: &Value) {
    required(log, "sarifLog", &["version", "runs"]);
    assert_eq!(log["version"], "2.1.0");
    for run in log["runs"].as_array().expect("runs is an array") {
        required(run, "run", &["tool"]);
        required(&run["tool"], "tool", &["driver"]);
        let driver = &run["tool"]["driver"];
        required(driver, "toolComponent", &["name"]);
        let rules = driver["rules"].as_array().expect("rules is an array");
        for rule in rules {
            required(rule, "reportingDescriptor", &["id"]);
            for text in ["shortDescription", "fullDescription", "help"] {
                required(&rule[text], "multiformatMessageString", &["text"]);
            }
            let level = rule["defaultConfiguration"]["level"].as_str().unwrap();
            assert!(["none", "note", "warning", "error"].contains(&level));
        }
        for result in run["results"].as_array().expect("results is an array") {
            required(result, "result", &["message"]);
            message(&result["message"], "result.message");
            let level = result["level"].as_str().unwrap();
            assert!(["none", "note", "warning", "error"].contains(&level), "level {level}");
            let index = result["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(rules[index]["id"], result["ruleId"], "ruleIndex points at the rule");
            for location in result["locations"].as_array().unwrap() {
                if let Some(physical) = location.get("physicalLocation") {
                    // physicalLocation: anyOf [required address, required artifactLocation]
                    assert!(physical.get("artifactLocation").is_some() || physical.get("address").is_some());
                    let uri = physical["artifactLocation"]["uri"].as_str().unwrap();
                    assert!(!uri.contains(' '), "uri is a URI reference: {uri}");
                    if let Some(region) = physical.get("region") {
                        assert!(region["startLine"].as_u64().unwrap() >= 1);
                    }
                }
                for logical in location["logicalLocations"].as_array().unwrap() {
                    assert!(logical["fullyQualifiedName"].is_string());
                }
            }
        }
    }
}

#[test]
fn sarif_has_the_required_shape() {
    let log = sarif(&findings());
    check_sarif(&log);
    let driver = &log["runs"][0]["tool"]["driver"];
    assert_eq!(driver["rules"].as_array().unwrap().len(), RULES.len());
    let results = log["runs"][0]["results"].as_array().unwrap();
    let levels: Vec<&str> = results.iter().map(|r| r["level"].as_str().unwrap()).collect();
    assert_eq!(levels, ["warning", "note", "error"]);
    assert_eq!(results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], "dir%20with%20space/p.yaml");
    assert!(results[1]["locations"][0].get("physicalLocation").is_none(), "no file, no physical location");
    assert_eq!(results[0]["locations"][0]["physicalLocation"]["region"]["startLine"], 7);
    assert!(results[2]["locations"][0]["physicalLocation"].get("region").is_none(), "no line, no region");
    check_sarif(&sarif(&[]));
}

#[test]
fn text_groups_by_namespace_and_counts() {
    let out = text(&findings());
    assert!(out.starts_with("\u{1b}[1mdev\u{1b}[0m\n"), "{out}");
    assert!(out.contains("NC004  NetworkPolicy p: spec.podSelector  matches nothing"), "{out}");
    assert!(out.contains("3 finding(s): 1 error(s), 1 warning(s), 1 info"), "{out}");
    assert!(out.contains("in dir with space/p.yaml:7\u{1b}"), "the line after the file: {out}");
    assert!(out.contains("in p.yaml\u{1b}"), "no line, the file alone: {out}");
    assert_eq!(text(&[]), "no findings\n");
}

#[test]
fn policy_report_results_by_namespace_with_the_cluster_always_there() {
    let by_namespace = policy_report_results(&findings(), 1_700_000_000);
    let namespaces: Vec<Option<&str>> = by_namespace.keys().map(Option::as_deref).collect();
    assert_eq!(namespaces, [None, Some("dev")], "no cluster-scoped finding: an empty cluster report still");
    assert!(by_namespace[&None].is_empty());
    let dev = &by_namespace[&Some("dev".to_string())];
    let graded: Vec<(&str, &str, &str)> = dev
        .iter()
        .map(|r| (r["rule"].as_str().unwrap(), r["result"].as_str().unwrap(), r["severity"].as_str().unwrap()))
        .collect();
    assert_eq!(graded, [("NC004", "warn", "medium"), ("NC002", "warn", "info"), ("NC003", "fail", "high")]);
    assert_eq!(dev[0]["message"], "NetworkPolicy p: spec.podSelector: matches nothing Fix: fix the labels");
    assert_eq!(dev[0]["properties"]["field"], "spec.podSelector");
    assert_eq!(dev[0]["timestamp"]["seconds"], 1_700_000_000);
    assert_eq!(dev[0]["policy"], "netcanary-lint");
}
