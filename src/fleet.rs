//! `netprobe report`: the whole cluster at once. Lists the agent pods through
//! the API server, reads each one's `/status` through the API server's pod
//! proxy, and builds a nodes × targets view: per target how many nodes fail
//! and with which causes, per node what differs from the rest, and the
//! agents that are not ready, unreachable, stale or missing.
//!
//! `collect` does the I/O (bounded concurrency, a timeout per request, one
//! unreachable pod is reported, never fatal); `build` is pure and
//! table-tested on recorded answers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Client;
use serde::Serialize;

use crate::model::{Cause, string_enum};
use crate::report::{RoundReport, RoundSummary, TargetSummary};

mod correlate;
pub use crate::cluster::node_attributes;
pub use correlate::{ATTRIBUTES, Explanation, explain};

/// What `netprobe report` reads, and how.
#[derive(Clone, Debug)]
pub struct FleetOptions {
    pub namespace: String,
    pub selector: String,
    pub port: u16,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Per request.
    pub timeout: Duration,
    /// A last round older than this is stale.
    pub stale_after: Duration,
    /// The whole read: agents not read by then are reported as such.
    pub deadline: Duration,
    /// Nodes whose agent's full `/status` is read too (`--node`).
    pub full: Vec<String>,
    /// Show progress on standard error (a terminal).
    pub progress: bool,
}

impl Default for FleetOptions {
    fn default() -> Self {
        FleetOptions {
            namespace: "netprobe".into(),
            selector: AGENT_SELECTOR.into(),
            port: crate::config::DEFAULT_PORT,
            concurrency: 16,
            timeout: Duration::from_secs(10),
            stale_after: Duration::from_secs(300),
            deadline: Duration::from_secs(120),
            full: Vec::new(),
            progress: false,
        }
    }
}

string_enum! {
    /// An agent's state as the report sees it.
    AgentState {
        Ok => "ok",
        /// The pod is not Ready (starting, crash-looping).
        NotReady => "not_ready",
        /// Its `/status` could not be read through the API server.
        Unreachable => "unreachable",
        /// Its last round is older than `stale_after`.
        Stale => "stale",
        /// A Linux node without an agent pod.
        Missing => "missing",
    }
}

/// The agents' pods: the DaemonSet's, not a one-shot Job's or a Helm test's.
pub const AGENT_SELECTOR: &str = "app.kubernetes.io/name=netprobe,app.kubernetes.io/component=agent";

/// The most of one agent's `/status` read; a larger body is an error on that
/// node, not memory spent by the operator's `report`.
pub const MAX_STATUS_BYTES: usize = 16 << 20;

/// The most of one agent's `/status/summary` read (about 200 bytes a target).
pub const MAX_SUMMARY_BYTES: usize = 1 << 20;

/// One target on one node (from the agent's summary). The names are shared
/// by every node with the same target list (5,000 nodes x 20 targets are
/// 100,000 of these).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeTarget {
    pub name: Arc<str>,
    pub fqdn: Arc<str>,
    pub healthy: bool,
    pub cause: Cause,
    /// When its state began on this node (the agent's `since`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub since_at_least: bool,
}

/// A target list as an agent spelled it (`?targets=all`): `(name, fqdn)`,
/// shown to a person, so control characters escaped (no terminal escape
/// sequences, no forged lines) and cut; shared by every node that has it.
pub type TargetNames = Arc<[(Arc<str>, Arc<str>)]>;

/// An agent's `(name, fqdn)` list, made fit to show and shareable.
pub fn target_names(list: &[(String, String)]) -> TargetNames {
    list.iter()
        .map(|(n, f)| {
            (
                Arc::from(crate::text::shown(n, 128)),
                Arc::from(crate::text::shown(f, 253)),
            )
        })
        .collect()
}

/// A node's targets: every one of `names` (healthy unless the summary lists
/// it failing), or, without the list, the failing ones only.
fn node_targets(s: &RoundSummary, names: Option<&TargetNames>) -> Vec<NodeTarget> {
    let failing = |t: &TargetSummary, name: Arc<str>, fqdn: Arc<str>| NodeTarget {
        name,
        fqdn,
        healthy: false,
        cause: t.cause,
        since: t.since.as_deref().map(|x| crate::text::shown(x, 40)),
        since_at_least: t.since_at_least,
    };
    match names {
        Some(list) => list
            .iter()
            .map(|(name, fqdn)| {
                let shown = |t: &&TargetSummary| crate::text::shown(&t.name, 128) == **name;
                match s.failing.iter().find(shown) {
                    Some(t) => failing(t, name.clone(), fqdn.clone()),
                    None => NodeTarget {
                        name: name.clone(),
                        fqdn: fqdn.clone(),
                        healthy: true,
                        cause: Cause::None,
                        since: None,
                        since_at_least: false,
                    },
                }
            })
            .collect(),
        None => s
            .failing
            .iter()
            .map(|t| failing(t, Arc::from(crate::text::shown(&t.name, 128)), Arc::from("")))
            .collect(),
    }
}

