//! `analyze` end to end at cluster scale: synthetic clusters of 5,000, 50,000 and 150,000
//! pods written as one JSON `List` and as multi-document YAML, then
//! `netcanary analyze -f FILE -o summary --port 8080/TCP` on each, timed with its peak
//! memory by GNU time. Prints one table row per size and format, so the growth shows.
//!
//! Each namespace holds `apps` Deployments' worth of pods (5 replicas each) and 5
//! NetworkPolicies: default deny, for egress too in a third of the namespaces, which then
//! allow DNS egress to kube-dns and egress to the internet by an ipBlock with except plus
//! a neighbouring /24; the other namespaces instead admit kube-system on the named port
//! and, to their frontends, the cluster network by an ipBlock with except. Every namespace
//! admits other teams by matchExpressions on a named port and the data tier on a named
//! port and an endPort range.
//!
//! `cargo bench --bench analyze` (needs /usr/bin/time; options after `--`: `--up-to PODS`
//! runs only the sizes up to that many pods). The files are kept under the target
//! directory's tmp folder and reused.

mod support;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use support::{Rng, option};

/// One synthetic cluster.
struct Size {
    namespaces: usize,
    /// Deployments per namespace, 5 pods each.
    apps: usize,
}

const REPLICAS: usize = 5;
const POLICIES_PER_NAMESPACE: usize = 5;
const TEAMS: usize = 20;

impl Size {
    fn pods(&self) -> usize {
        self.namespaces * self.apps * REPLICAS
    }

    /// Every object of the cluster, in the order `kubectl get ns,pods,networkpolicies -A`
    /// lists them.
    fn objects(&self, mut emit: impl FnMut(&Value)) {
        emit(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}}));
        for n in 0..self.namespaces {
            let env = ["production", "staging", "dev"][n % 3];
            emit(&json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": format!("ns-{n}"), "labels": {"team": format!("t{}", n % TEAMS), "env": env}}}));
        }
        emit(&json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "coredns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
            "spec": {"containers": [{"name": "coredns", "image": "coredns:1.11", "ports": [
                {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"}]}]},
            "status": {"phase": "Running", "podIP": "10.255.0.10"}}));
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for n in 0..self.namespaces {
            for app in 0..self.apps {
                // One ReplicaSet per Deployment: its replicas share the hash.
                let hash = format!("{:010x}", rng.below(1 << 40));
                let tier = ["frontend", "backend", "data"][app % 3];
                let mut ports = vec![json!({"name": "http", "containerPort": 8080, "protocol": "TCP"})];
                if tier == "data" {
                    ports.push(json!({"name": "db", "containerPort": 5432, "protocol": "TCP"}));
                }
                for r in 0..REPLICAS {
                    let ip = format!("10.{}.{}.{}", n / 256, n % 256, app * REPLICAS + r + 1);
                    emit(&json!({"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": format!("app-{app}-{hash}-{r}"), "namespace": format!("ns-{n}"),
                            "labels": {"app": format!("app-{app}"), "tier": tier, "version": format!("v{}", app % 2),
                                       "pod-template-hash": hash}},
                        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1", "ports": ports}]},
                        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}}));
                }
            }
        }
        for n in 0..self.namespaces {
            for p in 0..POLICIES_PER_NAMESPACE {
                emit(&self.policy(n, p));
            }
        }
    }

    fn policy(&self, n: usize, p: usize) -> Value {
        let egress_denied = n.is_multiple_of(3);
        let app = |k: usize| format!("app-{}", (n + k) % self.apps);
        let (name, spec) = match p {
            0 => (
                "default-deny",
                json!({"podSelector": {}, "policyTypes": if egress_denied { json!(["Ingress", "Egress"]) } else { json!(["Ingress"]) }}),
            ),
            1 if egress_denied => (
                "allow-dns",
                json!({"podSelector": {}, "policyTypes": ["Egress"], "egress": [{
                    "to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]}),
            ),
            1 => (
                "allow-from-kube-system",
                json!({"podSelector": {}, "ingress": [{
                    "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
                    "ports": [{"port": "http"}]}]}),
            ),
            2 => (
                "allow-from-team",
                json!({"podSelector": {"matchLabels": {"app": app(0)}}, "ingress": [{
                    "from": [{"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "In",
                                "values": [format!("t{}", n % TEAMS), format!("t{}", (n + 7) % TEAMS)]}]},
                              "podSelector": {"matchExpressions": [
                                {"key": "app", "operator": "In", "values": [app(1), app(2)]},
                                {"key": "version", "operator": "NotIn", "values": ["v9"]}]}}],
                    "ports": [{"port": "http"}]}]}),
            ),
            3 => (
                "allow-to-data",
                json!({"podSelector": {"matchLabels": {"tier": "data"}}, "ingress": [{
                    "from": [{"podSelector": {"matchExpressions": [{"key": "tier", "operator": "Exists"}]}}],
                    "ports": [{"port": "db"}, {"port": 8000, "endPort": 8100}]}]}),
            ),
            _ if egress_denied => (
                "allow-internet",
                json!({"podSelector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["frontend", "backend"]}]},
                    "policyTypes": ["Egress"], "egress": [
                        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12"]}}], "ports": [{"port": 443}]},
                        {"to": [{"ipBlock": {"cidr": format!("10.{}.{}.0/24", (n + 1) / 256 % 256, (n + 1) % 256)}}]}]}),
            ),
            _ => (
                "allow-from-cluster",
                json!({"podSelector": {"matchLabels": {"tier": "frontend"}}, "ingress": [{
                    "from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.0.0.0/16"]}}],
                    "ports": [{"port": 8080}]}]}),
            ),
        };
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": format!("ns-{n}")}, "spec": spec})
    }

    /// Writes the cluster as one JSON `List` (what `kubectl get -o json` prints).
    fn write_json(&self, path: &Path) -> std::io::Result<()> {
        let mut out = BufWriter::new(File::create(path)?);
        out.write_all(b"{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [\n")?;
        let mut result = Ok(());
        let mut first = true;
        self.objects(|object| {
            if result.is_ok() {
                result = out
                    .write_all(if first { b"  " } else { b",\n  " })
                    .and_then(|()| serde_json::to_writer(&mut out, object).map_err(std::io::Error::other));
                first = false;
            }
        });
        result?;
        out.write_all(b"\n]}\n")?;
        out.flush()
    }

    /// Writes the cluster as multi-document YAML, one object per document.
    fn write_yaml(&self, path: &Path) -> std::io::Result<()> {
        let mut out = BufWriter::new(File::create(path)?);
        let mut result = Ok(());
        self.objects(|object| {
            if result.is_ok() {
                result = serde_norway::to_string(object)
                    .map_err(std::io::Error::other)
                    .and_then(|text| write!(out, "---\n{text}"));
            }
        });
        result?;
        out.flush()
    }
}

