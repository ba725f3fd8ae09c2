//! [`AuditLog`](crate::store::AuditLog) for both backends: reading the audit log by person, agency and period, and
//! verifying the hash chain from the stored rows ([`check_chain`](crate::store::plan::check_chain); `domain::audit`
//! holds the canonical form). Expanded by `audit_log!(Store)` in each backend's `audit.rs`.
//!
//! Verification reads the events and their persons on two connections that see the same committed state
//! (`self.audit_reading()`): on SQLite both reads are bounded by the newest `seq` read first (one writer appends in
//! `seq` order, so every event up to it is committed and visible to both, and an event committed meanwhile is in
//! neither); on PostgreSQL, where lanes commit in any order, the two connections share one exported snapshot.

macro_rules! audit_log {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl crate::store::AuditLog for $store {
            async fn list_audit_events(
                &self,
                filter: &AuditFilter,
                before: Option<i64>,
                limit: usize,
            ) -> Result<Vec<AuditEventRow>, StoreError> {
                let mut qb: sqlx::QueryBuilder<Db> = sqlx::QueryBuilder::new(
                    "SELECT e.seq, e.at, e.agency, e.division, e.method, e.purpose, e.outcome, e.person_count, \
                     e.hash, e.lane, e.lane_seq, e.via FROM audit_events e WHERE 1 = 1",
                );
                if let Some(p) = &filter.person {
                    qb.push(
                        " AND e.seq IN (SELECT a.seq FROM persons p JOIN audit_persons a ON a.person_id = p.person_id \
                         WHERE p.person_key = ",
                    )
                    .push_bind(p.as_bytes().to_vec())
                    .push(")");
                }
                if let Some(a) = &filter.agency {
                    qb.push(" AND e.agency = ").push_bind(a.clone());
                }
                if let Some(f) = filter.from {
                    qb.push(" AND e.at >= ").push_bind(value::instant(crate::store::from_micros(f)));
                }
                if let Some(t) = filter.to {
                    qb.push(" AND e.at < ").push_bind(value::instant(crate::store::from_micros(t)));
                }
                if let Some(o) = filter.outcome {
                    qb.push(" AND ").push(o.sql());
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
                            at: value::get_instant(r, 1)?,
                            agency: r.try_get(2)?,
                            division: r.try_get(3)?,
                            method: r.try_get(4)?,
                            purpose: r.try_get(5)?,
                            outcome: r.try_get(6)?,
                            person_count: r.try_get(7)?,
                            hash: crate::store::plan::h32(r.try_get(8)?)?,
                            lane: r.try_get(9)?,
                            lane_seq: r.try_get(10)?,
                            via: r.try_get(11)?,
                        })
                    })
                    .collect()
            }

            async fn verify_audit_chain(&self) -> Result<ChainCheck, StoreError> {
                use futures::StreamExt as _;
                let (mut events_conn, mut persons_conn, bound) = self.audit_reading().await?;
                // The newest checkpoint of every lane that has one, found from the events alone: `audit_lanes` is
                // in no chain, so a row deleted or renumbered there must not hide a checkpoint from the check.
                let checkpoints = sqlx::query(
                    "SELECT e.lane, e.lane_seq, e.purpose FROM audit_events e JOIN (SELECT x.lane, \
                     MAX(x.lane_seq) AS newest FROM audit_events x WHERE x.method = 'audit.checkpoint' \
                     AND x.seq <= $1 GROUP BY x.lane) n ON e.lane = n.lane AND e.lane_seq = n.newest ORDER BY e.lane",
                )
                .bind(bound)
                .fetch_all(&mut *events_conn)
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                .collect::<Result<Vec<(i32, i64, String)>, StoreError>>()?;
                // The newest cutoff of the audit purges the log records (docs/retention.md): a purged event must be
                // older. These events are in the chain, so a forged one is found by the pass.
                let purged_before = sqlx::query_scalar::<_, String>(
                    "SELECT purpose FROM audit_events WHERE method = $1 AND agency = 'operator' AND seq <= $2",
                )
                .bind(crate::domain::retention::PURGE_METHOD)
                .bind(bound)
                .fetch_all(&mut *events_conn)
                .await?
                .iter()
                .filter_map(|p| crate::domain::retention::purge_cutoff(p))
                .filter(|(kind, _)| *kind == crate::domain::retention::RecordKind::AuditPersons)
                .map(|(_, at)| crate::store::to_micros(at))
                .max();
                let events = sqlx::query(
                    "SELECT seq, at, agency, division, method, purpose, outcome, person_count, persons_hash, \
                     prev_hash, hash, lane, lane_seq, via, purged_at IS NOT NULL FROM audit_events WHERE seq <= $1 ORDER BY seq",
                )
                .bind(bound)
                .fetch(&mut *events_conn)
                .map(|r| -> Result<crate::store::plan::ChainEvent, StoreError> {
                    let r = r?;
                    Ok(crate::store::plan::ChainEvent {
                        seq: r.try_get(0)?,
                        at_micros: crate::store::to_micros(value::get_instant(&r, 1)?),
                        agency: r.try_get(2)?,
                        division: r.try_get(3)?,
                        method: r.try_get(4)?,
                        purpose: r.try_get(5)?,
                        outcome: r.try_get(6)?,
                        person_count: r.try_get(7)?,
                        persons_hash: r.try_get(8)?,
                        prev_hash: r.try_get(9)?,
                        hash: r.try_get(10)?,
                        lane: r.try_get(11)?,
                        lane_seq: r.try_get(12)?,
                        via: r.try_get(13)?,
                        purged: r.try_get(14)?,
                    })
                });
                let persons = sqlx::query(
                    "SELECT a.seq, p.person_key FROM audit_persons a JOIN persons p ON p.person_id = a.person_id \
                     WHERE a.seq <= $1 ORDER BY a.seq, p.person_key",
                )
                .bind(bound)
                .fetch(&mut *persons_conn)
                .map(|r| -> Result<(i64, Vec<u8>), StoreError> {
                    let r = r?;
                    Ok((r.try_get(0)?, r.try_get(1)?))
                });
                crate::store::plan::check_chain(events, persons, checkpoints, purged_before).await
            }

            async fn audit_lane_heads(&self) -> Result<Vec<crate::domain::audit::LaneHead>, StoreError> {
                // The lanes present, by a loose index scan of `(lane, lane_seq)` (one probe per lane), then each
                // lane's newest event: one statement, so one committed state on both backends.
                let rows = sqlx::query(
                    "WITH RECURSIVE l(lane) AS (SELECT MIN(lane) FROM audit_events UNION ALL SELECT (SELECT \
                     MIN(x.lane) FROM audit_events x WHERE x.lane > l.lane) FROM l WHERE l.lane IS NOT NULL) \
                     SELECT e.lane, e.lane_seq, e.hash FROM l JOIN audit_events e ON e.lane = l.lane AND e.lane_seq = \
                     (SELECT MAX(y.lane_seq) FROM audit_events y WHERE y.lane = l.lane) ORDER BY e.lane",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(crate::domain::audit::LaneHead {
                            lane: r.try_get(0)?,
                            seq: r.try_get(1)?,
                            hash: crate::store::plan::h32(r.try_get(2)?)?,
                        })
                    })
                    .collect()
            }

            async fn audit_event_hash(&self, lane: i32, lane_seq: i64) -> Result<Option<[u8; 32]>, StoreError> {
                let hash: Option<Vec<u8>> =
                    sqlx::query_scalar("SELECT hash FROM audit_events WHERE lane = $1 AND lane_seq = $2")
                        .bind(lane)
                        .bind(lane_seq)
                        .fetch_optional(&self.pool)
                        .await?;
                hash.map(crate::store::plan::h32).transpose()
            }

            async fn keep_signed_head(&self, head: &crate::security::audit_head::SignedHead) -> Result<(), StoreError> {
                self.insert_signed_head(
                    value::instant(crate::store::from_micros(head.signed_at_micros)),
                    crate::domain::audit::format_heads(&head.heads),
                    head.signature.clone(),
                    head.signer_cert_pem.clone(),
                )
                .await
            }

            async fn newest_signed_head(&self) -> Result<Option<crate::security::audit_head::SignedHead>, StoreError> {
                let row = sqlx::query(
                    "SELECT signed_at, heads, signature, signer_cert FROM audit_signed_heads ORDER BY id DESC LIMIT 1",
                )
                .fetch_optional(&self.pool)
                .await?;
                let Some(r) = row else { return Ok(None) };
                let heads: String = r.try_get(1)?;
                Ok(Some(crate::security::audit_head::SignedHead {
                    signed_at_micros: crate::store::to_micros(value::get_instant(&r, 0)?),
                    heads: crate::domain::audit::parse_heads(&heads)
                        .ok_or_else(|| crate::store::corrupt("audit_signed_heads", "heads"))?,
                    signature: r.try_get(2)?,
                    signer_cert_pem: r.try_get(3)?,
                }))
            }
        }
    };
}

