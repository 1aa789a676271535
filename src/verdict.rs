//! The verdict and diagnosis layer: observations in, verdicts out. No I/O and
//! no clock, so every rule is covered by table tests below.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use serde::Serialize;

use crate::azure::in_zone;
use crate::catalogue::{Facts, Lead, Text, render};
use crate::model::{Address, Cause, DnsVerdict, Expect, Reach, TcpOutcome, TlsOutcome};
use crate::observation::{
    ChainProblem, ConnectObservation, DnsObservation, DnsOutcome, HttpOutcome, ProxyProbeObservation, Rcode,
};
use crate::service::Service;
use crate::service::Target;

/// One resolver's answer for one target, judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsView {
    pub resolver: String,
    /// The server whose answer (or silence) this is.
    pub server: Option<SocketAddr>,
    pub verdict: DnsVerdict,
    pub privatelink: bool,
    pub rcode: Option<Rcode>,
    pub chain: Vec<String>,
    pub addresses: Vec<Address>,
    /// Why the verdict is `error`, or which server timed out.
    pub detail: Option<String>,
    /// The resolver's servers could not be reached at all.
    pub unreachable: bool,
    /// The resolver had no server to ask (its resolv.conf could not be used).
    pub no_servers: bool,
    /// A truncated UDP answer's TCP retry failed.
    pub tcp_failed: bool,
}

/// Azure DNS security policy's block sentinel (and any name under its
/// `.invalid` domain): a blocked name is a CNAME to it.
pub const POLICY_SENTINEL: &str = "blockpolicy.azuredns.invalid";

fn is_policy_sentinel(name: &str) -> bool {
    name == POLICY_SENTINEL || name == "azuredns.invalid" || name.ends_with(".azuredns.invalid")
}

/// The AKS LocalDNS range (169.254.10.10 for the node, .11 for pods).
pub fn is_localdns(server: SocketAddr) -> bool {
    match server.ip() {
        IpAddr::V4(v4) => v4.octets()[..3] == [169, 254, 10],
        IpAddr::V6(_) => false,
    }
}

/// Azure DNS (168.63.129.16).
pub fn is_azure_dns(server: SocketAddr) -> bool {
    server.ip() == crate::azure::AZURE_DNS
}

/// What the SOA of a target's privatelink zone says about who answers it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ZoneHolder {
    /// An Azure private DNS zone (`azureprivatedns.net`) linked to the VNet.
    AzurePrivate(String),
    /// Another server holds the zone itself (its SOA's primary server).
    Other(String),
    /// No SOA of the zone itself (a parent's, or none): nothing learned.
    #[default]
    Unknown,
}

/// Judges the SOA Azure DNS gave for `zone`.
pub fn zone_holder(zone: &str, soa: Option<&crate::observation::SoaRecord>) -> ZoneHolder {
    match soa {
        Some(r) if r.owner.eq_ignore_ascii_case(zone) => {
            let shown = format!("{} {}", r.mname, r.rname);
            if r.mname == "azureprivatedns.net" || r.rname == "azureprivatedns-host.microsoft.com" {
                ZoneHolder::AzurePrivate(shown)
            } else {
                ZoneHolder::Other(shown)
            }
        }
        _ => ZoneHolder::Unknown,
    }
}

/// One address of a target, judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectView {
    pub address: IpAddr,
    /// The service tag of a public address (`service_tags_file`).
    pub service_tag: Option<String>,
    pub reach: Reach,
    pub tls: Option<TlsOutcome>,
    /// What came back during the TLS handshake, when one was attempted.
    pub tls_exchange: Option<TlsExchange>,
    /// The service's answer was a network security perimeter's denial.
    pub perimeter: bool,
    pub detail: Option<String>,
}

/// What came back during a TLS handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlsExchange {
    /// Bytes the server sent.
    pub received: u64,
    /// After a timeout: bytes sent that the server's TCP never acknowledged.
    pub unacked: Option<u64>,
    /// How long the handshake took.
    pub after: Duration,
}

/// A target's path through the workloads' HTTP proxy (`proxy_probe`), judged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ProxyView {
    /// The proxy, credentials hidden.
    pub proxy: String,
    /// `ok`: the service answered through the proxy as it should.
    pub reach: Reach,
    /// The proxy's answer to CONNECT.
    pub connect_status: Option<u16>,
    /// The service's HTTP status through the tunnel.
    pub http_status: Option<u16>,
    /// The client address the service saw (Key Vault's `addr=`): the proxy's.
    pub seen_address: Option<String>,
    /// What went wrong, in a few words.
    pub detail: Option<String>,
}

/// The proxy path's observation, judged: the proxy's own answer first
/// (unreachable, 407 credentials, 403 its ACL, 502/503 it could not reach
/// the name), then the tunnel's TLS and HTTP as the direct probe judges them.
pub fn assess_proxy(service: Service, obs: &ProxyProbeObservation) -> ProxyView {
    let mut view = ProxyView {
        proxy: obs.proxy.clone(),
        reach: Reach::Ok,
        connect_status: obs.connect.as_ref().ok().map(|(s, _)| *s),
        http_status: None,
        seen_address: None,
        detail: None,
    };
    let (reach, detail) = match (obs.tcp, &obs.connect) {
        (TcpOutcome::Ok, Ok((200..=299, _))) => {
            let c = ConnectObservation {
                address: IpAddr::from([0, 0, 0, 0]),
                tcp: TcpOutcome::Ok,
                tcp_duration: Duration::ZERO,
                tcp_detail: None,
                tls: obs.tls.clone(),
                http: obs.http.clone(),
            };
            if let Some(HttpOutcome::Response(r)) = obs.http.as_ref().map(|h| &h.outcome) {
                view.http_status = Some(r.status);
                view.seen_address = crate::service::of(service).seen_address(r);
            }
            let v = assess_connect(service, &c);
            let detail = v.detail.map(|d| format!("the tunnel is open, then {d}"));
            (v.reach, detail)
        }
        (TcpOutcome::Ok, Ok((407, line))) => (
            Reach::Rejected,
            Some(format!(
                "the proxy asks for credentials ({line}): the workloads' proxy settings lack them"
            )),
        ),
        (TcpOutcome::Ok, Ok((403, line))) => (
            Reach::Rejected,
            Some(format!(
                "the proxy refused to connect to this name ({line}): its access rules do not allow it"
            )),
        ),
        (TcpOutcome::Ok, Ok((status @ 502..=504, line))) => (
            if *status == 504 {
                Reach::Timeout
            } else {
                Reach::Unreachable
            },
            Some(format!(
                "the proxy could not reach the name ({line}): from its own DNS view and network, the endpoint \
                 does not resolve or does not answer"
            )),
        ),
        (TcpOutcome::Ok, Ok((_, line))) => (
            Reach::HttpError,
            Some(format!("the proxy answered CONNECT with {line}")),
        ),
        (TcpOutcome::Ok, Err(why)) => (
            Reach::Timeout,
            Some(format!("the proxy gave no answer to CONNECT ({why})")),
        ),
        (tcp, _) => (
            if tcp == TcpOutcome::Timeout {
                Reach::Timeout
            } else {
                Reach::Unreachable
            },
            Some(format!(
                "the proxy itself does not answer ({})",
                obs.tcp_detail.clone().unwrap_or_else(|| tcp.to_string())
            )),
        ),
    };
    view.reach = reach;
    view.detail = detail;
    view
}

fn client_name(c: crate::proxy::Client) -> &'static str {
    match c {
        crate::proxy::Client::Go => "Go",
        crate::proxy::Client::Curl => "curl",
        crate::proxy::Client::Python => "Python",
    }
}

fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

impl Diagnosis {
    /// A private target that a workload's HTTP client would send to the
    /// proxy (`decisions`, one per client): a cause, unless the proxy path
    /// was probed and works (`via_proxy`). Public targets are what a proxy
    /// is for: nothing to say.
    pub fn proxied_private(
        &mut self,
        target: &Target,
        decisions: &[crate::proxy::Decision],
        via_proxy: Option<&ProxyView>,
    ) {
        let proxied: Vec<&crate::proxy::Decision> = decisions.iter().filter(|d| d.proxy.is_some()).collect();
        let Some(first) = proxied.first() else { return };
        if target.expect != Expect::Private || via_proxy.is_some_and(|v| v.reach == Reach::Ok) {
            return;
        }
        let names: Vec<String> = proxied.iter().map(|d| client_name(d.client).to_string()).collect();
        let direct: Vec<String> = decisions
            .iter()
            .filter_map(|d| {
                d.bypassed_by
                    .as_ref()
                    .map(|e| format!("{} connects directly (NO_PROXY entry '{e}')", client_name(d.client)))
            })
            .collect();
        let disagree = if direct.is_empty() {
            String::new()
        } else {
            format!("; {}: the clients disagree", and_list(&direct))
        };
        let facts = Facts::new()
            .with("fqdn", &target.fqdn)
            .with("proxy", first.proxy.clone().unwrap_or_default())
            .with("clients", and_list(&names))
            .with("disagree", disagree)
            .with("entry", crate::proxy::bypass_entry(&target.fqdn));
        let (text, facts) = match via_proxy {
            None => (Text::ProxyNotBypassed, facts),
            Some(v) => {
                let mut through = v.detail.clone().unwrap_or_else(|| v.reach.to_string());
                if let Some(addr) = &v.seen_address {
                    through.push_str(&format!(
                        " (the service saw the client address {addr}: the proxy's, not this node's)"
                    ));
                }
                (Text::ProxyPathFails, facts.with("through", through))
            }
        };
        self.add(Cause::ProxyNotBypassed, None, render(text, &facts));
    }
}

/// One cause that holds for a target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CauseFinding {
    pub cause: Cause,
    /// The resolver it was seen through; `None` for reachability causes.
    pub resolver: Option<String>,
    /// One line: what is wrong, why, and the fix.
    pub diagnosis: String,
}

/// The overall judgement of one target: every cause that holds, the primary
/// one first. Healthy when there is none.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Diagnosis {
    pub causes: Vec<CauseFinding>,
}

/// Said after every DNS cause of an `api-server` target with API Server VNet
/// Integration: who is hurt and who is not.
pub const VNET_INTEGRATION_NOTE: &str = "With API Server VNet Integration, nodes reach the API server by IP and \
    are unaffected; the AML inference router and other clients that resolve this name are.";

impl Diagnosis {
    /// The `api-server` target of a cluster with API Server VNet
    /// Integration: checks its answers against the `kubernetes` Service's
    /// endpoints (`endpoints`, when read), and says after each DNS cause that
    /// nodes are unaffected.
    pub fn vnet_integrated_api_server(&mut self, target: &Target, views: &[DnsView], endpoints: Option<&[IpAddr]>) {
        let elsewhere = endpoints.filter(|e| !e.is_empty()).and_then(|eps| {
            let v = views
                .iter()
                .find(|v| !v.addresses.is_empty() && !v.addresses.iter().any(|a| eps.contains(&a.ip)))?;
            let expected: Vec<String> = eps.iter().map(IpAddr::to_string).collect();
            let facts = Facts::new()
                .with("resolver", &v.resolver)
                .with("fqdn", &target.fqdn)
                .with("addresses", addr_list(&v.addresses))
                .with("expected", expected.join(", "))
                .with("zone", zone_of(target, views));
            Some((v.resolver.clone(), render(Text::ApiServerElsewhere, &facts)))
        });
        if let Some((resolver, text)) = elsewhere {
            self.add(Cause::UnexpectedIp, Some(&resolver), text);
        }
        for c in self
            .causes
            .iter_mut()
            .filter(|c| c.cause.layer() == crate::model::Layer::Dns)
        {
            if !c.diagnosis.ends_with('.') {
                c.diagnosis.push('.');
            }
            c.diagnosis.push(' ');
            c.diagnosis.push_str(VNET_INTEGRATION_NOTE);
        }
    }

