//! One verification run: snapshot, plan, target pods, source pods in rounds, judgement,
//! record, cleanup. Cleanup happens whatever happens before it: success, error, deadline
//! or shutdown.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{StreamExt, TryStreamExt, future, stream};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams};
use kube::{Client, ResourceExt};
use netcanary_planner::mirror::{MANAGED_BY_KEY, MANAGED_BY_VALUE, RUN_ID_KEY, with_netcanary_labels};
use netcanary_planner::{Destination, Mirror, Plan, PlannedProbe, Purpose};
use netcanary_policy::{Cluster, ContainerPort, Endpoint, Labels, PortProto, Protocol, Verdict, evaluate};
use netcanary_probe::agent::AgentReport;
use netcanary_probe::observed::Observed;
use netcanary_probe::termination_log;
use netcanary_verify::{Canary, Outcome, ProbeRecord, RunRecord, Timings, WorkloadRef, judge, needs_retry};
use serde_json::json;
use tokio::time::{Instant, sleep};
use tracing::{debug, info, instrument, warn};

use crate::error::{Error, KubeContext};
use crate::pods::{self, PodSettings};
use crate::record;
use crate::retry::with_backoff;
use crate::snapshot::{DnsService, Snapshot, SnapshotSource};

/// How a run behaves.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The netcanary image the probe pods run.
    pub image: String,
    /// Each probe's deadline.
    pub probe_timeout: Duration,
    /// Rounds a disagreeing probe gets before it is called a mismatch.
    pub rounds: u32,
    /// Wait between rounds, for policy still being programmed.
    pub round_wait: Duration,
    /// How long a pod may take to start before its probes are inconclusive.
    pub pod_start_timeout: Duration,
    /// The whole run's bound; past it the run ends inconclusive.
    pub deadline: Duration,
    pub planner: netcanary_planner::Options,
    pub dns: DnsService,
    /// The name DNS probes resolve.
    pub dns_name: String,
    /// netcanary's own namespace, where its default-deny policy makes the canary fail.
    pub canary_namespace: String,
    /// How often pod status is read while waiting.
    pub poll_interval: Duration,
    /// Spread probe pods across nodes.
    pub spread_across_nodes: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            image: format!("ghcr.io/netcanary/netcanary:{}", env!("CARGO_PKG_VERSION")),
            probe_timeout: Duration::from_secs(2),
            rounds: 3,
            round_wait: Duration::from_secs(5),
            pod_start_timeout: Duration::from_secs(120),
            deadline: Duration::from_secs(600),
            planner: netcanary_planner::Options::default(),
            dns: DnsService::default(),
            dns_name: "kubernetes.default.svc.cluster.local".into(),
            canary_namespace: "netcanary".into(),
            poll_interval: Duration::from_millis(250),
            spread_across_nodes: false,
        }
    }
}

/// Runs one verification. Never fails: what goes wrong is in the record's problems, and
/// the pods are deleted before it returns. `shutdown` ends the run early (Ctrl-C).
#[instrument(skip_all)]
pub async fn run(
    client: &Client,
    source: &impl SnapshotSource,
    options: &RunOptions,
    shutdown: impl Future<Output = ()>,
) -> RunRecord {
    let run_id = new_run_id();
    let started_at = unix_now();
    let warnings = crate::fence::check(client).await;
    let mut run = Run {
        client,
        source,
        options,
        run_id: run_id.clone(),
        probes: Vec::new(),
        canary: Canary::Unknown("the run ended before the canary".into()),
        coverage: 0.0,
        problems: Vec::new(),
        timings: Timings::default(),
    };
    let outcome = tokio::select! {
        result = tokio::time::timeout(options.deadline, run.execute(started_at)) => match result {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(format!("{error} [{}]", error.metric_label())),
            Err(_) => Some(Error::Deadline(options.deadline.as_secs()).to_string()),
        },
        () = shutdown => Some("interrupted before it finished".to_string()),
    };
    if let Some(problem) = outcome {
        warn!(run.id = %run_id, %problem, "run incomplete");
        run.problems.push(problem);
    }
    // Bounded like the run: an API server that stopped answering must not hold it for long.
    let phase = Instant::now();
    let cleaned = tokio::time::timeout(WRAP_UP_TIMEOUT, cleanup(client, &run_id)).await;
    if let Some(error) = cleaned.map_or_else(|_| Some(wrap_up_timeout()), Result::err) {
        run.problems.push(format!("cleanup: {error}; the next run sweeps what is left"));
    }
    run.timings.cleanup_seconds = phase.elapsed().as_secs_f64();
    let record = RunRecord {
        run_id,
        started_at,
        finished_at: unix_now(),
        probes: run.probes,
        coverage: run.coverage,
        canary: run.canary,
        problems: run.problems,
        warnings,
        timings: run.timings,
    };
    let finished = tokio::time::timeout(WRAP_UP_TIMEOUT, record::finish(client, &record)).await;
    if let Some(error) = finished.map_or_else(|_| Some(wrap_up_timeout()), Result::err) {
        warn!(%error, "cannot write the run record's status");
    }
    record
}

