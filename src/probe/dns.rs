//! DNS phase: ask a resolver's servers directly for A and AAAA of one name and
//! record rcode, the CNAME chain, the addresses and the time taken.
//!
//! Queries are sent as absolute names (no search list), with recursion desired
//! and EDNS(0); no cache is kept between lookups. UDP responses are matched on
//! source (connected socket), ID and question, so stray or spoofed packets are
//! ignored; a truncated response is retried over TCP.
//!
//! An agent on every node must never flood the DNS servers it watches: every
//! query a lookup sends (A, AAAA, retransmissions, TCP retries, other servers,
//! CNAME follow-ups) is paid from one [`Budget`] of
//! [`MAX_QUERIES_PER_LOOKUP`], and each name is asked at most once.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hickory_resolver::proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{Instant, timeout_at};

use crate::observation::{ChainProblem, DnsAnswer, DnsObservation, DnsOutcome, Rcode};

pub use crate::observation::MAX_CHAIN;
/// Most queries one lookup (one target through one resolver in one round) may
/// send, every datagram and TCP query counted. A healthy lookup sends 2 (A and
/// AAAA); a silent server costs 4 (one retransmission each), so three silent
/// servers in a resolv.conf cost 12; a truncated answer adds 2 over TCP; each
/// CNAME follow-up costs 2. A lookup that would exceed it ends as an error.
pub const MAX_QUERIES_PER_LOOKUP: u32 = 20;
/// EDNS UDP payload size advertised (the DNS flag day 2020 value).
const EDNS_PAYLOAD: u16 = 1232;
/// Largest UDP datagram read.
const UDP_BUFFER: usize = 4096;

/// The queries one lookup may still send. Every send goes through
/// [`Budget::spend`], so the bound holds whatever path a lookup takes.
#[derive(Debug)]
struct Budget {
    sent: AtomicU32,
}

impl Budget {
    fn new() -> Budget {
        Budget {
            sent: AtomicU32::new(0),
        }
    }

    /// Takes one query from the budget, or says that it is spent.
    fn spend(&self) -> Result<(), QueryError> {
        self.sent
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < MAX_QUERIES_PER_LOOKUP).then_some(n + 1)
            })
            .map(|_| ())
            .map_err(|_| QueryError::BudgetSpent)
    }

    fn sent(&self) -> u32 {
        self.sent.load(Ordering::Relaxed)
    }
}

/// Why one query did not produce a usable message.
#[derive(Debug)]
enum QueryError {
    Timeout,
    /// The lookup's query budget is spent; nothing was sent.
    BudgetSpent,
    /// Refused or no route: the server is not there.
    Unreachable(String),
    /// A UDP answer larger than the buffer (the server ignored EDNS).
    Oversized,
    Io(String),
}

/// Result of one query against one server.
struct Exchange {
    message: Message,
    tcp: bool,
}

/// Resolves `fqdn` through `servers` within `time`, trying the servers in
/// order. A server that times out, fails, or answers SERVFAIL/REFUSED yields
/// to the next one; the last server's result is reported. At most
/// [`MAX_QUERIES_PER_LOOKUP`] queries are sent in all.
pub async fn lookup(resolver: &str, fqdn: &str, servers: &[SocketAddr], time: Duration) -> DnsObservation {
    let start = Instant::now();
    let deadline = start + time;
    let budget = Budget::new();
    let mut last = (None, DnsOutcome::NoServers("no servers".into()), false);
    match absolute_name(fqdn) {
        Err(e) => last.1 = DnsOutcome::Failed(e),
        Ok(name) => {
            for (i, server) in servers.iter().enumerate() {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                let left = servers.len() - i;
                let share = (deadline - now) / left as u32;
                let server_deadline = now + share;
                let (outcome, tcp) = resolve_at(*server, fqdn, &name, server_deadline, &budget).await;
                let retry = match &outcome {
                    DnsOutcome::Answer(ans) => matches!(ans.rcode, Rcode::ServFail | Rcode::Refused),
                    DnsOutcome::Timeout
                    | DnsOutcome::Unreachable(_)
                    | DnsOutcome::Failed(_)
                    | DnsOutcome::NoServers(_) => true,
                };
                last = (Some(*server), outcome, tcp);
                if !retry || budget.sent() >= MAX_QUERIES_PER_LOOKUP {
                    break;
                }
            }
        }
    }
    DnsObservation {
        resolver: resolver.to_string(),
        server: last.0,
        outcome: last.1,
        duration: start.elapsed(),
        tcp_fallback: last.2,
        queries: budget.sent(),
    }
}

