//! The per-target series, kept compact and written straight into the text
//! exposition.
//!
//! The `prometheus` crate keeps, for every labelled child, a copy of its
//! family's descriptor and its own label pairs: about 1 KiB per series. With
//! every state set present for every target (about 140 series each), that
//! was about 55 KiB per target, 64 MiB at 1,000 targets. Here a target costs
//! its label strings once plus its numbers (under 1 KiB), and a scrape writes
//! the text directly, without building protobuf families first.
//!
//! The output is the same text format, label order and number formatting as
//! the crate's `TextEncoder`, so the exposition reads the same as before.
//!
//! Two sets (`metrics:` in the config, [`MetricSet`]):
//! - `compact` (the default) writes a state set's current value only: one
//!   series `netprobe_target_cause{cause="zone_not_linked"} 1`, not 17 with
//!   16 zeros. Alerts and panels select `== 1`, which reads the same in both
//!   sets. The cost is churn: a change of cause (or reach, or a resolver's
//!   verdict) ends one series and starts another, so a target that flaps
//!   between two states creates two series per flap; a healthy fleet creates
//!   none. Latencies are the last round's gauges, no histograms. At most 16
//!   series per target with two resolvers (`tests/metrics_budget.rs`).
//! - `full` adds every other state at 0 and the per-phase histograms.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::PHASE_BUCKETS;
use super::names::*;
use crate::model::{Cause, ConnectPhase, DnsVerdict, Expect, MetricSet, Reach};
use crate::report::TargetReport;
use crate::verdict::meets;

/// The label values that identify one target's series.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Known {
    pub target: String,
    pub fqdn: String,
    pub service: &'static str,
    pub port: String,
    pub expect: Expect,
    pub resolvers: Vec<String>,
}

