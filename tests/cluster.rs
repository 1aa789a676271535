//! Kubernetes code against recorded API responses (tests/testdata/k8s), served
//! through a `tower-test` mock: no API server runs. Covers the Node's region,
//! `region: auto`, the region-mismatch finding, the inference-router check,
//! 403 and 404, Events on health changes (through the agent), and the
//! degradation when there is no cluster at all.

mod common;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Method, Request, Response};
use http_body_util::BodyExt;
use kube::client::Body;
use netprobe::agent::{AgentOptions, run_until};
use netprobe::cluster::{Cluster, ClusterContext, ClusterError, event_for_change};
use netprobe::config::{Config, LoadOptions};
use netprobe_sim::dns::{Entry, Records};
use netprobe_sim::https::Reply;
use netprobe_sim::pki::Ca;
use serde_json::Value;

use common::{chain, dns, endpoint};

const NODE: &str = "aks-nodepool1-12345678-vmss000000";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/testdata/k8s")
            .join(name),
    )
    .unwrap()
}

/// One request the mock API server saw.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    path: String,
    content_type: Option<String>,
    body: Value,
}

type Routes = Vec<(Method, String, u16, &'static str)>;

/// A mocked API server: answers (method, path) from `routes` with a recorded
/// response (404 Status otherwise) and keeps every request.
fn mock_api(routes: Routes) -> (Cluster, Arc<Mutex<Vec<Seen>>>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Some((req, send)) = handle.next_request().await {
            let method = req.method().clone();
            let path = req.uri().path().to_string();
            let content_type = req
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let bytes = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            log.lock().unwrap().push(Seen {
                method: method.clone(),
                path: path.clone(),
                content_type,
                body,
            });
            let (code, file) = routes
                .iter()
                .find(|(m, p, _, _)| *m == method && *p == path)
                .map(|(_, _, c, f)| (*c, *f))
                .unwrap_or((404, "status-404-service.json"));
            let resp = Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(Body::from(fixture(file)))
                .unwrap();
            send.send_response(resp);
        }
    });
    let client = kube::Client::new(service, "default");
    (Cluster::from_client(client, NODE), seen)
}

/// A cluster context that reads through `cluster`, with no Node read yet.
fn reading(cluster: Cluster) -> ClusterContext {
    ClusterContext {
        cluster: Some(cluster),
        node: None,
        ..ClusterContext::default()
    }
}

fn node_route(file: &'static str, code: u16) -> (Method, String, u16, &'static str) {
    (Method::GET, format!("/api/v1/nodes/{NODE}"), code, file)
}

fn service_route(file: &'static str, code: u16) -> (Method, String, u16, &'static str) {
    (
        Method::GET,
        "/api/v1/namespaces/azureml/services/azureml-fe".into(),
        code,
        file,
    )
}

#[tokio::test]
async fn node_region_and_zone_come_from_the_node_labels() {
    let (cluster, seen) = mock_api(vec![node_route("node-aks-eastus.json", 200)]);
    let info = cluster.node_info().await.unwrap();
    assert_eq!(info.region.as_deref(), Some("eastus"));
    assert_eq!(info.zone.as_deref(), Some("eastus-1"));
    assert_eq!(info.uid.as_deref(), Some("5b1d2f6e-0c6a-4f5e-9a57-2f1c3c7b9e01"));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, Method::GET);
}

#[tokio::test]
async fn forbidden_and_missing_degrade_to_errors_not_crashes() {
    let (cluster, _) = mock_api(vec![node_route("status-403-node.json", 403)]);
    let err = cluster.node_info().await.unwrap_err();
    assert!(matches!(err, ClusterError::Forbidden { .. }), "{err:?}");
    assert!(err.to_string().contains("RBAC"), "{err}");
    // The context carries on without a node.
    let ctx = ClusterContext::with_cluster(Some(cluster)).await;
    assert!(ctx.node.is_none());
    assert_eq!(ctx.node_region(), None);

    let (cluster, _) = mock_api(vec![]);
    let err = cluster.service("azureml", "azureml-fe").await.unwrap_err();
    assert!(matches!(err, ClusterError::NotFound { .. }), "{err:?}");
}

