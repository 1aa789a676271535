//! Kubernetes awareness, through the `kube` crate: the pod's own Node (its
//! region and zone), Events on that Node when a target's health changes, and
//! the optional check of the AML inference router Service.
//!
//! Nothing here is required. Outside a cluster, without `NODE_NAME`, or
//! without RBAC, every feature turns into one clear log line and netprobe
//! carries on; `probe --once` works on a laptop.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::{Event, EventSource, Node, ObjectReference, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, PostParams};
use kube::{Client, Error as KubeError};

use crate::model::{EventReason, FindingCode, Layer, ScoringCause};
use crate::report::TargetReport;
pub use crate::report::{Finding, NodeInfo, ScoringServiceReport};
use crate::verdict::is_private;

/// Node label with the Azure region.
pub const REGION_LABEL: &str = "topology.kubernetes.io/region";
/// Node label with the availability zone.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// Annotation that makes an AKS LoadBalancer Service internal.
pub const INTERNAL_LB_ANNOTATION: &str = "service.beta.kubernetes.io/azure-load-balancer-internal";
/// Time allowed for one API call.
pub const API_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an API call did not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("forbidden: the service account may not {what} (RBAC: see deploy/base/rbac.yaml)")]
    Forbidden { what: String },
    #[error("not found: {what}")]
    NotFound { what: String },
    #[error("Kubernetes API error on {what}: {message}")]
    Api { what: String, message: String },
    #[error("Kubernetes API did not answer within {}s on {what}", API_TIMEOUT.as_secs())]
    Timeout { what: String },
}

fn classify(what: &str, e: KubeError) -> ClusterError {
    match &e {
        KubeError::Api(status) if status.code == 403 => ClusterError::Forbidden { what: what.to_string() },
        KubeError::Api(status) if status.code == 404 => ClusterError::NotFound { what: what.to_string() },
        _ => ClusterError::Api {
            what: what.to_string(),
            message: kube_message(&e),
        },
    }
}

/// A Kubernetes client error in words: the API server's status (code,
/// reason, message) rather than the library's debug print of it.
pub fn kube_message(e: &KubeError) -> String {
    match e {
        KubeError::Api(status) => status_message(status.code, &status.reason, &status.message),
        other => with_root_cause(other),
    }
}

/// An error's message and, when its sources say more, the innermost one:
/// "client error (Connect)" says nothing of why; its root, "Connection
/// refused (os error 111)" or "failed to lookup address information", does.
pub fn with_root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let top = e.to_string();
    let mut root = None;
    let mut source = e.source();
    while let Some(s) = source {
        root = Some(s.to_string());
        source = s.source();
    }
    match root {
        Some(r) if !top.contains(&r) => format!("{top}: {r}"),
        _ => top,
    }
}

/// An API server's Status (code, reason, message) in words; an empty reason
/// reads "error", an empty message is left out.
pub fn status_message(code: u16, reason: &str, message: &str) -> String {
    let reason = if reason.is_empty() { "error" } else { reason };
    if message.is_empty() {
        format!("the API server answered {code} {reason}")
    } else {
        format!("the API server answered {code} {reason}: {message}")
    }
}

async fn call<T>(what: &str, fut: impl std::future::Future<Output = Result<T, KubeError>>) -> Result<T, ClusterError> {
    match tokio::time::timeout(API_TIMEOUT, fut).await {
        Err(_) => Err(ClusterError::Timeout { what: what.to_string() }),
        Ok(r) => r.map_err(|e| classify(what, e)),
    }
}

/// A client bound to the Node this pod runs on.
#[derive(Clone)]
pub struct Cluster {
    client: Client,
    node: String,
}

