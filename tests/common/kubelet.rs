//! A fake kubelet (and scheduler) for the tests that run `netcanary run` against the
//! kube-apiserver fixture.
//!
//! The fixture is only an API server: nothing schedules pods, runs them, reports their
//! status or confirms their deletion, and no controller-manager makes the `default`
//! ServiceAccount that pod admission insists on. [`FakeKubelet`] does all of that for the
//! pods netcanary creates (label `app.kubernetes.io/managed-by=netcanary`), with real
//! processes on a real network:
//!
//! - it binds each new pod to [`NODE`] (the `pods/binding` subresource, as the scheduler
//!   does), gives it an address from its namespace's subnet, makes a network-namespace host
//!   for it on the [`TestNet`] bridge, and runs the container's `args` with the netcanary
//!   binary built for this test, with the container's `env` and a termination log file;
//! - it writes the status a kubelet writes (Running with the pod IP, then Succeeded/Failed
//!   with the exit code and the termination log as the message); readiness gates stay unset,
//!   so netcanary's pods are never Ready, as in a cluster;
//! - when a pod gets a deletionTimestamp it kills the process, removes the host and confirms
//!   the deletion (grace period 0), which is the only way a bound pod ever goes away;
//! - with [`KubeletOptions::tls`], it serves the container logs on the kubelet's HTTPS
//!   endpoint, where the API server's `pods/log` reads them (`tests/common/kubelet_api.rs`):
//!   what a container wrote to stderr, then to stdout.
//!
//! Addresses: namespace `ns` with subnet number `N` (see [`KubeletOptions::subnets`]) gets
//! `10.66.N.0/24`, so a test expresses namespace-level policy as nftables rules on subnets
//! (see [`FakeKubelet::subnet`]). Every host has `10.66.N.H/16` on the one bridge. Without a
//! node address ([`KubeletOptions::node_ip`]) the Service range [`SERVICE_CIDR`] is on-link:
//! there is no kube-proxy, so a Service's ClusterIP is reachable only where a test puts it
//! on a host, as [`FakeKubelet::add_dns`] does, and pods' `hostIP` is 127.0.0.1. With one
//! (the node bed, `tests/common/node.rs`), the node's address sits on the hub's bridge, pods
//! route everything else through it as behind a CNI's bridge, and it is their `hostIP` and
//! the Node's `InternalIP`.
//!
//! The Node names `localhost` as its `Hostname` address, which the API server prefers for
//! reaching a kubelet: the fixture runs on loopback, and that is where the endpoint listens.
//!
//! The kubelet runs in its own thread with its own runtime and client, so a test may block
//! (e.g. on the `netcanary run` child process) while pods start. Dropping it stops that
//! thread, kills every process and deletes every namespace, also when a test panics.

#![allow(dead_code)] // Each integration test uses a different part of the harness.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service, ServiceAccount};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::kubelet_api::{ContainerLogs, KubeletApi, KubeletTls};
use super::netns::{ChildGuard, TestNet};

/// The one node every pod is bound to.
pub const NODE: &str = "netcanary-test-node";
/// The Service range of the kube-apiserver fixture (`--service-cluster-ip-range`).
pub const SERVICE_CIDR: &str = "10.96.0.0/16";
/// The pods the kubelet runs: what netcanary puts on every pod it creates.
const MANAGED: &str = "app.kubernetes.io/managed-by=netcanary";
const BIN: &str = env!("CARGO_BIN_EXE_netcanary");
/// How often the API server is polled: fast enough that pod start-up adds little to a run.
const POLL: Duration = Duration::from_millis(150);
/// The first host number handed out in a namespace's subnet (below it: room for a test).
const FIRST_HOST: u8 = 10;
/// How long a `netcanary target` may take to print `listening`.
const TARGET_READY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long dnsmasq may take to answer.
const DNS_READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an exited container's output may take to reach its log.
const LOG_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Where pods sit: every address the node bed gives out (`10.66.N.H`) and its own.
pub const POD_CIDR: &str = "10.66.0.0/16";

/// Decides which pods are never started (they stay Pending, unbound, without an IP).
pub type PodFilter = Arc<dyn Fn(&Pod) -> bool + Send + Sync>;

