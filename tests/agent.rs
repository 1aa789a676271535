//! Agent mode against real DNS and TLS servers on loopback: metrics by name
//! and label, readiness, reload, overruns, shutdown, transition logs, the
//! status page (in headless Chromium), and `promtool check metrics`.

mod common;

use netprobe_sim::private_ip as pe;
use netprobe_testkit::{http_get as get, metric_value as value};

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netprobe::agent::{AgentOptions, run_until};
use netprobe::config::Config;
use netprobe_sim::dns::{DnsServer, Entry, Records};
use netprobe_sim::https::{HttpsServer, Reply};
use netprobe_sim::pki::Ca;
use tokio::sync::watch;

use common::{chain, dns, endpoint};

struct Agent {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Agent {
    /// Stops the agent and waits (at most 5 s) for it to finish cleanly.
    async fn stop(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

async fn start_agent(config: Config, path: &Path) -> Agent {
    let (stop, rx) = watch::channel(false);
    let (tx, bound) = tokio::sync::oneshot::channel();
    let opts = AgentOptions {
        config_path: Some(path.to_path_buf()),
        listen_override: Some("127.0.0.1:0".parse().unwrap()),
        on_listen: Some(tx),
        cluster: Default::default(),
        min_interval: std::time::Duration::ZERO,
        node_condition: false,
    };
    let task = tokio::spawn(async move {
        run_until(config, opts, rx).await.unwrap();
    });
    let addr = bound.await.unwrap();
    Agent { addr, stop, task }
}

async fn wait_for(addr: SocketAddr, what: &str, mut ok: impl FnMut(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let (_, body) = get(addr, "/metrics").await;
        if ok(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}:\n{body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Scene {
    dns: DnsServer,
    _ep: HttpsServer,
    port: u16,
    ca_file: tempfile::TempDir,
}

/// One ACR target `reg91.azurecr.io` behind a healthy private endpoint.
async fn scene() -> Scene {
    let ca = Ca::new("agent test CA").unwrap();
    let ep = endpoint(
        &ca,
        pe(91),
        0,
        &["reg91.azurecr.io"],
        Reply::acr_challenge("reg91.azurecr.io"),
    )
    .await;
    let mut r = Records::new();
    chain(&mut r, "reg91.azurecr.io", "reg91.privatelink.azurecr.io", &[pe(91)]);
    r.insert(
        "public.reg91.example".into(),
        Entry::Addrs(vec![IpAddr::from([127, 0, 200, 91])]),
    );
    let d = dns(r).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
    Scene {
        port: ep.addr().port(),
        dns: d,
        _ep: ep,
        ca_file: dir,
    }
}

fn agent_yaml(s: &Scene, interval: &str, extra_targets: &str) -> String {
    format!(
        "interval: {interval}\ntimeout: 1s\nresolvers:\n  - name: system\n    servers: [\"{}\"]\nprivate_ranges: [127.0.10.0/24]\ntls:\n  extra_ca_file: ca.pem\ntargets:\n  - fqdn: reg91.azurecr.io\n    name: reg91\n    service: acr\n    port: {}\n{extra_targets}",
        s.dns.addr(),
        s.port
    )
}

fn write_config(dir: &Path, text: &str) -> std::path::PathBuf {
    // Replace atomically, as a ConfigMap update does.
    let path = dir.join("netprobe.yaml");
    let tmp = dir.join(".netprobe.yaml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}

const HEALTHY: &[(&str, &str)] = &[("target", "reg91")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_dns_changes_within_a_round() {
    let s = scene().await;
    let path = write_config(s.ca_file.path(), &agent_yaml(&s, "200ms", ""));
    let agent = start_agent(Config::load(&path).unwrap(), &path).await;
    // A scrape may land while a round's results are being recorded (the
    // target rows first, then the round counters): wait for both.
    let m = wait_for(agent.addr, "first healthy round", |m| {
        value(m, "netprobe_target_healthy", HEALTHY) == Some(1.0)
            && value(m, "netprobe_rounds_total", &[]).is_some_and(|n| n >= 1.0)
    })
    .await;
    for (k, v) in [
        ("netprobe_dns_verdict", "private"),
        ("netprobe_reach_verdict", "ok"),
        ("netprobe_target_cause", "none"),
    ] {
        let label = if k == "netprobe_target_cause" {
            "cause"
        } else {
            "verdict"
        };
        assert_eq!(
            value(&m, k, &[("target", "reg91"), (label, v)]),
            Some(1.0),
            "{k}={v}\n{m}"
        );
    }
    // The compact set (the default): the current verdict only, last latencies, no histograms.
    let dns_series: Vec<&str> = m.lines().filter(|l| l.starts_with("netprobe_dns_verdict{")).collect();
    assert_eq!(dns_series.len(), 1, "{m}");
    let system = &[("target", "reg91"), ("resolver", "system")];
    assert_eq!(value(&m, "netprobe_dns_healthy", system), Some(1.0));
    assert!(value(&m, "netprobe_dns_lookup_last_seconds", system).unwrap() > 0.0);
    assert!(
        value(
            &m,
            "netprobe_phase_last_seconds",
            &[("target", "reg91"), ("phase", "tls")]
        )
        .unwrap()
            > 0.0
    );
    assert_eq!(value(&m, "netprobe_http_status_code", HEALTHY), Some(401.0));
    assert!(value(&m, "netprobe_tls_cert_expiry_timestamp_seconds", HEALTHY).unwrap() > 1.7e9);
    for full_only in [
        "netprobe_dns_privatelink",
        "netprobe_phase_duration_seconds",
        "netprobe_dns_lookup_duration_seconds",
    ] {
        assert!(
            !m.contains(&format!("{full_only}_")) && !m.contains(&format!("{full_only}{{")),
            "{full_only}\n{m}"
        );
    }
    assert!(value(&m, "netprobe_rounds_total", &[]).unwrap() >= 1.0);
    assert!(value(&m, "netprobe_last_round_timestamp_seconds", &[]).unwrap() > 1.7e9);
    assert_eq!(
        value(
            &m,
            "netprobe_target_info",
            &[
                ("target", "reg91"),
                ("fqdn", "reg91.azurecr.io"),
                ("service", "acr"),
                ("expect", "private")
            ]
        ),
        Some(1.0)
    );

    // private -> public (the zone is unlinked: the chain continues publicly).
    s.dns.set(
        "reg91.privatelink.azurecr.io",
        Entry::Cname("public.reg91.example".into()),
    );
    let m = wait_for(agent.addr, "public verdict", |m| {
        value(m, "netprobe_dns_verdict", &[("target", "reg91"), ("verdict", "public")]) == Some(1.0)
    })
    .await;
    assert_eq!(value(&m, "netprobe_target_healthy", HEALTHY), Some(0.0));
    assert_eq!(
        value(
            &m,
            "netprobe_target_cause",
            &[("target", "reg91"), ("cause", "zone_not_linked")]
        ),
        Some(1.0)
    );
    // The old verdict's series ends (the compact set carries the current value only).
    assert_eq!(
        value(
            &m,
            "netprobe_dns_verdict",
            &[("target", "reg91"), ("verdict", "private")]
        ),
        None
    );
    let system = &[("target", "reg91"), ("resolver", "system")];
    assert_eq!(value(&m, "netprobe_dns_healthy", system), Some(0.0));

    // The /status document says the same, and since when: the round that
    // saw the change, after a healthy state the agent saw from its start.
    let (code, status) = get(agent.addr, "/status").await;
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    let t = &v["targets"][0];
    assert_eq!(t["cause"], "zone_not_linked");
    assert_eq!(
        (t["before"].as_str(), t.get("since_at_least")),
        (Some("none"), None),
        "{t}"
    );
    let since = t["since"].as_str().expect("since").to_string();
    assert!(
        since.as_str() <= v["started_at"].as_str().unwrap(),
        "{since} {}",
        v["started_at"]
    );
    // Rounds later, the same state keeps its start; the page says it.
    let later = wait_for(agent.addr, "a later round", |m| {
        value(m, "netprobe_rounds_total", &[]).is_some_and(|n| n >= 4.0)
    })
    .await;
    assert!(!later.is_empty());
    let v: serde_json::Value = serde_json::from_str(&get(agent.addr, "/status").await.1).unwrap();
    assert_eq!(v["targets"][0]["cause"], "zone_not_linked");
    assert_eq!(v["targets"][0]["since"].as_str(), Some(since.as_str()), "{v}");
    let (_, page) = get(agent.addr, "/").await;
    assert!(
        page.contains(&format!("failing since {} UTC", &since[11..16])),
        "{page}"
    );

    // One change to unhealthy so far (a healthy start is not a change).
    assert_eq!(
        value(&m, "netprobe_target_transitions_total", &[("to", "unhealthy")]),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        value(&m, "netprobe_target_transitions_total", &[("to", "healthy")]),
        Some(0.0)
    );

    // ... and back.
    s.dns.set("reg91.privatelink.azurecr.io", Entry::Addrs(vec![pe(91)]));
    let m = wait_for(agent.addr, "healthy again", |m| {
        value(m, "netprobe_target_healthy", HEALTHY) == Some(1.0)
    })
    .await;
    assert_eq!(
        value(&m, "netprobe_target_transitions_total", &[("to", "healthy")]),
        Some(1.0)
    );
    agent.stop().await;
}

/// `metrics: full`: every state of every state set (one at 1) and the histograms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_metric_set_adds_zero_states_and_histograms() {
    let s = scene().await;
    let yaml = format!("metrics: full\n{}", agent_yaml(&s, "200ms", ""));
    let path = write_config(s.ca_file.path(), &yaml);
    let agent = start_agent(Config::load(&path).unwrap(), &path).await;
    let m = wait_for(agent.addr, "first healthy round", |m| {
        value(m, "netprobe_target_healthy", HEALTHY) == Some(1.0)
    })
    .await;
    let dns_series: Vec<&str> = m.lines().filter(|l| l.starts_with("netprobe_dns_verdict{")).collect();
    assert_eq!(dns_series.len(), netprobe::model::DnsVerdict::ALL.len());
    assert_eq!(dns_series.iter().filter(|l| l.ends_with(" 1")).count(), 1);
    let causes = m.lines().filter(|l| l.starts_with("netprobe_target_cause{")).count();
    assert_eq!(causes, netprobe::model::Cause::ALL.len());
    assert_eq!(value(&m, "netprobe_dns_privatelink", HEALTHY), Some(1.0));
    let system = &[("target", "reg91"), ("resolver", "system")];
    assert!(value(&m, "netprobe_dns_lookup_duration_seconds_count", system).unwrap() >= 1.0);
    let tls = &[("target", "reg91"), ("phase", "tls")];
    assert!(value(&m, "netprobe_phase_duration_seconds_count", tls).unwrap() >= 1.0);
    // The compact series are there too.
    assert_eq!(value(&m, "netprobe_dns_healthy", system), Some(1.0));
    assert!(value(&m, "netprobe_phase_last_seconds", tls).unwrap() > 0.0);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_waits_for_the_first_round_and_overruns_are_counted() {
    let s = scene().await;
    s.dns.set("reg91.azurecr.io", Entry::Drop);
    // interval 100ms, but each round waits 1s for DNS: every round overruns.
    let path = write_config(s.ca_file.path(), &agent_yaml(&s, "100ms", ""));
    let agent = start_agent(Config::load(&path).unwrap(), &path).await;
    assert_eq!(get(agent.addr, "/readyz").await.0, 503);
    assert_eq!(get(agent.addr, "/healthz").await.0, 200);
    assert_eq!(get(agent.addr, "/status").await.0, 503);
    let (code, page) = get(agent.addr, "/").await;
    assert_eq!(code, 200);
    assert!(page.contains("Waiting for the first round"), "{page}");
    // Series exist before any round.
    let (_, m) = get(agent.addr, "/metrics").await;
    assert_eq!(value(&m, "netprobe_target_healthy", HEALTHY), Some(0.0));
    assert_eq!(value(&m, "netprobe_rounds_total", &[]), Some(0.0));

    let m = wait_for(agent.addr, "two overruns", |m| {
        value(m, "netprobe_round_overruns_total", &[]).unwrap_or(0.0) >= 2.0
    })
    .await;
    assert_eq!(get(agent.addr, "/readyz").await.0, 200);
    assert_eq!(
        value(
            &m,
            "netprobe_target_cause",
            &[("target", "reg91"), ("cause", "dns_unreachable")]
        ),
        Some(1.0)
    );
    // Rounds never overlap: every completed round is one overrun here.
    let rounds = value(&m, "netprobe_rounds_total", &[]).unwrap();
    let overruns = value(&m, "netprobe_round_overruns_total", &[]).unwrap();
    assert!(
        overruns >= rounds - 1.0 && overruns <= rounds,
        "{rounds} rounds, {overruns} overruns"
    );
    assert_eq!(get(agent.addr, "/nope").await.0, 404);
    agent.stop.send(true).unwrap();
    // Stopping mid-round (DNS is stalled for 1s) is prompt.
    let t = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), agent.task)
        .await
        .unwrap()
        .unwrap();
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_good_files_and_rejects_bad_ones() {
    let s = scene().await;
    let dir = s.ca_file.path();
    let path = write_config(dir, &agent_yaml(&s, "300ms", ""));
    let agent = start_agent(Config::load(&path).unwrap(), &path).await;
    wait_for(agent.addr, "first round", |m| {
        value(m, "netprobe_target_healthy", HEALTHY) == Some(1.0)
    })
    .await;

    let extra = format!("  - fqdn: second.example.net\n    name: second\n    port: {}\n", s.port);
    write_config(dir, &agent_yaml(&s, "300ms", &extra));
    let m = wait_for(agent.addr, "second target", |m| {
        value(m, "netprobe_target_info", &[("target", "second")]) == Some(1.0)
    })
    .await;
    assert_eq!(value(&m, "netprobe_config_reload_success", &[]), Some(1.0));
    assert_eq!(
        value(&m, "netprobe_config_reloads_total", &[("result", "success")]),
        Some(1.0)
    );

    // A bad file is rejected; the running configuration stays.
    write_config(dir, "targets: [\n");
    let m = wait_for(agent.addr, "reload failure", |m| {
        value(m, "netprobe_config_reload_success", &[]) == Some(0.0)
    })
    .await;
    assert_eq!(value(&m, "netprobe_target_info", &[("target", "second")]), Some(1.0));
    let rounds = value(&m, "netprobe_rounds_total", &[]).unwrap();
    wait_for(agent.addr, "rounds going on", |m| {
        value(m, "netprobe_rounds_total", &[]).unwrap() > rounds + 1.0
    })
    .await;

    // Back to one target: the removed target's series disappear.
    write_config(dir, &agent_yaml(&s, "300ms", ""));
    let m = wait_for(agent.addr, "second removed", |m| {
        value(m, "netprobe_config_reload_success", &[]) == Some(1.0) && !m.contains("target=\"second\"")
    })
    .await;
    assert_eq!(value(&m, "netprobe_target_info", HEALTHY), Some(1.0));
    agent.stop.send(true).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), agent.task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_finds_no_problem_in_the_exposition() {
    let s = scene().await;
    let path = write_config(s.ca_file.path(), &agent_yaml(&s, "200ms", ""));
    let agent = start_agent(Config::load(&path).unwrap(), &path).await;
    let m = wait_for(agent.addr, "a round", |m| {
        value(m, "netprobe_rounds_total", &[]).unwrap_or(0.0) >= 1.0
    })
    .await;
    agent.stop.send(true).unwrap();
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is required (Debian package `prometheus`; scripts/test installs it)");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(m.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics:\n{report}"
    );
}

/// The binary as a subprocess with JSON logs: health changes are logged once
/// each, and SIGTERM during a round ends the process with 0 within 5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_logs_transitions_once_and_stops_on_sigterm() {
    let s = scene().await;
    let path = write_config(s.ca_file.path(), &agent_yaml(&s, "150ms", ""));
    let mut child = Command::new(env!("CARGO_BIN_EXE_netprobe"))
        .args([
            "probe",
            "--config",
            path.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .env("RUST_LOG", "info")
        // Short rounds on loopback: the node's floor lowered explicitly.
        .env("NETPROBE_MIN_INTERVAL", "0s")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (line_tx, mut line_rx) = tokio::sync::mpsc::unbounded_channel::<serde_json::Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                let _ = line_tx.send(v);
            }
        }
    });
    let mut logs: Vec<serde_json::Value> = Vec::new();
    let mut next = async |logs: &mut Vec<serde_json::Value>, pred: &dyn Fn(&serde_json::Value) -> bool| {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
        loop {
            let v = tokio::time::timeout_at(deadline, line_rx.recv())
                .await
                .expect("log line in time")
                .expect("log stream");
            logs.push(v.clone());
            if pred(&v) {
                return v;
            }
        }
    };
    let listening = next(&mut logs, &|v| v["message"] == "netprobe agent listening").await;
    let addr: SocketAddr = listening["listen"].as_str().unwrap().parse().unwrap();
    wait_for(addr, "healthy", |m| {
        value(m, "netprobe_target_healthy", HEALTHY) == Some(1.0)
    })
    .await;

    let changed = |v: &serde_json::Value| v["message"] == "target state changed";
    s.dns.set("reg91.azurecr.io", Entry::ServFail);
    let down = next(&mut logs, &changed).await;
    assert_eq!(down["target"], "reg91");
    assert_eq!(down["cause"], "dns_error");
    assert!(down["from"].as_str().unwrap().starts_with("healthy"), "{down}");
    assert!(down["to"].as_str().unwrap().contains("system=servfail"), "{down}");
    // Several more rounds in the same state: no more lines.
    let rounds = value(&get(addr, "/metrics").await.1, "netprobe_rounds_total", &[]).unwrap();
    wait_for(addr, "3 more rounds", |m| {
        value(m, "netprobe_rounds_total", &[]).unwrap() >= rounds + 3.0
    })
    .await;
    s.dns
        .set("reg91.azurecr.io", Entry::Cname("reg91.privatelink.azurecr.io".into()));
    let up = next(&mut logs, &changed).await;
    assert!(up["to"].as_str().unwrap().starts_with("healthy"), "{up}");
    let transitions = logs.iter().filter(|v| changed(v)).count();
    assert_eq!(transitions, 2, "one line per change: {logs:#?}");

    // SIGHUP reloads the (unchanged) file.
    let hup = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    wait_for(addr, "a reload on SIGHUP", |m| {
        value(m, "netprobe_config_reloads_total", &[("result", "success")]).unwrap_or(0.0) >= 1.0
    })
    .await;
    assert!(
        next(&mut logs, &|v| v["message"] == "SIGHUP: reloading the configuration")
            .await
            .is_object()
    );

    // Stall DNS so that a round is in flight, then SIGTERM.

    s.dns.set("reg91.azurecr.io", Entry::Drop);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

/// Runs headless Chromium (with the flags this network needs) on `url`;
/// `what` is `--dump-dom` or `--screenshot=PATH`.
async fn chromium(url: String, what: String) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--window-size=1280,1400",
                &format!("--user-data-dir={}", profile.path().display()),
                "--virtual-time-budget=2000",
                &what,
                &url,
            ])
            .output()
            .expect("chromium is required (Debian package `chromium`; scripts/test installs it)")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The status page in a real browser: what matters first (the node, the
/// count of failing targets, cluster findings, a rejected reload, the age of
/// the round), failing targets before healthy ones, and a hostile name from
/// DNS shown as inert text. A screenshot lands in target/test-output/.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_renders_in_chromium_and_hostile_names_stay_inert() {
    let s = scene().await;
    let hostile = "<img src=x onerror=document.title='pwned'>";
    s.dns.set(
        "evil.example.net",
        Entry::Cname(format!("{hostile}.privatelink.example.net")),
    );
    s.dns.set(
        &format!("{hostile}.privatelink.example.net"),
        Entry::Addrs(vec![IpAddr::from([127, 0, 200, 92])]),
    );
    let extra = "  - fqdn: evil.example.net\n    name: evil\n    port: 9\n";
    let yaml = format!("region: eastus\n{}", agent_yaml(&s, "500ms", extra));
    let path = write_config(s.ca_file.path(), &yaml);
    // A node in another region than the config's: a cluster finding.
    let node = netprobe::report::NodeInfo {
        name: "aks-nodepool1-0".into(),
        uid: None,
        region: Some("westeurope".into()),
        zone: Some("westeurope-1".into()),
        attrs: [
            ("pool", "nodepool1"),
            ("node_image", "AKSUbuntu-2204gen2containerd-202612.01.0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    };
    let (stop, rx) = watch::channel(false);
    let (tx, bound) = tokio::sync::oneshot::channel();
    let opts = AgentOptions {
        config_path: Some(path.clone()),
        listen_override: Some("127.0.0.1:0".parse().unwrap()),
        on_listen: Some(tx),
        cluster: netprobe::cluster::ClusterContext {
            cluster: None,
            node: Some(node),
            ..netprobe::cluster::ClusterContext::default()
        },
        min_interval: std::time::Duration::ZERO,
        node_condition: false,
    };
    let config = Config::load(&path).unwrap();
    let task = tokio::spawn(async move { run_until(config, opts, rx).await.unwrap() });
    let addr = bound.await.unwrap();
    wait_for(addr, "a round", |m| {
        value(m, "netprobe_rounds_total", &[]).unwrap_or(0.0) >= 1.0
    })
    .await;
    let (_, status) = get(addr, "/status").await;
    assert!(status.contains("img"), "the hostile chain reached the report: {status}");
    // The node's pool and image, for the dashboard's grouping; in the summary too.
    let m = get(addr, "/metrics").await.1;
    assert_eq!(
        value(
            &m,
            "netprobe_node_info",
            &[
                ("node", "aks-nodepool1-0"),
                ("agentpool", "nodepool1"),
                ("node_image", "AKSUbuntu-2204gen2containerd-202612.01.0")
            ]
        ),
        Some(1.0),
        "{m}"
    );
    assert!(
        get(addr, "/status/summary")
            .await
            .1
            .contains(r#""node":{"node_image":"#)
    );
    // A broken edit of the ConfigMap: rejected, the old configuration runs on.
    write_config(s.ca_file.path(), "interval: soon\n");
    wait_for(addr, "the reload rejected", |m| {
        value(m, "netprobe_config_reload_success", &[]) == Some(0.0)
    })
    .await;

    let url = format!("http://{addr}/");
    let dom = chromium(url.clone(), "--dump-dom".into()).await;
    let out_dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-output");
    std::fs::create_dir_all(&out_dir).unwrap();
    let shot = out_dir.join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    chromium(url, format!("--screenshot={}", shot.display())).await;
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{} bytes", png.len());
    println!("screenshot: {}", shot.display());

    // What matters first.
    assert!(dom.contains("<span id=\"node\">aks-nodepool1-0"), "{dom}");
    assert!(
        dom.contains("<p id=\"summary\" class=\"fail\">1 of 2 targets failing</p>"),
        "{dom}"
    );
    assert!(dom.contains("data-finding=\"region_mismatch\""), "{dom}");
    assert!(dom.contains("id=\"reload-error\""), "{dom}");
    assert!(dom.contains("interval"), "the reload error names the field: {dom}");
    assert!(dom.contains("<span id=\"age\">completed "), "{dom}");
    // Failing first.
    let evil = dom.find("data-target=\"evil\"").expect("the failing target");
    let reg = dom.find("data-target=\"reg91\"").expect("the healthy target");
    assert!(evil < reg, "failing targets come first");
    assert!(dom.contains("class=\"ok\"") && dom.contains("class=\"fail\""), "{dom}");
    // Inert: no <img> element was created and the handler never ran.
    assert!(!dom.contains("<img"), "an element was injected: {dom}");
    assert!(dom.contains("&lt;img"), "the name is shown as text: {dom}");
    assert!(dom.contains("<title>netprobe</title>"), "the title was changed: {dom}");
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}

/// A resolver whose server is gone (nothing listens: ICMP port unreachable)
/// is `netprobe_resolver_up 0` beside a live one at 1, and every query the
/// agent sends is counted per resolver: two per target and round here (A and
/// AAAA), for the dead resolver as for the live one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolver_up_and_dns_queries_are_counted_per_resolver() {
    let s = scene().await;
    let dead: SocketAddr = {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.local_addr().unwrap()
    };
    let yaml = agent_yaml(&s, "200ms", "").replace(
        "resolvers:\n",
        &format!("resolvers:\n  - name: gone\n    servers: [\"{dead}\"]\n"),
    ) + "connect_via: system\n";
    let path = write_config(s.ca_file.path(), &yaml);
    let agent = start_agent(Config::load(&path).unwrap(), &path).await;
    let m = wait_for(agent.addr, "two rounds", |m| {
        value(m, "netprobe_rounds_total", &[]).is_some_and(|n| n >= 2.0)
    })
    .await;
    let rounds = value(&m, "netprobe_rounds_total", &[]).unwrap();
    assert_eq!(
        value(&m, "netprobe_resolver_up", &[("resolver", "system")]),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        value(&m, "netprobe_resolver_up", &[("resolver", "gone")]),
        Some(0.0),
        "{m}"
    );
    // A and AAAA per round, and for the resolver that answers the round's
    // TCP 53 check; the dead one gets no check.
    for (r, per_round) in [("system", 3.0), ("gone", 2.0)] {
        // A scrape may fall between the two updates of a round's end.
        let q = value(&m, "netprobe_dns_queries_total", &[("resolver", r)]).unwrap();
        assert!(
            q == per_round * rounds || q == per_round * (rounds + 1.0),
            "{r}: {q} queries, {rounds} rounds\n{m}"
        );
    }
    // The live server received at least what was counted (a round may be in flight).
    assert!(s.dns.queries() as f64 >= 2.0 * rounds);
    // The status page shows each resolver's state.
    let (_, page) = get(agent.addr, "/").await;
    assert!(page.contains("data-resolver=\"gone\""), "{page}");
    assert!(page.contains("DOWN"), "{page}");
    let (_, status) = get(agent.addr, "/status").await;
    let doc: serde_json::Value = serde_json::from_str(&status).unwrap();
    let gone = doc["resolvers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "gone")
        .unwrap();
    assert_eq!(gone["up"], false, "{gone}");
    assert!(
        gone["detail"].as_str().unwrap_or_default().contains(&dead.to_string()),
        "{gone}"
    );
    agent.stop.send(true).unwrap();
    let _ = agent.task.await;
}

/// A node whose resolv.conf is missing: the agent starts, keeps serving and
/// reports the resolver as down at every round; when the file appears, the
/// next round uses it (no restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_resolv_conf_is_reported_while_the_agent_serves() {
    let s = scene().await;
    let resolv = s.ca_file.path().join("node-resolv.conf");
    let yaml = agent_yaml(&s, "200ms", "").replace(
        "resolvers:\n",
        &format!("resolvers:\n  - name: node\n    resolv_conf: {}\n", resolv.display()),
    ) + "connect_via: system\n";
    let path = write_config(s.ca_file.path(), &yaml);
    let agent = start_agent(Config::load(&path).unwrap(), &path).await;
    let node = &[("resolver", "node")];
    let m = wait_for(agent.addr, "a round", |m| {
        value(m, "netprobe_resolver_up", node) == Some(0.0)
    })
    .await;
    assert_eq!(value(&m, "netprobe_resolver_up", &[("resolver", "system")]), Some(1.0));
    assert_eq!(get(agent.addr, "/readyz").await.0, 200);
    let (_, status) = get(agent.addr, "/status").await;
    assert!(status.contains("has no DNS server to ask"), "{status}");
    // The file appears (the mount is fixed): the next rounds use it.
    std::fs::write(&resolv, format!("nameserver {}\n", s.dns.addr().ip())).unwrap();
    // The sim server listens on a non-53 port, so the resolver reads a server
    // but gets no answer on port 53: it has servers now, which is the point.
    let (_, status) = {
        let deadline = Instant::now() + Duration::from_secs(8);
        loop {
            let (c, body) = get(agent.addr, "/status").await;
            if !body.contains("has no DNS server to ask") {
                break (c, body);
            }
            assert!(Instant::now() < deadline, "the new resolv.conf was not read: {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    let node = v["resolvers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "node")
        .unwrap();
    assert!(node["servers"].as_array().is_some_and(|s| !s.is_empty()), "{node}");
    agent.stop().await;
}

/// `netprobe demo --serve`: the agent over the simulated VNet, every
/// endpoint served, the demo's fixed failures reported, and the flapping
/// targets failing and recovering in turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serve_runs_the_agent_with_targets_that_fail_and_recover() {
    let (stop, rx) = watch::channel(false);
    let (tx, bound) = tokio::sync::oneshot::channel();
    let opts = netprobe::demo::ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        interval: Duration::from_millis(200),
        // Longer than a round that waits out the demo's 2 s DNS timeout.
        flap: Duration::from_millis(3000),
        on_listen: Some(tx),
    };
    let task = tokio::spawn(netprobe::demo::serve(opts, rx));
    let addr = bound.await.unwrap();
    let [first, second] = netprobe::demo::FLAPPING;
    let healthy = |m: &str, t: &str| value(m, "netprobe_target_healthy", &[("target", t)]);
    // Phase 0: both flapping targets healthy; the demo's fixed failures show.
    let m = wait_for(addr, "a round", |m| healthy(m, first) == Some(1.0)).await;
    assert_eq!(healthy(&m, second), Some(1.0));
    assert_eq!(
        healthy(&m, "keyvault-mlws-kv-01"),
        Some(0.0),
        "a fixed failure of the demo"
    );
    // Phase 1: the first fails (its record is gone), then recovers in phase 2
    // while the second fails. The demo changes its two DNS servers one after
    // the other, so a round that falls between the two sees them disagree
    // (`dns_path_not_forwarding` for a round): wait for the phase's own cause.
    let cause = |m: &str, t: &str, c: &str| value(m, "netprobe_target_cause", &[("target", t), ("cause", c)]);
    let m = wait_for(addr, "the first flapping target failing", |m| {
        healthy(m, first) == Some(0.0) && cause(m, first, "record_missing") == Some(1.0)
    })
    .await;
    assert_eq!(cause(&m, first, "record_missing"), Some(1.0));
    // Phase 2: the first recovers; the second fails (its DNS stops answering
    // through the pod path), each seen in turn.
    wait_for(addr, "the first recovered", |m| healthy(m, first) == Some(1.0)).await;
    let m = wait_for(addr, "the second failing", |m| {
        healthy(m, second) == Some(0.0) && cause(m, second, "dns_unreachable") == Some(1.0)
    })
    .await;
    assert_eq!(cause(&m, second, "dns_unreachable"), Some(1.0), "{m}");
    for (path, code) in [("/healthz", 200), ("/readyz", 200), ("/status", 200), ("/", 200)] {
        assert_eq!(get(addr, path).await.0, code, "{path}");
    }
    let m = get(addr, "/metrics").await.1;
    assert!(value(&m, "netprobe_target_transitions_total", &[("to", "healthy")]).unwrap() >= 1.0);
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