/// One node's agent and what it last saw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeView {
    pub node: String,
    pub pod: Option<String>,
    pub healthy: bool,
    pub state: AgentState,
    /// Why the state is not `ok`.
    pub detail: Option<String>,
    pub targets: Vec<NodeTarget>,
    /// Targets that fail here but pass on most nodes that report them.
    pub differs: Vec<String>,
    /// The Node's attributes the report correlates (pool, zone, node
    /// image, ...; `fleet::ATTRIBUTES`).
    pub attrs: BTreeMap<String, String>,
}

/// A Linux node as listed: its name and attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSeen {
    pub name: String,
    pub attrs: BTreeMap<String, String>,
}

/// One target across the nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TargetView {
    pub name: String,
    pub fqdn: String,
    pub failing_nodes: usize,
    pub total_nodes: usize,
    pub causes: BTreeMap<String, usize>,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct FleetReport {
    pub healthy: bool,
    /// Why these nodes: per failing target and cause, the node attribute
    /// that sets the failing nodes apart, and since when.
    pub explanations: Vec<Explanation>,
    pub nodes: Vec<NodeView>,
    pub targets: Vec<TargetView>,
    /// What could not be checked (e.g. listing nodes was forbidden).
    pub notes: Vec<String>,
    /// The full rounds of the nodes asked for (`--node`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<NodeDetail>,
}

/// One agent pod as found.
#[derive(Clone, Debug)]
pub struct PodSeen {
    pub pod: String,
    pub node: String,
    pub ready: bool,
    /// Its `/status/summary` (the agent's last round, summarised), or why
    /// it could not be read.
    pub status: Result<RoundSummary, String>,
    /// Its target list (shared by the nodes with the same list), when known.
    pub names: Option<TargetNames>,
}

/// The full `/status` of a node asked for by name (`--node`).
#[derive(Clone, Debug, Serialize)]
pub struct NodeDetail {
    pub node: String,
    /// The agent's last round (`/status`), when read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<RoundReport>,
    /// Why it could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `netprobe report` could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("cannot list the agent pods in namespace {namespace} (selector {selector}): {message}")]
    ListPods {
        namespace: String,
        selector: String,
        message: String,
    },
}

/// Builds the report from what was found: pure.
pub fn build(
    pods: &[PodSeen],
    linux_nodes: Option<&[NodeSeen]>,
    now: SystemTime,
    stale_after: Duration,
) -> FleetReport {
    let mut nodes: Vec<NodeView> = pods.iter().map(|p| node_view(p, now, stale_after)).collect();
    let mut notes = Vec::new();
    match linux_nodes {
        Some(all) => {
            let with_agent: BTreeSet<&str> = pods.iter().map(|p| p.node.as_str()).collect();
            for n in &mut nodes {
                if let Some(seen) = all.iter().find(|s| s.name == n.node && !s.attrs.is_empty()) {
                    n.attrs = seen.attrs.clone();
                }
            }
            for n in all.iter().filter(|n| !with_agent.contains(n.name.as_str())) {
                nodes.push(NodeView {
                    node: n.name.clone(),
                    pod: None,
                    healthy: false,
                    state: AgentState::Missing,
                    detail: Some("no netprobe pod on this Linux node".into()),
                    targets: Vec::new(),
                    differs: Vec::new(),
                    attrs: n.attrs.clone(),
                });
            }
        }
        None => notes.push("nodes could not be listed: agents missing from a node are not reported".into()),
    }
    nodes.sort_by(|a, b| a.node.cmp(&b.node));
    let targets = target_views(&nodes);
    for n in &mut nodes {
        n.differs = n
            .targets
            .iter()
            .filter(|t| !t.healthy)
            .filter(|t| {
                targets
                    .iter()
                    .find(|v| *v.name == *t.name)
                    .is_some_and(|v| 2 * v.failing_nodes < v.total_nodes)
            })
            .map(|t| t.name.to_string())
            .collect();
    }
    FleetReport {
        healthy: nodes.iter().all(|n| n.healthy),
        explanations: explain(&nodes),
        nodes,
        targets,
        notes,
        details: Vec::new(),
    }
}

