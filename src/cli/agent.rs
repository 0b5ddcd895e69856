//! `netcanary agent`: thin glue from the command line to `netcanary_probe::agent`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use netcanary_probe::agent;
use netcanary_probe::fd_limit;
use netcanary_probe::plan::{PlanSource, ProbePlan};
use netcanary_wire::pace::{self, DEFAULT_CONCURRENCY};
use netcanary_wire::{plan_env, termination_log};
use tracing::{info, warn};

/// Runs a probe plan inside a probe pod and reports what the network did.
///
/// Every probe runs concurrently with its own deadline (`timeout_ms` in the plan). Results go
/// to stdout as one JSON line ({"results": [{"id", "observed", "millis", ...}]}) and, in a
/// compact form of at most 4096 bytes, to the termination log, so that they can be read from
/// the pod's status without any network access. Exits 0 when the plan ran (whatever the
/// probes observed; a bad probe is reported as "error"), 2 when the plan cannot be read.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("plan_source").required(true).args(["plan", "plan_json"])))]
pub struct Args {
    /// The plan to run: a JSON file, or `-` for standard input.
    #[arg(long, value_name = "FILE|-", env = "NETCANARY_PLAN")]
    plan: Option<String>,

    /// The plan itself, as JSON text: how the orchestrator hands a probe pod its plan (in
    /// the environment, so that no ConfigMap or volume is needed). A plan longer than one
    /// variable may be continued in NETCANARY_PLAN_JSON_1, _2, … with their count in
    /// NETCANARY_PLAN_JSON_PARTS.
    #[arg(long, value_name = "JSON", env = "NETCANARY_PLAN_JSON", hide_env_values = true)]
    plan_json: Option<String>,

    /// Where to write the compact results (what the pod status shows as its termination message).
    #[arg(long, value_name = "PATH", env = "NETCANARY_TERMINATION_LOG", default_value = "/dev/termination-log")]
    termination_log: PathBuf,

    /// Write no termination log (e.g. when running outside a pod).
    #[arg(long, conflicts_with = "termination_log")]
    no_termination_log: bool,

    /// How many probes may be in flight at once [default: the plan's `concurrency`, else 4096].
    /// Capped by the open-file limit, which the agent raises to its hard limit first.
    #[arg(long, value_name = "N", env = "NETCANARY_CONCURRENCY", value_parser = clap::value_parser!(u32).range(1..))]
    concurrency: Option<u32>,

    /// Pretty-print the JSON results.
    #[arg(long, env = "NETCANARY_PRETTY")]
    pretty: bool,
}

/// Extra time the last-resort watchdog thread allows past the in-runtime watchdog.
const HARD_WATCHDOG_GRACE: Duration = Duration::from_secs(2);

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let plan = match (&args.plan, &args.plan_json) {
        (_, Some(first)) => {
            // A long plan comes in parts (NETCANARY_PLAN_JSON_1, …) that follow the first.
            let json = plan_env::join(first, |name| std::env::var(name).ok())?;
            ProbePlan::parse(&json, "--plan-json")?
        }
        (Some(source), None) => ProbePlan::load(&PlanSource::from_arg(source))?,
        (None, None) => anyhow::bail!("give the plan with --plan FILE|- or --plan-json JSON"),
    };
    for probe in &plan.probes {
        if let Err(detail) = &probe.spec {
            warn!(probe.id = %probe.id, %detail, "invalid probe, reported as error");
        }
    }
    let fd_limit = fd_limit::raise();
    let requested = args.concurrency.map(|n| n as usize).or(plan.concurrency).unwrap_or(DEFAULT_CONCURRENCY);
    let concurrency = fd_limit::cap_concurrency(requested, fd_limit);
    if concurrency < requested {
        warn!(requested, concurrency, fd_limit, "concurrency capped by the open-file limit");
    }
    arm_hard_watchdog(&plan, concurrency);

    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    let report = runtime.block_on(agent::run_plan(&plan, concurrency));
    // A system resolver call (getaddrinfo) cannot be cancelled; do not wait for one.
    runtime.shutdown_timeout(Duration::from_millis(100));
    info!(probes = report.results.len(), elapsed_ms = report.elapsed_ms, concurrency, "plan finished");

    if !args.no_termination_log
        && let Err(err) =
            std::fs::write(&args.termination_log, termination_log::encode(&report.results, termination_log::MAX_BYTES))
    {
        warn!(path = %args.termination_log.display(), %err, "cannot write the termination log");
    }
    let json = if args.pretty { serde_json::to_string_pretty(&report) } else { serde_json::to_string(&report) }?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{json}").and_then(|()| stdout.flush()).context("cannot write the results to stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// A last resort in case the runtime itself wedges: the agent must never outlive its
/// deadlines by more than a small margin, because a probe pod that hangs blinds a run.
fn arm_hard_watchdog(plan: &ProbePlan, concurrency: usize) {
    // As if every probe went to a host name: the longest a probe may take.
    let longest = pace::longest_probe(plan.timeout, true);
    let limit = plan.delay + pace::watchdog(plan.probes.len(), concurrency, longest) + HARD_WATCHDOG_GRACE;
    std::thread::Builder::new()
        .name("agent-watchdog".into())
        .spawn(move || {
            std::thread::sleep(limit);
            eprintln!("error: the agent did not finish within {} ms; exiting", limit.as_millis());
            std::process::exit(2);
        })
        .map(drop)
        .unwrap_or_else(|err| warn!(%err, "cannot start the watchdog thread"));
}
