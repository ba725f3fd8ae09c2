//! SQLite: the change log (`change_log`, migration 0007; docs/change-feed.md): appended by `ingest` in its
//! transaction (here), read by watchers in cursor order (`store/sql/changes.rs`, shared with PostgreSQL).

use sqlx::Row;

use super::stored_fact;
use crate::store::rows::*;
use crate::store::{PreparedFact, SqliteStore, StoreError};

/// The newest cursor of the change log (0 when empty). Read inside the write transaction under the writer lock: the
/// changes appended after it are numbered from it, which makes commit order = cursor order (migration 0007).
pub(super) fn change_head(db: &rusqlite::Connection) -> Result<i64, StoreError> {
    Ok(db.query_row("SELECT COALESCE(MAX(cursor), 0) FROM change_log", [], |r| r.get(0))?)
}

/// Append one change per written fact version, numbered after `head` ([`change_head`]) in the order the versions were
/// written: the fact rows the same transaction has just inserted after row `last_row` (`facts.rowid`, assigned in
/// insertion order under the writer lock), copied in one statement, then the superseded version and division of each
/// NEW_VERSION set on its change. `changes` is the plan's list, in the same order as the rows.
///
/// A row's cursor is `head + (rowid - last_row)`: SQLite gives a row inserted without a rowid the largest rowid so far
/// plus one (<https://sqlite.org/autoinc.html>), so this transaction's rows are `last_row + 1 ..= last_row + n` and the
/// cursors `head + 1 ..= head + n`, without holes. (A window function, `row_number() OVER (ORDER BY rowid)`, gave the
/// same numbers through a sorter: 8 % of the hub's samples in P1 at 1M facts.) Both are checked: the count copied must
/// equal the plan's and the last row must be `last_row + n`, else Corrupt and the transaction is not committed.
/// Returns the last cursor written, `None` when there was nothing to append. Runs on the writer connection's own
/// handle, in the ingest's row work (`direct.rs`).
pub(super) fn append_changes_of_rows(
    db: &rusqlite::Connection,
    changes: &[(&PreparedFact, Option<(u64, String)>)],
    head: i64,
    last_row: i64,
) -> Result<Option<i64>, StoreError> {
    if changes.is_empty() {
        return Ok(None);
    }
    let copied = db.execute(
        "INSERT INTO change_log (cursor, agency, fact_id, source_version, kind, division_code) \
         SELECT ?1 + (rowid - ?2), agency, fact_id, source_version, kind, division_code \
         FROM facts WHERE rowid > ?2 ORDER BY rowid",
        rusqlite::params![head, last_row],
    )?;
    let last: i64 = db.query_row("SELECT COALESCE(MAX(rowid), 0) FROM facts", [], |r| r.get(0))?;
    if copied != changes.len() || last != last_row + changes.len() as i64 {
        return Err(crate::store::corrupt(
            "change_log",
            format!("{copied} fact rows written (rows {} to {last}) for {} changes", last_row + 1, changes.len()),
        ));
    }
    let mut prev = db.prepare("UPDATE change_log SET prev_version = ?1, prev_division = ?2 WHERE cursor = ?3")?;
    for (i, (_, p)) in changes.iter().enumerate() {
        if let Some((version, division)) = p {
            prev.execute(rusqlite::params![*version as i64, division.as_str(), head + i as i64 + 1])?;
        }
    }
    Ok(Some(head + changes.len() as i64))
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