/// Asks one server for A and AAAA of `name`. When the answer ends in a CNAME
/// with nothing after it (an authoritative server that does not chase into
/// another zone, or drops the chased part when it does not fit), the chain's
/// last name is asked in turn, as a recursive resolver would. Each name is
/// asked at most once: an answer that makes no progress (no new CNAME, no
/// address) ends the lookup with what it says (NODATA, NXDOMAIN), and so does
/// a chain longer than [`MAX_CHAIN`] or a spent budget.
async fn resolve_at(
    server: SocketAddr,
    fqdn: &str,
    name: &Name,
    deadline: Instant,
    budget: &Budget,
) -> (DnsOutcome, bool) {
    let (mut outcome, mut tcp) = ask(server, fqdn, name, deadline, budget).await;
    let mut asked = vec![fqdn.trim_end_matches('.').to_ascii_lowercase()];
    while let DnsOutcome::Answer(ans) = &outcome {
        let dangling =
            ans.rcode == Rcode::NoError && ans.addresses.is_empty() && ans.chain_problem.is_none() && !ans.negative_soa;
        let Some(last) = ans.chain.last().filter(|_| dangling) else {
            break;
        };
        if asked.contains(last) || ans.chain.len() > MAX_CHAIN {
            break;
        }
        let Ok(next) = absolute_name(last) else { break };
        asked.push(last.clone());
        let (more, more_tcp) = ask(server, &asked[asked.len() - 1], &next, deadline, budget).await;
        tcp |= more_tcp;
        outcome = match (outcome, more) {
            (DnsOutcome::Answer(prefix), DnsOutcome::Answer(rest)) => DnsOutcome::Answer(extend(fqdn, prefix, rest)),
            (_, other) => other,
        };
    }
    (outcome, tcp)
}

/// Appends a follow-up answer to the chain so far; a name already in the chain
/// is a loop that only shows across follow-ups.
fn extend(fqdn: &str, mut prefix: DnsAnswer, rest: DnsAnswer) -> DnsAnswer {
    let mut seen: Vec<String> = vec![fqdn.trim_end_matches('.').to_ascii_lowercase()];
    seen.extend(prefix.chain.iter().cloned());
    let looped = rest.chain.iter().find(|n| seen.contains(n)).cloned();
    prefix.chain.extend(rest.chain);
    prefix.addresses = rest.addresses;
    prefix.rcode = rest.rcode;
    prefix.negative_soa = rest.negative_soa;
    prefix.chain_problem = match (looped, rest.chain_problem) {
        (Some(at), _) => Some(ChainProblem::Loop(at)),
        (None, Some(p)) => Some(p),
        (None, None) if prefix.chain.len() > MAX_CHAIN => Some(ChainProblem::TooLong(prefix.chain.len())),
        (None, None) => None,
    };
    if prefix.chain_problem.is_some() {
        prefix.addresses.clear();
    }
    prefix
}

/// A and AAAA of `name` (shown as `text`) from one server, merged.
async fn ask(server: SocketAddr, text: &str, name: &Name, deadline: Instant, budget: &Budget) -> (DnsOutcome, bool) {
    let (a, aaaa) = tokio::join!(
        query(server, name, RecordType::A, deadline, budget),
        query(server, name, RecordType::AAAA, deadline, budget),
    );
    combine(text, a, aaaa)
}

