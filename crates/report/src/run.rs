//! The report of a verification run: a table for people (mismatches first, with why policy
//! expected otherwise), the run record as JSON for scripts, and JUnit XML for CI systems.

use std::fmt::Write;

use netcanary_verify::{Canary, Outcome, ProbePath, ProbeRecord, RunRecord};

use crate::style::{self, paint};

/// The table for a terminal.
pub fn table(run: &RunRecord) -> String {
    let mut out = String::new();
    let counts = run.counts();
    let count = |o: Outcome| counts.get(&o).copied().unwrap_or(0);
    let verdict = match run.exit_code() {
        0 => paint(style::ALLOWED, "PASS"),
        1 => paint(style::DENIED, "MISMATCH"),
        _ => paint(style::WARNING, "INCONCLUSIVE"),
    };
    let _ = writeln!(
        out,
        "{} run {} in {:.1} s ({:.1} s of it the controller's own; the rest pods, probes, rounds): {verdict}",
        paint(style::HEADING, "netcanary"),
        run.run_id,
        run.duration_seconds(),
        run.controller_overhead_seconds()
    );
    let canary = match &run.canary {
        Canary::Enforced => paint(style::ALLOWED, "enforced (the canary was blocked as policy says)"),
        Canary::NotEnforced => paint(
            style::DENIED,
            "NOT ENFORCED: the canary connected although policy denies it; this network enforces no NetworkPolicy at all",
        ),
        Canary::Unknown(reason) => paint(style::WARNING, &format!("unknown ({reason})")),
    };
    let _ = writeln!(out, "  enforcement   {canary}");
    let _ = writeln!(
        out,
        "  probes        {} pass, {} unexpected allow, {} unexpected deny, {} converging, {} inconclusive, {} intent violation",
        count(Outcome::Pass),
        count(Outcome::UnexpectedAllow),
        count(Outcome::UnexpectedDeny),
        count(Outcome::Converging),
        count(Outcome::Inconclusive),
        count(Outcome::IntentViolation)
    );
    let coverage = match run.coverage {
        Some(c) => format!(
            "{:.0}% of policy rules exercised by probes that answered ({} of {}); {:.0}% planned ({})",
            c.exercised_ratio() * 100.0,
            c.exercised,
            c.rules,
            c.planned_ratio() * 100.0,
            c.planned
        ),
        None => "unknown: the run ended before it planned".into(),
    };
    let _ = writeln!(out, "  coverage      {coverage}");
    for problem in &run.problems {
        let _ = writeln!(out, "  {}       {problem}", paint(style::WARNING, "problem"));
    }
    for warning in &run.warnings {
        let _ = writeln!(out, "  {}       {warning}", paint(style::WARNING, "warning"));
    }
    let mut shown: Vec<&ProbeRecord> = run.probes.iter().collect();
    shown.sort_by_key(|p| (rank(p.outcome), p.source.clone(), p.destination.clone(), p.port, p.path));
    let rows: Vec<[String; 6]> = shown
        .iter()
        .map(|p| {
            [
                p.outcome.as_str().to_string(),
                p.source.to_string(),
                p.destination.to_string(),
                port_and_path(p),
                format!("{} / {}", p.expected, observed(p)),
                p.detail.clone().unwrap_or_else(|| p.expected_because.clone()),
            ]
        })
        .collect();
    let headers = ["RESULT", "FROM", "TO", "PORT", "EXPECTED / OBSERVED", "WHY"];
    let mut widths = headers.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let _ = writeln!(out);
    let line = |cells: [&str; 6]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            text.push_str(cell);
            if i + 1 < cells.len() {
                text.push_str(&" ".repeat(pad + 2));
            }
        }
        text
    };
    let _ = writeln!(out, "{}", paint(style::HEADING, &line(headers)));
    for (row, probe) in rows.iter().zip(&shown) {
        let text = line([&row[0], &row[1], &row[2], &row[3], &row[4], &row[5]]);
        let styled = match probe.outcome {
            Outcome::Pass => text,
            Outcome::UnexpectedAllow | Outcome::UnexpectedDeny | Outcome::IntentViolation => {
                paint(style::DENIED, &text)
            }
            Outcome::Converging | Outcome::Inconclusive => paint(style::WARNING, &text),
        };
        let _ = writeln!(out, "{styled}");
    }
    out
}

