//! Helpers shared by the integration tests: a small lab of real DNS and TLS
//! servers on loopback, and configs that point at them.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};

use netprobe::config::Config;
use netprobe::probe::{Engine, TlsSetup};
use netprobe::report::{RoundReport, TargetReport};
use netprobe::sim::dns::{DnsServer, Entry, Records};
use netprobe::sim::https::{HttpsServer, Reply};
use netprobe::sim::pki::{Ca, Validity};

/// A CNAME `from -> to` and, if given, `to -> ips`.
pub fn chain(records: &mut Records, from: &str, to: &str, ips: &[IpAddr]) {
    records.insert(from.into(), Entry::Cname(to.into()));
    if !ips.is_empty() {
        records.insert(to.into(), Entry::Addrs(ips.to_vec()));
    }
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// YAML for custom targets on `port`, with resolvers `(name, server)`.
pub fn yaml(targets: &[(&str, &str, &str)], port: u16, resolvers: &[(&str, SocketAddr)], timeout: &str) -> String {
    let mut y = format!("timeout: {timeout}\ntargets:\n");
    for (name, fqdn, service) in targets {
        y.push_str(&format!(
            "  - name: {name}\n    fqdn: {fqdn}\n    service: {service}\n    port: {port}\n"
        ));
    }
    y.push_str("resolvers:\n");
    for (name, addr) in resolvers {
        y.push_str(&format!("  - name: {name}\n    servers: [\"{addr}\"]\n"));
    }
    y.push_str("private_ranges: [10.0.0.0/8, 127.0.10.0/24]\n");
    y
}

/// Parses YAML into a config, panicking with the error on failure.
pub fn config(yaml: &str) -> Config {
    Config::from_yaml(yaml, "<test>", None).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

pub fn trust(ca: &Ca) -> TlsSetup {
    TlsSetup::new(None, &[ca.cert_der()], false).unwrap()
}

pub async fn round(config: Config, tls: TlsSetup) -> RoundReport {
    Engine::with_tls(config, tls).run_round().await
}

pub fn target<'a>(report: &'a RoundReport, name: &str) -> &'a TargetReport {
    report
        .targets
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no target {name} in report"))
}

/// An HTTPS endpoint on `ip` (any port) with a current certificate for `names`.
pub async fn endpoint(ca: &Ca, ip: IpAddr, port: u16, names: &[&str], reply: Reply) -> HttpsServer {
    let leaf = ca.leaf(names, Validity::Current).unwrap();
    HttpsServer::start(ip, port, &leaf, reply).await.unwrap()
}

pub async fn dns(records: Records) -> DnsServer {
    DnsServer::start(records).await.unwrap()
}
