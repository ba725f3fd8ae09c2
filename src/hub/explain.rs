//! Every finding explains itself (issue 19 item 3; docs/findings.md "Explanations"): `ExplainFinding` recomputes a
//! coverage finding from its snapshot's status rows and the fact versions they pin, and a
//! medical finding from stored data only — the person's settlements and current assistance and insurance fact
//! versions, the policy versions — through the recheck's own code path (`domain::medical_history::explain_person`),
//! and returns the inputs with their content hashes, the parameters, each step with its amounts and the test that
//! raises the finding, and whether all of it agrees with the stored finding.

use super::medical::DEFAULT_POOLING_AREA;
use super::{Hub, HubError, audit_of, check_purpose};
use crate::domain::agency::Principal;
use crate::domain::answer::FindingId;
use crate::domain::explain::{Explanation, input, medical_parameters, medical_steps, medical_test};
use crate::domain::fact::Program;
use crate::domain::medical::{FindingCode, PolicyParams};
use crate::domain::medical_history::{Cover, Enrolment, PersonHistory, explain_person};
use crate::store::{MedicalInputs, StoredFinding};

impl Hub {
    /// `ExplainFinding` for a medical finding. Who may read it is who may read its answers (`read_findings`, a county
    /// office its county). Audited (outcome `OK <finding_id> explained`, the person's key).
    ///
    /// Errors: PERMISSION_DENIED; NOT_FOUND for an unknown finding; INVALID_ARGUMENT naming `purpose`;
    /// FAILED_PRECONDITION when no policy version is in force for a settlement of the person (the stored data no
    /// longer explains the finding).
    pub async fn explain_medical_finding(
        &self,
        principal: &Principal,
        method: &str,
        id: &FindingId,
        purpose: &str,
    ) -> Result<Explanation, HubError> {
        self.require_answerer(principal)?;
        let purpose = check_purpose(purpose)?;
        let finding = self.answerable_finding(principal, id).await?;
        let inputs = self.store.medical_inputs(&finding.person_key).await?;
        let versions: Vec<PolicyParams> = self.store.medical_policies().await?.into_iter().map(|p| p.params).collect();
        let explanation = explain_medical(id, &finding, &inputs, &versions)?;
        self.store
            .record_audit(&audit_of(
                principal,
                method,
                purpose,
                format!("OK {} explained", id.to_id_string()),
                vec![finding.person_key],
            ))
            .await?;
        Ok(explanation)
    }
}

