//! Azure Key Vault: `GET /healthstatus` answers anonymously, and its
//! `x-ms-keyvault-network-info` header says which client address it saw
//! (private means the private endpoint was used).

#[cfg(feature = "sim")]
use netprobe_sim::https::Reply;

use std::fmt;

use serde::Deserialize;

use super::{AzureService, Request, SectionCtx, first_line};
use crate::azure::Cloud;
use crate::input::{ConfigError, NameRule, S};
use crate::model::Expect;
use crate::model::Reach;
use crate::observation::HttpResponse;
use crate::service::Service;
use crate::service::Target;

pub struct KeyVault;

const NETWORK_INFO: &str = "x-ms-keyvault-network-info";

impl AzureService for KeyVault {
    fn tag_services(&self) -> &'static [&'static str] {
        &["AzureKeyVault"]
    }

    fn request(&self) -> Request {
        Request {
            path: "/healthstatus",
            headers: &[],
        }
    }

    fn headers(&self) -> &'static [&'static str] {
        &[NETWORK_INFO]
    }

    fn judge(&self, r: &HttpResponse) -> (Reach, Option<String>) {
        match r.status {
            200 | 401 => (Reach::Ok, None),
            403 => {
                let body = r.body.to_ascii_lowercase();
                let why = if body.contains("forbiddenbynsp") {
                    "ForbiddenByNsp"
                } else if body.contains("forbiddenbyfirewall") {
                    "ForbiddenByFirewall"
                } else {
                    "403"
                };
                (
                    Reach::Rejected,
                    Some(format!("Key Vault answered {why}: {}", first_line(&r.body))),
                )
            }
            s => (
                Reach::HttpError,
                Some(format!(
                    "unexpected HTTP {s} from /healthstatus: {}",
                    first_line(&r.body)
                )),
            ),
        }
    }

    fn seen_address(&self, r: &HttpResponse) -> Option<String> {
        addr_of(r.header(NETWORK_INFO)?)
    }

    fn rejected(&self, _fqdn: &str, at: &str, detail: &str) -> String {
        format!(
            "{at}: {detail}. Fix: check the vault's Networking settings (allow private endpoint access) and that \
             the request uses the private endpoint."
        )
    }

    #[cfg(feature = "sim")]
    fn sim_reply(&self, _fqdn: &str) -> Reply {
        Reply::keyvault_health()
    }
}

/// The `addr=` field of the network-info header.
/// The `addr=` of `x-ms-keyvault-network-info`: the client address the vault
/// saw. Only an IP address is taken; anything else in the header (it comes
/// from whatever answered) is not reported.
pub fn addr_of(header: &str) -> Option<String> {
    header
        .split(';')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("addr"))
        .and_then(|(_, v)| v.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| ip.to_string())
}

// ---------------------------------------------------------------------------
// The targets a config section derives.

/// A vault's client FQDN; its private zone is `privatelink.vaultcore…`.
pub fn target(cloud: Cloud, vault: &str) -> Target {
    let z = cloud.zones();
    Target::derived(
        format!("keyvault-{vault}"),
        format!("{vault}.{}", z.keyvault),
        Service::Keyvault,
        z.keyvault_privatelink.to_string(),
    )
}

// ---------------------------------------------------------------------------
// Its configuration section: `key_vaults`.

/// A key vault: its name, or `{name, expect}`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Vault {
    #[schemars(schema_with = "name_schema")]
    pub name: String,
    pub expect: Option<Expect>,
}

impl Vault {
    /// A string is the name; a mapping is read field by field, so that
    /// its errors name the field (an untagged enum would only say that
    /// no variant matched).
    pub fn deserialize_either<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Vault, D::Error> {
        struct Either;
        impl<'de> serde::de::Visitor<'de> for Either {
            type Value = Vault;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key vault name, or a mapping with `name` and `expect`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Vault, E> {
                Ok(Vault {
                    name: v.to_string(),
                    expect: None,
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Vault, A::Error> {
                Vault::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        de.deserialize_any(Either)
    }
}

/// [`Vault`] through [`Vault::deserialize_either`], for `Spanned<Vault>`.
#[derive(Debug)]
pub struct VaultEntry(pub Vault);

impl<'de> Deserialize<'de> for VaultEntry {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        Vault::deserialize_either(de).map(VaultEntry)
    }
}

/// The `key_vaults` key.
pub type Section = Vec<S<VaultEntry>>;

fn name_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    VAULT_NAME.schema()
}

/// The `key_vaults` key's JSON Schema: each entry a name, or `name` and `expect`.
pub fn section_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "items": { "anyOf": [name_schema(g), g.subschema_for::<Vault>()] },
    })
}

/// One target per vault.
pub fn targets(section: &Section, ctx: &SectionCtx<'_>) -> Result<Vec<Target>, ConfigError> {
    crate::input::each(section, |i, kv| {
        let vault = &kv.value.0;
        VAULT_NAME
            .check(&vault.name)
            .map_err(|m| ctx.input.err(kv, format!("key_vaults[{i}]"), m))?;
        let mut t = target(ctx.cloud, &vault.name.to_ascii_lowercase());
        t.expect = vault.expect.unwrap_or(Expect::Private);
        Ok(vec![t])
    })
}

pub(crate) const VAULT_NAME: NameRule = NameRule {
    what: "a valid key vault name",
    expected: "3-24 letters, digits and single hyphens, starting with a letter, ending with a letter or digit",
    len: 3..=24,
    chars: |c| c.is_ascii_alphanumeric() || c == '-',
    first: |c| c.is_ascii_alphabetic(),
    last: |c| c.is_ascii_alphanumeric(),
    single_hyphens: true,
    pattern: "^[A-Za-z](-?[A-Za-z0-9])*$",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_info_is_parsed_in_both_forms() {
        assert_eq!(
            addr_of("addr=10.1.2.3;act_addr_fam=InterNetwork;").as_deref(),
            Some("10.1.2.3")
        );
        assert_eq!(
            addr_of("conn_type=Ipv4;addr=20.30.40.50;act_addr_fam=Ipv4").as_deref(),
            Some("20.30.40.50")
        );
        assert_eq!(addr_of("conn_type=Ipv4"), None);
        // Only an address is reported, never whatever else the header holds.
        assert_eq!(addr_of("addr=<script>;x=1"), None);
        assert_eq!(addr_of(&format!("addr={}", "9".repeat(5000))), None);
        assert_eq!(addr_of("addr= 2001:db8::1 ").as_deref(), Some("2001:db8::1"));
    }
}
