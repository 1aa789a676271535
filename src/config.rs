//! Configuration: the YAML file as written (`raw`), its validation, and the
//! resulting [`Config`] that the probe engine runs from. Nothing here does I/O
//! beyond reading the files the config names, so that `check-config` can tell
//! a user everything that is wrong before anything is probed.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::azure::Cloud;
pub use crate::input::{ConfigError, check_fqdn, parse_server};
use crate::input::{Ctx, REGION, RESOLVER_NAME, S, Shown, syntax_error};
use crate::model::MetricSet;
use crate::service::{SectionCtx, Target};
use crate::servicetags::ServiceTags;
use ipnet::IpNet;
use serde::Deserialize;

/// Default per-phase timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default interval between agent rounds.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// The range of a duration key: milliseconds, and how each bound is shown.
pub type Limits = ((u64, &'static str), (u64, &'static str));
/// `timeout`'s range (docs/configuration.md shows it; tests/docs.rs checks).
pub const TIMEOUT_LIMITS: Limits = ((10, "10ms"), (120_000, "120s"));
/// `interval`'s range.
pub const INTERVAL_LIMITS: Limits = ((10, "10ms"), (86_400_000, "24h"));
/// The most of a configuration file read (a large one is a few KiB).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// The agent's HTTP port (metrics, health, status): the one source for the
/// CLI, the fleet command and the docs (tests/docs.rs checks them).
pub const DEFAULT_PORT: u16 = 9469;
/// Default address of the agent's HTTP server.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9469";
/// Where `netprobe demo --serve` listens.
pub const DEMO_LISTEN: &str = "127.0.0.1:9469";
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
    /// `region: auto` and the node's region not read yet: the targets that
    /// need a region are left out until it is (`LoadOptions::region_pending`).
    pub region_pending: bool,
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
    /// The resolver (index) this one forwards to, when it is a cache in
    /// front of it (AKS LocalDNS in front of the VNet's DNS servers):
    /// `upstream: <name>`. Compared to tell a dead upstream behind a cache.
    pub upstream: Option<usize>,
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

// ---------------------------------------------------------------------------
// The file as written.

mod raw {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ScoringService {
        pub namespace: Option<S<String>>,
        pub name: Option<S<String>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Resolver {
        pub name: S<String>,
        pub resolv_conf: Option<S<String>>,
        /// Used when `resolv_conf` cannot be read (e.g. a node without systemd-resolved).
        pub resolv_conf_fallback: Option<S<String>>,
        pub servers: Option<Vec<S<String>>>,
        /// The resolver this one forwards to (AKS LocalDNS's upstream).
        pub upstream: Option<S<String>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Tls {
        pub extra_ca_file: Option<S<String>>,
    }
}

/// The file as written: the generic keys, then one key per service that has
/// a section of its own (`service::services!`), and the function that
/// derives every service's targets from them in registry order.
macro_rules! file_format {
    ($($variant:ident => $text:literal : $module:ident :: $ty:ident $({ $key:ident })?),+ $(,)?) => {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            cloud: Option<S<Cloud>>,
            region: Option<S<String>>,
            timeout: Option<S<String>>,
            concurrency: Option<S<i64>>,
            resolvers: Option<Vec<raw::Resolver>>,
            connect_via: Option<S<String>>,
            private_ranges: Option<Vec<S<String>>>,
            tls: Option<raw::Tls>,
            interval: Option<S<String>>,
            listen: Option<S<String>>,
            metrics: Option<S<MetricSet>>,
            scoring_service: Option<raw::ScoringService>,
            service_tags_file: Option<S<String>>,
            api_server_ca_file: Option<S<String>>,
            $($(
                #[serde(default)]
                $key: crate::service::$module::Section,
            )?)+
        }

        /// Every service section's targets, in registry order.
        fn service_targets(file: &File, ctx: &SectionCtx<'_>) -> Result<Vec<Target>, ConfigError> {
            let mut targets = Vec::new();
            $($(
                targets.extend(crate::service::$module::targets(&file.$key, ctx)?);
            )?)+
            Ok(targets)
        }
    };
}

crate::service::services!(file_format);

/// Every top-level key of the configuration file, as its parser knows them
/// (the generic keys and each service's): read from serde's own field list,
/// so that the Helm chart's schema and the docs can be checked against it.
pub fn keys() -> &'static [&'static str] {
    use serde::de::{self, Deserializer, Visitor};
    struct Fields<'a>(&'a mut &'static [&'static str]);
    impl<'de> Deserializer<'de> for Fields<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("fields read"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
            unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = File::deserialize(Fields(&mut fields));
    fields
}