impl Hub {
    /// `ExplainFinding` for a coverage finding: the rule recomputed (`domain::coverage::evaluate`, the hub's coverage
    /// parameters and the standards of `as_of`'s year as held now) over the person's status rows in the snapshot and
    /// the fact versions they pin. Who may read it: as `ListFindingAnswers`. Audited (`OK <finding_id> explained`).
    ///
    /// Errors: PERMISSION_DENIED; NOT_FOUND; INVALID_ARGUMENT naming `purpose`.
    pub async fn explain_coverage_finding(
        &self,
        principal: &Principal,
        method: &str,
        id: &crate::domain::answer::CoverageFindingId,
        purpose: &str,
    ) -> Result<Explanation, HubError> {
        use crate::domain::fact::{Payload, PayloadKind};
        let purpose = check_purpose(purpose)?;
        let finding = self.readable_coverage_finding(principal, id).await?;
        let person = crate::security::crypto::PersonKey::from_slice(&id.person_key)
            .ok_or(crate::security::crypto::KeyError::Decrypt)?;
        let rows = self.store.coverage_inputs(id.quarter, &id.person_key).await?;
        let corrupt = |d: String| HubError::Store(crate::store::StoreError::Corrupt { table: "facts", detail: d });
        let mut facts = Vec::with_capacity(rows.len());
        let mut inputs = Vec::with_capacity(rows.len() + 1);
        for r in &rows {
            let kind = PayloadKind::parse(&r.kind).ok_or_else(|| corrupt(format!("unknown kind {}", r.kind)))?;
            let payload = Payload::from_json(kind, &r.payload).map_err(|e| corrupt(e.to_string()))?;
            let reference = format!("{}/{}/{}", r.agency, r.fact_id, r.source_version);
            let to = r.valid_to.map(|d| d.to_string()).unwrap_or_else(|| "open".into());
            inputs.push(input(
                "fact_version",
                format!(
                    "status row of {}: fact version {reference} ({}), valid {} to {to}, recorded {}",
                    id.quarter,
                    r.kind,
                    r.valid_from,
                    r.recorded_at.to_rfc3339()
                ),
                format!(
                    "{} 快照状态行：事实版本 {reference}（{}），有效期 {} 至 {to}，记录于 {}",
                    id.quarter,
                    r.kind,
                    r.valid_from,
                    r.recorded_at.to_rfc3339()
                ),
                &r.content_hash,
            ));
            facts.push((reference, payload));
        }
        let birth = match self.store.person_cipher(&person).await? {
            Some(c) => Some(self.keys.decrypt(&c, &person)?.birth_date()),
            None => None,
        };
        let year = chrono::Datelike::year(&finding.as_of);
        let (_, standards) = self.standards(year).await?;
        let (steps, test) =
            crate::domain::explain::coverage_steps(id.code, &facts, birth, finding.as_of, &self.coverage, &standards);
        let raised = test.value == "raised";
        let c = &self.coverage;
        let list = |ps: &[crate::domain::fact::Program]| ps.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ");
        let param = |name: &str, en: &str, zh: &str, value: String| crate::domain::explain::Line {
            name: name.to_owned(),
            en: en.to_owned(),
            zh: zh.to_owned(),
            value,
        };
        let mut parameters = vec![
            param("as_of", "the snapshot's as_of (the quarter's last day)", "快照截止日", finding.as_of.to_string()),
            param("insured_programs", "programs that must be insured", "须参保的救助项目", list(&c.insured_programs)),
            param(
                "student_aid_programs",
                "programs whose pupils get aid",
                "学生须获资助的项目",
                list(&c.student_aid_programs),
            ),
            param(
                "pension_programs",
                "programs whose premium the government pays",
                "政府代缴养老保险的项目",
                list(&c.pension_programs),
            ),
            param(
                "pension_ages",
                "pension premium ages",
                "代缴年龄",
                format!("{}–{}", c.pension_min_age, c.pension_max_age),
            ),
            param(
                "nursing_max_grade",
                "nursing subsidy up to grade",
                "护理补贴残疾等级上限",
                c.nursing_max_grade.to_string(),
            ),
        ];
        for (item, fen) in &standards {
            if let Ok(m) = crate::domain::money::Money::from_fen(*fen) {
                parameters.push(param(
                    item,
                    &format!("monthly standard {item} of {year}"),
                    &format!("{year} 年月标准 {item}"),
                    m.to_string(),
                ));
            }
        }
        self.store
            .record_audit(&audit_of(
                principal,
                method,
                purpose,
                format!("OK {} explained", id.to_id_string()),
                vec![person],
            ))
            .await?;
        Ok(Explanation {
            finding_id: id.to_id_string(),
            code: id.code.to_owned(),
            agency_to_act: finding.agency_to_act,
            inputs,
            parameters,
            steps,
            test,
            recomputed_expected: None,
            recomputed_actual: None,
            stored_expected: None,
            stored_actual: None,
            raised,
            // A coverage finding is a row of a frozen snapshot: it stands as long as the recomputation raises it.
            matches_stored: raised,
        })
    }
}

