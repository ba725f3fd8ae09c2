//! PostgreSQL: persons and their facts read back, reference data, counts, the data key check and the audit event of a
//! read, written once for both backends in `store/sql/facts.rs` (the ingest write path is the backend's own).

use sqlx::Row as _;

use super::core::{comparison_fact, stored_fact};
use super::{PgStore, value};
use crate::store::StoreError;

/// The driver the shared SQL runs on.
type Db = sqlx::Postgres;

fact_reads!(PgStore);

/// [`crate::store::FactReads::comparison_facts_of_persons`] on PostgreSQL: one statement (`= ANY` of the keys), in a
/// read transaction of its own.
async fn comparison_facts(
    store: &PgStore,
    keys: &[crate::security::crypto::PersonKey],
    as_of: chrono::NaiveDate,
) -> Result<Vec<crate::store::StoredFact>, StoreError> {
    let mut out = Vec::new();
    if keys.is_empty() {
        return Ok(out);
    }
    let mut tx = store.begin(super::BEGIN).await?;
    for chunk in keys.chunks(value::IN_LIST) {
        let mut qb = persons_facts_query(crate::store::sql::COMPARISON_COLUMNS_F, chunk, as_of, COMPARISON_KINDS);
        for r in qb.build().persistent(value::cache_in_list(chunk.len())).fetch_all(&mut *tx).await? {
            out.push(comparison_fact(&r)?);
        }
    }
    tx.commit().await?;
    Ok(out)
}

/// The kinds a comparison reads, as a condition of `persons_facts_query`.
const COMPARISON_KINDS: &str = " AND f.kind IN ('assistance', 'student')";
