//! Configuration: the issue's example works as written, defaults apply, and
//! every bad input in `tests/testdata/invalid-*.yaml` gets the message its
//! `# expect:` lines name (file, line:column, field, what is expected).

use std::path::{Path, PathBuf};

use netprobe::azure::Cloud;
use netprobe::config::{Config, ResolverSource};
use netprobe::model::Expect;
use netprobe::service::Service;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata")
}

#[test]
fn every_invalid_fixture_fails_with_its_expected_message() {
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(testdata())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("invalid-") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let expected: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("# expect: ")).collect();
        assert!(!expected.is_empty(), "{name} has no `# expect:` line");
        let err = match Config::load(&path) {
            Ok(_) => panic!("{name} was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(&name), "{name}: the message must name the file: {err}");
        for want in expected {
            assert!(err.contains(want), "{name}: expected {want:?} in:\n{err}");
        }
        assert!(!err.contains('\n'), "{name}: one line please: {err}");
        netprobe_testkit::assert_config_error_readable(&err);
        checked += 1;
    }
    assert!(checked >= 25, "only {checked} fixtures");
}

fn issue_example(dir: &Path) -> PathBuf {
    let resolv = dir.join("node-resolv.conf");
    std::fs::write(&resolv, "nameserver 10.224.0.10\nsearch internal.cloudapp.net\n").unwrap();
    let ca = dir.join("ca.pem");
    let ca_pem = netprobe_sim::pki::Ca::new("firewall CA").unwrap();
    std::fs::write(&ca, ca_pem.cert_pem()).unwrap();
    let text = std::fs::read_to_string(testdata().join("valid-issue-example.yaml"))
        .unwrap()
        .replace("@NODE_RESOLV_CONF@", resolv.to_str().unwrap())
        .replace("@CA_FILE@", ca.to_str().unwrap());
    let path = dir.join("netprobe.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_issue_example_works_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::load(&issue_example(dir.path())).unwrap();
    assert_eq!(cfg.cloud, Cloud::Public);
    assert_eq!(cfg.region.as_deref(), Some("eastus"));
    assert_eq!(cfg.timeout, std::time::Duration::from_secs(5));
    let got: Vec<(&str, &str, Service)> = cfg
        .targets
        .iter()
        .map(|t| (t.name.as_str(), t.fqdn.as_str(), t.service))
        .collect();
    let id = "3f2c9d1e-8b7a-4c6d-9e0f-1a2b3c4d5e6f";
    let want = vec![
        (
            "workspace-api",
            format!("{id}.workspace.eastus.api.azureml.ms"),
            Service::Workspace,
        ),
        (
            "workspace-cert",
            format!("{id}.workspace.eastus.cert.api.azureml.ms"),
            Service::Workspace,
        ),
        (
            "workspace-notebooks",
            format!("ml-mlws-eastus-{id}.eastus.notebooks.azure.net"),
            Service::Workspace,
        ),
        (
            "storage-mlwsstore01-blob",
            "mlwsstore01.blob.core.windows.net".into(),
            Service::Storage,
        ),
        (
            "storage-mlwsstore01-file",
            "mlwsstore01.file.core.windows.net".into(),
            Service::Storage,
        ),
        (
            "keyvault-mlws-kv-01",
            "mlws-kv-01.vault.azure.net".into(),
            Service::Keyvault,
        ),
        ("acr-mlwsacr01", "mlwsacr01.azurecr.io".into(), Service::Acr),
        (
            "acr-mlwsacr01-data-eastus",
            "mlwsacr01.eastus.data.azurecr.io".into(),
            Service::Acr,
        ),
        (
            "other.blob.core.windows.net",
            "other.blob.core.windows.net".into(),
            Service::Storage,
        ),
    ];
    let want: Vec<(&str, &str, Service)> = want.iter().map(|(a, b, c)| (*a, b.as_str(), *c)).collect();
    assert_eq!(got, want);
    let other = cfg.targets.last().unwrap();
    assert_eq!(other.expect, Expect::Private);
    assert_eq!(
        other.expected_ips,
        vec!["10.1.2.3".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(other.privatelink_zone, None);
    let names: Vec<&str> = cfg.resolvers.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["system", "node", "azure"]);
    assert_eq!(
        cfg.resolvers[0].source,
        ResolverSource::ResolvConf(vec!["/etc/resolv.conf".into()])
    );
    assert_eq!(
        cfg.resolvers[2].source,
        ResolverSource::Servers(vec!["168.63.129.16:53".parse().unwrap()])
    );
    assert_eq!(cfg.connect_via, 0);
    assert_eq!(cfg.private_ranges.len(), 5);
    assert!(cfg.extra_ca_file.is_some());
}

#[test]
fn defaults_apply_when_sections_are_omitted() {
    let cfg = Config::from_yaml(
        "region: westeurope\ncontainer_registries:\n  - name: RegOne01\n",
        "t.yaml",
        None,
    )
    .unwrap();
    let names: Vec<&str> = cfg.targets.iter().map(|t| t.fqdn.as_str()).collect();
    assert_eq!(names, ["regone01.azurecr.io", "regone01.westeurope.data.azurecr.io"]);
    assert_eq!(cfg.resolvers.len(), 1);
    assert_eq!(cfg.resolvers[0].name, "system");
    assert_eq!(cfg.timeout, netprobe::config::DEFAULT_TIMEOUT);
    assert_eq!(cfg.concurrency, netprobe::config::DEFAULT_CONCURRENCY);
    let cfg = Config::from_yaml("storage_accounts:\n  - name: acct01\n", "t.yaml", None).unwrap();
    let names: Vec<&str> = cfg.targets.iter().map(|t| t.fqdn.as_str()).collect();
    assert_eq!(names, ["acct01.blob.core.windows.net", "acct01.file.core.windows.net"]);
}

#[test]
fn sovereign_clouds_derive_their_own_names() {
    let y = "cloud: usgov\nregion: usgovvirginia\nkey_vaults: [kv1x]\ncontainer_registries:\n  - name: regus01\n";
    let cfg = Config::from_yaml(y, "t.yaml", None).unwrap();
    let names: Vec<&str> = cfg.targets.iter().map(|t| t.fqdn.as_str()).collect();
    assert_eq!(
        names,
        [
            "kv1x.vault.usgovcloudapi.net",
            "regus01.azurecr.us",
            "regus01.usgovvirginia.data.azurecr.us"
        ]
    );
    let y = "cloud: china\nstorage_accounts:\n  - name: acctcn\n    services: [dfs]\n";
    let cfg = Config::from_yaml(y, "t.yaml", None).unwrap();
    assert_eq!(cfg.targets[0].fqdn, "acctcn.dfs.core.chinacloudapi.cn");
    assert_eq!(
        cfg.targets[0].privatelink_zone.as_deref(),
        Some("privatelink.dfs.core.chinacloudapi.cn")
    );
}

#[test]
fn hostile_input_never_panics() {
    // Deep nesting, anchors, binary junk, huge numbers: all errors, no panic.
    let inputs = [
        "[".repeat(10_000),
        "a: &a [*a]".to_string(),
        "key_vaults: [\u{0}]".to_string(),
        "concurrency: 99999999999999999999999".to_string(),
        "targets:\n  - fqdn: a.b\n    port: -1\n".to_string(),
        "targets: {}".to_string(),
        String::from_utf8_lossy(&[0xff, 0xfe, 0x00, 0x41]).to_string(),
    ];
    for input in inputs {
        let r = std::panic::catch_unwind(|| Config::from_yaml(&input, "hostile.yaml", None));
        let r = r.unwrap_or_else(|_| panic!("panicked on {:?}", &input[..input.len().min(40)]));
        assert!(r.is_err(), "accepted {:?}", &input[..input.len().min(40)]);
    }
}

#[test]
fn resolv_conf_falls_back_when_the_first_file_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("etc-resolv.conf"), "nameserver 10.224.0.10\n").unwrap();
    let y = "key_vaults: [kvone]\nresolvers:\n  - name: node\n    resolv_conf: run/systemd/resolve/resolv.conf\n    resolv_conf_fallback: etc-resolv.conf\n";
    let cfg = Config::from_yaml(y, "t.yaml", Some(dir.path())).unwrap();
    match &cfg.resolvers[0].source {
        ResolverSource::ResolvConf(paths) => {
            assert_eq!(paths.len(), 2);
            let servers = netprobe::nodefiles::read_first_resolv_conf(paths).unwrap();
            assert_eq!(servers, vec!["10.224.0.10:53".parse().unwrap()]);
        }
        other => panic!("{other:?}"),
    }
}

