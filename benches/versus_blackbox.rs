//! netprobe against prometheus-blackbox-exporter on the VNet lab (see
//! tests/vnet/mod.rs): the same targets, the same network, one run. Prints a
//! table; it never passes or fails on numbers.
//!
//!     scripts/bench-vs-blackbox            # installs the Debian package, then:
//!     cargo bench --bench versus_blackbox  # needs root (network namespaces)
//!
//! Environment: `TARGETS` (default 20), `ROUNDS` (10), `DELAY_MS` (50),
//! `SCALE_TARGETS` (1000), `BLACKBOX` (the exporter's path).
//!
//! - Both run in the node namespace, one after the other (never at once, so
//!   they do not compete for the two CPUs), against the same lab: same DNS
//!   servers, same TLS endpoints, the same `DELAY_MS` held on every packet
//!   from the VNet to the node.
//! - blackbox_exporter is configured to do the same work per FQDN: one DNS
//!   module with an answer check (an A record in 10.0.0.0/8, through the
//!   customer DNS server) and one HTTPS probe with the lab CA and the expected
//!   status. A "round" is every probe requested at once, as Prometheus
//!   scraping them all would do.
//! - netprobe runs as the agent with the node's resolver only (the same DNS
//!   path), and is scraped once per round, as Prometheus would.
//! - CPU is utime+stime from /proc/<pid>/stat over the measured rounds; peak
//!   RSS is VmHWM at the end.

mod common;
#[path = "../tests/vnet/mod.rs"]
mod vnet;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Agent, cpu_seconds, status_kib};
use netprobe_sim::https::Reply;
use vnet::{Endpoint, Lab, Site};

const BLACKBOX_PORT: u16 = 9115;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One bench target: its site, service, request path and expected status.
struct Bench {
    site: Site,
    service: &'static str,
    path: &'static str,
    status: u16,
}

/// `n` healthy targets over the four services, each with its own private
/// endpoint address.
fn targets(n: usize) -> Vec<Bench> {
    (0..n)
        .map(|i| {
            let private = Ipv4Addr::new(10, 0, 16 + (i / 200) as u8, (i % 200) as u8 + 1);
            let public = Ipv4Addr::new(203, 0, 113, 100 + (i % 100) as u8);
            let (fqdn, pl, service, path, status, reply) = match i % 4 {
                0 => (
                    format!("stbench{i}.blob.core.windows.net"),
                    format!("stbench{i}.privatelink.blob.core.windows.net"),
                    "storage",
                    "/?comp=list",
                    401,
                    Reply::storage_anonymous(),
                ),
                1 => (
                    format!("kv-bench-{i}.vault.azure.net"),
                    format!("kv-bench-{i}.privatelink.vaultcore.azure.net"),
                    "keyvault",
                    "/healthstatus",
                    200,
                    Reply::keyvault_health(),
                ),
                2 => {
                    let fqdn = format!("crbench{i}.azurecr.io");
                    let reply = Reply::acr_challenge(&fqdn);
                    (
                        fqdn,
                        format!("crbench{i}.privatelink.azurecr.io"),
                        "acr",
                        "/v2/",
                        401,
                        reply,
                    )
                }
                _ => (
                    format!("ws{i}.workspace.westeurope.api.azureml.ms"),
                    format!("ws{i}.workspace.westeurope.privatelink.api.azureml.ms"),
                    "workspace",
                    "/",
                    401,
                    Reply::workspace_unauthorized(),
                ),
            };
            Bench {
                site: Site::private_link(&fqdn, &pl, public, &[private], Endpoint::Serves(reply)),
                service,
                path,
                status,
            }
        })
        .collect()
}

