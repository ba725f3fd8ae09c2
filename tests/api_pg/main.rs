//! The end-to-end suite of `tests/api` run again on PostgreSQL: the same test files, each hub on a fresh database of
//! the server `DOUDI_TEST_DATABASE_URL` names (e.g. `postgres://postgres@127.0.0.1:5432/postgres`). The variable is
//! read when the tests run, never at build time: this binary is the same with or without it, and setting or
//! changing it rebuilds nothing. Without it (or empty) every PostgreSQL test is reported as ignored, with the
//! variable named, so `cargo test` passes on a machine without PostgreSQL. `.ci/run` sets it.
//!
//! The built-in harness decides what is ignored when it compiles, so this binary has its own (`harness = false` in
//! `Cargo.toml`): libtest-mimic, which reads the same arguments (name filters, `--exact`, `--skip`, `--ignored`,
//! `--include-ignored`, `--list`, `--test-threads`) and prints the same lines. Unlike the built-in one it does not
//! capture what a test prints. Each test of the shared files carries `#[apply(e2e!)]` above its `#[tokio::test]`:
//! in `tests/api` that leaves it as it is; here (`e2e!` below) it becomes a function that builds the runtime
//! `#[tokio::test]` would (same flavor and knobs) and is registered with `inventory`. Each test runs on a thread
//! named after it, as with the built-in harness. `harness::every_test_of_the_shared_files_is_registered` checks
//! that no test of those files was left without `#[apply(e2e!)]` (it would run on SQLite only).
//!
//! Left out here: `config_cli`, `bench_memory` and `trace_context` (no database behaviour) and `slow_disk` (slows the
//! hub's own SQLite file's fsyncs). Only here: `replicas`, `audit_lanes` and `postgres_only`.

use std::path::Path;

use libtest_mimic::{Arguments, Completion, Failed, FormatSetting, Trial};

/// This binary runs the suite on PostgreSQL.
pub const ON_POSTGRES: bool = true;

/// One test of the shared files, registered by `e2e!`.
struct Case {
    /// `api_pg::module::function` (`module_path!()` of the test and its name).
    path: &'static str,
    /// `#[ignore]` on the test.
    ignored: bool,
    run: fn(),
}

inventory::collect!(Case);

impl Case {
    /// The test's name as the built-in harness would give it: `module::function`.
    fn name(&self) -> &'static str {
        self.path.strip_prefix(concat!(module_path!(), "::")).unwrap_or(self.path)
    }
}