/// How long cleanup, and then writing the record's status, may each take after the run.
const WRAP_UP_TIMEOUT: Duration = Duration::from_secs(15);

fn wrap_up_timeout() -> Error {
    Error::NoAnswer(WRAP_UP_TIMEOUT.as_secs())
}

/// Plans a run over a snapshot: the planner, told where cluster DNS is and which Services
/// publish not-ready addresses.
pub fn plan(snapshot: &Snapshot, options: &RunOptions) -> Plan {
    let mut planner_options = options.planner.clone();
    planner_options.dns_endpoints = snapshot.dns.as_ref().map(|d| d.endpoints.clone()).unwrap_or_default();
    planner_options.not_ready_services = snapshot.not_ready_services.clone();
    planner_options.unprobed_namespaces = vec![options.canary_namespace.clone()];
    netcanary_planner::plan(&snapshot.cluster, &planner_options)
}

struct Run<'a, S> {
    client: &'a Client,
    source: &'a S,
    options: &'a RunOptions,
    run_id: String,
    probes: Vec<ProbeRecord>,
    canary: Canary,
    coverage: f64,
    problems: Vec<String>,
    timings: Timings,
}

/// A pod of the run, once the kubelet reported on it.
#[derive(Clone, Debug, Default)]
struct PodState {
    ip: Option<IpAddr>,
    running: bool,
    terminated_message: Option<String>,
    /// Why it will never run (failed, evicted, deadline).
    failed: Option<String>,
}

