//! `netcanary run` end to end: the real binary against a real kube-apiserver (the fixture),
//! with a fake kubelet that runs the probe pods as real processes in network namespaces, and
//! a network whose enforcement each scenario writes by hand in nftables, on the hub that
//! bridges every pod (subnet per namespace, so namespace-level policy is a subnet rule).
//!
//! The app: namespace `prod` isolates its pods for ingress and lets `dev` reach `app=api` on
//! 8080/TCP; `dev` has no policy; netcanary's own namespace and canary policy come from
//! `manifests/`, and the cluster DNS is dnsmasq behind the Service `kube-system/kube-dns`.
//!
//! Needs root, network namespaces and the kube-apiserver fixture: see
//! `tests/common/netns.rs` and `tests/common/kube_fixture.rs` for how a test skips or fails
//! without them.

mod common;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::kube_fixture::KubeFixture;
use common::kubelet::{FakeKubelet, KubeletOptions, PodFilter};
use common::netns::TestNet;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::{self, Scope};
use kube::{Client, ResourceExt};
use netcanary_verify::{Canary, Outcome, ProbeRecord, RunRecord};
use serde::Deserialize;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_netcanary");
const CLUSTER_DNS: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
const DNS_NAME: &str = "kubernetes.default.svc.cluster.local";
const SUBNETS: [(&str, u8); 4] = [("prod", 1), ("dev", 2), ("netcanary", 3), ("kube-system", 4)];
/// How long a finished run's pods may take to disappear (the kubelet confirms deletions).
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(15);

/// The app under test (its pods are made by [`Bed::new`], which must set their status).
const APP: &str = r#"
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

/// A CNI that enforces exactly the policies above, by subnet: `prod` takes new connections
/// only from `dev` on 8080/TCP, and netcanary's probe pods (the canary policy selects every
/// one of them) talk to nobody. Replies pass through connection tracking.
fn enforcing_rules(kubelet: &FakeKubelet) -> String {
    let (prod, dev, canary) = (kubelet.subnet("prod"), kubelet.subnet("dev"), kubelet.subnet("netcanary"));
    format!(
        "table inet netcanary_e2e {{
  chain forward {{
    type filter hook forward priority 0; policy accept;
    ct state established,related accept
    ip saddr {canary} drop
    ip daddr {canary} drop
    ip saddr {dev} ip daddr {prod} tcp dport 8080 accept
    ip daddr {prod} drop
  }}
}}
"
    )
}

/// Everything a scenario runs against. Fields drop in order: the kubelet (processes and
/// namespaces) before the API server it talks to.
struct Bed {
    kubelet: FakeKubelet,
    /// Only kept alive.
    _kube: KubeFixture,
    client: Client,
    /// What `netcanary run` uses: the admin's credentials acting as netcanary's
    /// ServiceAccount, so RBAC judges every request by `manifests/rbac.yaml`.
    kubeconfig: PathBuf,
}

/// One `netcanary run`.
struct Ran {
    record: RunRecord,
    code: i32,
    stderr: String,
    elapsed: Duration,
}

