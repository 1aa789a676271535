//! The agent's log lines about targets: one `warn` per change of state.

use crate::report::TargetReport;
use crate::round::Transition;

/// One `warn` line per change: the target, its FQDN, the state before and
/// now, the causes, the diagnosis and the addresses each resolver gave.
pub(super) fn log_transitions(changes: &[Transition<'_>]) {
    for Transition { before, now: t } in changes {
        let addresses: Vec<String> = t
            .dns
            .iter()
            .map(|d| {
                let a: Vec<String> = d.addresses.iter().map(|ip| ip.to_string()).collect();
                format!("{}={}", d.resolver, a.join(","))
            })
            .collect();
        let causes: Vec<&str> = t.causes.iter().map(|c| c.cause.as_str()).collect();
        tracing::warn!(
            target = %t.name,
            fqdn = %t.fqdn,
            from = %before.map(describe).unwrap_or_else(|| "unknown".into()),
            to = %describe(t),
            cause = %t.cause,
            causes = %causes.join(","),
            diagnosis = %t.diagnosis.as_deref().unwrap_or(""),
            addresses = %addresses.join(" "),
            "target state changed"
        );
    }
}

/// `healthy (system=private azure=private; reach=ok)` or
/// `unhealthy: dns_unreachable (...)`.
fn describe(t: &TargetReport) -> String {
    let dns: Vec<String> = t.dns.iter().map(|d| format!("{}={}", d.resolver, d.verdict)).collect();
    format!(
        "{} ({}; reach={})",
        if t.healthy {
            "healthy".to_string()
        } else {
            format!("unhealthy: {}", t.cause)
        },
        dns.join(" "),
        t.reach
    )
}
