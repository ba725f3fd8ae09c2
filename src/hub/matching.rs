//! Batch comparison (比对, 国办发〔2023〕39号; docs/spec/api.md "MatchRecipients"): which of these persons are
//! enrolled, as far as the caller may know it.
//!
//! A person's answer is derived from exactly what GetRecipient would show the caller on the same date: the person's
//! facts in force, reduced by the access policy ([`Hub::visible_fact`]), of which only the ACTIVE assistance
//! enrolments are kept, reduced further to (program, valid_from, division). So a comparison never tells a caller more
//! than a GetRecipient of the same person, and the answer for a person the hub does not know, one outside the caller's
//! county or one it may not see is the same empty list.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDate;

use super::{Hub, HubError, audit_of, check_purpose};
use crate::domain::agency::Principal;
use crate::domain::fact::{AssistanceStatus, Payload, PayloadKind, Program};
use crate::domain::id_number::IdNumber;
use crate::security::crypto::PersonKey;

/// One enrolment in force on the date compared, as the caller may see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentView {
    pub program: Program,
    /// The `valid_from` of the enrolment record in force.
    pub since: NaiveDate,
    /// The record's GB/T 2260 division code.
    pub division_code: String,
}

impl Hub {
    /// Whether `principal` may compare at all (checked when a MatchRecipients call starts, before a message is read).
    ///
    /// Errors: PERMISSION_DENIED for an agency that reads no person-level data, or may never read
    /// `assistance.program` (a comparison answers with programs; the same rule as ListRecipients' program filter).
    pub fn check_match_access(&self, principal: &Principal) -> Result<(), HubError> {
        let agency = principal.agency();
        if !self.policy.reads_person_data(agency) {
            return Err(HubError::PermissionDenied(format!(
                "agency {agency} may not read person-level data (aggregates only)"
            )));
        }
        if !self.policy.may_ever_read_field(agency, PayloadKind::Assistance, "program") {
            return Err(HubError::PermissionDenied(format!(
                "agency {agency} may not compare enrolments: it may not read assistance.program"
            )));
        }
        Ok(())
    }

    /// The checks of a MatchRecipients call's first message: [`Hub::check_match_access`], then the purpose (required,
    /// at most [`super::MAX_PURPOSE_LEN`] characters, ID-number-like runs masked), returned as it will be audited.
    ///
    /// Errors: those of [`Hub::check_match_access`]; INVALID_ARGUMENT (`purpose`) when it is empty or not acceptable.
    pub fn start_match(&self, principal: &Principal, purpose: &str) -> Result<String, HubError> {
        self.check_match_access(principal)?;
        if purpose.trim().is_empty() {
            return Err(HubError::invalid("purpose", "is required: say why these persons are compared"));
        }
        check_purpose(purpose)
    }

    /// The enrolments the caller may see on `as_of` of each of `ids`, in order (an empty list: NOT_ENROLLED), and one
    /// audit event naming every person of the batch (persons the hub does not know too: probing is what an auditor
    /// looks for), with `invalid` (ID numbers of the message refused before this call) in its outcome.
    ///
    /// `purpose` must come from [`Hub::start_match`]. Reads the persons' assistance and student facts in force, projected
    /// to program and status (`FactReads::comparison_facts_of_persons`: reducing the projection by the policy gives
    /// the program and status that reducing the whole fact gives);
    /// the audit event is appended after the read, before the answer is returned (an answer whose audit failed is not
    /// given). Errors: the store's.
    pub async fn match_recipients(
        &self,
        principal: &Principal,
        method: &str,
        ids: &[IdNumber],
        as_of: NaiveDate,
        purpose: &str,
        invalid: usize,
    ) -> Result<Vec<Vec<EnrolmentView>>, HubError> {
        let keys: Vec<PersonKey> = ids.iter().map(|id| self.keys.person_key(id)).collect();
        let mut distinct: Vec<PersonKey> = Vec::with_capacity(keys.len());
        let mut seen: HashSet<PersonKey> = HashSet::with_capacity(keys.len());
        for k in &keys {
            if seen.insert(*k) {
                distinct.push(*k);
            }
        }
        let mut by_person: HashMap<PersonKey, Vec<crate::store::StoredFact>> = HashMap::new();
        if !distinct.is_empty() {
            // Only what an answer is made of: assistance (program, status), and student (education's view of
            // assistance depends on it, `Hub::is_student`). The reduction below is GetRecipient's, on a projection of
            // the same facts.
            for f in self.store.comparison_facts_of_persons(&distinct, as_of).await? {
                by_person.entry(f.person_key).or_default().push(f);
            }
        }
        let mut answers: HashMap<PersonKey, Vec<EnrolmentView>> = HashMap::with_capacity(by_person.len());
        for (k, facts) in by_person {
            let enrolments = self.enrolments(principal, facts);
            if !enrolments.is_empty() {
                answers.insert(k, enrolments);
            }
        }
        let out: Vec<Vec<EnrolmentView>> = keys.iter().map(|k| answers.get(k).cloned().unwrap_or_default()).collect();
        let enrolled = out.iter().filter(|e| !e.is_empty()).count();
        self.store
            .record_audit(&audit_of(
                principal,
                method,
                purpose.to_owned(),
                format!("OK compared={} enrolled={enrolled} invalid={invalid}", ids.len()),
                distinct,
            ))
            .await?;
        Ok(out)
    }

    /// The ACTIVE enrolments among one person's facts, as the caller may see them: one per program (the earliest
    /// `since` if two records of one program are in force), in program order.
    fn enrolments(&self, principal: &Principal, facts: Vec<crate::store::StoredFact>) -> Vec<EnrolmentView> {
        let mut by_program: BTreeMap<Program, EnrolmentView> = BTreeMap::new();
        for v in self.visible_facts(principal, facts) {
            let Payload::Assistance(a) = &v.fact.payload else { continue };
            let (Some(program), Some(AssistanceStatus::Active)) = (a.program, a.status) else { continue };
            let e = EnrolmentView { program, since: v.fact.valid_from, division_code: v.fact.division_code.clone() };
            match by_program.get(&program) {
                Some(have) if have.since <= e.since => {}
                _ => {
                    by_program.insert(program, e);
                }
            }
        }
        by_program.into_values().collect()
    }
}
