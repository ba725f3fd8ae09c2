//! End-to-end tests: a real hub on port 0, real mutual TLS with certificates made at run time,
//! real gRPC clients. Expected values come from the spec (docs/spec/api.md, docs/spec/security.md) or from the
//! facts each test pushes, never from the program's output.

/// This binary runs the suite on SQLite; `tests/api_pg` runs the same files on PostgreSQL.
pub const ON_POSTGRES: bool = false;

/// `#[apply(e2e!)]` goes above the `#[tokio::test]` of every test in a file that `tests/api_pg` compiles too. Here it
/// leaves the test as it is; there it registers the test with that binary's harness, which runs it on PostgreSQL or
/// reports it skipped when `DOUDI_TEST_DATABASE_URL` is not set.
macro_rules! e2e {
    ($($test:tt)*) => { $($test)* };
}

mod support;

mod access;
mod admin;
mod answers;
mod audit;
mod audit_durability;
mod bench_memory;
mod break_roster;
mod break_snapshot_mmap;
mod calendar;
mod cert_expiry;
mod cli;
mod compression;
mod config_cli;
mod conformance;
mod coordination;
mod countersign;
mod coverage_answers;
mod errors;
mod exchange;
mod explain;
mod findings_page;
mod gateway;
mod hostile;
mod hostile_new_rpcs;
mod keys;
mod lifetime;
mod limits;
mod matching;
mod medical;
mod medical_demo;
mod metrics;
mod quarter_loop;
mod refusals;
mod retention;
mod signed_heads;
mod slow_disk;
mod snapshot;
mod subsidies;
mod subsidies_quarterly;
#[cfg(feature = "otlp")]
mod trace_context;
mod transport;
mod upgrade;
mod watch;
mod write_path;
