//! The DNS phase through real recursive resolvers other than BIND, as
//! customers run them in front of Azure DNS: Unbound and dnsmasq (Debian
//! packages, started by the test on loopback). Each forwards to an in-process
//! server that plays Azure DNS, and each answers the edge cases its own way
//! (a CNAME whose target has no address, an upstream's SERVFAIL or REFUSED).
//! Every case also checks the query budget, counted by the resolver itself
//! in its own query log.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::lookup;
use netprobe::azure::Cloud;
use netprobe::model::{Cause, DnsVerdict};
use netprobe::probe::dns::MAX_QUERIES_PER_LOOKUP;
use netprobe::verdict::{ReachContext, assess_dns, diagnose};
use netprobe_sim::dns::{Entry, Records};

use common::{chain, dns, ip};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Unbound,
    Dnsmasq,
}

/// A resolver process on a loopback port; killed when dropped.
struct Resolver {
    kind: Kind,
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Resolver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Resolver {
    /// Starts `kind` on a free loopback port, forwarding everything to
    /// `upstream`. Names under `refused` are refused by the resolver itself
    /// where the implementation can be told to (Unbound's `local-zone refuse`).
    fn start(kind: Kind, upstream: SocketAddr, refused: &str) -> Resolver {
        let dir = tempfile::tempdir().unwrap();
        let port = common::free_port();
        let d = dir.path();
        let log = d.join("queries.log");
        let mut command = match kind {
            Kind::Unbound => {
                named::require("unbound", "unbound");
                let conf = d.join("unbound.conf");
                std::fs::write(
                    &conf,
                    format!(
                        "server:\n  interface: 127.0.0.1@{port}\n  port: {port}\n  do-ip6: no\n  do-daemonize: no\n  \
                         use-syslog: no\n  logfile: \"{log}\"\n  log-queries: yes\n  verbosity: 1\n  username: \"\"\n  \
                         chroot: \"\"\n  directory: \"{dir}\"\n  pidfile: \"{dir}/unbound.pid\"\n  \
                         do-not-query-localhost: no\n  access-control: 127.0.0.0/8 allow\n  \
                         module-config: \"iterator\"\n  qname-minimisation: no\n  \
                         local-zone: \"{refused}.\" refuse\n\
                         remote-control:\n  control-enable: no\n\
                         forward-zone:\n  name: \".\"\n  forward-addr: {}@{}\n",
                        upstream.ip(),
                        upstream.port(),
                        log = log.display(),
                        dir = d.display(),
                    ),
                )
                .unwrap();
                let check = Command::new("unbound-checkconf").arg(&conf).output().unwrap();
                assert!(
                    check.status.success(),
                    "unbound-checkconf: {}{}",
                    String::from_utf8_lossy(&check.stdout),
                    String::from_utf8_lossy(&check.stderr)
                );
                let mut c = Command::new("unbound");
                c.arg("-d").arg("-c").arg(&conf);
                c
            }
            Kind::Dnsmasq => {
                named::require("dnsmasq", "dnsmasq-base");
                let mut c = Command::new("dnsmasq");
                c.args([
                    "--keep-in-foreground",
                    "--conf-file=/dev/null",
                    "--no-resolv",
                    "--no-hosts",
                    "--bind-interfaces",
                    "--listen-address=127.0.0.1",
                    "--user=root",
                    "--log-queries",
                    "--log-async=0",
                ])
                .arg(format!("--port={port}"))
                .arg(format!("--server=127.0.0.1#{}", upstream.port()))
                .arg(format!("--log-facility={}", log.display()))
                .arg(format!("--pid-file={}", d.join("dnsmasq.pid").display()));
                c
            }
        };
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(d.join("stderr.log")).unwrap()))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {kind:?}: {e}"));
        Resolver {
            kind,
            child,
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
            log,
            _dir: dir,
        }
    }

    /// The queries the resolver logged as received from a client for `name`.
    fn received(&self, name: &str) -> usize {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let name = name.trim_end_matches('.');
        text.lines()
            .filter(|l| match self.kind {
                // "[..] unbound[..] info: 127.0.0.1 kv.vault.azure.net. A IN"
                Kind::Unbound => l.contains(" info: 127.0.0.1 ") && l.contains(&format!(" {name}. ")),
                // "dnsmasq[..]: query[A] kv.vault.azure.net from 127.0.0.1"
                Kind::Dnsmasq => l.contains("query[") && l.contains(&format!(" {name} from 127.0.0.1")),
            })
            .count()
    }

    fn logs(&self) -> String {
        let dir = self.log.parent().unwrap_or(Path::new("."));
        format!(
            "{}\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default(),
            std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default()
        )
    }
}

const ZONE: &str = "vault.azure.net";

