//! SQL written once for both backends (issue 16, item 2). Each area here is a macro that expands, inside a backend's
//! area file, to that backend's implementation of one contract trait: the statements are the same text (`$N`
//! placeholders, which sqlx's SQLite driver accepts too), and only the few things that differ come from the backend
//! module the macro is expanded in:
//!
//! | name at the expansion site | SQLite (`store/sqlite/`) | PostgreSQL (`store/postgres/`) |
//! | --- | --- | --- |
//! | `Db` | `sqlx::Sqlite` | `sqlx::Postgres` |
//! | `self.write()` | the writer mutex + `BEGIN IMMEDIATE` | a transaction holding the advisory write lock |
//! | `value::date` / `value::get_date` | `TEXT 'YYYY-MM-DD'` | `DATE` |
//! | `value::instant` / `value::get_instant` | `INTEGER` microseconds | `TIMESTAMPTZ` |
//! | `append_audit` | the audit append of the backend | the same |
//!
//! So a query changes in one place, and the compiler checks it against both drivers. Areas written this way so far:
//! `audit`, `calendar`, `changes`, `coordination`, `keys`. The others follow with the storage layout of issue 16 (one schema, the same column types on both).

#[macro_use]
mod calendar;
#[macro_use]
mod keys;
#[macro_use]
mod changes;
#[macro_use]
mod audit;
#[macro_use]
mod coordination;

pub(crate) use changes::FACT_COLUMNS_F;
