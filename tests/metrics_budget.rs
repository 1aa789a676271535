//! The series budget: how many series each target costs in each metric set,
//! counted on a real round over the simulated VNet (healthy targets and every
//! kind of failure), with two and three resolvers. Fails above the budget,
//! and when docs/metrics.md's sizing table says something else.

mod common;

use std::collections::BTreeMap;

use netprobe::config::Config;
use netprobe::demo::{DemoVnet, demo_yaml};
use netprobe::metrics::Metrics;
use netprobe::model::MetricSet;
use netprobe::report::RoundReport;
use netprobe::service::Target;

/// The budget of the default set, per target with two resolvers.
const COMPACT_BUDGET: usize = 16;
/// What `metrics: full` may cost per target with two resolvers.
const FULL_BUDGET: usize = 150;
/// Targets the default configuration (deploy/base/configmap.yaml) derives
/// (`tests/deploy.rs` checks it).
const DEFAULT_TARGETS: usize = 8;
/// Samples per series in 30 days at a 30 s scrape interval.
const SAMPLES_PER_MONTH: usize = 30 * 24 * 60 * 2;

/// Series per target name, and the series without a `target` label.
fn count(targets: &[Target], report: &RoundReport, set: MetricSet) -> (BTreeMap<String, usize>, usize) {
    let m = Metrics::new().unwrap();
    let resolvers: Vec<String> = report.resolvers.iter().map(|r| r.name.clone()).collect();
    m.set_targets(targets, &resolvers, 30.0, set);
    m.observe_round(report, 1.8e9);
    m.observe_cluster(report);
    let text = m.encode();
    let mut per_target = BTreeMap::new();
    let mut other = 0;
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        match line.split_once("target=\"") {
            Some((_, rest)) => {
                let name = rest.split('"').next().unwrap().to_string();
                *per_target.entry(name).or_insert(0) += 1;
            }
            None => other += 1,
        }
    }
    assert_eq!(
        per_target.len(),
        report.targets.len(),
        "every target has series:\n{text}"
    );
    (per_target, other)
}

/// The demo's configuration with `resolvers` resolvers (2 or 3).
fn demo_config(vnet: &DemoVnet, resolvers: usize) -> Config {
    let mut yaml = demo_yaml(vnet.azure_dns.addr(), vnet.custom_dns.addr());
    if resolvers == 3 {
        let third = format!(
            "  - name: node\n    servers: [\"{}\"]\nconnect_via:",
            vnet.custom_dns.addr()
        );
        yaml = yaml.replacen("connect_via:", &third, 1);
    }
    let mut config = Config::from_yaml(&yaml, "<demo>", None).unwrap();
    for t in &mut config.targets {
        t.port = vnet.port;
    }
    assert_eq!(config.resolvers.len(), resolvers);
    config
}

/// One measured row of the sizing table.
struct Sizing {
    set: MetricSet,
    resolvers: usize,
    per_target: usize,
    per_node_other: usize,
}

impl Sizing {
    fn row(&self) -> String {
        let node = self.per_node_other + DEFAULT_TARGETS * self.per_target;
        let fleet = 100 * node;
        format!(
            "| `{}` | {} | {} | {} | {} | {} | {:.1} billion |",
            self.set,
            self.resolvers,
            self.per_target,
            thousands(node),
            thousands(fleet),
            thousands(node * SAMPLES_PER_MONTH),
            (fleet * SAMPLES_PER_MONTH) as f64 / 1e9
        )
    }
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_per_target_stay_within_the_budget_in_each_set() {
    let vnet = DemoVnet::start().await.unwrap();
    let mut sizing = Vec::new();
    for resolvers in [2, 3] {
        let config = demo_config(&vnet, resolvers);
        let targets = config.targets.clone();
        let report = common::round(config, vnet.tls().unwrap()).await;
        assert!(
            report.targets.iter().any(|t| t.healthy) && report.targets.iter().any(|t| !t.healthy),
            "the round must hold healthy and failing targets"
        );
        let (compact, compact_other) = count(&targets, &report, MetricSet::Compact);
        let (full, full_other) = count(&targets, &report, MetricSet::Full);
        println!("{resolvers} resolvers:\n| target | cause | compact | full |\n|---|---|---:|---:|");
        for t in &report.targets {
            println!(
                "| {} | {} | {} | {} |",
                t.name, t.cause, compact[&t.name], full[&t.name]
            );
        }
        for (name, n) in &compact {
            assert!(
                full[name] > *n,
                "{name}: the full set adds series ({} vs {n})",
                full[name]
            );
        }
        if resolvers == 2 {
            let over: Vec<_> = compact.iter().filter(|(_, n)| **n > COMPACT_BUDGET).collect();
            assert!(
                over.is_empty(),
                "compact set over {COMPACT_BUDGET} series per target: {over:?}"
            );
            let over: Vec<_> = full.iter().filter(|(_, n)| **n > FULL_BUDGET).collect();
            assert!(
                over.is_empty(),
                "full set over {FULL_BUDGET} series per target: {over:?}"
            );
        }
        let max = |m: &BTreeMap<String, usize>| m.values().copied().max().unwrap();
        sizing.push(Sizing {
            set: MetricSet::Compact,
            resolvers,
            per_target: max(&compact),
            per_node_other: compact_other,
        });
        sizing.push(Sizing {
            set: MetricSet::Full,
            resolvers,
            per_target: max(&full),
            per_node_other: full_other,
        });
    }
    let rows: Vec<String> = sizing.iter().map(Sizing::row).collect();
    println!("\n{}", rows.join("\n"));
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md")).unwrap();
    let missing: Vec<&String> = rows.iter().filter(|r| !doc.contains(r.as_str())).collect();
    assert!(
        missing.is_empty(),
        "docs/metrics.md's sizing table differs from the measurement; its rows should read:\n{}",
        rows.join("\n")
    );
}
