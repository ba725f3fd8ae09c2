//! Storage: the only module that speaks SQL. The domain never sees sqlx types; rows are turned
//! into domain values here.
//!
//! Two backends behind one interface, [`Store`] (`dispatch.rs`), chosen from the database URL:
//! - `sqlite/`: SQLite, the embedded default (`mod.rs`: pools, migrations `migrations/sqlite/`, ingest, reads, the
//!   audit append; one file per area beside it: `audit`, `calendar`, `changes`, `coordination`, `keys`, `medical`,
//!   `snapshot`, `bench`);
//! - `postgres/`: PostgreSQL, one file per area likewise (`migrations/postgres/`).
//!
//! Beside them, shared by both and importing neither: `rows` (the row types of the interface), `error`
//! ([`StoreError`]), and `plan/` (the backend-neutral logic: the ingest plan, the audit chain check, the medical
//! recheck plan, snapshot sections and hashes). A backend loads rows, calls the plan, and writes its result.

mod contract;
#[macro_use]
mod sql;
mod dispatch;
mod error;
pub(crate) mod group;
mod plan;
mod postgres;
mod rows;
mod sqlite;
pub mod writer;

pub use contract::*;
pub use dispatch::Store;
pub use error::StoreError;
pub(crate) use error::{corrupt, day_kind};
pub(crate) use plan::{Current, IngestPlan, plan_ingest};
pub use postgres::PgStore;
pub use rows::*;
pub use sqlite::{SqliteStore, in_memory_refusal, sqlite_file};

use chrono::{DateTime, Utc};

/// A single amount's fen as the INTEGER (SQLite) columns hold it. Single amounts come from the wire grammar (at most
/// 999,999,999,999.99 yuan, and the plausibility maxima of `domain::money_limits` below that) or from these columns, so
/// they always fit an `i64`; only sums can go past it, and sums are never stored in a fen column.
pub(crate) fn column_fen(m: crate::domain::money::Money) -> i64 {
    i64::try_from(m.to_fen()).expect("a single amount fits i64 fen (wire grammar)")
}

/// The migrator of a backend's embedded migration set (`(version, description, SQL)`), up to `version`. Each
/// migration runs in its own transaction, so a failed one leaves the database as the one before left it.
pub(crate) fn migrator(set: &'static [(i64, &'static str, &'static str)], version: i64) -> sqlx::migrate::Migrator {
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    let migrations = set
        .iter()
        .filter(|(v, _, _)| *v <= version)
        .map(|(v, d, sql)| {
            Migration::new(
                *v,
                std::borrow::Cow::Borrowed(*d),
                MigrationType::Simple,
                sqlx::SqlSafeStr::into_sql_str(sqlx::AssertSqlSafe(*sql)),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

/// Microseconds since the Unix epoch.
pub fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// Raise the published head to `head` (never lower it), waking watchers only when it moved.
pub(crate) fn raise_head(sender: &tokio::sync::watch::Sender<i64>, head: i64) {
    sender.send_if_modified(|h| {
        if head > *h {
            *h = head;
            true
        } else {
            false
        }
    });
}
