//! The demo's simulated VNet, built from `netprobe-sim`'s parts: DNS servers
//! that answer as Azure DNS and a customer's DNS server would, TLS endpoints
//! with certificates from a generated CA, and a set of deliberate failure
//! modes. `netprobe demo` runs a round against it.

use std::net::{IpAddr, SocketAddr};

use netprobe_sim::dns::{DnsServer, Entry, Records};
use netprobe_sim::https::{HttpsServer, Reply};
use netprobe_sim::pki::{Ca, Validity};
use netprobe_sim::{SIM_PRIVATE_RANGE, bind_same_port, private_ip, public_ip};

use crate::config::Config;
use crate::model::Cause;
use crate::probe::TlsSetup;
use crate::service::Service;

/// The workspace GUID used by the demo.
pub const DEMO_WORKSPACE_ID: &str = "3f2c9d1e-8b7a-4c6d-9e0f-1a2b3c4d5e6f";

/// Building the simulation failed (ports in use, certificate generation).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot start the simulated VNet: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot generate certificates: {0}")]
    Cert(#[from] netprobe_sim::pki::CertError),
    #[error("invalid demo configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Tls(#[from] crate::probe::TlsSetupError),
}

/// The demo's simulated VNet: a healthy workspace plus several failure modes.
pub struct DemoVnet {
    /// Stands in for Azure DNS (168.63.129.16): private zones linked.
    pub azure_dns: DnsServer,
    /// The customer's DNS server that pods use; it does not forward the Key
    /// Vault zone to Azure DNS.
    pub custom_dns: DnsServer,
    pub ca: Ca,
    pub port: u16,
    _endpoints: Vec<HttpsServer>,
}

/// The YAML the demo's configuration is parsed from (the port comes from the
/// load options: the simulation cannot bind 443 without privileges).
pub fn demo_yaml(azure: SocketAddr, custom: SocketAddr) -> String {
    format!(
        r#"cloud: public
region: eastus
timeout: 2s
workspace:
  id: {DEMO_WORKSPACE_ID}
  name: mlws
storage_accounts:
  - name: mlwsstore01
    services: [blob, file, queue]
key_vaults: [mlws-kv-01]
container_registries:
  - name: mlwsacr01
    data_endpoint_regions: [eastus, westeurope]
targets:
  - fqdn: otherdata.blob.core.windows.net
    name: otherdata-blob
  - fqdn: partnerdata.blob.core.windows.net
    name: partnerdata-blob
    service: storage
resolvers:
  - name: system
    servers: ["{custom}"]
  - name: azure
    servers: ["{azure}"]
connect_via: system
private_ranges: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, fc00::/7, {SIM_PRIVATE_RANGE}]
"#
    )
}

