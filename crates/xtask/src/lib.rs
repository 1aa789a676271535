//! One source for each fact, and the files that repeat it, generated:
//!
//! - the version (the root `Cargo.toml`) into the chart's `version` and
//!   `appVersion`, the kustomize image tag and the Dockerfile's label;
//! - each per-target alert's cause filter, and the catch-all's, from the
//!   cause catalogue (`Cause::alert`);
//! - the alert rules' copies (`rules`: the PrometheusRule, the Azure Monitor
//!   ARM template, the chart's copy);
//! - the dashboard's copies (the chart's and the kustomize component's);
//! - the JSON Schema of netprobe.yaml (`netprobe::config::json_schema`),
//!   published for editors and carried by the chart's values.schema.json
//!   as `config`;
//! - the chart's README from values.yaml's comments (`chart_readme`).
//!
//! [`generate`] is pure: the repository's files in, every generated file's
//! wanted text out. `cargo run -p xtask -- gen` (`scripts/gen`) writes them;
//! a test fails on any stale one. `deploy/netprobe.yaml` is the kustomize
//! rendering of `deploy/` (its own test says how to regenerate it).

#![forbid(unsafe_code)]

pub mod chart_readme;
pub mod rules;

use std::path::Path;

use netprobe::model::Cause;

/// The dashboard, and its copies (a chart reads only its own files; a
/// kustomize component only files below it).
pub const DASHBOARD: &str = "dashboards/netprobe.json";
pub const DASHBOARD_COPIES: &[&str] = &[
    "deploy/helm/netprobe/files/netprobe.json",
    "deploy/components/grafana-dashboard/netprobe.json",
];

/// The files that carry the version, and how each line that does starts.
const VERSIONED: &[(&str, &[(&str, &str)])] = &[
    (
        "deploy/helm/netprobe/Chart.yaml",
        &[
            ("version: ", ""),
            ("appVersion: \"", "\""),
            ("      image: ghcr.io/netprobe/netprobe:", ""),
        ],
    ),
    ("deploy/components/image/kustomization.yaml", &[("    newTag: ", "")]),
    ("Dockerfile", &[("      org.opencontainers.image.version=\"", "\" \\")]),
];

/// The configuration's JSON Schema, for editors (a YAML language server's
/// `# yaml-language-server: $schema=` line names it).
pub const CONFIG_SCHEMA: &str = "docs/netprobe.schema.json";
/// The chart's values schema, whose `config` property is the configuration's.
pub const VALUES_SCHEMA: &str = "deploy/helm/netprobe/values.schema.json";
/// The chart's values and its README, generated from their comments.
pub const VALUES: &str = "deploy/helm/netprobe/values.yaml";
pub const CHART_README: &str = "deploy/helm/netprobe/README.md";

/// The catch-all alert's cause filter, as it stands in the rules file.
const CATCH_ALL: &str = "netprobe_target_cause{cause!~\"";

/// Every generated file: (path relative to `root`, wanted text).
pub fn generate(root: &Path) -> Result<Vec<(String, String)>, String> {
    let read = |p: &str| std::fs::read_to_string(root.join(p)).map_err(|e| format!("{p}: {e}"));
    let version = package_version(&read("Cargo.toml")?)?;
    let mut out = Vec::new();
    for (path, lines) in VERSIONED {
        out.push((path.to_string(), stamp(&read(path)?, lines, &version, path)?));
    }
    let rules = catch_all(&alert_filters(&read(rules::RULES)?)?)?;
    out.push((rules::RULES.to_string(), rules.clone()));
    for (path, text) in rules::generate(&rules)? {
        out.push((path.to_string(), text));
    }
    let schema = netprobe::config::json_schema();
    out.push((CONFIG_SCHEMA.to_string(), pretty(&schema)));
    out.push((
        VALUES_SCHEMA.to_string(),
        values_schema(&read(VALUES_SCHEMA)?, &schema)?,
    ));
    let values_schema = values_schema(&read(VALUES_SCHEMA)?, &schema)?;
    let parsed: serde_json::Value =
        serde_json::from_str(&values_schema).map_err(|e| format!("{VALUES_SCHEMA}: {e}"))?;
    out.push((
        CHART_README.to_string(),
        chart_readme::readme(&read(VALUES)?, &parsed, &version)?,
    ));
    let dashboard = read(DASHBOARD)?;
    for copy in DASHBOARD_COPIES {
        out.push((copy.to_string(), dashboard.clone()));
    }
    Ok(out)
}

