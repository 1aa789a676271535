//! Azure Key Vault: `GET /healthstatus` answers anonymously, and its
//! `x-ms-keyvault-network-info` header says which client address it saw
//! (private means the private endpoint was used).

use netprobe_sim::https::Reply;

use super::{AzureService, Request, first_line};
use crate::azure::Cloud;
use crate::service::Target;
use crate::model::Reach;
use crate::service::Service;
use crate::observation::HttpResponse;

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
                let why = if r.body.to_ascii_lowercase().contains("forbiddenbyfirewall") {
                    "ForbiddenByFirewall"
                } else {
                    "403"
                };
                (
                    Reach::Blocked,
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