/// A histogram over `PHASE_BUCKETS`.
#[derive(Clone, Debug, Default)]
struct Hist {
    /// Non-cumulative counts per bucket; observations above the last bound
    /// are only in `count`.
    buckets: [u64; PHASE_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Hist {
    fn observe(&mut self, v: f64) {
        if let Some(i) = PHASE_BUCKETS.iter().position(|b| v <= *b) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum += v;
    }
}

#[derive(Debug)]
struct Row {
    k: Known,
    healthy: bool,
    /// Per resolver, in `k.resolvers` order.
    dns: Vec<DnsRow>,
    reach: Option<Reach>,
    cause: Option<Cause>,
    /// The resolver the primary cause was seen through (a DNS cause's
    /// path; empty for reachability): the `resolver` label of every
    /// `netprobe_target_cause` state, so that an alert on the cause names
    /// the broken path.
    cause_resolver: String,
    /// Per connection phase, in `ConnectPhase::ALL` order.
    phases: [Hist; ConnectPhase::ALL.len()],
    /// The last round's slowest address per phase (seconds), when measured.
    last_phase: [Option<f64>; ConnectPhase::ALL.len()],
    http_status: u16,
    cert_expiry: Option<i64>,
}

#[derive(Debug, Default)]
struct DnsRow {
    verdict: Option<DnsVerdict>,
    privatelink: bool,
    lookup: Hist,
    /// The last lookup's duration (seconds).
    last: Option<f64>,
}

impl Row {
    fn new(k: Known) -> Row {
        Row {
            dns: k.resolvers.iter().map(|_| DnsRow::default()).collect(),
            k,
            healthy: false,
            reach: None,
            cause: None,
            cause_resolver: String::new(),
            phases: Default::default(),
            last_phase: Default::default(),
            http_status: 0,
            cert_expiry: None,
        }
    }
}

/// Every configured target's series, by target name.
#[derive(Debug, Default)]
pub(super) struct Targets {
    rows: BTreeMap<String, Row>,
    set: MetricSet,
    /// The text of every row, rendered once after a change and shared by
    /// every scrape until the next one (a scrape storm does not multiply it).
    rendered: Option<bytes::Bytes>,
}

impl Targets {
    /// Keeps the rows of targets still configured unchanged, drops the others
    /// and creates rows (every state at 0) for new ones.
    pub fn set(&mut self, wanted: Vec<Known>, set: MetricSet) {
        self.set = set;
        self.rendered = None;
        let wanted: BTreeMap<String, Known> = wanted.into_iter().map(|k| (k.target.clone(), k)).collect();
        self.rows.retain(|name, row| wanted.get(name) == Some(&row.k));
        for (name, k) in wanted {
            self.rows.entry(name).or_insert_with(|| Row::new(k));
        }
    }

    pub fn observe(&mut self, t: &TargetReport) {
        self.rendered = None;
        let Some(row) = self.rows.get_mut(&t.name) else { return };
        row.healthy = t.healthy;
        row.reach = Some(t.reach);
        row.cause = Some(t.cause);
        row.cause_resolver = t.causes.first().and_then(|c| c.resolver.clone()).unwrap_or_default();
        for d in &t.dns {
            if let Some(i) = row.k.resolvers.iter().position(|r| *r == d.resolver) {
                let dr = &mut row.dns[i];
                dr.verdict = Some(d.verdict);
                dr.privatelink = d.privatelink;
                dr.lookup.observe(d.duration.as_secs_f64());
                dr.last = Some(d.duration.as_secs_f64());
            }
        }
        let mut status = 0u16;
        let mut expiry: Option<i64> = None;
        row.last_phase = Default::default();
        for c in &t.connect {
            let times = [Some(c.tcp_time), c.tls_time, c.http_time];
            for ((hist, last), time) in row.phases.iter_mut().zip(&mut row.last_phase).zip(times) {
                if let Some(time) = time.map(|t| t.as_secs_f64()) {
                    hist.observe(time);
                    *last = Some(last.map_or(time, |l: f64| l.max(time)));
                }
            }
            // The status of the worst address is the one worth showing.
            if status == 0 || c.reach != Reach::Ok {
                status = c.http_status.unwrap_or(status);
            }
            if let Some(na) = c.cert_not_after_unix {
                expiry = Some(expiry.map_or(na, |e| e.min(na)));
            }
        }
        row.http_status = status;
        row.cert_expiry = expiry;
    }

    /// Appends every per-target family to `out`, in the text format.
    pub fn write(&self, out: &mut String) {
        self.write_states(out);
        self.write_measurements(out);
    }

    /// The text of every row: rendered at the first call after a change,
    /// then the same shared bytes.
    pub fn rendered(&mut self) -> bytes::Bytes {
        if let Some(b) = &self.rendered {
            return b.clone();
        }
        let mut out = String::new();
        self.write(&mut out);
        let b = bytes::Bytes::from(out);
        self.rendered = Some(b.clone());
        b
    }

    /// Health, the DNS and reach verdicts, the cause.
    fn write_states(&self, out: &mut String) {
        let rows = || self.rows.values();
        let full = self.set == MetricSet::Full;
        header(
            out,
            TARGET_HEALTHY,
            "1 when every resolver's verdict meets the expectation and reach is ok.",
            "gauge",
        );
        for r in rows() {
            gauge(out, TARGET_HEALTHY, &r.labels(&[]), flag(r.healthy));
        }
        header(
            out,
            DNS_VERDICT,
            "DNS verdict per target and resolver (1 for the current verdict; `metrics: full` adds the others at 0).",
            "gauge",
        );
        for r in rows() {
            for (resolver, d) in r.k.resolvers.iter().zip(&r.dns) {
                states(out, DNS_VERDICT, DnsVerdict::ALL, d.verdict, full, |v| {
                    r.labels(&[("resolver", resolver), ("verdict", v.as_str())])
                });
            }
        }
        header(
            out,
            DNS_HEALTHY,
            "1 when the resolver's answer meets the target's expectation (after the first round).",
            "gauge",
        );
        for r in rows() {
            for (resolver, d) in r.k.resolvers.iter().zip(&r.dns) {
                if let Some(v) = d.verdict {
                    gauge(
                        out,
                        DNS_HEALTHY,
                        &r.labels(&[("resolver", resolver)]),
                        flag(meets(r.k.expect, v)),
                    );
                }
            }
        }
        if full {
            header(
                out,
                DNS_PRIVATELINK,
                "1 when the CNAME chain passed through the target's privatelink zone.",
                "gauge",
            );
            for r in rows() {
                for (resolver, d) in r.k.resolvers.iter().zip(&r.dns) {
                    gauge(
                        out,
                        DNS_PRIVATELINK,
                        &r.labels(&[("resolver", resolver)]),
                        flag(d.privatelink),
                    );
                }
            }
        }
        header(
            out,
            REACH_VERDICT,
            "Reachability verdict per target, worst over its addresses (1 for the current verdict).",
            "gauge",
        );
        for r in rows() {
            states(out, REACH_VERDICT, Reach::ALL, r.reach, full, |v| {
                r.labels(&[("verdict", v.as_str())])
            });
        }
        header(
            out,
            TARGET_CAUSE,
            "Primary cause of an unhealthy target (1 for the current cause; `none` when healthy); `resolver`: the DNS path it was seen through.",
            "gauge",
        );
        for r in rows() {
            let resolver = r.cause_resolver.as_str();
            states(out, TARGET_CAUSE, Cause::ALL, r.cause, full, |c| {
                let mut extra = vec![("cause", c.as_str())];
                if !resolver.is_empty() {
                    extra.push(("resolver", resolver));
                }
                r.labels(&extra)
            });
        }
    }

    /// Durations, the HTTP status, certificate expiry, and the target's info.
    fn write_measurements(&self, out: &mut String) {
        let rows = || self.rows.values();
        header(
            out,
            DNS_LOOKUP_LAST,
            "Duration of the last DNS lookup (A and AAAA) of a target through one resolver.",
            "gauge",
        );
        for r in rows() {
            for (resolver, d) in r.k.resolvers.iter().zip(&r.dns) {
                if let Some(last) = d.last {
                    gauge(
                        out,
                        DNS_LOOKUP_LAST,
                        &[("resolver", resolver), ("target", &r.k.target)],
                        last,
                    );
                }
            }
        }
        header(
            out,
            PHASE_LAST,
            "Duration of the last round's TCP, TLS and HTTP phases (the slowest address).",
            "gauge",
        );
        for r in rows() {
            for (phase, last) in ConnectPhase::ALL.iter().zip(&r.last_phase) {
                if let Some(last) = last {
                    gauge(
                        out,
                        PHASE_LAST,
                        &[("phase", phase.as_str()), ("target", &r.k.target)],
                        *last,
                    );
                }
            }
        }
        if self.set == MetricSet::Full {
            self.write_histograms(out);
        }
        self.write_facts(out);
    }

    /// The per-phase latency histograms (`metrics: full`).
    fn write_histograms(&self, out: &mut String) {
        let rows = || self.rows.values();
        header(
            out,
            DNS_LOOKUP_DURATION,
            "Duration of a target's DNS lookup (A and AAAA) through one resolver.",
            "histogram",
        );
        for r in rows() {
            for (resolver, d) in r.k.resolvers.iter().zip(&r.dns) {
                histogram(
                    out,
                    DNS_LOOKUP_DURATION,
                    &[("resolver", resolver), ("target", &r.k.target)],
                    &d.lookup,
                );
            }
        }
        header(
            out,
            PHASE_DURATION,
            "Duration of the TCP, TLS and HTTP phases per address.",
            "histogram",
        );
        for r in rows() {
            for (phase, h) in ConnectPhase::ALL.iter().map(|p| p.as_str()).zip(&r.phases) {
                histogram(out, PHASE_DURATION, &[("phase", phase), ("target", &r.k.target)], h);
            }
        }
    }

    /// The HTTP status, certificate expiry, and the target's info.
    fn write_facts(&self, out: &mut String) {
        let rows = || self.rows.values();
        header(
            out,
            HTTP_STATUS_CODE,
            "HTTP status of the last probe (0: no HTTP response).",
            "gauge",
        );
        for r in rows() {
            gauge(
                out,
                HTTP_STATUS_CODE,
                &[("target", &r.k.target)],
                f64::from(r.http_status),
            );
        }
        if rows().any(|r| r.cert_expiry.is_some()) {
            header(
                out,
                TLS_CERT_EXPIRY,
                "notAfter of the endpoint's certificate (earliest over addresses), Unix seconds.",
                "gauge",
            );
            for r in rows() {
                if let Some(e) = r.cert_expiry {
                    gauge(out, TLS_CERT_EXPIRY, &[("target", &r.k.target)], e as f64);
                }
            }
        }
        header(out, TARGET_INFO, "Configured targets (always 1).", "gauge");
        for r in rows() {
            let labels = [
                ("expect", r.k.expect.as_str()),
                ("fqdn", &r.k.fqdn),
                ("port", &r.k.port),
                ("service", r.k.service),
                ("target", &r.k.target),
            ];
            gauge(out, TARGET_INFO, &labels, 1.0);
        }
    }
}

impl Row {
    /// The identifying labels (fqdn, service, target) with `extra` merged in
    /// name order.
    fn labels<'a>(&'a self, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut labels = vec![
            ("fqdn", self.k.fqdn.as_str()),
            ("service", self.k.service),
            ("target", self.k.target.as_str()),
        ];
        labels.extend_from_slice(extra);
        labels.sort_unstable_by_key(|(name, _)| *name);
        labels
    }
}

/// A state set: with `full`, every state (the current one 1, the others 0);
/// otherwise only the current state, once there is one.
fn states<'a, T: Copy + PartialEq + 'a>(
    out: &mut String,
    name: &str,
    all: &[T],
    current: Option<T>,
    full: bool,
    labels: impl Fn(T) -> Vec<(&'a str, &'a str)>,
) {
    for v in all.iter().copied().filter(|v| full || current == Some(*v)) {
        gauge(out, name, &labels(v), flag(current == Some(v)));
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape(help, false));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A gauge sample (no suffix, no extra label).
fn gauge(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    sample(out, name, "", labels, None, value);
}

/// 1 or 0.
fn flag(on: bool) -> f64 {
    f64::from(u8::from(on))
}

/// One sample; `labels` must be in name order (as the crate writes them),
/// `extra` (the bucket's `le`) goes last.
fn sample(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &[(&str, &str)],
    extra: Option<(&str, &str)>,
    value: f64,
) {
    debug_assert!(
        labels.windows(2).all(|w| w[0].0 < w[1].0),
        "labels out of order: {labels:?}"
    );
    out.push_str(name);
    out.push_str(suffix);
    let mut sep = '{';
    for (n, v) in labels.iter().copied().chain(extra) {
        out.push(sep);
        out.push_str(n);
        out.push_str("=\"");
        out.push_str(&escape(v, true));
        out.push('"');
        sep = ',';
    }
    if sep == ',' {
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

fn histogram(out: &mut String, name: &str, labels: &[(&str, &str)], h: &Hist) {
    let mut cumulative = 0u64;
    for (bound, n) in PHASE_BUCKETS.iter().zip(&h.buckets) {
        cumulative += n;
        sample(
            out,
            name,
            "_bucket",
            labels,
            Some(("le", &bound.to_string())),
            cumulative as f64,
        );
    }
    sample(out, name, "_bucket", labels, Some(("le", "+Inf")), h.count as f64);
    sample(out, name, "_sum", labels, None, h.sum);
    sample(out, name, "_count", labels, None, h.count as f64);
}

/// Escapes `\` and newlines (and `"` in label values), as the text format requires.
fn escape(v: &str, quote: bool) -> std::borrow::Cow<'_, str> {
    let special = v.contains(['\\', '\n']) || (quote && v.contains('"'));
    if !special {
        return v.into();
    }
    let mut s = String::with_capacity(v.len() + 8);
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '"' if quote => s.push_str("\\\""),
            _ => s.push(c),
        }
    }
    s.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_end_at_inf() {
        let mut h = Hist::default();
        for v in [0.0005, 0.003, 0.003, 20.0] {
            h.observe(v);
        }
        let mut out = String::new();
        histogram(&mut out, "x", &[("target", "a")], &h);
        assert!(out.contains("x_bucket{target=\"a\",le=\"0.001\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{target=\"a\",le=\"0.005\"} 3\n"), "{out}");
        assert!(out.contains("x_bucket{target=\"a\",le=\"10\"} 3\n"), "{out}");
        assert!(out.contains("x_bucket{target=\"a\",le=\"+Inf\"} 4\n"), "{out}");
        assert!(out.contains("x_count{target=\"a\"} 4\n"), "{out}");
        assert!(out.contains("x_sum{target=\"a\"} 20.0065\n"), "{out}");
    }

    fn known(target: &str, fqdn: &str) -> Known {
        Known {
            target: target.into(),
            fqdn: fqdn.into(),
            service: "acr",
            port: "443".into(),
            expect: Expect::Private,
            resolvers: vec!["system".into()],
        }
    }

    #[test]
    fn set_keeps_unchanged_rows_and_renews_changed_ones() {
        let mut t = Targets::default();
        t.set(
            vec![known("a", "a.azurecr.io"), known("b", "b.azurecr.io")],
            MetricSet::Full,
        );
        for name in ["a", "b"] {
            t.rows.get_mut(name).unwrap().healthy = true;
        }
        // `a` keeps its labels, `b` gets a new FQDN, `c` is new.
        t.set(
            vec![
                known("a", "a.azurecr.io"),
                known("b", "b2.azurecr.io"),
                known("c", "c.azurecr.io"),
            ],
            MetricSet::Full,
        );
        assert!(t.rows["a"].healthy, "an unchanged target keeps its state");
        assert!(!t.rows["b"].healthy, "a target whose labels changed starts afresh");
        assert_eq!(t.rows["b"].k.fqdn, "b2.azurecr.io");
        assert!(!t.rows["c"].healthy);
        t.set(vec![known("c", "c.azurecr.io")], MetricSet::Compact);
        assert_eq!(t.rows.keys().collect::<Vec<_>>(), ["c"]);
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        sample(&mut out, "x", "", &[("target", "a\"b\\c\nd")], None, 1.0);
        assert_eq!(out, "x{target=\"a\\\"b\\\\c\\nd\"} 1\n");
    }
}

#[cfg(test)]
mod same_as_the_crate {
    //! The hand-written families must read exactly as the `prometheus`
    //! crate's `TextEncoder` writes the same data.
    use super::*;
    use prometheus::{Encoder, HistogramOpts, HistogramVec, IntGaugeVec, Opts, Registry, TextEncoder};

