//! The Azure ML workspace API: any answer is the workspace, except its
//! private-link denial.

#[cfg(feature = "sim")]
use netprobe_sim::https::Reply;

use super::{AzureService, first_line};
use serde::Deserialize;

use super::SectionCtx;
use crate::azure::{Cloud, privatelink_zone};
use crate::input::{ConfigError, NameRule, S, Shown, check_fqdn};
use crate::model::Reach;
use crate::observation::HttpResponse;
use crate::service::Service;
use crate::service::Target;

pub struct Workspace;

/// Phrases with which an AML workspace denies access through private link.
const DENIALS: &[&str] = &[
    "access to workspace was denied based on workspace private link configuration",
    "none of the workspaces/registries are accessible from outside of the designated private link",
    "is not accessible from outside of the designated private link",
    "denied based on private link",
];

impl AzureService for Workspace {
    fn tag_services(&self) -> &'static [&'static str] {
        &["AzureMachineLearning"]
    }

    fn judge(&self, r: &HttpResponse) -> (Reach, Option<String>) {
        let body = r.body.to_ascii_lowercase();
        if DENIALS.iter().any(|d| body.contains(d)) {
            (
                Reach::Rejected,
                Some(format!(
                    "private-link denial (HTTP {}): {}",
                    r.status,
                    first_line(&r.body)
                )),
            )
        } else {
            (Reach::Ok, None)
        }
    }

    fn rejected(&self, _fqdn: &str, at: &str, detail: &str) -> String {
        format!(
            "{at}: {detail}. The workspace rejects requests that do not come through its private link. Fix: make \
             the workspace names resolve to its private endpoint through this DNS path."
        )
    }

    #[cfg(feature = "sim")]
    fn sim_reply(&self, _fqdn: &str) -> Reply {
        Reply::workspace_unauthorized()
    }
}

// ---------------------------------------------------------------------------
// The targets a config section derives.

/// The AML workspace API FQDN and its private zone.
pub fn api(cloud: Cloud, id: &str, region: &str) -> Target {
    let z = cloud.zones();
    Target::derived(
        "workspace-api".into(),
        format!("{id}.workspace.{region}.{}", z.aml_api),
        Service::Workspace,
        privatelink_zone(z.aml_api),
    )
}

/// The AML workspace certificate endpoint.
pub fn cert(cloud: Cloud, id: &str, region: &str) -> Target {
    let z = cloud.zones();
    Target::derived(
        "workspace-cert".into(),
        format!("{id}.workspace.{region}.cert.{}", z.aml_api),
        Service::Workspace,
        privatelink_zone(z.aml_api),
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
pub fn notebooks(cloud: Cloud, name: &str, id: &str, region: &str) -> Target {
    let z = cloud.zones();
    Target::derived(
        "workspace-notebooks".into(),
        format!("{}.{region}.{}", notebooks_label(name, region, id), z.notebooks),
        Service::Workspace,
        privatelink_zone(z.notebooks),
    )
}

/// A notebooks target with an FQDN given explicitly.
pub fn notebooks_at(cloud: Cloud, fqdn: &str) -> Target {
    let z = cloud.zones();
    Target::derived(
        "workspace-notebooks".into(),
        fqdn.to_string(),
        Service::Workspace,
        privatelink_zone(z.notebooks),
    )
}

// ---------------------------------------------------------------------------
// Its configuration section: `workspace`.

/// `workspace:` as written.
/// The AML workspace: its API, certificate API and notebooks targets.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceSection {
    /// The workspace's `workspaceId` (a GUID; not the all-zero placeholder).
    #[schemars(schema_with = "guid_schema")]
    pub id: S<String>,
    /// The workspace's name (for the notebooks FQDN).
    #[serde(default)]
    #[schemars(schema_with = "name_schema")]
    pub name: Option<S<String>>,
    /// The notebooks FQDN as shown on the private endpoint's NIC, when
    /// the derived one does not match.
    #[serde(default)]
    #[schemars(schema_with = "crate::input::schema::fqdn")]
    pub notebooks_fqdn: Option<S<String>>,
}

fn guid_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "pattern": GUID_PATTERN,
        "not": { "pattern": "^[0-]*$" },
        "description": "The workspace's workspaceId (a GUID; not the all-zero placeholder)",
    })
}

