//! Agent mode (`netprobe probe` without `--once`): rounds forever, metrics,
//! health endpoints and a status page; reloads its configuration on SIGHUP
//! and when the file changes; exits 0 within seconds of SIGTERM/SIGINT.
//!
//! One job per file: the round loop and its pacing (here), reloading
//! (`reload`), projecting a round onto the outputs (`project`), the Node's
//! Events (`events`), the log lines (`logging`), the HTTP server (`server`).

pub mod condition;
mod events;
mod logging;
mod project;
mod reload;
pub mod server;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};

use crate::cluster::{ClusterContext, EventLimiter};
use crate::config::Config;
use crate::metrics::{Metrics, MetricsError};
use crate::probe::{Engine, TlsSetupError};
use crate::report::RoundReport;
use project::project;
use reload::{apply_targets, reload, watch_config};

/// How often the config file is checked for changes.
pub const CONFIG_POLL: Duration = Duration::from_secs(2);

/// How often the agent reads its Node again once it has (every round
/// while `region: auto` waits for it).
pub const NODE_REREAD: Duration = Duration::from_secs(3600);

/// The shortest time between the starts of two rounds on a node, whatever
/// the configuration says (a `10ms` interval would otherwise make the agent
/// a load on the node's DNS). Tests and benchmarks lower it explicitly
/// (`AgentOptions::min_interval`, `NETPROBE_MIN_INTERVAL` for the binary).
pub const MIN_AGENT_INTERVAL: Duration = Duration::from_secs(5);

/// A round as served: the report, when it was published, and its
/// renderings, made on the first request for them and shared by every
/// reader of `/status` and `/` after it (64 slow readers hold one copy, not
/// 64; an agent nobody reads holds none).
#[derive(Clone)]
pub struct Published {
    pub report: Arc<RoundReport>,
    pub at: Instant,
    renders: Arc<std::sync::OnceLock<Renders>>,
}

/// `/status`, and the status page's round parts (`render::html::RoundPage`).
struct Renders {
    json: bytes::Bytes,
    summary: bytes::Bytes,
    summary_all: bytes::Bytes,
    page_top: bytes::Bytes,
    page_rest: bytes::Bytes,
}

impl Published {
    fn renders(&self) -> &Renders {
        self.renders.get_or_init(|| {
            let page = crate::render::html::RoundPage::new(&self.report);
            Renders {
                json: crate::render::json::render(&self.report).into(),
                summary: serde_json::to_vec(&crate::report::RoundSummary::of(&self.report, false))
                    .unwrap_or_default()
                    .into(),
                summary_all: serde_json::to_vec(&crate::report::RoundSummary::of(&self.report, true))
                    .unwrap_or_default()
                    .into(),
                page_top: page.top.into(),
                page_rest: page.rest.into(),
            }
        })
    }

    /// `/status`.
    pub fn json(&self) -> bytes::Bytes {
        self.renders().json.clone()
    }

    /// `/status/summary`; with `all`, `?targets=all`.
    pub fn summary(&self, all: bool) -> bytes::Bytes {
        let r = self.renders();
        if all { r.summary_all.clone() } else { r.summary.clone() }
    }

    /// The page's parts before and after the age line.
    pub fn page(&self) -> (bytes::Bytes, bytes::Bytes) {
        let r = self.renders();
        (r.page_top.clone(), r.page_rest.clone())
    }
}

/// What the agent shares with its HTTP server.
pub struct State {
    pub metrics: Metrics,
    /// The last round and when it was published; ready once there is one.
    last: RwLock<Option<Published>>,
    /// The last reload's error while the previous configuration runs on.
    reload_error: RwLock<Option<String>>,
    /// The running configuration's interval between rounds.
    interval: RwLock<Option<Duration>>,
    /// How long without a completed round the agent still counts as live
    /// ([`liveness_window`]); and when it started.
    live_window: RwLock<Duration>,
    started: Instant,
}

