//! A small recursive-looking DNS server for the simulated VNet and tests.
//!
//! It answers the way Azure DNS (or a customer's DNS server) does from a
//! VNet's point of view: it follows CNAMEs across zones and returns the whole
//! chain with the final addresses. Each name can also be set to misbehave
//! (SERVFAIL, REFUSED, silence), and records can be changed while it runs.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, AAAA, CNAME, SOA};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

/// How many CNAMEs the server follows before it stops and returns what it has.
const SERVER_FOLLOW_LIMIT: usize = 40;
/// Classic UDP limit when the client does not advertise EDNS.
const PLAIN_UDP_LIMIT: usize = 512;

/// What the server holds for one name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Cname(String),
    /// A CNAME the server does not chase: the answer ends with it, as from
    /// an authoritative server whose target lies in a zone it does not serve.
    CnameStop(String),
    Addrs(Vec<IpAddr>),
    /// The name exists without A/AAAA records: NODATA with the zone's SOA in
    /// the authority section, as Azure DNS and recursive resolvers answer it
    /// (`Addrs(vec![])` answers NODATA without one).
    Empty,
    ServFail,
    Refused,
    /// Never answer (the client times out).
    Drop,
}

/// Records keyed by lower-case name without the trailing dot.
pub type Records = HashMap<String, Entry>;

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// A running server on `127.0.0.1:<port>`, UDP and TCP on the same port.
/// Stops when dropped.
pub struct DnsServer {
    addr: SocketAddr,
    records: Arc<RwLock<Records>>,
    /// Queries received (UDP datagrams and TCP messages), answered or not.
    received: Arc<AtomicU64>,
    /// Added before every answer, in microseconds (a far-away server).
    delay_us: Arc<AtomicU64>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl DnsServer {
    /// Starts a server with `records` on 127.0.0.1 and a free port.
    pub async fn start(records: Records) -> std::io::Result<DnsServer> {
        Self::start_on("127.0.0.1".parse().expect("literal"), records).await
    }

    /// Starts a server on `ip` and a free port (the same port for UDP and TCP).
    pub async fn start_on(ip: IpAddr, records: Records) -> std::io::Result<DnsServer> {
        let records: Records = records.into_iter().map(|(k, v)| (key(&k), v)).collect();
        let mut last_err = None;
        for _ in 0..20 {
            let udp = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
            let addr = udp.local_addr()?;
            match TcpListener::bind(addr).await {
                Ok(tcp) => {
                    let records = Arc::new(RwLock::new(records));
                    let received = Arc::new(AtomicU64::new(0));
                    let delay_us = Arc::new(AtomicU64::new(0));
                    let shared = Shared {
                        records: records.clone(),
                        received: received.clone(),
                        delay_us: delay_us.clone(),
                    };
                    let udp_task = tokio::spawn(serve_udp(Arc::new(udp), shared.clone()));
                    let tcp_task = tokio::spawn(serve_tcp(tcp, shared));
                    return Ok(DnsServer {
                        addr,
                        records,
                        received,
                        delay_us,
                        tasks: vec![udp_task, tcp_task],
                    });
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| std::io::Error::other("no free port")))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many queries the server has received so far, over UDP and TCP.
    pub fn queries(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Sets (or replaces) the entry for `name`.
    pub fn set(&self, name: &str, entry: Entry) {
        if let Ok(mut r) = self.records.write() {
            r.insert(key(name), entry);
        }
    }

    /// Delays every answer by `delay` from now on (answers overlap: a slow
    /// server, not a serialized one).
    pub fn set_delay(&self, delay: std::time::Duration) {
        self.delay_us.store(delay.as_micros() as u64, Ordering::Relaxed);
    }

    /// Removes `name` (it then answers NXDOMAIN).
    pub fn remove(&self, name: &str) {
        if let Ok(mut r) = self.records.write() {
            r.remove(&key(name));
        }
    }
}

/// What the UDP and TCP loops share.
#[derive(Clone)]
struct Shared {
    records: Arc<RwLock<Records>>,
    received: Arc<AtomicU64>,
    delay_us: Arc<AtomicU64>,
}

impl Shared {
    fn delay(&self) -> std::time::Duration {
        std::time::Duration::from_micros(self.delay_us.load(Ordering::Relaxed))
    }
}

async fn serve_udp(sock: Arc<UdpSocket>, shared: Shared) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        shared.received.fetch_add(1, Ordering::Relaxed);
        let Ok(req) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        let limit = req
            .edns
            .as_ref()
            .map(|e| e.max_payload() as usize)
            .unwrap_or(PLAIN_UDP_LIMIT)
            .max(PLAIN_UDP_LIMIT);
        let Some(resp) = respond(&shared.records, &req) else {
            continue;
        };
        let Ok(mut bytes) = resp.to_vec() else {
            continue;
        };
        if bytes.len() > limit {
            let mut cut = resp.truncate();
            cut.metadata.id = resp.metadata.id;
            let Ok(b) = cut.to_vec() else { continue };
            bytes = b;
        }
        let delay = shared.delay();
        if delay.is_zero() {
            let _ = sock.send_to(&bytes, peer).await;
        } else {
            let sock = sock.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = sock.send_to(&bytes, peer).await;
            });
        }
    }
}

