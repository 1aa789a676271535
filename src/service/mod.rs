//! One module per Azure service, behind [`AzureService`]: the credential-free
//! HTTP request that proves the endpoint is the service, how its answer is
//! judged, the facts the answer carries, the fix when the service rejects the
//! request, and what the simulated VNet's endpoint answers. The HTTP phase,
//! the verdict layer, the report and the demo ask [`of`], never a `match` on
//! the service.
//!
//! Adding a service: a file here implementing the trait, its `mod` line and
//! its line in [`services!`], which makes its `Service` value (the
//! `service:` of a custom target, the `service` label), its entry in [`of`]
//! and, when the line names a key (`{ cosmos_accounts }`), that key of the
//! configuration file: the module then has `Section` (the key's value as
//! written, `Default` when absent) and `targets(&Section, &SectionCtx)`.

use std::net::IpAddr;

#[cfg(feature = "sim")]
use netprobe_sim::https::Reply;
use serde::Serialize;

use crate::azure::Cloud;
use crate::input::{ConfigError, Ctx};
use crate::model::{Expect, Reach};
use crate::observation::HttpResponse;

pub mod acr;
pub mod apiserver;
pub mod custom;
pub mod egress;
pub mod keyvault;
pub mod storage;
pub mod workspace;

/// The services, one line each: `Value => "label": module::Type`, and
/// `{ key }` when the service derives targets from a configuration key of
/// its own. Lines are in the order the file's targets are derived. The
/// registry is expanded twice: here (the `Service` enum and [`of`]) and in
/// `config` (the file's keys and their targets).
macro_rules! services {
    ($then:ident) => {
        $then! {
            Workspace => "workspace": workspace::Workspace { workspace },
            Storage => "storage": storage::Storage { storage_accounts },
            Keyvault => "keyvault": keyvault::KeyVault { key_vaults },
            Acr => "acr": acr::Acr { container_registries },
            Custom => "custom": custom::Custom { targets },
            Egress => "egress": egress::Egress { aml_extension },
            ApiServer => "apiserver": apiserver::ApiServer { api_server_fqdn },
        }
    };
}
pub(crate) use services;

/// The `Service` enum and [`of`], from [`services!`].
macro_rules! registry {
    ($($variant:ident => $text:literal : $module:ident :: $ty:ident $({ $key:ident })?),+ $(,)?) => {
        crate::model::string_enum! {
            /// The kind of Azure resource behind a target; decides the HTTP check.
            Service { $($variant => $text),+ }
        }

        /// The registry: each service's module.
        pub fn of(service: Service) -> &'static dyn AzureService {
            match service {
                $(Service::$variant => &$module::$ty),+
            }
        }
    };
}

services!(registry);

/// What a service's configuration section is derived with.
pub struct SectionCtx<'a> {
    /// The file, for messages that name file, line, column and field.
    pub input: &'a Ctx<'a>,
    pub cloud: Cloud,
    /// `region` (the workspace's), when given.
    pub region: Option<&'a str>,
    /// The node's region (the cluster's own), when known.
    pub node_region: Option<&'a str>,
    /// The API server's name and port from the pod's environment
    /// (`KUBERNETES_SERVICE_HOST` when it is a name).
    pub api_server_host: Option<&'a (String, u16)>,
    /// `region: auto` whose node region is not read yet: a section that
    /// needs the region derives nothing for now, rather than failing.
    pub region_pending: bool,
}

impl SectionCtx<'_> {
    /// The region a section needs: `Ok(Some)`, `Ok(None)` while it is
    /// pending (derive nothing yet), or the error `missing` gives.
    pub fn needed_region(&self, missing: impl FnOnce() -> ConfigError) -> Result<Option<&str>, ConfigError> {
        match (self.region, self.region_pending) {
            (Some(r), _) => Ok(Some(r)),
            (None, true) => Ok(None),
            (None, false) => Err(missing()),
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
    /// The Service Tags `systemService`s whose ranges a public address of
    /// this target lies in (empty: not known, nothing is checked).
    #[serde(skip)]
    pub tag_services: &'static [&'static str],
}

