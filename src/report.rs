//! The round report: one document per round, the same for `probe --once
//! --output json` and (later) the agent's `/status`. Built from observations
//! and verdicts; renderers in `render/` only format it.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::model::{
    Cause, ConnectPhase, DnsVerdict, Expect, FindingCode, Phase, Reach, ScoringCause, TcpOutcome, TlsOutcome,
};
use crate::observation::{ConnectObservation, DnsObservation, HttpOutcome, Rcode};
use crate::service::Service;
use crate::service::Target;
use crate::verdict::{CauseFinding, ConnectView, Diagnosis, DnsView};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RoundReport {
    /// True when every target is healthy.
    pub healthy: bool,
    /// RFC 3339, UTC.
    pub started_at: String,
    #[serde(rename = "duration_ms", with = "as_ms")]
    pub duration: Duration,
    pub version: String,
    /// The configuration file the round ran from.
    pub config: String,
    pub summary: Summary,
    /// Each resolver's state this round, in configuration order.
    pub resolvers: Vec<ResolverReport>,
    pub targets: Vec<TargetReport>,
    /// The node this ran on, when known (Kubernetes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeInfo>,
    /// Problems not tied to one target (e.g. `region_mismatch`).
    pub findings: Vec<Finding>,
    /// The AML inference router check, when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scoring_service: Option<ScoringServiceReport>,
    /// Every target fails with the same cause through the same resolver:
    /// one problem of the node's path, said once (`judge::shared_cause`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_cause: Option<SharedCause>,
    /// The workloads' HTTP proxy, when the agent's pod has one (AKS
    /// `httpProxyConfig`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxyReport>,
}

/// `/status/summary`: what `netprobe report` needs of an agent's round, in
/// a few hundred bytes: the failing targets only, and a digest of the whole
/// target list, which `?targets=all` spells out (the report asks one agent
/// per digest: every node of a cluster usually has the same list). A fleet of
/// 5,000 nodes is read through the API server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundSummary {
    /// The agent's version.
    pub version: String,
    pub started_at: String,
    pub healthy: bool,
    /// How many targets, and a digest of their names and FQDNs in order
    /// ([`target_set`]).
    pub target_count: usize,
    pub target_set: String,
    /// The failing targets.
    pub failing: Vec<TargetSummary>,
    /// Every target's `(name, fqdn)`, with `?targets=all` only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<(String, String)>,
    /// The resolvers that answered nothing this round.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolvers_down: Vec<String>,
    /// The node findings' codes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<crate::model::FindingCode>,
    /// The agent's Node's attributes (pool, zone, node image, ...): the
    /// report need not list the Nodes' heavy objects to correlate.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub node: std::collections::BTreeMap<String, String>,
}

/// A failing target in a [`RoundSummary`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetSummary {
    pub name: String,
    pub cause: Cause,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub since_at_least: bool,
}

/// A digest of a target list (names and FQDNs, in order): FNV-1a, 64 bits,
/// in hex. Stable across versions: agents of different builds with the same
/// list agree.
pub fn target_set<'a>(targets: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (name, fqdn) in targets {
        for b in name.bytes().chain([b'\t']).chain(fqdn.bytes()).chain([b'\n']) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

impl RoundSummary {
    /// The summary of a round; with `all`, every target's name and FQDN.
    pub fn of(r: &RoundReport, all: bool) -> RoundSummary {
        RoundSummary {
            version: r.version.clone(),
            started_at: r.started_at.clone(),
            healthy: r.healthy,
            target_count: r.targets.len(),
            target_set: target_set(r.targets.iter().map(|t| (t.name.as_str(), t.fqdn.as_str()))),
            failing: r
                .targets
                .iter()
                .filter(|t| !t.healthy)
                .map(|t| TargetSummary {
                    name: t.name.clone(),
                    cause: t.cause,
                    since: t.since.clone(),
                    since_at_least: t.since_at_least,
                })
                .collect(),
            targets: if all {
                r.targets.iter().map(|t| (t.name.clone(), t.fqdn.clone())).collect()
            } else {
                Vec::new()
            },
            resolvers_down: r.resolvers.iter().filter(|x| !x.up).map(|x| x.name.clone()).collect(),
            findings: r.findings.iter().map(|f| f.code).collect(),
            node: r.node.as_ref().map(|n| n.attrs.clone()).unwrap_or_default(),
        }
    }
}

