//! SQLite: appending to, reading and verifying the audit log (docs/spec/security.md), written once for both backends in
//! `store/sql/audit.rs`; the link of an event to its persons is SQLite's own (multi-row statements).

use sqlx::Row as _;
use sqlx::pool::PoolConnection;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::{ROWS_PER_INSERT, value};
use crate::store::rows::*;
use crate::store::{SqliteStore, StoreError};

/// The driver the shared SQL runs on.
type Db = sqlx::Sqlite;

audit_log!(SqliteStore);

audit_append!();

impl SqliteStore {
    /// Two pooled connections for the chain check, and the newest `seq`, which bounds both reads (`store/sql/audit.rs`).
    pub(super) async fn audit_reading(
        &self,
    ) -> Result<(PoolConnection<Sqlite>, PoolConnection<Sqlite>, i64), StoreError> {
        let bound: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM audit_events").fetch_one(&self.pool).await?;
        Ok((self.pool.acquire().await?, self.pool.acquire().await?, bound))
    }

    /// Keep a signed head (`AuditLog::keep_signed_head`): one row, under the writer.
    pub(super) async fn insert_signed_head(
        &self,
        signed_at: i64,
        heads: String,
        signature: Vec<u8>,
        signer_cert: String,
    ) -> Result<(), StoreError> {
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO audit_signed_heads (signed_at, heads, signature, signer_cert) VALUES ($1, $2, $3, $4)",
        )
        .bind(signed_at)
        .bind(heads)
        .bind(signature)
        .bind(signer_cert)
        .execute(&mut *w.tx)
        .await?;
        w.tx.commit().await?;
        Ok(())
    }

    /// A group of reads' audit events, in one write transaction under the writer: SQLite has one lane, lane 0.
    pub(super) async fn append_read_audits(&self, events: &[crate::store::AuditRecord]) -> Result<(), StoreError> {
        let mut w = self.write().await?;
        // Taken under the writer, so event times follow the chain's order.
        let now = crate::store::from_micros(crate::store::to_micros(chrono::Utc::now()));
        append_audits(&mut w.tx, 0, events, value::instant(now)).await?;
        w.tx.commit().await?;
        Ok(())
    }
}

/// The next `n` log numbers, after the newest (one writer appends at a time).
async fn next_seqs(conn: &mut SqliteConnection, n: usize) -> Result<Vec<i64>, StoreError> {
    let max: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM audit_events").fetch_one(&mut *conn).await?;
    Ok((1..=n as i64).map(|i| max + i).collect())
}

/// Link each event to its persons (`audit_persons`): `links` holds `(person key, seq)` pairs, [`ROWS_PER_INSERT`] a
/// statement; a person key not met yet gets a `persons` row without an ID number first.
async fn link_persons(conn: &mut SqliteConnection, links: &[([u8; 32], i64)], now: i64) -> Result<(), StoreError> {
    for chunk in links.chunks(ROWS_PER_INSERT) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("INSERT OR IGNORE INTO persons (person_key, created_at) ");
        qb.push_values(chunk, |mut b, (k, _)| {
            b.push_bind(k.to_vec()).push_bind(now);
        });
        qb.build().persistent(chunk.len() == ROWS_PER_INSERT).execute(&mut *conn).await?;
        // `persons (person_key)` is searched once per pair (the planner loops over the VALUES, then the index).
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT OR IGNORE INTO audit_persons (person_id, seq) SELECT p.person_id, v.column2 FROM (",
        );
        qb.push_values(chunk, |mut b, (k, seq)| {
            b.push_bind(k.to_vec()).push_bind(*seq);
        });
        qb.push(") AS v JOIN persons p ON p.person_key = v.column1");
        qb.build().persistent(chunk.len() == ROWS_PER_INSERT).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Link event `seq` to persons whose `person_id`s are known (sorted, distinct), [`ROWS_PER_INSERT`] a statement.
async fn link_person_ids(conn: &mut SqliteConnection, ids: &[i64], seq: i64) -> Result<(), StoreError> {
    for chunk in ids.chunks(ROWS_PER_INSERT) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("INSERT OR IGNORE INTO audit_persons (person_id, seq) ");
        qb.push_values(chunk, |mut b, id| {
            b.push_bind(*id).push_bind(seq);
        });
        qb.build().persistent(chunk.len() == ROWS_PER_INSERT).execute(&mut *conn).await?;
    }
    Ok(())
}
