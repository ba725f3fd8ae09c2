//! Answers to findings (issue 19 item 1; docs/findings.md): `AnswerFinding` (who may answer, the FIXED claim checked
//! against the stored facts, the answer kept as a new version with its audit event) and `ListFindingAnswers` (a
//! finding's history). The latest answer of each listed finding comes with `ListFindings` (`hub/medical.rs`).

use super::{Hub, HubError, audit_of, check_purpose, scoped_prefix, storage_prefix};
use crate::domain::agency::Principal;
use crate::domain::answer::{AnswerState, FindingId, FixedBy, check_reason};
use crate::domain::policy::{MedicalRight, may_answer};
use crate::store::{FindingAnswer, StoredFinding};

/// An `AnswerFinding` request, decoded.
#[derive(Debug, Clone)]
pub struct AnswerInput {
    pub finding: FindingId,
    pub state: AnswerState,
    /// FIXED only (required then, refused otherwise).
    pub fixed_by: Option<FixedBy>,
    pub reason: String,
    pub purpose: String,
}

impl Hub {
    /// `AnswerFinding`: the agency a medical finding names (`agency_to_act`; a county office only for a finding in
    /// its county) records IN_PROGRESS, FIXED or DISPUTED. A FIXED names a fact version or a settlement of the
    /// finding's settlement agency, which must be stored, concern the finding's person and have been recorded after
    /// the finding was raised (`detected_at`). The answer is kept as the finding's next version with its audit event
    /// (outcome `OK <finding_id> v<version> <STATE>`, the person's key) in one transaction.
    ///
    /// Errors: PERMISSION_DENIED without the `read_findings` right or for a finding that names another agency or lies
    /// outside the caller's county; NOT_FOUND for an unknown finding; FAILED_PRECONDITION for a FIXED the stored facts
    /// do not support (saying which check fails); INVALID_ARGUMENT naming `reason` (DISPUTED with fewer than 10
    /// characters, too long, control characters), `fixed_by` (FIXED without a fix, or a fix on another state) or
    /// `purpose`.
    pub async fn answer_finding(
        &self,
        principal: &Principal,
        method: &str,
        input: AnswerInput,
    ) -> Result<FindingAnswer, HubError> {
        self.require_answerer(principal)?;
        let purpose = check_purpose(&input.purpose)?;
        // Free text: an ID-like run is masked before it is kept, as in `purpose`.
        let reason =
            super::mask_id_like(&check_reason(input.state, &input.reason).map_err(|e| HubError::invalid("reason", e))?);
        match (input.state, &input.fixed_by) {
            (AnswerState::Fixed, None) => {
                return Err(HubError::invalid(
                    "fixed_by",
                    "is required for FIXED: name the fact version (agency/fact_id/source_version) or the settlement \
                     correction that fixes the finding",
                ));
            }
            (s, Some(_)) if s != AnswerState::Fixed => {
                return Err(HubError::invalid("fixed_by", format!("is only for FIXED, not {}", s.as_str())));
            }
            _ => {}
        }
        let id_text = input.finding.to_id_string();
        let finding = self.answerable_finding(principal, &input.finding).await?;
        ensure_may_answer(principal, &id_text, &finding.agency_to_act, &finding.division_code)?;
        if let Some(fix) = &input.fixed_by {
            self.check_fix(&finding, fix).await?;
        }
        let answered_at = crate::store::from_micros(crate::store::to_micros(self.clock.system_now()));
        let mut answer = FindingAnswer {
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
            audit_of(
                principal,
                method,
                purpose.clone(),
                format!("OK {id_text} v{version} {state}"),
                vec![finding.person_key],
            )
        };
        answer.version = self
            .store
            .add_finding_answer(&answer, &audit)
            .await?
            .ok_or_else(|| HubError::NotFound(format!("finding {id_text} is not stored")))?;
        Ok(answer)
    }

