//! Azure naming: per-cloud DNS suffixes, `privatelink` zones, and the FQDNs a
//! workspace and its resources use (see `shared/reference/azure-private-dns.md`).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::model::{Expect, Service};

/// An Azure cloud: decides every DNS suffix.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cloud {
    #[default]
    Public,
    Usgov,
    China,
}

/// DNS suffixes of one cloud.
#[derive(Debug)]
pub struct Zones {
    /// AML workspace API (`<id>.workspace.<region>.<aml_api>`).
    pub aml_api: &'static str,
    /// AML notebooks.
    pub notebooks: &'static str,
    /// Storage (`<acct>.<svc>.<storage>`).
    pub storage: &'static str,
    /// Key Vault client suffix (`<vault>.<keyvault>`).
    pub keyvault: &'static str,
    /// Key Vault private zone (differs from the client suffix).
    pub keyvault_privatelink: &'static str,
    /// Container registry (`<reg>.<acr>`).
    pub acr: &'static str,
}

impl Cloud {
    pub const fn zones(self) -> &'static Zones {
        match self {
            Cloud::Public => &Zones {
                aml_api: "api.azureml.ms",
                notebooks: "notebooks.azure.net",
                storage: "core.windows.net",
                keyvault: "vault.azure.net",
                keyvault_privatelink: "privatelink.vaultcore.azure.net",
                acr: "azurecr.io",
            },
            Cloud::Usgov => &Zones {
                aml_api: "api.ml.azure.us",
                notebooks: "notebooks.usgovcloudapi.net",
                storage: "core.usgovcloudapi.net",
                keyvault: "vault.usgovcloudapi.net",
                keyvault_privatelink: "privatelink.vaultcore.usgovcloudapi.net",
                acr: "azurecr.us",
            },
            // The China ACR zone is not listed by Microsoft; `azurecr.cn` follows
            // the pattern of the other clouds (marked unsure in the reference).
            Cloud::China => &Zones {
                aml_api: "api.ml.azure.cn",
                notebooks: "notebooks.chinacloudapi.cn",
                storage: "core.chinacloudapi.cn",
                keyvault: "vault.azure.cn",
                keyvault_privatelink: "privatelink.vaultcore.azure.cn",
                acr: "azurecr.cn",
            },
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Cloud::Public => "public",
            Cloud::Usgov => "usgov",
            Cloud::China => "china",
        }
    }
}

/// Storage sub-services that have their own FQDN and private zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageService {
    Blob,
    File,
    Queue,
    Table,
    Dfs,
    Web,
}

impl StorageService {
    pub const fn as_str(self) -> &'static str {
        match self {
            StorageService::Blob => "blob",
            StorageService::File => "file",
            StorageService::Queue => "queue",
            StorageService::Table => "table",
            StorageService::Dfs => "dfs",
            StorageService::Web => "web",
        }
    }
}

/// One name to probe, fully derived and validated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Target {
    /// Stable, unique name (metric label, report key).
    pub name: String,
    /// Lower-case FQDN without the trailing dot.
    pub fqdn: String,
    pub service: Service,
    pub port: u16,
    pub expect: Expect,
    /// The private endpoint's NIC addresses, when known.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expected_ips: Vec<IpAddr>,
    /// The `privatelink` zone the CNAME chain must pass through; `None` means
    /// any `privatelink.` name counts (custom targets).
    pub privatelink_zone: Option<String>,
}

impl Target {
    fn derived(name: String, fqdn: String, service: Service, zone: String) -> Self {
        Target {
            name,
            fqdn,
            service,
            port: 443,
            expect: Expect::Private,
            expected_ips: Vec::new(),
            privatelink_zone: Some(zone),
        }
    }
}

/// The AML workspace API FQDN and its private zone.
pub fn workspace_api(cloud: Cloud, id: &str, region: &str) -> Target {
    let z = cloud.zones();
    Target::derived(
        "workspace-api".into(),
        format!("{id}.workspace.{region}.{}", z.aml_api),
        Service::Workspace,
        format!("privatelink.{}", z.aml_api),
    )
}

