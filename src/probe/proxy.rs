//! The proxy phase (`proxy_probe`): one target through the workloads' HTTP
//! proxy, as their clients go: a TCP connection to the proxy, `CONNECT
//! <fqdn>:<port>` (with `Proxy-Authorization: Basic` when the proxy URL
//! carries credentials), then the same TLS handshake and HTTP request as the
//! direct probe, inside the tunnel. One connection per target and round,
//! each step within the phase timeout; the proxy's answer is read up to
//! [`MAX_CONNECT_ANSWER`] bytes.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

use super::{http, tcp, tls};
use crate::model::TcpOutcome;
use crate::observation::ProxyProbeObservation;
use crate::service::Target;

/// The most of the proxy's answer to CONNECT read (its status line and
/// headers; a body is not read).
pub const MAX_CONNECT_ANSWER: usize = 8 << 10;

/// A proxy URL's parts: `http://[user[:password]@]host[:port][/]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyUrl {
    pub host: String,
    pub port: u16,
    /// `user:password`, for `Proxy-Authorization: Basic`.
    pub credentials: Option<String>,
}

impl ProxyUrl {
    /// Parses the URL as Go does: no scheme means `http`; only `http` is
    /// probed (an `https` or SOCKS proxy is named in the error).
    pub fn parse(url: &str) -> Result<ProxyUrl, String> {
        let url = url.trim();
        let rest = match url.split_once("://") {
            None => url,
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) => return Err(format!("a {scheme} proxy is not probed (only http://)")),
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let (credentials, hostport) = match authority.rsplit_once('@') {
            Some((user, host)) => (Some(user.to_string()), host),
            None => (None, authority),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(':') && !p.contains(']') => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("the proxy's port {p:?} is not a number"))?,
            ),
            _ => (hostport, 80),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err("the proxy URL names no host".into());
        }
        Ok(ProxyUrl {
            host: host.to_string(),
            port,
            credentials,
        })
    }
}

/// The proxy's address: an IP as written, else the name through the pod's
/// own resolver (getaddrinfo, as workloads resolve it), within `limit`.
async fn proxy_address(url: &ProxyUrl, limit: Duration) -> Result<SocketAddr, (TcpOutcome, String)> {
    if let Ok(ip) = url.host.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, url.port));
    }
    match timeout(limit, tokio::net::lookup_host((url.host.as_str(), url.port))).await {
        Err(_) => Err((TcpOutcome::Timeout, format!("{} did not resolve in time", url.host))),
        Ok(Err(e)) => Err((TcpOutcome::Unreachable, format!("{} does not resolve: {e}", url.host))),
        Ok(Ok(mut addrs)) => addrs
            .next()
            .ok_or_else(|| (TcpOutcome::Unreachable, format!("{} has no address", url.host))),
    }
}

/// Sends CONNECT and reads the answer's head: `(status, status line)`.
async fn connect_tunnel(stream: &mut TcpStream, url: &ProxyUrl, authority: &str) -> Result<(u16, String), String> {
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(c) = &url.credentials {
        request.push_str(&format!(
            "Proxy-Authorization: Basic {}\r\n",
            data_encoding::BASE64.encode(c.as_bytes())
        ));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("sending CONNECT: {e}"))?;
    // Byte by byte, so that nothing of the tunnel is read past the head.
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_CONNECT_ANSWER {
            return Err(format!("an answer head longer than {MAX_CONNECT_ANSWER} bytes"));
        }
        match stream.read(&mut byte).await {
            Ok(0) => return Err("the proxy closed the connection".into()),
            Ok(_) => head.push(byte[0]),
            Err(e) => return Err(format!("reading the answer: {e}")),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let line = text.lines().next().unwrap_or_default().trim().to_string();
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("not an HTTP answer: {}", crate::text::shown(&line, 80)))?;
    Ok((status, crate::text::shown(&line, 120)))
}

/// Probes `target` through the proxy at `url` (as the workloads' variable
/// has it; `shown` is the same with credentials hidden).
pub async fn probe(
    target: &Target,
    url: &str,
    shown: String,
    trust: &tls::TlsSetup,
    limit: Duration,
) -> ProxyProbeObservation {
    let start = Instant::now();
    let mut obs = ProxyProbeObservation {
        proxy: shown,
        tcp: TcpOutcome::Error,
        tcp_detail: None,
        connect: Err("not sent".into()),
        duration: Duration::ZERO,
        tls: None,
        http: None,
    };
    let parsed = match ProxyUrl::parse(url) {
        Ok(p) => p,
        Err(why) => {
            obs.tcp_detail = Some(why);
            return obs;
        }
    };
    let addr = match proxy_address(&parsed, limit).await {
        Ok(a) => a,
        Err((outcome, why)) => {
            obs.tcp = outcome;
            obs.tcp_detail = Some(why);
            obs.duration = start.elapsed();
            return obs;
        }
    };
    let connected = tcp::connect(addr, limit).await;
    obs.tcp = connected.outcome;
    obs.tcp_detail = connected.detail.map(|d| format!("{addr}: {d}"));
    let Some(mut stream) = connected.stream else {
        obs.duration = start.elapsed();
        return obs;
    };
    let authority = format!("{}:{}", target.fqdn, target.port);
    obs.connect = match timeout(limit, connect_tunnel(&mut stream, &parsed, &authority)).await {
        Ok(answer) => answer,
        Err(_) => Err(format!("no answer within {}", humantime::format_duration(limit))),
    };
    obs.duration = start.elapsed();
    if !matches!(obs.connect, Ok((200..=299, _))) {
        return obs;
    }
    let (tls_obs, tls_stream) = tls::handshake(trust, stream, &target.fqdn, limit).await;
    obs.tls = Some(tls_obs);
    if let Some(s) = tls_stream {
        obs.http = Some(http::request(s, &target.fqdn, target.port, target.service, limit).await);
    }
    obs
}

#[cfg(test)]
mod tests {
    use super::ProxyUrl;

    #[test]
    fn proxy_urls_parse_as_go_reads_them() {
        let p = |s: &str| ProxyUrl::parse(s);
        assert_eq!(
            p("http://u:pw@proxy.corp:3128/").unwrap(),
            ProxyUrl {
                host: "proxy.corp".into(),
                port: 3128,
                credentials: Some("u:pw".into())
            }
        );
        assert_eq!(p("10.0.0.30:8888").unwrap().port, 8888);
        assert_eq!(p("http://proxy").unwrap().port, 80);
        assert_eq!(p("http://[fd00::1]:3128").unwrap().host, "fd00::1");
        assert!(p("socks5://p:1080").unwrap_err().contains("socks5"));
        assert!(p("http://:3128").is_err());
        assert!(p("http://p:port").unwrap_err().contains("port"));
    }
}
