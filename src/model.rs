//! Vocabulary shared by configuration, probing, verdicts and output.
//!
//! Every enum here renders as a fixed lower-case string (`as_str`), which is
//! what the JSON report and, later, metric label values use. Keeping them in
//! one place keeps those strings from drifting apart.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

/// An enum with a fixed lower-case string per value (`as_str`, `Display`,
/// serde) and `ALL`, in declaration order. Used for every label vocabulary.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable string form used in reports and metric labels.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::schemars::JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> ::std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut ::schemars::SchemaGenerator) -> ::schemars::Schema {
                ::schemars::json_schema!({ "type": "string", "enum": [$($text),+] })
            }
        }
    };
}
pub(crate) use string_enum;

string_enum! {
    /// Which per-target series the agent exports (`metrics:` in the config).
    #[derive(Default)]
    MetricSet {
        /// The default: health, the current cause, reach and DNS verdicts
        /// (only the current value, as a label), and the last latencies.
        /// At most 16 series per target with two resolvers.
        #[default]
        Compact => "compact",
        /// Compact plus every state of every state set (zeros included) and
        /// per-phase latency histograms: about 145 series per target with two resolvers.
        Full => "full",
    }
}

string_enum! {
    /// What a target's DNS answers must look like.
    Expect {
        Private => "private",
        Public => "public",
        Any => "any",
    }
}

string_enum! {
    /// The outcome of resolving one target through one resolver.
    DnsVerdict {
        /// Every address is inside `private_ranges` (and in `expected_ips`, if set).
        Private => "private",
        /// No address is inside `private_ranges`.
        Public => "public",
        /// Some addresses are private, some public.
        Mixed => "mixed",
        Nxdomain => "nxdomain",
        /// NOERROR with no address for the final name.
        Nodata => "nodata",
        Servfail => "servfail",
        Refused => "refused",
        Timeout => "timeout",
        /// CNAME loop, chain longer than the limit, malformed answer, I/O error.
        Error => "error",
        /// Private, but not one of the target's `expected_ips`.
        UnexpectedIp => "unexpected_ip",
        /// The chain leads to Azure DNS security policy's block sentinel
        /// (`blockpolicy.azuredns.invalid`): the name was blocked, not resolved.
        Blocked => "blocked",
    }
}

string_enum! {
    /// The outcome of connecting to a target (worst over its addresses),
    /// declared from best to worst: the derived order is the severity order.
    Reach {
        Ok => "ok",
        /// No address to try.
        Skipped => "skipped",
        HttpError => "http_error",
        /// The service answered and refused this client (HTTP 403 from its
        /// network rules): cause `http_rejected`. Not `endpoint_blocked`,
        /// which is a connection that times out.
        Rejected => "rejected",
        TlsError => "tls_error",
        Refused => "refused",
        Unreachable => "unreachable",
        Timeout => "timeout",
    }
}

string_enum! {
    /// The likely cause of an unhealthy target. `None` for healthy targets.
    Cause {
        None => "none",
        /// The chain passes through `privatelink.<zone>` but ends at a public address.
        ZoneNotLinked => "zone_not_linked",
        /// No `privatelink` alias at all and a public answer: no approved private endpoint.
        NoPrivateEndpoint => "no_private_endpoint",
        /// NXDOMAIN (or no address) after the `privatelink` CNAME.
        RecordMissing => "record_missing",
        /// The name does not exist even publicly.
        NameNotFound => "name_not_found",
        /// Private through one resolver, not through another.
        DnsPathNotForwarding => "dns_path_not_forwarding",
        DnsUnreachable => "dns_unreachable",
        DnsError => "dns_error",
        /// An Azure DNS security policy blocks the name (the chain leads to
        /// `blockpolicy.azuredns.invalid`).
        DnsPolicyBlocked => "dns_policy_blocked",
        /// The privatelink zone's SOA is not Azure's private DNS: a forwarding
        /// ruleset rule (or another DNS server) answers the zone for the VNet.
        ZoneForwarded => "zone_forwarded",
        /// A server answers UDP but not TCP 53 (a truncated answer's TCP retry
        /// failed).
        DnsTcpBlocked => "dns_tcp_blocked",
        /// AKS LocalDNS answers another private address than Azure DNS: its
        /// cache holds a replaced endpoint's address.
        DnsStaleCache => "dns_stale_cache",
        /// AKS LocalDNS still answers while its upstream DNS server does not:
        /// the pod path lives on cached answers until serve-stale runs out.
        DnsServingStale => "dns_serving_stale",
        MixedAnswers => "mixed_answers",
        UnexpectedIp => "unexpected_ip",
        /// A target expected public resolved to a private address.
        UnexpectedPrivate => "unexpected_private",
        /// A public answer outside every range of the service's tag
        /// (`service_tags_file`): not Azure's address for this service.
        OutsideServiceTag => "outside_service_tag",
        /// TCP connect timed out or had no route.
        EndpointBlocked => "endpoint_blocked",
        /// TCP connection refused: nothing listens at the address.
        EndpointStale => "endpoint_stale",
        TlsMismatch => "tls_mismatch",
        /// TCP to a private address connects, and nothing at all answers the
        /// TLS ClientHello: a stateful firewall or NVA that saw only one
        /// direction of the handshake (the reply bypassed it) drops the flow.
        AsymmetricRoute => "asymmetric_route",
        HttpRejected => "http_rejected",
        /// A network security perimeter denied the request at the public
        /// endpoint (it never affects private-endpoint traffic).
        PerimeterDenied => "perimeter_denied",
        /// Every public endpoint times out while the private ones answer:
        /// the node has no public egress at all (the finding
        /// `no_public_egress`); the target's own `endpoint_blocked` follows.
        NoPublicEgress => "no_public_egress",
        /// A workload's HTTP client would send this private target to the
        /// HTTP proxy (NO_PROXY does not name it), whose path fails or was
        /// not probed: the direct probe is not the pods' path.
        ProxyNotBypassed => "proxy_not_bypassed",
        /// The probe of this target failed inside netprobe (a bug: see the logs).
        InternalError => "internal_error",
    }
}

