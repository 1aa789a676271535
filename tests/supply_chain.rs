//! The vulnerability check (scripts/advisories: `cargo deny check
//! advisories` against the offline RustSec snapshot) can fail: with one more
//! advisory in a copy of the database, against a crate the agent links, the
//! check fails and names it; listed in `ignore` with a reason, it passes.
//! Needs cargo-deny (scripts/test installs it) and the snapshot beside the
//! repository (`../shared/rustsec-advisory-db`, or `$RUSTSEC_DB`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn snapshot() -> PathBuf {
    std::env::var_os("RUSTSEC_DB")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/rustsec-advisory-db"))
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@localhost"])
        .args(args)
        .current_dir(dir)
        .status()
        .expect("git")
        .success();
    assert!(ok, "git {args:?}");
}

/// Runs the advisories check with a config whose database is `db_path` and
/// whose `ignore` list is `ignore`; (success, output).
fn check(db_path: &Path, ignore: &str) -> (bool, String) {
    let config = db_path.join("deny.toml");
    std::fs::write(
        &config,
        format!(
            "[advisories]\ndb-path = {:?}\ndb-urls = [\"https://github.com/rustsec/advisory-db\"]\nignore = [{ignore}]\n",
            db_path.display().to_string()
        ),
    )
    .unwrap();
    // Every package's manifest, other platforms' included, for --offline.
    assert!(
        Command::new("cargo")
            .args(["fetch", "--locked", "-q"])
            .current_dir(root())
            .status()
            .unwrap()
            .success()
    );
    let o = Command::new("cargo")
        .args(["deny", "--offline", "--config"])
        .arg(&config)
        .args(["check", "advisories"])
        .current_dir(root())
        .output()
        .expect("cargo-deny (scripts/test installs it)");
    let text = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    (o.status.success(), text)
}

#[test]
fn a_crate_with_an_advisory_fails_the_check_unless_ignored_with_a_reason() {
    let src = snapshot();
    assert!(src.join("crates").is_dir(), "no advisory database at {}", src.display());
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("advisory-db-3157b0e258782691");
    let copied = Command::new("cp")
        .arg("-r")
        .arg(&src)
        .arg(&db)
        .status()
        .unwrap()
        .success();
    assert!(copied);
    // An advisory against every version of a crate the agent links.
    std::fs::create_dir_all(db.join("crates/ipnet")).unwrap();
    std::fs::write(
        db.join("crates/ipnet/RUSTSEC-2099-0001.md"),
        "```toml\n[advisory]\nid = \"RUSTSEC-2099-0001\"\npackage = \"ipnet\"\ndate = \"2026-08-01\"\n\
         categories = [\"denial-of-service\"]\n\n[versions]\npatched = []\n```\n\n# A test advisory\n\n\
         Made by tests/supply_chain.rs.\n",
    )
    .unwrap();
    git(&db, &["init", "-q"]);
    git(&db, &["add", "-A"]);
    git(&db, &["commit", "-qm", "snapshot with a test advisory"]);

    let (ok, out) = check(tmp.path(), "");
    assert!(!ok, "the check passed with an advisory against ipnet:\n{out}");
    assert!(out.contains("RUSTSEC-2099-0001"), "{out}");

    let (ok, out) = check(
        tmp.path(),
        "{ id = \"RUSTSEC-2099-0001\", reason = \"a test advisory\" }",
    );
    assert!(ok, "ignored with a reason, the check still failed:\n{out}");

    // The project's own list ignores nothing without a reason.
    let deny = std::fs::read_to_string(root().join("deny.toml")).unwrap();
    for line in deny.lines().filter(|l| l.contains("RUSTSEC-")) {
        assert!(line.contains("reason"), "an ignored advisory without a reason: {line}");
    }
}
