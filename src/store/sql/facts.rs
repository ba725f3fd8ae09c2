//! [`FactReads`](crate::store::FactReads) for both backends: persons and their current facts read back, the lists and
//! counts of persons (`push_person_filter`), reference data, the counts operators see, and the two small writes beside
//! them (the data key's check value, the audit event of a read). Expanded by `fact_reads!(Store)` beside each backend's
//! `FactStore` (the ingest write path, each backend's own), which provides `stored_fact` (the backend's reading of a
//! fact row) and `append_audit`.
//!
//! A set of person keys is matched with `value::push_in`, [`value::IN_LIST`] keys a statement (` IN (…)` on SQLite,
//! one array ` = ANY(…)` on PostgreSQL).

macro_rules! fact_reads {
    ($store:ty) => {
        /// `columns` (`FACT_COLUMNS_F`, or `COMPARISON_COLUMNS_F` for `comparison_fact`) of the current facts in
        /// force on `as_of` of the persons `keys` (one statement's worth: at most [`value::IN_LIST`]), `also` appended to the conditions (SQL text, e.g. a kind filter); the caller adds any
        /// `ORDER BY`.
        fn persons_facts_query(
            columns: &str,
            keys: &[crate::security::crypto::PersonKey],
            as_of: chrono::NaiveDate,
            also: &str,
        ) -> sqlx::QueryBuilder<Db> {
            let mut qb: sqlx::QueryBuilder<Db> = sqlx::QueryBuilder::new(format!(
                "SELECT {columns} FROM persons p JOIN facts f ON f.person_id = p.person_id \
                 WHERE f.is_current = {}{also} AND f.valid_from <= ",
                value::TRUE
            ));
            qb.push_bind(value::date(as_of))
                .push(" AND (f.valid_to IS NULL OR f.valid_to > ")
                .push_bind(value::date(as_of))
                .push(") AND p.person_key");
            value::push_in(&mut qb, crate::store::sql::key_bytes(keys));
            qb
        }

        #[async_trait::async_trait]
        impl crate::store::FactReads for $store {
            async fn verify_key_check(&self, check: &[u8; 32]) -> Result<bool, StoreError> {
                let mut w = self.write().await?;
                let row = sqlx::query("SELECT value FROM hub_meta WHERE name = 'data_key_check'")
                    .fetch_optional(&mut *w.tx)
                    .await?;
                let ok = match row {
                    Some(r) => r.try_get::<Vec<u8>, _>(0)? == check.as_slice(),
                    None => {
                        sqlx::query("INSERT INTO hub_meta (name, value) VALUES ('data_key_check', $1)")
                            .bind(check.to_vec())
                            .execute(&mut *w.tx)
                            .await?;
                        true
                    }
                };
                w.tx.commit().await?;
                Ok(ok)
            }

            /// Group-committed ([`crate::store::group`]): the events of concurrent reads share a write transaction,
            /// appended to the process's audit lane in the order they were handed in (`append_read_audits`: lane 0
            /// on SQLite, the process's own lane on PostgreSQL); returns once that transaction has committed.
            async fn record_audit(&self, audit: &crate::store::AuditRecord) -> Result<(), StoreError> {
                self.audit_group
                    .submit(audit.clone(), |events| {
                        let store = self.clone();
                        async move { store.append_read_audits(&events).await }
                    })
                    .await
            }

            async fn person_cipher(
                &self,
                key: &crate::security::crypto::PersonKey,
            ) -> Result<Option<Vec<u8>>, StoreError> {
                Ok(sqlx::query_scalar("SELECT id_cipher FROM persons WHERE person_key = $1 AND id_cipher IS NOT NULL")
                    .bind(key.as_bytes().to_vec())
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn person_ciphers(
                &self,
                keys: &[crate::security::crypto::PersonKey],
            ) -> Result<std::collections::HashMap<crate::security::crypto::PersonKey, Vec<u8>>, StoreError> {
                let mut out = std::collections::HashMap::with_capacity(keys.len());
                for chunk in keys.chunks(value::IN_LIST) {
                    let mut qb: sqlx::QueryBuilder<Db> = sqlx::QueryBuilder::new(
                        "SELECT person_key, id_cipher FROM persons WHERE id_cipher IS NOT NULL AND person_key",
                    );
                    value::push_in(&mut qb, crate::store::sql::key_bytes(chunk));
                    for r in qb.build().persistent(value::cache_in_list(chunk.len())).fetch_all(&self.pool).await? {
                        out.insert(crate::store::sql::person_key(&r, 0, "persons")?, r.try_get(1)?);
                    }
                }
                Ok(out)
            }

            async fn person_facts(
                &self,
                key: &crate::security::crypto::PersonKey,
                as_of: chrono::NaiveDate,
            ) -> Result<Vec<crate::store::StoredFact>, StoreError> {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM persons p JOIN facts f ON f.person_id = p.person_id \
                     WHERE p.person_key = $1 AND f.is_current = {} AND f.valid_from <= $2 \
                     AND (f.valid_to IS NULL OR f.valid_to > $2) ORDER BY f.kind, f.agency, f.fact_id",
                    crate::store::sql::FACT_COLUMNS_F,
                    value::TRUE
                )))
                .bind(key.as_bytes().to_vec())
                .bind(value::date(as_of))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(stored_fact).collect()
            }

            async fn facts_of_persons(
                &self,
                keys: &[crate::security::crypto::PersonKey],
                as_of: chrono::NaiveDate,
            ) -> Result<Vec<crate::store::StoredFact>, StoreError> {
                let mut out = Vec::new();
                for chunk in keys.chunks(value::IN_LIST) {
                    let mut qb = persons_facts_query(crate::store::sql::FACT_COLUMNS_F, chunk, as_of, "");
                    qb.push(" ORDER BY p.person_key, f.kind, f.agency, f.fact_id");
                    for r in qb.build().persistent(value::cache_in_list(chunk.len())).fetch_all(&self.pool).await? {
                        out.push(stored_fact(&r)?);
                    }
                }
                Ok(out)
            }

            async fn facts_of_persons_of_kinds(
                &self,
                keys: &[crate::security::crypto::PersonKey],
                as_of: chrono::NaiveDate,
                kinds: &[crate::domain::fact::PayloadKind],
            ) -> Result<Vec<crate::store::StoredFact>, StoreError> {
                if kinds.is_empty() {
                    return Ok(Vec::new());
                }
                // The kinds' codes are the enum's fixed lowercase names (`PayloadKind::as_str`), never input text.
                let listed: Vec<String> = kinds.iter().map(|k| format!("'{}'", k.as_str())).collect();
                let also = format!(" AND f.kind IN ({})", listed.join(", "));
                let mut out = Vec::new();
                for chunk in keys.chunks(value::IN_LIST) {
                    let mut qb = persons_facts_query(crate::store::sql::FACT_COLUMNS_F, chunk, as_of, &also);
                    qb.push(" ORDER BY p.person_key, f.kind, f.agency, f.fact_id");
                    for r in qb.build().persistent(value::cache_in_list(chunk.len())).fetch_all(&self.pool).await? {
                        out.push(stored_fact(&r)?);
                    }
                }
                Ok(out)
            }

            async fn facts_in_person_range(
                &self,
                as_of: chrono::NaiveDate,
                kinds: &[crate::domain::fact::PayloadKind],
                after: i64,
                through: i64,
            ) -> Result<Vec<(i64, crate::store::StoredFact)>, StoreError> {
                if kinds.is_empty() || through <= after {
                    return Ok(Vec::new());
                }
                // The kinds' codes are the enum's fixed lowercase names (`PayloadKind::as_str`), never input text.
                let listed: Vec<String> = kinds.iter().map(|k| format!("'{}'", k.as_str())).collect();
                let mut qb: sqlx::QueryBuilder<Db> = sqlx::QueryBuilder::new(format!(
                    "SELECT {}, f.person_id FROM facts f JOIN persons p ON p.person_id = f.person_id \
                     WHERE f.is_current = {} AND f.kind IN ({}) AND f.person_id > ",
                    crate::store::sql::FACT_COLUMNS_F,
                    value::TRUE,
                    listed.join(", ")
                ));
                qb.push_bind(after)
                    .push(" AND f.person_id <= ")
                    .push_bind(through)
                    .push(" AND f.valid_from <= ")
                    .push_bind(value::date(as_of))
                    .push(" AND (f.valid_to IS NULL OR f.valid_to > ")
                    .push_bind(value::date(as_of))
                    .push(") ORDER BY f.person_id, f.kind, f.agency, f.fact_id");
                let rows = qb.build().fetch_all(&self.pool).await?;
                rows.iter().map(|r| Ok((r.try_get(10)?, stored_fact(r)?))).collect()
            }

            async fn last_person_id(&self) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar("SELECT COALESCE(MAX(person_id), 0) FROM persons").fetch_one(&self.pool).await?)
            }

            /// The backend's own `comparison_facts` (SQLite: on the reader's handle, `sqlite::direct`; PostgreSQL: one
            /// statement over an array of keys).
            async fn comparison_facts_of_persons(
                &self,
                keys: &[crate::security::crypto::PersonKey],
                as_of: chrono::NaiveDate,
            ) -> Result<Vec<crate::store::StoredFact>, StoreError> {
                comparison_facts(self, keys, as_of).await
            }

            async fn list_persons(
                &self,
                filter: &crate::store::PersonFilter,
                after: Option<i64>,
                limit: usize,
            ) -> Result<Vec<(i64, crate::security::crypto::PersonKey)>, StoreError> {
                let mut qb: sqlx::QueryBuilder<Db> =
                    sqlx::QueryBuilder::new("SELECT l.person_id, p.person_key FROM (SELECT DISTINCT person_id");
                crate::store::sql::push_person_filter(&mut qb, filter, value::date(filter.as_of));
                if let Some(a) = after {
                    qb.push(" AND person_id > ").push_bind(a);
                }
                qb.push(" ORDER BY person_id LIMIT ")
                    .push_bind(limit as i64)
                    .push(") l JOIN persons p ON p.person_id = l.person_id ORDER BY l.person_id");
                let rows = qb.build().fetch_all(&self.pool).await?;
                rows.iter().map(|r| Ok((r.try_get(0)?, crate::store::sql::person_key(r, 1, "persons")?))).collect()
            }

            async fn count_persons(&self, filter: &crate::store::PersonFilter) -> Result<i64, StoreError> {
                let mut qb: sqlx::QueryBuilder<Db> = sqlx::QueryBuilder::new("SELECT COUNT(DISTINCT person_id)");
                crate::store::sql::push_person_filter(&mut qb, filter, value::date(filter.as_of));
                Ok(qb.build().fetch_one(&self.pool).await?.try_get(0)?)
            }

            async fn list_standards(&self, year: Option<i64>) -> Result<Vec<crate::store::StandardRow>, StoreError> {
                let rows = sqlx::query(
                    "SELECT year, division_code, item, name, amount, unit, effective_from, source FROM standards \
                     WHERE CAST($1 AS BIGINT) IS NULL OR year = $1 ORDER BY year, division_code, item",
                )
                .bind(year)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(crate::store::StandardRow {
                            year: r.try_get(0)?,
                            division_code: r.try_get(1)?,
                            item: r.try_get(2)?,
                            name: r.try_get(3)?,
                            amount: value::get_text_money(r, 4)?,
                            unit: r.try_get(5)?,
                            effective_from: value::get_text_date(r, 6)?,
                            source: r.try_get(7)?,
                        })
                    })
                    .collect()
            }

            async fn list_divisions(&self) -> Result<Vec<crate::store::DivisionRow>, StoreError> {
                let rows = sqlx::query("SELECT code, name, level, parent_code FROM divisions ORDER BY code")
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok(crate::store::DivisionRow {
                            code: r.try_get(0)?,
                            name: r.try_get(1)?,
                            level: r.try_get(2)?,
                            parent_code: r.try_get(3)?,
                        })
                    })
                    .collect()
            }

            async fn audit_chain_length(&self) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar("SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM audit_events")
                    .fetch_one(&self.pool)
                    .await?)
            }

            async fn audit_count(&self) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM audit_events").fetch_one(&self.pool).await?)
            }

            async fn fact_version_count(&self) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM facts").fetch_one(&self.pool).await?)
            }
        }
    };
}
