//! Soak: the release agent runs at least 10,000 rounds at a 10 ms interval
//! while every target flaps between healthy and each failure mode. Prints RSS
//! and open file descriptors at the start and the end; they must stay flat.
//!
//!     cargo bench --bench soak            # ROUNDS=10000 by default

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netprobe::sim::dns::{DnsServer, Entry, Records};
use netprobe::sim::https::{HttpsServer, Reply};
use netprobe::sim::pki::{Ca, Validity};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn pe(h: u8) -> IpAddr {
    IpAddr::from([127, 0, 10, h])
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)
                .map(|v| v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0))
        })
        .unwrap_or(0)
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

async fn rounds(addr: SocketAddr) -> u64 {
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return 0;
    };
    let _ = s
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    let mut out = String::new();
    let _ = s.read_to_string(&mut out).await;
    out.lines()
        .find_map(|l| {
            l.strip_prefix("netprobe_rounds_total ")
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

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
    let mut child = Command::new(env!("CARGO_BIN_EXE_netprobe"))
        .args([
            "probe",
            "-c",
            cfg.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .env("RUST_LOG", "error,netprobe::agent=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        let mut changes = 0u64;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && let Some(l) = v["listen"].as_str()
            {
                let _ = tx.send(l.to_string());
                sent = true;
            }
            if line.contains("target state changed") {
                changes += 1;
            }
        }
        println!("state-change log lines: {changes}");
    });
    let addr: SocketAddr = rx.recv_timeout(Duration::from_secs(10)).unwrap().parse().unwrap();
    while rounds(addr).await < 100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (rss0, fd0) = (status_kib(pid, "VmRSS:"), fds(pid));
    let start = Instant::now();
    let mut done = 0;
    while done < target_rounds {
        tokio::time::sleep(Duration::from_secs(2)).await;
        done = rounds(addr).await;
    }
    let (rss1, hwm, fd1) = (status_kib(pid, "VmRSS:"), status_kib(pid, "VmHWM:"), fds(pid));
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    let _ = child.wait();
    flapper.abort();
    println!();
    println!(
        "soak: {done} rounds in {:.0} s, {n} targets cycling through {n} states",
        start.elapsed().as_secs_f64()
    );
    println!("{:>12} {:>10} {:>10}", "", "RSS KiB", "open fds");
    println!("{:>12} {:>10} {:>10}", "after 100", rss0, fd0);
    println!("{:>12} {:>10} {:>10}", format!("after {done}"), rss1, fd1);
    println!("peak RSS (VmHWM): {hwm} KiB");
}
