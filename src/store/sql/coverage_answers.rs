//! [`CoverageAnswerStore`](crate::store::CoverageAnswerStore) for both backends (migration 0020, docs/findings.md):
//! answers to the coverage findings of snapshots, every version kept, and the reads of the findings themselves (the
//! snapshot's `coverage` rows, which never change). Expanded by `coverage_answers_store!(Store)` in each backend's
//! `coverage_answers.rs`; nothing differs between the dialects but the `value` module (dates, instants) and
//! `BYTE_ORDER`.

macro_rules! coverage_answers_store {
    ($store:ty) => {
        const COVERAGE_ANSWER_COLUMNS: &str = "quarter, code, person_key, version, state, fixed_agency, fixed_fact_id, \
             fixed_source_version, reason, answered_at, answered_by";

        /// The same columns qualified by `a.` (a LEFT JOIN's answer).
        const COVERAGE_ANSWER_COLUMNS_A: &str = "a.quarter, a.code, a.person_key, a.version, a.state, a.fixed_agency, \
             a.fixed_fact_id, a.fixed_source_version, a.reason, a.answered_at, a.answered_by";

        /// The columns of a coverage finding: the row and its snapshot's `as_of` and cutoff.
        const COVERAGE_FINDING_COLUMNS: &str =
            "c.quarter, c.code, c.person_key, c.agency_to_act, c.county_code, s.as_of, s.knowledge_cutoff";

        fn key32(table: &'static str, v: Vec<u8>) -> Result<[u8; 32], StoreError> {
            v.try_into().map_err(|_| corrupt(table, "person_key length"))
        }

        /// A coverage finding id from a quarter, a code and a person key column (`table` names where they were read).
        fn coverage_id_at(
            r: &<Db as sqlx::Database>::Row,
            i: usize,
            table: &'static str,
        ) -> Result<crate::domain::answer::CoverageFindingId, StoreError> {
            use sqlx::Row as _;
            let quarter: String = r.try_get(i)?;
            let code: String = r.try_get(i + 1)?;
            Ok(crate::domain::answer::CoverageFindingId {
                quarter: quarter.parse().map_err(|_| corrupt(table, format!("quarter {quarter}")))?,
                code: crate::domain::coverage::RULES
                    .iter()
                    .map(|(c, _)| *c)
                    .find(|c| *c == code)
                    .ok_or_else(|| corrupt(table, format!("code {code}")))?,
                person_key: key32(table, r.try_get(i + 2)?)?,
            })
        }

        /// A coverage finding from columns `i`.. ([`COVERAGE_FINDING_COLUMNS`]).
        fn coverage_finding_at(
            r: &<Db as sqlx::Database>::Row,
            i: usize,
        ) -> Result<crate::store::StoredCoverageFinding, StoreError> {
            use sqlx::Row as _;
            Ok(crate::store::StoredCoverageFinding {
                id: coverage_id_at(r, i, "snapshot_coverage")?,
                agency_to_act: r.try_get(i + 3)?,
                county_code: r.try_get(i + 4)?,
                as_of: value::get_date(r, i + 5, "snapshots")?,
                knowledge_cutoff: value::get_instant(r, i + 6)?,
            })
        }

        /// An answer from columns `i`.. ([`COVERAGE_ANSWER_COLUMNS`]).
        fn coverage_answer_at(
            r: &<Db as sqlx::Database>::Row,
            i: usize,
        ) -> Result<crate::store::CoverageAnswer, StoreError> {
            use crate::domain::answer::{AnswerState, FixedBy};
            use sqlx::Row as _;
            const T: &str = "coverage_answers";
            let state: String = r.try_get(i + 4)?;
            let state = AnswerState::parse(&state).ok_or_else(|| corrupt(T, format!("state {state}")))?;
            let fixed_agency: Option<String> = r.try_get(i + 5)?;
            let fixed_fact_id: Option<String> = r.try_get(i + 6)?;
            let fixed_version: Option<i64> = r.try_get(i + 7)?;
            let fixed_by = match (fixed_agency, fixed_fact_id, fixed_version) {
                (Some(agency), Some(fact_id), Some(source_version)) => {
                    Some(FixedBy::FactVersion { agency, fact_id, source_version })
                }
                (None, None, None) => None,
                _ => return Err(corrupt(T, "a fix names part of a fact version")),
            };
            if (state == AnswerState::Fixed) != fixed_by.is_some() {
                return Err(corrupt(T, format!("a {} answer with a fix or a FIXED without one", state.as_str())));
            }
            Ok(crate::store::CoverageAnswer {
                finding: coverage_id_at(r, i, T)?,
                version: r.try_get(i + 3)?,
                state,
                fixed_by,
                reason: r.try_get(i + 8)?,
                answered_at: value::get_instant(r, i + 9)?,
                answered_by: r.try_get(i + 10)?,
            })
        }

        /// ` WHERE …` of a list or count of coverage findings (`c` the rows, `a` the latest answer).
        fn push_coverage_filter(qb: &mut sqlx::QueryBuilder<Db>, f: &crate::store::CoverageFindingFilter) {
            use crate::domain::answer::AnswerFilter;
            qb.push(" WHERE c.quarter = ").push_bind(f.quarter.to_string());
            if let Some(a) = &f.agency_to_act {
                qb.push(" AND c.agency_to_act = ").push_bind(a.clone());
            }
            if !f.division_prefix.is_empty() {
                // Codes are ASCII digits: prefix ≤ code < prefix + ':'.
                qb.push(" AND c.county_code >= ")
                    .push_bind(f.division_prefix.clone())
                    .push(" AND c.county_code < ")
                    .push_bind(format!("{}:", f.division_prefix));
            }
            if let Some(code) = f.code {
                qb.push(" AND c.code = ").push_bind(code);
            }
            match f.answer {
                None => {}
                Some(AnswerFilter::Unanswered) => {
                    qb.push(" AND a.state IS NULL");
                }
                Some(AnswerFilter::State(s)) => {
                    qb.push(" AND a.state = ").push_bind(s.as_str());
                }
            }
        }

        /// ` FROM …` of a list or count: the rows, their snapshot and their latest answer.
        const COVERAGE_FROM: &str = " FROM snapshot_coverage c JOIN snapshots s ON s.quarter = c.quarter \
             LEFT JOIN coverage_answers a ON a.quarter = c.quarter AND a.code = c.code AND a.person_key = c.person_key \
             AND a.version = (SELECT MAX(m.version) FROM coverage_answers m WHERE m.quarter = c.quarter \
             AND m.code = c.code AND m.person_key = c.person_key)";

        #[async_trait::async_trait]
        impl crate::store::CoverageAnswerStore for $store {
            async fn coverage_finding(
                &self,
                id: &crate::domain::answer::CoverageFindingId,
            ) -> Result<Option<crate::store::StoredCoverageFinding>, StoreError> {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COVERAGE_FINDING_COLUMNS} FROM snapshot_coverage c JOIN snapshots s ON s.quarter = \
                     c.quarter WHERE c.quarter = $1 AND c.code = $2 AND c.person_key = $3"
                )))
                .bind(id.quarter.to_string())
                .bind(id.code)
                .bind(id.person_key.to_vec())
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(|r| coverage_finding_at(r, 0)).transpose()
            }

            async fn fact_version_seen(
                &self,
                agency: &str,
                fact_id: &str,
                source_version: i64,
            ) -> Result<Option<crate::store::FactVersionSeen>, StoreError> {
                let row = sqlx::query(
                    "SELECT p.person_key, f.recorded_at, f.valid_from FROM facts f JOIN persons p ON p.person_id = \
                     f.person_id WHERE f.agency = $1 AND f.fact_id = $2 AND f.source_version = $3",
                )
                .bind(agency)
                .bind(fact_id)
                .bind(source_version)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| {
                    Ok(crate::store::FactVersionSeen {
                        person_key: crate::store::sql::person_key(&r, 0, "persons")?,
                        recorded_at: value::get_instant(&r, 1)?,
                        valid_from: value::get_date(&r, 2, "facts")?,
                    })
                })
                .transpose()
            }

            async fn add_coverage_answer(
                &self,
                a: &crate::store::CoverageAnswer,
                audit: &(dyn Fn(i64) -> crate::store::AuditRecord + Send + Sync),
            ) -> Result<Option<i64>, StoreError> {
                use crate::domain::answer::FixedBy;
                use sqlx::Row as _;
                let id = &a.finding;
                let quarter = id.quarter.to_string();
                let mut w = self.write().await?;
                let found = sqlx::query(
                    "SELECT 1 FROM snapshot_coverage WHERE quarter = $1 AND code = $2 AND person_key = $3",
                )
                .bind(&quarter)
                .bind(id.code)
                .bind(id.person_key.to_vec())
                .fetch_optional(&mut *w.tx)
                .await?;
                if found.is_none() {
                    return Ok(None);
                }
                let version: i64 = sqlx::query(
                    "SELECT COALESCE(MAX(version), 0) + 1 FROM coverage_answers WHERE quarter = $1 AND code = $2 \
                     AND person_key = $3",
                )
                .bind(&quarter)
                .bind(id.code)
                .bind(id.person_key.to_vec())
                .fetch_one(&mut *w.tx)
                .await?
                .try_get(0)?;
                let (fa, ff, fv) = match &a.fixed_by {
                    Some(FixedBy::FactVersion { agency, fact_id, source_version }) => {
                        (Some(agency.clone()), Some(fact_id.clone()), Some(*source_version))
                    }
                    Some(FixedBy::Settlement { .. }) => {
                        return Err(corrupt("coverage_answers", "a coverage finding is fixed by a fact version only"));
                    }
                    None => (None, None, None),
                };
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO coverage_answers ({COVERAGE_ANSWER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, \
                     $8, $9, $10, $11)"
                )))
                .bind(&quarter)
                .bind(id.code)
                .bind(id.person_key.to_vec())
                .bind(version)
                .bind(a.state.as_str())
                .bind(fa)
                .bind(ff)
                .bind(fv)
                .bind(&a.reason)
                .bind(value::instant(a.answered_at))
                .bind(&a.answered_by)
                .execute(&mut *w.tx)
                .await?;
                append_audit(&mut w.tx, &audit(version), value::instant(chrono::Utc::now())).await?;
                w.tx.commit().await?;
                Ok(Some(version))
            }

            async fn coverage_answers(
                &self,
                id: &crate::domain::answer::CoverageFindingId,
            ) -> Result<Vec<crate::store::CoverageAnswer>, StoreError> {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COVERAGE_ANSWER_COLUMNS} FROM coverage_answers WHERE quarter = $1 AND code = $2 \
                     AND person_key = $3 ORDER BY version"
                )))
                .bind(id.quarter.to_string())
                .bind(id.code)
                .bind(id.person_key.to_vec())
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(|r| coverage_answer_at(r, 0)).collect()
            }

            async fn list_coverage_findings(
                &self,
                filter: &crate::store::CoverageFindingFilter,
                after: Option<(&str, [u8; 32])>,
                limit: usize,
            ) -> Result<Vec<(crate::store::StoredCoverageFinding, Option<crate::store::CoverageAnswer>)>, StoreError>
            {
                use sqlx::Row as _;
                let b = value::BYTE_ORDER;
                let mut qb: sqlx::QueryBuilder<Db> = sqlx::QueryBuilder::new(format!(
                    "SELECT {COVERAGE_FINDING_COLUMNS}, {COVERAGE_ANSWER_COLUMNS_A}{COVERAGE_FROM}"
                ));
                push_coverage_filter(&mut qb, filter);
                if let Some((code, key)) = after {
                    qb.push(format!(" AND (c.code{b} > "))
                        .push_bind(code.to_owned())
                        .push(" OR (c.code = ")
                        .push_bind(code.to_owned())
                        .push(" AND c.person_key > ")
                        .push_bind(key.to_vec())
                        .push("))");
                }
                qb.push(format!(" ORDER BY c.code{b}, c.person_key LIMIT "))
                    .push_bind(i64::try_from(limit).unwrap_or(i64::MAX));
                let rows = qb.build().fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|r| {
                        let finding = coverage_finding_at(r, 0)?;
                        let answered: Option<String> = r.try_get(7)?;
                        let answer = answered.map(|_| coverage_answer_at(r, 7)).transpose()?;
                        Ok((finding, answer))
                    })
                    .collect()
            }

            async fn count_coverage_findings(
                &self,
                filter: &crate::store::CoverageFindingFilter,
            ) -> Result<i64, StoreError> {
                use sqlx::Row as _;
                let mut qb: sqlx::QueryBuilder<Db> =
                    sqlx::QueryBuilder::new(format!("SELECT COUNT(*){COVERAGE_FROM}"));
                push_coverage_filter(&mut qb, filter);
                Ok(qb.build().fetch_one(&self.pool).await?.try_get(0)?)
            }

            async fn snapshot_coverage_rows(
                &self,
                quarter: crate::domain::calendar::Quarter,
            ) -> Result<Vec<crate::domain::snapshot::CoverageRow>, StoreError> {
                let quarter = quarter.to_string();
                let quarter = quarter.as_str();
                use sqlx::Row as _;
                let rows = sqlx::query(
                    "SELECT code, person_key, agency_to_act, county_code FROM snapshot_coverage WHERE quarter = $1",
                )
                .bind(quarter)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(crate::domain::snapshot::CoverageRow {
                            code: r.try_get(0)?,
                            person_key: key32("snapshot_coverage", r.try_get(1)?)?,
                            agency_to_act: r.try_get(2)?,
                            county_code: r.try_get(3)?,
                        })
                    })
                    .collect()
            }

            async fn coverage_inputs(
                &self,
                quarter: crate::domain::calendar::Quarter,
                person: &[u8; 32],
            ) -> Result<Vec<crate::store::CoverageInput>, StoreError> {
                let quarter = quarter.to_string();
                let quarter = quarter.as_str();
                use sqlx::Row as _;
                let b = value::BYTE_ORDER;
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT s.agency, s.fact_id, s.source_version, s.kind, s.content_hash, f.payload, f.valid_from, \
                     f.valid_to, f.recorded_at FROM snapshot_statuses s JOIN facts f ON f.agency = s.agency \
                     AND f.fact_id = s.fact_id AND f.source_version = s.source_version \
                     WHERE s.quarter = $1 AND s.person_key = $2 ORDER BY s.agency{b}, s.fact_id{b}"
                )))
                .bind(quarter)
                .bind(person.to_vec())
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        let hash: Vec<u8> = r.try_get(4)?;
                        Ok(crate::store::CoverageInput {
                            agency: r.try_get(0)?,
                            fact_id: r.try_get(1)?,
                            source_version: r.try_get(2)?,
                            kind: r.try_get(3)?,
                            content_hash: hash
                                .try_into()
                                .map_err(|_| corrupt("snapshot_statuses", "content_hash length"))?,
                            payload: r.try_get(5)?,
                            valid_from: value::get_date(r, 6, "facts")?,
                            valid_to: value::get_opt_date(r, 7, "facts")?,
                            recorded_at: value::get_instant(r, 8)?,
                        })
                    })
                    .collect()
            }

            async fn coverage_answers_as_of(
                &self,
                quarter: crate::domain::calendar::Quarter,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<Vec<crate::store::CoverageAnswer>, StoreError> {
                let quarter = quarter.to_string();
                let quarter = quarter.as_str();
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COVERAGE_ANSWER_COLUMNS_A} FROM coverage_answers a WHERE a.quarter = $1 \
                     AND a.answered_at <= $2 AND a.version = (SELECT MAX(m.version) FROM coverage_answers m \
                     WHERE m.quarter = a.quarter AND m.code = a.code AND m.person_key = a.person_key \
                     AND m.answered_at <= $2)"
                )))
                .bind(quarter)
                .bind(value::instant(at))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(|r| coverage_answer_at(r, 0)).collect()
            }
        }
    };
}