impl Ran {
    /// Reads the run record `-o json` printed, and logs the run (shown when a test fails).
    fn new(out: Output, elapsed: Duration) -> Ran {
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let record: RunRecord = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "`netcanary run -o json` printed no run record ({e}):\n{}\nstderr:\n{stderr}",
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
    async fn new(test: &str, never_start: Option<PodFilter>) -> Option<Bed> {
        let net = TestNet::new(test)?;
        let kube = KubeFixture::start_or_skip(test)?;
        let client = kube.client().await;
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for file in ["manifests/crds/netcanaryrun.yaml", "manifests/namespace.yaml", "manifests/rbac.yaml"] {
            let text = std::fs::read_to_string(root.join(file)).unwrap_or_else(|e| panic!("read {file}: {e}"));
            apply(&client, &text).await;
        }
        apply(&client, APP).await;
        wait_for_crd(&client, "netcanaryruns.netcanary.io").await;

        let mut options = KubeletOptions::new(&SUBNETS);
        if let Some(filter) = never_start {
            options.never_start = filter;
        }
        let kubelet = FakeKubelet::start(net, kube.config().await, options).await;
        kubelet.add_dns(CLUSTER_DNS, &[(DNS_NAME, "10.96.0.1")]).await;
        kubelet.add_workload(&workload("prod", "api-0", "api", &[(8080, "TCP"), (9000, "UDP")])).await;
        kubelet.add_workload(&workload("dev", "web-0", "web", &[(8080, "TCP")])).await;
        let kubeconfig = impersonating_kubeconfig(&kube, "system:serviceaccount:netcanary:netcanary");
        Some(Bed { kubelet, _kube: kube, client, kubeconfig })
    }

    /// `netcanary run -o json` against the bed, with short timeouts.
    fn command(&self) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(["run", "--kubeconfig"])
            .arg(&self.kubeconfig)
            .args(["--image", "netcanary:test", "--timeout", "1s", "--round-wait", "1s", "--rounds", "2"])
            .args(["--pod-start-timeout", "5s", "--deadline", "50s", "-o", "json"])
            .env("NETCANARY_LOG_LEVEL", "info")
            .env("NO_COLOR", "1");
        command
    }

    /// Runs `netcanary run` and checks what every run must do: finish well within its
    /// deadline and leave none of its pods behind.
    async fn run(&self) -> Ran {
        let started = Instant::now();
        let ran = Ran::new(self.command().output().expect("run netcanary"), started.elapsed());
        assert!(ran.elapsed < Duration::from_secs(50), "the run took {:?}", ran.elapsed);
        self.assert_cleaned_up(&ran).await;
        ran
    }

    async fn assert_cleaned_up(&self, ran: &Ran) {
        let pods: Api<Pod> = Api::all(self.client.clone());
        let params = ListParams::default().labels(&format!("netcanary.io/run-id={}", ran.record.run_id));
        let deadline = Instant::now() + CLEANUP_TIMEOUT;
        loop {
            let left: Vec<String> = pods.list(&params).await.expect("list pods").iter().map(|p| p.name_any()).collect();
            if left.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "pods of run {} left after it: {left:?}\n{}",
                ran.record.run_id,
                ran.stderr
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The status of the run's `NetcanaryRun` (what `kubectl get netcanaryruns` shows).
    async fn run_status(&self, run_id: &str) -> Value {
        let gvk = GroupVersionKind::gvk("netcanary.io", "v1alpha1", "NetcanaryRun");
        let runs: Api<DynamicObject> =
            Api::all_with(self.client.clone(), &ApiResource::from_gvk_with_plural(&gvk, "netcanaryruns"));
        let listed = runs.list(&ListParams::default()).await.expect("list NetcanaryRuns");
        let run = listed.items.into_iter().find(|r| r.name_any() == run_id).expect("the run's NetcanaryRun");
        run.data.get("status").cloned().unwrap_or_else(|| panic!("NetcanaryRun {run_id} has no status: {:?}", run.data))
    }

    /// The Events about the run's record.
    async fn events(&self, run_id: &str) -> Vec<Event> {
        let events: Api<Event> = Api::all(self.client.clone());
        let listed = events.list(&ListParams::default()).await.expect("list events");
        listed.items.into_iter().filter(|e| e.involved_object.name.as_deref() == Some(run_id)).collect()
    }
}

/// A copy of the fixture's admin kubeconfig that acts as `user` (`as:` in kubeconfig terms).
fn impersonating_kubeconfig(kube: &KubeFixture, user: &str) -> PathBuf {
    let text = std::fs::read_to_string(kube.kubeconfig_path()).expect("read the fixture's kubeconfig");
    let mut config: serde_norway::Value = serde_norway::from_str(&text).expect("a YAML kubeconfig");
    let users = config["users"].as_sequence_mut().expect("users in the kubeconfig");
    for entry in users {
        entry["user"]["as"] = user.into();
    }
    let path = kube.dir().join("kubeconfig-netcanary");
    std::fs::write(&path, serde_norway::to_string(&config).expect("YAML")).expect("write the kubeconfig");
    path
}

/// A workload pod: no process runs for it, the kubelet only gives it an address.
fn workload(namespace: &str, name: &str, app: &str, ports: &[(u16, &str)]) -> Pod {
    let ports: Vec<Value> =
        ports.iter().map(|(port, protocol)| json!({"containerPort": port, "protocol": protocol})).collect();
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": app}},
        "spec": {"containers": [{"name": app, "image": format!("example/{app}"), "ports": ports}]}
    }))
    .expect("a valid Pod")
}

