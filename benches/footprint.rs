//! Agent footprint: peak RSS and CPU time per round with 10 and 1,000
//! targets, against a simulated VNet on loopback (DNS + TLS endpoints).
//! Prints a table; it never passes or fails on numbers.
//!
//!     cargo bench --bench footprint
//!
//! Each run starts the release `netprobe probe` as a separate process, lets it
//! complete a warm-up round, then measures `rounds` rounds: CPU time from
//! /proc/<pid>/stat (utime+stime), peak RSS from /proc/<pid>/status (VmHWM),
//! round wall time from the agent's own "round complete" log lines. Rounds
//! are counted from the log, not by scraping; one scrape of the full
//! exposition is measured at the end, on its own.

mod common;

struct Row {
    targets: usize,
    rounds: usize,
    peak_rss_mib: f64,
    cpu_ms_per_round: f64,
    round_ms: f64,
    scrape_kib: f64,
    scrape_cpu_ms: f64,
    peak_after_scrape_mib: f64,
    threads: usize,
    by_mapping: Vec<(String, u64)>,
}

async fn run(targets: usize, rounds: usize, interval: &str) -> Row {
    let w = common::load::workload(targets, 1, std::time::Duration::ZERO, interval).await;
    let cfg = w.cfg.clone();

    // Rounds are counted from the agent's own log, so that measuring does not
    // add scrapes (a scrape of 1,000 targets is large; it is measured apart).
    let agent = common::Agent::spawn(&cfg, "info,netprobe::agent=debug");
    let pid = agent.pid;
    let next_round = || agent.next("round complete")["ms"].as_f64().unwrap_or(0.0);
    next_round(); // warm-up
    let cpu0 = common::cpu_seconds(pid);
    let mut wall = 0.0;
    for _ in 0..rounds {
        wall += next_round();
    }
    let cpu1 = common::cpu_seconds(pid);
    let peak = common::status_kib(pid, "VmHWM:") / 1024.0;
    let by_mapping = common::rss_by_mapping(pid);
    let threads = common::threads(pid);
    let scrape_cpu0 = common::cpu_seconds(pid);
    let text = common::metrics(agent.addr).await;
    let scrape_cpu = common::cpu_seconds(pid) - scrape_cpu0;
    let peak_after_scrape = common::status_kib(pid, "VmHWM:") / 1024.0;
    agent.stop();
    Row {
        targets,
        rounds,
        peak_rss_mib: peak,
        cpu_ms_per_round: (cpu1 - cpu0) * 1000.0 / rounds as f64,
        round_ms: wall / rounds as f64,
        scrape_kib: text.len() as f64 / 1024.0,
        scrape_cpu_ms: scrape_cpu * 1000.0,
        peak_after_scrape_mib: peak_after_scrape,
        threads,
        by_mapping,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes --bench. Under `cargo test --benches` there is
    // nothing to check, and a debug build would make the numbers meaningless.
    if !std::env::args().any(|a| a == "--bench") {
        println!("footprint: skipped (run `cargo bench --bench footprint`)");
        return;
    }

    let rows = vec![run(10, 20, "200ms").await, run(1000, 5, "3s").await];
    println!();
    println!(
        "netprobe agent footprint (release build, simulated VNet on loopback, {} CPUs)",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    println!(
        "{:>8} {:>7} {:>13} {:>13} {:>9} | {:>11} {:>10} {:>19}",
        "targets", "rounds", "peak RSS MiB", "CPU ms/round", "round ms", "scrape KiB", "scrape ms", "peak after scrape"
    );
    for r in &rows {
        println!(
            "{:>8} {:>7} {:>13.2} {:>13.1} {:>9.1} | {:>11.0} {:>10.1} {:>15.2} MiB",
            r.targets,
            r.rounds,
            r.peak_rss_mib,
            r.cpu_ms_per_round,
            r.round_ms,
            r.scrape_kib,
            r.scrape_cpu_ms,
            r.peak_after_scrape_mib
        );
    }
    // Where the RSS is, after the measured rounds (current RSS, not the peak).
    for r in &rows {
        let parts: Vec<String> = r
            .by_mapping
            .iter()
            .take(8)
            .map(|(name, kib)| format!("{name} {:.2}", *kib as f64 / 1024.0))
            .collect();
        println!(
            "{:>8} targets, {} threads, RSS MiB by mapping: {}",
            r.targets,
            r.threads,
            parts.join(", ")
        );
    }
}
