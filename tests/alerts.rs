//! The alert rules, scenario by scenario, with the real promtool:
//! - every cause of the catalogue leads to an alert (a named case per cause;
//!   a cause without a case fails `every_cause_has_a_case`);
//! - one problem, one alert: one failing node gets a node alert, most nodes
//!   failing get the fleet alert only, a dead resolver alerts once per node
//!   and resolver, flapping stays quiet, recovery resolves;
//! - the catch-all's list of covered causes is exactly the causes whose case
//!   expects a specific alert.
//!
//! The input series are written the way the agent's default (`compact`)
//! metric set writes them: the current value of each state set only, stale
//! when it changes. `tests/prometheus.rs` checks the same rules against a
//! real Prometheus scraping a real agent in both metric sets.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use netprobe::model::{Cause, DnsVerdict, Expect};
use netprobe::verdict::meets;
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rules() -> Value {
    let text = std::fs::read_to_string(root().join("deploy/prometheus/netprobe-rules.yaml")).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

/// Every alerting rule: name -> (severity, annotations).
fn alert_rules() -> BTreeMap<String, (String, BTreeMap<String, String>)> {
    let mut out = BTreeMap::new();
    for g in rules()["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            let Some(name) = r["alert"].as_str() else { continue };
            let ann = r["annotations"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            out.insert(
                name.to_string(),
                (r["labels"]["severity"].as_str().unwrap().to_string(), ann),
            );
        }
    }
    out
}

/// The alerts about targets and resolvers (the agent's own alerts aside).
const TARGET_ALERTS: &[&str] = &[
    "NetprobePrivateDNSRegression",
    "NetprobeDNSFailing",
    "NetprobeDNSUnexpectedAnswer",
    "NetprobeDNSPathMismatch",
    "NetprobePrivateEndpointUnreachable",
    "NetprobeRegistryEgressBlocked",
    "NetprobeNoPublicEgress",
    "NetprobeProxyNotBypassed",
    "NetprobeTargetUnhealthy",
    "NetprobeResolverDown",
    "NetprobeFleetDNSFailing",
    "NetprobeFleetTargetUnhealthy",
    "NetprobeFleetResolverDown",
];
const CATCH_ALL: &str = "NetprobeTargetUnhealthy";
const RESOLVERS: [&str; 2] = ["system", "azure"];

/// One target's state on one node for one minute.
#[derive(Clone, Debug)]
struct State {
    cause: Cause,
    reach: &'static str,
    /// DNS verdict per resolver, in `RESOLVERS` order.
    dns: [&'static str; 2],
    /// Whether each resolver answered anything usably this round.
    resolver_up: [bool; 2],
    /// The resolver the cause was seen through (index into `RESOLVERS`):
    /// `netprobe_target_cause`'s `resolver` label.
    cause_resolver: Option<usize>,
}

impl State {
    fn healthy() -> State {
        State {
            cause: Cause::None,
            reach: "ok",
            dns: ["private", "private"],
            resolver_up: [true, true],
            cause_resolver: None,
        }
    }
}

#[derive(Clone, Copy)]
struct TargetSpec {
    name: &'static str,
    fqdn: &'static str,
    service: &'static str,
    expect: Expect,
}

const KV: TargetSpec = TargetSpec {
    name: "keyvault-kv01",
    fqdn: "kv01.vault.azure.net",
    service: "keyvault",
    expect: Expect::Private,
};
const ACR: TargetSpec = TargetSpec {
    name: "acr-reg01",
    fqdn: "reg01.azurecr.io",
    service: "acr",
    expect: Expect::Private,
};
const PUBLIC_API: TargetSpec = TargetSpec {
    name: "api-public",
    fqdn: "api.contoso.example",
    service: "custom",
    expect: Expect::Public,
};

fn node_labels(i: usize) -> Vec<(String, String)> {
    vec![
        ("cluster".into(), "aks-prod".into()),
        ("instance".into(), format!("10.224.0.{}:9469", 4 + i)),
        ("job".into(), "netprobe".into()),
        ("node".into(), format!("aks-nodepool1-{i}")),
    ]
}

fn target_labels(t: &TargetSpec) -> Vec<(String, String)> {
    vec![
        ("fqdn".into(), t.fqdn.into()),
        ("service".into(), t.service.into()),
        ("target".into(), t.name.into()),
    ]
}

fn selector(name: &str, labels: &[(String, String)]) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{name}{{{}}}", inner.join(","))
}

fn verdict(s: &str) -> DnsVerdict {
    *DnsVerdict::ALL
        .iter()
        .find(|v| v.as_str() == s)
        .unwrap_or_else(|| panic!("verdict {s}"))
}

/// The input series of `nodes` nodes probing `target`, minute by minute: the
/// compact metric set, each state set's current value only.
fn input_series(target: &TargetSpec, timeline: &[Vec<State>]) -> Vec<Value> {
    // selector -> value per minute (None: not exported that minute)
    let mut series: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
    let minutes = timeline.len();
    let mut put = |sel: String, minute: usize, v: f64| {
        series.entry(sel).or_insert_with(|| vec![None; minutes])[minute] = Some(v);
    };
    for (minute, nodes) in timeline.iter().enumerate() {
        for (i, s) in nodes.iter().enumerate() {
            let base: Vec<(String, String)> = node_labels(i).into_iter().chain(target_labels(target)).collect();
            let with = |extra: &[(&str, &str)]| {
                let mut l = base.clone();
                l.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
                l.sort();
                l
            };
            let expect = target.expect.as_str();
            put(
                selector("netprobe_target_info", &with(&[("expect", expect)])),
                minute,
                1.0,
            );
            let healthy = s.cause == Cause::None;
            put(
                selector("netprobe_target_healthy", &with(&[])),
                minute,
                f64::from(u8::from(healthy)),
            );
            let cause_labels = match s.cause_resolver {
                Some(r) => with(&[("cause", s.cause.as_str()), ("resolver", RESOLVERS[r])]),
                None => with(&[("cause", s.cause.as_str())]),
            };
            put(selector("netprobe_target_cause", &cause_labels), minute, 1.0);
            put(
                selector("netprobe_reach_verdict", &with(&[("verdict", s.reach)])),
                minute,
                1.0,
            );
            for (r, v) in RESOLVERS.iter().zip(s.dns) {
                put(
                    selector("netprobe_dns_verdict", &with(&[("resolver", r), ("verdict", v)])),
                    minute,
                    1.0,
                );
                let ok = meets(target.expect, verdict(v));
                put(
                    selector("netprobe_dns_healthy", &with(&[("resolver", r)])),
                    minute,
                    f64::from(u8::from(ok)),
                );
            }
            for (r, up) in RESOLVERS.iter().zip(s.resolver_up) {
                let mut l = node_labels(i);
                l.push(("resolver".into(), r.to_string()));
                l.sort();
                put(selector("netprobe_resolver_up", &l), minute, f64::from(u8::from(up)));
                // `system` is the demo's and the default config's connect_via.
                l.push(("connect_via".into(), (*r == "system").to_string()));
                l.sort();
                put(selector("netprobe_resolver_info", &l), minute, 1.0);
            }
        }
    }
    series
        .into_iter()
        .map(|(sel, values)| {
            let text: Vec<String> = values
                .iter()
                .map(|v| v.map_or_else(|| "stale".to_string(), |v| v.to_string()))
                .collect();
            json!({"series": sel, "values": text.join(" ")})
        })
        .collect()
}

/// `{{ $labels.x }}` and `{{ $value }}`, as Prometheus fills them.
fn render(template: &str, labels: &BTreeMap<String, String>, value: &str) -> String {
    let mut out = template.replace("{{ $value }}", value);
    for (k, v) in labels {
        out = out.replace(&format!("{{{{ $labels.{k} }}}}"), v);
    }
    assert!(!out.contains("{{"), "unrendered template: {out}");
    out
}

/// One expected alert: its name, its labels besides `alertname` and
/// `severity`, and its value (for the annotations).
struct Expected {
    alert: &'static str,
    labels: BTreeMap<String, String>,
    value: String,
}

fn node_alert(alert: &'static str, node: usize, t: &TargetSpec, cause: Cause, extra: &[(&str, &str)]) -> Expected {
    let mut labels: BTreeMap<String, String> = node_labels(node).into_iter().chain(target_labels(t)).collect();
    labels.insert("cause".into(), cause.as_str().into());
    labels.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Expected {
        alert,
        labels,
        value: "1".into(),
    }
}

/// A promtool test group: the series, and at `eval` every target alert is
/// expected exactly as listed (an alert not listed must not fire).
fn test_group(name: &str, series: Vec<Value>, eval_minutes: &[(usize, Vec<Expected>)]) -> Value {
    let rules = alert_rules();
    let mut checks = Vec::new();
    for (minute, expected) in eval_minutes {
        for alert in TARGET_ALERTS {
            let (severity, annotations) = &rules[*alert];
            let exp: Vec<Value> = expected
                .iter()
                .filter(|e| e.alert == *alert)
                .map(|e| {
                    let mut labels = e.labels.clone();
                    labels.insert("severity".into(), severity.clone());
                    let ann: BTreeMap<&String, String> = annotations
                        .iter()
                        .map(|(k, v)| (k, render(v, &labels, &e.value)))
                        .collect();
                    json!({"exp_labels": labels, "exp_annotations": ann})
                })
                .collect();
            checks.push(json!({"eval_time": format!("{minute}m"), "alertname": alert, "exp_alerts": exp}));
        }
    }
    json!({"name": name, "interval": "1m", "input_series": series, "alert_rule_test": checks})
}

/// Runs promtool on the groups; the failure output names the group.
fn promtool(groups: Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let file = json!({
        "rule_files": [root().join("deploy/prometheus/netprobe-rules.yaml")],
        "evaluation_interval": "1m",
        "tests": groups,
    });
    let path = dir.path().join("generated.test.json");
    std::fs::write(&path, serde_json::to_string_pretty(&file).unwrap()).unwrap();
    let out = Command::new("promtool")
        .args(["test", "rules"])
        .arg(&path)
        .output()
        .expect("promtool is required (scripts/test installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool test rules failed:\n{text}");
}

/// A cause, the state that shows it on one node, and the one alert it
/// raises (one alert per target and node, whatever the resolvers say).
struct CauseCase {
    cause: Cause,
    target: TargetSpec,
    reach: &'static str,
    dns: [&'static str; 2],
    /// The resolver the cause was seen through (None: a reachability cause).
    resolver: Option<usize>,
    alert: &'static str,
}

const DNS_REGRESSION: &str = "NetprobePrivateDNSRegression";
const DNS_FAILING: &str = "NetprobeDNSFailing";
const DNS_UNEXPECTED: &str = "NetprobeDNSUnexpectedAnswer";
const PATH_MISMATCH: &str = "NetprobeDNSPathMismatch";
const UNREACHABLE: &str = "NetprobePrivateEndpointUnreachable";
const REGISTRY: &str = "NetprobeRegistryEgressBlocked";
const NO_EGRESS: &str = "NetprobeNoPublicEgress";
const PROXIED: &str = "NetprobeProxyNotBypassed";

fn cause_cases() -> Vec<CauseCase> {
    let c = |cause, target, reach, dns, (alert, resolver)| CauseCase {
        cause,
        target,
        reach,
        dns,
        resolver,
        alert,
    };
    vec![
        c(
            Cause::ZoneNotLinked,
            KV,
            "rejected",
            ["public", "public"],
            (DNS_REGRESSION, Some(0)),
        ),
        c(
            Cause::NoPrivateEndpoint,
            KV,
            "ok",
            ["public", "public"],
            (DNS_REGRESSION, Some(0)),
        ),
        c(
            Cause::RecordMissing,
            KV,
            "skipped",
            ["nxdomain", "nxdomain"],
            (DNS_FAILING, Some(0)),
        ),
        c(
            Cause::NameNotFound,
            KV,
            "skipped",
            ["nxdomain", "nxdomain"],
            (DNS_FAILING, Some(0)),
        ),
        c(
            Cause::DnsPathNotForwarding,
            KV,
            "rejected",
            ["public", "private"],
            (PATH_MISMATCH, Some(0)),
        ),
        c(
            Cause::DnsUnreachable,
            KV,
            "ok",
            ["timeout", "private"],
            (DNS_FAILING, Some(0)),
        ),
        c(
            Cause::DnsError,
            KV,
            "ok",
            ["servfail", "private"],
            (DNS_FAILING, Some(0)),
        ),
        c(
            Cause::DnsPolicyBlocked,
            KV,
            "skipped",
            ["blocked", "blocked"],
            (DNS_FAILING, Some(0)),
        ),
        c(
            Cause::ZoneForwarded,
            KV,
            "skipped",
            ["nxdomain", "nxdomain"],
            (DNS_FAILING, Some(0)),
        ),
        c(
            Cause::DnsTcpBlocked,
            ACR,
            "ok",
            ["error", "private"],
            (DNS_FAILING, Some(0)),
        ),
        // LocalDNS answers (privately) what Azure DNS no longer does: both
        // verdicts are private, so the catch-all carries it.
        c(
            Cause::DnsStaleCache,
            KV,
            "ok",
            ["private", "private"],
            (CATCH_ALL, Some(0)),
        ),
        c(
            Cause::DnsServingStale,
            KV,
            "ok",
            ["private", "timeout"],
            (DNS_FAILING, Some(1)),
        ),
        c(
            Cause::MixedAnswers,
            KV,
            "ok",
            ["mixed", "mixed"],
            (DNS_REGRESSION, Some(0)),
        ),
        c(
            Cause::UnexpectedIp,
            KV,
            "ok",
            ["unexpected_ip", "unexpected_ip"],
            (DNS_UNEXPECTED, Some(0)),
        ),
        c(
            Cause::UnexpectedPrivate,
            PUBLIC_API,
            "ok",
            ["private", "private"],
            (DNS_UNEXPECTED, Some(0)),
        ),
        c(
            Cause::EndpointBlocked,
            ACR,
            "timeout",
            ["private", "private"],
            (REGISTRY, None),
        ),
        c(
            Cause::EndpointStale,
            KV,
            "refused",
            ["private", "private"],
            (UNREACHABLE, None),
        ),
        c(
            Cause::TlsMismatch,
            KV,
            "tls_error",
            ["private", "private"],
            (UNREACHABLE, None),
        ),
        c(
            Cause::ProxyNotBypassed,
            KV,
            "ok",
            ["private", "private"],
            (PROXIED, None),
        ),
        c(
            Cause::NoPublicEgress,
            PUBLIC_API,
            "timeout",
            ["public", "public"],
            (NO_EGRESS, None),
        ),
        c(
            Cause::PerimeterDenied,
            KV,
            "rejected",
            ["private", "private"],
            (UNREACHABLE, None),
        ),
        c(
            Cause::AsymmetricRoute,
            KV,
            "tls_error",
            ["private", "private"],
            (UNREACHABLE, None),
        ),
        c(
            Cause::HttpRejected,
            KV,
            "rejected",
            ["private", "private"],
            (UNREACHABLE, None),
        ),
        c(
            Cause::OutsideServiceTag,
            PUBLIC_API,
            "ok",
            ["public", "public"],
            (CATCH_ALL, None),
        ),
        c(
            Cause::InternalError,
            KV,
            "skipped",
            ["private", "private"],
            (CATCH_ALL, None),
        ),
    ]
}

fn expected_for(case: &CauseCase) -> Vec<Expected> {
    if case.alert == NO_EGRESS {
        // One alert per node, counting its public endpoints.
        let labels = node_labels(0).into_iter().collect();
        return vec![Expected {
            alert: NO_EGRESS,
            labels,
            value: "1".into(),
        }];
    }
    let resolver: Vec<(&str, &str)> = case.resolver.map(|r| ("resolver", RESOLVERS[r])).into_iter().collect();
    vec![node_alert(case.alert, 0, &case.target, case.cause, &resolver)]
}

#[test]
fn every_cause_has_a_case() {
    let covered: BTreeSet<Cause> = cause_cases().iter().map(|c| c.cause).collect();
    let missing: Vec<&str> = Cause::ALL
        .iter()
        .filter(|c| **c != Cause::None && !covered.contains(c))
        .map(|c| c.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "causes without an alert case in tests/alerts.rs (and perhaps without an alert): {missing:?}"
    );
}

#[test]
fn every_cause_raises_its_alert_on_one_node() {
    let groups = cause_cases()
        .iter()
        .map(|case| {
            let state = State {
                cause: case.cause,
                reach: case.reach,
                dns: case.dns,
                resolver_up: [true, true],
                cause_resolver: case.resolver,
            };
            let timeline = vec![vec![state]; 12];
            test_group(
                &format!("cause {}", case.cause),
                input_series(&case.target, &timeline),
                &[(4, vec![]), (10, expected_for(case))],
            )
        })
        .collect();
    promtool(groups);
}

#[test]
fn the_catch_all_excludes_exactly_the_causes_with_a_specific_alert() {
    let rules = rules();
    let expr = rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .find(|r| r["alert"] == CATCH_ALL)
        .unwrap()["expr"]
        .as_str()
        .unwrap()
        .to_string();
    let list = expr.split("cause!~\"").nth(1).unwrap().split('"').next().unwrap();
    let excluded: BTreeSet<&str> = list.split('|').collect();
    let mut specific: BTreeSet<&str> = cause_cases()
        .iter()
        .filter(|c| c.alert != CATCH_ALL)
        .map(|c| c.cause.as_str())
        .collect();
    specific.insert("none");
    assert_eq!(excluded, specific, "{CATCH_ALL}'s cause regex");
}

/// One alert per target and node, by construction: the per-target alerts'
/// selectors of `netprobe_target_cause` (cause and service filters) are
/// disjoint and, with the catch-all, cover every cause for every service.
#[test]
fn per_target_alerts_partition_the_causes() {
    // (alert, its selector's matchers) for each rule that reads the cause.
    let mut selectors = Vec::new();
    for g in rules()["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            let (Some(alert), Some(expr)) = (r["alert"].as_str(), r["expr"].as_str()) else {
                continue;
            };
            let Some(at) = expr.find("netprobe_target_cause{") else {
                continue;
            };
            let inner = &expr[at + "netprobe_target_cause{".len()..];
            let inner = &inner[..inner.find('}').unwrap()];
            let matchers: Vec<(String, String, String)> = inner
                .split(", ")
                .map(|m| {
                    let op_at = m.find(['=', '!']).unwrap();
                    let op_len =
                        if m[op_at..].starts_with("=~") || m[op_at..].starts_with("!~") || m[op_at..].starts_with("!=")
                        {
                            2
                        } else {
                            1
                        };
                    let (name, rest) = m.split_at(op_at);
                    let (op, value) = rest.split_at(op_len);
                    (name.to_string(), op.to_string(), value.trim_matches('"').to_string())
                })
                .collect();
            selectors.push((alert.to_string(), matchers));
        }
    }
    assert!(selectors.len() >= 7, "{selectors:?}");
    let matches = |matchers: &[(String, String, String)], cause: &str, service: &str| {
        matchers.iter().all(|(name, op, value)| {
            let actual = if name == "cause" { cause } else { service };
            let in_list = value.split('|').any(|v| v == actual);
            match op.as_str() {
                "=" | "=~" => in_list,
                "!=" | "!~" => !in_list,
                other => panic!("operator {other}"),
            }
        })
    };
    for cause in Cause::ALL.iter().filter(|c| **c != Cause::None) {
        for service in ["acr", "keyvault", "storage", "custom"] {
            let alerts: Vec<&str> = selectors
                .iter()
                .filter(|(_, m)| matches(m, cause.as_str(), service))
                .map(|(a, _)| a.as_str())
                .collect();
            assert_eq!(alerts.len(), 1, "cause {cause} of a {service} target raises {alerts:?}");
        }
    }
}

