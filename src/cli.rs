//! The command line: parses arguments, dispatches, maps outcomes to exit
//! codes (0 healthy, 1 findings, 2 bad config or usage). `anyhow` lives here,
//! at the edge, and nowhere in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::probe::Engine;
use crate::render::{self, Format};
use crate::report::RoundReport;

/// Exit code: every target healthy.
pub const EXIT_HEALTHY: u8 = 0;
/// Exit code: at least one finding.
pub const EXIT_FINDINGS: u8 = 1;
/// Exit code: bad configuration or usage.
pub const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "netprobe",
    version,
    about = "Proves that an AKS node reaches an Azure ML workspace and its resources privately"
)]
pub struct Cli {
    /// Log format on stderr (level from RUST_LOG; default: info for the agent, warn otherwise).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// `netprobe report`'s (and `kubectl netprobe report`'s) `-o`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Human,
    Wide,
    Json,
    Yaml,
}

/// The name the binary runs under as a kubectl plugin (krew installs it
/// so: `kubectl netprobe report`).
pub const KUBECTL_PLUGIN: &str = "kubectl-netprobe";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Probe the configured targets: forever as an agent, or one round with --once.
    Probe {
        /// Configuration file.
        #[arg(long, short, env = "NETPROBE_CONFIG", default_value = "/etc/netprobe/netprobe.yaml")]
        config: PathBuf,
        /// Run one round, print the report and exit 0 (healthy), 1 (findings) or 2 (bad config).
        #[arg(long)]
        once: bool,
        /// Report format (with --once).
        #[arg(long, short, value_enum, default_value_t = Format::Human)]
        output: Format,
        /// Agent HTTP address (overrides the config's `listen`; default 0.0.0.0:9469).
        #[arg(long)]
        listen: Option<String>,
        /// Agent: set the condition AzureMLPrivateNetwork on the Node (needs
        /// `patch` on nodes/status; off unless asked).
        #[arg(long, env = "NETPROBE_NODE_CONDITION")]
        node_condition: bool,
    },
    /// Validate a configuration file and exit 0 (valid) or 2 (invalid). Node
    /// files it cannot read here (resolv.conf) are warnings: on a node, the
    /// agent reports them per resolver at every round.
    CheckConfig {
        /// The configuration file; `-` reads it from standard input.
        #[arg(long, short, env = "NETPROBE_CONFIG", default_value = "/etc/netprobe/netprobe.yaml")]
        config: PathBuf,
        /// A Helm values file instead: its `config`, merged over the chart's
        /// defaults as Helm merges it (the pre-flight of `helm install -f`).
        #[arg(long = "values", short = 'f', value_name = "VALUES_YAML")]
        values: Option<PathBuf>,
    },
    /// The whole cluster: every agent's last round through the API server, as
    /// a nodes x targets view (exit 0: all fine, 1: findings, 2: cannot read).
    Report(ReportArgs),
    /// Print the targets a configuration derives.
    Targets {
        #[arg(long, short, env = "NETPROBE_CONFIG", default_value = "/etc/netprobe/netprobe.yaml")]
        config: PathBuf,
        #[arg(long, short, value_enum, default_value_t = Format::Human)]
        output: Format,
    },
    /// Run one round against a built-in simulated VNet (no Azure needed), or
    /// with --serve the agent over it until SIGTERM.
    #[cfg(feature = "sim")]
    Demo {
        #[arg(long, short, value_enum, default_value_t = Format::Human)]
        output: Format,
        /// Run the agent over the simulated VNet (rounds, /metrics, /status,
        /// the status page) until SIGTERM; two targets fail and recover in turn.
        #[arg(long)]
        serve: bool,
        /// With --serve: the HTTP address.
        #[arg(long, default_value = crate::config::DEMO_LISTEN, requires = "serve")]
        listen: String,
        /// With --serve: time between rounds (e.g. 10s).
        #[arg(long, default_value = "10s", requires = "serve")]
        interval: String,
        /// With --serve: how long each failing or healthy phase of the flapping targets lasts.
        #[arg(long, default_value = "6m", requires = "serve")]
        flap: String,
    },
}

