//! PostgreSQL: the snapshot operations (SQLite twin: `store/sqlite/snapshot.rs`; the backend-neutral parts both
//! call are in `store/plan/snapshot.rs`: the person pass, the sections, the sealing and the verification; only the
//! SQL differs here).
//!
//! Every ORDER BY on text that feeds a hash or an output uses `COLLATE "C"` (byte order, as SQLite's BINARY), so
//! the same data hashes to the same snapshot on both backends whatever the database's collation.

use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt;
use rust_decimal::Decimal;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::{PgStore, numeric_sum_to_fen, numeric_to_money};
use crate::domain::calendar::Quarter;
use crate::domain::snapshot::{CoverageRow, StatusRow, body_hash, rows_hash};
use crate::domain::summary::{CountyCodeCount, LateCorrection, MedicalSection, Tiers};
use crate::store::contract::*;
use crate::store::corrupt;
use crate::store::plan::{
    PassRow, PersonOrderPass, PreviousCheck, SettlementTotals, agency_stats, aggregates, all_codes, altered_fact,
    header_differences, json_sections, medical_section_of, recompute, seal,
};
use crate::store::{CreateOutcome, SnapshotHeader, SnapshotInput, StoreError, Verification, from_micros, to_micros};

const HEADER_COLUMNS: &str =
    "quarter, as_of, knowledge_cutoff, created_by, previous_quarter, previous_hash, section_hashes, content_hash";

fn hash32(table: &'static str, v: Vec<u8>) -> Result<[u8; 32], StoreError> {
    v.try_into().map_err(|_| corrupt(table, "hash length"))
}

fn header_row(r: &PgRow) -> Result<SnapshotHeader, StoreError> {
    let sections: String = r.try_get(6)?;
    Ok(SnapshotHeader {
        quarter: r.try_get(0)?,
        as_of: r.try_get(1)?,
        knowledge_cutoff: r.try_get(2)?,
        created_by: r.try_get(3)?,
        previous_quarter: r.try_get(4)?,
        previous_hash: hash32("snapshots", r.try_get(5)?)?,
        section_hashes: serde_json::from_str(&sections).map_err(|e| corrupt("snapshots", e.to_string()))?,
        content_hash: hash32("snapshots", r.try_get(7)?)?,
    })
}

async fn header(conn: &mut PgConnection, quarter: &str) -> Result<Option<SnapshotHeader>, StoreError> {
    let r = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {HEADER_COLUMNS} FROM snapshots WHERE quarter = $1")))
        .bind(quarter)
        .fetch_optional(&mut *conn)
        .await?;
    r.as_ref().map(header_row).transpose()
}

/// The statuses section's hash, from the stored rows (canonical order).
async fn statuses_hash(conn: &mut PgConnection, quarter: &str) -> Result<[u8; 32], StoreError> {
    use sha2::Digest;
    let mut rows = sqlx::query(
        "SELECT person_key, agency, fact_id, source_version, kind, county_code, content_hash FROM snapshot_statuses \
         WHERE quarter = $1 ORDER BY person_key, agency COLLATE \"C\", fact_id COLLATE \"C\"",
    )
    .bind(quarter)
    .fetch(&mut *conn);
    let mut h = sha2::Sha256::new();
    while let Some(r) = rows.try_next().await? {
        h.update(status_row(&r)?.canonical_line().as_bytes());
    }
    Ok(h.finalize().into())
}

/// The columns [`pass_row`] reads, from `facts f` joined with `persons p`.
const PASS_COLUMNS: &str = "f.person_id, p.person_key, f.agency, f.fact_id, f.source_version, f.kind, \
     substr(f.division_code, 1, 6), f.content_hash, f.payload, p.id_cipher";

fn pass_row(r: &sqlx::postgres::PgRow) -> Result<PassRow, StoreError> {
    Ok(PassRow {
        person_id: r.try_get(0)?,
        status: StatusRow {
            person_key: hash32("persons", r.try_get(1)?)?,
            agency: r.try_get(2)?,
            fact_id: r.try_get(3)?,
            source_version: r.try_get::<i64, _>(4)? as u64,
            kind: r.try_get(5)?,
            county_code: r.try_get(6)?,
            content_hash: hash32("facts", r.try_get(7)?)?,
        },
        payload: r.try_get(8)?,
        cipher: r.try_get(9)?,
    })
}