fn node_view(p: &PodSeen, now: SystemTime, stale_after: Duration) -> NodeView {
    let (state, detail, targets) = match (&p.status, p.ready) {
        (Err(why), false) => (AgentState::NotReady, Some(format!("pod not ready; {why}")), Vec::new()),
        (Err(why), true) => (AgentState::Unreachable, Some(why.clone()), Vec::new()),
        (Ok(s), ready) => {
            let seen = node_targets(s, p.names.as_ref());
            let age = humantime::parse_rfc3339_weak(&s.started_at)
                .ok()
                .and_then(|t| now.duration_since(t).ok());
            match age {
                Some(a) if a > stale_after => (
                    AgentState::Stale,
                    Some(format!(
                        "last round {} ago",
                        humantime::format_duration(Duration::from_secs(a.as_secs()))
                    )),
                    seen,
                ),
                _ if !ready => (AgentState::NotReady, Some("pod not ready".into()), seen),
                _ => (AgentState::Ok, None, seen),
            }
        }
    };
    // The agent's own Node attributes; the Nodes' labels, when listed, win.
    let attrs = p
        .status
        .as_ref()
        .map(|s| {
            s.node
                .iter()
                .map(|(k, v)| (crate::text::shown(k, 40), crate::text::shown(v, 80)))
                .collect()
        })
        .unwrap_or_default();
    NodeView {
        node: p.node.clone(),
        pod: Some(p.pod.clone()),
        healthy: state == AgentState::Ok && targets.iter().all(|t| t.healthy),
        state,
        detail,
        targets,
        differs: Vec::new(),
        attrs,
    }
}

fn target_views(nodes: &[NodeView]) -> Vec<TargetView> {
    let mut by_name: BTreeMap<&str, TargetView> = BTreeMap::new();
    for t in nodes.iter().flat_map(|n| &n.targets) {
        let v = by_name.entry(&t.name).or_insert_with(|| TargetView {
            name: t.name.to_string(),
            fqdn: t.fqdn.to_string(),
            failing_nodes: 0,
            total_nodes: 0,
            causes: BTreeMap::new(),
        });
        v.total_nodes += 1;
        if !t.healthy {
            v.failing_nodes += 1;
            *v.causes.entry(t.cause.as_str().to_string()).or_insert(0) += 1;
        }
    }
    by_name.into_values().collect()
}

/// An agent pod as listed: its name, its node, Ready.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodRow {
    pub name: String,
    pub node: String,
    pub ready: bool,
}

/// The `Accept` of a list asked as a Table (server-side printing): a row of
/// a few cells per object instead of the object (a real Node is kilobytes of
/// labels, annotations and managed fields). A server that does not print
/// Tables answers the plain list, which is read instead.
pub const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

/// The most of one list read (a plain list of 5,000 real Nodes is tens of MiB).
pub const MAX_LIST_BYTES: usize = 128 << 20;

/// The cells of a Table's rows by column name (`Name`, `Node`, ...), or
/// `None` when the answer is not a Table.
fn table_rows(v: &serde_json::Value, columns: &[&str]) -> Option<Vec<Vec<String>>> {
    if v["kind"] != "Table" {
        return None;
    }
    let names: Vec<&str> = v["columnDefinitions"]
        .as_array()?
        .iter()
        .map(|c| c["name"].as_str().unwrap_or(""))
        .collect();
    let at: Vec<Option<usize>> = columns.iter().map(|c| names.iter().position(|n| n == c)).collect();
    let cell = |cells: &serde_json::Value, i: Option<usize>| match i.map(|i| &cells[i]) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) if !other.is_null() => other.to_string(),
        _ => String::new(),
    };
    Some(
        v["rows"]
            .as_array()?
            .iter()
            .map(|r| at.iter().map(|i| cell(&r["cells"], *i)).collect())
            .collect(),
    )
}

/// The agent pods, as a Table (name, Ready `n/m`, status, node) or, from a
/// server that does not print Tables, as the plain list. A finished pod (a
/// Job's, a Helm test's that matched a broader selector) has no agent.
async fn list_pods(client: &Client, opts: &FleetOptions) -> Result<Vec<PodRow>, String> {
    let path = format!(
        "/api/v1/namespaces/{}/pods?labelSelector={}&includeObject=None",
        opts.namespace,
        crate::text::query_value(&opts.selector)
    );
    let body = read_body(client, &path, Some(TABLE), MAX_LIST_BYTES).await?;
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| format!("not a pod list: {e}"))?;
    if let Some(rows) = table_rows(&v, &["Name", "Ready", "Status", "Node"]) {
        return Ok(rows
            .into_iter()
            .filter(|r| !matches!(r[2].as_str(), "Completed" | "Succeeded" | "Failed" | "Error"))
            .map(|r| {
                let ready = r[1].split_once('/').is_some_and(|(a, b)| a == b && a != "0");
                PodRow {
                    name: r[0].clone(),
                    node: r[3].clone(),
                    ready,
                }
            })
            .collect());
    }
    let list: k8s_openapi::List<Pod> = serde_json::from_value(v).map_err(|e| format!("not a pod list: {e}"))?;
    Ok(list
        .items
        .iter()
        .filter(|p| !pod_finished(p))
        .map(|p| PodRow {
            name: p.metadata.name.clone().unwrap_or_default(),
            node: p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default(),
            ready: pod_ready(p),
        })
        .collect())
}

