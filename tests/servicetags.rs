//! Service tags, `expect: public` resource sections, the AML extension's
//! egress targets and the API server target: the trim script on a fixture
//! in the real file's shape, the configuration, and whole rounds against
//! real DNS and TLS servers on loopback (127.0.200.0/24 stands for the
//! internet: it is outside `private_ranges`). The VNet lab (`tests/lab.rs`)
//! runs the same features through an NSG that drops.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use netprobe::cluster::api_server_from_env;
use netprobe::config::{Config, LoadOptions};
use netprobe::model::{Cause, Expect, Reach};
use netprobe::service::Service;
use netprobe::servicetags::{PublishedFrom, ServiceTags};
use netprobe_sim::dns::{Entry, Records};
use netprobe_sim::https::{HttpsServer, Reply};
use netprobe_sim::pki::{Ca, Validity};
use netprobe_sim::{bind_same_port, private_ip, public_ip};

use common::{round, target, trust};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture() -> PathBuf {
    root().join("tests/testdata/service-tags/ServiceTags_Public_20261102.json")
}

#[test]
fn the_trim_script_keeps_the_shape_the_services_and_the_date() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tags.json");
    let status = Command::new("python3")
        .arg(root().join("scripts/trim-service-tags"))
        .arg(fixture())
        .args(["--regions", "westeurope", "-o"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let full = ServiceTags::load(&fixture(), "full").unwrap();
    // The copy has a name without a date: its date comes from inside.
    let trimmed = ServiceTags::load(&out, "trimmed").unwrap();
    assert_eq!(trimmed.published, (full.published.0, PublishedFrom::File));
    assert_eq!(full.published.1, PublishedFrom::FileName);
    assert_eq!((trimmed.change_number, trimmed.cloud.as_str()), (420, "Public"));
    let names: Vec<&str> = trimmed.tags().iter().map(|t| t.name.as_str()).collect();
    for gone in [
        "AzureCloud.westeurope",
        "Sql.WestEurope",
        "AzureMonitor",
        "AzureContainerRegistry.EastUS",
    ] {
        assert!(!names.contains(&gone), "{gone} kept: {names:?}");
    }
    for kept in [
        "AzureContainerRegistry",
        "AzureContainerRegistry.WestEurope",
        "MicrosoftContainerRegistry.WestEurope",
        "AzureFrontDoor.FirstParty",
        "Storage.WestEurope",
    ] {
        assert!(names.contains(&kept), "{kept} dropped: {names:?}");
    }
    // The same answers for the addresses the trimmed copy keeps.
    let ip = "198.51.100.7".parse().unwrap();
    let acr = &["AzureContainerRegistry"];
    assert_eq!(
        trimmed.tag_for(ip, acr, Some("westeurope")).map(|t| &t.name),
        full.tag_for(ip, acr, Some("westeurope")).map(|t| &t.name)
    );
    // A file that is not one is refused with its name.
    let bad = dir.path().join("page.html");
    std::fs::write(&bad, "<html>download</html>").unwrap();
    let out = Command::new("python3")
        .arg(root().join("scripts/trim-service-tags"))
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("page.html"));
}

#[test]
fn resource_sections_take_expect_and_the_extension_derives_its_endpoints() {
    let yaml = format!(
        "region: westeurope\nservice_tags_file: {}\naml_extension: true\n\
         storage_accounts: [{{name: stpublic, services: [blob], expect: public}}]\n\
         key_vaults: [kv-private, {{name: kv-public, expect: any}}]\n\
         container_registries: [{{name: crpublic01, expect: public}}]\n",
        fixture().display()
    );
    let cfg = Config::from_yaml(&yaml, "t.yaml", None).unwrap_or_else(|e| panic!("{e}"));
    let expect = |name: &str| cfg.targets.iter().find(|t| t.name == name).unwrap().expect;
    assert_eq!(expect("storage-stpublic-blob"), Expect::Public);
    assert_eq!(expect("keyvault-kv-private"), Expect::Private);
    assert_eq!(expect("keyvault-kv-public"), Expect::Any);
    assert_eq!(expect("acr-crpublic01"), Expect::Public);
    assert_eq!(expect("acr-crpublic01-data-westeurope"), Expect::Public);
    let egress: Vec<&str> = cfg
        .targets
        .iter()
        .filter(|t| t.service == Service::Egress)
        .map(|t| t.fqdn.as_str())
        .collect();
    assert!(egress.contains(&"westeurope.data.mcr.microsoft.com"), "{egress:?}");
    assert!(
        egress.contains(&"westeurope.dp.kubernetesconfiguration.azure.com"),
        "{egress:?}"
    );
    assert_eq!(cfg.service_tags.as_ref().unwrap().change_number, 420);
    // No API server outside a cluster unless named.
    assert!(!cfg.targets.iter().any(|t| t.service == Service::ApiServer));
}

