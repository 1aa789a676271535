//! Azure Container Registry: `GET /v2/` answers an anonymous client with a
//! `401` and a `Bearer realm=` challenge.

use netprobe_sim::https::Reply;

use super::{AzureService, Request, first_line};
use crate::azure::Cloud;
use crate::service::Target;
use crate::model::Reach;
use crate::service::Service;
use crate::observation::HttpResponse;

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
                Reach::Blocked,
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
        format!("privatelink.{}", z.acr),
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
            format!("privatelink.{}", z.acr),
        )
    }
}
