//! `netprobe report` end to end against a small fake API server over HTTPS
//! (certificate from a CA the test makes, a bearer token), reached through a
//! kubeconfig, answering with recorded API responses
//! (tests/testdata/k8s/pods-netprobe.json, nodes-linux.json) and, through
//! the pod proxy, with real `/status` documents of a round over the
//! simulated VNet.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use netprobe::demo::DemoVnet;
use netprobe_sim::https::{Reply, Seen};
use serde_json::Value;

const TOKEN: &str = "test-token-123";

fn testdata(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/testdata/k8s/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn json(status: u16, body: String) -> Reply {
    Reply::new(status, &body).header("content-type", "application/json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_reads_every_agent_through_the_api_server() {
    // Real /status documents: one round over the simulated VNet (it has
    // healthy and failing targets); a second node where one more target fails.
    let vnet = DemoVnet::start().await.unwrap();
    let round = common::round(vnet.config().unwrap(), vnet.tls().unwrap()).await;
    let status = netprobe::render::json::render(&round);
    let mut odd: Value = serde_json::from_str(&status).unwrap();
    let t = odd["targets"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|t| t["name"] == "acr-mlwsacr01")
        .unwrap();
    t["healthy"] = Value::Bool(false);
    t["cause"] = Value::String("endpoint_blocked".into());
    let odd = odd.to_string();
    // The agents serve their summaries (failing targets only, and a digest
    // of the target list); one spells the list out on request. (An older
    // agent's full /status is read in `report_distrusts_what_agents_send`.)
    let summary_of = |r: &netprobe::report::RoundReport, all| {
        serde_json::to_string(&netprobe::report::RoundSummary::of(r, all)).unwrap()
    };
    let summary = summary_of(&round, false);
    let summary_all = summary_of(&round, true);
    let odd_summary = summary_of(&serde_json::from_str(&odd).unwrap(), false);
    assert!(
        summary.len() * 10 < status.len(),
        "{} vs {}",
        summary.len(),
        status.len()
    );

    // The fake API server.
    let api = common::fake_api("localhost", move |req: &Seen| {
        if req.authorization.as_deref() != Some(&format!("Bearer {TOKEN}")) {
            return json(
                401,
                r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Unauthorized","code":401}"#.into(),
            );
        }
        let path = req.path.as_str();
        if path.starts_with("/api/v1/namespaces/netprobe/pods?") {
            json(200, testdata("pods-netprobe.json"))
        } else if path.starts_with("/api/v1/nodes?") {
            json(200, testdata("nodes-linux.json"))
        } else if path.ends_with(":9469/proxy/status/summary?targets=all") && !path.contains("b9rq4") {
            json(200, summary_all.clone())
        } else if path == "/api/v1/namespaces/netprobe/pods/netprobe-7xk2p:9469/proxy/status/summary"
            || path == "/api/v1/namespaces/netprobe/pods/netprobe-m2zt8:9469/proxy/status/summary"
        {
            json(200, summary.clone())
        } else if path == "/api/v1/namespaces/netprobe/pods/netprobe-b9rq4:9469/proxy/status/summary" {
            json(200, odd_summary.clone())

        } else if path.ends_with("netprobe-b9rq4:9469/proxy/status") {
            // The full rounds, for `--node`.
            json(200, odd.clone())
        } else if path.ends_with("netprobe-7xk2p:9469/proxy/status") || path.ends_with("netprobe-m2zt8:9469/proxy/status") {
            json(200, status.clone())
        } else if path.contains(":9469/proxy/status") {
            // The API server's answer when the pod does not answer.
            json(503, r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"error trying to reach service: dial tcp 10.244.2.4:9469: connect: connection refused","reason":"ServiceUnavailable","code":503}"#.into())
        } else {
            json(
                404,
                r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}"#.into(),
            )
        }
    })
    .await;
    let port = api.port;

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: test\nclusters:\n- name: test\n  cluster:\n    server: https://localhost:{port}\n    certificate-authority-data: {}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: sre\nusers:\n- name: sre\n  user:\n    token: {TOKEN}\n",
            base64(api.ca.cert_pem().as_bytes())
        ),
    )
    .unwrap();

    let run = |args: &[&str]| {
        let kc = kubeconfig.clone();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_netprobe"))
                .arg("report")
                .arg("--kubeconfig")
                .arg(&kc)
                .args(&args)
                .env_remove("KUBECONFIG")
                .env("HOME", "/nonexistent")
                .output()
                .unwrap()
        })
    };
    let o = run(&["-o", "json", "--stale-after", "1h"]).await.unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let states: BTreeMap<String, String> = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["node"].as_str().unwrap().to_string(),
                n["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        states,
        BTreeMap::from([
            ("aks-gpupool-87654321-vmss000000".into(), "ok".into()),
            ("aks-gpupool-87654321-vmss000001".into(), "not_ready".into()),
            ("aks-nodepool1-12345678-vmss000000".into(), "ok".into()),
            ("aks-nodepool1-12345678-vmss000001".into(), "ok".into()),
            ("aks-nodepool1-12345678-vmss000002".into(), "missing".into()),
            ("aks-nodepool1-12345678-vmss000003".into(), "unreachable".into()),
        ])
    );
    let acr = v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "acr-mlwsacr01")
        .unwrap();
    assert_eq!(
        (acr["failing_nodes"].as_u64(), acr["total_nodes"].as_u64()),
        (Some(1), Some(3))
    );
    assert_eq!(acr["causes"]["endpoint_blocked"], 1);
    // Every request carried the token; the proxy paths were used.
    let paths: Vec<String> = api.seen.lock().unwrap().iter().map(|s| s.path.clone()).collect();
    assert!(
        paths
            .iter()
            .any(|p| p.contains("labelSelector=app.kubernetes.io%2Fname%3Dnetprobe")),
        "{paths:?}"
    );
    // Summaries only, and the target list asked of one agent.
    assert!(
        paths
            .iter()
            .any(|p| p.ends_with("netprobe-7xk2p:9469/proxy/status/summary"))
            && !paths.iter().any(|p| p.ends_with(":9469/proxy/status"))
            && paths.iter().filter(|p| p.ends_with("?targets=all")).count() == 1,
        "{paths:?}"
    );

    // Why this node: the only one on the new node image (the Nodes'
    // labels, read by the report); the JSON carries it as data.
    let why = v["explanations"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["target"] == "acr-mlwsacr01"))
        .expect("an explanation for acr-mlwsacr01");
    assert_eq!(
        (
            why["target"].as_str(),
            why["attribute"].as_str(),
            why["values"][0].as_str()
        ),
        (
            Some("acr-mlwsacr01"),
            Some("node_image"),
            Some("AKSUbuntu-2204gen2containerd-202612.01.0")
        ),
        "{why}"
    );
    // The human form leads with it, groups the failing node, and keeps the
    // agents' states apart.
    let o = run(&["--stale-after", "1h"]).await.unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text.contains("WHY THESE NODES\n  acr-mlwsacr01 [endpoint_blocked] fails on 1 node(s) of node image\n")
            && why["text"]
                .as_str()
                .is_some_and(|t| t.contains("and on none of the 2 healthy ones: the node image")),
        "{text}"
    );
    assert!(
        text.contains("\n  all 3 node(s): workspace-notebooks [record_missing], ")
            && text.contains(
                "\n  1 node(s) also fail: acr-mlwsacr01 [endpoint_blocked]\n    aks-nodepool1-12345678-vmss000001\n"
            ),
        "{text}"
    );
    assert!(
        text.contains("unreachable") && text.contains("connection refused"),
        "{text}"
    );
    // One node in full: its agent's whole last round, its diagnoses.
    let o = run(&["--stale-after", "1h", "--node", "aks-gpupool-87654321-vmss000000"])
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        text.contains("=== node aks-gpupool-87654321-vmss000000 (--node): its agent's last round ===")
            && text.contains("Findings ("),
        "{text}"
    );

    // As a kubectl plugin: the binary installed as `kubectl-netprobe` on
    // the PATH (as krew installs it), run by the real kubectl, honouring
    // KUBECONFIG, `--context`, `-n` and `-o yaml|wide|json`.
    let bin = tempfile::tempdir().unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_netprobe"), bin.path().join("kubectl-netprobe")).unwrap();
    let path = format!("{}:{}", bin.path().display(), std::env::var("PATH").unwrap_or_default());
    let plugin = |args: &[&str]| {
        let (kc, path) = (kubeconfig.clone(), path.clone());
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            Command::new("kubectl")
                .arg("netprobe")
                .args(&args)
                .env("KUBECONFIG", &kc)
                .env("PATH", path)
                .env("HOME", "/nonexistent")
                .output()
                .expect("kubectl is on this machine")
        })
    };
    let o = plugin(&[
        "report",
        "--context",
        "test",
        "-n",
        "netprobe",
        "--stale-after",
        "1h",
        "-o",
        "yaml",
    ])
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(o.status.code(), Some(1), "{text}{}", String::from_utf8_lossy(&o.stderr));
    let y: Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(y["nodes"].as_array().map(Vec::len), Some(6), "{text}");
    let o = plugin(&["report", "--stale-after", "1h", "-o", "wide"]).await.unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(text.contains("NODE") && text.contains("netprobe-7xk2p"), "{text}");
    let o = plugin(&["report", "--context", "no-such-context"]).await.unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no-such-context"));
    let o = plugin(&["--help"]).await.unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("Usage: kubectl netprobe"));

    // A wrong token: the API server refuses, netprobe says so and exits 2.
    let bad = dir.path().join("bad-kubeconfig");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&kubeconfig).unwrap().replace(TOKEN, "wrong"),
    )
    .unwrap();
    let err = report_fails(bad).await;
    assert!(
        err.contains("cannot list the agent pods in namespace netprobe")
            && err.contains(&format!("API server https://localhost:{port}/"))
            && err.contains("401 Unauthorized"),
        "{err}"
    );
    // Said once, by netprobe: not kube's own error log besides.
    assert_eq!(err.lines().count(), 1, "{err}");
    netprobe_testkit::assert_readable(&err);

    // An API server that is not there: the server's URL and the root cause
    // (the refused connection), not "client error (Connect)" alone.
    let closed = common::free_port();
    let gone = dir.path().join("gone-kubeconfig");
    std::fs::write(
        &gone,
        std::fs::read_to_string(&kubeconfig)
            .unwrap()
            .replace(&format!("localhost:{port}"), &format!("127.0.0.1:{closed}")),
    )
    .unwrap();
    let err = report_fails(gone).await;
    assert!(
        err.contains(&format!("API server https://127.0.0.1:{closed}/")) && err.contains("Connection refused"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// `netprobe report --kubeconfig <kubeconfig>`, which must exit 2: its stderr.
async fn report_fails(kubeconfig: std::path::PathBuf) -> String {
    let o = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_netprobe"))
            .args(["report", "--kubeconfig"])
            .arg(&kubeconfig)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(2), "{err}");
    err
}

/// The operator's `report` does not trust what agents send: a `/status`
/// over the size cap is an error on that node (read no further), an agent's
/// strings reach the terminal with their control characters escaped, a
/// finished pod (a Job's, a Helm test's) is not read, and the default
/// selector names the DaemonSet's agents only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_distrusts_what_agents_send() {
    let vnet = DemoVnet::start().await.unwrap();
    let round = common::round(vnet.config().unwrap(), vnet.tls().unwrap()).await;
    let mut hostile: Value = serde_json::from_str(&netprobe::render::json::render(&round)).unwrap();
    let t = hostile["targets"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|t| t["healthy"] == false)
        .unwrap();
    t["name"] = Value::String("evil\u{1b}]0;pwned\u{7}\u{1b}[2J\nFAKE LINE".into());
    let hostile = hostile.to_string();
    let huge = format!(
        "{{\"pad\": \"{}\"}}",
        " ".repeat(netprobe::fleet::MAX_STATUS_BYTES + 1024)
    );

    let mut pods: Value = serde_json::from_str(&testdata("pods-netprobe.json")).unwrap();
    let items = pods["items"].as_array_mut().unwrap();
    items.truncate(3);
    items[2]["status"]["phase"] = Value::String("Succeeded".into());
    let pods = pods.to_string();

    let api = common::fake_api("localhost", move |req: &Seen| {
        let path = req.path.as_str();
        if path.starts_with("/api/v1/namespaces/netprobe/pods?") {
            json(200, pods.clone())
        } else if path.starts_with("/api/v1/nodes?") {
            json(
                403,
                r#"{"kind":"Status","status":"Failure","reason":"Forbidden","code":403}"#.into(),
            )
        } else if path == "/api/v1/namespaces/netprobe/pods/netprobe-7xk2p:9469/proxy/status" {
            json(200, huge.clone())
        } else if path == "/api/v1/namespaces/netprobe/pods/netprobe-b9rq4:9469/proxy/status" {
            json(200, hostile.clone())
        } else {
            json(
                404,
                r#"{"kind":"Status","status":"Failure","reason":"NotFound","code":404}"#.into(),
            )
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: t\nclusters:\n- name: t\n  cluster:\n    server: https://localhost:{}\n    certificate-authority-data: {}\ncontexts:\n- name: t\n  context:\n    cluster: t\n    user: u\nusers:\n- name: u\n  user:\n    token: {TOKEN}\n",
            api.port,
            base64(api.ca.cert_pem().as_bytes())
        ),
    )
    .unwrap();
    let o = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_netprobe"))
            .args(["report", "--stale-after", "1h", "--kubeconfig"])
            .arg(&kubeconfig)
            .env_remove("KUBECONFIG")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(o.status.code(), Some(1), "{text}{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "a raw escape reached the terminal:\n{text}"
    );
    assert!(text.contains("evil\\u{1b}]0;pwned"), "{text}");
    assert!(
        !text.lines().any(|l| l.starts_with("FAKE LINE")),
        "a forged line:\n{text}"
    );
    assert!(text.contains("larger than 16 MiB"), "{text}");
    let paths: Vec<String> = api.seen.lock().unwrap().iter().map(|s| s.path.clone()).collect();
    assert!(
        paths
            .iter()
            .any(|p| p
                .contains("labelSelector=app.kubernetes.io%2Fname%3Dnetprobe%2Capp.kubernetes.io%2Fcomponent%3Dagent")),
        "{paths:?}"
    );
    assert!(
        !paths.iter().any(|p| p.contains("netprobe-m2zt8")),
        "a finished pod was read: {paths:?}"
    );
    assert!(!text.contains("aks-gpupool-87654321-vmss000000"), "{text}");
}
