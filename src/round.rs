//! One owner of a round. [`run`] gathers the engine's observations of every
//! target and what Kubernetes tells, and hands both to `judge`, which
//! builds the report; `probe --once`, `demo` and the agent all call it, and every output
//! (JSON, human, HTML, metrics, logs, Events) is a projection of the
//! [`RoundReport`] it returns. [`transitions`] is the one rule for "what
//! changed since the last round".

use crate::cluster::ClusterContext;
use crate::probe::Engine;
use crate::report::{RoundReport, TargetReport};

/// Runs one round: the engine's observations and the cluster's, then the
/// judgement. The round's wall-clock start is read here, once.
pub async fn run(engine: &Engine, cluster: &ClusterContext) -> RoundReport {
    let observed = engine.run_round(std::time::SystemTime::now()).await;
    let cluster = cluster.observe(engine.config()).await;
    crate::judge::round(engine.config(), &observed, &cluster)
}

/// A target whose state changed since the previous round.
#[derive(Clone, Copy, Debug)]
pub struct Transition<'a> {
    /// The target in the previous round; `None` when it is new.
    pub before: Option<&'a TargetReport>,
    pub now: &'a TargetReport,
}

/// The part of a target's result whose change counts.
fn state(t: &TargetReport) -> impl PartialEq + '_ {
    (
        t.healthy,
        &t.causes,
        t.reach,
        t.dns
            .iter()
            .map(|d| (d.resolver.as_str(), d.verdict))
            .collect::<Vec<_>>(),
    )
}

/// Every target whose health, causes, reach or DNS verdicts changed since
/// `previous`. A target seen for the first time counts only when it is
/// unhealthy: a healthy start is not news.
pub fn transitions<'a>(previous: Option<&'a RoundReport>, current: &'a RoundReport) -> Vec<Transition<'a>> {
    current
        .targets
        .iter()
        .filter_map(|now| {
            let before = previous.and_then(|p| p.targets.iter().find(|b| b.name == now.name));
            let changed = match before {
                Some(b) => state(b) != state(now),
                None => !now.healthy,
            };
            changed.then_some(Transition { before, now })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cause, DnsVerdict, Expect, Reach};
    use crate::report::DnsReport;
    use crate::service::Service;
    use crate::verdict::CauseFinding;

    fn target(name: &str, cause: Cause, reach: Reach, verdict: DnsVerdict) -> TargetReport {
        let healthy = cause == Cause::None;
        TargetReport {
            name: name.into(),
            fqdn: format!("{name}.azurecr.io"),
            service: Service::Acr,
            port: 443,
            expect: Expect::Private,
            privatelink_zone: None,
            healthy,
            cause,
            diagnosis: (!healthy).then(|| "why. Fix: this.".into()),
            causes: (!healthy)
                .then(|| CauseFinding {
                    cause,
                    resolver: None,
                    diagnosis: "why. Fix: this.".into(),
                })
                .into_iter()
                .collect(),
            reach,
            connect_resolver: None,
            slowest: None,
            proxy: None,
            dns: vec![DnsReport {
                resolver: "system".into(),
                server: None,
                verdict,
                rcode: None,
                cname_chain: vec![],
                addresses: vec![],
                addresses_omitted: 0,
                privatelink: true,
                duration: std::time::Duration::from_millis(1),
                tcp_fallback: false,
                queries: 2,
                detail: None,
            }],
            connect: vec![],
        }
    }

    fn round(targets: Vec<TargetReport>) -> RoundReport {
        let mut r = RoundReport::new(
            &crate::config::Config::from_yaml("key_vaults: [kvone]\n", "t.yaml", None).unwrap(),
            std::time::SystemTime::UNIX_EPOCH,
            std::time::Duration::ZERO,
            &[],
            vec![],
        );
        r.targets = targets;
        r
    }

    #[test]
    fn what_counts_as_a_transition() {
        use Cause as C;
        use DnsVerdict as V;
        use Reach as R;
        let ok = || target("t", C::None, R::Ok, V::Private);
        let cases: Vec<(&str, Option<TargetReport>, TargetReport, bool)> = vec![
            ("first sight, healthy", None, ok(), false),
            (
                "first sight, unhealthy",
                None,
                target("t", C::ZoneNotLinked, R::Rejected, V::Public),
                true,
            ),
            ("no change", Some(ok()), ok(), false),
            (
                "regression",
                Some(ok()),
                target("t", C::EndpointStale, R::Refused, V::Private),
                true,
            ),
            (
                "recovery",
                Some(target("t", C::EndpointStale, R::Refused, V::Private)),
                ok(),
                true,
            ),
            (
                "another cause",
                Some(target("t", C::EndpointStale, R::Refused, V::Private)),
                target("t", C::EndpointBlocked, R::Timeout, V::Private),
                true,
            ),
            (
                "same cause, another verdict",
                Some(target("t", C::DnsError, R::Skipped, V::Servfail)),
                target("t", C::DnsError, R::Skipped, V::Refused),
                true,
            ),
        ];
        for (case, before, now, want) in cases {
            let previous = before.map(|b| round(vec![b]));
            let current = round(vec![now]);
            let got = transitions(previous.as_ref(), &current);
            assert_eq!(got.len(), usize::from(want), "{case}");
        }
    }
}
