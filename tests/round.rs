//! Whole rounds against real DNS and TLS servers on loopback: every reach
//! verdict and every cause code the diagnosis layer knows.

mod common;

use netprobe_sim::private_ip as pe;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use netprobe::model::{Cause, DnsVerdict, Reach, TlsOutcome};
use netprobe_sim::bind_same_port;
use netprobe_sim::dns::{Entry, Records};
use netprobe_sim::https::{HttpsServer, Reply};
use netprobe_sim::pki::{Ca, Validity};
use tokio::net::{TcpListener, TcpStream};

use common::{chain, config, dns, round, target, trust, yaml};

struct Lab {
    port: u16,
    servers: Vec<HttpsServer>,
}

/// Starts one HTTPS server per `(ip, names, reply, ca)` on a shared port.
async fn lab(plan: Vec<(IpAddr, Vec<&str>, Reply, &Ca, Validity)>) -> Lab {
    let ips: Vec<IpAddr> = plan.iter().map(|p| p.0).collect();
    let (port, listeners) = bind_same_port(&ips).await.unwrap();
    let mut servers = Vec::new();
    for ((_, names, reply, ca, validity), l) in plan.into_iter().zip(listeners) {
        let leaf = ca.leaf(&names, validity).unwrap();
        servers.push(HttpsServer::serve(l, &leaf, reply).unwrap());
    }
    Lab { port, servers }
}

#[tokio::test]
async fn tls_outcomes_right_wrong_expired_untrusted() {
    let ca = Ca::new("test CA").unwrap();
    let rogue = Ca::new("rogue CA").unwrap();
    let l = lab(vec![
        (
            pe(21),
            vec!["good.azurecr.io"],
            Reply::acr_challenge("good.azurecr.io"),
            &ca,
            Validity::Current,
        ),
        (
            pe(22),
            vec!["someone-else.example.com"],
            Reply::new(200, ""),
            &ca,
            Validity::Current,
        ),
        (
            pe(23),
            vec!["expired.azurecr.io"],
            Reply::new(200, ""),
            &ca,
            Validity::Expired,
        ),
        (
            pe(24),
            vec!["proxied.azurecr.io"],
            Reply::new(200, ""),
            &rogue,
            Validity::Current,
        ),
    ])
    .await;
    let mut r = Records::new();
    for (name, host) in [("good", 21), ("wrongname", 22), ("expired", 23), ("proxied", 24)] {
        chain(
            &mut r,
            &format!("{name}.azurecr.io"),
            &format!("{name}.privatelink.azurecr.io"),
            &[pe(host)],
        );
    }
    let d = dns(r).await;
    let y = yaml(
        &[
            ("good", "good.azurecr.io", "acr"),
            ("wrongname", "wrongname.azurecr.io", "acr"),
            ("expired", "expired.azurecr.io", "acr"),
            ("proxied", "proxied.azurecr.io", "acr"),
        ],
        l.port,
        &[("system", d.addr())],
        "2s",
    );
    let rep = round(config(&y), trust(&ca)).await;

    let good = target(&rep, "good");
    assert!(good.healthy, "{good:?}");
    assert_eq!(good.reach, Reach::Ok);
    let c = &good.connect[0];
    assert_eq!(c.tls, Some(TlsOutcome::Ok));
    assert_eq!(c.http_status, Some(401));
    assert!(
        c.tls_version.as_deref().unwrap_or_default().starts_with("TLS 1."),
        "{c:?}"
    );
    let not_after = c.cert_not_after.as_deref().expect("expiry recorded");
    assert!(not_after > "2026", "{not_after}");

    for (name, want) in [
        ("wrongname", TlsOutcome::NameMismatch),
        ("expired", TlsOutcome::Expired),
        ("proxied", TlsOutcome::UnknownIssuer),
    ] {
        let t = target(&rep, name);
        assert_eq!(t.reach, Reach::TlsError, "{name}");
        assert_eq!(t.connect[0].tls, Some(want), "{name}");
        assert_eq!(t.cause, Cause::TlsMismatch, "{name}");
        assert!(t.connect[0].http_status.is_none(), "no HTTP after a failed handshake");
    }
    // The expired certificate's date is still reported, and it is in the past.
    let exp = target(&rep, "expired").connect[0]
        .cert_not_after
        .clone()
        .expect("expiry of a rejected cert");
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    assert!(exp < now, "{exp} should be before {now}");
    drop(l.servers);
}

