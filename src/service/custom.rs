//! Any other endpoint: an HTTP answer of any kind proves it reachable.

#[cfg(feature = "sim")]
use netprobe_sim::https::Reply;

use std::net::IpAddr;

use serde::Deserialize;

use super::{AzureService, SectionCtx, Service, Target};
use crate::input::{ConfigError, NameRule, S, check_fqdn};
use crate::model::Expect;
use crate::model::Reach;
use crate::observation::HttpResponse;

pub struct Custom;

impl AzureService for Custom {
    fn judge(&self, _r: &HttpResponse) -> (Reach, Option<String>) {
        (Reach::Ok, None)
    }

    fn rejected(&self, _fqdn: &str, at: &str, detail: &str) -> String {
        format!("{at}: {detail}.")
    }

    #[cfg(feature = "sim")]
    fn sim_reply(&self, _fqdn: &str) -> Reply {
        Reply::new(200, "")
    }
}

// ---------------------------------------------------------------------------
// Its configuration section: `targets`, any name with any service's check.

/// One entry of `targets:` as written.
/// Any other name the workloads use.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomTarget {
    #[serde(default)]
    #[schemars(schema_with = "name_schema")]
    pub name: Option<S<String>>,
    #[schemars(schema_with = "crate::input::schema::fqdn")]
    pub fqdn: S<String>,
    /// The kind of resource behind it (decides the HTTP check).
    pub service: Option<S<Service>>,
    #[serde(default)]
    #[schemars(schema_with = "crate::input::schema::port")]
    pub port: Option<S<i64>>,
    /// What the DNS answers must look like; default private.
    pub expect: Option<S<Expect>>,
    /// The private endpoint's addresses the answers must be among.
    #[serde(default)]
    #[schemars(schema_with = "crate::input::schema::ips")]
    pub expected_ips: Option<Vec<S<String>>>,
}

/// The `targets` key.
pub type Section = Vec<CustomTarget>;

fn name_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    TARGET_NAME.schema()
}

/// The `targets` key's JSON Schema.
pub fn section_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    g.subschema_for::<Section>()
}

/// Each entry as it is: its FQDN, port (443), service (`custom`), expectation
/// (private) and the private endpoint's addresses when given.
pub fn targets(section: &Section, ctx: &SectionCtx<'_>) -> Result<Vec<Target>, ConfigError> {
    let input = ctx.input;
    crate::input::each(section, |i, t| {
        let fqdn = check_fqdn(&t.fqdn.value).map_err(|m| input.err(&t.fqdn, format!("targets[{i}].fqdn"), m))?;
        let port = match &t.port {
            Some(p) if !(1..=65535).contains(&p.value) => {
                return Err(input.err(
                    p,
                    format!("targets[{i}].port"),
                    format!("{} is not a TCP port (1-65535)", p.value),
                ));
            }
            Some(p) => p.value as u16,
            None => 443,
        };
        let name = match &t.name {
            Some(n) => {
                TARGET_NAME
                    .check(&n.value)
                    .map_err(|m| input.err(n, format!("targets[{i}].name"), m))?;
                n.value.clone()
            }
            None => fqdn.clone(),
        };
        let mut expected_ips = Vec::new();
        for (j, ip) in t.expected_ips.iter().flatten().enumerate() {
            let parsed: IpAddr = ip.value.trim().parse().map_err(|_| {
                input.err(
                    ip,
                    format!("targets[{i}].expected_ips[{j}]"),
                    format!("{:?} is not an IP address", ip.value),
                )
            })?;
            expected_ips.push(parsed);
        }
        let service = t.service.as_ref().map(|s| s.value).unwrap_or(Service::Custom);
        Ok(vec![Target {
            name,
            fqdn,
            service,
            port,
            expect: t.expect.as_ref().map(|e| e.value).unwrap_or(Expect::Private),
            expected_ips,
            privatelink_zone: None,
            tag_services: super::of(service).tag_services(),
        }])
    })
}

pub(crate) const TARGET_NAME: NameRule = NameRule {
    what: "a valid target name",
    expected: "1-128 letters, digits, '-', '_' or '.'",
    len: 1..=128,
    chars: |c| c.is_ascii_alphanumeric() || "-_.".contains(c),
    pattern: "^[A-Za-z0-9_.-]+$",
    ..NameRule::BASE
};
