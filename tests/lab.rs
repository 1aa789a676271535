//! End to end on an AKS node in a VNet (see `vnet/mod.rs`): network
//! namespaces, real BIND servers (customer DNS, an Azure DNS stand-in, the
//! internet's DNS), private endpoints and public front ends with real TLS.
//!
//! Each scenario below is one target: how the lab's DNS and servers present
//! it, and what netprobe must conclude through both resolvers (`vnet`, the
//! node's resolv.conf, which points at the customer DNS server; and `azure`,
//! 168.63.129.16). Together they cover every `cause` the diagnosis layer knows.
//! They run through `netprobe probe --once --output json` and through the
//! agent's `/metrics`, both inside the node namespace.
//!
//! These tests need root, `ip netns`, /dev/net/tun and bind9. Without them
//! they fail and say why; they never pass without running.

mod vnet;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::Stdio;
use std::time::Duration;

use netprobe::model::{Cause, DnsVerdict, Reach};
use netprobe_sim::https::Reply;
use serde_json::Value;
use vnet::{Endpoint, Lab, Policy, Site};

/// The node's two resolvers, as a production config names them.
const RESOLVERS: &str =
    "  - name: vnet\n    resolv_conf: /etc/resolv.conf\n  - name: azure\n    servers: [\"168.63.129.16\"]\n";

/// The extra resolver of a group of scenarios, as `(name, server,
/// connect_via)`.
type ResolverSet = Option<(&'static str, &'static str, bool)>;

/// A third resolver, for scenarios about a resolver, and what its view must
/// say: its verdict, and a fragment of its detail.
#[derive(Clone, Copy)]
struct ExtraResolver {
    name: &'static str,
    server: &'static str,
    verdict: DnsVerdict,
    detail: &'static str,
    /// Reachability uses this resolver's answers (`connect_via`): the pod
    /// path, when the scenario is about the pod path.
    connect_via: bool,
}

struct Scenario {
    /// The target's name, and what the scenario is.
    name: &'static str,
    /// `service:` of the target.
    service: &'static str,
    site: Site,
    /// Extra lines for the target in the config.
    target_yaml: &'static str,
    extra: Option<ExtraResolver>,
    cause: Cause,
    /// The causes that hold besides the primary one, in order.
    also: &'static [Cause],
    /// The reach, through `connect_via`'s addresses or, when it has none,
    /// through the first other resolver's that has.
    reach: Reach,
    /// The DNS verdict through `vnet` and through `azure`.
    dns: [DnsVerdict; 2],
    /// A fragment of the primary diagnosis (empty: any text).
    says: &'static str,
}

/// A scenario probed through `vnet` and `azure` only, with no extra config.
fn scenario(
    name: &'static str,
    service: &'static str,
    site: Site,
    cause: Cause,
    reach: Reach,
    dns: [DnsVerdict; 2],
) -> Scenario {
    Scenario {
        name,
        service,
        site,
        target_yaml: "",
        extra: None,
        cause,
        also: &[],
        reach,
        dns,
        says: "",
    }
}

impl Scenario {
    fn yaml(self, target_yaml: &'static str) -> Scenario {
        Scenario { target_yaml, ..self }
    }

    fn extra(self, extra: ExtraResolver) -> Scenario {
        Scenario {
            extra: Some(extra),
            ..self
        }
    }

    fn also(self, also: &'static [Cause]) -> Scenario {
        Scenario { also, ..self }
    }

    fn says(self, says: &'static str) -> Scenario {
        Scenario { says, ..self }
    }

    /// The extra resolver as `(name, server, connect_via)`: scenarios are
    /// grouped by it.
    fn resolver_set(&self) -> ResolverSet {
        self.extra.map(|e| (e.name, e.server, e.connect_via))
    }
}

fn ip(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
    Ipv4Addr::new(a, b, c, d)
}

fn pv(d: u8) -> Ipv4Addr {
    ip(10, 0, 1, d)
}

fn pb(d: u8) -> Ipv4Addr {
    ip(203, 0, 113, d)
}