pub struct KubeletOptions {
    /// The subnet number `N` of each namespace pods run in: its pods get `10.66.N.0/24`.
    /// A pod in a namespace not listed here fails to start.
    pub subnets: BTreeMap<String, u8>,
    /// Pods it returns true for are never started.
    pub never_start: PodFilter,
    /// The certificates of the kubelet's HTTPS endpoint; `None`: no endpoint, no logs.
    pub tls: Option<KubeletTls>,
    /// The node's address on the hub's bridge (which the caller puts there), when the bed
    /// has a node (see the module documentation).
    pub node_ip: Option<Ipv4Addr>,
    /// How many bytes of a terminated container's message the pod's status keeps. A kubelet
    /// reads at most the last 4 KiB of the file, then keeps the first 12 KiB / N of it, N
    /// counting the pod's containers, init and ephemeral containers: [`MESSAGE_BYTES`] for
    /// netcanary's pods as created, less for one a mesh or an injector added containers to.
    pub termination_message_budget: usize,
    /// The node's IPv6 address, when pods are to report their IPv6 address first (as in a
    /// cluster whose primary family is IPv6): netcanary then probes over IPv6.
    pub node_ip6: Option<Ipv6Addr>,
}

/// What a kubelet keeps of the message of a pod with at most three containers.
pub const MESSAGE_BYTES: usize = 4096;

impl KubeletOptions {
    pub fn new(subnets: &[(&str, u8)]) -> Self {
        Self {
            subnets: subnets.iter().map(|(ns, n)| (ns.to_string(), *n)).collect(),
            never_start: Arc::new(|_| false),
            tls: None,
            node_ip: None,
            termination_message_budget: MESSAGE_BYTES,
            node_ip6: None,
        }
    }
}

/// See the module documentation.
pub struct FakeKubelet {
    shared: Arc<Shared>,
    /// The test's client (made in the test's runtime, unlike the kubelet thread's).
    client: Client,
    thread: Option<JoinHandle<()>>,
    /// Processes started for the test's own pods (the DNS server); killed on drop.
    extras: Mutex<Vec<ChildGuard>>,
    /// The HTTPS endpoint, stopped on drop.
    api: Option<KubeletApi>,
}

/// What the kubelet thread and the test share.
struct Shared {
    net: Mutex<TestNet>,
    subnets: BTreeMap<String, u8>,
    /// The next host number of each namespace; never reused, so no neighbour cache anywhere
    /// holds a stale address.
    next_host: Mutex<HashMap<String, u8>>,
    hosts: AtomicUsize,
    /// `namespace/name` of every pod held back by [`KubeletOptions::never_start`].
    held_back: Mutex<Vec<String>>,
    /// Where each running pod's container log is, for the HTTPS endpoint.
    logs: ContainerLogs,
    node_ip: Option<Ipv4Addr>,
    node_ip6: Option<Ipv6Addr>,
    termination_message_budget: usize,
    /// The folder of the cluster DNS's hosts file, once there is a cluster DNS.
    dns_hosts: Mutex<Option<PathBuf>>,
    stop: AtomicBool,
}

impl Shared {
    fn allocate(&self, namespace: &str) -> Result<Ipv4Addr, String> {
        let subnet = *self
            .subnets
            .get(namespace)
            .ok_or_else(|| format!("namespace {namespace} has no subnet in KubeletOptions::subnets"))?;
        let mut next = self.next_host.lock().unwrap_or_else(|e| e.into_inner());
        let host = next.entry(namespace.to_string()).or_insert(FIRST_HOST);
        if *host == u8::MAX {
            return Err(format!("subnet of namespace {namespace} exhausted"));
        }
        *host += 1;
        Ok(Ipv4Addr::new(10, 66, subnet, *host - 1))
    }

    fn net(&self) -> MutexGuard<'_, TestNet> {
        self.net.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a host with `ip` (and an IPv6 address derived from it) and a route to Services:
    /// through the node when there is one, else the Service range on-link. Returns its name.
    fn add_host(&self, ip: Ipv4Addr) -> String {
        let name = format!("p{}", self.hosts.fetch_add(1, Ordering::Relaxed));
        let mut net = self.net();
        net.add_host(&name, &format!("{ip}/16"), &format!("{}/64", ipv6_of(ip)));
        let route = match self.node_ip {
            Some(node) => {
                vec!["ip".to_string(), "route".into(), "add".into(), "default".into(), "via".into(), node.to_string()]
            }
            None => {
                vec!["ip".to_string(), "route".into(), "add".into(), SERVICE_CIDR.into(), "dev".into(), "eth0".into()]
            }
        };
        let route: Vec<&str> = route.iter().map(String::as_str).collect();
        let out = net.exec(&name, &route);
        assert!(out.status.success(), "{route:?} in {name}: {}", String::from_utf8_lossy(&out.stderr));
        name
    }

