//! `netcanary lint` without `-f`: the cluster itself, read from the real kube-apiserver
//! (the fixture) as netcanary's ServiceAccount, so the shipped RBAC must allow what it
//! reads. The findings are worked out by hand from the objects below; rules switched off by
//! annotation on an object or a namespace stay off, and findings name no file or line.
//!
//! Needs only the kube-apiserver fixture: see `tests/common/kube_fixture.rs` for how the
//! test skips or fails without it.

mod common;

use std::process::Command;

use common::bed::{BIN, NETCANARY_SA, apply, install_netcanary, wait_for_crd};
use common::kube_fixture::KubeFixture;
use common::read_repo_file;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

/// - kube-system: the DNS pod, no policy: NC001 and NC002.
/// - shop: web (an HTTP readiness probe on 8080) isolated both ways by deny-all, which
///   allows no DNS: NC003 on 53/UDP (error) and 53/TCP (warning), and NC010 for the probe;
///   `typo` selects app=wbe, which no pod carries: NC004; `typo-quiet` too, but it switches
///   NC004 off.
/// - quiet: an open pod, but the namespace switches NC001 and NC002 off.
const OBJECTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Namespace
metadata: {name: quiet, annotations: {netcanary.io/lint-disable: "NC001,NC002"}}
---
# No controller manager runs: the pods' ServiceAccounts are made by hand.
apiVersion: v1
kind: ServiceAccount
metadata: {name: default, namespace: kube-system}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: default, namespace: shop}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: default, namespace: quiet}
---
apiVersion: v1
kind: Pod
metadata: {name: coredns-0, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  containers: [{name: coredns, image: coredns, ports: [{containerPort: 53, protocol: UDP}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: shop, labels: {app: web}}
spec:
  containers:
    - name: web
      image: web
      ports: [{containerPort: 8080}]
      readinessProbe: {httpGet: {port: 8080}}
---
apiVersion: v1
kind: Pod
metadata: {name: open-0, namespace: quiet, labels: {app: open}}
spec:
  containers: [{name: open, image: open}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: shop}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: typo, namespace: shop}
spec: {podSelector: {matchLabels: {app: wbe}}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: typo-quiet, namespace: shop, annotations: {netcanary.io/lint-disable: NC004}}
spec: {podSelector: {matchLabels: {app: wbe}}}
"#;

#[tokio::test]
async fn lint_reads_the_cluster_without_files() {
    let test = "lint_reads_the_cluster_without_files";
    let Some(kube) = KubeFixture::start_or_skip(test) else { return };
    let admin = kube.client().await;
    install_netcanary(&admin).await;
    apply(&admin, OBJECTS).await;
    for crd in ["policyreports.wgpolicyk8s.io", "clusterpolicyreports.wgpolicyk8s.io"] {
        apply(&admin, &read_repo_file(&format!("tests/crds/{crd}.yaml"))).await;
        wait_for_crd(&admin, crd).await;
    }
    let kubeconfig = kube.kubeconfig_as(NETCANARY_SA);
    let lint = || {
        Command::new(BIN)
            .args(["lint", "-o", "json", "--policy-reports", "--kubeconfig"])
            .arg(&kubeconfig)
            .env_remove("NETCANARY_NAMESPACE")
            .output()
            .expect("run netcanary lint")
    };
    let output = lint();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let doc: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert_eq!(output.status.code(), Some(1), "NC003 on 53/UDP is an error: {stderr}");

    let s = |v: &Value| v.as_str().unwrap_or("-").to_string();
    let mine = ["kube-system", "shop", "quiet"];
    let findings: Vec<String> = doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| mine.contains(&f["namespace"].as_str().unwrap_or_default()))
        .map(|f| {
            assert_eq!((&f["file"], &f["line"]), (&Value::Null, &Value::Null), "a cluster object has no file: {f}");
            format!(
                "{} {} {} {} {} {}",
                s(&f["namespace"]),
                s(&f["rule"]),
                s(&f["severity"]),
                s(&f["kind"]),
                s(&f["name"]),
                s(&f["field"])
            )
        })
        .collect();
    assert_eq!(
        findings,
        [
            "kube-system NC001 warning Namespace kube-system -",
            "kube-system NC002 info Namespace kube-system -",
            "shop NC003 error Pod web-0 -",
            "shop NC003 warning Pod web-0 -",
            "shop NC004 warning NetworkPolicy typo spec.podSelector",
            "shop NC010 info Pod web-0 spec.containers[0].readinessProbe",
        ],
        "{doc:#}"
    );

    // The same findings as PolicyReports named netcanary-lint, written as netcanary's
    // ServiceAccount; the next lint replaces them.
    let gvk = GroupVersionKind::gvk("wgpolicyk8s.io", "v1alpha2", "PolicyReport");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "policyreports");
    let report_rules = |namespace: &'static str| {
        let api: Api<DynamicObject> = Api::namespaced_with(admin.clone(), namespace, &resource);
        async move {
            let report = api.get_opt("netcanary-lint").await.expect("read the report");
            report.map(|r| {
                let results = r.data["results"].as_array().cloned().unwrap_or_default();
                results.iter().map(|r| format!("{} {}", s(&r["rule"]), s(&r["result"]))).collect::<Vec<_>>()
            })
        }
    };
    assert_eq!(
        report_rules("shop").await.expect("shop's report"),
        ["NC003 fail", "NC003 warn", "NC004 warn", "NC010 warn"]
    );
    assert_eq!(report_rules("kube-system").await.expect("kube-system's report"), ["NC001 warn", "NC002 warn"]);
    assert_eq!(report_rules("quiet").await, None, "no finding in quiet: no report");

    Api::<NetworkPolicy>::namespaced(admin.clone(), "shop")
        .delete("typo", &DeleteParams::default())
        .await
        .expect("delete the policy that selects nothing");
    let output = lint();
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(
        report_rules("shop").await.expect("shop's report"),
        ["NC003 fail", "NC003 warn", "NC010 warn"],
        "replaced, not accumulated"
    );
}
