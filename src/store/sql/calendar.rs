//! [`CalendarStore`](crate::store::CalendarStore) for both backends (migration 0008): the notices, their versions and
//! the deadline changes a load makes. Expanded by `calendar_store!(Store)` in `store/sqlite/calendar.rs` and
//! `store/postgres/calendar.rs` (module docs of `store::sql` for what the expansion site provides).

macro_rules! calendar_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl crate::store::CalendarStore for $store {
            async fn calendar_notices(&self) -> Result<Vec<StoredNotice>, StoreError> {
                let heads = sqlx::query(
                    "SELECT year, version, source, reason, loaded_at, loaded_by FROM calendar_notices \
                     ORDER BY year, version",
                )
                .fetch_all(&self.pool)
                .await?;
                let days = sqlx::query(
                    "SELECT year, version, date, kind, name FROM calendar_notice_days ORDER BY year, version, date",
                )
                .fetch_all(&self.pool)
                .await?;
                let mut out: Vec<StoredNotice> = heads
                    .iter()
                    .map(|r| {
                        Ok(StoredNotice {
                            year: r.try_get::<i64, _>(0)? as i32,
                            version: r.try_get(1)?,
                            source: r.try_get(2)?,
                            reason: r.try_get(3)?,
                            loaded_at: value::get_instant(r, 4)?,
                            loaded_by: r.try_get(5)?,
                            entries: Vec::new(),
                        })
                    })
                    .collect::<Result<_, StoreError>>()?;
                for r in &days {
                    let (year, version): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
                    let entry = CalendarEntry::new(
                        value::get_date(r, 2, "calendar_notice_days")?,
                        crate::store::day_kind("calendar_notice_days", &r.try_get::<String, _>(3)?)?,
                        r.try_get::<String, _>(4)?,
                    );
                    let n = out
                        .iter_mut()
                        .find(|n| i64::from(n.year) == year && n.version == version)
                        .ok_or_else(|| corrupt("calendar_notice_days", format!("no notice {year} v{version}")))?;
                    n.entries.push(entry);
                }
                Ok(out)
            }

            async fn load_calendar_notice(
                &self,
                load: &NoticeLoad,
                plan: DeadlinePlan<'_>,
            ) -> Result<NoticeLoaded, StoreError> {
                let mut w = self.write().await?;
                let held: Vec<(i64, i64)> =
                    sqlx::query_as("SELECT year, MAX(version) FROM calendar_notices GROUP BY year ORDER BY year")
                        .fetch_all(&mut *w.tx)
                        .await?;
                if !crate::store::plan::same_versions(&held, &load.expected_versions) {
                    return Ok(NoticeLoaded::Raced);
                }
                let year = i64::from(load.year);
                let version = held.iter().find(|(y, _)| *y == year).map_or(0, |(_, v)| *v) + 1;
                let warnings = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {WARNING_COLUMNS} FROM warnings WHERE received_at >= $1 \
                     ORDER BY received_at, agency, warning_id"
                )))
                .bind(value::instant(load.warnings_since))
                .fetch_all(&mut *w.tx)
                .await?
                .iter()
                .map(warning)
                .collect::<Result<Vec<_>, _>>()?;
                let (changes, audit) = plan(&warnings)?;
                // Microsecond precision on both backends.
                let at = crate::store::from_micros(crate::store::to_micros(load.loaded_at));
                sqlx::query(
                    "INSERT INTO calendar_notices (year, version, source, reason, loaded_at, loaded_by) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(year)
                .bind(version)
                .bind(&load.source)
                .bind(&load.reason)
                .bind(value::instant(at))
                .bind(&load.loaded_by)
                .execute(&mut *w.tx)
                .await?;
                sqlx::query("DELETE FROM work_calendar WHERE year = $1").bind(year).execute(&mut *w.tx).await?;
                for e in &load.entries {
                    sqlx::query(
                        "INSERT INTO calendar_notice_days (year, version, date, kind, name) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(year)
                    .bind(version)
                    .bind(value::date(e.date))
                    .bind(e.kind.as_str())
                    .bind(&e.name)
                    .execute(&mut *w.tx)
                    .await?;
                    sqlx::query(
                        "INSERT INTO work_calendar (date, kind, name, year, source) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(value::date(e.date))
                    .bind(e.kind.as_str())
                    .bind(&e.name)
                    .bind(year)
                    .bind(&load.source)
                    .execute(&mut *w.tx)
                    .await?;
                }
                for c in &changes {
                    sqlx::query(
                        "INSERT INTO warning_deadline_changes (agency, warning_id, calendar_year, \
                         calendar_version, changed_at, old_visit_due, old_decision_due, old_provisional, \
                         new_visit_due, new_decision_due, new_provisional) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    )
                    .bind(&c.agency)
                    .bind(&c.warning_id)
                    .bind(year)
                    .bind(version)
                    .bind(value::instant(at))
                    .bind(value::date(c.old_visit_due))
                    .bind(value::date(c.old_decision_due))
                    .bind(c.old_provisional)
                    .bind(value::date(c.new_visit_due))
                    .bind(value::date(c.new_decision_due))
                    .bind(c.new_provisional)
                    .execute(&mut *w.tx)
                    .await?;
                }
                append_audit(&mut w.tx, &audit, value::instant(at)).await?;
                w.tx.commit().await?;
                Ok(NoticeLoaded::Loaded { version, changes })
            }

            async fn warning_deadline_changes(
                &self,
                warning_ids: &[String],
            ) -> Result<Vec<StoredDeadlineChange>, StoreError> {
                let t = "warning_deadline_changes";
                let mut out = Vec::new();
                for chunk in warning_ids.chunks(500) {
                    let mut qb: sqlx::QueryBuilder<Db> = sqlx::QueryBuilder::new(
                        "SELECT agency, warning_id, calendar_year, calendar_version, changed_at, old_visit_due, \
                         old_decision_due, old_provisional, new_visit_due, new_decision_due, new_provisional \
                         FROM warning_deadline_changes WHERE warning_id IN (",
                    );
                    let mut sep = qb.separated(", ");
                    for id in chunk {
                        sep.push_bind(id.clone());
                    }
                    qb.push(")");
                    for r in qb.build().fetch_all(&self.pool).await? {
                        out.push(StoredDeadlineChange {
                            change: DeadlineChange {
                                agency: r.try_get(0)?,
                                warning_id: r.try_get(1)?,
                                old_visit_due: value::get_date(&r, 5, t)?,
                                old_decision_due: value::get_date(&r, 6, t)?,
                                old_provisional: r.try_get(7)?,
                                new_visit_due: value::get_date(&r, 8, t)?,
                                new_decision_due: value::get_date(&r, 9, t)?,
                                new_provisional: r.try_get(10)?,
                            },
                            calendar_year: r.try_get::<i64, _>(2)? as i32,
                            calendar_version: r.try_get(3)?,
                            changed_at: value::get_instant(&r, 4)?,
                        });
                    }
                }
                out.sort_by_key(|c| (c.changed_at, c.calendar_year, c.calendar_version));
                Ok(out)
            }
        }
    };
}
