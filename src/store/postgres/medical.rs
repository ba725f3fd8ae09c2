//! PostgreSQL: the medical operations (see the SQLite twin in `store/sqlite/medical.rs`).
//!
//! Same transactions as on SQLite: settlements are stored and the persons they touch rechecked in one write
//! transaction (with the audit event), under the hub-wide write lock. The recheck's decisions are the shared
//! [`plan_recheck`]; only the loading and writing SQL is here. Money is NUMERIC(18,2) yuan, converted to and from
//! fen at the edges.

use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};

use super::core::{append_audit, insert_persons};
use super::{PgStore, ROWS_PER_STATEMENT, fen_to_numeric, money_to_numeric, numeric_to_fen, numeric_to_money};
use crate::crypto::PersonKey;
use crate::domain::medical::{FindingCode, PolicyParams, Settlement, VisitType};
use crate::store::contract::*;
use crate::store::corrupt;
use crate::store::plan::{
    ExistingFinding, HIGH_BURDEN_WARNING_AGENCY, HIGH_BURDEN_WARNING_REASON, RecheckState, RecheckWrites, plan_recheck,
};
use crate::store::{
    AuditRecord, FindingCursor, FindingFilter, NewPerson, NewSettlement, RecheckTally, SettlementInsert, StoreError,
    StoredFinding, StoredPolicy, from_micros, to_micros,
};

const FINDING_COLUMNS: &str = "agency, settlement_id, code, person_key, division_code, settled_on, expected, \
     actual, policy_version, agency_to_act, detected_at, resolved_at";

const SETTLEMENT_COLUMNS: &str = "settlement_id, person_key, division_code, admitted_on, settled_on, visit_type, \
     in_province, referred, total_cost, policy_scope_cost, basic_paid, critical_illness_paid, \
     medical_assistance_paid, other_paid, out_of_pocket";

fn key_of(table: &'static str, v: Vec<u8>) -> Result<PersonKey, StoreError> {
    PersonKey::from_slice(&v).ok_or_else(|| corrupt(table, "person_key length"))
}

fn key_bytes(keys: &[PersonKey]) -> Vec<Vec<u8>> {
    keys.iter().map(|k| k.as_bytes().to_vec()).collect()
}

fn opt_fen(v: Option<Decimal>) -> Result<Option<i64>, StoreError> {
    v.map(|d| numeric_to_fen(d, "medical_findings")).transpose()
}

fn finding_row(r: &PgRow) -> Result<StoredFinding, StoreError> {
    const T: &str = "medical_findings";
    let code: String = r.try_get(2)?;
    let opt = |v: Option<Decimal>| v.map(|d| numeric_to_money(d, T)).transpose();
    Ok(StoredFinding {
        agency: r.try_get(0)?,
        settlement_id: r.try_get(1)?,
        code: FindingCode::parse(&code).ok_or_else(|| corrupt(T, format!("code {code}")))?,
        person_key: key_of(T, r.try_get(3)?)?,
        division_code: r.try_get(4)?,
        settled_on: r.try_get(5)?,
        expected: opt(r.try_get(6)?)?,
        actual: opt(r.try_get(7)?)?,
        policy_version: r.try_get(8)?,
        agency_to_act: r.try_get(9)?,
        detected_at: r.try_get(10)?,
        resolved_at: r.try_get(11)?,
    })
}

fn settlement_row(r: &PgRow) -> Result<Settlement, StoreError> {
    const T: &str = "settlements";
    let visit: String = r.try_get(5)?;
    let m = |i: usize| numeric_to_money(r.try_get(i)?, T);
    Ok(Settlement {
        settlement_id: r.try_get(0)?,
        person: *key_of(T, r.try_get(1)?)?.as_bytes(),
        division_code: r.try_get(2)?,
        admitted_on: r.try_get(3)?,
        settled_on: r.try_get(4)?,
        visit_type: VisitType::parse(&visit).ok_or_else(|| corrupt(T, format!("visit_type {visit}")))?,
        in_province: r.try_get(6)?,
        referred: r.try_get(7)?,
        total_cost: m(8)?,
        policy_scope_cost: m(9)?,
        basic_paid: m(10)?,
        critical_illness_paid: m(11)?,
        medical_assistance_paid: m(12)?,
        other_paid: m(13)?,
        out_of_pocket: m(14)?,
    })
}

