//! `netprobe report` at fleet scale: a fake API server (TLS on loopback)
//! with N agent pods (5,000 by default, `NETPROBE_BENCH_NODES`), each
//! answering through the pod proxy like a real agent (a real round over the
//! simulated VNet, padded to 20 targets), some slow (300 ms), some failing
//! (503), some not ready; 500 nodes of pool `gpu` fail one target since a
//! common time. Two runs: agents without the summary (the report reads every
//! full `/status`, as before) and with it. Prints wall time, the report
//! process's peak RSS (VmHWM, polled), the most requests the API server had
//! in flight at once, and the bytes it sent (response bodies). It never
//! passes or fails on numbers.
//!
//!     cargo bench --bench fleet

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use netprobe::report::{RoundReport, RoundSummary};
use netprobe_sim::https::{HttpsServer, Reply, Seen};
use netprobe_sim::pki::{Ca, Validity};
use serde_json::{Value, json};

const TARGETS: usize = 20;

/// A real agent round (the simulated VNet), padded to [`TARGETS`] targets.
async fn agent_round() -> RoundReport {
    let vnet = netprobe::demo::DemoVnet::start().await.unwrap();
    let config = vnet.config().unwrap();
    let engine = netprobe::probe::Engine::with_tls(config.clone(), vnet.tls().unwrap());
    let obs = engine.run_round(std::time::SystemTime::now()).await;
    let mut r = netprobe::judge::round(&config, &obs, &netprobe::cluster::ClusterObservation::default());
    let base = r.targets.clone();
    let mut i = 0;
    while r.targets.len() < TARGETS {
        let mut t = base[i % base.len()].clone();
        t.name = format!("{}-{i}", t.name);
        r.targets.push(t);
        i += 1;
    }
    // A healthy fleet's round: every target healthy (the simulated VNet
    // breaks some on purpose); the pool that fails gets one failing target.
    for t in &mut r.targets {
        t.since = Some(r.started_at.clone());
        t.healthy = true;
        t.cause = netprobe::model::Cause::None;
        t.causes.clear();
        t.diagnosis = None;
    }
    r.healthy = true;
    r
}

fn pods(n: usize) -> String {
    let items: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "metadata": {"name": format!("netprobe-{i}"), "namespace": "netprobe",
                    "labels": {"app.kubernetes.io/name": "netprobe", "app.kubernetes.io/component": "agent",
                        "controller-revision-hash": "6d9f7c9b8", "pod-template-generation": "3"},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "netprobe", "uid": "0b6c", "controller": true}]},
                "spec": {"nodeName": node(i), "containers": [{"name": "netprobe", "image": "ghcr.io/netprobe/netprobe:0.1.0"}]},
                "status": {"phase": "Running", "podIP": format!("10.244.{}.{}", i / 250, i % 250 + 2),
                    "conditions": [{"type": "Ready", "status": if i % 100 == 21 { "False" } else { "True" }}]}
            })
        })
        .collect();
    json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}).to_string()
}

fn node(i: usize) -> String {
    format!("aks-{}-12345678-vmss{:06}", pool(i), i)
}

fn pool(i: usize) -> &'static str {
    [
        "sys", "cpu1", "cpu2", "cpu3", "cpu4", "cpu5", "cpu6", "cpu7", "cpu8", "gpu",
    ][i % 10]
}

/// The pods as the API server prints them (`as=Table`, no objects).
fn pods_table(n: usize) -> String {
    let rows: Vec<Value> = (0..n)
        .map(|i| {
            let ready = if i % 100 == 21 { "0/1" } else { "1/1" };
            json!({"cells": [format!("netprobe-{i}"), ready, "Running", 0, "3d", format!("10.244.{}.{}", i / 250, i % 250 + 2), node(i), "<none>", "<none>"]})
        })
        .collect();
    let cols: Vec<Value> = [
        "Name",
        "Ready",
        "Status",
        "Restarts",
        "Age",
        "IP",
        "Node",
        "Nominated Node",
        "Readiness Gates",
    ]
    .iter()
    .map(|c| json!({"name": c, "type": "string"}))
    .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "columnDefinitions": cols, "rows": rows})
        .to_string()
}

