//! What a release ships, built here as far as this machine allows:
//! the archives `scripts/package-release` writes (both binaries, the
//! license, checksums), and the krew manifest (deploy/krew/netprobe.yaml)
//! rendered as krew-release-bot renders it at a tag, checked against
//! krew's rules and against those archives.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The tag of this version (`v` + Cargo.toml's).
fn tag() -> String {
    format!("v{}", env!("CARGO_PKG_VERSION"))
}

/// The test build of the binary, stripped (a tenth of the size: quicker
/// to archive), once per test process.
fn binary() -> &'static Path {
    static BIN: std::sync::OnceLock<(tempfile::TempDir, PathBuf)> = std::sync::OnceLock::new();
    &BIN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("netprobe");
        std::fs::copy(env!("CARGO_BIN_EXE_netprobe"), &bin).unwrap();
        assert!(Command::new("strip").arg(&bin).status().unwrap().success());
        (dir, bin)
    })
    .1
}

fn package(version: &str, arch: &str, dist: &Path) -> std::process::Output {
    Command::new(root().join("scripts/package-release"))
        .args([version, arch])
        .arg(binary())
        .arg(dist)
        .output()
        .unwrap()
}

fn sha256(path: &Path) -> String {
    let o = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// krew-release-bot's template: `{{ .TagName }}`, and
/// `{{addURIAndSha "URL" .TagName }}` as `uri:` and `sha256:` lines (the
/// sha256 of the archive at that URL: here, the local one of that name).
fn render_krew(template: &str, tag: &str, dist: &Path) -> String {
    let mut out = String::new();
    for line in template.lines() {
        if let Some(at) = line.find("{{addURIAndSha \"") {
            let indent = &line[..at];
            let url = line[at + "{{addURIAndSha \"".len()..].split('"').next().unwrap();
            let url = url.replace("{{ .TagName }}", tag);
            let file = dist.join(url.rsplit('/').next().unwrap());
            assert!(
                file.exists(),
                "the manifest names {url}, which package-release did not write"
            );
            out.push_str(&format!("{indent}uri: {url}\n{indent}sha256: {}\n", sha256(&file)));
        } else {
            out.push_str(&line.replace("{{ .TagName }}", tag));
            out.push('\n');
        }
    }
    out
}

#[test]
fn the_release_archives_and_the_krew_manifest_agree() {
    let dist = tempfile::tempdir().unwrap();
    let tag = tag();
    for arch in ["amd64", "arm64"] {
        let o = package(&tag, arch, dist.path());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    // Each archive: both binaries (the plugin is the same binary), the
    // license and the README; its checksum in checksums.txt.
    let checksums = std::fs::read_to_string(dist.path().join("checksums.txt")).unwrap();
    for arch in ["amd64", "arm64"] {
        let name = format!("netprobe_{tag}_linux_{arch}.tar.gz");
        let archive = dist.path().join(&name);
        let listing = Command::new("tar").arg("tzf").arg(&archive).output().unwrap();
        let files: Vec<String> = String::from_utf8_lossy(&listing.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(
            files,
            ["LICENSE", "README.md", "kubectl-netprobe", "netprobe"],
            "{name}"
        );
        assert!(
            checksums.contains(&format!("{}  {name}", sha256(&archive))),
            "{name}: {checksums}"
        );
    }
    let check = Command::new("sha256sum")
        .args(["--check", "checksums.txt"])
        .current_dir(dist.path())
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    // The archive's kubectl-netprobe is the plugin.
    let x = tempfile::tempdir().unwrap();
    let untar = Command::new("tar")
        .arg("xzf")
        .arg(dist.path().join(format!("netprobe_{tag}_linux_amd64.tar.gz")))
        .arg("-C")
        .arg(x.path())
        .status()
        .unwrap();
    assert!(untar.success());
    let help = Command::new(x.path().join("kubectl-netprobe"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("Usage: kubectl netprobe"));

    // The manifest, rendered as the bot renders it, by krew's rules.
    let template = std::fs::read_to_string(root().join("deploy/krew/netprobe.yaml")).unwrap();
    let rendered = render_krew(&template, &tag, dist.path());
    assert!(!rendered.contains("{{"), "{rendered}");
    let m: Value = serde_saphyr::from_str(&rendered).unwrap();
    assert_eq!(m["apiVersion"], "krew.googlecontainertools.github.com/v1alpha2");
    assert_eq!(m["kind"], "Plugin");
    assert_eq!(m["metadata"]["name"], "netprobe");
    let spec = &m["spec"];
    assert_eq!(spec["version"], tag.as_str());
    assert!(spec["homepage"].as_str().unwrap().starts_with("https://"));
    let short = spec["shortDescription"].as_str().unwrap();
    assert!(
        !short.is_empty() && short.len() <= 60 && !short.ends_with('.'),
        "{short:?}"
    );
    let platforms = spec["platforms"].as_array().unwrap();
    assert_eq!(platforms.len(), 2);
    for p in platforms {
        let labels = &p["selector"]["matchLabels"];
        let arch = labels["arch"].as_str().unwrap();
        assert_eq!(labels["os"], "linux");
        let uri = p["uri"].as_str().unwrap();
        assert!(
            uri.starts_with("https://") && uri.ends_with(&format!("_linux_{arch}.tar.gz")),
            "{uri} for {arch}"
        );
        let sha = p["sha256"].as_str().unwrap();
        assert!(sha.len() == 64 && sha.chars().all(|c| c.is_ascii_hexdigit()), "{sha}");
        assert_eq!(p["bin"], netprobe::cli::KUBECTL_PLUGIN);
    }
}

/// Bad arguments stop the packaging with a message, before anything is written.
#[test]
fn package_release_refuses_a_bad_version_or_arch() {
    let dist = tempfile::tempdir().unwrap();
    for (version, arch) in [("0.1.0", "amd64"), ("v0.1.0", "x86_64")] {
        let o = package(version, arch, dist.path());
        assert_eq!(o.status.code(), Some(2), "{version} {arch}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("package-release:"));
    }
    assert_eq!(std::fs::read_dir(dist.path()).unwrap().count(), 0);
}