#[test]
fn the_api_server_comes_from_the_environment_only_as_a_name() {
    assert_eq!(api_server_from_env(Some("10.0.0.1"), Some("443")), None);
    assert_eq!(api_server_from_env(Some("fd00::1"), Some("443")), None);
    assert_eq!(api_server_from_env(None, Some("443")), None);
    assert_eq!(
        api_server_from_env(Some("aks-1-abc.hcp.eastus.azmk8s.io"), Some("443")),
        Some(("aks-1-abc.hcp.eastus.azmk8s.io".into(), 443))
    );
    assert_eq!(
        api_server_from_env(Some("AKS-1.privatelink.eastus.azmk8s.io"), None),
        Some(("aks-1.privatelink.eastus.azmk8s.io".into(), 443))
    );
    let opts = LoadOptions {
        api_server_host: Some(("aks-1.privatelink.eastus.azmk8s.io".into(), 443)),
        ..LoadOptions::default()
    };
    let cfg = Config::from_yaml_with("region: eastus\nkey_vaults: [kv-one]\n", "t.yaml", None, &opts).unwrap();
    let api = cfg.targets.iter().find(|t| t.service == Service::ApiServer).unwrap();
    assert_eq!((api.name.as_str(), api.expect), ("api-server", Expect::Any));
    assert_eq!(api.privatelink_zone.as_deref(), Some("privatelink.eastus.azmk8s.io"));
    // `api_server_fqdn` wins over the environment.
    let cfg = Config::from_yaml_with(
        "key_vaults: [kv-one]\napi_server_fqdn: \"aks-2.hcp.eastus.azmk8s.io:6443\"\n",
        "t.yaml",
        None,
        &opts,
    )
    .unwrap();
    let api = cfg.targets.iter().find(|t| t.service == Service::ApiServer).unwrap();
    assert_eq!((api.fqdn.as_str(), api.port), ("aks-2.hcp.eastus.azmk8s.io", 6443));
    // The node's region (the cluster's) names the private zone, not the
    // workspace's region of the config.
    let on_node = LoadOptions {
        node_region: Some("westeurope".into()),
        ..opts
    };
    let cfg = Config::from_yaml_with("region: eastus\nkey_vaults: [kv-one]\n", "t.yaml", None, &on_node).unwrap();
    let api = cfg.targets.iter().find(|t| t.service == Service::ApiServer).unwrap();
    assert_eq!(
        api.privatelink_zone.as_deref(),
        Some("privatelink.westeurope.azmk8s.io")
    );
}

/// A tags file for loopback: 127.0.200.0/28 is the registry's in West Europe,
/// 127.0.200.0/24 all of West Europe's.
fn loopback_tags(dir: &Path) -> PathBuf {
    let path = dir.join("ServiceTags_Public_20261102.json");
    let v = |name: &str, region: &str, svc: &str, prefix: &str| {
        serde_json::json!({"name": name, "id": name, "properties": {
            "changeNumber": 1, "region": region, "regionId": 0, "platform": "Azure",
            "systemService": svc, "addressPrefixes": [prefix], "networkFeatures": ["NSG"]}})
    };
    let doc = serde_json::json!({"changeNumber": 77, "cloud": "Public", "values": [
        v("AzureCloud.westeurope", "westeurope", "", "127.0.200.0/24"),
        v("AzureContainerRegistry", "", "AzureContainerRegistry", "127.0.200.0/28"),
        v("AzureContainerRegistry.WestEurope", "westeurope", "AzureContainerRegistry", "127.0.200.0/28"),
    ]});
    std::fs::write(&path, doc.to_string()).unwrap();
    path
}