/// `netprobe report`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Kubeconfig file (default: in-cluster, then $KUBECONFIG or ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current one).
    #[arg(long)]
    context: Option<String>,
    /// The agents' namespace.
    #[arg(long, short, default_value = "netprobe")]
    namespace: String,
    /// The agent pods' label selector.
    #[arg(long, short = 'l', default_value = crate::fleet::AGENT_SELECTOR)]
    selector: String,
    /// The agents' HTTP port.
    #[arg(long, default_value_t = crate::config::DEFAULT_PORT)]
    port: u16,
    /// A last round older than this is stale (e.g. 5m).
    #[arg(long, default_value = "5m")]
    stale_after: String,
    /// Also read this node's full /status and print its diagnoses (repeatable).
    #[arg(long = "node")]
    nodes: Vec<String>,
    /// Agent requests in flight at once through the API server.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,
    /// The whole read: agents not read by then are reported as not read (e.g. 2m).
    #[arg(long, default_value = "2m")]
    deadline: String,
    /// human, wide (every node, not only those not fine), json or yaml,
    /// as kubectl's `-o`.
    #[arg(long, short, value_enum, default_value_t = ReportFormat::Human)]
    output: ReportFormat,
}

/// Entry point used by `main.rs`.
pub fn main() -> ExitCode {
    // Run as `kubectl-netprobe` (a kubectl plugin), usage and help say
    // `kubectl netprobe`.
    let plugin = std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .is_some_and(|name| name == KUBECTL_PLUGIN);
    let parsed = if plugin {
        use clap::{CommandFactory, FromArgMatches};
        <Cli as CommandFactory>::command()
            .name("kubectl netprobe")
            .bin_name("kubectl netprobe")
            .try_get_matches()
            .and_then(|m| Cli::from_arg_matches(&m))
    } else {
        Cli::try_parse()
    };
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_HEALTHY });
        }
    };
    init_tracing(
        cli.log_format,
        matches!(cli.command, Command::Probe { once: false, .. }),
    );
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // Several errors of one file: one line each, each prefixed.
            for line in format!("{e:#}").lines() {
                eprintln!("netprobe: {line}");
            }
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Logs go to stderr; the agent logs at info by default, one-shot commands
/// only warnings (their report is on stdout).
fn init_tracing(format: LogFormat, agent: bool) {
    // One-shot commands say an API error once, in their own message (with
    // the server and the root cause): kube's own error log would repeat it.
    let default = if agent { "info" } else { "warn,kube_client=off" };
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref(), default);
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let _ = match format {
        // JSON lines carry the event's own fields at the top level; the
        // module path is left out so that a `target` field means the probe target.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_target(false)
            .finish()
            .with(filter)
            .try_init(),
        LogFormat::Text => builder.finish().with(filter).try_init(),
    };
}

/// `RUST_LOG` as a list of `target=level` directives and a default level
/// (`info,netprobe::agent=debug`), through `tracing_subscriber`'s `Targets`
/// filter: the same syntax as before for everything netprobe documents,
/// without the regex-based `EnvFilter` (its field and span filters were
/// never used): 181 KB less binary (docs/benchmarks.md). A value that does
/// not parse falls back to `default`, as before.
fn log_filter(rust_log: Option<&str>, default: &str) -> tracing_subscriber::filter::Targets {
    let targets: tracing_subscriber::filter::Targets = rust_log
        .filter(|s| !s.trim().is_empty())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| default.parse().unwrap_or_default());
    // As with EnvFilter: errors of targets no directive names still show.
    match targets.default_level() {
        Some(_) => targets,
        None => targets.with_default(tracing::level_filters::LevelFilter::ERROR),
    }
}

