//! `netcanary analyze`: offline, from manifests, who may reach whom on which port, and why.

use std::io::{IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use netcanary_policy::analysis::EXTERNAL_NAMESPACE;
use netcanary_policy::{Analysis, PortProto, Scope, resolve};
use netcanary_report::{explain, intent, json, markdown, summary, table};

use super::manifests::ManifestArgs;

#[derive(Debug, clap::Args)]
#[command(after_long_help = "\
Examples:
  netcanary analyze -f examples/production/
  kubectl get ns,pods,networkpolicies -A -o json > cluster.json && netcanary analyze -f cluster.json -o summary
  netcanary analyze -f cluster.json -o json --only allowed --from-namespace dev --to-namespace production
  netcanary analyze -f policies/ --port 5432/TCP -o markdown > comment.md
  netcanary analyze -f examples/production/ --to 1.1.1.1:443/TCP --explain production/deployment/api 1.1.1.1 443/TCP
  netcanary analyze -f examples/cluster/ --intent examples/intent.yaml

Exit status: 0 when the input was read, 2 when it has errors (unless --keep-going);
with --intent, 1 when policy allows what intent forbids or denies what it requires.")]
pub struct Args {
    #[command(flatten)]
    manifests: ManifestArgs,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table, env = "NETCANARY_OUTPUT")]
    output: Format,

    /// Destination port to analyse, as PORT or PORT/PROTOCOL (TCP, UDP, SCTP); repeatable.
    /// Default: each destination on the ports its containers declare.
    #[arg(long = "port", value_name = "PORT/PROTO")]
    ports: Vec<PortProto>,

    /// Add a destination outside the cluster, as ADDRESS:PORT/PROTO
    /// (e.g. 1.1.1.1:443/TCP or [2001:db8::1]:53/UDP); repeatable.
    #[arg(long = "to", value_name = "ADDR:PORT/PROTO", value_parser = parse_external_target)]
    external_targets: Vec<(IpAddr, PortProto)>,

    /// Add a source outside the cluster (an IP address); repeatable.
    #[arg(long = "from", value_name = "ADDR")]
    external_sources: Vec<IpAddr>,

    /// Analyse only the sources in this namespace ("(external)" for --from addresses);
    /// repeatable.
    #[arg(long, value_name = "NAMESPACE")]
    from_namespace: Vec<String>,

    /// Analyse only the destinations in this namespace ("(external)" for --to addresses);
    /// repeatable.
    #[arg(long, value_name = "NAMESPACE")]
    to_namespace: Vec<String>,

    /// With -o json: list only the verdicts with this answer.
    #[arg(long, value_enum, value_name = "ANSWER")]
    only: Option<Only>,

    /// With -o summary: namespace pairs listed per section.
    #[arg(long, value_name = "N", default_value_t = 10, env = "NETCANARY_SUMMARY_TOP")]
    top: usize,

    /// With -o summary: list every namespace pair instead of the sections.
    #[arg(long)]
    all_pairs: bool,

    /// With -o summary: the namespace label whose values are environments; the summary
    /// lists the namespace pairs most allowed across them.
    #[arg(long, value_name = "KEY", default_value = "env", env = "NETCANARY_ENVIRONMENT_LABEL")]
    environment_label: String,

    /// Explain one verdict in words instead of printing the matrix. FROM and TO are
    /// endpoint names as the matrix shows them (ns/pod, ns/kind/workload; ns/workload
    /// when unambiguous) or IP addresses.
    #[arg(long, num_args = 3, value_names = ["FROM", "TO", "PORT/PROTO"])]
    explain: Option<Vec<String>>,

    /// Check declared intent (NetcanaryIntent YAML files or folders) against the policies
    /// instead of printing the matrix: every connection where policy allows what intent
    /// forbids, or denies what it requires, with the rule responsible. Output: text, or
    /// JSON with -o json.
    #[arg(long, value_name = "PATH", num_args = 1.., conflicts_with = "explain")]
    intent: Vec<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// Matrix per port, sized to the terminal.
    Table,
    /// One verdict per (source, destination, port) with its evidence; stable for scripts.
    Json,
    /// Matrix per port as Markdown, for pull-request comments.
    Markdown,
    /// Counts per port and the namespace pairs worth reading: any cluster size.
    Summary,
    /// Counts per port and every namespace pair, streamed, for scripts.
    SummaryJson,
}

/// `--only`: which answer `-o json` keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Only {
    Allowed,
    Denied,
    /// Where a cluster policy rule naming domains could decide either way.
    Unknown,
}

