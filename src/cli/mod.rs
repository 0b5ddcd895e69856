//! Command-line interface: argument parsing and the glue from each verb to the libraries.

mod agent;
mod analyze;
mod logging;
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

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Offline: read manifests and print who may reach whom, on which port, and why.
    Analyze(analyze::Args),
    /// Inside a probe pod: run a probe plan and report what the network did.
    Agent(agent::Args),
    /// Inside a target pod: listen on TCP/UDP ports and answer netcanary's probes.
    Target(target::Args),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(&cli.log_level);
    let outcome = match cli.command {
        Command::Analyze(args) => analyze::run(args),
        Command::Agent(args) => agent::run(args),
        Command::Target(args) => target::run(args),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
