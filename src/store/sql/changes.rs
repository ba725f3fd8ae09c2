//! [`ChangeLog`](crate::store::ChangeLog) for both backends: reading the change log behind WatchChanges (migration
//! 0007; docs/change-feed.md). Expanded by `change_log!(Store)` in each backend's `changes.rs`, which keeps the
//! one statement that differs, the append (`append_changes`: multi-row VALUES on SQLite, UNNEST on PostgreSQL),
//! and provides `stored_fact` (the backend's reading of a fact row).

/// The fact columns `stored_fact` reads, in order, from `facts f` joined with `persons p` (the person key is the
/// person's, the facts refer to its `person_id`: migration 0010).
pub(crate) const FACT_COLUMNS_F: &str = "f.agency, f.fact_id, f.source_version, p.person_key, f.kind, \
     f.division_code, f.valid_from, f.valid_to, f.payload, f.recorded_at";

/// The columns `comparison_fact` reads (`FactReads::comparison_facts_of_persons`): those of [`FACT_COLUMNS_F`] with
/// the payload replaced by the columns a comparison answers with, `program` (8) and `status` (10).
pub(crate) const COMPARISON_COLUMNS_F: &str = "f.agency, f.fact_id, f.source_version, p.person_key, f.kind, \
     f.division_code, f.valid_from, f.valid_to, f.program, f.recorded_at, f.status";

macro_rules! change_log {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl crate::store::ChangeLog for $store {
            async fn change_log_head(&self) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar("SELECT CAST(COALESCE(MAX(cursor), 0) AS BIGINT) FROM change_log")
                    .fetch_one(&self.pool)
                    .await?)
            }

            async fn change_log_oldest(&self) -> Result<Option<i64>, StoreError> {
                Ok(sqlx::query_scalar("SELECT MIN(cursor) FROM change_log").fetch_one(&self.pool).await?)
            }

            fn subscribe_changes(&self) -> tokio::sync::watch::Receiver<i64> {
                self.change_head.subscribe()
            }

            async fn changes_after(
                &self,
                filter: &ChangeFilter,
                after: i64,
                upto: i64,
                limit: usize,
            ) -> Result<Vec<ChangeRow>, StoreError> {
                if filter.kinds.is_empty() || upto <= after {
                    return Ok(Vec::new());
                }
                let mut qb: sqlx::QueryBuilder<Db> = sqlx::QueryBuilder::new(format!(
                    "SELECT {}, c.cursor, c.prev_version, c.prev_division, p.id_cipher, p.id_masked \
                     FROM change_log c \
                     JOIN facts f ON f.agency = c.agency AND f.fact_id = c.fact_id \
                     AND f.source_version = c.source_version \
                     JOIN persons p ON p.person_id = f.person_id \
                     WHERE c.cursor > ",
                    crate::store::sql::FACT_COLUMNS_F
                ));
                qb.push_bind(after).push(" AND c.cursor <= ").push_bind(upto).push(" AND c.kind IN (");
                let mut sep = qb.separated(", ");
                for k in &filter.kinds {
                    sep.push_bind(k.clone());
                }
                qb.push(")");
                if !filter.division_prefix.is_empty() {
                    // A range on the version's division or the one it superseded: codes are ASCII digits, so
                    // prefix ≤ code < prefix + ':'.
                    let (lo, hi) = (filter.division_prefix.clone(), format!("{}:", filter.division_prefix));
                    qb.push(" AND ((c.division_code >= ")
                        .push_bind(lo.clone())
                        .push(" AND c.division_code < ")
                        .push_bind(hi.clone())
                        .push(") OR (c.prev_division >= ")
                        .push_bind(lo)
                        .push(" AND c.prev_division < ")
                        .push_bind(hi)
                        .push("))");
                }
                qb.push(" ORDER BY c.cursor LIMIT ").push_bind(limit as i64);
                let rows = qb.build().fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|r| {
                        let prev: Option<i64> = r.try_get(11)?;
                        Ok(ChangeRow {
                            fact: stored_fact(r)?,
                            cursor: r.try_get(10)?,
                            prev_version: prev.map(|v| v as u64),
                            prev_division: r.try_get(12)?,
                            id_cipher: r.try_get(13)?,
                            id_masked: r.try_get(14)?,
                        })
                    })
                    .collect()
            }
        }
    };
}
