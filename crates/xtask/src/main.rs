//! `cargo run -p xtask -- gen` writes every generated file (scripts/gen);
//! `cargo run -p xtask -- check` lists the stale ones and exits 1.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let command = std::env::args().nth(1).unwrap_or_default();
    let result = match command.as_str() {
        "gen" => xtask::generate(&root).and_then(|files| {
            for (path, text) in files {
                let file = root.join(&path);
                if std::fs::read_to_string(&file).ok().as_ref() != Some(&text) {
                    std::fs::write(&file, text).map_err(|e| format!("{path}: {e}"))?;
                    println!("wrote {path}");
                }
            }
            Ok(true)
        }),
        "check" => xtask::stale(&root).map(|stale| {
            for path in &stale {
                println!("stale: {path} (run scripts/gen)");
            }
            stale.is_empty()
        }),
        _ => Err("usage: xtask gen | check".to_string()),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::from(2)
        }
    }
}