#[tokio::test]
async fn extra_ca_file_is_trusted_on_top_of_system_roots() {
    let ca = Ca::new("corporate CA").unwrap();
    let l = lab(vec![(
        pe(31),
        vec!["reg02.azurecr.io"],
        Reply::acr_challenge("reg02.azurecr.io"),
        &ca,
        Validity::Current,
    )])
    .await;
    let mut r = Records::new();
    chain(&mut r, "reg02.azurecr.io", "reg02.privatelink.azurecr.io", &[pe(31)]);
    let d = dns(r).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
    let mut y = yaml(
        &[("reg", "reg02.azurecr.io", "acr")],
        l.port,
        &[("system", d.addr())],
        "2s",
    );
    y.push_str("tls:\n  extra_ca_file: ca.pem\n");
    let cfg = netprobe::config::Config::from_yaml(&y, "test.yaml", Some(dir.path())).unwrap();
    let engine = netprobe::probe::Engine::new(cfg).unwrap();
    let rep = netprobe::round::run(&engine, &netprobe::cluster::ClusterContext::default()).await;
    assert!(rep.healthy, "{:#?}", rep.targets);

    // Without the file the same endpoint is untrusted.
    let y = yaml(
        &[("reg", "reg02.azurecr.io", "acr")],
        l.port,
        &[("system", d.addr())],
        "2s",
    );
    let engine = netprobe::probe::Engine::new(config(&y)).unwrap();
    let rep = netprobe::round::run(&engine, &netprobe::cluster::ClusterContext::default()).await;
    assert_eq!(rep.targets[0].connect[0].tls, Some(TlsOutcome::UnknownIssuer));
}

#[tokio::test]
async fn http_answers_are_judged_per_service() {
    let ca = Ca::new("test CA").unwrap();
    let names = [
        (
            "acr-ok",
            "acrok.azurecr.io",
            "acr",
            Reply::acr_challenge("acrok.azurecr.io"),
            41,
            true,
        ),
        (
            "acr-denied",
            "acrdenied.azurecr.io",
            "acr",
            Reply::acr_denied(),
            42,
            false,
        ),
        (
            "kv-ok",
            "kvok.vault.azure.net",
            "keyvault",
            Reply::keyvault_health(),
            43,
            true,
        ),
        (
            "kv-firewall",
            "kvfw.vault.azure.net",
            "keyvault",
            Reply::new(
                403,
                r#"{"error":{"code":"Forbidden","innererror":{"code":"ForbiddenByFirewall"}}}"#,
            ),
            44,
            false,
        ),
        (
            "st-ok",
            "stok.blob.core.windows.net",
            "storage",
            Reply::storage_anonymous(),
            45,
            true,
        ),
        (
            "st-denied",
            "stdenied.blob.core.windows.net",
            "storage",
            Reply::new(403, "<Error><Code>AuthorizationFailure</Code></Error>"),
            46,
            false,
        ),
        (
            "ws-ok",
            "wsok.workspace.eastus.api.azureml.ms",
            "workspace",
            Reply::workspace_unauthorized(),
            47,
            true,
        ),
        (
            "ws-denied",
            "wsdenied.workspace.eastus.api.azureml.ms",
            "workspace",
            Reply::new(
                502,
                "Access to workspace was denied based on workspace private link configuration.",
            ),
            48,
            false,
        ),
        (
            "custom-500",
            "app.contoso.example",
            "custom",
            Reply::new(500, "oops"),
            49,
            true,
        ),
    ];
    let plan = names
        .iter()
        .map(|(_, fqdn, _, reply, host, _)| (pe(*host), vec![*fqdn], reply.clone(), &ca, Validity::Current))
        .collect();
    let l = lab(plan).await;
    let mut r = Records::new();
    for (_, fqdn, _, _, host, _) in &names {
        r.insert(fqdn.to_string(), Entry::Addrs(vec![pe(*host)]));
    }
    let d = dns(r).await;
    let targets: Vec<(&str, &str, &str)> = names.iter().map(|(n, f, s, ..)| (*n, *f, *s)).collect();
    let rep = round(
        config(&yaml(&targets, l.port, &[("system", d.addr())], "2s")),
        trust(&ca),
    )
    .await;
    for (name, _, _, _, _, ok) in &names {
        let t = target(&rep, name);
        if *ok {
            assert_eq!(t.reach, Reach::Ok, "{name}: {t:#?}");
        } else {
            assert_eq!(t.reach, Reach::Rejected, "{name}: {t:#?}");
            assert_eq!(t.cause, Cause::HttpRejected, "{name}");
        }
    }
    // Key Vault reports the client address it saw.
    let seen = target(&rep, "kv-ok").connect[0]
        .keyvault_seen_addr
        .clone()
        .expect("addr= parsed");
    assert!(seen.parse::<IpAddr>().unwrap().is_loopback(), "{seen}");
    // The storage probe sends x-ms-version and reads the 401.
    assert_eq!(target(&rep, "st-ok").connect[0].http_status, Some(401));
}

