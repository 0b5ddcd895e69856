//! The bed the end-to-end tests of `netcanary run` and `serve` run on: the real binary
//! against a real kube-apiserver (the fixture), with a fake kubelet that runs the probe pods
//! as real processes in network namespaces, and a network whose enforcement each scenario
//! writes by hand in nftables, on the hub that bridges every pod (subnet per namespace, so
//! namespace-level policy is a subnet rule).
//!
//! The app: namespace `prod` isolates its pods for ingress and lets `dev` reach `app=api` on
//! 8080/TCP; `dev` has no policy; netcanary's own namespace and canary policy come from
//! `manifests/overlays/ci`, and the cluster DNS is dnsmasq behind the Service
//! `kube-system/kube-dns`.
//!
//! Needs root, network namespaces and the kube-apiserver fixture: see
//! `tests/common/netns.rs` and `tests/common/kube_fixture.rs` for how a test skips or fails
//! without them.

#![allow(dead_code)] // Each integration test uses a different part of the harness.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, Pod, Service};
use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::{self, Scope};
use kube::{Client, ResourceExt};
use netcanary_verify::RunRecord;
use serde::Deserialize;
use serde_json::{Value, json};

use super::kube_fixture::KubeFixture;
use super::kubelet::{FakeKubelet, KubeletOptions, PodFilter};
use super::kubelet_api::KubeletTls;
use super::netns::{ChildGuard, TestNet};
use super::node::Node;

pub const BIN: &str = env!("CARGO_BIN_EXE_netcanary");
pub const CLUSTER_DNS: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
pub const DNS_NAME: &str = "kubernetes.default.svc.cluster.local";
pub const SUBNETS: [(&str, u8); 4] = [("prod", 1), ("dev", 2), ("netcanary", 3), ("kube-system", 4)];
/// netcanary's ServiceAccount (manifests/base/core/rbac.yaml), as RBAC names it.
pub const NETCANARY_SA: &str = "system:serviceaccount:netcanary:netcanary";
/// The label every pod netcanary creates carries.
pub const MANAGED: &str = "app.kubernetes.io/managed-by=netcanary";
/// How long a finished run's pods may take to disappear (the kubelet confirms deletions).
pub const CLEANUP_TIMEOUT: Duration = Duration::from_secs(15);

/// The app under test (its pods are made by [`Bed::new`], which must set their status).
pub const APP: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: prod}
---
apiVersion: v1
kind: Namespace
metadata: {name: dev}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny-ingress, namespace: prod}
spec:
  podSelector: {}
  policyTypes: [Ingress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api-from-dev, namespace: prod}
spec:
  podSelector: {matchLabels: {app: api}}
  policyTypes: [Ingress]
  ingress:
    - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: dev}}}]
      ports: [{port: 8080, protocol: TCP}]
"#;

/// A `NetcanaryIntent` (`isolation`): dev must never reach prod's api on 8080/TCP. The
/// policy `prod/api-from-dev` of [`APP`] allows exactly that, so a network that enforces the
/// policy ([`enforcing_rules`]) lets it through: an intent violation, in that cell alone.
pub const ISOLATION_INTENT: &str = r#"
apiVersion: netcanary.io/v1alpha1
kind: NetcanaryIntent
metadata: {name: isolation}
spec:
  statements:
    - name: dev-never-reaches-prod-api
      from: {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: dev}}}
      to:
        namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: prod}}
        podSelector: {matchLabels: {app: api}}
      ports: [{port: 8080, protocol: TCP}]
      expect: deny
"#;

/// A CNI that enforces exactly the policies above, by subnet: `prod` takes new connections
/// only from `dev` on 8080/TCP, and netcanary's probe pods (the canary policy selects every
/// one of them) talk to nobody. Replies pass through connection tracking.
pub fn enforcing_rules(kubelet: &FakeKubelet) -> String {
    enforcing_rules_and(kubelet, "")
}

/// [`enforcing_rules`], then `more` (rules of the same forward chain).
pub fn enforcing_rules_and(kubelet: &FakeKubelet, more: &str) -> String {
    let (prod, dev) = (kubelet.subnet("prod"), kubelet.subnet("dev"));
    forward_rules(
        kubelet,
        &format!("ip saddr {dev} ip daddr {prod} tcp dport 8080 accept\n    ip daddr {prod} drop\n    {more}"),
    )
}