fn netprobe_config(lab: &Lab, targets: &[Bench], interval: &str) -> PathBuf {
    let mut y = format!(
        "interval: {interval}\ntimeout: 5s\nlisten: \"127.0.0.1:0\"\ntls:\n  extra_ca_file: {}\nresolvers:\n  - name: vnet\n    resolv_conf: /etc/resolv.conf\ntargets:\n",
        lab.ca_file().display()
    );
    for (i, t) in targets.iter().enumerate() {
        y.push_str(&format!(
            "  - name: t{i}\n    fqdn: {}\n    service: {}\n",
            t.site.fqdn, t.service
        ));
    }
    let path = lab.dir.path().join(format!("netprobe-{}.yaml", targets.len()));
    std::fs::write(&path, y).unwrap();
    path
}

fn blackbox_config(lab: &Lab, targets: &[Bench]) -> PathBuf {
    let ca = lab.ca_file();
    let mut y = String::from("modules:\n");
    for status in [200, 401] {
        y.push_str(&format!(
            "  https_{status}:\n    prober: http\n    timeout: 5s\n    http:\n      valid_status_codes: [{status}]\n      preferred_ip_protocol: ip4\n      ip_protocol_fallback: false\n      fail_if_not_ssl: true\n      tls_config:\n        ca_file: {}\n",
            ca.display()
        ));
    }
    for (i, t) in targets.iter().enumerate() {
        y.push_str(&format!(
            "  dns_{i}:\n    prober: dns\n    timeout: 5s\n    dns:\n      query_name: \"{}\"\n      query_type: A\n      preferred_ip_protocol: ip4\n      ip_protocol_fallback: false\n      validate_answer_rrs:\n        fail_if_none_matches_regexp: [\"\\\\sIN\\\\s+A\\\\s+10\\\\.\"]\n",
            t.site.fqdn
        ));
    }
    let path = lab.dir.path().join("blackbox.yml");
    std::fs::write(&path, y).unwrap();
    path
}

/// The probe URLs of one blackbox round: a DNS and an HTTPS probe per target.
fn blackbox_urls(targets: &[Bench]) -> Vec<String> {
    let mut urls = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        urls.push(format!("/probe?module=dns_{i}&target={}", vnet::CUSTOMER_DNS));
        let target = format!("https://{}{}", t.site.fqdn, t.path);
        urls.push(format!(
            "/probe?module=https_{}&target={}",
            t.status,
            netprobe::text::query_value(&target)
        ));
    }
    urls
}

