//! `netcanary run`: one verification run against the current cluster.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use kube::config::{KubeConfigOptions, Kubeconfig};
use netcanary_metrics::Metrics;
use netcanary_orchestrator::run::{RunOptions, plan, run};
use netcanary_orchestrator::snapshot::{DnsService, Listed, SnapshotSource};
use netcanary_planner::{NamespaceFilter, ProbePath, Timing};
use netcanary_policy::PortProto;
use netcanary_policy::Selector;
use netcanary_report::plan as report_plan;
use netcanary_report::run as report;
use tracing::warn;

#[derive(Debug, clap::Args)]
#[command(after_long_help = "\
Exit status: 0 when the network does what policy says, 1 on a mismatch or an intent
violation (or when the enforcement canary connects: the network enforces no policy), 2
when the run could not verify what it planned (a probe pod that never started, an
unreadable policy, a statement of intent no probe could check, the API server gone, the
deadline).

Examples:
  netcanary run                                  # in-cluster, or the current kubeconfig context
  netcanary run -o junit > netcanary.xml         # for CI
  netcanary run --intent examples/intent.yaml    # hold the network to declared intent too
  netcanary run --pushgateway http://pushgateway.monitoring:9091
  netcanary run --pushgateway http://pushgateway.monitoring:9091 --push-job netcanary-prod")]
pub struct Args {
    #[command(flatten)]
    pub cluster: ClusterArgs,

    #[command(flatten)]
    pub probing: ProbeArgs,

    /// Report format.
    #[arg(short, long, value_enum, default_value_t = Format::Table, env = "NETCANARY_OUTPUT")]
    output: Format,

    /// Only read the cluster and print what a run would probe (pods, probes, its wall time
    /// at worst, rule coverage); create nothing.
    #[arg(long)]
    dry_run: bool,

    /// Push the run's metrics to this Pushgateway, replacing the group of --push-job.
    #[arg(long, value_name = "URL", env = "NETCANARY_PUSHGATEWAY")]
    pushgateway: Option<String>,

    /// The Pushgateway group to replace, and the `job` label of every pushed series. The
    /// alerts and the dashboard tell runs apart by `job`: clusters that push to one
    /// Pushgateway need one each (netcanary-prod, netcanary-staging).
    #[arg(long, value_name = "NAME", env = "NETCANARY_PUSH_JOB", default_value = "netcanary", value_parser = parse_push_job, requires = "pushgateway")]
    push_job: String,
}

/// A Pushgateway job name. It is a segment of the push URL, so it is kept to characters
/// that need no escaping there.
fn parse_push_job(value: &str) -> Result<String, String> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-.:".contains(c);
    if !value.is_empty() && value.chars().all(plain) {
        Ok(value.to_owned())
    } else {
        Err("use letters, digits, `_`, `-`, `.` and `:` (the name is a segment of the push URL)".into())
    }
}

/// A namespace selector: `KEY=VALUE` pairs, all of which must match.
fn parse_namespace_selector(value: &str) -> Result<Selector, String> {
    let mut pairs = Vec::new();
    for pair in value.split(',') {
        match pair.split_once('=').map(|(key, value)| (key.trim(), value.trim())) {
            Some((key, value)) if !key.is_empty() && !key.ends_with('!') => pairs.push((key, value)),
            _ => return Err(format!("{pair:?}: use KEY=VALUE pairs, separated by commas")),
        }
    }
    Ok(Selector::from_labels(pairs))
}

/// How to reach the cluster.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// Kubeconfig to use; default: in-cluster configuration, else $KUBECONFIG or ~/.kube/config.
    #[arg(long, value_name = "PATH", env = "NETCANARY_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use.
    #[arg(long, value_name = "NAME", env = "NETCANARY_CONTEXT")]
    context: Option<String>,
}

