//! The DNS phase against real DNS servers on loopback: the in-process sim
//! server for each failure mode, and hand-written UDP servers for spoofed and
//! truncated answers.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::lookup;
use netprobe::azure::Cloud;
use netprobe::model::DnsVerdict;
use netprobe::observation::DnsOutcome;
use netprobe::probe::dns::MAX_QUERIES_PER_LOOKUP;
use netprobe::service::Target;
use netprobe::verdict::assess_dns;
use netprobe_sim::dns::{Entry, Records};

use common::{chain, dns, ip};

const T: Duration = Duration::from_millis(800);

fn ranges() -> Vec<ipnet::IpNet> {
    netprobe::config::default_private_ranges()
}

fn acr() -> Target {
    netprobe::service::acr::login(Cloud::Public, "reg01")
}

/// The queries a server `received` for one lookup: within the budget, and
/// exactly what the client counted.
fn assert_within_budget(case: &str, received: u64, obs: &netprobe::observation::DnsObservation) {
    assert!(
        received <= u64::from(MAX_QUERIES_PER_LOOKUP),
        "{case}: {received} queries (budget {MAX_QUERIES_PER_LOOKUP}): {obs:?}"
    );
    assert_eq!(
        received,
        u64::from(obs.queries),
        "{case}: client and server count differently: {obs:?}"
    );
}

/// One lookup against a sim server holding `records`. Every failure mode that
/// goes through here also checks the query budget: the server received no
/// more than [`MAX_QUERIES_PER_LOOKUP`], and exactly what the client counted.
async fn verdict_of(records: Records, target: &Target) -> (DnsVerdict, netprobe::verdict::DnsView) {
    let server = dns(records).await;
    let obs = lookup("test", &target.fqdn, &[server.addr()], T).await;
    assert_within_budget("one lookup", server.queries(), &obs);
    let view = assess_dns(target, &obs, &ranges());
    (view.verdict, view)
}

/// `reg01.azurecr.io` CNAME its privatelink name, at 10.1.2.3: healthy.
fn healthy_reg01() -> Records {
    let mut r = Records::new();
    chain(
        &mut r,
        "reg01.azurecr.io",
        "reg01.privatelink.azurecr.io",
        &[ip("10.1.2.3")],
    );
    r
}

fn keyvault() -> Target {
    netprobe::service::keyvault::target(Cloud::Public, "kv01")
}

const KV_PL: &str = "kv01.privatelink.vaultcore.azure.net";

#[tokio::test]
async fn nodata_after_the_privatelink_cname_is_nodata_in_four_queries() {
    // The name exists in the linked zone but holds no A/AAAA record: the
    // server answers the CNAME and nothing after it (NOERROR). netprobe asks
    // the privatelink name once, gets NODATA again, and stops there.
    let mut r = Records::new();
    chain(&mut r, "kv01.vault.azure.net", KV_PL, &[]);
    r.insert(KV_PL.into(), Entry::Addrs(vec![]));
    let (v, view) = verdict_of(r.clone(), &keyvault()).await;
    assert_eq!(v, DnsVerdict::Nodata, "{view:?}");
    assert!(view.privatelink);
    assert_eq!(view.chain, vec![KV_PL]);

    let server = dns(r).await;
    let obs = lookup("test", "kv01.vault.azure.net", &[server.addr()], T).await;
    assert_eq!(
        obs.queries, 4,
        "A+AAAA, then A+AAAA of the privatelink name once: {obs:?}"
    );
    assert_eq!(server.queries(), 4);
}

/// dnsmasq's shape for a missing record: the A query gets the CNAME alone
/// (NOERROR), the AAAA query NXDOMAIN; asked for the privatelink name itself,
/// A comes back empty (NOERROR) and AAAA NXDOMAIN.
async fn dnsmasq_shaped_server() -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use hickory_resolver::proto::op::ResponseCode;
    use hickory_resolver::proto::rr::rdata::CNAME;
    use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = count.clone();
    let addr = common::udp_dns(move |sock, peer, req| {
        seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        async move {
            let q = req.queries[0].clone();
            let mut resp = common::a_response(&req, &[]);
            let asked = q.name().to_ascii().to_ascii_lowercase();
            if asked == "kv01.vault.azure.net." {
                resp.add_answer(Record::from_rdata(
                    q.name().clone(),
                    60,
                    RData::CNAME(CNAME(Name::from_ascii(format!("{KV_PL}.")).unwrap())),
                ));
            }
            if q.query_type() == RecordType::AAAA {
                resp.metadata.response_code = ResponseCode::NXDomain;
            }
            let _ = sock.send_to(&resp.to_vec().unwrap(), peer).await;
        }
    })
    .await;
    (addr, count)
}

