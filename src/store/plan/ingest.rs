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
/// (`domain::versioning::decide`: ACCEPTED / NEW_VERSION / DUPLICATE / STALE).
pub(crate) fn plan_ingest(facts: &[PreparedFact], mut current: HashMap<(String, String), Current>) -> IngestPlan<'_> {
    let mut decisions = Vec::with_capacity(facts.len());
    let mut superseded: Vec<(String, String)> = Vec::new();
    let mut last_write: HashMap<(String, String), usize> = HashMap::new();
    let mut writes: Vec<(usize, &PreparedFact)> = Vec::new();
    let mut changes: Vec<(&PreparedFact, Option<(u64, String)>)> = Vec::new();
    for (i, f) in facts.iter().enumerate() {
        let key = (f.agency.as_str().to_owned(), f.fact.fact_id.clone());
        let stored = current.get(&key);
        let d = decide(stored.map(|c| c.version), f.fact.source_version, &f.content_hash);
        if d.writes() {
            if d == Decision::NewVersion && !last_write.contains_key(&key) {
                superseded.push(key.clone());
            }
            let prev = match stored {
                Some(c) if d == Decision::NewVersion => Some((c.version.source_version, c.division.clone())),
                _ => None,
            };
            changes.push((f, prev));
            current.insert(
                key.clone(),
                Current {
                    version: CurrentVersion { source_version: f.fact.source_version, content_hash: f.content_hash },
                    division: f.fact.division_code.as_str().to_owned(),
                },
            );
            last_write.insert(key, i);
            writes.push((i, f));
        }
        decisions.push(d);
    }
    superseded.sort_unstable();
    superseded.dedup();
    let rows = writes
        .iter()
        .map(|(i, f)| (last_write.get(&(f.agency.as_str().to_owned(), f.fact.fact_id.clone())) == Some(i), *f))
        .collect();
    IngestPlan { decisions, superseded, rows, changes }
}
