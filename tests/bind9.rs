//! The DNS phase and whole rounds against real BIND 9 servers (Debian
//! `bind9`, started by the test on loopback), not only the in-process sim:
//! CNAME chains across zones, NXDOMAIN after the privatelink CNAME, a DNS path
//! that answers publicly, and truncation with TCP fallback as BIND does it.

mod common;

use std::net::{IpAddr, SocketAddr};

use std::process::Command;
use std::time::Duration;

use common::lookup;
use netprobe::model::{Cause, DnsVerdict, Reach};
use netprobe_sim::https::Reply;
use netprobe_sim::pki::Ca;

use common::{config, endpoint, round, target, trust};

#[path = "vnet/named.rs"]
mod named;

/// A `named` on a loopback port, with its directory.
struct Named {
    server: named::Named,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

/// Starts `named` serving `zones` (zone name, records) authoritatively.
fn named(zones: &[(&str, String)]) -> Named {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let files: Vec<(&str, String)> = zones
        .iter()
        .map(|(zone, records)| (*zone, named::zone_file(zone, records)))
        .collect();
    let server = named::start(
        Command::new("named"),
        dir.path(),
        &format!("port {port} {{ 127.0.0.1; }}"),
        "  recursion no;\n  edns-udp-size 1232;\n  max-udp-size 1232;\n",
        &files,
        "",
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    Named {
        server,
        addr,
        _dir: dir,
    }
}

/// Waits until `server` answers for `name`.
async fn ready(server: &Named, name: &str) {
    let up = named::answers(server.addr, name, Duration::from_secs(15), Duration::from_millis(300)).await;
    if let Err(obs) = up {
        panic!(
            "named on {} did not start: {obs:?}\n{}",
            server.addr,
            server.server.log()
        );
    }
}

fn many_a(name: &str, n: u8) -> String {
    (1..=n).map(|i| format!("{name} IN A 10.9.1.{i}\n")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_bind9_chains_nxdomain_forwarding_and_tcp_fallback() {
    let pe = IpAddr::from([127, 0, 10, 121]);
    let public = IpAddr::from([127, 0, 200, 121]);
    let public_zone = "reg01 IN CNAME reg01.privatelink.azurecr.io.\nmissing IN CNAME missing.privatelink.azurecr.io.\nfwd IN CNAME fwd.privatelink.azurecr.io.\nbig IN CNAME big.privatelink.azurecr.io.\n".to_string();
    // "Azure DNS": the private zone is linked.
    let azure = named(&[
        ("azurecr.io", public_zone.clone()),
        (
            "privatelink.azurecr.io",
            format!("reg01 IN A {pe}\nfwd IN A {pe}\n{}", many_a("big", 90)),
        ),
    ]);
    // A customer DNS server that resolves the privatelink name `fwd` publicly.
    let custom = named(&[
        ("azurecr.io", public_zone),
        (
            "privatelink.azurecr.io",
            format!(
                "reg01 IN A {pe}\nfwd IN CNAME fwd.eastus.cloudapp.example.\n{}",
                many_a("big", 90)
            ),
        ),
        ("cloudapp.example", format!("fwd.eastus IN A {public}\n")),
    ]);
    ready(&azure, "reg01.azurecr.io").await;
    ready(&custom, "reg01.azurecr.io").await;

    // The DNS phase alone: BIND truncates 90 A records (> 1232 bytes) over UDP;
    // TCP follows. (BIND 9.18 refuses RRsets of more than 100 records.)
    let obs = lookup("azure", "big.azurecr.io", &[azure.addr], Duration::from_secs(2)).await;
    assert!(obs.tcp_fallback, "{obs:?}");
    // BIND, authoritative for both zones, answers the public name with the
    // CNAME alone (no SOA): netprobe asks the privatelink name once (A and
    // AAAA), and only its A answer (90 records) is truncated and asked over TCP.
    assert_eq!(obs.queries, 5, "{obs:?}");
    match &obs.outcome {
        netprobe::observation::DnsOutcome::Answer(a) => {
            // All 90 arrived over TCP; 16 are kept, the rest counted.
            assert_eq!(
                (a.addresses.len(), a.omitted),
                (
                    netprobe::observation::MAX_ADDRESSES_KEPT,
                    90 - netprobe::observation::MAX_ADDRESSES_KEPT
                )
            );
            assert_eq!(a.chain, vec!["big.privatelink.azurecr.io"]);
        }
        other => panic!("{other:?}"),
    }

    // Whole rounds through both resolvers.
    let ca = Ca::new("bind9 test CA").unwrap();
    let ep = endpoint(&ca, pe, 0, &["*.azurecr.io"], Reply::acr_challenge("reg01.azurecr.io")).await;
    let port = ep.addr().port();
    let y = format!(
        "timeout: 2s\nresolvers:\n  - name: system\n    servers: [\"{}\"]\n  - name: azure\n    servers: [\"{}\"]\nprivate_ranges: [127.0.10.0/24]\ntargets:\n  - {{fqdn: reg01.azurecr.io, name: reg01, service: acr, port: {port}}}\n  - {{fqdn: missing.azurecr.io, name: missing, service: acr, port: {port}}}\n  - {{fqdn: fwd.azurecr.io, name: fwd, service: acr, port: {port}}}\n  - {{fqdn: nothere.azurecr.io, name: nothere, service: acr, port: {port}}}\n",
        custom.addr, azure.addr
    );
    let rep = round(config(&y), trust(&ca)).await;
    let reg = target(&rep, "reg01");
    assert!(reg.healthy, "{reg:#?}");
    assert!(
        reg.dns
            .iter()
            .all(|d| d.verdict == DnsVerdict::Private && d.privatelink)
    );
    assert_eq!(reg.reach, Reach::Ok);

    let missing = target(&rep, "missing");
    assert_eq!(missing.cause, Cause::RecordMissing, "{missing:#?}");
    assert!(missing.dns.iter().all(|d| d.verdict == DnsVerdict::Nxdomain
        && d.privatelink
        && d.rcode.map(|r| r.as_string()).as_deref() == Some("NXDOMAIN")));

    let fwd = target(&rep, "fwd");
    assert_eq!(fwd.cause, Cause::DnsPathNotForwarding, "{fwd:#?}");
    assert_eq!(fwd.dns[0].verdict, DnsVerdict::Public);
    assert_eq!(
        fwd.dns[0].cname_chain,
        vec!["fwd.privatelink.azurecr.io", "fwd.eastus.cloudapp.example"]
    );
    assert_eq!(fwd.dns[1].verdict, DnsVerdict::Private);

    let nothere = target(&rep, "nothere");
    assert_eq!(nothere.cause, Cause::NameNotFound, "{nothere:#?}");
}
