//! What the probe phases saw, as plain data. The probe modules produce these;
//! the verdict layer (`verdict.rs`) turns them into verdicts without any I/O,
//! so every rule can be table-tested with hand-made observations.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::model::{TcpOutcome, TlsOutcome};

/// A DNS response code, rendered the way `dig` prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rcode {
    NoError,
    FormErr,
    ServFail,
    NxDomain,
    NotImp,
    Refused,
    Other(u16),
}

impl serde::Serialize for Rcode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.as_string())
    }
}

impl<'de> serde::Deserialize<'de> for Rcode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Rcode::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("unknown response code {text:?}")))
    }
}

impl Rcode {
    /// [`Rcode::as_string`] read back.
    pub fn parse(text: &str) -> Option<Rcode> {
        Some(match text {
            "NOERROR" => Rcode::NoError,
            "FORMERR" => Rcode::FormErr,
            "SERVFAIL" => Rcode::ServFail,
            "NXDOMAIN" => Rcode::NxDomain,
            "NOTIMP" => Rcode::NotImp,
            "REFUSED" => Rcode::Refused,
            other => Rcode::Other(other.strip_prefix("RCODE")?.parse().ok()?),
        })
    }

    /// A usable answer: the name exists or does not (NOERROR, NXDOMAIN).
    pub fn usable(self) -> bool {
        matches!(self, Rcode::NoError | Rcode::NxDomain)
    }

    pub fn as_string(self) -> String {
        match self {
            Rcode::NoError => "NOERROR".into(),
            Rcode::FormErr => "FORMERR".into(),
            Rcode::ServFail => "SERVFAIL".into(),
            Rcode::NxDomain => "NXDOMAIN".into(),
            Rcode::NotImp => "NOTIMP".into(),
            Rcode::Refused => "REFUSED".into(),
            Rcode::Other(n) => format!("RCODE{n}"),
        }
    }
}

/// The most addresses one lookup keeps (and that are judged, reported and
/// connected to: `probe` connects to at most 8 of them).
pub const MAX_ADDRESSES_KEPT: usize = 16;

/// Longest CNAME chain followed before the answer counts as an error.
pub const MAX_CHAIN: usize = 16;

/// Why a CNAME chain could not be followed to its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainProblem {
    /// A name in the chain points back to an earlier one.
    Loop(String),
    /// More CNAMEs than the limit.
    TooLong(usize),
}

/// A DNS answer that arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsAnswer {
    pub rcode: Rcode,
    /// CNAME targets in order, starting after the queried name.
    pub chain: Vec<String>,
    /// A and AAAA records of the chain's final name, at most
    /// [`MAX_ADDRESSES_KEPT`].
    pub addresses: Vec<IpAddr>,
    /// Address records past [`MAX_ADDRESSES_KEPT`], not kept (a 64 KiB TCP
    /// answer can carry thousands).
    pub omitted: usize,
    pub chain_problem: Option<ChainProblem>,
    /// The response carried an SOA in its authority section: a negative
    /// answer (NODATA, NXDOMAIN) for the chain's last name (RFC 2308), so a
    /// CNAME with nothing after it needs no follow-up query.
    pub negative_soa: bool,
}

/// How a lookup ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsOutcome {
    Answer(DnsAnswer),
    /// No usable response within the phase timeout.
    Timeout,
    /// The server could not be reached (connection refused, no route).
    Unreachable(String),
    /// Could not ask at all, or the response was unusable (reason given).
    Failed(String),
    /// The resolver has no server to ask: its resolv.conf is missing,
    /// unreadable or lists no `nameserver` (the node's state, not a crash).
    NoServers(String),
    /// The UDP answer was truncated (or too large) and its TCP retry failed
    /// (reason given): the server answers UDP but not TCP.
    TcpFailed(String),
}

/// One target looked up through one resolver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsObservation {
    pub resolver: String,
    /// The server whose answer is reported (the last one tried).
    pub server: Option<SocketAddr>,
    pub outcome: DnsOutcome,
    pub duration: Duration,
    /// The answer came over TCP after a truncated UDP response.
    pub tcp_fallback: bool,
    /// Queries sent for this lookup (every server, retransmission, TCP retry
    /// and CNAME follow-up), at most `probe::dns::MAX_QUERIES_PER_LOOKUP`.
    pub queries: u32,
}

/// The HTTP response, reduced to what the per-service checks read.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct HttpResponse {
    pub status: u16,
    /// The headers the target's service asked for (`service::AzureService::headers`),
    /// names in lower case.
    pub headers: Vec<(String, String)>,
    /// The first bytes of the body (lossy UTF-8), capped.
    pub body: String,
}