    /// A pod's addresses as its status lists them, the primary first.
    fn pod_ips(&self, ip: Ipv4Addr) -> Vec<String> {
        match self.node_ip6 {
            Some(_) => vec![ipv6_of(ip).to_string(), ip.to_string()],
            None => vec![ip.to_string()],
        }
    }

    /// What a pod's status says of its node: the node's address, or loopback.
    fn host_ip(&self) -> String {
        self.node_ip.map_or_else(|| "127.0.0.1".to_string(), |ip| ip.to_string())
    }
}

impl FakeKubelet {
    /// Registers the node, makes the `default` ServiceAccount in every namespace that exists
    /// (and, from then on, in every new one), and starts running netcanary's pods on `net`.
    /// Create the namespaces a test uses before this, so its first pods are not refused.
    pub async fn start(net: TestNet, config: kube::Config, options: KubeletOptions) -> FakeKubelet {
        let client = Client::try_from(config.clone()).expect("a client for the fake kubelet");
        let logs = ContainerLogs::default();
        let api = options.tls.as_ref().map(|tls| KubeletApi::start(tls, Arc::clone(&logs)));
        register_node(&client, options.node_ip, options.node_ip6, api.as_ref().map(KubeletApi::port)).await;
        let mut accounts = HashSet::new();
        ensure_service_accounts(&client, &mut accounts).await.expect("create the default ServiceAccounts");
        let shared = Arc::new(Shared {
            net: Mutex::new(net),
            subnets: options.subnets,
            next_host: Mutex::new(HashMap::new()),
            hosts: AtomicUsize::new(0),
            held_back: Mutex::new(Vec::new()),
            logs,
            node_ip: options.node_ip,
            node_ip6: options.node_ip6,
            termination_message_budget: options.termination_message_budget,
            dns_hosts: Mutex::new(None),
            stop: AtomicBool::new(false),
        });
        let thread_shared = Arc::clone(&shared);
        let never_start = options.never_start;
        let thread = std::thread::Builder::new()
            .name("fake-kubelet".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the fake kubelet's runtime");
                runtime.block_on(async move {
                    let client = Client::try_from(config).expect("a client for the fake kubelet");
                    let mut kubelet = Kubelet {
                        client,
                        shared: thread_shared,
                        never_start,
                        accounts,
                        pods: HashMap::new(),
                        ignored: HashSet::new(),
                        dns_records: String::new(),
                        slices: HashSet::new(),
                    };
                    kubelet.run().await;
                });
            })
            .expect("start the fake kubelet's thread");
        FakeKubelet { shared, client, thread: Some(thread), extras: Mutex::new(Vec::new()), api }
    }

    /// The network, e.g. to load nftables rules into its hub with [`TestNet::nft_hub`].
    pub fn net(&self) -> MutexGuard<'_, TestNet> {
        self.shared.net()
    }

    /// `namespace/name` of the pods [`KubeletOptions::never_start`] held back so far.
    pub fn never_started(&self) -> Vec<String> {
        self.shared.held_back.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `10.66.N.0/24`: the subnet of `namespace`'s pods, for nftables rules.
    pub fn subnet(&self, namespace: &str) -> String {
        let n = self.shared.subnets.get(namespace).unwrap_or_else(|| panic!("namespace {namespace} has no subnet"));
        format!("10.66.{n}.0/24")
    }

    /// Creates a pod that runs no process (a workload netcanary mirrors), binds it and
    /// reports it Running with an address from its namespace's subnet.
    pub async fn add_workload(&self, pod: &Pod) -> Ipv4Addr {
        let namespace = pod.namespace().expect("the pod names its namespace");
        let ip = self.shared.allocate(&namespace).unwrap_or_else(|e| panic!("{e}"));
        self.create_running(pod, ip).await;
        ip
    }

    /// The cluster DNS: pod `kube-system/coredns-0` (label `k8s-app=kube-dns`, ports 53
    /// named `dns` and `dns-tcp`) served by dnsmasq, the Service `kube-system/kube-dns` with
    /// `cluster_ip` and its EndpointSlice. dnsmasq answers `answers` (name → IPv4) and
    /// `NAME.NAMESPACE.svc.cluster.local` with the ClusterIP of every Service, which the
    /// kubelet keeps in a hosts file dnsmasq watches (`--hostsdir`): the part of a cluster
    /// DNS the probes and the bed's scenarios use, from the server the bed already runs.
    /// Without a node the ClusterIP sits on the DNS host itself, since no kube-proxy
    /// translates it; in a node bed kube-proxy does. Returns the pod's IP.
    pub async fn add_dns(&self, cluster_ip: Ipv4Addr, answers: &[(&str, &str)]) -> Ipv4Addr {
        let ip = self.shared.allocate("kube-system").unwrap_or_else(|e| panic!("{e}"));
        let host = self.shared.add_host(ip);
        let mut records: Vec<String> =
            answers.iter().map(|(name, answer)| format!("--address=/{name}/{answer}")).collect();
        {
            let net = self.net();
            let hosts = net.dir().join("cluster-dns");
            std::fs::create_dir_all(&hosts).expect("the cluster DNS's hosts folder");
            records.push(format!("--hostsdir={}", hosts.display()));
            *self.shared.dns_hosts.lock().unwrap_or_else(|e| e.into_inner()) = Some(hosts);
            let (listen, server) = if self.shared.node_ip.is_some() {
                (ip.to_string(), ip)
            } else {
                let out = net.exec(&host, &["ip", "addr", "add", &format!("{cluster_ip}/32"), "dev", "eth0"]);
                assert!(out.status.success(), "add the ClusterIP: {}", String::from_utf8_lossy(&out.stderr));
                (format!("{ip},{cluster_ip}"), cluster_ip)
            };
            let dnsmasq = net.spawn_dnsmasq(&host, &listen, &records);
            wait_for_dns(&net, &host, server, answers.first().map_or("localhost", |(name, _)| name), &dnsmasq);
            self.extras.lock().unwrap_or_else(|e| e.into_inner()).push(dnsmasq);
        }
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "coredns-0", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
            "spec": {"containers": [{
                "name": "coredns",
                "image": "dnsmasq",
                "ports": [
                    {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                    {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"}
                ]
            }]}
        }))
        .expect("a valid Pod");
        self.create_running(&pod, ip).await;
        let service: Service = serde_json::from_value(json!({
            "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
            "spec": {
                "clusterIP": cluster_ip.to_string(),
                "selector": {"k8s-app": "kube-dns"},
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}
                ]
            }
        }))
        .expect("a valid Service");
        Api::<Service>::namespaced(self.client.clone(), "kube-system")
            .create(&PostParams::default(), &service)
            .await
            .expect("create the DNS Service");
        // What the controller-manager's EndpointSlice controller would write.
        let slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": "kube-dns-bed", "namespace": "kube-system",
                         "labels": {"kubernetes.io/service-name": "kube-dns", "endpointslice.kubernetes.io/managed-by": "fake-kubelet"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip.to_string()], "conditions": {"ready": true}, "nodeName": NODE,
                           "targetRef": {"kind": "Pod", "namespace": "kube-system", "name": "coredns-0"}}],
            "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]
        }))
        .expect("a valid EndpointSlice");
        Api::<EndpointSlice>::namespaced(self.client.clone(), "kube-system")
            .create(&PostParams::default(), &slice)
            .await
            .expect("create the DNS Service's EndpointSlice");
        ip
    }

    async fn create_running(&self, pod: &Pod, ip: Ipv4Addr) {
        let namespace = pod.namespace().expect("the pod names its namespace");
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        let created = api.create(&PostParams::default(), pod).await.unwrap_or_else(|e| {
            panic!("create pod {namespace}/{}: {e}", pod.name_any());
        });
        bind(&api, &created.name_any()).await.expect("bind the pod");
        let status = running_status(&created, &self.shared.pod_ips(ip), &self.shared.host_ip());
        api.patch_status(&created.name_any(), &PatchParams::default(), &Patch::Merge(status))
            .await
            .expect("report the pod running");
    }
}

