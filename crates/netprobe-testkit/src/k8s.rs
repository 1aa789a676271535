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