/// The HTTP proxy variables of the agent's pod, the same AKS injects into
/// every workload, and what they mean for the private targets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyReport {
    /// `(name, value)` of each variable set, proxy credentials hidden.
    pub variables: Vec<(String, String)>,
    /// The private targets some client would send to the proxy.
    pub proxied_private: Vec<String>,
    /// The NO_PROXY entries that would take them off it, each once.
    pub add_to_no_proxy: Vec<String>,
    /// `proxy_probe` is on: those targets were also probed through the proxy.
    pub probed: bool,
}

/// What a workload's HTTP clients would do with one target, when a proxy is
/// set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetProxy {
    /// Go, curl and Python, in that order.
    pub clients: Vec<crate::proxy::Decision>,
    /// The clients do not all decide alike.
    pub disagree: bool,
    /// The NO_PROXY entry that takes it off the proxy for every client, when
    /// some client would send it there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_to_no_proxy: Option<String>,
    /// The path through the proxy, when probed (`proxy_probe`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via_proxy: Option<crate::verdict::ProxyView>,
}

/// A cause every target of a round shares.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedCause {
    pub cause: Cause,
    /// The resolver it was seen through (`None`: a reachability cause).
    pub resolver: Option<String>,
    pub targets: usize,
    /// What it means, and where to look first.
    pub diagnosis: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    pub targets: usize,
    pub healthy: usize,
    pub unhealthy: usize,
    pub resolvers: Vec<String>,
    pub connect_via: String,
}

/// One resolver over a whole round.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ResolverReport {
    pub name: String,
    /// The servers asked this round (from the config or the resolv.conf).
    pub servers: Vec<String>,
    /// True when at least one query got a usable answer (NOERROR or
    /// NXDOMAIN) this round.
    pub up: bool,
    /// Queries sent through this resolver this round.
    pub queries: u64,
    /// Queries this round that waited for the agent's own rate limit per
    /// resolver (or were not sent for it).
    #[serde(default)]
    pub queries_held: u64,
    /// Lookups this round, and how many got a usable answer.
    pub lookups: usize,
    pub answered: usize,
    /// Why there were no servers to ask (an unreadable resolv.conf), or why
    /// the resolver is down (the first failing lookup's detail).
    pub detail: Option<String>,
    /// A server of this resolver is AKS LocalDNS (169.254.10.0/24): a
    /// caching node-local DNS, whose answers may be cached or stale.
    #[serde(default)]
    pub localdns: bool,
    /// The resolver this one forwards to (`upstream`), when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// The round's TCP 53 check; absent when no server answered over UDP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpCheckReport>,
    /// Queries of the round's own checks through this resolver (the TCP 53
    /// check, the SOAs of privatelink zones), besides the lookups' `queries`.
    #[serde(default)]
    pub check_queries: u64,
}

impl ResolverReport {
    /// What the round learnt about the resolver besides up or down, one
    /// phrase each (the status page and the human report show them): AKS
    /// LocalDNS, its upstream, the TCP 53 check.
    pub fn notes(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.localdns {
            out.push(match &self.upstream {
                Some(up) => format!("AKS LocalDNS (a cache; upstream: {up})"),
                None => "AKS LocalDNS (a cache)".to_string(),
            });
        } else if let Some(up) = &self.upstream {
            out.push(format!("upstream: {up}"));
        }
        if let Some(t) = &self.tcp {
            out.push(if t.ok {
                "TCP 53 ok".to_string()
            } else {
                format!(
                    "TCP 53 BLOCKED at {} ({})",
                    t.server,
                    crate::text::shown(&t.detail, 120)
                )
            });
        }
        out
    }
}