fn config(extra: &str, opts: &LoadOptions) -> Config {
    let y = format!("key_vaults: [kv-one]\nresolvers:\n  - name: azure\n    servers: [\"127.0.0.1:53\"]\n{extra}");
    Config::from_yaml_with(&y, "t.yaml", None, opts).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn region_auto_takes_the_node_region_and_mismatches_are_findings() {
    let (cluster, _) = mock_api(vec![node_route("node-aks-westeurope.json", 200)]);
    let ctx = ClusterContext::with_cluster(Some(cluster)).await;
    assert_eq!(ctx.node_region().as_deref(), Some("westeurope"));

    // `region: auto` derives names with the node's region.
    let opts = LoadOptions {
        node_region: ctx.node_region(),
        allow_unresolved_auto: false,
        ..LoadOptions::default()
    };
    let cfg = config("region: auto\ncontainer_registries:\n  - name: regone01\n", &opts);
    assert!(
        cfg.targets
            .iter()
            .any(|t| t.fqdn == "regone01.westeurope.data.azurecr.io")
    );
    let (findings, _) = netprobe::judge::cluster_findings(&cfg, &ctx.observe(&cfg).await);
    assert!(findings.is_empty(), "auto cannot mismatch: {findings:?}");

    // An explicit workspace region that differs is a finding.
    let cfg = config("region: eastus\n", &opts);
    let (findings, _) = netprobe::judge::cluster_findings(&cfg, &ctx.observe(&cfg).await);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].code.as_str(), "region_mismatch");
    assert!(findings[0].message.contains(NODE));

    // Without a node region, `auto` is refused with a clear message...
    let e = Config::from_yaml_with(
        "region: auto\nkey_vaults: [kv-one]\n",
        "t.yaml",
        None,
        &LoadOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("t.yaml:1:9: region: auto needs the node's region"), "{e}");
    // ...except for offline validation.
    let offline = LoadOptions {
        node_region: None,
        allow_unresolved_auto: true,
        ..LoadOptions::default()
    };
    assert!(Config::from_yaml_with("region: auto\nkey_vaults: [kv-one]\n", "t.yaml", None, &offline).is_ok());
}

#[tokio::test]
async fn inference_router_must_be_an_internal_load_balancer_with_private_ips() {
    let opts = LoadOptions::default();
    let cases: Vec<(Routes, bool, &str)> = vec![
        (
            vec![service_route("service-azureml-fe-internal.json", 200)],
            true,
            "none",
        ),
        (
            vec![service_route("service-azureml-fe-public.json", 200)],
            false,
            "public_ingress",
        ),
        (vec![service_route("status-403-service.json", 403)], false, "forbidden"),
        (vec![service_route("status-404-service.json", 404)], false, "not_found"),
    ];
    for (routes, healthy, cause) in cases {
        let (cluster, seen) = mock_api(routes);
        let ctx = reading(cluster);
        let cfg = config("scoring_service: {}\n", &opts);
        let (_, scoring) = netprobe::judge::cluster_findings(&cfg, &ctx.observe(&cfg).await);
        let s = scoring.expect("checked");
        assert_eq!((s.healthy, s.cause.as_str()), (healthy, cause), "{s:?}");
        assert_eq!(s.healthy, s.diagnosis.is_none());
        assert_eq!(
            seen.lock().unwrap()[0].path,
            "/api/v1/namespaces/azureml/services/azureml-fe"
        );
        if cause == "none" {
            assert_eq!(s.ingress_ips, vec!["10.224.0.200".parse::<IpAddr>().unwrap()]);
        }
    }
    // A Service with private IPs but no internal annotation.
    let mut svc: k8s_openapi::api::core::v1::Service =
        serde_json::from_slice(&fixture("service-azureml-fe-internal.json")).unwrap();
    svc.metadata
        .annotations
        .as_mut()
        .unwrap()
        .remove(netprobe::cluster::INTERNAL_LB_ANNOTATION);
    let ranges = netprobe::config::default_private_ranges();
    let r = netprobe::cluster::judge_scoring_service("azureml", "azureml-fe", &svc, &ranges);
    assert_eq!(r.cause.as_str(), "internal_lb_missing");
}