impl Cluster {
    /// Connects with the in-cluster (or kubeconfig) credentials when
    /// `node_name` (the downward API's `NODE_NAME`) is set; otherwise, or on
    /// failure, logs why and returns `None`.
    pub async fn connect(node_name: Option<String>) -> Option<Cluster> {
        let Some(node) = node_name.filter(|n| !n.is_empty()) else {
            tracing::info!("NODE_NAME is not set: not running as a Kubernetes pod; node checks and Events are off");
            return None;
        };
        match tokio::time::timeout(API_TIMEOUT, Client::try_default()).await {
            Ok(Ok(client)) => Some(Cluster { client, node }),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "no Kubernetes API access; node checks and Events are off");
                None
            }
            Err(_) => {
                tracing::warn!("Kubernetes client setup timed out; node checks and Events are off");
                None
            }
        }
    }

    /// A cluster over a given client (tests pass a mocked one).
    pub fn from_client(client: Client, node: impl Into<String>) -> Cluster {
        Cluster {
            client,
            node: node.into(),
        }
    }

    /// Reads the pod's own Node.
    pub async fn node_info(&self) -> Result<NodeInfo, ClusterError> {
        let api: Api<Node> = Api::all(self.client.clone());
        let what = format!("get node {}", self.node);
        let node = call(&what, api.get(&self.node)).await?;
        let attrs = node_attributes(&node);
        let labels = node.metadata.labels.unwrap_or_default();
        Ok(NodeInfo {
            name: self.node.clone(),
            uid: node.metadata.uid,
            region: labels.get(REGION_LABEL).cloned(),
            zone: labels.get(ZONE_LABEL).cloned(),
            attrs,
        })
    }

    /// Sets netprobe's condition on the Node: a strategic merge patch of
    /// `status.conditions` (merged by `type`), which touches no other field
    /// and no other condition (`--node-condition`; needs `patch` on
    /// `nodes/status`).
    pub async fn set_condition(&self, c: &ConditionUpdate) -> Result<(), ClusterError> {
        let api: Api<Node> = Api::all(self.client.clone());
        let what = format!("patch the condition {NODE_CONDITION} of node {}", self.node);
        call(
            &what,
            api.patch_status(
                &self.node,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Strategic(c.patch_body()),
            ),
        )
        .await
        .map(|_| ())
    }

    /// Records an Event on the Node (namespace `default`, where Node events live).
    pub async fn emit(&self, event: &NodeEvent, node_uid: Option<&str>) -> Result<(), ClusterError> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), "default");
        let obj = event.to_k8s(&self.node, node_uid);
        call(
            "create events in namespace default",
            api.create(&PostParams::default(), &obj),
        )
        .await?;
        Ok(())
    }

    /// The `kubernetes` Service's endpoint addresses (its EndpointSlice in
    /// `default`): with API Server VNet Integration, the API server's
    /// internal load balancer, which nodes use by IP.
    pub async fn api_endpoints(&self) -> Result<Vec<IpAddr>, ClusterError> {
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), "default");
        let slice = call(
            "get endpointslices kubernetes in namespace default",
            api.get("kubernetes"),
        )
        .await?;
        let mut out: Vec<IpAddr> = slice
            .endpoints
            .iter()
            .flat_map(|e| &e.addresses)
            .filter_map(|a| a.parse().ok())
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Reads a Service (the AML inference router).
    pub async fn service(&self, namespace: &str, name: &str) -> Result<Service, ClusterError> {
        let api: Api<Service> = Api::namespaced(self.client.clone(), namespace);
        call(&format!("get service {namespace}/{name}"), api.get(name)).await
    }
}

/// The API server's name and port from `KUBERNETES_SERVICE_HOST` /
/// `_PORT`; `None` when the host is an IP address (the in-cluster Service,
/// not a name to resolve) or not a valid DNS name.
pub fn api_server_from_env(host: Option<&str>, port: Option<&str>) -> Option<(String, u16)> {
    let host = host?.trim();
    if host.parse::<IpAddr>().is_ok() {
        return None;
    }
    let fqdn = crate::input::check_fqdn(host).ok()?;
    let port = port
        .and_then(|p| p.trim().parse::<u16>().ok())
        .filter(|p| *p > 0)
        .unwrap_or(443);
    Some((fqdn, port))
}

// ---------------------------------------------------------------------------
// Findings about the cluster as a whole.