/// How the demo's DNS presents one name.
pub enum DemoDns {
    /// `fqdn` CNAME `alias`, and the linked private zone holds `alias` A `ip`.
    Private { alias: String, ip: IpAddr },
    /// `fqdn` CNAME `alias`, but the linked zone has no record for it (NXDOMAIN).
    RecordMissing { alias: String },
    /// `fqdn` CNAME `alias` CNAME `front`, front A `ip`: the private zone is
    /// not linked, so the chain runs on to the public front end.
    Unlinked {
        alias: String,
        front: &'static str,
        ip: IpAddr,
    },
    /// `fqdn` CNAME `front`, front A `ip`: no private endpoint at all.
    Public { front: &'static str, ip: IpAddr },
    /// `fqdn` CNAME `blockpolicy.azuredns.invalid`: an Azure DNS security
    /// policy blocks the name.
    PolicyBlocked,
}

/// A TLS server of the demo: its address, the names on its certificate,
/// its answer, and whether a TLS-inspecting proxy's CA issued it.
pub struct DemoEndpoint {
    pub ip: IpAddr,
    pub names: Vec<String>,
    pub reply: Reply,
    pub intercepted: bool,
}

/// One target of the demo: how DNS presents it (through Azure DNS and, where
/// it differs, the customer's DNS server), what listens, and the cause
/// netprobe must name. `netprobe demo` and its test read the same table.
pub struct DemoSite {
    /// The target's name in the demo's report.
    pub target: &'static str,
    pub fqdn: String,
    pub dns: DemoDns,
    /// The customer's DNS server resolves the alias publicly instead:
    /// `alias` CNAME `front`, front A `ip` (it does not forward the zone).
    pub custom_public: Option<(&'static str, IpAddr)>,
    pub endpoints: Vec<DemoEndpoint>,
    pub cause: Cause,
}

/// What a healthy endpoint of `service` answers (the service module says).
fn healthy(service: Service, fqdn: &str) -> Reply {
    crate::service::of(service).sim_reply(fqdn)
}

fn endpoint(ip: IpAddr, names: &[&str], reply: Reply) -> DemoEndpoint {
    DemoEndpoint {
        ip,
        names: names.iter().map(|n| n.to_string()).collect(),
        reply,
        intercepted: false,
    }
}

fn site(target: &'static str, fqdn: &str, dns: DemoDns, endpoints: Vec<DemoEndpoint>, cause: Cause) -> DemoSite {
    DemoSite {
        target,
        fqdn: fqdn.to_string(),
        dns,
        custom_public: None,
        endpoints,
        cause,
    }
}

/// The alias of `fqdn` in its privatelink zone: `privatelink.` inserted before `zone`.
fn alias(fqdn: &str, zone: &str) -> String {
    let host = fqdn.strip_suffix(zone).unwrap_or(fqdn);
    format!("{host}{}", crate::azure::privatelink_zone(zone))
}

const STORAGE_DENIED: &str = "<Error><Code>AuthorizationFailure</Code><Message>This request is not authorized to perform this operation.</Message></Error>";
const VAULT_DENIED: &str = r#"{"error":{"code":"Forbidden","message":"Public network access is disabled","innererror":{"code":"ForbiddenByFirewall"}}}"#;

/// The demo's sites, in the order the demo config derives its targets.
pub fn sites() -> Vec<DemoSite> {
    [
        workspace_sites(),
        storage_sites(),
        vault_sites(),
        registry_sites(),
        custom_sites(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The workspace: API and certificate names healthy, notebooks' record missing.
fn workspace_sites() -> Vec<DemoSite> {
    use Cause as C;
    use DemoDns::*;
    let id = DEMO_WORKSPACE_ID;
    let ws_api = format!("{id}.workspace.eastus.api.azureml.ms");
    let ws_cert = format!("{id}.workspace.eastus.cert.api.azureml.ms");
    let label = crate::service::workspace::notebooks_label("mlws", "eastus", id);
    let nb = format!("{label}.eastus.notebooks.azure.net");
    let ws_endpoint = || {
        endpoint(
            private_ip(4),
            &[&ws_api, &ws_cert],
            healthy(Service::Workspace, &ws_api),
        )
    };
    vec![
        site(
            "workspace-api",
            &ws_api,
            Private {
                alias: alias(&ws_api, "api.azureml.ms"),
                ip: private_ip(4),
            },
            vec![ws_endpoint()],
            C::None,
        ),
        site(
            "workspace-cert",
            &ws_cert,
            Private {
                alias: alias(&ws_cert, "api.azureml.ms"),
                ip: private_ip(4),
            },
            vec![],
            C::None,
        ),
        // The notebooks zone is linked, but the record is missing.
        site(
            "workspace-notebooks",
            &nb,
            RecordMissing {
                alias: alias(&nb, "notebooks.azure.net"),
            },
            vec![],
            C::RecordMissing,
        ),
    ]
}

/// Storage: blob healthy, file zone not linked, queue behind the storage firewall.
fn storage_sites() -> Vec<DemoSite> {
    use Cause as C;
    use DemoDns::*;
    let blob = "mlwsstore01.blob.core.windows.net";
    let file = "mlwsstore01.file.core.windows.net";
    let queue = "mlwsstore01.queue.core.windows.net";
    vec![
        site(
            "storage-mlwsstore01-blob",
            blob,
            Private {
                alias: alias(blob, "blob.core.windows.net"),
                ip: private_ip(5),
            },
            vec![endpoint(
                private_ip(5),
                &["*.blob.core.windows.net"],
                healthy(Service::Storage, blob),
            )],
            C::None,
        ),
        // The file zone is not linked: the chain runs on to the public front end.
        site(
            "storage-mlwsstore01-file",
            file,
            Unlinked {
                alias: alias(file, "file.core.windows.net"),
                front: "file.eus-prod-01.store.core.windows.net",
                ip: public_ip(5),
            },
            vec![endpoint(
                public_ip(5),
                &["*.file.core.windows.net"],
                Reply::new(403, STORAGE_DENIED),
            )],
            C::ZoneNotLinked,
        ),
        // Private, but the storage firewall answers 403.
        site(
            "storage-mlwsstore01-queue",
            queue,
            Private {
                alias: alias(queue, "queue.core.windows.net"),
                ip: private_ip(9),
            },
            vec![endpoint(
                private_ip(9),
                &["*.queue.core.windows.net"],
                Reply::new(403, STORAGE_DENIED),
            )],
            C::HttpRejected,
        ),
    ]
}

/// Key Vault: the customer's DNS server does not forward its zone.
fn vault_sites() -> Vec<DemoSite> {
    use Cause as C;
    use DemoDns::*;
    let vault = "mlws-kv-01.vault.azure.net";
    vec![
        // Private through Azure DNS; the customer's server resolves the vault zone publicly.
        DemoSite {
            custom_public: Some(("data-prod-eus.vaultcore.azure.net", public_ip(6))),
            ..site(
                "keyvault-mlws-kv-01",
                vault,
                Private {
                    alias: "mlws-kv-01.privatelink.vaultcore.azure.net".into(),
                    ip: private_ip(6),
                },
                vec![
                    endpoint(private_ip(6), &["*.vault.azure.net"], healthy(Service::Keyvault, vault)),
                    endpoint(public_ip(6), &["*.vault.azure.net"], Reply::new(403, VAULT_DENIED)),
                ],
                C::DnsPathNotForwarding,
            )
        },
    ]
}

/// The registry: login healthy, one data endpoint stale, one intercepted.
fn registry_sites() -> Vec<DemoSite> {
    use Cause as C;
    use DemoDns::*;
    let acr = "mlwsacr01.azurecr.io";
    let acr_east = "mlwsacr01.eastus.data.azurecr.io";
    let acr_west = "mlwsacr01.westeurope.data.azurecr.io";
    vec![
        site(
            "acr-mlwsacr01",
            acr,
            Private {
                alias: alias(acr, "azurecr.io"),
                ip: private_ip(7),
            },
            vec![endpoint(private_ip(7), &["*.azurecr.io"], healthy(Service::Acr, acr))],
            C::None,
        ),
        // The record points at a deleted endpoint: nothing listens there.
        site(
            "acr-mlwsacr01-data-eastus",
            acr_east,
            Private {
                alias: alias(acr_east, "azurecr.io"),
                ip: private_ip(8),
            },
            vec![],
            C::EndpointStale,
        ),
        // A TLS-inspecting proxy answers with its own CA.
        site(
            "acr-mlwsacr01-data-westeurope",
            acr_west,
            Private {
                alias: alias(acr_west, "azurecr.io"),
                ip: private_ip(10),
            },
            vec![DemoEndpoint {
                intercepted: true,
                ..endpoint(private_ip(10), &[acr_west], Reply::new(200, "proxied"))
            }],
            C::TlsMismatch,
        ),
    ]
}

/// A custom target: a storage account without a private endpoint.
fn custom_sites() -> Vec<DemoSite> {
    use Cause as C;
    use DemoDns::*;
    let other = "otherdata.blob.core.windows.net";
    vec![
        // A storage account without a private endpoint.
        site(
            "otherdata-blob",
            other,
            Public {
                front: "blob.eus-prod-02.store.core.windows.net",
                ip: public_ip(9),
            },
            vec![endpoint(
                public_ip(9),
                &["*.blob.core.windows.net"],
                healthy(Service::Storage, other),
            )],
            C::NoPrivateEndpoint,
        ),
        // A DNS security policy linked to the VNet blocks the partner's
        // domain: Azure DNS answers with the block sentinel.
        site(
            "partnerdata-blob",
            "partnerdata.blob.core.windows.net",
            PolicyBlocked,
            vec![],
            C::DnsPolicyBlocked,
        ),
    ]
}

/// The records of Azure DNS and of the customer's DNS server for `sites`.
fn records(sites: &[DemoSite]) -> (Records, Records) {
    let mut azure = Records::new();
    let cname = |r: &mut Records, from: &str, to: &str| {
        r.insert(from.to_string(), Entry::Cname(to.to_string()));
    };
    let addr = |r: &mut Records, name: &str, ip: IpAddr| {
        r.insert(name.to_string(), Entry::Addrs(vec![ip]));
    };
    for s in sites {
        match &s.dns {
            DemoDns::Private { alias, ip } => {
                cname(&mut azure, &s.fqdn, alias);
                addr(&mut azure, alias, *ip);
            }
            DemoDns::RecordMissing { alias } => cname(&mut azure, &s.fqdn, alias),
            DemoDns::Unlinked { alias, front, ip } => {
                cname(&mut azure, &s.fqdn, alias);
                cname(&mut azure, alias, front);
                addr(&mut azure, front, *ip);
            }
            DemoDns::Public { front, ip } => {
                cname(&mut azure, &s.fqdn, front);
                addr(&mut azure, front, *ip);
            }
            DemoDns::PolicyBlocked => {
                azure.insert(
                    s.fqdn.clone(),
                    Entry::CnameStop(crate::verdict::POLICY_SENTINEL.to_string()),
                );
            }
        }
    }
    let mut custom = azure.clone();
    for s in sites {
        if let (Some((front, ip)), DemoDns::Private { alias, .. }) = (s.custom_public, &s.dns) {
            cname(&mut custom, alias, front);
            addr(&mut custom, front, ip);
        }
    }
    (azure, custom)
}

impl DemoVnet {
    /// Starts the DNS servers and endpoints of [`sites`] on loopback.
    pub async fn start() -> Result<DemoVnet, SimError> {
        let sites = sites();
        let (azure, custom) = records(&sites);
        let azure_dns = DnsServer::start(azure).await?;
        let custom_dns = DnsServer::start(custom).await?;
        let ca = Ca::new("netprobe demo CA")?;
        let rogue = Ca::new("Contoso TLS Inspection CA")?;
        let plan: Vec<&DemoEndpoint> = sites.iter().flat_map(|s| &s.endpoints).collect();
        let ips: Vec<IpAddr> = plan.iter().map(|e| e.ip).collect();
        let (port, listeners) = bind_same_port(&ips).await?;
        let mut endpoints = Vec::new();
        for (e, listener) in plan.into_iter().zip(listeners) {
            let names: Vec<&str> = e.names.iter().map(String::as_str).collect();
            let issuer = if e.intercepted { &rogue } else { &ca };
            let leaf = issuer.leaf(&names, Validity::Current)?;
            endpoints.push(HttpsServer::serve(listener, &leaf, e.reply.clone())?);
        }
        Ok(DemoVnet {
            azure_dns,
            custom_dns,
            ca,
            port,
            _endpoints: endpoints,
        })
    }

    /// The demo configuration, pointing at this simulation: every target on
    /// the one unprivileged port the simulated endpoints listen on.
    pub fn config(&self) -> Result<Config, SimError> {
        let yaml = demo_yaml(self.azure_dns.addr(), self.custom_dns.addr());
        self.on_port(Config::from_yaml(&yaml, "<demo>", None)?)
    }

    /// Every target on the one unprivileged port the simulated endpoints
    /// listen on, whatever the configuration says.
    fn on_port(&self, mut config: Config) -> Result<Config, SimError> {
        for t in &mut config.targets {
            t.port = self.port;
        }
        Ok(config)
    }

    /// A trust store holding only the simulation's CA.
    pub fn tls(&self) -> Result<TlsSetup, SimError> {
        Ok(TlsSetup::new(None, &[self.ca.cert_der()], false)?)
    }

    /// The configuration of `netprobe demo --serve`: the demo's, with the
    /// agent's interval and the simulation's CA in a file (`ca_file`, which
    /// the caller writes with [`DemoVnet::ca_pem`]), so that the agent runs
    /// it exactly as it runs a node's configuration.
    pub fn agent_config(&self, interval: std::time::Duration, ca_file: &std::path::Path) -> Result<Config, SimError> {
        let yaml = format!(
            "{}interval: {}ms\ntls:\n  extra_ca_file: {:?}\n",
            demo_yaml(self.azure_dns.addr(), self.custom_dns.addr()),
            interval.as_millis(),
            ca_file.display().to_string()
        );
        self.on_port(Config::from_yaml(&yaml, "<demo>", None)?)
    }

    /// The simulation's CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        self.ca.cert_pem()
    }

    /// Puts the flapping sites ([`FLAPPING`]) into their state for `phase`:
    /// the first fails in odd phases (its record is deleted from the private
    /// zone: `record_missing`), the second in phases 2, 6, 10, ... (the
    /// customer DNS server stops answering for it: `dns_unreachable` through
    /// the pod path); the others are healthy.
    pub fn flap(&self, phase: u64) {
        let sites = sites();
        for (i, target) in FLAPPING.iter().enumerate() {
            let Some(site) = sites.iter().find(|s| s.target == *target) else {
                continue;
            };
            let DemoDns::Private { alias, ip } = &site.dns else {
                continue;
            };
            let failing = match i {
                0 => phase % 2 == 1,
                _ => phase % 4 == 2,
            };
            match (i, failing) {
                (0, true) => {
                    self.azure_dns.set(alias, Entry::Empty);
                    self.custom_dns.set(alias, Entry::Empty);
                }
                (_, true) => self.custom_dns.set(alias, Entry::Drop),
                (_, false) => {
                    self.azure_dns.set(alias, Entry::Addrs(vec![*ip]));
                    self.custom_dns.set(alias, Entry::Addrs(vec![*ip]));
                }
            }
        }
    }
}

/// The healthy targets `netprobe demo --serve` makes fail and recover in
/// turn (see [`DemoVnet::flap`]).
pub const FLAPPING: [&str; 2] = ["storage-mlwsstore01-blob", "acr-mlwsacr01"];

/// How `netprobe demo --serve` runs.
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// Between rounds.
    pub interval: std::time::Duration,
    /// How long each flapping phase lasts ([`DemoVnet::flap`]).
    pub flap: std::time::Duration,
    /// Told the bound address once the agent listens (tests use port 0).
    pub on_listen: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
}

/// `netprobe demo --serve` could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Sim(#[from] SimError),
    #[error("cannot write the demo's CA certificate to {path}: {error}")]
    CaFile { path: String, error: std::io::Error },
    #[error(transparent)]
    Agent(#[from] crate::agent::AgentError),
}

/// The agent (rounds, `/metrics`, `/status`, the status page, `/healthz`,
/// `/readyz`) over the simulated VNet until `stop`, with the [`FLAPPING`]
/// targets failing and recovering in turn every `flap`.
/// Where the Prometheus configuration for the demo lives (relative to the
/// repository), which `demo --serve` names when it starts.
pub const DEMO_PROMETHEUS_CONFIG: &str = "deploy/prometheus/demo.yml";

/// What `demo --serve` says once it listens: where, and how to watch its
/// alerts with a local Prometheus.
pub fn serving_note(addr: std::net::SocketAddr) -> String {
    let mut note = format!(
        "netprobe demo: the agent over the simulated VNet, on http://{addr}/ (status page; /metrics, /status). Ctrl-C stops it.\n\
         Its alerts on a local Prometheus, with the project's rules: prometheus --config.file={DEMO_PROMETHEUS_CONFIG} (from the repository's root"
    );
    if addr.to_string() != crate::config::DEMO_LISTEN {
        note.push_str(&format!(
            "; its target is {}: set it to {addr}",
            crate::config::DEMO_LISTEN
        ));
    }
    note.push_str(").");
    note
}

pub async fn serve(opts: ServeOptions, stop: tokio::sync::watch::Receiver<bool>) -> Result<(), ServeError> {
    let vnet = DemoVnet::start().await?;
    let ca_file = std::env::temp_dir().join(format!("netprobe-demo-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, vnet.ca_pem()).map_err(|error| ServeError::CaFile {
        path: ca_file.display().to_string(),
        error,
    })?;
    let config = match vnet.agent_config(opts.interval, &ca_file) {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_file(&ca_file);
            return Err(e.into());
        }
    };
    let vnet = std::sync::Arc::new(vnet);
    let flapper = {
        let (vnet, mut stop, every) = (vnet.clone(), stop.clone(), opts.flap);
        tokio::spawn(async move {
            for phase in 0u64.. {
                vnet.flap(phase);
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.changed() => return,
                }
            }
        })
    };
    let agent = crate::agent::AgentOptions {
        config_path: None,
        listen_override: Some(opts.listen),
        on_listen: opts.on_listen,
        cluster: crate::cluster::ClusterContext::default(),
        // A simulation on loopback: no node's DNS to spare.
        min_interval: std::time::Duration::ZERO,
        node_condition: false,
    };
    let result = crate::agent::run_until(config, agent, stop).await;
    flapper.abort();
    let _ = std::fs::remove_file(&ca_file);
    Ok(result?)
}