impl<S: SnapshotSource> Run<'_, S> {
    async fn execute(&mut self, started_at: f64) -> Result<(), Error> {
        info!(run.id = %self.run_id, "run started");
        let owner = record::create(self.client, &self.run_id, started_at, self.options.deadline).await?;
        debug!(run.id = %self.run_id, "run record created");
        sweep(self.client, &self.run_id).await?;
        debug!(run.id = %self.run_id, "earlier runs swept");
        let phase = Instant::now();
        let snapshot = self.source.snapshot(&self.options.dns).await?;
        self.timings.snapshot_seconds = phase.elapsed().as_secs_f64();
        if !snapshot.unmodelled.is_empty() {
            self.problems.push(format!(
                "the cluster has policies netcanary does not evaluate yet ({}); a disagreement they could explain is reported as inconclusive",
                snapshot.unmodelled.join(", ")
            ));
        }
        for unreadable in &snapshot.unreadable {
            self.problems.push(format!("{} cannot be read and was skipped: {}", unreadable.object, unreadable.reason));
        }
        let phase = Instant::now();
        let mut plan = plan(&snapshot, self.options);
        self.timings.plan_seconds = phase.elapsed().as_secs_f64();
        self.coverage = plan.coverage.ratio();
        info!(run.id = %self.run_id, mirrors = plan.mirrors.len(), probes = plan.probes.len(), coverage = self.coverage, "planned");
        let canary = add_canary(&mut plan, &self.options.canary_namespace);

        let settings = PodSettings {
            image: self.options.image.clone(),
            run_id: self.run_id.clone(),
            owner: owner.clone(),
            deadline_seconds: self.options.deadline.as_secs().max(60) as i64,
            spread_across_nodes: self.options.spread_across_nodes,
        };
        let targets = self.start_targets(&plan, &settings).await?;
        let (observations, probe_cluster) = self.probe_in_rounds(&plan, &settings, &targets, &snapshot).await?;
        self.judge(&plan, &snapshot, &targets, &observations, &probe_cluster, canary);
        let record = RunRecord {
            run_id: self.run_id.clone(),
            started_at,
            finished_at: unix_now(),
            probes: self.probes.clone(),
            coverage: self.coverage,
            canary: self.canary.clone(),
            problems: self.problems.clone(),
            warnings: Vec::new(),
            timings: self.timings.clone(),
        };
        record::emit_events(self.client, &record, &owner).await?;
        Ok(())
    }

    /// Creates every target pod and waits for their IPs.
    async fn start_targets(&mut self, plan: &Plan, settings: &PodSettings) -> Result<HashMap<usize, PodState>, Error> {
        let mut names = BTreeMap::new();
        let mut created = Vec::new();
        for (index, mirror) in plan.mirrors.iter().enumerate().filter(|(_, m)| !m.listen.is_empty()) {
            let pod = pods::target(settings, index, mirror);
            names.insert(pod.name_any(), (index, mirror.namespace.clone()));
            created.push(pod);
        }
        let phase = Instant::now();
        create_pods(self.client, created).await?;
        self.timings.create_seconds += phase.elapsed().as_secs_f64();
        let states = self.wait(&names, |s| s.running && s.ip.is_some()).await?;
        Ok(states.into_iter().map(|(name, state)| (names[&name].0, state)).collect())
    }

    /// Runs the probes; each round retries what disagreed or broke in the last. Returns
    /// the rounds and the probe-pod cluster the last round was judged against.
    async fn probe_in_rounds(
        &mut self,
        plan: &Plan,
        settings: &PodSettings,
        targets: &HashMap<usize, PodState>,
        snapshot: &Snapshot,
    ) -> Result<(Vec<Rounds>, Cluster), Error> {
        let mut rounds: Vec<Rounds> = vec![Rounds::default(); plan.probes.len()];
        let mut judged_against = None;
        let mut pending: Vec<usize> = (0..plan.probes.len()).collect();
        for round in 0..self.options.rounds.max(1) {
            if round > 0 {
                sleep(self.options.round_wait).await;
                self.timings.round_wait_seconds += self.options.round_wait.as_secs_f64();
            }
            let mut by_source: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
            for &p in &pending {
                by_source.entry(plan.probes[p].from).or_default().push(p);
            }
            let mut names = BTreeMap::new();
            let mut agent_ids: BTreeMap<String, HashMap<usize, String>> = BTreeMap::new();
            let mut created = Vec::new();
            for (source, probe_ids) in &by_source {
                let mirror = &plan.mirrors[*source];
                let (agent_plan, ids) = self.agent_plan(plan, probe_ids, targets, snapshot, &mut rounds);
                let name = format!("{}r{round}", pods::pod_name(&self.run_id, "s", *source));
                created.push(pods::source(settings, &name, mirror, agent_plan));
                names.insert(name.clone(), (*source, mirror.namespace.clone()));
                agent_ids.insert(name, ids);
            }
            let phase = Instant::now();
            create_pods(self.client, created).await?;
            self.timings.create_seconds += phase.elapsed().as_secs_f64();
            let states = self.wait(&names, |s| s.terminated_message.is_some()).await?;
            for (name, (source, namespace)) in &names {
                let state = &states[name];
                let results = self.results(name, namespace, state).await;
                for &p in &by_source[source] {
                    // A probe without an agent id was never sent: it is recorded as broken.
                    let Some(id) = agent_ids[name].get(&p) else { continue };
                    let round_result = match &results {
                        Ok(by_id) => by_id.get(id).cloned().unwrap_or((
                            Observed::Error,
                            None,
                            Some("no result for this probe".into()),
                        )),
                        Err(reason) => (Observed::Error, None, Some(reason.clone())),
                    };
                    rounds[p].source_ip = rounds[p].source_ip.or(state.ip);
                    rounds[p].push(round_result);
                }
            }
            let cluster = self.probe_cluster(plan, snapshot, targets, &rounds);
            let expected = |p: usize| Self::expected(&cluster, plan, snapshot, targets, p).map(|v| v.allowed);
            pending.retain(|&p| match (expected(p), rounds[p].observed.last()) {
                (Some(expected), Some(&last)) => needs_retry(expected, last),
                _ => false,
            });
            info!(run.id = %self.run_id, round, retry = pending.len(), "round finished");
            judged_against = Some(cluster);
            if pending.is_empty() {
                break;
            }
        }
        let cluster = judged_against.unwrap_or_else(|| self.probe_cluster(plan, snapshot, targets, &rounds));
        Ok((rounds, cluster))
    }

    /// The agent's JSON plan for some probes of one source, with the agent id of each probe
    /// (1..N in plan order, which the termination log encodes most compactly). Probes whose
    /// target never started are recorded as broken instead.
    fn agent_plan(
        &self,
        plan: &Plan,
        probe_ids: &[usize],
        targets: &HashMap<usize, PodState>,
        snapshot: &Snapshot,
        rounds: &mut [Rounds],
    ) -> (String, HashMap<usize, String>) {
        let mut probes = Vec::new();
        let mut ids = HashMap::new();
        for &p in probe_ids {
            let probe = &plan.probes[p];
            let kind = if probe.port.protocol == Protocol::Udp { "udp" } else { "tcp" };
            let id = (probes.len() + 1).to_string();
            let entry = match probe.to {
                Destination::Dns => match &snapshot.dns {
                    Some(dns) => Ok(
                        json!({"id": id, "kind": "dns", "name": self.options.dns_name, "server": dns.server.to_string(), "transport": kind}),
                    ),
                    None => {
                        Err(format!("no cluster DNS Service {}/{}", self.options.dns.namespace, self.options.dns.name))
                    }
                },
                Destination::Mirror(m) => match targets.get(&m).and_then(|s| s.ip) {
                    Some(ip) => Ok(json!({"id": id, "kind": kind, "host": ip.to_string(), "port": probe.port.port})),
                    None => Err(targets
                        .get(&m)
                        .and_then(|s| s.failed.clone())
                        .unwrap_or_else(|| "the target pod never started".into())),
                },
            };
            match entry {
                Ok(entry) => {
                    probes.push(entry);
                    ids.insert(p, id);
                }
                Err(reason) => rounds[p].broken = Some(reason),
            }
        }
        (json!({"timeout_ms": self.options.probe_timeout.as_millis() as u64, "probes": probes}).to_string(), ids)
    }

    /// Reads a finished source pod's results: the termination message, or the log when the
    /// message had to be truncated.
    async fn results(
        &self,
        name: &str,
        namespace: &str,
        state: &PodState,
    ) -> Result<HashMap<String, (Observed, Option<u64>, Option<String>)>, String> {
        if let Some(reason) = &state.failed {
            return Err(format!("the probe pod never ran: {reason}"));
        }
        let message = state.terminated_message.as_deref().unwrap_or_default();
        let compact = termination_log::decode(message).map_err(|e| format!("unreadable termination message: {e}"))?;
        if !compact.truncated {
            return Ok(compact.results.into_iter().map(|r| (r.id, (r.observed, r.millis, None))).collect());
        }
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let log = pods
            .logs(name, &LogParams::default())
            .await
            .map_err(|e| format!("results were truncated and the log is unavailable: {e}"))?;
        let report: AgentReport = log
            .lines()
            .rev()
            .find_map(|line| serde_json::from_str(line).ok())
            .ok_or("results were truncated and the log holds no report")?;
        Ok(report.results.into_iter().map(|r| (r.id, (r.observed, Some(r.millis), r.detail))).collect())
    }

    /// What policy says for the probe pods themselves (their labels and IPs), which is what
    /// the network is judged against.
    /// The snapshot with the run's probe pods added as they really are (their labels,
    /// IPs and ports): what the network is judged against. Built once per round.
    fn probe_cluster(
        &self,
        plan: &Plan,
        snapshot: &Snapshot,
        targets: &HashMap<usize, PodState>,
        rounds: &[Rounds],
    ) -> Cluster {
        let mut cluster = snapshot.cluster.clone();
        let mut source_ips: HashMap<usize, IpAddr> = HashMap::new();
        for (probe, round) in plan.probes.iter().zip(rounds) {
            if let Some(ip) = round.source_ip {
                source_ips.entry(probe.from).or_insert(ip);
            }
        }
        let sources: BTreeSet<usize> = plan.probes.iter().map(|p| p.from).collect();
        for (m, mirror) in plan.mirrors.iter().enumerate() {
            if sources.contains(&m) {
                cluster.add_endpoint(mirror_endpoint(&self.run_id, mirror, source_ips.get(&m).copied(), Role::Source));
            }
            if let Some(state) = targets.get(&m) {
                cluster.add_endpoint(mirror_endpoint(&self.run_id, mirror, state.ip, Role::Target));
            }
        }
        cluster
    }

    /// What policy says for one probe, between the probe pods themselves.
    fn expected(
        cluster: &Cluster,
        plan: &Plan,
        snapshot: &Snapshot,
        targets: &HashMap<usize, PodState>,
        p: usize,
    ) -> Option<Verdict> {
        let probe = &plan.probes[p];
        let source = cluster.endpoint(&mirror_id(&plan.mirrors[probe.from], Role::Source))?;
        let destination = match probe.to {
            Destination::Dns => cluster.endpoint(snapshot.dns.as_ref()?.endpoints.first()?)?,
            Destination::Mirror(m) => {
                targets.get(&m)?;
                cluster.endpoint(&mirror_id(&plan.mirrors[m], Role::Target))?
            }
        };
        Some(evaluate::verdict(cluster, source, destination, probe.port))
    }

    fn judge(
        &mut self,
        plan: &Plan,
        snapshot: &Snapshot,
        targets: &HashMap<usize, PodState>,
        rounds: &[Rounds],
        cluster: &Cluster,
        canary: usize,
    ) {
        let unreadable_namespaces: BTreeSet<&str> = snapshot.unreadable.iter().map(|u| u.namespace.as_str()).collect();
        for (p, probe) in plan.probes.iter().enumerate() {
            let verdict = Self::expected(cluster, plan, snapshot, targets, p);
            let source = &plan.mirrors[probe.from];
            let destination = match probe.to {
                Destination::Dns => WorkloadRef {
                    namespace: self.options.dns.namespace.clone(),
                    workload: self.options.dns.name.clone(),
                },
                Destination::Mirror(m) => WorkloadRef {
                    namespace: plan.mirrors[m].namespace.clone(),
                    workload: plan.mirrors[m].workload.clone(),
                },
            };
            let touched_unreadable = unreadable_namespaces.contains(source.namespace.as_str())
                || unreadable_namespaces.contains(destination.namespace.as_str());
            let (outcome, detail) = match (&verdict, &rounds[p].broken) {
                (_, Some(reason)) => (Outcome::Inconclusive, Some(reason.clone())),
                (None, None) => {
                    (Outcome::Inconclusive, Some("no expectation: the pods involved never started".to_string()))
                }
                (Some(_), None) if touched_unreadable => {
                    (Outcome::Inconclusive, Some("a policy in this namespace pair could not be read".to_string()))
                }
                (Some(v), None) => match judge(v.allowed, &rounds[p].observed) {
                    outcome if outcome.is_mismatch() && !snapshot.unmodelled.is_empty() => (
                        Outcome::Inconclusive,
                        Some(format!("{} may decide this pair; not evaluated yet", snapshot.unmodelled.join(", "))),
                    ),
                    outcome => (outcome, rounds[p].details.last().cloned().flatten()),
                },
            };
            let record = ProbeRecord {
                source: WorkloadRef { namespace: source.namespace.clone(), workload: source.workload.clone() },
                destination,
                port: probe.port.port,
                protocol: probe.port.protocol.to_string(),
                kind: if probe.to == Destination::Dns {
                    "dns".into()
                } else {
                    probe.port.protocol.as_str().to_ascii_lowercase()
                },
                purpose: if p == canary { "canary".into() } else { purpose(probe.purpose).into() },
                expected_allowed: verdict.as_ref().is_some_and(|v| v.allowed),
                expected_because: verdict.as_ref().map(because).unwrap_or_default(),
                observed: rounds[p].observed.clone(),
                millis: rounds[p].millis.last().copied().flatten(),
                outcome,
                detail,
            };
            if p == canary {
                self.canary = match (record.expected_allowed, outcome) {
                    (true, _) => Canary::Unknown(format!(
                        "no policy in namespace {} denies the canary: apply netcanary's default-deny policy there",
                        self.options.canary_namespace
                    )),
                    (false, Outcome::Pass) => Canary::Enforced,
                    (false, Outcome::UnexpectedAllow | Outcome::Converging) => Canary::NotEnforced,
                    (false, _) => Canary::Unknown(
                        record.detail.clone().unwrap_or_else(|| "the canary probe could not run".into()),
                    ),
                };
                if self.canary == Canary::NotEnforced {
                    warn!(run.id = %self.run_id, "the enforcement canary connected: this network enforces no NetworkPolicy at all");
                }
            } else {
                self.probes.push(record);
            }
        }
    }

    /// Waits until every named pod satisfies `done` or cannot anymore; pods that do not
    /// start in time are marked failed, and each failed pod is a problem of the run.
    async fn wait(
        &mut self,
        names: &BTreeMap<String, (usize, String)>,
        done: impl Fn(&PodState) -> bool,
    ) -> Result<BTreeMap<String, PodState>, Error> {
        let started = Instant::now();
        let pods: Api<Pod> = Api::all(self.client.clone());
        let params = ListParams::default().labels(&format!("{RUN_ID_KEY}={}", self.run_id));
        // The time spent here is the kubelet's and the network's, not the controller's.
        let result = self.wait_for(&pods, &params, names, &done, started).await;
        self.timings.pods_seconds += started.elapsed().as_secs_f64();
        result
    }

    async fn wait_for(
        &mut self,
        pods: &Api<Pod>,
        params: &ListParams,
        names: &BTreeMap<String, (usize, String)>,
        done: &impl Fn(&PodState) -> bool,
        started: Instant,
    ) -> Result<BTreeMap<String, PodState>, Error> {
        loop {
            let listed = with_backoff("list the run's pods", || pods.list(params)).await?;
            let mut states: BTreeMap<String, PodState> =
                listed.items.iter().map(|p| (p.name_any(), pod_state(p))).collect();
            let finished = names.keys().all(|n| states.get(n).is_some_and(|s| done(s) || s.failed.is_some()));
            if finished || started.elapsed() >= self.options.pod_start_timeout {
                for (name, (_, namespace)) in names {
                    let state = states.entry(name.clone()).or_default();
                    if !done(state) && state.failed.is_none() {
                        state.failed = Some(format!("not ready within {} s", self.options.pod_start_timeout.as_secs()));
                    }
                    if let Some(reason) = &state.failed {
                        self.problems.push(format!("pod {namespace}/{name} did not run: {reason}"));
                    }
                }
                return Ok(states);
            }
            sleep(self.options.poll_interval).await;
        }
    }
}

