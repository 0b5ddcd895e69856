//! One verdict in words: per direction, what isolates the pod, which rule allowed the
//! traffic, and why every other rule did not.

use std::fmt::Write;

use netcanary_policy::{DirectionVerdict, Endpoint, Verdict};

use crate::style::{self, paint};

/// `verdict` of the connection from `from` to `to`.
pub fn render(verdict: &Verdict, from: &Endpoint, to: &Endpoint) -> String {
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
    for note in notes {
        let _ = writeln!(out, "    {}   {note}", paint(style::WARNING, "note:"));
    }
    let _ = writeln!(out, "    decided by    {} tier", d.tier.as_str());
}
