//! One verification run: snapshot, plan, target pods, source pods in rounds, judgement,
//! record, cleanup. Cleanup happens whatever happens before it: success, error, deadline
//! or shutdown.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{StreamExt, TryStreamExt, future, stream};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams};
use kube::{Client, ResourceExt};
use netcanary_planner::mirror::{MANAGED_BY_KEY, MANAGED_BY_VALUE, RUN_ID_KEY};
use netcanary_planner::{Destination, Placement, Plan, PlannedProbe, ProbePath, ProbePodCluster, add_canary};
use netcanary_policy::Protocol;
use netcanary_verify::{
    Canary, Evidence, Judgement, ProbeRounds, RoundResult, RuleCoverage, RunRecord, SnapshotFacts, Timings,
    UncoveredRule, WorkloadRef, judge_run, needs_retry,
};
use netcanary_wire::{AgentPlan, AgentProbe, AgentReport, Observed, ProbeTarget, Transport, termination_log};
use tokio::time::{Instant, sleep};
use tracing::{debug, info, instrument, warn};

use crate::error::{Error, KubeContext};
use crate::pods::{self, PodSettings};
use crate::record;
use crate::retry::with_backoff;
use crate::services;
use crate::snapshot::{DnsService, Snapshot, SnapshotSource};

/// How a run behaves.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The netcanary image the probe pods run.
    pub image: String,
    /// What to probe, within which budget, and the run's timing (`planner.timing`): each
    /// probe's deadline, the rounds and the wait before each (a retry round's source pods
    /// spend it themselves, before their first probe, so that a network that programs policy
    /// for each pod once it sees it has done so for them too), how long a pod may take to
    /// start before its probes are inconclusive, and the whole run's bound.
    pub planner: netcanary_planner::Options,
    pub dns: DnsService,
    /// The name DNS probes resolve.
    pub dns_name: String,
    /// The cluster's DNS domain, under which a `dns` probe names a Service
    /// (`NAME.NAMESPACE.svc.<domain>`).
    pub cluster_domain: String,
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
            planner: netcanary_planner::Options::default(),
            dns: DnsService::default(),
            dns_name: "kubernetes.default.svc.cluster.local".into(),
            cluster_domain: "cluster.local".into(),
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
        facts: None,
        planned: None,
        uncovered: Vec::new(),
        judgement: None,
        problems: Vec::new(),
        warnings,
        timings: Timings::default(),
        services: HashMap::new(),
    };
    let outcome = tokio::select! {
        result = tokio::time::timeout(options.planner.timing.deadline, run.execute(started_at)) => match result {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(format!("{error} [{}]", error.metric_label())),
            Err(_) => Some(Error::Deadline(options.planner.timing.deadline.as_secs()).to_string()),
        },
        () = shutdown => Some("interrupted before it finished".to_string()),
    };
    if let Some(problem) = outcome {
        warn!(run.id = %run_id, %problem, "run incomplete");
        run.problems.push(problem);
    }
    // Bounded like the run: an API server that stopped answering must not hold it for long.
    let phase = Instant::now();
    if let Err(error) = within(WRAP_UP_TIMEOUT, cleanup(client, &run_id)).await {
        run.problems.push(format!("cleanup: {error}; the next run sweeps what is left"));
    }
    run.timings.cleanup_seconds = phase.elapsed().as_secs_f64();
    let mut record = run.record(started_at);
    // The reports first, so that the status can say they were not written; both within one
    // wrap-up bound, of which the status keeps a share: an API server that stopped answering
    // holds the run for that bound, not for one each.
    let phase = Instant::now();
    let reports = crate::policy_report::publish(client, &record);
    if let Err(error) = within(WRAP_UP_TIMEOUT - STATUS_SHARE, reports).await {
        warn!(%error, "cannot write the run's PolicyReports");
        record.warnings.push(format!("the run's PolicyReports were not written: {error}"));
    }
    let left = WRAP_UP_TIMEOUT.saturating_sub(phase.elapsed()).max(STATUS_SHARE);
    if let Err(error) = within(left, record::finish(client, &record)).await {
        warn!(%error, "cannot write the run record's status");
    }
    record
}