impl Target {
    /// The target's privatelink zone: configured, or (custom targets) the
    /// one the chains of `seen` pass through.
    pub fn zone_seen(&self, seen: &crate::observation::TargetObservation) -> Option<String> {
        self.privatelink_zone.clone().or_else(|| {
            let chains = seen.dns.iter().flat_map(|d| match &d.outcome {
                crate::observation::DnsOutcome::Answer(a) => a.chain.as_slice(),
                _ => &[],
            });
            crate::azure::privatelink_zone_of(chains.map(String::as_str))
        })
    }

    /// A target derived from a resource's name: port 443, expected private,
    /// through `zone`.
    pub fn derived(name: String, fqdn: String, service: Service, zone: String) -> Self {
        Target {
            name,
            fqdn,
            service,
            port: 443,
            expect: Expect::Private,
            expected_ips: Vec::new(),
            privatelink_zone: Some(zone),
            tag_services: of(service).tag_services(),
        }
    }
}

/// The request that needs no credentials: `GET path` with these headers.
#[derive(Clone, Copy, Debug)]
pub struct Request {
    pub path: &'static str,
    pub headers: &'static [(&'static str, &'static str)],
}

/// What netprobe knows about one kind of Azure endpoint.
pub trait AzureService: Sync {
    /// The request sent over the verified TLS connection.
    fn request(&self) -> Request {
        Request {
            path: "/",
            headers: &[],
        }
    }

    /// Response headers (lower case) that the judgement or the facts read;
    /// only these are kept.
    fn headers(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether the answer comes from the service, reached as it should be:
    /// `ok`, `rejected` (the service refused this client) or `http_error`,
    /// with a reason when not `ok`.
    fn judge(&self, response: &HttpResponse) -> (Reach, Option<String>);

    /// The answer is a network security perimeter's denial (HTTP 403 naming
    /// the perimeter: Storage's `AuthorizationFailure` "not authorized by
    /// network security perimeter", Key Vault's `ForbiddenByNsp`).
    fn perimeter_denied(&self, response: &HttpResponse) -> bool {
        response.status == 403 && {
            let body = response.body.to_ascii_lowercase();
            body.contains("network security perimeter") || body.contains("forbiddenbynsp")
        }
    }

    /// The client address the service saw, when its answer says (Key Vault).
    fn seen_address(&self, _response: &HttpResponse) -> Option<String> {
        None
    }

    /// The Service Tags `systemService`s of its public addresses
    /// (`servicetags`); empty when not known.
    fn tag_services(&self) -> &'static [&'static str] {
        &[]
    }

    /// The diagnosis when the service rejected the request at `at`.
    fn rejected(&self, fqdn: &str, at: &str, detail: &str) -> String;

    /// The answer of a healthy endpoint in the simulated VNet.
    #[cfg(feature = "sim")]
    fn sim_reply(&self, fqdn: &str) -> Reply;
}

