//! The chart's README (deploy/helm/netprobe/README.md), generated from
//! values.yaml the way helm-docs does: every value, its default and the
//! comment above it, in the file's order. A key is a row unless the values
//! schema gives it known properties (then its keys are rows, and its
//! comment opens the first of them).

use serde_json::Value;

/// One key of values.yaml, as written: its path and the comment above it.
#[derive(Debug, PartialEq, Eq)]
pub struct Key {
    pub path: Vec<String>,
    pub comment: String,
}

/// The mapping keys of a values file in order, with the comment lines
/// right above each (keys inside list items are part of the list's value).
pub fn keys(values: &str) -> Vec<Key> {
    let mut out = Vec::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut comment: Vec<String> = Vec::new();
    let mut list_at: Option<usize> = None;
    for line in values.lines() {
        let text = line.trim_start();
        let indent = line.len() - text.len();
        if text.is_empty() {
            comment.clear();
            continue;
        }
        if let Some(c) = text.strip_prefix('#') {
            comment.push(c.trim().to_string());
            continue;
        }
        // Inside a list item: its keys belong to the list's value.
        if let Some(at) = list_at {
            if indent > at || (indent == at && text.starts_with("- ")) {
                comment.clear();
                continue;
            }
            list_at = None;
        }
        if text.starts_with("- ") {
            list_at = Some(indent);
            comment.clear();
            continue;
        }
        let Some((key, _)) = text.split_once(':') else {
            comment.clear();
            continue;
        };
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        let mut path: Vec<String> = stack.iter().map(|(_, k)| k.clone()).collect();
        path.push(key.trim().trim_matches('"').to_string());
        out.push(Key {
            path,
            comment: comment.join(" "),
        });
        comment.clear();
        stack.push((indent, key.trim().trim_matches('"').to_string()));
    }
    out
}

fn at<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

/// The schema of a values path (through `properties`).
fn schema_at<'a>(schema: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter()
        .try_fold(schema, |s, k| s.get("properties").and_then(|p| p.get(k)))
}

/// The README's text.
pub fn readme(values_text: &str, schema: &Value, version: &str) -> Result<String, String> {
    let values: Value = serde_saphyr::from_str(values_text).map_err(|e| format!("values.yaml: {e}"))?;
    let mut rows = Vec::new();
    let mut pending = String::new();
    for k in keys(values_text) {
        let group = schema_at(schema, &k.path).is_some_and(|s| s.get("properties").is_some());
        if group {
            // Its comment opens its first row.
            if !k.comment.is_empty() {
                pending = k.comment.clone();
            }
            continue;
        }
        // A key inside a documented-as-a-whole value (an open map, a list) is not a row.
        let parent_is_leaf = k.path.len() > 1
            && schema_at(schema, &k.path[..k.path.len() - 1]).is_none_or(|s| s.get("properties").is_none());
        if parent_is_leaf {
            continue;
        }
        let default = at(&values, &k.path).ok_or_else(|| format!("values.yaml: no value at {}", k.path.join(".")))?;
        let description = match (k.comment.is_empty(), pending.is_empty()) {
            (false, true) => k.comment.clone(),
            (false, false) => format!("{} {}", std::mem::take(&mut pending), k.comment),
            (true, _) => std::mem::take(&mut pending),
        };
        rows.push(format!(
            "| `{}` | `{}` | {} |",
            k.path.join("."),
            default.to_string().replace('|', "\\|"),
            description.replace('|', "\\|")
        ));
    }
    Ok(format!(
        "# netprobe Helm chart\n\n\
         <!-- Generated from values.yaml by scripts/gen (crates/xtask); edit values.yaml's comments, not this file. -->\n\n\
         Version {version}. A per-node agent that proves an AKS node reaches an Azure Machine Learning\n\
         workspace and its Storage, Key Vault and Container Registry privately (DNS through the private zones,\n\
         TCP, TLS and HTTP to the private endpoints), with Prometheus metrics, alert rules and a dashboard.\n\n\
         ```sh\n\
         helm install netprobe oci://ghcr.io/netprobe/charts/netprobe --version {version} \\\n  \
         -n netprobe --create-namespace -f my-values.yaml\n\
         ```\n\n\
         `my-values.yaml` names your workspace and its resources under `config` (the chart probes nothing\n\
         by default); `netprobe check-config -f my-values.yaml` checks it first:\n\n\
         ```yaml\n\
         config:\n  \
         region: eastus\n  \
         workspace: {{id: <workspaceId GUID>, name: <workspace name>}}\n  \
         storage_accounts: [{{name: <account>, services: [blob, file]}}]\n  \
         key_vaults: [<vault>]\n  \
         container_registries: [{{name: <registry>, data_endpoint_regions: [eastus]}}]\n\
         ```\n\n\
         Install, upgrade and\n\
         monitoring: [docs/install.md](../../../docs/install.md); the configuration:\n\
         [docs/configuration.md](../../../docs/configuration.md).\n\n\
         ## Values\n\n\
         | Key | Default | Description |\n\
         |---|---|---|\n\
         {}\n",
        rows.join("\n")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_indentation_and_skip_list_items() {
        let text = "# top\na:\n  # inner\n  b: 1\n  c:\n    - x: 1\n      y: 2\n    - z\n  d: 2\n# e's\ne: []\n";
        let got: Vec<(String, String)> = keys(text).into_iter().map(|k| (k.path.join("."), k.comment)).collect();
        assert_eq!(
            got,
            [
                ("a".into(), "top".into()),
                ("a.b".into(), "inner".into()),
                ("a.c".into(), String::new()),
                ("a.d".into(), String::new()),
                ("e".into(), "e's".into()),
            ]
        );
    }
}