/// The Linux nodes: names from a Table (their attributes then come from
/// the agents' summaries), or names and attributes from the plain list.
async fn list_nodes(client: &Client, opts: &FleetOptions) -> Option<Vec<NodeSeen>> {
    let path = format!(
        "/api/v1/nodes?labelSelector={}&includeObject=None",
        crate::text::query_value("kubernetes.io/os=linux")
    );
    let body = tokio::time::timeout(opts.timeout, read_body(client, &path, Some(TABLE), MAX_LIST_BYTES))
        .await
        .ok()?
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
    if let Some(rows) = table_rows(&v, &["Name"]) {
        return Some(
            rows.into_iter()
                .map(|r| NodeSeen {
                    name: r[0].clone(),
                    attrs: BTreeMap::new(),
                })
                .collect(),
        );
    }
    let list: k8s_openapi::List<Node> = serde_json::from_value(v).ok()?;
    Some(
        list.items
            .iter()
            .filter_map(|n| {
                Some(NodeSeen {
                    name: n.metadata.name.clone()?,
                    attrs: node_attributes(n),
                })
            })
            .collect(),
    )
}

fn pod_finished(p: &Pod) -> bool {
    let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
    matches!(phase, Some("Succeeded" | "Failed"))
}

fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// What `collect` found: the agents, the Linux nodes (when they could be
/// listed), and what could not be read (notes for the report).
pub type Collected = (Vec<PodSeen>, Option<Vec<NodeSeen>>, Vec<String>);

/// Lists the agents and reads each one's summary, `opts.concurrency` at a
/// time, each within `opts.timeout`; lists the Linux nodes.
pub async fn collect(client: &Client, opts: &FleetOptions) -> Result<Collected, FleetError> {
    let running = tokio::time::timeout(opts.timeout, list_pods(client, opts))
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
        .map_err(|message| FleetError::ListPods {
            namespace: opts.namespace.clone(),
            selector: opts.selector.clone(),
            message,
        })?;
    let mut found = read_all(client, opts, running).await;
    let notes = fill_names(client, opts, &mut found).await;
    let linux = list_nodes(client, opts).await;
    Ok((found, linux, notes))
}

/// Every agent's summary, `opts.concurrency` at a time, within
/// `opts.deadline` in all: an agent not read by then is reported as such.
/// With `opts.progress`, a count on standard error as they come.
async fn read_all(client: &Client, opts: &FleetOptions, pods: Vec<PodRow>) -> Vec<PodSeen> {
    let total = pods.len();
    let names: Vec<(String, String, bool)> = pods.into_iter().map(|p| (p.name, p.node, p.ready)).collect();
    let mut found: Vec<PodSeen> = Vec::with_capacity(total);
    let mut stream = futures_util::stream::iter(
        names
            .iter()
            .cloned()
            .map(|(pod, node, ready)| read_pod(client, opts, pod, node, ready)),
    )
    .buffer_unordered(opts.concurrency.max(1));
    let deadline = tokio::time::sleep(opts.deadline);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = stream.next() => match next {
                Some(seen) => {
                    found.push(seen);
                    if opts.progress && (found.len().is_multiple_of(50) || found.len() == total) {
                        eprint!("\rreading agents: {}/{total}", found.len());
                    }
                }
                None => break,
            },
            () = &mut deadline => break,
        }
    }
    if opts.progress && total > 0 {
        eprintln!();
    }
    drop(stream);
    let read: BTreeSet<String> = found.iter().map(|p| p.pod.clone()).collect();
    for (pod, node, ready) in names.into_iter().filter(|(p, _, _)| !read.contains(p)) {
        found.push(PodSeen {
            pod,
            node,
            ready,
            names: None,
            status: Err(format!(
                "not read within the report's {} (--deadline)",
                humantime::format_duration(opts.deadline)
            )),
        });
    }
    found
}

async fn read_pod(client: &Client, opts: &FleetOptions, name: String, node: String, ready: bool) -> PodSeen {
    let base = format!(
        "/api/v1/namespaces/{}/pods/{}:{}/proxy",
        opts.namespace, name, opts.port
    );
    let late = || format!("no answer within {}", humantime::format_duration(opts.timeout));
    let status = match tokio::time::timeout(
        opts.timeout,
        read_json::<RoundSummary>(client, &format!("{base}/status/summary"), MAX_SUMMARY_BYTES),
    )
    .await
    {
        Err(_) => Err(late()),
        // An agent older than the summary (the API server's 404 for the
        // path): its full /status, summarised.
        Ok(Err(Unread { status: Some(404), .. })) => tokio::time::timeout(
            opts.timeout,
            read_json::<RoundReport>(client, &format!("{base}/status"), MAX_STATUS_BYTES),
        )
        .await
        .map_err(|_| late())
        .and_then(|r| r.map_err(String::from))
        .map(|r| RoundSummary::of(&r, true)),
        Ok(result) => result.map_err(String::from),
    };
    // An older agent's full round spells its targets out.
    let names = status
        .as_ref()
        .ok()
        .filter(|s| !s.targets.is_empty())
        .map(|s| target_names(&s.targets));
    PodSeen {
        pod: name,
        node,
        ready,
        status,
        names,
    }
}

