//! PostgreSQL: quarterly snapshots, written once for both backends in `store/sql/snapshot.rs`; the person pass, the
//! statuses hash (rows streamed in canonical order) and the stores of the coverage rows and sections (UNNEST) are
//! PostgreSQL's own. Every ORDER BY on text that feeds a hash or an output uses `COLLATE "C"` (byte order, as
//! SQLite's BINARY), so the same data hashes to the same snapshot on both backends whatever the database's collation.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt;
use sqlx::{PgConnection, Postgres, Row};

use super::{PgStore, value};
use crate::domain::snapshot::{CoverageRow, StatusRow, body_hash, rows_hash};
use crate::domain::summary::{CountyCodeCount, LateCorrection, MedicalSection, Tiers};
use crate::store::corrupt;
use crate::store::plan::{
    PassRow, PersonOrderPass, PreviousCheck, SettlementTotals, Tally, agency_stats, aggregates, all_codes,
    altered_fact, header_differences, json_sections, medical_section_of, recompute, seal,
};
use crate::store::{CreateOutcome, SnapshotHeader, SnapshotInput, StoreError, Verification};

/// The status rows are copied as the planner likes (no order asked).
const STATUS_COPY_ORDER: &str = "";

/// The facts' monthly benefit column: NUMERIC yuan.
const BENEFIT: &str = "benefit";

/// The driver the shared SQL runs on.
type Db = Postgres;

snapshot_store!(PgStore);

/// Nothing to do on PostgreSQL (its shared buffers serve every reader): the SQLite backend maps its file here.
async fn map_this_read(_conn: &mut sqlx::pool::PoolConnection<sqlx::Postgres>) -> Result<(), StoreError> {
    Ok(())
}

/// The statuses section's hash, from the stored rows (canonical order).
async fn statuses_hash(conn: &mut PgConnection, quarter: &str) -> Result<[u8; 32], StoreError> {
    use sha2::Digest;
    let mut rows = sqlx::query(
        "SELECT person_key, agency, fact_id, source_version, kind, county_code, content_hash FROM snapshot_statuses \
         WHERE quarter = $1 ORDER BY person_key, agency COLLATE \"C\", fact_id COLLATE \"C\"",
    )
    .bind(quarter)
    .fetch(&mut *conn);
    let mut h = sha2::Sha256::new();
    while let Some(r) = rows.try_next().await? {
        h.update(status_at(&r, 0, "snapshot_statuses", "snapshot_statuses")?.canonical_line().as_bytes());
    }
    Ok(h.finalize().into())
}

/// One pass over the versions of the statuses, person by person in `person_id` order: aggregates and coverage (the
/// current versions along `facts_current_person`, the few superseded after the cutoff by `facts_superseded`).
async fn person_pass(
    conn: &mut PgConnection,
    input: &SnapshotInput<'_>,
    cutoff: DateTime<Utc>,
    as_of: NaiveDate,
) -> Result<Tally, StoreError> {
    let later = {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PASS_COLUMNS} FROM facts f JOIN persons p ON p.person_id = f.person_id \
             WHERE NOT f.is_current AND f.superseded_at > $1 AND f.recorded_at <= $1 AND f.valid_from <= $2 \
             AND (f.valid_to IS NULL OR f.valid_to > $2)"
        )))
        .bind(cutoff)
        .bind(as_of)
        .fetch_all(&mut *conn)
        .await?;
        rows.iter().map(pass_row).collect::<Result<Vec<_>, _>>()?
    };
    let mut pass = PersonOrderPass::new(input, later);
    {
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PASS_COLUMNS} FROM facts f JOIN persons p ON p.person_id = f.person_id \
             WHERE f.is_current AND f.recorded_at <= $1 AND f.valid_from <= $2 \
             AND (f.valid_to IS NULL OR f.valid_to > $2) ORDER BY f.person_id"
        )))
        .bind(cutoff)
        .bind(as_of)
        .fetch(&mut *conn);
        while let Some(r) = rows.try_next().await? {
            pass.push(pass_row(&r)?)?;
        }
    }
    pass.finish()
}

/// Store the coverage rows and the JSON sections, one UNNEST statement each.
async fn store_rows(
    conn: &mut PgConnection,
    q: &str,
    cov: &[CoverageRow],
    sections: Vec<(&'static str, String)>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO snapshot_coverage (quarter, code, person_key, agency_to_act, county_code) \
         SELECT $1, * FROM UNNEST($2::text[], $3::bytea[], $4::text[], $5::text[])",
    )
    .bind(q)
    .bind(cov.iter().map(|c| c.code.clone()).collect::<Vec<_>>())
    .bind(cov.iter().map(|c| c.person_key.to_vec()).collect::<Vec<_>>())
    .bind(cov.iter().map(|c| c.agency_to_act.clone()).collect::<Vec<_>>())
    .bind(cov.iter().map(|c| c.county_code.clone()).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    let (names, bodies): (Vec<&str>, Vec<String>) = sections.into_iter().unzip();
    sqlx::query(
        "INSERT INTO snapshot_sections (quarter, section, body) SELECT $1, * FROM UNNEST($2::text[], $3::text[])",
    )
    .bind(q)
    .bind(names)
    .bind(bodies)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