/// A workspace with a private endpoint needs the AKS cluster in its region.
pub fn region_finding(workspace_region: Option<&str>, node: &NodeInfo) -> Option<Finding> {
    let (Some(ws), Some(node_region)) = (workspace_region, node.region.as_deref()) else {
        return None;
    };
    (!ws.eq_ignore_ascii_case(node_region)).then(|| Finding {
        code: FindingCode::RegionMismatch,
        message: format!(
            "the workspace is in {ws} but node {} is in {node_region}: a workspace with a private endpoint \
             requires the AKS cluster in the same region (attaching fails, and traffic would cross regions). \
             Fix: run the cluster in {ws}, or set `region` to the workspace's actual region.",
            node.name
        ),
    })
}

// ---------------------------------------------------------------------------
// The AML inference router check.

/// Judges the Service: an internal load balancer with only private ingress IPs.
pub fn judge_scoring_service(namespace: &str, name: &str, svc: &Service, ranges: &[IpNet]) -> ScoringServiceReport {
    let annotation = svc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(INTERNAL_LB_ANNOTATION))
        .cloned();
    let ips: Vec<IpAddr> = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map(|ing| ing.iter().filter_map(|i| i.ip.as_deref()?.parse().ok()).collect())
        .unwrap_or_default();
    let public: Vec<String> = ips
        .iter()
        .filter(|ip| !is_private(**ip, ranges))
        .map(|ip| ip.to_string())
        .collect();
    let internal = annotation.as_deref().is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let svc_type = svc.spec.as_ref().and_then(|s| s.type_.clone()).unwrap_or_default();
    let (cause, diagnosis) = if !public.is_empty() {
        (
            ScoringCause::PublicIngress,
            Some(format!(
                "the AML inference router {namespace}/{name} has public ingress IP(s) {}: scoring requests \
                 are exposed outside the VNet. Fix: annotate the Service with {INTERNAL_LB_ANNOTATION}: \
                 \"true\" (AML extension setting inferenceRouterServiceType=LoadBalancer with \
                 internalLoadBalancerProvider=azure).",
                public.join(", ")
            )),
        )
    } else if !internal {
        (
            ScoringCause::InternalLbMissing,
            Some(format!(
                "the AML inference router {namespace}/{name} (type {}) lacks the annotation \
                 {INTERNAL_LB_ANNOTATION}: \"true\", so Azure may give it a public IP. Fix: install the AML \
                 extension with internalLoadBalancerProvider=azure.",
                if svc_type.is_empty() {
                    "unknown"
                } else {
                    svc_type.as_str()
                }
            )),
        )
    } else if ips.is_empty() && svc_type == "LoadBalancer" {
        (
            ScoringCause::NoIngress,
            Some(format!(
                "the AML inference router {namespace}/{name} is an internal load balancer without an ingress \
                 IP yet: the load balancer was not provisioned. Fix: check the Service's events (subnet, \
                 permissions of the cluster identity)."
            )),
        )
    } else {
        (ScoringCause::None, None)
    };
    ScoringServiceReport {
        namespace: namespace.to_string(),
        name: name.to_string(),
        healthy: cause == ScoringCause::None,
        cause,
        diagnosis,
        internal_annotation: annotation,
        ingress_ips: ips,
    }
}

/// The report when the Service could not be read.
pub fn scoring_service_unavailable(namespace: &str, name: &str, e: &ClusterError) -> ScoringServiceReport {
    let cause = match e {
        ClusterError::NotFound { .. } => ScoringCause::NotFound,
        ClusterError::Forbidden { .. } => ScoringCause::Forbidden,
        _ => ScoringCause::ApiError,
    };
    let fix = match cause {
        ScoringCause::NotFound => {
            " Fix: install the AML Kubernetes extension, or remove `scoring_service` from the config."
        }
        ScoringCause::Forbidden => {
            " Fix: apply deploy/components/aml-inference-router (a Role to get that one Service)."
        }
        _ => "",
    };
    ScoringServiceReport {
        namespace: namespace.to_string(),
        name: name.to_string(),
        healthy: false,
        cause,
        diagnosis: Some(format!(
            "cannot check the AML inference router {namespace}/{name}: {e}.{fix}"
        )),
        internal_annotation: None,
        ingress_ips: Vec::new(),
    }
}