fn scenarios() -> Vec<Scenario> {
    use Cause as C;
    use DnsVerdict as D;
    use Reach as R;
    let link = Site::private_link;
    let ws = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0.workspace.westeurope";
    vec![
        scenario(
            "workspace-healthy",
            "workspace",
            link(
                &format!("{ws}.api.azureml.ms"),
                &format!("{ws}.privatelink.api.azureml.ms"),
                pb(4),
                &[pv(4)],
                Endpoint::Serves(Reply::workspace_unauthorized()),
            ),
            C::None,
            R::Ok,
            [D::Private, D::Private],
        ),
        scenario(
            "storage-healthy",
            "storage",
            link(
                "stlabok.blob.core.windows.net",
                "stlabok.privatelink.blob.core.windows.net",
                pb(5),
                &[pv(5)],
                Endpoint::Serves(Reply::storage_anonymous()),
            ),
            C::None,
            R::Ok,
            [D::Private, D::Private],
        ),
        scenario(
            "keyvault-healthy",
            "keyvault",
            link(
                "kv-lab-ok.vault.azure.net",
                "kv-lab-ok.privatelink.vaultcore.azure.net",
                pb(6),
                &[pv(6)],
                Endpoint::Serves(Reply::keyvault_health()),
            ),
            C::None,
            R::Ok,
            [D::Private, D::Private],
        ),
        scenario(
            "acr-healthy",
            "acr",
            link(
                "crlabok.azurecr.io",
                "crlabok.privatelink.azurecr.io",
                pb(7),
                &[pv(7)],
                Endpoint::Serves(Reply::acr_challenge("crlabok.azurecr.io")),
            ),
            C::None,
            R::Ok,
            [D::Private, D::Private],
        ),
        // The file zone exists with the record, but is not linked to the VNet.
        scenario(
            "zone-not-linked",
            "storage",
            link(
                "stlabfile.file.core.windows.net",
                "stlabfile.privatelink.file.core.windows.net",
                pb(8),
                &[pv(8)],
                Endpoint::Serves(Reply::storage_anonymous()),
            ),
            C::ZoneNotLinked,
            R::Rejected,
            [D::Public, D::Public],
        ),
        scenario(
            "no-private-endpoint",
            "keyvault",
            Site::public_only("kv-lab-public.vault.azure.net", pb(9)),
            C::NoPrivateEndpoint,
            R::Rejected,
            [D::Public, D::Public],
        ),
        scenario(
            "record-missing",
            "acr",
            link(
                "crlabgone.azurecr.io",
                "crlabgone.privatelink.azurecr.io",
                pb(10),
                &[],
                Endpoint::Absent,
            ),
            C::RecordMissing,
            R::Skipped,
            [D::Nxdomain, D::Nxdomain],
        ),
        scenario(
            "name-not-found",
            "keyvault",
            Site::nowhere("kv-lab-typo.vault.azure.net"),
            C::NameNotFound,
            R::Skipped,
            [D::Nxdomain, D::Nxdomain],
        ),
        // The customer DNS server has no forwarder for queue.core.windows.net.
        scenario(
            "dns-path-not-forwarding",
            "storage",
            link(
                "stlabq.queue.core.windows.net",
                "stlabq.privatelink.queue.core.windows.net",
                pb(11),
                &[pv(11)],
                Endpoint::Serves(Reply::storage_anonymous()),
            ),
            C::DnsPathNotForwarding,
            R::Rejected,
            [D::Public, D::Private],
        ),
        // The same missing forwarder, for an account behind an enforced network
        // security perimeter: its public endpoint answers the perimeter's
        // 403, and only the private path works.
        scenario(
            "perimeter-behind-dns",
            "storage",
            link(
                "stlabqnsp.queue.core.windows.net",
                "stlabqnsp.privatelink.queue.core.windows.net",
                pb(36),
                &[pv(36)],
                Endpoint::Serves(Reply::storage_anonymous()),
            )
            .front_answers(Reply::storage_perimeter_denied()),
            C::DnsPathNotForwarding,
            R::Rejected,
            [D::Public, D::Private],
        )
        .also(&[C::PerimeterDenied]),
        // A public vault (no private endpoint) in an enforced perimeter
        // without an inbound rule for the node.
        scenario(
            "perimeter-denied",
            "keyvault",
            Site::public_only("kv-lab-nsp.vault.azure.net", pb(37)).front_answers(Reply::keyvault_perimeter_denied()),
            C::PerimeterDenied,
            R::Rejected,
            [D::Public, D::Public],
        )
        .yaml("    expect: public\n")
        .says("denied this request at its public endpoint"),
        // A second custom DNS server whose host is up, its DNS service down:
        // the node gets "port unreachable".
        scenario(
            "dns-unreachable",
            "storage",
            link(
                "stlabdns1.blob.core.windows.net",
                "stlabdns1.privatelink.blob.core.windows.net",
                pb(12),
                &[pv(12)],
                Endpoint::Serves(Reply::storage_anonymous()),
            ),
            C::DnsUnreachable,
            R::Ok,
            [D::Private, D::Private],
        )
        .extra(ExtraResolver {
            name: "custom-dns-2",
            server: "10.0.0.11",
            verdict: D::Error,
            detail: "10.0.0.11:53: Connection refused",
            connect_via: false,
        }),
        // A second custom DNS server behind an NSG that drops port 53.
        scenario(
            "dns-timeout",
            "storage",
            link(
                "stlabdns2.blob.core.windows.net",
                "stlabdns2.privatelink.blob.core.windows.net",
                pb(13),
                &[pv(13)],
                Endpoint::Serves(Reply::storage_anonymous()),
            ),
            C::DnsUnreachable,
            R::Ok,
            [D::Private, D::Private],
        )
        .extra(ExtraResolver {
            name: "custom-dns-3",
            server: "10.0.3.53",
            verdict: D::Timeout,
            detail: "10.0.3.53:53",
            connect_via: false,
        }),
        // The internet's table.core.windows.net zone is broken: SERVFAIL everywhere.
        scenario(
            "dns-error",
            "storage",
            link(
                "stlabt.table.core.windows.net",
                "stlabt.privatelink.table.core.windows.net",
                pb(14),
                &[pv(14)],
                Endpoint::Serves(Reply::storage_anonymous()),
            ),
            C::DnsError,
            R::Skipped,
            [D::Servfail, D::Servfail],
        ),
        // Someone added the public address to the private zone too.
        scenario(
            "mixed-answers",
            "acr",
            link(
                "crlabmix.azurecr.io",
                "crlabmix.privatelink.azurecr.io",
                pb(15),
                &[pv(15), pb(115)],
                Endpoint::Serves(Reply::acr_challenge("crlabmix.azurecr.io")),
            ),
            C::MixedAnswers,
            R::Ok,
            [D::Mixed, D::Mixed],
        ),
        // The record points at an old endpoint's address.
        scenario(
            "unexpected-ip",
            "acr",
            link(
                "crlabstale.azurecr.io",
                "crlabstale.privatelink.azurecr.io",
                pb(16),
                &[pv(16)],
                Endpoint::Serves(Reply::acr_challenge("crlabstale.azurecr.io")),
            ),
            C::UnexpectedIp,
            R::Ok,
            [D::UnexpectedIp, D::UnexpectedIp],
        )
        .yaml("    expected_ips: [10.0.1.116]\n"),
        // A partner's account, reached publicly, shadowed by our private zone.
        scenario(
            "unexpected-private",
            "storage",
            link(
                "stpartner.blob.core.windows.net",
                "stpartner.privatelink.blob.core.windows.net",
                pb(17),
                &[pv(17)],
                Endpoint::Serves(Reply::storage_anonymous()),
            ),
            C::UnexpectedPrivate,
            R::Ok,
            [D::Private, D::Private],
        )
        .yaml("    expect: public\n"),
        // An NSG drops TCP to the endpoint's subnet.
        scenario(
            "endpoint-blocked-drop",
            "storage",
            link(
                "stlabnsg.blob.core.windows.net",
                "stlabnsg.privatelink.blob.core.windows.net",
                pb(18),
                &[ip(10, 0, 3, 18)],
                Endpoint::Absent,
            ),
            C::EndpointBlocked,
            R::Timeout,
            [D::Private, D::Private],
        ),
        // No route to the endpoint's subnet.
        scenario(
            "endpoint-blocked-noroute",
            "storage",
            link(
                "stlabudr.blob.core.windows.net",
                "stlabudr.privatelink.blob.core.windows.net",
                pb(19),
                &[ip(10, 0, 4, 19)],
                Endpoint::Absent,
            ),
            C::EndpointBlocked,
            R::Unreachable,
            [D::Private, D::Private],
        ),
        // The endpoint was deleted; its address is in use, nothing listens on 443.
        scenario(
            "endpoint-stale",
            "keyvault",
            link(
                "kv-lab-stale.vault.azure.net",
                "kv-lab-stale.privatelink.vaultcore.azure.net",
                pb(20),
                &[pv(20)],
                Endpoint::Closed,
            ),
            C::EndpointStale,
            R::Refused,
            [D::Private, D::Private],
        ),
        // The record points at another vault's endpoint.
        scenario(
            "tls-wrong-name",
            "keyvault",
            link(
                "kv-lab-mixup.vault.azure.net",
                "kv-lab-mixup.privatelink.vaultcore.azure.net",
                pb(21),
                &[pv(21)],
                Endpoint::WrongName("kv-other.vault.azure.net", Reply::keyvault_health()),
            ),
            C::TlsMismatch,
            R::TlsError,
            [D::Private, D::Private],
        ),
        // A TLS-inspecting proxy with its own CA sits in front of the registry.
        scenario(
            "tls-intercepted",
            "acr",
            link(
                "crlabproxy.azurecr.io",
                "crlabproxy.privatelink.azurecr.io",
                pb(22),
                &[pv(22)],
                Endpoint::Intercepted(Reply::acr_challenge("crlabproxy.azurecr.io")),
            ),
            C::TlsMismatch,
            R::TlsError,
            [D::Private, D::Private],
        ),
        // A route table sends the endpoint's traffic through a firewall
        // without SNAT; the answers return around it: the flow dies after
        // the TCP handshake.
        scenario(
            "asymmetric-route",
            "keyvault",
            link(
                "kv-lab-asym.vault.azure.net",
                "kv-lab-asym.privatelink.vaultcore.azure.net",
                pb(27),
                &[pv(27)],
                Endpoint::DropsAfterHandshake(Reply::keyvault_health()),
            ),
            C::AsymmetricRoute,
            R::TlsError,
            [D::Private, D::Private],
        )
        .says("TCP to 10.0.1.27:443 connects, but 0 bytes came back in 2s"),
        // The registry's firewall rejects the private endpoint's traffic.
        scenario(
            "http-rejected",
            "acr",
            link(
                "crlabdeny.azurecr.io",
                "crlabdeny.privatelink.azurecr.io",
                pb(23),
                &[pv(23)],
                Endpoint::Serves(Reply::acr_denied()),
            ),
            C::HttpRejected,
            R::Rejected,
            [D::Private, D::Private],
        ),
        // The privatelink name is in the linked zone, with no A record (only
        // a TXT): NODATA after the CNAME, in one query per type.
        scenario(
            "nodata-after-cname",
            "keyvault",
            link(
                "kv-lab-empty.vault.azure.net",
                "kv-lab-empty.privatelink.vaultcore.azure.net",
                pb(24),
                &[],
                Endpoint::Absent,
            )
            .with_no_private_address(),
            C::RecordMissing,
            R::Skipped,
            [D::Nodata, D::Nodata],
        ),
        // The customer DNS server refuses the node; Azure DNS answers
        // privately. An error answer, not a forwarding problem; reachability
        // is still checked through Azure DNS's answer.
        scenario(
            "refused-pod-path",
            "acr",
            link(
                "crlabrefused.azurecr.io",
                "crlabrefused.privatelink.azurecr.io",
                pb(25),
                &[pv(25)],
                Endpoint::Serves(Reply::acr_challenge("crlabrefused.azurecr.io")),
            )
            .refused_by_customer(),
            C::DnsError,
            R::Ok,
            [D::Refused, D::Private],
        ),
        // The pod path's DNS server is dead and the endpoint behind the name
        // is gone: both are named in one round.
        scenario(
            "dead-pod-path-stale-endpoint",
            "keyvault",
            link(
                "kv-lab-deadpath.vault.azure.net",
                "kv-lab-deadpath.privatelink.vaultcore.azure.net",
                pb(26),
                &[pv(26)],
                Endpoint::Closed,
            ),
            C::DnsUnreachable,
            R::Refused,
            [D::Private, D::Private],
        )
        .also(&[C::EndpointStale])
        .extra(ExtraResolver {
            name: "pods",
            server: "10.0.0.11",
            verdict: D::Error,
            detail: "10.0.0.11:53: Connection refused",
            connect_via: true,
        }),
        // An Azure DNS security policy blocks the vault's name and answers
        // with the sentinel CNAME (a BIND response-policy zone stands in).
        scenario(
            "policy-blocked-sentinel",
            "keyvault",
            link(
                "kv-lab-blocked.vault.azure.net",
                "kv-lab-blocked.privatelink.vaultcore.azure.net",
                pb(30),
                &[pv(30)],
                Endpoint::Serves(Reply::keyvault_health()),
            )
            .blocked_by_policy(Policy::Sentinel),
            C::DnsPolicyBlocked,
            R::Skipped,
            [D::Blocked, D::Blocked],
        )
        .says("an Azure DNS security policy blocks kv-lab-blocked.vault.azure.net"),
        // The policy's other form: Azure DNS answers SERVFAIL for the name
        // (a zone that does not load), while it answers every other name.
        scenario(
            "policy-blocked-servfail",
            "keyvault",
            link(
                "kv-lab-denied.vault.azure.net",
                "kv-lab-denied.privatelink.vaultcore.azure.net",
                pb(31),
                &[pv(31)],
                Endpoint::Serves(Reply::keyvault_health()),
            )
            .blocked_by_policy(Policy::ServFail),
            C::DnsError,
            R::Skipped,
            [D::Servfail, D::Servfail],
        )
        .says("an Azure DNS security policy blocking the domain is the first suspect"),
        // The blob zone is linked but has no record for this account, and
        // the link's fallback to the internet (NxDomainRedirect) answers
        // publicly: not `zone_not_linked`.
        scenario(
            "fallback-to-internet",
            "storage",
            link(
                "stlabfb.blob.core.windows.net",
                "stlabfb.privatelink.blob.core.windows.net",
                pb(32),
                &[],
                Endpoint::Absent,
            )
            .falling_back_to_internet(),
            C::RecordMissing,
            R::Rejected,
            [D::Public, D::Public],
        )
        .says("fallback to the internet (resolutionPolicy: NxDomainRedirect)"),
        // A forwarding ruleset rule sends dfs.core.windows.net to an
        // on-premises server with a privatelink zone of its own, without
        // the record: not `record_missing` in the linked zone.
        scenario(
            "zone-forwarded",
            "storage",
            link(
                "stlabfwd.dfs.core.windows.net",
                "stlabfwd.privatelink.dfs.core.windows.net",
                pb(33),
                &[],
                Endpoint::Absent,
            ),
            C::ZoneForwarded,
            R::Skipped,
            [D::Nxdomain, D::Nxdomain],
        )
        .says("from ns1.contoso.example"),
        // A firewall allows only UDP 53 to a custom DNS server: a 90-address
        // answer does not fit UDP and its TCP retry is dropped.
        scenario(
            "tcp53-blocked-truncated",
            "acr",
            link(
                "crlabbig.azurecr.io",
                "crlabbig.privatelink.azurecr.io",
                pb(34),
                &BIG,
                Endpoint::Serves(Reply::acr_challenge("crlabbig.azurecr.io")),
            ),
            C::DnsTcpBlocked,
            R::Ok,
            [D::Private, D::Private],
        )
        .extra(ExtraResolver {
            name: "udp-only",
            server: "10.0.0.12",
            verdict: D::Error,
            detail: "over TCP",
            connect_via: false,
        })
        .says("allow TCP 53 from the node subnet to 10.0.0.12:53"),
        // The same server answers small names over UDP: healthy, and the
        // round's TCP 53 check of it is a finding of its own.
        scenario(
            "tcp53-blocked-small",
            "storage",
            link(
                "stlabudp.blob.core.windows.net",
                "stlabudp.privatelink.blob.core.windows.net",
                pb(35),
                &[pv(35)],
                Endpoint::Serves(Reply::storage_anonymous()),
            ),
            C::None,
            R::Ok,
            [D::Private, D::Private],
        )
        .extra(ExtraResolver {
            name: "udp-only",
            server: "10.0.0.12",
            verdict: D::Private,
            detail: "",
            connect_via: false,
        }),
    ]
}