/// A status row from columns 0–6: person_key, agency, fact_id, source_version, kind, county_code, content_hash.
fn status_row(r: &PgRow) -> Result<StatusRow, StoreError> {
    Ok(StatusRow {
        person_key: hash32("snapshot_statuses", r.try_get(0)?)?,
        agency: r.try_get(1)?,
        fact_id: r.try_get(2)?,
        source_version: r.try_get::<i64, _>(3)? as u64,
        kind: r.try_get(4)?,
        county_code: r.try_get(5)?,
        content_hash: hash32("snapshot_statuses", r.try_get(6)?)?,
    })
}

async fn coverage_hash(conn: &mut PgConnection, quarter: &str) -> Result<[u8; 32], StoreError> {
    let rows = sqlx::query(
        "SELECT code, person_key, agency_to_act, county_code FROM snapshot_coverage WHERE quarter = $1 \
         ORDER BY code COLLATE \"C\", person_key",
    )
    .bind(quarter)
    .fetch_all(&mut *conn)
    .await?;
    let mut lines = Vec::with_capacity(rows.len());
    for r in rows {
        lines.push(
            CoverageRow {
                code: r.try_get(0)?,
                person_key: hash32("snapshot_coverage", r.try_get(1)?)?,
                agency_to_act: r.try_get(2)?,
                county_code: r.try_get(3)?,
            }
            .canonical_line(),
        );
    }
    Ok(rows_hash(lines.into_iter()))
}

/// Every section's hash recomputed from what is stored (creation and verification alike).
async fn section_hashes(conn: &mut PgConnection, quarter: &str) -> Result<BTreeMap<String, [u8; 32]>, StoreError> {
    let mut out = BTreeMap::new();
    out.insert("statuses".to_owned(), statuses_hash(conn, quarter).await?);
    out.insert("coverage".to_owned(), coverage_hash(conn, quarter).await?);
    let rows = sqlx::query("SELECT section, body FROM snapshot_sections WHERE quarter = $1")
        .bind(quarter)
        .fetch_all(&mut *conn)
        .await?;
    for r in rows {
        let name: String = r.try_get(0)?;
        let body: String = r.try_get(1)?;
        out.insert(name, body_hash(&body));
    }
    Ok(out)
}

