//! SQLite: persons and their facts read back, reference data, counts, the data key check and the audit event of a
//! read, written once for both backends in `store/sql/facts.rs` (the ingest write path is the backend's own).

use sqlx::Row as _;

use super::{direct, stored_fact, value};
use crate::store::{SqliteStore, StoreError};

/// The driver the shared SQL runs on.
type Db = sqlx::Sqlite;

fact_reads!(SqliteStore);

/// [`crate::store::FactReads::comparison_facts_of_persons`] on SQLite: in one read transaction on a reader
/// connection, one prepared statement run once per person on the connection's own handle (`direct::comparison_facts`),
/// not sqlx statements of 500 keys: sqlx copies every column value of every row and hands it across a channel, which
/// a profile of P10 showed as a fifth of the readers' time (malloc and free).
async fn comparison_facts(
    store: &SqliteStore,
    keys: &[crate::security::crypto::PersonKey],
    as_of: chrono::NaiveDate,
) -> Result<Vec<crate::store::StoredFact>, StoreError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = store.pool.begin().await?;
    let out = direct::on_handle(&mut tx, |db| {
        // Mapped for this read only (`READER_MMAP_BYTES`): pages read in place instead of copied again after every
        // commit; unmapped after, since mapped readers made GetRecipient (P2) slower.
        db.execute_batch(&format!("PRAGMA mmap_size = {}", super::READER_MMAP_BYTES))?;
        let read = direct::comparison_facts(db, keys, &value::date(as_of));
        db.execute_batch("PRAGMA mmap_size = 0")?;
        read
    })
    .await?;
    tx.commit().await?;
    Ok(out)
}
