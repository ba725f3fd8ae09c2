//! P1: `StreamFacts` ingest of `n` facts from 5 agencies over mTLS into a child hub on SQLite (target ≥ 0.5 of the
//! floor and ≥ 50,000 facts/s). Floor: the same rows inserted straight into the same tables, in process (no gRPC, no
//! validation, no version lookup, no audit), one transaction per batch of [`super::load::BATCH`].

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::domain::agency::AgencyCode;
use crate::domain::fact::Fact;
use crate::security::crypto::Keys;
use crate::store::{NewPerson, PreparedFact, Store};

/// The floor: a fresh database with the hub's schema and pragmas (`Store::open`), each batch's rows prepared (person
/// key, encrypted ID number, payload JSON, content hash: not timed) and then inserted (timed: the sum of the insert
/// transactions). Returns the time the inserts took.
pub async fn floor(facts: &[(&'static str, Vec<Fact>)], batch: usize) -> anyhow::Result<Duration> {
    let dir = tempfile::Builder::new().prefix("doudi-bench-floor-").tempdir()?;
    floor_on(&format!("sqlite://{}", dir.path().join("floor.db").display()), facts, batch).await
}

/// The second floor (issue 16): the storage engine's own limit for this much data. The same batches' stored bytes (per
/// fact: agency, fact id, person key, division, business dates, payload JSON and content hash; per person new to the
/// batch: key, ciphertext and masked ID) appended as one blob each to a minimal table (integer key in arrival order,
/// blob), one transaction per batch, on a fresh SQLite database with the hub's pragmas. Returns the time the appends
/// took.
pub async fn engine_floor(facts: &[(&'static str, Vec<Fact>)], batch: usize) -> anyhow::Result<Duration> {
    let dir = tempfile::Builder::new().prefix("doudi-bench-engine-").tempdir()?;
    let store = Store::open(&format!("sqlite://{}", dir.path().join("engine.db").display())).await?;
    let keys = Keys::from_base64(&Keys::generate_base64())?;
    let mut spent = Duration::ZERO;
    let mut chunks: Vec<_> = facts.iter().map(|(a, f)| (AgencyCode::parse(a), f.chunks(batch))).collect();
    loop {
        let mut any = false;
        for (agency, it) in chunks.iter_mut() {
            let Some(chunk) = it.next() else { continue };
            any = true;
            let agency = agency.clone()?;
            let mut seen = HashSet::new();
            let mut blobs = Vec::with_capacity(chunk.len() * 2);
            for f in chunk {
                let key = keys.person_key(&f.id_number);
                if seen.insert(key) {
                    let mut b = key.as_bytes().to_vec();
                    b.extend(keys.encrypt(&f.id_number, &key));
                    b.extend(f.id_number.masked().as_bytes());
                    blobs.push(b);
                }
                let p = PreparedFact::new(agency.clone(), f.clone(), key);
                let mut b = Vec::with_capacity(p.payload_json.len() + 160);
                for part in [p.agency.as_str(), &p.fact.fact_id, p.fact.division_code.as_str()] {
                    b.extend(part.as_bytes());
                }
                b.extend(key.as_bytes());
                b.extend(p.fact.valid_from.to_string().as_bytes());
                b.extend(p.fact.valid_to.map(|d| d.to_string()).unwrap_or_default().as_bytes());
                b.extend(p.payload_json.as_bytes());
                b.extend(p.content_hash);
                blobs.push(b);
            }
            let t = Instant::now();
            store.bench_append_blobs(&blobs).await?;
            spent += t.elapsed();
        }
        if !any {
            break;
        }
    }
    store.close().await;
    Ok(spent)
}

/// [`floor`] on the (empty) database at `database_url`: on PostgreSQL the inserts are `COPY` (P7's floor).
pub async fn floor_on(
    database_url: &str,
    facts: &[(&'static str, Vec<Fact>)],
    batch: usize,
) -> anyhow::Result<Duration> {
    let store = Store::open(database_url).await?;
    store.migrate().await?;
    let keys = Keys::from_base64(&Keys::generate_base64())?;
    let mut spent = Duration::ZERO;
    // The agencies' batches interleaved, as the five streams arrive at the hub.
    let mut chunks: Vec<_> = facts.iter().map(|(a, f)| (AgencyCode::parse(a), f.chunks(batch))).collect();
    loop {
        let mut any = false;
        for (agency, it) in chunks.iter_mut() {
            let Some(chunk) = it.next() else { continue };
            any = true;
            let agency = agency.clone()?;
            let mut seen = HashSet::new();
            let mut persons = Vec::new();
            let rows: Vec<PreparedFact> = chunk
                .iter()
                .map(|f| {
                    let key = keys.person_key(&f.id_number);
                    if seen.insert(key) {
                        persons.push(NewPerson {
                            person_key: key,
                            id_cipher: keys.encrypt(&f.id_number, &key),
                            id_masked: f.id_number.masked(),
                        });
                    }
                    PreparedFact::new(agency.clone(), f.clone(), key)
                })
                .collect();
            let t = Instant::now();
            store.bench_insert_rows(&rows, &persons).await?;
            spent += t.elapsed();
        }
        if !any {
            break;
        }
    }
    store.close().await;
    Ok(spent)
}
