//! What the controller itself adds to a run over 50 classes: a real API server, the fake
//! kubelet running probe pods as processes in network namespaces (the end-to-end test
//! bed), an enforcing network, and `netcanary run`, whose record splits its time between
//! waiting on pods (start-up, the probes' own deadlines) and the controller's own work.
//!
//! `cargo bench --bench run_overhead` (root, network namespaces, Go for the fixture).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::bed::{Bed, enforcing_rules, workload};

/// Workloads added to the bed's app, each its own class (policy reads `app`).
const EXTRA_WORKLOADS: usize = 47;

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let Some(bed) = Bed::new("run_overhead", None).await else {
            eprintln!("cannot benchmark a run: the test bed is unavailable (see the SKIPPED line above)");
            std::process::exit(2);
        };
        for i in 0..EXTRA_WORKLOADS {
            bed.kubelet.add_workload(&workload("dev", &format!("svc-{i}-0"), &format!("svc-{i}"), &[(8080, "TCP")])).await;
        }
        bed.kubelet.net().nft_hub(&enforcing_rules(&bed.kubelet));
        println!("netcanary run overhead ({} cores)", std::thread::available_parallelism().map_or(1, |n| n.get()));
        println!("  classes          {} workloads in 4 namespaces, one class each", EXTRA_WORKLOADS + 3);
        // The first run on a fresh API server also pays for the server setting up the
        // NetcanaryRun storage on the first create; the second shows the steady state.
        for label in ["first run", "second run"] {
            let started = Instant::now();
            let output = bed.command().output().expect("run netcanary");
            let wall = started.elapsed();
            let record: netcanary_verify::RunRecord = serde_json::from_slice(&output.stdout)
                .unwrap_or_else(|e| panic!("no run record ({e}): {}", String::from_utf8_lossy(&output.stderr)));
            let t = &record.timings;
            println!("  {label}");
            println!("    probes           {} ({:?}), exit {}", record.probes.len(), record.counts(), output.status.code().unwrap_or(-1));
            println!("    run              {:.2} s (process wall {:.2} s)", record.duration_seconds(), wall.as_secs_f64());
            println!("    waiting on pods  {:.2} s (start-up, probes and their deadlines: the kubelet's and the network's time)", t.pods_seconds);
            println!("    between rounds   {:.2} s", t.round_wait_seconds);
            println!(
                "    controller       {:.2} s (snapshot {:.3} s, plan {:.3} s, creating pods {:.3} s, cleanup {:.3} s; the rest record, sweep, results, judgement)",
                record.controller_overhead_seconds(),
                t.snapshot_seconds,
                t.plan_seconds,
                t.create_seconds,
                t.cleanup_seconds
            );
        }
    });
}
