//! Answers to findings (issue 19 item 1, docs/findings.md): a finding's stable identity (medical and coverage), the
//! three answer states and the rules of an answer that need no stored data. Who may answer is the access policy's
//! ([`super::policy::may_answer`]). No I/O.

use super::calendar::Quarter;
use super::medical::FindingCode;

/// Shortest DISPUTED reason, in characters ("a reason of at least a few words").
pub const MIN_DISPUTE_REASON_CHARS: usize = 10;

/// Longest reason or note, in characters.
pub const MAX_REASON_CHARS: usize = 1000;

/// An answer's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AnswerState {
    /// The agency is working on it.
    InProgress,
    /// Fixed by the named fact version or settlement correction (checked by the hub).
    Fixed,
    /// The agency disputes the finding, with a reason.
    Disputed,
}

impl AnswerState {
    /// The stored and documented name.
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerState::InProgress => "IN_PROGRESS",
            AnswerState::Fixed => "FIXED",
            AnswerState::Disputed => "DISPUTED",
        }
    }

    /// The inverse of [`AnswerState::as_str`].
    pub fn parse(s: &str) -> Option<AnswerState> {
        match s {
            "IN_PROGRESS" => Some(AnswerState::InProgress),
            "FIXED" => Some(AnswerState::Fixed),
            "DISPUTED" => Some(AnswerState::Disputed),
            _ => None,
        }
    }
}

/// Which findings a listing keeps by their latest answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerFilter {
    /// Findings without any answer.
    Unanswered,
    /// Findings whose latest answer is in this state.
    State(AnswerState),
}

/// A medical finding's stable identity: `medical/<agency>/<settlement_id>/<code>` (the settlement's agency, its id as
/// submitted, the finding code's name), e.g. `medical/medical_insurance/S-2023-0001/ASSISTANCE_MISSED`. It carries no
/// ID number or person key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FindingId {
    pub agency: String,
    pub settlement_id: String,
    pub code: FindingCode,
}

impl FindingId {
    /// The documented string form.
    pub fn to_id_string(&self) -> String {
        format!("medical/{}/{}/{}", self.agency, self.settlement_id, self.code.as_str())
    }

    /// Parse the string form. The settlement id may itself contain `/`: the agency is the second part and the code
    /// the last. Errors say what is wrong (for INVALID_ARGUMENT naming `finding_id`).
    pub fn parse(s: &str) -> Result<FindingId, String> {
        let rest = s.strip_prefix("medical/").ok_or_else(|| {
            format!("{s:?} is not a finding id: medical findings are named medical/<agency>/<settlement_id>/<code>")
        })?;
        let (agency, rest) = rest.split_once('/').ok_or("has no settlement id after the agency")?;
        let (settlement_id, code) = rest.rsplit_once('/').ok_or("has no finding code after the settlement id")?;
        if agency.is_empty() {
            return Err("has an empty agency".into());
        }
        if settlement_id.is_empty() {
            return Err("has an empty settlement id".into());
        }
        if s.chars().any(char::is_control) {
            return Err("contains control characters".into());
        }
        let code = FindingCode::parse(code).ok_or_else(|| format!("{code:?} is not a finding code"))?;
        Ok(FindingId { agency: agency.to_owned(), settlement_id: settlement_id.to_owned(), code })
    }
}

/// A coverage finding's stable identity: `coverage/<quarter>/<rule code>/<hex person key>`, e.g.
/// `coverage/2023Q2/UNINSURED/3f…` (64 lower-case hex digits): one row of the snapshot's `coverage` section
/// (docs/snapshot-format.md), whose key is (quarter, code, person key). It carries no ID number; the person key is
/// the pseudonym the snapshot's rows already carry (HMAC-SHA256 of the ID number, docs/spec/security.md).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CoverageFindingId {
    pub quarter: Quarter,
    /// A rule code of [`super::coverage::RULES`].
    pub code: &'static str,
    pub person_key: [u8; 32],
}

