//! The binary the image ships (scripts/build-release: glibc linked in, a
//! fixed-address executable) runs where the image's base has no C library
//! at all, as in `gcr.io/distroless/static`: built here with the same flags
//! (unoptimised, to keep the suite quick) and run under `chroot` in a root
//! that holds only that binary and the files distroless/static has (CA
//! certificates, passwd, nsswitch.conf, hosts) and the devices a container
//! runtime adds. Checks that the probe path
//! works there (`demo`: DNS, TCP, TLS, HTTP against the simulated VNet) and
//! that glibc's built-in name service finds a host name in /etc/hosts, which
//! the Kubernetes client needs for an API server named by FQDN (AKS's
//! `set-kube-service-host-fqdn`). Needs root (chroot); fails, never skips,
//! without it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use netprobe_sim::https::Reply;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Built once per test run, in its own target directory (the outer
/// `cargo test` holds the lock on `target/`).
fn static_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let o = Command::new(root().join("scripts/build-release"))
            // `sim` adds `netprobe demo`, which the image's binary lacks:
            // the probe path is checked through it; the link is the image's.
            .args(["--profile", "dev", "--features", "sim", "--auditable"])
            .env("CARGO_TARGET_DIR", root().join("target/static-binary"))
            .env_remove("RUSTFLAGS")
            .output()
            .expect("scripts/build-release");
        assert!(
            o.status.success(),
            "scripts/build-release failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let path = String::from_utf8_lossy(&o.stdout)
            .lines()
            .last()
            .unwrap_or("")
            .to_string();
        PathBuf::from(path)
    })
}

/// Whether an ELF executable asks for a program interpreter (ld.so), i.e.
/// needs shared libraries: a PT_INTERP program header.
fn has_interpreter(path: &Path) -> bool {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..4], b"\x7fELF", "{}", path.display());
    assert_eq!(b[4], 2, "64-bit ELF");
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(b[0x20..0x28].try_into().unwrap()) as usize;
    let (size, count) = (u16_at(0x36), u16_at(0x38));
    (0..count).any(|i| u32::from_le_bytes(b[phoff + i * size..][..4].try_into().unwrap()) == 3)
}

/// A root with what distroless/static holds, and `bin` as /netprobe.
fn distroless_like_root(bin: &Path, ca_pem: &str, hosts: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    for d in ["etc/ssl/certs", "tmp", "home/nonroot"] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    std::fs::copy(bin, r.join("netprobe")).unwrap();
    let files = [
        ("etc/ssl/certs/ca-certificates.crt", ca_pem),
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
        ),
        ("etc/group", "root:x:0:\nnonroot:x:65532:\n"),
        ("etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n"),
        ("etc/hosts", hosts),
        // No DNS server here: only /etc/hosts can answer.
        (
            "etc/resolv.conf",
            "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
        ),
    ];
    for (name, text) in files {
        std::fs::write(r.join(name), text).unwrap();
    }
    // The devices every OCI runtime creates in a container's /dev (the
    // random-number crates read /dev/urandom when linked statically).
    std::fs::create_dir(r.join("dev")).unwrap();
    for (name, minor) in [("null", "3"), ("zero", "5"), ("random", "8"), ("urandom", "9")] {
        let dev = r.join("dev").join(name);
        let ok = Command::new("mknod")
            .args(["-m", "666"])
            .arg(&dev)
            .args(["c", "1", minor])
            .status()
            .expect("mknod (coreutils)")
            .success();
        assert!(ok, "mknod {} (root is needed)", dev.display());
    }
    dir
}

