//! Medical policy versions, settlements and findings (migration 0005, medical.md).
//!
//! Every write runs on the single writer connection: settlements are stored and the persons they touch rechecked in
//! the same transaction (with the audit event), so concurrent submissions for one person cannot interleave their
//! running totals, and a rejected or failed batch leaves nothing behind.

use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::{ROWS_PER_INSERT, append_audit, corrupt, insert_persons};
use crate::crypto::PersonKey;
use crate::domain::medical::{FindingCode, PolicyParams, Settlement, VisitType};
use crate::domain::money::Money;
use crate::store::{AuditRecord, NewPerson, SqliteStore, StoreError, from_micros, to_micros};

use crate::store::contract::*;
use crate::store::plan::*;
use crate::store::rows::*;

const FINDING_COLUMNS: &str = "agency, settlement_id, code, person_key, division_code, settled_on, expected_fen, \
     actual_fen, policy_version, agency_to_act, detected_at, resolved_at";

const SETTLEMENT_COLUMNS: &str = "settlement_id, person_key, division_code, admitted_on, settled_on, visit_type, \
     in_province, referred, total_cost, policy_scope_cost, basic_paid, critical_illness_paid, \
     medical_assistance_paid, other_paid, out_of_pocket";

fn fen(m: Money) -> i64 {
    crate::store::column_fen(m)
}

fn money(table: &'static str, v: i64) -> Result<Money, StoreError> {
    Money::from_fen(v.into()).map_err(|_| corrupt(table, "negative amount"))
}

fn date(table: &'static str, s: &str) -> Result<NaiveDate, StoreError> {
    s.parse().map_err(|_| corrupt(table, format!("bad date {s:?}")))
}

fn key_of(table: &'static str, v: Vec<u8>) -> Result<PersonKey, StoreError> {
    PersonKey::from_slice(&v).ok_or_else(|| corrupt(table, "person_key length"))
}

fn finding_row(r: &SqliteRow) -> Result<StoredFinding, StoreError> {
    let code: String = r.try_get(2)?;
    let opt = |v: Option<i64>| v.map(|v| money("medical_findings", v)).transpose();
    Ok(StoredFinding {
        agency: r.try_get(0)?,
        settlement_id: r.try_get(1)?,
        code: FindingCode::parse(&code).ok_or_else(|| corrupt("medical_findings", format!("code {code}")))?,
        person_key: key_of("medical_findings", r.try_get(3)?)?,
        division_code: r.try_get(4)?,
        settled_on: date("medical_findings", &r.try_get::<String, _>(5)?)?,
        expected: opt(r.try_get(6)?)?,
        actual: opt(r.try_get(7)?)?,
        policy_version: r.try_get(8)?,
        agency_to_act: r.try_get(9)?,
        detected_at: from_micros(r.try_get(10)?),
        resolved_at: r.try_get::<Option<i64>, _>(11)?.map(from_micros),
    })
}

fn settlement_row(r: &SqliteRow) -> Result<Settlement, StoreError> {
    const T: &str = "settlements";
    let visit: String = r.try_get(5)?;
    let m = |i: usize| -> Result<Money, StoreError> { money(T, r.try_get(i)?) };
    Ok(Settlement {
        settlement_id: r.try_get(0)?,
        person: *key_of(T, r.try_get(1)?)?.as_bytes(),
        division_code: r.try_get(2)?,
        admitted_on: date(T, &r.try_get::<String, _>(3)?)?,
        settled_on: date(T, &r.try_get::<String, _>(4)?)?,
        visit_type: VisitType::parse(&visit).ok_or_else(|| corrupt(T, format!("visit_type {visit}")))?,
        in_province: r.try_get::<i64, _>(6)? != 0,
        referred: r.try_get::<i64, _>(7)? != 0,
        total_cost: m(8)?,
        policy_scope_cost: m(9)?,
        basic_paid: m(10)?,
        critical_illness_paid: m(11)?,
        medical_assistance_paid: m(12)?,
        other_paid: m(13)?,
        out_of_pocket: m(14)?,
    })
}

/// Keys of a chunk as bound blobs, for `IN (...)`.
fn push_keys(qb: &mut QueryBuilder<Sqlite>, keys: &[PersonKey]) {
    let mut sep = qb.separated(", ");
    for k in keys {
        sep.push_bind(k.as_bytes().to_vec());
    }
    qb.push(")");
}

