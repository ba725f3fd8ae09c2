//! End-to-end tests: a real hub on port 0, real mutual TLS with certificates made at run time,
//! real gRPC clients. Expected values come from the spec (api.md, security.md) or from the
//! facts each test pushes, never from the program's output.

/// This binary runs the suite on SQLite; `tests/api_pg` runs the same files on PostgreSQL.
pub const ON_POSTGRES: bool = false;

mod support;

mod access;
mod audit;
mod bench_memory;
mod calendar;
mod cli;
mod config_cli;
mod conformance;
mod coordination;
mod exchange;
mod hostile;
mod keys;
mod lifetime;
mod limits;
mod medical;
mod medical_demo;
mod metrics;
mod snapshot;
mod transport;
mod upgrade;
mod watch;
