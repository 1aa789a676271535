//! Azure Storage: an anonymous list call with a recent `x-ms-version` gets
//! `401 NoAuthenticationInformation` (or 400/404); the storage firewall
//! answers `403 AuthorizationFailure`.

use netprobe_sim::https::Reply;

use super::{AzureService, Request, first_line};
use crate::azure::StorageService;
use crate::azure::Cloud;
use crate::service::Target;
use crate::model::Reach;
use crate::service::Service;
use crate::observation::HttpResponse;

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
                Reach::Blocked,
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
        format!("privatelink.{s}.{}", z.storage),
    )
}
