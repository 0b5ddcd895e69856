//! One verdict in words: per direction, what isolates the pod, which rule allowed the
//! traffic, and why every other rule did not.

use std::fmt::Write;

use netcanary_policy::{DirectionVerdict, Verdict};

use crate::style::{self, paint};

pub fn render(verdict: &Verdict) -> String {
    let mut out = String::new();
    let answer = if verdict.allowed { paint(style::ALLOWED, "ALLOWED") } else { paint(style::DENIED, "DENIED") };
    let _ = writeln!(out, "{} → {} on {}: {answer}", verdict.from, verdict.to, verdict.port);
    if verdict.self_pair {
        let _ = writeln!(
            out,
            "  {} this is a pod reaching its own IP: policy's answer is shown, but CNIs differ here and upstream conformance does not test it",
            paint(style::WARNING, "note:")
        );
    }
    for (side, owner) in [(&verdict.egress, &verdict.from), (&verdict.ingress, &verdict.to)] {
        direction(&mut out, side, owner);
    }
    out
}

fn direction(out: &mut String, d: &DirectionVerdict, owner: &str) {
    let state = if d.allowed { paint(style::ALLOWED, "allowed") } else { paint(style::DENIED, "denied") };
    let _ = writeln!(out, "\n  {} of {owner}: {state}", paint(style::HEADING, d.direction.as_str()));
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
    for note in &d.notes {
        let _ = writeln!(out, "    {}   {note}", paint(style::WARNING, "note:"));
    }
    let _ = writeln!(out, "    decided by    {} tier", d.tier.as_str());
}
