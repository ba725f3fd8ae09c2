//! Fund reports, early warnings and the working-day calendar (migrations 0003, 0004).

use async_trait::async_trait;
use chrono::{NaiveDate, Utc};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::{append_audit, corrupt, insert_persons};
use crate::crypto::PersonKey;
use crate::domain::workdays::{CalendarEntry, DayKind};
use crate::store::contract::*;
use crate::store::rows::*;
use crate::store::{AuditRecord, NewPerson, SqliteStore, StoreError, from_micros, to_micros};

const REPORT_COLUMNS: &str =
    "county_code, month, program, version, disbursed_on, amount, recipients, submitted_at, submitted_by";
pub(super) const WARNING_COLUMNS: &str = "agency, warning_id, person_key, division_code, county_code, reason, received_at, \
     state, visited_on, decided_on, decision, decided_program, closed_on";

fn report(r: &SqliteRow) -> Result<StoredFundReport, StoreError> {
    Ok(StoredFundReport {
        county_code: r.try_get(0)?,
        month: r.try_get(1)?,
        program: r.try_get(2)?,
        version: r.try_get(3)?,
        disbursed_on: r.try_get(4)?,
        amount: r.try_get(5)?,
        recipients: r.try_get(6)?,
        submitted_at: from_micros(r.try_get(7)?),
        submitted_by: r.try_get(8)?,
    })
}

pub(super) fn warning(r: &SqliteRow) -> Result<StoredWarning, StoreError> {
    let pk: Vec<u8> = r.try_get(2)?;
    Ok(StoredWarning {
        agency: r.try_get(0)?,
        warning_id: r.try_get(1)?,
        person_key: PersonKey::from_slice(&pk).ok_or_else(|| corrupt("warnings", "person_key length"))?,
        division_code: r.try_get(3)?,
        county_code: r.try_get(4)?,
        reason: r.try_get(5)?,
        received_at: from_micros(r.try_get(6)?),
        state: r.try_get(7)?,
        visited_on: r.try_get(8)?,
        decided_on: r.try_get(9)?,
        decision: r.try_get(10)?,
        decided_program: r.try_get(11)?,
        closed_on: r.try_get(12)?,
    })
}

