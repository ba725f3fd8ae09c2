#![no_main]
//! Fuzz target: `doudi::fuzzing::fact` (the property is documented there).
libfuzzer_sys::fuzz_target!(|data: &[u8]| doudi::fuzzing::fact(data));
