//! Test support shared by netprobe's tests, benches and fuzz targets, kept
//! out of the product library: the fuzz properties, the check that a message
//! is fit for a person, a raw HTTP GET, and reading one series from a
//! Prometheus exposition. (Generated files are `crates/xtask`'s.)

#![forbid(unsafe_code)]

pub mod cgroup;
pub mod fuzz;
pub mod k8s;
pub mod pss;

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub use fuzz::{assert_config_error_readable, assert_readable};

/// GET `path` over plain HTTP/1.0, so that every server answers with a
/// plain body (no chunked encoding) and closes; the status and the body, or
/// `(0, "")` when nothing answers.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let Ok(s) = tokio::net::TcpStream::connect(addr).await else {
        return (0, String::new());
    };
    get_on(s, path).await
}

/// [`http_get`] from the loopback address `from` (e.g. 127.0.1.7): one of
/// many clients, as a fleet of scrapers is to the agent, which serves a
/// few connections per source address.
pub async fn http_get_from(from: std::net::IpAddr, addr: SocketAddr, path: &str) -> (u16, String) {
    let socket = match from {
        std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    };
    let Ok(socket) = socket else { return (0, String::new()) };
    if socket.bind(SocketAddr::new(from, 0)).is_err() {
        return (0, String::new());
    }
    let Ok(s) = socket.connect(addr).await else {
        return (0, String::new());
    };
    get_on(s, path).await
}

async fn get_on(mut s: tokio::net::TcpStream, path: &str) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.0\r\nHost: netprobe\r\n\r\n");
    if s.write_all(request.as_bytes()).await.is_err() {
        return (0, String::new());
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|x| x.1.to_string()).unwrap_or_default();
    (status, body)
}

/// The value of the first series `name{labels}` whose labels include every
/// `k="v"` of `want` (an empty `want` matches the unlabelled series too).
pub fn metric_value(exposition: &str, name: &str, want: &[(&str, &str)]) -> Option<f64> {
    exposition.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?;
        let (labels, v) = if let Some(r) = rest.strip_prefix('{') {
            r.split_once("} ")?
        } else {
            ("", rest.strip_prefix(' ')?)
        };
        want.iter()
            .all(|(k, val)| labels.contains(&format!("{k}=\"{val}\"")))
            .then(|| v.trim().parse().ok())?
    })
}