/// A listener whose accept queue is full: further SYNs are dropped by the
/// kernel, so a connect times out just as it does behind a dropping NSG.
async fn blackhole(host: u8) -> (SocketAddr, TcpListener, Vec<TcpStream>) {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(pe(host), 0)).unwrap();
    let listener = sock.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    for _ in 0..16 {
        match tokio::time::timeout(Duration::from_millis(150), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => held.push(s),
            _ => break,
        }
    }
    (addr, listener, held)
}

#[tokio::test]
async fn refused_and_dropped_connections() {
    let (hole, _listener, _held) = blackhole(51).await;
    // A free port on another address: nothing listens there, so TCP is refused.
    let closed = {
        let l = std::net::TcpListener::bind(SocketAddr::new(pe(52), hole.port())).unwrap();
        drop(l);
        hole.port()
    };
    assert_eq!(closed, hole.port());
    let mut r = Records::new();
    chain(
        &mut r,
        "dropped.azurecr.io",
        "dropped.privatelink.azurecr.io",
        &[pe(51)],
    );
    chain(&mut r, "stale.azurecr.io", "stale.privatelink.azurecr.io", &[pe(52)]);
    let d = dns(r).await;
    let y = yaml(
        &[
            ("dropped", "dropped.azurecr.io", "acr"),
            ("stale", "stale.azurecr.io", "acr"),
        ],
        hole.port(),
        &[("system", d.addr())],
        "700ms",
    );
    let ca = Ca::new("unused").unwrap();
    let start = Instant::now();
    let rep = round(config(&y), trust(&ca)).await;
    let took = start.elapsed();
    let dropped = target(&rep, "dropped");
    assert_eq!(dropped.reach, Reach::Timeout, "{dropped:#?}");
    assert_eq!(dropped.cause, Cause::EndpointBlocked);
    let stale = target(&rep, "stale");
    assert_eq!(stale.reach, Reach::Refused);
    assert_eq!(stale.cause, Cause::EndpointStale);
    assert!(
        took < Duration::from_millis(2000),
        "a dropped connect costs one phase timeout: {took:?}"
    );
}

#[tokio::test]
async fn stalled_tls_and_http_are_bounded() {
    // Accepts TCP and never speaks.
    let mute = TcpListener::bind(SocketAddr::new(pe(61), 0)).await.unwrap();
    let port = mute.local_addr().unwrap().port();
    let mute_task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = mute.accept().await {
            held.push(s);
        }
    });
    let mut r = Records::new();
    r.insert("mute.azurecr.io".into(), Entry::Addrs(vec![pe(61)]));
    let d = dns(r).await;
    let ca = Ca::new("unused").unwrap();
    let y = yaml(
        &[("mute", "mute.azurecr.io", "acr")],
        port,
        &[("system", d.addr())],
        "500ms",
    );
    let start = Instant::now();
    let rep = round(config(&y), trust(&ca)).await;
    let t = &rep.targets[0];
    assert_eq!(t.connect[0].tls, Some(TlsOutcome::Timeout));
    assert_eq!(t.cause, Cause::TlsMismatch);
    assert!(start.elapsed() < Duration::from_millis(1500), "{:?}", start.elapsed());
    mute_task.abort();
}