/// What GNU time and the summary say about one run.
struct Measured {
    seconds: f64,
    peak_mib: f64,
    lines: usize,
    classes: String,
}

fn measure(input: &Path) -> Measured {
    let output = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(env!("CARGO_BIN_EXE_netcanary"))
        .args(["analyze", "-o", "summary", "--port", "8080/TCP", "-f"])
        .arg(input)
        .env("NO_COLOR", "1")
        .output()
        .expect("/usr/bin/time runs (GNU time is needed)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "analyze failed on {}:\n{stderr}", input.display());
    let field = |name: &str| {
        stderr.lines().find_map(|l| l.trim().strip_prefix(name)).unwrap_or_else(|| panic!("no {name:?} in:\n{stderr}"))
    };
    let wall = field("Elapsed (wall clock) time (h:mm:ss or m:ss): ");
    let seconds = wall.split(':').fold(0.0, |total, part| total * 60.0 + part.parse::<f64>().unwrap_or(0.0));
    let peak_mib = field("Maximum resident set size (kbytes): ").parse::<f64>().unwrap_or(f64::NAN) / 1024.0;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let classes = stdout
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .find(|w| w[1].trim_end_matches([',', ';']) == "classes")
        .map_or_else(|| "?".to_string(), |w| w[0].to_string());
    Measured { seconds, peak_mib, lines: stdout.lines().count(), classes }
}

fn main() {
    let up_to = option("--up-to", 150_000);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("analyze-bench");
    std::fs::create_dir_all(&dir).expect("create the bench folder");
    let sizes =
        [Size { namespaces: 200, apps: 5 }, Size { namespaces: 2000, apps: 5 }, Size { namespaces: 2000, apps: 15 }];
    println!(
        "netcanary analyze -o summary --port 8080/TCP ({} cores)\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("| pods | namespaces | policies | classes | input | size | time | peak memory | summary lines |");
    println!("| ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |");
    for size in sizes.iter().filter(|s| s.pods() <= up_to) {
        for (format, write) in [("JSON List", Size::write_json as fn(&Size, &Path) -> _), ("YAML", Size::write_yaml)] {
            let extension = if format == "YAML" { "yaml" } else { "json" };
            let path = dir.join(format!("cluster-{}-{}.{extension}", size.pods(), size.namespaces));
            if !path.exists() {
                let partial = path.with_extension("partial");
                write(size, &partial).expect("write the synthetic cluster");
                std::fs::rename(&partial, &path).expect("move the synthetic cluster in place");
            }
            let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
            let m = measure(&path);
            println!(
                "| {} | {} | {} | {} | {format} | {:.1} MB | {:.2} s | {:.0} MiB | {} |",
                size.pods() + 1,
                size.namespaces + 1,
                size.namespaces * POLICIES_PER_NAMESPACE,
                m.classes,
                bytes as f64 / 1e6,
                m.seconds,
                m.peak_mib,
                m.lines
            );
        }
    }
}
