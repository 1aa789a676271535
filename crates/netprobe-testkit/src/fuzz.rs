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

/// The config parser on arbitrary bytes: Ok with targets, or its errors,
/// one line each naming the file; never a panic.
pub fn check_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let opts = LoadOptions {
        node_region: Some("eastus".into()),
        allow_unresolved_auto: true,
        ..LoadOptions::default()
    };
    match Config::from_yaml_with(text, "fuzz.yaml", None, &opts) {
        Ok(cfg) => assert!(!cfg.targets.is_empty()),
        Err(e) => {
            // One line per error (a file may have several), each naming the file.
            let msg = e.to_string();
            assert!(!msg.is_empty());
            for line in msg.lines() {
                assert!(line.starts_with("fuzz.yaml"), "{msg}");
                assert_config_error_readable(line);
            }
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
    // `Ident { field: …` and `Ident(Ident(` are debug prints. A value the
    // user wrote is quoted in messages (and may look like anything), so the
    // shape checks read the message without its quoted spans.
    let own = without_quoted(msg);
    let msg = own.as_str();
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

/// `msg` without the spans between backticks or double quotes (the
/// user's own values, which the message quotes).
fn without_quoted(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut quote: Option<char> = None;
    for c in msg.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '`' || c == '"' => quote = Some(c),
            None => out.push(c),
        }
    }
    out
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
            outside_tag: None,
            dns: netprobe::verdict::DnsContext {
                zone_holder: netprobe::verdict::ZoneHolder::Unknown,
                azure_answers_others: true,
                upstreams: &[None, Some(0)],
            },
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

/// One HTTP answer in the seed format of the `http_judgement` target: the
/// first line names the service (workspace, storage, keyvault, acr, custom),
/// then `STATUS`, then `name: value` header lines, an empty line and the
/// body. Arbitrary bytes are read as well as they go.
pub fn parse_http_seed(data: &[u8]) -> (netprobe::service::Service, netprobe::observation::HttpResponse) {
    use netprobe::service::Service;
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let service = lines
        .next()
        .and_then(|l| Service::ALL.iter().find(|s| s.as_str() == l.trim()).copied())
        .unwrap_or(Service::Custom);
    let status = lines.next().and_then(|l| l.trim().parse::<u16>().ok()).unwrap_or(0);
    let mut headers = Vec::new();
    for l in lines.by_ref() {
        let l = l.trim_end_matches('\r');
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let body: String = lines.collect::<Vec<_>>().join("\n");
    (service, netprobe::observation::HttpResponse { status, headers, body })
}

/// Any HTTP answer, judged by every service: no panic; `ok` carries no
/// reason and anything else one; the rejection text and the facts a service
/// extracts are single readable lines.
pub fn check_http_judgement(data: &[u8]) {
    use netprobe::service::Service;
    let (named, response) = parse_http_seed(data);
    for service in Service::ALL.iter().copied().chain([named]) {
        let s = netprobe::service::of(service);
        let (reach, reason) = s.judge(&response);
        assert!(
            matches!(reach, Reach::Ok | Reach::Rejected | Reach::HttpError),
            "{service}: judged {reach}"
        );
        assert_eq!(
            reach == Reach::Ok,
            reason.is_none(),
            "{service}: {reach} with {reason:?}"
        );
        if let Some(r) = &reason {
            assert!(!r.contains('\n') && r.chars().count() <= 400, "{service}: reason {r:?}");
        }
        // netprobe's own words are readable; the service's words it quotes
        // (the reason, from the answer) are whatever the answer said, on one line.
        assert_readable(&s.rejected("x.example.net", "10.0.0.5", "the reason"));
        let text = s.rejected("x.example.net", "10.0.0.5", reason.as_deref().unwrap_or(""));
        assert!(!text.contains('\n'), "{service}: {text}");
        if let Some(seen) = s.seen_address(&response) {
            assert!(!seen.contains('\n') && seen.len() <= 100, "{service}: seen {seen:?}");
        }
    }
}

/// The Service Tags parser on arbitrary bytes: Ok, or one readable line
/// naming the file; never a panic. On Ok, every lookup holds the index's
/// invariants: the tag named for an address contains it, and an address is
/// "in" a service exactly when some tag of that service holds it.
pub fn check_service_tags(data: &[u8]) {
    use netprobe::servicetags::ServiceTags;
    use std::net::IpAddr;
    match ServiceTags::parse(data, "tags.json", "tags.json", None) {
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("tags.json: "), "{msg}");
            assert!(!msg.contains('\n'), "{msg}");
            assert!(msg.chars().count() <= MAX_CONFIG_ERROR, "{msg}");
        }
        Ok(tags) => {
            // Addresses from the input's own bytes, and fixed ones.
            let mut ips: Vec<IpAddr> = vec!["0.0.0.0".parse().unwrap(), "255.255.255.255".parse().unwrap()];
            ips.push("::".parse().unwrap());
            for chunk in data.chunks(4).take(32) {
                if let [a, b, c, d] = *chunk {
                    ips.push(IpAddr::from([a, b, c, d]));
                }
            }
            for ip in ips {
                let named = tags.tag_for(ip, &["AzureContainerRegistry"], Some("eastus"));
                if let Some(t) = named {
                    let svc = t.system_service.clone();
                    if !svc.is_empty() {
                        assert!(
                            tags.in_services(ip, &[svc.as_str()]),
                            "{ip} named {} but not in it",
                            t.name
                        );
                    }
                }
                let in_acr = tags.in_services(ip, &["AzureContainerRegistry"]);
                assert!(!in_acr || tags.knows_any(&["AzureContainerRegistry"]));
                if in_acr {
                    // The service's own tag outranks any other.
                    let t = named.expect("an address in a service has a tag");
                    assert!(t.system_service.eq_ignore_ascii_case("AzureContainerRegistry"), "{t:?}");
                }
            }
        }
    }
}

/// The certificate expiry reader on arbitrary bytes (a TLS peer sends any):
/// never a panic, and where a full X.509 parser reads the same bytes as a
/// certificate, the same `notAfter` or none at all (netprobe reads only the
/// RFC 5280 forms; x509-parser also takes looser ones).
pub fn check_cert_not_after(data: &[u8]) {
    let ours = netprobe::probe::cert::not_after(data);
    if let (Some(ours), Ok((_, cert))) = (ours, x509_parser::parse_x509_certificate(data)) {
        assert_eq!(
            ours,
            cert.validity().not_after.timestamp(),
            "notAfter differs from x509-parser's"
        );
    }
}