/// The port, with how the probe got there when not by the pod's own address: `53/UDP dns`
/// for a DNS query, `8080/TCP via service` or `via dns` for a Service's ClusterIP or name.
fn port_and_path(p: &ProbeRecord) -> String {
    let kind = if p.kind == "dns" { " dns" } else { "" };
    format!("{}/{}{kind}{}", p.port, p.protocol, via(p))
}

/// ` via service` or ` via dns` for a probe to a target pod through a Service; empty else
/// (a DNS query always goes to its Service, and says so by its kind).
fn via(p: &ProbeRecord) -> String {
    if p.path == ProbePath::Pod || p.kind == "dns" { String::new() } else { format!(" via {}", p.path) }
}

/// Intent violations and mismatches first, then what could not be judged, then the rest.
fn rank(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::IntentViolation => 0,
        Outcome::UnexpectedAllow => 1,
        Outcome::UnexpectedDeny => 2,
        Outcome::Inconclusive => 3,
        Outcome::Converging => 4,
        Outcome::Pass => 5,
    }
}

/// Every round's observation: `timeout, timeout, connected`.
fn observed(probe: &ProbeRecord) -> String {
    if probe.observed.is_empty() {
        return "-".into();
    }
    probe.observed.iter().map(|o| o.as_str()).collect::<Vec<_>>().join(", ")
}