fn pretty(v: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("a JSON value prints");
    s.push('\n');
    s
}

/// The chart's values schema with `config` set to the configuration's
/// schema (without its `$schema` and `title`, which a sub-schema has not).
pub fn values_schema(values: &str, config: &serde_json::Value) -> Result<String, String> {
    let mut doc: serde_json::Value = serde_json::from_str(values).map_err(|e| format!("{VALUES_SCHEMA}: {e}"))?;
    let mut config = config.clone();
    if let Some(o) = config.as_object_mut() {
        o.remove("$schema");
        o.remove("title");
        o.insert(
            "description".into(),
            "netprobe.yaml (docs/configuration.md), checked at install by its schema (docs/netprobe.schema.json, generated from the config types)".into(),
        );
    }
    let props = doc
        .get_mut("properties")
        .and_then(|p| p.as_object_mut())
        .ok_or_else(|| format!("{VALUES_SCHEMA}: no `properties`"))?;
    props.insert("config".into(), config);
    Ok(pretty(&doc))
}

/// The generated files whose text differs from what is on disk.
pub fn stale(root: &Path) -> Result<Vec<String>, String> {
    Ok(generate(root)?
        .into_iter()
        .filter(|(path, want)| std::fs::read_to_string(root.join(path)).ok().as_ref() != Some(want))
        .map(|(path, _)| path)
        .collect())
}

/// `version = "…"` of the `[package]` table.
pub fn package_version(manifest: &str) -> Result<String, String> {
    let package = manifest
        .split("\n[")
        .find(|t| t.starts_with("[package]") || t.starts_with("package]"))
        .ok_or("Cargo.toml: no [package] table")?;
    package
        .lines()
        .find_map(|l| l.strip_prefix("version = \"")?.strip_suffix('"'))
        .map(str::to_string)
        .ok_or_else(|| "Cargo.toml: [package] has no version".to_string())
}

/// `text` with each line that starts with one of `lines`' prefixes set to
/// `prefix + version + suffix`; every prefix must be found.
fn stamp(text: &str, lines: &[(&str, &str)], version: &str, path: &str) -> Result<String, String> {
    let mut found = vec![false; lines.len()];
    let out: Vec<String> = text
        .split('\n')
        .map(|line| {
            for (i, (prefix, suffix)) in lines.iter().enumerate() {
                if line.starts_with(prefix) {
                    found[i] = true;
                    return format!("{prefix}{version}{suffix}");
                }
            }
            line.to_string()
        })
        .collect();
    match found.iter().position(|f| !f) {
        Some(i) => Err(format!("{path}: no line starts with {:?}", lines[i].0)),
        None => Ok(out.join("\n")),
    }
}

/// The causes no specific alert covers are the catch-all's: its filter
/// excludes `none` and every cause with an alert of its own.
pub fn catch_all_filter() -> String {
    std::iter::once("none")
        .chain(Cause::ALL.iter().filter(|c| c.alert().is_some()).map(|c| c.as_str()))
        .collect::<Vec<_>>()
        .join("|")
}

/// Alerts that take another alert's causes (for another service).
const SAME_CAUSES: &[(&str, &str)] = &[("NetprobeRegistryEgressBlocked", "NetprobePrivateEndpointUnreachable")];