impl CoverageFindingId {
    /// The documented string form.
    pub fn to_id_string(&self) -> String {
        format!("coverage/{}/{}/{}", self.quarter, self.code, hex::encode(self.person_key))
    }

    /// Parse the string form. Errors say what is wrong (for INVALID_ARGUMENT naming `finding_id`).
    pub fn parse(s: &str) -> Result<CoverageFindingId, String> {
        let rest = s.strip_prefix("coverage/").ok_or_else(|| {
            format!("{s:?} is not a coverage finding id: they are named coverage/<quarter>/<code>/<person key>")
        })?;
        let parts: Vec<&str> = rest.split('/').collect();
        let [quarter, code, key] = parts[..] else {
            return Err("is not coverage/<quarter>/<code>/<person key> (three parts after coverage/)".into());
        };
        let quarter: Quarter = quarter.parse().map_err(|_| format!("quarter {quarter:?} is not YYYYQn"))?;
        let code = super::coverage::RULES
            .iter()
            .map(|(c, _)| *c)
            .find(|c| *c == code)
            .ok_or_else(|| format!("{code:?} is not a coverage rule code (docs/spec/coordination.md)"))?;
        if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err("person key is not 64 lower-case hex digits".into());
        }
        let mut person_key = [0u8; 32];
        hex::decode_to_slice(key, &mut person_key).map_err(|e| format!("person key: {e}"))?;
        Ok(CoverageFindingId { quarter, code, person_key })
    }
}

/// Any finding's identity, by its prefix: `medical/…` ([`FindingId`]) or `coverage/…` ([`CoverageFindingId`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AnyFindingId {
    Medical(FindingId),
    Coverage(CoverageFindingId),
}

impl AnyFindingId {
    /// Parse either form; errors say what is wrong (for INVALID_ARGUMENT naming `finding_id`).
    pub fn parse(s: &str) -> Result<AnyFindingId, String> {
        if s.starts_with("coverage/") {
            CoverageFindingId::parse(s).map(AnyFindingId::Coverage)
        } else if s.starts_with("medical/") {
            FindingId::parse(s).map(AnyFindingId::Medical)
        } else {
            Err(format!(
                "{s:?} is not a finding id: medical/<agency>/<settlement_id>/<code> or \
                 coverage/<quarter>/<code>/<person key>"
            ))
        }
    }
}

/// What a FIXED answer names as the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FixedBy {
    /// A fact version, `agency/fact_id/source_version`.
    FactVersion { agency: String, fact_id: String, source_version: i64 },
    /// A settlement of the finding's settlement agency, by its id (a correction submitted after the finding).
    Settlement { settlement_id: String },
}

impl FixedBy {
    /// Parse a fact version reference `agency/fact_id/source_version` (the fact id may contain `/`).
    pub fn parse_fact_version(s: &str) -> Result<FixedBy, String> {
        let (agency, rest) = s.split_once('/').ok_or("is not agency/fact_id/source_version")?;
        let (fact_id, version) = rest.rsplit_once('/').ok_or("is not agency/fact_id/source_version")?;
        if agency.is_empty() || fact_id.is_empty() {
            return Err("is not agency/fact_id/source_version (empty agency or fact id)".into());
        }
        if s.chars().any(char::is_control) {
            return Err("contains control characters".into());
        }
        let source_version = version
            .parse::<i64>()
            .ok()
            .filter(|v| *v >= 0)
            .ok_or_else(|| format!("source_version {version:?} is not a number from 0 to 2^63-1"))?;
        Ok(FixedBy::FactVersion { agency: agency.to_owned(), fact_id: fact_id.to_owned(), source_version })
    }
}

