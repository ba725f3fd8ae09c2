//! Quarterly snapshots (docs/spec/coordination.md): the sections, their canonical serialization and the content hash.
//!
//! The format is documented for outsiders in `docs/snapshot-format.md` (an agency can recompute a hash from an
//! export); this module is its reference implementation. Pure: no I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Format label, the first line of the hashed header of a snapshot without optional sections (every snapshot frozen
/// before they existed, and every quarter without a subsidy campaign month since).
pub const FORMAT: &str = "doudi-snapshot-v1";

/// Format label of a snapshot holding an optional section ([`OPTIONAL_SECTIONS`]): the v1 text with this first line
/// and one more line per optional section present, after the nine of v1 (docs/snapshot-format.md "Format v2").
pub const FORMAT_V2: &str = "doudi-snapshot-v2";

/// Sections a snapshot holds only when it has something to say, in hash order after [`SECTIONS`]: `campaigns`, the
/// subsidy campaigns of the quarter (docs/subsidies.md "In the quarterly summary"; JSON,
/// `domain::summary::CampaignSection`). A snapshot holding one is [`FORMAT_V2`]; one holding none is [`FORMAT`],
/// byte for byte as before, so every snapshot frozen earlier keeps its content hash.
pub const OPTIONAL_SECTIONS: [&str; 1] = ["campaigns"];

/// The format of a snapshot with these section hashes: [`FORMAT_V2`] when an optional section is among them, else
/// [`FORMAT`].
pub fn format_of<V>(sections: &BTreeMap<String, V>) -> &'static str {
    if OPTIONAL_SECTIONS.iter().any(|n| sections.contains_key(*n)) { FORMAT_V2 } else { FORMAT }
}

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
/// doudi-snapshot-v1\n                (doudi-snapshot-v2 when an optional section is present: format_of)
/// quarter=2023Q2\n
/// as_of=2023-06-30\n
/// knowledge_cutoff=<microseconds since the Unix epoch>\n
/// <section>=<hex SHA-256>\n      (one line per section, in SECTIONS order)
/// <optional>=<hex SHA-256>\n     (v2 only: one line per OPTIONAL_SECTIONS entry present, in that order)
/// ```
/// `previous_hash` is not part of it: the chain is checked by comparing it with the previous snapshot's
/// recomputed content hash.
pub fn content_hash(quarter: &str, as_of: &str, cutoff_micros: i64, sections: &BTreeMap<String, [u8; 32]>) -> [u8; 32] {
    let mut h = Sha256::new();
    let format = format_of(sections);
    h.update(format!("{format}\nquarter={quarter}\nas_of={as_of}\nknowledge_cutoff={cutoff_micros}\n"));
    for name in SECTIONS {
        let hash = sections.get(name).map(hex::encode).unwrap_or_default();
        h.update(format!("{name}={hash}\n"));
    }
    for name in OPTIONAL_SECTIONS {
        if let Some(hash) = sections.get(name) {
            h.update(format!("{name}={}\n", hex::encode(hash)));
        }
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

    /// The two formats by their documented text (docs/snapshot-format.md "Content hash", "Format v2"): a snapshot
    /// without `campaigns` hashes the v1 text exactly as before; with it, the first line says v2 and one line follows
    /// the nine of v1. Section hashes of 0x00…, 0x11…, … 0x99… (one byte repeated per section, in order) and 0xaa…
    /// for campaigns.
    #[test]
    fn the_content_hash_is_sha256_of_the_documented_v1_and_v2_texts() {
        let mut s: BTreeMap<String, [u8; 32]> =
            SECTIONS.iter().enumerate().map(|(i, n)| (n.to_string(), [0x11 * i as u8; 32])).collect();
        let lines: String = SECTIONS
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{n}={}\n", format!("{:02x}", 0x11 * i as u8).repeat(32)))
            .collect();
        let head = "quarter=2023Q2\nas_of=2023-06-30\nknowledge_cutoff=1701400000000000\n";
        let v1 = format!("doudi-snapshot-v1\n{head}{lines}");
        let sha = |t: &str| -> [u8; 32] { Sha256::digest(t.as_bytes()).into() };
        assert_eq!(format_of(&s), FORMAT);
        assert_eq!(content_hash("2023Q2", "2023-06-30", 1_701_400_000_000_000, &s), sha(&v1));
        s.insert("campaigns".into(), [0xaa; 32]);
        let v2 = format!("doudi-snapshot-v2\n{head}{lines}campaigns={}\n", "aa".repeat(32));
        assert_eq!(format_of(&s), FORMAT_V2);
        assert_eq!(content_hash("2023Q2", "2023-06-30", 1_701_400_000_000_000, &s), sha(&v2));
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
