//! Coverage findings one by one and their answers (issue 19 item 1; docs/findings.md): `ListCoverageFindings` (a
//! snapshot's coverage rows with each one's latest answer, filtered by answer), and `AnswerFinding` /
//! `ListFindingAnswers` for a `coverage/<quarter>/<code>/<person key>` finding: who may answer, the FIXED claim
//! checked against the stored facts by recomputing the rule, the answer kept as a new version with its audit event.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use super::{Hub, HubError, audit_of, check_purpose, scoped_prefix, storage_prefix};
use crate::domain::agency::Principal;
use crate::domain::answer::{AnswerState, CoverageFindingId, FixedBy, check_reason};
use crate::domain::calendar::Quarter;
use crate::domain::id_number::IdNumber;
use crate::domain::policy::CoordinationRight;
use crate::security::crypto::{KeyError, PersonKey};
use crate::store::{CoverageAnswer, CoverageFindingFilter, StoredCoverageFinding};

/// An `AnswerFinding` request for a coverage finding, decoded.
#[derive(Debug, Clone)]
pub struct CoverageAnswerInput {
    pub finding: CoverageFindingId,
    pub state: AnswerState,
    /// FIXED only (required then, refused otherwise); a fact version.
    pub fixed_by: Option<FixedBy>,
    pub reason: String,
    pub purpose: String,
}

/// A coverage finding with the person's ID number and its latest answer, as a caller may see it.
#[derive(Debug, Clone)]
pub struct CoverageFindingView {
    pub finding: StoredCoverageFinding,
    pub id_number: IdNumber,
    pub answer: Option<CoverageAnswer>,
}

/// One page of `ListCoverageFindings`.
#[derive(Debug, Clone)]
pub struct CoverageFindingPage {
    pub findings: Vec<CoverageFindingView>,
    pub next_page_token: String,
    pub total_size: i64,
}

/// A `ListCoverageFindings` request, decoded.
#[derive(Debug, Clone)]
pub struct CoverageListInput {
    pub quarter: Quarter,
    pub division: Option<crate::domain::division::DivisionCode>,
    /// A rule code of `domain::coverage::RULES`.
    pub code: Option<&'static str>,
    pub answer: Option<crate::domain::answer::AnswerFilter>,
    pub page_size: usize,
    pub page_token: String,
    pub purpose: String,
}

impl Hub {
    /// Whether `principal` reads every agency's coverage findings: the coordinator of the quarterly loop (the
    /// agency that freezes snapshots, `create_snapshots`); every other agency reads those that name it.
    pub(super) fn reads_every_coverage_finding(&self, principal: &Principal) -> bool {
        self.policy.may(principal.agency(), CoordinationRight::CreateSnapshots)
    }

    /// The stored coverage finding `id`, if the caller may read it: NOT_FOUND when the snapshot has no such row;
    /// PERMISSION_DENIED for a finding naming another agency (unless the caller is the coordinator) or outside a
    /// county office's county.
    pub(super) async fn readable_coverage_finding(
        &self,
        principal: &Principal,
        id: &CoverageFindingId,
    ) -> Result<StoredCoverageFinding, HubError> {
        let text = id.to_id_string();
        let finding = self.store.coverage_finding(id).await?.ok_or_else(|| {
            HubError::NotFound(format!("finding {text} is not stored: the snapshot of {} has no such row", id.quarter))
        })?;
        let prefix = storage_prefix(scoped_prefix(principal, None)?);
        if !finding.county_code.starts_with(&prefix) {
            return Err(HubError::PermissionDenied(format!(
                "finding {text} lies outside the caller's county {prefix}"
            )));
        }
        if finding.agency_to_act != principal.agency().as_str() && !self.reads_every_coverage_finding(principal) {
            return Err(HubError::PermissionDenied(format!(
                "finding {text} names agency {} to act: only it (and the coordinator) reads it, not {}",
                finding.agency_to_act,
                principal.spiffe_id()
            )));
        }
        Ok(finding)
    }

