//! deploy/ and the Dockerfile: kustomize renders every variant, the rendered
//! all-in-one file is current, every object validates against the
//! Kubernetes schema (kubernetes-validate, pinned version), checkov finds
//! nothing unjustified, and the DaemonSet has the posture the README promises.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn venv_tool(name: &str) -> PathBuf {
    let p = root().join("target/tools-venv/bin").join(name);
    assert!(
        p.exists(),
        "{} is missing: scripts/test installs it (pip, scripts/requirements-test.txt)",
        p.display()
    );
    p
}

fn output(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

use netprobe_testkit::k8s::{docs, find, kustomize, kustomize_with};

#[test]
fn rendered_all_in_one_file_is_current() {
    let rendered = kustomize(&root().join("deploy"));
    let file = std::fs::read_to_string(root().join("deploy/netprobe.yaml")).unwrap();
    assert!(
        rendered == file,
        "deploy/netprobe.yaml is stale: run `kubectl kustomize deploy > deploy/netprobe.yaml`"
    );
}

fn validate(label: &str, yaml: &str) {
    netprobe_testkit::k8s::validate(&root(), label, yaml);
}

#[test]
fn every_variant_renders_and_validates_against_the_kubernetes_schema() {
    validate("default", &kustomize(&root().join("deploy")));
    validate("base", &kustomize(&root().join("deploy/base")));
    let op = kustomize(&root().join("deploy/overlays/prometheus-operator"));
    let kinds: Vec<String> = docs(&op)
        .iter()
        .map(|d| d["kind"].as_str().unwrap().to_string())
        .collect();
    for k in ["PodMonitor", "PrometheusRule", "DaemonSet"] {
        assert!(kinds.iter().any(|x| x == k), "{k} missing in the operator overlay");
    }
    validate("prometheus-operator", &op);
    // Azure Monitor managed Prometheus: the azmonitoring.coreos.com PodMonitor,
    // the same spec as the operator's plus Azure's label limits.
    let az = docs(&kustomize(&root().join("deploy/overlays/azure-monitor")));
    let az_pm = find(&az, "PodMonitor", "netprobe");
    assert_eq!(az_pm["apiVersion"], "azmonitoring.coreos.com/v1");
    assert!(
        !az.iter().any(|d| d["kind"] == "PrometheusRule"),
        "Azure Monitor does not read PrometheusRules"
    );
    let op_docs = docs(&op);
    let op_pm = find(&op_docs, "PodMonitor", "netprobe");
    assert_eq!(op_pm["apiVersion"], "monitoring.coreos.com/v1");
    let mut az_spec = az_pm["spec"].clone();
    for k in ["labelLimit", "labelNameLengthLimit", "labelValueLengthLimit"] {
        assert!(az_spec.as_object_mut().unwrap().remove(k).is_some(), "{k}");
    }
    assert_eq!(az_spec, op_pm["spec"], "the two PodMonitors scrape alike");
    validate(
        "azure-monitor",
        &kustomize(&root().join("deploy/overlays/azure-monitor")),
    );
    // The optional AML inference-router component on top of the base.
    let aml = kustomize_with(&root(), &["deploy/base"], &["deploy/components/aml-inference-router"]);
    let role = find(&docs(&aml), "Role", "netprobe-read-inference-router").clone();
    assert_eq!(
        role["metadata"]["namespace"], "azureml",
        "the Role must stay in azureml"
    );
    validate("aml-inference-router", &aml);
    // The opt-in Node condition: `patch` on nodes/status and the agent's
    // switch, nothing else; neither without the component.
    let cond = kustomize_with(&root(), &["deploy/base"], &["deploy/components/node-condition"]);
    let cond_docs = docs(&cond);
    let rules = find(&cond_docs, "ClusterRole", "netprobe")["rules"].clone();
    assert_eq!(
        rules,
        serde_json::json!([
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch"]}
        ])
    );
    let env = find(&cond_docs, "DaemonSet", "netprobe")["spec"]["template"]["spec"]["containers"][0]["env"].to_string();
    assert!(env.contains("NETPROBE_NODE_CONDITION"), "{env}");
    let base = kustomize(&root().join("deploy"));
    assert!(!base.contains("nodes/status") && !base.contains("NETPROBE_NODE_CONDITION"));
    validate("node-condition", &cond);
    let job = kustomize(&root().join("deploy/jobs"));
    validate("job", &job);
    validate(
        "report-rbac",
        &std::fs::read_to_string(root().join("deploy/rbac/netprobe-report.yaml")).unwrap(),
    );
    // The Job takes its image from the same setting as the DaemonSet.
    let job_image = docs(&job)[0]["spec"]["template"]["spec"]["containers"][0]["image"].clone();
    let all = docs(&kustomize(&root().join("deploy")));
    let ds_image = find(&all, "DaemonSet", "netprobe")["spec"]["template"]["spec"]["containers"][0]["image"].clone();
    assert_eq!(job_image, ds_image);
    assert!(
        ds_image.as_str().unwrap().contains('/'),
        "a registry image, not the placeholder: {ds_image}"
    );
    for f in ["deploy/base/daemonset.yaml", "deploy/jobs/probe-once.yaml"] {
        let text = std::fs::read_to_string(root().join(f)).unwrap();
        assert!(
            !text.contains("ghcr.io"),
            "{f} hard-codes the image; set it in deploy/components/image"
        );
    }
    // The opt-in node resolver: read-only hostPath mounts that never create
    // anything on the host, and the namespace relabelled for them.
    let node = node_resolver_render();
    validate("node-resolver", &node);
    let nd = docs(&node);
    let spec = &find(&nd, "DaemonSet", "netprobe")["spec"]["template"]["spec"];
    let types: Vec<&str> = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["hostPath"]["type"].as_str())
        .collect();
    assert_eq!(types, ["Directory", "File"]);
    assert_eq!(
        find(&nd, "Namespace", "netprobe")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "privileged"
    );
}

