//! Writes the generated copies of deploy/prometheus/netprobe-rules.yaml:
//! the PrometheusRule and the Azure Monitor ARM template. Run from the
//! repository root (scripts/gen-rules does).

use std::process::ExitCode;

fn main() -> ExitCode {
    let rules = match std::fs::read_to_string(netprobe_testkit::rules::RULES) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gen-rules: {}: {e}", netprobe_testkit::rules::RULES);
            return ExitCode::from(2);
        }
    };
    match netprobe_testkit::rules::generate(&rules) {
        Ok(files) => {
            for (path, text) in files {
                if let Err(e) = std::fs::write(path, text) {
                    eprintln!("gen-rules: {path}: {e}");
                    return ExitCode::from(2);
                }
                println!("wrote {path}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen-rules: {e}");
            ExitCode::from(2)
        }
    }
}
