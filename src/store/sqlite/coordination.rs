//! SQLite: fund reports, early warnings and the working-day calendar in force (migrations 0003, 0004), written once
//! for both backends in `store/sql/coordination.rs`; the row readers and the roster sum are SQLite's own.

use chrono::NaiveDate;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::{append_audit, corrupt, insert_persons, value};
use crate::domain::workdays::CalendarEntry;
use crate::security::crypto::PersonKey;
use crate::store::rows::*;
use crate::store::{AuditRecord, NewPerson, SqliteStore, StoreError, from_micros};

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

/// Sum, in fen, of the monthly benefits of the county's current assistance facts of `program` (and `residence`, if
/// given) that are ACTIVE and in force on `on` (facts without a benefit add 0). One aggregate over the denormalized
/// `benefit_fen` column, using `facts_current_program`; exact in `i128` ([`super::split_sum`]).
async fn roster_sum(
    pool: &sqlx::SqlitePool,
    county: &str,
    program: &str,
    residence: Option<&str>,
    on: NaiveDate,
) -> Result<i128, StoreError> {
    let d = on.to_string();
    let row = sqlx::query(
        "SELECT COALESCE(SUM(benefit_fen >> 32), 0), COALESCE(SUM(benefit_fen & 4294967295), 0) FROM facts \
         WHERE is_current = 1 AND program = ? AND status = 'ACTIVE' \
         AND substr(division_code, 1, 6) = ? AND division_code >= ? AND division_code < ? AND valid_from <= ? AND (valid_to IS NULL OR valid_to > ?) \
         AND (? IS NULL OR residence = ?)",
    )
    .bind(program)
    .bind(county)
    .bind(county)
    .bind(format!("{county}:"))
    .bind(d.clone())
    .bind(d)
    .bind(residence)
    .bind(residence)
    .fetch_one(pool)
    .await?;
    super::split_sum(&row, 0)
}

coordination_store!(SqliteStore);
