//! doudi (兜底): the gRPC hub through which a city's agencies share the status of the people they
//! assist. See README.md and ARCHITECTURE.md.

pub mod audit_head;
pub mod bench;
pub mod cert_watch;
pub mod certs;
pub mod cli;
pub mod client;
pub mod config;
pub mod countersign;
pub mod crypto;
pub mod demo;
pub mod domain;
pub mod fuzzing;
pub mod grpc;
pub mod hostile;
pub mod hub;
pub mod lifetime;
pub mod memory;
pub mod metrics;
pub mod ops;
pub mod refusals;
pub mod report;
pub mod rotation;
pub mod server;
pub mod store;
pub mod synth;
pub mod telemetry;
pub mod tls;
