//! Quarterly snapshots (docs/spec/coordination.md): the sections, their canonical serialization and the content hash.
//!
//! The format is documented for outsiders in `docs/snapshot-format.md` (an agency can recompute a hash from an
//! export); this module is its reference implementation. Pure: no I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Format label, the first line of the hashed header.
pub const FORMAT: &str = "doudi-snapshot-v1";

/// The sections in hash order. `statuses` and `coverage` are row tables; the others are JSON documents.
pub const SECTIONS: [&str; 9] = [
    "statuses",
    "aggregates",
    "agencies",
    "coverage",
    "medical",
    "fund_reports",
    "warnings",
    "late_corrections",
    "standards",
];

/// One status row (section `statuses`): a fact version in force on `as_of`, as known at the cutoff.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StatusRow {
    pub person_key: [u8; 32],
    pub agency: String,
    pub fact_id: String,
    pub source_version: u64,
    pub kind: String,
    pub county_code: String,
    pub content_hash: [u8; 32],
}

impl StatusRow {
    /// `hex(person_key)|agency|fact_id|source_version|kind|county_code|hex(content_hash)\n`
    pub fn canonical_line(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}|{}|{}\n",
            hex::encode(self.person_key),
            self.agency,
            self.fact_id,
            self.source_version,
            self.kind,
            self.county_code,
            hex::encode(self.content_hash)
        )
    }
}

/// One coverage row (section `coverage`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CoverageRow {
    pub code: String,
    pub person_key: [u8; 32],
    pub agency_to_act: String,
    pub county_code: String,
}

impl CoverageRow {
    /// `code|hex(person_key)|agency_to_act|county_code\n`
    pub fn canonical_line(&self) -> String {
        format!("{}|{}|{}|{}\n", self.code, hex::encode(self.person_key), self.agency_to_act, self.county_code)
    }
}

/// SHA-256 over lines in the given order (the caller sorts: statuses by person key, agency, fact id; coverage by
/// code, person key — byte order of the hex/UTF-8 text equals the key order used).
pub fn rows_hash<'a>(lines: impl Iterator<Item = String> + 'a) -> [u8; 32] {
    let mut h = Sha256::new();
    for l in lines {
        h.update(l.as_bytes());
    }
    h.finalize().into()
}

/// SHA-256 of a JSON section's stored body (its UTF-8 bytes).
pub fn body_hash(body: &str) -> [u8; 32] {
    Sha256::digest(body.as_bytes()).into()
}

/// The content hash: SHA-256 over
/// ```text
/// doudi-snapshot-v1\n
/// quarter=2023Q2\n
/// as_of=2023-06-30\n
/// knowledge_cutoff=<microseconds since the Unix epoch>\n
/// <section>=<hex SHA-256>\n      (one line per section, in SECTIONS order)
/// ```
/// `previous_hash` is not part of it: the chain is checked by comparing it with the previous snapshot's
/// recomputed content hash.
pub fn content_hash(quarter: &str, as_of: &str, cutoff_micros: i64, sections: &BTreeMap<String, [u8; 32]>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(format!("{FORMAT}\nquarter={quarter}\nas_of={as_of}\nknowledge_cutoff={cutoff_micros}\n"));
    for name in SECTIONS {
        let hash = sections.get(name).map(hex::encode).unwrap_or_default();
        h.update(format!("{name}={hash}\n"));
    }
    h.finalize().into()
}

/// Section `aggregates`: one row per county × program × rural class × support mode (ACTIVE enrolments on `as_of`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggregateRow {
    pub county_code: String,
    pub program: String,
    /// 1–4 for rural dibao, else 0.
    pub rural_class: u8,
    /// "CENTRALIZED" / "DISPERSED" for tekun, else "".
    pub support_mode: String,
    pub persons: u64,
    pub households: u64,
    /// Sum of monthly benefits, fen.
    pub monthly_benefit_fen: i128,
}

/// Entries and exits of one county × program since the previous snapshot: persons ACTIVE in the program now and
/// not then (counted in their current county), and the reverse (counted in their county then). Empty without a
/// previous snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowRow {
    pub county_code: String,
    pub program: String,
    pub entries: u64,
    pub exits: u64,
}

/// Section `aggregates`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aggregates {
    /// Sorted by county, program, rural class, support mode.
    pub rows: Vec<AggregateRow>,
    /// Sorted by county, program.
    pub flows: Vec<FlowRow>,
}

/// Section `agencies`: per agency, what it pushed between the previous cutoff (or the beginning) and this one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgencyStats {
    pub agency: String,
    /// Fact versions recorded in (previous cutoff, cutoff].
    pub facts_pushed: u64,
    /// Records rejected in that window (from the audit events of its pushes).
    pub records_rejected: u64,
    /// Last fact recorded at or before the cutoff, microseconds since the Unix epoch (0 if never).
    pub last_push_micros: i64,
    /// cutoff − last push, seconds (−1 if never): data freshness.
    pub freshness_secs: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_hash_covers_header_and_every_section() {
        let mut s: BTreeMap<String, [u8; 32]> = SECTIONS.iter().map(|n| (n.to_string(), [0u8; 32])).collect();
        let base = content_hash("2023Q2", "2023-06-30", 1, &s);
        assert_ne!(base, content_hash("2023Q3", "2023-06-30", 1, &s));
        assert_ne!(base, content_hash("2023Q2", "2023-06-29", 1, &s));
        assert_ne!(base, content_hash("2023Q2", "2023-06-30", 2, &s));
        s.insert("warnings".into(), [1u8; 32]);
        assert_ne!(base, content_hash("2023Q2", "2023-06-30", 1, &s));
    }

    #[test]
    fn status_line_is_the_documented_form() {
        let r = StatusRow {
            person_key: [0xab; 32],
            agency: "civil_affairs".into(),
            fact_id: "MZ-1".into(),
            source_version: 3,
            kind: "assistance".into(),
            county_code: "621022".into(),
            content_hash: [0x01; 32],
        };
        let line = r.canonical_line();
        assert!(line.starts_with(&format!("{}|civil_affairs|MZ-1|3|assistance|621022|", "ab".repeat(32))));
        assert!(line.ends_with(&format!("{}\n", "01".repeat(32))));
        // SHA-256("") for an empty table.
        assert_eq!(
            hex::encode(rows_hash(std::iter::empty())),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