/// Each target list's names, asked of one agent per list digest
/// (`?targets=all`, up to three agents if one fails), then shared by every
/// node with that digest. A digest no agent spelled out leaves its nodes
/// with their failing targets only (a note says so).
async fn fill_names(client: &Client, opts: &FleetOptions, pods: &mut [PodSeen]) -> Vec<String> {
    let mut known: BTreeMap<String, TargetNames> = BTreeMap::new();
    for p in pods.iter() {
        if let (Ok(s), Some(n)) = (&p.status, &p.names) {
            known.entry(s.target_set.clone()).or_insert_with(|| n.clone());
        }
    }
    let sets: Vec<String> = pods
        .iter()
        .filter_map(|p| p.status.as_ref().ok())
        .map(|s| s.target_set.clone())
        .filter(|s| !known.contains_key(s))
        .collect::<BTreeSet<String>>()
        .into_iter()
        .collect();
    let mut notes = Vec::new();
    for set in sets {
        let askable: Vec<&PodSeen> = pods
            .iter()
            .filter(|p| p.status.as_ref().is_ok_and(|s| s.target_set == set))
            .take(3)
            .collect();
        let mut got = None;
        for p in askable {
            let path = format!(
                "/api/v1/namespaces/{}/pods/{}:{}/proxy/status/summary?targets=all",
                opts.namespace, p.pod, opts.port
            );
            if let Ok(Ok(s)) = tokio::time::timeout(
                opts.timeout,
                read_json::<RoundSummary>(client, &path, MAX_SUMMARY_BYTES),
            )
            .await
                && s.target_set == set
            {
                got = Some(target_names(&s.targets));
                break;
            }
        }
        match got {
            Some(n) => {
                known.insert(set, n);
            }
            None => notes.push(format!(
                "no agent spelled out its target list {set}: its nodes show their failing targets only"
            )),
        }
    }
    for p in pods.iter_mut() {
        if let Ok(s) = &p.status {
            p.names = known.get(&s.target_set).cloned();
        }
    }
    notes
}

/// The full `/status` of each node in `opts.full` (`--node`).
pub async fn read_details(client: &Client, opts: &FleetOptions, pods: &[PodSeen]) -> Vec<NodeDetail> {
    let mut out = Vec::new();
    for node in &opts.full {
        let status = match pods.iter().find(|p| &p.node == node) {
            None => Err(format!("no netprobe agent pod on node {node}")),
            Some(p) => {
                let path = format!(
                    "/api/v1/namespaces/{}/pods/{}:{}/proxy/status",
                    opts.namespace, p.pod, opts.port
                );
                tokio::time::timeout(opts.timeout, read_json::<RoundReport>(client, &path, MAX_STATUS_BYTES))
                    .await
                    .map_err(|_| format!("no answer within {}", humantime::format_duration(opts.timeout)))
                    .and_then(|r| r.map_err(String::from))
            }
        };
        let (report, error) = match status {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(e)),
        };
        out.push(NodeDetail {
            node: node.clone(),
            report,
            error,
        });
    }
    out
}

/// A GET through the API server that gave no usable body: the status the
/// API server answered, when it answered one, and why, in a person's words.
#[derive(Debug)]
struct Unread {
    status: Option<u16>,
    why: String,
}

impl From<Unread> for String {
    fn from(u: Unread) -> String {
        u.why
    }
}

impl Unread {
    fn why(why: String) -> Unread {
        Unread { status: None, why }
    }
}

/// One agent document through the API server's pod proxy, read up to
/// `max` bytes.
async fn read_json<T: serde::de::DeserializeOwned>(client: &Client, path: &str, max: usize) -> Result<T, Unread> {
    let body = read_body(client, path, None, max).await?;
    serde_json::from_slice::<T>(&body).map_err(|e| {
        Unread::why(format!(
            "/status is not a netprobe report: {}",
            crate::text::shown(&e.to_string(), 200)
        ))
    })
}

