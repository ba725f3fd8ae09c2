#![no_main]
//! Fuzz target: `doudi::tools::fuzzing::id_number` (the property is documented there).
libfuzzer_sys::fuzz_target!(|data: &[u8]| doudi::tools::fuzzing::id_number(data));
