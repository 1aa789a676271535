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

use crate::observation::{ChainProblem, DnsAnswer, DnsObservation, DnsOutcome, Rcode, SoaRecord, TcpCheck, ZoneSoa};

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

/// Queries per second one resolver may be sent by the agent, whatever the
/// configuration (targets, interval): Azure DNS throttles each VM, and every
/// pod of the node shares that budget (docs/agent.md, "Load on the node's DNS").
pub const QUERY_RATE_PER_SECOND: u32 = 100;
/// Queries one resolver may be sent at once before the rate applies: a
/// round of up to 50 healthy targets (2 queries each) goes out unpaced.
pub const QUERY_BURST: u32 = 100;

/// The agent's own bound on the queries it sends to one resolver: a token
/// bucket (GCRA: `burst` at once, then one per `1 / rate`), shared by every
/// lookup through that resolver, round after round. A query that must wait
/// waits (and is counted as held back); one whose wait would outlast its
/// lookup's deadline is not sent at all.
#[derive(Debug)]
pub struct QueryRate {
    /// The theoretical arrival time of the next query.
    tat: std::sync::Mutex<Instant>,
    per: Duration,
    burst: Duration,
    held: std::sync::atomic::AtomicU64,
}

impl QueryRate {
    pub fn new(per_second: u32, burst: u32) -> QueryRate {
        let per = Duration::from_secs(1) / per_second.max(1);
        QueryRate {
            tat: std::sync::Mutex::new(Instant::now()),
            per,
            burst: per * burst.max(1),
            held: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The agent's bound: [`QUERY_RATE_PER_SECOND`], [`QUERY_BURST`].
    pub fn per_resolver() -> QueryRate {
        QueryRate::new(QUERY_RATE_PER_SECOND, QUERY_BURST)
    }

    /// Queries that had to wait (or were not sent), since this was made.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    /// Waits until one more query may go, or says it may not before `deadline`.
    async fn acquire(&self, deadline: Instant) -> Result<(), QueryError> {
        let wait = {
            let Ok(mut tat) = self.tat.lock() else { return Ok(()) };
            let now = Instant::now();
            let start = (*tat).max(now);
            let wait = (start + self.per).saturating_duration_since(now + self.burst);
            if now + wait > deadline {
                self.held.fetch_add(1, Ordering::Relaxed);
                return Err(QueryError::HeldBack);
            }
            *tat = start + self.per;
            wait
        };
        if !wait.is_zero() {
            self.held.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }
}

/// The queries one lookup may still send. Every send goes through
/// [`Budget::spend`], so the bound holds whatever path a lookup takes, and
/// so does the resolver's rate ([`QueryRate`]).
#[derive(Debug)]
struct Budget<'a> {
    sent: AtomicU32,
    rate: &'a QueryRate,
    deadline: Instant,
}

impl Budget<'_> {
    fn new(rate: &QueryRate, deadline: Instant) -> Budget<'_> {
        Budget {
            sent: AtomicU32::new(0),
            rate,
            deadline,
        }
    }

