//! `netcanary serve` end to end, on the bed of `tests/common/bed.rs` (real binary, real
//! kube-apiserver, fake kubelet over network namespaces): its endpoints, the DESIGN metrics
//! after a run, how they follow the network when it stops enforcing policy, a clean
//! SIGTERM in the middle of a run, cluster policies whose CRDs are installed and then
//! deleted, or may no longer be read, while it serves, and declared intent created and
//! deleted while it serves.
//!
//! Needs root, network namespaces and the kube-apiserver fixture: see
//! `tests/common/netns.rs` and `tests/common/kube_fixture.rs` for how a test skips or fails
//! without them.

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::bed::{
    Bed, CLUSTER_POLICIES, ISOLATION_INTENT, MANAGED, NODE_IP, apply, delete_cluster_policy_crds, enforcing_rules,
    free_address, install_cluster_policy_crds, revoke_api_group, tiered_rules, wait_for_crd,
};
use k8s_openapi::api::core::v1::Node;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

/// How long a scheduled run may take to show in the metrics (runs every 3 s, each a few).
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// A `netcanary serve` process, killed on drop; its log goes to a file (a pipe nobody
/// drains would block it), quoted when a test fails.
struct Serve {
    child: Child,
    log: PathBuf,
    address: SocketAddr,
}

impl Serve {
    fn start(bed: &Bed) -> Serve {
        Serve::start_with(bed, &[])
    }

