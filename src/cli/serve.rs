//! `netcanary serve`: runs on a schedule and serves `/metrics`, `/healthz` and `/readyz`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use netcanary_metrics::{Metrics, http};
use netcanary_orchestrator::schedule;
use tokio::sync::watch;
use tracing::info;

use super::run::{ClusterArgs, ProbeArgs};

#[derive(Debug, clap::Args)]
#[command(after_long_help = "\
Runs a verification every --every (no two at once), keeping the cluster snapshot current
with watches, and exposes the last run's metrics. /readyz answers 200 once the watches have
synced. SIGTERM or Ctrl-C ends it after cleaning up the run in progress.")]
pub struct Args {
    #[command(flatten)]
    cluster: ClusterArgs,

    #[command(flatten)]
    probing: ProbeArgs,

    /// Time from the start of one run to the start of the next.
    #[arg(long, value_name = "DURATION", env = "NETCANARY_EVERY", default_value = "15m", value_parser = humantime::parse_duration)]
    every: Duration,

    /// Address for /metrics, /healthz and /readyz.
    #[arg(long, value_name = "ADDR", env = "NETCANARY_LISTEN", default_value = "0.0.0.0:9090")]
    listen: SocketAddr,
}

pub fn serve(args: Args) -> anyhow::Result<ExitCode> {
    let options = args.probing.options()?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let client = args.cluster.client().await?;
        let (stop, stopped) = watch::channel(false);
        // Installed before anything is served, so a SIGTERM is never the default (fatal) one.
        let shutdown = super::shutdown_signal()?;
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });

        let metrics = Metrics::new();
        let (set_ready, ready) = watch::channel(false);
        let listener =
            tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("listen on {}", args.listen))?;
        info!(address = %args.listen, "serving /metrics, /healthz, /readyz");
        let server = tokio::spawn(http::serve(listener, metrics.clone(), ready, schedule::stopped(stopped.clone())));
        schedule::run_on_schedule(&client, &options, args.every, set_ready, stopped, |record| metrics.record(record))
            .await;
        server.await.context("the HTTP server task failed")?.context("the HTTP server failed")?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