fn absolute_name(fqdn: &str) -> Result<Name, String> {
    let mut name = Name::from_ascii(fqdn).map_err(|e| format!("invalid name {fqdn:?}: {e}"))?;
    name.set_fqdn(true);
    Ok(name)
}

/// Merges the A and AAAA exchanges: the A response decides rcode and chain;
/// AAAA contributes addresses when it succeeded.
fn combine(fqdn: &str, a: Result<Exchange, QueryError>, aaaa: Result<Exchange, QueryError>) -> (DnsOutcome, bool) {
    let a = match a {
        Ok(x) => x,
        Err(QueryError::Timeout) => return (DnsOutcome::Timeout, false),
        Err(QueryError::Unreachable(e)) => return (DnsOutcome::Unreachable(e), false),
        Err(QueryError::Io(e)) => return (DnsOutcome::Failed(e), false),
        Err(QueryError::Oversized) => return (DnsOutcome::Failed("oversized UDP answer".into()), false),
        Err(QueryError::BudgetSpent) => {
            return (
                DnsOutcome::Failed(format!(
                    "gave up after {MAX_QUERIES_PER_LOOKUP} queries (the per-lookup budget)"
                )),
                false,
            );
        }
    };
    let rcode = rcode_of(a.message.metadata.response_code);
    let mut answer = follow_chain(fqdn, &a.message.answers);
    answer.rcode = rcode;
    answer.negative_soa = a.message.authorities.iter().any(|r| r.record_type() == RecordType::SOA);
    let mut tcp = a.tcp;
    let Ok(x) = aaaa else {
        return (DnsOutcome::Answer(answer), tcp);
    };
    if rcode != Rcode::NoError || answer.chain_problem.is_some() {
        return (DnsOutcome::Answer(answer), tcp);
    }
    let six = follow_chain(fqdn, &x.message.answers);
    if six.chain_problem.is_some() {
        return (DnsOutcome::Answer(answer), tcp);
    }
    tcp |= x.tcp;
    match x.message.metadata.response_code {
        ResponseCode::NoError => {
            for ip in six.addresses {
                if !answer.addresses.contains(&ip) {
                    answer.addresses.push(ip);
                }
            }
            if answer.chain.is_empty() && !six.chain.is_empty() {
                answer.chain = six.chain;
            }
        }
        // A says the chain ends without an A record, AAAA that its end does
        // not exist at all (dnsmasq answers so while its cache fills): a name
        // that does not exist has no address of any type, so NXDOMAIN it is,
        // with nothing left to follow.
        ResponseCode::NXDomain if answer.addresses.is_empty() && six.chain.starts_with(&answer.chain) => {
            answer.chain = six.chain;
            answer.rcode = Rcode::NxDomain;
        }
        _ => {}
    }
    (DnsOutcome::Answer(answer), tcp)
}

pub fn rcode_of(code: ResponseCode) -> Rcode {
    match code {
        ResponseCode::NoError => Rcode::NoError,
        ResponseCode::FormErr => Rcode::FormErr,
        ResponseCode::ServFail => Rcode::ServFail,
        ResponseCode::NXDomain => Rcode::NxDomain,
        ResponseCode::NotImp => Rcode::NotImp,
        ResponseCode::Refused => Rcode::Refused,
        other => Rcode::Other(u16::from(other)),
    }
}

