//! What a run would do (`run --dry-run`): the probe pods, the probes by purpose, and which
//! policy rules they exercise or why not.

use std::collections::BTreeMap;
use std::fmt::Write;

use netcanary_planner::{Destination, Plan, ProbePath, Purpose};

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
        "  probes        {}: {} dns, {} allow-rule, {} isolation, {} sampled, {} outside the cluster, {} for intent",
        plan.probes.len(),
        count(Purpose::Dns),
        count(Purpose::AllowRule),
        count(Purpose::Isolation),
        count(Purpose::Sample),
        count(Purpose::External),
        count(Purpose::Intent)
    );
    let mut by_path: BTreeMap<ProbePath, usize> = BTreeMap::new();
    for probe in plan.probes.iter().filter(|p| matches!(p.to, Destination::Mirror(_))) {
        *by_path.entry(probe.path).or_default() += 1;
    }
    if by_path.keys().any(|path| path.needs_service()) {
        let counts: Vec<String> = by_path.iter().map(|(path, n)| format!("{n} by {path}")).collect();
        let _ = writeln!(out, "  paths         to target pods: {}", counts.join(", "));
    }
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
    for unverified in &plan.unverified_intent {
        let _ = writeln!(out, "  {}    {unverified}", paint(style::WARNING, "unverified"));
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
                "path": p.path.as_str(),
                "covers": p.covers.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "intent": p.intent.as_ref().map(|i| serde_json::json!({"statement": i.statement, "expect": i.expect.as_str()})),
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
        "unverifiedIntent": plan.unverified_intent,
    })
}

#[cfg(test)]
mod tests {
    use netcanary_planner::{IntentMark, Mirror, PlannedProbe, ProbePath};
    use netcanary_policy::intent::Expect;
    use netcanary_policy::{PortProto, Protocol};

    use super::*;

    fn mirror(name: &str) -> Mirror {
        Mirror {
            class: 0,
            namespace: "shop".into(),
            labels: Default::default(),
            dropped_labels: Vec::new(),
            stands_for: format!("shop/{name}-0"),
            workload: name.into(),
            members: 1,
            listen: Default::default(),
            port_names: Default::default(),
        }
    }

    #[test]
    fn intent_probes_and_unverified_statements_are_shown() {
        let plan = Plan {
            mirrors: vec![mirror("web"), mirror("db")],
            probes: vec![PlannedProbe {
                from: 0,
                to: Destination::Mirror(1),
                port: "5432/TCP".parse().unwrap(),
                expected_allowed: true,
                purpose: Purpose::Intent,
                covers: Vec::new(),
                path: ProbePath::Pod,
                intent: Some(IntentMark { statement: "isolation/web-never-db".into(), expect: Expect::Deny }),
            }],
            unverified_intent: vec![
                "intent isolation/nobody is not verified: `from` selects no pod this run probes".into(),
            ],
            ..Plan::default()
        };
        let text = table(&plan);
        assert!(
            text.contains("1: 0 dns, 0 allow-rule, 0 isolation, 0 sampled, 0 outside the cluster, 1 for intent"),
            "{text}"
        );
        assert!(text.contains("intent isolation/nobody is not verified"), "{text}");
        let doc = json(&plan);
        assert_eq!(
            doc["probes"][0]["intent"],
            serde_json::json!({"statement": "isolation/web-never-db", "expect": "deny"})
        );
        assert_eq!(
            doc["unverifiedIntent"][0],
            "intent isolation/nobody is not verified: `from` selects no pod this run probes"
        );
    }

    #[test]
    fn the_plan_counts_probes_by_path_when_services_are_asked_for() {
        let probe = PlannedProbe {
            from: 0,
            to: Destination::Mirror(1),
            port: PortProto { port: 8080, protocol: Protocol::Tcp },
            expected_allowed: true,
            purpose: Purpose::AllowRule,
            covers: Vec::new(),
            path: ProbePath::Pod,
            intent: None,
        };
        let mut plan = Plan { mirrors: vec![mirror("web"), mirror("api")], probes: vec![probe], ..Plan::default() };
        assert!(!table(&plan).contains("paths"), "{}", table(&plan));
        netcanary_planner::paths::by_paths(&mut plan, &[ProbePath::Pod, ProbePath::Service, ProbePath::Dns]);
        let text = table(&plan);
        assert!(text.contains("  paths         to target pods: 1 by pod, 1 by service, 1 by dns"), "{text}");
        let json = json(&plan);
        let paths: Vec<&str> = json["probes"].as_array().unwrap().iter().map(|p| p["path"].as_str().unwrap()).collect();
        assert_eq!(paths, ["pod", "service", "dns"]);
    }
}
