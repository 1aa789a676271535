//! Alert rules and the dashboard, checked with the real tools: promtool
//! (check and unit tests), kubectl kustomize, and a real Prometheus server
//! that scrapes a running agent and evaluates every panel and alert.

mod common;

use netprobe_sim::private_ip as pe;
use netprobe_testkit::http_get;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use netprobe::agent::{AgentOptions, run_until};
use netprobe::config::Config;
use netprobe_sim::bind_same_port;
use netprobe_sim::dns::Records;
use netprobe_sim::https::{HttpsServer, Reply};
use netprobe_sim::pki::{Ca, Validity};
use serde_json::Value;

use common::{chain, dns};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tool(name: &str) -> Command {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(found, "`{name}` is required for this test (scripts/test installs it)");
    Command::new(name)
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run tool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

fn yaml_value(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn rules_pass_promtool_check_and_unit_tests() {
    let dir = root().join("deploy/prometheus");
    let out = run_ok(
        tool("promtool")
            .args(["check", "rules", "netprobe-rules.yaml"])
            .current_dir(&dir),
    );
    let rules = yaml_value(&dir.join("netprobe-rules.yaml"));
    let count: usize = rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["rules"].as_array().unwrap().len())
        .sum();
    assert!(out.contains(&format!("SUCCESS: {count} rules found")), "{out}");
    let out = run_ok(
        tool("promtool")
            .args(["test", "rules", "netprobe-rules.test.yaml"])
            .current_dir(&dir),
    );
    assert!(out.contains("SUCCESS"), "{out}");
}

/// The demo's Prometheus configuration is valid for the real promtool.
#[test]
fn the_demo_prometheus_config_is_valid() {
    run_ok(
        tool("promtool")
            .args(["check", "config"])
            .arg(root().join("deploy/prometheus/demo.yml")),
    );
}

#[test]
fn prometheus_rule_and_dashboard_copies_match_their_sources() {
    let rules = yaml_value(&root().join("deploy/prometheus/netprobe-rules.yaml"));
    let wrapped = yaml_value(&root().join("deploy/components/prometheus-operator/prometheusrule.yaml"));
    assert_eq!(wrapped["kind"], "PrometheusRule");
    assert_eq!(
        wrapped["spec"]["groups"], rules["groups"],
        "run scripts/gen: prometheusrule.yaml differs from the rules file"
    );
    let a = std::fs::read(root().join("dashboards/netprobe.json")).unwrap();
    for copy in [
        "deploy/components/grafana-dashboard/netprobe.json",
        "deploy/helm/netprobe/files/netprobe.json",
    ] {
        let b = std::fs::read(root().join(copy)).unwrap();
        assert!(a == b, "copy dashboards/netprobe.json to {copy}");
    }
}

/// Every generated file (the version stamps, the catch-all's cause filter,
/// the rules' and the dashboard's copies) is what scripts/gen writes today.
#[test]
fn generated_files_are_current() {
    let generated = xtask::generate(&root()).unwrap();
    assert!(generated.len() >= 9, "{generated:?}");
    let stale = xtask::stale(&root()).unwrap();
    assert!(stale.is_empty(), "stale (run scripts/gen): {stale:?}");
}

/// Each cause's alert (`Cause::alert`, which generates the catch-all's
/// filter) is an alert of the rules file, and the chart's version is the
/// crate's.
#[test]
fn the_catalogue_names_alerts_that_exist() {
    let rules = std::fs::read_to_string(root().join(xtask::rules::RULES)).unwrap();
    for c in netprobe::model::Cause::ALL {
        if let Some(alert) = c.alert() {
            assert!(
                rules.contains(&format!("- alert: {alert}\n")),
                "{}: no alert {alert}",
                c.as_str()
            );
        }
    }
    let chart = std::fs::read_to_string(root().join("deploy/helm/netprobe/Chart.yaml")).unwrap();
    assert!(chart.contains(&format!("appVersion: \"{}\"", env!("CARGO_PKG_VERSION"))));
}

/// A Prometheus duration ("1h30m") as seconds, read independently of the
/// generator; an ISO 8601 one ("PT1H30M") reads the same once lower-cased.
fn seconds(d: &str) -> u64 {
    let (mut total, mut n) = (0, 0);
    for c in d.chars() {
        match c {
            '0'..='9' => n = n * 10 + u64::from(c.to_digit(10).unwrap()),
            'h' => (total, n) = (total + n * 3600, 0),
            'm' => (total, n) = (total + n * 60, 0),
            's' => (total, n) = (total + n, 0),
            _ => panic!("{d}"),
        }
    }
    total
}

fn iso_seconds(iso: &str) -> u64 {
    seconds(
        &iso.strip_prefix("PT")
            .unwrap_or_else(|| panic!("{iso}"))
            .to_ascii_lowercase(),
    )
}

/// The Azure Monitor template holds every rule of the rules file, rule by
/// rule: name, expression, duration, labels, annotations, severity.
#[test]
fn azure_monitor_rule_groups_match_the_rules_file() {
    let rules = yaml_value(&root().join("deploy/prometheus/netprobe-rules.yaml"));
    let arm: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("deploy/azure/netprobe-rules.json")).unwrap())
            .unwrap();
    let groups = rules["groups"].as_array().unwrap();
    let resources = arm["resources"].as_array().unwrap();
    assert_eq!(
        resources.len(),
        groups.len(),
        "one prometheusRuleGroups resource per group"
    );
    for k in [
        "azureMonitorWorkspaceResourceId",
        "clusterResourceId",
        "clusterName",
        "actionGroupResourceId",
    ] {
        assert!(arm["parameters"][k].is_object(), "parameter {k}");
    }
    for (g, res) in groups.iter().zip(resources) {
        let name = g["name"].as_str().unwrap();
        assert_eq!(res["type"], "Microsoft.AlertsManagement/prometheusRuleGroups");
        assert!(res["name"].as_str().unwrap().contains(name), "{name}");
        assert_eq!(res["properties"]["clusterName"], "[parameters('clusterName')]");
        let scopes = res["properties"]["scopes"].as_array().unwrap();
        assert!(
            scopes
                .iter()
                .any(|s| s == "[parameters('azureMonitorWorkspaceResourceId')]")
        );
        let want = g["rules"].as_array().unwrap();
        let have = res["properties"]["rules"].as_array().unwrap();
        assert_eq!(want.len(), have.len(), "group {name}: rule count");
        for (w, h) in want.iter().zip(have) {
            let id = w["alert"].as_str().or(w["record"].as_str()).unwrap();
            assert_eq!(h["alert"], w["alert"], "{id}");
            assert_eq!(h["record"], w["record"], "{id}");
            assert_eq!(
                h["expression"].as_str().unwrap().trim(),
                w["expr"].as_str().unwrap().trim(),
                "{id}: expression"
            );
            match w["for"].as_str() {
                Some(d) => assert_eq!(iso_seconds(h["for"].as_str().unwrap()), seconds(d), "{id}: for"),
                None => assert!(h["for"].is_null(), "{id}: for"),
            }
            let labels = |v: &Value| v.as_object().cloned().unwrap_or_default();
            assert_eq!(labels(&h["labels"]), labels(&w["labels"]), "{id}: labels");
            assert_eq!(
                labels(&h["annotations"]),
                labels(&w["annotations"]),
                "{id}: annotations"
            );
            if w["alert"].is_string() {
                let sev = match w["labels"]["severity"].as_str().unwrap() {
                    "critical" => 0,
                    "warning" => 2,
                    other => panic!("{id}: severity {other}"),
                };
                assert_eq!(h["severity"], sev, "{id}: severity");
                assert_eq!(h["actions"], "[variables('actions')]", "{id}: action group");
            }
        }
    }
}