#[tokio::test]
async fn without_a_cluster_everything_is_off_and_nothing_fails() {
    // No NODE_NAME: connect() declines without touching the network.
    assert!(Cluster::connect(None).await.is_none());
    let ctx = ClusterContext::with_cluster(None).await;
    let cfg = config(
        "region: eastus\nscoring_service: {namespace: azureml, name: azureml-fe}\n",
        &LoadOptions::default(),
    );
    let (findings, scoring) = netprobe::judge::cluster_findings(&cfg, &ctx.observe(&cfg).await);
    assert!(findings.is_empty() && scoring.is_none());
}

#[tokio::test]
async fn event_objects_name_the_node_reason_and_type() {
    let (cluster, seen) = mock_api(vec![(
        Method::POST,
        "/api/v1/namespaces/default/events".into(),
        201,
        "event-created.json",
    )]);
    let event = netprobe::cluster::NodeEvent {
        reason: netprobe::model::EventReason::PrivateDnsRegression,
        warning: true,
        target: "acr-reg01".into(),
        message: "reg01.azurecr.io (acr-reg01): zone_not_linked: ...".into(),
    };
    cluster
        .emit(&event, Some("5b1d2f6e-0c6a-4f5e-9a57-2f1c3c7b9e01"))
        .await
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0].method, Method::POST);
    let b = &seen[0].body;
    assert_eq!(b["involvedObject"]["kind"], "Node");
    assert_eq!(b["involvedObject"]["name"], NODE);
    assert_eq!(b["involvedObject"]["uid"], "5b1d2f6e-0c6a-4f5e-9a57-2f1c3c7b9e01");
    assert_eq!(b["reason"], "PrivateDNSRegression");
    assert_eq!(b["type"], "Warning");
    assert_eq!(b["source"]["component"], "netprobe");
    assert!(b["metadata"]["generateName"].as_str().unwrap().starts_with(NODE));
    assert!(b["firstTimestamp"].is_string());
}

/// A healthy registry on the simulated VNet: its endpoint at 127.0.10.`n`
/// behind a privatelink chain, a DNS server, and a folder holding the CA;
/// returns what must stay alive and the config's path.
async fn registry_scene(
    name: &str,
    n: u8,
) -> (
    netprobe_sim::https::HttpsServer,
    netprobe_sim::dns::DnsServer,
    tempfile::TempDir,
    std::path::PathBuf,
) {
    let ca = Ca::new("cluster test CA").unwrap();
    let pe = IpAddr::from([127, 0, 10, n]);
    let fqdn = format!("{name}.azurecr.io");
    let ep = endpoint(&ca, pe, 0, &[fqdn.as_str()], Reply::acr_challenge(&fqdn)).await;
    let mut r = Records::new();
    chain(&mut r, &fqdn, &format!("{name}.privatelink.azurecr.io"), &[pe]);
    let d = dns(r).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
    let path = dir.path().join("netprobe.yaml");
    (ep, d, dir, path)
}

