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

/// Carries each target's `since` over from `previous` (the agent's last
/// round): kept while its health and primary cause stay the same, this
/// round's start when they changed (with the cause `before`), and this
/// round's start "at least" when there is no previous round or the target
/// is new (a restart forgets when a state began).
pub fn carry_since(previous: Option<&RoundReport>, current: &mut RoundReport) {
    let started = current.started_at.clone();
    for now in &mut current.targets {
        let before = previous.and_then(|p| p.targets.iter().find(|b| b.name == now.name));
        match before {
            Some(b) if (b.healthy, b.cause) == (now.healthy, now.cause) && b.since.is_some() => {
                now.since = b.since.clone();
                now.since_at_least = b.since_at_least;
                now.before = b.before;
            }
            Some(b) => {
                now.since = Some(started.clone());
                now.since_at_least = false;
                now.before = Some(b.cause);
            }
            None => {
                now.since = Some(started.clone());
                now.since_at_least = true;
                now.before = None;
            }
        }
    }
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
            since: None,
            since_at_least: false,
            before: None,
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

    /// "Since": kept while health and cause hold, reset on a change (with
    /// what came before), "at least" from the agent's first round.
    #[test]
    fn since_is_carried_while_the_state_holds() {
        use Cause as C;
        use DnsVerdict as V;
        use Reach as R;
        let at = |secs: u64, targets: Vec<TargetReport>| {
            let mut r = round(targets);
            r.started_at =
                humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
                    .to_string();
            r
        };
        let ok = || target("t", C::None, R::Ok, V::Private);
        let stale = || target("t", C::EndpointStale, R::Refused, V::Private);
        let mut r1 = at(60, vec![ok()]);
        carry_since(None, &mut r1);
        assert_eq!(
            (r1.targets[0].since.as_deref(), r1.targets[0].since_at_least),
            (Some("1970-01-01T00:01:00Z"), true)
        );
        let mut r2 = at(120, vec![ok()]);
        carry_since(Some(&r1), &mut r2);
        assert_eq!(
            (r2.targets[0].since.as_deref(), r2.targets[0].since_at_least),
            (Some("1970-01-01T00:01:00Z"), true)
        );
        let mut r3 = at(180, vec![stale()]);
        carry_since(Some(&r2), &mut r3);
        let t = &r3.targets[0];
        assert_eq!(
            (t.since.as_deref(), t.since_at_least, t.before),
            (Some("1970-01-01T00:03:00Z"), false, Some(C::None))
        );
        // Another verdict of the same cause is the same state.
        let mut r4 = at(240, vec![target("t", C::EndpointStale, R::Refused, V::Mixed)]);
        carry_since(Some(&r3), &mut r4);
        assert_eq!(r4.targets[0].since.as_deref(), Some("1970-01-01T00:03:00Z"));
        // Another cause is a change; a new target starts "at least".
        let mut r5 = at(
            300,
            vec![
                target("t", C::EndpointBlocked, R::Timeout, V::Private),
                target("u", C::None, R::Ok, V::Private),
            ],
        );
        carry_since(Some(&r4), &mut r5);
        assert_eq!(
            (r5.targets[0].since.as_deref(), r5.targets[0].before),
            (Some("1970-01-01T00:05:00Z"), Some(C::EndpointStale))
        );
        assert!(r5.targets[1].since_at_least);
    }
}
