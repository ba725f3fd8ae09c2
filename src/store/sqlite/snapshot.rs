//! Quarterly snapshots (migration 0006; coordination.md, docs/snapshot-format.md).
//!
//! `create_snapshot` runs in one write transaction on the single writer: the statuses are copied from the facts in
//! force (as known now, which is the knowledge cutoff, since no other writer can run meanwhile), then read back once,
//! person by person, to compute the aggregates and the coverage findings; the sections are stored and hashed; a
//! second call for the same quarter finds the first one's row and changes nothing.

use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use futures::TryStreamExt;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::{ROWS_PER_INSERT, corrupt};
use crate::domain::money::Money;
use crate::domain::snapshot::{CoverageRow, StatusRow, body_hash, rows_hash};
use crate::domain::summary::{CountyCodeCount, LateCorrection, MedicalSection, Tiers};
use crate::store::{SqliteStore, StoreError, from_micros, to_micros};

use crate::store::contract::*;
use crate::store::plan::*;
use crate::store::rows::*;

fn hash32(table: &'static str, v: Vec<u8>) -> Result<[u8; 32], StoreError> {
    v.try_into().map_err(|_| corrupt(table, "hash length"))
}

fn header_row(r: &sqlx::sqlite::SqliteRow) -> Result<SnapshotHeader, StoreError> {
    let as_of: String = r.try_get(1)?;
    let sections: String = r.try_get(6)?;
    Ok(SnapshotHeader {
        quarter: r.try_get(0)?,
        as_of: as_of.parse().map_err(|_| corrupt("snapshots", "as_of"))?,
        knowledge_cutoff: from_micros(r.try_get(2)?),
        created_by: r.try_get(3)?,
        previous_quarter: r.try_get(4)?,
        previous_hash: hash32("snapshots", r.try_get(5)?)?,
        section_hashes: serde_json::from_str(&sections).map_err(|e| corrupt("snapshots", e.to_string()))?,
        content_hash: hash32("snapshots", r.try_get(7)?)?,
    })
}

const HEADER_COLUMNS: &str =
    "quarter, as_of, knowledge_cutoff, created_by, previous_quarter, previous_hash, section_hashes, content_hash";

async fn header(conn: &mut SqliteConnection, quarter: &str) -> Result<Option<SnapshotHeader>, StoreError> {
    let r = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {HEADER_COLUMNS} FROM snapshots WHERE quarter = ?")))
        .bind(quarter)
        .fetch_optional(&mut *conn)
        .await?;
    r.as_ref().map(header_row).transpose()
}

/// The columns [`pass_row`] reads, from `facts f` joined with `persons p`.
const PASS_COLUMNS: &str = "f.person_id, p.person_key, f.agency, f.fact_id, f.source_version, f.kind, \
     substr(f.division_code, 1, 6), f.content_hash, f.payload, p.id_cipher";

