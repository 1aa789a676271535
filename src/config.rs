//! Configuration: the YAML file as written (`raw`), its validation, and the
//! resulting [`Config`] that the probe engine runs from. Nothing here does I/O
//! beyond reading the files the config names, so that `check-config` can tell
//! a user everything that is wrong before anything is probed.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::azure::{Cloud, StorageService};
use crate::model::{Expect, MetricSet};
use crate::service::Service;
use crate::service::Target;
use crate::servicetags::ServiceTags;

/// Default per-phase timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default interval between agent rounds.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// Default address of the agent's HTTP server.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9469";
/// Default bound on concurrent DNS lookups and connections in one round.
pub const DEFAULT_CONCURRENCY: usize = 64;
/// Default private ranges: RFC 1918, CGNAT (used by some VNets) and IPv6 ULA.
pub const DEFAULT_PRIVATE_RANGES: &[&str] = &[
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "fc00::/7",
];
/// [`DEFAULT_PRIVATE_RANGES`], parsed.
pub fn default_private_ranges() -> Vec<IpNet> {
    DEFAULT_PRIVATE_RANGES
        .iter()
        .map(|s| s.parse().expect("the default ranges are valid CIDRs"))
        .collect()
}

/// The resolv.conf used by the `system` resolver when none is given.
pub const DEFAULT_RESOLV_CONF: &str = "/etc/resolv.conf";

/// A validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the configuration came from (a path, or `<demo>`).
    pub source: String,
    pub cloud: Cloud,
    pub region: Option<String>,
    /// Per-phase timeout (DNS, TCP, TLS, HTTP).
    pub timeout: Duration,
    /// Bound on DNS lookups and connections in flight at once.
    pub concurrency: usize,
    pub targets: Vec<Target>,
    pub resolvers: Vec<ResolverSpec>,
    /// Index into `resolvers` of the resolver whose answers reachability uses.
    pub connect_via: usize,
    pub private_ranges: Vec<IpNet>,
    pub extra_ca_file: Option<PathBuf>,
    /// Agent mode: time between round starts (±10% jitter).
    pub interval: Duration,
    /// Agent mode: the HTTP server's address.
    pub listen: SocketAddr,
    /// Agent mode: which per-target series `/metrics` carries.
    pub metrics: MetricSet,
    /// `region: auto` was given (and resolved from the node, if known).
    pub region_auto: bool,
    /// The AML inference router Service to check: (namespace, name).
    pub scoring_service: Option<(String, String)>,
    /// `service_tags_file`, parsed and indexed at (re)load.
    pub service_tags: Option<Arc<ServiceTags>>,
    /// The CA that the API server target's certificate is verified against.
    pub api_server_ca_file: PathBuf,
}

impl Config {
    /// The node-local files this configuration reads at every round
    /// (resolv.conf) that cannot be used here, one message each. On a node
    /// the agent reports them per resolver; `check-config` run elsewhere
    /// warns about them instead of failing.
    pub fn node_file_warnings(&self) -> Vec<String> {
        self.resolvers
            .iter()
            .filter_map(|r| match &r.source {
                ResolverSource::ResolvConf(paths) => crate::nodefiles::read_first_resolv_conf(paths)
                    .err()
                    .map(|e| format!("resolver {:?}: {e}", r.name)),
                ResolverSource::Servers(_) => None,
            })
            .collect()
    }
}

/// A named DNS path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolverSpec {
    pub name: String,
    pub source: ResolverSource,
}

/// Where a resolver's servers come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolverSource {
    /// Read the `nameserver` lines at every round, from the first of these
    /// files that can be read (`resolv_conf`, then `resolv_conf_fallback`).
    ResolvConf(Vec<PathBuf>),
    /// Ask these servers.
    Servers(Vec<SocketAddr>),
}

/// What is wrong with a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read the config file: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{path}: {message}")]
    Syntax { path: String, message: String },
    #[error("{path}{}: {field}: {message}", fmt_location(*.location))]
    Invalid {
        path: String,
        location: Option<(u64, u64)>,
        field: String,
        message: String,
    },
}

fn fmt_location(location: Option<(u64, u64)>) -> String {
    match location {
        Some((line, column)) => format!(":{line}:{column}"),
        None => String::new(),
    }
}

// ---------------------------------------------------------------------------
// The file as written.

mod raw {
    use super::*;

