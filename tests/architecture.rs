//! The library's shape, checked: no import cycle among its top-level modules
//! (the redesign removed `cluster -> config -> probe -> report -> verdict`),
//! and no function over 100 lines outside tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Each file's text before its `#[cfg(test)]` module.
fn product_code(root: &str) -> Vec<(PathBuf, String)> {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join(root);
    let mut files = Vec::new();
    sources(&base, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("").to_string();
            (p.strip_prefix(&base).unwrap().to_path_buf(), code)
        })
        .collect()
}

/// Module -> the modules its code names as `crate::x`.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, code) in product_code("src") {
        let first = path.iter().next().unwrap().to_string_lossy().to_string();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let edges = graph.entry(module.clone()).or_default();
        let mut rest = code.as_str();
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() && name != module {
                edges.insert(name);
            }
            // `use crate::{a, b::c}`
            if rest.starts_with('{') {
                let group = &rest[1..rest.find('}').unwrap_or(1)];
                for part in group.split(',') {
                    let name = part.trim().split("::").next().unwrap_or("").to_string();
                    if !name.is_empty() && name != module && name != "self" {
                        edges.insert(name);
                    }
                }
            }
        }
    }
    graph
}

/// A cycle through `start`, if there is one.
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    fn walk(
        graph: &BTreeMap<String, BTreeSet<String>>,
        node: &str,
        start: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in graph.get(node).into_iter().flatten() {
            if next == start {
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(graph, next, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    let mut seen = BTreeSet::new();
    walk(graph, start, start, &mut path, &mut seen).then_some(path)
}

#[test]
fn the_library_has_no_import_cycle() {
    let graph = module_graph();
    assert!(graph.len() > 10, "too few modules found: {graph:?}");
    assert!(graph["judge"].contains("verdict"), "the scan finds edges: {graph:?}");
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|m| cycle_from(&graph, m))
        .map(|c| c.join(" -> "))
        .collect();
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

/// The engine observes, the judge decides: nothing under `probe/` (nor the
/// cluster reader) may name the judgement or the report, so a new input to
/// diagnosis touches an observation and the judge, never the engine.
#[test]
fn the_probe_observes_and_never_judges() {
    let graph = module_graph();
    for observer in ["probe", "observation"] {
        let judged: Vec<&String> = graph[observer]
            .iter()
            .filter(|m| ["verdict", "report", "judge", "render", "catalogue"].contains(&m.as_str()))
            .collect();
        assert!(
            judged.is_empty(),
            "`{observer}` imports {judged:?}: it must only observe"
        );
    }
    assert!(
        graph["round"].contains("judge"),
        "the round owner hands observations to the judge"
    );
}

#[test]
fn no_function_outside_tests_is_over_100_lines() {
    let mut long = Vec::new();
    for root in ["src", "crates/netprobe-sim/src"] {
        for (path, code) in product_code(root) {
            let lines: Vec<&str> = code.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                let trimmed = line.trim_start();
                let indent = &line[..line.len() - trimmed.len()];
                let is_fn = [
                    "fn ",
                    "pub fn ",
                    "async fn ",
                    "pub async fn ",
                    "pub(crate) fn ",
                    "pub(super) fn ",
                ]
                .iter()
                .any(|p| trimmed.starts_with(p));
                if !is_fn || trimmed.ends_with(';') {
                    continue;
                }
                let close = format!("{indent}}}");
                let end = lines[i..].iter().position(|l| *l == close).map(|n| i + n);
                if let Some(end) = end
                    && end - i > 100
                {
                    long.push(format!("{root}/{}:{} ({} lines)", path.display(), i + 1, end - i));
                }
            }
        }
    }
    assert!(long.is_empty(), "functions over 100 lines:\n{}", long.join("\n"));
}

/// `cargo fmt --check` in CI covers only the files rustfmt reaches through
/// `mod` declarations: a module declared inside a macro (as the service
/// registry once declared the service modules) is silently skipped. Every
/// `.rs` file of the repository must be one rustfmt visits.
#[test]
fn rustfmt_visits_every_source_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut visited = BTreeSet::new();
    for manifest in ["Cargo.toml", "fuzz/Cargo.toml"] {
        let out = std::process::Command::new("cargo")
            .args([
                "fmt",
                "--all",
                "--manifest-path",
                manifest,
                "--",
                "--check",
                "--verbose",
            ])
            .current_dir(root)
            .output()
            .expect("cargo fmt runs");
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        for line in text.lines() {
            if let Some(path) = line.strip_prefix("Formatting ") {
                visited.insert(PathBuf::from(path.trim()));
            }
        }
    }
    let mut all = Vec::new();
    for dir in ["src", "crates", "tests", "benches", "fuzz/fuzz_targets"] {
        sources(&root.join(dir), &mut all);
    }
    assert!(all.len() > 50, "too few sources found: {}", all.len());
    let skipped: Vec<String> = all
        .iter()
        .filter(|p| !visited.contains(*p))
        .map(|p| p.strip_prefix(root).unwrap().display().to_string())
        .collect();
    assert!(skipped.is_empty(), "rustfmt never visits: {skipped:?}");
}
