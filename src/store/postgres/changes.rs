//! PostgreSQL: the change log (docs/change-feed.md): the append (here, one UNNEST statement); the reads are shared
//! with SQLite (`store/sql/changes.rs`).

use sqlx::{PgConnection, Row};

use super::core::stored_fact;
use crate::store::{ChangeFilter, ChangeRow, PgStore, PreparedFact, StoreError};

/// Append one change per written fact version (in order), numbered after the newest cursor, in one UNNEST
/// statement. Must run in a write transaction ([`PgStore::begin_write`]): the lock makes commit order = cursor order
/// across replicas. Returns the last cursor written, `None` when there was nothing to append.
pub(super) async fn append_changes(
    conn: &mut PgConnection,
    changes: &[(&PreparedFact, Option<(u64, String)>)],
) -> Result<Option<i64>, StoreError> {
    if changes.is_empty() {
        return Ok(None);
    }
    let head: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(cursor), 0)::bigint FROM change_log").fetch_one(&mut *conn).await?;
    let cursors: Vec<i64> = (1..=changes.len() as i64).map(|i| head + i).collect();
    let agency: Vec<String> = changes.iter().map(|(f, _)| f.agency.as_str().to_owned()).collect();
    let fact_id: Vec<String> = changes.iter().map(|(f, _)| f.fact.fact_id.clone()).collect();
    let version: Vec<i64> = changes.iter().map(|(f, _)| f.fact.source_version as i64).collect();
    let kind: Vec<String> = changes.iter().map(|(f, _)| f.fact.payload.kind().as_str().to_owned()).collect();
    let division: Vec<String> = changes.iter().map(|(f, _)| f.fact.division_code.as_str().to_owned()).collect();
    let prev_version: Vec<Option<i64>> = changes.iter().map(|(_, p)| p.as_ref().map(|(v, _)| *v as i64)).collect();
    let prev_division: Vec<Option<String>> = changes.iter().map(|(_, p)| p.as_ref().map(|(_, d)| d.clone())).collect();
    sqlx::query(
        "INSERT INTO change_log (cursor, agency, fact_id, source_version, kind, division_code, prev_version, \
         prev_division) SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], \
         $6::text[], $7::bigint[], $8::text[])",
    )
    .bind(&cursors)
    .bind(agency)
    .bind(fact_id)
    .bind(version)
    .bind(kind)
    .bind(division)
    .bind(prev_version)
    .bind(prev_division)
    .execute(&mut *conn)
    .await?;
    Ok(cursors.last().copied())
}

/// The driver the shared SQL runs on.
type Db = sqlx::Postgres;

change_log!(PgStore);
