//! The judge: a round's observations in, the typed [`RoundReport`] out.
//! The one place that decides: DNS and reachability verdicts and causes
//! (through the pure `verdict` rules), the Service Tags judgement, and what
//! Kubernetes told (region, inference router). No I/O and no clock: the
//! engine (`probe`) and the cluster reader (`cluster`) only observe.
//!
//! A new input to diagnosis (a proxy, LocalDNS, TCP 53, an SOA) is a field
//! of an observation and a rule here or in `verdict`; the engine only
//! gathers it.

use std::net::IpAddr;

use crate::catalogue::{Facts, Text, render};
use crate::cluster::{ClusterObservation, judge_scoring_service, region_finding, scoring_service_unavailable};
use crate::config::Config;
use crate::model::{Cause, DnsVerdict, Expect, FindingCode, Reach};
use crate::observation::{RoundObservation, TargetObservation, ZoneSoa};
use crate::proxy::ProxyEnv;
use crate::report::{
    Finding, ProxyReport, ResolverReport, RoundReport, ScoringServiceReport, SharedCause, TargetProxy, TargetReport,
    TcpCheckReport,
};
use crate::service::{Service, Target};
use crate::verdict::{self, CauseFinding, ConnectView, DnsContext, DnsView, ReachContext, ZoneHolder};

/// Judges a whole round: every target, then what the cluster told.
pub fn round(config: &Config, obs: &RoundObservation, cluster: &ClusterObservation) -> RoundReport {
    let upstreams: Vec<Option<usize>> = config.resolvers.iter().map(|r| r.upstream).collect();
    let round_facts = RoundFacts {
        azure_answers: obs
            .targets
            .iter()
            .flatten()
            .flat_map(|t| &t.dns)
            .any(|d| d.server.is_some_and(verdict::is_azure_dns) && d.answered().is_some()),
        zone_soas: &obs.zone_soas,
        upstreams: &upstreams,
        api_endpoints: match &cluster.api_endpoints {
            Some(Ok(list)) => Some(list.as_slice()),
            _ => None,
        },
        proxy: &obs.proxy,
    };
    let targets: Vec<TargetReport> = config
        .targets
        .iter()
        .zip(&obs.targets)
        .map(|(t, o)| match o {
            Some(o) => target(config, t, o, &round_facts),
            None => TargetReport::internal_error(t),
        })
        .collect();
    let (mut findings, scoring) = cluster_findings(config, cluster);
    let mut report = RoundReport::new(config, obs.started_at, obs.duration, &obs.servers, targets);
    for (r, held) in report.resolvers.iter_mut().zip(&obs.held) {
        r.queries_held = *held;
    }
    findings.extend(resolver_checks(&mut report, obs));
    findings.extend(no_public_egress(&mut report.targets));
    report.proxy = proxy_report(config, &obs.proxy, &report.targets);
    report.shared_cause = shared_cause(&report.targets, &report.resolvers);
    report.with_cluster(cluster.node.clone(), findings, scoring)
}

/// The fewest public endpoints that must all time out for a node to be
/// judged without public egress.
pub const NO_EGRESS_MIN_TARGETS: usize = 2;

/// Microsoft Learn: network-isolated AKS clusters (the AML extension is not
/// supported there), and default outbound access (private subnets).
const NETWORK_ISOLATED_DOC: &str = "https://learn.microsoft.com/azure/aks/concepts-network-isolated";
const DEFAULT_OUTBOUND_DOC: &str =
    "https://learn.microsoft.com/azure/virtual-network/ip-services/default-outbound-access";