/// A CNI that enforces netcanary's canary policy and nothing else: every door into `prod`
/// that policy closes is open, but the network is not blind to policy as a whole.
pub fn canary_only_rules(kubelet: &FakeKubelet) -> String {
    forward_rules(kubelet, "")
}

/// The cluster policy tiers on top of the bed's NetworkPolicies, of all three kinds (both
/// generations, on one priority scale), validated by the real CRDs of `tests/crds/`:
/// - ClusterNetworkPolicy `dev-guard` (Admin, priority 10), for dev's pods: denies ingress
///   from kube-system (`deny-kube-system`), passes ingress from prod on to the next tiers
///   (`pass-prod`);
/// - AdminNetworkPolicy `api-from-kube-system` (priority 20), for prod's app=api: allows
///   kube-system on 8080/TCP (`accept-kube-system`), which prod's NetworkPolicies alone deny;
/// - BaselineAdminNetworkPolicy `default`, for dev's pods: denies ingress from prod
///   (`deny-prod`), which decides since no NetworkPolicy isolates dev.
pub const CLUSTER_POLICIES: &str = r#"
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: dev-guard}
spec:
  tier: Admin
  priority: 10
  subject: {namespaces: {matchLabels: {kubernetes.io/metadata.name: dev}}}
  ingress:
    - name: deny-kube-system
      action: Deny
      from: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: kube-system}}}]
    - name: pass-prod
      action: Pass
      from: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: prod}}}]
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: api-from-kube-system}
spec:
  priority: 20
  subject:
    pods:
      namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: prod}}
      podSelector: {matchLabels: {app: api}}
  ingress:
    - name: accept-kube-system
      action: Allow
      from: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: kube-system}}}]
      ports: [{portNumber: {protocol: TCP, port: 8080}}]
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata: {name: default}
spec:
  subject: {namespaces: {matchLabels: {kubernetes.io/metadata.name: dev}}}
  ingress:
    - name: deny-prod
      action: Deny
      from: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: prod}}}]
"#;

/// A CNI that enforces the bed's NetworkPolicies and [`CLUSTER_POLICIES`], written by hand
/// in tier order, by subnet; without `admin_deny`, it ignores `dev-guard`'s Deny.
pub fn tiered_rules(kubelet: &FakeKubelet, admin_deny: bool) -> String {
    let subnet = |namespace| kubelet.subnet(namespace);
    let (prod, dev, kube_system) = (subnet("prod"), subnet("dev"), subnet("kube-system"));
    let deny_kube_system = format!("ip saddr {kube_system} ip daddr {dev} drop");
    let rules = [
        if admin_deny { deny_kube_system.as_str() } else { "" },
        &format!("ip saddr {prod} ip daddr {dev} drop"),
        &format!("ip saddr {kube_system} ip daddr {prod} tcp dport 8080 accept"),
        &format!("ip saddr {dev} ip daddr {prod} tcp dport 8080 accept"),
        &format!("ip daddr {prod} drop"),
    ];
    forward_rules(kubelet, &rules.join("\n    "))
}

/// A forward chain that isolates netcanary's probe pods, then applies `rules`.
fn forward_rules(kubelet: &FakeKubelet, rules: &str) -> String {
    let canary = kubelet.subnet("netcanary");
    format!(
        "table inet netcanary_e2e {{
  chain forward {{
    type filter hook forward priority 0; policy accept;
    ct state established,related accept
    ip saddr {canary} drop
    ip daddr {canary} drop
    {rules}
  }}
}}
"
    )
}

/// Everything a scenario runs against. Fields drop in order: the node's daemons, then the
/// kubelet (processes and namespaces), before the API server they talk to.
pub struct Bed {
    /// The node's own components, in a node bed (`tests/common/node.rs`).
    pub node: Option<Node>,
    pub kubelet: FakeKubelet,
    pub kube: KubeFixture,
    /// The admin.
    pub client: Client,
    /// What `netcanary` uses: the admin's credentials acting as netcanary's ServiceAccount,
    /// so RBAC judges every request by `manifests/base/core/rbac.yaml`.
    pub kubeconfig: PathBuf,
}

