//! Reloading: the file watched (content polled, SIGHUP), loaded again and
//! applied, or rejected with the running configuration kept.

use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::sync::{mpsc, watch};
use tokio::time::sleep;

use super::{CONFIG_POLL, State};
use crate::config::{Config, LoadOptions};
use crate::probe::Engine;

pub(super) fn apply_targets(state: &State, config: &Config) {
    let resolvers: Vec<String> = config.resolvers.iter().map(|r| r.name.clone()).collect();
    state.metrics.set_targets(
        &config.targets,
        &resolvers,
        config.interval.as_secs_f64(),
        config.metrics,
    );
    state.metrics.set_connect_via(&resolvers, config.connect_via);
    state.metrics.set_service_tags(config.service_tags.as_deref());
    state.set_timing(config);
}

/// Loads the file again; on failure logs, counts, and keeps the old config.
/// `listen` is the running configuration's, which a reload cannot change.
pub(super) fn reload(path: &Path, state: &State, listen: SocketAddr, load: &LoadOptions) -> Option<Engine> {
    let result = Config::load_with(path, load)
        .map_err(|e| e.to_string())
        .and_then(|cfg| Engine::new(cfg).map_err(|e| format!("{}: cannot set up TLS: {e}", path.display())));
    match result {
        Ok(engine) => {
            state.metrics.reload_result(true);
            state.set_reload_error(None);
            if engine.config().listen != listen {
                tracing::warn!(listen = %engine.config().listen, "`listen` changed; it takes effect on restart");
            }
            tracing::info!(targets = engine.config().targets.len(), "configuration reloaded");
            for w in engine.config().warnings() {
                tracing::warn!("{w}");
            }
            Some(engine)
        }
        Err(e) => {
            state.metrics.reload_result(false);
            state.set_reload_error(Some(e.clone()));
            tracing::error!(error = %e, "configuration reload rejected; keeping the running configuration");
            None
        }
    }
}

fn fingerprint(path: &Path) -> Option<u64> {
    let bytes = std::fs::read(path).ok()?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    Some(h.finish())
}

/// Signals a reload on SIGHUP and whenever the file's content changes. A
/// mounted ConfigMap is updated by swapping a symlink; reading through the
/// path sees the new content, so polling the content catches it.
pub(super) async fn watch_config(path: PathBuf, tx: mpsc::Sender<()>, mut stop: watch::Receiver<bool>) {
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; reloading on file changes only");
            None
        }
    };
    let mut last = fingerprint(&path);
    loop {
        let forced = tokio::select! {
            Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
            _ = sleep(CONFIG_POLL) => false,
            _ = stop.changed() => return,
        };
        let now = fingerprint(&path);
        if forced || now != last {
            if forced {
                tracing::info!("SIGHUP: reloading the configuration");
            }
            last = now;
            if tx.send(()).await.is_err() {
                return;
            }
        }
    }
}
