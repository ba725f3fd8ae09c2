//! doudi (兜底): the gRPC hub through which a city's agencies share the status of the people they
//! assist. See README.md and ARCHITECTURE.md.

pub use doudi_domain as domain;
pub use doudi_report as report;

pub mod client;
pub mod config;
pub mod grpc;
pub mod hub;
pub mod ops;
pub mod security;
pub mod server;
pub mod store;
pub mod tools;