/// Inputs whose errors used to show the YAML library's internals: a
/// duplicate key ("set DuplicateKeyPolicy in Options"), a huge document
/// ("budget breached: Nodes { nodes: 250001 }"); and a long value, which is
/// cut rather than shown whole.
#[test]
fn errors_speak_the_configs_terms_and_cut_long_values() {
    let big = format!(
        "key_vaults: [kvone]\nprivate_ranges: [{}]\n",
        vec!["10.0.0.0/8"; 260_000].join(",")
    );
    let long = format!("key_vaults: [kvone]\nregion: {}\n", "x".repeat(5000));
    let long_variant = format!("cloud: {}\nkey_vaults: [kvone]\n", "m".repeat(300));
    let cases = [
        (
            "key_vaults: [kvone]\nkey_vaults: [kvtwo]\n",
            "the key `key_vaults` is given twice",
        ),
        (big.as_str(), "too large for a netprobe configuration (too many nodes)"),
        (long.as_str(), "(5000 characters) is not an Azure region name"),
        (
            long_variant.as_str(),
            "(300 characters), expected one of public, usgov, china",
        ),
        (
            "key_vaults: [kvone]\nmetrics: fulll\n",
            "t.yaml:2:10: metrics: unknown variant `fulll`, expected one of compact, full",
        ),
    ];
    for (yaml, want) in cases {
        let err = Config::from_yaml(yaml, "t.yaml", None).unwrap_err().to_string();
        assert!(err.starts_with("t.yaml:"), "{err}");
        assert!(err.contains(want), "expected {want:?} in: {err}");
        netprobe_testkit::assert_config_error_readable(&err);
    }
}