// ---------------------------------------------------------------------------
// Events on the Node.

/// An Event worth recording on the Node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeEvent {
    pub reason: EventReason,
    pub warning: bool,
    pub target: String,
    pub message: String,
}

impl NodeEvent {
    fn to_k8s(&self, node: &str, node_uid: Option<&str>) -> Event {
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        let mut message = self.message.clone();
        if message.len() > 1000 {
            let mut cut = 1000;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        Event {
            metadata: ObjectMeta {
                generate_name: Some(format!("{node}.netprobe.")),
                namespace: Some("default".into()),
                ..Default::default()
            },
            involved_object: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Node".into()),
                name: Some(node.to_string()),
                uid: node_uid.map(String::from),
                ..Default::default()
            },
            reason: Some(self.reason.as_str().to_string()),
            message: Some(message),
            type_: Some(if self.warning { "Warning" } else { "Normal" }.into()),
            source: Some(EventSource {
                component: Some("netprobe".into()),
                host: Some(node.to_string()),
            }),
            reporting_component: Some("netprobe".into()),
            reporting_instance: Some(node.to_string()),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            ..Default::default()
        }
    }
}

/// The Event a change of a target's state deserves (None when the state did
/// not change in a way worth an Event).
pub fn event_for_change(before: Option<&TargetReport>, now: &TargetReport) -> Option<NodeEvent> {
    let was_healthy = before.map(|b| b.healthy);
    let same_cause = before.is_some_and(|b| b.cause == now.cause);
    match (was_healthy, now.healthy) {
        // Recovery after a problem.
        (Some(false), true) => Some(NodeEvent {
            reason: EventReason::PrivateDnsRecovered,
            warning: false,
            target: now.name.clone(),
            message: format!(
                "{} ({}) is healthy again: private DNS and the private endpoint answer.",
                now.fqdn, now.name
            ),
        }),
        // New problem, or a different one.
        (_, false) if !same_cause => {
            let reason = match now.cause.layer() {
                Layer::Endpoint | Layer::Http => EventReason::PrivateEndpointUnreachable,
                _ => EventReason::PrivateDnsRegression,
            };
            Some(NodeEvent {
                reason,
                warning: true,
                target: now.name.clone(),
                message: format!(
                    "{} ({}): {}: {}",
                    now.fqdn,
                    now.name,
                    now.cause,
                    now.diagnosis.as_deref().unwrap_or("")
                ),
            })
        }
        _ => None,
    }
}

/// Limits Events: at most `burst` per minute overall, and one per target and
/// reason per `cooldown`. Times are tokio's, so paused-time tests drive it.
pub struct EventLimiter {
    burst: usize,
    cooldown: Duration,
    recent: Vec<Instant>,
    last: HashMap<(String, EventReason), Instant>,
}

impl EventLimiter {
    pub fn new(burst: usize, cooldown: Duration) -> EventLimiter {
        EventLimiter {
            burst,
            cooldown,
            recent: Vec::new(),
            last: HashMap::new(),
        }
    }

    /// True when `event` may be sent at `now` (and records it).
    pub fn allow(&mut self, event: &NodeEvent, now: Instant) -> bool {
        self.recent.retain(|t| now.duration_since(*t) < Duration::from_secs(60));
        let key = (event.target.clone(), event.reason);
        if self
            .last
            .get(&key)
            .is_some_and(|t| now.duration_since(*t) < self.cooldown)
        {
            return false;
        }
        if self.recent.len() >= self.burst {
            return false;
        }
        self.recent.push(now);
        self.last.insert(key, now);
        true
    }
}

impl Default for EventLimiter {
    fn default() -> Self {
        EventLimiter::new(10, Duration::from_secs(600))
    }
}

// ---------------------------------------------------------------------------
// What one process knows about its cluster, shared by `probe --once` and the agent.

/// The cluster connection (if any) and the node it runs on (if known).
#[derive(Clone, Default)]
pub struct ClusterContext {
    pub cluster: Option<Cluster>,
    pub node: Option<NodeInfo>,
    /// The API server's name and port from the pod's environment, when the
    /// host is a name ([`api_server_from_env`]).
    pub api_server_host: Option<(String, u16)>,
    /// Why the Node could not be read, while it could not.
    pub node_error: Option<String>,
}

