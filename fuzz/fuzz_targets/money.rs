#![no_main]
//! Fuzz target: `doudi::tools::fuzzing::money` (the property is documented there).
libfuzzer_sys::fuzz_target!(|data: &[u8]| doudi::tools::fuzzing::money(data));