impl Drop for FakeKubelet {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // It stops within a poll; its pods' processes die with its state.
            let _ = thread.join();
        }
        self.extras.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.api = None;
        // The TestNet goes with the last `shared`, deleting every namespace.
    }
}

/// The kubelet thread's state.
struct Kubelet {
    client: Client,
    shared: Arc<Shared>,
    never_start: PodFilter,
    /// Namespaces whose `default` ServiceAccount exists.
    accounts: HashSet<String>,
    /// Pods started, by uid.
    pods: HashMap<String, PodRun>,
    /// Pods never to start, by uid.
    ignored: HashSet<String>,
    /// What the cluster DNS's hosts file holds.
    dns_records: String,
    /// netcanary's Services whose EndpointSlice is written, as `namespace/name`.
    slices: HashSet<String>,
}

/// A started pod.
struct PodRun {
    /// Namespace and name.
    pod: (String, String),
    host: String,
    /// `None` once it exited and its status says so.
    child: Option<ChildGuard>,
    termination_log: PathBuf,
    /// The container's log, written when it exits.
    log: PathBuf,
}

impl Kubelet {
    async fn run(&mut self) {
        while !self.shared.stop.load(Ordering::Relaxed) {
            if let Err(error) = self.sync().await {
                eprintln!("fake-kubelet: {error}");
            }
            tokio::time::sleep(POLL).await;
        }
        for run in self.pods.values_mut() {
            run.child = None;
        }
    }

