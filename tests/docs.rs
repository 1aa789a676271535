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
    let mut files = vec![root.join("README.md"), root.join("deploy/helm/netprobe/README.md")];
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

/// The shell blocks of the README and docs/, each with the file and line it
/// starts at (continued lines joined).
fn command_blocks() -> Vec<(String, usize, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<_> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files.push(root.join("deploy/helm/netprobe/README.md"));
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let mut block: Option<(usize, String)> = None;
        for (i, line) in text.lines().enumerate() {
            match (&mut block, line.trim_start()) {
                (None, l) if l.starts_with("```sh") || l.starts_with("```bash") => block = Some((i + 2, String::new())),
                (Some(_), l) if l.starts_with("```") => {
                    let (at, body) = block.take().unwrap();
                    out.push((f.display().to_string(), at, body.replace("\\\n", " ")));
                }
                (Some((_, body)), l) => {
                    body.push_str(l);
                    body.push('\n');
                }
                (None, _) => {}
            }
        }
    }
    out
}

/// Commands that look right and fail when pasted, each found once by a
/// newcomer (issue 28): none may come back into the README or docs/.
#[test]
fn command_blocks_avoid_known_traps() {
    let blocks = command_blocks();
    assert!(blocks.len() > 10, "too few shell blocks found: {}", blocks.len());
    type Trap = (&'static str, fn(&str, &str) -> bool);
    let traps: &[Trap] = &[
        (
            "`kubectl wait` with two --for waits for the last condition only (a healthy Job times out)",
            |line, _| line.contains("kubectl") && line.contains(" wait ") && line.matches("--for").count() > 1,
        ),
        (
            "--set namespace.create=true with --create-namespace fails with \"invalid ownership metadata\"",
            |line, block| {
                line.contains("namespace.create=true")
                    && !line.trim_start().starts_with('#')
                    && block.contains("--create-namespace")
            },
        ),
        (
            "`exec ds/netprobe` lands on an arbitrary node, not the one asked about",
            |line, _| line.contains("exec") && line.contains("ds/netprobe") && !line.trim_start().starts_with('#'),
        ),
        (
            "`port-forward ... && <next>` never reaches the next command (port-forward runs until stopped)",
            |line, _| line.contains("port-forward") && line.contains("&&"),
        ),
    ];
    let mut found = Vec::new();
    for (file, at, block) in &blocks {
        for line in block.lines() {
            for (why, hit) in traps {
                if hit(line, block) {
                    found.push(format!("{file} (block at line {at}): {line}\n    {why}"));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "commands that fail when pasted:\n{}",
        found.join("\n")
    );
}

/// Every shell block parses (`bash -n`), with its `<placeholders>` filled:
/// a quote or a continuation gone wrong fails here, not in a terminal.
#[test]
fn command_blocks_parse_as_shell() {
    let mut bad = Vec::new();
    for (file, at, block) in command_blocks() {
        let mut filled = String::new();
        let mut rest = block.as_str();
        // `<node>`, `<a netprobe pod>`: a placeholder, not a redirection.
        while let Some(open) = rest.find('<') {
            let close = rest[open..].find('>').map(|c| open + c);
            match close {
                Some(c)
                    if rest[open + 1..c]
                        .chars()
                        .next()
                        .is_some_and(|ch| ch.is_ascii_alphabetic())
                        && !rest[open + 1..c].contains('\n') =>
                {
                    filled.push_str(&rest[..open]);
                    filled.push_str("PLACEHOLDER");
                    rest = &rest[c + 1..];
                }
                _ => {
                    filled.push_str(&rest[..=open]);
                    rest = &rest[open + 1..];
                }
            }
        }
        filled.push_str(rest);
        let out = std::process::Command::new("bash")
            .args(["-n", "-c", &filled])
            .output()
            .unwrap();
        if !out.status.success() {
            bad.push(format!(
                "{file} (block at line {at}): {}\n{filled}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(bad.is_empty(), "shell blocks that do not parse:\n{}", bad.join("\n"));
}