/// One resolver's TCP 53 check.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TcpCheckReport {
    pub server: String,
    /// The name asked (one the server answered over UDP this round).
    pub name: String,
    /// True when the server answered over TCP.
    pub ok: bool,
    /// The response code over TCP, or why no answer came.
    pub detail: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TargetReport {
    pub name: String,
    pub fqdn: String,
    pub service: Service,
    pub port: u16,
    pub expect: Expect,
    pub privatelink_zone: Option<String>,
    pub healthy: bool,
    /// The primary cause (`causes[0]`), `none` when healthy.
    pub cause: Cause,
    /// The primary cause's explanation and fix.
    pub diagnosis: Option<String>,
    /// Every cause that holds, primary first.
    pub causes: Vec<CauseFinding>,
    pub reach: Reach,
    /// The resolver whose addresses were connected to: `connect_via`, or the
    /// first other resolver that gave addresses when it gave none.
    pub connect_resolver: Option<String>,
    /// The slowest phase of this target, e.g. `{"phase": "tls", "ms": 12.3}`.
    pub slowest: Option<PhaseTime>,
    pub dns: Vec<DnsReport>,
    pub connect: Vec<ConnectReport>,
    /// What a workload's HTTP clients would do with it (a proxy is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<TargetProxy>,
    /// When its health and primary cause last changed (RFC 3339, the start
    /// of the round that saw the change); the agent keeps it from round to
    /// round (`round::carry_since`), `probe --once` has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// `since` is the agent's first round: the state may be older (a
    /// restart forgets it): "since at least".
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub since_at_least: bool,
    /// The primary cause before that change (`none`: healthy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Cause>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PhaseTime {
    pub phase: Phase,
    #[serde(rename = "ms", with = "as_ms")]
    pub duration: Duration,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DnsReport {
    pub resolver: String,
    /// The server whose answer is reported.
    pub server: Option<String>,
    pub verdict: DnsVerdict,
    pub rcode: Option<Rcode>,
    /// CNAME targets in order, after the queried name.
    pub cname_chain: Vec<String>,
    pub addresses: Vec<IpAddr>,
    /// Addresses of the answer past the number kept (`observation::MAX_ADDRESSES_KEPT`);
    /// absent when none was left out.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub addresses_omitted: usize,
    pub privatelink: bool,
    #[serde(rename = "duration_ms", with = "as_ms")]
    pub duration: Duration,
    pub tcp_fallback: bool,
    /// Queries this lookup sent (retransmissions and follow-ups included).
    pub queries: u32,
    pub detail: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConnectReport {
    pub address: IpAddr,
    pub reach: Reach,
    pub tcp: TcpOutcome,
    #[serde(rename = "tcp_ms", with = "as_ms")]
    pub tcp_time: Duration,
    pub tls: Option<TlsOutcome>,
    #[serde(rename = "tls_ms", with = "as_ms_opt")]
    pub tls_time: Option<Duration>,
    pub tls_version: Option<String>,
    /// Bytes the server sent during the TLS handshake: 0 after a timeout
    /// means nothing answered the ClientHello at all.
    pub tls_received: Option<u64>,
    /// After a handshake timeout: bytes sent that the server's TCP never
    /// acknowledged (more than 0: the flow is dropped on the path).
    pub tls_unacked: Option<u64>,
    /// The server certificate's notAfter (RFC 3339), also when it failed verification.
    pub cert_not_after: Option<String>,
    /// The same as Unix seconds (for metrics); not in the document (read
    /// back as `None`).
    #[serde(skip)]
    pub cert_not_after_unix: Option<i64>,
    pub http_status: Option<u16>,
    #[serde(rename = "http_ms", with = "as_ms_opt")]
    pub http_time: Option<Duration>,
    /// For Key Vault: the client address the vault saw (`addr=` of
    /// `x-ms-keyvault-network-info`); private means the private endpoint was used.
    pub keyvault_seen_addr: Option<String>,
    /// The Azure service tag of a public address (`service_tags_file`), e.g.
    /// `AzureContainerRegistry.EastUS`: what an NSG or firewall rule allows.
    pub service_tag: Option<String>,
    pub detail: Option<String>,
}

// ---------------------------------------------------------------------------
// What Kubernetes told about the round (filled in by `cluster`).

/// What the pod learns about its own Node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub name: String,
    pub uid: Option<String>,
    pub region: Option<String>,
    pub zone: Option<String>,
    /// The Node's attributes `netprobe report` correlates failures with
    /// (pool, zone, node image, VM size, OS SKU, subnet, kubelet; `cluster::node_attributes`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub attrs: std::collections::BTreeMap<String, String>,
}

/// Something wrong that is not tied to one target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub code: FindingCode,
    pub message: String,
}