/// Applies every object of a multi-document YAML text (server-side apply).
async fn apply(client: &Client, text: &str) {
    let params = PatchParams::apply("netcanary-e2e").force();
    for document in serde_norway::Deserializer::from_str(text) {
        let value = serde_norway::Value::deserialize(document).expect("valid YAML");
        if value.is_null() {
            continue;
        }
        let object: DynamicObject = serde_norway::from_value(value).expect("a Kubernetes object");
        let types = object.types.clone().expect("apiVersion and kind");
        let gvk = GroupVersionKind::try_from(&types).expect("a valid apiVersion");
        let (resource, capabilities) = discovery::pinned_kind(client, &gvk).await.expect("a served kind");
        let api: Api<DynamicObject> = match (capabilities.scope, object.namespace()) {
            (Scope::Namespaced, Some(namespace)) => Api::namespaced_with(client.clone(), &namespace, &resource),
            _ => Api::all_with(client.clone(), &resource),
        };
        api.patch(&object.name_any(), &params, &Patch::Apply(&object))
            .await
            .unwrap_or_else(|e| panic!("apply {} {}: {e}", types.kind, object.name_any()));
    }
}

async fn wait_for_crd(client: &Client, name: &str) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let crd = crds.get(name).await.expect("read the CRD");
        let conditions = crd.status.and_then(|s| s.conditions).unwrap_or_default();
        if conditions.iter().any(|c| c.type_ == "Established" && c.status == "True") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("CRD {name} not established");
}

fn summary(record: &RunRecord) -> String {
    let mut lines: Vec<String> = record
        .probes
        .iter()
        .map(|p| {
            format!(
                "  {} -> {} {}/{} ({}, {}): expected {}, observed {:?}: {} {}",
                p.source,
                p.destination,
                p.port,
                p.protocol,
                p.kind,
                p.purpose,
                if p.expected_allowed { "allow" } else { "deny" },
                p.observed,
                p.outcome.as_str(),
                p.detail.as_deref().unwrap_or("")
            )
        })
        .collect();
    lines.push(format!("  canary: {:?}; problems: {:?}", record.canary, record.problems));
    lines.join("\n")
}