    /// [`Serve::start`] with more flags.
    fn start_with(bed: &Bed, flags: &[&str]) -> Serve {
        let address = free_address();
        let log = bed.kube.dir().join("serve.log");
        let mut command: Command = bed.netcanary("serve");
        command
            .args(["--every", "3s", "--rounds", "1", "--deadline", "30s", "--listen", &address.to_string()])
            .args(flags)
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("create the serve log"));
        let child = command.spawn().expect("start netcanary serve");
        Serve { child, log, address }
    }

    /// `GET path`: the status code and the body, or `None` while nothing answers.
    fn get(&self, path: &str) -> Option<(u16, String)> {
        let mut stream = TcpStream::connect_timeout(&self.address, Duration::from_secs(1)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(stream, "GET {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n", self.address).ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let status = response.split_whitespace().nth(1)?.parse().ok()?;
        Some((status, response.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default()))
    }

    /// Polls `path` until `done` holds for its answer; returns that answer.
    async fn wait_for(&mut self, path: &str, timeout: Duration, done: impl Fn(u16, &str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let answer = self.get(path);
            if let Some((status, body)) = &answer
                && done(*status, body)
            {
                return body.clone();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("serve exited ({status}) while waiting on {path}; its log:\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "{path} not as wanted within {timeout:?}; last answer: {answer:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("netcanary serve's log:\n{}", self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The samples of metric `name` in a Prometheus text exposition: (labels, value).
fn samples<'a>(text: &'a str, name: &str) -> Vec<(&'a str, f64)> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(rest) => rest.split_once("} ")?,
                None => ("", rest.strip_prefix(' ')?),
            };
            Some((labels, value.trim().parse().ok()?))
        })
        .collect()
}

/// The one unlabelled sample of `name`, if exported.
fn gauge(text: &str, name: &str) -> Option<f64> {
    samples(text, name).into_iter().find(|(labels, _)| labels.is_empty()).map(|(_, value)| value)
}

/// `netcanary_probes` of one `result`, if exported.
fn probes(text: &str, result: &str) -> Option<f64> {
    let label = format!("result=\"{result}\"");
    samples(text, "netcanary_probes").into_iter().find(|(labels, _)| *labels == label).map(|(_, value)| value)
}

/// Whether the exposition `text` is of a run that finished after the one of `earlier`.
fn later_run(text: &str, earlier: &str) -> bool {
    gauge(text, "netcanary_run_timestamp_seconds") > gauge(earlier, "netcanary_run_timestamp_seconds")
}

#[tokio::test]
async fn serve_exposes_metrics_follows_the_network_and_stops_cleanly() {
    let Some(bed) = Bed::new("serve_exposes_metrics_follows_the_network_and_stops_cleanly", None).await else {
        return;
    };
    bed.kubelet.net().nft_hub(&enforcing_rules(&bed.kubelet));
    let started = Instant::now();
    let mut serve = Serve::start(&bed);

    // Alive at once, ready once the watches synced.
    serve.wait_for("/healthz", Duration::from_secs(10), |status, _| status == 200).await;
    eprintln!("/healthz answered 200 after {:?}", started.elapsed());
    serve.wait_for("/readyz", Duration::from_secs(30), |status, _| status == 200).await;
    eprintln!("/readyz answered 200 after {:?}", started.elapsed());

    // The first run: every DESIGN metric, for a network that enforces the policy.
    let metrics = serve
        .wait_for("/metrics", RUN_TIMEOUT, |_, body| gauge(body, "netcanary_run_timestamp_seconds").is_some())
        .await;
    eprintln!("first run in the metrics after {:?}", started.elapsed());
    let first_run = gauge(&metrics, "netcanary_run_timestamp_seconds").expect("a run timestamp");
    assert_eq!(gauge(&metrics, "netcanary_run_success"), Some(1.0), "{metrics}\n{}", serve.log());
    assert!(gauge(&metrics, "netcanary_run_duration_seconds").is_some_and(|d| d > 0.0), "{metrics}");
    assert!(probes(&metrics, "pass").is_some_and(|n| n > 0.0), "no passing probes: {metrics}");
    for result in ["unexpected_allow", "unexpected_deny", "inconclusive"] {
        assert_eq!(probes(&metrics, result), Some(0.0), "{result} probes: {metrics}");
    }
    assert!(gauge(&metrics, "netcanary_policy_rules_covered_ratio").is_some_and(|r| r > 0.0), "{metrics}");
    assert_eq!(gauge(&metrics, "netcanary_enforcement_canary"), Some(1.0), "{metrics}");
    assert!(samples(&metrics, "netcanary_mismatch").is_empty(), "{metrics}");
    let histogram = samples(&metrics, "netcanary_probe_duration_seconds_count");
    assert!(histogram.iter().any(|(labels, n)| labels.contains("protocol=\"TCP\"") && *n > 0.0), "{metrics}");
    assert!(!samples(&metrics, "netcanary_probe_duration_seconds_bucket").is_empty(), "{metrics}");

    // The network stops enforcing anything: a later run reports the open doors.
    bed.kubelet.net().nft_flush_hub();
    let changed = Instant::now();
    let metrics = serve
        .wait_for("/metrics", RUN_TIMEOUT, |_, body| {
            gauge(body, "netcanary_enforcement_canary") == Some(0.0)
                && samples(body, "netcanary_mismatch").iter().any(|(labels, v)| {
                    labels.contains("kind=\"unexpected_allow\"")
                        && labels.contains("dst_namespace=\"prod\"")
                        && *v == 1.0
                })
        })
        .await;
    eprintln!("open network in the metrics {:?} after the change", changed.elapsed());
    assert!(gauge(&metrics, "netcanary_run_timestamp_seconds").is_some_and(|t| t > first_run), "{metrics}");

    // SIGTERM in the middle of a run: serve cleans up and exits 0.
    bed.wait_for_probe_pod(RUN_TIMEOUT).await;
    let pid = serve.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("run kill").success());
    let term = Instant::now();
    let status = loop {
        if let Some(status) = serve.child.try_wait().expect("wait for serve") {
            break status;
        }
        assert!(term.elapsed() < Duration::from_secs(10), "serve still runs 10 s after SIGTERM:\n{}", serve.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("serve exited {:?} after SIGTERM", term.elapsed());
    assert_eq!(status.code(), Some(0), "serve's exit after SIGTERM: {status}\n{}", serve.log());
    assert!(!serve.log().contains("panicked"), "{}", serve.log());
    bed.assert_no_pods(MANAGED, &format!("serve's log:\n{}", serve.log())).await;
}

/// Without the network-policy-api CRDs serve runs as usual; once they are installed and a
/// ClusterNetworkPolicy denies kube-system → dev (`CLUSTER_POLICIES` in tests/common/bed.rs),
/// a network that ignores that Deny shows as unexpected allows into dev, from kube-system.
#[tokio::test]
async fn serve_reads_cluster_policies_installed_while_it_runs() {
    let Some(bed) = Bed::new("serve_reads_cluster_policies_installed_while_it_runs", None).await else {
        return;
    };
    bed.kubelet.net().nft_hub(&enforcing_rules(&bed.kubelet));
    let mut serve = Serve::start(&bed);
    let metrics = serve
        .wait_for("/metrics", RUN_TIMEOUT, |_, body| gauge(body, "netcanary_run_timestamp_seconds").is_some())
        .await;
    assert_eq!(gauge(&metrics, "netcanary_run_success"), Some(1.0), "{metrics}\n{}", serve.log());
    assert!(samples(&metrics, "netcanary_mismatch").is_empty(), "{metrics}");

    install_cluster_policy_crds(&bed.client).await;
    apply(&bed.client, CLUSTER_POLICIES).await;
    {
        let net = bed.kubelet.net();
        net.nft_flush_hub();
        net.nft_hub(&tiered_rules(&bed.kubelet, false));
    }
    let kube_system_to_dev = |labels: &str| {
        labels.contains("kind=\"unexpected_allow\"")
            && labels.contains("src_namespace=\"kube-system\"")
            && labels.contains("dst_namespace=\"dev\"")
    };
    // Runs while the network and the policies change may see other mismatches: wait for one
    // with this one alone.
    let metrics = serve
        .wait_for("/metrics", RUN_TIMEOUT, |_, body| {
            let mismatches = samples(body, "netcanary_mismatch");
            mismatches.iter().any(|(labels, v)| kube_system_to_dev(labels) && *v == 1.0)
                && mismatches.iter().all(|(labels, v)| *v == 0.0 || kube_system_to_dev(labels))
        })
        .await;
    assert_eq!(gauge(&metrics, "netcanary_enforcement_canary"), Some(1.0), "{metrics}");
    assert!(serve.log().contains("served: watching it"), "{}", serve.log());

    // The CRDs deleted (their policies with them) and the network back to enforcing the
    // NetworkPolicies alone, every probe passes again: none is judged by a cluster policy
    // that is gone.
    delete_cluster_policy_crds(&bed.client).await;
    {
        let net = bed.kubelet.net();
        net.nft_flush_hub();
        net.nft_hub(&enforcing_rules(&bed.kubelet));
    }
    serve
        .wait_for("/metrics", RUN_TIMEOUT, |_, body| {
            later_run(body, &metrics) && samples(body, "netcanary_mismatch").iter().all(|(_, v)| *v == 0.0)
        })
        .await;
}

/// A cluster policy kind serve watched, then may no longer list (its ClusterRole narrowed
/// while it serves), is unreadable from the next run on: every probe is inconclusive,
/// rather than judged against the last policies the watch had.
#[tokio::test]
async fn serve_stops_judging_by_cluster_policies_it_may_no_longer_read() {
    let Some(bed) = Bed::new("serve_stops_judging_by_cluster_policies_it_may_no_longer_read", None).await else {
        return;
    };
    install_cluster_policy_crds(&bed.client).await;
    apply(&bed.client, CLUSTER_POLICIES).await;
    bed.kubelet.net().nft_hub(&tiered_rules(&bed.kubelet, true));
    let mut serve = Serve::start(&bed);
    let metrics =
        serve.wait_for("/metrics", RUN_TIMEOUT, |_, body| gauge(body, "netcanary_run_success") == Some(1.0)).await;
    assert!(serve.log().contains("served: watching it"), "{}", serve.log());

    assert!(revoke_api_group(&bed.client, "policy.networking.k8s.io").await > 0);
    let refused = serve
        .wait_for("/metrics", RUN_TIMEOUT, |_, body| {
            later_run(body, &metrics) && probes(body, "inconclusive").is_some_and(|n| n > 0.0)
        })
        .await;
    assert_eq!(probes(&refused, "pass"), Some(0.0), "{refused}");
    assert_eq!(gauge(&refused, "netcanary_run_success"), Some(0.0), "{refused}");
}

/// The one `netcanary_mismatch` series of `ISOLATION_INTENT` (tests/common/bed.rs) on the
/// enforcing network, by hand: dev's web-0 reached prod's api-0 on 8080/TCP, which the
/// policy allows and the intent forbids.
const DEV_TO_PROD_API_VIOLATION: &str = "dst_namespace=\"prod\",dst_workload=\"api-0\",kind=\"intent_violation\",\
     path=\"pod\",port=\"8080\",protocol=\"TCP\",src_namespace=\"dev\",src_workload=\"web-0\"";

/// The status of the newest `NetcanaryRun` that finished (run ids grow with time).
async fn newest_finished_status(bed: &Bed) -> Value {
    let finished = bed.run_records().await.into_iter().filter(|r| r.data.pointer("/status/finishedAt").is_some());
    let newest = finished.max_by_key(|r| r.name_any()).expect("a finished NetcanaryRun");
    newest.data["status"].clone()
}

/// A `NetcanaryIntent` created while serve runs (`ISOLATION_INTENT`: dev must never reach
/// prod's api on 8080/TCP, which the bed's policy allows and the enforcing network lets
/// through) is held at the next runs, as an intent violation of that cell alone, in the
/// metrics and the NetcanaryRun's status; once deleted, a run reports it no more.
#[tokio::test]
async fn serve_holds_the_network_to_intent_declared_while_it_runs() {
    let Some(bed) = Bed::new("serve_holds_the_network_to_intent_declared_while_it_runs", None).await else {
        return;
    };
    wait_for_crd(&bed.client, "netcanaryintents.netcanary.io").await;
    bed.kubelet.net().nft_hub(&enforcing_rules(&bed.kubelet));
    let started = Instant::now();
    let mut serve = Serve::start(&bed);
    let metrics = serve
        .wait_for("/metrics", RUN_TIMEOUT, |_, body| gauge(body, "netcanary_run_timestamp_seconds").is_some())
        .await;
    assert!(samples(&metrics, "netcanary_mismatch").is_empty(), "no intent yet: {metrics}");

    apply(&bed.client, ISOLATION_INTENT).await;
    let declared = Instant::now();
    let metrics =
        serve.wait_for("/metrics", RUN_TIMEOUT, |_, body| !samples(body, "netcanary_mismatch").is_empty()).await;
    eprintln!("intent violation in the metrics {:?} after the intent was declared", declared.elapsed());
    assert_eq!(samples(&metrics, "netcanary_mismatch"), [(DEV_TO_PROD_API_VIOLATION, 1.0)], "{metrics}");
    assert!(probes(&metrics, "intent_violation").is_some_and(|n| n >= 1.0), "{metrics}");
    assert_eq!(gauge(&metrics, "netcanary_enforcement_canary"), Some(1.0), "{metrics}");
    // serve writes a run's status before its metrics: the newest status holds the intent.
    let status = newest_finished_status(&bed).await;
    assert_eq!(status["result"], "Mismatch", "{status}");
    let mismatches = status["mismatches"].as_array().expect("mismatches in the status");
    assert!(!mismatches.is_empty(), "{status}");
    for m in mismatches {
        let want = json!({"kind": "intent_violation", "source": "dev/web-0", "destination": "prod/api-0",
            "port": 8080, "protocol": "TCP", "expected": "allow", "observed": "connected",
            "intent": "isolation/dev-never-reaches-prod-api (deny)"});
        let got: serde_json::Map<String, Value> =
            want.as_object().expect("an object").keys().map(|k| (k.clone(), m[k].clone())).collect();
        assert_eq!(Value::Object(got), want, "{status}");
    }
    assert_eq!(status["intentViolation"], mismatches.len(), "{status}");

    let gvk = GroupVersionKind::gvk("netcanary.io", "v1alpha1", "NetcanaryIntent");
    let intents: Api<DynamicObject> =
        Api::all_with(bed.client.clone(), &ApiResource::from_gvk_with_plural(&gvk, "netcanaryintents"));
    intents.delete("isolation", &DeleteParams::default()).await.expect("delete the NetcanaryIntent");
    let withdrawn = Instant::now();
    let metrics =
        serve.wait_for("/metrics", RUN_TIMEOUT, |_, body| samples(body, "netcanary_mismatch").is_empty()).await;
    eprintln!("no intent violation in the metrics {:?} after the intent was deleted", withdrawn.elapsed());
    assert_eq!(probes(&metrics, "intent_violation"), Some(0.0), "{metrics}");
    assert_eq!(gauge(&metrics, "netcanary_run_success"), Some(1.0), "{metrics}\n{}", serve.log());
    let status = newest_finished_status(&bed).await;
    assert_eq!(status["result"], "Passed", "{status}");
    assert_eq!(status["intentViolation"], 0, "{status}");
    assert_eq!(status["mismatches"], json!([]), "{status}");
    eprintln!("the whole test took {:?}", started.elapsed());
}

/// serve watches the Nodes once a `nodes` peer needs them, and follows them: dev's pods may
/// not reach the worker node, which the network lets them reach, until the Node is
/// relabelled out of the peer while serve runs.
#[tokio::test]
async fn serve_follows_the_nodes_a_nodes_peer_selects() {
    let Some(bed) = Bed::new("serve_follows_the_nodes_a_nodes_peer_selects", None).await else { return };
    let _kubelet_port = bed.add_worker_node().await;
    bed.kubelet.net().nft_hub(&enforcing_rules(&bed.kubelet));
    let to_node = format!("{NODE_IP}:10250/TCP");
    let mut serve = Serve::start_with(&bed, &["--to", &to_node]);
    let dev_to_node = |labels: &str| {
        labels.contains("kind=\"unexpected_allow\"")
            && labels.contains("src_namespace=\"dev\"")
            && labels.contains(&format!("dst_workload=\"{NODE_IP}\""))
            && labels.contains("port=\"10250\"")
    };
    let metrics = serve
        .wait_for("/metrics", RUN_TIMEOUT, |_, body| {
            let mismatches = samples(body, "netcanary_mismatch");
            mismatches.iter().any(|(labels, v)| dev_to_node(labels) && *v == 1.0)
                && mismatches.iter().all(|(labels, v)| *v == 0.0 || dev_to_node(labels))
        })
        .await;
    assert!(serve.log().contains(r#""served: watching it","kind":"Node""#), "{}", serve.log());

    let nodes: Api<Node> = Api::all(bed.client.clone());
    let relabel = json!({"metadata": {"labels": {"node-role": "edge"}}});
    nodes.patch("worker-a", &PatchParams::default(), &Patch::Merge(relabel)).await.expect("relabel the Node");
    serve
        .wait_for("/metrics", RUN_TIMEOUT, |_, body| {
            later_run(body, &metrics)
                && gauge(body, "netcanary_run_success") == Some(1.0)
                && samples(body, "netcanary_mismatch").iter().all(|(_, v)| *v == 0.0)
        })
        .await;
}
