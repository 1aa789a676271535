//! The probe engine: one round over every target, each phase in its own
//! module (`dns`, `tcp`, `tls`, `http`). A round probes all targets and
//! resolvers concurrently, bounded by `concurrency`; each phase is bounded by
//! the configured timeout, so a round takes about as long as its slowest
//! target.

pub mod cert;
pub mod dns;
pub mod http;
pub mod proxy;
pub mod tcp;
pub mod tls;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::SystemTime;

use futures_util::future::join_all;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::{Config, ResolverSource};
use crate::model::{TcpOutcome, TlsOutcome};
use crate::observation::{
    ConnectObservation, DnsObservation, DnsOutcome, ResolverServers, RoundObservation, TargetObservation,
    TlsObservation, ZoneSoa,
};
use crate::service::{Service, Target};

pub use tls::{TlsSetup, TlsSetupError};

/// At most this many addresses of one target are connected to per round.
pub const MAX_ADDRESSES_PER_TARGET: usize = 8;

/// Runs rounds for one configuration.
#[derive(Clone)]
pub struct Engine {
    config: Arc<Config>,
    tls: TlsSetup,
    /// The trust store of the `api-server` target (the cluster CA), or why
    /// it could not be built: the pod's state, reported on that target.
    api_tls: Result<TlsSetup, String>,
    /// Each resolver's query rate (in configuration order), kept from round
    /// to round: the bound on what the node's DNS gets from the agent.
    rates: Arc<Vec<dns::QueryRate>>,
    /// The HTTP proxy variables workloads get (the agent's own), observed
    /// into every round.
    proxy: crate::proxy::ProxyEnv,
    /// The trust of the proxy path (`proxy_probe`): the targets' plus
    /// `proxy_ca_file`.
    proxy_tls: Option<TlsSetup>,
}

impl Engine {
    /// Builds the TLS trust store (system roots plus `tls.extra_ca_file`),
    /// and reads the process's HTTP proxy variables.
    pub fn new(config: Config) -> Result<Engine, TlsSetupError> {
        let tls = TlsSetup::new(config.extra_ca_file.as_deref(), &[], true)?;
        let proxy_tls = match (&config.proxy_probe, &config.proxy_ca_file) {
            (false, _) => None,
            (true, None) => Some(tls.clone()),
            (true, Some(ca)) => {
                let certs = crate::nodefiles::load_pem_certs(ca)?;
                Some(TlsSetup::new(config.extra_ca_file.as_deref(), &certs, true)?)
            }
        };
        let mut engine = Engine::with_tls(config, tls).with_proxy_env(crate::proxy::ProxyEnv::from_env());
        engine.proxy_tls = proxy_tls.or(engine.proxy_tls);
        Ok(engine)
    }

    /// The proxy variables a round observes (`new` reads the process's).
    pub fn with_proxy_env(mut self, env: crate::proxy::ProxyEnv) -> Engine {
        self.proxy = env;
        self
    }

