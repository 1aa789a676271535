//! The Node condition (opt-in, `--node-condition`): like
//! node-problem-detector, the agent sets `AzureMLPrivateNetwork` on its own
//! Node, `False` with the failing targets and causes in the message, `True`
//! when every target is healthy, so that `kubectl describe node`, node
//! listings and remediation systems see it. A state must hold for
//! [`ROUNDS_TO_CHANGE`] rounds in a row before the condition follows it (no
//! flapping condition), and patches are at least [`MIN_PATCH_GAP`] apart.
//! [`ConditionKeeper::observe`] is pure (rounds and times in, patches out);
//! the patch itself is `cluster::Cluster::set_condition`.

use std::time::Duration;

use tokio::time::Instant;

use crate::cluster::ConditionUpdate;
use crate::report::RoundReport;

/// Rounds in a row a state must hold before the condition follows it.
pub const ROUNDS_TO_CHANGE: u32 = 3;
/// The least time between two patches of the Node.
pub const MIN_PATCH_GAP: Duration = Duration::from_secs(60);
/// The longest message (the API server accepts 32 KiB; a condition's message
/// is read by people in `kubectl describe node`).
pub const MAX_MESSAGE: usize = 1024;

/// What the agent last set, and the state it is watching.
#[derive(Debug, Default)]
pub struct ConditionKeeper {
    /// The condition as last set: healthy, and its message.
    shown: Option<(bool, String)>,
    /// When the shown state began (RFC 3339), for `lastTransitionTime`.
    shown_since: String,
    /// The state of the last rounds, and for how many in a row.
    streak: Option<(bool, u32)>,
    last_patch: Option<Instant>,
}

impl ConditionKeeper {
    /// The patch this round calls for, if any: a state that held for
    /// [`ROUNDS_TO_CHANGE`] rounds and differs from the condition (or a new
    /// set of failing targets), no sooner than [`MIN_PATCH_GAP`] after the
    /// last patch.
    pub fn observe(&mut self, report: &RoundReport, now: Instant) -> Option<ConditionUpdate> {
        let healthy = report.healthy;
        let streak = match self.streak {
            Some((h, n)) if h == healthy => n.saturating_add(1),
            _ => 1,
        };
        self.streak = Some((healthy, streak));
        if streak < ROUNDS_TO_CHANGE {
            return None;
        }
        let message = message(report);
        if self.shown.as_ref() == Some(&(healthy, message.clone())) {
            return None;
        }
        if self.last_patch.is_some_and(|t| now.duration_since(t) < MIN_PATCH_GAP) {
            return None;
        }
        if self.shown.as_ref().is_none_or(|s| s.0 != healthy) {
            self.shown_since = report.started_at.clone();
        }
        self.shown = Some((healthy, message.clone()));
        self.last_patch = Some(now);
        Some(ConditionUpdate {
            healthy,
            reason: if healthy { "AllTargetsHealthy" } else { "TargetsFailing" },
            message,
            transition: self.shown_since.clone(),
            heartbeat: report.started_at.clone(),
        })
    }
}

