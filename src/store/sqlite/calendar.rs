//! Holiday notices loaded by operators, their versions, and the warning deadline changes a load causes (migration
//! 0008; issue 15). The row types are shared with the PostgreSQL backend (`pg/calendar.rs`).

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::Row;

use super::coordination::{WARNING_COLUMNS, warning};
use super::{append_audit, corrupt};
use crate::domain::workdays::{CalendarEntry, DayKind};
use crate::store::contract::*;
use crate::store::plan::same_versions;
use crate::store::rows::*;
use crate::store::{SqliteStore, StoreError, from_micros, to_micros};

pub(super) fn day_kind(table: &'static str, s: &str) -> Result<DayKind, StoreError> {
    s.parse().map_err(|e: crate::domain::workdays::CalendarError| corrupt(table, e.to_string()))
}

fn date(table: &'static str, s: &str) -> Result<NaiveDate, StoreError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| corrupt(table, e.to_string()))
}

#[async_trait]
impl CalendarStore for SqliteStore {
    /// Every version of every year's notice, by year and version.
    async fn calendar_notices(&self) -> Result<Vec<StoredNotice>, StoreError> {
        let heads = sqlx::query(
            "SELECT year, version, source, reason, loaded_at, loaded_by FROM calendar_notices ORDER BY year, version",
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
                    loaded_at: from_micros(r.try_get(4)?),
                    loaded_by: r.try_get(5)?,
                    entries: Vec::new(),
                })
            })
            .collect::<Result<_, StoreError>>()?;
        for r in &days {
            let (year, version): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
            let entry = CalendarEntry::new(
                date("calendar_notice_days", &r.try_get::<String, _>(2)?)?,
                day_kind("calendar_notice_days", &r.try_get::<String, _>(3)?)?,
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
    /// Write one load ([`NoticeLoad`]) in one write transaction: check the versions it was planned from, read the
    /// warnings received since `warnings_since`, run `plan` on them, and store the version, the year's rows, the
    /// deadline changes and the audit event. [`NoticeLoaded::Raced`] and nothing written when another notice was
    /// loaded meanwhile.
    async fn load_calendar_notice(
        &self,
        load: &NoticeLoad,
        plan: DeadlinePlan<'_>,
    ) -> Result<NoticeLoaded, StoreError> {
        let _w = self.writer.lock().await;
        let mut tx = self.write_pool.begin_with("BEGIN IMMEDIATE").await?;
        let held: Vec<(i64, i64)> =
            sqlx::query_as("SELECT year, MAX(version) FROM calendar_notices GROUP BY year ORDER BY year")
                .fetch_all(&mut *tx)
                .await?;
        if !same_versions(&held, &load.expected_versions) {
            return Ok(NoticeLoaded::Raced);
        }
        let year = i64::from(load.year);
        let version = held.iter().find(|(y, _)| *y == year).map_or(0, |(_, v)| *v) + 1;
        let warnings = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {WARNING_COLUMNS} FROM warnings WHERE received_at >= ? ORDER BY received_at, agency, warning_id"
        )))
        .bind(to_micros(load.warnings_since))
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(warning)
        .collect::<Result<Vec<_>, _>>()?;
        let (changes, audit) = plan(&warnings)?;
        let at = to_micros(load.loaded_at);
        sqlx::query(
            "INSERT INTO calendar_notices (year, version, source, reason, loaded_at, loaded_by) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(year)
        .bind(version)
        .bind(&load.source)
        .bind(&load.reason)
        .bind(at)
        .bind(&load.loaded_by)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM work_calendar WHERE year = ?").bind(year).execute(&mut *tx).await?;
        for e in &load.entries {
            let d = e.date.to_string();
            sqlx::query("INSERT INTO calendar_notice_days (year, version, date, kind, name) VALUES (?, ?, ?, ?, ?)")
                .bind(year)
                .bind(version)
                .bind(&d)
                .bind(e.kind.as_str())
                .bind(&e.name)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO work_calendar (date, kind, name, year, source) VALUES (?, ?, ?, ?, ?)")
                .bind(&d)
                .bind(e.kind.as_str())
                .bind(&e.name)
                .bind(year)
                .bind(&load.source)
                .execute(&mut *tx)
                .await?;
        }
        for c in &changes {
            sqlx::query(
                "INSERT INTO warning_deadline_changes (agency, warning_id, calendar_year, calendar_version, \
                 changed_at, old_visit_due, old_decision_due, old_provisional, new_visit_due, new_decision_due, \
                 new_provisional) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&c.agency)
            .bind(&c.warning_id)
            .bind(year)
            .bind(version)
            .bind(at)
            .bind(c.old_visit_due.to_string())
            .bind(c.old_decision_due.to_string())
            .bind(c.old_provisional)
            .bind(c.new_visit_due.to_string())
            .bind(c.new_decision_due.to_string())
            .bind(c.new_provisional)
            .execute(&mut *tx)
            .await?;
        }
        append_audit(&mut tx, &audit, at).await?;
        tx.commit().await?;
        Ok(NoticeLoaded::Loaded { version, changes })
    }
    /// The recorded deadline changes of the warnings with these ids (any agency), oldest first.
    async fn warning_deadline_changes(&self, warning_ids: &[String]) -> Result<Vec<StoredDeadlineChange>, StoreError> {
        let mut out = Vec::new();
        for chunk in warning_ids.chunks(super::ROWS_PER_INSERT) {
            let mut qb: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new(
                "SELECT agency, warning_id, calendar_year, calendar_version, changed_at, old_visit_due, \
                 old_decision_due, old_provisional, new_visit_due, new_decision_due, new_provisional \
                 FROM warning_deadline_changes WHERE warning_id IN (",
            );
            let mut sep = qb.separated(", ");
            for id in chunk {
                sep.push_bind(id.clone());
            }
            qb.push(") ORDER BY changed_at, calendar_year, calendar_version");
            for r in qb.build().fetch_all(&self.pool).await? {
                let t = "warning_deadline_changes";
                out.push(StoredDeadlineChange {
                    change: DeadlineChange {
                        agency: r.try_get(0)?,
                        warning_id: r.try_get(1)?,
                        old_visit_due: date(t, &r.try_get::<String, _>(5)?)?,
                        old_decision_due: date(t, &r.try_get::<String, _>(6)?)?,
                        old_provisional: r.try_get(7)?,
                        new_visit_due: date(t, &r.try_get::<String, _>(8)?)?,
                        new_decision_due: date(t, &r.try_get::<String, _>(9)?)?,
                        new_provisional: r.try_get(10)?,
                    },
                    calendar_year: r.try_get::<i64, _>(2)? as i32,
                    calendar_version: r.try_get(3)?,
                    changed_at: from_micros(r.try_get(4)?),
                });
            }
        }
        out.sort_by_key(|a| (a.changed_at, a.calendar_year));
        Ok(out)
    }
}