    pub type S<T> = Spanned<T>;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct File {
        pub cloud: Option<S<Cloud>>,
        pub region: Option<S<String>>,
        pub timeout: Option<S<String>>,
        pub concurrency: Option<S<i64>>,
        pub workspace: Option<Workspace>,
        #[serde(default)]
        pub storage_accounts: Vec<Storage>,
        #[serde(default)]
        pub key_vaults: Vec<S<VaultEntry>>,
        #[serde(default)]
        pub container_registries: Vec<Registry>,
        #[serde(default)]
        pub targets: Vec<CustomTarget>,
        pub resolvers: Option<Vec<Resolver>>,
        pub connect_via: Option<S<String>>,
        pub private_ranges: Option<Vec<S<String>>>,
        pub tls: Option<Tls>,
        pub interval: Option<S<String>>,
        pub listen: Option<S<String>>,
        pub metrics: Option<S<MetricSet>>,
        pub scoring_service: Option<ScoringService>,
        pub service_tags_file: Option<S<String>>,
        pub aml_extension: Option<S<bool>>,
        pub api_server_fqdn: Option<S<String>>,
        pub api_server_ca_file: Option<S<String>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ScoringService {
        pub namespace: Option<S<String>>,
        pub name: Option<S<String>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Workspace {
        pub id: S<String>,
        pub name: Option<S<String>>,
        /// The notebooks FQDN as shown on the private endpoint's NIC, when
        /// the derived one does not match.
        pub notebooks_fqdn: Option<S<String>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Storage {
        pub name: S<String>,
        pub services: Option<Vec<S<StorageService>>>,
        pub expect: Option<S<Expect>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Registry {
        pub name: S<String>,
        pub data_endpoint_regions: Option<Vec<S<String>>>,
        pub expect: Option<S<Expect>>,
    }

    /// A key vault: its name, or `{name, expect}`.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Vault {
        pub name: String,
        pub expect: Option<Expect>,
    }

    impl Vault {
        /// A string is the name; a mapping is read field by field, so that
        /// its errors name the field (an untagged enum would only say that
        /// no variant matched).
        pub fn deserialize_either<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Vault, D::Error> {
            struct Either;
            impl<'de> serde::de::Visitor<'de> for Either {
                type Value = Vault;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a key vault name, or a mapping with `name` and `expect`")
                }
                fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Vault, E> {
                    Ok(Vault {
                        name: v.to_string(),
                        expect: None,
                    })
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Vault, A::Error> {
                    Vault::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                }
            }
            de.deserialize_any(Either)
        }
    }

    /// [`Vault`] through [`Vault::deserialize_either`], for `Spanned<Vault>`.
    #[derive(Debug)]
    pub struct VaultEntry(pub Vault);

    impl<'de> Deserialize<'de> for VaultEntry {
        fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
            Vault::deserialize_either(de).map(VaultEntry)
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct CustomTarget {
        pub name: Option<S<String>>,
        pub fqdn: S<String>,
        pub service: Option<S<Service>>,
        pub port: Option<S<i64>>,
        pub expect: Option<S<Expect>>,
        pub expected_ips: Option<Vec<S<String>>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Resolver {
        pub name: S<String>,
        pub resolv_conf: Option<S<String>>,
        /// Used when `resolv_conf` cannot be read (e.g. a node without systemd-resolved).
        pub resolv_conf_fallback: Option<S<String>>,
        pub servers: Option<Vec<S<String>>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Tls {
        pub extra_ca_file: Option<S<String>>,
    }
}

use raw::S;

/// Collects the file's path for error messages and turns spans into
/// `(line, column)`.
struct Ctx<'a> {
    path: &'a str,
    base: Option<&'a Path>,
    opts: &'a LoadOptions,
}

impl Ctx<'_> {
    fn err<T>(&self, spanned: &S<T>, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        let loc = spanned.referenced;
        let location = (loc.line() > 0).then(|| (loc.line(), loc.column()));
        invalid(self.path, location, field.into(), message.into())
    }

    fn err_at_top(&self, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        invalid(self.path, None, field.into(), message.into())
    }

    /// Resolves a path given in the config relative to the config's folder.
    fn resolve_path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        match self.base {
            Some(base) if p.is_relative() => base.join(p),
            _ => p.to_path_buf(),
        }
    }
}

/// What the environment tells the configuration.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// The node's region (label `topology.kubernetes.io/region`), for `region: auto`.
    pub node_region: Option<String>,
    /// Accept `region: auto` without a known node region, deriving names with
    /// the literal region `auto` (for `check-config` and `targets` off-cluster).
    pub allow_unresolved_auto: bool,
    /// Every target's port, whatever the file says: the demo's simulated
    /// endpoints all listen on one unprivileged port.
    pub target_port: Option<u16>,
    /// `KUBERNETES_SERVICE_HOST` and `_PORT` when the host is a DNS name
    /// (AKS sets the API server's FQDN in pods that ask for it): probed as
    /// the `api-server` target unless `api_server_fqdn` says otherwise.
    pub api_server_host: Option<(String, u16)>,
}

impl LoadOptions {
    /// What an agent on a node knows: the node's region, and the API
    /// server's name from the environment.
    pub fn on_node(node_region: Option<String>) -> LoadOptions {
        LoadOptions {
            node_region,
            allow_unresolved_auto: false,
            target_port: None,
            api_server_host: api_server_from_env(
                std::env::var("KUBERNETES_SERVICE_HOST").ok().as_deref(),
                std::env::var("KUBERNETES_SERVICE_PORT").ok().as_deref(),
            ),
        }
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
    let fqdn = check_fqdn(host).ok()?;
    let port = port
        .and_then(|p| p.trim().parse::<u16>().ok())
        .filter(|p| *p > 0)
        .unwrap_or(443);
    Some((fqdn, port))
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with(path, &LoadOptions::default())
    }

    /// Reads and validates a configuration file with what the environment knows.
    pub fn load_with(path: &Path, opts: &LoadOptions) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: shown.clone(),
            error,
        })?;
        Config::from_yaml_with(&text, &shown, path.parent(), opts)
    }

    /// Parses and validates YAML text. `path` names the source in messages;
    /// relative paths inside the file are resolved against `base`.
    pub fn from_yaml(text: &str, path: &str, base: Option<&Path>) -> Result<Config, ConfigError> {
        Config::from_yaml_with(text, path, base, &LoadOptions::default())
    }

    /// [`Config::from_yaml`] with what the environment knows.
    pub fn from_yaml_with(
        text: &str,
        path: &str,
        base: Option<&Path>,
        opts: &LoadOptions,
    ) -> Result<Config, ConfigError> {
        let blank = text.lines().all(|l| {
            let l = l.trim();
            l.is_empty() || l.starts_with('#') || l == "---"
        });
        if blank {
            return Err(ConfigError::Syntax {
                path: path.to_string(),
                message: "the file is empty: at least one target must be configured".into(),
            });
        }
        let mut field = String::new();
        let parsed = serde_saphyr::with_deserializer_from_str(text, |de| {
            serde_path_to_error::deserialize::<_, raw::File>(de).map_err(|e| {
                field = e.path().to_string();
                e.into_inner()
            })
        });
        let raw = parsed.map_err(|e| syntax_error(&e, path, &field))?;
        let ctx = Ctx { path, base, opts };
        validate(raw, &ctx)
    }
}

