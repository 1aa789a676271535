//! The cause catalogue, in one place: for every [`Cause`] its layer, when it
//! holds and the typical fix (the README's cause table, checked by
//! `tests/docs.rs`), and the templates of the one-line diagnoses the verdict
//! layer gives, with their `{fact}` holes.
//!
//! The verdict rules pick a [`Text`] and gather the [`Facts`] of the case
//! (resolver, chain, addresses, zone, ...); [`render`] fills the template.
//! A service's own words for an HTTP rejection live with the service
//! (`AzureService::rejected`).

use crate::model::{Cause, Layer};

impl Cause {
    /// The cause catalogue: layer, when the cause holds, and the typical fix.
    /// The README's cause table is this table (`tests/docs.rs` checks it);
    /// the verdict layer's diagnoses say the same at length, with the names
    /// and addresses of the case.
    pub const fn catalogue(self) -> (Layer, &'static str, &'static str) {
        match self {
            Cause::None => (Layer::None, "healthy", "nothing to fix"),
            Cause::ZoneNotLinked => (
                Layer::Dns,
                "privatelink CNAME in the chain, but a public answer",
                "link the private zone to the VNet, or forward the public zone to 168.63.129.16",
            ),
            Cause::NoPrivateEndpoint => (
                Layer::Dns,
                "no privatelink CNAME, public answer",
                "create or approve the private endpoint with a DNS zone group",
            ),
            Cause::RecordMissing => (
                Layer::Dns,
                "NXDOMAIN (or no address) after the privatelink CNAME",
                "add the A record or recreate the zone group",
            ),
            Cause::NameNotFound => (
                Layer::Dns,
                "NXDOMAIN without privatelink: the name does not exist",
                "check the resource name",
            ),
            Cause::DnsPathNotForwarding => (
                Layer::Dns,
                "private through one resolver, not through another",
                "conditionally forward the **public** zone to Azure DNS",
            ),
            Cause::DnsUnreachable => (
                Layer::Dns,
                "a resolver timed out, or its server's port is closed / has no route",
                "DNS server down or its port blocked",
            ),
            Cause::DnsError => (
                Layer::Dns,
                "SERVFAIL, REFUSED, another error rcode, loop, over-long chain, spent query budget",
                "the server's ACL (REFUSED) or its forwarders (SERVFAIL)",
            ),
            Cause::DnsPolicyBlocked => (
                Layer::Dns,
                "the chain leads to `blockpolicy.azuredns.invalid`: an Azure DNS security policy blocks the name",
                "an Allow rule with a lower priority number, or remove the domain from the policy's Block list",
            ),
            Cause::ZoneForwarded => (
                Layer::Dns,
                "privatelink CNAME, public or missing answer, and the zone's SOA (asked of Azure DNS) is not Azure's",
                "a forwarding ruleset rule or another DNS server answers the zone: fix that server or the rule",
            ),
            Cause::DnsTcpBlocked => (
                Layer::Dns,
                "a truncated UDP answer whose TCP retry failed (the server answers UDP, not TCP 53)",
                "allow TCP 53 from the node subnet to the DNS server",
            ),
            Cause::DnsStaleCache => (
                Layer::Dns,
                "AKS LocalDNS answers another private address than Azure DNS",
                "LocalDNS's cache holds a replaced endpoint's address: restart LocalDNS or wait out its cache",
            ),
            Cause::DnsServingStale => (
                Layer::Dns,
                "AKS LocalDNS answers, its upstream DNS server does not",
                "restore the upstream DNS server before LocalDNS's serve-stale window runs out",
            ),
            Cause::MixedAnswers => (
                Layer::Dns,
                "private and public addresses together",
                "remove the extra records",
            ),
            Cause::UnexpectedIp => (
                Layer::Dns,
                "private, but not the expected NIC address",
                "correct the record (stale, or overwritten by another VNet's endpoint)",
            ),
            Cause::UnexpectedPrivate => (
                Layer::Dns,
                "`expect: public` but the answer is private",
                "a private zone shadows the name",
            ),
            Cause::OutsideServiceTag => (
                Layer::Dns,
                "a public answer outside every range of the service's tag (with `service_tags_file`)",
                "check for a DNS hijack or a wrong CNAME; refresh the service tags file",
            ),
            Cause::EndpointBlocked => (
                Layer::Endpoint,
                "DNS right, TCP timed out (or no route)",
                "NSG, firewall or UDR",
            ),
            Cause::EndpointStale => (
                Layer::Endpoint,
                "DNS right, TCP refused",
                "the record points at a deleted endpoint",
            ),
            Cause::TlsMismatch => (
                Layer::Endpoint,
                "certificate wrong name, untrusted issuer (TLS inspection), expired, or a stalled handshake",
                "fix the record, or exempt the FQDN from inspection",
            ),
            Cause::AsymmetricRoute => (
                Layer::Endpoint,
                "TCP to a private address connects, then not one byte answers the TLS ClientHello",
                "SNAT private-endpoint traffic on the firewall or NVA, or fix the route table",
            ),
            Cause::HttpRejected => (
                Layer::Http,
                "the service refused (403 firewall, private-link denial) or gave an unexpected answer",
                "networking settings of the resource",
            ),
            Cause::PerimeterDenied => (
                Layer::Http,
                "a network security perimeter's 403 at the public endpoint (Storage `AuthorizationFailure` naming the perimeter, Key Vault `ForbiddenByNsp`)",
                "under an enforced perimeter only the private endpoint path works: fix the DNS cause, or add an inbound access rule to the perimeter's profile",
            ),
            Cause::NoPublicEgress => (
                Layer::Endpoint,
                "every public endpoint times out (at least 2) while the private endpoints answer",
                "the node has no way out: a network-isolated cluster or a subnet without outbound access; one node alert, not one per endpoint",
            ),
            Cause::ProxyNotBypassed => (
                Layer::Endpoint,
                "an HTTP proxy is set (AKS httpProxyConfig) and NO_PROXY does not name this private target: workloads' HTTPS goes to the proxy, not the private endpoint",
                "add the service's domain (e.g. `.vault.azure.net`) to NO_PROXY in httpProxyConfig (which reimages the node pools)",
            ),
            Cause::InternalError => (
                Layer::Internal,
                "the probe of this target failed inside netprobe (a bug; the log has the panic)",
                "report it; the other targets are unaffected",
            ),
        }
    }