/// How long the agent may go without completing a round before `/healthz`
/// fails and kubelet restarts it: generous, twice the longest a healthy
/// round can take plus the interval. A round probes `concurrency` targets
/// at a time, each in at most four phases of `timeout` (DNS, TCP, TLS,
/// HTTP; one more `timeout` of margin), then the round's own checks (TCP 53,
/// zone SOAs) in one more `timeout`, so a round over `targets` lasts at most
/// (ceil(targets / concurrency) × 5 + 1) × timeout, even when every phase
/// times out. At least a minute.
pub fn liveness_window(config: &Config) -> Duration {
    let waves = config.targets.len().div_ceil(config.concurrency.max(1)).max(1) as u32;
    let round = config.timeout.saturating_mul(5 * waves + 1);
    (config.interval + round).saturating_mul(2).max(Duration::from_secs(60))
}

impl State {
    pub fn new(metrics: Metrics) -> State {
        State {
            metrics,
            last: RwLock::new(None),
            reload_error: RwLock::new(None),
            interval: RwLock::new(None),
            live_window: RwLock::new(Duration::from_secs(60)),
            started: Instant::now(),
        }
    }

    /// Ready once the first round has completed.
    pub fn ready(&self) -> bool {
        self.last.read().is_ok_and(|g| g.is_some())
    }

    pub fn last(&self) -> Option<Arc<RoundReport>> {
        self.last.read().ok().and_then(|g| g.as_ref().map(|p| p.report.clone()))
    }

    /// The last round with its renderings.
    pub fn published(&self) -> Option<Published> {
        self.last.read().ok().and_then(|g| g.clone())
    }

    /// What the status page shows besides the round, as of now. It
    /// refreshes itself every interval, within 5 to 60 s.
    pub fn page_context(&self) -> crate::render::html::PageContext {
        let interval = self.interval.read().ok().and_then(|g| *g);
        crate::render::html::PageContext {
            refresh_secs: interval.map_or(10, |i| i.as_secs().clamp(5, 60)),
            age: self.last.read().ok().and_then(|g| g.as_ref().map(|p| p.at.elapsed())),
            interval,
            reload_error: self.reload_error.read().ok().and_then(|g| g.clone()),
        }
    }

    fn set_reload_error(&self, error: Option<String>) {
        if let Ok(mut g) = self.reload_error.write() {
            *g = error;
        }
    }

    fn set_timing(&self, config: &Config) {
        if let Ok(mut g) = self.interval.write() {
            *g = Some(config.interval);
        }
        if let Ok(mut g) = self.live_window.write() {
            *g = liveness_window(config);
        }
    }

    /// Live while rounds complete: the last one (or, before the first, the
    /// start) is within the liveness window. A stuck round loop fails
    /// `/healthz`, and kubelet restarts the agent.
    pub fn live(&self) -> bool {
        let window = self.live_window.read().map(|g| *g).unwrap_or(Duration::from_secs(60));
        let since = self
            .last
            .read()
            .ok()
            .and_then(|g| g.as_ref().map(|p| p.at))
            .unwrap_or(self.started);
        since.elapsed() <= window
    }