/// A GET through the API server (with `accept`, if given), its body read up
/// to `max` bytes; an error status in the words of `kube_message`.
async fn read_body(client: &Client, path: &str, accept: Option<&str>, max: usize) -> Result<bytes::Bytes, Unread> {
    use http_body_util::BodyExt;
    let mut req = hyper::Request::get(path);
    if let Some(a) = accept {
        req = req.header(hyper::header::ACCEPT, a);
    }
    let req = req
        .body(kube::client::Body::empty())
        .map_err(|e| Unread::why(e.to_string()))?;
    let through = |e: &kube::Error| {
        Unread::why(format!(
            "reading /status through the API server: {}",
            crate::cluster::kube_message(e)
        ))
    };
    let response = client.send(req).await.map_err(|e| through(&e))?;
    let status = response.status();
    let body = http_body_util::Limited::new(response.into_body(), max)
        .collect()
        .await
        .map_err(|e| {
            Unread::why(match e.downcast_ref::<http_body_util::LengthLimitError>() {
                Some(_) if max >= 1 << 20 => format!("/status is larger than {} MiB", max >> 20),
                Some(_) => format!("/status is larger than {} KiB", max >> 10),
                None => format!("reading /status through the API server: {e}"),
            })
        })?
        .to_bytes();
    if !status.is_success() {
        // A Kubernetes Status object, in the words of `kube_message`, its
        // parts from the API server's proxy escaped and cut.
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let reason = crate::text::shown(v["reason"].as_str().unwrap_or(""), 64);
        let message = v["message"]
            .as_str()
            .filter(|m| !m.is_empty())
            .map(crate::service::first_line)
            .unwrap_or_default();
        return Err(Unread {
            status: Some(status.as_u16()),
            why: format!(
                "reading /status through the API server: {}",
                crate::cluster::status_message(status.as_u16(), &reason, &message)
            ),
        });
    }
    Ok(body)
}

/// The report for a person: targets first (how many nodes fail each, and
/// why), then the nodes that are not fine and what differs on them.
/// [`human`], then every node with its pod and state (`-o wide`).
pub fn wide(r: &FleetReport) -> String {
    use std::fmt::Write;
    let mut s = human(r);
    let _ = writeln!(
        s,
        "\nNODE                                     POD                              STATE    FAILING"
    );
    for n in &r.nodes {
        let failing = n.targets.iter().filter(|t| !t.healthy).count();
        let _ = writeln!(
            s,
            "{:<40} {:<32} {:<8} {failing}",
            n.node,
            n.pod.as_deref().unwrap_or("-"),
            n.state.to_string()
        );
    }
    s
}

pub fn human(r: &FleetReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let answered = r
        .nodes
        .iter()
        .filter(|n| matches!(n.state, AgentState::Ok | AgentState::Stale))
        .count();
    let failing_nodes = r.nodes.iter().filter(|n| n.targets.iter().any(|t| !t.healthy)).count();
    let _ = writeln!(
        s,
        "netprobe report: {} nodes; {answered} agents answered, {failing_nodes} of their nodes see failures; {} targets",
        r.nodes.len(),
        r.targets.len()
    );
    why_these_nodes(&mut s, r);
    let _ = writeln!(s, "\nTARGET                                   FAILING  CAUSES");
    for t in &r.targets {
        let causes: Vec<String> = t.causes.iter().map(|(c, n)| format!("{c} ({n})")).collect();
        let _ = writeln!(
            s,
            "{:<40} {:>3}/{:<4} {}",
            t.name,
            t.failing_nodes,
            t.total_nodes,
            if causes.is_empty() {
                "-".into()
            } else {
                causes.join(", ")
            }
        );
    }
    nodes_by_problem(&mut s, r);
    agents_not_answering(&mut s, r);
    for note in &r.notes {
        let _ = writeln!(s, "\nnote: {note}");
    }
    for d in &r.details {
        let _ = writeln!(s, "\n=== node {} (--node): its agent's last round ===", d.node);
        match (&d.report, &d.error) {
            (Some(report), _) => s.push_str(&crate::render::human::render(report)),
            (None, e) => {
                let _ = writeln!(s, "not read: {}", e.as_deref().unwrap_or("unknown"));
            }
        }
    }
    s
}

/// The explanations that single nodes out first, one each; the failures
/// every node shares in one line.
fn why_these_nodes(s: &mut String, r: &FleetReport) {
    use std::fmt::Write;
    let (everywhere, some): (Vec<&Explanation>, Vec<&Explanation>) =
        r.explanations.iter().partition(|e| e.healthy == 0);
    if r.explanations.is_empty() {
        return;
    }
    let _ = writeln!(s, "\nWHY THESE NODES");
    let mut say = |text: &str| {
        for (i, line) in crate::render::human::wrap(text, 96).iter().enumerate() {
            let _ = writeln!(s, "{}{line}", if i == 0 { "  " } else { "    " });
        }
    };
    for e in some {
        say(&e.text);
    }
    if !everywhere.is_empty() {
        let list: Vec<String> = everywhere
            .iter()
            .map(|e| format!("{} [{}]", e.target, e.cause))
            .collect();
        say(&format!(
            "on every node that reports them: {}: not a property of some nodes; the cluster's network or the \
             resources themselves",
            list.join(", ")
        ));
    }
}