    /// `ListFindingAnswers`: every answer to the finding, oldest version first, with the finding itself. Audited
    /// (outcome `OK <finding_id> answers=<n>`, the person's key).
    ///
    /// Errors: PERMISSION_DENIED without the `read_findings` right or for a finding outside the caller's county;
    /// NOT_FOUND for an unknown finding; INVALID_ARGUMENT naming `purpose`.
    pub async fn finding_answers(
        &self,
        principal: &Principal,
        method: &str,
        id: &FindingId,
        purpose: &str,
    ) -> Result<(super::FindingView, Vec<FindingAnswer>), HubError> {
        self.require_answerer(principal)?;
        let purpose = check_purpose(purpose)?;
        let finding = self.answerable_finding(principal, id).await?;
        let answers = self.store.finding_answers(id).await?;
        self.store
            .record_audit(&audit_of(
                principal,
                method,
                purpose,
                format!("OK {} answers={}", id.to_id_string(), answers.len()),
                vec![finding.person_key],
            ))
            .await?;
        let ciphers = self.store.person_ciphers(&[finding.person_key]).await?;
        let cipher = ciphers.get(&finding.person_key).ok_or(crate::security::crypto::KeyError::Decrypt)?;
        let id_number = self.keys.decrypt(cipher, &finding.person_key)?;
        Ok((super::FindingView { finding, id_number, answer: None }, answers))
    }

    pub(super) fn require_answerer(&self, principal: &Principal) -> Result<(), HubError> {
        if self.policy.may_medical(principal.agency(), MedicalRight::ReadFindings) {
            Ok(())
        } else {
            Err(HubError::PermissionDenied(format!(
                "agency {} may not read or answer medical findings",
                principal.agency()
            )))
        }
    }

    /// The stored finding `id`, if the caller's scope holds it. NOT_FOUND when not stored; PERMISSION_DENIED for a
    /// county office and a finding outside its county.
    pub(super) async fn answerable_finding(
        &self,
        principal: &Principal,
        id: &FindingId,
    ) -> Result<StoredFinding, HubError> {
        let finding = self
            .store
            .finding(id)
            .await?
            .ok_or_else(|| HubError::NotFound(format!("finding {} is not stored", id.to_id_string())))?;
        let prefix = storage_prefix(scoped_prefix(principal, None)?);
        if !finding.division_code.starts_with(&prefix) {
            return Err(HubError::PermissionDenied(format!(
                "finding {} lies outside the caller's county {prefix}",
                id.to_id_string()
            )));
        }
        Ok(finding)
    }

    /// Whether the stored facts support `fix` for `finding`: the named version is stored, concerns the finding's
    /// person and was recorded after the finding was raised. FAILED_PRECONDITION saying which check fails.
    async fn check_fix(&self, finding: &StoredFinding, fix: &FixedBy) -> Result<(), HubError> {
        let (what, stored) = match fix {
            FixedBy::FactVersion { agency, fact_id, source_version } => (
                format!("fact version {agency}/{fact_id}/{source_version}"),
                self.store.fact_version_person(agency, fact_id, *source_version).await?,
            ),
            FixedBy::Settlement { settlement_id } => (
                format!("settlement {}/{settlement_id}", finding.agency),
                self.store.settlement_person(&finding.agency, settlement_id).await?,
            ),
        };
        let refused = |why: String| HubError::FailedPrecondition(format!("FIXED does not hold: {what} {why}"));
        let Some((person, recorded_at)) = stored else {
            return Err(refused("is not stored".into()));
        };
        if person != finding.person_key {
            return Err(refused("concerns another person than the finding".into()));
        }
        if recorded_at <= finding.detected_at {
            return Err(refused(format!(
                "was recorded at {}, not after the finding was raised ({}): it cannot be what fixed it",
                recorded_at.to_rfc3339(),
                finding.detected_at.to_rfc3339()
            )));
        }
        Ok(())
    }
}

/// PERMISSION_DENIED unless `principal` is the agency a finding names to act (a county office only for its county:
/// `domain::policy::may_answer`); the message names the finding `id_text`. Shared by the answers to medical and
/// coverage findings.
pub(super) fn ensure_may_answer(
    principal: &Principal,
    id_text: &str,
    agency_to_act: &str,
    division: &str,
) -> Result<(), HubError> {
    if may_answer(principal.agency().as_str(), principal.county().map(|c| c.as_str()), agency_to_act, division) {
        return Ok(());
    }
    Err(HubError::PermissionDenied(format!(
        "finding {id_text} names agency {agency_to_act} to act: only it answers (a county office for its county), \
         not {}",
        principal.spiffe_id()
    )))
}
