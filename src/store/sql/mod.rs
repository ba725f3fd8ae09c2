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
//! `audit`, `calendar`, `changes`, `coordination`, `keys`, and the person filter of the lists (`push_person_filter`). Still twice: core ingest and reads, medical, snapshots.

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

/// ` FROM facts WHERE …` of a person list or count (`list_persons`, `count_persons`): current facts in force on
/// `as_of` (the backend's date value), within `f.division_prefix` and, with `f.program`, ACTIVE enrolments in it.
/// A prefix of a county or finer also names the county (`substr(division_code, 1, 6)`), so the county and program
/// indexes of migration 0010 serve the range in `person_id` order; a shorter one (the city, the province) walks
/// `person_id`.
pub(crate) fn push_person_filter<DB, D>(qb: &mut sqlx::QueryBuilder<DB>, f: &crate::store::PersonFilter, as_of: D)
where
    DB: sqlx::Database,
    D: for<'t> sqlx::Encode<'t, DB> + sqlx::Type<DB> + Clone,
    String: for<'t> sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    qb.push(" FROM facts WHERE is_current = ")
        .push(if DB::NAME == "SQLite" { "1" } else { "true" })
        .push(" AND valid_from <= ")
        .push_bind(as_of.clone())
        .push(" AND (valid_to IS NULL OR valid_to > ")
        .push_bind(as_of)
        .push(")");
    let prefix = &f.division_prefix;
    if prefix.len() >= 6 {
        qb.push(" AND substr(division_code, 1, 6) = ").push_bind(prefix[..6].to_owned());
    }
    if !prefix.is_empty() {
        // Range scan instead of LIKE: codes are ASCII digits, so prefix ≤ code < prefix + ':'.
        qb.push(" AND division_code >= ")
            .push_bind(prefix.clone())
            .push(" AND division_code < ")
            .push_bind(format!("{prefix}:"));
    }
    if let Some(p) = &f.program {
        qb.push(" AND program = ").push_bind(p.clone()).push(" AND status = 'ACTIVE'");
    }
}