/// How a run probes.
#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// The netcanary image probe and target pods run.
    #[arg(long, value_name = "IMAGE", env = "NETCANARY_IMAGE", default_value_t = RunOptions::default().image)]
    image: String,

    /// Each probe's deadline.
    #[arg(long, value_name = "DURATION", env = "NETCANARY_PROBE_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration)]
    timeout: Duration,

    /// Rounds a disagreeing probe gets before it is called a mismatch.
    #[arg(long, value_name = "N", env = "NETCANARY_ROUNDS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    rounds: u32,

    /// Wait between rounds, for policy still being programmed.
    #[arg(long, value_name = "DURATION", env = "NETCANARY_ROUND_WAIT", default_value = "5s", value_parser = humantime::parse_duration)]
    round_wait: Duration,

    /// At most this many probe pods per run (sources and targets; the canary's two are
    /// extra): what a run's time and footprint grow with. The planner covers rules first,
    /// and plans as many probes as it can from the pods it already has.
    #[arg(long, value_name = "N", env = "NETCANARY_MAX_PROBE_PODS", default_value_t = netcanary_planner::DEFAULT_MAX_PROBE_PODS)]
    max_probe_pods: usize,

    /// At most this many probes per run: a probe from a pod that runs anyway costs
    /// milliseconds, so this mostly bounds the sampled pairs.
    #[arg(long, value_name = "N", env = "NETCANARY_MAX_PROBES", default_value_t = netcanary_planner::DEFAULT_MAX_PROBES)]
    max_probes: usize,

    /// The longest a round's probing may take, should every probe time out: no probe pod
    /// gets more probes than that many waves of --probe-concurrency in flight (default: one
    /// wave, so that a round takes one --timeout, twice that with the dns path). The dry run
    /// shows the estimate.
    #[arg(long, value_name = "DURATION", env = "NETCANARY_MAX_ROUND_TIME", value_parser = humantime::parse_duration)]
    max_round_time: Option<Duration>,

    /// Probes a probe pod keeps in flight (each holds a socket and, through the node, a
    /// conntrack entry).
    #[arg(long, value_name = "N", env = "NETCANARY_PROBE_CONCURRENCY", default_value_t = netcanary_wire::pace::DEFAULT_CONCURRENCY, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=65536))]
    probe_concurrency: usize,

    /// Also probe this address outside the cluster from every probed workload, e.g.
    /// `1.1.1.1:443/TCP` (repeatable; comma-separated in the variable): what policy says of
    /// it comes from `ipBlock` rules, and its own server must answer (a closed port is
    /// refused, which counts as reachable).
    #[arg(long = "to", value_name = "ADDR:PORT/PROTO", env = "NETCANARY_TO", value_delimiter = ',', value_parser = super::analyze::parse_external_target)]
    external: Vec<(IpAddr, PortProto)>,

    /// How long a probe pod may take to start.
    #[arg(long, value_name = "DURATION", env = "NETCANARY_POD_START_TIMEOUT", default_value = "2m", value_parser = humantime::parse_duration)]
    pod_start_timeout: Duration,

    /// The whole run's deadline; past it the run ends inconclusive and cleans up.
    #[arg(long, value_name = "DURATION", env = "NETCANARY_DEADLINE", default_value = "10m", value_parser = humantime::parse_duration)]
    deadline: Duration,

    /// netcanary's own namespace, whose default-deny policy the enforcement canary tests.
    #[arg(long, value_name = "NAMESPACE", env = "NETCANARY_NAMESPACE", default_value = "netcanary")]
    namespace: String,

    /// Probe only the pods of these namespaces (comma-separated; default: every namespace).
    /// Probe pods are then created only there and in netcanary's own namespace (the
    /// canary), so that RBAC may grant creating pods there only
    /// (manifests/overlays/namespaced).
    #[arg(long, value_name = "NS,...", env = "NETCANARY_NAMESPACES", value_delimiter = ',')]
    namespaces: Vec<String>,

    /// Probe only the pods of namespaces with these labels (KEY=VALUE,...; all must match).
    /// With --namespaces, a namespace must pass both.
    #[arg(long, value_name = "KEY=VALUE,...", env = "NETCANARY_NAMESPACE_SELECTOR", value_parser = parse_namespace_selector)]
    namespace_selector: Option<Selector>,

    /// The cluster DNS Service, as NAMESPACE/NAME.
    #[arg(long, value_name = "NS/NAME", env = "NETCANARY_DNS_SERVICE", default_value = "kube-system/kube-dns")]
    dns_service: String,

    /// Spread probe pods across nodes (topology spread by hostname), so that probes
    /// also cross node boundaries.
    #[arg(long, env = "NETCANARY_SPREAD")]
    spread: bool,

    /// The name DNS probes resolve.
    #[arg(
        long,
        value_name = "NAME",
        env = "NETCANARY_DNS_NAME",
        default_value = "kubernetes.default.svc.cluster.local"
    )]
    dns_name: String,

    /// Declared intent to hold the network to, besides the cluster's NetcanaryIntent
    /// objects: NetcanaryIntent YAML files or folders (repeatable; comma-separated in the
    /// variable). An intent given here replaces the cluster's of the same name.
    #[arg(long, value_name = "PATH", env = "NETCANARY_INTENT", value_delimiter = ',')]
    intent: Vec<PathBuf>,

    /// How probes reach each target pod (comma-separated): `pod` (its own IP), `service`
    /// (the ClusterIP of a Service the run makes for that pod alone), `dns` (that Service's
    /// name, resolved through the cluster DNS Service). Policy is the pod's on every path, so
    /// each expects the same. `pod` by default: each other path makes one Service per target
    /// and adds one probe per probed cell, beyond --max-probes.
    #[arg(long, value_name = "PATH,...", env = "NETCANARY_PATHS", value_delimiter = ',', default_value = "pod")]
    paths: Vec<ProbePath>,

    /// The cluster's DNS domain: the `dns` path resolves NAME.NAMESPACE.svc.DOMAIN.
    #[arg(long, value_name = "DOMAIN", env = "NETCANARY_CLUSTER_DOMAIN", default_value = "cluster.local")]
    cluster_domain: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// Summary and one row per probe, mismatches first.
    Table,
    /// The run record: every probe with expectation, rounds and judgement.
    Json,
    /// JUnit XML for CI systems: mismatches are failures, inconclusive probes errors.
    Junit,
}

