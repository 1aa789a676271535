//! Files read from the node or the config's folder: a resolv.conf's
//! nameservers and PEM certificate bundles. Configuration validation reads
//! them to reject what cannot work, the probe engine to use them; neither owns
//! them.

use std::io::{BufRead, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// The most of a resolv.conf read (a real one is a few hundred bytes).
pub const MAX_RESOLV_CONF_BYTES: u64 = 64 << 10;
/// The most of a PEM bundle read (the system bundle is about 200 KiB).
pub const MAX_PEM_BYTES: u64 = 4 << 20;

/// Reads a file named by the configuration, or read from the node, within
/// `max` bytes, and only if it is a regular file (after symbolic links, as
/// a mounted ConfigMap has them): `/dev/zero` or a FIFO named by mistake is
/// an error, never unbounded memory or a hung read.
pub fn read_bounded(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut data = Vec::with_capacity(meta.len().min(max) as usize);
    file.take(max + 1).read_to_end(&mut data)?;
    if data.len() as u64 > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {max} bytes"),
        ));
    }
    Ok(data)
}

/// The most lines of `/proc/self/net/tcp` scanned for one socket: with
/// `hostNetwork` a node's sockets are all there, tens of thousands on a busy one.
pub const MAX_SOCKET_LINES: usize = 200_000;

/// Bytes written on the TCP connection from `local` to `remote` that the peer
/// has not acknowledged: the socket's send queue (`tx_queue` in
/// `/proc/self/net/tcp`, or `tcp6`), read in this process's network
/// namespace, line by line. `None` when the socket or the file is not there.
pub fn unacknowledged(local: SocketAddr, remote: SocketAddr) -> Option<u64> {
    let path = if local.is_ipv4() {
        "/proc/self/net/tcp"
    } else {
        "/proc/self/net/tcp6"
    };
    let file = std::fs::File::open(path).ok()?;
    let lines = std::io::BufReader::new(file)
        .lines()
        .take(MAX_SOCKET_LINES)
        .map_while(Result::ok);
    send_queue(lines, local.port(), remote.port())
}

/// The `tx_queue` of the socket between `local_port` and `remote_port` in the
/// lines of `/proc/net/tcp` (a header, then `sl local rem st tx:rx ...`, ports
/// in hex).
pub fn send_queue(lines: impl Iterator<Item = String>, local_port: u16, remote_port: u16) -> Option<u64> {
    let port = |a: &str| a.rsplit_once(':').and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
    lines.skip(1).find_map(|line| {
        let mut fields = line.split_whitespace().skip(1);
        let (local, remote, queues) = (fields.next()?, fields.next()?, fields.nth(1)?);
        if port(local) != Some(local_port) || port(remote) != Some(remote_port) {
            return None;
        }
        u64::from_str_radix(queues.split_once(':')?.0, 16).ok()
    })
}

/// A resolv.conf that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ResolvConfError {
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{path} has no usable `nameserver` line")]
    NoNameservers { path: String },
}

/// Reads the `nameserver` lines of a resolv.conf (port 53 each).
pub fn read_resolv_conf(path: &Path) -> Result<Vec<SocketAddr>, ResolvConfError> {
    let shown = path.display().to_string();
    let data = read_bounded(path, MAX_RESOLV_CONF_BYTES).map_err(|error| ResolvConfError::Read {
        path: shown.clone(),
        error,
    })?;
    let (config, _opts) = hickory_resolver::system_conf::parse_resolv_conf(&data)
        .map_err(|_| ResolvConfError::NoNameservers { path: shown.clone() })?;
    let servers: Vec<SocketAddr> = config
        .name_servers
        .iter()
        .map(|ns| SocketAddr::new(ns.ip, 53))
        .collect();
    if servers.is_empty() {
        return Err(ResolvConfError::NoNameservers { path: shown });
    }
    Ok(servers)
}

/// Reads the first readable candidate; the error names every candidate.
pub fn read_first_resolv_conf(paths: &[PathBuf]) -> Result<Vec<SocketAddr>, String> {
    let mut errors = Vec::new();
    for p in paths {
        match read_resolv_conf(p) {
            Ok(servers) => return Ok(servers),
            Err(e) => errors.push(e.to_string()),
        }
    }
    Err(errors.join("; and "))
}

/// A CA file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CaFileError {
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{path} holds no PEM certificate")]
    Empty { path: String },
    #[error("{path}: invalid PEM: {message}")]
    Invalid { path: String, message: String },
}

/// Reads every certificate of a PEM file.
pub fn load_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, CaFileError> {
    let shown = path.display().to_string();
    let data = read_bounded(path, MAX_PEM_BYTES).map_err(|error| CaFileError::Read {
        path: shown.clone(),
        error,
    })?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<_, _>>()
        .map_err(|e| CaFileError::Invalid {
            path: shown.clone(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(CaFileError::Empty { path: shown });
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("resolv.conf");
        std::fs::write(&p, "search svc.cluster.local\noptions ndots:5\n").unwrap();
        let e = read_resolv_conf(&p).unwrap_err().to_string();
        assert!(e.contains("resolv.conf") && e.contains("nameserver"), "{e}");
        std::fs::write(&p, "nameserver 10.0.0.10\nnameserver fd00::a\n").unwrap();
        let servers = read_resolv_conf(&p).unwrap();
        assert_eq!(
            servers,
            vec!["10.0.0.10:53".parse().unwrap(), "[fd00::a]:53".parse().unwrap()]
        );
        let e = read_resolv_conf(&dir.path().join("missing")).unwrap_err().to_string();
        assert!(e.contains("cannot read") && e.contains("missing"), "{e}");
    }

    #[test]
    fn send_queue_reads_the_sockets_tx_queue() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
            0: 0100007F:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n\
            garbage\n\
            1: 1B01000A:D431 1B01000A:01BB 01 0000020F:00000000 01:00000041 00000003     0        0 2 1\n";
        let lines = || text.lines().map(str::to_string);
        assert_eq!(send_queue(lines(), 0xD431, 443), Some(0x20F));
        assert_eq!(send_queue(lines(), 53, 0), Some(0));
        assert_eq!(send_queue(lines(), 0xD431, 80), None);
        // A live socket of this process: nothing written, nothing unacknowledged.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (local, remote) = (client.local_addr().unwrap(), client.peer_addr().unwrap());
        assert_eq!(unacknowledged(local, remote), Some(0));
    }

    /// A device, a directory or an oversized file named by mistake is an
    /// error that names it, read no further than the bound.
    #[test]
    fn only_bounded_regular_files_are_read() {
        for (path, why) in [
            ("/dev/zero", "not a regular file"),
            ("/dev/null", "not a regular file"),
            ("/", "not a regular file"),
        ] {
            let e = read_resolv_conf(Path::new(path)).unwrap_err().to_string();
            assert!(e.contains(path) && e.contains(why), "{e}");
            let e = load_pem_certs(Path::new(path)).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'#'; (MAX_RESOLV_CONF_BYTES + 1) as usize]).unwrap();
        let e = read_resolv_conf(&big).unwrap_err().to_string();
        assert!(e.contains("larger than 65536 bytes"), "{e}");
        assert_eq!(
            read_bounded(&big, MAX_RESOLV_CONF_BYTES + 1).unwrap().len() as u64,
            MAX_RESOLV_CONF_BYTES + 1
        );
    }
}
