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
use crate::input::{Ctx, Errors, REGION, RESOLVER_NAME, S, Shown, syntax_error};
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
    /// Also probe each private target a workload's client would send to the
    /// HTTP proxy through that proxy (`proxy_probe`; off by default).
    pub proxy_probe: bool,
    /// The proxy's CA, trusted on the proxy path only (a TLS-inspecting proxy).
    pub proxy_ca_file: Option<PathBuf>,
}

impl Config {
    /// What is valid but probably wrong: a region outside the cloud's
    /// list (`westurope`). `check-config` prints these; the agent logs them.
    pub fn warnings(&self) -> Vec<String> {
        self.region
            .as_deref()
            .filter(|_| !self.region_auto)
            .and_then(|r| self.cloud.region_warning(r))
            .into_iter()
            .collect()
    }

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
    use crate::input::schema;

    /// The AML inference router Service to check (an internal load balancer
    /// with private IPs).
    #[derive(Debug, Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct ScoringService {
        /// Default: azureml.
        pub namespace: Option<S<String>>,
        /// Default: azureml-fe.
        pub name: Option<S<String>>,
    }

    /// A named DNS path: the pod's resolv.conf (no key), a resolv.conf file,
    /// or DNS servers asked directly.
    #[derive(Debug, Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Resolver {
        /// The resolver's name (the `resolver` label); `system` is the pod's path.
        #[schemars(schema_with = "schema::resolver_name")]
        pub name: S<String>,
        /// A resolv.conf whose `nameserver` lines are read at every round.
        pub resolv_conf: Option<S<String>>,
        /// Used when `resolv_conf` cannot be read (e.g. a node without systemd-resolved).
        pub resolv_conf_fallback: Option<S<String>>,
        /// DNS servers asked directly: IP addresses (or IP:port), not host names.
        #[serde(default)]
        #[schemars(schema_with = "schema::servers")]
        pub servers: Option<Vec<S<String>>>,
        /// The resolver this one forwards to (AKS LocalDNS's upstream).
        #[serde(default)]
        #[schemars(schema_with = "schema::resolver_name")]
        pub upstream: Option<S<String>>,
    }

    #[derive(Debug, Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Tls {
        /// A PEM file of CAs trusted besides the system's (a TLS-inspecting firewall's).
        pub extra_ca_file: Option<S<String>>,
    }
}

