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
//! | `value::flag` / `value::get_flag`, `value::TRUE` | `INTEGER` 0 or 1, `1` | `BOOLEAN`, `true` |
//! | `value::money` / `value::get_money` (and `get_opt_fen`, `get_text_money`) | `INTEGER` fen | `NUMERIC(18,2)` yuan |
//! | `value::json_field(col, key)` | `json_extract(col, '$.key')` | `col::jsonb ->> 'key'` |
//! | `value::sum_fen(col)` / `value::get_sum_fen` | two columns (high and low 32 bits, `split_sum`) | one `NUMERIC` sum |
//! | `value::BYTE_ORDER` (after a text in `ORDER BY`) | nothing (BINARY is byte order) | `COLLATE "C"` |
//! | `value::push_in(qb, values)`, `value::IN_LIST` | ` IN ($1, $2, …)`, 500 values a statement | ` = ANY($1)`, one array |
//! | `value::BATCH` | rows per multi-row statement: 500 | 1,000 |
//! | `value::Instant`, `value::micros` | `i64` | `DateTime<Utc>` |
//! | `insert_persons` | a prepared statement per person on the writer's own handle (`sqlite/direct.rs`) | UNNEST |
//! | `link_persons` (of `append_audit`) | multi-row statements | UNNEST |
//!
//! So a query changes in one place, and the compiler checks it against both drivers. Areas written this way:
//! `answers`, `coverage_answers`, `audit` (with the append, `append_audit`), `calendar`, `changes`, `coordination`, `countersign`, `facts` (`FactReads`),
//! `keys`, `medical`, `retention`, `snapshot`, `subsidy`, and the person filter of the lists (`push_person_filter`). Each backend keeps only the
//! statements that differ in substance (named in each macro's docs): the ingest write path (`FactStore`), bulk inserts
//! and updates (multi-row VALUES or a statement a row on SQLite, UNNEST on PostgreSQL), the snapshot's person pass and
//! statuses hash (one row a person joined by SQLite), and opening, migrating and the benchmark floors.

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
#[macro_use]
mod facts;
#[macro_use]
mod medical;
#[macro_use]
mod answers;
#[macro_use]
mod snapshot;
#[macro_use]
pub(crate) mod retention;
#[macro_use]
mod admin;
#[macro_use]
mod countersign;
#[macro_use]
mod coverage_answers;
#[macro_use]
mod subsidy;

pub(crate) use changes::{COMPARISON_COLUMNS_F, FACT_COLUMNS_F};

/// The payload of a fact read by `FactReads::comparison_facts_of_persons`, made from its stored columns: `assistance`
/// with `program` and `status` only (the codes of `domain::fact`, as `insert_fact_rows` wrote them), `student` with no
/// field. Errors: [`crate::store::StoreError::Corrupt`] for another kind or an unknown code.
pub(crate) fn comparison_payload(
    kind: crate::domain::fact::PayloadKind,
    program: Option<&str>,
    status: Option<&str>,
) -> Result<crate::domain::fact::Payload, crate::store::StoreError> {
    use crate::domain::fact::{Assistance, AssistanceStatus, Payload, PayloadKind, Program, Student};
    use crate::store::corrupt;
    match kind {
        PayloadKind::Assistance => Ok(Payload::Assistance(Assistance {
            program: program
                .map(|p| Program::parse(p).ok_or_else(|| corrupt("facts", format!("unknown program {p}"))))
                .transpose()?,
            status: status
                .map(|s| AssistanceStatus::parse(s).ok_or_else(|| corrupt("facts", format!("unknown status {s}"))))
                .transpose()?,
            ..Assistance::default()
        })),
        PayloadKind::Student => Ok(Payload::Student(Student::default())),
        other => Err(corrupt("facts", format!("a comparison reads no {} facts", other.as_str()))),
    }
}

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

/// Person keys as the bound values of a key column (`BLOB` / `BYTEA`).
pub(crate) fn key_bytes(keys: &[crate::security::crypto::PersonKey]) -> Vec<Vec<u8>> {
    keys.iter().map(|k| k.as_bytes().to_vec()).collect()
}

/// Column `i` of `r`, a person key (32 bytes, else `table` is corrupt).
pub(crate) fn person_key<R>(
    r: &R,
    i: usize,
    table: &'static str,
) -> Result<crate::security::crypto::PersonKey, crate::store::StoreError>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    Vec<u8>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let k: Vec<u8> = r.try_get(i)?;
    crate::security::crypto::PersonKey::from_slice(&k).ok_or_else(|| crate::store::corrupt(table, "person_key length"))
}

/// A row of the ingest's look-up of current versions, selected as `agency, fact_id, source_version, content_hash,
/// division_code`: the record's key and its current version (a content hash not 32 bytes long: `facts` is corrupt).
pub(crate) fn current_version<R>(r: &R) -> Result<((String, String), crate::store::Current), crate::store::StoreError>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Vec<u8>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let hash: Vec<u8> = r.try_get(3)?;
    let content_hash: [u8; 32] = hash.try_into().map_err(|_| crate::store::corrupt("facts", "content_hash length"))?;
    let source_version: i64 = r.try_get(2)?;
    let version = crate::domain::versioning::CurrentVersion { source_version: source_version as u64, content_hash };
    Ok(((r.try_get(0)?, r.try_get(1)?), crate::store::Current { version, division: r.try_get(4)? }))
}

/// `(applied, known)`: the newest migration applied to the database behind `pool` (0 before the first) and the newest of
/// the backend's `set`. `has_table` is the backend's query for whether sqlx's `_sqlx_migrations` table exists, a
/// `BIGINT` 0 or 1.
pub(crate) async fn migration_versions<DB>(
    pool: &sqlx::Pool<DB>,
    has_table: &'static str,
    set: &[(i64, &str, &str)],
) -> Result<(i64, i64), crate::store::StoreError>
where
    DB: sqlx::Database,
    for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
    (i64,): for<'r> sqlx::FromRow<'r, DB::Row>,
    (Option<i64>,): for<'r> sqlx::FromRow<'r, DB::Row>,
    <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
{
    let known = set.last().map(|m| m.0).unwrap_or(0);
    let has: i64 = sqlx::query_scalar(has_table).fetch_one(pool).await?;
    if has == 0 {
        return Ok((0, known));
    }
    let applied: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success").fetch_one(pool).await?;
    Ok((applied.unwrap_or(0), known))
}
