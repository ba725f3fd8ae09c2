//! The recheck's decisions, shared by both backends: the backends load a [`RecheckState`] and write the
//! [`RecheckWrites`] that [`plan_recheck`] returns; only their SQL differs.

use crate::domain::fact::Program;
use crate::domain::medical::{Finding, FindingCode, PolicyParams, Settlement};
use crate::domain::medical_history::{Cover, Enrolment, PersonHistory, recheck_person};
use crate::security::crypto::PersonKey;
use crate::store::StoreError;
use crate::store::rows::*;
use crate::store::*;
use chrono::NaiveDate;
use std::collections::{HashMap, HashSet};

/// The stored state of one finding, for the diff. Amounts in fen.
#[derive(Debug, Clone)]
pub(crate) struct ExistingFinding {
    pub agency: String,
    pub expected: Option<i64>,
    pub actual: Option<i64>,
    pub policy_version: String,
    pub resolved: bool,
}

/// What a recheck of a chunk of persons reads: their histories, each settlement's agency, their findings.
pub(crate) struct RecheckState {
    histories: HashMap<PersonKey, PersonHistory>,
    agency_of: HashMap<String, String>,
    existing: HashMap<(String, FindingCode), ExistingFinding>,
}

impl RecheckState {
    pub(crate) fn new(persons: &[PersonKey]) -> RecheckState {
        RecheckState {
            histories: persons.iter().map(|k| (*k, PersonHistory::default())).collect(),
            agency_of: HashMap::new(),
            existing: HashMap::new(),
        }
    }

    /// A current fact of kind `assistance` or `medical_insurance`: an insurance cover, or (ACTIVE assistance of a
    /// known program) an enrolment. Anything else is ignored.
    pub(crate) fn add_fact(
        &mut self,
        person: &PersonKey,
        kind: &str,
        program: Option<&str>,
        status: Option<&str>,
        valid_from: NaiveDate,
        valid_to: Option<NaiveDate>,
    ) {
        let Some(h) = self.histories.get_mut(person) else { return };
        if kind == "medical_insurance" {
            h.covers.push(Cover { valid_from, valid_to });
        } else if kind == "assistance"
            && status == Some("ACTIVE")
            && let Some(p) = program.and_then(Program::parse)
        {
            h.enrolments.push(Enrolment { program: p, valid_from, valid_to });
        }
    }

    /// A stored settlement of `agency`.
    pub(crate) fn add_settlement(&mut self, s: Settlement, agency: String) {
        self.agency_of.insert(s.settlement_id.clone(), agency);
        let k = PersonKey::from_slice(&s.person).expect("32 bytes");
        if let Some(h) = self.histories.get_mut(&k) {
            h.settlements.push(s);
        }
    }

    /// A stored finding (`code` as stored; an unknown code is corruption).
    pub(crate) fn add_finding(
        &mut self,
        settlement_id: String,
        code: &str,
        f: ExistingFinding,
    ) -> Result<(), StoreError> {
        let code = FindingCode::parse(code).ok_or_else(|| corrupt("medical_findings", format!("code {code}")))?;
        self.existing.insert((settlement_id, code), f);
        Ok(())
    }
}

/// A finding to insert. Amounts in fen.
pub(crate) struct FindingInsert {
    pub agency: String,
    pub settlement_id: String,
    pub code: FindingCode,
    pub person: PersonKey,
    pub division_code: String,
    pub settled_on: Option<NaiveDate>,
    pub expected: Option<i64>,
    pub actual: Option<i64>,
    pub policy_version: String,
    pub agency_to_act: &'static str,
}

/// A stored finding raised again: its amounts and policy version set, reopened if it was resolved (`detected_at`
/// becomes now only when it was resolved). Amounts in fen.
pub(crate) struct FindingUpdate {
    pub agency: String,
    pub settlement_id: String,
    pub code: FindingCode,
    pub expected: Option<i64>,
    pub actual: Option<i64>,
    pub policy_version: String,
}

/// The early warning of a HIGH_BURDEN finding: reason [`HIGH_BURDEN_WARNING_REASON`], for
/// [`HIGH_BURDEN_WARNING_AGENCY`] (the agency to act, and so the warning's owner in the workflow), id
/// [`HIGH_BURDEN_WARNING_PREFIX`] + settlement id, state RECEIVED. Raised once: a warning that already exists
/// (whatever its state) is left alone.
pub(crate) struct HighBurdenWarning {
    pub warning_id: String,
    pub person: PersonKey,
    pub division_code: String,
    pub county_code: String,
    pub content_hash: [u8; 32],
}

pub(crate) const HIGH_BURDEN_WARNING_AGENCY: &str = "civil_affairs";
pub(crate) const HIGH_BURDEN_WARNING_REASON: &str = "ILLNESS";

impl HighBurdenWarning {
    fn new(settlement_id: &str, person: PersonKey, division: &str) -> HighBurdenWarning {
        use sha2::{Digest, Sha256};
        let warning_id = format!("{HIGH_BURDEN_WARNING_PREFIX}{settlement_id}");
        let content_hash: [u8; 32] = Sha256::digest(warning_id.as_bytes()).into();
        HighBurdenWarning {
            warning_id,
            person,
            division_code: division.to_owned(),
            county_code: division.chars().take(6).collect(),
            content_hash,
        }
    }
}

