//! Tooling that ships in the binary but is not the hub: the synthetic population ([`synth`]), the newcomer's demo
//! ([`demo`]), the performance figures ([`bench`]), the hostile-client suite ([`hostile`]) and the fuzz properties
//! ([`fuzzing`]).

pub mod bench;
pub mod demo;
pub mod fuzzing;
pub mod hostile;
pub mod synth;
