//! SQLite: medical policy versions, settlements and findings (migration 0005, docs/spec/medical.md), written once for
//! both backends in `store/sql/medical.rs`; the settlement insert and the recheck's writes are SQLite's own (multi-row
//! VALUES, a statement per update). Amounts are INTEGER fen.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::{ROWS_PER_INSERT, append_audit, corrupt, insert_persons, value};
use crate::domain::medical::{FindingCode, PolicyParams, Settlement, VisitType};
use crate::security::crypto::PersonKey;
use crate::store::{AuditRecord, NewPerson, SqliteStore, StoreError};

use crate::store::plan::*;
use crate::store::rows::*;

const FINDING_COLUMNS: &str = "agency, settlement_id, code, person_key, division_code, settled_on, expected_fen, \
     actual_fen, policy_version, agency_to_act, detected_at, resolved_at";

/// The expected and the actual amount of a finding (INTEGER fen).
const FINDING_AMOUNTS: &str = "expected_fen, actual_fen";

/// The driver the shared SQL runs on.
type Db = Sqlite;

medical_store!(SqliteStore);
answers_store!(SqliteStore);

/// Insert settlements in multi-row statements.
async fn insert_settlements(conn: &mut SqliteConnection, fresh: &[&NewSettlement], now: i64) -> Result<(), StoreError> {
    for chunk in fresh.chunks(ROWS_PER_INSERT) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
            "INSERT INTO settlements (agency, {SETTLEMENT_COLUMNS}, content_hash, received_at) "
        ));
        qb.push_values(chunk, |mut b, n| {
            let s = &n.settlement;
            b.push_bind(n.agency.clone())
                .push_bind(s.settlement_id.clone())
                .push_bind(s.person.to_vec())
                .push_bind(s.division_code.clone())
                .push_bind(s.admitted_on.to_string())
                .push_bind(s.settled_on.to_string())
                .push_bind(s.visit_type.as_str())
                .push_bind(s.in_province as i64)
                .push_bind(s.referred as i64)
                .push_bind(value::money(s.total_cost))
                .push_bind(value::money(s.policy_scope_cost))
                .push_bind(value::money(s.basic_paid))
                .push_bind(value::money(s.critical_illness_paid))
                .push_bind(value::money(s.medical_assistance_paid))
                .push_bind(value::money(s.other_paid))
                .push_bind(value::money(s.out_of_pocket))
                .push_bind(n.content_hash.to_vec())
                .push_bind(now);
        });
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Write what [`plan_recheck`] decided: changed or reopened findings updated, vanished ones resolved, new ones
/// inserted, then the HIGH_BURDEN warnings raised (an existing warning is left alone).
async fn write_recheck(
    conn: &mut SqliteConnection,
    w: &RecheckWrites,
    now: i64,
    tally: &mut RecheckTally,
) -> Result<(), StoreError> {
    for u in &w.updates {
        sqlx::query(
            "UPDATE medical_findings SET expected_fen = ?, actual_fen = ?, policy_version = ?, \
             detected_at = CASE WHEN resolved_at IS NULL THEN detected_at ELSE ? END, \
             resolved_at = NULL WHERE agency = ? AND settlement_id = ? AND code = ?",
        )
        .bind(u.expected)
        .bind(u.actual)
        .bind(&u.policy_version)
        .bind(now)
        .bind(&u.agency)
        .bind(&u.settlement_id)
        .bind(u.code.as_str())
        .execute(&mut *conn)
        .await?;
    }
    for (agency, settlement_id, code) in &w.resolves {
        sqlx::query("UPDATE medical_findings SET resolved_at = ? WHERE agency = ? AND settlement_id = ? AND code = ?")
            .bind(now)
            .bind(agency)
            .bind(settlement_id)
            .bind(code.as_str())
            .execute(&mut *conn)
            .await?;
    }
    for part in w.inserts.chunks(ROWS_PER_INSERT) {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new(format!("INSERT INTO medical_findings ({FINDING_COLUMNS}) "));
        qb.push_values(part, |mut b, f| {
            b.push_bind(f.agency.clone())
                .push_bind(f.settlement_id.clone())
                .push_bind(f.code.as_str())
                .push_bind(f.person.as_bytes().to_vec())
                .push_bind(f.division_code.clone())
                .push_bind(f.settled_on.map(|d| d.to_string()).unwrap_or_default())
                .push_bind(f.expected)
                .push_bind(f.actual)
                .push_bind(f.policy_version.clone())
                .push_bind(f.agency_to_act)
                .push_bind(now)
                .push_bind(None::<i64>);
        });
        qb.build().execute(&mut *conn).await?;
    }
    for h in &w.warnings {
        let done = sqlx::query(
            "INSERT OR IGNORE INTO warnings (agency, warning_id, person_key, division_code, county_code, reason, \
             received_at, content_hash, state, pushed_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'RECEIVED', ?, ?)",
        )
        .bind(HIGH_BURDEN_WARNING_AGENCY)
        .bind(&h.warning_id)
        .bind(h.person.as_bytes().to_vec())
        .bind(&h.division_code)
        .bind(&h.county_code)
        .bind(HIGH_BURDEN_WARNING_REASON)
        .bind(now)
        .bind(h.content_hash.to_vec())
        .bind(now)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        tally.warnings_raised += done.rows_affected() as i64;
    }
    Ok(())
}