#[tokio::test]
async fn every_dns_cause_through_two_resolvers() {
    let ca = Ca::new("test CA").unwrap();
    let l = lab(vec![
        (
            pe(71),
            vec!["*.azurecr.io"],
            Reply::acr_challenge("x.azurecr.io"),
            &ca,
            Validity::Current,
        ),
        (
            IpAddr::from([127, 0, 200, 71]),
            vec!["*.azurecr.io"],
            Reply::acr_denied(),
            &ca,
            Validity::Current,
        ),
    ])
    .await;
    let public = IpAddr::from([127, 0, 200, 71]);
    let mut azure = Records::new();
    let mut custom = Records::new();
    for r in [&mut azure, &mut custom] {
        chain(r, "healthy.azurecr.io", "healthy.privatelink.azurecr.io", &[pe(71)]);
        chain(r, "unlinked.azurecr.io", "unlinked.privatelink.azurecr.io", &[]);
        chain(
            r,
            "unlinked.privatelink.azurecr.io",
            "unlinked.cloudapp.example",
            &[public],
        );
        chain(r, "missing.azurecr.io", "missing.privatelink.azurecr.io", &[]);
        r.insert("nope.azurecr.io".into(), Entry::Addrs(vec![public]));
        chain(r, "mixed.azurecr.io", "mixed.privatelink.azurecr.io", &[pe(71), public]);
        chain(r, "stalepe.azurecr.io", "stalepe.privatelink.azurecr.io", &[pe(71)]);
        r.insert("broken.azurecr.io".into(), Entry::ServFail);
    }
    // The custom DNS server does not forward the zone for "fwd", and never
    // answers for "silent".
    chain(&mut azure, "fwd.azurecr.io", "fwd.privatelink.azurecr.io", &[pe(71)]);
    chain(&mut custom, "fwd.azurecr.io", "fwd.privatelink.azurecr.io", &[]);
    chain(
        &mut custom,
        "fwd.privatelink.azurecr.io",
        "fwd.cloudapp.example",
        &[public],
    );
    chain(
        &mut azure,
        "silent.azurecr.io",
        "silent.privatelink.azurecr.io",
        &[pe(71)],
    );
    custom.insert("silent.azurecr.io".into(), Entry::Drop);
    let azure = dns(azure).await;
    let custom = dns(custom).await;

    let names = [
        "healthy", "unlinked", "missing", "nope", "mixed", "stalepe", "broken", "fwd", "silent",
    ];
    let targets: Vec<(String, String)> = names
        .iter()
        .map(|n| (n.to_string(), format!("{n}.azurecr.io")))
        .collect();
    let target_refs: Vec<(&str, &str, &str)> = targets.iter().map(|(n, f)| (n.as_str(), f.as_str(), "acr")).collect();
    let mut y = yaml(
        &target_refs,
        l.port,
        &[("system", custom.addr()), ("azure", azure.addr())],
        "600ms",
    );
    // `stalepe` has an expected NIC address other than the one DNS returns.
    y = y.replace(
        "  - name: stalepe\n    fqdn: stalepe.azurecr.io\n    service: acr\n",
        "  - name: stalepe\n    fqdn: stalepe.azurecr.io\n    service: acr\n    expected_ips: [127.0.10.99]\n",
    );
    let rep = round(config(&y), trust(&ca)).await;

    let want = [
        ("healthy", Cause::None),
        ("unlinked", Cause::ZoneNotLinked),
        ("missing", Cause::RecordMissing),
        ("nope", Cause::NoPrivateEndpoint),
        ("mixed", Cause::MixedAnswers),
        ("stalepe", Cause::UnexpectedIp),
        ("broken", Cause::DnsError),
        ("fwd", Cause::DnsPathNotForwarding),
        ("silent", Cause::DnsUnreachable),
    ];
    for (name, cause) in want {
        let t = target(&rep, name);
        assert_eq!(t.cause, cause, "{name}: {:#?}", t);
        assert_eq!(t.healthy, cause == Cause::None, "{name}");
        assert_eq!(t.diagnosis.is_some(), cause != Cause::None, "{name}");
    }
    let fwd = target(&rep, "fwd");
    assert_eq!(fwd.dns[0].verdict, DnsVerdict::Public);
    assert_eq!(fwd.dns[1].verdict, DnsVerdict::Private);
    assert!(fwd.dns.iter().all(|d| d.privatelink));
    assert_eq!(target(&rep, "silent").dns[0].verdict, DnsVerdict::Timeout);
    // Reachability follows the connect_via resolver (system): for "unlinked"
    // it reached the public front end, which refused the client.
    assert_eq!(target(&rep, "unlinked").reach, Reach::Rejected);
    assert_eq!(target(&rep, "missing").reach, Reach::Skipped);
    assert!(!rep.healthy);
    assert_eq!(rep.summary.unhealthy, 8);
}