fn upstream_records() -> Records {
    let mut r = Records::new();
    let pl = |n: &str| format!("{n}.privatelink.vaultcore.azure.net");
    chain(&mut r, &format!("kv-ok.{ZONE}"), &pl("kv-ok"), &[ip("10.1.2.3")]);
    // The privatelink name exists but holds no A/AAAA record (NODATA, with
    // the zone's SOA as Azure DNS answers; and without, as some servers do).
    chain(&mut r, &format!("kv-nodata.{ZONE}"), &pl("kv-nodata"), &[]);
    r.insert(pl("kv-nodata"), Entry::Empty);
    chain(&mut r, &format!("kv-nosoa.{ZONE}"), &pl("kv-nosoa"), &[]);
    r.insert(pl("kv-nosoa"), Entry::Addrs(vec![]));
    // The privatelink name does not exist (NXDOMAIN after the CNAME).
    chain(&mut r, &format!("kv-missing.{ZONE}"), &pl("kv-missing"), &[]);
    r.insert(format!("kv-broken.{ZONE}"), Entry::ServFail);
    r.insert(format!("kv-upref.{ZONE}"), Entry::Refused);
    // The ready probe.
    r.insert("ready.example".into(), Entry::Addrs(vec![ip("10.0.0.1")]));
    r
}

async fn wait_ready(r: &Resolver) {
    if let Err(obs) = common_named_ready(r.addr).await {
        panic!("{:?} on {} did not answer: {obs:?}\n{}", r.kind, r.addr, r.logs());
    }
}

async fn common_named_ready(addr: SocketAddr) -> Result<(), netprobe::observation::DnsObservation> {
    named::answers(
        addr,
        "ready.example",
        Duration::from_secs(15),
        Duration::from_millis(300),
    )
    .await
}

#[path = "vnet/named.rs"]
#[allow(dead_code)]
mod named;

/// (name, the verdict, cause and queries sent through Unbound, through dnsmasq).
type Case = (&'static str, (DnsVerdict, Cause, u32), (DnsVerdict, Cause, u32));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbound_and_dnsmasq_in_front_of_azure_dns() {
    use Cause as C;
    use DnsVerdict as V;
    let cases: &[Case] = &[
        ("kv-ok", (V::Private, C::None, 2), (V::Private, C::None, 2)),
        (
            "kv-nodata",
            (V::Nodata, C::RecordMissing, 2),
            (V::Nodata, C::RecordMissing, 2),
        ),
        (
            "kv-nosoa",
            (V::Nodata, C::RecordMissing, 4),
            (V::Nodata, C::RecordMissing, 4),
        ),
        (
            "kv-missing",
            (V::Nxdomain, C::RecordMissing, 2),
            (V::Nxdomain, C::RecordMissing, 2),
        ),
        (
            "kv-broken",
            (V::Servfail, C::DnsError, 2),
            (V::Servfail, C::DnsError, 2),
        ),
        // An upstream's REFUSED: Unbound turns it into SERVFAIL, dnsmasq passes it on.
        ("kv-upref", (V::Servfail, C::DnsError, 2), (V::Refused, C::DnsError, 2)),
        // Refused by the resolver itself (Unbound's local-zone); dnsmasq has
        // no such rule here and forwards: the upstream does not know the name.
        (
            "kv-refused",
            (V::Refused, C::DnsError, 2),
            (V::Nxdomain, C::NameNotFound, 2),
        ),
    ];
    let upstream = dns(upstream_records()).await;
    for kind in [Kind::Unbound, Kind::Dnsmasq] {
        let resolver = Resolver::start(kind, upstream.addr(), &format!("kv-refused.{ZONE}"));
        wait_ready(&resolver).await;
        for (name, unbound, dnsmasq) in cases {
            let (want_verdict, want_cause, want_queries) = if kind == Kind::Unbound { *unbound } else { *dnsmasq };
            let target = netprobe::service::keyvault::target(Cloud::Public, name);
            let obs = lookup("customer", &target.fqdn, &[resolver.addr], Duration::from_secs(2)).await;
            let view = assess_dns(&target, &obs, &netprobe::config::default_private_ranges());
            let d = diagnose(
                &target,
                std::slice::from_ref(&view),
                0,
                &ReachContext {
                    reach: netprobe::model::Reach::Ok,
                    connects: &[],
                    timeout: Duration::from_secs(2),
                    expected_addresses: false,
                    via: None,
                    outside_tag: None,
                    dns: Default::default(),
                },
            );
            let case = format!("{kind:?} {name}");
            println!("{case}: {} {} ({} queries)", view.verdict, d.cause(), obs.queries);
            assert_eq!(view.verdict, want_verdict, "{case}: {view:?}\n{}", resolver.logs());
            if want_cause != C::None {
                assert_eq!(d.cause(), want_cause, "{case}: {:?}", d.causes);
            } else {
                assert!(d.healthy(), "{case}: {:?}", d.causes);
            }
            assert!(obs.queries <= MAX_QUERIES_PER_LOOKUP, "{case}: {obs:?}");
            assert_eq!(obs.queries, want_queries, "{case}: {obs:?}");
            // What the resolver itself logged for the names of this lookup;
            // its log may trail the answers by a moment.
            let logged =
                || resolver.received(&target.fqdn) + view.chain.iter().map(|n| resolver.received(n)).sum::<usize>();
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            let mut received = logged();
            while received < obs.queries as usize && std::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
                received = logged();
            }
            assert!(
                received <= MAX_QUERIES_PER_LOOKUP as usize,
                "{case}: the resolver logged {received} queries"
            );
            assert_eq!(received, obs.queries as usize, "{case}: {obs:?}\n{}", resolver.logs());
        }
    }
}