/// The outcome of checking the inference router Service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScoringServiceReport {
    pub namespace: String,
    pub name: String,
    pub healthy: bool,
    /// `none`, `internal_lb_missing`, `public_ingress`, `no_ingress`,
    /// `not_found`, `forbidden` or `api_error`.
    pub cause: ScoringCause,
    pub diagnosis: Option<String>,
    pub internal_annotation: Option<String>,
    pub ingress_ips: Vec<IpAddr>,
}

/// Durations are kept as `Duration`; the JSON document shows them as
/// milliseconds with microsecond precision (`*_ms`).
mod as_ms {
    use std::time::Duration;

    use serde::Deserialize;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(super::ms(*d))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        super::from_ms(f64::deserialize(d)?).ok_or_else(|| serde::de::Error::custom("not a duration in ms"))
    }
}

mod as_ms_opt {
    use std::time::Duration;

    use serde::Deserialize;

    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&super::ms(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<f64>::deserialize(d)? {
            None => Ok(None),
            Some(ms) => super::from_ms(ms)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom("not a duration in ms")),
        }
    }
}

/// [`ms`] read back: a finite, non-negative number of milliseconds.
fn from_ms(ms: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(ms / 1000.0).ok()
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Milliseconds with microsecond precision.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// RFC 3339 (UTC, seconds) for a Unix timestamp; `None` when out of range.
pub fn rfc3339_from_unix(secs: i64) -> Option<String> {
    let t = if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs as u64))?
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))?
    };
    Some(humantime::format_rfc3339_seconds(t).to_string())
}

