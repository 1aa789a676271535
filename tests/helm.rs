//! The Helm chart (deploy/helm/netprobe) with the real Helm 3 and Helm 4
//! (scripts/install-helm puts them in target/tools): lint, render with the
//! defaults and with every feature on, validate every object against the
//! Kubernetes schema, keep the DaemonSet equal in substance to kustomize's,
//! keep the default config equal to the kustomize ConfigMap's, reject bad
//! values through values.schema.json, and meet Pod Security "restricted" by
//! default.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use netprobe_testkit::k8s::{docs, find};
use netprobe_testkit::pss::{Level, pod_spec, violations};
use serde_json::Value;

const HELMS: [&str; 2] = ["helm3", "helm4"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn chart() -> PathBuf {
    root().join("deploy/helm/netprobe")
}

fn helm(which: &str) -> Command {
    let bin = root().join("target/tools").join(which).join("helm");
    assert!(
        bin.exists(),
        "{} is missing: scripts/test installs it (scripts/install-helm)",
        bin.display()
    );
    let mut c = Command::new(bin);
    // Keep Helm's caches and config inside target/, never in $HOME.
    let home = root().join("target/tools/helm-home");
    c.env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"));
    c
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The workspace id the tests' values set (the kustomize base's is the
/// all-zero placeholder, which the agent and the chart's schema refuse).
const TEST_WORKSPACE_ID: &str = "1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d";

/// The kustomize base's netprobe.yaml with the tests' workspace id: the
/// config a user's values set.
fn base_config() -> Value {
    let k = kustomize(&root().join("deploy"));
    let text = find(&k, "ConfigMap", "netprobe-config")["data"]["netprobe.yaml"]
        .as_str()
        .unwrap()
        .to_string();
    let mut cfg: Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(cfg["workspace"]["id"], "00000000-0000-0000-0000-000000000000");
    cfg["workspace"]["id"] = TEST_WORKSPACE_ID.into();
    cfg
}

/// A values file (JSON is YAML) in a directory that lives as long as the test process.
fn values_file(values: &Value) -> PathBuf {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.path().join(format!("values-{n}.yaml"));
    std::fs::write(&path, values.to_string()).unwrap();
    path
}

/// The values every render starts from: the kustomize base's config.
fn base_values() -> PathBuf {
    values_file(&serde_json::json!({ "config": base_config() }))
}

/// `helm template netprobe <chart> -n netprobe -f <base values> --set ...`.
fn template(which: &str, sets: &[&str]) -> String {
    let mut c = helm(which);
    c.args(["template", "netprobe"])
        .arg(chart())
        .args(["--namespace", "netprobe"])
        .arg("-f")
        .arg(base_values());
    for s in sets {
        c.args(["--set", s]);
    }
    let (ok, out, err) = run(&mut c);
    assert!(ok, "{which} template {sets:?}: {err}");
    out
}

fn kustomize(dir: &Path) -> Vec<Value> {
    docs(&netprobe_testkit::k8s::kustomize(dir))
}

const EVERYTHING: &[&str] = &[
    "podMonitor.enabled=true",
    "prometheusRule.enabled=true",
    "azureMonitor.podMonitor.enabled=true",
    "grafanaDashboard.enabled=true",
    "nodeResolver.enabled=true",
    "serviceTags.configMap=netprobe-service-tags",
    "namespace.create=true",
    "test.nodeName=aks-nodepool1-0",
];

#[test]
fn lint_strict_with_helm_3_and_4() {
    for which in HELMS {
        for sets in [&[][..], EVERYTHING] {
            let mut c = helm(which);
            c.args(["lint", "--strict"]).arg(chart()).arg("-f").arg(base_values());
            for s in sets {
                c.args(["--set", s]);
            }
            let (ok, out, err) = run(&mut c);
            assert!(
                ok && out.contains("0 chart(s) failed"),
                "{which} lint {sets:?}:\n{out}{err}"
            );
        }
    }
}

#[test]
fn every_render_validates_against_the_kubernetes_schema() {
    for which in HELMS {
        for (label, sets) in [("default", &[][..]), ("everything", EVERYTHING)] {
            let yaml = template(which, sets);
            let kinds: BTreeSet<String> = docs(&yaml)
                .iter()
                .map(|d| d["kind"].as_str().unwrap().to_string())
                .collect();
            if label == "everything" {
                for k in [
                    "PodMonitor",
                    "PrometheusRule",
                    "Namespace",
                    "Pod",
                    "ConfigMap",
                    "PriorityClass",
                ] {
                    assert!(kinds.contains(k), "{which} {label}: no {k} in {kinds:?}");
                }
            }
            netprobe_testkit::k8s::validate(&root(), &format!("{which}-{label}"), &yaml);
        }
    }
}

/// Helm 3 and Helm 4 render the same objects.
#[test]
fn helm_3_and_4_render_alike() {
    for sets in [&[][..], EVERYTHING] {
        assert_eq!(
            docs(&template("helm3", sets)),
            docs(&template("helm4", sets)),
            "{sets:?}"
        );
    }
}

/// The pod spec, the update strategy and the pod annotations, without the
/// labels and names Helm adds to every object.
fn substance(ds: &Value) -> Value {
    let mut spec = ds["spec"]["template"]["spec"].clone();
    spec["serviceAccountName"] = Value::Null;
    for v in spec["volumes"].as_array_mut().unwrap() {
        if v.get("configMap").is_some() {
            v["configMap"]["name"] = Value::Null;
        }
    }
    // Kustomize's patches put added list items first; order does not matter.
    let by_name = |a: &Value, b: &Value| a["name"].as_str().cmp(&b["name"].as_str());
    spec["volumes"].as_array_mut().unwrap().sort_by(by_name);
    for c in spec["containers"].as_array_mut().unwrap() {
        c["volumeMounts"].as_array_mut().unwrap().sort_by(by_name);
    }
    serde_json::json!({
        "pod": spec,
        "updateStrategy": ds["spec"]["updateStrategy"],
        "annotations": ds["spec"]["template"]["metadata"]["annotations"],
    })
}

#[test]
fn the_daemonset_is_the_kustomize_one_in_substance() {
    let k = kustomize(&root().join("deploy"));
    let h = docs(&template("helm3", &[]));
    assert_eq!(
        substance(find(&h, "DaemonSet", "netprobe")),
        substance(find(&k, "DaemonSet", "netprobe")),
        "the chart's DaemonSet drifted from deploy/base (with the prometheus-annotations component)"
    );
    // With the node resolver: the same mounts as the kustomize component.
    let k = docs(&netprobe_testkit::k8s::kustomize_with(
        &root(),
        &["deploy"],
        &["deploy/components/node-resolver"],
    ));
    let h = docs(&template("helm3", &["nodeResolver.enabled=true"]));
    assert_eq!(
        substance(find(&h, "DaemonSet", "netprobe")),
        substance(find(&k, "DaemonSet", "netprobe"))
    );
    // Cluster-wide objects alike: the PriorityClass and the RBAC rules.
    let k = kustomize(&root().join("deploy"));
    let h = docs(&template("helm3", &[]));
    for (kind, name, field) in [
        ("PriorityClass", "netprobe-node-monitor", "value"),
        ("PriorityClass", "netprobe-node-monitor", "preemptionPolicy"),
        ("ClusterRole", "netprobe", "rules"),
    ] {
        assert_eq!(
            find(&h, kind, name)[field],
            find(&k, kind, name)[field],
            "{kind} {field}"
        );
    }
}

/// The chart's `config` defaults are the kustomize base's generic keys:
/// values with the base's config render exactly it.
#[test]
fn the_default_config_is_the_kustomize_one() {
    let h = docs(&template("helm3", &[]));
    let parse = |v: &Value| serde_saphyr::from_str::<Value>(v["data"]["netprobe.yaml"].as_str().unwrap()).unwrap();
    assert_eq!(parse(find(&h, "ConfigMap", "netprobe-config")), base_config());
    // With the node resolver on, the `node` resolver joins the config, and the
    // config is valid for netprobe itself.
    let h = docs(&template("helm4", &["nodeResolver.enabled=true"]));
    let cfg = find(&h, "ConfigMap", "netprobe-config")["data"]["netprobe.yaml"]
        .as_str()
        .unwrap()
        .to_string();
    let parsed: Value = serde_saphyr::from_str(&cfg).unwrap();
    let names: Vec<&str> = parsed["resolvers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["system", "azure", "node"]);
    let loaded =
        netprobe::config::Config::from_yaml(&cfg, "helm values", None).unwrap_or_else(|e| panic!("{e}\n{cfg}"));
    assert_eq!(loaded.resolvers.len(), 3);
    // A service tags ConfigMap is mounted and named in the config.
    let h = docs(&template("helm3", &["serviceTags.configMap=netprobe-service-tags"]));
    let ds = find(&h, "DaemonSet", "netprobe");
    let volumes = ds["spec"]["template"]["spec"]["volumes"].as_array().unwrap();
    assert!(
        volumes
            .iter()
            .any(|v| v["configMap"]["name"] == "netprobe-service-tags"),
        "{volumes:?}"
    );
    let cfg = find(&h, "ConfigMap", "netprobe-config")["data"]["netprobe.yaml"]
        .as_str()
        .unwrap()
        .to_string();
    let parsed: Value = serde_saphyr::from_str(&cfg).unwrap();
    assert_eq!(
        parsed["service_tags_file"],
        "/etc/netprobe-service-tags/service-tags.json"
    );
}

#[test]
fn the_schema_rejects_bad_values() {
    let cases: &[(&str, &str)] = &[
        ("imageTypo.repository=x", "imageTypo"),
        ("config.metric=full", "metric"),
        ("config.metrics=everything", "metrics"),
        ("config.workspace.id=not-a-guid", "id"),
        ("nodeResolver.enabled=yes-please", "enabled"),
        ("podMonitor.interval=soon", "interval"),
    ];
    for which in HELMS {
        for (set, names) in cases {
            let mut c = helm(which);
            c.args(["template", "netprobe"])
                .arg(chart())
                .args(["--set-string", set]);
            if set.starts_with("nodeResolver") {
                c = helm(which);
                c.args(["template", "netprobe"])
                    .arg(chart())
                    .args(["--set-string", set]);
            }
            let (ok, _, err) = run(&mut c);
            assert!(!ok, "{which}: {set} was accepted");
            assert!(err.contains("schema") && err.contains(names), "{which} {set}: {err}");
        }
        // A good value passes.
        template(which, &["config.metrics=full"]);
    }
}

/// The schema's `config` keys are the configuration's top-level keys.
#[test]
fn the_schema_knows_every_config_key() {
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(chart().join("values.schema.json")).unwrap()).unwrap();
    let in_schema: BTreeSet<String> = schema["properties"]["config"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let in_config: BTreeSet<String> = netprobe::config::keys().iter().map(|k| k.to_string()).collect();
    assert!(in_config.len() > 10, "{in_config:?}");
    assert_eq!(in_schema, in_config, "values.schema.json's config keys");
}

/// The chart's RBAC and NetworkPolicy are as narrow as kustomize's.
#[test]
fn least_privilege_and_network_policy() {
    let h = docs(&template("helm3", &[]));
    netprobe_testkit::k8s::assert_least_privilege(&h);
    netprobe_testkit::k8s::assert_agent_network_policy(find(&h, "NetworkPolicy", "netprobe"));
    // The `helm test` pod keeps off virtual nodes as the DaemonSet does.
    let pod = find(&h, "Pod", "netprobe-probe-once");
    let ds = find(&h, "DaemonSet", "netprobe");
    assert_eq!(pod["spec"]["affinity"], ds["spec"]["template"]["spec"]["affinity"]);
    assert!(pod["spec"]["affinity"].to_string().contains("virtual-kubelet"));
    // The Node condition is opt-in: `patch` on nodes/status and the agent's
    // switch only with nodeCondition.enabled.
    let text = template("helm4", &[]);
    assert!(!text.contains("nodes/status") && !text.contains("NETPROBE_NODE_CONDITION"));
    let on = docs(&template("helm4", &["nodeCondition.enabled=true"]));
    let rules = find(&on, "ClusterRole", "netprobe")["rules"].to_string();
    assert!(
        rules.contains(r#""resources":["nodes/status"],"verbs":["patch"]"#),
        "{rules}"
    );
    let env = find(&on, "DaemonSet", "netprobe")["spec"]["template"]["spec"]["containers"][0]["env"].to_string();
    assert!(
        env.contains(r#"{"name":"NETPROBE_NODE_CONDITION","value":"true"}"#),
        "{env}"
    );
    // Without egress rules, only the ingress ones.
    let h = docs(&template("helm3", &["networkPolicy.egress=false"]));
    assert_eq!(
        find(&h, "NetworkPolicy", "netprobe")["spec"]["policyTypes"],
        serde_json::json!(["Ingress"])
    );
}

#[test]
fn pod_security_and_node_pools() {
    let h = docs(&template("helm3", &["namespace.create=true"]));
    let ns = find(&h, "Namespace", "netprobe");
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    for o in &h {
        if let Some(spec) = pod_spec(o) {
            let v = violations(spec, Level::Restricted);
            assert!(v.is_empty(), "{}: {v:?}", o["kind"]);
            assert_eq!(spec["nodeSelector"]["kubernetes.io/os"], "linux", "{}", o["kind"]);
        }
    }
    let h = docs(&template("helm3", EVERYTHING));
    let ns = find(&h, "Namespace", "netprobe");
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "privileged"
    );
    let ds = find(&h, "DaemonSet", "netprobe");
    let v = violations(pod_spec(ds).unwrap(), Level::Baseline);
    assert_eq!(
        v,
        ["volume node-resolved: hostPath", "volume node-resolv-conf: hostPath"]
    );
    // The node resolver by the VNet's DNS servers: nothing mounted, the
    // namespace stays restricted, the resolver asks those servers.
    let h = docs(&template(
        "helm3",
        &[
            "namespace.create=true",
            "nodeResolver.enabled=true",
            "nodeResolver.servers={10.0.0.4,10.0.0.5}",
        ],
    ));
    let ns = find(&h, "Namespace", "netprobe");
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    let ds = find(&h, "DaemonSet", "netprobe");
    assert!(violations(pod_spec(ds).unwrap(), Level::Restricted).is_empty());
    let cfg = find(&h, "ConfigMap", "netprobe-config")["data"]["netprobe.yaml"]
        .as_str()
        .unwrap()
        .to_string();
    netprobe::config::Config::from_yaml(&cfg, "chart", None).unwrap_or_else(|e| panic!("{e}"));
    let cfg: Value = serde_saphyr::from_str(&cfg).unwrap();
    let node = cfg["resolvers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "node")
        .unwrap();
    assert_eq!(node["servers"], serde_json::json!(["10.0.0.4", "10.0.0.5"]));
    let h = docs(&template("helm3", EVERYTHING));
    // `helm test`: the one-shot probe on the chosen node.
    let pod = find(&h, "Pod", "netprobe-probe-once");
    assert_eq!(pod["metadata"]["annotations"]["helm.sh/hook"], "test");
    assert_eq!(pod["spec"]["nodeName"], "aks-nodepool1-0");
    assert_eq!(pod["spec"]["containers"][0]["args"][1], "--once");
    assert_eq!(
        pod["spec"]["containers"][0]["image"],
        format!("ghcr.io/netprobe/netprobe:{}", env!("CARGO_PKG_VERSION")).as_str()
    );
}

/// The chart's copies of the rules and the dashboard hold what the
/// PrometheusRule and the dashboard ConfigMap render.
#[test]
fn rules_and_dashboard_render_from_the_chart_files() {
    let h = docs(&template("helm4", EVERYTHING));
    let rule = find(&h, "PrometheusRule", "netprobe");
    let rules: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(root().join("deploy/prometheus/netprobe-rules.yaml")).unwrap())
            .unwrap();
    assert_eq!(rule["spec"]["groups"], rules["groups"]);
    let cm = find(&h, "ConfigMap", "netprobe-dashboard");
    assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
    let dash: Value = serde_json::from_str(cm["data"]["netprobe.json"].as_str().unwrap()).unwrap();
    assert_eq!(dash["uid"], "netprobe-private-dns");
    let az = find(&h, "PodMonitor", "netprobe-azmonitor");
    assert_eq!(az["apiVersion"], "azmonitoring.coreos.com/v1");
}

/// Every pod that runs netprobe (the agent, the one-shot Job, the Helm test
/// pod) asks AKS for the API server's FQDN in KUBERNETES_SERVICE_HOST, so
/// that each probes the `api-server` target alike.
#[test]
fn every_netprobe_pod_asks_for_the_api_server_fqdn() {
    let mut all = kustomize(&root().join("deploy"));
    all.extend(kustomize(&root().join("deploy/jobs")));
    all.extend(docs(&template("helm3", &["test.nodeName=aks-nodepool1-0"])));
    let mut checked = 0;
    for d in &all {
        let meta = match d["kind"].as_str() {
            Some("Pod") => &d["metadata"],
            Some("DaemonSet" | "Job") => &d["spec"]["template"]["metadata"],
            _ => continue,
        };
        assert_eq!(
            meta["annotations"]["kubernetes.azure.com/set-kube-service-host-fqdn"], "true",
            "{} {}",
            d["kind"], d["metadata"]["name"]
        );
        // The agent must see the HTTP proxy variables the workloads get
        // (AKS httpProxyConfig): never opted out of them.
        let text = serde_json::to_string(d).unwrap();
        assert!(
            !text.contains("no-http-proxy-vars") && !text.contains("NO_PROXY") && !text.contains("HTTPS_PROXY"),
            "{} {} opts out of, or overrides, the workloads' proxy variables",
            d["kind"],
            d["metadata"]["name"]
        );
        checked += 1;
    }
    assert!(checked >= 4, "{checked} pods checked");
    // `apiServer.probe=false` leaves the annotation out (AKS reads its
    // presence, not its value), with and without the Prometheus ones.
    for extra in [
        "prometheusAnnotations.enabled=true",
        "prometheusAnnotations.enabled=false",
    ] {
        let off = docs(&template(
            "helm4",
            &["apiServer.probe=false", "test.nodeName=aks-nodepool1-0", extra],
        ));
        for d in &off {
            let text = serde_json::to_string(d).unwrap();
            assert!(!text.contains("set-kube-service-host-fqdn"), "{extra}: {text}");
        }
        let ds = find(&off, "DaemonSet", "netprobe");
        let prometheus = &ds["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scrape"];
        assert_eq!(prometheus == "true", extra.ends_with("true"), "{extra}");
    }
}

/// kube-prometheus-stack selects PodMonitors and PrometheusRules by
/// `release: <its release>`: the chart takes `labels` (and `annotations`) for
/// each monitoring object, the Azure Monitor PodMonitor included, and keeps
/// its own labels beside them. Before, the schema rejected any such value.
#[test]
fn monitoring_objects_take_the_labels_a_prometheus_selects_by() {
    for which in HELMS {
        let sets = [
            "podMonitor.enabled=true",
            "podMonitor.labels.release=kube-prometheus-stack",
            "podMonitor.annotations.team=sre",
            "prometheusRule.enabled=true",
            "prometheusRule.labels.release=kube-prometheus-stack",
            "prometheusRule.annotations.team=sre",
            "azureMonitor.podMonitor.enabled=true",
            "azureMonitor.podMonitor.labels.release=ama",
            "azureMonitor.podMonitor.annotations.team=sre",
        ];
        let all = docs(&template(which, &sets));
        for (kind, name, release) in [
            ("PodMonitor", "netprobe", "kube-prometheus-stack"),
            ("PrometheusRule", "netprobe", "kube-prometheus-stack"),
            ("PodMonitor", "netprobe-azmonitor", "ama"),
        ] {
            let o = find(&all, kind, name);
            let meta = &o["metadata"];
            assert_eq!(meta["labels"]["release"], release, "{which} {kind} {name}: {meta}");
            assert_eq!(
                meta["labels"]["app.kubernetes.io/name"], "netprobe",
                "{which} {kind} {name}: the chart's own labels stay: {meta}"
            );
            assert_eq!(meta["annotations"]["team"], "sre", "{which} {kind} {name}: {meta}");
        }
        // Without them, no annotations key at all.
        let plain = docs(&template(which, &["podMonitor.enabled=true"]));
        assert!(
            find(&plain, "PodMonitor", "netprobe")["metadata"]
                .get("annotations")
                .is_none()
        );
    }
}

/// `helm template` with these values (and no others): its success, stdout, stderr.
fn template_values(which: &str, values: &Value) -> (bool, String, String) {
    let mut c = helm(which);
    c.args(["template", "netprobe"])
        .arg(chart())
        .args(["--namespace", "netprobe", "-f"])
        .arg(values_file(values));
    run(&mut c)
}

/// The chart probes only what the user's values name: its defaults carry
/// no resource (Helm merges `config` key by key, so a placeholder resource
/// in the chart would be probed beside the user's), and without any the
/// install fails, saying what to set.
#[test]
fn the_chart_probes_nothing_the_values_do_not_name() {
    let defaults: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(chart().join("values.yaml")).unwrap()).unwrap();
    let sections = netprobe::config::section_keys();
    for key in sections {
        assert!(
            defaults["config"].get(key).is_none(),
            "values.yaml's config sets {key}: Helm would merge it into every install"
        );
    }
    assert!(defaults["config"].get("region").is_none());
    // The template's list of keys that make targets is the config's.
    let helpers = std::fs::read_to_string(chart().join("templates/_helpers.tpl")).unwrap();
    let line = helpers
        .lines()
        .find(|l| l.contains("$targetKeys := list"))
        .expect("_helpers.tpl lists the target keys");
    let listed: Vec<&str> = line.split('"').skip(1).step_by(2).collect();
    assert_eq!(listed, sections, "_helpers.tpl's $targetKeys");
    for which in HELMS {
        // No config at all, and a config with no target: refused, saying why.
        for values in [
            serde_json::json!({}),
            serde_json::json!({"config": {"region": "eastus"}}),
        ] {
            let (ok, _, err) = template_values(which, &values);
            assert!(!ok, "{which}: {values} installed");
            assert!(
                err.contains("nothing to probe") && err.contains("storage_accounts"),
                "{which}: {err}"
            );
        }
        // The workspace only: the rendered config is the user's plus the
        // chart's generic keys, no resource and no workspace name added.
        let values = serde_json::json!({"config": {
            "region": "westeurope",
            "workspace": {"id": TEST_WORKSPACE_ID},
        }});
        let (ok, out, err) = template_values(which, &values);
        assert!(ok, "{which}: {err}");
        let h = docs(&out);
        let text = find(&h, "ConfigMap", "netprobe-config")["data"]["netprobe.yaml"]
            .as_str()
            .unwrap()
            .to_string();
        let cfg: Value = serde_saphyr::from_str(&text).unwrap();
        let keys: BTreeSet<&str> = cfg.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            BTreeSet::from([
                "cloud",
                "connect_via",
                "interval",
                "region",
                "resolvers",
                "timeout",
                "workspace"
            ]),
            "{which}: {text}"
        );
        assert_eq!(cfg["workspace"], serde_json::json!({"id": TEST_WORKSPACE_ID}));
        let loaded = netprobe::config::Config::from_yaml(&text, "chart", None).unwrap_or_else(|e| panic!("{e}"));
        let fqdns: Vec<&str> = loaded.targets.iter().map(|t| t.fqdn.as_str()).collect();
        assert_eq!(
            fqdns,
            [
                format!("{TEST_WORKSPACE_ID}.workspace.westeurope.api.azureml.ms"),
                format!("{TEST_WORKSPACE_ID}.workspace.westeurope.cert.api.azureml.ms"),
            ]
        );
    }
}

/// An invalid config fails `helm template` (so `helm install`) by the
/// schema generated from the config types, naming the field; the
/// pre-flight `netprobe check-config -f values.yaml` refuses the same
/// values, with the agent's own reason.
#[test]
fn invalid_configs_fail_at_install_time_and_in_the_preflight() {
    let cases: &[(&str, Value, &str, &str)] = &[
        (
            "upper-case storage name",
            serde_json::json!({"storage_accounts": [{"name": "MyStorage"}]}),
            "storage_accounts",
            "not a valid storage account name",
        ),
        (
            "prefix past /32",
            serde_json::json!({"private_ranges": ["172.16.0.0/33"]}),
            "private_ranges",
            "not a CIDR",
        ),
        (
            "resolver by host name",
            serde_json::json!({"resolvers": [{"name": "corp", "servers": ["dns.corp.example"]}], "connect_via": "corp"}),
            "servers",
            "host names are not accepted",
        ),
        (
            "all-zero workspace",
            serde_json::json!({"workspace": {"id": "00000000-0000-0000-0000-000000000000"}}),
            "workspace",
            "all-zero placeholder",
        ),
        (
            "region with a space",
            serde_json::json!({"region": "West Europe"}),
            "region",
            "not an Azure region name",
        ),
        (
            "double hyphen vault",
            serde_json::json!({"key_vaults": ["my--vault"]}),
            "key_vaults",
            "not a valid key vault name",
        ),
        (
            "port out of range",
            serde_json::json!({"targets": [{"fqdn": "x.example.com", "port": 70000}]}),
            "port",
            "port",
        ),
        (
            "unknown key",
            serde_json::json!({"storage_account": [{"name": "mystorage"}]}),
            "storage_account",
            "did you mean `storage_accounts`?",
        ),
    ];
    let netprobe = env!("CARGO_BIN_EXE_netprobe");
    for (what, bad, field, reason) in cases {
        // A valid config with the one mistake merged in.
        let mut cfg = serde_json::json!({
            "region": "eastus",
            "workspace": {"id": TEST_WORKSPACE_ID, "name": "ws1"},
        });
        for (k, v) in bad.as_object().unwrap() {
            cfg[k] = v.clone();
        }
        let values = serde_json::json!({ "config": cfg });
        for which in HELMS {
            let (ok, _, err) = template_values(which, &values);
            assert!(!ok, "{which}: {what} installed");
            assert!(err.contains("schema") && err.contains(field), "{which}: {what}: {err}");
        }
        let out = Command::new(netprobe)
            .args(["check-config", "-f"])
            .arg(values_file(&values))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(err.contains(reason) && err.contains("(config)"), "{what}: {err}");
    }
    // The same values without the mistake pass both.
    let good =
        serde_json::json!({"config": {"region": "eastus", "workspace": {"id": TEST_WORKSPACE_ID, "name": "ws1"}}});
    for which in HELMS {
        let (ok, _, err) = template_values(which, &good);
        assert!(ok, "{which}: {err}");
    }
    let out = Command::new(netprobe)
        .args(["check-config", "-f"])
        .arg(values_file(&good))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid, 3 targets, 2 resolvers"));
}

/// `image.digest` pins the image by digest (the signed one), before `tag`;
/// a digest that is not `sha256:<64 hex>` fails the install.
#[test]
fn the_image_can_be_pinned_by_digest() {
    let digest = format!("sha256:{}", "ab".repeat(32));
    for which in HELMS {
        let h = docs(&template(
            which,
            &[&format!("image.digest={digest}"), "image.tag=9.9.9"],
        ));
        let ds = find(&h, "DaemonSet", "netprobe");
        assert_eq!(
            ds["spec"]["template"]["spec"]["containers"][0]["image"],
            format!("ghcr.io/netprobe/netprobe@{digest}").as_str()
        );
        let mut c = helm(which);
        c.args(["template", "netprobe"])
            .arg(chart())
            .arg("-f")
            .arg(base_values())
            .args(["--set", "image.digest=latest"]);
        let (ok, _, err) = run(&mut c);
        assert!(!ok && err.contains("digest"), "{which}: {err}");
    }
}

/// The chart's README is generated from values.yaml (scripts/gen; a stale
/// one fails tests/prometheus.rs's check of generated files): every value
/// has a row with its default and a description.
#[test]
fn the_chart_readme_documents_every_value() {
    let readme = std::fs::read_to_string(chart().join("README.md")).unwrap();
    let rows: Vec<&str> = readme.lines().filter(|l| l.starts_with("| `")).collect();
    assert!(rows.len() >= 30, "{} rows", rows.len());
    for row in &rows {
        let cells: Vec<&str> = row.split(" | ").collect();
        assert!(
            cells.len() == 3 && cells[2].trim_end_matches(" |").trim().len() > 3,
            "a value without a description: {row}"
        );
    }
    // Every top-level value is in it.
    let values: Value = serde_saphyr::from_str(&std::fs::read_to_string(chart().join("values.yaml")).unwrap()).unwrap();
    for key in values.as_object().unwrap().keys() {
        assert!(
            rows.iter()
                .any(|r| r.starts_with(&format!("| `{key}`")) || r.starts_with(&format!("| `{key}."))),
            "{key} has no row"
        );
    }
}

/// Artifact Hub's annotations parse, and say the truth: the image at the
/// chart's appVersion for both architectures, the license, links, and
/// changes of the kinds Artifact Hub knows.
#[test]
fn artifact_hub_annotations() {
    let c: Value = serde_saphyr::from_str(&std::fs::read_to_string(chart().join("Chart.yaml")).unwrap()).unwrap();
    let ann = &c["annotations"];
    let sub = |k: &str| -> Value { serde_saphyr::from_str(ann[k].as_str().unwrap()).unwrap() };
    assert_eq!(ann["artifacthub.io/license"], "Apache-2.0");
    let images = sub("artifacthub.io/images");
    assert_eq!(
        images[0]["image"],
        format!("ghcr.io/netprobe/netprobe:{}", c["appVersion"].as_str().unwrap()).as_str()
    );
    assert_eq!(
        images[0]["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64"])
    );
    for l in sub("artifacthub.io/links").as_array().unwrap() {
        assert!(l["url"].as_str().unwrap().starts_with("https://"), "{l}");
    }
    let kinds = ["added", "changed", "deprecated", "removed", "fixed", "security"];
    for ch in sub("artifacthub.io/changes").as_array().unwrap() {
        assert!(kinds.contains(&ch["kind"].as_str().unwrap()), "{ch}");
        assert!(!ch["description"].as_str().unwrap().is_empty());
    }
    assert!(c["icon"].as_str().unwrap().starts_with("https://"));
    assert!(root().join("docs/icon.svg").exists());
    assert!(c["kubeVersion"].as_str().is_some());
    assert_eq!(c["version"], c["appVersion"], "the chart and the app share one version");
}

/// What a released chart fixed and an upgrade must keep: the DaemonSet's
/// selector (immutable: a change fails `helm upgrade`), and the objects by
/// kind and name (a renamed one is deleted and created anew). Each release
/// keeps its record in tests/testdata/helm/released/<version>.json
/// (`NETPROBE_WRITE_CHART_RECORD=1` writes the current one); the chart
/// must keep every record's.
#[test]
fn an_upgrade_from_every_released_chart_keeps_its_immutable_fields() {
    let record = |yaml: &str| {
        let h = docs(yaml);
        let mut objects: Vec<String> = h
            .iter()
            .map(|d| {
                format!(
                    "{}/{}",
                    d["kind"].as_str().unwrap(),
                    d["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect();
        objects.sort();
        serde_json::json!({
            "daemonset_selector": find(&h, "DaemonSet", "netprobe")["spec"]["selector"],
            "service_selector": find(&h, "Service", "netprobe")["spec"]["selector"],
            "objects": objects,
        })
    };
    let now = record(&template("helm3", EVERYTHING));
    let dir = root().join("tests/testdata/helm/released");
    let current = dir.join(format!("{}.json", env!("CARGO_PKG_VERSION")));
    if std::env::var_os("NETPROBE_WRITE_CHART_RECORD").is_some() {
        std::fs::write(&current, serde_json::to_string_pretty(&now).unwrap() + "\n").unwrap();
    }
    assert!(
        current.exists(),
        "no record of this version's chart: NETPROBE_WRITE_CHART_RECORD=1 cargo nextest run -E 'test(an_upgrade_from)'"
    );
    let mut checked = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let old: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        assert_eq!(
            now["daemonset_selector"], old["daemonset_selector"],
            "{name}: the DaemonSet selector changed"
        );
        assert_eq!(
            now["service_selector"], old["service_selector"],
            "{name}: the Service selector changed"
        );
        let gone: Vec<&Value> = old["objects"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| !now["objects"].as_array().unwrap().contains(o))
            .collect();
        assert!(gone.is_empty(), "{name}: objects renamed or removed since: {gone:?}");
        checked += 1;
    }
    assert!(checked >= 1);
}
