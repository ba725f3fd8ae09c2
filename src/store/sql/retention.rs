//! [`RetentionStore`](crate::store::RetentionStore) for both backends (migration 0015, docs/retention.md): retention
//! periods, legal holds and the resumable purge. Expanded by `retention_store!(Store)` in each backend's
//! `retention.rs`, which provides `BENEFIT` (the facts' benefit column: `benefit_fen` on SQLite, `benefit` on
//! PostgreSQL) and `NOT_CURRENT` (the literal of the partial index `facts_superseded`: `0` or `false`).
//!
//! Each purge chunk is one write transaction (`self.write()`) that selects at most `limit` records not yet purged,
//! past the cutoff and not held, purges them and appends its audit event: an interrupted purge loses at most the chunk
//! in progress (rolled back) and the next run selects only what is left.

/// The audit events whose persons a purge may delete: not purged, touching someone, older than `$1`, in no quarter held
/// and touching no person held. `e` is `audit_events`.
pub(crate) const AUDIT_DUE: &str = "e.purged_at IS NULL AND e.person_count > 0 AND e.at < $1 \
     AND NOT EXISTS (SELECT 1 FROM retention_holds h WHERE h.released_at IS NULL AND h.scope = 'quarter' \
     AND e.at >= h.from_at AND e.at < h.to_at) \
     AND NOT EXISTS (SELECT 1 FROM retention_holds h JOIN persons p ON p.person_key = h.person_key \
     JOIN audit_persons a ON a.person_id = p.person_id WHERE h.released_at IS NULL AND a.seq = e.seq)";

