//! P1-audit: what the audit chain costs on ingest, in process.

use std::time::Instant;

use crate::security::certs;
use crate::security::crypto::Keys;
use crate::tools::synth::{Population, SynthConfig};

use super::Figure;

/// The audit chain's cost on ingest (issue 7 item 1): every fact of the population pushed in process through
/// `Hub::push_facts` (parsing done, then ownership, scope, validation, ID encryption, version decisions; one
/// transaction per batch of 1,000) into a fresh SQLite database, once with each batch's audit event (SELECT of the
/// chain head, one event row, one `audit_persons` row per person of the batch) and once without. The value is the
/// audited rate, the floor the unaudited one; the ratio is the share of the rate the audit chain leaves.
pub async fn run(persons: usize, out: &mut super::Output) -> anyhow::Result<()> {
    use crate::domain::agency::{AgencyCode, Principal};
    let pop = Population::generate(&SynthConfig { persons, ..SynthConfig::default() });
    // Two runs of each, alternating, best of each: the machine is shared and noisy, and order must not favour one.
    let mut rates = [0.0f64; 2];
    let mut n = 0;
    for (slot, skip_audit) in [(0, false), (1, true), (0, false), (1, true)] {
        let dir = tempfile::Builder::new().prefix("doudi-bench-").tempdir()?;
        let store = crate::store::Store::open(&format!("sqlite://{}", dir.path().join("bench.db").display())).await?;
        store.migrate().await?;
        let hub = crate::hub::Hub::new(
            store,
            Keys::from_base64(&Keys::generate_base64())?,
            Default::default(),
            crate::hub::Limits { bench_skip_ingest_audit: skip_audit, ..Default::default() },
        );
        let mut batches = Vec::new();
        for agency in AgencyCode::KNOWN.iter().filter(|a| **a != AgencyCode::LEADING_GROUP) {
            let principal = Principal::new(certs::DEFAULT_TRUST_DOMAIN, AgencyCode::parse(agency)?, None)?;
            let facts: Vec<_> = pop.facts(agency).collect();
            for chunk in facts.chunks(1_000) {
                batches.push((principal.clone(), chunk.to_vec()));
            }
        }
        n = batches.iter().map(|(_, b)| b.len()).sum::<usize>();
        let t = Instant::now();
        for (principal, batch) in batches {
            let results = hub
                .push_facts(&principal, "/doudi.v1.RecipientExchange/StreamFacts", batch.into_iter().map(Ok).collect())
                .await?;
            std::hint::black_box(results);
        }
        rates[slot] = rates[slot].max(n as f64 / t.elapsed().as_secs_f64());
        hub.store().close().await;
    }
    Figure::against_floor(
        "P1-audit",
        "in-process ingest (Hub::push_facts, batches of 1,000, SQLite) with the audit chain; floor = the same without it",
        rates[0],
        "facts/s",
        rates[1],
        n,
    )
    .emit(out)?;
    Ok(())
}