    /// One pass over netcanary's pods, as a kubelet's sync loop.
    async fn sync(&mut self) -> Result<(), kube::Error> {
        ensure_service_accounts(&self.client, &mut self.accounts).await?;
        self.sync_dns_records().await?;
        self.sync_endpoint_slices().await?;
        let listed = Api::<Pod>::all(self.client.clone()).list(&ListParams::default().labels(MANAGED)).await?;
        let mut seen = HashSet::new();
        for pod in &listed.items {
            let uid = pod.uid().unwrap_or_default();
            seen.insert(uid.clone());
            if pod.metadata.deletion_timestamp.is_some() {
                self.confirm_deletion(pod, &uid).await;
            } else if self.ignored.contains(&uid) {
                continue;
            } else if !self.pods.contains_key(&uid) {
                if (self.never_start)(pod) {
                    self.ignored.insert(uid);
                    let id = format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any());
                    self.shared.held_back.lock().unwrap_or_else(|e| e.into_inner()).push(id);
                } else {
                    self.start(pod, uid).await;
                }
            } else {
                self.report_exit(pod, &uid).await;
            }
        }
        // Pods deleted at once (never bound) or by someone else.
        let gone: Vec<String> = self.pods.keys().filter(|uid| !seen.contains(*uid)).cloned().collect();
        for uid in gone {
            self.tear_down(&uid);
        }
        self.ignored.retain(|uid| seen.contains(uid));
        Ok(())
    }

    /// Writes a hosts line per Service with a ClusterIP for the cluster DNS, when it changed.
    async fn sync_dns_records(&mut self) -> Result<(), kube::Error> {
        let Some(folder) = self.shared.dns_hosts.lock().unwrap_or_else(|e| e.into_inner()).clone() else {
            return Ok(());
        };
        let services = Api::<Service>::all(self.client.clone()).list(&ListParams::default()).await?;
        let mut records = String::new();
        for service in &services.items {
            let ip = service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()).unwrap_or("None");
            if ip != "None" && !ip.is_empty() {
                let namespace = service.namespace().unwrap_or_default();
                records.push_str(&format!("{ip} {}.{namespace}.svc.cluster.local\n", service.name_any()));
            }
        }
        if records != self.dns_records {
            // Renamed into place: dnsmasq reads a file of its folder when one is moved there.
            let staged = folder.with_extension("staged");
            let written =
                std::fs::write(&staged, &records).and_then(|()| std::fs::rename(&staged, folder.join("services")));
            match written {
                Ok(()) => self.dns_records = records,
                Err(error) => eprintln!("fake-kubelet: the cluster DNS's records: {error}"),
            }
        }
        Ok(())
    }

    /// Writes the EndpointSlice of each of netcanary's Services once the pods it selects have
    /// IPs, as the controller-manager's EndpointSlice controller would (there is none here):
    /// every selected pod, ready or not, since the Services publish not-ready addresses.
    async fn sync_endpoint_slices(&mut self) -> Result<(), kube::Error> {
        let services = Api::<Service>::all(self.client.clone()).list(&ListParams::default().labels(MANAGED)).await?;
        for service in &services.items {
            let namespace = service.namespace().unwrap_or_default();
            let id = format!("{namespace}/{}", service.name_any());
            let Some(spec) = service.spec.as_ref() else { continue };
            let Some(selector) = spec.selector.as_ref().filter(|s| !s.is_empty()) else { continue };
            if self.slices.contains(&id) {
                continue;
            }
            let selector: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let pods = Api::<Pod>::namespaced(self.client.clone(), &namespace)
                .list(&ListParams::default().labels(&selector.join(",")))
                .await?;
            let endpoints: Vec<Value> = pods
                .items
                .iter()
                .filter_map(|pod| {
                    let ip = pod.status.as_ref()?.pod_ip.clone()?;
                    Some(json!({"addresses": [ip], "conditions": {"ready": true}, "nodeName": NODE,
                                "targetRef": {"kind": "Pod", "namespace": namespace, "name": pod.name_any()}}))
                })
                .collect();
            if endpoints.is_empty() {
                continue;
            }
            let ports: Vec<Value> = spec
                .ports
                .iter()
                .flatten()
                .map(|p| json!({"name": p.name, "port": p.port, "protocol": p.protocol}))
                .collect();
            let slice: EndpointSlice = serde_json::from_value(json!({
                "metadata": {"name": format!("{}-bed", service.name_any()), "namespace": namespace,
                             "labels": {"kubernetes.io/service-name": service.name_any(),
                                        "endpointslice.kubernetes.io/managed-by": "fake-kubelet"}},
                "addressType": "IPv4",
                "endpoints": endpoints,
                "ports": ports
            }))
            .expect("a valid EndpointSlice");
            match Api::<EndpointSlice>::namespaced(self.client.clone(), &namespace)
                .create(&PostParams::default(), &slice)
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 409 => {}
                Err(error) => return Err(error),
            }
            self.slices.insert(id);
        }
        Ok(())
    }

    async fn start(&mut self, pod: &Pod, uid: String) {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
        let name = pod.name_any();
        let started = match bind(&api, &name).await {
            // Deleted before it was scheduled (an unbound pod goes at once): nothing to run.
            Err(kube::Error::Api(status)) if status.is_not_found() => return,
            Err(error) => Err(format!("binding: {error}")),
            Ok(()) => self.run_container(pod),
        };
        let status = match started {
            Ok((run, ip)) => {
                self.pods.insert(uid, run);
                running_status(pod, &self.shared.pod_ips(ip), &self.shared.host_ip())
            }
            Err(reason) => {
                eprintln!("fake-kubelet: pod {}/{name} cannot start: {reason}", pod.namespace().unwrap_or_default());
                json!({"status": {"phase": "Failed", "reason": "FakeKubeletError", "message": reason}})
            }
        };
        if let Err(error) = api.patch_status(&name, &PatchParams::default(), &Patch::Merge(status)).await {
            eprintln!("fake-kubelet: status of pod {name}: {error}");
        }
    }

    /// Gives a bound pod its address and host, and starts its container's process there.
    fn run_container(&mut self, pod: &Pod) -> Result<(PodRun, Ipv4Addr), String> {
        let name = pod.name_any();
        let ip = self.shared.allocate(&pod.namespace().unwrap_or_default())?;
        let container = pod.spec.as_ref().and_then(|s| s.containers.first()).ok_or("the pod has no container")?;
        let args = container.args.clone().unwrap_or_default();
        let host = self.shared.add_host(ip);
        let net = self.shared.net();
        let termination_log = net.dir().join(format!("{host}.termination-log"));
        let log = net.dir().join(format!("{host}.log"));
        let mut command: Vec<String> = vec!["env".into()];
        for var in container.env.iter().flatten() {
            command.push(format!("{}={}", var.name, var.value.clone().unwrap_or_default()));
        }
        command.push(format!("NETCANARY_TERMINATION_LOG={}", termination_log.display()));
        command.push(BIN.into());
        command.extend(args.iter().cloned());
        let command: Vec<&str> = command.iter().map(String::as_str).collect();
        let mut child = net.spawn(&host, &command);
        // A kubelet reports Running when the process starts; waiting for the target's
        // listeners as well keeps a loaded machine from turning a pass into a race.
        if args.first().map(String::as_str) == Some("target")
            && let Err(reason) = child.try_wait_for_line("listening", TARGET_READY_TIMEOUT)
        {
            eprintln!("fake-kubelet: {name}: {reason}");
        }
        let key = (pod.namespace().unwrap_or_default(), name);
        self.shared.logs.lock().unwrap_or_else(|e| e.into_inner()).insert(key.clone(), log.clone());
        Ok((PodRun { pod: key, host, child: Some(child), termination_log, log }, ip))
    }

    /// Writes the terminated state of a pod whose process exited.
    async fn report_exit(&mut self, pod: &Pod, uid: &str) {
        let Some(run) = self.pods.get_mut(uid) else { return };
        let Some(status) = run.child.as_mut().and_then(ChildGuard::try_wait) else { return };
        if let Some(mut child) = run.child.take() {
            // Written before the status says it exited, so a reader of the log finds it all.
            let mut log = child.stderr();
            for line in child.remaining_stdout(LOG_DRAIN_TIMEOUT) {
                log.push_str(&line);
                log.push('\n');
            }
            if let Err(error) = std::fs::write(&run.log, log) {
                eprintln!("fake-kubelet: log of {}/{}: {error}", run.pod.0, run.pod.1);
            }
        }
        // Killed by a signal: 128 + its number, as a container runtime reports it.
        let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        let written = std::fs::read_to_string(&run.termination_log).unwrap_or_default();
        let message = kept_message(&written, self.shared.termination_message_budget);
        let (phase, reason) = if code == 0 { ("Succeeded", "Completed") } else { ("Failed", "Error") };
        let started = running_since(pod);
        let mut container = container_status(pod, false);
        container["state"] = json!({"terminated": {
            "exitCode": code,
            "reason": reason,
            "message": message,
            "startedAt": started,
            "finishedAt": now(),
        }});
        let status = json!({"status": {
            "phase": phase,
            "conditions": conditions(pod, false),
            "containerStatuses": [container],
        }});
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
        if let Err(error) = api.patch_status(&pod.name_any(), &PatchParams::default(), &Patch::Merge(status)).await {
            eprintln!("fake-kubelet: status of pod {}: {error}", pod.name_any());
        }
    }

    /// Stops a pod being deleted and confirms the deletion, as a kubelet does once the
    /// containers are gone.
    async fn confirm_deletion(&mut self, pod: &Pod, uid: &str) {
        self.tear_down(uid);
        self.ignored.remove(uid);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions { uid: Some(uid.to_string()), resource_version: None }),
            ..DeleteParams::default()
        };
        match api.delete(&pod.name_any(), &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.is_not_found() => {}
            Err(error) => eprintln!("fake-kubelet: delete pod {}: {error}", pod.name_any()),
        }
    }

    fn tear_down(&mut self, uid: &str) {
        if let Some(mut run) = self.pods.remove(uid) {
            run.child = None;
            self.shared.net().remove_host(&run.host);
            self.shared.logs.lock().unwrap_or_else(|e| e.into_inner()).remove(&run.pod);
            let _ = std::fs::remove_file(&run.termination_log);
            let _ = std::fs::remove_file(&run.log);
        }
    }
}