/// Asserts every probe's outcome at once, listing all that differ.
fn assert_outcomes(ran: &Ran, want: impl Fn(&ProbeRecord) -> Outcome) {
    let wrong: Vec<String> = ran
        .record
        .probes
        .iter()
        .filter(|p| p.outcome != want(p))
        .map(|p| {
            format!(
                "  {} -> {} {}/{}: want {}, got {}",
                p.source,
                p.destination,
                p.port,
                p.protocol,
                want(p).as_str(),
                p.outcome.as_str()
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "wrong outcomes:\n{}\nrun:\n{}\nstderr:\n{}",
        wrong.join("\n"),
        summary(&ran.record),
        ran.stderr
    );
}

/// Asserts the plan holds the probes the scenarios reason about.
fn assert_plan(record: &RunRecord) {
    let has = |what: &str, test: &dyn Fn(&ProbeRecord) -> bool| {
        assert!(record.probes.iter().any(test), "no probe {what} in the plan:\n{}", summary(record));
    };
    for namespace in ["prod", "dev"] {
        has(&format!("for DNS from {namespace}"), &|p| p.kind == "dns" && p.source.namespace == namespace);
    }
    has("dev -> prod 8080/TCP, allowed", &|p| {
        p.source.namespace == "dev" && p.destination.namespace == "prod" && p.port == 8080 && p.expected_allowed
    });
    has("into prod, denied", &|p| p.destination.namespace == "prod" && !p.expected_allowed);
}

fn is_to_prod(probe: &ProbeRecord) -> bool {
    probe.kind != "dns" && probe.destination.namespace == "prod"
}

#[tokio::test]
async fn enforcing_network_passes_every_probe() {
    let Some(bed) = Bed::new("enforcing_network_passes_every_probe", None).await else { return };
    bed.kubelet.net().nft_hub(&enforcing_rules(&bed.kubelet));
    let ran = bed.run().await;
    assert_plan(&ran.record);
    assert_outcomes(&ran, |_| Outcome::Pass);
    assert_eq!(ran.record.canary, Canary::Enforced, "{}", ran.stderr);
    assert!(ran.record.problems.is_empty(), "{:?}", ran.record.problems);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let status = bed.run_status(&ran.record.run_id).await;
    assert_eq!(status["result"], "Passed", "{status}");
    assert_eq!(status["canary"]["state"], "enforced", "{status}");
    assert!(bed.events(&ran.record.run_id).await.is_empty(), "a passing run emits no Warning events");
}

#[tokio::test]
async fn network_enforcing_nothing_is_caught() {
    let Some(bed) = Bed::new("network_enforcing_nothing_is_caught", None).await else { return };
    // A probe pod left by a run that crashed (it has no NetcanaryRun): the run sweeps it.
    let leftover: Pod = serde_json::from_value(json!({
        "metadata": {
            "name": "netcanary-crashed-t0",
            "namespace": "dev",
            "labels": {"app.kubernetes.io/managed-by": "netcanary", "netcanary.io/run-id": "crashed"}
        },
        "spec": {"containers": [{"name": "netcanary", "image": "netcanary:test", "args": ["target", "--tcp", "7"]}]}
    }))
    .expect("a valid Pod");
    let dev: Api<Pod> = Api::namespaced(bed.client.clone(), "dev");
    dev.create(&Default::default(), &leftover).await.expect("create the leftover pod");
    let ran = bed.run().await;
    assert!(
        dev.get_opt("netcanary-crashed-t0")
            .await
            .expect("read the leftover pod")
            .is_none_or(|p| p.metadata.deletion_timestamp.is_some()),
        "the run did not sweep the pod a crashed run left"
    );
    assert_plan(&ran.record);
    assert_outcomes(&ran, |p| if p.expected_allowed { Outcome::Pass } else { Outcome::UnexpectedAllow });
    assert_eq!(ran.record.canary, Canary::NotEnforced);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let denied = ran.record.probes.iter().filter(|p| !p.expected_allowed).count();
    let status = bed.run_status(&ran.record.run_id).await;
    assert_eq!(status["result"], "Mismatch", "{status}");
    assert_eq!(status["unexpectedAllow"], denied, "{status}");
    assert_eq!(status["canary"]["state"], "notEnforced", "{status}");
    let mismatches = status["mismatches"].as_array().expect("mismatches in the status");
    assert_eq!(mismatches.len(), denied, "{status}");
    assert!(mismatches.iter().all(|m| m["kind"] == "unexpected_allow" && m["expected"] == "deny"), "{status}");
    let events = bed.events(&ran.record.run_id).await;
    assert_eq!(events.len(), denied, "one Warning event per mismatch: {events:?}");
    assert!(
        events.iter().all(|e| e.type_.as_deref() == Some("Warning") && e.reason.as_deref() == Some("UnexpectedAllow"))
    );
}

#[tokio::test]
async fn dropped_dns_is_an_unexpected_deny() {
    let Some(bed) = Bed::new("dropped_dns_is_an_unexpected_deny", None).await else { return };
    let dns_drop = format!(
        "table inet netcanary_dns {{
  chain forward {{
    type filter hook forward priority -10; policy accept;
    ip daddr {CLUSTER_DNS} meta l4proto {{ tcp, udp }} th dport 53 drop
  }}
}}
"
    );
    {
        let net = bed.kubelet.net();
        net.nft_hub(&enforcing_rules(&bed.kubelet));
        // A table of its own, before the enforcing one: it drops even what that one accepts.
        net.nft_hub(&dns_drop);
    }
    let ran = bed.run().await;
    assert!(ran.record.probes.iter().any(|p| p.kind == "dns"), "no DNS probe:\n{}", summary(&ran.record));
    assert_outcomes(&ran, |p| if p.kind == "dns" { Outcome::UnexpectedDeny } else { Outcome::Pass });
    assert_eq!(ran.record.canary, Canary::Enforced);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let status = bed.run_status(&ran.record.run_id).await;
    assert_eq!(status["result"], "Mismatch", "{status}");
}