/// How long cleanup, and then writing the PolicyReports and the record's status together,
/// may each take after the run.
const WRAP_UP_TIMEOUT: Duration = Duration::from_secs(15);

/// The part of the wrap-up bound kept for the record's status, however long the
/// PolicyReports took: the status is what `kubectl get netcanaryruns` shows.
const STATUS_SHARE: Duration = Duration::from_secs(5);

/// `work` within `bound`: no answer by then is an error, as the API's own are.
async fn within<T>(bound: Duration, work: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
    tokio::time::timeout(bound, work).await.unwrap_or(Err(Error::NoAnswer(bound.as_secs())))
}

/// Plans a run over a snapshot: the planner, told where cluster DNS is, which Services
/// publish not-ready addresses, and the cluster's intent besides the run's own (an intent
/// the run was given by file replaces the cluster's object of the same name).
pub fn plan(snapshot: &Snapshot, options: &RunOptions) -> Plan {
    let mut planner_options = options.planner.clone();
    planner_options.dns_endpoints = dns_endpoints(snapshot);
    planner_options.not_ready_services = snapshot.not_ready_services.clone();
    planner_options.unprobed_namespaces = vec![options.canary_namespace.clone()];
    let given: BTreeSet<String> = planner_options.intent.iter().map(|s| s.intent.clone()).collect();
    planner_options.intent.extend(snapshot.intent.iter().filter(|s| !given.contains(&s.intent)).cloned());
    let mut plan = netcanary_planner::plan(&snapshot.cluster, &planner_options);
    plan.unverified_intent.extend(snapshot.intent_problems.iter().cloned());
    plan
}

fn dns_endpoints(snapshot: &Snapshot) -> Vec<String> {
    snapshot.dns.as_ref().map(|d| d.endpoints.clone()).unwrap_or_default()
}

/// A run in progress: what it learnt so far, so that a run cut short still reports it.
struct Run<'a, S> {
    client: &'a Client,
    source: &'a S,
    options: &'a RunOptions,
    run_id: String,
    facts: Option<SnapshotFacts>,
    /// What the plan meant to cover, once planned.
    planned: Option<RuleCoverage>,
    /// The rules it leaves unexercised, and why.
    uncovered: Vec<UncoveredRule>,
    judgement: Option<Judgement>,
    /// What went wrong outside the judgement: pods that never ran, API errors.
    problems: Vec<String>,
    /// What the run noticed that leaves it verified (a missing fence).
    warnings: Vec<String>,
    timings: Timings,
    /// The Service in front of each target that a probe reaches through one (by mirror
    /// index): its DNS name and ClusterIP, or why there is none.
    services: HashMap<usize, TargetService>,
}

/// A target's Service as probes use it: its DNS name and ClusterIP, or why there is none.
type TargetService = Result<(String, IpAddr), String>;

/// A pod of the run, once the kubelet reported on it.
#[derive(Clone, Debug, Default)]
struct PodState {
    ip: Option<IpAddr>,
    running: bool,
    terminated_message: Option<String>,
    /// Why it will never run (failed, evicted, deadline).
    failed: Option<String>,
}

/// A round's answers by agent id.
type AgentResults = HashMap<String, RoundResult>;

/// A round with no answer from the agent, and why.
fn no_answer(why: &str) -> RoundResult {
    RoundResult { observed: Observed::Error, millis: None, detail: Some(why.to_string()) }
}

