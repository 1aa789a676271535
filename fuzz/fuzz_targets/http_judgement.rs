//! Any HTTP answer through every service's judgement, rejection text and
//! facts (properties: netprobe_testkit::fuzz::check_http_judgement).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netprobe_testkit::fuzz::check_http_judgement(data));
