//! Starting a real BIND `named` for a test: its configuration, zone files and
//! log in a directory, stopped on drop. Shared by the loopback BIND tests
//! (tests/bind9.rs) and the VNet lab.

use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The SOA and NS every test zone starts with.
pub const SOA: &str = "@ 60 IN SOA ns.test. hostmaster.test. 1 60 60 600 60\n@ 60 IN NS ns.test.\n";

/// A running `named`, killed on drop.
pub struct Named {
    child: Child,
    log: PathBuf,
}

impl Named {
    /// Reloads the configuration and changed zone files (SIGHUP, as `rndc
    /// reload` does). The lab's LocalDNS case uses it; tests/bind9.rs does not.
    #[allow(dead_code)]
    pub fn reload(&self) {
        let ok = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "could not signal named {}", self.child.id());
    }

    /// What `named` wrote to stderr (it runs with `-g`).
    pub fn log(&self) -> String {
        format!(
            "== {}\n{}",
            self.log.display(),
            std::fs::read_to_string(&self.log).unwrap_or_default()
        )
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A zone file: `$ORIGIN`, a 60 s TTL, `SOA`, then `records`.
pub fn zone_file(zone: &str, records: &str) -> String {
    zone_file_with(zone, SOA, records)
}

/// A zone file with its own SOA and NS lines (`head`).
pub fn zone_file_with(zone: &str, head: &str, records: &str) -> String {
    format!("$ORIGIN {zone}.\n$TTL 60\n{head}{records}")
}

/// Fails the test, saying what to install, when `program` is not on the PATH.
pub fn require(program: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "{program} is required (Debian package {package}; scripts/test installs it)"
    );
}

/// Writes `dir/named.conf` and the zone files (`zones`: name and file text),
/// checks the configuration with `named-checkconf`, and starts `named -g -4`
/// through `command` (`named` itself, or `ip netns exec <ns> named`).
/// `listen` is the `listen-on` argument (`port 53 { 10.0.0.10; }`); `options`
/// are more lines for the `options` block, `statements` more top-level ones
/// (forward zones, say).
pub fn start(
    mut command: Command,
    dir: &Path,
    listen: &str,
    options: &str,
    zones: &[(&str, String)],
    statements: &str,
) -> Named {
    require("named", "bind9");
    std::fs::create_dir_all(dir).unwrap();
    let d = dir.display();
    let mut conf = format!(
        "options {{\n  directory \"{d}\";\n  listen-on {listen};\n  listen-on-v6 {{ none; }};\n  pid-file \"{d}/named.pid\";\n  session-keyfile \"{d}/session.key\";\n  dnssec-validation no;\n  allow-query {{ any; }};\n{options}}};\ncontrols {{ }};\n"
    );
    for (zone, text) in zones {
        let file = dir.join(format!("{zone}.zone"));
        std::fs::write(&file, text).unwrap();
        let _ = writeln!(
            conf,
            "zone \"{zone}\" {{ type primary; file \"{}\"; }};",
            file.display()
        );
    }
    conf.push_str(statements);
    let conf_path = dir.join("named.conf");
    std::fs::write(&conf_path, conf).unwrap();
    if let Ok(out) = Command::new("named-checkconf").arg(&conf_path).output() {
        assert!(
            out.status.success(),
            "named-checkconf: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let log = dir.join("named.log");
    let child = command
        .args(["-g", "-4", "-c"])
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(Stdio::from(File::create(&log).unwrap()))
        .spawn()
        .expect("start named");
    Named { child, log }
}

/// Asks `server` for `name` until it answers NOERROR (`named` answers
/// SERVFAIL while its zones load), each query allowed `per_query`, for at most
/// `within`. On failure, the last observation.
pub async fn answers(
    server: std::net::SocketAddr,
    name: &str,
    within: std::time::Duration,
    per_query: std::time::Duration,
) -> Result<(), netprobe::observation::DnsObservation> {
    use netprobe::observation::{DnsOutcome, Rcode};
    let deadline = std::time::Instant::now() + within;
    loop {
        let obs = netprobe::probe::dns::lookup(
            "probe",
            name,
            &[server],
            per_query,
            &netprobe::probe::dns::QueryRate::per_resolver(),
        )
        .await;
        if let DnsOutcome::Answer(a) = &obs.outcome
            && a.rcode == Rcode::NoError
        {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(obs);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