/// "3 of 20 targets failing: kv [endpoint_blocked], ... (netprobe)".
fn message(report: &RoundReport) -> String {
    let failing: Vec<String> = report
        .targets
        .iter()
        .filter(|t| !t.healthy)
        .map(|t| format!("{} [{}]", t.name, t.cause))
        .collect();
    let findings: Vec<&str> = report.findings.iter().map(|f| f.code.as_str()).collect();
    let mut text = if failing.is_empty() && findings.is_empty() {
        format!("all {} targets healthy (netprobe)", report.targets.len())
    } else {
        let mut parts = Vec::new();
        if !failing.is_empty() {
            parts.push(format!(
                "{} of {} targets failing: {}",
                failing.len(),
                report.targets.len(),
                failing.join(", ")
            ));
        }
        if !findings.is_empty() {
            parts.push(format!("findings: {}", findings.join(", ")));
        }
        format!("{} (netprobe; the agent's /status has the diagnoses)", parts.join("; "))
    };
    if text.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE - 3;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Cause;
    use crate::report::TargetReport;
    use crate::verdict::{CauseFinding, Diagnosis};

    fn round(at: u64, failing: &[&str]) -> RoundReport {
        let cfg = crate::config::Config::from_yaml("key_vaults: [kvone, kvtwo]\n", "t.yaml", None).unwrap();
        let targets: Vec<TargetReport> = cfg
            .targets
            .iter()
            .map(|t| {
                let bad = failing.contains(&t.name.as_str());
                let diagnosis = Diagnosis {
                    causes: bad
                        .then(|| CauseFinding {
                            cause: Cause::EndpointBlocked,
                            resolver: None,
                            diagnosis: "why".into(),
                        })
                        .into_iter()
                        .collect(),
                };
                TargetReport::new(t, &[], &[], &[], &[], crate::model::Reach::Ok, None, diagnosis)
            })
            .collect();
        let started = std::time::UNIX_EPOCH + Duration::from_secs(at);
        RoundReport::new(&cfg, started, Duration::ZERO, &[], targets).with_cluster(None, vec![], None)
    }

    /// (round's time in s, failing targets, the patch expected: None, or (healthy, message fragment))
    #[test]
    fn the_condition_follows_a_state_that_holds_and_no_faster_than_the_gap() {
        let t0 = Instant::now();
        let mut k = ConditionKeeper::default();
        type Case = (u64, &'static [&'static str], Option<(bool, &'static str)>);
        let cases: &[Case] = &[
            // Three healthy rounds before the first patch.
            (0, &[], None),
            (30, &[], None),
            (60, &[], Some((true, "all 2 targets healthy"))),
            (90, &[], None),
            // Flapping: never three in a row, never patched.
            (120, &["keyvault-kvone"], None),
            (150, &[], None),
            (180, &["keyvault-kvone"], None),
            (210, &["keyvault-kvone"], None),
            (
                240,
                &["keyvault-kvone"],
                Some((false, "1 of 2 targets failing: keyvault-kvone [endpoint_blocked]")),
            ),
            // Another failing set: a new message, once the gap has passed.
            (270, &["keyvault-kvone", "keyvault-kvtwo"], None),
            (280, &["keyvault-kvone", "keyvault-kvtwo"], None),
            (290, &["keyvault-kvone", "keyvault-kvtwo"], None),
            (
                300,
                &["keyvault-kvone", "keyvault-kvtwo"],
                Some((false, "2 of 2 targets failing")),
            ),
            (330, &[], None),
            (340, &[], None),
            (350, &[], None),
            (360, &[], Some((true, "all 2 targets healthy"))),
        ];
        let mut transitions = Vec::new();
        for (i, (at, failing, want)) in cases.iter().enumerate() {
            let got = k.observe(&round(*at, failing), t0 + Duration::from_secs(*at));
            match (want, &got) {
                (None, None) => {}
                (Some((healthy, says)), Some(u)) => {
                    assert_eq!(u.healthy, *healthy, "case {i}");
                    assert!(u.message.contains(says), "case {i}: {}", u.message);
                    transitions.push(u.transition.clone());
                }
                _ => panic!("case {i} ({at} s): want {want:?}, got {got:?}"),
            }
        }
        // The transition time is when the shown state began, kept across a
        // new message of the same state.
        assert_eq!(
            transitions,
            [
                "1970-01-01T00:01:00.000Z",
                "1970-01-01T00:04:00.000Z",
                "1970-01-01T00:04:00.000Z",
                "1970-01-01T00:06:00.000Z"
            ]
        );
    }

    #[test]
    fn long_messages_are_cut() {
        let mut r = round(0, &["keyvault-kvone"]);
        r.targets[0].name = "x".repeat(5000);
        let m = message(&r);
        assert!(m.len() <= MAX_MESSAGE && m.ends_with("..."), "{}", m.len());
    }
}
