//! The published JSON Schema of netprobe.yaml (docs/netprobe.schema.json,
//! which the chart's values.schema.json carries as `config`) against the
//! agent's own parser, with a real JSON Schema validator (Python's
//! `jsonschema`, in scripts/test's venv):
//! - every configuration the agent accepts among the project's examples
//!   (the fixtures, the fuzz seeds, the README's and the docs' YAML blocks,
//!   and each of them with one value changed) the schema accepts too: a
//!   schema that refused one would block a `helm install` the agent runs;
//! - of the invalid fixtures, the schema refuses those it can express.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// (name, YAML text) of every example configuration.
fn examples() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for dir in ["tests/testdata", "fuzz/seeds/config"] {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        entries.sort();
        for p in entries {
            let name = p.strip_prefix(root()).unwrap().display().to_string();
            out.push((name, std::fs::read_to_string(&p).unwrap()));
        }
    }
    // The kustomize base's example, as a user fills it in.
    let cm = std::fs::read_to_string(root().join("deploy/base/configmap.yaml")).unwrap();
    let cm: Value = serde_saphyr::from_str(&cm).unwrap();
    out.push((
        "deploy/base/configmap.yaml".into(),
        cm["data"]["netprobe.yaml"].as_str().unwrap().to_string(),
    ));
    for doc in ["README.md", "docs/configuration.md", "docs/install.md"] {
        let text = std::fs::read_to_string(root().join(doc)).unwrap();
        for (i, block) in text.split("```yaml\n").skip(1).enumerate() {
            let body = block.split("```").next().unwrap();
            // A Helm values file's `config`, or netprobe.yaml itself.
            let body = match serde_saphyr::from_str::<Value>(body) {
                Ok(v) if v.get("config").is_some() => serde_json::to_string(&v["config"]).unwrap(),
                _ => body.to_string(),
            };
            out.push((format!("{doc} yaml block {i}"), body));
        }
    }
    out
}

/// Each example, and variants with one scalar changed (every string value
/// upper-cased, then with a trailing dot or space): more inputs near the
/// edges of the patterns.
fn variants(doc: &Value) -> Vec<Value> {
    fn strings(v: &Value, path: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
        match v {
            Value::String(_) => out.push(path.clone()),
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    path.push(json!(i));
                    strings(x, path, out);
                    path.pop();
                }
            }
            Value::Object(o) => {
                for (k, x) in o {
                    path.push(json!(k));
                    strings(x, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut paths = Vec::new();
    strings(doc, &mut Vec::new(), &mut paths);
    let mut out = vec![doc.clone()];
    for path in paths {
        for change in [
            |s: &str| s.to_ascii_uppercase(),
            |s: &str| format!("{s}."),
            |s: &str| format!(" {s}"),
        ] {
            let mut d = doc.clone();
            let mut at = &mut d;
            for p in &path {
                at = match p {
                    Value::String(k) => &mut at[k.as_str()],
                    Value::Number(n) => &mut at[n.as_u64().unwrap() as usize],
                    _ => unreachable!(),
                };
            }
            let s = at.as_str().unwrap().to_string();
            *at = Value::String(change(&s));
            out.push(d);
        }
    }
    out
}

/// The schema's verdict on each document: true when it validates.
fn schema_accepts(docs: &[Value]) -> Vec<bool> {
    let python = root().join("target/tools-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: scripts/test installs it",
        python.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("docs.json");
    std::fs::write(&input, serde_json::to_string(docs).unwrap()).unwrap();
    let script = "import json, sys\n\
        from jsonschema import Draft7Validator\n\
        schema = json.load(open(sys.argv[1]))\n\
        Draft7Validator.check_schema(schema)\n\
        v = Draft7Validator(schema)\n\
        print(json.dumps([v.is_valid(d) for d in json.load(open(sys.argv[2]))]))\n";
    let out = Command::new(python)
        .args(["-c", script])
        .arg(root().join("docs/netprobe.schema.json"))
        .arg(&input)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn agent_accepts(doc: &Value, base: &Path) -> bool {
    netprobe::config::Config::from_yaml_with(
        &doc.to_string(),
        "example",
        Some(base),
        &netprobe::config::LoadOptions {
            allow_unresolved_auto: true,
            ..Default::default()
        },
    )
    .is_ok()
}

#[test]
fn the_schema_accepts_every_config_the_agent_accepts() {
    let base = root().join("tests/testdata");
    let mut docs = Vec::new();
    let mut names = Vec::new();
    let mut parsed = 0;
    for (name, text) in examples() {
        // The all-zero workspace id of some examples is for the user to fill in.
        let text = text.replace(
            "00000000-0000-0000-0000-000000000000",
            "1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d",
        );
        let Ok(doc) = serde_saphyr::from_str::<Value>(&text) else {
            continue;
        };
        if !doc.is_object() {
            continue;
        }
        parsed += 1;
        for (i, d) in variants(&doc).into_iter().enumerate() {
            if agent_accepts(&d, &base) {
                names.push(format!("{name} variant {i}"));
                docs.push(d);
            }
        }
    }
    assert!(parsed >= 6, "only {parsed} examples parsed");
    let examples: std::collections::BTreeSet<&str> =
        names.iter().map(|n| n.split(" variant").next().unwrap()).collect();
    assert!(
        examples.len() >= 5 && docs.len() >= 60,
        "only {} accepted configurations, from {examples:?}",
        docs.len()
    );
    let verdicts = schema_accepts(&docs);
    let refused: Vec<String> = names
        .iter()
        .zip(&docs)
        .zip(&verdicts)
        .filter(|(_, ok)| !**ok)
        .map(|((n, d), _)| format!("{n}: {d}"))
        .collect();
    assert!(
        refused.is_empty(),
        "the schema refuses configurations the agent accepts:\n{}",
        refused.join("\n")
    );
}

/// The invalid fixtures the schema can judge (a bad name, range, type or
/// key) it refuses; the rest need the agent (a file to read, a resolver a
/// key names, a duplicate), which `check-config -f` runs.
#[test]
fn the_schema_refuses_what_it_can_of_the_invalid_fixtures() {
    let mut docs = Vec::new();
    let mut names = Vec::new();
    for (name, text) in examples() {
        if !name.contains("invalid-") {
            continue;
        }
        if let Ok(doc) = serde_saphyr::from_str::<Value>(&text) {
            names.push(name);
            docs.push(doc);
        }
    }
    let verdicts = schema_accepts(&docs);
    let accepted: Vec<&str> = names
        .iter()
        .zip(&verdicts)
        .filter(|(_, ok)| **ok)
        .map(|(n, _)| n.rsplit('/').next().unwrap())
        .collect();
    // What only the agent can tell: files, references between keys,
    // duplicates, a region a section needs, host bits of a range.
    let agent_only = [
        "invalid-aml-extension-no-region.yaml",
        "invalid-cidr-host-bits.yaml",
        "invalid-connect-via.yaml",
        "invalid-duplicate-resolver.yaml",
        "invalid-duplicate-target.yaml",
        "invalid-extra-ca-missing.yaml",
        "invalid-extra-ca-not-pem.yaml",
        "invalid-no-targets.yaml",
        "invalid-resolver-both.yaml",
        "invalid-service-tags-missing.yaml",
        "invalid-service-tags-prefix.yaml",
        "invalid-workspace-without-region.yaml",
    ];
    assert_eq!(accepted, agent_only, "the invalid fixtures the schema accepts");
    assert!(docs.len() >= 30, "{}", docs.len());
}