impl TargetReport {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        target: &Target,
        dns_obs: &[DnsObservation],
        views: &[DnsView],
        connect_obs: &[ConnectObservation],
        connect_views: &[ConnectView],
        reach: Reach,
        connect_resolver: Option<String>,
        diagnosis: Diagnosis,
    ) -> TargetReport {
        let dns: Vec<DnsReport> = dns_obs
            .iter()
            .zip(views)
            .map(|(o, v)| DnsReport {
                resolver: v.resolver.clone(),
                server: o.server.map(|s| s.to_string()),
                verdict: v.verdict,
                rcode: v.rcode,
                cname_chain: v.chain.clone(),
                addresses: v.addresses.iter().map(|a| a.ip).collect(),
                addresses_omitted: match &o.outcome {
                    crate::observation::DnsOutcome::Answer(a) => a.omitted,
                    _ => 0,
                },
                privatelink: v.privatelink,
                duration: o.duration,
                tcp_fallback: o.tcp_fallback,
                queries: o.queries,
                detail: v.detail.clone(),
            })
            .collect();
        let connect: Vec<ConnectReport> = connect_obs
            .iter()
            .zip(connect_views)
            .map(|(o, v)| {
                let response = o.http.as_ref().and_then(|h| match &h.outcome {
                    HttpOutcome::Response(r) => Some(r),
                    _ => None,
                });
                ConnectReport {
                    address: o.address,
                    reach: v.reach,
                    tcp: o.tcp,
                    tcp_time: o.tcp_duration,
                    tls: o.tls.as_ref().map(|t| t.outcome),
                    tls_time: o.tls.as_ref().map(|t| t.duration),
                    tls_version: o.tls.as_ref().and_then(|t| t.version.clone()),
                    tls_received: o.tls.as_ref().map(|t| t.received),
                    tls_unacked: o.tls.as_ref().and_then(|t| t.unacked),
                    cert_not_after: o
                        .tls
                        .as_ref()
                        .and_then(|t| t.cert_not_after)
                        .and_then(rfc3339_from_unix),
                    cert_not_after_unix: o.tls.as_ref().and_then(|t| t.cert_not_after),
                    http_status: response.map(|r| r.status),
                    http_time: o.http.as_ref().map(|h| h.duration),
                    keyvault_seen_addr: response.and_then(|r| crate::service::of(target.service).seen_address(r)),
                    service_tag: v.service_tag.clone(),
                    detail: v.detail.clone(),
                }
            })
            .collect();
        let slowest = slowest_phase(dns_obs, connect_obs);
        TargetReport {
            name: target.name.clone(),
            fqdn: target.fqdn.clone(),
            service: target.service,
            port: target.port,
            expect: target.expect,
            privatelink_zone: target.privatelink_zone.clone(),
            healthy: diagnosis.healthy(),
            cause: diagnosis.cause(),
            diagnosis: diagnosis.text().map(str::to_string),
            causes: diagnosis.causes,
            reach,
            connect_resolver,
            slowest,
            dns,
            connect,
            proxy: None,
            since: None,
            since_at_least: false,
            before: None,
        }
    }

    /// "failing since 14:02 (11 min)", "healthy since at least 09:30 (2 h
    /// 5 min; the agent's start)": its `since` seen from the round that
    /// started at `now` (RFC 3339), in UTC. `None` without a `since`.
    pub fn since_line(&self, now: &str) -> Option<String> {
        let since = self.since.as_deref()?;
        let at = humantime::parse_rfc3339_weak(since).ok()?;
        let held = humantime::parse_rfc3339_weak(now)
            .ok()
            .and_then(|n| n.duration_since(at).ok())
            .unwrap_or_default();
        let minutes = held.as_secs() / 60;
        let held = if minutes < 60 {
            format!("{minutes} min")
        } else {
            format!("{} h {} min", minutes / 60, minutes % 60)
        };
        let clock = since.get(11..16).unwrap_or(since);
        let state = if self.healthy { "healthy" } else { "failing" };
        Some(if self.since_at_least {
            format!("{state} since at least {clock} UTC ({held}; the agent's start)")
        } else {
            format!("{state} since {clock} UTC ({held})")
        })
    }

    /// A target whose probe task died: reported, never silently dropped.
    pub fn internal_error(target: &Target) -> TargetReport {
        let diagnosis = Diagnosis {
            causes: vec![CauseFinding {
                cause: Cause::InternalError,
                resolver: None,
                diagnosis: INTERNAL_ERROR.into(),
            }],
        };
        TargetReport::new(target, &[], &[], &[], &[], Reach::Skipped, None, diagnosis)
    }
}

const INTERNAL_ERROR: &str = "internal error while probing this target (see the logs)";

fn slowest_phase(dns: &[DnsObservation], connects: &[ConnectObservation]) -> Option<PhaseTime> {
    let mut phases: Vec<(Phase, Duration)> = dns
        .iter()
        .map(|o| (Phase::Dns(o.resolver.clone()), o.duration))
        .collect();
    for c in connects {
        phases.push((Phase::Connect(ConnectPhase::Tcp), c.tcp_duration));
        if let Some(t) = &c.tls {
            phases.push((Phase::Connect(ConnectPhase::Tls), t.duration));
        }
        if let Some(h) = &c.http {
            phases.push((Phase::Connect(ConnectPhase::Http), h.duration));
        }
    }
    phases
        .into_iter()
        .max_by_key(|(_, d)| *d)
        .map(|(phase, duration)| PhaseTime { phase, duration })
}

