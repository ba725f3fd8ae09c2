//! `doudi.v1.MedicalAssistance` handlers (docs/spec/api.md, docs/spec/medical.md) and the medical half of
//! `Reference.GetPolicy`.

use tonic::{Request, Response, Status};

use super::auth::Authenticator;
use super::convert::{date_in, id_number_in, program_out, timestamp};
use super::pb::{self, medical_assistance_server::MedicalAssistance};
use super::status::invalid;
use crate::domain::answer::{AnswerFilter, AnswerState, AnyFindingId, FindingId, FixedBy};
use crate::domain::division::DivisionCode;
use crate::domain::fact::FieldError;
use crate::domain::medical::{Finding, FindingCode, Settlement, SettlementCheck, VisitType};
use crate::domain::money::Money;
use crate::hub::answers::AnswerInput;
use crate::hub::coverage_findings::CoverageAnswerInput;
use crate::hub::{FindingFilter, RecheckTally, StoredPolicy};
use crate::hub::{FindingView, Hub, SettlementInput, SettlementOutcome, finding_id_of};

pub struct MedicalService {
    pub hub: Hub,
    pub auth: Authenticator,
}

const SUBMIT: &str = "/doudi.v1.MedicalAssistance/SubmitSettlements";
const LIST: &str = "/doudi.v1.MedicalAssistance/ListFindings";
const RECHECK: &str = "/doudi.v1.MedicalAssistance/RecheckPeriod";
const ANSWER: &str = "/doudi.v1.MedicalAssistance/AnswerFinding";
const ANSWERS: &str = "/doudi.v1.MedicalAssistance/ListFindingAnswers";
const EXPLAIN: &str = "/doudi.v1.MedicalAssistance/ExplainFinding";

/// Longest accepted `settlement_id`, in characters.
pub const MAX_SETTLEMENT_ID_LEN: usize = 64;

fn fe(field: &str, reason: impl std::fmt::Display) -> FieldError {
    FieldError::new(field, reason.to_string())
}

fn required_money(s: &str, field: &str) -> Result<Money, FieldError> {
    if s.is_empty() {
        return Err(fe(field, "is required (decimal yuan, e.g. \"0.00\")"));
    }
    let m = s.parse::<Money>().map_err(|e| fe(field, format!("{e} (money is decimal yuan like \"607.00\")")))?;
    crate::domain::money_limits::check(field, m).map_err(|e| fe(field, e))?;
    Ok(m)
}

fn required_date(s: &str, field: &str) -> Result<chrono::NaiveDate, FieldError> {
    if s.is_empty() {
        return Err(fe(field, "is required (YYYY-MM-DD)"));
    }
    date_in(s, field, chrono::NaiveDate::MIN)
}

fn visit_type_in(v: i32) -> Result<VisitType, FieldError> {
    match pb::VisitType::try_from(v) {
        Ok(pb::VisitType::Inpatient) => Ok(VisitType::Inpatient),
        Ok(pb::VisitType::OutpatientChronic) => Ok(VisitType::OutpatientChronic),
        Ok(pb::VisitType::OutpatientGeneral) => Ok(VisitType::OutpatientGeneral),
        Ok(pb::VisitType::Unspecified) => {
            Err(fe("visit_type", "is required (INPATIENT, OUTPATIENT_CHRONIC or OUTPATIENT_GENERAL)"))
        }
        Err(_) => Err(fe("visit_type", format!("unknown visit type {v}"))),
    }
}

fn finding_code_in(v: i32) -> Result<Option<FindingCode>, Status> {
    use pb::FindingCode as P;
    Ok(Some(match P::try_from(v) {
        Ok(P::Unspecified) => return Ok(None),
        Ok(P::NotInsured) => FindingCode::NotInsured,
        Ok(P::AssistanceToIneligible) => FindingCode::AssistanceToIneligible,
        Ok(P::TierOrderViolation) => FindingCode::TierOrderViolation,
        Ok(P::AssistanceMissed) => FindingCode::AssistanceMissed,
        Ok(P::UnderAssisted) => FindingCode::UnderAssisted,
        Ok(P::OverAssisted) => FindingCode::OverAssisted,
        Ok(P::AnnualCapExceeded) => FindingCode::AnnualCapExceeded,
        Ok(P::CiiTiltNotApplied) => FindingCode::CiiTiltNotApplied,
        Ok(P::DuplicateSuspected) => FindingCode::DuplicateSuspected,
        Ok(P::HighBurden) => FindingCode::HighBurden,
        Ok(P::TiltedAssistanceCandidate) => FindingCode::TiltedAssistanceCandidate,
        Err(_) => return Err(invalid("code", format!("unknown finding code {v}"))),
    }))
}