#[tokio::test]
async fn a_round_takes_about_its_slowest_target_not_the_sum() {
    let mut r = Records::new();
    let n = 40;
    for i in 0..n {
        r.insert(format!("t{i}.azurecr.io"), Entry::Drop);
    }
    let d = dns(r).await;
    let names: Vec<(String, String)> = (0..n).map(|i| (format!("t{i}"), format!("t{i}.azurecr.io"))).collect();
    let refs: Vec<(&str, &str, &str)> = names.iter().map(|(a, b)| (a.as_str(), b.as_str(), "acr")).collect();
    let ca = Ca::new("unused").unwrap();
    let mut y = yaml(&refs, 443, &[("system", d.addr())], "300ms");
    y.push_str("concurrency: 64\n");
    let start = Instant::now();
    let rep = round(config(&y), trust(&ca)).await;
    let took = start.elapsed();
    assert_eq!(rep.targets.len(), n);
    assert!(rep.targets.iter().all(|t| t.cause == Cause::DnsUnreachable));
    // Serially this would be 40 x 300 ms = 12 s.
    assert!(took < Duration::from_secs(2), "{took:?}");
}

/// With the pod DNS path dead, reachability is tried through Azure DNS's
/// answer, so a stale endpoint behind it is named in the same round; a
/// REFUSED pod path is a DNS error, not a forwarding problem.
#[tokio::test]
async fn one_failure_does_not_hide_another() {
    let ca = Ca::new("test CA").unwrap();
    let l = lab(vec![(
        pe(81),
        vec!["*.azurecr.io"],
        Reply::acr_challenge("x.azurecr.io"),
        &ca,
        Validity::Current,
    )])
    .await;
    let mut azure = Records::new();
    // Nothing listens on pe(82): the private endpoint is gone.
    chain(
        &mut azure,
        "deadpath.azurecr.io",
        "deadpath.privatelink.azurecr.io",
        &[pe(82)],
    );
    chain(
        &mut azure,
        "refusedpath.azurecr.io",
        "refusedpath.privatelink.azurecr.io",
        &[pe(81)],
    );
    let mut custom = Records::new();
    custom.insert("deadpath.azurecr.io".into(), Entry::Drop);
    custom.insert("refusedpath.azurecr.io".into(), Entry::Refused);
    let azure = dns(azure).await;
    let custom = dns(custom).await;
    let y = yaml(
        &[
            ("deadpath", "deadpath.azurecr.io", "acr"),
            ("refusedpath", "refusedpath.azurecr.io", "acr"),
        ],
        l.port,
        &[("system", custom.addr()), ("azure", azure.addr())],
        "400ms",
    );
    let rep = round(config(&y), trust(&ca)).await;

    let dead = target(&rep, "deadpath");
    let codes: Vec<Cause> = dead.causes.iter().map(|c| c.cause).collect();
    assert_eq!(codes, vec![Cause::DnsUnreachable, Cause::EndpointStale], "{dead:#?}");
    assert_eq!(dead.cause, Cause::DnsUnreachable);
    assert_eq!(dead.connect_resolver.as_deref(), Some("azure"));
    assert_eq!(dead.reach, Reach::Refused);
    assert_eq!(dead.connect[0].address, pe(82));
    let port = custom.addr().port().to_string();
    assert!(
        dead.causes[0].diagnosis.contains(&format!("port {port}")),
        "{}",
        dead.causes[0].diagnosis
    );

    let refused = target(&rep, "refusedpath");
    assert_eq!(refused.cause, Cause::DnsError, "{refused:#?}");
    assert_eq!(refused.causes.len(), 1, "{refused:#?}");
    let text = refused.diagnosis.as_deref().unwrap();
    assert!(
        text.contains("REFUSED") && text.contains(&custom.addr().to_string()),
        "{text}"
    );
    assert!(!text.contains("168.63.129.16"), "{text}");
    // Reach still checked through Azure DNS's answer: the endpoint is fine.
    assert_eq!(refused.connect_resolver.as_deref(), Some("azure"));
    assert_eq!(refused.reach, Reach::Ok);

    // The JSON document carries both.
    let json: serde_json::Value = serde_json::from_str(&netprobe::render::json::render(&rep)).unwrap();
    let t = &json["targets"][0];
    assert_eq!(t["connect_resolver"], "azure");
    assert_eq!(t["causes"][1]["cause"], "endpoint_stale");
    assert_eq!(json["resolvers"][0]["name"], "system");
}

