//! Events on the Node: one per change that warrants one, within the
//! limiter's budget, sent in the background.

use std::sync::Arc;

use tokio::time::Instant;

use super::State;
use crate::cluster::{ClusterContext, EventLimiter, event_for_change};
use crate::round::Transition;

/// Records an Event on the Node for every change that warrants one, within
/// the limiter's budget. Sending happens in the background.
pub(super) fn send_events(
    cluster: &ClusterContext,
    state: &Arc<State>,
    limiter: &mut EventLimiter,
    changes: &[Transition<'_>],
) {
    let Some(c) = &cluster.cluster else { return };
    let uid = cluster.node.as_ref().and_then(|n| n.uid.clone());
    for change in changes {
        let Some(event) = event_for_change(change.before, change.now) else {
            continue;
        };
        if !limiter.allow(&event, Instant::now()) {
            state.metrics.event(event.reason, "suppressed");
            continue;
        }
        let (c, uid, state) = (c.clone(), uid.clone(), state.clone());
        tokio::spawn(async move {
            match c.emit(&event, uid.as_deref()).await {
                Ok(()) => state.metrics.event(event.reason, "sent"),
                Err(e) => {
                    state.metrics.event(event.reason, "failed");
                    tracing::warn!(error = %e, reason = event.reason.as_str(), "cannot record an Event on the node");
                }
            }
        });
    }
}
