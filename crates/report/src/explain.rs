//! One verdict in words: per direction, what isolates the pod, which rule allowed the
//! traffic, and why every other rule did not.

use std::fmt::Write;

use netcanary_policy::{Action, DirectionVerdict, Endpoint, Tier, TierStep, Verdict};

use crate::style::{self, paint};

/// `verdict` of the connection from `from` to `to`.
pub fn render(verdict: &Verdict, from: &Endpoint, to: &Endpoint) -> String {
    let mut out = String::new();
    let answer = if verdict.unknown().is_some() {
        paint(style::WARNING, "UNKNOWN")
    } else if verdict.allowed {
        paint(style::ALLOWED, "ALLOWED")
    } else {
        paint(style::DENIED, "DENIED")
    };
    let _ = writeln!(out, "{} → {} on {}: {answer}", verdict.from, verdict.to, verdict.port);
    if verdict.self_pair {
        let _ = writeln!(
            out,
            "  {} this is a pod reaching its own IP: policy's answer is shown, but CNIs differ here and upstream conformance does not test it",
            paint(style::WARNING, "note:")
        );
    }
    let mut on_host: Vec<&str> = [from, to].iter().filter(|e| e.host_network).map(|e| e.id.as_str()).collect();
    on_host.dedup();
    let uses = match on_host.as_slice() {
        [] => None,
        [one] => Some(format!("{one} uses")),
        [first, second, ..] => Some(format!("{first} and {second} use")),
    };
    if let Some(uses) = uses {
        let _ = writeln!(
            out,
            "  {} {uses} the host network: the NetworkPolicy spec leaves traffic of host-network pods undefined, so CNIs differ here",
            paint(style::WARNING, "note:"),
        );
    }
    for (side, owner) in [(&verdict.egress, &verdict.from), (&verdict.ingress, &verdict.to)] {
        direction(&mut out, side, owner, side.describe_notes(from, to));
    }
    out
}

fn direction(out: &mut String, d: &DirectionVerdict, owner: &str, notes: Vec<String>) {
    let state = if d.unknown.is_some() {
        paint(style::WARNING, "unknown")
    } else if d.allowed {
        paint(style::ALLOWED, "allowed")
    } else {
        paint(style::DENIED, "denied")
    };
    let _ = writeln!(out, "\n  {} of {owner}: {state}", paint(style::HEADING, d.direction.as_str()));
    if let Some(admin) = d.steps.iter().find(|s| s.tier == Tier::Admin) {
        tier_step(out, admin);
        if admin.hit.as_ref().is_some_and(|h| h.action != Action::Pass) {
            tail(out, d, notes);
            return;
        }
    }
    if !d.steps.is_empty() {
        let _ = writeln!(out, "    NetworkPolicy tier");
    }
    if d.isolated {
        let _ = writeln!(out, "    isolated by   {}", d.policies.join(", "));
    } else if d.notes.is_empty() {
        let _ = writeln!(
            out,
            "    not isolated: no policy selects it for {}, so all {} is allowed",
            d.direction, d.direction
        );
    }
    for hit in &d.allowed_by {
        let _ = writeln!(out, "    allowed by    {}: {}", hit.rule, hit.says);
    }
    for miss in &d.misses {
        let _ = writeln!(out, "    {}", paint(style::DIM, &format!("not by        {}: {}", miss.rule, miss.reason)));
    }
    if d.isolated && d.allowed_by.is_empty() && !d.misses.is_empty() {
        let _ = writeln!(out, "    no rule of the selecting policies allows it");
    }
    if !d.isolated
        && let Some(baseline) = d.steps.iter().find(|s| s.tier == Tier::Baseline)
    {
        tier_step(out, baseline);
    }
    tail(out, d, notes);
}

/// A cluster tier walked: its policies in order, the rules that missed, the one that
/// matched and what its action did.
fn tier_step(out: &mut String, step: &TierStep) {
    let _ = writeln!(out, "    {} tier    {}", step.tier.as_str(), step.policies.join(", "));
    for (rule, reason) in &step.misses {
        let _ = writeln!(out, "    {}", paint(style::DIM, &format!("  not by      {rule}: {reason}")));
    }
    for maybe in &step.maybe {
        let _ = writeln!(out, "      may match   {} ({}): {}", maybe.rule, maybe.action, maybe.says);
    }
    match &step.hit {
        Some(hit) if hit.action == Action::Pass => {
            let next = if step.tier == Tier::Admin { "the NetworkPolicy tier" } else { "the default (allow)" };
            let _ = writeln!(
                out,
                "      {}  {}: {}: passed to {next}",
                paint(style::HEADING, "Pass     "),
                hit.rule,
                hit.says
            );
        }
        Some(hit) => {
            let _ = writeln!(
                out,
                "      {}  {}: {}",
                paint(style::HEADING, &format!("{:<9}", hit.action.as_str())),
                hit.rule,
                hit.says
            );
        }
        None => {
            let _ = writeln!(out, "      no rule of the tier matches: the next tier decides");
        }
    }
    if let Some(tie) = &step.tie {
        let _ = writeln!(out, "      {}   {tie}", paint(style::WARNING, "implementation-defined:"));
    }
}

fn tail(out: &mut String, d: &DirectionVerdict, notes: Vec<String>) {
    for note in notes {
        let _ = writeln!(out, "    {}   {note}", paint(style::WARNING, "note:"));
    }
    if let Some(unknown) = &d.unknown {
        let _ = writeln!(out, "    {}   {unknown}", paint(style::WARNING, "unknown:"));
    }
    match (&d.decision.rule, d.tier) {
        (Some(rule), Tier::Admin | Tier::Baseline) => {
            let _ = writeln!(out, "    decided by    {} tier: {rule} ({})", d.tier.as_str(), d.decision.action);
        }
        _ => {
            let _ = writeln!(out, "    decided by    {} tier", d.tier.as_str());
        }
    }
}