/// A recursive resolver's NODATA after a CNAME carries the zone's SOA in the
/// authority section (RFC 2308, as Unbound answers): that is the final word
/// on the chain's last name, and nothing is asked again.
#[tokio::test]
async fn nodata_with_an_soa_after_the_cname_needs_no_follow_up() {
    use hickory_resolver::proto::rr::rdata::{CNAME, SOA};
    use hickory_resolver::proto::rr::{Name, RData, Record};
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = count.clone();
    let server = common::udp_dns(move |sock, peer, req| {
        seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        async move {
            let q = req.queries[0].clone();
            let mut resp = common::a_response(&req, &[]);
            let target = Name::from_ascii(format!("{KV_PL}.")).unwrap();
            resp.add_answer(Record::from_rdata(q.name().clone(), 60, RData::CNAME(CNAME(target))));
            let zone = Name::from_ascii("privatelink.vaultcore.azure.net.").unwrap();
            let soa = SOA::new(
                zone.clone(),
                Name::from_ascii("hostmaster.example.").unwrap(),
                1,
                3600,
                600,
                86400,
                10,
            );
            resp.add_authority(Record::from_rdata(zone, 10, RData::SOA(soa)));
            let _ = sock.send_to(&resp.to_vec().unwrap(), peer).await;
        }
    })
    .await;
    let obs = lookup("test", "kv01.vault.azure.net", &[server], T).await;
    let view = assess_dns(&keyvault(), &obs, &ranges());
    assert_eq!(view.verdict, DnsVerdict::Nodata, "{view:?}");
    assert!(view.privatelink);
    assert_eq!(obs.queries, 2, "{obs:?}");
    assert_eq!(count.load(std::sync::atomic::Ordering::Relaxed), 2);
}

#[tokio::test]
async fn a_dangling_cname_with_nxdomain_for_aaaa_is_nxdomain_without_a_follow_up() {
    // A: the CNAME alone (NOERROR); AAAA: NXDOMAIN for the same chain. The
    // chain's end does not exist: NXDOMAIN after the privatelink CNAME.
    let (server, received) = dnsmasq_shaped_server().await;
    let obs = lookup("test", "kv01.vault.azure.net", &[server], T).await;
    let view = assess_dns(&keyvault(), &obs, &ranges());
    assert_eq!(view.verdict, DnsVerdict::Nxdomain, "{view:?}");
    assert!(view.privatelink);
    assert_eq!(view.chain, vec![KV_PL]);
    let received = received.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(received, 2, "{obs:?}");
    assert_eq!(u64::from(obs.queries), received);
}