/// A node with no public egress: every target reached at public addresses
/// (at least [`NO_EGRESS_MIN_TARGETS`]; a target expected private that
/// resolved publicly does not count, its DNS is its problem) fails with
/// `endpoint_blocked` (a timeout or no route) while a target reached at
/// private addresses connects. One finding for the node;
/// each of those targets gets `no_public_egress` as its primary cause,
/// pointing at it, its own `endpoint_blocked` after (so that one alert fires
/// for the node, not one per endpoint).
pub fn no_public_egress(targets: &mut [TargetReport]) -> Option<Finding> {
    let cut_off =
        |t: &TargetReport| matches!(t.reach, Reach::Timeout | Reach::Unreachable) && t.cause == Cause::EndpointBlocked;
    let public: Vec<usize> = (0..targets.len())
        .filter(|&i| targets[i].expect != Expect::Private && path_verdict(&targets[i]) == Some(DnsVerdict::Public))
        .collect();
    let private_works = targets.iter().any(|t| {
        path_verdict(t) == Some(DnsVerdict::Private) && !matches!(t.reach, Reach::Timeout | Reach::Unreachable)
    });
    if public.len() < NO_EGRESS_MIN_TARGETS || !private_works || !public.iter().all(|&i| cut_off(&targets[i])) {
        return None;
    }
    let names: Vec<&str> = public.iter().map(|&i| targets[i].fqdn.as_str()).collect();
    let aml = targets.iter().any(|t| t.service == Service::Egress);
    let message = format!(
        "no public egress from this node: every public endpoint probed ({}: {}) times out while the private \
         endpoints answer. The node's subnet has no way out: a network-isolated cluster (outboundType none or \
         block), or a subnet without default outbound access (a private subnet) and no NAT gateway, load \
         balancer outbound rule or firewall route{}. Fix: give the node subnet an egress path (a NAT gateway, or a \
         UDR to Azure Firewall that allows the endpoints), or, where isolation is intended, reach each service \
         through a private endpoint. ({NETWORK_ISOLATED_DOC}, {DEFAULT_OUTBOUND_DOC})",
        names.len(),
        names.join(", "),
        if aml {
            ". The AML extension is not supported on network-isolated AKS clusters: it needs these endpoints"
        } else {
            ""
        },
    );
    // With the workloads' HTTP proxy carrying every one of them, closed
    // direct egress may be the design: say so rather than ask to open it.
    let proxied = public.iter().all(|&i| {
        targets[i]
            .proxy
            .as_ref()
            .is_some_and(|p| p.clients.iter().any(|d| d.proxy.is_some()))
    });
    let message = if proxied {
        format!(
            "{message} The workloads' HTTP proxy (HTTPS_PROXY) carries every one of these endpoints: when it is \
             the cluster's intended way out (httpProxyConfig, with egress closed otherwise), closed direct egress \
             is by design and only the path through the proxy matters; do not open direct egress for netprobe."
        )
    } else {
        message
    };
    for &i in &public {
        let t = &mut targets[i];
        let own = t.diagnosis.clone().unwrap_or_default();
        let facts = Facts::new().with("fqdn", &t.fqdn).with("detail", own);
        t.causes.insert(
            0,
            CauseFinding {
                cause: Cause::NoPublicEgress,
                resolver: None,
                diagnosis: render(Text::NoPublicEgress, &facts),
            },
        );
        t.cause = Cause::NoPublicEgress;
        t.diagnosis = Some(t.causes[0].diagnosis.clone());
    }
    Some(Finding {
        code: FindingCode::NoPublicEgress,
        message,
    })
}

/// The DNS verdict of the resolver whose addresses a target connected to.
fn path_verdict(t: &TargetReport) -> Option<DnsVerdict> {
    let via = t.connect_resolver.as_ref()?;
    t.dns.iter().find(|d| &d.resolver == via).map(|d| d.verdict)
}

/// The fewest targets for a shared cause to be worth saying once.
pub const SHARED_CAUSE_MIN_TARGETS: usize = 3;