async fn serve_tcp(listener: TcpListener, shared: Shared) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            loop {
                let mut len = [0u8; 2];
                if stream.read_exact(&mut len).await.is_err() {
                    return;
                }
                let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
                if stream.read_exact(&mut buf).await.is_err() {
                    return;
                }
                shared.received.fetch_add(1, Ordering::Relaxed);
                let Ok(req) = Message::from_vec(&buf) else {
                    return;
                };
                let Some(resp) = respond(&shared.records, &req) else {
                    continue;
                };
                tokio::time::sleep(shared.delay()).await;
                let Ok(bytes) = resp.to_vec() else { return };
                let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&bytes);
                if stream.write_all(&framed).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// A name from text; labels that are not valid host names (a hostile test's
/// `<script>`) are taken as raw bytes, as a misbehaving server would send them.
fn wire_name(text: &str) -> Option<Name> {
    let mut name = Name::from_ascii(format!("{text}."))
        .ok()
        .or_else(|| Name::from_labels(text.split('.').map(|l| l.as_bytes().to_vec())).ok())?;
    name.set_fqdn(true);
    Some(name)
}

/// Builds the response to `req`, or `None` to stay silent.
fn respond(records: &RwLock<Records>, req: &Message) -> Option<Message> {
    let query = req.queries.first()?.clone();
    let mut resp = Message::new(req.metadata.id, MessageType::Response, req.metadata.op_code);
    resp.metadata.recursion_desired = req.metadata.recursion_desired;
    resp.metadata.recursion_available = true;
    resp.add_query(query.clone());
    let records = records.read().ok()?;
    let mut name = key(&query.name().to_ascii());
    for _ in 0..SERVER_FOLLOW_LIMIT {
        match records.get(&name) {
            None => {
                resp.metadata.response_code = ResponseCode::NXDomain;
                return Some(resp);
            }
            Some(Entry::Drop) => return None,
            Some(Entry::ServFail) => {
                resp.answers.clear();
                resp.metadata.response_code = ResponseCode::ServFail;
                return Some(resp);
            }
            Some(Entry::Refused) => {
                resp.answers.clear();
                resp.metadata.response_code = ResponseCode::Refused;
                return Some(resp);
            }
            Some(Entry::Cname(target)) => {
                let (Some(from), Some(to)) = (wire_name(&name), wire_name(&key(target))) else {
                    resp.metadata.response_code = ResponseCode::ServFail;
                    return Some(resp);
                };
                resp.add_answer(Record::from_rdata(from, 60, RData::CNAME(CNAME(to))));
                name = key(target);
            }
            Some(Entry::CnameStop(target)) => {
                let (Some(from), Some(to)) = (wire_name(&name), wire_name(&key(target))) else {
                    resp.metadata.response_code = ResponseCode::ServFail;
                    return Some(resp);
                };
                resp.add_answer(Record::from_rdata(from, 60, RData::CNAME(CNAME(to))));
                return Some(resp);
            }
            Some(Entry::Empty) => {
                // The zone is taken to be the name without its first label.
                let zone = wire_name(name.split_once('.').map_or(name.as_str(), |x| x.1))?;
                let soa = SOA::new(zone.clone(), wire_name("hostmaster.sim")?, 1, 3600, 300, 86400, 10);
                resp.add_authority(Record::from_rdata(zone, 10, RData::SOA(soa)));
                return Some(resp);
            }
            Some(Entry::Addrs(ips)) => {
                let owner = wire_name(&name)?;
                for ip in ips {
                    let data = match (ip, query.query_type()) {
                        (IpAddr::V4(v4), RecordType::A) => RData::A(A(*v4)),
                        (IpAddr::V6(v6), RecordType::AAAA) => RData::AAAA(AAAA(*v6)),
                        _ => continue,
                    };
                    resp.add_answer(Record::from_rdata(owner.clone(), 10, data));
                }
                return Some(resp);
            }
        }
    }
    // Chain longer than the server follows: return what it has.
    Some(resp)
}
