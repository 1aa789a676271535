//! Azure Storage: an anonymous list call with a recent `x-ms-version` gets
//! `401 NoAuthenticationInformation` (or 400/404); the storage firewall
//! answers `403 AuthorizationFailure`.

#[cfg(feature = "sim")]
use netprobe_sim::https::Reply;

use serde::Deserialize;

use super::{AzureService, Request, SectionCtx, first_line};
use crate::azure::StorageService;
use crate::azure::{Cloud, privatelink_zone};
use crate::input::{ConfigError, NameRule, S, expect_of, lower_or_digit};
use crate::model::Expect;
use crate::model::Reach;
use crate::observation::HttpResponse;
use crate::service::Service;
use crate::service::Target;

pub struct Storage;

/// The storage REST version sent: from 2019-12-12 on, anonymous calls get
/// `401 NoAuthenticationInformation` rather than 404.
pub const STORAGE_API_VERSION: &str = "2021-08-06";

impl AzureService for Storage {
    fn tag_services(&self) -> &'static [&'static str] {
        &["AzureStorage"]
    }

    fn request(&self) -> Request {
        Request {
            path: "/?comp=list",
            headers: &[("x-ms-version", STORAGE_API_VERSION)],
        }
    }

    fn judge(&self, r: &HttpResponse) -> (Reach, Option<String>) {
        match r.status {
            400 | 401 | 404 => (Reach::Ok, None),
            403 => (
                Reach::Rejected,
                Some(format!("storage answered 403: {}", first_line(&r.body))),
            ),
            s => (
                Reach::HttpError,
                Some(format!("unexpected HTTP {s} from /?comp=list: {}", first_line(&r.body))),
            ),
        }
    }

    fn rejected(&self, _fqdn: &str, at: &str, detail: &str) -> String {
        format!(
            "{at}: {detail}. The storage firewall rejected the request. Fix: reach the account through its \
             private endpoint, or allow the subnet under the account's Networking."
        )
    }

    #[cfg(feature = "sim")]
    fn sim_reply(&self, _fqdn: &str) -> Reply {
        Reply::storage_anonymous()
    }
}

// ---------------------------------------------------------------------------
// The targets a config section derives.

/// One storage service (blob, file, …) of an account.
pub fn target(cloud: Cloud, account: &str, svc: StorageService) -> Target {
    let z = cloud.zones();
    let s = svc.as_str();
    Target::derived(
        format!("storage-{account}-{s}"),
        format!("{account}.{s}.{}", z.storage),
        Service::Storage,
        privatelink_zone(&format!("{s}.{}", z.storage)),
    )
}

// ---------------------------------------------------------------------------
// Its configuration section: `storage_accounts`.

/// One entry of `storage_accounts:` as written.
/// A storage account and the services probed (default: blob, file).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Account {
    #[schemars(schema_with = "name_schema")]
    pub name: S<String>,
    pub services: Option<Vec<S<StorageService>>>,
    pub expect: Option<S<Expect>>,
}

/// The `storage_accounts` key.
pub type Section = Vec<Account>;

fn name_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    STORAGE_NAME.schema()
}

/// The `storage_accounts` key's JSON Schema.
pub fn section_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    g.subschema_for::<Section>()
}

/// One target per account and storage service (blob and file unless told).
pub fn targets(section: &Section, ctx: &SectionCtx<'_>) -> Result<Vec<Target>, ConfigError> {
    crate::input::each(section, |i, st| {
        let mut targets = Vec::new();
        let field = format!("storage_accounts[{i}].name");
        STORAGE_NAME
            .check(&st.name.value)
            .map_err(|m| ctx.input.err(&st.name, &field, m))?;
        let services: Vec<StorageService> = match &st.services {
            Some(list) if list.is_empty() => {
                return Err(ctx
                    .input
                    .err(&st.name, format!("storage_accounts[{i}].services"), "must not be empty"));
            }
            Some(list) => list.iter().map(|s| s.value).collect(),
            None => vec![StorageService::Blob, StorageService::File],
        };
        for svc in services {
            let mut t = target(ctx.cloud, &st.name.value, svc);
            t.expect = expect_of(st.expect.as_ref());
            targets.push(t);
        }
        Ok(targets)
    })
}

pub(crate) const STORAGE_NAME: NameRule = NameRule {
    what: "a valid storage account name",
    expected: "3-24 lower-case letters and digits",
    len: 3..=24,
    chars: lower_or_digit,
    pattern: "^[a-z0-9]+$",
    ..NameRule::BASE
};
