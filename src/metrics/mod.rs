//! Prometheus metrics: one registry owned here (no global registry, no
//! registration macros). Label values come from the model's enums. The
//! per-target families come in two sets (`compact`, the default, and `full`;
//! see `targets.rs`); alert rules and the dashboard read the same in both.

use std::sync::Mutex;

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::model::{EventReason, FindingCode, MetricSet, ScoringCause};
use crate::report::RoundReport;
use crate::service::Target;

mod targets;
use targets::{Known, Targets};

/// Metric names, shared with tests, dashboards and alert rules.
pub mod names {
    pub const TARGET_HEALTHY: &str = "netprobe_target_healthy";
    pub const DNS_VERDICT: &str = "netprobe_dns_verdict";
    pub const DNS_PRIVATELINK: &str = "netprobe_dns_privatelink";
    pub const DNS_HEALTHY: &str = "netprobe_dns_healthy";
    pub const DNS_LOOKUP_LAST: &str = "netprobe_dns_lookup_last_seconds";
    pub const PHASE_LAST: &str = "netprobe_phase_last_seconds";
    pub const REACH_VERDICT: &str = "netprobe_reach_verdict";
    pub const TARGET_CAUSE: &str = "netprobe_target_cause";
    pub const DNS_LOOKUP_DURATION: &str = "netprobe_dns_lookup_duration_seconds";
    pub const PHASE_DURATION: &str = "netprobe_phase_duration_seconds";
    pub const HTTP_STATUS_CODE: &str = "netprobe_http_status_code";
    pub const TLS_CERT_EXPIRY: &str = "netprobe_tls_cert_expiry_timestamp_seconds";
    pub const ROUND_DURATION: &str = "netprobe_round_duration_seconds";
    pub const ROUNDS_TOTAL: &str = "netprobe_rounds_total";
    pub const ROUND_OVERRUNS_TOTAL: &str = "netprobe_round_overruns_total";
    pub const LAST_ROUND_TIMESTAMP: &str = "netprobe_last_round_timestamp_seconds";
    pub const CONFIG_RELOAD_SUCCESS: &str = "netprobe_config_reload_success";
    pub const CONFIG_RELOADS_TOTAL: &str = "netprobe_config_reloads_total";
    pub const TARGET_INFO: &str = "netprobe_target_info";
    pub const BUILD_INFO: &str = "netprobe_build_info";
    pub const INTERVAL_SECONDS: &str = "netprobe_round_interval_seconds";
    pub const SCORING_SERVICE_HEALTHY: &str = "netprobe_scoring_service_healthy";
    pub const SCORING_SERVICE_CAUSE: &str = "netprobe_scoring_service_cause";
    pub const FINDING: &str = "netprobe_finding";
    pub const NODE_INFO: &str = "netprobe_node_info";
    pub const EVENTS_TOTAL: &str = "netprobe_events_total";
    pub const DNS_QUERIES_TOTAL: &str = "netprobe_dns_queries_total";
    pub const DNS_QUERIES_HELD_TOTAL: &str = "netprobe_dns_queries_held_total";
    pub const RESOLVER_UP: &str = "netprobe_resolver_up";
    pub const RESOLVER_INFO: &str = "netprobe_resolver_info";
    pub const TRANSITIONS_TOTAL: &str = "netprobe_target_transitions_total";
    pub const SERVICE_TAGS_INFO: &str = "netprobe_service_tags_info";
    pub const SERVICE_TAGS_PUBLISHED: &str = "netprobe_service_tags_published_timestamp_seconds";
    pub const PROXY_CONFIGURED: &str = "netprobe_proxy_configured";
    pub const PROXY_PRIVATE_TARGETS: &str = "netprobe_proxy_private_targets";
}

/// Latency buckets for DNS and connection phases (seconds).
const PHASE_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets for whole rounds (seconds).
const ROUND_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// Building the registry failed (a programming error: duplicate names).
#[derive(Debug, thiserror::Error)]
#[error("cannot build metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

impl Known {
    fn new(t: &Target, resolvers: &[String]) -> Known {
        Known {
            target: t.name.clone(),
            fqdn: t.fqdn.clone(),
            service: t.service.as_str(),
            port: t.port.to_string(),
            expect: t.expect,
            resolvers: resolvers.to_vec(),
        }
    }
}