#[test]
fn kustomize_renders_the_components() {
    let out = netprobe_testkit::k8s::kustomize_with(
        &root(),
        &[],
        &[
            "deploy/components/grafana-dashboard",
            "deploy/components/prometheus-operator",
        ],
    );
    let docs = netprobe_testkit::k8s::docs(&out);
    let kinds: BTreeSet<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, BTreeSet::from(["ConfigMap", "PodMonitor", "PrometheusRule"]));
    let cm = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
    let embedded: Value = serde_json::from_str(cm["data"]["netprobe.json"].as_str().unwrap()).unwrap();
    assert_eq!(embedded["uid"], "netprobe-private-dns");
}

fn dashboard() -> Value {
    serde_json::from_slice(&std::fs::read(root().join("dashboards/netprobe.json")).unwrap()).unwrap()
}

/// Every query of every panel.
fn panel_queries(d: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push((
                p["title"].as_str().unwrap().to_string(),
                t["expr"].as_str().unwrap().to_string(),
            ));
        }
    }
    out
}

#[test]
fn dashboard_is_importable_and_templated() {
    let d = dashboard();
    assert_eq!(d["uid"], "netprobe-private-dns");
    assert!(d["schemaVersion"].as_u64().unwrap() >= 36, "Grafana 10+ schema");
    let vars: Vec<&str> = d["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(vars, ["datasource", "cluster", "node", "service", "target"]);
    let mut ids = BTreeSet::new();
    // Core Grafana panel types only: Azure Managed Grafana has no plugin of ours.
    const CORE: &[&str] = &[
        "row",
        "stat",
        "table",
        "timeseries",
        "bargauge",
        "gauge",
        "text",
        "state-timeline",
    ];
    for p in d["panels"].as_array().unwrap() {
        assert!(ids.insert(p["id"].as_u64().unwrap()), "duplicate panel id");
        let kind = p["type"].as_str().unwrap();
        assert!(
            CORE.contains(&kind),
            "{}: panel type {kind} is not core Grafana",
            p["title"]
        );
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        for t in p["targets"].as_array().unwrap() {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        }
    }
    for (title, expr) in panel_queries(&d) {
        assert!(
            expr.contains("node=~\"$node\""),
            "{title}: not filtered by node: {expr}"
        );
        if expr.contains("rate(") {
            assert!(expr.contains("[$__rate_interval]"), "{title}: {expr}");
        }
    }
}

/// Replaces Grafana's variables the way Grafana would with "All" selected.
fn substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "15s")
        .replace("$cluster", ".*")
        .replace("$node", ".*")
        .replace("$service", ".*")
        .replace("$target", ".*")
}

