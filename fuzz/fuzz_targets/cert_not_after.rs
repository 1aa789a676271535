//! Any bytes as a TLS peer's certificate, through the expiry reader
//! (properties: netprobe_testkit::fuzz::check_cert_not_after).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netprobe_testkit::fuzz::check_cert_not_after(data));