/// JUnit XML: one test case per probe; a mismatch or an intent violation is a failure
/// (typed by its result), an inconclusive probe an error, so CI systems show both and
/// never count them as passed.
pub fn junit(run: &RunRecord) -> String {
    let counts = run.counts();
    let count = |o: Outcome| counts.get(&o).copied().unwrap_or(0);
    let failures = count(Outcome::UnexpectedAllow)
        + count(Outcome::UnexpectedDeny)
        + count(Outcome::IntentViolation)
        + usize::from(run.canary == Canary::NotEnforced);
    let errors = count(Outcome::Inconclusive);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuite name=\"netcanary\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{:.3}\" id=\"{}\">",
        run.probes.len() + 1,
        run.duration_seconds(),
        xml(&run.run_id)
    );
    let _ = write!(out, "  <testcase classname=\"netcanary.canary\" name=\"the network enforces NetworkPolicy\">");
    match &run.canary {
        Canary::Enforced => {}
        Canary::NotEnforced => out.push_str(
            "<failure message=\"the enforcement canary connected: this network enforces no NetworkPolicy\"/>",
        ),
        Canary::Unknown(reason) => {
            let _ = write!(out, "<skipped message=\"{}\"/>", xml(reason));
        }
    }
    out.push_str("</testcase>\n");
    for probe in &run.probes {
        let name = format!(
            "{} -> {} {}/{} ({}){}",
            probe.source,
            probe.destination,
            probe.port,
            probe.protocol,
            probe.kind,
            via(probe)
        );
        let _ = write!(out, "  <testcase classname=\"netcanary.{}\" name=\"{}\">", xml(&probe.purpose), xml(&name));
        let mut message =
            format!("policy says {} ({}); observed {}", probe.expected, probe.expected_because, observed(probe));
        if let Some(intent) = &probe.intent {
            message = format!("intent {} says {}; {message}", intent.statement, intent.expect);
        }
        match probe.outcome {
            Outcome::Pass | Outcome::Converging => {}
            Outcome::UnexpectedAllow | Outcome::UnexpectedDeny | Outcome::IntentViolation => {
                let _ = write!(out, "<failure type=\"{}\" message=\"{}\"/>", probe.outcome.as_str(), xml(&message));
            }
            Outcome::Inconclusive => {
                let detail = probe.detail.clone().unwrap_or_default();
                let _ = write!(out, "<error type=\"inconclusive\" message=\"{}\"/>", xml(&detail));
            }
        }
        out.push_str("</testcase>\n");
    }
    out.push_str("</testsuite>\n");
    out
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use netcanary_verify::Expectation;
    use netcanary_verify::record::Observed;
    use netcanary_verify::sample::{self, probe};

    use super::*;

    fn run() -> RunRecord {
        let probes = vec![
            probe(Outcome::Pass, true, Observed::Connected),
            probe(Outcome::UnexpectedAllow, false, Observed::Connected),
            ProbeRecord {
                detail: Some("the probe pod never ran: <oops>".into()),
                ..probe(Outcome::Inconclusive, true, Observed::Error)
            },
        ];
        sample::run(probes, Canary::NotEnforced)
    }

    #[test]
    fn table_puts_mismatches_first_and_says_why() {
        let text = table(&run());
        assert!(text.contains("MISMATCH"));
        assert!(text.contains("NOT ENFORCED"));
        assert!(text.contains(
            "1 pass, 1 unexpected allow, 0 unexpected deny, 0 converging, 1 inconclusive, 0 intent violation"
        ));
        let rows: Vec<&str> = text.lines().skip_while(|l| !l.contains("RESULT")).skip(1).collect();
        assert!(rows[0].contains("unexpected_allow") && rows[0].contains("deny / connected"), "{text}");
        assert!(rows[0].contains("ingress isolated by prod/deny-all"));
        assert!(rows[1].contains("inconclusive") && rows[1].contains("never ran"));
        assert!(
            text.contains(
                "coverage      75% of policy rules exercised by probes that answered (3 of 4); 100% planned (4)"
            ),
            "{text}"
        );
    }

    #[test]
    fn an_unknown_expectation_is_shown_as_such() {
        let probes = vec![sample::expected_probe(Outcome::Inconclusive, Expectation::Unknown, Observed::Error)];
        let text = table(&sample::run(probes, Canary::Enforced));
        assert!(text.contains("unknown / error"), "{text}");
        let mut unplanned = sample::run(Vec::new(), Canary::Enforced);
        unplanned.coverage = None;
        assert!(table(&unplanned).contains("coverage      unknown: the run ended before it planned"));
    }

    #[test]
    fn the_table_names_the_path_of_a_probe_through_a_service() {
        let probes = vec![
            ProbeRecord { path: ProbePath::Service, ..probe(Outcome::Pass, false, Observed::Timeout) },
            ProbeRecord { path: ProbePath::Dns, ..probe(Outcome::Pass, false, Observed::Timeout) },
            probe(Outcome::Pass, false, Observed::Timeout),
        ];
        let text = table(&sample::run(probes, Canary::Enforced));
        let rows: Vec<&str> = text.lines().skip_while(|l| !l.contains("RESULT")).skip(1).collect();
        assert!(rows[0].contains("5432/TCP ") && !rows[0].contains("via"), "{text}");
        assert!(rows[1].contains("5432/TCP via service"), "{text}");
        assert!(rows[2].contains("5432/TCP via dns"), "{text}");
    }

    #[test]
    fn table_shows_warnings() {
        let run = RunRecord { warnings: vec!["the fence is not in place".into()], ..run() };
        let text = table(&run);
        assert!(
            text.contains(&format!("{}       the fence is not in place", paint(style::WARNING, "warning"))),
            "{text}"
        );
    }

    /// Policy allows dev/api to prod/db, the network lets it through, and intent forbids it.
    fn intent_violation() -> ProbeRecord {
        ProbeRecord {
            intent: Some(netcanary_verify::IntentRef {
                statement: "isolation/dev-never-db".into(),
                expect: Expectation::Deny,
            }),
            detail: Some("intent isolation/dev-never-db says deny, and the network let it through".into()),
            ..probe(Outcome::IntentViolation, true, Observed::Connected)
        }
    }

    #[test]
    fn intent_violations_come_first_and_fail_in_junit() {
        let mut run = run();
        run.probes.push(intent_violation());
        let text = table(&run);
        assert!(text.contains("1 inconclusive, 1 intent violation"), "{text}");
        let rows: Vec<&str> = text.lines().skip_while(|l| !l.contains("RESULT")).skip(1).collect();
        assert!(rows[0].contains("intent_violation") && rows[0].contains("allow / connected"), "{text}");
        assert!(rows[0].contains("intent isolation/dev-never-db says deny, and the network let it through"), "{text}");
        let xml = junit(&run);
        assert!(xml.contains("tests=\"5\" failures=\"3\" errors=\"1\""), "{xml}");
        assert!(
            xml.contains("<failure type=\"intent_violation\" message=\"intent isolation/dev-never-db says deny; policy says allow"),
            "{xml}"
        );
    }

    #[test]
    fn junit_counts_failures_and_errors_and_escapes() {
        let xml = junit(&run());
        assert!(xml.contains("tests=\"4\" failures=\"2\" errors=\"1\""), "{xml}");
        assert!(xml.contains("<failure type=\"unexpected_allow\""));
        assert!(xml.contains("never ran: &lt;oops&gt;"));
        assert!(xml.contains("name=\"dev/api -&gt; prod/db 5432/TCP (tcp)\""));
    }
}
