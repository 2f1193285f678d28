#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| confighub_source_controller::fuzzing::unit(data));
