//! The `netprobe` binary end to end: exit codes, output formats, the demo.
//! Servers run in this test process; the binary talks to them over loopback.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use netprobe_sim::dns::Records;
use netprobe_sim::https::Reply;
use netprobe_sim::pki::Ca;
use serde_json::Value;

use common::{chain, dns, endpoint, ip};

fn netprobe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netprobe"))
        .args(args)
        .env_remove("NETPROBE_CONFIG")
        .env("RUST_LOG", "off")
        .output()
        .expect("run netprobe")
}

async fn netprobe_async(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        netprobe(&refs)
    })
    .await
    .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn version_help_and_usage_errors() {
    let v = netprobe(&["--version"]);
    assert_eq!(v.status.code(), Some(0));
    assert!(stdout(&v).contains(env!("CARGO_PKG_VERSION")));
    let bad = netprobe(&["probe", "--bogus"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("--bogus"));
    let none = netprobe(&[]);
    assert_eq!(none.status.code(), Some(2));
    let out = netprobe(&["probe", "--once", "--output", "yaml", "--config", "x"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn check_config_exit_codes_and_messages() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata");
    let bad = data.join("invalid-storage-name.yaml");
    let o = netprobe(&["check-config", "--config", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("invalid-storage-name.yaml:4:11: storage_accounts[0].name"),
        "{err}"
    );
    let o = netprobe(&["probe", "--once", "--config", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "probe refuses a bad config too");
    let o = netprobe(&["check-config", "--config", "/nonexistent/netprobe.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("/nonexistent/netprobe.yaml: cannot read the config file"),
        "{}",
        stderr(&o)
    );

    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("ok.yaml");
    std::fs::write(
        &good,
        "region: eastus\nkey_vaults: [kv-one]\nresolvers:\n  - name: azure\n    servers: [168.63.129.16]\n",
    )
    .unwrap();
    let o = netprobe(&["check-config", "-c", good.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("valid, 1 targets"));

    // A node's resolv.conf that is not here (check-config off the node): a
    // warning naming the resolver and the files, not a failure.
    let node = dir.path().join("node.yaml");
    std::fs::write(
        &node,
        "key_vaults: [kv-one]\nresolvers:\n  - name: node\n    resolv_conf: /host/no/resolv.conf\n    resolv_conf_fallback: /host/no/etc-resolv.conf\n",
    )
    .unwrap();
    let o = netprobe(&["check-config", "-c", node.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("warning: not checked here: resolver \"node\": cannot read /host/no/resolv.conf")
            && err.contains("/host/no/etc-resolv.conf"),
        "{err}"
    );
    netprobe_testkit::assert_readable(&err);
}

/// A node whose resolv.conf is missing or empty: `probe --once` reports the
/// resolver's state as a finding (exit 1, a cause and a fix), never exit 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_resolv_conf_is_a_finding_not_a_crash() {
    let mut r = Records::new();
    chain(
        &mut r,
        "kvone.vault.azure.net",
        "kvone.privatelink.vaultcore.azure.net",
        &[ip("127.0.10.9")],
    );
    let server = dns(r).await;
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty-resolv.conf");
    std::fs::write(&empty, "# no nameserver here\nsearch example\n").unwrap();
    for (file, says) in [
        (dir.path().join("missing.conf"), "cannot read"),
        (empty.clone(), "has no usable `nameserver` line"),
    ] {
        let cfg = dir.path().join("netprobe.yaml");
        std::fs::write(
            &cfg,
            format!(
                "timeout: 500ms\nkey_vaults: [kvone]\nprivate_ranges: [127.0.10.0/24]\nresolvers:\n  - name: azure\n    servers: [\"{}\"]\n  - name: node\n    resolv_conf: {}\nconnect_via: azure\n",
                server.addr(),
                file.display()
            ),
        )
        .unwrap();
        let o = netprobe_async(vec![
            "probe".into(),
            "--once".into(),
            "-o".into(),
            "json".into(),
            "-c".into(),
            cfg.display().to_string(),
        ])
        .await;
        assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
        let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        let node = v["resolvers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "node")
            .unwrap();
        assert_eq!(node["up"], false, "{node}");
        let t = &v["targets"][0];
        let cause = t["causes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["resolver"] == "node")
            .unwrap();
        assert_eq!(cause["cause"], "dns_error");
        let text = cause["diagnosis"].as_str().unwrap();
        assert!(
            text.contains("has no DNS server to ask") && text.contains(says),
            "{text}"
        );
        netprobe_testkit::assert_readable(text);
    }
}

#[test]
fn targets_prints_derived_names() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("t.yaml");
    std::fs::write(
        &cfg,
        "region: eastus\nworkspace:\n  id: 3F2C9D1E-8B7A-4C6D-9E0F-1A2B3C4D5E6F\n  name: mlws\ncontainer_registries:\n  - name: mlwsacr01\n",
    )
    .unwrap();
    let o = netprobe(&["targets", "-c", cfg.to_str().unwrap(), "-o", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let fqdns: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["fqdn"].as_str().unwrap())
        .collect();
    assert_eq!(fqdns.len(), 5);
    assert_eq!(
        fqdns[0],
        "3f2c9d1e-8b7a-4c6d-9e0f-1a2b3c4d5e6f.workspace.eastus.api.azureml.ms"
    );
    assert!(fqdns.contains(&"mlwsacr01.eastus.data.azurecr.io"));
    let human = netprobe(&["targets", "-c", cfg.to_str().unwrap()]);
    assert!(stdout(&human).contains("privatelink.azurecr.io"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_once_reports_and_exits_by_health() {
    let ca = Ca::new("cli test CA").unwrap();
    let pe = ip("127.0.10.81");
    let ep = endpoint(
        &ca,
        pe,
        0,
        &["reg81.azurecr.io"],
        Reply::acr_challenge("reg81.azurecr.io"),
    )
    .await;
    let port = ep.addr().port();
    let mut r = Records::new();
    chain(&mut r, "reg81.azurecr.io", "reg81.privatelink.azurecr.io", &[pe]);
    chain(&mut r, "reg82.azurecr.io", "reg82.privatelink.azurecr.io", &[]);
    let server = dns(r).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
    let base = format!(
        "timeout: 2s\nresolvers:\n  - name: azure\n    servers: [\"{}\"]\nprivate_ranges: [127.0.10.0/24]\ntls:\n  extra_ca_file: ca.pem\n",
        server.addr()
    );
    let healthy = dir.path().join("healthy.yaml");
    std::fs::write(
        &healthy,
        format!("{base}targets:\n  - fqdn: reg81.azurecr.io\n    service: acr\n    port: {port}\n"),
    )
    .unwrap();
    let o = netprobe_async(vec![
        "probe".into(),
        "--once".into(),
        "-c".into(),
        healthy.display().to_string(),
    ])
    .await;
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("All 1 targets healthy"), "{text}");
    assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");

    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        format!(
            "{base}targets:\n  - fqdn: reg81.azurecr.io\n    service: acr\n    port: {port}\n  - fqdn: reg82.azurecr.io\n    service: acr\n    port: {port}\n"
        ),
    )
    .unwrap();
    let o = netprobe_async(vec![
        "probe".into(),
        "--once".into(),
        "-c".into(),
        broken.display().to_string(),
        "-o".into(),
        "json".into(),
    ])
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).expect("one JSON document");
    assert_eq!(v["healthy"], false);
    assert!(v["started_at"].as_str().unwrap().ends_with('Z'));
    assert!(v["duration_ms"].as_f64().unwrap() > 0.0);
    let t = &v["targets"][1];
    for key in [
        "name",
        "fqdn",
        "service",
        "port",
        "expect",
        "healthy",
        "cause",
        "diagnosis",
        "reach",
        "dns",
        "connect",
    ] {
        assert!(t.get(key).is_some(), "target lacks {key}: {t}");
    }
    assert_eq!(t["cause"], "record_missing");
    assert_eq!(t["reach"], "skipped");
    let d = &t["dns"][0];
    for key in [
        "resolver",
        "verdict",
        "rcode",
        "cname_chain",
        "addresses",
        "privatelink",
        "duration_ms",
    ] {
        assert!(d.get(key).is_some(), "dns lacks {key}: {d}");
    }
    assert_eq!(d["verdict"], "nxdomain");
    assert_eq!(d["rcode"], "NXDOMAIN");
    assert_eq!(d["cname_chain"][0], "reg82.privatelink.azurecr.io");
    let c = &v["targets"][0]["connect"][0];
    for key in [
        "address",
        "tcp",
        "tls",
        "http_status",
        "tcp_ms",
        "tls_ms",
        "http_ms",
        "cert_not_after",
    ] {
        assert!(c.get(key).is_some(), "connect lacks {key}: {c}");
    }
    assert_eq!(c["http_status"], 401);
    assert_eq!(c["address"], "127.0.10.81");
    drop(ep);
}

#[test]
fn demo_shows_each_failure_mode_with_its_cause() {
    let o = netprobe(&["demo", "--output", "json"]);
    assert_eq!(o.status.code(), Some(1), "the demo has findings: {}", stderr(&o));
    let report = common::parse_report(stdout(&o).as_bytes());
    // The demo's own table says what each site must show.
    let want = common::demo_causes();
    assert_eq!(want.len(), 12);
    assert_eq!(common::causes(&report), want);
    assert!(!report.healthy);
    // The document round-trips: read back and written again, it is the same.
    let again: Value = serde_json::to_value(&report).unwrap();
    assert_eq!(again, serde_json::from_str::<Value>(&stdout(&o)).unwrap());

    let human = netprobe(&["demo"]);
    assert_eq!(human.status.code(), Some(1));
    let text = stdout(&human);
    for l in text.lines() {
        assert!(l.chars().count() <= 100, "line too wide ({}): {l}", l.chars().count());
    }
    let unhealthy = netprobe::demo::sites()
        .iter()
        .filter(|s| s.cause != netprobe::model::Cause::None)
        .count();
    assert!(text.contains(&format!("Findings ({unhealthy}):")), "{text}");
    assert!(text.contains("conditionally forward vaultcore.azure.net"), "{text}");
}

/// A reader that goes away (`netprobe demo | head -3`) cuts the output; it
/// never makes netprobe panic, and the exit code still says what the round found.
#[test]
fn a_closed_stdout_is_not_a_panic() {
    use std::io::Read;
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("netprobe.yaml");
    std::fs::write(&config, "key_vaults: [kvone, kvtwo, kvthree]\n").unwrap();
    let config = config.to_str().unwrap();
    for args in [&["demo"][..], &["targets", "--config", config][..]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_netprobe"))
            .args(args)
            .env_remove("NETPROBE_CONFIG")
            .env("RUST_LOG", "off")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Read nothing: close the pipe at once, as `head` does after its lines.
        drop(child.stdout.take());
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        let status = child.wait().unwrap();
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_ne!(status.code(), Some(101), "{args:?}: {err}");
        assert!(status.code().is_some(), "{args:?}: killed by a signal: {status:?}");
    }
}

/// A resolver that answers NXDOMAIN for every name: `probe --once` says so
/// once ("resolver 'system' answers nothing: check the node's DNS"), with
/// the first target's diagnosis in full and the others by name, not the
/// same diagnosis twenty times. JSON carries it as `shared_cause`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cause_every_target_shares_is_said_once() {
    let server = dns(Records::new()).await;
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (1..=20).map(|i| format!("kvshared{i:02}")).collect();
    let path = dir.path().join("netprobe.yaml");
    std::fs::write(
        &path,
        format!(
            "timeout: 2s\nresolvers:\n  - name: system\n    servers: [\"{}\"]\nkey_vaults: [{}]\n",
            server.addr(),
            names.join(", ")
        ),
    )
    .unwrap();
    let run = |output: &'static str| {
        netprobe_async(vec![
            "probe".into(),
            "--once".into(),
            "-o".into(),
            output.into(),
            "-c".into(),
            path.display().to_string(),
        ])
    };
    let o = run("human").await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let text = stdout(&o);
    assert_eq!(
        text.matches("every target [name_not_found, resolver system]").count(),
        1,
        "{text}"
    );
    // Phrases, whatever the wrapping.
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("resolver 'system' answers nothing"), "{text}");
    assert!(flat.contains("Check the node's DNS first"), "{text}");
    // One diagnosis in full; every target named.
    assert_eq!(text.matches("does not exist (NXDOMAIN").count(), 1, "{text}");
    for n in &names {
        assert!(text.contains(&format!("keyvault-{n} [name_not_found]")), "{n}: {text}");
    }
    let o = run("json").await;
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["shared_cause"]["cause"], "name_not_found");
    assert_eq!(v["shared_cause"]["resolver"], "system");
    assert_eq!(v["shared_cause"]["targets"], 20);
}

/// A region outside the cloud's list is valid (a new region may be) but
/// warned about, with the nearest name or the cloud it belongs to.
#[test]
fn check_config_warns_about_an_unknown_region() {
    let dir = tempfile::tempdir().unwrap();
    for (region, cloud, says) in [
        ("westurope", "public", "did you mean westeurope?"),
        ("usgovvirginia", "public", "set `cloud: usgov`"),
        ("marsnorth", "public", "a region opened since this release is fine"),
        ("westeurope", "public", ""),
        ("chinaeast2", "china", ""),
    ] {
        let path = dir.path().join(format!("{region}.yaml"));
        std::fs::write(&path, format!("cloud: {cloud}\nregion: {region}\nkey_vaults: [kv01]\n")).unwrap();
        let o = netprobe(&["check-config", "-c", path.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{region}: {}", stderr(&o));
        let err = stderr(&o);
        if says.is_empty() {
            assert!(!err.contains("warning"), "{region}: {err}");
        } else {
            assert!(err.contains("warning:") && err.contains(says), "{region}: {err}");
        }
    }
}

/// `check-config -c -` reads the configuration from standard input (a pipe),
/// names it `<stdin>` in its messages, and bounds what it reads.
#[test]
fn check_config_reads_standard_input() {
    let run = |input: Vec<u8>| {
        use std::io::Write;
        let mut child = Command::new(env!("CARGO_BIN_EXE_netprobe"))
            .args(["check-config", "-c", "-"])
            .env_remove("NETPROBE_CONFIG")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        // The reader may stop early (the bound): a closed pipe is fine.
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let o = child.wait_with_output().unwrap();
        writer.join().unwrap();
        o
    };
    let o = run(b"region: eastus\nkey_vaults: [kv01]\n".to_vec());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("<stdin>: valid, 1 targets"), "{}", stdout(&o));
    let o = run(b"region: eastus\nkey_vaults: [https://kv01.vault.azure.net/]\n".to_vec());
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("<stdin>:2:") && stderr(&o).contains("the name is \"kv01\""),
        "{}",
        stderr(&o)
    );
    // More than the 1 MiB a configuration may have: refused, not read whole.
    let mut big = b"region: eastus\nkey_vaults: [kv01]\n".to_vec();
    big.extend(std::iter::repeat_n(b'#', 2 << 20));
    let o = run(big);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("larger than"), "{}", stderr(&o));
}