/// Every validation error is built here, so every one gets the same care: a
/// value quoted in the message is cut to a readable length.
fn invalid(path: &str, location: Option<(u64, u64)>, field: String, message: String) -> ConfigError {
    ConfigError::Invalid {
        path: path.to_string(),
        location,
        field,
        message: cut_quoted(&message),
    }
}

/// Longest quoted value shown whole in an error message, in characters.
const SHOWN_VALUE: usize = 64;

/// Cuts every `"…"` or `` `…` `` span longer than [`SHOWN_VALUE`] characters
/// to its start, an ellipsis and its length, so that a 5,000-character value
/// does not become a 5,000-character message.
fn cut_quoted(message: &str) -> String {
    let chars: Vec<char> = message.chars().collect();
    let mut out = String::with_capacity(message.len().min(512));
    let mut i = 0;
    while i < chars.len() {
        let q = chars[i];
        out.push(q);
        i += 1;
        if q != '"' && q != '`' {
            continue;
        }
        // The span up to the closing quote (a backslash escapes the next character).
        let mut end = i;
        while end < chars.len() && chars[end] != q {
            end += if chars[end] == '\\' { 2 } else { 1 };
        }
        let end = end.min(chars.len());
        let inner = &chars[i..end];
        if inner.len() > SHOWN_VALUE {
            out.extend(&inner[..SHOWN_VALUE - 16]);
            out.push('…');
            if end < chars.len() {
                out.push(q);
            }
            out.push_str(&format!(" ({} characters)", inner.len()));
        } else {
            out.extend(inner);
            if end < chars.len() {
                out.push(q);
            }
        }
        i = end + 1;
    }
    out
}

/// The messages of the YAML library's errors that would otherwise show its
/// internals (an option name, a Rust debug print), in the config's terms.
fn library_message(e: &serde_saphyr::Error) -> Option<String> {
    let mut e = e;
    while let serde_saphyr::Error::WithSnippet { error, .. } | serde_saphyr::Error::AliasError { error, .. } = e {
        e = error;
    }
    match e {
        serde_saphyr::Error::DuplicateMappingKey { key, .. } => Some(match key {
            Some(k) => format!("the key `{k}` is given twice; each key may appear once"),
            None => "a key is given twice; each key may appear once".to_string(),
        }),
        serde_saphyr::Error::Budget { breach, .. } => {
            // `Nodes { nodes: 250001 }` -> "nodes"
            let debug = format!("{breach:?}");
            let what: String = debug
                .split(|c: char| !c.is_ascii_alphabetic())
                .next()
                .unwrap_or("size")
                .chars()
                .flat_map(|c| {
                    let lower = c.to_ascii_lowercase();
                    if c.is_ascii_uppercase() {
                        vec![' ', lower]
                    } else {
                        vec![c]
                    }
                })
                .collect();
            Some(format!(
                "the document is too large for a netprobe configuration (too many {}); the YAML parser's safety limit stops it",
                what.trim()
            ))
        }
        _ => None,
    }
}

/// Turns a parser or type error into the same `file:line:col: field: message`
/// shape as the validation errors.
fn syntax_error(e: &serde_saphyr::Error, path: &str, field: &str) -> ConfigError {
    // serde-saphyr renders "error: line L column C: message" plus a snippet;
    // keep only the message.
    let rendered = e.to_string();
    let first = rendered
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid YAML")
        .trim();
    let mut message = first.strip_prefix("error:").unwrap_or(first).trim();
    if let Some(rest) = message.strip_prefix("line ")
        && let Some((_, after)) = rest.split_once(": ")
    {
        message = after;
    }
    let location = e.location().filter(|l| l.line() > 0).map(|l| (l.line(), l.column()));
    let own = library_message(e);
    let message = own.as_deref().unwrap_or(message);
    // `Spanned<T>` adds a `.value` segment that the user never wrote.
    let field = field.replace(".value", "");
    let field = if field.is_empty() || field == "." || field == "?" {
        "(document)".to_string()
    } else {
        field
    };
    let message = match message {
        "expected sequence start" => "expected a list".to_string(),
        "expected mapping start" => "expected a mapping (key: value pairs)".to_string(),
        m if m.starts_with("multiple YAML documents") => {
            "the file holds several YAML documents (---); netprobe reads exactly one".to_string()
        }
        other => other.to_string(),
    };
    invalid(path, location, field, message)
}

