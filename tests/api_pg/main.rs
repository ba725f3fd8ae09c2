//! The end-to-end suite of `tests/api` run again on PostgreSQL: the same test files, each hub on a fresh database of
//! the server `DOUDI_TEST_DATABASE_URL` names (e.g. `postgres://postgres@127.0.0.1:5432/postgres`). Without that
//! variable (at build time: see `build.rs`) this binary holds one ignored test that says the PostgreSQL half was
//! skipped, so `cargo test` passes on a machine without PostgreSQL. `.ci/run` sets it.
//!
//! Left out here: `config_cli` and `bench_memory` (no database behaviour). Only here: `replicas` and `postgres_only`.

/// This binary runs the suite on PostgreSQL.
#[cfg(doudi_pg_tests)]
pub const ON_POSTGRES: bool = true;

#[cfg(doudi_pg_tests)]
#[path = "../api/support/mod.rs"]
mod support;

#[cfg(doudi_pg_tests)]
#[path = "../api/access.rs"]
mod access;
#[cfg(doudi_pg_tests)]
#[path = "../api/audit.rs"]
mod audit;
#[cfg(doudi_pg_tests)]
#[path = "../api/calendar.rs"]
mod calendar;
#[cfg(doudi_pg_tests)]
#[path = "../api/cli.rs"]
mod cli;
#[cfg(doudi_pg_tests)]
#[path = "../api/conformance.rs"]
mod conformance;
#[cfg(doudi_pg_tests)]
#[path = "../api/coordination.rs"]
mod coordination;
#[cfg(doudi_pg_tests)]
#[path = "../api/exchange.rs"]
mod exchange;
#[cfg(doudi_pg_tests)]
#[path = "../api/hostile.rs"]
mod hostile;
#[cfg(doudi_pg_tests)]
#[path = "../api/keys.rs"]
mod keys;
#[cfg(doudi_pg_tests)]
#[path = "../api/lifetime.rs"]
mod lifetime;
#[cfg(doudi_pg_tests)]
#[path = "../api/limits.rs"]
mod limits;
#[cfg(doudi_pg_tests)]
#[path = "../api/medical.rs"]
mod medical;
#[cfg(doudi_pg_tests)]
#[path = "../api/medical_demo.rs"]
mod medical_demo;
#[cfg(doudi_pg_tests)]
#[path = "../api/metrics.rs"]
mod metrics;
#[cfg(doudi_pg_tests)]
#[path = "../api/postgres_only.rs"]
mod postgres_only;
#[cfg(doudi_pg_tests)]
#[path = "../api/replicas.rs"]
mod replicas;
#[cfg(doudi_pg_tests)]
#[path = "../api/snapshot.rs"]
mod snapshot;
#[cfg(doudi_pg_tests)]
#[path = "../api/transport.rs"]
mod transport;
#[cfg(doudi_pg_tests)]
#[path = "../api/upgrade.rs"]
mod upgrade;
#[cfg(doudi_pg_tests)]
#[path = "../api/watch.rs"]
mod watch;

#[cfg(not(doudi_pg_tests))]
#[test]
#[ignore = "PostgreSQL half of the suite skipped: DOUDI_TEST_DATABASE_URL was not set when this was built"]
fn postgres_half_skipped() {}