/// The AML workspace certificate endpoint.
pub fn workspace_cert(cloud: Cloud, id: &str, region: &str) -> Target {
    let z = cloud.zones();
    Target::derived(
        "workspace-cert".into(),
        format!("{id}.workspace.{region}.cert.{}", z.aml_api),
        Service::Workspace,
        format!("privatelink.{}", z.aml_api),
    )
}

/// The first label of the notebooks FQDN: `ml-<name>-<region>-<id>`, with
/// the workspace name lower-cased, `_` turned into `-`, and cut so that the
/// label stays within DNS's 63 characters. Azure's exact truncation is not
/// documented; the PE NIC holds the authoritative FQDN and
/// `workspace.notebooks_fqdn` overrides this.
pub fn notebooks_label(name: &str, region: &str, id: &str) -> String {
    let fixed = "ml-".len() + 1 + region.len() + 1 + id.len();
    let budget = 63usize.saturating_sub(fixed);
    let cleaned: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c == '_' { '-' } else { c })
        .take(budget)
        .collect();
    let cleaned = cleaned.trim_end_matches('-');
    format!("ml-{cleaned}-{region}-{id}")
}

/// The AML notebooks FQDN.
pub fn workspace_notebooks(cloud: Cloud, name: &str, id: &str, region: &str) -> Target {
    let z = cloud.zones();
    Target::derived(
        "workspace-notebooks".into(),
        format!("{}.{region}.{}", notebooks_label(name, region, id), z.notebooks),
        Service::Workspace,
        format!("privatelink.{}", z.notebooks),
    )
}

/// A notebooks target with an FQDN given explicitly.
pub fn workspace_notebooks_fqdn(cloud: Cloud, fqdn: &str) -> Target {
    let z = cloud.zones();
    Target::derived(
        "workspace-notebooks".into(),
        fqdn.to_string(),
        Service::Workspace,
        format!("privatelink.{}", z.notebooks),
    )
}

pub fn storage(cloud: Cloud, account: &str, svc: StorageService) -> Target {
    let z = cloud.zones();
    let s = svc.as_str();
    Target::derived(
        format!("storage-{account}-{s}"),
        format!("{account}.{s}.{}", z.storage),
        Service::Storage,
        format!("privatelink.{s}.{}", z.storage),
    )
}

pub fn keyvault(cloud: Cloud, vault: &str) -> Target {
    let z = cloud.zones();
    Target::derived(
        format!("keyvault-{vault}"),
        format!("{vault}.{}", z.keyvault),
        Service::Keyvault,
        z.keyvault_privatelink.to_string(),
    )
}

pub fn acr_login(cloud: Cloud, registry: &str) -> Target {
    let z = cloud.zones();
    Target::derived(
        format!("acr-{registry}"),
        format!("{registry}.{}", z.acr),
        Service::Acr,
        format!("privatelink.{}", z.acr),
    )
}

/// A dedicated data endpoint; its records live in the login server's zone.
pub fn acr_data(cloud: Cloud, registry: &str, region: &str) -> Target {
    let z = cloud.zones();
    Target::derived(
        format!("acr-{registry}-data-{region}"),
        format!("{registry}.{region}.data.{}", z.acr),
        Service::Acr,
        format!("privatelink.{}", z.acr),
    )
}

