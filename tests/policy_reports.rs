//! A run's PolicyReports on the real kube-apiserver (the fixture) with the Policy WG's CRDs
//! installed (stand-ins in `tests/crds/`), written as netcanary's ServiceAccount (so the
//! shipped RBAC must allow exactly this) and read back as the admin: one per namespace a
//! probe went into and one for the cluster, replaced by the next run, never accumulated,
//! and nobody else's report touched (nor may it be: RBAC names netcanary's own). Without the CRDs nothing is written and nothing fails;
//! reports that cannot be written are a warning of the run, in its NetcanaryRun's status too.
//!
//! Needs only the kube-apiserver fixture: see `tests/common/kube_fixture.rs` for how the
//! test skips or fails without it.

mod common;

use common::bed::{
    NETCANARY_SA, apply, install_netcanary, revoke_api_group, run_status, run_without_kubelet, wait_for_crd,
};
use common::kube_fixture::KubeFixture;
use common::read_repo_file;
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use netcanary_orchestrator::policy_report::publish;
use netcanary_verify::RunRecord;
use serde_json::{Value, json};

const CRDS: [&str; 2] = ["policyreports.wgpolicyk8s.io", "clusterpolicyreports.wgpolicyk8s.io"];

/// A probe of a run record, as `run -o json` prints it.
fn probe(from: (&str, &str), to: (&str, &str), port: u16, outcome: &str, expected: &str, observed: &str) -> Value {
    json!({
        "source": {"namespace": from.0, "workload": from.1},
        "destination": {"namespace": to.0, "workload": to.1},
        "port": port, "protocol": "TCP", "kind": "tcp", "purpose": "isolation",
        "expected": expected, "expectedBecause": "ingress isolated by prod/deny-all and no rule allows it",
        "observed": [observed], "millis": 1, "outcome": outcome,
    })
}

fn record(run_id: &str, probes: Vec<Value>, canary: Value) -> RunRecord {
    serde_json::from_value(json!({
        "runId": run_id, "startedAt": 100.0, "finishedAt": 104.0, "probes": probes,
        "coverage": null, "canary": canary, "problems": [],
    }))
    .expect("a run record")
}

fn reports(client: &kube::Client, kind: &str, plural: &str, namespace: Option<&str>) -> Api<DynamicObject> {
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("wgpolicyk8s.io", "v1alpha2", kind), plural);
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

/// (rule, result, severity, from -> to) of a report's results.
fn results(report: &DynamicObject) -> Vec<(String, String, String, String)> {
    let s = |v: &Value| v.as_str().unwrap_or("-").to_string();
    report.data["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            let path = format!("{} -> {}", s(&r["properties"]["from"]), s(&r["properties"]["to"]));
            (s(&r["rule"]), s(&r["result"]), s(&r["severity"]), path)
        })
        .collect()
}

fn row(rule: &str, result: &str, severity: &str, path: &str) -> (String, String, String, String) {
    (rule.into(), result.into(), severity.into(), path.into())
}

