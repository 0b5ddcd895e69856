//! Results as PolicyReports (`wgpolicyk8s.io/v1alpha2`, the Kubernetes Policy WG's
//! format), where people already look: Kyverno's Policy Reporter shows them beside
//! admission results and alerts on them. A run's: one `PolicyReport` named `netcanary` per
//! namespace that a probe went into, and one `ClusterPolicyReport` for what concerns the
//! cluster (the enforcement canary, what kept the run from verifying everything). `lint`'s
//! on a cluster are rendered by `netcanary-lint` and named `netcanary-lint`.
//!
//! Each publication replaces the last of its name (server-side apply of the whole report,
//! and that name's reports in namespaces it no longer covers are deleted): they hold the
//! last run, never a history. A cluster without the CRDs gets none, silently.

use std::collections::{BTreeMap, BTreeSet};

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, ResourceExt};
use netcanary_planner::mirror::{MANAGED_BY_KEY, MANAGED_BY_VALUE};
use netcanary_verify::{Canary, Outcome, ProbeRecord, RunRecord};
use netcanary_wire::Reachability;
use serde_json::{Value, json};
use tracing::{debug, info};

use crate::error::{Error, KubeContext};

/// The name of a run's reports.
pub const REPORT_NAME: &str = "netcanary";
const GROUP: &str = "wgpolicyk8s.io";
const VERSION: &str = "v1alpha2";

/// One report to write: namespaced, or the cluster's (`namespace` `None`). Its name and
/// labels are given when it is published.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub namespace: Option<String>,
    pub object: Value,
}

impl Report {
    /// A report of `results` (PolicyReport result objects) with their summary: a
    /// PolicyReport in `namespace`, or the ClusterPolicyReport.
    pub fn new(namespace: Option<String>, results: Vec<Value>) -> Self {
        let mut summary = BTreeMap::from([("pass", 0), ("fail", 0), ("warn", 0), ("error", 0), ("skip", 0)]);
        for r in &results {
            if let Some(count) = r["result"].as_str().and_then(|k| summary.get_mut(k)) {
                *count += 1;
            }
        }
        let kind = if namespace.is_some() { "PolicyReport" } else { "ClusterPolicyReport" };
        let mut metadata = json!({});
        if let Some(namespace) = &namespace {
            metadata["namespace"] = json!(namespace);
        }
        let object = json!({
            "apiVersion": format!("{GROUP}/{VERSION}"),
            "kind": kind,
            "metadata": metadata,
            "summary": summary,
            "results": results,
        });
        Report { namespace, object }
    }
}

/// The reports of a run: each probe in the report of its destination's namespace (its
/// source's, for an address outside the cluster), and the canary and the run's problems
/// in the cluster's. Results are ordered as the record's probes.
pub fn reports(record: &RunRecord) -> Vec<Report> {
    let mut by_namespace: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for probe in &record.probes {
        let namespace =
            if probe.destination.namespace.is_empty() { &probe.source.namespace } else { &probe.destination.namespace };
        by_namespace.entry(namespace.as_str()).or_default().push(probe_result(record, probe));
    }
    let mut reports: Vec<Report> = by_namespace
        .into_iter()
        .map(|(namespace, results)| Report::new(Some(namespace.to_string()), results))
        .collect();
    let mut cluster = vec![canary_result(record)];
    cluster.extend(
        record
            .problems
            .iter()
            .map(|problem| result(record, "run", "error", Some("medium"), problem.clone(), BTreeMap::new())),
    );
    reports.push(Report::new(None, cluster));
    reports
}

/// A report's result: `policy` is netcanary, `rule` what the probe was for.
fn result(
    record: &RunRecord,
    rule: &str,
    outcome: &str,
    severity: Option<&str>,
    message: String,
    mut properties: BTreeMap<&str, String>,
) -> Value {
    properties.insert("runId", record.run_id.clone());
    let mut value = json!({
        "policy": "netcanary",
        "rule": rule,
        "category": "NetworkPolicy",
        "source": "netcanary",
        "result": outcome,
        "scored": true,
        "message": message,
        "timestamp": {"seconds": record.finished_at as i64, "nanos": 0},
        "properties": properties,
    });
    if let Some(severity) = severity {
        value["severity"] = json!(severity);
    }
    value
}

