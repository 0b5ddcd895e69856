//! `netcanary analyze`: offline, from manifests, who may reach whom on which port, and why.

use std::io::{IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use netcanary_policy::{Analysis, PortProto, Scope, resolve};
use netcanary_report::{explain, intent, json, markdown, summary, table};

use super::manifests::ManifestArgs;

#[derive(Debug, clap::Args)]
#[command(after_long_help = "\
Examples:
  netcanary analyze -f examples/production/
  kubectl get ns,pods,networkpolicies -A -o yaml > cluster.yaml && netcanary analyze -f cluster.yaml -o summary
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
    /// Allowed/denied counts per port and namespace pair: for large clusters.
    Summary,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let loaded = match args.manifests.load() {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    let mut cluster = loaded.cluster;
    let scope = Scope::with_external(&mut cluster, &args.ports, &args.external_targets, &args.external_sources);

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

    if !args.intent.is_empty() {
        return check_intent(&cluster, &args.intent, args.output == Format::Json);
    }

    let analysis = Analysis::new(&cluster, &scope);
    match args.output {
        Format::Table => write!(stdout, "{}", table::render(&analysis, terminal_width()))?,
        Format::Markdown => write!(stdout, "{}", markdown::render(&analysis))?,
        Format::Summary => write!(stdout, "{}", summary::render(&analysis))?,
        Format::Json => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            json::write(&analysis, &loaded.diagnostics, &mut out)?;
            out.flush()?;
        }
    }
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