    #[test]
    fn state_sets_and_histograms_match_the_crates_text() {
        let help_cause = "Likely cause of an unhealthy target (state set; `none` when healthy).";
        let help_phase = "Duration of the TCP, TLS and HTTP phases per address.";
        let r = Registry::new();
        let cause = IntGaugeVec::new(
            Opts::new(TARGET_CAUSE, help_cause),
            &["target", "fqdn", "service", "cause"],
        )
        .unwrap();
        r.register(Box::new(cause.clone())).unwrap();
        let phase = HistogramVec::new(
            HistogramOpts::new(PHASE_DURATION, help_phase).buckets(PHASE_BUCKETS.to_vec()),
            &["target", "phase"],
        )
        .unwrap();
        r.register(Box::new(phase.clone())).unwrap();
        let (t, f, s) = ("a\"b", "x.azurecr.io", "acr");
        for c in Cause::ALL {
            cause
                .with_label_values(&[t, f, s, c.as_str()])
                .set(i64::from(*c == Cause::TlsMismatch));
        }
        let mut ours = Hist::default();
        for v in [0.0004, 0.012, 0.3, 42.0] {
            phase.with_label_values(&[t, "tcp"]).observe(v);
            ours.observe(v);
        }
        let mut crate_text = Vec::new();
        TextEncoder::new().encode(&r.gather(), &mut crate_text).unwrap();
        let crate_text = String::from_utf8(crate_text).unwrap();

        let mut text = String::new();
        header(&mut text, TARGET_CAUSE, help_cause, "gauge");
        for c in Cause::ALL {
            let labels = [("cause", c.as_str()), ("fqdn", f), ("service", s), ("target", t)];
            sample(
                &mut text,
                TARGET_CAUSE,
                "",
                &labels,
                None,
                f64::from(u8::from(*c == Cause::TlsMismatch)),
            );
        }
        header(&mut text, PHASE_DURATION, help_phase, "histogram");
        histogram(&mut text, PHASE_DURATION, &[("phase", "tcp"), ("target", t)], &ours);

        let mut a: Vec<&str> = crate_text.lines().collect();
        let mut b: Vec<&str> = text.lines().collect();
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b, "crate:\n{crate_text}\nours:\n{text}");
    }
}