struct Measured {
    peak_rss_mib: f64,
    /// Private (anonymous) resident memory at the end: RSS without the
    /// binary's and libraries' file-backed pages.
    anon_mib: f64,
    cpu_ms_per_round: f64,
    round_ms: Vec<f64>,
    failures: usize,
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

/// Runs `rounds` rounds of process `pid`, each `round()` returning its wall
/// time (ms) and failed checks; CPU is taken around them, memory at the end.
fn measure(pid: u32, rounds: usize, mut round: impl FnMut() -> (f64, usize)) -> Measured {
    let cpu0 = cpu_seconds(pid);
    let mut round_ms = Vec::new();
    let mut failures = 0;
    for _ in 0..rounds {
        let (ms, failed) = round();
        round_ms.push(ms);
        failures += failed;
    }
    Measured {
        cpu_ms_per_round: (cpu_seconds(pid) - cpu0) * 1000.0 / rounds as f64,
        peak_rss_mib: status_kib(pid, "VmHWM:") / 1024.0,
        anon_mib: status_kib(pid, "RssAnon:") / 1024.0,
        round_ms,
        failures,
    }
}

fn measure_netprobe(lab: &Lab, targets: &[Bench], rounds: usize) -> Measured {
    let cfg = netprobe_config(lab, targets, "2s");
    let agent = Agent::spawn_with(lab.netprobe(), &cfg, "netprobe=debug");
    let pid = agent.pid;
    let addr = agent.addr;
    let scrape = || lab.node_rt.block(common::metrics(addr));
    let round = || {
        let v = agent.next("round complete");
        let unhealthy = v["unhealthy"].as_u64().unwrap_or(u64::MAX) as usize;
        (v["ms"].as_f64().unwrap_or(f64::NAN), unhealthy)
    };
    round();
    scrape();
    let measured = measure(pid, rounds, || {
        let (ms, unhealthy) = round();
        scrape();
        (ms, unhealthy)
    });
    agent.stop();
    measured
}

struct Blackbox {
    child: Child,
}

impl Drop for Blackbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn measure_blackbox(lab: &Lab, bin: &Path, targets: &[Bench], rounds: usize) -> Measured {
    let cfg = blackbox_config(lab, targets);
    let log = std::fs::File::create(lab.dir.path().join("blackbox.log")).unwrap();
    let child = lab
        .node
        .command(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{BLACKBOX_PORT}"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start blackbox_exporter");
    let bb = Blackbox { child };
    let pid = bb.child.id();
    let ready = lab.node.on_thread(|| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if vnet::http_get(BLACKBOX_PORT, "/-/healthy").starts_with("HTTP/1.1 200") {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    });
    assert!(
        ready,
        "blackbox_exporter did not start:\n{}",
        std::fs::read_to_string(lab.dir.path().join("blackbox.log")).unwrap_or_default()
    );
    let urls = blackbox_urls(targets);
    let round = || {
        let urls = urls.clone();
        lab.node.on_thread(move || {
            let start = Instant::now();
            let bodies: Vec<String> = std::thread::scope(|s| {
                let handles: Vec<_> = urls
                    .iter()
                    .map(|u| s.spawn(move || vnet::http_get(BLACKBOX_PORT, u)))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
            });
            let ms = start.elapsed().as_secs_f64() * 1000.0;
            let failed = bodies.iter().filter(|b| !b.contains("\nprobe_success 1")).count();
            (ms, failed, bodies)
        })
    };
    let (_, failed, bodies) = round();
    if failed > 0 {
        let sample = bodies.iter().find(|b| !b.contains("\nprobe_success 1")).cloned();
        eprintln!(
            "warning: {failed} blackbox probes failed in the warm-up round; one of them:\n{}",
            sample.unwrap_or_default()
        );
    }
    measure(pid, rounds, || {
        let (ms, failed, _) = round();
        // Spread rounds as a scrape interval would.
        std::thread::sleep(Duration::from_millis(500));
        (ms, failed)
    })
}

struct Scale {
    targets: usize,
    round_ms: f64,
    unhealthy: usize,
    peak_rss_mib: f64,
    peak_after_scrape_mib: f64,
    scrape_kib: f64,
}

fn measure_scale(n: usize, delay: Duration) -> Scale {
    let targets = targets(n);
    let sites: Vec<Site> = targets.iter().map(|t| t.site.clone()).collect();
    let lab = Lab::start(&sites, delay);
    let cfg = netprobe_config(&lab, &targets, "10m");
    let agent = Agent::spawn_with(lab.netprobe(), &cfg, "netprobe=debug");
    let v = agent.next("round complete");
    let pid = agent.pid;
    let peak = status_kib(pid, "VmHWM:") / 1024.0;
    let text = lab.node_rt.block(common::metrics(agent.addr));
    let after = status_kib(pid, "VmHWM:") / 1024.0;
    agent.stop();
    Scale {
        targets: n,
        round_ms: v["ms"].as_f64().unwrap_or(f64::NAN),
        unhealthy: v["unhealthy"].as_u64().unwrap_or(u64::MAX) as usize,
        peak_rss_mib: peak,
        peak_after_scrape_mib: after,
        scrape_kib: text.len() as f64 / 1024.0,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n: usize = env_or("TARGETS", 20);
    let rounds: usize = env_or("ROUNDS", 10);
    let delay_ms: u64 = env_or("DELAY_MS", 50);
    let scale_n: usize = env_or("SCALE_TARGETS", 1000);
    let bin =
        PathBuf::from(std::env::var("BLACKBOX").unwrap_or_else(|_| "/usr/bin/prometheus-blackbox-exporter".into()));
    vnet::require();
    if !bin.exists() {
        eprintln!(
            "{} is missing: install the Debian package prometheus-blackbox-exporter (scripts/bench-vs-blackbox does), or set BLACKBOX",
            bin.display()
        );
        std::process::exit(2);
    }
    let version = Command::new(&bin)
        .arg("--version")
        .output()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
            text.lines().next().unwrap_or_default().to_string()
        })
        .unwrap_or_default();
    let delay = Duration::from_millis(delay_ms);