fn pass_row(r: &sqlx::sqlite::SqliteRow) -> Result<PassRow, StoreError> {
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

/// The statuses section's hash, from the stored rows (canonical order). Each person's canonical lines
/// (`StatusRow::canonical_line`, docs/snapshot-format.md) are made and joined by SQLite, one row per person: sqlx's
/// SQLite driver costs far more per row than the SQL does. Integers print in decimal and `hex` in upper case (hence
/// `lower`), as Rust's formatting does; `agency, fact_id` order is byte order (BINARY collation).
async fn statuses_hash(conn: &mut SqliteConnection, quarter: &str) -> Result<[u8; 32], StoreError> {
    let mut rows = sqlx::query(
        "SELECT string_agg(lower(hex(person_key)) || '|' || agency || '|' || fact_id || '|' || source_version || '|' \
         || kind || '|' || county_code || '|' || lower(hex(content_hash)) || char(10), '' ORDER BY agency, fact_id) \
         FROM snapshot_statuses WHERE quarter = ? GROUP BY person_key ORDER BY person_key",
    )
    .bind(quarter)
    .fetch(&mut *conn);
    let mut h = sha2::Sha256::new();
    use sha2::Digest;
    while let Some(r) = rows.try_next().await? {
        let lines: &str = r.try_get(0)?;
        h.update(lines.as_bytes());
    }
    Ok(h.finalize().into())
}

async fn coverage_hash(conn: &mut SqliteConnection, quarter: &str) -> Result<[u8; 32], StoreError> {
    let rows = sqlx::query(
        "SELECT code, person_key, agency_to_act, county_code FROM snapshot_coverage WHERE quarter = ? \
         ORDER BY code, person_key",
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
async fn section_hashes(conn: &mut SqliteConnection, quarter: &str) -> Result<BTreeMap<String, [u8; 32]>, StoreError> {
    let mut out = BTreeMap::new();
    out.insert("statuses".to_owned(), statuses_hash(conn, quarter).await?);
    out.insert("coverage".to_owned(), coverage_hash(conn, quarter).await?);
    let rows = sqlx::query("SELECT section, body FROM snapshot_sections WHERE quarter = ?")
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
impl SnapshotStore for SqliteStore {
    /// Freeze a quarter (see the module docs). The status rows are the current fact versions in force on `as_of`
    /// recorded at or before `cutoff`.
    async fn create_snapshot(&self, input: SnapshotInput<'_>) -> Result<CreateOutcome, StoreError> {
        let _w = self.writer.lock().await;
        let mut tx = self.write_pool.begin_with("BEGIN IMMEDIATE").await?;
        let q = input.quarter.as_str();
        if let Some(h) = header(&mut tx, q).await? {
            return Ok(CreateOutcome::AlreadyExists(h));
        }
        let later: Option<String> = sqlx::query("SELECT MAX(quarter) FROM snapshots WHERE quarter > ?")
            .bind(q)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        if let Some(l) = later {
            return Ok(CreateOutcome::LaterExists(l));
        }
        let previous: Option<SnapshotHeader> = {
            let r = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {HEADER_COLUMNS} FROM snapshots WHERE quarter < ? ORDER BY quarter DESC LIMIT 1"
            )))
            .bind(q)
            .fetch_optional(&mut *tx)
            .await?;
            r.as_ref().map(header_row).transpose()?
        };
        let as_of = input.as_of.to_string();
        let cutoff = to_micros(input.cutoff);
        let prev_cutoff = previous.as_ref().map(|p| to_micros(p.knowledge_cutoff)).unwrap_or(i64::MIN);

        let started = std::time::Instant::now();
        // Section 1: statuses: the versions current at the cutoff (recorded by then and not yet superseded; a
        // correction recorded after the cutoff must not take its record out of the quarter).
        sqlx::query(
            "INSERT INTO snapshot_statuses (quarter, person_key, agency, fact_id, source_version, kind, county_code, \
             content_hash) SELECT ?, p.person_key, f.agency, f.fact_id, f.source_version, f.kind, \
             substr(f.division_code, 1, 6), f.content_hash FROM facts f JOIN persons p ON p.person_id = f.person_id \
             WHERE (f.is_current = 1 OR f.superseded_at > ?) AND f.recorded_at <= ? \
             AND f.valid_from <= ? AND (f.valid_to IS NULL OR f.valid_to > ?) ORDER BY p.person_key, f.agency, f.fact_id",
        )
        .bind(q)
        .bind(cutoff)
        .bind(cutoff)
        .bind(&as_of)
        .bind(&as_of)
        .execute(&mut *tx)
        .await?;

        tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "snapshot: statuses copied");
        // One pass over the same versions, person by person in `person_id` order: aggregates and coverage. The
        // current versions are read along `facts_current_person` (the table in about its own order, persons by
        // rowid); the versions superseded after the cutoff, few, by `facts_superseded`.
        let later = {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {PASS_COLUMNS} FROM facts f INDEXED BY facts_superseded JOIN persons p ON p.person_id = f.person_id \
                 WHERE f.is_current = 0 AND f.superseded_at > ? AND f.recorded_at <= ? AND f.valid_from <= ? \
                 AND (f.valid_to IS NULL OR f.valid_to > ?)"
            )))
            .bind(cutoff)
            .bind(cutoff)
            .bind(&as_of)
            .bind(&as_of)
            .fetch_all(&mut *tx)
            .await?;
            rows.iter().map(pass_row).collect::<Result<Vec<_>, _>>()?
        };
        let mut pass = PersonOrderPass::new(&input, later);
        {
            // One row per person (sqlx's SQLite driver costs far more per row than the SQL does): fields joined by
            // U+001F, rows by U+001E. Neither can occur in a field: identifiers refuse control characters and JSON
            // escapes them.
            let mut rows = sqlx::query(
                "SELECT f.person_id, p.person_key, p.id_cipher, string_agg(f.agency || char(31) || f.fact_id || \
                 char(31) || f.source_version || char(31) || f.kind || char(31) || substr(f.division_code, 1, 6) || \
                 char(31) || lower(hex(f.content_hash)) || char(31) || f.payload, char(30)) \
                 FROM facts f INDEXED BY facts_current_person JOIN persons p ON p.person_id = f.person_id \
                 WHERE f.is_current = 1 AND f.recorded_at <= ? AND f.valid_from <= ? \
                 AND (f.valid_to IS NULL OR f.valid_to > ?) GROUP BY f.person_id ORDER BY f.person_id",
            )
            .bind(cutoff)
            .bind(&as_of)
            .bind(&as_of)
            .fetch(&mut *tx);
            while let Some(r) = rows.try_next().await? {
                let person_id: i64 = r.try_get(0)?;
                let key = hash32("persons", r.try_get(1)?)?;
                let cipher: Vec<u8> = r.try_get(2)?;
                let joined: &str = r.try_get(3)?;
                for row in joined.split('\u{1e}') {
                    let f: Vec<&str> = row.splitn(7, '\u{1f}').collect();
                    let [agency, fact_id, version, kind, county_code, content, payload] = f[..] else {
                        return Err(corrupt("facts", "status row of unexpected shape"));
                    };
                    let content: [u8; 32] = hex::decode(content)
                        .ok()
                        .and_then(|v| v.try_into().ok())
                        .ok_or_else(|| corrupt("facts", "content hash"))?;
                    pass.push(PassRow {
                        person_id,
                        status: StatusRow {
                            person_key: key,
                            agency: agency.to_owned(),
                            fact_id: fact_id.to_owned(),
                            source_version: version.parse().map_err(|_| corrupt("facts", "version"))?,
                            kind: kind.to_owned(),
                            county_code: county_code.to_owned(),
                            content_hash: content,
                        },
                        cipher: cipher.clone(),
                        payload: payload.to_owned(),
                    })?;
                }
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
                 WHERE s.quarter = ? AND s.kind = 'assistance' AND f.status = 'ACTIVE' AND f.program IS NOT NULL",
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
            "SELECT agency, SUM(CASE WHEN recorded_at > ? THEN 1 ELSE 0 END), MAX(recorded_at) FROM facts \
             WHERE recorded_at <= ? GROUP BY agency",
        )
        .bind(prev_cutoff)
        .bind(cutoff)
        .fetch_all(&mut *tx)
        .await?
        {
            pushed.push((r.try_get(0)?, r.try_get::<i64, _>(1)? as u64, r.try_get(2)?));
        }
        let mut outcomes = Vec::new();
        for r in sqlx::query(
            "SELECT agency, outcome FROM audit_events WHERE at > ? AND at <= ? \
             AND (method LIKE '%/PushFacts' OR method LIKE '%/StreamFacts') AND outcome LIKE '%rejected=%'",
        )
        .bind(prev_cutoff)
        .bind(cutoff)
        .fetch_all(&mut *tx)
        .await?
        {
            outcomes.push((r.try_get(0)?, r.try_get(1)?));
        }
        let agencies = agency_stats(pushed, outcomes, cutoff);

        tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "snapshot: agencies");
        // Section 5: medical, settlements settled in the quarter and received by the cutoff.
        let medical = medical_section(&mut tx, input.as_of, cutoff).await?;

        // Section 8: late corrections.
        let mut late = Vec::new();
        if let Some(p) = &previous {
            let prev_as_of = p.as_of.to_string();
            for r in sqlx::query(
                "SELECT agency, kind, COUNT(*), COUNT(DISTINCT person_id) FROM facts WHERE recorded_at > ? \
                 AND recorded_at <= ? AND valid_from <= ? AND (valid_to IS NULL OR valid_to > ?) \
                 GROUP BY agency, kind ORDER BY agency, kind",
            )
            .bind(prev_cutoff)
            .bind(cutoff)
            .bind(&prev_as_of)
            .bind(&prev_as_of)
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
        // Store the coverage rows and the JSON sections.
        for chunk in tally.coverage.chunks(ROWS_PER_INSERT) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO snapshot_coverage (quarter, code, person_key, agency_to_act, county_code) ",
            );
            qb.push_values(chunk, |mut b, c| {
                b.push_bind(q)
                    .push_bind(c.code.clone())
                    .push_bind(c.person_key.to_vec())
                    .push_bind(c.agency_to_act.clone())
                    .push_bind(c.county_code.clone());
            });
            qb.build().execute(&mut *tx).await?;
        }
        for (name, body) in json_sections(&aggregates, &agencies, &medical, &late, &input.hub_sections)? {
            sqlx::query("INSERT INTO snapshot_sections (quarter, section, body) VALUES (?, ?, ?)")
                .bind(q)
                .bind(name)
                .bind(body)
                .execute(&mut *tx)
                .await?;
        }
        let hashes = section_hashes(&mut tx, q).await?;
        tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "snapshot: sections stored and hashed");
        let (content, previous_hash, section_hex) = seal(q, input.as_of, cutoff, &hashes, previous.as_ref())?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO snapshots ({HEADER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        )))
        .bind(q)
        .bind(&as_of)
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
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {HEADER_COLUMNS} FROM snapshots ORDER BY quarter")))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(header_row).collect()
    }
    /// A JSON section's stored body.
    async fn snapshot_section(&self, quarter: &str, section: &str) -> Result<Option<String>, StoreError> {
        let r = sqlx::query("SELECT body FROM snapshot_sections WHERE quarter = ? AND section = ?")
            .bind(quarter)
            .bind(section)
            .fetch_optional(&self.pool)
            .await?;
        Ok(r.map(|r| r.try_get(0)).transpose()?)
    }
    /// Coverage findings counted by (code, agency to act, county).
    async fn snapshot_coverage_counts(&self, quarter: &str) -> Result<Vec<(String, String, String, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT code, agency_to_act, county_code, COUNT(*) FROM snapshot_coverage WHERE quarter = ? \
             GROUP BY code, agency_to_act, county_code ORDER BY code, county_code",
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
        let d = on.to_string();
        let rows = sqlx::query(
            "SELECT substr(division_code, 1, 6), program, COUNT(DISTINCT person_id), \
             COUNT(DISTINCT json_extract(payload, '$.household_id')), COALESCE(SUM(benefit_fen >> 32), 0), \
             COALESCE(SUM(benefit_fen & 4294967295), 0) FROM facts \
             WHERE is_current = 1 AND program IS NOT NULL AND status = 'ACTIVE' AND valid_from <= ? \
             AND (valid_to IS NULL OR valid_to > ?) GROUP BY 1, 2",
        )
        .bind(&d)
        .bind(&d)
        .fetch_all(&self.pool)
        .await?;
        let mut out = HashMap::new();
        for r in rows {
            out.insert(
                (r.try_get(0)?, r.try_get(1)?),
                (r.try_get::<i64, _>(2)? as u64, r.try_get::<i64, _>(3)? as u64, super::split_sum(&r, 4)?),
            );
        }
        Ok(out)
    }
    /// Open medical findings of settlements settled in `[from, to]`, by code (every code, 0 where none).
    async fn findings_by_code_between(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT code, COUNT(*) FROM medical_findings WHERE settled_on >= ? AND settled_on <= ? \
             AND resolved_at IS NULL GROUP BY code",
        )
        .bind(from.to_string())
        .bind(to.to_string())
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
             WHERE s.quarter = ? AND (f.content_hash IS NULL OR f.content_hash != s.content_hash) LIMIT 5",
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
    conn: &mut SqliteConnection,
    as_of: NaiveDate,
    cutoff: i64,
) -> Result<MedicalSection, StoreError> {
    let q = crate::domain::calendar::Quarter::of(as_of);
    let (from, to) = (q.first_day().to_string(), q.last_day().to_string());
    let r = sqlx::query(
        "SELECT COUNT(*), COUNT(DISTINCT person_key), COUNT(DISTINCT CASE WHEN medical_assistance_paid > 0 THEN person_key END), \
         COALESCE(SUM(total_cost >> 32), 0), COALESCE(SUM(total_cost & 4294967295), 0), \
         COALESCE(SUM(out_of_pocket >> 32), 0), COALESCE(SUM(out_of_pocket & 4294967295), 0), \
         COALESCE(SUM(basic_paid >> 32), 0), COALESCE(SUM(basic_paid & 4294967295), 0), \
         COALESCE(SUM(critical_illness_paid >> 32), 0), COALESCE(SUM(critical_illness_paid & 4294967295), 0), \
         COALESCE(SUM(medical_assistance_paid >> 32), 0), COALESCE(SUM(medical_assistance_paid & 4294967295), 0) \
         FROM settlements WHERE settled_on >= ? AND settled_on <= ? AND received_at <= ?",
    )
    .bind(&from)
    .bind(&to)
    .bind(cutoff)
    .fetch_one(&mut *conn)
    .await?;
    let m = |i: usize| -> Result<Money, StoreError> {
        Money::from_fen(super::split_sum(&r, i)?).map_err(|_| corrupt("settlements", "negative sum"))
    };
    let mut by_county = Vec::new();
    for f in sqlx::query(
        "SELECT substr(division_code, 1, 6), code, COUNT(*) FROM medical_findings WHERE settled_on >= ? \
         AND settled_on <= ? AND detected_at <= ? AND (resolved_at IS NULL OR resolved_at > ?) \
         GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .bind(&from)
    .bind(&to)
    .bind(cutoff)
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
        // Each sum takes two columns (split_sum).
        total_cost: m(3)?,
        out_of_pocket: m(5)?,
        paid: Tiers { basic: m(7)?, critical_illness: m(9)?, medical_assistance: m(11)? },
    };
    Ok(medical_section_of(totals, by_county))
}