/// Everything observed of one probe across rounds.
#[derive(Clone, Debug, Default)]
struct Rounds {
    observed: Vec<Observed>,
    millis: Vec<Option<u64>>,
    details: Vec<Option<String>>,
    /// The first source pod's IP: what the expectation is computed with.
    source_ip: Option<IpAddr>,
    /// Why the probe could not be sent at all.
    broken: Option<String>,
}

impl Rounds {
    fn push(&mut self, (observed, millis, detail): (Observed, Option<u64>, Option<String>)) {
        self.observed.push(observed);
        self.millis.push(millis);
        self.details.push(detail);
    }
}

/// Adds the enforcement canary to the plan: a source and a target in netcanary's own
/// namespace, with no copied labels. Returns the canary probe's index.
fn add_canary(plan: &mut Plan, namespace: &str) -> usize {
    let mirror = |listen: BTreeSet<PortProto>| Mirror {
        class: usize::MAX,
        namespace: namespace.to_string(),
        labels: Labels::new(),
        dropped_labels: Vec::new(),
        stands_for: "canary".into(),
        workload: "canary".into(),
        members: 0,
        listen,
    };
    let port = PortProto::new(8080, Protocol::Tcp);
    plan.mirrors.push(mirror(BTreeSet::new()));
    plan.mirrors.push(mirror(BTreeSet::from([port])));
    let (from, to) = (plan.mirrors.len() - 2, plan.mirrors.len() - 1);
    plan.probes.push(PlannedProbe {
        from,
        to: Destination::Mirror(to),
        port,
        expected_allowed: false,
        purpose: Purpose::Isolation,
        covers: Vec::new(),
    });
    plan.probes.len() - 1
}

