//! Any bytes through the Service Tags parser and its prefix index
//! (properties: netprobe_testkit::fuzz::check_service_tags).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netprobe_testkit::fuzz::check_service_tags(data));
