//! Declared intent in `netcanary run`, end to end on the bed of `tests/common/bed.rs`: a
//! `NetcanaryIntent` in the cluster and an intent file given with `--intent`, a network
//! that enforces exactly the bed's policies, and a path the policies allow that intent
//! forbids. The expectations are written by hand from the bed's policies and the intent
//! below, never computed by netcanary's engine.
//!
//! Needs root, network namespaces and the kube-apiserver fixture: see
//! `tests/common/netns.rs` and `tests/common/kube_fixture.rs` for how a test skips or fails
//! without them.

mod common;

use common::bed::{Bed, ISOLATION_INTENT, apply, enforcing_rules, summary, wait_for_crd};
use common::read_repo_file;
use common::scratch::ScratchDir;
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use netcanary_verify::{Canary, Expectation, Outcome, ProbeRecord};

/// Given with `--intent`: every pod reaches the DNS pods on 53/UDP (nothing isolates
/// kube-system or anyone's egress: it holds), and a statement whose `from` selects no
/// namespace of the bed (none is labelled env=qa).
const FILE_INTENT: &str = r#"
apiVersion: netcanary.io/v1alpha1
kind: NetcanaryIntent
metadata: {name: file-intent}
spec:
  statements:
    - name: dns
      from: {}
      to:
        namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}
        podSelector: {matchLabels: {k8s-app: kube-dns}}
      ports: [{port: 53, protocol: UDP}]
      expect: allow
    - name: nobody
      from: {namespaceSelector: {matchLabels: {env: qa}}}
      to: {}
      ports: [{port: 80}]
      expect: deny
"#;

/// The statement a probe falls under, by hand: dev to prod on 8080/TCP is `isolation`'s;
/// anything to kube-system on 53/UDP (the DNS Service, or the DNS pods' probe pod) is the
/// file's `dns`; nothing else is any statement's.
fn statement_of(p: &ProbeRecord) -> Option<(&'static str, Expectation)> {
    let cell = (p.source.namespace.as_str(), p.destination.namespace.as_str(), p.port, p.protocol.as_str());
    match cell {
        ("dev", "prod", 8080, "TCP") => Some(("isolation/dev-never-reaches-prod-api", Expectation::Deny)),
        (_, "kube-system", 53, "UDP") => Some(("file-intent/dns", Expectation::Allow)),
        _ => None,
    }
}

/// The network enforces the bed's policies, so every probe passes against policy; the one
/// path intent forbids and policy allows connects: an intent violation.
fn want(p: &ProbeRecord) -> Outcome {
    match statement_of(p) {
        Some((_, Expectation::Deny)) => Outcome::IntentViolation,
        _ => Outcome::Pass,
    }
}

#[tokio::test]
async fn the_network_doing_what_intent_forbids_is_an_intent_violation() {
    let Some(bed) = Bed::new("the_network_doing_what_intent_forbids_is_an_intent_violation", None).await else {
        return;
    };
    wait_for_crd(&bed.client, "netcanaryintents.netcanary.io").await;
    apply(&bed.client, ISOLATION_INTENT).await;
    // The Policy WG's CRDs, so the run writes its PolicyReports too.
    for crd in ["policyreports.wgpolicyk8s.io", "clusterpolicyreports.wgpolicyk8s.io"] {
        apply(&bed.client, &read_repo_file(&format!("tests/crds/{crd}.yaml"))).await;
        wait_for_crd(&bed.client, crd).await;
    }
    bed.kubelet.net().nft_hub(&enforcing_rules(&bed.kubelet));
    let dir = ScratchDir::new("intent-e2e");
    let file = dir.write("intent.yaml", FILE_INTENT);
    let mut command = bed.command();
    command.arg("--intent").arg(&file);
    let ran = bed.run_with(command).await;
    let record = &ran.record;

    let wrong: Vec<String> = record
        .probes
        .iter()
        .filter(|p| {
            let intent = p.intent.as_ref().map(|i| (i.statement.as_str(), i.expect));
            p.outcome != want(p) || intent != statement_of(p)
        })
        .map(|p| {
            format!(
                "  {} -> {} {}/{}: want {} under {:?}, got {} under {:?}",
                p.source,
                p.destination,
                p.port,
                p.protocol,
                want(p).as_str(),
                statement_of(p),
                p.outcome.as_str(),
                p.intent
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "wrong outcomes:\n{}\nrun:\n{}\nstderr:\n{}",
        wrong.join("\n"),
        summary(record),
        ran.stderr
    );

    let violations: Vec<&ProbeRecord> =
        record.probes.iter().filter(|p| p.outcome == Outcome::IntentViolation).collect();
    assert!(!violations.is_empty(), "the plan has no probe from dev to prod's api:\n{}", summary(record));
    for v in &violations {
        assert_eq!(v.expected, Expectation::Allow, "policy allows it: prod/api-from-dev");
        assert_eq!(
            v.detail.as_deref(),
            Some("intent isolation/dev-never-reaches-prod-api says deny, and the network let it through")
        );
    }
    assert!(
        record.probes.iter().any(|p| p.kind == "dns" && p.intent.is_some()),
        "DNS over UDP falls under the file's statement:\n{}",
        summary(record)
    );
    assert_eq!(record.canary, Canary::Enforced);
    assert_eq!(
        record.problems,
        ["intent file-intent/nobody is not verified: `from` selects no pod this run probes"],
        "a statement that matches nothing is reported, not passed"
    );
    assert_eq!(ran.code, 1, "an intent violation exits 1: {}", ran.stderr);

    let status = bed.run_status(&record.run_id).await;
    assert_eq!(status["result"], "Mismatch", "{status}");
    assert_eq!(status["intentViolation"], violations.len(), "{status}");
    let mismatches = status["mismatches"].as_array().expect("mismatches in the status");
    assert_eq!(mismatches.len(), violations.len(), "{status}");
    assert!(
        mismatches.iter().all(|m| m["kind"] == "intent_violation"
            && m["intent"] == "isolation/dev-never-reaches-prod-api (deny)"
            && m["expected"] == "allow"),
        "{status}"
    );
    let events = bed.events(&record.run_id).await;
    assert_eq!(events.len(), violations.len(), "one Warning event per violation: {events:?}");
    assert!(events.iter().all(|e| e.reason.as_deref() == Some("IntentViolation")), "{events:?}");

    // prod's PolicyReport holds every probe into prod, the violation failed and critical
    // (the network let through what intent forbids).
    let gvk = GroupVersionKind::gvk("wgpolicyk8s.io", "v1alpha2", "PolicyReport");
    let prod: Api<DynamicObject> =
        Api::namespaced_with(bed.client.clone(), "prod", &ApiResource::from_gvk_with_plural(&gvk, "policyreports"));
    let report = prod.get("netcanary").await.expect("prod's PolicyReport");
    let results = report.data["results"].as_array().expect("results");
    let into_prod = record.probes.iter().filter(|p| p.destination.namespace == "prod").count();
    assert_eq!(results.len(), into_prod, "{report:?}");
    let failed: Vec<&serde_json::Value> = results.iter().filter(|r| r["result"] == "fail").collect();
    assert_eq!(failed.len(), violations.len(), "{report:?}");
    assert!(
        failed.iter().all(|r| r["severity"] == "critical"
            && r["properties"]["intent"] == "isolation/dev-never-reaches-prod-api (deny)"
            && r["properties"]["outcome"] == "intent_violation"),
        "{report:?}"
    );
}
