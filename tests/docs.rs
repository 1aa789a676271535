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
/// scoring service, an Event, a target, a round).
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