/// The nodes whose agents answered, grouped by the failures they share: one
/// line per group with a few names, not one block per node; what every one
/// of them sees is said once.
fn nodes_by_problem(s: &mut String, r: &FleetReport) {
    use std::fmt::Write;
    let failing = |n: &NodeView| -> Vec<String> {
        n.targets
            .iter()
            .filter(|t| !t.healthy)
            .map(|t| format!("{} [{}]", t.name, t.cause))
            .collect()
    };
    let answered: Vec<&NodeView> = r.nodes.iter().filter(|n| !n.targets.is_empty()).collect();
    let common: Vec<String> = answered.first().map_or_else(Vec::new, |first| {
        failing(first)
            .into_iter()
            .filter(|f| answered.iter().all(|n| failing(n).contains(f)))
            .collect()
    });
    let mut groups: BTreeMap<Vec<String>, Vec<&str>> = BTreeMap::new();
    for n in &answered {
        let rest: Vec<String> = failing(n).into_iter().filter(|f| !common.contains(f)).collect();
        if !rest.is_empty() {
            groups.entry(rest).or_default().push(n.node.as_str());
        }
    }
    if groups.is_empty() && common.is_empty() {
        return;
    }
    let mut groups: Vec<(Vec<String>, Vec<&str>)> = groups.into_iter().collect();
    groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
    let _ = writeln!(s, "\nNODES BY PROBLEM (what their agents see)");
    if !common.is_empty() {
        let _ = writeln!(s, "  all {} node(s): {}", answered.len(), common.join(", "));
    }
    for (failing, nodes) in groups {
        let also = if common.is_empty() { "" } else { "also " };
        let _ = writeln!(s, "  {} node(s) {also}fail: {}", nodes.len(), failing.join(", "));
        let _ = writeln!(s, "    {}", few(&nodes));
    }
}

/// Agents that did not answer, or answered late: the state of the agent,
/// not of the node, whose health is then unknown.
fn agents_not_answering(s: &mut String, r: &FleetReport) {
    use std::fmt::Write;
    let not_ok: Vec<&NodeView> = r.nodes.iter().filter(|n| n.state != AgentState::Ok).collect();
    if not_ok.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\nAGENTS NOT OK (the agent's state; the node's health is unknown or old)"
    );
    for state in AgentState::ALL.iter().filter(|a| **a != AgentState::Ok) {
        let these: Vec<&&NodeView> = not_ok.iter().filter(|n| n.state == *state).collect();
        if these.is_empty() {
            continue;
        }
        let _ = writeln!(s, "  {state} ({}):", these.len());
        for n in these.iter().take(FEW) {
            let detail = n.detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default();
            let _ = writeln!(s, "    {}{detail}", n.node);
        }
        if these.len() > FEW {
            let _ = writeln!(s, "    and {} more (-o wide lists every node)", these.len() - FEW);
        }
    }
}

/// How many node names a group lists.
const FEW: usize = 6;