macro_rules! retention_store {
    ($store:ty) => {
        /// The columns of a hold, in the order `hold_row` reads them.
        const HOLD_COLUMNS: &str = "id, scope, person_key, quarter, reason, placed_at, placed_by, released_at, \
             released_by, release_reason";

        fn hold_row(r: &<Db as sqlx::Database>::Row) -> Result<crate::store::StoredHold, StoreError> {
            use sqlx::Row as _;
            let scope: String = r.try_get(1)?;
            let target = match scope.as_str() {
                "person" => crate::store::HoldTarget::Person(crate::store::sql::person_key(r, 2, "retention_holds")?),
                _ => {
                    let q: String = r.try_get(3)?;
                    crate::store::HoldTarget::Quarter(
                        q.parse().map_err(|_| crate::store::corrupt("retention_holds", format!("quarter {q:?}")))?,
                    )
                }
            };
            let released = match value::get_opt_instant(r, 7)? {
                Some(at) => Some((
                    at,
                    r.try_get::<Option<String>, _>(8)?.unwrap_or_default(),
                    r.try_get::<Option<String>, _>(9)?.unwrap_or_default(),
                )),
                None => None,
            };
            Ok(crate::store::StoredHold {
                id: r.try_get(0)?,
                target,
                reason: r.try_get(4)?,
                placed_at: value::get_instant(r, 5)?,
                placed_by: r.try_get(6)?,
                released,
            })
        }

        /// The newest snapshot's knowledge cutoff, if any: superseded versions purged must have been superseded by
        /// then, so that no snapshot frozen later reads a tombstone (docs/retention.md "Fact versions").
        async fn newest_snapshot_cutoff(
            conn: &mut <Db as sqlx::Database>::Connection,
        ) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
            let r = sqlx::query("SELECT knowledge_cutoff FROM snapshots ORDER BY knowledge_cutoff DESC LIMIT 1")
                .fetch_optional(&mut *conn)
                .await?;
            r.as_ref().map(|r| value::get_instant(r, 0)).transpose()
        }

        /// When the fact version of the oldest change still in the log was recorded, if the log holds any: versions
        /// recorded before it are referred to by no change left (changes are appended with their versions, in
        /// commit order), so purging them never leaves WatchChanges a change without its payload.
        async fn oldest_change_recorded(
            conn: &mut <Db as sqlx::Database>::Connection,
        ) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
            let r = sqlx::query(
                "SELECT f.recorded_at FROM change_log c JOIN facts f ON f.agency = c.agency AND f.fact_id = c.fact_id \
                 AND f.source_version = c.source_version WHERE c.cursor = (SELECT MIN(cursor) FROM change_log)",
            )
            .fetch_optional(&mut *conn)
            .await?;
            r.as_ref().map(|r| value::get_instant(r, 0)).transpose()
        }

        /// ` FROM facts f JOIN persons p … WHERE …` of the superseded versions a purge may clear (`None`: none, as
        /// long as no snapshot is frozen).
        async fn push_facts_due(
            conn: &mut <Db as sqlx::Database>::Connection,
            qb: &mut sqlx::QueryBuilder<Db>,
            cutoff: chrono::DateTime<chrono::Utc>,
        ) -> Result<bool, StoreError> {
            let Some(snapshot) = newest_snapshot_cutoff(conn).await? else { return Ok(false) };
            let floor = oldest_change_recorded(conn).await?;
            qb.push(format!(
                " FROM facts f JOIN persons p ON p.person_id = f.person_id WHERE f.is_current = {NOT_CURRENT} \
                 AND f.purged_at IS NULL AND f.superseded_at < "
            ))
            .push_bind(value::instant(cutoff))
            .push(" AND f.superseded_at <= ")
            .push_bind(value::instant(snapshot));
            if let Some(floor) = floor {
                qb.push(" AND f.recorded_at < ").push_bind(value::instant(floor));
            }
            qb.push(
                " AND NOT EXISTS (SELECT 1 FROM retention_holds h WHERE h.released_at IS NULL AND \
                 (h.person_key = p.person_key OR (h.scope = 'quarter' AND f.valid_from < h.to_date \
                 AND (f.valid_to IS NULL OR f.valid_to > h.from_date))))",
            );
            Ok(true)
        }

        /// The cursors of the oldest changes whose versions were recorded before `cutoff`, in cursor order, at most
        /// `limit`, stopping at the first change that is not (the log is only ever cut at its start: a watcher never
        /// finds a hole) and never reaching the newest change (the next cursor is `MAX(cursor) + 1`: the head must
        /// stay). Returns the last such cursor and how many there are.
        async fn change_log_prefix(
            conn: &mut <Db as sqlx::Database>::Connection,
            cutoff: chrono::DateTime<chrono::Utc>,
            limit: usize,
        ) -> Result<Option<(i64, u64)>, StoreError> {
            use sqlx::Row as _;
            let rows = sqlx::query(
                "SELECT c.cursor, f.recorded_at < $1 FROM change_log c JOIN facts f ON f.agency = c.agency \
                 AND f.fact_id = c.fact_id AND f.source_version = c.source_version \
                 WHERE c.cursor < (SELECT MAX(cursor) FROM change_log) ORDER BY c.cursor LIMIT $2",
            )
            .bind(value::instant(cutoff))
            .bind(limit as i64)
            .fetch_all(&mut *conn)
            .await?;
            let mut last = None;
            for r in &rows {
                if !r.try_get::<bool, _>(1)? {
                    break;
                }
                let cursor: i64 = r.try_get(0)?;
                last = Some((cursor, last.map_or(1, |(_, n)| n + 1)));
            }
            Ok(last)
        }

        #[async_trait::async_trait]
        impl crate::store::RetentionStore for $store {
            async fn retention_policies(&self) -> Result<Vec<crate::store::RetentionPolicy>, StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query(
                    "SELECT kind, days, min_days, source, set_at, set_by FROM retention_policy ORDER BY kind",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        let kind: String = r.try_get(0)?;
                        Ok(crate::store::RetentionPolicy {
                            kind: crate::domain::retention::RecordKind::parse(&kind).ok_or_else(|| {
                                crate::store::corrupt("retention_policy", format!("unknown kind {kind:?}"))
                            })?,
                            days: i64::from(r.try_get::<i32, _>(1)?),
                            min_days: i64::from(r.try_get::<i32, _>(2)?),
                            source: r.try_get(3)?,
                            set_at: value::get_instant(r, 4)?,
                            set_by: r.try_get(5)?,
                        })
                    })
                    .collect()
            }

            async fn set_retention(
                &self,
                kind: crate::domain::retention::RecordKind,
                days: i64,
                source: &str,
                set_by: &str,
                at: chrono::DateTime<chrono::Utc>,
                audit: &(dyn for<'p> Fn(&'p crate::store::RetentionPolicy) -> crate::store::AuditRecord + Send + Sync),
            ) -> Result<Option<crate::store::RetentionPolicy>, StoreError> {
                use sqlx::Row as _;
                let days32 = i32::try_from(days).map_err(|_| crate::store::corrupt("retention_policy", "days"))?;
                let mut w = self.write().await?;
                let Some(r) = sqlx::query(
                    "SELECT kind, days, min_days, source, set_at, set_by FROM retention_policy WHERE kind = $1",
                )
                .bind(kind.as_str())
                .fetch_optional(&mut *w.tx)
                .await?
                else {
                    return Ok(None);
                };
                let before = crate::store::RetentionPolicy {
                    kind,
                    days: i64::from(r.try_get::<i32, _>(1)?),
                    min_days: i64::from(r.try_get::<i32, _>(2)?),
                    source: r.try_get(3)?,
                    set_at: value::get_instant(&r, 4)?,
                    set_by: r.try_get(5)?,
                };
                let at = crate::store::from_micros(crate::store::to_micros(at));
                sqlx::query(
                    "UPDATE retention_policy SET days = $1, source = $2, set_at = $3, set_by = $4 WHERE kind = $5",
                )
                .bind(days32)
                .bind(source)
                .bind(value::instant(at))
                .bind(set_by)
                .bind(kind.as_str())
                .execute(&mut *w.tx)
                .await?;
                append_audit(&mut w.tx, &audit(&before), value::instant(chrono::Utc::now())).await?;
                w.tx.commit().await?;
                Ok(Some(before))
            }

            async fn place_hold(
                &self,
                hold: &crate::store::NewHold,
                audit: &(dyn Fn(i64) -> crate::store::AuditRecord + Send + Sync),
            ) -> Result<i64, StoreError> {
                use crate::store::HoldTarget;
                let at = crate::store::from_micros(crate::store::to_micros(hold.placed_at));
                let mut w = self.write().await?;
                let row = match &hold.target {
                    HoldTarget::Person(k) => {
                        sqlx::query(
                            "INSERT INTO retention_holds (scope, person_key, reason, placed_at, placed_by) \
                             VALUES ('person', $1, $2, $3, $4) RETURNING id",
                        )
                        .bind(k.as_bytes().to_vec())
                        .bind(&hold.reason)
                        .bind(value::instant(at))
                        .bind(&hold.placed_by)
                        .fetch_one(&mut *w.tx)
                        .await?
                    }
                    HoldTarget::Quarter(q) => {
                        sqlx::query(
                            "INSERT INTO retention_holds (scope, quarter, from_date, to_date, from_at, to_at, reason, \
                             placed_at, placed_by) VALUES ('quarter', $1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                        )
                        .bind(q.to_string())
                        .bind(value::date(q.first_day()))
                        .bind(value::date(q.next().first_day()))
                        .bind(value::instant(q.start_instant_utc()))
                        .bind(value::instant(q.end_instant_utc()))
                        .bind(&hold.reason)
                        .bind(value::instant(at))
                        .bind(&hold.placed_by)
                        .fetch_one(&mut *w.tx)
                        .await?
                    }
                };
                let id: i64 = sqlx::Row::try_get(&row, 0)?;
                append_audit(&mut w.tx, &audit(id), value::instant(chrono::Utc::now())).await?;
                w.tx.commit().await?;
                Ok(id)
            }

            async fn release_hold(
                &self,
                id: i64,
                released_by: &str,
                reason: &str,
                at: chrono::DateTime<chrono::Utc>,
                audit: &(dyn for<'p> Fn(&'p crate::store::StoredHold) -> crate::store::AuditRecord + Send + Sync),
            ) -> Result<Option<crate::store::StoredHold>, StoreError> {
                let at = crate::store::from_micros(crate::store::to_micros(at));
                let mut w = self.write().await?;
                let Some(r) = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {HOLD_COLUMNS} FROM retention_holds WHERE id = $1 AND released_at IS NULL"
                )))
                .bind(id)
                .fetch_optional(&mut *w.tx)
                .await?
                else {
                    return Ok(None);
                };
                let hold = hold_row(&r)?;
                sqlx::query(
                    "UPDATE retention_holds SET released_at = $1, released_by = $2, release_reason = $3 WHERE id = $4",
                )
                .bind(value::instant(at))
                .bind(released_by)
                .bind(reason)
                .bind(id)
                .execute(&mut *w.tx)
                .await?;
                append_audit(&mut w.tx, &audit(&hold), value::instant(chrono::Utc::now())).await?;
                w.tx.commit().await?;
                Ok(Some(hold))
            }

            async fn retention_holds(&self) -> Result<Vec<crate::store::StoredHold>, StoreError> {
                sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {HOLD_COLUMNS} FROM retention_holds ORDER BY id")))
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(hold_row)
                    .collect()
            }

            async fn purge_due(
                &self,
                kind: crate::domain::retention::RecordKind,
                cutoff: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, StoreError> {
                use crate::domain::retention::RecordKind;
                let mut conn = self.pool.acquire().await?;
                let n: i64 = match kind {
                    RecordKind::AuditPersons => {
                        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                            "SELECT COUNT(*) FROM audit_events e WHERE {}",
                            crate::store::sql::retention::AUDIT_DUE
                        )))
                        .bind(value::instant(cutoff))
                        .fetch_one(&mut *conn)
                        .await?
                    }
                    RecordKind::ChangeLog => {
                        // The prefix of changes recorded before the cutoff, never the newest one.
                        sqlx::query_scalar(
                            "SELECT COUNT(*) FROM change_log c WHERE c.cursor < (SELECT MAX(cursor) FROM change_log) \
                             AND c.cursor < COALESCE((SELECT MIN(x.cursor) FROM change_log x JOIN facts f \
                             ON f.agency = x.agency AND f.fact_id = x.fact_id AND f.source_version = x.source_version \
                             WHERE f.recorded_at >= $1), (SELECT MAX(cursor) FROM change_log))",
                        )
                        .bind(value::instant(cutoff))
                        .fetch_one(&mut *conn)
                        .await?
                    }
                    RecordKind::FactVersion => {
                        let mut qb: sqlx::QueryBuilder<Db> = sqlx::QueryBuilder::new("SELECT COUNT(*)");
                        if !push_facts_due(&mut conn, &mut qb, cutoff).await? {
                            return Ok(0);
                        }
                        sqlx::Row::try_get(&qb.build().fetch_one(&mut *conn).await?, 0)?
                    }
                    RecordKind::Settlement => 0,
                };
                Ok(n.max(0) as u64)
            }

            async fn purge_chunk(
                &self,
                kind: crate::domain::retention::RecordKind,
                cutoff: chrono::DateTime<chrono::Utc>,
                limit: usize,
                audit: crate::store::PurgeAudit<'_>,
            ) -> Result<u64, StoreError> {
                use crate::domain::retention::RecordKind;
                use sqlx::Row as _;
                if limit == 0 || kind == RecordKind::Settlement {
                    return Ok(0);
                }
                let mut w = self.write().await?;
                let now = value::instant(crate::store::from_micros(crate::store::to_micros(chrono::Utc::now())));
                let purged: u64 = match kind {
                    RecordKind::AuditPersons => {
                        let seqs: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                            "SELECT e.seq FROM audit_events e WHERE {} ORDER BY e.seq LIMIT $2",
                            crate::store::sql::retention::AUDIT_DUE
                        )))
                        .bind(value::instant(cutoff))
                        .bind(limit as i64)
                        .fetch_all(&mut *w.tx)
                        .await?;
                        for chunk in seqs.chunks(value::IN_LIST.min(500)) {
                            let mut qb: sqlx::QueryBuilder<Db> =
                                sqlx::QueryBuilder::new("DELETE FROM audit_persons WHERE seq");
                            value::push_in(&mut qb, chunk.to_vec());
                            qb.build().execute(&mut *w.tx).await?;
                            let mut qb: sqlx::QueryBuilder<Db> =
                                sqlx::QueryBuilder::new("UPDATE audit_events SET purged_at = ");
                            qb.push_bind(now).push(" WHERE seq");
                            value::push_in(&mut qb, chunk.to_vec());
                            qb.build().execute(&mut *w.tx).await?;
                        }
                        seqs.len() as u64
                    }
                    RecordKind::ChangeLog => match change_log_prefix(&mut w.tx, cutoff, limit).await? {
                        Some((last, _)) => sqlx::query("DELETE FROM change_log WHERE cursor <= $1")
                            .bind(last)
                            .execute(&mut *w.tx)
                            .await?
                            .rows_affected(),
                        None => 0,
                    },
                    RecordKind::FactVersion => {
                        let mut qb: sqlx::QueryBuilder<Db> =
                            sqlx::QueryBuilder::new("SELECT f.agency, f.fact_id, f.source_version");
                        if !push_facts_due(&mut w.tx, &mut qb, cutoff).await? {
                            return Ok(0);
                        }
                        qb.push(" ORDER BY f.superseded_at LIMIT ").push_bind(limit as i64);
                        let rows = qb.build().fetch_all(&mut *w.tx).await?;
                        for r in &rows {
                            sqlx::query(sqlx::AssertSqlSafe(format!(
                                "UPDATE facts SET payload = '', program = NULL, status = NULL, residence = NULL, \
                                 {BENEFIT} = NULL, purged_at = $1 WHERE agency = $2 AND fact_id = $3 \
                                 AND source_version = $4 AND purged_at IS NULL"
                            )))
                            .bind(now)
                            .bind(r.try_get::<String, _>(0)?)
                            .bind(r.try_get::<String, _>(1)?)
                            .bind(r.try_get::<i64, _>(2)?)
                            .execute(&mut *w.tx)
                            .await?;
                        }
                        rows.len() as u64
                    }
                    RecordKind::Settlement => 0,
                };
                if purged == 0 {
                    return Ok(0);
                }
                append_audit(&mut w.tx, &audit(purged), now).await?;
                w.tx.commit().await?;
                Ok(purged)
            }
        }
    };
}
