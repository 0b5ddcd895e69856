//! The kinds that change who reaches whom but that netcanary does not evaluate
//! (`UNEVALUATED_KINDS` in crates/objects): the shipped ClusterRole lets a run list exactly
//! those and nothing more, and a run counts the ones the cluster serves, as netcanary's
//! ServiceAccount, on the real kube-apiserver (the fixture).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::bed::{NETCANARY_SA, apply, cluster_role_grants, install_netcanary, wait_for_crd};
use common::kube_fixture::KubeFixture;
use netcanary_objects::UNEVALUATED_KINDS;
use netcanary_orchestrator::snapshot::unmodelled_policies;

#[test]
fn the_cluster_role_lists_exactly_the_unevaluated_kinds() {
    let want: BTreeMap<(String, String), BTreeSet<String>> = UNEVALUATED_KINDS
        .iter()
        .map(|k| ((k.group.to_string(), k.plural.to_string()), BTreeSet::from(["list".to_string()])))
        .collect();
    let groups: Vec<&str> = UNEVALUATED_KINDS.iter().map(|k| k.group).collect();
    assert_eq!(
        cluster_role_grants(&groups),
        want,
        "manifests/base/core/rbac.yaml must grant `list`, and only `list`, on each unevaluated kind, and nothing else in their groups"
    );
}

/// CRDs for three of the kinds, MultiNetworkPolicy served only in its older version, and
/// objects of each: one Cilium policy, two Calico ones, one MultiNetworkPolicy.
const CRDS: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: ciliumnetworkpolicies.cilium.io}
spec:
  group: cilium.io
  scope: Namespaced
  names: {kind: CiliumNetworkPolicy, listKind: CiliumNetworkPolicyList, plural: ciliumnetworkpolicies, singular: ciliumnetworkpolicy}
  versions:
    - {name: v2, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: networkpolicies.crd.projectcalico.org}
spec:
  group: crd.projectcalico.org
  scope: Namespaced
  names: {kind: NetworkPolicy, listKind: NetworkPolicyList, plural: networkpolicies, singular: networkpolicy}
  versions:
    - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: multi-networkpolicies.k8s.cni.cncf.io}
spec:
  group: k8s.cni.cncf.io
  scope: Namespaced
  names: {kind: MultiNetworkPolicy, plural: multi-networkpolicies, singular: multi-networkpolicy}
  versions:
    - {name: v1beta1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
"#;

const OBJECTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: l7-web, namespace: shop}
spec: {endpointSelector: {matchLabels: {app: web}}, ingress: [{fromEndpoints: [{matchLabels: {app: api}}]}]}
---
apiVersion: crd.projectcalico.org/v1
kind: NetworkPolicy
metadata: {name: allow-api, namespace: shop}
spec: {selector: app == 'db', ingress: [{action: Allow, source: {selector: app == 'api'}}]}
---
apiVersion: crd.projectcalico.org/v1
kind: NetworkPolicy
metadata: {name: deny-rest, namespace: default}
spec: {selector: all(), types: [Ingress]}
---
apiVersion: k8s.cni.cncf.io/v1beta1
kind: MultiNetworkPolicy
metadata: {name: storage-net, namespace: shop}
spec: {podSelector: {}, policyTypes: [Ingress]}
"#;

#[tokio::test]
async fn a_run_counts_the_unevaluated_kinds_the_cluster_serves() {
    let Some(kube) = KubeFixture::start_or_skip("a_run_counts_the_unevaluated_kinds_the_cluster_serves") else {
        return;
    };
    let admin = kube.client().await;
    install_netcanary(&admin).await;
    let sa = kube.client_as(NETCANARY_SA).await;
    // None served: each is absent (404), none refused (a 403 would read "cannot be listed").
    assert_eq!(unmodelled_policies(&sa).await, Vec::<String>::new());

    apply(&admin, CRDS).await;
    for crd in [
        "ciliumnetworkpolicies.cilium.io",
        "networkpolicies.crd.projectcalico.org",
        "multi-networkpolicies.k8s.cni.cncf.io",
    ] {
        wait_for_crd(&admin, crd).await;
    }
    assert_eq!(unmodelled_policies(&sa).await, Vec::<String>::new(), "served, but none exist");
    apply(&admin, OBJECTS).await;
    assert_eq!(
        unmodelled_policies(&sa).await,
        ["1 CiliumNetworkPolicy", "2 NetworkPolicy.crd.projectcalico.org", "1 MultiNetworkPolicy"]
    );
}
