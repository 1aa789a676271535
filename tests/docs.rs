//! The README's reference tables against the code: every cause code has a
//! row in the cause table, every metric a row in the metrics table, and no
//! row names something the code does not have.

use std::collections::BTreeSet;

use netprobe::model::Cause;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

/// The first-column codes of the table that follows `heading`.
fn table_codes(text: &str, heading: &str) -> BTreeSet<String> {
    let start = text
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?} in README.md"));
    text[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            let cell = l.split('|').nth(1)?.trim();
            Some(cell.strip_prefix('`')?.split('`').next()?.to_string())
        })
        .collect()
}

#[test]
fn the_cause_table_lists_every_cause() {
    let documented = table_codes(&readme(), "### Causes");
    let known: BTreeSet<String> = Cause::ALL
        .iter()
        .filter(|c| **c != Cause::None)
        .map(|c| c.as_str().to_string())
        .collect();
    assert_eq!(documented, known, "README.md's cause table and model::Cause differ");
}

/// The README's cause table is the catalogue (`catalogue.rs`), row by row.
#[test]
fn the_cause_table_is_the_catalogue() {
    let text = readme();
    for c in Cause::ALL.iter().filter(|c| **c != Cause::None) {
        let (_, when, fix) = c.catalogue();
        let row = format!("| `{c}` | {when} | {fix} |");
        assert!(text.contains(&row), "README.md lacks the row\n{row}");
    }
}

/// Every cause has a place in the runbook.
#[test]
fn the_runbook_names_every_cause() {
    let runbook = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/runbook.md")).unwrap();
    let missing: Vec<&str> = Cause::ALL
        .iter()
        .filter(|c| **c != Cause::None && !runbook.contains(&format!("`{c}`")))
        .map(|c| c.as_str())
        .collect();
    assert!(missing.is_empty(), "causes docs/runbook.md does not name: {missing:?}");
}

#[test]
fn the_metrics_table_lists_every_metric() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md")).unwrap();
    let documented = table_codes(&text, "| metric | type | labels | meaning |");
    let metrics = netprobe::metrics::Metrics::new().unwrap();
    let exposed: BTreeSet<String> = metrics
        .encode()
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("netprobe_"))
        .map(String::from)
        .collect();
    let missing: Vec<&String> = exposed.difference(&documented).collect();
    assert!(missing.is_empty(), "metrics without a README row: {missing:?}");
    let stale: Vec<&String> = documented
        .iter()
        .filter(|d| !exposed.contains(*d) && !metric_appears_later(d))
        .collect();
    assert!(
        stale.is_empty(),
        "README rows for metrics the agent does not expose: {stale:?}"
    );
}

/// Metrics that exist only once there is something to say (a node, a
/// scoring service, an Event, a target, a round, a service tags file).
fn metric_appears_later(name: &str) -> bool {
    [
        "netprobe_target_",
        "netprobe_dns_",
        "netprobe_reach_",
        "netprobe_phase_",
        "netprobe_http_",
        "netprobe_tls_",
        "netprobe_node_info",
        "netprobe_scoring_service_",
        "netprobe_events_total",
        "netprobe_resolver_up",
        "netprobe_resolver_info",
        "netprobe_service_tags_",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

/// Every alert of the rules file has its runbook section, and its
/// runbook_url points at it.
#[test]
fn the_runbook_has_a_section_per_alert() {
    let runbook = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/runbook.md")).unwrap();
    let rules = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/prometheus/netprobe-rules.yaml"
    ))
    .unwrap();
    let rules: serde_json::Value = serde_saphyr::from_str(&rules).unwrap();
    let mut missing = Vec::new();
    for group in rules["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let Some(alert) = rule["alert"].as_str() else { continue };
            if !runbook.contains(&format!("\n## {alert}\n")) {
                missing.push(alert.to_string());
            }
            let url = rule["annotations"]["runbook_url"].as_str().unwrap_or("");
            assert!(
                url.ends_with(&format!("docs/runbook.md#{}", alert.to_lowercase())),
                "{alert}: runbook_url {url}"
            );
        }
    }
    assert!(missing.is_empty(), "alerts without a runbook section: {missing:?}");
}