/// The private endpoint addresses of `tcp53-blocked-truncated`: more A
/// records than fit a 1,232-byte UDP answer.
static BIG: std::sync::LazyLock<Vec<Ipv4Addr>> =
    std::sync::LazyLock::new(|| (1..=90).map(|d| ip(10, 0, 5, d)).collect());

/// The config for `scenarios`, all probed through the same resolvers.
fn config(lab: &Lab, scenarios: &[&Scenario], extra_resolver: ResolverSet, listen: &str) -> String {
    let mut y = format!(
        "timeout: 2s\ninterval: 30s\nlisten: \"{listen}\"\ntls:\n  extra_ca_file: {}\nresolvers:\n{RESOLVERS}",
        lab.ca_file().display()
    );
    if let Some((name, server, connect_via)) = extra_resolver {
        y.push_str(&format!("  - name: {name}\n    servers: [\"{server}\"]\n"));
        if connect_via {
            y.push_str(&format!("connect_via: {name}\n"));
        }
    }
    y.push_str("targets:\n");
    for s in scenarios {
        y.push_str(&format!(
            "  - name: {}\n    fqdn: {}\n    service: {}\n{}",
            s.name, s.site.fqdn, s.service, s.target_yaml
        ));
    }
    y
}

/// Scenarios grouped by their resolver set.
fn groups(all: &[Scenario]) -> Vec<(ResolverSet, Vec<&Scenario>)> {
    let sets: BTreeSet<ResolverSet> = all.iter().map(Scenario::resolver_set).collect();

    sets.into_iter()
        .map(|set| (set, all.iter().filter(|s| s.resolver_set() == set).collect()))
        .collect()
}

