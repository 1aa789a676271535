//! Hostile endpoints and DNS servers, each a real server on loopback: every
//! case ends in a defined verdict, within its phase deadline, without panic.
//! Also the agent's own surface under many slow clients.

mod common;

use netprobe_sim::private_ip as pe;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use netprobe::agent::{AgentOptions, run_until};
use netprobe::config::Config;
use netprobe::model::{Cause, DnsVerdict, Reach, TlsOutcome};
use netprobe_sim::dns::{Entry, Records};
use netprobe_sim::pki::{Ca, Validity};
use rustls::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use common::{config, dns, round, target, trust, yaml};

/// What a raw TLS server does once the handshake is done.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Sends the status line, then one header byte every 200 ms, forever.
    TrickleHeaders,
    /// Complete headers, then a chunked body that never ends.
    EndlessBody,
    /// Claims and sends a 100 MB body.
    HugeBody,
    /// 301 to itself.
    RedirectLoop,
    /// Resets the connection right after the handshake.
    ResetAfterHandshake,
}

async fn raw_tls_server(ca: &Ca, ip: IpAddr, name: &str, behaviour: Behaviour) -> SocketAddr {
    let leaf = ca.leaf(&[name], Validity::Current).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(leaf.chain.clone(), leaf.clone_key())
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(cfg));
    let listener = TcpListener::bind(SocketAddr::new(ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Behaviour::ResetAfterHandshake = behaviour {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let (tcp, _) = tls.into_inner();
                    let _ = tcp.set_zero_linger();
                    drop(tcp);
                    return;
                }
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = [0u8; 2048];
                let _ = tls.read(&mut buf).await;
                match behaviour {
                    Behaviour::TrickleHeaders => {
                        let _ = tls.write_all(b"HTTP/1.1 200 OK\r\n").await;
                        loop {
                            if tls.write_all(b"X").await.is_err() {
                                return;
                            }
                            let _ = tls.flush().await;
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                    Behaviour::EndlessBody => {
                        let _ = tls
                            .write_all(b"HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Bearer realm=\"x\"\r\ntransfer-encoding: chunked\r\n\r\n")
                            .await;
                        loop {
                            if tls.write_all(b"4\r\nmore\r\n").await.is_err() {
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                    Behaviour::HugeBody => {
                        let _ = tls
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100000000\r\n\r\n")
                            .await;
                        let chunk = vec![b'a'; 64 * 1024];
                        for _ in 0..1600 {
                            if tls.write_all(&chunk).await.is_err() {
                                return;
                            }
                        }
                    }
                    Behaviour::RedirectLoop => {
                        let _ = tls
                            .write_all(b"HTTP/1.1 301 Moved Permanently\r\nlocation: /v2/\r\ncontent-length: 0\r\n\r\n")
                            .await;
                    }
                    Behaviour::ResetAfterHandshake => unreachable!(),
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_endpoints_end_in_defined_verdicts_within_their_deadlines() {
    let ca = Ca::new("hostile CA").unwrap();
    let cases = [
        ("trickle", Behaviour::TrickleHeaders, 131u8),
        ("endless", Behaviour::EndlessBody, 132),
        ("huge", Behaviour::HugeBody, 133),
        ("redirect", Behaviour::RedirectLoop, 134),
        ("reset", Behaviour::ResetAfterHandshake, 135),
    ];
    let mut r = Records::new();
    let mut ports = Vec::new();
    for (name, behaviour, host) in cases {
        let fqdn = format!("{name}.azurecr.io");
        let addr = raw_tls_server(&ca, pe(host), &fqdn, behaviour).await;
        ports.push(addr.port());
        r.insert(fqdn, Entry::Addrs(vec![pe(host)]));
    }
    let d = dns(r).await;
    let mut y = "timeout: 800ms\nresolvers:\n  - name: system\n    servers: [\"".to_string()
        + &d.addr().to_string()
        + "\"]\nprivate_ranges: [127.0.10.0/24]\ntargets:\n";
    for ((name, _, _), port) in cases.iter().zip(&ports) {
        y.push_str(&format!(
            "  - {{fqdn: {name}.azurecr.io, name: {name}, service: acr, port: {port}}}\n"
        ));
    }
    let start = Instant::now();
    let rep = round(config(&y), trust(&ca)).await;
    let took = start.elapsed();
    // Phases run one after another per address; the slowest case costs at
    // most TCP + TLS + HTTP deadlines, and cases run concurrently.
    assert!(took < Duration::from_millis(2500), "{took:?}");

    let trickle = target(&rep, "trickle");
    assert_eq!(trickle.reach, Reach::HttpError, "{trickle:#?}");
    assert_eq!(trickle.cause, Cause::HttpRejected);
    // The endless body is cut at the deadline; the 401 challenge was already complete.
    let endless = target(&rep, "endless");
    assert_eq!(endless.reach, Reach::Ok, "{endless:#?}");
    assert_eq!(endless.connect[0].http_status, Some(401));
    let huge = target(&rep, "huge");
    assert_eq!(huge.connect[0].http_status, Some(200));
    assert_eq!(huge.reach, Reach::Ok, "200 from /v2/ is an anonymous-pull registry");
    assert!(huge.connect[0].http_time.unwrap() < Duration::from_millis(800 + 100));
    let redirect = target(&rep, "redirect");
    assert_eq!(redirect.reach, Reach::HttpError, "redirects are judged, never followed");
    assert_eq!(redirect.connect[0].http_status, Some(301));
    let reset = target(&rep, "reset");
    assert_eq!(reset.reach, Reach::HttpError, "{reset:#?}");
    assert_eq!(reset.connect[0].tls, Some(TlsOutcome::Ok));
}

/// A DNS server that answers correctly, but only after `delay`.
async fn late_dns(delay: Duration) -> SocketAddr {
    common::udp_dns(move |sock, peer, req| async move {
        tokio::time::sleep(delay).await;
        let _ = sock
            .send_to(&common::a_response(&req, &[[10, 0, 0, 1]]).to_vec().unwrap(), peer)
            .await;
    })
    .await
}

#[tokio::test]
async fn a_dns_answer_after_the_timeout_is_a_timeout() {
    let server = late_dns(Duration::from_millis(700)).await;
    let start = Instant::now();
    let obs = netprobe::probe::dns::lookup(
        "late",
        "reg01.azurecr.io",
        &[server],
        Duration::from_millis(300),
        &netprobe::probe::dns::QueryRate::per_resolver(),
    )
    .await;
    assert_eq!(obs.outcome, netprobe::observation::DnsOutcome::Timeout);
    assert!(start.elapsed() < Duration::from_millis(600), "{:?}", start.elapsed());
    assert_eq!(obs.queries, 4, "A and AAAA, each retransmitted once: {obs:?}");
}

#[tokio::test]
async fn odd_but_legal_names_are_handled() {
    // Underscores and digits-only labels are legal in DNS, though not in host names.
    let mut r = Records::new();
    r.insert(
        "_svc.123.example.net".into(),
        Entry::Cname("x_1.privatelink.example.net".into()),
    );
    r.insert("x_1.privatelink.example.net".into(), Entry::Addrs(vec![pe(140)]));
    let d = dns(r).await;
    // Something listens, so the TLS phase runs.
    let listener = TcpListener::bind(SocketAddr::new(pe(140), 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let y = yaml(
        &[("odd", "_svc.123.example.net", "custom")],
        port,
        &[("system", d.addr())],
        "500ms",
    );
    let ca = Ca::new("unused").unwrap();
    let rep = round(config(&y), trust(&ca)).await;
    let t = target(&rep, "odd");
    assert_eq!(t.dns[0].verdict, DnsVerdict::Private);
    assert!(t.dns[0].privatelink);
    // `_` is not valid in a TLS server name: a defined TLS failure, not a panic.
    assert_eq!(t.reach, Reach::TlsError, "{t:#?}");
    drop(listener);
}

/// An agent over one target on a closed port (every round ends fast), its
/// config file in a temporary folder; (address, stop, task, the folder and
/// the DNS server to keep alive).
async fn agent_over_a_closed_port(
    last_octet: u8,
    interval: &str,
    reload: bool,
) -> (
    SocketAddr,
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<Result<(), netprobe::agent::AgentError>>,
    (tempfile::TempDir, netprobe_sim::dns::DnsServer),
) {
    let mut r = Records::new();
    r.insert("reg01.azurecr.io".into(), Entry::Addrs(vec![pe(last_octet)]));
    let d = dns(r).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("netprobe.yaml");
    std::fs::write(
        &path,
        format!(
            "interval: {interval}\ntimeout: 300ms\nresolvers:\n  - name: system\n    servers: [\"{}\"]\nprivate_ranges: [127.0.10.0/24]\ntargets:\n  - {{fqdn: reg01.azurecr.io, name: reg01, port: 9}}\n",
            d.addr()
        ),
    )
    .unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let (tx, bound) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(run_until(
        Config::load(&path).unwrap(),
        AgentOptions {
            config_path: reload.then(|| path.clone()),
            listen_override: Some("127.0.0.1:0".parse().unwrap()),
            on_listen: Some(tx),
            cluster: Default::default(),
            min_interval: Duration::ZERO,
            node_condition: false,
        },
        rx,
    ));
    (bound.await.unwrap(), stop, task, (dir, d))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_do_not_delay_rounds_and_are_cut_off() {
    let (addr, stop, task, _keep) = agent_over_a_closed_port(150, "100ms", true).await;
    let rounds = |text: &str| -> f64 {
        text.lines()
            .find_map(|l| {
                l.strip_prefix("netprobe_rounds_total ")
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0.0)
    };
    let scrape = async || -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out).await;
        out
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rounds(&scrape().await);
    // 150 clients that connect and send nothing (more than the 64 served at once).
    let mut idle = Vec::new();
    for _ in 0..150 {
        idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // A served idle client is cut off by the header-read timeout (5 s).
    let mut first = idle.remove(0);
    let mut buf = [0u8; 64];
    let cut = tokio::time::timeout(Duration::from_secs(8), first.read(&mut buf)).await;
    assert!(
        matches!(cut, Ok(Ok(_)) | Ok(Err(_))),
        "an idle client was never cut off"
    );
    drop(idle);
    let after = rounds(&scrape().await);
    // Paths and methods outside the API.
    for (req, want) in [
        (
            "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            "405",
        ),
        ("DELETE /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "405"),
        (
            "GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            "404",
        ),
    ] {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out).await;
        assert!(out.starts_with(&format!("HTTP/1.1 {want}")), "{req:?} -> {out}");
    }

    // Rounds went on at ~10/s for the whole time: at least 30 more.
    assert!(after >= before + 30.0, "rounds {before} -> {after}");
    stop.send(true).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
}

/// A server that ignores EDNS and answers over UDP with a datagram far larger
/// than any client buffer, and properly over TCP.
async fn oversized_dns() -> SocketAddr {
    use hickory_resolver::proto::op::Message;
    use hickory_resolver::proto::rr::rdata::A;
    use hickory_resolver::proto::rr::{RData, Record};
    fn answer(req: &Message) -> Vec<u8> {
        let mut resp = Message::response(req.metadata.id, req.metadata.op_code);
        resp.add_query(req.queries[0].clone());
        if req.queries[0].query_type() == hickory_resolver::proto::rr::RecordType::A {
            for i in 0..400u16 {
                let ip = [10, 20, (i / 250) as u8, (i % 250) as u8 + 1];
                resp.add_answer(Record::from_rdata(
                    req.queries[0].name().clone(),
                    60,
                    RData::A(A(ip.into())),
                ));
            }
        }
        resp.to_vec().unwrap()
    }
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let udp = tokio::net::UdpSocket::bind(addr).await.unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        loop {
            let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
                return;
            };
            let Ok(req) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            // Over 6 KiB for A queries: larger than any client buffer.
            let _ = udp.send_to(&answer(&req), peer).await;
        }
    });
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = tcp.accept().await else { return };
            tokio::spawn(async move {
                let mut len = [0u8; 2];
                if s.read_exact(&mut len).await.is_err() {
                    return;
                }
                let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
                if s.read_exact(&mut q).await.is_err() {
                    return;
                }
                let Ok(req) = Message::from_vec(&q) else { return };
                let bytes = answer(&req);
                let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&bytes);
                let _ = s.write_all(&framed).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn an_oversized_udp_answer_is_fetched_over_tcp() {
    let server = oversized_dns().await;
    let start = Instant::now();
    let obs = netprobe::probe::dns::lookup(
        "big",
        "reg01.azurecr.io",
        &[server],
        Duration::from_secs(2),
        &netprobe::probe::dns::QueryRate::per_resolver(),
    )
    .await;
    assert!(obs.tcp_fallback, "{obs:?}");
    assert_eq!(
        obs.queries, 3,
        "A and AAAA over UDP, then the oversized A over TCP: {obs:?}"
    );
    match obs.outcome {
        // Thousands of addresses fit in one TCP answer: a fixed number is
        // kept (and copied into reports, pages, diagnoses and logs), the
        // rest counted.
        netprobe::observation::DnsOutcome::Answer(a) => assert_eq!(
            (a.addresses.len(), a.omitted),
            (
                netprobe::observation::MAX_ADDRESSES_KEPT,
                400 - netprobe::observation::MAX_ADDRESSES_KEPT
            )
        ),
        other => panic!("{other:?}"),
    }
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "no waiting for a timeout: {:?}",
        start.elapsed()
    );
}

/// Opens `n` connections from `from` (a loopback address of its own) that
/// send nothing, and keeps them.
async fn idle_clients(from: std::net::Ipv4Addr, to: SocketAddr, n: usize) -> Vec<tokio::net::TcpStream> {
    let mut held = Vec::new();
    for _ in 0..n {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(SocketAddr::from((from, 0))).unwrap();
        if let Ok(s) = sock.connect(to).await {
            held.push(s);
        }
    }
    held
}

/// On the runtime the product runs (one thread): one client that opens
/// every connection it can and sends nothing cannot take the port from
/// kubelet and Prometheus (at most 8 connections per source address); and
/// many such clients, from many addresses, filling every slot still leave
/// `/healthz` answered (a reserve that serves only the health checks).
#[tokio::test(flavor = "current_thread")]
async fn one_client_cannot_take_the_port_from_kubelet_and_prometheus() {
    let (addr, stop, task, _keep) = agent_over_a_closed_port(151, "200ms", false).await;
    tokio::time::sleep(Duration::from_millis(400)).await;

    // One neighbour, 127.0.0.2, opens 100 connections and holds them.
    let one = idle_clients([127, 0, 0, 2].into(), addr, 100).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (code, body) = netprobe_testkit::http_get(addr, "/healthz").await;
    assert_eq!((code, body.as_str()), (200, "ok\n"));
    let (code, body) = netprobe_testkit::http_get(addr, "/metrics").await;
    assert_eq!(code, 200);
    assert!(body.contains("netprobe_rounds_total"), "{body}");

    // Ten more neighbours (8 each: 88 with the first, over the 64 slots and
    // the reserve): a health check gets through within kubelet's retries.
    let mut many = Vec::new();
    for i in 3..13u8 {
        many.push(idle_clients([127, 0, 0, i].into(), addr, 8).await);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(4);
    let health = loop {
        let (code, _) = netprobe_testkit::http_get(addr, "/healthz").await;
        if code == 200 || std::time::Instant::now() > deadline {
            break code;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(health, 200, "kubelet's probe starved by idle clients");
    drop((one, many));
    stop.send(true).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
}
