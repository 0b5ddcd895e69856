//! `analyze --intent`: each statement with its violations (the connection, policy's answer
//! and the rules responsible), and the statements that select nothing.

use std::fmt::Write;

use netcanary_policy::intent::{Responsible, StatementCheck, Violation};
use serde_json::{Value, json};

use crate::style::{self, paint};

/// How many violations of one statement the text lists before counting the rest; JSON
/// lists them all.
const LISTED: usize = 20;

/// One block per statement, then a total line.
pub fn text(checks: &[StatementCheck]) -> String {
    let mut out = String::new();
    for check in checks {
        let s = &check.statement;
        let state = if !check.violations.is_empty() {
            paint(style::DENIED, &format!("{} VIOLATION(S)", check.violations.len()))
        } else if check.matches_nothing() {
            paint(style::WARNING, "MATCHES NOTHING")
        } else {
            paint(style::ALLOWED, "holds")
        };
        let _ = writeln!(out, "{} {}: {state}", paint(style::HEADING, "intent"), s.id());
        let _ = writeln!(out, "  {}", s.describe());
        let _ = writeln!(
            out,
            "  {} source(s), {} destination(s), {} connection(s) checked",
            check.sources, check.destinations, check.pairs
        );
        if check.matches_nothing() {
            let empty = match (check.sources, check.destinations) {
                (0, 0) => "neither `from` nor `to` selects a pod or workload".to_string(),
                (0, _) => "`from` selects no pod or workload".to_string(),
                (_, 0) => "`to` selects no pod or workload".to_string(),
                _ => "`from` and `to` select only the same pod (a pod reaching itself is not checked)".to_string(),
            };
            let _ = writeln!(out, "  {}   {empty}: this statement checks nothing", paint(style::WARNING, "note:"));
        }
        if check.unknown > 0 {
            let _ = writeln!(
                out,
                "  {}   {} connection(s) depend on domain names in cluster policies: not checked",
                paint(style::WARNING, "note:"),
                check.unknown
            );
        }
        for violation in check.violations.iter().take(LISTED) {
            violation_text(&mut out, violation);
        }
        if check.violations.len() > LISTED {
            let _ = writeln!(out, "  … and {} more (-o json lists them all)", check.violations.len() - LISTED);
        }
        out.push('\n');
    }
    let violations: usize = checks.iter().map(|c| c.violations.len()).sum();
    let violated = checks.iter().filter(|c| !c.violations.is_empty()).count();
    let nothing = checks.iter().filter(|c| c.matches_nothing()).count();
    let _ = writeln!(
        out,
        "{} statement(s): {violated} violated ({violations} connection(s)), {nothing} matching nothing",
        checks.len()
    );
    out
}

fn violation_text(out: &mut String, v: &Violation) {
    let answer = if v.policy_allows { "policy allows" } else { "policy denies" };
    let _ = writeln!(out, "  {} → {} on {}: {}", v.from, v.to, v.port, paint(style::DENIED, answer));
    for r in &v.responsible {
        let by = r.rule.as_deref().map(|rule| format!("{rule}: ")).unwrap_or_default();
        let _ = writeln!(out, "    {:<8} {by}{}", r.direction.as_str(), r.says);
    }
}

/// `{"statements": [...], "violations": N, "matchingNothing": N}`, every violation listed.
pub fn json(checks: &[StatementCheck]) -> Value {
    let statements: Vec<Value> = checks
        .iter()
        .map(|c| {
            let s = &c.statement;
            json!({
                "intent": s.intent,
                "index": s.index,
                "name": s.name,
                "expect": s.expect.as_str(),
                "ports": s.ports.iter().map(|p| json!({"port": p.port, "protocol": p.protocol.as_str()})).collect::<Vec<_>>(),
                "sources": c.sources,
                "destinations": c.destinations,
                "checked": c.pairs,
                "unknown": c.unknown,
                "matchesNothing": c.matches_nothing(),
                "violations": c.violations.iter().map(violation_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "statements": statements,
        "violations": checks.iter().map(|c| c.violations.len()).sum::<usize>(),
        "matchingNothing": checks.iter().filter(|c| c.matches_nothing()).count(),
    })
}

fn violation_json(v: &Violation) -> Value {
    json!({
        "from": v.from,
        "to": v.to,
        "port": v.port.port,
        "protocol": v.port.protocol.as_str(),
        "policy": if v.policy_allows { "allow" } else { "deny" },
        "responsible": v.responsible.iter().map(responsible_json).collect::<Vec<_>>(),
    })
}

fn responsible_json(r: &Responsible) -> Value {
    json!({"direction": r.direction.as_str(), "tier": r.tier.as_str(), "rule": r.rule, "says": r.says})
}