/// Domain code → wire enum value.
pub fn finding_code_out(c: FindingCode) -> i32 {
    use pb::FindingCode as P;
    (match c {
        FindingCode::NotInsured => P::NotInsured,
        FindingCode::AssistanceToIneligible => P::AssistanceToIneligible,
        FindingCode::TierOrderViolation => P::TierOrderViolation,
        FindingCode::AssistanceMissed => P::AssistanceMissed,
        FindingCode::UnderAssisted => P::UnderAssisted,
        FindingCode::OverAssisted => P::OverAssisted,
        FindingCode::AnnualCapExceeded => P::AnnualCapExceeded,
        FindingCode::CiiTiltNotApplied => P::CiiTiltNotApplied,
        FindingCode::DuplicateSuspected => P::DuplicateSuspected,
        FindingCode::HighBurden => P::HighBurden,
        FindingCode::TiltedAssistanceCandidate => P::TiltedAssistanceCandidate,
    }) as i32
}

/// Wire settlement → parsed input. Field paths are relative to the settlement.
pub fn settlement_in(s: pb::Settlement) -> Result<SettlementInput, FieldError> {
    if s.settlement_id.is_empty() {
        return Err(fe("settlement_id", "is required"));
    }
    if s.settlement_id.chars().count() > MAX_SETTLEMENT_ID_LEN {
        return Err(fe("settlement_id", format!("is longer than {MAX_SETTLEMENT_ID_LEN} characters")));
    }
    if s.settlement_id.chars().any(char::is_control) || s.settlement_id.trim().is_empty() {
        return Err(fe("settlement_id", "contains a control character or is blank"));
    }
    let id_number = id_number_in(&s.id_number, "id_number")?;
    if s.division_code.is_empty() {
        return Err(fe("division_code", "is required"));
    }
    let division: DivisionCode = s.division_code.parse().map_err(|e| fe("division_code", e))?;
    if division.county().is_none() {
        return Err(fe("division_code", format!("{division} is not a county or a place within one")));
    }
    let visit_type = visit_type_in(s.visit_type)?;
    let admitted_on = required_date(&s.admitted_on, "admitted_on")?;
    let settled_on = required_date(&s.settled_on, "settled_on")?;
    let settlement = Settlement {
        settlement_id: s.settlement_id,
        person: [0; 32],
        division_code: division.as_str().to_owned(),
        admitted_on,
        settled_on,
        visit_type,
        in_province: s.in_province,
        referred: s.referred,
        total_cost: required_money(&s.total_cost, "total_cost")?,
        policy_scope_cost: required_money(&s.policy_scope_cost, "policy_scope_cost")?,
        basic_paid: required_money(&s.basic_paid, "basic_paid")?,
        critical_illness_paid: required_money(&s.critical_illness_paid, "critical_illness_paid")?,
        medical_assistance_paid: required_money(&s.medical_assistance_paid, "medical_assistance_paid")?,
        other_paid: required_money(&s.other_paid, "other_paid")?,
        out_of_pocket: required_money(&s.out_of_pocket, "out_of_pocket")?,
    };
    Ok(SettlementInput { id_number, division, settlement })
}

fn amount(m: Option<Money>) -> String {
    m.map(|m| m.to_string()).unwrap_or_default()
}

fn check_out(c: &SettlementCheck) -> pb::SettlementCheck {
    pb::SettlementCheck {
        assistance_group: c.group.map(u32::from).unwrap_or(0),
        policy_version: c.policy_version.clone(),
        after_basic: c.after_basic.to_string(),
        expected_critical_illness: c.expected_cii.to_string(),
        residual: c.residual.to_string(),
        expected_medical_assistance: c.expected_ma.to_string(),
        cap_left: c.cap_left.to_string(),
    }
}