    pub fn healthy(&self) -> bool {
        self.causes.is_empty()
    }

    /// The primary cause; `none` when healthy.
    pub fn cause(&self) -> Cause {
        self.causes.first().map_or(Cause::None, |c| c.cause)
    }

    /// The primary cause's explanation; `None` when healthy.
    pub fn text(&self) -> Option<&str> {
        self.causes.first().map(|c| c.diagnosis.as_str())
    }

    /// Adds a cause unless one with the same code is already listed.
    fn add(&mut self, cause: Cause, resolver: Option<&str>, diagnosis: String) {
        if !self.causes.iter().any(|c| c.cause == cause) {
            self.causes.push(CauseFinding {
                cause,
                resolver: resolver.map(str::to_string),
                diagnosis,
            });
        }
    }
}

/// True when `ip` lies in one of `ranges`.
pub fn is_private(ip: IpAddr, ranges: &[IpNet]) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    ranges.iter().any(|r| r.contains(&ip))
}

/// True when a chain name counts as passing through the target's private zone.
pub fn is_privatelink_name(target: &Target, name: &str) -> bool {
    match &target.privatelink_zone {
        Some(zone) => in_zone(name, zone),
        None => name.split('.').any(|l| l.eq_ignore_ascii_case("privatelink")),
    }
}

/// Judges one resolver's answer.
pub fn assess_dns(target: &Target, obs: &DnsObservation, ranges: &[IpNet]) -> DnsView {
    let mut view = DnsView {
        resolver: obs.resolver.clone(),
        server: obs.server,
        verdict: DnsVerdict::Error,
        privatelink: false,
        rcode: None,
        chain: Vec::new(),
        addresses: Vec::new(),
        detail: None,
        unreachable: false,
        no_servers: false,
        tcp_failed: false,
    };
    match &obs.outcome {
        DnsOutcome::TcpFailed(reason) => {
            view.verdict = DnsVerdict::Error;
            view.detail = Some(reason.clone());
            view.tcp_failed = true;
        }
        DnsOutcome::NoServers(reason) => {
            view.verdict = DnsVerdict::Error;
            view.detail = Some(reason.clone());
            view.no_servers = true;
        }
        DnsOutcome::Timeout => {
            view.verdict = DnsVerdict::Timeout;
            view.detail = obs.server.map(|s| format!("no answer from {s}"));
        }
        DnsOutcome::Failed(reason) => {
            view.verdict = DnsVerdict::Error;
            view.detail = Some(reason.clone());
        }
        DnsOutcome::Unreachable(reason) => {
            view.verdict = DnsVerdict::Error;
            view.detail = Some(reason.clone());
            view.unreachable = true;
        }
        DnsOutcome::Answer(ans) => {
            view.rcode = Some(ans.rcode);
            view.chain = ans.chain.clone();
            // The queried name counts too: a private AKS cluster's API server
            // name lies in `privatelink.<region>.azmk8s.io` itself.
            view.privatelink = std::iter::once(&target.fqdn)
                .chain(&ans.chain)
                .any(|n| is_privatelink_name(target, n));
            view.addresses = ans
                .addresses
                .iter()
                .map(|&ip| Address {
                    ip,
                    private: is_private(ip, ranges),
                })
                .collect();
            let sentinel = ans.chain.iter().position(|n| is_policy_sentinel(n));
            view.verdict = match (&ans.chain_problem, ans.rcode) {
                (Some(ChainProblem::Loop(at)), _) => {
                    view.detail = Some(format!("CNAME loop at {at}"));
                    DnsVerdict::Error
                }
                (Some(ChainProblem::TooLong(n)), _) => {
                    view.detail = Some(format!(
                        "CNAME chain longer than {} names ({n}+)",
                        crate::observation::MAX_CHAIN
                    ));
                    DnsVerdict::Error
                }
                // Whatever the rcode: the block answer is NOERROR or NXDOMAIN
                // depending on who chased the sentinel.
                (None, _) if let Some(at) = sentinel => {
                    let blocked = at
                        .checked_sub(1)
                        .map_or(target.fqdn.as_str(), |i| ans.chain[i].as_str());
                    view.detail = Some(blocked.to_string());
                    DnsVerdict::Blocked
                }
                (None, Rcode::NxDomain) => DnsVerdict::Nxdomain,
                (None, Rcode::ServFail) => DnsVerdict::Servfail,
                (None, Rcode::Refused) => DnsVerdict::Refused,
                (None, Rcode::NoError) => classify_addresses(&view.addresses, &target.expected_ips),
                (None, other) => {
                    view.detail = Some(format!("response code {}", other.as_string()));
                    DnsVerdict::Error
                }
            };
        }
    }
    view
}

fn classify_addresses(addrs: &[Address], expected: &[IpAddr]) -> DnsVerdict {
    if addrs.is_empty() {
        return DnsVerdict::Nodata;
    }
    let private = addrs.iter().filter(|a| a.private).count();
    if private == addrs.len() {
        if !expected.is_empty() && addrs.iter().any(|a| !expected.contains(&a.ip)) {
            DnsVerdict::UnexpectedIp
        } else {
            DnsVerdict::Private
        }
    } else if private == 0 {
        DnsVerdict::Public
    } else {
        DnsVerdict::Mixed
    }
}

/// Whether a verdict satisfies the target's expectation.
pub fn meets(expect: Expect, verdict: DnsVerdict) -> bool {
    match expect {
        Expect::Private => verdict == DnsVerdict::Private,
        Expect::Public => verdict == DnsVerdict::Public,
        Expect::Any => matches!(verdict, DnsVerdict::Private | DnsVerdict::Public | DnsVerdict::Mixed),
    }
}

/// Judges what happened at one address.
pub fn assess_connect(service: Service, obs: &ConnectObservation) -> ConnectView {
    let mut view = ConnectView {
        address: obs.address,
        service_tag: None,
        reach: Reach::Ok,
        tls: obs.tls.as_ref().map(|t| t.outcome),
        tls_exchange: obs.tls.as_ref().map(|t| TlsExchange {
            received: t.received,
            unacked: t.unacked,
            after: t.duration,
        }),
        perimeter: false,
        detail: None,
    };
    let (reach, detail) = match obs.tcp {
        TcpOutcome::Refused => (Reach::Refused, obs.tcp_detail.clone()),
        TcpOutcome::Timeout => (Reach::Timeout, obs.tcp_detail.clone()),
        TcpOutcome::Unreachable | TcpOutcome::Error => (Reach::Unreachable, obs.tcp_detail.clone()),
        TcpOutcome::Ok => match &obs.tls {
            None => (Reach::TlsError, Some("no TLS handshake was attempted".into())),
            Some(tls) if tls.outcome != TlsOutcome::Ok => (Reach::TlsError, tls.detail.clone()),
            Some(_) => match obs.http.as_ref().map(|h| &h.outcome) {
                None => (Reach::HttpError, Some("no HTTP request was made".into())),
                Some(HttpOutcome::Timeout) => (
                    Reach::HttpError,
                    Some("no complete HTTP response header in time".into()),
                ),
                Some(HttpOutcome::Failed(e)) => (Reach::HttpError, Some(e.clone())),
                Some(HttpOutcome::Response(r)) => {
                    view.perimeter = crate::service::of(service).perimeter_denied(r);
                    crate::service::of(service).judge(r)
                }
            },
        },
    };
    view.reach = reach;
    view.detail = detail;
    view
}

/// The worst reach over a target's addresses; `skipped` when there are none.
pub fn worst_reach(views: &[ConnectView]) -> Reach {
    views.iter().map(|v| v.reach).max().unwrap_or(Reach::Skipped)
}

fn addr_list(addrs: &[Address]) -> String {
    if addrs.is_empty() {
        return "no address".into();
    }
    addrs.iter().map(|a| a.ip.to_string()).collect::<Vec<_>>().join(", ")
}

/// The target's privatelink zone; for custom targets, the zone of the first
/// `privatelink` name the answers passed through.
fn zone_of<'a>(target: &Target, views: impl IntoIterator<Item = &'a DnsView>) -> String {
    if let Some(z) = &target.privatelink_zone {
        return z.clone();
    }
    crate::azure::privatelink_zone_of(views.into_iter().flat_map(|v| v.chain.iter().map(String::as_str)))
        .unwrap_or_else(|| "the privatelink zone".into())
}

/// The public zone a custom DNS server must forward (not the privatelink one).
fn forward_zone(target: &Target) -> String {
    match &target.privatelink_zone {
        Some(z) => crate::azure::public_zone(z).to_string(),
        None => target
            .fqdn
            .split_once('.')
            .map(|x| x.1)
            .unwrap_or(&target.fqdn)
            .to_string(),
    }
}

fn chain_text(fqdn: &str, v: &DnsView) -> String {
    let mut s = fqdn.to_string();
    for c in &v.chain {
        s.push_str(" -> ");
        s.push_str(c);
    }
    s
}

/// Inputs to the diagnosis besides the DNS views.
pub struct ReachContext<'a> {
    pub reach: Reach,
    pub connects: &'a [ConnectView],
    pub timeout: Duration,
    /// The addresses connected to came from a resolver whose answer met the
    /// target's expectation. A public endpoint that rejects a private target's
    /// traffic is a consequence of the DNS cause, not a cause of its own.
    pub expected_addresses: bool,
    /// The resolver whose addresses were tried, when there were any.
    pub via: Option<&'a str>,
    /// Public answers in no range of the target's service tags, and those
    /// tags' services (`service_tags_file`); empty when not checked.
    pub outside_tag: Option<(Vec<IpAddr>, &'a [&'a str])>,
    /// What the round tells about the DNS paths.
    pub dns: DnsContext<'a>,
}

/// What the whole round tells about a target's DNS answers.
#[derive(Clone, Debug, Default)]
pub struct DnsContext<'a> {
    /// Who answers the target's privatelink zone, by its SOA from Azure DNS
    /// (`Unknown` when it was not asked).
    pub zone_holder: ZoneHolder,
    /// Azure DNS answered usably for other names this round: a SERVFAIL of
    /// its for this name points at a DNS security policy first.
    pub azure_answers_others: bool,
    /// Per resolver (configuration order): the resolver it forwards to, when
    /// it is a cache in front of one (`upstream`).
    pub upstreams: &'a [Option<usize>],
}

/// A verdict that says the resolver did not answer usably: an error rcode, an
/// error, or silence. Such a resolver is diagnosed as such, never compared.
fn no_usable_answer(v: &DnsView) -> bool {
    v.unreachable
        || matches!(
            v.verdict,
            DnsVerdict::Servfail | DnsVerdict::Refused | DnsVerdict::Timeout | DnsVerdict::Error
        )
}

