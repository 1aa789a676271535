//! A finished round projected onto every output: the transition counter,
//! the metrics, the log lines, the Node's Events, and the report behind
//! `/status` and the status page.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::State;
use super::events::send_events;
use super::logging::log_transitions;
use crate::cluster::{ClusterContext, EventLimiter};
use crate::report::RoundReport;
use crate::round::{carry_since, transitions};

/// Projects a finished round onto every output: the transitions (counter,
/// log lines, Events), the metrics, and the published report behind
/// `/status` and the status page; with `--node-condition`, the Node's
/// condition.
pub(super) fn project(
    state: &Arc<State>,
    cluster: &ClusterContext,
    limiter: &mut EventLimiter,
    condition: Option<&mut super::condition::ConditionKeeper>,
    mut report: RoundReport,
) {
    let completed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let previous = state.last();
    carry_since(previous.as_deref(), &mut report);
    let changes = transitions(previous.as_deref(), &report);
    // Counted before the new verdicts show, so a scrape never sees a new
    // state without the change that led to it.
    state.metrics.transitions(&changes);
    state.metrics.observe_round(&report, completed);
    state.metrics.observe_cluster(&report);
    log_transitions(&changes);
    send_events(cluster, state, limiter, &changes);
    if let (Some(keeper), Some(c)) = (condition, &cluster.cluster)
        && let Some(update) = keeper.observe(&report, tokio::time::Instant::now())
    {
        let c = c.clone();
        tokio::spawn(async move {
            if let Err(e) = c.set_condition(&update).await {
                tracing::warn!(error = %e, "cannot set the node condition");
            }
        });
    }
    tracing::debug!(
        targets = report.summary.targets,
        unhealthy = report.summary.unhealthy,
        ms = crate::report::ms(report.duration),
        "round complete"
    );
    state.publish(Arc::new(report));
}