/// The first ```yaml block after `heading` in `text`.
fn yaml_block<'a>(text: &'a str, heading: &str) -> &'a str {
    let after = &text[text.find(heading).unwrap_or_else(|| panic!("no {heading:?}"))..];
    let start = after.find("```yaml\n").expect("a yaml block") + "```yaml\n".len();
    let len = after[start..].find("```").unwrap();
    &after[start..start + len]
}

/// The README's example configuration is valid, and derives the targets it
/// promises; docs/configuration.md's full example too.
#[test]
fn the_example_configs_are_valid() {
    let readme = readme();
    let cfg = netprobe::config::Config::from_yaml(yaml_block(&readme, "## Configure"), "README.md", None)
        .unwrap_or_else(|e| panic!("{e}"));
    // workspace api, cert, notebooks; blob, file; the vault; the registry and its data endpoint.
    assert_eq!(cfg.targets.len(), 8);
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    // Any valid PEM certificate stands in for the proxy's CA.
    let pem = netprobe_sim::pki::Ca::new("docs test CA")
        .unwrap()
        .cert_pem()
        .to_string();
    std::fs::write(&ca, pem).unwrap();
    let tags = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/testdata/service-tags/ServiceTags_Public_20261102.json"
    );
    let full = yaml_block(&doc, "# Configuration")
        .replace("/etc/netprobe/ca.pem", ca.to_str().unwrap())
        .replace("/etc/netprobe/service-tags/service-tags.json", tags);
    let cfg =
        netprobe::config::Config::from_yaml(&full, "docs/configuration.md", None).unwrap_or_else(|e| panic!("{e}"));
    assert!(cfg.targets.len() > 8, "{}", cfg.targets.len());
    assert!(cfg.service_tags.is_some());
    assert!(cfg.targets.iter().any(|t| t.name == "egress-mcr-data"));
    assert!(
        cfg.targets
            .iter()
            .any(|t| t.name == "acr-mlwspublicacr" && t.expect == netprobe::model::Expect::Public)
    );
}

/// Every relative link of the README and docs/ points at a file that exists.
#[test]
fn relative_links_resolve() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    for e in std::fs::read_dir(root.join("docs")).unwrap() {
        files.push(e.unwrap().path());
    }
    let mut broken = Vec::new();
    for f in files.iter().filter(|f| f.extension().is_some_and(|x| x == "md")) {
        let text = std::fs::read_to_string(f).unwrap();
        for part in text.split("](").skip(1) {
            let target = part.split(')').next().unwrap_or("");
            let path = target.split('#').next().unwrap_or("");
            if path.is_empty() || path.contains("://") || path.contains(' ') {
                continue;
            }
            if !f.parent().unwrap().join(path).exists() {
                broken.push(format!("{}: {target}", f.strip_prefix(root).unwrap().display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links: {broken:#?}");
}

/// The defaults and ranges the configuration page shows are the code's
/// constants (one source: `config`).
#[test]
fn the_documented_defaults_are_the_codes() {
    use netprobe::config as c;
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md")).unwrap();
    let line = |key: &str| {
        page.lines()
            .find(|l| l.starts_with(&format!("{key}: ")))
            .unwrap_or_else(|| panic!("docs/configuration.md has no `{key}:` line"))
            .to_string()
    };
    let shown = |d: std::time::Duration| humantime::format_duration(d).to_string();
    for (key, default, ((_, min), (_, max))) in [
        ("timeout", c::DEFAULT_TIMEOUT, c::TIMEOUT_LIMITS),
        ("interval", c::DEFAULT_INTERVAL, c::INTERVAL_LIMITS),
    ] {
        let l = line(key);
        assert!(
            l.contains(&format!("({min}..{max}, default {})", shown(default))),
            "{l}"
        );
    }
    assert!(line("concurrency").contains(&format!("(default {})", c::DEFAULT_CONCURRENCY)));
    assert!(line("listen").starts_with(&format!("listen: {}", c::DEFAULT_LISTEN)));
}
