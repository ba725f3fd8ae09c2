//! doudi (兜底): the gRPC hub through which a city's agencies share the status of the people they
//! assist. See README.md and ARCHITECTURE.md.

pub mod client;
pub mod config;
pub mod domain;
pub mod grpc;
pub mod hub;
pub mod ops;
pub mod report;
pub mod security;
pub mod server;
pub mod store;
pub mod tools;
