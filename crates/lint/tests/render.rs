//! The output formats: JSON's keys, and SARIF validated against the SARIF 2.1.0 schema.

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

/// The SARIF 2.1.0 schema (OASIS, the final `sarif-2.1.0-rtm.5.json`), as the MIT-licensed
/// npm package @microsoft/jest-sarif 1.0.0-beta.0 ships it (`lib/schemas/`).
const SARIF_SCHEMA: &str = include_str!("schemas/sarif-2.1.0-rtm.5.json");

/// Every error of `log` against the SARIF 2.1.0 schema.
fn schema_errors(log: &Value) -> Vec<String> {
    // The `pattern` of a language tag (a run's and a tool component's) has a bare `]`, a
    // literal in ECMA-262's regular expressions and an error in this validator's: escaped,
    // it means the same in both.
    let bare = r#"[a-zA-Z]{2}]?$"#;
    assert_eq!(SARIF_SCHEMA.matches(bare).count(), 2, "the schema's language patterns");
    let text = SARIF_SCHEMA.replace(bare, r#"[a-zA-Z]{2}\\]?$"#);
    let schema: Value = serde_json::from_str(&text).expect("the SARIF schema is JSON");
    let validator = jsonschema::draft4::new(&schema).expect("the SARIF schema compiles");
    validator.iter_errors(log).map(|e| format!("{e} (at {})", e.instance_path())).collect()
}

/// Valid against the schema, and what the schema cannot say: a result's `ruleIndex` points at
/// its rule, and a location's `uri` is a URI reference (no spaces).
fn check_sarif(log: &Value) {
    let errors = schema_errors(log);
    assert!(errors.is_empty(), "not SARIF 2.1.0:\n{}\n{log:#}", errors.join("\n"));
    for run in log["runs"].as_array().expect("runs is an array") {
        let rules = run["tool"]["driver"]["rules"].as_array().expect("rules is an array");
        for result in run["results"].as_array().expect("results is an array") {
            let index = result["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(rules[index]["id"], result["ruleId"], "ruleIndex points at the rule");
            for location in result["locations"].as_array().unwrap() {
                if let Some(uri) = location["physicalLocation"]["artifactLocation"]["uri"].as_str() {
                    assert!(!uri.contains(' '), "uri is a URI reference: {uri}");
                }
            }
        }
    }
}

/// The check can fail: a level the schema does not know, a region starting at line 0 and a
/// run without its tool are each found.
#[test]
fn the_schema_check_finds_what_is_not_sarif() {
    let good = sarif(&findings());
    let mut bad_level = good.clone();
    bad_level["runs"][0]["results"][0]["level"] = "fatal".into();
    let mut bad_line = good.clone();
    bad_line["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] = 0.into();
    let mut no_tool = good.clone();
    no_tool["runs"][0].as_object_mut().unwrap().remove("tool");
    for (what, log) in [("level", bad_level), ("startLine", bad_line), ("tool", no_tool)] {
        assert!(!schema_errors(&log).is_empty(), "{what}: the schema check let it through");
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
