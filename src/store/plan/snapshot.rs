//! Backend-neutral parts of `create_snapshot` and `verify_snapshot`: the one pass over a quarter's status rows,
//! the aggregates, the agency and medical sections, the JSON sections, sealing and the verification checks. Both
//! backends load rows and call these; only their SQL differs (docs/snapshot-format.md).

use crate::domain::coverage::{self};
use crate::domain::fact::{AssistanceStatus, Payload, PayloadKind};
use crate::domain::medical::FindingCode;
use crate::domain::money::Money;
use crate::domain::snapshot::{
    AgencyStats, AggregateRow, Aggregates, CoverageRow, FlowRow, OPTIONAL_SECTIONS, SECTIONS, StatusRow, content_hash,
};
use crate::domain::summary::{CodeCount, CountyCodeCount, LateCorrection, MedicalSection, Tiers};
use crate::security::crypto::PersonKey;
use crate::store::rows::*;
use crate::store::*;
use crate::store::{StoreError, to_micros};
use chrono::NaiveDate;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The one pass over a quarter's status rows, person by person (each person's rows together, in agency, fact id
/// byte order): accumulates the aggregates and coverage findings. The order of the persons does not matter (the
/// tally is sets and sums, its coverage rows are sorted at the end), so backends feed it in `person_id` order through
/// [`PersonOrderPass`], which reads the facts table along its own order; the statuses section's hash is computed from
/// the stored rows in canonical order instead (`statuses_hash` of each backend).
pub(crate) struct StatusPass<'i, 'a> {
    input: &'i SnapshotInput<'a>,
    tally: Tally,
    /// The person being read.
    person: Option<PersonRows>,
}

/// One person's status rows as read so far.
struct PersonRows {
    key: [u8; 32],
    cipher: Vec<u8>,
    /// The county of their first row.
    county: String,
    payloads: Vec<Payload>,
}

impl<'i, 'a> StatusPass<'i, 'a> {
    pub(crate) fn new(input: &'i SnapshotInput<'a>) -> Self {
        StatusPass { input, tally: Tally::default(), person: None }
    }

    /// One status row with its fact version's payload (canonical JSON) and its person's ID cipher.
    pub(crate) fn push(&mut self, row: StatusRow, cipher: &[u8], payload: &str) -> Result<(), StoreError> {
        let kind =
            PayloadKind::parse(&row.kind).ok_or_else(|| corrupt("facts", format!("unknown kind {}", row.kind)))?;
        let payload = Payload::from_json(kind, payload).map_err(|e| corrupt("facts", e.to_string()))?;
        match &mut self.person {
            Some(p) if p.key == row.person_key => p.payloads.push(payload),
            _ => {
                self.close_person();
                self.person = Some(PersonRows {
                    key: row.person_key,
                    cipher: cipher.to_vec(),
                    county: row.county_code,
                    payloads: vec![payload],
                });
            }
        }
        Ok(())
    }

    fn close_person(&mut self) {
        if let Some(p) = self.person.take() {
            finish_person(&mut self.tally, self.input, p.key, &p.cipher, &p.county, p.payloads);
        }
    }

    /// The tally (coverage rows sorted).
    pub(crate) fn finish(mut self) -> Tally {
        self.close_person();
        self.tally.coverage.sort();
        self.tally
    }
}

/// One status row of the pass as a backend reads it: the row, its person's `person_id` and ID cipher, the fact
/// version's payload (canonical JSON).
pub(crate) struct PassRow {
    pub person_id: i64,
    pub status: StatusRow,
    pub cipher: Vec<u8>,
    pub payload: String,
}

/// Feeds [`StatusPass`] from two sources ordered by `person_id`: the stream of current versions (read along the
/// `facts_current_person` index, so the facts table is read in about its own order rather than at random) and the few
/// versions superseded after the cutoff (`later`, read by the `facts_superseded` index). [`PersonMerge`] puts each
/// person's rows from both together, in canonical order.
pub(crate) struct PersonOrderPass<'i, 'a> {
    pass: StatusPass<'i, 'a>,
    merge: PersonMerge,
}

impl<'i, 'a> PersonOrderPass<'i, 'a> {
    pub(crate) fn new(input: &'i SnapshotInput<'a>, later: Vec<PassRow>) -> Self {
        PersonOrderPass { pass: StatusPass::new(input), merge: PersonMerge::new(later) }
    }