/// Each resolver's round, from its servers (or why it had none) and the
/// targets' lookups through it.
pub fn resolver_reports(
    config: &Config,
    servers: &[Result<Vec<SocketAddr>, String>],
    targets: &[TargetReport],
) -> Vec<ResolverReport> {
    config
        .resolvers
        .iter()
        .zip(servers)
        .map(|(spec, servers)| {
            let lookups: Vec<&DnsReport> = targets
                .iter()
                .flat_map(|t| t.dns.iter())
                .filter(|d| d.resolver == spec.name)
                .collect();
            let answered = lookups.iter().filter(|d| d.rcode.is_some_and(Rcode::usable)).count();
            let detail = match servers {
                Err(why) => Some(why.clone()),
                Ok(_) if answered == 0 => lookups.iter().find_map(|d| {
                    let why = d.detail.clone().or_else(|| d.rcode.map(Rcode::as_string))?;
                    Some(match &d.server {
                        Some(s) if !why.contains(s.as_str()) => format!("{s}: {why}"),
                        _ => why,
                    })
                }),
                Ok(_) => None,
            };
            ResolverReport {
                name: spec.name.clone(),
                servers: servers
                    .as_ref()
                    .map(|l| l.iter().map(|s| s.to_string()).collect())
                    .unwrap_or_default(),
                up: answered > 0,
                queries: lookups.iter().map(|d| u64::from(d.queries)).sum(),
                queries_held: 0,
                lookups: lookups.len(),
                answered,
                detail,
                localdns: servers
                    .as_ref()
                    .is_ok_and(|l| l.iter().any(|s| crate::verdict::is_localdns(*s))),
                upstream: spec
                    .upstream
                    .and_then(|i| config.resolvers.get(i))
                    .map(|r| r.name.clone()),
                tcp: None,
                check_queries: 0,
            }
        })
        .collect()
}

impl RoundReport {
    pub fn new(
        config: &Config,
        started_at: SystemTime,
        took: Duration,
        servers: &[Result<Vec<SocketAddr>, String>],
        targets: Vec<TargetReport>,
    ) -> RoundReport {
        let healthy_count = targets.iter().filter(|t| t.healthy).count();
        RoundReport {
            healthy: healthy_count == targets.len(),
            started_at: humantime::format_rfc3339_millis(started_at).to_string(),
            duration: took,
            version: env!("CARGO_PKG_VERSION").to_string(),
            config: config.source.clone(),
            summary: Summary {
                targets: targets.len(),
                healthy: healthy_count,
                unhealthy: targets.len() - healthy_count,
                resolvers: config.resolvers.iter().map(|r| r.name.clone()).collect(),
                connect_via: config
                    .resolvers
                    .get(config.connect_via)
                    .map(|r| r.name.clone())
                    .unwrap_or_default(),
            },
            resolvers: resolver_reports(config, servers, &targets),
            targets,
            node: None,
            findings: Vec::new(),
            scoring_service: None,
            shared_cause: None,
            proxy: None,
        }
    }

    /// Adds what Kubernetes told; `healthy` then also requires no finding
    /// and a healthy scoring service.
    pub fn with_cluster(
        mut self,
        node: Option<NodeInfo>,
        findings: Vec<Finding>,
        scoring_service: Option<ScoringServiceReport>,
    ) -> RoundReport {
        self.node = node;
        self.findings = findings;
        self.scoring_service = scoring_service;
        self.healthy = self.summary.unhealthy == 0
            && self.findings.is_empty()
            && self.scoring_service.as_ref().is_none_or(|s| s.healthy);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_render_as_rfc3339() {
        assert_eq!(rfc3339_from_unix(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(
            rfc3339_from_unix(1_798_761_600).as_deref(),
            Some("2027-01-01T00:00:00Z")
        );
    }

    #[test]
    fn resolver_notes_say_localdns_its_upstream_and_tcp_53() {
        let mut r = ResolverReport {
            name: "pods".into(),
            servers: vec!["169.254.10.11:53".into()],
            up: true,
            queries: 2,
            queries_held: 0,
            lookups: 1,
            answered: 1,
            detail: None,
            localdns: true,
            upstream: Some("vnet".into()),
            tcp: Some(TcpCheckReport {
                server: "169.254.10.11:53".into(),
                name: "a.b".into(),
                ok: false,
                detail: "169.254.10.11:53: Connection refused \u{1b}[2J".into(),
            }),
            check_queries: 0,
        };
        assert_eq!(
            r.notes(),
            [
                "AKS LocalDNS (a cache; upstream: vnet)",
                "TCP 53 BLOCKED at 169.254.10.11:53 (169.254.10.11:53: Connection refused \\u{1b}[2J)"
            ]
        );
        r.localdns = false;
        r.upstream = None;
        r.tcp = None;
        assert!(r.notes().is_empty());
    }

    #[test]
    fn ms_keeps_microseconds() {
        assert_eq!(ms(Duration::from_micros(1500)), 1.5);
        assert_eq!(ms(Duration::from_secs(2)), 2000.0);
    }
}
