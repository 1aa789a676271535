//! TCP phase: connect to one address within the phase timeout.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

use crate::model::TcpOutcome;

/// The result of one connect attempt; `stream` is set on success.
pub struct TcpResult {
    pub outcome: TcpOutcome,
    pub duration: Duration,
    pub detail: Option<String>,
    pub stream: Option<TcpStream>,
}

pub async fn connect(addr: SocketAddr, limit: Duration) -> TcpResult {
    let start = Instant::now();
    let (outcome, detail, stream) = match timeout(limit, TcpStream::connect(addr)).await {
        Err(_) => (
            TcpOutcome::Timeout,
            Some(format!("no answer within {}", humantime::format_duration(limit))),
            None,
        ),
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            (TcpOutcome::Ok, None, Some(s))
        }
        Ok(Err(e)) => (classify(&e), Some(e.to_string()), None),
    };
    TcpResult {
        outcome,
        duration: start.elapsed(),
        detail,
        stream,
    }
}

fn classify(e: &std::io::Error) -> TcpOutcome {
    match e.kind() {
        ErrorKind::ConnectionRefused => TcpOutcome::Refused,
        ErrorKind::TimedOut => TcpOutcome::Timeout,
        ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable | ErrorKind::AddrNotAvailable => {
            TcpOutcome::Unreachable
        }
        _ => TcpOutcome::Error,
    }
}