fn validate(raw: raw::File, ctx: &Ctx<'_>) -> Result<Config, ConfigError> {
    let cloud = raw.cloud.as_ref().map(|c| c.value).unwrap_or_default();
    let (region, region_auto) = region(&raw, ctx)?;
    let timeout = duration_field(
        ctx,
        raw.timeout.as_ref(),
        "timeout",
        DEFAULT_TIMEOUT,
        (10, "10ms"),
        (120_000, "120s"),
        "5s, 1500ms",
    )?;
    let interval = duration_field(
        ctx,
        raw.interval.as_ref(),
        "interval",
        DEFAULT_INTERVAL,
        (10, "10ms"),
        (86_400_000, "24h"),
        "30s, 1m",
    )?;
    let listen = match &raw.listen {
        Some(l) => parse_listen(&l.value).map_err(|m| ctx.err(l, "listen", m))?,
        None => DEFAULT_LISTEN.parse().expect("default listen address parses"),
    };
    // Sections are checked in the file's usual order, so that the first
    // error reported is the first a reader meets.
    let concurrency = concurrency(&raw, ctx)?;
    let targets = targets(&raw, ctx, cloud, region.as_deref())?;
    let resolvers = resolvers(&raw, ctx)?;
    let scoring_service = scoring_service(&raw, ctx)?;
    let connect_via = connect_via(&raw, ctx, &resolvers)?;
    let private_ranges = private_ranges(&raw, ctx)?;
    let extra_ca_file = extra_ca_file(&raw, ctx)?;
    let service_tags = service_tags(&raw, ctx)?;
    let api_server_ca_file = api_server_ca_file(&raw, ctx);
    Ok(Config {
        source: ctx.path.to_string(),
        cloud,
        region,
        timeout,
        concurrency,
        targets,
        resolvers,
        connect_via,
        private_ranges,
        extra_ca_file,
        interval,
        listen,
        metrics: raw.metrics.as_ref().map(|m| m.value).unwrap_or_default(),
        region_auto,
        scoring_service,
        service_tags,
        api_server_ca_file,
    })
}

/// `region`, and whether it was `auto` (then the node's region, if known).
fn region(raw: &raw::File, ctx: &Ctx<'_>) -> Result<(Option<String>, bool), ConfigError> {
    let region_auto = raw.region.as_ref().is_some_and(|r| r.value == "auto");
    let region = match &raw.region {
        Some(r) if r.value == "auto" => match (&ctx.opts.node_region, ctx.opts.allow_unresolved_auto) {
            (Some(node), _) => {
                REGION
                    .check(node)
                    .map_err(|m| ctx.err(r, "region", format!("auto: the node's region label: {m}")))?;
                Some(node.clone())
            }
            (None, true) => Some("auto".to_string()),
            (None, false) => {
                return Err(ctx.err(
                    r,
                    "region",
                    "auto needs the node's region (label topology.kubernetes.io/region), which needs NODE_NAME and access to the Kubernetes API; set the region explicitly outside a cluster",
                ));
            }
        },
        Some(r) => {
            REGION.check(&r.value).map_err(|m| ctx.err(r, "region", m))?;
            Some(r.value.clone())
        }
        None => None,
    };
    Ok((region, region_auto))
}

fn concurrency(raw: &raw::File, ctx: &Ctx<'_>) -> Result<usize, ConfigError> {
    Ok(match &raw.concurrency {
        Some(c) => {
            if !(1..=4096).contains(&c.value) {
                return Err(ctx.err(
                    c,
                    "concurrency",
                    format!("{} is out of range: expected 1 to 4096", c.value),
                ));
            }
            c.value as usize
        }
        None => DEFAULT_CONCURRENCY,
    })
}

/// Every target the file derives, section by section, each name once.
fn targets(raw: &raw::File, ctx: &Ctx<'_>, cloud: Cloud, region: Option<&str>) -> Result<Vec<Target>, ConfigError> {
    let mut targets = Vec::new();
    if let Some(ws) = &raw.workspace {
        targets.extend(workspace_targets(ws, ctx, cloud, region)?);
    }
    targets.extend(storage_targets(raw, ctx, cloud)?);
    targets.extend(keyvault_targets(raw, ctx, cloud)?);
    targets.extend(registry_targets(raw, ctx, cloud, region)?);
    targets.extend(custom_targets(raw, ctx)?);
    targets.extend(egress_targets(raw, ctx, cloud, region)?);
    targets.extend(api_server_target(raw, ctx, region)?);
    if let Some(port) = ctx.opts.target_port {
        for t in &mut targets {
            t.port = port;
        }
    }
    if targets.is_empty() {
        return Err(ctx.err_at_top(
            "targets",
            "no target results from this file: set `workspace`, `storage_accounts`, `key_vaults`, `container_registries` or `targets`",
        ));
    }
    let mut seen = HashSet::new();
    for t in &targets {
        if !seen.insert(t.name.as_str()) {
            return Err(ctx.err_at_top(
                "targets",
                format!("two targets are named {:?} (the same resource listed twice, or give custom targets a distinct `name`)", t.name),
            ));
        }
    }
    Ok(targets)
}