/// Every server shape the tests know, through one, two and three servers:
/// the queries a server receives for one lookup stay within the budget.
#[tokio::test]
async fn every_dns_failure_mode_stays_within_the_query_budget() {
    let mut shapes: Vec<(&str, Records)> = Vec::new();
    let mut r = Records::new();
    chain(&mut r, "kv01.vault.azure.net", KV_PL, &[ip("10.1.2.3")]);
    shapes.push(("healthy", r));
    let mut r = Records::new();
    chain(&mut r, "kv01.vault.azure.net", KV_PL, &[]);
    shapes.push(("nxdomain after the CNAME", r.clone()));
    r.insert(KV_PL.into(), Entry::Addrs(vec![]));
    shapes.push(("nodata after the CNAME", r));
    let mut r = Records::new();
    r.insert("kv01.vault.azure.net".into(), Entry::CnameStop(KV_PL.into()));
    r.insert(KV_PL.into(), Entry::CnameStop(KV_PL.into()));
    shapes.push(("a CNAME to itself, not chased", r));
    let mut r = Records::new();
    r.insert("kv01.vault.azure.net".into(), Entry::CnameStop(KV_PL.into()));
    r.insert(KV_PL.into(), Entry::Addrs(vec![]));
    shapes.push(("nodata after an unchased CNAME", r));
    let mut r = Records::new();
    r.insert("kv01.vault.azure.net".into(), Entry::CnameStop("s0.example.net".into()));
    for i in 0..40 {
        r.insert(
            format!("s{i}.example.net"),
            Entry::CnameStop(format!("s{}.example.net", i + 1)),
        );
    }
    shapes.push(("40 single-step CNAMEs", r));
    for (what, entry) in [
        ("servfail", Entry::ServFail),
        ("refused", Entry::Refused),
        ("silence", Entry::Drop),
    ] {
        let mut r = Records::new();
        r.insert("kv01.vault.azure.net".into(), entry);
        shapes.push((what, r));
    }
    let mut r = Records::new();
    let many: Vec<IpAddr> = (1..=200u8).map(|i| IpAddr::from([10, 9, 0, i])).collect();
    chain(&mut r, "kv01.vault.azure.net", KV_PL, &many);
    shapes.push(("truncated", r));

    for (what, records) in shapes {
        for copies in 1..=3 {
            let server = dns(records.clone()).await;
            let servers = vec![server.addr(); copies];
            let obs = lookup("test", "kv01.vault.azure.net", &servers, Duration::from_millis(600)).await;
            let received = server.queries();
            assert_within_budget(&format!("{what} through {copies} servers"), received, &obs);
            if what == "healthy" {
                assert_eq!(received, 2, "a healthy lookup is A + AAAA");
            }
        }
    }
}

#[tokio::test]
async fn healthy_chain_is_private_through_privatelink() {
    let (v, view) = verdict_of(healthy_reg01(), &acr()).await;
    assert_eq!(v, DnsVerdict::Private);
    assert!(view.privatelink);
    assert_eq!(view.chain, vec!["reg01.privatelink.azurecr.io"]);
    assert_eq!(view.rcode.map(|r| r.as_string()).as_deref(), Some("NOERROR"));
    assert_eq!(view.addresses.len(), 1);
}

#[tokio::test]
async fn unlinked_zone_keeps_privatelink_but_answers_public() {
    let mut r = Records::new();
    chain(&mut r, "reg01.azurecr.io", "reg01.privatelink.azurecr.io", &[]);
    chain(
        &mut r,
        "reg01.privatelink.azurecr.io",
        "reg01.westeurope.cloudapp.azure.com",
        &[ip("20.50.1.2")],
    );
    let (v, view) = verdict_of(r, &acr()).await;
    assert_eq!(v, DnsVerdict::Public);
    assert!(view.privatelink);
    assert_eq!(view.chain.len(), 2);
}

#[tokio::test]
async fn missing_record_is_nxdomain_after_the_privatelink_cname() {
    let mut r = Records::new();
    chain(&mut r, "reg01.azurecr.io", "reg01.privatelink.azurecr.io", &[]);
    let (v, view) = verdict_of(r, &acr()).await;
    assert_eq!(v, DnsVerdict::Nxdomain);
    assert!(view.privatelink, "the CNAME that came with NXDOMAIN must be kept");
    assert_eq!(view.rcode.map(|r| r.as_string()).as_deref(), Some("NXDOMAIN"));
}

#[tokio::test]
async fn mixed_answers_and_ipv6() {
    let mut r = Records::new();
    chain(
        &mut r,
        "reg01.azurecr.io",
        "reg01.privatelink.azurecr.io",
        &[ip("10.1.2.3"), ip("2001:db8::1")],
    );
    let (v, view) = verdict_of(r, &acr()).await;
    assert_eq!(v, DnsVerdict::Mixed, "{view:?}");
    let mut r = Records::new();
    chain(
        &mut r,
        "reg01.azurecr.io",
        "reg01.privatelink.azurecr.io",
        &[ip("10.1.2.3"), ip("fd00::5")],
    );
    let (v, view) = verdict_of(r, &acr()).await;
    assert_eq!(v, DnsVerdict::Private);
    assert_eq!(view.addresses.len(), 2, "A and AAAA are both collected");
}