/// True when `name` is `zone` or lies below it (both without trailing dots,
/// compared case-insensitively).
pub fn in_zone(name: &str, zone: &str) -> bool {
    let name = name.trim_end_matches('.');
    let zone = zone.trim_end_matches('.');
    if name.len() < zone.len() {
        return false;
    }
    let (head, tail) = name.split_at(name.len() - zone.len());
    tail.eq_ignore_ascii_case(zone) && (head.is_empty() || head.ends_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f2c9d1e-8b7a-4c6d-9e0f-1a2b3c4d5e6f";

    #[test]
    fn public_cloud_names_follow_the_documented_patterns() {
        let c = Cloud::Public;
        let api = workspace_api(c, ID, "eastus");
        assert_eq!(api.fqdn, format!("{ID}.workspace.eastus.api.azureml.ms"));
        assert_eq!(api.privatelink_zone.as_deref(), Some("privatelink.api.azureml.ms"));
        assert_eq!(
            workspace_cert(c, ID, "eastus").fqdn,
            format!("{ID}.workspace.eastus.cert.api.azureml.ms")
        );
        let nb = workspace_notebooks(c, "mlws", ID, "eastus");
        assert_eq!(nb.fqdn, format!("ml-mlws-eastus-{ID}.eastus.notebooks.azure.net"));
        assert_eq!(nb.privatelink_zone.as_deref(), Some("privatelink.notebooks.azure.net"));
        let st = storage(c, "mlwsstore01", StorageService::File);
        assert_eq!(st.fqdn, "mlwsstore01.file.core.windows.net");
        assert_eq!(
            st.privatelink_zone.as_deref(),
            Some("privatelink.file.core.windows.net")
        );
        let kv = keyvault(c, "mlws-kv-01");
        assert_eq!(kv.fqdn, "mlws-kv-01.vault.azure.net");
        assert_eq!(kv.privatelink_zone.as_deref(), Some("privatelink.vaultcore.azure.net"));
        assert_eq!(acr_login(c, "mlwsacr01").fqdn, "mlwsacr01.azurecr.io");
        let data = acr_data(c, "mlwsacr01", "eastus");
        assert_eq!(data.fqdn, "mlwsacr01.eastus.data.azurecr.io");
        assert_eq!(data.privatelink_zone.as_deref(), Some("privatelink.azurecr.io"));
    }

    #[test]
    fn sovereign_clouds_use_their_own_suffixes() {
        assert_eq!(
            workspace_api(Cloud::Usgov, ID, "usgovvirginia").fqdn,
            format!("{ID}.workspace.usgovvirginia.api.ml.azure.us")
        );
        assert_eq!(keyvault(Cloud::Usgov, "kv1").fqdn, "kv1.vault.usgovcloudapi.net");
        assert_eq!(
            keyvault(Cloud::China, "kv1").privatelink_zone.as_deref(),
            Some("privatelink.vaultcore.azure.cn")
        );
        assert_eq!(
            storage(Cloud::China, "acct", StorageService::Blob).fqdn,
            "acct.blob.core.chinacloudapi.cn"
        );
        assert_eq!(
            workspace_notebooks(Cloud::China, "w", ID, "chinaeast2")
                .privatelink_zone
                .as_deref(),
            Some("privatelink.notebooks.chinacloudapi.cn")
        );
    }

    #[test]
    fn notebooks_label_stays_within_63_characters() {
        let long = "a-very-long-workspace_name-that-goes-on-and-on";
        let label = notebooks_label(long, "southeastasia", ID);
        assert!(label.len() <= 63, "{label} is {} long", label.len());
        assert_eq!(label, format!("ml-a-very-lo-southeastasia-{ID}"));
        assert!(label.ends_with(&format!("-southeastasia-{ID}")));
        assert!(!label.contains("--"), "{label}");
        assert!(!label.contains('_'));
    }

    #[test]
    fn in_zone_matches_whole_labels_only() {
        assert!(in_zone("a.privatelink.azurecr.io", "privatelink.azurecr.io"));
        assert!(in_zone("A.PrivateLink.AzureCR.io.", "privatelink.azurecr.io"));
        assert!(in_zone("privatelink.azurecr.io", "privatelink.azurecr.io"));
        assert!(!in_zone("aprivatelink.azurecr.io", "privatelink.azurecr.io"));
        assert!(!in_zone("azurecr.io", "privatelink.azurecr.io"));
    }
}