/// Which side of probes a probe pod is on; a class can have a pod on each.
#[derive(Clone, Copy)]
enum Role {
    Source,
    Target,
}

/// The id of a probe pod in the probe cluster.
fn mirror_id(mirror: &Mirror, role: Role) -> String {
    let role = match role {
        Role::Source => "source",
        Role::Target => "target",
    };
    format!("{}/netcanary-{role}-{}", mirror.namespace, mirror.stands_for.replace('/', "-"))
}

/// A probe pod as the engine sees it: the labels it really carries, its IP, its ports.
fn mirror_endpoint(run_id: &str, mirror: &Mirror, ip: Option<IpAddr>, role: Role) -> Endpoint {
    let labels = with_netcanary_labels(mirror.labels.clone(), run_id);
    let ports = mirror.listen.iter().map(|p| ContainerPort { name: None, port: p.port, protocol: p.protocol });
    let id = mirror_id(mirror, role);
    let name = id.split_once('/').map_or(id.as_str(), |(_, name)| name);
    let mut endpoint = Endpoint::pod(&mirror.namespace, name, labels).with_ips(ip).with_ports(ports);
    endpoint.workload = Some(mirror.workload.clone());
    endpoint
}

fn purpose(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Dns => "dns",
        Purpose::AllowRule => "allow-rule",
        Purpose::Isolation => "isolation",
        Purpose::Sample => "sample",
    }
}