string_enum! {
    /// Where a cause lies: the DNS answers, the endpoint (TCP, TLS), the
    /// service's HTTP answer, or netprobe itself.
    Layer {
        None => "none",
        Dns => "dns",
        Endpoint => "endpoint",
        Http => "http",
        Internal => "internal",
    }
}

string_enum! {
    /// A connection phase with a latency histogram.
    ConnectPhase {
        Tcp => "tcp",
        Tls => "tls",
        Http => "http",
    }
}

/// A phase of probing one target: the DNS lookup through a named resolver,
/// or a connection phase. Shown as `dns(<resolver>)`, `tcp`, `tls`, `http`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    Dns(String),
    Connect(ConnectPhase),
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::Dns(resolver) => write!(f, "dns({resolver})"),
            Phase::Connect(p) => f.write_str(p.as_str()),
        }
    }
}

impl Serialize for Phase {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Phase {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if let Some(resolver) = text.strip_prefix("dns(").and_then(|r| r.strip_suffix(')')) {
            return Ok(Phase::Dns(resolver.to_string()));
        }
        ConnectPhase::ALL
            .iter()
            .find(|p| p.as_str() == text)
            .map(|p| Phase::Connect(*p))
            .ok_or_else(|| serde::de::Error::custom(format!("unknown phase {text:?}")))
    }
}

string_enum! {
    /// A problem of the cluster as a whole, not of one target.
    FindingCode {
        /// The workspace's region differs from the node's.
        RegionMismatch => "region_mismatch",
        /// `region: auto`, but the node's region could not be read yet:
        /// the targets that need it are not probed.
        RegionUnknown => "region_unknown",
        /// A resolver's server answers over UDP but not over TCP 53.
        DnsTcpBlocked => "dns_tcp_blocked",
        /// Every public endpoint probed times out (or has no route) while the
        /// private endpoints answer: a network-isolated cluster, or a node
        /// subnet without outbound access.
        NoPublicEgress => "no_public_egress",
    }
}

string_enum! {
    /// The reason of a Kubernetes Event on the Node.
    EventReason {
        #[serde(rename = "PrivateDNSRegression")]
        PrivateDnsRegression => "PrivateDNSRegression",
        #[serde(rename = "PrivateEndpointUnreachable")]
        PrivateEndpointUnreachable => "PrivateEndpointUnreachable",
        #[serde(rename = "PrivateDNSRecovered")]
        PrivateDnsRecovered => "PrivateDNSRecovered",
    }
}

string_enum! {
    /// The result of checking the AML inference router Service.
    ScoringCause {
        None => "none",
        InternalLbMissing => "internal_lb_missing",
        PublicIngress => "public_ingress",
        NoIngress => "no_ingress",
        NotFound => "not_found",
        Forbidden => "forbidden",
        ApiError => "api_error",
    }
}

string_enum! {
    /// Result of the TCP phase against one address.
    TcpOutcome {
        Ok => "ok",
        Refused => "refused",
        Timeout => "timeout",
        Unreachable => "unreachable",
        Error => "error",
    }
}

string_enum! {
    /// Result of the TLS phase against one address.
    TlsOutcome {
        Ok => "ok",
        /// The certificate is not valid for the FQDN.
        NameMismatch => "name_mismatch",
        /// The chain does not lead to a trusted root (e.g. a TLS-inspecting proxy).
        UnknownIssuer => "unknown_issuer",
        Expired => "expired",
        /// Handshake took longer than the phase timeout.
        Timeout => "timeout",
        /// Any other handshake failure (alert, reset, protocol error).
        Failed => "failed",
    }
}

/// A resolved address tagged with whether it lies in `private_ranges`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Address {
    pub ip: IpAddr,
    pub private: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_names_match_as_str() {
        for v in DnsVerdict::ALL {
            let json = serde_json::to_string(v).unwrap();
            assert_eq!(json, format!("\"{}\"", v.as_str()));
        }
        for c in Cause::ALL {
            let json = serde_json::to_string(c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
        }
        for r in Reach::ALL {
            let json = serde_json::to_string(r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.as_str()));
        }
    }

    #[test]
    fn reach_is_ordered_from_best_to_worst() {
        use Reach::*;
        let order = [
            Ok,
            Skipped,
            HttpError,
            Rejected,
            TlsError,
            Refused,
            Unreachable,
            Timeout,
        ];
        assert!(order.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(Reach::ALL, order);
    }

    /// A REACH word never names another cause's: `blocked` was the reach
    /// of an HTTP 403 while the cause `endpoint_blocked` means a connection
    /// that times out. A reach value that is a word of a cause's name is
    /// that cause's (or, `dns_`-scoped, plainly about DNS).
    #[test]
    fn reach_words_do_not_name_other_causes() {
        let allowed = [
            (Reach::Rejected, Cause::HttpRejected),
            (Reach::Unreachable, Cause::DnsUnreachable),
        ];
        for r in Reach::ALL {
            for c in Cause::ALL {
                if c.as_str().split('_').any(|w| w == r.as_str()) {
                    assert!(allowed.contains(&(*r, *c)), "reach {r} reads as cause {c}");
                }
                if let Some(word) = r.as_str().split('_').find(|w| *w == "blocked") {
                    panic!("reach {r} says {word}, which causes use for timeouts and policies");
                }
            }
        }
    }
}