    /// Takes one query from the budget and the resolver's rate, or says
    /// that either is spent.
    async fn spend(&self) -> Result<(), QueryError> {
        self.sent
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < MAX_QUERIES_PER_LOOKUP).then_some(n + 1)
            })
            .map_err(|_| QueryError::BudgetSpent)?;
        let allowed = self.rate.acquire(self.deadline).await;
        if allowed.is_err() {
            // Not sent after all: `queries` counts what went out.
            self.sent.fetch_sub(1, Ordering::Relaxed);
        }
        allowed
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
    /// The resolver's rate ([`QueryRate`]) would not let it go before the
    /// deadline; nothing was sent.
    HeldBack,
    /// Refused or no route: the server is not there.
    Unreachable(String),
    /// A UDP answer larger than the buffer (the server ignored EDNS).
    Oversized,
    /// The UDP answer was truncated and the TCP retry failed (why).
    TcpFailed(String),
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
pub async fn lookup(
    resolver: &str,
    fqdn: &str,
    servers: &[SocketAddr],
    time: Duration,
    rate: &QueryRate,
) -> DnsObservation {
    let start = Instant::now();
    let deadline = start + time;
    let budget = Budget::new(rate, deadline);
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
                    | DnsOutcome::TcpFailed(_)
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
    budget: &Budget<'_>,
) -> (DnsOutcome, bool) {
    let (mut outcome, mut tcp) = ask(server, fqdn, name, deadline, budget).await;
    let mut asked = vec![fqdn.trim_end_matches('.').to_ascii_lowercase()];
    while let DnsOutcome::Answer(ans) = &outcome {
        let dangling =
            ans.rcode == Rcode::NoError && ans.addresses.is_empty() && ans.chain_problem.is_none() && !ans.negative_soa;
        let Some(last) = ans.chain.last().filter(|_| dangling) else {
            break;
        };
        if asked.contains(last) || ans.chain.len() > MAX_CHAIN || never_asked(last) {
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

/// Names under `.invalid` (RFC 6761) are never asked: they do not exist,
/// and Azure DNS security policy's block sentinel
/// (`blockpolicy.azuredns.invalid`) is one.
fn never_asked(name: &str) -> bool {
    name == "invalid" || name.ends_with(".invalid")
}

/// Appends a follow-up answer to the chain so far; a name already in the chain
/// is a loop that only shows across follow-ups.
fn extend(fqdn: &str, mut prefix: DnsAnswer, rest: DnsAnswer) -> DnsAnswer {
    let mut seen: Vec<String> = vec![fqdn.trim_end_matches('.').to_ascii_lowercase()];
    seen.extend(prefix.chain.iter().cloned());
    let looped = rest.chain.iter().find(|n| seen.contains(n)).cloned();
    prefix.chain.extend(rest.chain);
    prefix.addresses = rest.addresses;
    prefix.omitted = rest.omitted;
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
        prefix.omitted = 0;
    }
    prefix
}

/// A and AAAA of `name` (shown as `text`) from one server, merged.
async fn ask(
    server: SocketAddr,
    text: &str,
    name: &Name,
    deadline: Instant,
    budget: &Budget<'_>,
) -> (DnsOutcome, bool) {
    let (a, aaaa) = tokio::join!(
        query(server, name, RecordType::A, deadline, budget, true),
        query(server, name, RecordType::AAAA, deadline, budget, true),
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
        Err(QueryError::TcpFailed(why)) => return (DnsOutcome::TcpFailed(why), false),
        Err(QueryError::BudgetSpent) => {
            return (
                DnsOutcome::Failed(format!(
                    "gave up after {MAX_QUERIES_PER_LOOKUP} queries (the per-lookup budget)"
                )),
                false,
            );
        }
        Err(QueryError::HeldBack) => {
            return (
                DnsOutcome::Failed(format!(
                    "not asked: netprobe's own limit of {QUERY_RATE_PER_SECOND} queries per second to this resolver \
                     held the query past the timeout (too many targets for one round)"
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
                answer.keep(ip);
            }
            answer.omitted += six.omitted;
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

/// The round's TCP 53 check of one server: one A query for `name` over TCP
/// (paid from the resolver's rate like every query), within `time`.
pub async fn tcp_check(server: SocketAddr, name: &str, time: Duration, rate: &QueryRate) -> TcpCheck {
    let start = Instant::now();
    let deadline = start + time;
    let budget = Budget::new(rate, deadline);
    let mut held_back = false;
    let outcome = match absolute_name(name) {
        Err(e) => Err(e),
        Ok(qname) => {
            let req = build_query(&qname, RecordType::A);
            match req.to_vec() {
                Err(e) => Err(format!("cannot encode query: {e}")),
                Ok(bytes) => match timeout_at(deadline, tcp_exchange(server, &req, &bytes, &budget)).await {
                    Err(_) => Err(format!(
                        "no answer over TCP from {server} within {}",
                        humantime::format_duration(time)
                    )),
                    Ok(Ok(m)) => Ok(rcode_of(m.metadata.response_code)),
                    Ok(Err(QueryError::Unreachable(e) | QueryError::Io(e))) => Err(e),
                    Ok(Err(QueryError::HeldBack | QueryError::BudgetSpent)) => {
                        held_back = true;
                        Err("not asked: the resolver's query rate is spent".to_string())
                    }
                    Ok(Err(e)) => Err(format!("{e:?}")),
                },
            }
        }
    };
    TcpCheck {
        server,
        name: name.trim_end_matches('.').to_ascii_lowercase(),
        outcome,
        duration: start.elapsed(),
        queries: budget.sent(),
        held_back,
    }
}

/// Asks `server` for the SOA of `zone`: one datagram (no retransmission;
/// over TCP too only when the answer is truncated), paid from the resolver's
/// rate.
pub async fn zone_soa(resolver: &str, zone: &str, server: SocketAddr, time: Duration, rate: &QueryRate) -> ZoneSoa {
    let deadline = Instant::now() + time;
    let budget = Budget::new(rate, deadline);
    let outcome = match absolute_name(zone) {
        Err(e) => Err(e),
        Ok(name) => match query(server, &name, RecordType::SOA, deadline, &budget, false).await {
            Ok(x)
                if matches!(
                    rcode_of(x.message.metadata.response_code),
                    Rcode::NoError | Rcode::NxDomain
                ) =>
            {
                Ok(soa_of(&x.message))
            }
            Ok(x) => Err(format!(
                "{server}: {}",
                rcode_of(x.message.metadata.response_code).as_string()
            )),
            Err(e) => Err(format!("{server}: {e:?}")),
        },
    };
    ZoneSoa {
        zone: zone.trim_end_matches('.').to_ascii_lowercase(),
        resolver: resolver.to_string(),
        outcome,
        queries: budget.sent(),
    }
}

/// The SOA of a response: from the answer section, else the authority.
fn soa_of(message: &Message) -> Option<SoaRecord> {
    message
        .answers
        .iter()
        .chain(&message.authorities)
        .find_map(|r| match &r.data {
            RData::SOA(soa) => Some(SoaRecord {
                owner: plain(&r.name),
                mname: plain(&soa.mname),
                rname: plain(&soa.rname),
            }),
            _ => None,
        })
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
    let mut answer = DnsAnswer {
        rcode: Rcode::NoError,
        chain,
        addresses: Vec::new(),
        omitted: 0,
        chain_problem: problem,
        negative_soa: false,
    };
    if answer.chain_problem.is_none() {
        for r in answers {
            if plain(&r.name) != current {
                continue;
            }
            match &r.data {
                RData::A(a) => answer.keep(IpAddr::V4(a.0)),
                RData::AAAA(a) => answer.keep(IpAddr::V6(a.0)),
                _ => continue,
            }
        }
    }
    answer
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
    budget: &Budget<'_>,
    resend: bool,
) -> Result<Exchange, QueryError> {
    let req = build_query(name, qtype);
    let bytes = req
        .to_vec()
        .map_err(|e| QueryError::Io(format!("cannot encode query: {e}")))?;
    // A truncated answer, or one too large for the buffer, is asked again over TCP.
    match timeout_at(deadline, udp_exchange(server, &req, &bytes, deadline, budget, resend)).await {
        Err(_) => Err(QueryError::Timeout),
        Ok(Ok(message)) if !message.metadata.truncation => Ok(Exchange { message, tcp: false }),
        Ok(Ok(_)) | Ok(Err(QueryError::Oversized)) => {
            match timeout_at(deadline, tcp_exchange(server, &req, &bytes, budget)).await {
                Err(_) => Err(QueryError::TcpFailed(format!(
                    "no answer over TCP from {server} in time"
                ))),
                Ok(Ok(message)) => Ok(Exchange { message, tcp: true }),
                Ok(Err(QueryError::Unreachable(e) | QueryError::Io(e))) => Err(QueryError::TcpFailed(e)),
                Ok(Err(e)) => Err(e),
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
    budget: &Budget<'_>,
    resend: bool,
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
    budget.spend().await?;
    sock.send(bytes).await.map_err(|e| io_error(server, e))?;
    // One retransmission halfway to the deadline, as a stub resolver would.
    let resend_at = Instant::now() + (deadline.saturating_duration_since(Instant::now()) / 2);
    let mut resent = !resend;
    let mut buf = vec![0u8; UDP_BUFFER];
    loop {
        let wait_until = if resent { deadline } else { resend_at };
        match timeout_at(wait_until, sock.recv(&mut buf)).await {
            Err(_) if !resent => {
                resent = true;
                match budget.spend().await {
                    Ok(()) => {
                        sock.send(bytes).await.map_err(|e| io_error(server, e))?;
                    }
                    // The resolver's rate is spent: no retransmission, the
                    // first query is still awaited (a silent server stays a
                    // timeout, not an error of netprobe's making).
                    Err(QueryError::HeldBack) => {}
                    Err(e) => return Err(e),
                }
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

/// One query over TCP. The query is paid for once the connection stands: a
/// server whose TCP port is dropped or refused is sent no query (a packet
/// capture would count none).
async fn tcp_exchange(
    server: SocketAddr,
    req: &Message,
    bytes: &[u8],
    budget: &Budget<'_>,
) -> Result<Message, QueryError> {
    let mut stream = TcpStream::connect(server).await.map_err(|e| io_error(server, e))?;
    budget.spend().await?;
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
