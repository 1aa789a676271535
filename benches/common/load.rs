//! The agent under the DaemonSet's limits (a cgroup with a 200m CPU quota
//! and a 64 MiB memory limit), probing `targets` targets through two
//! resolvers whose DNS servers answer 50 ms late, while 50 concurrent
//! scrapes hit it: used by `cargo bench --bench limits` (release, 10 / 100
//! / 1,000 targets) and `tests/limits.rs` (the short version in CI).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use netprobe_sim::bind_same_port;
use netprobe_sim::dns::{DnsServer, Entry, Records};
use netprobe_sim::https::{HttpsServer, Reply};
use netprobe_sim::pki::{Ca, Validity};
use netprobe_testkit::cgroup::Cgroup;

use super::Agent;

/// The DaemonSet's limits (deploy/base/daemonset.yaml).
pub const CPU_MILLIS: u64 = 200;
pub const MEMORY_BYTES: u64 = 64 * 1024 * 1024;
const ENDPOINT_IPS: u8 = 20;

/// Loopback DNS and TLS servers and a config for `targets` ACR targets,
/// each resolving (CNAME to `privatelink`, then a private address) to one of
/// 20 TLS endpoints that answer the `/v2/` challenge.
pub struct Workload {
    _dir: tempfile::TempDir,
    pub cfg: PathBuf,
    _dns: Vec<DnsServer>,
    _servers: Vec<HttpsServer>,
    pub targets: usize,
}

/// `resolvers` (1 or 2: `system`, then `azure`) each ask their own DNS
/// server, which answers `dns_delay` late.
pub async fn workload(targets: usize, resolvers: usize, dns_delay: Duration, interval: &str) -> Workload {
    let ca = Ca::new("limits CA").unwrap();
    let ips: Vec<IpAddr> = (1..=ENDPOINT_IPS).map(|h| IpAddr::from([127, 0, 10, h])).collect();
    let (port, listeners) = bind_same_port(&ips).await.unwrap();
    let leaf = ca.leaf(&["*.azurecr.io"], Validity::Current).unwrap();
    let servers: Vec<HttpsServer> = listeners
        .into_iter()
        .map(|l| HttpsServer::serve(l, &leaf, Reply::acr_challenge("limits.azurecr.io")).unwrap())
        .collect();
    let mut records = Records::new();
    for i in 0..targets {
        records.insert(
            format!("t{i}.azurecr.io"),
            Entry::Cname(format!("t{i}.privatelink.azurecr.io")),
        );
        records.insert(
            format!("t{i}.privatelink.azurecr.io"),
            Entry::Addrs(vec![ips[i % ips.len()]]),
        );
    }
    let mut dns = Vec::new();
    let mut y = format!("interval: {interval}\ntimeout: 5s\nresolvers:\n");
    for name in ["system", "azure"].iter().take(resolvers) {
        let d = DnsServer::start(records.clone()).await.unwrap();
        d.set_delay(dns_delay);
        y.push_str(&format!("  - name: {name}\n    servers: [\"{}\"]\n", d.addr()));
        dns.push(d);
    }
    y.push_str("private_ranges: [127.0.10.0/24]\ntls:\n  extra_ca_file: ca.pem\ntargets:\n");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
    for i in 0..targets {
        y.push_str(&format!(
            "  - fqdn: t{i}.azurecr.io\n    service: acr\n    port: {port}\n"
        ));
    }
    let cfg = dir.path().join("netprobe.yaml");
    std::fs::write(&cfg, y).unwrap();
    Workload {
        _dir: dir,
        cfg,
        _dns: dns,
        _servers: servers,
        targets,
    }
}

/// What one run under the limits showed.
#[derive(Debug)]
pub struct LimitsRun {
    pub targets: usize,
    pub rounds: usize,
    pub round_ms_avg: f64,
    pub round_ms_max: f64,
    /// Rounds with any unhealthy target: every server is healthy, so each
    /// is a false finding (a timeout caused by the agent's own starvation).
    pub unhealthy_rounds: usize,
    pub scrape_ms_p50: f64,
    pub scrape_ms_max: f64,
    /// Scrapes of the storm that came back whole (every target's series).
    pub storm_complete: usize,
    /// `/status` reads of the storm (as many as scrapes, at the same time)
    /// that came back whole (every target).
    pub status_complete: usize,
    pub storm: usize,
    pub max_usage_mib: f64,
    pub failcnt: u64,
    pub oom_killed: bool,
    pub throttled_periods: u64,
    pub throttled_ms: f64,
}

