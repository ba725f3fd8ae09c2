//! SQLite: the change log (`change_log`, migration 0007; docs/change-feed.md): appended by `ingest` in its
//! transaction (here), read by watchers in cursor order (`store/sql/changes.rs`, shared with PostgreSQL).

use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::{ROWS_PER_INSERT, stored_fact};
use crate::store::rows::*;
use crate::store::{PreparedFact, SqliteStore, StoreError};

/// The newest cursor of the change log (0 when empty). Read inside the write transaction under the writer lock: the
/// changes appended after it are numbered from it, which makes commit order = cursor order (migration 0007).
pub(super) async fn change_head(conn: &mut SqliteConnection) -> Result<i64, StoreError> {
    Ok(sqlx::query("SELECT COALESCE(MAX(cursor), 0) FROM change_log").fetch_one(&mut *conn).await?.try_get(0)?)
}

/// The multi-row `INSERT INTO change_log` statements of one change per written fact version (in order), numbered
/// after `head` ([`change_head`]), [`ROWS_PER_INSERT`] rows each, built one by one as they are taken.
pub(super) fn change_statements<'c>(
    changes: &'c [(&'c PreparedFact, Option<(u64, String)>)],
    head: i64,
) -> impl Iterator<Item = QueryBuilder<Sqlite>> + Send + 'c {
    changes.chunks(ROWS_PER_INSERT).enumerate().map(move |(i, chunk)| {
        let mut next = head + (i * ROWS_PER_INSERT) as i64;
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
        qb
    })
}

impl SqliteStore {
    /// Publish a newly committed head (never moves backwards).
    pub(super) fn publish_change_head(&self, head: i64) {
        crate::store::raise_head(&self.change_head, head);
    }
}

/// The driver the shared SQL runs on.
type Db = sqlx::Sqlite;

change_log!(SqliteStore);