fn workspace_targets(
    ws: &raw::Workspace,
    ctx: &Ctx<'_>,
    cloud: Cloud,
    region: Option<&str>,
) -> Result<Vec<Target>, ConfigError> {
    check_guid(&ws.id.value).map_err(|m| ctx.err(&ws.id, "workspace.id", m))?;
    let id = ws.id.value.to_ascii_lowercase();
    let region = region.ok_or_else(|| {
        ctx.err(
            &ws.id,
            "region",
            "required when `workspace` is set (the workspace's region, e.g. eastus)",
        )
    })?;
    let mut targets = vec![
        crate::service::workspace::api(cloud, &id, region),
        crate::service::workspace::cert(cloud, &id, region),
    ];
    match (&ws.notebooks_fqdn, &ws.name) {
        (Some(f), _) => {
            let fqdn = check_fqdn(&f.value).map_err(|m| ctx.err(f, "workspace.notebooks_fqdn", m))?;
            targets.push(crate::service::workspace::notebooks_at(cloud, &fqdn));
        }
        (None, Some(n)) => {
            WORKSPACE_NAME
                .check(&n.value)
                .map_err(|m| ctx.err(n, "workspace.name", m))?;
            targets.push(crate::service::workspace::notebooks(cloud, &n.value, &id, region));
        }
        (None, None) => {}
    }
    Ok(targets)
}

fn storage_targets(raw: &raw::File, ctx: &Ctx<'_>, cloud: Cloud) -> Result<Vec<Target>, ConfigError> {
    let mut targets = Vec::new();
    for (i, st) in raw.storage_accounts.iter().enumerate() {
        let field = format!("storage_accounts[{i}].name");
        STORAGE_NAME
            .check(&st.name.value)
            .map_err(|m| ctx.err(&st.name, &field, m))?;
        let services: Vec<StorageService> = match &st.services {
            Some(list) if list.is_empty() => {
                return Err(ctx.err(&st.name, format!("storage_accounts[{i}].services"), "must not be empty"));
            }
            Some(list) => list.iter().map(|s| s.value).collect(),
            None => vec![StorageService::Blob, StorageService::File],
        };
        for svc in services {
            let mut t = crate::service::storage::target(cloud, &st.name.value, svc);
            t.expect = expect_of(st.expect.as_ref());
            targets.push(t);
        }
    }
    Ok(targets)
}

fn keyvault_targets(raw: &raw::File, ctx: &Ctx<'_>, cloud: Cloud) -> Result<Vec<Target>, ConfigError> {
    let mut targets = Vec::new();
    for (i, kv) in raw.key_vaults.iter().enumerate() {
        let vault = &kv.value.0;
        VAULT_NAME
            .check(&vault.name)
            .map_err(|m| ctx.err(kv, format!("key_vaults[{i}]"), m))?;
        let mut t = crate::service::keyvault::target(cloud, &vault.name.to_ascii_lowercase());
        t.expect = vault.expect.unwrap_or(Expect::Private);
        targets.push(t);
    }
    Ok(targets)
}

fn registry_targets(
    raw: &raw::File,
    ctx: &Ctx<'_>,
    cloud: Cloud,
    region: Option<&str>,
) -> Result<Vec<Target>, ConfigError> {
    let mut targets = Vec::new();
    for (i, reg) in raw.container_registries.iter().enumerate() {
        let field = format!("container_registries[{i}].name");
        REGISTRY_NAME
            .check(&reg.name.value)
            .map_err(|m| ctx.err(&reg.name, &field, m))?;
        let name = reg.name.value.to_ascii_lowercase();
        let expect = expect_of(reg.expect.as_ref());
        let first = targets.len();
        targets.push(crate::service::acr::login(cloud, &name));
        let regions: Vec<String> = match &reg.data_endpoint_regions {
            Some(list) => {
                let mut out = Vec::new();
                for (j, r) in list.iter().enumerate() {
                    REGION
                        .check(&r.value)
                        .map_err(|m| ctx.err(r, format!("container_registries[{i}].data_endpoint_regions[{j}]"), m))?;
                    out.push(r.value.clone());
                }
                out
            }
            None => match region {
                Some(r) => vec![r.to_string()],
                None => {
                    return Err(ctx.err(
                        &reg.name,
                        format!("container_registries[{i}].data_endpoint_regions"),
                        "no region to derive the data endpoint from: set `region` or list `data_endpoint_regions` ([] for none)",
                    ));
                }
            },
        };
        for r in regions {
            targets.push(crate::service::acr::data(cloud, &name, &r));
        }
        for t in &mut targets[first..] {
            t.expect = expect;
        }
    }
    Ok(targets)
}

/// A resource section's `expect` (private unless told).
fn expect_of(expect: Option<&S<Expect>>) -> Expect {
    expect.map_or(Expect::Private, |e| e.value)
}

/// `aml_extension: true`: the extension's public endpoints for the cloud and region.
fn egress_targets(
    raw: &raw::File,
    ctx: &Ctx<'_>,
    cloud: Cloud,
    region: Option<&str>,
) -> Result<Vec<Target>, ConfigError> {
    let Some(on) = raw.aml_extension.as_ref().filter(|a| a.value) else {
        return Ok(Vec::new());
    };
    let region = region.ok_or_else(|| {
        ctx.err(
            on,
            "region",
            "required when `aml_extension` is set (its endpoints are regional, e.g. eastus.data.mcr.microsoft.com)",
        )
    })?;
    Ok(crate::service::egress::targets(cloud, region))
}

