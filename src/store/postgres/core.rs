//! PostgreSQL: ingest, persons and facts, reference data, the audit append (SQLite twin: `store/sqlite/mod.rs`).
//!
//! Bulk writes bind one array per column and insert with `UNNEST` (one statement per batch, whatever its size).

use async_trait::async_trait;
use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::audit::append_audit_of;
use super::{PgStore, money_to_numeric};
use crate::domain::fact::{Payload, PayloadKind};
use crate::domain::versioning::Decision;
use crate::security::crypto::PersonKey;
use crate::store::contract::*;
use crate::store::corrupt;
use crate::store::writer::Priority;
use crate::store::{IngestPlan, plan_ingest};
use crate::store::{NewPerson, PreparedFact, StoreError, StoredFact, to_micros};

/// Current time truncated to PostgreSQL's microsecond precision (so a value hashed before it is stored reads back
/// equal).
pub(super) fn now_micros() -> DateTime<Utc> {
    crate::store::from_micros(to_micros(Utc::now()))
}

fn key_bytes(keys: &[PersonKey]) -> Vec<Vec<u8>> {
    keys.iter().map(|k| k.as_bytes().to_vec()).collect()
}

#[async_trait]
impl FactStore for PgStore {
    /// See [`FactStore::ingest_batches`] (the same steps as SQLite's, in one transaction). The write lock serializes
    /// this against every replica's writers; `priority` orders nothing here (PostgreSQL's advisory lock is one queue).
    async fn ingest_batches(
        &self,
        batches: &[IngestBatch<'_>],
        priority: Priority,
    ) -> Result<Vec<Vec<Decision>>, StoreError> {
        let facts: Vec<&PreparedFact> = batches.iter().flat_map(|b| b.facts.iter()).collect();
        let persons: Vec<&NewPerson> = batches.iter().flat_map(|b| b.persons.iter()).collect();
        let (_turn, mut tx) = self.begin_write(priority).await?;
        let now = now_micros();

        let mut current = crate::store::CurrentVersions::default();
        let mut by_agency: HashMap<&str, Vec<String>> = HashMap::new();
        for f in &facts {
            by_agency.entry(f.agency.as_str()).or_default().push(f.fact.fact_id.clone());
        }
        for (agency, ids) in &by_agency {
            let rows = sqlx::query(
                "SELECT agency, fact_id, source_version, content_hash, division_code FROM facts \
                 WHERE is_current AND agency = $1 AND fact_id = ANY($2)",
            )
            .bind(*agency)
            .bind(ids)
            .fetch_all(&mut *tx)
            .await?;
            for r in rows {
                let (key, version) = crate::store::sql::current_version(&r)?;
                current.insert(key, version);
            }
        }

        let IngestPlan { decisions, superseded, rows, changes } = plan_ingest(&facts, current);

        if !superseded.is_empty() {
            let (agencies, ids): (Vec<String>, Vec<String>) = superseded.into_iter().unzip();
            sqlx::query(
                "UPDATE facts SET is_current = false, superseded_at = $1 \
                 FROM UNNEST($2::text[], $3::text[]) AS s(agency, fact_id) \
                 WHERE facts.agency = s.agency AND facts.fact_id = s.fact_id AND facts.is_current",
            )
            .bind(now)
            .bind(agencies)
            .bind(ids)
            .execute(&mut *tx)
            .await?;
        }

        insert_persons(&mut tx, &persons, now).await?;
        let keys: Vec<PersonKey> = persons.iter().map(|p| p.person_key).collect();
        let ids = person_ids(&mut tx, &keys).await?;
        insert_fact_rows(&mut tx, &rows, &ids, now).await?;

        let head = super::changes::append_changes(&mut tx, &changes).await?;
        for b in batches {
            if let Some(audit) = b.audit {
                // The request's persons are the batch's (`Hub::ingest`), all in `ids` now.
                append_audit_of(&mut tx, audit, now, &ids).await?;
            }
        }
        if let Some(head) = head {
            PgStore::notify_change_head(&mut tx, head).await?;
        }
        tx.commit().await?;
        if let Some(head) = head {
            self.publish_change_head(head);
        }
        Ok(crate::store::plan::split_decisions(batches, decisions))
    }
}

/// Insert fact versions with UNNEST, one statement; `(is_current, fact)` per row (a row written twice in one batch
/// is stored once superseded, once current). Shared by `ingest` and the benchmark floor.
pub(super) async fn insert_fact_rows(
    conn: &mut PgConnection,
    rows: &[(bool, &PreparedFact)],
    ids: &crate::store::PersonIds,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let n = rows.len();
    let mut agency = Vec::with_capacity(n);
    let mut fact_id = Vec::with_capacity(n);
    let mut version = Vec::with_capacity(n);
    let mut person = Vec::with_capacity(n);
    let mut kind = Vec::with_capacity(n);
    let mut division = Vec::with_capacity(n);
    let mut valid_from = Vec::with_capacity(n);
    let mut valid_to: Vec<Option<NaiveDate>> = Vec::with_capacity(n);
    let mut program: Vec<Option<String>> = Vec::with_capacity(n);
    let mut status: Vec<Option<String>> = Vec::with_capacity(n);
    let mut residence: Vec<Option<String>> = Vec::with_capacity(n);
    let mut benefit: Vec<Option<rust_decimal::Decimal>> = Vec::with_capacity(n);
    let mut payload = Vec::with_capacity(n);
    let mut hash = Vec::with_capacity(n);
    let mut superseded_at: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(n);
    let mut is_current = Vec::with_capacity(n);
    for (current, f) in rows {
        agency.push(f.agency.as_str().to_owned());
        fact_id.push(f.fact.fact_id.clone());
        version.push(f.fact.source_version as i64);
        person.push(*ids.get(&f.person_key).ok_or_else(|| corrupt("persons", "a fact's person has no person_id"))?);
        kind.push(f.fact.payload.kind().as_str().to_owned());
        division.push(f.fact.division_code.as_str().to_owned());
        valid_from.push(f.fact.valid_from);
        valid_to.push(f.fact.valid_to);
        match &f.fact.payload {
            Payload::Assistance(a) => {
                program.push(a.program.map(|p| p.as_str().to_owned()));
                status.push(a.status.map(|s| s.as_str().to_owned()));
                residence.push(a.residence.map(|r| r.as_str().to_owned()));
                benefit.push(a.monthly_benefit.map(money_to_numeric));
            }
            _ => {
                program.push(None);
                status.push(None);
                residence.push(None);
                benefit.push(None);
            }
        }
        payload.push(f.payload_json.clone());
        hash.push(f.content_hash.to_vec());
        superseded_at.push(if *current { None } else { Some(now) });
        is_current.push(*current);
    }
    sqlx::query(
        "INSERT INTO facts (agency, fact_id, source_version, person_id, kind, division_code, valid_from, valid_to, \
         program, status, residence, benefit, payload, content_hash, recorded_at, superseded_at, is_current) \
         SELECT a, f, v, p, k, d, vf, vt, pr, st, re, b, pl, h, $15, sa, c FROM UNNEST($1::text[], $2::text[], \
         $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::date[], $8::date[], $9::text[], $10::text[], \
         $11::text[], $12::numeric[], $13::text[], $14::bytea[], $16::timestamptz[], $17::boolean[]) \
         AS t(a, f, v, p, k, d, vf, vt, pr, st, re, b, pl, h, sa, c)",
    )
    .bind(agency)
    .bind(fact_id)
    .bind(version)
    .bind(person)
    .bind(kind)
    .bind(division)
    .bind(valid_from)
    .bind(valid_to)
    .bind(program)
    .bind(status)
    .bind(residence)
    .bind(benefit)
    .bind(payload)
    .bind(hash)
    .bind(now)
    .bind(superseded_at)
    .bind(is_current)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Insert persons not yet known, one UNNEST statement, each getting the next `person_id` (persons already known are
/// filtered out first, so they take no number from the sequence). A known person is left as it is, except that a
/// person known only from an audited read gets its encrypted ID number.
pub(super) async fn insert_persons<P: std::borrow::Borrow<NewPerson>>(
    conn: &mut PgConnection,
    persons: &[P],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if persons.is_empty() {
        return Ok(());
    }
    // A key given twice is written once (PostgreSQL refuses an upsert that touches a row twice), as on SQLite.
    let mut seen = std::collections::HashSet::with_capacity(persons.len());
    let persons: Vec<&NewPerson> = persons.iter().map(|p| p.borrow()).filter(|p| seen.insert(p.person_key)).collect();
    let keys: Vec<Vec<u8>> = persons.iter().map(|p| p.person_key.as_bytes().to_vec()).collect();
    let ciphers: Vec<Vec<u8>> = persons.iter().map(|p| p.id_cipher.clone()).collect();
    let masked: Vec<String> = persons.iter().map(|p| p.id_masked.clone()).collect();
    sqlx::query(
        "INSERT INTO persons (person_key, id_cipher, id_masked, key_version, created_at) \
         SELECT k, c, m, 1, $4 FROM UNNEST($1::bytea[], $2::bytea[], $3::text[]) AS t(k, c, m) \
         WHERE NOT EXISTS (SELECT 1 FROM persons p WHERE p.person_key = t.k AND p.id_cipher IS NOT NULL) \
         ON CONFLICT (person_key) DO UPDATE SET id_cipher = excluded.id_cipher, id_masked = excluded.id_masked, \
         key_version = excluded.key_version WHERE persons.id_cipher IS NULL",
    )
    .bind(keys)
    .bind(ciphers)
    .bind(masked)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The `person_id` of each of `keys` that `persons` holds.
pub(super) async fn person_ids(
    conn: &mut PgConnection,
    keys: &[PersonKey],
) -> Result<crate::store::PersonIds, StoreError> {
    let rows = sqlx::query("SELECT person_key, person_id FROM persons WHERE person_key = ANY($1)")
        .bind(key_bytes(keys))
        .fetch_all(&mut *conn)
        .await?;
    let mut out = crate::store::PersonIds::with_capacity_and_hasher(rows.len(), Default::default());
    for r in rows {
        let k: Vec<u8> = r.try_get(0)?;
        let key = PersonKey::from_slice(&k).ok_or_else(|| corrupt("persons", "person_key length"))?;
        out.insert(key, r.try_get(1)?);
    }
    Ok(out)
}

/// A fact version from a row selected with [`FACT_COLUMNS_F`].
pub(super) fn stored_fact(r: &PgRow) -> Result<StoredFact, StoreError> {
    let kind: String = r.try_get(4)?;
    let kind = PayloadKind::parse(&kind).ok_or_else(|| corrupt("facts", format!("unknown kind {kind}")))?;
    let payload: String = r.try_get(8)?;
    if payload.is_empty() {
        // A retention tombstone (docs/retention.md): no read path selects one (current versions are never purged, the
        // change feed and snapshots read only versions newer than any purged); reaching one is a bug, said plainly.
        return Err(corrupt("facts", "a purged fact version (retention tombstone) has no payload to read"));
    }
    let payload = Payload::from_json(kind, &payload).map_err(|e| corrupt("facts", e.to_string()))?;
    fact_of_row(r, payload)
}

/// A fact read by `FactReads::comparison_facts_of_persons` (columns `COMPARISON_COLUMNS_F`): its payload made from
/// its `program` and `status` columns (`sql::comparison_payload`).
pub(super) fn comparison_fact(r: &PgRow) -> Result<StoredFact, StoreError> {
    let kind: String = r.try_get(4)?;
    let kind = PayloadKind::parse(&kind).ok_or_else(|| corrupt("facts", format!("unknown kind {kind}")))?;
    let program: Option<String> = r.try_get(8)?;
    let status: Option<String> = r.try_get(10)?;
    let payload = crate::store::sql::comparison_payload(kind, program.as_deref(), status.as_deref())?;
    fact_of_row(r, payload)
}

/// The columns of a fact row other than its payload (0–7 and 9 of `FACT_COLUMNS_F`), with `payload`.
fn fact_of_row(r: &PgRow, payload: Payload) -> Result<StoredFact, StoreError> {
    let pk: Vec<u8> = r.try_get(3)?;
    Ok(StoredFact {
        agency: r.try_get(0)?,
        fact_id: r.try_get(1)?,
        source_version: r.try_get::<i64, _>(2)? as u64,
        person_key: PersonKey::from_slice(&pk).ok_or_else(|| corrupt("facts", "person_key length"))?,
        division_code: r.try_get(5)?,
        valid_from: r.try_get(6)?,
        valid_to: r.try_get(7)?,
        payload,
        recorded_at: r.try_get(9)?,
    })
}