/// The nodes as the API server prints them (`as=Table`, no objects).
fn nodes_table(n: usize) -> String {
    let rows: Vec<Value> = (0..n)
        .map(|i| json!({"cells": [node(i), "Ready", "<none>", "30d", "v1.33.5"]}))
        .collect();
    let cols: Vec<Value> = ["Name", "Status", "Roles", "Age", "Version"]
        .iter()
        .map(|c| json!({"name": c, "type": "string"}))
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "columnDefinitions": cols, "rows": rows})
        .to_string()
}

/// A node's attributes as its agent reads them from its Node.
fn attrs(i: usize) -> std::collections::BTreeMap<String, String> {
    [
        ("pool", pool(i).to_string()),
        ("zone", format!("westeurope-{}", i % 3 + 1)),
        ("node_image", "AKSUbuntu-2204gen2containerd-202612.01.0".to_string()),
        (
            "vm_size",
            if pool(i) == "gpu" {
                "Standard_NC6s_v3"
            } else {
                "Standard_D4s_v5"
            }
            .to_string(),
        ),
        ("os_sku", "Ubuntu".to_string()),
        ("kubelet", "v1.33.5".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn nodes(n: usize) -> String {
    let items: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "metadata": {"name": node(i), "labels": {
                    "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": node(i),
                    "kubernetes.azure.com/agentpool": pool(i), "agentpool": pool(i),
                    "kubernetes.azure.com/mode": if i % 10 == 0 { "system" } else { "user" },
                    "topology.kubernetes.io/zone": format!("westeurope-{}", i % 3 + 1),
                    "topology.kubernetes.io/region": "westeurope",
                    "node.kubernetes.io/instance-type": if pool(i) == "gpu" { "Standard_NC6s_v3" } else { "Standard_D4s_v5" },
                    "kubernetes.azure.com/node-image-version": "AKSUbuntu-2204gen2containerd-202612.01.0",
                    "kubernetes.azure.com/os-sku": "Ubuntu",
                    "kubernetes.azure.com/cluster": "MC_rg_aks_westeurope"}},
                "status": {"nodeInfo": {"kubeletVersion": "v1.33.5"}}
            })
        })
        .collect();
    json!({"kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": items}).to_string()
}

struct Run {
    /// Bytes of the pod list, the node list and the agents' answers.
    lists_mb: (f64, f64),
    wall: Duration,
    peak_mib: f64,
    max_in_flight: usize,
    requests: u64,
    mb: f64,
    exit: Option<i32>,
}