/// Registers [`NODE`] and reports its status as a kubelet does: its addresses (see the
/// module documentation), the port of its HTTPS endpoint, Ready.
async fn register_node(client: &Client, node_ip: Option<Ipv4Addr>, node_ip6: Option<Ipv6Addr>, api_port: Option<u16>) {
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": NODE, "labels": {"kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux"}},
        "spec": {"podCIDR": POD_CIDR, "podCIDRs": [POD_CIDR]}
    }))
    .expect("a valid Node");
    let nodes = Api::<Node>::all(client.clone());
    match nodes.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.is_already_exists() => {}
        Err(error) => panic!("register node {NODE}: {error}"),
    }
    let internal_ip = node_ip.map_or_else(|| "127.0.0.1".to_string(), |ip| ip.to_string());
    let mut addresses = vec![json!({"type": "InternalIP", "address": internal_ip})];
    addresses.extend(node_ip6.map(|ip| json!({"type": "InternalIP", "address": ip.to_string()})));
    addresses.push(json!({"type": "Hostname", "address": "localhost"}));
    let status = json!({"status": {
        "addresses": addresses,
        "daemonEndpoints": {"kubeletEndpoint": {"Port": api_port.unwrap_or(10250)}},
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": now(), "lastTransitionTime": now()}],
    }});
    nodes
        .patch_status(NODE, &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap_or_else(|e| panic!("report the status of node {NODE}: {e}"));
}

