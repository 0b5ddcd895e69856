//! `netcanary lint`: audits manifests, or the cluster itself, for the gaps default deny
//! leaves (namespaces left open, DNS blocked, selectors that select nothing, rules open to
//! every namespace).

use std::collections::BTreeSet;
use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use netcanary_lint::{DISABLE_ANNOTATION, Level, Options, RULES, Sources, render};
use netcanary_orchestrator::policy_report::{Report, publish_named};
use netcanary_orchestrator::snapshot::{DnsService, Listed};
use netcanary_policy::{Cluster, resolve};

use super::manifests::ManifestArgs;
use super::run::ClusterArgs;

#[derive(Debug, clap::Args)]
#[command(after_long_help = "\
Without -f, lint reads the cluster (in-cluster configuration, else --kubeconfig,
$KUBECONFIG or ~/.kube/config): its namespaces, pods and NetworkPolicies, and the
annotations that switch rules off.

Examples:
  netcanary lint -f examples/cluster/
  netcanary lint --context prod -o json
  kubectl get ns,pods,networkpolicies -A -o yaml > cluster.yaml && netcanary lint -f cluster.yaml --fail-on warning
  netcanary lint -f policies/ -o sarif > lint.sarif

Rules are switched off with --disable, or on an object or a whole namespace with the
annotation netcanary.io/lint-disable: \"NC006,NC001\".

Exit status: 0 when no finding is at or above --fail-on, 1 when one is, 2 when the input
has errors (unless --keep-going).")]
#[command(mut_arg("paths", |arg| arg.required(false)))]
pub struct Args {
    #[command(flatten)]
    manifests: ManifestArgs,

    #[command(flatten)]
    cluster: ClusterArgs,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Text, env = "NETCANARY_LINT_OUTPUT")]
    output: Format,

    /// Exit 1 when a finding is at or above this level.
    #[arg(long, value_name = "LEVEL", default_value = "error", value_parser = parse_level)]
    fail_on: Level,

    /// Switch a rule off (e.g. NC002); repeatable.
    #[arg(long, value_name = "RULE", value_parser = parse_rule)]
    disable: Vec<String>,

    /// The cluster DNS pods, as endpoint names (ns/pod, ns/kind/workload); repeatable.
    /// Default: the pods labelled k8s-app: kube-dns in kube-system.
    #[arg(long, value_name = "POD")]
    dns: Vec<String>,

    /// The namespace Prometheus runs in. Default: Prometheus is found by its labels
    /// (app.kubernetes.io/name: prometheus or app: prometheus) anywhere.
    #[arg(long, value_name = "NAMESPACE")]
    monitoring_namespace: Option<String>,

    /// Linting the cluster (no -f): also write the findings as PolicyReports named
    /// netcanary-lint (one per namespace with findings, and the ClusterPolicyReport),
    /// replacing the last ones, for Policy Reporter.
    #[arg(long, env = "NETCANARY_LINT_POLICY_REPORTS", conflicts_with = "paths")]
    policy_reports: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// Grouped by namespace, with the fix under each finding.
    Text,
    /// `{"findings": [...]}`, for scripts.
    Json,
    /// SARIF 2.1.0, for code scanning.
    Sarif,
}

fn parse_level(value: &str) -> Result<Level, String> {
    value.parse()
}

fn parse_rule(value: &str) -> Result<String, String> {
    let id = value.trim().to_ascii_uppercase();
    if RULES.iter().any(|r| r.id == id) {
        Ok(id)
    } else {
        let known: Vec<&str> = RULES.iter().map(|r| r.id).collect();
        Err(format!("unknown rule {value:?}: lint has {}", known.join(", ")))
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let live = if args.manifests.paths.is_empty() { Some(Live::connect(&args.cluster)?) } else { None };
    let (mut cluster, sources) = match &live {
        Some(live) => live.read()?,
        None => {
            let loaded = match args.manifests.load() {
                Ok(loaded) => loaded,
                Err(code) => return Ok(code),
            };
            (loaded.cluster, Sources::read_paths(&args.manifests.paths, &args.manifests.namespace))
        }
    };
    let mut dns = Vec::new();
    for name in &args.dns {
        let index = resolve(&mut cluster, name).with_context(|| format!("--dns {name}"))?;
        dns.push(cluster.endpoints()[index].id.clone());
    }
    let options = Options {
        dns,
        monitoring_namespace: args.monitoring_namespace,
        disabled: args.disable.into_iter().collect::<BTreeSet<_>>(),
    };
    let findings = netcanary_lint::lint(&cluster, &sources, &options);

    match args.output {
        Format::Text => write!(anstream::stdout().lock(), "{}", render::text(&findings))?,
        Format::Json | Format::Sarif => {
            let doc = if args.output == Format::Json { render::json(&findings) } else { render::sarif(&findings) };
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        }
    }
    if let (true, Some(live)) = (args.policy_reports, &live) {
        live.publish(&findings)?;
    }
    let failing = findings.iter().any(|f| f.severity >= args.fail_on);
    Ok(if failing { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// A cluster being linted: the API client and the runtime it needs.
struct Live {
    runtime: tokio::runtime::Runtime,
    client: kube::Client,
}

impl Live {
    fn connect(cluster: &ClusterArgs) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
        let client = runtime.block_on(cluster.client())?;
        Ok(Live { runtime, client })
    }

    /// The cluster's model and its objects' rule switches. Objects the engine cannot read
    /// are left out, with a warning each.
    fn read(&self) -> anyhow::Result<(Cluster, Sources)> {
        self.runtime.block_on(async {
            let (snapshot, annotated) =
                Listed(self.client.clone()).snapshot_annotated(&DnsService::default(), DISABLE_ANNOTATION).await?;
            for unreadable in &snapshot.unreadable {
                eprintln!("warning: {} cannot be read and is left out: {}", unreadable.object, unreadable.reason);
            }
            let mut sources = Sources::new("default");
            for object in annotated {
                sources.add_object(object.kind, &object.namespace, &object.name, object.value.as_deref());
            }
            anyhow::Ok((snapshot.cluster, sources))
        })
    }

    /// Writes the findings as PolicyReports, replacing the last lint's.
    fn publish(&self, findings: &[netcanary_lint::Finding]) -> anyhow::Result<()> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let reports = render::policy_report_results(findings, now)
            .into_iter()
            .map(|(namespace, results)| Report::new(namespace, results))
            .collect();
        let written = self.runtime.block_on(publish_named(&self.client, render::POLICY_REPORT_NAME, reports))?;
        if !written {
            eprintln!("warning: the cluster has no PolicyReport CRDs (wgpolicyk8s.io): no reports written");
        }
        Ok(())
    }
}