#[async_trait]
impl SnapshotStore for PgStore {
    /// Freeze a quarter (same contract as `SqliteStore::create_snapshot`). The write lock makes concurrent creates
    /// on several replicas behave as on one: the first creates, the others find its row.
    async fn create_snapshot(&self, input: SnapshotInput<'_>) -> Result<CreateOutcome, StoreError> {
        let mut tx = self.begin_write().await?;
        let q = input.quarter.as_str();
        if let Some(h) = header(&mut tx, q).await? {
            return Ok(CreateOutcome::AlreadyExists(h));
        }
        let later: Option<String> =
            sqlx::query_scalar("SELECT MAX(quarter COLLATE \"C\") FROM snapshots WHERE quarter > $1 COLLATE \"C\"")
                .bind(q)
                .fetch_one(&mut *tx)
                .await?;
        if let Some(l) = later {
            return Ok(CreateOutcome::LaterExists(l));
        }
        let previous: Option<SnapshotHeader> = {
            let r = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {HEADER_COLUMNS} FROM snapshots WHERE quarter < $1 COLLATE \"C\" \
                 ORDER BY quarter COLLATE \"C\" DESC LIMIT 1"
            )))
            .bind(q)
            .fetch_optional(&mut *tx)
            .await?;
            r.as_ref().map(header_row).transpose()?
        };
        let as_of = input.as_of;
        // Microsecond precision, as stored and as hashed.
        let cutoff_micros = to_micros(input.cutoff);
        let cutoff: DateTime<Utc> = from_micros(cutoff_micros);
        let prev_cutoff: Option<DateTime<Utc>> = previous.as_ref().map(|p| p.knowledge_cutoff);

        let started = std::time::Instant::now();
        // Section 1: statuses: the versions current at the cutoff (recorded by then and not yet superseded; a
        // correction recorded after the cutoff must not take its record out of the quarter).
        sqlx::query(
            "INSERT INTO snapshot_statuses (quarter, person_key, agency, fact_id, source_version, kind, county_code, \
             content_hash) SELECT $1, p.person_key, f.agency, f.fact_id, f.source_version, f.kind, \
             substr(f.division_code, 1, 6), f.content_hash FROM facts f JOIN persons p ON p.person_id = f.person_id \
             WHERE (f.is_current OR f.superseded_at > $2) AND f.recorded_at <= $2 \
             AND f.valid_from <= $3 AND (f.valid_to IS NULL OR f.valid_to > $3)",
        )
        .bind(q)
        .bind(cutoff)
        .bind(as_of)
        .execute(&mut *tx)
        .await?;
        tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "snapshot: statuses copied");

        // One pass over the same versions, person by person in `person_id` order: aggregates and coverage (the
        // current versions along `facts_current_person`, the few superseded after the cutoff by `facts_superseded`).
        let later = {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {PASS_COLUMNS} FROM facts f JOIN persons p ON p.person_id = f.person_id \
                 WHERE NOT f.is_current AND f.superseded_at > $1 AND f.recorded_at <= $1 AND f.valid_from <= $2 \
                 AND (f.valid_to IS NULL OR f.valid_to > $2)"
            )))
            .bind(cutoff)
            .bind(as_of)
            .fetch_all(&mut *tx)
            .await?;
            rows.iter().map(pass_row).collect::<Result<Vec<_>, _>>()?
        };
        let mut pass = PersonOrderPass::new(&input, later);
        {
            let mut rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {PASS_COLUMNS} FROM facts f JOIN persons p ON p.person_id = f.person_id \
                 WHERE f.is_current AND f.recorded_at <= $1 AND f.valid_from <= $2 \
                 AND (f.valid_to IS NULL OR f.valid_to > $2) ORDER BY f.person_id"
            )))
            .bind(cutoff)
            .bind(as_of)
            .fetch(&mut *tx);
            while let Some(r) = rows.try_next().await? {
                pass.push(pass_row(&r)?)?;
            }
        }
        let tally = pass.finish()?;
        tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "snapshot: aggregates and coverage");

        // Entries and exits against the previous snapshot.
        let mut before: Option<HashMap<([u8; 32], String), String>> = None;
        if let Some(p) = &previous {
            let b = before.insert(HashMap::new());
            let rows = sqlx::query(
                "SELECT s.person_key, f.program, s.county_code FROM snapshot_statuses s JOIN facts f \
                 ON f.agency = s.agency AND f.fact_id = s.fact_id AND f.source_version = s.source_version \
                 WHERE s.quarter = $1 AND s.kind = 'assistance' AND f.status = 'ACTIVE' AND f.program IS NOT NULL",
            )
            .bind(&p.quarter)
            .fetch_all(&mut *tx)
            .await?;
            for r in rows {
                b.insert((hash32("snapshot_statuses", r.try_get(0)?)?, r.try_get(1)?), r.try_get(2)?);
            }
        }
        let aggregates = aggregates(&tally, before.as_ref());

        // Section 3: agencies.
        let mut pushed = Vec::new();
        for r in sqlx::query(
            "SELECT agency, COUNT(*) FILTER (WHERE $1::timestamptz IS NULL OR recorded_at > $1), MAX(recorded_at) \
             FROM facts WHERE recorded_at <= $2 GROUP BY agency",
        )
        .bind(prev_cutoff)
        .bind(cutoff)
        .fetch_all(&mut *tx)
        .await?
        {
            let last: DateTime<Utc> = r.try_get(2)?;
            pushed.push((r.try_get(0)?, r.try_get::<i64, _>(1)? as u64, to_micros(last)));
        }
        let mut outcomes = Vec::new();
        for r in sqlx::query(
            "SELECT agency, outcome FROM audit_events WHERE ($1::timestamptz IS NULL OR at > $1) AND at <= $2 \
             AND (method LIKE '%/PushFacts' OR method LIKE '%/StreamFacts') AND outcome LIKE '%rejected=%'",
        )
        .bind(prev_cutoff)
        .bind(cutoff)
        .fetch_all(&mut *tx)
        .await?
        {
            outcomes.push((r.try_get(0)?, r.try_get(1)?));
        }
        let agencies = agency_stats(pushed, outcomes, cutoff_micros);
        tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "snapshot: agencies");

        // Section 5: medical, settlements settled in the quarter and received by the cutoff.
        let medical = medical_section(&mut tx, as_of, cutoff).await?;

        // Section 8: late corrections.
        let mut late = Vec::new();
        if let Some(p) = &previous {
            for r in sqlx::query(
                "SELECT agency, kind, COUNT(*), COUNT(DISTINCT person_id) FROM facts WHERE recorded_at > $1 \
                 AND recorded_at <= $2 AND valid_from <= $3 AND (valid_to IS NULL OR valid_to > $3) \
                 GROUP BY agency, kind ORDER BY agency COLLATE \"C\", kind COLLATE \"C\"",
            )
            .bind(p.knowledge_cutoff)
            .bind(cutoff)
            .bind(p.as_of)
            .fetch_all(&mut *tx)
            .await?
            {
                late.push(LateCorrection {
                    agency: r.try_get(0)?,
                    kind: r.try_get(1)?,
                    facts: r.try_get::<i64, _>(2)? as u64,
                    persons: r.try_get::<i64, _>(3)? as u64,
                });
            }
        }
        tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "snapshot: medical, late corrections");

        // Store the coverage rows (one UNNEST statement) and the JSON sections.
        let cov = &tally.coverage;
        sqlx::query(
            "INSERT INTO snapshot_coverage (quarter, code, person_key, agency_to_act, county_code) \
             SELECT $1, * FROM UNNEST($2::text[], $3::bytea[], $4::text[], $5::text[])",
        )
        .bind(q)
        .bind(cov.iter().map(|c| c.code.clone()).collect::<Vec<_>>())
        .bind(cov.iter().map(|c| c.person_key.to_vec()).collect::<Vec<_>>())
        .bind(cov.iter().map(|c| c.agency_to_act.clone()).collect::<Vec<_>>())
        .bind(cov.iter().map(|c| c.county_code.clone()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
        let sections = json_sections(&aggregates, &agencies, &medical, &late, &input.hub_sections)?;
        let (names, bodies): (Vec<&str>, Vec<String>) = sections.into_iter().unzip();
        sqlx::query(
            "INSERT INTO snapshot_sections (quarter, section, body) SELECT $1, * FROM UNNEST($2::text[], $3::text[])",
        )
        .bind(q)
        .bind(names)
        .bind(bodies)
        .execute(&mut *tx)
        .await?;
        let hashes = section_hashes(&mut tx, q).await?;
        tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "snapshot: sections stored and hashed");
        let (content, previous_hash, section_hex) = seal(q, as_of, cutoff_micros, &hashes, previous.as_ref())?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO snapshots ({HEADER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        )))
        .bind(q)
        .bind(as_of)
        .bind(cutoff)
        .bind(&input.created_by)
        .bind(previous.as_ref().map(|p| p.quarter.clone()))
        .bind(previous_hash.to_vec())
        .bind(section_hex)
        .bind(content.to_vec())
        .execute(&mut *tx)
        .await?;
        let created = header(&mut tx, q).await?.ok_or_else(|| corrupt("snapshots", "vanished"))?;
        tx.commit().await?;
        Ok(CreateOutcome::Created(created))
    }
    /// One snapshot's header.
    async fn snapshot(&self, quarter: &str) -> Result<Option<SnapshotHeader>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        header(&mut conn, quarter).await
    }
    /// Every snapshot's header, oldest first.
    async fn snapshots(&self) -> Result<Vec<SnapshotHeader>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {HEADER_COLUMNS} FROM snapshots ORDER BY quarter COLLATE \"C\""
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(header_row).collect()
    }
    /// A JSON section's stored body.
    async fn snapshot_section(&self, quarter: &str, section: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT body FROM snapshot_sections WHERE quarter = $1 AND section = $2")
            .bind(quarter)
            .bind(section)
            .fetch_optional(&self.pool)
            .await?)
    }
    /// Coverage findings counted by (code, agency to act, county).
    async fn snapshot_coverage_counts(&self, quarter: &str) -> Result<Vec<(String, String, String, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT code, agency_to_act, county_code, COUNT(*) FROM snapshot_coverage WHERE quarter = $1 \
             GROUP BY code, agency_to_act, county_code ORDER BY code COLLATE \"C\", county_code COLLATE \"C\", \
             agency_to_act COLLATE \"C\"",
        )
        .bind(quarter)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get::<i64, _>(3)? as u64))).collect()
    }
    /// Persons, households (distinct `household_id`) and monthly benefits (fen) of ACTIVE enrolments in force on
    /// `on`, by (county, program), from the current facts.
    async fn active_by_county_program(
        &self,
        on: NaiveDate,
    ) -> Result<HashMap<(String, String), (u64, u64, i128)>, StoreError> {
        let rows = sqlx::query(
            "SELECT substr(division_code, 1, 6), program, COUNT(DISTINCT person_id), \
             COUNT(DISTINCT payload::jsonb ->> 'household_id'), COALESCE(SUM(benefit), 0) FROM facts \
             WHERE is_current AND program IS NOT NULL AND status = 'ACTIVE' AND valid_from <= $1 \
             AND (valid_to IS NULL OR valid_to > $1) GROUP BY 1, 2",
        )
        .bind(on)
        .fetch_all(&self.pool)
        .await?;
        let mut out = HashMap::new();
        for r in rows {
            let benefit: Decimal = r.try_get(4)?;
            out.insert(
                (r.try_get(0)?, r.try_get(1)?),
                (r.try_get::<i64, _>(2)? as u64, r.try_get::<i64, _>(3)? as u64, numeric_sum_to_fen(benefit, "facts")?),
            );
        }
        Ok(out)
    }
    /// Open medical findings of settlements settled in `[from, to]`, by code (every code, 0 where none).
    async fn findings_by_code_between(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT code, COUNT(*) FROM medical_findings WHERE settled_on >= $1 AND settled_on <= $2 \
             AND resolved_at IS NULL GROUP BY code",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        let mut by: BTreeMap<String, u64> = BTreeMap::new();
        for r in rows {
            by.insert(r.try_get(0)?, r.try_get::<i64, _>(1)? as u64);
        }
        Ok(all_codes(by))
    }
    /// Recompute a snapshot from its stored rows and name what differs (`None`: no such snapshot).
    async fn verify_snapshot(&self, quarter: &str) -> Result<Option<Verification>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let Some(h) = header(&mut conn, quarter).await? else { return Ok(None) };
        let hashes = section_hashes(&mut conn, quarter).await?;
        let previous = match &h.previous_quarter {
            Some(pq) => match header(&mut conn, pq).await? {
                Some(p) => {
                    let p_hashes = section_hashes(&mut conn, pq).await?;
                    PreviousCheck::Recomputed(pq.clone(), recompute(&p, &p_hashes))
                }
                None => PreviousCheck::Missing(pq.clone()),
            },
            None => PreviousCheck::None,
        };
        let (recomputed, mut differences) = header_differences(&h, &hashes, previous);
        // The fact versions the statuses point at must still carry the content they had.
        let changed = sqlx::query(
            "SELECT s.agency, s.fact_id, s.source_version FROM snapshot_statuses s LEFT JOIN facts f \
             ON f.agency = s.agency AND f.fact_id = s.fact_id AND f.source_version = s.source_version \
             WHERE s.quarter = $1 AND (f.content_hash IS NULL OR f.content_hash != s.content_hash) \
             ORDER BY s.person_key, s.agency COLLATE \"C\", s.fact_id COLLATE \"C\" LIMIT 5",
        )
        .bind(quarter)
        .fetch_all(&mut *conn)
        .await?;
        for r in changed {
            let (a, id, v): (String, String, i64) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
            differences.push(altered_fact(&a, &id, v));
        }
        Ok(Some(Verification { header: h, recomputed_content_hash: recomputed, differences }))
    }
}