/// Every target failing with the same primary cause through the same
/// resolver (at least [`SHARED_CAUSE_MIN_TARGETS`]): one problem of the
/// node's path (its DNS, or its way out), not one per zone or endpoint,
/// said once. `None` when any target differs.
pub fn shared_cause(targets: &[TargetReport], resolvers: &[ResolverReport]) -> Option<SharedCause> {
    let first = targets.first()?.causes.first()?;
    let all_same = targets.len() >= SHARED_CAUSE_MIN_TARGETS
        && targets.iter().all(|t| {
            !t.healthy
                && t.causes
                    .first()
                    .is_some_and(|c| c.cause == first.cause && c.resolver == first.resolver)
        });
    if !all_same {
        return None;
    }
    let n = targets.len();
    let cause = first.cause;
    let diagnosis = match &first.resolver {
        Some(r) => {
            let servers = resolvers
                .iter()
                .find(|x| &x.name == r)
                .map(|x| x.servers.join(", "))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "none".into());
            let nothing = if cause == Cause::NameNotFound {
                format!(" (it answers NXDOMAIN for every name: resolver '{r}' answers nothing)")
            } else {
                String::new()
            };
            format!(
                "every target ({n}) fails with {cause} through resolver '{r}'{nothing}: one problem of that DNS \
                 path, not {n}. Check the node's DNS first: the servers '{r}' asks ({servers}), that they answer, \
                 and where they forward (CoreDNS, the VNet's DNS servers, 168.63.129.16), before any zone or \
                 record. The first target's diagnosis follows in full; the others are listed by name."
            )
        }
        // A reachability cause on every endpoint: the node's way out. Other
        // causes without a resolver (internal_error) say nothing shared.
        None if cause.alert() != Some("NetprobePrivateEndpointUnreachable") => return None,
        None => format!(
            "every target ({n}) fails with {cause} while its DNS answers as expected: one problem on this node's way \
             out, not {n}: an NSG, firewall, route table (UDR to an NVA) or proxy in front of every endpoint. Check \
             the node's egress first. The first target's diagnosis follows in full; the others are listed by name."
        ),
    };
    Some(SharedCause {
        cause,
        resolver: first.resolver.clone(),
        targets: n,
        diagnosis,
    })
}

/// The round's own checks on each resolver: the TCP 53 check (a server that
/// answers UDP but not TCP is a finding), and the queries they cost.
fn resolver_checks(report: &mut RoundReport, obs: &RoundObservation) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (r, check) in report.resolvers.iter_mut().zip(&obs.tcp_checks) {
        r.check_queries += obs
            .zone_soas
            .iter()
            .filter(|s| s.resolver == r.name)
            .map(|s| u64::from(s.queries))
            .sum::<u64>();
        let Some(c) = check else { continue };
        r.check_queries += u64::from(c.queries);
        let (ok, detail) = match &c.outcome {
            Ok(rcode) => (true, rcode.as_string()),
            Err(why) => (false, why.clone()),
        };
        if !ok && !c.held_back {
            findings.push(Finding {
                code: FindingCode::DnsTcpBlocked,
                message: format!(
                    "resolver '{}': {} answers over UDP but not over TCP 53 ({}): answers that do not fit UDP \
                     (many addresses, long chains) and AKS LocalDNS, which forwards over TCP, fail through it. Fix: \
                     allow TCP 53 from the node subnet to {} in the NSGs, firewalls and NVAs on the path, and check \
                     the server listens on TCP.",
                    r.name,
                    c.server,
                    crate::text::shown(&detail, 200),
                    c.server.ip()
                ),
            });
        }
        r.tcp = Some(TcpCheckReport {
            server: c.server.to_string(),
            name: c.name.clone(),
            ok,
            detail,
        });
    }
    findings
}

/// What the round as a whole tells about each target's judgement.
pub struct RoundFacts<'a> {
    /// Azure DNS gave a usable answer for some name this round.
    pub azure_answers: bool,
    pub zone_soas: &'a [ZoneSoa],
    /// Each resolver's upstream (`upstream`), in configuration order.
    pub upstreams: &'a [Option<usize>],
    /// The `kubernetes` Service's endpoint addresses, when read (API Server
    /// VNet Integration).
    pub api_endpoints: Option<&'a [IpAddr]>,
    /// The workloads' HTTP proxy variables.
    pub proxy: &'a ProxyEnv,
}

