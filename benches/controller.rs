//! The controller at cluster scale: a real API server loaded with 5,000 pods in 200
//! namespaces and 1,000 NetworkPolicies (objects only; no pod runs), then
//! `netcanary run --dry-run` — snapshot and plan, what every run does before it starts a
//! pod — timed with its peak memory, in a process of its own. The obvious alternative,
//! probing the full matrix, is compared by the number of probes it would need.
//!
//! Two phases, timed apart: setup (start the API server, create every object through the
//! API as a cluster's controllers do, namespaces first, 64 requests in flight) and the
//! measured `netcanary run --dry-run`, which lists page by page. Nothing is cached on
//! disk between runs: each starts an empty API server.
//!
//! `cargo bench --bench controller` (needs Go for the API server fixture; options after
//! `--`: `--pods N --namespaces N --policies N`; `--table` also prints the head of the dry
//! run's table; `--serve` also starts `netcanary serve`
//! on the loaded server and reads its resident memory once its watches have synced;
//! `--in-process` plans the same objects without a server, with the rule coverage for
//! a range of probe-pod budgets, each with its busiest probe pod and its worst-case round;
//! there `--max-probes N` and `--max-round-time SECONDS` change those budgets, and
//! `--budgets A,B,..` the probe-pod budgets tried).

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use netcanary_orchestrator::run::{RunOptions, plan};
use netcanary_orchestrator::snapshot::{ClusterScoped, DnsService, build};
use serde_json::{Value, json};
use support::{Rng, option};

/// Requests in flight while loading.
const CONCURRENCY: usize = 64;

struct Config {
    pods: usize,
    namespaces: usize,
    policies: usize,
}

/// The synthetic cluster's objects: namespaces, pods (with their status) and policies.
struct Objects {
    namespaces: Vec<Value>,
    pods: Vec<(String, Value, Value)>,
    policies: Vec<Value>,
}

