//! The controller at cluster scale: a real API server loaded with 5,000 pods in 200
//! namespaces and 1,000 NetworkPolicies (objects only; no pod runs), then
//! `netcanary run --dry-run` — snapshot and plan, what every run does before it starts a
//! pod — timed with its peak memory. The obvious alternative, probing the full matrix,
//! is compared by the number of probes it would need.
//!
//! `cargo bench --bench controller` (needs Go for the API server fixture; options after
//! `--`: `--pods N --namespaces N --policies N`).

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::process::Command;
use std::time::Instant;

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::{Rng, option};

/// Requests in flight while loading.
const CONCURRENCY: usize = 32;

struct Config {
    pods: usize,
    namespaces: usize,
    policies: usize,
}

fn pod(p: usize, config: &Config, rng: &mut Rng) -> (String, Value, Value) {
    let n = p % config.namespaces;
    let app = rng.below(12);
    let tier = ["frontend", "backend", "data"][app % 3];
    let mut ports = vec![json!({"name": "http", "containerPort": 8080})];
    if app % 3 == 2 {
        ports.push(json!({"name": "db", "containerPort": 5432}));
    }
    let object = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("pod-{p}"), "namespace": format!("ns-{n}"),
                     "labels": {"app": format!("app-{app}"), "tier": tier, "pod-template-hash": format!("{:08x}", rng.below(1 << 30))}},
        "spec": {"automountServiceAccountToken": false, "containers": [{"name": "c", "image": "registry.example/app:1", "ports": ports}]},
    });
    let ip = format!("10.{}.{}.{}", n / 256, n % 256, p / config.namespaces + 1);
    let status = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}});
    (format!("ns-{n}"), object, status)
}

fn policy(i: usize, config: &Config, rng: &mut Rng) -> Value {
    let n = i % config.namespaces;
    let app = |rng: &mut Rng| format!("app-{}", rng.below(12));
    let spec = match (i / config.namespaces) % 5 {
        0 => json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
        // Egress isolation (DNS only, or HTTPS out) in a third of the namespaces, as in the
        // engine benchmark; elsewhere pods reach each other wherever ingress allows.
        1 | 4 if !n.is_multiple_of(3) => json!({"podSelector": {"matchLabels": {"tier": "frontend"}}, "ingress": [{}]}),
        1 => {
            json!({"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}], "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]})
        }
        2 => {
            json!({"podSelector": {"matchLabels": {"app": app(rng)}}, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": format!("t{}", rng.below(20))}}, "podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": [app(rng), app(rng)]}]}}], "ports": [{"port": "http"}]}]})
        }
        3 => {
            json!({"podSelector": {"matchLabels": {"tier": "data"}}, "ingress": [{"from": [{"podSelector": {"matchExpressions": [{"key": "tier", "operator": "Exists"}]}}], "ports": [{"port": "db"}, {"port": 8000, "endPort": 8100}]}]})
        }
        _ => {
            json!({"podSelector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["frontend", "backend"]}]}, "policyTypes": ["Egress"], "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}], "ports": [{"port": 443}]}, {"to": [{"ipBlock": {"cidr": format!("10.0.{}.0/24", rng.below(256))}}]}]})
        }
    };
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": format!("policy-{i}"), "namespace": format!("ns-{n}")}, "spec": spec})
}

async fn load(client: &kube::Client, config: &Config) -> Result<(), kube::Error> {
    let create = PostParams::default();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    stream::iter(0..config.namespaces)
        .map(|n| {
            let name = format!("ns-{n}");
            let ns: Namespace =
                serde_json::from_value(json!({"metadata": {"name": name, "labels": {"team": format!("t{}", n % 20)}}}))
                    .unwrap();
            // No controller-manager runs, and pod admission needs the default ServiceAccount.
            let account: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "default"}})).unwrap();
            let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &name);
            let (namespaces, create) = (namespaces.clone(), create.clone());
            async move {
                namespaces.create(&create, &ns).await?;
                accounts.create(&create, &account).await
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let pods: Vec<_> = (0..config.pods).map(|p| pod(p, config, &mut rng)).collect();
    stream::iter(pods)
        .map(|(namespace, object, status)| {
            let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
            let create = create.clone();
            async move {
                let pod: Pod = serde_json::from_value(object).unwrap();
                let name = pod.metadata.name.clone().unwrap_or_default();
                api.create(&create, &pod).await?;
                api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status)).await
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    let policies: Vec<Value> = (0..config.policies).map(|i| policy(i, config, &mut rng)).collect();
    stream::iter(policies)
        .map(|object| {
            let np: NetworkPolicy = serde_json::from_value(object).unwrap();
            let api: Api<NetworkPolicy> =
                Api::namespaced(client.clone(), np.metadata.namespace.as_deref().unwrap_or_default());
            let create = create.clone();
            async move { api.create(&create, &np).await }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

fn main() {
    let config = Config {
        pods: option("--pods", 5000),
        namespaces: option("--namespaces", 200),
        policies: option("--policies", 1000),
    };
    let fixture = match common::kube_fixture::KubeFixture::start() {
        Ok(fixture) => fixture,
        Err(error) => {
            eprintln!("cannot benchmark the controller: {error}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let started = Instant::now();
    runtime.block_on(async {
        let client = fixture.client().await;
        load(&client, &config).await.expect("load the API server");
    });
    let loaded = started.elapsed();

    let binary = env!("CARGO_BIN_EXE_netcanary");
    let kubeconfig = fixture.kubeconfig_path().to_str().unwrap().to_string();
    let started = Instant::now();
    let output = Command::new("/usr/bin/time")
        .args([
            "-f",
            "%e %M",
            binary,
            "run",
            "--dry-run",
            "-o",
            "json",
            "--kubeconfig",
            &kubeconfig,
            "--max-probes",
            "500",
        ])
        .env("NETCANARY_LOG_LEVEL", "warn")
        .output()
        .expect("run /usr/bin/time (Debian package time)");
    let wall = started.elapsed();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let (_, max_rss_kib) = stderr
        .lines()
        .last()
        .and_then(|l| l.split_once(' '))
        .map(|(e, m)| (e.to_string(), m.parse::<f64>().unwrap_or(f64::NAN)))
        .unwrap_or_default();
    let plan: Value = serde_json::from_slice(&output.stdout).expect("dry-run JSON");
    let probes = plan["probes"].as_array().map_or(0, Vec::len);
    let full_matrix = config.pods * config.pods;

    println!("netcanary controller benchmark ({} cores)", std::thread::available_parallelism().map_or(1, |n| n.get()));
    println!("  API server       kube-apiserver v1.35 + etcd on loopback (tests/kube-fixture)");
    println!(
        "  loaded           {} pods, {} namespaces, {} policies in {:.1} s",
        config.pods,
        config.namespaces,
        config.policies,
        loaded.as_secs_f64()
    );
    println!(
        "  snapshot + plan  {:.2} s wall, {:.1} MiB peak (netcanary run --dry-run, /usr/bin/time)",
        wall.as_secs_f64(),
        max_rss_kib / 1024.0
    );
    println!("  planned probes   {probes} (budget 500), probe pods {}", plan["probePods"]);
    println!(
        "  rule coverage    {:.0}% ({} of {} rules)",
        plan["coverage"]["ratio"].as_f64().unwrap_or(0.0) * 100.0,
        plan["coverage"]["covered"].as_array().map_or(0, Vec::len),
        plan["coverage"]["rules"]
    );
    println!(
        "  full matrix      {full_matrix} pod pairs on one port: {:.0} x the planned probes",
        full_matrix as f64 / probes.max(1) as f64
    );
}