/// One thread for every command. The agent's work is waiting on the network;
/// its CPU (4 ms per round at 10 targets, 0.33 s at 1,000: docs/benchmarks.md)
/// fits one thread well inside the pod's CPU limit, and every worker thread
/// costs a stack and an allocator arena on every node: the two workers this
/// replaced cost 0.8-1.0 MiB of peak RSS at 10 targets. Blocking work (a host
/// name for the Kubernetes API) runs on a small, bounded pool.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Runs a parsed command and returns the exit code.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::CheckConfig { config, values } => {
            let source = match values {
                Some(v) => crate::config::Source::HelmValues(v),
                None if config.as_os_str() == "-" => crate::config::Source::Stdin,
                None => crate::config::Source::File(config.clone()),
            };
            let shown = source.name();
            let cfg = source.load(&offline())?;
            for w in cfg.warnings() {
                eprintln!("warning: {shown}: {w}");
            }
            for w in cfg.node_file_warnings() {
                eprintln!("warning: not checked here: {w} (on a node, the agent reports this per round)");
            }
            out(&format!(
                "{shown}: valid, {} targets, {} resolvers\n",
                cfg.targets.len(),
                cfg.resolvers.len()
            ));
            Ok(EXIT_HEALTHY)
        }
        Command::Report(args) => report_command(args),
        Command::Targets { config, output } => {
            let cfg = Config::load_with(&config, &offline())?;

            out(&render_targets(&cfg, output));
            Ok(EXIT_HEALTHY)
        }
        Command::Probe {
            config,
            once,
            output,
            listen,
            node_condition,
        } => {
            // Kubernetes first: `region: auto` needs the node's region.
            let rt = runtime()?;
            let cluster = rt.block_on(crate::cluster::ClusterContext::discover(
                std::env::var("NODE_NAME").ok(),
            ));
            let load = cluster.load_options();
            let cfg = Config::load_with(&config, &load)?;
            if !once {
                let listen_override = match listen {
                    Some(l) => Some(crate::config::parse_listen(&l).map_err(|m| anyhow::anyhow!("--listen: {m}"))?),
                    None => None,
                };
                let opts = crate::agent::AgentOptions {
                    config_path: Some(config),
                    listen_override,
                    on_listen: None,
                    cluster,
                    min_interval: min_interval()?,
                    node_condition,
                };
                rt.block_on(crate::agent::run(cfg, opts))?;
                return Ok(EXIT_HEALTHY);
            }
            let engine = Engine::new(cfg).context("cannot set up TLS")?;
            let report = rt.block_on(crate::round::run(&engine, &cluster));
            Ok(print_report(&report, output))
        }
        #[cfg(feature = "sim")]
        Command::Demo {
            serve: true,
            listen,
            interval,
            flap,
            ..
        } => demo_serve(&listen, &interval, &flap),
        #[cfg(feature = "sim")]
        Command::Demo { output, .. } => demo_round(output),
    }
}

/// `netprobe demo`: one round over the simulated VNet, with its report.
#[cfg(feature = "sim")]
fn demo_round(output: Format) -> anyhow::Result<u8> {
    let rt = runtime()?;
    let report = rt.block_on(async {
        let vnet = crate::demo::DemoVnet::start().await?;
        let engine = Engine::with_tls(vnet.config()?, vnet.tls()?);
        anyhow::Ok(crate::round::run(&engine, &crate::cluster::ClusterContext::default()).await)
    })?;
    if output == Format::Human {
        out(
            "Simulated VNet on loopback: 127.0.10.0/24 plays the private endpoints' subnet and\n\
             127.0.200.0/24 the public internet. Resolver 'azure' stands in for Azure DNS\n\
             (168.63.129.16), 'system' for the customer DNS server that pods use.\n\n",
        );
    }
    Ok(print_report(&report, output))
}

