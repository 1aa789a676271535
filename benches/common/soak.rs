//! Soak: the agent runs many rounds at a 10 ms interval while every target
//! flaps between healthy and each failure mode, and its configuration is
//! replaced every `reload_every` rounds (every third replacement invalid,
//! which the agent must reject and survive). RSS and open descriptors are
//! read after 100 rounds and at the end. Used by `cargo bench --bench soak`
//! (release, 10,000 rounds) and `tests/soak.rs` (the short version in CI).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use netprobe_sim::dns::{DnsServer, Entry, Records};
use netprobe_sim::https::{HttpsServer, Reply};
use netprobe_sim::pki::{Ca, Validity};
use netprobe_sim::private_ip as pe;

/// RSS growth allowed between round 100 and the end.
pub const RSS_TOLERANCE_KIB: f64 = 4096.0;
/// Growth of open descriptors allowed between round 100 and the end.
pub const FD_TOLERANCE: usize = 4;

/// What a soak run showed.
#[derive(Debug)]
pub struct SoakRun {
    pub rounds: u64,
    pub seconds: f64,
    pub targets: usize,
    pub rss_kib: (f64, f64),
    pub fds: (usize, usize),
    pub hwm_kib: f64,
    pub state_changes: usize,
    pub reloads_ok: u64,
    pub reloads_rejected: u64,
    pub reloads_expected: u64,
}

impl SoakRun {
    /// The tolerances this run broke, one line each (empty: none).
    pub fn violations(&self) -> Vec<String> {
        let mut failed = Vec::new();
        let (rss0, rss1) = self.rss_kib;
        if rss1 > rss0 + RSS_TOLERANCE_KIB {
            failed.push(format!(
                "RSS grew from {rss0} to {rss1} KiB (tolerance {RSS_TOLERANCE_KIB} KiB)"
            ));
        }
        let (fd0, fd1) = self.fds;
        if fd1 > fd0 + FD_TOLERANCE {
            failed.push(format!(
                "open descriptors grew from {fd0} to {fd1} (tolerance {FD_TOLERANCE})"
            ));
        }
        if self.state_changes == 0 {
            failed.push("no state change was logged: the targets did not flap".into());
        }
        // A reload lands within the agent's 2 s poll; allow the last one to be pending.
        if self.reloads_ok + self.reloads_rejected + 1 < self.reloads_expected {
            failed.push(format!(
                "{} reloads seen ({} accepted, {} rejected) of {} made",
                self.reloads_ok + self.reloads_rejected,
                self.reloads_ok,
                self.reloads_rejected,
                self.reloads_expected
            ));
        }
        failed
    }

    pub fn report(&self) -> String {
        format!(
            "soak: {} rounds in {:.0} s, {} targets cycling through {} states, {} config replacements ({} accepted, {} rejected)\n\
             {:>12} {:>10} {:>10}\n{:>12} {:>10} {:>10}\n{:>12} {:>10} {:>10}\npeak RSS (VmHWM): {} KiB; state-change log lines: {}",
            self.rounds,
            self.seconds,
            self.targets,
            self.targets,
            self.reloads_expected,
            self.reloads_ok,
            self.reloads_rejected,
            "",
            "RSS KiB",
            "open fds",
            "after 100",
            self.rss_kib.0,
            self.fds.0,
            format!("after {}", self.rounds),
            self.rss_kib.1,
            self.fds.1,
            self.hwm_kib,
            self.state_changes
        )
    }
}

/// Runs the agent (`binary`) for at least `target_rounds` rounds.
/// Open descriptors, the least of a few reads (connections in flight come
/// and go within milliseconds; a leak stays).
async fn settled_fds(pid: u32) -> usize {
    let mut least = usize::MAX;
    for _ in 0..10 {
        least = least.min(super::fds(pid));
        tokio::time::sleep(Duration::from_millis(7)).await;
    }
    least
}

pub async fn soak(binary: &str, target_rounds: u64, reload_every: u64) -> SoakRun {
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
    std::fs::write(&cfg, &y).unwrap();
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
    let config_text = y;
    let agent = super::Agent::spawn_with(std::process::Command::new(binary), &cfg, "error,netprobe::agent=info");
    let (pid, addr) = (agent.pid, agent.addr);
    let rounds = async |addr| super::metric(&super::metrics(addr).await, "netprobe_rounds_total") as u64;
    while rounds(addr).await < 100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (rss0, fd0) = (super::status_kib(pid, "VmRSS:"), settled_fds(pid).await);
    let start = Instant::now();
    let (mut done, mut next_reload, mut made) = (0, 100 + reload_every, 0u64);
    while done < target_rounds {
        tokio::time::sleep(Duration::from_millis(100)).await;
        done = rounds(addr).await;
        if done >= next_reload && done < target_rounds {
            made += 1;
            next_reload += reload_every;
            // Replace the file as a ConfigMap update does; every third is invalid.
            let text = if made % 3 == 0 {
                format!("{config_text}bogus_key: 1\n")
            } else {
                config_text.replace("timeout: 20ms", &format!("timeout: {}ms", 20 + made % 2))
            };
            let tmp = cfg.with_extension("tmp");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, &cfg).unwrap();
        }
    }
    // Let the last replacement be read (the agent polls the file every 2 s).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let text = super::metrics(addr).await;
    let reloads = |result| {
        netprobe_testkit::metric_value(&text, "netprobe_config_reloads_total", &[("result", result)]).unwrap_or(0.0)
            as u64
    };
    let run = SoakRun {
        rounds: super::metric(&text, "netprobe_rounds_total") as u64,
        seconds: start.elapsed().as_secs_f64(),
        targets: n,
        rss_kib: (rss0, super::status_kib(pid, "VmRSS:")),
        fds: (fd0, settled_fds(pid).await),
        hwm_kib: super::status_kib(pid, "VmHWM:"),
        state_changes: agent
            .log
            .try_iter()
            .filter(|v| v["message"] == "target state changed")
            .count(),
        reloads_ok: reloads("success"),
        reloads_rejected: reloads("failure"),
        reloads_expected: made,
    };
    agent.stop();
    flapper.abort();
    run
}
