//! The config parser on arbitrary text (properties: netprobe_testkit::fuzz).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netprobe_testkit::fuzz::check_config(data));
