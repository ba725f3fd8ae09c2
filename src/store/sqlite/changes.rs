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
/// NEW_VERSION set on its change. `changes` is the plan's list, in the same order as the rows; the count copied must
/// equal its length (else Corrupt, and the transaction is not committed). Returns the last cursor written, `None`
/// when there was nothing to append. Runs on the writer connection's own handle, in the ingest's row work
/// (`direct.rs`).
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
         SELECT ?1 + row_number() OVER (ORDER BY rowid), agency, fact_id, source_version, kind, division_code \
         FROM facts WHERE rowid > ?2 ORDER BY rowid",
        rusqlite::params![head, last_row],
    )?;
    if copied != changes.len() {
        return Err(crate::store::corrupt(
            "change_log",
            format!("{copied} fact rows written for {} changes", changes.len()),
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