impl From<Only> for json::Only {
    fn from(only: Only) -> Self {
        match only {
            Only::Allowed => json::Only::Allowed,
            Only::Denied => json::Only::Denied,
            Only::Unknown => json::Only::Unknown,
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Where the time goes, at debug level (RUST_LOG=debug): reading, the matrices, output.
    let started = Instant::now();
    let loaded = match args.manifests.load() {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    if args.only.is_some() && args.output != Format::Json {
        bail!("--only filters the verdicts of -o json");
    }
    let mut cluster = loaded.cluster;
    let mut scope = Scope::with_external(&mut cluster, &args.ports, &args.external_targets, &args.external_sources);
    for namespace in args.from_namespace.iter().chain(&args.to_namespace) {
        let known = namespace == EXTERNAL_NAMESPACE
            || cluster.namespace_labels(namespace).is_some()
            || cluster.endpoints().iter().any(|e| e.namespace.as_deref() == Some(namespace.as_str()));
        if !known {
            bail!("no namespace {namespace:?} in the input (--from-namespace, --to-namespace)");
        }
    }
    scope.within_namespaces(&cluster, &args.from_namespace, &args.to_namespace);

    let mut stdout = anstream::stdout().lock();
    if let Some(explain_args) = &args.explain {
        let [from, to, port] = explain_args.as_slice() else { bail!("--explain takes FROM TO PORT/PROTO") };
        let port: PortProto = port.parse().map_err(|e| anyhow::anyhow!("--explain: {e}"))?;
        let from = resolve(&mut cluster, from).context("--explain FROM")?;
        let to = resolve(&mut cluster, to).context("--explain TO")?;
        let endpoints = cluster.endpoints();
        let verdict = netcanary_policy::evaluate::verdict(&cluster, &endpoints[from], &endpoints[to], port);
        write!(stdout, "{}", explain::render(&verdict, &endpoints[from], &endpoints[to]))?;
        return Ok(ExitCode::SUCCESS);
    }

    tracing::debug!(
        endpoints = cluster.endpoints().len(),
        policies = cluster.policies().len(),
        seconds = started.elapsed().as_secs_f64(),
        "manifests read"
    );

    if !args.intent.is_empty() {
        return check_intent(&cluster, &args.intent, args.output == Format::Json);
    }

    let started = Instant::now();
    let analysis = Analysis::new(&cluster, &scope);
    tracing::debug!(
        classes = analysis.index.classes().len(),
        ports = analysis.blocks.len(),
        seconds = started.elapsed().as_secs_f64(),
        "matrices computed"
    );
    let started = Instant::now();
    match args.output {
        Format::Table => write!(stdout, "{}", table::render(&analysis, terminal_width()))?,
        Format::Markdown => write!(stdout, "{}", markdown::render(&analysis))?,
        Format::Summary => {
            let options = summary::Options {
                top: args.top,
                all_pairs: args.all_pairs,
                environment_label: &args.environment_label,
            };
            let mut out = std::io::BufWriter::new(stdout);
            summary::write(&analysis, &options, &mut out)?;
            out.flush()?;
        }
        Format::Json => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            json::write(&analysis, args.only.map(json::Only::from), &loaded.diagnostics, &mut out)?;
            out.flush()?;
        }
        Format::SummaryJson => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            json::write_summary(&analysis, &loaded.diagnostics, &mut out)?;
            out.flush()?;
        }
    }
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "output written");
    Ok(ExitCode::SUCCESS)
}

/// `analyze --intent`: 1 when any statement is violated, 2 when the intent has errors.
fn check_intent(cluster: &netcanary_policy::Cluster, paths: &[PathBuf], as_json: bool) -> anyhow::Result<ExitCode> {
    let loaded = netcanary_objects::load_intent_paths(paths);
    let mut stderr = anstream::stderr().lock();
    for d in &loaded.diagnostics {
        writeln!(stderr, "{d}")?;
    }
    if loaded.has_errors() {
        writeln!(stderr, "\nThe intent has errors (above): fix them; no statement was checked.")?;
        return Ok(ExitCode::from(2));
    }
    let checks = netcanary_policy::intent::check(cluster, &loaded.statements);
    if as_json {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &intent::json(&checks))?;
        writeln!(out)?;
    } else {
        write!(anstream::stdout().lock(), "{}", intent::text(&checks))?;
    }
    let violated = checks.iter().any(|c| !c.violations.is_empty());
    Ok(if violated { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

pub(crate) fn parse_external_target(value: &str) -> Result<(IpAddr, PortProto), String> {
    let (address, protocol) = match value.rsplit_once('/') {
        Some((address, protocol)) => (address, Some(protocol)),
        None => (value, None),
    };
    let socket: SocketAddr = address
        .parse()
        .map_err(|_| format!("{value:?} is not ADDRESS:PORT[/PROTO] (e.g. 1.1.1.1:443/TCP or [2001:db8::1]:53/UDP)"))?;
    let port = match protocol {
        Some(protocol) => format!("{}/{protocol}", socket.port()),
        None => socket.port().to_string(),
    };
    Ok((socket.ip(), port.parse()?))
}

/// The width to fit tables to: the terminal's, else `COLUMNS`, else wide enough for files.
fn terminal_width() -> usize {
    if std::io::stdout().is_terminal()
        && let Some((terminal_size::Width(w), _)) = terminal_size::terminal_size()
    {
        return usize::from(w);
    }
    std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).unwrap_or(200)
}