/// "a, b, c and 9 more".
fn few(names: &[&str]) -> String {
    if names.len() <= FEW {
        return names.join(", ");
    }
    format!("{} and {} more", names[..FEW].join(", "), names.len() - FEW)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Reach;
    use crate::report::TargetReport;
    use crate::service::{Service, Target};
    use crate::verdict::{CauseFinding, Diagnosis};

    /// A Table as the API server prints pods (`kubectl get pods -o wide`'s
    /// columns), read by column name; a plain list is no Table.
    #[test]
    fn tables_are_read_by_column_name() {
        let v: serde_json::Value = serde_json::from_str(
            r#"{"kind":"Table","apiVersion":"meta.k8s.io/v1","columnDefinitions":[
                {"name":"Name","type":"string"},{"name":"Ready","type":"string"},{"name":"Status","type":"string"},
                {"name":"Restarts","type":"string"},{"name":"Age","type":"string"},{"name":"IP","type":"string"},
                {"name":"Node","type":"string"},{"name":"Nominated Node","type":"string"}],
              "rows":[{"cells":["netprobe-7xk2p","1/1","Running","0","3d","10.244.1.5","aks-nodepool1-0","<none>"]},
                      {"cells":["netprobe-b9rq4","0/1","CrashLoopBackOff",7,"3d","10.244.2.4","aks-nodepool1-1","<none>"]}]}"#,
        )
        .unwrap();
        let rows = table_rows(&v, &["Name", "Ready", "Node", "Missing"]).unwrap();
        assert_eq!(rows[0], ["netprobe-7xk2p", "1/1", "aks-nodepool1-0", ""]);
        assert_eq!(rows[1][1], "0/1");
        assert!(table_rows(&serde_json::json!({"kind": "PodList", "items": []}), &["Name"]).is_none());
        assert_eq!(
            crate::text::query_value("app.kubernetes.io/name=netprobe,x"),
            "app.kubernetes.io%2Fname%3Dnetprobe%2Cx"
        );
    }

    /// An agent's report with these (target, healthy, cause) rows.
    fn status(started: &str, targets: &[(&str, bool, &str)]) -> Result<RoundReport, String> {
        let config = crate::config::Config::from_yaml("key_vaults: [kvone]\n", "t.yaml", None).unwrap();
        let mut report = RoundReport::new(&config, std::time::UNIX_EPOCH, Duration::ZERO, &[], vec![]);
        report.started_at = started.into();
        report.targets = targets
            .iter()
            .map(|(n, h, c)| {
                let cause = *Cause::ALL.iter().find(|x| x.as_str() == *c).unwrap();
                let diagnosis = Diagnosis {
                    causes: (!h)
                        .then(|| CauseFinding {
                            cause,
                            resolver: None,
                            diagnosis: "why".into(),
                        })
                        .into_iter()
                        .collect(),
                };
                let target = Target::derived(n.to_string(), format!("{n}.example"), Service::Custom, "z".into());
                TargetReport::new(&target, &[], &[], &[], &[], Reach::Skipped, None, diagnosis)
            })
            .collect();
        Ok(report)
    }

    fn pod(node: &str, ready: bool, status: Result<RoundReport, String>) -> PodSeen {
        PodSeen {
            pod: format!("netprobe-{node}"),
            node: node.into(),
            ready,
            names: status.as_ref().ok().map(|r| {
                target_names(
                    &r.targets
                        .iter()
                        .map(|t| (t.name.clone(), t.fqdn.clone()))
                        .collect::<Vec<_>>(),
                )
            }),
            status: status.map(|r| RoundSummary::of(&r, false)),
        }
    }

    #[test]
    fn nodes_by_targets_with_what_differs_and_every_agent_state() {
        let now = humantime::parse_rfc3339("2026-11-28T08:00:00Z").unwrap();
        let fresh = "2026-11-28T07:59:40.000Z";
        let pods = vec![
            pod(
                "n1",
                true,
                status(fresh, &[("kv", true, "none"), ("acr", true, "none")]),
            ),
            pod(
                "n2",
                true,
                status(fresh, &[("kv", true, "none"), ("acr", false, "endpoint_blocked")]),
            ),
            pod(
                "n3",
                true,
                status(fresh, &[("kv", true, "none"), ("acr", true, "none")]),
            ),
            pod(
                "n4",
                true,
                status("2026-11-28T07:00:00Z", &[("kv", true, "none"), ("acr", true, "none")]),
            ),
            pod("n5", true, Err("no answer within 10s".into())),
            pod("n6", false, Err("503".into())),
        ];
        let linux: Vec<NodeSeen> = (1..=7)
            .map(|i| NodeSeen {
                name: format!("n{i}"),
                attrs: BTreeMap::from([("pool".to_string(), if i == 2 { "gpu" } else { "cpu" }.to_string())]),
            })
            .collect();
        let r = build(&pods, Some(&linux), now, Duration::from_secs(300));
        let states: Vec<(&str, AgentState)> = r.nodes.iter().map(|n| (n.node.as_str(), n.state)).collect();
        assert_eq!(
            states,
            [
                ("n1", AgentState::Ok),
                ("n2", AgentState::Ok),
                ("n3", AgentState::Ok),
                ("n4", AgentState::Stale),
                ("n5", AgentState::Unreachable),
                ("n6", AgentState::NotReady),
                ("n7", AgentState::Missing),
            ]
        );
        assert!(!r.healthy);
        let acr = r.targets.iter().find(|t| t.name == "acr").unwrap();
        assert_eq!((acr.failing_nodes, acr.total_nodes), (1, 4));
        assert_eq!(acr.causes, BTreeMap::from([("endpoint_blocked".to_string(), 1)]));
        let n2 = r.nodes.iter().find(|n| n.node == "n2").unwrap();
        assert_eq!(n2.differs, ["acr"]);
        assert!(!n2.healthy);
        let text = human(&r);
        assert!(
            text.contains("acr")
                && text.contains("1/4")
                && text.contains("1 node(s) fail: acr [endpoint_blocked]\n    n2\n"),
            "{text}"
        );
        // Why: n2 is the gpu pool's only node.
        assert!(
            text.contains("acr [endpoint_blocked] fails on 1 node(s) of pool gpu and on none of the 3 healthy ones"),
            "{text}"
        );
        // The agents' states apart from the nodes' health.
        assert!(
            text.contains("AGENTS NOT OK") && text.contains("  missing (1):\n    n7: no netprobe pod"),
            "{text}"
        );
        // Without the node list: no `missing`, and a note says so.
        let r = build(&pods, None, now, Duration::from_secs(300));
        assert!(r.nodes.iter().all(|n| n.state != AgentState::Missing));
        assert_eq!(r.notes.len(), 1);
    }

    #[test]
    fn a_failure_on_most_nodes_is_not_a_node_difference() {
        let now = humantime::parse_rfc3339("2026-11-28T08:00:00Z").unwrap();
        let t = "2026-11-28T07:59:59Z";
        let pods: Vec<PodSeen> = (1..=3)
            .map(|i| pod(&format!("n{i}"), true, status(t, &[("kv", false, "zone_not_linked")])))
            .collect();
        let r = build(&pods, None, now, Duration::from_secs(300));
        assert!(r.nodes.iter().all(|n| n.differs.is_empty()));
        assert_eq!(r.targets[0].failing_nodes, 3);
    }
}