/// The agent on the config at `path`, reading the cluster through `cluster`.
async fn agent_on(
    cluster: Cluster,
    path: &std::path::Path,
    node_condition: bool,
) -> (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<Result<(), netprobe::agent::AgentError>>,
) {
    let ctx = ClusterContext::with_cluster(Some(cluster)).await;
    let (stop, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(run_until(
        Config::load(path).unwrap(),
        AgentOptions {
            config_path: Some(path.to_path_buf()),
            listen_override: Some("127.0.0.1:0".parse().unwrap()),
            on_listen: None,
            cluster: ctx,
            min_interval: std::time::Duration::ZERO,
            node_condition,
        },
        rx,
    ));
    (stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_records_events_once_per_change() {
    let (ep, d, _dir, path) = registry_scene("reg111", 111).await;
    std::fs::write(
        &path,
        format!(
            "interval: 150ms\ntimeout: 1s\nresolvers:\n  - name: system\n    servers: [\"{}\"]\nprivate_ranges: [127.0.10.0/24]\ntls:\n  extra_ca_file: ca.pem\ntargets:\n  - {{fqdn: reg111.azurecr.io, name: reg111, service: acr, port: {}}}\n",
            d.addr(),
            ep.addr().port()
        ),
    )
    .unwrap();
    let (cluster, seen) = mock_api(vec![
        node_route("node-aks-eastus.json", 200),
        (
            Method::POST,
            "/api/v1/namespaces/default/events".into(),
            201,
            "event-created.json",
        ),
    ]);
    let (stop, task) = agent_on(cluster, &path, false).await;
    let events = |seen: &Arc<Mutex<Vec<Seen>>>| -> Vec<String> {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|s| s.method == Method::POST)
            .map(|s| s.body["reason"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let wait = async |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(8);
        while events(&seen).len() < n {
            assert!(Instant::now() < deadline, "events so far: {:?}", events(&seen));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    // Healthy at start: no event. Then the record goes missing: one Warning.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(events(&seen).is_empty(), "{:?}", events(&seen));
    d.remove("reg111.privatelink.azurecr.io");
    wait(1).await;
    // Many rounds in the same state: still one.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(events(&seen), ["PrivateDNSRegression"]);
    // Back: one Normal recovery event.
    d.set(
        "reg111.privatelink.azurecr.io",
        Entry::Addrs(vec![IpAddr::from([127, 0, 10, 111])]),
    );
    wait(2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(events(&seen), ["PrivateDNSRegression", "PrivateDNSRecovered"]);
    let recovered = seen
        .lock()
        .unwrap()
        .iter()
        .rfind(|s| s.method == Method::POST)
        .unwrap()
        .body
        .clone();
    assert_eq!(recovered["type"], "Normal");
    // Not asked to: the Node's status is never patched.
    assert!(!seen.lock().unwrap().iter().any(|s| s.method == Method::PATCH));
    stop.send(true).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
}

/// `--node-condition`: after three healthy rounds, one strategic merge
/// patch of the Node's status that sets `AzureMLPrivateNetwork` and touches
/// nothing else; the next rounds in the same state patch nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_sets_its_node_condition_when_asked() {
    let (ep, d, _dir, path) = registry_scene("reg112", 112).await;
    std::fs::write(
        &path,
        format!(
            "interval: 100ms\ntimeout: 1s\nresolvers:\n  - name: system\n    servers: [\"{}\"]\nprivate_ranges: [127.0.10.0/24]\ntls:\n  extra_ca_file: ca.pem\ntargets:\n  - {{fqdn: reg112.azurecr.io, name: reg112, service: acr, port: {}}}\n",
            d.addr(),
            ep.addr().port()
        ),
    )
    .unwrap();
    let status_path = format!("/api/v1/nodes/{NODE}/status");
    let (cluster, seen) = mock_api(vec![
        node_route("node-aks-eastus.json", 200),
        (Method::PATCH, status_path.clone(), 200, "node-aks-eastus.json"),
    ]);
    let (stop, task) = agent_on(cluster, &path, true).await;
    let patches = || -> Vec<Seen> {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|s| s.method == Method::PATCH)
            .cloned()
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(8);
    while patches().is_empty() {
        assert!(Instant::now() < deadline, "no patch: {:?}", seen.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let p = patches();
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].path, status_path);
    assert_eq!(
        p[0].content_type.as_deref(),
        Some("application/strategic-merge-patch+json")
    );
    let body = &p[0].body;
    assert_eq!(body.as_object().map(|o| o.len()), Some(1), "{body}");
    assert_eq!(body["status"].as_object().map(|o| o.len()), Some(1), "{body}");
    let c = &body["status"]["conditions"];
    assert_eq!(c.as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(
        (c[0]["type"].as_str(), c[0]["status"].as_str()),
        (Some("AzureMLPrivateNetwork"), Some("True"))
    );
    assert_eq!(c[0]["reason"], "AllTargetsHealthy");
    assert!(
        c[0]["message"].as_str().unwrap().contains("all 1 targets healthy"),
        "{body}"
    );
    stop.send(true).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
}

#[test]
fn event_reasons_follow_the_kind_of_change() {
    use netprobe::model::{Cause, Reach};
    use netprobe::report::TargetReport;
    use netprobe::verdict::{CauseFinding, Diagnosis};
    let t = |healthy: bool, cause: Cause| {
        let causes = (!healthy)
            .then(|| CauseFinding {
                cause,
                resolver: None,
                diagnosis: "why. Fix: this.".into(),
            })
            .into_iter()
            .collect();
        let target = netprobe::service::acr::login(netprobe::azure::Cloud::Public, "t");
        TargetReport::new(&target, &[], &[], &[], &[], Reach::Ok, None, Diagnosis { causes })
    };
    let ok = t(true, Cause::None);
    let dns = t(false, Cause::ZoneNotLinked);
    let reach = t(false, Cause::EndpointBlocked);
    let reason = |b: Option<&TargetReport>, n: &TargetReport| event_for_change(b, n).map(|e| e.reason.as_str());
    assert_eq!(reason(None, &ok), None, "first sight, healthy");
    assert_eq!(
        reason(None, &dns),
        Some("PrivateDNSRegression"),
        "first sight, unhealthy"
    );
    assert_eq!(reason(Some(&ok), &dns), Some("PrivateDNSRegression"));
    assert_eq!(reason(Some(&ok), &reach), Some("PrivateEndpointUnreachable"));
    assert_eq!(
        reason(Some(&dns), &reach),
        Some("PrivateEndpointUnreachable"),
        "a different problem"
    );
    assert_eq!(reason(Some(&dns), &dns), None, "no change");
    assert_eq!(reason(Some(&dns), &ok), Some("PrivateDNSRecovered"));
    assert_eq!(reason(Some(&ok), &ok), None);
}

/// `region: auto` on a node whose API server cannot be reached at start (a
/// DNS or API server outage): the agent starts anyway, with the region
/// unknown (a `region_unknown` finding, the region's targets left out),
/// keeps probing, reads the Node again every round, and once it can, loads
/// the region's targets: it never exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn region_auto_waits_out_an_api_server_outage() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let (ep, d, _dir, path) = registry_scene("reg112", 112).await;
    std::fs::write(
        &path,
        format!(
            "region: auto\nworkspace: {{id: 3f2c9d1e-8b7a-4c6d-9e0f-1a2b3c4d5e6f, name: mlws}}\ninterval: 150ms\ntimeout: 1s\n\
             resolvers:\n  - name: system\n    servers: [\"{}\"]\nprivate_ranges: [127.0.10.0/24]\ntls:\n  extra_ca_file: ca.pem\n\
             targets:\n  - {{fqdn: reg112.azurecr.io, name: reg112, service: acr, port: {}}}\n",
            d.addr(),
            ep.addr().port()
        ),
    )
    .unwrap();

    // The API server: down (503) until `up`.
    let up = Arc::new(AtomicBool::new(false));
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let api_up = up.clone();
    tokio::spawn(async move {
        while let Some((req, send)) = handle.next_request().await {
            let node = req.uri().path() == format!("/api/v1/nodes/{NODE}");
            let (code, body) = if node && api_up.load(Ordering::Relaxed) {
                (200, fixture("node-aks-eastus.json"))
            } else {
                (
                    503,
                    br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"the server is currently unable to handle the request","reason":"ServiceUnavailable","code":503}"#.to_vec(),
                )
            };
            let resp = Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap();
            send.send_response(resp);
        }
    });
    let cluster = Cluster::from_client(kube::Client::new(service, "default"), NODE);
    let ctx = ClusterContext::with_cluster(Some(cluster)).await;
    assert!(ctx.node.is_none() && ctx.node_error.is_some());
    // What `probe` does at start: this loads, where it used to exit 2.
    let config = Config::load_with(&path, &ctx.load_options()).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.region_pending);
    assert_eq!(config.targets.len(), 1, "only the target that needs no region");

    let (stop, rx) = tokio::sync::watch::channel(false);
    let (tx, listening) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(run_until(
        config,
        AgentOptions {
            config_path: Some(path.clone()),
            listen_override: Some("127.0.0.1:0".parse().unwrap()),
            on_listen: Some(tx),
            cluster: ctx,
            min_interval: Duration::ZERO,
            node_condition: false,
        },
        rx,
    ));
    let addr = listening.await.unwrap();
    let status = async || -> Value {
        let (code, body) = netprobe_testkit::http_get(addr, "/status").await;
        if code == 200 {
            serde_json::from_str(&body).unwrap()
        } else {
            Value::Null
        }
    };
    let wait = async |what: &str, cond: &dyn Fn(&Value) -> bool| -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v = status().await;
            if cond(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "{what}: {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let codes = |v: &Value| -> Vec<String> {
        v["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| f["code"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let v = wait("a round with the region unknown", &|v| {
        codes(v).contains(&"region_unknown".to_string())
    })
    .await;
    assert!(
        v["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("unable to handle the request"),
        "{v}"
    );
    assert_eq!(v["targets"].as_array().unwrap().len(), 1);
    // A few rounds later the agent still runs and still probes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!task.is_finished(), "the agent exited during the outage");

    up.store(true, Ordering::Relaxed);
    let v = wait("the region's targets after the API server came back", &|v| {
        v["targets"].as_array().is_some_and(|t| t.len() == 4) && !codes(v).contains(&"region_unknown".to_string())
    })
    .await;
    assert_eq!(v["node"]["region"], "eastus", "{v}");
    let names: Vec<&str> = v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.iter().any(|n| n.starts_with("workspace-")), "{names:?}");
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
}

fn endpointslice_route(file: &'static str, code: u16) -> (Method, String, u16, &'static str) {
    (
        Method::GET,
        "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes".into(),
        code,
        file,
    )
}

/// A connection that got an HTTP 401 (a live API server, or any service).
fn answered(ip: &str) -> netprobe::observation::ConnectObservation {
    use netprobe::model::{TcpOutcome, TlsOutcome};
    use netprobe::observation::{ConnectObservation, HttpObservation, HttpOutcome, HttpResponse, TlsObservation};
    ConnectObservation {
        address: ip.parse().unwrap(),
        tcp: TcpOutcome::Ok,
        tcp_duration: Duration::ZERO,
        tcp_detail: None,
        tls: Some(TlsObservation {
            outcome: TlsOutcome::Ok,
            duration: Duration::ZERO,
            detail: None,
            cert_not_after: None,
            version: None,
            received: 0,
            unacked: None,
        }),
        http: Some(HttpObservation {
            outcome: HttpOutcome::Response(HttpResponse {
                status: 401,
                ..HttpResponse::default()
            }),
            duration: Duration::ZERO,
        }),
    }
}

/// API Server VNet Integration: the `kubernetes` EndpointSlice is read (only
/// when the api-server target's name is in `private.<region>.azmk8s.io`),
/// and an answer that is not its address is `unexpected_ip`, saying that
/// nodes are unaffected. Without RBAC for the slice, nothing is compared
/// and nothing fails.
#[tokio::test]
async fn a_vnet_integrated_api_server_is_compared_with_the_kubernetes_endpointslice() {
    use netprobe::observation::{DnsAnswer, DnsObservation, DnsOutcome, Rcode, RoundObservation, TargetObservation};
    let fqdn = "aks-1-abc.private.eastus.azmk8s.io";
    let opts = LoadOptions::default();
    let cfg = config(&format!("region: eastus\napi_server_fqdn: {fqdn}\n"), &opts);
    let api = cfg.targets.iter().position(|t| t.name == "api-server").unwrap();
    assert_eq!(
        cfg.targets[api].privatelink_zone.as_deref(),
        Some("private.eastus.azmk8s.io")
    );
    let round = |answer: &str| RoundObservation {
        started_at: std::time::SystemTime::UNIX_EPOCH,
        duration: Duration::ZERO,
        servers: vec![Ok(vec!["127.0.0.1:53".parse().unwrap()])],
        held: vec![0],
        tcp_checks: vec![None],
        zone_soas: vec![],
        proxy: Default::default(),
        targets: cfg
            .targets
            .iter()
            .map(|t| {
                Some(TargetObservation {
                    dns: vec![DnsObservation {
                        resolver: "azure".into(),
                        server: Some("127.0.0.1:53".parse().unwrap()),
                        outcome: DnsOutcome::Answer(DnsAnswer {
                            rcode: Rcode::NoError,
                            chain: vec![],
                            addresses: vec![
                                if t.name == "api-server" { answer } else { "10.1.0.5" }
                                    .parse()
                                    .unwrap(),
                            ],
                            omitted: 0,
                            chain_problem: None,
                            negative_soa: false,
                        }),
                        duration: Duration::ZERO,
                        tcp_fallback: false,
                        queries: 2,
                    }],
                    connect_resolver: Some(0),
                    connects: vec![answered(if t.name == "api-server" { answer } else { "10.1.0.5" })],
                    via_proxy: None,
                })
            })
            .collect(),
    };
    let (cluster, seen) = mock_api(vec![endpointslice_route("endpointslice-kubernetes.json", 200)]);
    let ctx = reading(cluster);
    let observed = ctx.observe(&cfg).await;
    assert_eq!(
        observed.api_endpoints,
        Some(Ok(vec!["10.226.0.4".parse::<IpAddr>().unwrap()]))
    );
    assert_eq!(seen.lock().unwrap().len(), 1);

    let report = netprobe::judge::round(&cfg, &round("10.226.0.9"), &observed);
    let t = &report.targets[api];
    assert_eq!(t.cause, netprobe::model::Cause::UnexpectedIp, "{t:?}");
    let text = t.diagnosis.as_deref().unwrap();
    assert!(
        text.contains("10.226.0.4") && text.contains("nodes reach the API server by IP and are unaffected"),
        "{text}"
    );
    let report = netprobe::judge::round(&cfg, &round("10.226.0.4"), &observed);
    assert!(report.targets[api].healthy, "{:?}", report.targets[api]);

    // No RBAC for the slice (an older install): not compared, no failure.
    let (cluster, _) = mock_api(vec![endpointslice_route("status-403-endpointslice.json", 403)]);
    let ctx = reading(cluster);
    let observed = ctx.observe(&cfg).await;
    assert!(
        matches!(&observed.api_endpoints, Some(Err(e)) if e.contains("forbidden")),
        "{:?}",
        observed.api_endpoints
    );
    let report = netprobe::judge::round(&cfg, &round("10.226.0.9"), &observed);
    assert!(report.targets[api].healthy);

    // A privatelink API server name is not read at all.
    let (cluster, seen) = mock_api(vec![]);
    let ctx = reading(cluster);
    let plain = config(
        "region: eastus\napi_server_fqdn: aks-1-abc.hcp.eastus.azmk8s.io\n",
        &opts,
    );
    assert_eq!(ctx.observe(&plain).await.api_endpoints, None);
    assert!(seen.lock().unwrap().is_empty());
}
