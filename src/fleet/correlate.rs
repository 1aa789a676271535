//! Why these nodes: for each failing target and cause, the smallest set of
//! values of one node attribute (pool, subnet, zone, node image, VM size, OS,
//! kubelet version, mode) that covers the failing nodes and none, or almost
//! none, of the healthy ones; and when it began (the agents' `since`).
//! Pure: nodes in, explanations out, table-tested.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::{AgentState, NodeView};
use crate::model::Cause;

/// The attributes correlated, in the order ties are broken, with the
/// Node label (or field) each comes from and the likely culprit it points at.
pub const ATTRIBUTES: &[Attribute] = &[
    Attribute {
        key: "pool",
        shown: "pool",
        hint: "what the pool has of its own: its subnet, that subnet's NSG and route table (UDR)",
    },
    Attribute {
        key: "subnet",
        shown: "subnet",
        hint: "that subnet's NSG, route table (UDR) or DNS settings",
    },
    Attribute {
        key: "zone",
        shown: "zone",
        hint: "something zonal on the path: a firewall or NVA instance, a NAT gateway in that zone",
    },
    Attribute {
        key: "node_image",
        shown: "node image",
        hint: "the node image: an upgrade changed the nodes' DNS or network configuration; compare with the previous image",
    },
    Attribute {
        key: "kubelet",
        shown: "kubelet",
        hint: "the Kubernetes version: an upgrade in progress",
    },
    Attribute {
        key: "vm_size",
        shown: "VM size",
        hint: "the VM size (accelerated networking, or the pool behind it)",
    },
    Attribute {
        key: "os_sku",
        shown: "OS SKU",
        hint: "the OS: its resolver and network configuration",
    },
    Attribute {
        key: "mode",
        shown: "mode",
        hint: "system or user pools: their subnets and NSGs",
    },
];

/// A node attribute the report correlates failures with.
#[derive(Clone, Copy, Debug)]
pub struct Attribute {
    pub key: &'static str,
    pub shown: &'static str,
    pub hint: &'static str,
}

/// Why one target fails with one cause on the nodes it fails on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub target: String,
    pub fqdn: String,
    pub cause: Cause,
    /// Nodes where it fails with this cause.
    pub failing: usize,
    /// Nodes where it is healthy.
    pub healthy: usize,
    /// The attribute that sets the failing nodes apart, when one does.
    pub attribute: Option<String>,
    /// Its values on the failing nodes.
    pub values: Vec<String>,
    /// Healthy nodes that share one of those values (the noise allowed).
    pub healthy_matching: usize,
    /// The node that saw it first, and when (its agent's `since`).
    pub first_node: Option<String>,
    pub first_since: Option<String>,
    /// When the last of the failing nodes began failing.
    pub all_since: Option<String>,
    /// Some failing node's `since` is "at least" (its agent restarted).
    pub since_at_least: bool,
    /// One line for a person.
    pub text: String,
}

/// The most attribute values an explanation may name.
pub const MAX_VALUES: usize = 3;

/// Healthy nodes an explanation may still cover: none, or one in ten.
fn noise_allowed(healthy: usize) -> usize {
    healthy / 10
}

/// Every (target, cause) that fails somewhere, explained, most nodes first.
pub fn explain(nodes: &[NodeView]) -> Vec<Explanation> {
    let answered: Vec<&NodeView> = nodes
        .iter()
        .filter(|n| matches!(n.state, AgentState::Ok | AgentState::Stale))
        .collect();
    let mut pairs: BTreeMap<(&str, Cause), ()> = BTreeMap::new();
    for t in answered.iter().flat_map(|n| &n.targets).filter(|t| !t.healthy) {
        pairs.insert((&*t.name, t.cause), ());
    }
    let mut out: Vec<Explanation> = pairs
        .into_keys()
        .map(|(target, cause)| explain_one(&answered, target, cause))
        .collect();
    out.sort_by(|a, b| b.failing.cmp(&a.failing).then_with(|| a.target.cmp(&b.target)));
    out
}

