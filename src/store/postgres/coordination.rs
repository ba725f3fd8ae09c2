//! PostgreSQL: fund reports, early warnings and the working-day calendar in force, written once for both backends in
//! `store/sql/coordination.rs`; the row readers and the roster sum are PostgreSQL's own.
//!
//! The API keeps dates and amounts as text (`YYYY-MM-DD`, decimal yuan with 2 places); here they are DATE and
//! NUMERIC(18,2), converted at the edges. Instants are TIMESTAMPTZ.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::audit::append_audit;
use super::core::insert_persons;
use super::{PgStore, value};
use crate::domain::workdays::CalendarEntry;
use crate::security::crypto::PersonKey;
use crate::store::corrupt;
use crate::store::{
    AuditRecord, NewFundReport, NewPerson, NewWarning, StoreError, StoredFundReport, StoredWarning, WarningInsert,
    WarningUpdate,
};

const REPORT_COLUMNS: &str =
    "county_code, month, program, version, disbursed_on, amount, recipients, submitted_at, submitted_by";
pub(super) const WARNING_COLUMNS: &str = "agency, warning_id, person_key, division_code, county_code, reason, received_at, \
     state, visited_on, decided_on, decision, decided_program, closed_on";

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

/// Sum, in fen, of the monthly benefits of the county's current ACTIVE assistance facts of `program` (and
/// `residence`, if given) in force on `on`: an exact NUMERIC sum read into `i128` fen.
async fn roster_sum(
    pool: &sqlx::PgPool,
    county: &str,
    program: &str,
    residence: Option<&str>,
    on: NaiveDate,
) -> Result<i128, StoreError> {
    let sum: Decimal = sqlx::query_scalar(
        "SELECT COALESCE(SUM(benefit), 0) FROM facts \
         WHERE is_current AND program = $1 AND status = 'ACTIVE' \
         AND substr(division_code, 1, 6) = $2 AND division_code >= $2 AND division_code < $3 AND valid_from <= $4 \
         AND (valid_to IS NULL OR valid_to > $4) AND ($5::text IS NULL OR residence = $5)",
    )
    .bind(program)
    .bind(county)
    .bind(format!("{county}:"))
    .bind(on)
    .bind(residence)
    .fetch_one(pool)
    .await?;
    super::numeric_sum_to_fen(sum, "facts")
}

coordination_store!(PgStore);