/// The proxy's part of the round, when a proxy is set: the variables, and
/// the private targets a client would send to it with the NO_PROXY entries
/// that would stop that.
fn proxy_report(config: &Config, env: &ProxyEnv, targets: &[TargetReport]) -> Option<ProxyReport> {
    if !env.configured() {
        return None;
    }
    let proxied: Vec<&TargetReport> = targets
        .iter()
        .filter(|t| t.expect == Expect::Private)
        .filter(|t| t.proxy.as_ref().is_some_and(|p| p.add_to_no_proxy.is_some()))
        .collect();
    let mut add: Vec<String> = proxied
        .iter()
        .filter_map(|t| t.proxy.as_ref().and_then(|p| p.add_to_no_proxy.clone()))
        .collect();
    add.sort();
    add.dedup();
    Some(ProxyReport {
        variables: env.shown(),
        proxied_private: proxied.iter().map(|t| t.name.clone()).collect(),
        add_to_no_proxy: add,
        probed: config.proxy_probe,
    })
}

/// Judges one target's observations.
pub fn target(cfg: &Config, target: &Target, obs: &TargetObservation, round: &RoundFacts<'_>) -> TargetReport {
    let views: Vec<DnsView> = obs
        .dns
        .iter()
        .map(|o| verdict::assess_dns(target, o, &cfg.private_ranges))
        .collect();
    let tags = cfg.service_tags.as_deref();
    let region = cfg.region.as_deref();
    let connect_views: Vec<ConnectView> = obs
        .connects
        .iter()
        .map(|o| {
            let mut v = verdict::assess_connect(target.service, o);
            if !verdict::is_private(o.address, &cfg.private_ranges) {
                v.service_tag = tags
                    .and_then(|t| t.tag_for(o.address, target.tag_services, region))
                    .map(|t| t.name.clone());
            }
            v
        })
        .collect();
    let outside_tag = tags
        .filter(|t| !target.tag_services.is_empty() && t.knows_any(target.tag_services))
        .map(|t| {
            let mut outside: Vec<IpAddr> = views
                .iter()
                .flat_map(|v| &v.addresses)
                .filter(|a| !a.private && !t.in_services(a.ip, target.tag_services))
                .map(|a| a.ip)
                .collect();
            outside.sort();
            outside.dedup();
            (outside, target.tag_services)
        });
    let via = obs.connect_resolver.filter(|i| *i < views.len());
    let reach = verdict::worst_reach(&connect_views);
    let mut diagnosis = verdict::diagnose(
        target,
        &views,
        cfg.connect_via,
        &ReachContext {
            reach,
            connects: &connect_views,
            timeout: cfg.timeout,
            expected_addresses: via.is_some_and(|i| verdict::meets(target.expect, views[i].verdict)),
            via: via.map(|i| views[i].resolver.as_str()),
            outside_tag,
            dns: DnsContext {
                zone_holder: zone_holder(target, obs, round.zone_soas),
                azure_answers_others: round.azure_answers,
                upstreams: round.upstreams,
            },
        },
    );
    if crate::service::apiserver::vnet_integration(target) {
        diagnosis.vnet_integrated_api_server(target, &views, round.api_endpoints);
    }
    let proxy = round.proxy.configured().then(|| {
        let clients = round.proxy.decide_all(&target.fqdn);
        let via_proxy = obs.via_proxy.as_ref().map(|p| verdict::assess_proxy(target.service, p));
        diagnosis.proxied_private(target, &clients, via_proxy.as_ref());
        let proxied = clients.iter().any(|d| d.proxy.is_some());
        TargetProxy {
            disagree: clients.iter().any(|d| d.proxy.is_some() != proxied),
            add_to_no_proxy: proxied.then(|| crate::proxy::bypass_entry(&target.fqdn)),
            clients,
            via_proxy,
        }
    });
    let via_name = via.map(|i| views[i].resolver.clone());
    let mut report = TargetReport::new(
        target,
        &obs.dns,
        &views,
        &obs.connects,
        &connect_views,
        reach,
        via_name,
        diagnosis,
    );
    report.proxy = proxy;
    report
}