/// deploy/base with the node-resolver component.
fn node_resolver_render() -> String {
    kustomize_with(&root(), &["deploy/base"], &["deploy/components/node-resolver"])
}

/// The default install meets Pod Security "restricted" (no hostPath), and
/// its namespace enforces it; no pod spec anywhere in deploy/ breaks
/// "baseline" but the opt-in node resolver's hostPath.
#[test]
fn pod_security_standards() {
    use netprobe_testkit::pss::{Level, pod_spec, violations};
    for (label, yaml) in [
        ("default", kustomize(&root().join("deploy"))),
        (
            "prometheus-operator",
            kustomize(&root().join("deploy/overlays/prometheus-operator")),
        ),
        (
            "azure-monitor",
            kustomize(&root().join("deploy/overlays/azure-monitor")),
        ),
        ("job", kustomize(&root().join("deploy/jobs"))),
    ] {
        let all = docs(&yaml);
        let mut pods = 0;
        for o in &all {
            if let Some(spec) = pod_spec(o) {
                pods += 1;
                let v = violations(spec, Level::Restricted);
                assert!(v.is_empty(), "{label}: {} breaks restricted: {v:?}", o["kind"]);
            }
        }
        assert!(pods > 0, "{label}: no pod spec found");
        if let Some(ns) = all.iter().find(|o| o["kind"] == "Namespace") {
            assert_eq!(
                ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "restricted",
                "{label}"
            );
        }
    }
    let nd = docs(&node_resolver_render());
    let ds = find(&nd, "DaemonSet", "netprobe");
    let v = violations(pod_spec(ds).unwrap(), Level::Baseline);
    assert_eq!(
        v,
        ["volume node-resolved: hostPath", "volume node-resolv-conf: hostPath"]
    );
}

