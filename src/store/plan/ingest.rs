//! What one ingest batch writes, decided from the current versions the backend loaded: shared by both backends
//! (only the loading and writing SQL differ).

use std::collections::HashMap;

use crate::domain::versioning::{CurrentVersion, Decision, decide};
use crate::store::PreparedFact;

/// The current version of a record as stored: its version and content hash, and its division (for the change
/// log's `prev_division`).
#[derive(Debug, Clone)]
pub(crate) struct Current {
    pub version: CurrentVersion,
    pub division: String,
}

/// The writes of one batch.
pub(crate) struct IngestPlan<'a> {
    /// One decision per fact, in batch order.
    pub decisions: Vec<Decision>,
    /// Records whose stored current version a NEW_VERSION replaces: `(agency, fact_id)`, sorted, once each.
    pub superseded: Vec<(String, String)>,
    /// Versions to insert in write order, `(is_current, fact)`: a record written twice in one batch keeps both
    /// versions, only the last current.
    pub rows: Vec<(bool, &'a PreparedFact)>,
    /// One change per written version, in write order: the fact and the version it superseded with its division.
    pub changes: Vec<(&'a PreparedFact, Option<(u64, String)>)>,
}

/// Decide each fact in order against the stored current versions and against earlier facts of the same batch
/// (`domain::versioning::decide`: ACCEPTED / NEW_VERSION / DUPLICATE / STALE). Runs under the writer lock, so its
/// records are keyed by borrowed `(agency, fact_id)`: no allocation per fact.
pub(crate) fn plan_ingest<'a>(
    facts: &[&'a PreparedFact],
    stored: HashMap<(String, String), Current>,
) -> IngestPlan<'a> {
    /// A record the batch writes: its version and division as last written, and the position in `writes` of that
    /// write.
    struct Written<'a> {
        version: CurrentVersion,
        division: &'a str,
        at: usize,
    }
    let stored: HashMap<(&str, &str), &Current> =
        stored.iter().map(|(k, c)| ((k.0.as_str(), k.1.as_str()), c)).collect();
    let mut written: HashMap<(&'a str, &'a str), Written<'a>> = HashMap::with_capacity(facts.len());
    let mut decisions = Vec::with_capacity(facts.len());
    let mut superseded: Vec<(String, String)> = Vec::new();
    let mut writes: Vec<&'a PreparedFact> = Vec::with_capacity(facts.len());
    let mut changes: Vec<(&'a PreparedFact, Option<(u64, String)>)> = Vec::with_capacity(facts.len());
    for &f in facts {
        let key = (f.agency.as_str(), f.fact.fact_id.as_str());
        let last = written.get(&key);
        let (version, division) = match (last, stored.get(&key)) {
            (Some(w), _) => (Some(w.version), Some(w.division)),
            (None, Some(c)) => (Some(c.version), Some(c.division.as_str())),
            (None, None) => (None, None),
        };
        let d = decide(version, f.fact.source_version, &f.content_hash);
        if d.writes() {
            let prev = match (version, division) {
                (Some(v), Some(div)) if d == Decision::NewVersion => Some((v.source_version, div.to_owned())),
                _ => None,
            };
            if d == Decision::NewVersion && last.is_none() {
                superseded.push((key.0.to_owned(), key.1.to_owned()));
            }
            changes.push((f, prev));
            let version = CurrentVersion { source_version: f.fact.source_version, content_hash: f.content_hash };
            written.insert(key, Written { version, division: f.fact.division_code.as_str(), at: writes.len() });
            writes.push(f);
        }
        decisions.push(d);
    }
    superseded.sort_unstable();
    superseded.dedup();
    let rows = writes
        .iter()
        .enumerate()
        .map(|(w, f)| {
            let last = written.get(&(f.agency.as_str(), f.fact.fact_id.as_str())).map(|r| r.at);
            (last == Some(w), *f)
        })
        .collect();
    IngestPlan { decisions, superseded, rows, changes }
}

/// The decisions of the concatenated batches, split back per batch (`FactStore::ingest_batches`).
pub(crate) fn split_decisions(
    batches: &[crate::store::IngestBatch<'_>],
    decisions: Vec<Decision>,
) -> Vec<Vec<Decision>> {
    let mut it = decisions.into_iter();
    batches.iter().map(|b| it.by_ref().take(b.facts.len()).collect()).collect()
}
