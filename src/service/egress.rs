//! Public endpoints the Azure ML extension on AKS needs (`aml_extension:
//! true`): Microsoft Container Registry, the cluster-extension data plane,
//! the regional AML APIs, Entra ID and Resource Manager. They are public
//! by design: any DNS answer will do, the path must be open (TCP, and TLS
//! verified against the system roots) and any HTTP answer proves it.
//!
//! Sources, per cloud (docs/configuration.md, "AML extension endpoints",
//! has the table with links):
//! - [AML-FW] Microsoft Learn, "Configure inbound and outbound network
//!   traffic" (how-to-access-azureml-behind-firewall), "Scenario: Use
//!   Kubernetes compute" and "Microsoft hosts".
//! - [AKS-EGRESS] Microsoft Learn, "Outbound network and FQDN rules for AKS
//!   clusters" (outbound-rules-control-egress), "Cluster extensions" and
//!   the per-cloud required FQDN tables.

#[cfg(feature = "sim")]
use netprobe_sim::https::Reply;

use super::{AzureService, SectionCtx, Target};
use crate::azure::Cloud;
use crate::input::{ConfigError, S};
use crate::model::{Expect, Reach};
use crate::observation::HttpResponse;
use crate::service::Service;

pub struct Egress;

impl AzureService for Egress {
    fn judge(&self, _r: &HttpResponse) -> (Reach, Option<String>) {
        (Reach::Ok, None)
    }

    fn rejected(&self, _fqdn: &str, at: &str, detail: &str) -> String {
        format!("{at}: {detail}.")
    }

    #[cfg(feature = "sim")]
    fn sim_reply(&self, _fqdn: &str) -> Reply {
        Reply::new(404, "")
    }
}

/// One endpoint: the target name's suffix, the FQDN (with `{region}`), its
/// Service Tags `systemService`s, and whether the name is documented for
/// this cloud (`false`: inferred from the pattern of the others).
#[derive(Clone, Copy, Debug)]
pub struct Endpoint {
    pub name: &'static str,
    pub fqdn: &'static str,
    pub tag_services: &'static [&'static str],
    pub documented: bool,
}

const MCR: &[&str] = &["MicrosoftContainerRegistry", "AzureFrontDoor"];
const AML: &[&str] = &["AzureMachineLearning"];
const ENTRA: &[&str] = &["AzureActiveDirectory"];
const ARM: &[&str] = &["AzureResourceManager"];

const fn ep(
    name: &'static str,
    fqdn: &'static str,
    tag_services: &'static [&'static str],
    documented: bool,
) -> Endpoint {
    Endpoint {
        name,
        fqdn,
        tag_services,
        documented,
    }
}

/// The endpoints of `cloud`. Names a cloud's documents do not give are left
/// out rather than guessed, except the regional AML API, whose sovereign
/// names follow the documented `*.ml.azure.us` / `*.ml.azure.cn` wildcard.
pub fn endpoints(cloud: Cloud) -> &'static [Endpoint] {
    match cloud {
        Cloud::Public => PUBLIC,
        Cloud::Usgov => USGOV,
        Cloud::China => CHINA,
    }
}

const PUBLIC: &[Endpoint] = &[
    ep("mcr", "mcr.microsoft.com", MCR, true),
    ep("mcr-data", "{region}.data.mcr.microsoft.com", MCR, true),
    ep("extensions", "{region}.dp.kubernetesconfiguration.azure.com", &[], true),
    ep("aml-api", "{region}.api.azureml.ms", AML, true),
    ep("aml-experiments", "{region}.experiments.azureml.net", AML, true),
    ep("entra", "login.microsoftonline.com", ENTRA, true),
    ep("arm", "management.azure.com", ARM, true),
];
const USGOV: &[Endpoint] = &[
    ep("mcr", "mcr.microsoft.com", MCR, true),
    ep("mcr-data", "{region}.data.mcr.microsoft.com", MCR, true),
    ep("extensions", "{region}.dp.kubernetesconfiguration.azure.us", &[], true),
    ep("aml-api", "{region}.api.ml.azure.us", AML, false),
    ep("entra", "login.microsoftonline.us", ENTRA, true),
    ep("arm", "management.usgovcloudapi.net", ARM, true),
];
const CHINA: &[Endpoint] = &[
    ep("mcr", "mcr.microsoft.com", MCR, true),
    ep("mcr-data", "{region}.data.mcr.microsoft.com", MCR, true),
    ep("aml-api", "{region}.api.ml.azure.cn", AML, false),
    ep("entra", "login.chinacloudapi.cn", ENTRA, true),
    ep("arm", "management.chinacloudapi.cn", ARM, true),
];

/// The `aml_extension` key: `true` probes the extension's public endpoints.
pub type Section = Option<S<bool>>;

/// The `aml_extension` key's JSON Schema.
pub fn section_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "boolean",
        "description": "Probe the public endpoints the AML extension needs (egress through service tags)",
    })
}

/// `aml_extension: true`: the extension's public endpoints for the cloud and region.
pub fn targets(section: &Section, ctx: &SectionCtx<'_>) -> Result<Vec<Target>, ConfigError> {
    let Some(on) = section.as_ref().filter(|a| a.value) else {
        return Ok(Vec::new());
    };
    let Some(region) = ctx.needed_region(|| {
        ctx.input.err(
            on,
            "region",
            "required when `aml_extension` is set (its endpoints are regional, e.g. eastus.data.mcr.microsoft.com)",
        )
    })?
    else {
        return Ok(Vec::new());
    };
    Ok(in_region(ctx.cloud, region))
}

/// The egress targets of the AML extension in `region`.
pub fn in_region(cloud: Cloud, region: &str) -> Vec<Target> {
    endpoints(cloud)
        .iter()
        .map(|e| Target {
            name: format!("egress-{}", e.name),
            fqdn: e.fqdn.replace("{region}", region),
            service: Service::Egress,
            port: 443,
            expect: Expect::Any,
            expected_ips: Vec::new(),
            privatelink_zone: None,
            tag_services: e.tag_services,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cloud_has_the_registry_identity_and_resource_manager() {
        for cloud in [Cloud::Public, Cloud::Usgov, Cloud::China] {
            let names: Vec<&str> = endpoints(cloud).iter().map(|e| e.name).collect();
            for want in ["mcr", "mcr-data", "aml-api", "entra", "arm"] {
                assert!(names.contains(&want), "{cloud:?} lacks {want}");
            }
        }
        let t = in_region(Cloud::Public, "westeurope");
        let fqdns: Vec<&str> = t.iter().map(|t| t.fqdn.as_str()).collect();
        assert_eq!(
            fqdns,
            [
                "mcr.microsoft.com",
                "westeurope.data.mcr.microsoft.com",
                "westeurope.dp.kubernetesconfiguration.azure.com",
                "westeurope.api.azureml.ms",
                "westeurope.experiments.azureml.net",
                "login.microsoftonline.com",
                "management.azure.com",
            ]
        );
        assert!(
            t.iter()
                .all(|t| t.expect == Expect::Any && t.service == Service::Egress)
        );
    }
}