    /// `AnswerFinding` for a coverage finding (`coverage/<quarter>/<code>/<person key>`): the agency the finding names
    /// (a county office only for its county) records IN_PROGRESS, FIXED or DISPUTED. A FIXED names a fact version,
    /// which must be stored, concern the finding's person, have been recorded after the snapshot's knowledge cutoff,
    /// and, with the person's current facts in force on the check date (the later of the snapshot's `as_of` and the
    /// version's `valid_from`), no longer break the finding's rule (`domain::coverage::evaluate`, the standards of
    /// the check date's year). The check reads before the write transaction (no lock is held while the rule is
    /// recomputed). The answer is kept as the finding's next version with its audit event (outcome
    /// `OK <finding_id> v<version> <STATE>`, the person's key) in one transaction.
    ///
    /// Errors: PERMISSION_DENIED for a finding naming another agency or outside the caller's county; NOT_FOUND for an
    /// unknown finding; FAILED_PRECONDITION for a FIXED the stored facts do not support (saying which check fails);
    /// INVALID_ARGUMENT naming `reason`, `fixed_by` (FIXED without a fix, a fix on another state) or
    /// `fixed_by.settlement_id` (a coverage finding is fixed by a fact version), or `purpose`.
    pub async fn answer_coverage_finding(
        &self,
        principal: &Principal,
        method: &str,
        input: CoverageAnswerInput,
    ) -> Result<CoverageAnswer, HubError> {
        let purpose = check_purpose(&input.purpose)?;
        let reason =
            super::mask_id_like(&check_reason(input.state, &input.reason).map_err(|e| HubError::invalid("reason", e))?);
        match (input.state, &input.fixed_by) {
            (AnswerState::Fixed, None) => {
                return Err(HubError::invalid(
                    "fixed_by",
                    "is required for FIXED: name the fact version (agency/fact_id/source_version) that fixes the \
                     finding",
                ));
            }
            (s, Some(_)) if s != AnswerState::Fixed => {
                return Err(HubError::invalid("fixed_by", format!("is only for FIXED, not {}", s.as_str())));
            }
            (_, Some(FixedBy::Settlement { .. })) => {
                return Err(HubError::invalid(
                    "fixed_by.settlement_id",
                    "a coverage finding is fixed by a fact version (fixed_by.fact_version), not a settlement",
                ));
            }
            _ => {}
        }
        let id_text = input.finding.to_id_string();
        let finding = self.readable_coverage_finding(principal, &input.finding).await?;
        super::answers::ensure_may_answer(principal, &id_text, &finding.agency_to_act, &finding.county_code)?;
        if let Some(fix) = &input.fixed_by {
            self.check_coverage_fix(&finding, fix).await?;
        }
        let answered_at = crate::store::from_micros(crate::store::to_micros(self.clock.system_now()));
        let person = PersonKey::from_slice(&finding.id.person_key).ok_or(KeyError::Decrypt)?;
        let mut answer = CoverageAnswer {
            finding: input.finding,
            version: 0,
            state: input.state,
            fixed_by: input.fixed_by,
            reason,
            answered_at,
            answered_by: principal.spiffe_id().to_owned(),
        };
        let state = answer.state.as_str();
        let audit = |version: i64| {
            audit_of(principal, method, purpose.clone(), format!("OK {id_text} v{version} {state}"), vec![person])
        };
        answer.version = self
            .store
            .add_coverage_answer(&answer, &audit)
            .await?
            .ok_or_else(|| HubError::NotFound(format!("finding {id_text} is not stored")))?;
        Ok(answer)
    }

    /// Whether the stored facts support `fix` for the coverage finding (see [`Hub::answer_coverage_finding`]).
    /// FAILED_PRECONDITION saying which check fails.
    async fn check_coverage_fix(&self, finding: &StoredCoverageFinding, fix: &FixedBy) -> Result<(), HubError> {
        let FixedBy::FactVersion { agency, fact_id, source_version } = fix else {
            return Err(HubError::invalid("fixed_by.settlement_id", "a coverage finding is fixed by a fact version"));
        };
        let what = format!("fact version {agency}/{fact_id}/{source_version}");
        let refused = |why: String| HubError::FailedPrecondition(format!("FIXED does not hold: {what} {why}"));
        let Some(seen) = self.store.fact_version_seen(agency, fact_id, *source_version).await? else {
            return Err(refused("is not stored".into()));
        };
        if seen.person_key.as_bytes() != &finding.id.person_key {
            return Err(refused("concerns another person than the finding".into()));
        }
        if seen.recorded_at <= finding.knowledge_cutoff {
            return Err(refused(format!(
                "was recorded at {}, not after the snapshot of {} was taken ({}): the snapshot already knew it",
                seen.recorded_at.to_rfc3339(),
                finding.id.quarter,
                finding.knowledge_cutoff.to_rfc3339()
            )));
        }
        let on = seen.valid_from.max(finding.as_of);
        let facts = self.store.person_facts(&seen.person_key, on).await?;
        let payloads: Vec<_> = facts.into_iter().map(|f| f.payload).collect();
        let birth = match self.store.person_cipher(&seen.person_key).await? {
            Some(c) => Some(self.keys.decrypt(&c, &seen.person_key)?.birth_date()),
            None => None,
        };
        let year = chrono::Datelike::year(&on);
        let (_, standards) = self.standards(year).await?;
        let broken = crate::domain::coverage::evaluate(&payloads, birth, on, &self.coverage, &standards);
        if broken.contains(&finding.id.code) {
            return Err(refused(format!(
                "is stored, but with the person's current facts in force on {on} the rule {} is still broken",
                finding.id.code
            )));
        }
        Ok(())
    }

