//! PostgreSQL: the change log (SQLite twin: `store/sqlite/changes.rs`; docs/change-feed.md).

use async_trait::async_trait;
use sqlx::{PgConnection, Row};

use super::PgStore;
use super::core::{FACT_COLUMNS, stored_fact};
use crate::store::contract::*;
use crate::store::{ChangeFilter, ChangeRow, PreparedFact, StoreError};

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

#[async_trait]
impl ChangeLog for PgStore {
    /// The newest cursor in the log (0 when empty).
    async fn change_log_head(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COALESCE(MAX(cursor), 0)::bigint FROM change_log").fetch_one(&self.pool).await?)
    }
    /// The oldest cursor still in the log (`None` when empty).
    async fn change_log_oldest(&self) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar("SELECT MIN(cursor) FROM change_log").fetch_one(&self.pool).await?)
    }
    /// Wakes when this replica learns of a newer head (its own commits, and every replica's through NOTIFY).
    fn subscribe_changes(&self) -> tokio::sync::watch::Receiver<i64> {
        self.change_head.subscribe()
    }
    /// Changes with `after < cursor <= upto` that match `filter`, in cursor order, at most `limit` (same contract as
    /// `SqliteStore::changes_after`).
    async fn changes_after(
        &self,
        filter: &ChangeFilter,
        after: i64,
        upto: i64,
        limit: usize,
    ) -> Result<Vec<ChangeRow>, StoreError> {
        if filter.kinds.is_empty() || upto <= after {
            return Ok(Vec::new());
        }
        let columns: String = FACT_COLUMNS.split(", ").map(|c| format!("f.{c}")).collect::<Vec<_>>().join(", ");
        // Division prefix as a range (codes are ASCII digits: prefix <= code < prefix || ':'), on the version or on
        // the version it superseded; '' = everywhere.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {columns}, c.cursor, c.prev_version, c.prev_division, p.id_cipher, p.id_masked \
             FROM change_log c \
             JOIN facts f ON f.agency = c.agency AND f.fact_id = c.fact_id AND f.source_version = c.source_version \
             JOIN persons p ON p.person_key = f.person_key \
             WHERE c.cursor > $1 AND c.cursor <= $2 AND c.kind = ANY($3) \
             AND ($4 = '' OR (c.division_code >= $4 AND c.division_code < $4 || ':') \
                  OR (c.prev_division >= $4 AND c.prev_division < $4 || ':')) \
             ORDER BY c.cursor LIMIT $5"
        )))
        .bind(after)
        .bind(upto)
        .bind(&filter.kinds)
        .bind(&filter.division_prefix)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let prev: Option<i64> = r.try_get(11)?;
                Ok(ChangeRow {
                    fact: stored_fact(r)?,
                    cursor: r.try_get(10)?,
                    prev_version: prev.map(|v| v as u64),
                    prev_division: r.try_get(12)?,
                    id_cipher: r.try_get(13)?,
                    id_masked: r.try_get(14)?,
                })
            })
            .collect()
    }
}
