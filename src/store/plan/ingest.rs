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
pub(crate) fn plan_ingest<'a>(facts: &[&'a PreparedFact], stored: crate::store::CurrentVersions) -> IngestPlan<'a> {
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

#[cfg(test)]
mod tests {
    //! `plan_ingest` against a model that decides one fact at a time (`domain::versioning::decide`) on a map of
    //! current versions, as a client pushing the facts one by one would see them decided. The model's writes are the
    //! plan's, in the same order; a written version is current when no later write of the batch names its record;
    //! the superseded records are exactly the stored ones that the batch writes at all (the first write of a stored
    //! record can only be a NEW_VERSION of it).

    use std::collections::{BTreeSet, HashMap};

    use chrono::NaiveDate;
    use proptest::prelude::*;

    use super::*;
    use crate::domain::agency::AgencyCode;
    use crate::domain::division::DivisionCode;
    use crate::domain::fact::{Fact, Payload, Stage, Student};
    use crate::domain::id_number::IdNumber;
    use crate::security::crypto::PersonKey;

    const AGENCIES: [&str; 2] = ["civil_affairs", "education"];
    const DIVISIONS: [&str; 2] = ["621021", "621022"];

    /// A fact of record (agency, `F{id}`), version `v`, content hash all `content`, in division `div`.
    fn fact(agency: usize, id: usize, v: u64, content: u8, div: usize) -> PreparedFact {
        let fact = Fact {
            fact_id: format!("F{id}"),
            source_version: v,
            id_number: IdNumber::from_parts("621021", NaiveDate::from_ymd_opt(1980, 1, 1).unwrap(), 1),
            division_code: DivisionCode::parse(DIVISIONS[div]).unwrap(),
            valid_from: NaiveDate::from_ymd_opt(2023, 1, 1).unwrap(),
            valid_to: None,
            payload: Payload::Student(Student { stage: Some(Stage::Primary), school_code: None }),
        };
        PreparedFact {
            agency: AgencyCode::parse(AGENCIES[agency]).unwrap(),
            fact,
            person_key: PersonKey::from_slice(&[7; 32]).unwrap(),
            payload_json: String::new(),
            content_hash: [content; 32],
        }
    }

    type Key = (String, String);

    fn key_of(f: &PreparedFact) -> Key {
        (f.agency.as_str().to_owned(), f.fact.fact_id.clone())
    }

    proptest! {
        #[test]
        fn the_plan_is_the_one_fact_at_a_time_model(
            stored in proptest::collection::vec(proptest::option::of((0u64..6, 0u8..3, 0usize..2)), 8),
            pushed in proptest::collection::vec((0usize..2, 0usize..4, 0u64..8, 0u8..3, 0usize..2), 0..60),
        ) {
            // Stored current versions: record i is (agency i / 4, F{i % 4}).
            let mut current = crate::store::CurrentVersions::default();
            for (i, s) in stored.iter().enumerate() {
                if let Some((v, c, div)) = s {
                    current.insert(
                        (AGENCIES[i / 4].to_owned(), format!("F{}", i % 4)),
                        Current {
                            version: CurrentVersion { source_version: *v, content_hash: [*c; 32] },
                            division: DIVISIONS[*div].to_owned(),
                        },
                    );
                }
            }
            let facts: Vec<PreparedFact> = pushed.iter().map(|&(a, id, v, c, div)| fact(a, id, v, c, div)).collect();
            let refs: Vec<&PreparedFact> = facts.iter().collect();
            let plan = plan_ingest(&refs, current.clone());

            // The model: one fact at a time against the map, updated by each write.
            let mut model: HashMap<Key, (CurrentVersion, String)> =
                current.iter().map(|(k, c)| (k.clone(), (c.version, c.division.clone()))).collect();
            let mut decisions = Vec::new();
            let mut writes: Vec<usize> = Vec::new();
            let mut changes: Vec<(usize, Option<(u64, String)>)> = Vec::new();
            let mut superseded: BTreeSet<Key> = BTreeSet::new();
            for (i, f) in facts.iter().enumerate() {
                let k = key_of(f);
                let before = model.get(&k).cloned();
                let d = decide(before.as_ref().map(|b| b.0), f.fact.source_version, &f.content_hash);
                decisions.push(d);
                if d.writes() {
                    if current.contains_key(&k) {
                        superseded.insert(k.clone());
                    }
                    let prev = match (&before, d) {
                        (Some((v, div)), Decision::NewVersion) => Some((v.source_version, div.clone())),
                        _ => None,
                    };
                    changes.push((i, prev));
                    writes.push(i);
                    let v = CurrentVersion { source_version: f.fact.source_version, content_hash: f.content_hash };
                    model.insert(k, (v, f.fact.division_code.as_str().to_owned()));
                }
            }
            let rows: Vec<(bool, usize)> = writes
                .iter()
                .map(|&i| (!writes.iter().any(|&j| j > i && key_of(&facts[j]) == key_of(&facts[i])), i))
                .collect();

            // The plan's references point into `facts`: compare by position.
            let at = |p: &PreparedFact| facts.iter().position(|f| std::ptr::eq(f, p)).unwrap();
            prop_assert_eq!(&plan.decisions, &decisions);
            prop_assert_eq!(plan.superseded, superseded.into_iter().collect::<Vec<_>>());
            prop_assert_eq!(plan.rows.iter().map(|(c, f)| (*c, at(f))).collect::<Vec<_>>(), rows);
            prop_assert_eq!(plan.changes.iter().map(|(f, p)| (at(f), p.clone())).collect::<Vec<_>>(), changes);
            // Every record written ends with exactly one current row, the highest version written for it.
            for (k, (v, _)) in &model {
                let cur: Vec<u64> = plan
                    .rows
                    .iter()
                    .filter(|(c, f)| *c && &key_of(f) == k)
                    .map(|(_, f)| f.fact.source_version)
                    .collect();
                if plan.rows.iter().any(|(_, f)| &key_of(f) == k) {
                    prop_assert_eq!(cur, vec![v.source_version]);
                }
            }
        }
    }
}
