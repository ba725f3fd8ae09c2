//! Reading and verifying the audit log (security.md): events by person, agency and period; the hash chain
//! recomputed from the stored rows (`domain::audit` holds the canonical form).

use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt, TryStreamExt};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::sqlite::corrupt;
use super::{SqliteStore, StoreError, from_micros};
use crate::crypto::PersonKey;
use crate::domain::audit::{EventContent, GENESIS, event_hash, persons_hash};

/// One stored audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEventRow {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub agency: String,
    pub division: String,
    pub method: String,
    pub purpose: String,
    pub outcome: String,
    pub person_count: i64,
    pub hash: [u8; 32],
}

/// Filter of `ListAccessEvents`.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub person: Option<PersonKey>,
    pub agency: Option<String>,
    /// Microseconds since the Unix epoch, inclusive.
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// The result of recomputing the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainCheck {
    pub checked: i64,
    /// The first broken event and why.
    pub first_broken: Option<(i64, String)>,
    /// Hash of the last stored event (GENESIS when empty).
    pub head: [u8; 32],
}

pub(super) fn h32(v: Vec<u8>) -> Result<[u8; 32], StoreError> {
    v.try_into().map_err(|_| corrupt("audit_events", "hash length"))
}

impl SqliteStore {
    /// Events matching `filter` with `seq < before` (all if `None`), newest first, at most `limit`.
    pub async fn list_audit_events(
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
    pub async fn verify_audit_chain(&self) -> Result<ChainCheck, StoreError> {
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

/// One stored audit event as the chain check reads it (`at` in microseconds since the Unix epoch, as hashed).
pub(super) struct ChainEvent {
    pub seq: i64,
    pub at_micros: i64,
    pub agency: String,
    pub division: String,
    pub method: String,
    pub purpose: String,
    pub outcome: String,
    pub person_count: i64,
    pub persons_hash: Vec<u8>,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// Recompute the chain from the stored rows, whatever the backend: `events` in `seq` order, `persons` as
/// `(seq, person_key)` sorted by `seq` then key. Each event's hash from the previous stored hash and its canonical
/// content; its persons hash and count from `audit_persons`; `seq` without gaps from 1. Stops at the first broken
/// event. (Deleting the newest events leaves a valid shorter chain: compare `head` with a copy kept elsewhere to
/// detect that.)
pub(super) async fn check_chain<E, P>(mut events: E, mut persons: P) -> Result<ChainCheck, StoreError>
where
    E: Stream<Item = Result<ChainEvent, StoreError>> + Unpin,
    P: Stream<Item = Result<(i64, Vec<u8>), StoreError>> + Unpin,
{
    let mut pending: Option<(i64, [u8; 32])> = None;
    let mut expected_seq = 1i64;
    let mut prev = GENESIS;
    let mut checked = 0i64;
    let broken = |seq: i64, why: String, checked: i64, head: [u8; 32]| {
        Ok(ChainCheck { checked, first_broken: Some((seq, why)), head })
    };
    while let Some(e) = events.try_next().await? {
        let seq = e.seq;
        checked += 1;
        // The persons of this event (the persons stream is sorted by seq).
        let mut keys: Vec<[u8; 32]> = Vec::new();
        loop {
            if let Some((s, k)) = pending {
                if s < seq {
                    return broken(
                        s,
                        format!("audit_persons rows of event {s}, which is not in the chain"),
                        checked,
                        prev,
                    );
                }
                if s > seq {
                    break;
                }
                keys.push(k);
                pending = None;
            }
            match persons.try_next().await? {
                Some((s, k)) => pending = Some((s, h32(k)?)),
                None => break,
            }
        }
        if seq != expected_seq {
            return broken(
                expected_seq,
                format!("event {expected_seq} is missing (the next stored is {seq})"),
                checked,
                prev,
            );
        }
        let prev_hash = h32(e.prev_hash)?;
        if prev_hash != prev {
            return broken(seq, "link broken: prev_hash is not the hash of the event before".into(), checked, prev);
        }
        let stored_persons = h32(e.persons_hash)?;
        let content = EventContent {
            seq,
            at_micros: e.at_micros,
            agency: &e.agency,
            division: &e.division,
            method: &e.method,
            purpose: &e.purpose,
            outcome: &e.outcome,
            person_count: e.person_count,
            persons_hash: stored_persons,
        };
        let hash = h32(e.hash)?;
        if event_hash(&prev_hash, &content) != hash {
            return broken(seq, "content altered: the event no longer hashes to its stored hash".into(), checked, prev);
        }
        if persons_hash(&mut keys) != stored_persons || keys.len() as i64 != e.person_count {
            return broken(
                seq,
                "persons altered: the persons recorded for the event were changed".into(),
                checked,
                prev,
            );
        }
        prev = hash;
        expected_seq += 1;
    }
    if let Some((s, _)) = pending {
        return broken(s, format!("audit_persons rows of event {s}, which is not in the chain"), checked, prev);
    }
    Ok(ChainCheck { checked, first_broken: None, head: prev })
}