    fn publish(&self, report: Arc<RoundReport>) {
        let published = Published {
            report,
            at: Instant::now(),
            renders: Default::default(),
        };
        if let Ok(mut g) = self.last.write() {
            *g = Some(published);
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
    /// The floor under the configured interval ([`MIN_AGENT_INTERVAL`] on
    /// a node), also the least pause after a round that overran.
    pub min_interval: Duration,
    /// Set netprobe's condition on the Node (`--node-condition`, opt-in).
    pub node_condition: bool,
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
    warn_if_floored(engine.config(), opts.min_interval);
    let addr = opts.listen_override.unwrap_or(engine.config().listen);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|error| AgentError::Listen { addr, error })?;
    let bound = listener.local_addr().unwrap_or(addr);
    let source = engine.config().source.clone();
    tracing::info!(listen = %bound, config = %source, targets = engine.config().targets.len(), "netprobe agent listening");
    for w in engine.config().warnings() {
        tracing::warn!(config = %source, "{w}");
    }
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
    let mut condition = opts.node_condition.then(condition::ConditionKeeper::default);
    let mut last_node_read = Instant::now();

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
                    if let Some(new) = reload_engine(&state, &engine, &opts).await {
                        engine = new;
                        next_start = Instant::now();
                        // A ConfigMap update reaches every node within a minute or
                        // so: spread the fleet again after the reload's round.
                        rounds_since_start = 0;
                    }
                }
                _ = stop.changed() => break 'rounds,
            }
        }
        let Some(reread) = reread_node(&state, &engine, &mut opts, &mut last_node_read, &mut stop).await else {
            break 'rounds;
        };
        if let Some(new) = reread {
            engine = new;
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
        project(&state, &opts.cluster, &mut limiter, condition.as_mut(), report);
        let interval = effective_interval(engine.config().interval, opts.min_interval);
        if took > interval {
            state.metrics.round_overrun();
            // A pause, never back to back: an overrunning round is one that
            // waits on dead servers, which a new round would only ask again.
            let pause = overrun_pause(interval, opts.min_interval);
            tracing::warn!(
                took_ms = took.as_millis() as u64,
                interval_ms = interval.as_millis() as u64,
                pause_ms = pause.as_millis() as u64,
                "round took longer than the interval; the next one starts after a pause"
            );
            next_start = Instant::now() + pause;
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

/// The Node, again: every round while `region: auto` waits for it (an API
/// server or DNS outage at start must not crash-loop the agent), and
/// hourly after. A region read now reloads: `Some(Some(engine))`. `None`
/// when `stop` turned true meanwhile (a dead API server must not hold up
/// shutdown; the read's own timeout is 5 s).
async fn reread_node(
    state: &Arc<State>,
    engine: &Engine,
    opts: &mut AgentOptions,
    last_read: &mut Instant,
    stop: &mut watch::Receiver<bool>,
) -> Option<Option<Engine>> {
    let due = engine.config().region_pending || last_read.elapsed() >= NODE_REREAD;
    if !due || opts.cluster.cluster.is_none() {
        return Some(None);
    }
    *last_read = Instant::now();
    let changed = tokio::select! {
        c = opts.cluster.read_node() => c,
        _ = stop.changed() => return None,
    };
    Some(if changed {
        reload_engine(state, engine, opts).await
    } else {
        None
    })
}

/// Loads the configuration file again with what the cluster tells now,
/// and applies it; `None` without a file or when the new one is rejected
/// (the running one goes on). Reading and parsing (a Service Tags file of up
/// to 32 MiB, the system roots) happens off the one runtime thread, so
/// probes and the HTTP server go on meanwhile.
async fn reload_engine(state: &Arc<State>, engine: &Engine, opts: &AgentOptions) -> Option<Engine> {
    let path = opts.config_path.clone()?;
    let (st, listen, load) = (state.clone(), engine.config().listen, opts.cluster.load_options());
    let new = tokio::task::spawn_blocking(move || reload(&path, &st, listen, &load))
        .await
        .ok()
        .flatten()?
        .keeping_rates_of(engine);
    apply_targets(state, new.config());
    warn_if_floored(new.config(), opts.min_interval);
    Some(new)
}

fn warn_if_floored(config: &Config, floor: Duration) {
    if config.interval < floor {
        tracing::warn!(
            interval_ms = config.interval.as_millis() as u64,
            floor_ms = floor.as_millis() as u64,
            "`interval` is under the agent's floor; rounds start at most once per floor"
        );
    }
}

/// The interval the agent keeps: the configured one, never under `floor`.
pub fn effective_interval(configured: Duration, floor: Duration) -> Duration {
    configured.max(floor)
}

/// The pause after a round that took longer than the interval: the floor,
/// or a tenth of the interval when that is longer.
pub fn overrun_pause(interval: Duration, floor: Duration) -> Duration {
    floor.max(interval / 10)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Config {
        Config::from_yaml(yaml, "t.yaml", None).unwrap()
    }

    /// `/status` and the page's round parts are rendered once per round and
    /// shared: every reader gets the same bytes, not a copy; and the page
    /// served in parts is the page rendered whole.
    #[tokio::test(flavor = "current_thread")]
    async fn a_round_is_rendered_once_and_shared() {
        let cfg = config("key_vaults: [kvone]\n");
        let state = State::new(Metrics::new().unwrap());
        let round = RoundReport::new(&cfg, std::time::SystemTime::now(), Duration::ZERO, &[], vec![]);
        state.publish(Arc::new(round.clone()));
        let (a, b) = (state.published().unwrap(), state.published().unwrap());
        assert_eq!(a.json().as_ptr(), b.json().as_ptr(), "one /status for every reader");
        assert_eq!(a.page().1.as_ptr(), b.page().1.as_ptr());
        assert_eq!(&a.json()[..], crate::render::json::render(&round).as_bytes());
        let context = state.page_context();
        let whole = crate::render::html::render(Some(&round), &context);
        let parts = [
            crate::render::html::head(&context).into_bytes(),
            a.page().0.to_vec(),
            crate::render::html::age(&context).into_bytes(),
            a.page().1.to_vec(),
        ]
        .concat();
        assert_eq!(String::from_utf8(parts).unwrap(), whole);
    }

    #[test]
    fn the_interval_has_a_floor_and_an_overrun_a_pause() {
        let (s, ms) = (Duration::from_secs, Duration::from_millis);
        assert_eq!(effective_interval(ms(10), MIN_AGENT_INTERVAL), s(5));
        assert_eq!(effective_interval(s(30), MIN_AGENT_INTERVAL), s(30));
        assert_eq!(
            effective_interval(ms(10), Duration::ZERO),
            ms(10),
            "tests lower it explicitly"
        );
        assert_eq!(overrun_pause(s(30), MIN_AGENT_INTERVAL), s(5));
        assert_eq!(overrun_pause(s(300), MIN_AGENT_INTERVAL), s(30));
        assert!(
            overrun_pause(ms(100), Duration::ZERO) > Duration::ZERO,
            "never back to back"
        );
    }

    #[test]
    fn the_liveness_window_covers_the_longest_healthy_round() {
        // One target, defaults: (30 s + 5 × 5 s + 5 s of round checks) × 2.
        assert_eq!(
            liveness_window(&config("key_vaults: [kvone]\n")),
            Duration::from_secs(120)
        );
        // 130 targets at 64 at a time: three waves of every phase timing out.
        let names: Vec<String> = (0..130).map(|i| format!("kv{i:03}x")).collect();
        let many = config(&format!("key_vaults: [{}]\n", names.join(", ")));
        assert_eq!(liveness_window(&many), Duration::from_secs((30 + 3 * 25 + 5) * 2));
        // Never under a minute.
        assert_eq!(
            liveness_window(&config("key_vaults: [kvone]\ninterval: 1s\ntimeout: 1s\n")),
            Duration::from_secs(60)
        );
    }

    /// `/healthz` fails once no round has completed within the window (a
    /// stuck round loop), and recovers with the next round.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn healthz_fails_when_rounds_stop() {
        let cfg = config("key_vaults: [kvone]\ninterval: 1s\ntimeout: 1s\n");
        let state = State::new(Metrics::new().unwrap());
        state.set_timing(&cfg);
        let health = |s: &State| {
            server::route_parts(s, &hyper::Method::GET, "/healthz")
                .status()
                .as_u16()
        };
        assert_eq!(health(&state), 200, "live from the start");
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(health(&state), 200, "the first round may take its time");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(health(&state), 503, "no round within the window");
        let round = RoundReport::new(&cfg, std::time::SystemTime::now(), Duration::ZERO, &[], vec![]);
        state.publish(Arc::new(round));
        assert_eq!(health(&state), 200, "a round completed");
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(health(&state), 503, "rounds stopped");
    }
}
