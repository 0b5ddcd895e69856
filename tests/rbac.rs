//! netcanary's ServiceAccount may do what a run needs and nothing else:
//! `manifests/base/core/rbac.yaml`, installed as `manifests/overlays/ci` installs it, on the
//! real kube-apiserver (the fixture), and every request made as the ServiceAccount
//! (impersonated), so RBAC answers as in a cluster. The objects the refused requests aim at
//! exist, so a refusal is RBAC's 403 and not a 404. The pod it creates is a probe pod as the
//! builder makes it, which the fence (tests/fence.rs) admits; the fence itself it may only
//! read.
//!
//! Needs only the kube-apiserver fixture: see `tests/common/kube_fixture.rs` for how the test
//! skips or fails without it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use common::bed::{NETCANARY_SA, apply, cluster_role_grants, install_cluster_policy_crds, install_netcanary};
use common::kube_fixture::KubeFixture;
use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::admissionregistration::v1::{ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use netcanary_objects::cluster_policy::CLUSTER_POLICY_APIS;
use netcanary_orchestrator::pods::{self, PodSettings};
use netcanary_orchestrator::run::RunOptions;
use netcanary_orchestrator::services;
use netcanary_orchestrator::snapshot::api_resource;
use netcanary_planner::Mirror;
use serde_json::{Value, json};

/// What the admin creates first: an app namespace with the objects the requests aim at.
const APP: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Node
metadata: {name: node-1, labels: {zone: a}}
---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: admin-deny}
spec:
  tier: Admin
  priority: 10
  subject: {namespaces: {}}
  ingress: [{action: Deny, from: [{namespaces: {matchLabels: {env: dev}}}]}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: default, namespace: shop}
---
apiVersion: v1
kind: Secret
metadata: {name: db-password, namespace: shop}
stringData: {password: hunter2}
---
apiVersion: v1
kind: Secret
metadata: {name: netcanary-token, namespace: netcanary}
stringData: {token: t}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: shop, labels: {app: web}}
spec:
  containers: [{name: web, image: example/web}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: example/web}]
"#;

/// The answer RBAC should give.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Want {
    Allowed,
    Forbidden,
}

struct Case {
    what: &'static str,
    want: Want,
    request: BoxFuture<'static, Result<(), kube::Error>>,
}

fn case<T>(
    what: &'static str,
    want: Want,
    request: impl Future<Output = Result<T, kube::Error>> + Send + 'static,
) -> Case {
    Case { what, want, request: request.map(|r| r.map(drop)).boxed() }
}

fn object<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("a valid object")
}

/// The cluster policy tiers and Nodes are read, never written: get, list and watch on
/// exactly those resources, nothing else of their group, and nothing on Nodes but reading.
#[test]
fn the_cluster_role_reads_the_cluster_policy_tiers_and_nodes_and_nothing_more() {
    let read: BTreeSet<String> = ["get", "list", "watch"].map(String::from).into();
    let want: BTreeMap<(String, String), BTreeSet<String>> =
        CLUSTER_POLICY_APIS.iter().map(|api| ((api.group.to_string(), api.plural.to_string()), read.clone())).collect();
    let groups: Vec<&str> = CLUSTER_POLICY_APIS.iter().map(|api| api.group).collect();
    assert_eq!(cluster_role_grants(&groups), want);
    let core = cluster_role_grants(&[""]);
    assert_eq!(core.get(&(String::new(), "nodes".to_string())), Some(&read));
    assert!(!core.keys().any(|(_, resource)| resource.starts_with("nodes/")), "{core:?}");
}