/// Checks one target of a JSON report against its scenario; returns the problems.
fn check(s: &Scenario, t: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    let cause = t["cause"].as_str().unwrap_or("?");
    if cause != s.cause.as_str() {
        bad.push(format!("cause {cause}, want {}", s.cause));
    }
    let causes: Vec<&str> = t["causes"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["cause"].as_str()).collect())
        .unwrap_or_default();
    let want: Vec<&str> = (s.cause != Cause::None)
        .then_some(s.cause)
        .into_iter()
        .chain(s.also.iter().copied())
        .map(Cause::as_str)
        .collect();
    if causes != want {
        bad.push(format!("causes {causes:?}, want {want:?}"));
    }
    let reach = t["reach"].as_str().unwrap_or("?");
    if reach != s.reach.as_str() {
        bad.push(format!("reach {reach}, want {}", s.reach));
    }
    if t["healthy"].as_bool() != Some(s.cause == Cause::None) {
        bad.push(format!("healthy {}, want {}", t["healthy"], s.cause == Cause::None));
    }
    for (resolver, want) in ["vnet", "azure"].into_iter().zip(s.dns) {
        let got = t["dns"]
            .as_array()
            .and_then(|a| a.iter().find(|d| d["resolver"] == resolver))
            .and_then(|d| d["verdict"].as_str())
            .unwrap_or("(no view)");
        if got != want.as_str() {
            bad.push(format!("dns via {resolver}: {got}, want {want}"));
        }
    }
    if let Some(ExtraResolver {
        name,
        verdict: want,
        detail,
        ..
    }) = s.extra
    {
        let view = t["dns"]
            .as_array()
            .and_then(|a| a.iter().find(|d| d["resolver"] == name));
        let got = view.and_then(|d| d["verdict"].as_str()).unwrap_or("(no view)");
        let got_detail = view.and_then(|d| d["detail"].as_str()).unwrap_or("");
        if got != want.as_str() || !got_detail.contains(detail) {
            bad.push(format!("dns via {name}: {got} ({got_detail}), want {want} ({detail})"));
        }
    }
    if s.cause != Cause::None && t["diagnosis"].as_str().is_none_or(|d| d.is_empty()) {
        bad.push("no diagnosis text".into());
    }
    let text = t["diagnosis"].as_str().unwrap_or_default();
    if !text.contains(s.says) {
        bad.push(format!("the diagnosis does not say {:?}: {text}", s.says));
    }
    bad
}

/// The round's TCP 53 check: only the server behind the UDP-only firewall
/// (10.0.0.12) is a `dns_tcp_blocked` finding; every other resolver's check
/// passes.
fn check_tcp53(report: &Value, extra: ResolverSet) -> Vec<String> {
    let mut bad = Vec::new();
    let findings: Vec<&str> = report["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|f| f["code"] == "dns_tcp_blocked")
                .filter_map(|f| f["message"].as_str())
                .collect()
        })
        .unwrap_or_default();
    let blocked = extra.is_some_and(|e| e.1 == "10.0.0.12");
    let want = usize::from(blocked);
    if findings.len() != want || (blocked && !findings[0].contains("10.0.0.12:53")) {
        bad.push(format!(
            "dns_tcp_blocked findings {findings:?}, want {want} naming 10.0.0.12:53"
        ));
    }
    for r in report["resolvers"].as_array().into_iter().flatten() {
        // A resolver that answered nothing over UDP is not checked.
        let want = (r["up"] == true).then_some(r["name"] != "udp-only");
        if r["tcp"]["ok"].as_bool() != want {
            bad.push(format!(
                "resolver {}: TCP 53 check {}, want ok={want:?}",
                r["name"], r["tcp"]
            ));
        }
    }
    bad
}

/// The causes `lab_localdns_stale_cache_and_dead_upstream` shows.
const LOCALDNS_LAB_CAUSES: &[Cause] = &[Cause::DnsStaleCache, Cause::DnsServingStale];

/// The causes `lab_http_proxy` shows.
const PROXY_LAB_CAUSES: &[Cause] = &[Cause::ProxyNotBypassed];

/// The causes `lab_network_isolated_node` shows.
const ISOLATED_LAB_CAUSES: &[Cause] = &[Cause::NoPublicEgress];

/// The causes `lab_service_tags_egress_and_the_api_server` shows.
const EGRESS_LAB_CAUSES: &[Cause] = &[Cause::OutsideServiceTag, Cause::EndpointBlocked];

#[test]
fn lab_scenarios_cover_every_cause() {
    let all = scenarios();
    let covered: BTreeSet<Cause> = all
        .iter()
        .map(|s| s.cause)
        .chain(EGRESS_LAB_CAUSES.iter().copied())
        .chain(LOCALDNS_LAB_CAUSES.iter().copied())
        .chain(ISOLATED_LAB_CAUSES.iter().copied())
        .chain(PROXY_LAB_CAUSES.iter().copied())
        .collect();
    // `internal_error` is netprobe's own failure, not a state of the network.
    let missing: Vec<&str> = Cause::ALL
        .iter()
        .filter(|c| !covered.contains(c) && **c != Cause::InternalError)
        .map(|c| c.as_str())
        .collect();
    assert!(missing.is_empty(), "causes without a lab scenario: {missing:?}");
}