impl HttpResponse {
    /// The value of header `name` (lower case), if it was kept.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpOutcome {
    Response(HttpResponse),
    Timeout,
    Failed(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsObservation {
    pub outcome: TlsOutcome,
    pub duration: Duration,
    pub detail: Option<String>,
    /// The end-entity certificate's expiry (Unix seconds), also when
    /// verification failed.
    pub cert_not_after: Option<i64>,
    pub version: Option<String>,
    /// Bytes the server sent during the handshake. Zero after a timeout
    /// means nothing answered the ClientHello at all (a flow dropped after
    /// its TCP handshake), not a server that stalled mid-handshake.
    pub received: u64,
    /// After a timeout: bytes this side sent (the ClientHello) that the
    /// server's TCP never acknowledged. More than zero: the packets after the
    /// TCP handshake never arrived (a flow dropped on the path); zero: they
    /// arrived, and the server's program is what is silent. `None` when not
    /// a timeout, or unknown.
    pub unacked: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpObservation {
    pub outcome: HttpOutcome,
    pub duration: Duration,
}

/// One address of a target: TCP, then TLS, then HTTP, each only if the
/// previous phase succeeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectObservation {
    pub address: IpAddr,
    pub tcp: TcpOutcome,
    pub tcp_duration: Duration,
    pub tcp_detail: Option<String>,
    pub tls: Option<TlsObservation>,
    pub http: Option<HttpObservation>,
}

/// The target probed through the workloads' HTTP proxy (`proxy_probe`): a
/// connection to the proxy, `CONNECT <fqdn>:<port>`, then the same TLS and
/// HTTP exchange as the direct probe, through the tunnel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyProbeObservation {
    /// The proxy, credentials hidden (`proxy::redact`).
    pub proxy: String,
    /// Reaching the proxy itself.
    pub tcp: TcpOutcome,
    pub tcp_detail: Option<String>,
    /// The proxy's answer to CONNECT: its status and reason line, or why
    /// none came (the connection closed, no answer in time).
    pub connect: Result<(u16, String), String>,
    pub duration: Duration,
    pub tls: Option<TlsObservation>,
    pub http: Option<HttpObservation>,
}

/// Everything the engine saw of one target in one round: its lookups (one
/// per resolver, in configuration order), whose addresses it connected to,
/// and what each connection saw. No judgement: `judge` turns it into a
/// `TargetReport`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetObservation {
    pub dns: Vec<DnsObservation>,
    /// Index into `dns` of the resolver whose addresses were connected to:
    /// `connect_via`, or the first other resolver that gave addresses.
    pub connect_resolver: Option<usize>,
    pub connects: Vec<ConnectObservation>,
    /// Through the workloads' HTTP proxy, when `proxy_probe` is on and a
    /// client would send this target there.
    pub via_proxy: Option<ProxyProbeObservation>,
}

impl DnsAnswer {
    /// Keeps `ip` unless it is kept already or the cap is reached (then
    /// counts it as omitted).
    pub fn keep(&mut self, ip: IpAddr) {
        if self.addresses.contains(&ip) {
            return;
        }
        if self.addresses.len() < MAX_ADDRESSES_KEPT {
            self.addresses.push(ip);
        } else {
            self.omitted += 1;
        }
    }
}

impl DnsObservation {
    /// The answer, when it is usable (NOERROR or NXDOMAIN).
    pub fn answered(&self) -> Option<&DnsAnswer> {
        match &self.outcome {
            DnsOutcome::Answer(a) if a.rcode.usable() => Some(a),
            _ => None,
        }
    }

    /// The addresses of the answer, if one arrived.
    pub fn addresses(&self) -> &[IpAddr] {
        match &self.outcome {
            DnsOutcome::Answer(a) => &a.addresses,
            _ => &[],
        }
    }
}

/// The TCP 53 check of one resolver in a round: one query over TCP to a
/// server that answered over UDP, for a name it answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpCheck {
    pub server: SocketAddr,
    pub name: String,
    /// The response code over TCP, or why no answer came (timeout, reset,
    /// refused).
    pub outcome: Result<Rcode, String>,
    pub duration: Duration,
    /// Queries sent: 1 once the connection stood, else 0.
    pub queries: u32,
    /// Not asked: the resolver's query rate held it back (no finding).
    pub held_back: bool,
}

/// The SOA of a target's privatelink zone as Azure DNS answered it (one
/// query per zone and round, asked only when a chain passed through the
/// zone and found no address in it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneSoa {
    pub zone: String,
    /// The resolver asked (the first with 168.63.129.16 among its servers).
    pub resolver: String,
    /// The SOA record found (answer section, else authority), or why none.
    pub outcome: Result<Option<SoaRecord>, String>,
    /// Queries sent: 1, or 2 when a truncated answer was asked again over TCP.
    pub queries: u32,
}

/// An SOA record: its owner (the zone it is the apex of) and the primary
/// server (MNAME) and contact (RNAME) names, lower case, without the final dot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SoaRecord {
    pub owner: String,
    pub mname: String,
    pub rname: String,
}

/// Each resolver's servers for a round, or why it had none (an unreadable
/// resolv.conf): the node's state, read once per round.
pub type ResolverServers = Vec<Result<Vec<SocketAddr>, String>>;

/// One round as the engine saw it: when it ran, each resolver's servers and
/// every target's observation in configuration order (`None` when the
/// target's probe task died: reported as `internal_error`).
#[derive(Clone, Debug)]
pub struct RoundObservation {
    pub started_at: std::time::SystemTime,
    pub duration: Duration,
    pub servers: ResolverServers,
    /// Per resolver: queries this round that waited for (or were refused
    /// by) the agent's own query rate (`probe::dns::QueryRate`).
    pub held: Vec<u64>,
    pub targets: Vec<Option<TargetObservation>>,
    /// Per resolver: the round's TCP 53 check; `None` when no server of the
    /// resolver answered over UDP this round (nothing to compare).
    pub tcp_checks: Vec<Option<TcpCheck>>,
    /// The SOAs asked this round, at most one per zone.
    pub zone_soas: Vec<ZoneSoa>,
    /// The agent's own HTTP proxy variables (the ones AKS injects into
    /// every pod): what a workload's client would do with each target.
    pub proxy: crate::proxy::ProxyEnv,
}