impl ClusterContext {
    /// Connects when `node_name` (the downward API's `NODE_NAME`, read by the
    /// caller) is set and reads the Node; every failure is one log line and
    /// leaves the feature off.
    pub async fn discover(node_name: Option<String>) -> ClusterContext {
        let cluster = Cluster::connect(node_name).await;
        ClusterContext {
            api_server_host: api_server_from_env(
                std::env::var("KUBERNETES_SERVICE_HOST").ok().as_deref(),
                std::env::var("KUBERNETES_SERVICE_PORT").ok().as_deref(),
            ),
            ..ClusterContext::with_cluster(cluster).await
        }
    }

    /// What the configuration is loaded with on this node: the node's
    /// region and the API server's name from the environment.
    pub fn load_options(&self) -> crate::config::LoadOptions {
        crate::config::LoadOptions {
            node_region: self.node_region(),
            allow_unresolved_auto: false,
            api_server_host: self.api_server_host.clone(),
            // With a cluster, a region not read yet is waited for, not fatal.
            region_pending: self.cluster.is_some() && self.node_region().is_none(),
        }
    }

    /// Reads the Node through `cluster`.
    pub async fn with_cluster(cluster: Option<Cluster>) -> ClusterContext {
        let mut ctx = ClusterContext {
            cluster,
            ..ClusterContext::default()
        };
        ctx.read_node().await;
        ctx
    }

    /// Reads this pod's Node (again): on success the node and its region
    /// are known; on failure the error is kept (the agent tries again next
    /// round, and reports the region as unknown meanwhile). True when the
    /// node's region changed.
    pub async fn read_node(&mut self) -> bool {
        let Some(c) = &self.cluster else { return false };
        let before = self.node_region();
        match c.node_info().await {
            Ok(n) => {
                tracing::info!(node = %n.name, region = ?n.region, zone = ?n.zone, "running on node");
                self.node = Some(n);
                self.node_error = None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read this pod's Node; trying again later");
                self.node_error = Some(e.to_string());
            }
        }
        self.node_region() != before
    }

    pub fn node_region(&self) -> Option<String> {
        self.node.as_ref().and_then(|n| n.region.clone())
    }

    /// What the cluster tells about `config` this round: the Node read at
    /// start, and the inference router Service when one is configured (and
    /// the API can be read). Observations only: `judge::cluster_findings`
    /// decides.
    pub async fn observe(&self, config: &crate::config::Config) -> ClusterObservation {
        let scoring_service = match (&config.scoring_service, &self.cluster) {
            (None, _) => None,
            (Some((ns, name)), None) => {
                tracing::debug!(namespace = %ns, name = %name, "no Kubernetes API access: scoring_service check skipped");
                None
            }
            (Some((ns, name)), Some(c)) => Some((ns.clone(), name.clone(), c.service(ns, name).await)),
        };
        let vnet_integration = config.targets.iter().any(crate::service::apiserver::vnet_integration);
        let api_endpoints = match &self.cluster {
            Some(c) if vnet_integration => Some(c.api_endpoints().await.map_err(|e| e.to_string())),
            _ => None,
        };
        ClusterObservation {
            node: self.node.clone(),
            node_error: self.node_error.clone(),
            scoring_service,
            api_endpoints,
        }
    }
}

/// What the cluster reader saw in one round.
#[derive(Debug, Default)]
pub struct ClusterObservation {
    pub node: Option<NodeInfo>,
    /// Why the Node could not be read, when it could not.
    pub node_error: Option<String>,
    /// The inference router Service (namespace, name, what reading it gave).
    pub scoring_service: Option<(String, String, Result<Service, ClusterError>)>,
    /// The `kubernetes` Service's endpoint addresses, read when the
    /// `api-server` target's name is in an API Server VNet Integration zone
    /// (`private.<region>.azmk8s.io`), or why they could not be read.
    pub api_endpoints: Option<Result<Vec<IpAddr>, String>>,
}

