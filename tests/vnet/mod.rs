//! An AKS node in a VNet, built on this machine from network namespaces.
//!
//! - The **node** namespace is where netprobe runs. Its `/etc/resolv.conf`
//!   (through `/etc/netns/<ns>/resolv.conf`, as `ip netns exec` mounts it)
//!   points at the customer's DNS server. Its only interface is a TUN device
//!   with the node address 10.224.0.4.
//! - The **VNet** namespace holds everything else, on addresses of its own:
//!   - the customer DNS server (real `named`, 10.0.0.10): conditional
//!     forwarders to Azure DNS for the public zones of the Azure services,
//!     everything else to "the internet";
//!   - the Azure DNS stand-in (real `named`, on 168.63.129.16 itself): the
//!     private DNS zones linked to the VNet are authoritative there, every
//!     other name is forwarded to the internet, so chains resolve as Azure
//!     DNS returns them (public CNAME, then the private zone's A record);
//!   - "the internet's" DNS (real `named`, 203.0.113.53): the public zones,
//!     with the `privatelink` CNAMEs and public front ends at documentation
//!     addresses (203.0.113.0/24);
//!   - private endpoints (10.0.1.0/24) and public front ends (203.0.113.0/24):
//!     real TLS servers with certificates from a lab CA.
//!   - 10.0.0.11 is a second customer DNS server whose host is up but whose
//!     DNS service is not (port unreachable);
//!   - 10.0.3.0/24 is dropped silently (a blackhole route: an NSG that
//!     drops), 10.0.4.0/24 answers "no route" (an `unreachable` route);
//!   - 198.51.100.0/24 is a public range an NSG drops (the node's egress to
//!     a service tag that no rule allows).

//!   - 10.0.0.12 is the customer DNS server's second address, to which an
//!     `nftables` rule drops TCP 53 (a firewall that allows only UDP 53);
//!   - the on-premises DNS server (real `named`, 10.0.0.20), where a DNS
//!     Private Resolver forwarding ruleset sends `dfs.core.windows.net`: it
//!     holds a `privatelink.dfs.core.windows.net` zone of its own;
//!   - Azure DNS answers its private zones with Azure's own SOA
//!     (`azureprivatedns.net`), blocks names by a DNS security policy (a BIND
//!     response-policy zone that answers with the block sentinel, or a zone
//!     that does not load: SERVFAIL).
//! - The **link** between the two is a userspace relay between two TUN
//!   devices, with an optional one-way delay (this kernel has no `netem`).
//!
//! Nothing leaves the two namespaces: the node namespace has routes only to
//! the TUN device, and the VNet namespace only to it and its own addresses.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use netprobe_sim::https::{HttpsServer, Reply};
use netprobe_sim::pki::{Ca, Validity};

pub mod named;
use named::Named;

pub const NODE_IP: Ipv4Addr = Ipv4Addr::new(10, 224, 0, 4);
pub const CUSTOMER_DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
pub const AZURE_DNS: Ipv4Addr = Ipv4Addr::new(168, 63, 129, 16);
pub const PUBLIC_DNS: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 53);
/// A second customer DNS server whose host is up but whose DNS service is
/// not: the address exists, nothing listens on port 53 (port unreachable).
pub const DEAD_DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 11);
/// The customer DNS server's second address: TCP 53 to it is dropped.
pub const TCP_BLOCKED_DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 12);
/// The on-premises DNS server a forwarding ruleset rule points at.
pub const ONPREM_DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 20);
/// Zones Azure DNS forwards to the on-premises server (a DNS Private
/// Resolver forwarding ruleset linked to the VNet).
pub const AZURE_FORWARDED: &[&str] = &["dfs.core.windows.net"];
/// Private zones the on-premises server holds, with its own SOA.
pub const ONPREM_ZONES: &[&str] = &["privatelink.dfs.core.windows.net"];
/// Azure private DNS's SOA and an NS line (BIND needs one to load a zone).
pub const AZURE_PRIVATE_SOA: &str =
    "@ 10 IN SOA azureprivatedns.net. azureprivatedns-host.microsoft.com. 1 3600 300 2419200 10\n@ 60 IN NS ns.test.\n";
/// The on-premises server's SOA.
pub const ONPREM_SOA: &str =
    "@ 60 IN SOA ns1.contoso.example. hostmaster.contoso.example. 1 60 60 600 60\n@ 60 IN NS ns.test.\n";
/// Azure DNS security policy's block sentinel.
pub const POLICY_SENTINEL: &str = "blockpolicy.azuredns.invalid";
/// Silently dropped in the VNet (a blackhole route).
pub const DROPPED: &str = "10.0.3.0/24";
/// "No route to host" in the VNet (an `unreachable` route).
pub const NO_ROUTE: &str = "10.0.4.0/24";
/// A public range whose traffic from the node is dropped (an NSG without a
/// rule for its service tag). Nothing in the lab holds these addresses.
pub const PUBLIC_DROPPED: &str = "198.51.100.0/24";