#[async_trait]
impl CoordinationStore for SqliteStore {
    /// Store `r` as the next version of its (county, month, program); returns the stored version.
    async fn submit_fund_report(&self, r: &NewFundReport) -> Result<StoredFundReport, StoreError> {
        let _w = self.writer.lock().await;
        let mut tx = self.write_pool.begin_with("BEGIN IMMEDIATE").await?;
        let now = to_micros(r.submitted_at);
        let version: i64 = sqlx::query(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM fund_reports WHERE county_code = ? AND month = ? AND program = ?",
        )
        .bind(&r.county_code)
        .bind(&r.month)
        .bind(&r.program)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        sqlx::query(
            "INSERT INTO fund_reports (county_code, month, program, version, disbursed_on, amount, recipients, \
             submitted_at, submitted_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&r.county_code)
        .bind(&r.month)
        .bind(&r.program)
        .bind(version)
        .bind(&r.disbursed_on)
        .bind(&r.amount)
        .bind(r.recipients)
        .bind(now)
        .bind(&r.submitted_by)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(StoredFundReport {
            county_code: r.county_code.clone(),
            month: r.month.clone(),
            program: r.program.clone(),
            version,
            disbursed_on: r.disbursed_on.clone(),
            amount: r.amount.clone(),
            recipients: r.recipients,
            submitted_at: from_micros(now),
            submitted_by: r.submitted_by.clone(),
        })
    }
    /// Every version of the month's reports (of one program, or all), by county, program, version.
    async fn fund_reports(&self, month: &str, program: Option<&str>) -> Result<Vec<StoredFundReport>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REPORT_COLUMNS} FROM fund_reports WHERE month = ? AND (? IS NULL OR program = ?) \
             ORDER BY county_code, program, version"
        )))
        .bind(month)
        .bind(program)
        .bind(program)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(report).collect()
    }
    /// Sum, in fen, of the monthly benefits of the county's current assistance facts of `program`
    /// (and `residence`, if given) that are ACTIVE and in force on `on` (facts without a benefit add 0).
    /// One aggregate over the denormalized `benefit_fen` column, using `facts_current_program`; exact in `i128`
    /// ([`super::split_sum`]).
    async fn roster_benefit_fen(
        &self,
        county: &str,
        program: &str,
        residence: Option<&str>,
        on: NaiveDate,
    ) -> Result<i128, StoreError> {
        let d = on.to_string();
        let row = sqlx::query(
            "SELECT COALESCE(SUM(benefit_fen >> 32), 0), COALESCE(SUM(benefit_fen & 4294967295), 0) FROM facts \
             WHERE is_current = 1 AND program = ? AND status = 'ACTIVE' \
             AND division_code >= ? AND division_code < ? AND valid_from <= ? AND (valid_to IS NULL OR valid_to > ?) \
             AND (? IS NULL OR residence = ?)",
        )
        .bind(program)
        .bind(county)
        .bind(format!("{county}:"))
        .bind(d.clone())
        .bind(d)
        .bind(residence)
        .bind(residence)
        .fetch_one(&self.pool)
        .await?;
        super::split_sum(&row, 0)
    }
    /// Store warnings (new persons first) and the request's audit event in one transaction. A known
    /// (agency, warning_id) is DUPLICATE with the same content hash, CONFLICT otherwise; neither changes anything.
    async fn push_warnings(
        &self,
        warnings: &[NewWarning],
        persons: &[NewPerson],
        audit: &AuditRecord,
    ) -> Result<Vec<WarningInsert>, StoreError> {
        let _w = self.writer.lock().await;
        let mut tx = self.write_pool.begin_with("BEGIN IMMEDIATE").await?;
        let now = to_micros(Utc::now());
        insert_persons(&mut tx, persons, now).await?;
        let mut out = Vec::with_capacity(warnings.len());
        for w in warnings {
            let existing = sqlx::query("SELECT content_hash FROM warnings WHERE agency = ? AND warning_id = ?")
                .bind(&w.agency)
                .bind(&w.warning_id)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(r) = existing {
                let h: Vec<u8> = r.try_get(0)?;
                out.push(if h == w.content_hash { WarningInsert::Duplicate } else { WarningInsert::Conflict });
                continue;
            }
            sqlx::query(
                "INSERT INTO warnings (agency, warning_id, person_key, division_code, county_code, reason, received_at, \
                 content_hash, state, pushed_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'RECEIVED', ?, ?)",
            )
            .bind(&w.agency)
            .bind(&w.warning_id)
            .bind(w.person_key.as_bytes().to_vec())
            .bind(&w.division_code)
            .bind(&w.county_code)
            .bind(&w.reason)
            .bind(to_micros(w.received_at))
            .bind(w.content_hash.to_vec())
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            out.push(WarningInsert::Accepted);
        }
        append_audit(&mut tx, audit, now).await?;
        tx.commit().await?;
        Ok(out)
    }
    /// One warning.
    async fn warning(&self, agency: &str, warning_id: &str) -> Result<Option<StoredWarning>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {WARNING_COLUMNS} FROM warnings WHERE agency = ? AND warning_id = ?"
        )))
        .bind(agency)
        .bind(warning_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(warning).transpose()
    }
    /// Apply a workflow step if the warning is still in `from_state`, with the audit event, in one transaction.
    /// Returns `false` (and writes nothing) when the state changed meanwhile.
    async fn update_warning(
        &self,
        agency: &str,
        warning_id: &str,
        from_state: &str,
        u: &WarningUpdate,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        let _w = self.writer.lock().await;
        let mut tx = self.write_pool.begin_with("BEGIN IMMEDIATE").await?;
        let now = to_micros(Utc::now());
        let done = sqlx::query(
            "UPDATE warnings SET state = ?, visited_on = COALESCE(?, visited_on), decided_on = COALESCE(?, decided_on), \
             decision = COALESCE(?, decision), decided_program = COALESCE(?, decided_program), \
             closed_on = COALESCE(?, closed_on), updated_at = ? WHERE agency = ? AND warning_id = ? AND state = ?",
        )
        .bind(&u.state)
        .bind(&u.visited_on)
        .bind(&u.decided_on)
        .bind(&u.decision)
        .bind(&u.decided_program)
        .bind(&u.closed_on)
        .bind(now)
        .bind(agency)
        .bind(warning_id)
        .bind(from_state)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done != 1 {
            return Ok(false);
        }
        append_audit(&mut tx, audit, now).await?;
        tx.commit().await?;
        Ok(true)
    }
    /// Warnings whose division starts with `prefix` (empty = all), by received_at, warning_id.
    async fn list_warnings(&self, prefix: &str) -> Result<Vec<StoredWarning>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {WARNING_COLUMNS} FROM warnings WHERE division_code >= ? AND division_code < ? \
             ORDER BY received_at, warning_id"
        )))
        .bind(prefix)
        .bind(format!("{prefix}:"))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(warning).collect()
    }
    /// The official calendar's rows (`work_calendar`).
    async fn work_calendar(&self) -> Result<Vec<CalendarEntry>, StoreError> {
        let rows =
            sqlx::query("SELECT date, kind, name FROM work_calendar ORDER BY date").fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let date: String = r.try_get(0)?;
                let kind: String = r.try_get(1)?;
                let date = NaiveDate::parse_from_str(&date, "%Y-%m-%d")
                    .map_err(|e| corrupt("work_calendar", e.to_string()))?;
                let kind: DayKind = kind
                    .parse()
                    .map_err(|e: crate::domain::workdays::CalendarError| corrupt("work_calendar", e.to_string()))?;
                Ok(CalendarEntry::new(date, kind, r.try_get::<String, _>(2)?))
            })
            .collect()
    }
    /// Number of stored fund report versions and warnings (tests: "nothing stored changed").
    async fn coordination_counts(&self) -> Result<(i64, i64), StoreError> {
        let r = sqlx::query("SELECT (SELECT COUNT(*) FROM fund_reports), (SELECT COUNT(*) FROM warnings)")
            .fetch_one(&self.pool)
            .await?;
        Ok((r.try_get(0)?, r.try_get(1)?))
    }
}
