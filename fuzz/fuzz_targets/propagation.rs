#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ops_fuzz::propagation(data));