/// What the environment tells the configuration (`cluster` reads it).
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// The node's region (label `topology.kubernetes.io/region`), for `region: auto`.
    pub node_region: Option<String>,
    /// Accept `region: auto` without a known node region, deriving names with
    /// the literal region `auto` (for `check-config` and `targets` off-cluster).
    pub allow_unresolved_auto: bool,
    /// `KUBERNETES_SERVICE_HOST` and `_PORT` when the host is a DNS name
    /// (AKS sets the API server's FQDN in pods that ask for it): probed as
    /// the `api-server` target unless `api_server_fqdn` says otherwise.
    pub api_server_host: Option<(String, u16)>,
    /// On a node whose Node could not be read yet (an API server or DNS
    /// outage): `region: auto` loads with the region unknown, the targets
    /// that need it left out until the agent reads the Node again.
    pub region_pending: bool,
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with(path, &LoadOptions::default())
    }

    /// Reads and validates a configuration file with what the environment knows.
    pub fn load_with(path: &Path, opts: &LoadOptions) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let bytes = crate::nodefiles::read_bounded(path, MAX_CONFIG_BYTES).map_err(|error| ConfigError::Read {
            path: shown.clone(),
            error,
        })?;
        let text = String::from_utf8(bytes).map_err(|_| ConfigError::Syntax {
            path: shown.clone(),
            message: "the file is not UTF-8 text".into(),
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
            serde_path_to_error::deserialize::<_, File>(de).map_err(|e| {
                field = e.path().to_string();
                e.into_inner()
            })
        });
        let raw = parsed.map_err(|e| syntax_error(&e, path, &field))?;
        let ctx = Ctx { path, base };
        validate(raw, &ctx, opts)
    }
}

fn validate(raw: File, ctx: &Ctx<'_>, opts: &LoadOptions) -> Result<Config, ConfigError> {
    let cloud = raw.cloud.as_ref().map(|c| c.value).unwrap_or_default();
    let (region, region_auto) = region(&raw, ctx, opts)?;
    let region_pending = region_auto && region.is_none();
    let timeout = duration_field(
        ctx,
        raw.timeout.as_ref(),
        "timeout",
        DEFAULT_TIMEOUT,
        TIMEOUT_LIMITS,
        "5s, 1500ms",
    )?;
    let interval = duration_field(
        ctx,
        raw.interval.as_ref(),
        "interval",
        DEFAULT_INTERVAL,
        INTERVAL_LIMITS,
        "30s, 1m",
    )?;
    let listen = match &raw.listen {
        Some(l) => parse_listen(&l.value).map_err(|m| ctx.err(l, "listen", m))?,
        None => SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)),
    };
    // Sections are checked in the file's usual order, so that the first
    // error reported is the first a reader meets.
    let concurrency = concurrency(&raw, ctx)?;
    let targets = targets(
        &raw,
        &SectionCtx {
            input: ctx,
            cloud,
            region: region.as_deref(),
            node_region: opts.node_region.as_deref(),
            api_server_host: opts.api_server_host.as_ref(),
            region_pending,
        },
    )?;
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
        region_pending,
        scoring_service,
        service_tags,
        api_server_ca_file,
    })
}

