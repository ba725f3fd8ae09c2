//! [`MedicalStore`](crate::store::MedicalStore) for both backends: medical policy versions, settlements and findings
//! (migration 0005, docs/spec/medical.md). Expanded by `medical_store!(Store)` in each backend's `medical.rs`, which
//! keeps the statements that differ: `insert_settlements(conn, fresh, now)` and `write_recheck(conn, writes, now,
//! tally)` (multi-row VALUES and a statement per update on SQLite, UNNEST on PostgreSQL), and the column lists
//! `FINDING_COLUMNS` and `FINDING_AMOUNTS` (`expected_fen, actual_fen`: INTEGER fen on SQLite; `expected, actual`:
//! NUMERIC yuan on PostgreSQL).
//!
//! Every write is one write transaction (`self.write()`): settlements are stored and the persons they touch rechecked
//! in the same transaction as the audit event, so concurrent submissions for one person cannot interleave their
//! running totals, and a rejected or failed batch leaves nothing behind. The recheck's decisions are the shared
//! [`plan_recheck`](crate::store::plan::plan_recheck): a backend loads the state, the plan decides, the backend writes.

macro_rules! medical_store {
    ($store:ty) => {
        const SETTLEMENT_COLUMNS: &str = "settlement_id, person_key, division_code, admitted_on, settled_on, \
             visit_type, in_province, referred, total_cost, policy_scope_cost, basic_paid, critical_illness_paid, \
             medical_assistance_paid, other_paid, out_of_pocket";

        fn finding_row(r: &<Db as sqlx::Database>::Row) -> Result<StoredFinding, StoreError> {
            const T: &str = "medical_findings";
            let code: String = r.try_get(2)?;
            Ok(StoredFinding {
                agency: r.try_get(0)?,
                settlement_id: r.try_get(1)?,
                code: FindingCode::parse(&code).ok_or_else(|| corrupt(T, format!("code {code}")))?,
                person_key: crate::store::sql::person_key(r, 3, T)?,
                division_code: r.try_get(4)?,
                settled_on: value::get_date(r, 5, T)?,
                expected: value::get_opt_money(r, 6, T)?,
                actual: value::get_opt_money(r, 7, T)?,
                policy_version: r.try_get(8)?,
                agency_to_act: r.try_get(9)?,
                detected_at: value::get_instant(r, 10)?,
                resolved_at: value::get_opt_instant(r, 11)?,
            })
        }

        /// A settlement from columns 0–14 ([`SETTLEMENT_COLUMNS`]).
        fn settlement_row(r: &<Db as sqlx::Database>::Row) -> Result<Settlement, StoreError> {
            const T: &str = "settlements";
            let visit: String = r.try_get(5)?;
            let m = |i: usize| value::get_money(r, i, T);
            Ok(Settlement {
                settlement_id: r.try_get(0)?,
                person: *crate::store::sql::person_key(r, 1, T)?.as_bytes(),
                division_code: r.try_get(2)?,
                admitted_on: value::get_date(r, 3, T)?,
                settled_on: value::get_date(r, 4, T)?,
                visit_type: VisitType::parse(&visit).ok_or_else(|| corrupt(T, format!("visit_type {visit}")))?,
                in_province: value::get_flag(r, 6)?,
                referred: value::get_flag(r, 7)?,
                total_cost: m(8)?,
                policy_scope_cost: m(9)?,
                basic_paid: m(10)?,
                critical_illness_paid: m(11)?,
                medical_assistance_paid: m(12)?,
                other_paid: m(13)?,
                out_of_pocket: m(14)?,
            })
        }

        fn push_finding_filter(qb: &mut sqlx::QueryBuilder<Db>, f: &FindingFilter) {
            if !f.include_resolved {
                qb.push(" AND resolved_at IS NULL");
            }
            if let Some(from) = f.from {
                qb.push(" AND settled_on >= ").push_bind(value::date(from));
            }
            if let Some(to) = f.to {
                qb.push(" AND settled_on <= ").push_bind(value::date(to));
            }
            if !f.division_prefix.is_empty() {
                qb.push(" AND division_code >= ")
                    .push_bind(f.division_prefix.clone())
                    .push(" AND division_code < ")
                    .push_bind(format!("{}\u{7f}", f.division_prefix));
            }
            if let Some(code) = f.code {
                qb.push(" AND code = ").push_bind(code.as_str());
            }
            // The latest answer (migration 0019, docs/findings.md).
            const ANSWERS_OF: &str = "FROM finding_answers a WHERE a.agency = medical_findings.agency AND \
                 a.settlement_id = medical_findings.settlement_id AND a.code = medical_findings.code";
            match f.answer {
                None => {}
                Some(crate::domain::answer::AnswerFilter::Unanswered) => {
                    qb.push(format!(" AND NOT EXISTS (SELECT 1 {ANSWERS_OF})"));
                }
                Some(crate::domain::answer::AnswerFilter::State(s)) => {
                    qb.push(format!(" AND (SELECT a.state {ANSWERS_OF} ORDER BY a.version DESC LIMIT 1) = "))
                        .push_bind(s.as_str());
                }
            }
        }

        /// Recheck `persons` inside the open write transaction, [`value::BATCH`] persons at a time: load their state
        /// ([`load_recheck_state`]), decide the difference ([`plan_recheck`]) and write it (`write_recheck`).
        async fn recheck_in_tx(
            conn: &mut <Db as sqlx::Database>::Connection,
            persons: &[PersonKey],
            policies: &[PolicyParams],
            default_area: &str,
            now: DateTime<Utc>,
            report_for: &HashSet<String>,
            tally: &mut RecheckTally,
        ) -> Result<(), StoreError> {
            for chunk in persons.chunks(value::BATCH) {
                let state = load_recheck_state(conn, chunk).await?;
                let writes = plan_recheck(chunk, state, policies, default_area, report_for, tally);
                write_recheck(conn, &writes, value::instant(now), tally).await?;
            }
            Ok(())
        }

        /// The facts, settlements and findings of `chunk` (at most [`value::BATCH`] persons).
        async fn load_recheck_state(
            conn: &mut <Db as sqlx::Database>::Connection,
            chunk: &[PersonKey],
        ) -> Result<RecheckState, StoreError> {
            let mut state = RecheckState::new(chunk);
            // Facts: ACTIVE assistance enrolments and insurance covers (current versions).
            let mut qb: sqlx::QueryBuilder<Db> = sqlx::QueryBuilder::new(format!(
                "SELECT p.person_key, f.kind, f.program, f.status, f.valid_from, f.valid_to FROM persons p \
                 JOIN facts f ON f.person_id = p.person_id WHERE f.is_current = {} \
                 AND f.kind IN ('assistance', 'medical_insurance') AND p.person_key",
                value::TRUE
            ));
            value::push_in(&mut qb, crate::store::sql::key_bytes(chunk));
            for r in qb.build().fetch_all(&mut *conn).await? {
                let k = crate::store::sql::person_key(&r, 0, "facts")?;
                let from = value::get_date(&r, 4, "facts")?;
                let to = value::get_opt_date(&r, 5, "facts")?;
                let kind: String = r.try_get(1)?;
                let program: Option<String> = r.try_get(2)?;
                let status: Option<String> = r.try_get(3)?;
                state.add_fact(&k, &kind, program.as_deref(), status.as_deref(), from, to);
            }
            let mut qb: sqlx::QueryBuilder<Db> =
                sqlx::QueryBuilder::new(format!("SELECT {SETTLEMENT_COLUMNS}, agency FROM settlements WHERE person_key"));
            value::push_in(&mut qb, crate::store::sql::key_bytes(chunk));
            for r in qb.build().fetch_all(&mut *conn).await? {
                state.add_settlement(settlement_row(&r)?, r.try_get(15)?);
            }
            let mut qb: sqlx::QueryBuilder<Db> = sqlx::QueryBuilder::new(format!(
                "SELECT agency, settlement_id, code, {FINDING_AMOUNTS}, policy_version, resolved_at \
                 FROM medical_findings WHERE person_key"
            ));
            value::push_in(&mut qb, crate::store::sql::key_bytes(chunk));
            for r in qb.build().fetch_all(&mut *conn).await? {
                let code: String = r.try_get(2)?;
                state.add_finding(
                    r.try_get(1)?,
                    &code,
                    ExistingFinding {
                        agency: r.try_get(0)?,
                        expected: value::get_opt_fen(&r, 3, "medical_findings")?,
                        actual: value::get_opt_fen(&r, 4, "medical_findings")?,
                        policy_version: r.try_get(5)?,
                        resolved: value::get_opt_instant(&r, 6)?.is_some(),
                    },
                )?;
            }
            Ok(state)
        }

        impl $store {
            /// Add a policy version, with `audit` appended in the same transaction when it was added.
            async fn add_policy(&self, p: &StoredPolicy, audit: Option<&AuditRecord>) -> Result<bool, StoreError> {
                let json = serde_json::to_string(&p.params).map_err(|e| corrupt("medical_policies", e.to_string()))?;
                let mut w = self.write().await?;
                let now = crate::store::from_micros(crate::store::to_micros(Utc::now()));
                let done = sqlx::query(
                    "INSERT INTO medical_policies (pooling_area, effective_from, version, params, example, source, \
                     added_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                )
                .bind(&p.params.pooling_area)
                .bind(value::date(p.params.effective_from))
                .bind(&p.params.version)
                .bind(json)
                .bind(value::flag(p.example))
                .bind(&p.source)
                .bind(value::instant(now))
                .execute(&mut *w.tx)
                .await?;
                let added = done.rows_affected() == 1;
                if let Some(audit) = audit.filter(|_| added) {
                    append_audit(&mut w.tx, audit, value::instant(Utc::now())).await?;
                }
                w.tx.commit().await?;
                Ok(added)
            }
        }

        #[async_trait::async_trait]
        impl crate::store::MedicalStore for $store {
            async fn medical_policies(&self) -> Result<Vec<StoredPolicy>, StoreError> {
                let rows = sqlx::query(
                    "SELECT params, example, source FROM medical_policies ORDER BY pooling_area, effective_from, version",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        let json: String = r.try_get(0)?;
                        let params: PolicyParams =
                            serde_json::from_str(&json).map_err(|e| corrupt("medical_policies", e.to_string()))?;
                        Ok(StoredPolicy { params, example: value::get_flag(r, 1)?, source: r.try_get(2)? })
                    })
                    .collect()
            }

            async fn add_medical_policy(&self, p: &StoredPolicy) -> Result<bool, StoreError> {
                self.add_policy(p, None).await
            }

            async fn add_medical_policy_audited(&self, p: &StoredPolicy, audit: &AuditRecord) -> Result<bool, StoreError> {
                self.add_policy(p, Some(audit)).await
            }

            async fn submit_settlements(
                &self,
                batch: &[NewSettlement],
                persons: &[NewPerson],
                policies: &[PolicyParams],
                default_area: &str,
                audit: &AuditRecord,
                now: DateTime<Utc>,
            ) -> Result<(Vec<SettlementInsert>, RecheckTally), StoreError> {
                // At the stored precision (microseconds), so what is hashed into the audit chain reads back equal.
                let now = crate::store::from_micros(crate::store::to_micros(now));
                let mut w = self.write().await?;

                let mut known: HashMap<(String, String), [u8; 32]> = HashMap::new();
                let mut by_agency: HashMap<&str, Vec<String>> = HashMap::new();
                for s in batch {
                    by_agency.entry(s.agency.as_str()).or_default().push(s.settlement.settlement_id.clone());
                }
                for (agency, ids) in &by_agency {
                    for chunk in ids.chunks(value::IN_LIST) {
                        let mut qb: sqlx::QueryBuilder<Db> =
                            sqlx::QueryBuilder::new("SELECT settlement_id, content_hash FROM settlements WHERE agency = ");
                        qb.push_bind(agency.to_string()).push(" AND settlement_id");
                        value::push_in(&mut qb, chunk.to_vec());
                        for r in qb.build().fetch_all(&mut *w.tx).await? {
                            let h: Vec<u8> = r.try_get(1)?;
                            let h: [u8; 32] = h.try_into().map_err(|_| corrupt("settlements", "content_hash length"))?;
                            known.insert((agency.to_string(), r.try_get(0)?), h);
                        }
                    }
                }
                let mut outcomes = Vec::with_capacity(batch.len());
                let mut fresh: Vec<&NewSettlement> = Vec::new();
                for s in batch {
                    let key = (s.agency.clone(), s.settlement.settlement_id.clone());
                    let outcome = match known.get(&key) {
                        Some(h) if *h == s.content_hash => SettlementInsert::Duplicate,
                        Some(_) => SettlementInsert::Conflict,
                        None => {
                            known.insert(key, s.content_hash);
                            fresh.push(s);
                            SettlementInsert::Accepted
                        }
                    };
                    outcomes.push(outcome);
                }

                insert_persons(&mut w.tx, persons, value::instant(now)).await?;
                insert_settlements(&mut w.tx, &fresh, value::instant(now)).await?;

                let mut touched: Vec<PersonKey> = Vec::new();
                let mut seen = HashSet::new();
                for s in &fresh {
                    let k = PersonKey::from_slice(&s.settlement.person).expect("32 bytes");
                    if seen.insert(k) {
                        touched.push(k);
                    }
                }
                let report_for: HashSet<String> = fresh.iter().map(|s| s.settlement.settlement_id.clone()).collect();
                let mut tally = RecheckTally::default();
                recheck_in_tx(&mut w.tx, &touched, policies, default_area, now, &report_for, &mut tally).await?;
                append_audit(&mut w.tx, audit, value::instant(now)).await?;
                w.tx.commit().await?;
                Ok((outcomes, tally))
            }

            async fn persons_with_settlements(
                &self,
                from: NaiveDate,
                to: NaiveDate,
                prefix: &str,
            ) -> Result<Vec<PersonKey>, StoreError> {
                let rows = sqlx::query(
                    "SELECT DISTINCT person_key FROM settlements WHERE settled_on >= $1 AND settled_on <= $2 \
                     AND division_code >= $3 AND division_code < $4 ORDER BY person_key",
                )
                .bind(value::date(from))
                .bind(value::date(to))
                .bind(prefix)
                .bind(format!("{prefix}\u{7f}"))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(|r| crate::store::sql::person_key(r, 0, "settlements")).collect()
            }

            async fn recheck_persons(
                &self,
                persons: &[PersonKey],
                policies: &[PolicyParams],
                default_area: &str,
                audit: Option<&AuditRecord>,
                now: DateTime<Utc>,
                tally: &mut RecheckTally,
            ) -> Result<(), StoreError> {
                let now = crate::store::from_micros(crate::store::to_micros(now));
                let mut w = self.write().await?;
                recheck_in_tx(&mut w.tx, persons, policies, default_area, now, &HashSet::new(), tally).await?;
                if let Some(a) = audit {
                    append_audit(&mut w.tx, a, value::instant(now)).await?;
                }
                w.tx.commit().await?;
                Ok(())
            }

            async fn list_findings(
                &self,
                filter: &FindingFilter,
                after: Option<&FindingCursor>,
                limit: usize,
            ) -> Result<Vec<StoredFinding>, StoreError> {
                const T: &str = "medical_findings";
                let mut qb: sqlx::QueryBuilder<Db> =
                    sqlx::QueryBuilder::new(format!("SELECT {FINDING_COLUMNS} FROM medical_findings WHERE 1 = 1"));
                push_finding_filter(&mut qb, filter);
                if let Some(c) = after {
                    let on = value::text_date(&c.settled_on, T)
                        .map_err(|_| corrupt(T, format!("cursor date {:?}", c.settled_on)))?;
                    qb.push(" AND (settled_on, settlement_id, code, agency) > (")
                        .push_bind(on)
                        .push(", ")
                        .push_bind(c.settlement_id.clone())
                        .push(", ")
                        .push_bind(c.code.clone())
                        .push(", ")
                        .push_bind(c.agency.clone())
                        .push(")");
                }
                qb.push(" ORDER BY settled_on, settlement_id, code, agency LIMIT ").push_bind(limit as i64);
                let rows = qb.build().fetch_all(&self.pool).await?;
                rows.iter().map(finding_row).collect()
            }

            async fn count_findings(&self, filter: &FindingFilter) -> Result<i64, StoreError> {
                let mut qb: sqlx::QueryBuilder<Db> =
                    sqlx::QueryBuilder::new("SELECT COUNT(*) FROM medical_findings WHERE 1 = 1");
                push_finding_filter(&mut qb, filter);
                Ok(qb.build().fetch_one(&self.pool).await?.try_get(0)?)
            }

            async fn open_findings_by_code(&self) -> Result<BTreeMap<FindingCode, i64>, StoreError> {
                let rows =
                    sqlx::query("SELECT code, COUNT(*) FROM medical_findings WHERE resolved_at IS NULL GROUP BY code")
                        .fetch_all(&self.pool)
                        .await?;
                let mut out = BTreeMap::new();
                for r in rows {
                    let code: String = r.try_get(0)?;
                    let code =
                        FindingCode::parse(&code).ok_or_else(|| corrupt("medical_findings", format!("code {code}")))?;
                    out.insert(code, r.try_get(1)?);
                }
                Ok(out)
            }

            async fn settlement_totals(&self) -> Result<(i64, i128, i128, i128), StoreError> {
                const T: &str = "settlements";
                let r = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT COUNT(*), {}, {}, {} FROM settlements",
                    value::sum_fen("basic_paid"),
                    value::sum_fen("critical_illness_paid"),
                    value::sum_fen("medical_assistance_paid")
                )))
                .fetch_one(&self.pool)
                .await?;
                let at = |k: usize| 1 + k * value::SUM_COLUMNS;
                Ok((
                    r.try_get(0)?,
                    value::get_sum_fen(&r, at(0), T)?,
                    value::get_sum_fen(&r, at(1), T)?,
                    value::get_sum_fen(&r, at(2), T)?,
                ))
            }
        }
    };
}