/// One `netcanary run`.
pub struct Ran {
    pub record: RunRecord,
    pub code: i32,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Ran {
    /// Reads the run record `-o json` printed, and logs the run (shown when a test fails).
    pub fn new(out: Output, elapsed: Duration) -> Ran {
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let record: RunRecord = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "`netcanary run -o json` printed no run record ({e}), exit {:?}:\n{}\nstderr:\n{stderr}",
                out.status.code(),
                String::from_utf8_lossy(&out.stdout)
            )
        });
        let ran = Ran { record, code: out.status.code().unwrap_or(-1), stderr, elapsed };
        eprintln!(
            "run {} took {:?}, exit {}:\n{}\nits log:\n{}",
            ran.record.run_id,
            ran.elapsed,
            ran.code,
            summary(&ran.record),
            ran.stderr
        );
        ran
    }
}

impl Bed {
    /// The cluster with the app, DNS and netcanary's manifests installed, and a kubelet that
    /// never starts the pods `never_start` picks; `None` when the test is skipped.
    pub async fn new(test: &str, never_start: Option<PodFilter>) -> Option<Bed> {
        let net = TestNet::new(test)?;
        let kube = KubeFixture::start_or_skip(test)?;
        let mut options = KubeletOptions::new(&SUBNETS);
        if let Some(filter) = never_start {
            options.never_start = filter;
        }
        let bed = Bed::start(net, kube, APP, options, None).await;
        bed.kubelet.add_dns(CLUSTER_DNS, &[(DNS_NAME, "10.96.0.1")]).await;
        bed.kubelet.add_workload(&workload("prod", "api-0", "api", &[(8080, "TCP"), (9000, "UDP")])).await;
        bed.kubelet.add_workload(&workload("dev", "web-0", "web", &[(8080, "TCP")])).await;
        Some(bed)
    }

    /// A bed on `net` and `kube`: netcanary's manifests and `app` applied, and a kubelet
    /// with `options` serving container logs.
    pub async fn start(
        net: TestNet,
        kube: KubeFixture,
        app: &str,
        mut options: KubeletOptions,
        node: Option<Node>,
    ) -> Bed {
        let client = kube.client().await;
        install_netcanary(&client).await;
        apply(&client, app).await;
        options.tls = Some(KubeletTls::of_fixture(kube.dir()));
        let kubelet = FakeKubelet::start(net, kube.config().await, options).await;
        let kubeconfig = kube.kubeconfig_as(NETCANARY_SA);
        Bed { node, kubelet, kube, client, kubeconfig }
    }

    /// `netcanary VERB` against the bed as netcanary's ServiceAccount, with the probing
    /// options every scenario shares (short timeouts).
    pub fn netcanary(&self, verb: &str) -> Command {
        let mut command = Command::new(BIN);
        command
            .args([verb, "--kubeconfig"])
            .arg(&self.kubeconfig)
            // The image the fence of manifests/overlays/ci admits; the kubelet here runs the
            // test's binary whatever the image.
            .args(["--image", concat!("ghcr.io/netcanary/netcanary:", env!("CARGO_PKG_VERSION"))])
            // As variables, so that a test's own flags win.
            .env("NETCANARY_PROBE_TIMEOUT", "1s")
            .env("NETCANARY_POD_START_TIMEOUT", "5s")
            .env("NETCANARY_LOG_LEVEL", "info")
            .env("NO_COLOR", "1");
        command
    }

    /// `netcanary run -o json` against the bed, with a deadline of 50 s.
    pub fn command(&self) -> Command {
        self.command_with_deadline(Duration::from_secs(50))
    }

    pub fn command_with_deadline(&self, deadline: Duration) -> Command {
        let mut command = self.netcanary("run");
        command.args(["--round-wait", "1s", "--rounds", "2", "-o", "json"]);
        command.arg("--deadline").arg(format!("{}ms", deadline.as_millis()));
        command
    }

    /// Runs `netcanary run` and checks what every run must do: finish well within its
    /// deadline and leave none of its pods behind.
    pub async fn run(&self) -> Ran {
        self.run_with(self.command()).await
    }