fn new_finding_out(agency: &str, f: &Finding, s: &pb::Settlement, now: chrono::DateTime<chrono::Utc>) -> pb::Finding {
    pb::Finding {
        finding_id: FindingId { agency: agency.to_owned(), settlement_id: f.settlement_id.clone(), code: f.code }
            .to_id_string(),
        answer: None,
        code: finding_code_out(f.code),
        settlement_id: f.settlement_id.clone(),
        id_number: s
            .id_number
            .parse::<crate::domain::id_number::IdNumber>()
            .map(|i| i.as_str().to_owned())
            .unwrap_or_default(),
        person_key: hex::encode(f.person),
        division_code: s.division_code.clone(),
        settled_on: s.settled_on.clone(),
        expected_amount: amount(f.expected),
        actual_amount: amount(f.actual),
        policy_version: f.policy_version.clone(),
        agency_to_act: f.agency_to_act.to_owned(),
        detected_at: Some(timestamp(now)),
        resolved_at: None,
    }
}

fn finding_out(v: &FindingView) -> pb::Finding {
    let f = &v.finding;
    pb::Finding {
        finding_id: finding_id_of(f).to_id_string(),
        answer: v.answer.as_ref().map(answer_out),
        code: finding_code_out(f.code),
        settlement_id: f.settlement_id.clone(),
        id_number: v.id_number.as_str().to_owned(),
        person_key: hex::encode(f.person_key.as_bytes()),
        division_code: f.division_code.clone(),
        settled_on: f.settled_on.to_string(),
        expected_amount: amount(f.expected),
        actual_amount: amount(f.actual),
        policy_version: f.policy_version.clone(),
        agency_to_act: f.agency_to_act.clone(),
        detected_at: Some(timestamp(f.detected_at)),
        resolved_at: f.resolved_at.map(timestamp),
    }
}

fn counts(map: &std::collections::BTreeMap<FindingCode, i64>) -> Vec<pb::FindingCount> {
    map.iter()
        .filter(|(_, n)| **n > 0)
        .map(|(c, n)| pb::FindingCount { code: finding_code_out(*c), count: *n })
        .collect()
}

/// Recheck tally → wire.
pub fn recheck_out(t: &RecheckTally) -> pb::RecheckPeriodResponse {
    pb::RecheckPeriodResponse {
        persons_checked: t.persons,
        settlements_checked: t.settlements,
        findings_added: t.added.values().sum(),
        findings_resolved: t.resolved.values().sum(),
        added_by_code: counts(&t.added),
        resolved_by_code: counts(&t.resolved),
    }
}

/// A policy version on the wire; `next`: the day it stops being in force, if a later version is held.
pub fn policy_out(p: &StoredPolicy, next: Option<chrono::NaiveDate>) -> pb::MedicalPolicy {
    let v = &p.params;
    pb::MedicalPolicy {
        version: v.version.clone(),
        pooling_area: v.pooling_area.clone(),
        effective_from: v.effective_from.to_string(),
        effective_to: next.map(|d| d.to_string()).unwrap_or_default(),
        groups: v
            .groups
            .iter()
            .map(|g| pb::MedicalAssistanceGroup {
                group: u32::from(g.group),
                programs: g.programs.iter().map(|p| program_out(Some(*p))).collect(),
                ma_deductible_share: g.ma_deductible_share.to_string(),
                ma_deductible: v.prior_year_income.mul_ratio_half_up(g.ma_deductible_share).to_string(),
                ma_ratio: g.ma_ratio.to_string(),
                cii_tilt: g.cii_tilt,
            })
            .collect(),
        prior_year_income: v.prior_year_income.to_string(),
        annual_cap: v.annual_cap.to_string(),
        cii_deductible: v.cii_deductible.to_string(),
        cii_ratio: v.cii_ratio.to_string(),
        cii_tilt_deductible_share: v.cii_tilt_deductible_share.to_string(),
        cii_tilt_ratio_points: v.cii_tilt_ratio_points.to_string(),
        outpatient_general_assisted: v.outpatient_general_assisted,
        tolerance: v.tolerance.to_string(),
        high_burden_share: v.high_burden_share.to_string(),
        high_burden_threshold: v.high_burden_threshold().to_string(),
        tilted_assistance_share: v.tilted_assistance_share.to_string(),
        tilted_assistance_threshold: v.tilted_assistance_threshold().to_string(),
        example: p.example,
        source: p.source.clone(),
        national_floor_warnings: v
            .national_floor_warnings()
            .into_iter()
            .map(|w| format!("{}: {}", w.field, w.reason))
            .collect(),
    }
}