/// Check a reason: DISPUTED needs at least [`MIN_DISPUTE_REASON_CHARS`] characters (after trimming); every reason at
/// most [`MAX_REASON_CHARS`] and without control characters. Returns the trimmed reason.
pub fn check_reason(state: AnswerState, reason: &str) -> Result<String, String> {
    let r = reason.trim();
    let n = r.chars().count();
    if r.chars().any(char::is_control) {
        return Err("contains control characters".into());
    }
    if n > MAX_REASON_CHARS {
        return Err(format!("is {n} characters, more than {MAX_REASON_CHARS}"));
    }
    if state == AnswerState::Disputed && n < MIN_DISPUTE_REASON_CHARS {
        return Err(format!(
            "is {n} characters: a dispute needs a reason of at least {MIN_DISPUTE_REASON_CHARS} characters saying why \
             the finding is wrong"
        ));
    }
    Ok(r.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finding_id_round_trips_with_slashes_in_the_settlement_id() {
        let id = FindingId::parse("medical/medical_insurance/S/2023/7/UNDER_ASSISTED").unwrap();
        assert_eq!(id.agency, "medical_insurance");
        assert_eq!(id.settlement_id, "S/2023/7");
        assert_eq!(id.code, FindingCode::UnderAssisted);
        assert_eq!(id.to_id_string(), "medical/medical_insurance/S/2023/7/UNDER_ASSISTED");
        assert!(FindingId::parse("coverage/2023Q2/X/Y").is_err());
        assert!(FindingId::parse("medical/medical_insurance/S1/NOPE").is_err());
        assert!(FindingId::parse("medical/medical_insurance//UNDER_ASSISTED").is_err());
    }

    #[test]
    fn reasons_and_fact_versions() {
        assert!(check_reason(AnswerState::Disputed, "  too short").is_err()); // 9 characters once trimmed
        assert_eq!(check_reason(AnswerState::Disputed, "ten chars!").unwrap(), "ten chars!");
        assert_eq!(check_reason(AnswerState::InProgress, "").unwrap(), "");
        assert_eq!(
            FixedBy::parse_fact_version("medical_insurance/ins/1/3").unwrap(),
            FixedBy::FactVersion { agency: "medical_insurance".into(), fact_id: "ins/1".into(), source_version: 3 }
        );
        assert!(FixedBy::parse_fact_version("medical_insurance/ins-1").is_err());
        assert!(FixedBy::parse_fact_version("medical_insurance/ins-1/-1").is_err());
    }

    #[test]
    fn coverage_finding_ids_round_trip_and_name_what_is_wrong() {
        let key = "ab".repeat(32);
        let text = format!("coverage/2023Q2/UNINSURED/{key}");
        let id = CoverageFindingId::parse(&text).unwrap();
        assert_eq!(id.quarter.to_string(), "2023Q2");
        assert_eq!(id.code, "UNINSURED");
        assert_eq!(id.person_key, [0xab; 32]);
        assert_eq!(id.to_id_string(), text);
        assert!(matches!(AnyFindingId::parse(&text), Ok(AnyFindingId::Coverage(_))));
        assert!(matches!(
            AnyFindingId::parse("medical/medical_insurance/S-1/UNDER_ASSISTED"),
            Ok(AnyFindingId::Medical(_))
        ));
        assert!(AnyFindingId::parse("other/x").unwrap_err().contains("medical/"));
        assert!(CoverageFindingId::parse(&format!("coverage/2023Q5/UNINSURED/{key}")).unwrap_err().contains("quarter"));
        assert!(CoverageFindingId::parse(&format!("coverage/2023Q2/NOPE/{key}")).unwrap_err().contains("rule"));
        assert!(CoverageFindingId::parse("coverage/2023Q2/UNINSURED/abcd").unwrap_err().contains("64"));
        assert!(CoverageFindingId::parse(&format!("coverage/2023Q2/UNINSURED/{}", "AB".repeat(32))).is_err());
        assert!(CoverageFindingId::parse("coverage/2023Q2/UNINSURED").is_err());
    }
}
