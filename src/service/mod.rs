//! One module per Azure service, behind [`AzureService`]: the credential-free
//! HTTP request that proves the endpoint is the service, how its answer is
//! judged, the facts the answer carries, the fix when the service rejects the
//! request, and what the simulated VNet's endpoint answers. The HTTP phase,
//! the verdict layer, the report and the demo ask [`of`], never a `match` on
//! the service.
//!
//! Adding a service: a file here implementing the trait, a variant in
//! `model::Service`, and its line in [`of`].

pub mod acr;
pub mod custom;
pub mod keyvault;
pub mod storage;
pub mod workspace;

use netprobe_sim::https::Reply;

use crate::model::{Reach, Service};
use crate::observation::HttpResponse;

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
    /// `ok`, `blocked` (the service refused this client) or `http_error`,
    /// with a reason when not `ok`.
    fn judge(&self, response: &HttpResponse) -> (Reach, Option<String>);

    /// The client address the service saw, when its answer says (Key Vault).
    fn seen_address(&self, _response: &HttpResponse) -> Option<String> {
        None
    }

    /// The diagnosis when the service rejected the request at `at`.
    fn rejected(&self, fqdn: &str, at: &str, detail: &str) -> String;

    /// The answer of a healthy endpoint in the simulated VNet.
    fn sim_reply(&self, fqdn: &str) -> Reply;
}

/// The registry: each service's module.
pub fn of(service: Service) -> &'static dyn AzureService {
    match service {
        Service::Workspace => &workspace::Workspace,
        Service::Storage => &storage::Storage,
        Service::Keyvault => &keyvault::KeyVault,
        Service::Acr => &acr::Acr,
        Service::Custom => &custom::Custom,
    }
}

/// The first non-empty line of a body, cut to 160 characters, for messages.
pub fn first_line(s: &str) -> String {
    let line = s
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("(empty body)");
    let mut out: String = line.chars().take(160).collect();
    if line.chars().count() > 160 {
        out.push('…');
    }
    out
}