/// Registers a `#[tokio::test] async fn` (or a `#[test] fn`) with this binary's harness. The attributes are read one
/// by one: `#[tokio::test(..)]` becomes `#[tokio::main(..)]` with the flavor `#[tokio::test]` defaults to
/// (current-thread), `#[ignore]` the ignored flag, and the others (documentation, lints) stay on the function.
macro_rules! e2e {
    (@read $attrs:tt $ignored:tt $kind:tt #[tokio::test] $($rest:tt)*) => {
        e2e!(@read $attrs $ignored [async (flavor = "current_thread")] $($rest)*);
    };
    (@read $attrs:tt $ignored:tt $kind:tt #[tokio::test(flavor = $($arg:tt)*)] $($rest:tt)*) => {
        e2e!(@read $attrs $ignored [async (flavor = $($arg)*)] $($rest)*);
    };
    (@read $attrs:tt $ignored:tt $kind:tt #[tokio::test($($arg:tt)*)] $($rest:tt)*) => {
        e2e!(@read $attrs $ignored [async (flavor = "current_thread", $($arg)*)] $($rest)*);
    };
    (@read $attrs:tt $ignored:tt $kind:tt #[test] $($rest:tt)*) => {
        e2e!(@read $attrs $ignored [sync] $($rest)*);
    };
    (@read $attrs:tt $ignored:tt $kind:tt #[ignore $($reason:tt)*] $($rest:tt)*) => {
        e2e!(@read $attrs [true] $kind $($rest)*);
    };
    (@read [$($attr:tt)*] $ignored:tt $kind:tt #[$meta:meta] $($rest:tt)*) => {
        e2e!(@read [$($attr)* #[$meta]] $ignored $kind $($rest)*);
    };
    (@read [$($attr:tt)*] [$ignored:tt] [async ($($arg:tt)*)] $vis:vis async fn $name:ident() $body:block) => {
        $($attr)*
        #[tokio::main($($arg)*)]
        $vis async fn $name() $body
        e2e!(@register $name $ignored);
    };
    (@read [$($attr:tt)*] [$ignored:tt] [sync] $vis:vis fn $name:ident() $body:block) => {
        $($attr)*
        $vis fn $name() $body
        e2e!(@register $name $ignored);
    };
    (@read $($other:tt)*) => {
        compile_error!("#[apply(e2e!)] goes above the #[tokio::test] of an async fn without arguments (or a #[test] fn)");
    };
    (@register $name:ident $ignored:tt) => {
        inventory::submit! {
            crate::Case { path: concat!(module_path!(), "::", stringify!($name)), ignored: $ignored, run: $name }
        }
    };
    ($($test:tt)*) => {
        e2e!(@read [] [false] [] $($test)*);
    };
}

#[path = "../api/support/mod.rs"]
mod support;

#[path = "../api/access.rs"]
mod access;
#[path = "../api/admin.rs"]
mod admin;
#[path = "../api/answers.rs"]
mod answers;
#[path = "../api/audit.rs"]
mod audit;
#[path = "../api/audit_durability.rs"]
mod audit_durability;
#[path = "../api/audit_lanes.rs"]
mod audit_lanes;
#[path = "../api/break_roster.rs"]
mod break_roster;
#[path = "../api/break_snapshot_mmap.rs"]
mod break_snapshot_mmap;
#[path = "../api/calendar.rs"]
mod calendar;
#[path = "../api/cert_expiry.rs"]
mod cert_expiry;
#[path = "../api/cli.rs"]
mod cli;
#[path = "../api/compression.rs"]
mod compression;
#[path = "../api/conformance.rs"]
mod conformance;
#[path = "../api/coordination.rs"]
mod coordination;
#[path = "../api/countersign.rs"]
mod countersign;
#[path = "../api/coverage_answers.rs"]
mod coverage_answers;
#[path = "../api/errors.rs"]
mod errors;
#[path = "../api/exchange.rs"]
mod exchange;
#[path = "../api/explain.rs"]
mod explain;
#[path = "../api/findings_page.rs"]
mod findings_page;
#[path = "../api/gateway.rs"]
mod gateway;
#[path = "../api/hostile.rs"]
mod hostile;
#[path = "../api/hostile_new_rpcs.rs"]
mod hostile_new_rpcs;
#[path = "../api/keys.rs"]
mod keys;
#[path = "../api/lifetime.rs"]
mod lifetime;
#[path = "../api/limits.rs"]
mod limits;
#[path = "../api/matching.rs"]
mod matching;
#[path = "../api/medical.rs"]
mod medical;
#[path = "../api/medical_demo.rs"]
mod medical_demo;
#[path = "../api/metrics.rs"]
mod metrics;
#[path = "../api/postgres_only.rs"]
mod postgres_only;
#[path = "../api/quarter_loop.rs"]
mod quarter_loop;
#[path = "../api/refusals.rs"]
mod refusals;
#[path = "../api/replicas.rs"]
mod replicas;
#[path = "../api/retention.rs"]
mod retention;
#[path = "../api/signed_heads.rs"]
mod signed_heads;
#[path = "../api/snapshot.rs"]
mod snapshot;
#[path = "../api/subsidies.rs"]
mod subsidies;
#[path = "../api/subsidies_quarterly.rs"]
mod subsidies_quarterly;
#[path = "../api/transport.rs"]
mod transport;
#[path = "../api/upgrade.rs"]
mod upgrade;
#[path = "../api/watch.rs"]
mod watch;
#[path = "../api/write_path.rs"]
mod write_path;

fn main() {
    let mut args = Arguments::from_args();
    if args.test_threads.is_none() {
        // As the built-in harness does.
        args.test_threads = std::env::var("RUST_TEST_THREADS").ok().and_then(|n| n.parse().ok());
    }
    let on_server = support::postgres::server_url_if_set().is_some();
    if !on_server && !args.list && args.format != Some(FormatSetting::Json) {
        println!(
            "\nPostgreSQL half of the end-to-end suite skipped: {} is not set (e.g. \
             postgres://postgres@127.0.0.1:5432/postgres); its tests are reported as ignored.",
            support::postgres::VARIABLE
        );
    }
    let mut trials: Vec<Trial> = inventory::iter::<Case>().map(|case| trial(case, on_server)).collect();
    trials.push(Trial::test("harness::every_test_of_the_shared_files_is_registered", every_test_is_registered));
    trials.sort_by(|a, b| a.name().cmp(b.name()));
    libtest_mimic::run(&args, trials).exit();
}

fn trial(case: &'static Case, on_server: bool) -> Trial {
    Trial::ignorable_test(case.name(), move || {
        if !on_server {
            return Ok(Completion::ignored_with(format!("{} not set", support::postgres::VARIABLE)));
        }
        // On a thread named after the test, as the built-in harness does (panic messages name it); a panic goes on
        // to libtest-mimic, which reports the test failed with its message.
        let thread = std::thread::Builder::new().name(case.name().to_owned()).spawn(case.run)?;
        if let Err(panic) = thread.join() {
            std::panic::resume_unwind(panic);
        }
        Ok(Completion::Completed)
    })
    .with_ignored_flag(case.ignored)
}

/// Every `#[tokio::test]` and `#[test]` in the files this binary compiles (the `#[path]`s above) is registered by
/// `e2e!`; one without `#[apply(e2e!)]` would compile to nothing here and run on SQLite only.
fn every_test_is_registered() -> Result<(), Failed> {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let this = std::fs::read_to_string(tests.join("api_pg/main.rs"))?;
    let mut files = 0;
    let mut wrong = Vec::new();
    for line in this.lines() {
        let Some(file) = line.strip_prefix("#[path = \"../api/").and_then(|l| l.strip_suffix(".rs\"]")) else {
            continue;
        };
        if file.contains('/') {
            continue; // support/mod.rs
        }
        files += 1;
        let source = std::fs::read_to_string(tests.join(format!("api/{file}.rs")))?;
        let written = source
            .lines()
            .map(str::trim_start)
            .filter(|l| l.starts_with("#[tokio::test") || l.starts_with("#[test]"))
            .count();
        let prefix = format!("{file}::");
        let registered = inventory::iter::<Case>().filter(|c| c.name().starts_with(&prefix)).count();
        if written != registered {
            wrong.push(format!("tests/api/{file}.rs has {written} tests, {registered} registered"));
        }
    }
    if files == 0 {
        return Err("no `#[path = \"../api/…\"]` module found in tests/api_pg/main.rs".into());
    }
    if !wrong.is_empty() {
        return Err(format!("{} (is #[apply(e2e!)] missing above a test?)", wrong.join("; ")).into());
    }
    Ok(())
}
