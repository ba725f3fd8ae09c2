//! PostgreSQL: reading and verifying the audit log (SQLite twin: `store/sqlite/audit.rs`; the backend-neutral
//! chain check [`check_chain`] is in `store/plan/audit.rs`). `at` is TIMESTAMPTZ here; the chain hashes it as
//! microseconds (`to_micros`), as
//! `append_audit` did.

use async_trait::async_trait;
use futures::StreamExt;
use sqlx::{Postgres, QueryBuilder, Row};

use super::PgStore;
use crate::store::contract::*;
use crate::store::plan::{ChainEvent, check_chain, h32};
use crate::store::{AuditEventRow, AuditFilter, ChainCheck, StoreError, from_micros, to_micros};

#[async_trait]
impl AuditLog for PgStore {
    /// Events matching `filter` with `seq < before` (all if `None`), newest first, at most `limit`.
    async fn list_audit_events(
        &self,
        filter: &AuditFilter,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AuditEventRow>, StoreError> {
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
            "SELECT e.seq, e.at, e.agency, e.division, e.method, e.purpose, e.outcome, e.person_count, e.hash \
             FROM audit_events e WHERE true",
        );
        if let Some(p) = &filter.person {
            qb.push(" AND e.seq IN (SELECT seq FROM audit_persons WHERE person_key = ")
                .push_bind(p.as_bytes().to_vec())
                .push(")");
        }
        if let Some(a) = &filter.agency {
            qb.push(" AND e.agency = ").push_bind(a.clone());
        }
        if let Some(f) = filter.from {
            qb.push(" AND e.at >= ").push_bind(from_micros(f));
        }
        if let Some(t) = filter.to {
            qb.push(" AND e.at < ").push_bind(from_micros(t));
        }
        if let Some(b) = before {
            qb.push(" AND e.seq < ").push_bind(b);
        }
        qb.push(" ORDER BY e.seq DESC LIMIT ").push_bind(limit as i64);
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEventRow {
                    seq: r.try_get(0)?,
                    at: r.try_get(1)?,
                    agency: r.try_get(2)?,
                    division: r.try_get(3)?,
                    method: r.try_get(4)?,
                    purpose: r.try_get(5)?,
                    outcome: r.try_get(6)?,
                    person_count: r.try_get(7)?,
                    hash: h32(r.try_get(8)?)?,
                })
            })
            .collect()
    }
    /// Recompute the chain from the stored rows (same check as on SQLite: [`check_chain`]). Events and persons are
    /// streamed on two connections that share one exported snapshot, so a writer on another replica committing
    /// between the two reads cannot show persons of an event the events read did not see.
    async fn verify_audit_chain(&self) -> Result<ChainCheck, StoreError> {
        const BEGIN: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
        let mut events_conn = self.pool.begin_with(BEGIN).await?;
        let snapshot: String = sqlx::query_scalar("SELECT pg_export_snapshot()").fetch_one(&mut *events_conn).await?;
        let mut persons_conn = self.pool.begin_with(BEGIN).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("SET TRANSACTION SNAPSHOT '{}'", snapshot.replace('\'', ""))))
            .execute(&mut *persons_conn)
            .await?;
        let events = sqlx::query(
            "SELECT seq, at, agency, division, method, purpose, outcome, person_count, persons_hash, prev_hash, hash \
             FROM audit_events ORDER BY seq",
        )
        .fetch(&mut *events_conn)
        .map(|r| -> Result<ChainEvent, StoreError> {
            let r = r?;
            Ok(ChainEvent {
                seq: r.try_get(0)?,
                at_micros: to_micros(r.try_get(1)?),
                agency: r.try_get(2)?,
                division: r.try_get(3)?,
                method: r.try_get(4)?,
                purpose: r.try_get(5)?,
                outcome: r.try_get(6)?,
                person_count: r.try_get(7)?,
                persons_hash: r.try_get(8)?,
                prev_hash: r.try_get(9)?,
                hash: r.try_get(10)?,
            })
        });
        let persons = sqlx::query("SELECT seq, person_key FROM audit_persons ORDER BY seq, person_key")
            .fetch(&mut *persons_conn)
            .map(|r| -> Result<(i64, Vec<u8>), StoreError> {
                let r = r?;
                Ok((r.try_get(0)?, r.try_get(1)?))
            });
        check_chain(events, persons).await
    }
}
