//! The agent under the DaemonSet's limits: a cgroup v1 group with a 200m
//! CPU quota (`cpu.cfs_quota_us`) and a 64 MiB memory limit, 10, 100 and
//! 1,000 targets through two resolvers whose DNS servers answer 50 ms late,
//! and a storm of 50 concurrent scrapes and 50 concurrent `/status` reads
//! during a round. Prints a table and
//! exits non-zero when a limit is broken (docs/benchmarks.md lists them).
//!
//!     cargo bench --bench limits            # needs root and cgroup v1
//!
//! `tests/limits.rs` runs a short version (200 targets, debug build) in CI.

mod common;

use std::time::Duration;

use common::load::{LimitsRun, run_under_limits, workload};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("limits: skipped (run `cargo bench --bench limits`)");
        return;
    }
    println!(
        "netprobe under 200m CPU / 64 MiB (release build, DNS +50 ms, 50 concurrent scrapes and /status reads during a round)"
    );
    println!("{}", LimitsRun::header());
    let mut broken = Vec::new();
    for (targets, rounds) in [(10, 10), (100, 5), (1000, 3)] {
        let w = workload(targets, 2, Duration::from_millis(50), "1s").await;
        match run_under_limits(&common::agent_binary().to_string_lossy(), &w, rounds, 50, true).await {
            Ok(run) => {
                println!("{}", run.row());
                broken.extend(
                    run.violations(30_000.0)
                        .into_iter()
                        .map(|v| format!("{targets} targets: {v}")),
                );
            }
            Err(e) => {
                eprintln!("limits: {e}");
                std::process::exit(2);
            }
        }
    }
    if !broken.is_empty() {
        eprintln!("limits broken:\n  {}", broken.join("\n  "));
        std::process::exit(1);
    }
}