fn publicly_dropped(ip: Ipv4Addr) -> bool {
    ip.octets()[..3] == [198, 51, 100]
}

/// Public zones on the internet's DNS.
pub const PUBLIC_ZONES: &[&str] = &[
    "api.azureml.ms",
    // The AML extension's public endpoints (`aml_extension: true`).
    "mcr.microsoft.com",
    "kubernetesconfiguration.azure.com",
    "experiments.azureml.net",
    "microsoftonline.com",
    "management.azure.com",
    "notebooks.azure.net",
    "blob.core.windows.net",
    "file.core.windows.net",
    "queue.core.windows.net",
    "vault.azure.net",
    "vaultcore.azure.net",
    "azurecr.io",
    "dfs.core.windows.net",
    // The sentinel resolves to nothing (NODATA), as Azure's does.
    "azuredns.invalid",
];
/// Public zones whose file does not load: the internet's DNS answers SERVFAIL.
pub const BROKEN_PUBLIC_ZONES: &[&str] = &["table.core.windows.net"];
/// Every zone on the internet's DNS, loaded or not.
fn public_zones() -> Vec<&'static str> {
    PUBLIC_ZONES.iter().chain(BROKEN_PUBLIC_ZONES).copied().collect()
}

/// Private DNS zones linked to the VNet (authoritative in Azure DNS).
pub const LINKED_ZONES: &[&str] = &[
    "privatelink.api.azureml.ms",
    "privatelink.notebooks.azure.net",
    "privatelink.blob.core.windows.net",
    "privatelink.queue.core.windows.net",
    "privatelink.table.core.windows.net",
    "privatelink.vaultcore.azure.net",
    "privatelink.azurecr.io",
    // A private AKS cluster's API server.
    "privatelink.westeurope.azmk8s.io",
    // API Server VNet Integration in private mode.
    "private.westeurope.azmk8s.io",
];
/// Private DNS zones that exist but are not linked to the VNet.
pub const UNLINKED_ZONES: &[&str] = &["privatelink.file.core.windows.net"];
/// Zones the customer DNS server forwards to Azure DNS. The queue zone is
/// missing: its names resolve through the internet.
pub const CUSTOMER_FORWARDS: &[&str] = &[
    "api.azureml.ms",
    "notebooks.azure.net",
    "blob.core.windows.net",
    "file.core.windows.net",
    "table.core.windows.net",
    "vault.azure.net",
    "vaultcore.azure.net",
    "azurecr.io",
    "dfs.core.windows.net",
    // "Conditional forwarding doesn't support subdomains": the private
    // cluster's zone itself.
    "privatelink.westeurope.azmk8s.io",
    "private.westeurope.azmk8s.io",
];

/// Why the lab cannot run on this machine, if it cannot.
pub fn unavailable() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?");
    if uid != "0" {
        return Some(format!(
            "it needs root (effective uid {uid}) to create network namespaces"
        ));
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun is missing (no TUN support)".into());
    }
    for (tool, package) in [("ip", "iproute2"), ("named", "bind9")] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !found {
            return Some(format!(
                "`{tool}` is missing (Debian package {package}; scripts/test installs it)"
            ));
        }
    }
    let probe = format!(
        "np-probe-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );

    let made = Command::new("ip").args(["netns", "add", &probe]).output();
    let _ = Command::new("ip").args(["netns", "del", &probe]).output();
    match made {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "`ip netns add` failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("`ip netns add` could not run: {e}")),
    }
}

/// Panics, loudly, when the lab cannot run: a lab test never passes without
/// running.
pub fn require() {
    if let Some(why) = unavailable() {
        panic!(
            "\n\n*** THE VNET LAB CANNOT RUN ON THIS MACHINE: {why}. ***\n*** These tests are not skipped: run them as root with iproute2, bind9 and /dev/net/tun. ***\n\n"
        );
    }
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn create(role: &str) -> Netns {
        let name = format!(
            "np-{role}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        run("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip("link set lo up");
        ns
    }

    /// Runs `ip -n <ns> <args>`.
    pub fn ip(&self, args: &str) {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend(args.split_whitespace());
        run("ip", &all);
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// Files `ip netns exec` mounts over `/etc` in this namespace.
    pub fn etc(&self) -> PathBuf {
        PathBuf::from("/etc/netns").join(&self.name)
    }

    /// Runs `f` on a thread inside the namespace.
    pub fn on_thread<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = self.path();
        std::thread::spawn(move || {
            enter(&path);
            f()
        })
        .join()
        .expect("thread in namespace panicked")
    }

    /// A tokio runtime whose threads all live in this namespace.
    pub fn runtime(&self, workers: usize) -> NsRuntime {
        let path = self.path();
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            // Threads inherit the namespace of the thread that creates them,
            // so every worker the runtime starts from here is inside it.
            enter(&path);
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .enable_all()
                .build()
                .expect("runtime");
            tx.send(rt.handle().clone()).unwrap();
            rt.block_on(async {
                let _ = stopped.await;
            });
            rt.shutdown_timeout(Duration::from_secs(1));
        });
        NsRuntime {
            handle: rx.recv().expect("runtime handle"),
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
        let _ = std::fs::remove_dir_all(self.etc());
    }
}

