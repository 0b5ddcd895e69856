//! What a run would do (`run --dry-run`): the probe pods, the probes by purpose, and which
//! policy rules they exercise or why not.

use std::collections::BTreeMap;
use std::fmt::Write;

use netcanary_planner::{Destination, Plan, ProbePath, Purpose, WallTime};

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
    write_wall_time(&mut out, &plan.wall_time);
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

/// What the probing takes at worst, and the whole run: the round time is what the budget
/// bounds, the whole run is what the deadline must cover.
fn write_wall_time(out: &mut String, time: &WallTime) {
    if time.busiest_source == 0 {
        let _ = writeln!(out, "  wall time     no probes to wait for");
        return;
    }
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let _ = writeln!(
        out,
        "  wall time     probing at most {} a round: the busiest probe pod sends {}, {} of up to {} in flight, each up to {}",
        humantime::format_duration(time.round_probing),
        plural(time.busiest_source, "probe", "probes"),
        plural(time.waves, "wave", "waves"),
        time.concurrency,
        humantime::format_duration(time.longest_probe),
    );
    let whole = format!(
        "the whole run at most {} (every pod taking its whole start-up timeout, every probe timing out, every round); deadline {}",
        humantime::format_duration(time.worst_case),
        humantime::format_duration(time.deadline),
    );
    let whole = if time.exceeds_deadline() { paint(style::WARNING, &whole) } else { whole };
    let _ = writeln!(out, "                {whole}");
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
        "wallTime": {
            "concurrency": plan.wall_time.concurrency,
            "busiestProbePodProbes": plan.wall_time.busiest_source,
            "waves": plan.wall_time.waves,
            "longestProbeSeconds": plan.wall_time.longest_probe.as_secs_f64(),
            "roundProbingSeconds": plan.wall_time.round_probing.as_secs_f64(),
            "worstCaseSeconds": plan.wall_time.worst_case.as_secs_f64(),
            "deadlineSeconds": plan.wall_time.deadline.as_secs_f64(),
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
        netcanary_planner::paths::by_paths(
            &mut plan,
            &[ProbePath::Pod, ProbePath::Service, ProbePath::Dns],
            &Default::default(),
        );
        let text = table(&plan);
        assert!(text.contains("  paths         to target pods: 1 by pod, 1 by service, 1 by dns"), "{text}");
        let json = json(&plan);
        let paths: Vec<&str> = json["probes"].as_array().unwrap().iter().map(|p| p["path"].as_str().unwrap()).collect();
        assert_eq!(paths, ["pod", "service", "dns"]);
    }

    #[test]
    fn the_plan_shows_its_wall_time_and_a_deadline_it_could_miss() {
        let second = std::time::Duration::from_secs(1);
        let mut time = WallTime {
            concurrency: 4096,
            busiest_source: 37,
            waves: 1,
            longest_probe: 2 * second,
            round_probing: 2 * second,
            worst_case: 496 * second,
            deadline: 600 * second,
        };
        let plan = Plan { wall_time: time.clone(), ..Plan::default() };
        let text = table(&plan);
        assert!(
            text.contains(
                "  wall time     probing at most 2s a round: the busiest probe pod sends 37 probes, 1 wave of up to 4096 in flight, each up to 2s\n                the whole run at most 8m 16s (every pod"
            ),
            "{text}"
        );
        assert!(text.contains("every round); deadline 10m\n"), "{text}");
        assert_eq!(json(&plan)["wallTime"]["roundProbingSeconds"], 2.0);
        assert_eq!(json(&plan)["wallTime"]["worstCaseSeconds"], 496.0);
        time.deadline = 300 * second;
        assert!(time.exceeds_deadline());
        assert!(table(&Plan::default()).contains("  wall time     no probes to wait for"));
    }
}
