//! Command-line interface: argument parsing and the glue from each verb to the libraries.

mod agent;
mod analyze;
mod lint;
mod logging;
mod manifests;
mod run;
mod serve;
mod target;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Proves, from inside a Kubernetes cluster, that its NetworkPolicy is really enforced.
#[derive(Debug, Parser)]
#[command(name = "netcanary", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Log filter (tracing `EnvFilter` syntax, e.g. `debug` or `netcanary_orchestrator=debug`);
    /// `RUST_LOG` takes precedence. Default: `info` for run and serve (their progress), else `warn`.
    #[arg(long, global = true, env = "NETCANARY_LOG_LEVEL")]
    log_level: Option<String>,

    /// When to colour output: auto colours only a terminal (and honours NO_COLOR).
    #[arg(long, global = true, value_enum, default_value_t = ColorWhen::Auto, env = "NETCANARY_COLOR")]
    color: ColorWhen,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Offline: read manifests and print who may reach whom, on which port, and why.
    Analyze(analyze::Args),
    /// Audit manifests (-f), or the cluster itself, for namespaces left open, DNS blocked,
    /// selectors that select nothing and rules open to every namespace.
    Lint(lint::Args),
    /// One verification run against the current cluster: probe pods, real connections,
    /// every disagreement with policy reported.
    Run(run::Args),
    /// Long-running: verify on a schedule and serve /metrics, /healthz and /readyz.
    Serve(serve::Args),
    /// Inside a probe pod: run a probe plan and report what the network did.
    Agent(agent::Args),
    /// Inside a target pod: listen on TCP/UDP ports and answer netcanary's probes.
    Target(target::Args),
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ColorWhen {
    Auto,
    Always,
    Never,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let choice = match cli.color {
        ColorWhen::Auto => anstream::ColorChoice::Auto,
        ColorWhen::Always => anstream::ColorChoice::Always,
        ColorWhen::Never => anstream::ColorChoice::Never,
    };
    choice.write_global();
    let default_level = match cli.command {
        Command::Run(_) | Command::Serve(_) => "info",
        _ => "warn",
    };
    logging::init(cli.log_level.as_deref().unwrap_or(default_level));
    let outcome = match cli.command {
        Command::Analyze(args) => analyze::run(args),
        Command::Lint(args) => lint::run(args),
        Command::Run(args) => run::run_verb(args),
        Command::Serve(args) => serve::serve(args),
        Command::Agent(args) => agent::run(args),
        Command::Target(args) => target::run(args),
    };
    match outcome {
        Ok(code) => code,
        // Output piped into `head` and closed early is not a failure.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", describe(&error));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes, `: `-separated like anyhow's `{:#}`, but without a cause whose
/// text the message before it already carries: several libraries (kube, hyper) put their
/// source into their own message, which would otherwise print every cause twice.
fn describe(error: &anyhow::Error) -> String {
    let mut text = String::new();
    let mut previous = String::new();
    for cause in error.chain() {
        let message = cause.to_string();
        if !previous.contains(&message) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&message);
        }
        previous = message;
    }
    text
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().filter_map(|e| e.downcast_ref::<std::io::Error>()).any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Completes on SIGTERM (what the kubelet sends when a pod or Job is deleted, or a Job hits
/// its deadline) or SIGINT (Ctrl-C). Installed at once, so a SIGTERM that arrives later is
/// never the default (fatal) one that would skip cleanup.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use anyhow::Context;
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Like hyper's and kube's errors: the source in the message, and as `source()` too.
    #[derive(Debug)]
    struct Repeats(std::io::Error);

    impl std::fmt::Display for Repeats {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "client error (Connect): {}", self.0)
        }
    }

    impl std::error::Error for Repeats {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn causes_already_in_the_message_are_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let error = anyhow::Error::new(Repeats(io)).context("list namespaces");
        assert_eq!(describe(&error), "list namespaces: client error (Connect): connection refused");
        let plain = anyhow::anyhow!("no such file").context("read kubeconfig /x");
        assert_eq!(describe(&plain), "read kubeconfig /x: no such file");
    }
}
