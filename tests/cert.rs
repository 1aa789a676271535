//! The certificate expiry reader (src/probe/cert.rs) against certificates
//! rcgen makes and a full X.509 parser reads back, over both time forms
//! (rcgen writes UTCTime before 2050 and GeneralizedTime from 2050 on, as
//! RFC 5280 says) and every kind of key netprobe's test servers use.

use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519};
use time::{Duration, OffsetDateTime};

fn cert(not_after: OffsetDateTime, alg: &'static rcgen::SignatureAlgorithm) -> Vec<u8> {
    let mut params = CertificateParams::new(vec!["ws.privatelink.api.azureml.ms".to_string()]).unwrap();
    params.not_before = OffsetDateTime::from_unix_timestamp(0).unwrap();
    params.not_after = not_after;
    let key = KeyPair::generate_for(alg).unwrap();
    params.self_signed(&key).unwrap().der().to_vec()
}

#[test]
fn not_after_matches_x509_parser_across_both_time_forms() {
    let mut seen_forms = std::collections::BTreeSet::new();
    let mut at = OffsetDateTime::from_unix_timestamp(-631_152_000).unwrap(); // 1950-01-01
    let end = OffsetDateTime::from_unix_timestamp(4_102_444_800).unwrap(); // 2100-01-01
    let algs = [&PKCS_ECDSA_P256_SHA256, &PKCS_ECDSA_P384_SHA384, &PKCS_ED25519];
    let mut n = 0usize;
    while at < end {
        let der = cert(at, algs[n % algs.len()]);
        let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
        seen_forms.insert(if at.year() < 2050 { "UTCTime" } else { "GeneralizedTime" });
        assert_eq!(
            parsed.validity().not_after.timestamp(),
            at.unix_timestamp(),
            "oracle, {at}"
        );
        assert_eq!(
            netprobe::probe::cert::not_after(&der),
            Some(at.unix_timestamp()),
            "{at}"
        );
        // An odd step, so that months, days and seconds all vary.
        at += Duration::seconds(86_400 * 397 + 3_671);
        n += 1;
    }
    assert!(n > 100, "{n} certificates");
    assert_eq!(seen_forms.len(), 2);
}

#[test]
fn the_edges_of_the_two_forms() {
    for unix in [2_524_607_999_i64, 2_524_608_000, 253_402_300_799] {
        let at = OffsetDateTime::from_unix_timestamp(unix).unwrap();
        let der = cert(at, &PKCS_ECDSA_P256_SHA256);
        assert_eq!(netprobe::probe::cert::not_after(&der), Some(unix), "{at}");
    }
}