/// `n` nodes; the nodes in `failing` show `bad` from minute 1 on.
fn fleet(n: usize, failing: &[usize], bad: &State, minutes: usize) -> Vec<Vec<State>> {
    (0..minutes)
        .map(|m| {
            (0..n)
                .map(|i| {
                    if m >= 1 && failing.contains(&i) {
                        bad.clone()
                    } else {
                        State::healthy()
                    }
                })
                .collect()
        })
        .collect()
}

fn unlinked() -> State {
    State {
        cause: Cause::ZoneNotLinked,
        reach: "rejected",
        dns: ["public", "private"],
        resolver_up: [true, true],
        cause_resolver: Some(0),
    }
}

fn fleet_alert(alert: &'static str, t: &TargetSpec, resolver: Option<&str>, value: usize) -> Expected {
    let mut labels: BTreeMap<String, String> = target_labels(t).into_iter().collect();
    labels.insert("cluster".into(), "aks-prod".into());
    if let Some(r) = resolver {
        labels.insert("resolver".into(), r.into());
    }
    Expected {
        alert,
        labels,
        value: value.to_string(),
    }
}

#[test]
fn one_problem_one_alert_across_the_fleet() {
    // One alert for the node's target: the broken resolver in its labels.
    let regression = |node| {
        node_alert(
            DNS_REGRESSION,
            node,
            &KV,
            Cause::ZoneNotLinked,
            &[("resolver", "system")],
        )
    };
    let mut groups = Vec::new();

    // One node of five: that node's alerts, no fleet alert.
    groups.push(test_group(
        "one node of five fails",
        input_series(&KV, &fleet(5, &[2], &unlinked(), 12)),
        &[(10, vec![regression(2)])],
    ));

    // Four of five: one fleet alert without node or instance, no node alert.
    groups.push(test_group(
        "most nodes fail",
        input_series(&KV, &fleet(5, &[0, 1, 2, 4], &unlinked(), 12)),
        &[(10, vec![fleet_alert("NetprobeFleetDNSFailing", &KV, Some("system"), 4)])],
    ));

    // An endpoint blocked on three of four nodes: the target's fleet alert.
    let blocked = State {
        cause: Cause::EndpointBlocked,
        reach: "timeout",
        dns: ["private", "private"],
        resolver_up: [true, true],
        cause_resolver: None,
    };
    groups.push(test_group(
        "an endpoint blocked on most nodes",
        input_series(&ACR, &fleet(4, &[0, 1, 3], &blocked, 12)),
        &[(10, vec![fleet_alert("NetprobeFleetTargetUnhealthy", &ACR, None, 3)])],
    ));

    // A dead resolver on one node: one alert for the node and resolver, no
    // per-target DNS alert.
    let dead = State {
        cause: Cause::DnsUnreachable,
        reach: "ok",
        dns: ["private", "timeout"],
        resolver_up: [true, false],
        cause_resolver: Some(1),
    };
    let mut resolver_down = node_alert("NetprobeResolverDown", 1, &KV, Cause::None, &[("resolver", "azure")]);
    for k in ["cause", "fqdn", "service", "target"] {
        resolver_down.labels.remove(k);
    }
    groups.push(test_group(
        "a resolver dead on one node",
        input_series(&KV, &fleet(3, &[1], &dead, 12)),
        &[(10, vec![resolver_down])],
    ));

    // ... and on every node: one fleet alert for the resolver, nothing per
    // target or node.
    let mut fleet_down = fleet_alert("NetprobeFleetResolverDown", &KV, Some("azure"), 3);
    for k in ["fqdn", "service", "target"] {
        fleet_down.labels.remove(k);
    }
    groups.push(test_group(
        "a resolver dead on every node",
        input_series(&KV, &fleet(3, &[0, 1, 2], &dead, 12)),
        &[(10, vec![fleet_down])],
    ));

    // Flapping every minute: never 5 minutes in a row, never fires.
    let flapping: Vec<Vec<State>> = (0..20)
        .map(|m| vec![if m % 2 == 1 { unlinked() } else { State::healthy() }, State::healthy()])
        .collect();
    groups.push(test_group(
        "flapping",
        input_series(&KV, &flapping),
        &[(8, vec![]), (15, vec![])],
    ));

    // Recovery at minute 10: firing at 8, resolved from 11 on.
    let recovering: Vec<Vec<State>> = (0..16)
        .map(|m| {
            vec![
                if (1..10).contains(&m) {
                    unlinked()
                } else {
                    State::healthy()
                },
                State::healthy(),
            ]
        })
        .collect();
    groups.push(test_group(
        "recovery",
        input_series(&KV, &recovering),
        &[(8, vec![regression(0)]), (11, vec![])],
    ));
    promtool(groups);
}