#[tokio::test]
async fn loops_and_long_chains_are_errors() {
    let mut r = Records::new();
    chain(&mut r, "reg01.azurecr.io", "reg01.privatelink.azurecr.io", &[]);
    chain(&mut r, "reg01.privatelink.azurecr.io", "reg01.azurecr.io", &[]);
    let (v, view) = verdict_of(r, &acr()).await;
    assert_eq!(v, DnsVerdict::Error);
    assert!(view.detail.as_deref().unwrap_or_default().contains("loop"), "{view:?}");

    let mut r = Records::new();
    chain(&mut r, "reg01.azurecr.io", "n0.example.net", &[]);
    for i in 0..20 {
        chain(
            &mut r,
            &format!("n{i}.example.net"),
            &format!("n{}.example.net", i + 1),
            &[],
        );
    }
    r.insert("n20.example.net".into(), Entry::Addrs(vec![ip("10.0.0.1")]));
    let (v, view) = verdict_of(r, &acr()).await;
    assert_eq!(v, DnsVerdict::Error);
    assert!(
        view.detail.as_deref().unwrap_or_default().contains("longer than 16"),
        "{view:?}"
    );
}

#[tokio::test]
async fn servfail_refused_and_nodata() {
    for (entry, want) in [
        (Entry::ServFail, DnsVerdict::Servfail),
        (Entry::Refused, DnsVerdict::Refused),
    ] {
        let mut r = Records::new();
        r.insert("reg01.azurecr.io".into(), entry);
        assert_eq!(verdict_of(r, &acr()).await.0, want);
    }
    let mut r = Records::new();
    // Only an AAAA-less, A-less name: NOERROR with no data.
    r.insert("reg01.azurecr.io".into(), Entry::Addrs(vec![]));
    assert_eq!(verdict_of(r, &acr()).await.0, DnsVerdict::Nodata);
}

#[tokio::test]
async fn a_silent_server_times_out_within_the_budget() {
    let mut r = Records::new();
    r.insert("reg01.azurecr.io".into(), Entry::Drop);
    let server = dns(r).await;
    let start = Instant::now();
    let obs = lookup("test", "reg01.azurecr.io", &[server.addr()], Duration::from_millis(400)).await;
    let took = start.elapsed();
    assert_eq!(obs.outcome, DnsOutcome::Timeout);
    assert!(
        took >= Duration::from_millis(390) && took < Duration::from_millis(1500),
        "{took:?}"
    );
}

#[tokio::test]
async fn the_next_server_answers_when_the_first_fails() {
    let mut bad = Records::new();
    bad.insert("reg01.azurecr.io".into(), Entry::ServFail);
    let bad = dns(bad).await;
    let good = dns(healthy_reg01()).await;
    let obs = lookup("test", "reg01.azurecr.io", &[bad.addr(), good.addr()], T).await;
    assert_eq!(obs.server, Some(good.addr()));
    assert_eq!(assess_dns(&acr(), &obs, &ranges()).verdict, DnsVerdict::Private);
    // A dead first server (nothing listening: ICMP port unreachable) is skipped too.
    let dead: SocketAddr = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap()
    };
    let obs = lookup("test", "reg01.azurecr.io", &[dead, good.addr()], T).await;
    assert_eq!(assess_dns(&acr(), &obs, &ranges()).verdict, DnsVerdict::Private);
}

#[tokio::test]
async fn large_answers_fall_back_to_tcp() {
    let mut r = Records::new();
    let many: Vec<IpAddr> = (1..=200u8).map(|i| IpAddr::from([10, 9, 0, i])).collect();
    chain(&mut r, "reg01.azurecr.io", "reg01.privatelink.azurecr.io", &many);
    let server = dns(r).await;
    let obs = lookup("test", "reg01.azurecr.io", &[server.addr()], T).await;
    assert!(obs.tcp_fallback, "a 200-record answer does not fit 1232 bytes");
    let view = assess_dns(&acr(), &obs, &ranges());
    assert_eq!(view.verdict, DnsVerdict::Private);
    // All 200 arrived (over TCP); a fixed number is kept, the rest counted.
    assert_eq!(view.addresses.len(), netprobe::observation::MAX_ADDRESSES_KEPT);
    match &obs.outcome {
        DnsOutcome::Answer(a) => assert_eq!(a.omitted, 200 - netprobe::observation::MAX_ADDRESSES_KEPT),
        other => panic!("{other:?}"),
    }
}

