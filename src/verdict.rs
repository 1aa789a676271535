//! The verdict and diagnosis layer: observations in, verdicts out. No I/O and
//! no clock, so every rule is covered by table tests below.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

use crate::azure::{Target, in_zone};
use crate::model::{Address, Cause, DnsVerdict, Expect, Reach, Service, TcpOutcome, TlsOutcome};
use crate::observation::{
    ChainProblem, ConnectObservation, DnsObservation, DnsOutcome, HttpOutcome, HttpResponse, Rcode,
};

/// One resolver's answer for one target, judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsView {
    pub resolver: String,
    pub verdict: DnsVerdict,
    pub privatelink: bool,
    pub rcode: Option<String>,
    pub chain: Vec<String>,
    pub addresses: Vec<Address>,
    /// Why the verdict is `error`, or which server timed out.
    pub detail: Option<String>,
    /// The resolver's servers could not be reached at all.
    pub unreachable: bool,
}

/// One address of a target, judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectView {
    pub address: IpAddr,
    pub reach: Reach,
    pub tls: Option<TlsOutcome>,
    pub detail: Option<String>,
}

/// The overall judgement of one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnosis {
    pub healthy: bool,
    pub cause: Cause,
    /// One line: what is wrong, why, and the fix. `None` when healthy.
    pub text: Option<String>,
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
        verdict: DnsVerdict::Error,
        privatelink: false,
        rcode: None,
        chain: Vec::new(),
        addresses: Vec::new(),
        detail: None,
        unreachable: false,
    };
    match &obs.outcome {
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
            view.rcode = Some(ans.rcode.as_string());
            view.chain = ans.chain.clone();
            view.privatelink = ans.chain.iter().any(|n| is_privatelink_name(target, n));
            view.addresses = ans
                .addresses
                .iter()
                .map(|&ip| Address {
                    ip,
                    private: is_private(ip, ranges),
                })
                .collect();
            view.verdict = match (&ans.chain_problem, ans.rcode) {
                (Some(ChainProblem::Loop(at)), _) => {
                    view.detail = Some(format!("CNAME loop at {at}"));
                    DnsVerdict::Error
                }
                (Some(ChainProblem::TooLong(n)), _) => {
                    view.detail = Some(format!(
                        "CNAME chain longer than {} names ({n}+)",
                        crate::probe::dns::MAX_CHAIN
                    ));
                    DnsVerdict::Error
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
        reach: Reach::Ok,
        tls: obs.tls.as_ref().map(|t| t.outcome),
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
                Some(HttpOutcome::Response(r)) => judge_http(service, r),
            },
        },
    };
    view.reach = reach;
    view.detail = detail;
    view
}

/// Phrases with which an AML workspace denies access through private link.
const WORKSPACE_DENIALS: &[&str] = &[
    "access to workspace was denied based on workspace private link configuration",
    "none of the workspaces/registries are accessible from outside of the designated private link",
    "is not accessible from outside of the designated private link",
    "denied based on private link",
];

/// Judges a credential-free HTTP answer for the target's service.
pub fn judge_http(service: Service, r: &HttpResponse) -> (Reach, Option<String>) {
    let body = r.body.to_ascii_lowercase();
    let status = r.status;
    let snippet = || first_line(&r.body);
    match service {
        Service::Acr => {
            let challenge = r
                .www_authenticate
                .as_deref()
                .is_some_and(|h| h.trim_start().to_ascii_lowercase().starts_with("bearer realm="));
            match status {
                401 if challenge => (Reach::Ok, None),
                200 => (Reach::Ok, None),
                401 => (
                    Reach::HttpError,
                    Some("401 without a `Bearer realm=` challenge: not a container registry answering".into()),
                ),
                403 => (Reach::Blocked, Some(format!("403 from the registry: {}", snippet()))),
                s => (
                    Reach::HttpError,
                    Some(format!("unexpected HTTP {s} from /v2/: {}", snippet())),
                ),
            }
        }
        Service::Keyvault => match status {
            200 | 401 => (Reach::Ok, None),
            403 => {
                let why = if body.contains("forbiddenbyfirewall") {
                    "ForbiddenByFirewall"
                } else {
                    "403"
                };
                (Reach::Blocked, Some(format!("Key Vault answered {why}: {}", snippet())))
            }
            s => (
                Reach::HttpError,
                Some(format!("unexpected HTTP {s} from /healthstatus: {}", snippet())),
            ),
        },
        Service::Storage => match status {
            400 | 401 | 404 => (Reach::Ok, None),
            403 => (Reach::Blocked, Some(format!("storage answered 403: {}", snippet()))),
            s => (
                Reach::HttpError,
                Some(format!("unexpected HTTP {s} from /?comp=list: {}", snippet())),
            ),
        },
        Service::Workspace => {
            if WORKSPACE_DENIALS.iter().any(|d| body.contains(d)) {
                (
                    Reach::Blocked,
                    Some(format!("private-link denial (HTTP {status}): {}", snippet())),
                )
            } else {
                (Reach::Ok, None)
            }
        }
        Service::Custom => (Reach::Ok, None),
    }
}