/// The `api-server` target: `api_server_fqdn`, else the environment's
/// `KUBERNETES_SERVICE_HOST` when it is a name.
fn api_server_target(raw: &raw::File, ctx: &Ctx<'_>, region: Option<&str>) -> Result<Option<Target>, ConfigError> {
    let (fqdn, port) = match &raw.api_server_fqdn {
        Some(f) => {
            let (host, port) = match f.value.rsplit_once(':') {
                Some((h, p)) if !h.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => {
                    let port =
                        p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                            ctx.err(f, "api_server_fqdn", format!("{p:?} is not a TCP port (1-65535)"))
                        })?;
                    (h, port)
                }
                _ => (f.value.as_str(), 443),
            };
            (check_fqdn(host).map_err(|m| ctx.err(f, "api_server_fqdn", m))?, port)
        }
        None => match &ctx.opts.api_server_host {
            Some((host, port)) => (host.clone(), *port),
            None => return Ok(None),
        },
    };
    let port = ctx.opts.target_port.unwrap_or(port);
    // The cluster's region names its private zone; the node's region is the
    // cluster's, where the config's may be the workspace's.
    let region = ctx.opts.node_region.as_deref().or(region);
    Ok(Some(crate::service::apiserver::target(&fqdn, port, region)))
}

/// `service_tags_file`, read and indexed now: a file that cannot be used is
/// a configuration error naming it.
fn service_tags(raw: &raw::File, ctx: &Ctx<'_>) -> Result<Option<Arc<ServiceTags>>, ConfigError> {
    let Some(p) = &raw.service_tags_file else {
        return Ok(None);
    };
    let path = ctx.resolve_path(&p.value);
    let tags = ServiceTags::load(&path, &path.display().to_string())
        .map_err(|e| ctx.err(p, "service_tags_file", e.to_string()))?;
    Ok(Some(Arc::new(tags)))
}

/// `api_server_ca_file`, or the pod's service account CA. Not read here:
/// a missing in-cluster CA is the pod's state, reported by the probe.
fn api_server_ca_file(raw: &raw::File, ctx: &Ctx<'_>) -> PathBuf {
    match &raw.api_server_ca_file {
        Some(p) => ctx.resolve_path(&p.value),
        None => PathBuf::from(crate::service::apiserver::IN_CLUSTER_CA),
    }
}

fn custom_targets(raw: &raw::File, ctx: &Ctx<'_>) -> Result<Vec<Target>, ConfigError> {
    let mut targets = Vec::new();
    for (i, t) in raw.targets.iter().enumerate() {
        let fqdn = check_fqdn(&t.fqdn.value).map_err(|m| ctx.err(&t.fqdn, format!("targets[{i}].fqdn"), m))?;
        let port = match &t.port {
            Some(p) if !(1..=65535).contains(&p.value) => {
                return Err(ctx.err(
                    p,
                    format!("targets[{i}].port"),
                    format!("{} is not a TCP port (1-65535)", p.value),
                ));
            }
            Some(p) => p.value as u16,
            None => 443,
        };
        let name = match &t.name {
            Some(n) => {
                TARGET_NAME
                    .check(&n.value)
                    .map_err(|m| ctx.err(n, format!("targets[{i}].name"), m))?;
                n.value.clone()
            }
            None => fqdn.clone(),
        };
        let mut expected_ips = Vec::new();
        for (j, ip) in t.expected_ips.iter().flatten().enumerate() {
            let parsed: IpAddr = ip.value.trim().parse().map_err(|_| {
                ctx.err(
                    ip,
                    format!("targets[{i}].expected_ips[{j}]"),
                    format!("{:?} is not an IP address", ip.value),
                )
            })?;
            expected_ips.push(parsed);
        }
        let service = t.service.as_ref().map(|s| s.value).unwrap_or(Service::Custom);
        targets.push(Target {
            name,
            fqdn,
            service,
            port,
            expect: t.expect.as_ref().map(|e| e.value).unwrap_or(Expect::Private),
            expected_ips,
            privatelink_zone: None,
            tag_services: crate::service::of(service).tag_services(),
        });
    }
    Ok(targets)
}

fn resolvers(raw: &raw::File, ctx: &Ctx<'_>) -> Result<Vec<ResolverSpec>, ConfigError> {
    Ok(match &raw.resolvers {
        None => vec![ResolverSpec {
            name: "system".into(),
            source: ResolverSource::ResolvConf(vec![PathBuf::from(DEFAULT_RESOLV_CONF)]),
        }],
        Some(list) if list.is_empty() => {
            return Err(ctx.err_at_top("resolvers", "must not be empty (omit it for the system resolver)"));
        }
        Some(list) => {
            let mut out: Vec<ResolverSpec> = Vec::new();
            for (i, r) in list.iter().enumerate() {
                let field = format!("resolvers[{i}]");
                RESOLVER_NAME
                    .check(&r.name.value)
                    .map_err(|m| ctx.err(&r.name, format!("{field}.name"), m))?;
                if out.iter().any(|o| o.name == r.name.value) {
                    return Err(ctx.err(
                        &r.name,
                        format!("{field}.name"),
                        format!("resolver {:?} is defined twice", r.name.value),
                    ));
                }
                if let (Some(f), Some(_)) = (&r.resolv_conf_fallback, &r.servers) {
                    return Err(ctx.err(
                        f,
                        format!("{field}.resolv_conf_fallback"),
                        "applies to `resolv_conf`, not to `servers`",
                    ));
                }
                let source = match (&r.resolv_conf, &r.servers) {
                    (Some(_), Some(_)) => {
                        return Err(ctx.err(&r.name, &field, "set either `resolv_conf` or `servers`, not both"));
                    }
                    (None, Some(servers)) => {
                        if servers.is_empty() {
                            return Err(ctx.err(&r.name, format!("{field}.servers"), "must not be empty"));
                        }
                        let mut addrs = Vec::new();
                        for (j, s) in servers.iter().enumerate() {
                            let a =
                                parse_server(&s.value).map_err(|m| ctx.err(s, format!("{field}.servers[{j}]"), m))?;
                            addrs.push(a);
                        }
                        ResolverSource::Servers(addrs)
                    }
                    (primary, None) => {
                        let path = primary
                            .as_ref()
                            .map(|p| ctx.resolve_path(&p.value))
                            .unwrap_or_else(|| PathBuf::from(DEFAULT_RESOLV_CONF));
                        let mut paths = vec![path];
                        if let Some(f) = &r.resolv_conf_fallback {
                            paths.push(ctx.resolve_path(&f.value));
                        }
                        // The files are the node's state, read at every round: one that
                        // cannot be used is a finding then, never a configuration error.
                        ResolverSource::ResolvConf(paths)
                    }
                };
                out.push(ResolverSpec {
                    name: r.name.value.clone(),
                    source,
                });
            }
            out
        }
    })
}