/// The expectation in words, for reports and events.
fn because(verdict: &Verdict) -> String {
    if verdict.allowed {
        let rules: Vec<String> =
            verdict.egress.allowed_by.iter().chain(&verdict.ingress.allowed_by).map(|h| h.rule.to_string()).collect();
        if rules.is_empty() {
            "no policy isolates either side".into()
        } else {
            format!("allowed by {}", rules.join(", "))
        }
    } else {
        let side = verdict.denied_by().expect("a denied verdict has a denying side");
        format!("{} isolated by {} and no rule allows it", side.direction, side.policies.join(", "))
    }
}

fn pod_state(pod: &Pod) -> PodState {
    let status = pod.status.clone().unwrap_or_default();
    let ip = status.pod_ip.as_deref().and_then(|ip| ip.parse().ok());
    let terminated =
        status.container_statuses.iter().flatten().find_map(|c| c.state.as_ref().and_then(|s| s.terminated.clone()));
    let phase = status.phase.as_deref().unwrap_or("Pending");
    let failed = match (phase, &terminated) {
        ("Failed", None) => {
            Some(status.reason.clone().or(status.message.clone()).unwrap_or_else(|| "the pod failed".into()))
        }
        _ => None,
    };
    PodState {
        ip,
        running: phase == "Running",
        terminated_message: terminated.map(|t| t.message.unwrap_or_default()),
        failed,
    }
}