fn first_line(s: &str) -> String {
    let line = s
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("(empty body)");
    let mut out: String = line.chars().take(160).collect();
    if line.chars().count() > 160 {
        out.push('…');
    }
    out
}

/// The worst reach over a target's addresses; `skipped` when there are none.
pub fn worst_reach(views: &[ConnectView]) -> Reach {
    views
        .iter()
        .map(|v| v.reach)
        .max_by_key(|r| r.severity())
        .unwrap_or(Reach::Skipped)
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
    views
        .into_iter()
        .flat_map(|v| v.chain.iter())
        .find_map(|name| {
            let lower = name.to_ascii_lowercase();
            if lower.starts_with("privatelink.") {
                return Some(lower);
            }
            lower.find(".privatelink.").map(|i| lower[i + 1..].to_string())
        })
        .unwrap_or_else(|| "the privatelink zone".into())
}

/// The public zone a custom DNS server must forward (not the privatelink one).
fn forward_zone(target: &Target) -> String {
    match &target.privatelink_zone {
        Some(z) => z.strip_prefix("privatelink.").unwrap_or(z).to_string(),
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
}

/// Names the cause of an unhealthy target and says how to fix it.
pub fn diagnose(target: &Target, views: &[DnsView], connect_via: usize, rc: &ReachContext<'_>) -> Diagnosis {
    let expect = target.expect;
    let failing: Vec<&DnsView> = views.iter().filter(|v| !meets(expect, v.verdict)).collect();
    if let Some(first_failing) = failing.first() {
        let primary = views
            .get(connect_via)
            .filter(|v| !meets(expect, v.verdict))
            .unwrap_or(first_failing);
        let good = views.iter().find(|v| meets(expect, v.verdict));
        let (cause, text) = dns_cause(target, primary, good, rc.timeout);
        return Diagnosis {
            healthy: false,
            cause,
            text: Some(text),
        };
    }
    let fqdn = &target.fqdn;
    let port = target.port;
    let worst = rc.connects.iter().max_by_key(|c| c.reach.severity());
    let at = worst.map(|c| c.address.to_string()).unwrap_or_default();
    let detail = worst.and_then(|c| c.detail.clone()).unwrap_or_default();
    let (cause, text) = match rc.reach {
        Reach::Ok => {
            return Diagnosis {
                healthy: true,
                cause: Cause::None,
                text: None,
            };
        }
        Reach::Timeout => (
            Cause::EndpointBlocked,
            format!(
                "DNS is right, but TCP to {at}:{port} timed out: an NSG, firewall or route drops traffic from this node to the endpoint. Fix: allow TCP {port} from the node subnet to {at} (check the NSGs' effective rules and any UDR to a firewall)."
            ),
        ),
        Reach::Unreachable => (
            Cause::EndpointBlocked,
            format!(
                "DNS is right, but there is no route to {at}:{port} ({detail}). Fix: check the node subnet's route table (UDR) and VNet peering to the endpoint's subnet."
            ),
        ),
        Reach::Refused => (
            Cause::EndpointStale,
            format!(
                "DNS points at {at}, but TCP {port} there is refused: nothing listens at that address (private endpoint deleted or its IP reused). Fix: update the record in {} to the current private endpoint's NIC address (or recreate the endpoint's DNS zone group).",
                zone_of(target, views)
            ),
        ),
        Reach::TlsError => {
            let tls = worst.and_then(|c| c.tls);
            let why = match tls {
                Some(TlsOutcome::NameMismatch) => format!(
                    "the certificate at {at} is not valid for {fqdn}: the address belongs to another service or a proxy. Fix: check the A record points at this resource's private endpoint, and always connect with the public FQDN, never the privatelink name."
                ),
                Some(TlsOutcome::UnknownIssuer) => format!(
                    "the certificate at {at} is not issued by a trusted CA: a TLS-inspecting firewall or proxy is in the path. Fix: exempt {fqdn} from TLS inspection, or trust the proxy's CA (tls.extra_ca_file) if inspection is intended."
                ),
                Some(TlsOutcome::Expired) => format!(
                    "the certificate at {at} has expired. Fix: whatever presents it (a proxy, or a wrong endpoint) must be fixed; Azure's own certificates do not expire in service."
                ),
                Some(TlsOutcome::Timeout) => format!(
                    "the TLS handshake with {at} did not finish in time: something accepts TCP but does not speak TLS, or stalls. Fix: check firewalls and proxies on the path."
                ),
                _ => format!(
                    "the TLS handshake with {at} failed ({detail}). Fix: check for a proxy or firewall on the path."
                ),
            };
            (Cause::TlsMismatch, why)
        }
        Reach::HttpError | Reach::Blocked => (Cause::HttpRejected, http_text(target, &at, &detail)),
        Reach::Skipped => (
            Cause::DnsError,
            "no address to connect to through the connect_via resolver".to_string(),
        ),
    };
    Diagnosis {
        healthy: false,
        cause,
        text: Some(text),
    }
}

fn http_text(target: &Target, at: &str, detail: &str) -> String {
    match target.service {
        Service::Acr => format!(
            "{at}: {detail}. The registry saw this request as coming from a network it does not allow: the request reached the public endpoint, or the registry's firewall rejects the private one. Fix: make {} resolve to the registry's private endpoint, or allow the network under Networking in the registry.",
            target.fqdn
        ),
        Service::Keyvault => format!(
            "{at}: {detail}. Fix: check the vault's Networking settings (allow private endpoint access) and that the request uses the private endpoint."
        ),
        Service::Storage => format!(
            "{at}: {detail}. The storage firewall rejected the request. Fix: reach the account through its private endpoint, or allow the subnet under the account's Networking."
        ),
        Service::Workspace => format!(
            "{at}: {detail}. The workspace rejects requests that do not come through its private link. Fix: make the workspace names resolve to its private endpoint through this DNS path."
        ),
        Service::Custom => format!("{at}: {detail}."),
    }
}

fn dns_cause(target: &Target, bad: &DnsView, good: Option<&DnsView>, timeout: Duration) -> (Cause, String) {
    let fqdn = &target.fqdn;
    let r = &bad.resolver;
    let zone = zone_of(target, std::iter::once(bad).chain(good));
    let fwd = forward_zone(target);

    let chain = chain_text(fqdn, bad);
    let addrs = addr_list(&bad.addresses);
    if bad.unreachable {
        let why = bad.detail.clone().unwrap_or_default();
        return (
            Cause::DnsUnreachable,
            format!(
                "resolver '{r}' cannot reach its DNS server ({why}): nothing answers on port 53 there, or the path is blocked. Fix: check the DNS server and the NSG rules for port 53 from the node subnet."
            ),
        );
    }
    if bad.verdict == DnsVerdict::Timeout {
        let server = bad.detail.clone().unwrap_or_else(|| "its servers".into());
        return (
            Cause::DnsUnreachable,
            format!(
                "resolver '{r}' gave no answer within {} ({server}): the DNS server is down or UDP/TCP 53 to it is blocked. Fix: check the DNS server and the NSG rules for port 53 from the node subnet.",
                humantime::format_duration(timeout)
            ),
        );
    }
    if let (Expect::Private, Some(good)) = (target.expect, good) {
        return (
            Cause::DnsPathNotForwarding,
            format!(
                "resolver '{}' answers private ({}) but resolver '{r}' answers {} ({chain}, {addrs}): the DNS path behind '{r}' does not reach Azure DNS for this zone. Fix: on that DNS server, conditionally forward {fwd} (the public zone, not {zone}) to 168.63.129.16 or a DNS Private Resolver inbound endpoint.",
                good.resolver,
                addr_list(&good.addresses),
                bad.verdict
            ),
        );
    }
    match (target.expect, bad.verdict) {
        (Expect::Private, DnsVerdict::Public) if bad.privatelink => (
            Cause::ZoneNotLinked,
            format!(
                "resolver '{r}': {chain} ends at public {addrs}: the private DNS zone {zone} is not linked to the VNet this DNS path uses, so the public answer wins. Fix: link {zone} to the VNet (az network private-dns link vnet create --zone-name {zone} ...), or forward {fwd} to 168.63.129.16 from the custom DNS server."
            ),
        ),
        (Expect::Private, DnsVerdict::Public) => (
            Cause::NoPrivateEndpoint,
            format!(
                "resolver '{r}': {chain} resolves to public {addrs} with no privatelink CNAME: the resource has no approved private endpoint. Fix: create a private endpoint for it (or approve the pending connection) with a DNS zone group for {zone}."
            ),
        ),
        (_, DnsVerdict::Nxdomain | DnsVerdict::Nodata) if bad.privatelink => (
            Cause::RecordMissing,
            format!(
                "resolver '{r}': {chain} -> {}: the zone {zone} is linked but holds no record for this name (endpoint deleted, new replica, or record overwritten by another VNet's endpoint). Fix: add the A record for the private endpoint's NIC address to {zone}, or recreate the endpoint's DNS zone group.",
                if bad.verdict == DnsVerdict::Nxdomain {
                    "NXDOMAIN"
                } else {
                    "no address"
                }
            ),
        ),
        (_, DnsVerdict::Nxdomain) => (
            Cause::NameNotFound,
            format!(
                "resolver '{r}': {fqdn} does not exist (NXDOMAIN, no privatelink CNAME): wrong resource name in the config, or the resource was deleted. Fix: check the name in the Azure portal."
            ),
        ),
        (_, DnsVerdict::Mixed) => (
            Cause::MixedAnswers,
            format!(
                "resolver '{r}': {chain} resolves to private and public addresses ({addrs}): clients may use the public one. Fix: remove the extra records so only the private endpoint's address remains in {zone}."
            ),
        ),
        (_, DnsVerdict::UnexpectedIp) => {
            let expected: Vec<String> = target.expected_ips.iter().map(|i| i.to_string()).collect();
            (
                Cause::UnexpectedIp,
                format!(
                    "resolver '{r}': {chain} resolves to {addrs}, not the private endpoint's {}: a stale record, or one overwritten by an endpoint in another VNet sharing the zone. Fix: correct the A record in {zone}.",
                    expected.join(", ")
                ),
            )
        }
        (Expect::Public, DnsVerdict::Private) => (
            Cause::UnexpectedPrivate,
            format!(
                "resolver '{r}': {chain} resolves to private {addrs}, but this target is expected to be public. Fix: check for a private zone shadowing the public name, or set `expect: private`."
            ),
        ),
        (_, v) => {
            let detail = bad.detail.clone().map(|d| format!(": {d}")).unwrap_or_default();
            (
                Cause::DnsError,
                format!(
                    "resolver '{r}' answered {v}{detail} for {fqdn}. Fix: check the DNS server's logs; a forwarder that cannot reach its upstream answers SERVFAIL."
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure;
    use crate::model::TlsOutcome;
    use crate::observation::{DnsAnswer, HttpObservation, TlsObservation};

    fn ranges() -> Vec<IpNet> {
        crate::config::default_private_ranges()
    }

    fn acr() -> Target {
        azure::acr_login(azure::Cloud::Public, "reg01")
    }

    fn answer(rcode: Rcode, chain: &[&str], addrs: &[&str]) -> DnsOutcome {
        DnsOutcome::Answer(DnsAnswer {
            rcode,
            chain: chain.iter().map(|s| s.to_string()).collect(),
            addresses: addrs.iter().map(|s| s.parse().unwrap()).collect(),
            chain_problem: None,
        })
    }

    fn obs(resolver: &str, outcome: DnsOutcome) -> DnsObservation {
        DnsObservation {
            resolver: resolver.into(),
            server: Some("10.0.0.10:53".parse().unwrap()),
            outcome,
            duration: Duration::from_millis(3),
            tcp_fallback: false,
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
            assert_eq!(v.verdict, verdict, "case {i}");
            assert_eq!(v.privatelink, pl, "case {i} privatelink");
        }
    }

    #[test]
    fn chain_problems_are_errors_with_reasons() {
        let t = acr();
        let o = DnsOutcome::Answer(DnsAnswer {
            rcode: Rcode::NoError,
            chain: vec!["a".into()],
            addresses: vec![],
            chain_problem: Some(ChainProblem::Loop("a".into())),
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
            www_authenticate: www.map(String::from),
            keyvault_network_info: None,
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
                Reach::Blocked,
            ),
            (Service::Acr, resp(502, None, ""), Reach::HttpError),
            (Service::Keyvault, resp(200, None, ""), Reach::Ok),
            (Service::Keyvault, resp(401, None, ""), Reach::Ok),
            (
                Service::Keyvault,
                resp(403, None, r#"{"error":{"innererror":{"code":"ForbiddenByFirewall"}}}"#),
                Reach::Blocked,
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
                Reach::Blocked,
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
                Reach::Blocked,
            ),
            (
                Service::Workspace,
                resp(
                    403,
                    None,
                    "...none of the workspaces/registries are accessible from outside of the designated private link",
                ),
                Reach::Blocked,
            ),
            (Service::Custom, resp(500, None, ""), Reach::Ok),
        ];
        for (i, (svc, r, want)) in cases.into_iter().enumerate() {
            assert_eq!(judge_http(svc, &r).0, want, "case {i}: {svc} {}", r.status);
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
            assert_eq!(assess_connect(Service::Acr, &o).reach, want, "case {i}");
        }
    }

    #[test]
    fn worst_reach_picks_the_most_severe() {
        let v = |r| ConnectView {
            address: "10.0.0.1".parse().unwrap(),
            reach: r,
            tls: None,
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
            verdict,
            privatelink,
            rcode: Some("NOERROR".into()),
            chain: if privatelink { vec![PL.into()] } else { vec![] },
            addresses: vec![],
            detail: None,
            unreachable: false,
        }
    }

    fn cause_of(t: &Target, views: &[DnsView], via: usize, reach: Reach, tls: Option<TlsOutcome>) -> Cause {
        let connects = [ConnectView {
            address: "10.1.2.3".parse().unwrap(),
            reach,
            tls,
            detail: None,
        }];
        let rc = ReachContext {
            reach,
            connects: &connects,
            timeout: Duration::from_secs(5),
        };
        let d = diagnose(t, views, via, &rc);
        assert_eq!(d.healthy, d.cause == Cause::None);
        assert_eq!(d.text.is_some(), !d.healthy);
        d.cause
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
            (
                vec![view("system", V::Servfail, false), view("azure", V::Private, true)],
                0,
                Reach::Ok,
                None,
                Cause::DnsPathNotForwarding,
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
                Reach::Blocked,
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
                Reach::Blocked,
                Some(TlsOutcome::Ok),
                Cause::ZoneNotLinked,
            ),
        ];
        for (i, (views, via, reach, tls, want)) in cases.into_iter().enumerate() {
            assert_eq!(cause_of(&t, &views, via, reach, tls), want, "case {i}");
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
        let rc = ReachContext {
            reach: Reach::Ok,
            connects: &[],
            timeout: Duration::from_secs(5),
        };
        let d = diagnose(&t, &[bad], 0, &rc);
        let text = d.text.unwrap();
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
        let text = d.text.unwrap();
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
        };
        let mut bad = view("system", DnsVerdict::Public, true);
        bad.chain = vec![
            "st1.privatelink.file.core.windows.net".into(),
            "fe.store.example".into(),
        ];
        let rc = ReachContext {
            reach: Reach::Ok,
            connects: &[],
            timeout: Duration::from_secs(5),
        };
        let text = diagnose(&t, &[bad], 0, &rc).text.unwrap();
        assert!(
            text.contains("the private DNS zone privatelink.file.core.windows.net is not linked"),
            "{text}"
        );
        // Without a privatelink name in any answer, the text stays generic.
        let text = diagnose(&t, &[view("system", DnsVerdict::Nxdomain, false)], 0, &rc)
            .text
            .unwrap();
        assert!(!text.contains("privatelink.file"), "{text}");
    }
}
