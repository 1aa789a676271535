//! Azure naming: per-cloud DNS suffixes and `privatelink` zones (see
//! `shared/reference/azure-private-dns.md`), from which each service module
//! (`service::*`) derives its targets.

use serde::{Deserialize, Serialize};

/// An Azure cloud: decides every DNS suffix.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Cloud {
    #[default]
    Public,
    Usgov,
    China,
}

impl Cloud {
    pub const ALL: &'static [Cloud] = &[Cloud::Public, Cloud::Usgov, Cloud::China];
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
    /// The AKS API server's public zone below the region
    /// (`<region>.azmk8s.io`); `None` where no source confirms it (US
    /// Government, China): then any `privatelink` name in the chain counts.
    pub aks: Option<&'static str>,
}

/// The region names (`az account list-locations --query [].name`) each cloud
/// had when this list was written (2026): `check-config` warns about a
/// region outside it, with the nearest name (`westurope` -> `westeurope`).
/// A warning, not an error: a region opened since is valid.
const PUBLIC_REGIONS: &[&str] = &[
    "australiacentral",
    "australiacentral2",
    "australiaeast",
    "australiasoutheast",
    "austriaeast",
    "belgiumcentral",
    "brazilsouth",
    "brazilsoutheast",
    "canadacentral",
    "canadaeast",
    "centralindia",
    "centralus",
    "chilecentral",
    "denmarkeast",
    "eastasia",
    "eastus",
    "eastus2",
    "francecentral",
    "francesouth",
    "germanynorth",
    "germanywestcentral",
    "indonesiacentral",
    "israelcentral",
    "italynorth",
    "japaneast",
    "japanwest",
    "jioindiacentral",
    "jioindiawest",
    "koreacentral",
    "koreasouth",
    "malaysiawest",
    "mexicocentral",
    "newzealandnorth",
    "northcentralus",
    "northeurope",
    "norwayeast",
    "norwaywest",
    "polandcentral",
    "qatarcentral",
    "southafricanorth",
    "southafricawest",
    "southcentralus",
    "southeastasia",
    "southindia",
    "spaincentral",
    "swedencentral",
    "swedensouth",
    "switzerlandnorth",
    "switzerlandwest",
    "uaecentral",
    "uaenorth",
    "uksouth",
    "ukwest",
    "westcentralus",
    "westeurope",
    "westindia",
    "westus",
    "westus2",
    "westus3",
];
const USGOV_REGIONS: &[&str] = &[
    "usdodcentral",
    "usdodeast",
    "usgovarizona",
    "usgovtexas",
    "usgovvirginia",
];
const CHINA_REGIONS: &[&str] = &[
    "chinaeast",
    "chinaeast2",
    "chinaeast3",
    "chinanorth",
    "chinanorth2",
    "chinanorth3",
];