    pub const fn layer(self) -> Layer {
        self.catalogue().0
    }

    /// The alert rule (deploy/prometheus/netprobe-rules.yaml) that covers
    /// a target with this cause; `None`: the catch-all
    /// `NetprobeTargetUnhealthy` does, whose cause filter is generated from
    /// this table (`scripts/gen`).
    pub const fn alert(self) -> Option<&'static str> {
        match self {
            Cause::None | Cause::OutsideServiceTag | Cause::InternalError | Cause::DnsStaleCache => None,
            Cause::ZoneNotLinked | Cause::NoPrivateEndpoint | Cause::MixedAnswers => {
                Some("NetprobePrivateDNSRegression")
            }
            Cause::RecordMissing
            | Cause::NameNotFound
            | Cause::DnsUnreachable
            | Cause::DnsError
            | Cause::DnsPolicyBlocked
            | Cause::ZoneForwarded
            | Cause::DnsTcpBlocked
            | Cause::DnsServingStale => Some("NetprobeDNSFailing"),
            Cause::UnexpectedIp | Cause::UnexpectedPrivate => Some("NetprobeDNSUnexpectedAnswer"),
            Cause::DnsPathNotForwarding => Some("NetprobeDNSPathMismatch"),
            Cause::EndpointBlocked
            | Cause::EndpointStale
            | Cause::TlsMismatch
            | Cause::AsymmetricRoute
            | Cause::HttpRejected
            | Cause::PerimeterDenied => Some("NetprobePrivateEndpointUnreachable"),
            Cause::NoPublicEgress => Some("NetprobeNoPublicEgress"),
            Cause::ProxyNotBypassed => Some("NetprobeProxyNotBypassed"),
        }
    }
}

