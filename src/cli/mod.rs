//! Command-line interface: argument parsing and the glue from each verb to the libraries.

mod agent;
mod analyze;
mod logging;
mod run;
mod target;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Proves, from inside a Kubernetes cluster, that its NetworkPolicy is really enforced.
#[derive(Debug, Parser)]
#[command(name = "netcanary", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Log filter (tracing `EnvFilter` syntax); `RUST_LOG` takes precedence.
    #[arg(long, global = true, env = "NETCANARY_LOG_LEVEL", default_value = "warn")]
    log_level: String,

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
    /// One verification run against the current cluster: probe pods, real connections,
    /// every disagreement with policy reported.
    Run(run::Args),
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
    logging::init(&cli.log_level);
    let outcome = match cli.command {
        Command::Analyze(args) => analyze::run(args),
        Command::Run(args) => run::run_verb(args),
        Command::Agent(args) => agent::run(args),
        Command::Target(args) => target::run(args),
    };
    match outcome {
        Ok(code) => code,
        // Output piped into `head` and closed early is not a failure.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().filter_map(|e| e.downcast_ref::<std::io::Error>()).any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}