impl ClusterArgs {
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        let options = KubeConfigOptions { context: self.context.clone(), ..KubeConfigOptions::default() };
        let config = match &self.kubeconfig {
            Some(path) => {
                // Read here rather than by `Kubeconfig::read_from`, whose error repeats its cause.
                let text =
                    std::fs::read_to_string(path).with_context(|| format!("read kubeconfig {}", path.display()))?;
                let kubeconfig =
                    Kubeconfig::from_yaml(&text).map_err(|e| anyhow::anyhow!("kubeconfig {}: {e}", path.display()))?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?
            }
            None if self.context.is_some() => kube::Config::from_kubeconfig(&options).await?,
            None => kube::Config::infer()
                .await
                .context("no in-cluster configuration and no kubeconfig (use --kubeconfig)")?,
        };
        Ok(kube::Client::try_from(config)?)
    }
}

impl ProbeArgs {
    pub fn options(&self) -> anyhow::Result<RunOptions> {
        let (namespace, name) = self
            .dns_service
            .split_once('/')
            .with_context(|| format!("--dns-service {:?} must be NAMESPACE/NAME", self.dns_service))?;
        let intent = netcanary_objects::load_intent_paths(&self.intent);
        if intent.has_errors() {
            let listed: Vec<String> = intent.diagnostics.iter().map(ToString::to_string).collect();
            anyhow::bail!("--intent has errors; fix them:\n{}", listed.join("\n"));
        }
        for warning in &intent.diagnostics {
            warn!(%warning, "intent");
        }
        Ok(RunOptions {
            image: self.image.clone(),
            planner: netcanary_planner::Options {
                timing: Timing {
                    probe_timeout: self.timeout,
                    concurrency: self.probe_concurrency,
                    max_round_time: self.max_round_time,
                    rounds: self.rounds,
                    round_wait: self.round_wait,
                    pod_start_timeout: self.pod_start_timeout,
                    deadline: self.deadline,
                },
                max_probe_pods: self.max_probe_pods,
                max_probes: self.max_probes,
                probed_namespaces: NamespaceFilter {
                    names: (!self.namespaces.is_empty()).then(|| self.namespaces.iter().cloned().collect()),
                    selector: self.namespace_selector.clone(),
                },
                external: self.external.clone(),
                intent: intent.statements,
                paths: self.paths.clone(),
                ..netcanary_planner::Options::default()
            },
            dns: DnsService { namespace: namespace.into(), name: name.into() },
            dns_name: self.dns_name.clone(),
            cluster_domain: self.cluster_domain.clone(),
            canary_namespace: self.namespace.clone(),
            spread_across_nodes: self.spread,
            ..RunOptions::default()
        })
    }
}