fn enter(ns: &Path) {
    let file = File::open(ns).unwrap_or_else(|e| panic!("{}: {e}", ns.display()));
    rustix::thread::move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&file),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .unwrap_or_else(|e| panic!("setns {}: {e}", ns.display()));
}

/// A tokio runtime inside a namespace: futures given to it create their
/// sockets there.
pub struct NsRuntime {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NsRuntime {
    /// Runs `fut` inside the namespace and waits for it, from sync code.
    pub fn block<F>(&self, fut: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().expect("task in namespace panicked")
    }
}

impl Drop for NsRuntime {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Joins the node and the VNet with two TUN devices and a relay on `rt` that
/// holds every packet from the VNet to the node for `delay` (as `tc netem
/// delay` on the VNet side of the link would). Returns the relay's counters.
fn link(node: &Netns, vnet: &Netns, rt: &NsRuntime, delay: Duration) -> Arc<Relay> {
    let build = |name: &'static str| {
        move || {
            tun_rs::DeviceBuilder::new()
                .name(name)
                .mtu(1400)
                .build_sync()
                .unwrap_or_else(|e| panic!("TUN device {name}: {e}"))
        }
    };
    let node_dev = node.on_thread(build("np0"));
    let vnet_dev = vnet.on_thread(build("vn0"));
    let relay = Arc::new(Relay::default());
    let count = relay.clone();
    rt.block(async move {
        let n = Arc::new(tun_rs::AsyncDevice::new(node_dev).expect("async TUN"));
        let v = Arc::new(tun_rs::AsyncDevice::new(vnet_dev).expect("async TUN"));
        tokio::spawn(pump(n.clone(), v.clone(), Duration::ZERO, count.clone(), true));
        tokio::spawn(pump(v, n, delay, count, false));
    });
    node.ip("link set np0 up");
    node.ip(&format!("addr add {NODE_IP}/32 dev np0"));
    for net in [
        "10.0.0.0/16",
        &format!("{AZURE_DNS}/32"),
        "203.0.113.0/24",
        PUBLIC_DROPPED,
    ] {
        node.ip(&format!("route add {net} dev np0 src {NODE_IP}"));
    }
    vnet.ip("link set vn0 up");
    vnet.ip("route add 10.224.0.0/16 dev vn0");
    vnet.ip(&format!("route add blackhole {DROPPED}"));
    vnet.ip(&format!("route add unreachable {NO_ROUTE}"));
    vnet.ip(&format!("route add blackhole {PUBLIC_DROPPED}"));
    // The VNet routes: without forwarding, the kernel drops packets for the
    // `unreachable` subnet silently instead of answering "no route".
    vnet.on_thread(|| {
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").expect("enable forwarding in the VNet namespace")
    });
    relay
}

/// What the relay did: packets relayed, and writes that failed (lost packets).
#[derive(Debug, Default)]
pub struct Relay {
    pub packets: AtomicU32,
    pub lost: AtomicU32,
    /// DNS queries from the node (UDP datagrams and TCP segments with a
    /// payload, to port 53), as a packet capture on the link would count them.
    pub dns_queries: AtomicU32,
}

/// True when `packet` (IPv4) goes to port 53 and carries a payload.
fn is_dns_query(packet: &[u8]) -> bool {
    if packet.len() < 20 || packet[0] >> 4 != 4 {
        return false;
    }
    let ihl = usize::from(packet[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([packet[2], packet[3]])).min(packet.len());
    let Some(l4) = packet.get(ihl..total) else { return false };
    let dport = |b: &[u8]| b.get(2..4).map(|p| u16::from_be_bytes([p[0], p[1]]));
    match packet[9] {
        17 => dport(l4) == Some(53) && l4.len() > 8,
        6 => {
            let offset = l4.get(12).map(|b| usize::from(b >> 4) * 4).unwrap_or(usize::MAX);
            dport(l4) == Some(53) && l4.len() > offset
        }
        _ => false,
    }
}

/// Copies packets from one device to the other, each `delay` after it was read.
/// `from_node`: this direction carries the node's queries, which are counted.
async fn pump(
    from: Arc<tun_rs::AsyncDevice>,
    to: Arc<tun_rs::AsyncDevice>,
    delay: Duration,
    count: Arc<Relay>,
    from_node: bool,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let lost = count.clone();
    tokio::spawn(async move {
        while let Some((due, packet)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.send(&packet).await.is_err() {
                lost.lost.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let mut buf = vec![0u8; 65536];
    loop {
        let n = match from.recv(&mut buf).await {
            Ok(n) => n,
            Err(_) => return,
        };
        count.packets.fetch_add(1, Ordering::Relaxed);
        if from_node && is_dns_query(&buf[..n]) {
            count.dns_queries.fetch_add(1, Ordering::Relaxed);
        }
        if tx
            .send((tokio::time::Instant::now() + delay, buf[..n].to_vec()))
            .is_err()
        {
            return;
        }
    }
}

/// What answers at a site's private address.
#[derive(Clone)]
pub enum Endpoint {
    /// A TLS server with a lab certificate for the site's name.
    Serves(Reply),
    /// A TLS server with a lab certificate for another name.
    WrongName(&'static str, Reply),
    /// A TLS server whose certificate comes from a CA the node does not trust
    /// (a TLS-inspecting proxy).
    Intercepted(Reply),
    /// A TLS server with a lab certificate for the site's name, behind a
    /// stateful firewall that saw only the SYN (an asymmetric route): every
    /// packet from the node after it is dropped, so TCP connects and the
    /// ClientHello gets no answer.
    DropsAfterHandshake(Reply),
    /// The address exists in the VNet, but nothing listens on 443.
    Closed,
    /// Nothing: the address is not in the VNet (see `DROPPED`, `NO_ROUTE`).
    Absent,
}

/// One name as the lab's DNS and servers present it.
#[derive(Clone)]
pub struct Site {
    pub fqdn: String,
    /// The `privatelink` alias the public zone points the name at, if any.
    pub privatelink: Option<String>,
    /// The public front end's address; `None`: the name does not exist publicly.
    pub public: Option<Ipv4Addr>,
    /// A records in the private zone for the alias (none: the record is missing).
    pub private: Vec<Ipv4Addr>,
    pub endpoint: Endpoint,
    /// The alias exists in the private zone with no address (a TXT record
    /// only): NODATA after the privatelink CNAME.
    pub private_no_address: bool,
    /// The customer DNS server refuses queries for this name (REFUSED).
    pub refused_by_customer: bool,
    /// An Azure DNS security policy blocks the name, and how it answers.
    pub policy: Option<Policy>,
    /// The private zone has no record for the alias, and the link's
    /// fallback to the internet answers publicly: Azure DNS returns the
    /// public chain (a CNAME to the front end in the private zone stands in).
    pub fallback_to_internet: bool,
    /// What the public front end answers, when not the service's "public
    /// network access is disabled" 403 (a network security perimeter's).
    pub front: Option<Reply>,
}

/// How Azure DNS answers a name its security policy blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// `<name> CNAME blockpolicy.azuredns.invalid.`
    Sentinel,
    /// SERVFAIL.
    ServFail,
}

impl Site {
    /// A resource with a private endpoint: `fqdn` CNAME `privatelink`, which
    /// publicly leads to a front end at `public`, privately to `private`.
    pub fn private_link(
        fqdn: &str,
        privatelink: &str,
        public: Ipv4Addr,
        private: &[Ipv4Addr],
        endpoint: Endpoint,
    ) -> Site {
        Site {
            fqdn: fqdn.into(),
            privatelink: Some(privatelink.into()),
            public: Some(public),
            private: private.to_vec(),
            endpoint,
            private_no_address: false,
            refused_by_customer: false,
            policy: None,
            fallback_to_internet: false,
            front: None,
        }
    }

    /// The alias is in the private zone, but with no A record.
    pub fn with_no_private_address(self) -> Site {
        Site {
            private: vec![],
            private_no_address: true,
            ..self
        }
    }

    /// Azure DNS's security policy blocks the name, answering as `policy`.
    pub fn blocked_by_policy(self, policy: Policy) -> Site {
        Site {
            policy: Some(policy),
            ..self
        }
    }

    /// No record in the linked private zone; the link's fallback to the
    /// internet answers with the public chain.
    pub fn falling_back_to_internet(self) -> Site {
        Site {
            private: vec![],
            fallback_to_internet: true,
            ..self
        }
    }

    /// The public front end answers `reply`.
    pub fn front_answers(self, reply: Reply) -> Site {
        Site {
            front: Some(reply),
            ..self
        }
    }

    /// The customer DNS server answers REFUSED for this name.
    pub fn refused_by_customer(self) -> Site {
        Site {
            refused_by_customer: true,
            ..self
        }
    }

    /// A public name with no `privatelink` alias.
    pub fn public_only(fqdn: &str, public: Ipv4Addr) -> Site {
        Site {
            fqdn: fqdn.into(),
            privatelink: None,
            public: Some(public),
            private: vec![],
            endpoint: Endpoint::Absent,
            private_no_address: false,
            refused_by_customer: false,
            policy: None,
            fallback_to_internet: false,
            front: None,
        }
    }

    /// A public name whose front end answers `reply` (a public resource, or
    /// one of the AML extension's endpoints).
    pub fn public_serving(fqdn: &str, public: Ipv4Addr, reply: Reply) -> Site {
        Site {
            endpoint: Endpoint::Serves(reply),
            ..Site::public_only(fqdn, public)
        }
    }

    /// A name that exists only in a linked private zone (a private AKS
    /// cluster's API server), at `private`.
    pub fn private_zone_only(fqdn: &str, private: Ipv4Addr, endpoint: Endpoint) -> Site {
        Site {
            fqdn: fqdn.into(),
            privatelink: Some(fqdn.into()),
            public: None,
            private: vec![private],
            endpoint,
            private_no_address: false,
            refused_by_customer: false,
            policy: None,
            fallback_to_internet: false,
            front: None,
        }
    }

    /// A name that does not exist anywhere.
    pub fn nowhere(fqdn: &str) -> Site {
        Site {
            fqdn: fqdn.into(),
            privatelink: None,
            public: None,
            private: vec![],
            endpoint: Endpoint::Absent,
            private_no_address: false,
            refused_by_customer: false,
            policy: None,
            fallback_to_internet: false,
            front: None,
        }
    }

    fn frontend(&self) -> Option<String> {
        self.privatelink
            .as_ref()
            .map(|p| p.replacen("privatelink.", "frontend.", 1))
    }
}

/// The zone of `name` among `zones`: the longest suffix.
fn zone_of<'a>(name: &str, zones: &[&'a str]) -> Option<&'a str> {
    zones
        .iter()
        .filter(|z| name == **z || name.ends_with(&format!(".{z}")))
        .max_by_key(|z| z.len())
        .copied()
}

/// Records for the zones on each DNS server: zone -> zone-file lines.
#[derive(Default)]
struct ZoneData {
    public: BTreeMap<&'static str, String>,
    private: BTreeMap<&'static str, String>,
}

impl ZoneData {
    fn build(sites: &[Site]) -> ZoneData {
        let mut z = ZoneData::default();
        let public_zones = public_zones();
        let private_zones: Vec<&'static str> = LINKED_ZONES
            .iter()
            .chain(UNLINKED_ZONES)
            .chain(ONPREM_ZONES)
            .copied()
            .collect();
        for zone in &public_zones {
            z.public.insert(zone, String::new());
        }
        for zone in &private_zones {
            z.private.insert(zone, String::new());
        }
        let add = |map: &mut BTreeMap<&'static str, String>, zones: &[&'static str], line: String| {
            let owner = line.split_whitespace().next().unwrap_or_default().trim_end_matches('.');
            let zone = zone_of(owner, zones).unwrap_or_else(|| panic!("no lab zone holds {owner}"));
            map.get_mut(zone).unwrap().push_str(&line);
        };
        for s in sites {
            let Some(public) = s.public else {
                if let Some(name) = &s.privatelink {
                    for ip in &s.private {
                        add(&mut z.private, &private_zones, format!("{name}. IN A {ip}\n"));
                    }
                }
                continue;
            };
            match (&s.privatelink, s.frontend()) {
                (Some(pl), Some(fe)) => {
                    add(&mut z.public, &public_zones, format!("{}. IN CNAME {pl}.\n", s.fqdn));
                    add(&mut z.public, &public_zones, format!("{pl}. IN CNAME {fe}.\n"));
                    add(&mut z.public, &public_zones, format!("{fe}. IN A {public}\n"));
                    for ip in &s.private {
                        add(&mut z.private, &private_zones, format!("{pl}. IN A {ip}\n"));
                    }
                    if s.private_no_address {
                        add(&mut z.private, &private_zones, format!("{pl}. IN TXT \"no address\"\n"));
                    }
                    if s.fallback_to_internet {
                        add(&mut z.private, &private_zones, format!("{pl}. IN CNAME {fe}.\n"));
                    }
                }
                _ => add(&mut z.public, &public_zones, format!("{}. IN A {public}\n", s.fqdn)),
            }
        }
        z
    }
}

/// Starts `named` for `role` in the VNet namespace, listening on `ip`:53.
/// `zones` are primary zones, `statements` more configuration (forward zones).
fn named(
    vnet: &Netns,
    dir: &Path,
    role: &str,
    ips: &[Ipv4Addr],
    options: &str,
    zones: &[(&str, String)],
    statements: &str,
) -> Named {
    let ips: String = ips.iter().map(|ip| format!("{ip}; ")).collect();
    // Short cache lifetimes: every round goes through the whole chain again.
    let options = format!("  max-cache-ttl 1;\n  max-ncache-ttl 1;\n{options}");
    named::start(
        vnet.command("named"),
        &dir.join(role),
        &format!("port 53 {{ {ips}}}"),
        &options,
        zones,
        statements,
    )
}

/// The zone files of `zones` that are in `only`; those in `broken` are not
/// zone files at all (`named` does not load them and answers SERVFAIL).
fn zone_files<'a>(zones: &'a BTreeMap<&'static str, String>, only: &[&str], broken: &[&str]) -> Vec<(&'a str, String)> {
    zone_files_with(zones, only, broken, named::SOA)
}

/// [`zone_files`] with the SOA and NS lines `head`.
fn zone_files_with<'a>(
    zones: &'a BTreeMap<&'static str, String>,
    only: &[&str],
    broken: &[&str],
    head: &str,
) -> Vec<(&'a str, String)> {
    zones
        .iter()
        .filter(|(zone, _)| only.contains(zone))
        .map(|(zone, records)| {
            let text = if broken.contains(zone) {
                format!("$ORIGIN {zone}.\nthis is not a zone file\n")
            } else {
                named::zone_file_with(zone, head, records)
            };
            (*zone, text)
        })
        .collect()
}