/// Runs the agent (`binary`) in a fresh cgroup with the DaemonSet's limits
/// for `rounds` rounds after a warm-up, then fires `storm` concurrent
/// scrapes during the next round.
///
/// With `cold`, the page cache is dropped first, so that the binary's pages
/// are read again and charged to the agent's group (file pages are charged
/// to the group that first reads them): the limit's own accounting,
/// binary included. The bench does; the CI test does not (it would slow
/// the tests running beside it).
pub async fn run_under_limits(
    binary: &str,
    w: &Workload,
    rounds: usize,
    storm: usize,
    cold: bool,
) -> Result<LimitsRun, String> {
    let group = Cgroup::create(&format!("limits{}", w.targets), CPU_MILLIS, MEMORY_BYTES)?;
    if cold {
        let _ = std::process::Command::new("sync").status();
        std::fs::write("/proc/sys/vm/drop_caches", "1").map_err(|e| format!("cannot drop the page cache: {e}"))?;
    }
    let agent = Agent::spawn_with(group.command(binary), &w.cfg, "info,netprobe::agent=debug");
    let next = || agent.next("round complete");
    next(); // warm-up
    let (mut total, mut max, mut unhealthy) = (0.0, 0.0f64, 0);
    for _ in 0..rounds {
        let v = next();
        let ms = v["ms"].as_f64().unwrap_or(0.0);
        total += ms;
        max = max.max(ms);
        if v["unhealthy"].as_u64().unwrap_or(1) > 0 {
            unhealthy += 1;
        }
    }
    // The storm, while the next round runs (rounds follow each other when a
    // round is longer than the interval; otherwise the next one starts within it).
    let addr = agent.addr;
    let mut tasks = Vec::new();
    // Each from a loopback address of its own (127.0.1.x): many scrapers,
    // as the agent serves a few connections per source address.
    let from = |i: usize| std::net::IpAddr::from([127, 0, 1, 1 + (i % 250) as u8]);
    for i in 0..storm {
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let (code, body) = netprobe_testkit::http_get_from(from(i), addr, "/metrics").await;
            (
                code,
                body.matches("netprobe_target_info{").count(),
                t.elapsed().as_secs_f64() * 1000.0,
            )
        }));
    }
    let mut times = Vec::new();
    let mut complete = 0;
    for t in tasks {
        let (code, infos, ms) = t.await.unwrap();
        times.push(ms);
        if code == 200 && infos == w.targets {
            complete += 1;
        }
    }
    // Then as many readers of /status at once (the round's JSON, shared;
    // after the scrapes, so that both storms fit the server's 64
    // connections).
    let mut status_tasks = Vec::new();
    for i in 0..storm {
        status_tasks.push(tokio::spawn(async move {
            let (code, body) = netprobe_testkit::http_get_from(from(i), addr, "/status").await;
            (code, body.matches("\"fqdn\":").count())
        }));
    }
    let mut status_complete = 0;
    for t in status_tasks {
        let (code, targets) = t.await.unwrap();
        if code == 200 && targets == w.targets {
            status_complete += 1;
        }
    }
    times.sort_by(|a, b| a.total_cmp(b));
    // One more round after the storm: the agent survived it and still probes.
    let after = next();
    if after["unhealthy"].as_u64().unwrap_or(1) > 0 {
        unhealthy += 1;
    }
    let (throttled_periods, throttled_ms) = group.throttled();
    let run = LimitsRun {
        targets: w.targets,
        rounds: rounds + 1,
        round_ms_avg: total / rounds as f64,
        round_ms_max: max.max(after["ms"].as_f64().unwrap_or(0.0)),
        unhealthy_rounds: unhealthy,
        scrape_ms_p50: times.get(times.len() / 2).copied().unwrap_or(0.0),
        scrape_ms_max: times.last().copied().unwrap_or(0.0),
        storm_complete: complete,
        status_complete,
        storm,
        max_usage_mib: group.max_usage_bytes() as f64 / 1048576.0,
        failcnt: group.failcnt(),
        oom_killed: group.oom_killed(),
        throttled_periods,
        throttled_ms,
    };
    agent.stop();
    Ok(run)
}

impl LimitsRun {
    /// The limits this run broke, one line each (empty: none).
    pub fn violations(&self, interval_ms: f64) -> Vec<String> {
        let mut v = Vec::new();
        if self.unhealthy_rounds > 0 {
            v.push(format!(
                "{} rounds with false findings (timeouts from starvation)",
                self.unhealthy_rounds
            ));
        }
        if self.round_ms_max > interval_ms {
            v.push(format!(
                "a round took {:.0} ms, over the {interval_ms:.0} ms interval",
                self.round_ms_max
            ));
        }
        if self.storm_complete < self.storm {
            v.push(format!(
                "{} of {} storm scrapes came back whole",
                self.storm_complete, self.storm
            ));
        }
        if self.status_complete < self.storm {
            v.push(format!(
                "{} of {} concurrent /status reads came back whole",
                self.status_complete, self.storm
            ));
        }
        let half = MEMORY_BYTES as f64 / 1048576.0 / 2.0;
        if self.max_usage_mib > half {
            v.push(format!(
                "peak memory {:.1} MiB, over half the limit ({half} MiB)",
                self.max_usage_mib
            ));
        }
        if self.oom_killed {
            v.push("the OOM killer fired".into());
        }
        v
    }

    pub fn header() -> String {
        format!(
            "{:>7} {:>6} {:>9} {:>9} {:>6} | {:>10} {:>10} {:>7} {:>7} | {:>9} {:>7} {:>5} | {:>9} {:>11}",
            "targets",
            "rounds",
            "round ms",
            "max ms",
            "false",
            "scrape p50",
            "scrape max",
            "storm",
            "status",
            "peak MiB",
            "failcnt",
            "oom",
            "throttled",
            "throttle ms"
        )
    }

    pub fn row(&self) -> String {
        format!(
            "{:>7} {:>6} {:>9.0} {:>9.0} {:>6} | {:>10.1} {:>10.1} {:>3}/{:<3} {:>3}/{:<3} | {:>9.1} {:>7} {:>5} | {:>9} {:>11.0}",
            self.targets,
            self.rounds,
            self.round_ms_avg,
            self.round_ms_max,
            self.unhealthy_rounds,
            self.scrape_ms_p50,
            self.scrape_ms_max,
            self.storm_complete,
            self.storm,
            self.status_complete,
            self.storm,
            self.max_usage_mib,
            self.failcnt,
            self.oom_killed,
            self.throttled_periods,
            self.throttled_ms
        )
    }
}
