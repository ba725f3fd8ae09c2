//! PostgreSQL: medical policy versions, settlements and findings, written once for both backends in
//! `store/sql/medical.rs`; the settlement insert and the recheck's writes are PostgreSQL's own (one UNNEST statement
//! per kind of write). Money is NUMERIC(18,2) yuan, converted to and from fen at the edges (`value`).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, Postgres, Row};

use super::audit::append_audit;
use super::core::insert_persons;
use super::{PgStore, fen_to_numeric, value};
use crate::domain::medical::{FindingCode, PolicyParams, Settlement, VisitType};
use crate::security::crypto::PersonKey;
use crate::store::corrupt;
use crate::store::plan::{
    ExistingFinding, HIGH_BURDEN_WARNING_AGENCY, HIGH_BURDEN_WARNING_REASON, RecheckState, RecheckWrites, plan_recheck,
};
use crate::store::{
    AuditRecord, FindingCursor, FindingFilter, NewPerson, NewSettlement, RecheckTally, SettlementInsert, StoreError,
    StoredFinding, StoredPolicy,
};

const FINDING_COLUMNS: &str = "agency, settlement_id, code, person_key, division_code, settled_on, expected, \
     actual, policy_version, agency_to_act, detected_at, resolved_at";

/// The expected and the actual amount of a finding (NUMERIC yuan).
const FINDING_AMOUNTS: &str = "expected, actual";

/// The driver the shared SQL runs on.
type Db = Postgres;

medical_store!(PgStore);
answers_store!(PgStore);

/// Insert settlements with UNNEST, one statement.
async fn insert_settlements(
    conn: &mut PgConnection,
    fresh: &[&NewSettlement],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if fresh.is_empty() {
        return Ok(());
    }
    let col = |f: &dyn Fn(&NewSettlement) -> Decimal| -> Vec<Decimal> { fresh.iter().map(|n| f(n)).collect() };
    let agency: Vec<String> = fresh.iter().map(|n| n.agency.clone()).collect();
    let id: Vec<String> = fresh.iter().map(|n| n.settlement.settlement_id.clone()).collect();
    let person: Vec<Vec<u8>> = fresh.iter().map(|n| n.settlement.person.to_vec()).collect();
    let division: Vec<String> = fresh.iter().map(|n| n.settlement.division_code.clone()).collect();
    let admitted: Vec<NaiveDate> = fresh.iter().map(|n| n.settlement.admitted_on).collect();
    let settled: Vec<NaiveDate> = fresh.iter().map(|n| n.settlement.settled_on).collect();
    let visit: Vec<String> = fresh.iter().map(|n| n.settlement.visit_type.as_str().to_owned()).collect();
    let in_province: Vec<bool> = fresh.iter().map(|n| n.settlement.in_province).collect();
    let referred: Vec<bool> = fresh.iter().map(|n| n.settlement.referred).collect();
    let hash: Vec<Vec<u8>> = fresh.iter().map(|n| n.content_hash.to_vec()).collect();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO settlements (agency, {SETTLEMENT_COLUMNS}, content_hash, received_at) \
         SELECT ag, id, pk, dv, ad, st, vt, ip, rf, tc, ps, bp, cp, mp, op, oo, h, $18 FROM UNNEST($1::text[], \
         $2::text[], $3::bytea[], $4::text[], $5::date[], $6::date[], $7::text[], $8::boolean[], $9::boolean[], \
         $10::numeric[], $11::numeric[], $12::numeric[], $13::numeric[], $14::numeric[], $15::numeric[], \
         $16::numeric[], $17::bytea[]) AS t(ag, id, pk, dv, ad, st, vt, ip, rf, tc, ps, bp, cp, mp, op, oo, h)"
    )))
    .bind(agency)
    .bind(id)
    .bind(person)
    .bind(division)
    .bind(admitted)
    .bind(settled)
    .bind(visit)
    .bind(in_province)
    .bind(referred)
    .bind(col(&|n| value::money(n.settlement.total_cost)))
    .bind(col(&|n| value::money(n.settlement.policy_scope_cost)))
    .bind(col(&|n| value::money(n.settlement.basic_paid)))
    .bind(col(&|n| value::money(n.settlement.critical_illness_paid)))
    .bind(col(&|n| value::money(n.settlement.medical_assistance_paid)))
    .bind(col(&|n| value::money(n.settlement.other_paid)))
    .bind(col(&|n| value::money(n.settlement.out_of_pocket)))
    .bind(hash)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Write what [`plan_recheck`] decided, one UNNEST statement per kind of write; the HIGH_BURDEN warnings last