    /// The next row of the stream; rows must come in ascending `person_id`.
    pub(crate) fn push(&mut self, row: PassRow) -> Result<(), StoreError> {
        let pass = &mut self.pass;
        self.merge.push(row, &mut |r| pass.push(r.status, &r.cipher, &r.payload))
    }

    pub(crate) fn finish(mut self) -> Result<Tally, StoreError> {
        let pass = &mut self.pass;
        self.merge.finish(&mut |r| pass.push(r.status, &r.cipher, &r.payload))?;
        Ok(self.pass.finish())
    }
}

/// Merges a stream of rows in ascending `person_id` with a list of further rows (any order), emitting every person's
/// rows together, persons in ascending `person_id`, each person's rows in canonical order (agency, fact id: byte
/// order).
pub(crate) struct PersonMerge {
    later: std::iter::Peekable<std::vec::IntoIter<PassRow>>,
    person: Vec<PassRow>,
}

type Emit<'e> = dyn FnMut(PassRow) -> Result<(), StoreError> + 'e;

impl PersonMerge {
    pub(crate) fn new(mut later: Vec<PassRow>) -> Self {
        later.sort_by_key(|r| r.person_id);
        PersonMerge { later: later.into_iter().peekable(), person: Vec::new() }
    }

    /// The next row of the stream (ascending `person_id`, else a corrupt-store error).
    pub(crate) fn push(&mut self, row: PassRow, emit: &mut Emit) -> Result<(), StoreError> {
        match self.person.first().map(|p| p.person_id) {
            Some(id) if id == row.person_id => {}
            Some(id) if id > row.person_id => {
                return Err(corrupt("facts", "the snapshot pass read persons out of person_id order"));
            }
            _ => {
                self.flush(emit)?;
                self.flush_later_before(row.person_id, emit)?;
            }
        }
        self.person.push(row);
        Ok(())
    }

    pub(crate) fn finish(mut self, emit: &mut Emit) -> Result<(), StoreError> {
        self.flush(emit)?;
        self.flush_later_before(i64::MAX, emit)
    }

    /// The person gathered so far, with its rows from `later`, in canonical order.
    fn flush(&mut self, emit: &mut Emit) -> Result<(), StoreError> {
        let Some(id) = self.person.first().map(|r| r.person_id) else { return Ok(()) };
        while let Some(r) = self.later.next_if(|r| r.person_id == id) {
            self.person.push(r);
        }
        self.person.sort_by(|a, b| {
            (a.status.agency.as_bytes(), a.status.fact_id.as_bytes())
                .cmp(&(b.status.agency.as_bytes(), b.status.fact_id.as_bytes()))
        });
        self.person.drain(..).try_for_each(&mut *emit)
    }

    /// Persons below `id` that have rows in `later` only.
    fn flush_later_before(&mut self, id: i64, emit: &mut Emit) -> Result<(), StoreError> {
        while let Some(r) = self.later.next_if(|r| r.person_id < id) {
            self.person.push(r);
            self.flush(emit)?;
        }
        Ok(())
    }
}

/// Section `aggregates` from the tally; `before`: (person, program) → county of the ACTIVE enrolments of the
/// previous snapshot (`None` without one: no flows).
pub(crate) fn aggregates(tally: &Tally, before: Option<&HashMap<([u8; 32], String), String>>) -> Aggregates {
    let mut flows: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    if let Some(before) = before {
        for (k, county) in &tally.active {
            if !before.contains_key(k) {
                flows.entry((county.clone(), k.1.clone())).or_default().0 += 1;
            }
        }
        for (k, county) in before {
            if !tally.active.contains_key(k) {
                flows.entry((county.clone(), k.1.clone())).or_default().1 += 1;
            }
        }
    }
    Aggregates {
        rows: tally
            .cells
            .iter()
            .map(|((county, program, class, mode), (persons, households, fen))| AggregateRow {
                county_code: county.clone(),
                program: program.clone(),
                rural_class: *class,
                support_mode: mode.clone(),
                persons: persons.len() as u64,
                households: households.len() as u64,
                monthly_benefit_fen: *fen,
            })
            .collect(),
        flows: flows
            .into_iter()
            .map(|((county_code, program), (entries, exits))| FlowRow { county_code, program, entries, exits })
            .collect(),
    }
}

