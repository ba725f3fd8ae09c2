//! SQLite: quarterly snapshots (migration 0006; docs/spec/coordination.md, docs/snapshot-format.md), written once for
//! both backends in `store/sql/snapshot.rs`; the person pass and the statuses hash (each person's rows joined into one
//! by SQLite) and the stores of the coverage rows and sections are SQLite's own.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::{ROWS_PER_INSERT, corrupt, value};
use crate::domain::snapshot::{CoverageRow, StatusRow, body_hash, rows_hash};
use crate::domain::summary::{CountyCodeCount, LateCorrection, MedicalSection, Tiers};
use crate::store::{SqliteStore, StoreError, to_micros};

use crate::store::plan::*;
use crate::store::rows::*;

/// The status rows are copied in primary-key order: appends to the WITHOUT ROWID table's B-tree.
const STATUS_COPY_ORDER: &str = " ORDER BY p.person_key, f.agency, f.fact_id";

/// The facts' monthly benefit column: INTEGER fen.
const BENEFIT: &str = "benefit_fen";

/// The driver the shared SQL runs on.
type Db = Sqlite;

snapshot_store!(SqliteStore);

/// Map the database file ([`super::READER_MMAP_BYTES`]) for the reads that follow on `conn`, and mark the connection
/// to be closed when it is dropped instead of going back to the pool: mapped readers made GetRecipient (P2) slower,
/// and a read dropped half-way (a client's deadline) must not leave a mapped reader behind either. A verification
/// looks up about a million fact versions in person-key order, at random in the file; mapped, SQLite reads them in
/// place instead of through a `read` call per page (the demo's VerifySnapshot: 7.4 s → 4.1 s in the `sqlite3`
/// shell). The pool opens a new reader when it needs one.
async fn map_this_read(conn: &mut sqlx::pool::PoolConnection<Sqlite>) -> Result<(), StoreError> {
    conn.close_on_drop();
    let bytes = super::READER_MMAP_BYTES;
    sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA mmap_size = {bytes}"))).execute(&mut **conn).await?;
    Ok(())
}

/// The statuses section's hash, from the stored rows (canonical order). Each person's canonical lines
/// (`StatusRow::canonical_line`, docs/snapshot-format.md) are made and joined by SQLite, one row per person: sqlx's
/// SQLite driver costs far more per row than the SQL does. Integers print in decimal and `hex` in upper case (hence
/// `lower`), as Rust's formatting does; `agency, fact_id` order is byte order (BINARY collation).
async fn statuses_hash(conn: &mut SqliteConnection, quarter: &str) -> Result<[u8; 32], StoreError> {
    let mut rows = sqlx::query(
        "SELECT string_agg(lower(hex(person_key)) || '|' || agency || '|' || fact_id || '|' || source_version || '|' \
         || kind || '|' || county_code || '|' || lower(hex(content_hash)) || char(10), '' ORDER BY agency, fact_id) \
         FROM snapshot_statuses WHERE quarter = ? GROUP BY person_key ORDER BY person_key",
    )
    .bind(quarter)
    .fetch(&mut *conn);
    let mut h = sha2::Sha256::new();
    use sha2::Digest;
    while let Some(r) = rows.try_next().await? {
        let lines: &str = r.try_get(0)?;
        h.update(lines.as_bytes());
    }
    Ok(h.finalize().into())
}