    /// [`run`](Self::run) with `command`: [`command`](Self::command) plus the caller's flags.
    pub async fn run_with(&self, mut command: Command) -> Ran {
        let started = Instant::now();
        let ran = Ran::new(command.output().expect("run netcanary"), started.elapsed());
        assert!(ran.elapsed < Duration::from_secs(50), "the run took {:?}", ran.elapsed);
        self.assert_cleaned_up(&ran).await;
        ran
    }

    pub async fn assert_cleaned_up(&self, ran: &Ran) {
        let selector = format!("netcanary.io/run-id={}", ran.record.run_id);
        let context = format!("run {}; its log:\n{}", ran.record.run_id, ran.stderr);
        self.assert_no_pods(&selector, &context).await;
        // The Services of the service and dns paths go with the pods.
        let services: Api<Service> = Api::all(self.client.clone());
        let left = services.list(&ListParams::default().labels(&selector)).await.expect("list Services");
        let left: Vec<String> = left.iter().map(|s| s.name_any()).collect();
        assert!(left.is_empty(), "Services {selector} left: {left:?}\n{context}");
    }

    /// Waits up to [`CLEANUP_TIMEOUT`] for the pods `selector` picks to be gone.
    pub async fn assert_no_pods(&self, selector: &str, context: &str) {
        let deadline = Instant::now() + CLEANUP_TIMEOUT;
        loop {
            let left = self.pod_names(selector).await;
            if left.is_empty() {
                return;
            }
            assert!(Instant::now() < deadline, "pods {selector} left: {left:?}\n{context}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Names of the pods `selector` picks, in every namespace.
    pub async fn pod_names(&self, selector: &str) -> Vec<String> {
        let pods: Api<Pod> = Api::all(self.client.clone());
        let listed = pods.list(&ListParams::default().labels(selector)).await.expect("list pods");
        listed.iter().map(|p| p.name_any()).collect()
    }

    /// Waits until one of netcanary's pods runs (a run is under way), or panics.
    pub async fn wait_for_probe_pod(&self, timeout: Duration) {
        let pods: Api<Pod> = Api::all(self.client.clone());
        let ours = ListParams::default().labels(MANAGED);
        let deadline = Instant::now() + timeout;
        loop {
            let listed = pods.list(&ours).await.expect("list pods");
            if listed.items.iter().any(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")) {
                return;
            }
            assert!(Instant::now() < deadline, "no probe pod ran within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every `NetcanaryRun` (what `kubectl get netcanaryruns` shows).
    pub async fn run_records(&self) -> Vec<DynamicObject> {
        let gvk = GroupVersionKind::gvk("netcanary.io", "v1alpha1", "NetcanaryRun");
        let runs: Api<DynamicObject> =
            Api::all_with(self.client.clone(), &ApiResource::from_gvk_with_plural(&gvk, "netcanaryruns"));
        runs.list(&ListParams::default()).await.expect("list NetcanaryRuns").items
    }

    /// The status of the run's `NetcanaryRun`.
    pub async fn run_status(&self, run_id: &str) -> Value {
        run_status(&self.client, run_id).await
    }

    /// The Events about the run's record.
    pub async fn events(&self, run_id: &str) -> Vec<Event> {
        let events: Api<Event> = Api::all(self.client.clone());
        let listed = events.list(&ListParams::default()).await.expect("list events");
        listed.items.into_iter().filter(|e| e.involved_object.name.as_deref() == Some(run_id)).collect()
    }
}

/// The status of the run's `NetcanaryRun`, as `client` reads it.
pub async fn run_status(client: &Client, run_id: &str) -> Value {
    let gvk = GroupVersionKind::gvk("netcanary.io", "v1alpha1", "NetcanaryRun");
    let runs: Api<DynamicObject> =
        Api::all_with(client.clone(), &ApiResource::from_gvk_with_plural(&gvk, "netcanaryruns"));
    let run = runs.get(run_id).await.unwrap_or_else(|e| panic!("read NetcanaryRun {run_id}: {e}"));
    run.data.get("status").cloned().unwrap_or_else(|| panic!("NetcanaryRun {run_id} has no status: {:?}", run.data))
}

/// `netcanary run -o json` with `kubeconfig` and `args` on a cluster where no kubelet runs:
/// its pods never start, and with one round it creates every pod of its plan and ends
/// within seconds, unverified (exit 2, asserted).
pub fn run_without_kubelet(kubeconfig: &Path, args: &[&str]) -> RunRecord {
    let out = Command::new(BIN)
        .args(["run", "--kubeconfig"])
        .arg(kubeconfig)
        .args(args)
        .args(["--pod-start-timeout", "1s", "--rounds", "1", "--deadline", "60s", "-o", "json"])
        .env("NO_COLOR", "1")
        .env("NETCANARY_LOG_LEVEL", "info")
        .output()
        .expect("run netcanary");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let record: RunRecord = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("`netcanary run -o json` printed no run record ({e}); stderr:\n{stderr}"));
    eprintln!(
        "run {}: exit {:?}, problems {:#?}, warnings {:#?}",
        record.run_id,
        out.status.code(),
        record.problems,
        record.warnings
    );
    assert_eq!(out.status.code(), Some(2), "pods that never start make the run unverified:\n{stderr}");
    record
}

/// Installs what `kubectl apply -k manifests/overlays/ci` does: the NetcanaryRun CRD (and
/// waits until it is served), netcanary's namespace and canary policy, its RBAC. Not the
/// CronJob or the serve Deployment: their runs would change every scenario. Needs the
/// fixture's binary, which renders the overlay.
pub async fn install_netcanary(client: &Client) {
    let overlay = super::repo_file("manifests/overlays/ci");
    let text = KubeFixture::kustomize(&overlay).unwrap_or_else(|e| panic!("{e}"));
    apply(client, &text).await;
    wait_for_crd(client, "netcanaryruns.netcanary.io").await;
}

/// A workload pod: no process runs for it, the kubelet only gives it an address.
pub fn workload(namespace: &str, name: &str, app: &str, ports: &[(u16, &str)]) -> Pod {
    let ports: Vec<Value> =
        ports.iter().map(|(port, protocol)| json!({"containerPort": port, "protocol": protocol})).collect();
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": app}},
        "spec": {"containers": [{"name": app, "image": format!("example/{app}"), "ports": ports}]}
    }))
    .expect("a valid Pod")
}

/// Takes from netcanary's ClusterRole every rule on the API group `group`, as an
/// administrator narrowing it would; returns how many rules went.
pub async fn revoke_api_group(client: &Client, group: &str) -> usize {
    let roles: Api<ClusterRole> = Api::all(client.clone());
    let mut role = roles.get("netcanary").await.expect("netcanary's ClusterRole");
    let rules = role.rules.as_mut().expect("rules");
    let before = rules.len();
    rules.retain(|rule| !rule.api_groups.iter().flatten().any(|g| g == group));
    let revoked = before - rules.len();
    roles.replace("netcanary", &Default::default(), &role).await.expect("narrow netcanary's ClusterRole");
    revoked
}

/// A node's address on the bed's bridge, outside every namespace's subnet, where
/// [`Bed::add_worker_node`] answers on the kubelet's port.
pub const NODE_IP: &str = "10.66.250.10";

/// dev's pods may not reach the nodes labelled `node-role: worker` (a `nodes` peer, matched
/// by the addresses in the Node's status); nothing else is said of nodes.
pub const NO_NODES_FROM_DEV: &str = r#"
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: dev-no-nodes}
spec:
  tier: Admin
  priority: 10
  subject: {namespaces: {matchLabels: {kubernetes.io/metadata.name: dev}}}
  egress:
    - {name: no-kubelet, action: Deny, to: [{nodes: {matchLabels: {node-role: worker}}}]}
"#;

impl Bed {
    /// A worker node: the Node `worker-a` (label `node-role: worker`, InternalIP
    /// [`NODE_IP`]), a host at that address answering on 10250/TCP (alive as long as the
    /// guard returned), and [`NO_NODES_FROM_DEV`] with the CRDs it needs.
    pub async fn add_worker_node(&self) -> ChildGuard {
        install_cluster_policy_crds(&self.client).await;
        apply(&self.client, NO_NODES_FROM_DEV).await;
        let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(self.client.clone());
        let node = json!({"metadata": {"name": "worker-a", "labels": {"node-role": "worker"}}});
        nodes
            .create(&Default::default(), &serde_json::from_value(node).expect("a Node"))
            .await
            .expect("create the Node");
        let status = json!({"status": {"addresses": [{"type": "InternalIP", "address": NODE_IP}]}});
        nodes
            .patch_status("worker-a", &PatchParams::default(), &Patch::Merge(status))
            .await
            .expect("the Node's address");
        let mut net = self.kubelet.net();
        net.add_host("worker-a", &format!("{NODE_IP}/16"), "fd00:66::250:10/64");
        let mut target = net.spawn("worker-a", &[BIN, "target", "--tcp", "10250"]);
        target.wait_for_line("listening", Duration::from_secs(10));
        target
    }
}

/// Applies every object of a multi-document YAML text (server-side apply).
pub async fn apply(client: &Client, text: &str) {
    let params = PatchParams::apply("netcanary-e2e").force();
    for object in objects(text) {
        let api = api_for(client, &object, None).await.unwrap_or_else(|e| panic!("{e}"));
        api.patch(&object.name_any(), &params, &Patch::Apply(&object))
            .await
            .unwrap_or_else(|e| panic!("apply {}: {e}", describe(&object)));
    }
}

/// The objects of a multi-document YAML text, empty documents skipped.
pub fn objects(text: &str) -> Vec<DynamicObject> {
    serde_norway::Deserializer::from_str(text)
        .map(|document| serde_norway::Value::deserialize(document).expect("valid YAML"))
        .filter(|value| !value.is_null())
        .map(|value| serde_norway::from_value(value).expect("a Kubernetes object"))
        .collect()
}

/// Where `object` goes: the API of its kind, as discovery serves it, in the object's
/// namespace, else in `namespace` (as `kubectl apply -n` places objects that name none).
/// Errors name the object.
pub async fn api_for(
    client: &Client,
    object: &DynamicObject,
    namespace: Option<&str>,
) -> Result<Api<DynamicObject>, String> {
    let what = describe(object);
    let types = object.types.as_ref().ok_or_else(|| format!("{what}: no apiVersion and kind"))?;
    let gvk = GroupVersionKind::try_from(types).map_err(|e| format!("{what}: {e}"))?;
    let (resource, capabilities) =
        discovery::pinned_kind(client, &gvk).await.map_err(|e| format!("{what}: kind not served: {e}"))?;
    match (capabilities.scope, object.namespace().as_deref().or(namespace)) {
        (Scope::Namespaced, Some(namespace)) => Ok(Api::namespaced_with(client.clone(), namespace, &resource)),
        (Scope::Namespaced, None) => Err(format!("{what}: metadata.namespace: a namespaced object names none")),
        (Scope::Cluster, _) => Ok(Api::all_with(client.clone(), &resource)),
    }
}

/// `Kind namespace/name` (or `Kind name`), for messages.
pub fn describe(object: &DynamicObject) -> String {
    let kind = object.types.as_ref().map_or("object", |t| t.kind.as_str());
    match object.namespace() {
        Some(namespace) => format!("{kind} {namespace}/{}", object.name_any()),
        None => format!("{kind} {}", object.name_any()),
    }
}

/// Every (apiGroup, resource) netcanary's ClusterRole (`manifests/base/core/rbac.yaml`)
/// grants in `groups`, with the verbs of every rule that grants it.
pub fn cluster_role_grants(groups: &[&str]) -> BTreeMap<(String, String), BTreeSet<String>> {
    let text = super::read_repo_file("manifests/base/core/rbac.yaml");
    let role = serde_norway::Deserializer::from_str(&text)
        .map(|document| serde_norway::Value::deserialize(document).expect("valid YAML"))
        .find(|object| object["kind"] == "ClusterRole" && object["metadata"]["name"] == "netcanary")
        .expect("the netcanary ClusterRole");
    let strings = |value: &serde_norway::Value| -> Vec<String> {
        value.as_sequence().into_iter().flatten().map(|v| v.as_str().expect("a string").to_string()).collect()
    };
    let mut granted: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for rule in role["rules"].as_sequence().expect("rules") {
        for group in strings(&rule["apiGroups"]).into_iter().filter(|g| groups.contains(&g.as_str())) {
            for resource in strings(&rule["resources"]) {
                granted.entry((group.clone(), resource)).or_default().extend(strings(&rule["verbs"]));
            }
        }
    }
    granted
}

/// The network-policy-api CRDs netcanary reads (`tests/crds/`): ClusterNetworkPolicy
/// v1alpha2, AdminNetworkPolicy and BaselineAdminNetworkPolicy v1alpha1, served once this
/// returns.
/// The resources of the network-policy-api CRDs in `tests/crds/`.
const CLUSTER_POLICY_PLURALS: [&str; 3] =
    ["clusternetworkpolicies", "adminnetworkpolicies", "baselineadminnetworkpolicies"];

pub async fn install_cluster_policy_crds(client: &Client) {
    let plurals = CLUSTER_POLICY_PLURALS;
    for plural in plurals {
        let name = format!("{plural}.policy.networking.k8s.io");
        apply(client, &super::read_repo_file(&format!("tests/crds/{name}.yaml"))).await;
    }
    for plural in plurals {
        wait_for_crd(client, &format!("{plural}.policy.networking.k8s.io")).await;
    }
}

/// Deletes the network-policy-api CRDs (their objects with them) and waits until they are
/// gone.
pub async fn delete_cluster_policy_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let names = CLUSTER_POLICY_PLURALS.map(|plural| format!("{plural}.policy.networking.k8s.io"));
    for name in &names {
        crds.delete(name, &Default::default()).await.expect("delete a network-policy-api CRD");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for name in &names {
        while crds.get_opt(name).await.expect("read the CRD").is_some() {
            assert!(Instant::now() < deadline, "CRD {name} still there after 30 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Waits until the CRD `name` is Established and discovery serves every version of it: the
/// API server publishes a new group's discovery a moment after the condition, and an
/// apply in between finds no such kind.
pub async fn wait_for_crd(client: &Client, name: &str) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::from("not read yet");
    while Instant::now() < deadline {
        let crd = crds.get(name).await.expect("read the CRD");
        if let Err(why) = served(client, &crd).await {
            last = why;
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        return;
    }
    panic!("CRD {name} not served within 30 s: {last}");
}

async fn served(client: &Client, crd: &CustomResourceDefinition) -> Result<(), String> {
    let conditions = crd.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
    if !conditions.iter().any(|c| c.type_ == "Established" && c.status == "True") {
        return Err("not Established".into());
    }
    for version in crd.spec.versions.iter().filter(|v| v.served) {
        let gvk = GroupVersionKind::gvk(&crd.spec.group, &version.name, &crd.spec.names.kind);
        discovery::pinned_kind(client, &gvk).await.map_err(|e| format!("{gvk:?} not in discovery: {e}"))?;
    }
    Ok(())
}

/// Waits for `child` to exit and returns its output and how long that took; kills it and
/// panics (with what it wrote to stderr) when it runs longer than `timeout`. Its stdout and
/// stderr must be piped.
pub fn output_within(child: Child, timeout: Duration, what: &str) -> (Output, Duration) {
    let started = Instant::now();
    let pid = child.id().to_string();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(out) => (out.expect("wait for the process"), started.elapsed()),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            let out = rx.recv().expect("the waiting thread").expect("wait for the process");
            panic!(
                "{what} did not exit within {timeout:?}; killed it. stdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// A loopback address nothing listens on (free a moment ago), its port picked at random
/// below the kernel's ephemeral range: a port the kernel picks itself (port 0) comes from
/// that range, and before the daemon binds it the kernel may hand it out as the source port
/// of any of the tests' many outgoing connections.
pub fn free_address() -> SocketAddr {
    const LOWEST: u16 = 10000;
    let ephemeral = first_ephemeral_port();
    let bind = |port: u16| TcpListener::bind((Ipv4Addr::LOCALHOST, port)).and_then(|l| l.local_addr()).ok();
    (0..100)
        .filter(|_| ephemeral > LOWEST)
        .find_map(|_| bind(fastrand::u16(LOWEST..ephemeral)))
        .or_else(|| bind(0))
        .expect("a free loopback port")
}

/// The low end of net.ipv4.ip_local_port_range (Linux's default where it cannot be read).
fn first_ephemeral_port() -> u16 {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    range.split_whitespace().next().and_then(|low| low.parse().ok()).unwrap_or(32768)
}

/// One line per probe, for failure messages.
pub fn summary(record: &RunRecord) -> String {
    // The report `netcanary run` prints, without its colours.
    anstream::adapter::strip_str(&netcanary_report::run::table(record)).to_string()
}
