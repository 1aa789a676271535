//! The properties the fuzz targets check (`fuzz/`), shared with the replay
//! test (`tests/fuzz_regressions.rs`) so that every crash a fuzzer finds
//! becomes a regression test by dropping its input into `fuzz/regressions/`.
//! Each function panics when a property is violated. They use only
//! netprobe's public API.

use std::time::Duration;

use hickory_resolver::proto::op::Message;

use netprobe::azure::Cloud;
use netprobe::config::{Config, LoadOptions};
use netprobe::model::{DnsVerdict, Reach};
use netprobe::observation::{DnsObservation, DnsOutcome};
use netprobe::probe::dns::{MAX_CHAIN, follow_chain, rcode_of};
use netprobe::verdict::{ReachContext, assess_dns, diagnose};

/// The config parser on arbitrary bytes: Ok with targets, or one error line
/// naming the file; never a panic.
pub fn check_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let opts = LoadOptions {
        node_region: Some("eastus".into()),
        allow_unresolved_auto: true,
        target_port: None,
    };
    match Config::from_yaml_with(text, "fuzz.yaml", None, &opts) {
        Ok(cfg) => assert!(!cfg.targets.is_empty()),
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("fuzz.yaml"), "{msg}");
            assert!(!msg.contains('\n'), "{msg}");
            assert_config_error_readable(&msg);
        }
    }
}

/// Longest configuration error line a user is shown for one bad value.
pub const MAX_CONFIG_ERROR: usize = 600;

/// A configuration error: readable, and short whatever the value's length.
pub fn assert_config_error_readable(msg: &str) {
    assert!(
        msg.chars().count() <= MAX_CONFIG_ERROR,
        "{} characters: {msg}",
        msg.chars().count()
    );
    assert_readable(msg);
}

/// A message for a person: no library internals (a Rust debug print such as
/// `Other(OtherError(X))` or `Nodes { nodes: 1 }`, a library option's name).
pub fn assert_readable(msg: &str) {
    for leak in [
        "Options",
        "budget breached",
        "OtherError",
        "Error(",
        "Other(",
        "Some(",
        "None)",
    ] {
        assert!(!msg.contains(leak), "library internals ({leak}) in: {msg}");
    }
    // `Ident { field: …` and `Ident(Ident(` are debug prints.
    let words: Vec<&str> = msg.split_whitespace().collect();
    for w in words.windows(3) {
        let camel =
            w[0].starts_with(|c: char| c.is_ascii_uppercase()) && w[0].chars().all(|c| c.is_ascii_alphanumeric());
        assert!(
            !(camel && w[1] == "{" && w[2].ends_with(':')),
            "a debug print in: {msg}"
        );
    }
    let nested = msg.split('(').filter(|p| {
        let ident: String = p.chars().rev().take_while(|c| c.is_ascii_alphanumeric()).collect();
        ident.len() > 2 && ident.chars().last().is_some_and(|c| c.is_ascii_uppercase())
    });
    assert!(nested.count() < 2, "a nested debug print in: {msg}");
}

/// A DNS response from arbitrary bytes through hickory's parser, chain
/// following, the verdict and the diagnosis: no panic, and consistent results.
pub fn check_dns_verdict(data: &[u8]) {
    let Ok(msg) = Message::from_vec(data) else { return };
    let target = netprobe::service::acr::login(Cloud::Public, "reg01");
    let mut answer = follow_chain(&target.fqdn, &msg.answers);
    answer.rcode = rcode_of(msg.metadata.response_code);
    assert!(answer.chain.len() <= MAX_CHAIN + 1);
    let obs = DnsObservation {
        resolver: "fuzz".into(),
        server: None,
        outcome: DnsOutcome::Answer(answer.clone()),
        duration: Duration::from_millis(1),
        tcp_fallback: false,
        queries: 0,
    };
    let ranges = netprobe::config::default_private_ranges();
    let view = assess_dns(&target, &obs, &ranges);
    if answer.chain_problem.is_some() {
        assert_eq!(view.verdict, DnsVerdict::Error);
    }
    if view.verdict == DnsVerdict::Private {
        assert!(!view.addresses.is_empty() && view.addresses.iter().all(|a| a.private));
    }
    let d = diagnose(
        &target,
        &[view.clone(), view],
        0,
        &ReachContext {
            reach: Reach::Skipped,
            connects: &[],
            timeout: Duration::from_secs(1),
            expected_addresses: false,
            via: None,
        },
    );
    assert_eq!(d.healthy(), d.text().is_none());
    assert_eq!(d.healthy(), d.cause() == netprobe::model::Cause::None);
    for c in &d.causes {
        for name in netprobe::catalogue::FACT_NAMES {
            assert!(
                !c.diagnosis.contains(&format!("{{{name}}}")),
                "unfilled {{{name}}}: {}",
                c.diagnosis
            );
        }
    }
}
