//! Findings for people (text) and tools (JSON, SARIF 2.1.0, PolicyReport results).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};
use serde_json::{Value, json};

use crate::Finding;
use crate::rules::{Level, RULES};

/// What the text groups findings without a namespace under.
const CLUSTER_SCOPED: &str = "(cluster-scoped)";

fn style(level: Level) -> Style {
    match level {
        Level::Error => AnsiColor::Red.on_default().bold(),
        Level::Warning => AnsiColor::Yellow.on_default().bold(),
        Level::Info => AnsiColor::Cyan.on_default(),
    }
}

/// Grouped by namespace, one aligned line per finding with its fix below. Styled with ANSI
/// codes: write it through `anstream`, which drops them when the output is no terminal.
pub fn text(findings: &[Finding]) -> String {
    let mut out = String::new();
    if findings.is_empty() {
        out.push_str("no findings\n");
        return out;
    }
    let object = |f: &Finding| match &f.field {
        Some(field) => format!("{} {}: {field}", f.kind, f.name),
        None => format!("{} {}", f.kind, f.name),
    };
    let width = findings.iter().map(|f| object(f).chars().count()).max().unwrap_or(0);
    let mut current: Option<Option<&str>> = None;
    for f in findings {
        let namespace = f.namespace.as_deref();
        if current != Some(namespace) {
            if current.is_some() {
                out.push('\n');
            }
            let bold = Style::new().bold();
            let _ = writeln!(out, "{bold}{}{bold:#}", namespace.unwrap_or(CLUSTER_SCOPED));
            current = Some(namespace);
        }
        let s = style(f.severity);
        let level = format!("{:<7}", f.severity.as_str());
        let _ = writeln!(out, "  {s}{level}{s:#}  {}  {:<width$}  {}", f.rule, object(f), f.message);
        let indent = 2 + 7 + 2 + f.rule.len() + 2;
        let dim = Style::new().dimmed();
        let _ = writeln!(out, "{:indent$}{dim}fix: {}{dim:#}", "", f.fix);
        match (&f.file, f.line) {
            (Some(file), Some(line)) => {
                let _ = writeln!(out, "{:indent$}{dim}in {file}:{line}{dim:#}", "");
            }
            (Some(file), None) => {
                let _ = writeln!(out, "{:indent$}{dim}in {file}{dim:#}", "");
            }
            (None, _) => {}
        }
    }
    let count = |level| findings.iter().filter(|f| f.severity == level).count();
    let _ = writeln!(
        out,
        "\n{} finding(s): {} error(s), {} warning(s), {} info",
        findings.len(),
        count(Level::Error),
        count(Level::Warning),
        count(Level::Info)
    );
    out
}

/// `{"findings": [...]}`, every key always present (null when unknown).
pub fn json(findings: &[Finding]) -> Value {
    json!({ "findings": findings })
}

/// A SARIF 2.1.0 log: one run, the tool's rules with their help, one result per finding
/// with its level, file (when known) and the object as a logical location.
pub fn sarif(findings: &[Finding]) -> Value {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.title,
                "shortDescription": {"text": r.title},
                "fullDescription": {"text": r.help},
                "help": {"text": r.help, "markdown": format!("**{}** ({}): {}", r.id, r.title, r.help)},
                "defaultConfiguration": {"level": r.level.sarif()},
            })
        })
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let rule_index = RULES.iter().position(|r| r.id == f.rule).unwrap_or_default();
            let object = match &f.namespace {
                Some(ns) if f.kind != "Namespace" => format!("{}/{ns}/{}", f.kind, f.name),
                _ => format!("{}/{}", f.kind, f.name),
            };
            let mut logical = json!({"fullyQualifiedName": object, "kind": "object"});
            if let Some(field) = &f.field {
                logical = json!({"fullyQualifiedName": format!("{object}.{field}"), "kind": "member"});
            }
            let mut location = json!({"logicalLocations": [logical]});
            if let Some(file) = &f.file {
                let mut physical = json!({"artifactLocation": {"uri": file_uri(file)}});
                if let Some(line) = f.line {
                    physical["region"] = json!({"startLine": line});
                }
                location["physicalLocation"] = physical;
            }
            json!({
                "ruleId": f.rule,
                "ruleIndex": rule_index,
                "level": f.severity.sarif(),
                "message": {"text": format!("{} Fix: {}", f.message, f.fix)},
                "locations": [location],
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "netcanary",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/netcanary/netcanary",
                "rules": rules,
            }},
            "results": results,
        }],
    })
}

/// The name of the PolicyReports that hold lint's findings on a cluster.
pub const POLICY_REPORT_NAME: &str = "netcanary-lint";

/// The findings as PolicyReport results (`wgpolicyk8s.io/v1alpha2`), by namespace; `None`
/// holds the cluster-scoped ones and is always there, so that a report published from this
/// replaces the last one even when it is empty. `policy` is netcanary-lint, `rule` the
/// rule id; an error fails (severity high), a warning or an info warns (medium, info).
pub fn policy_report_results(findings: &[Finding], timestamp_seconds: i64) -> BTreeMap<Option<String>, Vec<Value>> {
    let mut out: BTreeMap<Option<String>, Vec<Value>> = BTreeMap::from([(None, Vec::new())]);
    for f in findings {
        let (result, severity) = match f.severity {
            Level::Error => ("fail", "high"),
            Level::Warning => ("warn", "medium"),
            Level::Info => ("warn", "info"),
        };
        let object = match &f.field {
            Some(field) => format!("{} {}: {field}", f.kind, f.name),
            None => format!("{} {}", f.kind, f.name),
        };
        let mut properties = json!({"kind": f.kind, "name": f.name, "fix": f.fix});
        if let Some(field) = &f.field {
            properties["field"] = json!(field);
        }
        out.entry(f.namespace.clone()).or_default().push(json!({
            "policy": POLICY_REPORT_NAME,
            "rule": f.rule,
            "category": "NetworkPolicy",
            "source": "netcanary",
            "result": result,
            "severity": severity,
            "scored": true,
            "message": format!("{object}: {} Fix: {}", f.message, f.fix),
            "timestamp": {"seconds": timestamp_seconds, "nanos": 0},
            "properties": properties,
        }));
    }
    out
}

/// A relative URI reference for a path: `/` separators, spaces and `%` escaped.
fn file_uri(path: &str) -> String {
    path.replace('\\', "/").replace('%', "%25").replace(' ', "%20")
}
