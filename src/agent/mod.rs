//! Agent mode (`netprobe probe` without `--once`): rounds forever, metrics,
//! health endpoints and a status page; reloads its configuration on SIGHUP
//! and when the file changes; exits 0 within seconds of SIGTERM/SIGINT.

pub mod server;

use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep, sleep_until};

use crate::cluster::{ClusterContext, EventLimiter, event_for_change};
use crate::config::Config;
use crate::metrics::{Metrics, MetricsError};
use crate::probe::{Engine, TlsSetupError};
use crate::report::{RoundReport, TargetReport};
use crate::round::{Transition, transitions};

/// How often the config file is checked for changes.
pub const CONFIG_POLL: Duration = Duration::from_secs(2);

/// What the agent shares with its HTTP server.
pub struct State {
    pub metrics: Metrics,
    /// The last round and when it was published; ready once there is one.
    last: RwLock<Option<(Arc<RoundReport>, Instant)>>,
    /// The last reload's error while the previous configuration runs on.
    reload_error: RwLock<Option<String>>,
    /// The running configuration's interval between rounds.
    interval: RwLock<Option<Duration>>,
}

impl State {
    pub fn new(metrics: Metrics) -> State {
        State {
            metrics,
            last: RwLock::new(None),
            reload_error: RwLock::new(None),
            interval: RwLock::new(None),
        }
    }

    /// Ready once the first round has completed.
    pub fn ready(&self) -> bool {
        self.last.read().is_ok_and(|g| g.is_some())
    }

    pub fn last(&self) -> Option<Arc<RoundReport>> {
        self.last.read().ok().and_then(|g| g.as_ref().map(|(r, _)| r.clone()))
    }

    /// What the status page shows besides the round, as of now. It
    /// refreshes itself every interval, within 5 to 60 s.
    pub fn page_context(&self) -> crate::render::html::PageContext {
        let interval = self.interval.read().ok().and_then(|g| *g);
        crate::render::html::PageContext {
            refresh_secs: interval.map_or(10, |i| i.as_secs().clamp(5, 60)),
            age: self.last.read().ok().and_then(|g| g.as_ref().map(|(_, t)| t.elapsed())),
            interval,
            reload_error: self.reload_error.read().ok().and_then(|g| g.clone()),
        }
    }

    fn set_reload_error(&self, error: Option<String>) {
        if let Ok(mut g) = self.reload_error.write() {
            *g = error;
        }
    }

    fn set_interval(&self, interval: Duration) {
        if let Ok(mut g) = self.interval.write() {
            *g = Some(interval);
        }
    }

    fn publish(&self, report: Arc<RoundReport>) {
        if let Ok(mut g) = self.last.write() {
            *g = Some((report, Instant::now()));
        }
    }
}

/// The agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot listen on {addr}: {error}")]
    Listen { addr: SocketAddr, error: std::io::Error },
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] TlsSetupError),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

/// How the agent is started.
pub struct AgentOptions {
    /// The file to reload from (on SIGHUP and on change); `None` for a
    /// configuration that is not a file (the demo), which never reloads.
    pub config_path: Option<PathBuf>,
    /// `--listen`, which wins over the config's `listen`.
    pub listen_override: Option<SocketAddr>,
    /// Told the bound address once the server listens (port 0 picks one).
    pub on_listen: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
    /// The Kubernetes connection and node, when there is one.
    pub cluster: ClusterContext,
}

/// Runs until SIGTERM or SIGINT.
pub async fn run(config: Config, opts: AgentOptions) -> Result<(), AgentError> {
    let stop = stop_on_signals()?;
    run_until(config, opts, stop).await
}

/// A stop signal that turns true on SIGTERM or SIGINT.
pub fn stop_on_signals() -> Result<watch::Receiver<bool>, AgentError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(AgentError::Signals)?;
    let mut int =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).map_err(AgentError::Signals)?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
        let _ = stop_tx.send(true);
    });
    Ok(stop_rx)
}

