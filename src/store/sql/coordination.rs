//! [`CoordinationStore`](crate::store::CoordinationStore) for both backends: fund reports, early warnings and the
//! working-day calendar in force (migrations 0003, 0004; docs/spec/coordination.md). Expanded by
//! `coordination_store!(Store)` in each backend's `coordination.rs`, which keeps the row readers (`report`, `warning`)
//! and the one statement that differs, `roster_sum` (SQLite sums an INTEGER fen column in two 32-bit halves, PostgreSQL
//! a NUMERIC column).

macro_rules! coordination_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl crate::store::CoordinationStore for $store {
            async fn submit_fund_report(&self, r: &NewFundReport) -> Result<StoredFundReport, StoreError> {
                let disbursed_on = value::text_date(&r.disbursed_on, "fund_reports")?;
                let amount = value::text_money(&r.amount, "fund_reports")?;
                let submitted_at = crate::store::from_micros(crate::store::to_micros(r.submitted_at));
                let mut w = self.write().await?;
                let version: i64 = sqlx::query_scalar(
                    "SELECT CAST(COALESCE(MAX(version), 0) + 1 AS BIGINT) FROM fund_reports \
                     WHERE county_code = $1 AND month = $2 AND program = $3",
                )
                .bind(&r.county_code)
                .bind(&r.month)
                .bind(&r.program)
                .fetch_one(&mut *w.tx)
                .await?;
                sqlx::query(
                    "INSERT INTO fund_reports (county_code, month, program, version, disbursed_on, amount, \
                     recipients, submitted_at, submitted_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&r.county_code)
                .bind(&r.month)
                .bind(&r.program)
                .bind(version)
                .bind(disbursed_on)
                .bind(amount)
                .bind(r.recipients)
                .bind(value::instant(submitted_at))
                .bind(&r.submitted_by)
                .execute(&mut *w.tx)
                .await?;
                w.tx.commit().await?;
                Ok(StoredFundReport {
                    county_code: r.county_code.clone(),
                    month: r.month.clone(),
                    program: r.program.clone(),
                    version,
                    disbursed_on: r.disbursed_on.clone(),
                    amount: r.amount.clone(),
                    recipients: r.recipients,
                    submitted_at,
                    submitted_by: r.submitted_by.clone(),
                })
            }

            async fn fund_reports(
                &self,
                month: crate::domain::calendar::Month,
                program: Option<&str>,
            ) -> Result<Vec<StoredFundReport>, StoreError> {
                let month = month.to_string();
                let month = month.as_str();
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {REPORT_COLUMNS} FROM fund_reports WHERE month = $1 \
                     AND (CAST($2 AS TEXT) IS NULL OR program = $3) ORDER BY county_code, program, version"
                )))
                .bind(month)
                .bind(program)
                .bind(program)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(report).collect()
            }

            async fn roster_benefit_fen(
                &self,
                county: &crate::domain::division::DivisionCode,
                program: &str,
                residence: Option<&str>,
                on: NaiveDate,
            ) -> Result<i128, StoreError> {
                let county = county.as_str();
                roster_sum(&self.pool, county, program, residence, on).await
            }

            async fn push_warnings(
                &self,
                warnings: &[NewWarning],
                persons: &[NewPerson],
                audit: &AuditRecord,
            ) -> Result<Vec<WarningInsert>, StoreError> {
                let now = crate::store::from_micros(crate::store::to_micros(chrono::Utc::now()));
                let mut w = self.write().await?;
                insert_persons(&mut w.tx, persons, value::instant(now)).await?;
                let mut out = Vec::with_capacity(warnings.len());
                for n in warnings {
                    let existing: Option<Vec<u8>> =
                        sqlx::query_scalar("SELECT content_hash FROM warnings WHERE agency = $1 AND warning_id = $2")
                            .bind(&n.agency)
                            .bind(&n.warning_id)
                            .fetch_optional(&mut *w.tx)
                            .await?;
                    if let Some(h) = existing {
                        out.push(if h == n.content_hash { WarningInsert::Duplicate } else { WarningInsert::Conflict });
                        continue;
                    }
                    sqlx::query(
                        "INSERT INTO warnings (agency, warning_id, person_key, division_code, county_code, reason, \
                         received_at, content_hash, state, pushed_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'RECEIVED', $9, $10)",
                    )
                    .bind(&n.agency)
                    .bind(&n.warning_id)
                    .bind(n.person_key.as_bytes().to_vec())
                    .bind(&n.division_code)
                    .bind(&n.county_code)
                    .bind(&n.reason)
                    .bind(value::instant(n.received_at))
                    .bind(n.content_hash.to_vec())
                    .bind(value::instant(now))
                    .bind(value::instant(now))
                    .execute(&mut *w.tx)
                    .await?;
                    out.push(WarningInsert::Accepted);
                }
                append_audit(&mut w.tx, audit, value::instant(now)).await?;
                w.tx.commit().await?;
                Ok(out)
            }

            async fn warning(
                &self,
                agency: &crate::domain::agency::AgencyCode,
                warning_id: &str,
            ) -> Result<Option<StoredWarning>, StoreError> {
                let agency = agency.as_str();
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {WARNING_COLUMNS} FROM warnings WHERE agency = $1 AND warning_id = $2"
                )))
                .bind(agency)
                .bind(warning_id)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(warning).transpose()
            }

            async fn update_warning(
                &self,
                agency: &crate::domain::agency::AgencyCode,
                warning_id: &str,
                from_state: &str,
                u: &WarningUpdate,
                audit: &AuditRecord,
            ) -> Result<bool, StoreError> {
                let agency = agency.as_str();
                const T: &str = "warnings";
                let visited_on = u.visited_on.as_deref().map(|d| value::text_date(d, T)).transpose()?;
                let decided_on = u.decided_on.as_deref().map(|d| value::text_date(d, T)).transpose()?;
                let closed_on = u.closed_on.as_deref().map(|d| value::text_date(d, T)).transpose()?;
                let now = crate::store::from_micros(crate::store::to_micros(chrono::Utc::now()));
                let mut w = self.write().await?;
                let done = sqlx::query(
                    "UPDATE warnings SET state = $1, visited_on = COALESCE($2, visited_on), \
                     decided_on = COALESCE($3, decided_on), decision = COALESCE($4, decision), \
                     decided_program = COALESCE($5, decided_program), closed_on = COALESCE($6, closed_on), \
                     updated_at = $7 WHERE agency = $8 AND warning_id = $9 AND state = $10",
                )
                .bind(&u.state)
                .bind(visited_on)
                .bind(decided_on)
                .bind(&u.decision)
                .bind(&u.decided_program)
                .bind(closed_on)
                .bind(value::instant(now))
                .bind(agency)
                .bind(warning_id)
                .bind(from_state)
                .execute(&mut *w.tx)
                .await?
                .rows_affected();
                if done != 1 {
                    return Ok(false);
                }
                append_audit(&mut w.tx, audit, value::instant(now)).await?;
                w.tx.commit().await?;
                Ok(true)
            }

            async fn list_warnings(&self, prefix: &str) -> Result<Vec<StoredWarning>, StoreError> {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {WARNING_COLUMNS} FROM warnings WHERE division_code >= $1 AND division_code < $2 \
                     ORDER BY received_at, warning_id"
                )))
                .bind(prefix)
                .bind(format!("{prefix}:"))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(warning).collect()
            }

            async fn work_calendar(&self) -> Result<Vec<CalendarEntry>, StoreError> {
                let rows = sqlx::query("SELECT date, kind, name FROM work_calendar ORDER BY date")
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok(CalendarEntry::new(
                            value::get_date(r, 0, "work_calendar")?,
                            crate::store::day_kind("work_calendar", &r.try_get::<String, _>(1)?)?,
                            r.try_get::<String, _>(2)?,
                        ))
                    })
                    .collect()
            }

            async fn coordination_counts(&self) -> Result<(i64, i64), StoreError> {
                let r = sqlx::query(
                    "SELECT CAST((SELECT COUNT(*) FROM fund_reports) AS BIGINT), \
                     CAST((SELECT COUNT(*) FROM warnings) AS BIGINT)",
                )
                .fetch_one(&self.pool)
                .await?;
                Ok((r.try_get(0)?, r.try_get(1)?))
            }
        }
    };
}
