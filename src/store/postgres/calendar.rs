//! PostgreSQL: holiday notices, their versions and the warning deadline changes a load causes (see the SQLite twin
//! in `store/sqlite/calendar.rs`; row types in `store/rows.rs`). Dates are DATE, instants TIMESTAMPTZ.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row;

use super::PgStore;
use super::coordination::{WARNING_COLUMNS, warning};
use super::core::append_audit;
use crate::domain::workdays::CalendarEntry;
use crate::store::contract::*;
use crate::store::corrupt;
use crate::store::plan::same_versions;
use crate::store::rows::*;
use crate::store::{DeadlineChange, NoticeLoad, NoticeLoaded, StoredDeadlineChange, StoredNotice, day_kind};
use crate::store::{StoreError, from_micros, to_micros};

#[async_trait]
impl CalendarStore for PgStore {
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
                    loaded_at: r.try_get(4)?,
                    loaded_by: r.try_get(5)?,
                    entries: Vec::new(),
                })
            })
            .collect::<Result<_, StoreError>>()?;
        for r in &days {
            let (year, version): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
            let entry = CalendarEntry::new(
                r.try_get::<NaiveDate, _>(2)?,
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
    /// As on SQLite ([`crate::store::SqliteStore::load_calendar_notice`]), under the hub-wide write lock.
    async fn load_calendar_notice(
        &self,
        load: &NoticeLoad,
        plan: DeadlinePlan<'_>,
    ) -> Result<NoticeLoaded, StoreError> {
        let mut tx = self.begin_write().await?;
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
            "SELECT {WARNING_COLUMNS} FROM warnings WHERE received_at >= $1 ORDER BY received_at, agency, warning_id"
        )))
        .bind(load.warnings_since)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(warning)
        .collect::<Result<Vec<_>, _>>()?;
        let (changes, audit) = plan(&warnings)?;
        // Microsecond precision, as on SQLite.
        let at: DateTime<Utc> = from_micros(to_micros(load.loaded_at));
        sqlx::query(
            "INSERT INTO calendar_notices (year, version, source, reason, loaded_at, loaded_by) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(year)
        .bind(version)
        .bind(&load.source)
        .bind(&load.reason)
        .bind(at)
        .bind(&load.loaded_by)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM work_calendar WHERE year = $1").bind(year).execute(&mut *tx).await?;
        for e in &load.entries {
            sqlx::query(
                "INSERT INTO calendar_notice_days (year, version, date, kind, name) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(year)
            .bind(version)
            .bind(e.date)
            .bind(e.kind.as_str())
            .bind(&e.name)
            .execute(&mut *tx)
            .await?;
            sqlx::query("INSERT INTO work_calendar (date, kind, name, year, source) VALUES ($1, $2, $3, $4, $5)")
                .bind(e.date)
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
                 new_provisional) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(&c.agency)
            .bind(&c.warning_id)
            .bind(year)
            .bind(version)
            .bind(at)
            .bind(c.old_visit_due)
            .bind(c.old_decision_due)
            .bind(c.old_provisional)
            .bind(c.new_visit_due)
            .bind(c.new_decision_due)
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
        let rows = sqlx::query(
            "SELECT agency, warning_id, calendar_year, calendar_version, changed_at, old_visit_due, \
             old_decision_due, old_provisional, new_visit_due, new_decision_due, new_provisional \
             FROM warning_deadline_changes WHERE warning_id = ANY($1) \
             ORDER BY changed_at, calendar_year, calendar_version",
        )
        .bind(warning_ids)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredDeadlineChange {
                    change: DeadlineChange {
                        agency: r.try_get(0)?,
                        warning_id: r.try_get(1)?,
                        old_visit_due: r.try_get(5)?,
                        old_decision_due: r.try_get(6)?,
                        old_provisional: r.try_get(7)?,
                        new_visit_due: r.try_get(8)?,
                        new_decision_due: r.try_get(9)?,
                        new_provisional: r.try_get(10)?,
                    },
                    calendar_year: r.try_get::<i64, _>(2)? as i32,
                    calendar_version: r.try_get(3)?,
                    changed_at: r.try_get(4)?,
                })
            })
            .collect()
    }
}