/// How a probe's outcome reads in a report: PolicyReport's result and severity.
fn graded(probe: &ProbeRecord) -> (&'static str, Option<&'static str>) {
    match probe.outcome {
        Outcome::Pass => ("pass", None),
        Outcome::UnexpectedAllow => ("fail", Some("critical")),
        Outcome::IntentViolation
            if probe.observed.last().is_some_and(|o| o.reachability() == Reachability::Reachable) =>
        {
            ("fail", Some("critical"))
        }
        Outcome::IntentViolation | Outcome::UnexpectedDeny => ("fail", Some("high")),
        Outcome::Converging => ("warn", Some("medium")),
        Outcome::Inconclusive => ("error", Some("low")),
    }
}

fn probe_result(record: &RunRecord, probe: &ProbeRecord) -> Value {
    let (outcome, severity) = graded(probe);
    let observed: Vec<&str> = probe.observed.iter().map(|o| o.as_str()).collect();
    let observed = if observed.is_empty() { "-".to_string() } else { observed.join(", ") };
    let why = probe.detail.clone().unwrap_or_else(|| probe.expected_because.clone());
    let message = format!(
        "{} -> {} {}/{}: {}; policy says {}, observed {observed} ({why})",
        probe.source,
        probe.destination,
        probe.port,
        probe.protocol,
        probe.outcome.as_str(),
        probe.expected
    );
    let mut properties = BTreeMap::from([
        ("from", probe.source.to_string()),
        ("to", probe.destination.to_string()),
        ("port", probe.port.to_string()),
        ("protocol", probe.protocol.clone()),
        ("expected", probe.expected.to_string()),
        ("observed", observed),
        ("outcome", probe.outcome.as_str().to_string()),
    ]);
    if let Some(intent) = &probe.intent {
        properties.insert("intent", format!("{} ({})", intent.statement, intent.expect));
    }
    result(record, &probe.purpose, outcome, severity, message, properties)
}

fn canary_result(record: &RunRecord) -> Value {
    let (outcome, severity, message) = match &record.canary {
        Canary::Enforced => ("pass", None, "the enforcement canary was blocked as policy says".to_string()),
        Canary::NotEnforced => (
            "fail",
            Some("critical"),
            "the enforcement canary connected although policy denies it: this network enforces no NetworkPolicy"
                .to_string(),
        ),
        Canary::Unknown(reason) => {
            ("error", Some("medium"), format!("the enforcement canary could not be judged: {reason}"))
        }
    };
    result(record, "enforcement-canary", outcome, severity, message, BTreeMap::new())
}

