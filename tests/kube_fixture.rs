//! The kube-apiserver fixture is a real API server: PodSecurity admission and RBAC answer as
//! in a cluster. The orchestrator's tests lean on both (probe pods must pass "restricted";
//! netcanary's ServiceAccount must be refused what its Role does not grant), so this proves
//! the fixture before any of them does. It also pins the rule by which every test that
//! needs root, Go or the monitoring packages skips or fails.

mod common;

use common::kube_fixture::KubeFixture;
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::json;

const NS: &str = "restricted";

#[tokio::test]
async fn fixture_enforces_pod_security_and_rbac() {
    let Some(kube) = KubeFixture::start_or_skip("fixture_enforces_pod_security_and_rbac") else { return };
    let client = kube.client().await;
    let pp = PostParams::default();

    let ns: Namespace = serde_json::from_value(json!({
        "metadata": {"name": NS, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}
    }))
    .expect("valid Namespace");
    Api::<Namespace>::all(client.clone()).create(&pp, &ns).await.expect("create the namespace");
    // No controller-manager runs, so nothing makes the ServiceAccount that pods default to,
    // and the ServiceAccount admission plugin refuses pods without it.
    let sa: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "default"}})).expect("valid ServiceAccount");
    Api::<ServiceAccount>::namespaced(client.clone(), NS).create(&pp, &sa).await.expect("create the ServiceAccount");
    let pods = Api::<Pod>::namespaced(client.clone(), NS);

    let privileged = pod("privileged", json!({"privileged": true}));
    match pods.create(&pp, &privileged).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 403, "privileged pod: want 403 Forbidden, got {status:?}");
            assert!(
                status.message.contains("violates PodSecurity \"restricted:latest\"")
                    && status.message.contains("privileged"),
                "privileged pod: want a PodSecurity rejection naming `privileged`, got {:?}",
                status.message
            );
        }
        other => panic!("privileged pod in a restricted namespace: want a PodSecurity rejection, got {other:?}"),
    }

    let restricted = pod(
        "restricted",
        json!({
            "runAsNonRoot": true,
            "runAsUser": 65532,
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
            "readOnlyRootFilesystem": true
        }),
    );
    let created = pods.create(&pp, &restricted).await.unwrap_or_else(|e| panic!("restricted pod refused: {e}"));
    assert!(created.metadata.uid.is_some(), "restricted pod was not stored: {created:?}");

    // The admin may list pods, so a refusal below is RBAC judging the ServiceAccount.
    pods.list(&ListParams::default()).await.expect("the admin lists pods");
    let as_sa = Api::<Pod>::namespaced(kube.client_as(&format!("system:serviceaccount:{NS}:nobody")).await, NS);
    match as_sa.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 403, "unbound ServiceAccount listing pods: want 403, got {status:?}");
            assert!(
                status.message.contains("cannot list resource \"pods\""),
                "unbound ServiceAccount: want an RBAC refusal, got {:?}",
                status.message
            );
        }
        other => panic!("unbound ServiceAccount listing pods: want 403 Forbidden, got {other:?}"),
    }
}

/// A pod that is never scheduled (nothing runs here), so the image is never pulled.
fn pod(name: &str, security_context: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "automountServiceAccountToken": false,
            "containers": [{
                "name": "main",
                "image": "registry.k8s.io/pause:3.10",
                "securityContext": security_context
            }]
        }
    }))
    .expect("valid Pod")
}

/// The harness's rule, which every test that needs root, Go or the monitoring packages
/// follows (tests/common/mod.rs).
#[test]
fn a_missing_prerequisite_fails_in_ci_or_when_required() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
    };
    assert_eq!(common::required("NETCANARY_REQUIRE_KUBE", env(&[])), None);
    assert_eq!(common::required("NETCANARY_REQUIRE_KUBE", env(&[("CI", "false")])), None);
    assert_eq!(common::required("NETCANARY_REQUIRE_KUBE", env(&[("NETCANARY_REQUIRE_KUBE", "0")])), None);
    let because = |pairs| common::required("NETCANARY_REQUIRE_KUBE", env(pairs)).expect("required");
    assert_eq!(because(&[("NETCANARY_REQUIRE_KUBE", "1")]), "NETCANARY_REQUIRE_KUBE=1");
    assert!(because(&[("CI", "true")]).starts_with("CI is set"));
    assert!(because(&[("CI", "1")]).starts_with("CI is set"));
}