/// A test of the test: promtool fails when an expected alert is missing.
#[test]
#[should_panic(expected = "promtool test rules failed")]
fn a_missing_alert_fails_promtool() {
    let state = State::healthy();
    let series = input_series(&KV, &vec![vec![state]; 12]);
    let wrong = node_alert(UNREACHABLE, 0, &KV, Cause::None, &[]);
    promtool(vec![test_group(
        "healthy, wrongly expected to alert",
        series,
        &[(10, vec![wrong])],
    )]);
}

// ---------------------------------------------------------------------------
// The Alertmanager example, against the real Alertmanager.

const AM_EXAMPLE: &str = "deploy/alertmanager/netprobe-example.yaml";

#[test]
fn alertmanager_example_passes_amtool() {
    let out = Command::new("amtool")
        .args(["check-config"])
        .arg(root().join(AM_EXAMPLE))
        .output()
        .expect("amtool is required (scripts/test installs prometheus-alertmanager)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("SUCCESS"), "{text}");
}

/// Every alert the rules define is named by the example's routes or
/// inhibitions, and every name it uses exists.
#[test]
fn alertmanager_example_names_only_real_alerts() {
    let text = std::fs::read_to_string(root().join(AM_EXAMPLE)).unwrap();
    let alerts = alert_rules();
    let mut used = BTreeSet::new();
    for token in text.split(|c: char| !c.is_ascii_alphanumeric()) {
        if token.starts_with("Netprobe") && token.len() > "Netprobe".len() {
            used.insert(token.to_string());
        }
    }
    let unknown: Vec<&String> = used.iter().filter(|a| !alerts.contains_key(*a)).collect();
    assert!(
        unknown.is_empty(),
        "the example names alerts the rules do not define: {unknown:?}"
    );
    for fleet in [
        "NetprobeFleetDNSFailing",
        "NetprobeFleetTargetUnhealthy",
        "NetprobeFleetResolverDown",
    ] {
        assert!(used.contains(fleet), "{fleet} inhibits nothing in the example");
    }
}

struct Alertmanager {
    child: std::process::Child,
    addr: std::net::SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_alertmanager() -> Alertmanager {
    let dir = tempfile::tempdir().unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = Command::new("prometheus-alertmanager")
        .arg(format!("--config.file={}", root().join(AM_EXAMPLE).display()))
        .arg(format!("--storage.path={}", dir.path().display()))
        .arg(format!("--web.listen-address={addr}"))
        // No gossip: a single instance, nothing but loopback.
        .arg("--cluster.listen-address=")
        .arg("--log.level=error")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("prometheus-alertmanager is required (scripts/test installs it)");
    let am = Alertmanager { child, addr, _dir: dir };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while netprobe_testkit::http_get(addr, "/-/ready").await.0 != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "alertmanager did not become ready"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    am
}

/// POSTs JSON over HTTP/1.0; the status code.
async fn post_json(addr: std::net::SocketAddr, path: &str, body: &Value) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = body.to_string();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST {path} HTTP/1.0\r\nHost: am\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

fn am_alert(labels: &[(&str, &str)]) -> Value {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    json!({"labels": labels, "annotations": {}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_example_inhibits_as_documented() {
    let am = start_alertmanager().await;
    let node = |i: &'static str| [("cluster", "aks-prod"), ("instance", i), ("job", "netprobe")];
    let n1 = node("10.224.0.4:9469");
    let n2 = node("10.224.0.5:9469");
    let with = |base: &[(&'static str, &'static str)], extra: &[(&'static str, &'static str)]| {
        let mut v: Vec<(&str, &str)> = base.to_vec();
        v.extend_from_slice(extra);
        am_alert(&v)
    };
    let kv_system = [("target", "keyvault-kv01"), ("resolver", "system")];
    let alerts = json!([
        // The fleet alert for the key vault through `system` ...
        am_alert(&[
            ("alertname", "NetprobeFleetDNSFailing"),
            ("cluster", "aks-prod"),
            ("target", "keyvault-kv01"),
            ("resolver", "system")
        ]),
        // ... silences node 1's regression for it, but not the registry's.
        with(
            &n1,
            &[
                ("alertname", "NetprobePrivateDNSRegression"),
                kv_system[0],
                kv_system[1]
            ]
        ),
        with(
            &n1,
            &[
                ("alertname", "NetprobePrivateDNSRegression"),
                ("target", "acr-reg01"),
                ("resolver", "system")
            ]
        ),
        // A dead resolver on node 2 silences its DNS failures through it.
        with(&n2, &[("alertname", "NetprobeResolverDown"), ("resolver", "azure")]),
        with(
            &n2,
            &[
                ("alertname", "NetprobeDNSFailing"),
                ("target", "acr-reg01"),
                ("resolver", "azure")
            ]
        ),
        // A specific alert silences the catch-all for the same node and target.
        with(
            &n2,
            &[
                ("alertname", "NetprobePrivateEndpointUnreachable"),
                ("target", "storage-st01-blob")
            ]
        ),
        with(
            &n2,
            &[
                ("alertname", "NetprobeTargetUnhealthy"),
                ("target", "storage-st01-blob")
            ]
        ),
        // The catch-all alone stays active.
        with(
            &n1,
            &[("alertname", "NetprobeTargetUnhealthy"), ("target", "workspace-api")]
        ),
    ]);
    assert_eq!(post_json(am.addr, "/api/v2/alerts", &alerts).await, 200);
    let expect_suppressed = BTreeSet::from([
        ("NetprobePrivateDNSRegression", "keyvault-kv01"),
        ("NetprobeDNSFailing", "acr-reg01"),
        ("NetprobeTargetUnhealthy", "storage-st01-blob"),
    ]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (code, body) = netprobe_testkit::http_get(am.addr, "/api/v2/alerts").await;
        assert_eq!(code, 200, "{body}");
        let listed: Vec<Value> = serde_json::from_str(&body).unwrap();
        let state = |a: &Value| a["status"]["state"].as_str().unwrap_or("").to_string();
        let suppressed: BTreeSet<(String, String)> = listed
            .iter()
            .filter(|a| state(a) == "suppressed")
            .map(|a| {
                (
                    a["labels"]["alertname"].as_str().unwrap().to_string(),
                    a["labels"]["target"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        let want: BTreeSet<(String, String)> = expect_suppressed
            .iter()
            .map(|(a, t)| (a.to_string(), t.to_string()))
            .collect();
        if listed.len() == 8 && suppressed == want {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "suppressed {suppressed:?}, want {want:?}; alerts: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Findings every agent reports alike alert once per cluster.
#[test]
fn cluster_findings_alert_once_per_cluster() {
    let mut series = Vec::new();
    for i in 0..3 {
        let mut l = node_labels(i);
        l.push(("code".into(), "region_mismatch".into()));
        l.sort();
        series.push(json!({"series": selector("netprobe_finding", &l), "values": "1x30"}));
        for (cause, v) in [("none", "0x30"), ("public_ingress", "1x30")] {
            let mut l = node_labels(i);
            l.extend([
                ("cause".to_string(), cause.to_string()),
                ("name".to_string(), "azureml-fe".to_string()),
                ("namespace".to_string(), "azureml".to_string()),
            ]);
            l.sort();
            series.push(json!({"series": selector("netprobe_scoring_service_cause", &l), "values": v}));
        }
    }
    let rules = alert_rules();
    let expect = |alert: &str, labels: &[(&str, &str)], value: &str| {
        let (severity, annotations) = &rules[alert];
        let mut labels: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        labels.insert("cluster".into(), "aks-prod".into());
        labels.insert("severity".into(), severity.clone());
        let ann: BTreeMap<&String, String> = annotations
            .iter()
            .map(|(k, v)| (k, render(v, &labels, value)))
            .collect();
        json!({"eval_time": "20m", "alertname": alert, "exp_alerts": [{"exp_labels": labels, "exp_annotations": ann}]})
    };
    let group = json!({
        "name": "cluster findings on three nodes",
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            expect("NetprobeRegionMismatch", &[("code", "region_mismatch")], "3"),
            expect(
                "NetprobeInferenceRouterUnhealthy",
                &[("cause", "public_ingress"), ("name", "azureml-fe"), ("namespace", "azureml")],
                "1",
            ),
        ],
    });
    promtool(vec![group, service_tags_group()]);
}

/// A service tags file published 31 days before the test's clock starts on
/// one node, a fresh one on another: one alert for the cluster, with the
/// oldest file's age. A file 29 days old stays quiet.
fn service_tags_group() -> Value {
    let day = 86_400i64;
    let mut series = Vec::new();
    for (i, published) in [(0, -31 * day), (1, 0), (2, -29 * day)] {
        let mut l = node_labels(i);
        let cloud = if i == 2 { "AzureGovernment" } else { "Public" };
        l.push(("cloud".into(), cloud.into()));
        l.sort();
        series.push(json!({
            "series": selector("netprobe_service_tags_published_timestamp_seconds", &l),
            "values": format!("{published}x180"),
        }));
    }
    let (severity, annotations) = &alert_rules()["NetprobeServiceTagsStale"];
    let labels: BTreeMap<String, String> = [
        ("cluster", "aks-prod"),
        ("cloud", "Public"),
        ("severity", severity.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    // At 90 minutes: 31 days and 5,400 seconds, in days.
    let value = ((31 * day + 5_400) as f64 / day as f64).to_string();
    let ann: BTreeMap<&String, String> = annotations
        .iter()
        .map(|(k, v)| (k, render(v, &labels, &value)))
        .collect();
    json!({
        "name": "a stale service tags file",
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": "30m", "alertname": "NetprobeServiceTagsStale", "exp_alerts": []},
            {"eval_time": "90m", "alertname": "NetprobeServiceTagsStale",
             "exp_alerts": [{"exp_labels": labels, "exp_annotations": ann}]},
        ],
    })
}