/// checkov on what gets applied: the rendered variants (the raw files hold
/// patches and an image placeholder that only make sense rendered).
#[test]
fn checkov_finds_no_unjustified_problem() {
    let dir = tempfile::Builder::new()
        .prefix("checkov")
        .tempdir_in(root().join("target"))
        .unwrap();
    for (name, yaml) in [
        ("default", kustomize(&root().join("deploy"))),
        (
            "prometheus-operator",
            kustomize(&root().join("deploy/overlays/prometheus-operator")),
        ),
        (
            "azure-monitor",
            kustomize(&root().join("deploy/overlays/azure-monitor")),
        ),
        ("node-resolver", node_resolver_render()),
        ("job", kustomize(&root().join("deploy/jobs"))),
    ] {
        std::fs::write(dir.path().join(format!("{name}.yaml")), yaml).unwrap();
    }
    // --skip-download: no calls to Prisma Cloud (this network has none, and tests send nothing outside).
    for (framework, flag, target) in [
        ("kubernetes", "-d", dir.path().to_str().unwrap()),
        ("dockerfile", "-f", "Dockerfile"),
    ] {
        let (ok, text) = output(
            Command::new(venv_tool("checkov"))
                .args([
                    flag,
                    target,
                    "--framework",
                    framework,
                    "--compact",
                    "--quiet",
                    "--skip-download",
                ])
                .current_dir(root()),
        );
        assert!(ok && text.contains("Failed checks: 0"), "checkov {framework}:\n{text}");
    }
    // Every skip states its reason.
    for f in [
        "deploy/base/daemonset.yaml",
        "deploy/jobs/probe-once.yaml",
        "Dockerfile",
    ] {
        let text = std::fs::read_to_string(root().join(f)).unwrap();
        for line in text.lines().filter(|l| l.contains("checkov")) {
            let reason = line
                .split_once('=')
                .or_else(|| line.split_once(": "))
                .map(|x| x.1.trim())
                .unwrap_or("");
            assert!(reason.len() > 20, "{f}: a skip without a reason: {line}");
        }
    }
}

#[test]
fn daemonset_posture() {
    let all = docs(&kustomize(&root().join("deploy")));
    let ds = find(&all, "DaemonSet", "netprobe");
    let spec = &ds["spec"]["template"]["spec"];
    assert_eq!(
        spec["tolerations"][0]["operator"], "Exists",
        "runs on tainted system, GPU and AML pools"
    );
    assert_eq!(
        spec["nodeSelector"]["kubernetes.io/os"], "linux",
        "never on Windows pools"
    );
    let term = &spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        [0]["matchExpressions"][0];
    assert_eq!(
        (
            term["key"].as_str(),
            term["operator"].as_str(),
            term["values"][0].as_str()
        ),
        (Some("type"), Some("NotIn"), Some("virtual-kubelet")),
        "never on virtual nodes"
    );
    assert_eq!(spec["priorityClassName"], "netprobe-node-monitor");
    let pc = find(&all, "PriorityClass", "netprobe-node-monitor");
    assert_eq!(pc["preemptionPolicy"], "Never", "the probe never evicts a workload");
    assert!(
        pc["value"].as_i64().unwrap() < 1_000_000_000,
        "below the system classes"
    );
    assert!(
        spec["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v.get("hostPath").is_none())
    );
    assert_eq!(spec["dnsPolicy"], "ClusterFirst");
    assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
    assert_eq!(spec["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    assert!(ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"].is_string());
    let c = &spec["containers"][0];
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"][0], "ALL");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    for k in ["requests", "limits"] {
        assert!(
            c["resources"][k]["memory"].is_string() && c["resources"][k]["cpu"].is_string(),
            "{k}"
        );
    }
    let env = c["env"].as_array().unwrap();
    let node = env.iter().find(|e| e["name"] == "NODE_NAME").expect("NODE_NAME");
    assert_eq!(node["valueFrom"]["fieldRef"]["fieldPath"], "spec.nodeName");
    for m in c["volumeMounts"].as_array().unwrap() {
        assert_eq!(m["readOnly"], true, "{m}");
    }
    assert_eq!(
        ds["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scrape"],
        "true"
    );
    let svc = find(&all, "Service", "netprobe");
    assert_eq!(svc["spec"]["clusterIP"], "None");
    // RBAC: exactly what the features need: get its Node (cluster-wide, the
    // only cluster-scoped grant), create core Events in `default` only.
    netprobe_testkit::k8s::assert_least_privilege(&all);
    netprobe_testkit::k8s::assert_agent_network_policy(find(&all, "NetworkPolicy", "netprobe"));
}