/// What a recheck writes (see [`plan_recheck`]).
#[derive(Default)]
pub(crate) struct RecheckWrites {
    pub updates: Vec<FindingUpdate>,
    /// (agency, settlement_id, code) of the open findings no longer raised: set `resolved_at` = now.
    pub resolves: Vec<(String, String, FindingCode)>,
    pub inserts: Vec<FindingInsert>,
    /// Newly raised (or reopened) HIGH_BURDEN findings' warnings; the backend counts the ones it actually inserts
    /// into [`RecheckTally::warnings_raised`].
    pub warnings: Vec<HighBurdenWarning>,
}

/// Run [`recheck_person`] on each person of `chunk` and decide the difference with what is stored — new findings
/// inserted, vanished ones resolved, reappearing ones reopened, changed amounts updated; a newly raised HIGH_BURDEN
/// also raises an early warning (reason ILLNESS) for civil_affairs, picked up by the warning workflow
/// (docs/spec/coordination.md). Counts into `tally` (all but `warnings_raised`, which depends on the write).
pub(crate) fn plan_recheck(
    chunk: &[PersonKey],
    state: RecheckState,
    policies: &[PolicyParams],
    default_area: &str,
    report_for: &HashSet<String>,
    tally: &mut RecheckTally,
) -> RecheckWrites {
    let RecheckState { histories, agency_of, existing } = state;
    let mut out = RecheckWrites::default();
    let mut new_high_burden = Vec::new();
    for k in chunk {
        let h = &histories[k];
        tally.persons += 1;
        tally.settlements += h.settlements.len() as i64;
        let division_of: HashMap<&str, (&str, NaiveDate)> = h
            .settlements
            .iter()
            .map(|s| (s.settlement_id.as_str(), (s.division_code.as_str(), s.settled_on)))
            .collect();
        let result = match recheck_person(h, policies, default_area) {
            Ok(r) => r,
            Err(e) => {
                // Only possible for a person with settlements in two pooling areas (each settlement is checked
                // against its own area on arrival): leave their findings as they are, and say so.
                tracing::warn!(person = %k.short(), error = %e, "medical recheck skipped a person");
                continue;
            }
        };
        for c in result.checks {
            if report_for.contains(&c.settlement_id) {
                let findings: Vec<Finding> =
                    result.findings.iter().filter(|f| f.settlement_id == c.settlement_id).cloned().collect();
                tally.checks.insert(c.settlement_id.clone(), (c, findings));
            }
        }
        let mut raised: HashSet<(String, FindingCode)> = HashSet::new();
        for f in result.findings {
            let key = (f.settlement_id.clone(), f.code);
            raised.insert(key.clone());
            let expected = f.expected.map(column_fen);
            let actual = f.actual.map(column_fen);
            let (division, settled_on) = match division_of.get(f.settlement_id.as_str()) {
                Some((d, on)) => ((*d).to_owned(), Some(*on)),
                None => (String::new(), None),
            };
            match existing.get(&key) {
                None => {
                    *tally.added.entry(f.code).or_default() += 1;
                    if f.code == FindingCode::HighBurden {
                        new_high_burden.push(HighBurdenWarning::new(&f.settlement_id, *k, &division));
                    }
                    out.inserts.push(FindingInsert {
                        agency: agency_of.get(&f.settlement_id).cloned().unwrap_or_default(),
                        settlement_id: f.settlement_id,
                        code: f.code,
                        person: PersonKey::from_slice(&f.person).expect("32 bytes"),
                        division_code: division,
                        settled_on,
                        expected,
                        actual,
                        policy_version: f.policy_version,
                        agency_to_act: f.agency_to_act,
                    });
                }
                Some(e) => {
                    if e.resolved {
                        *tally.added.entry(f.code).or_default() += 1;
                    }
                    if e.resolved && f.code == FindingCode::HighBurden {
                        out.warnings.push(HighBurdenWarning::new(&f.settlement_id, *k, &division));
                    }
                    if e.resolved
                        || e.expected != expected
                        || e.actual != actual
                        || e.policy_version != f.policy_version
                    {
                        out.updates.push(FindingUpdate {
                            agency: e.agency.clone(),
                            settlement_id: f.settlement_id,
                            code: f.code,
                            expected,
                            actual,
                            policy_version: f.policy_version,
                        });
                    }
                }
            }
        }
        for s in &h.settlements {
            for code in FindingCode::ALL {
                let key = (s.settlement_id.clone(), code);
                if let Some(e) = existing.get(&key)
                    && !e.resolved
                    && !raised.contains(&key)
                {
                    *tally.resolved.entry(code).or_default() += 1;
                    out.resolves.push((e.agency.clone(), s.settlement_id.clone(), code));
                }
            }
        }
    }
    out.warnings.extend(new_high_burden);
    out
}
