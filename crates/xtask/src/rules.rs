//! The one rules file (deploy/prometheus/netprobe-rules.yaml) and its
//! generated copies: the Prometheus Operator's `PrometheusRule` and the Azure
//! Monitor managed Prometheus ARM template (`prometheusRuleGroups`, one per
//! rule group). `scripts/gen` writes them; tests fail when they are
//! stale.

use serde_json::{Map, Value, json};

/// The rules file, relative to the repository.
pub const RULES: &str = "deploy/prometheus/netprobe-rules.yaml";
/// The generated PrometheusRule.
pub const PROMETHEUS_RULE: &str = "deploy/components/prometheus-operator/prometheusrule.yaml";
/// The generated ARM template.
pub const ARM_TEMPLATE: &str = "deploy/azure/netprobe-rules.json";
/// The Helm chart's copy of the rules (a chart reads only its own files).
pub const CHART_RULES: &str = "deploy/helm/netprobe/files/netprobe-rules.yaml";

/// The `severity` label's Azure Monitor severity (0 Critical .. 4 Verbose).
pub fn azure_severity(label: &str) -> Result<u8, String> {
    match label {
        "critical" => Ok(0),
        "warning" => Ok(2),
        "info" => Ok(3),
        other => Err(format!("severity {other:?} has no Azure Monitor severity")),
    }
}

/// A Prometheus duration (`30s`, `5m`, `1h`, `1h30m`) as ISO 8601 (`PT5M`).
pub fn iso8601(duration: &str) -> Result<String, String> {
    let mut out = String::from("PT");
    let mut number = String::new();
    for c in duration.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            'h' => 'H',
            'm' => 'M',
            's' => 'S',
            _ => return Err(format!("duration {duration:?}: unit {c:?} is not h, m or s")),
        };
        if number.is_empty() {
            return Err(format!("duration {duration:?}: a unit without a number"));
        }
        out.push_str(&number);
        out.push(unit);
        number.clear();
    }
    if !number.is_empty() || out == "PT" {
        return Err(format!("duration {duration:?} does not end in a unit"));
    }
    Ok(out)
}