/// The file as written: the generic keys, then one key per service that has
/// a section of its own (`service::services!`), and the function that
/// derives every service's targets from them in registry order.
macro_rules! file_format {
    ($($variant:ident => $text:literal : $module:ident :: $ty:ident $({ $key:ident })?),+ $(,)?) => {
        /// netprobe.yaml (docs/configuration.md).
        #[derive(Debug, Deserialize, schemars::JsonSchema)]
        #[serde(deny_unknown_fields)]
        #[schemars(title = "netprobe configuration")]
        struct File {
            /// The Azure cloud, which decides every DNS suffix.
            cloud: Option<S<Cloud>>,
            #[serde(default)]
            #[schemars(schema_with = "crate::input::schema::region")]
            region: Option<S<String>>,
            /// Per phase (DNS, TCP, TLS, HTTP): 10ms to 120s; default 5s.
            #[serde(default)]
            #[schemars(schema_with = "crate::input::schema::duration")]
            timeout: Option<S<String>>,
            /// DNS lookups and connections in flight at once; default 64.
            #[schemars(range(min = 1, max = 4096))]
            concurrency: Option<S<i64>>,
            /// The DNS paths compared; default: the pod's resolv.conf (`system`).
            #[schemars(length(min = 1))]
            resolvers: Option<Vec<raw::Resolver>>,
            /// The resolver whose answers the TCP, TLS and HTTP checks connect to.
            #[serde(default)]
            #[schemars(schema_with = "crate::input::schema::resolver_name")]
            connect_via: Option<S<String>>,
            /// The ranges a private answer lies in; default RFC 1918, 100.64.0.0/10, fc00::/7.
            #[serde(default)]
            #[schemars(schema_with = "crate::input::schema::cidrs")]
            private_ranges: Option<Vec<S<String>>>,
            tls: Option<raw::Tls>,
            /// Between rounds (±10% jitter): 10ms to 24h; default 30s.
            #[serde(default)]
            #[schemars(schema_with = "crate::input::schema::duration")]
            interval: Option<S<String>>,
            /// The agent's HTTP address (metrics, health, status); default 0.0.0.0:9469.
            listen: Option<S<String>>,
            /// Which per-target series /metrics carries; default compact.
            metrics: Option<S<MetricSet>>,
            scoring_service: Option<raw::ScoringService>,
            /// Azure's Service Tags file (trimmed), for the egress targets' ranges.
            service_tags_file: Option<S<String>>,
            /// The CA the API server's certificate is checked against.
            api_server_ca_file: Option<S<String>>,
            /// Also probe the private targets a workload would send to the HTTP proxy through it; default false.
            proxy_probe: Option<S<bool>>,
            /// A PEM file of the proxy's CA, trusted on the proxy path only (a TLS-inspecting proxy).
            proxy_ca_file: Option<S<String>>,
            $($(
                #[serde(default)]
                #[schemars(skip)]
                $key: crate::service::$module::Section,
            )?)+
        }

        /// The keys that derive targets (one per service with a section):
        /// a file needs one of them (the chart refuses values without).
        pub fn section_keys() -> &'static [&'static str] {
            &[$($(stringify!($key),)?)+]
        }

        /// Every service section's key and its JSON Schema (its module's
        /// `section_schema`: the value's rules, which a type alone cannot say).
        fn section_schemas(g: &mut schemars::SchemaGenerator) -> Vec<(&'static str, schemars::Schema)> {
            vec![$($(
                (stringify!($key), crate::service::$module::section_schema(g)),
            )?)+]
        }

        /// Every service section's targets, in registry order.
        fn service_targets(file: &File, ctx: &SectionCtx<'_>) -> Result<Vec<Target>, ConfigError> {
            let mut targets = Vec::new();
            let mut errors = crate::input::Errors::default();
            $($(
                if let Some(t) = errors.keep(crate::service::$module::targets(&file.$key, ctx)) {
                    targets.extend(t);
                }
            )?)+
            errors.finish(targets)
        }
    };
}

crate::service::services!(file_format);

/// The JSON Schema of netprobe.yaml, from the types it is read into: the
/// keys, their types and the values' rules that a schema can say (names,
/// addresses, ranges, the all-zero workspace id). The chart's
/// values.schema.json carries it for `config`, and docs/netprobe.schema.json
/// publishes it for editors (`scripts/gen` writes both).
pub fn json_schema() -> serde_json::Value {
    let mut settings = schemars::generate::SchemaSettings::draft07();
    // One self-contained document: the chart embeds it under `config`.
    settings.inline_subschemas = true;
    settings.meta_schema = Some("http://json-schema.org/draft-07/schema#".into());
    let mut generator = settings.into_generator();
    let mut root = generator.root_schema_for::<File>();
    for (key, schema) in section_schemas(&mut generator) {
        root.ensure_object()["properties"][key] = schema.to_value();
    }
    root.to_value()
}

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

/// The chart's values.yaml: its `config` is what Helm merges a user's
/// `config` over (`Config::from_helm_values`).
const CHART_VALUES: &str = include_str!("../deploy/helm/netprobe/values.yaml");

/// Where a configuration's text comes from, as `check-config` is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A netprobe.yaml file.
    File(PathBuf),
    /// netprobe.yaml on standard input (`-c -`).
    Stdin,
    /// A Helm values file: its `config` (`-f values.yaml`).
    HelmValues(PathBuf),
}

impl Source {
    /// How messages name it.
    pub fn name(&self) -> String {
        match self {
            Source::File(path) => path.display().to_string(),
            Source::Stdin => "<stdin>".to_string(),
            Source::HelmValues(path) => format!("{} (config)", path.display()),
        }
    }