/// API requests in flight while creating or deleting a run's pods.
const API_CONCURRENCY: usize = 16;

/// Creates pods concurrently: a run over many classes creates many pods, and one request
/// at a time would add their latencies up.
async fn create_pods(client: &Client, pods: Vec<Pod>) -> Result<(), Error> {
    stream::iter(pods)
        .map(|pod| async move {
            let namespace = pod.namespace().unwrap_or_default();
            let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
            let what = format!("create pod {namespace}/{}", pod.name_any());
            // A retried create may find the pod its lost first attempt made.
            with_backoff(&what, || async {
                match api.create(&PostParams::default(), &pod).await {
                    Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
                    other => other.map(drop),
                }
            })
            .await
        })
        .buffer_unordered(API_CONCURRENCY)
        .try_for_each(|_| future::ready(Ok(())))
        .await
}

/// Deletes every pod of this run.
pub async fn cleanup(client: &Client, run_id: &str) -> Result<(), Error> {
    delete_matching(client, &format!("{MANAGED_BY_KEY}={MANAGED_BY_VALUE},{RUN_ID_KEY}={run_id}")).await
}

/// Deletes the pods of other runs that are no longer running (a crashed run's leftovers):
/// those whose run record is gone, finished, or past its deadline.
pub async fn sweep(client: &Client, current_run: &str) -> Result<(), Error> {
    let runs: Api<kube::api::DynamicObject> = Api::all_with(client.clone(), &record::api_resource());
    let pods: Api<Pod> = Api::all(client.clone());
    let ours = pods
        .list(&ListParams::default().labels(&format!("{MANAGED_BY_KEY}={MANAGED_BY_VALUE}")))
        .await
        .context("list netcanary pods")?;
    let mut stale: BTreeSet<String> = BTreeSet::new();
    // Pods already being deleted (the last run's, in serve) need nothing more.
    for pod in ours.items.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
        let Some(run) = pod.labels().get(RUN_ID_KEY) else { continue };
        if run == current_run || stale.contains(run) {
            continue;
        }
        let finished = match runs.get_opt(run).await.context("read a NetcanaryRun")? {
            None => true,
            Some(record) => record::is_over(&record, unix_now()),
        };
        if finished {
            stale.insert(run.clone());
        }
    }
    for run in stale {
        info!(run.id = %run, "sweeping pods left by an earlier run");
        cleanup(client, &run).await?;
    }
    Ok(())
}