/// With `NETPROBE_LAB_SHOW` set, prints each scenario's cause and diagnosis
/// (`-- --nocapture`); with `NETPROBE_BIN`, another build runs (before and
/// after a change).
#[test]
fn lab_probe_once_json_diagnoses_every_scenario() {
    let all = scenarios();
    let sites: Vec<Site> = all.iter().map(|s| s.site.clone()).collect();
    let lab = Lab::start(&sites, Duration::ZERO);
    let mut failures = Vec::new();
    for (extra, group) in groups(&all) {
        let path = lab
            .dir
            .path()
            .join(format!("once-{}.yaml", extra.map_or("std", |e| e.0)));
        std::fs::write(&path, config(&lab, &group, extra, "127.0.0.1:0")).unwrap();
        let out = lab
            .netprobe()
            .args(["probe", "--once", "--output", "json", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "findings exist, so exit 1: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
        for s in &group {
            let t = report["targets"]
                .as_array()
                .and_then(|a| a.iter().find(|t| t["name"] == s.name))
                .unwrap_or_else(|| panic!("no target {} in the report", s.name));
            for problem in check(s, t) {
                failures.push(format!("{}: {problem}\n    {t}", s.name));
            }
            if std::env::var_os("NETPROBE_LAB_SHOW").is_some() {
                println!("{} | {} | {}", s.name, t["cause"], t["diagnosis"]);
            }
        }
        failures.extend(check_tcp53(&report, extra));
    }
    assert!(
        failures.is_empty(),
        "{} scenario checks failed:\n{}\n{}",
        failures.len(),
        failures.join("\n"),
        lab.logs()
    );
    assert!(lab.relay.packets.load(std::sync::atomic::Ordering::Relaxed) > 0);
}

#[test]
fn lab_agent_metrics_carry_every_scenario() {
    let all = scenarios();
    let sites: Vec<Site> = all.iter().map(|s| s.site.clone()).collect();
    let lab = Lab::start(&sites, Duration::ZERO);
    let group: Vec<&Scenario> = all.iter().filter(|s| s.extra.is_none()).collect();
    let path = lab.dir.path().join("agent.yaml");
    std::fs::write(&path, config(&lab, &group, None, "127.0.0.1:9478")).unwrap();
    let mut agent = lab
        .netprobe()
        .args(["--log-format", "json", "probe", "--config"])
        .arg(&path)
        .env("RUST_LOG", "netprobe=debug")
        .env("NETPROBE_MIN_INTERVAL", "0s")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first round in the agent's log.
    let stderr = agent.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("round complete") {
                let _ = tx.send(());
            }
        }
    });
    if rx.recv_timeout(Duration::from_secs(60)).is_err() {
        let _ = agent.kill();
        panic!("the agent did not complete a round in the lab\n{}", lab.logs());
    }
    let metrics = lab.node_get(9478, "/metrics");
    assert!(
        !metrics.is_empty(),
        "no answer from the agent's /metrics in the node namespace"
    );
    let _ = agent.kill();
    let _ = agent.wait();

    let mut failures = Vec::new();
    for s in &group {
        // The cause, and the resolver it was seen through: present for the
        // causes the DNS alerts select (they name the broken path), one of
        // the lab's resolvers.
        let cause = format!("netprobe_target_cause{{cause=\"{}\",fqdn=\"{}\",", s.cause, s.site.fqdn);
        let tail = format!("service=\"{}\",target=\"{}\"}} 1", s.service, s.name);
        let line = metrics.lines().find(|l| l.starts_with(&cause) && l.ends_with(&tail));
        let dns_alert = s.cause.alert().is_some_and(|a| a.contains("DNS"));
        match line.map(|l| l.split("resolver=\"").nth(1).map(|r| r.split('"').next().unwrap_or(""))) {
            None => failures.push(format!("{}: no `{cause}...{tail}`", s.name)),
            Some(Some(r)) if !["vnet", "azure"].contains(&r) => {
                failures.push(format!("{}: the cause names resolver {r:?}", s.name))
            }
            Some(None) if dns_alert => failures.push(format!("{}: the DNS cause names no resolver", s.name)),
            Some(_) => {}
        }
        let reach = format!(
            "netprobe_reach_verdict{{fqdn=\"{}\",service=\"{}\",target=\"{}\",verdict=\"{}\"}} 1",
            s.site.fqdn, s.service, s.name, s.reach
        );
        if !metrics.contains(&reach) {
            failures.push(format!("{}: no `{reach}`", s.name));
        }

        for (resolver, want) in ["vnet", "azure"].into_iter().zip(s.dns) {
            let line = format!(
                "netprobe_dns_verdict{{fqdn=\"{}\",resolver=\"{resolver}\",service=\"{}\",target=\"{}\",verdict=\"{want}\"}} 1",
                s.site.fqdn, s.service, s.name
            );
            if !metrics.contains(&line) {
                failures.push(format!("{}: no `{line}`", s.name));
            }
        }
        let healthy = format!(
            "netprobe_target_healthy{{fqdn=\"{}\",service=\"{}\",target=\"{}\"}} {}",
            s.site.fqdn,
            s.service,
            s.name,
            u8::from(s.cause == Cause::None)
        );
        if !metrics.contains(&healthy) {
            failures.push(format!("{}: no `{healthy}`", s.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} metric checks failed:\n{}\n--- /metrics:\n{}",
        failures.len(),
        failures.join("\n"),
        metrics
            .lines()
            .filter(|l| l.starts_with("netprobe_target_cause") && l.ends_with(" 1"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The DNS queries each scenario costs, counted on the link between the node
/// and the VNet (as a packet capture would count them), one `probe --once`
/// per scenario: within the per-lookup budget for each resolver, and equal to
/// what the report itself counts. With `NETPROBE_LAB_BIN` set, another
/// netprobe binary runs instead (an older build, for before/after numbers),
/// and the test only prints the table (`-- --nocapture`).
#[test]
fn lab_queries_per_scenario_stay_within_the_budget() {
    use netprobe::probe::dns::MAX_QUERIES_PER_LOOKUP;
    use std::sync::atomic::Ordering;
    let all = scenarios();
    let sites: Vec<Site> = all.iter().map(|s| s.site.clone()).collect();
    let lab = Lab::start(&sites, Duration::ZERO);
    let other = std::env::var_os("NETPROBE_LAB_BIN");
    let mut rows = vec![format!("{:<30} {:>9} {:>9}", "scenario", "resolvers", "queries")];
    let mut failures = Vec::new();
    for s in &all {
        let path = lab.dir.path().join(format!("q-{}.yaml", s.name));
        std::fs::write(&path, config(&lab, &[s], s.resolver_set(), "127.0.0.1:0")).unwrap();
        let before = lab.relay.dns_queries.load(Ordering::Relaxed);
        let mut command = match &other {
            Some(bin) => lab.node.command(bin),
            None => lab.netprobe(),
        };
        let out = command
            .args(["probe", "--once", "--output", "json", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        let sent = lab.relay.dns_queries.load(Ordering::Relaxed) - before;
        let resolvers = 2 + u32::from(s.extra.is_some());
        rows.push(format!("{:<30} {resolvers:>9} {sent:>9}", s.name));
        if other.is_some() {
            continue;
        }
        let report: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{}: {e}: {}", s.name, String::from_utf8_lossy(&out.stderr)));
        let counted: u64 = report["targets"][0]["dns"]
            .as_array()
            .map(|a| a.iter().filter_map(|d| d["queries"].as_u64()).sum())
            .unwrap_or(0);
        // The round's own checks (TCP 53, a zone's SOA): one query each.
        let checks: u64 = report["resolvers"]
            .as_array()
            .map(|a| a.iter().filter_map(|r| r["check_queries"].as_u64()).sum())
            .unwrap_or(0);
        let counted = counted + checks;
        // Per resolver: the lookup's budget, plus one TCP 53 check and at
        // most one SOA (one zone per scenario).
        if sent > resolvers * (MAX_QUERIES_PER_LOOKUP + 2) || checks > u64::from(resolvers) + 1 {
            failures.push(format!(
                "{}: {sent} queries on the wire, budget {resolvers} x {MAX_QUERIES_PER_LOOKUP}",
                s.name
            ));
        }
        if counted != u64::from(sent) {
            failures.push(format!("{}: the report counts {counted}, the link saw {sent}", s.name));
        }
    }
    println!("{}", rows.join("\n"));
    assert!(failures.is_empty(), "{}\n{}", failures.join("\n"), rows.join("\n"));
}

/// A private cluster's API server name with API Server VNet Integration.
const VNET_INTEGRATED_API: &str = "aks-lab-1a2b.private.westeurope.azmk8s.io";

/// What one target of the egress lab must show: its cause, reach, and the
/// service tag of its (only) address.
struct Egress {
    target: &'static str,
    cause: Cause,
    reach: Reach,
    tag: &'static str,
}

/// Public resources, the AML extension's endpoints and a private cluster's
/// API server, with the service tags fixture (tests/testdata/service-tags):
/// a public registry behind an NSG that drops its range is `endpoint_blocked`
/// with the tag to allow; a registry whose public answer lies outside the
/// registry's ranges is `outside_service_tag`; the extension's endpoints
/// answer from "the internet" with their tags, Entra ID's range dropped; the
/// API server resolves through its linked privatelink zone and its
/// certificate is verified against the cluster CA, which no other target
/// trusts.
#[test]
fn lab_service_tags_egress_and_the_api_server() {
    let drop = |d: u8| ip(198, 51, 100, d);
    let api = "aks-lab-1a2b.5e6f.privatelink.westeurope.azmk8s.io";
    let any = || Reply::new(404, "");
    let sites = vec![
        Site::public_only("crlabpublic.azurecr.io", drop(7)),
        Site::public_serving(
            "crlabhijack.azurecr.io",
            pb(60),
            Reply::acr_challenge("crlabhijack.azurecr.io"),
        ),
        Site::public_serving("mcr.microsoft.com", pb(70), any()),
        Site::public_serving("westeurope.data.mcr.microsoft.com", pb(73), any()),
        Site::public_serving("westeurope.dp.kubernetesconfiguration.azure.com", pb(120), any()),
        Site::public_serving("westeurope.api.azureml.ms", pb(81), any()),
        Site::public_serving("westeurope.experiments.azureml.net", pb(82), any()),
        Site::public_only("login.microsoftonline.com", drop(21)),
        Site::public_serving("management.azure.com", pb(89), Reply::new(400, "")),
        Site::private_zone_only(api, pv(50), Endpoint::Intercepted(Reply::new(401, ""))),
        Site::private_zone_only(VNET_INTEGRATED_API, pv(51), Endpoint::Intercepted(Reply::new(401, ""))),
    ];
    let lab = Lab::start(&sites, Duration::ZERO);
    let tags = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/testdata/service-tags/ServiceTags_Public_20261102.json"
    );
    let yaml = format!(
        "region: westeurope\ntimeout: 2s\ntls:\n  extra_ca_file: {}\nresolvers:\n{RESOLVERS}\
         service_tags_file: {tags}\naml_extension: true\napi_server_fqdn: {api}\napi_server_ca_file: {}\n\
         container_registries:\n  - {{name: crlabpublic, expect: public, data_endpoint_regions: []}}\n  \
         - {{name: crlabhijack, expect: public, data_endpoint_regions: []}}\n",
        lab.ca_file().display(),
        lab.other_ca_file().display()
    );
    let path = lab.dir.path().join("egress.yaml");
    std::fs::write(&path, &yaml).unwrap();
    let out = lab
        .netprobe()
        .args(["probe", "--once", "--output", "json", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    use Cause as C;
    use Reach as R;
    let e = |target, cause, reach, tag| Egress {
        target,
        cause,
        reach,
        tag,
    };
    let want = [
        e(
            "acr-crlabpublic",
            C::EndpointBlocked,
            R::Timeout,
            "AzureContainerRegistry.WestEurope",
        ),
        e("acr-crlabhijack", C::OutsideServiceTag, R::Ok, "AzureCloud.westeurope"),
        e("egress-mcr", C::None, R::Ok, "MicrosoftContainerRegistry.WestEurope"),
        e("egress-mcr-data", C::None, R::Ok, "AzureFrontDoor.FirstParty"),
        e("egress-extensions", C::None, R::Ok, "AzureCloud.westeurope"),
        e("egress-aml-api", C::None, R::Ok, "AzureMachineLearning.WestEurope"),
        e(
            "egress-aml-experiments",
            C::None,
            R::Ok,
            "AzureMachineLearning.WestEurope",
        ),
        e("egress-entra", C::EndpointBlocked, R::Timeout, "AzureActiveDirectory"),
        e("egress-arm", C::None, R::Ok, "AzureResourceManager"),
    ];
    let mut failures = Vec::new();
    let find = |name: &str| {
        report["targets"]
            .as_array()
            .and_then(|a| a.iter().find(|t| t["name"] == name))
            .unwrap_or_else(|| panic!("no target {name} in {report}"))
    };
    for w in &want {
        let t = find(w.target);
        let got = (
            t["cause"].as_str().unwrap_or("?"),
            t["reach"].as_str().unwrap_or("?"),
            t["connect"][0]["service_tag"].as_str().unwrap_or("(none)"),
        );
        if got != (w.cause.as_str(), w.reach.as_str(), w.tag) {
            failures.push(format!(
                "{}: {got:?}, want ({}, {}, {})\n    {t}",
                w.target, w.cause, w.reach, w.tag
            ));
        }
        if w.cause == C::EndpointBlocked {
            let text = t["diagnosis"].as_str().unwrap_or_default();
            if !text.contains(&format!("allow outbound TCP 443 to service tag {}", w.tag)) {
                failures.push(format!("{}: the diagnosis does not name the tag: {text}", w.target));
            }
        }
    }
    let api = find("api-server");
    if api["healthy"] != true || api["connect"][0]["http_status"] != 401 {
        failures.push(format!("api-server: {api}"));
    }
    for d in api["dns"].as_array().unwrap() {
        if d["verdict"] != "private" || d["privatelink"] != true {
            failures.push(format!("api-server through {}: {d}", d["resolver"]));
        }
    }
    // API Server VNet Integration in private mode: the name lives in
    // private.<region>.azmk8s.io, which is the target's private zone.
    let yaml = format!(
        "region: westeurope\ntimeout: 2s\nresolvers:\n{RESOLVERS}api_server_fqdn: {VNET_INTEGRATED_API}\n\
         api_server_ca_file: {}\n",
        lab.other_ca_file().display()
    );
    let report = probe_once(&lab, "vnet-integration.yaml", &yaml);
    let api = &report["targets"][0];
    if api["name"] != "api-server"
        || api["healthy"] != true
        || api["privatelink_zone"] != "private.westeurope.azmk8s.io"
        || api["dns"]
            .as_array()
            .is_none_or(|d| d.iter().any(|d| d["privatelink"] != true))
    {
        failures.push(format!("the VNet-integrated api-server: {api}"));
    }
    assert!(failures.is_empty(), "{}\n{}", failures.join("\n"), lab.logs());
}

/// A network-isolated node: with `aml_extension: true`, every one of the
/// extension's public endpoints is dropped (no way out of the subnet) while
/// the key vault's private endpoint answers. One node finding,
/// `no_public_egress`, naming the extension's lack of support; each endpoint's
/// primary cause points at it, its own `endpoint_blocked` after (before:
/// seven separate `endpoint_blocked`, seven alerts).
#[test]
fn lab_network_isolated_node() {
    let drop = |d: u8| ip(198, 51, 100, d);
    // The extension's endpoints as the config derives them.
    let mut sites: Vec<Site> = netprobe::service::egress::in_region(netprobe::azure::Cloud::Public, "westeurope")
        .iter()
        .zip(30u8..)
        .map(|(t, d)| Site::public_only(&t.fqdn, drop(d)))
        .collect();
    sites.push(Site::private_link(
        "kv-lab-iso.vault.azure.net",
        "kv-lab-iso.privatelink.vaultcore.azure.net",
        pb(28),
        &[pv(28)],
        Endpoint::Serves(Reply::keyvault_health()),
    ));
    let lab = Lab::start(&sites, Duration::ZERO);
    let yaml = format!(
        "region: westeurope\ntimeout: 2s\ntls:\n  extra_ca_file: {}\nresolvers:\n{RESOLVERS}aml_extension: true\n\
         key_vaults: [kv-lab-iso]\n",
        lab.ca_file().display()
    );
    let report = probe_once(&lab, "isolated.yaml", &yaml);
    let mut failures = Vec::new();
    let findings: Vec<&Value> = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["code"] == "no_public_egress")
        .collect();
    let says = |f: &&Value, what: &str| f["message"].as_str().unwrap_or_default().contains(what);
    if findings.len() != 1
        || !says(&findings[0], "every public endpoint probed (7:")
        || !says(
            &findings[0],
            "The AML extension is not supported on network-isolated AKS clusters",
        )
    {
        failures.push(format!("want one no_public_egress finding: {findings:?}"));
    }
    for t in report["targets"].as_array().unwrap() {
        let causes: Vec<&str> = t["causes"]
            .as_array()
            .map(|a| a.iter().filter_map(|c| c["cause"].as_str()).collect())
            .unwrap_or_default();
        let want: &[&str] = if t["name"] == "keyvault-kv-lab-iso" {
            &[]
        } else {
            &["no_public_egress", "endpoint_blocked"]
        };
        if causes != want || (want.is_empty() != (t["healthy"] == true)) {
            failures.push(format!("{}: causes {causes:?}, want {want:?}", t["name"]));
        }
    }
    let n = report["targets"].as_array().map_or(0, Vec::len);
    if n != 8 {
        failures.push(format!("{n} targets, want 8"));
    }
    assert!(failures.is_empty(), "{}\n{report}", failures.join("\n"));
}

/// The workloads' HTTP proxy (AKS `httpProxyConfig`): a real proxy
/// (`tinyproxy`) in the VNet at 10.0.0.30:8888 with a DNS view of its own
/// (the internet's DNS: every name leads to its public front end), and the
/// agent run with the variables AKS injects. NO_PROXY names the registry's
/// domain and, in Go's form only, blob storage:
/// - the vault is proxied by every client; through the proxy, its public
///   front end refuses: `proxy_not_bypassed`, with `.vault.azure.net`;
/// - blob storage: curl and Python proxy it, Go does not: the same cause,
///   saying the clients disagree;
/// - the registry is bypassed by every client: healthy;
/// - the direct probe never uses the proxy: each private endpoint answers.
///
/// Before: all three healthy (the node's direct path works).
#[test]
fn lab_http_proxy() {
    vnet::named::require("tinyproxy", "tinyproxy");
    let link = Site::private_link;
    let sites = vec![
        link(
            "kv-lab-px.vault.azure.net",
            "kv-lab-px.privatelink.vaultcore.azure.net",
            pb(29),
            &[pv(29)],
            Endpoint::Serves(Reply::keyvault_health()),
        ),
        link(
            "stlabpx.blob.core.windows.net",
            "stlabpx.privatelink.blob.core.windows.net",
            pb(38),
            &[pv(38)],
            Endpoint::Serves(Reply::storage_anonymous()),
        ),
        link(
            "crlabpx.azurecr.io",
            "crlabpx.privatelink.azurecr.io",
            pb(39),
            &[pv(39)],
            Endpoint::Serves(Reply::acr_challenge("crlabpx.azurecr.io")),
        ),
    ];
    let lab = Lab::start(&sites, Duration::ZERO);
    let _proxy = start_tinyproxy(&lab);
    // The proxy's view: the vault's public front end.
    wait_for_address(&lab, PROXY_DNS, "kv-lab-px.vault.azure.net", pb(29));
    let yaml = format!(
        "timeout: 2s\ntls:\n  extra_ca_file: {}\nresolvers:\n{RESOLVERS}proxy_probe: true\n\
         key_vaults: [kv-lab-px]\nstorage_accounts:\n  - {{name: stlabpx, services: [blob]}}\n\
         container_registries:\n  - {{name: crlabpx, data_endpoint_regions: []}}\n",
        lab.ca_file().display()
    );
    let path = lab.dir.path().join("proxy.yaml");
    std::fs::write(&path, &yaml).unwrap();
    let out = lab
        .netprobe()
        .args(["probe", "--once", "--output", "json", "--config"])
        .arg(&path)
        .env("HTTPS_PROXY", format!("http://labuser:s3cret@{PROXY}:8888"))
        .env("HTTP_PROXY", format!("http://labuser:s3cret@{PROXY}:8888"))
        .env(
            "NO_PROXY",
            "localhost,127.0.0.1,10.0.0.0/8,168.63.129.16,*.blob.core.windows.net,.azurecr.io",
        )
        .output()
        .unwrap();
    let report: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let text = report.to_string();
    let mut failures = Vec::new();
    if text.contains("s3cret") {
        failures.push("the proxy's password is in the report".to_string());
    }
    let find = |name: &str| {
        report["targets"]
            .as_array()
            .and_then(|a| a.iter().find(|t| t["name"] == name))
            .unwrap_or_else(|| panic!("no target {name} in {report}"))
    };
    let want: [(&str, &[&str], &[&str]); 3] = [
        (
            "keyvault-kv-lab-px",
            &["proxy_not_bypassed"],
            &[
                "Go, curl and Python send it there",
                "Through the proxy: the tunnel is open, then Key Vault answered 403",
                "add .vault.azure.net to the cluster's httpProxyConfig.noProxy",
                "reimages every node pool",
            ],
        ),
        (
            "storage-stlabpx-blob",
            &["proxy_not_bypassed"],
            &[
                "curl and Python send it there",
                "Go connects directly (NO_PROXY entry '*.blob.core.windows.net'): the clients disagree",
                "Through the proxy: the tunnel is open, then storage answered 403",
                "add .blob.core.windows.net",
            ],
        ),
        ("acr-crlabpx", &[], &[]),
    ];
    for (name, causes, says) in want {
        let t = find(name);
        let got: Vec<&str> = t["causes"]
            .as_array()
            .map(|a| a.iter().filter_map(|c| c["cause"].as_str()).collect())
            .unwrap_or_default();
        let diagnosis = t["diagnosis"].as_str().unwrap_or_default();
        if got != causes || says.iter().any(|s| !diagnosis.contains(s)) {
            failures.push(format!(
                "{name}: causes {got:?}, want {causes:?} saying {says:?}: {diagnosis}"
            ));
        }
        // The direct path is the ground truth: it never goes through the proxy.
        if t["reach"] != "ok"
            || !t["connect"][0]["address"]
                .as_str()
                .is_some_and(|a| a.starts_with("10.0.1."))
        {
            failures.push(format!("{name}: the direct probe: {}", t["connect"]));
        }
    }
    let via = &find("keyvault-kv-lab-px")["proxy"]["via_proxy"];
    if via["connect_status"] != 200 || via["http_status"] != 403 {
        failures.push(format!("the vault through the proxy: {via}"));
    }
    let p = &report["proxy"];
    if p["add_to_no_proxy"] != serde_json::json!([".blob.core.windows.net", ".vault.azure.net"]) || p["probed"] != true
    {
        failures.push(format!("the round's proxy part: {p}"));
    }
    assert!(failures.is_empty(), "{}\n{report}", failures.join("\n"));
}

/// The workloads' HTTP proxy in the VNet.
const PROXY: &str = "10.0.0.30";

/// The proxy's own DNS server: a resolver of the internet's names only.
const PROXY_DNS: &str = "10.0.0.31";

/// Starts tinyproxy in the VNet namespace on 10.0.0.30:8888, resolving
/// through a DNS view of its own (Unbound on 10.0.0.31 forwarding to the
/// internet's DNS, not to the VNet's private zones), with basic
/// authentication as the workloads' variables carry it. Returns both.
fn start_tinyproxy(lab: &Lab) -> (Killed, Killed) {
    lab.vnet.ip(&format!("addr add {PROXY}/32 dev lo"));
    lab.vnet.ip(&format!("addr add {PROXY_DNS}/32 dev lo"));
    let dns = unbound(
        &lab.vnet,
        &lab.dir.path().join("proxy-dns"),
        PROXY_DNS,
        vnet::PUBLIC_DNS,
        "",
    );
    std::fs::create_dir_all(lab.vnet.etc()).unwrap();
    std::fs::write(lab.vnet.etc().join("resolv.conf"), format!("nameserver {PROXY_DNS}\n")).unwrap();
    let d = lab.dir.path().join("tinyproxy");
    std::fs::create_dir_all(&d).unwrap();
    let conf = d.join("tinyproxy.conf");
    std::fs::write(
        &conf,
        format!(
            "Port 8888\nListen {PROXY}\nTimeout 10\nMaxClients 16\nAllow 10.224.0.0/16\nConnectPort 443\n\
             BasicAuth labuser s3cret\nLogLevel Info\nLogFile \"{}\"\nPidFile \"{}\"\n",
            d.join("tinyproxy.log").display(),
            d.join("tinyproxy.pid").display()
        ),
    )
    .unwrap();
    let child = lab
        .vnet
        .command("tinyproxy")
        .args(["-d", "-c"])
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tinyproxy (Debian package tinyproxy; scripts/test installs it)");
    let proxy = Killed(child);
    // Up when it accepts connections.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let addr: std::net::SocketAddr = format!("{PROXY}:8888").parse().unwrap();
    while !lab
        .node
        .on_thread(move || std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "tinyproxy did not start: {}",
            std::fs::read_to_string(d.join("tinyproxy.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (proxy, dns)
}

/// A process killed on drop.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The AKS LocalDNS address for pods.
const LOCALDNS: &str = "169.254.10.11";

/// Starts Unbound as AKS LocalDNS in the node namespace, on
/// 169.254.10.11: forwarding to the customer DNS server, keeping answers for
/// an hour (`cache-min-ttl`, as LocalDNS's cache duration) and serving them
/// stale when the upstream is gone (`serve-expired`).
fn start_localdns(lab: &Lab) -> Killed {
    lab.node.ip(&format!("addr add {LOCALDNS}/32 dev lo"));
    unbound(
        &lab.node,
        &lab.dir.path().join("localdns"),
        LOCALDNS,
        vnet::CUSTOMER_DNS,
        "  cache-min-ttl: 3600\n  serve-expired: yes\n  serve-expired-ttl: 3600\n",
    )
}

/// Unbound in `ns` on `interface`, forwarding every name to `upstream`,
/// with `extra` server options; its files in `dir`.
fn unbound(ns: &vnet::Netns, dir: &std::path::Path, interface: &str, upstream: Ipv4Addr, extra: &str) -> Killed {
    vnet::named::require("unbound", "unbound");
    std::fs::create_dir_all(dir).unwrap();
    let conf = dir.join("unbound.conf");
    std::fs::write(
        &conf,
        format!(
            "server:\n  interface: {interface}\n  port: 53\n  do-ip6: no\n  do-daemonize: no\n  use-syslog: no\n  \
             logfile: \"{d}/unbound.log\"\n  verbosity: 1\n  username: \"\"\n  chroot: \"\"\n  \
             directory: \"{d}\"\n  pidfile: \"{d}/unbound.pid\"\n  access-control: 0.0.0.0/0 allow\n  \
             module-config: \"iterator\"\n  qname-minimisation: no\n{extra}  prefetch: no\n\
             remote-control:\n  control-enable: no\n\
             forward-zone:\n  name: \".\"\n  forward-addr: {upstream}\n",
            d = dir.display(),
        ),
    )
    .unwrap();
    let child = ns
        .command("unbound")
        .arg("-d")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start unbound");
    Killed(child)
}

/// Asks `server` (from the node) for `name` until the answer holds `want`.
fn wait_for_address(lab: &Lab, server: &str, name: &'static str, want: Ipv4Addr) {
    let addr: std::net::SocketAddr = format!("{server}:53").parse().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let obs = lab.node_rt.block(async move {
            netprobe::probe::dns::lookup(
                "wait",
                name,
                &[addr],
                Duration::from_millis(500),
                &netprobe::probe::dns::QueryRate::per_resolver(),
            )
            .await
        });
        if obs.addresses().contains(&std::net::IpAddr::V4(want)) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{server} does not answer {want} for {name}: {obs:?}\n{}",
            lab.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One `probe --once --output json` in the node namespace with `yaml`.
fn probe_once(lab: &Lab, file: &str, yaml: &str) -> Value {
    let path = lab.dir.path().join(file);
    std::fs::write(&path, yaml).unwrap();
    let out = lab
        .netprobe()
        .args(["probe", "--once", "--output", "json", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

/// AKS LocalDNS (Unbound in the node namespace at 169.254.10.11) in front of
/// the customer DNS server, which forwards to Azure DNS:
/// 1. a private endpoint is recreated at a new address while LocalDNS
///    still holds the old one: `dns_stale_cache` (before: healthy, as both
///    answers are private), whose fix is about the cache, not the zone;
/// 2. the upstream server stops answering while LocalDNS answers from its
///    cache: `dns_serving_stale` (before: `dns_unreachable` of the upstream
///    alone, with nothing about the pods' path living on borrowed time).
#[test]
fn lab_localdns_stale_cache_and_dead_upstream() {
    let cached = Site::private_link(
        "kv-lab-cached.vault.azure.net",
        "kv-lab-cached.privatelink.vaultcore.azure.net",
        pb(40),
        &[pv(40)],
        Endpoint::Serves(Reply::keyvault_health()),
    );
    let kept = Site::private_link(
        "stlabcached.blob.core.windows.net",
        "stlabcached.privatelink.blob.core.windows.net",
        pb(42),
        &[pv(42)],
        Endpoint::Serves(Reply::storage_anonymous()),
    );
    let lab = Lab::start(&[cached, kept], Duration::ZERO);
    let _localdns = start_localdns(&lab);
    // Warm LocalDNS's cache with both names.
    wait_for_address(&lab, LOCALDNS, "kv-lab-cached.vault.azure.net", pv(40));
    wait_for_address(&lab, LOCALDNS, "stlabcached.blob.core.windows.net", pv(42));
    // The vault's private endpoint is recreated at a new address.
    lab.edit_azure_zone("privatelink.vaultcore.azure.net", |z| {
        z.replace("10.0.1.40", "10.0.1.41")
    });
    wait_for_address(&lab, "168.63.129.16", "kv-lab-cached.vault.azure.net", pv(41));
    let yaml = format!(
        "timeout: 2s\ntls:\n  extra_ca_file: {}\nresolvers:\n  - name: pods\n    servers: [\"{LOCALDNS}\"]\n    \
         upstream: vnet\n  - name: vnet\n    servers: [\"10.0.0.10\"]\n  - name: azure\n    servers: [\"168.63.129.16\"]\n\
         connect_via: pods\ntargets:\n  - {{name: kv-cached, fqdn: kv-lab-cached.vault.azure.net, service: keyvault}}\n  \
         - {{name: st-cached, fqdn: stlabcached.blob.core.windows.net, service: storage}}\n",
        lab.ca_file().display()
    );
    let find = |report: &Value, name: &str| -> Value {
        report["targets"]
            .as_array()
            .and_then(|a| a.iter().find(|t| t["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {report}"))
    };
    let causes = |t: &Value| -> Vec<String> {
        t["causes"]
            .as_array()
            .map(|a| a.iter().filter_map(|c| c["cause"].as_str().map(String::from)).collect())
            .unwrap_or_default()
    };

    let report = probe_once(&lab, "localdns-1.yaml", &yaml);
    let pods = &report["resolvers"][0];
    assert!(
        pods["localdns"] == true && pods["upstream"] == "vnet" && report["resolvers"][1]["localdns"] == false,
        "LocalDNS is a property of the resolver: {}",
        report["resolvers"]
    );
    let kv = find(&report, "kv-cached");
    assert_eq!(causes(&kv), ["dns_stale_cache"], "{kv}");
    let text = kv["diagnosis"].as_str().unwrap();
    assert!(
        text.contains("10.0.1.40") && text.contains("10.0.1.41") && text.contains("do not recreate the zone group"),
        "{text}"
    );
    assert_eq!(find(&report, "st-cached")["healthy"], true);

    // The upstream DNS server stops answering (an NSG now drops port 53).
    lab.vnet_nft("add rule inet lab input ip daddr 10.0.0.10 udp dport 53 drop");
    lab.vnet_nft("add rule inet lab input ip daddr 10.0.0.10 tcp dport 53 drop");
    let report = probe_once(&lab, "localdns-2.yaml", &yaml);
    let st = find(&report, "st-cached");
    assert_eq!(causes(&st), ["dns_serving_stale"], "{st}");
    assert_eq!(st["reach"], "ok", "{st}");
    let text = st["diagnosis"].as_str().unwrap();
    assert!(
        text.contains("lives on cached and stale answers") && text.contains("'pods'") && text.contains("10.0.0.10:53"),
        "{text}"
    );
}