    /// Reads and validates the configuration (`check-config`).
    pub fn load(&self, opts: &LoadOptions) -> Result<Config, ConfigError> {
        match self {
            Source::File(path) => Config::load_with(path, opts),
            Source::Stdin => {
                let text = read_text(Path::new("/dev/stdin"), &self.name())?;
                Config::from_yaml_with(&text, &self.name(), None, opts)
            }
            Source::HelmValues(path) => {
                let shown = path.display().to_string();
                Config::from_helm_values(&read_text(path, &shown)?, &shown, path.parent(), opts)
            }
        }
    }
}

/// A file's text, at most [`MAX_CONFIG_BYTES`].
fn read_text(path: &Path, shown: &str) -> Result<String, ConfigError> {
    let bytes = crate::nodefiles::read_bounded(path, MAX_CONFIG_BYTES)
        .or_else(|e| match e.kind() {
            // A pipe is not a regular file: read it, bounded all the same.
            std::io::ErrorKind::InvalidInput => {
                use std::io::Read;
                let mut data = Vec::new();
                std::fs::File::open(path)?
                    .take(MAX_CONFIG_BYTES + 1)
                    .read_to_end(&mut data)?;
                if data.len() as u64 > MAX_CONFIG_BYTES {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("larger than {MAX_CONFIG_BYTES} bytes"),
                    ));
                }
                Ok(data)
            }
            _ => Err(e),
        })
        .map_err(|error| ConfigError::Read {
            path: shown.to_string(),
            error,
        })?;
    String::from_utf8(bytes).map_err(|_| ConfigError::Syntax {
        path: shown.to_string(),
        message: "the file is not UTF-8 text".into(),
    })
}

/// Helm's merge of values: maps key by key, anything else replaced, and a
/// `null` deletes the key.
fn helm_merge(base: &mut serde_json::Value, over: serde_json::Value) {
    use serde_json::Value;
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                if v.is_null() {
                    b.remove(&k);
                } else if let Some(slot) = b.get_mut(&k) {
                    helm_merge(slot, v);
                } else {
                    b.insert(k, v);
                }
            }
        }
        (b, o) => *b = o,
    }
}

impl Config {
    /// The `config` of a Helm values file, merged over the chart's default
    /// `config` the way Helm merges values, then validated as the agent
    /// will: the pre-flight of `helm install -f values.yaml`. Messages name
    /// the values file (`values.yaml (config)`) and the field; the merged
    /// text's lines are not the file's, so they give none.
    pub fn from_helm_values(
        text: &str,
        path: &str,
        base: Option<&Path>,
        opts: &LoadOptions,
    ) -> Result<Config, ConfigError> {
        let syntax = |message: String| ConfigError::Syntax {
            path: path.to_string(),
            message,
        };
        let values: serde_json::Value =
            serde_saphyr::from_str(text).map_err(|e| syntax(format!("not a YAML values file: {e}")))?;
        let Some(user) = values.get("config").filter(|c| c.is_object()).cloned() else {
            return Err(syntax(
                "no `config` map: a Helm values file for netprobe sets the agent's netprobe.yaml under `config:`"
                    .into(),
            ));
        };
        let chart: serde_json::Value = serde_saphyr::from_str(CHART_VALUES).expect("the chart's values.yaml parses");
        let mut merged = chart["config"].clone();
        helm_merge(&mut merged, user);
        // JSON is YAML: the agent's own parser reads the merged config.
        let shown = Source::HelmValues(path.into()).name();
        Config::from_yaml_with(&merged.to_string(), &shown, base, opts).map_err(|e| match e {
            ConfigError::Invalid {
                path, field, message, ..
            } => ConfigError::Invalid {
                path,
                location: None,
                field,
                message,
            },
            e => e,
        })
    }
}