/// The explanation of the stored medical `finding` from the stored `inputs` and policy `versions` (pure; the
/// population test compares it with every stored finding). FAILED_PRECONDITION when no version applies.
pub fn explain_medical(
    id: &FindingId,
    finding: &StoredFinding,
    inputs: &MedicalInputs,
    versions: &[PolicyParams],
) -> Result<Explanation, HubError> {
    let mut history = PersonHistory::default();
    for f in &inputs.facts {
        if f.kind == "medical_insurance" {
            history.covers.push(Cover { valid_from: f.valid_from, valid_to: f.valid_to });
        } else if f.kind == "assistance"
            && f.status.as_deref() == Some("ACTIVE")
            && let Some(p) = f.program.as_deref().and_then(Program::parse)
        {
            history.enrolments.push(Enrolment { program: p, valid_from: f.valid_from, valid_to: f.valid_to });
        }
    }
    history.settlements = inputs.settlements.iter().map(|s| s.settlement.clone()).collect();
    let explained = explain_person(&history, versions, DEFAULT_POOLING_AREA).map_err(|e| {
        HubError::FailedPrecondition(format!("finding {} cannot be recomputed: {e}", id.to_id_string()))
    })?;
    let (check, steps) =
        explained.steps.iter().find(|(c, _)| c.settlement_id == finding.settlement_id).ok_or_else(|| {
            HubError::FailedPrecondition(format!(
                "finding {}: settlement {} is no longer stored",
                id.to_id_string(),
                finding.settlement_id
            ))
        })?;
    let recomputed = if finding.code == FindingCode::HighBurden {
        explained.high_burden.iter().find(|f| f.settlement_id == finding.settlement_id)
    } else {
        check.findings.iter().find(|f| f.code == finding.code)
    };
    let amount = |m: Option<crate::domain::money::Money>| m.map(|m| m.to_string());
    let recomputed_expected = recomputed.and_then(|f| amount(f.expected));
    let recomputed_actual = recomputed.and_then(|f| amount(f.actual));
    let stored_expected = amount(finding.expected);
    let stored_actual = amount(finding.actual);
    let matches_stored = match (recomputed, finding.resolved_at) {
        (Some(f), None) => {
            recomputed_expected == stored_expected
                && recomputed_actual == stored_actual
                && f.policy_version == finding.policy_version
        }
        (None, Some(_)) => true,
        _ => false,
    };
    let params = PolicyParams::in_force(versions, &explained.pooling_area, steps.settled_on);
    let mut lines = Vec::new();
    for s in &inputs.settlements {
        let x = &s.settlement;
        lines.push(input(
            "settlement",
            format!(
                "settlement {}/{} ({}), settled {}, received {}",
                s.agency,
                x.settlement_id,
                x.visit_type,
                x.settled_on,
                s.received_at.to_rfc3339()
            ),
            format!(
                "结算 {}/{}（{}），结算日 {}，接收于 {}",
                s.agency,
                x.settlement_id,
                x.visit_type,
                x.settled_on,
                s.received_at.to_rfc3339()
            ),
            &s.content_hash,
        ));
    }
    for f in &inputs.facts {
        let to = f.valid_to.map(|d| d.to_string()).unwrap_or_else(|| "open".into());
        let what = match (&f.program, &f.status) {
            (Some(p), Some(st)) => format!(" {p} {st}"),
            _ => String::new(),
        };
        lines.push(input(
            "fact_version",
            format!(
                "fact version {}/{}/{} ({}{what}), valid {} to {to}, recorded {}",
                f.agency,
                f.fact_id,
                f.source_version,
                f.kind,
                f.valid_from,
                f.recorded_at.to_rfc3339()
            ),
            format!(
                "事实版本 {}/{}/{}（{}{what}），有效期 {} 至 {to}，记录于 {}",
                f.agency,
                f.fact_id,
                f.source_version,
                f.kind,
                f.valid_from,
                f.recorded_at.to_rfc3339()
            ),
            &f.content_hash,
        ));
    }
    Ok(Explanation {
        finding_id: id.to_id_string(),
        code: finding.code.as_str().to_owned(),
        agency_to_act: finding.agency_to_act.clone(),
        inputs: lines,
        parameters: params.map(|p| medical_parameters(p, steps.group)).unwrap_or_default(),
        steps: medical_steps(steps),
        test: medical_test(finding.code, steps, recomputed),
        recomputed_expected,
        recomputed_actual,
        stored_expected,
        stored_actual,
        raised: recomputed.is_some(),
        matches_stored,
    })
}
