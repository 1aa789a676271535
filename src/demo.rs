//! The demo's simulated VNet, built from `netprobe-sim`'s parts: DNS servers
//! that answer as Azure DNS and a customer's DNS server would, TLS endpoints
//! with certificates from a generated CA, and a set of deliberate failure
//! modes. `netprobe demo` runs a round against it.

use std::net::{IpAddr, SocketAddr};

use netprobe_sim::dns::{DnsServer, Entry, Records};
use netprobe_sim::https::{HttpsServer, Reply};
use netprobe_sim::pki::{Ca, Validity};
use netprobe_sim::{SIM_PRIVATE_RANGE, bind_same_port, private_ip, public_ip};

use crate::config::{Config, LoadOptions};
use crate::probe::TlsSetup;

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

impl DemoVnet {
    pub async fn start() -> Result<DemoVnet, SimError> {
        let id = DEMO_WORKSPACE_ID;
        let ws_api = format!("{id}.workspace.eastus.api.azureml.ms");
        let ws_cert = format!("{id}.workspace.eastus.cert.api.azureml.ms");
        let nb = format!(
            "{}.eastus.notebooks.azure.net",
            crate::azure::notebooks_label("mlws", "eastus", id)
        );
        let nb_pl = nb.replace(".notebooks.azure.net", ".privatelink.notebooks.azure.net");

        let mut azure: Records = Records::new();
        let cname = |r: &mut Records, from: &str, to: &str| {
            r.insert(from.to_string(), Entry::Cname(to.to_string()));
        };
        let addr = |r: &mut Records, name: &str, ip: IpAddr| {
            r.insert(name.to_string(), Entry::Addrs(vec![ip]));
        };
        // Workspace: healthy.
        cname(
            &mut azure,
            &ws_api,
            &format!("{id}.workspace.eastus.privatelink.api.azureml.ms"),
        );
        addr(
            &mut azure,
            &format!("{id}.workspace.eastus.privatelink.api.azureml.ms"),
            private_ip(4),
        );
        cname(
            &mut azure,
            &ws_cert,
            &format!("{id}.workspace.eastus.cert.privatelink.api.azureml.ms"),
        );
        addr(
            &mut azure,
            &format!("{id}.workspace.eastus.cert.privatelink.api.azureml.ms"),
            private_ip(4),
        );
        // Notebooks: the zone is linked but the record is missing (NXDOMAIN).
        cname(&mut azure, &nb, &nb_pl);
        // Storage blob: healthy. File: zone not linked, the chain runs on to
        // the public front end. Queue: private, but the storage firewall says 403.
        cname(
            &mut azure,
            "mlwsstore01.blob.core.windows.net",
            "mlwsstore01.privatelink.blob.core.windows.net",
        );
        addr(
            &mut azure,
            "mlwsstore01.privatelink.blob.core.windows.net",
            private_ip(5),
        );
        cname(
            &mut azure,
            "mlwsstore01.file.core.windows.net",
            "mlwsstore01.privatelink.file.core.windows.net",
        );
        cname(
            &mut azure,
            "mlwsstore01.privatelink.file.core.windows.net",
            "file.eus-prod-01.store.core.windows.net",
        );
        addr(&mut azure, "file.eus-prod-01.store.core.windows.net", public_ip(5));
        cname(
            &mut azure,
            "mlwsstore01.queue.core.windows.net",
            "mlwsstore01.privatelink.queue.core.windows.net",
        );
        addr(
            &mut azure,
            "mlwsstore01.privatelink.queue.core.windows.net",
            private_ip(9),
        );
        // Key Vault: private through Azure DNS (the custom server differs below).
        cname(
            &mut azure,
            "mlws-kv-01.vault.azure.net",
            "mlws-kv-01.privatelink.vaultcore.azure.net",
        );
        addr(&mut azure, "mlws-kv-01.privatelink.vaultcore.azure.net", private_ip(6));
        // ACR login: healthy. Data eastus: record points at a deleted endpoint.
        // Data westeurope: a TLS-inspecting proxy answers with its own CA.
        cname(&mut azure, "mlwsacr01.azurecr.io", "mlwsacr01.privatelink.azurecr.io");
        addr(&mut azure, "mlwsacr01.privatelink.azurecr.io", private_ip(7));
        cname(
            &mut azure,
            "mlwsacr01.eastus.data.azurecr.io",
            "mlwsacr01.eastus.data.privatelink.azurecr.io",
        );
        addr(
            &mut azure,
            "mlwsacr01.eastus.data.privatelink.azurecr.io",
            private_ip(8),
        );
        cname(
            &mut azure,
            "mlwsacr01.westeurope.data.azurecr.io",
            "mlwsacr01.westeurope.data.privatelink.azurecr.io",
        );
        addr(
            &mut azure,
            "mlwsacr01.westeurope.data.privatelink.azurecr.io",
            private_ip(10),
        );
        // A storage account without a private endpoint.
        cname(
            &mut azure,
            "otherdata.blob.core.windows.net",
            "blob.eus-prod-02.store.core.windows.net",
        );
        addr(&mut azure, "blob.eus-prod-02.store.core.windows.net", public_ip(9));

        // The customer's DNS server: forwards everything to Azure DNS except
        // the Key Vault zone, which it resolves publicly.
        let mut custom = azure.clone();
        cname(
            &mut custom,
            "mlws-kv-01.privatelink.vaultcore.azure.net",
            "data-prod-eus.vaultcore.azure.net",
        );
        addr(&mut custom, "data-prod-eus.vaultcore.azure.net", public_ip(6));

        let azure_dns = DnsServer::start(azure).await?;
        let custom_dns = DnsServer::start(custom).await?;

        let ca = Ca::new("netprobe demo CA")?;
        let rogue = Ca::new("Contoso TLS Inspection CA")?;
        let endpoints_plan: Vec<(IpAddr, Vec<String>, Reply, bool)> = vec![
            (
                private_ip(4),
                vec![ws_api.clone(), ws_cert.clone()],
                Reply::workspace_unauthorized(),
                false,
            ),
            (
                private_ip(5),
                vec!["*.blob.core.windows.net".into()],
                Reply::storage_anonymous(),
                false,
            ),
            (
                public_ip(5),
                vec!["*.file.core.windows.net".into()],
                Reply::new(
                    403,
                    "<Error><Code>AuthorizationFailure</Code><Message>This request is not authorized to perform this operation.</Message></Error>",
                ),
                false,
            ),
            (
                private_ip(9),
                vec!["*.queue.core.windows.net".into()],
                Reply::new(
                    403,
                    "<Error><Code>AuthorizationFailure</Code><Message>This request is not authorized to perform this operation.</Message></Error>",
                ),
                false,
            ),
            (
                private_ip(6),
                vec!["*.vault.azure.net".into()],
                Reply::keyvault_health(),
                false,
            ),
            (
                public_ip(6),
                vec!["*.vault.azure.net".into()],
                Reply::new(
                    403,
                    r#"{"error":{"code":"Forbidden","message":"Public network access is disabled","innererror":{"code":"ForbiddenByFirewall"}}}"#,
                ),
                false,
            ),
            (
                private_ip(7),
                vec!["*.azurecr.io".into()],
                Reply::acr_challenge("mlwsacr01.azurecr.io"),
                false,
            ),
            (
                private_ip(10),
                vec!["mlwsacr01.westeurope.data.azurecr.io".into()],
                Reply::new(200, "proxied"),
                true,
            ),
            (
                public_ip(9),
                vec!["*.blob.core.windows.net".into()],
                Reply::storage_anonymous(),
                false,
            ),
        ];
        let ips: Vec<IpAddr> = endpoints_plan.iter().map(|e| e.0).collect();
        let (port, listeners) = bind_same_port(&ips).await?;
        let mut endpoints = Vec::new();
        for ((_, names, reply, from_rogue), listener) in endpoints_plan.into_iter().zip(listeners) {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let issuer = if from_rogue { &rogue } else { &ca };
            let leaf = issuer.leaf(&names, Validity::Current)?;
            endpoints.push(HttpsServer::serve(listener, &leaf, reply)?);
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
        let opts = LoadOptions {
            target_port: Some(self.port),
            ..LoadOptions::default()
        };
        Ok(Config::from_yaml_with(&yaml, "<demo>", None, &opts)?)
    }

    /// A trust store holding only the simulation's CA.
    pub fn tls(&self) -> Result<TlsSetup, SimError> {
        Ok(TlsSetup::new(None, &[self.ca.cert_der()], false)?)
    }
}