/// The PrometheusRule: the rules file's groups, indented under `spec:`.
pub fn prometheus_rule(rules_yaml: &str) -> Result<String, String> {
    let start = rules_yaml
        .find("\ngroups:")
        .map(|i| i + 1)
        .ok_or("the rules file has no top-level `groups:`")?;
    let mut out = String::from(
        "# Generated from deploy/prometheus/netprobe-rules.yaml by scripts/gen;\n\
         # do not edit (tests fail when it is stale).\n\
         apiVersion: monitoring.coreos.com/v1\n\
         kind: PrometheusRule\n\
         metadata:\n  name: netprobe\n  namespace: netprobe\n  labels:\n    app.kubernetes.io/name: netprobe\n\
         spec:\n",
    );
    for line in rules_yaml[start..].lines() {
        if line.is_empty() {
            out.push('\n');
        } else {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

/// A string ARM would read as an expression (`[...]`) escaped as a literal.
fn literal(s: &str) -> Value {
    if s.starts_with('[') {
        Value::String(format!("[{s}"))
    } else {
        Value::String(s.to_string())
    }
}

fn string_map(v: &Value, what: &str) -> Result<Value, String> {
    let mut out = Map::new();
    if let Some(obj) = v.as_object() {
        for (k, v) in obj {
            let s = v.as_str().ok_or_else(|| format!("{what}.{k} is not a string"))?;
            out.insert(k.clone(), literal(s));
        }
    }
    Ok(Value::Object(out))
}

/// One rule in the ARM shape.
fn arm_rule(rule: &Value) -> Result<Value, String> {
    let expr = rule["expr"].as_str().ok_or("a rule without `expr`")?.trim_end();
    if let Some(record) = rule["record"].as_str() {
        return Ok(json!({
            "record": record,
            "expression": literal(expr),
            "labels": string_map(&rule["labels"], record)?,
            "enabled": true,
        }));
    }
    let alert = rule["alert"]
        .as_str()
        .ok_or("a rule with neither `alert` nor `record`")?;
    let severity = rule["labels"]["severity"]
        .as_str()
        .ok_or_else(|| format!("{alert} has no severity label"))?;
    let mut out = json!({
        "alert": alert,
        "expression": literal(expr),
        "severity": azure_severity(severity).map_err(|e| format!("{alert}: {e}"))?,
        "labels": string_map(&rule["labels"], alert)?,
        "annotations": string_map(&rule["annotations"], alert)?,
        "enabled": true,
        "resolveConfiguration": {"autoResolved": true, "timeToResolve": "PT10M"},
        "actions": "[variables('actions')]",
    });
    if let Some(d) = rule["for"].as_str() {
        out["for"] = Value::String(iso8601(d).map_err(|e| format!("{alert}: {e}"))?);
    }
    Ok(out)
}

/// The ARM template: one `prometheusRuleGroups` resource per rule group,
/// scoped to the Azure Monitor workspace and the AKS cluster.
pub fn arm_template(rules_yaml: &str) -> Result<Value, String> {
    let rules: Value = serde_saphyr::from_str(rules_yaml).map_err(|e| format!("{RULES}: {e}"))?;
    let mut resources = Vec::new();
    for group in rules["groups"].as_array().ok_or("no `groups` list")? {
        let name = group["name"].as_str().ok_or("a group without a name")?;
        let rules = group["rules"]
            .as_array()
            .ok_or_else(|| format!("group {name} has no rules"))?
            .iter()
            .map(arm_rule)
            .collect::<Result<Vec<_>, _>>()?;
        resources.push(json!({
            "type": "Microsoft.AlertsManagement/prometheusRuleGroups",
            "apiVersion": "2023-03-01",
            "name": format!("[format('{{0}}-{name}', parameters('clusterName'))]"),
            "location": "[parameters('location')]",
            "properties": {
                "description": format!("netprobe rule group {name}, generated from {RULES}"),
                "scopes": [
                    "[parameters('azureMonitorWorkspaceResourceId')]",
                    "[parameters('clusterResourceId')]"
                ],
                "clusterName": "[parameters('clusterName')]",
                "enabled": true,
                "interval": "PT1M",
                "rules": rules,
            },
        }));
    }
    Ok(json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "metadata": {
            "description": format!("netprobe's alert and recording rules for Azure Monitor managed Prometheus. Generated from {RULES} by scripts/gen; do not edit."),
        },
        "parameters": {
            "azureMonitorWorkspaceResourceId": {
                "type": "string",
                "metadata": {"description": "Resource ID of the Azure Monitor workspace the cluster's metrics go to."}
            },
            "clusterResourceId": {
                "type": "string",
                "metadata": {"description": "Resource ID of the AKS cluster."}
            },
            "clusterName": {
                "type": "string",
                "metadata": {"description": "The AKS cluster's name (the `cluster` label of its metrics)."}
            },
            "actionGroupResourceId": {
                "type": "string",
                "defaultValue": "",
                "metadata": {"description": "Resource ID of the action group to notify; empty for none."}
            },
            "location": {
                "type": "string",
                "defaultValue": "[resourceGroup().location]",
                "metadata": {"description": "Region of the rule groups (the Azure Monitor workspace's region)."}
            }
        },
        "variables": {
            "actions": "[if(empty(parameters('actionGroupResourceId')), createArray(), createArray(createObject('actionGroupId', parameters('actionGroupResourceId'))))]"
        },
        "resources": resources,
    }))
}

/// The generated files' contents, by path.
pub fn generate(rules_yaml: &str) -> Result<Vec<(&'static str, String)>, String> {
    let arm = serde_json::to_string_pretty(&arm_template(rules_yaml)?).map_err(|e| e.to_string())? + "\n";
    Ok(vec![
        (PROMETHEUS_RULE, prometheus_rule(rules_yaml)?),
        (ARM_TEMPLATE, arm),
        (CHART_RULES, rules_yaml.to_string()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_become_iso8601() {
        assert_eq!(iso8601("5m").unwrap(), "PT5M");
        assert_eq!(iso8601("1h30m").unwrap(), "PT1H30M");
        assert_eq!(iso8601("45s").unwrap(), "PT45S");
        assert!(iso8601("5").is_err());
        assert!(iso8601("5d").is_err());
        assert!(iso8601("").is_err());
    }

    #[test]
    fn bracketed_strings_stay_literal_in_arm() {
        assert_eq!(literal("[5m] x"), Value::String("[[5m] x".into()));
        assert_eq!(literal("rate(x[5m])"), Value::String("rate(x[5m])".into()));
    }
}
