//! Helpers shared by the integration tests: a small lab of real DNS and TLS
//! servers on loopback, and configs that point at them.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};

use netprobe::config::Config;
use netprobe::probe::{Engine, TlsSetup};
use netprobe::report::{RoundReport, TargetReport};
use netprobe_sim::dns::{DnsServer, Entry, Records};
use netprobe_sim::https::{HttpsServer, Reply};
use netprobe_sim::pki::{Ca, Validity};

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

/// Runs one round. Every message in its report (diagnoses, DNS and
/// connection details) is checked to be readable (no library internals), and
/// every lookup to have stayed within the query budget.
pub async fn round(config: Config, tls: TlsSetup) -> RoundReport {
    let engine = Engine::with_tls(config, tls);
    let report = netprobe::round::run(&engine, &netprobe::cluster::ClusterContext::default()).await;
    for t in &report.targets {
        for d in &t.dns {
            assert!(
                d.queries <= netprobe::probe::dns::MAX_QUERIES_PER_LOOKUP,
                "{} through {}: {} queries",
                t.name,
                d.resolver,
                d.queries
            );
        }
        let texts = t
            .causes
            .iter()
            .map(|c| c.diagnosis.as_str())
            .chain(t.dns.iter().filter_map(|d| d.detail.as_deref()))
            .chain(t.connect.iter().filter_map(|c| c.detail.as_deref()));
        for text in texts {
            netprobe_testkit::assert_readable(text);
        }
    }
    report
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

/// A loopback port free for both TCP and UDP, for servers started as processes.
pub fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub async fn dns(records: Records) -> DnsServer {
    DnsServer::start(records).await.unwrap()
}

use hickory_resolver::proto::op::Message;

/// A raw UDP DNS server for misbehaviour tests: every query that parses is
/// handed to `handle` with the socket and the peer.
pub async fn udp_dns<F, Fut>(handle: F) -> SocketAddr
where
    F: Fn(std::sync::Arc<tokio::net::UdpSocket>, SocketAddr, Message) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let sock = std::sync::Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        loop {
            let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                return;
            };
            let Ok(req) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            tokio::spawn(handle(sock.clone(), peer, req));
        }
    });
    addr
}

/// A response to `req` with A records (for A queries) for the query name.
pub fn a_response(req: &Message, ips: &[[u8; 4]]) -> Message {
    use hickory_resolver::proto::rr::rdata::A;
    use hickory_resolver::proto::rr::{RData, Record, RecordType};
    let mut resp = Message::response(req.metadata.id, req.metadata.op_code);
    resp.add_query(req.queries[0].clone());
    if req.queries[0].query_type() == RecordType::A {
        for ip in ips {
            resp.add_answer(Record::from_rdata(
                req.queries[0].name().clone(),
                60,
                RData::A(A((*ip).into())),
            ));
        }
    }
    resp
}

/// A fake Kubernetes API server over HTTPS on loopback: a certificate for
/// `host` from its own CA, every request recorded in `seen`, answered by
/// `route`. Stops when dropped.
pub struct FakeApi {
    pub ca: Ca,
    pub port: u16,
    pub seen: std::sync::Arc<std::sync::Mutex<Vec<netprobe_sim::https::Seen>>>,
    _server: HttpsServer,
}

pub async fn fake_api(
    host: &str,
    route: impl Fn(&netprobe_sim::https::Seen) -> Reply + Send + Sync + 'static,
) -> FakeApi {
    let ca = Ca::new("fake API server CA").unwrap();
    let leaf = ca.leaf(&[host], Validity::Current).unwrap();
    let seen = std::sync::Arc::<std::sync::Mutex<Vec<netprobe_sim::https::Seen>>>::default();
    let log = seen.clone();
    let route = std::sync::Arc::new(move |req: &netprobe_sim::https::Seen| {
        log.lock().unwrap().push(req.clone());
        route(req)
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpsServer::serve_with(listener, &leaf, route).unwrap();
    FakeApi {
        ca,
        port,
        seen,
        _server: server,
    }
}

/// A JSON report (`probe --once --output json`, `/status`) read back as
/// the typed document it was written from.
pub fn parse_report(json: &[u8]) -> RoundReport {
    serde_json::from_slice(json).unwrap_or_else(|e| panic!("not a RoundReport: {e}"))
}

/// `(target, cause)` of each target of a report, in order.
pub fn causes(report: &RoundReport) -> Vec<(String, String)> {
    report
        .targets
        .iter()
        .map(|t| (t.name.clone(), t.cause.as_str().to_string()))
        .collect()
}

/// What the demo's own table says each site must show, as `causes` reads it.
pub fn demo_causes() -> Vec<(String, String)> {
    netprobe::demo::sites()
        .iter()
        .map(|s| (s.target.to_string(), s.cause.as_str().to_string()))
        .collect()
}

/// One lookup with a fresh query rate of the agent's size (each test's
/// lookups are few; `tests/dns.rs` checks the rate itself).
pub async fn lookup(
    resolver: &str,
    fqdn: &str,
    servers: &[SocketAddr],
    time: std::time::Duration,
) -> netprobe::observation::DnsObservation {
    let rate = netprobe::probe::dns::QueryRate::per_resolver();
    netprobe::probe::dns::lookup(resolver, fqdn, servers, time, &rate).await
}