#[async_trait]
impl MedicalStore for SqliteStore {
    /// Every medical policy version, oldest first. A stored version that breaks a rule of
    /// [`PolicyParams::validate`] is an error (`Corrupt`), never skipped.
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
                Ok(StoredPolicy { params, example: r.try_get::<i64, _>(1)? != 0, source: r.try_get(2)? })
            })
            .collect()
    }
    /// Add a policy version. Returns `false` (nothing written) if its `version` label or its (pooling area,
    /// effective_from) is already taken: versions are never overwritten.
    async fn add_medical_policy(&self, p: &StoredPolicy) -> Result<bool, StoreError> {
        let _w = self.writer.lock().await;
        let json = serde_json::to_string(&p.params).map_err(|e| corrupt("medical_policies", e.to_string()))?;
        let done = sqlx::query(
            "INSERT OR IGNORE INTO medical_policies (pooling_area, effective_from, version, params, example, source, added_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&p.params.pooling_area)
        .bind(p.params.effective_from.to_string())
        .bind(&p.params.version)
        .bind(json)
        .bind(p.example as i64)
        .bind(&p.source)
        .bind(to_micros(Utc::now()))
        .execute(&self.write_pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
    /// Store a batch of valid settlements (new persons first), recheck every person they touch, and append the
    /// audit event, in one transaction. Returns one [`SettlementInsert`] per settlement, in order, and the
    /// recheck's tally (with the checks of the accepted settlements). A settlement repeated inside the batch is
    /// decided against the first.
    async fn submit_settlements(
        &self,
        batch: &[NewSettlement],
        persons: &[NewPerson],
        policies: &[PolicyParams],
        default_area: &str,
        audit: &AuditRecord,
        now: DateTime<Utc>,
    ) -> Result<(Vec<SettlementInsert>, RecheckTally), StoreError> {
        let _w = self.writer.lock().await;
        let mut tx = self.write_pool.begin_with("BEGIN IMMEDIATE").await?;
        let now_us = to_micros(now);

        let mut known: HashMap<(String, String), [u8; 32]> = HashMap::new();
        let mut by_agency: HashMap<&str, Vec<&str>> = HashMap::new();
        for s in batch {
            by_agency.entry(s.agency.as_str()).or_default().push(s.settlement.settlement_id.as_str());
        }
        for (agency, ids) in &by_agency {
            for chunk in ids.chunks(ROWS_PER_INSERT) {
                let mut qb: QueryBuilder<Sqlite> =
                    QueryBuilder::new("SELECT settlement_id, content_hash FROM settlements WHERE agency = ");
                qb.push_bind(agency.to_string()).push(" AND settlement_id IN (");
                let mut sep = qb.separated(", ");
                for id in chunk {
                    sep.push_bind(id.to_string());
                }
                qb.push(")");
                for r in qb.build().fetch_all(&mut *tx).await? {
                    let h: Vec<u8> = r.try_get(1)?;
                    let h: [u8; 32] = h.try_into().map_err(|_| corrupt("settlements", "content_hash length"))?;
                    known.insert((agency.to_string(), r.try_get(0)?), h);
                }
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

        insert_persons(&mut tx, persons, now_us).await?;
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
                    .push_bind(fen(s.total_cost))
                    .push_bind(fen(s.policy_scope_cost))
                    .push_bind(fen(s.basic_paid))
                    .push_bind(fen(s.critical_illness_paid))
                    .push_bind(fen(s.medical_assistance_paid))
                    .push_bind(fen(s.other_paid))
                    .push_bind(fen(s.out_of_pocket))
                    .push_bind(n.content_hash.to_vec())
                    .push_bind(now_us);
            });
            qb.build().execute(&mut *tx).await?;
        }

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
        recheck_in_tx(&mut tx, &touched, policies, default_area, now_us, &report_for, &mut tally).await?;
        append_audit(&mut tx, audit, now_us).await?;
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
            "SELECT DISTINCT person_key FROM settlements WHERE settled_on >= ? AND settled_on <= ? \
             AND division_code >= ? AND division_code < ? ORDER BY person_key",
        )
        .bind(from.to_string())
        .bind(to.to_string())
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
        let _w = self.writer.lock().await;
        let mut tx = self.write_pool.begin_with("BEGIN IMMEDIATE").await?;
        let now_us = to_micros(now);
        recheck_in_tx(&mut tx, persons, policies, default_area, now_us, &HashSet::new(), tally).await?;
        if let Some(a) = audit {
            append_audit(&mut tx, a, now_us).await?;
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
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new(format!("SELECT {FINDING_COLUMNS} FROM medical_findings WHERE 1 = 1"));
        push_finding_filter(&mut qb, filter);
        if let Some(c) = after {
            qb.push(" AND (settled_on, settlement_id, code, agency) > (")
                .push_bind(c.settled_on.clone())
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
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("SELECT COUNT(*) FROM medical_findings WHERE 1 = 1");
        push_finding_filter(&mut qb, filter);
        Ok(qb.build().fetch_one(&self.pool).await?.try_get(0)?)
    }
    /// Open findings per code (all settlements), for the demo and snapshots.
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
        let r = sqlx::query(
            "SELECT COUNT(*), COALESCE(SUM(basic_paid >> 32), 0), COALESCE(SUM(basic_paid & 4294967295), 0), \
             COALESCE(SUM(critical_illness_paid >> 32), 0), COALESCE(SUM(critical_illness_paid & 4294967295), 0), \
             COALESCE(SUM(medical_assistance_paid >> 32), 0), COALESCE(SUM(medical_assistance_paid & 4294967295), 0) \
             FROM settlements",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((r.try_get(0)?, super::split_sum(&r, 1)?, super::split_sum(&r, 3)?, super::split_sum(&r, 5)?))
    }
}

fn push_finding_filter(qb: &mut QueryBuilder<Sqlite>, f: &FindingFilter) {
    if !f.include_resolved {
        qb.push(" AND resolved_at IS NULL");
    }
    if let Some(from) = f.from {
        qb.push(" AND settled_on >= ").push_bind(from.to_string());
    }
    if let Some(to) = f.to {
        qb.push(" AND settled_on <= ").push_bind(to.to_string());
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

/// Recheck `persons` inside the open write transaction, chunk by chunk: load their state ([`load_recheck_state`]),
/// decide the difference ([`plan_recheck`], shared with PostgreSQL) and write it ([`write_recheck`]).
async fn recheck_in_tx(
    conn: &mut SqliteConnection,
    persons: &[PersonKey],
    policies: &[PolicyParams],
    default_area: &str,
    now: i64,
    report_for: &HashSet<String>,
    tally: &mut RecheckTally,
) -> Result<(), StoreError> {
    for chunk in persons.chunks(ROWS_PER_INSERT) {
        let state = load_recheck_state(conn, chunk).await?;
        let writes = plan_recheck(chunk, state, policies, default_area, report_for, tally);
        write_recheck(conn, &writes, now, tally).await?;
    }
    Ok(())
}

/// The facts, settlements and findings of `chunk` (at most [`ROWS_PER_INSERT`] persons).
async fn load_recheck_state(conn: &mut SqliteConnection, chunk: &[PersonKey]) -> Result<RecheckState, StoreError> {
    let mut state = RecheckState::new(chunk);
    // Facts: ACTIVE assistance enrolments and insurance covers (current versions).
    let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
        "SELECT p.person_key, f.kind, f.program, f.status, f.valid_from, f.valid_to FROM persons p \
         JOIN facts f ON f.person_id = p.person_id WHERE f.is_current = 1 \
         AND f.kind IN ('assistance', 'medical_insurance') AND p.person_key IN (",
    );
    push_keys(&mut qb, chunk);
    for r in qb.build().fetch_all(&mut *conn).await? {
        let k = key_of("facts", r.try_get(0)?)?;
        let from = date("facts", &r.try_get::<String, _>(4)?)?;
        let to = r.try_get::<Option<String>, _>(5)?.map(|s| date("facts", &s)).transpose()?;
        let kind: String = r.try_get(1)?;
        let program: Option<String> = r.try_get(2)?;
        let status: Option<String> = r.try_get(3)?;
        state.add_fact(&k, &kind, program.as_deref(), status.as_deref(), from, to);
    }
    let mut qb: QueryBuilder<Sqlite> =
        QueryBuilder::new(format!("SELECT {SETTLEMENT_COLUMNS}, agency FROM settlements WHERE person_key IN ("));
    push_keys(&mut qb, chunk);
    for r in qb.build().fetch_all(&mut *conn).await? {
        state.add_settlement(settlement_row(&r)?, r.try_get(15)?);
    }
    let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
        "SELECT agency, settlement_id, code, expected_fen, actual_fen, policy_version, resolved_at \
         FROM medical_findings WHERE person_key IN (",
    );
    push_keys(&mut qb, chunk);
    for r in qb.build().fetch_all(&mut *conn).await? {
        let code: String = r.try_get(2)?;
        state.add_finding(
            r.try_get(1)?,
            &code,
            ExistingFinding {
                agency: r.try_get(0)?,
                expected: r.try_get(3)?,
                actual: r.try_get(4)?,
                policy_version: r.try_get(5)?,
                resolved: r.try_get::<Option<i64>, _>(6)?.is_some(),
            },
        )?;
    }
    Ok(state)
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