fn explain_one(nodes: &[&NodeView], target: &str, cause: Cause) -> Explanation {
    let state = |n: &NodeView| {
        n.targets
            .iter()
            .find(|t| &*t.name == target)
            .map(|t| (t.healthy, t.cause))
    };
    let failing: Vec<&NodeView> = nodes
        .iter()
        .copied()
        .filter(|n| state(n) == Some((false, cause)))
        .collect();
    let healthy: Vec<&NodeView> = nodes
        .iter()
        .copied()
        .filter(|n| state(n).is_some_and(|s| s.0))
        .collect();
    let fqdn = failing
        .first()
        .and_then(|n| n.targets.iter().find(|t| &*t.name == target))
        .map(|t| t.fqdn.to_string())
        .unwrap_or_default();
    let best = (!healthy.is_empty())
        .then(|| best_attribute(&failing, &healthy))
        .flatten();
    let (first_node, first_since, all_since, at_least) = since_of(&failing, target);
    let mut e = Explanation {
        target: target.to_string(),
        fqdn,
        cause,
        failing: failing.len(),
        healthy: healthy.len(),
        attribute: best.as_ref().map(|b| b.0.key.to_string()),
        values: best.as_ref().map(|b| b.1.clone()).unwrap_or_default(),
        healthy_matching: best.as_ref().map_or(0, |b| b.2),
        first_node,
        first_since,
        all_since,
        since_at_least: at_least,
        text: String::new(),
    };
    e.text = text(&e, best.as_ref().map(|b| b.0));
    e
}

/// The attribute whose values on the failing nodes (at most
/// [`MAX_VALUES`]) cover the fewest healthy nodes (at most one in ten),
/// fewer values first, then the table's order.
fn best_attribute(failing: &[&NodeView], healthy: &[&NodeView]) -> Option<(Attribute, Vec<String>, usize)> {
    let allowed = noise_allowed(healthy.len());
    ATTRIBUTES
        .iter()
        .enumerate()
        .filter_map(|(order, a)| {
            let values: BTreeSet<&str> = failing
                .iter()
                .map(|n| n.attrs.get(a.key).map_or("", String::as_str))
                .collect();
            if values.contains("") || values.len() > MAX_VALUES {
                return None;
            }
            let matching = healthy
                .iter()
                .filter(|n| n.attrs.get(a.key).is_some_and(|v| values.contains(v.as_str())))
                .count();
            (matching <= allowed && matching < failing.len()).then_some((matching, values.len(), order, *a, values))
        })
        .min_by_key(|(matching, n, order, _, _)| (*matching, *n, *order))
        .map(|(matching, _, _, a, values)| (a, values.into_iter().map(str::to_string).collect(), matching))
}

/// The first failing node by its `since`, that `since`, the latest `since`,
/// and whether any of them is "at least".
fn since_of(failing: &[&NodeView], target: &str) -> (Option<String>, Option<String>, Option<String>, bool) {
    let mut seen: Vec<(&str, &str, bool)> = failing
        .iter()
        .filter_map(|n| {
            let t = n.targets.iter().find(|t| &*t.name == target)?;
            Some((t.since.as_deref()?, n.node.as_str(), t.since_at_least))
        })
        .collect();
    // RFC 3339 in UTC with the same precision orders as text.
    seen.sort();
    let at_least = seen.iter().any(|s| s.2);
    match (seen.first(), seen.last()) {
        (Some(first), Some(last)) => (
            Some(first.1.to_string()),
            Some(first.0.to_string()),
            Some(last.0.to_string()),
            at_least,
        ),
        _ => (None, None, None, at_least),
    }
}

/// "14:02" of an RFC 3339 time.
fn clock(t: &str) -> &str {
    t.get(11..16).unwrap_or(t)
}