/// The base's config is an example to edit: the agent refuses it until the
/// workspace id is a real one (the all-zero placeholder never probes), and
/// then it is valid as it stands.
#[test]
fn the_shipped_example_config_is_valid_once_the_workspace_is_set() {
    let all = docs(&kustomize(&root().join("deploy")));
    let cm = find(&all, "ConfigMap", "netprobe-config");
    let text = cm["data"]["netprobe.yaml"].as_str().unwrap();
    // The /host paths exist on nodes, not here: point them at temp files.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("resolv.conf"), "nameserver 10.224.0.10\n").unwrap();
    let local = text
        .replace(
            "/host/run/systemd/resolve/resolv.conf",
            &dir.path().join("missing-resolved.conf").display().to_string(),
        )
        .replace(
            "/host/etc/resolv.conf",
            &dir.path().join("resolv.conf").display().to_string(),
        );
    let refused = netprobe::config::Config::from_yaml(&local, "configmap netprobe-config", None)
        .expect_err("the all-zero workspace id is refused")
        .to_string();
    assert!(
        refused.contains("workspace.id") && refused.contains("all-zero placeholder"),
        "{refused}"
    );
    let local = local.replace(
        "00000000-0000-0000-0000-000000000000",
        "1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d",
    );
    let cfg = netprobe::config::Config::from_yaml(&local, "configmap netprobe-config", None)
        .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = cfg.resolvers.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["system", "azure"]);
    assert_eq!(cfg.targets.len(), 8);
}

/// The names of the packages the `netprobe` binary links with these cargo
/// feature arguments (normal dependencies only, this machine's target).
fn linked_packages(features: &[&str]) -> Vec<String> {
    let o = std::process::Command::new("cargo")
        .args(["tree", "--locked", "-p", "netprobe", "-e", "normal", "--prefix", "none"])
        .args(features)
        .current_dir(root())
        .output()
        .expect("cargo tree");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// A node has no use for a simulated VNet or a certificate generator: the
/// image's build (scripts/build-release, no default features) links
/// neither; the default build (`cargo run -- demo`) does.
#[test]
fn the_image_binary_links_no_simulation() {
    let build = std::fs::read_to_string(root().join("scripts/build-release")).unwrap();
    assert!(
        build.contains("--no-default-features"),
        "the image is built without `sim`"
    );
    let image = linked_packages(&["--no-default-features"]);
    assert!(image.iter().any(|p| p == "tokio"), "the tree is read: {image:?}");
    for absent in ["netprobe-sim", "rcgen"] {
        assert!(!image.iter().any(|p| p == absent), "the image links {absent}");
    }
    let default = linked_packages(&[]);
    assert!(
        default.iter().any(|p| p == "netprobe-sim"),
        "the demo build links the simulation"
    );
}

#[test]
fn dockerfile_is_multi_stage_non_root_and_smoke_tested() {
    let d = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    assert!(d.contains(" AS build"), "multi-stage");
    assert!(d.contains("FROM gcr.io/distroless/"), "small final image");
    assert!(d.contains("USER 65532:65532"), "non-root");
    assert!(
        d.contains(r#"RUN ["/usr/local/bin/netprobe", "--version"]"#),
        "smoke step"
    );
    assert!(d.contains("org.opencontainers.image.source"), "OCI labels");
    // Every base pinned by digest (Renovate keeps them current).
    let froms: Vec<&str> = d.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "{froms:?}");
    for from in froms {
        let digest = from
            .split('@')
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or("");
        assert!(
            digest.len() == 71 && digest.starts_with("sha256:") && digest[7..].chars().all(|c| c.is_ascii_hexdigit()),
            "not pinned by digest: {from}"
        );
    }
    // The binary is the one scripts/build-release makes (tests/static_binary.rs
    // runs that link without a C library), so the final image needs none.
    assert!(
        d.contains("scripts/build-release --auditable /netprobe"),
        "built by scripts/build-release"
    );
    let build = std::fs::read_to_string(root().join("scripts/build-release")).unwrap();
    assert!(build.contains("--locked"), "reproducible dependency set");
    assert!(build.contains("+crt-static"), "statically linked");
    assert!(
        d.contains("FROM gcr.io/distroless/static-"),
        "no C library in the final image"
    );
    // The whole Cargo workspace is in the build context: every member and
    // every path dependency of the agent.
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    for dir in ["src", "crates", "benches"] {
        assert!(
            d.contains(&format!("COPY {dir} ./{dir}")),
            "the Dockerfile does not copy {dir}/"
        );
    }
    assert!(
        manifest.contains("\"crates/netprobe-sim\""),
        "members moved: update this test and the Dockerfile"
    );
    // Multi-arch: no architecture pinned anywhere.
    for arch in ["amd64", "x86_64", "arm64", "aarch64"] {
        let pinned = d.lines().any(|l| l.starts_with("FROM") && l.contains(arch));
        assert!(!pinned, "a FROM line pins {arch}");
    }
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    assert!(
        ignore.lines().any(|l| l.trim() == "target"),
        "target/ stays out of the build context"
    );
}