#[tokio::test]
async fn a_round_names_the_tag_flags_a_foreign_answer_and_trusts_the_cluster_ca() {
    let dir = tempfile::tempdir().unwrap();
    let tags = loopback_tags(dir.path());
    let ca = Ca::new("test CA").unwrap();
    let cluster_ca = Ca::new("cluster CA").unwrap();
    let cluster_ca_file = dir.path().join("ca.crt");
    std::fs::write(&cluster_ca_file, cluster_ca.cert_pem()).unwrap();
    let api = "aks-lab-1a2b.5e6f.privatelink.westeurope.azmk8s.io";
    let ips = [public_ip(5), public_ip(40), private_ip(50)];
    let (port, listeners) = bind_same_port(&ips).await.unwrap();
    let mut listeners = listeners.into_iter();
    let leaf = |ca: &Ca, name: &str| ca.leaf(&[name], Validity::Current).unwrap();
    let _servers: Vec<HttpsServer> = vec![
        HttpsServer::serve(
            listeners.next().unwrap(),
            &leaf(&ca, "crpublic01.azurecr.io"),
            Reply::acr_challenge("crpublic01.azurecr.io"),
        )
        .unwrap(),
        HttpsServer::serve(
            listeners.next().unwrap(),
            &leaf(&ca, "crhijack01.azurecr.io"),
            Reply::acr_challenge("crhijack01.azurecr.io"),
        )
        .unwrap(),
        HttpsServer::serve(listeners.next().unwrap(), &leaf(&cluster_ca, api), Reply::new(401, "")).unwrap(),
    ];
    let mut r = Records::new();
    r.insert("crpublic01.azurecr.io".into(), Entry::Addrs(vec![ips[0]]));
    r.insert("crhijack01.azurecr.io".into(), Entry::Addrs(vec![ips[1]]));
    r.insert(api.into(), Entry::Addrs(vec![ips[2]]));
    let dns = common::dns(r).await;
    let yaml = |ca_line: &str| {
        format!(
            "region: westeurope\ntimeout: 2s\nservice_tags_file: {}\napi_server_fqdn: {api}\n{ca_line}\
             container_registries:\n  - {{name: crpublic01, expect: public, data_endpoint_regions: []}}\n  \
             - {{name: crhijack01, expect: public, data_endpoint_regions: []}}\n\
             resolvers: [{{name: test, servers: [\"{}\"]}}]\nprivate_ranges: [127.0.10.0/24]\n",
            tags.display(),
            dns.addr()
        )
    };
    let load = |y: &str| {
        let mut config = Config::from_yaml(y, "t.yaml", None).unwrap_or_else(|e| panic!("{e}"));
        for t in &mut config.targets {
            t.port = port;
        }
        config
    };
    let ca_line = format!("api_server_ca_file: {}\n", cluster_ca_file.display());
    let report = round(load(&yaml(&ca_line)), trust(&ca)).await;

    let public = target(&report, "acr-crpublic01");
    assert!(public.healthy, "{:?}", public.causes);
    assert_eq!(
        public.connect[0].service_tag.as_deref(),
        Some("AzureContainerRegistry.WestEurope")
    );
    let hijack = target(&report, "acr-crhijack01");
    assert_eq!(hijack.cause, Cause::OutsideServiceTag, "{:?}", hijack.causes);
    assert_eq!(hijack.reach, Reach::Ok);
    assert_eq!(hijack.connect[0].service_tag.as_deref(), Some("AzureCloud.westeurope"));
    let text = hijack.diagnosis.as_deref().unwrap();
    assert!(
        text.contains("127.0.200.40") && text.contains("AzureContainerRegistry"),
        "{text}"
    );
    // The human report and the status page show the tag too.
    let human = netprobe::render::human::render(&report);
    assert!(
        human.contains("service tag: 127.0.200.5 in AzureContainerRegistry.WestEurope"),
        "{human}"
    );
    let page = netprobe::render::html::render(Some(&report), &Default::default());
    assert!(page.contains("127.0.200.5 in <b>AzureContainerRegistry.WestEurope</b>"));
    let apiserver = target(&report, "api-server");
    assert!(apiserver.healthy, "{:?}", apiserver.causes);
    assert!(
        apiserver.dns[0].privatelink,
        "the private cluster's name is in the privatelink zone"
    );
    assert_eq!(apiserver.connect[0].http_status, Some(401));

    // Without the cluster CA (off a pod, the default path does not exist),
    // the API server's TLS cannot be verified: a finding naming the file.
    let report = round(load(&yaml("")), trust(&ca)).await;
    let apiserver = target(&report, "api-server");
    assert_eq!(apiserver.cause, Cause::TlsMismatch);
    let detail = apiserver.connect[0].detail.as_deref().unwrap_or_default();
    assert!(
        detail.contains("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"),
        "{detail}"
    );
    // The other targets do not trust the cluster CA.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["targets"][0]["connect"][0]["service_tag"],
        "AzureContainerRegistry.WestEurope"
    );
}
