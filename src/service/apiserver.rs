//! The cluster's API server, by its FQDN: the AML inference router must
//! resolve and reach it, and a private cluster's name resolves through
//! `privatelink.<region>.azmk8s.io` (with API Server VNet Integration:
//! `private.<region>.azmk8s.io`). `GET /readyz` without credentials
//! answers 200 (anonymous health checks allowed), 401 or 403: each is a live
//! API server. The certificate is verified against the cluster CA.

#[cfg(feature = "sim")]
use netprobe_sim::https::Reply;

use super::{AzureService, Request, SectionCtx, Target, first_line};
use crate::azure::{Cloud, privatelink_zone};
use crate::input::{ConfigError, S, check_fqdn};
use crate::model::{Expect, Reach};
use crate::observation::HttpResponse;
use crate::service::Service;

pub struct ApiServer;

/// Where a pod finds the cluster CA.
pub const IN_CLUSTER_CA: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";

impl AzureService for ApiServer {
    fn request(&self) -> Request {
        Request {
            path: "/readyz",
            headers: &[],
        }
    }

    fn judge(&self, r: &HttpResponse) -> (Reach, Option<String>) {
        match r.status {
            200 | 401 | 403 => (Reach::Ok, None),
            s => (
                Reach::HttpError,
                Some(format!("HTTP {s} from /readyz: {}", first_line(&r.body))),
            ),
        }
    }

    fn rejected(&self, fqdn: &str, at: &str, detail: &str) -> String {
        format!(
            "{at}: {detail}. The API server {fqdn} answers, but not as a ready API server does (200, 401 or 403). \
             Fix: check the cluster's health in the Azure portal (or `az aks show`), and that no proxy answers \
             in its place."
        )
    }

    #[cfg(feature = "sim")]
    fn sim_reply(&self, _fqdn: &str) -> Reply {
        Reply::new(
            401,
            "{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"Unauthorized\",\"code\":401}",
        )
    }
}

/// The API server target: any answer (public, or private for a private
/// cluster), through `privatelink.<region>.azmk8s.io` when the region and
/// the cloud's AKS zone are known.
pub fn target(cloud: Cloud, fqdn: &str, port: u16, region: Option<&str>) -> Target {
    Target {
        name: "api-server".into(),
        fqdn: fqdn.to_string(),
        service: Service::ApiServer,
        port,
        expect: Expect::Any,
        expected_ips: Vec::new(),
        privatelink_zone: region.zip(cloud.zones().aks).map(|(r, aks)| {
            // API Server VNet Integration (and AKS Automatic) with private
            // mode: the name lives in `private.<region>.azmk8s.io` (or a
            // subzone of it), not in the privatelink zone.
            let private = format!("private.{r}.{aks}");
            if crate::azure::in_zone(fqdn, &private) {
                private
            } else {
                privatelink_zone(&format!("{r}.{aks}"))
            }
        }),
        tag_services: &[],
    }
}

/// True for the `api-server` target of a cluster with API Server VNet
/// Integration in private mode: its zone is `private.<region>.azmk8s.io`,
/// and nodes reach the API server by IP, not by this name.
pub fn vnet_integration(target: &Target) -> bool {
    target.service == Service::ApiServer
        && target
            .privatelink_zone
            .as_deref()
            .is_some_and(|z| z.starts_with("private."))
}

/// The `api_server_fqdn` key: the API server's name (`host` or `host:port`).
pub type Section = Option<S<String>>;

/// The `api_server_fqdn` key's JSON Schema.
pub fn section_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut s = crate::input::schema::fqdn(g);
    s.insert(
        "description".into(),
        "The API server's FQDN (default: KUBERNETES_SERVICE_HOST when it is a name)".into(),
    );
    s
}

/// The `api-server` target: `api_server_fqdn`, else the environment's
/// `KUBERNETES_SERVICE_HOST` when it is a name.
pub fn targets(section: &Section, ctx: &SectionCtx<'_>) -> Result<Vec<Target>, ConfigError> {
    let (fqdn, port) = match section {
        Some(f) => {
            let err = |m: String| ctx.input.err(f, "api_server_fqdn", m);
            let (host, port) = match f.value.rsplit_once(':') {
                Some((h, p)) if !h.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => {
                    let port = p
                        .parse::<u16>()
                        .ok()
                        .filter(|p| *p > 0)
                        .ok_or_else(|| err(format!("{p:?} is not a TCP port (1-65535)")))?;
                    (h, port)
                }
                _ => (f.value.as_str(), 443),
            };
            (check_fqdn(host).map_err(err)?, port)
        }
        None => match ctx.api_server_host {
            Some((host, port)) => (host.clone(), *port),
            None => return Ok(Vec::new()),
        },
    };
    // The cluster's region names its private zone; the node's region is the
    // cluster's, where the config's may be the workspace's.
    let region = ctx.node_region.or(ctx.region);
    Ok(vec![target(ctx.cloud, &fqdn, port, region)])
}