fn name_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    WORKSPACE_NAME.schema()
}

/// The `workspace` key's JSON Schema.
pub fn section_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    g.subschema_for::<WorkspaceSection>()
}

/// The `workspace` key.
pub type Section = Option<WorkspaceSection>;

/// The workspace's API, certificate API and (with a name or an FQDN) notebooks targets.
pub fn targets(section: &Section, ctx: &SectionCtx<'_>) -> Result<Vec<Target>, ConfigError> {
    let Some(ws) = section else { return Ok(Vec::new()) };
    let (cloud, input) = (ctx.cloud, ctx.input);
    check_guid(&ws.id.value).map_err(|m| input.err(&ws.id, "workspace.id", m))?;
    let id = ws.id.value.to_ascii_lowercase();
    let Some(region) = ctx.needed_region(|| {
        input.err(
            &ws.id,
            "region",
            "required when `workspace` is set (the workspace's region, e.g. eastus)",
        )
    })?
    else {
        return Ok(Vec::new());
    };
    let mut targets = vec![api(cloud, &id, region), cert(cloud, &id, region)];
    match (&ws.notebooks_fqdn, &ws.name) {
        (Some(f), _) => {
            let fqdn = check_fqdn(&f.value).map_err(|m| input.err(f, "workspace.notebooks_fqdn", m))?;
            targets.push(notebooks_at(cloud, &fqdn));
        }
        (None, Some(n)) => {
            WORKSPACE_NAME
                .check(&n.value)
                .map_err(|m| input.err(n, "workspace.name", m))?;
            targets.push(notebooks(cloud, &n.value, &id, region));
        }
        (None, None) => {}
    }
    Ok(targets)
}

/// The workspace id's JSON Schema pattern (`check_guid`; the all-zero
/// placeholder is excluded apart, by `not`).
pub(crate) const GUID_PATTERN: &str = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

fn check_guid(s: &str) -> Result<(), String> {
    let groups: Vec<&str> = s.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    let ok = groups.len() == 5
        && groups
            .iter()
            .zip(lens)
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()));
    if ok && s.chars().all(|c| c == '0' || c == '-') {
        Err(format!(
            "{} is the all-zero placeholder, not a workspace: set the workspace's `workspaceId` (az ml workspace show --query workspace_id)",
            Shown(s)
        ))
    } else if ok {
        Ok(())
    } else {
        Err(format!(
            "{} is not a workspace GUID (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, the workspace's `workspaceId`)",
            Shown(s)
        ))
    }
}

pub(crate) const WORKSPACE_NAME: NameRule = NameRule {
    what: "a valid workspace name",
    expected: "3-33 letters, digits, '-' or '_', starting with a letter or digit",
    len: 3..=33,
    chars: |c| c.is_ascii_alphanumeric() || c == '-' || c == '_',
    first: |c| c.is_ascii_alphanumeric(),
    pattern: "^[A-Za-z0-9][A-Za-z0-9_-]*$",
    ..NameRule::BASE
};

#[cfg(test)]
mod tests {
    use super::*;

    /// The id's schema (pattern, and `not` the all-zero one) accepts exactly
    /// what `check_guid` accepts.
    #[test]
    fn the_id_schema_is_check_guid() {
        let schema = guid_schema(&mut schemars::SchemaGenerator::default()).to_value();
        let pattern = regex::Regex::new(schema["pattern"].as_str().unwrap()).unwrap();
        let not = regex::Regex::new(schema["not"]["pattern"].as_str().unwrap()).unwrap();
        for s in [
            "1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d",
            "1B2C3D4E-5F60-4A7B-8C9D-0E1F2A3B4C5D",
            "00000000-0000-0000-0000-000000000000",
            "00000000-0000-0000-0000-000000000001",
            "1b2c3d4e5f604a7b8c9d0e1f2a3b4c5d",
            "{1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d}",
            "1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5",
            "1b2c3d4g-5f60-4a7b-8c9d-0e1f2a3b4c5d",
            "my-workspace",
            "",
        ] {
            let by_schema = pattern.is_match(s) && !not.is_match(s);
            assert_eq!(by_schema, check_guid(s).is_ok(), "{s:?}");
        }
        let zero = check_guid("00000000-0000-0000-0000-000000000000").unwrap_err();
        assert!(zero.contains("placeholder"), "{zero}");
    }
}
