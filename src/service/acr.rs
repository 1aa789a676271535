//! Azure Container Registry: `GET /v2/` answers an anonymous client with a
//! `401` and a `Bearer realm=` challenge.

#[cfg(feature = "sim")]
use netprobe_sim::https::Reply;

use serde::Deserialize;

use super::{AzureService, Request, SectionCtx, first_line};
use crate::azure::{Cloud, privatelink_zone};
use crate::input::{ConfigError, NameRule, REGION, S, expect_of};
use crate::model::Expect;
use crate::model::Reach;
use crate::observation::HttpResponse;
use crate::service::Service;
use crate::service::Target;

pub struct Acr;

impl AzureService for Acr {
    fn tag_services(&self) -> &'static [&'static str] {
        &["AzureContainerRegistry"]
    }

    fn request(&self) -> Request {
        Request {
            path: "/v2/",
            headers: &[],
        }
    }

    fn headers(&self) -> &'static [&'static str] {
        &["www-authenticate"]
    }

    fn judge(&self, r: &HttpResponse) -> (Reach, Option<String>) {
        let challenge = r
            .header("www-authenticate")
            .is_some_and(|h| h.trim_start().to_ascii_lowercase().starts_with("bearer realm="));
        match r.status {
            401 if challenge => (Reach::Ok, None),
            200 => (Reach::Ok, None),
            401 => (
                Reach::HttpError,
                Some("401 without a `Bearer realm=` challenge: not a container registry answering".into()),
            ),
            403 => (
                Reach::Rejected,
                Some(format!("403 from the registry: {}", first_line(&r.body))),
            ),
            s => (
                Reach::HttpError,
                Some(format!("unexpected HTTP {s} from /v2/: {}", first_line(&r.body))),
            ),
        }
    }

    fn rejected(&self, fqdn: &str, at: &str, detail: &str) -> String {
        format!(
            "{at}: {detail}. The registry saw this request as coming from a network it does not allow: the \
             request reached the public endpoint, or the registry's firewall rejects the private one. Fix: make \
             {fqdn} resolve to the registry's private endpoint, or allow the network under Networking in the \
             registry."
        )
    }

    #[cfg(feature = "sim")]
    fn sim_reply(&self, fqdn: &str) -> Reply {
        Reply::acr_challenge(fqdn)
    }
}

// ---------------------------------------------------------------------------
// The targets a config section derives.

/// The registry's login server.
pub fn login(cloud: Cloud, registry: &str) -> Target {
    let z = cloud.zones();
    Target::derived(
        format!("acr-{registry}"),
        format!("{registry}.{}", z.acr),
        Service::Acr,
        privatelink_zone(z.acr),
    )
}

/// A dedicated data endpoint; its records live in the login server's zone.
/// Which service tag covers a data endpoint's public addresses is not
/// documented: registry or Storage ranges both count.
pub fn data(cloud: Cloud, registry: &str, region: &str) -> Target {
    let z = cloud.zones();
    Target {
        tag_services: &["AzureContainerRegistry", "AzureStorage"],
        ..Target::derived(
            format!("acr-{registry}-data-{region}"),
            format!("{registry}.{region}.data.{}", z.acr),
            Service::Acr,
            privatelink_zone(z.acr),
        )
    }
}

// ---------------------------------------------------------------------------
// Its configuration section: `container_registries`.

/// One entry of `container_registries:` as written.
/// A container registry, and the regions of its data endpoints.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    #[schemars(schema_with = "name_schema")]
    pub name: S<String>,
    /// The registry's regions (its home and its geo-replicas).
    #[serde(default)]
    #[schemars(schema_with = "crate::input::schema::regions")]
    pub data_endpoint_regions: Option<Vec<S<String>>>,
    pub expect: Option<S<Expect>>,
}

/// The `container_registries` key.
pub type Section = Vec<Registry>;

fn name_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    REGISTRY_NAME.schema()
}

/// The `container_registries` key's JSON Schema.
pub fn section_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    g.subschema_for::<Section>()
}

/// Each registry's login server and its data endpoints (one per region:
/// `data_endpoint_regions`, else `region`).
pub fn targets(section: &Section, ctx: &SectionCtx<'_>) -> Result<Vec<Target>, ConfigError> {
    let input = ctx.input;
    crate::input::each(section, |i, reg| {
        let mut targets = Vec::new();
        let field = format!("container_registries[{i}].name");
        REGISTRY_NAME
            .check(&reg.name.value)
            .map_err(|m| input.err(&reg.name, &field, m))?;
        let name = reg.name.value.to_ascii_lowercase();
        let expect = expect_of(reg.expect.as_ref());
        targets.push(login(ctx.cloud, &name));
        let regions: Vec<String> = match &reg.data_endpoint_regions {
            Some(list) => {
                let mut out = Vec::new();
                for (j, r) in list.iter().enumerate() {
                    REGION.check(&r.value).map_err(|m| {
                        input.err(r, format!("container_registries[{i}].data_endpoint_regions[{j}]"), m)
                    })?;
                    out.push(r.value.clone());
                }
                out
            }
            None => ctx
                .needed_region(|| {
                    input.err(
                        &reg.name,
                        format!("container_registries[{i}].data_endpoint_regions"),
                        "no region to derive the data endpoint from: set `region` or list `data_endpoint_regions` ([] for none)",
                    )
                })?
                .map(|r| vec![r.to_string()])
                .unwrap_or_default(),
        };
        for r in regions {
            targets.push(data(ctx.cloud, &name, &r));
        }
        for t in &mut targets {
            t.expect = expect;
        }
        Ok(targets)
    })
}

pub(crate) const REGISTRY_NAME: NameRule = NameRule {
    what: "a valid container registry name",
    expected: "5-50 letters and digits",
    len: 5..=50,
    chars: |c| c.is_ascii_alphanumeric(),
    pattern: "^[A-Za-z0-9]+$",
    ..NameRule::BASE
};