    /// Uses a prepared trust store (the demo and tests trust their own CA).
    pub fn with_tls(config: Config, tls: TlsSetup) -> Engine {
        let api_tls = api_server_tls(&config);
        let rates = config
            .resolvers
            .iter()
            .map(|_| dns::QueryRate::per_resolver())
            .collect();
        let proxy_tls = config.proxy_probe.then(|| tls.clone());
        Engine {
            config: Arc::new(config),
            tls,
            api_tls,
            rates: Arc::new(rates),
            proxy: crate::proxy::ProxyEnv::default(),
            proxy_tls,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// This engine, with `previous`'s query rates where the resolvers are
    /// the same (names, in order): a reload must not grant a fresh burst,
    /// or frequent reloads would lift the bound on the node's DNS.
    pub fn keeping_rates_of(mut self, previous: &Engine) -> Engine {
        let same = |a: &Config, b: &Config| {
            a.resolvers
                .iter()
                .map(|r| &r.name)
                .eq(b.resolvers.iter().map(|r| &r.name))
        };
        if same(&self.config, &previous.config) {
            self.rates = previous.rates.clone();
        }
        self
    }

    /// Probes every target once; `started_at` is the wall-clock time the
    /// caller gives the round. Observations only: `judge` decides.
    pub async fn run_round(&self, started_at: SystemTime) -> RoundObservation {
        let start = Instant::now();
        let servers: ResolverServers = self
            .config
            .resolvers
            .iter()
            .map(|r| match &r.source {
                ResolverSource::Servers(list) => Ok(list.clone()),
                ResolverSource::ResolvConf(paths) => crate::nodefiles::read_first_resolv_conf(paths),
            })
            .collect();
        let held_before: Vec<u64> = self.rates.iter().map(dns::QueryRate::held).collect();
        let ctx = Arc::new(RoundCtx {
            config: self.config.clone(),
            tls: self.tls.clone(),
            api_tls: self.api_tls.clone(),
            servers,
            rates: self.rates.clone(),
            permits: Semaphore::new(self.config.concurrency),
            proxy: self.proxy.clone(),
            proxy_tls: self.proxy_tls.clone(),
        });
        // At most `concurrency` targets in flight, each a task: a target's
        // task holds its probes' state (TLS sessions, buffers), so spawning
        // every target at once would hold them all at once (1,000 targets:
        // megabytes waiting on the semaphore) for no gain in speed.
        let mut tasks = JoinSet::new();
        let mut next = 0;
        let total = self.config.targets.len();
        let mut slots: Vec<Option<TargetObservation>> = vec![None; total];
        loop {
            while next < total && tasks.len() < self.config.concurrency.max(1) {
                let (ctx, idx) = (ctx.clone(), next);
                tasks.spawn(async move { (idx, probe_target(&ctx, idx).await) });
                next += 1;
            }
            let Some(joined) = tasks.join_next().await else { break };
            match joined {
                Ok((idx, obs)) => slots[idx] = Some(obs),
                // A panicking target task must not take the round down; its
                // slot stays empty and the judge reports it as an error.
                Err(e) => tracing::error!(error = %e, "target task failed"),
            }
        }
        // Once per round, after every lookup: the TCP 53 check of each
        // resolver and the SOA of each zone that needs one, within
        // `concurrency` like every probe. A dropped TCP 53 adds up to one
        // `timeout` to the round.
        let (tcp_checks, zone_soas) = tokio::join!(tcp_checks(&ctx, &slots), zone_soas(&ctx, &slots));
        RoundObservation {
            started_at,
            duration: start.elapsed(),
            servers: ctx.servers.clone(),
            held: self.rates.iter().zip(held_before).map(|(r, b)| r.held() - b).collect(),
            targets: slots,
            tcp_checks,
            zone_soas,
            proxy: ctx.proxy.clone(),
        }
    }
}

/// Azure DNS's address and port: the SOA of a privatelink zone is asked of it.
pub const AZURE_DNS: SocketAddr = SocketAddr::new(crate::azure::AZURE_DNS, 53);

/// One TCP query per resolver: to the server that gave the round's first
/// usable UDP answer through it, for that answer's name. A resolver none of
/// whose servers answered over UDP is not checked.
async fn tcp_checks(ctx: &RoundCtx, slots: &[Option<TargetObservation>]) -> Vec<Option<crate::observation::TcpCheck>> {
    let cfg = &ctx.config;
    let checks = (0..cfg.resolvers.len()).map(|i| {
        let answered = cfg.targets.iter().zip(slots).find_map(|(t, o)| {
            let d = o.as_ref()?.dns.get(i)?;
            d.answered().filter(|_| !d.tcp_fallback)?;
            Some((d.server?, &t.fqdn))
        });
        async move {
            let (server, name) = answered?;
            let _permit = ctx.permits.acquire().await.ok();
            Some(dns::tcp_check(server, name, cfg.timeout, &ctx.rates[i]).await)
        }
    });
    join_all(checks).await
}

/// The SOA of each privatelink zone a chain entered without finding an
/// address in it (a public answer after the zone, or none), asked once per
/// zone of the first resolver that has Azure DNS among its servers; none
/// when no resolver has. Which zones is a fact of the chains, not a verdict.
async fn zone_soas(ctx: &RoundCtx, slots: &[Option<TargetObservation>]) -> Vec<ZoneSoa> {
    let cfg = &ctx.config;
    let Some(azure) = ctx
        .servers
        .iter()
        .position(|s| s.as_ref().is_ok_and(|list| list.contains(&AZURE_DNS)))
    else {
        return Vec::new();
    };
    let mut zones: Vec<String> = Vec::new();
    for (t, o) in cfg.targets.iter().zip(slots) {
        let Some(o) = o else { continue };
        let Some(zone) = t.zone_seen(o) else { continue };
        if !zones.contains(&zone) && o.dns.iter().any(|d| left_zone_empty(&t.fqdn, &zone, d)) {
            zones.push(zone);
        }
    }
    let asks = zones.iter().map(|zone| async move {
        let _permit = ctx.permits.acquire().await.ok();
        let name = &cfg.resolvers[azure].name;
        dns::zone_soa(name, zone, AZURE_DNS, cfg.timeout, &ctx.rates[azure]).await
    });
    join_all(asks).await
}

/// True when `d`'s answer entered `zone` (the name or a CNAME in it) and
/// found no address there: the chain went on past the zone to addresses, or
/// ended in it without any.
fn left_zone_empty(fqdn: &str, zone: &str, d: &DnsObservation) -> bool {
    let DnsOutcome::Answer(a) = &d.outcome else {
        return false;
    };
    let names: Vec<&str> = std::iter::once(fqdn)
        .chain(a.chain.iter().map(String::as_str))
        .collect();
    let entered = names.iter().any(|n| crate::azure::in_zone(n, zone));
    let last_in_zone = names.last().is_some_and(|n| crate::azure::in_zone(n, zone));
    let ended_empty = a.addresses.is_empty() && a.rcode.usable() && a.chain_problem.is_none();
    entered && (ended_empty || (!last_in_zone && !a.addresses.is_empty()))
}

struct RoundCtx {
    config: Arc<Config>,
    tls: TlsSetup,
    api_tls: Result<TlsSetup, String>,
    /// Each resolver's servers for this round, or why there are none.
    servers: ResolverServers,
    rates: Arc<Vec<dns::QueryRate>>,
    permits: Semaphore,
    proxy: crate::proxy::ProxyEnv,
    proxy_tls: Option<TlsSetup>,
}

async fn probe_target(ctx: &RoundCtx, idx: usize) -> TargetObservation {
    let cfg = &ctx.config;
    let target = &cfg.targets[idx];
    let lookups =
        cfg.resolvers
            .iter()
            .zip(&ctx.servers)
            .zip(ctx.rates.iter())
            .map(|((spec, servers), rate)| async move {
                match servers {
                    Ok(list) => {
                        let _permit = ctx.permits.acquire().await.ok();
                        dns::lookup(&spec.name, &target.fqdn, list, cfg.timeout, rate).await
                    }
                    Err(why) => DnsObservation {
                        resolver: spec.name.clone(),
                        server: None,
                        outcome: DnsOutcome::NoServers(why.clone()),
                        duration: std::time::Duration::ZERO,
                        tcp_fallback: false,
                        queries: 0,
                    },
                }
            });
    let dns: Vec<DnsObservation> = join_all(lookups).await;
    let via = connect_resolver(&dns, cfg.connect_via);
    let addrs: Vec<IpAddr> = via
        .map(|i| {
            dns[i]
                .addresses()
                .iter()
                .take(MAX_ADDRESSES_PER_TARGET)
                .copied()
                .collect()
        })
        .unwrap_or_default();
    let connects = addrs.iter().map(|&ip| async move {
        let _permit = ctx.permits.acquire().await.ok();
        connect_one(ctx, target, ip).await
    });
    let (connects, via_proxy) = tokio::join!(join_all(connects), via_proxy(ctx, target));
    TargetObservation {
        connects,
        connect_resolver: via,
        dns,
        via_proxy,
    }
}

/// The target through the workloads' HTTP proxy (`proxy_probe`), when it is
/// private and a client would send it there: the first such client's proxy
/// (Go's, when Go proxies it). One connection, within `concurrency`.
async fn via_proxy(ctx: &RoundCtx, target: &Target) -> Option<crate::observation::ProxyProbeObservation> {
    let trust = ctx.proxy_tls.as_ref()?;
    if target.expect != crate::model::Expect::Private {
        return None;
    }
    let decision = ctx
        .proxy
        .decide_all(&target.fqdn)
        .into_iter()
        .find(|d| d.proxy.is_some())?;
    let url = ctx.proxy.proxy_url(decision.client)?;
    let _permit = ctx.permits.acquire().await.ok();
    Some(
        proxy::probe(
            target,
            url,
            decision.proxy.unwrap_or_default(),
            trust,
            ctx.config.timeout,
        )
        .await,
    )
}

/// The cluster CA's trust store for the `api-server` target; an error
/// message when the file cannot be used (checked only when the target exists).
fn api_server_tls(config: &Config) -> Result<TlsSetup, String> {
    if !config.targets.iter().any(|t| t.service == Service::ApiServer) {
        return Err("no api-server target".into());
    }
    let path = &config.api_server_ca_file;
    TlsSetup::new(Some(path), &[], false).map_err(|e| {
        let why = format!("cannot use the cluster CA {}: {e}", path.display());
        tracing::warn!(%why, "the api-server target's TLS cannot be verified");
        why
    })
}

/// Whose addresses reachability uses: `connect_via`'s, or when it gave none
/// (a dead or failing DNS path), the first other resolver's that did, so that
/// a broken endpoint behind a broken DNS path shows in the same round.
pub fn connect_resolver(lookups: &[DnsObservation], connect_via: usize) -> Option<usize> {
    let has = |i: &usize| lookups.get(*i).is_some_and(|o| !o.addresses().is_empty());
    std::iter::once(connect_via)
        .chain((0..lookups.len()).filter(|i| *i != connect_via))
        .find(has)
}

/// TCP, then TLS, then HTTP against one address; each phase only if the
/// previous one succeeded.
async fn connect_one(ctx: &RoundCtx, target: &Target, ip: IpAddr) -> ConnectObservation {
    let limit = ctx.config.timeout;
    let tcp = tcp::connect(SocketAddr::new(ip, target.port), limit).await;
    let mut obs = ConnectObservation {
        address: ip,
        tcp: tcp.outcome,
        tcp_duration: tcp.duration,
        tcp_detail: tcp.detail,
        tls: None,
        http: None,
    };
    let Some(stream) = tcp.stream else { return obs };
    debug_assert_eq!(obs.tcp, TcpOutcome::Ok);
    let trust = match (target.service, &ctx.api_tls) {
        (Service::ApiServer, Ok(api)) => api,
        (Service::ApiServer, Err(why)) => {
            obs.tls = Some(TlsObservation {
                outcome: TlsOutcome::Failed,
                duration: std::time::Duration::ZERO,
                detail: Some(why.clone()),
                cert_not_after: None,
                version: None,
                received: 0,
                unacked: None,
            });
            return obs;
        }
        _ => &ctx.tls,
    };
    let (tls_obs, tls_stream) = tls::handshake(trust, stream, &target.fqdn, limit).await;
    obs.tls = Some(tls_obs);
    let Some(tls_stream) = tls_stream else {
        return obs;
    };
    obs.http = Some(http::request(tls_stream, &target.fqdn, target.port, target.service, limit).await);
    obs
}