#[tonic::async_trait]
impl MedicalAssistance for MedicalService {
    async fn submit_settlements(
        &self,
        req: Request<pb::SubmitSettlementsRequest>,
    ) -> Result<Response<pb::SubmitSettlementsResponse>, Status> {
        let principal = self.auth.principal(&req)?;
        let wire = req.into_inner().settlements;
        let inputs: Vec<(String, Result<SettlementInput, FieldError>)> =
            wire.iter().map(|s| (s.settlement_id.clone(), settlement_in(s.clone()))).collect();
        let now = self.hub.now();
        let results = self.hub.submit_settlements(&principal, SUBMIT, inputs).await?;
        let results = results
            .into_iter()
            .map(|r| {
                let mut out = pb::SettlementResult {
                    index: r.index as u32,
                    settlement_id: r.settlement_id,
                    ..Default::default()
                };
                match r.outcome {
                    SettlementOutcome::Accepted { check, findings } => {
                        out.outcome = pb::SettlementOutcome::Accepted as i32;
                        out.check = Some(check_out(&check));
                        out.findings = findings
                            .iter()
                            .map(|f| new_finding_out(principal.agency().as_str(), f, &wire[r.index], now))
                            .collect();
                    }
                    SettlementOutcome::Duplicate => out.outcome = pb::SettlementOutcome::Duplicate as i32,
                    SettlementOutcome::Rejected { field, reason } => {
                        out.outcome = pb::SettlementOutcome::Rejected as i32;
                        out.field = field;
                        out.reason = reason;
                    }
                }
                out
            })
            .collect();
        Ok(Response::new(pb::SubmitSettlementsResponse { results }))
    }

    async fn list_findings(
        &self,
        req: Request<pb::ListFindingsRequest>,
    ) -> Result<Response<pb::ListFindingsResponse>, Status> {
        let principal = self.auth.principal(&req)?;
        let r = req.into_inner();
        let bad = |e: FieldError| invalid(&e.field, e.reason);
        let from =
            if r.from_date.is_empty() { None } else { Some(required_date(&r.from_date, "from_date").map_err(bad)?) };
        let to = if r.to_date.is_empty() { None } else { Some(required_date(&r.to_date, "to_date").map_err(bad)?) };
        let division = if r.division_code.is_empty() {
            None
        } else {
            Some(r.division_code.parse::<DivisionCode>().map_err(|e| invalid("division_code", e))?)
        };
        if r.page_size < 0 {
            return Err(invalid("page_size", "must not be negative"));
        }
        let filter = FindingFilter {
            from,
            to,
            division_prefix: String::new(),
            code: finding_code_in(r.code)?,
            include_resolved: r.include_resolved,
            answer: answer_filter_in(r.answer)?,
        };
        let page = self
            .hub
            .list_findings(&principal, LIST, division, filter, r.page_size as usize, &r.page_token, &r.purpose)
            .await?;
        Ok(Response::new(pb::ListFindingsResponse {
            findings: page.findings.iter().map(finding_out).collect(),
            next_page_token: page.next_page_token,
            total_size: page.total_size,
        }))
    }

    async fn recheck_period(
        &self,
        req: Request<pb::RecheckPeriodRequest>,
    ) -> Result<Response<pb::RecheckPeriodResponse>, Status> {
        let principal = self.auth.principal(&req)?;
        let r = req.into_inner();
        let bad = |e: FieldError| invalid(&e.field, e.reason);
        let from = required_date(&r.from_date, "from_date").map_err(bad)?;
        let to = required_date(&r.to_date, "to_date").map_err(bad)?;
        let tally = self.hub.recheck_period(&principal, RECHECK, from, to, &r.purpose).await?;
        Ok(Response::new(recheck_out(&tally)))
    }

