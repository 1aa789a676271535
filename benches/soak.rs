//! Soak: the release agent runs at least 10,000 rounds at a 10 ms interval
//! while every target flaps between healthy and each failure mode. Prints RSS
//! and open file descriptors after 100 rounds and at the end, and fails
//! (non-zero exit) when they did not stay flat: RSS may grow by at most
//! `RSS_TOLERANCE_KIB` (the allocator's arenas settle in the first rounds),
//! open descriptors by at most `FD_TOLERANCE` (connections in flight).
//!
//!     cargo bench --bench soak            # ROUNDS=10000 by default

use std::net::IpAddr;
use std::time::{Duration, Instant};

mod common;

use netprobe_sim::dns::{DnsServer, Entry, Records};
use netprobe_sim::https::{HttpsServer, Reply};
use netprobe_sim::pki::{Ca, Validity};
use netprobe_sim::private_ip as pe;

/// RSS growth allowed between round 100 and the end.
const RSS_TOLERANCE_KIB: f64 = 4096.0;
/// Growth of open descriptors allowed between round 100 and the end.
const FD_TOLERANCE: usize = 4;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("soak: skipped (run `cargo bench --bench soak`)");
        return;
    }
    let target_rounds: u64 = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let ca = Ca::new("soak CA").unwrap();
    let good = ca.leaf(&["*.azurecr.io"], Validity::Current).unwrap();
    let wrong = ca.leaf(&["wrong.example.com"], Validity::Current).unwrap();
    let ep_good = HttpsServer::start(pe(161), 0, &good, Reply::acr_challenge("x.azurecr.io"))
        .await
        .unwrap();
    let port = ep_good.addr().port();
    let _ep_wrong = HttpsServer::start(pe(162), port, &wrong, Reply::new(200, ""))
        .await
        .unwrap();
    // Failure modes a target cycles through (pe(163) has no listener: refused).
    let modes: Vec<Entry> = vec![
        Entry::Addrs(vec![pe(161)]),                        // healthy
        Entry::Cname("public.example.net".into()),          // public
        Entry::Cname("gone.privatelink.azurecr.io".into()), // nxdomain after privatelink
        Entry::ServFail,
        Entry::Refused,
        Entry::Drop,                                                 // timeout
        Entry::Addrs(vec![pe(161), IpAddr::from([127, 0, 200, 1])]), // mixed
        Entry::Addrs(vec![pe(163)]),                                 // stale endpoint
        Entry::Addrs(vec![pe(162)]),                                 // wrong certificate
    ];
    let n = modes.len();
    let mut records = Records::new();
    records.insert(
        "public.example.net".into(),
        Entry::Addrs(vec![IpAddr::from([127, 0, 200, 1])]),
    );
    for i in 0..n {
        records.insert(
            format!("t{i}.azurecr.io"),
            Entry::Cname(format!("t{i}.privatelink.azurecr.io")),
        );
    }
    let dns = std::sync::Arc::new(DnsServer::start(records).await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
    let mut y = format!(
        "interval: 10ms\ntimeout: 20ms\nresolvers:\n  - name: system\n    servers: [\"{}\"]\nprivate_ranges: [127.0.10.0/24]\ntls:\n  extra_ca_file: ca.pem\ntargets:\n",
        dns.addr()
    );
    for i in 0..n {
        y.push_str(&format!(
            "  - {{fqdn: t{i}.azurecr.io, name: t{i}, service: acr, port: {port}}}\n"
        ));
    }
    let cfg = dir.path().join("netprobe.yaml");
    std::fs::write(&cfg, y).unwrap();
    // Flap: every 30 ms each target moves to its next mode.
    let flapper = {
        let dns = dns.clone();
        let modes = modes.clone();
        tokio::spawn(async move {
            let mut step = 0usize;
            loop {
                for i in 0..n {
                    dns.set(&format!("t{i}.privatelink.azurecr.io"), modes[(i + step) % n].clone());
                }
                step += 1;
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        })
    };
    let agent = common::Agent::spawn(&cfg, "error,netprobe::agent=info");
    let (pid, addr) = (agent.pid, agent.addr);
    let rounds = async |addr| common::metric(&common::metrics(addr).await, "netprobe_rounds_total") as u64;
    while rounds(addr).await < 100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (rss0, fd0) = (common::status_kib(pid, "VmRSS:"), common::fds(pid));
    let start = Instant::now();
    let mut done = 0;
    while done < target_rounds {
        tokio::time::sleep(Duration::from_secs(2)).await;
        done = rounds(addr).await;
    }
    let (rss1, hwm, fd1) = (
        common::status_kib(pid, "VmRSS:"),
        common::status_kib(pid, "VmHWM:"),
        common::fds(pid),
    );
    let changes = agent
        .log
        .try_iter()
        .filter(|v| v["message"] == "target state changed")
        .count();
    agent.stop();
    flapper.abort();
    println!("state-change log lines: {changes}");
    println!();
    println!(
        "soak: {done} rounds in {:.0} s, {n} targets cycling through {n} states",
        start.elapsed().as_secs_f64()
    );
    println!("{:>12} {:>10} {:>10}", "", "RSS KiB", "open fds");
    println!("{:>12} {:>10} {:>10}", "after 100", rss0, fd0);
    println!("{:>12} {:>10} {:>10}", format!("after {done}"), rss1, fd1);
    println!("peak RSS (VmHWM): {hwm} KiB");
    let mut failed = Vec::new();
    if rss1 > rss0 + RSS_TOLERANCE_KIB {
        failed.push(format!(
            "RSS grew from {rss0} to {rss1} KiB (tolerance {RSS_TOLERANCE_KIB} KiB)"
        ));
    }
    if fd1 > fd0 + FD_TOLERANCE {
        failed.push(format!(
            "open descriptors grew from {fd0} to {fd1} (tolerance {FD_TOLERANCE})"
        ));
    }
    if changes == 0 {
        failed.push("no state change was logged: the targets did not flap".into());
    }
    if !failed.is_empty() {
        eprintln!("soak: FAILED: {}", failed.join("; "));
        std::process::exit(1);
    }
    println!("soak: RSS and open descriptors stayed within their tolerance");
}