pub fn run_verb(args: Args) -> anyhow::Result<ExitCode> {
    let options = args.probing.options()?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    if args.dry_run {
        let plan = runtime.block_on(async {
            let client = args.cluster.client().await?;
            let snapshot = Listed(client).snapshot(&options.dns).await?;
            for unreadable in &snapshot.unreadable {
                eprintln!("warning: {} cannot be read and would be skipped: {}", unreadable.object, unreadable.reason);
            }
            anyhow::Ok(plan(&snapshot, &options))
        })?;
        let mut stdout = anstream::stdout().lock();
        match args.output {
            Format::Json => writeln!(stdout, "{}", serde_json::to_string_pretty(&report_plan::json(&plan))?)?,
            Format::Table | Format::Junit => write!(stdout, "{}", report_plan::table(&plan))?,
        }
        return Ok(ExitCode::SUCCESS);
    }
    let record = runtime.block_on(async {
        // Before the first request, so a SIGTERM (a deleted Job, its deadline) cleans up too.
        let shutdown = super::shutdown_signal()?;
        let client = args.cluster.client().await?;
        anyhow::Ok(run(&client, &Listed(client.clone()), &options, shutdown).await)
    })?;
    // The report first: a push that hangs or a Job killed meanwhile must not lose it.
    {
        let mut stdout = anstream::stdout().lock();
        match args.output {
            Format::Table => write!(stdout, "{}", report::table(&record))?,
            Format::Json => writeln!(stdout, "{}", serde_json::to_string_pretty(&record)?)?,
            Format::Junit => write!(stdout, "{}", report::junit(&record))?,
        }
        stdout.flush()?;
    }
    if let Some(gateway) = &args.pushgateway {
        let metrics = Metrics::new();
        metrics.record(&record);
        if let Err(error) = metrics.push(gateway, &args.push_job) {
            warn!(%error, "cannot push metrics");
            eprintln!("warning: {error}");
        }
    }
    Ok(ExitCode::from(record.exit_code()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_jobs_are_plain_url_segments() {
        for job in ["netcanary", "netcanary-prod", "eu_west.1:canary"] {
            assert_eq!(parse_push_job(job).as_deref(), Ok(job));
        }
        for job in ["", "a/b", "prod cluster", "a?b", "é"] {
            assert!(parse_push_job(job).is_err(), "{job:?} was accepted");
        }
    }

    #[test]
    fn namespace_selectors_are_label_pairs() {
        let labels = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let selector = parse_namespace_selector("env=prod, team=payments").expect("a selector");
        assert!(selector.matches(&labels(&[("env", "prod"), ("team", "payments"), ("x", "y")])));
        assert!(!selector.matches(&labels(&[("env", "prod")])));
        for bad in ["env", "=prod", " =prod", "env!=prod", "env=prod,"] {
            assert!(parse_namespace_selector(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