/// The queries a round sends, counted by the servers themselves: exactly A
/// and AAAA per target and resolver when healthy, and a bounded, small number
/// when the privatelink name has no address (the flood of issue 11); and one
/// TCP 53 check per resolver and round, not per target.
#[tokio::test]
async fn a_round_sends_a_bounded_number_of_queries() {
    use netprobe::probe::dns::MAX_QUERIES_PER_LOOKUP;
    let n = 20;
    let names: Vec<(String, String)> = (0..n)
        .map(|i| (format!("t{i}"), format!("kv{i}.vault.azure.net")))
        .collect();
    let refs: Vec<(&str, &str, &str)> = names
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str(), "keyvault"))
        .collect();
    for (shape, per_lookup) in [("healthy", 2), ("nodata after the CNAME", 4)] {
        let mut r = Records::new();
        for (i, (_, fqdn)) in names.iter().enumerate() {
            let pl = format!("kv{i}.privatelink.vaultcore.azure.net");
            if shape == "healthy" {
                chain(&mut r, fqdn, &pl, &[pe(90)]);
            } else {
                chain(&mut r, fqdn, &pl, &[]);
                r.insert(pl, Entry::Addrs(vec![]));
            }
        }
        let a = dns(r.clone()).await;
        let b = dns(r).await;
        let y = yaml(&refs, 9, &[("system", a.addr()), ("azure", b.addr())], "1s");
        let rep = round(config(&y), trust(&Ca::new("unused").unwrap())).await;
        for (server, res) in [(&a, &rep.resolvers[0]), (&b, &rep.resolvers[1])] {
            let got = server.queries();
            // Plus the round's one TCP 53 check of the resolver (no zone's
            // SOA: neither server is Azure DNS).
            assert!(got <= (n * MAX_QUERIES_PER_LOOKUP + 1) as u64, "{shape}: {got}");
            assert_eq!(got, (n * per_lookup + 1) as u64, "{shape}: {} received {got}", res.name);
            assert_eq!(res.check_queries, 1, "{shape}: {res:?}");
            assert_eq!(
                res.queries + res.check_queries,
                got,
                "{shape}: the report counts what the server received"
            );
            assert!(res.tcp.as_ref().is_some_and(|t| t.ok), "{shape}: {res:?}");
            assert!(res.up, "{shape}: {res:?}");
        }
        if shape != "healthy" {
            assert!(rep.targets.iter().all(|t| t.cause == Cause::RecordMissing), "{shape}");
        }
    }
}