/// Makes the `default` ServiceAccount in namespaces not in `done` (the controller-manager's
/// job): pod admission refuses pods without it.
async fn ensure_service_accounts(client: &Client, done: &mut HashSet<String>) -> Result<(), kube::Error> {
    let namespaces = Api::<Namespace>::all(client.clone()).list(&ListParams::default()).await?;
    let new: Vec<String> = namespaces.items.iter().map(ResourceExt::name_any).filter(|n| !done.contains(n)).collect();
    for namespace in new {
        let account: ServiceAccount =
            serde_json::from_value(json!({"metadata": {"name": "default"}})).expect("a valid ServiceAccount");
        match Api::<ServiceAccount>::namespaced(client.clone(), &namespace)
            .create(&PostParams::default(), &account)
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.is_already_exists() => {}
            Err(error) => return Err(error),
        }
        done.insert(namespace);
    }
    Ok(())
}

/// Binds a pod to [`NODE`], as the scheduler does.
async fn bind(api: &Api<Pod>, name: &str) -> Result<(), kube::Error> {
    let binding = json!({
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name},
        "target": {"apiVersion": "v1", "kind": "Node", "name": NODE}
    });
    api.create_subresource::<_, Value>("binding", name, &PostParams::default(), &binding).await.map(drop)
}