fn text(e: &Explanation, attribute: Option<Attribute>) -> String {
    let head = format!("{} [{}]", e.target, e.cause);
    let mut s = match attribute {
        _ if e.healthy == 0 => format!(
            "{head} fails on every node that reports it ({}): not a property of some nodes; the cluster's network \
             or the resource itself",
            e.failing
        ),
        Some(a) => {
            let others = match e.healthy_matching {
                0 => format!("on none of the {} healthy ones", e.healthy),
                n => format!("on {n} of the {} healthy ones", e.healthy),
            };
            format!(
                "{head} fails on {} node(s) of {} {} and {others}: {}",
                e.failing,
                a.shown,
                e.values.join(" or "),
                a.hint
            )
        }
        None => format!(
            "{head} fails on {} of {} nodes, and no node attribute (pool, subnet, zone, node image, kubelet, VM size, \
             OS, mode) sets them apart: scattered failures, a flapping path or each node's own state (its \
             resolv.conf, a DNS cache, conntrack)",
            e.failing,
            e.failing + e.healthy
        ),
    };
    if let (Some(node), Some(first), Some(all)) = (&e.first_node, &e.first_since, &e.all_since) {
        let at_least = if e.since_at_least {
            " (at least: an agent restarted)"
        } else {
            ""
        };
        s.push_str(&format!(
            "; first seen on {node} at {} UTC, on {} node(s) by {} UTC{at_least}",
            clock(first),
            e.failing,
            clock(all)
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::NodeTarget;

    /// A node with these attributes where `kv` is healthy or fails with `cause`.
    fn node(name: &str, attrs: &[(&str, &str)], kv: Option<Cause>, since: &str) -> NodeView {
        NodeView {
            node: name.into(),
            pod: Some(format!("netprobe-{name}")),
            healthy: kv.is_none(),
            state: AgentState::Ok,
            detail: None,
            targets: vec![NodeTarget {
                name: "kv".into(),
                fqdn: "kv.vault.azure.net".into(),
                healthy: kv.is_none(),
                cause: kv.unwrap_or(Cause::None),
                since: Some(since.into()),
                since_at_least: false,
            }],
            differs: Vec::new(),
            attrs: attrs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    const BLOCKED: Option<Cause> = Some(Cause::EndpointBlocked);

    /// `n` nodes of pool `pool` in zones 1..3, image `image`.
    fn pool(pool: &str, n: usize, image: &str, kv: Option<Cause>, since: &str) -> Vec<NodeView> {
        (0..n)
            .map(|i| {
                let zone = format!("westeurope-{}", i % 3 + 1);
                node(
                    &format!("aks-{pool}-{i}"),
                    &[
                        ("pool", pool),
                        ("zone", &zone),
                        ("node_image", image),
                        ("vm_size", "Standard_D4s_v5"),
                    ],
                    kv,
                    since,
                )
            })
            .collect()
    }

    fn one(nodes: &[NodeView]) -> Explanation {
        let e = explain(nodes);
        assert_eq!(e.len(), 1, "{e:?}");
        e.into_iter().next().unwrap()
    }

    const OLD: &str = "AKSUbuntu-2204gen2containerd-202611.15.0";
    const NEW: &str = "AKSUbuntu-2204gen2containerd-202612.01.0";

    #[test]
    fn a_pool_explains_its_nodes() {
        let mut nodes = pool("gpu", 12, OLD, BLOCKED, "2026-12-07T14:02:10Z");
        nodes[3].targets[0].since = Some("2026-12-07T14:01:55Z".into());
        nodes[7].targets[0].since = Some("2026-12-07T14:04:30Z".into());
        nodes.extend(pool("system", 30, OLD, None, "2026-12-07T09:00:00Z"));
        let e = one(&nodes);
        assert_eq!(
            (e.attribute.as_deref(), e.values.clone(), e.healthy_matching),
            (Some("pool"), vec!["gpu".to_string()], 0)
        );
        assert_eq!(
            e.text,
            "kv [endpoint_blocked] fails on 12 node(s) of pool gpu and on none of the 30 healthy ones: what the pool \
             has of its own: its subnet, that subnet's NSG and route table (UDR); first seen on aks-gpu-3 at 14:01 \
             UTC, on 12 node(s) by 14:04 UTC"
        );
    }

    #[test]
    fn a_zone_an_image_and_noise() {
        // Zone 2 of both pools fails.
        let mut nodes: Vec<NodeView> = pool("a", 9, OLD, None, "t")
            .into_iter()
            .chain(pool("b", 9, OLD, None, "t"))
            .collect();
        for n in nodes.iter_mut().filter(|n| n.attrs["zone"] == "westeurope-2") {
            n.targets[0].healthy = false;
            n.targets[0].cause = Cause::EndpointBlocked;
        }
        let e = one(&nodes);
        assert_eq!(
            (e.attribute.as_deref(), e.values.clone()),
            (Some("zone"), vec!["westeurope-2".to_string()])
        );
        assert!(e.text.contains("something zonal"), "{}", e.text);
        // Three upgraded nodes fail; one of 30 with the old image flaps too (noise).
        let mut nodes = pool("user", 3, NEW, BLOCKED, "t");
        nodes.extend(pool("user", 30, OLD, None, "t").into_iter().map(|mut n| {
            n.node.push_str("-old");
            n
        }));
        nodes[5].attrs.insert("node_image".into(), NEW.into());
        let e = one(&nodes);
        assert_eq!(
            (e.attribute.as_deref(), e.healthy_matching),
            (Some("node_image"), 1),
            "{e:?}"
        );
        assert!(
            e.text
                .contains(&format!("node image {NEW} and on 1 of the 30 healthy ones")),
            "{}",
            e.text
        );
    }

    #[test]
    fn no_attribute_and_every_node() {
        // Mixed: one node in each pool and zone.
        let mut nodes: Vec<NodeView> = pool("a", 6, OLD, None, "t")
            .into_iter()
            .chain(pool("b", 6, OLD, None, "t"))
            .collect();
        for i in [0, 7] {
            nodes[i].targets[0].healthy = false;
            nodes[i].targets[0].cause = Cause::DnsUnreachable;
        }
        let e = one(&nodes);
        assert_eq!(e.attribute, None);
        assert!(
            e.text.contains("fails on 2 of 12 nodes, and no node attribute"),
            "{}",
            e.text
        );
        // Every node: nothing to correlate.
        let e = one(&pool("a", 4, OLD, BLOCKED, "t"));
        assert!(e.text.contains("fails on every node that reports it (4)"), "{}", e.text);
        // An attribute no failing node has is no explanation.
        let mut nodes = pool("a", 3, OLD, BLOCKED, "t");
        nodes.extend(pool("b", 3, OLD, None, "t"));
        for n in &mut nodes {
            n.attrs.remove("pool");
        }
        assert_eq!(one(&nodes).attribute, None);
        // A restarted agent's "since" says "at least".
        let mut nodes = pool("a", 2, OLD, BLOCKED, "2026-12-07T14:02:10Z");
        nodes[1].targets[0].since_at_least = true;
        nodes.extend(pool("b", 2, OLD, None, "t"));
        assert!(one(&nodes).text.ends_with("(at least: an agent restarted)"));
    }

    #[test]
    fn two_pools_or_another_cause() {
        // Two of three pools fail: a set of two values.
        let mut nodes = pool("gpu", 2, OLD, BLOCKED, "t");
        nodes.extend(pool("gpu2", 2, OLD, BLOCKED, "t"));
        nodes.extend(pool("cpu", 4, OLD, None, "t"));
        let e = one(&nodes);
        assert_eq!(e.values, ["gpu", "gpu2"]);
        assert!(e.text.contains("pool gpu or gpu2"), "{}", e.text);
        // Each cause is explained on its own.
        nodes[0].targets[0].cause = Cause::TlsMismatch;
        let e = explain(&nodes);
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].cause, e[0].failing), (Cause::EndpointBlocked, 3));
    }
}