#[tokio::test]
async fn netcanary_service_account_has_least_privilege() {
    let Some(kube) = KubeFixture::start_or_skip("netcanary_service_account_has_least_privilege") else { return };
    let admin = kube.client().await;
    install_netcanary(&admin).await;
    install_cluster_policy_crds(&admin).await;
    common::bed::wait_for_crd(&admin, "netcanaryintents.netcanary.io").await;
    apply(&admin, APP).await;
    apply(&admin, &common::read_repo_file("examples/intent.yaml")).await;

    let sa = kube.client_as(NETCANARY_SA).await;
    let secrets = |ns: Option<&str>| match ns {
        Some(ns) => Api::<Secret>::namespaced(sa.clone(), ns),
        None => Api::<Secret>::all(sa.clone()),
    };
    let shop_pods = Api::<Pod>::namespaced(sa.clone(), "shop");
    let intent_gvk = GroupVersionKind::gvk("netcanary.io", "v1alpha1", "NetcanaryIntent");
    let intents =
        Api::<DynamicObject>::all_with(sa.clone(), &ApiResource::from_gvk_with_plural(&intent_gvk, "netcanaryintents"));
    let gvk = GroupVersionKind::gvk("netcanary.io", "v1alpha1", "NetcanaryRun");
    let runs = Api::<DynamicObject>::all_with(sa.clone(), &ApiResource::from_gvk_with_plural(&gvk, "netcanaryruns"));
    let mut run = DynamicObject::new("rbac-check", &ApiResource::from_gvk_with_plural(&gvk, "netcanaryruns"));
    run.data = json!({"spec": {"startedAt": "2026-01-01T00:00:00Z"}});
    let settings = PodSettings {
        image: RunOptions::default().image,
        run_id: "rbac".into(),
        owner: object(json!({
            "apiVersion": "netcanary.io/v1alpha1", "kind": "NetcanaryRun", "name": "rbac",
            "uid": "00000000-0000-4000-8000-000000000001", "controller": true
        })),
        deadline_seconds: 60,
        spread_across_nodes: false,
    };
    let mirror = Mirror {
        class: 0,
        namespace: "shop".into(),
        labels: [("app".to_string(), "web".to_string())].into(),
        dropped_labels: Vec::new(),
        stands_for: "shop/web-0".into(),
        workload: "web".into(),
        members: 1,
        listen: ["80/TCP".parse().expect("a port")].into(),
        port_names: Default::default(),
    };
    let probe = pods::target(&settings, 0, &mirror);
    let probe_name = probe.metadata.name.clone().expect("a name");
    let policy: NetworkPolicy =
        object(json!({"metadata": {"name": "allow-all"}, "spec": {"podSelector": {}, "ingress": [{}]}}));
    let pp = PostParams::default();
    let all = ListParams::default();
    let cluster_policies = |plural: &str| {
        let api = CLUSTER_POLICY_APIS.iter().find(|a| a.plural == plural).expect("a cluster policy API");
        Api::<DynamicObject>::all_with(sa.clone(), &api_resource(api))
    };
    let mut new_policy = DynamicObject::new("admin-accept", &api_resource(&CLUSTER_POLICY_APIS[0]));
    new_policy.data = json!({"spec": {"tier": "Admin", "priority": 20, "subject": {"namespaces": {}},
        "ingress": [{"action": "Accept", "from": [{"namespaces": {}}]}]}});

    // The cluster policy tiers and Nodes: read (get, list, watch), never written.
    let mut cases = Vec::new();
    for api in &CLUSTER_POLICY_APIS {
        let (what_list, what_watch) = match api.kind.as_str() {
            "ClusterNetworkPolicy" => ("list ClusterNetworkPolicies", "watch ClusterNetworkPolicies"),
            "AdminNetworkPolicy" => ("list AdminNetworkPolicies", "watch AdminNetworkPolicies"),
            _ => ("list BaselineAdminNetworkPolicies", "watch BaselineAdminNetworkPolicies"),
        };
        let list = cluster_policies(api.plural);
        let all = all.clone();
        cases.push(case(what_list, Want::Allowed, async move { list.list(&all).await }));
        let watch = cluster_policies(api.plural);
        cases.push(case(what_watch, Want::Allowed, async move {
            watch.watch(&WatchParams::default().timeout(1), "0").await
        }));
    }
    cases.extend([
        case("get a ClusterNetworkPolicy", Want::Allowed, {
            let api = cluster_policies("clusternetworkpolicies");
            async move { api.get("admin-deny").await }
        }),
        case("create a ClusterNetworkPolicy", Want::Forbidden, {
            let api = cluster_policies("clusternetworkpolicies");
            let pp = pp.clone();
            async move { api.create(&pp, &new_policy).await }
        }),
        case("delete a ClusterNetworkPolicy", Want::Forbidden, {
            let api = cluster_policies("clusternetworkpolicies");
            async move { api.delete("admin-deny", &DeleteParams::default()).await }
        }),
        case("patch an AdminNetworkPolicy", Want::Forbidden, {
            let api = cluster_policies("adminnetworkpolicies");
            async move { api.patch("any", &PatchParams::default(), &Patch::Merge(json!({"spec": {"priority": 1}}))).await }
        }),
        case("list Nodes", Want::Allowed, {
            let api = Api::<Node>::all(sa.clone());
            let all = all.clone();
            async move { api.list(&all).await }
        }),
        case("get a Node", Want::Allowed, {
            let api = Api::<Node>::all(sa.clone());
            async move { api.get("node-1").await }
        }),
        case("watch Nodes", Want::Allowed, {
            let api = Api::<Node>::all(sa.clone());
            async move { api.watch(&WatchParams::default().timeout(1), "0").await }
        }),
        case("label a Node", Want::Forbidden, {
            let api = Api::<Node>::all(sa.clone());
            let patch = json!({"metadata": {"labels": {"zone": "b"}}});
            async move { api.patch("node-1", &PatchParams::default(), &Patch::Merge(patch)).await }
        }),
        case("delete a Node", Want::Forbidden, {
            let api = Api::<Node>::all(sa.clone());
            async move { api.delete("node-1", &DeleteParams::default()).await }
        }),
    ]);

    cases.extend(vec![
        case("list secrets cluster-wide", Want::Forbidden, {
            let api = secrets(None);
            async move { api.list(&ListParams::default()).await }
        }),
        case("list secrets in its own namespace", Want::Forbidden, {
            let api = secrets(Some("netcanary"));
            async move { api.list(&ListParams::default()).await }
        }),
        case("get a secret in its own namespace", Want::Forbidden, {
            let api = secrets(Some("netcanary"));
            async move { api.get("netcanary-token").await }
        }),
        case("get a secret in an app namespace", Want::Forbidden, {
            let api = secrets(Some("shop"));
            async move { api.get("db-password").await }
        }),
        case("create pods/exec", Want::Forbidden, {
            let api = shop_pods.clone();
            async move { api.create_subresource::<_, Value>("exec", "web-0", &PostParams::default(), &json!({})).await }
        }),
        case("delete a namespace", Want::Forbidden, {
            let api = Api::<Namespace>::all(sa.clone());
            async move { api.delete("shop", &DeleteParams::default()).await }
        }),
        case("create a NetworkPolicy", Want::Forbidden, {
            let api = Api::<NetworkPolicy>::namespaced(sa.clone(), "shop");
            let pp = pp.clone();
            async move { api.create(&pp, &policy).await }
        }),
        case("patch a Deployment", Want::Forbidden, {
            let api = Api::<Deployment>::namespaced(sa.clone(), "shop");
            async move { api.patch("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 0}}))).await }
        }),
        case("list pods cluster-wide", Want::Allowed, {
            let api = Api::<Pod>::all(sa.clone());
            let all = all.clone();
            async move { api.list(&all).await }
        }),
        case("list NetworkPolicies cluster-wide", Want::Allowed, {
            let api = Api::<NetworkPolicy>::all(sa.clone());
            let all = all.clone();
            async move { api.list(&all).await }
        }),
        case("create a pod", Want::Allowed, {
            let api = shop_pods.clone();
            let pp = pp.clone();
            async move { api.create(&pp, &probe).await }
        }),
        case("list NetcanaryIntents", Want::Allowed, {
            let api = intents.clone();
            let all = all.clone();
            async move { api.list(&all).await }
        }),
        case("delete a NetcanaryIntent", Want::Forbidden, {
            let api = intents.clone();
            async move { api.delete("production-isolation", &DeleteParams::default()).await }
        }),
        // A target's Service, for the service and dns paths: created and deleted, never changed.
        case("create a Service", Want::Allowed, {
            let api = Api::<Service>::namespaced(sa.clone(), "shop");
            let service = services::target_service(&settings, &probe_name, &mirror);
            let pp = pp.clone();
            async move { api.create(&pp, &service).await }
        }),
        case("patch a Service", Want::Forbidden, {
            let api = Api::<Service>::namespaced(sa.clone(), "shop");
            let patch = json!({"spec": {"selector": {"app": "web"}}});
            let name = probe_name.clone();
            async move { api.patch(&name, &PatchParams::default(), &Patch::Merge(patch)).await }
        }),
        case("create a NetcanaryRun", Want::Allowed, {
            let pp = pp.clone();
            async move { runs.create(&pp, &run).await }
        }),
        // The fence: netcanary may see whether it is in place, and change none of it.
        case("get the fence's ValidatingAdmissionPolicy", Want::Allowed, {
            let api = Api::<ValidatingAdmissionPolicy>::all(sa.clone());
            async move { api.get("netcanary-fence").await }
        }),
        case("get the fence's ValidatingAdmissionPolicyBinding", Want::Allowed, {
            let api = Api::<ValidatingAdmissionPolicyBinding>::all(sa.clone());
            async move { api.get("netcanary-fence").await }
        }),
        case("list ValidatingAdmissionPolicies", Want::Forbidden, {
            let api = Api::<ValidatingAdmissionPolicy>::all(sa.clone());
            let all = all.clone();
            async move { api.list(&all).await }
        }),
        case("delete the fence's ValidatingAdmissionPolicyBinding", Want::Forbidden, {
            let api = Api::<ValidatingAdmissionPolicyBinding>::all(sa.clone());
            async move { api.delete("netcanary-fence", &DeleteParams::default()).await }
        }),
        case("patch the fence's parameters", Want::Forbidden, {
            let api = Api::<ConfigMap>::namespaced(sa.clone(), "netcanary");
            let patch = json!({"data": {"image": "example/tools"}});
            async move { api.patch("netcanary-fence", &PatchParams::default(), &Patch::Merge(patch)).await }
        }),
    ]);

    let mut wrong = Vec::new();
    for Case { what, want, request } in cases {
        let answer = request.await;
        let ok = match (&answer, want) {
            (Ok(()), Want::Allowed) => true,
            // RBAC's refusal, naming the ServiceAccount: not admission's or a missing object's.
            (Err(kube::Error::Api(status)), Want::Forbidden) => {
                status.code == 403 && status.message.contains(&format!("User \"{NETCANARY_SA}\" cannot"))
            }
            _ => false,
        };
        let answer = match answer {
            Ok(()) => "allowed".to_string(),
            Err(kube::Error::Api(status)) => format!("{} {}", status.code, status.message),
            Err(error) => error.to_string(),
        };
        eprintln!("{what}: {answer}");
        if !ok {
            wrong.push(format!("  {what}: want {want:?}, got {answer}"));
        }
    }
    assert!(wrong.is_empty(), "RBAC answers netcanary's ServiceAccount wrongly:\n{}", wrong.join("\n"));

    // The refused deletion left the namespace alone, and the pod it may create, it may delete.
    assert!(Api::<Namespace>::all(admin.clone()).get_opt("shop").await.expect("read shop").is_some());
    shop_pods.delete(&probe_name, &DeleteParams::default()).await.expect("netcanary deletes its pod");
    Api::<Service>::namespaced(sa.clone(), "shop")
        .delete(&probe_name, &DeleteParams::default())
        .await
        .expect("netcanary deletes its Service");
}