/// Section `agencies`: `pushed` = (agency, fact versions recorded in the window, last recorded_at in micros) per
/// agency; `outcomes` = (agency, outcome) of the window's push audit events that rejected records.
pub(crate) fn agency_stats(
    pushed: Vec<(String, u64, i64)>,
    outcomes: Vec<(String, String)>,
    cutoff: i64,
) -> Vec<AgencyStats> {
    let mut agencies: BTreeMap<String, AgencyStats> = BTreeMap::new();
    let stats = |a: &str| AgencyStats {
        agency: a.to_owned(),
        facts_pushed: 0,
        records_rejected: 0,
        last_push_micros: 0,
        freshness_secs: -1,
    };
    for (agency, facts_pushed, last) in pushed {
        let e = agencies.entry(agency.clone()).or_insert_with(|| stats(&agency));
        e.facts_pushed = facts_pushed;
        e.last_push_micros = last;
        e.freshness_secs = (cutoff - last) / 1_000_000;
    }
    for (agency, outcome) in outcomes {
        let n: u64 = outcome
            .split_whitespace()
            .find_map(|w| w.strip_prefix("rejected="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        agencies.entry(agency.clone()).or_insert_with(|| stats(&agency)).records_rejected += n;
    }
    agencies.into_values().collect()
}

/// The settlement totals of section `medical`.
pub(crate) struct SettlementTotals {
    pub settlements: u64,
    pub persons: u64,
    pub persons_assisted: u64,
    pub total_cost: Money,
    pub out_of_pocket: Money,
    pub paid: Tiers,
}

/// Section `medical` from the totals and the open findings counted by (county, code), sorted.
pub(crate) fn medical_section_of(t: SettlementTotals, by_county: Vec<CountyCodeCount>) -> MedicalSection {
    let mut by_code: BTreeMap<String, u64> = FindingCode::ALL.iter().map(|c| (c.as_str().to_owned(), 0)).collect();
    for c in &by_county {
        *by_code.entry(c.code.clone()).or_default() += c.count;
    }
    MedicalSection {
        settlements: t.settlements,
        persons: t.persons,
        persons_assisted: t.persons_assisted,
        total_cost: t.total_cost,
        out_of_pocket: t.out_of_pocket,
        paid: t.paid,
        findings_by_code: FindingCode::ALL
            .iter()
            .map(|c| CodeCount { code: c.as_str().to_owned(), count: by_code[c.as_str()] })
            .collect(),
        findings_by_county: by_county,
    }
}

/// The JSON sections to store, in hash order (every section but `statuses` and `coverage`).
pub(crate) fn json_sections(
    aggregates: &Aggregates,
    agencies: &[AgencyStats],
    medical: &MedicalSection,
    late: &[LateCorrection],
    hub_sections: &BTreeMap<&'static str, String>,
) -> Result<Vec<(&'static str, String)>, StoreError> {
    let mut bodies: BTreeMap<&str, String> = BTreeMap::new();
    bodies.insert("aggregates", json(aggregates)?);
    bodies.insert("agencies", json(&agencies)?);
    bodies.insert("medical", json(medical)?);
    bodies.insert("late_corrections", json(&late)?);
    for (name, body) in hub_sections {
        bodies.insert(name, body.clone());
    }
    let mut out = SECTIONS
        .iter()
        .filter(|n| !matches!(**n, "statuses" | "coverage"))
        .map(|name| {
            let body = bodies.remove(name).ok_or_else(|| corrupt("snapshot_sections", format!("{name} missing")))?;
            Ok((*name, body))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    // Optional sections (`campaigns`) only when the hub computed one: without, the snapshot is v1 as before.
    for name in OPTIONAL_SECTIONS {
        if let Some(body) = bodies.remove(name) {
            out.push((name, body));
        }
    }
    Ok(out)
}

/// The header fields computed at creation: content hash, previous hash, section hashes as the stored JSON object.
pub(crate) fn seal(
    quarter: &str,
    as_of: NaiveDate,
    cutoff_micros: i64,
    hashes: &BTreeMap<String, [u8; 32]>,
    previous: Option<&SnapshotHeader>,
) -> Result<([u8; 32], [u8; 32], String), StoreError> {
    let content = content_hash(quarter, &as_of.to_string(), cutoff_micros, hashes);
    let previous_hash = previous.map(|p| p.content_hash).unwrap_or(ZERO);
    let section_hex: BTreeMap<String, String> = hashes.iter().map(|(k, v)| (k.clone(), hex::encode(v))).collect();
    Ok((content, previous_hash, json(&section_hex)?))
}

/// A header's content hash recomputed from the section hashes recomputed from its stored rows.
pub(crate) fn recompute(h: &SnapshotHeader, hashes: &BTreeMap<String, [u8; 32]>) -> [u8; 32] {
    content_hash(&h.quarter, &h.as_of.to_string(), to_micros(h.knowledge_cutoff), hashes)
}

/// What the previous snapshot of a verified one turned out to be.
pub(crate) enum PreviousCheck {
    /// The header names none.
    None,
    /// The named previous snapshot is not stored.
    Missing(String),
    /// The named previous snapshot's recomputed content hash.
    Recomputed(String, [u8; 32]),
}

/// The differences between a stored header and what its rows recompute to (the fact-version check is separate:
/// [`altered_fact`]). Returns the recomputed content hash and the differences.
pub(crate) fn header_differences(
    h: &SnapshotHeader,
    hashes: &BTreeMap<String, [u8; 32]>,
    previous: PreviousCheck,
) -> ([u8; 32], Vec<String>) {
    let mut differences = Vec::new();
    // Every section of v1, and each optional one the header records or the stored rows hold.
    let optional =
        OPTIONAL_SECTIONS.into_iter().filter(|n| h.section_hashes.contains_key(*n) || hashes.contains_key(*n));
    for name in SECTIONS.into_iter().chain(optional) {
        let stored = h.section_hashes.get(name).cloned().unwrap_or_default();
        let now = hashes.get(name).map(hex::encode).unwrap_or_default();
        if stored != now {
            differences.push(format!("section {name}: stored hash {stored}, recomputed {now}"));
        }
    }
    let recomputed = recompute(h, hashes);
    if recomputed != h.content_hash {
        differences.push(format!(
            "content_hash: stored {}, recomputed {}",
            hex::encode(h.content_hash),
            hex::encode(recomputed)
        ));
    }
    match previous {
        PreviousCheck::Recomputed(pq, p_now) => {
            if p_now != h.previous_hash {
                differences.push(format!(
                    "previous_hash: {} but snapshot {pq} recomputes to {}",
                    hex::encode(h.previous_hash),
                    hex::encode(p_now)
                ));
            }
        }
        PreviousCheck::Missing(pq) => differences.push(format!("previous snapshot {pq} is missing")),
        PreviousCheck::None if h.previous_hash != ZERO => {
            differences.push("previous_hash set without a previous snapshot".into())
        }
        PreviousCheck::None => {}
    }
    (recomputed, differences)
}

/// The difference naming a status row whose fact version is missing or no longer has the content it pinned.
pub(crate) fn altered_fact(agency: &str, fact_id: &str, version: i64) -> String {
    format!("fact {agency}/{fact_id} version {version}: missing or altered since the snapshot")
}

/// Every finding code with its count (0 where none), from the counts by code.
pub(crate) fn all_codes(by: BTreeMap<String, u64>) -> Vec<(String, u64)> {
    FindingCode::ALL.iter().map(|c| (c.as_str().to_owned(), by.get(c.as_str()).copied().unwrap_or(0))).collect()
}

/// Close one person's group of status rows: aggregates and coverage.
fn finish_person(
    tally: &mut Tally,
    input: &SnapshotInput<'_>,
    key: [u8; 32],
    cipher: &[u8],
    county: &str,
    payloads: Vec<Payload>,
) {
    let mut any_active = false;
    for p in &payloads {
        if let Payload::Assistance(a) = p
            && a.status == Some(AssistanceStatus::Active)
            && let Some(program) = a.program
        {
            any_active = true;
            let cell = (
                county.to_owned(),
                program.as_str().to_owned(),
                a.rural_class.unwrap_or(0),
                a.support_mode.map(|m| m.as_str().to_owned()).unwrap_or_default(),
            );
            let e = tally.cells.entry(cell).or_default();
            e.0.insert(key);
            if let Some(h) = &a.household_id {
                e.1.insert(h.clone());
            }
            e.2 += a.monthly_benefit.map(Money::to_fen).unwrap_or(0);
            tally.active.insert((key, program.as_str().to_owned()), county.to_owned());
        }
    }
    if !any_active {
        return;
    }
    let pk = PersonKey::from_slice(&key).expect("32 bytes");
    let birth = (input.birth_date)(&pk, cipher);
    for code in coverage::evaluate(&payloads, birth, input.as_of, input.coverage_params, input.standards) {
        tally.coverage.push(CoverageRow {
            code: code.to_owned(),
            person_key: key,
            agency_to_act: coverage::agency_to_act(code).unwrap_or_default().to_owned(),
            county_code: county.to_owned(),
        });
    }
}

/// Per-person accumulation while the statuses stream by.
#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) cells: BTreeMap<CellKey, Cell>,
    /// (person, program) → county, ACTIVE now.
    pub(crate) active: HashMap<([u8; 32], String), String>,
    pub(crate) coverage: Vec<CoverageRow>,
}

pub(crate) fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| corrupt("snapshot_sections", e.to_string()))
}

/// The previous-snapshot hash of the first snapshot in the chain.
pub(crate) const ZERO: [u8; 32] = [0; 32];

/// (county, program, rural class, support mode).
pub(crate) type CellKey = (String, String, u8, String);
/// Persons, households, benefit fen of one cell.
pub(crate) type Cell = (HashSet<[u8; 32]>, HashSet<String>, i128);

#[cfg(test)]
mod tests {
    use super::*;

    fn row(person_id: i64, agency: &str, fact_id: &str) -> PassRow {
        PassRow {
            person_id,
            status: StatusRow {
                person_key: [person_id as u8; 32],
                agency: agency.into(),
                fact_id: fact_id.into(),
                source_version: 1,
                kind: "assistance".into(),
                county_code: "621022".into(),
                content_hash: [0; 32],
            },
            cipher: Vec::new(),
            payload: String::new(),
        }
    }

    fn merged(stream: Vec<PassRow>, later: Vec<PassRow>) -> Result<Vec<(i64, String)>, StoreError> {
        let mut out = Vec::new();
        let mut emit = |r: PassRow| -> Result<(), StoreError> {
            out.push((r.person_id, format!("{}/{}", r.status.agency, r.status.fact_id)));
            Ok(())
        };
        let mut m = PersonMerge::new(later);
        for r in stream {
            m.push(r, &mut emit)?;
        }
        m.finish(&mut emit)?;
        Ok(out)
    }

    /// Persons in ascending id, each person's rows from both sources together in byte order of (agency, fact id);
    /// persons found only among the later-superseded rows come before, between and after the stream's persons.
    /// Expected order worked out by hand: 1 (later only) · 2: "A" < "AA" < "B" · 5: "a" < "education" · 7 (later
    /// only) · 9 · 12 (later only, after the stream).
    #[test]
    fn persons_of_both_sources_are_merged_in_id_then_canonical_order() {
        let stream = vec![
            row(2, "civil_affairs", "B"),
            row(2, "civil_affairs", "A"),
            row(5, "education", "S"),
            row(9, "civil_affairs", "Z"),
        ];
        let later = vec![
            row(7, "x", "L7"),
            row(2, "civil_affairs", "AA"),
            row(1, "x", "L1"),
            row(12, "x", "L12"),
            row(5, "a", "S0"),
        ];
        let expected: Vec<(i64, String)> = [
            (1, "x/L1"),
            (2, "civil_affairs/A"),
            (2, "civil_affairs/AA"),
            (2, "civil_affairs/B"),
            (5, "a/S0"),
            (5, "education/S"),
            (7, "x/L7"),
            (9, "civil_affairs/Z"),
            (12, "x/L12"),
        ]
        .into_iter()
        .map(|(p, s)| (p, s.to_owned()))
        .collect();
        assert_eq!(merged(stream, later).unwrap(), expected);
    }

    /// A stream that goes back to a smaller person id is a corrupt store, not a silently split person.
    #[test]
    fn a_stream_out_of_person_order_is_refused() {
        let stream = vec![row(5, "a", "1"), row(3, "a", "2")];
        assert!(matches!(merged(stream, vec![]), Err(StoreError::Corrupt { .. })));
    }
}