/// Deletes the pods matching `selector`, concurrently. One request per pod rather than a
/// `deletecollection`: that verb would let a wrong selector empty a namespace, so the
/// ServiceAccount is not granted it.
async fn delete_matching(client: &Client, selector: &str) -> Result<(), Error> {
    let pods: Api<Pod> = Api::all(client.clone());
    let params = ListParams::default().labels(selector);
    let listed = with_backoff("list pods to delete", || pods.list_metadata(&params)).await?;
    stream::iter(listed.items)
        .map(|pod| async move {
            let namespace = pod.namespace().unwrap_or_default();
            let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
            let what = format!("delete pod {namespace}/{}", pod.name_any());
            let delete = DeleteParams::default().grace_period(1);
            with_backoff(&what, || async {
                match api.delete(&pod.name_any(), &delete).await {
                    Err(kube::Error::Api(status)) if status.is_not_found() => Ok(()),
                    other => other.map(drop),
                }
            })
            .await
        })
        .buffer_unordered(API_CONCURRENCY)
        .try_for_each(|()| future::ready(Ok(())))
        .await
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// A short id, unique enough across runs, valid in names and label values.
fn new_run_id() -> String {
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let mut n = millis;
    let mut id = String::new();
    while n > 0 {
        let digit = (n % 36) as u32;
        id.insert(0, char::from_digit(digit, 36).unwrap_or('0'));
        n /= 36;
    }
    id
}