/// Names every cause of an unhealthy target and says how to fix each.
///
/// Order, primary first: the DNS causes of each failing resolver
/// (`connect_via` first, then in configuration order), then the reachability
/// cause when the addresses tried were the expected ones. A resolver with no
/// usable answer is `dns_unreachable` or `dns_error` whatever the others say;
/// only resolvers that answered are compared (`dns_path_not_forwarding`).
pub fn diagnose(target: &Target, views: &[DnsView], connect_via: usize, rc: &ReachContext<'_>) -> Diagnosis {
    let expect = target.expect;
    let mut d = Diagnosis::default();
    let good = views.iter().find(|v| meets(expect, v.verdict));
    let order = views.get(connect_via).into_iter().chain(
        views
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != connect_via)
            .map(|(_, v)| v),
    );
    for bad in order.filter(|v| !meets(expect, v.verdict)) {
        let (text, facts) = dns_cause(target, views, bad, good, rc);
        d.add(text.cause(), Some(&bad.resolver), render(text, &facts));
    }
    if let Some((text, facts)) = stale_cache(target, views) {
        d.add(text.cause(), facts.get("resolver"), render(text, &facts));
    }
    if let Some((addrs, services)) = &rc.outside_tag
        && !addrs.is_empty()
    {
        let addresses: Vec<String> = addrs.iter().map(IpAddr::to_string).collect();
        let facts = Facts::new()
            .with("fqdn", &target.fqdn)
            .with("addresses", addresses.join(", "))
            .with("services", services.join(" or "));
        d.add(Cause::OutsideServiceTag, None, render(Text::OutsideServiceTag, &facts));
    }
    if (rc.expected_addresses || d.causes.is_empty())
        && let Some((text, facts)) = reach_cause(target, views, rc)
    {
        let lead = match (d.causes.is_empty(), rc.via) {
            (true, _) if matches!(rc.reach, Reach::Timeout | Reach::Unreachable) => Lead::DnsRight,
            (true, _) | (false, None) => Lead::Plain,
            (false, Some(_)) => Lead::Through,
        };
        d.add(
            text.cause(),
            None,
            lead.wrap(render(text, &facts), rc.via.unwrap_or("")),
        );
    } else if let Some(c) = rc.connects.iter().find(|c| c.perimeter) {
        let facts = Facts::new()
            .with("fqdn", &target.fqdn)
            .with("at", c.address)
            .with("detail", c.detail.clone().unwrap_or_default());
        d.add(
            Cause::PerimeterDenied,
            None,
            Lead::Through.wrap(render(Text::PerimeterBehindDns, &facts), rc.via.unwrap_or("")),
        );
    }
    d
}

/// The text a non-`ok` reach points at, with the facts of the case.
fn reach_cause(target: &Target, views: &[DnsView], rc: &ReachContext<'_>) -> Option<(Text, Facts)> {
    let worst = rc.connects.iter().max_by_key(|c| c.reach);
    let at = worst.map(|c| c.address.to_string()).unwrap_or_default();
    let detail = worst.and_then(|c| c.detail.clone()).unwrap_or_default();
    let facts = Facts::new()
        .with("fqdn", &target.fqdn)
        .with("port", target.port)
        .with("at", &at)
        .with("detail", &detail);
    let text = match rc.reach {
        Reach::Ok => return None,
        Reach::Timeout => match worst.and_then(|c| c.service_tag.as_deref()) {
            Some(tag) => return Some((Text::TcpTimeoutTagged, facts.with("tag", tag))),
            None => Text::TcpTimeout,
        },
        Reach::Unreachable => Text::NoRoute,
        Reach::Refused => return Some((Text::TcpRefused, facts.with("zone", zone_of(target, views)))),
        Reach::TlsError => match worst.and_then(|c| c.tls) {
            Some(TlsOutcome::NameMismatch) => Text::TlsNameMismatch,
            Some(TlsOutcome::UnknownIssuer) => Text::TlsUnknownIssuer,
            Some(TlsOutcome::Expired) => Text::TlsExpired,
            Some(TlsOutcome::Timeout) => match worst.and_then(|c| silent_private(c, views)) {
                Some(x) => return Some((Text::AsymmetricRoute, facts.with("silence", silence(&x)))),
                None => Text::TlsTimeout,
            },
            _ => Text::TlsFailed,
        },
        Reach::HttpError | Reach::Rejected if worst.is_some_and(|c| c.perimeter) => Text::PerimeterDenied,
        Reach::HttpError | Reach::Rejected => {
            let says = crate::service::of(target.service).rejected(&target.fqdn, &at, &detail);
            return Some((Text::HttpRejected, facts.with("service_says", says)));
        }
        Reach::Skipped => Text::NoAddress,
    };
    Some((text, facts))
}

/// A handshake with a private address that got not one byte back, and
/// whose ClientHello the endpoint's TCP did not acknowledge (or that could
/// not be told): a flow dropped after its TCP handshake, an asymmetric route
/// through a stateful device. A public address that is silent stays a TLS
/// problem, and so do a private one that said anything and one whose TCP
/// acknowledged the ClientHello (a server that accepts and stalls).
fn silent_private(c: &ConnectView, views: &[DnsView]) -> Option<TlsExchange> {
    let private = views
        .iter()
        .flat_map(|v| &v.addresses)
        .any(|a| a.ip == c.address && a.private);
    c.tls_exchange
        .filter(|x| private && x.received == 0 && x.unacked != Some(0))
}

/// "0 bytes came back in 2s after the TLS ClientHello, and ...".
fn silence(x: &TlsExchange) -> String {
    let ms = u64::try_from(x.after.as_millis()).unwrap_or(u64::MAX);
    let after = humantime::format_duration(Duration::from_millis(ms));
    let mut text = format!("{} bytes came back in {after} after the TLS ClientHello", x.received);
    if let Some(n) = x.unacked {
        text.push_str(&format!(", whose {n} bytes the endpoint's TCP never acknowledged"));
    }
    text
}

/// The port a resolver's server listens on, for messages (53 unless told).
fn dns_port(v: &DnsView) -> u16 {
    v.server.map_or(53, |s| s.port())
}

/// The DNS text of one failing resolver; `good` is a resolver whose answer
/// met the expectation, if any.
fn dns_cause(
    target: &Target,
    views: &[DnsView],
    bad: &DnsView,
    good: Option<&DnsView>,
    rc: &ReachContext<'_>,
) -> (Text, Facts) {
    let facts = Facts::new()
        .with("resolver", &bad.resolver)
        .with("fqdn", &target.fqdn)
        .with("verdict", bad.verdict);
    if bad.verdict == DnsVerdict::Blocked {
        let blocked = bad.detail.clone().unwrap_or_else(|| target.fqdn.clone());
        return (
            Text::PolicyBlocked,
            facts
                .with("chain", chain_text(&target.fqdn, bad))
                .with("blocked", blocked),
        );
    }
    if let Some(cache) = served_from_cache(views, bad, rc.dns.upstreams) {
        let facts = facts
            .with("good", &cache.resolver)
            .with("why", bad.detail.clone().unwrap_or_else(|| bad.verdict.to_string()))
            .with(
                "server",
                bad.server.map_or_else(|| "its servers".to_string(), |s| s.to_string()),
            );
        return (Text::ServingStale, facts);
    }
    if no_usable_answer(bad) {
        let policy = rc.dns.azure_answers_others
            && bad.verdict == DnsVerdict::Servfail
            && views
                .iter()
                .any(|v| v.server.is_some_and(is_azure_dns) && v.verdict == DnsVerdict::Servfail);
        no_answer_cause(bad, rc.timeout, facts, policy)
    } else {
        wrong_answer_cause(target, bad, good, facts, &rc.dns.zone_holder)
    }
}

/// The LocalDNS resolver that still answers usably while `bad`, its
/// upstream, gives no answer at all: the cache is what keeps the pod path up.
fn served_from_cache<'a>(views: &'a [DnsView], bad: &DnsView, upstreams: &[Option<usize>]) -> Option<&'a DnsView> {
    let silent = bad.unreachable || matches!(bad.verdict, DnsVerdict::Timeout);
    let at = views.iter().position(|v| v.resolver == bad.resolver)?;
    views.iter().enumerate().find_map(|(i, v)| {
        let answers = v.rcode.is_some_and(Rcode::usable) && v.verdict != DnsVerdict::Blocked;
        (silent && upstreams.get(i) == Some(&Some(at)) && answers && v.server.is_some_and(is_localdns)).then_some(v)
    })
}

/// AKS LocalDNS answering private addresses none of which Azure DNS (or its
/// upstream) answers, both private: a cache holding a replaced endpoint.
fn stale_cache(target: &Target, views: &[DnsView]) -> Option<(Text, Facts)> {
    let private = |v: &&DnsView| v.verdict == DnsVerdict::Private;
    let cache = views
        .iter()
        .filter(private)
        .find(|v| v.server.is_some_and(is_localdns))?;
    let reference = views
        .iter()
        .filter(private)
        .find(|v| v.server.is_some_and(|s| !is_localdns(s)))?;
    let disjoint = !cache
        .addresses
        .iter()
        .any(|a| reference.addresses.iter().any(|b| b.ip == a.ip));
    disjoint.then(|| {
        let facts = Facts::new()
            .with("resolver", &cache.resolver)
            .with("server", cache.server.map(|s| s.to_string()).unwrap_or_default())
            .with("fqdn", &target.fqdn)
            .with("addresses", addr_list(&cache.addresses))
            .with("good", &reference.resolver)
            .with("good_addresses", addr_list(&reference.addresses));
        (Text::StaleCache, facts)
    })
}

/// A resolver that did not answer usably: silence, a closed port, an error
/// rcode or an unusable answer. What other resolvers say does not matter.
fn no_answer_cause(bad: &DnsView, timeout: Duration, facts: Facts, policy: bool) -> (Text, Facts) {
    let facts = facts.with("port", dns_port(bad)).with(
        "server",
        bad.server.map_or_else(|| "its servers".to_string(), |s| s.to_string()),
    );
    if bad.tcp_failed {
        return (
            Text::DnsTcpFailed,
            facts.with("why", bad.detail.clone().unwrap_or_default()),
        );
    }
    if bad.no_servers {
        return (
            Text::ResolverWithoutServers,
            facts.with("why", bad.detail.clone().unwrap_or_default()),
        );
    }
    if bad.unreachable {
        return (
            Text::DnsServerUnreachable,
            facts.with("why", bad.detail.clone().unwrap_or_default()),
        );
    }
    if bad.verdict == DnsVerdict::Timeout {
        return (
            Text::DnsTimeout,
            facts.with("timeout", humantime::format_duration(timeout)),
        );
    }
    let what = match (bad.verdict, &bad.rcode) {
        (DnsVerdict::Error, _) => bad.detail.clone().unwrap_or_else(|| "an unusable answer".into()),
        (_, Some(rcode)) => rcode.as_string(),
        (v, None) => v.to_string(),
    };
    let text = match bad.verdict {
        DnsVerdict::Refused => Text::DnsRefused,
        DnsVerdict::Servfail if policy => Text::DnsServfailPolicy,
        DnsVerdict::Servfail => Text::DnsServfail,
        _ => Text::DnsUnusable,
    };
    (text, facts.with("what", what))
}