/// The named values a diagnosis template refers to as `{name}`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts(Vec<(&'static str, String)>);

impl Facts {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) one fact.
    pub fn with(mut self, name: &'static str, value: impl ToString) -> Self {
        let value = value.to_string();
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}

/// Fills a template's `{name}` holes from `facts`. A hole without a fact
/// stays as written (the table tests check that none is left).
pub fn render(text: Text, facts: &Facts) -> String {
    let template = text.template();
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}').map(|close| (&after[..close], &after[close + 1..])) {
            Some((name, tail)) if let Some(value) = facts.get(name) => {
                out.push_str(value);
                rest = tail;
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The `{name}` holes of a template, in order.
pub fn holes(template: &str) -> Vec<&str> {
    template
        .split('{')
        .skip(1)
        .filter_map(|s| s.split_once('}').map(|(name, _)| name))
        .collect()
}

macro_rules! texts {
    ($( $(#[$doc:meta])* $variant:ident => ($cause:ident, $template:expr), )+) => {
        /// One diagnosis text of the catalogue.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Text {
            $( $(#[$doc])* $variant, )+
        }

        impl Text {
            pub const ALL: &'static [Text] = &[$(Text::$variant,)+];

            /// The cause this text explains.
            pub const fn cause(self) -> Cause {
                match self {
                    $( Text::$variant => Cause::$cause, )+
                }
            }

            /// The template, with `{fact}` holes.
            pub const fn template(self) -> &'static str {
                match self {
                    $( Text::$variant => $template, )+
                }
            }
        }
    };
}

texts! {
    /// The resolver's server port is closed or has no route.
    DnsServerUnreachable => (DnsUnreachable,
        "resolver '{resolver}' cannot reach its DNS server ({why}): nothing answers on port {port} there, or the \
         path is blocked. Fix: check the DNS server and the NSG rules for port {port} from the node subnet."),
    /// The resolver's resolv.conf is missing, unreadable or empty.
    ResolverWithoutServers => (DnsError,
        "resolver '{resolver}' has no DNS server to ask: {why}. Fix: check that the file is mounted into the \
         pod (the node-resolver kustomize component, or `nodeResolver.enabled` in the Helm chart) and lists \
         `nameserver` lines; netprobe reads it again every round."),
    DnsTimeout => (DnsUnreachable,
        "resolver '{resolver}' gave no answer within {timeout} (no answer from {server}): the DNS server is down or \
         UDP/TCP {port} to it is blocked. Fix: check the DNS server and the NSG rules for port {port} from \
         the node subnet."),
    DnsRefused => (DnsError,
        "resolver '{resolver}' answered {what} from {server} for {fqdn}: a server that refuses the node's queries: \
         its ACL (allow-query / access-control) does not include the node subnet, or it does not recurse for this \
         zone. Fix: allow queries from the node subnet on that server."),
    DnsServfail => (DnsError,
        "resolver '{resolver}' answered {what} from {server} for {fqdn}: a server that cannot resolve the name: a \
         forwarder that cannot reach its upstream, or a broken zone. Fix: check the DNS server's logs and its \
         forwarders."),
    /// Azure DNS (168.63.129.16) answers SERVFAIL for this name, and answers
    /// the round's other names: a DNS security policy is the first suspect.
    DnsServfailPolicy => (DnsError,
        "resolver '{resolver}' answered SERVFAIL from {server} for {fqdn}, and Azure DNS (168.63.129.16) answers \
         SERVFAIL for it too while it answers this node's other names: an Azure DNS security policy blocking the \
         domain is the first suspect (a Block rule answers SERVFAIL), then a private zone or forwarding target that \
         fails for it. Fix: check the DNS security policies linked to the VNet (DNSQueryLogs | where QueryName \
         has \"{fqdn}\" | where ResolverPolicyRuleAction == \"Block\"); if none blocks it, check the server's \
         logs and its forwarders."),
    /// The chain reached Azure DNS security policy's block sentinel.
    PolicyBlocked => (DnsPolicyBlocked,
        "resolver '{resolver}': {chain}: an Azure DNS security policy blocks {blocked} (a domain list entry matches \
         it or a parent domain) and answers with the block sentinel instead of the record. Fix: in the DNS \
         security policy linked to the VNet, add an Allow rule for the domain with a lower priority number than \
         the Block rule, or remove the domain from the blocked domain list; confirm with DNSQueryLogs | where \
         QueryName has \"{blocked}\" | where ResolverPolicyRuleAction == \"Block\"."),
    /// The zone's SOA says another server holds the privatelink zone.
    ZoneForwarded => (ZoneForwarded,
        "resolver '{resolver}': {chain} -> {answer}, and Azure DNS answers the SOA of {zone} from {soa}, not from \
         an Azure private DNS zone: a DNS Private Resolver forwarding ruleset rule (for {public_zone}, a parent \
         domain or \".\") sends this zone to another DNS server, which overrides the linked private zone for \
         every query from the VNet, 168.63.129.16 included. Fix: remove or narrow the forwarding rule, or add the \
         private endpoint's record to the zone on the server it forwards to."),
    /// A truncated UDP answer whose TCP retry failed.
    DnsTcpFailed => (DnsTcpBlocked,
        "resolver '{resolver}': the answer for {fqdn} from {server} does not fit UDP and the TCP retry failed \
         ({why}): the server answers UDP 53 but TCP 53 is blocked or not served. Fix: allow TCP 53 from the node \
         subnet to {server} in the NSGs, firewalls and NVAs on the path, and check the server listens on TCP."),
    /// AKS LocalDNS answers another private address than the reference resolver.
    StaleCache => (DnsStaleCache,
        "resolver '{resolver}' (AKS LocalDNS, {server}) answers {addresses} for {fqdn} but resolver '{good}' \
         answers {good_addresses}: LocalDNS's cache still holds the address of a private endpoint that was \
         replaced (it keeps answers up to cacheDurationInSeconds, and stale ones up to \
         serveStaleDurationInSeconds). The zone is right; do not recreate the zone group. Fix: wait for the \
         cache to expire, or restart LocalDNS on the node (or lower its cache duration in the node pool's LocalDNS \
         profile)."),
    /// AKS LocalDNS answers while its upstream is silent.
    ServingStale => (DnsServingStale,
        "resolver '{resolver}' (the upstream of AKS LocalDNS '{good}') gives no answer ({why}), yet '{good}' still \
         answers {fqdn}: the pod path lives on cached and stale answers (serve-stale, up to \
         serveStaleDurationInSeconds, 3600 s by default) and will fail when they run out. Fix: restore the \
         upstream DNS server {server} (and port 53 to it over UDP and TCP) before the window ends."),
    DnsUnusable => (DnsError,
        "resolver '{resolver}' answered {what} from {server} for {fqdn}: Fix: check the DNS server's logs."),
    PathNotForwarding => (DnsPathNotForwarding,
        "resolver '{good}' answers private ({good_addresses}) but resolver '{resolver}' answers {verdict} ({chain}, \
         {addresses}): the DNS path behind '{resolver}' does not reach Azure DNS for this zone. Fix: on that DNS \
         server, conditionally forward {public_zone} (the public zone, not {zone}) to 168.63.129.16 or a DNS Private \
         Resolver inbound endpoint. When that path is an Azure Firewall DNS proxy or a Virtual WAN hub, the zone \
         must be linked to the VNet where the resolver lives (zones cannot be linked to a vWAN hub): link {zone} \
         there, or forward to a DNS Private Resolver inbound endpoint in a VNet that has the links."),
    ZoneNotLinked => (ZoneNotLinked,
        "resolver '{resolver}': {chain} ends at public {addresses}: the private DNS zone {zone} is not linked to the \
         VNet this DNS path uses, so the public answer wins. The same answer comes from a linked zone without a \
         record for this name when the link's fallback to the internet (resolutionPolicy: NxDomainRedirect) is on. \
         Fix: link {zone} to the VNet (az network private-dns link vnet create --zone-name {zone} ...) and check it \
         holds the record, or forward {public_zone} to 168.63.129.16 from the custom DNS server."),
    NoPrivateEndpoint => (NoPrivateEndpoint,
        "resolver '{resolver}': {chain} resolves to public {addresses} with no privatelink CNAME: the resource has \
         no approved private endpoint. Fix: create a private endpoint for it (or approve the pending connection) \
         with a DNS zone group for {zone}. Private endpoints in the workspace's managed VNet do not count: they \
         do not serve the AKS cluster's VNet."),
    /// A public answer through a linked Azure private zone: the link's
    /// fallback to the internet hides a missing record.
    RecordMissingFallback => (RecordMissing,
        "resolver '{resolver}': {chain} ends at public {addresses}, yet Azure DNS answers the SOA of {zone} from an \
         Azure private DNS zone ({soa}): the zone is linked, holds no record for this name, and the link's fallback \
         to the internet (resolutionPolicy: NxDomainRedirect) returns the public answer. Do not relink the zone. \
         Fix: add the A record for the private endpoint's NIC address to {zone}, or recreate the endpoint's DNS \
         zone group."),
    RecordMissing => (RecordMissing,
        "resolver '{resolver}': {chain} -> {answer}: the zone {zone} is linked but holds no record for this name \
         (endpoint deleted, new replica, or record overwritten by another VNet's endpoint). Fix: add the A record \
         for the private endpoint's NIC address to {zone}, or recreate the endpoint's DNS zone group."),
    NameNotFound => (NameNotFound,
        "resolver '{resolver}': {fqdn} does not exist (NXDOMAIN, no privatelink CNAME): wrong resource name in the \
         config, or the resource was deleted. Fix: check the name in the Azure portal."),
    MixedAnswers => (MixedAnswers,
        "resolver '{resolver}': {chain} resolves to private and public addresses ({addresses}): clients may use the \
         public one. Fix: remove the extra records so only the private endpoint's address remains in {zone}."),
    UnexpectedIp => (UnexpectedIp,
        "resolver '{resolver}': {chain} resolves to {addresses}, not the private endpoint's {expected}: a stale \
         record, or one overwritten by an endpoint in another VNet sharing the zone. Fix: correct the A record in \
         {zone}."),
    /// API Server VNet Integration: the name answers another address than
    /// the `kubernetes` Service's endpoints.
    ApiServerElsewhere => (UnexpectedIp,
        "resolver '{resolver}': {fqdn} resolves to {addresses}, but the kubernetes Service's endpoints (the API \
         server's internal load balancer with API Server VNet Integration) are {expected}: the record in {zone} is \
         stale or another zone answers the name for this VNet. Fix: check that {zone} is linked to this VNet and \
         holds the API server's address (AKS manages that record; compare az aks show --query \
         apiServerAccessProfile)."),
    UnexpectedPrivate => (UnexpectedPrivate,
        "resolver '{resolver}': {chain} resolves to private {addresses}, but this target is expected to be public. \
         Fix: check for a private zone shadowing the public name, or set `expect: public`."),
    DnsOther => (DnsError,
        "resolver '{resolver}' answered {verdict} for {fqdn}. Fix: check the DNS server's logs."),
    TcpTimeout => (EndpointBlocked,
        "TCP to {at}:{port} timed out: an NSG, firewall or route drops traffic from this node to the endpoint. \
         Fix: allow TCP {port} from the node subnet to {at} (check the NSGs' effective rules and any UDR to a \
         firewall)."),
    /// A public address in a known service tag timed out: name the tag.
    TcpTimeoutTagged => (EndpointBlocked,
        "TCP to {at}:{port} timed out: an NSG, firewall or route drops traffic from this node to this public \
         address, which is in service tag {tag}. Fix: allow outbound TCP {port} to service tag {tag} in the NSG \
         and the firewall (or route) the node subnet uses."),
    OutsideServiceTag => (OutsideServiceTag,
        "{fqdn} resolves to public {addresses}, in no range of {services} in the service tags file: the answer \
         does not lead to Azure's {services} (a DNS hijack, a wrong CNAME or a proxy's record), or the file is \
         older than the address. Fix: check the CNAME chain against the service's documented names, and \
         refresh the service tags file (scripts/trim-service-tags)."),
    NoRoute => (EndpointBlocked,
        "there is no route to {at}:{port} ({detail}). Fix: check the node subnet's route table (UDR) and VNet \
         peering to the endpoint's subnet."),
    TcpRefused => (EndpointStale,
        "DNS points at {at}, but TCP {port} there is refused: nothing listens at that address (private endpoint \
         deleted or its IP reused). Fix: update the record in {zone} to the current private endpoint's NIC address \
         (or recreate the endpoint's DNS zone group)."),
    TlsNameMismatch => (TlsMismatch,
        "the certificate at {at} is not valid for {fqdn}: the address belongs to another service or a proxy. \
         Fix: check the A record points at this resource's private endpoint, and always connect with the public \
         FQDN, never the privatelink name."),
    TlsUnknownIssuer => (TlsMismatch,
        "the certificate at {at} is not issued by a trusted CA: a TLS-inspecting firewall or proxy is in the path. \
         Fix: exempt {fqdn} from TLS inspection, or trust the proxy's CA (tls.extra_ca_file) if inspection is \
         intended."),
    TlsExpired => (TlsMismatch,
        "the certificate at {at} has expired. Fix: whatever presents it (a proxy, or a wrong endpoint) must be \
         fixed; Azure's own certificates do not expire in service."),
    TlsTimeout => (TlsMismatch,
        "the TLS handshake with {at} did not finish in time: something accepts TCP but does not speak TLS, or \
         stalls. Fix: check firewalls and proxies on the path."),
    /// TCP connected to a private address, then silence: the firewall on
    /// the path saw the SYN but not the SYN-ACK.
    AsymmetricRoute => (AsymmetricRoute,
        "TCP to {at}:{port} connects, but {silence}: a \
         stateful firewall or NVA on the path saw the connection's SYN but not the endpoint's SYN-ACK (which \
         returned directly, around it) and drops the flow after the handshake. This is not TLS inspection (an \
         inspecting device answers, with its own certificate). Fix: SNAT the traffic to private endpoints on the \
         firewall (Azure Firewall application rules always SNAT; network rules need SNAT to private ranges \
         configured), or change the route table so both directions take the same path (a UDR for the private \
         endpoint's subnet, or the node subnet's route, through the firewall)."),
    TlsFailed => (TlsMismatch,
        "the TLS handshake with {at} failed ({detail}). Fix: check for a proxy or firewall on the path."),
    /// A network security perimeter denied the public endpoint's request.
    PerimeterDenied => (PerimeterDenied,
        "{at}: {detail}: the resource's network security perimeter denied this request at its public endpoint. \
         Under an enforced perimeter the resource's own firewall (the subnets and addresses under Networking) no \
         longer decides, so allowing the subnet there changes nothing. Fix: reach {fqdn} through a private \
         endpoint (a perimeter never affects private-endpoint traffic), or add an inbound access rule (the \
         node's public egress address prefix, or the subscription) to the perimeter profile the resource is \
         associated with; NSPAccessLogs, category NspPublicInboundPerimeterRulesDenied, shows each denial."),
    /// The public endpoint a DNS cause led to answered with the perimeter's
    /// denial: only the private path works, so the DNS cause is the problem.
    PerimeterBehindDns => (PerimeterDenied,
        "the public endpoint {at} that this answer leads to is behind the resource's network security perimeter, \
         which denied the request ({detail}): under the perimeter only the private endpoint path works, so the \
         DNS cause above is the one to fix (once {fqdn} resolves to the private endpoint, the perimeter no \
         longer applies); do not add perimeter or firewall rules for the node."),
    /// A public endpoint of a node without public egress.
    NoPublicEgress => (NoPublicEgress,
        "this node has no public egress (finding no_public_egress): like every public endpoint probed here, \
         {fqdn} times out while the private endpoints answer; the node finding says why and what to do. This \
         target's own diagnosis: {detail}"),
    /// A private target workloads would send to the proxy (not probed through it).
    ProxyNotBypassed => (ProxyNotBypassed,
        "workloads' HTTPS to {fqdn} goes to the HTTP proxy {proxy}, not to the private endpoint: {clients} send it \
         there, as NO_PROXY does not name it{disagree}. The proxy resolves the name in its own DNS and reaches the \
         public endpoint (403, a private-link denial) or nothing, so pods fail where this node's direct path works. \
         Fix: add {entry} to the cluster's httpProxyConfig.noProxy (az aks update --http-proxy-config; changing \
         httpProxyConfig reimages every node pool, so plan it), or to NO_PROXY in the workload's own environment; \
         set proxy_probe: true to see what the proxy path answers."),
    /// A private target whose path through the proxy was probed and fails.
    ProxyPathFails => (ProxyNotBypassed,
        "workloads' HTTPS to {fqdn} goes to the HTTP proxy {proxy}, not to the private endpoint: {clients} send it \
         there, as NO_PROXY does not name it{disagree}. Through the proxy: {through}. Fix: add {entry} to the \
         cluster's httpProxyConfig.noProxy (az aks update --http-proxy-config; changing httpProxyConfig reimages \
         every node pool, so plan it), or to NO_PROXY in the workload's own environment."),
    /// The service's own words (`AzureService::rejected`) for an HTTP answer.
    HttpRejected => (HttpRejected, "{service_says}"),
    NoAddress => (DnsError, "no resolver gave an address to connect to"),
}

/// How a reachability diagnosis is introduced, given the DNS causes before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lead {
    /// No DNS cause and the endpoint does not answer: "DNS is right, but ...".
    DnsRight,
    /// After DNS causes: the addresses came from resolver `{via}`.
    Through,
    /// As is.
    Plain,
}

impl Lead {
    pub fn wrap(self, text: String, via: &str) -> String {
        match self {
            Lead::DnsRight => format!("DNS is right, but {text}"),
            Lead::Through => format!("through resolver '{via}''s answer, {text}"),
            Lead::Plain => text,
        }
    }
}

/// Every fact name a template may use; `tests` checks each hole against it.
pub const FACT_NAMES: &[&str] = &[
    "resolver",
    "why",
    "port",
    "timeout",
    "server",
    "what",
    "fqdn",
    "good",
    "good_addresses",
    "verdict",
    "chain",
    "addresses",
    "public_zone",
    "zone",
    "answer",
    "expected",
    "at",
    "detail",
    "service_says",
    "tag",
    "services",
    "blocked",
    "soa",
    "silence",
    "proxy",
    "clients",
    "disagree",
    "entry",
    "through",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hole_is_a_known_fact_and_every_cause_has_a_text() {
        for t in Text::ALL {
            for hole in holes(t.template()) {
                assert!(FACT_NAMES.contains(&hole), "{t:?} has the unknown hole {{{hole}}}");
            }
        }
        for c in Cause::ALL
            .iter()
            .filter(|c| !matches!(c, Cause::None | Cause::InternalError))
        {
            assert!(Text::ALL.iter().any(|t| t.cause() == *c), "{c} has no diagnosis text");
        }
    }

    #[test]
    fn render_fills_holes_and_leaves_unknown_ones() {
        let f = Facts::new().with("at", "10.0.0.5").with("port", 443).with("port", 8443);
        assert_eq!(
            render(Text::TcpTimeout, &f),
            "TCP to 10.0.0.5:8443 timed out: an NSG, firewall or route drops traffic from this node to the \
             endpoint. Fix: allow TCP 8443 from the node subnet to 10.0.0.5 (check the NSGs' effective rules \
             and any UDR to a firewall)."
        );
        assert_eq!(render(Text::TlsFailed, &Facts::new()).matches("{at}").count(), 1);
    }

    #[test]
    fn templates_are_single_lines_without_runs_of_spaces() {
        for t in Text::ALL {
            let s = t.template();
            assert!(!s.contains('\n') && !s.contains("  "), "{t:?}: {s:?}");
        }
    }
}
