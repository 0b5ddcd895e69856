//! What a run would do (`run --dry-run`): the probe pods, the probes by purpose, and which
//! policy rules they exercise or why not.

use std::collections::BTreeMap;
use std::fmt::Write;

use netcanary_planner::{Destination, Plan, Purpose};

use crate::style::{self, paint};

pub fn table(plan: &Plan) -> String {
    let mut out = String::new();
    let targets = plan.mirrors.iter().filter(|m| !m.listen.is_empty()).count();
    let mut by_purpose: BTreeMap<Purpose, usize> = BTreeMap::new();
    for probe in &plan.probes {
        *by_purpose.entry(probe.purpose).or_default() += 1;
    }
    let count = |p: Purpose| by_purpose.get(&p).copied().unwrap_or(0);
    let _ = writeln!(out, "{}", paint(style::HEADING, "netcanary run plan (dry run: nothing was created)"));
    let _ = writeln!(
        out,
        "  probe pods    {} ({} of them targets), standing for {} workload pods",
        plan.probe_pods(),
        targets,
        plan.mirrors.iter().map(|m| m.members).sum::<usize>()
    );
    let _ = writeln!(
        out,
        "  probes        {}: {} dns, {} allow-rule, {} isolation, {} sampled, {} outside the cluster",
        plan.probes.len(),
        count(Purpose::Dns),
        count(Purpose::AllowRule),
        count(Purpose::Isolation),
        count(Purpose::Sample),
        count(Purpose::External)
    );
    let coverage = &plan.coverage;
    let _ = writeln!(
        out,
        "  coverage      {:.0}% ({} of {} policy rules exercised; {} of them can be)",
        coverage.ratio() * 100.0,
        coverage.covered.len(),
        coverage.rules,
        coverage.coverable()
    );
    for (rule, reason) in &coverage.uncovered {
        let _ = writeln!(out, "  {}     {rule}: {reason}", paint(style::WARNING, "uncovered"));
    }
    for note in &plan.notes {
        let _ = writeln!(out, "  {}          {note}", paint(style::WARNING, "note"));
    }
    out
}

pub fn json(plan: &Plan) -> serde_json::Value {
    let probes: Vec<serde_json::Value> = plan
        .probes
        .iter()
        .map(|p| {
            let to = match p.to {
                Destination::Mirror(m) => plan.mirrors[m].stands_for.clone(),
                Destination::Dns => "cluster-dns".into(),
                Destination::External(ip) => ip.to_string(),
            };
            serde_json::json!({
                "from": plan.mirrors[p.from].stands_for,
                "to": to,
                "port": p.port.port,
                "protocol": p.port.protocol.as_str(),
                "expectedAllowed": p.expected_allowed,
                "purpose": format!("{:?}", p.purpose),
                "covers": p.covers.iter().map(ToString::to_string).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({
        "probePods": plan.mirrors.len(),
        "probePodsStarted": plan.probe_pods(),
        "probes": probes,
        "coverage": {
            "ratio": plan.coverage.ratio(),
            "rules": plan.coverage.rules,
            "covered": plan.coverage.covered.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "coverable": plan.coverage.coverable(),
            "uncovered": plan.coverage.uncovered.iter().map(|(r, why)| serde_json::json!({"rule": r.to_string(), "why": why, "budget": plan.coverage.budget.contains(r)})).collect::<Vec<_>>(),
        },
        "notes": plan.notes,
    })
}
