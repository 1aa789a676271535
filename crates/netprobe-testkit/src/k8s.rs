//! Rendering and reading Kubernetes manifests in tests: `kubectl kustomize`,
//! a kustomization assembled from resources and components, and the
//! objects of a multi-document YAML.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// `kubectl kustomize dir`.
pub fn kustomize(dir: &Path) -> String {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("kubectl (with kustomize) is required");
    assert!(
        out.status.success(),
        "kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Renders a kustomization of `resources` and `components` (paths relative
/// to `root`), written to a temporary folder under `root/target` (kustomize
/// takes only relative paths to components).
pub fn kustomize_with(root: &Path, resources: &[&str], components: &[&str]) -> String {
    let dir = tempfile::Builder::new()
        .prefix("kz")
        .tempdir_in(root.join("target"))
        .unwrap();
    let section = |key: &str, items: &[&str]| {
        if items.is_empty() {
            return String::new();
        }
        let list: String = items.iter().map(|i| format!("  - ../../{i}\n")).collect();
        format!("{key}:\n{list}")
    };
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n{}{}",
            section("resources", resources),
            section("components", components)
        ),
    )
    .unwrap();
    kustomize(dir.path())
}

/// The objects of a multi-document YAML (empty and comment-only documents skipped).
pub fn docs(yaml: &str) -> Vec<Value> {
    yaml.split("\n---\n")
        .map(|d| d.trim_start_matches("---\n"))
        .filter(|d| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .map(|d| serde_saphyr::from_str::<Value>(d).unwrap_or_else(|e| panic!("{e}\n{d}")))
        .collect()
}

/// The object of `kind` named `name`.
pub fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind}/{name}"))
}

/// The Kubernetes version manifests are validated against.
pub const K8S_VERSION: &str = "1.32.0";

/// Validates every object of `yaml` with kubernetes-validate (the pinned
/// PyPI tool `scripts/test` installs into `root/target/tools-venv`) against
/// [`K8S_VERSION`], strict: unknown fields fail. The monitoring CRDs
/// (PodMonitor, PrometheusRule) have no schema there and are the only
/// objects allowed to go unvalidated.
pub fn validate(root: &Path, label: &str, yaml: &str) {
    let tool = root.join("target/tools-venv/bin/kubernetes-validate");
    assert!(
        tool.exists(),
        "{} is missing: scripts/test installs it (pip, scripts/requirements-test.txt)",
        tool.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("{label}.yaml"));
    std::fs::write(&file, yaml).unwrap();
    let out = Command::new(&tool)
        .args(["-k", K8S_VERSION, "--strict"])
        .arg(&file)
        .output()
        .expect("kubernetes-validate runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{label}: kubernetes-validate failed:\n{text}");
    let crd = |line: &str| {
        ["PodMonitor", "PrometheusRule"].iter().any(|k| {
            line.contains(&format!("Couldn't find schema for kind {k} with api version"))
                && line.contains("monitoring.coreos.com/v1")
        })
    };
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            line.starts_with("INFO") && line.contains(" passed for resource ") || crd(line),
            "{label}: {line}"
        );
    }
    let passed = text.lines().filter(|l| l.contains(" passed for resource ")).count();
    let core = docs(yaml)
        .iter()
        .filter(|d| {
            !d["apiVersion"]
                .as_str()
                .unwrap_or("")
                .ends_with("monitoring.coreos.com/v1")
        })
        .count();
    assert_eq!(passed, core, "{label}: every core object must be validated:\n{text}");
}

/// (apiGroup, resource, verb) of every rule of an RBAC role.
pub fn rules_of(role: &serde_json::Value) -> Vec<(String, String, String)> {
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|g| g.as_str().unwrap().to_string())
            .collect()
    };
    let mut out = Vec::new();
    for r in role["rules"].as_array().unwrap() {
        for g in strings(&r["apiGroups"]) {
            for res in strings(&r["resources"]) {
                for v in strings(&r["verbs"]) {
                    out.push((g.clone(), res.clone(), v));
                }
            }
        }
    }
    out
}

/// The agent's RBAC in a rendering (kustomize's or Helm's): `get nodes`
/// cluster-wide and `create events` in `default`, bound to its service
/// account, nothing more (no patch, no events.k8s.io, no other namespace).
pub fn assert_least_privilege(all: &[serde_json::Value]) {
    let t = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    let cluster_roles: Vec<&serde_json::Value> = all.iter().filter(|o| o["kind"] == "ClusterRole").collect();
    assert_eq!(cluster_roles.len(), 1, "one ClusterRole");
    assert_eq!(rules_of(cluster_roles[0]), [t("", "nodes", "get")]);
    let roles: Vec<&serde_json::Value> = all.iter().filter(|o| o["kind"] == "Role").collect();
    assert_eq!(roles.len(), 1, "one Role");
    assert_eq!(roles[0]["metadata"]["namespace"], "default");
    assert_eq!(
        rules_of(roles[0]),
        [
            t("", "events", "create"),
            t("discovery.k8s.io", "endpointslices", "get")
        ]
    );
    // The EndpointSlice rule names the one object it may read.
    let slices = roles[0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resources"][0] == "endpointslices")
        .unwrap();
    assert_eq!(slices["resourceNames"], serde_json::json!(["kubernetes"]));
    let binding = all
        .iter()
        .find(|o| o["kind"] == "RoleBinding")
        .expect("a RoleBinding for the Events Role");
    assert_eq!(binding["metadata"]["namespace"], "default");
    assert_eq!(binding["roleRef"]["name"], roles[0]["metadata"]["name"]);
    assert_eq!(binding["subjects"][0]["kind"], "ServiceAccount");
}

/// The agent's NetworkPolicy: ingress only to the metrics port and only
/// from named peers; egress open but for IMDS and the WireServer, which is
/// reachable for DNS (port 53) only.
pub fn assert_agent_network_policy(np: &serde_json::Value) {
    let spec = &np["spec"];
    assert_eq!(spec["policyTypes"], serde_json::json!(["Ingress", "Egress"]), "{np}");
    let ingress = spec["ingress"].as_array().unwrap();
    assert_eq!(ingress.len(), 1);
    assert_eq!(ingress[0]["ports"][0]["port"], 9469);
    assert!(
        ingress[0]["from"].as_array().is_some_and(|f| !f.is_empty()),
        "ingress from anyone: {np}"
    );
    let egress = spec["egress"].as_array().unwrap();
    let blocks: Vec<&serde_json::Value> = egress
        .iter()
        .flat_map(|r| r["to"].as_array().unwrap().iter())
        .filter_map(|p| p.get("ipBlock"))
        .collect();
    let world = blocks.iter().find(|b| b["cidr"] == "0.0.0.0/0").expect("IPv4 egress");
    let except: Vec<&str> = world["except"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.as_str())
        .collect();
    assert!(
        except.contains(&"169.254.169.254/32") && except.contains(&"168.63.129.16/32"),
        "{except:?}"
    );
    let wireserver = egress
        .iter()
        .find(|r| r["to"][0]["ipBlock"]["cidr"] == "168.63.129.16/32")
        .expect("DNS to 168.63.129.16");
    let ports: Vec<(i64, &str)> = wireserver["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["port"].as_i64().unwrap(), p["protocol"].as_str().unwrap()))
        .collect();
    assert_eq!(ports, [(53, "UDP"), (53, "TCP")]);
}