    let bench = targets(n);
    let sites: Vec<Site> = bench.iter().map(|t| t.site.clone()).collect();
    eprintln!("lab: {n} targets, {delay_ms} ms on packets from the VNet to the node; {rounds} rounds each");
    let lab = Lab::start(&sites, delay);
    let np = measure_netprobe(&lab, &bench, rounds);
    let bb = measure_blackbox(&lab, &bin, &bench, rounds);
    let link = lab.link_stats();
    drop(lab);
    eprintln!("scale: {scale_n} targets, netprobe alone");
    let scale = measure_scale(scale_n, delay);

    let critical = 4.0 * delay_ms as f64;
    println!();
    println!("netprobe {} vs {version}", env!("CARGO_PKG_VERSION"));
    println!(
        "{n} targets (storage, key vault, registry, workspace), {delay_ms} ms added per round trip, {rounds} rounds"
    );
    println!();
    println!(
        "| {:<28} | {:>10} | {:>14} | {:>8} | {:>10} |",
        "", "netprobe", "blackbox_exp.", "ratio", "goal"
    );
    println!("|{:-<30}|{:->12}|{:->16}|{:->10}|{:->12}|", "", "", "", "", "");
    let row = |name: &str, a: f64, b: f64, goal: &str| {
        println!("| {name:<28} | {a:>10.1} | {b:>14.1} | {:>8.2} | {goal:>10} |", a / b);
    };
    row("peak RSS (MiB)", np.peak_rss_mib, bb.peak_rss_mib, "<= 0.33");
    row("anonymous RSS at end (MiB)", np.anon_mib, bb.anon_mib, "");

    row(
        "CPU per round (ms)",
        np.cpu_ms_per_round,
        bb.cpu_ms_per_round,
        "<= 0.50",
    );
    row(
        "round wall, median (ms)",
        median(&np.round_ms),
        median(&bb.round_ms),
        "",
    );
    row("round wall, max (ms)", max(&np.round_ms), max(&bb.round_ms), "");
    println!(
        "| {:<28} | {:>10.2} | {:>14.2} | {:>8} | {:>10} |",
        "median / critical path",
        median(&np.round_ms) / critical,
        median(&bb.round_ms) / critical,
        "",
        "<= 1.2"
    );
    println!(
        "| {:<28} | {:>10} | {:>14} | {:>8} | {:>10} |",
        "failed checks (all rounds)", np.failures, bb.failures, "", "0"
    );
    println!();
    println!(
        "critical path of one target: DNS + TCP + TLS 1.3 + HTTP = 4 round trips x {delay_ms} ms = {critical:.0} ms"
    );
    println!(
        "netprobe rounds (ms): {:?}",
        np.round_ms.iter().map(|m| m.round()).collect::<Vec<_>>()
    );
    println!(
        "blackbox rounds (ms): {:?}",
        bb.round_ms.iter().map(|m| m.round()).collect::<Vec<_>>()
    );
    println!("link after both: {link}");
    println!();
    println!(
        "| scale (netprobe alone) | round wall (ms) | unhealthy | peak RSS (MiB) | after one scrape (MiB) | scrape (KiB) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} targets | {:.0} | {} | {:.1} | {:.1} | {:.0} |",
        scale.targets,
        scale.round_ms,
        scale.unhealthy,
        scale.peak_rss_mib,
        scale.peak_after_scrape_mib,
        scale.scrape_kib
    );
}