/// The status of a pod whose container runs: Running with `ip`, containers ready, and Ready
/// only when the pod has no readiness gate (nobody ever sets one here).
fn running_status(pod: &Pod, ips: &[String], host_ip: &str) -> Value {
    let mut container = container_status(pod, true);
    container["state"] = json!({"running": {"startedAt": now()}});
    let pod_ips: Vec<Value> = ips.iter().map(|ip| json!({"ip": ip})).collect();
    json!({"status": {
        "phase": "Running",
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": ips[0],
        "podIPs": pod_ips,
        "startTime": now(),
        "conditions": conditions(pod, true),
        "containerStatuses": [container],
    }})
}

fn container_status(pod: &Pod, running: bool) -> Value {
    let container = pod.spec.as_ref().and_then(|s| s.containers.first());
    json!({
        "name": container.map(|c| c.name.clone()).unwrap_or_default(),
        "image": container.and_then(|c| c.image.clone()).unwrap_or_default(),
        "imageID": "",
        "ready": running,
        "started": running,
        "restartCount": 0,
    })
}

fn conditions(pod: &Pod, running: bool) -> Value {
    let gated = pod.spec.as_ref().and_then(|s| s.readiness_gates.as_ref()).is_some_and(|g| !g.is_empty());
    let status = |ok: bool| if ok { "True" } else { "False" };
    json!([
        {"type": "PodScheduled", "status": "True"},
        {"type": "Initialized", "status": "True"},
        {"type": "ContainersReady", "status": status(running)},
        {"type": "Ready", "status": status(running && !gated)},
    ])
}

/// The IPv6 address of the pod with IPv4 address `10.66.N.H`: `fd00:66::N:H`.
pub fn ipv6_of(ip: Ipv4Addr) -> Ipv6Addr {
    let [_, _, subnet, host] = ip.octets();
    format!("fd00:66::{subnet}:{host}").parse().expect("an IPv6 address")
}

/// What a kubelet keeps of a termination message: the file's last [`MESSAGE_BYTES`], then
/// the first `budget` bytes of those (see [`KubeletOptions::termination_message_budget`]).
fn kept_message(written: &str, budget: usize) -> String {
    let tail = &written.as_bytes()[written.len().saturating_sub(MESSAGE_BYTES)..];
    String::from_utf8_lossy(&tail[..tail.len().min(budget)]).into_owned()
}

/// When the container started, from the status the kubelet wrote.
fn running_since(pod: &Pod) -> Value {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.running.as_ref())
        .and_then(|r| r.started_at.clone())
        .map_or_else(now, |t| serde_json::to_value(t).expect("a time serializes"))
}

fn now() -> Value {
    serde_json::to_value(Time(k8s_openapi::jiff::Timestamp::now())).expect("a time serializes")
}

/// Waits until dnsmasq answers on `server`, asking from its own host with the agent.
fn wait_for_dns(net: &TestNet, host: &str, server: Ipv4Addr, name: &str, dnsmasq: &ChildGuard) {
    let plan = json!({"timeout_ms": 500, "probes": [
        {"id": "1", "kind": "dns", "name": name, "server": format!("{server}:53"), "transport": "udp"}
    ]})
    .to_string();
    let deadline = Instant::now() + DNS_READY_TIMEOUT;
    while Instant::now() < deadline {
        let out = net.exec(host, &[BIN, "agent", "--plan-json", &plan, "--no-termination-log"]);
        if String::from_utf8_lossy(&out.stdout).contains("\"connected\"") {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("dnsmasq did not answer on {server} within {DNS_READY_TIMEOUT:?}; stderr:\n{}", dnsmasq.stderr());
}