/// Every netprobe metric. The per-target families live in a compact table
/// (`targets`) written straight into the exposition; the rest are in the
/// registry.
pub struct Metrics {
    registry: Registry,
    round_duration: Histogram,
    rounds_total: IntCounter,
    overruns_total: IntCounter,
    last_round: Gauge,
    reload_success: IntGauge,
    reloads_total: IntCounterVec,
    interval: Gauge,
    /// The node, cluster findings, the inference router check and Events.
    cluster: ClusterMetrics,
    resolver: ResolverMetrics,
    transitions_total: IntCounterVec,
    service_tags_info: IntGaugeVec,
    service_tags_published: IntGaugeVec,
    /// The resolvers whose series exist (the configured ones).
    resolvers: Mutex<Vec<String>>,
    targets: Mutex<Targets>,
}

/// The families about the cluster rather than the targets.
struct ClusterMetrics {
    scoring_healthy: IntGaugeVec,
    scoring_cause: IntGaugeVec,
    finding: IntGaugeVec,
    node_info: IntGaugeVec,
    events_total: IntCounterVec,
    proxy_configured: IntGaugeVec,
    proxy_private_targets: IntGaugeVec,
}

impl ClusterMetrics {
    fn new(r: &Registry) -> Result<ClusterMetrics, prometheus::Error> {
        use names::*;
        let scoring_healthy = gauge_vec(
            r,
            SCORING_SERVICE_HEALTHY,
            "1 when the AML inference router Service is an internal load balancer with private ingress IPs.",
            &["namespace", "name"],
        )?;
        let scoring_cause = gauge_vec(
            r,
            SCORING_SERVICE_CAUSE,
            "Cause of an unhealthy inference router Service (state set; `none` when healthy).",
            &["namespace", "name", "cause"],
        )?;
        let finding = gauge_vec(
            r,
            FINDING,
            "1 while a cluster-level finding holds (state set over codes).",
            &["code"],
        )?;
        for code in FindingCode::ALL {
            finding.with_label_values(&[code.as_str()]).set(0);
        }
        let node_info = gauge_vec(
            r,
            NODE_INFO,
            "The node this agent runs on (always 1): its region, zone, agent pool and node image, to group failing nodes by.",
            &["node", "region", "zone", "agentpool", "node_image"],
        )?;
        let events_total = counter_vec(
            r,
            EVENTS_TOTAL,
            "Kubernetes Events on the Node by reason and result (sent, suppressed, failed).",
            &["reason", "result"],
            &[],
        )?;
        let proxy_configured = gauge_vec(
            r,
            PROXY_CONFIGURED,
            "1 when the agent's pod has an HTTPS proxy (AKS httpProxyConfig): the workloads' HTTPS goes through it unless NO_PROXY names the host.",
            &[],
        )?;
        proxy_configured.with_label_values::<&str>(&[]).set(0);
        let proxy_private_targets = gauge_vec(
            r,
            PROXY_PRIVATE_TARGETS,
            "Private targets that a workload's HTTP client (go, curl, python) would send to the HTTPS proxy: NO_PROXY does not name them.",
            &["client"],
        )?;
        for c in crate::proxy::Client::ALL {
            proxy_private_targets.with_label_values(&[c.as_str()]).set(0);
        }
        Ok(ClusterMetrics {
            scoring_healthy,
            scoring_cause,
            finding,
            node_info,
            events_total,
            proxy_configured,
            proxy_private_targets,
        })
    }
}

/// `metric`, registered in `r`.
fn registered<T: prometheus::core::Collector + Clone + 'static>(
    r: &Registry,
    metric: T,
) -> Result<T, prometheus::Error> {
    r.register(Box::new(metric.clone()))?;
    Ok(metric)
}