fn validate(raw: File, ctx: &Ctx<'_>, opts: &LoadOptions) -> Result<Config, ConfigError> {
    // Every section is checked, and every error kept (in the file's usual
    // order), so that one run of `check-config` tells all; a section in
    // error stands in with its default for the sections that read it.
    let mut errors = Errors::default();
    let cloud = raw.cloud.as_ref().map(|c| c.value).unwrap_or_default();
    let region_result = errors.keep(region(&raw, ctx, opts));
    let region_failed = region_result.is_none();
    let (region, region_auto) = region_result.unwrap_or((None, false));
    let region_pending = region_auto && region.is_none();
    // A section in error stands in with its default below: `finish`
    // returns the errors then, never this Config.
    let timeout = errors
        .keep(duration_field(
            ctx,
            raw.timeout.as_ref(),
            "timeout",
            DEFAULT_TIMEOUT,
            TIMEOUT_LIMITS,
            "5s, 1500ms",
        ))
        .unwrap_or(DEFAULT_TIMEOUT);
    let interval = errors
        .keep(duration_field(
            ctx,
            raw.interval.as_ref(),
            "interval",
            DEFAULT_INTERVAL,
            INTERVAL_LIMITS,
            "30s, 1m",
        ))
        .unwrap_or(DEFAULT_INTERVAL);
    let listen = raw
        .listen
        .as_ref()
        .and_then(|l| errors.keep(parse_listen(&l.value).map_err(|m| ctx.err(l, "listen", m))))
        .unwrap_or(SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)));
    let concurrency = errors.keep(concurrency(&raw, ctx)).unwrap_or(DEFAULT_CONCURRENCY);
    let section_ctx = SectionCtx {
        input: ctx,
        cloud,
        region: region.as_deref(),
        node_region: opts.node_region.as_deref(),
        api_server_host: opts.api_server_host.as_ref(),
        // A region in error is told once: the sections that need it wait,
        // as for a region not known yet.
        region_pending: region_pending || region_failed,
    };
    let targets = errors
        .keep(targets(&raw, &section_ctx, !region_failed))
        .unwrap_or_default();
    let resolvers = errors.keep(resolvers(&raw, ctx));
    let scoring_service = errors.keep(scoring_service(&raw, ctx)).flatten();
    // `connect_via` names a resolver: checked when the resolvers are valid.
    let connect_via = resolvers
        .as_ref()
        .and_then(|r| errors.keep(connect_via(&raw, ctx, r)))
        .unwrap_or(0);
    let resolvers = resolvers.unwrap_or_default();
    let private_ranges = errors
        .keep(private_ranges(&raw, ctx))
        .unwrap_or_else(default_private_ranges);
    let extra_ca_file = errors.keep(extra_ca_file(&raw, ctx)).flatten();
    let service_tags = errors.keep(service_tags(&raw, ctx)).flatten();
    let api_server_ca_file = api_server_ca_file(&raw, ctx);
    let proxy_ca_file = errors.keep(proxy_ca_file(&raw, ctx)).flatten();
    errors.finish(Config {
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
        proxy_probe: raw.proxy_probe.as_ref().is_some_and(|p| p.value),
        proxy_ca_file,
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
/// Every service's targets; none is an error unless `need_some` is false
/// (the region was in error, and the sections that need it waited).
fn targets(raw: &File, ctx: &SectionCtx<'_>, need_some: bool) -> Result<Vec<Target>, ConfigError> {
    let targets = service_targets(raw, ctx)?;
    let ctx = ctx.input;
    if targets.is_empty() && need_some {
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

fn proxy_ca_file(raw: &File, ctx: &Ctx<'_>) -> Result<Option<PathBuf>, ConfigError> {
    Ok(match &raw.proxy_ca_file {
        None => None,
        Some(p) => {
            let path = ctx.resolve_path(&p.value);
            crate::nodefiles::load_pem_certs(&path).map_err(|e| ctx.err(p, "proxy_ca_file", e.to_string()))?;
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
        assert_eq!(keys.len(), 23, "{keys:?}");
    }
}
