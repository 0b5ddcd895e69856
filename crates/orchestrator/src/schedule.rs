//! `serve`'s loop: a verification every period, never two at once, over watch caches, until
//! told to stop. The HTTP endpoints and what to do with each record are the caller's.

use std::time::Duration;

use kube::Client;
use netcanary_verify::RunRecord;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::info;

use crate::run::{RunOptions, run};
use crate::watch::Watched;

/// Runs verifications every `every` (from the start of one to the start of the next)
/// until `stop` turns true, handing each record to `finished`. `ready` turns true once the
/// watch caches have synced. A run in progress when `stop` turns true ends early and
/// cleans up, and its record is handed over like any other.
pub async fn run_on_schedule(
    client: &Client,
    options: &RunOptions,
    every: Duration,
    ready: watch::Sender<bool>,
    stop: watch::Receiver<bool>,
    mut finished: impl FnMut(&RunRecord),
) {
    let watched = Watched::start(client);
    tokio::select! {
        () = watched.synced() => { let _ = ready.send(true); }
        () = stopped(stop.clone()) => return,
    }
    while !*stop.borrow() {
        let started = Instant::now();
        let record = run(client, &watched, options, stopped(stop.clone())).await;
        info!(run.id = %record.run_id, exit = record.exit_code(), counts = ?record.counts(), "run finished");
        finished(&record);
        tokio::select! {
            () = tokio::time::sleep_until(started + every) => {}
            () = stopped(stop.clone()) => {}
        }
    }
}

/// Resolves once `stop` is true (or its sender is gone).
pub async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}