impl Cloud {
    /// The cloud's region names, as of this release ([`PUBLIC_REGIONS`]).
    pub const fn regions(self) -> &'static [&'static str] {
        match self {
            Cloud::Public => PUBLIC_REGIONS,
            Cloud::Usgov => USGOV_REGIONS,
            Cloud::China => CHINA_REGIONS,
        }
    }

    /// A warning when `region` is not one of the cloud's regions, naming the
    /// nearest when one is near (a typo) or the cloud it belongs to.
    pub fn region_warning(self, region: &str) -> Option<String> {
        if self.regions().contains(&region) {
            return None;
        }
        let name = self.name();
        let elsewhere = [Cloud::Public, Cloud::Usgov, Cloud::China]
            .into_iter()
            .find(|c| c.regions().contains(&region));
        let hint = if let Some(c) = elsewhere {
            format!(": it is a region of another cloud; set `cloud: {}`", c.name())
        } else {
            match self
                .regions()
                .iter()
                .map(|r| (crate::input::edit_distance(region, r), *r))
                .filter(|(d, _)| *d <= 2)
                .min()
            {
                Some((_, near)) => format!(": did you mean {near}?"),
                None => " (a region opened since this release is fine: ignore this)".to_string(),
            }
        };
        Some(format!(
            "region {region:?} is not a region of the {name} cloud that netprobe knows{hint}"
        ))
    }

    /// The name `cloud:` takes.
    pub const fn name(self) -> &'static str {
        match self {
            Cloud::Public => "public",
            Cloud::Usgov => "usgov",
            Cloud::China => "china",
        }
    }

    pub const fn zones(self) -> &'static Zones {
        match self {
            Cloud::Public => &Zones {
                aml_api: "api.azureml.ms",
                notebooks: "notebooks.azure.net",
                storage: "core.windows.net",
                keyvault: "vault.azure.net",
                keyvault_privatelink: "privatelink.vaultcore.azure.net",
                acr: "azurecr.io",
                aks: Some("azmk8s.io"),
            },
            Cloud::Usgov => &Zones {
                aml_api: "api.ml.azure.us",
                notebooks: "notebooks.usgovcloudapi.net",
                storage: "core.usgovcloudapi.net",
                keyvault: "vault.usgovcloudapi.net",
                keyvault_privatelink: "privatelink.vaultcore.usgovcloudapi.net",
                acr: "azurecr.us",
                aks: None,
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
                aks: None,
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
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
    pub const ALL: &'static [StorageService] = &[
        StorageService::Blob,
        StorageService::File,
        StorageService::Queue,
        StorageService::Table,
        StorageService::Dfs,
        StorageService::Web,
    ];

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

/// True when `name` is `zone` or lies below it (both without trailing dots,
/// compared case-insensitively).
/// The label that makes a private DNS zone of a public one.
pub const PRIVATELINK: &str = "privatelink";

/// Azure DNS (the WireServer's resolver), where private DNS zones answer.
pub const AZURE_DNS: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(168, 63, 129, 16));

/// The private zone of a public zone: `privatelink.<zone>` (the records live
/// there; clients resolve the public name, whose CNAME leads into it).
pub fn privatelink_zone(public: &str) -> String {
    format!("{PRIVATELINK}.{public}")
}

/// The public zone of a private one: what a custom DNS server must forward
/// to Azure DNS (never the `privatelink.` zone itself).
pub fn public_zone(private: &str) -> &str {
    private
        .strip_prefix(PRIVATELINK)
        .and_then(|z| z.strip_prefix('.'))
        .unwrap_or(private)
}

pub fn in_zone(name: &str, zone: &str) -> bool {
    let name = name.trim_end_matches('.');
    let zone = zone.trim_end_matches('.');
    if name.len() < zone.len() {
        return false;
    }
    let (head, tail) = name.split_at(name.len() - zone.len());
    tail.eq_ignore_ascii_case(zone) && (head.is_empty() || head.ends_with('.'))
}

/// The `privatelink` zone a chain passes through: from the first name with a
/// `privatelink` label, that label onwards (`x.privatelink.blob.core.windows.net`
/// is in `privatelink.blob.core.windows.net`). For targets whose zone the
/// configuration does not say (custom targets).
pub fn privatelink_zone_of<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<String> {
    names.into_iter().find_map(|name| {
        let lower = name.trim_end_matches('.').to_ascii_lowercase();
        if lower.starts_with("privatelink.") {
            return Some(lower);
        }
        lower.find(".privatelink.").map(|i| lower[i + 1..].to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_privatelink_zone_of_a_chain_starts_at_its_label() {
        let chain = [
            "st1.dfs.core.windows.net",
            "st1.privatelink.dfs.core.windows.net",
            "x.store.core.windows.net",
        ];
        assert_eq!(
            privatelink_zone_of(chain).as_deref(),
            Some("privatelink.dfs.core.windows.net")
        );
        assert_eq!(privatelink_zone_of(["a.b.azurecr.io"]), None);
        assert_eq!(privatelink_zone_of(["notprivatelink.example"]), None);
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
