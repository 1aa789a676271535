//! Replays the fuzz seeds and every input in fuzz/regressions/ through the
//! same properties the fuzz targets check (netprobe_testkit::fuzz). A crash found
//! by `scripts/fuzz` is made permanent by copying its input into
//! fuzz/regressions/<target>/.

use std::path::Path;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                continue;
            }
            out.push((format!("{dir}/{target}/{name}"), std::fs::read(e.path()).unwrap()));
        }
    }
    out.sort();
    out
}

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let all = inputs(target);
    for (name, data) in &all {
        if std::panic::catch_unwind(|| check(data)).is_err() {
            panic!("{name} violates a property of the {target} fuzz target");
        }
    }
    all.len()
}

#[test]
fn config_inputs_hold() {
    assert!(replay("config", netprobe_testkit::fuzz::check_config) >= 3);
}

#[test]
fn service_tags_inputs_hold() {
    assert!(replay("service_tags", netprobe_testkit::fuzz::check_service_tags) >= 4);
}

#[test]
fn cert_not_after_inputs_hold() {
    assert!(replay("cert_not_after", netprobe_testkit::fuzz::check_cert_not_after) >= 2);
    // The seeds are real certificates (openssl), so the property compares dates, not just "no panic".
    for (name, data) in inputs("cert_not_after").iter().filter(|(n, _)| n.starts_with("seeds/")) {
        assert!(netprobe::probe::cert::not_after(data).is_some(), "{name}");
    }
}

#[test]
fn http_judgement_inputs_hold() {
    assert!(replay("http_judgement", netprobe_testkit::fuzz::check_http_judgement) >= 9);
}

/// The HTTP seeds are each service's real answers, judged as they should be.
#[test]
fn the_http_seeds_mean_what_their_names_say() {
    use netprobe::model::Reach;
    for (name, data) in inputs("http_judgement").iter().filter(|(n, _)| n.starts_with("seeds/")) {
        let (service, response) = netprobe_testkit::fuzz::parse_http_seed(data);
        let (reach, _) = netprobe::service::of(service).judge(&response);
        let want = if name.contains("denied") || name.contains("firewall") {
            Reach::Rejected
        } else {
            Reach::Ok
        };
        assert_eq!(reach, want, "{name}");
    }
}

#[test]
fn dns_verdict_inputs_hold() {
    assert!(replay("dns_verdict", netprobe_testkit::fuzz::check_dns_verdict) >= 4);
}

#[test]
fn the_dns_seeds_mean_what_their_names_say() {
    // The seeds are real responses, so the checks run on meaningful data.
    use hickory_resolver::proto::op::Message;
    let all = inputs("dns_verdict");
    let get = |n: &str| {
        all.iter()
            .find(|(name, _)| name.ends_with(n))
            .map(|x| x.1.clone())
            .unwrap()
    };
    let m = Message::from_vec(&get("private-chain.bin")).unwrap();
    let a = netprobe::probe::dns::follow_chain("reg01.azurecr.io", &m.answers);
    assert_eq!(a.chain, vec!["reg01.privatelink.azurecr.io"]);
    assert_eq!(a.addresses.len(), 1);
    // A long chain through other zones still ends private; one past the
    // 16-name limit is an error; a CNAME with nothing after it is NODATA.
    let m = Message::from_vec(&get("long-chain-12-private.bin")).unwrap();
    let a = netprobe::probe::dns::follow_chain("reg01.azurecr.io", &m.answers);
    assert_eq!(
        (a.chain.len(), a.addresses.len(), a.chain_problem.is_none()),
        (12, 1, true)
    );
    let m = Message::from_vec(&get("chain-20-too-long.bin")).unwrap();
    assert!(
        netprobe::probe::dns::follow_chain("reg01.azurecr.io", &m.answers)
            .chain_problem
            .is_some()
    );
    let m = Message::from_vec(&get("dangling-cname.bin")).unwrap();
    let a = netprobe::probe::dns::follow_chain("reg01.azurecr.io", &m.answers);
    assert_eq!((a.chain.len(), a.addresses.len()), (1, 0));
    let m = Message::from_vec(&get("loop.bin")).unwrap();
    assert!(
        netprobe::probe::dns::follow_chain("reg01.azurecr.io", &m.answers)
            .chain_problem
            .is_some()
    );
}