/// A file named by mistake (a device, a directory) is a clear error naming
/// it, never unbounded memory: the config file itself, a CA bundle, a
/// Service Tags file.
#[test]
fn files_named_by_the_config_must_be_bounded_regular_files() {
    let e = netprobe::config::Config::load(std::path::Path::new("/dev/zero"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("/dev/zero") && e.contains("not a regular file"), "{e}");
    for (key, value) in [
        ("tls:\n  extra_ca_file", "/dev/zero"),
        ("service_tags_file", "/dev/zero"),
        ("tls:\n  extra_ca_file", "/"),
    ] {
        let yaml = format!("key_vaults: [kvone]\n{key}: {value}\n");
        let e = netprobe::config::Config::from_yaml(&yaml, "t.yaml", None)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("t.yaml:") && e.contains("not a regular file"),
            "{key}: {e}"
        );
    }
}

/// Every error of a file in one run (each section's, and each entry's of a
/// list), one line each in the file's order; a region in error is told
/// once, not again by the sections that need it; a URL or host name given
/// for a name says the name.
#[test]
fn every_error_of_a_file_is_told_in_one_run() {
    let text = "region: West Europe
timeout: soon
workspace: {id: 00000000-0000-0000-0000-000000000000, name: ws1}
storage_accounts:
  - name: MyStorage
  - name: goodstore
  - name: mystore.blob.core.windows.net
key_vaults: [https://myvault.vault.azure.net/, ok-vault]
container_registries: [{name: myreg01.azurecr.io}]
resolvers:
  - name: corp
    servers: [dns.corp.example]
connect_via: corp
private_ranges: [172.16.0.0/33]
";
    let err = Config::from_yaml(text, "many.yaml", None).unwrap_err().to_string();
    let lines: Vec<&str> = err.lines().collect();
    let fields: Vec<&str> = lines
        .iter()
        .map(|l| {
            assert!(l.starts_with("many.yaml:"), "{l}");
            l.split(": ").nth(1).unwrap()
        })
        .collect();
    assert_eq!(
        fields,
        [
            "region",
            "timeout",
            "workspace.id",
            "storage_accounts[0].name",
            "storage_accounts[2].name",
            "key_vaults[0]",
            "container_registries[0].name",
            "resolvers[0].servers[0]",
            "private_ranges[0]",
        ],
        "{err}"
    );
    for (line, name) in [(4, "mystore"), (5, "myvault"), (6, "myreg01")] {
        assert!(
            lines[line].contains(&format!("it looks like a URL or host name: the name is \"{name}\"")),
            "{}",
            lines[line]
        );
    }
    for l in &lines {
        netprobe_testkit::assert_config_error_readable(l);
    }
    // One error stays one line, as before.
    let one = Config::from_yaml("region: eastus\nkey_vaults: [a]\n", "one.yaml", None)
        .unwrap_err()
        .to_string();
    assert_eq!(one.lines().count(), 1, "{one}");
}