/// A UDP server that first sends a response with the wrong ID, then one from
/// another socket (wrong source), then the real answer.
async fn spoofing_server() -> SocketAddr {
    let other = std::sync::Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
    common::udp_dns(move |sock, peer, req| {
        let other = other.clone();
        async move {
            let mut spoofed = common::a_response(&req, &[[203, 0, 113, 66]]);
            spoofed.metadata.id = req.metadata.id.wrapping_add(1);
            let wrong_source = common::a_response(&req, &[[203, 0, 113, 67]]);
            let _ = sock.send_to(&spoofed.to_vec().unwrap(), peer).await;
            let _ = other.send_to(&wrong_source.to_vec().unwrap(), peer).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            let real = common::a_response(&req, &[[10, 1, 2, 3]]);
            let _ = sock.send_to(&real.to_vec().unwrap(), peer).await;
        }
    })
    .await
}

#[tokio::test]
async fn spoofed_and_stray_responses_are_ignored() {
    let server = spoofing_server().await;
    let obs = lookup("test", "reg01.azurecr.io", &[server], T).await;
    let view = assess_dns(&acr(), &obs, &ranges());
    assert_eq!(view.verdict, DnsVerdict::Private, "{view:?}");
    assert_eq!(
        view.addresses.iter().map(|a| a.ip).collect::<Vec<_>>(),
        vec![ip("10.1.2.3")]
    );
}

#[tokio::test]
async fn names_are_asked_as_absolute_names_case_insensitively() {
    let mut r = Records::new();
    chain(
        &mut r,
        "reg01.azurecr.io",
        "REG01.PrivateLink.AzureCR.io",
        &[ip("10.1.2.3")],
    );
    let server = dns(r).await;
    let obs = lookup("test", "Reg01.AzureCR.io.", &[server.addr()], T).await;
    let view = assess_dns(&acr(), &obs, &ranges());
    assert_eq!(view.verdict, DnsVerdict::Private);
    assert!(view.privatelink);
}

#[tokio::test]
async fn a_chain_the_server_does_not_chase_is_followed_by_asking_again() {
    // reg01 -> (stop) reg01.privatelink -> (stop) backend -> A
    let mut r = Records::new();
    r.insert(
        "reg01.azurecr.io".into(),
        Entry::CnameStop("reg01.privatelink.azurecr.io".into()),
    );
    r.insert(
        "reg01.privatelink.azurecr.io".into(),
        Entry::CnameStop("backend.example.net".into()),
    );
    r.insert("backend.example.net".into(), Entry::Addrs(vec![ip("10.1.2.3")]));
    let (v, view) = verdict_of(r, &acr()).await;
    assert_eq!(v, DnsVerdict::Private, "{view:?}");
    assert_eq!(view.chain, vec!["reg01.privatelink.azurecr.io", "backend.example.net"]);
    assert!(view.privatelink);

    // NXDOMAIN at the end of a followed chain is still NXDOMAIN after privatelink.
    let mut r = Records::new();
    r.insert(
        "reg01.azurecr.io".into(),
        Entry::CnameStop("reg01.privatelink.azurecr.io".into()),
    );
    let (v, view) = verdict_of(r, &acr()).await;
    assert_eq!(v, DnsVerdict::Nxdomain, "{view:?}");
    assert!(view.privatelink);

    // A loop that only shows across follow-ups is caught, and ends in time.
    let mut r = Records::new();
    r.insert("reg01.azurecr.io".into(), Entry::CnameStop("a.example.net".into()));
    r.insert("a.example.net".into(), Entry::CnameStop("reg01.azurecr.io".into()));
    let (v, view) = verdict_of(r, &acr()).await;
    assert_eq!(v, DnsVerdict::Error, "{view:?}");
    assert!(view.detail.unwrap_or_default().contains("loop"));

    // So is a chain that grows past 16 names across a few follow-ups.
    let mut r = Records::new();
    r.insert("reg01.azurecr.io".into(), Entry::Cname("s0.example.net".into()));
    for i in 0..30 {
        let next = format!("s{}.example.net", i + 1);
        let entry = if i % 8 == 7 {
            Entry::CnameStop(next)
        } else {
            Entry::Cname(next)
        };
        r.insert(format!("s{i}.example.net"), entry);
    }
    let (v, view) = verdict_of(r, &acr()).await;
    assert_eq!(v, DnsVerdict::Error, "{view:?}");
    assert!(view.detail.unwrap_or_default().contains("longer than 16"));

    // A long chain of single steps ends when the query budget is spent.
    let mut r = Records::new();
    r.insert("reg01.azurecr.io".into(), Entry::CnameStop("s0.example.net".into()));
    for i in 0..30 {
        r.insert(
            format!("s{i}.example.net"),
            Entry::CnameStop(format!("s{}.example.net", i + 1)),
        );
    }
    let (v, view) = verdict_of(r, &acr()).await;
    assert_eq!(v, DnsVerdict::Error, "{view:?}");
    let detail = view.detail.unwrap_or_default();
    assert!(
        detail.contains(&format!("{MAX_QUERIES_PER_LOOKUP} queries")),
        "{detail}"
    );
}

