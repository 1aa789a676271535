//! Soak: the release agent runs at least 10,000 rounds at a 10 ms interval
//! while every target flaps between healthy and each failure mode and the
//! configuration is replaced every 100 rounds (every third replacement
//! invalid). Prints RSS and open file descriptors after 100 rounds and at
//! the end, and fails (non-zero exit) when they did not stay flat: RSS may
//! grow by at most `RSS_TOLERANCE_KIB` (the allocator's arenas settle in the
//! first rounds), open descriptors by at most `FD_TOLERANCE` (connections in
//! flight), or when the reloads were not all seen.
//!
//!     cargo bench --bench soak            # ROUNDS=10000 by default
//!
//! `tests/soak.rs` runs a short version (500 rounds, debug build) in CI.

mod common;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("soak: skipped (run `cargo bench --bench soak`)");
        return;
    }
    let rounds: u64 = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let run = common::soak::soak(&common::agent_binary().to_string_lossy(), rounds, 100).await;
    println!("{}", run.report());
    let failed = run.violations();
    if !failed.is_empty() {
        eprintln!("soak: FAILED: {}", failed.join("; "));
        std::process::exit(1);
    }
    println!("soak: RSS and open descriptors stayed within their tolerance; every reload was seen");
}