/// A resolver that answered, but not as the target expects: compared with a
/// resolver that answered as expected, or judged on its own.
fn wrong_answer_cause(
    target: &Target,
    bad: &DnsView,
    good: Option<&DnsView>,
    facts: Facts,
    holder: &ZoneHolder,
) -> (Text, Facts) {
    let mut facts = facts
        .with("zone", zone_of(target, std::iter::once(bad).chain(good)))
        .with("public_zone", forward_zone(target))
        .with("chain", chain_text(&target.fqdn, bad))
        .with("addresses", addr_list(&bad.addresses));
    if let (Expect::Private, Some(good)) = (target.expect, good) {
        let facts = facts
            .with("good", &good.resolver)
            .with("good_addresses", addr_list(&good.addresses));
        return (Text::PathNotForwarding, facts);
    }
    let text = match (target.expect, bad.verdict, holder) {
        (Expect::Private, DnsVerdict::Public, ZoneHolder::AzurePrivate(soa)) if bad.privatelink => {
            facts = facts.with("soa", soa);
            Text::RecordMissingFallback
        }
        (Expect::Private, DnsVerdict::Public, ZoneHolder::Other(soa)) if bad.privatelink => {
            facts = facts
                .with("soa", soa)
                .with("answer", "public ".to_string() + &addr_list(&bad.addresses));
            Text::ZoneForwarded
        }
        (_, DnsVerdict::Nxdomain | DnsVerdict::Nodata, ZoneHolder::Other(soa)) if bad.privatelink => {
            let answer = if bad.verdict == DnsVerdict::Nxdomain {
                "NXDOMAIN"
            } else {
                "no address"
            };
            facts = facts.with("soa", soa).with("answer", answer);
            Text::ZoneForwarded
        }
        _ => return wrong_answer_plain(target, bad, facts),
    };
    (text, facts)
}