#[tokio::test]
async fn probe_pod_that_never_starts_is_inconclusive() {
    // Every target in prod stays Pending: the probes into prod cannot run.
    let never_start: PodFilter = Arc::new(|pod: &Pod| {
        let first_arg =
            pod.spec.as_ref().and_then(|s| s.containers.first()).and_then(|c| c.args.as_ref()?.first().cloned());
        pod.namespace().as_deref() == Some("prod") && first_arg.as_deref() == Some("target")
    });
    let Some(bed) = Bed::new("probe_pod_that_never_starts_is_inconclusive", Some(never_start)).await else { return };
    bed.kubelet.net().nft_hub(&enforcing_rules(&bed.kubelet));
    let ran = bed.run().await;
    assert!(ran.record.probes.iter().any(is_to_prod), "no probe into prod:\n{}", summary(&ran.record));
    assert_outcomes(&ran, |p| if is_to_prod(p) { Outcome::Inconclusive } else { Outcome::Pass });
    assert_eq!(ran.record.canary, Canary::Enforced);
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    let targets = bed.kubelet.never_started();
    assert!(!targets.is_empty(), "no pod was held back");
    for target in &targets {
        assert!(
            ran.record.problems.iter().any(|p| p.contains(target.as_str())),
            "pod {target} never started, yet the run's problems do not say so: {:?}",
            ran.record.problems
        );
    }
    let status = bed.run_status(&ran.record.run_id).await;
    assert_eq!(status["result"], "Inconclusive", "{status}");
    assert!(status["problems"].as_array().is_some_and(|p| !p.is_empty()), "{status}");
}

#[tokio::test]
async fn interrupted_run_still_cleans_up() {
    let Some(bed) = Bed::new("interrupted_run_still_cleans_up", None).await else { return };
    let started = Instant::now();
    let child = bed.command().stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start netcanary");
    // Interrupted once its first pods run: they must go all the same.
    let pods: Api<Pod> = Api::all(bed.client.clone());
    let ours = ListParams::default().labels("app.kubernetes.io/managed-by=netcanary");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = pods.list(&ours).await.expect("list pods");
        if listed.items.iter().any(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")) {
            break;
        }
        assert!(Instant::now() < deadline, "no probe pod ran within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().expect("run kill").success());
    let ran = Ran::new(child.wait_with_output().expect("wait for netcanary"), started.elapsed());
    assert!(ran.record.problems.iter().any(|p| p.contains("interrupted")), "{:?}", ran.record.problems);
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    bed.assert_cleaned_up(&ran).await;
    let status = bed.run_status(&ran.record.run_id).await;
    assert_eq!(status["result"], "Inconclusive", "{status}");
}