/// A registered counter family; `known` single-label values exist at 0 from
/// the start, so the first increase shows in rate().
fn counter_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    known: &[&str],
) -> Result<IntCounterVec, prometheus::Error> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(c.clone()))?;
    for value in known {
        let _ = c.with_label_values(&[value]);
    }
    Ok(c)
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> Result<IntGaugeVec, prometheus::Error> {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

/// The per-resolver families: queries sent and held, up, and which one is
/// `connect_via`.
struct ResolverMetrics {
    queries_total: IntCounterVec,
    queries_held_total: IntCounterVec,
    up: IntGaugeVec,
    info: IntGaugeVec,
}

impl ResolverMetrics {
    fn new(r: &Registry) -> Result<ResolverMetrics, MetricsError> {
        use names::*;
        let queries_total = counter_vec(
            r,
            DNS_QUERIES_TOTAL,
            "DNS queries sent through each resolver (retransmissions, TCP retries and CNAME follow-ups included).",
            &["resolver"],
            &[],
        )?;
        let queries_held_total = counter_vec(
            r,
            DNS_QUERIES_HELD_TOTAL,
            "DNS queries that waited for (or were not sent for) the agent's own limit of queries per second to each resolver.",
            &["resolver"],
            &[],
        )?;
        let up = gauge_vec(
            r,
            RESOLVER_UP,
            "1 when the resolver answered at least one query with a usable rcode (NOERROR, NXDOMAIN) in the last round.",
            &["resolver"],
        )?;
        let info = gauge_vec(
            r,
            RESOLVER_INFO,
            "1 for each configured resolver; connect_via=\"true\" marks the one whose answers reachability uses (the pod path, which the alert rules compare the others with).",
            &["resolver", "connect_via"],
        )?;
        Ok(ResolverMetrics {
            queries_total,
            queries_held_total,
            up,
            info,
        })
    }
}

impl Metrics {
    /// A fresh registry with every netprobe metric and the process collector.
    pub fn new() -> Result<Metrics, MetricsError> {
        use names::*;
        let r = Registry::new();
        let round_duration = registered(
            &r,
            Histogram::with_opts(
                HistogramOpts::new(ROUND_DURATION, "Duration of a probe round.").buckets(ROUND_BUCKETS.to_vec()),
            )?,
        )?;
        let rounds_total = registered(&r, IntCounter::new(ROUNDS_TOTAL, "Probe rounds completed.")?)?;
        let overruns_total = registered(
            &r,
            IntCounter::new(ROUND_OVERRUNS_TOTAL, "Rounds that took longer than the interval.")?,
        )?;
        let last_round = registered(
            &r,
            Gauge::new(LAST_ROUND_TIMESTAMP, "When the last round completed, Unix seconds.")?,
        )?;
        let reload_success = registered(
            &r,
            IntGauge::new(
                CONFIG_RELOAD_SUCCESS,
                "1 when the last configuration (re)load succeeded.",
            )?,
        )?;
        reload_success.set(1);
        let reloads_total = counter_vec(
            &r,
            CONFIG_RELOADS_TOTAL,
            "Configuration reload attempts by result.",
            &["result"],
            &["success", "failure"],
        )?;
        let build_info = gauge_vec(&r, BUILD_INFO, "Build information (always 1).", &["version"])?;
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let interval = registered(&r, Gauge::new(INTERVAL_SECONDS, "Configured interval between rounds.")?)?;
        let cluster = ClusterMetrics::new(&r)?;
        let resolver = ResolverMetrics::new(&r)?;
        let transitions_total = counter_vec(
            &r,
            TRANSITIONS_TOTAL,
            "Changes of a target's state (health, causes, reach or a DNS verdict), by the health it changed to.",
            &["to"],
            &["healthy", "unhealthy"],
        )?;
        let service_tags_info = gauge_vec(
            &r,
            SERVICE_TAGS_INFO,
            "The loaded service_tags_file (always 1; absent without one): its cloud, changeNumber, and where its date comes from (file, file_name, mtime).",
            &["cloud", "change_number", "published_from"],
        )?;
        let service_tags_published = gauge_vec(
            &r,
            SERVICE_TAGS_PUBLISHED,
            "When the loaded service_tags_file was published, Unix seconds (absent without one).",
            &["cloud"],
        )?;
        #[cfg(target_os = "linux")]
        r.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;
        Ok(Metrics {
            registry: r,
            cluster,
            round_duration,
            rounds_total,
            overruns_total,
            last_round,
            reload_success,
            reloads_total,
            interval,
            resolver,
            transitions_total,
            service_tags_info,
            service_tags_published,
            resolvers: Mutex::new(Vec::new()),
            targets: Mutex::new(Targets::default()),
        })
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Declares the configured targets: creates every series for them and
    /// removes the series of targets no longer configured.
    pub fn set_targets(&self, targets: &[Target], resolvers: &[String], interval_secs: f64, set: MetricSet) {
        self.interval.set(interval_secs);
        let wanted: Vec<Known> = targets.iter().map(|t| Known::new(t, resolvers)).collect();
        if let Ok(mut rows) = self.targets.lock() {
            rows.set(wanted, set);
        }
        if let Ok(mut known) = self.resolvers.lock() {
            for gone in known.iter().filter(|r| !resolvers.contains(r)) {
                let _ = self.resolver.queries_total.remove_label_values(&[gone]);
                let _ = self.resolver.queries_held_total.remove_label_values(&[gone]);
                let _ = self.resolver.up.remove_label_values(&[gone]);
            }
            for r in resolvers {
                // Counters exist at 0 from the start, so the first increase shows in rate().
                let _ = self.resolver.queries_total.with_label_values(&[r]);
                let _ = self.resolver.queries_held_total.with_label_values(&[r]);
            }
            *known = resolvers.to_vec();
        }
    }

    /// Declares which resolver is `connect_via` (`netprobe_resolver_info`),
    /// so that rules compare the others with it by label, not by name.
    pub fn set_connect_via(&self, resolvers: &[String], connect_via: usize) {
        self.resolver.info.reset();
        for (i, r) in resolvers.iter().enumerate() {
            let via = if i == connect_via { "true" } else { "false" };
            self.resolver.info.with_label_values(&[r.as_str(), via]).set(1);
        }
    }

    /// Declares the loaded Service Tags file (or none).
    pub fn set_service_tags(&self, tags: Option<&crate::servicetags::ServiceTags>) {
        self.service_tags_info.reset();
        self.service_tags_published.reset();
        if let Some(t) = tags {
            let change = t.change_number.to_string();
            self.service_tags_info
                .with_label_values(&[t.cloud.as_str(), change.as_str(), t.published.1.as_str()])
                .set(1);
            self.service_tags_published
                .with_label_values(&[t.cloud.as_str()])
                .set(t.published.0);
        }
    }

    /// Records a completed round.
    pub fn observe_round(&self, report: &RoundReport, completed_unix: f64) {
        if let Ok(mut rows) = self.targets.lock() {
            for t in &report.targets {
                rows.observe(t);
            }
        }
        for r in &report.resolvers {
            self.resolver
                .queries_total
                .with_label_values(&[&r.name])
                .inc_by(r.queries + r.check_queries);
            self.resolver
                .queries_held_total
                .with_label_values(&[&r.name])
                .inc_by(r.queries_held);
            self.resolver.up.with_label_values(&[&r.name]).set(i64::from(r.up));
        }
        self.round_duration.observe(report.duration.as_secs_f64());
        self.rounds_total.inc();
        self.last_round.set(completed_unix);
    }

    /// Records the node, findings and the scoring-service check of a round.
    pub fn observe_cluster(&self, report: &RoundReport) {
        if let Some(n) = &report.node {
            let attr = |k: &str| n.attrs.get(k).map_or("", String::as_str);
            let labels = [
                n.name.as_str(),
                n.region.as_deref().unwrap_or(""),
                n.zone.as_deref().unwrap_or(""),
                attr("pool"),
                attr("node_image"),
            ];
            // One series per node: a node image upgrade replaces it.
            if !self
                .cluster
                .node_info
                .get_metric_with_label_values(&labels)
                .is_ok_and(|g| g.get() == 1)
            {
                self.cluster.node_info.reset();
            }
            self.cluster.node_info.with_label_values(&labels).set(1);
        }
        self.cluster
            .proxy_configured
            .with_label_values::<&str>(&[])
            .set(i64::from(report.proxy.is_some()));
        for c in crate::proxy::Client::ALL {
            let n = report
                .targets
                .iter()
                .filter(|t| t.expect == crate::model::Expect::Private)
                .filter_map(|t| t.proxy.as_ref())
                .filter(|p| p.clients.iter().any(|d| d.client == *c && d.proxy.is_some()))
                .count();
            self.cluster
                .proxy_private_targets
                .with_label_values(&[c.as_str()])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        for code in FindingCode::ALL {
            let on = report.findings.iter().any(|f| f.code == *code);
            self.cluster
                .finding
                .with_label_values(&[code.as_str()])
                .set(i64::from(on));
        }
        if let Some(s) = &report.scoring_service {
            let (ns, name) = (s.namespace.as_str(), s.name.as_str());
            self.cluster
                .scoring_healthy
                .with_label_values(&[ns, name])
                .set(i64::from(s.healthy));
            for c in ScoringCause::ALL {
                self.cluster
                    .scoring_cause
                    .with_label_values(&[ns, name, c.as_str()])
                    .set(i64::from(*c == s.cause));
            }
        }
    }

    /// Counts the round's state changes.
    pub fn transitions(&self, changes: &[crate::round::Transition<'_>]) {
        for c in changes {
            let to = if c.now.healthy { "healthy" } else { "unhealthy" };
            self.transitions_total.with_label_values(&[to]).inc();
        }
    }

    /// Counts an Event: `result` is sent, suppressed or failed.
    pub fn event(&self, reason: EventReason, result: &str) {
        self.cluster
            .events_total
            .with_label_values(&[reason.as_str(), result])
            .inc();
    }

    pub fn round_overrun(&self) {
        self.overruns_total.inc();
    }

    pub fn reload_result(&self, ok: bool) {
        self.reload_success.set(i64::from(ok));
        self.reloads_total
            .with_label_values(&[if ok { "success" } else { "failure" }])
            .inc();
    }

    /// The Prometheus text exposition in two parts: the registry's families
    /// (small; rendered per call) and the per-target families (rendered once
    /// after each round or reload, then shared: concurrent scrapes hold one
    /// copy between them, not one each).
    pub fn exposition(&self) -> [bytes::Bytes; 2] {
        // The target rows first, then the registry: a round counts its
        // transitions before it writes its rows (`agent::project`), so the
        // counters read after the rows are never behind them. Read the other
        // way round, a round landing between the two reads showed its new
        // state beside the old counters.
        let targets = self.targets.lock().map(|mut t| t.rendered()).unwrap_or_default();
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        [bytes::Bytes::from(buf), targets]
    }

    /// The whole exposition as one string (tests and tools).
    pub fn encode(&self) -> String {
        self.exposition()
            .iter()
            .map(|b| String::from_utf8_lossy(b))
            .collect::<Vec<_>>()
            .concat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure::Cloud;
    use crate::model::{Cause, DnsVerdict, Reach};

    fn series(text: &str, name: &str) -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
            .map(String::from)
            .collect()
    }

    #[test]
    fn state_sets_exist_for_every_target_from_the_start() {
        let m = Metrics::new().unwrap();
        let targets = vec![
            crate::service::acr::login(Cloud::Public, "reg01"),
            crate::service::keyvault::target(Cloud::Public, "kv01"),
        ];
        m.set_targets(&targets, &["system".into(), "azure".into()], 30.0, MetricSet::Full);
        let text = m.encode();
        assert_eq!(series(&text, names::DNS_VERDICT).len(), 2 * 2 * DnsVerdict::ALL.len());
        assert_eq!(series(&text, names::REACH_VERDICT).len(), 2 * Reach::ALL.len());
        assert_eq!(series(&text, names::TARGET_CAUSE).len(), 2 * Cause::ALL.len());
        assert_eq!(series(&text, names::TARGET_INFO).len(), 2);
        assert!(text.contains(r#"netprobe_target_info{expect="private",fqdn="reg01.azurecr.io",port="443",service="acr",target="acr-reg01"} 1"#), "{text}");
        assert!(text.contains(&format!(
            "netprobe_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )));

        // Dropping a target removes all of its series.
        m.set_targets(&targets[..1], &["system".into(), "azure".into()], 30.0, MetricSet::Full);
        let text = m.encode();
        assert!(!text.contains("kv01"), "{text}");
        assert_eq!(series(&text, names::DNS_VERDICT).len(), 2 * DnsVerdict::ALL.len());
    }

    /// Concurrent scrapes share one rendering of the per-target families
    /// (the same bytes, not copies) until the targets change.
    #[test]
    fn the_service_tags_file_is_exported_while_loaded() {
        let m = Metrics::new().unwrap();
        let data = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/testdata/service-tags/ServiceTags_Public_20261102.json"
        ))
        .unwrap();
        let tags =
            crate::servicetags::ServiceTags::parse(&data, "t", "ServiceTags_Public_20261102.json", None).unwrap();
        m.set_service_tags(Some(&tags));
        let text = m.encode();
        assert_eq!(
            series(&text, names::SERVICE_TAGS_INFO),
            ["netprobe_service_tags_info{change_number=\"420\",cloud=\"Public\",published_from=\"file_name\"} 1"]
        );
        assert_eq!(
            series(&text, names::SERVICE_TAGS_PUBLISHED),
            ["netprobe_service_tags_published_timestamp_seconds{cloud=\"Public\"} 1793577600"]
        );
        m.set_service_tags(None);
        let text = m.encode();
        assert!(series(&text, names::SERVICE_TAGS_INFO).is_empty(), "{text}");
        assert!(series(&text, names::SERVICE_TAGS_PUBLISHED).is_empty());
    }

    /// A round's report whose one target's DNS lookup took `k` ms.
    fn round_k(k: u64) -> crate::report::RoundReport {
        serde_json::from_value(serde_json::json!({
            "healthy": true, "started_at": "2026-12-07T00:00:00Z", "duration_ms": 1.0, "version": "t",
            "config": "t", "summary": {"targets": 1, "healthy": 1, "unhealthy": 0, "resolvers": ["system"],
            "connect_via": "system"},
            "resolvers": [], "findings": [],
            "targets": [{
                "name": "acr-reg01", "fqdn": "reg01.azurecr.io", "service": "acr", "port": 443,
                "expect": "private", "privatelink_zone": null, "healthy": true, "cause": "none",
                "diagnosis": null, "causes": [], "reach": "ok", "connect_resolver": "system", "slowest": null,
                "dns": [{"resolver": "system", "server": null, "verdict": "private", "rcode": "NOERROR",
                    "cname_chain": [], "addresses": [], "privatelink": true, "duration_ms": k as f64,
                    "tcp_fallback": false, "queries": 2, "detail": null}],
                "connect": []
            }]
        }))
        .unwrap()
    }

    /// A scrape never shows a round's target rows without the transitions
    /// the round counted before writing them (the agent counts first, then
    /// writes the rows). The exposition used to gather the registry first and
    /// read the rows after, so a round landing in between showed its new
    /// state beside the old counters (tests/agent.rs caught it once in CI).
    /// Each round here counts one transition and writes its number into a
    /// row; every scrape must show at least as many transitions as the
    /// round number in the row.
    #[test]
    fn a_scrape_never_shows_rows_ahead_of_their_transitions() {
        let m = std::sync::Arc::new(Metrics::new().unwrap());
        let targets = vec![crate::service::acr::login(Cloud::Public, "reg01")];
        m.set_targets(&targets, &["system".into()], 30.0, MetricSet::Compact);
        let rounds = 3000u64;
        let writer = {
            let m = m.clone();
            std::thread::spawn(move || {
                for k in 1..=rounds {
                    let report = round_k(k);
                    m.transitions(&[crate::round::Transition {
                        before: None,
                        now: &report.targets[0],
                    }]);
                    m.observe_round(&report, 0.0);
                }
            })
        };
        let value = |text: &str, prefix: &str| -> Option<f64> {
            text.lines()
                .filter(|l| l.starts_with(prefix))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .reduce(|a, b| a + b)
        };
        let mut scrapes = 0;
        let mut bad = Vec::new();
        while !writer.is_finished() {
            let text = m.encode();
            scrapes += 1;
            let counted = value(&text, "netprobe_target_transitions_total{").unwrap_or(0.0);
            let Some(row) = value(&text, "netprobe_dns_lookup_last_seconds{") else {
                continue;
            };
            let round = (row * 1000.0).round();
            if counted < round {
                bad.push(format!("round {round} in the rows, {counted} transitions counted"));
            }
        }
        writer.join().unwrap();
        assert!(scrapes > 10, "{scrapes} scrapes");
        assert!(
            bad.is_empty(),
            "{} of {scrapes} scrapes: {:?}",
            bad.len(),
            &bad[..bad.len().min(5)]
        );
    }

    #[test]
    fn scrapes_share_one_rendering_until_a_change() {
        let m = Metrics::new().unwrap();
        let targets = vec![crate::service::acr::login(Cloud::Public, "reg01")];
        m.set_targets(&targets, &["system".into()], 30.0, MetricSet::Compact);
        let [_, a] = m.exposition();
        let [_, b] = m.exposition();
        assert!(!a.is_empty());
        assert_eq!(a.as_ptr(), b.as_ptr(), "the second scrape re-rendered");
        m.set_targets(&targets, &["system".into(), "azure".into()], 30.0, MetricSet::Compact);
        let [_, c] = m.exposition();
        assert_ne!(a.as_ptr(), c.as_ptr(), "a change must render anew");
        assert!(String::from_utf8_lossy(&c).contains("netprobe_target_info"));
    }
}