/// (an existing warning is left alone; the ones inserted are counted into `tally.warnings_raised`).
async fn write_recheck(
    conn: &mut PgConnection,
    w: &RecheckWrites,
    now: DateTime<Utc>,
    tally: &mut RecheckTally,
) -> Result<(), StoreError> {
    let money = |v: Option<i64>| v.map(fen_to_numeric);
    if !w.updates.is_empty() {
        let agency: Vec<&str> = w.updates.iter().map(|u| u.agency.as_str()).collect();
        let id: Vec<&str> = w.updates.iter().map(|u| u.settlement_id.as_str()).collect();
        let code: Vec<&str> = w.updates.iter().map(|u| u.code.as_str()).collect();
        let expected: Vec<Option<Decimal>> = w.updates.iter().map(|u| money(u.expected)).collect();
        let actual: Vec<Option<Decimal>> = w.updates.iter().map(|u| money(u.actual)).collect();
        let version: Vec<&str> = w.updates.iter().map(|u| u.policy_version.as_str()).collect();
        sqlx::query(
            "UPDATE medical_findings m SET expected = u.e, actual = u.a, policy_version = u.v, \
             detected_at = CASE WHEN m.resolved_at IS NULL THEN m.detected_at ELSE $1 END, resolved_at = NULL \
             FROM UNNEST($2::text[], $3::text[], $4::text[], $5::numeric[], $6::numeric[], $7::text[]) \
             AS u(ag, id, c, e, a, v) WHERE m.agency = u.ag AND m.settlement_id = u.id AND m.code = u.c",
        )
        .bind(now)
        .bind(agency)
        .bind(id)
        .bind(code)
        .bind(expected)
        .bind(actual)
        .bind(version)
        .execute(&mut *conn)
        .await?;
    }
    if !w.resolves.is_empty() {
        let agency: Vec<&str> = w.resolves.iter().map(|r| r.0.as_str()).collect();
        let id: Vec<&str> = w.resolves.iter().map(|r| r.1.as_str()).collect();
        let code: Vec<&str> = w.resolves.iter().map(|r| r.2.as_str()).collect();
        sqlx::query(
            "UPDATE medical_findings m SET resolved_at = $1 FROM UNNEST($2::text[], $3::text[], $4::text[]) \
             AS u(ag, id, c) WHERE m.agency = u.ag AND m.settlement_id = u.id AND m.code = u.c",
        )
        .bind(now)
        .bind(agency)
        .bind(id)
        .bind(code)
        .execute(&mut *conn)
        .await?;
    }
    if !w.inserts.is_empty() {
        let i = &w.inserts;
        let agency: Vec<&str> = i.iter().map(|f| f.agency.as_str()).collect();
        let id: Vec<&str> = i.iter().map(|f| f.settlement_id.as_str()).collect();
        let code: Vec<&str> = i.iter().map(|f| f.code.as_str()).collect();
        let person: Vec<Vec<u8>> = i.iter().map(|f| f.person.as_bytes().to_vec()).collect();
        let division: Vec<&str> = i.iter().map(|f| f.division_code.as_str()).collect();
        let settled: Vec<Option<NaiveDate>> = i.iter().map(|f| f.settled_on).collect();
        let expected: Vec<Option<Decimal>> = i.iter().map(|f| money(f.expected)).collect();
        let actual: Vec<Option<Decimal>> = i.iter().map(|f| money(f.actual)).collect();
        let version: Vec<&str> = i.iter().map(|f| f.policy_version.as_str()).collect();
        let to_act: Vec<&str> = i.iter().map(|f| f.agency_to_act).collect();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO medical_findings ({FINDING_COLUMNS}) \
             SELECT ag, id, c, pk, dv, st, e, a, v, act, $11, NULL FROM UNNEST($1::text[], $2::text[], $3::text[], \
             $4::bytea[], $5::text[], $6::date[], $7::numeric[], $8::numeric[], $9::text[], $10::text[]) \
             AS t(ag, id, c, pk, dv, st, e, a, v, act)"
        )))
        .bind(agency)
        .bind(id)
        .bind(code)
        .bind(person)
        .bind(division)
        .bind(settled)
        .bind(expected)
        .bind(actual)
        .bind(version)
        .bind(to_act)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    if !w.warnings.is_empty() {
        let h = &w.warnings;
        let id: Vec<&str> = h.iter().map(|x| x.warning_id.as_str()).collect();
        let person: Vec<Vec<u8>> = h.iter().map(|x| x.person.as_bytes().to_vec()).collect();
        let division: Vec<&str> = h.iter().map(|x| x.division_code.as_str()).collect();
        let county: Vec<&str> = h.iter().map(|x| x.county_code.as_str()).collect();
        let hash: Vec<Vec<u8>> = h.iter().map(|x| x.content_hash.to_vec()).collect();
        let done = sqlx::query(
            "INSERT INTO warnings (agency, warning_id, person_key, division_code, county_code, reason, \
             received_at, content_hash, state, pushed_at, updated_at) \
             SELECT $6, id, pk, dv, ct, $7, $8, h, 'RECEIVED', $8, $8 \
             FROM UNNEST($1::text[], $2::bytea[], $3::text[], $4::text[], $5::bytea[]) AS t(id, pk, dv, ct, h) \
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(person)
        .bind(division)
        .bind(county)
        .bind(hash)
        .bind(HIGH_BURDEN_WARNING_AGENCY)
        .bind(HIGH_BURDEN_WARNING_REASON)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        tally.warnings_raised += done.rows_affected() as i64;
    }
    Ok(())
}
