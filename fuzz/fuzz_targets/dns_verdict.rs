//! Hostile DNS responses through parsing, chain following, verdict and
//! diagnosis (properties: netprobe_testkit::fuzz).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netprobe_testkit::fuzz::check_dns_verdict(data));