async fn api(addr: SocketAddr, path: &str) -> Value {
    let (code, body) = http_get(addr, path).await;
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{path}: HTTP {code}: {body}"));
    v
}

struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_prometheus(agent: SocketAddr) -> Prometheus {
    let rules = root().join("deploy/prometheus/netprobe-rules.yaml");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: netprobe\n    static_configs:\n      - targets: [\"{agent}\"]\n        labels:\n          node: node-a\n          cluster: lab\n",
        rules.display()
    );
    start_prometheus_with(&config).await
}

async fn start_prometheus_with(config: &str) -> Prometheus {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let port = common::free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let child = tool("prometheus")
        .args([
            &format!("--config.file={}", dir.path().join("prometheus.yml").display()),
            &format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            &format!("--web.listen-address={addr}"),
            "--log.level=error",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start prometheus");
    let p = Prometheus { child, addr, _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_get(addr, "/-/ready").await.0 != 200 {
        assert!(Instant::now() < deadline, "prometheus did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    p
}

async fn query(prom: SocketAddr, expr: &str) -> Value {
    api(
        prom,
        &format!("/api/v1/query?query={}", netprobe::text::query_value(expr)),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus_evaluates_every_panel_and_the_expected_alerts_with_compact_metrics() {
    panels_and_alerts_on_a_real_prometheus("compact").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus_evaluates_every_panel_and_the_expected_alerts_with_full_metrics() {
    panels_and_alerts_on_a_real_prometheus("full").await;
}

async fn panels_and_alerts_on_a_real_prometheus(metric_set: &str) {
    // Lab: `good` is healthy; `bad` is private through Azure DNS but public
    // through the pod path, whose public endpoint refuses the node (403).
    let ca = Ca::new("prometheus e2e CA").unwrap();
    let public = IpAddr::from([127, 0, 200, 101]);
    let (port, listeners) = bind_same_port(&[pe(101), public]).await.unwrap();
    let leaf = ca.leaf(&["*.azurecr.io"], Validity::Current).unwrap();
    let mut listeners = listeners.into_iter();
    let _private_ep = HttpsServer::serve(
        listeners.next().unwrap(),
        &leaf,
        Reply::acr_challenge("good.azurecr.io"),
    )
    .unwrap();
    let _public_ep = HttpsServer::serve(listeners.next().unwrap(), &leaf, Reply::acr_denied()).unwrap();
    let mut azure = Records::new();
    chain(&mut azure, "good.azurecr.io", "good.privatelink.azurecr.io", &[pe(101)]);
    chain(&mut azure, "bad.azurecr.io", "bad.privatelink.azurecr.io", &[pe(101)]);
    let mut system = azure.clone();
    chain(
        &mut system,
        "bad.privatelink.azurecr.io",
        "bad.eastus.cloudapp.example",
        &[public],
    );
    let azure = dns(azure).await;
    let system = dns(system).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
    let yaml = format!(
        "metrics: {metric_set}\ninterval: 500ms\ntimeout: 1s\nresolvers:\n  - name: system\n    servers: [\"{}\"]\n  - name: azure\n    servers: [\"{}\"]\nprivate_ranges: [127.0.10.0/24]\ntls:\n  extra_ca_file: ca.pem\ntargets:\n  - {{fqdn: good.azurecr.io, name: good, service: acr, port: {port}}}\n  - {{fqdn: bad.azurecr.io, name: bad, service: acr, port: {port}}}\n",
        system.addr(),
        azure.addr()
    );
    let path = dir.path().join("netprobe.yaml");
    std::fs::write(&path, yaml).unwrap();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let (tx, bound) = tokio::sync::oneshot::channel();
    let cfg = Config::load(&path).unwrap();
    let agent_task = tokio::spawn(run_until(
        cfg,
        AgentOptions {
            config_path: Some(path.clone()),
            listen_override: Some("127.0.0.1:0".parse().unwrap()),
            on_listen: Some(tx),
            // The node's pool and zone, for the panel that groups failing nodes.
            cluster: netprobe::cluster::ClusterContext {
                node: Some(netprobe::report::NodeInfo {
                    name: "aks-nodepool1-0".into(),
                    zone: Some("eastus-1".into()),
                    attrs: [("pool".to_string(), "nodepool1".to_string())].into_iter().collect(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            min_interval: std::time::Duration::ZERO,
            node_condition: false,
        },
        stop_rx,
    ));
    let agent = bound.await.unwrap();

    let prom = start_prometheus(agent).await;
    // Enough scrapes for rate() over 15s.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = query(prom.addr, "count_over_time(netprobe_rounds_total[1m])").await;
        let n: f64 = v["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0.0);
        if n >= 6.0 {
            break;
        }
        assert!(Instant::now() < deadline, "prometheus did not scrape netprobe: {v}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Every panel query evaluates without error, and returns data.
    let d = dashboard();
    let mut empty = Vec::new();
    for (title, expr) in panel_queries(&d) {
        let e = substitute(&expr);
        let v = query(prom.addr, &e).await;
        assert_eq!(v["status"], "success", "panel {title:?}: {e}\n{v}");
        if v["data"]["result"].as_array().map(|r| r.is_empty()).unwrap_or(true) {
            empty.push(format!("{title}: {e}"));
        }
    }
    assert!(empty.is_empty(), "panels without data:\n{}", empty.join("\n"));
    // The matrix shows the bad target unhealthy on node-a and the good one healthy.
    let v = query(
        prom.addr,
        &substitute(
            &panel_queries(&d)
                .into_iter()
                .find(|(t, _)| t == "Node × target health")
                .unwrap()
                .1,
        ),
    )
    .await;
    let cells: BTreeSet<(String, String, String)> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["metric"]["node"].as_str().unwrap().to_string(),
                r["metric"]["target"].as_str().unwrap().to_string(),
                r["value"][1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        cells,
        BTreeSet::from([
            ("node-a".into(), "bad".into(), "0".into()),
            ("node-a".into(), "good".into(), "1".into())
        ])
    );

    // The variables' label_values() queries return values.
    for var in d["templating"]["list"].as_array().unwrap() {
        let Some(q) = var["definition"].as_str() else { continue };
        let inner = q
            .strip_prefix("label_values(")
            .and_then(|s| s.strip_suffix(')'))
            .unwrap();
        let (selector, label) = inner.rsplit_once(", ").unwrap();
        let v = api(
            prom.addr,
            &format!(
                "/api/v1/label/{label}/values?match[]={}",
                netprobe::text::query_value(&substitute(selector))
            ),
        )
        .await;
        assert_eq!(v["status"], "success", "{q}: {v}");
        assert!(
            !v["data"].as_array().unwrap().is_empty(),
            "variable {q} has no values: {v}"
        );
    }

    // Alerts: pending (their `for` has not elapsed) or firing, for `bad`
    // only, and one for it: its cause's, naming the broken path (`system`,
    // which answers publicly), not the one that works.
    let want: BTreeSet<(String, String)> = [("NetprobeDNSPathMismatch", "bad")]
        .iter()
        .map(|(a, t)| (a.to_string(), t.to_string()))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    let got = loop {
        let v = api(prom.addr, "/api/v1/alerts").await;
        let alerts = v["data"]["alerts"].as_array().cloned().unwrap_or_default();
        let got: BTreeSet<(String, String)> = alerts
            .iter()
            .filter(|a| matches!(a["state"].as_str(), Some("pending" | "firing")))
            .map(|a| {
                (
                    a["labels"]["alertname"].as_str().unwrap_or("").to_string(),
                    a["labels"]["target"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        if got == want || Instant::now() > deadline {
            for a in &alerts {
                assert_eq!(a["labels"]["node"], "node-a", "{a}");
                assert_eq!(a["labels"]["resolver"], "system", "{a}");
                let desc = a["annotations"]["description"].as_str().unwrap_or("");
                assert!(desc.contains("node-a") && desc.contains("bad.azurecr.io"), "{desc}");
                assert!(
                    a["annotations"]["runbook_url"]
                        .as_str()
                        .unwrap_or("")
                        .contains("runbook.md#"),
                    "{a}"
                );
            }
            break got;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(got, want);

    stop.send(true).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), agent_task).await;
}

/// `netprobe demo --serve` under the project's rules, on a real Prometheus:
/// its unhealthy targets (two resolvers failing for some, broken registry
/// data endpoints, a path that does not forward) raise one per-target alert
/// each on the node, none twice, each naming a resolver that fails; a
/// target without one is covered by its resolver's NetprobeResolverDown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_raises_one_alert_per_broken_target() {
    let port = common::free_port();
    let agent: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut demo = Command::new(env!("CARGO_BIN_EXE_netprobe"))
        .args([
            "demo",
            "--serve",
            "--listen",
            &agent.to_string(),
            "--interval",
            "1s",
            "--flap",
            "1h",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // It says where it listens, and how to watch it with Prometheus.
    let stderr = demo.stderr.take().unwrap();
    let said = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stderr).lines();
        let said = [lines.next(), lines.next()].map(|l| l.and_then(Result::ok).unwrap_or_default());
        // Keep reading, so that the demo's logs never fill the pipe.
        std::thread::spawn(move || lines.for_each(drop));
        said
    })
    .await
    .unwrap();
    assert!(said[0].contains(&format!("http://{agent}/")), "{said:?}");
    assert!(said[1].contains("--config.file=deploy/prometheus/demo.yml"), "{said:?}");
    struct Kill<'a>(&'a mut Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _demo = Kill(&mut demo);
    // The Prometheus configuration shipped for the demo, pointed at this port.
    let shipped = std::fs::read_to_string(root().join("deploy/prometheus/demo.yml")).unwrap();
    let config = shipped
        .replace("127.0.0.1:9469", &agent.to_string())
        .replace(
            "[netprobe-rules.yaml]",
            &format!(
                "[\"{}\"]",
                root().join("deploy/prometheus/netprobe-rules.yaml").display()
            ),
        )
        .replace("10s", "1s");
    assert_ne!(config, shipped);
    let prom = start_prometheus_with(&config).await;
    let per_target = r#"ALERTS{alertstate=~"pending|firing", target!=""}"#;
    let deadline = Instant::now() + Duration::from_secs(60);
    let (unhealthy, alerts) = loop {
        let unhealthy = query(prom.addr, "netprobe_target_healthy == 0").await["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let alerts = query(prom.addr, per_target).await["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        // Rules evaluate every second: a few evaluations after the first
        // scrape, every alert is pending.
        if unhealthy.len() >= 5 && alerts.len() + 1 >= unhealthy.len() || Instant::now() > deadline {
            tokio::time::sleep(Duration::from_secs(3)).await;
            let alerts = query(prom.addr, per_target).await["data"]["result"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            break (unhealthy, alerts);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let label = |v: &Value, k: &str| v["metric"][k].as_str().unwrap_or("").to_string();
    let mut per: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for a in &alerts {
        per.entry(label(a, "target")).or_default().push(label(a, "alertname"));
    }
    for a in &alerts {
        assert_eq!(label(a, "node"), "demo-node", "{a}");
    }
    let twice: Vec<_> = per.iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(twice.is_empty(), "targets with more than one alert: {twice:?}");
    // Each DNS alert names a resolver whose own verdict for the target fails.
    for a in alerts.iter().filter(|a| !label(a, "resolver").is_empty()) {
        let q = format!(
            "netprobe_dns_healthy{{target=\"{}\", resolver=\"{}\"}}",
            label(a, "target"),
            label(a, "resolver")
        );
        let v = query(prom.addr, &q).await;
        assert_eq!(v["data"]["result"][0]["value"][1], "0", "{a}: {v}");
    }
    // Every unhealthy target has its alert, or its cause's resolver is down.
    let uncovered = query(
        prom.addr,
        &format!(
            "(netprobe_target_healthy == 0) unless on (target) {per_target} unless on (target) \
             (netprobe_target_cause * on (job, instance, resolver) group_left () (netprobe_resolver_up == 0))"
        ),
    )
    .await;
    assert_eq!(
        uncovered["data"]["result"].as_array().map(Vec::len),
        Some(0),
        "unhealthy targets without an alert: {uncovered}\nalerts: {per:?}\nunhealthy: {}",
        unhealthy.len()
    );
    assert!(unhealthy.len() >= 5, "{unhealthy:?}");
}
