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

/// [`append_audit_of`] on the writer connection's own handle, inside the ingest's row work (`direct::on_handle`, the
/// same transaction): the batch's event appended to lane 0 after the lane's head, numbered `MAX(seq) + 1`, hashed
/// by the same `chain_event`, and linked to its persons by their `person_id`s in `known` (every key of `a` must be
/// there, or Corrupt and nothing is committed), one prepared insert per person. The same rows as the sqlx version,
/// without its round trips to sqlx's connection thread (five statements a batch, each waited for) and its
/// 1,000-value statements parsed anew for every batch's last chunk: between a batch's changes and its commit the
/// writer was idle 2–3 ms of every ~33 ms group (`perf record` of P1 at 1M facts, 2026-12-07).
pub(super) fn append_ingest_audit(
    db: &rusqlite::Connection,
    a: &crate::store::AuditRecord,
    now: value::Instant,
    known: &crate::store::PersonIds,
) -> Result<(), StoreError> {
    use rusqlite::OptionalExtension as _;
    let head = db
        .prepare("SELECT lane_seq, hash FROM audit_events WHERE lane = 0 ORDER BY lane_seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
        .optional()?;
    let (lane_seq, prev) = match head {
        Some((seq, hash)) => (seq, crate::store::plan::h32(hash)?),
        None => (0, crate::domain::audit::lane_genesis(0)),
    };
    let newest: i64 = db.query_row("SELECT COALESCE(MAX(seq), 0) FROM audit_events", [], |r| r.get(0))?;
    let seq = newest + 1;
    let (_, e) = chain_event(a, seq, 0, lane_seq + 1, prev, now);
    db.prepare(
        "INSERT INTO audit_events (seq, lane, lane_seq, at, agency, division, method, purpose, outcome, \
         person_count, persons_hash, prev_hash, hash, via) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(rusqlite::params![
        e.seq,
        e.lane,
        e.lane_seq,
        e.at,
        a.agency,
        a.division,
        a.method,
        a.purpose,
        a.outcome,
        e.person_count,
        e.persons_hash.as_slice(),
        e.prev.as_slice(),
        e.hash.as_slice(),
        a.via,
    ])?;
    let mut ids: Vec<i64> = Vec::with_capacity(a.person_keys.len());
    for k in &a.person_keys {
        ids.push(*known.get(k).ok_or_else(|| crate::store::corrupt("persons", "an audited person has no person_id"))?);
    }
    ids.sort_unstable();
    ids.dedup();
    let mut link = db.prepare("INSERT OR IGNORE INTO audit_persons (person_id, seq) VALUES (?1, ?2)")?;
    for id in ids {
        link.execute(rusqlite::params![id, seq])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::crypto::PersonKey;
    use crate::store::StoreAdmin as _;

    /// An `audit_events` row, in two parts (tuples compare and print up to 12 fields).
    type EventDump =
        ((i64, i64, i64, i64, String, String, String), (String, String, i64, Vec<u8>, Vec<u8>, Vec<u8>, String));

    /// The ingest's direct append writes the same `audit_events` and `audit_persons` rows as the sqlx one it replaced
    /// (`append_audit_of`), event for event: two fresh databases, the same three events (the second links a person
    /// twice and the persons out of order; the third none), every column compared. The chain's hashes are the
    /// domain's (`domain::audit`); what is checked here is that both paths store them the same way.
    #[tokio::test]
    async fn the_direct_ingest_append_stores_what_the_sqlx_append_stores() {
        let dir = tempfile::tempdir().unwrap();
        let key = |b: u8| PersonKey::from_slice(&[b; 32]).unwrap();
        let mut known = crate::store::PersonIds::default();
        for (b, id) in [(1u8, 11i64), (2, 7), (3, 30)] {
            known.insert(key(b), id);
        }
        let record = |outcome: &str, keys: Vec<PersonKey>| crate::store::AuditRecord {
            agency: "civil_affairs".into(),
            division: "621002".into(),
            via: String::new(),
            method: "/doudi.v1.RecipientExchange/StreamFacts".into(),
            purpose: String::new(),
            outcome: outcome.into(),
            person_keys: keys,
        };
        let records = [
            record("OK stored=2 rejected=0", vec![key(1), key(2)]),
            record("OK stored=3 rejected=1", vec![key(3), key(1), key(3)]),
            record("OK stored=0 rejected=4", vec![]),
        ];
        let mut dumps = Vec::new();
        for direct in [false, true] {
            let store = SqliteStore::open(&format!("sqlite://{}", dir.path().join(format!("{direct}.db")).display()))
                .await
                .unwrap();
            store.migrate().await.unwrap();
            let mut tx = store.write_pool.begin().await.unwrap();
            for (i, r) in records.iter().enumerate() {
                let now = 1_700_000_000_000_000 + i as i64;
                if direct {
                    super::super::direct::on_handle(&mut tx, |db| append_ingest_audit(db, r, now, &known))
                        .await
                        .unwrap();
                } else {
                    append_audit_of(&mut tx, r, now, &known).await.unwrap();
                }
            }
            tx.commit().await.unwrap();
            let events: Vec<EventDump> = sqlx::query(
                "SELECT seq, lane, lane_seq, at, agency, division, method, purpose, outcome, person_count, \
                 persons_hash, prev_hash, hash, via FROM audit_events ORDER BY seq",
            )
            .fetch_all(&store.pool)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                let g = |i| r.try_get::<i64, _>(i).unwrap();
                let t = |i| r.try_get::<String, _>(i).unwrap();
                let b = |i| r.try_get::<Vec<u8>, _>(i).unwrap();
                ((g(0), g(1), g(2), g(3), t(4), t(5), t(6)), (t(7), t(8), g(9), b(10), b(11), b(12), t(13)))
            })
            .collect();
            let links: Vec<(i64, i64)> =
                sqlx::query_as("SELECT person_id, seq FROM audit_persons ORDER BY seq, person_id")
                    .fetch_all(&store.pool)
                    .await
                    .unwrap();
            store.close().await;
            dumps.push((events, links));
        }
        let (events, links) = &dumps[0];
        assert_eq!(events.len(), 3);
        // Event 2 names persons 3, 1, 3: ids 30 and 11, each once; event 3 none.
        assert_eq!(links, &vec![(7, 1), (11, 1), (11, 2), (30, 2)]);
        assert_eq!(events[1].1.4, events[0].1.5, "event 2's prev_hash is event 1's hash");
        assert_eq!(dumps[0], dumps[1]);
    }
}