fn scoring_service(raw: &raw::File, ctx: &Ctx<'_>) -> Result<Option<(String, String)>, ConfigError> {
    Ok(match &raw.scoring_service {
        None => None,
        Some(s) => {
            let ns = s
                .namespace
                .as_ref()
                .map(|n| n.value.clone())
                .unwrap_or_else(|| "azureml".into());
            let name = s
                .name
                .as_ref()
                .map(|n| n.value.clone())
                .unwrap_or_else(|| "azureml-fe".into());
            for (field, value, spanned) in [("namespace", &ns, &s.namespace), ("name", &name, &s.name)] {
                let ok = !value.is_empty()
                    && value.len() <= 63
                    && value
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !value.starts_with('-')
                    && !value.ends_with('-');
                if !ok {
                    let msg =
                        format!("{value:?} is not a Kubernetes name (lower-case letters, digits and '-', at most 63)");
                    return Err(match spanned {
                        Some(sp) => ctx.err(sp, format!("scoring_service.{field}"), msg),
                        None => ctx.err_at_top(format!("scoring_service.{field}"), msg),
                    });
                }
            }
            Some((ns, name))
        }
    })
}

fn connect_via(raw: &raw::File, ctx: &Ctx<'_>, resolvers: &[ResolverSpec]) -> Result<usize, ConfigError> {
    Ok(match &raw.connect_via {
        None => 0,
        Some(c) => resolvers.iter().position(|r| r.name == c.value).ok_or_else(|| {
            let names: Vec<&str> = resolvers.iter().map(|r| r.name.as_str()).collect();
            ctx.err(
                c,
                "connect_via",
                format!(
                    "{:?} is not a configured resolver (have: {})",
                    c.value,
                    names.join(", ")
                ),
            )
        })?,
    })
}

fn private_ranges(raw: &raw::File, ctx: &Ctx<'_>) -> Result<Vec<IpNet>, ConfigError> {
    Ok(match &raw.private_ranges {
        None => default_private_ranges(),
        Some(list) if list.is_empty() => {
            return Err(ctx.err_at_top("private_ranges", "must not be empty (omit it for the defaults)"));
        }
        Some(list) => {
            let mut out = Vec::new();
            for (i, r) in list.iter().enumerate() {
                let field = format!("private_ranges[{i}]");
                let net: IpNet = r.value.trim().parse().map_err(|_| {
                    ctx.err(
                        r,
                        field.clone(),
                        format!("{:?} is not a CIDR (expected e.g. 10.0.0.0/8 or fc00::/7)", r.value),
                    )
                })?;
                if net.trunc() != net {
                    return Err(ctx.err(
                        r,
                        field,
                        format!(
                            "{:?} has host bits set: the network is {} (a range names its first address)",
                            r.value,
                            net.trunc()
                        ),
                    ));
                }
                out.push(net);
            }
            out
        }
    })
}

fn extra_ca_file(raw: &raw::File, ctx: &Ctx<'_>) -> Result<Option<PathBuf>, ConfigError> {
    Ok(match raw.tls.as_ref().and_then(|t| t.extra_ca_file.as_ref()) {
        None => None,
        Some(p) => {
            let path = ctx.resolve_path(&p.value);
            crate::nodefiles::load_pem_certs(&path).map_err(|e| ctx.err(p, "tls.extra_ca_file", e.to_string()))?;
            Some(path)
        }
    })
}

/// Parses the agent's listen address (`IP:port`, `[v6]:port` or `:port`).
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    full.parse::<SocketAddr>().map_err(|_| {
        format!(
            "{} is not a listen address (expected IP:port, e.g. 0.0.0.0:9469 or [::]:9469)",
            Shown(s)
        )
    })
}