/// `region`, and whether it was `auto` (then the node's region, if known).
fn region(raw: &File, ctx: &Ctx<'_>, opts: &LoadOptions) -> Result<(Option<String>, bool), ConfigError> {
    let region_auto = raw.region.as_ref().is_some_and(|r| r.value == "auto");
    let region = match &raw.region {
        Some(r) if r.value == "auto" => match (&opts.node_region, opts.allow_unresolved_auto) {
            (Some(node), _) => {
                REGION
                    .check(node)
                    .map_err(|m| ctx.err(r, "region", format!("auto: the node's region label: {m}")))?;
                Some(node.clone())
            }
            (None, true) => Some("auto".to_string()),
            (None, false) if opts.region_pending => None,
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

fn concurrency(raw: &File, ctx: &Ctx<'_>) -> Result<usize, ConfigError> {
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
fn targets(raw: &File, ctx: &SectionCtx<'_>) -> Result<Vec<Target>, ConfigError> {
    let targets = service_targets(raw, ctx)?;
    let ctx = ctx.input;
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

/// `service_tags_file`, read and indexed now: a file that cannot be used is
/// a configuration error naming it.
fn service_tags(raw: &File, ctx: &Ctx<'_>) -> Result<Option<Arc<ServiceTags>>, ConfigError> {
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
fn api_server_ca_file(raw: &File, ctx: &Ctx<'_>) -> PathBuf {
    match &raw.api_server_ca_file {
        Some(p) => ctx.resolve_path(&p.value),
        None => PathBuf::from(crate::service::apiserver::IN_CLUSTER_CA),
    }
}

fn resolvers(raw: &File, ctx: &Ctx<'_>) -> Result<Vec<ResolverSpec>, ConfigError> {
    Ok(match &raw.resolvers {
        None => vec![ResolverSpec {
            name: "system".into(),
            source: ResolverSource::ResolvConf(vec![PathBuf::from(DEFAULT_RESOLV_CONF)]),
            upstream: None,
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
                    upstream: None,
                });
            }
            for (i, r) in list.iter().enumerate() {
                let Some(up) = &r.upstream else { continue };
                let at = out.iter().position(|o| o.name == up.value);
                out[i].upstream = Some(match at {
                    Some(j) if j != i => j,
                    _ => {
                        let others: Vec<&str> = out
                            .iter()
                            .filter(|o| o.name != r.name.value)
                            .map(|o| o.name.as_str())
                            .collect();
                        return Err(ctx.err(
                            up,
                            format!("resolvers[{i}].upstream"),
                            format!(
                                "{:?} is not another configured resolver (have: {})",
                                up.value,
                                others.join(", ")
                            ),
                        ));
                    }
                });
            }
            out
        }
    })
}

fn scoring_service(raw: &File, ctx: &Ctx<'_>) -> Result<Option<(String, String)>, ConfigError> {
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

fn connect_via(raw: &File, ctx: &Ctx<'_>, resolvers: &[ResolverSpec]) -> Result<usize, ConfigError> {
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

fn private_ranges(raw: &File, ctx: &Ctx<'_>) -> Result<Vec<IpNet>, ConfigError> {
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

fn extra_ca_file(raw: &File, ctx: &Ctx<'_>) -> Result<Option<PathBuf>, ConfigError> {
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
    ((min_ms, min_shown), (max_ms, max_shown)): Limits,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The addresses written out as text name the one port.
    #[test]
    fn the_listen_defaults_use_the_port() {
        for text in [DEFAULT_LISTEN, DEMO_LISTEN] {
            assert_eq!(parse_listen(text).unwrap().port(), DEFAULT_PORT, "{text}");
        }
        let cfg = Config::from_yaml("key_vaults: [kvone]\n", "t.yaml", None).unwrap();
        assert_eq!(cfg.listen.to_string(), DEFAULT_LISTEN);
    }

    /// The keys come from the parser: the generic ones and every service's.
    #[test]
    fn the_file_keys_are_the_parsers() {
        let keys = keys();
        for k in [
            "cloud",
            "resolvers",
            "api_server_ca_file",
            "workspace",
            "key_vaults",
            "aml_extension",
            "api_server_fqdn",
        ] {
            assert!(keys.contains(&k), "{k}: {keys:?}");
        }
        assert_eq!(keys.len(), 21, "{keys:?}");
    }
}