/// Runs until `stop` turns true (tests drive this directly).
pub async fn run_until(
    config: Config,
    mut opts: AgentOptions,
    mut stop: watch::Receiver<bool>,
) -> Result<(), AgentError> {
    let metrics = Metrics::new()?;
    let state = Arc::new(State::new(metrics));
    // Everything a scrape can see exists before the port opens.
    let mut engine = Engine::new(config)?;
    apply_targets(&state, engine.config());
    let addr = opts.listen_override.unwrap_or(engine.config().listen);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|error| AgentError::Listen { addr, error })?;
    let bound = listener.local_addr().unwrap_or(addr);
    let source = engine.config().source.clone();
    tracing::info!(listen = %bound, config = %source, targets = engine.config().targets.len(), "netprobe agent listening");
    if let Some(tx) = opts.on_listen.take() {
        let _ = tx.send(bound);
    }
    let server = tokio::spawn(server::serve(listener, state.clone(), stop.clone()));

    let (reload_tx, mut reload_rx) = mpsc::channel(4);
    let watcher = opts
        .config_path
        .clone()
        .map(|path| tokio::spawn(watch_config(path, reload_tx, stop.clone())));

    let mut limiter = EventLimiter::default();

    let mut next_start = Instant::now();
    // Rounds since the start or the last reload: the pacing after the first
    // one spreads a fleet that started together across the interval.
    let mut rounds_since_start = 0u64;
    'rounds: loop {
        // Wait for the next round, handling reloads meanwhile.
        loop {
            tokio::select! {
                _ = sleep_until(next_start) => break,
                Some(()) = reload_rx.recv() => {
                    let Some(path) = &opts.config_path else { continue };
                    if let Some(new) = reload(path, &state, engine.config().listen, &opts.cluster) {
                        engine = new;
                        apply_targets(&state, engine.config());
                        next_start = Instant::now();
                        // A ConfigMap update reaches every node within a minute or
                        // so: spread the fleet again after the reload's round.
                        rounds_since_start = 0;
                    }
                }
                _ = stop.changed() => break 'rounds,
            }
        }
        let started = Instant::now();
        let report = tokio::select! {
            r = crate::round::run(&engine, &opts.cluster) => r,
            // Dropping the round aborts every probe still in flight.
            _ = stop.changed() => break 'rounds,
        };
        let took = started.elapsed();
        let rounds_before = rounds_since_start;
        rounds_since_start += 1;
        project(&state, &opts.cluster, &mut limiter, report);
        let interval = engine.config().interval;
        if took > interval {
            state.metrics.round_overrun();
            tracing::warn!(
                took_ms = took.as_millis() as u64,
                interval_ms = interval.as_millis() as u64,
                "round took longer than the interval; starting the next one now"
            );
            next_start = Instant::now();
        } else {
            next_start = started + next_delay(interval, rounds_before, rand::random::<f64>());
        }
    }
    if let Some(w) = watcher {
        w.abort();
    }
    // Let the server finish responses in flight, briefly.
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    tracing::info!("netprobe agent stopped");
    Ok(())
}

/// Projects a finished round onto every output: the transitions (counter,
/// log lines, Events), the metrics, and the published report behind
/// `/status` and the status page.
fn project(state: &Arc<State>, cluster: &ClusterContext, limiter: &mut EventLimiter, report: RoundReport) {
    let completed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let previous = state.last();
    let changes = transitions(previous.as_deref(), &report);
    // Counted before the new verdicts show, so a scrape never sees a new
    // state without the change that led to it.
    state.metrics.transitions(&changes);
    state.metrics.observe_round(&report, completed);
    state.metrics.observe_cluster(&report);
    log_transitions(&changes);
    send_events(cluster, state, limiter, &changes);
    tracing::debug!(
        targets = report.summary.targets,
        unhealthy = report.summary.unhealthy,
        ms = crate::report::ms(report.duration),
        "round complete"
    );
    state.publish(Arc::new(report));
}

/// The wait between the start of the round just done and the next, given
/// the rounds done since the start (or a reload) before it and `unit`, a
/// random number in [0, 1).
///
/// The first round runs at once (readiness waits for it). Nodes started
/// together (a rollout, a reload of the ConfigMap everywhere) would then
/// query DNS in lockstep, so the wait after it is anywhere in
/// [0.5, 1.5) × interval: their phases spread over a whole interval in one
/// step. Every later wait is interval ±10%, which keeps them spread without
/// a fixed phase per node. `tests/round.rs` shows the spread over 100
/// simulated agents.
pub fn next_delay(interval: Duration, rounds_before: u64, unit: f64) -> Duration {
    let unit = unit.clamp(0.0, 1.0);
    if rounds_before == 0 {
        interval.mul_f64(0.5 + unit)
    } else {
        interval.mul_f64(0.9 + 0.2 * unit)
    }
}

fn apply_targets(state: &State, config: &Config) {
    let resolvers: Vec<String> = config.resolvers.iter().map(|r| r.name.clone()).collect();
    state.metrics.set_targets(
        &config.targets,
        &resolvers,
        config.interval.as_secs_f64(),
        config.metrics,
    );
    state.metrics.set_service_tags(config.service_tags.as_deref());
    state.set_interval(config.interval);
}

/// Records an Event on the Node for every change that warrants one, within
/// the limiter's budget. Sending happens in the background.
fn send_events(cluster: &ClusterContext, state: &Arc<State>, limiter: &mut EventLimiter, changes: &[Transition<'_>]) {
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

/// Loads the file again; on failure logs, counts, and keeps the old config.
/// `listen` is the running configuration's, which a reload cannot change.
fn reload(path: &Path, state: &State, listen: SocketAddr, cluster: &ClusterContext) -> Option<Engine> {
    let result = Config::load_with(path, &cluster.load_options())
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
async fn watch_config(path: PathBuf, tx: mpsc::Sender<()>, mut stop: watch::Receiver<bool>) {
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

/// One `warn` line per change: the target, its FQDN, the state before and
/// now, the causes, the diagnosis and the addresses each resolver gave.
fn log_transitions(changes: &[Transition<'_>]) {
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
