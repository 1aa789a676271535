//! The short soak that CI runs: 500 rounds of the debug agent at a 10 ms
//! interval, every target flapping through every failure mode, the
//! configuration replaced every 100 rounds (one replacement invalid). Fails
//! when RSS or open descriptors grow past their tolerance or a reload goes
//! unseen. The long run is `cargo bench --bench soak` (10,000 rounds).

#[path = "../benches/common/mod.rs"]
mod bench;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_soak_with_flapping_targets_and_reloads_stays_flat() {
    let run = bench::soak::soak(env!("CARGO_BIN_EXE_netprobe"), 600, 100).await;
    println!("{}", run.report());
    let failed = run.violations();
    assert!(failed.is_empty(), "{failed:?}\n{}", run.report());
    assert!(
        run.reloads_rejected >= 1,
        "the invalid replacement was not rejected: {}",
        run.report()
    );
}
