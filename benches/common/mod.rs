//! Shared by the benches: start the release agent as its own process, follow
//! its JSON log, and read its footprint from /proc.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use serde_json::Value;

pub mod load;
pub mod soak;

/// The agent binary the benches run: this build's, or `$NETPROBE_BIN` (to
/// measure a binary built otherwise, such as with other linker flags).
pub fn agent_binary() -> std::ffi::OsString {
    std::env::var_os("NETPROBE_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_netprobe").into())
}

/// A running `netprobe probe` and its log lines (parsed JSON).
pub struct Agent {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    pub log: Receiver<Value>,
}

impl Agent {
    /// Starts the agent on `cfg` with JSON logs at `rust_log`; returns once it listens.
    pub fn spawn(cfg: &Path, rust_log: &str) -> Agent {
        Agent::spawn_with(Command::new(agent_binary()), cfg, rust_log)
    }

    /// As `spawn`, through `command` (e.g. `ip netns exec <ns> netprobe`),
    /// which must exec netprobe in place so that its pid is netprobe's.
    pub fn spawn_with(mut command: Command, cfg: &Path, rust_log: &str) -> Agent {
        let mut child = command
            .args([
                "probe",
                "-c",
                cfg.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
            ])
            .env("RUST_LOG", rust_log)
            // Rounds as often as the bench's config says (loopback only).
            .env("NETPROBE_MIN_INTERVAL", "0s")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("netprobe binary");
        let stderr = child.stderr.take().unwrap();
        let (tx, log) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    return;
                }
            }
        });
        let addr = loop {
            let v = log.recv_timeout(Duration::from_secs(10)).expect("agent listening");
            if let Some(l) = v["listen"].as_str() {
                break l.parse().unwrap();
            }
        };
        let pid = child.id();
        Agent { child, pid, addr, log }
    }

    /// Waits for the next log line with this message.
    pub fn next(&self, message: &str) -> Value {
        loop {
            let v = self.log.recv_timeout(Duration::from_secs(600)).expect("log line");
            if v["message"] == message {
                return v;
            }
        }
    }

    /// SIGTERM, then wait.
    pub fn stop(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.pid.to_string()]).status();
        let _ = self.child.wait();
    }
}

/// A /proc/<pid>/status field in KiB (VmRSS:, VmHWM:).
pub fn status_kib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)
                .map(|v| v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0.0))
        })
        .unwrap_or(0.0)
}

/// Open file descriptors.
pub fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// utime + stime in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let tck: f64 = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start at ") ".
    let after = stat.rsplit_once(") ").map(|x| x.1).unwrap_or("");
    let f: Vec<f64> = after.split_whitespace().map(|v| v.parse().unwrap_or(0.0)).collect();
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / tck
}

/// GET /metrics: the exposition.
pub async fn metrics(addr: SocketAddr) -> String {
    netprobe_testkit::http_get(addr, "/metrics").await.1
}

/// The value of an unlabelled series (0 when absent).
pub fn metric(text: &str, name: &str) -> f64 {
    netprobe_testkit::metric_value(text, name, &[]).unwrap_or(0.0)
}

/// Resident KiB per mapping group from /proc/<pid>/smaps, largest first:
/// a file's base name (the binary, libc.so.6, ...), `[heap]`, `[stack]`, or
/// `anon` for the rest (thread stacks, allocator arenas, relocated data).
/// The `Anonymous:` part of file mappings (pages written, such as relocated
/// `.data.rel.ro`) is also listed as `<file> (written)`: a part of that
/// file's figure, not in addition to it.
pub fn rss_by_mapping(pid: u32) -> Vec<(String, u64)> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut groups = std::collections::BTreeMap::<String, u64>::new();
    let mut current = String::new();
    let kib = |l: &str, field: &str| -> Option<u64> {
        l.strip_prefix(field)?.trim().trim_end_matches("kB").trim().parse().ok()
    };
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            let path = line.split_whitespace().nth(5).unwrap_or("");
            current = match path {
                "" => "anon".to_string(),
                p if p.starts_with('[') => p.to_string(),
                p => p.rsplit('/').next().unwrap_or(p).to_string(),
            };
        } else if let Some(v) = kib(line, "Rss:") {
            *groups.entry(current.clone()).or_default() += v;
        } else if let Some(v) = kib(line, "Anonymous:")
            && v > 0
            && !current.starts_with('[')
            && current != "anon"
        {
            *groups.entry(format!("{current} (written)")).or_default() += v;
        }
    }
    let mut v: Vec<_> = groups.into_iter().filter(|(_, k)| *k > 0).collect();
    v.sort_by_key(|g| std::cmp::Reverse(g.1));
    v
}

/// Threads of a process.
pub fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}