/// Section 5 for the quarter ending `as_of`.
async fn medical_section(
    conn: &mut PgConnection,
    as_of: NaiveDate,
    cutoff: DateTime<Utc>,
) -> Result<MedicalSection, StoreError> {
    let q = Quarter::of(as_of);
    let (from, to) = (q.first_day(), q.last_day());
    let r = sqlx::query(
        "SELECT COUNT(*), COUNT(DISTINCT person_key), \
         COUNT(DISTINCT CASE WHEN medical_assistance_paid > 0 THEN person_key END), \
         COALESCE(SUM(total_cost), 0), COALESCE(SUM(out_of_pocket), 0), COALESCE(SUM(basic_paid), 0), \
         COALESCE(SUM(critical_illness_paid), 0), COALESCE(SUM(medical_assistance_paid), 0) FROM settlements \
         WHERE settled_on >= $1 AND settled_on <= $2 AND received_at <= $3",
    )
    .bind(from)
    .bind(to)
    .bind(cutoff)
    .fetch_one(&mut *conn)
    .await?;
    let m = |i: usize| numeric_to_money(r.try_get(i)?, "settlements");
    let mut by_county = Vec::new();
    for f in sqlx::query(
        "SELECT substr(division_code, 1, 6), code, COUNT(*) FROM medical_findings WHERE settled_on >= $1 \
         AND settled_on <= $2 AND detected_at <= $3 AND (resolved_at IS NULL OR resolved_at > $3) \
         GROUP BY 1, 2 ORDER BY substr(division_code, 1, 6) COLLATE \"C\", code COLLATE \"C\"",
    )
    .bind(from)
    .bind(to)
    .bind(cutoff)
    .fetch_all(&mut *conn)
    .await?
    {
        by_county.push(CountyCodeCount {
            county_code: f.try_get(0)?,
            code: f.try_get(1)?,
            count: f.try_get::<i64, _>(2)? as u64,
        });
    }
    let totals = SettlementTotals {
        settlements: r.try_get::<i64, _>(0)? as u64,
        persons: r.try_get::<i64, _>(1)? as u64,
        persons_assisted: r.try_get::<i64, _>(2)? as u64,
        total_cost: m(3)?,
        out_of_pocket: m(4)?,
        paid: Tiers { basic: m(5)?, critical_illness: m(6)?, medical_assistance: m(7)? },
    };
    Ok(medical_section_of(totals, by_county))
}
