//! The floor of benchmark P1 (performance.md): the rows a batch of pushed facts becomes, inserted straight into the
//! same tables — `persons` (`INSERT OR IGNORE`, as ingest does) and `facts` — in one transaction per batch, with the
//! same multi-row statements as `SqliteStore::ingest` (`insert_persons`, `insert_fact_rows`) but without the version
//! lookup, the decisions and the audit event.
//! Rows are prepared by the caller (person keys, ciphertexts, payload JSON, content hashes), so only the database's
//! own work is timed. Used by `doudi bench` only.

use async_trait::async_trait;
use chrono::Utc;

use super::{insert_fact_rows, insert_persons};
use crate::store::contract::*;
use crate::store::{NewPerson, PreparedFact, SqliteStore, StoreError, to_micros};

#[async_trait]
impl BenchFloor for SqliteStore {
    /// Insert `facts` (all current, first versions) and `persons` in one write transaction on the writer connection.
    async fn bench_insert_rows(&self, facts: &[PreparedFact], persons: &[NewPerson]) -> Result<(), StoreError> {
        let _w = self.writer.lock().await;
        let mut tx = self.write_pool.begin_with("BEGIN IMMEDIATE").await?;
        let now = to_micros(Utc::now());
        insert_persons(&mut tx, persons, now).await?;
        let rows: Vec<(bool, &PreparedFact)> = facts.iter().map(|f| (true, f)).collect();
        insert_fact_rows(&mut tx, &rows, now).await?;
        tx.commit().await?;
        Ok(())
    }
}