/// `now` at PostgreSQL's precision (microseconds), so what is hashed into the audit chain reads back equal.
fn at_micros(now: DateTime<Utc>) -> DateTime<Utc> {
    from_micros(to_micros(now))
}

#[async_trait]
impl MedicalStore for PgStore {
    /// Every medical policy version, oldest first; a stored version that does not parse is `Corrupt`.
    async fn medical_policies(&self) -> Result<Vec<StoredPolicy>, StoreError> {
        let rows = sqlx::query(
            "SELECT params, example, source FROM medical_policies ORDER BY pooling_area, effective_from, version",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let json: String = r.try_get(0)?;
                let params: PolicyParams =
                    serde_json::from_str(&json).map_err(|e| corrupt("medical_policies", e.to_string()))?;
                Ok(StoredPolicy { params, example: r.try_get(1)?, source: r.try_get(2)? })
            })
            .collect()
    }
    /// Add a policy version; `false` (nothing written) if its version label or (pooling area, effective_from) is
    /// taken.
    async fn add_medical_policy(&self, p: &StoredPolicy) -> Result<bool, StoreError> {
        let json = serde_json::to_string(&p.params).map_err(|e| corrupt("medical_policies", e.to_string()))?;
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "INSERT INTO medical_policies (pooling_area, effective_from, version, params, example, source, added_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(&p.params.pooling_area)
        .bind(p.params.effective_from)
        .bind(&p.params.version)
        .bind(json)
        .bind(p.example)
        .bind(&p.source)
        .bind(at_micros(Utc::now()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }
    /// Store a batch of valid settlements (new persons first), recheck every person they touch, and append the
    /// audit event, in one transaction (same contract as `SqliteStore::submit_settlements`).
    async fn submit_settlements(
        &self,
        batch: &[NewSettlement],
        persons: &[NewPerson],
        policies: &[PolicyParams],
        default_area: &str,
        audit: &AuditRecord,
        now: DateTime<Utc>,
    ) -> Result<(Vec<SettlementInsert>, RecheckTally), StoreError> {
        let now = at_micros(now);
        let mut tx = self.begin_write().await?;

        let mut known: HashMap<(String, String), [u8; 32]> = HashMap::new();
        let mut by_agency: HashMap<&str, Vec<String>> = HashMap::new();
        for s in batch {
            by_agency.entry(s.agency.as_str()).or_default().push(s.settlement.settlement_id.clone());
        }
        for (agency, ids) in &by_agency {
            let rows = sqlx::query(
                "SELECT settlement_id, content_hash FROM settlements WHERE agency = $1 AND settlement_id = ANY($2)",
            )
            .bind(*agency)
            .bind(ids)
            .fetch_all(&mut *tx)
            .await?;
            for r in rows {
                let h: Vec<u8> = r.try_get(1)?;
                let h: [u8; 32] = h.try_into().map_err(|_| corrupt("settlements", "content_hash length"))?;
                known.insert((agency.to_string(), r.try_get(0)?), h);
            }
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut fresh: Vec<&NewSettlement> = Vec::new();
        for s in batch {
            let key = (s.agency.clone(), s.settlement.settlement_id.clone());
            let outcome = match known.get(&key) {
                Some(h) if *h == s.content_hash => SettlementInsert::Duplicate,
                Some(_) => SettlementInsert::Conflict,
                None => {
                    known.insert(key, s.content_hash);
                    fresh.push(s);
                    SettlementInsert::Accepted
                }
            };
            outcomes.push(outcome);
        }

        insert_persons(&mut tx, persons, now).await?;
        insert_settlements(&mut tx, &fresh, now).await?;

        let mut touched: Vec<PersonKey> = Vec::new();
        let mut seen = HashSet::new();
        for s in &fresh {
            let k = PersonKey::from_slice(&s.settlement.person).expect("32 bytes");
            if seen.insert(k) {
                touched.push(k);
            }
        }
        let report_for: HashSet<String> = fresh.iter().map(|s| s.settlement.settlement_id.clone()).collect();
        let mut tally = RecheckTally::default();
        recheck_in_tx(&mut tx, &touched, policies, default_area, now, &report_for, &mut tally).await?;
        append_audit(&mut tx, audit, now).await?;
        tx.commit().await?;
        Ok((outcomes, tally))
    }
    /// Persons (keys, sorted) with a settlement settled in `[from, to]` whose division starts with `prefix`.
    async fn persons_with_settlements(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        prefix: &str,
    ) -> Result<Vec<PersonKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT person_key FROM settlements WHERE settled_on >= $1 AND settled_on <= $2 \
             AND division_code >= $3 AND division_code < $4 ORDER BY person_key",
        )
        .bind(from)
        .bind(to)
        .bind(prefix)
        .bind(format!("{prefix}\u{7f}"))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| key_of("settlements", r.try_get(0)?)).collect()
    }
    /// Recheck `persons` (their whole history) in one transaction, with the audit event.
    async fn recheck_persons(
        &self,
        persons: &[PersonKey],
        policies: &[PolicyParams],
        default_area: &str,
        audit: Option<&AuditRecord>,
        now: DateTime<Utc>,
        tally: &mut RecheckTally,
    ) -> Result<(), StoreError> {
        let now = at_micros(now);
        let mut tx = self.begin_write().await?;
        recheck_in_tx(&mut tx, persons, policies, default_area, now, &HashSet::new(), tally).await?;
        if let Some(a) = audit {
            append_audit(&mut tx, a, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }
    /// Findings matching `filter` after `after`, in (settled_on, settlement_id, code, agency) order.
    async fn list_findings(
        &self,
        filter: &FindingFilter,
        after: Option<&FindingCursor>,
        limit: usize,
    ) -> Result<Vec<StoredFinding>, StoreError> {
        let mut qb: QueryBuilder<Postgres> =
            QueryBuilder::new(format!("SELECT {FINDING_COLUMNS} FROM medical_findings WHERE true"));
        push_finding_filter(&mut qb, filter);
        if let Some(c) = after {
            let on: NaiveDate = c
                .settled_on
                .parse()
                .map_err(|_| corrupt("medical_findings", format!("cursor date {:?}", c.settled_on)))?;
            qb.push(" AND (settled_on, settlement_id, code, agency) > (")
                .push_bind(on)
                .push(", ")
                .push_bind(c.settlement_id.clone())
                .push(", ")
                .push_bind(c.code.clone())
                .push(", ")
                .push_bind(c.agency.clone())
                .push(")");
        }
        qb.push(" ORDER BY settled_on, settlement_id, code, agency LIMIT ").push_bind(limit as i64);
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter().map(finding_row).collect()
    }
    /// Number of findings matching `filter`.
    async fn count_findings(&self, filter: &FindingFilter) -> Result<i64, StoreError> {
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new("SELECT COUNT(*) FROM medical_findings WHERE true");
        push_finding_filter(&mut qb, filter);
        Ok(qb.build().fetch_one(&self.pool).await?.try_get(0)?)
    }
    /// Open findings per code (all settlements).
    async fn open_findings_by_code(&self) -> Result<BTreeMap<FindingCode, i64>, StoreError> {
        let rows = sqlx::query("SELECT code, COUNT(*) FROM medical_findings WHERE resolved_at IS NULL GROUP BY code")
            .fetch_all(&self.pool)
            .await?;
        let mut out = BTreeMap::new();
        for r in rows {
            let code: String = r.try_get(0)?;
            let code = FindingCode::parse(&code).ok_or_else(|| corrupt("medical_findings", format!("code {code}")))?;
            out.insert(code, r.try_get(1)?);
        }
        Ok(out)
    }
    /// Totals paid by tier over all settlements, in fen: (settlements, basic, critical illness, assistance).
    async fn settlement_totals(&self) -> Result<(i64, i128, i128, i128), StoreError> {
        const T: &str = "settlements";
        let r = sqlx::query(
            "SELECT COUNT(*), COALESCE(SUM(basic_paid), 0), COALESCE(SUM(critical_illness_paid), 0), \
             COALESCE(SUM(medical_assistance_paid), 0) FROM settlements",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((
            r.try_get(0)?,
            super::numeric_sum_to_fen(r.try_get(1)?, T)?,
            super::numeric_sum_to_fen(r.try_get(2)?, T)?,
            super::numeric_sum_to_fen(r.try_get(3)?, T)?,
        ))
    }
}

fn push_finding_filter(qb: &mut QueryBuilder<Postgres>, f: &FindingFilter) {
    if !f.include_resolved {
        qb.push(" AND resolved_at IS NULL");
    }
    if let Some(from) = f.from {
        qb.push(" AND settled_on >= ").push_bind(from);
    }
    if let Some(to) = f.to {
        qb.push(" AND settled_on <= ").push_bind(to);
    }
    if !f.division_prefix.is_empty() {
        qb.push(" AND division_code >= ")
            .push_bind(f.division_prefix.clone())
            .push(" AND division_code < ")
            .push_bind(format!("{}\u{7f}", f.division_prefix));
    }
    if let Some(code) = f.code {
        qb.push(" AND code = ").push_bind(code.as_str());
    }
}

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
    .bind(col(&|n| money_to_numeric(n.settlement.total_cost)))
    .bind(col(&|n| money_to_numeric(n.settlement.policy_scope_cost)))
    .bind(col(&|n| money_to_numeric(n.settlement.basic_paid)))
    .bind(col(&|n| money_to_numeric(n.settlement.critical_illness_paid)))
    .bind(col(&|n| money_to_numeric(n.settlement.medical_assistance_paid)))
    .bind(col(&|n| money_to_numeric(n.settlement.other_paid)))
    .bind(col(&|n| money_to_numeric(n.settlement.out_of_pocket)))
    .bind(hash)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Recheck `persons` inside the open write transaction, chunk by chunk: load, [`plan_recheck`], write.
async fn recheck_in_tx(
    conn: &mut PgConnection,
    persons: &[PersonKey],
    policies: &[PolicyParams],
    default_area: &str,
    now: DateTime<Utc>,
    report_for: &HashSet<String>,
    tally: &mut RecheckTally,
) -> Result<(), StoreError> {
    for chunk in persons.chunks(ROWS_PER_STATEMENT) {
        let state = load_recheck_state(conn, chunk).await?;
        let writes = plan_recheck(chunk, state, policies, default_area, report_for, tally);
        write_recheck(conn, &writes, now, tally).await?;
    }
    Ok(())
}

/// The facts, settlements and findings of `chunk`.
async fn load_recheck_state(conn: &mut PgConnection, chunk: &[PersonKey]) -> Result<RecheckState, StoreError> {
    let keys = key_bytes(chunk);
    let mut state = RecheckState::new(chunk);
    // Facts: ACTIVE assistance enrolments and insurance covers (current versions).
    let rows = sqlx::query(
        "SELECT p.person_key, f.kind, f.program, f.status, f.valid_from, f.valid_to FROM persons p \
         JOIN facts f ON f.person_id = p.person_id WHERE f.is_current \
         AND f.kind IN ('assistance', 'medical_insurance') AND p.person_key = ANY($1)",
    )
    .bind(&keys)
    .fetch_all(&mut *conn)
    .await?;
    for r in rows {
        let k = key_of("facts", r.try_get(0)?)?;
        let kind: String = r.try_get(1)?;
        let program: Option<String> = r.try_get(2)?;
        let status: Option<String> = r.try_get(3)?;
        state.add_fact(&k, &kind, program.as_deref(), status.as_deref(), r.try_get(4)?, r.try_get(5)?);
    }
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SETTLEMENT_COLUMNS}, agency FROM settlements WHERE person_key = ANY($1)"
    )))
    .bind(&keys)
    .fetch_all(&mut *conn)
    .await?;
    for r in rows {
        state.add_settlement(settlement_row(&r)?, r.try_get(15)?);
    }
    let rows = sqlx::query(
        "SELECT agency, settlement_id, code, expected, actual, policy_version, resolved_at IS NOT NULL \
         FROM medical_findings WHERE person_key = ANY($1)",
    )
    .bind(&keys)
    .fetch_all(&mut *conn)
    .await?;
    for r in rows {
        let code: String = r.try_get(2)?;
        state.add_finding(
            r.try_get(1)?,
            &code,
            ExistingFinding {
                agency: r.try_get(0)?,
                expected: opt_fen(r.try_get(3)?)?,
                actual: opt_fen(r.try_get(4)?)?,
                policy_version: r.try_get(5)?,
                resolved: r.try_get(6)?,
            },
        )?;
    }
    Ok(state)
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