async fn run(n: usize, with_summary: bool, round: &RoundReport) -> Run {
    let mut failing = round.clone();
    failing.targets[0].healthy = false;
    failing.targets[0].cause = netprobe::model::Cause::EndpointBlocked;
    failing.healthy = false;
    let docs = Arc::new([
        netprobe::render::json::render(round),
        netprobe::render::json::render(&failing),
        String::new(),
        String::new(),
        pods(n),
        nodes(n),
        serde_json::to_string(&RoundSummary::of(round, true)).unwrap(),
        pods_table(n),
        nodes_table(n),
    ]);
    // Each pool's summary (its agents' Node attributes differ by pool and zone).
    let summaries: Arc<Vec<String>> = Arc::new(
        (0..30)
            .map(|k| {
                let mut s = RoundSummary::of(if pool(k) == "gpu" { &failing } else { round }, false);
                s.node = attrs(k);
                serde_json::to_string(&s).unwrap()
            })
            .collect(),
    );
    let tables = std::env::var_os("NETPROBE_BENCH_NO_TABLES").is_none();
    let list_bytes = if tables {
        (docs[7].len() as f64 / 1e6, docs[8].len() as f64 / 1e6)
    } else {
        (docs[4].len() as f64 / 1e6, docs[5].len() as f64 / 1e6)
    };
    let ca = Ca::new("fake API server CA").unwrap();
    let leaf = ca.leaf(&["localhost"], Validity::Current).unwrap();
    let route = move |req: &Seen| -> Reply {
        let path = req.path.as_str();
        let table = tables && req.accept.as_deref().is_some_and(|a| a.contains("as=Table"));
        if path.starts_with("/api/v1/namespaces/netprobe/pods?") {
            return Reply::new(200, &docs[if table { 7 } else { 4 }]).header("content-type", "application/json");
        }
        if path.starts_with("/api/v1/nodes?") {
            return Reply::new(200, &docs[if table { 8 } else { 5 }]).header("content-type", "application/json");
        }
        let Some(rest) = path.strip_prefix("/api/v1/namespaces/netprobe/pods/netprobe-") else {
            return Reply::new(404, "{}");
        };
        let (i, what) = rest.split_once(":9469/proxy").unwrap_or(("0", ""));
        let i: usize = i.parse().unwrap_or(0);
        let gpu = pool(i) == "gpu";
        let summaries = summaries.clone();
        let reply = match what {
            "/status/summary" | "/status/summary?targets=all" if !with_summary => {
                Reply::new(404, r#"{"kind":"Status","reason":"NotFound","code":404}"#)
            }
            "/status/summary?targets=all" => Reply::new(200, &docs[6]),
            _ if i % 100 == 13 => Reply::new(
                503,
                r#"{"kind":"Status","status":"Failure","message":"error trying to reach service: dial tcp: connect: connection refused","reason":"ServiceUnavailable","code":503}"#,
            ),
            "/status/summary" => Reply::new(200, &summaries[i % 30]),
            "/status" => Reply::new(200, &docs[if gpu { 1 } else { 0 }]),
            _ => Reply::new(404, "{}"),
        };
        if i % 100 == 7 {
            reply.delayed(Duration::from_millis(300))
        } else {
            reply
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpsServer::serve_with(listener, &leaf, Arc::new(route)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: t\nclusters:\n- name: t\n  cluster:\n    server: https://localhost:{port}\n    certificate-authority-data: {}\ncontexts:\n- name: t\n  context:\n    cluster: t\n    user: u\nusers:\n- name: u\n  user:\n    token: bench\n",
            data_encoding::BASE64.encode(ca.cert_pem().as_bytes())
        ),
    )
    .unwrap();
    let start = Instant::now();
    let mut child =
        Command::new(std::env::var_os("NETPROBE_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_netprobe").into()))
            .args([
                "report",
                "-o",
                &std::env::var("NETPROBE_BENCH_OUTPUT").unwrap_or_else(|_| "human".into()),
                "--stale-after",
                "1h",
                "--kubeconfig",
            ])
            .arg(&kubeconfig)
            .env("HOME", "/nonexistent")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
    let pid = child.id();
    let mut peak: f64 = 0.0;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        let hwm = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| {
                l.strip_prefix("VmHWM:")
                    .map(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().unwrap_or(0.0))
            })
            .unwrap_or(0.0);
        peak = peak.max(hwm);
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let wall = start.elapsed();
    let stats = server.stats();
    Run {
        lists_mb: list_bytes,
        wall,
        peak_mib: peak / 1024.0,
        max_in_flight: stats.max_in_flight.load(Ordering::Relaxed),
        requests: stats.requests.load(Ordering::Relaxed),
        mb: stats.body_bytes.load(Ordering::Relaxed) as f64 / 1e6,
        exit: status.code(),
    }
}

fn main() {
    let n: usize = std::env::var("NETPROBE_BENCH_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let round = agent_round().await;
        println!(
            "netprobe report against a fake API server: {n} agent pods, {TARGETS} targets each (1% slow 300 ms, 1% 503, 1% not ready)"
        );
        println!(
            "full /status: {} bytes; summary: {} bytes\n",
            netprobe::render::json::render(&round).len(),
            serde_json::to_string(&RoundSummary::of(&round, false)).unwrap().len()
        );
        println!("| agents serve | wall | peak RSS (report) | API server: most in flight | requests | bytes sent (pod list + node list + agents) | exit |");
        println!("|---|---|---|---|---|---|---|");
        for (with_summary, label) in [(false, "full /status only (before)"), (true, "/status/summary (after)")] {
            let r = run(n, with_summary, &round).await;
            println!(
                "| {label} | {:.1} s | {:.1} MiB | {} | {} | {:.1} MB ({:.1} + {:.1} + {:.1}) | {:?} |",
                r.wall.as_secs_f64(),
                r.peak_mib,
                r.max_in_flight,
                r.requests,
                r.mb,
                r.lists_mb.0,
                r.lists_mb.1,
                r.mb - r.lists_mb.0 - r.lists_mb.1,
                r.exit
            );
        }
    });
}