impl<S: SnapshotSource> Run<'_, S> {
    fn timing(&self) -> &netcanary_planner::Timing {
        &self.options.planner.timing
    }

    async fn execute(&mut self, started_at: f64) -> Result<(), Error> {
        info!(run.id = %self.run_id, "run started");
        let owner = record::create(self.client, &self.run_id, started_at, self.timing().deadline).await?;
        debug!(run.id = %self.run_id, "run record created");
        sweep(self.client, &self.run_id).await?;
        debug!(run.id = %self.run_id, "earlier runs swept");
        let phase = Instant::now();
        let snapshot = self.source.snapshot(&self.options.dns).await?;
        self.timings.snapshot_seconds = phase.elapsed().as_secs_f64();
        self.facts = Some(snapshot.facts());
        self.warnings.extend(snapshot.warnings.iter().cloned());
        let phase = Instant::now();
        let mut plan = plan(&snapshot, self.options);
        self.timings.plan_seconds = phase.elapsed().as_secs_f64();
        info!(run.id = %self.run_id, mirrors = plan.mirrors.len(), probes = plan.probes.len(), coverage = plan.coverage.ratio(), "planned");
        self.planned = Some(RuleCoverage::planned(&plan));
        self.uncovered = UncoveredRule::of(&plan);
        let canary = add_canary(&mut plan, &self.options.canary_namespace);

        let settings = PodSettings {
            image: self.options.image.clone(),
            run_id: self.run_id.clone(),
            owner: owner.clone(),
            deadline_seconds: self.timing().deadline.as_secs().max(60) as i64,
            spread_across_nodes: self.options.spread_across_nodes,
        };
        let targets = self.start_targets(&plan, &settings).await?;
        self.start_services(&plan, &settings, &targets).await;
        let (observations, probe_pods) = self.probe_in_rounds(&plan, &settings, &targets, &snapshot).await?;
        let dns_service =
            WorkloadRef { namespace: self.options.dns.namespace.clone(), workload: self.options.dns.name.clone() };
        let facts = self.facts.clone().unwrap_or_default();
        let judgement = judge_run(&Evidence {
            plan: &plan,
            canary,
            canary_namespace: &self.options.canary_namespace,
            dns_service: &dns_service,
            facts: &facts,
            probe_pods: &probe_pods,
            observations: &observations,
        });
        if judgement.canary == Canary::NotEnforced {
            warn!(run.id = %self.run_id, "the enforcement canary connected: this network enforces no NetworkPolicy at all");
        }
        self.judgement = Some(judgement);
        let record = self.record(started_at);
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
        let states = self.wait(&names, Duration::ZERO, |s| s.running && s.ip.is_some()).await?;
        Ok(states.into_iter().map(|(name, state)| (names[&name].0, state)).collect())
    }

    /// Creates the Service of every started target that a probe reaches through one. A
    /// Service that cannot be made leaves its probes unsent (inconclusive), not the run.
    async fn start_services(&mut self, plan: &Plan, settings: &PodSettings, targets: &HashMap<usize, PodState>) {
        let wanted: BTreeSet<usize> = plan
            .probes
            .iter()
            .filter(|p| p.path.needs_service())
            .filter_map(|p| match p.to {
                Destination::Mirror(m) if targets.get(&m).is_some_and(|s| s.ip.is_some()) => Some(m),
                _ => None,
            })
            .collect();
        if wanted.is_empty() {
            return;
        }
        let phase = Instant::now();
        let (client, run_id, domain) = (self.client, &self.run_id, &self.options.cluster_domain);
        let created: Vec<(usize, TargetService)> = stream::iter(wanted)
            .map(|m| {
                let mirror = &plan.mirrors[m];
                let name = pods::pod_name(run_id, "t", m);
                let dns_name = services::dns_name(&name, &mirror.namespace, domain);
                let service = services::target_service(settings, &name, mirror);
                async move { (m, create_service(client, service).await.map(|ip| (dns_name, ip))) }
            })
            .buffer_unordered(API_CONCURRENCY)
            .collect()
            .await;
        self.timings.create_seconds += phase.elapsed().as_secs_f64();
        for (m, service) in created {
            if let Err(reason) = &service {
                warn!(run.id = %self.run_id, target = m, %reason, "no Service for a target: its service and dns probes are unsent");
            }
            self.services.insert(m, service);
        }
    }

    /// Runs the probes; each round retries what disagreed or broke in the last. Returns
    /// every probe's rounds and the probe-pod cluster the last round was judged against.
    async fn probe_in_rounds(
        &mut self,
        plan: &Plan,
        settings: &PodSettings,
        targets: &HashMap<usize, PodState>,
        snapshot: &Snapshot,
    ) -> Result<(Vec<ProbeRounds>, ProbePodCluster), Error> {
        let mut observations = vec![ProbeRounds::default(); plan.probes.len()];
        let mut placement =
            Placement { sources: HashMap::new(), targets: targets.iter().map(|(&m, state)| (m, state.ip)).collect() };
        let dns_endpoints = dns_endpoints(snapshot);
        let mut judged_against = None;
        let mut pending: Vec<usize> = (0..plan.probes.len()).collect();
        for round in 0..self.timing().rounds.max(1) {
            // A Service just made is programmed by the node (kube-proxy) and named by the
            // cluster DNS a moment later: probed at once, it reads as blocked or unresolved
            // for reasons that are not policy's. The first round waits for it as retries do.
            let settle = round > 0 || !self.services.is_empty();
            let delay = if settle { self.timing().round_wait } else { Duration::ZERO };
            let mut by_source: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
            for &p in &pending {
                by_source.entry(plan.probes[p].from).or_default().push(p);
            }
            let mut names = BTreeMap::new();
            let mut agent_ids: BTreeMap<String, HashMap<usize, String>> = BTreeMap::new();
            let mut created = Vec::new();
            for (source, probe_ids) in &by_source {
                let mirror = &plan.mirrors[*source];
                let (mut agent_plan, ids) = self.agent_plan(plan, probe_ids, targets, snapshot, &mut observations);
                agent_plan.delay_ms = (!delay.is_zero()).then(|| delay.as_millis().try_into().unwrap_or(u64::MAX));
                let name = format!("{}r{round}", pods::pod_name(&self.run_id, "s", *source));
                match pods::source(settings, &name, mirror, &agent_plan) {
                    Ok(pod) => created.push(pod),
                    Err(too_long) => {
                        // Partial failure: these probes are unsent, so inconclusive, never passed.
                        warn!(run.id = %self.run_id, pod = %name, %too_long, "source plan too long; its probes are unsent");
                        for p in ids.keys() {
                            observations[*p].unsent = Some(too_long.to_string());
                        }
                        continue;
                    }
                }
                names.insert(name.clone(), (*source, mirror.namespace.clone()));
                agent_ids.insert(name, ids);
            }
            let phase = Instant::now();
            create_pods(self.client, created).await?;
            self.timings.create_seconds += phase.elapsed().as_secs_f64();
            // Past its start-up, a source pod waits out the delay and then probes, for as long
            // as its agent's watchdog allows at most.
            let probing = self
                .timing()
                .round_watchdog(by_source.values().map(|ids| ids.iter().map(|&p| &plan.probes[p]).collect::<Vec<_>>()));
            let states = self.wait(&names, delay + probing, |s| s.terminated_message.is_some()).await?;
            // The pods spent the round's wait before probing: it is the round's, not theirs.
            self.timings.pods_seconds = (self.timings.pods_seconds - delay.as_secs_f64()).max(0.0);
            self.timings.round_wait_seconds += delay.as_secs_f64();
            for (name, (source, namespace)) in &names {
                let state = &states[name];
                if let Some(ip) = state.ip {
                    placement.sources.entry(*source).or_insert(ip);
                }
                let results = self.results(name, namespace, state).await;
                for &p in &by_source[source] {
                    // A probe without an agent id was never sent: it is recorded as unsent.
                    let Some(id) = agent_ids[name].get(&p) else { continue };
                    let round = match &results {
                        Ok(by_id) => by_id.get(id).cloned().unwrap_or_else(|| no_answer("no result for this probe")),
                        Err(reason) => no_answer(reason),
                    };
                    observations[p].rounds.push(round);
                }
            }
            let probe_pods = ProbePodCluster::new(&snapshot.cluster, plan, &self.run_id, &placement, &dns_endpoints);
            pending.retain(|&p| match (probe_pods.verdict(plan, p), observations[p].rounds.last()) {
                (Some(expected), Some(last)) => needs_retry(expected.allowed, last.observed),
                _ => false,
            });
            info!(run.id = %self.run_id, round, retry = pending.len(), "round finished");
            judged_against = Some(probe_pods);
            if pending.is_empty() {
                break;
            }
        }
        let probe_pods = judged_against
            .unwrap_or_else(|| ProbePodCluster::new(&snapshot.cluster, plan, &self.run_id, &placement, &dns_endpoints));
        Ok((observations, probe_pods))
    }

    /// The agent's plan for some probes of one source, with the agent id of each probe
    /// (1..N in plan order, which the termination log encodes most compactly). Probes whose
    /// target never started are recorded as unsent instead.
    fn agent_plan(
        &self,
        plan: &Plan,
        probe_ids: &[usize],
        targets: &HashMap<usize, PodState>,
        snapshot: &Snapshot,
        observations: &mut [ProbeRounds],
    ) -> (AgentPlan, HashMap<usize, String>) {
        let mut probes = Vec::new();
        let mut ids = HashMap::new();
        for &p in probe_ids {
            let probe = &plan.probes[p];
            let transport = if probe.port.protocol == Protocol::Udp { Transport::Udp } else { Transport::Tcp };
            let mut path = ProbePath::Pod;
            let mut resolver = None;
            let target = match probe.to {
                Destination::Dns => match &snapshot.dns {
                    Some(dns) => {
                        Ok(ProbeTarget::Dns { name: self.options.dns_name.clone(), server: dns.server, transport })
                    }
                    None => {
                        Err(format!("no cluster DNS Service {}/{}", self.options.dns.namespace, self.options.dns.name))
                    }
                },
                Destination::External(ip) => Ok(ProbeTarget::to_address(transport, ip, probe.port.port)),
                Destination::Mirror(m) => match targets.get(&m).and_then(|s| s.ip) {
                    None => Err(targets
                        .get(&m)
                        .and_then(|s| s.failed.clone())
                        .unwrap_or_else(|| "the target pod never started".into())),
                    Some(ip) => {
                        path = probe.path;
                        self.path_target(m, ip, probe, transport, snapshot).map(|(target, by)| {
                            resolver = by;
                            target
                        })
                    }
                },
            };
            match target {
                Ok(target) => {
                    let id = (probes.len() + 1).to_string();
                    ids.insert(p, id.clone());
                    probes.push(AgentProbe { id, target, path, resolver });
                }
                Err(reason) => observations[p].unsent = Some(reason),
            }
        }
        let timing = self.timing();
        let timeout_ms = u64::try_from(timing.probe_timeout.as_millis()).unwrap_or(u64::MAX);
        (AgentPlan { timeout_ms, concurrency: Some(timing.concurrency), delay_ms: None, probes }, ids)
    }

    /// Where a probe to the target pod of mirror `m` (at `ip`) goes by its path, and the DNS
    /// server that resolves it; why it cannot be sent when its Service or the cluster DNS is
    /// missing.
    fn path_target(
        &self,
        m: usize,
        ip: IpAddr,
        probe: &PlannedProbe,
        transport: Transport,
        snapshot: &Snapshot,
    ) -> Result<(ProbeTarget, Option<SocketAddr>), String> {
        let port = probe.port.port;
        let service = || match self.services.get(&m) {
            Some(Ok(service)) => Ok(service),
            Some(Err(reason)) => Err(format!("the target's Service could not be made: {reason}")),
            None => Err("the target has no Service".to_string()),
        };
        match probe.path {
            ProbePath::Pod => Ok((ProbeTarget::to_address(transport, ip, port), None)),
            ProbePath::Service => {
                service().map(|(_, cluster_ip)| (ProbeTarget::to_address(transport, *cluster_ip, port), None))
            }
            ProbePath::Dns => {
                let (host, _) = service()?;
                let dns = snapshot.dns.as_ref().ok_or_else(|| {
                    format!(
                        "no cluster DNS Service {}/{} to resolve the target's Service",
                        self.options.dns.namespace, self.options.dns.name
                    )
                })?;
                let host = host.clone();
                let target = match transport {
                    Transport::Tcp => ProbeTarget::Tcp { host, port },
                    Transport::Udp => ProbeTarget::Udp { host, port },
                };
                Ok((target, Some(dns.server)))
            }
        }
    }

    /// Reads a finished source pod's results: the termination message, or the log when the
    /// message is not whole: truncated by the agent, or cut by the kubelet, which keeps at
    /// most 12 KiB of a pod's messages, divided among its containers (injected sidecars,
    /// init and ephemeral containers included), so less than the agent's 4 KiB in a pod
    /// that a mesh or an agent injector grew.
    async fn results(&self, name: &str, namespace: &str, state: &PodState) -> Result<AgentResults, String> {
        if let Some(reason) = &state.failed {
            return Err(format!("the probe pod never ran: {reason}"));
        }
        let message = state.terminated_message.as_deref().unwrap_or_default();
        let why = match termination_log::decode(message) {
            Ok(compact) if !compact.truncated => {
                return Ok(compact
                    .results
                    .into_iter()
                    .map(|r| (r.id, RoundResult { observed: r.observed, millis: r.millis, detail: None }))
                    .collect());
            }
            Ok(_) => "results were truncated".to_string(),
            Err(e) => format!("unreadable termination message ({e})"),
        };
        info!(run.id = %self.run_id, pod = %format!("{namespace}/{name}"), %why, "reading the results from the pod's log");
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let log = pods
            .logs(name, &LogParams::default())
            .await
            .map_err(|e| format!("{why} and the log is unavailable: {e}"))?;
        let report: AgentReport = log
            .lines()
            .rev()
            .find_map(|line| serde_json::from_str(line).ok())
            .ok_or_else(|| format!("{why} and the log holds no report"))?;
        Ok(report
            .results
            .into_iter()
            .map(|r| (r.id, RoundResult { observed: r.observed, millis: Some(r.millis), detail: r.detail }))
            .collect())
    }

    /// The record of what the run found so far.
    fn record(&self, started_at: f64) -> RunRecord {
        let judgement =
            self.judgement.clone().unwrap_or_else(|| Judgement::nothing_judged(self.facts.as_ref(), self.planned));
        RunRecord {
            warnings: self.warnings.clone(),
            uncovered: self.uncovered.clone(),
            ..RunRecord::new(
                self.run_id.clone(),
                (started_at, unix_now()),
                judgement,
                self.problems.clone(),
                self.timings.clone(),
            )
        }
    }

    /// Waits until every named pod satisfies `done` or cannot anymore; pods that do not get
    /// there in time (the start-up timeout plus `work`: what their plan waits before probing
    /// and the longest its probing may take) are marked failed, and each failed pod is a
    /// problem of the run.
    async fn wait(
        &mut self,
        names: &BTreeMap<String, (usize, String)>,
        work: Duration,
        done: impl Fn(&PodState) -> bool,
    ) -> Result<BTreeMap<String, PodState>, Error> {
        let started = Instant::now();
        let pods: Api<Pod> = Api::all(self.client.clone());
        let params = ListParams::default().labels(&format!("{RUN_ID_KEY}={}", self.run_id));
        // The time spent here is the kubelet's and the network's, not the controller's.
        let result = self.wait_for(&pods, &params, names, &done, started, work).await;
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
        work: Duration,
    ) -> Result<BTreeMap<String, PodState>, Error> {
        let start_up = self.timing().pod_start_timeout;
        loop {
            let listed = with_backoff("list the run's pods", || pods.list(params)).await?;
            let mut states: BTreeMap<String, PodState> =
                listed.items.iter().map(|p| (p.name_any(), pod_state(p))).collect();
            let finished = names.keys().all(|n| states.get(n).is_some_and(|s| done(s) || s.failed.is_some()));
            if finished || started.elapsed() >= start_up + work {
                for (name, (_, namespace)) in names {
                    let state = states.entry(name.clone()).or_default();
                    if !done(state) && state.failed.is_none() {
                        state.failed = Some(if state.running && !work.is_zero() {
                            format!("running but not finished within {} s", (start_up + work).as_secs())
                        } else {
                            format!("not ready within {} s", start_up.as_secs())
                        });
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

/// Creates a target's Service and returns its ClusterIP, or why it has none.
async fn create_service(client: &Client, service: Service) -> Result<IpAddr, String> {
    let namespace = service.namespace().unwrap_or_default();
    let name = service.name_any();
    let api: Api<Service> = Api::namespaced(client.clone(), &namespace);
    let what = format!("create Service {namespace}/{name}");
    // A retried create may find the Service its lost first attempt made.
    let created = with_backoff(&what, || async {
        match api.create(&PostParams::default(), &service).await {
            Err(kube::Error::Api(status)) if status.code == 409 => api.get(&name).await,
            other => other,
        }
    })
    .await
    .map_err(|e| e.to_string())?;
    let cluster_ip = created.spec.and_then(|s| s.cluster_ip).unwrap_or_default();
    cluster_ip.parse().map_err(|_| format!("Service {namespace}/{name} has no ClusterIP ({cluster_ip:?})"))
}

/// Deletes every pod and Service of this run.
pub async fn cleanup(client: &Client, run_id: &str) -> Result<(), Error> {
    let selector = format!("{MANAGED_BY_KEY}={MANAGED_BY_VALUE},{RUN_ID_KEY}={run_id}");
    let (pods, services) =
        futures::join!(delete_matching::<Pod>(client, &selector), delete_matching::<Service>(client, &selector));
    pods.and(services)
}

/// Deletes the pods of other runs that are no longer running (a crashed run's leftovers):
/// those whose run record is gone, finished, or past its deadline.
pub async fn sweep(client: &Client, current_run: &str) -> Result<(), Error> {
    let runs: Api<kube::api::DynamicObject> = Api::all_with(client.clone(), &record::api_resource());
    let ours = ListParams::default().labels(&format!("{MANAGED_BY_KEY}={MANAGED_BY_VALUE}"));
    let pods = Api::<Pod>::all(client.clone()).list_metadata(&ours).await.context("list netcanary pods")?;
    let services = Api::<Service>::all(client.clone()).list_metadata(&ours).await.context("list netcanary Services")?;
    let mut stale: BTreeSet<String> = BTreeSet::new();
    // Objects already being deleted (the last run's, in serve) need nothing more.
    let left = pods.items.iter().map(|p| &p.metadata).chain(services.items.iter().map(|s| &s.metadata));
    for metadata in left.filter(|m| m.deletion_timestamp.is_none()) {
        let Some(run) = metadata.labels.as_ref().and_then(|l| l.get(RUN_ID_KEY)) else { continue };
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
        info!(run.id = %run, "sweeping pods and Services left by an earlier run");
        cleanup(client, &run).await?;
    }
    Ok(())
}

/// Deletes the pods or Services matching `selector`, concurrently. One request per object
/// rather than a `deletecollection`: that verb would let a wrong selector empty a namespace,
/// so the ServiceAccount is not granted it.
async fn delete_matching<K>(client: &Client, selector: &str) -> Result<(), Error>
where
    K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
    let kind = K::kind(&()).into_owned();
    let kind = kind.as_str();
    let all: Api<K> = Api::all(client.clone());
    let params = ListParams::default().labels(selector);
    let listed = with_backoff(&format!("list {kind} objects to delete"), || all.list_metadata(&params)).await?;
    stream::iter(listed.items)
        .map(|object| async move {
            let namespace = object.namespace().unwrap_or_default();
            let api: Api<K> = Api::namespaced(client.clone(), &namespace);
            let what = format!("delete {kind} {namespace}/{}", object.name_any());
            let delete = DeleteParams::default().grace_period(1);
            with_backoff(&what, || async {
                match api.delete(&object.name_any(), &delete).await {
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