#[tokio::test]
async fn a_run_replaces_its_policy_reports() {
    let test = "a_run_replaces_its_policy_reports";
    let Some(kube) = KubeFixture::start_or_skip(test) else { return };
    let admin = kube.client().await;
    install_netcanary(&admin).await;
    let sa = kube.client_as(NETCANARY_SA).await;

    // Run A: dev/web reached prod/api although policy denies it; prod/api -> dev/db passed.
    let run_a = record(
        "run-a",
        vec![
            probe(("dev", "web"), ("prod", "api"), 8080, "unexpected_allow", "deny", "connected"),
            probe(("prod", "api"), ("dev", "db"), 5432, "pass", "allow", "connected"),
        ],
        json!({"state": "enforced"}),
    );
    assert!(!publish(&sa, &run_a).await.expect("no CRDs is not an error"), "no CRDs: nothing written");

    for crd in CRDS {
        apply(&admin, &read_repo_file(&format!("tests/crds/{crd}.yaml"))).await;
        wait_for_crd(&admin, crd).await;
    }
    apply(&admin, "apiVersion: v1\nkind: Namespace\nmetadata: {name: prod}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: dev}\n").await;
    // Another tool's report in dev, which netcanary must leave alone.
    apply(
        &admin,
        "apiVersion: wgpolicyk8s.io/v1alpha2\nkind: PolicyReport\nmetadata: {name: kyverno-polr, namespace: dev}\n\
         results: [{policy: require-labels, result: pass}]\n",
    )
    .await;

    assert!(publish(&sa, &run_a).await.expect("run A's reports written as netcanary's ServiceAccount"));
    let prod = reports(&admin, "PolicyReport", "policyreports", Some("prod")).get("netcanary").await.expect("prod's");
    assert_eq!(results(&prod), [row("isolation", "fail", "critical", "dev/web -> prod/api")]);
    assert_eq!(prod.data["summary"], json!({"pass": 0, "fail": 1, "warn": 0, "error": 0, "skip": 0}));
    assert_eq!(prod.metadata.labels.as_ref().unwrap()["app.kubernetes.io/managed-by"], "netcanary");
    let dev = reports(&admin, "PolicyReport", "policyreports", Some("dev")).get("netcanary").await.expect("dev's");
    assert_eq!(results(&dev), [row("isolation", "pass", "-", "prod/api -> dev/db")]);
    let cluster = reports(&admin, "ClusterPolicyReport", "clusterpolicyreports", None)
        .get("netcanary")
        .await
        .expect("the cluster's");
    assert_eq!(results(&cluster), [row("enforcement-canary", "pass", "-", "- -> -")]);

    // Run B probed only into prod, where nothing was wrong any more, and the canary connected.
    let run_b = record(
        "run-b",
        vec![probe(("dev", "web"), ("prod", "api"), 9000, "pass", "deny", "timeout")],
        json!({"state": "notEnforced"}),
    );
    assert!(publish(&sa, &run_b).await.expect("run B's reports written"));
    let prod = reports(&admin, "PolicyReport", "policyreports", Some("prod")).get("netcanary").await.expect("prod's");
    assert_eq!(results(&prod), [row("isolation", "pass", "-", "dev/web -> prod/api")], "replaced, not accumulated");
    assert_eq!(prod.data["results"][0]["properties"]["runId"], "run-b");
    let dev = reports(&admin, "PolicyReport", "policyreports", Some("dev"));
    let left = dev.get_opt("netcanary").await.expect("read dev's reports");
    assert!(left.is_none_or(|r| r.metadata.deletion_timestamp.is_some()), "dev was not probed: its report is gone");
    assert!(dev.get_opt("kyverno-polr").await.expect("read").is_some(), "another tool's report stays");
    let as_netcanary = reports(&sa, "PolicyReport", "policyreports", Some("dev"));
    match as_netcanary.delete("kyverno-polr", &Default::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "RBAC refuses: {status:?}"),
        other => panic!("netcanary may delete another tool's PolicyReport: {other:?}"),
    }
    let cluster = reports(&admin, "ClusterPolicyReport", "clusterpolicyreports", None)
        .get("netcanary")
        .await
        .expect("the cluster's");
    assert_eq!(results(&cluster), [row("enforcement-canary", "fail", "critical", "- -> -")]);
}

/// A cluster with the CRDs whose RBAC does not let netcanary write PolicyReports (installed
/// before they were): the run says so in its warnings, and so does its NetcanaryRun.
#[tokio::test]
async fn reports_that_cannot_be_written_are_a_warning_in_the_run_record() {
    let test = "reports_that_cannot_be_written_are_a_warning_in_the_run_record";
    let Some(kube) = KubeFixture::start_or_skip(test) else { return };
    let admin = kube.client().await;
    install_netcanary(&admin).await;
    for crd in CRDS {
        apply(&admin, &read_repo_file(&format!("tests/crds/{crd}.yaml"))).await;
        wait_for_crd(&admin, crd).await;
    }
    let revoked = revoke_api_group(&admin, "wgpolicyk8s.io").await;
    assert_eq!(revoked, 2, "the shipped role grants PolicyReports in two rules");

    let ran = run_without_kubelet(&kube.kubeconfig_as(NETCANARY_SA), &[]);
    let want = "the run's PolicyReports were not written: kubernetes API: apply ClusterPolicyReport netcanary: ";
    assert!(
        ran.warnings.iter().any(|w| w.starts_with(want) && w.contains("forbidden")),
        "want a warning {want:?}...forbidden, got {:?}",
        ran.warnings
    );
    assert_eq!(run_status(&admin, &ran.run_id).await["warnings"], json!(ran.warnings), "in the NetcanaryRun's status");
}