#[tokio::test]
async fn control_characters_from_dns_never_reach_reports_or_logs_raw() {
    // A CNAME target with a newline and an ANSI escape: it could forge log
    // lines or repaint a terminal if it were printed raw.
    let hostile = "evil\nINFO forged line\u{1b}[31m.privatelink.azurecr.io";
    let mut r = Records::new();
    chain(&mut r, "reg01.azurecr.io", hostile, &[ip("10.1.2.3")]);
    let (_, view) = verdict_of(r, &acr()).await;
    assert_eq!(view.chain.len(), 1, "{view:?}");
    let shown = &view.chain[0];
    assert!(
        !shown.chars().any(|c| c.is_control()),
        "raw control characters in {shown:?}"
    );
    assert!(
        shown.contains("\\012") && shown.contains("\\033"),
        "escaped in presentation format: {shown:?}"
    );
}

/// The agent's own bound on the node's DNS: through one resolver, at most
/// `QUERY_BURST` queries go out at once and then `QUERY_RATE_PER_SECOND`;
/// the rest wait (counted as held), and every lookup still gets its answer.
/// A query whose wait would outlast its lookup is not sent, and says why.
#[tokio::test]
async fn one_resolver_is_sent_at_most_its_rate() {
    use netprobe::probe::dns::{QUERY_BURST, QueryRate};
    let mut records = Records::new();
    records.insert("kv01.vault.azure.net".into(), Entry::Addrs(vec![ip("10.0.1.6")]));
    let server = dns(records).await;
    let rate = QueryRate::per_resolver();
    let servers = [server.addr()];
    // 120 lookups at once: 240 queries, 140 over the burst.
    let lookups = (0..120)
        .map(|_| netprobe::probe::dns::lookup("test", "kv01.vault.azure.net", &servers, Duration::from_secs(5), &rate));
    let obs = futures_util::future::join_all(lookups).await;
    assert!(
        obs.iter().all(|o| matches!(o.outcome, DnsOutcome::Answer(_))),
        "{:?}",
        obs[0]
    );
    let sent: u32 = obs.iter().map(|o| o.queries).sum();
    assert_eq!(u64::from(sent), server.queries());
    assert!(rate.held() >= u64::from(240 - QUERY_BURST), "held {}", rate.held());

    // The bucket is empty now: a lookup that cannot wait is not sent.
    let quick = netprobe::probe::dns::lookup(
        "test",
        "kv01.vault.azure.net",
        &[server.addr()],
        Duration::from_millis(1),
        &rate,
    )
    .await;
    match quick.outcome {
        DnsOutcome::Failed(why) => assert!(why.contains("queries per second"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(quick.queries, 0, "nothing was sent, nothing counted");
}

/// A reload keeps each resolver's query rate (no fresh burst per reload),
/// unless the resolvers changed.
#[tokio::test]
async fn a_reload_keeps_the_resolvers_query_rates() {
    let mut records = Records::new();
    records.insert("kv01.vault.azure.net".into(), Entry::Addrs(vec![ip("10.0.1.6")]));
    let server = dns(records).await;
    let yaml = |resolver: &str| {
        format!(
            "key_vaults: [kv01]\nresolvers: [{{name: {resolver}, servers: [\"{}\"]}}]\ntimeout: 5s\n",
            server.addr()
        )
    };
    let ca = netprobe_sim::pki::Ca::new("unused").unwrap();
    let engine = |y: &str| {
        netprobe::probe::Engine::with_tls(
            netprobe::config::Config::from_yaml(y, "t.yaml", None).unwrap(),
            common::trust(&ca),
        )
    };
    let first = engine(&yaml("system"));
    let reloaded = engine(&yaml("system")).keeping_rates_of(&first);
    let renamed = engine(&yaml("other")).keeping_rates_of(&first);
    let now = std::time::SystemTime::now;
    // 150 rounds of one target at once: 300 queries, reserved about 2 s
    // past the burst. Meanwhile, one round on each reloaded engine.
    let drain = futures_util::future::join_all((0..150).map(|_| first.run_round(now())));
    let check = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let held = |o: netprobe::observation::RoundObservation| o.held.iter().sum::<u64>();
        (
            held(reloaded.run_round(now()).await),
            held(renamed.run_round(now()).await),
        )
    };
    let (_, (kept, fresh)) = tokio::join!(drain, check);
    assert!(kept > 0, "a reload granted a fresh burst");
    assert_eq!(fresh, 0, "other resolvers start with their own burst");
}

/// Azure DNS security policy's block answer: the name is a CNAME to
/// `blockpolicy.azuredns.invalid`, which resolves to nothing. The sentinel is
/// never asked (before, the chain's end was followed with two more queries
/// and judged `name_not_found`), and the verdict says blocked.
#[tokio::test]
async fn the_policy_sentinel_is_recognised_and_never_asked() {
    let mut r = Records::new();
    r.insert(
        "reg01.azurecr.io".into(),
        Entry::CnameStop("blockpolicy.azuredns.invalid".into()),
    );
    let server = dns(r).await;
    let obs = lookup("test", "reg01.azurecr.io", &[server.addr()], T).await;
    assert_eq!((obs.queries, server.queries()), (2, 2), "A and AAAA only: {obs:?}");
    let view = assess_dns(&acr(), &obs, &ranges());
    assert_eq!(view.verdict, DnsVerdict::Blocked, "{view:?}");
    assert_eq!(view.detail.as_deref(), Some("reg01.azurecr.io"));
}

/// A server that answers every UDP query truncated and listens on no TCP
/// port: the TCP retry is refused, and the lookup says so (`TcpFailed`, not
/// a dead server); the round's TCP check of the same server fails too, while
/// a server that answers TCP passes it.
#[tokio::test]
async fn a_truncated_answer_without_tcp_is_a_tcp_failure() {
    let server = common::udp_dns(|sock, peer, req| async move {
        let mut truncated = common::a_response(&req, &[]);
        truncated.metadata.truncation = true;
        let _ = sock.send_to(&truncated.to_vec().unwrap(), peer).await;
    })
    .await;
    let obs = lookup("test", "reg01.azurecr.io", &[server], T).await;
    match &obs.outcome {
        DnsOutcome::TcpFailed(why) => assert!(why.contains("refused"), "{why}"),
        other => panic!("want TcpFailed, got {other:?}"),
    }
    let view = assess_dns(&acr(), &obs, &ranges());
    assert!(view.tcp_failed && view.verdict == DnsVerdict::Error, "{view:?}");

    let rate = netprobe::probe::dns::QueryRate::per_resolver();
    let check = netprobe::probe::dns::tcp_check(server, "reg01.azurecr.io", T, &rate).await;
    // Refused: no connection, so no query went out.
    assert!(
        check.outcome.is_err() && check.queries == 0 && !check.held_back,
        "{check:?}"
    );
    let good = dns(healthy_reg01()).await;
    let check = netprobe::probe::dns::tcp_check(good.addr(), "reg01.azurecr.io", T, &rate).await;
    assert_eq!(check.outcome, Ok(netprobe::observation::Rcode::NoError), "{check:?}");
    assert_eq!(good.queries(), 1);
}