/// The type of the Node condition netprobe sets (`--node-condition`).
pub const NODE_CONDITION: &str = "AzureMLPrivateNetwork";

/// One update of netprobe's Node condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionUpdate {
    pub healthy: bool,
    pub reason: &'static str,
    pub message: String,
    /// When the condition's status last changed (RFC 3339).
    pub transition: String,
    /// This round's time (RFC 3339).
    pub heartbeat: String,
}

impl ConditionUpdate {
    /// The strategic merge patch body: `status.conditions`, this one only.
    pub fn patch_body(&self) -> serde_json::Value {
        serde_json::json!({
            "status": {
                "conditions": [{
                    "type": NODE_CONDITION,
                    "status": if self.healthy { "True" } else { "False" },
                    "reason": self.reason,
                    "message": self.message,
                    "lastTransitionTime": self.transition,
                    "lastHeartbeatTime": self.heartbeat,
                }]
            }
        })
    }
}

/// The Node labels each attribute is read from, first found wins.
const LABELS: &[(&str, &[&str])] = &[
    ("pool", &["kubernetes.azure.com/agentpool", "agentpool"]),
    ("mode", &["kubernetes.azure.com/mode"]),
    (
        "zone",
        &["topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone"],
    ),
    (
        "vm_size",
        &["node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type"],
    ),
    ("node_image", &["kubernetes.azure.com/node-image-version"]),
    ("os_sku", &["kubernetes.azure.com/os-sku"]),
    ("subnet", &["kubernetes.azure.com/network-subnet"]),
];

/// The attributes of a Node: its labels' values (shown as read, escaped and
/// cut) and the kubelet version.
pub fn node_attributes(node: &Node) -> std::collections::BTreeMap<String, String> {
    let labels = node.metadata.labels.as_ref();
    let mut out = std::collections::BTreeMap::new();
    for (key, names) in LABELS {
        if let Some(v) = names.iter().find_map(|n| labels.and_then(|l| l.get(*n))) {
            out.insert(key.to_string(), crate::text::shown(v, 80));
        }
    }
    if let Some(v) = node
        .status
        .as_ref()
        .and_then(|s| s.node_info.as_ref())
        .map(|i| &i.kubelet_version)
    {
        out.insert("kubelet".to_string(), crate::text::shown(v, 40));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(target: &str, reason: EventReason) -> NodeEvent {
        NodeEvent {
            reason,
            warning: true,
            target: target.into(),
            message: "m".into(),
        }
    }

    #[test]
    fn limiter_dedups_per_target_and_caps_the_burst() {
        use EventReason::{PrivateDnsRecovered as Recovered, PrivateDnsRegression as Regression};
        let mut l = EventLimiter::new(3, Duration::from_secs(600));
        let t0 = Instant::now();
        // (target, reason, seconds after t0, allowed, why)
        let steps = [
            ("a", Regression, 0, true, "first"),
            ("a", Regression, 5, false, "cooldown"),
            ("a", Recovered, 6, true, "another reason"),
            ("b", Regression, 7, true, "another target"),
            ("c", Regression, 8, false, "burst of 3 per minute"),
            ("c", Regression, 70, true, "a minute later"),
            ("a", Regression, 601, true, "after the cooldown"),
        ];
        for (target, reason, after, allowed, why) in steps {
            let at = t0 + Duration::from_secs(after);
            assert_eq!(
                l.allow(&event(target, reason), at),
                allowed,
                "{target} {reason} at +{after}s: {why}"
            );
        }
    }

    #[test]
    fn region_mismatch_is_a_finding() {
        let node = NodeInfo {
            name: "aks-1".into(),
            region: Some("westeurope".into()),
            ..Default::default()
        };
        let f = region_finding(Some("eastus"), &node).unwrap();
        assert_eq!(f.code, FindingCode::RegionMismatch);
        assert!(
            f.message.contains("eastus") && f.message.contains("westeurope"),
            "{}",
            f.message
        );
        assert_eq!(region_finding(Some("WestEurope"), &node), None);
        assert_eq!(region_finding(None, &node), None);
        assert_eq!(region_finding(Some("eastus"), &NodeInfo::default()), None);
    }
}
