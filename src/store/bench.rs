//! The floor of benchmark P1 (performance.md): the rows a batch of pushed facts becomes, inserted straight into the
//! same tables — `persons` (`INSERT OR IGNORE`, as ingest does) and `facts` — in one transaction per batch, with the
//! same multi-row statements as `SqliteStore::ingest` but without the version lookup, the decisions and the audit event.
//! Rows are prepared by the caller (person keys, ciphertexts, payload JSON, content hashes), so only the database's
//! own work is timed. Used by `doudi bench` only.

use chrono::Utc;
use sqlx::{QueryBuilder, Sqlite};

use super::sqlite::{ROWS_PER_INSERT, insert_persons};
use super::{NewPerson, PreparedFact, SqliteStore, StoreError, to_micros};
use crate::domain::fact::Payload;

impl SqliteStore {
    /// Insert `facts` (all current, first versions) and `persons` in one write transaction on the writer connection.
    pub async fn bench_insert_rows(&self, facts: &[PreparedFact], persons: &[NewPerson]) -> Result<(), StoreError> {
        let _w = self.writer.lock().await;
        let mut tx = self.write_pool.begin_with("BEGIN IMMEDIATE").await?;
        let now = to_micros(Utc::now());
        insert_persons(&mut tx, persons, now).await?;
        for chunk in facts.chunks(ROWS_PER_INSERT) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO facts (agency, fact_id, source_version, person_key, kind, division_code, valid_from, valid_to, \
                 program, status, residence, benefit_fen, payload, content_hash, recorded_at, superseded_at, is_current) ",
            );
            qb.push_values(chunk, |mut b, f| {
                let (program, status, residence, benefit_fen) = match &f.fact.payload {
                    Payload::Assistance(a) => (
                        a.program.map(|p| p.as_str()),
                        a.status.map(|s| s.as_str()),
                        a.residence.map(|r| r.as_str()),
                        a.monthly_benefit.map(|m| m.to_fen()),
                    ),
                    _ => (None, None, None, None),
                };
                b.push_bind(f.agency.as_str().to_owned())
                    .push_bind(f.fact.fact_id.clone())
                    .push_bind(f.fact.source_version as i64)
                    .push_bind(f.person_key.as_bytes().to_vec())
                    .push_bind(f.fact.payload.kind().as_str())
                    .push_bind(f.fact.division_code.as_str().to_owned())
                    .push_bind(f.fact.valid_from.to_string())
                    .push_bind(f.fact.valid_to.map(|d| d.to_string()))
                    .push_bind(program)
                    .push_bind(status)
                    .push_bind(residence)
                    .push_bind(benefit_fen)
                    .push_bind(f.payload_json.clone())
                    .push_bind(f.content_hash.to_vec())
                    .push_bind(now)
                    .push_bind(None::<i64>)
                    .push_bind(1i64);
            });
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
