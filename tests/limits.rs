//! The agent under the DaemonSet's limits (200m CPU, 64 MiB), the short
//! version of `cargo bench --bench limits` that CI runs: 200 targets, two
//! resolvers whose servers answer 50 ms late, 50 concurrent scrapes and 50
//! concurrent `/status` reads during a round. Fails on a false finding (a
//! timeout from the agent's own starvation), a round over the default 30 s
//! interval, a scrape or a `/status` not answered whole, peak memory over half the limit, or the OOM killer.
//! Needs root and cgroup v1 (`scripts/test` runs as root here); without
//! them it fails and says why.

#[path = "../benches/common/mod.rs"]
mod bench;

use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_holds_its_limits_under_load() {
    let w = bench::load::workload(200, 2, Duration::from_millis(50), "1s").await;
    let run = bench::load::run_under_limits(env!("CARGO_BIN_EXE_netprobe"), &w, 3, 50, false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let table = format!("{}\n{}", bench::load::LimitsRun::header(), run.row());
    println!("{table}");
    let v = run.violations(30_000.0);
    assert!(v.is_empty(), "{v:?}\n{table}");
}
