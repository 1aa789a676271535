//! Hostile DNS responses through parsing, chain following, verdict and
//! diagnosis (properties: netprobe::fuzzing).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netprobe::fuzzing::check_dns_verdict(data));