/// Who answers the target's privatelink zone, from the round's SOAs.
fn zone_holder(target: &Target, obs: &TargetObservation, soas: &[ZoneSoa]) -> ZoneHolder {
    let Some(zone) = target.zone_seen(obs) else {
        return ZoneHolder::Unknown;
    };
    match soas.iter().find(|s| s.zone == zone).map(|s| &s.outcome) {
        Some(Ok(soa)) => verdict::zone_holder(&zone, soa.as_ref()),
        _ => ZoneHolder::Unknown,
    }
}

/// Cluster-level findings (the node's region against the workspace's) and
/// the inference router's judgement, from what the cluster reader saw.
pub fn cluster_findings(config: &Config, cluster: &ClusterObservation) -> (Vec<Finding>, Option<ScoringServiceReport>) {
    let mut findings = Vec::new();
    if config.region_pending {
        findings.push(Finding {
            code: FindingCode::RegionUnknown,
            message: format!(
                "`region: auto`, but this node's region could not be read from the Kubernetes API ({}): the \
                 targets that need the region (the workspace, registry data endpoints, the AML extension's \
                 endpoints) are not probed until it is; netprobe tries again every round. Fix: check the API \
                 server's reachability from the node and the agent's RBAC (get nodes), or set `region` explicitly.",
                crate::text::shown(cluster.node_error.as_deref().unwrap_or("not read yet"), 300)
            ),
        });
    }
    if let Some(node) = &cluster.node
        && !config.region_auto
        && let Some(f) = region_finding(config.region.as_deref(), node)
    {
        findings.push(f);
    }
    let scoring = cluster.scoring_service.as_ref().map(|(ns, name, read)| match read {
        Ok(svc) => judge_scoring_service(ns, name, svc, &config.private_ranges),
        Err(e) => scoring_service_unavailable(ns, name, e),
    });
    (findings, scoring)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::model::{Cause, DnsVerdict, Reach};
    use crate::observation::{DnsAnswer, DnsObservation, DnsOutcome, Rcode};
    use crate::report::DnsReport;

    fn config() -> Config {
        Config::from_yaml("key_vaults: [kvone, kvtwo]\n", "t.yaml", None).unwrap()
    }

    fn public_answer(resolver: &str) -> DnsObservation {
        DnsObservation {
            resolver: resolver.into(),
            server: None,
            outcome: DnsOutcome::Answer(DnsAnswer {
                rcode: Rcode::NoError,
                chain: vec![],
                addresses: vec!["20.1.2.3".parse().unwrap()],
                omitted: 0,
                chain_problem: None,
                negative_soa: false,
            }),
            duration: Duration::from_millis(1),
            tcp_fallback: false,
            queries: 1,
        }
    }

    /// A target reached at the addresses its expectation asks for ("any":
    /// public), with `reach` and the cause it implies.
    fn reached(cfg: &Config, expect: Expect, reach: Reach) -> TargetReport {
        let mut t = TargetReport::internal_error(&cfg.targets[0]);
        t.expect = expect;
        t.reach = reach;
        t.connect_resolver = Some("system".into());
        t.dns = vec![DnsReport {
            resolver: "system".into(),
            server: None,
            verdict: if expect == Expect::Private {
                DnsVerdict::Private
            } else {
                DnsVerdict::Public
            },
            rcode: None,
            cname_chain: vec![],
            addresses: vec![],
            addresses_omitted: 0,
            privatelink: false,
            duration: Duration::ZERO,
            tcp_fallback: false,
            queries: 1,
            detail: None,
        }];
        let cause = match reach {
            Reach::Ok => Cause::None,
            Reach::Timeout | Reach::Unreachable => Cause::EndpointBlocked,
            _ => Cause::TlsMismatch,
        };
        t.healthy = cause == Cause::None;
        t.cause = cause;
        t.causes = if t.healthy {
            vec![]
        } else {
            vec![CauseFinding {
                cause,
                resolver: None,
                diagnosis: "TCP to 203.0.113.9:443 timed out".into(),
            }]
        };
        t.diagnosis = t.causes.first().map(|c| c.diagnosis.clone());
        t
    }

    /// No public egress: every public endpoint (2 or more) cut off while a
    /// private one connects; anything less is per-target causes only.
    #[test]
    fn no_public_egress_table() {
        let cfg = Config::from_yaml("key_vaults: [kvone]\n", "t.yaml", None).unwrap();
        let t = |expect: Expect, reach: Reach| reached(&cfg, expect, reach);
        use Expect::{Any, Private as Pv, Public as Pb};
        use Reach as R;
        let cases: Vec<(&str, Vec<TargetReport>, bool)> = vec![
            (
                "isolated",
                vec![t(Pb, R::Timeout), t(Pb, R::Unreachable), t(Pv, R::Ok)],
                true,
            ),
            (
                "the AML extension's endpoints expect any answer",
                vec![t(Any, R::Timeout), t(Any, R::Timeout), t(Pv, R::Ok)],
                true,
            ),
            (
                "a private endpoint with its own TLS problem still connects",
                vec![t(Pb, R::Timeout), t(Pb, R::Timeout), t(Pv, R::TlsError)],
                true,
            ),
            (
                "one public endpoint is not a pattern",
                vec![t(Pb, R::Timeout), t(Pv, R::Ok)],
                false,
            ),
            (
                "one public endpoint answers",
                vec![t(Pb, R::Timeout), t(Pb, R::Ok), t(Pv, R::Ok)],
                false,
            ),
            (
                "no private endpoint to compare",
                vec![t(Pb, R::Timeout), t(Pb, R::Timeout)],
                false,
            ),
            (
                "nothing answers at all",
                vec![t(Pb, R::Timeout), t(Pb, R::Timeout), t(Pv, R::Timeout)],
                false,
            ),
            (
                "a public endpoint fails otherwise",
                vec![t(Pb, R::Timeout), t(Pb, R::TlsError), t(Pv, R::Ok)],
                false,
            ),
        ];
        for (name, mut targets, want) in cases {
            let before: Vec<Cause> = targets.iter().map(|t| t.cause).collect();
            let finding = no_public_egress(&mut targets);
            assert_eq!(finding.is_some(), want, "{name}");
            for (t, was) in targets.iter().zip(before) {
                let moved = want && t.expect != Pv;
                let causes: Vec<Cause> = t.causes.iter().map(|c| c.cause).collect();
                if moved {
                    assert_eq!(causes, [Cause::NoPublicEgress, Cause::EndpointBlocked], "{name}");
                    assert_eq!(t.cause, Cause::NoPublicEgress);
                    let text = t.diagnosis.as_deref().unwrap();
                    assert!(
                        text.contains("finding no_public_egress") && text.ends_with("timed out"),
                        "{text}"
                    );
                } else {
                    assert_eq!(
                        t.cause, was,
                        "{name}: a target the finding does not cover keeps its cause"
                    );
                }
            }
            if let Some(f) = finding {
                assert_eq!(f.code, FindingCode::NoPublicEgress);
                assert!(
                    f.message.contains("network-isolated") && !f.message.contains("AML extension"),
                    "{}",
                    f.message
                );
            }
        }
    }

    /// Every public endpoint on the workloads' proxy: the finding stands,
    /// and says closed direct egress may be the design.
    #[test]
    fn no_public_egress_behind_the_workloads_proxy() {
        let cfg = Config::from_yaml("key_vaults: [kvone]\n", "t.yaml", None).unwrap();
        let env = ProxyEnv::from_pairs([("HTTPS_PROXY", "http://10.0.0.30:3128".to_string())]);
        let mut targets: Vec<TargetReport> = [
            (Expect::Any, Reach::Timeout),
            (Expect::Any, Reach::Timeout),
            (Expect::Private, Reach::Ok),
        ]
        .into_iter()
        .map(|(expect, reach)| {
            let mut t = reached(&cfg, expect, reach);
            t.proxy = Some(TargetProxy {
                clients: env.decide_all("mcr.microsoft.com"),
                disagree: false,
                add_to_no_proxy: None,
                via_proxy: None,
            });
            t
        })
        .collect();
        let f = no_public_egress(&mut targets).expect("the finding");
        assert!(f.message.contains("closed direct egress is by design"), "{}", f.message);
    }

    /// A cause is said once for the round only when every target (3 or
    /// more) shares it, through the same resolver.
    #[test]
    fn a_shared_cause_needs_every_target_and_one_resolver() {
        let cfg = Config::from_yaml("key_vaults: [kvone, kvtwo, kvthree]\n", "t.yaml", None).unwrap();
        let report = |cause: Cause, resolver: Option<&str>| {
            let mut t = TargetReport::internal_error(&cfg.targets[0]);
            t.causes[0].cause = cause;
            t.causes[0].resolver = resolver.map(str::to_string);
            t
        };
        let nx = |r| report(Cause::NameNotFound, Some(r));
        let mut healthy = nx("system");
        healthy.healthy = true;
        let resolvers = RoundReport::new(&cfg, SystemTime::UNIX_EPOCH, Duration::ZERO, &[Ok(vec![])], vec![]).resolvers;
        type Case<'a> = (&'a str, Vec<TargetReport>, Option<(Cause, Option<&'a str>)>);
        let cases: Vec<Case> = vec![
            (
                "all NXDOMAIN through system",
                vec![nx("system"), nx("system"), nx("system")],
                Some((Cause::NameNotFound, Some("system"))),
            ),
            ("two targets only", vec![nx("system"), nx("system")], None),
            (
                "one through another resolver",
                vec![nx("system"), nx("system"), nx("azure")],
                None,
            ),
            ("one healthy", vec![nx("system"), nx("system"), healthy], None),
            (
                "one other cause",
                vec![nx("system"), nx("system"), report(Cause::RecordMissing, Some("system"))],
                None,
            ),
            (
                "every endpoint blocked",
                vec![
                    report(Cause::EndpointBlocked, None),
                    report(Cause::EndpointBlocked, None),
                    report(Cause::EndpointBlocked, None),
                ],
                Some((Cause::EndpointBlocked, None)),
            ),
            (
                "every target an internal error",
                vec![
                    report(Cause::InternalError, None),
                    report(Cause::InternalError, None),
                    report(Cause::InternalError, None),
                ],
                None,
            ),
            ("none", vec![], None),
        ];
        for (what, targets, want) in cases {
            let got = shared_cause(&targets, &resolvers);
            assert_eq!(got.as_ref().map(|s| (s.cause, s.resolver.as_deref())), want, "{what}");
            if let Some(s) = got {
                assert_eq!(s.targets, targets.len(), "{what}");
                assert!(s.diagnosis.contains(s.cause.as_str()), "{what}: {}", s.diagnosis);
                match s.resolver {
                    Some(r) => assert!(s.diagnosis.contains("node's DNS") && s.diagnosis.contains(&r)),
                    None => assert!(s.diagnosis.contains("egress")),
                }
            }
        }
    }

    /// The judge alone decides: a target whose task died is an
    /// `internal_error`, the others are judged from their observations,
    /// and a resolver index the observation cannot back is ignored.
    #[test]
    fn a_round_is_judged_from_observations_alone() {
        let cfg = config();
        let obs = RoundObservation {
            started_at: SystemTime::UNIX_EPOCH,
            duration: Duration::ZERO,
            servers: vec![Ok(vec![])],
            held: vec![3],
            tcp_checks: vec![None],
            zone_soas: vec![],
            targets: vec![
                None,
                Some(TargetObservation {
                    dns: vec![public_answer("system")],
                    connect_resolver: Some(7),
                    connects: vec![],
                    via_proxy: None,
                }),
            ],
            proxy: ProxyEnv::default(),
        };
        let report = round(&cfg, &obs, &ClusterObservation::default());
        assert_eq!(report.targets[0].cause, Cause::InternalError);
        let kv = &report.targets[1];
        assert_eq!(kv.dns[0].verdict, DnsVerdict::Public);
        assert_eq!(kv.cause, Cause::NoPrivateEndpoint);
        assert_eq!((kv.reach, kv.connect_resolver.as_deref()), (Reach::Skipped, None));
        assert!(!report.healthy);
        assert_eq!(report.resolvers[0].lookups, 1);
        assert_eq!(report.resolvers[0].queries_held, 3);
        assert!(report.proxy.is_none() && kv.proxy.is_none());
    }

    /// With the workloads' proxy set and NO_PROXY without the vault, the
    /// private target is a proxy cause after its own, with the entry to
    /// add; probed through the proxy, what the proxy answered.
    #[test]
    fn a_private_target_on_the_proxy_path_is_a_cause() {
        use crate::observation::ProxyProbeObservation;
        let cfg = config();
        let env = ProxyEnv::from_pairs([
            ("HTTPS_PROXY", "http://user:pw@10.0.0.30:3128".to_string()),
            ("NO_PROXY", "localhost,10.0.0.0/8,*.vault.azure.net".to_string()),
        ]);
        let obs = |via_proxy: Option<ProxyProbeObservation>| RoundObservation {
            started_at: SystemTime::UNIX_EPOCH,
            duration: Duration::ZERO,
            servers: vec![Ok(vec![])],
            held: vec![0],
            tcp_checks: vec![None],
            zone_soas: vec![],
            targets: vec![
                None,
                Some(TargetObservation {
                    dns: vec![public_answer("system")],
                    connect_resolver: None,
                    connects: vec![],
                    via_proxy,
                }),
            ],
            proxy: env.clone(),
        };
        let report = round(&cfg, &obs(None), &ClusterObservation::default());
        let kv = &report.targets[1];
        let causes: Vec<Cause> = kv.causes.iter().map(|c| c.cause).collect();
        assert_eq!(causes, [Cause::NoPrivateEndpoint, Cause::ProxyNotBypassed]);
        let text = &kv.causes[1].diagnosis;
        assert!(
            text.contains("http://***@10.0.0.30:3128")
                && text.contains("curl and Python send it there")
                && text.contains("Go connects directly (NO_PROXY entry '*.vault.azure.net')")
                && text.contains("add .vault.azure.net to the cluster's httpProxyConfig.noProxy")
                && text.contains("reimages every node pool")
                && !text.contains("pw"),
            "{text}"
        );
        let p = kv.proxy.as_ref().unwrap();
        assert!(p.disagree && p.add_to_no_proxy.as_deref() == Some(".vault.azure.net"));
        let r = report.proxy.as_ref().unwrap();
        assert_eq!(
            (r.add_to_no_proxy.clone(), r.proxied_private.clone()),
            (vec![".vault.azure.net".to_string()], vec![kv.name.clone()])
        );
        assert!(!format!("{:?}", r.variables).contains("pw"));

        let probed = ProxyProbeObservation {
            proxy: "http://***@10.0.0.30:3128".into(),
            tcp: crate::model::TcpOutcome::Ok,
            tcp_detail: None,
            connect: Ok((502, "HTTP/1.1 502 Bad Gateway".into())),
            duration: Duration::from_millis(3),
            tls: None,
            http: None,
        };
        let report = round(&cfg, &obs(Some(probed)), &ClusterObservation::default());
        let kv = &report.targets[1];
        let text = &kv.causes[1].diagnosis;
        assert!(
            text.contains("Through the proxy: the proxy could not reach the name (HTTP/1.1 502 Bad Gateway)"),
            "{text}"
        );
        assert_eq!(
            kv.proxy.as_ref().unwrap().via_proxy.as_ref().unwrap().connect_status,
            Some(502)
        );
    }
}
