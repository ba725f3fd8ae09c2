//! Reading and verifying the audit log (security.md): events by person, agency and period; the hash chain
//! recomputed from the stored rows (`domain::audit` holds the canonical form).

use async_trait::async_trait;
use futures::StreamExt;
use sqlx::{QueryBuilder, Row, Sqlite};

use crate::store::contract::*;
use crate::store::plan::{ChainEvent, check_chain, h32};
use crate::store::rows::*;
use crate::store::{SqliteStore, StoreError, from_micros};

#[async_trait]
impl AuditLog for SqliteStore {
    /// Events matching `filter` with `seq < before` (all if `None`), newest first, at most `limit`.
    async fn list_audit_events(
        &self,
        filter: &AuditFilter,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AuditEventRow>, StoreError> {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT e.seq, e.at, e.agency, e.division, e.method, e.purpose, e.outcome, e.person_count, e.hash \
             FROM audit_events e WHERE 1 = 1",
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
            qb.push(" AND e.at >= ").push_bind(f);
        }
        if let Some(t) = filter.to {
            qb.push(" AND e.at < ").push_bind(t);
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
                    at: from_micros(r.try_get(1)?),
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
    /// Recompute the chain from the stored rows ([`check_chain`]).
    async fn verify_audit_chain(&self) -> Result<ChainCheck, StoreError> {
        let mut events_conn = self.pool.acquire().await?;
        let mut persons_conn = self.pool.acquire().await?;
        let events = sqlx::query(
            "SELECT seq, at, agency, division, method, purpose, outcome, person_count, persons_hash, prev_hash, hash \
             FROM audit_events ORDER BY seq",
        )
        .fetch(&mut *events_conn)
        .map(|r| -> Result<ChainEvent, StoreError> {
            let r = r?;
            Ok(ChainEvent {
                seq: r.try_get(0)?,
                at_micros: r.try_get(1)?,
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