fn plain(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

/// Follows CNAMEs from `qname` through the answer records and collects the
/// final name's addresses. Detects loops and over-long chains.
pub fn follow_chain(qname: &str, answers: &[Record]) -> DnsAnswer {
    let mut current = qname.trim_end_matches('.').to_ascii_lowercase();
    let mut seen = vec![current.clone()];
    let mut chain = Vec::new();
    let mut problem = None;
    loop {
        let next = answers.iter().find_map(|r| match &r.data {
            RData::CNAME(c) if plain(&r.name) == current => Some(plain(&c.0)),
            _ => None,
        });
        let Some(next) = next else { break };
        if seen.contains(&next) {
            problem = Some(ChainProblem::Loop(next));
            break;
        }
        chain.push(next.clone());
        seen.push(next.clone());
        if chain.len() > MAX_CHAIN {
            problem = Some(ChainProblem::TooLong(chain.len()));
            break;
        }
        current = next;
    }
    let mut addresses = Vec::new();
    if problem.is_none() {
        for r in answers {
            if plain(&r.name) != current {
                continue;
            }
            let ip = match &r.data {
                RData::A(a) => IpAddr::V4(a.0),
                RData::AAAA(a) => IpAddr::V6(a.0),
                _ => continue,
            };
            if !addresses.contains(&ip) {
                addresses.push(ip);
            }
        }
    }
    DnsAnswer {
        rcode: Rcode::NoError,
        chain,
        addresses,
        chain_problem: problem,
        negative_soa: false,
    }
}

fn build_query(name: &Name, qtype: RecordType) -> Message {
    let mut msg = Message::query();
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(name.clone(), qtype));
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD);
    msg.set_edns(edns);
    msg
}

/// True when `resp` answers `req`: same ID, a response, same question.
fn matches(req: &Message, resp: &Message) -> bool {
    resp.metadata.id == req.metadata.id
        && resp.metadata.message_type == MessageType::Response
        && match (req.queries.first(), resp.queries.first()) {
            (Some(q), Some(r)) => q.query_type() == r.query_type() && plain(q.name()) == plain(r.name()),
            // Some servers omit the question in error responses.
            (Some(_), None) => resp.metadata.response_code != ResponseCode::NoError,
            _ => false,
        }
}

async fn query(
    server: SocketAddr,
    name: &Name,
    qtype: RecordType,
    deadline: Instant,
    budget: &Budget,
) -> Result<Exchange, QueryError> {
    let req = build_query(name, qtype);
    let bytes = req
        .to_vec()
        .map_err(|e| QueryError::Io(format!("cannot encode query: {e}")))?;
    // A truncated answer, or one too large for the buffer, is asked again over TCP.
    match timeout_at(deadline, udp_exchange(server, &req, &bytes, deadline, budget)).await {
        Err(_) => Err(QueryError::Timeout),
        Ok(Ok(message)) if !message.metadata.truncation => Ok(Exchange { message, tcp: false }),
        Ok(Ok(_)) | Ok(Err(QueryError::Oversized)) => {
            budget.spend()?;
            match timeout_at(deadline, tcp_exchange(server, &req, &bytes)).await {
                Err(_) => Err(QueryError::Timeout),
                Ok(r) => r.map(|message| Exchange { message, tcp: true }),
            }
        }
        Ok(Err(e)) => Err(e),
    }
}

async fn udp_exchange(
    server: SocketAddr,
    req: &Message,
    bytes: &[u8],
    deadline: Instant,
    budget: &Budget,
) -> Result<Message, QueryError> {
    let bind: SocketAddr = if server.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(bind)
        .await
        .map_err(|e| QueryError::Io(format!("udp bind: {e}")))?;
    sock.connect(server)
        .await
        .map_err(|e| QueryError::Io(format!("udp connect {server}: {e}")))?;
    budget.spend()?;
    sock.send(bytes).await.map_err(|e| io_error(server, e))?;
    // One retransmission halfway to the deadline, as a stub resolver would.
    let resend_at = Instant::now() + (deadline.saturating_duration_since(Instant::now()) / 2);
    let mut resent = false;
    let mut buf = vec![0u8; UDP_BUFFER];
    loop {
        let wait_until = if resent { deadline } else { resend_at };
        match timeout_at(wait_until, sock.recv(&mut buf)).await {
            Err(_) if !resent => {
                resent = true;
                budget.spend()?;
                sock.send(bytes).await.map_err(|e| io_error(server, e))?;
            }
            Err(_) => return Err(QueryError::Timeout),
            Ok(Err(e)) => return Err(io_error(server, e)),
            // A datagram that fills the buffer was cut by the kernel: the
            // server ignored our EDNS size. Treat it as truncated.
            Ok(Ok(n)) if n >= buf.len() => return Err(QueryError::Oversized),
            Ok(Ok(n)) => {
                // A datagram that does not parse or does not answer this
                // query is dropped; the real answer may still come.
                if let Ok(msg) = Message::from_vec(&buf[..n])
                    && matches(req, &msg)
                {
                    return Ok(msg);
                }
            }
        }
    }
}