    async fn answer_finding(
        &self,
        req: Request<pb::AnswerFindingRequest>,
    ) -> Result<Response<pb::AnswerFindingResponse>, Status> {
        let principal = self.auth.principal(&req)?;
        let r = req.into_inner();
        let finding = finding_id_in(&r.finding_id)?;
        let state = match pb::AnswerState::try_from(r.state) {
            Ok(pb::AnswerState::InProgress) => AnswerState::InProgress,
            Ok(pb::AnswerState::Fixed) => AnswerState::Fixed,
            Ok(pb::AnswerState::Disputed) => AnswerState::Disputed,
            Ok(pb::AnswerState::Unspecified) => {
                return Err(invalid("state", "is required (IN_PROGRESS, FIXED or DISPUTED)"));
            }
            Err(_) => return Err(invalid("state", format!("unknown answer state {}", r.state))),
        };
        let fixed_by = match r.fixed_by.and_then(|f| f.fix) {
            None => None,
            Some(pb::finding_fix::Fix::FactVersion(v)) => Some(fact_version_in(&v)?),
            Some(pb::finding_fix::Fix::SettlementId(id)) => {
                if id.is_empty() || id.chars().count() > MAX_SETTLEMENT_ID_LEN || id.chars().any(char::is_control) {
                    return Err(invalid(
                        "fixed_by.settlement_id",
                        format!("must be 1 to {MAX_SETTLEMENT_ID_LEN} characters without control characters"),
                    ));
                }
                Some(FixedBy::Settlement { settlement_id: id })
            }
        };
        let answer = match finding {
            AnyFindingId::Medical(finding) => {
                let input = AnswerInput { finding, state, fixed_by, reason: r.reason, purpose: r.purpose };
                answer_out(&self.hub.answer_finding(&principal, ANSWER, input).await?)
            }
            AnyFindingId::Coverage(finding) => {
                let input = CoverageAnswerInput { finding, state, fixed_by, reason: r.reason, purpose: r.purpose };
                coverage_answer_out(&self.hub.answer_coverage_finding(&principal, ANSWER, input).await?)
            }
        };
        Ok(Response::new(pb::AnswerFindingResponse { answer: Some(answer) }))
    }

    async fn list_finding_answers(
        &self,
        req: Request<pb::ListFindingAnswersRequest>,
    ) -> Result<Response<pb::ListFindingAnswersResponse>, Status> {
        let principal = self.auth.principal(&req)?;
        let r = req.into_inner();
        match finding_id_in(&r.finding_id)? {
            AnyFindingId::Medical(id) => {
                let (view, answers) = self.hub.finding_answers(&principal, ANSWERS, &id, &r.purpose).await?;
                Ok(Response::new(pb::ListFindingAnswersResponse {
                    finding: Some(finding_out(&view)),
                    answers: answers.iter().map(answer_out).collect(),
                    coverage_finding: None,
                }))
            }
            AnyFindingId::Coverage(id) => {
                let (mut view, answers) =
                    self.hub.coverage_finding_answers(&principal, ANSWERS, &id, &r.purpose).await?;
                view.answer = None;
                Ok(Response::new(pb::ListFindingAnswersResponse {
                    finding: None,
                    answers: answers.iter().map(coverage_answer_out).collect(),
                    coverage_finding: Some(coverage_finding_out(&view)),
                }))
            }
        }
    }

    async fn explain_finding(
        &self,
        req: Request<pb::ExplainFindingRequest>,
    ) -> Result<Response<pb::ExplainFindingResponse>, Status> {
        let principal = self.auth.principal(&req)?;
        let r = req.into_inner();
        let e = match finding_id_in(&r.finding_id)? {
            AnyFindingId::Medical(id) => self.hub.explain_medical_finding(&principal, EXPLAIN, &id, &r.purpose).await?,
            AnyFindingId::Coverage(id) => {
                self.hub.explain_coverage_finding(&principal, EXPLAIN, &id, &r.purpose).await?
            }
        };
        Ok(Response::new(explanation_out(&e)))
    }
}