/// The first non-empty line of a body, for messages (diagnoses, Events,
/// `probe --once`): its control characters escaped, cut to 160 characters.
/// The one function that cuts HTTP body text.
pub fn first_line(s: &str) -> String {
    let line = s
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("(empty body)");
    crate::text::shown(line, 160)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure::{Cloud, StorageService};

    const ID: &str = "3f2c9d1e-8b7a-4c6d-9e0f-1a2b3c4d5e6f";

    #[test]
    fn public_cloud_names_follow_the_documented_patterns() {
        let c = Cloud::Public;
        let api = workspace::api(c, ID, "eastus");
        assert_eq!(api.fqdn, format!("{ID}.workspace.eastus.api.azureml.ms"));
        assert_eq!(api.privatelink_zone.as_deref(), Some("privatelink.api.azureml.ms"));
        assert_eq!(
            workspace::cert(c, ID, "eastus").fqdn,
            format!("{ID}.workspace.eastus.cert.api.azureml.ms")
        );
        let nb = workspace::notebooks(c, "mlws", ID, "eastus");
        assert_eq!(nb.fqdn, format!("ml-mlws-eastus-{ID}.eastus.notebooks.azure.net"));
        assert_eq!(nb.privatelink_zone.as_deref(), Some("privatelink.notebooks.azure.net"));
        let st = storage::target(c, "mlwsstore01", StorageService::File);
        assert_eq!(st.fqdn, "mlwsstore01.file.core.windows.net");
        assert_eq!(
            st.privatelink_zone.as_deref(),
            Some("privatelink.file.core.windows.net")
        );
        let kv = keyvault::target(c, "mlws-kv-01");
        assert_eq!(kv.fqdn, "mlws-kv-01.vault.azure.net");
        assert_eq!(kv.privatelink_zone.as_deref(), Some("privatelink.vaultcore.azure.net"));
        assert_eq!(acr::login(c, "mlwsacr01").fqdn, "mlwsacr01.azurecr.io");
        let data = acr::data(c, "mlwsacr01", "eastus");
        assert_eq!(data.fqdn, "mlwsacr01.eastus.data.azurecr.io");
        assert_eq!(data.privatelink_zone.as_deref(), Some("privatelink.azurecr.io"));
    }

    #[test]
    fn sovereign_clouds_use_their_own_suffixes() {
        assert_eq!(
            workspace::api(Cloud::Usgov, ID, "usgovvirginia").fqdn,
            format!("{ID}.workspace.usgovvirginia.api.ml.azure.us")
        );
        assert_eq!(
            keyvault::target(Cloud::Usgov, "kv1").fqdn,
            "kv1.vault.usgovcloudapi.net"
        );
        assert_eq!(
            keyvault::target(Cloud::China, "kv1").privatelink_zone.as_deref(),
            Some("privatelink.vaultcore.azure.cn")
        );
        assert_eq!(
            storage::target(Cloud::China, "acct", StorageService::Blob).fqdn,
            "acct.blob.core.chinacloudapi.cn"
        );
        assert_eq!(
            workspace::notebooks(Cloud::China, "w", ID, "chinaeast2")
                .privatelink_zone
                .as_deref(),
            Some("privatelink.notebooks.chinacloudapi.cn")
        );
    }

    #[test]
    fn the_api_server_zone_is_the_clouds_own() {
        let public = apiserver::target(Cloud::Public, "aks-1.hcp.eastus.azmk8s.io", 443, Some("eastus"));
        assert_eq!(public.privatelink_zone.as_deref(), Some("privatelink.eastus.azmk8s.io"));
        // No source confirms the sovereign clouds' zone: none is asserted
        // (any `privatelink` name counts), never the public cloud's.
        for cloud in [Cloud::Usgov, Cloud::China] {
            let t = apiserver::target(cloud, "aks-1.example.internal", 443, Some("usgovvirginia"));
            assert_eq!(t.privatelink_zone, None, "{cloud:?}");
        }
        assert_eq!(
            apiserver::target(Cloud::Public, "a.b", 443, None).privatelink_zone,
            None
        );
    }

    #[test]
    fn private_and_public_zones_are_one_rule() {
        use crate::azure::{privatelink_zone, public_zone};
        for zone in ["azurecr.io", "blob.core.windows.net", "eastus.azmk8s.io"] {
            assert_eq!(public_zone(&privatelink_zone(zone)), zone);
        }
        assert_eq!(public_zone("vault.azure.net"), "vault.azure.net");
        assert_eq!(public_zone("privatelinkx.io"), "privatelinkx.io");
    }

    #[test]
    fn notebooks_label_stays_within_63_characters() {
        let long = "a-very-long-workspace_name-that-goes-on-and-on";
        let label = workspace::notebooks_label(long, "southeastasia", ID);
        assert!(label.len() <= 63, "{label} is {} long", label.len());
        assert_eq!(label, format!("ml-a-very-lo-southeastasia-{ID}"));
        assert!(label.ends_with(&format!("-southeastasia-{ID}")));
        assert!(!label.contains("--"), "{label}");
        assert!(!label.contains('_'));
    }
}