async fn tcp_exchange(server: SocketAddr, req: &Message, bytes: &[u8]) -> Result<Message, QueryError> {
    let mut stream = TcpStream::connect(server).await.map_err(|e| io_error(server, e))?;
    let len = u16::try_from(bytes.len()).map_err(|_| QueryError::Io("query too large".into()))?;
    let mut framed = Vec::with_capacity(bytes.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(bytes);
    stream.write_all(&framed).await.map_err(|e| io_error(server, e))?;
    let mut len_buf = [0u8; 2];
    stream.read_exact(&mut len_buf).await.map_err(|e| io_error(server, e))?;
    let len = u16::from_be_bytes(len_buf) as usize;
    let mut buf = vec![0u8; len];
    stream.read_exact(&mut buf).await.map_err(|e| io_error(server, e))?;
    let msg =
        Message::from_vec(&buf).map_err(|e| QueryError::Io(format!("malformed TCP response from {server}: {e}")))?;
    if !matches(req, &msg) {
        return Err(QueryError::Io(format!(
            "TCP response from {server} does not answer the query"
        )));
    }
    Ok(msg)
}

fn io_error(server: SocketAddr, e: std::io::Error) -> QueryError {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused | HostUnreachable | NetworkUnreachable => QueryError::Unreachable(format!("{server}: {e}")),
        _ => QueryError::Io(format!("{server}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::proto::rr::rdata::{A, CNAME};

    fn cname(from: &str, to: &str) -> Record {
        Record::from_rdata(
            Name::from_ascii(from).unwrap(),
            60,
            RData::CNAME(CNAME(Name::from_ascii(to).unwrap())),
        )
    }
    fn a(name: &str, ip: [u8; 4]) -> Record {
        Record::from_rdata(Name::from_ascii(name).unwrap(), 60, RData::A(A(ip.into())))
    }

    #[test]
    fn follows_chain_to_final_addresses() {
        let recs = vec![
            cname("acr.azurecr.io.", "acr.privatelink.azurecr.io."),
            a("acr.privatelink.azurecr.io.", [10, 0, 0, 5]),
            a("unrelated.example.", [1, 2, 3, 4]),
        ];
        let ans = follow_chain("ACR.azurecr.io", &recs);
        assert_eq!(ans.chain, vec!["acr.privatelink.azurecr.io"]);
        assert_eq!(ans.addresses, vec![IpAddr::from([10, 0, 0, 5])]);
        assert_eq!(ans.chain_problem, None);
    }

    #[test]
    fn detects_loops_and_long_chains() {
        let recs = vec![cname("a.x.", "b.x."), cname("b.x.", "a.x.")];
        assert_eq!(
            follow_chain("a.x", &recs).chain_problem,
            Some(ChainProblem::Loop("a.x".into()))
        );
        let mut long = Vec::new();
        for i in 0..20 {
            long.push(cname(&format!("n{i}.x."), &format!("n{}.x.", i + 1)));
        }
        let ans = follow_chain("n0.x", &long);
        assert_eq!(ans.chain_problem, Some(ChainProblem::TooLong(MAX_CHAIN + 1)));
        assert!(ans.addresses.is_empty());
    }
}