/// The causes an alert selects: those whose catalogue entry names it.
pub fn alert_causes(alert: &str) -> String {
    let alert = SAME_CAUSES
        .iter()
        .find(|(a, _)| *a == alert)
        .map_or(alert, |(_, same)| same);
    Cause::ALL
        .iter()
        .filter(|c| c.alert() == Some(alert))
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join("|")
}

/// The marker of a per-target alert's cause filter.
const CAUSE_FILTER: &str = "cause=~\"";

/// The rules text with each per-target alert's cause filter (`cause=~"…"`
/// in the rule after `- alert: <name>`) generated from the catalogue: the
/// filters are disjoint, so a target raises one of them at most.
fn alert_filters(rules: &str) -> Result<String, String> {
    let mut alert = None;
    let mut out = Vec::new();
    for line in rules.split('\n') {
        if let Some(name) = line.trim_start().strip_prefix("- alert: ") {
            alert = Some(name.trim().to_string());
        }
        let Some(start) = line.find(CAUSE_FILTER).map(|i| i + CAUSE_FILTER.len()) else {
            out.push(line.to_string());
            continue;
        };
        let name = alert
            .as_deref()
            .ok_or_else(|| format!("{}: a cause filter outside an alert", rules::RULES))?;
        let causes = alert_causes(name);
        if causes.is_empty() {
            return Err(format!(
                "{}: {name} filters causes, but no cause names it",
                rules::RULES
            ));
        }
        let end = start
            + line[start..]
                .find('"')
                .ok_or_else(|| format!("{}: {name}'s cause filter is not closed", rules::RULES))?;
        out.push(format!("{}{causes}{}", &line[..start], &line[end..]));
    }
    Ok(out.join("\n"))
}

/// The rules text with the catch-all's cause filter generated.
fn catch_all(rules: &str) -> Result<String, String> {
    let start = rules
        .find(CATCH_ALL)
        .ok_or_else(|| format!("{}: no catch-all filter `{CATCH_ALL}`", rules::RULES))?
        + CATCH_ALL.len();
    let end = start
        + rules[start..]
            .find('"')
            .ok_or_else(|| format!("{}: the catch-all filter is not closed", rules::RULES))?;
    Ok(format!("{}{}{}", &rules[..start], catch_all_filter(), &rules[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_read_from_the_package_table_only() {
        let manifest = "[workspace]\nversion = \"9\"\n\n[package]\nname = \"x\"\nversion = \"1.2.3\"\n\n[dependencies]\nversion = \"4\"\n";
        assert_eq!(package_version(manifest).as_deref(), Ok("1.2.3"));
        assert!(package_version("[dependencies]\n").is_err());
    }

    #[test]
    fn stamping_replaces_every_named_line_and_fails_on_a_missing_one() {
        let lines: &[(&str, &str)] = &[("version: ", ""), ("appVersion: \"", "\"")];
        let got = stamp("a: 1\nversion: 0.0.1\nappVersion: \"0.0.1\"\n", lines, "2.0.0", "C").unwrap();
        assert_eq!(got, "a: 1\nversion: 2.0.0\nappVersion: \"2.0.0\"\n");
        assert!(
            stamp("version: 1\n", lines, "2", "C")
                .unwrap_err()
                .contains("appVersion")
        );
    }

    #[test]
    fn the_catch_all_excludes_exactly_the_causes_with_an_alert() {
        let filter = catch_all_filter();
        let listed: Vec<&str> = filter.split('|').collect();
        assert_eq!(listed[0], "none");
        for c in Cause::ALL {
            let excluded = listed.contains(&c.as_str());
            assert_eq!(excluded, *c == Cause::None || c.alert().is_some(), "{}", c.as_str());
        }
        let rules = format!("x\n  ({CATCH_ALL}old|list\"}} == 1)\ny\n");
        assert_eq!(
            catch_all(&rules).unwrap(),
            format!("x\n  ({CATCH_ALL}{filter}\"}} == 1)\ny\n")
        );
    }
}
