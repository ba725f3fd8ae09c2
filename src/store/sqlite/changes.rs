//! The change log (`change_log`, migration 0007; docs/change-feed.md): appended by `ingest` in its transaction,
//! read by watchers in cursor order.

use async_trait::async_trait;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::{ROWS_PER_INSERT, stored_fact};
use crate::store::contract::*;
use crate::store::rows::*;
use crate::store::{PreparedFact, SqliteStore, StoreError};

/// Append one change per written fact version (in order), numbered after the newest cursor. Must run inside the
/// write transaction under the writer lock: that is what makes commit order = cursor order (migration 0007).
/// Returns the last cursor written, `None` when there was nothing to append.
pub(super) async fn append_changes(
    conn: &mut SqliteConnection,
    changes: &[(&PreparedFact, Option<(u64, String)>)],
) -> Result<Option<i64>, StoreError> {
    if changes.is_empty() {
        return Ok(None);
    }
    let head: i64 =
        sqlx::query("SELECT COALESCE(MAX(cursor), 0) FROM change_log").fetch_one(&mut *conn).await?.try_get(0)?;
    let mut next = head;
    for chunk in changes.chunks(ROWS_PER_INSERT) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO change_log (cursor, agency, fact_id, source_version, kind, division_code, prev_version, \
             prev_division) ",
        );
        qb.push_values(chunk, |mut b, (f, prev)| {
            next += 1;
            b.push_bind(next)
                .push_bind(f.agency.as_str().to_owned())
                .push_bind(f.fact.fact_id.clone())
                .push_bind(f.fact.source_version as i64)
                .push_bind(f.fact.payload.kind().as_str())
                .push_bind(f.fact.division_code.as_str().to_owned())
                .push_bind(prev.as_ref().map(|(v, _)| *v as i64))
                .push_bind(prev.as_ref().map(|(_, d)| d.clone()));
        });
        qb.build().execute(&mut *conn).await?;
    }
    Ok(Some(next))
}

impl SqliteStore {
    /// Publish a newly committed head (never moves backwards).
    pub(super) fn publish_change_head(&self, head: i64) {
        crate::store::raise_head(&self.change_head, head);
    }
}

#[async_trait]
impl ChangeLog for SqliteStore {
    /// The newest committed cursor (0 when the log is empty).
    async fn change_log_head(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COALESCE(MAX(cursor), 0) FROM change_log").fetch_one(&self.pool).await?.try_get(0)?)
    }
    /// The oldest cursor still in the log, `None` when it is empty. (Nothing prunes the log yet; a retention job
    /// would make this rise, and older cursors answer OUT_OF_RANGE.)
    async fn change_log_oldest(&self) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query("SELECT MIN(cursor) FROM change_log").fetch_one(&self.pool).await?.try_get(0)?)
    }
    /// A receiver of the newest committed cursor: it changes after every commit that appended changes.
    fn subscribe_changes(&self) -> tokio::sync::watch::Receiver<i64> {
        self.change_head.subscribe()
    }
    /// Changes with `after < cursor <= upto` that match `filter`, in cursor order, at most `limit`.
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
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT f.agency, f.fact_id, f.source_version, f.person_key, f.kind, f.division_code, f.valid_from, \
             f.valid_to, f.payload, f.recorded_at, c.cursor, c.prev_version, c.prev_division, p.id_cipher, p.id_masked \
             FROM change_log c \
             JOIN facts f ON f.agency = c.agency AND f.fact_id = c.fact_id AND f.source_version = c.source_version \
             JOIN persons p ON p.person_key = f.person_key \
             WHERE c.cursor > ",
        );
        qb.push_bind(after).push(" AND c.cursor <= ").push_bind(upto).push(" AND c.kind IN (");
        let mut sep = qb.separated(", ");
        for k in &filter.kinds {
            sep.push_bind(k.clone());
        }
        qb.push(")");
        if !filter.division_prefix.is_empty() {
            // Range scans as in the person lists: codes are ASCII digits, so prefix ≤ code < prefix + ':'.
            let (lo, hi) = (filter.division_prefix.clone(), format!("{}:", filter.division_prefix));
            qb.push(" AND ((c.division_code >= ")
                .push_bind(lo.clone())
                .push(" AND c.division_code < ")
                .push_bind(hi.clone())
                .push(") OR (c.prev_division >= ")
                .push_bind(lo)
                .push(" AND c.prev_division < ")
                .push_bind(hi)
                .push("))");
        }
        qb.push(" ORDER BY c.cursor LIMIT ").push_bind(limit as i64);
        let rows = qb.build().fetch_all(&self.pool).await?;
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
