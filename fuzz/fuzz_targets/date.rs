#![no_main]
//! Fuzz target: `doudi::fuzzing::date` (the property is documented there).
libfuzzer_sys::fuzz_target!(|data: &[u8]| doudi::fuzzing::date(data));