/// An explanation → wire (`ExplainFinding`).
pub fn explanation_out(e: &crate::domain::explain::Explanation) -> pb::ExplainFindingResponse {
    let l = |l: &crate::domain::explain::Line| pb::ExplanationLine {
        name: l.name.clone(),
        en: l.en.clone(),
        zh: l.zh.clone(),
        value: l.value.clone(),
    };
    pb::ExplainFindingResponse {
        finding_id: e.finding_id.clone(),
        code: e.code.clone(),
        agency_to_act: e.agency_to_act.clone(),
        inputs: e.inputs.iter().map(l).collect(),
        parameters: e.parameters.iter().map(l).collect(),
        steps: e.steps.iter().map(l).collect(),
        test: Some(l(&e.test)),
        recomputed_expected: e.recomputed_expected.clone().unwrap_or_default(),
        recomputed_actual: e.recomputed_actual.clone().unwrap_or_default(),
        stored_expected: e.stored_expected.clone().unwrap_or_default(),
        stored_actual: e.stored_actual.clone().unwrap_or_default(),
        raised: e.raised,
        matches_stored: e.matches_stored,
    }
}

/// Wire → an explanation (the inverse of [`explanation_out`]; clients render it with `report::explanation`). An
/// empty amount is `None`; an unset test is an empty line.
pub fn explanation_in(e: &pb::ExplainFindingResponse) -> crate::domain::explain::Explanation {
    let l = |l: &pb::ExplanationLine| crate::domain::explain::Line {
        name: l.name.clone(),
        en: l.en.clone(),
        zh: l.zh.clone(),
        value: l.value.clone(),
    };
    let amount = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    crate::domain::explain::Explanation {
        finding_id: e.finding_id.clone(),
        code: e.code.clone(),
        agency_to_act: e.agency_to_act.clone(),
        inputs: e.inputs.iter().map(l).collect(),
        parameters: e.parameters.iter().map(l).collect(),
        steps: e.steps.iter().map(l).collect(),
        test: e.test.as_ref().map(l).unwrap_or_else(|| crate::domain::explain::Line {
            name: "test".into(),
            en: String::new(),
            zh: String::new(),
            value: String::new(),
        }),
        recomputed_expected: amount(&e.recomputed_expected),
        recomputed_actual: amount(&e.recomputed_actual),
        stored_expected: amount(&e.stored_expected),
        stored_actual: amount(&e.stored_actual),
        raised: e.raised,
        matches_stored: e.matches_stored,
    }
}

/// A domain settlement → wire (the inverse of [`settlement_in`]; clients and the demo use it).
pub fn settlement_out(
    id: &crate::domain::id_number::IdNumber,
    s: &crate::domain::medical::Settlement,
) -> pb::Settlement {
    let visit_type = match s.visit_type {
        crate::domain::medical::VisitType::Inpatient => pb::VisitType::Inpatient,
        crate::domain::medical::VisitType::OutpatientChronic => pb::VisitType::OutpatientChronic,
        crate::domain::medical::VisitType::OutpatientGeneral => pb::VisitType::OutpatientGeneral,
    };
    pb::Settlement {
        settlement_id: s.settlement_id.clone(),
        id_number: id.as_str().to_owned(),
        division_code: s.division_code.clone(),
        admitted_on: s.admitted_on.to_string(),
        settled_on: s.settled_on.to_string(),
        visit_type: visit_type as i32,
        in_province: s.in_province,
        referred: s.referred,
        total_cost: s.total_cost.to_string(),
        policy_scope_cost: s.policy_scope_cost.to_string(),
        basic_paid: s.basic_paid.to_string(),
        critical_illness_paid: s.critical_illness_paid.to_string(),
        medical_assistance_paid: s.medical_assistance_paid.to_string(),
        other_paid: s.other_paid.to_string(),
        out_of_pocket: s.out_of_pocket.to_string(),
    }
}

