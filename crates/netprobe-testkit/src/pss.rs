//! Kubernetes Pod Security Standards (v1.32), the "baseline" and
//! "restricted" rules, checked on a rendered pod template: what the API
//! server's Pod Security admission would say about a manifest, for tests
//! that cannot reach an API server.

use serde_json::Value;

/// A Pod Security Standards level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Baseline,
    Restricted,
}

const BASELINE_CAPS: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];
const RESTRICTED_VOLUMES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

fn truthy(v: &Value) -> bool {
    v.as_bool() == Some(true)
}

fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .into_iter()
        .flat_map(move |k| spec[k].as_array().into_iter().flatten())
}

/// The rules of `level` the pod spec breaks, one line each (empty: none).
pub fn violations(spec: &Value, level: Level) -> Vec<String> {
    let mut out = Vec::new();
    for k in ["hostNetwork", "hostPID", "hostIPC"] {
        if truthy(&spec[k]) {
            out.push(format!("{k}: true"));
        }
    }
    for v in spec["volumes"].as_array().into_iter().flatten() {
        let name = v["name"].as_str().unwrap_or("?");
        if v.get("hostPath").is_some() {
            out.push(format!("volume {name}: hostPath"));
        }
        if level == Level::Restricted {
            let kind = v.as_object().and_then(|o| o.keys().find(|k| *k != "name").cloned());
            if let Some(kind) = kind
                && !RESTRICTED_VOLUMES.contains(&kind.as_str())
            {
                out.push(format!("volume {name}: type {kind}"));
            }
        }
    }
    for s in spec["securityContext"]["sysctls"].as_array().into_iter().flatten() {
        let n = s["name"].as_str().unwrap_or("");
        if !SAFE_SYSCTLS.contains(&n) {
            out.push(format!("sysctl {n}"));
        }
    }
    let pod_sc = &spec["securityContext"];
    let seccomp = |sc: &Value| sc["seccompProfile"]["type"].as_str().map(str::to_string);
    if seccomp(pod_sc).as_deref() == Some("Unconfined") {
        out.push("pod seccompProfile Unconfined".into());
    }
    for c in containers(spec) {
        let name = c["name"].as_str().unwrap_or("?");
        let sc = &c["securityContext"];
        if truthy(&sc["privileged"]) {
            out.push(format!("{name}: privileged"));
        }
        if sc["procMount"].as_str().is_some_and(|p| p != "Default") {
            out.push(format!("{name}: procMount"));
        }
        if seccomp(sc).as_deref() == Some("Unconfined") {
            out.push(format!("{name}: seccompProfile Unconfined"));
        }
        for p in c["ports"].as_array().into_iter().flatten() {
            if p["hostPort"].as_u64().unwrap_or(0) != 0 {
                out.push(format!("{name}: hostPort"));
            }
        }
        let added: Vec<&str> = sc["capabilities"]["add"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for cap in &added {
            let ok = match level {
                Level::Baseline => BASELINE_CAPS.contains(cap),
                Level::Restricted => *cap == "NET_BIND_SERVICE",
            };
            if !ok {
                out.push(format!("{name}: adds capability {cap}"));
            }
        }
        if level == Level::Restricted {
            if sc["allowPrivilegeEscalation"].as_bool() != Some(false) {
                out.push(format!("{name}: allowPrivilegeEscalation not false"));
            }
            let non_root = sc["runAsNonRoot"].as_bool().or(pod_sc["runAsNonRoot"].as_bool());
            if non_root != Some(true) {
                out.push(format!("{name}: runAsNonRoot not true"));
            }
            if sc["runAsUser"].as_u64().or(pod_sc["runAsUser"].as_u64()) == Some(0) {
                out.push(format!("{name}: runAsUser 0"));
            }
            let profile = seccomp(sc).or_else(|| seccomp(pod_sc));
            if !matches!(profile.as_deref(), Some("RuntimeDefault" | "Localhost")) {
                out.push(format!("{name}: seccompProfile not RuntimeDefault"));
            }
            let drops_all = sc["capabilities"]["drop"]
                .as_array()
                .is_some_and(|d| d.iter().any(|x| x == "ALL"));
            if !drops_all {
                out.push(format!("{name}: capabilities do not drop ALL"));
            }
        }
    }
    out
}

/// The pod template of a workload object (DaemonSet, Job, Deployment), or a
/// Pod's own spec.
pub fn pod_spec(object: &Value) -> Option<&Value> {
    match object["kind"].as_str()? {
        "Pod" => Some(&object["spec"]),
        "DaemonSet" | "Deployment" | "StatefulSet" | "Job" | "ReplicaSet" => Some(&object["spec"]["template"]["spec"]),
        "CronJob" => Some(&object["spec"]["jobTemplate"]["spec"]["template"]["spec"]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn host_path_breaks_baseline_and_a_bare_container_breaks_restricted() {
        let spec = json!({
            "containers": [{"name": "c"}],
            "volumes": [{"name": "h", "hostPath": {"path": "/etc"}}]
        });
        assert_eq!(violations(&spec, Level::Baseline), ["volume h: hostPath"]);
        let r = violations(&spec, Level::Restricted);
        assert!(r.iter().any(|v| v.contains("runAsNonRoot")), "{r:?}");
        assert!(r.iter().any(|v| v.contains("drop ALL")), "{r:?}");
        let ok = json!({
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "c", "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}],
            "volumes": [{"name": "cfg", "configMap": {"name": "x"}}]
        });
        assert!(violations(&ok, Level::Restricted).is_empty());
    }
}
