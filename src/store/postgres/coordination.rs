//! PostgreSQL: the coordination operations (see the SQLite twin in `store/sqlite/coordination.rs`).
//!
//! The API keeps dates and amounts as text (`YYYY-MM-DD`, decimal yuan with 2 places); here they are DATE and
//! NUMERIC(18,2), converted at the edges. Instants are TIMESTAMPTZ.

use async_trait::async_trait;
use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::PgStore;
use super::core::{append_audit, insert_persons, now_micros};
use crate::crypto::PersonKey;
use crate::domain::workdays::{CalendarEntry, DayKind};
use crate::store::contract::*;
use crate::store::corrupt;
use crate::store::{
    AuditRecord, NewFundReport, NewPerson, NewWarning, StoreError, StoredFundReport, StoredWarning, WarningInsert,
    WarningUpdate, from_micros, to_micros,
};

const REPORT_COLUMNS: &str =
    "county_code, month, program, version, disbursed_on, amount, recipients, submitted_at, submitted_by";
pub(super) const WARNING_COLUMNS: &str = "agency, warning_id, person_key, division_code, county_code, reason, received_at, \
     state, visited_on, decided_on, decision, decided_program, closed_on";

fn day(s: &str, table: &'static str) -> Result<NaiveDate, StoreError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| corrupt(table, format!("bad date {s:?}")))
}

fn opt_day(s: &Option<String>, table: &'static str) -> Result<Option<NaiveDate>, StoreError> {
    s.as_deref().map(|s| day(s, table)).transpose()
}

fn report(r: &PgRow) -> Result<StoredFundReport, StoreError> {
    let disbursed_on: NaiveDate = r.try_get(4)?;
    let amount: Decimal = r.try_get(5)?;
    Ok(StoredFundReport {
        county_code: r.try_get(0)?,
        month: r.try_get(1)?,
        program: r.try_get(2)?,
        version: r.try_get(3)?,
        disbursed_on: disbursed_on.to_string(),
        amount: format!("{amount:.2}"),
        recipients: r.try_get(6)?,
        submitted_at: r.try_get(7)?,
        submitted_by: r.try_get(8)?,
    })
}

pub(super) fn warning(r: &PgRow) -> Result<StoredWarning, StoreError> {
    let pk: Vec<u8> = r.try_get(2)?;
    let text = |i: usize| -> Result<Option<String>, StoreError> {
        Ok(r.try_get::<Option<NaiveDate>, _>(i)?.map(|d| d.to_string()))
    };
    Ok(StoredWarning {
        agency: r.try_get(0)?,
        warning_id: r.try_get(1)?,
        person_key: PersonKey::from_slice(&pk).ok_or_else(|| corrupt("warnings", "person_key length"))?,
        division_code: r.try_get(3)?,
        county_code: r.try_get(4)?,
        reason: r.try_get(5)?,
        received_at: r.try_get(6)?,
        state: r.try_get(7)?,
        visited_on: text(8)?,
        decided_on: text(9)?,
        decision: r.try_get(10)?,
        decided_program: r.try_get(11)?,
        closed_on: text(12)?,
    })
}