/// `append_audits(conn, lane, records, now)`: append events to lane `lane` of the audit log in the order given (same
/// canonical form and hash on both backends: `domain::audit`), numbered after the lane's head and given log numbers
/// (`next_seqs`: the next `MAX(seq)`s on SQLite, the `audit_events_seq` sequence on PostgreSQL), and link each to
/// its persons: one multi-row statement for the events and one pass for their persons, whatever their number (the
/// group commit of reads' audit events hands in up to `group::MAX_AUDIT_GROUP`). `append_audit(conn, record, now)`
/// appends one to lane 0, the writer's lane. Must run in a transaction that holds the lane: the writer (lane 0:
/// `self.write()` or the ingest's transaction) or the session holding the lane's lock (a PostgreSQL read lane,
/// `postgres/lanes.rs`): the head read here must not move before the commit. Expanded by `audit_append!()` in each backend's `audit.rs`,
/// which provides the parts that differ: `next_seqs(conn, n)`, `link_persons(conn, links, now)` over `(person key,
/// seq)` pairs and `link_person_ids(conn, ids, seq)` (multi-row statements on SQLite, UNNEST on PostgreSQL): a person
/// key the hub has not met (a read of an unknown ID number) gets a `persons` row without an ID number, so that the
/// probe is found when an auditor asks about that person.
macro_rules! audit_append {
    () => {
        pub(super) async fn append_audit(
            conn: &mut <Db as sqlx::Database>::Connection,
            a: &crate::store::AuditRecord,
            now: value::Instant,
        ) -> Result<(), StoreError> {
            append_audits(conn, 0, std::slice::from_ref(a), now).await
        }

        /// See the macro's docs.
        pub(super) async fn append_audits(
            conn: &mut <Db as sqlx::Database>::Connection,
            lane: i32,
            records: &[crate::store::AuditRecord],
            now: value::Instant,
        ) -> Result<(), StoreError> {
            if records.is_empty() {
                return Ok(());
            }
            let head = lane_head(conn, lane).await?;
            let seqs = next_seqs(conn, records.len()).await?;
            let (mut lane_seq, mut prev) = (head.seq, head.hash);
            let mut events = Vec::with_capacity(records.len());
            let mut links: Vec<([u8; 32], i64)> = Vec::new();
            for (a, seq) in records.iter().zip(seqs) {
                lane_seq += 1;
                let (keys, event) = chain_event(a, seq, lane, lane_seq, prev, now);
                prev = event.hash;
                links.extend(keys.into_iter().map(|k| (k, seq)));
                events.push(event);
            }
            insert_events(conn, &events).await?;
            link_persons(conn, &links, now).await
        }

        /// [`append_audit`], given the `person_id` of every key of `a` in `known` (ingest has just looked them up),
        /// so that the random-keyed `persons (person_key)` index is not searched again: the event's `audit_persons`
        /// rows are written straight from the ids (`link_person_ids`).
        /// PostgreSQL's ingest; SQLite's appends the same rows on the writer's own handle
        /// (`sqlite::audit::append_ingest_audit`), so there it serves the tests that compare the two.
        #[allow(dead_code)]
        pub(super) async fn append_audit_of(
            conn: &mut <Db as sqlx::Database>::Connection,
            a: &crate::store::AuditRecord,
            now: value::Instant,
            known: &crate::store::PersonIds,
        ) -> Result<(), StoreError> {
            let head = lane_head(conn, 0).await?;
            let seq = next_seqs(conn, 1).await?.into_iter().next().unwrap_or_default();
            let (_, event) = chain_event(a, seq, 0, head.seq + 1, head.hash, now);
            insert_events(conn, std::slice::from_ref(&event)).await?;
            let mut ids: Vec<i64> = Vec::with_capacity(a.person_keys.len());
            for k in &a.person_keys {
                ids.push(
                    *known
                        .get(k)
                        .ok_or_else(|| crate::store::corrupt("persons", "an audited person has no person_id"))?,
                );
            }
            ids.sort_unstable();
            ids.dedup();
            link_person_ids(conn, &ids, event.seq).await
        }

        /// Lane `lane`'s newest event (`seq` 0 and the lane's genesis hash when it has none), as committed or
        /// written by this transaction.
        pub(super) async fn lane_head(
            conn: &mut <Db as sqlx::Database>::Connection,
            lane: i32,
        ) -> Result<crate::domain::audit::LaneHead, StoreError> {
            let last = sqlx::query("SELECT lane_seq, hash FROM audit_events WHERE lane = $1 ORDER BY lane_seq DESC LIMIT 1")
                .bind(lane)
                .fetch_optional(&mut *conn)
                .await?;
            Ok(match last {
                Some(r) => crate::domain::audit::LaneHead {
                    lane,
                    seq: r.try_get(0)?,
                    hash: crate::store::plan::h32(r.try_get(1)?)?,
                },
                None => crate::domain::audit::LaneHead { lane, seq: 0, hash: crate::domain::audit::lane_genesis(lane) },
            })
        }

        /// Every lane's newest committed event (lanes without events left out), in lane order: what a checkpoint names.
        #[allow(dead_code)]
        pub(super) async fn lane_heads(
            conn: &mut <Db as sqlx::Database>::Connection,
        ) -> Result<Vec<crate::domain::audit::LaneHead>, StoreError> {
            let rows = sqlx::query(
                "SELECT l.lane, e.lane_seq, e.hash FROM audit_lanes l JOIN audit_events e ON e.lane = l.lane \
                 AND e.lane_seq = (SELECT MAX(x.lane_seq) FROM audit_events x WHERE x.lane = l.lane) ORDER BY l.lane",
            )
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(crate::domain::audit::LaneHead {
                        lane: r.try_get(0)?,
                        seq: r.try_get(1)?,
                        hash: crate::store::plan::h32(r.try_get(2)?)?,
                    })
                })
                .collect()
        }

        /// One event's row: log number `seq`, position `lane_seq` in `lane` after `prev`; and its distinct person
        /// keys (sorted).
        fn chain_event<'a>(
            a: &'a crate::store::AuditRecord,
            seq: i64,
            lane: i32,
            lane_seq: i64,
            prev: [u8; 32],
            now: value::Instant,
        ) -> (Vec<[u8; 32]>, EventRow<'a>) {
            use crate::domain::audit::{EventContent, event_hash, persons_hash};
            let mut keys: Vec<[u8; 32]> = a.person_keys.iter().map(|k| *k.as_bytes()).collect();
            let persons_hash = persons_hash(&mut keys);
            let content = EventContent {
                seq: lane_seq,
                at_micros: value::micros(now),
                agency: &a.agency,
                division: &a.division,
                method: &a.method,
                purpose: &a.purpose,
                outcome: &a.outcome,
                person_count: keys.len() as i64,
                persons_hash,
                via: &a.via,
            };
            let hash = event_hash(&prev, &content);
            let event = EventRow {
                seq,
                lane,
                lane_seq,
                at: now,
                record: a,
                person_count: keys.len() as i64,
                persons_hash,
                prev,
                hash,
            };
            (keys, event)
        }

        /// An `audit_events` row to insert.
        struct EventRow<'a> {
            seq: i64,
            lane: i32,
            lane_seq: i64,
            at: value::Instant,
            record: &'a crate::store::AuditRecord,
            person_count: i64,
            persons_hash: [u8; 32],
            prev: [u8; 32],
            hash: [u8; 32],
        }

        /// Insert `events` in multi-row statements of at most 400 rows (14 values each).
        async fn insert_events(
            conn: &mut <Db as sqlx::Database>::Connection,
            events: &[EventRow<'_>],
        ) -> Result<(), StoreError> {
            for chunk in events.chunks(400) {
                let mut qb: sqlx::QueryBuilder<Db> = sqlx::QueryBuilder::new(
                    "INSERT INTO audit_events (seq, lane, lane_seq, at, agency, division, method, purpose, outcome, \
                     person_count, persons_hash, prev_hash, hash, via) ",
                );
                qb.push_values(chunk, |mut b, e| {
                    b.push_bind(e.seq)
                        .push_bind(e.lane)
                        .push_bind(e.lane_seq)
                        .push_bind(e.at)
                        .push_bind(e.record.agency.clone())
                        .push_bind(e.record.division.clone())
                        .push_bind(e.record.method.clone())
                        .push_bind(e.record.purpose.clone())
                        .push_bind(e.record.outcome.clone())
                        .push_bind(e.person_count)
                        .push_bind(e.persons_hash.to_vec())
                        .push_bind(e.prev.to_vec())
                        .push_bind(e.hash.to_vec())
                        .push_bind(e.record.via.clone());
                });
                // Cached only at the full 400 rows: every other count is another statement text.
                qb.build().persistent(chunk.len() == 400).execute(&mut *conn).await?;
            }
            Ok(())
        }
    };
}
