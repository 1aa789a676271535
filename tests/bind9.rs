//! The DNS phase and whole rounds against real BIND 9 servers (Debian
//! `bind9`, started by the test on loopback), not only the in-process sim:
//! CNAME chains across zones, NXDOMAIN after the privatelink CNAME, a DNS path
//! that answers publicly, and truncation with TCP fallback as BIND does it.

mod common;

use std::net::{IpAddr, SocketAddr};

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use netprobe::model::{Cause, DnsVerdict, Reach};
use netprobe::probe::dns::lookup;
use netprobe::sim::https::Reply;
use netprobe::sim::pki::Ca;

use common::{config, endpoint, round, target, trust};

struct Named {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Named {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SOA: &str = "@ 60 IN SOA ns.test. hostmaster.test. 1 60 60 600 60\n@ 60 IN NS ns.test.\n";

/// Starts `named` serving `zones` (zone name, records) authoritatively.
fn named(zones: &[(&str, String)]) -> Named {
    let found = Command::new("sh")
        .args(["-c", "command -v named"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "named is required (Debian package bind9; scripts/test installs it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let d = dir.path().display();
    let mut conf = format!(
        "options {{\n  directory \"{d}\";\n  listen-on port {port} {{ 127.0.0.1; }};\n  listen-on-v6 {{ none; }};\n  recursion no;\n  allow-query {{ any; }};\n  dnssec-validation no;\n  pid-file \"{d}/named.pid\";\n  session-keyfile \"{d}/session.key\";\n  edns-udp-size 1232;\n  max-udp-size 1232;\n}};\n"
    );
    for (zone, records) in zones {
        let file = format!("{zone}.zone");
        std::fs::write(
            dir.path().join(&file),
            format!("$ORIGIN {zone}.\n$TTL 60\n{SOA}{records}"),
        )
        .unwrap();
        conf.push_str(&format!("zone \"{zone}\" {{ type primary; file \"{file}\"; }};\n"));
    }
    let conf_path = dir.path().join("named.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let check = Command::new("named-checkconf").arg(&conf_path).output();
    if let Ok(out) = check {
        assert!(
            out.status.success(),
            "named-checkconf: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let log = std::fs::File::create(dir.path().join("named.log")).unwrap();
    let child = Command::new("named")
        .args(["-g", "-4", "-c"])
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start named");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    Named { child, addr, _dir: dir }
}

/// Waits until `server` answers for `name`.
async fn ready(server: &Named, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let obs = lookup("probe", name, &[server.addr], Duration::from_millis(300)).await;
        // named answers SERVFAIL while its zones are still loading.
        if let netprobe::observation::DnsOutcome::Answer(a) = &obs.outcome
            && a.rcode == netprobe::observation::Rcode::NoError
        {
            return;
        }

        if Instant::now() > deadline {
            let log = std::fs::read_to_string(server._dir.path().join("named.log")).unwrap_or_default();
            panic!("named on {} did not start: {obs:?}\n{log}", server.addr);
        }

        tokio::time::sleep(Duration::from_millis(100)).await;
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
    match &obs.outcome {
        netprobe::observation::DnsOutcome::Answer(a) => {
            assert_eq!(a.addresses.len(), 90);
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
    assert!(
        missing
            .dns
            .iter()
            .all(|d| d.verdict == DnsVerdict::Nxdomain && d.privatelink && d.rcode.as_deref() == Some("NXDOMAIN"))
    );

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