#[async_trait]
impl CoordinationStore for PgStore {
    /// Store `r` as the next version of its (county, month, program); returns the stored version.
    async fn submit_fund_report(&self, r: &NewFundReport) -> Result<StoredFundReport, StoreError> {
        let disbursed_on = day(&r.disbursed_on, "fund_reports")?;
        let amount =
            Decimal::from_str(&r.amount).map_err(|_| corrupt("fund_reports", format!("bad amount {:?}", r.amount)))?;
        let submitted_at = from_micros(to_micros(r.submitted_at));
        let mut tx = self.begin_write().await?;
        let version: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM fund_reports \
             WHERE county_code = $1 AND month = $2 AND program = $3",
        )
        .bind(&r.county_code)
        .bind(&r.month)
        .bind(&r.program)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO fund_reports (county_code, month, program, version, disbursed_on, amount, recipients, \
             submitted_at, submitted_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&r.county_code)
        .bind(&r.month)
        .bind(&r.program)
        .bind(version)
        .bind(disbursed_on)
        .bind(amount)
        .bind(r.recipients)
        .bind(submitted_at)
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
            submitted_at,
            submitted_by: r.submitted_by.clone(),
        })
    }
    /// Every version of the month's reports (of one program, or all), by county, program, version.
    async fn fund_reports(&self, month: &str, program: Option<&str>) -> Result<Vec<StoredFundReport>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REPORT_COLUMNS} FROM fund_reports WHERE month = $1 AND ($2::text IS NULL OR program = $2) \
             ORDER BY county_code, program, version"
        )))
        .bind(month)
        .bind(program)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(report).collect()
    }
    /// Sum, in fen, of the monthly benefits of the county's current ACTIVE assistance facts of `program` (and
    /// `residence`, if given) in force on `on` (see `SqliteStore::roster_benefit_fen`).
    async fn roster_benefit_fen(
        &self,
        county: &str,
        program: &str,
        residence: Option<&str>,
        on: NaiveDate,
    ) -> Result<i128, StoreError> {
        let sum: Decimal = sqlx::query_scalar(
            "SELECT COALESCE(SUM(benefit), 0) FROM facts \
             WHERE is_current AND program = $1 AND status = 'ACTIVE' \
             AND division_code >= $2 AND division_code < $3 AND valid_from <= $4 \
             AND (valid_to IS NULL OR valid_to > $4) AND ($5::text IS NULL OR residence = $5)",
        )
        .bind(program)
        .bind(county)
        .bind(format!("{county}:"))
        .bind(on)
        .bind(residence)
        .fetch_one(&self.pool)
        .await?;
        super::numeric_sum_to_fen(sum, "facts")
    }
    /// Store warnings (new persons first) and the request's audit event in one transaction. A known
    /// (agency, warning_id) is DUPLICATE with the same content hash, CONFLICT otherwise; neither changes anything.
    async fn push_warnings(
        &self,
        warnings: &[NewWarning],
        persons: &[NewPerson],
        audit: &AuditRecord,
    ) -> Result<Vec<WarningInsert>, StoreError> {
        let mut tx = self.begin_write().await?;
        let now = now_micros();
        insert_persons(&mut tx, persons, now).await?;
        let mut out = Vec::with_capacity(warnings.len());
        for w in warnings {
            let existing: Option<Vec<u8>> =
                sqlx::query_scalar("SELECT content_hash FROM warnings WHERE agency = $1 AND warning_id = $2")
                    .bind(&w.agency)
                    .bind(&w.warning_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(h) = existing {
                out.push(if h == w.content_hash { WarningInsert::Duplicate } else { WarningInsert::Conflict });
                continue;
            }
            sqlx::query(
                "INSERT INTO warnings (agency, warning_id, person_key, division_code, county_code, reason, \
                 received_at, content_hash, state, pushed_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'RECEIVED', $9, $9)",
            )
            .bind(&w.agency)
            .bind(&w.warning_id)
            .bind(w.person_key.as_bytes().to_vec())
            .bind(&w.division_code)
            .bind(&w.county_code)
            .bind(&w.reason)
            .bind(w.received_at)
            .bind(w.content_hash.to_vec())
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
            "SELECT {WARNING_COLUMNS} FROM warnings WHERE agency = $1 AND warning_id = $2"
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
        const T: &str = "warnings";
        let (visited_on, decided_on, closed_on) =
            (opt_day(&u.visited_on, T)?, opt_day(&u.decided_on, T)?, opt_day(&u.closed_on, T)?);
        let mut tx = self.begin_write().await?;
        let now = now_micros();
        let done = sqlx::query(
            "UPDATE warnings SET state = $1, visited_on = COALESCE($2, visited_on), \
             decided_on = COALESCE($3, decided_on), decision = COALESCE($4, decision), \
             decided_program = COALESCE($5, decided_program), closed_on = COALESCE($6, closed_on), updated_at = $7 \
             WHERE agency = $8 AND warning_id = $9 AND state = $10",
        )
        .bind(&u.state)
        .bind(visited_on)
        .bind(decided_on)
        .bind(&u.decision)
        .bind(&u.decided_program)
        .bind(closed_on)
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
            "SELECT {WARNING_COLUMNS} FROM warnings WHERE division_code >= $1 AND division_code < $2 \
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
                let date: NaiveDate = r.try_get(0)?;
                let kind: String = r.try_get(1)?;
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
