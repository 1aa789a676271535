//! A simulated network on loopback for netprobe's demo and tests: a DNS
//! server that answers as Azure DNS or a customer's DNS server would (and
//! misbehaves on request), HTTPS servers with per-service answers, and a
//! throw-away CA. Not part of the product library; the `demo` command and the
//! tests use it.
//!
//! In the simulation, 127.0.10.0/24 plays the VNet's private range (private
//! endpoints) and 127.0.200.0/24 plays the public internet. Nothing leaves the
//! loopback interface.

#![forbid(unsafe_code)]

pub mod dns;
pub mod https;
pub mod pki;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tokio::net::TcpListener;

/// The private range of the simulated VNet.
pub const SIM_PRIVATE_RANGE: &str = "127.0.10.0/24";

/// An address in the simulated VNet's private range.
pub fn private_ip(host: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 10, host))
}

/// An address on the simulated public internet.
pub fn public_ip(host: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 200, host))
}

/// Binds TCP listeners on every `ip` with one shared, free port.
pub async fn bind_same_port(ips: &[IpAddr]) -> std::io::Result<(u16, Vec<TcpListener>)> {
    let mut last = None;
    'attempt: for _ in 0..32 {
        let Some(first_ip) = ips.first() else {
            return Ok((0, Vec::new()));
        };
        let first = TcpListener::bind(SocketAddr::new(*first_ip, 0)).await?;
        let port = first.local_addr()?.port();
        let mut listeners = vec![first];
        for ip in &ips[1..] {
            match TcpListener::bind(SocketAddr::new(*ip, port)).await {
                Ok(l) => listeners.push(l),
                Err(e) => {
                    last = Some(e);
                    continue 'attempt;
                }
            }
        }
        return Ok((port, listeners));
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no common free port")))
}