fn objects(config: &Config) -> Objects {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let namespaces = (0..config.namespaces)
        .map(|n| json!({"metadata": {"name": format!("ns-{n}"), "labels": {"team": format!("t{}", n % 20)}}}))
        .collect();
    let pods = (0..config.pods).map(|p| pod(p, config, &mut rng)).collect();
    let policies = (0..config.policies).map(|i| policy(i, config, &mut rng)).collect();
    Objects { namespaces, pods, policies }
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

async fn load(client: &kube::Client, objects: Objects) -> Result<(), kube::Error> {
    let create = PostParams::default();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    stream::iter(objects.namespaces)
        .map(|object| {
            let ns: Namespace = serde_json::from_value(object).unwrap();
            // No controller-manager runs, and pod admission needs the default ServiceAccount.
            let account: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "default"}})).unwrap();
            let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns.metadata.name.clone().unwrap());
            let (namespaces, create) = (namespaces.clone(), create.clone());
            async move {
                namespaces.create(&create, &ns).await?;
                accounts.create(&create, &account).await
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    stream::iter(objects.pods)
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
    stream::iter(objects.policies)
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

/// Plans in this process, from the objects as the API server would hand them over: the
/// planner's share of a dry run, and the coverage each probe-pod budget buys.
fn in_process(config: &Config) {
    let objects = objects(config);
    let started = Instant::now();
    let namespaces = objects.namespaces.into_iter().map(|o| serde_json::from_value(o).unwrap()).collect();
    let pods = (objects.pods.into_iter())
        .map(|(_, mut object, status)| {
            object["status"] = status["status"].clone();
            serde_json::from_value(object).unwrap()
        })
        .collect();
    let policies = objects.policies.into_iter().map(|o| serde_json::from_value(o).unwrap()).collect();
    let snapshot =
        build(namespaces, pods, policies, ClusterScoped::default(), &[], &DnsService::default()).expect("a snapshot");
    println!(
        "netcanary planner benchmark, in process: {} pods, {} namespaces, {} policies, {} classes (built in {:.2} s)",
        config.pods,
        config.namespaces,
        config.policies,
        netcanary_policy::PolicyIndex::new(&snapshot.cluster).classes().len(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "  {:>11}  {:>10}  {:>6}  {:>8}  {:>16}  {:>12}  {:>8}  {:>8}",
        "pod budget", "probe pods", "probes", "plan s", "covered of rules", "of coverable", "busiest", "round s"
    );
    let mut why: BTreeMap<String, usize> = BTreeMap::new();
    // `--max-round-time S` (seconds) lifts the default of one wave of probes per round.
    let max_round_time = std::env::args()
        .any(|a| a == "--max-round-time")
        .then(|| Duration::from_secs(option("--max-round-time", 0) as u64));
    for budget in option_list("--budgets", &[25, 50, 100, 200, 300, 400, 500, 600, 650]) {
        let options = RunOptions {
            planner: netcanary_planner::Options {
                max_probe_pods: budget,
                max_probes: option("--max-probes", netcanary_planner::DEFAULT_MAX_PROBES),
                timing: netcanary_planner::Timing { max_round_time, ..netcanary_planner::Timing::default() },
                ..netcanary_planner::Options::default()
            },
            ..RunOptions::default()
        };
        let started = Instant::now();
        let plan = plan(&snapshot, &options);
        let seconds = started.elapsed().as_secs_f64();
        let coverage = &plan.coverage;
        println!(
            "  {budget:>11}  {:>10}  {:>6}  {seconds:>8.2}  {:>7} of {:>6}  {:>11.0}%  {:>8}  {:>8.1}",
            plan.probe_pods(),
            plan.probes.len(),
            coverage.covered.len(),
            coverage.rules,
            100.0 * coverage.covered.len() as f64 / coverage.coverable().max(1) as f64,
            plan.wall_time.busiest_source,
            plan.wall_time.round_probing.as_secs_f64(),
        );
        why.clear();
        for (rule, reason) in &coverage.uncovered {
            if !coverage.budget.contains(rule) {
                *why.entry(reason.clone()).or_default() += 1;
            }
        }
    }
    println!("  rules no budget covers:");
    for (reason, rules) in why {
        println!("  {rules:>6}  {reason}");
    }
}

/// `--name a,b,c` on the command line, or `default`.
fn option_list(name: &str, default: &[usize]) -> Vec<usize> {
    let args: Vec<String> = std::env::args().collect();
    (args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)))
        .map_or_else(|| default.to_vec(), |v| v.split(',').filter_map(|n| n.parse().ok()).collect())
}

