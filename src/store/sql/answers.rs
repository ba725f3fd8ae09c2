//! [`FindingAnswerStore`](crate::store::FindingAnswerStore) for both backends (migration 0019, docs/findings.md):
//! answers to medical findings, every version kept. Expanded by `answers_store!(Store)` in each backend's `medical.rs`
//! (next to `medical_store!`, whose `finding_row` and the backend's `FINDING_COLUMNS` it uses); nothing differs
//! between the dialects but the `value` module (instants).

macro_rules! answers_store {
    ($store:ty) => {
        const ANSWER_COLUMNS: &str = "agency, settlement_id, code, version, state, fixed_agency, fixed_fact_id, \
             fixed_source_version, fixed_settlement_id, reason, answered_at, answered_by";

        /// An answer from columns 0–11 ([`ANSWER_COLUMNS`]).
        fn answer_row(r: &<Db as sqlx::Database>::Row) -> Result<crate::store::FindingAnswer, StoreError> {
            use crate::domain::answer::{AnswerState, FindingId, FixedBy};
            const T: &str = "finding_answers";
            let code: String = r.try_get(2)?;
            let state: String = r.try_get(4)?;
            let state = AnswerState::parse(&state).ok_or_else(|| corrupt(T, format!("state {state}")))?;
            let fixed_agency: Option<String> = r.try_get(5)?;
            let fixed_fact_id: Option<String> = r.try_get(6)?;
            let fixed_version: Option<i64> = r.try_get(7)?;
            let fixed_settlement: Option<String> = r.try_get(8)?;
            let fixed_by = match (fixed_agency, fixed_fact_id, fixed_version, fixed_settlement) {
                (Some(agency), Some(fact_id), Some(source_version), None) => {
                    Some(FixedBy::FactVersion { agency, fact_id, source_version })
                }
                (None, None, None, Some(settlement_id)) => Some(FixedBy::Settlement { settlement_id }),
                (None, None, None, None) => None,
                _ => return Err(corrupt(T, "a fix names both or part of a fact version and a settlement")),
            };
            if (state == AnswerState::Fixed) != fixed_by.is_some() {
                return Err(corrupt(T, format!("a {} answer with{} a fix", state.as_str(), if fixed_by.is_some() { "" } else { "out" })));
            }
            Ok(crate::store::FindingAnswer {
                finding: FindingId {
                    agency: r.try_get(0)?,
                    settlement_id: r.try_get(1)?,
                    code: FindingCode::parse(&code).ok_or_else(|| corrupt(T, format!("code {code}")))?,
                },
                version: r.try_get(3)?,
                state,
                fixed_by,
                reason: r.try_get(9)?,
                answered_at: value::get_instant(r, 10)?,
                answered_by: r.try_get(11)?,
            })
        }

        #[async_trait::async_trait]
        impl crate::store::FindingAnswerStore for $store {
            async fn finding(
                &self,
                id: &crate::domain::answer::FindingId,
            ) -> Result<Option<StoredFinding>, StoreError> {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {FINDING_COLUMNS} FROM medical_findings WHERE agency = $1 AND settlement_id = $2 AND code = $3"
                )))
                .bind(&id.agency)
                .bind(&id.settlement_id)
                .bind(id.code.as_str())
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(finding_row).transpose()
            }

            async fn fact_version_person(
                &self,
                agency: &str,
                fact_id: &str,
                source_version: i64,
            ) -> Result<Option<(PersonKey, DateTime<Utc>)>, StoreError> {
                let row = sqlx::query(
                    "SELECT p.person_key, f.recorded_at FROM facts f JOIN persons p ON p.person_id = f.person_id \
                     WHERE f.agency = $1 AND f.fact_id = $2 AND f.source_version = $3",
                )
                .bind(agency)
                .bind(fact_id)
                .bind(source_version)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| Ok((crate::store::sql::person_key(&r, 0, "persons")?, value::get_instant(&r, 1)?)))
                    .transpose()
            }

            async fn settlement_person(
                &self,
                agency: &str,
                settlement_id: &str,
            ) -> Result<Option<(PersonKey, DateTime<Utc>)>, StoreError> {
                let row = sqlx::query(
                    "SELECT person_key, received_at FROM settlements WHERE agency = $1 AND settlement_id = $2",
                )
                .bind(agency)
                .bind(settlement_id)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| Ok((crate::store::sql::person_key(&r, 0, "settlements")?, value::get_instant(&r, 1)?)))
                    .transpose()
            }

            async fn add_finding_answer(
                &self,
                a: &crate::store::FindingAnswer,
                audit: &(dyn Fn(i64) -> AuditRecord + Send + Sync),
            ) -> Result<Option<i64>, StoreError> {
                use crate::domain::answer::FixedBy;
                let id = &a.finding;
                let mut w = self.write().await?;
                let found = sqlx::query(
                    "SELECT 1 FROM medical_findings WHERE agency = $1 AND settlement_id = $2 AND code = $3",
                )
                .bind(&id.agency)
                .bind(&id.settlement_id)
                .bind(id.code.as_str())
                .fetch_optional(&mut *w.tx)
                .await?;
                if found.is_none() {
                    return Ok(None);
                }
                let version: i64 = sqlx::query(
                    "SELECT COALESCE(MAX(version), 0) + 1 FROM finding_answers WHERE agency = $1 AND settlement_id = $2 \
                     AND code = $3",
                )
                .bind(&id.agency)
                .bind(&id.settlement_id)
                .bind(id.code.as_str())
                .fetch_one(&mut *w.tx)
                .await?
                .try_get(0)?;
                let (fa, ff, fv, fs) = match &a.fixed_by {
                    Some(FixedBy::FactVersion { agency, fact_id, source_version }) => {
                        (Some(agency.clone()), Some(fact_id.clone()), Some(*source_version), None)
                    }
                    Some(FixedBy::Settlement { settlement_id }) => (None, None, None, Some(settlement_id.clone())),
                    None => (None, None, None, None),
                };
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO finding_answers ({ANSWER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
                     $11, $12)"
                )))
                .bind(&id.agency)
                .bind(&id.settlement_id)
                .bind(id.code.as_str())
                .bind(version)
                .bind(a.state.as_str())
                .bind(fa)
                .bind(ff)
                .bind(fv)
                .bind(fs)
                .bind(&a.reason)
                .bind(value::instant(a.answered_at))
                .bind(&a.answered_by)
                .execute(&mut *w.tx)
                .await?;
                append_audit(&mut w.tx, &audit(version), value::instant(chrono::Utc::now())).await?;
                w.tx.commit().await?;
                Ok(Some(version))
            }

            async fn finding_answers(
                &self,
                id: &crate::domain::answer::FindingId,
            ) -> Result<Vec<crate::store::FindingAnswer>, StoreError> {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {ANSWER_COLUMNS} FROM finding_answers WHERE agency = $1 AND settlement_id = $2 AND code = $3 \
                     ORDER BY version"
                )))
                .bind(&id.agency)
                .bind(&id.settlement_id)
                .bind(id.code.as_str())
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(answer_row).collect()
            }

            async fn medical_findings_as_of(
                &self,
                from: chrono::NaiveDate,
                to: chrono::NaiveDate,
                known_at: DateTime<Utc>,
                at: DateTime<Utc>,
            ) -> Result<Vec<(StoredFinding, Option<crate::store::FindingAnswer>)>, StoreError> {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {FINDING_COLUMNS} FROM medical_findings WHERE settled_on >= $1 AND settled_on <= $2 \
                     AND detected_at <= $3"
                )))
                .bind(value::date(from))
                .bind(value::date(to))
                .bind(value::instant(known_at))
                .fetch_all(&self.pool)
                .await?;
                let findings = rows.iter().map(finding_row).collect::<Result<Vec<_>, _>>()?;
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM finding_answers a JOIN medical_findings f ON f.agency = a.agency \
                     AND f.settlement_id = a.settlement_id AND f.code = a.code WHERE f.settled_on >= $1 \
                     AND f.settled_on <= $2 AND a.answered_at <= $3 AND a.version = (SELECT MAX(m.version) \
                     FROM finding_answers m WHERE m.agency = a.agency AND m.settlement_id = a.settlement_id \
                     AND m.code = a.code AND m.answered_at <= $3)",
                    ANSWER_COLUMNS.split(", ").map(|c| format!("a.{c}")).collect::<Vec<_>>().join(", ")
                )))
                .bind(value::date(from))
                .bind(value::date(to))
                .bind(value::instant(at))
                .fetch_all(&self.pool)
                .await?;
                let mut answers: std::collections::HashMap<crate::domain::answer::FindingId, crate::store::FindingAnswer> =
                    std::collections::HashMap::new();
                for r in &rows {
                    let a = answer_row(r)?;
                    answers.insert(a.finding.clone(), a);
                }
                Ok(findings
                    .into_iter()
                    .map(|f| {
                        let id = crate::domain::answer::FindingId {
                            agency: f.agency.clone(),
                            settlement_id: f.settlement_id.clone(),
                            code: f.code,
                        };
                        let a = answers.remove(&id);
                        (f, a)
                    })
                    .collect())
            }

            async fn medical_inputs(&self, person: &PersonKey) -> Result<crate::store::MedicalInputs, StoreError> {
                let hash = |table: &'static str, v: Vec<u8>| -> Result<[u8; 32], StoreError> {
                    v.try_into().map_err(|_| corrupt(table, "content_hash length"))
                };
                let mut inputs = crate::store::MedicalInputs::default();
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {SETTLEMENT_COLUMNS}, agency, received_at, content_hash FROM settlements WHERE person_key = $1"
                )))
                .bind(person.as_bytes().to_vec())
                .fetch_all(&self.pool)
                .await?;
                for r in rows {
                    inputs.settlements.push(crate::store::InputSettlement {
                        settlement: settlement_row(&r)?,
                        agency: r.try_get(15)?,
                        received_at: value::get_instant(&r, 16)?,
                        content_hash: hash("settlements", r.try_get(17)?)?,
                    });
                }
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT f.agency, f.fact_id, f.source_version, f.kind, f.program, f.status, f.valid_from, \
                     f.valid_to, f.content_hash, f.recorded_at FROM facts f JOIN persons p ON p.person_id = f.person_id \
                     WHERE p.person_key = $1 AND f.is_current = {} AND f.kind IN ('assistance', 'medical_insurance') \
                     ORDER BY f.agency{b}, f.fact_id{b}",
                    value::TRUE,
                    b = value::BYTE_ORDER
                )))
                .bind(person.as_bytes().to_vec())
                .fetch_all(&self.pool)
                .await?;
                for r in rows {
                    inputs.facts.push(crate::store::InputFact {
                        agency: r.try_get(0)?,
                        fact_id: r.try_get(1)?,
                        source_version: r.try_get(2)?,
                        kind: r.try_get(3)?,
                        program: r.try_get(4)?,
                        status: r.try_get(5)?,
                        valid_from: value::get_date(&r, 6, "facts")?,
                        valid_to: value::get_opt_date(&r, 7, "facts")?,
                        content_hash: hash("facts", r.try_get(8)?)?,
                        recorded_at: value::get_instant(&r, 9)?,
                    });
                }
                Ok(inputs)
            }

            async fn latest_finding_answers(
                &self,
                ids: &[crate::domain::answer::FindingId],
            ) -> Result<Vec<crate::store::FindingAnswer>, StoreError> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let mut qb: sqlx::QueryBuilder<Db> = sqlx::QueryBuilder::new(format!(
                    "SELECT {ANSWER_COLUMNS} FROM finding_answers a WHERE a.version = (SELECT MAX(m.version) FROM \
                     finding_answers m WHERE m.agency = a.agency AND m.settlement_id = a.settlement_id AND m.code = \
                     a.code) AND ("
                ));
                for (i, id) in ids.iter().enumerate() {
                    if i > 0 {
                        qb.push(" OR ");
                    }
                    qb.push("(a.agency = ")
                        .push_bind(id.agency.clone())
                        .push(" AND a.settlement_id = ")
                        .push_bind(id.settlement_id.clone())
                        .push(" AND a.code = ")
                        .push_bind(id.code.as_str())
                        .push(")");
                }
                qb.push(")");
                let rows = qb.build().fetch_all(&self.pool).await?;
                rows.iter().map(answer_row).collect()
            }
        }
    };
}