/// Runs `nft <rule>` in `ns`, creating the `inet lab` table and its `input`
/// chain first when needed (this kernel has `nf_tables`; `nft` is Debian's
/// `nftables`).
fn nft(ns: &Netns, rule: &str) {
    let has = |what: &str| {
        ns.command("nft")
            .args(["list", what, "inet", "lab", "input"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let mut steps: Vec<String> = Vec::new();
    if !has("chain") {
        steps.push("add table inet lab".into());
        steps.push("add chain inet lab input { type filter hook input priority 0; policy accept; }".into());
    }
    steps.push(rule.into());
    for step in steps {
        let out = ns
            .command("nft")
            .args(step.split_whitespace())
            .output()
            .unwrap_or_else(|e| panic!("nft (Debian package nftables; scripts/test installs it): {e}"));
        assert!(
            out.status.success(),
            "nft {step}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Azure DNS's security policy for `sites`: a response-policy zone that
/// answers a blocked name with the sentinel CNAME, and for the SERVFAIL
/// form a zone named after the name whose file does not load. Returns the
/// `options` lines and the statements.
fn policy(sites: &[Site], dir: &Path) -> (String, String) {
    let mut rpz = String::new();
    let mut statements = String::new();
    for s in sites {
        match s.policy {
            // An RPZ trigger is the name relative to the policy zone.
            Some(Policy::Sentinel) => rpz.push_str(&format!("{} IN CNAME {POLICY_SENTINEL}.\n", s.fqdn)),
            Some(Policy::ServFail) => {
                let file = dir.join(format!("denied-{}.zone", s.fqdn));
                std::fs::write(&file, format!("$ORIGIN {}.\nthis is not a zone file\n", s.fqdn)).unwrap();
                statements.push_str(&format!(
                    "zone \"{}\" {{ type primary; file \"{}\"; }};\n",
                    s.fqdn,
                    file.display()
                ));
            }
            None => {}
        }
    }
    let file = dir.join("policy.rpz.zone");
    std::fs::write(&file, named::zone_file("policy.rpz", &rpz)).unwrap();
    statements.push_str(&format!(
        "zone \"policy.rpz\" {{ type primary; file \"{}\"; }};\n",
        file.display()
    ));
    ("  response-policy { zone \"policy.rpz\"; };\n".into(), statements)
}

/// The VNet lab: namespaces, link, DNS servers and endpoints, torn down on drop
/// (in field order: servers, then the runtime, then the namespaces).
pub struct Lab {
    named: Vec<Named>,
    _servers: Vec<HttpsServer>,
    pub vnet_rt: NsRuntime,
    pub node_rt: NsRuntime,
    pub ca: Ca,
    pub dir: tempfile::TempDir,
    pub relay: Arc<Relay>,
    pub node: Netns,
    pub vnet: Netns,
}

impl Lab {
    /// Builds the lab for `sites`, with `delay` on packets from the VNet to
    /// the node, and waits until every DNS server answers.
    pub fn start(sites: &[Site], delay: Duration) -> Lab {
        require();
        let node = Netns::create("node");
        let vnet = Netns::create("vnet");
        let vnet_rt = vnet.runtime(2);
        let node_rt = node.runtime(1);
        let relay = link(&node, &vnet, &vnet_rt, delay);
        let dir = tempfile::tempdir().unwrap();

        // The node's resolv.conf, as AKS writes it for a VNet with custom DNS.
        std::fs::create_dir_all(node.etc()).unwrap();
        std::fs::write(
            node.etc().join("resolv.conf"),
            format!("nameserver {CUSTOMER_DNS}\nsearch lab.internal\noptions ndots:1\n"),
        )
        .unwrap();

        // Addresses: the DNS servers, every front end and every endpoint that exists.
        let mut local: Vec<Ipv4Addr> = vec![
            CUSTOMER_DNS,
            AZURE_DNS,
            PUBLIC_DNS,
            DEAD_DNS,
            TCP_BLOCKED_DNS,
            ONPREM_DNS,
        ];

        for s in sites {
            local.extend(s.public.filter(|ip| !publicly_dropped(*ip)));
            if !matches!(s.endpoint, Endpoint::Absent) {
                local.extend(s.private.iter().copied());
            }
        }
        local.sort();
        local.dedup();
        for ip in &local {
            vnet.ip(&format!("addr add {ip}/32 dev lo"));
        }

        let ca = Ca::new("netprobe lab CA").unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
        let rogue = Ca::new("TLS inspection proxy CA").unwrap();
        // The CA the node does not trust also signs the API server's
        // certificate: it stands for the cluster CA.
        std::fs::write(dir.path().join("other-ca.pem"), rogue.cert_pem()).unwrap();
        // Public front ends of public resources answer as the service does.
        let mut front_replies: BTreeMap<Ipv4Addr, Reply> = BTreeMap::new();
        let mut plans: Vec<(IpAddr, netprobe_sim::pki::Leaf, Reply)> = Vec::new();
        let mut fronts: BTreeMap<Ipv4Addr, Vec<String>> = BTreeMap::new();
        for s in sites {
            if let Some(ip) = s.public.filter(|ip| !publicly_dropped(*ip)) {
                fronts.entry(ip).or_default().push(s.fqdn.clone());
                if let (None, Endpoint::Serves(r)) = (&s.privatelink, &s.endpoint) {
                    front_replies.insert(ip, r.clone());
                }
                if let Some(r) = &s.front {
                    front_replies.insert(ip, r.clone());
                }
            }
            let leaf_for = |names: &[&str], ca: &Ca| ca.leaf(names, Validity::Current).unwrap();
            let (leaf, reply) = match &s.endpoint {
                Endpoint::Serves(r) | Endpoint::DropsAfterHandshake(r) => (leaf_for(&[&s.fqdn], &ca), r.clone()),
                Endpoint::WrongName(name, r) => (leaf_for(&[name], &ca), r.clone()),
                Endpoint::Intercepted(r) => (leaf_for(&[&s.fqdn], &rogue), r.clone()),
                Endpoint::Closed | Endpoint::Absent => continue,
            };
            for ip in &s.private {
                let copy = netprobe_sim::pki::Leaf {
                    chain: leaf.chain.clone(),
                    key: leaf.clone_key(),
                };
                plans.push((IpAddr::V4(*ip), copy, reply.clone()));
            }
        }
        for (ip, names) in fronts {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            // A public front end with public network access disabled, unless
            // the resource is public.
            let reply = front_replies
                .remove(&ip)
                .unwrap_or_else(|| Reply::new(403, "public network access is disabled for this resource"));
            plans.push((IpAddr::V4(ip), ca.leaf(&names, Validity::Current).unwrap(), reply));
        }
        let servers = vnet_rt.block(async move {
            let mut v = Vec::new();
            for (ip, leaf, reply) in plans {
                v.push(
                    HttpsServer::start(ip, 443, &leaf, reply)
                        .await
                        .unwrap_or_else(|e| panic!("HTTPS server on {ip}:443: {e}")),
                );
            }
            v
        });

        let data = ZoneData::build(sites);
        let d = dir.path();
        let public_zones = zone_files(&data.public, &public_zones(), BROKEN_PUBLIC_ZONES);
        let internet = named(
            &vnet,
            d,
            "internet",
            &[PUBLIC_DNS],
            "  recursion no;\n",
            &public_zones,
            "",
        );
        // Azure DNS and the customer's server both resolve what they do not
        // hold (or forward) through the internet.
        let recursive = format!(
            "  recursion yes;\n  allow-recursion {{ any; }};\n  forward only;\n  forwarders {{ {PUBLIC_DNS}; }};\n"
        );
        let private_zones = zone_files_with(&data.private, LINKED_ZONES, &[], AZURE_PRIVATE_SOA);
        let (policy_options, policy_statements) = policy(sites, d);
        let mut azure_statements: String = AZURE_FORWARDED
            .iter()
            .map(|zone| format!("zone \"{zone}\" {{ type forward; forward only; forwarders {{ {ONPREM_DNS}; }}; }};\n"))
            .collect();
        azure_statements.push_str(&policy_statements);
        let azure = named(
            &vnet,
            d,
            "azure",
            &[AZURE_DNS],
            &format!("{recursive}{policy_options}"),
            &private_zones,
            &azure_statements,
        );
        let onprem_zones = zone_files_with(&data.private, ONPREM_ZONES, &[], ONPREM_SOA);
        let onprem = named(&vnet, d, "onprem", &[ONPREM_DNS], &recursive, &onprem_zones, "");
        let mut forwards: String = CUSTOMER_FORWARDS
            .iter()
            .map(|zone| format!("zone \"{zone}\" {{ type forward; forward only; forwarders {{ {AZURE_DNS}; }}; }};\n"))
            .collect();
        // A name the customer server refuses: a zone of its own that no one may query.
        for s in sites.iter().filter(|s| s.refused_by_customer) {
            let file = d.join(format!("refused-{}.zone", s.fqdn));
            std::fs::write(&file, named::zone_file(&s.fqdn, "")).unwrap();
            forwards.push_str(&format!(
                "zone \"{}\" {{ type primary; file \"{}\"; allow-query {{ none; }}; }};\n",
                s.fqdn,
                file.display()
            ));
        }
        let customer = named(
            &vnet,
            d,
            "customer",
            &[CUSTOMER_DNS, TCP_BLOCKED_DNS],
            &recursive,
            &[],
            &forwards,
        );
        // A firewall that allows UDP 53 only, to the customer server's second address.
        nft(
            &vnet,
            &format!("add rule inet lab input ip daddr {TCP_BLOCKED_DNS} tcp dport 53 drop"),
        );
        // An asymmetric route: the firewall passes the SYN, then drops the rest of the flow.
        for s in sites
            .iter()
            .filter(|s| matches!(s.endpoint, Endpoint::DropsAfterHandshake(_)))
        {
            for ip in &s.private {
                nft(
                    &vnet,
                    &format!(
                        "add rule inet lab input ip daddr {ip} tcp dport 443 tcp flags & (fin|syn|rst|ack) != syn drop"
                    ),
                );
            }
        }
        let lab = Lab {
            named: vec![internet, azure, onprem, customer],
            _servers: servers,
            vnet_rt,
            node_rt,
            ca,
            dir,
            relay,
            node,
            vnet,
        };
        lab.wait_for_dns();
        lab
    }

    /// Waits until each DNS server answers from the node.
    fn wait_for_dns(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for (server, name) in [
            (PUBLIC_DNS, "azurecr.io"),
            (AZURE_DNS, "privatelink.azurecr.io"),
            (CUSTOMER_DNS, "azurecr.io"),
            (ONPREM_DNS, "privatelink.dfs.core.windows.net"),
        ] {
            let addr = std::net::SocketAddr::new(IpAddr::V4(server), 53);
            let within = deadline.saturating_duration_since(Instant::now());
            let up = self
                .node_rt
                .block(named::answers(addr, name, within, Duration::from_millis(500)));
            if let Err(obs) = up {
                panic!(
                    "DNS server {server} did not answer from the node: {obs:?}\n{}",
                    self.logs()
                );
            }
        }
    }

    /// Azure DNS's `named`, reloaded after `edit` changed the text of one of
    /// its private zone files (a record replaced, say).
    pub fn edit_azure_zone(&self, zone: &str, edit: impl FnOnce(String) -> String) {
        let file = self.dir.path().join("azure").join(format!("{zone}.zone"));
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        // A later modification time than the loaded file's: named reloads it.
        std::thread::sleep(Duration::from_millis(1100));
        std::fs::write(&file, edit(text)).unwrap();
        self.named[1].reload();
    }

    /// Adds an nftables rule in the VNet (`add rule inet lab input ...`).
    pub fn vnet_nft(&self, rule: &str) {
        nft(&self.vnet, rule);
    }

    /// Every `named` log, for failure messages.
    pub fn logs(&self) -> String {
        self.named.iter().map(Named::log).collect()
    }

    /// The certificate file of the CA the node does not trust (the TLS
    /// inspection proxy's, and the API server's "cluster CA").
    pub fn other_ca_file(&self) -> PathBuf {
        self.dir.path().join("other-ca.pem")
    }

    /// The lab CA's certificate file, for `tls.extra_ca_file`.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The link's state: packets relayed and lost, and each side's drop counters.
    pub fn link_stats(&self) -> String {
        let dropped = |ns: &Netns, dev: &str| {
            let out = ns.command("ip").args(["-s", "-o", "link", "show", dev]).output();

            out.map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
        };
        format!(
            "relay: {} packets, {} lost\nnode {}\nvnet {}",
            self.relay.packets.load(Ordering::Relaxed),
            self.relay.lost.load(Ordering::Relaxed),
            dropped(&self.node, "np0"),
            dropped(&self.vnet, "vn0"),
        )
    }

    /// GET `path` from `port` on the node's loopback, from inside the node namespace.
    pub fn node_get(&self, port: u16, path: &'static str) -> String {
        self.node.on_thread(move || http_get(port, path))
    }

    /// Runs the built netprobe binary in the node namespace.
    pub fn netprobe(&self) -> Command {
        self.node.command(netprobe_bin())
    }
}

/// GET `path` from `port` on loopback, with the whole response (head and
/// body); empty if nothing answers. Call it on a thread inside a namespace
/// (`Netns::on_thread`), or use `Lab::node_get`.
pub fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = write!(s, "GET {path} HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n");
    let mut response = String::new();
    let _ = s.read_to_string(&mut response);
    response
}

/// The netprobe binary the lab runs: this build's, or `$NETPROBE_BIN` (the
/// image's static link, say: `NETPROBE_BIN=$(scripts/build-release) cargo test --test lab`).
pub fn netprobe_bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| std::env::var("NETPROBE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_netprobe").to_string()))
}