    /// `ListFindingAnswers` for a coverage finding: every answer, oldest version first, with the finding. Audited
    /// (outcome `OK <finding_id> answers=<n>`, the person's key).
    ///
    /// Errors: PERMISSION_DENIED for a finding naming another agency (unless the caller is the coordinator) or outside
    /// the caller's county; NOT_FOUND; INVALID_ARGUMENT naming `purpose`.
    pub async fn coverage_finding_answers(
        &self,
        principal: &Principal,
        method: &str,
        id: &CoverageFindingId,
        purpose: &str,
    ) -> Result<(CoverageFindingView, Vec<CoverageAnswer>), HubError> {
        let purpose = check_purpose(purpose)?;
        let finding = self.readable_coverage_finding(principal, id).await?;
        let answers = self.store.coverage_answers(id).await?;
        let person = PersonKey::from_slice(&id.person_key).ok_or(KeyError::Decrypt)?;
        self.store
            .record_audit(&audit_of(
                principal,
                method,
                purpose,
                format!("OK {} answers={}", id.to_id_string(), answers.len()),
                vec![person],
            ))
            .await?;
        let cipher = self.store.person_cipher(&person).await?.ok_or(KeyError::Decrypt)?;
        let id_number = self.keys.decrypt(&cipher, &person)?;
        Ok((CoverageFindingView { finding, id_number, answer: answers.last().cloned() }, answers))
    }

    /// `ListCoverageFindings`: the coverage findings of a frozen quarter, one page at a time in (code, person key)
    /// order, each with its latest answer, filtered by code, division and answer. An agency sees the findings that
    /// name it; the coordinator (`create_snapshots`) sees every agency's; a county office its county only. Audited
    /// with the persons listed.
    ///
    /// Errors: NOT_FOUND for a quarter not frozen; PERMISSION_DENIED for a division outside the caller's county;
    /// INVALID_ARGUMENT for `page_size`, `page_token` or `purpose`.
    pub async fn list_coverage_findings(
        &self,
        principal: &Principal,
        method: &str,
        input: CoverageListInput,
    ) -> Result<CoverageFindingPage, HubError> {
        let purpose = check_purpose(&input.purpose)?;
        if self.store.snapshot(input.quarter).await?.is_none() {
            return Err(HubError::NotFound(format!(
                "quarter {} has no snapshot (CreateSnapshot freezes it)",
                input.quarter
            )));
        }
        let filter = CoverageFindingFilter {
            quarter: input.quarter,
            agency_to_act: (!self.reads_every_coverage_finding(principal)).then(|| principal.agency().to_string()),
            division_prefix: storage_prefix(scoped_prefix(principal, input.division)?),
            code: input.code,
            answer: input.answer,
        };
        let page_size = self.page_size(input.page_size)?;
        let fingerprint = {
            let mut h = Sha256::new();
            h.update(format!(
                "coverage|{}|{:?}|{}|{:?}|{:?}",
                filter.quarter, filter.agency_to_act, filter.division_prefix, filter.code, filter.answer
            ));
            h.finalize()[..8].to_vec()
        };
        let context = format!("{}|ListCoverageFindings", principal.spiffe_id());
        let after = if input.page_token.is_empty() {
            None
        } else {
            let bad = || HubError::invalid("page_token", "is not a token this list returned to this caller");
            let raw = self.keys.open_token(&input.page_token, context.as_bytes()).ok_or_else(bad)?;
            // fingerprint (8) · person key (32) · code (at least 1)
            if raw.len() < 8 + 32 + 1 {
                return Err(bad());
            }
            if raw[..8] != fingerprint[..] {
                return Err(HubError::invalid("page_token", "was issued for other filter values"));
            }
            let key: [u8; 32] = raw[8..40].try_into().map_err(|_| bad())?;
            let code = String::from_utf8(raw[40..].to_vec()).map_err(|_| bad())?;
            Some((code, key))
        };
        let mut rows = self
            .store
            .list_coverage_findings(&filter, after.as_ref().map(|(c, k)| (c.as_str(), *k)), page_size + 1)
            .await?;
        let more = rows.len() > page_size;
        rows.truncate(page_size);
        let next_page_token = match (more, rows.last()) {
            (true, Some((last, _))) => {
                let mut raw = fingerprint.clone();
                raw.extend_from_slice(&last.id.person_key);
                raw.extend_from_slice(last.id.code.as_bytes());
                self.keys.seal_token(&raw, context.as_bytes())
            }
            _ => String::new(),
        };
        let total_size = self.store.count_coverage_findings(&filter).await?;
        let keys: Vec<PersonKey> = {
            let mut seen = HashSet::new();
            rows.iter()
                .filter_map(|(f, _)| PersonKey::from_slice(&f.id.person_key))
                .filter(|k| seen.insert(*k))
                .collect()
        };
        let ciphers = self.store.person_ciphers(&keys).await?;
        let mut findings = Vec::with_capacity(rows.len());
        for (finding, answer) in rows {
            let key = PersonKey::from_slice(&finding.id.person_key).ok_or(KeyError::Decrypt)?;
            let cipher = ciphers.get(&key).ok_or(KeyError::Decrypt)?;
            let id_number = self.keys.decrypt(cipher, &key)?;
            findings.push(CoverageFindingView { finding, id_number, answer });
        }
        self.store
            .record_audit(&audit_of(principal, method, purpose, format!("OK listed={}", findings.len()), keys))
            .await?;
        Ok(CoverageFindingPage { findings, next_page_token, total_size })
    }
}