/// One pass over the versions of the statuses, person by person in `person_id` order: aggregates and coverage. The
/// current versions are read along `facts_current_person` (the table in about its own order, persons by rowid); the
/// versions superseded after the cutoff, few, by `facts_superseded`.
async fn person_pass(
    conn: &mut SqliteConnection,
    input: &SnapshotInput<'_>,
    cutoff: DateTime<Utc>,
    as_of: NaiveDate,
) -> Result<Tally, StoreError> {
    let (cutoff, as_of) = (to_micros(cutoff), value::date(as_of));
    let later = {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PASS_COLUMNS} FROM facts f INDEXED BY facts_superseded JOIN persons p ON p.person_id = f.person_id \
             WHERE f.is_current = 0 AND f.superseded_at > ? AND f.recorded_at <= ? AND f.valid_from <= ? \
             AND (f.valid_to IS NULL OR f.valid_to > ?)"
        )))
        .bind(cutoff)
        .bind(cutoff)
        .bind(&as_of)
        .bind(&as_of)
        .fetch_all(&mut *conn)
        .await?;
        rows.iter().map(pass_row).collect::<Result<Vec<_>, _>>()?
    };
    let mut pass = PersonOrderPass::new(input, later);
    {
        // One row per person (sqlx's SQLite driver costs far more per row than the SQL does): fields joined by
        // U+001F, rows by U+001E. Neither can occur in a field: identifiers refuse control characters and JSON
        // escapes them.
        let mut rows = sqlx::query(
            "SELECT f.person_id, p.person_key, p.id_cipher, string_agg(f.agency || char(31) || f.fact_id || \
             char(31) || f.source_version || char(31) || f.kind || char(31) || substr(f.division_code, 1, 6) || \
             char(31) || lower(hex(f.content_hash)) || char(31) || f.payload, char(30)) \
             FROM facts f INDEXED BY facts_current_person JOIN persons p ON p.person_id = f.person_id \
             WHERE f.is_current = 1 AND f.recorded_at <= ? AND f.valid_from <= ? \
             AND (f.valid_to IS NULL OR f.valid_to > ?) GROUP BY f.person_id ORDER BY f.person_id",
        )
        .bind(cutoff)
        .bind(&as_of)
        .bind(&as_of)
        .fetch(&mut *conn);
        while let Some(r) = rows.try_next().await? {
            let person_id: i64 = r.try_get(0)?;
            let key = hash32("persons", r.try_get(1)?)?;
            let cipher: Vec<u8> = r.try_get(2)?;
            let joined: &str = r.try_get(3)?;
            for row in joined.split('\u{1e}') {
                let f: Vec<&str> = row.splitn(7, '\u{1f}').collect();
                let [agency, fact_id, version, kind, county_code, content, payload] = f[..] else {
                    return Err(corrupt("facts", "status row of unexpected shape"));
                };
                let content: [u8; 32] = hex::decode(content)
                    .ok()
                    .and_then(|v| v.try_into().ok())
                    .ok_or_else(|| corrupt("facts", "content hash"))?;
                pass.push(PassRow {
                    person_id,
                    status: StatusRow {
                        person_key: key,
                        agency: agency.to_owned(),
                        fact_id: fact_id.to_owned(),
                        source_version: version.parse().map_err(|_| corrupt("facts", "version"))?,
                        kind: kind.to_owned(),
                        county_code: county_code.to_owned(),
                        content_hash: content,
                    },
                    cipher: cipher.clone(),
                    payload: payload.to_owned(),
                })?;
            }
        }
    }
    pass.finish()
}

/// Store the coverage rows (multi-row statements) and the JSON sections.
async fn store_rows(
    conn: &mut SqliteConnection,
    q: &str,
    coverage: &[CoverageRow],
    sections: Vec<(&'static str, String)>,
) -> Result<(), StoreError> {
    for chunk in coverage.chunks(ROWS_PER_INSERT) {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT INTO snapshot_coverage (quarter, code, person_key, agency_to_act, county_code) ");
        qb.push_values(chunk, |mut b, c| {
            b.push_bind(q)
                .push_bind(c.code.clone())
                .push_bind(c.person_key.to_vec())
                .push_bind(c.agency_to_act.clone())
                .push_bind(c.county_code.clone());
        });
        qb.build().execute(&mut *conn).await?;
    }
    for (name, body) in sections {
        sqlx::query("INSERT INTO snapshot_sections (quarter, section, body) VALUES (?, ?, ?)")
            .bind(q)
            .bind(name)
            .bind(body)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