fn finding_id_in(s: &str) -> Result<AnyFindingId, Status> {
    if s.is_empty() {
        return Err(invalid(
            "finding_id",
            "is required (Finding.finding_id, medical/<agency>/<settlement_id>/<code>, or CoverageFinding.finding_id, \
             coverage/<quarter>/<code>/<person key>)",
        ));
    }
    if s.chars().count() > 200 {
        return Err(invalid("finding_id", "is longer than 200 characters"));
    }
    AnyFindingId::parse(s).map_err(|e| invalid("finding_id", e))
}

fn fact_version_in(v: &pb::FactVersionRef) -> Result<FixedBy, Status> {
    for (field, value) in [("agency", &v.agency), ("fact_id", &v.fact_id)] {
        if value.is_empty() || value.chars().count() > 128 || value.chars().any(char::is_control) {
            return Err(invalid(
                &format!("fixed_by.fact_version.{field}"),
                "must be 1 to 128 characters without control characters",
            ));
        }
    }
    let source_version = i64::try_from(v.source_version)
        .map_err(|_| invalid("fixed_by.fact_version.source_version", "is more than 2^63-1"))?;
    Ok(FixedBy::FactVersion { agency: v.agency.clone(), fact_id: v.fact_id.clone(), source_version })
}

pub(crate) fn answer_filter_in(v: i32) -> Result<Option<AnswerFilter>, Status> {
    use pb::AnswerFilter as P;
    Ok(match P::try_from(v) {
        Ok(P::Unspecified) => None,
        Ok(P::Unanswered) => Some(AnswerFilter::Unanswered),
        Ok(P::InProgress) => Some(AnswerFilter::State(AnswerState::InProgress)),
        Ok(P::Fixed) => Some(AnswerFilter::State(AnswerState::Fixed)),
        Ok(P::Disputed) => Some(AnswerFilter::State(AnswerState::Disputed)),
        Err(_) => return Err(invalid("answer", format!("unknown answer filter {v}"))),
    })
}

fn answer_out(a: &crate::hub::FindingAnswer) -> pb::FindingAnswer {
    answer_fields_out(a.finding.to_id_string(), a)
}

fn coverage_answer_out(a: &crate::hub::CoverageAnswer) -> pb::FindingAnswer {
    answer_fields_out(a.finding.to_id_string(), a)
}

/// A coverage finding → wire (`ListCoverageFindings`, `ListFindingAnswers`).
pub fn coverage_finding_out(v: &crate::hub::coverage_findings::CoverageFindingView) -> pb::CoverageFinding {
    let f = &v.finding;
    pb::CoverageFinding {
        finding_id: f.id.to_id_string(),
        quarter: f.id.quarter.to_string(),
        code: f.id.code.to_owned(),
        id_number: v.id_number.as_str().to_owned(),
        person_key: hex::encode(f.id.person_key),
        county_code: f.county_code.clone(),
        agency_to_act: f.agency_to_act.clone(),
        answer: v.answer.as_ref().map(coverage_answer_out),
    }
}

/// The wire form of an answer version, given its finding's id.
fn answer_fields_out<Id>(finding_id: String, a: &crate::hub::Answer<Id>) -> pb::FindingAnswer {
    let state = match a.state {
        AnswerState::InProgress => pb::AnswerState::InProgress,
        AnswerState::Fixed => pb::AnswerState::Fixed,
        AnswerState::Disputed => pb::AnswerState::Disputed,
    };
    let fix = a.fixed_by.as_ref().map(|f| pb::FindingFix {
        fix: Some(match f {
            FixedBy::FactVersion { agency, fact_id, source_version } => {
                pb::finding_fix::Fix::FactVersion(pb::FactVersionRef {
                    agency: agency.clone(),
                    fact_id: fact_id.clone(),
                    source_version: u64::try_from(*source_version).unwrap_or_default(),
                })
            }
            FixedBy::Settlement { settlement_id } => pb::finding_fix::Fix::SettlementId(settlement_id.clone()),
        }),
    });
    pb::FindingAnswer {
        finding_id,
        version: a.version,
        state: state as i32,
        fixed_by: fix,
        reason: a.reason.clone(),
        answered_at: Some(timestamp(a.answered_at)),
        answered_by: a.answered_by.clone(),
    }
}