fn api(client: &Client, kind: &str, plural: &str, namespace: Option<&str>) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, VERSION, kind), plural);
    match namespace {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

/// Writes a run's reports, replacing the last run's, and deletes its PolicyReports in
/// namespaces this run did not report on. Returns whether the cluster has the CRDs.
pub async fn publish(client: &Client, record: &RunRecord) -> Result<bool, Error> {
    publish_named(client, REPORT_NAME, reports(record)).await
}

/// Writes `reports`, each named `name`, and deletes the PolicyReports of that name in the
/// namespaces `reports` leaves out. Returns whether the cluster has the CRDs.
pub async fn publish_named(client: &Client, name: &str, reports: Vec<Report>) -> Result<bool, Error> {
    let params = PatchParams::apply("netcanary").force();
    let mut written = BTreeSet::new();
    for mut report in reports {
        report.object["metadata"]["name"] = json!(name);
        report.object["metadata"]["labels"] = json!({MANAGED_BY_KEY: MANAGED_BY_VALUE});
        let (kind, plural) = match report.namespace {
            Some(_) => ("PolicyReport", "policyreports"),
            None => ("ClusterPolicyReport", "clusterpolicyreports"),
        };
        let api = api(client, kind, plural, report.namespace.as_deref());
        match api.patch(name, &params, &Patch::Apply(&report.object)).await {
            Err(kube::Error::Api(status)) if status.code == 404 => {
                debug!(kind, "no PolicyReport CRDs: no reports written");
                return Ok(false);
            }
            result => {
                result.context(format!("apply {kind} {name}"))?;
            }
        }
        written.extend(report.namespace);
    }
    let labelled = ListParams::default()
        .labels(&format!("{MANAGED_BY_KEY}={MANAGED_BY_VALUE}"))
        .fields(&format!("metadata.name={name}"));
    let stale = api(client, "PolicyReport", "policyreports", None)
        .list_metadata(&labelled)
        .await
        .context("list netcanary's PolicyReports")?;
    for old in stale.items {
        let Some(namespace) = old.namespace().filter(|ns| !written.contains(ns)) else { continue };
        api(client, "PolicyReport", "policyreports", Some(&namespace))
            .delete(&old.name_any(), &DeleteParams::default())
            .await
            .context(format!("delete the PolicyReport of namespace {namespace}, which this run did not probe"))?;
    }
    info!(name, namespaces = written.len(), "PolicyReports written");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use netcanary_verify::record::Observed;
    use netcanary_verify::sample::{self, probe};
    use netcanary_verify::{Expectation, IntentRef, WorkloadRef};

    use super::*;

    /// dev/api -> prod/db passes, prod/db -> dev/web connects although policy denies it,
    /// dev/api -> 1.1.1.1 is inconclusive, and one problem.
    fn record() -> RunRecord {
        let to_dev = ProbeRecord {
            source: WorkloadRef { namespace: "prod".into(), workload: "db".into() },
            destination: WorkloadRef { namespace: "dev".into(), workload: "web".into() },
            ..probe(Outcome::UnexpectedAllow, false, Observed::Connected)
        };
        let outside = ProbeRecord {
            destination: WorkloadRef { namespace: String::new(), workload: "1.1.1.1".into() },
            detail: Some("the probe pod never ran".into()),
            ..probe(Outcome::Inconclusive, true, Observed::Error)
        };
        let mut run =
            sample::run(vec![probe(Outcome::Pass, true, Observed::Connected), to_dev, outside], Canary::Enforced);
        run.problems = vec!["a probe pod never started".into()];
        run
    }

    fn results(report: &Report) -> Vec<(&str, &str, Option<&str>)> {
        report.object["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["rule"].as_str().unwrap(), r["result"].as_str().unwrap(), r["severity"].as_str()))
            .collect()
    }

    #[test]
    fn one_report_per_namespace_probed_into_and_one_for_the_cluster() {
        let reports = reports(&record());
        let namespaces: Vec<Option<&str>> = reports.iter().map(|r| r.namespace.as_deref()).collect();
        assert_eq!(namespaces, [Some("dev"), Some("prod"), None], "an address outside: its source's namespace");
        assert_eq!(
            results(&reports[0]),
            [("isolation", "fail", Some("critical")), ("isolation", "error", Some("low"))]
        );
        assert_eq!(results(&reports[1]), [("isolation", "pass", None)]);
        assert_eq!(results(&reports[2]), [("enforcement-canary", "pass", None), ("run", "error", Some("medium"))]);
        let dev = &reports[0].object;
        assert_eq!(dev["kind"], "PolicyReport");
        assert_eq!(dev["metadata"]["namespace"], "dev");
        assert_eq!(dev["summary"], json!({"pass": 0, "fail": 1, "warn": 0, "error": 1, "skip": 0}));
        assert_eq!(
            dev["results"][0]["message"],
            "prod/db -> dev/web 5432/TCP: unexpected_allow; policy says deny, observed connected \
             (ingress isolated by prod/deny-all and no rule allows it)"
        );
        assert_eq!(dev["results"][0]["properties"]["runId"], "r");
        assert_eq!(dev["results"][0]["timestamp"], json!({"seconds": 104, "nanos": 0}));
        assert_eq!(reports[2].object["kind"], "ClusterPolicyReport");
        assert!(reports[2].object["metadata"].get("namespace").is_none());
    }

    #[test]
    fn an_intent_violation_names_its_statement_and_grades_by_what_the_network_did() {
        let intent = |expect| Some(IntentRef { statement: "isolation/s".into(), expect });
        let connected = ProbeRecord {
            intent: intent(Expectation::Deny),
            ..probe(Outcome::IntentViolation, true, Observed::Connected)
        };
        let blocked = ProbeRecord {
            intent: intent(Expectation::Allow),
            ..probe(Outcome::IntentViolation, false, Observed::Timeout)
        };
        let reports = reports(&sample::run(vec![connected, blocked], Canary::NotEnforced));
        assert_eq!(
            results(&reports[0]),
            [("isolation", "fail", Some("critical")), ("isolation", "fail", Some("high"))]
        );
        assert_eq!(reports[0].object["results"][0]["properties"]["intent"], "isolation/s (deny)");
        assert_eq!(results(&reports[1]), [("enforcement-canary", "fail", Some("critical"))]);
    }
}