/// `netprobe report`'s options from its arguments, then the report.
fn report_command(args: ReportArgs) -> anyhow::Result<u8> {
    use std::io::IsTerminal;
    let duration = |flag: &str, text: &str| {
        humantime::parse_duration(text).map_err(|_| anyhow::anyhow!("--{flag}: {text:?} is not a duration (e.g. 5m)"))
    };
    let opts = crate::fleet::FleetOptions {
        namespace: args.namespace,
        selector: args.selector,
        port: args.port,
        stale_after: duration("stale-after", &args.stale_after)?,
        deadline: duration("deadline", &args.deadline)?,
        concurrency: usize::from(args.concurrency),
        full: args.nodes,
        progress: std::io::stderr().is_terminal(),
        ..Default::default()
    };
    report(args.kubeconfig, args.context, &opts, args.output)
}

/// `netprobe report`: the fleet view, printed; 0 when all is fine, 1 otherwise.
fn report(
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
    opts: &crate::fleet::FleetOptions,
    output: ReportFormat,
) -> anyhow::Result<u8> {
    let rt = runtime()?;
    let report = rt.block_on(async {
        let (client, server) = kube_client(kubeconfig, context).await?;
        let (pods, nodes, notes) = crate::fleet::collect(&client, opts)
            .await
            .with_context(|| format!("API server {server}"))?;
        let mut report = crate::fleet::build(&pods, nodes.as_deref(), std::time::SystemTime::now(), opts.stale_after);
        report.notes.extend(notes);
        report.details = crate::fleet::read_details(&client, opts, &pods).await;
        anyhow::Ok(report)
    })?;
    match output {
        ReportFormat::Json => out(&(serde_json::to_string_pretty(&report).unwrap_or_default() + "\n")),
        ReportFormat::Yaml => out(&serde_saphyr::to_string(&report).context("cannot write the report as YAML")?),
        ReportFormat::Wide => out(&crate::fleet::wide(&report)),
        ReportFormat::Human => out(&crate::fleet::human(&report)),
    }
    Ok(if report.healthy { EXIT_HEALTHY } else { EXIT_FINDINGS })
}

/// `netprobe demo --serve`: the agent over the simulated VNet until SIGTERM.
#[cfg(feature = "sim")]
fn demo_serve(listen: &str, interval: &str, flap: &str) -> anyhow::Result<u8> {
    let duration = |flag: &str, v: &str| {
        humantime::parse_duration(v)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| anyhow::anyhow!("{flag}: {v:?} is not a duration (e.g. 10s, 6m)"))
    };
    let (tx, bound) = tokio::sync::oneshot::channel();
    let opts = crate::demo::ServeOptions {
        listen: crate::config::parse_listen(listen).map_err(|m| anyhow::anyhow!("--listen: {m}"))?,
        interval: duration("--interval", interval)?,
        flap: duration("--flap", flap)?,
        on_listen: Some(tx),
    };
    let rt = runtime()?;
    rt.block_on(async {
        let stop = crate::agent::stop_on_signals()?;
        tokio::spawn(async move {
            if let Ok(addr) = bound.await {
                eprintln!("{}", crate::demo::serving_note(addr));
            }
        });
        crate::demo::serve(opts, stop).await
    })?;
    Ok(EXIT_HEALTHY)
}

/// A client for `netprobe report`: the kubeconfig named, or the usual order
/// (in-cluster, then $KUBECONFIG or ~/.kube/config).
/// Also returns the API server's URL, which error messages name.
async fn kube_client(kubeconfig: Option<PathBuf>, context: Option<String>) -> anyhow::Result<(kube::Client, String)> {
    use kube::config::{KubeConfigOptions, Kubeconfig};
    let options = KubeConfigOptions {
        context,
        ..Default::default()
    };
    let mut config = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(&path)
                .with_context(|| format!("{}: cannot read the kubeconfig", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &options)
                .await
                .with_context(|| format!("{}: cannot use the kubeconfig", path.display()))?
        }
        None if options.context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .context("cannot use the kubeconfig")?,
        None => kube::Config::infer()
            .await
            .context("cannot find a Kubernetes configuration")?,
    };
    // A pod that does not answer its proxy is a finding to report at once,
    // not a transient failure to retry for minutes (kube retries 503s).
    config.default_retry = false;
    let server = config.cluster_url.to_string();
    let client = kube::Client::try_from(config)
        .with_context(|| format!("API server {server}: cannot set up the Kubernetes client"))?;
    Ok((client, server))
}