fn main() {
    let config = Config {
        pods: option("--pods", 5000),
        namespaces: option("--namespaces", 200),
        policies: option("--policies", 1000),
    };
    if std::env::args().any(|a| a == "--in-process") {
        in_process(&config);
        return;
    }
    let started = Instant::now();
    let fixture = match common::kube_fixture::KubeFixture::start() {
        Ok(fixture) => fixture,
        Err(error) => {
            eprintln!("cannot benchmark the controller: {error}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = fixture.client().await;
        load(&client, objects(&config)).await.expect("load the API server");
    });
    let setup = started.elapsed();

    let binary = env!("CARGO_BIN_EXE_netcanary");
    let kubeconfig = fixture.kubeconfig_path().to_str().unwrap().to_string();
    let budget = option("--max-probe-pods", netcanary_planner::DEFAULT_MAX_PROBE_PODS).to_string();
    let started = Instant::now();
    let output = Command::new("/usr/bin/time")
        .args(["-f", "%e %M", binary, "run", "--dry-run", "-o", "json", "--kubeconfig", &kubeconfig])
        .args(["--max-probe-pods", &budget])
        .env("NETCANARY_LOG_LEVEL", "warn")
        .output()
        .expect("run /usr/bin/time (Debian package time)");
    let wall = started.elapsed();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let max_rss_kib = (stderr.lines().last().and_then(|l| l.split_once(' ')))
        .map_or(f64::NAN, |(_, m)| m.parse::<f64>().unwrap_or(f64::NAN));
    let plan: Value = serde_json::from_slice(&output.stdout).expect("dry-run JSON");
    let probes = plan["probes"].as_array().map_or(0, Vec::len);
    let full_matrix = config.pods * config.pods;

    println!("netcanary controller benchmark ({} cores)", std::thread::available_parallelism().map_or(1, |n| n.get()));
    println!("  API server       kube-apiserver v1.35 + etcd on loopback (tests/kube-fixture)");
    println!(
        "  setup            {} pods, {} namespaces, {} policies: server started and loaded in {:.1} s (not measured below)",
        config.pods,
        config.namespaces,
        config.policies,
        setup.as_secs_f64()
    );
    println!(
        "  snapshot + plan  {:.2} s wall, {:.1} MiB peak (netcanary run --dry-run, /usr/bin/time)",
        wall.as_secs_f64(),
        max_rss_kib / 1024.0
    );
    println!("  plan             {probes} probes from {} probe pods (budget {budget})", plan["probePodsStarted"]);
    println!(
        "  rule coverage    {} of {} rules ({} can be covered)",
        plan["coverage"]["covered"].as_array().map_or(0, Vec::len),
        plan["coverage"]["rules"],
        plan["coverage"]["coverable"]
    );
    let time = &plan["wallTime"];
    println!(
        "  wall time        probing at most {} s a round (the busiest probe pod sends {} probes: {} wave(s) of {}); the whole run at most {} s, deadline {} s",
        time["roundProbingSeconds"],
        time["busiestProbePodProbes"],
        time["waves"],
        time["concurrency"],
        time["worstCaseSeconds"],
        time["deadlineSeconds"]
    );
    println!(
        "  full matrix      {full_matrix} pod pairs on one port: {:.0} x the planned probes",
        full_matrix as f64 / probes.max(1) as f64
    );
    if std::env::args().any(|a| a == "--table") {
        let table = Command::new(binary)
            .args(["run", "--dry-run", "--kubeconfig", &kubeconfig, "--max-probe-pods", &budget])
            .env("NETCANARY_LOG_LEVEL", "warn")
            .output()
            .expect("run netcanary run --dry-run");
        assert!(table.status.success(), "{}", String::from_utf8_lossy(&table.stderr));
        let text = String::from_utf8_lossy(&table.stdout);
        println!("  the dry run's table, to its coverage line:");
        for line in text.lines().take_while(|l| !l.trim_start().starts_with("uncovered")) {
            println!("    {line}");
        }
    }
    if std::env::args().any(|a| a == "--serve") {
        serve(binary, &kubeconfig);
    }
}

/// Starts `netcanary serve` on the loaded server and reports when its watches synced, its
/// resident memory then (the watch caches) and its peak 30 s later. Its first run ends
/// at once, before its snapshot: the fixture serves no NetcanaryRun resource.
fn serve(binary: &str, kubeconfig: &str) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let started = Instant::now();
    let mut child = Command::new(binary)
        .args(["serve", "--kubeconfig", kubeconfig, "--every", "1h", "--listen", &format!("127.0.0.1:{port}")])
        .env("NETCANARY_LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start netcanary serve");
    let ready = format!("http://127.0.0.1:{port}/readyz");
    while ureq::get(&ready).call().is_err() {
        assert!(child.try_wait().expect("serve's status").is_none(), "netcanary serve exited");
        assert!(started.elapsed() < Duration::from_secs(600), "serve's watches did not sync in 10 minutes");
        std::thread::sleep(Duration::from_millis(200));
    }
    let synced = started.elapsed();
    let status = |field: &str| {
        let text = std::fs::read_to_string(format!("/proc/{}/status", child.id())).expect("serve's /proc status");
        let kib = text
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok());
        kib.unwrap_or(f64::NAN) / 1024.0
    };
    let cached = status("VmRSS:");
    std::thread::sleep(Duration::from_secs(30));
    println!(
        "  serve            watches synced in {:.1} s; {cached:.1} MiB resident then, {:.1} MiB peak",
        synced.as_secs_f64(),
        status("VmHWM:")
    );
    let _ = child.kill();
    let _ = child.wait();
}
