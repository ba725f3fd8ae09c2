//! The floor of benchmark P1 (docs/spec/performance.md): the rows a batch of pushed facts becomes, inserted straight
//! into the same tables — `persons` (look up, insert the unknown ones with the next `person_id`s, as ingest does) and
//! `facts` — in one transaction per batch, with the same statements as `SqliteStore::ingest`
//! (`insert_persons`, `insert_fact_rows`: prepared statements on the writer's own handle, `direct.rs`) but without the version lookup, the decisions and the audit event.
//! Rows are prepared by the caller (person keys, ciphertexts, payload JSON, content hashes), so only the database's
//! own work is timed. Used by `doudi bench` only.

use async_trait::async_trait;
use chrono::Utc;

use super::{ROWS_PER_INSERT, insert_fact_rows, insert_persons};
use crate::store::contract::*;
use crate::store::{NewPerson, PreparedFact, SqliteStore, StoreError, to_micros};

#[async_trait]
impl BenchFloor for SqliteStore {
    /// Insert `facts` (all current, first versions) and `persons` in one write transaction on the writer connection.
    async fn bench_insert_rows(&self, facts: &[PreparedFact], persons: &[NewPerson]) -> Result<(), StoreError> {
        let _w = self.writer.lock(crate::store::writer::Priority::Bulk).await;
        let mut tx = self.write_pool.begin_with("BEGIN IMMEDIATE").await?;
        let now = to_micros(Utc::now());
        let ids = insert_persons(&mut tx, persons, now).await?;
        let rows: Vec<(bool, &PreparedFact)> = facts.iter().map(|f| (true, f)).collect();
        insert_fact_rows(&mut tx, &rows, &ids, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Multi-row `INSERT` of `(rowid, body)` (the rowid assigned in arrival order: an append to the B-tree's right
    /// edge), [`ROWS_PER_INSERT`] rows a statement, one transaction.
    async fn bench_append_blobs(&self, blobs: &[Vec<u8>]) -> Result<(), StoreError> {
        let _w = self.writer.lock(crate::store::writer::Priority::Bulk).await;
        let mut tx = self.write_pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("CREATE TABLE IF NOT EXISTS bench_blobs (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
            .execute(&mut *tx)
            .await?;
        for chunk in blobs.chunks(ROWS_PER_INSERT) {
            let mut qb: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new("INSERT INTO bench_blobs (body) ");
            qb.push_values(chunk, |mut row, b| {
                row.push_bind(b.as_slice());
            });
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