fn chrooted(root: &Path, args: &[&str]) -> Output {
    let chroot = ["/usr/sbin/chroot", "/usr/bin/chroot"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("chroot (coreutils)");
    Command::new(chroot)
        .arg(root)
        .arg("/netprobe")
        .args(args)
        .env_clear()
        .env("HOME", "/home/nonroot")
        .env("PATH", "/")
        .output()
        .expect("chroot (root is needed)")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn the_shipped_link_needs_no_shared_library() {
    let bin = static_binary();
    assert!(!has_interpreter(bin), "{} asks for ld.so", bin.display());
    // The check can fail: the ordinary build does need ld.so, and does not
    // start where there is none.
    let dynamic = Path::new(env!("CARGO_BIN_EXE_netprobe"));
    assert!(has_interpreter(dynamic));
    let root = distroless_like_root(dynamic, "", "127.0.0.1 localhost\n");
    let o = chrooted(root.path(), &["--version"]);
    assert!(
        !o.status.success(),
        "a dynamic binary ran without a C library: {}",
        text(&o)
    );

    let root = distroless_like_root(bin, "", "127.0.0.1 localhost\n");
    let o = chrooted(root.path(), &["--version"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("netprobe "),
        "{}",
        text(&o)
    );
}

#[test]
fn the_probe_path_works_without_a_c_library() {
    let root = distroless_like_root(static_binary(), "", "127.0.0.1 localhost\n");
    let o = chrooted(root.path(), &["demo", "--output", "json"]);
    assert_eq!(o.status.code(), Some(1), "the demo has findings: {}", text(&o));
    assert_eq!(common::causes(&common::parse_report(&o.stdout)), common::demo_causes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubernetes_client_finds_the_api_server_by_name_in_etc_hosts() {
    let api = common::fake_api("apiserver.netprobe.test", |_| {
        Reply::new(200, r#"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[]}"#)
            .header("content-type", "application/json")
    })
    .await;
    let (port, seen) = (api.port, api.seen.clone());

    let bin = static_binary().to_path_buf();
    let ca_pem = api.ca.cert_pem().to_string();
    let run = move |hosts: &'static str| {
        let bin = bin.clone();
        let ca_pem = ca_pem.clone();
        tokio::task::spawn_blocking(move || {
            let root = distroless_like_root(&bin, &ca_pem, hosts);
            std::fs::write(
                root.path().join("kubeconfig"),
                format!(
                    "apiVersion: v1\nkind: Config\ncurrent-context: t\nclusters:\n- name: t\n  cluster:\n    server: https://apiserver.netprobe.test:{port}\n    certificate-authority: /etc/ssl/certs/ca-certificates.crt\ncontexts:\n- name: t\n  context:\n    cluster: t\n    user: u\nusers:\n- name: u\n  user:\n    token: static-test-token\n"
                ),
            )
            .unwrap();
            chrooted(root.path(), &["report", "--kubeconfig", "/kubeconfig", "-o", "json"])
        })
    };

    // Not in /etc/hosts, and no DNS server: the name does not resolve, and
    // the API server hears nothing.
    let o = run("127.0.0.1 localhost\n").await.unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(seen.lock().unwrap().is_empty());

    let o = run("127.0.0.1 localhost\n127.0.0.1 apiserver.netprobe.test\n")
        .await
        .unwrap();
    let requests = seen.lock().unwrap().clone();
    assert!(!requests.is_empty(), "the API server was not reached: {}", text(&o));
    assert!(
        requests
            .iter()
            .all(|r| r.authorization.as_deref() == Some("Bearer static-test-token")),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.path.starts_with("/api/v1/namespaces/netprobe/pods")),
        "{requests:?}"
    );
}

/// The binary carries its dependency list (`--auditable`, as the image's
/// and the release archives' do): a `.dep-v0` section, zlib-compressed
/// JSON of every crate, that is not loaded at run time (no memory on a
/// node: it has no address).
#[test]
fn the_binary_carries_its_dependency_list() {
    let bin = static_binary();
    let sections = Command::new("readelf").args(["-W", "-S"]).arg(bin).output().unwrap();
    let table = String::from_utf8_lossy(&sections.stdout);
    let line = table
        .lines()
        .find(|l| l.contains(".dep-v0"))
        .unwrap_or_else(|| panic!("no .dep-v0 section:\n{table}"));
    // Not allocated: no `A` flag, address 0.
    let fields: Vec<&str> = line.split_whitespace().collect();
    let at = fields.iter().position(|f| *f == ".dep-v0").unwrap();
    assert!(fields[at + 2].chars().all(|c| c == '0'), "{line}");
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("dep-v0");
    let dump = Command::new("objcopy")
        .arg(format!("--dump-section=.dep-v0={}", raw.display()))
        .arg(bin)
        .arg(dir.path().join("copy"))
        .status()
        .unwrap();
    assert!(dump.success());
    let json = Command::new("python3")
        .args([
            "-c",
            "import sys, zlib; sys.stdout.write(zlib.decompress(open(sys.argv[1], 'rb').read()).decode())",
        ])
        .arg(&raw)
        .output()
        .unwrap();
    let deps: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let names: Vec<&str> = deps["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for crate_name in ["netprobe", "rustls", "hickory-proto", "kube-client", "tokio"] {
        assert!(names.contains(&crate_name), "{crate_name} not in {names:?}");
    }
}
