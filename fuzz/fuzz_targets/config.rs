//! The config parser on arbitrary text (properties: netprobe::fuzzing).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netprobe::fuzzing::check_config(data));