/// A duration key: parsed with humantime and kept within `min..=max`
/// (milliseconds, with how to show them); `default` when absent.
fn duration_field(
    ctx: &Ctx<'_>,
    value: Option<&S<String>>,
    field: &str,
    default: Duration,
    (min_ms, min_shown): (u64, &str),
    (max_ms, max_shown): (u64, &str),
    example: &str,
) -> Result<Duration, ConfigError> {
    let Some(t) = value else { return Ok(default) };
    let d = humantime::parse_duration(t.value.trim()).map_err(|e| {
        ctx.err(
            t,
            field,
            format!("invalid duration {:?}: {e} (expected e.g. {example})", t.value),
        )
    })?;
    if d < Duration::from_millis(min_ms) || d > Duration::from_millis(max_ms) {
        return Err(ctx.err(
            t,
            field,
            format!("{:?} is out of range: expected {min_shown} to {max_shown}", t.value),
        ));
    }
    Ok(d)
}

// ---------------------------------------------------------------------------
// Value checks. Each returns a message saying what is expected.

struct Shown<'a>(&'a str);
impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

fn check_guid(s: &str) -> Result<(), String> {
    let groups: Vec<&str> = s.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    let ok = groups.len() == 5
        && groups
            .iter()
            .zip(lens)
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{} is not a workspace GUID (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, the workspace's `workspaceId`)",
            Shown(s)
        ))
    }
}

/// A rule for a resource or object name: its length, the characters it may
/// hold, how it starts and ends, and what the message says is expected.
struct NameRule {
    what: &'static str,
    expected: &'static str,
    len: std::ops::RangeInclusive<usize>,
    chars: fn(char) -> bool,
    first: fn(char) -> bool,
    last: fn(char) -> bool,
    single_hyphens: bool,
}

fn any_char(_: char) -> bool {
    true
}

fn lower_or_digit(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

impl NameRule {
    const BASE: NameRule = NameRule {
        what: "",
        expected: "",
        len: 1..=64,
        chars: any_char,
        first: any_char,
        last: any_char,
        single_hyphens: false,
    };

    fn check(&self, s: &str) -> Result<(), String> {
        let ok = self.len.contains(&s.len())
            && s.chars().all(self.chars)
            && s.chars().next().is_some_and(self.first)
            && s.chars().last().is_some_and(self.last)
            && !(self.single_hyphens && s.contains("--"));
        if ok {
            Ok(())
        } else {
            Err(format!("{} is not {} ({})", Shown(s), self.what, self.expected))
        }
    }
}

const REGION: NameRule = NameRule {
    what: "an Azure region name",
    expected: "expected lower-case letters and digits, e.g. eastus, westeurope",
    len: 1..=40,
    chars: lower_or_digit,
    ..NameRule::BASE
};
const WORKSPACE_NAME: NameRule = NameRule {
    what: "a valid workspace name",
    expected: "3-33 letters, digits, '-' or '_', starting with a letter or digit",
    len: 3..=33,
    chars: |c| c.is_ascii_alphanumeric() || c == '-' || c == '_',
    first: |c| c.is_ascii_alphanumeric(),
    ..NameRule::BASE
};
const STORAGE_NAME: NameRule = NameRule {
    what: "a valid storage account name",
    expected: "3-24 lower-case letters and digits",
    len: 3..=24,
    chars: lower_or_digit,
    ..NameRule::BASE
};
const VAULT_NAME: NameRule = NameRule {
    what: "a valid key vault name",
    expected: "3-24 letters, digits and single hyphens, starting with a letter, ending with a letter or digit",
    len: 3..=24,
    chars: |c| c.is_ascii_alphanumeric() || c == '-',
    first: |c| c.is_ascii_alphabetic(),
    last: |c| c.is_ascii_alphanumeric(),
    single_hyphens: true,
};
const REGISTRY_NAME: NameRule = NameRule {
    what: "a valid container registry name",
    expected: "5-50 letters and digits",
    len: 5..=50,
    chars: |c| c.is_ascii_alphanumeric(),
    ..NameRule::BASE
};
const TARGET_NAME: NameRule = NameRule {
    what: "a valid target name",
    expected: "1-128 letters, digits, '-', '_' or '.'",
    len: 1..=128,
    chars: |c| c.is_ascii_alphanumeric() || "-_.".contains(c),
    ..NameRule::BASE
};
const RESOLVER_NAME: NameRule = NameRule {
    what: "a valid resolver name",
    expected: "1-64 letters, digits, '-' or '_'",
    len: 1..=64,
    chars: |c| c.is_ascii_alphanumeric() || "-_".contains(c),
    ..NameRule::BASE
};

/// Validates a DNS name and returns it lower-cased without a trailing dot.
pub fn check_fqdn(s: &str) -> Result<String, String> {
    let trimmed = s.trim().trim_end_matches('.');
    let bad = || {
        format!(
            "{} is not a valid DNS name (labels of 1-63 letters, digits, '-' or '_', at most 253 characters, at least two labels)",
            Shown(s)
        )
    };
    if trimmed.is_empty() || trimmed.len() > 253 || !trimmed.contains('.') {
        return Err(bad());
    }
    for label in trimmed.split('.') {
        if label.is_empty()
            || label.len() > 63
            || label.starts_with('-')
            || label.ends_with('-')
            || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(bad());
        }
    }
    Ok(trimmed.to_ascii_lowercase())
}

/// Parses `ip`, `ip:port` or `[v6]:port`; the port defaults to 53.
pub fn parse_server(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        if sa.port() == 0 {
            return Err(format!("{} has port 0", Shown(s)));
        }
        return Ok(sa);
    }
    Err(format!(
        "{} is not a DNS server address (expected an IP address or IP:port, e.g. 168.63.129.16 or [fd00::10]:53; host names are not accepted)",
        Shown(s)
    ))
}
