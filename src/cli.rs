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
use crate::sim::DemoVnet;

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
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Probe the configured targets (one round with --once).
    Probe {
        /// Configuration file.
        #[arg(
            long,
            short,
            env = "NETPROBE_CONFIG",
            default_value = "/etc/netprobe/netprobe.yaml"
        )]
        config: PathBuf,
        /// Run one round, print the report and exit 0 (healthy), 1 (findings) or 2 (bad config).
        #[arg(long)]
        once: bool,
        /// Report format.
        #[arg(long, short, value_enum, default_value_t = Format::Human)]
        output: Format,
    },
    /// Validate a configuration file and exit 0 (valid) or 2 (invalid).
    CheckConfig {
        #[arg(
            long,
            short,
            env = "NETPROBE_CONFIG",
            default_value = "/etc/netprobe/netprobe.yaml"
        )]
        config: PathBuf,
    },
    /// Print the targets a configuration derives.
    Targets {
        #[arg(
            long,
            short,
            env = "NETPROBE_CONFIG",
            default_value = "/etc/netprobe/netprobe.yaml"
        )]
        config: PathBuf,
        #[arg(long, short, value_enum, default_value_t = Format::Human)]
        output: Format,
    },
    /// Run one round against a built-in simulated VNet (no Azure needed).
    Demo {
        #[arg(long, short, value_enum, default_value_t = Format::Human)]
        output: Format,
    },
}

/// Entry point used by `main.rs`.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                EXIT_USAGE
            } else {
                EXIT_HEALTHY
            });
        }
    };
    init_tracing();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("netprobe: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Runs a parsed command and returns the exit code.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::CheckConfig { config } => {
            let cfg = Config::load(&config)?;
            println!(
                "{}: valid, {} targets, {} resolvers",
                config.display(),
                cfg.targets.len(),
                cfg.resolvers.len()
            );
            Ok(EXIT_HEALTHY)
        }
        Command::Targets { config, output } => {
            let cfg = Config::load(&config)?;
            print!("{}", render_targets(&cfg, output));
            Ok(EXIT_HEALTHY)
        }
        Command::Probe {
            config,
            once,
            output,
        } => {
            let cfg = Config::load(&config)?;
            if !once {
                anyhow::bail!(
                    "agent mode (probe without --once) is not available in this build yet; use `netprobe probe --once`"
                );
            }
            let engine = Engine::new(cfg).context("cannot set up TLS")?;
            let report = runtime()?.block_on(engine.run_round());
            Ok(print_report(&report, output))
        }
        Command::Demo { output } => {
            let rt = runtime()?;
            let report = rt.block_on(async {
                let vnet = DemoVnet::start().await?;
                let engine = Engine::with_tls(vnet.config()?, vnet.tls()?);
                anyhow::Ok(engine.run_round().await)
            })?;
            if output == Format::Human {
                println!(
                    "Simulated VNet on loopback: 127.0.10.0/24 plays the private endpoints' subnet and"
                );
                println!(
                    "127.0.200.0/24 the public internet. Resolver 'azure' stands in for Azure DNS"
                );
                println!("(168.63.129.16), 'system' for the customer DNS server that pods use.\n");
            }
            Ok(print_report(&report, output))
        }
    }
}

fn print_report(report: &RoundReport, output: Format) -> u8 {
    let text = match output {
        Format::Human => render::human::render(report),
        Format::Json => render::json::render(report),
    };
    print!("{text}");
    if report.healthy {
        EXIT_HEALTHY
    } else {
        EXIT_FINDINGS
    }
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
                    t.privatelink_zone
                        .as_deref()
                        .unwrap_or("(any privatelink.* name)")
                ));
            }
            s
        }
    }
}