/// TLS failures are told in words, never as a library's debug print (a CA
/// certificate presented as the server's own used to read
/// `Other(OtherError(CaUsedAsEndEntity))`).
#[tokio::test]
async fn tls_failure_details_are_readable() {
    let ca = Ca::new("test CA").unwrap();
    let leaf = ca.ca_marked_leaf(&["caleaf.azurecr.io"]).unwrap();
    let (port, mut listeners) = bind_same_port(&[pe(85)]).await.unwrap();
    let _server = HttpsServer::serve(listeners.remove(0), &leaf, Reply::acr_challenge("caleaf.azurecr.io")).unwrap();
    let mut r = Records::new();
    chain(&mut r, "caleaf.azurecr.io", "caleaf.privatelink.azurecr.io", &[pe(85)]);
    let d = dns(r).await;
    let y = yaml(
        &[("caleaf", "caleaf.azurecr.io", "acr")],
        port,
        &[("system", d.addr())],
        "1s",
    );
    let rep = round(config(&y), trust(&ca)).await;
    let t = target(&rep, "caleaf");
    assert_eq!(t.cause, Cause::TlsMismatch, "{t:#?}");
    let detail = t.connect[0].detail.clone().unwrap();
    assert!(detail.contains("ca used as end entity"), "{detail}");
    netprobe_testkit::assert_readable(&detail);
    netprobe_testkit::assert_readable(t.diagnosis.as_deref().unwrap());
}

/// 100 agents started together (a rollout): where their rounds start over
/// the next rounds, with the agent's own pacing (`agent::next_delay`) and
/// with a plain ±10% jitter for comparison. Prints the per-second
/// distribution; fails if any second of the steady state holds more than
/// 3× the even share of round starts.
#[test]
fn a_fleet_started_together_spreads_its_rounds_over_the_interval() {
    use rand::{RngExt, SeedableRng};
    use std::time::Duration;
    const AGENTS: usize = 100;
    const INTERVAL: f64 = 30.0;
    const ROUNDS: u64 = 20;
    let simulate = |pacing: &dyn Fn(u64, f64) -> f64| {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut starts = Vec::new();
        for _ in 0..AGENTS {
            let mut t = 0.0;
            for r in 0..ROUNDS {
                starts.push(t);
                t += pacing(r, rng.random::<f64>());
            }
        }
        // Per second, from the end of the second interval (steady state)
        // over ten intervals.
        let from = 2.0 * INTERVAL;
        let mut per_second = vec![0usize; (10.0 * INTERVAL) as usize];
        for s in starts {
            let i = (s - from).floor();
            if i >= 0.0 && (i as usize) < per_second.len() {
                per_second[i as usize] += 1;
            }
        }
        per_second
    };
    let interval = Duration::from_secs_f64(INTERVAL);
    let ours = simulate(&|r, u| netprobe::agent::next_delay(interval, r, u).as_secs_f64());
    let plain = simulate(&|_, u| INTERVAL * (0.9 + 0.2 * u));
    let even = AGENTS as f64 / INTERVAL;
    let max = |v: &[usize]| *v.iter().max().unwrap();
    let busiest_share = |v: &[usize]| max(v) as f64 / even;
    println!(
        "round starts per second, 100 agents started together, interval 30 s (even share {even:.1}/s):\n  \
         netprobe pacing: busiest second {} ({:.1}x even), empty seconds {}\n  \
         plain ±10% jitter: busiest second {} ({:.1}x even), empty seconds {}",
        max(&ours),
        busiest_share(&ours),
        ours.iter().filter(|n| **n == 0).count(),
        max(&plain),
        busiest_share(&plain),
        plain.iter().filter(|n| **n == 0).count(),
    );
    assert!(
        busiest_share(&ours) <= 3.0,
        "rounds bunch up: {} starts in one second (even share {even:.1})",
        max(&ours)
    );
    assert!(
        busiest_share(&plain) > busiest_share(&ours),
        "the comparison shows nothing"
    );
}