/// The agent's floor under `interval`: [`crate::agent::MIN_AGENT_INTERVAL`],
/// or `NETPROBE_MIN_INTERVAL` (tests and benchmarks on loopback).
fn min_interval() -> anyhow::Result<std::time::Duration> {
    match std::env::var("NETPROBE_MIN_INTERVAL") {
        Err(_) => Ok(crate::agent::MIN_AGENT_INTERVAL),
        Ok(v) => humantime::parse_duration(v.trim())
            .map_err(|e| anyhow::anyhow!("NETPROBE_MIN_INTERVAL: {v:?} is not a duration ({e})")),
    }
}

/// Load options for commands that do not contact the cluster.
fn offline() -> crate::config::LoadOptions {
    crate::config::LoadOptions {
        node_region: None,
        allow_unresolved_auto: true,
        ..Default::default()
    }
}

/// Writes to stdout. A reader that went away (`netprobe demo | head`) is not
/// an error worth a panic, nor a message: the output is simply cut.
fn out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
}

fn print_report(report: &RoundReport, output: Format) -> u8 {
    let text = match output {
        Format::Human => render::human::render(report),
        Format::Json => render::json::render(report),
    };
    out(&text);
    if report.healthy { EXIT_HEALTHY } else { EXIT_FINDINGS }
}

fn render_targets(cfg: &Config, output: Format) -> String {
    match output {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&cfg.targets).unwrap_or_default();
            s.push('\n');
            s
        }
        Format::Human => {
            let mut s = format!(
                "{:<34} {:<9} {:<7} {:<5} {}\n",
                "NAME", "SERVICE", "EXPECT", "PORT", "FQDN / PRIVATELINK ZONE"
            );
            for t in &cfg.targets {
                s.push_str(&format!(
                    "{:<34} {:<9} {:<7} {:<5} {}\n{:58}{}\n",
                    t.name,
                    t.service.as_str(),
                    t.expect.as_str(),
                    t.port,
                    t.fqdn,
                    "",
                    t.privatelink_zone.as_deref().unwrap_or("(any privatelink.* name)")
                ));
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::log_filter;
    use tracing::Level;

    #[test]
    fn rust_log_keeps_its_documented_syntax() {
        let f = log_filter(Some("info,netprobe::agent=debug"), "warn");
        assert!(f.would_enable("netprobe::agent", &Level::DEBUG));
        assert!(!f.would_enable("netprobe::probe", &Level::DEBUG));
        assert!(f.would_enable("netprobe::probe", &Level::INFO));
        assert!(f.would_enable("hyper", &Level::INFO));
        let f = log_filter(Some("netprobe=debug"), "warn");
        assert!(f.would_enable("netprobe::round", &Level::DEBUG));
        assert!(!f.would_enable("kube_client", &Level::WARN), "only the named targets");
        assert!(
            f.would_enable("kube_client", &Level::ERROR),
            "errors of the others still show"
        );
        // Unset, empty or unparsable: the command's default.
        for unset in [None, Some(""), Some("  "), Some("netprobe=loud")] {
            let f = log_filter(unset, "warn");
            assert!(f.would_enable("netprobe", &Level::WARN), "{unset:?}");
            assert!(!f.would_enable("netprobe", &Level::INFO), "{unset:?}");
        }
    }
}