/// [`wrong_answer_cause`] when the zone's SOA changes nothing.
fn wrong_answer_plain(target: &Target, bad: &DnsView, mut facts: Facts) -> (Text, Facts) {
    let text = match (target.expect, bad.verdict) {
        (Expect::Private, DnsVerdict::Public) if bad.privatelink => Text::ZoneNotLinked,
        (Expect::Private, DnsVerdict::Public) => Text::NoPrivateEndpoint,
        (_, DnsVerdict::Nxdomain | DnsVerdict::Nodata) if bad.privatelink => {
            let answer = if bad.verdict == DnsVerdict::Nxdomain {
                "NXDOMAIN"
            } else {
                "no address"
            };
            facts = facts.with("answer", answer);
            Text::RecordMissing
        }
        (_, DnsVerdict::Nxdomain) => Text::NameNotFound,
        (_, DnsVerdict::Mixed) => Text::MixedAnswers,
        (_, DnsVerdict::UnexpectedIp) => {
            let expected: Vec<String> = target.expected_ips.iter().map(|i| i.to_string()).collect();
            facts = facts.with("expected", expected.join(", "));
            Text::UnexpectedIp
        }
        (Expect::Public, DnsVerdict::Private) => Text::UnexpectedPrivate,
        _ => Text::DnsOther,
    };
    (text, facts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure;
    use crate::model::TlsOutcome;
    use crate::observation::{DnsAnswer, HttpObservation, HttpResponse, TlsObservation};

    /// Reachability with no connection observations.
    fn ctx(reach: Reach, expected_addresses: bool, via: Option<&'static str>) -> ReachContext<'static> {
        ReachContext {
            reach,
            connects: &[],
            timeout: Duration::from_secs(5),
            expected_addresses,
            via,
            outside_tag: None,
            dns: DnsContext::default(),
        }
    }

    fn ranges() -> Vec<IpNet> {
        crate::config::default_private_ranges()
    }

    fn acr() -> Target {
        crate::service::acr::login(azure::Cloud::Public, "reg01")
    }

    fn answer(rcode: Rcode, chain: &[&str], addrs: &[&str]) -> DnsOutcome {
        DnsOutcome::Answer(DnsAnswer {
            rcode,
            chain: chain.iter().map(|s| s.to_string()).collect(),
            addresses: addrs.iter().map(|s| s.parse().unwrap()).collect(),
            omitted: 0,
            chain_problem: None,
            negative_soa: false,
        })
    }

    fn obs(resolver: &str, outcome: DnsOutcome) -> DnsObservation {
        DnsObservation {
            resolver: resolver.into(),
            server: Some("10.0.0.10:53".parse().unwrap()),
            outcome,
            duration: Duration::from_millis(3),
            tcp_fallback: false,
            queries: 0,
        }
    }

    const PL: &str = "reg01.privatelink.azurecr.io";

    #[test]
    fn dns_verdict_table() {
        let t = acr();
        let cases: Vec<(DnsOutcome, DnsVerdict, bool)> = vec![
            (answer(Rcode::NoError, &[PL], &["10.1.2.3"]), DnsVerdict::Private, true),
            (answer(Rcode::NoError, &[PL], &["20.1.2.3"]), DnsVerdict::Public, true),
            (answer(Rcode::NoError, &[], &["20.1.2.3"]), DnsVerdict::Public, false),
            (
                answer(Rcode::NoError, &[PL], &["10.1.2.3", "20.1.2.3"]),
                DnsVerdict::Mixed,
                true,
            ),
            (answer(Rcode::NxDomain, &[PL], &[]), DnsVerdict::Nxdomain, true),
            (answer(Rcode::NoError, &[PL], &[]), DnsVerdict::Nodata, true),
            (answer(Rcode::ServFail, &[], &[]), DnsVerdict::Servfail, false),
            (answer(Rcode::Refused, &[], &[]), DnsVerdict::Refused, false),
            (answer(Rcode::NotImp, &[], &[]), DnsVerdict::Error, false),
            (DnsOutcome::Timeout, DnsVerdict::Timeout, false),
            (DnsOutcome::Failed("boom".into()), DnsVerdict::Error, false),
            (
                answer(Rcode::NoError, &["fd00::1.example"], &["fd00::1"]),
                DnsVerdict::Private,
                false,
            ),
            // A name that merely contains "privatelink" outside the zone does not count.
            (
                answer(Rcode::NoError, &["reg01.privatelink.example.com"], &["10.0.0.1"]),
                DnsVerdict::Private,
                false,
            ),
            // IPv4-mapped IPv6 is judged as IPv4.
            (
                answer(Rcode::NoError, &[PL], &["::ffff:10.0.0.9"]),
                DnsVerdict::Private,
                true,
            ),
        ];
        for (i, (outcome, verdict, pl)) in cases.into_iter().enumerate() {
            let v = assess_dns(&t, &obs("system", outcome), &ranges());
            let case = format!("case {i}: {:?}", v.addresses);
            assert_eq!(v.verdict, verdict, "{case}: {v:?}");
            assert_eq!(v.privatelink, pl, "{case}: privatelink of {:?}", v.chain);
        }
    }

    #[test]
    fn chain_problems_are_errors_with_reasons() {
        let t = acr();
        let o = DnsOutcome::Answer(DnsAnswer {
            rcode: Rcode::NoError,
            chain: vec!["a".into()],
            addresses: vec![],
            omitted: 0,
            chain_problem: Some(ChainProblem::Loop("a".into())),
            negative_soa: false,
        });
        let v = assess_dns(&t, &obs("s", o), &ranges());
        assert_eq!(v.verdict, DnsVerdict::Error);
        assert!(v.detail.unwrap().contains("loop"));
    }

    #[test]
    fn expected_ips_turn_other_private_addresses_into_unexpected() {
        let mut t = acr();
        t.expected_ips = vec!["10.1.2.3".parse().unwrap()];
        let ok = assess_dns(&t, &obs("s", answer(Rcode::NoError, &[PL], &["10.1.2.3"])), &ranges());
        assert_eq!(ok.verdict, DnsVerdict::Private);
        let bad = assess_dns(&t, &obs("s", answer(Rcode::NoError, &[PL], &["10.9.9.9"])), &ranges());
        assert_eq!(bad.verdict, DnsVerdict::UnexpectedIp);
    }

    #[test]
    fn custom_targets_accept_any_privatelink_label() {
        let t = Target {
            name: "x".into(),
            fqdn: "other.blob.core.windows.net".into(),
            service: Service::Custom,
            port: 443,
            expect: Expect::Private,
            expected_ips: vec![],
            privatelink_zone: None,
            tag_services: &[],
        };
        let v = assess_dns(
            &t,
            &obs(
                "s",
                answer(
                    Rcode::NoError,
                    &["other.privatelink.blob.core.windows.net"],
                    &["10.0.0.4"],
                ),
            ),
            &ranges(),
        );
        assert!(v.privatelink);
    }

    #[test]
    fn meets_table() {
        use DnsVerdict::*;
        for v in DnsVerdict::ALL {
            assert_eq!(meets(Expect::Private, *v), *v == Private, "{v}");
            assert_eq!(meets(Expect::Public, *v), *v == Public, "{v}");
            assert_eq!(meets(Expect::Any, *v), matches!(v, Private | Public | Mixed), "{v}");
        }
    }

    fn resp(status: u16, www: Option<&str>, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: www
                .map(|v| ("www-authenticate".to_string(), v.to_string()))
                .into_iter()
                .collect(),
            body: body.into(),
        }
    }

    #[test]
    fn http_judgement_table() {
        let bearer = Some(r#"Bearer realm="https://reg01.azurecr.io/oauth2/token",service="reg01.azurecr.io""#);
        let cases = vec![
            (Service::Acr, resp(401, bearer, ""), Reach::Ok),
            (Service::Acr, resp(401, Some("Basic realm=x"), ""), Reach::HttpError),
            (
                Service::Acr,
                resp(403, None, "denied: client with IP '20.1.1.1' is not allowed access."),
                Reach::Rejected,
            ),
            (Service::Acr, resp(502, None, ""), Reach::HttpError),
            (Service::Keyvault, resp(200, None, ""), Reach::Ok),
            (Service::Keyvault, resp(401, None, ""), Reach::Ok),
            (
                Service::Keyvault,
                resp(403, None, r#"{"error":{"innererror":{"code":"ForbiddenByFirewall"}}}"#),
                Reach::Rejected,
            ),
            (Service::Keyvault, resp(500, None, ""), Reach::HttpError),
            (
                Service::Storage,
                resp(401, None, "NoAuthenticationInformation"),
                Reach::Ok,
            ),
            (Service::Storage, resp(404, None, ""), Reach::Ok),
            (Service::Storage, resp(400, None, ""), Reach::Ok),
            (
                Service::Storage,
                resp(403, None, "AuthorizationFailure"),
                Reach::Rejected,
            ),
            (Service::Storage, resp(503, None, ""), Reach::HttpError),
            (Service::Workspace, resp(401, None, ""), Reach::Ok),
            (Service::Workspace, resp(404, None, ""), Reach::Ok),
            (
                Service::Workspace,
                resp(
                    502,
                    None,
                    "Access to workspace was denied based on workspace private link configuration.",
                ),
                Reach::Rejected,
            ),
            (
                Service::Workspace,
                resp(
                    403,
                    None,
                    "...none of the workspaces/registries are accessible from outside of the designated private link",
                ),
                Reach::Rejected,
            ),
            (Service::Custom, resp(500, None, ""), Reach::Ok),
        ];
        for (i, (svc, r, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                crate::service::of(svc).judge(&r).0,
                want,
                "case {i}: {svc} {}",
                r.status
            );
        }
    }

    fn connect_obs(tcp: TcpOutcome, tls: Option<TlsOutcome>, http: Option<HttpOutcome>) -> ConnectObservation {
        ConnectObservation {
            address: "10.1.2.3".parse().unwrap(),
            tcp,
            tcp_duration: Duration::from_millis(1),
            tcp_detail: None,
            tls: tls.map(|o| TlsObservation {
                outcome: o,
                duration: Duration::from_millis(1),
                detail: None,
                cert_not_after: None,
                version: None,
                received: 0,
                unacked: None,
            }),
            http: http.map(|outcome| HttpObservation {
                outcome,
                duration: Duration::from_millis(1),
            }),
        }
    }

    #[test]
    fn connect_table() {
        let ok_http = Some(HttpOutcome::Response(resp(401, Some("Bearer realm=\"x\""), "")));
        let cases = vec![
            (connect_obs(TcpOutcome::Refused, None, None), Reach::Refused),
            (connect_obs(TcpOutcome::Timeout, None, None), Reach::Timeout),
            (connect_obs(TcpOutcome::Unreachable, None, None), Reach::Unreachable),
            (
                connect_obs(TcpOutcome::Ok, Some(TlsOutcome::NameMismatch), None),
                Reach::TlsError,
            ),
            (
                connect_obs(TcpOutcome::Ok, Some(TlsOutcome::Ok), Some(HttpOutcome::Timeout)),
                Reach::HttpError,
            ),
            (connect_obs(TcpOutcome::Ok, Some(TlsOutcome::Ok), ok_http), Reach::Ok),
        ];
        for (i, (o, want)) in cases.into_iter().enumerate() {
            let case = format!(
                "case {i}: tcp {} tls {:?} http {:?}",
                o.tcp,
                o.tls.as_ref().map(|t| t.outcome),
                o.http
            );
            assert_eq!(assess_connect(Service::Acr, &o).reach, want, "{case}");
        }
    }

    #[test]
    fn worst_reach_picks_the_most_severe() {
        let v = |r| ConnectView {
            service_tag: None,
            address: "10.0.0.1".parse().unwrap(),
            reach: r,
            tls: None,
            tls_exchange: None,
            perimeter: false,
            detail: None,
        };
        assert_eq!(worst_reach(&[]), Reach::Skipped);
        assert_eq!(
            worst_reach(&[v(Reach::Ok), v(Reach::Timeout), v(Reach::Refused)]),
            Reach::Timeout
        );
        assert_eq!(worst_reach(&[v(Reach::Ok), v(Reach::TlsError)]), Reach::TlsError);
    }

    fn view(resolver: &str, verdict: DnsVerdict, privatelink: bool) -> DnsView {
        DnsView {
            resolver: resolver.into(),
            server: Some("10.0.0.10:53".parse().unwrap()),
            verdict,
            privatelink,
            rcode: Some(Rcode::NoError),
            chain: if privatelink { vec![PL.into()] } else { vec![] },
            addresses: vec![],
            detail: None,
            unreachable: false,
            no_servers: false,
            tcp_failed: false,
        }
    }

    fn cause_of(t: &Target, views: &[DnsView], via: usize, reach: Reach, tls: Option<TlsOutcome>) -> Cause {
        let connects = [ConnectView {
            service_tag: None,
            address: "10.1.2.3".parse().unwrap(),
            reach,
            tls,
            // A server that answered something: the TLS texts.
            tls_exchange: tls.map(|_| TlsExchange {
                received: 517,
                unacked: Some(0),
                after: Duration::from_millis(30),
            }),
            perimeter: false,
            detail: None,
        }];
        let rc = ReachContext {
            reach,
            connects: &connects,
            timeout: Duration::from_secs(5),
            expected_addresses: true,
            via: views.get(via).map(|v| v.resolver.as_str()),
            outside_tag: None,
            dns: DnsContext::default(),
        };
        let d = diagnose(t, views, via, &rc);
        assert_eq!(d.healthy(), d.cause() == Cause::None);
        assert_eq!(d.text().is_some(), !d.healthy());
        for c in &d.causes {
            assert_no_hole_left(&c.diagnosis);
        }
        d.cause()
    }

    /// A TLS handshake that got nothing back: a private address's silence is
    /// an asymmetric route; a public address's, or a private address that
    /// said anything, or a failure that is not a timeout stay TLS problems.
    #[test]
    fn silence_after_the_handshake_table() {
        let t = acr();
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        // (private address, outcome, bytes back, bytes never acknowledged, cause)
        type Case = (bool, TlsOutcome, u64, Option<u64>, Cause);
        let cases: Vec<Case> = vec![
            (true, TlsOutcome::Timeout, 0, Some(517), Cause::AsymmetricRoute),
            // The socket's send queue could not be read: the silence decides.
            (true, TlsOutcome::Timeout, 0, None, Cause::AsymmetricRoute),
            // The endpoint's TCP took the ClientHello: its program is silent.
            (true, TlsOutcome::Timeout, 0, Some(0), Cause::TlsMismatch),
            (false, TlsOutcome::Timeout, 0, Some(517), Cause::TlsMismatch),
            (true, TlsOutcome::Timeout, 7, Some(517), Cause::TlsMismatch),
            (true, TlsOutcome::Failed, 0, None, Cause::TlsMismatch),
            (true, TlsOutcome::UnknownIssuer, 0, None, Cause::TlsMismatch),
        ];
        for (i, (private, tls, received, unacked, want)) in cases.into_iter().enumerate() {
            let mut v = view(
                "vnet",
                if private {
                    DnsVerdict::Private
                } else {
                    DnsVerdict::Public
                },
                private,
            );
            v.addresses = vec![Address { ip, private }];
            let connects = [ConnectView {
                service_tag: None,
                address: ip,
                reach: Reach::TlsError,
                tls: Some(tls),
                tls_exchange: Some(TlsExchange {
                    received,
                    unacked,
                    after: Duration::from_millis(5004),
                }),
                perimeter: false,
                detail: None,
            }];
            let rc = ReachContext {
                reach: Reach::TlsError,
                connects: &connects,
                timeout: Duration::from_secs(5),
                expected_addresses: true,
                via: Some("vnet"),
                outside_tag: None,
                dns: DnsContext::default(),
            };
            let mut t = t.clone();
            t.expect = if private { Expect::Private } else { Expect::Public };
            let d = diagnose(&t, &[v], 0, &rc);
            assert_eq!(d.cause(), want, "case {i}");
            let text = d.text().unwrap_or_default();
            assert_no_hole_left(text);
            if want == Cause::AsymmetricRoute {
                let says = match unacked {
                    Some(n) => format!("0 bytes came back in 5s 4ms after the TLS ClientHello, whose {n} bytes the"),
                    None => "0 bytes came back in 5s 4ms after the TLS ClientHello: a".to_string(),
                };
                assert!(
                    text.starts_with("TCP to 10.1.2.3:443 connects, but ") && text.contains(&says),
                    "{text}"
                );
            }
        }
    }

    /// A network security perimeter's 403 is told from the resource's own
    /// firewall's, for each service that answers with one; with a DNS cause
    /// it only adds that the private path is the one to fix.
    #[test]
    fn perimeter_denial_table() {
        let storage_nsp = resp(
            403,
            None,
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>AuthorizationFailure</Code><Message>This request is not \
             authorized by network security perimeter to perform this operation.</Message></Error>",
        );
        let storage_fw = resp(
            403,
            None,
            "<Error><Code>AuthorizationFailure</Code><Message>This request is not authorized to perform this operation.</Message></Error>",
        );
        let kv_nsp = resp(
            403,
            None,
            r#"{"error":{"code":"Forbidden","innererror":{"code":"ForbiddenByNsp"}}}"#,
        );
        let kv_fw = resp(
            403,
            None,
            r#"{"error":{"code":"Forbidden","innererror":{"code":"ForbiddenByFirewall"}}}"#,
        );
        let cases = [
            (Service::Storage, &storage_nsp, true),
            (Service::Storage, &storage_fw, false),
            (Service::Keyvault, &kv_nsp, true),
            (Service::Keyvault, &kv_fw, false),
            // Not a denial: the words in a 401 do not count.
            (Service::Storage, &resp(401, None, "network security perimeter"), false),
        ];
        for (i, (svc, r, want)) in cases.into_iter().enumerate() {
            assert_eq!(crate::service::of(svc).perimeter_denied(r), want, "case {i}");
        }
        assert!(
            crate::service::of(Service::Keyvault)
                .judge(&kv_nsp)
                .1
                .unwrap()
                .contains("ForbiddenByNsp")
        );

        let storage = crate::service::storage::target(azure::Cloud::Public, "stlab", azure::StorageService::Blob);
        let front: IpAddr = "203.0.113.9".parse().unwrap();
        let connects = [ConnectView {
            service_tag: None,
            address: front,
            reach: Reach::Rejected,
            tls: Some(TlsOutcome::Ok),
            tls_exchange: None,
            perimeter: true,
            detail: Some("storage answered 403: ...".into()),
        }];
        let rc = |expected_addresses| ReachContext {
            reach: Reach::Rejected,
            connects: &connects,
            timeout: Duration::from_secs(5),
            expected_addresses,
            via: Some("vnet"),
            outside_tag: None,
            dns: DnsContext::default(),
        };
        let mut public = view("vnet", DnsVerdict::Public, false);
        public.addresses = vec![Address {
            ip: front,
            private: false,
        }];
        // A public resource behind a perimeter: the perimeter's rule to add.
        let mut t = storage.clone();
        t.expect = Expect::Public;
        let d = diagnose(&t, std::slice::from_ref(&public), 0, &rc(true));
        assert_eq!(
            d.causes.iter().map(|c| c.cause).collect::<Vec<_>>(),
            [Cause::PerimeterDenied]
        );
        let text = d.text().unwrap();
        assert!(
            text.contains("inbound access rule") && text.contains("changes nothing"),
            "{text}"
        );
        assert_no_hole_left(text);
        // A private resource whose name resolves publicly: the DNS cause first,
        // and the perimeter says only the private path works.
        let mut linked = view("vnet", DnsVerdict::Public, true);
        linked.addresses = public.addresses.clone();
        let d = diagnose(&storage, &[linked], 0, &rc(false));
        let causes: Vec<Cause> = d.causes.iter().map(|c| c.cause).collect();
        assert_eq!(causes, [Cause::ZoneNotLinked, Cause::PerimeterDenied]);
        let second = &d.causes[1].diagnosis;
        assert!(
            second.starts_with("through resolver 'vnet''s answer, the public endpoint 203.0.113.9")
                && second.contains("the DNS cause above is the one to fix"),
            "{second}"
        );
        assert_no_hole_left(second);
        // The firewall's own 403 keeps its text and cause.
        let fw = [ConnectView {
            perimeter: false,
            ..connects[0].clone()
        }];
        let d = diagnose(
            &t,
            &[public],
            0,
            &ReachContext {
                connects: &fw,
                ..rc(true)
            },
        );
        assert_eq!(d.cause(), Cause::HttpRejected);
    }

    /// The proxy path judged: the proxy's own answers, then the tunnel's
    /// TLS and HTTP; a working path through the proxy is no cause.
    #[test]
    fn proxy_path_table() {
        use crate::observation::ProxyProbeObservation;
        use crate::proxy::{Client, Decision};
        let obs = |tcp: TcpOutcome, connect: Result<(u16, String), String>, http: Option<HttpOutcome>| {
            ProxyProbeObservation {
                proxy: "http://10.0.0.30:3128".into(),
                tcp,
                tcp_detail: Some("10.0.0.30:3128: connection refused".into()),
                connect,
                duration: Duration::from_millis(2),
                tls: http.as_ref().map(|_| TlsObservation {
                    outcome: TlsOutcome::Ok,
                    duration: Duration::from_millis(1),
                    detail: None,
                    cert_not_after: None,
                    version: None,
                    received: 1000,
                    unacked: None,
                }),
                http: http.map(|outcome| HttpObservation {
                    outcome,
                    duration: Duration::from_millis(1),
                }),
            }
        };
        let line = |s: &str| Ok((s[9..12].parse().unwrap(), s.to_string()));
        let kv_ok = HttpOutcome::Response(HttpResponse {
            status: 200,
            headers: vec![("x-ms-keyvault-network-info".into(), "addr=10.0.0.30;".into())],
            body: String::new(),
        });
        let kv_denied = HttpOutcome::Response(resp(
            403,
            None,
            r#"{"error":{"innererror":{"code":"ForbiddenByFirewall"}}}"#,
        ));
        let cases = vec![
            (
                obs(TcpOutcome::Refused, Err("not sent".into()), None),
                Reach::Unreachable,
                "the proxy itself does not answer",
            ),
            (
                obs(TcpOutcome::Ok, line("HTTP/1.1 407 Proxy Authentication Required"), None),
                Reach::Rejected,
                "asks for credentials",
            ),
            (
                obs(TcpOutcome::Ok, line("HTTP/1.1 403 Forbidden"), None),
                Reach::Rejected,
                "its access rules",
            ),
            (
                obs(TcpOutcome::Ok, line("HTTP/1.1 503 Service Unavailable"), None),
                Reach::Unreachable,
                "could not reach the name",
            ),
            (
                obs(TcpOutcome::Ok, Err("no answer within 2s".into()), None),
                Reach::Timeout,
                "no answer to CONNECT",
            ),
            (
                obs(
                    TcpOutcome::Ok,
                    line("HTTP/1.1 200 Connection established"),
                    Some(kv_denied),
                ),
                Reach::Rejected,
                "the tunnel is open, then Key Vault answered ForbiddenByFirewall",
            ),
            (
                obs(TcpOutcome::Ok, line("HTTP/1.1 200 Connection established"), Some(kv_ok)),
                Reach::Ok,
                "",
            ),
        ];
        let target = crate::service::keyvault::target(azure::Cloud::Public, "kv01");
        let decisions = [Decision {
            client: Client::Go,
            proxy: Some("http://10.0.0.30:3128".into()),
            bypassed_by: None,
        }];
        for (i, (o, reach, says)) in cases.into_iter().enumerate() {
            let v = assess_proxy(Service::Keyvault, &o);
            assert_eq!(v.reach, reach, "case {i}: {v:?}");
            assert!(v.detail.clone().unwrap_or_default().contains(says), "case {i}: {v:?}");
            let mut d = Diagnosis::default();
            d.proxied_private(&target, &decisions, Some(&v));
            assert_eq!(d.healthy(), reach == Reach::Ok, "case {i}");
            if let Some(text) = d.text() {
                assert!(
                    text.contains(&format!("Through the proxy: {}", v.detail.unwrap())),
                    "{text}"
                );
                assert_no_hole_left(text);
            }
        }
        // Key Vault through the proxy saw the proxy's address.
        let v = assess_proxy(
            Service::Keyvault,
            &obs(
                TcpOutcome::Ok,
                line("HTTP/1.1 200 OK"),
                Some(HttpOutcome::Response(HttpResponse {
                    status: 403,
                    headers: vec![("x-ms-keyvault-network-info".into(), "addr=203.0.113.5;".into())],
                    body: "ForbiddenByFirewall".into(),
                })),
            ),
        );
        assert_eq!(v.seen_address.as_deref(), Some("203.0.113.5"));
        // A public target is what a proxy is for: nothing to say.
        let mut public = target.clone();
        public.expect = Expect::Public;
        let mut d = Diagnosis::default();
        d.proxied_private(&public, &decisions, None);
        assert!(d.healthy());
    }

    /// Every template hole of a rendered diagnosis was filled by its rule.
    fn assert_no_hole_left(text: &str) {
        for name in crate::catalogue::FACT_NAMES {
            assert!(!text.contains(&format!("{{{name}}}")), "unfilled {{{name}}} in: {text}");
        }
    }

    #[test]
    fn diagnosis_table() {
        use DnsVerdict as V;
        let t = acr();
        type Case = (Vec<DnsView>, usize, Reach, Option<TlsOutcome>, Cause);
        let cases: Vec<Case> = vec![
            (
                vec![view("system", V::Private, true)],
                0,
                Reach::Ok,
                Some(TlsOutcome::Ok),
                Cause::None,
            ),
            (
                vec![view("system", V::Public, true)],
                0,
                Reach::Ok,
                None,
                Cause::ZoneNotLinked,
            ),
            (
                vec![view("system", V::Public, false)],
                0,
                Reach::Ok,
                None,
                Cause::NoPrivateEndpoint,
            ),
            (
                vec![view("system", V::Nxdomain, true)],
                0,
                Reach::Skipped,
                None,
                Cause::RecordMissing,
            ),
            (
                vec![view("system", V::Nodata, true)],
                0,
                Reach::Skipped,
                None,
                Cause::RecordMissing,
            ),
            (
                vec![view("system", V::Nxdomain, false)],
                0,
                Reach::Skipped,
                None,
                Cause::NameNotFound,
            ),
            (
                vec![view("system", V::Timeout, false)],
                0,
                Reach::Skipped,
                None,
                Cause::DnsUnreachable,
            ),
            (
                vec![DnsView {
                    unreachable: true,
                    no_servers: false,
                    ..view("system", V::Error, false)
                }],
                0,
                Reach::Skipped,
                None,
                Cause::DnsUnreachable,
            ),
            (
                vec![view("system", V::Servfail, false)],
                0,
                Reach::Skipped,
                None,
                Cause::DnsError,
            ),
            (
                vec![view("system", V::Refused, false)],
                0,
                Reach::Skipped,
                None,
                Cause::DnsError,
            ),
            (
                vec![view("system", V::Error, false)],
                0,
                Reach::Skipped,
                None,
                Cause::DnsError,
            ),
            (
                vec![view("system", V::Mixed, true)],
                0,
                Reach::Ok,
                None,
                Cause::MixedAnswers,
            ),
            (
                vec![view("system", V::UnexpectedIp, true)],
                0,
                Reach::Ok,
                None,
                Cause::UnexpectedIp,
            ),
            // Pod path public, Azure DNS private: the forwarding problem.
            (
                vec![view("system", V::Public, true), view("azure", V::Private, true)],
                0,
                Reach::Ok,
                None,
                Cause::DnsPathNotForwarding,
            ),
            // An error answer is diagnosed as such, whatever the other resolvers say.
            (
                vec![view("system", V::Servfail, false), view("azure", V::Private, true)],
                0,
                Reach::Ok,
                None,
                Cause::DnsError,
            ),
            // The node path fails while the pod path is fine: still named.
            (
                vec![view("system", V::Private, true), view("node", V::Nxdomain, true)],
                0,
                Reach::Ok,
                None,
                Cause::DnsPathNotForwarding,
            ),
            // A timeout is the server's fault, not forwarding.
            (
                vec![view("system", V::Timeout, false), view("azure", V::Private, true)],
                0,
                Reach::Ok,
                None,
                Cause::DnsUnreachable,
            ),
            // DNS right, reach wrong.
            (
                vec![view("system", V::Private, true)],
                0,
                Reach::Timeout,
                None,
                Cause::EndpointBlocked,
            ),
            (
                vec![view("system", V::Private, true)],
                0,
                Reach::Unreachable,
                None,
                Cause::EndpointBlocked,
            ),
            (
                vec![view("system", V::Private, true)],
                0,
                Reach::Refused,
                None,
                Cause::EndpointStale,
            ),
            (
                vec![view("system", V::Private, true)],
                0,
                Reach::TlsError,
                Some(TlsOutcome::NameMismatch),
                Cause::TlsMismatch,
            ),
            (
                vec![view("system", V::Private, true)],
                0,
                Reach::TlsError,
                Some(TlsOutcome::UnknownIssuer),
                Cause::TlsMismatch,
            ),
            (
                vec![view("system", V::Private, true)],
                0,
                Reach::Rejected,
                Some(TlsOutcome::Ok),
                Cause::HttpRejected,
            ),
            (
                vec![view("system", V::Private, true)],
                0,
                Reach::HttpError,
                Some(TlsOutcome::Ok),
                Cause::HttpRejected,
            ),
            // DNS is the root cause even when reach also fails.
            (
                vec![view("system", V::Public, true)],
                0,
                Reach::Rejected,
                Some(TlsOutcome::Ok),
                Cause::ZoneNotLinked,
            ),
        ];
        for (i, (views, via, reach, tls, want)) in cases.into_iter().enumerate() {
            let dns: Vec<String> = views
                .iter()
                .map(|v| format!("{}={}{}", v.resolver, v.verdict, if v.privatelink { "*" } else { "" }))
                .collect();
            let case = format!("case {i}: {} via {via}, reach {reach}, tls {tls:?}", dns.join(" "));
            assert_eq!(cause_of(&t, &views, via, reach, tls), want, "{case}");
        }
    }

    #[test]
    fn expectations_other_than_private() {
        use DnsVerdict as V;
        let mut t = acr();
        t.expect = Expect::Public;
        assert_eq!(
            cause_of(&t, &[view("s", V::Public, false)], 0, Reach::Ok, None),
            Cause::None
        );
        assert_eq!(
            cause_of(&t, &[view("s", V::Private, true)], 0, Reach::Ok, None),
            Cause::UnexpectedPrivate
        );
        t.expect = Expect::Any;
        assert_eq!(
            cause_of(&t, &[view("s", V::Mixed, false)], 0, Reach::Ok, None),
            Cause::None
        );
        assert_eq!(
            cause_of(&t, &[view("s", V::Nxdomain, false)], 0, Reach::Skipped, None),
            Cause::NameNotFound
        );
    }

    #[test]
    fn diagnosis_text_names_resolver_zone_and_fix() {
        let t = acr();
        let mut bad = view("system", DnsVerdict::Public, true);
        bad.addresses = vec![Address {
            ip: "20.1.2.3".parse().unwrap(),
            private: false,
        }];
        let rc = ctx(Reach::Ok, false, None);
        let d = diagnose(&t, &[bad], 0, &rc);
        let text = d.text().unwrap().to_string();
        for needle in [
            "'system'",
            "privatelink.azurecr.io",
            "20.1.2.3",
            "Fix:",
            "reg01.azurecr.io -> reg01.privatelink.azurecr.io",
        ] {
            assert!(text.contains(needle), "{needle} missing in: {text}");
        }
        let good = view("azure", DnsVerdict::Private, true);
        let d = diagnose(&t, &[view("system", DnsVerdict::Public, true), good], 0, &rc);
        let text = d.text().unwrap().to_string();
        assert!(text.contains("forward azurecr.io"), "{text}");
        assert!(text.contains("'azure'") && text.contains("'system'"), "{text}");
    }

    #[test]
    fn custom_targets_name_the_privatelink_zone_their_chain_passed_through() {
        let t = Target {
            name: "files".into(),
            fqdn: "st1.file.core.windows.net".into(),
            service: Service::Storage,
            port: 443,
            expect: Expect::Private,
            expected_ips: vec![],
            privatelink_zone: None,
            tag_services: &[],
        };
        let mut bad = view("system", DnsVerdict::Public, true);
        bad.chain = vec![
            "st1.privatelink.file.core.windows.net".into(),
            "fe.store.example".into(),
        ];
        let rc = ctx(Reach::Ok, false, None);
        let text = diagnose(&t, &[bad], 0, &rc).text().unwrap().to_string();
        assert!(
            text.contains("the private DNS zone privatelink.file.core.windows.net is not linked"),
            "{text}"
        );
        // Without a privatelink name in any answer, the text stays generic.
        let text = diagnose(&t, &[view("system", DnsVerdict::Nxdomain, false)], 0, &rc)
            .text()
            .unwrap()
            .to_string();
        assert!(!text.contains("privatelink.file"), "{text}");
    }

    /// One resolver's view in each state the diagnosis distinguishes: every
    /// verdict, plus a server that cannot be reached at all.
    fn state(resolver: &str, code: &str) -> DnsView {
        use DnsVerdict as V;
        let (verdict, addrs): (V, &[&str]) = match code {
            "priv" => (V::Private, &["10.1.2.3"]),
            "pub" => (V::Public, &["20.1.2.3"]),
            "mix" => (V::Mixed, &["10.1.2.3", "20.1.2.3"]),
            "nxd" => (V::Nxdomain, &[]),
            "nod" => (V::Nodata, &[]),
            "srv" => (V::Servfail, &[]),
            "ref" => (V::Refused, &[]),
            "tmo" => (V::Timeout, &[]),
            "err" | "unr" => (V::Error, &[]),
            "uip" => (V::UnexpectedIp, &["10.9.9.9"]),
            other => panic!("unknown state {other}"),
        };
        let answered = !matches!(code, "srv" | "ref" | "tmo" | "err" | "unr");
        let mut v = view(resolver, verdict, answered);
        v.unreachable = code == "unr";
        v.rcode = match code {
            "srv" => Some(Rcode::ServFail),
            "ref" => Some(Rcode::Refused),
            "nxd" => Some(Rcode::NxDomain),
            "tmo" | "unr" => None,
            _ => Some(Rcode::NoError),
        };
        v.addresses = addrs
            .iter()
            .map(|a| Address {
                ip: a.parse().unwrap(),
                private: a.starts_with("10."),
            })
            .collect();
        v
    }

    /// Every (pod path × Azure DNS) pair of states, against the README's cause
    /// table: a resolver that did not answer usably is `dns_unreachable` or
    /// `dns_error` whatever the other says; only two answers are compared
    /// (`dns_path_not_forwarding`); otherwise the failing resolver's own cause.
    #[test]
    fn cause_of_every_pair_of_resolver_states() {
        const B: [&str; 11] = [
            "priv", "pub", "mix", "nxd", "nod", "srv", "ref", "tmo", "err", "uip", "unr",
        ];
        #[rustfmt::skip]
        let table: [(&str, [&str; 11]); 11] = [
            //        priv    pub     mix     nxd     nod     srv     ref     tmo     err     uip     unr
            ("priv", ["none", "fwd",  "fwd",  "fwd",  "fwd",  "err",  "err",  "unr",  "err",  "fwd",  "unr"]),
            ("pub",  ["fwd",  "znl",  "znl",  "znl",  "znl",  "znl",  "znl",  "znl",  "znl",  "znl",  "znl"]),
            ("mix",  ["fwd",  "mix",  "mix",  "mix",  "mix",  "mix",  "mix",  "mix",  "mix",  "mix",  "mix"]),
            ("nxd",  ["fwd",  "rm",   "rm",   "rm",   "rm",   "rm",   "rm",   "rm",   "rm",   "rm",   "rm"]),
            ("nod",  ["fwd",  "rm",   "rm",   "rm",   "rm",   "rm",   "rm",   "rm",   "rm",   "rm",   "rm"]),
            ("srv",  ["err",  "err",  "err",  "err",  "err",  "err",  "err",  "err",  "err",  "err",  "err"]),
            ("ref",  ["err",  "err",  "err",  "err",  "err",  "err",  "err",  "err",  "err",  "err",  "err"]),
            ("tmo",  ["unr",  "unr",  "unr",  "unr",  "unr",  "unr",  "unr",  "unr",  "unr",  "unr",  "unr"]),
            ("err",  ["err",  "err",  "err",  "err",  "err",  "err",  "err",  "err",  "err",  "err",  "err"]),
            ("uip",  ["fwd",  "uip",  "uip",  "uip",  "uip",  "uip",  "uip",  "uip",  "uip",  "uip",  "uip"]),
            ("unr",  ["unr",  "unr",  "unr",  "unr",  "unr",  "unr",  "unr",  "unr",  "unr",  "unr",  "unr"]),
        ];
        let cause = |code: &str| match code {
            "none" => Cause::None,
            "fwd" => Cause::DnsPathNotForwarding,
            "znl" => Cause::ZoneNotLinked,
            "mix" => Cause::MixedAnswers,
            "rm" => Cause::RecordMissing,
            "err" => Cause::DnsError,
            "unr" => Cause::DnsUnreachable,
            "uip" => Cause::UnexpectedIp,
            other => panic!("unknown cause {other}"),
        };
        let mut t = acr();
        t.expected_ips = vec!["10.1.2.3".parse().unwrap()];
        let rc = ctx(Reach::Ok, true, Some("system"));
        for (a, row) in table {
            for (b, want) in B.iter().zip(row) {
                let views = [state("system", a), state("azure", b)];
                let d = diagnose(&t, &views, 0, &rc);
                let case = format!("system={a} azure={b}");
                assert_eq!(d.cause(), cause(want), "{case}: {:?}", d.causes);
                // Every failing resolver is named, each cause once, primary first.
                let failing = views.iter().filter(|v| !meets(t.expect, v.verdict)).count();
                assert!(d.causes.len() <= failing, "{case}: {:?}", d.causes);
                assert_eq!(d.causes.is_empty(), failing == 0, "{case}");
                let mut codes: Vec<Cause> = d.causes.iter().map(|c| c.cause).collect();
                codes.dedup();
                assert_eq!(codes.len(), d.causes.len(), "{case}: a cause listed twice");
                for c in &d.causes {
                    assert!(
                        c.diagnosis.contains("Fix") || c.diagnosis.contains("fix"),
                        "{case}: {}",
                        c.diagnosis
                    );
                }
                // The other resolver's own problem is listed after the primary one.
                if a != "priv" && failing == 2 && *b != "priv" {
                    let second = diagnose(&t, &[views[1].clone()], 0, &rc).cause();
                    if second != d.cause() {
                        assert_eq!(d.causes.get(1).map(|c| c.cause), Some(second), "{case}: {:?}", d.causes);
                    }
                }
            }
        }
    }

    #[test]
    fn error_texts_name_the_rcode_the_server_and_the_real_port() {
        let t = acr();
        let rc = ctx(Reach::Skipped, false, None);
        let mut refused = state("system", "ref");
        refused.server = Some("10.0.0.10:5399".parse().unwrap());
        let d = diagnose(&t, &[refused, state("azure", "priv")], 0, &rc);
        let text = d.text().unwrap();
        assert!(text.contains("REFUSED") && text.contains("10.0.0.10:5399"), "{text}");
        assert!(
            !text.contains("168.63.129.16"),
            "a refusal is not a forwarding problem: {text}"
        );
        for code in ["tmo", "unr"] {
            let mut dead = state("system", code);
            dead.server = Some("10.0.0.10:5399".parse().unwrap());
            let d = diagnose(&t, &[dead], 0, &rc);
            let text = d.text().unwrap();
            assert!(text.contains("port 5399") && !text.contains("53 "), "{code}: {text}");
        }
    }

    #[test]
    fn a_blocked_public_address_names_its_tag_and_a_foreign_answer_is_a_cause() {
        let mut t = acr();
        t.expect = Expect::Public;
        let public = |resolver: &str| DnsView {
            addresses: vec![Address {
                ip: "198.51.100.7".parse().unwrap(),
                private: false,
            }],
            ..view(resolver, DnsVerdict::Public, false)
        };
        let connects = [ConnectView {
            service_tag: Some("AzureContainerRegistry.WestEurope".into()),
            address: "198.51.100.7".parse().unwrap(),
            reach: Reach::Timeout,
            tls: None,
            tls_exchange: None,
            perimeter: false,
            detail: None,
        }];
        let mut rc = ReachContext {
            reach: Reach::Timeout,
            connects: &connects,
            timeout: Duration::from_secs(2),
            expected_addresses: true,
            via: Some("system"),
            outside_tag: None,
            dns: DnsContext::default(),
        };
        let d = diagnose(&t, &[public("system")], 0, &rc);
        assert_eq!(d.cause(), Cause::EndpointBlocked);
        let text = d.text().unwrap();
        assert!(
            text.starts_with("DNS is right, but TCP to 198.51.100.7:443 timed out")
                && text.contains("allow outbound TCP 443 to service tag AzureContainerRegistry.WestEurope"),
            "{text}"
        );
        assert_no_hole_left(text);
        // Untagged, the generic text.
        let untagged = [ConnectView {
            service_tag: None,
            ..connects[0].clone()
        }];
        rc.connects = &untagged;
        let text = diagnose(&t, &[public("system")], 0, &rc).text().unwrap().to_string();
        assert!(!text.contains("service tag"), "{text}");
        // Outside the service's ranges: a cause of its own, before reachability.
        let services: &[&str] = &["AzureContainerRegistry"];
        rc.outside_tag = Some((vec!["198.51.100.7".parse().unwrap()], services));
        let d = diagnose(&t, &[public("system")], 0, &rc);
        let causes: Vec<Cause> = d.causes.iter().map(|c| c.cause).collect();
        assert_eq!(causes, [Cause::OutsideServiceTag, Cause::EndpointBlocked]);
        assert_no_hole_left(d.text().unwrap());
        assert!(d.text().unwrap().contains("in no range of AzureContainerRegistry"));
        rc.outside_tag = Some((vec![], services));
        assert_eq!(
            diagnose(&t, &[public("system")], 0, &rc).cause(),
            Cause::EndpointBlocked
        );
    }

    #[test]
    fn a_dead_dns_path_and_a_stale_endpoint_are_both_named() {
        let t = acr();
        let connects = [ConnectView {
            service_tag: None,
            address: "10.1.2.3".parse().unwrap(),
            reach: Reach::Refused,
            tls: None,
            tls_exchange: None,
            perimeter: false,
            detail: None,
        }];
        let rc = ReachContext {
            reach: Reach::Refused,
            connects: &connects,
            timeout: Duration::from_secs(2),
            expected_addresses: true,
            via: Some("azure"),
            outside_tag: None,
            dns: DnsContext::default(),
        };
        let d = diagnose(&t, &[state("system", "tmo"), state("azure", "priv")], 0, &rc);
        let codes: Vec<Cause> = d.causes.iter().map(|c| c.cause).collect();
        assert_eq!(codes, vec![Cause::DnsUnreachable, Cause::EndpointStale]);
        assert_eq!(d.causes[0].resolver.as_deref(), Some("system"));
        assert_eq!(d.causes[1].resolver, None);
        assert!(
            d.causes[1].diagnosis.contains("resolver 'azure'"),
            "{}",
            d.causes[1].diagnosis
        );
        // A public endpoint rejecting a private target's traffic after a DNS
        // failure is a consequence, not a second cause.
        let rc = ReachContext {
            reach: Reach::Rejected,
            expected_addresses: false,
            via: Some("system"),
            outside_tag: None,
            ..rc
        };
        let d = diagnose(&t, &[state("system", "pub")], 0, &rc);
        assert_eq!(d.causes.len(), 1, "{:?}", d.causes);
        assert_eq!(d.cause(), Cause::ZoneNotLinked);
    }

    #[test]
    fn zone_not_linked_names_the_nxdomain_redirect_fallback_too() {
        let t = acr();
        let rc = ctx(Reach::Ok, false, None);
        let text = diagnose(&t, &[state("system", "pub")], 0, &rc)
            .text()
            .unwrap()
            .to_string();
        assert!(text.contains("NxDomainRedirect"), "{text}");
    }

    /// One resolver's lookup through `server`.
    fn seen(resolver: &str, server: &str, outcome: DnsOutcome) -> DnsObservation {
        DnsObservation {
            server: Some(server.parse().unwrap()),
            ..obs(resolver, outcome)
        }
    }

    /// The DNS features of 2026's Azure networks (issue 24): each case is
    /// the lookups through each resolver, what the round tells, the cause
    /// and a fragment of the primary diagnosis. Before the change, the
    /// sentinel was `name_not_found`/`record_missing`, a forwarded zone
    /// `zone_not_linked`, a fallback `zone_not_linked`, a failed TCP retry
    /// `dns_unreachable`, LocalDNS's stale address healthy.
    #[test]
    fn todays_azure_dns_table() {
        const AZ: &str = "168.63.129.16:53";
        const VNET: &str = "10.0.0.10:53";
        const LOCAL: &str = "169.254.10.11:53";
        let t = acr();
        let sentinel = "blockpolicy.azuredns.invalid";
        let azure_soa = || ZoneHolder::AzurePrivate("azureprivatedns.net azureprivatedns-host.microsoft.com".into());
        let other_soa = || ZoneHolder::Other("ns1.contoso.example hostmaster.contoso.example".into());
        let up: &[Option<usize>] = &[Some(1), None];
        type Case = (
            &'static str,
            Vec<DnsObservation>,
            DnsContext<'static>,
            Cause,
            &'static str,
        );
        let dc =
            |zone_holder: ZoneHolder, azure_answers_others: bool, upstreams: &'static [Option<usize>]| DnsContext {
                zone_holder,
                azure_answers_others,
                upstreams,
            };
        let cases: Vec<Case> = vec![
            (
                "the block sentinel right after the name, NOERROR",
                vec![seen("azure", AZ, answer(Rcode::NoError, &[sentinel], &[]))],
                DnsContext::default(),
                Cause::DnsPolicyBlocked,
                "blocks reg01.azurecr.io",
            ),
            (
                "the block sentinel after the privatelink CNAME, NXDOMAIN (a server chased it)",
                vec![seen("vnet", VNET, answer(Rcode::NxDomain, &[PL, sentinel], &[]))],
                DnsContext::default(),
                Cause::DnsPolicyBlocked,
                "blocks reg01.privatelink.azurecr.io",
            ),
            (
                "SERVFAIL from Azure DNS while it answers other names: a policy first",
                vec![
                    seen("vnet", VNET, answer(Rcode::ServFail, &[], &[])),
                    seen("azure", AZ, answer(Rcode::ServFail, &[], &[])),
                ],
                dc(ZoneHolder::Unknown, true, &[]),
                Cause::DnsError,
                "DNS security policy blocking the domain is the first suspect",
            ),
            (
                "SERVFAIL from Azure DNS when nothing else answers: the server",
                vec![seen("azure", AZ, answer(Rcode::ServFail, &[], &[]))],
                dc(ZoneHolder::Unknown, false, &[]),
                Cause::DnsError,
                "a server that cannot resolve the name",
            ),
            (
                "SERVFAIL from a custom server only: the server",
                vec![
                    seen("vnet", VNET, answer(Rcode::ServFail, &[], &[])),
                    seen("azure", AZ, answer(Rcode::NoError, &[PL], &["10.1.2.3"])),
                ],
                dc(ZoneHolder::Unknown, true, &[]),
                Cause::DnsError,
                "a server that cannot resolve the name",
            ),
            (
                "public after the privatelink CNAME, no SOA of the zone: not linked",
                vec![seen(
                    "azure",
                    AZ,
                    answer(Rcode::NoError, &[PL, "x.cloudapp.net"], &["20.1.2.3"]),
                )],
                DnsContext::default(),
                Cause::ZoneNotLinked,
                "is not linked",
            ),
            (
                "public after the privatelink CNAME, Azure's private SOA: fallback to internet",
                vec![seen(
                    "azure",
                    AZ,
                    answer(Rcode::NoError, &[PL, "x.cloudapp.net"], &["20.1.2.3"]),
                )],
                dc(azure_soa(), false, &[]),
                Cause::RecordMissing,
                "fallback to the internet (resolutionPolicy: NxDomainRedirect)",
            ),
            (
                "public after the privatelink CNAME, another server's SOA: a forwarding rule",
                vec![seen(
                    "azure",
                    AZ,
                    answer(Rcode::NoError, &[PL, "x.cloudapp.net"], &["20.1.2.3"]),
                )],
                dc(other_soa(), false, &[]),
                Cause::ZoneForwarded,
                "forwarding ruleset rule",
            ),
            (
                "NXDOMAIN in the zone, another server's SOA: a forwarding rule",
                vec![seen("azure", AZ, answer(Rcode::NxDomain, &[PL], &[]))],
                dc(other_soa(), false, &[]),
                Cause::ZoneForwarded,
                "-> NXDOMAIN, and Azure DNS answers the SOA of privatelink.azurecr.io from ns1.contoso.example",
            ),
            (
                "NXDOMAIN in the zone, Azure's SOA: the record is missing, as before",
                vec![seen("azure", AZ, answer(Rcode::NxDomain, &[PL], &[]))],
                dc(azure_soa(), false, &[]),
                Cause::RecordMissing,
                "holds no record",
            ),
            (
                "a truncated answer whose TCP retry failed",
                vec![seen(
                    "vnet",
                    VNET,
                    DnsOutcome::TcpFailed("10.0.0.10:53: Connection refused".into()),
                )],
                DnsContext::default(),
                Cause::DnsTcpBlocked,
                "allow TCP 53 from the node subnet to 10.0.0.10:53",
            ),
            (
                "LocalDNS answers another private address than Azure DNS",
                vec![
                    seen("pods", LOCAL, answer(Rcode::NoError, &[PL], &["10.1.2.9"])),
                    seen("azure", AZ, answer(Rcode::NoError, &[PL], &["10.1.2.3"])),
                ],
                DnsContext::default(),
                Cause::DnsStaleCache,
                "do not recreate the zone group",
            ),
            (
                "LocalDNS answers one of Azure DNS's addresses: healthy",
                vec![
                    seen("pods", LOCAL, answer(Rcode::NoError, &[PL], &["10.1.2.3"])),
                    seen("azure", AZ, answer(Rcode::NoError, &[PL], &["10.1.2.3", "10.1.2.4"])),
                ],
                DnsContext::default(),
                Cause::None,
                "",
            ),
            (
                "LocalDNS answers while its upstream is silent",
                vec![
                    seen("pods", LOCAL, answer(Rcode::NoError, &[PL], &["10.1.2.3"])),
                    seen("vnet", VNET, DnsOutcome::Timeout),
                ],
                dc(ZoneHolder::Unknown, false, up),
                Cause::DnsServingStale,
                "lives on cached and stale answers",
            ),
            (
                "a silent server that is nobody's upstream: unreachable, as before",
                vec![
                    seen("pods", LOCAL, answer(Rcode::NoError, &[PL], &["10.1.2.3"])),
                    seen("vnet", VNET, DnsOutcome::Timeout),
                ],
                DnsContext::default(),
                Cause::DnsUnreachable,
                "gave no answer",
            ),
        ];
        let mut failures = Vec::new();
        for (name, lookups, dns, want, says) in cases {
            let views: Vec<DnsView> = lookups.iter().map(|o| assess_dns(&t, o, &ranges())).collect();
            let rc = ReachContext {
                dns,
                ..ctx(Reach::Ok, true, Some("system"))
            };
            let d = diagnose(&t, &views, 0, &rc);
            let text = d.text().unwrap_or_default();
            if d.cause() != want || !text.contains(says) {
                failures.push(format!("{name}: {} ({text}), want {want} ({says})", d.cause()));
            }
            for c in &d.causes {
                assert!(!c.diagnosis.contains('{'), "{name}: unfilled hole: {}", c.diagnosis);
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn the_policy_sentinel_is_a_verdict_of_its_own_and_names_the_blocked_name() {
        let t = acr();
        let o = obs("azure", answer(Rcode::NoError, &["blockpolicy.azuredns.invalid"], &[]));
        let v = assess_dns(&t, &o, &ranges());
        assert_eq!(
            (v.verdict, v.detail.as_deref()),
            (DnsVerdict::Blocked, Some("reg01.azurecr.io"))
        );
        assert!(!meets(Expect::Any, v.verdict));
    }

    #[test]
    fn the_zone_holder_is_read_from_the_zones_own_soa_only() {
        use crate::observation::SoaRecord;
        let soa = |owner: &str, mname: &str, rname: &str| SoaRecord {
            owner: owner.into(),
            mname: mname.into(),
            rname: rname.into(),
        };
        let zone = "privatelink.azurecr.io";
        let azure = soa(zone, "azureprivatedns.net", "azureprivatedns-host.microsoft.com");
        assert!(matches!(zone_holder(zone, Some(&azure)), ZoneHolder::AzurePrivate(_)));
        let other = soa(zone, "ns1.contoso.example", "hostmaster.contoso.example");
        assert!(matches!(zone_holder(zone, Some(&other)), ZoneHolder::Other(m) if m.starts_with("ns1.contoso")));
        // A parent zone's SOA (in the authority section of a NODATA) says
        // nothing about who holds the privatelink zone.
        let parent = soa(
            "azurecr.io",
            "ns1-01.azure-dns.com",
            "azuredns-hostmaster.microsoft.com",
        );
        assert_eq!(zone_holder(zone, Some(&parent)), ZoneHolder::Unknown);
        assert_eq!(zone_holder(zone, None), ZoneHolder::Unknown);
    }

    /// API Server VNet Integration: an answer that is not the `kubernetes`
    /// Service's endpoint is `unexpected_ip`, and every DNS cause says that
    /// nodes are unaffected.
    #[test]
    fn a_vnet_integrated_api_server_is_compared_with_its_endpoints() {
        let t = crate::service::apiserver::target(
            crate::azure::Cloud::Public,
            "aks-1-abc.private.westeurope.azmk8s.io",
            443,
            Some("westeurope"),
        );
        assert_eq!(t.privatelink_zone.as_deref(), Some("private.westeurope.azmk8s.io"));
        assert!(crate::service::apiserver::vnet_integration(&t));
        let private = |ip: &str| obs("azure", answer(Rcode::NoError, &[], &[ip]));
        let views = [assess_dns(&t, &private("10.225.0.4"), &ranges())];
        assert!(views[0].privatelink);
        let eps: Vec<IpAddr> = vec!["10.225.0.9".parse().unwrap()];
        let mut d = diagnose(&t, &views, 0, &ctx(Reach::Ok, true, Some("azure")));
        d.vnet_integrated_api_server(&t, &views, Some(&eps));
        assert_eq!(d.cause(), Cause::UnexpectedIp);
        let text = d.text().unwrap();
        assert!(
            text.contains("10.225.0.9") && text.contains(VNET_INTEGRATION_NOTE),
            "{text}"
        );

        let right = [assess_dns(&t, &private("10.225.0.9"), &ranges())];
        let mut d = diagnose(&t, &right, 0, &ctx(Reach::Ok, true, Some("azure")));
        d.vnet_integrated_api_server(&t, &right, Some(&eps));
        assert!(d.healthy(), "{:?}", d.causes);

        let missing = [assess_dns(
            &t,
            &obs("azure", answer(Rcode::NxDomain, &[], &[])),
            &ranges(),
        )];
        let mut d = diagnose(&t, &missing, 0, &ctx(Reach::Skipped, false, None));
        d.vnet_integrated_api_server(&t, &missing, None);
        assert!(d.text().unwrap().ends_with(VNET_INTEGRATION_NOTE), "{:?}", d.causes);
    }
}
